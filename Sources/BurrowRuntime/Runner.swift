package import BurrowAudit
import BurrowCgroup
import BurrowEgress
package import BurrowPolicy
import BurrowProfile
import BurrowSystem
package import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Runs a `LaunchPlan` to completion: the one entry point `burrow run` (and
/// later the daemon) uses.
package enum Runner {
    package struct Options: Sendable {
        /// Forward SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to this process to
        /// the tool. They are blocked in the calling thread (which must be the
        /// only thread that could receive them).
        package var forwardSignals: Bool
        /// Called once per distinct refused system call, while the tool runs.
        package var onViolation: @Sendable (RunRecord.Violation) -> Void
        /// The audit log and the caller; nil runs unaudited (tests of the engine alone).
        package var audit: RunAudit?
        /// The tool's stdin, stdout and stderr from and to memory; nil: inherited from this process.
        package var streams: CapturedStreams?
        /// Called once the tool has exec'd (its sandbox is live).
        package var onStart: @Sendable () -> Void
        /// Ends the run from another thread.
        package var stop: RunStop?
        /// Clones the sandbox through burrow-spawner (burrowd); nil: in process.
        package var spawner: Spawner?
        /// Descriptors that become the tool's stdin, stdout and stderr (the
        /// child ends of pipes whose other ends the caller serves, e.g. the MCP
        /// relay); closed here once the tool has them. Ignored with `streams`.
        package var stdio: [FileDescriptor]?
        /// What the tool is doing now, asked when a violation or a limit is
        /// seen: the events carry it as `during` (the MCP relay's calls in
        /// flight). A violation is recorded once per syscall and activity.
        package var activity: (@Sendable () -> [String])?
        /// A sandbox built ahead for this invocation (its id, a plan it fits),
        /// released with the plan's argv and environment instead of a launch.
        package var warm: WarmSandbox?
        /// Called once the sandbox is gone, before its terminal events are
        /// written: what reports on the run (the MCP relay's calls) records
        /// its last events first, so the invocation's outcome comes last.
        package var beforeOutcome: (@Sendable () -> Void)?
        /// Signals another thread passes on to the tool (burrowd, for its
        /// session clients); used when `forwardSignals` is false.
        package var relayedSignals: SignalRelay?
        /// Sweep left-behind invocation cgroups before this run (`burrow run`
        /// always does; burrowd sweeps at start and then at most every few
        /// seconds, not on every invocation).
        package var sweep: Bool

        package init(
            forwardSignals: Bool = true, audit: RunAudit? = nil, streams: CapturedStreams? = nil,
            stop: RunStop? = nil, spawner: Spawner? = nil, stdio: [FileDescriptor]? = nil, activity: (@Sendable () -> [String])? = nil, sweep: Bool = true, warm: WarmSandbox? = nil,
            onStart: @escaping @Sendable () -> Void = {},
            onViolation: @escaping @Sendable (RunRecord.Violation) -> Void = { _ in }
        ) {
            self.stop = stop
            self.spawner = spawner
            self.stdio = stdio
            self.activity = activity
            self.sweep = sweep
            self.warm = warm
            self.forwardSignals = forwardSignals
            self.audit = audit
            self.streams = streams
            self.onStart = onStart
            self.onViolation = onViolation
        }
    }

    /// The signals `burrow run` passes on to the tool.
    package static let forwardedSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]

    /// Spawns the sandbox `plan` describes, supervises it and returns the record.
    /// - Throws: `RunError.refused` when a requested control cannot be
    ///   enforced here, `RunError.spawn` when a step of the child failed.
    package static func run(_ plan: LaunchPlan, invocationID: String, options: Options = Options()) throws(RunError) -> RunRecord {
        // The caller's stdio ends are ours from here: closed once the tool
        // has them, or whatever fails first (their other ends see EOF).
        var stdio = options.streams == nil ? options.stdio ?? [] : []
        defer { for fd in stdio { try? fd.close() } }
        // The lease marks the invocation as supervised (its cgroup, its open
        // audit trail) for as long as this process lives.
        let lease: InvocationLease
        if let warm = options.warm { lease = warm.lease } else { lease = try InvocationLease.acquire(invocationID) }
        defer { lease.end() }
        guard let audit = options.audit else { return try execute(plan, invocationID: invocationID, options: options, trail: nil, invoked: nil, stdio: &stdio) }
        let trail = InvocationTrail(audit, plan: plan, invocationID: invocationID)
        // A sandbox built ahead is released at once: its ToolInvoked first.
        // A fresh one commits it while the child builds the sandbox.
        let invoked = InvokedCommit(trail)
        if options.warm != nil { try invoked.commit() }
        var record: RunRecord
        do {
            record = try execute(plan, invocationID: invocationID, options: options, trail: trail, invoked: invoked, stdio: &stdio)
            try invoked.commit()  // done before execve; a no-op here
        } catch {
            // What the tool's stdio is served by sees its end before it reports.
            for fd in stdio { try? fd.close() }
            stdio = []
            options.beforeOutcome?()
            // A run that failed before its ToolInvoked was tried still leaves
            // both events; one whose ToolInvoked failed leaves none (nothing ran).
            if (try? invoked.commit()) != nil { trail.failed(error) }
            throw error
        }
        options.beforeOutcome?()
        let (problems, lost) = trail.finished(record)
        Phases.mark("tool_completed_durable")
        record.auditProblems += problems
        record.auditLost = lost
        record.phases = Phases.recorded()
        return record
    }

    /// ToolInvoked, committed once: before the tool can execve, and never
    /// again once it has failed.
    final class InvokedCommit {
        private let trail: InvocationTrail
        private var outcome: Result<Void, RunError>?

        init(_ trail: InvocationTrail) { self.trail = trail }

        /// `commit` as the sandbox's release gate.
        var gate: () throws(RunError) -> Void {
            { () throws(RunError) in try self.commit() }
        }

        func commit() throws(RunError) {
            if outcome == nil {
                do {
                    try trail.invoked()
                    outcome = .success(())
                    Phases.mark("tool_invoked_durable")
                } catch {
                    outcome = .failure(error)
                }
            }
            if case .failure(let error) = outcome { throw error }
        }
    }

    private static func execute(
        _ plan: LaunchPlan, invocationID: String, options: Options, trail: InvocationTrail?, invoked: InvokedCommit?, stdio: inout [FileDescriptor]
    ) throws(RunError) -> RunRecord {
        try checkEnforceable(plan)
        let startedAt = AuditClock.format(AuditClock.now())
        let signals: FileDescriptor?
        if options.forwardSignals {
            do {
                signals = try Kernel.signalDescriptor(forwardedSignals)
            } catch {
                throw .preparation("cannot watch signals: \(error)")
            }
        } else {
            signals = nil
        }
        defer { try? signals?.close() }

        // The sweep removes invocation cgroups whose lease is free; then their
        // audit trails, still open, are closed as supervisor_lost.
        let site = try CgroupSite.locate(plan.cgroup)
        let swept = options.sweep ? site?.sweep() ?? [] : []
        var notes: [String] = []
        var recovered: [String] = []
        var auditProblems: [String] = []
        if let trail {
            (recovered, auditProblems) = InvocationTrail.closeOrphans(trail.audit.store, swept: swept)
        }
        if options.sweep { notes += DiskBudget.recoverAbandoned() }
        // Before the tool can write: the budget's limits are in force at execve.
        let diskBudget = try DiskBudget.begin(plan)
        defer { _ = diskBudget?.end() }
        let staged: Staged
        if let warm = options.warm {
            guard warm.invocationID == invocationID else { throw .preparation("the sandbox built ahead belongs to invocation \(warm.invocationID), not \(invocationID)") }
            staged = try warm.take(plan, streams: options.streams)
            Phases.mark("released")
            notes.append(
                "sandbox built ahead of the request (\((Kernel.monotonicNanoseconds() - warm.readyAt) / 1_000_000) ms waiting before execve), released with this invocation's argv and environment")
        } else {
            staged = try stage(plan, site: site, invocationID: invocationID, options: options, trail: trail, invoked: invoked)
        }
        let (cgroup, pump, egress, sandbox) = (staged.cgroup, staged.pump, staged.egress, staged.sandbox)
        let cgroupRecord = cgroup.map { RunRecord.Cgroup(version: plan.cgroup.version, paths: $0.group.paths, setup: $0.setup) }
        var finished = false
        func finishCgroup() {
            guard !finished, let cgroup else { return }
            finished = true
            if let problem = cgroup.group.finish() { notes.append(problem) }
        }
        defer { finishCgroup() }
        defer { _ = egress?.finish() }
        for fd in stdio { try? fd.close() }
        stdio = []
        let execAt = Kernel.monotonicNanoseconds()
        options.onStart()
        let observed = Observation.read(pid: sandbox.pid, namespaces: plan.namespaces.map(\.kind))
        let scratch: FileDescriptor?
        do {
            scratch = try sandbox.scratch()
        } catch {
            // The tmpfs size still holds (the kernel enforces it); only the report
            // of a full scratch is lost. ENOENT: a tool with no stop at the
            // handshake (no seccomp filter) has already ended.
            scratch = nil
            if error != .noSuchFileOrDirectory { notes.append("scratch_size: cannot open the sandbox's /tmp from outside (\(errnoName(error.rawValue))): a full scratch is not reported") }
        }
        let supervisor = Supervisor(
            sandbox: sandbox, plan: plan, invocationID: invocationID, startedAt: execAt - sandbox.spawnNanoseconds, signals: signals, relayedSignals: options.relayedSignals,
            cgroup: cgroup?.group, scratch: scratch, diskBudget: diskBudget, pump: pump, stop: options.stop, activity: options.activity,
            onViolation: { v in
                trail?.violation(v)
                options.onViolation(v)
            })
        let outcome = try supervisor.run()
        Phases.mark("tool_reaped")
        let ranFor = (Kernel.monotonicNanoseconds() - execAt) / 1_000_000
        // Whatever the tool left behind (a daemon without a PID namespace) ends with it.
        finishCgroup()
        Phases.mark("cgroup_removed")
        pump?.drain()
        let network = egress?.finish()
        let budgetApplied = diskBudget?.applied
        notes += diskBudget?.end() ?? []
        var limits = outcome.limits
        if let network, let budget = network.budgetExhausted {
            limits.append(
                RunRecord.LimitEvent(
                    resource: "max_network_bytes", limit: "\(ByteSize(bytes: budget))",
                    observed: "the egress proxy cut every connection at the budget (\(network.bytesOut) bytes out, \(network.bytesIn) in)",
                    unit: "bytes", limitValue: budget, observedValue: network.bytesOut + network.bytesIn, invocationID: invocationID,
                    during: egress?.budgetDuring))
        }

        let exit: RunRecord.Exit
        switch outcome.status {
        case .exited(let code):
            exit = RunRecord.Exit(code: code, signal: nil, coreDumped: false, status: outcome.status.exitCode)
        case .signaled(let sig, let core):
            exit = RunRecord.Exit(code: nil, signal: sig, coreDumped: core, status: outcome.status.exitCode)
        }
        return RunRecord(
            invocationID: invocationID, tool: plan.tool.id, argv: plan.command.argv, sandboxLevel: plan.sandboxLevel.rawValue,
            uid: plan.identity.uid, startedAt: startedAt,
            durations: RunRecord.Durations(spawnMicroseconds: sandbox.spawnNanoseconds / 1000),
            exit: exit, controls: enforcedControls(plan, sandbox: sandbox, observed: observed, diskBudget: budgetApplied),
            usage: RunRecord.Usage(
                cpuMicroseconds: outcome.readings?.cpuNanoseconds.map { $0 / 1000 }, peakMemoryBytes: outcome.readings?.peakMemoryBytes,
                peakProcesses: outcome.readings?.peakProcesses, wallMilliseconds: ranFor),
            cgroup: cgroupRecord,
            violations: outcome.violations, quietRefusals: outcome.quietRefusals, limits: limits, observed: observed,
            supervisor: RunRecord.Supervisor(peakResidentKilobytes: peakResidentKilobytes()),
            swept: swept, recovered: recovered, auditProblems: auditProblems, notes: notes + (cgroup?.skipped ?? []) + sandbox.notes,
            stopped: outcome.stopped ? options.stop?.reason : nil, network: network)
    }

    /// A sandbox launched, with the pieces the supervision needs.
    struct Staged {
        var cgroup: CgroupBinding?
        var pump: StreamPump?
        var egress: EgressBinding?
        var sandbox: Sandbox
    }

    /// Creates the invocation's cgroup, the tool's streams and its egress
    /// proxy, and launches the sandbox (with `hold`, up to the moment before
    /// execve). On failure everything made here is undone.
    static func stage(
        _ plan: LaunchPlan, site: CgroupSite?, invocationID: String, options: Options, trail: InvocationTrail?, invoked: InvokedCommit? = nil, hold: Bool = false
    ) throws(RunError) -> Staged {
        let cgroup = try site.map { site throws(RunError) in try CgroupBinding.make(plan.cgroup, site: site, invocation: invocationID) }
        Phases.mark("cgroup_created")
        var launched = false
        defer { if !launched { _ = cgroup?.group.finish() } }
        let pump = options.streams != nil || hold ? try StreamPump(options.streams) : nil
        // v1: the child joins by itself, first thing (see selfJoinDescriptors).
        let tasks: [Int32]
        do {
            tasks = try cgroup?.group.selfJoinDescriptors() ?? []
        } catch {
            throw .preparation("cannot place the sandbox in its cgroups: \(error)")
        }
        defer { for fd in tasks { close(fd) } }
        let egress = try plan.network.egress.map { e throws(RunError) in try EgressBinding.start(e, trail: trail, activity: options.activity) }
        defer { if !launched { _ = egress?.finish() } }
        let sandbox = try Sandbox.launch(
            plan, cgroup: cgroup?.group.cloneTarget, cgroupTasks: tasks, stdio: pump?.childEnds ?? options.stdio, spawner: options.spawner,
            network: egress?.namespace, hold: hold, beforeRelease: invoked?.gate)
        Phases.mark(hold ? "sandbox_held" : "execve")
        launched = true
        egress?.launched()
        pump?.closeChildEnds()
        return Staged(cgroup: cgroup, pump: pump, egress: egress, sandbox: sandbox)
    }

    /// What a supervisor that is starting (burrowd after a restart) cleans up
    /// before any run: invocation cgroups whose supervisor is gone are killed
    /// and removed, and their audit trails closed as `supervisor_lost`.
    package static func recover(_ cgroup: CgroupPlan, store: AuditStore?) throws(RunError) -> (swept: [SweptInvocation], recovered: [String], notes: [String]) {
        let swept = try CgroupSite.locate(cgroup)?.sweep() ?? []
        let restored = DiskBudget.recoverAbandoned()
        guard let store else { return (swept, [], restored) }
        let (recovered, notes) = InvocationTrail.closeOrphans(store, swept: swept)
        return (swept, recovered, restored + notes)
    }

    /// Whether `invocation`'s last events wait for the audit log (it could not take them when the run ended).
    package static func outcomePending(_ invocation: String) -> Bool { PendingOutcome.isPending(invocation) }

    /// This process's own peak resident set: VmHWM of its address space.
    /// (getrusage's ru_maxrss survives execve: a supervisor started by a big
    /// process that forked would report its parent's size.)
    /// Nil when /proc does not say: a figure that was not read is not zero.
    private static func peakResidentKilobytes() -> UInt64? {
        guard let status = try? FileIO.read("/proc/self/status") else { return nil }
        // "VmHWM:\t   1234 kB"
        return Observation.fields(status, ["VmHWM"])["VmHWM"]?.split(separator: " ").first.flatMap { UInt64($0) }
    }

    /// Refuses a plan with any control this host (or this runtime) cannot enforce.
    static func checkEnforceable(_ plan: LaunchPlan) throws(RunError) {
        let missing = plan.controls.filter { !$0.enforceable }
        guard missing.isEmpty else {
            throw .refused(missing.map { "\($0.control) (\($0.requested)): \($0.detail)" }.joined(separator: "; "))
        }
    }

    /// Every control of the plan with what this run applied. A run only gets
    /// here when every child step succeeded, so each applied control is
    /// enforced; the observation from /proc backs the identity rows.
    private static func enforcedControls(_ plan: LaunchPlan, sandbox: Sandbox, observed: RunRecord.Observed?, diskBudget: String?) -> [RunRecord.Control] {
        plan.controls.map { control in
            var detail = control.detail
            var enforced = control.enforceable
            switch control.control {
            case .seccompFilter:
                detail = "\(plan.seccomp.instructions) instructions; observed Seccomp \(observed?.seccomp ?? "?") with \(observed?.seccompFilters ?? "?") filter(s)"
                // The tool handed over its listener only after its seccomp() succeeded.
                enforced = !plan.seccomp.bpf.bytes.isEmpty && sandbox.listener != nil && (observed.map { $0.seccomp == "2" } ?? true)
            case .seccompUserNotification:
                enforced = sandbox.listener != nil
                detail = enforced ? "listener held by the supervisor" : "no listener"
            case .landlock:
                detail = "ABI \(plan.landlock.abi.map(String.init) ?? "none"), \(plan.landlock.pathRules.count) path rules"
            case .diskWriteBudget:
                if let diskBudget, !diskBudget.isEmpty { detail = diskBudget }
            case .capabilityDrop:
                detail = "observed CapBnd \(observed?.capabilityBounding ?? "?"), CapEff \(observed?.capabilityEffective ?? "?")"
            case .noNewPrivileges:
                detail = "observed NoNewPrivs \(observed?.noNewPrivileges ?? "?")"
                enforced = observed.map { $0.noNewPrivileges == "1" } ?? true
            case .privileges:
                detail = "tool runs as uid \(observed?.uid ?? "?")"
            case .namespace(let kind):
                // clone3 created it (or the launch failed); only seeing it shared
                // with the supervisor would prove otherwise. A sandbox that ended
                // before it was observed has no namespace links left to read.
                let state = observed?.namespaces[kind.rawValue]
                detail = state == "own" ? "observed: own" : "created by clone3; " + (state.map { "observed: \($0)" } ?? "not observed")
                enforced = state != "shared with the supervisor"
            default:
                break
            }
            return RunRecord.Control(control: control.control.name, requested: control.requested, enforced: enforced, detail: detail)
        }
    }
}

/// Reads back what the sandbox's first process really got.
enum Observation {
    /// This process's own namespaces, read once (the supervisor never leaves them).
    static let ownNamespaces: [String: String?] = Dictionary(
        uniqueKeysWithValues: NamespaceKind.allCases.map { kind in
            let file = kind == .mount ? "mnt" : kind.rawValue
            return (file, LiveFileSystem().readLink("/proc/self/ns/\(file)"))
        })

    /// The lines of /proc/PID/status the record shows.
    private static let statusFields: Set<Substring> = [
        "Uid", "Gid", "Groups", "CapBnd", "CapEff", "CapPrm", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters",
    ]

    /// The `wanted` fields of a /proc status text, each value with its runs
    /// of tabs and spaces made one space; the other fifty-odd lines are
    /// skipped unsplit (this runs for every invocation).
    static func fields(_ text: String, _ wanted: Set<Substring>) -> [Substring: String] {
        var fields: [Substring: String] = [:]
        fields.reserveCapacity(wanted.count)
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":"), wanted.contains(line[..<colon]) else { continue }
            fields[line[..<colon]] = line[line.index(after: colon)...].split(whereSeparator: { $0 == "\t" || $0 == " " }).joined(separator: " ")
            if fields.count == wanted.count { break }
        }
        return fields
    }

    static func read(pid: pid_t, namespaces: [NamespaceKind]) -> RunRecord.Observed? {
        guard let text = try? FileIO.read("/proc/\(pid)/status") else { return nil }
        let fields = fields(text, statusFields)
        var ns: [String: String] = [:]
        var ids: [String: String] = [:]
        let fs = LiveFileSystem()
        for kind in namespaces {
            let file = kind == .mount ? "mnt" : kind.rawValue
            let theirs = fs.readLink("/proc/\(pid)/ns/\(file)")
            let ours = ownNamespaces[file] ?? nil
            ns[kind.rawValue] = theirs == nil ? "unreadable (the sandbox had already ended)" : theirs == ours ? "shared with the supervisor" : "own"
            ids[kind.rawValue] = theirs
        }
        return RunRecord.Observed(
            uid: fields["Uid"] ?? "?", gid: fields["Gid"] ?? "?", groups: fields["Groups"] ?? "",
            capabilityBounding: fields["CapBnd"] ?? "?", capabilityEffective: fields["CapEff"] ?? "?",
            capabilityPermitted: fields["CapPrm"] ?? "?", capabilityAmbient: fields["CapAmb"] ?? "?",
            noNewPrivileges: fields["NoNewPrivs"] ?? "?", seccomp: fields["Seccomp"] ?? "?",
            seccompFilters: fields["Seccomp_filters"] ?? "?", namespaces: ns, namespaceIDs: ids)
    }
}
