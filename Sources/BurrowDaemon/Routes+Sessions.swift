import BurrowAPI
import BurrowAudit
import BurrowPolicy
import BurrowProfile
import FoundationEssentials
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
        let prepared = try await daemon.invocations.prepare(record, body, caller: context.identity, session: true)
        let session = try daemon.sessions.start(prepared)
        return try json(
            SessionStarted(
                id: session.id, tool: id, version: record.registration.metadata.version, endpoint: "/v1/sessions/\(session.id)/mcp",
                idleTimeoutSeconds: Int(daemon.policy.mcp.sessionIdleTimeout.milliseconds / 1000)),
            status: .created)
    }

    /// The live session named in the path, if this caller may use it.
    private func liveSession(_ request: Request, _ context: DaemonContext, _ what: String) async throws -> MCPSession {
        let sid = try Self.uuidParameter(context, "sid", what: "session")
        let identity = context.identity
        let notFound = DaemonError(.sessionNotFound, "no live MCP session \(sid) of yours (it ended, or never was)")
        guard let session = daemon.sessions.session(sid) else { throw notFound }
        guard session.owner == identity.key || context.roles.contains(.admin) else {
            // Someone else's session is as absent as an ended one, and the attempt is recorded.
            await daemon.denials.record(
                caller: identity, tool: session.tool, RefusalDetails(reason: "not_session_owner", message: "\(what): session \(sid) belongs to \(session.ownerName)"))
            throw notFound
        }
        try await require(.invoker, context, request, what, tool: session.tool)
        return session
    }

    func sessionMessage(_ request: Request, _ context: DaemonContext) async throws -> Response {
        let session = try await liveSession(request, context, "using an MCP session")
        let limit = Int(clamping: min(daemon.policy.daemon.maxRequestBytes.bytes, UInt64(session.maxLineBytes)))
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw DaemonError(.requestTooLarge, "an MCP message here is at most \(limit) bytes")
        } catch {
            throw DaemonError(.bodyIncomplete, "the message did not arrive whole: \(error)")
        }
        var headers = HTTPFields()
        // MCP Streamable HTTP's session header (a valid field name: the initializer does not fail on it).
        if let name = HTTPFields.Element.Name("Mcp-Session-Id") { headers[name] = session.id }
        switch try await session.send(Array(buffer.readableBytesView)) {
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

    /// No server-to-client stream: the relay answers requests in their POST.
    func sessionStream(_ request: Request, _ context: DaemonContext) async throws -> Response {
        _ = try await liveSession(request, context, "using an MCP session")
        return Response(status: .methodNotAllowed, headers: [.allow: "POST, DELETE"])
    }

    func endSession(_ request: Request, _ context: DaemonContext) async throws -> Response {
        let session = try await liveSession(request, context, "ending an MCP session")
        session.end("ended by the client")
        return Response(status: .noContent)
    }
}
