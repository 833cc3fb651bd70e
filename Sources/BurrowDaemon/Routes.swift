import BurrowAPI
import BurrowAudit
import BurrowCrypto
import BurrowFleet
import BurrowHost
import BurrowInvocation
import BurrowJSON
import BurrowProfile
import BurrowSystem
import FoundationEssentials
import Hummingbird
import NIOCore
import Prometheus
import Synchronization

/// The route handlers of /v1 (see `Daemon.router`).
struct API: Sendable {
    let daemon: Daemon

    // MARK: access

    /// Any role: reading the registry and the policy.
    /// Any role but reporter (which only adds events): reading the registry and the policy.
    func requireAny(_ context: DaemonContext, _ request: Request, _ what: String) async throws(DaemonError) {
        guard context.roles.subtracting([.reporter]).isEmpty else { return }
        try await context.require(.invoker, what, tool: nil, request: request, denials: daemon.denials)
    }

    /// The role, and, for a use of a tool, the tool's capability rules (`rules`).
    func require(_ role: Role, _ context: DaemonContext, _ request: Request, _ what: String, tool: String?, rules: CapabilityCheck = .all) async throws(DaemonError) {
        try await context.require(role, what, tool: tool, request: request, denials: daemon.denials)
        if role == .invoker, let tool, !rules.isEmpty { try await checkCapabilities(tool, context, request, rules) }
    }

    func registryCall<T>(_ body: () throws(RegistryStore.Failure) -> T) throws(DaemonError) -> T {
        do {
            return try body()
        } catch {
            throw DaemonError(.registryUnavailable, error.description)
        }
    }

    /// The body as `T`, within [daemon] max_request_size; an oversized body is refused (and audited).
    func decode<T: Decodable & Sendable>(_ type: T.Type, _ request: Request, _ context: DaemonContext, tool: String?) async throws -> T {
        let limit = Int(clamping: daemon.policy.daemon.maxRequestBytes.bytes)
        let tooLarge = "the request body is larger than \(daemon.policy.daemon.maxRequestBytes) ([daemon] max_request_size)"
        // A body announced too large is refused before a byte of it is read.
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            await daemon.denials.record(caller: context.identity, tool: tool ?? "burrowd", RefusalDetails(reason: ErrorCode.requestTooLarge.name, message: tooLarge))
            throw DaemonError(.requestTooLarge, tooLarge)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            await daemon.denials.record(caller: context.identity, tool: tool ?? "burrowd", RefusalDetails(reason: ErrorCode.requestTooLarge.name, message: tooLarge))
            throw DaemonError(.requestTooLarge, tooLarge)
        } catch {
            // A body cut short (the caller went away, or missed [daemon] body_timeout) is never taken as whole.
            throw DaemonError(.bodyIncomplete, "the request body did not arrive whole: \(error)")
        }
        // Strict: limits, duplicate keys, unknown fields and inexact numbers are refused.
        let decoder = StrictJSONDecoder(limits: JSONLimits(maxStringBytes: limit, maxBytes: limit))
        let decode = { @Sendable in buffer.withUnsafeReadableBytes { bytes in Result { () throws(JSONDecodeError) in try decoder.decode(T.self, from: bytes) } } }
        // A large body is parsed on low-priority threads, not the cooperative pool that answers everyone.
        let decoded = buffer.readableBytes > 64 << 10 ? try await BackgroundWork.shared.run(decode) : decode()
        do {
            return try decoded.get()
        } catch {
            throw DaemonError(.invalidRequest, "the body is not a valid \(T.self): \(error)")
        }
    }

    /// A tool id from the path, checked before any lookup or audit write:
    /// a caller's 60,000-character id must cost it a 400, not the audit log
    /// a row of that size.
    static func toolID(_ context: DaemonContext, _ name: String = "id") throws(DaemonError) -> String {
        let value = context.parameters.get(name) ?? ""
        guard SafeName.isValid(value) else {
            throw DaemonError(.invalidID, "the tool id in the path is not one: 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'")
        }
        return value
    }

    /// An invocation or session id from the path: the lowercase UUID burrowd gave out.
    static func uuidParameter(_ context: DaemonContext, _ name: String, what: String) throws(DaemonError) -> String {
        let value = context.parameters.get(name) ?? ""
        guard isUUID(value) else {
            throw DaemonError(.invalidID, "the \(what) id in the path is not one (a lowercase UUID, as burrowd returned it)")
        }
        return value
    }

    /// A lowercase UUID, as burrowd gives invocation and session ids out.
    static func isUUID(_ value: String) -> Bool {
        let hex = value.utf8.filter { $0 != UInt8(ascii: "-") }
        return value.utf8.count == 36 && hex.count == 32 && hex.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    // MARK: health and security

    func health(_ context: DaemonContext) throws -> Response {
        let identity = context.identity
        return try json(
            HealthResponse(
                status: "ok", version: burrowDaemonVersion, uptimeSeconds: (AuditClock.now() - daemon.startedAt) / 1_000_000, auditDatabase: daemon.audit.path,
                caller: .init(
                    principal: identity.caller.principal, pid: identity.local?.pid, uid: identity.local?.uid, gid: identity.local?.gid,
                    address: identity.remote?.address, authentication: identity.remote?.method?.rawValue, roles: context.roles.map(\.rawValue).sorted())))
    }

    func validate(_ request: Request, _ context: DaemonContext) async throws -> Response {
        try await requireAny(context, request, "validating a profile")
        // Burrow's form ({profile, command, id}) or the specification's ({security, id, metadata, command}).
        let raw = try await decode(JSON.self, request, context, tool: nil)
        let limit = Int(clamping: daemon.policy.daemon.maxRequestBytes.bytes)
        let body: ValidationRequest
        do {
            body =
                SpecificationForm.matches(raw)
                ? try SpecificationForm.validation(raw)
                : try StrictJSONDecoder(limits: JSONLimits(maxStringBytes: limit, maxBytes: limit)).decode(ValidationRequest.self, from: Array(raw.canonicalText.utf8))
        } catch {
            throw DaemonError(.invalidRequest, "the body is not a valid validation request: \(error)")
        }
        if let id = body.id, !SafeName.isValid(id) { throw DaemonError(.invalidRequest, "id: 1 to 128 letters, digits, '.', '_' or '-'") }
        if let command = body.command, let problem = ExecStrings.problem(argv: command, what: "command") { throw DaemonError(.invalidRequest, problem) }
        let (report, _) = try await planning(context) { planner in planner.validate(body.profile, id: body.id ?? "profile", command: body.command) }
        return try json(report)
    }

    /// Loads and plans a caller's profile within its planning slot, on
    /// `BackgroundWork`'s low-priority threads: a heavy profile costs its
    /// caller a slot, and never the cooperative pool that answers everyone else.
    func planning<T: Sendable>(_ context: DaemonContext, _ body: @escaping @Sendable (Planner) -> T) async throws -> T {
        let identity = context.identity
        let ticket: Admission.PlanningTicket
        do {
            ticket = try daemon.admission.planning(caller: identity.key, perUser: daemon.policy.daemon.maxValidationsPerUser)
        } catch {
            guard case .planning(let limit, let everyone) = error else { throw error }
            let message =
                everyone
                ? "burrowd is validating \(limit) profiles already; retry in a moment"
                : "this caller has \(limit) validations in progress, the most it may ([daemon] max_validations_per_user)"
            await daemon.denials.record(caller: identity, tool: "burrowd", RefusalDetails(reason: ErrorCode.tooManyValidations.name, message: message))
            throw DaemonError(.tooManyValidations, message, retryAfter: 1)
        }
        defer { ticket.release() }
        let planner = daemon.planner
        return try await BackgroundWork.shared.run { body(planner) }
    }

    /// GET /v1/security/audit/{tool} and GET /v1/security/audit (every
    /// tool): an auditor's read of the log; with `[audit] user_reads_own`,
    /// anyone else reads the events of its own runs only.
    /// `specification`: the events in the MCP Registry specification's form (`/api/v1`).
    func auditTrail(_ request: Request, _ context: DaemonContext, allTools: Bool = false, specification: Bool = false) async throws -> Response {
        func answer(_ events: [AuditEvent]) throws -> Response {
            specification ? try json(JSON.array(try events.map(Self.specificationEvent))) : try json(events)
        }
        let tool = allTools ? nil : try Self.toolID(context, "tool")
        var query = try AuditQueryParameters.parse(request.uri.queryParameters, tool: tool)
        if !context.roles.contains(.auditor) {
            if daemon.policy.audit.userReadsOwn, let peer = context.identity.local {
                query.uid = peer.uid
            } else {
                try await require(.auditor, context, request, "reading the audit log", tool: tool)
            }
        }
        let central = request.uri.queryParameters.get("central")
        if let central, central != "1" && central != "true" { throw DaemonError(.invalidParameter, "central: 1 (or true) reads the central copy; leave it out for this node's log") }
        if central == nil && request.uri.queryParameters.get("node") != nil { throw DaemonError(.invalidParameter, "node goes with central=1") }
        if central != nil {
            // Every node's events: for auditors only (a user's own runs are this node's log).
            try await require(.auditor, context, request, "reading the central audit copy", tool: tool)
            guard let shipper = daemon.shipper else { throw DaemonError(.noCentralCopy, "this burrowd ships to no central copy ([audit] central_url)") }
            let node: String? = request.uri.queryParameters.get("node")
            do {
                return try answer(try await shipper.central.events(query, node: node))
            } catch {
                throw DaemonError(.centralUnavailable, "the central copy (\(shipper.central.url)): \(explainFleetError(error))")
            }
        }
        let events: [AuditEvent]
        do {
            events = try daemon.audit.events(query)
        } catch {
            throw DaemonError(.auditUnavailable, "\(error)")
        }
        return try answer(events)
    }

    /// An audit event in the specification's form: `timestamp`, `tool_id`,
    /// `event_type`, `details` and `security_context` (snake_case), with
    /// Burrow's chain fields beside them (`sequence`, `hash`,
    /// `previous_hash`, `origin`, `node`). `details` stay as recorded.
    static func specificationEvent(_ event: AuditEvent) throws -> JSON {
        guard case .object(let fields) = try JSONParser.parse(Array(try JSONEncoder().encode(event))) else { return .object([:]) }
        let names = ["time": "timestamp", "tool": "tool_id", "type": "event_type", "context": "security_context", "previousHash": "previous_hash"]
        let contextNames = ["invocationID": "invocation_id", "profileDigest": "profile_digest", "sandboxLevel": "sandbox_level"]
        var out: [String: JSON] = [:]
        for (key, value) in fields {
            if key == "context", case .object(let context) = value {
                out["security_context"] = .object(Dictionary(uniqueKeysWithValues: context.map { (contextNames[$0.key] ?? $0.key, $0.value) }))
            } else {
                out[names[key] ?? key] = value
            }
        }
        return .object(out)
    }

    /// GET /v1/nodes (and /api/v1/nodes): the fleet's nodes with their health (auditors).
    func nodes(_ request: Request, _ context: DaemonContext) async throws -> Response {
        try await require(.auditor, context, request, "listing the fleet's nodes", tool: nil)
        guard let fleet = daemon.heartbeat?.central else { throw DaemonError(.noCentralCopy, "this burrowd is in no fleet ([registry] url or [audit] central_url)") }
        do {
            return try json(try await fleet.nodes())
        } catch {
            throw DaemonError(.centralUnavailable, "the fleet's database (\(fleet.url)): \(explainFleetError(error))")
        }
    }

    /// GET /v1/audit/central: every node's chain in the central copy, and this node's against its own log.
    func verifyCentral(_ request: Request, _ context: DaemonContext) async throws -> Response {
        try await require(.auditor, context, request, "verifying the central audit copy", tool: nil)
        guard let shipper = daemon.shipper else { throw DaemonError(.noCentralCopy, "this burrowd ships to no central copy ([audit] central_url)") }
        do {
            return try json(try await shipper.central.verify(local: (shipper.node, daemon.audit)))
        } catch {
            throw DaemonError(.centralUnavailable, "the central copy (\(shipper.central.url)): \(explainFleetError(error))")
        }
    }

    // MARK: registrations

    /// POST /v1/tools (`replacing` nil) and PUT /v1/tools/{id}.
    /// POST and PUT of a registration, in Burrow's form or the MCP Registry
    /// specification's (`SpecificationForm`); the answer is in the form of
    /// the request.
    func register(_ request: Request, _ context: DaemonContext, replacing: String?) async throws -> Response {
        let identity = context.identity
        try await require(.admin, context, request, replacing == nil ? "registering a tool" : "updating a tool", tool: replacing)
        do {
            try daemon.admission.registrationAttempt(caller: identity.key, perHour: daemon.policy.rateLimits.registrationAttemptsPerHour)
        } catch {
            guard case .registrations(let limit, let retry) = error else { throw error }
            let message = "at most \(limit) registration attempts per hour per caller ([rate_limits] registration_attempts_per_hour); retry in \(retry) s"
            await daemon.denials.record(caller: identity, tool: replacing ?? "burrowd", RefusalDetails(reason: ErrorCode.registrationLimit.name, message: message))
            throw DaemonError(.registrationLimit, message, retryAfter: retry)
        }
        let body = try await decode(JSON.self, request, context, tool: replacing)
        let limit = Int(clamping: daemon.policy.daemon.maxRequestBytes.bytes)
        let specification = SpecificationForm.matches(body)
        let registration: ToolRegistration
        do {
            registration = try SpecificationForm.decode(body, limit: limit).registration
        } catch {
            throw DaemonError(.invalidRequest, "the body is not a valid registration\(specification ? " (the specification's form)" : ""): \(error)")
        }
        if let replacing, replacing != registration.id {
            throw DaemonError(.invalidRequest, "the body's id '\(registration.id)' is not the path's '\(replacing)'")
        }

        try Self.checkFields(registration)
        let manifest = registration.manifestSource
        var (report, loaded) = try await planning(context) { planner in
            planner.validate(registration.profile, id: registration.id, command: registration.command, manifest: manifest)
        }
        if let tool = loaded?.effective.profile.tool, tool.id != registration.id {
            report.valid = false
            report.findings.append(
                ValidationFinding(
                    severity: "error", file: registration.id, keyPath: "tool.id", message: "the profile is for '\(tool.id)', the registration for '\(registration.id)': they must match"))
        }
        if let health = registration.health, UInt64(health.intervalSeconds) * 1000 < daemon.policy.daemon.healthMinInterval.milliseconds {
            throw DaemonError(
                .invalidRequest,
                "health.intervalSeconds: at least \(daemon.policy.daemon.healthMinInterval.milliseconds / 1000) on this host ([daemon] health_min_interval): each check starts a sandbox")
        }
        if let health = registration.health, let profile = loaded?.effective.profile {
            let m = profile.mcp
            let relayOnly = !m.server && (!m.rateLimits.isEmpty || !m.contentFilters.isEmpty || m.maxConcurrentRequests != MCPPolicy.defaultConcurrentRequests)
            let problem: String? =
                m.server
                ? (health.command != nil ? "an MCP server is checked by the protocol (initialize, tools/list): leave health.command out" : nil)
                : relayOnly
                    ? "a tool with [mcp_policy] runs behind the relay only, so its health command could not run: set mcp = true to check it as an MCP server"
                    : (health.command == nil ? "a tool that is not an MCP server is checked by running health.command: give one" : nil)
            if let problem {
                report.valid = false
                report.findings.append(ValidationFinding(severity: "error", file: registration.id, keyPath: "health.command", message: problem))
            } else if report.valid, let command = health.command {
                // The check runs the health command under the same profile: it must be granted there too.
                let (checked, _) = try await planning(context) { planner in planner.validate(registration.profile, id: registration.id, command: command, manifest: manifest) }
                for finding in checked.findings where finding.severity == "error" {
                    report.valid = false
                    report.findings.append(ValidationFinding(severity: "error", file: registration.id, keyPath: "health.command", message: finding.message))
                }
            }
        }
        // From here to its audit event, this change is the registry's only one (the fleet's, with a shared registry).
        try await daemon.registryWrites.lock()
        defer { daemon.registryWrites.unlock() }
        // A client written against the specification knows nothing of
        // Burrow's `manifest`: its update of a signed version (a status
        // change, say) must not silently unsign it. Burrow's form replaces
        // the whole registration, so there leaving it out is the request.
        if specification, replacing != nil, registration.manifest == nil {
            let stored = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.versions(registration.id) }
            if stored.contains(where: { $0.registration.metadata.version == registration.metadata.version && $0.registration.manifest != nil }) {
                throw DaemonError(
                    .invalidRequest,
                    "\(registration.id) \(registration.metadata.version) carries a signed manifest, and this update does not: send it back (`manifest`, as GET answers show it), or remove the signature with PUT /v1/tools/\(registration.id) (Burrow's form)"
                )
            }
        }
        let dependencyProblems = try dependencyFindings(registration)
        if !dependencyProblems.isEmpty {
            report.valid = false
            report.findings += dependencyProblems
        }
        if specification, registration.manifest != nil {
            // The profile here is what `security` converts to, not the text another form may have sent: say how to sign that.
            for i in report.findings.indices where report.findings[i].message.contains("was signed for another profile") {
                report.findings[i].message += " (in the specification's form the profile is what `security` converts to: burrow tools manifest --registration FILE signs that one)"
            }
        }
        guard report.valid else {
            let errors = report.findings.filter { $0.severity == "error" }.map { $0.keyPath.isEmpty ? $0.message : "\($0.keyPath): \($0.message)" }
            var error = DaemonError(.validationFailed, "the registration is not valid: " + errors.joined(separator: "; "))
            error.validation = report
            throw error
        }
        let now = AuditClock.format(AuditClock.now())
        let principal = identity.caller.principal
        let record = ToolRecord(registration: registration, registeredAt: now, updatedAt: now, registeredBy: principal, validation: report)
        let stored = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.versions(registration.id) }
        let previous = stored.first { $0.registration.metadata.version == registration.metadata.version }
        // An update (a status of disabled, say) must leave the tool's dependents a version they accept.
        var broken: [String] = []
        if previous != nil {
            let remaining = stored.map { $0.registration.metadata.version == registration.metadata.version ? record : $0 }
            let already = Set(try brokenDependents(of: registration.id, remaining: stored))
            broken = try guardDependents(try brokenDependents(of: registration.id, remaining: remaining).filter { !already.contains($0) }, request, "this update")
        }
        switch try registryCall({ () throws(RegistryStore.Failure) in try daemon.registry.write(record, replace: replacing != nil) }) {
        case .exists:
            throw DaemonError(.versionExists, "\(registration.id) \(registration.metadata.version) is registered already; PUT /v1/tools/\(registration.id) replaces it")
        case .missing:
            throw DaemonError(.notFound, "\(registration.id) \(registration.metadata.version) is not registered; POST /v1/tools adds it")
        case .written:
            break
        }
        let registry = daemon.registry
        let undo = {
            if let previous {
                _ = try? registry.write(previous, replace: true)
            } else {
                _ = try? registry.remove(registration.id, version: registration.metadata.version)
            }
        }
        do {
            try await daemon.registryWrites.publish(registration.id)
        } catch {
            undo()
            throw error
        }
        let details = RegistrationDetails(
            updated: replacing != nil, version: registration.metadata.version, name: registration.metadata.name, status: registration.status.rawValue,
            command: registration.command, clamps: report.clamps.map { "\($0.key): \($0.requested) → \($0.effective)" }, exposureScore: report.exposureScore,
            trust: report.plan?.trust.map { t in
                ["level": t.level, "signer": t.signer, "manifestDigest": t.manifestDigest, "expires": t.expires].compactMapValues { $0 }
            }, brokenDependents: broken)
        let event = AuditEvent(
            tool: registration.id, context: SecurityContext(principal: principal, uid: identity.caller.uid, profileDigest: loaded?.digest, host: UserDatabase.hostName),
            details: details)
        do {
            let audit = daemon.audit
            _ = try await BlockingIO.run { try audit.append([event]) }
        } catch {
            // Fail closed: no change to what may run goes unrecorded.
            undo()
            throw DaemonError(.auditUnavailable, "the audit log cannot record the change, so it was undone: \(error)")
        }
        do {
            try await daemon.registryWrites.commit()
        } catch {
            undo()
            throw error
        }
        if replacing != nil { daemon.invocations.warm.drop(registration.id) }
        let written = daemon.health.annotate(
            try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.versions(registration.id) }
                .first { $0.registration.metadata.version == registration.metadata.version } ?? record)
        let status: HTTPResponse.Status = replacing == nil ? .created : .ok
        return specification ? try json(SpecificationForm.json(written), status: status) : try json(written, status: status)
    }

    /// What validation of the profile does not cover: the registration's own
    /// fields, checked as bytes (no control characters where none belong, no
    /// NUL anywhere a C string takes the value).
    static func checkFields(_ r: ToolRegistration) throws(DaemonError) {
        func bad(_ message: String) -> DaemonError { DaemonError(.invalidRequest, message) }
        func text(_ value: String, _ field: String, max: Int, lines: Bool = false) throws(DaemonError) {
            guard value.utf8.count <= max else { throw bad("\(field): at most \(max) bytes") }
            let allowed: Set<UInt32> = lines ? [0x09, 0x0a, 0x0d] : []
            if let bad = value.unicodeScalars.first(where: { ($0.value < 0x20 || $0.value == 0x7f) && !allowed.contains($0.value) }) {
                throw DaemonError(.invalidRequest, "\(field): contains the control character U+\(String(bad.value, radix: 16, uppercase: true))")
            }
        }
        guard SafeName.isValid(r.id) else { throw bad("id: use 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'") }
        guard !r.metadata.name.isEmpty else { throw bad("metadata.name: 1 to 200 bytes") }
        try text(r.metadata.name, "metadata.name", max: 200)
        guard SafeName.isValid(r.metadata.version), r.metadata.version.utf8.count <= 64 else {
            throw bad("metadata.version: 1 to 64 letters, digits, '.', '_' or '-', such as 1.2.0")
        }
        try text(r.metadata.description, "metadata.description", max: 16 << 10, lines: true)
        if let author = r.metadata.author { try text(author, "metadata.author", max: 200) }
        guard r.metadata.categories.count <= 32 else { throw bad("metadata.categories: at most 32") }
        for (i, c) in r.metadata.categories.enumerated() {
            guard !c.isEmpty else { throw bad("metadata.categories[\(i)]: 1 to 64 bytes") }
            try text(c, "metadata.categories[\(i)]", max: 64)
        }
        guard r.metadata.dependencies.count <= 64 else { throw bad("metadata.dependencies: at most 64") }
        for (i, d) in r.metadata.dependencies.enumerated() {
            try text(d.id, "metadata.dependencies[\(i)].id", max: 128)
            try text(d.versionRequirement, "metadata.dependencies[\(i)].versionRequirement", max: 256)
        }
        if let url = r.metadata.documentationURL {
            try text(url, "metadata.documentationUrl", max: 2048)
            guard url.hasPrefix("https://") || url.hasPrefix("http://"), !url.contains(" ") else { throw bad("metadata.documentationUrl: expected an http:// or https:// URL") }
        }
        guard let first = r.command.first, !first.isEmpty else { throw bad("command: give the executable and its fixed arguments, such as [\"python3\", \"-m\", \"mcp_server_time\"]") }
        if let problem = ExecStrings.problem(argv: r.command, what: "command") { throw bad(problem) }
        // The executable as profile paths are written: a plain name, or an absolute normalised path.
        if first.contains("/") {
            guard case .success(let p) = PathPattern.parse(first), !p.subtree, p.path == first else {
                throw bad("command[0] '\(first)': give a plain name such as python3, or an absolute normalised path such as /usr/bin/python3 (no '..', '.' or '//')")
            }
        }
        guard r.capabilities.count <= 1024 else { throw bad("capabilities: at most 1024") }
        guard ToolStatus.registrable.contains(r.status) else {
            throw bad("status: active, deprecated or disabled (\(r.status.rawValue) is set by the tool's health checks, not by a registration)")
        }
        if let health = r.health {
            if let problem = health.problem { throw bad(problem) }
            if let command = health.command, let problem = ExecStrings.problem(argv: command, what: "health.command") { throw bad(problem) }
        }
        if let limits = r.rateLimits {
            for (name, value) in [("requestsPerMinute", limits.requestsPerMinute), ("maxConcurrent", limits.maxConcurrent)] {
                if let value, value < 1 { throw bad("rateLimits.\(name): expected a positive number") }
            }
        }
    }

    /// An invocation's own fields, before any lookup: what the caller adds to
    /// argv and the environment must reach execve as given.
    static func checkFields(_ r: InvocationRequest) throws(DaemonError) {
        func bad(_ message: String) -> DaemonError { DaemonError(.invalidRequest, message) }
        if let problem = ExecStrings.problem(argv: r.arguments, what: "arguments", environment: r.environment.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }) {
            throw bad(problem)
        }
        if let version = r.version, !SafeName.isValid(version) { throw bad("version: 1 to 128 letters, digits, '.', '_' or '-'") }
        if r.parameters.count > 32 { throw bad("parameters: at most 32") }
        for (name, value) in r.parameters.sorted(by: { $0.key < $1.key }) {
            guard !name.isEmpty, name.utf8.count <= 32, !name.utf8.contains(0) else { throw bad("parameters: a name is 1 to 32 bytes") }
            guard value.utf8.count <= 4096, !value.utf8.contains(0) else { throw bad("parameters.\(name): at most 4096 bytes, no NUL") }
        }
    }

    /// `specification`: answer in the MCP Registry specification's form (the `/api/v1` paths).
    func list(_ request: Request, _ context: DaemonContext, specification: Bool = false) async throws -> Response {
        try await requireAny(context, request, "listing tools")
        let q = request.uri.queryParameters
        var status: ToolStatus?
        if let text = q.get("status") {
            guard let s = ToolStatus(rawValue: text) else {
                throw DaemonError(.invalidParameter, "status: expected one of \(ToolStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            status = s
        }
        let category = q.get("category")
        // Stored is the operator's status; degraded and unavailable are active tools whose health checks fail.
        let stored = status.map { ToolStatus.registrable.contains($0) ? $0 : .active }
        let records = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.list(category: category, status: stored) }
            .map(daemon.health.annotate).filter { status == nil || $0.status == status }
        return specification ? try json(JSON.array(records.map(SpecificationForm.json))) : try json(records)
    }

    func show(_ request: Request, _ context: DaemonContext, specification: Bool = false) async throws -> Response {
        let id = try Self.toolID(context)
        try await requireAny(context, request, "reading a registration")
        let versions = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.versions(id) }
        let wanted = request.uri.queryParameters.get("version")
        guard let found = wanted.map({ v in versions.first { $0.registration.metadata.version == v } }) ?? versions.first else {
            throw DaemonError(.notFound, "no tool \(id)\(wanted.map { " version \($0)" } ?? "") is registered")
        }
        let record = daemon.health.annotate(found)
        let detail = ToolDetail(
            tool: record, versions: versions.map(\.registration.metadata.version), dependents: try dependents(of: id),
            statistics: mayReadAudit(context) ? try await statistics(id, window: request.uri.queryParameters.get("window")) : nil)
        guard specification else { return try json(detail) }
        let dependents = detail.dependents.map { JSON.object(["id": .string($0.id), "version": .string($0.version), "version_requirement": .string($0.versionRequirement)]) }
        var answer: [String: JSON] = ["tool": SpecificationForm.json(record), "versions": .array(detail.versions.map(JSON.string)), "dependents": .array(dependents)]
        if let statistics = detail.statistics { answer["statistics"] = SpecificationForm.json(statistics) }
        return try json(JSON.object(answer))
    }

    /// A tool's statistics over `window` (a duration, default 7d, at most
    /// 366d) from its audit trail; nil when the log cannot be read now.
    func statistics(_ id: String, window text: String?) async throws(DaemonError) -> ToolStatistics? {
        var window = Seconds.seconds(7 * 86400)
        if let text {
            guard let w = Seconds(parsing: text), w.milliseconds > 0, w.milliseconds <= 366 * 86_400_000 else {
                throw DaemonError(.invalidParameter, "window: a duration up to 366d, such as 24h or 30d")
            }
            window = w
        }
        let until = AuditClock.now()
        let since = until - Int64(window.milliseconds) * 1000
        let audit = daemon.audit
        guard let totals = try? await BlockingIO.run({ try audit.runTotals(tool: id, since: since, until: until) }) else { return nil }
        return ToolStatistics(
            since: AuditClock.format(since), until: AuditClock.format(until), completed: totals.counts[.toolCompleted] ?? 0, failed: totals.counts[.toolFailed] ?? 0,
            durations: totals.durations, meanCPUMicroseconds: totals.meanCPUMicroseconds, peakMemoryBytes: totals.peakMemoryBytes,
            limitHits: totals.counts[.resourceLimitExceeded] ?? 0, violations: totals.counts[.securityViolation] ?? 0, denials: totals.refusals)
    }

    func remove(_ request: Request, _ context: DaemonContext) async throws -> Response {
        let id = try Self.toolID(context)
        try await require(.admin, context, request, "removing a tool", tool: id)
        let version = request.uri.queryParameters.get("version")
        try await daemon.registryWrites.lock()
        defer { daemon.registryWrites.unlock() }
        let before = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.versions(id) }
        let remaining = version.map { v in before.filter { $0.registration.metadata.version != v } } ?? []
        let already = Set(try brokenDependents(of: id, remaining: before))
        let broken = try guardDependents(
            try brokenDependents(of: id, remaining: remaining).filter { !already.contains($0) }, request, "removing \(id)\(version.map { " " + $0 } ?? "")")
        let removed = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.remove(id, version: version) }
        guard !removed.isEmpty else { throw DaemonError(.notFound, "no tool \(id)\(version.map { " version \($0)" } ?? "") is registered") }
        let undo = {
            for record in before where removed.contains(record.registration.metadata.version) {
                _ = try? daemon.registry.write(record, replace: false)
            }
        }
        do {
            try await daemon.registryWrites.publish(id)
        } catch {
            undo()
            throw error
        }
        let identity = context.identity
        let event = AuditEvent(
            tool: id, context: SecurityContext(principal: identity.caller.principal, uid: identity.caller.uid, host: UserDatabase.hostName),
            details: DeregistrationDetails(versions: removed, brokenDependents: broken))
        do {
            let audit = daemon.audit
            _ = try await BlockingIO.run { try audit.append([event]) }
        } catch {
            // Fail closed: the removal is undone rather than left unrecorded.
            undo()
            throw DaemonError(.auditUnavailable, "the audit log cannot record the removal, so it was undone: \(error)")
        }
        // Recorded: its pinned definitions go too (a version registered again starts unpinned).
        for version in removed { try? daemon.registry.restorePins(id, version: version, approved: nil, offered: nil) }
        do {
            try await daemon.registryWrites.publish(id)
            try await daemon.registryWrites.commit()
        } catch {
            undo()
            throw error
        }
        daemon.invocations.warm.drop(id)
        return try json(RemovedTool(id: id, removed: removed))
    }

    // MARK: invocations

    /// The registration a run uses: the version asked for, or the highest one that is not disabled.
    func registration(_ id: String, version: String?) throws(DaemonError) -> ToolRecord {
        let versions = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.versions(id) }
        let chosen = version.map { v in versions.first { $0.registration.metadata.version == v } } ?? versions.first { $0.registration.status != .disabled }
        guard let record = chosen else {
            let what = version.map { "version \($0) of \(id) is" } ?? (versions.isEmpty ? "no tool \(id) is" : "no version of \(id) is enabled and")
            throw DaemonError(.notFound, "\(what) registered")
        }
        return record
    }

    func invoke(_ request: Request, _ context: DaemonContext) async throws -> Response {
        let phases = Phases.requested ? Phases.Recorder() : nil
        phases?.mark("request")
        let id = try Self.toolID(context)
        try await require(.invoker, context, request, "invoking a tool", tool: id)
        let body = try await decode(InvocationRequest.self, request, context, tool: id)
        try Self.checkFields(body)
        let record = try registration(id, version: body.version)
        phases?.mark("request_decoded")
        let streaming =
            request.uri.queryParameters.get("stream").map { $0 == "1" || $0 == "true" } ?? false
            || request.headers[.accept]?.contains("application/x-ndjson") == true
        // Idempotency-Key: a retried request is answered from the first one's result, never run twice.
        // Keys are the caller's own: its uid (a local caller, whatever its name resolves to) or its principal.
        let principal: String =
            switch context.identity.key {
            case .uid(let uid): "uid:\(uid)"
            case .principal(let name): name
            case .address(let address): "address:\(address)"
            }
        var claimed: IdempotencyKeys.Held?
        if let name = Self.idempotencyKey, let key = request.headers[name] {
            guard !streaming else { throw DaemonError(.invalidRequest, "Idempotency-Key: a stream cannot be replayed; ask for the plain result (no stream=1)") }
            guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
                throw DaemonError(.invalidRequest, "Idempotency-Key: 1 to 255 visible ASCII characters")
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let digest = SHA256.label(Array(id.utf8) + [0] + Array(try encoder.encode(body)))
            let retention = Int64(daemon.policy.daemon.resultRetention.milliseconds) * 1000
            switch try await daemon.idempotency.claim(principal: principal, key: key, digest: digest, retentionMicroseconds: retention) {
            case .claimed(let held):
                claimed = held
            case .taken(let first, let answer, let invocation):
                guard first == digest else {
                    throw DaemonError(.idempotencyMismatch, "Idempotency-Key '\(key)' was used for another request (another tool, arguments or input): a key names one request")
                }
                guard let answer else {
                    throw DaemonError(
                        .inProgress,
                        "the request with Idempotency-Key '\(key)' is still running\(invocation.map { " (invocation \($0): GET /v1/invocations/\($0))" } ?? ""); retry for its result",
                        retryAfter: 1)
                }
                var response = try json(answer)
                if let replayed = Self.idempotentReplayed { response.headers[replayed] = "true" }
                return response
            }
        }
        let prepared: InvocationService.Prepared
        do {
            prepared = try await daemon.invocations.prepare(record, body, caller: context.identity, phases: phases)
        } catch {
            // Refused before it ran: the key is free for a retry.
            if let claimed { await daemon.idempotency.release(claimed) }
            throw error
        }
        if let claimed {
            do {
                try await daemon.idempotency.bind(
                    claimed,
                    started: InvocationResult(
                        id: prepared.id, tool: id, version: record.registration.metadata.version, state: .running, startedAt: AuditClock.format(AuditClock.now())))
            } catch {
                // Not run (the prepared invocation is dropped, its slot and sandbox given back):
                // the key is not left claimed by a request that never ran.
                prepared.slot.release()
                await daemon.idempotency.release(claimed)
                throw error
            }
        }
        guard streaming else {
            let started = ContinuousClock.now
            let result = await daemon.invocations.run(prepared)
            daemon.metrics.roundTrip.record(ContinuousClock.now - started)
            if let claimed { await daemon.idempotency.finish(claimed, result: result, logger: daemon.logger) }
            var response = try json(result)
            if let phases, let name = HTTPFields.Element.Name("Burrow-Phases") {
                phases.mark("answer_encoded")
                response.headers[name] = Phases.header(phases.recorded)
            }
            return response
        }
        let invocations = daemon.invocations
        // A streaming caller that goes away, even while the tool is silent,
        // has nobody to answer: its connection's close stops the tool (a
        // no-op once the invocation has ended).
        let invocationID = prepared.id
        context.channel?.closeFuture.whenComplete { _ in invocations.stop(invocationID, "the client disconnected from the stream") }
        return Response(
            status: .ok, headers: [.contentType: "application/x-ndjson"],
            body: ResponseBody { writer in
                let (events, continuation) = AsyncStream<ByteBuffer>.makeStream()
                let gate = StreamGate()
                let run = Task {
                    _ = await invocations.run(
                        prepared,
                        sink: { event in
                            guard let line = gate.admit(event) else { return }
                            continuation.yield(line)
                        })
                    continuation.finish()
                }
                do {
                    for await line in events {
                        gate.consumed(line.readableBytes)
                        try await writer.write(line)
                    }
                    try await writer.finish(nil)
                } catch {
                    // The caller went away: the tool has nobody to answer.
                    invocations.stop(prepared.id, "the client disconnected from the stream")
                    await run.value
                    throw error
                }
            })
    }

    // Valid token names: never nil.
    static let idempotencyKey = HTTPFields.Element.Name("Idempotency-Key")
    static let idempotentReplayed = HTTPFields.Element.Name("Idempotent-Replayed")

    func invocation(_ request: Request, _ context: DaemonContext) async throws -> Response {
        let id = try Self.uuidParameter(context, "id", what: "invocation")
        guard let (result, principal) = try registryCall({ () throws(RegistryStore.Failure) in try daemon.registry.invocation(id) }) else {
            try await requireAny(context, request, "reading an invocation")
            throw DaemonError(.notFound, "no invocation \(id) (results are kept for \(daemon.policy.daemon.resultRetention))")
        }
        let own = principal == context.identity.caller.principal
        if !own && !context.roles.contains(.admin) {
            try await require(.auditor, context, request, "reading another caller's invocation", tool: result.tool)
        }
        return try json(result)
    }

    // MARK: discovery

    func search(_ request: Request, _ context: DaemonContext, specification: Bool = false) async throws -> Response {
        try await requireAny(context, request, "searching tools")
        let parameters = request.uri.queryParameters
        if parameters.get("capability") != nil || parameters.get("input") != nil {
            var ranked = try matchCapabilities(capability: parameters.get("capability") ?? "", input: parameters.get("input") ?? "")
            if mayReadAudit(context) {
                for i in ranked.indices { ranked[i].statistics = try await statistics(ranked[i].tool, window: nil) }
            }
            return specification ? try json(JSON.array(ranked.map(SpecificationForm.json))) : try json(ranked)
        }
        guard let q = request.uri.queryParameters.get("q"), !q.isEmpty else {
            throw DaemonError(.invalidParameter, "q: give the words to search for, such as ?q=git (or ?capability=…&input=… to match capabilities)")
        }
        var limit = 20
        if let text = request.uri.queryParameters.get("limit") {
            guard let n = Int(text), (1...200).contains(n) else { throw DaemonError(.invalidParameter, "limit: expected 1 to 200") }
            limit = n
        }
        var found = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.search(q, limit: limit) }.map(daemon.health.annotate)
        if mayReadAudit(context) {
            for i in found.indices { found[i].statistics = try await statistics(found[i].registration.id, window: nil) }
        }
        return specification ? try json(JSON.array(found.map(SpecificationForm.json))) : try json(found)
    }

    /// Statistics come from the audit log: for those who may read it.
    func mayReadAudit(_ context: DaemonContext) -> Bool { !context.roles.isDisjoint(with: [.auditor, .admin]) }

    /// Capability matching: the enabled tools (latest versions) whose MCP
    /// capabilities match, highest score first (then by id: the same data
    /// always ranks the same), each match explained.
    private func matchCapabilities(capability: String, input: String) throws(DaemonError) -> [RankedTool] {
        let words = CapabilityMatch.words(capability)
        let inputs = input.split(separator: ",").map { $0.split(separator: " ").joined() }.filter { !$0.isEmpty }.prefix(16)
        guard !words.isEmpty || !inputs.isEmpty else { throw DaemonError(.invalidParameter, "capability, input: give what the tool must do (words) or take (name, type or name:type)") }
        let records = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.list(category: nil, status: nil) }
        let ranked = RankedTool.ranked(
            records.filter { $0.registration.status != .disabled }.map(daemon.health.annotate).compactMap { CapabilityMatch.match($0, capability: words, input: Array(inputs)) })
        return Array(ranked.prefix(50))
    }
}

/// Bounds what a streamed invocation holds for a slow reader: past 8 MiB in
/// flight, output chunks are dropped (the result still carries the kept
/// output and the byte counts); other events always pass.
final class StreamGate: Sendable {
    static let limit = 8 << 20
    private let inFlight = Atomic<Int>(0)

    func admit(_ event: InvocationEvent) -> ByteBuffer? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var line = try? ByteBuffer(bytes: encoder.encode(event)) else { return nil }
        line.writeString("\n")
        let isOutput = event.event == "stdout" || event.event == "stderr"
        if isOutput && inFlight.load(ordering: .relaxed) + line.readableBytes > Self.limit { return nil }
        inFlight.add(line.readableBytes, ordering: .relaxed)
        return line
    }

    func consumed(_ bytes: Int) { inFlight.subtract(bytes, ordering: .relaxed) }
}
