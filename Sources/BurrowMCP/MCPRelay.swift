import BurrowAudit
import BurrowSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Relays newline-delimited JSON-RPC between an MCP client and a sandboxed
/// server, forwarding the original bytes of every message it lets through.
/// It parses each line only to apply policy: framing limits both ways,
/// `tools/call` for names the server listed and with arguments its
/// `inputSchema` accepts, and one event per call.
public final class MCPRelay: Sendable {
    public struct Limits: Sendable {
        /// The longest line accepted either way, newline excluded.
        public var maxLineBytes = 4 << 20
        /// The deepest nesting accepted either way.
        public var maxDepth = 64
        /// Server stderr passed on per second; the rest is dropped and counted.
        public var stderrBytesPerSecond = 64 << 10

        public init() {}
    }

    /// What happened, for the audit log and the operator.
    public enum Event: Sendable {
        /// A `tools/call` the relay let through.
        case callStarted(Call)
        /// Its answer: `error` is the JSON-RPC error code, or nil; `isError` a tool-level failure.
        case callEnded(Call, milliseconds: UInt64, error: Int64?, isError: Bool)
        /// A call refused by policy: it never reached the server.
        case callRefused(Call, reason: String, message: String)
        /// A framing violation: the session ends.
        case violation(direction: String, message: String)
    }

    public struct Call: Sendable, Equatable {
        /// The JSON-RPC id as the client wrote it (JSON text).
        public var id: String
        public var tool: String
        /// `sha256:` of the arguments' canonical JSON.
        public var argumentsDigest: String
        /// Numbered from 1 within the session.
        public var sequence: Int
    }

    private struct Pending {
        var method: String
        var call: Call?
        var started: UInt64
    }

    private struct State {
        var pending: [String: Pending] = [:]
        /// Tool name → inputSchema, from every tools/list answer; nil until the first.
        var tools: [String: JSON]?
        var calls = 0
        var ended: String?
    }

    private let limits: Limits
    private let sink: @Sendable (Event) -> Void
    private let state = Mutex(State())
    /// Serialises writes to the client's stdout (both directions answer it).
    private let clientWrite = Mutex(())

    public init(limits: Limits = Limits(), sink: @escaping @Sendable (Event) -> Void) {
        self.limits = limits
        self.sink = sink
    }

    /// The calls in flight now (for events of the sandbox that happen meanwhile).
    public var callsInFlight: [Call] { state.withLock { $0.pending.values.compactMap(\.call).sorted { $0.sequence < $1.sequence } } }

    /// Why the session ended early, if it did.
    public var endedBy: String? { state.withLock { $0.ended } }

    /// Relays until the server's stdout ends or a violation stops the
    /// session (then `onViolation` runs: the caller stops the sandbox).
    /// Returns when the server side is done; the client-side reader is left
    /// to the process's exit.
    public func run(clientIn: Int32, clientOut: Int32, serverIn: Int32, serverOut: Int32, serverErr: Int32, errOut: Int32, onViolation: @escaping @Sendable () -> Void) {
        do {
            try Kernel.detachedThread { [self] in
                forEachLine(clientIn, direction: "client → server", onViolation: onViolation) { line in fromClient(line, serverIn: serverIn, clientOut: clientOut) }
                // The client hung up: the server sees EOF on its stdin.
                close(serverIn)
            }
            try Kernel.detachedThread { [self] in copyStderr(serverErr, to: errOut) }
        } catch {
            return violated("relay", "cannot start the relay's threads: \(error)", onViolation)
        }
        forEachLine(serverOut, direction: "server → client", onViolation: onViolation) { line in fromServer(line, clientOut: clientOut) }
    }

    // MARK: framing

    private func forEachLine(_ fd: Int32, direction: String, onViolation: @Sendable () -> Void, _ handle: ([UInt8]) -> Bool) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var scanned = 0
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            buffer += chunk[0..<n]
            var start = 0
            var i = scanned
            while i < buffer.count {
                if buffer[i] == 0x0a {
                    var line = Array(buffer[start..<i])
                    if line.last == 0x0d { line.removeLast() }
                    if !line.isEmpty, !handle(line) {
                        return violated(direction, state.withLock { $0.ended } ?? "refused", onViolation)
                    }
                    start = i + 1
                }
                i += 1
            }
            buffer.removeFirst(start)
            scanned = buffer.count
            if buffer.count > limits.maxLineBytes {
                return violated(direction, "a line longer than \(limits.maxLineBytes) bytes", onViolation)
            }
        }
    }

    private func violated(_ direction: String, _ message: String, _ onViolation: @Sendable () -> Void) {
        let first = state.withLock { s -> Bool in
            defer { if s.ended == nil { s.ended = "\(direction): \(message)" } }
            return s.ended == nil
        }
        guard first else { return }
        sink(.violation(direction: direction, message: message))
        onViolation()
    }

    /// Parses a line within the limits; on failure records why and returns nil.
    private func parse(_ line: [UInt8]) -> JSON? {
        guard line.count <= limits.maxLineBytes else {
            state.withLock { $0.ended = $0.ended ?? "a line longer than \(limits.maxLineBytes) bytes" }
            return nil
        }
        do {
            guard String(validating: line, as: UTF8.self) != nil else { throw JSONError(description: "the line is not valid UTF-8") }
            return try JSONParser.parse(line, maxDepth: limits.maxDepth)
        } catch {
            state.withLock { $0.ended = $0.ended ?? "not a JSON-RPC message: \(error)" }
            return nil
        }
    }

    private func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    private func toClient(_ fd: Int32, _ line: [UInt8]) -> Bool {
        clientWrite.withLock { _ in send(fd, line + [0x0a]) }
    }

    // MARK: policy

    private static func idKey(_ id: JSON?) -> (key: String, text: String)? {
        switch id {
        case .string(let s): ("s" + s, "\"" + s + "\"")
        case .number(let n): ("n" + n, n)
        default: nil
        }
    }

    private func fromClient(_ line: [UInt8], serverIn: Int32, clientOut: Int32) -> Bool {
        guard let message = parse(line) else { return false }
        guard case .object = message else {
            // Batches are not part of MCP since 2025-06-18.
            state.withLock { $0.ended = "a message that is not a JSON object" }
            return false
        }
        if let method = message["method"]?.string, let (key, idText) = Self.idKey(message["id"]) {
            var call: Call?
            if method == "tools/call" {
                let name = message["params"]?["name"]?.string ?? ""
                let arguments = message["params"]?["arguments"] ?? .object([:])
                let sequence = state.withLock { s -> Int in
                    s.calls += 1
                    return s.calls
                }
                let c = Call(id: idText, tool: name, argumentsDigest: Self.digest(arguments), sequence: sequence)
                if let (reason, why) = refusal(name: name, arguments: arguments) {
                    sink(.callRefused(c, reason: reason, message: why))
                    let error = "{\"jsonrpc\":\"2.0\",\"id\":\(idText),\"error\":{\"code\":-32602,\"message\":\(Self.quote("burrow: " + why)),\"data\":{\"burrow\":\(Self.quote(reason))}}}"
                    return toClient(clientOut, Array(error.utf8))
                }
                call = c
                sink(.callStarted(c))
            }
            state.withLock { $0.pending[key] = Pending(method: method, call: call, started: Kernel.monotonicNanoseconds()) }
        }
        return send(serverIn, line + [0x0a])
    }

    /// Why a tools/call may not reach the server: (reason code, message), or nil.
    private func refusal(name: String, arguments: JSON) -> (String, String)? {
        guard let tools = state.withLock({ $0.tools }) else {
            return ("tools_not_listed", "tools/call before tools/list: Burrow lets a call through only for a tool the server listed")
        }
        guard let schema = tools[name] else { return ("unknown_tool", "the server did not list a tool named \(Self.quote(name))") }
        guard case .object = arguments else { return ("invalid_arguments", "arguments must be an object") }
        if let v = SchemaValidator.violation(of: arguments, against: schema) { return ("invalid_arguments", v) }
        return nil
    }

    private func fromServer(_ line: [UInt8], clientOut: Int32) -> Bool {
        guard let message = parse(line) else { return false }
        if message["method"] == nil, let (key, _) = Self.idKey(message["id"]) {
            let pending = state.withLock { $0.pending.removeValue(forKey: key) }
            if let pending {
                if pending.method == "tools/list", case .array(let tools) = message["result"]?["tools"] ?? .null {
                    state.withLock { s in
                        var known = s.tools ?? [:]
                        for t in tools { if let name = t["name"]?.string { known[name] = t["inputSchema"] ?? .object([:]) } }
                        s.tools = known
                    }
                }
                if let call = pending.call {
                    let code: Int64? = if case .number(let n) = message["error"]?["code"] ?? .null { Int64(n) } else { nil }
                    let isError = message["result"]?["isError"] == .bool(true)
                    sink(.callEnded(call, milliseconds: (Kernel.monotonicNanoseconds() - pending.started) / 1_000_000, error: code, isError: isError))
                }
            }
        }
        return toClient(clientOut, line)
    }

    // MARK: stderr

    private func copyStderr(_ fd: Int32, to out: Int32) {
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        var windowStart = Kernel.monotonicNanoseconds()
        var used = 0
        var dropped = 0
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            let now = Kernel.monotonicNanoseconds()
            if now - windowStart >= 1_000_000_000 {
                if dropped > 0 { _ = send(out, Array("[burrow: \(dropped) bytes of the server's stderr dropped (over \(limits.stderrBytesPerSecond) bytes/s)]\n".utf8)) }
                windowStart = now
                used = 0
                dropped = 0
            }
            let room = max(0, limits.stderrBytesPerSecond - used)
            let pass = min(room, n)
            if pass > 0 { _ = send(out, Array(chunk[0..<pass])) }
            used += pass
            dropped += n - pass
        }
        if dropped > 0 { _ = send(out, Array("[burrow: \(dropped) bytes of the server's stderr dropped]\n".utf8)) }
    }

    // MARK: helpers

    static func quote(_ s: String) -> String {
        var out = ""
        JSONValue.quote(s, into: &out)
        return out
    }

    static func digest(_ value: JSON) -> String {
        var text = ""
        canonical(value, into: &text)
        return "sha256:" + AuditChain.hex(AuditChain.sha256(Array(text.utf8)))
    }

    private static func canonical(_ value: JSON, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): out += quote(s)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                canonical(item, into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, key) in members.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                out += quote(key) + ":"
                canonical(members[key]!, into: &out)
            }
            out += "}"
        }
    }
}
