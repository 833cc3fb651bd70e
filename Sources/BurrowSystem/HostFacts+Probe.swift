import CBurrowSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension HostFacts {
    /// Probes this host. Safe to call from any thread: namespace and clone
    /// probes run in children that exit at once; nothing changes this process.
    /// - Parameters:
    ///   - children: run the throwaway-child probes (namespaces, clone3,
    ///     CLONE_INTO_CGROUP). `burrow run` skips them (they cost a clone
    ///     each): the real clone3 then is the probe, and a missing feature
    ///     fails the launch with the stage and errno, never weakening it.
    ///   - reuse: take the child probes' answers from the run cache when they
    ///     were made this boot by this binary, as this user, in this cgroup,
    ///     under the same namespace sysctls (`burrow doctor` always probes afresh).
    package static func probe(children: Bool = true, reuse: Bool = true) -> HostFacts {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let machine = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let uidMap = (try? FileIO.read("/proc/self/uid_map")) ?? ""
        let procSelfCgroup = (try? FileIO.read("/proc/self/cgroup")) ?? ""
        let layout = CgroupLayout.parse(mountinfo: (try? FileIO.read("/proc/self/mountinfo")) ?? "", procSelfCgroup: procSelfCgroup)

        let atSpawn = Check.yes("checked by the launch itself (clone3 fails closed, naming the stage)")
        var probes = ChildProbes()
        if children {
            let key = ChildProbes.cacheKey(release: release, uidMap: uidMap, procSelfCgroup: procSelfCgroup, cgroupDirectory: layout.v2OwnDirectory)
            let cache = RunCache.forThisBinary
            if reuse, let entry = cache?.read(ChildProbes.cacheName, key: key), let cached = ChildProbes(entry) {
                probes = cached
            } else {
                probes = ChildProbes.run(cgroupDirectory: layout.v2OwnDirectory)
                if !probes.transient, let entry = probes.encoded { cache?.write(ChildProbes.cacheName, key: key, value: entry) }
            }
        }
        var namespaces: [NamespaceKind: Check] = [:]
        for kind in NamespaceKind.allCases { namespaces[kind] = probes.checks[kind.rawValue] ?? atSpawn }
        let together = probes.checks[ChildProbes.together] ?? atSpawn

        // SECCOMP_RET_KILL_PROCESS and SECCOMP_RET_USER_NOTIF.
        let seccompFilter = check(brw_seccomp_action_available(0x8000_0000), ok: "SECCOMP_RET_KILL_PROCESS available")
        var notif: UInt16 = 0
        var resp: UInt16 = 0
        var data: UInt16 = 0
        var notify = check(brw_seccomp_notify_sizes(&notif, &resp, &data), ok: "SECCOMP_GET_NOTIF_SIZES ok")
        if notify.available {
            notify = check(brw_seccomp_action_available(0x7fc0_0000), ok: "SECCOMP_RET_USER_NOTIF available")
        }

        let abi = brw_landlock_abi()
        let landlock: Check =
            abi > 0
            ? .yes("ABI \(abi)")
            : .no(abi == -EOPNOTSUPP ? "disabled at boot (add landlock to lsm=)" : describe(-abi))

        let pidfdResult = brw_pidfd_open(getpid(), 0)
        if pidfdResult >= 0 { close(pidfdResult) }
        let pidfd = check(pidfdResult, ok: "pidfd_open works")
        let clone3 = probes.checks[ChildProbes.clone3] ?? atSpawn

        var intoCgroup = Check.no("cgroup2 is not mounted")
        var cgroupKill = Check.no("cgroup2 is not mounted")
        var v2Controllers: [String] = []
        if let ownDir = layout.v2OwnDirectory {
            v2Controllers = ((try? FileIO.read(ownDir + "/cgroup.controllers")) ?? "")
                .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            intoCgroup = probes.checks[ChildProbes.intoCgroup] ?? atSpawn
            if FileIO.exists(ownDir + "/cgroup.kill") {
                cgroupKill = .yes("\(ownDir)/cgroup.kill present")
            } else if layout.v2OwnPath == "/" {
                // The root cgroup has no cgroup.kill; every child cgroup has it from 5.14 on.
                cgroupKill =
                    kernelAtLeast(release, 5, 14)
                    ? .yes("kernel \(release) >= 5.14 (the root cgroup itself has no cgroup.kill)")
                    : .no("kernel \(release) < 5.14")
            } else {
                cgroupKill = .no("\(ownDir)/cgroup.kill missing (kernel < 5.14?)")
            }
        }
        let v1Writable = layout.v1.filter { FileIO.isWritableDirectory($0.ownDirectory) }.flatMap(\.controllers)

        let systemd: Check =
            FileIO.isDirectory("/run/systemd/system")
            ? .yes("booted with systemd (/run/systemd/system)") : .no("not booted with systemd")
        let capLast = Int(((try? FileIO.read("/proc/sys/kernel/cap_last_cap")) ?? "").trimmed) ?? 40
        let maxUserNS = Int(((try? FileIO.read("/proc/sys/user/max_user_namespaces")) ?? "").trimmed)

        return HostFacts(
            kernelRelease: release, machine: machine, euid: geteuid(),
            rootInInitialUserNamespace: geteuid() == 0 && isIdentityMap(uidMap),
            namespaces: namespaces, namespacesTogether: together, maxUserNamespaces: maxUserNS,
            seccompFilter: seccompFilter, seccompUserNotification: notify,
            landlock: landlock, landlockABI: abi > 0 ? Int(abi) : nil,
            pidfd: pidfd, clone3: clone3, cloneIntoCgroup: intoCgroup, cgroupKill: cgroupKill,
            cgroups: layout, cgroupV2Controllers: v2Controllers, cgroupV1WritableControllers: v1Writable,
            systemd: systemd, capLastCap: capLast)
    }
}

/// The answers of the throwaway-child probes (a clone each), by name.
struct ChildProbes {
    var checks: [String: HostFacts.Check] = [:]
    /// Whether a probe failed for a passing reason (a namespace limit
    /// reached, memory, a signal): such answers are not kept.
    var transient = false

    static let together = "together"
    static let clone3 = "clone3"
    static let intoCgroup = "into-cgroup"
    static let cacheName = "host-probe"

    init() {}

    /// Clones a child for each probe (it exits at once).
    static func run(cgroupDirectory: String?) -> ChildProbes {
        var probes = ChildProbes()
        func record(_ name: String, _ result: Int32, ok: String) {
            probes.checks[name] = check(result, ok: ok)
            if [ENOSPC, EUSERS, EAGAIN, ENOMEM, EINTR].contains(-result) { probes.transient = true }
        }
        for kind in NamespaceKind.allCases {
            let flags = kind == .user ? kind.cloneFlag : kind.cloneFlag | NamespaceKind.user.cloneFlag
            record(kind.rawValue, brw_probe_clone(flags, 0, -1), ok: "created in a child (with a user namespace)")
        }
        let sandboxKinds: [NamespaceKind] = [.user, .pid, .mount, .ipc, .uts, .cgroup, .net]
        record(together, brw_probe_clone(sandboxKinds.reduce(0) { $0 | $1.cloneFlag }, 0, -1), ok: "all seven created in one clone")
        record(clone3, brw_probe_clone(0, 1, -1), ok: "clone3 with CLONE_PIDFD works")
        if let cgroupDirectory {
            let fd = open(cgroupDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd >= 0 {
                // The child is placed in the cgroup this process already occupies.
                record(intoCgroup, brw_probe_clone(0, 1, fd), ok: "child placed into \(cgroupDirectory)")
                close(fd)
            } else {
                probes.checks[intoCgroup] = .no("cannot open \(cgroupDirectory): \(describe(errno))")
                probes.transient = true
            }
        }
        return probes
    }

    /// Everything the answers depend on besides the kernel's code: the boot,
    /// this binary, who asks, from which cgroup, and every sysctl that
    /// limits or forbids new namespaces.
    static func cacheKey(release: String, uidMap: String, procSelfCgroup: String, cgroupDirectory: String?) -> String {
        let sysctls =
            NamespaceKind.allCases.map { "/proc/sys/user/max_\($0 == .mount ? "mnt" : $0.rawValue)_namespaces" } + [
                "/proc/sys/kernel/unprivileged_userns_clone", "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
                // This process's security label (an LSM policy decides on namespaces).
                "/proc/self/attr/current",
            ]
        let values = sysctls.map { path in "\(path)=\((try? FileIO.read(path))?.trimmed ?? "-")" }
        // What this process may do: its capabilities, no_new_privs, a filter of its own.
        let status = ((try? FileIO.read("/proc/self/status")) ?? "").split(separator: "\n").filter {
            $0.hasPrefix("CapEff:") || $0.hasPrefix("CapBnd:") || $0.hasPrefix("NoNewPrivs:") || $0.hasPrefix("Seccomp:")
        }
        let boot = (try? FileIO.read("/proc/sys/kernel/random/boot_id"))?.trimmed ?? "unknown-\(getpid())"
        return "host-probe 2|\(RunCache.binaryIdentity ?? "")|boot \(boot)|\(release)|euid \(geteuid())|uid_map \(uidMap)|cgroup \(procSelfCgroup)|"
            + "cgroup2 \(cgroupDirectory ?? "-")|\(status.joined(separator: " "))|" + values.joined(separator: "|")
    }

    /// One line a probe: name, 1 or 0, detail, tab-separated; nil when a
    /// detail cannot be written so (then nothing is kept).
    var encoded: [UInt8]? {
        var text = ""
        for (name, check) in checks.sorted(by: { $0.key < $1.key }) {
            guard !check.detail.contains(where: { $0 == "\t" || $0 == "\n" }) else { return nil }
            text += "\(name)\t\(check.available ? 1 : 0)\t\(check.detail)\n"
        }
        return Array(text.utf8)
    }

    /// The answers from `encoded`; nil unless every line is well formed and
    /// every namespace, `together` and `clone3` are there.
    init?(_ entry: [UInt8]) {
        for line in String(decoding: entry, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[1] == "1" || fields[1] == "0" else { return nil }
            checks[String(fields[0])] = HostFacts.Check(available: fields[1] == "1", detail: String(fields[2]))
        }
        let required = NamespaceKind.allCases.map(\.rawValue) + [Self.together, Self.clone3]
        guard required.allSatisfy({ checks[$0] != nil }) else { return nil }
    }
}

/// Whether a `uid_map` is the initial namespace's full identity map.
package func isIdentityMap(_ map: String) -> Bool {
    map.split(separator: "\n").map { $0.split(separator: " ") } == [["0", "0", "4294967295"]]
}

/// Whether a release such as "6.18.44-fc" is at least major.minor.
package func kernelAtLeast(_ release: String, _ major: Int, _ minor: Int) -> Bool {
    let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
    guard parts.count == 2 else { return false }
    return (parts[0], parts[1]) >= (major, minor)
}

/// "EPERM (Operation not permitted)" for an errno value.
package func describe(_ code: Int32) -> String {
    let err = Errno(rawValue: code)
    return "\(errnoName(code)) (\(err.description))"
}

private func check(_ result: Int32, ok: String) -> HostFacts.Check {
    result >= 0 ? .yes(ok) : .no(describe(-result))
}

extension String {
    package var trimmed: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
