package import BurrowJSON

/// What each event says: one struct per kind of event, grouped by event
/// type, so the taxonomy and every field it stores are in this one file
/// (docs/audit.md describes them). Events are built only from these:
/// `AuditEvent(tool:context:details:)` takes the type from the details, so a
/// type cannot carry another type's fields.
///
/// The stored form is built by hand (`json`), not through JSONEncoder: the
/// invocation events are on the spawn path, where Codable's first use costs
/// milliseconds of conformance lookups. Optional fields are left out when
/// nil unless the field says `null` is stored.
package protocol AuditDetails: Sendable {
    /// The event type these details are written as.
    var eventType: AuditEventType { get }
    /// The stored details: a JSON object.
    var json: JSON { get }
}

extension AuditEvent {
    /// An event to append, typed by its details; the store fills in the rest.
    package init(tool: String, context: SecurityContext, details: some AuditDetails, time: Int64? = nil) {
        self.init(tool: tool, type: details.eventType, context: context, details: details.json, time: time)
    }
}

extension AuditEvent {
    /// Marks an event written after its time (`recordedLate`): an outcome the
    /// log could not take when the run ended, kept and recorded by the next run.
    package mutating func markRecordedLate() {
        guard case .object(var d) = details else { return }
        d["recordedLate"] = .bool(true)
        details = .object(d)
    }
}

/// Building a details object: fields in any order, nil ones left out.
private struct Fields {
    var members: [String: JSON] = [:]

    subscript(key: String) -> JSON? {
        get { members[key] }
        set { members[key] = newValue }
    }

    var json: JSON { .object(members) }
}

extension JSON {
    package static func strings(_ items: [String]) -> JSON { .array(items.map { .string($0) }) }
    /// An integer, or `null` when absent (a field whose absence is stored).
    package static func optional(_ n: (some BinaryInteger)?) -> JSON { n.map { .integer(Int64(clamping: $0)) } ?? .null }
    package static func int(_ n: some BinaryInteger) -> JSON { .integer(Int64(clamping: n)) }
}

// MARK: - ToolRegistered, ToolUpdated, ToolDeregistered

/// A tool version registered, or replaced (`updated`).
package struct RegistrationDetails: AuditDetails {
    package var updated: Bool
    package var version: String
    package var name: String
    package var status: String
    package var command: [String]
    /// Each clamp as `key: requested → effective`.
    package var clamps: [String]
    /// Stored as `null` when the registration named no command.
    package var exposureScore: Double?
    /// The trust its invocations get (`level`, and for a signed tool
    /// `signer`, `manifestDigest`, `expires`); absent without a plan.
    package var trust: [String: String]?
    /// A forced update: the dependents it left without a version they accept (as a forced removal records them).
    package var brokenDependents: [String] = []

    package init(
        updated: Bool, version: String, name: String, status: String, command: [String], clamps: [String], exposureScore: Double?, trust: [String: String]? = nil,
        brokenDependents: [String] = []
    ) {
        self.brokenDependents = brokenDependents
        self.updated = updated
        self.version = version
        self.name = name
        self.status = status
        self.command = command
        self.clamps = clamps
        self.exposureScore = exposureScore
        self.trust = trust
    }

    package var eventType: AuditEventType { updated ? .toolUpdated : .toolRegistered }
    package var json: JSON {
        var object: [String: JSON] = [
            "version": .string(version), "name": .string(name), "status": .string(status), "command": .strings(command), "clamps": .strings(clamps),
            "exposureScore": exposureScore.map { .number($0) } ?? .null,
        ]
        if let trust { object["trust"] = .object(trust.mapValues { .string($0) }) }
        if !brokenDependents.isEmpty { object["brokenDependents"] = .strings(brokenDependents) }
        return .object(object)
    }
}

/// An MCP server's offered tool definitions approved by an operator (they
/// replace the pinned set of that version).
package struct DefinitionsApprovedDetails: AuditDetails {
    package var version: String
    /// `sha256:` of the set approved, and of the one it replaces.
    package var set: String
    package var previous: String?
    package var tools: [String]
    /// The first set, approved from a session's first listing (burrowd:pins), not by an operator.
    package var first: Bool

    package init(version: String, set: String, previous: String?, tools: [String], first: Bool = false) {
        self.version = version
        self.set = set
        self.previous = previous
        self.tools = tools
        self.first = first
    }

    package var eventType: AuditEventType { .toolUpdated }
    package var json: JSON {
        .object([
            "version": .string(version), "definitionsApproved": .string(set), "previousDefinitions": previous.map { .string($0) } ?? .null, "tools": .strings(tools),
            "firstListing": .bool(first),
        ])
    }
}

/// A tool's versions removed.
package struct DeregistrationDetails: AuditDetails {
    package var versions: [String]
    /// Tools left without a version they depend on, when the removal was forced.
    package var brokenDependents: [String]

    package init(versions: [String], brokenDependents: [String] = []) {
        self.versions = versions
        self.brokenDependents = brokenDependents
    }

    package var eventType: AuditEventType { .toolDeregistered }
    package var json: JSON {
        var f: [String: JSON] = ["versions": .strings(versions)]
        if !brokenDependents.isEmpty { f["brokenDependents"] = .strings(brokenDependents) }
        return .object(f)
    }
}

/// A tool's health status changed (burrowd's health checks): recorded as
/// ToolUpdated by the principal `burrowd:health`, whose own runs (the
/// checks, audited like any run) count in no statistics and no co-usage.
package struct HealthDetails: AuditDetails {
    package static let principal = "burrowd:health"

    package var version: String
    package var previousStatus: String
    package var status: String
    /// `mcp` (initialize and tools/list) or `command` (health.command).
    package var check: String
    package var consecutiveFailures: Int
    /// Why the check failed (nil when it passed).
    package var reason: String?
    package var milliseconds: Int64?

    package init(version: String, previousStatus: String, status: String, check: String, consecutiveFailures: Int, reason: String?, milliseconds: Int64?) {
        self.version = version
        self.previousStatus = previousStatus
        self.status = status
        self.check = check
        self.consecutiveFailures = consecutiveFailures
        self.reason = reason
        self.milliseconds = milliseconds
    }

    package var eventType: AuditEventType { .toolUpdated }
    package var json: JSON {
        var health = Fields()
        health["check"] = .string(check)
        health["consecutiveFailures"] = .int(consecutiveFailures)
        health["reason"] = reason.map(JSON.string)
        health["milliseconds"] = milliseconds.map { .int($0) }
        return .object(["version": .string(version), "previousStatus": .string(previousStatus), "status": .string(status), "health": health.json])
    }
}

// MARK: - Reported events

/// An event a registry reported (`POST /api/v1/security/audit`): its own
/// details as given, stored with an `origin` so it is never taken for one
/// burrowd witnessed. Only kinds of observation a registry makes are
/// accepted, never an invocation's events.
package struct ReportedDetails: AuditDetails {
    package static let types: [AuditEventType] = [.permissionDenied, .securityViolation, .anomalousActivity, .performanceThreshold, .resourceLimitExceeded]

    package var type: AuditEventType
    package var details: JSON

    package init(type: AuditEventType, details: JSON) {
        self.type = type
        self.details = details
    }

    package var eventType: AuditEventType { type }
    package var json: JSON { details }
}

// MARK: - CredentialIssued, CredentialRevoked

/// An API key made or revoked: its id (the principal `key:<id>`), name,
/// roles and expiry; never its secret.
package struct CredentialDetails: AuditDetails {
    package var revoked: Bool
    package var id: String
    package var name: String
    package var roles: [String]
    package var expiresAt: String

    package init(revoked: Bool, id: String, name: String, roles: [String], expiresAt: String) {
        self.revoked = revoked
        self.id = id
        self.name = name
        self.roles = roles
        self.expiresAt = expiresAt
    }

    package var eventType: AuditEventType { revoked ? .credentialRevoked : .credentialIssued }
    package var json: JSON {
        .object(["kind": .string("api_key"), "id": .string(id), "name": .string(name), "roles": .strings(roles), "expiresAt": .string(expiresAt)])
    }
}

// MARK: - ToolInvoked

/// A sandbox about to start: durable before anything else happens.
package struct InvocationDetails: AuditDetails {
    package struct Limits: Sendable {
        package var maxCpuTimeMilliseconds: UInt64
        package var maxMemoryBytes: UInt64
        package var maxFileSizeBytes: UInt64
        package var maxOpenFiles: UInt64
        package var maxExecutionTimeMilliseconds: UInt64
        package var maxProcesses: UInt64
        package var scratchSizeBytes: UInt64
        package var cpuQuotaPercent: UInt64

        package init(
            maxCpuTimeMilliseconds: UInt64, maxMemoryBytes: UInt64, maxFileSizeBytes: UInt64, maxOpenFiles: UInt64, maxExecutionTimeMilliseconds: UInt64,
            maxProcesses: UInt64, scratchSizeBytes: UInt64, cpuQuotaPercent: UInt64
        ) {
            self.maxCpuTimeMilliseconds = maxCpuTimeMilliseconds
            self.maxMemoryBytes = maxMemoryBytes
            self.maxFileSizeBytes = maxFileSizeBytes
            self.maxOpenFiles = maxOpenFiles
            self.maxExecutionTimeMilliseconds = maxExecutionTimeMilliseconds
            self.maxProcesses = maxProcesses
            self.scratchSizeBytes = scratchSizeBytes
            self.cpuQuotaPercent = cpuQuotaPercent
        }
    }

    package var argv: [String]
    package var executable: String
    package var workingDirectory: String
    /// Names only, each with where its value came from (`LANG (caller)`): values never reach the log.
    package var environment: [String]
    package var profileFiles: [String]
    package var sandboxID: UInt32
    package var namespaces: [String]
    package var cgroupVersion: Int
    package var seccompInstructions: Int
    /// Stored as `null` without Landlock.
    package var landlockABI: Int?
    package var network: String
    package var exposureScore: Double
    package var limits: Limits
    /// The profile's parameters and the values this run used (absent when it declares none).
    package var parameters: [String: String]
    /// The process that asked for the run: `burrow` itself, or burrowd's
    /// session client (SO_PEERCRED); absent for an HTTP caller.
    package var callerPID: Int32?

    package init(
        argv: [String], executable: String, workingDirectory: String, environment: [String], profileFiles: [String], sandboxID: UInt32, namespaces: [String],
        cgroupVersion: Int, seccompInstructions: Int, landlockABI: Int?, network: String, exposureScore: Double, limits: Limits, parameters: [String: String] = [:],
        callerPID: Int32? = nil
    ) {
        self.parameters = parameters
        self.callerPID = callerPID
        self.argv = argv
        self.executable = executable
        self.workingDirectory = workingDirectory
        self.environment = environment
        self.profileFiles = profileFiles
        self.sandboxID = sandboxID
        self.namespaces = namespaces
        self.cgroupVersion = cgroupVersion
        self.seccompInstructions = seccompInstructions
        self.landlockABI = landlockABI
        self.network = network
        self.exposureScore = exposureScore
        self.limits = limits
    }

    package var eventType: AuditEventType { .toolInvoked }
    package var json: JSON {
        let l = limits
        var fields: [String: JSON] = [
            "argv": .strings(argv), "executable": .string(executable), "workingDirectory": .string(workingDirectory), "environment": .strings(environment),
            "profileFiles": .strings(profileFiles), "sandboxID": .int(sandboxID), "namespaces": .strings(namespaces), "cgroupVersion": .int(cgroupVersion),
            "seccompInstructions": .int(seccompInstructions), "landlockABI": .optional(landlockABI), "network": .string(network),
            "exposureScore": .number(exposureScore),
            "limits": .object([
                "maxCpuTime": .int(l.maxCpuTimeMilliseconds), "maxMemory": .int(l.maxMemoryBytes), "maxFileSize": .int(l.maxFileSizeBytes),
                "maxOpenFiles": .int(l.maxOpenFiles), "maxExecutionTime": .int(l.maxExecutionTimeMilliseconds), "maxProcesses": .int(l.maxProcesses),
                "scratchSize": .int(l.scratchSizeBytes), "cpuQuotaPercent": .int(l.cpuQuotaPercent),
            ]),
        ]
        if !parameters.isEmpty { fields["parameters"] = .object(parameters.mapValues { .string($0) }) }
        if let callerPID { fields["callerPID"] = .int(callerPID) }
        return .object(fields)
    }
}

/// One MCP `tools/call`, as every event about it names it: its own
/// invocation (`<session>/<call>`) within the session's.
package struct MCPCallIdentity: Sendable {
    package var session: String
    package var call: Int
    package var jsonrpcID: String
    /// The MCP tool called.
    package var name: String
    /// `sha256:` of the arguments' canonical JSON: the arguments themselves are not stored.
    package var argumentsDigest: String
    /// The content filters that matched the call.
    package var filters: [String]

    package init(session: String, call: Int, jsonrpcID: String, name: String, argumentsDigest: String, filters: [String]) {
        self.session = session
        self.call = call
        self.jsonrpcID = jsonrpcID
        self.name = name
        self.argumentsDigest = argumentsDigest
        self.filters = filters
    }

    fileprivate var fields: Fields {
        var f = Fields()
        f["mcp"] = .string("tools/call")
        f["session"] = .string(session)
        f["call"] = .int(call)
        f["jsonrpcID"] = .string(jsonrpcID)
        f["name"] = .string(name)
        f["argumentsDigest"] = .string(argumentsDigest)
        return f
    }
}

/// An MCP call passed on to the server.
package struct MCPCallDetails: AuditDetails {
    package var call: MCPCallIdentity
    /// `sha256:` of what was forwarded, when a filter rewrote the arguments.
    package var forwardedDigest: String?
    /// The approval an `authorize` filter accepted, valid until (microseconds since the epoch).
    package var approvedUntil: Int64?

    package init(call: MCPCallIdentity, forwardedDigest: String?, approvedUntil: Int64?) {
        self.call = call
        self.forwardedDigest = forwardedDigest
        self.approvedUntil = approvedUntil
    }

    package var eventType: AuditEventType { .toolInvoked }
    package var json: JSON {
        var f = call.fields
        if !call.filters.isEmpty { f["filters"] = .strings(call.filters) }
        f["forwardedDigest"] = forwardedDigest.map { .string($0) }
        f["approvedUntil"] = approvedUntil.map { .integer($0) }
        return f.json
    }
}

// MARK: - ToolCompleted, ToolFailed

/// A sandbox's run ended: completed (exit 0, no limit hit, not stopped) or failed with `reason`.
package struct OutcomeDetails: AuditDetails {
    package var exitCode: Int32?
    package var signal: Int32?
    package var coreDumped: Bool
    /// The shell convention: the code, or 128+N for signal N.
    package var status: Int32
    package var spawnMicroseconds: UInt64
    package var cpuMicroseconds: UInt64?
    package var peakMemoryBytes: UInt64?
    package var peakProcesses: UInt64?
    package var wallMilliseconds: UInt64
    /// Refused system calls, all kinds together.
    package var violations: Int
    /// The resources whose limits were hit.
    package var limits: [String]
    /// Controls requested but not enforced.
    package var unenforced: [String]
    package var notes: [String]
    /// `stopped`, `limit_exceeded`, `signal` or `exit_status`; nil: completed.
    package var reason: String?
    /// Why it was stopped.
    package var message: String?

    package init(
        exitCode: Int32?, signal: Int32?, coreDumped: Bool, status: Int32, spawnMicroseconds: UInt64, cpuMicroseconds: UInt64?, peakMemoryBytes: UInt64?,
        peakProcesses: UInt64?, wallMilliseconds: UInt64, violations: Int, limits: [String], unenforced: [String], notes: [String], reason: String?, message: String?
    ) {
        self.exitCode = exitCode
        self.signal = signal
        self.coreDumped = coreDumped
        self.status = status
        self.spawnMicroseconds = spawnMicroseconds
        self.cpuMicroseconds = cpuMicroseconds
        self.peakMemoryBytes = peakMemoryBytes
        self.peakProcesses = peakProcesses
        self.wallMilliseconds = wallMilliseconds
        self.violations = violations
        self.limits = limits
        self.unenforced = unenforced
        self.notes = notes
        self.reason = reason
        self.message = message
    }

    package var eventType: AuditEventType { reason == nil ? .toolCompleted : .toolFailed }
    package var json: JSON {
        var f = Fields()
        f["exit"] = .object(["code": .optional(exitCode), "signal": .optional(signal), "coreDumped": .bool(coreDumped), "status": .int(status)])
        f["spawnMicroseconds"] = .int(spawnMicroseconds)
        f["usage"] = .object([
            "cpuMicroseconds": .optional(cpuMicroseconds), "peakMemoryBytes": .optional(peakMemoryBytes), "peakProcesses": .optional(peakProcesses),
            "wallMilliseconds": .int(wallMilliseconds),
        ])
        f["violations"] = .int(violations)
        f["limits"] = .strings(limits)
        f["unenforced"] = .strings(unenforced)
        f["notes"] = .strings(notes)
        f["reason"] = reason.map { .string($0) }
        f["message"] = message.map { .string($0) }
        return f.json
    }
}

/// A sandbox that could not start or be supervised (ToolFailed).
package struct StartFailureDetails: AuditDetails {
    /// The failure's stable name (`refused`, `preparation_failed`, `spawn_failed`, `not_found`, `not_executable`, `supervision_failed`).
    package var reason: String
    package var message: String
    /// The child's step that failed, and its errno, for a spawn failure.
    package var stage: String?
    package var errno: String?

    package init(reason: String, message: String, stage: String?, errno: String?) {
        self.reason = reason
        self.message = message
        self.stage = stage
        self.errno = errno
    }

    package var eventType: AuditEventType { .toolFailed }
    package var json: JSON {
        var f = Fields()
        f["reason"] = .string(reason)
        f["message"] = .string(message)
        f["stage"] = stage.map { .string($0) }
        f["errno"] = errno.map { .string($0) }
        return f.json
    }
}

/// An invocation left open by a supervisor that is gone, closed by the next one (ToolFailed `supervisor_lost`).
package struct SupervisorLostDetails: AuditDetails {
    /// Whether its cgroup was found and removed.
    package var cgroupSwept: Bool
    package var sweepProblem: String?
    /// When its ToolInvoked was written (RFC 3339).
    package var invokedAt: String?

    package init(cgroupSwept: Bool, sweepProblem: String?, invokedAt: String?) {
        self.cgroupSwept = cgroupSwept
        self.sweepProblem = sweepProblem
        self.invokedAt = invokedAt
    }

    package var eventType: AuditEventType { .toolFailed }
    package var json: JSON {
        var f = Fields()
        f["reason"] = .string("supervisor_lost")
        f["message"] = .string("the supervisor ended without recording an outcome (killed, crashed, or the host restarted)")
        f["cgroupSwept"] = .bool(cgroupSwept)
        f["sweepProblem"] = sweepProblem.map { .string($0) }
        f["invokedAt"] = invokedAt.map { .string($0) }
        return f.json
    }
}

/// An MCP call answered (or ended with the session).
package struct MCPCallEndedDetails: AuditDetails {
    package var call: MCPCallIdentity
    package var milliseconds: UInt64
    /// nil: completed; else `jsonrpc_error`, `tool_error`, `cancelled` or `session_ended`.
    package var reason: String?
    /// The JSON-RPC error code of a `jsonrpc_error`.
    package var jsonrpcError: Int64?

    package init(call: MCPCallIdentity, milliseconds: UInt64, reason: String?, jsonrpcError: Int64?) {
        self.call = call
        self.milliseconds = milliseconds
        self.reason = reason
        self.jsonrpcError = jsonrpcError
    }

    package var eventType: AuditEventType { reason == nil ? .toolCompleted : .toolFailed }
    package var json: JSON {
        var f = call.fields
        f["milliseconds"] = .int(milliseconds)
        f["reason"] = reason.map { .string($0) }
        f["jsonrpcError"] = jsonrpcError.map { .integer($0) }
        return f.json
    }
}

// MARK: - PermissionDenied

/// A request refused before it became an invocation, or an API request
/// refused: the first of its kind from a caller within the window (burrowd
/// aggregates the rest, see `RepeatedRefusalDetails`).
package struct RefusalDetails: AuditDetails {
    /// The error code's name (`plan_refused`, `rate_limited`, …) or the refusal's (`role_required`, `not_session_owner`).
    package var reason: String
    package var message: String
    /// The request's profile and argv (`burrow run`, `burrow mcp`).
    package var profile: String?
    package var argv: [String]?
    /// The registered version invoked (burrowd).
    package var version: String?
    /// The role the caller lacked, the request it made and the roles it holds (`role_required`).
    package var role: String?
    package var method: String?
    package var path: String?
    package var roles: [String]?
    /// The caller's process and group, from the socket (burrowd).
    package var pid: Int32?
    package var gid: UInt32?
    /// A remote caller's address and how it was authenticated (burrowd over HTTPS).
    package var address: String?
    package var authentication: String?
    /// The host-policy rule that refused the call (`capabilities."git".allowed_ips`).
    package var rule: String?

    package init(
        reason: String, message: String, profile: String? = nil, argv: [String]? = nil, version: String? = nil, role: String? = nil, method: String? = nil,
        path: String? = nil, roles: [String]? = nil, pid: Int32? = nil, gid: UInt32? = nil
    ) {
        self.reason = reason
        self.message = message
        self.profile = profile
        self.argv = argv
        self.version = version
        self.role = role
        self.method = method
        self.path = path
        self.roles = roles
        self.pid = pid
        self.gid = gid
    }

    package var eventType: AuditEventType { .permissionDenied }
    package var json: JSON {
        var f = Fields()
        f["reason"] = .string(reason)
        f["message"] = .string(message)
        f["profile"] = profile.map { .string($0) }
        f["argv"] = argv.map { .strings($0) }
        f["version"] = version.map { .string($0) }
        f["role"] = role.map { .string($0) }
        f["method"] = method.map { .string($0) }
        f["path"] = path.map { .string($0) }
        f["roles"] = roles.map { .strings($0) }
        f["pid"] = pid.map { .int($0) }
        f["gid"] = gid.map { .int($0) }
        f["rule"] = rule.map { .string($0) }
        f["address"] = address.map { .string($0) }
        f["authentication"] = authentication.map { .string($0) }
        return f.json
    }
}

/// The refusals of one caller for one reason within a window, counted
/// (`repeated`: the AnomalousActivity rule counts them one by one).
package struct RepeatedRefusalDetails: AuditDetails {
    package var reason: String
    package var message: String
    package var repeated: Int
    package var windowSeconds: Double
    /// The tools they named (at most 16), and how many distinct ones in all.
    package var tools: [String]
    package var distinctTools: Int
    /// The last refused request's process and group (a local caller), or
    /// its address (a remote one).
    package var pid: Int32?
    package var gid: UInt32?
    package var address: String?

    package init(
        reason: String, message: String, repeated: Int, windowSeconds: Double, tools: [String], distinctTools: Int, pid: Int32?, gid: UInt32?, address: String? = nil
    ) {
        self.reason = reason
        self.message = message
        self.repeated = repeated
        self.windowSeconds = windowSeconds
        self.tools = tools
        self.distinctTools = distinctTools
        self.pid = pid
        self.gid = gid
        self.address = address
    }

    package var eventType: AuditEventType { .permissionDenied }
    package var json: JSON {
        var f = Fields()
        f["reason"] = .string(reason)
        f["message"] = .string(message)
        f["repeated"] = .int(repeated)
        f["windowSeconds"] = .number(windowSeconds)
        f["tools"] = .strings(tools)
        f["distinctTools"] = .int(distinctTools)
        f["pid"] = pid.map { .int($0) }
        f["gid"] = gid.map { .int($0) }
        f["address"] = address.map { .string($0) }
        return f.json
    }
}

/// An MCP call the relay refused: it never reached the server.
package struct MCPCallRefusedDetails: AuditDetails {
    package var call: MCPCallIdentity
    package var reason: String
    package var message: String

    package init(call: MCPCallIdentity, reason: String, message: String) {
        self.call = call
        self.reason = reason
        self.message = message
    }

    package var eventType: AuditEventType { .permissionDenied }
    package var json: JSON {
        var f = call.fields
        f["reason"] = .string(reason)
        f["message"] = .string(message)
        f["denial"] = .string("mcp")
        if !call.filters.isEmpty { f["filters"] = .strings(call.filters) }
        return f.json
    }
}

/// An MCP request other than a call that the relay refused (`mcp` names its method).
package struct MCPRequestRefusedDetails: AuditDetails {
    package var method: String
    package var session: String
    package var jsonrpcID: String
    package var reason: String
    package var message: String

    package init(method: String, session: String, jsonrpcID: String, reason: String, message: String) {
        self.method = method
        self.session = session
        self.jsonrpcID = jsonrpcID
        self.reason = reason
        self.message = message
    }

    package var eventType: AuditEventType { .permissionDenied }
    package var json: JSON {
        .object([
            "mcp": .string(method), "session": .string(session), "jsonrpcID": .string(jsonrpcID), "reason": .string(reason), "message": .string(message),
            "denial": .string("mcp"),
        ])
    }
}

/// Which way an MCP line went, and whose it was.
package struct MCPLineOrigin: Sendable {
    /// `client→server` or `server→client`.
    package var direction: String
    /// `client` or `server`.
    package var side: String
    package var session: String

    package init(direction: String, side: String, session: String) {
        self.direction = direction
        self.side = side
        self.session = session
    }

    fileprivate var fields: Fields {
        var f = Fields()
        f["mcp"] = .string("framing")
        f["direction"] = .string(direction)
        f["side"] = .string(side)
        f["session"] = .string(session)
        return f
    }
}

/// A line that is not a JSON-RPC message, dropped: once per session and side (later ones are counted).
package struct MCPNotJSONDetails: AuditDetails {
    package var origin: MCPLineOrigin
    package var message: String
    /// The line's first bytes, as text.
    package var sample: String
    package var streamOffset: Int
    /// A JSON-RPC message the relay could not judge (an answer to no
    /// request in progress, say), rather than a line that is none.
    package var unjudged: Bool

    package init(origin: MCPLineOrigin, message: String, sample: String, streamOffset: Int, unjudged: Bool = false) {
        self.origin = origin
        self.message = message
        self.sample = sample
        self.streamOffset = streamOffset
        self.unjudged = unjudged
    }

    package var eventType: AuditEventType { .permissionDenied }
    package var json: JSON {
        var f = origin.fields
        f["reason"] = .string(unjudged ? "unjudged_message" : "not_json")
        f["message"] = .string(
            unjudged
                ? "a message the relay could not judge was dropped, never forwarded (\(message)); later ones are counted, not recorded"
                : "a line that is not a JSON-RPC message was dropped (\(message)); later ones are counted, not recorded")
        f["sample"] = .string(sample)
        f["streamOffset"] = .int(streamOffset)
        f["denial"] = .string("mcp")
        return f.json
    }
}

// MARK: - SecurityViolation

/// A system call the seccomp filter refused, once per call and activity.
package struct SyscallViolationDetails: AuditDetails {
    package var syscall: String
    package var errno: String
    package var count: Int
    package var reason: String
    /// The MCP calls in flight when it was seen.
    package var during: [String]?

    package init(syscall: String, errno: String, count: Int, reason: String, during: [String]?) {
        self.syscall = syscall
        self.errno = errno
        self.count = count
        self.reason = reason
        self.during = during
    }

    package var eventType: AuditEventType { .securityViolation }
    package var json: JSON {
        var f = Fields()
        f["syscall"] = .string(syscall)
        f["errno"] = .string(errno)
        f["count"] = .int(count)
        f["reason"] = .string(reason)
        f["during"] = during.map { .strings($0) }
        return f.json
    }
}

/// An MCP message the relay cannot judge unambiguously: the session ends.
package struct MCPFramingViolationDetails: AuditDetails {
    package var origin: MCPLineOrigin
    package var message: String
    /// Where in the line, and where in the stream.
    package var offset: Int
    package var streamOffset: Int

    package init(origin: MCPLineOrigin, message: String, offset: Int, streamOffset: Int) {
        self.origin = origin
        self.message = message
        self.offset = offset
        self.streamOffset = streamOffset
    }

    package var eventType: AuditEventType { .securityViolation }
    package var json: JSON {
        var f = origin.fields
        f["message"] = .string(message)
        f["offset"] = .int(offset)
        f["streamOffset"] = .int(streamOffset)
        return f.json
    }
}

/// A tool the MCP server listed, withheld from the client: its definition
/// is not the approved one (`changed`, with what differs) or was never
/// approved (`new`). Its calls are refused until an operator approves it.
package struct MCPDefinitionDetails: AuditDetails {
    package var session: String
    package var name: String
    package var change: String
    package var diff: [String]
    package var digest: String

    package init(session: String, name: String, change: String, diff: [String], digest: String) {
        self.session = session
        self.name = name
        self.change = change
        self.diff = diff
        self.digest = digest
    }

    package var eventType: AuditEventType { .securityViolation }
    package var json: JSON {
        var f = Fields()
        f["mcp"] = .string("definition_changed")
        f["session"] = .string(session)
        f["name"] = .string(name)
        f["change"] = .string(change)
        f["diff"] = .strings(diff)
        f["digest"] = .string(digest)
        return f.json
    }
}

/// Invisible characters (Unicode tags, zero-width and bidirectional
/// controls) the relay removed from what the server sent the client.
package struct MCPInvisibleCharactersDetails: AuditDetails {
    package var session: String
    package var location: String
    package var count: Int

    package init(session: String, location: String, count: Int) {
        self.session = session
        self.location = location
        self.count = count
    }

    package var eventType: AuditEventType { .securityViolation }
    package var json: JSON {
        var f = Fields()
        f["mcp"] = .string("invisible_characters")
        f["session"] = .string(session)
        f["where"] = .string(location)
        f["count"] = .int(count)
        f["message"] = .string("\(count) invisible characters removed from \(location)")
        return f.json
    }
}

// MARK: - ResourceLimitExceeded, PerformanceThreshold, AnomalousActivity

/// A limit the sandbox hit, with the evidence.
package struct LimitExceededDetails: AuditDetails {
    package var resource: String
    /// The limit and what was observed, as text with units, and as numbers in `unit`.
    package var limit: String
    package var observed: String
    package var unit: String
    package var limitValue: UInt64
    /// Stored as `null` when the kernel gave no figure.
    package var observedValue: UInt64?
    package var invocationID: String
    package var during: [String]?

    package init(resource: String, limit: String, observed: String, unit: String, limitValue: UInt64, observedValue: UInt64?, invocationID: String, during: [String]?) {
        self.resource = resource
        self.limit = limit
        self.observed = observed
        self.unit = unit
        self.limitValue = limitValue
        self.observedValue = observedValue
        self.invocationID = invocationID
        self.during = during
    }

    package var eventType: AuditEventType { .resourceLimitExceeded }
    package var json: JSON {
        var f = Fields()
        f["resource"] = .string(resource)
        f["limit"] = .string(limit)
        f["observed"] = .string(observed)
        f["unit"] = .string(unit)
        f["limitValue"] = .int(limitValue)
        f["observedValue"] = .optional(observedValue)
        f["invocationID"] = .string(invocationID)
        f["during"] = during.map { .strings($0) }
        return f.json
    }
}

/// A run above the host policy's duration or CPU threshold.
package struct ThresholdDetails: AuditDetails {
    /// `duration` or `cpu`, in milliseconds.
    package var metric: String
    package var threshold: UInt64
    package var observed: UInt64

    package init(metric: String, threshold: UInt64, observed: UInt64) {
        self.metric = metric
        self.threshold = threshold
        self.observed = observed
    }

    package var eventType: AuditEventType { .performanceThreshold }
    package var json: JSON {
        .object(["metric": .string(metric), "unit": .string("milliseconds"), "threshold": .int(threshold), "observed": .int(observed)])
    }
}

/// More violations and denials for one tool within the window than the threshold: once per window and tool.
package struct AnomalyDetails: AuditDetails {
    package var count: Int64
    package var threshold: Int
    package var windowSeconds: Int64
    /// The window's start (RFC 3339) and the event that crossed the threshold.
    package var since: String
    package var trigger: Int64

    package init(count: Int64, threshold: Int, windowSeconds: Int64, since: String, trigger: Int64) {
        self.count = count
        self.threshold = threshold
        self.windowSeconds = windowSeconds
        self.since = since
        self.trigger = trigger
    }

    package var eventType: AuditEventType { .anomalousActivity }
    package var json: JSON {
        .object([
            "reason": .string("violations_and_denials"), "count": .integer(count), "threshold": .int(threshold), "windowSeconds": .integer(windowSeconds),
            "since": .string(since), "trigger": .integer(trigger),
        ])
    }
}

/// A file of a signed tool differs from its manifest: a run refused
/// because what someone vouched for was changed on the host.
package struct ManifestMismatchDetails: AuditDetails {
    package var path: String
    /// The file and both digests (or what else differs).
    package var message: String
    /// Where the manifest was read.
    package var manifest: String?
    /// `manifest_mismatch`; the daily check also reports `manifest_expired`
    /// and `manifest_invalid` (its signature no longer verifies).
    package var reason: String

    package init(path: String, message: String, manifest: String?, reason: String = "manifest_mismatch") {
        self.path = path
        self.message = message
        self.manifest = manifest
        self.reason = reason
    }

    package var eventType: AuditEventType { .anomalousActivity }
    package var json: JSON {
        var object: [String: JSON] = ["reason": .string(reason), "path": .string(path), "message": .string(message)]
        if let manifest { object["manifest"] = .string(manifest) }
        return .object(object)
    }
}

/// The central audit copy needs an operator: shipping lags beyond
/// `[audit] central_max_lag` (`central_lag`), the local log and the central
/// copy have diverged and shipping stopped (`central_divergence`), or rows
/// were pruned before they were shipped (`central_gap`).
package struct CentralAuditDetails: AuditDetails {
    package var reason: String
    package var node: String
    package var message: String

    package init(reason: String, node: String, message: String) {
        self.reason = reason
        self.node = node
        self.message = message
    }

    package var eventType: AuditEventType { .anomalousActivity }
    package var json: JSON { .object(["reason": .string(reason), "node": .string(node), "message": .string(message)]) }
}

// MARK: - NetworkConnection (and PermissionDenied for a refused one)

/// One connection through the egress proxy, written when it ends: allowed
/// or failed (NetworkConnection), or refused (PermissionDenied, whose bursts
/// feed the AnomalousActivity rule).
package struct ConnectionDetails: AuditDetails {
    package enum Outcome: Sendable {
        /// Allowed; how it ended.
        case allowed(ended: String)
        /// Allowed, but it could not be completed.
        case failed(error: String)
        /// Refused by the policy, with the refusal's code and message.
        case refused(reason: String, message: String)
    }

    package var connection: UInt64
    package var protocolName: String
    /// What the tool asked for, as it asked.
    package var requested: String
    /// Stored as `null` when unknown.
    package var host: String?
    package var port: UInt16?
    package var address: String?
    package var bytesOut: UInt64
    package var bytesIn: UInt64
    package var milliseconds: UInt64
    package var outcome: Outcome
    package var during: [String]?

    package init(
        connection: UInt64, protocolName: String, requested: String, host: String?, port: UInt16?, address: String?, bytesOut: UInt64, bytesIn: UInt64,
        milliseconds: UInt64, outcome: Outcome, during: [String]?
    ) {
        self.connection = connection
        self.protocolName = protocolName
        self.requested = requested
        self.host = host
        self.port = port
        self.address = address
        self.bytesOut = bytesOut
        self.bytesIn = bytesIn
        self.milliseconds = milliseconds
        self.outcome = outcome
        self.during = during
    }

    package var eventType: AuditEventType {
        if case .refused = outcome { return .permissionDenied }
        return .networkConnection
    }

    package var json: JSON {
        var f = Fields()
        f["connection"] = .int(connection)
        f["protocol"] = .string(protocolName)
        f["requested"] = .string(requested)
        f["host"] = host.map { .string($0) } ?? .null
        f["port"] = .optional(port)
        f["address"] = address.map { .string($0) } ?? .null
        f["bytesOut"] = .int(bytesOut)
        f["bytesIn"] = .int(bytesIn)
        f["milliseconds"] = .int(milliseconds)
        switch outcome {
        case .allowed(let ended):
            f["outcome"] = .string("allowed")
            f["ended"] = .string(ended)
        case .failed(let error):
            f["outcome"] = .string("failed")
            f["error"] = .string(error)
        case .refused(let reason, let message):
            f["outcome"] = .string("refused")
            f["reason"] = .string(reason)
            f["message"] = .string(message)
            f["denial"] = .string("network")
        }
        if let during, !during.isEmpty { f["during"] = .strings(during) }
        return f.json
    }
}
