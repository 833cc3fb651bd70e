import BurrowCrypto
package import BurrowJSON
package import BurrowPolicy
import BurrowProfile
import BurrowSystem
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Relays newline-delimited JSON-RPC between an MCP client and a sandboxed
/// server, forwarding the original bytes of every message it lets through
/// (a call a `sanitize` filter rewrote is the one exception). It parses each
/// line only to apply the plan's policy: framing limits both ways, request
/// rate and concurrency limits, `tools/call` for names the server listed with
/// arguments its `inputSchema` accepts, content filters, and one event per
/// call. Both protocol eras pass: the relay never needs the handshake, and
/// when a call comes before the client listed the tools (2026-07-28 clients
/// do that), the relay asks the server for the list itself.
package final class MCPRelay: Sendable {
    /// What happened, for the audit log and the operator.
    package enum Event: Sendable {
        /// A `tools/call` the relay let through.
        case callStarted(Call)
        /// How it ended, after `milliseconds`.
        case callEnded(Call, milliseconds: UInt64, outcome: Outcome)
        /// A call refused by policy: it never reached the server.
        case callRefused(Call, reason: String, message: String)
        /// Another request refused by a session limit (rate, concurrency).
        case requestRefused(method: String, id: String, reason: String, message: String)
        /// A framing violation: the session ends. `offset` is where in the
        /// line the parser stopped, `streamOffset` where that is in the
        /// direction's whole stream.
        case violation(direction: String, message: String, offset: Int, streamOffset: Int)
        /// A line that is not JSON at all (a stray print), dropped: sent
        /// once per session and direction, for the first such line.
        case notJSON(direction: String, message: String, sample: String, streamOffset: Int, unjudged: Bool = false)
        /// A listed tool withheld from the client: not pinned, or pinned
        /// with another definition (once per session and definition).
        case definitionWithheld(ToolPins.Difference)
        /// Invisible characters removed from what the server sent the
        /// client (`where`: a tool's definition, or a call's result).
        case invisibleCharacters(where: String, count: Int)
    }

    package enum Outcome: Sendable, Equatable {
        case completed
        /// The server answered with a JSON-RPC error (its code).
        case jsonrpcError(Int64)
        /// The result had `isError: true`.
        case toolError
        /// The client cancelled it (`notifications/cancelled`).
        case cancelled
        /// The session ended before the server answered.
        case sessionEnded

        package var failed: Bool { self != .completed }
    }

    package struct Call: Sendable, Equatable {
        /// The JSON-RPC id as the client wrote it (JSON text).
        package var id: String
        package var tool: String
        /// `sha256:` of the arguments' canonical JSON, as the client sent them.
        package var argumentsDigest: String
        /// Numbered from 1 within the session.
        package var sequence: Int
        /// Content filters that matched, as `name (action)`.
        package var filters: [String] = []
        /// The digest of what the server got, when a `sanitize` filter rewrote the arguments.
        package var forwardedDigest: String?
        /// The expiry (Unix seconds) of the approval an `authorize` filter accepted.
        package var approvedUntil: Int64?
    }

    private struct Pending {
        /// The id as the client wrote it (JSON text), to answer with.
        var idText: String
        var method: String
        var call: Call?
        var started: UInt64
    }

    private struct Bucket {
        var tokens: Double
        var updated: UInt64
    }

    private struct State {
        /// Client requests in the server's hands, by id key.
        var pending: [String: Pending] = [:]
        /// Tool name → inputSchema, from tools/list answers; nil until the first, and after a list change.
        var tools: [String: JSON]?
        /// The list came from the relay's own complete walk since the last change.
        var verified = false
        var calls = 0
        var ended: String?
        var buckets: [String: Bucket] = [:]
        var usedApprovals: Set<String> = []
        /// The relay's own tools/list request in flight: its id key and, once here, the answer.
        var fetchKey: String?
        var fetchReply: JSON?
        var serverGone = false
        /// Lines dropped because they were not JSON, by direction.
        var dropped: [String: Int] = [:]
        /// Where answers to the client go, once `run` started.
        var clientOut: Int32?
        /// Tools withheld because their definition is not the pinned one, by name.
        var withheld: [String: ToolPins.Difference] = [:]
        /// Withheld definitions already reported (name and digest).
        var reported: Set<String> = []
    }

    private let plan: MCPPlan
    private let server: String
    /// The approved tool definitions; nil: none are pinned (every listed tool passes).
    private let pins: PinnedDefinitions?
    private let filters: [CompiledFilter]
    /// Filters whose pattern does not compile here: every call is refused (fail closed).
    private let unusableFilters: [String]
    private let approvalKey: Result<[UInt8], ApprovalError>?
    private let sink: @Sendable (Event) -> Void
    private let state = Mutex(State())
    /// Serialises writes to the client (both directions answer it).
    private let clientWrite = Mutex(())
    /// An eventfd that, once readable, stops every wait on the client's
    /// descriptors (burrowd: they are a session client's, which may never
    /// close or drain them); -1: none (`burrow mcp`, whose exit ends them).
    private let stopDescriptor = Atomic<Int32>(-1)
    private let fetched = DispatchSemaphore(value: 0)
    private let nonce = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    private let fetchCount = Atomic<Int>(0)
    package static let fromClientSide = "client → server"
    package static let fromServerSide = "server → client"
    /// How long a call waits for the relay's own tools/list.
    static let listTimeoutNanoseconds: UInt64 = 30_000_000_000

    /// - Parameters:
    ///   - plan: the launch plan's MCP part (limits, filters, approval key).
    ///   - server: the tool id approvals are bound to.
    ///   - pins: the server's approved tool definitions (see `ToolPins`).
    package init(plan: MCPPlan, server: String, pins: PinnedDefinitions? = nil, sink: @escaping @Sendable (Event) -> Void) {
        self.plan = plan
        self.server = server
        self.pins = pins
        self.sink = sink
        var compiled: [CompiledFilter] = []
        var unusable: [String] = []
        for f in plan.contentFilters {
            if let regex = try? Regex(f.pattern) { compiled.append(CompiledFilter(filter: f, regex: regex)) } else { unusable.append(f.name) }
        }
        self.filters = compiled
        self.unusableFilters = unusable
        let needsKey = plan.contentFilters.contains { $0.action == .authorize }
        self.approvalKey = needsKey ? Approval.loadKey(plan.approvalKey) : nil
    }

    /// The calls in flight now, for events of the sandbox that happen meanwhile.
    package var callsInFlight: [Call] { state.withLock { $0.pending.values.compactMap(\.call).sorted { $0.sequence < $1.sequence } } }

    /// Ends every call still in flight (`sessionEnded`): the server is gone.
    package func endSession() {
        let now = Kernel.monotonicNanoseconds()
        let open = state.withLock { s -> [(Pending, Call)] in
            defer { s.pending.removeAll() }
            return s.pending.values.compactMap { p in p.call.map { (p, $0) } }.sorted { $0.1.sequence < $1.1.sequence }
        }
        for (p, call) in open { sink(.callEnded(call, milliseconds: (now - p.started) / 1_000_000, outcome: .sessionEnded)) }
    }

    /// Why the session ended early, if it did.
    package var endedBy: String? { state.withLock { $0.ended } }

    /// Relays until the server's stdout ends or a violation stops the
    /// session (then `onViolation` runs: the caller stops the sandbox).
    /// Returns when the server side is done; the client side ends when the
    /// client closes its end (then the server's stdin is closed). `whenDone`
    /// runs once all three of the relay's readers are done, when no thread
    /// of it uses any descriptor any more.
    /// `stop`: an eventfd that ends the client side's waits once it is
    /// readable (see `stopDescriptor`); -1 for none.
    package func run(
        clientIn: Int32, clientOut: Int32, serverIn: Int32, serverOut: Int32, serverErr: Int32, errOut: Int32, stop: Int32 = -1,
        onViolation: @escaping @Sendable () -> Void, whenDone: (@Sendable () -> Void)? = nil
    ) {
        let done = Countdown(3, whenDone ?? {})
        stopDescriptor.store(stop, ordering: .releasing)
        state.withLock { $0.clientOut = clientOut }
        var started = 0
        do {
            try Kernel.detachedThread { [self] in
                forEachLine(clientIn, direction: Self.fromClientSide, stoppable: true, onViolation: onViolation) { line in
                    fromClient(line, serverIn: serverIn, clientOut: clientOut)
                }
                // The client hung up: the server sees EOF on its stdin.
                close(serverIn)
                done.tick()
            }
            started += 1
            try Kernel.detachedThread { [self] in
                copyStderr(serverErr, to: errOut)
                done.tick()
            }
            started += 1
        } catch {
            // The threads that did not start, and this one: `whenDone` still runs once.
            for _ in started..<3 { done.tick() }
            return violated("relay", "cannot start the relay's threads: \(error)", offset: 0, streamOffset: 0, onViolation)
        }
        forEachLine(serverOut, direction: Self.fromServerSide, onViolation: onViolation) { line in fromServer(line, clientOut: clientOut) }
        state.withLock { $0.serverGone = true }
        fetched.signal()
        done.tick()
    }

    // MARK: framing

    /// Where one line sits in its direction's stream.
    private struct Line {
        var bytes: [UInt8]
        /// Bytes of the stream before it.
        var streamOffset: Int
    }

    /// What a handler made of a line.
    private enum Verdict: Error {
        case relayed
        /// Not a message the relay can judge unambiguously: the session ends.
        case violation(String, offset: Int)
        /// The other side is gone (a write failed): stop reading.
        case closed
    }

    private func forEachLine(_ fd: Int32, direction: String, stoppable: Bool = false, onViolation: @Sendable () -> Void, _ handle: (Line) -> Verdict) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var scanned = 0
        var consumed = 0  // stream bytes before buffer[0]
        while true {
            if stoppable && !ready(fd, Int16(POLLIN)) { return }
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            // After a violation nothing more passes; the sandbox is being stopped.
            if state.withLock({ $0.ended != nil }) { return }
            buffer += chunk[0..<n]
            var start = 0
            var i = scanned
            while i < buffer.count {
                if buffer[i] == 0x0a {
                    var line = Array(buffer[start..<i])
                    if line.last == 0x0d { line.removeLast() }
                    if !line.isEmpty {
                        switch handle(Line(bytes: line, streamOffset: consumed + start)) {
                        case .relayed: break
                        case .closed: return
                        case .violation(let message, let offset):
                            return violated(direction, message, offset: offset, streamOffset: consumed + start + offset, onViolation)
                        }
                    }
                    start = i + 1
                }
                i += 1
            }
            buffer.removeFirst(start)
            consumed += start
            scanned = buffer.count
            if buffer.count > plan.maxLineBytes {
                return violated(direction, "a line longer than \(plan.maxLineBytes) bytes", offset: plan.maxLineBytes, streamOffset: consumed + plan.maxLineBytes, onViolation)
            }
        }
    }

    /// Ends the session: the event, the caller stops the sandbox, then every
    /// request in the server's hands is answered with an error (no client
    /// waits forever).
    private func violated(_ direction: String, _ message: String, offset: Int, streamOffset: Int, _ onViolation: @Sendable () -> Void) {
        let first = state.withLock { s -> Bool in
            guard s.ended == nil else { return false }
            s.ended = "\(direction): \(message) (byte \(offset) of the line)"
            return true
        }
        guard first else { return }
        sink(.violation(direction: direction, message: message, offset: offset, streamOffset: streamOffset))
        onViolation()
        failPending("the MCP session ended: \(direction): \(Self.shown(message))")
    }

    /// Answers every request in the server's hands with a JSON-RPC error and
    /// ends its call (`sessionEnded`).
    private func failPending(_ why: String) {
        let now = Kernel.monotonicNanoseconds()
        let open = state.withLock { s -> [Pending] in
            defer { s.pending.removeAll() }
            return Array(s.pending.values)
        }
        guard let clientOut = state.withLock({ $0.clientOut }) else { return }
        for p in open.sorted(by: { $0.started < $1.started }) {
            // Recorded before the client hears of it.
            if let call = p.call { sink(.callEnded(call, milliseconds: (now - p.started) / 1_000_000, outcome: .sessionEnded)) }
            _ = toClient(clientOut, Self.errorAnswer(id: p.idText, code: -32603, message: "burrow: " + why, reason: "session_ended"))
        }
    }

    /// How a line parsed: a message, a line to drop (not JSON at all, or not
    /// an object), or a violation.
    private enum Parsed {
        case message(JSON)
        case notJSON(JSONError)
        case notObject(String)
        case violation(String, offset: Int)
    }

    private func parse(_ line: [UInt8]) -> Parsed {
        guard line.count <= plan.maxLineBytes else { return .violation("a line longer than \(plan.maxLineBytes) bytes", offset: plan.maxLineBytes) }
        // Bytes that are not UTF-8 can be read in more than one way.
        guard String(validating: line, as: UTF8.self) != nil else {
            var valid = 0
            for end in stride(from: min(line.count, 4), through: line.count, by: 1) where String(validating: line[..<end], as: UTF8.self) != nil { valid = end }
            return .violation("the line is not valid UTF-8", offset: valid)
        }
        do {
            let message = try JSONParser.parse(line, limits: plan.messageLimits)
            // Batches are not part of MCP since 2025-06-18.
            guard case .object = message else { return .notObject(message.describedType) }
            return .message(message)
        } catch {
            return error.kind == .syntax ? .notJSON(error) : .violation(error.message, offset: error.offset)
        }
    }

    /// Counts a dropped line; the first of each direction is an event.
    /// `unjudged`: a message (an answer to no request in progress, one both
    /// request and answer, one with an invisible key) rather than a stray
    /// print: counted and recorded apart (`droppedMessages`), so a print
    /// first never hides it.
    private func drop(_ direction: String, _ line: Line, _ why: String, unjudged: Bool = false) {
        let key = unjudged ? Self.unjudgedKey : direction
        let first = state.withLock { s -> Bool in
            s.dropped[key, default: 0] += 1
            return s.dropped[key] == 1
        }
        guard first else { return }
        let sample = String(decoding: line.bytes.prefix(80), as: UTF8.self)
        sink(.notJSON(direction: direction, message: why, sample: sample, streamOffset: line.streamOffset, unjudged: unjudged))
    }

    package static let unjudgedKey = "server → client, messages the relay could not judge"

    private func sent(_ ok: Bool) -> Verdict { ok ? .relayed : .closed }

    /// The message on a line, or what becomes of the line instead: a
    /// violation; or, when it is no JSON-RPC message at all, dropped and
    /// counted, and for the client answered with JSON-RPC's error (-32700
    /// for text that is not JSON, -32600 for a value that is not an object).
    /// A server's stray print gets no answer: the SDK clients skip such lines too.
    private func judge(_ input: Line, from side: String, clientOut: Int32) -> Result<JSON, Verdict> {
        let (code, message, reason): (Int64, String, String)
        switch parse(input.bytes) {
        case .message(let m): return .success(m)
        case .violation(let why, let offset): return .failure(.violation(why, offset: offset))
        case .notJSON(let error):
            drop(side, input, "not JSON: \(error)")
            (code, message, reason) = (-32700, "Parse error: \(error)", "not_json")
        case .notObject(let type):
            drop(side, input, "\(type), not a JSON-RPC message")
            (code, message, reason) = (-32600, "Invalid Request: one JSON-RPC message per line, an object (batches are not part of MCP); found \(type)", "not_an_object")
        }
        guard side == Self.fromClientSide else { return .failure(.relayed) }
        return .failure(sent(toClient(clientOut, Self.errorAnswer(id: "null", code: code, message: message, reason: reason))))
    }

    /// A JSON-RPC error answer to `id` (JSON text, "null" when there is none), `reason` in `data.burrow`.
    package static func errorAnswer(id: String, code: Int64, message: String, reason: String) -> [UInt8] {
        Array("{\"jsonrpc\":\"2.0\",\"id\":\(id),\"error\":{\"code\":\(code),\"message\":\(quote(message)),\"data\":{\"burrow\":\(quote(reason))}}}".utf8)
    }

    /// Lines dropped because they were not JSON messages, by direction.
    package var droppedLines: [String: Int] { state.withLock { $0.dropped } }

    /// Writes all of `bytes`. `stoppable` (the client's descriptors): each
    /// write waits for room first (or for the stop) and writes at most
    /// PIPE_BUF, so a client that never reads cannot hold the thread.
    private func send(_ fd: Int32, _ bytes: [UInt8], stoppable: Bool = false) -> Bool {
        let stop = stopDescriptor.load(ordering: .acquiring)
        let most = stoppable && stop >= 0 ? 4096 : Int.max
        var off = 0
        while off < bytes.count {
            if stoppable && !ready(fd, Int16(POLLOUT)) { return false }
            let n = bytes[off..<min(bytes.count, off + most)].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    /// Waits until `fd` is ready for `events`; false once the stop
    /// descriptor is readable. Without one, at once true.
    private func ready(_ fd: Int32, _ events: Int16) -> Bool {
        let stop = stopDescriptor.load(ordering: .acquiring)
        guard stop >= 0 else { return true }
        var fds = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: stop, events: Int16(POLLIN), revents: 0)]
        while true {
            let r = poll(&fds, 2, -1)
            if r < 0 && errno == EINTR { continue }
            // An error or hang-up on fd is for the read or write to report.
            return r > 0 && fds[1].revents == 0
        }
    }

    private func toClient(_ fd: Int32, _ line: [UInt8]) -> Bool {
        clientWrite.withLock { _ in send(fd, line + [0x0a], stoppable: true) }
    }

    // MARK: client → server

    /// A request id's key: strings by their text, numbers by value (an
    /// answer with `1.0` or `1e0` is the answer to `1`, as a client that
    /// compares numbers takes it), and the id as the client wrote it.
    private static func idKey(_ id: JSON?) -> (key: String, text: String)? {
        switch id {
        case .string(let s): ("s" + s, quote(s))
        case .number(let n): ("n" + numberKey(n), n)
        default: nil
        }
    }

    /// Server text the relay writes into its own answers: without
    /// invisible characters, at most 200 characters.
    static func shown(_ text: String) -> String {
        let clean = InvisibleCharacters.strip(text).0
        return clean.count <= 200 ? clean : String(clean.prefix(200)) + "…"
    }

    package static func numberKey(_ text: String) -> String {
        if let value = Double(text), value.isFinite, value.rounded() == value, abs(value) < 9e15 { return String(Int64(value)) }
        return text
    }

    private struct Refusal: Error {
        var code: Int64
        var reason: String
        var message: String
    }

    private func fromClient(_ input: Line, serverIn: Int32, clientOut: Int32) -> Verdict {
        let line = input.bytes
        let message: JSON
        switch judge(input, from: Self.fromClientSide, clientOut: clientOut) {
        case .success(let m): message = m
        case .failure(let verdict): return verdict
        }
        guard let method = message["method"]?.stringValue else {
            // A response to one of the server's requests (sampling, elicitation, roots).
            return sent(send(serverIn, line + [0x0a]))
        }
        guard let (key, idText) = Self.idKey(message["id"]) else {
            // Only a notification goes without an id: a request without one
            // (a tools/call with id null, say) would pass every policy unseen.
            guard method.hasPrefix("notifications/") else {
                let answer = Self.errorAnswer(id: "null", code: -32600, message: "burrow: a request needs a string or number id", reason: "invalid_request")
                sink(.requestRefused(method: method, id: "null", reason: "invalid_request", message: "\(method) without a string or number id"))
                return sent(toClient(clientOut, answer))
            }
            if method == "notifications/cancelled", let (key, _) = Self.idKey(message["params"]?["requestId"]) { cancelled(key) }
            return sent(send(serverIn, line + [0x0a]))
        }
        // The client calls tools: the listing it approves from (first use) is over.
        if method == "tools/call" { pins?.endApproval() }
        var call: Call?
        if method == "tools/call" {
            let sequence = state.withLock { s -> Int in
                s.calls += 1
                return s.calls
            }
            let arguments = message["params"]?["arguments"] ?? .object([:])
            call = Call(id: idText, tool: message["params"]?["name"]?.stringValue ?? "", argumentsDigest: Self.digest(arguments), sequence: sequence)
        }
        var forward = line
        do {
            try admit(method: method, key: key)
            if var c = call {
                if let rewritten = try callPolicy(message, call: &c, serverIn: serverIn) { forward = rewritten }
                call = c
            }
        } catch {
            if let call {
                sink(.callRefused(call, reason: error.reason, message: error.message))
            } else {
                sink(.requestRefused(method: method, id: idText, reason: error.reason, message: error.message))
            }
            return sent(toClient(clientOut, Self.errorAnswer(id: idText, code: error.code, message: "burrow: " + error.message, reason: error.reason)))
        }
        let known = state.withLock { s -> Bool in
            if s.pending[key] != nil { return true }
            s.pending[key] = Pending(idText: idText, method: method, call: call, started: Kernel.monotonicNanoseconds())
            return false
        }
        if known {
            let answer = Self.errorAnswer(id: idText, code: -32600, message: "burrow: a request with this id is still in progress", reason: "duplicate_id")
            if let call { sink(.callRefused(call, reason: "duplicate_id", message: "a request with id \(idText) is still in progress")) }
            return sent(toClient(clientOut, answer))
        }
        if let call { sink(.callStarted(call)) }
        return sent(send(serverIn, forward + [0x0a]))
    }

    /// Session limits every request meets: the method's rate, then the number in the server's hands.
    private func admit(method: String, key: String) throws(Refusal) {
        let now = Kernel.monotonicNanoseconds()
        let refusal = state.withLock { s -> Refusal? in
            if let rate = plan.rateLimits.first(where: { $0.method == method }) {
                let capacity = Double(rate.perMinute)
                var bucket = s.buckets[method] ?? Bucket(tokens: capacity, updated: now)
                bucket.tokens = min(capacity, bucket.tokens + Double(now - bucket.updated) / 60e9 * capacity)
                bucket.updated = now
                guard bucket.tokens >= 1 else {
                    s.buckets[method] = bucket
                    let wait = Int((1 - bucket.tokens) / capacity * 60_000) + 1
                    return Refusal(code: -32000, reason: "rate_limited", message: "\(method) is limited to \(rate.perMinute) per minute in this session; retry in \(wait) ms")
                }
                bucket.tokens -= 1
                s.buckets[method] = bucket
            }
            if s.pending.count >= plan.maxConcurrentRequests {
                return Refusal(
                    code: -32000, reason: "too_many_requests", message: "\(s.pending.count) requests are already in progress, the most this session allows (mcp_policy.max_concurrent_requests)")
            }
            return nil
        }
        if let refusal { throw refusal }
    }

    /// The policy of one tools/call; returns the line to forward when a filter rewrote it.
    private func callPolicy(_ message: JSON, call: inout Call, serverIn: Int32) throws(Refusal) -> [UInt8]? {
        let arguments = message["params"]?["arguments"] ?? .object([:])
        let schema = try schemaFor(call.tool, message: message, serverIn: serverIn)
        guard case .object = arguments else { throw Refusal(code: -32602, reason: "invalid_arguments", message: "arguments must be an object") }
        if let v = SchemaValidator.violation(of: arguments, against: schema) { throw Refusal(code: -32602, reason: "invalid_arguments", message: v) }

        guard unusableFilters.isEmpty else {
            throw Refusal(code: -32602, reason: "filter_unusable", message: "content filter \(unusableFilters.joined(separator: ", ")) cannot be compiled here, so no call passes")
        }
        var needsApproval: [String] = []
        var sanitized = arguments
        var rewritten = false
        for f in filters where f.filter.applies(to: call.tool) {
            guard let path = f.firstMatch(in: arguments) else { continue }
            call.filters.append("\(f.filter.name) (\(f.filter.action.rawValue))")
            switch f.filter.action {
            case .block:
                throw Refusal(code: -32602, reason: "content_blocked", message: "\(path) matches content filter '\(f.filter.name)'")
            case .authorize:
                needsApproval.append(f.filter.name)
            case .sanitize:
                sanitized = f.sanitize(sanitized)
                rewritten = true
            case .log:
                break
            }
        }
        if !needsApproval.isEmpty {
            call.approvedUntil = try approve(call, meta: message["params"]?["_meta"], filters: needsApproval)
        }
        guard rewritten, case .object(var top) = message, case .object(var params) = top["params"] ?? .null else { return nil }
        params["arguments"] = sanitized
        top["params"] = .object(params)
        call.forwardedDigest = Self.digest(sanitized)
        return Array(JSON.object(top).canonicalText.utf8)
    }

    /// Checks the call's approval token for an `authorize` filter; returns its expiry.
    private func approve(_ call: Call, meta: JSON?, filters names: [String]) throws(Refusal) -> Int64 {
        let which = names.map { "'\($0)'" }.joined(separator: ", ")
        guard let token = meta?[Approval.metaKey]?.stringValue else {
            throw Refusal(
                code: -32602, reason: "approval_required",
                message:
                    "the arguments match content filter \(which), which needs an approval for this call in params._meta[\"\(Approval.metaKey)\"] (burrow approve --server \(server) --tool \(call.tool) --digest \(call.argumentsDigest))"
            )
        }
        let key: [UInt8]
        switch approvalKey {
        case .success(let k): key = k
        case .failure(let e): throw Refusal(code: -32602, reason: "approval_unavailable", message: "content filter \(which) needs an approval, and none can be checked: \(e)")
        case nil: throw Refusal(code: -32602, reason: "approval_unavailable", message: "no approval key is loaded")
        }
        let expires: Int64
        do {
            expires = try Approval.verify(token: token, publicKeyPEM: key, server: server, tool: call.tool, argumentsDigest: call.argumentsDigest, now: Int64(time(nil)))
        } catch {
            throw Refusal(code: -32602, reason: "approval_invalid", message: "the approval for content filter \(which) is not valid for this call: \(error)")
        }
        let fresh = state.withLock { $0.usedApprovals.insert(token).inserted }
        guard fresh else { throw Refusal(code: -32602, reason: "approval_reused", message: "this approval was already used in this session: each approves one call") }
        return expires
    }

    /// The named tool's inputSchema. When the tools are not known yet (or
    /// the name is not among them and the list is not the relay's own), the
    /// relay asks the server for the whole list first.
    private func schemaFor(_ name: String, message: JSON, serverIn: Int32) throws(Refusal) -> JSON {
        let (tools, verified) = state.withLock { ($0.tools, $0.verified) }
        if let schema = tools?[name] { return schema }
        if tools == nil || !verified {
            try fetchTools(meta: message["params"]?["_meta"], serverIn: serverIn)
            if let schema = state.withLock({ $0.tools?[name] }) { return schema }
        }
        if let withheld = state.withLock({ $0.withheld[name] }) {
            // What changed, by field and digest: never the server's new text, which would reach the model.
            let known = withheld.fields.filter(ToolPins.namedFields.contains)
            let others = withheld.fields.count - known.count
            let changed = known + (others > 0 ? ["\(others) other field\(others == 1 ? "" : "s")"] : [])
            let why = withheld.change == "new" ? "it is not among the approved tools" : "its \(changed.joined(separator: ", ")) changed since it was approved"
            throw Refusal(code: -32602, reason: "definition_changed", message: "\(Self.quote(name)) is withheld: \(why) (\(withheld.digest)); an operator must approve it first")
        }
        throw Refusal(code: -32602, reason: "unknown_tool", message: "the server did not list a tool named \(Self.quote(name))")
    }

    /// Walks the server's tools/list (every page) with the relay's own ids.
    /// The protocol fields of the call's `_meta` go along, so a 2026-07-28
    /// server sees the version the client uses.
    private func fetchTools(meta: JSON?, serverIn: Int32) throws(Refusal) {
        var params: [String: JSON] = [:]
        if case .object(let m) = meta ?? .null {
            let kept = m.filter { $0.key.hasPrefix("io.modelcontextprotocol/") }
            if !kept.isEmpty { params["_meta"] = .object(kept) }
        }
        var found: [String: JSON] = [:]
        var cursor: JSON?
        let deadline = Kernel.monotonicNanoseconds() + Self.listTimeoutNanoseconds
        for _ in 0..<64 {
            var p = params
            if let cursor { p["cursor"] = cursor }
            let id = "burrow-\(nonce)-\(fetchCount.add(1, ordering: .relaxed).newValue)"
            state.withLock { s in
                s.fetchKey = "s" + id
                s.fetchReply = nil
            }
            let request = JSON.object(["jsonrpc": .string("2.0"), "id": .string(id), "method": .string("tools/list"), "params": .object(p)])
            guard send(serverIn, Array(request.canonicalText.utf8) + [0x0a]) else { throw Refusal(code: -32603, reason: "tools_not_listed", message: "the server's stdin is closed") }
            var reply: JSON?
            while reply == nil {
                let (r, gone) = state.withLock { ($0.fetchReply, $0.serverGone) }
                if let r {
                    reply = r
                    break
                }
                let now = Kernel.monotonicNanoseconds()
                if gone || now >= deadline {
                    state.withLock { $0.fetchKey = nil }
                    throw Refusal(
                        code: -32603, reason: "tools_not_listed",
                        message: gone ? "the server ended before it listed its tools" : "the server did not answer tools/list within \(Self.listTimeoutNanoseconds / 1_000_000_000) s")
                }
                _ = fetched.wait(timeout: .now() + .nanoseconds(Int(min(deadline - now, 1_000_000_000))))
            }
            guard case .array(let tools) = reply?["result"]?["tools"] ?? .null else {
                throw Refusal(
                    code: -32603, reason: "tools_not_listed", message: "the server's answer to tools/list has no tools: \(Self.shown(reply?["error"]?["message"]?.stringValue ?? "no result"))")
            }
            cursor = reply?["result"]?["nextCursor"]
            for t in judged(tools, complete: cursor == nil || cursor == .null) { if let name = t["name"]?.stringValue { found[name] = t["inputSchema"] ?? .object([:]) } }
            if cursor == nil || cursor == .null {
                state.withLock { s in
                    s.tools = found
                    s.verified = true
                }
                return
            }
        }
        throw Refusal(code: -32603, reason: "tools_not_listed", message: "the server's tools/list did not end within 64 pages")
    }

    private func cancelled(_ key: String) {
        guard let pending = state.withLock({ $0.pending.removeValue(forKey: key) }), let call = pending.call else { return }
        sink(.callEnded(call, milliseconds: (Kernel.monotonicNanoseconds() - pending.started) / 1_000_000, outcome: .cancelled))
    }

    // MARK: server → client

    private func fromServer(_ input: Line, clientOut: Int32) -> Verdict {
        var line = input.bytes
        var message: JSON
        switch judge(input, from: Self.fromServerSide, clientOut: clientOut) {
        case .success(let m): message = m
        case .failure(let verdict): return verdict
        }
        /// What reaches the client: without invisible characters in its
        /// values (reported); a message with one in a key (which would have
        /// to be renamed) is dropped. Its id, method and version stay as sent.
        func forward(_ what: String, answering idText: String? = nil) -> Verdict {
            guard case .object(var members) = message else { return sent(toClient(clientOut, line)) }
            if InvisibleCharacters.inKeys(message) {
                sink(.invisibleCharacters(where: what + " (in an object key: the message was not forwarded)", count: 1))
                // An answer still answers: the client is not left waiting.
                guard let idText else {
                    drop(Self.fromServerSide, input, "invisible characters in an object key", unjudged: true)
                    return .relayed
                }
                let refusal = Self.errorAnswer(
                    id: idText, code: -32603, message: "burrow: the server's answer has invisible characters in an object key, so it was not forwarded", reason: "invisible_characters")
                return sent(toClient(clientOut, refusal))
            }
            var removed = 0
            for key in ["result", "error", "params"] {
                guard let value = members[key] else { continue }
                let (clean, n) = InvisibleCharacters.strip(value)
                members[key] = clean
                removed += n
            }
            if removed > 0 {
                sink(.invisibleCharacters(where: what, count: removed))
                line = Array(JSON.object(members).canonicalText.utf8)
            }
            return sent(toClient(clientOut, line))
        }
        if let method = message["method"]?.stringValue {
            // A request or notification that also answers: which would the client take?
            if message["result"] != nil || message["error"] != nil {
                drop(Self.fromServerSide, input, "a message with both a method and a result or error", unjudged: true)
                return .relayed
            }
            if method == "notifications/tools/list_changed" {
                pins?.listChanged()
                state.withLock { s in
                    s.tools = nil
                    s.verified = false
                }
            }
            return forward(method)
        }
        guard let (key, _) = Self.idKey(message["id"]) else {
            // The relay never passes a request without an id, so no answer lacks one.
            drop(Self.fromServerSide, input, "an answer without a string or number id", unjudged: true)
            return .relayed
        }
        let own = state.withLock { s -> Bool in
            guard s.fetchKey == key else { return false }
            s.fetchKey = nil
            s.fetchReply = message
            return true
        }
        if own {
            fetched.signal()
            return .relayed
        }
        guard let pending = state.withLock({ $0.pending.removeValue(forKey: key) }) else {
            // No request of the client's is in progress under this id (it
            // was cancelled, or never sent): nothing judged it, so nothing passes.
            drop(Self.fromServerSide, input, "an answer to no request in progress", unjudged: true)
            return .relayed
        }
        if pending.method == "tools/list", case .array(let tools) = message["result"]?["tools"] ?? .null {
            let complete = (message["result"]?["nextCursor"] ?? .null) == .null
            let shown = judged(tools, complete: complete)
            if shown.count != tools.count, case .object(var top) = message, case .object(var result) = top["result"] ?? .null {
                result["tools"] = .array(shown)
                top["result"] = .object(result)
                message = .object(top)
                line = Array(message.canonicalText.utf8)
            }
            state.withLock { s in
                var known = s.tools ?? [:]
                for t in shown { if let name = t["name"]?.stringValue { known[name] = t["inputSchema"] ?? .object([:]) } }
                for name in s.withheld.keys { known[name] = nil }
                s.tools = known
            }
        }
        if let call = pending.call {
            let outcome: Outcome =
                if case .number(let n) = message["error"]?["code"] ?? .null { .jsonrpcError(Int64(n) ?? 0) } else if message["result"]?["isError"] == .bool(true) { .toolError } else { .completed }
            sink(.callEnded(call, milliseconds: (Kernel.monotonicNanoseconds() - pending.started) / 1_000_000, outcome: outcome))
        }
        return forward(pending.call.map { "the result of \($0.tool)" } ?? "the answer to \(pending.method)", answering: pending.idText)
    }

    /// The tools of a listing page the client may see: with pins, the
    /// ones pinned as they are (the others are withheld, reported once
    /// per session and definition); without, all of them.
    private func judged(_ tools: [JSON], complete: Bool) -> [JSON] {
        guard let pins else { return tools }
        let (shown, withheld) = pins.judge(tools, server: server, complete: complete)
        let fresh = state.withLock { s -> [ToolPins.Difference] in
            for t in shown { if let name = t["name"]?.stringValue { s.withheld[name] = nil } }
            var fresh: [ToolPins.Difference] = []
            for d in withheld {
                s.withheld[d.name] = d
                if s.reported.insert(d.name + "\u{0}" + d.digest).inserted { fresh.append(d) }
            }
            return fresh
        }
        for d in fresh { sink(.definitionWithheld(d)) }
        return shown
    }

    // MARK: stderr

    private func copyStderr(_ fd: Int32, to out: Int32) {
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        var windowStart = Kernel.monotonicNanoseconds()
        var used = 0
        var dropped = 0
        let cap = plan.stderrBytesPerSecond
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            let now = Kernel.monotonicNanoseconds()
            if now - windowStart >= 1_000_000_000 {
                if dropped > 0 { _ = send(out, Array("[burrow: \(dropped) bytes of the server's stderr dropped (over \(cap) bytes/s)]\n".utf8), stoppable: true) }
                windowStart = now
                used = 0
                dropped = 0
            }
            let pass = min(max(0, cap - used), n)
            if pass > 0 { _ = send(out, Array(chunk[0..<pass]), stoppable: true) }
            used += pass
            dropped += n - pass
        }
        if dropped > 0 { _ = send(out, Array("[burrow: \(dropped) bytes of the server's stderr dropped]\n".utf8), stoppable: true) }
    }

    // MARK: helpers

    static func quote(_ s: String) -> String {
        var out = ""
        JSON.quote(s, into: &out)
        return out
    }

    /// `sha256:` of the value's canonical JSON (keys sorted, numbers as written).
    package static func digest(_ value: JSON) -> String {
        SHA256.label(Array(value.canonicalText.utf8))
    }
}

/// Runs `action` when ticked `count` times.
private final class Countdown: Sendable {
    private let left: Atomic<Int>
    private let action: @Sendable () -> Void

    init(_ count: Int, _ action: @escaping @Sendable () -> Void) {
        left = Atomic(count)
        self.action = action
    }

    func tick() { if left.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { action() } }
}

/// A content filter with its expression compiled (used by the client-side thread only).
private struct CompiledFilter: @unchecked Sendable {
    let filter: ContentFilter
    let regex: Regex<AnyRegexOutput>

    /// The path of the first string value that matches, or nil.
    func firstMatch(in value: JSON, path: String = "arguments") -> String? {
        switch value {
        case .string(let s): return (try? regex.firstMatch(in: s)) != nil ? path : nil
        case .array(let items):
            for (i, item) in items.enumerated() { if let p = firstMatch(in: item, path: "\(path)[\(i)]") { return p } }
        case .object(let members):
            for (key, member) in members.sorted(by: { $0.key < $1.key }) { if let p = firstMatch(in: member, path: "\(path).\(key)") { return p } }
        default: break
        }
        return nil
    }

    /// `value` with every match in its string values replaced.
    func sanitize(_ value: JSON) -> JSON {
        switch value {
        case .string(let s): .string(s.replacing(regex, with: filter.replacement))
        case .array(let items): .array(items.map(sanitize))
        case .object(let members): .object(members.mapValues(sanitize))
        default: value
        }
    }
}

extension MCPPlan {
    /// The bounds every message is parsed within, either way: the line
    /// limit for the whole and for any one string, the plan's nesting limit.
    package var messageLimits: JSONLimits {
        JSONLimits(maxDepth: maxDepth, maxKeyBytes: 64 << 10, maxStringBytes: maxLineBytes, maxItems: maxLineBytes, maxBytes: maxLineBytes)
    }
}
