import BurrowCgroup
import BurrowPolicy
import BurrowProfile
import BurrowSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Watches one sandbox through its pidfd until it ends: answers seccomp
/// notifications (recording each refused call), forwards signals, and kills
/// the sandbox at its deadline. Runs on the calling thread with poll(2).
final class Supervisor {
    struct Outcome {
        var status: WaitStatus
        var violations: [RunRecord.Violation]
        var limits: [RunRecord.LimitEvent]
    }

    private let sandbox: Sandbox
    private let responder: SeccompResponder
    private let startedAt: UInt64
    private let deadline: UInt64
    private let executionLimit: String
    private let signals: FileDescriptor?
    private let cgroup: CgroupBinding?
    private let cpuBudgetNanoseconds: UInt64
    private let cpuLimit: String
    private let memoryLimit: String
    private let processLimit: String
    /// How often the CPU budget is checked while the tool runs.
    static let cpuCheckInterval: UInt64 = 50_000_000
    private let onViolation: (RunRecord.Violation) -> Void
    private var violations: [String: RunRecord.Violation] = [:]
    private var order: [String] = []
    private var limits: [RunRecord.LimitEvent] = []

    /// - Parameters:
    ///   - signals: a signalfd whose signals are forwarded to the sandbox.
    ///   - onViolation: called once per distinct refused call, as it happens.
    init(
        sandbox: Sandbox, plan: LaunchPlan, startedAt: UInt64, signals: FileDescriptor?, cgroup: CgroupBinding?,
        onViolation: @escaping (RunRecord.Violation) -> Void
    ) {
        self.sandbox = sandbox
        self.responder = SeccompResponder(plan: plan.seccomp)
        self.startedAt = startedAt
        self.deadline = startedAt + plan.limits.maxExecutionTime.milliseconds * 1_000_000
        self.executionLimit = plan.limits.maxExecutionTime.description
        self.signals = signals
        self.cgroup = cgroup
        self.cpuBudgetNanoseconds = plan.limits.maxCpuTime.milliseconds * 1_000_000
        self.cpuLimit = plan.limits.maxCpuTime.description
        self.memoryLimit = plan.limits.maxMemory.description
        self.processLimit = "\(plan.limits.maxProcesses)"
        self.onViolation = onViolation
    }

    func run() throws(RunError) -> Outcome {
        var fds = [
            pollfd(fd: sandbox.pidfd.rawValue, events: Int16(POLLIN), revents: 0),
            pollfd(fd: sandbox.listener?.rawValue ?? -1, events: Int16(POLLIN), revents: 0),
            pollfd(fd: signals?.rawValue ?? -1, events: Int16(POLLIN), revents: 0),
        ]
        var killed = false
        while true {
            let now = Kernel.monotonicNanoseconds()
            if !killed && now >= deadline {
                killed = true
                limits.append(RunRecord.LimitEvent(resource: "max_execution_time", limit: executionLimit, observed: "\((now - startedAt) / 1_000_000) ms wall clock"))
                kill()
            }
            if !killed, let cgroup {
                // A budget that cannot be read cannot be enforced: stop the sandbox.
                let used = cgroup.cpuNanoseconds
                if used.map({ $0 > cpuBudgetNanoseconds }) ?? true {
                    killed = true
                    let observed = used.map { "\($0 / 1_000_000) ms of CPU by the whole tree" } ?? "CPU accounting unreadable: the sandbox was stopped"
                    limits.append(RunRecord.LimitEvent(resource: "max_cpu_time", limit: cpuLimit, observed: observed))
                    kill()
                }
            }
            var wait = deadline > now ? deadline - now : 0
            if cgroup != nil { wait = min(wait, Self.cpuCheckInterval) }
            let timeout = killed ? -1 : Int32(min(UInt64(Int32.max), (wait + 999_999) / 1_000_000))
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                throw .supervision("poll failed: \(errnoName(errno))")
            }
            if fds[1].revents & Int16(POLLIN) != 0 {
                answerNotification()
            } else if fds[1].revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
                fds[1].fd = -1  // every filtered task is gone
            }
            if fds[2].revents & Int16(POLLIN) != 0 { forwardSignals() }
            if fds[0].revents & Int16(POLLIN) != 0 { break }
        }
        // Notifications still queued belong to tasks that are dying with the namespace.
        let initStatus: WaitStatus
        do {
            guard let status = try Kernel.wait(sandbox.pidfd) else { throw Errno.noChildProcess }
            initStatus = status
        } catch {
            throw .supervision("cannot reap the sandbox: \(error)")
        }
        let status = toolStatus() ?? initStatus
        if let cgroup {
            if cgroup.oomKills > 0 {
                limits.append(RunRecord.LimitEvent(resource: "max_memory", limit: memoryLimit, observed: "\(cgroup.oomKills) OOM kill(s); peak \(cgroup.peakMemory.map { "\($0) bytes" } ?? "unknown")"))
            }
            if cgroup.pidsMaxHits > 0 {
                limits.append(RunRecord.LimitEvent(resource: "max_processes", limit: processLimit, observed: "\(cgroup.pidsMaxHits) fork(s) refused at the limit"))
            }
        }
        if case .signaled(SIGXFSZ, _) = status {
            limits.append(RunRecord.LimitEvent(resource: "max_file_size", limit: "RLIMIT_FSIZE", observed: "SIGXFSZ ended the tool"))
        }
        return Outcome(status: status, violations: order.compactMap { violations[$0] }, limits: limits)
    }

    /// Ends the whole sandbox: killing its init tears down the PID namespace;
    /// without one (sandbox level none) every task of the cgroup is killed.
    private func kill() {
        try? Kernel.sendSignal(SIGKILL, to: sandbox.pidfd)
        if !sandbox.hasInit { cgroup?.group.killAll() }
    }

    /// The tool's own wait status, as init reported it (nil when init did not get to).
    private func toolStatus() -> WaitStatus? {
        guard let status = sandbox.status else { return nil }
        var raw: Int32 = 0
        let n = read(status.rawValue, &raw, MemoryLayout<Int32>.size)
        return n == MemoryLayout<Int32>.size ? WaitStatus(raw: raw) : nil
    }

    private func answerNotification() {
        guard let listener = sandbox.listener else { return }
        let notification: SeccompNotification
        do {
            notification = try Kernel.receiveNotification(listener)
        } catch {
            return  // ENOENT: the caller died (or was interrupted) before we read it
        }
        let answer = responder.answer(syscall: notification.syscall, arguments: notification.arguments)
        // An answer that fails with ENOENT means the caller is gone: nothing to record differently.
        try? Kernel.deny(notification, errno: answer.errno, on: listener)
        if var seen = violations[answer.syscall] {
            seen.count += 1
            violations[answer.syscall] = seen
        } else {
            let v = RunRecord.Violation(syscall: answer.syscall, errno: errnoName(answer.errno), count: 1, reason: answer.reason)
            violations[answer.syscall] = v
            order.append(answer.syscall)
            onViolation(v)
        }
    }

    private func forwardSignals() {
        guard let signals else { return }
        while let sig = Kernel.nextSignal(signals) {
            // Init (PID 1) passes it on to the tool.
            try? Kernel.sendSignal(sig, to: sandbox.pidfd)
        }
    }
}
