import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowProfile
import BurrowTestSupport
import Foundation
import Hummingbird
import Synchronization
import Testing

@testable import BurrowDaemon

/// Registrations through the API, in process: validation like `burrow profile
/// lint`, versions, persistence, discovery, and the audit events of each change.
@Suite("burrowd registry")
struct RegistryTests {
    let api: TestDaemon
    static let admin = PeerCredential(pid: 3, uid: 4100, gid: 4100)

    init() throws {
        var policy = HostPolicy.defaults
        policy.daemon.admins = [.uid(4100)]
        policy.daemon.invokers = [.uid(4200)]
        policy.rateLimits.registrationAttemptsPerHour = 1000
        api = try TestDaemon(policy: policy)
    }

    static func registration(
        _ id: String = "echoer", version: String = "1.0.0", profile: String? = nil, command: [String] = ["echo"], categories: [String] = ["text"],
        description: String = "prints its arguments", status: ToolStatus = .active
    ) -> ToolRegistration {
        let toml = profile ?? "extends = \"minimal\"\n[tool]\nid = \"\(id)\"\nname = \"\(id)\"\nversion = \"1\"\n"
        return ToolRegistration(
            id: id, metadata: ToolMetadata(name: id.capitalized, version: version, description: description, categories: categories),
            profile: .string(toml), command: command, status: status)
    }

    func send(_ method: HTTPRequest.Method, _ path: String, _ body: some Encodable, as peer: PeerCredential = admin) async throws -> (HTTPResponse.Status, Data) {
        try await api.respond(method, path, as: peer, body: try JSONEncoder().encode(body))
    }

    func error(_ data: Data) throws -> ErrorBody { try JSONDecoder().decode(ErrorBody.self, from: data) }

    @Test("the versions an invocation reads (kept between calls) follow every registration, replacement and removal at once")
    func versionsFollowChanges() async throws {
        func versions() throws -> [String] { try api.registry.versions("echoer").map { "\($0.registration.metadata.version) \($0.registration.metadata.description)" } }
        #expect(try versions().isEmpty)
        #expect(try await send(.post, "/v1/tools", Self.registration()).0 == .created)
        #expect(try versions() == ["1.0.0 prints its arguments"])
        #expect(try versions() == ["1.0.0 prints its arguments"], "read again, from the kept copy")
        #expect(try await send(.post, "/v1/tools", Self.registration(version: "1.1.0")).0 == .created)
        #expect(try versions() == ["1.1.0 prints its arguments", "1.0.0 prints its arguments"])
        #expect(try await send(.put, "/v1/tools/echoer", Self.registration(version: "1.1.0", description: "changed")).0 == .ok)
        #expect(try versions() == ["1.1.0 changed", "1.0.0 prints its arguments"])
        #expect(try await api.respond(.delete, "/v1/tools/echoer", as: Self.admin).0 == .ok)
        #expect(try versions().isEmpty)
        // A new store on the same file reads what this one wrote.
        #expect(try await send(.post, "/v1/tools", Self.registration()).0 == .created)
        #expect(try RegistryStore(path: api.registry.path).versions("echoer").count == 1)
    }

    @Test("register, read back, refuse a duplicate, replace with PUT, remove: each change audited")
    func lifecycle() async throws {
        let (created, body) = try await send(.post, "/v1/tools", Self.registration())
        #expect(created == .created, "\(String(decoding: body, as: UTF8.self))")
        let record = try JSONDecoder().decode(ToolRecord.self, from: body)
        #expect(record.registeredBy == "uid:4100" && record.validation.valid && record.validation.exposureScore != nil)
        #expect(record.validation.plan?.executable == "/usr/bin/echo")

        let duplicate = try await send(.post, "/v1/tools", Self.registration())
        #expect(try duplicate.0 == .conflict && error(duplicate.1).error.code == "version_exists")

        var changed = Self.registration(description: "prints, louder")
        changed.status = .deprecated
        let put = try await send(.put, "/v1/tools/echoer", changed)
        #expect(put.0 == .ok)
        let missing = try await send(.put, "/v1/tools/echoer", Self.registration(version: "9"))
        #expect(missing.0 == .notFound)
        let mismatch = try await send(.put, "/v1/tools/other", Self.registration())
        #expect(mismatch.0 == .badRequest)

        let shown = try await api.respond(.get, "/v1/tools/echoer", as: Self.admin)
        let detail = try JSONDecoder().decode(ToolDetail.self, from: shown.1)
        #expect(detail.tool.registration.metadata.description == "prints, louder" && detail.tool.registration.status == .deprecated)
        #expect(detail.tool.registeredAt <= detail.tool.updatedAt)

        let removed = try await api.respond(.delete, "/v1/tools/echoer", as: Self.admin)
        #expect(try removed.0 == .ok && JSONDecoder().decode(RemovedTool.self, from: removed.1).removed == ["1.0.0"])
        #expect(try await api.respond(.get, "/v1/tools/echoer", as: Self.admin).0 == .notFound)
        #expect(try await api.respond(.delete, "/v1/tools/echoer", as: Self.admin).0 == .notFound)

        let events = try api.store.events(AuditQuery(tool: "echoer"))
        #expect(events.map(\.type) == [.toolRegistered, .toolUpdated, .toolDeregistered])
        #expect(events.allSatisfy { $0.context.uid == 4100 })
        #expect(events[0].details["version"]?.stringValue == "1.0.0" && events[0].context.profileDigest?.hasPrefix("sha256:") == true)
        #expect(events[1].details["status"]?.stringValue == "deprecated")
    }

    @Test("validation errors are refused with every finding, as profile lint reports them")
    func validationErrors() async throws {
        let unknownKey = Self.registration(profile: "extends = \"minimal\"\nbogus_key = 1\n[tool]\nid = \"echoer\"\nname = \"e\"\nversion = \"1\"\n")
        let (status, body) = try await send(.post, "/v1/tools", unknownKey)
        #expect(status == .unprocessableContent)
        let e = try error(body)
        #expect(e.error.code == "validation_failed")
        #expect(e.validation?.findings.contains { $0.severity == "error" && $0.keyPath == "bogus_key" } == true, "\(e)")

        let overPolicy = Self.registration(profile: "extends = \"minimal\"\n[tool]\nid = \"echoer\"\nname = \"e\"\nversion = \"1\"\n[resource_limits]\nmax_memory = \"64G\"\n")
        let over = try error(try await send(.post, "/v1/tools", overPolicy).1)
        #expect(over.validation?.findings.contains { $0.keyPath == "resource_limits.max_memory" } == true, "\(over)")

        let wrongID = try error(try await send(.post, "/v1/tools", Self.registration("echoer", profile: "extends = \"minimal\"\n[tool]\nid = \"someone-else\"\nname = \"e\"\nversion = \"1\"\n")).1)
        #expect(wrongID.validation?.findings.contains { $0.keyPath == "tool.id" } == true)

        // extends names shipped profiles only: burrowd never reads a file the caller names by path.
        for target in ["/etc/shadow", "/etc/passwd.toml", "../Profiles/minimal", "./minimal"] {
            let viaPath = Self.registration(profile: "extends = \"\(target)\"\n[tool]\nid = \"echoer\"\nname = \"e\"\nversion = \"1\"\n")
            let refused = try error(try await send(.post, "/v1/tools", viaPath).1)
            #expect(refused.error.code == "validation_failed" && refused.validation?.findings.contains { $0.keyPath == "extends" } == true, "\(target): \(refused)")
            #expect(!refused.error.message.contains("root:"), "no file content in the answer")
        }

        let notGranted = try error(try await send(.post, "/v1/tools", Self.registration(command: ["python3"])).1)
        #expect(notGranted.error.code == "validation_failed" && notGranted.validation?.findings.contains { $0.keyPath == "command" } == true, "\(notGranted)")

        let badJSON = try await api.respond(.post, "/v1/tools", as: Self.admin, body: Data("{\"id\": 3}".utf8))
        #expect(try badJSON.0 == .badRequest && error(badJSON.1).error.message.contains("id"))
        for (bad, field) in [(Self.registration("../etc"), "id"), (Self.registration(version: "1 0"), "metadata.version"), (Self.registration(command: []), "command")] {
            let r = try await send(.post, "/v1/tools", bad)
            #expect(try r.0 == .badRequest && error(r.1).error.message.contains(field), "\(field)")
        }
        #expect(try api.store.events(AuditQuery(types: [.toolRegistered])).isEmpty)
    }

    @Test("versions coexist and order numerically; list filters; search and categories use the index")
    func versionsAndDiscovery() async throws {
        for version in ["1.9.0", "1.10.0", "1.2.0"] { #expect(try await send(.post, "/v1/tools", Self.registration(version: version)).0 == .created) }
        #expect(try await send(.post, "/v1/tools", Self.registration("clock", command: ["ls"], categories: ["time", "text"], description: "tells the time in every zone")).0 == .created)
        #expect(try await send(.post, "/v1/tools", Self.registration("old", command: ["true"], categories: ["legacy"], description: "does nothing", status: .disabled)).0 == .created)

        let detail = try JSONDecoder().decode(ToolDetail.self, from: try await api.respond(.get, "/v1/tools/echoer", as: Self.admin).1)
        #expect(detail.versions == ["1.10.0", "1.9.0", "1.2.0"] && detail.tool.registration.metadata.version == "1.10.0")
        let pinned = try JSONDecoder().decode(ToolDetail.self, from: try await api.respond(.get, "/v1/tools/echoer?version=1.2.0", as: Self.admin).1)
        #expect(pinned.tool.registration.metadata.version == "1.2.0")

        func list(_ query: String) async throws -> [String] {
            try JSONDecoder().decode([ToolRecord].self, from: try await api.respond(.get, "/v1/tools" + query, as: Self.admin).1).map(\.registration.id)
        }
        #expect(try await list("") == ["clock", "echoer", "old"])
        #expect(try await list("?category=time") == ["clock"])
        #expect(try await list("?status=disabled") == ["old"])
        #expect(try await api.respond(.get, "/v1/tools?status=bogus", as: Self.admin).0 == .badRequest)

        func search(_ q: String) async throws -> [String] {
            try JSONDecoder().decode([ToolRecord].self, from: try await api.respond(.get, "/v1/discovery/search?q=\(q)", as: Self.admin).1).map(\.registration.id)
        }
        #expect(try await search("zone") == ["clock"])
        #expect(try await search("ech") == ["echoer"])  // prefix of the id
        #expect(try await search("legacy") == ["old"])  // a category
        #expect(try await search("%22%20OR%20*") == [])  // FTS syntax is never the caller's
        let categories = try JSONDecoder().decode([CategoryCount].self, from: try await api.respond(.get, "/v1/discovery/categories", as: Self.admin).1)
        #expect(categories == [CategoryCount(category: "legacy", tools: 1), CategoryCount(category: "text", tools: 2), CategoryCount(category: "time", tools: 1)])

        // A second store on the same file (a restarted burrowd) sees the same registry.
        let reopened = try RegistryStore(path: api.registry.path)
        #expect(try reopened.versions("echoer").count == 3 && reopened.search("zone", limit: 5).map(\.registration.id) == ["clock"])
    }

    @Test("only admins register; registration attempts per hour and body size are limited; refusals audited")
    func callerLimits() async throws {
        let invoker = PeerCredential(pid: 4, uid: 4200, gid: 4200)
        let forbidden = try await send(.post, "/v1/tools", Self.registration(), as: invoker)
        #expect(forbidden.0 == .forbidden)

        var policy = api.policy
        policy.rateLimits.registrationAttemptsPerHour = 2
        policy.daemon.maxRequestBytes = ByteSize(bytes: 4096)
        let daemon = api.daemon(policy, peer: Self.admin)
        let body = try JSONEncoder().encode(Self.registration())
        #expect(try await api.respond(.post, "/v1/tools", body: body, daemon: daemon).0 == .created)
        #expect(try await api.respond(.post, "/v1/tools", body: body, daemon: daemon).0 == .conflict)  // an attempt all the same
        let third = try await api.respondWithHeaders(.post, "/v1/tools", body: body, daemon: daemon)
        #expect(try third.0 == .tooManyRequests && error(third.1).error.code == "registration_limit")
        #expect(Int(third.2[.retryAfter] ?? "") ?? 0 > 3500)

        let big = try await api.respond(.post, "/v1/security/validate", body: Data(repeating: 0x20, count: 8192), daemon: daemon)
        #expect(try big.0 == .contentTooLarge && error(big.1).error.code == "request_too_large")

        let reasons = try api.store.events(AuditQuery(types: [.permissionDenied])).compactMap { $0.details["reason"]?.stringValue }
        #expect(reasons == ["role_required", "registration_limit", "request_too_large"])
    }

    @Test("a registry change the audit log cannot record is undone (fail closed)")
    func auditUnavailable() async throws {
        #expect(try await send(.post, "/v1/tools", Self.registration()).0 == .created)
        // The same registry behind an audit log open read-only: every append fails.
        let readOnly = try AuditStore(.init(path: api.store.path, redactor: try Redactor()), access: .read)
        let daemon = Daemon(
            policy: api.policy, socketPath: api.directory + "/unused.sock", audit: readOnly, registry: api.registry, host: Fixtures.capableHost,
            searchPath: [Fixtures.profilesDirectory], lookup: { _ in Self.admin })
        func attempt(_ method: HTTPRequest.Method, _ path: String, _ body: ToolRegistration? = nil) async throws -> String? {
            let r = try await api.respond(method, path, body: try body.map { try JSONEncoder().encode($0) } ?? Data(), daemon: daemon)
            #expect(r.0 == .internalServerError)
            return try? error(r.1).error.code
        }
        #expect(try await attempt(.post, "/v1/tools", Self.registration(version: "2.0.0")) == "audit_unavailable")
        #expect(try await attempt(.put, "/v1/tools/echoer", Self.registration(description: "changed")) == "audit_unavailable")
        #expect(try await attempt(.delete, "/v1/tools/echoer") == "audit_unavailable")
        // What the audit log says is what the registry holds: 1.0.0 as first registered.
        let versions = try api.registry.versions("echoer")
        #expect(versions.map(\.registration.metadata.version) == ["1.0.0"])
        #expect(versions.first?.registration.metadata.description == "prints its arguments")
        #expect(try api.store.events(AuditQuery(tool: "echoer")).map(\.type) == [.toolRegistered])
    }

    @Test("validate: findings, exposure and the plan summary without registering")
    func validate() async throws {
        let request = ValidationRequest(profile: .string("extends = \"minimal\"\n[tool]\nid = \"v\"\nname = \"v\"\nversion = \"1\"\n"), command: ["sh", "-c", "true"], id: "v")
        let (status, body) = try await send(.post, "/v1/security/validate", request, as: PeerCredential(pid: 4, uid: 4200, gid: 4200))
        #expect(status == .ok)
        let report = try JSONDecoder().decode(ValidationReport.self, from: body)
        #expect(report.valid && report.plan?.executable == "/usr/bin/sh" && report.plan?.namespaces.contains("net") == true)
        #expect(report.plan?.limits["max_memory"] == "128M")
        #expect(try await api.respond(.get, "/v1/tools", as: Self.admin).1 == Data("[]\n".utf8))
    }
}

@Suite("burrowd admission")
struct AdmissionTests {
    final class Clock: @unchecked Sendable {
        var now: UInt64 = 1_000_000_000
    }

    @Test("a token bucket per tool: a minute's burst, then one token per 60/rpm s; live sandboxes capped")
    func bucket() throws {
        let clock = Clock()
        let admission = Admission(clock: { clock.now })
        let limits = Admission.Limits(requestsPerMinute: 3, maxConcurrent: 2)
        try admission.admit("t", limits)
        try admission.admit("t", limits)
        #expect(throws: Admission.Refusal.concurrency(limit: 2)) { try admission.admit("t", limits) }
        admission.release("t")
        admission.release("t")
        try admission.admit("t", limits)
        admission.release("t")
        #expect(throws: Admission.Refusal.rate(limit: 3, retryAfter: 20)) { try admission.admit("t", limits) }
        try admission.admit("other", limits)  // buckets are per tool
        clock.now += 20_000_000_000
        try admission.admit("t", limits)
    }

    @Test("admission's counts hold under concurrent callers: every slot taken is given back, none twice")
    func concurrent() async throws {
        let admission = Admission()
        let limits = Admission.Limits(requestsPerMinute: 60_000_000, maxConcurrent: 1000)
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for _ in 0..<5_000 {
                        if (try? admission.admit("tool-\(t % 2)", limits)) != nil { admission.release("tool-\(t % 2)") }
                        _ = try? admission.registrationAttempt(caller: .uid(UInt32(t % 3)), perHour: 50)
                    }
                }
            }
        }
        try admission.admit("tool-0", Admission.Limits(requestsPerMinute: 60_000_000, maxConcurrent: 1))
        #expect(throws: Admission.Refusal.concurrency(limit: 1)) { try admission.admit("tool-0", Admission.Limits(requestsPerMinute: 60_000_000, maxConcurrent: 1)) }
    }

    @Test("the clock is read under the lock: no two readings overlap, so a bucket's time only moves forward")
    func clockUnderTheLock() async throws {
        // A clock that notices when it is read by two callers at once, and
        // stays inside each reading long enough for a second caller to come in
        // if admission read it before taking its lock.
        final class WatchedClock: Sendable {
            let inside = Atomic<Int>(0)
            let overlaps = Atomic<Int>(0)
            let ticks = Atomic<UInt64>(0)
            func read() -> UInt64 {
                if inside.add(1, ordering: .acquiringAndReleasing).newValue > 1 { overlaps.add(1, ordering: .relaxed) }
                for _ in 0..<200 { _ = ticks.load(ordering: .relaxed) }
                inside.subtract(1, ordering: .acquiringAndReleasing)
                return ticks.add(1_000, ordering: .relaxed).newValue
            }
        }
        let clock = WatchedClock()
        let admission = Admission(clock: { clock.read() })
        let limits = Admission.Limits(requestsPerMinute: 60_000_000, maxConcurrent: 1000)
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for _ in 0..<2_000 {
                        if (try? admission.admit("tool-\(t % 2)", limits)) != nil { admission.release("tool-\(t % 2)") }
                        _ = try? admission.registrationAttempt(caller: .uid(UInt32(t % 3)), perHour: 1_000_000)
                    }
                }
            }
        }
        #expect(clock.ticks.load(ordering: .relaxed) == 8 * 2_000 * 2 * 1_000, "every call read the clock once")
        #expect(clock.overlaps.load(ordering: .relaxed) == 0, "readings overlapped: the clock is read outside the lock")
    }

    @Test("an admitted slot is given back once: released, or dropped unrun")
    func slots() throws {
        let admission = Admission()
        let limits = Admission.Limits(requestsPerMinute: 1000, maxConcurrent: 1)
        try admission.admit("t", limits)
        var slot: Admission.Slot? = Admission.Slot(admission, "t")
        #expect(throws: Admission.Refusal.concurrency(limit: 1)) { try admission.admit("t", limits) }
        slot = nil  // a prepared invocation its streaming caller abandoned
        try admission.admit("t", limits)
        let kept = Admission.Slot(admission, "t")
        kept.release()
        kept.release()  // idempotent: the count is not given back twice
        try admission.admit("t", limits)
        #expect(throws: Admission.Refusal.concurrency(limit: 1)) { try admission.admit("t", limits) }
        _ = slot
    }
}
