import Logging
import NIOCore
import PostgresNIO

/// Per-tool counters the fleet shares (`[rate_limits] scope = "fleet"`):
/// each node pushes how many requests of each tool it admitted, per
/// wall-clock second, and how many sandboxes of each it runs, and reads the
/// other nodes' sums, every `every`. A node admits against its own counts
/// (live) plus the others' as last read: what the others admitted since is
/// not seen, so the fleet may pass a limit by what its other nodes admit in
/// about two intervals (bounded staleness). A node's live counts are kept
/// for `liveGraceSeconds` after its last sync (cut off, it still runs them).
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

    /// What this node hands over at a sync: its admissions per tool and
    /// wall-clock second (absolute counts of the seconds that changed, so a
    /// push sent twice counts once), and every tool's live count.
    package struct Push: Sendable {
        package var admitted: [String: [Int64: Int]]
        package var live: [String: Int]

        package init(admitted: [String: [Int64: Int]], live: [String: Int]) {
            self.admitted = admitted
            self.live = live
        }
    }

    /// How long a node's live counts are counted after its last sync: a
    /// node cut off from the database still runs its sandboxes.
    static let liveGraceSeconds = 60.0

    /// Syncs until cancelled: `take` gives what to push, `pushed` is told
    /// what the database took, `deliver` gets the others' counts (nil: the
    /// sync failed, and the last view grows stale).
    package func run(
        every: Duration, take: @escaping @Sendable () -> Push, pushed: @escaping @Sendable (Push) -> Void, deliver: @escaping @Sendable (View?) -> Void
    ) async {
        var connection: PostgresConnection?
        var failing = false
        var pruned = ContinuousClock.now - .seconds(120)
        let seconds = Double(every.components.seconds) + Double(every.components.attoseconds) / 1e18
        while !Task.isCancelled {
            let push = take()
            do {
                if connection == nil || connection?.isClosed == true { connection = try await database.connect(migrating: ["rates"]) }
                guard let c = connection else { continue }
                let prune = ContinuousClock.now - pruned > .seconds(60)
                let view = try await bounded("syncing the fleet's rate counters", seconds: 10) {
                    try await Self.sync(c, node: self.node, push: push, presenceSeconds: max(3, 3 * seconds), prune: prune, logger: self.database.logger)
                }
                if prune { pruned = ContinuousClock.now }
                pushed(push)
                deliver(view)
                if failing { database.logger.info("the fleet's rate counters: syncing again") }
                failing = false
            } catch {
                deliver(nil)
                if !failing { database.logger.warning("the fleet's rate counters: \(explainFleetError(error)); each node keeps to its share once they are stale") }
                failing = true
                if let c = connection { Task { _ = try? await bounded("closing", seconds: 5) { try await c.close() } } }
                connection = nil
            }
            try? await Task.sleep(for: every)
        }
        if let c = connection { _ = try? await bounded("closing", seconds: 5) { try await c.close() } }
    }

    static func sync(_ c: PostgresConnection, node: String, push: Push, presenceSeconds: Double, prune: Bool, logger: Logger) async throws -> View {
        var tools: [String] = []
        var seconds: [Int64] = []
        var counts: [Int64] = []
        for (tool, bySecond) in push.admitted.sorted(by: { $0.key < $1.key }) {
            for (second, n) in bySecond.sorted(by: { $0.key < $1.key }) {
                tools.append(tool)
                seconds.append(second)
                counts.append(Int64(n))
            }
        }
        if !tools.isEmpty {
            try await c.query(
                """
                INSERT INTO burrow_rate_counts (tool, node, second, admitted)
                SELECT t, \(node), s, a FROM unnest(\(tools)::text[], \(seconds)::bigint[], \(counts)::bigint[]) AS x(t, s, a)
                ON CONFLICT (tool, node, second) DO UPDATE SET admitted = excluded.admitted
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
            try await c.query("DELETE FROM burrow_rate_live WHERE updated_at < now() - interval '1 hour'", logger: logger)
        }
        var view = View()
        let counted = try await c.query(
            """
            SELECT tool, sum(admitted)::bigint FROM burrow_rate_counts
            WHERE node <> \(node) AND second > floor(extract(epoch FROM now()))::bigint - 60 GROUP BY tool
            """, logger: logger)
        for try await (tool, n) in counted.decode((String, Int64).self) { view.admitted[tool] = Int(n) }
        let running = try await c.query(
            """
            SELECT tool, sum(live)::bigint FROM burrow_rate_live
            WHERE node <> \(node) AND tool <> '' AND updated_at > now() - make_interval(secs => \(liveGraceSeconds)) GROUP BY tool
            """, logger: logger)
        for try await (tool, n) in running.decode((String, Int64).self) { view.live[tool] = Int(n) }
        let present = try await c.query(
            "SELECT count(*) FROM burrow_rate_live WHERE tool = '' AND updated_at > now() - make_interval(secs => \(presenceSeconds))", logger: logger)
        for try await n in present.decode(Int64.self) { view.nodes = max(1, Int(n)) }
        return view
    }
}
