package import BurrowAudit
import BurrowSystem
import NIOCore
import NIOSSL
package import PostgresNIO

/// The central copy of every node's audit log, in PostgreSQL: each node's
/// rows exactly as its local log holds them (every field the chain covers,
/// byte for byte, and both links), keyed by node and sequence, so shipping
/// is idempotent and the copy verifies as the local log does.
extension FleetDatabase {
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
