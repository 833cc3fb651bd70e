package import BurrowProfile
package import BurrowSystem

/// Why no plan could be made for a command.
package struct PlanError: Error, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        /// The command or the profile cannot be planned.
        case plan
        /// The tool's trust does not allow the run: unsigned where
        /// signatures are required, a signature that does not verify, a
        /// level below the minimum, a request above its level's ceiling.
        case trust
        /// A file differs from the signed manifest (an anomaly).
        case mismatch(path: String)
    }

    package var description: String
    package var kind = Kind.plan

    package init(description: String, kind: Kind = .plan) {
        self.description = description
        self.kind = kind
    }
}

/// Compiles an effective profile, the host policy and the host probe into the
/// `LaunchPlan` for one command. Pure apart from reading the host file system
/// through `FileSystemView` (to find what the command needs to start).
package struct PlanCompiler: Sendable {
    package var policy: HostPolicy
    package var host: HostFacts
    package var fs: any FileSystemView
    /// The caller's environment (only whitelisted names are used).
    package var environment: [String: String]
    package var workingDirectory: String
    /// The host uid/gid leased for this sandbox (`burrow run`); nil shows the
    /// first id of the policy's range (`burrow dry-run`).
    package var sandboxID: UInt32?
    /// Runtimes and seccomp plans kept from earlier plans (nil: everything is found afresh).
    package var memo: CompileMemo?

    package init(policy: HostPolicy, host: HostFacts, fs: any FileSystemView, environment: [String: String], workingDirectory: String) {
        self.policy = policy
        self.host = host
        self.fs = fs
        self.environment = environment
        self.workingDirectory = workingDirectory
    }

    /// - Throws: `PlanError` when the command is missing, not granted by
    ///   `permissions.execute`, or the seccomp filter does not compile.
    /// - Parameter deadline: the request's own, when shorter than the
    ///   profile's max_execution_time (a clamp says so); it changes nothing
    ///   the kernel is told, so a sandbox built ahead still fits.
    package func compile(_ effective: EffectiveProfile, profileFiles: [String], argv: [String], deadline: Seconds? = nil) throws(PlanError) -> LaunchPlan {
        let profile = effective.profile
        let limits = effective.limits
        let level = profile.sandboxLevel
        let isolated = level != .none
        // Bytes first: what cannot reach execve as given is refused before anything is looked up.
        let environment = environmentEntries(profile)
        if let problem = ExecStrings.problem(argv: argv, environment: environment.map { ($0.name, $0.value) }) { throw PlanError(description: problem) }

        // What may run, and what it needs to start.
        let (runtime, command) = try resolveRuntime(profile, argv: argv)

        let reads = profile.filesystem.allReads(profile.permissions)
        let writes = profile.filesystem.allWrites(profile.permissions)
        var warnings: [String] = runtime.unmatched.map { "permissions.execute \"\($0)\" matches nothing on this host" }
        let workdir = (reads + writes).contains { $0.covers(workingDirectory) } ? workingDirectory : "/tmp"

        let uid = sandboxID ?? policy.sandbox.idRange.lowerBound
        let identity: IdentityPlan =
            isolated
            ? IdentityPlan(
                uid: uid, gid: uid, uidMap: [IDMapping(inside: uid, outside: uid, count: 1)],
                gidMap: [IDMapping(inside: uid, outside: uid, count: 1)], setgroups: .allow, supplementaryGroups: [],
                note: sandboxID == nil
                    ? "one host id per live sandbox from [sandbox] id_range \(policy.sandbox.idRange.lowerBound)-\(policy.sandbox.idRange.upperBound); the first is shown"
                    : "host id leased for this run from [sandbox] id_range \(policy.sandbox.idRange.lowerBound)-\(policy.sandbox.idRange.upperBound); setgroups stays allowed so the child can clear the groups it inherited"
            )
            : IdentityPlan(
                uid: host.euid, gid: host.euid, uidMap: [], gidMap: [], setgroups: .unchanged, supplementaryGroups: [],
                note: "sandbox level none: the caller's identity, with every capability dropped")

        var mounts: [MountEntry] = []
        if isolated {
            mounts = mountTable(profile: profile, limits: limits, runtime: runtime, identity: identity, warnings: &warnings)
        }

        var seccomp: SeccompPlan
        do {
            let key = CompileMemo.FilterKey(isolated: isolated, machine: host.machine, inputs: SeccompPolicy.inputs(of: profile))
            seccomp = try memo?.seccomp(key) { () throws(SeccompCompiler.Failure) in try seccompPlan(profile, isolated: isolated) } ?? seccompPlan(profile, isolated: isolated)
        } catch {
            throw PlanError(description: "the seccomp filter does not compile: \(error)")
        }
        // The filter does not change with them: the supervisor's answers do.
        seccomp.quietRefusals = try quietRefusals(profile, seccomp, warnings: &warnings)
        let executablesInSandbox = runtime.executables.sorted()
        let landlock =
            isolated
            ? LandlockPlan.make(
                hostABI: host.landlockABI, reads: readRulePaths(runtime: runtime, reads: reads), writes: writes.map(\.path) + ["/tmp"],
                executables: executablesInSandbox, devices: Self.devices.map { "/dev/" + $0 },
                networkAccess: profile.networkAccess.rawValue,
                proxyPort: profile.networkAccess == .restricted ? NetworkPlan.proxyPort : nil,
                isDirectory: { isDirectoryInSandbox($0, mounts: mounts) })
            : LandlockPlan(hostABI: host.landlockABI, abi: nil, handledFileSystem: [], handledNetwork: [], scoped: [], pathRules: [], portRules: [], notAvailable: [])
        let network = NetworkPlan.make(profile, level: level, limits: limits, policy: policy)

        warnings += riskWarnings(profile: profile, reads: reads, writes: writes, executables: executablesInSandbox)
        let exposure = ExposureReport.score(profile: profile, limits: limits, reads: reads, writes: writes, executables: executablesInSandbox)

        // The request's deadline, when it has one shorter than the tool's own, is the only limit it changes.
        var clamps = effective.clamps
        var inForce = limits
        if let deadline, deadline < limits.maxExecutionTime {
            clamps.append(Clamp(key: "resource_limits.max_execution_time", requested: "\(limits.maxExecutionTime)", effective: "\(deadline)", reason: "the request's timeoutSeconds"))
            inForce.maxExecutionTime = deadline
        }
        var cgroup = cgroupPlan(inForce)
        let supervised = cgroup.supervised
        cgroup.supervised = []
        return LaunchPlan(
            tool: profile.tool, profileFiles: profileFiles,
            spec: SandboxSpec(
                sandboxLevel: level, executable: command, workingDirectory: workdir, allowedExecutables: executablesInSandbox, namespaces: namespaces(profile),
                identity: identity, mounts: mounts, rlimits: rlimits(limits), cgroup: cgroup, capabilities: capabilityPlan(profile), seccomp: seccomp,
                landlock: landlock, network: network, limits: limits),
            exec: ExecRequest(argv: argv, environment: environment, deadline: inForce.maxExecutionTime),
            mcp: .make(profile, policy: policy),
            report: PlanReport(controls: controls(profile, limits: inForce, mounts: mounts), clamps: clamps, exposure: exposure, warnings: warnings, supervised: supervised))
    }

    // MARK: command

    /// The granted executables with what they need, and the command's path.
    private func resolveRuntime(_ profile: SecurityProfile, argv: [String]) throws(PlanError) -> (RuntimeResolver.Result, String) {
        let grants = profile.permissions.execute.map(\.text)
        func compute(_ fs: any FileSystemView) throws(PlanError) -> (RuntimeResolver.Result, String) {
            let resolver = RuntimeResolver(fs: fs, searchPath: policy.sandbox.execSearchPath)
            var runtime = RuntimeResolver.Result()
            for grant in grants {
                let found = resolver.expand(grant)
                if found.isEmpty { runtime.unmatched.append(grant) }
                for path in found { resolver.addExecutable(path, reason: "permissions.execute \"\(grant)\"", to: &runtime) }
            }
            return (runtime, try resolveCommand(argv, fs: fs, runtime: runtime))
        }
        // Stamps are taken from this host's paths: only answers about them can be kept.
        guard let memo, fs is LiveFileSystem else { return try compute(fs) }
        let key = CompileMemo.Key(grants: grants, searchPath: policy.sandbox.execSearchPath, command: argv.first ?? "", workingDirectory: workingDirectory)
        return try memo.runtime(key, fs: fs, compute: compute)
    }

    private func resolveCommand(_ argv: [String], fs: any FileSystemView, runtime: RuntimeResolver.Result) throws(PlanError) -> String {
        guard let first = argv.first, !first.isEmpty else { throw PlanError(description: "no command given: put it after '--'") }
        let candidate: String?
        if first.contains("/") {
            // A path is used as profile paths are: normalised, and never through '..'.
            let components = (first.hasPrefix("/") ? first : workingDirectory + "/" + first).split(separator: "/")
            guard !components.contains("..") else {
                throw PlanError(description: "command '\(first)': '..' is not allowed in a command path; give the command as an absolute path or a plain name")
            }
            candidate = "/" + components.filter { $0 != "." }.joined(separator: "/")
        } else {
            candidate = policy.sandbox.execSearchPath.map { $0 + "/" + first }.first { fs.kind($0) != nil }
        }
        guard let path = candidate, let final = fs.resolve(path)?.path, fs.kind(final) != nil else {
            throw PlanError(description: "command '\(first)' not found (searched \(first.contains("/") ? first : policy.sandbox.execSearchPath.joined(separator: ":")))")
        }
        guard runtime.executables.contains(final) else {
            let granted = runtime.executables.isEmpty ? "nothing" : runtime.executables.joined(separator: ", ")
            throw PlanError(description: "'\(first)' (\(final)) is not granted by permissions.execute; the profile allows: \(granted)")
        }
        return path
    }

    // MARK: namespaces

    private func namespaces(_ profile: SecurityProfile) -> [NamespacePlan] {
        guard profile.sandboxLevel != .none else { return [] }
        var kinds: [(NamespaceKind, String)] = [
            (.user, "unprivileged identity; capabilities confined to the sandbox"),
            (.pid, "sees and signals only its own processes"),
            (.mount, "its own file system view, built below"),
            (.ipc, "private System V and POSIX IPC"),
            (.uts, "private host name"),
            (.cgroup, "sees only its own cgroup"),
        ]
        if profile.networkAccess != .full {
            kinds.append((.net, profile.networkAccess == .none ? "loopback only: no route out" : "loopback only: egress through Burrow's proxy"))
        }
        return kinds.map { NamespacePlan(kind: $0.0, reason: $0.1) }
    }

    // MARK: mounts

    static let devices = ["null", "zero", "full", "random", "urandom"]

    private func mountTable(
        profile: SecurityProfile, limits: EffectiveLimits, runtime: RuntimeResolver.Result, identity: IdentityPlan,
        warnings: inout [String]
    ) -> [MountEntry] {
        var entries = [
            MountEntry(
                kind: .tmpfs, target: "/", options: MountOptions(readOnly: false, [.noSetuid, .noDevices], mode: 0o755, size: .mebibytes(1)), reason: "new root, made read-only once built (pivot_root)"
            )
        ]

        var links = runtime.rootLinks
        for name in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] where fs.kind("/" + name) == .symlink {
            if let target = fs.readLink("/" + name) { links["/" + name] = target }
        }

        let reads = profile.filesystem.allReads(profile.permissions)
        let writes = profile.filesystem.allWrites(profile.permissions)
        let executables = runtime.executables
        let grants = reads.map { ($0.path, false) } + writes.map { ($0.path, true) }

        var binds: [MountEntry] = []
        // Directories of libraries are bound whole. A directory of executables
        // only (/usr/bin) shows just the granted ones and the links to them:
        // a program that is not granted is absent (ENOENT), as a probe expects,
        // rather than present and refused (EACCES).
        let underGrant = { (dir: String) in grants.contains { isPath(dir, within: $0.0) } }
        let whole = runtime.directories.filter { runtime.libraryDirectories.contains($0) && !underGrant($0) }
        let runtimeDirs = whole.sorted().filter { dir in !whole.contains { $0 != dir && isPath(dir, within: $0) } }
        for dir in runtimeDirs {
            binds.append(
                MountEntry(kind: .bind, source: dir, target: dir, options: MountOptions(readOnly: true, [.noSetuid, .noDevices], recursive: true), reason: "runtime of the granted executables"))
        }
        let shown = { (path: String) in !underGrant(path) && !runtimeDirs.contains { isPath(path, within: $0) } }
        for file in executables where shown(file) {
            binds.append(
                MountEntry(kind: .bind, source: file, target: file, options: MountOptions(readOnly: true, [.noSetuid, .noDevices]), reason: "a granted executable (its directory shows only these)"))
        }
        for (link, target) in runtime.links where shown(link) {
            links[link] = target
        }
        for (path, writable) in grants {
            guard let kind = fs.kind(path) else {
                if fs.denied(path) {
                    // Compiled with a caller's identity, which cannot reach it:
                    // the bind stays in the plan, and opening it as the caller
                    // refuses the run (and shows in dry-run), naming the path.
                    let options = MountOptions(readOnly: !writable, [.noSetuid, .noDevices, .noExecute], recursive: true, idmap: true)
                    binds.append(MountEntry(kind: .bind, source: path, target: path, options: options, reason: "granted, but not reachable with the caller's rights"))
                } else {
                    warnings.append("\(path) does not exist on this host: nothing is mounted there")
                }
                continue
            }
            if kind == .symlink {
                // Recreate the link (unless a bind of its directory brings it
                // along); what it points to is visible only if granted too.
                let carried = grants.contains { $0.0 != path && isPath(path, within: $0.0) } || runtimeDirs.contains { isPath(path, within: $0) }
                if !carried, let target = fs.readLink(path) { links[path] = target }
                if let final = fs.resolve(path)?.path, !grants.contains(where: { isPath(final, within: $0.0) }) {
                    warnings.append("\(path) is a symlink to \(final), which is not granted: the link will dangle")
                }
                continue
            }
            if !writable && runtimeDirs.contains(where: { isPath(path, within: $0) }) { continue }
            if !writable && writes.contains(where: { isPath(path, within: $0.path) }) { continue }
            let exec = executables.contains { isPath($0, within: path) }
            // idmap: the owner of the granted path appears as the sandbox's uid/gid
            // (so git trusts the repository and writes keep the host owner).
            let options = MountOptions(readOnly: !writable, writable && !exec ? [.noSetuid, .noDevices, .noExecute] : [.noSetuid, .noDevices], recursive: true, idmap: true)
            binds.append(MountEntry(kind: .bind, source: path, target: path, options: options, reason: writable ? "write grant" : "read grant"))
        }
        binds = binds.map { (depth: componentCount($0.target), entry: $0) }.sorted { ($0.depth, $0.entry.target) < ($1.depth, $1.entry.target) }.map(\.entry)
        entries += links.sorted { $0.key < $1.key }.map { MountEntry(kind: .symlink, source: $0.value, target: $0.key, reason: "the same symlink as on the host") }
        entries += binds

        entries.append(
            MountEntry(
                kind: .proc, source: "proc", target: "/proc", options: MountOptions(readOnly: false, [.noSetuid, .noDevices, .noExecute], processesOnly: true),
                reason: "this PID namespace's processes only; no /proc/sys, kcore or sysrq-trigger"))
        entries.append(
            MountEntry(
                kind: .tmpfs, source: "tmpfs", target: "/dev", options: MountOptions(readOnly: false, [.noSetuid, .noExecute], mode: 0o755, size: ByteSize(bytes: 64 << 10)), reason: "minimal /dev"))
        for device in Self.devices {
            entries.append(
                MountEntry(
                    kind: .bind, source: "/dev/" + device, target: "/dev/" + device, options: MountOptions(readOnly: false, [.noSetuid, .noExecute]),
                    reason: "device node (no mknod in a user namespace)"))
        }
        for (name, target) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
            entries.append(MountEntry(kind: .symlink, source: target, target: "/dev/" + name, reason: "standard /dev link"))
        }
        let tmpExec = executables.contains { isPath($0, within: "/tmp") }
        entries.append(
            MountEntry(
                kind: .tmpfs, source: "tmpfs", target: "/tmp",
                options: MountOptions(
                    readOnly: false, tmpExec ? [.noSetuid, .noDevices] : [.noSetuid, .noDevices, .noExecute], mode: 0o1777, size: limits.scratchSize,
                    inodes: max(1024, limits.scratchSize.bytes / 16384)),
                reason: "scratch space (filesystem_access.scratch_size)"))
        // Files every program expects in /etc, written for the sandbox unless
        // a grant brings the host's (or a path below one).
        for (path, content, reason) in etcFiles(uid: identity.uid) where !(reads + writes).contains(where: { isPath(path, within: $0.path) || isPath($0.path, within: path) }) {
            entries.append(MountEntry(kind: .file, target: path, options: MountOptions(mode: 0o644), content: content, reason: reason))
        }
        for blocked in profile.filesystem.blockedPaths {
            guard binds.contains(where: { isPath(blocked.path, within: $0.target) }) else { continue }
            switch fs.kind(blocked.path) {
            case .directory:
                entries.append(
                    MountEntry(
                        kind: .mask, source: "tmpfs", target: blocked.path, options: MountOptions(readOnly: true, [.noSetuid, .noDevices, .noExecute], mode: 0, size: ByteSize(bytes: 0)),
                        reason: "blocked path (directory)"))
            case .none:
                continue
            default:
                entries.append(
                    MountEntry(kind: .mask, source: "/dev/null", target: blocked.path, options: MountOptions(readOnly: true, [.noSetuid, .noDevices, .noExecute]), reason: "blocked path (file)"))
            }
        }
        // Parents before children: a grant below /tmp or /dev goes on top of
        // the fresh tmpfs there, not under it (the sort is stable otherwise).
        // Each depth is counted once, not in every comparison (a plan has
        // hundreds of entries: the comparisons' splits were most of its cost).
        let root = entries.removeFirst()
        let keyed = entries.enumerated().map { (depth: componentCount($0.element.target), offset: $0.offset, entry: $0.element) }
        entries = [root] + keyed.sorted { ($0.depth, $0.offset) < ($1.depth, $1.offset) }.map(\.entry)
        entries.append(MountEntry(kind: .remount, target: "/", options: MountOptions(readOnly: true, [.noSetuid, .noDevices]), reason: "the new root is complete"))
        return entries
    }

    /// Whether `path` is a directory as the sandbox sees it (Landlock rules are
    /// opened there): what Burrow mounts or creates at it, else the host's entry.
    private func isDirectoryInSandbox(_ path: String, mounts: [MountEntry]) -> Bool {
        if let mount = mounts.last(where: { $0.target == path && $0.kind != .remount }) {
            switch mount.kind {
            case .tmpfs, .proc: return true
            case .mask: return mount.source == "tmpfs"
            case .file, .symlink: return false
            case .bind, .remount: break
            }
        }
        return fs.resolve(path).map { fs.kind($0.path) == .directory } ?? false
    }

    /// The files written into the sandbox's /etc, with why.
    private func etcFiles(uid u: UInt32) -> [(path: String, content: String, reason: String)] {
        let name = SandboxSpec.hostName
        return [
            ("/etc/passwd", "tool:x:\(u):\(u):sandboxed tool:/tmp:/sbin/nologin\n", "the tool's own user, so getpwuid() works"),
            ("/etc/group", "tool:x:\(u):\n", "the tool's own group"),
            ("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\t\(name)\n::1\tlocalhost ip6-localhost ip6-loopback\n", "localhost and the sandbox's host name resolve"),
            ("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n", "names are looked up in the files above before DNS"),
        ]
    }

    /// Read rules for Landlock: granted reads plus the runtime directories, and
    /// /proc; writes get their own rules.
    private func readRulePaths(runtime: RuntimeResolver.Result, reads: [PathPattern]) -> [String] {
        let dirs = runtime.directories.filter { dir in !runtime.directories.contains { $0 != dir && isPath(dir, within: $0) } }
        // A rule is opened by path and would follow a symlink: symlink grants
        // get no rule of their own (their targets must be granted).
        let all = Set(dirs).union(reads.map(\.path).filter { fs.kind($0) != .symlink }).union(["/proc"] + etcFiles(uid: 0).map(\.path))
        return all.sorted()
    }

    // MARK: environment, rlimits, cgroups, capabilities

    private func environmentEntries(_ profile: SecurityProfile) -> [EnvironmentEntry] {
        var entries = [
            EnvironmentEntry(name: "PATH", value: policy.sandbox.execSearchPath.joined(separator: ":"), source: .burrow),
            EnvironmentEntry(name: "HOME", value: "/tmp", source: .burrow),
            EnvironmentEntry(name: "TMPDIR", value: "/tmp", source: .burrow),
        ]
        if profile.networkAccess == .restricted {
            let proxy = "http://127.0.0.1:\(NetworkPlan.proxyPort)"
            for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
                entries.append(EnvironmentEntry(name: name, value: name.lowercased() == "all_proxy" ? "socks5h://127.0.0.1:\(NetworkPlan.proxyPort)" : proxy, source: .burrow))
            }
            // The sandbox's own loopback is reached directly, unless the
            // profile grants `localhost`: then that name means the host's
            // loopback, which only the proxy reaches.
            if !profile.permissions.network.contains(where: { $0.host == .name(EgressRules.localhost) }) {
                entries += [EnvironmentEntry(name: "NO_PROXY", value: "localhost", source: .burrow), EnvironmentEntry(name: "no_proxy", value: "localhost", source: .burrow)]
            }
        }
        let reserved = Set(entries.map(\.name))
        for (name, value) in environment.sorted(by: { $0.key < $1.key })
        where !reserved.contains(name) && profile.envWhitelist.contains(where: { $0.matches(name) }) {
            entries.append(EnvironmentEntry(name: name, value: value, source: .caller))
        }
        return entries
    }

    private func rlimits(_ limits: EffectiveLimits) -> [RlimitEntry] {
        // One second above the budget: the supervisor, which reads the tree's
        // CPU every cpuCheckMilliseconds and records the exact limit, acts
        // first; SIGXCPU only ends a process the supervisor failed to stop.
        let cpu = limits.maxCpuTime.wholeSecondsRoundedUp + 1
        return [
            RlimitEntry(
                resource: .cpu, soft: cpu, hard: cpu + 1,
                reason: "max_cpu_time backstop per process, a second above the budget so the supervisor (which checks the whole tree) acts first"),
            RlimitEntry(resource: .fsize, soft: limits.maxFileSize.bytes, hard: limits.maxFileSize.bytes, reason: "max_file_size (SIGXFSZ)"),
            RlimitEntry(resource: .nofile, soft: UInt64(limits.maxOpenFiles), hard: UInt64(limits.maxOpenFiles), reason: "max_open_files"),
            RlimitEntry(
                resource: .nproc, soft: UInt64(limits.maxProcesses) + 1, hard: UInt64(limits.maxProcesses) + 1,
                reason: "max_processes backstop, one above pids.max so the cgroup (which records the hit) acts first; the sandbox's uid is its own"),
            RlimitEntry(resource: .core, soft: 0, hard: 0, reason: "no core dumps (they could hold secrets)"),
        ]
    }

    /// Where this host's invocation cgroups live, with the policy's ceilings as
    /// limits: what a supervisor that is starting sweeps (`Runner.recover`).
    package func hostCgroupPlan() -> CgroupPlan {
        cgroupPlan(policy.ceilings)
    }

    private func cgroupPlan(_ limits: EffectiveLimits) -> CgroupPlan {
        let memory = "\(limits.maxMemory.bytes)"
        let quota = limits.cpuQuotaPercent * 1000  // microseconds per 100 ms period
        let supervised = [
            "max_cpu_time \(limits.maxCpuTime): CPU budget of the whole tree, checked every \(PlanCompiler.cpuCheckMilliseconds) ms by the supervisor, then the tree is killed",
            "max_execution_time \(limits.maxExecutionTime): wall-clock deadline, then the tree is killed (stopped tasks too)",
            "scratch_size \(limits.scratchSize): /tmp tmpfs size and inodes, a full scratch (ENOSPC) is reported",
            limits.minFreeDisk.map {
                "min_free_disk \($0): a write grant's file system with less free (statvfs, every \(PlanCompiler.cpuCheckMilliseconds) ms) stops the run (host policy)"
            } ?? "min_free_disk off (host policy): a write grant's file system may fill up",
            limits.maxDiskWrite.map {
                "max_disk_write \($0): project quota hard limit on each write grant's project for the run (EDQUOT past it), usage checked every \(PlanCompiler.cpuCheckMilliseconds) ms, the run stopped at the budget"
            },
            "after the tool: every task left is killed, the cgroup removed once empty",
        ].compactMap { $0 }
        switch host.cgroupBackend?.version {
        case 2:
            var writes = [
                CgroupWrite(file: "memory.max", value: memory, reason: "max_memory (evidence: memory.events oom_kill)"),
                CgroupWrite(file: "memory.swap.max", value: "0", reason: "no swap: the memory limit is the whole budget"),
                CgroupWrite(file: "memory.oom.group", value: "1", reason: "an OOM kill takes the whole tree"),
                CgroupWrite(file: "pids.max", value: "\(limits.maxProcesses)", reason: "max_processes, threads included (evidence: pids.events max)"),
            ]
            if quota > 0 { writes.append(CgroupWrite(file: "cpu.max", value: "\(quota) 100000", reason: "CPU bandwidth: \(limits.cpuQuotaPercent)% of one CPU (host policy cpu_quota_percent)")) }
            return CgroupPlan(
                version: 2, path: "tools/<invocation-id> beneath Burrow's base",
                directories: host.cgroups.v2OwnDirectory.map { ["cgroup2": $0] } ?? [:], controllers: Self.v2Controllers,
                setup: [
                    "base: burrow/ when Burrow's own cgroup is the root, the parent when it is …/supervisor, else the own cgroup (the supervisor moves into supervisor/ first; refused when other processes share it)",
                    "enable \(Self.v2Controllers.joined(separator: " ")) in the base's and tools/'s cgroup.subtree_control",
                    "sweep: invocation cgroups whose supervisor is gone are killed and removed before a run",
                ],
                writes: writes,
                supervised: supervised + ["placement: clone3(CLONE_INTO_CGROUP): the child is born in its cgroup", "kill: cgroup.kill, then wait for populated 0 in cgroup.events"])
        case 1:
            var controllers = ["memory", "pids", "cpuacct", "freezer"]
            var writes = [
                CgroupWrite(file: "memory/memory.limit_in_bytes", value: memory, reason: "max_memory (evidence: memory.oom_control oom_kill)"),
                CgroupWrite(file: "memory/memory.memsw.limit_in_bytes", value: memory, reason: "no swap beyond the limit (refused without swap accounting while swap is on)"),
                CgroupWrite(file: "pids/pids.max", value: "\(limits.maxProcesses)", reason: "max_processes (evidence: pids.events max)"),
                CgroupWrite(file: "cpuacct/cpuacct.usage", value: "0", reason: "CPU accounting for the budget"),
            ]
            if quota > 0 {
                controllers.append("cpu")
                writes += [
                    CgroupWrite(file: "cpu/cpu.cfs_period_us", value: "100000", reason: "CPU bandwidth period"),
                    CgroupWrite(file: "cpu/cpu.cfs_quota_us", value: "\(quota)", reason: "CPU bandwidth: \(limits.cpuQuotaPercent)% of one CPU (host policy cpu_quota_percent)"),
                ]
            }
            var directories: [String: String] = [:]
            for controller in controllers {
                directories[controller] = host.cgroups.v1Hierarchy(for: controller)?.ownDirectory
            }
            return CgroupPlan(
                version: 1, path: "burrow/tools/<invocation-id> in each v1 hierarchy", directories: directories, controllers: controllers.sorted(),
                setup: ["sweep: invocation cgroups whose supervisor is gone are killed and removed before a run"],
                writes: writes,
                supervised: supervised + ["placement: the child joins each hierarchy before it starts (cgroup.procs)", "kill: freezer FROZEN, SIGKILL every task, THAWED"])
        default:
            return CgroupPlan(version: 0, path: "", directories: [:], controllers: [], setup: [], writes: [], supervised: supervised)
        }
    }

    /// The cgroup v2 controllers every invocation gets.
    package static let v2Controllers = ["cpu", "memory", "pids"]
    /// How often the supervisor reads the tree's CPU time.
    package static let cpuCheckMilliseconds = 50

    private func capabilityPlan(_ profile: SecurityProfile) -> CapabilityPlan {
        let all = Capability.all(lastCap: host.capLastCap)
        // Validation admits only names of the keepable set; one this host lacks is not kept.
        let kept = Set(profile.permissions.capabilities.compactMap { Capability(name: $0) }).intersection(all).sorted()
        return CapabilityPlan(
            kept: kept, dropped: all.filter { !kept.contains($0) },
            securebits: [.noRoot, .noRootLocked, .noSetuidFixup, .noSetuidFixupLocked, .keepCapsLocked, .noCapAmbientRaise, .noCapAmbientRaiseLocked],
            noNewPrivileges: true)
    }

    // MARK: seccomp

    private func seccompPlan(_ profile: SecurityProfile, isolated: Bool) throws(SeccompCompiler.Failure) -> SeccompPlan {
        guard isolated else {
            return SeccompPlan(
                architecture: host.machine, badArchitectureAction: .allow, defaultAction: .allow, allowed: [], rules: [],
                unknownToLibseccomp: [], instructions: 0, bpf: BPFProgram(bytes: []), reporting: "none: sandbox level none loads no filter")
        }
        let (allowed, rules) = SeccompPolicy.rules(for: profile)
        let defaultAction = SeccompAction.notify(errno: SeccompPolicy.ENOSYS)
        let compiled = try SeccompCompiler.compile(allowed: allowed, rules: rules, defaultAction: defaultAction, badArchAction: .killProcess)
        return SeccompPlan(
            architecture: host.machine, badArchitectureAction: .killProcess, defaultAction: defaultAction,
            allowed: allowed.filter { !compiled.unknown.contains($0) }, rules: rules.filter { !compiled.unknown.contains($0.syscall) },
            unknownToLibseccomp: compiled.unknown, instructions: compiled.bpf.count / 8, bpf: BPFProgram(bytes: compiled.bpf),
            reporting: "user notification: the supervisor records a SecurityViolation naming each refused call, then answers with the errno shown")
    }

    /// The profile's quiet refusals, each naming a call this host's libseccomp
    /// knows (a misspelt name would quiet nothing, so it is refused); one the
    /// plan allows outright is kept with a warning, since it never stops.
    private func quietRefusals(_ profile: SecurityProfile, _ plan: SeccompPlan, warnings: inout [String]) throws(PlanError) -> [QuietRefusal] {
        var quiet: [QuietRefusal] = []
        for q in profile.permissions.quietRefusals {
            if let why = SeccompPolicy.neverQuiet[q.syscall] {
                throw PlanError(description: "permissions.quiet_refusals: '\(q.syscall)' is always reported (\(why))")
            }
            switch SeccompResponder.lookup(q.syscall) {
            case .unknown:
                throw PlanError(description: "permissions.quiet_refusals: '\(q.syscall)' is not a system call")
            case .notOnThisArchitecture:
                // vfork on aarch64: nothing to quiet here, the profile is still good elsewhere.
                warnings.append("permissions.quiet_refusals \"\(q)\": \(host.machine) has no such system call")
                continue
            case .number:
                break
            }
            if plan.allowed.contains(q.syscall) {
                warnings.append("permissions.quiet_refusals \"\(q)\": this plan allows \(q.syscall), so it is never refused")
            }
            quiet.append(q)
        }
        return quiet
    }

    // MARK: controls and warnings

    private func controls(_ profile: SecurityProfile, limits: EffectiveLimits, mounts: [MountEntry]) -> [ControlStatus] {
        var rows: [ControlStatus] = []
        func row(_ control: Control, _ requested: String, _ check: HostFacts.Check) {
            rows.append(ControlStatus(control: control, requested: requested, enforceable: check.available, detail: check.detail))
        }
        let level = profile.sandboxLevel
        if level == .vm {
            row(.sandboxLevelVM, "virtual machine", .no("no VM runtime is configured on this host"))
        }
        row(
            .privileges, "root in the initial user namespace (to map sandbox ids)",
            host.rootInInitialUserNamespace ? .yes("euid 0, full uid_map") : .no("euid \(host.euid) or not the initial user namespace: run as root or through burrowd"))
        row(.rlimits, "RLIMIT_CPU, FSIZE, NOFILE, NPROC, CORE", .yes("setrlimit in the child"))
        row(.noNewPrivileges, "PR_SET_NO_NEW_PRIVS", .yes("prctl in the child"))
        row(.capabilityDrop, "keep \(profile.permissions.capabilities.isEmpty ? "none" : profile.permissions.capabilities.joined(separator: ","))", .yes("cap_last_cap \(host.capLastCap)"))
        if level != .none {
            for ns in namespaces(profile) {
                row(.namespace(ns.kind), ns.cloneFlag, host.namespaces[ns.kind] ?? .no("not probed"))
            }
            row(.namespacesTogether, "one clone with all of them", host.namespacesTogether)
            row(.seccompFilter, "allowlist, kill on foreign architectures", host.seccompFilter)
            row(.seccompUserNotification, "report every refused call", host.seccompUserNotification)
            row(.landlock, "file rules (ABI >= 1)", host.landlock)
            row(.pidfd, "supervise through a pidfd", host.pidfd)
        }
        let backend = host.cgroupBackend
        let controllers = backend?.controllers ?? []
        let where_ = backend.map { "cgroup v\($0.version): \($0.controllers.joined(separator: ", "))" } ?? "no cgroup controller usable beneath Burrow's own cgroup"
        row(.memoryLimit, "\(limits.maxMemory) for the whole tree", controllers.contains("memory") ? .yes(where_) : .no(where_))
        row(.processLimit, "\(limits.maxProcesses) tasks for the whole tree", controllers.contains("pids") ? .yes(where_) : .no(where_))
        let cpuAccounting = backend?.version == 2 ? controllers.contains("cpu") : controllers.contains("cpuacct")
        row(.cpuTimeBudget, "\(limits.maxCpuTime) for the whole tree", cpuAccounting ? .yes(where_) : .no(where_))
        if limits.cpuQuotaPercent > 0 {
            row(.cpuBandwidth, "\(limits.cpuQuotaPercent)% of one CPU for the whole tree", controllers.contains("cpu") ? .yes(where_) : .no(where_))
        }
        switch backend?.version {
        case 2:
            row(.cgroupPlacement, "born in its cgroup (clone3 CLONE_INTO_CGROUP)", host.cloneIntoCgroup)
            row(.treeKill, "cgroup.kill (stopped tasks and racing forks too)", host.cgroupKill)
        case 1:
            row(.cgroupPlacement, "joins its cgroups before it starts", .yes("cgroup.procs while the child waits"))
            row(.treeKill, "freeze, kill, thaw", controllers.contains("freezer") ? .yes(where_) : .no(where_))
        default:
            break
        }
        row(.executionDeadline, "\(limits.maxExecutionTime) wall clock", .yes("supervisor timer"))
        if profile.networkAccess == .restricted {
            row(.networkEgressProxy, "only \(profile.permissions.network.map(\.description).joined(separator: ", "))", egressSupport(level))
        }
        if let budget = limits.maxDiskWrite {
            row(.diskWriteBudget, "\(budget) added under the write grants", diskWriteSupport(level, mounts))
        }
        return rows
    }

    /// A disk write budget needs project quotas under every write grant: a
    /// grant without them could take any number of bytes.
    private func diskWriteSupport(_ level: SandboxLevel, _ mounts: [MountEntry]) -> HostFacts.Check {
        guard level != .none else { return .no("sandbox level none has no mount namespace: the tool can write wherever its caller can") }
        let devices = Set(Self.devices.map { "/dev/" + $0 })
        if let device = mounts.first(where: { $0.kind == .bind && $0.options.readOnly == false && ($0.source.map { $0.hasPrefix("/dev/") && !devices.contains($0) } ?? false) }) {
            return .no("\(device.source ?? "") is a write grant under /dev, which project quotas cannot bound")
        }
        let sources = mounts.writeGrantSources
        guard !sources.isEmpty else { return .yes("no host write grant: the tool can add nothing to the host's disks") }
        var found: [String] = []
        for path in sources {
            let check = fs.projectQuota(path)
            guard check.available else { return check }
            found.append(check.detail)
        }
        return .yes(found.joined(separator: "; ") + "; a project's hard limit set to its usage plus the budget for the run, EDQUOT past it")
    }

    /// The egress proxy needs the sandbox's own network namespace: without it
    /// the tool would share the host's routes and could ignore the proxy.
    private func egressSupport(_ level: SandboxLevel) -> HostFacts.Check {
        guard level != .none else {
            return .no("sandbox level none has no network namespace, so the tool could bypass the proxy: use level process or container")
        }
        let net = host.namespaces[.net] ?? .no("not probed")
        guard net.available else { return .no("no network namespace on this host: \(net.detail)") }
        return .yes("supervisor-side proxy listening on the sandbox's loopback, names resolved outside the sandbox")
    }

    private func riskWarnings(profile: SecurityProfile, reads: [PathPattern], writes: [PathPattern], executables: [String]) -> [String] {
        var out: [String] = []
        for path in executables {
            let name = String(path.split(separator: "/").last ?? "")
            if ExposureReport.isInterpreter(name) {
                out.append("execute grants the interpreter \(path): the tool can run any code it can read or write")
            }
        }
        for w in writes where ExposureReport.isBroadWrite(w.path) {
            out.append("write access to \(w.path): system or home locations should not be writable by a tool")
        }
        if profile.networkAccess == .full { out.append("full network access: the tool can reach any host, including this host's services") }
        for r in reads where ExposureReport.exposesSecret(r.path, blocked: profile.filesystem.blockedPaths) {
            out.append("\(r.path) is readable and holds or is a secret-looking location: block the secrets or narrow the grant")
        }
        return out
    }
}

extension PlanCompiler {
    /// libseccomp's pseudo-code listing of the filter this profile compiles to.
    package func seccompListing(_ effective: EffectiveProfile) -> String? {
        guard effective.profile.sandboxLevel != .none else { return nil }
        let (allowed, rules) = SeccompPolicy.rules(for: effective.profile)
        return try? SeccompCompiler.compile(
            allowed: allowed, rules: rules, defaultAction: .notify(errno: SeccompPolicy.ENOSYS), badArchAction: .killProcess,
            listing: true
        ).pfc
    }
}
