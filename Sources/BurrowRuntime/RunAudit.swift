package import BurrowAudit
import BurrowEgress
package import BurrowHost
import BurrowPolicy
import BurrowProfile
import BurrowSystem
import FoundationEssentials
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Where a run's audit events go and who asked for it.
package struct RunAudit: Sendable {
    package var store: AuditStore
    /// The caller, as the security context names it.
    package var caller: Caller
    /// `sha256:` of the profile file(s) the plan was compiled from.
    package var profileDigest: String?
    /// PerformanceThreshold above these (milliseconds); nil: not checked.
    package var durationThresholdMilliseconds: UInt64?
    package var cpuThresholdMilliseconds: UInt64?

    package init(store: AuditStore, caller: Caller, profileDigest: String?, durationThresholdMilliseconds: UInt64? = nil, cpuThresholdMilliseconds: UInt64? = nil) {
        self.store = store
        self.caller = caller
        self.profileDigest = profileDigest
        self.durationThresholdMilliseconds = durationThresholdMilliseconds
        self.cpuThresholdMilliseconds = cpuThresholdMilliseconds
    }
}

/// The audit events of one invocation, in order: ToolInvoked (durable before
/// anything else happens), SecurityViolation as each refused call is seen,
/// then ResourceLimitExceeded, PerformanceThreshold and exactly one terminal
/// event, committed together.
final class InvocationTrail: Sendable {
    let audit: RunAudit
    let plan: LaunchPlan
    let invocationID: String
    let context: SecurityContext
    /// Literal values never to store: what the caller's environment passed in.
    let secrets: [String]
    private let problems = Notes()

    init(_ audit: RunAudit, plan: LaunchPlan, invocationID: String) {
        self.audit = audit
        self.plan = plan
        self.invocationID = invocationID
        self.context = SecurityContext(
            principal: audit.caller.principal, uid: audit.caller.uid, invocationID: invocationID, profileDigest: audit.profileDigest,
            sandboxLevel: plan.sandboxLevel.rawValue, host: UserDatabase.hostName)
        self.secrets = plan.environment.filter { $0.source == .caller }.map(\.value)
    }

    private func event(_ details: some AuditDetails) -> AuditEvent {
        AuditEvent(tool: plan.tool.id, context: context, details: details)
    }

    /// Writes ToolInvoked. A log that cannot take it stops the run before it starts.
    func invoked() throws(RunError) {
        let l = plan.limits
        let details = InvocationDetails(
            argv: plan.command.argv, executable: plan.command.executable, workingDirectory: plan.command.workingDirectory,
            environment: plan.environment.map { "\($0.name) (\($0.source.rawValue))" }, profileFiles: plan.profileFiles, sandboxID: plan.identity.uid,
            namespaces: plan.namespaces.map(\.kind.rawValue), cgroupVersion: Int(plan.cgroup.version), seccompInstructions: Int(plan.seccomp.instructions),
            landlockABI: plan.landlock.abi.map { Int($0) }, network: plan.network.access.rawValue, exposureScore: plan.exposure.score,
            limits: .init(
                maxCpuTimeMilliseconds: l.maxCpuTime.milliseconds, maxMemoryBytes: l.maxMemory.bytes, maxFileSizeBytes: l.maxFileSize.bytes,
                maxOpenFiles: UInt64(l.maxOpenFiles), maxExecutionTimeMilliseconds: l.maxExecutionTime.milliseconds, maxProcesses: UInt64(l.maxProcesses),
                scratchSizeBytes: l.scratchSize.bytes, cpuQuotaPercent: UInt64(l.cpuQuotaPercent)),
            parameters: Dictionary(plan.parameters.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }), callerPID: audit.caller.pid)
        do {
            try audit.store.append([event(details)], secrets: secrets)
        } catch {
            throw .preparation("refusing to run: cannot record ToolInvoked in the audit log: \(error)")
        }
    }

    /// A refused system call, written as it happens.
    func violation(_ v: RunRecord.Violation) {
        do {
            try audit.store.append([event(v.details)], secrets: secrets)
        } catch {
            problems.add("audit: SecurityViolation \(v.syscall) not recorded: \(error)")
        }
    }

    /// One connection through the egress proxy, written when it ends: an
    /// allowed one as NetworkConnection, a refused one as PermissionDenied
    /// (whose bursts feed the AnomalousActivity rule).
    func network(_ r: EgressRecord, during: [String]? = nil) {
        let outcome: ConnectionDetails.Outcome
        switch r.outcome {
        case .closed(let reason): outcome = .allowed(ended: reason)
        case .failed(let why): outcome = .failed(error: why)
        case .refused(let refusal): outcome = .refused(reason: refusal.code, message: refusal.description)
        }
        let details = ConnectionDetails(
            connection: UInt64(r.connection), protocolName: r.protocolName, requested: r.requested, host: r.host, port: r.port, address: r.address,
            bytesOut: UInt64(clamping: r.bytesOut), bytesIn: UInt64(clamping: r.bytesIn), milliseconds: UInt64(clamping: r.milliseconds), outcome: outcome, during: during)
        do {
            try audit.store.append([event(details)], secrets: secrets)
        } catch {
            problems.add("audit: \(details.eventType.rawValue) for connection \(r.connection) not recorded: \(error)")
        }
    }

    /// Limits, thresholds and the terminal event for a run that ended;
    /// `lost` when the log could not take them (see `PendingOutcome`).
    func finished(_ record: RunRecord) -> (problems: [String], lost: Bool) {
        var events: [AuditEvent] = []
        for limit in record.limits { events.append(event(limit.details)) }
        let wall = record.usage.wallMilliseconds
        if let threshold = audit.durationThresholdMilliseconds, wall > threshold {
            events.append(event(ThresholdDetails(metric: "duration", threshold: threshold, observed: wall)))
        }
        if let threshold = audit.cpuThresholdMilliseconds, let cpu = record.usage.cpuMicroseconds.map({ $0 / 1000 }), cpu > threshold {
            events.append(event(ThresholdDetails(metric: "cpu", threshold: threshold, observed: cpu)))
        }
        let reason: String? =
            record.stopped != nil ? "stopped" : !record.limits.isEmpty ? "limit_exceeded" : record.exit.signal != nil ? "signal" : record.exit.code != 0 ? "exit_status" : nil
        let (e, u) = (record.exit, record.usage)
        events.append(
            event(
                OutcomeDetails(
                    exitCode: e.code, signal: e.signal, coreDumped: e.coreDumped, status: e.status, spawnMicroseconds: record.durations.spawnMicroseconds,
                    cpuMicroseconds: u.cpuMicroseconds, peakMemoryBytes: u.peakMemoryBytes, peakProcesses: u.peakProcesses, wallMilliseconds: u.wallMilliseconds,
                    violations: record.violations.reduce(0) { $0 + $1.count }, limits: record.limits.map(\.resource),
                    unenforced: record.controls.filter { !$0.enforced }.map(\.control), notes: record.notes, reason: reason, message: record.stopped)))
        let lost = !close(events, what: "the outcome")
        return (problems.all, lost)
    }

    /// Appends a run's last events; when the log cannot take them, keeps them
    /// as a `PendingOutcome` for the sweep. Returns whether they were recorded.
    private func close(_ events: [AuditEvent], what: String) -> Bool {
        do {
            try audit.store.append(events, secrets: secrets)
            return true
        } catch {
            let kept = PendingOutcome.save(audit.store.redacted(events, secrets: secrets), invocation: invocationID)
            problems.add(
                "audit: \(what) was not recorded: \(error); "
                    + (kept.map { "and is lost: \($0)" } ?? "it is kept in /run/burrow/outcomes and recorded once the audit log takes it"))
            return false
        }
    }

    /// The terminal event of a run that failed before or while starting.
    func failed(_ error: RunError) {
        var stage: String?
        var errno: String?
        if case .spawn(let failed, let number, _) = error {
            stage = failed.summary
            errno = errnoName(number.rawValue)
        }
        let details = StartFailureDetails(reason: error.reason, message: error.description, stage: stage, errno: errno)
        _ = close([event(details)], what: "the failure")
    }
}

extension InvocationTrail {
    /// ToolFailed `supervisor_lost` for every open invocation whose supervisor
    /// is gone (its lease is free), after the sweep removed what it left.
    /// Returns the invocations closed.
    static func closeOrphans(_ store: AuditStore, swept: [SweptInvocation]) -> (closed: [String], notes: [String]) {
        let open: [OpenInvocation]
        do {
            open = try store.openInvocations()
        } catch {
            return ([], ["audit: cannot look for invocations left open: \(error)"])
        }
        var closed: [String] = []
        var notes: [String] = []
        let host = UserDatabase.hostName
        for o in open {
            // Held by a live supervisor (or not a valid id): not ours to close.
            guard let lease = try? InvocationLease.takeOver(o.invocationID) else { continue }
            defer { lease.end() }
            // Its outcome is known (the log could not take it then): recorded now, as it was.
            if var late = PendingOutcome.load(o.invocationID), !late.isEmpty {
                for i in late.indices { late[i].markRecordedLate() }
                do {
                    _ = try store.appendIfOpen(late)
                    PendingOutcome.remove(o.invocationID)
                    notes.append("audit: invocation \(o.invocationID)'s outcome, which the audit log could not take when it ended, is recorded now (recordedLate)")
                } catch {
                    notes.append("audit: invocation \(o.invocationID)'s outcome is still not recorded: \(error)")
                }
                continue
            }
            let sweep = swept.first { $0.invocationID == o.invocationID }
            let details = SupervisorLostDetails(cgroupSwept: sweep != nil, sweepProblem: sweep?.problem, invokedAt: o.invokedAt.map { AuditClock.format($0) })
            let event = AuditEvent(
                tool: o.tool,
                context: SecurityContext(
                    principal: o.principal ?? "unknown", uid: o.uid, invocationID: o.invocationID, profileDigest: o.profileDigest, sandboxLevel: o.sandboxLevel, host: host),
                details: details)
            do {
                if try store.appendIfOpen(event) != nil { closed.append(o.invocationID) }
            } catch {
                notes.append("audit: cannot close invocation \(o.invocationID) left open: \(error)")
            }
        }
        return (closed, notes)
    }
}

extension RunRecord.Violation {
    var details: SyscallViolationDetails { SyscallViolationDetails(syscall: syscall, errno: errno, count: count, reason: reason, during: during) }
}

extension RunRecord.LimitEvent {
    var details: LimitExceededDetails {
        LimitExceededDetails(
            resource: resource, limit: limit, observed: observed, unit: unit, limitValue: limitValue, observedValue: observedValue,
            invocationID: invocationID, during: during)
    }
}

/// Notes gathered from the supervisor thread and read at the end.
private final class Notes: Sendable {
    private let items = Mutex<[String]>([])

    func add(_ note: String) { items.withLock { $0.append(note) } }

    var all: [String] { items.withLock { $0 } }
}
