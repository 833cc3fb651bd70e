import BurrowAPI
import BurrowAudit
import BurrowProfile
import BurrowSystem
import Dispatch
import HTTPTypes
import Hummingbird
import Synchronization

/// Reads the caller (SO_PEERCRED on the Unix socket; on HTTPS an API key or
/// the verified client certificate, as `[auth]` accepts) and its roles into
/// the context; refuses a caller
/// whose credentials cannot be read, and a browser origin the policy does
/// not list. Route handlers then `require` the role they need.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = DaemonContext
    let access: AccessPolicy
    let lookup: CallerIdentity.Lookup
    let origins: OriginPolicy
    let denials: DenialLog
    /// The HTTPS listener's: how its callers may authenticate (nil on the socket).
    let authentication: RemoteAuthentication?
    let clientLimit: HostPolicy.RateLimits.Clients?
    let clientLimits: ClientLimits
    /// What each path takes: a known path with another method is 405.
    let methods: RouteMethods

    static func isControl(_ c: Unicode.Scalar) -> Bool { c.value < 0x20 || c.value == 0x7f }

    /// Every answer, refusals included, carries the security headers (and a
    /// listed origin's CORS headers).
    func handle(_ request: Request, context: DaemonContext, next: (Request, DaemonContext) async throws -> Response) async throws -> Response {
        var cors = HTTPFields()
        var response: Response
        do {
            response = try await admit(request, context: context, cors: &cors, next: next)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers.append(contentsOf: Self.securityHeaders)
        response.headers.append(contentsOf: cors)
        return response
    }

    /// HSTS, no sniffing, no framing, no referrer, no caching: the API's
    /// answers are never a page, and never kept.
    static let securityHeaders: HTTPFields = {
        var fields: HTTPFields = [.strictTransportSecurity: "max-age=63072000", .xContentTypeOptions: "nosniff", .cacheControl: "no-store"]
        for (name, value) in [("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer")] {
            if let name = HTTPField.Name(name) { fields[name] = value }
        }
        return fields
    }()

    private func admit(
        _ request: Request, context: DaemonContext, cors: inout HTTPFields, next: (Request, DaemonContext) async throws -> Response
    ) async throws -> Response {
        var (request, context) = (request, context)
        guard let channel = context.channel, var identity = try await lookup(channel) else { throw DaemonError.unauthenticated }
        // Origin first: a preflight carries no credentials (a browser sends none), and a
        // page from an origin not listed is refused whoever its request claims to be.
        switch origins.check(request) {
        case .noOrigin: break
        case .allowed(let headers): cors = headers
        case .preflight(let headers): return Response(status: .noContent, headers: headers)
        case .refused(let message):
            await denials.record(caller: identity, tool: "burrowd", RefusalDetails(reason: "origin_refused", message: message, method: request.method.rawValue, path: request.uri.path))
            throw DaemonError(.forbidden, message)
        }
        if let authentication, let connection = identity.remote {
            do {
                identity.remote = try await authentication.authenticate(&request, connection: connection)
            } catch {
                await denials.record(
                    caller: .remote(.init(address: connection.address)), tool: "burrowd",
                    RefusalDetails(reason: "bad_credential", message: error.audit, method: request.method.rawValue, path: request.uri.path))
                throw DaemonError(error.code, error.message)
            }
        }
        context.identity = identity
        guard identity.authenticated else {
            let message = authentication?.needed ?? "no credential"
            await denials.record(caller: identity, tool: "burrowd", RefusalDetails(reason: "unauthenticated", message: message, method: request.method.rawValue, path: request.uri.path))
            throw DaemonError(.unauthenticated, message)
        }
        // Query values reach lookups, filters and messages: bytes checked before any of them.
        for (name, value) in request.uri.queryParameters {
            if name.utf8.count + value.utf8.count > 1024 || name.unicodeScalars.contains(where: Self.isControl) || value.unicodeScalars.contains(where: Self.isControl) {
                throw DaemonError(.invalidParameter, "query parameter '\(String(name.prefix(64)))': at most 1 KiB, and no control characters")
            }
        }
        context.roles = access.roles(of: identity)
        // [rate_limits.clients]: every caller but root on the socket.
        if let limit = clientLimit, identity.local?.uid != 0,
            let retry = clientLimits.take("\(identity.key)", perMinute: limit.requestsPerMinute, burst: limit.burst)
        {
            let message = "this caller may send \(limit.requestsPerMinute) requests per minute, bursts of \(limit.burst) ([rate_limits.clients]); retry in \(retry) s"
            await denials.record(caller: identity, tool: "burrowd", RefusalDetails(reason: "client_rate_limited", message: message, method: request.method.rawValue, path: request.uri.path))
            throw DaemonError(.rateLimited, message, retryAfter: retry)
        }
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            // The router's own errors (no route, wrong method, bad body) in the API's error shape.
            let code: ErrorCode =
                switch error.status {
                case .notFound: .notFound
                case .methodNotAllowed: .methodNotAllowed
                case .contentTooLarge: .requestTooLarge
                default: .invalidRequest
                }
            if code == .notFound, error.body == nil, case let allowed = methods.allowed(request.uri.path), !allowed.isEmpty {
                var refusal = DaemonError(.methodNotAllowed, "\(request.uri.path) takes \(allowed.joined(separator: ", ")), not \(request.method.rawValue)")
                refusal.allow = allowed
                throw refusal
            }
            throw DaemonError(code, error.body ?? (code == .notFound ? DaemonError.notFound.message : "the request is not one burrowd takes (HTTP \(error.status.code))"))
        }
    }
}

extension DaemonContext {
    /// Throws 403 (and records a PermissionDenied) unless the caller holds `role`.
    func require(_ role: Role, _ what: String, tool: String?, request: Request, denials: DenialLog) async throws(DaemonError) {
        guard !roles.contains(role) else { return }
        await denials.record(
            caller: identity, tool: tool ?? "burrowd",
            RefusalDetails(
                reason: "role_required", message: "\(what) needs the \(role.rawValue) role", role: role.rawValue, method: request.method.rawValue, path: request.uri.path,
                roles: roles.map(\.rawValue).sorted()))
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

/// CPU-heavy work a caller asked for (parsing a large body, loading and
/// planning its profile) runs here: a few threads of their own at nice 10,
/// so on a busy host it yields the CPU to the threads that answer everyone
/// else (root's health stays fast while four callers validate 100,000-path
/// profiles). Jobs wait their turn in order; callers' planning slots bound
/// how many there are.
final class BackgroundWork: Sendable {
    static let shared: BackgroundWork = {
        let work = BackgroundWork()
        work.start(threads: 2)
        return work
    }()

    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let ready = DispatchSemaphore(value: 0)
    private let threads = Atomic<Int>(0)

    private func start(threads count: Int) {
        for _ in 0..<count {
            guard (try? Kernel.detachedThread { [self] in work() }) != nil else { continue }
            threads.add(1, ordering: .relaxed)
        }
    }

    private func work() {
        Kernel.lowerThreadPriority()
        while true {
            ready.wait()
            let job = jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            job?()
        }
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        // Without a thread of its own (none could be started), Dispatch's.
        guard threads.load(ordering: .relaxed) > 0 else { return try await BlockingIO.run(body) }
        return try await withCheckedThrowingContinuation { continuation in
            jobs.withLock { $0.append { continuation.resume(with: Result { try body() }) } }
            ready.signal()
        }
    }
}
