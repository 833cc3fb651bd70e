public import BurrowAudit
public import BurrowProfile

/// What a tool is, as the registry describes it.
public struct ToolMetadata: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    public var description: String
    public var author: String?
    public var categories: [String]
    public var documentationURL: String?
    public var dependencies: [String]

    public init(
        name: String, version: String, description: String = "", author: String? = nil, categories: [String] = [], documentationURL: String? = nil,
        dependencies: [String] = []
    ) {
        self.name = name
        self.version = version
        self.description = description
        self.author = author
        self.categories = categories
        self.documentationURL = documentationURL
        self.dependencies = dependencies
    }

    enum CodingKeys: String, CodingKey {
        case name, version, description, author, categories
        case documentationURL = "documentationUrl"
        case dependencies
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        version = try c.decode(String.self, forKey: .version)
        description = try c.decodeIfPresent(String.self, forKey: .description) ?? ""
        author = try c.decodeIfPresent(String.self, forKey: .author)
        categories = try c.decodeIfPresent([String].self, forKey: .categories) ?? []
        documentationURL = try c.decodeIfPresent(String.self, forKey: .documentationURL)
        dependencies = try c.decodeIfPresent([String].self, forKey: .dependencies) ?? []
    }
}

/// A registration's state: `disabled` tools are kept but cannot be invoked.
public enum ToolStatus: String, Codable, Sendable, CaseIterable {
    case active, deprecated, disabled
}

/// Per-tool limits on callers; each is lowered to the host policy's [rate_limits] value.
public struct ToolRateLimits: Codable, Sendable, Equatable {
    public var requestsPerMinute: Int?
    public var maxConcurrent: Int?

    public init(requestsPerMinute: Int? = nil, maxConcurrent: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.maxConcurrent = maxConcurrent
    }
}

/// `POST /v1/tools` and `PUT /v1/tools/{id}`: one version of one tool.
public struct ToolRegistration: Codable, Sendable, Equatable {
    /// Letters, digits, '.', '_' and '-'; at most 128 characters.
    public var id: String
    public var metadata: ToolMetadata
    /// The security profile: a JSON object (the profile's JSON form) or a
    /// string holding the TOML form. It may `extends` a shipped profile by name.
    public var profile: JSONValue
    /// The command run for each invocation; the caller's arguments are appended.
    public var command: [String]
    /// The MCP tool schemas the tool exposes (kept as given).
    public var capabilities: [JSONValue]
    public var status: ToolStatus
    public var rateLimits: ToolRateLimits?

    public init(
        id: String, metadata: ToolMetadata, profile: JSONValue, command: [String], capabilities: [JSONValue] = [], status: ToolStatus = .active,
        rateLimits: ToolRateLimits? = nil
    ) {
        self.id = id
        self.metadata = metadata
        self.profile = profile
        self.command = command
        self.capabilities = capabilities
        self.status = status
        self.rateLimits = rateLimits
    }

    enum CodingKeys: String, CodingKey { case id, metadata, profile, command, capabilities, status, rateLimits }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        metadata = try c.decode(ToolMetadata.self, forKey: .metadata)
        profile = try c.decode(JSONValue.self, forKey: .profile)
        command = try c.decode([String].self, forKey: .command)
        capabilities = try c.decodeIfPresent([JSONValue].self, forKey: .capabilities) ?? []
        status = try c.decodeIfPresent(ToolStatus.self, forKey: .status) ?? .active
        rateLimits = try c.decodeIfPresent(ToolRateLimits.self, forKey: .rateLimits)
    }
}

/// One finding of validation, as `burrow profile lint` prints it.
public struct ValidationFinding: Codable, Sendable, Equatable {
    public var severity: String
    public var file: String
    public var keyPath: String
    public var message: String

    public init(severity: String, file: String, keyPath: String, message: String) {
        self.severity = severity
        self.file = file
        self.keyPath = keyPath
        self.message = message
    }
}

/// What the plan for a profile would enforce here.
public struct PlanSummary: Codable, Sendable, Equatable {
    public var sandboxLevel: String
    public var namespaces: [String]
    public var networkAccess: String
    public var executable: String?
    /// Controls the profile asks for that this host cannot enforce: invocations would be refused.
    public var unenforceable: [String]
    public var limits: [String: String]

    public init(sandboxLevel: String, namespaces: [String], networkAccess: String, executable: String?, unenforceable: [String], limits: [String: String]) {
        self.sandboxLevel = sandboxLevel
        self.namespaces = namespaces
        self.networkAccess = networkAccess
        self.executable = executable
        self.unenforceable = unenforceable
        self.limits = limits
    }
}

/// `POST /v1/security/validate`, and the validation part of a registration.
public struct ValidationReport: Codable, Sendable, Equatable {
    public var valid: Bool
    public var findings: [ValidationFinding]
    /// What the host policy changed (as in the launch plan's `clamps`).
    public var clamps: [Clamp]
    /// 0 (nothing exposed) to 10; see `burrow dry-run`.
    public var exposureScore: Double?
    public var plan: PlanSummary?

    public init(valid: Bool, findings: [ValidationFinding], clamps: [Clamp], exposureScore: Double?, plan: PlanSummary?) {
        self.valid = valid
        self.findings = findings
        self.clamps = clamps
        self.exposureScore = exposureScore
        self.plan = plan
    }
}

/// A stored registration with what the daemon added.
public struct ToolRecord: Codable, Sendable, Equatable {
    public var registration: ToolRegistration
    public var registeredAt: String
    public var updatedAt: String
    /// uid:N of the admin who last wrote it.
    public var registeredBy: String
    public var validation: ValidationReport

    public init(registration: ToolRegistration, registeredAt: String, updatedAt: String, registeredBy: String, validation: ValidationReport) {
        self.registration = registration
        self.registeredAt = registeredAt
        self.updatedAt = updatedAt
        self.registeredBy = registeredBy
        self.validation = validation
    }
}

/// `GET /v1/discovery/categories`.
public struct CategoryCount: Codable, Sendable, Equatable {
    public var category: String
    public var tools: Int

    public init(category: String, tools: Int) {
        self.category = category
        self.tools = tools
    }
}

/// `POST /v1/tools/{id}/invocations`.
public struct InvocationRequest: Codable, Sendable, Equatable {
    /// Appended to the registration's command.
    public var arguments: [String]
    /// The tool's stdin as text…
    public var stdin: String?
    /// …or as base64 (for bytes that are not UTF-8).
    public var stdinBase64: String?
    /// Extra environment: only names the profile's env_whitelist admits.
    public var environment: [String: String]
    /// A deadline shorter than the profile's max_execution_time.
    public var timeoutSeconds: Double?
    /// The registration to run; default: the highest version that is not disabled.
    public var version: String?

    public init(
        arguments: [String] = [], stdin: String? = nil, stdinBase64: String? = nil, environment: [String: String] = [:], timeoutSeconds: Double? = nil,
        version: String? = nil
    ) {
        self.arguments = arguments
        self.stdin = stdin
        self.stdinBase64 = stdinBase64
        self.environment = environment
        self.timeoutSeconds = timeoutSeconds
        self.version = version
    }

    enum CodingKeys: String, CodingKey { case arguments, stdin, stdinBase64, environment, timeoutSeconds, version }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        arguments = try c.decodeIfPresent([String].self, forKey: .arguments) ?? []
        stdin = try c.decodeIfPresent(String.self, forKey: .stdin)
        stdinBase64 = try c.decodeIfPresent(String.self, forKey: .stdinBase64)
        environment = try c.decodeIfPresent([String: String].self, forKey: .environment) ?? [:]
        timeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds)
        version = try c.decodeIfPresent(String.self, forKey: .version)
    }
}

/// Captured output of one stream: `text` when it is valid UTF-8, else `base64`.
public struct CapturedOutput: Codable, Sendable, Equatable {
    public var text: String?
    public var base64: String?
    /// Every byte the tool wrote.
    public var bytes: UInt64
    /// Whether only the first [daemon] max_output_size bytes are here.
    public var truncated: Bool

    public init(text: String?, base64: String?, bytes: UInt64, truncated: Bool) {
        self.text = text
        self.base64 = base64
        self.bytes = bytes
        self.truncated = truncated
    }
}

/// A limit the sandbox hit (also a ResourceLimitExceeded audit event).
public struct LimitHit: Codable, Sendable, Equatable {
    public var resource: String
    public var limit: String
    public var observed: String

    public init(resource: String, limit: String, observed: String) {
        self.resource = resource
        self.limit = limit
        self.observed = observed
    }
}

/// A system call the sandbox refused (also a SecurityViolation audit event).
public struct RefusedCall: Codable, Sendable, Equatable {
    public var syscall: String
    public var errno: String
    public var count: Int
    public var reason: String

    public init(syscall: String, errno: String, count: Int, reason: String) {
        self.syscall = syscall
        self.errno = errno
        self.count = count
        self.reason = reason
    }
}

/// The outcome of an invocation; `GET /v1/invocations/{id}`.
public struct InvocationResult: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable { case running, finished, failed }

    public var id: String
    public var tool: String
    public var version: String
    public var state: State
    public var startedAt: String
    public var finishedAt: String?
    /// The tool's exit code, or nil when a signal ended it.
    public var exitCode: Int32?
    public var signal: Int32?
    /// When the sandbox could not be started (state failed): why.
    public var error: ErrorBody.Detail?
    public var stdout: CapturedOutput?
    public var stderr: CapturedOutput?
    public var limits: [LimitHit]
    public var violations: [RefusedCall]
    /// Set when burrowd stopped the tool itself (shutdown, a streaming caller gone).
    public var stopped: String?
    /// Plan rows applied differently on this host, and how the sandbox was made.
    public var notes: [String]?
    /// True when the outcome could not be recorded in the audit log as the
    /// run ended (a full disk): it is kept and recorded as soon as the log
    /// takes it (`recordedLate`); `notes` says why.
    public var auditLost: Bool?
    public var durationMilliseconds: UInt64?
    public var spawnMicroseconds: UInt64?
    public var cpuMicroseconds: UInt64?
    public var peakMemoryBytes: UInt64?

    public init(id: String, tool: String, version: String, state: State, startedAt: String) {
        self.id = id
        self.tool = tool
        self.version = version
        self.state = state
        self.startedAt = startedAt
        limits = []
        violations = []
    }
}

/// One line of a streamed invocation (`Accept: application/x-ndjson`).
/// `event` is started, stdout, stderr, violation, limit or exited; `exited`
/// carries the whole result (its output fields hold what was kept).
public struct InvocationEvent: Codable, Sendable, Equatable {
    public var event: String
    public var invocation: String
    public var text: String?
    public var base64: String?
    public var violation: RefusedCall?
    public var limit: LimitHit?
    public var result: InvocationResult?

    public init(
        event: String, invocation: String, text: String? = nil, base64: String? = nil, violation: RefusedCall? = nil, limit: LimitHit? = nil,
        result: InvocationResult? = nil
    ) {
        self.event = event
        self.invocation = invocation
        self.text = text
        self.base64 = base64
        self.violation = violation
        self.limit = limit
        self.result = result
    }
}

/// `GET /v1/tools/{id}`: one version (the latest unless `?version=`) and every version stored.
public struct ToolDetail: Codable, Sendable, Equatable {
    public var tool: ToolRecord
    /// Highest first.
    public var versions: [String]

    public init(tool: ToolRecord, versions: [String]) {
        self.tool = tool
        self.versions = versions
    }
}

/// `DELETE /v1/tools/{id}`.
public struct RemovedTool: Codable, Sendable, Equatable {
    public var id: String
    public var removed: [String]

    public init(id: String, removed: [String]) {
        self.id = id
        self.removed = removed
    }
}

/// `POST /v1/security/validate`.
public struct ValidationRequest: Codable, Sendable, Equatable {
    /// As in a registration: a JSON object or TOML text.
    public var profile: JSONValue
    /// With a command, the plan it would get is compiled too.
    public var command: [String]?
    /// The name findings refer to (default "profile").
    public var id: String?

    public init(profile: JSONValue, command: [String]? = nil, id: String? = nil) {
        self.profile = profile
        self.command = command
        self.id = id
    }
}

/// A started MCP session (`POST /v1/tools/{id}/sessions`).
public struct SessionStarted: Codable, Sendable, Equatable {
    /// The session id, also the audit invocation id of the server's run.
    public var id: String
    public var tool: String
    public var version: String
    /// The MCP Streamable HTTP endpoint on the daemon's socket.
    public var endpoint: String
    /// Ended after this long without a request.
    public var idleTimeoutSeconds: Int

    public init(id: String, tool: String, version: String, endpoint: String, idleTimeoutSeconds: Int) {
        self.id = id
        self.tool = tool
        self.version = version
        self.endpoint = endpoint
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }
}
