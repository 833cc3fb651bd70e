package import BurrowAPI
import BurrowAudit
import BurrowCrypto
import BurrowSQLite
import FoundationEssentials

/// API keys for remote callers (`[auth] methods` with "api_key"):
/// `Authorization: Bearer bk_<id>_<secret>`, the secret 32 random bytes
/// (base64url). burrowd keeps only the secret's SHA-256 (a fast hash is
/// enough for a random 256-bit secret; the comparison is constant-time),
/// with the key's roles, its expiry and its revocation, in the registry
/// database. Managed by local admins only (`burrow keys`): a key never
/// makes another key.
///
/// A key also signs requests (`RequestSigning`) without its secret ever
/// travelling: its signing key is HMAC-SHA256(secret, "burrow-request-signing-v1"),
/// which burrowd must keep as it is (a symmetric key), unlike the secret.
package struct APIKeys: Sendable {
    let store: RegistryStore

    /// Why a presented key is refused (the audit row's message; the caller
    /// hears only that it is not valid).
    enum Refusal: Error, Equatable {
        case malformed
        case unknown(String)
        case wrongSecret(String)
        case expired(String)
        case revoked(String)

        var message: String {
            switch self {
            case .malformed: "the bearer token is not an API key (bk_<id>_<secret>)"
            case .unknown(let id): "no API key \(id)"
            case .wrongSecret(let id): "API key \(id): the secret does not match"
            case .expired(let id): "API key \(id) has expired"
            case .revoked(let id): "API key \(id) was revoked"
            }
        }
    }

    /// The key `token` names, if it is valid now.
    func verify(_ token: some StringProtocol, now: Int64 = AuditClock.now()) throws -> RegistryStore.StoredKey {
        guard let presented = APIKeyToken(token) else { throw Refusal.malformed }
        guard let key = try store.key(presented.id) else { throw Refusal.unknown(presented.id) }
        // Compared before anything else about the key is told.
        guard ConstantTime.equal(SHA256.hash(presented.secret), key.digest) else { throw Refusal.wrongSecret(presented.id) }
        try Self.current(key, now: now)
        return key
    }

    /// Refuses a revoked or expired key.
    static func current(_ key: RegistryStore.StoredKey, now: Int64) throws(Refusal) {
        if key.revokedAt != nil { throw Refusal.revoked(key.id) }
        if key.expiresAt <= now { throw Refusal.expired(key.id) }
    }

    /// The key a caller holding `secret` (the base64url text after `bk_<id>_`) signs requests with.
    package static func signingKey(secret: [UInt8]) -> [UInt8] { HMACSHA256.mac(key: secret, Array("burrow-request-signing-v1".utf8)) }

    /// A new key: its id and secret random, its digest stored durably.
    func create(name: String, roles: [String], lifetimeSeconds: Int, createdBy: String) throws -> APIKeyCreated {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<5).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64) { Array($0) } }
        let id = Hex.encode(Array(random[0..<8]))
        let secret = Array(random[8..<40])
        let encoded = Data(secret).base64EncodedString().replacing("+", with: "-").replacing("/", with: "_").replacing("=", with: "")
        let now = AuditClock.now()
        let key = RegistryStore.StoredKey(
            id: id, digest: SHA256.hash(Array(encoded.utf8)), signingKey: Self.signingKey(secret: Array(encoded.utf8)), name: name, roles: roles, createdBy: createdBy, createdAt: now,
            expiresAt: now + Int64(lifetimeSeconds) * 1_000_000, revokedAt: nil)
        try store.addKey(key)
        return APIKeyCreated(key: key.info, secret: APIKeyToken.prefix + id + "_" + encoded)
    }
}

extension RegistryStore {
    /// An API key's row: never its secret.
    package struct StoredKey: Sendable, Equatable {
        var id: String
        var digest: [UInt8]
        /// Empty for a key made before request signing (it cannot sign).
        var signingKey: [UInt8]
        var name: String
        var roles: [String]
        var createdBy: String
        var createdAt: Int64
        var expiresAt: Int64
        var revokedAt: Int64?

        package var info: APIKeyInfo {
            APIKeyInfo(
                id: id, name: name, roles: roles, createdBy: createdBy, createdAt: AuditClock.format(createdAt), expiresAt: AuditClock.format(expiresAt),
                revokedAt: revokedAt.map(AuditClock.format))
        }
    }

    func addKey(_ key: StoredKey) throws(Failure) {
        try durably { db throws(SQLiteError) in
            let stmt = try db.cached(
                """
                INSERT INTO api_keys(id, digest, signing_key, name, roles, created_by, created_at, expires_at, revoked_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)
                """)
            stmt.bind(1, key.id)
            stmt.bind(2, Hex.encode(key.digest))
            stmt.bind(3, Hex.encode(key.signingKey))
            stmt.bind(4, key.name)
            stmt.bind(5, key.roles.joined(separator: ","))
            stmt.bind(6, key.createdBy)
            stmt.bind(7, key.createdAt)
            stmt.bind(8, key.expiresAt)
            defer { stmt.reset() }
            try stmt.step()
        }
    }

    private static let keyColumns = "id, digest, signing_key, name, roles, created_by, created_at, expires_at, revoked_at"

    private func keyRows(_ sql: String, bind: (SQLiteConnection<SQLiteError>.Statement) -> Void) throws(Failure) -> [StoredKey] {
        try withDatabase { db throws(SQLiteError) in
            let stmt = try db.cached(sql)
            bind(stmt)
            defer { stmt.reset() }
            var out: [StoredKey] = []
            while try stmt.step() {
                out.append(
                    StoredKey(
                        id: stmt.text(0) ?? "", digest: Hex.decode(stmt.text(1) ?? "") ?? [], signingKey: Hex.decode(stmt.text(2) ?? "") ?? [],
                        name: stmt.text(3) ?? "", roles: (stmt.text(4) ?? "").split(separator: ",").map(String.init), createdBy: stmt.text(5) ?? "",
                        createdAt: stmt.int64(6), expiresAt: stmt.int64(7), revokedAt: stmt.isNull(8) ? nil : stmt.int64(8)))
            }
            return out
        }
    }

    func key(_ id: String) throws(Failure) -> StoredKey? {
        try keyRows("SELECT \(Self.keyColumns) FROM api_keys WHERE id = ?1", bind: { $0.bind(1, id) }).first
    }

    /// Every key, newest first.
    func keys() throws(Failure) -> [StoredKey] {
        try keyRows("SELECT \(Self.keyColumns) FROM api_keys ORDER BY created_at DESC, id", bind: { _ in })
    }

    /// Marks a key revoked (once: a second revocation keeps the first time); nil when there is none.
    func revokeKey(_ id: String, at time: Int64) throws(Failure) -> StoredKey? {
        try durably { db throws(SQLiteError) in
            let stmt = try db.cached("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1")
            stmt.bind(1, id)
            stmt.bind(2, time)
            defer { stmt.reset() }
            try stmt.step()
        }
        return try key(id)
    }
}

extension RegistryStore {
    /// Removes a key outright: only to undo a creation the audit log could not record.
    func deleteKey(_ id: String) throws(Failure) {
        try durably { db throws(SQLiteError) in
            let stmt = try db.cached("DELETE FROM api_keys WHERE id = ?1")
            stmt.bind(1, id)
            defer { stmt.reset() }
            try stmt.step()
        }
    }
}
