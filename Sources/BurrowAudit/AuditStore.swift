import BurrowJSON
import BurrowSQLite
import BurrowSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The audit log: one SQLite file in WAL mode, shared by every `burrow run`
/// and the daemon. An event is durable when `append` returns (synchronous=FULL:
/// the WAL is fsynced at each commit). Concurrent appends in one process are
/// committed together (group commit: one transaction and one fsync for all
/// that arrived while the previous commit ran); processes take turns on
/// SQLite's write lock. Every event is redacted, then chained to its
/// predecessor by hash inside the write transaction, so the chain is total
/// across processes.
package final class AuditStore: @unchecked Sendable {
    package struct Configuration: Sendable {
        package var path: String
        /// The group that may read the database (created 0640 root:group);
        /// nil, or a group that does not exist, leaves it readable by root only.
        package var readerGroup: String?
        package var redactor: Redactor
        /// AnomalousActivity when a tool exceeds this many SecurityViolation and
        /// PermissionDenied events within `window`; nil disables it.
        package var anomaly: AnomalyRule?
        /// Where the WAL is copied back into the database (a writer only).
        package var checkpoints: Checkpoints

        package init(path: String, readerGroup: String? = nil, redactor: Redactor, anomaly: AnomalyRule? = nil, checkpoints: Checkpoints = .atCommit) {
            self.path = path
            self.readerGroup = readerGroup
            self.redactor = redactor
            self.anomaly = anomaly
            self.checkpoints = checkpoints
        }
    }

    /// Checkpoints never change what is durable (a commit is durable once
    /// the WAL holding it is synced); they decide who pays for copying the
    /// WAL back and how often.
    package enum Checkpoints: Sendable, Equatable {
        /// By the committing thread, every 32 pages: a short-lived `burrow
        /// run` keeps the WAL short for the next process.
        case atCommit
        /// By a thread of the store's own, on its own connection, once the
        /// WAL holds `pages` pages: a long-lived writer (burrowd) whose
        /// commits then never wait for a checkpoint's copy and fsyncs, and
        /// whose hot pages are copied once per many commits.
        case background(pages: Int)
    }

    package struct AnomalyRule: Sendable, Equatable {
        package var threshold: Int
        package var windowMicroseconds: Int64

        package init(threshold: Int, windowMicroseconds: Int64) {
            self.threshold = threshold
            self.windowMicroseconds = windowMicroseconds
        }
    }

    package enum Access: Sendable {
        /// Read and append; creates the file (and a missing parent directory) when absent.
        case write
        /// Query and verify only (an auditor); the file must exist.
        case read
    }

    package let configuration: Configuration
    package let access: Access
    /// Used by the commit leader only (or inside `commits.exclusive`).
    private let writer: AuditDatabase?
    var writerConnection: AuditDatabase? { writer }
    /// Queries, one at a time.
    private let reader: Mutex<AuditDatabase?>
    private let commits = GroupCommit()
    /// With `Checkpoints.background`: the thread that checkpoints.
    private var checkpointer: BackgroundCheckpointer?
    /// Checkpoints the background thread has run (tests).
    package var backgroundCheckpoints: Int { checkpointer?.runs ?? 0 }

    deinit { checkpointer?.stop() }

    package var path: String { configuration.path }

    package init(_ configuration: Configuration, access: Access) throws(AuditError) {
        self.configuration = configuration
        self.access = access
        switch access {
        case .write:
            try AuditStore.prepareFile(configuration.path, group: configuration.readerGroup)
            // Writers set the file up one at a time: switching a new file to
            // WAL needs SQLite's exclusive lock, and a second process racing
            // for it gets SQLITE_BUSY at once instead of waiting. The lock is
            // a flock on the directory: closing any descriptor of the database
            // file itself would drop SQLite's fcntl locks on it.
            let directory = configuration.path.contains("/") ? String(configuration.path[..<(configuration.path.lastIndex(of: "/") ?? configuration.path.startIndex)]) : "."
            let setup = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard setup >= 0 else { throw .file("cannot open \(directory): \(String(cString: strerror(errno)))") }
            defer { _ = Glibc.close(setup) }
            while flock(setup, LOCK_EX) != 0 && errno == EINTR {}
            let db = try AuditDatabase(path: configuration.path, mode: .readWrite)
            // WAL: readers never block the writer; FULL: each commit fsyncs the WAL.
            guard try db.pragma("journal_mode = WAL")?.lowercased() == "wal" else {
                throw .database("\(configuration.path): cannot switch to WAL journaling")
            }
            try db.execute("PRAGMA synchronous = FULL")
            // Keep -wal and -shm after the last writer closes: readers in the
            // auditor group cannot create them in a root-owned directory.
            db.persistWriteAheadLog()
            // Each `burrow run` is a new process that exits without closing:
            // the next one rebuilds the WAL index by reading every frame, so
            // keep the WAL short (checkpoint every 32 pages, truncate it then).
            try db.execute("PRAGMA wal_autocheckpoint = 32")
            try db.execute("PRAGMA journal_size_limit = 1048576")
            try AuditSchema.migrate(db)
            if case .background(let pages) = configuration.checkpoints {
                let checkpointer = try BackgroundCheckpointer(path: configuration.path, pages: pages)
                db.onWALCommit { checkpointer.walHolds($0) }
                self.checkpointer = checkpointer
            }
            writer = db
            reader = Mutex(nil)
        case .read:
            var st = stat()
            guard lstat(configuration.path, &st) == 0 else { throw .missing(configuration.path) }
            let db = try AuditDatabase(path: configuration.path, mode: .readOnly)
            try AuditSchema.check(db)
            writer = nil
            reader = Mutex(db)
        }
    }

    /// Appends events; returns them as stored (sequence, time, redacted
    /// details, hashes) once they are durable, followed by any
    /// AnomalousActivity they triggered.
    /// - Parameter secrets: literal values to redact besides the patterns (the tool's environment values).
    @discardableResult
    package func append(_ events: [AuditEvent], secrets: [String] = []) throws(AuditError) -> [AuditEvent] {
        guard let writer else { throw .file("\(path) is open read-only") }
        return try commits.submit(GroupCommit.Item(events: events, secrets: secrets)) { batch in
            self.commit(batch, on: writer)
        }
    }

    /// Appends `event` (a terminal event) only if its invocation is still open:
    /// returns nil when another supervisor closed it first.
    package func appendIfOpen(_ event: AuditEvent) throws(AuditError) -> AuditEvent? {
        try appendIfOpen([event])?.first
    }

    /// Appends `events` (one invocation's, its terminal event last) in one
    /// transaction, only if the invocation is still open; nil when it is not.
    package func appendIfOpen(_ events: [AuditEvent]) throws(AuditError) -> [AuditEvent]? {
        guard let writer else { throw .file("\(path) is open read-only") }
        guard let invocation = events.first?.context.invocationID, events.allSatisfy({ $0.context.invocationID == invocation }) else {
            throw .database("appendIfOpen needs events of one invocation")
        }
        return try commits.exclusive { () throws(AuditError) -> [AuditEvent]? in
            try writer.transaction { () throws(AuditError) -> [AuditEvent]? in
                let stmt = try writer.cached("SELECT 1 FROM open_invocations WHERE invocation = ?")
                stmt.bind(1, invocation)
                guard try stmt.step() else { return nil }
                var head = try self.head(writer)
                var out: [AuditEvent] = []
                for event in events { out += try self.insert(event, secrets: [], on: writer, head: &head) }
                return out
            }
        }
    }

    /// `events` as the log would store them: details redacted (patterns and `secrets`).
    package func redacted(_ events: [AuditEvent], secrets: [String]) -> [AuditEvent] {
        events.map { e in
            var e = e
            e.details = configuration.redactor.redact(e.details, secrets: secrets)
            return e
        }
    }

    /// Invocations with a ToolInvoked and no terminal event yet: running, or
    /// left by a supervisor that died.
    package func openInvocations() throws(AuditError) -> [OpenInvocation] {
        try withReader { db throws(AuditError) in
            let stmt = try db.cached(
                "SELECT o.invocation, o.tool, e.principal, e.uid, e.profile_digest, e.sandbox_level, e.time FROM open_invocations o LEFT JOIN events e ON e.sequence = o.sequence ORDER BY o.sequence")
            var out: [OpenInvocation] = []
            while try stmt.step() {
                out.append(
                    OpenInvocation(
                        invocationID: stmt.text(0) ?? "", tool: stmt.text(1) ?? "", principal: stmt.text(2), uid: stmt.isNull(3) ? nil : UInt32(truncatingIfNeeded: stmt.int64(3)),
                        profileDigest: stmt.text(4), sandboxLevel: stmt.text(5), invokedAt: stmt.isNull(6) ? nil : stmt.int64(6)))
            }
            return out
        }
    }

    /// Runs `body` on the query connection (the writer's, in write mode, between commits).
    func withReader<T>(_ body: (AuditDatabase) throws(AuditError) -> T) throws(AuditError) -> T {
        if let writer {
            return try commits.exclusive { () throws(AuditError) -> T in try body(writer) }
        }
        return try reader.withLock { db throws(AuditError) -> T in
            guard let db else { throw AuditError.file("no connection") }
            return try body(db)
        }
    }

    // MARK: - Commit

    private func commit(_ batch: [GroupCommit.Item], on db: AuditDatabase) -> Result<[[AuditEvent]], AuditError> {
        do {
            return .success(
                try db.transaction { () throws(AuditError) -> [[AuditEvent]] in
                    var head = try head(db)
                    var out: [[AuditEvent]] = []
                    for item in batch {
                        var stored: [AuditEvent] = []
                        for event in item.events { stored += try insert(event, secrets: item.secrets, on: db, head: &head) }
                        out.append(stored)
                    }
                    return out
                })
        } catch {
            return .failure(error)
        }
    }

    typealias Head = (sequence: Int64, hash: [UInt8])

    /// The last row of the chain: the newest event, else the newest checkpoint's cut, else genesis.
    func head(_ db: AuditDatabase) throws(AuditError) -> Head {
        // Reset after reading: a statement left on a row keeps its read
        // snapshot, and a reader would never see another commit.
        let last = try db.cached("SELECT sequence, hash FROM events ORDER BY sequence DESC LIMIT 1")
        defer { last.reset() }
        if try last.step() { return (last.int64(0), last.bytes(1)) }
        let cut = try db.cached("SELECT through_sequence, through_hash FROM checkpoints ORDER BY id DESC LIMIT 1")
        defer { cut.reset() }
        if try cut.step() { return (cut.int64(0), cut.bytes(1)) }
        return (0, AuditChain.genesis)
    }

    /// Inserts one event (and the AnomalousActivity it may trigger) after `head`.
    private func insert(_ event: AuditEvent, secrets: [String], on db: AuditDatabase, head: inout Head) throws(AuditError) -> [AuditEvent] {
        var e = event
        e.details = configuration.redactor.redact(event.details, secrets: secrets)
        guard case .object = e.details else { throw .database("event details must be a JSON object") }
        e.sequence = head.sequence + 1
        let detailsText = e.details.canonicalText
        let row = AuditChain.Row(
            sequence: e.sequence, time: e.time, tool: Array(e.tool.utf8), type: Array(e.type.rawValue.utf8),
            principal: Array(e.context.principal.utf8), uid: e.context.uid.map(Int64.init),
            invocation: e.context.invocationID.map { Array($0.utf8) }, profileDigest: e.context.profileDigest.map { Array($0.utf8) },
            sandboxLevel: e.context.sandboxLevel.map { Array($0.utf8) }, host: Array(e.context.host.utf8), details: Array(detailsText.utf8),
            origin: e.origin.map { Array($0.utf8) })
        let hash = AuditChain.link(previous: head.hash, row: row)
        let stmt = try db.cached(
            "INSERT INTO events (sequence, time, tool, type, principal, uid, invocation, profile_digest, sandbox_level, host, details, previous_hash, hash, origin) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        )
        stmt.bind(1, e.sequence)
        stmt.bind(2, e.time)
        stmt.bind(3, e.tool)
        stmt.bind(4, e.type.rawValue)
        stmt.bind(5, e.context.principal)
        stmt.bind(6, e.context.uid.map(Int64.init))
        stmt.bind(7, e.context.invocationID)
        stmt.bind(8, e.context.profileDigest)
        stmt.bind(9, e.context.sandboxLevel)
        stmt.bind(10, e.context.host)
        stmt.bind(11, detailsText)
        stmt.bind(12, head.hash)
        stmt.bind(13, hash)
        stmt.bind(14, e.origin)
        try stmt.step()
        e.previousHash = AuditChain.hex(head.hash)
        e.hash = AuditChain.hex(hash)
        head = (e.sequence, hash)

        if let invocation = e.context.invocationID, e.origin == nil {
            if e.type == .toolInvoked {
                let open = try db.cached("INSERT OR REPLACE INTO open_invocations (invocation, sequence, tool) VALUES (?,?,?)")
                open.bind(1, invocation)
                open.bind(2, e.sequence)
                open.bind(3, e.tool)
                try open.step()
            } else if e.type.isTerminal {
                let close = try db.cached("DELETE FROM open_invocations WHERE invocation = ?")
                close.bind(1, invocation)
                try close.step()
            }
        }
        var out = [e]
        if let anomaly = try anomalyFollowing(e, on: db) { out += try insert(anomaly, secrets: [], on: db, head: &head) }
        return out
    }

    /// The AnomalousActivity `event` triggers: the first violation or denial
    /// beyond the threshold within the window, once per window and tool (an
    /// aggregated denial counts as the refusals it stands for).
    private func anomalyFollowing(_ event: AuditEvent, on db: AuditDatabase) throws(AuditError) -> AuditEvent? {
        // Only what burrowd witnessed counts toward an anomaly it reports.
        guard let rule = configuration.anomaly, event.origin == nil, event.type == .securityViolation || event.type == .permissionDenied else { return nil }
        let since = event.time - rule.windowMicroseconds
        // An aggregated PermissionDenied stands for the `repeated` refusals it counts.
        let count = try db.cached(
            """
            SELECT count(*) - count(json_extract(details, '$.repeated')) + COALESCE(SUM(json_extract(details, '$.repeated')), 0)
            FROM events WHERE tool = ? AND time >= ? AND type IN ('SecurityViolation', 'PermissionDenied') AND origin IS NULL
            """)
        count.bind(1, event.tool)
        count.bind(2, since)
        try count.step()
        let seen = count.int64(0)
        guard seen > rule.threshold else { return nil }
        // Burrow's own report only: a reported AnomalousActivity never silences one.
        let reported = try db.cached("SELECT 1 FROM events WHERE tool = ? AND time >= ? AND type = 'AnomalousActivity' AND origin IS NULL LIMIT 1")
        reported.bind(1, event.tool)
        reported.bind(2, since)
        guard try !reported.step() else { return nil }
        let details = AnomalyDetails(
            count: seen, threshold: rule.threshold, windowSeconds: rule.windowMicroseconds / 1_000_000, since: AuditClock.format(since), trigger: event.sequence)
        return AuditEvent(tool: event.tool, context: event.context, details: details, time: event.time)
    }

    // MARK: - File

    /// Creates the database file 0640 root:`group` (and a missing parent
    /// directory 0750) so only root and the readers' group can read it; SQLite
    /// gives its -wal and -shm files the same owner and mode. An existing
    /// file is left as its owner set it.
    package static func prepareFile(_ path: String, group: String?) throws(AuditError) {
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFREG else { throw .file("\(path) is not a regular file") }
            return
        }
        let gid = group.flatMap(UserDatabase.groupID)
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !parent.isEmpty, stat(parent, &st) != 0 {
            // Missing ancestors are created 0755, the database's own directory 0750.
            var prefix = ""
            for part in parent.split(separator: "/") {
                prefix += (prefix.isEmpty && !parent.hasPrefix("/") ? "" : "/") + part
                if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw .file("cannot create \(prefix): \(String(cString: strerror(errno)))") }
            }
            chmod(parent, 0o750)
            if let gid { chown(parent, uid_t.max, gid) }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o640)
        if fd < 0 {
            if errno == EEXIST { return }  // another process created it first
            throw .file("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { _ = Glibc.close(fd) }
        if let gid { fchown(fd, uid_t.max, gid) }
        fchmod(fd, 0o640)
    }
}

/// An invocation with a ToolInvoked and no terminal event.
package struct OpenInvocation: Sendable, Equatable {
    package var invocationID: String
    package var tool: String
    package var principal: String?
    package var uid: UInt32?
    package var profileDigest: String?
    package var sandboxLevel: String?
    /// When its ToolInvoked was written (nil once pruned).
    package var invokedAt: Int64?
}
