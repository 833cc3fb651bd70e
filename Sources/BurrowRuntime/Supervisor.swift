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
/// notifications (recording each refused call), forwards signals, enforces
/// the CPU budget and the deadline, and reads the kernel's evidence of every
/// limit hit. Runs on the calling thread with poll(2).
final class Supervisor {
    struct Outcome {
        var status: WaitStatus
        var violations: [RunRecord.Violation]
        var quietRefusals: [RunRecord.Violation]
        var limits: [RunRecord.LimitEvent]
        var readings: CgroupReadings?
        /// Whether a `RunStop` ended the tool.
        var stopped = false
    }

    private let sandbox: Sandbox
    private let responder: SeccompResponder
    private let invocationID: String
    private let limitsPlan: EffectiveLimits
    private let startedAt: UInt64
    private let deadline: UInt64
    private let signals: FileDescriptor?
    private let relayedSignals: SignalRelay?
    private let cgroup: (any InvocationCgroup)?
    /// The sandbox's /tmp (its scratch tmpfs), to see it fill up.
    private let scratch: FileDescriptor?
    private var scratchFull: FileSystemUsage?
    /// The write grants, held open (O_PATH, not following a symlink, so a
    /// rename on the host cannot point the check elsewhere) and watched
    /// against the policy's min_free_disk.
    private let writeGrants: [(path: String, fd: FileDescriptor)]
    /// max_disk_write, set up for this run.
    private let diskBudget: DiskBudget?
    /// The tool's standard streams, when they are captured.
    private let pump: StreamPump?
    private let stop: RunStop?
    /// How often the CPU budget (and the scratch space) is checked while the tool runs.
    static let checkInterval = UInt64(PlanCompiler.cpuCheckMilliseconds) * 1_000_000
    private let onViolation: (RunRecord.Violation) -> Void
    private let activity: (@Sendable () -> [String])?
    private var violations: [String: RunRecord.Violation] = [:]
    private var order: [String] = []
    private var quiet: [String: RunRecord.Violation] = [:]
    private var quietOrder: [String] = []
    private var limits: [RunRecord.LimitEvent] = []

    /// - Parameters:
    ///   - signals: a signalfd whose signals are forwarded to the sandbox.
    ///   - relayedSignals: signals another thread queues for the sandbox (burrowd's clients); with no signalfd only.
    ///   - scratch: a descriptor of the sandbox's scratch tmpfs, if it has one.
    ///   - onViolation: called once per distinct refused call, as it happens.
    init(
        sandbox: Sandbox, plan: LaunchPlan, invocationID: String, startedAt: UInt64, signals: FileDescriptor?, relayedSignals: SignalRelay? = nil,
        cgroup: (any InvocationCgroup)?, scratch: FileDescriptor?, diskBudget: DiskBudget?, pump: StreamPump?, stop: RunStop?, activity: (@Sendable () -> [String])?,
        onViolation: @escaping (RunRecord.Violation) -> Void
    ) {
        self.diskBudget = diskBudget
        self.pump = pump
        self.stop = stop
        self.sandbox = sandbox
        self.responder = SeccompResponder(plan: plan.seccomp)
        self.invocationID = invocationID
        self.limitsPlan = plan.limits
        self.startedAt = startedAt
        self.deadline = startedAt + plan.limits.maxExecutionTime.milliseconds * 1_000_000
        self.signals = signals
        self.relayedSignals = signals == nil ? relayedSignals : nil
        self.cgroup = cgroup
        self.scratch = scratch
        // With max_disk_write, each grant's file system is read at its mount
        // point: statfs inside a project with a limit reports the project, not
        // the disk. Without it, mountinfo is not read at all.
        let sources = plan.limits.minFreeDisk == nil ? [] : plan.writeGrantSources
        let roots = plan.limits.maxDiskWrite == nil ? sources.map { _ in nil } : ProjectQuota.mountPoints(of: sources)
        self.writeGrants = zip(sources, roots).compactMap { path, root in
            (try? Kernel.openNoFollow(root ?? path, flags: ChildPlan.O_PATH | O_CLOEXEC)).map { (path, $0) }
        }
        self.onViolation = onViolation
        self.activity = activity
    }

    private func exceeded(_ resource: String, _ limit: String, unit: String, limitValue: UInt64, observedValue: UInt64?, _ observed: String) {
        limits.append(
            RunRecord.LimitEvent(
                resource: resource, limit: limit, observed: observed, unit: unit, limitValue: limitValue, observedValue: observedValue,
                invocationID: invocationID, during: currentActivity()))
    }

    /// The caller's activity now; nil when it tracks none or there is none.
    private func currentActivity() -> [String]? {
        guard let a = activity?(), !a.isEmpty else { return nil }
        return a
    }

    func run() throws(RunError) -> Outcome {
        var fds =
            [
                pollfd(fd: sandbox.pidfd.rawValue, events: Int16(POLLIN), revents: 0),
                pollfd(fd: sandbox.listener?.rawValue ?? -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: signals?.rawValue ?? relayedSignals?.descriptor.rawValue ?? -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: stop?.descriptor.rawValue ?? -1, events: Int16(POLLIN), revents: 0),
            ] + (pump?.pollEntries ?? [])
        let budget = limitsPlan.maxCpuTime.milliseconds * 1_000_000
        var killed = false
        var stopped = false
        while true {
            let now = Kernel.monotonicNanoseconds()
            if !killed && now >= deadline {
                killed = true
                let ms = (now - startedAt) / 1_000_000
                exceeded(
                    "max_execution_time", limitsPlan.maxExecutionTime.description, unit: "milliseconds",
                    limitValue: limitsPlan.maxExecutionTime.milliseconds, observedValue: ms, "\(ms) ms of wall-clock time (deadline timer)")
                kill()
            }
            if !killed, let cgroup {
                var readings = cgroup.readings(peaks: false)
                if readings.oomKills > 0 || readings.pidsMaxHits > 0 { readings = cgroup.readings(peaks: true) }
                // A budget that cannot be read cannot be enforced: stop the sandbox.
                let used = readings.cpuNanoseconds
                if used.map({ $0 > budget }) ?? true {
                    exceeded(
                        "max_cpu_time", limitsPlan.maxCpuTime.description, unit: "milliseconds", limitValue: limitsPlan.maxCpuTime.milliseconds,
                        observedValue: used.map { $0 / 1_000_000 },
                        used.map { "\($0 / 1_000_000) ms of CPU by the whole tree (budget timer)" } ?? "CPU accounting unreadable: the sandbox was stopped")
                }
                // A refused fork or an OOM kill ends the whole tree at once.
                checkCounters(readings)
                if !limits.isEmpty {
                    killed = true
                    kill()
                }
            }
            if !killed { checkScratch() }
            if !killed, let low = lowDisk() {
                exceeded(
                    "disk_free", low.floor.description, unit: "bytes", limitValue: low.needed, observedValue: low.available,
                    "\(low.path)'s file system has \(low.available) bytes free of \(low.total), below the host policy's min_free_disk")
                killed = true
                kill()
            }
            if !killed, checkDiskBudget() {
                killed = true
                kill()
            }
            let idle = cgroup == nil && scratch == nil && writeGrants.isEmpty && diskBudget == nil
            let wait = min(deadline > now ? deadline - now : 0, idle ? UInt64.max : Self.checkInterval)
            let timeout = killed ? -1 : Int32(min(UInt64(Int32.max), wait / 1_000_000 + 1))
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
            if fds[3].revents & Int16(POLLIN) != 0 {
                fds[3].fd = -1
                if !killed {
                    killed = true
                    stopped = true
                    kill()
                }
            }
            pump?.service(&fds, from: 4)
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
        let readings = cgroup?.readings(peaks: true)
        if let readings { checkCounters(readings) }
        // The backstop sits above the budget, so this means the supervisor
        // could not act in time (a starved host): still a CPU budget hit.
        if case .signaled(SIGXCPU, _) = status, !limits.contains(where: { $0.resource == "max_cpu_time" }),
            readings?.cpuNanoseconds.map({ $0 >= limitsPlan.maxCpuTime.milliseconds * 1_000_000 }) == true
        {
            exceeded(
                "max_cpu_time", limitsPlan.maxCpuTime.description, unit: "milliseconds", limitValue: limitsPlan.maxCpuTime.milliseconds,
                observedValue: readings?.cpuNanoseconds.map { $0 / 1_000_000 }, "SIGXCPU ended the tool: a process ran past RLIMIT_CPU, the per-process backstop")
        }
        if case .signaled(SIGXFSZ, _) = status {
            exceeded(
                "max_file_size", limitsPlan.maxFileSize.description, unit: "bytes", limitValue: limitsPlan.maxFileSize.bytes, observedValue: nil,
                "SIGXFSZ ended the tool: a write past RLIMIT_FSIZE")
        }
        checkScratch()
        // A tool that met EDQUOT and ended between two checks still hit the budget.
        _ = checkDiskBudget()
        if let full = scratchFull {
            let what = "\(full.bytesUsed) bytes and \(full.inodesUsed) of \(full.inodes) inodes in use"
            if full.noSpaceLeft {
                exceeded(
                    "scratch_size", limitsPlan.scratchSize.description, unit: "bytes", limitValue: limitsPlan.scratchSize.bytes, observedValue: full.bytesUsed,
                    "the scratch tmpfs (/tmp) is full: \(what); writes get ENOSPC")
            } else {
                exceeded(
                    "scratch_size", "\(full.inodes) inodes (nr_inodes)", unit: "inodes", limitValue: full.inodes, observedValue: full.inodesUsed,
                    "the scratch tmpfs (/tmp) has no inode left: \(what); file creation gets ENOSPC")
            }
        }
        return Outcome(status: status, violations: order.compactMap { violations[$0] }, quietRefusals: quietOrder.compactMap { quiet[$0] }, limits: limits, readings: readings, stopped: stopped)
    }

    /// Records an OOM kill or a refused fork (once each), from the kernel's counters.
    private func checkCounters(_ readings: CgroupReadings) {
        if readings.oomKills > 0, !limits.contains(where: { $0.resource == "max_memory" }) {
            exceeded(
                "max_memory", limitsPlan.maxMemory.description, unit: "bytes", limitValue: limitsPlan.maxMemory.bytes, observedValue: readings.peakMemoryBytes,
                "\(readings.oomKills) task(s) killed by the OOM killer at the limit (oom_kill); peak \(readings.peakMemoryBytes.map { "\($0) bytes" } ?? "unknown")")
        }
        if readings.pidsMaxHits > 0, !limits.contains(where: { $0.resource == "max_processes" }) {
            exceeded(
                "max_processes", "\(limitsPlan.maxProcesses)", unit: "tasks", limitValue: UInt64(limitsPlan.maxProcesses), observedValue: readings.peakProcesses,
                "\(readings.pidsMaxHits) fork(s) refused at pids.max; peak \(readings.peakProcesses.map { "\($0) tasks" } ?? "unknown")")
        }
    }

    /// Records the disk write budget's exhaustion (once); true when the run
    /// must stop. An unreadable usage stops it too.
    private func checkDiskBudget() -> Bool {
        guard let diskBudget, !limits.contains(where: { $0.resource == "disk_write" }) else { return false }
        let budget = ByteSize(bytes: diskBudget.budget)
        guard let reading = diskBudget.reading() else {
            exceeded(
                "disk_write", budget.description, unit: "bytes", limitValue: diskBudget.budget, observedValue: nil,
                "project quota usage unreadable: the sandbox was stopped")
            return true
        }
        guard reading.exhausted else { return false }
        exceeded(
            "disk_write", budget.description, unit: "bytes", limitValue: diskBudget.budget, observedValue: UInt64(clamping: max(0, reading.added)),
            "\(reading.added) bytes added under the write grants, no room for another block (writes past it get EDQUOT)")
        return true
    }

    /// The first write grant whose file system has less free than the floor
    /// (a held descriptor's file system cannot go away under it).
    private func lowDisk() -> (path: String, floor: DiskFloor, needed: UInt64, available: UInt64, total: UInt64)? {
        guard let floor = limitsPlan.minFreeDisk else { return nil }
        for grant in writeGrants {
            guard let space = try? Kernel.diskSpace(grant.fd) else { continue }
            let needed = floor.bytes(ofTotal: space.total)
            if space.available < needed { return (grant.path, floor, needed, space.available, space.total) }
        }
        return nil
    }

    deinit {
        for grant in writeGrants { close(grant.fd.rawValue) }
    }

    /// Records the first moment the scratch tmpfs had no block or inode left.
    private func checkScratch() {
        guard scratchFull == nil, let scratch, let usage = try? Kernel.fileSystemUsage(scratch), usage.noSpaceLeft || usage.noInodeLeft else { return }
        scratchFull = usage
    }

    /// Ends the whole sandbox: its init (whose death tears down the PID
    /// namespace) and every task of its cgroup, stopped ones included.
    private func kill() {
        try? Kernel.sendSignal(SIGKILL, to: sandbox.pidfd)
        cgroup?.killAll()
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
        // Asked while the caller is still held in the syscall: once answered,
        // the call it serves may end at once.
        let during = currentActivity()
        // An answer that fails with ENOENT means the caller is gone: nothing to record differently.
        try? Kernel.deny(notification, errno: answer.errno, on: listener)
        let key = ([answer.syscall] + (during ?? [])).joined(separator: " ")
        if answer.quiet {
            if quiet[key] == nil { quietOrder.append(key) }
            quiet[key, default: RunRecord.Violation(syscall: answer.syscall, errno: errnoName(answer.errno), count: 0, reason: answer.reason, during: during)].count += 1
            return
        }
        if var seen = violations[key] {
            seen.count += 1
            violations[key] = seen
        } else {
            let v = RunRecord.Violation(syscall: answer.syscall, errno: errnoName(answer.errno), count: 1, reason: answer.reason, during: during)
            violations[key] = v
            order.append(key)
            onViolation(v)
        }
    }

    private func forwardSignals() {
        // Init (PID 1) passes each on to the tool.
        if let signals {
            while let sig = Kernel.nextSignal(signals) { try? Kernel.sendSignal(sig, to: sandbox.pidfd) }
        }
        for sig in relayedSignals?.take() ?? [] { try? Kernel.sendSignal(sig, to: sandbox.pidfd) }
    }
}
