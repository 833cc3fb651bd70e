import BurrowJSON
import BurrowSQLite

/// Which events `burrow audit` (and the daemon's audit endpoint) return.
package struct AuditQuery: Sendable, Equatable {
    package var tool: String?
    /// Any of these types; empty means all.
    package var types: [AuditEventType] = []
    /// Microseconds since the epoch, inclusive.
    package var since: Int64?
    /// Microseconds since the epoch, exclusive.
    package var until: Int64?
    package var invocation: String?
    /// Only events after this sequence (`follow`).
    package var afterSequence: Int64?
    /// The most recent `limit` matches (still returned oldest first).
    package var limit: Int?
    /// Only events whose caller is this uid (a user reading its own runs).
    package var uid: UInt32?

    package init(
        tool: String? = nil, types: [AuditEventType] = [], since: Int64? = nil, until: Int64? = nil, invocation: String? = nil, afterSequence: Int64? = nil, limit: Int? = nil,
        uid: UInt32? = nil
    ) {
        self.uid = uid
        self.tool = tool
        self.types = types
        self.since = since
        self.until = until
        self.invocation = invocation
        self.afterSequence = afterSequence
        self.limit = limit
    }
}

extension AuditStore {
    /// The matching events, oldest first.
    package func events(_ query: AuditQuery = AuditQuery()) throws(AuditError) -> [AuditEvent] {
        var out: [AuditEvent] = []
        try forEachEvent(query) { out.append($0) }
        return out
    }

    /// Streams the matching events, oldest first, without holding them all.
    package func forEachEvent(_ query: AuditQuery, _ body: (AuditEvent) -> Void) throws(AuditError) {
        enum Value {
            case text(String)
            case number(Int64)
        }
        // Each clause with the values its placeholders take, bound in order.
        var clauses: [(sql: String, values: [Value])] = []
        if let tool = query.tool { clauses.append(("tool = ?", [.text(tool)])) }
        if let invocation = query.invocation { clauses.append(("invocation = ?", [.text(invocation)])) }
        if let uid = query.uid { clauses.append(("uid = ?", [.number(Int64(uid))])) }
        if !query.types.isEmpty {
            clauses.append(("type IN (\(query.types.map { _ in "?" }.joined(separator: ",")))", query.types.map { .text($0.rawValue) }))
        }
        if let since = query.since { clauses.append(("time >= ?", [.number(since)])) }
        if let until = query.until { clauses.append(("time < ?", [.number(until)])) }
        if let after = query.afterSequence { clauses.append(("sequence > ?", [.number(after)])) }
        let filter = clauses.isEmpty ? "" : " WHERE " + clauses.map(\.sql).joined(separator: " AND ")
        let columns = AuditRecord.columns
        let sql: String
        if let limit = query.limit {
            sql = "SELECT * FROM (SELECT \(columns) FROM events\(filter) ORDER BY sequence DESC LIMIT \(max(0, limit))) ORDER BY sequence"
        } else {
            sql = "SELECT \(columns) FROM events\(filter) ORDER BY sequence"
        }
        try withReader { db throws(AuditError) in
            let stmt = try db.prepare(sql)
            for (offset, value) in clauses.flatMap(\.values).enumerated() {
                switch value {
                case .text(let t): stmt.bind(Int32(offset + 1), t)
                case .number(let n): stmt.bind(Int32(offset + 1), n)
                }
            }
            while try stmt.step() { body(AuditStore.event(stmt)) }
        }
    }

    /// The newest sequence number (0 when empty).
    package func lastSequence() throws(AuditError) -> Int64 {
        try withReader { db throws(AuditError) in try head(db).sequence }
    }

    /// Bounds for reading back the log's own details: far above anything
    /// Burrow writes (strings are capped at 64 KiB), so only a foreign
    /// writer's row is shown as `unparsed` text.
    static let storedDetailsLimits = JSONLimits(maxDepth: 64, maxKeyBytes: 1 << 16, maxStringBytes: 1 << 26, maxItems: 1 << 22, maxBytes: 1 << 27)

    static func event(_ stmt: AuditDatabase.Statement) -> AuditEvent { AuditRecord(stmt).event }
}
