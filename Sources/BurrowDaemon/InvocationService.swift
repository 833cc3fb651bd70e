import BurrowAPI
import BurrowAudit
import BurrowHost
import BurrowInvocation
import BurrowMCP
import BurrowPolicy
import BurrowProfile
import BurrowRuntime
import BurrowSystem
import FoundationEssentials
import Hummingbird
import Prometheus
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// burrowd's side of the front door (`Invocations`): what only the API has
/// (the registered tool and its status, the request's stdin and timeout,
/// rate and concurrency admission, refusals aggregated by `DenialLog`,
/// sandboxes built ahead, results kept in the registry, metrics), around
/// the same `prepare` and `run` as `burrow run`. Each run is supervised on
/// a thread of its own (a blocking poll loop) and cloned through
/// burrow-spawner. Keeps every live run stoppable for shutdown.
final class InvocationService: Sendable {
    let policy: HostPolicy
    let front: Invocations
    let registry: RegistryStore
    let metrics: DaemonMetrics
    let admission: Admission
    let denials: DenialLog
    private let live = Mutex<[String: RunStop]>([:])
    private let draining = Atomic<Bool>(false)
    private let finished = Atomic<Int>(0)
    /// When a run last swept left-behind invocation cgroups (monotonic ns).
    private let lastSweep = Atomic<UInt64>(0)
    static let sweepInterval: UInt64 = 5_000_000_000
    /// burrow-spawner, once started (`Daemon.run`); nil: sandboxes are cloned in process.
    private let spawner = Mutex<Spawner?>(nil)

    /// Sandboxes built ahead, one per recently invoked tool.
    let warm: WarmPool

    var planner: Planner { front.planner }

    func use(_ spawner: Spawner) { self.spawner.withLock { $0 = spawner } }

    init(front: Invocations, registry: RegistryStore, metrics: DaemonMetrics, admission: Admission, denials: DenialLog) {
        let policy = front.policy
        warm = WarmPool(idle: policy.daemon.warmSandboxes ? policy.daemon.warmSandboxIdle : Seconds(milliseconds: 0), metrics: metrics)
        self.policy = policy
        self.front = front
        self.registry = registry
        self.metrics = metrics
        self.admission = admission
        self.denials = denials
    }

    /// A request that passed every check and holds its admission slot; `run` releases it.
    struct Prepared: Sendable {
        var invocation: PreparedInvocation
        var record: ToolRecord
        /// The admission slot: given back when the run ends, or when a
        /// prepared invocation is dropped unrun (a streaming caller that left first).
        var slot: Admission.Slot
        var stdin: [UInt8]
        /// The invocation's phase marks (BURROW_PHASES=1 only).
        var phases: Phases.Recorder?
        /// Who asked for it.
        var caller: CallerIdentity
        var id: String { invocation.id }
    }

    var liveCount: Int { live.withLock { $0.count } }

    /// Everything before the sandbox starts. A refusal is a PermissionDenied
    /// (with the reason, aggregated per caller by `DenialLog`) and a
    /// DaemonError for the caller. `session`: the run will be an MCP session
    /// behind the relay; a plain invocation's stdin would bypass the relay,
    /// so the front door refuses a tool with relay policy one. `check`: a
    /// health check (`HealthMonitor`), which runs `argv` instead of the
    /// registration's command, takes a sandbox slot but no token of the
    /// callers' rate, builds nothing ahead, and is no caller's refusal.
    func prepare(
        _ record: ToolRecord, _ request: InvocationRequest, caller: CallerIdentity, session: Bool = false, check: Bool = false, argv: [String]? = nil,
        phases: Phases.Recorder? = nil
    ) async throws(DaemonError) -> Prepared {
        let tool = record.registration.id
        let denials = denials
        let version = record.registration.metadata.version
        func refuse(_ code: ErrorCode, _ message: String, retryAfter: Int? = nil) async -> DaemonError {
            if !check { await denials.record(caller: caller, tool: tool, RefusalDetails(reason: code.name, message: message, version: version)) }
            return DaemonError(code, message, retryAfter: retryAfter)
        }
        if draining.load(ordering: .relaxed) { throw await refuse(.shuttingDown, "burrowd is shutting down; retry against the restarted service") }
        if record.registration.status == .disabled { throw await refuse(.toolDisabled, "\(tool) \(record.registration.metadata.version) is disabled") }

        var stdin: [UInt8] = []
        if let text = request.stdin { stdin = Array(text.utf8) }
        if let b64 = request.stdinBase64 {
            guard request.stdin == nil, let data = Data(base64Encoded: b64) else {
                throw DaemonError(.invalidRequest, request.stdin != nil ? "give stdin or stdinBase64, not both" : "stdinBase64 is not valid base64")
            }
            stdin = Array(data)
        }
        var timeout: Seconds?
        if let t = request.timeoutSeconds {
            guard t.isFinite, t > 0, t < 1e9 else { throw DaemonError(.invalidRequest, "timeoutSeconds must be a positive number of seconds") }
            timeout = Seconds(milliseconds: max(1, UInt64((t * 1000).rounded(.up))))
        }

        let limits = Admission.Limits(
            requestsPerMinute: min(record.registration.rateLimits?.requestsPerMinute ?? policy.rateLimits.requestsPerMinute, policy.rateLimits.requestsPerMinute),
            maxConcurrent: min(record.registration.rateLimits?.maxConcurrent ?? policy.rateLimits.maxConcurrent, policy.rateLimits.maxConcurrent))
        do {
            try admission.admit(tool, limits, takesToken: !check, shared: true)
        } catch {
            let fleet = policy.rateLimits.scope == .fleet ? " across the fleet" : ""
            switch error {
            case .rate(let limit, let retry):
                throw await refuse(.rateLimited, "\(tool) accepts \(limit) requests per minute\(fleet); retry in \(retry) s", retryAfter: retry)
            case .concurrency(let limit):
                throw await refuse(.tooManyConcurrent, "\(tool) already runs \(limit) sandboxes\(fleet) (max_concurrent); retry when one ends", retryAfter: 1)
            case .fleetUnknown:
                throw await refuse(
                    .serverBusy, "\(tool)'s limits hold across the fleet, and this node has not read the fleet's counters yet ([registry] url); retry, or ask another node",
                    retryAfter: 1)
            case .registrations, .planning:
                throw DaemonError(.`internal`, "unexpected refusal")
            }
        }
        let slot = Admission.Slot(admission, tool)

        let key = WarmPool.key(record)
        let pool = warm
        var ask = Invocations.Request(
            profile: .document(record.registration.profile, id: tool), argv: argv ?? (record.registration.command + request.arguments), parameters: request.parameters,
            environment: request.environment,
            refuseUnlistedEnvironment: true, deadline: timeout, mode: session ? .relay : .plain, relayRemedy: "start a session (POST /v1/tools/\(tool)/sessions)",
            warm: pool.enabled && !check ? WarmSupply(take: { pool.take(key) }, giveBack: { pool.giveBack(key, $0) }, retire: { pool.retire($0) }) : nil)
        ask.manifest = record.registration.manifestSource
        let invocation: PreparedInvocation
        do {
            invocation = try Phases.recording(phases) { () throws(Invocations.Refusal) in try front.prepare(ask, caller: caller.caller) }
        } catch {
            slot.release()
            if error.denied && !check { await denials.record(caller: caller, tool: tool, RefusalDetails(reason: error.code.name, message: error.message, version: version)) }
            throw DaemonError(error.code, error.message, retryAfter: error.retryAfter)
        }
        if !session && !check {
            if pool.enabled { metrics.warm(invocation.launch == .warm ? "hit" : invocation.launch.rawValue) }
            // Not with a caller's parameter values: the next caller's differ
            // (an unfit sandbox), and a waiting one would hold this caller's paths.
            if request.parameters.isEmpty { buildAhead(record, invocation.loaded) }
        }
        return Prepared(invocation: invocation, record: record, slot: slot, stdin: stdin, phases: phases, caller: caller)
    }

    /// Builds the tool's next sandbox ahead, from the plan of a request with
    /// no arguments, environment or timeout of its own (what the next
    /// request's plan most likely equals but for those), through burrow-spawner
    /// only: a sandbox cloned by a thread that ends would die with it.
    private func buildAhead(_ record: ToolRecord, _ loaded: Planner.Loaded) {
        guard warm.enabled, let spawner = spawner.withLock({ $0 }), !draining.load(ordering: .relaxed) else { return }
        let (planner, policy) = (planner, policy)
        warm.refill(WarmPool.key(record)) {
            guard let identity = try? SandboxIDLease.acquire(in: policy.sandbox.idRange) else { return nil }
            guard let plan = try? planner.plan(loaded, argv: record.registration.command, environment: [:], sandboxID: identity.id, manifest: record.registration.manifestSource),
                WarmSandbox.canBuild(plan), !plan.mcp.isConfigured,
                let sandbox = try? WarmSandbox.build(plan, invocationID: UUID().uuidString.lowercased(), spawner: spawner)
            else { return nil }
            return WarmEntry(sandbox: sandbox, identity: identity)
        }
    }

    /// Runs a prepared invocation to its end. `sink` gets the streamed events
    /// (on the supervisor's thread); the result is stored either way.
    /// An MCP session gives its `client` side of the relay: the tool's
    /// streams are the relay's, not captured.
    func run(_ p: Prepared, sink: (@Sendable (InvocationEvent) -> Void)? = nil, client: PreparedInvocation.RelayClient? = nil) async -> InvocationResult {
        let tool = p.record.registration.id
        let principal = p.invocation.audit.caller.principal
        defer { p.slot.release() }
        var result = InvocationResult(
            id: p.id, tool: tool, version: p.record.registration.metadata.version, state: .running, startedAt: AuditClock.format(AuditClock.now()))
        try? registry.saveInvocation(result, principal: principal, finished: false)
        p.phases?.mark("running_saved")
        let started = ContinuousClock.now

        let id = p.id
        var forward: CapturedStreams.Sink?
        if let sink {
            forward = { stream, bytes in sink(InvocationEvent(event: stream.rawValue, invocation: id, output: bytes)) }
        }
        let streams = CapturedStreams(input: p.stdin, cap: Int(clamping: policy.daemon.maxOutputBytes.bytes), sink: forward)
        live.withLock { $0[id] = p.invocation.stop }
        defer { _ = live.withLock { $0.removeValue(forKey: id) } }
        let metrics = metrics
        let spawner = spawner.withLock { $0 }
        let sweep = sweepDue()
        let (invocation, phases) = (p.invocation, p.phases)
        let outcome: Result<PreparedInvocation.Outcome, RunError>? = await DedicatedThread.run {
            phases?.mark("supervisor_thread")
            let active = Atomic<Bool>(false)
            defer { if active.load(ordering: .relaxed) { metrics.active.decrement() } }
            do throws(RunError) {
                return .success(
                    try Phases.recording(phases) { () throws(RunError) in
                        try invocation.run(
                            Runner.Options(
                                forwardSignals: false, streams: client == nil ? streams : nil, spawner: spawner, sweep: sweep,
                                onStart: {
                                    active.store(true, ordering: .relaxed)
                                    metrics.active.increment()
                                    sink?(InvocationEvent(event: "started", invocation: id))
                                },
                                onViolation: { v in
                                    metrics.violation(v.syscall)
                                    sink?(InvocationEvent(event: "violation", invocation: id, violation: RefusedCall(syscall: v.syscall, errno: v.errno, count: v.count, reason: v.reason)))
                                }), client: client)
                    })
            } catch {
                return .failure(error)
            }
        }
        result.stdout = CapturedOutput(streams.stdout)
        result.stderr = CapturedOutput(streams.stderr)
        result.durationMilliseconds = UInt64(max(0, ((ContinuousClock.now - started) / .milliseconds(1)).rounded()))
        switch outcome {
        case nil:
            client?.whenDone()
            return finish(&result, p, error: .init(code: .preparationFailed, message: "cannot start a supervisor thread"), sink: sink)
        case .failure(let error):
            return finish(&result, p, error: .init(code: error.code, message: error.description), sink: sink)
        case .success(let outcome):
            let record = outcome.record
            result.exitCode = record.exit.code
            result.signal = record.exit.signal
            result.limits = record.limits.map { LimitHit(resource: $0.resource, limit: $0.limit, observed: $0.observed) }
            result.violations = record.violations.map { RefusedCall(syscall: $0.syscall, errno: $0.errno, count: $0.count, reason: $0.reason) }
            result.stopped = record.stopped
            let notes = record.notes + outcome.problems
            result.notes = notes.isEmpty ? nil : notes
            result.spawnMicroseconds = record.durations.spawnMicroseconds
            result.cpuMicroseconds = record.usage.cpuMicroseconds
            result.peakMemoryBytes = record.usage.peakMemoryBytes
            metrics.spawn.recordNanoseconds(Int64(record.durations.spawnMicroseconds) * 1000)
            for q in record.quietRefusals { metrics.quietRefusal(q.syscall, count: q.count) }
            for limit in record.limits {
                metrics.limit(limit.resource)
                sink?(InvocationEvent(event: "limit", invocation: id, limit: LimitHit(resource: limit.resource, limit: limit.limit, observed: limit.observed)))
            }
            let clean = record.exit.code == 0 && record.limits.isEmpty && record.stopped == nil
            metrics.invocation(clean ? "completed" : "failed")
            return finish(&result, p, error: nil, sink: sink)
        }
    }

    /// burrowd swept at start; after that, a `burrow run` killed on this host
    /// leaves cgroups behind that the next sweep (every few seconds) removes:
    /// true for the one run that should sweep now.
    private func sweepDue() -> Bool {
        let now = Kernel.monotonicNanoseconds()
        let last = lastSweep.load(ordering: .relaxed)
        return now - last >= Self.sweepInterval && lastSweep.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
    }

    private static func run(
        _ invocation: PreparedInvocation, _ options: Runner.Options, client: PreparedInvocation.RelayClient?
    ) -> Result<PreparedInvocation.Outcome, RunError> {
        do {
            return .success(try invocation.run(options, client: client))
        } catch {
            return .failure(error)
        }
    }

    /// Whether shutdown has begun (new invocations are refused).
    var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// A session client's run (the session socket), on the calling thread:
    /// the same `run` as `burrow run`'s, with the client's stdin, stdout
    /// and stderr as the tool's (behind the relay: as the client's side of
    /// it, closed when the relay is done with them), the signals the client
    /// passes on, and the run stoppable by shutdown.
    func runSession(
        _ invocation: PreparedInvocation, stdio: [FileDescriptor], signals: SignalRelay, pins: PinnedDefinitions? = nil,
        onViolation: @escaping @Sendable (RunRecord.Violation) -> Void
    ) -> Result<PreparedInvocation.Outcome, RunError> {
        let id = invocation.id
        live.withLock { $0[id] = invocation.stop }
        defer { _ = live.withLock { $0.removeValue(forKey: id) } }
        let metrics = metrics
        let active = Atomic<Bool>(false)
        defer { if active.load(ordering: .relaxed) { metrics.active.decrement() } }
        var options = Runner.Options(
            forwardSignals: false, spawner: spawner.withLock { $0 }, sweep: sweepDue(),
            onStart: {
                active.store(true, ordering: .relaxed)
                metrics.active.increment()
            },
            onViolation: { v in
                metrics.violation(v.syscall)
                onViolation(v)
            })
        options.relayedSignals = signals
        let outcome: Result<PreparedInvocation.Outcome, RunError>
        // Behind the relay, the client's descriptors are the relay's until it
        // says it is done with them (`whenDone`, exactly once); the stop
        // eventfd ends its waits on them once the run is over, whatever the
        // client does with its ends, and this thread waits for that.
        var relayEnd: (stop: FileDescriptor, done: FileDescriptor)?
        if invocation.relayed {
            let stop = try? Kernel.eventDescriptor()
            let ends = try? Kernel.pipe()
            guard let stop, let (done, notify) = ends else {
                for fd in stdio + [stop, ends?.0, ends?.1].compactMap({ $0 }) { try? fd.close() }
                return .failure(.preparation("cannot create the relay's stop descriptors"))
            }
            relayEnd = (stop, done)
            var client = PreparedInvocation.RelayClient(
                input: stdio[0].rawValue, output: stdio[1].rawValue, stderr: stdio[2].rawValue, stop: stop.rawValue,
                whenDone: {
                    for fd in stdio { try? fd.close() }
                    try? notify.close()
                })
            client.pins = pins
            outcome = Self.run(invocation, options, client: client)
        } else {
            options.stdio = stdio
            outcome = Self.run(invocation, options, client: nil)
        }
        if let (stop, done) = relayEnd {
            var one: UInt64 = 1
            _ = write(stop.rawValue, &one, 8)
            var byte: UInt8 = 0
            while read(done.rawValue, &byte, 1) < 0 && errno == EINTR {}
            try? done.close()
            try? stop.close()
        }
        metrics.invocation(outcome.clean ? "completed" : "failed")
        return outcome
    }

    private func finish(_ result: inout InvocationResult, _ p: Prepared, error: ErrorBody.Detail?, sink: (@Sendable (InvocationEvent) -> Void)?) -> InvocationResult {
        result.state = error == nil ? .finished : .failed
        result.error = error
        // The run's last events wait in /run/burrow/outcomes when the audit log could not take them.
        if Runner.outcomePending(result.id) { result.auditLost = true }
        result.finishedAt = AuditClock.format(AuditClock.now())
        if error != nil { metrics.invocation("failed") }
        try? registry.saveInvocation(result, principal: p.invocation.audit.caller.principal, finished: true)
        p.phases?.mark("result_saved")
        // Results older than [daemon] result_retention go every 256 invocations (and at start).
        if finished.add(1, ordering: .relaxed).newValue % 256 == 0 {
            try? registry.pruneInvocations(olderThanMicroseconds: Int64(policy.daemon.resultRetention.milliseconds) * 1000)
        }
        sink?(InvocationEvent(event: "exited", invocation: result.id, result: result))
        return result
    }

    /// Stops one live invocation (nothing when it has ended).
    func stop(_ id: String, _ reason: String) {
        live.withLock { $0[id] }?.stop(reason)
    }

    /// Refuses new invocations from now on (shutdown has begun).
    func drain() {
        draining.store(true, ordering: .relaxed)
        warm.close()
    }

    /// Stops every live sandbox; each run then records ToolFailed `stopped`.
    func stopAll(_ reason: String) -> Int {
        let stops = live.withLock { Array($0.values) }
        for s in stops { s.stop(reason) }
        return stops.count
    }
}

extension Result<PreparedInvocation.Outcome, RunError> {
    /// Exit 0, within every limit, not stopped.
    var clean: Bool {
        guard case .success(let o) = self else { return false }
        return o.record.exit.code == 0 && o.record.limits.isEmpty && o.record.stopped == nil
    }
}

extension CapturedOutput {
    init(_ output: CapturedStreams.Output) {
        let text = String(validating: output.bytes, as: UTF8.self)
        self.init(text: text, base64: text == nil ? Data(output.bytes).base64EncodedString() : nil, bytes: output.total, truncated: output.truncated)
    }
}

extension InvocationEvent {
    init(event: String, invocation: String, output bytes: [UInt8]) {
        let text = String(validating: bytes, as: UTF8.self)
        self.init(event: event, invocation: invocation, text: text, base64: text == nil ? Data(bytes).base64EncodedString() : nil)
    }
}

/// Runs a closure on a new detached thread and awaits its value; nil when no thread could be created.
enum DedicatedThread {
    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T? {
        await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            do {
                try Kernel.detachedThread { continuation.resume(returning: body()) }
            } catch {
                continuation.resume(returning: nil)
            }
        }
    }
}
