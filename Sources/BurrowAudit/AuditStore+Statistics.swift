import BurrowSQLite

/// What a tool's audit trail says of its runs over a window, for its
/// statistics (`ToolStatistics` in BurrowAPI): read through the `(tool,
/// time)` index, a range of one tool's events, never the whole log. The
/// health checks' own runs (`HealthDetails.principal`) are not the callers': left out.
package struct RunTotals: Sendable, Equatable {
    /// Events of each type in the window.
    package var counts: [AuditEventType: Int] = [:]
    /// Callers refused: PermissionDenied events, an aggregated one counting the refusals it stands for.
    package var refusals = 0
    /// The largest peak memory a run reported.
    package var peakMemoryBytes: Int64?
    /// The mean CPU time of the runs that report it.
    package var meanCPUMicroseconds: Int64?
    /// Every run's duration (ms: a sandbox's wall clock, an MCP call's), ascending.
    package var durations: [Int64] = []
}

extension AuditStore {
    /// `tool`'s run totals from `since` to `until` (µs since the epoch).
    package func runTotals(tool: String, since: Int64, until: Int64) throws(AuditError) -> RunTotals {
        try withReader { db throws(AuditError) in
            var t = RunTotals()
            let counts = try db.prepare(
                """
                SELECT type, count(*), max(json_extract(details, '$.usage.peakMemoryBytes')),
                       sum(json_extract(details, '$.usage.cpuMicroseconds')), count(json_extract(details, '$.usage.cpuMicroseconds')),
                       sum(coalesce(json_extract(details, '$.repeated'), 1))
                FROM events WHERE tool = ?1 AND time >= ?2 AND time < ?3 AND origin IS NULL AND principal != ?4
                  AND type IN ('ToolCompleted', 'ToolFailed', 'ResourceLimitExceeded', 'SecurityViolation', 'PermissionDenied')
                GROUP BY type
                """)
            counts.bind(1, tool)
            counts.bind(2, since)
            counts.bind(3, until)
            counts.bind(4, HealthDetails.principal)
            var cpuTotal: Int64 = 0
            var cpuRuns: Int64 = 0
            while try counts.step() {
                guard let type = AuditEventType(rawValue: counts.text(0) ?? "") else { continue }
                t.counts[type] = Int(counts.int64(1))
                if type == .permissionDenied { t.refusals = Int(counts.int64(5)) }
                guard type == .toolCompleted || type == .toolFailed else { continue }
                if !counts.isNull(2) { t.peakMemoryBytes = max(t.peakMemoryBytes ?? 0, counts.int64(2)) }
                cpuTotal += counts.int64(3)
                cpuRuns += counts.int64(4)
            }
            if cpuRuns > 0 { t.meanCPUMicroseconds = cpuTotal / cpuRuns }
            let durations = try db.prepare(
                """
                SELECT coalesce(json_extract(details, '$.usage.wallMilliseconds'), json_extract(details, '$.milliseconds')) AS d
                FROM events WHERE tool = ?1 AND time >= ?2 AND time < ?3 AND type IN ('ToolCompleted', 'ToolFailed') AND origin IS NULL AND principal != ?4 AND d IS NOT NULL
                ORDER BY d
                """)
            durations.bind(1, tool)
            durations.bind(2, since)
            durations.bind(3, until)
            durations.bind(4, HealthDetails.principal)
            while try durations.step() { t.durations.append(durations.int64(0)) }
            return t
        }
    }
}

extension AuditStore {
    /// For each other tool, how many of the principals that invoked `tool`
    /// since `since` (µs) invoked it too in that time (the co-usage that
    /// recommendations weigh).
    package func coUsage(of tool: String, since: Int64) throws(AuditError) -> [String: Int] {
        try withReader { db throws(AuditError) in
            let stmt = try db.prepare(
                """
                SELECT e.tool, count(DISTINCT e.principal) FROM events e
                WHERE e.type = 'ToolInvoked' AND e.time >= ?2 AND e.tool != ?1 AND e.origin IS NULL AND e.principal != ?3
                  AND e.principal IN (SELECT DISTINCT principal FROM events WHERE tool = ?1 AND type = 'ToolInvoked' AND time >= ?2)
                GROUP BY e.tool
                """)
            stmt.bind(1, tool)
            stmt.bind(2, since)
            stmt.bind(3, HealthDetails.principal)
            var out: [String: Int] = [:]
            while try stmt.step() { out[stmt.text(0) ?? ""] = Int(stmt.int64(1)) }
            return out
        }
    }
}
