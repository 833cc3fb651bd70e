import FoundationEssentials
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Idempotency keys every node of the fleet sees (with `[registry] url`):
/// a request retried on another node is answered from the first run's
/// result, never run twice. A key is claimed in one statement before the
/// run, with a token of that claim's own; bound to its invocation (with the
/// running result) only while the token still holds it, before the run
/// starts; and finished with the result while it is still running. Each row
/// names its node, so a key whose node stopped beating is resolved by
/// whichever node meets it (`node_lost`, or freed when its request never ran).
package final class FleetKeys: Sendable {
    package let database: FleetDatabase
    package let node: String
    /// This burrowd's run of the node: rows of an earlier run are its
    /// previous life's, ended at the first connection (`recover`).
    let epoch = UUID().uuidString.lowercased()
    /// The result (JSON) of a run an earlier burrowd on this node left running, ended.
    let ended: @Sendable (String) -> String
    /// The connection (statements pipeline on it), or the one being made: one at a time.
    private let connection = Mutex<Task<PostgresConnection, any Error>?>(nil)

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

    /// The connection, made once however many ask at once. A new one holds
    /// the node's lock (one burrowd per node id) and first ends what an
    /// earlier burrowd on this node left.
    private func connected() async throws -> PostgresConnection {
        let task = connection.withLock { held -> Task<PostgresConnection, any Error> in
            if let held { return held }
            let made = Task { () async throws -> PostgresConnection in
                let c = try await self.database.connect(migrating: ["nodes", "keys"])
                do {
                    try await bounded("taking this node's id", seconds: 30) { try await self.lockNode(c) }
                    try await bounded("ending this node's earlier runs", seconds: 30) { try await self.recover(c) }
                } catch {
                    Task { _ = try? await bounded("closing", seconds: 5) { try await c.close() } }
                    throw error
                }
                return c
            }
            held = made
            return made
        }
        do {
            let c = try await task.value
            if !c.isClosed { return c }
            forget(task, close: false)
            return try await connected()
        } catch {
            forget(task, close: false)
            throw error
        }
    }

    /// Drops the connection `task` made (if it is still the one), closing it.
    private func forget(_ task: Task<PostgresConnection, any Error>, close: Bool) {
        let dropped = connection.withLock { held -> Bool in
            guard held == task else { return false }
            held = nil
            return true
        }
        if dropped && close { Task { if let c = try? await task.value { _ = try? await bounded("closing", seconds: 5) { try await c.close() } } } }
    }

    /// One burrowd per node id: a session lock on the keys' connection
    /// (PostgreSQL frees it when the connection ends). Two burrowds with one
    /// id would end each other's keys.
    func lockNode(_ c: PostgresConnection) async throws {
        let key = "burrow-node:" + node
        var taken = false
        for try await t in try await c.query("SELECT pg_try_advisory_lock(hashtext(\(key)))", logger: database.logger).decode(Bool.self) { taken = t }
        guard taken else {
            throw FleetError("another running burrowd uses node id \(node): give each node its own [daemon] node_id (the default is the host name)")
        }
    }

    /// Runs `body` on the connection, bounded. A connection-level failure
    /// (or no answer) drops the connection; the server's refusal of one
    /// statement does not.
    private func run<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> T {
        let task = connection.withLock { $0 }
        let c = try await connected()
        let logger = database.logger
        do {
            return try await bounded(what, seconds: 10) { try await body(c, logger) }
        } catch {
            let refused = (error as? PSQLError)?.serverInfo != nil || (error as? FleetError)?.timedOut == false
            if !refused, let task = task ?? connection.withLock({ $0 }) { forget(task, close: true) }
            throw error
        }
    }

    /// Claims `key` for `principal`'s request: nil, claimed with `token`
    /// (this request runs); otherwise the row that holds it. A key whose
    /// result is older than `retentionSeconds`, or claimed by a node that is
    /// down before its request ran, is forgotten first. A node whose own
    /// heartbeat is late claims nothing: the others may take it for lost.
    package func claim(principal: String, key: String, digest: String, token: String, retentionSeconds: Double) async throws -> Row? {
        let (node, epoch) = (node, epoch)
        return try await run("claiming an idempotency key") { c, logger in
            var fresh = false
            for try await f in try await c.query(
                "SELECT now() - heartbeat_at <= make_interval(secs => 2 * interval_ms / 1000.0) FROM burrow_nodes WHERE id = \(node)", logger: logger
            ).decode(Bool.self) {
                fresh = f
            }
            guard fresh else { throw FleetError("this node's heartbeat in the fleet's database is late, so it claims no idempotency key now") }
            for _ in 0..<3 {
                try await c.query(
                    PostgresQuery(
                        unsafeSQL: """
                            DELETE FROM burrow_idempotency_keys k WHERE principal = $1 AND key = $2
                            AND ((state = 'finished' AND finished_at < now() - make_interval(secs => $3)) OR (state = 'claimed' AND \(Self.down)))
                            """, binds: try bindings(principal, key, retentionSeconds)), logger: logger)
                let inserted = try await c.query(
                    """
                    INSERT INTO burrow_idempotency_keys (principal, key, digest, node, epoch, token, state)
                    VALUES (\(principal), \(key), \(digest), \(node), \(epoch), \(token), 'claimed')
                    ON CONFLICT (principal, key) DO NOTHING RETURNING 1
                    """, logger: logger)
                for try await _ in inserted.decode(Int.self) { return nil }
                let rows = try await c.query(
                    PostgresQuery(
                        unsafeSQL: "SELECT digest, node, state, invocation, result, \(Self.down) FROM burrow_idempotency_keys k WHERE principal = $1 AND key = $2",
                        binds: try bindings(principal, key)), logger: logger)
                for try await (digest, node, state, invocation, result, down) in rows.decode((String, String, String, String?, String?, Bool).self) {
                    return Row(digest: digest, node: node, state: state, invocation: invocation, result: result, nodeDown: down)
                }
                // Forgotten between the statements (another node expired it): claim again.
            }
            throw FleetError("the idempotency key changed hands three times while it was claimed; retry")
        }
    }

    /// The claim (`token`) runs as `invocation` (`result`: as it started);
    /// false when the claim is no longer this request's (taken for a lost
    /// node's meanwhile): then it must not run.
    package func bind(principal: String, key: String, token: String, invocation: String, result: String) async throws -> Bool {
        try await run("binding an idempotency key") { c, logger in
            let updated = try await c.query(
                """
                UPDATE burrow_idempotency_keys SET state = 'running', invocation = \(invocation), result = \(result)
                WHERE principal = \(principal) AND key = \(key) AND token = \(token) AND state = 'claimed' RETURNING 1
                """, logger: logger)
            for try await _ in updated.decode(Int.self) { return true }
            return false
        }
    }

    /// The claim's request ended with `result`, unless its key was answered
    /// already (this node was taken for lost meanwhile: that answer stands);
    /// returns whether it was taken.
    @discardableResult
    package func finish(principal: String, key: String, token: String, result: String) async throws -> Bool {
        try await run("finishing an idempotency key") { c, logger in
            let updated = try await c.query(
                """
                UPDATE burrow_idempotency_keys SET state = 'finished', result = \(result), finished_at = now()
                WHERE principal = \(principal) AND key = \(key) AND token = \(token) AND state = 'running' RETURNING 1
                """, logger: logger)
            for try await _ in updated.decode(Int.self) { return true }
            return false
        }
    }

    /// A claim whose request never ran (refused, or its bind's answer lost): free for a retry.
    package func release(principal: String, key: String, token: String) async throws {
        _ = try await run("releasing an idempotency key") { c, logger in
            try await c.query(
                "DELETE FROM burrow_idempotency_keys WHERE principal = \(principal) AND key = \(key) AND token = \(token) AND state IN ('claimed', 'running')",
                logger: logger)
        }
    }

    /// Ends a running key of a node that is down with `result` (its
    /// node_lost), unless another node did first; returns the result in
    /// force, and whether it is this call's.
    package func lose(principal: String, key: String, invocation: String, result: String) async throws -> (result: String?, mine: Bool) {
        try await run("resolving a lost invocation") { c, logger in
            let updated = try await c.query(
                PostgresQuery(
                    unsafeSQL: """
                        UPDATE burrow_idempotency_keys k SET state = 'finished', result = $4, finished_at = now()
                        WHERE principal = $1 AND key = $2 AND invocation = $3 AND state = 'running' AND \(Self.down) RETURNING result
                        """, binds: try bindings(principal, key, invocation, result)), logger: logger)
            for try await r in updated.decode(String.self) { return (r, true) }
            for try await r in try await c.query(
                "SELECT result FROM burrow_idempotency_keys WHERE principal = \(principal) AND key = \(key) AND state = 'finished'", logger: logger
            ).decode(String?.self) {
                return (r, false)
            }
            return (nil, false)
        }
    }

    /// A running key whose node is down.
    package struct Lost: Sendable {
        package var principal: String
        package var key: String
        package var invocation: String
        package var node: String
        /// Its result as it started (JSON).
        package var result: String

        package init(principal: String, key: String, invocation: String, node: String, result: String) {
            (self.principal, self.key, self.invocation, self.node, self.result) = (principal, key, invocation, node, result)
        }
    }

    /// Running keys of nodes that are down (at most `limit`), for any node to report node_lost.
    package func lostRuns(limit: Int = 100) async throws -> [Lost] {
        try await run("finding lost runs") { c, logger in
            let rows = try await c.query(
                PostgresQuery(
                    unsafeSQL: "SELECT principal, key, invocation, node, result FROM burrow_idempotency_keys k WHERE state = 'running' AND \(Self.down) LIMIT $1",
                    binds: try bindings(Int64(limit))), logger: logger)
            var out: [Lost] = []
            for try await (principal, key, invocation, node, result) in rows.decode((String, String, String, String, String).self) {
                out.append(Lost(principal: principal, key: key, invocation: invocation, node: node, result: result))
            }
            return out
        }
    }

    /// Forgets finished keys older than `retentionSeconds` (their results with them).
    package func prune(retentionSeconds: Double) async throws {
        _ = try await run("pruning idempotency keys") { c, logger in
            try await c.query(
                PostgresQuery(
                    unsafeSQL: "DELETE FROM burrow_idempotency_keys WHERE state = 'finished' AND finished_at < now() - make_interval(secs => $1)",
                    binds: try bindings(retentionSeconds)), logger: logger)
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
            let task = connection.withLock({ held -> Task<PostgresConnection, any Error>? in
                defer { held = nil }
                return held
            })
        else { return }
        if let c = try? await task.value { _ = try? await bounded("closing", seconds: 5) { try await c.close() } }
    }
}
