import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The fleet's registry in PostgreSQL (`[registry] url`): every node's
/// SQLite registry a replica of it, changes made under the fleet's lock and
/// followed by the others at once (LISTEN/NOTIFY).
@Suite(
    "fleet registry (live, PostgreSQL)", .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.seccomp), .requires(.landlock),
    .requires(.cgroupLimits), .requires(TestPostgres.requirement), .requires(.installed("/usr/bin/psql")), .timeLimit(.minutes(3)))
struct FleetRegistryTests {
    /// `daemon`: more keys of the [daemon] table (the policy's last before [registry]).
    /// Each node its own id (the default, the host name, is one for every node of a test).
    static func policy(_ pg: TestPostgres, database: String = "burrow", daemon: String = "") -> String {
        let id = daemon.contains("node_id") ? "" : "node_id = \"node-\(UUID().uuidString.prefix(8).lowercased())\"\n"
        return DaemonInvocationTests.policy + "\n" + id + daemon + """

            [registry]
            url = "\(pg.url.replacingOccurrences(of: "/burrow?", with: "/\(database)?"))"
            password_file = "\(pg.passwordFile)"
            """
    }

    /// Waits (up to `seconds`) for `condition`.
    static func eventually(seconds: Int = 5, _ condition: () throws -> Bool) rethrows -> Bool {
        for _ in 0..<(seconds * 50) {
            if try condition() { return true }
            usleep(20_000)
        }
        return false
    }

    static func metric(_ daemon: LiveDaemon, _ name: String) throws -> Double? {
        let text = String(decoding: try daemon.client.send("GET", "/metrics").body, as: UTF8.self)
        return text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    @Test(
        "register on node A, invoke on node B; an update on A discards B's sandbox built ahead and B runs the new profile; a duplicate on B is refused; a removal on B is seen on A"
    )
    func twoNodesOneRegistry() throws {
        let pg = try TestPostgres()
        let a = try LiveDaemon(policy: Self.policy(pg))
        let b = try LiveDaemon(policy: Self.policy(pg))
        func registration(_ limits: String = "") throws -> [UInt8] {
            let profile = "extends = \"minimal\"\n[tool]\nid = \"warm-tool\"\nname = \"warm\"\nversion = \"1\"\n" + limits
            let body: [String: Any] = ["id": "warm-tool", "metadata": ["name": "warm", "version": "1"], "command": ["sh", "-c"], "profile": profile]
            return Array(try JSONSerialization.data(withJSONObject: body))
        }
        let registered = try a.client.send("POST", "/v1/tools", body: try registration())
        try #require(registered.status == 201, "\(String(decoding: registered.body, as: UTF8.self))")
        #expect(try Self.eventually { try b.client.send("GET", "/v1/tools/warm-tool").status == 200 }, "B sees A's registration")

        // B runs it, and builds its next sandbox ahead.
        let burrowd = try #require(b.process?.pid)
        func held() -> [Int32] { children(of: burrowd, named: "burrow-spawner").filter { isSandboxInit($0) && !isZombie($0) } }
        func invoke(_ arguments: [String]) throws -> InvocationResult {
            try #require(try b.request("POST", "/v1/tools/warm-tool/invocations", InvocationRequest(arguments: arguments), as: InvocationResult.self).1)
        }
        #expect(try invoke(["ulimit -n"]).stdout?.text == "128\n")
        #expect(Self.eventually { !held().isEmpty }, "B built a sandbox ahead")

        // Updated on A: B discards what it built from the old registration, and runs the new one.
        let put = try a.client.send("PUT", "/v1/tools/warm-tool", body: try registration("[resource_limits]\nmax_open_files = 64\n"))
        try #require(put.status == 200, "\(String(decoding: put.body, as: UTF8.self))")
        #expect(Self.eventually { held().isEmpty }, "B's sandbox built ahead was discarded: \(held())")
        let after = try invoke(["ulimit -n"])
        #expect(after.stdout?.text == "64\n", "\(after)")

        // One registry: the same version again on B is a conflict; both list the same.
        let duplicate = try b.client.send("POST", "/v1/tools", body: try registration())
        #expect(duplicate.status == 409 && String(decoding: duplicate.body, as: UTF8.self).contains("version_exists"))
        func listed(_ d: LiveDaemon) throws -> [String] {
            try JSONDecoder().decode([ToolRecord].self, from: Data(d.client.send("GET", "/v1/tools").body)).map { "\($0.registration.id) \($0.updatedAt)" }
        }
        #expect(try listed(a) == listed(b) && listed(a).count == 1)
        #expect(try Self.eventually { try Self.metric(b, "burrow_registry_replica_connected") == 1 })
        #expect(try Self.eventually { try Self.metric(a, "burrow_registry_replica_revision") == Self.metric(b, "burrow_registry_replica_revision") })

        // Removed on B: gone from A.
        #expect(try b.client.send("DELETE", "/v1/tools/warm-tool").status == 200)
        #expect(try Self.eventually { try a.client.send("GET", "/v1/tools/warm-tool").status == 404 })
        _ = try a.stop(SIGTERM)
        _ = try b.stop(SIGTERM)
    }

    @Test(
        "the registry's semantics across two nodes are one burrowd's: dependencies checked against the fleet's registry, and a removal and a dependent registration sent to two nodes at once never both succeed"
    )
    func dependenciesAcrossNodes() throws {
        let pg = try TestPostgres()
        let a = try LiveDaemon(policy: Self.policy(pg))
        let b = try LiveDaemon(policy: Self.policy(pg))
        try DependencyTests().keepsDependenciesWhole(a, b)
        try DependencyTests().changesAtOnceKeepDependenciesWhole(a, b)
        _ = try a.stop(SIGTERM)
        _ = try b.stop(SIGTERM)
    }

    @Test(
        "joining: the first node brings its registrations to an empty fleet, a new node takes them, a node with registrations of its own is refused; PostgreSQL down: nodes serve the replica and refuse changes, then follow again"
    )
    func joiningAndOutage() throws {
        let pg = try TestPostgres()
        #expect(try pg.psql("CREATE DATABASE second", database: "postgres").status == 0)
        // A node alone registers a tool, then joins an empty fleet: its registrations become the fleet's.
        let first = try LiveDaemon(policy: DaemonInvocationTests.policy)
        try DaemonInvocationTests.register(first)
        _ = try first.stop(SIGTERM)
        try Self.policy(pg, database: "second").write(toFile: first.policyFile, atomically: true, encoding: .utf8)
        try first.start()
        let joined = try LiveDaemon(policy: Self.policy(pg, database: "second"))
        #expect(try joined.burrow(["invoke", "minimal", "--", "echo joined"]).output == "joined\n")

        // A node with registrations of its own is not merged into a fleet that has some.
        let other = try LiveDaemon(policy: DaemonInvocationTests.policy)
        try DaemonInvocationTests.register(other)
        _ = try other.stop(SIGTERM)
        try Self.policy(pg, database: "second").write(toFile: other.policyFile, atomically: true, encoding: .utf8)
        do {
            try other.start()
            Issue.record("a node with registrations of its own joined a fleet that has some")
        } catch {
            #expect("\(error)".contains("is not a replica of the fleet's") && "\(error)".contains("never merged"), "\(error)")
        }

        // The fleet's database down: the replica serves invocations, changes are refused.
        try pg.stop()
        #expect(try Self.eventually { try Self.metric(joined, "burrow_registry_replica_connected") == 0 })
        #expect(try joined.burrow(["invoke", "minimal", "--", "echo still"]).output == "still\n")
        let refused = try joined.burrow(["tools", "register", "--profile", Fixtures.profilesDirectory + "/minimal.toml", "--version", "2.0.0", "--", "sh", "-c"])
        #expect(refused.status != 0 && refused.stderr.contains("cannot be reached"), "\(refused.stderr)")
        #expect(try first.burrow(["tools", "show", "minimal"]).output.contains("1.0.0"))
        // Back: both follow again, and a change on one reaches the other.
        try pg.start()
        // (It tries again after a pause that grows while the database is down: 0.5 s, doubling.)
        #expect(try Self.eventually(seconds: 20) { try Self.metric(joined, "burrow_registry_replica_connected") == 1 })
        let registered = try first.burrow(["tools", "register", "--profile", Fixtures.profilesDirectory + "/minimal.toml", "--version", "2.0.0", "--", "sh", "-c"])
        #expect(registered.status == 0, "\(registered.stderr)")
        #expect(try Self.eventually { try joined.client.send("GET", "/v1/tools/minimal?version=2.0.0").status == 200 })
        _ = try first.stop(SIGTERM)
        _ = try joined.stop(SIGTERM)
    }

    @Test(
        "an Idempotency-Key holds across nodes: B answers A's finished run; A killed mid-run, the retry through burrow (both nodes given) lands on B, waits, and is answered node_lost once A stops beating; never run twice; burrow fails over to the node that answers"
    )
    func failover() throws {
        let pg = try TestPostgres()
        let a = try LiveDaemon(policy: Self.policy(pg, daemon: "node_id = \"node-a\"\nheartbeat_interval = \"1s\"\n"))
        let b = try LiveDaemon(policy: Self.policy(pg, daemon: "node_id = \"node-b\"\nheartbeat_interval = \"1s\"\n"))
        try DaemonInvocationTests.register(a)
        #expect(try Self.eventually { try b.client.send("GET", "/v1/tools/minimal").status == 200 })
        @Sendable func post(_ d: LiveDaemon, key: String, _ arguments: [String]) throws -> UnixHTTPClient.Response {
            try d.client.send(
                "POST", "/v1/tools/minimal/invocations", body: Array(try JSONEncoder().encode(InvocationRequest(arguments: arguments))),
                headers: [("Idempotency-Key", key)])
        }
        // A's finished run is B's answer, byte for byte, and not run again.
        let first = try post(a, key: "k-1", ["echo once; cat /proc/self/mountinfo | wc -l"])
        #expect(first.status == 200, "\(String(decoding: first.body, as: UTF8.self))")
        let again = try post(b, key: "k-1", ["echo once; cat /proc/self/mountinfo | wc -l"])
        #expect(again.status == 200 && again.header("Idempotent-Replayed") == "true" && again.body == first.body, "\(String(decoding: again.body, as: UTF8.self))")
        #expect(try post(b, key: "k-1", ["echo another"]).status == 422)
        func runs(_ d: LiveDaemon, _ marker: String) throws -> Int {
            try d.trail("minimal").filter { $0.type == .toolInvoked && ($0.details["argv"]?.arrayValue?.compactMap(\.stringValue).last ?? "").contains(marker) }.count
        }
        #expect(try runs(a, "echo once") == 1 && runs(b, "echo once") == 0)

        // A killed while it runs k-2: the retry, through burrow with both nodes, is never a second run.
        let slow = "sleep 4; echo slow"
        let pending = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? post(a, key: "k-2", [slow])
            pending.signal()
        }
        #expect(try Self.eventually { try runs(a, "sleep 4") == 1 }, "A runs k-2")
        _ = try a.stop(SIGKILL)
        pending.wait()
        let retried = try b.burrow(["invoke", "--socket", a.socket, "--socket", b.socket, "--idempotency-key", "k-2", "minimal", "--", slow])
        #expect(retried.status != 0 && retried.stderr.contains("node_lost") && !retried.output.contains("slow"), "\(retried.output)\(retried.stderr)")
        #expect(try runs(b, "sleep 4") == 0, "B never ran k-2")
        let lost = try b.trail("minimal").filter { $0.type == .anomalousActivity && $0.details["reason"]?.stringValue == "node_lost" }
        #expect(lost.count == 1 && lost.first?.details["node"]?.stringValue == "node-a", "\(lost)")
        // Asked again, the same answer (the fleet keeps it), from either node.
        let answered = try post(b, key: "k-2", [slow])
        #expect(answered.status == 200 && String(decoding: answered.body, as: UTF8.self).contains("node_lost"))

        // A new request through burrow with both nodes: whichever comes first, B answers (A cannot be reached).
        for i in 0..<4 {
            let r = try b.burrow(["invoke", "--socket", a.socket, "--socket", b.socket, "minimal", "--", "echo over \(i)"])
            #expect(r.status == 0 && r.output == "over \(i)\n", "\(r.output)\(r.stderr)")
        }
        _ = try b.stop(SIGTERM)
    }

    @Test(
        "with [rate_limits] scope = \"fleet\", a tool's max_concurrent and requests_per_minute hold across two nodes: B is refused while A runs the only slot, and the fifth request of the minute anywhere is the last"
    )
    func fleetRateLimits() throws {
        let pg = try TestPostgres()
        func policy(_ node: String) -> String {
            Self.policy(pg, daemon: "node_id = \"\(node)\"\n").replacingOccurrences(of: "[rate_limits]\n", with: "[rate_limits]\nscope = \"fleet\"\nfleet_sync = \"200ms\"\n")
        }
        let a = try LiveDaemon(policy: policy("node-a"))
        let b = try LiveDaemon(policy: policy("node-b"))
        let profile = "extends = \"minimal\"\n[tool]\nid = \"limited\"\nname = \"limited\"\nversion = \"1\"\n"
        let body: [String: Any] = [
            "id": "limited", "metadata": ["name": "limited", "version": "1"], "command": ["sh", "-c"], "profile": profile,
            "rateLimits": ["requestsPerMinute": 5, "maxConcurrent": 1],
        ]
        let registered = try a.client.send("POST", "/v1/tools", body: Array(try JSONSerialization.data(withJSONObject: body)))
        try #require(registered.status == 201, "\(String(decoding: registered.body, as: UTF8.self))")
        #expect(try Self.eventually { try b.client.send("GET", "/v1/tools/limited").status == 200 })
        @Sendable func invoke(_ d: LiveDaemon, _ script: String) throws -> (Int, String) {
            let r = try d.client.send("POST", "/v1/tools/limited/invocations", body: Array(try JSONEncoder().encode(InvocationRequest(arguments: [script]))))
            return (r.status, String(decoding: r.body, as: UTF8.self))
        }
        // Each step waits until both nodes synced twice since (pushed, then read the other's push).
        func settle() throws {
            let marks = try [a, b].map { try Self.metric($0, "burrow_fleet_counter_syncs_total") ?? 0 }
            let settled = try Self.eventually(seconds: 15) {
                try zip([a, b], marks).allSatisfy { d, mark in try (Self.metric(d, "burrow_fleet_counter_syncs_total") ?? 0) >= mark + 2 }
            }
            try #require(settled, "the fleet's counters did not sync")
        }
        try settle()
        // A runs the one slot: B is refused while it does, and admitted once it ended (and the counts were synced).
        let running = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? invoke(a, "sleep 2")
            running.signal()
        }
        #expect(try Self.eventually { try a.trail("limited").contains { $0.type == .toolInvoked } })
        try settle()
        let busy = try invoke(b, "echo b")
        #expect(busy.0 == 429 && busy.1.contains("too_many_concurrent") && busy.1.contains("across the fleet"), "\(busy)")
        running.wait()
        try settle()
        #expect(try invoke(b, "echo b").0 == 200)
        // Two admitted so far (A's, B's); A takes two more: the fleet's fifth is B's, then nobody's.
        #expect(try invoke(a, "true").0 == 200)
        #expect(try invoke(a, "true").0 == 200)
        try settle()
        #expect(try invoke(b, "true").0 == 200)
        try settle()
        for d in [a, b] {
            let refused = try invoke(d, "true")
            #expect(refused.0 == 429 && refused.1.contains("rate_limited") && refused.1.contains("across the fleet"), "\(refused)")
        }
        _ = try a.stop(SIGTERM)
        _ = try b.stop(SIGTERM)
    }
}
