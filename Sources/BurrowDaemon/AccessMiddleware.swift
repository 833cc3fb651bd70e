import BurrowAPI
import BurrowAudit
import BurrowSystem
import Dispatch
import Hummingbird
import Synchronization

/// Reads the caller's SO_PEERCRED and roles into the context; refuses a
/// caller whose credentials cannot be read. Route handlers then `require`
/// the role they need.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = DaemonContext
    let access: AccessPolicy
    let lookup: PeerCredential.Lookup

    static func isControl(_ c: Unicode.Scalar) -> Bool { c.value < 0x20 || c.value == 0x7f }

    func handle(_ request: Request, context: DaemonContext, next: (Request, DaemonContext) async throws -> Response) async throws -> Response {
        var context = context
        guard let channel = context.channel, let peer = try await lookup(channel) else { throw DaemonError.unauthenticated }
        // Query values reach lookups, filters and messages: bytes checked before any of them.
        for (name, value) in request.uri.queryParameters {
            if name.utf8.count + value.utf8.count > 1024 || name.unicodeScalars.contains(where: Self.isControl) || value.unicodeScalars.contains(where: Self.isControl) {
                throw DaemonError(.invalidParameter, "query parameter '\(String(name.prefix(64)))': at most 1 KiB, and no control characters")
            }
        }
        context.peer = peer
        context.roles = access.roles(of: peer)
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
            throw DaemonError(code, error.body ?? (code == .notFound ? DaemonError.notFound.message : "the request is not one burrowd takes (HTTP \(error.status.code))"))
        }
    }
}

extension DaemonContext {
    /// Throws 403 (and records a PermissionDenied) unless the caller holds `role`.
    func require(_ role: Role, _ what: String, tool: String?, request: Request, denials: DenialLog) async throws(DaemonError) {
        guard !roles.contains(role) else { return }
        await denials.record(
            peer: peer ?? .unknown, tool: tool ?? "burrowd",
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
