import BurrowSQLite

/// The store's schema, one migration per version (`PRAGMA user_version`).
/// Migrations only ever append: a released one is never edited.
enum AuditSchema {
    static let migrations: [String] = [
        // 1: the hash-chained event table, open invocations, pruning checkpoints.
        """
        CREATE TABLE events (
            sequence INTEGER PRIMARY KEY,
            time INTEGER NOT NULL,
            tool TEXT NOT NULL,
            type TEXT NOT NULL,
            principal TEXT NOT NULL,
            uid INTEGER,
            invocation TEXT,
            profile_digest TEXT,
            sandbox_level TEXT,
            host TEXT NOT NULL,
            details TEXT NOT NULL,
            previous_hash BLOB NOT NULL,
            hash BLOB NOT NULL
        );
        CREATE INDEX events_by_tool ON events (tool, time);
        CREATE INDEX events_by_time ON events (time);
        CREATE INDEX events_by_invocation ON events (invocation) WHERE invocation IS NOT NULL;
        CREATE TABLE open_invocations (
            invocation TEXT PRIMARY KEY,
            sequence INTEGER NOT NULL,
            tool TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE checkpoints (
            id INTEGER PRIMARY KEY,
            time INTEGER NOT NULL,
            through_sequence INTEGER NOT NULL,
            through_hash BLOB NOT NULL,
            deleted INTEGER NOT NULL,
            previous_hash BLOB NOT NULL,
            hash BLOB NOT NULL
        );
        """,
        // 2: a user reading its own runs (`[audit] user_reads_own`) finds them without a scan.
        """
        CREATE INDEX events_by_uid ON events (uid, sequence) WHERE uid IS NOT NULL;
        """,
        // 3: events a registry reported (`POST /api/v1/security/audit`) say who: never taken for burrowd's own.
        """
        ALTER TABLE events ADD COLUMN origin TEXT;
        """,
        // 4: how far a central copy (PostgreSQL) holds the log: pruning keeps what it does not yet.
        """
        CREATE TABLE shipped (
            target TEXT PRIMARY KEY,
            through_sequence INTEGER NOT NULL
        ) WITHOUT ROWID;
        """,
    ]

    static var version: Int { migrations.count }

    /// Brings a read-write connection up to `version`, in one transaction per step.
    static func migrate(_ db: AuditDatabase) throws(AuditError) {
        let found = Int(try db.pragma("user_version") ?? "0") ?? 0
        guard found <= version else { throw .newerSchema(found: found, supported: version) }
        guard found < version else { return }
        // Free pages of pruned rows go back to the file system; only settable before the first table.
        if found == 0 { try db.execute("PRAGMA auto_vacuum = INCREMENTAL") }
        try db.transaction { () throws(AuditError) in
            // Another process may have migrated while this one waited for the lock.
            let now = Int(try db.pragma("user_version") ?? "0") ?? 0
            for v in now..<version {
                try db.execute(migrations[v])
                try db.execute("PRAGMA user_version = \(v + 1)")
            }
        }
    }

    /// A read-only connection can only read the current schema.
    static func check(_ db: AuditDatabase) throws(AuditError) {
        let found = Int(try db.pragma("user_version") ?? "0") ?? 0
        guard found <= version else { throw .newerSchema(found: found, supported: version) }
        guard found == version else {
            throw .database("\(db.path) has schema \(found), this burrow reads \(version): open it once for writing (as root, e.g. `burrow audit verify`) to migrate it")
        }
    }
}
