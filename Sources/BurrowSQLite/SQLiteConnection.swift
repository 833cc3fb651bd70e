import CSQLite

#if canImport(Glibc)
    import Glibc
#endif

/// SQLITE_TRANSIENT: SQLite copies bound text and blobs.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// The closure `SQLiteConnection.onWALCommit` installs (outside the generic
/// class: a C callback cannot name its parameters).
private final class WALHook {
    let body: @Sendable (Int) -> Void
    init(_ body: @escaping @Sendable (Int) -> Void) { self.body = body }
}

/// A failure of SQLite, as its message says it (with the SQL it was running).
package struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
}

/// One SQLite connection, used by one thread at a time (its owner keeps it
/// under a lock). It throws its owner's own error type, made from SQLite's
/// message by `failure`: the audit store's `AuditError`, the registry's
/// `SQLiteError`.
package final class SQLiteConnection<Failure: Error>: @unchecked Sendable {
    package let path: String
    private let handle: OpaquePointer
    private let failure: (String) -> Failure

    package enum Mode {
        case readOnly
        case readWrite
    }

    package init(path: String, mode: Mode, failure: @escaping (String) -> Failure) throws(Failure) {
        var db: OpaquePointer?
        let flags = (mode == .readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close(db)
            throw failure("cannot open \(path): \(message)")
        }
        self.failure = failure
        self.path = path
        self.handle = db
        sqlite3_extended_result_codes(db, 1)
        // Other writers (another burrow run, the daemon) hold the write lock
        // for one commit at a time: wait for them rather than fail.
        sqlite3_busy_timeout(db, 30_000)
    }

    deinit {
        cache.removeAll()
        sqlite3_close_v2(handle)
    }

    package var lastError: String { String(cString: sqlite3_errmsg(handle)) }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    package var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs SQL without results (tests use it to tamper with a log).
    package func execute(_ sql: String) throws(Failure) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        guard rc == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? lastError
            sqlite3_free(message)
            throw failure("\(text) (in: \(sql.prefix(80)))")
        }
    }

    private var cache: [String: Statement] = [:]

    /// A prepared statement kept for reuse (the append path), reset and unbound.
    package func cached(_ sql: String) throws(Failure) -> Statement {
        if let stmt = cache[sql] {
            stmt.reset()
            return stmt
        }
        let stmt = try prepare(sql)
        cache[sql] = stmt
        return stmt
    }

    package func prepare(_ sql: String) throws(Failure) -> Statement {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else {
            throw failure("\(lastError) (in: \(sql.prefix(80)))")
        }
        return Statement(handle: stmt, connection: self)
    }

    /// Runs `body` inside BEGIN IMMEDIATE … COMMIT; rolls back when it throws.
    package func transaction<T>(_ body: () throws(Failure) -> T) throws(Failure) -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            // A cached statement left mid-result would keep a read snapshot open.
            for stmt in cache.values { stmt.reset() }
            try execute("COMMIT")
            return result
        } catch {
            for stmt in cache.values { stmt.reset() }
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Keeps the -wal file when the last connection closes (readers that cannot create it can still open the log).
    package func persistWriteAheadLog() {
        var on: Int32 = 1
        sqlite3_file_control(handle, "main", SQLITE_FCNTL_PERSIST_WAL, &on)
    }

    /// Calls `body` with the WAL's size in pages after each commit on this
    /// connection, in place of SQLite's automatic checkpoint (which runs on
    /// the committing thread): the owner checkpoints elsewhere.
    package func onWALCommit(_ body: @escaping @Sendable (Int) -> Void) {
        let box = WALHook(body)
        walHook = box
        sqlite3_wal_hook(
            handle,
            { context, _, _, pages in
                if let context { Unmanaged<WALHook>.fromOpaque(context).takeUnretainedValue().body(Int(pages)) }
                return SQLITE_OK
            }, Unmanaged.passUnretained(box).toOpaque())
    }

    private var walHook: WALHook?

    /// A passive checkpoint: copies what it can of the WAL into the database
    /// without waiting for (or blocking) any writer or reader.
    /// - Returns: the WAL's frames and how many of them are now in the database.
    @discardableResult
    package func checkpoint() throws(Failure) -> (frames: Int, checkpointed: Int) {
        var frames: Int32 = 0
        var done: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, &frames, &done)
        guard rc == SQLITE_OK else { throw failure("checkpoint of \(path): \(lastError)") }
        return (Int(frames), Int(done))
    }

    /// Copies this database into `destination` as one consistent snapshot
    /// (SQLite's online backup: one step, so it reads a single snapshot;
    /// in WAL mode writers go on meanwhile), replacing what `destination`
    /// held. Writing into an open database is how a restore replaces it
    /// under SQLite's own locks, WAL included, never by renaming a file
    /// over one that other connections (or a stale -wal) still hold.
    package func copy(into destination: SQLiteConnection) throws(Failure) {
        guard let backup = sqlite3_backup_init(destination.handle, "main", handle, "main") else {
            throw failure("cannot copy \(path) into \(destination.path): \(destination.lastError)")
        }
        var rc: Int32
        var waited: Int32 = 0
        repeat {
            rc = sqlite3_backup_step(backup, -1)
            // Another connection holds a lock for a moment: wait as busy_timeout would (30 s at most).
            if rc == SQLITE_BUSY || rc == SQLITE_LOCKED {
                guard waited < 30_000 else { break }
                sqlite3_sleep(50)
                waited += 50
            }
        } while rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED
        let finished = sqlite3_backup_finish(backup)
        guard rc == SQLITE_DONE, finished == SQLITE_OK else {
            throw failure("copying \(path) into \(destination.path): \(String(cString: sqlite3_errstr(rc == SQLITE_DONE ? finished : rc)))")
        }
    }

    /// A new, empty database file at `path` (created here, mode 0600, never
    /// through a symlink, never over an existing file), open for writing.
    package static func create(_ path: String, failure: @escaping (String) -> Failure) throws(Failure) -> SQLiteConnection {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("cannot create \(path): \(String(cString: strerror(errno)))") }
        close(fd)
        return try SQLiteConnection(path: path, mode: .readWrite, failure: failure)
    }

    /// A PRAGMA's single value.
    package func pragma(_ name: String) throws(Failure) -> String? {
        let stmt = try prepare("PRAGMA \(name)")
        return try stmt.step() ? stmt.text(0) : nil
    }

    package final class Statement {
        private let handle: OpaquePointer
        private let connection: SQLiteConnection<Failure>

        fileprivate init(handle: OpaquePointer, connection: SQLiteConnection<Failure>) {
            self.handle = handle
            self.connection = connection
        }

        deinit { sqlite3_finalize(handle) }

        /// Clears bindings and resets the statement for another run.
        package func reset() {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }

        package func bind(_ index: Int32, _ value: Int64?) {
            if let value { sqlite3_bind_int64(handle, index, value) } else { sqlite3_bind_null(handle, index) }
        }

        package func bind(_ index: Int32, _ value: String?) {
            if let value { sqlite3_bind_text(handle, index, value, -1, transient) } else { sqlite3_bind_null(handle, index) }
        }

        package func bind(_ index: Int32, _ value: [UInt8]) {
            _ = value.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), transient) }
        }

        /// Steps once: true when a row is available, false when done.
        @discardableResult
        package func step() throws(Failure) -> Bool {
            switch sqlite3_step(handle) {
            case SQLITE_ROW: return true
            case SQLITE_DONE: return false
            default: throw connection.failure(connection.lastError)
            }
        }

        package func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

        package func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

        /// The column's exact bytes (TEXT or BLOB), whatever their encoding.
        package func bytes(_ column: Int32) -> [UInt8] {
            guard let p = sqlite3_column_blob(handle, column) else { return [] }
            let n = Int(sqlite3_column_bytes(handle, column))
            return Array(UnsafeRawBufferPointer(start: p, count: n))
        }

        /// TEXT as a String. Burrow writes only UTF-8; bytes that are not
        /// (a foreign writer) come back as `\xNN` escapes, never silently repaired.
        package func text(_ column: Int32) -> String? {
            isNull(column) ? nil : decodeEscapingInvalid(bytes(column))
        }
    }
}

/// UTF-8 text with every byte that is not part of a valid sequence written as `\xNN`.
package func decodeEscapingInvalid(_ bytes: [UInt8]) -> String {
    if let valid = String(validating: bytes, as: UTF8.self) { return valid }
    var out = ""
    var i = 0
    while i < bytes.count {
        let lead = bytes[i]
        let length = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 0
        if length > 0, i + length <= bytes.count, let s = String(validating: bytes[i..<(i + length)], as: UTF8.self) {
            out += s
            i += length
        } else {
            let hex = String(lead, radix: 16)
            out += "\\x" + (hex.count == 1 ? "0" : "") + hex
            i += 1
        }
    }
    return out
}

extension SQLiteConnection where Failure == SQLiteError {
    /// A connection that throws SQLite's message as it is.
    package convenience init(path: String, mode: Mode) throws(SQLiteError) {
        try self.init(path: path, mode: mode, failure: SQLiteError.init)
    }
}
