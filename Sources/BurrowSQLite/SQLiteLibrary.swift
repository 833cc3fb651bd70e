import CSQLite

/// Facts about the linked SQLite library, which the audit store relies on
/// (WAL journaling needs 3.7, serialized threading mode for the daemon).
package enum SQLiteLibrary {
    /// The library's version, e.g. "3.40.1".
    package static var version: String { String(cString: sqlite3_libversion()) }

    /// Whether the library was built thread-safe (SQLITE_THREADSAFE != 0).
    package static var isThreadSafe: Bool { sqlite3_threadsafe() != 0 }
}
