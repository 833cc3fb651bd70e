package import BurrowAPI
import BurrowAudit
import BurrowFleet
import BurrowSQLite
import BurrowSystem
import FoundationEssentials
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Registrations, invocation results and API keys (their digests), in one
/// SQLite file (0600 root) that survives restarts. Each registration is kept as the JSON it was given
/// plus its validation; names, descriptions and categories are indexed for
/// full-text search (FTS5).
package final class RegistryStore: Sendable {
    package let path: String
    private let connection: Mutex<SQLiteConnection<SQLiteError>>

    static let schemaVersion = 7

    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    package init(path: String) throws(Failure) {
        self.path = path
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !directory.isEmpty && mkdir(directory, 0o750) != 0 && errno != EEXIST {
            throw Failure(description: "cannot create \(directory): \(errnoName(errno))")
        }
        // Created owner-only before SQLite sees it: registrations name what may run.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(errnoName(errno))") }
        close(fd)
        let db: SQLiteConnection<SQLiteError>
        do {
            db = try SQLiteConnection<SQLiteError>(path: path, mode: .readWrite)
            // Results are rewritten on every invocation and need not survive a
            // power loss: NORMAL (no fsync per commit in WAL mode). Changes to
            // registrations are made durable one by one (`durably`).
            try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
            let version = Int(try db.pragma("user_version") ?? "0") ?? 0
            guard version <= Self.schemaVersion else {
                throw SQLiteError("schema version \(version) is newer than this burrowd knows (\(Self.schemaVersion)); refusing to touch it")
            }
            if version < 1 {
                try db.transaction { () throws(SQLiteError) in
                    try db.execute(
                        """
                        CREATE TABLE tools(
                            id TEXT NOT NULL, version TEXT NOT NULL, status TEXT NOT NULL,
                            registration TEXT NOT NULL, validation TEXT NOT NULL,
                            registered_at TEXT NOT NULL, updated_at TEXT NOT NULL, registered_by TEXT NOT NULL,
                            PRIMARY KEY (id, version));
                        CREATE VIRTUAL TABLE tools_fts USING fts5(name, description, categories, tokenize = 'unicode61 remove_diacritics 2');
                        CREATE TABLE invocations(
                            id TEXT PRIMARY KEY, tool TEXT NOT NULL, version TEXT NOT NULL, principal TEXT NOT NULL,
                            state TEXT NOT NULL, started_at INTEGER NOT NULL, finished_at INTEGER, result TEXT NOT NULL);
                        CREATE INDEX invocations_finished ON invocations(finished_at);
                        PRAGMA user_version = 1;
                        """)
                }
            }
            if version < 2 {
                try db.transaction { () throws(SQLiteError) in
                    try db.execute(
                        """
                        CREATE TABLE api_keys(
                            id TEXT PRIMARY KEY, digest TEXT NOT NULL, name TEXT NOT NULL, roles TEXT NOT NULL,
                            created_by TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER);
                        PRAGMA user_version = 2;
                        """)
                }
            }
            if version < 3 {
                // Request signing: a key made before has none (NULL), and cannot sign.
                try db.transaction { () throws(SQLiteError) in
                    try db.execute("ALTER TABLE api_keys ADD COLUMN signing_key TEXT; PRAGMA user_version = 3;")
                }
            }
            if version < 4 {
                // Health checks: what the last one found of each checked tool (`ToolHealth`, JSON), kept across restarts.
                try db.transaction { () throws(SQLiteError) in
                    try db.execute("CREATE TABLE tool_health(id TEXT PRIMARY KEY, state TEXT NOT NULL); PRAGMA user_version = 4;")
                }
            }
            if version < 5 {
                // Pinned MCP tool definitions of each version (`ToolPins`' file form): those
                // approved, and those a server offered instead, for an operator to approve.
                try db.transaction { () throws(SQLiteError) in
                    try db.execute(
                        "CREATE TABLE tool_pins(id TEXT NOT NULL, version TEXT NOT NULL, approved TEXT, offered TEXT, PRIMARY KEY (id, version)); PRAGMA user_version = 5;")
                }
            }
            if version < 6 {
                // Idempotency keys of invocations: a retried request is answered from the first one's result, never run again.
                try db.transaction { () throws(SQLiteError) in
                    try db.execute(
                        """
                        CREATE TABLE idempotency_keys(
                            principal TEXT NOT NULL, key TEXT NOT NULL, digest TEXT NOT NULL, invocation TEXT, created_at INTEGER NOT NULL,
                            PRIMARY KEY (principal, key));
                        CREATE INDEX idempotency_created ON idempotency_keys(created_at);
                        PRAGMA user_version = 6;
                        """)
                }
            }
            if version < 7 {
                // A replica of the fleet's registry (`[registry] url`): which one (its database's id).
                try db.transaction { () throws(SQLiteError) in
                    try db.execute("CREATE TABLE replica(database TEXT NOT NULL); PRAGMA user_version = 7;")
                }
            }
        } catch {
            throw Failure(description: "the registry \(path): \(error)")
        }
        connection = Mutex(db)
    }

    /// A registry change, committed with a full sync: once an admin is told it
    /// is stored, a crash does not undo it.
    func durably<T>(_ body: (SQLiteConnection<SQLiteError>) throws(SQLiteError) -> T) throws(Failure) -> T {
        // Whatever it did, the versions read before it are not kept.
        defer { forgetVersions() }
        return try withDatabase { db throws(SQLiteError) in
            try db.execute("PRAGMA synchronous=FULL")
            defer { try? db.execute("PRAGMA synchronous=NORMAL") }
            return try body(db)
        }
    }

    /// The versions of each tool as last read, so an invocation does not
    /// query and decode its registration every time. Every registry change
    /// goes through `durably`, which empties it and moves the generation on;
    /// a read started before a change is not kept after it. (This process is
    /// the registry's only writer; a shared registry would need the other
    /// writers' changes announced, e.g. LISTEN/NOTIFY.)
    private let versionCache = Mutex<(generation: UInt64, byID: [String: [ToolRecord]])>((0, [:]))
    static let versionCacheCapacity = 1024

    /// Moves on with every registry change: a reader that keeps something
    /// derived from the registrations (the health checks' schedule) rereads
    /// them when it differs from the one it read them at.
    package var generation: UInt64 { versionCache.withLock { $0.generation } }

    private func forgetVersions() {
        versionCache.withLock {
            $0.generation &+= 1
            $0.byID.removeAll()
        }
    }

    func withDatabase<T>(_ body: (SQLiteConnection<SQLiteError>) throws(SQLiteError) -> T) throws(Failure) -> T {
        do {
            return try connection.withLock { db throws(SQLiteError) in try body(db) }
        } catch {
            throw Failure(description: "the registry \(path): \(error)")
        }
    }

    // MARK: registrations

    package enum WriteOutcome: Sendable, Equatable { case written, exists, missing }

    /// Inserts a new version (`replace` false) or replaces an existing one.
    package func write(_ record: ToolRecord, replace: Bool) throws(Failure) -> WriteOutcome {
        let r = record.registration
        let row = SharedTool(
            id: r.id, version: r.metadata.version, status: r.status.rawValue, registration: try encode(r), validation: try encode(record.validation),
            registeredAt: record.registeredAt, updatedAt: record.updatedAt, registeredBy: record.registeredBy)
        return try durably { db throws(SQLiteError) in
            try db.transaction { () throws(SQLiteError) -> WriteOutcome in
                let find = try db.cached("SELECT registered_at FROM tools WHERE id = ?1 AND version = ?2")
                find.bind(1, r.id)
                find.bind(2, r.metadata.version)
                let existing = try find.step() ? (find.text(0) ?? record.registeredAt) : nil
                find.reset()
                if existing != nil && !replace { return .exists }
                if existing == nil && replace { return .missing }
                var stored = row
                stored.registeredAt = existing ?? record.registeredAt
                try Self.store(db, stored)
                return .written
            }
        }
    }

    /// Writes one version's row and its search entry (in the caller's transaction).
    static func store(_ db: SQLiteConnection<SQLiteError>, _ row: SharedTool) throws(SQLiteError) {
        try deleteRow(db, id: row.id, version: row.version)
        let insert = try db.cached(
            """
            INSERT INTO tools(id, version, status, registration, validation, registered_at, updated_at, registered_by)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING rowid
            """)
        insert.bind(1, row.id)
        insert.bind(2, row.version)
        insert.bind(3, row.status)
        insert.bind(4, row.registration)
        insert.bind(5, row.validation)
        insert.bind(6, row.registeredAt)
        insert.bind(7, row.updatedAt)
        insert.bind(8, row.registeredBy)
        guard try insert.step() else { throw SQLiteError("the registration was not stored") }
        let rowid = insert.int64(0)
        insert.reset()
        // The search index takes what it needs from the registration itself (a replicated row comes as text).
        guard let r = try? JSONDecoder().decode(ToolRegistration.self, from: Data(row.registration.utf8)) else {
            throw SQLiteError("the registration of \(row.id) \(row.version) cannot be read")
        }
        let index = try db.cached("INSERT INTO tools_fts(rowid, name, description, categories) VALUES (?1, ?2, ?3, ?4)")
        index.bind(1, rowid)
        index.bind(2, r.metadata.name + " " + r.id)
        index.bind(3, r.metadata.description)
        index.bind(4, r.metadata.categories.joined(separator: " "))
        try index.step()
        index.reset()
    }

    /// Deletes one version's row and its search entry, if there is one; returns whether there was.
    @discardableResult
    static func deleteRow(_ db: SQLiteConnection<SQLiteError>, id: String, version: String) throws(SQLiteError) -> Bool {
        let find = try db.cached("SELECT rowid FROM tools WHERE id = ?1 AND version = ?2")
        find.bind(1, id)
        find.bind(2, version)
        let rowid = try find.step() ? find.int64(0) : nil
        find.reset()
        guard let rowid else { return false }
        for sql in ["DELETE FROM tools_fts WHERE rowid = ?1", "DELETE FROM tools WHERE rowid = ?1"] {
            let stmt = try db.cached(sql)
            stmt.bind(1, rowid)
            try stmt.step()
            stmt.reset()
        }
        return true
    }

    /// Removes one version, or every version when `version` is nil; returns the versions removed.
    package func remove(_ id: String, version: String?) throws(Failure) -> [String] {
        try durably { db throws(SQLiteError) in
            try db.transaction { () throws(SQLiteError) -> [String] in
                let select = try db.prepare("SELECT version FROM tools WHERE id = ?1 AND (?2 IS NULL OR version = ?2)")
                select.bind(1, id)
                select.bind(2, version)
                var versions: [String] = []
                while try select.step() { versions.append(select.text(0) ?? "") }
                for v in versions { try Self.deleteRow(db, id: id, version: v) }
                return versions
            }
        }
    }

    /// Every version of `id`, highest first.
    package func versions(_ id: String) throws(Failure) -> [ToolRecord] {
        let (generation, cached) = versionCache.withLock { ($0.generation, $0.byID[id]) }
        if let cached { return cached }
        let found = try records("SELECT registration, validation, registered_at, updated_at, registered_by FROM tools WHERE id = ?1", bind: { $0.bind(1, id) })
            .sorted { VersionOrder.less($1.registration.metadata.version, $0.registration.metadata.version) }
        versionCache.withLock {
            guard $0.generation == generation else { return }
            if $0.byID.count >= Self.versionCacheCapacity { $0.byID.removeAll() }
            $0.byID[id] = found
        }
        return found
    }

    /// The latest version of each tool, filtered by category and status.
    package func list(category: String?, status: ToolStatus?) throws(Failure) -> [ToolRecord] {
        let all = try records(
            """
            SELECT registration, validation, registered_at, updated_at, registered_by FROM tools
            WHERE (?1 IS NULL OR EXISTS (SELECT 1 FROM json_each(registration, '$.metadata.categories') WHERE value = ?1))
              AND (?2 IS NULL OR status = ?2)
            """,
            bind: {
                $0.bind(1, category)
                $0.bind(2, status?.rawValue)
            })
        return Self.latest(all)
    }

    /// Every stored version of other tools that names `id` among its dependencies.
    package func dependents(of id: String) throws(Failure) -> [ToolRecord] {
        try records(
            """
            SELECT registration, validation, registered_at, updated_at, registered_by FROM tools
            WHERE id != ?1 AND EXISTS (SELECT 1 FROM json_each(registration, '$.metadata.dependencies')
                                       WHERE CASE type WHEN 'text' THEN value = ?1 WHEN 'object' THEN json_extract(value, '$.id') = ?1 ELSE 0 END)
            """,
            bind: { $0.bind(1, id) })
    }

    /// The registrations health checks run for: of each tool, the version an
    /// invocation without `version` runs (the highest not disabled), when it has `health`.
    package func healthChecked() throws(Failure) -> [ToolRecord] {
        let ids = try withDatabase { db throws(SQLiteError) -> [String] in
            let stmt = try db.prepare("SELECT DISTINCT id FROM tools WHERE json_extract(registration, '$.health') IS NOT NULL ORDER BY id")
            var ids: [String] = []
            while try stmt.step() { ids.append(stmt.text(0) ?? "") }
            return ids
        }
        var out: [ToolRecord] = []
        for id in ids {
            if let chosen = try versions(id).first(where: { $0.registration.status != .disabled }), chosen.registration.health != nil { out.append(chosen) }
        }
        return out
    }

    // MARK: health

    /// What the health checks last found, by tool id.
    package func healthStates() throws(Failure) -> [String: ToolHealth] {
        let rows = try withDatabase { db throws(SQLiteError) -> [(String, String)] in
            let stmt = try db.prepare("SELECT id, state FROM tool_health")
            var rows: [(String, String)] = []
            while try stmt.step() { rows.append((stmt.text(0) ?? "", stmt.text(1) ?? "")) }
            return rows
        }
        // A row this burrowd cannot read is as if the tool had not been checked.
        return rows.reduce(into: [:]) { out, row in out[row.0] = try? JSONDecoder().decode(ToolHealth.self, from: Data(row.1.utf8)) }
    }

    /// Keeps (or, nil, forgets) what the health checks found of `id`.
    package func saveHealth(_ id: String, _ health: ToolHealth?) throws(Failure) {
        let text = try health.map { h throws(Failure) in try encode(h) }
        try withDatabase { db throws(SQLiteError) in
            let stmt = try db.cached(text == nil ? "DELETE FROM tool_health WHERE id = ?1" : "INSERT OR REPLACE INTO tool_health(id, state) VALUES (?1, ?2)")
            stmt.bind(1, id)
            if let text { stmt.bind(2, text) }
            try stmt.step()
            stmt.reset()
        }
    }

    /// The pinned definitions of one version: approved, and offered instead (each `ToolPins`' file form).
    package func pins(_ id: String, version: String) throws(Failure) -> (approved: String?, offered: String?) {
        try withDatabase { db throws(SQLiteError) -> (String?, String?) in
            let stmt = try db.cached("SELECT approved, offered FROM tool_pins WHERE id = ?1 AND version = ?2")
            defer { stmt.reset() }
            stmt.bind(1, id)
            stmt.bind(2, version)
            guard try stmt.step() else { return (nil, nil) }
            return (stmt.text(0), stmt.text(1))
        }
    }

    /// Keeps `approved` as the version's pins (what it offered instead is then forgotten).
    package func saveApproved(_ id: String, version: String, _ approved: String) throws(Failure) {
        try durably { db throws(SQLiteError) in
            let stmt = try db.cached("INSERT INTO tool_pins(id, version, approved, offered) VALUES (?1, ?2, ?3, NULL) ON CONFLICT(id, version) DO UPDATE SET approved = ?3, offered = NULL")
            defer { stmt.reset() }
            stmt.bind(1, id)
            stmt.bind(2, version)
            stmt.bind(3, approved)
            try stmt.step()
        }
    }

    /// Told of pins kept by an invocation (a first approval, or what a
    /// server offered instead): `RegistryWrites` takes them to the fleet's
    /// registry. Arguments: id, version, and the first approval (nil: an offer).
    let pinsKept = Mutex<(@Sendable (String, String, String?) -> Void)?>(nil)

    /// Keeps `approved` as the version's first pins, unless some are kept
    /// already; returns those in force (nil: `approved` was kept).
    package func saveFirstApproval(_ id: String, version: String, _ approved: String) throws(Failure) -> String? {
        let inForce = try keepFirstApproval(id, version: version, approved)
        if inForce == nil, let told = pinsKept.withLock({ $0 }) { told(id, version, approved) }
        return inForce
    }

    private func keepFirstApproval(_ id: String, version: String, _ approved: String) throws(Failure) -> String? {
        try durably { db throws(SQLiteError) -> String? in
            try db.transaction { () throws(SQLiteError) -> String? in
                let find = try db.cached("SELECT approved FROM tool_pins WHERE id = ?1 AND version = ?2")
                find.bind(1, id)
                find.bind(2, version)
                let existing = try find.step() ? find.text(0) : nil
                find.reset()
                if let existing { return existing }
                let stmt = try db.cached(
                    "INSERT INTO tool_pins(id, version, approved, offered) VALUES (?1, ?2, ?3, NULL) ON CONFLICT(id, version) DO UPDATE SET approved = ?3 WHERE approved IS NULL")
                stmt.bind(1, id)
                stmt.bind(2, version)
                stmt.bind(3, approved)
                try stmt.step()
                stmt.reset()
                return nil
            }
        }
    }

    /// Puts a version's pins back exactly as they were (nil, nil: none).
    package func restorePins(_ id: String, version: String, approved: String?, offered: String?) throws(Failure) {
        try durably { db throws(SQLiteError) in
            let stmt = try db.cached(
                approved == nil && offered == nil
                    ? "DELETE FROM tool_pins WHERE id = ?1 AND version = ?2"
                    : "INSERT OR REPLACE INTO tool_pins(id, version, approved, offered) VALUES (?1, ?2, ?3, ?4)")
            defer { stmt.reset() }
            stmt.bind(1, id)
            stmt.bind(2, version)
            if approved != nil || offered != nil {
                stmt.bind(3, approved)
                stmt.bind(4, offered)
            }
            try stmt.step()
        }
    }

    /// Keeps what a server offered in place of its pins.
    package func saveOffered(_ id: String, version: String, _ offered: String) throws(Failure) {
        let changed = try withDatabase { db throws(SQLiteError) -> Bool in
            let stmt = try db.cached(
                "INSERT INTO tool_pins(id, version, approved, offered) VALUES (?1, ?2, NULL, ?3) ON CONFLICT(id, version) DO UPDATE SET offered = ?3 WHERE offered IS NOT ?3")
            defer { stmt.reset() }
            stmt.bind(1, id)
            stmt.bind(2, version)
            stmt.bind(3, offered)
            try stmt.step()
            return db.changes > 0
        }
        // The same offer again (every listing that withholds it) is no news for the fleet.
        if changed { pinsKept.withLock { $0 }?(id, version, nil) }
    }

    /// Full-text search over names, ids, descriptions and categories; each word is a prefix.
    package func search(_ text: String, limit: Int) throws(Failure) -> [ToolRecord] {
        let words = text.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).prefix(16)
        guard !words.isEmpty else { return [] }
        // Quoted: the caller's words are never FTS5 syntax.
        let match = words.map { "\"\($0.replacing("\"", with: "\"\""))\"*" }.joined(separator: " ")
        let found = try records(
            """
            SELECT t.registration, t.validation, t.registered_at, t.updated_at, t.registered_by
            FROM tools_fts f JOIN tools t ON t.rowid = f.rowid
            WHERE tools_fts MATCH ?1 ORDER BY f.rank LIMIT ?2
            """,
            bind: {
                $0.bind(1, match)
                $0.bind(2, Int64(limit * 4))
            })
        var seen = Set<String>()
        return Array(found.filter { seen.insert($0.registration.id).inserted }.prefix(limit))
    }

    /// Each category with the number of tools (any version) in it.
    package func categories() throws(Failure) -> [CategoryCount] {
        try withDatabase { db throws(SQLiteError) in
            let stmt = try db.prepare(
                "SELECT c.value, COUNT(DISTINCT t.id) FROM tools t, json_each(t.registration, '$.metadata.categories') c GROUP BY c.value ORDER BY c.value")
            var out: [CategoryCount] = []
            while try stmt.step() { out.append(CategoryCount(category: stmt.text(0) ?? "", tools: Int(stmt.int64(1)))) }
            return out
        }
    }

    private func records(_ sql: String, bind: (SQLiteConnection<SQLiteError>.Statement) -> Void) throws(Failure) -> [ToolRecord] {
        let rows = try withDatabase { db throws(SQLiteError) in
            let stmt = try db.prepare(sql)
            bind(stmt)
            var rows: [(String, String, String, String, String)] = []
            while try stmt.step() { rows.append((stmt.text(0) ?? "", stmt.text(1) ?? "", stmt.text(2) ?? "", stmt.text(3) ?? "", stmt.text(4) ?? "")) }
            return rows
        }
        var out: [ToolRecord] = []
        for row in rows {
            do {
                let decoder = JSONDecoder()
                out.append(
                    ToolRecord(
                        registration: try decoder.decode(ToolRegistration.self, from: Data(row.0.utf8)),
                        registeredAt: row.2, updatedAt: row.3, registeredBy: row.4,
                        validation: try decoder.decode(ValidationReport.self, from: Data(row.1.utf8))))
            } catch {
                throw Failure(description: "the registry \(path): a stored registration cannot be read: \(error)")
            }
        }
        return out
    }

    /// The highest version of each id, ordered by id.
    static func latest(_ records: [ToolRecord]) -> [ToolRecord] {
        var best: [String: ToolRecord] = [:]
        for r in records {
            if let b = best[r.registration.id], !VersionOrder.less(b.registration.metadata.version, r.registration.metadata.version) { continue }
            best[r.registration.id] = r
        }
        return best.values.sorted { $0.registration.id < $1.registration.id }
    }

    // MARK: invocation results

    package func saveInvocation(_ result: InvocationResult, principal: String, finished: Bool) throws(Failure) {
        let text = try encode(result)
        try withDatabase { db throws(SQLiteError) in
            let stmt = try db.cached(
                """
                INSERT INTO invocations(id, tool, version, principal, state, started_at, finished_at, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                ON CONFLICT(id) DO UPDATE SET state = ?5, finished_at = ?7, result = ?8
                """)
            stmt.bind(1, result.id)
            stmt.bind(2, result.tool)
            stmt.bind(3, result.version)
            stmt.bind(4, principal)
            stmt.bind(5, result.state.rawValue)
            stmt.bind(6, AuditClock.now())
            stmt.bind(7, finished ? AuditClock.now() : nil)
            stmt.bind(8, text)
            try stmt.step()
            stmt.reset()
        }
    }

    /// What an idempotency key holds when a request claims it.
    package enum IdempotencyClaim: Equatable, Sendable {
        /// New: this request runs, and the key is its.
        case claimed
        /// Taken by an earlier request: its request's digest, and its invocation once it has one.
        case taken(digest: String, invocation: String?)
    }

    /// Claims `key` for `principal`'s request (`digest`: what it asks), in
    /// one statement, so two retries at once cannot both run. A key is
    /// kept while its run goes on and until its result is older than
    /// `retention` (microseconds, the results' own); a key whose result is
    /// gone is forgotten. A key already taken is answered by a read alone
    /// (retries that poll write nothing).
    package func claimIdempotencyKey(principal: String, key: String, digest: String, retention: Int64) throws(Failure) -> IdempotencyClaim {
        try withDatabase { db throws(SQLiteError) in
            func taken() throws(SQLiteError) -> IdempotencyClaim? {
                let found = try db.cached("SELECT digest, invocation FROM idempotency_keys WHERE principal = ?1 AND key = ?2")
                defer { found.reset() }
                found.bind(1, principal)
                found.bind(2, key)
                return try found.step() ? .taken(digest: found.text(0) ?? "", invocation: found.text(1)) : nil
            }
            let cutoff = AuditClock.now() - retention
            if let claim = try taken() {
                // Still answerable (its run goes on, or its result is kept): the earlier request's.
                guard try expired(db, principal: principal, key: key, cutoff: cutoff) else { return claim }
            }
            return try db.transaction { () throws(SQLiteError) -> IdempotencyClaim in
                let expire = try db.cached(
                    """
                    DELETE FROM idempotency_keys WHERE created_at < ?1 AND NOT EXISTS
                        (SELECT 1 FROM invocations i WHERE i.id = idempotency_keys.invocation AND (i.finished_at IS NULL OR i.finished_at >= ?1))
                    """)
                expire.bind(1, cutoff)
                _ = try expire.step()
                expire.reset()
                let insert = try db.cached("INSERT OR IGNORE INTO idempotency_keys(principal, key, digest, invocation, created_at) VALUES (?1, ?2, ?3, NULL, ?4)")
                insert.bind(1, principal)
                insert.bind(2, key)
                insert.bind(3, digest)
                insert.bind(4, AuditClock.now())
                _ = try insert.step()
                insert.reset()
                if db.changes == 1 { return .claimed }
                return try taken() ?? .claimed
            }
        }
    }

    /// Whether a key's claim has lapsed: claimed before `cutoff`, and its
    /// invocation neither running nor finished after `cutoff`.
    private func expired(_ db: SQLiteConnection<SQLiteError>, principal: String, key: String, cutoff: Int64) throws(SQLiteError) -> Bool {
        let stmt = try db.cached(
            """
            SELECT 1 FROM idempotency_keys k WHERE k.principal = ?1 AND k.key = ?2 AND k.created_at < ?3 AND NOT EXISTS
                (SELECT 1 FROM invocations i WHERE i.id = k.invocation AND (i.finished_at IS NULL OR i.finished_at >= ?3))
            """)
        defer { stmt.reset() }
        stmt.bind(1, principal)
        stmt.bind(2, key)
        stmt.bind(3, cutoff)
        return try stmt.step()
    }

    /// At start, no run is going on: a key never bound to an invocation,
    /// or bound to one whose result was never stored (burrowd ended in
    /// between), is free again. Returns how many were.
    @discardableResult
    package func releaseUnboundIdempotencyKeys() throws(Failure) -> Int {
        try withDatabase { db throws(SQLiteError) in
            try db.execute("DELETE FROM idempotency_keys WHERE invocation IS NULL OR invocation NOT IN (SELECT id FROM invocations)")
            return db.changes
        }
    }

    /// The invocation a claimed key answers with, once there is one.
    package func bindIdempotencyKey(principal: String, key: String, invocation: String) throws(Failure) {
        try withDatabase { db throws(SQLiteError) in
            let stmt = try db.cached("UPDATE idempotency_keys SET invocation = ?3 WHERE principal = ?1 AND key = ?2")
            stmt.bind(1, principal)
            stmt.bind(2, key)
            stmt.bind(3, invocation)
            _ = try stmt.step()
            stmt.reset()
        }
    }

    /// A claimed key whose request never became an invocation (refused): free for a retry.
    package func releaseIdempotencyKey(principal: String, key: String) throws(Failure) {
        try withDatabase { db throws(SQLiteError) in
            let stmt = try db.cached("DELETE FROM idempotency_keys WHERE principal = ?1 AND key = ?2 AND invocation IS NULL")
            stmt.bind(1, principal)
            stmt.bind(2, key)
            _ = try stmt.step()
            stmt.reset()
        }
    }

    /// A stored result and the principal who started it.
    package func invocation(_ id: String) throws(Failure) -> (InvocationResult, String)? {
        let row = try withDatabase { db throws(SQLiteError) -> (String, String)? in
            let stmt = try db.cached("SELECT result, principal FROM invocations WHERE id = ?1")
            stmt.bind(1, id)
            defer { stmt.reset() }
            return try stmt.step() ? (stmt.text(0) ?? "", stmt.text(1) ?? "") : nil
        }
        guard let row else { return nil }
        do {
            return (try JSONDecoder().decode(InvocationResult.self, from: Data(row.0.utf8)), row.1)
        } catch {
            throw Failure(description: "the registry \(path): stored result \(id) cannot be read: \(error)")
        }
    }

    /// Results left `running` by a daemon that is gone become `failed`; returns their ids.
    package func failAbandoned(reason: String) throws(Failure) -> [String] {
        let rows = try withDatabase { db throws(SQLiteError) -> [(String, String)] in
            let stmt = try db.prepare("SELECT id, result FROM invocations WHERE state = 'running'")
            var rows: [(String, String)] = []
            while try stmt.step() { rows.append((stmt.text(0) ?? "", stmt.text(1) ?? "")) }
            return rows
        }
        var ids: [String] = []
        for (id, text) in rows {
            guard var result = try? JSONDecoder().decode(InvocationResult.self, from: Data(text.utf8)) else { continue }
            result.state = .failed
            result.finishedAt = AuditClock.format(AuditClock.now())
            result.error = .init(code: .supervisorLost, message: reason)
            try saveInvocation(result, principal: "", finished: true)
            ids.append(id)
        }
        return ids
    }

    /// Deletes results finished more than `age` ago.
    package func pruneInvocations(olderThanMicroseconds age: Int64) throws(Failure) {
        try withDatabase { db throws(SQLiteError) in
            let stmt = try db.cached("DELETE FROM invocations WHERE finished_at IS NOT NULL AND finished_at < ?1")
            stmt.bind(1, AuditClock.now() - age)
            try stmt.step()
            stmt.reset()
        }
    }

    private func encode(_ value: some Encodable) throws(Failure) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw Failure(description: "cannot encode a registry row: \(error)")
        }
    }
}
