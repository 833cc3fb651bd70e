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
    private let onViolation: (RunRecord.Violation) -> Void
    private var violations: [String: RunRecord.Violation] = [:]
    private var order: [String] = []
    private var limits: [RunRecord.LimitEvent] = []

    /// - Parameters:
    ///   - signals: a signalfd whose signals are forwarded to the sandbox.
    ///   - onViolation: called once per distinct refused call, as it happens.
    init(
        sandbox: Sandbox, plan: LaunchPlan, startedAt: UInt64, signals: FileDescriptor?,
        onViolation: @escaping (RunRecord.Violation) -> Void
    ) {
        self.sandbox = sandbox
        self.responder = SeccompResponder(plan: plan.seccomp)
        self.startedAt = startedAt
        self.deadline = startedAt + plan.limits.maxExecutionTime.milliseconds * 1_000_000
        self.executionLimit = plan.limits.maxExecutionTime.description
        self.signals = signals
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
            if now >= deadline && !killed {
                killed = true
                limits.append(RunRecord.LimitEvent(resource: "max_execution_time", limit: executionLimit, observed: "\((now - startedAt) / 1_000_000) ms wall clock"))
                try? Kernel.sendSignal(SIGKILL, to: sandbox.pidfd)
            }
            let timeout = killed ? -1 : Int32(min(UInt64(Int32.max), (deadline - now + 999_999) / 1_000_000))
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
        return Outcome(status: toolStatus() ?? initStatus, violations: order.compactMap { violations[$0] }, limits: limits)
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
