/// The daemon's wire types (HTTP/1.1 + JSON under /v1). Field names are
/// stable; docs/daemon-api.md documents them.

/// Every error response: `{"error": {"code": "forbidden", "message": "…"}}`.
/// `code` is stable and machine-readable; `message` is for people.
package struct ErrorBody: Codable, Sendable, Equatable {
    package struct Detail: Codable, Sendable, Equatable {
        package var code: String
        package var message: String

        package init(code: ErrorCode, message: String) {
            self.code = code.name
            self.message = message
        }
    }
    package var error: Detail
    /// With code `validation_failed`: every finding.
    package var validation: ValidationReport?

    package init(code: ErrorCode, message: String, validation: ValidationReport? = nil) {
        error = Detail(code: code, message: message)
        self.validation = validation
    }
}

/// `GET /v1/health`.
package struct HealthResponse: Codable, Sendable, Equatable {
    package struct Caller: Codable, Sendable, Equatable {
        /// The name audit rows carry: a user name (`uid:N`), or a remote
        /// principal (`cert:NAME`).
        package var principal: String
        /// A local caller's process, user and group (from the socket).
        package var pid: Int32?
        package var uid: UInt32?
        package var gid: UInt32?
        /// A remote caller's address and how it was authenticated (`mtls`).
        package var address: String?
        package var authentication: String?
        /// admin, auditor, invoker, reporter, runner: what this caller may do.
        package var roles: [String]

        package init(
            principal: String, pid: Int32? = nil, uid: UInt32? = nil, gid: UInt32? = nil, address: String? = nil, authentication: String? = nil, roles: [String]
        ) {
            self.principal = principal
            self.pid = pid
            self.uid = uid
            self.gid = gid
            self.address = address
            self.authentication = authentication
            self.roles = roles
        }
    }

    package var status: String
    package var version: String
    package var uptimeSeconds: Int64
    package var auditDatabase: String
    package var caller: Caller

    package init(status: String, version: String, uptimeSeconds: Int64, auditDatabase: String, caller: Caller) {
        self.status = status
        self.version = version
        self.uptimeSeconds = uptimeSeconds
        self.auditDatabase = auditDatabase
        self.caller = caller
    }
}

/// An API key as burrowd lists it (`GET /v1/keys`): never its secret, which
/// burrowd keeps only as a SHA-256 digest.
package struct APIKeyInfo: Codable, Sendable, Equatable {
    /// 16 hex digits: the key's principal is `key:<id>`.
    package var id: String
    package var name: String
    /// The roles the key carries (its scopes).
    package var roles: [String]
    package var createdBy: String
    package var createdAt: String
    package var expiresAt: String
    package var revokedAt: String?

    package init(id: String, name: String, roles: [String], createdBy: String, createdAt: String, expiresAt: String, revokedAt: String? = nil) {
        self.id = id
        self.name = name
        self.roles = roles
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }
}

/// An API key as a caller presents it: `bk_` + the 16-hex-digit id + `_` +
/// the secret (43 base64url characters: 32 random bytes).
package struct APIKeyToken: Sendable, Equatable {
    package static let prefix = "bk_"

    package var id: String
    /// The secret as presented (its base64url text, whose SHA-256 burrowd keeps).
    package var secret: [UInt8]

    /// Nil unless `token` has exactly that shape.
    package init?(_ token: some StringProtocol) {
        let bytes = Array(token.utf8)
        guard bytes.count == 3 + 16 + 1 + 43, bytes.starts(with: Self.prefix.utf8), bytes[19] == UInt8(ascii: "_") else { return nil }
        let id = bytes[3..<19]
        guard id.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        let secret = bytes[20...]
        guard secret.allSatisfy(Base64URL.isAlphabet) else { return nil }
        self.id = String(decoding: id, as: UTF8.self)
        self.secret = Array(secret)
    }

    /// The token's text.
    package var text: String { Self.prefix + id + "_" + String(decoding: secret, as: UTF8.self) }

    /// Whether `id` is a key id (16 lowercase hex digits).
    package static func isID(_ id: String) -> Bool { APIKeyToken(prefix + id + "_" + String(repeating: "A", count: 43)) != nil }
}

/// `POST /v1/keys`.
package struct APIKeyRequest: Codable, Sendable, Equatable {
    /// What the key is for (1 to 128 printable characters).
    package var name: String
    /// Roles the key carries: a subset of the creator's, at least one.
    package var roles: [String]
    /// How long it lives (at most `[auth] max_key_lifetime`).
    package var expiresInSeconds: Int

    package init(name: String, roles: [String], expiresInSeconds: Int) {
        self.name = name
        self.roles = roles
        self.expiresInSeconds = expiresInSeconds
    }
}

/// The answer to `POST /v1/keys`: the only time the secret is shown.
package struct APIKeyCreated: Codable, Sendable, Equatable {
    package var key: APIKeyInfo
    /// `bk_<id>_<secret>`, for `Authorization: Bearer`.
    package var secret: String

    package init(key: APIKeyInfo, secret: String) {
        self.key = key
        self.secret = secret
    }
}
