/// The daemon's wire types (HTTP/1.1 + JSON under /v1). Field names are
/// stable; docs/daemon-api.md documents them.

/// Every error response: `{"error": {"code": "forbidden", "message": "…"}}`.
/// `code` is stable and machine-readable; `message` is for people.
public struct ErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var code: String
        public var message: String

        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }
    public var error: Detail
    /// With code `validation_failed`: every finding.
    public var validation: ValidationReport?

    public init(code: String, message: String, validation: ValidationReport? = nil) {
        error = Detail(code: code, message: message)
        self.validation = validation
    }
}

/// `GET /v1/health`.
public struct HealthResponse: Codable, Sendable, Equatable {
    public struct Caller: Codable, Sendable, Equatable {
        public var pid: Int32
        public var uid: UInt32
        public var gid: UInt32
        /// admin, invoker, auditor: what this caller may do.
        public var roles: [String]

        public init(pid: Int32, uid: UInt32, gid: UInt32, roles: [String]) {
            self.pid = pid
            self.uid = uid
            self.gid = gid
            self.roles = roles
        }
    }

    public var status: String
    public var version: String
    public var uptimeSeconds: Int64
    public var auditDatabase: String
    public var caller: Caller

    public init(status: String, version: String, uptimeSeconds: Int64, auditDatabase: String, caller: Caller) {
        self.status = status
        self.version = version
        self.uptimeSeconds = uptimeSeconds
        self.auditDatabase = auditDatabase
        self.caller = caller
    }
}
