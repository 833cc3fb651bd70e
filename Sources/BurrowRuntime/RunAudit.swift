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

    private func event(_ type: AuditEventType, _ details: JSONValue) -> AuditEvent {
        AuditEvent(tool: plan.tool.id, type: type, context: context, details: details)
    }

    /// Writes ToolInvoked. A log that cannot take it stops the run before it starts.
    func invoked() throws(RunError) {
        let l = plan.limits
        // Built by hand, not through JSONEncoder: this is on the spawn path,
        // and Codable's first use costs milliseconds of conformance lookups.
        let details: JSONValue = .object([
            "argv": .strings(plan.command.argv),
            "executable": .string(plan.command.executable),
            "workingDirectory": .string(plan.command.workingDirectory),
            // Names only, with where each value came from: values never reach the log.
            "environment": .strings(plan.environment.map { "\($0.name) (\($0.source.rawValue))" }),
            "profileFiles": .strings(plan.profileFiles),
            "sandboxID": .integer(Int64(plan.identity.uid)),
            "namespaces": .strings(plan.namespaces.map(\.kind.rawValue)),
            "cgroupVersion": .integer(Int64(plan.cgroup.version)),
            "seccompInstructions": .integer(Int64(plan.seccomp.instructions)),
            "landlockABI": plan.landlock.abi.map { .integer(Int64($0)) } ?? .null,
            "network": .string(plan.network.access.rawValue),
            "exposureScore": .number(plan.exposure.score),
            "limits": .object([
                "maxCpuTime": .integer(Int64(l.maxCpuTime.milliseconds)), "maxMemory": .integer(Int64(l.maxMemory.bytes)),
                "maxFileSize": .integer(Int64(l.maxFileSize.bytes)), "maxOpenFiles": .integer(Int64(l.maxOpenFiles)),
                "maxExecutionTime": .integer(Int64(l.maxExecutionTime.milliseconds)), "maxProcesses": .integer(Int64(l.maxProcesses)),
                "scratchSize": .integer(Int64(l.scratchSize.bytes)), "cpuQuotaPercent": .integer(Int64(l.cpuQuotaPercent)),
            ]),
        ])
        do {
            try audit.store.append([event(.toolInvoked, details)], secrets: secrets)
        } catch {
            throw .preparation("refusing to run: cannot record ToolInvoked in the audit log: \(error)")
        }
    }

    /// A refused system call, written as it happens.
    func violation(_ v: RunRecord.Violation) {
        do {
            try audit.store.append([event(.securityViolation, v.json)], secrets: secrets)
        } catch {
            problems.add("audit: SecurityViolation \(v.syscall) not recorded: \(error)")
        }
    }

    /// One connection through the egress proxy, written when it ends: an
    /// allowed one as NetworkConnection, a refused one as PermissionDenied
    /// (whose bursts feed the AnomalousActivity rule).
    func network(_ r: EgressRecord, during: [String]? = nil) {
        var details: [String: JSONValue] = [
            "connection": .integer(Int64(r.connection)), "protocol": .string(r.protocolName), "requested": .string(r.requested),
            "host": r.host.map { .string($0) } ?? .null, "port": .optional(r.port), "address": r.address.map { .string($0) } ?? .null,
            "bytesOut": .integer(Int64(clamping: r.bytesOut)), "bytesIn": .integer(Int64(clamping: r.bytesIn)),
            "milliseconds": .integer(Int64(clamping: r.milliseconds)),
        ]
        let type: AuditEventType
        switch r.outcome {
        case .closed(let reason):
            type = .networkConnection
            details["outcome"] = .string("allowed")
            details["ended"] = .string(reason)
        case .failed(let why):
            type = .networkConnection
            details["outcome"] = .string("failed")
            details["error"] = .string(why)
        case .refused(let refusal):
            type = .permissionDenied
            details["outcome"] = .string("refused")
            details["reason"] = .string(refusal.code)
            details["message"] = .string(refusal.description)
            details["denial"] = .string("network")
        }
        if let during, !during.isEmpty { details["during"] = .strings(during) }
        do {
            try audit.store.append([event(type, .object(details))], secrets: secrets)
        } catch {
            problems.add("audit: \(type.rawValue) for connection \(r.connection) not recorded: \(error)")
        }
    }

    /// Limits, thresholds and the terminal event for a run that ended;
    /// `lost` when the log could not take them (see `PendingOutcome`).
    func finished(_ record: RunRecord) -> (problems: [String], lost: Bool) {
        var events: [AuditEvent] = []
        for limit in record.limits { events.append(event(.resourceLimitExceeded, limit.json)) }
        let wall = record.usage.wallMilliseconds
        if let threshold = audit.durationThresholdMilliseconds, wall > threshold {
            events.append(
                event(.performanceThreshold, .object(["metric": .string("duration"), "unit": .string("milliseconds"), "threshold": .integer(Int64(threshold)), "observed": .integer(Int64(wall))])))
        }
        if let threshold = audit.cpuThresholdMilliseconds, let cpu = record.usage.cpuMicroseconds.map({ $0 / 1000 }), cpu > threshold {
            events.append(
                event(.performanceThreshold, .object(["metric": .string("cpu"), "unit": .string("milliseconds"), "threshold": .integer(Int64(threshold)), "observed": .integer(Int64(cpu))])))
        }
        let reason: String? =
            record.stopped != nil ? "stopped" : !record.limits.isEmpty ? "limit_exceeded" : record.exit.signal != nil ? "signal" : record.exit.code != 0 ? "exit_status" : nil
        let e = record.exit
        let u = record.usage
        var details: [String: JSONValue] = [
            "exit": .object(["code": .optional(e.code), "signal": .optional(e.signal), "coreDumped": .bool(e.coreDumped), "status": .integer(Int64(e.status))]),
            "spawnMicroseconds": .integer(Int64(record.durations.spawnMicroseconds)),
            "usage": .object([
                "cpuMicroseconds": .optional(u.cpuMicroseconds), "peakMemoryBytes": .optional(u.peakMemoryBytes),
                "peakProcesses": .optional(u.peakProcesses), "wallMilliseconds": .integer(Int64(u.wallMilliseconds)),
            ]),
            // Refused calls, all kinds together.
            "violations": .integer(Int64(record.violations.reduce(0) { $0 + $1.count })),
            "limits": .strings(record.limits.map(\.resource)),
            "unenforced": .strings(record.controls.filter { !$0.enforced }.map(\.control)),
            "notes": .strings(record.notes),
        ]
        if let reason { details["reason"] = .string(reason) }
        if let stopped = record.stopped { details["message"] = .string(stopped) }
        events.append(event(reason == nil ? .toolCompleted : .toolFailed, .object(details)))
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
        var details: [String: JSONValue] = ["message": .string(error.description)]
        if case .spawn(let stage, let errno, _) = error {
            details["stage"] = .string(stage.summary)
            details["errno"] = .string(errnoName(errno.rawValue))
        }
        details["reason"] = .string(error.reason)
        _ = close([event(.toolFailed, .object(details))], what: "the failure")
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
                for i in late.indices {
                    if case .object(var d) = late[i].details {
                        d["recordedLate"] = .bool(true)
                        late[i].details = .object(d)
                    }
                }
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
            var details: [String: JSONValue] = [
                "reason": .string("supervisor_lost"),
                "message": .string("the supervisor ended without recording an outcome (killed, crashed, or the host restarted)"),
                "cgroupSwept": .bool(sweep != nil),
            ]
            if let problem = sweep?.problem { details["sweepProblem"] = .string(problem) }
            if let at = o.invokedAt { details["invokedAt"] = .string(AuditClock.format(at)) }
            let event = AuditEvent(
                tool: o.tool, type: .toolFailed,
                context: SecurityContext(
                    principal: o.principal ?? "unknown", uid: o.uid, invocationID: o.invocationID, profileDigest: o.profileDigest, sandboxLevel: o.sandboxLevel, host: host),
                details: .object(details))
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
    var json: JSONValue {
        var d: [String: JSONValue] = ["syscall": .string(syscall), "errno": .string(errno), "count": .integer(Int64(count)), "reason": .string(reason)]
        if let during { d["during"] = .strings(during) }
        return .object(d)
    }
}

extension RunRecord.LimitEvent {
    var json: JSONValue {
        var d: [String: JSONValue] = [
            "resource": .string(resource), "limit": .string(limit), "observed": .string(observed), "unit": .string(unit),
            "limitValue": .integer(Int64(clamping: limitValue)), "observedValue": .optional(observedValue), "invocationID": .string(invocationID),
        ]
        if let during { d["during"] = .strings(during) }
        return .object(d)
    }
}

extension JSONValue {
    static func strings(_ items: [String]) -> JSONValue { .array(items.map { .string($0) }) }

    static func optional(_ n: (some BinaryInteger)?) -> JSONValue { n.map { .integer(Int64(clamping: $0)) } ?? .null }
}

/// Notes gathered from the supervisor thread and read at the end.
private final class Notes: Sendable {
    private let items = Mutex<[String]>([])

    func add(_ note: String) { items.withLock { $0.append(note) } }

    var all: [String] { items.withLock { $0 } }
}
