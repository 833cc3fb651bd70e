package import Logging
import NIOCore
package import PostgresNIO
import Synchronization

/// One version of a registered tool as the shared registry keeps it: the
/// columns of the local registry's `tools` row, as text.
package struct SharedTool: Sendable, Equatable {
    package var id: String
    package var version: String
    package var status: String
    package var registration: String
    package var validation: String
    package var registeredAt: String
    package var updatedAt: String
    package var registeredBy: String

    package init(
        id: String, version: String, status: String, registration: String, validation: String, registeredAt: String, updatedAt: String, registeredBy: String
    ) {
        (self.id, self.version, self.status, self.registration, self.validation) = (id, version, status, registration, validation)
        (self.registeredAt, self.updatedAt, self.registeredBy) = (registeredAt, updatedAt, registeredBy)
    }
}

/// A version's pinned MCP tool definitions (`tool_pins`): approved, and offered instead.
package struct SharedPins: Sendable, Equatable {
    package var id: String
    package var version: String
    package var approved: String?
    package var offered: String?

    package init(id: String, version: String, approved: String?, offered: String?) {
        (self.id, self.version, self.approved, self.offered) = (id, version, approved, offered)
    }
}

/// A tool version: what a removal names.
package struct RegistryKey: Hashable, Sendable {
    package var id: String
    package var version: String

    package init(id: String, version: String) {
        self.id = id
        self.version = version
    }
}

/// What a replica takes from the shared registry: every row (`complete`,
/// to replace its own), or those changed after the revision it had.
package struct RegistryChanges: Sendable {
    /// The shared registry's identity (made with it): a replica of one
    /// database is never taken for a replica of another.
    package var database: String
    /// The revision these rows bring the replica to.
    package var revision: Int64
    package var complete: Bool
    package var tools: [SharedTool] = []
    package var pins: [SharedPins] = []
    package var removedTools: [RegistryKey] = []
    package var removedPins: [RegistryKey] = []

    package init(database: String, revision: Int64, complete: Bool) {
        self.database = database
        self.revision = revision
        self.complete = complete
    }
}

/// The fleet's registry in PostgreSQL. Each node keeps a replica in its
/// local SQLite registry and reads only that (an invocation never waits on
/// the network); every change is made here first, in a transaction that
/// holds the fleet-wide registry lock from the checks that judge it to its
/// commit, and announced on `channel` so the other replicas pull it at once.
package final class SharedRegistry: Sendable {
    package let database: FleetDatabase
    /// The connection writes go through, kept between them (nil: none yet, or it failed).
    private let writer = Mutex<PostgresConnection?>(nil)

    /// NOTIFY's channel; the payload is the new revision.
    package static let channel = "burrow_registry"
    /// pg_advisory_xact_lock's key for registry changes ("burrox" in ASCII: next to the migrations' "burrow").
    static let lock: Int64 = 0x6275_7272_6f78

    package init(database: FleetDatabase) { self.database = database }

    /// A connection with the registry's schema up to date.
    package func connect() async throws -> PostgresConnection { try await database.connect(migrating: ["registry"]) }

    /// What changed after `revision` (nil: every row), read in one snapshot.
    package func changes(_ c: PostgresConnection, after revision: Int64?) async throws -> RegistryChanges {
        let logger = database.logger
        return try await bounded("reading the shared registry", seconds: 60) {
            try await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            do {
                let out = try await Self.read(c, after: revision, logger: logger)
                try await c.query("COMMIT", logger: logger)
                return out
            } catch {
                _ = try? await c.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// Every row, on a connection of its own.
    package func snapshot() async throws -> RegistryChanges {
        let c = try await connect()
        defer { Task { _ = try? await bounded("closing", seconds: 5) { try await c.close() } } }
        return try await changes(c, after: nil)
    }

    static func read(_ c: PostgresConnection, after revision: Int64?, logger: Logger) async throws -> RegistryChanges {
        var head: (String, Int64)?
        for try await row in try await c.query("SELECT id, revision FROM burrow_registry_head", logger: logger).decode((String, Int64).self) { head = row }
        guard let (database, now) = head else { throw FleetError("the shared registry has no head row: its schema is incomplete") }
        // A head behind the replica's (the database restored from a backup): what changed cannot be told, so everything.
        let revision = revision.flatMap { $0 <= now ? $0 : nil }
        var out = RegistryChanges(database: database, revision: now, complete: revision == nil)
        let after = revision ?? -1
        let tools = try await c.query(
            """
            SELECT id, version, status, registration, validation, registered_at, updated_at, registered_by
            FROM burrow_registry_tools WHERE revision > \(after) ORDER BY id, version
            """, logger: logger)
        for try await (id, version, status, registration, validation, registeredAt, updatedAt, registeredBy) in tools.decode(
            (String, String, String, String, String, String, String, String).self)
        {
            out.tools.append(
                SharedTool(
                    id: id, version: version, status: status, registration: registration, validation: validation, registeredAt: registeredAt,
                    updatedAt: updatedAt, registeredBy: registeredBy))
        }
        let pins = try await c.query("SELECT id, version, approved, offered FROM burrow_registry_pins WHERE revision > \(after) ORDER BY id, version", logger: logger)
        for try await (id, version, approved, offered) in pins.decode((String, String, String?, String?).self) {
            out.pins.append(SharedPins(id: id, version: version, approved: approved, offered: offered))
        }
        if revision != nil {
            let removed = try await c.query("SELECT kind, id, version FROM burrow_registry_removed WHERE revision > \(after)", logger: logger)
            for try await (kind, id, version) in removed.decode((String, String, String).self) {
                if kind == "tool" { out.removedTools.append(RegistryKey(id: id, version: version)) } else { out.removedPins.append(RegistryKey(id: id, version: version)) }
            }
        }
        return out
    }

    /// Opens a change: a transaction holding the fleet-wide registry lock
    /// (taken in turn by every node's writes; released by COMMIT or
    /// ROLLBACK, or by PostgreSQL when the connection dies), and what
    /// changed after `revision`, for the replica to take before it judges
    /// the change.
    package func begin(after revision: Int64?) async throws -> (RegistryTransaction, RegistryChanges) {
        let c: PostgresConnection
        if let open = writer.withLock({ $0 }), !open.isClosed {
            c = open
        } else {
            c = try await connect()
            writer.withLock { $0 = c }
        }
        let logger = database.logger
        do {
            let (xid, changes) = try await bounded("taking the shared registry's lock", seconds: 30) {
                try await c.query("BEGIN", logger: logger)
                try await c.query("SELECT pg_advisory_xact_lock(\(Self.lock))", logger: logger)
                var xid: Int64 = 0
                for try await x in try await c.query("SELECT txid_current()", logger: logger).decode(Int64.self) { xid = x }
                return (xid, try await Self.read(c, after: revision, logger: logger))
            }
            return (RegistryTransaction(connection: c, logger: logger, revision: changes.revision, xid: xid), changes)
        } catch {
            // A connection left mid-transaction, or one that did not answer, is not used again.
            drop(c)
            throw error
        }
    }

    /// Closes the writer's connection, at the end (a connection must be closed before it goes).
    package func close() async {
        guard
            let c = writer.withLock({ w -> PostgresConnection? in
                defer { w = nil }
                return w
            })
        else { return }
        _ = try? await bounded("closing", seconds: 5) { try await c.close() }
    }

    /// Closes the writer's connection (it failed, or left a transaction in an unknown state).
    func drop(_ c: PostgresConnection) {
        writer.withLock { if $0 === c { $0 = nil } }
        Task { _ = try? await bounded("closing", seconds: 5) { try await c.close() } }
    }

    /// Gives a change up without a word on its connection: closing it makes
    /// PostgreSQL abort the transaction, and any statement still on its way
    /// (one a timeout abandoned) fails with it, never running on its own.
    package func abandon(_ t: RegistryTransaction) { drop(t.connection) }

    /// What became of a COMMIT whose answer never came.
    package enum CommitFailure: Error, CustomStringConvertible {
        /// PostgreSQL says it was not committed.
        case aborted(String)
        /// It cannot tell now (the database does not answer).
        case unknown(String)

        package var description: String {
            switch self {
            case .aborted(let why): "not committed: \(why)"
            case .unknown(let why): "whether it was committed cannot be told now: \(why)"
            }
        }
    }

    /// Commits a change (which announces it) and returns its revision. A
    /// COMMIT with no answer is asked after on a fresh connection
    /// (`txid_status`): committed, it is a success.
    package func commit(_ t: RegistryTransaction) async throws -> Int64 {
        let (c, logger) = (t.connection, t.logger)
        let revision = t.revision.withLock { $0.value }
        do {
            _ = try await bounded("committing to the shared registry", seconds: 30) { try await c.query("COMMIT", logger: logger) }
            return revision
        } catch {
            drop(c)
            let why = explainFleetError(error)
            do {
                let fresh = try await connect()
                defer { Task { _ = try? await bounded("closing", seconds: 5) { try await fresh.close() } } }
                let xid = t.xid
                let status = try await bounded("asking after a commit", seconds: 15) {
                    var status: String?
                    for try await s in try await fresh.query("SELECT txid_status(\(xid))", logger: logger).decode(String?.self) { status = s }
                    return status
                }
                switch status {
                case "committed": return revision
                case "aborted": throw CommitFailure.aborted(why)
                default: throw CommitFailure.unknown(why)
                }
            } catch let failure as CommitFailure {
                throw failure
            } catch {
                throw CommitFailure.unknown("\(why); then \(explainFleetError(error))")
            }
        }
    }

    /// Rolls a change back; a connection that fails it is closed (which aborts it).
    package func rollback(_ t: RegistryTransaction) async {
        let (c, logger) = (t.connection, t.logger)
        do {
            _ = try await bounded("rolling back", seconds: 30) { try await c.query("ROLLBACK", logger: logger) }
        } catch {
            drop(c)
        }
    }
}

extension SharedRegistry {
    /// Reads what changed after a revision (nil: everything), on the follower's connection.
    package typealias Read = @Sendable (Int64?) async throws -> RegistryChanges

    /// Follows the registry until cancelled: LISTEN for changes, and a
    /// pull every `every` besides (a notification can be missed while the
    /// connection is made); `pull` takes each. After a failure it says so
    /// once, connects again after a pause growing from 0.5 s to 30 s, and
    /// tells `connected`.
    package func follow(
        every: Duration, logger: Logger, connected: @escaping @Sendable (Bool) -> Void, pull: @escaping @Sendable (Read) async throws -> Void
    ) async {
        var pause = Duration.milliseconds(500)
        var failing = false
        while !Task.isCancelled {
            do {
                let c = try await connect()
                defer { Task { _ = try? await bounded("closing", seconds: 5) { try await c.close() } } }
                let read: Read = { revision in try await self.changes(c, after: revision) }
                try await c.listen(on: Self.channel) { notifications in
                    let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
                    let listener = Task {
                        do {
                            for try await _ in notifications { wake.yield() }
                        } catch {}
                        wake.finish()
                    }
                    let ticker = Task {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: every)
                            wake.yield()
                        }
                    }
                    defer {
                        listener.cancel()
                        ticker.cancel()
                    }
                    try await pull(read)
                    connected(true)
                    if failing { logger.info("the registry replica follows the fleet's registry again") }
                    failing = false
                    pause = .milliseconds(500)
                    for await _ in wakes {
                        if Task.isCancelled { break }
                        try await pull(read)
                    }
                }
                if !Task.isCancelled { throw FleetError("the connection closed") }
            } catch {
                connected(false)
                if Task.isCancelled { break }
                if !failing {
                    logger.warning(
                        "the registry replica cannot follow the fleet's registry (\(database.url)): \(explainFleetError(error)); serving the registrations last taken, retrying, at most every 30 s"
                    )
                }
                failing = true
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(30))
            }
        }
        connected(false)
    }
}

/// A change to the shared registry under way (`SharedRegistry.begin`).
package final class RegistryTransaction: Sendable {
    let connection: PostgresConnection
    let logger: Logger
    /// The revision it started at, and the one it moved to (the same until a row changes).
    let revision: Mutex<(started: Int64, value: Int64)>
    /// Its transaction id, to ask after a COMMIT whose answer never came.
    let xid: Int64

    init(connection: PostgresConnection, logger: Logger, revision: Int64, xid: Int64) {
        self.connection = connection
        self.logger = logger
        self.revision = Mutex((revision, revision))
        self.xid = xid
    }

    /// The revision this change's rows carry, moved on (and announced on
    /// commit) the first time one is needed.
    private func next() async throws -> Int64 {
        if let moved = revision.withLock({ $0.value != $0.started ? $0.value : nil }) { return moved }
        var value: Int64 = 0
        for try await v in try await connection.query("UPDATE burrow_registry_head SET revision = revision + 1 RETURNING revision", logger: logger).decode(Int64.self) {
            value = v
        }
        try await connection.query("SELECT pg_notify(\(SharedRegistry.channel), \(String(value)))", logger: logger)
        revision.withLock { $0.value = value }
        return value
    }

    /// Makes the shared rows of tool `id` these: rows that differ are
    /// written, rows not among them removed (with a tombstone). `pins` nil
    /// leaves the pins as they are; `version` limits both to one version.
    package func put(id: String, version: String? = nil, tools: [SharedTool]?, pins: [SharedPins]?) async throws {
        let (c, logger) = (connection, logger)
        try await bounded("writing to the shared registry", seconds: 30) {
            if let tools {
                var stored: [String: SharedTool] = [:]
                let rows = try await c.query(
                    """
                    SELECT id, version, status, registration, validation, registered_at, updated_at, registered_by
                    FROM burrow_registry_tools WHERE id = \(id) AND (\(version)::text IS NULL OR version = \(version))
                    """, logger: logger)
                for try await (i, v, s, r, va, ra, ua, rb) in rows.decode((String, String, String, String, String, String, String, String).self) {
                    stored[v] = SharedTool(id: i, version: v, status: s, registration: r, validation: va, registeredAt: ra, updatedAt: ua, registeredBy: rb)
                }
                for t in tools where stored[t.version] != t {
                    let rev = try await self.next()
                    try await c.query(
                        """
                        INSERT INTO burrow_registry_tools (id, version, status, registration, validation, registered_at, updated_at, registered_by, revision)
                        VALUES (\(t.id), \(t.version), \(t.status), \(t.registration), \(t.validation), \(t.registeredAt), \(t.updatedAt), \(t.registeredBy), \(rev))
                        ON CONFLICT (id, version) DO UPDATE SET status = excluded.status, registration = excluded.registration, validation = excluded.validation,
                            registered_at = excluded.registered_at, updated_at = excluded.updated_at, registered_by = excluded.registered_by, revision = excluded.revision
                        """, logger: logger)
                    try await c.query("DELETE FROM burrow_registry_removed WHERE kind = 'tool' AND id = \(t.id) AND version = \(t.version)", logger: logger)
                }
                let kept = Set(tools.map(\.version))
                for gone in stored.keys.sorted() where !kept.contains(gone) {
                    try await self.remove("tool", id: id, version: gone)
                }
            }
            if let pins {
                var stored: [String: SharedPins] = [:]
                let rows = try await c.query(
                    "SELECT version, approved, offered FROM burrow_registry_pins WHERE id = \(id) AND (\(version)::text IS NULL OR version = \(version))", logger: logger)
                for try await (v, a, o) in rows.decode((String, String?, String?).self) { stored[v] = SharedPins(id: id, version: v, approved: a, offered: o) }
                for p in pins where stored[p.version] != p {
                    let rev = try await self.next()
                    try await c.query(
                        """
                        INSERT INTO burrow_registry_pins (id, version, approved, offered, revision) VALUES (\(p.id), \(p.version), \(p.approved), \(p.offered), \(rev))
                        ON CONFLICT (id, version) DO UPDATE SET approved = excluded.approved, offered = excluded.offered, revision = excluded.revision
                        """, logger: logger)
                    try await c.query("DELETE FROM burrow_registry_removed WHERE kind = 'pins' AND id = \(p.id) AND version = \(p.version)", logger: logger)
                }
                let kept = Set(pins.map(\.version))
                for gone in stored.keys.sorted() where !kept.contains(gone) {
                    try await self.remove("pins", id: id, version: gone)
                }
            }
        }
    }

    private func remove(_ kind: String, id: String, version: String) async throws {
        let rev = try await next()
        let table = kind == "tool" ? "burrow_registry_tools" : "burrow_registry_pins"
        try await connection.query(PostgresQuery(unsafeSQL: "DELETE FROM \(table) WHERE id = $1 AND version = $2", binds: try bindings(id, version)), logger: logger)
        try await connection.query(
            """
            INSERT INTO burrow_registry_removed (kind, id, version, revision) VALUES (\(kind), \(id), \(version), \(rev))
            ON CONFLICT (kind, id, version) DO UPDATE SET revision = excluded.revision
            """, logger: logger)
    }

    /// The first approval of a version's definitions, unless the fleet
    /// kept one already; returns the pins in force (nil: none stored).
    package func keepFirstApproval(id: String, version: String, approved: String) async throws -> SharedPins? {
        let (c, logger) = (connection, logger)
        return try await bounded("writing to the shared registry", seconds: 30) {
            var current: SharedPins?
            for try await (a, o) in try await c.query("SELECT approved, offered FROM burrow_registry_pins WHERE id = \(id) AND version = \(version)", logger: logger)
                .decode((String?, String?).self)
            {
                current = SharedPins(id: id, version: version, approved: a, offered: o)
            }
            if current?.approved != nil { return current }
            var wanted = current ?? SharedPins(id: id, version: version, approved: nil, offered: nil)
            wanted.approved = approved
            try await self.put(id: id, version: version, tools: nil, pins: [wanted])
            return wanted
        }
    }
}
