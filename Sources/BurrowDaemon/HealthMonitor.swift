import BurrowAPI
import BurrowAudit
import BurrowHost
import BurrowInvocation
import BurrowJSON
import BurrowRuntime
import BurrowSystem
import FoundationEssentials
import Logging
import ServiceLifecycle
import Synchronization

/// burrowd's health checks: each tool whose registration has `health` is
/// started in its sandbox every `intervalSeconds`, through the same front
/// door as an invocation (its plan, its limits, one of its max_concurrent
/// slots, its audit trail as the principal `burrowd:health`), and checked
/// within `timeoutSeconds`: an MCP server must answer `initialize` and
/// `tools/list`, a plain tool's `health.command` must exit 0. A failure
/// makes an active tool `degraded`, `unhealthyThreshold` of them in a row
/// `unavailable`; a success makes it `active` again. Each change of status
/// is a ToolUpdated event (`HealthDetails`), and is kept only once the
/// audit log has it. A check that finds every slot of the tool taken is
/// skipped, not failed. The tool checked is the version an invocation
/// without `version` runs; a new version starts as not yet checked.
final class HealthMonitor: Sendable {
    /// Checks running at once, all tools together.
    static let maxParallel = 4
    /// The caller a check runs as (no uid: it is no local user's run).
    static let identity = CallerIdentity.remote(.init(principal: HealthDetails.principal, address: "burrowd"))

    private let registry: RegistryStore
    private let invocations: InvocationService
    private let audit: AuditStore
    private let metrics: DaemonMetrics
    private let logger: Logger

    private struct State {
        /// The registry generation `tools` was read at.
        var generation: UInt64?
        /// The version checked of each tool, by id.
        var tools: [String: ToolRecord] = [:]
        var due: [String: ContinuousClock.Instant] = [:]
        var running: Set<String> = []
        var health: [String: ToolHealth] = [:]
    }

    private let state: Mutex<State>

    init(registry: RegistryStore, invocations: InvocationService, audit: AuditStore, metrics: DaemonMetrics, logger: Logger) {
        self.registry = registry
        self.invocations = invocations
        self.audit = audit
        self.metrics = metrics
        self.logger = logger
        var initial = State()
        do {
            initial.health = try registry.healthStates()
        } catch {
            logger.error("health checks start from nothing: \(error)")
        }
        state = Mutex(initial)
    }

    /// `record` with what the checks last found of it (when it is the version checked).
    func annotate(_ record: ToolRecord) -> ToolRecord {
        var r = record
        r.health = state.withLock { $0.health[record.registration.id] }.flatMap { $0.version == record.registration.metadata.version ? $0 : nil }
        return r
    }

    /// Checks what is due, every half second, until cancelled (shutdown);
    /// a check still running then has its sandbox stopped, and is waited for.
    func run() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled && !invocations.isDraining {
                for record in due() {
                    group.addTask { await self.check(record) }
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// The checks to start now (each marked running and rescheduled).
    private func due() -> [ToolRecord] {
        refresh()
        let now = ContinuousClock.now
        return state.withLock { s in
            var out: [ToolRecord] = []
            // The longest overdue first (never checked: first of all), so slow checks cannot starve the others.
            let waiting = s.tools.filter { !s.running.contains($0.key) && s.due[$0.key, default: now] <= now }
                .sorted { (s.due[$0.key, default: .now - .seconds(86_400 * 365)], $0.key) < (s.due[$1.key, default: .now - .seconds(86_400 * 365)], $1.key) }
            for (id, record) in waiting where s.running.count < Self.maxParallel {
                guard let health = record.registration.health else { continue }
                s.running.insert(id)
                s.due[id] = now + .seconds(health.intervalSeconds)
                out.append(record)
            }
            return out
        }
    }

    /// Rereads the checked registrations after a registry change: a new
    /// tool (or version) is checked at once, a removed one forgotten.
    private func refresh() {
        let generation = registry.generation
        guard state.withLock({ $0.generation != generation }) else { return }
        let records: [ToolRecord]
        do {
            records = try registry.healthChecked()
        } catch {
            logger.error("health checks: \(error)")
            return
        }
        let gone = state.withLock { s -> [String] in
            s.generation = generation
            let before = s.tools
            s.tools = Dictionary(records.map { ($0.registration.id, $0) }, uniquingKeysWith: { a, _ in a })
            var reset: [String] = []
            for (id, record) in s.tools {
                // Another version, or the same one written again (new settings, a
                // fixed command or profile): checked now, from scratch. The state
                // burrowd kept from before a restart is this registration's own.
                guard let old = before[id] else { continue }
                if old.registration != record.registration || old.updatedAt != record.updatedAt {
                    s.due[id] = nil
                    s.health[id] = nil
                    reset.append(id)
                }
            }
            let gone = before.keys.filter { s.tools[$0] == nil } + s.health.keys.filter { s.tools[$0] == nil && before[$0] == nil }
            for id in gone {
                s.due[id] = nil
                s.health[id] = nil
            }
            return Array(Set(gone + reset))
        }
        for id in gone {
            try? registry.saveHealth(id, nil)
            metrics.health(id, nil)
        }
    }

    /// What one check found.
    enum Outcome: Equatable {
        case healthy
        case failed(String)
        /// Not run: every slot of the tool was taken, or burrowd is stopping.
        case skipped
    }

    private func check(_ record: ToolRecord) async {
        let id = record.registration.id
        defer { _ = state.withLock { $0.running.remove(id) } }
        guard let settings = record.registration.health else { return }
        let (outcome, milliseconds) = settings.command == nil ? await checkServer(record, settings) : await checkCommand(record, settings)
        switch outcome {
        case .skipped: metrics.healthCheck(id, "skipped")
        case .healthy: metrics.healthCheck(id, "healthy")
        case .failed: metrics.healthCheck(id, "failed")
        }
        guard outcome != .skipped else { return }
        await apply(outcome, to: record, check: settings.command == nil ? "mcp" : "command", milliseconds: milliseconds)
    }

    /// The tool's new health after a check; a change of status is audited
    /// first, and kept only once it is (the next check retries it).
    private func apply(_ outcome: Outcome, to record: ToolRecord, check: String, milliseconds: Int64) async {
        let id = record.registration.id
        let version = record.registration.metadata.version
        let threshold = record.registration.health?.unhealthyThreshold ?? HealthCheck.defaultThreshold
        let now = AuditClock.format(AuditClock.now())
        let (previous, next) = state.withLock { s -> (ToolHealth, ToolHealth) in
            let previous = s.health[id].flatMap { $0.version == version ? $0 : nil } ?? ToolHealth(status: .unknown, version: version)
            var next = previous
            next.checkedAt = now
            next.lastMilliseconds = milliseconds
            switch outcome {
            case .healthy, .skipped:
                next.status = .active
                next.consecutiveFailures = 0
                next.lastError = nil
            case .failed(let reason):
                next.consecutiveFailures += 1
                next.status = next.consecutiveFailures >= threshold ? .unavailable : .degraded
                next.lastError = reason
            }
            if next.status != previous.status { next.since = now }
            return (previous, next)
        }
        // A check of a registration since changed or removed tells nothing of what is registered now.
        guard isChecked(record) else { return }
        // Not checked before and well: nothing changed anyone should hear of.
        if next.status != previous.status && !(previous.status == .unknown && next.status == .active) {
            let reason: String? = if case .failed(let r) = outcome { r } else { nil }
            let event = AuditEvent(
                tool: id, context: SecurityContext(principal: HealthDetails.principal, uid: nil, host: UserDatabase.hostName),
                details: HealthDetails(
                    version: version, previousStatus: previous.status.rawValue, status: next.status.rawValue, check: check,
                    consecutiveFailures: next.consecutiveFailures, reason: reason, milliseconds: milliseconds))
            do {
                let audit = audit
                _ = try await BlockingIO.run { try audit.append([event]) }
            } catch {
                logger.error("health of \(id): \(previous.status.rawValue) → \(next.status.rawValue) not kept, the audit log cannot record it: \(error)")
                return
            }
            logger.notice("health of \(id) \(version): \(previous.status.rawValue) → \(next.status.rawValue)\(reason.map { ": " + $0 } ?? "")")
        }
        let stillChecked = state.withLock { s -> Bool in
            guard let current = s.tools[id], current.registration == record.registration, current.updatedAt == record.updatedAt else { return false }
            s.health[id] = next
            return true
        }
        guard stillChecked else { return }
        metrics.health(id, next.status == .unavailable ? 2 : next.status == .degraded ? 1 : 0)
        do {
            try registry.saveHealth(id, next)
        } catch {
            logger.error("health of \(id) not stored: \(error)")
        }
    }

    /// Whether `record` is still the registration checked (nothing rewrote or removed it since).
    private func isChecked(_ record: ToolRecord) -> Bool {
        refresh()
        return state.withLock { s in
            guard let current = s.tools[record.registration.id] else { return false }
            return current.registration == record.registration && current.updatedAt == record.updatedAt
        }
    }

    /// The front door's refusal as a check's outcome: what the host lacks
    /// now (a free slot, a sandbox id, what preparing took) skips it; what
    /// the tool's registration or profile refuses fails it.
    private static func refused(_ error: DaemonError) -> Outcome {
        switch error.code {
        case .tooManyConcurrent, .shuttingDown, .noSandboxID, .preparationFailed: .skipped
        default: .failed("refused: \(error.message)")
        }
    }

    /// Runs `body` with the check's sandbox stopped when `timeout` passes
    /// or the check is cancelled (shutdown), whichever comes first; says
    /// whether the timeout stopped it.
    private static func bounded<T: Sendable>(
        _ stop: RunStop, timeout: Int, _ body: () async -> T
    ) async -> (T, timedOut: Bool) {
        let timedOut = Atomic<Bool>(false)
        let timer = Task {
            try await Task.sleep(for: .seconds(timeout))
            timedOut.store(true, ordering: .relaxed)
            stop.stop("the health check took longer than \(timeout) s")
        }
        defer { timer.cancel() }
        let value = await withTaskCancellationHandler {
            await body()
        } onCancel: {
            stop.stop("burrowd is stopping")
        }
        return (value, timedOut.load(ordering: .relaxed))
    }

    /// A plain tool: `health.command` in its sandbox, exit 0 within the
    /// timeout and every limit. Returns the outcome and how long it took.
    private func checkCommand(_ record: ToolRecord, _ settings: HealthCheck) async -> (Outcome, Int64) {
        let started = ContinuousClock.now
        let prepared: InvocationService.Prepared
        do {
            prepared = try await invocations.prepare(record, InvocationRequest(), caller: Self.identity, check: true, argv: settings.command)
        } catch {
            return (Self.refused(error), Self.milliseconds(since: started))
        }
        let invocations = invocations
        let (result, timedOut) = await Self.bounded(prepared.invocation.stop, timeout: settings.timeoutSeconds) { await invocations.run(prepared) }
        let milliseconds = Self.milliseconds(since: started)
        if timedOut { return (.failed("did not finish within \(settings.timeoutSeconds) s"), milliseconds) }
        if let error = result.error { return (.failed(error.message), milliseconds) }
        if let stopped = result.stopped { return (.failed("stopped: \(stopped)"), milliseconds) }
        if let limit = result.limits.first { return (.failed("hit its \(limit.resource) limit (\(limit.limit))"), milliseconds) }
        guard result.exitCode == 0 else {
            let status = result.signal.map { "killed by signal \($0)" } ?? "exit status \(result.exitCode.map(String.init) ?? "?")"
            let said = (result.stderr?.text ?? "").split(whereSeparator: \.isNewline).last.map { ": " + String($0.prefix(200)) } ?? ""
            return (.failed(status + said), milliseconds)
        }
        return (.healthy, milliseconds)
    }

    /// An MCP server: started behind the relay, it must answer `initialize`
    /// and `tools/list` (with a list of tools) within the timeout; then its
    /// stdin closes and it is stopped if it does not exit. A run that hit a
    /// limit fails, whatever it answered. The time is the exchange's.
    private func checkServer(_ record: ToolRecord, _ settings: HealthCheck) async -> (Outcome, Int64) {
        let started = ContinuousClock.now
        let prepared: InvocationService.Prepared
        do {
            prepared = try await invocations.prepare(record, InvocationRequest(), caller: Self.identity, session: true, check: true)
        } catch {
            return (Self.refused(error), Self.milliseconds(since: started))
        }
        let session: MCPSession
        do {
            session = try MCPSession(prepared, invocations: invocations, sessionless: true)
        } catch {
            prepared.slot.release()
            return (.failed("cannot set up the check's pipes: \(error)"), Self.milliseconds(since: started))
        }
        let invocations = invocations
        let run = Task {
            let result = await invocations.run(prepared, client: session.relayClient)
            session.finished()
            return result
        }
        let ((outcome, milliseconds), timedOut) = await Self.bounded(prepared.invocation.stop, timeout: settings.timeoutSeconds) {
            let outcome = await Self.exchange(session)
            let milliseconds = Self.milliseconds(since: started)
            session.end("health check done")
            return (outcome, milliseconds)
        }
        let result = await run.value
        if timedOut { return (.failed("no answer within \(settings.timeoutSeconds) s"), milliseconds) }
        if outcome == .healthy, let limit = result.limits.first { return (.failed("hit its \(limit.resource) limit (\(limit.limit))"), milliseconds) }
        return (outcome, milliseconds)
    }

    private static func milliseconds(since start: ContinuousClock.Instant) -> Int64 {
        Int64(((ContinuousClock.now - start) / .milliseconds(1)).rounded())
    }

    /// initialize, notifications/initialized, tools/list.
    private static func exchange(_ session: MCPSession) async -> Outcome {
        func message(_ id: Int64?, _ method: String, _ params: [String: JSON]? = nil) -> [UInt8] {
            var fields: [String: JSON] = ["jsonrpc": .string("2.0"), "method": .string(method)]
            fields["id"] = id.map { .integer($0) }
            fields["params"] = params.map { .object($0) }
            return Array(JSON.object(fields).canonicalText.utf8)
        }
        let initialize = message(
            1, "initialize",
            [
                "protocolVersion": .string("2025-06-18"), "capabilities": .object([:]),
                "clientInfo": .object(["name": .string("burrowd-health"), "version": .string(burrowDaemonVersion)]),
            ])
        do throws(DaemonError) {
            let hello = try await ask(session, initialize, "initialize")
            guard case .string? = hello["protocolVersion"] else { return .failed("initialize: the answer has no protocolVersion") }
            _ = try await session.send(message(nil, "notifications/initialized"))
            let tools = try await ask(session, message(2, "tools/list"), "tools/list")
            guard case .array? = tools["tools"] else { return .failed("tools/list: the answer has no list of tools") }
            return .healthy
        } catch {
            return .failed(error.message)
        }
    }

    /// One request's result, or why there is none (a DaemonError's message).
    private static func ask(_ session: MCPSession, _ request: [UInt8], _ method: String) async throws(DaemonError) -> JSON {
        switch try await session.send(request) {
        case .answer(let line):
            let answer = try? JSONParser.parse(line, limits: session.limits)
            if let result = answer?["result"], case .object = result { return result }
            let error = answer?["error"]?["message"]?.stringValue.map { String($0.prefix(200)) } ?? "not a JSON-RPC result"
            throw DaemonError(.preparationFailed, "\(method): \(error)")
        case .accepted, .rejected:
            throw DaemonError(.preparationFailed, "\(method): the relay refused the request")
        }
    }
}

/// Runs the health checks while burrowd serves.
struct HealthService: Service {
    let monitor: HealthMonitor

    func run() async throws {
        await cancelWhenGracefulShutdown { await monitor.run() }
    }
}
