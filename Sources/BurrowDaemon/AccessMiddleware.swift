import BurrowAudit
import BurrowSystem
import Dispatch
import Hummingbird

/// Reads the caller's SO_PEERCRED and roles into the context; refuses a
/// caller whose credentials cannot be read. Route handlers then `require`
/// the role they need.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = DaemonContext
    let access: AccessPolicy
    let lookup: PeerCredential.Lookup

    func handle(_ request: Request, context: DaemonContext, next: (Request, DaemonContext) async throws -> Response) async throws -> Response {
        var context = context
        guard let channel = context.channel, let peer = try await lookup(channel) else { throw DaemonError.unauthenticated }
        context.peer = peer
        context.roles = access.roles(of: peer)
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            // The router's own errors (no route, wrong method, bad body) in the API's error shape.
            throw DaemonError(error.status, code: error.status == .notFound ? "not_found" : "http_\(error.status.code)", error.body ?? DaemonError.notFound.message)
        }
    }
}

extension DaemonContext {
    /// Throws 403 (and records a PermissionDenied) unless the caller holds `role`.
    func require(_ role: Role, _ what: String, tool: String?, request: Request, denials: DenialLog) async throws(DaemonError) {
        guard !roles.contains(role) else { return }
        await denials.record(
            peer: peer ?? .unknown, tool: tool ?? "burrowd", reason: "role_required", message: "\(what) needs the \(role.rawValue) role",
            extra: [
                "role": .string(role.rawValue), "method": .string(request.method.rawValue), "path": .string(request.uri.path),
                "roles": .array(roles.map(\.rawValue).sorted().map { .string($0) }),
            ])
        throw DaemonError.forbidden(role, what)
    }
}

/// Blocking I/O (audit appends wait for an fsync) runs on Dispatch's threads
/// and is awaited, so it never stalls Swift's cooperative pool, which serves
/// every connection: a flood of refused requests cannot slow the others.
enum BlockingIO {
    private static let queue = DispatchQueue(label: "burrowd.blocking-io", attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}
