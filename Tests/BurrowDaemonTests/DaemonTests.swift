import BurrowAPI
import BurrowDaemon
import BurrowInvocation
import BurrowJSON
import BurrowProfile
import BurrowRuntime
import BurrowSystem
import BurrowTestSupport
import Foundation
import Hummingbird
import Logging
import NIOEmbedded
import SystemPackage
import Testing

@testable import BurrowAudit

#if canImport(Glibc)
    import Glibc
#endif

/// The API in process: the router with a fixed peer in place of SO_PEERCRED.
@Suite("burrowd routes and roles")
struct DaemonRouteTests {
    let api: TestDaemon
    var store: AuditStore { api.store }

    init() throws { api = try TestDaemon() }

    func respond(_ path: String, as peer: PeerCredential?, policy: HostPolicy = .defaults) async throws -> (HTTPResponse.Status, Data) {
        try await api.respond(.get, path, as: peer, policy: policy)
    }

    @Test("health: any authenticated caller, with its roles; root holds all")
    func health() async throws {
        let (status, body) = try await respond("/v1/health", as: PeerCredential(pid: 7, uid: 0, gid: 0))
        #expect(status == .ok)
        let health = try JSONDecoder().decode(HealthResponse.self, from: body)
        #expect(health.caller.roles == ["admin", "auditor", "invoker", "reporter", "runner"] && health.caller.pid == 7 && health.status == "ok")
    }

    @Test("a caller without credentials is refused with the API's error body")
    func unauthenticated() async throws {
        let (status, body) = try await respond("/v1/health", as: nil)
        #expect(status == .unauthorized)
        #expect(try JSONDecoder().decode(ErrorBody.self, from: body).error.code == "unauthenticated")
    }

    @Test("roles come from the policy by uid or group; default deny is audited")
    func roles() async throws {
        var policy = HostPolicy.defaults
        policy.daemon.auditors = [.uid(4242), .gid(777)]
        policy.daemon.invokers = []
        let byUID = try await respond("/v1/security/audit/t", as: PeerCredential(pid: 1, uid: 4242, gid: 5), policy: policy)
        #expect(byUID.0 == .ok)
        #expect(try JSONDecoder().decode([AuditEvent].self, from: byUID.1).isEmpty)
        let byGroup = try await respond("/v1/security/audit/t", as: PeerCredential(pid: 1, uid: 5000, gid: 777), policy: policy)
        #expect(byGroup.0 == .ok)

        let denied = try await respond("/v1/security/audit/secret-tool", as: PeerCredential(pid: 99, uid: 5001, gid: 5001), policy: policy)
        #expect(denied.0 == .forbidden)
        let error = try JSONDecoder().decode(ErrorBody.self, from: denied.1)
        #expect(error.error.code == "forbidden" && error.error.message.contains("auditor"))
        let events = try store.events(AuditQuery(types: [.permissionDenied]))
        #expect(events.count == 1)
        #expect(events.first?.tool == "secret-tool" && events.first?.context.uid == 5001)
        #expect(events.first?.details["role"]?.stringValue == "auditor" && events.first?.details["pid"]?.integerValue == 99)
        // No role at all: even the policy is not shown.
        #expect(try await respond("/v1/security/policies", as: PeerCredential(pid: 1, uid: 5001, gid: 5001), policy: policy).0 == .forbidden)
    }

    @Test("audit filters are validated; an unknown path is a JSON 404, a known one with a method it does not take 405 with Allow")
    func parameters() async throws {
        let root = PeerCredential(pid: 1, uid: 0, gid: 0)
        try store.append([AuditEvent(tool: "t", type: .toolInvoked, context: SecurityContext(principal: "root", uid: 0, invocationID: "i", host: "h"))])
        let ok = try await respond("/v1/security/audit/t?type=toolinvoked&limit=5&since=2000-01-01T00:00:00Z", as: root)
        #expect(ok.0 == .ok)
        #expect(try JSONDecoder().decode([AuditEvent].self, from: ok.1).count == 1)
        for bad in ["type=Nope", "limit=0", "since=yesterday"] {
            let r = try await respond("/v1/security/audit/t?\(bad)", as: root)
            #expect(r.0 == .badRequest, "\(bad)")
            #expect(try JSONDecoder().decode(ErrorBody.self, from: r.1).error.code == "invalid_parameter")
        }
        let missing = try await respond("/v2/anything", as: root)
        #expect(missing.0 == .notFound)
        #expect(try JSONDecoder().decode(ErrorBody.self, from: missing.1).error.code == "not_found")
        // A path the API serves, with a method it does not take there: 405 with Allow.
        for (method, path, allow) in [
            (HTTPRequest.Method.patch, "/api/v1/tools/some-tool", "DELETE, GET, PUT"), (.post, "/v1/health", "GET"), (.get, "/api/v1/tools/register", "POST"),
        ] {
            let (status, body, headers) = try await api.respondWithHeaders(method, path, as: root)
            #expect(status == .methodNotAllowed && headers[.allow] == allow, "\(method) \(path): \(status) \(headers)")
            #expect(try JSONDecoder().decode(ErrorBody.self, from: body).error.code == "method_not_allowed")
        }
        #expect(try await api.respond(.patch, "/api/v1/tools/a/b/c", as: root).0 == .notFound, "no such path: 404 whatever the method")
    }
}

/// The API in process over a temporary audit log and registry: the router
/// with a fixed peer in place of SO_PEERCRED.
final class TestDaemon: Sendable {
    let directory: String
    let store: AuditStore
    let registry: RegistryStore
    let policy: HostPolicy

    static let root = PeerCredential(pid: 1, uid: 0, gid: 0)

    init(policy: HostPolicy = .defaults) throws {
        directory = try Subprocess.temporaryDirectory()
        store = try AuditStore(.init(path: directory + "/audit.db", redactor: try Redactor()), access: .write)
        registry = try RegistryStore(path: directory + "/registry.db")
        self.policy = policy
    }

    func daemon(_ policy: HostPolicy, peer: PeerCredential?) -> Daemon {
        Daemon(
            policy: policy, socketPath: directory + "/unused.sock", audit: store, registry: registry, host: Fixtures.capableHost,
            searchPath: [Fixtures.profilesDirectory], lookup: { _ in peer })
    }

    /// One request: the status and the body. `daemon` keeps state (rate limits) across requests.
    func respond(
        _ method: HTTPRequest.Method, _ path: String, as peer: PeerCredential? = TestDaemon.root, policy: HostPolicy? = nil, body: Data = Data(),
        daemon given: Daemon? = nil
    ) async throws -> (HTTPResponse.Status, Data) {
        let r = try await respondWithHeaders(method, path, as: peer, policy: policy, body: body, daemon: given)
        return (r.0, r.1)
    }

    func respondWithHeaders(
        _ method: HTTPRequest.Method, _ path: String, as peer: PeerCredential? = TestDaemon.root, policy: HostPolicy? = nil, body: Data = Data(),
        daemon given: Daemon? = nil
    ) async throws -> (HTTPResponse.Status, Data, HTTPFields) {
        let responder = (given ?? daemon(policy ?? self.policy, peer: peer)).router().buildResponder()
        let context = DaemonContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test")))
        let request = Request(
            head: HTTPRequest(method: method, scheme: "http", authority: "burrowd", path: path), body: RequestBody(buffer: ByteBuffer(bytes: body)))
        let response: Response
        do {
            response = try await responder.respond(to: request, context: context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        var collected = Data()
        try await response.body.write(CollectingWriter { collected.append(contentsOf: $0.readableBytesView) })
        return (response.status, collected, response.headers)
    }
}

/// Collects a response body.
struct CollectingWriter: ResponseBodyWriter {
    let collect: (ByteBuffer) -> Void
    init(_ collect: @escaping (ByteBuffer) -> Void) { self.collect = collect }
    mutating func write(_ buffer: ByteBuffer) async throws { collect(buffer) }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

@Suite("Error codes: one table")
struct ErrorCodeTests {
    @Test("every code has one row in docs/daemon-api.md with its HTTP status and exit status")
    func documentedOnce() throws {
        let doc = try String(contentsOfFile: Fixtures.repositoryRoot + "/docs/daemon-api.md", encoding: .utf8)
        for code in ErrorCode.all {
            let status = code.httpStatus == 200 ? "200 (in a result, `state: failed`)" : "\(code.httpStatus)"
            #expect(doc.contains("| `\(code.name)` | \(status) | \(code.exitStatus) |"), "\(code.name) \(code.httpStatus) \(code.exitStatus)")
        }
        // A wire name is one request code or one result code, never two of either.
        for group in [ErrorCode.all.filter { $0.httpStatus != 200 }, ErrorCode.all.filter { $0.httpStatus == 200 }] {
            #expect(Set(group.map(\.name)).count == group.count)
        }
        #expect(ErrorCode.resultExitStatus("not_found") == 127 && ErrorCode.resultExitStatus("spawn_failed") == 125 && ErrorCode.resultExitStatus(nil) == 125)
    }

    @Test("every failure of a run is a result code, whose exit status burrow run gives it")
    func runFailures() {
        let failures: [(RunError, Int32)] = [
            (.refused("x"), 125), (.preparation("x"), 125), (.spawn(stage: .mounts, errno: .init(rawValue: 1), detail: ""), 125),
            (.spawn(stage: .exec, errno: .init(rawValue: 2), detail: ""), 127), (.spawn(stage: .exec, errno: .init(rawValue: 13), detail: ""), 126), (.supervision("x"), 125),
        ]
        for (failure, exit) in failures {
            #expect(ErrorCode.result(named: failure.reason) == failure.code, "\(failure.reason) has a row in the table")
            #expect(failure.code.exitStatus == exit, "\(failure.reason)")
        }
    }
}
