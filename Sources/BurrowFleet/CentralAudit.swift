package import BurrowAudit
package import BurrowProfile
import BurrowSystem
package import Logging
import NIOCore
import NIOSSL
package import PostgresNIO
import Synchronization

/// The central copy of every node's audit log, in PostgreSQL: each node's
/// rows exactly as its local log holds them (every field the chain covers,
/// byte for byte, and both links), keyed by node and sequence, so shipping
/// is idempotent and the copy verifies as the local log does.
package struct CentralAudit: Sendable {
    package let url: PostgresURL
    let password: String?
    let caFile: String?
    package let logger: Logger

    /// Reads the password file (root's, mode 0600 or stricter) now: a
    /// missing or readable-by-others file is a configuration error at start.
    package init(_ central: HostPolicy.Audit.Central, logger: Logger) throws(FleetError) {
        url = central.url
        caFile = central.caFile
        self.logger = logger
        if let file = central.passwordFile {
            let bytes: [UInt8]
            do {
                bytes = try FileIO.readConfigured(file, secret: true, limit: 4096)
            } catch {
                throw FleetError("\(file): \(error)")
            }
            // The first line (a trailing CR too: a file written on another system), the password alone.
            var line = bytes.split(separator: 0x0a, omittingEmptySubsequences: false).first ?? []
            if line.last == 0x0d { line = line.dropLast() }
            password = String(decoding: line, as: UTF8.self)
        } else {
            password = nil
        }
    }

    /// The schema of each component (its own version in `burrow_schema`),
    /// one migration per version, applied under an advisory lock (several
    /// nodes start at once) when due. Components are independent: a node
    /// that knows a newer one does not stop an older node's shipping.
    static let migrations: [String: [[String]]] = [
        "audit": [
            [
                """
                CREATE TABLE burrow_audit_events (
                    node TEXT NOT NULL,
                    sequence BIGINT NOT NULL,
                    time BIGINT NOT NULL,
                    tool BYTEA NOT NULL,
                    type BYTEA NOT NULL,
                    principal BYTEA NOT NULL,
                    uid BIGINT,
                    invocation BYTEA,
                    profile_digest BYTEA,
                    sandbox_level BYTEA,
                    host BYTEA NOT NULL,
                    details BYTEA NOT NULL,
                    origin BYTEA,
                    previous_hash BYTEA NOT NULL,
                    hash BYTEA NOT NULL,
                    shipped_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                    PRIMARY KEY (node, sequence)
                )
                """,
                "CREATE INDEX burrow_audit_events_by_tool ON burrow_audit_events (tool, time)",
                "CREATE INDEX burrow_audit_events_by_time ON burrow_audit_events (time)",
            ]
        ],
        // The fleet's nodes and their heartbeats (PostgreSQL's clock decides who is late).
        "nodes": [
            [
                """
                CREATE TABLE burrow_nodes (
                    id TEXT PRIMARY KEY,
                    version TEXT NOT NULL,
                    host TEXT NOT NULL,
                    facts TEXT NOT NULL,
                    started_at TIMESTAMPTZ NOT NULL,
                    heartbeat_at TIMESTAMPTZ NOT NULL,
                    interval_ms BIGINT NOT NULL,
                    audit_head BIGINT NOT NULL,
                    audit_shipped BIGINT NOT NULL
                )
                """
            ]
        ],
    ]
    /// pg_advisory_lock's key for Burrow's migrations ("burrow" in ASCII).
    static let migrationLock: Int64 = 0x6275_7272_6f77

    /// A connection, with the schema of `components` brought up to date.
    package func connect(migrating components: [String] = ["audit"]) async throws -> PostgresConnection {
        var configuration: PostgresConnection.Configuration
        if let socket = url.socketPath {
            configuration = .init(unixSocketPath: socket, username: url.user, password: password, database: url.database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch url.tls {
            case .disable:
                tls = .disable
            case .verifyFull:
                var t = TLSConfiguration.makeClientConfiguration()
                t.minimumTLSVersion = .tlsv12
                t.certificateVerification = .fullVerification
                if let caFile { t.trustRoots = .file(caFile) }
                tls = .require(try NIOSSLContext(configuration: t))
            }
            configuration = .init(host: url.host ?? "localhost", port: url.port, username: url.user, password: password, database: url.database, tls: tls)
            // SNI takes a name, never an address (PostgresNIO leaves an address out itself; the certificate is still checked against it).
            if url.tls == .verifyFull, let host = url.host, !PostgresURL.isAddress(host) { configuration.options.tlsServerName = host }
        }
        configuration.options.connectTimeout = .seconds(10)
        let ready = configuration
        let logger = logger
        let connection = try await bounded(
            "connecting to \(url)", seconds: 15, late: { c in Task { try? await c.close() } }, { try await PostgresConnection.connect(configuration: ready, id: 1, logger: logger) })
        do {
            for component in components {
                try await bounded("migrating the central schema", seconds: 60) { try await self.migrate(connection, component) }
            }
        } catch {
            try? await connection.close()
            throw error
        }
        return connection
    }

    /// A component's schema version here (0: none yet), read without DDL:
    /// a user with no CREATE right (after the first connect) reads it too.
    func schemaVersion(_ c: PostgresConnection, _ component: String) async throws -> Int {
        var exists = false
        for try await present in try await c.query("SELECT to_regclass('burrow_schema') IS NOT NULL", logger: logger).decode(Bool.self) { exists = present }
        guard exists else { return 0 }
        var found = 0
        for try await version in try await c.query("SELECT version FROM burrow_schema WHERE component = \(component)", logger: logger).decode(Int.self) { found = version }
        return found
    }

    func migrate(_ c: PostgresConnection, _ component: String) async throws {
        let steps = Self.migrations[component] ?? []
        let found = try await schemaVersion(c, component)
        guard found <= steps.count else {
            throw FleetError("the fleet database's \(component) schema is version \(found); this burrowd knows \(steps.count): upgrade it")
        }
        guard found < steps.count else { return }
        // Due: under the advisory lock (several nodes start at once), checked again inside it.
        try await c.query("SELECT pg_advisory_lock(\(Self.migrationLock))", logger: logger)
        do {
            try await c.query("CREATE TABLE IF NOT EXISTS burrow_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)", logger: logger)
            let now = try await schemaVersion(c, component)
            for v in now..<max(now, steps.count) {
                try await c.withTransaction(logger: logger) { t in
                    for statement in steps[v] { try await t.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                    try await t.query(
                        "INSERT INTO burrow_schema (component, version) VALUES (\(component), \(v + 1)) ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                        logger: logger)
                }
            }
        } catch {
            _ = try? await c.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
            throw error
        }
        try await c.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
    }

    /// The node's newest row in the central copy: its sequence and hash.
    package func head(_ c: PostgresConnection, node: String) async throws -> (sequence: Int64, hash: [UInt8])? {
        let rows = try await c.query("SELECT sequence, hash FROM burrow_audit_events WHERE node = \(node) ORDER BY sequence DESC LIMIT 1", logger: logger)
        for try await (sequence, hash) in rows.decode((Int64, ByteBuffer).self) { return (sequence, Array(hash.readableBytesView)) }
        return nil
    }

    static let columns = "node, sequence, time, tool, type, principal, uid, invocation, profile_digest, sandbox_level, host, details, origin, previous_hash, hash"

    /// Inserts `records` of `node` in one statement; a row already there
    /// (a batch shipped again after a crash) is left as it is. Returns the
    /// sequences that were already there, for the caller to compare.
    package func insert(_ c: PostgresConnection, node: String, _ records: [AuditRecord]) async throws -> [Int64] {
        guard !records.isEmpty else { return [] }
        var binds = PostgresBindings(capacity: records.count * 15)
        var values: [String] = []
        values.reserveCapacity(records.count)
        func bytes(_ b: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: b) }
        for (i, r) in records.enumerated() {
            let base = i * 15
            values.append("(" + (1...15).map { "$\(base + $0)" }.joined(separator: ",") + ")")
            binds.append(node)
            binds.append(r.sequence)
            binds.append(r.time)
            binds.append(bytes(r.tool))
            binds.append(bytes(r.type))
            binds.append(bytes(r.principal))
            binds.append(r.uid)
            binds.append(r.invocation.map(bytes))
            binds.append(r.profileDigest.map(bytes))
            binds.append(r.sandboxLevel.map(bytes))
            binds.append(bytes(r.host))
            binds.append(bytes(r.details))
            binds.append(r.origin.map(bytes))
            binds.append(bytes(r.previousHash))
            binds.append(bytes(r.hash))
        }
        let sql = "INSERT INTO burrow_audit_events (\(Self.columns)) VALUES \(values.joined(separator: ",")) ON CONFLICT (node, sequence) DO NOTHING RETURNING sequence"
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        let logger = logger
        // In a transaction of its own: this returns once COMMIT is answered,
        // so the local mark that follows never gets ahead of what is durable
        // there (a statement's own completion comes before its commit).
        let inserted = try await c.withTransaction(logger: logger) { t in
            var found = Set<Int64>()
            for try await sequence in try await t.query(query, logger: logger).decode(Int64.self) { found.insert(sequence) }
            return found
        }
        return records.map(\.sequence).filter { !inserted.contains($0) }
    }

    /// The hashes the central copy holds for `node` from `first` through `last`.
    package func hashes(_ c: PostgresConnection, node: String, from first: Int64, through last: Int64) async throws -> [Int64: [UInt8]] {
        var out: [Int64: [UInt8]] = [:]
        let rows = try await c.query(
            "SELECT sequence, hash FROM burrow_audit_events WHERE node = \(node) AND sequence BETWEEN \(first) AND \(last)", logger: logger)
        for try await (sequence, hash) in rows.decode((Int64, ByteBuffer).self) { out[sequence] = Array(hash.readableBytesView) }
        return out
    }

    /// The nodes the central copy has rows of.
    package func nodes(_ c: PostgresConnection) async throws -> [String] {
        var out: [String] = []
        for try await node in try await c.query("SELECT DISTINCT node FROM burrow_audit_events ORDER BY node", logger: logger).decode(String.self) { out.append(node) }
        return out
    }

    /// `events(_:_:node:)` on a connection of its own, within 30 s.
    package func events(_ query: AuditQuery, node: String?) async throws -> [AuditEvent] {
        let c = try await connect()
        defer { Task { _ = try? await bounded("closing", seconds: 5) { try await c.close() } } }
        return try await bounded("querying the central copy", seconds: 30) { try await self.events(c, query, node: node) }
    }

    /// Events of every node (or of `node`) that `query` matches, oldest
    /// first (by time, then node and sequence); with a limit, the most
    /// recent. Each carries its node. The tool, type and invocation filters
    /// compare the stored bytes, which the indexes cover.
    package func events(_ c: PostgresConnection, _ query: AuditQuery, node: String?) async throws -> [AuditEvent] {
        var clauses: [String] = []
        var binds = PostgresBindings()
        func next() -> String { "$\(binds.count)" }
        if let node {
            binds.append(node)
            clauses.append("node = \(next())")
        }
        if let tool = query.tool {
            binds.append(ByteBuffer(bytes: Array(tool.utf8)))
            clauses.append("tool = \(next())")
        }
        if let invocation = query.invocation {
            binds.append(ByteBuffer(bytes: Array(invocation.utf8)))
            clauses.append("invocation = \(next())")
        }
        if let uid = query.uid {
            binds.append(Int64(uid))
            clauses.append("uid = \(next())")
        }
        if !query.types.isEmpty {
            var names: [String] = []
            for type in query.types {
                binds.append(ByteBuffer(bytes: Array(type.rawValue.utf8)))
                names.append(next())
            }
            clauses.append("type IN (\(names.joined(separator: ",")))")
        }
        if let since = query.since {
            binds.append(since)
            clauses.append("time >= \(next())")
        }
        if let until = query.until {
            binds.append(until)
            clauses.append("time < \(next())")
        }
        let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        let columns = "node, sequence, time, tool, type, principal, uid, invocation, profile_digest, sandbox_level, host, details, origin, previous_hash, hash"
        let limit = query.limit.map { " LIMIT \(max(0, $0))" } ?? ""
        // One node's events in its chain's order; several nodes' by time (their clocks are theirs).
        let order = node == nil ? "time DESC, node DESC, sequence DESC" : "sequence DESC"
        let sql = "SELECT \(columns) FROM burrow_audit_events\(filter) ORDER BY \(order)\(limit)"
        var out: [AuditEvent] = []
        for try await row in try await c.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger) {
            let (node, sequence, time, tool, type, principal, uid, invocation, profileDigest, sandboxLevel, host, details, origin, previous, hash) = try row.decode(
                (String, Int64, Int64, ByteBuffer, ByteBuffer, ByteBuffer, Int64?, ByteBuffer?, ByteBuffer?, ByteBuffer?, ByteBuffer, ByteBuffer, ByteBuffer?, ByteBuffer, ByteBuffer)
                    .self)
            func b(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }
            var event = AuditRecord(
                sequence: sequence, time: time, tool: b(tool), type: b(type), principal: b(principal), uid: uid, invocation: invocation.map(b),
                profileDigest: profileDigest.map(b), sandboxLevel: sandboxLevel.map(b), host: b(host), details: b(details), origin: origin.map(b),
                previousHash: b(previous), hash: b(hash)
            ).event
            event.node = node
            out.append(event)
        }
        return out.reversed()
    }

    /// `node`'s rows after `sequence`, oldest first, at most `limit`.
    package func records(_ c: PostgresConnection, node: String, after sequence: Int64, limit: Int) async throws -> [AuditRecord] {
        let rows = try await c.query(
            """
            SELECT sequence, time, tool, type, principal, uid, invocation, profile_digest, sandbox_level, host, details, origin, previous_hash, hash
            FROM burrow_audit_events WHERE node = \(node) AND sequence > \(sequence) ORDER BY sequence LIMIT \(limit)
            """, logger: logger)
        var out: [AuditRecord] = []
        for try await row in rows {
            let (sequence, time, tool, type, principal, uid, invocation, profileDigest, sandboxLevel, host, details, origin, previous, hash) = try row.decode(
                (Int64, Int64, ByteBuffer, ByteBuffer, ByteBuffer, Int64?, ByteBuffer?, ByteBuffer?, ByteBuffer?, ByteBuffer, ByteBuffer, ByteBuffer?, ByteBuffer, ByteBuffer).self)
            func b(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }
            out.append(
                AuditRecord(
                    sequence: sequence, time: time, tool: b(tool), type: b(type), principal: b(principal), uid: uid, invocation: invocation.map(b),
                    profileDigest: profileDigest.map(b), sandboxLevel: sandboxLevel.map(b), host: b(host), details: b(details), origin: origin.map(b),
                    previousHash: b(previous), hash: b(hash)))
        }
        return out
    }
}

/// `body`, or a failure once `seconds` pass without its answer. A
/// connection whose server vanished (shut down, or a network that drops
/// packets) may never answer: the caller then closes it, which ends the
/// abandoned wait too.
package func bounded<T: Sendable>(
    _ what: String, seconds: Int, late: (@Sendable (T) -> Void)? = nil, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = Race<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            race.start(
                continuation,
                work: Task {
                    do {
                        let value = try await body()
                        // Too late (timed out, cancelled): what it made is not used, so it is undone (a connection closed).
                        if !race.finish(.success(value)) { late?(value) }
                    } catch {
                        race.finish(.failure(error))
                    }
                },
                timer: Task {
                    try? await Task.sleep(for: .seconds(seconds))
                    if !Task.isCancelled { race.finish(.failure(FleetError("\(what): no answer within \(seconds) s"))) }
                })
        }
    } onCancel: {
        race.finish(.failure(CancellationError()))
    }
}

/// A continuation resumed by whichever comes first (the work, the timer,
/// cancellation, even one that comes before the continuation exists); the
/// others are cancelled then.
private final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var tasks: [Task<Void, Never>] = []
        /// The first result, kept until the continuation exists.
        var result: Result<T, any Error>?
    }

    private let state = Mutex(State())

    func start(_ c: CheckedContinuation<T, any Error>, work: Task<Void, Never>, timer: Task<Void, Never>) {
        let early = state.withLock { s -> Result<T, any Error>? in
            s.tasks = [work, timer]
            if s.result == nil { s.continuation = c }
            return s.result
        }
        if let early {
            c.resume(with: early)
            work.cancel()
            timer.cancel()
        }
    }

    /// Resumes the caller unless something did already; whether this did.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (first, continuation, tasks) = state.withLock { s -> (Bool, CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
            guard s.result == nil else { return (false, nil, []) }
            s.result = result
            defer { s.continuation = nil }
            return (true, s.continuation, s.tasks)
        }
        guard first else { return false }
        continuation?.resume(with: result)
        for task in tasks { task.cancel() }
        return true
    }
}

/// A failure of the fleet's PostgreSQL side, in words.
package struct FleetError: Error, Sendable, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// An error of the fleet's side in words: PostgreSQL's own message when the server sent one.
package func explainFleetError(_ error: any Error) -> String {
    (error as? PSQLError)?.explained ?? "\(error)"
}

extension PSQLError {
    /// What went wrong, with the server's message when it sent one (PSQLError's description is deliberately generic).
    package var explained: String {
        if let message = serverInfo?[.message] { return "\(message) (SQLSTATE \(serverInfo?[.sqlState] ?? "?"))" }
        return "\(code)" + (underlying.map { ": \($0)" } ?? "")
    }
}
