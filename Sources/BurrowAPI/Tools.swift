package import BurrowAudit
package import BurrowProfile

/// What a tool is, as the registry describes it.
package struct ToolMetadata: Codable, Sendable, Equatable {
    package var name: String
    package var version: String
    package var description: String
    package var author: String?
    package var categories: [String]
    package var documentationURL: String?
    package var dependencies: [String]

    package init(
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

    package init(from decoder: any Decoder) throws {
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
package enum ToolStatus: String, Codable, Sendable, CaseIterable {
    case active, deprecated, disabled
}

/// Per-tool limits on callers; each is lowered to the host policy's [rate_limits] value.
package struct ToolRateLimits: Codable, Sendable, Equatable {
    package var requestsPerMinute: Int?
    package var maxConcurrent: Int?

    package init(requestsPerMinute: Int? = nil, maxConcurrent: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.maxConcurrent = maxConcurrent
    }
}

/// `POST /v1/tools` and `PUT /v1/tools/{id}`: one version of one tool.
package struct ToolRegistration: Codable, Sendable, Equatable {
    /// Letters, digits, '.', '_' and '-'; at most 128 characters.
    package var id: String
    package var metadata: ToolMetadata
    /// The security profile: a JSON object (the profile's JSON form) or a
    /// string holding the TOML form. It may `extends` a shipped profile by name.
    package var profile: JSONValue
    /// The command run for each invocation; the caller's arguments are appended.
    package var command: [String]
    /// The MCP tool schemas the tool exposes (kept as given).
    package var capabilities: [JSONValue]
    package var status: ToolStatus
    package var rateLimits: ToolRateLimits?

    package init(
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

    package init(from decoder: any Decoder) throws {
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
package struct ValidationFinding: Codable, Sendable, Equatable {
    package var severity: String
    package var file: String
    package var keyPath: String
    package var message: String

    package init(severity: String, file: String, keyPath: String, message: String) {
        self.severity = severity
        self.file = file
        self.keyPath = keyPath
        self.message = message
    }
}

/// What the plan for a profile would enforce here.
package struct PlanSummary: Codable, Sendable, Equatable {
    package var sandboxLevel: String
    package var namespaces: [String]
    package var networkAccess: String
    package var executable: String?
    /// Controls the profile asks for that this host cannot enforce: invocations would be refused.
    package var unenforceable: [String]
    package var limits: [String: String]

    package init(sandboxLevel: String, namespaces: [String], networkAccess: String, executable: String?, unenforceable: [String], limits: [String: String]) {
        self.sandboxLevel = sandboxLevel
        self.namespaces = namespaces
        self.networkAccess = networkAccess
        self.executable = executable
        self.unenforceable = unenforceable
        self.limits = limits
    }
}

/// `POST /v1/security/validate`, and the validation part of a registration.
package struct ValidationReport: Codable, Sendable, Equatable {
    package var valid: Bool
    package var findings: [ValidationFinding]
    /// What the host policy changed (as in the launch plan's `clamps`).
    package var clamps: [Clamp]
    /// 0 (nothing exposed) to 10; see `burrow dry-run`.
    package var exposureScore: Double?
    package var plan: PlanSummary?

    package init(valid: Bool, findings: [ValidationFinding], clamps: [Clamp], exposureScore: Double?, plan: PlanSummary?) {
        self.valid = valid
        self.findings = findings
        self.clamps = clamps
        self.exposureScore = exposureScore
        self.plan = plan
    }
}

/// A stored registration with what the daemon added.
package struct ToolRecord: Codable, Sendable, Equatable {
    package var registration: ToolRegistration
    package var registeredAt: String
    package var updatedAt: String
    /// uid:N of the admin who last wrote it.
    package var registeredBy: String
    package var validation: ValidationReport

    package init(registration: ToolRegistration, registeredAt: String, updatedAt: String, registeredBy: String, validation: ValidationReport) {
        self.registration = registration
        self.registeredAt = registeredAt
        self.updatedAt = updatedAt
        self.registeredBy = registeredBy
        self.validation = validation
    }
}

/// `GET /v1/discovery/categories`.
package struct CategoryCount: Codable, Sendable, Equatable {
    package var category: String
    package var tools: Int

    package init(category: String, tools: Int) {
        self.category = category
        self.tools = tools
    }
}

/// `POST /v1/tools/{id}/invocations`.
package struct InvocationRequest: Codable, Sendable, Equatable {
    /// Appended to the registration's command.
    package var arguments: [String]
    /// The tool's stdin as text…
    package var stdin: String?
    /// …or as base64 (for bytes that are not UTF-8).
    package var stdinBase64: String?
    /// Extra environment: only names the profile's env_whitelist admits.
    package var environment: [String: String]
    /// A deadline shorter than the profile's max_execution_time.
    package var timeoutSeconds: Double?
    /// The registration to run; default: the highest version that is not disabled.
    package var version: String?

    package init(
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

    package init(from decoder: any Decoder) throws {
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
package struct CapturedOutput: Codable, Sendable, Equatable {
    package var text: String?
    package var base64: String?
    /// Every byte the tool wrote.
    package var bytes: UInt64
    /// Whether only the first [daemon] max_output_size bytes are here.
    package var truncated: Bool

    package init(text: String?, base64: String?, bytes: UInt64, truncated: Bool) {
        self.text = text
        self.base64 = base64
        self.bytes = bytes
        self.truncated = truncated
    }
}

/// A limit the sandbox hit (also a ResourceLimitExceeded audit event).
package struct LimitHit: Codable, Sendable, Equatable {
    package var resource: String
    package var limit: String
    package var observed: String

    package init(resource: String, limit: String, observed: String) {
        self.resource = resource
        self.limit = limit
        self.observed = observed
    }
}

/// A system call the sandbox refused (also a SecurityViolation audit event).
package struct RefusedCall: Codable, Sendable, Equatable {
    package var syscall: String
    package var errno: String
    package var count: Int
    package var reason: String

    package init(syscall: String, errno: String, count: Int, reason: String) {
        self.syscall = syscall
        self.errno = errno
        self.count = count
        self.reason = reason
    }
}

/// The outcome of an invocation; `GET /v1/invocations/{id}`.
package struct InvocationResult: Codable, Sendable, Equatable {
    package enum State: String, Codable, Sendable { case running, finished, failed }

    package var id: String
    package var tool: String
    package var version: String
    package var state: State
    package var startedAt: String
    package var finishedAt: String?
    /// The tool's exit code, or nil when a signal ended it.
    package var exitCode: Int32?
    package var signal: Int32?
    /// When the sandbox could not be started (state failed): why.
    package var error: ErrorBody.Detail?
    package var stdout: CapturedOutput?
    package var stderr: CapturedOutput?
    package var limits: [LimitHit]
    package var violations: [RefusedCall]
    /// Set when burrowd stopped the tool itself (shutdown, a streaming caller gone).
    package var stopped: String?
    /// Plan rows applied differently on this host, and how the sandbox was made.
    package var notes: [String]?
    /// True when the outcome could not be recorded in the audit log as the
    /// run ended (a full disk): it is kept and recorded as soon as the log
    /// takes it (`recordedLate`); `notes` says why.
    package var auditLost: Bool?
    package var durationMilliseconds: UInt64?
    package var spawnMicroseconds: UInt64?
    package var cpuMicroseconds: UInt64?
    package var peakMemoryBytes: UInt64?

    package init(id: String, tool: String, version: String, state: State, startedAt: String) {
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
package struct InvocationEvent: Codable, Sendable, Equatable {
    package var event: String
    package var invocation: String
    package var text: String?
    package var base64: String?
    package var violation: RefusedCall?
    package var limit: LimitHit?
    package var result: InvocationResult?

    package init(
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
package struct ToolDetail: Codable, Sendable, Equatable {
    package var tool: ToolRecord
    /// Highest first.
    package var versions: [String]

    package init(tool: ToolRecord, versions: [String]) {
        self.tool = tool
        self.versions = versions
    }
}

/// `DELETE /v1/tools/{id}`.
package struct RemovedTool: Codable, Sendable, Equatable {
    package var id: String
    package var removed: [String]

    package init(id: String, removed: [String]) {
        self.id = id
        self.removed = removed
    }
}

/// `POST /v1/security/validate`.
package struct ValidationRequest: Codable, Sendable, Equatable {
    /// As in a registration: a JSON object or TOML text.
    package var profile: JSONValue
    /// With a command, the plan it would get is compiled too.
    package var command: [String]?
    /// The name findings refer to (default "profile").
    package var id: String?

    package init(profile: JSONValue, command: [String]? = nil, id: String? = nil) {
        self.profile = profile
        self.command = command
        self.id = id
    }
}

/// A started MCP session (`POST /v1/tools/{id}/sessions`).
package struct SessionStarted: Codable, Sendable, Equatable {
    /// The session id, also the audit invocation id of the server's run.
    package var id: String
    package var tool: String
    package var version: String
    /// The MCP Streamable HTTP endpoint on the daemon's socket.
    package var endpoint: String
    /// Ended after this long without a request.
    package var idleTimeoutSeconds: Int

    package init(id: String, tool: String, version: String, endpoint: String, idleTimeoutSeconds: Int) {
        self.id = id
        self.tool = tool
        self.version = version
        self.endpoint = endpoint
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }
}
