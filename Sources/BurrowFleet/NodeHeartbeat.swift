package import BurrowAPI
import BurrowAudit
import Logging
import NIOCore
import PostgresNIO

/// This node in the fleet's database: its id, version and host, and a
/// heartbeat every `interval` carrying its audit log's head and how far
/// the central copy holds it (both 0 without a central copy). A node is up while its last heartbeat is
/// within three intervals by PostgreSQL's clock (the nodes' own clocks
/// never compared), down after that.
package final class NodeHeartbeat: Sendable {
    /// The fleet's database the nodes beat into (the shared registry's, else the central copy's).
    package let central: FleetDatabase
    let node: String
    let version: String
    let host: String
    let facts: String
    let intervalMilliseconds: Int64
    /// The shipper whose marks each beat carries; nil: none (a fleet with a shared registry and no central copy).
    let shipper: AuditShipper?

    package init(central: FleetDatabase, node: String, version: String, host: String, facts: String, intervalMilliseconds: Int64, shipper: AuditShipper?) {
        self.central = central
        self.node = node
        self.version = version
        self.host = host
        self.facts = facts
        self.intervalMilliseconds = intervalMilliseconds
        self.shipper = shipper
    }

    /// Beats until cancelled, on a connection of its own (shipping may
    /// stop; the heartbeat does not). After a failure it tries again sooner
    /// than the interval, never later, and says so once, then once more
    /// when it beats again.
    package func run() async {
        var connection: PostgresConnection?
        var failing = false
        var pause = Duration.milliseconds(intervalMilliseconds)
        let started = AuditClock.format(AuditClock.now())
        while !Task.isCancelled {
            do {
                if connection == nil || connection?.isClosed == true {
                    connection = try await central.connect(migrating: ["nodes"])
                }
                if let c = connection {
                    let state = shipper?.current ?? AuditShipper.State()
                    let (node, version, host, facts, interval, logger) = (node, version, host, facts, intervalMilliseconds, central.logger)
                    _ = try await bounded("a heartbeat", seconds: 10) {
                        try await c.query(
                            """
                            INSERT INTO burrow_nodes (id, version, host, facts, started_at, heartbeat_at, interval_ms, audit_head, audit_shipped)
                            VALUES (\(node), \(version), \(host), \(facts), \(started)::timestamptz, now(), \(interval), \(state.head), \(state.shipped))
                            ON CONFLICT (id) DO UPDATE SET version = excluded.version, host = excluded.host, facts = excluded.facts, started_at = excluded.started_at,
                                heartbeat_at = now(), interval_ms = excluded.interval_ms, audit_head = excluded.audit_head, audit_shipped = excluded.audit_shipped
                            """, logger: logger)
                    }
                }
                if failing { central.logger.info("heartbeat of node \(node): beating again") }
                failing = false
                pause = .milliseconds(intervalMilliseconds)
            } catch {
                if !failing { central.logger.warning("heartbeat of node \(node): \(explainFleetError(error)); retrying, at most every 30 s") }
                failing = true
                if let c = connection { Task { _ = try? await bounded("closing", seconds: 5) { try await c.close() } } }
                connection = nil
                // Never slower than the interval: a node that beats late is taken for lost (its keys answered node_lost).
                pause = min(max(pause * 2, .milliseconds(100)), .milliseconds(intervalMilliseconds))
            }
            try? await Task.sleep(for: pause)
        }
        if let c = connection { _ = try? await bounded("closing", seconds: 5) { try await c.close() } }
    }
}

extension FleetDatabase {
    /// Every node the fleet's database knows, with whether it is up.
    package func nodes() async throws -> [FleetNode] {
        let c = try await connect(migrating: [])
        defer { Task { _ = try? await bounded("closing", seconds: 5) { try await c.close() } } }
        let logger = logger
        return try await bounded("listing the nodes", seconds: 30) {
            var out: [FleetNode] = []
            // No node has beaten yet (no table): none.
            for try await present in try await c.query("SELECT to_regclass('burrow_nodes') IS NOT NULL", logger: logger).decode(Bool.self) where !present { return out }
            let rows = try await c.query(
                """
                SELECT id, version, host, facts, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                    to_char(heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                    (extract(epoch FROM now() - heartbeat_at) * 1000)::bigint, interval_ms, audit_head, audit_shipped
                FROM burrow_nodes ORDER BY id
                """, logger: logger)
            for try await (id, version, host, facts, started, heartbeat, age, interval, head, shipped) in rows.decode(
                (String, String, String, String, String, String, Int64, Int64, Int64, Int64).self)
            {
                out.append(
                    FleetNode(
                        id: id, version: version, host: host, facts: facts, startedAt: started, heartbeatAt: heartbeat, heartbeatAgeMilliseconds: age,
                        status: age > 3 * interval ? "down" : "up", auditHead: head, auditShipped: shipped))
            }
            return out
        }
    }
}
