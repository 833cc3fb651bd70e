package import BurrowJSON

/// Who and what an event concerns, beyond the tool: the security context the
/// registry specification attaches to every audit event.
package struct SecurityContext: Sendable, Equatable, Codable {
    /// The caller: a user name, or `uid:N` when the uid has none.
    package var principal: String
    /// The caller's uid (from the process, or from SO_PEERCRED for the daemon).
    package var uid: UInt32?
    package var invocationID: String?
    /// `sha256:` of the profile the invocation ran under.
    package var profileDigest: String?
    package var sandboxLevel: String?
    /// The host name of the machine that wrote the event.
    package var host: String

    package init(principal: String, uid: UInt32?, invocationID: String? = nil, profileDigest: String? = nil, sandboxLevel: String? = nil, host: String) {
        self.principal = principal
        self.uid = uid
        self.invocationID = invocationID
        self.profileDigest = profileDigest
        self.sandboxLevel = sandboxLevel
        self.host = host
    }
}

/// One audit record. `sequence`, `time` and the two hashes are assigned by
/// the store when the event is appended; the JSON form (`burrow audit --json`)
/// is documented in docs/audit.md.
package struct AuditEvent: Sendable, Equatable, Codable {
    /// Position in the hash chain (1, 2, …; continues across pruning).
    package var sequence: Int64
    /// UTC, microseconds since the epoch.
    package var time: Int64
    package var tool: String
    package var type: AuditEventType
    package var context: SecurityContext
    /// A JSON object; its fields per type are documented in docs/audit.md.
    package var details: JSON
    /// Hex SHA-256 of the previous row's hash and this row's canonical encoding.
    package var hash: String
    package var previousHash: String
    /// Who reported it, when burrowd did not witness it itself: `reported:<principal>`
    /// (`POST /api/v1/security/audit`). Nil for every event Burrow wrote of what it ran.
    package var origin: String?
    /// The fleet node whose log holds it, for an event read from the central
    /// copy (`[daemon] node_id`); nil: this node's own log.
    package var node: String?

    /// An event of any type with any details: the store's own (reading rows)
    /// and tests'. Everything else builds events from typed details
    /// (`init(tool:context:details:)`, AuditDetails.swift).
    init(tool: String, type: AuditEventType, context: SecurityContext, details: JSON = .object([:]), time: Int64? = nil) {
        self.sequence = 0
        self.time = time ?? AuditClock.now()
        self.tool = tool
        self.type = type
        self.context = context
        self.details = details
        self.hash = ""
        self.previousHash = ""
    }

    enum CodingKeys: String, CodingKey {
        case sequence, time, tool, type, context, details, hash, previousHash, origin, node
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sequence, forKey: .sequence)
        try c.encode(AuditClock.format(time), forKey: .time)
        try c.encode(tool, forKey: .tool)
        try c.encode(type, forKey: .type)
        try c.encode(context, forKey: .context)
        try c.encode(details, forKey: .details)
        try c.encode(hash, forKey: .hash)
        try c.encode(previousHash, forKey: .previousHash)
        try c.encodeIfPresent(origin, forKey: .origin)
        try c.encodeIfPresent(node, forKey: .node)
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sequence = try c.decode(Int64.self, forKey: .sequence)
        let text = try c.decode(String.self, forKey: .time)
        guard let t = AuditClock.parse(text) else {
            throw DecodingError.dataCorruptedError(forKey: .time, in: c, debugDescription: "expected an RFC 3339 UTC time")
        }
        time = t
        tool = try c.decode(String.self, forKey: .tool)
        type = try c.decode(AuditEventType.self, forKey: .type)
        context = try c.decode(SecurityContext.self, forKey: .context)
        details = try c.decode(JSON.self, forKey: .details)
        hash = try c.decode(String.self, forKey: .hash)
        previousHash = try c.decode(String.self, forKey: .previousHash)
        origin = try c.decodeIfPresent(String.self, forKey: .origin)
        node = try c.decodeIfPresent(String.self, forKey: .node)
    }
}
