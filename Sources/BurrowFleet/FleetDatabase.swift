package import BurrowProfile
import BurrowSystem
package import Logging
import NIOCore
import NIOSSL
package import PostgresNIO
import Synchronization

/// A PostgreSQL database of the fleet (the central audit copy's, the shared
/// registry's): how to reach it, and the schema of each Burrow component in
/// it, brought up to date at connect.
package struct FleetDatabase: Sendable {
    package let url: PostgresURL
    let password: String?
    let caFile: String?
    package let logger: Logger

    /// Reads the password file (root's, mode 0600 or stricter) now: a
    /// missing or readable-by-others file is a configuration error at start.
    package init(_ endpoint: HostPolicy.PostgresEndpoint, logger: Logger) throws(FleetError) {
        url = endpoint.url
        caFile = endpoint.caFile
        self.logger = logger
        if let file = endpoint.passwordFile {
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
        // The shared registry: each node's local SQLite registry is a replica
        // of these rows. Every change moves the one revision on (under
        // `registryLock`, so revisions commit in order); a removal leaves a
        // tombstone at its revision, so a replica that pulls what changed
        // after its revision sees it.
        "registry": [
            [
                """
                CREATE TABLE burrow_registry_head (
                    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
                    id TEXT NOT NULL,
                    revision BIGINT NOT NULL
                )
                """,
                "INSERT INTO burrow_registry_head (id, revision) VALUES (gen_random_uuid()::text, 0)",
                """
                CREATE TABLE burrow_registry_tools (
                    id TEXT NOT NULL,
                    version TEXT NOT NULL,
                    status TEXT NOT NULL,
                    registration TEXT NOT NULL,
                    validation TEXT NOT NULL,
                    registered_at TEXT NOT NULL,
                    updated_at TEXT NOT NULL,
                    registered_by TEXT NOT NULL,
                    revision BIGINT NOT NULL,
                    PRIMARY KEY (id, version)
                )
                """,
                "CREATE INDEX burrow_registry_tools_by_revision ON burrow_registry_tools (revision)",
                """
                CREATE TABLE burrow_registry_pins (
                    id TEXT NOT NULL,
                    version TEXT NOT NULL,
                    approved TEXT,
                    offered TEXT,
                    revision BIGINT NOT NULL,
                    PRIMARY KEY (id, version)
                )
                """,
                "CREATE INDEX burrow_registry_pins_by_revision ON burrow_registry_pins (revision)",
                """
                CREATE TABLE burrow_registry_removed (
                    kind TEXT NOT NULL,
                    id TEXT NOT NULL,
                    version TEXT NOT NULL,
                    revision BIGINT NOT NULL,
                    PRIMARY KEY (kind, id, version)
                )
                """,
                "CREATE INDEX burrow_registry_removed_by_revision ON burrow_registry_removed (revision)",
            ]
        ],
        // Idempotency keys of invocations every node sees (`FleetKeys`).
        "keys": [
            [
                """
                CREATE TABLE burrow_idempotency_keys (
                    principal TEXT NOT NULL,
                    key TEXT NOT NULL,
                    digest TEXT NOT NULL,
                    node TEXT NOT NULL,
                    epoch TEXT NOT NULL,
                    token TEXT NOT NULL,
                    state TEXT NOT NULL,
                    invocation TEXT,
                    result TEXT,
                    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                    finished_at TIMESTAMPTZ,
                    PRIMARY KEY (principal, key)
                )
                """,
                "CREATE INDEX burrow_idempotency_keys_by_node ON burrow_idempotency_keys (node, state)",
                "CREATE INDEX burrow_idempotency_keys_by_finish ON burrow_idempotency_keys (finished_at)",
                "CREATE INDEX burrow_idempotency_keys_running ON burrow_idempotency_keys (node) WHERE state = 'running'",
            ]
        ],
        // The fleet's rate counters (`FleetCounters`): admissions per tool, node and second, and live sandboxes.
        "rates": [
            [
                """
                CREATE TABLE burrow_rate_counts (
                    tool TEXT NOT NULL,
                    node TEXT NOT NULL,
                    second BIGINT NOT NULL,
                    admitted BIGINT NOT NULL,
                    PRIMARY KEY (tool, node, second)
                )
                """,
                """
                CREATE TABLE burrow_rate_live (
                    tool TEXT NOT NULL,
                    node TEXT NOT NULL,
                    live BIGINT NOT NULL,
                    updated_at TIMESTAMPTZ NOT NULL,
                    PRIMARY KEY (tool, node)
                )
                """,
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
                    if !Task.isCancelled { race.finish(.failure(FleetError("\(what): no answer within \(seconds) s", timedOut: true))) }
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
    /// A statement or connect that got no answer in time (`bounded`): the connection's state is unknown.
    package var timedOut = false
    package init(_ description: String, timedOut: Bool = false) {
        self.description = description
        self.timedOut = timedOut
    }
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

/// The values of an unsafeSQL query's $1, $2, …, in order.
func bindings(_ values: any PostgresEncodable & Sendable...) throws -> PostgresBindings {
    var b = PostgresBindings(capacity: values.count)
    for v in values { try b.append(v) }
    return b
}
