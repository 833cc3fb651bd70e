public import BurrowAudit
import BurrowAPI
public import BurrowProfile
import BurrowSystem
import FoundationEssentials
public import Hummingbird
public import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// burrowd: the registry's delegate, serving the API on a Unix socket.
public struct Daemon: Sendable {
    public var policy: HostPolicy
    public var socketPath: String
    public var audit: AuditStore
    public var access: AccessPolicy
    public var lookup: PeerCredential.Lookup
    let startedAt = AuditClock.now()

    public init(policy: HostPolicy, socketPath: String, audit: AuditStore, lookup: @escaping PeerCredential.Lookup = PeerCredential.socketLookup) {
        self.policy = policy
        self.socketPath = socketPath
        self.audit = audit
        self.access = AccessPolicy(policy.daemon)
        self.lookup = lookup
    }

    /// Every route of /v1 behind the access middleware.
    public func router() -> Router<DaemonContext> {
        let router = Router(context: DaemonContext.self)
        router.add(middleware: AccessMiddleware(access: access, lookup: lookup))
        let v1 = router.group("v1")
        let audit = self.audit
        let startedAt = self.startedAt
        let policy = self.policy

        v1.get("health") { _, context -> Response in
            let peer = context.peer ?? PeerCredential(pid: 0, uid: UInt32.max, gid: UInt32.max)
            return try json(
                HealthResponse(
                    status: "ok", version: burrowDaemonVersion, uptimeSeconds: (AuditClock.now() - startedAt) / 1_000_000, auditDatabase: audit.path,
                    caller: .init(pid: peer.pid, uid: peer.uid, gid: peer.gid, roles: context.roles.map(\.rawValue).sorted())))
        }

        // The host policy every registration is validated and clamped against.
        v1.get("security/policies") { request, context -> Response in
            if context.roles.isEmpty {
                try context.require(.invoker, "reading the host policy", tool: nil, request: request, audit: audit)
            }
            return try json(policy)
        }

        // A tool's audit trail: the filters of `burrow audit`.
        v1.get("security/audit/:tool") { request, context -> Response in
            let tool = try context.parameters.require("tool")
            try context.require(.auditor, "reading the audit log", tool: tool, request: request, audit: audit)
            let query = try AuditQueryParameters.parse(request.uri.queryParameters, tool: tool)
            let events: [AuditEvent]
            do {
                events = try audit.events(query)
            } catch {
                throw DaemonError(.internalServerError, code: "audit_unavailable", "\(error)")
            }
            return try json(events)
        }
        return router
    }

    /// Serves until SIGTERM or SIGINT: the socket is 0660 root:socket_group.
    public func run(logger: Logger) async throws {
        let gid = UserDatabase.groupID(policy.daemon.socketGroup)
        if gid == nil { logger.warning("socket group \(policy.daemon.socketGroup) does not exist: the socket is root's only") }
        for problem in access.unresolved { logger.warning("role principal names nobody on this host: \(problem)") }
        let path = socketPath
        // Until chmod below, the socket must not be connectable by others.
        let previous = umask(0o177)
        let app = Application(
            router: router(),
            configuration: ApplicationConfiguration(address: .unixDomainSocket(path: path), serverName: "burrowd"),
            onServerRunning: { _ in
                umask(previous)
                _ = chown(path, uid_t.max, gid ?? 0)
                _ = chmod(path, 0o660)
                logger.info("burrowd \(burrowDaemonVersion) listening on \(path)")
            },
            logger: logger)
        try await app.runService()
        unlink(path)
    }
}

public let burrowDaemonVersion = "0.1.0"

/// Encodes a value as the JSON response (keys sorted: stable output).
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var body = ByteBuffer(bytes: try encoder.encode(value))
    body.writeString("\n")
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
}

/// `?type=…&since=…&until=…&invocation=…&limit=…` → an audit query.
enum AuditQueryParameters {
    static func parse(_ parameters: Parameters, tool: String) throws(DaemonError) -> AuditQuery {
        var query = AuditQuery(tool: tool, limit: 100)
        for raw in parameters.getAll("type").flatMap({ $0.split(separator: ",") }) {
            guard let t = AuditEventType.allCases.first(where: { $0.rawValue.lowercased() == raw.lowercased() }) else {
                throw DaemonError(.badRequest, code: "invalid_parameter", "unknown event type '\(raw)'; expected one of: \(AuditEventType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            query.types.append(t)
        }
        for (name, keyPath) in [("since", \AuditQuery.since), ("until", \AuditQuery.until)] {
            guard let text = parameters.get(name) else { continue }
            guard let t = AuditClock.parse(text) else { throw DaemonError(.badRequest, code: "invalid_parameter", "\(name): expected an RFC 3339 time, such as 2026-11-21T09:30:00Z") }
            query[keyPath: keyPath] = t
        }
        query.invocation = parameters.get("invocation")
        if let text = parameters.get("limit") {
            guard let n = Int(text), (1...10_000).contains(n) else { throw DaemonError(.badRequest, code: "invalid_parameter", "limit: expected 1 to 10000") }
            query.limit = n
        }
        return query
    }
}
