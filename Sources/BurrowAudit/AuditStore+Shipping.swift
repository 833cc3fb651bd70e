import BurrowJSON
import BurrowSQLite

/// A stored row whole: the fields the chain covers and its two links.
/// What a central copy of the log holds, and checks as the local log does.
package struct AuditRecord: Sendable, Equatable {
    package var sequence: Int64
    package var time: Int64
    package var tool: [UInt8]
    package var type: [UInt8]
    package var principal: [UInt8]
    package var uid: Int64?
    package var invocation: [UInt8]?
    package var profileDigest: [UInt8]?
    package var sandboxLevel: [UInt8]?
    package var host: [UInt8]
    package var details: [UInt8]
    package var origin: [UInt8]?
    package var previousHash: [UInt8]
    package var hash: [UInt8]

    package init(
        sequence: Int64, time: Int64, tool: [UInt8], type: [UInt8], principal: [UInt8], uid: Int64?, invocation: [UInt8]?, profileDigest: [UInt8]?,
        sandboxLevel: [UInt8]?, host: [UInt8], details: [UInt8], origin: [UInt8]?, previousHash: [UInt8], hash: [UInt8]
    ) {
        self.sequence = sequence
        self.time = time
        self.tool = tool
        self.type = type
        self.principal = principal
        self.uid = uid
        self.invocation = invocation
        self.profileDigest = profileDigest
        self.sandboxLevel = sandboxLevel
        self.host = host
        self.details = details
        self.origin = origin
        self.previousHash = previousHash
        self.hash = hash
    }

    /// Whether its hash is the link from `previousHash` over its fields:
    /// the row is as it was written.
    package var holds: Bool {
        AuditChain.link(
            previous: previousHash,
            row: AuditChain.Row(
                sequence: sequence, time: time, tool: tool, type: type, principal: principal, uid: uid, invocation: invocation, profileDigest: profileDigest,
                sandboxLevel: sandboxLevel, host: host, details: details, origin: origin)) == hash
    }

    /// The chain's starting link (32 zero bytes).
    package static var genesis: [UInt8] { AuditChain.genesis }

    /// The columns `init(_:)` reads, in its order.
    static let columns = "sequence, time, tool, type, principal, uid, invocation, profile_digest, sandbox_level, host, details, previous_hash, hash, origin"

    /// The row a statement selecting `columns` is on.
    init(_ row: AuditDatabase.Statement) {
        func optional(_ i: Int32) -> [UInt8]? { row.isNull(i) ? nil : row.bytes(i) }
        self.init(
            sequence: row.int64(0), time: row.int64(1), tool: row.bytes(2), type: row.bytes(3), principal: row.bytes(4), uid: row.isNull(5) ? nil : row.int64(5),
            invocation: optional(6), profileDigest: optional(7), sandboxLevel: optional(8), host: row.bytes(9), details: row.bytes(10), origin: optional(13),
            previousHash: row.bytes(11), hash: row.bytes(12))
    }

    /// The event it holds, as queries return it. Text Burrow did not write
    /// (not UTF-8) shows its bytes as `\xNN`; details that do not parse were
    /// not written by Burrow and are shown as `unparsed` text.
    package var event: AuditEvent {
        let detailsText = decodeEscapingInvalid(details)
        let parsed = (try? JSONParser.parse(detailsText, limits: AuditStore.storedDetailsLimits)) ?? .object(["unparsed": .string(detailsText)])
        var e = AuditEvent(
            tool: decodeEscapingInvalid(tool), type: AuditEventType(rawValue: decodeEscapingInvalid(type)) ?? .anomalousActivity,
            context: SecurityContext(
                principal: decodeEscapingInvalid(principal), uid: uid.map { UInt32(truncatingIfNeeded: $0) }, invocationID: invocation.map(decodeEscapingInvalid),
                profileDigest: profileDigest.map(decodeEscapingInvalid), sandboxLevel: sandboxLevel.map(decodeEscapingInvalid), host: decodeEscapingInvalid(host)),
            details: parsed, time: time)
        e.sequence = sequence
        e.previousHash = AuditChain.hex(previousHash)
        e.hash = AuditChain.hex(hash)
        e.origin = origin.map(decodeEscapingInvalid)
        return e
    }
}

extension AuditStore {
    /// The `shipped` mark's name for the central copy (`[audit] central_url`).
    package static let centralCopy = "central"

    /// Rows after `sequence`, oldest first, at most `limit`.
    package func records(after sequence: Int64, limit: Int) throws(AuditError) -> [AuditRecord] {
        try withReader { db throws(AuditError) in
            let rows = try db.cached("SELECT \(AuditRecord.columns) FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?")
            defer { rows.reset() }
            rows.bind(1, sequence)
            rows.bind(2, Int64(limit))
            var out: [AuditRecord] = []
            while try rows.step() { out.append(AuditRecord(rows)) }
            return out
        }
    }

    /// The chain's last link: the newest row's sequence and hash (else the last pruning cut's, else 0 and genesis).
    package func head() throws(AuditError) -> (sequence: Int64, hash: [UInt8]) {
        try withReader { db throws(AuditError) in try head(db) }
    }

    /// The hash of row `sequence`; nil when the log has no such row (pruned, or not written).
    package func hash(at sequence: Int64) throws(AuditError) -> [UInt8]? {
        try withReader { db throws(AuditError) in
            let row = try db.cached("SELECT hash FROM events WHERE sequence = ?")
            defer { row.reset() }
            row.bind(1, sequence)
            return try row.step() ? row.bytes(0) : nil
        }
    }

    /// How far `target` (a central copy) holds this log, as its shipper
    /// last recorded it; nil: never recorded.
    package func shipped(to target: String) throws(AuditError) -> Int64? {
        try withReader { db throws(AuditError) in
            let row = try db.cached("SELECT through_sequence FROM shipped WHERE target = ?")
            defer { row.reset() }
            row.bind(1, target)
            return try row.step() ? row.int64(0) : nil
        }
    }

    /// Records that `target` holds this log through row `sequence` (after
    /// the rows are durable there): what pruning may delete.
    package func markShipped(to target: String, through sequence: Int64) throws(AuditError) {
        guard let db = writerConnection else { throw .file("\(path) is open read-only") }
        try withReader { _ throws(AuditError) in
            try db.transaction { () throws(AuditError) in
                let upsert = try db.cached(
                    "INSERT INTO shipped (target, through_sequence) VALUES (?, ?) ON CONFLICT (target) DO UPDATE SET through_sequence = excluded.through_sequence")
                upsert.bind(1, target)
                upsert.bind(2, sequence)
                _ = try upsert.step()
                upsert.reset()
            }
        }
    }
}
