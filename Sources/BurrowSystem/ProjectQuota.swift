import CBurrowSystem
package import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Project quotas: the kernel's own bound on the bytes a directory tree may
/// hold. Every inode carries a project id; a directory marked to pass it on
/// (`FS_XFLAG_PROJINHERIT`) gives it to what is created inside, and the
/// kernel refuses a rename or link into it from another project (EXDEV), so
/// a labelled tree stays labelled. A write that would take the project past
/// its hard limit fails with EDQUOT before a byte lands. ext4 offers them with
/// the `project` and `quota` features mounted `prjquota`, xfs mounted
/// `pquota`; the calls are `quotactl_fd(2)` (Linux 5.14) and the
/// `FS_IOC_FSGETXATTR`/`FS_IOC_FSSETXATTR` ioctls.
package enum ProjectQuota {
    /// A project's usage and block limits.
    package struct Usage: Sendable, Equatable {
        /// Bytes in use, space reserved for delayed allocation included.
        package var usedBytes: UInt64
        /// In 1024-byte blocks; 0: no limit.
        package var hardBlocks: UInt64
        package var softBlocks: UInt64
    }

    private static func check(_ rc: Int32) throws(Errno) {
        if rc < 0 { throw Errno(rawValue: -rc) }
    }

    /// Project quotas on a file system: enforced, or only counted (ext4 with
    /// the quota feature mounted without prjquota, xfs with pqnoenforce),
    /// which never refuses a write.
    package enum State: Sendable, Equatable { case enforced, countedOnly }

    /// The state of project quotas on the file system behind `fd`; throws when they are off (ESRCH) or absent.
    package static func state(_ fd: FileDescriptor) throws(Errno) -> State {
        let state = brw_project_quota_on(fd.rawValue)
        try check(state)
        return state == 1 ? .countedOnly : .enforced
    }

    static func countedOnly(_ path: String, _ type: String) -> String {
        "\(path) is on \(type) whose project quotas are counted but not enforced (ext4 mounted without prjquota, xfs with pqnoenforce): no write would be refused"
    }

    package static func usage(_ fd: FileDescriptor, project: UInt32) throws(Errno) -> Usage {
        var q = brw_quota()
        try check(brw_project_quota_get(fd.rawValue, project, &q))
        return Usage(usedBytes: q.used_bytes, hardBlocks: q.hard_blocks, softBlocks: q.soft_blocks)
    }

    /// Sets a project's block limits (1024-byte blocks; 0: none).
    package static func setLimits(_ fd: FileDescriptor, project: UInt32, hardBlocks: UInt64, softBlocks: UInt64) throws(Errno) {
        try check(brw_project_quota_set(fd.rawValue, project, hardBlocks, softBlocks))
    }

    /// The project of the inode behind `fd`, and whether it passes it on.
    package static func project(of fd: FileDescriptor) throws(Errno) -> (id: UInt32, inherits: Bool) {
        var id: UInt32 = 0
        var flags: UInt32 = 0
        try check(brw_project_get(fd.rawValue, &id, &flags))
        return (id, flags & 0x200 != 0)  // FS_XFLAG_PROJINHERIT
    }

    /// Puts the inode behind `fd` in project `id` (a directory also passes it on).
    package static func assign(_ fd: FileDescriptor, project id: UInt32, inherit: Bool) throws(Errno) {
        try check(brw_project_set(fd.rawValue, id, inherit ? 1 : 0))
    }

    /// Whether a byte budget can be enforced under `path`: project quotas on
    /// its file system, and an inode that takes a project id. The detail says
    /// what was found, or what the operator would change.
    package static func support(at path: String) -> HostFacts.Check {
        let fd: FileDescriptor
        do {
            fd = try Kernel.openNoFollow(path, flags: O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        } catch {
            return .no("cannot open \(path): \(errnoName(error.rawValue))")
        }
        defer { try? fd.close() }
        let type = fileSystemName(fd)
        do {
            guard try state(fd) == .enforced else { return .no(countedOnly(path, type)) }
            _ = try project(of: fd)
            return .yes("project quotas enforced on \(path)'s \(type)")
        } catch .noFunction where !kernelHasQuotactlFD {
            return .no("this kernel has no quotactl_fd (Linux 5.14 or later)")
        } catch .noSuchProcess {
            return .no("\(path) is on \(type) without project quotas on: \(howToEnable)")
        } catch {
            return .no("\(path) is on \(type), which offers no project quotas here (\(errnoName(error.rawValue))): \(howToEnable)")
        }
    }

    /// Every mount point in this process's mount namespace; nil when it cannot be read.
    private static func mountPoints() -> [String]? {
        guard let text = try? FileIO.read("/proc/self/mountinfo", limit: 16 << 20) else { return nil }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 5)
            return fields.count > 4 ? unescapeMountField(String(fields[4])) : nil
        }
    }

    /// Mount points strictly below `path`: another file system inside a
    /// grant keeps its own count.
    package static func mountPoints(under path: String) -> [String]? {
        let prefix = path.hasSuffix("/") ? path : path + "/"
        return mountPoints()?.filter { $0.hasPrefix(prefix) }
    }

    /// quotactl_fd came with Linux 5.14; after that, ENOSYS is a file system
    /// without quota operations (tmpfs without quota, 9p, overlayfs).
    private static var kernelHasQuotactlFD: Bool {
        var u = utsname()
        guard uname(&u) == 0 else { return true }
        return kernelAtLeast(withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }, 5, 14)
    }

    /// The mount point of the file system holding each path (the longest mount
    /// point that contains it), for statfs of the file system as a whole:
    /// inside a directory whose project has a limit, ext4 and xfs report the
    /// project's limit and usage instead.
    package static func mountPoints(of paths: [String]) -> [String?] {
        guard !paths.isEmpty, let points = mountPoints() else { return paths.map { _ in nil } }
        return paths.map { path in points.filter { $0 == "/" || path == $0 || path.hasPrefix($0 + "/") }.max { $0.count < $1.count } }
    }

    static let howToEnable =
        "put the grant on ext4 with the project and quota features (mkfs.ext4 -O project,quota, or tune2fs on an unmounted one) mounted with prjquota, or on xfs mounted with pquota"

    /// The file system's kind, by its magic number, for messages.
    private static func fileSystemName(_ fd: FileDescriptor) -> String {
        let type = brw_fs_type(fd.rawValue)
        guard type >= 0 else { return "an unknown file system" }
        switch UInt64(type) {
        case 0xEF53: return "ext4"
        case 0x5846_5342: return "xfs"
        case 0x0102_1994: return "tmpfs"
        case 0x9123_683E: return "btrfs"
        case 0x794C_7630: return "overlayfs"
        case 0x0102_1997: return "9p"
        case 0x6969: return "nfs"
        case let magic: return "a file system of type 0x\(String(magic, radix: 16))"
        }
    }
}
