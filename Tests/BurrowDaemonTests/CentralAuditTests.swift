import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The central audit copy (`[audit] central_url`): burrowd ships its local
/// log to PostgreSQL in order, exactly once, through outages; pruning keeps
/// what the copy does not hold; a log that diverged from the copy stops
/// shipping with an alert.
@Suite(
    "central audit copy (live, PostgreSQL)", .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.seccomp), .requires(.landlock),
    .requires(.cgroupLimits), .requires(TestPostgres.requirement), .requires(.installed("/usr/bin/psql")), .timeLimit(.minutes(3)))
struct CentralAuditTests {
    static func policy(_ pg: TestPostgres, node: String) -> String {
        """
        [rate_limits]
        requests_per_minute = 1000
        max_concurrent = 4
        [daemon]
        shutdown_grace = "1s"
        node_id = "\(node)"
        [audit]
        central_url = "\(pg.url)"
        central_password_file = "\(pg.passwordFile)"
        central_max_lag = "2s"
        """
    }

    /// The central copy's rows of `node`: sequence and hash (hex), in order.
    static func central(_ pg: TestPostgres, node: String) throws -> [String] {
        let r = try pg.psql("SELECT sequence || ':' || encode(hash, 'hex') FROM burrow_audit_events WHERE node = '\(node)' ORDER BY sequence")
        guard r.status == 0 else { return [] }
        return r.output.split(separator: "\n").map(String.init)
    }

    /// The local log's rows after `after`, in the same form.
    static func local(_ daemon: LiveDaemon, after: Int64 = 0) throws -> [String] {
        try AuditStore(.init(path: daemon.auditDB, redactor: try Redactor()), access: .read).records(after: after, limit: 1_000_000).map {
            "\($0.sequence):" + $0.hash.map { String(format: "%02x", $0) }.joined()
        }
    }

    /// Waits (up to `seconds`) until the central copy holds every local row.
    static func caughtUp(_ pg: TestPostgres, _ daemon: LiveDaemon, node: String, seconds: Int = 20) throws -> Bool {
        for _ in 0..<(seconds * 10) {
            let l = try local(daemon)
            if !l.isEmpty, try central(pg, node: node).suffix(l.count) == ArraySlice(l) { return true }
            usleep(100_000)
        }
        return false
    }

    @Test(
        "every event reaches PostgreSQL exactly once and in order, byte for byte with its links; through a 30 s outage the node keeps running and auditing locally, raises central_lag, prunes nothing unshipped, and catches up"
    )
    func shipsThroughOutage() throws {
        let pg = try TestPostgres()
        let daemon = try LiveDaemon(policy: Self.policy(pg, node: "node-a"))
        try DaemonInvocationTests.register(daemon)
        for i in 0..<3 { #expect(try daemon.burrow(["invoke", "minimal", "--", "echo \(i)"]).status == 0) }
        #expect(try Self.caughtUp(pg, daemon, node: "node-a"))

        let shippedBefore = try Self.central(pg, node: "node-a").count
        // PostgreSQL down: invocations go on, audited locally.
        try pg.stop()
        for i in 0..<5 { #expect(try daemon.burrow(["invoke", "minimal", "--", "echo down \(i)"]).status == 0) }
        // Pruning everything keeps what the central copy does not hold.
        let pruned = try daemon.burrow(["audit", "prune", "--older-than", "0", "--policy", daemon.policyFile, "--audit-db", daemon.auditDB])
        #expect(pruned.status == 0 && pruned.output.contains("kept") && pruned.output.contains("does not hold them yet"), "\(pruned.output)\(pruned.stderr)")
        let kept = try Self.local(daemon)
        #expect(kept.count >= 5, "\(kept.count) kept")
        usleep(3_000_000)
        let alerts = try AuditStore(.init(path: daemon.auditDB, redactor: try Redactor()), access: .read).events(AuditQuery(types: [.anomalousActivity]))
        #expect(alerts.contains { $0.details["reason"]?.stringValue == "central_lag" && $0.context.principal == "burrowd:shipping" }, "\(alerts)")
        // The rest of a 30 s outage, the node serving meanwhile.
        for _ in 0..<6 {
            usleep(4_500_000)
            #expect(try daemon.client.send("GET", "/v1/health").status == 200)
        }

        try pg.start()
        // (The shipper tries again after a pause that grew while the database was down, up to 30 s.)
        #expect(try Self.caughtUp(pg, daemon, node: "node-a", seconds: 45))
        // Exactly once, in order, no gap: the pruned rows were shipped before the outage, the kept ones after it.
        let rows = try Self.central(pg, node: "node-a")
        let sequences = rows.compactMap { Int64($0.split(separator: ":")[0]) }
        #expect(sequences == Array(1...Int64(sequences.count)), "\(sequences)")
        #expect(shippedBefore > 0 && rows.count > shippedBefore, "\(shippedBefore) before the outage, \(rows.count) after")
        #expect(try pg.value("SELECT count(*) FROM burrow_audit_events") == "\(rows.count)")
        // The local log still verifies after the prune, and the copy holds every row it deleted.
        #expect(try daemon.burrow(["audit", "verify", "--audit-db", daemon.auditDB]).status == 0)
        // burrow audit verify --central: every node's chain there, and this node's against its own log.
        let verified = try daemon.burrow(["audit", "verify", "--central", "--socket", daemon.socket])
        #expect(verified.status == 0 && verified.output.contains("node node-a: intact") && verified.output.contains("agrees with this node's log"), "\(verified.output)\(verified.stderr)")
        // burrow audit --central: the events of every node, from the copy, each naming its node; the pruned ones too.
        let listed = try daemon.burrow(["audit", "--central", "--tool", "minimal", "--type", "ToolCompleted", "--json"])
        let events = try JSONDecoder().decode([AuditEvent].self, from: listed.stdout)
        #expect(listed.status == 0 && events.count == 8 && events.allSatisfy { $0.node == "node-a" && $0.type == .toolCompleted }, "\(listed.output)\(listed.stderr)")
        let other = try daemon.burrow(["audit", "--central", "--node", "node-z", "--json"])
        let none = try JSONDecoder().decode([AuditEvent].self, from: other.stdout)
        #expect(other.status == 0 && none.isEmpty, "\(other.output)\(other.stderr)")
        // A row edited in PostgreSQL is found.
        #expect(try pg.psql("UPDATE burrow_audit_events SET details = convert_to('{}', 'UTF8') WHERE node = 'node-a' AND sequence = 2").status == 0)
        let edited = try daemon.burrow(["audit", "verify", "--central", "--socket", daemon.socket])
        #expect(edited.status == 1 && edited.output.contains("row 2 does not match its hash"), "\(edited.output)\(edited.stderr)")
        let metrics = try daemon.client.send("GET", "/metrics")
        let text = String(decoding: metrics.body, as: UTF8.self)
        #expect(text.contains("burrow_audit_shipping_connected 1"), "\(text.split(separator: "\n").filter { $0.contains("shipping") })")
        _ = try daemon.stop(SIGTERM)
    }

    @Test("two nodes beat into one fleet database: both listed up, with their versions and audit marks; a node killed is down after three missed heartbeats")
    func nodesAndHeartbeats() throws {
        let pg = try TestPostgres()
        let beat = "\nheartbeat_interval = \"500ms\"\n"
        func policy(_ node: String) -> String { Self.policy(pg, node: node).replacingOccurrences(of: "node_id = \"\(node)\"\n", with: "node_id = \"\(node)\"" + beat) }
        let a = try LiveDaemon(policy: policy("node-a"))
        let b = try LiveDaemon(policy: policy("node-b"))
        func listed() throws -> [FleetNode] {
            let r = try a.burrow(["admin", "nodes", "--json", "--socket", a.socket])
            return (try? JSONDecoder().decode([FleetNode].self, from: r.stdout)) ?? []
        }
        var nodes: [FleetNode] = []
        for _ in 0..<50 where nodes.filter({ $0.status == "up" }).count < 2 {
            nodes = try listed()
            usleep(100_000)
        }
        #expect(nodes.map(\.id) == ["node-a", "node-b"] && nodes.allSatisfy { $0.status == "up" && $0.version == "0.2.0" && $0.facts.contains("Linux") }, "\(nodes)")
        _ = try b.stop(SIGKILL)
        var down = false
        for _ in 0..<50 where !down {
            down = try listed().first { $0.id == "node-b" }?.status == "down"
            usleep(100_000)
        }
        #expect(down, "node-b still up")
        #expect(try listed().first { $0.id == "node-a" }?.status == "up")
        let text = try a.burrow(["admin", "nodes", "--socket", a.socket])
        #expect(text.status == 0 && text.output.contains("node-b") && text.output.contains("down"), "\(text.output)\(text.stderr)")
        _ = try a.stop(SIGTERM)
    }

    @Test(
        "a node whose log diverged from the central copy (restored from a backup, then writing again) stops shipping with central_divergence, and the copy keeps the rows it had"
    )
    func divergenceStops() throws {
        let pg = try TestPostgres()
        let daemon = try LiveDaemon(policy: Self.policy(pg, node: "node-b"))
        try DaemonInvocationTests.register(daemon)
        let backup = daemon.directory + "/backup"
        let databases = ["--policy", daemon.policyFile, "--audit-db", daemon.auditDB, "--registry-db", daemon.directory + "/registry.db"]
        #expect(try daemon.burrow(["admin", "backup"] + databases + [backup]).status == 0)
        for i in 0..<3 { #expect(try daemon.burrow(["invoke", "minimal", "--", "echo \(i)"]).status == 0) }
        #expect(try Self.caughtUp(pg, daemon, node: "node-b"))
        let before = try Self.central(pg, node: "node-b")
        _ = try daemon.stop(SIGTERM)
        let restored = try daemon.burrow(["admin", "restore", "--force", "--socket", daemon.socket] + databases + [backup])
        try #require(restored.status == 0, "\(restored.stderr)")
        try daemon.start()
        // New events take the sequence numbers the copy already holds, with other hashes.
        for i in 0..<4 { #expect(try daemon.burrow(["invoke", "minimal", "--", "echo again \(i)"]).status == 0) }
        var alert: AuditEvent?
        for _ in 0..<100 where alert == nil {
            alert = try AuditStore(.init(path: daemon.auditDB, redactor: try Redactor()), access: .read).events(AuditQuery(types: [.anomalousActivity])).first {
                $0.details["reason"]?.stringValue == "central_divergence"
            }
            usleep(100_000)
        }
        #expect(alert?.details["node"]?.stringValue == "node-b", "no central_divergence event")
        #expect(Array(try Self.central(pg, node: "node-b").prefix(before.count)) == before, "the copy keeps what it had")
        let text = String(decoding: try daemon.client.send("GET", "/metrics").body, as: UTF8.self)
        #expect(text.contains("burrow_audit_shipping_stopped 1"))
        let verified = try daemon.burrow(["audit", "verify", "--central", "--socket", daemon.socket])
        #expect(verified.status == 1 && verified.output.contains("differs from this node's log"), "\(verified.output)\(verified.stderr)")
        _ = try daemon.stop(SIGTERM)
    }

    @Test(
        "the other two checks at reconnect: rows pruned while no copy was configured are said (central_gap), and a row the copy holds with another hash than this log's stops shipping (central_divergence)"
    )
    func gapAndHashMismatch() throws {
        let pg = try TestPostgres()
        func alert(_ daemon: LiveDaemon, _ reason: String) throws -> AuditEvent? {
            for _ in 0..<100 {
                let found = try AuditStore(.init(path: daemon.auditDB, redactor: try Redactor()), access: .read).events(AuditQuery(types: [.anomalousActivity])).first {
                    $0.details["reason"]?.stringValue == reason
                }
                if found != nil { return found }
                usleep(100_000)
            }
            return nil
        }

        // node-c: rows written and pruned with a policy that names no copy (an operator who turned shipping off).
        let c = try LiveDaemon(policy: Self.policy(pg, node: "node-c"))
        try DaemonInvocationTests.register(c)
        #expect(try c.burrow(["invoke", "minimal", "--", "echo c"]).status == 0)
        #expect(try Self.caughtUp(pg, c, node: "node-c"))
        _ = try c.stop(SIGTERM)
        let head = try AuditStore(.init(path: c.auditDB, redactor: try Redactor()), access: .read).head().sequence
        _ = try AuditStore(.init(path: c.auditDB, redactor: try Redactor()), access: .write).append([
            AuditEvent(
                tool: "minimal", context: SecurityContext(principal: "uid:0", uid: 0, host: "test"), details: RefusalDetails(reason: "test", message: "written while no copy was configured"))
        ])
        let plain = c.directory + "/plain.toml"
        try "[daemon]\nshutdown_grace = \"1s\"\n".write(toFile: plain, atomically: true, encoding: .utf8)
        let pruned = try c.burrow(["audit", "prune", "--older-than", "0", "--policy", plain, "--audit-db", c.auditDB])
        #expect(pruned.status == 0 && pruned.output.contains("deleted"), "\(pruned.output)\(pruned.stderr)")
        try c.start()
        let gap = try alert(c, "central_gap")
        #expect(gap?.details["message"]?.stringValue?.contains("rows \(head + 1)–\(head + 1) of node node-c") == true, "\(String(describing: gap))")
        _ = try c.stop(SIGTERM)

        // node-d: the copy's last row of it rewritten in PostgreSQL (its hash); at the next connect this log and the copy differ there.
        let d = try LiveDaemon(policy: Self.policy(pg, node: "node-d"))
        try DaemonInvocationTests.register(d)
        #expect(try d.burrow(["invoke", "minimal", "--", "echo d"]).status == 0)
        #expect(try Self.caughtUp(pg, d, node: "node-d"))
        _ = try d.stop(SIGTERM)
        let last = try pg.value("SELECT max(sequence) FROM burrow_audit_events WHERE node = 'node-d'")
        #expect(try pg.psql("UPDATE burrow_audit_events SET hash = sha256(hash) WHERE node = 'node-d' AND sequence = \(last)").status == 0)
        try d.start()
        let divergence = try alert(d, "central_divergence")
        #expect(divergence?.details["message"]?.stringValue?.contains("row \(last) of node node-d differs") == true, "\(String(describing: divergence))")
        _ = try d.stop(SIGTERM)
    }
}
