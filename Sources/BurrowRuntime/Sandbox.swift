import BurrowPolicy
import BurrowProfile
import BurrowSystem
import CBurrowChild
public import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Why a run could not start or be supervised.
public enum RunError: Error, Sendable, CustomStringConvertible {
    /// The plan cannot be executed here (a control it asks for is not enforceable).
    case refused(String)
    /// Preparing the child's plan failed (before clone).
    case preparation(String)
    /// A step of the child failed: its stage and errno.
    case spawn(stage: ChildStage, errno: Errno, detail: String)
    case supervision(String)

    /// `burrow run`'s status for this failure (the container convention):
    /// 127 the command was not found, 126 it could not be executed, 125 any other.
    public var exitStatus: Int32 {
        guard case .spawn(.exec, let errno, _) = self else { return 125 }
        return errno == .noSuchFileOrDirectory ? 127 : 126
    }

    public var description: String {
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
    let listener: FileDescriptor?
    /// Read end of init's status pipe: the tool's wait status when it ends.
    /// nil without an init (no PID namespace: sandbox level none).
    let status: FileDescriptor?
    /// Whether the sandbox has its own init, whose death ends every task in it.
    var hasInit: Bool { status != nil }
    /// Nanoseconds from clone to execve.
    let spawnNanoseconds: UInt64
    /// Plan rows applied differently on this host, and why.
    let notes: [String]

    private init(pidfd: FileDescriptor, pid: pid_t, listener: FileDescriptor?, status: FileDescriptor?, spawnNanoseconds: UInt64, notes: [String]) {
        self.notes = notes
        self.pidfd = pidfd
        self.pid = pid
        self.listener = listener
        self.status = status
        self.spawnNanoseconds = spawnNanoseconds
    }

    deinit {
        try? pidfd.close()
        try? listener?.close()
        try? status?.close()
    }

    /// How long the child may take from clone to execve before it is killed.
    static let setupTimeoutMilliseconds: Int32 = 10_000

    /// Spawns `plan` and returns once the tool has exec'd.
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
    static func launch(
        _ plan: LaunchPlan, cgroup: Int32? = nil, cgroupTasks: [Int32] = [], stdio: [FileDescriptor]? = nil, spawner: Spawner? = nil,
        network: FileDescriptor? = nil
    ) throws(RunError) -> Sandbox {
        let childPlan = try ChildPlan(plan, cgroup: cgroup)
        childPlan.setCgroupTasks(cgroupTasks)
        if let network { childPlan.setNetworkNamespace(network) }
        let (parentSock, childSock): (FileDescriptor, FileDescriptor)
        let statusPipe: (FileDescriptor, FileDescriptor)?
        do {
            (parentSock, childSock) = try Kernel.socketPair()
            statusPipe = childPlan.raw.use_init == 1 ? try Kernel.pipe() : nil
        } catch {
            throw .preparation("cannot create the child's channels: \(error)")
        }
        defer { try? parentSock.close() }
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
            try? statusPipe?.0.close()
            throw .preparation("clone3 failed: \(errnoName(rc)) (\(Errno(rawValue: rc)))")
        }
        let pidfd = FileDescriptor(rawValue: rawPidfd)

        func abandon(_ error: RunError) -> RunError {
            try? Kernel.sendSignal(SIGKILL, to: pidfd)
            _ = try? Kernel.wait(pidfd)
            try? pidfd.close()
            try? statusPipe?.0.close()
            return error
        }

        do throws(RunError) {
            if !plan.identity.uidMap.isEmpty { try writeIDMaps(plan.identity, pid: pid) }
        } catch {
            throw abandon(error)
        }
        guard (try? parentSock.writeAll([UInt8(ascii: "G")])) != nil else {
            throw abandon(.spawn(stage: .waitParent, errno: .brokenPipe, detail: "the child went away before it started"))
        }

        var listener: FileDescriptor?
        while true {
            var report = brw_child_report()
            var fd: Int32 = -1
            let n = brw_recv_report(parentSock.rawValue, &report, &fd, setupTimeoutMilliseconds)
            if n == 0 { break }  // EOF: execve succeeded (the socket is close-on-exec)
            if n < 0 {
                try? listener?.close()
                let e = Errno(rawValue: Int32(-n))
                throw abandon(.spawn(stage: .handshake, errno: e, detail: e == .timedOut ? "no answer from the child within \(setupTimeoutMilliseconds) ms" : "reading the child's report"))
            }
            let stage = ChildStage(rawValue: report.stage) ?? .exec
            if stage == .listener, fd >= 0 {
                listener = FileDescriptor(rawValue: fd)
                guard (try? parentSock.writeAll([UInt8(ascii: "A")])) != nil else {
                    try? listener?.close()
                    throw abandon(.spawn(stage: .handshake, errno: .brokenPipe, detail: "the tool went away"))
                }
                continue
            }
            if fd >= 0 { close(fd) }
            try? listener?.close()
            throw abandon(.spawn(stage: stage, errno: Errno(rawValue: report.err), detail: detail(stage, index: Int(report.index), plan: plan)))
        }
        return Sandbox(
            pidfd: pidfd, pid: pid, listener: listener, status: statusPipe?.0,
            spawnNanoseconds: Kernel.monotonicNanoseconds() - start, notes: notes)
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
            return index < plan.rlimits.count ? plan.rlimits[index].resource : ""
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
        if identity.setgroups == "deny" { try write("setgroups", "deny") }
        try write("uid_map", lines(identity.uidMap))
        try write("gid_map", lines(identity.gidMap))
    }
}
