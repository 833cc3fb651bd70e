import BurrowPolicy
import BurrowProfile
import BurrowSystem
import CBurrowChild
package import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Why a run could not start or be supervised.
package enum RunError: Error, Sendable, CustomStringConvertible {
    /// The plan cannot be executed here (a control it asks for is not enforceable).
    case refused(String)
    /// Preparing the child's plan failed (before clone).
    case preparation(String)
    /// A step of the child failed: its stage and errno.
    case spawn(stage: ChildStage, errno: Errno, detail: String)
    case supervision(String)

    /// The failure's stable name: ToolFailed's `reason`, and the API's
    /// error code of that name (whose table gives `burrow run`'s exit
    /// status, in the container convention: 127 the command was not found,
    /// 126 it could not be executed, 125 anything else).
    package var reason: String {
        switch self {
        case .refused: "refused"
        case .preparation: "preparation_failed"
        case .spawn(.exec, let errno, _): errno == .noSuchFileOrDirectory ? "not_found" : "not_executable"
        case .spawn: "spawn_failed"
        case .supervision: "supervision_failed"
        }
    }

    package var description: String {
        switch self {
        case .refused(let why): "refusing to run: \(why)"
        case .preparation(let why): why
        case .spawn(let stage, let errno, let detail):
            "the sandbox failed while \(stage.summary): \(errnoName(errno.rawValue)) (\(errno))\(detail.isEmpty ? "" : ": " + detail)"
        case .supervision(let why): why
        }
    }
}

/// A started sandbox: its init (or the tool itself without a PID namespace),
/// reached only through its pidfd.
final class Sandbox {
    let pidfd: FileDescriptor
    /// The host pid of the sandbox's first process, for /proc paths while it cannot be reaped.
    let pid: pid_t
    /// Seccomp user-notification listener of the tool, if it has a filter.
    private(set) var listener: FileDescriptor?
    /// The sandbox's scratch tmpfs (its /tmp), opened from outside while the
    /// tool waited at the handshake, before it could fill it and end: nil
    /// without one, or the error of that open.
    private var scratchOpened: Result<FileDescriptor, Errno>?
    /// Read end of init's status pipe: the tool's wait status when it ends.
    /// nil without an init (no PID namespace: sandbox level none).
    let status: FileDescriptor?
    /// Nanoseconds from clone to execve; for a sandbox built ahead, from its
    /// release (the 'X' message) to execve.
    private(set) var spawnNanoseconds: UInt64 = 0
    /// Plan rows applied differently on this host, and why.
    private(set) var notes: [String]
    /// The report socket until the tool has exec'd (a held sandbox waits on it).
    private var channel: FileDescriptor?
    private let plan: LaunchPlan
    private var started: UInt64

    private init(plan: LaunchPlan, pidfd: FileDescriptor, pid: pid_t, channel: FileDescriptor, status: FileDescriptor?, started: UInt64, notes: [String]) {
        self.plan = plan
        self.notes = notes
        self.pidfd = pidfd
        self.pid = pid
        self.channel = channel
        self.status = status
        self.started = started
    }

    deinit {
        try? pidfd.close()
        try? listener?.close()
        if case .success(let fd) = scratchOpened { try? fd.close() }
        try? status?.close()
        try? channel?.close()
    }

    /// How long the child may take from clone to execve before it is killed.
    static let setupTimeoutMilliseconds: Int32 = 10_000

    /// Spawns `plan` and returns once the tool has exec'd, or with `hold`,
    /// once it waits fully built for `release`.
    ///
    /// NOTE: the sandbox's parent-death signal fires when its parent *thread*
    /// exits (prctl(2), PR_SET_PDEATHSIG). `burrow run` clones from its main
    /// thread; burrowd through `Spawner`, whose sandboxes' parent is a thread
    /// parked for burrowd's whole life.
    /// - Throws: `RunError.spawn` naming the child's failed stage and errno.
    /// - Parameters:
    ///   - cgroup: a cgroup2 directory descriptor the child is born in (CLONE_INTO_CGROUP).
    ///   - cgroupTasks: v1 `tasks` files the child joins itself through.
    ///   - stdio: descriptors that become the tool's 0, 1 and 2 (nil: inherited).
    ///   - spawner: clones through burrow-spawner (nil: in process).
    ///   - network: a network namespace prepared by the supervisor (egress proxy) to clone into.
    ///   - hold: build everything, then wait at the handshake for the argv and environment.
    ///   - beforeRelease: what must be done before the tool may execve (its
    ///     ToolInvoked made durable). It runs while the child builds the
    ///     sandbox, since the child stops at the handshake before execve;
    ///     without that stop (no seccomp filter), before the clone. When it
    ///     throws, the sandbox is killed unused.
    static func launch(
        _ plan: LaunchPlan, cgroup: Int32? = nil, cgroupTasks: [Int32] = [], stdio: [FileDescriptor]? = nil, spawner: Spawner? = nil,
        network: FileDescriptor? = nil, hold: Bool = false, beforeRelease: (() throws(RunError) -> Void)? = nil
    ) throws(RunError) -> Sandbox {
        let childPlan = try ChildPlan(plan, cgroup: cgroup)
        childPlan.setCgroupTasks(cgroupTasks)
        if let network { childPlan.setNetworkNamespace(network) }
        if hold { childPlan.holdExec() }
        // A child that will not stop before execve runs the tool unchecked: the gate goes first.
        let stopsBeforeExec = childPlan.stopsBeforeExec
        if !stopsBeforeExec { try beforeRelease?() }
        let (parentSock, childSock): (FileDescriptor, FileDescriptor)
        let statusPipe: (FileDescriptor, FileDescriptor)?
        do {
            (parentSock, childSock) = try Kernel.socketPair()
            statusPipe = childPlan.raw.use_init == 1 ? try Kernel.pipe() : nil
        } catch {
            throw .preparation("cannot create the child's channels: \(error)")
        }
        if hold {
            // The 'X' message is one datagram, bounded by the send buffer: a
            // socket that cannot take the largest one is no sandbox to hold.
            var size = Int32(2 * BRW_EXEC_MESSAGE_MAX)
            guard setsockopt(parentSock.rawValue, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                let e = errno
                try? parentSock.close()
                try? childSock.close()
                try? statusPipe?.0.close()
                try? statusPipe?.1.close()
                throw .preparation("cannot size the held sandbox's socket for its argv (SO_SNDBUFFORCE): \(errnoName(e))")
            }
        }
        childPlan.setChannels(sock: childSock, status: statusPipe?.1, stdio: stdio)

        let start = Kernel.monotonicNanoseconds()
        var pid: pid_t = 0
        var rawPidfd: Int32 = -1
        var notes = childPlan.notes
        // Through burrow-spawner when there is one (burrowd); in process when
        // there is none or it has gone away.
        let rc = withUnsafePointer(to: childPlan.raw) { raw in
            if let spawner {
                switch spawner.spawn(raw) {
                case .spawned(let rc, let p, let fd, let preparedNetwork):
                    pid = p
                    rawPidfd = fd
                    if rc == 0 && preparedNetwork {
                        notes.append(
                            "net namespace: prepared ahead by burrow-spawner (empty, loopback up, owned by the host's user namespace, so the tool cannot reconfigure it) and used by this sandbox only")
                    }
                    return rc
                case .unavailable(let why):
                    notes.append("cloned in process: \(why)")
                }
            }
            return brw_spawn(raw, &pid, &rawPidfd)
        }
        try? childSock.close()
        try? statusPipe?.1.close()
        childPlan.closeDescriptors()
        guard rc == 0 else {
            try? parentSock.close()
            try? statusPipe?.0.close()
            throw .preparation("clone3 failed: \(errnoName(rc)) (\(Errno(rawValue: rc)))")
        }
        let sandbox = Sandbox(
            plan: plan, pidfd: FileDescriptor(rawValue: rawPidfd), pid: pid, channel: parentSock, status: statusPipe?.0, started: start, notes: notes)
        do throws(RunError) {
            if !plan.identity.uidMap.isEmpty { try writeIDMaps(plan.identity, pid: pid) }
            guard (try? parentSock.writeAll([UInt8(ascii: "G")])) != nil else {
                throw .spawn(stage: .waitParent, errno: .brokenPipe, detail: "the child went away before it started")
            }
            // The child builds its sandbox meanwhile, and waits at the handshake.
            if stopsBeforeExec, !hold { try beforeRelease?() }
            try sandbox.handshake(hold: hold)
        } catch {
            sandbox.discard()
            throw error
        }
        return sandbox
    }

    /// Whether the tool still waits at the handshake for `release`.
    var isHeld: Bool { channel != nil && spawnNanoseconds == 0 }

    /// Whether the sandbox's first process has ended (a held one should not have).
    var hasEnded: Bool {
        var entry = pollfd(fd: pidfd.rawValue, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) != 0
    }

    /// Hands a held tool the argv and environment to execve, and returns
    /// once it has (or throws the step that failed, the sandbox killed).
    func release(argv: [String], environment: [String]) throws(RunError) {
        guard isHeld, let channel else { throw .preparation("the sandbox is not waiting for a request") }
        guard let message = Self.execMessage(argv: argv, environment: environment) else {
            throw .preparation("the argv and environment do not fit a sandbox built ahead (at most \(BRW_EXEC_MESSAGE_MAX) bytes, no NUL)")
        }
        started = Kernel.monotonicNanoseconds()
        do throws(RunError) {
            guard (try? channel.writeAll(message)) != nil else { throw .spawn(stage: .handshake, errno: .brokenPipe, detail: "the held tool went away") }
            try handshake(hold: false)
        } catch {
            discard()
            throw error
        }
    }

    /// The 'X' message that hands a held tool its argv and environment
    /// (brw_child.h); nil when they cannot go in one: too large, no argv[0],
    /// or a NUL inside a string.
    static func execMessage(argv: [String], environment: [String]) -> [UInt8]? {
        let strings = argv + environment
        let size = strings.reduce(9) { $0 + $1.utf8.count + 1 }
        guard !argv.isEmpty, size <= Int(BRW_EXEC_MESSAGE_MAX), !strings.contains(where: { $0.utf8.contains(0) }) else { return nil }
        var message: [UInt8] = [UInt8(ascii: "X")]
        message.reserveCapacity(size)
        withUnsafeBytes(of: UInt32(argv.count)) { message += $0 }
        withUnsafeBytes(of: UInt32(environment.count)) { message += $0 }
        for s in strings {
            message += s.utf8
            message.append(0)
        }
        return message
    }

    /// Kills the sandbox and reaps it (a failed start, or a held sandbox dropped unused).
    func discard() {
        try? Kernel.sendSignal(SIGKILL, to: pidfd)
        _ = try? Kernel.wait(pidfd)
        try? channel?.close()
        channel = nil
    }

    /// Reads the child's reports until execve (EOF on the socket, which is
    /// close-on-exec), or with `hold` until the tool waits for its argv.
    private func handshake(hold: Bool) throws(RunError) {
        guard let channel else { return }
        while true {
            var report = brw_child_report()
            var fd: Int32 = -1
            let n = brw_recv_report(channel.rawValue, &report, &fd, Self.setupTimeoutMilliseconds)
            if n == 0 { break }
            if n < 0 {
                let e = Errno(rawValue: Int32(-n))
                throw .spawn(stage: .handshake, errno: e, detail: e == .timedOut ? "no answer from the child within \(Self.setupTimeoutMilliseconds) ms" : "reading the child's report")
            }
            let stage = ChildStage(rawValue: report.stage) ?? .exec
            if stage == .listener || stage == .held {
                if fd >= 0 { listener = FileDescriptor(rawValue: fd) }
                openScratch()
                if hold { return }
                guard (try? channel.writeAll([UInt8(ascii: "A")])) != nil else {
                    throw .spawn(stage: .handshake, errno: .brokenPipe, detail: "the tool went away")
                }
                continue
            }
            if fd >= 0 { close(fd) }
            throw .spawn(stage: stage, errno: Errno(rawValue: report.err), detail: Self.detail(stage, index: Int(report.index), plan: plan))
        }
        try? channel.close()
        self.channel = nil
        spawnNanoseconds = max(1, Kernel.monotonicNanoseconds() - started)
    }

    /// Opens the scratch tmpfs through /proc while the tool waits at the
    /// handshake: its mounts are final and it has run no code of its own.
    private func openScratch() {
        guard scratchOpened == nil, plan.namespaces.contains(where: { $0.kind == .mount }),
            plan.mounts.contains(where: { $0.kind == .tmpfs && $0.target == "/tmp" })
        else { return }
        let fd = open("/proc/\(pid)/root/tmp", ChildPlan.O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        scratchOpened = fd >= 0 ? .success(FileDescriptor(rawValue: fd)) : .failure(Errno(rawValue: errno))
    }

    /// The scratch tmpfs, for the supervisor to see it fill up (owned by the
    /// sandbox): nil without one. Opened at the handshake; a plan with no
    /// stop there (no seccomp filter) opens it now, and a tool that has
    /// already ended gives ENOENT.
    func scratch() throws(Errno) -> FileDescriptor? {
        openScratch()
        switch scratchOpened {
        case .success(let fd): return fd
        case .failure(let e): throw e
        case nil: return nil
        }
    }

    /// Which entry of the plan a list stage failed on.
    private static func detail(_ stage: ChildStage, index: Int, plan: LaunchPlan) -> String {
        switch stage {
        case .mounts:
            // The remount entry is applied after pivot_root, not in this list.
            let entries = plan.mounts.filter { $0.kind != .remount }
            guard index < entries.count else { return "" }
            let m = entries[index]
            return "\(m.kind.rawValue) \(m.source.map { $0 + " → " } ?? "")\(m.target)"
        case .rlimits:
            return index < plan.rlimits.count ? plan.rlimits[index].resource.name : ""
        case .landlockRules:
            return index < plan.landlock.pathRules.count ? "rule for \(plan.landlock.pathRules[index].path)" : "port rule"
        case .boundingSet:
            return "capability \(index)"
        case .exec:
            return plan.command.executable
        default:
            return ""
        }
    }

    /// Writes /proc/PID/{setgroups,uid_map,gid_map}; the child is blocked on the go byte meanwhile.
    private static func writeIDMaps(_ identity: IdentityPlan, pid: pid_t) throws(RunError) {
        func write(_ file: String, _ text: String) throws(RunError) {
            let path = "/proc/\(pid)/\(file)"
            do {
                let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.closeOnExec])
                defer { try? fd.close() }
                _ = try fd.writeAll(Array(text.utf8))
            } catch {
                throw .spawn(stage: .waitParent, errno: (error as? Errno) ?? .ioError, detail: "writing \(path)")
            }
        }
        func lines(_ maps: [IDMapping]) -> String { maps.map { "\($0.inside) \($0.outside) \($0.count)\n" }.joined() }
        if identity.setgroups == .deny { try write("setgroups", SetgroupsPolicy.deny.rawValue) }
        try write("uid_map", lines(identity.uidMap))
        try write("gid_map", lines(identity.gidMap))
    }
}
