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
    /// Values for the profile's parameters (`[parameters.NAME]`), by name.
    package var parameters: [String: String]

    package init(
        arguments: [String] = [], stdin: String? = nil, stdinBase64: String? = nil, environment: [String: String] = [:], timeoutSeconds: Double? = nil,
        version: String? = nil, parameters: [String: String] = [:]
    ) {
        self.parameters = parameters
        self.arguments = arguments
        self.stdin = stdin
        self.stdinBase64 = stdinBase64
        self.environment = environment
        self.timeoutSeconds = timeoutSeconds
        self.version = version
    }

    enum CodingKeys: String, CodingKey { case arguments, stdin, stdinBase64, environment, timeoutSeconds, version, parameters }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        arguments = try c.decodeIfPresent([String].self, forKey: .arguments) ?? []
        stdin = try c.decodeIfPresent(String.self, forKey: .stdin)
        stdinBase64 = try c.decodeIfPresent(String.self, forKey: .stdinBase64)
        environment = try c.decodeIfPresent([String: String].self, forKey: .environment) ?? [:]
        timeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds)
        version = try c.decodeIfPresent(String.self, forKey: .version)
        parameters = try c.decodeIfPresent([String: String].self, forKey: .parameters) ?? [:]
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
