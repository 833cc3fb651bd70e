package import BurrowJSON

/// A tool another depends on: its id and the versions that satisfy
/// (`*`: any). Written `{"id": …, "versionRequirement": …}`, or as the id
/// alone (any version).
package struct ToolDependency: Codable, Sendable, Equatable, Hashable {
    package var id: String
    package var versionRequirement: String

    package init(id: String, versionRequirement: String = "*") {
        self.id = id
        self.versionRequirement = versionRequirement
    }

    enum CodingKeys: String, CodingKey { case id, versionRequirement }

    package init(from decoder: any Decoder) throws {
        if let id = try? decoder.singleValueContainer().decode(String.self) {
            self.init(id: id)
            return
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(String.self, forKey: .id), versionRequirement: try c.decodeIfPresent(String.self, forKey: .versionRequirement) ?? "*")
    }
}

/// What a tool is, as the registry describes it.
package struct ToolMetadata: Codable, Sendable, Equatable {
    package var name: String
    package var version: String
    package var description: String
    package var author: String?
    package var categories: [String]
    package var documentationURL: String?
    package var dependencies: [ToolDependency]

    package init(
        name: String, version: String, description: String = "", author: String? = nil, categories: [String] = [], documentationURL: String? = nil,
        dependencies: [ToolDependency] = []
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
        dependencies = try c.decodeIfPresent([ToolDependency].self, forKey: .dependencies) ?? []
    }
}

/// A tool's state. A registration sets `active`, `deprecated` or
/// `disabled` (kept but not invoked); health checks turn an active tool
/// `degraded` (failing) or `unavailable` (failing `unhealthyThreshold`
/// times in a row) and back: see `ToolRecord.status`.
package enum ToolStatus: String, Codable, Sendable, CaseIterable {
    case active, deprecated, disabled, degraded, unavailable

    /// What a registration may say; the others are the health checks' to set.
    package static let registrable: [ToolStatus] = [.active, .deprecated, .disabled]
}

/// A registration's health check (`health`): every `intervalSeconds`,
/// burrowd starts the tool in its sandbox, as an invocation would, and
/// checks it within `timeoutSeconds`: an MCP server must answer
/// `initialize` and `tools/list`; a plain tool runs `command` (instead of
/// its own) and must exit 0. A check holds one of the tool's
/// max_concurrent slots while it runs.
package struct HealthCheck: Codable, Sendable, Equatable {
    package static let defaultInterval = 60
    /// burrowd's `[daemon] health_min_interval` (10 s by default) may raise the least.
    package static let intervals = 1...86_400
    package static let defaultTimeout = 10
    package static let timeouts = 1...300
    package static let defaultThreshold = 3
    package static let thresholds = 1...100

    package var intervalSeconds: Int
    package var timeoutSeconds: Int
    /// Failures in a row that make the tool `unavailable` (fewer: `degraded`).
    package var unhealthyThreshold: Int
    /// A plain tool's check command; nil: the tool is an MCP server, checked by the protocol.
    package var command: [String]?

    package init(
        intervalSeconds: Int = HealthCheck.defaultInterval, timeoutSeconds: Int = HealthCheck.defaultTimeout,
        unhealthyThreshold: Int = HealthCheck.defaultThreshold, command: [String]? = nil
    ) {
        self.intervalSeconds = intervalSeconds
        self.timeoutSeconds = timeoutSeconds
        self.unhealthyThreshold = unhealthyThreshold
        self.command = command
    }

    enum CodingKeys: String, CodingKey { case intervalSeconds, timeoutSeconds, unhealthyThreshold, command }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            intervalSeconds: try c.decodeIfPresent(Int.self, forKey: .intervalSeconds) ?? Self.defaultInterval,
            timeoutSeconds: try c.decodeIfPresent(Int.self, forKey: .timeoutSeconds) ?? Self.defaultTimeout,
            unhealthyThreshold: try c.decodeIfPresent(Int.self, forKey: .unhealthyThreshold) ?? Self.defaultThreshold,
            command: try c.decodeIfPresent([String].self, forKey: .command))
    }

    /// What is wrong with these settings, if anything (`health.` prefixed to the field).
    package var problem: String? {
        if !Self.intervals.contains(intervalSeconds) { return "health.intervalSeconds: \(Self.intervals.lowerBound) to \(Self.intervals.upperBound)" }
        if !Self.timeouts.contains(timeoutSeconds) { return "health.timeoutSeconds: \(Self.timeouts.lowerBound) to \(Self.timeouts.upperBound)" }
        if !Self.thresholds.contains(unhealthyThreshold) { return "health.unhealthyThreshold: \(Self.thresholds.lowerBound) to \(Self.thresholds.upperBound)" }
        if let command, command.first?.isEmpty ?? true { return "health.command: the executable and its arguments, such as [\"sh\", \"-c\", \"test -r /data/db\"]" }
        return nil
    }
}

/// What the health checks last found of a tool's checked version.
package struct ToolHealth: Codable, Sendable, Equatable {
    package enum Status: String, Codable, Sendable {
        /// Not checked yet (since it was registered or burrowd started).
        case unknown
        case active, degraded, unavailable
    }

    package var status: Status
    /// The version checked: the one an invocation without `version` runs.
    package var version: String
    /// When the status began, and when the last check ended (RFC 3339).
    package var since: String?
    package var checkedAt: String?
    package var consecutiveFailures: Int
    /// Why the last check failed.
    package var lastError: String?
    /// How long the last check took.
    package var lastMilliseconds: Int64?

    package init(
        status: Status, version: String, since: String? = nil, checkedAt: String? = nil, consecutiveFailures: Int = 0, lastError: String? = nil,
        lastMilliseconds: Int64? = nil
    ) {
        self.status = status
        self.version = version
        self.since = since
        self.checkedAt = checkedAt
        self.consecutiveFailures = consecutiveFailures
        self.lastError = lastError
        self.lastMilliseconds = lastMilliseconds
    }
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
    package var profile: JSON
    /// The command run for each invocation; the caller's arguments are appended.
    package var command: [String]
    /// The MCP tool schemas the tool exposes (kept as given).
    package var capabilities: [JSON]
    /// What the operator set: active, deprecated or disabled (`ToolStatus.registrable`).
    package var status: ToolStatus
    package var rateLimits: ToolRateLimits?
    /// Periodic health checks; nil: none.
    package var health: HealthCheck?
    /// The tool's signed manifest: every invocation runs at the level its
    /// signer grants, from the verified copies (docs/manifests.md).
    package var manifest: SignedManifest?

    package init(
        id: String, metadata: ToolMetadata, profile: JSON, command: [String], capabilities: [JSON] = [], status: ToolStatus = .active,
        rateLimits: ToolRateLimits? = nil, health: HealthCheck? = nil
    ) {
        self.id = id
        self.metadata = metadata
        self.profile = profile
        self.command = command
        self.capabilities = capabilities
        self.status = status
        self.rateLimits = rateLimits
        self.health = health
    }

    enum CodingKeys: String, CodingKey { case id, metadata, profile, command, capabilities, status, rateLimits, health, manifest }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        metadata = try c.decode(ToolMetadata.self, forKey: .metadata)
        profile = try c.decode(JSON.self, forKey: .profile)
        command = try c.decode([String].self, forKey: .command)
        capabilities = try c.decodeIfPresent([JSON].self, forKey: .capabilities) ?? []
        status = try c.decodeIfPresent(ToolStatus.self, forKey: .status) ?? .active
        rateLimits = try c.decodeIfPresent(ToolRateLimits.self, forKey: .rateLimits)
        health = try c.decodeIfPresent(HealthCheck.self, forKey: .health)
        manifest = try c.decodeIfPresent(SignedManifest.self, forKey: .manifest)
    }
}

/// A manifest's exact text and its signature file's (`burrow tools sign`).
package struct SignedManifest: Codable, Sendable, Equatable {
    package var manifest: String
    package var signature: String

    package init(manifest: String, signature: String) {
        self.manifest = manifest
        self.signature = signature
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
    /// What its health checks found (this version's, when it is the one checked).
    package var health: ToolHealth?
    /// How it has fared over the last 7 days: in search answers, for auditors and admins.
    package var statistics: ToolStatistics?

    package init(
        registration: ToolRegistration, registeredAt: String, updatedAt: String, registeredBy: String, validation: ValidationReport, health: ToolHealth? = nil
    ) {
        self.registration = registration
        self.registeredAt = registeredAt
        self.updatedAt = updatedAt
        self.registeredBy = registeredBy
        self.validation = validation
        self.health = health
    }

    enum CodingKeys: String, CodingKey { case registration, registeredAt, updatedAt, registeredBy, validation, health, statistics, status }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            registration: try c.decode(ToolRegistration.self, forKey: .registration), registeredAt: try c.decode(String.self, forKey: .registeredAt),
            updatedAt: try c.decode(String.self, forKey: .updatedAt), registeredBy: try c.decode(String.self, forKey: .registeredBy),
            validation: try c.decode(ValidationReport.self, forKey: .validation), health: try c.decodeIfPresent(ToolHealth.self, forKey: .health))
        statistics = try c.decodeIfPresent(ToolStatistics.self, forKey: .statistics)
    }

    /// With `status`, the one callers see (derived: never read back).
    package func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(registration, forKey: .registration)
        try c.encode(registeredAt, forKey: .registeredAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encode(registeredBy, forKey: .registeredBy)
        try c.encode(validation, forKey: .validation)
        try c.encodeIfPresent(health, forKey: .health)
        try c.encodeIfPresent(statistics, forKey: .statistics)
        try c.encode(status, forKey: .status)
    }

    /// The status callers see: the operator's, unless it is `active` and
    /// this version's health checks are failing (`degraded`, `unavailable`).
    package var status: ToolStatus {
        guard registration.status == .active, let health, health.version == registration.metadata.version else { return registration.status }
        switch health.status {
        case .degraded: return .degraded
        case .unavailable: return .unavailable
        case .active, .unknown: return .active
        }
    }
}

/// A registered tool version that depends on another.
package struct ToolDependent: Codable, Sendable, Equatable {
    package var id: String
    package var version: String
    package var versionRequirement: String

    package init(id: String, version: String, versionRequirement: String) {
        self.id = id
        self.version = version
        self.versionRequirement = versionRequirement
    }
}

/// How a tool has fared over a window (`GET /v1/tools/{id}?window=`), from
/// its audit trail: the runs (sandboxes and MCP calls) that ended, how many
/// completed, their durations, CPU time and peak memory, the limits they
/// hit, the system calls refused and the callers refused.
package struct ToolStatistics: Codable, Sendable, Equatable {
    /// The window: from `since` to `until` (RFC 3339).
    package var since: String
    package var until: String
    package var invocations: Int
    package var completed: Int
    package var failed: Int
    /// completed ÷ invocations; nil without any.
    package var successRate: Double?
    /// Durations (ms): the median and the 95th percentile (nearest rank).
    package var p50Milliseconds: Int64?
    package var p95Milliseconds: Int64?
    package var meanCPUMicroseconds: Int64?
    package var peakMemoryBytes: Int64?
    /// ResourceLimitExceeded events and runs stopped at a limit.
    package var limitHits: Int
    /// SecurityViolation events.
    package var violations: Int
    /// PermissionDenied events (callers refused).
    package var denials: Int

    package init(
        since: String, until: String, completed: Int, failed: Int, durations: [Int64], meanCPUMicroseconds: Int64?, peakMemoryBytes: Int64?, limitHits: Int, violations: Int,
        denials: Int
    ) {
        (self.since, self.until, self.completed, self.failed) = (since, until, completed, failed)
        invocations = completed + failed
        successRate = invocations > 0 ? Double(completed) / Double(invocations) : nil
        func rank(_ p: Double) -> Int64? {
            durations.isEmpty ? nil : durations[min(durations.count - 1, max(0, Int((p * Double(durations.count)).rounded(.up)) - 1))]
        }
        p50Milliseconds = rank(0.5)
        p95Milliseconds = rank(0.95)
        (self.meanCPUMicroseconds, self.peakMemoryBytes, self.limitHits, self.violations, self.denials) = (meanCPUMicroseconds, peakMemoryBytes, limitHits, violations, denials)
    }
}

/// `GET /v1/tools/{id}`: one version (the latest unless `?version=`) and every version stored.
package struct ToolDetail: Codable, Sendable, Equatable {
    package var tool: ToolRecord
    /// Highest first.
    package var versions: [String]
    /// Registered versions of other tools that depend on this one.
    package var dependents: [ToolDependent]
    /// Its runs over the window asked for (nil when the audit log cannot be read).
    package var statistics: ToolStatistics?

    package init(tool: ToolRecord, versions: [String], dependents: [ToolDependent] = [], statistics: ToolStatistics? = nil) {
        self.tool = tool
        self.versions = versions
        self.dependents = dependents
        self.statistics = statistics
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

/// `GET /v1/discovery/categories`.
package struct CategoryCount: Codable, Sendable, Equatable {
    package var category: String
    package var tools: Int

    package init(category: String, tools: Int) {
        self.category = category
        self.tools = tools
    }
}

/// `GET /v1/tools/{id}/definitions`: a registered MCP server's pinned tool
/// definitions, those it offered instead, and how each differs.
package struct ToolDefinitions: Codable, Sendable, Equatable {
    package var id: String
    package var version: String
    /// The pins file form (`{"burrow_pins": 1, "server", "set", "tools"}`), or null.
    package var approved: JSON?
    package var offered: JSON?
    /// `sha256:` of the offered set: what an approval names.
    package var offeredSet: String?
    /// Each tool offered otherwise: `name`, `change` (new or changed), `fields`, `diff`.
    package var differences: [JSON]

    package init(id: String, version: String, approved: JSON?, offered: JSON?, offeredSet: String?, differences: [JSON]) {
        self.id = id
        self.version = version
        self.approved = approved
        self.offered = offered
        self.offeredSet = offeredSet
        self.differences = differences
    }
}

/// `POST /v1/tools/{id}/definitions`: approve the offered set named by its
/// digest (the answer repeats it).
package struct DefinitionsApproval: Codable, Sendable, Equatable {
    package var version: String?
    package var approve: String

    package init(version: String?, approve: String) {
        self.version = version
        self.approve = approve
    }
}
