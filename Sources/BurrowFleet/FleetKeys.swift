import FoundationEssentials
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Idempotency keys every node of the fleet sees (with `[registry] url`):
/// a request retried on another node is answered from the first run's
/// result, never run twice. A key is claimed in one statement before the
/// run, bound to its invocation (with the running result) before it
/// starts, and finished with the result; each row names its node, so a key
/// whose node stopped beating is resolved by whichever node meets it
/// (`node_lost`, or freed when its request never ran).
package final class FleetKeys: Sendable {
    package let database: FleetDatabase
    package let node: String
    /// This burrowd's run of the node: rows of an earlier run are its
    /// previous life's, ended at the first connection (`recover`).
    let epoch = UUID().uuidString.lowercased()
    /// The result (JSON) of a run an earlier burrowd on this node left running, ended.
    let ended: @Sendable (String) -> String
    private let connection = Mutex<PostgresConnection?>(nil)

    package init(database: FleetDatabase, node: String, ended: @escaping @Sendable (String) -> String) {
        self.database = database
        self.node = node
        self.ended = ended
    }

    /// A key as the fleet holds it.
    package struct Row: Sendable, Equatable {
        package var digest: String
        package var node: String
        /// claimed (its request not yet run), running, or finished.
        package var state: String
        package var invocation: String?
        /// The invocation's result (JSON): as it started, or as it ended.
        package var result: String?
        /// Its node stopped beating (three intervals by PostgreSQL's clock, or no heartbeat for a minute).
        package var nodeDown: Bool
    }

    /// "Its node is down", for a row `k` of the keys.
    static let down = """
        NOT EXISTS (SELECT 1 FROM burrow_nodes n WHERE n.id = k.node
                    AND now() - n.heartbeat_at <= make_interval(secs => 3 * n.interval_ms / 1000.0))
        AND (EXISTS (SELECT 1 FROM burrow_nodes n WHERE n.id = k.node) OR k.created_at < now() - interval '60 seconds')
        """

    /// The shared connection (statements pipeline on it), made again after a failure.
    private func connected() async throws -> PostgresConnection {
        if let c = connection.withLock({ $0 }), !c.isClosed { return c }
        let c = try await database.connect(migrating: ["nodes", "keys"])
        do {
            try await bounded("ending this node's earlier runs", seconds: 30) { try await self.recover(c) }
        } catch {
            Task { _ = try? await bounded("closing", seconds: 5) { try await c.close() } }
            throw error
        }
        let previous = connection.withLock { held -> PostgresConnection? in
            defer { held = c }
            return held
        }
        if let previous { Task { _ = try? await bounded("closing", seconds: 5) { try await previous.close() } } }
        return c
    }

    /// Runs `body` on the connection, bounded; a failure drops the connection.
    private func run<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        let c = try await connected()
        let logger = database.logger
        do {
            return try await bounded(what, seconds: 10) { try await body(c, logger) }
        } catch {
            connection.withLock { if $0 === c { $0 = nil } }
            Task { _ = try? await bounded("closing", seconds: 5) { try await c.close() } }
            throw error
        }
    }

    /// Claims `key` for `principal`'s request; nil: claimed, this request
    /// runs. Otherwise the row that holds it. A key whose result is older
    /// than `retentionSeconds`, or claimed by a node that is down before its
    /// request ran, is forgotten first.
    package func claim(principal: String, key: String, digest: String, retentionSeconds: Double) async throws -> Row? {
        let (node, epoch) = (node, epoch)
        return try await run("claiming an idempotency key") { c, logger in
            try await c.query(
                PostgresQuery(
                    unsafeSQL: """
                        DELETE FROM burrow_idempotency_keys k WHERE principal = $1 AND key = $2
                        AND ((state = 'finished' AND finished_at < now() - make_interval(secs => $3)) OR (state = 'claimed' AND \(Self.down)))
                        """, binds: try Self.binds(principal, key, retentionSeconds)), logger: logger)
            let inserted = try await c.query(
                """
                INSERT INTO burrow_idempotency_keys (principal, key, digest, node, epoch, state) VALUES (\(principal), \(key), \(digest), \(node), \(epoch), 'claimed')
                ON CONFLICT (principal, key) DO NOTHING RETURNING 1
                """, logger: logger)
            for try await _ in inserted.decode(Int.self) { return nil }
            let rows = try await c.query(
                PostgresQuery(
                    unsafeSQL: "SELECT digest, node, state, invocation, result, \(Self.down) FROM burrow_idempotency_keys k WHERE principal = $1 AND key = $2",
                    binds: try Self.binds(principal, key)), logger: logger)
            for try await (digest, node, state, invocation, result, down) in rows.decode((String, String, String, String?, String?, Bool).self) {
                return Row(digest: digest, node: node, state: state, invocation: invocation, result: result, nodeDown: down)
            }
            // Forgotten between the two statements (another node expired it): claimed by nobody; the caller retries.
            throw FleetError("the idempotency key changed hands while it was claimed; retry")
        }
    }

    /// The key's request is running as `invocation` (`result`: as it started).
    package func bind(principal: String, key: String, invocation: String, result: String) async throws {
        let (node, epoch) = (node, epoch)
        _ = try await run("binding an idempotency key") { c, logger in
            try await c.query(
                """
                UPDATE burrow_idempotency_keys SET state = 'running', invocation = \(invocation), result = \(result)
                WHERE principal = \(principal) AND key = \(key) AND node = \(node) AND epoch = \(epoch) AND state = 'claimed'
                """, logger: logger)
        }
    }

    /// The key's request ended with `result`, unless its key was answered
    /// already (this node was taken for lost meanwhile: that answer stands).
    package func finish(principal: String, key: String, invocation: String, result: String) async throws {
        _ = try await run("finishing an idempotency key") { c, logger in
            try await c.query(
                """
                UPDATE burrow_idempotency_keys SET state = 'finished', result = \(result), finished_at = now()
                WHERE principal = \(principal) AND key = \(key) AND invocation = \(invocation) AND state = 'running'
                """, logger: logger)
        }
    }

    /// A claim whose request was refused before it ran: free for a retry.
    package func release(principal: String, key: String) async throws {
        let (node, epoch) = (node, epoch)
        _ = try await run("releasing an idempotency key") { c, logger in
            try await c.query(
                "DELETE FROM burrow_idempotency_keys WHERE principal = \(principal) AND key = \(key) AND node = \(node) AND epoch = \(epoch) AND state = 'claimed'",
                logger: logger)
        }
    }

    /// Ends a running key of a node that is down with `result` (its
    /// node_lost), unless another node did first; returns the result in force.
    package func lose(principal: String, key: String, invocation: String, result: String) async throws -> String? {
        try await run("resolving a lost invocation") { c, logger in
            let updated = try await c.query(
                PostgresQuery(
                    unsafeSQL: """
                        UPDATE burrow_idempotency_keys k SET state = 'finished', result = $4, finished_at = now()
                        WHERE principal = $1 AND key = $2 AND invocation = $3 AND state = 'running' AND \(Self.down) RETURNING result
                        """, binds: try Self.binds(principal, key, invocation, result)), logger: logger)
            for try await r in updated.decode(String.self) { return r }
            for try await r in try await c.query(
                "SELECT result FROM burrow_idempotency_keys WHERE principal = \(principal) AND key = \(key) AND state = 'finished'", logger: logger
            ).decode(String?.self) {
                return r
            }
            return nil
        }
    }

    /// What an earlier burrowd on this node left: its claims are freed
    /// (their requests never ran), its running keys ended (`ended`). Rows
    /// of this run are never touched, so it may run at any connection.
    func recover(_ c: PostgresConnection) async throws {
        let (node, epoch, logger) = (node, epoch, database.logger)
        try await c.query("DELETE FROM burrow_idempotency_keys WHERE node = \(node) AND epoch <> \(epoch) AND state = 'claimed'", logger: logger)
        var stale: [(String, String, String, String)] = []
        let rows = try await c.query(
            "SELECT principal, key, epoch, result FROM burrow_idempotency_keys WHERE node = \(node) AND epoch <> \(epoch) AND state = 'running'", logger: logger)
        for try await row in rows.decode((String, String, String, String).self) { stale.append(row) }
        for (principal, key, earlier, result) in stale {
            try await c.query(
                """
                UPDATE burrow_idempotency_keys SET state = 'finished', result = \(ended(result)), finished_at = now()
                WHERE principal = \(principal) AND key = \(key) AND epoch = \(earlier) AND state = 'running'
                """, logger: logger)
        }
    }

    /// Connects now (ending an earlier run's keys) rather than at the first claim.
    package func prepare() async throws { _ = try await connected() }

    /// Closes the connection, at the end.
    package func close() async {
        guard
            let c = connection.withLock({ held -> PostgresConnection? in
                defer { held = nil }
                return held
            })
        else { return }
        _ = try? await bounded("closing", seconds: 5) { try await c.close() }
    }

    private static func binds(_ values: any PostgresEncodable & Sendable...) throws -> PostgresBindings {
        var b = PostgresBindings(capacity: values.count)
        for v in values { try b.append(v) }
        return b
    }
}
