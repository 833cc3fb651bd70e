package import BurrowSQLite

/// Why the audit store could not do what was asked.
package enum AuditError: Error, Sendable, Equatable, CustomStringConvertible {
    /// SQLite failed (open, read, write, commit).
    case database(String)
    /// The file's schema is newer than this build understands.
    case newerSchema(found: Int, supported: Int)
    /// The file, its directory or their permissions are unusable.
    case file(String)
    /// No audit database exists at the path.
    case missing(String)

    package var description: String {
        switch self {
        case .database(let m): return "audit database: \(m)"
        case .newerSchema(let found, let supported):
            return "audit database schema \(found) was written by a newer burrow (this one knows up to \(supported)): upgrade burrow"
        case .file(let m): return "audit database: \(m)"
        case .missing(let path): return "no audit database at \(path) (nothing has been recorded there yet; see --audit-db)"
        }
    }
}

/// The audit store's SQLite connection: its failures are `AuditError.database`.
package typealias AuditDatabase = SQLiteConnection<AuditError>

extension SQLiteConnection where Failure == AuditError {
    package convenience init(path: String, mode: Mode) throws(AuditError) {
        try self.init(path: path, mode: mode, failure: AuditError.database)
    }
}
