import BurrowFleet
import BurrowSQLite

/// The local registry as a replica of the fleet's (`[registry] url`): its
/// registrations and pinned definitions are the shared registry's rows,
/// taken as they change; everything else in it (results, API keys,
/// idempotency keys, health) stays this node's own.
extension RegistryStore {
    /// The shared registry this one is a replica of (its database's id); nil: none yet.
    func replicaOf() throws(Failure) -> String? {
        try withDatabase { db throws(SQLiteError) -> String? in
            let stmt = try db.cached("SELECT database FROM replica LIMIT 1")
            defer { stmt.reset() }
            return try stmt.step() ? stmt.text(0) : nil
        }
    }

    /// How many versions are registered here.
    func versionCount() throws(Failure) -> Int {
        try withDatabase { db throws(SQLiteError) -> Int in
            let stmt = try db.cached("SELECT count(*) FROM tools")
            defer { stmt.reset() }
            return try stmt.step() ? Int(stmt.int64(0)) : 0
        }
    }

    /// This registry's rows of tool `id` (one version, or all), as the shared registry keeps them.
    func sharedRows(_ id: String, version: String? = nil) throws(Failure) -> (tools: [SharedTool], pins: [SharedPins]) {
        try withDatabase { db throws(SQLiteError) in
            let tools = try db.prepare(
                """
                SELECT id, version, status, registration, validation, registered_at, updated_at, registered_by FROM tools
                WHERE (?1 IS NULL OR id = ?1) AND (?2 IS NULL OR version = ?2) ORDER BY id, version
                """)
            tools.bind(1, id)
            tools.bind(2, version)
            var t: [SharedTool] = []
            while try tools.step() { t.append(Self.tool(tools)) }
            let pins = try db.prepare("SELECT id, version, approved, offered FROM tool_pins WHERE (?1 IS NULL OR id = ?1) AND (?2 IS NULL OR version = ?2) ORDER BY id, version")
            pins.bind(1, id)
            pins.bind(2, version)
            var p: [SharedPins] = []
            while try pins.step() { p.append(SharedPins(id: pins.text(0) ?? "", version: pins.text(1) ?? "", approved: pins.text(2), offered: pins.text(3))) }
            return (t, p)
        }
    }

    /// Every row, of every tool (what a first node brings to an empty fleet).
    func allSharedRows() throws(Failure) -> (tools: [SharedTool], pins: [SharedPins]) {
        try withDatabase { db throws(SQLiteError) in
            let tools = try db.prepare("SELECT id, version, status, registration, validation, registered_at, updated_at, registered_by FROM tools ORDER BY id, version")
            var t: [SharedTool] = []
            while try tools.step() { t.append(Self.tool(tools)) }
            let pins = try db.prepare("SELECT id, version, approved, offered FROM tool_pins ORDER BY id, version")
            var p: [SharedPins] = []
            while try pins.step() { p.append(SharedPins(id: pins.text(0) ?? "", version: pins.text(1) ?? "", approved: pins.text(2), offered: pins.text(3))) }
            return (t, p)
        }
    }

    private static func tool(_ s: SQLiteConnection<SQLiteError>.Statement) -> SharedTool {
        SharedTool(
            id: s.text(0) ?? "", version: s.text(1) ?? "", status: s.text(2) ?? "", registration: s.text(3) ?? "", validation: s.text(4) ?? "",
            registeredAt: s.text(5) ?? "", updatedAt: s.text(6) ?? "", registeredBy: s.text(7) ?? "")
    }

    /// Takes the shared registry's changes, in one transaction: a complete
    /// set replaces every registration and pin here. Only rows that differ
    /// are written; returns the ids of the tools whose rows changed (their
    /// warm sandboxes are stale).
    func apply(_ changes: RegistryChanges) throws(Failure) -> Set<String> {
        let quiet = !changes.complete && changes.tools.isEmpty && changes.pins.isEmpty && changes.removedTools.isEmpty && changes.removedPins.isEmpty
        if quiet { return [] }
        let current: (tools: [SharedTool], pins: [SharedPins]) = changes.complete ? try allSharedRows() : ([], [])
        let localTools = Dictionary(current.tools.map { (RegistryKey(id: $0.id, version: $0.version), $0) }, uniquingKeysWith: { a, _ in a })
        let localPins = Dictionary(current.pins.map { (RegistryKey(id: $0.id, version: $0.version), $0) }, uniquingKeysWith: { a, _ in a })
        return try durably { db throws(SQLiteError) -> Set<String> in
            try db.transaction { () throws(SQLiteError) -> Set<String> in
                var changed = Set<String>()
                var removedTools = changes.removedTools
                var removedPins = changes.removedPins
                if changes.complete {
                    let tools = Set(changes.tools.map { RegistryKey(id: $0.id, version: $0.version) })
                    let pins = Set(changes.pins.map { RegistryKey(id: $0.id, version: $0.version) })
                    removedTools += localTools.keys.filter { !tools.contains($0) }
                    // A first approval this node made that the fleet does not hold yet (its publication
                    // failed) is kept while the version is registered: dropped, the next session would
                    // approve whatever the server lists then. It goes with the tool's next change.
                    removedPins += localPins.filter { key, row in !pins.contains(key) && !(row.approved != nil && tools.contains(key)) }.map(\.key)
                }
                for key in removedTools where try Self.deleteRow(db, id: key.id, version: key.version) { changed.insert(key.id) }
                for key in removedPins {
                    let stmt = try db.cached("DELETE FROM tool_pins WHERE id = ?1 AND version = ?2")
                    stmt.bind(1, key.id)
                    stmt.bind(2, key.version)
                    try stmt.step()
                    stmt.reset()
                    if db.changes > 0 { changed.insert(key.id) }
                }
                for row in changes.tools {
                    let key = RegistryKey(id: row.id, version: row.version)
                    let same = changes.complete ? localTools[key] == row : try Self.row(db, key) == row
                    if !same {
                        try Self.store(db, row)
                        changed.insert(row.id)
                    }
                }
                for pins in changes.pins {
                    let key = RegistryKey(id: pins.id, version: pins.version)
                    if changes.complete, localPins[key] == pins { continue }
                    let stmt = try db.cached("INSERT OR REPLACE INTO tool_pins(id, version, approved, offered) VALUES (?1, ?2, ?3, ?4)")
                    stmt.bind(1, pins.id)
                    stmt.bind(2, pins.version)
                    stmt.bind(3, pins.approved)
                    stmt.bind(4, pins.offered)
                    try stmt.step()
                    stmt.reset()
                    changed.insert(pins.id)
                }
                try Self.mark(db, changes.database)
                return changed
            }
        }
    }

    /// Marks this registry a replica of `database` (its rows are that registry's).
    func markReplica(of database: String) throws(Failure) {
        try durably { db throws(SQLiteError) in try db.transaction { () throws(SQLiteError) in try Self.mark(db, database) } }
    }

    private static func mark(_ db: SQLiteConnection<SQLiteError>, _ database: String) throws(SQLiteError) {
        try db.execute("DELETE FROM replica")
        let mark = try db.cached("INSERT INTO replica(database) VALUES (?1)")
        mark.bind(1, database)
        try mark.step()
        mark.reset()
    }

    private static func row(_ db: SQLiteConnection<SQLiteError>, _ key: RegistryKey) throws(SQLiteError) -> SharedTool? {
        let stmt = try db.cached(
            "SELECT id, version, status, registration, validation, registered_at, updated_at, registered_by FROM tools WHERE id = ?1 AND version = ?2")
        defer { stmt.reset() }
        stmt.bind(1, key.id)
        stmt.bind(2, key.version)
        return try stmt.step() ? tool(stmt) : nil
    }
}
