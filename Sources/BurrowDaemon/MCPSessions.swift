import BurrowAPI
import BurrowAudit
import BurrowHost
import BurrowInvocation
import BurrowJSON
import BurrowMCP
import BurrowPolicy
import BurrowRuntime
import BurrowSystem
import FoundationEssentials
import Hummingbird
import NIOCore
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// burrowd's MCP sessions: a registered `mcp = true` tool started as a
/// sandboxed stdio server behind the same relay as `burrow mcp`, exposed as
/// an MCP Streamable HTTP endpoint on the daemon's socket
/// (`/v1/sessions/{sid}/mcp`). Each POST carries one JSON-RPC message; a
/// request is answered with its JSON response, anything else with 202.
/// The server's own requests and notifications (progress, logging,
/// sampling, elicitation, roots) go to the session's GET stream (SSE),
/// numbered and kept in a bounded buffer so a client that reconnects with
/// `Last-Event-ID` misses nothing the buffer still holds; the client POSTs
/// its answers to the server's requests. A session holds one of the tool's
/// max_concurrent slots until it ends: DELETE, idle timeout, the server's
/// exit, a limit, or shutdown. At most `[mcp] max_sessions` live at once,
/// `max_sessions_per_caller` of one caller.
final class MCPSessions: Sendable {
    /// `[mcp] max_sessions` and `max_sessions_per_caller`.
    struct Limits: Sendable {
        var total: Int
        var perCaller: Int
    }

    private struct Table {
        var live: [String: MCPSession] = [:]
        /// Sessions counted against the limits: live ones, and those starting.
        var total = 0
        var perCaller: [CallerIdentity.Key: Int] = [:]
    }

    private let invocations: InvocationService
    private let idleTimeout: Duration
    private let limits: Limits
    private let table = Mutex(Table())

    init(invocations: InvocationService, idleTimeout: Duration, limits: Limits) {
        self.invocations = invocations
        self.idleTimeout = idleTimeout
        self.limits = limits
    }

    /// Refuses (429) when `owner` may not start a session now: checked
    /// before a session's plan is made, and again, counting it, when it starts.
    func admit(_ owner: CallerIdentity.Key) throws(DaemonError) {
        try table.withLock { t throws(DaemonError) in try check(t, owner) }
    }

    private func check(_ t: Table, _ owner: CallerIdentity.Key) throws(DaemonError) {
        if t.total >= limits.total {
            throw DaemonError(.tooManyConcurrent, "burrowd has \(t.total) MCP sessions, its most ([mcp] max_sessions); end one or retry later", retryAfter: 1)
        }
        if t.perCaller[owner, default: 0] >= limits.perCaller {
            throw DaemonError(.tooManyConcurrent, "this caller has \(limits.perCaller) MCP sessions, its most ([mcp] max_sessions_per_caller): end one (DELETE) first", retryAfter: 1)
        }
    }

    private func release(_ owner: CallerIdentity.Key, _ id: String?) {
        table.withLock { t in
            if let id { t.live.removeValue(forKey: id) }
            t.total -= 1
            t.perCaller[owner, default: 1] -= 1
            if t.perCaller[owner] == 0 { t.perCaller.removeValue(forKey: owner) }
        }
    }

    /// Starts the server of a prepared invocation as a session, within the limits.
    func start(_ p: InvocationService.Prepared, sessionless: Bool = false) throws(DaemonError) -> MCPSession {
        let owner = p.caller.key
        do {
            try table.withLock { t throws(DaemonError) in
                try check(t, owner)
                t.total += 1
                t.perCaller[owner, default: 0] += 1
            }
        } catch {
            p.slot.release()
            throw error
        }
        let session: MCPSession
        do {
            session = try MCPSession(p, invocations: invocations, sessionless: sessionless)
        } catch {
            p.slot.release()
            release(owner, nil)
            throw DaemonError(.preparationFailed, "cannot set up the session's pipes and threads: \(error)")
        }
        table.withLock { $0.live[session.id] = session }
        let (invocations, idleTimeout) = (invocations, idleTimeout)
        Task {
            let watchdog = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: min(idleTimeout, .seconds(1)))
                    if session.idleFor > idleTimeout {
                        session.end("idle for more than \(idleTimeout) ([mcp] session_idle_timeout)")
                        return
                    }
                }
            }
            _ = await invocations.run(p, client: session.relayClient)
            watchdog.cancel()
            session.finished()
            self.release(owner, session.id)
            self.forgetImplicit(session.id)
        }
        return session
    }

    /// The live session `id`, whoever it belongs to.
    func session(_ id: String) -> MCPSession? { table.withLock { $0.live[id] } }

    /// Sessions of the session-less era (`/v1/tools/{id}/mcp` with a
    /// 2026-07-28 client), one per tool and caller, started on its first
    /// request (concurrent first requests share one start).
    private let implicit = Mutex<Implicit>(Implicit())
    private let implicitTokens = Atomic<Int>(0)

    private struct Implicit {
        var starts: [String: (token: Int, start: Task<MCPSession, any Error>)] = [:]
        /// The key (and start) each started implicit session holds, to forget it when it ends.
        var bySession: [String: (key: String, token: Int)] = [:]

        mutating func remove(_ key: String, token: Int) {
            guard starts[key]?.token == token else { return }
            starts.removeValue(forKey: key)
        }
    }

    /// An implicit session ended: its caller's next request starts another.
    private func forgetImplicit(_ id: String) {
        implicit.withLock { t in
            guard let (key, token) = t.bySession.removeValue(forKey: id) else { return }
            t.remove(key, token: token)
        }
    }

    /// The caller's implicit session of `tool`: the live one, or one `start` makes.
    func implicitSession(tool: String, owner: CallerIdentity.Key, start: @escaping @Sendable () async throws -> MCPSession) async throws -> MCPSession {
        let key = "\(tool) \(owner)"
        for _ in 0..<2 {
            let (token, task) = implicit.withLock { t in
                if let entry = t.starts[key] { return entry }
                let entry = (token: implicitTokens.add(1, ordering: .relaxed).newValue, start: Task { try await start() })
                t.starts[key] = entry
                return entry
            }
            do {
                let session = try await task.value
                implicit.withLock { $0.bySession[session.id] = (key, token) }
                if !session.hasEnded { return session }
            } catch {
                implicit.withLock { $0.remove(key, token: token) }
                throw error
            }
            // It ended (idle, a limit): the next request starts another.
            implicit.withLock { $0.remove(key, token: token) }
        }
        throw DaemonError(.sessionEnded, "the tool's server ended as it was being used; retry")
    }
}

/// One live session: HTTP requests in, the relay's answers out. The relay
/// itself, between these pipes and the sandboxed server, is the front
/// door's (`PreparedInvocation.run` with `relayClient`), as for `burrow mcp`.
final class MCPSession: Sendable {
    let id: String
    let tool: String
    /// Who started it: only this caller (or an admin) may use it.
    let owner: CallerIdentity.Key
    let ownerName: String
    /// The relay's client side: it reads requests from `input` and writes
    /// answers to `output`; the server's stderr has nobody to read it here.
    let relayClient: PreparedInvocation.RelayClient
    /// A session-less era's implicit session: its client has no stream, so
    /// the server's requests are answered at once with an error (as the
    /// SDK's session-less servers do: no back channel) and its
    /// notifications are dropped and counted.
    let sessionless: Bool
    /// Where requests go in (the relay's client side); nil once closed.
    private let toRelay: Mutex<SystemPackage.FileDescriptor?>
    private let stop: @Sendable (String) -> Void
    private let state = Mutex(State())
    /// The relay's bounds for every message (anything that reads a
    /// message before it does reads it within these).
    let limits: JSONLimits
    var maxLineBytes: Int { limits.maxBytes }

    private struct State {
        var waiters: [String: CheckedContinuation<[UInt8]?, Never>] = [:]
        var lastUsed = ContinuousClock.now
        var ended: String?
        /// Server messages lost: answers nobody waited for, and events
        /// evicted from the buffer before any stream took them.
        var dropped = 0
        /// The server's own messages for the GET stream, oldest first.
        var events: [Event] = []
        var eventBytes = 0
        var lastEvent = 0
        /// The last event handed to a stream, and the last one evicted.
        var delivered = 0
        var evicted = 0
        /// The GET stream now open (one at a time), by its token.
        var stream: (token: Int, continuation: AsyncStream<Event>.Continuation)?
        var streams = 0
    }

    /// A server-to-client message on the GET stream (a request or a
    /// notification), numbered for `Last-Event-ID`; id 0 is a keep-alive.
    struct Event: Sendable {
        var id: Int
        var line: [UInt8]
    }

    /// Events kept for a stream to come or to resume: at most this many,
    /// and this many bytes, per session; beyond, the oldest go.
    static let maxEvents = 256
    static let maxEventBytes = 4 << 20

    init(_ p: InvocationService.Prepared, invocations: InvocationService, sessionless: Bool = false) throws {
        self.sessionless = sessionless
        id = p.id
        tool = p.record.registration.id
        owner = p.caller.key
        ownerName = p.caller.caller.principal
        limits = p.invocation.plan.mcp.messageLimits
        // We write requests into toRelay and read answers from fromRelay.
        let (clientIn, toRelay) = try Kernel.pipe()
        let (fromRelay, clientOut) = try Kernel.pipe()
        let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        guard devNull >= 0 else {
            for fd in [clientIn, toRelay, fromRelay, clientOut] { try? fd.close() }
            throw Errno(rawValue: errno)
        }
        var client = PreparedInvocation.RelayClient(
            input: clientIn.rawValue, output: clientOut.rawValue, stderr: devNull,
            whenDone: {
                for fd in [clientIn, clientOut] { try? fd.close() }
                close(devNull)
            })
        client.pins = invocations.pinnedDefinitions(for: p.record)
        relayClient = client
        self.toRelay = Mutex(toRelay)
        let id = p.id
        stop = { reason in invocations.stop(id, reason) }
        try Kernel.detachedThread { [self] in readAnswers(fromRelay) }
    }

    /// Whether it has ended (or is ending).
    var hasEnded: Bool { state.withLock { $0.ended != nil } }

    /// How long since the last request; a session with a request in progress is not idle.
    var idleFor: Duration {
        state.withLock { s in s.waiters.isEmpty ? ContinuousClock.now - s.lastUsed : .zero }
    }

    /// What became of one POSTed message.
    enum Outcome {
        /// A notification or a response: passed on.
        case accepted
        /// A request's answer.
        case answer([UInt8])
        /// Refused with this HTTP status and JSON-RPC error body.
        case rejected(HTTPResponse.Status, [UInt8])
    }

    /// Passes one JSON-RPC message on; a request waits for its answer.
    /// A body that is not JSON gets JSON-RPC's parse error (400, id null)
    /// and goes no further; one the relay cannot judge unambiguously
    /// (duplicate keys, bad UTF-8, over a bound) is handed to the relay,
    /// which ends the session as `burrow mcp` does, and is refused.
    func send(_ body: [UInt8]) async throws(DaemonError) -> Outcome {
        func rejection(_ code: Int, _ message: String, _ reason: String) -> Outcome {
            .rejected(.badRequest, MCPRelay.errorAnswer(id: "null", code: Int64(code), message: message, reason: reason) + [0x0a])
        }
        // A raw line break can only be whitespace between tokens (the strict
        // parser refuses one inside a string): dropped, the message is one line.
        let line = body.filter { $0 != 0x0a && $0 != 0x0d } + [0x0a]
        let message: JSON
        do throws(JSONError) {
            guard String(validating: body, as: UTF8.self) != nil else { throw JSONError("the body is not valid UTF-8", offset: 0, kind: .encoding) }
            message = try JSONParser.parse(body, limits: limits)
        } catch {
            guard error.kind == .syntax else {
                // The relay sees the same line, and ends the session (audited, the sandbox stopped).
                _ = write(line)
                return rejection(-32600, "Invalid Request: \(error); the session is ended", "framing")
            }
            return rejection(-32700, "Parse error: \(error)", "not_json")
        }
        guard case .object = message else {
            return rejection(-32600, "Invalid Request: one JSON-RPC message, an object (batches are not part of MCP)", "not_an_object")
        }
        // A request (a method and an id) waits for its answer; anything else is passed on.
        guard message["method"] != nil, let key = Self.idKey(message["id"]) else {
            guard write(line) else { throw DaemonError(.sessionNotFound, "the session has ended") }
            return .accepted
        }
        let answer: [UInt8]? = await withCheckedContinuation { continuation in
            let accepted = state.withLock { s -> Bool in
                guard s.ended == nil, s.waiters[key] == nil else { return false }
                s.waiters[key] = continuation
                s.lastUsed = .now
                return true
            }
            guard accepted else { return continuation.resume(returning: nil) }
            if !write(line) { resume(key, nil) }
        }
        guard let answer else {
            let ended = state.withLock { $0.ended }
            throw ended.map { DaemonError(.sessionEnded, "the session ended before the server answered: \($0)") }
                ?? DaemonError(.duplicateID, "a request with this id is already waiting for its answer")
        }
        return .answer(answer)
    }

    private func write(_ line: [UInt8]) -> Bool {
        toRelay.withLock { fd in
            guard let fd else { return false }
            var off = 0
            while off < line.count {
                let n = line[off...].withUnsafeBytes { Glibc.write(fd.rawValue, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                off += n
            }
            return true
        }
    }

    private func resume(_ key: String, _ answer: [UInt8]?) {
        state.withLock { s in
            s.lastUsed = .now
            return s.waiters.removeValue(forKey: key)
        }?.resume(returning: answer)
    }

    /// Hands each line the relay writes to the request waiting for it.
    private func readAnswers(_ fd: SystemPackage.FileDescriptor) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = read(fd.rawValue, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            buffer += chunk[0..<n]
            while let nl = buffer.firstIndex(of: 0x0a) {
                let line = Array(buffer[..<nl])
                buffer.removeFirst(nl + 1)
                let message = try? JSONParser.parse(line, limits: limits)
                if message?["method"] != nil {
                    publish(line)
                } else if let key = Self.idKey(message?["id"]), state.withLock({ $0.waiters[key] != nil }) {
                    resume(key, line)
                } else {
                    state.withLock { $0.dropped += 1 }
                }
            }
        }
        try? fd.close()
    }

    /// A server request or notification: numbered, kept, and handed to the
    /// open GET stream if there is one. A stream that cannot keep up (its
    /// buffer full) is cut: its client resumes with `Last-Event-ID` and
    /// gets what it missed from the kept events.
    private func publish(_ line: [UInt8]) {
        if sessionless {
            if let id = (try? JSONParser.parse(line, limits: limits))?["id"], Self.idKey(id) != nil {
                let answer = MCPRelay.errorAnswer(
                    id: id.canonicalText, code: -32601, message: "the client has no stream for server requests (a session-less MCP client)", reason: "no_back_channel")
                _ = write(answer + [0x0a])
            }
            state.withLock { $0.dropped += 1 }
            return
        }
        state.withLock { s in
            s.lastEvent += 1
            let event = Event(id: s.lastEvent, line: line)
            s.events.append(event)
            s.eventBytes += line.count
            while s.events.count > Self.maxEvents || s.eventBytes > Self.maxEventBytes {
                let old = s.events.removeFirst()
                s.eventBytes -= old.line.count
                s.evicted = old.id
                if old.id > s.delivered { s.dropped += 1 }
            }
            guard let stream = s.stream else { return }
            if case .enqueued = stream.continuation.yield(event) {
                s.delivered = event.id
            } else {
                // Cut: its client resumes with Last-Event-ID; this event waits for that, or for the next stream.
                stream.continuation.finish()
                s.stream = nil
            }
        }
    }

    /// Why a GET stream cannot open.
    enum StreamRefusal: Error {
        case ended(String)
        /// A `Last-Event-ID` this session never issued.
        case unknownEvent(Int)
    }

    /// Opens the session's GET stream, replacing one already open: the
    /// events after `lastEventID` (a resumption), or those no stream has
    /// taken yet; then each new one. Returns the id it starts after, the
    /// events, how many of those asked for were evicted, and the token to
    /// close it with.
    func openStream(after lastEventID: Int?) throws(StreamRefusal) -> (start: Int, events: AsyncStream<Event>, lost: Int, token: Int) {
        try state.withLock { s throws(StreamRefusal) in
            if let ended = s.ended { throw .ended(ended) }
            if let lastEventID, lastEventID > s.lastEvent { throw .unknownEvent(lastEventID) }
            s.stream?.continuation.finish()
            let (events, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingOldest(Self.maxEvents))
            let start = lastEventID ?? s.delivered
            let lost = max(0, s.evicted - start)
            for event in s.events where event.id > start { continuation.yield(event) }
            s.delivered = max(s.delivered, s.lastEvent)
            s.streams += 1
            s.stream = (s.streams, continuation)
            return (start, events, lost, s.streams)
        }
    }

    /// A keep-alive on the open stream `token` (a comment its client skips);
    /// false once that stream is closed or replaced.
    func keepAlive(_ token: Int) -> Bool {
        state.withLock { s in
            guard let stream = s.stream, stream.token == token else { return false }
            if case .dropped = stream.continuation.yield(Event(id: 0, line: [])) {
                stream.continuation.finish()
                s.stream = nil
                return false
            }
            return true
        }
    }

    /// The stream `token` is gone (its client left): new events wait for the next.
    func closeStream(_ token: Int) {
        state.withLock { s in
            guard let stream = s.stream, stream.token == token else { return }
            stream.continuation.finish()
            s.stream = nil
        }
    }

    /// Ends the session: the server's stdin closes, and the sandbox is
    /// stopped if it has not exited two seconds later.
    func end(_ reason: String) {
        let first = state.withLock { s -> Bool in
            defer { s.ended = s.ended ?? reason }
            return s.ended == nil
        }
        guard first else { return }
        closeInput()
        let stop = stop
        Task {
            try? await Task.sleep(for: .seconds(2))
            stop(reason)
        }
    }

    /// The sandbox is gone (and the front door has ended its open calls): waiting requests fail.
    func finished() {
        let waiters = state.withLock { s -> [CheckedContinuation<[UInt8]?, Never>] in
            s.ended = s.ended ?? "the server exited"
            s.stream?.continuation.finish()
            s.stream = nil
            s.events.removeAll()
            s.eventBytes = 0
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume(returning: nil) }
        closeInput()
    }

    /// The server's stdin closes once the relay has passed on what came before.
    private func closeInput() {
        toRelay.withLock { fd in
            try? fd?.close()
            fd = nil
        }
    }

    /// As the relay keys them: numbers by value (its answer to 1 may say 1.0).
    static func idKey(_ id: JSON?) -> String? {
        switch id {
        case .string(let s): "s" + s
        case .number(let n): "n" + MCPRelay.numberKey(n)
        default: nil
        }
    }
}
