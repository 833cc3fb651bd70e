import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowMCP
import BurrowPolicy
import BurrowProfile
import FoundationEssentials
import HTTPTypes
import Hummingbird
import NIOCore

/// MCP sessions (see `MCPSessions`): start one for a registered
/// `mcp = true` tool, then speak MCP Streamable HTTP to it.
extension API {
    func startSession(_ request: Request, _ context: DaemonContext) async throws -> Response {
        let id = try Self.toolID(context)
        try await require(.invoker, context, request, "starting an MCP session", tool: id)
        let body = try await decode(InvocationRequest.self, request, context, tool: id)
        try Self.checkFields(body)
        guard body.stdin == nil, body.stdinBase64 == nil else {
            throw DaemonError(.invalidRequest, "an MCP session's stdin is its MCP traffic: send messages to the session's endpoint")
        }
        let record = try registration(id, version: body.version)
        let session = try await newSession(record, body, request, context)
        return try json(
            SessionStarted(
                id: session.id, tool: id, version: record.registration.metadata.version, endpoint: "/v1/sessions/\(session.id)/mcp",
                idleTimeoutSeconds: Int(daemon.policy.mcp.sessionIdleTimeout.milliseconds / 1000)),
            status: .created)
    }

    /// A session of `record` started for this caller, within `[mcp]`'s
    /// session limits (checked before its plan is made; a refusal is audited).
    private func newSession(_ record: ToolRecord, _ body: InvocationRequest, _ request: Request, _ context: DaemonContext, sessionless: Bool = false) async throws
        -> MCPSession
    {
        func admitted<T>(_ step: () throws(DaemonError) -> T) async throws(DaemonError) -> T {
            do {
                return try step()
            } catch {
                await daemon.denials.record(
                    caller: context.identity, tool: record.registration.id,
                    RefusalDetails(reason: "session_limit", message: error.message, method: request.method.rawValue, path: request.uri.path))
                throw error
            }
        }
        try await admitted { () throws(DaemonError) in try daemon.sessions.admit(context.identity.key) }
        let prepared = try await daemon.invocations.prepare(record, body, caller: context.identity, session: true)
        return try await admitted { () throws(DaemonError) in try daemon.sessions.start(prepared, sessionless: sessionless) }
    }

    /// The live session named in the path, if this caller may use it.
    private func liveSession(_ request: Request, _ context: DaemonContext, _ what: String) async throws -> MCPSession {
        try await liveSession(try Self.uuidParameter(context, "sid", what: "session"), request, context, what)
    }

    /// The live session `sid`, if this caller may use it: another caller's
    /// is as absent as an ended one (404), and the attempt is recorded.
    private func liveSession(_ sid: String, _ request: Request, _ context: DaemonContext, _ what: String) async throws -> MCPSession {
        let identity = context.identity
        let notFound = DaemonError(.sessionNotFound, "no live MCP session \(sid) of yours (it ended, or never was)")
        guard let session = daemon.sessions.session(sid) else { throw notFound }
        guard session.owner == identity.key || context.roles.contains(.admin) else {
            // Someone else's session is as absent as an ended one, and the attempt is recorded.
            await daemon.denials.record(
                caller: identity, tool: session.tool, RefusalDetails(reason: "not_session_owner", message: "\(what): session \(sid) belongs to \(session.ownerName)"))
            throw notFound
        }
        // Ending a session is always allowed; using it meets the tool's conditions (calls are counted per tools/call).
        try await require(.invoker, context, request, what, tool: session.tool, rules: request.method == .delete ? [] : .conditions)
        return session
    }

    func sessionMessage(_ request: Request, _ context: DaemonContext) async throws -> Response {
        try await forward(request, context, to: try await liveSession(request, context, "using an MCP session"))
    }

    /// One message to a session's server; its answer (or 202 for a
    /// notification or a response), with the session's Mcp-Session-Id.
    /// A session-less request's message must parse, and its routing
    /// headers agree with it (`routingMismatch`); its answers carry no
    /// `Mcp-Session-Id`. The message is read within the relay's own bounds,
    /// so what is checked here is what the relay passes on.
    private func forward(_ request: Request, _ context: DaemonContext, to session: MCPSession, body given: [UInt8]? = nil, sessionless: Bool = false) async throws -> Response {
        let limit = Int(clamping: min(daemon.policy.daemon.maxRequestBytes.bytes, UInt64(session.maxLineBytes)))
        let body: [UInt8]
        if let given {
            body = given
        } else {
            body = try await Self.message(request, limit: limit)
        }
        let message: [String: JSON]?
        if case .object(let fields)? = try? JSONParser.parse(body, limits: session.limits) { message = fields } else { message = nil }
        if sessionless {
            func refuse(_ code: Int64, _ text: String, id: JSON?) -> Response {
                var answerID = "null"
                if let id, MCPSession.idKey(id) != nil { answerID = id.canonicalText }
                let answer = MCPRelay.errorAnswer(id: answerID, code: code, message: text, reason: code == -32020 ? "header_mismatch" : "not_json")
                return Response(status: .badRequest, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer)))
            }
            guard let message else { return refuse(-32700, "Parse error: one JSON-RPC message, an object, within the relay's bounds", id: nil) }
            if let mismatch = Self.routingMismatch(request, message) {
                await daemon.denials.record(
                    caller: context.identity, tool: session.tool,
                    RefusalDetails(reason: "mcp_header_mismatch", message: mismatch, method: request.method.rawValue, path: request.uri.path))
                return refuse(-32020, "Header mismatch: \(mismatch)", id: message["id"])
            }
        }
        if case .string(let method)? = message?["method"] {
            try await limitMethod(method, request, context, tool: session.tool)
            // A tools/call is a call of the tool: it takes a token of its capability rate.
            if method == "tools/call" { try await checkCapabilities(session.tool, context, request, .call) }
        }
        var headers = HTTPFields()
        // MCP Streamable HTTP's session header (a valid field name: the initializer does not fail on it).
        if !sessionless, let name = HTTPFields.Element.Name("Mcp-Session-Id") { headers[name] = session.id }
        switch try await session.send(body) {
        case .accepted:
            return Response(status: .accepted, headers: headers)
        case .answer(let answer):
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer)))
        case .rejected(let status, let body):
            headers[.contentType] = "application/json"
            return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
    }

    func sessionStream(_ request: Request, _ context: DaemonContext) async throws -> Response {
        try eventStream(request, try await liveSession(request, context, "opening an MCP session's stream"))
    }

    /// The session's server-to-client stream (GET, MCP Streamable HTTP):
    /// SSE whose events are the server's own requests and notifications,
    /// each with its id; first an event with the id it starts after and no
    /// data (the client's resumption point), then what it resumes
    /// (`Last-Event-ID`) or what no stream has taken yet, then each new
    /// one, and a keep-alive comment every 15 s. One stream per session: a
    /// new GET replaces the open one.
    private func eventStream(_ request: Request, _ session: MCPSession) throws -> Response {
        guard request.headers[values: .accept].contains(where: { $0.contains("text/event-stream") }) else {
            throw DaemonError(.notAcceptable, "the session's stream is text/event-stream: send Accept: text/event-stream")
        }
        var last: Int?
        if let name = HTTPField.Name("Last-Event-ID") {
            let given = request.headers[values: name]
            guard given.count <= 1, given.allSatisfy({ (1...18).contains($0.utf8.count) && $0.utf8.allSatisfy { (48...57).contains($0) } }) else {
                throw DaemonError(.invalidRequest, "one Last-Event-ID, an event id this stream sent (digits)")
            }
            last = given.first.flatMap { Int($0) }
        }
        let stream: (start: Int, events: AsyncStream<MCPSession.Event>, lost: Int, token: Int)
        do {
            stream = try session.openStream(after: last)
        } catch {
            switch error {
            case .ended(let why): throw DaemonError(.sessionNotFound, "the session has ended: \(why)")
            case .unknownEvent(let id): throw DaemonError(.invalidRequest, "Last-Event-ID \(id): no such event was sent in this session")
            }
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        if let name = HTTPFields.Element.Name("Mcp-Session-Id") { headers[name] = session.id }
        let keepAlive = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(15))
                if !session.keepAlive(stream.token) { return }
            }
        }
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                defer {
                    keepAlive.cancel()
                    session.closeStream(stream.token)
                }
                var opening = "id: \(stream.start)\ndata:\n\n"
                if stream.lost > 0 { opening = ": \(stream.lost) earlier events were no longer kept (at most \(MCPSession.maxEvents) per session)\n\n" + opening }
                try await writer.write(ByteBuffer(string: opening))
                for await event in stream.events {
                    if event.id == 0 {
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    } else {
                        try await writer.write(ByteBuffer(bytes: Array("id: \(event.id)\nevent: message\ndata: ".utf8) + event.line + [0x0a, 0x0a]))
                    }
                }
                try await writer.finish(nil)
            })
    }

    func endSession(_ request: Request, _ context: DaemonContext) async throws -> Response {
        let session = try await liveSession(request, context, "ending an MCP session")
        session.end("ended by the client")
        return Response(status: .noContent)
    }

    /// `[rate_limits.methods]`: a request whose method has a limit takes a
    /// token of this caller's bucket for it (429 with Retry-After past it).
    private func limitMethod(_ method: String, _ request: Request, _ context: DaemonContext, tool: String) async throws {
        guard context.identity.local?.uid != 0, let perMinute = daemon.policy.rateLimits.methods[method] else { return }
        guard let retry = daemon.clientLimits.take("\(context.identity.key) \(method)", perMinute: perMinute, burst: perMinute) else { return }
        let message = "this caller may send \(perMinute) \(method) requests per minute ([rate_limits.methods]); retry in \(retry) s"
        await daemon.denials.record(
            caller: context.identity, tool: tool, RefusalDetails(reason: "method_rate_limited", message: message, method: request.method.rawValue, path: request.uri.path))
        throw DaemonError(.rateLimited, message, retryAfter: retry)
    }

    /// A message body within `limit` bytes.
    private static func message(_ request: Request, limit: Int) async throws -> [UInt8] {
        do {
            return Array(try await request.body.collect(upTo: limit).readableBytesView)
        } catch is NIOTooManyBytesError {
            throw DaemonError(.requestTooLarge, "an MCP message here is at most \(limit) bytes")
        } catch {
            throw DaemonError(.bodyIncomplete, "the message did not arrive whole: \(error)")
        }
    }

    /// `/v1/tools/{id}/mcp`: the tool as one MCP Streamable HTTP endpoint
    /// (the `initialize` era), for MCP clients that are given a URL. An
    /// `initialize` without `Mcp-Session-Id` starts a session of the tool
    /// (as POST /v1/tools/{id}/sessions does) and is its first message;
    /// later messages carry the session's id, which is bound to the caller
    /// that started it (another gets 404). DELETE ends it; GET opens its
    /// server-to-client stream (`eventStream`).
    func mcpEndpoint(_ request: Request, _ context: DaemonContext) async throws -> Response {
        let id = try Self.toolID(context)
        let header = HTTPField.Name("Mcp-Session-Id").flatMap { request.headers[values: $0] } ?? []
        if let sid = header.first {
            guard header.count == 1, Self.isUUID(sid) else { throw DaemonError(.invalidRequest, "one Mcp-Session-Id, as burrowd gave it (a lowercase UUID)") }
            let what = ["DELETE": "ending an MCP session", "GET": "opening an MCP session's stream"][request.method.rawValue] ?? "using an MCP session"
            let session = try await liveSession(sid, request, context, what)
            guard session.tool == id else { throw DaemonError(.sessionNotFound, "no live MCP session \(sid) of yours for \(id)") }
            switch request.method {
            case .delete:
                session.end("ended by the client")
                return Response(status: .noContent)
            case .get: return try eventStream(request, session)
            default: return try await forward(request, context, to: session)
            }
        }
        if request.method == .get {
            throw DaemonError(.invalidRequest, "no Mcp-Session-Id: a stream belongs to a session (start one with an initialize request)")
        }
        guard request.method == .post else { throw DaemonError(.invalidRequest, "no Mcp-Session-Id: start a session with an initialize request") }
        try await require(.invoker, context, request, "calling an MCP tool", tool: id, rules: .conditions)
        let body = try await Self.message(request, limit: Int(clamping: min(daemon.policy.daemon.maxRequestBytes.bytes, 4 << 20)))
        let fields: [String: JSON]
        if case .object(let f)? = try? JSONParser.parse(body, limits: JSONLimits()) { fields = f } else { fields = [:] }
        if fields["method"] == .string("initialize") {
            try await checkCapabilities(id, context, request, .call)  // a session's start is a call
            let session = try await newSession(try registration(id, version: nil), InvocationRequest(), request, context)
            return try await forward(request, context, to: session, body: body)
        }
        let versions = HTTPField.Name("MCP-Protocol-Version").map { request.headers[values: $0] } ?? []
        guard versions.count == 1, Self.isSessionless(versions[0]) else {
            // MCP: a request other than initialize without a session is 400 (in the eras that have sessions).
            throw DaemonError(
                .invalidRequest,
                "no Mcp-Session-Id: the first message must be an initialize request (or the request is of a session-less protocol version, 2026-07-28 or later, with MCP-Protocol-Version)")
        }
        let record = try registration(id, version: nil)
        let session = try await daemon.sessions.implicitSession(tool: id, owner: context.identity.key) {
            try await newSession(record, InvocationRequest(), request, context, sessionless: true)
        }
        return try await forward(request, context, to: session, body: body, sessionless: true)
    }

    /// A protocol version of the session-less era: a date, 2026-07-28 or later.
    static func isSessionless(_ version: String) -> Bool {
        let parts = version.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, zip(parts, [4, 2, 2]).allSatisfy({ $0.count == $1 && $0.utf8.allSatisfy { (48...57).contains($0) } }) else { return false }
        return version >= "2026-07-28"
    }

    /// Why the routing headers of a session-less request disagree with its
    /// body, or nil: `Mcp-Method` must be the body's method, `Mcp-Name` the
    /// name of the tool or prompt (`params.name`) or the resource
    /// (`params.uri`) it names, `MCP-Protocol-Version` the version in its
    /// `_meta`. An intermediary that routes, limits or audits by header is
    /// never shown one thing while the server does another.
    static func routingMismatch(_ request: Request, _ fields: [String: JSON]) -> String? {
        func header(_ name: String) -> [String] { HTTPField.Name(name).map { request.headers[values: $0] } ?? [] }
        let version = header("MCP-Protocol-Version").first ?? ""
        guard case .string(let method)? = fields["method"] else { return nil }  // a response: nothing to route
        let methods = header("Mcp-Method")
        guard methods == [method] else { return "Mcp-Method \(methods.first.map { "'\($0.prefix(64))'" } ?? "missing") for a \(method.prefix(64)) message" }
        let meta = fields["params"]?["_meta"]?["io.modelcontextprotocol/protocolVersion"]
        if let meta, meta != .string(version) { return "MCP-Protocol-Version \(version) but _meta says \(meta)" }
        let named: JSON? =
            switch method {
            case "tools/call", "prompts/get": fields["params"]?["name"]
            case "resources/read": fields["params"]?["uri"]
            default: nil
            }
        guard let named else { return nil }
        let names = header("Mcp-Name")
        guard names.count == 1, let name = decodeName(names[0]) else { return "\(method) needs one Mcp-Name" }
        return named == .string(name) ? nil : "Mcp-Name '\(name.prefix(64))' for a \(method) naming \(named)"
    }

    /// An `Mcp-Name` value: as sent, or `=?base64?<base64>?=` for a name that is not plain ASCII.
    static func decodeName(_ value: String) -> String? {
        guard value.hasPrefix("=?base64?"), value.hasSuffix("?="), value.utf8.count >= 11 else { return value }
        let encoded = value.dropFirst(9).dropLast(2)
        return Data(base64Encoded: String(encoded)).flatMap { String(validating: Array($0), as: UTF8.self) }
    }
}
