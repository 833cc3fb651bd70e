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
        /// admin, auditor, invoker, runner: what this caller may do.
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
