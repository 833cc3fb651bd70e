import Logging
import NIOCore
import PostgresNIO

/// Per-tool counters the fleet shares (`[rate_limits] scope = "fleet"`):
/// each node pushes how many requests of each tool it admitted, per
/// second, and how many sandboxes of each it runs, and reads the other
/// nodes' sums, every `every`. A node admits against its own counts (live)
/// plus the others' as last read: what the others admitted since is not
/// seen, so the fleet may pass a limit by what its other nodes admit in one
/// interval (bounded staleness).
package final class FleetCounters: Sendable {
    package let database: FleetDatabase
    package let node: String

    package init(database: FleetDatabase, node: String) {
        self.database = database
        self.node = node
    }

    /// What the other nodes hold, as read at one sync.
    package struct View: Sendable, Equatable {
        /// Requests each tool was admitted for in the last 60 s, on the other nodes.
        package var admitted: [String: Int] = [:]
        /// Sandboxes of each tool running on the other nodes.
        package var live: [String: Int] = [:]
        /// Nodes counting (this one too): those that synced within the staleness bound.
        package var nodes = 1

        package init() {}
    }

    /// What this node hands over at a sync: admissions since the last one, and every tool's live count.
    package struct Push: Sendable {
        package var admitted: [String: Int]
        package var live: [String: Int]

        package init(admitted: [String: Int], live: [String: Int]) {
            self.admitted = admitted
            self.live = live
        }
    }

    /// Syncs until cancelled: `take` gives what to push (and gets it back
    /// if the push failed), `deliver` the others' counts (nil: the sync
    /// failed, the last view grows stale).
    package func run(
        every: Duration, take: @escaping @Sendable () -> Push, giveBack: @escaping @Sendable (Push) -> Void, deliver: @escaping @Sendable (View?) -> Void
    ) async {
        var connection: PostgresConnection?
        var failing = false
        var syncs = 0
        let stale = Double(every.components.seconds) + Double(every.components.attoseconds) / 1e18
        while !Task.isCancelled {
            let push = take()
            do {
                if connection == nil || connection?.isClosed == true { connection = try await database.connect(migrating: ["rates"]) }
                guard let c = connection else { continue }
                let prune = syncs % 60 == 0
                let view = try await bounded("syncing the fleet's rate counters", seconds: 10) {
                    try await Self.sync(c, node: self.node, push: push, staleSeconds: max(3, 3 * stale), prune: prune, logger: self.database.logger)
                }
                syncs += 1
                deliver(view)
                if failing { database.logger.info("the fleet's rate counters: syncing again") }
                failing = false
            } catch {
                giveBack(push)
                deliver(nil)
                if !failing { database.logger.warning("the fleet's rate counters: \(explainFleetError(error)); each node keeps to its share meanwhile") }
                failing = true
                if let c = connection { Task { _ = try? await bounded("closing", seconds: 5) { try await c.close() } } }
                connection = nil
            }
            try? await Task.sleep(for: every)
        }
        if let c = connection { _ = try? await bounded("closing", seconds: 5) { try await c.close() } }
    }

    static func sync(_ c: PostgresConnection, node: String, push: Push, staleSeconds: Double, prune: Bool, logger: Logger) async throws -> View {
        let admitted = push.admitted.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        if !admitted.isEmpty {
            try await c.query(
                """
                INSERT INTO burrow_rate_counts (tool, node, second, admitted)
                SELECT t, \(node), floor(extract(epoch FROM now()))::bigint, a FROM unnest(\(admitted.map(\.key))::text[], \(admitted.map { Int64($0.value) })::bigint[]) AS x(t, a)
                ON CONFLICT (tool, node, second) DO UPDATE SET admitted = burrow_rate_counts.admitted + excluded.admitted
                """, logger: logger)
        }
        // Every tool's live count, and the node's own row (tool ''): its presence, which counts it among the nodes.
        let live = [("", 0)] + push.live.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        try await c.query(
            """
            INSERT INTO burrow_rate_live (tool, node, live, updated_at)
            SELECT t, \(node), l, now() FROM unnest(\(live.map(\.0))::text[], \(live.map { Int64($0.1) })::bigint[]) AS x(t, l)
            ON CONFLICT (tool, node) DO UPDATE SET live = excluded.live, updated_at = excluded.updated_at
            """, logger: logger)
        if prune {
            try await c.query("DELETE FROM burrow_rate_counts WHERE second < floor(extract(epoch FROM now()))::bigint - 120", logger: logger)
        }
        var view = View()
        let counts = try await c.query(
            """
            SELECT tool, sum(admitted)::bigint FROM burrow_rate_counts
            WHERE node <> \(node) AND second > floor(extract(epoch FROM now()))::bigint - 60 GROUP BY tool
            """, logger: logger)
        for try await (tool, n) in counts.decode((String, Int64).self) { view.admitted[tool] = Int(n) }
        let running = try await c.query(
            """
            SELECT tool, sum(live)::bigint, count(DISTINCT node) FROM burrow_rate_live
            WHERE updated_at > now() - make_interval(secs => \(staleSeconds)) GROUP BY tool
            """, logger: logger)
        for try await (tool, n, nodes) in running.decode((String, Int64, Int64).self) {
            if tool.isEmpty { view.nodes = max(1, Int(nodes)) } else { view.live[tool] = Int(n) }
        }
        // The sums above include this node's live counts: the view is the others'.
        for (tool, mine) in push.live { view.live[tool] = max(0, (view.live[tool] ?? 0) - mine) }
        return view
    }
}
