import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A small ext4 file system with project quotas (`mkfs.ext4 -O
/// project,quota`, loop-mounted `prjquota`), made by a test and removed
/// after it: the kernel needs CONFIG_QFMT_V2 for ext4's quota feature, which
/// Debian's kernel (the VM suite) has and this host's does not.
package struct ProjectQuotaDisk {
    package let image: String
    package let mountPoint: String

    /// Makes and mounts one of `megabytes` MiB in `directory`.
    package static func make(in directory: String, megabytes: Int = 64) throws -> ProjectQuotaDisk {
        let disk = ProjectQuotaDisk(image: directory + "/quota.img", mountPoint: directory + "/quota")
        try FileManager.default.createDirectory(atPath: disk.mountPoint, withIntermediateDirectories: true)
        let steps: [[String]] = [
            ["/usr/bin/truncate", "-s", "\(megabytes)M", disk.image],
            ["/usr/sbin/mkfs.ext4", "-q", "-F", "-O", "project,quota", "-E", "quotatype=prjquota", disk.image],
            ["/usr/bin/mount", "-o", "loop,prjquota", disk.image, disk.mountPoint],
        ]
        for step in steps {
            let result = try Subprocess.run(step)
            guard result.status == 0 else {
                throw RequirementUnmet(description: "\(step.joined(separator: " ")): exit \(result.status) \(result.stderr)\(Self.kernelSays())")
            }
        }
        chmod(disk.mountPoint, 0o755)
        return disk
    }

    /// The kernel's last word on a refused mount (ext4 names the missing option).
    private static func kernelSays() -> String {
        guard let log = try? Subprocess.run(["/usr/bin/dmesg"]), let line = log.output.split(separator: "\n").last(where: { $0.contains("EXT4-fs") }) else { return "" }
        return " (kernel: \(line))"
    }

    package func remove() {
        _ = try? Subprocess.run(["/usr/bin/umount", "-l", mountPoint])
        try? FileManager.default.removeItem(atPath: image)
    }
}

extension Requirement {
    /// An ext4 file system with project quotas can be made and mounted here.
    package static let projectQuotas: Requirement = {
        guard geteuid() == 0 else { return Requirement(description: "project quotas", whyUnmet: "not root") }
        do {
            let directory = try Subprocess.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let disk = try ProjectQuotaDisk.make(in: directory, megabytes: 16)
            disk.remove()
            return Requirement(description: "project quotas", whyUnmet: nil)
        } catch {
            return Requirement(description: "project quotas (ext4 prjquota on a loop device)", whyUnmet: "\(error) (run the suite in Scripts/vm-test.sh)")
        }
    }()
}
