package import BurrowAPI
package import BurrowAudit
package import BurrowHost
package import BurrowPolicy
package import BurrowProfile
package import BurrowRuntime
package import BurrowSystem
import FoundationEssentials
import SystemPackage

/// A sandbox built ahead, and the host identity it was built with (its plan names the uid).
package struct WarmEntry: Sendable {
    package var sandbox: WarmSandbox
    package var identity: SandboxIDLease

    package init(sandbox: WarmSandbox, identity: SandboxIDLease) {
        self.sandbox = sandbox
        self.identity = identity
    }
}

/// Where a request's sandbox built ahead comes from, and where it goes when
/// the request is refused (back) or its plan does not fit (retired).
package struct WarmSupply: Sendable {
    package var take: @Sendable () -> WarmEntry?
    package var giveBack: @Sendable (WarmEntry) -> Void
    package var retire: @Sendable (WarmEntry) -> Void

    package init(take: @escaping @Sendable () -> WarmEntry?, giveBack: @escaping @Sendable (WarmEntry) -> Void, retire: @escaping @Sendable (WarmEntry) -> Void) {
        self.take = take
        self.giveBack = giveBack
        self.retire = retire
    }
}

/// The front door: every invocation, from every caller, goes through
/// `prepare` (load → validate → clamp → compile → the checks every caller
/// gets → a host identity, cold or from a sandbox built ahead) and then
/// `PreparedInvocation.run` (ToolInvoked → launch → supervise, behind the
/// MCP relay when the request says so → the outcome in the audit log).
package struct Invocations: Sendable {
    package var planner: Planner
    package var audit: AuditStore

    package init(planner: Planner, audit: AuditStore) {
        self.planner = planner
        self.audit = audit
    }

    package var policy: HostPolicy { planner.policy }

    /// Everything before the sandbox starts.
    /// - Throws: `Refusal`; the caller records it (the CLI with
    ///   `Refusal.record`, burrowd through its DenialLog, which
    ///   aggregates a caller's bursts) and answers with its code.
    package func prepare(_ request: Request, caller: Caller) throws(Refusal) -> PreparedInvocation {
        // A user's own request (the session socket) reads the host with its rights.
        let loading = planner.load(
            request.profile, parameters: .supplied(request.parameters), caller: caller, ceilings: request.userCeilings ? policy.users : nil,
            readingAs: request.userCeilings ? request.grantsCheckedAs : nil)
        Phases.mark("profile_loaded")
        let tool = loading.tool ?? request.profile.label
        func refusal(_ code: ErrorCode, _ message: String, retryAfter: Int? = nil, denied: Bool = true) -> Refusal {
            Refusal(code: code, message: message, tool: tool, retryAfter: retryAfter, denied: denied)
        }
        guard let loaded = loading.loaded else {
            var refused = refusal(.profileInvalid, "the profile is not valid: " + loading.issues.filter { $0.severity == .error }.map(\.description).joined(separator: "; "))
            refused.issues = loading.issues
            throw refused
        }
        if let deadline = request.deadline, deadline > loaded.effective.limits.maxExecutionTime {
            throw refusal(.invalidRequest, "the deadline (\(deadline)) is above the tool's max_execution_time (\(loaded.effective.limits.maxExecutionTime))", denied: false)
        }

        // A sandbox built ahead brings its own host identity, which the plan names.
        var ahead = request.mode == .plain ? request.warm?.take() : nil
        defer { if let ahead { request.warm?.giveBack(ahead) } }
        let lease: SandboxIDLease
        if let ahead {
            lease = ahead.identity
        } else {
            do {
                lease = try SandboxIDLease.acquire(in: policy.sandbox.idRange)
            } catch {
                throw refusal(.noSandboxID, "\(error)", retryAfter: 1, denied: false)
            }
        }
        Phases.mark("identity_leased")
        let plan: LaunchPlan
        do {
            plan = try planner.plan(
                loaded, argv: request.argv, environment: request.environment, workingDirectory: request.workingDirectory, sandboxID: lease.id, deadline: request.deadline,
                grantsCheckedAs: request.grantsCheckedAs, manifest: request.manifest)
        } catch {
            switch error.kind {
            case .plan: throw refusal(.planRefused, error.description)
            case .trust: throw refusal(.trustRefused, error.description)
            case .mismatch(let path):
                let message = error.description
                // Someone changed what was signed: more than a refusal.
                let details = ManifestMismatchDetails(path: path, message: error.description, manifest: request.manifest.map(\.label) ?? loaded.effective.profile.tool.manifest)
                do {
                    try audit.append([AuditEvent(tool: tool, context: SecurityContext(principal: caller.principal, uid: caller.uid, host: UserDatabase.hostName), details: details)])
                } catch {
                    throw refusal(.manifestMismatch, "\(message) (its AnomalousActivity event was not recorded: \(error))")
                }
                throw refusal(.manifestMismatch, message)
            }
        }
        Phases.mark("plan_compiled")
        switch request.mode {
        case .relay where !plan.mcp.server:
            throw refusal(.notMCP, "\(tool)'s profile does not say it is an MCP server: set mcp = true (top level) to run it behind the MCP relay")
        case .plain where plan.mcp.isConfigured:
            throw refusal(
                .mcpRelayRequired,
                "\(tool) is an MCP server (mcp = true or [mcp_policy]): run plainly, its stdio would pass straight through, past the relay's policy "
                    + "(listed tools, argument schemas, content filters, rate limits, per-call audit)" + (request.relayRemedy.isEmpty ? "" : "; " + request.relayRemedy))
        default:
            break
        }
        // Refused here, before ToolInvoked, with a PermissionDenied naming the
        // path; the sandbox's binds are then made from descriptors opened
        // with the same rights (ChildPlan), so a path swapped since cannot widen them.
        if let unreachable = Self.unreachableGrants(plan).first {
            throw refusal(.forbidden, "\(unreachable): nothing is bound that the caller could not reach")
        }
        if request.refuseUnlistedEnvironment {
            let passed = Set(plan.environment.filter { $0.source == .caller }.map(\.name))
            let refused = request.environment.keys.filter { !passed.contains($0) }.sorted()
            if !refused.isEmpty {
                throw refusal(.environmentNotAllowed, "not in the profile's env_whitelist (or reserved by Burrow): \(refused.joined(separator: ", "))")
            }
        }
        let stop: RunStop
        do {
            stop = try RunStop()
        } catch {
            throw refusal(.preparationFailed, error.description, denied: false)
        }
        var launch = PreparedInvocation.Launch.cold
        var released: WarmSandbox?
        if let entry = ahead {
            ahead = nil
            if entry.sandbox.claim(plan) {
                released = entry.sandbox
                launch = .warm
            } else {
                request.warm?.retire(entry)
                launch = .unfit
            }
        }
        let audit = RunAudit(
            store: audit, caller: caller, profileDigest: loaded.digest, durationThresholdMilliseconds: policy.audit.durationThreshold.milliseconds,
            cpuThresholdMilliseconds: policy.audit.cpuThreshold.milliseconds)
        return PreparedInvocation(
            id: released?.invocationID ?? UUID().uuidString.lowercased(), plan: plan, loaded: loaded, audit: audit, lease: lease, warm: released, launch: launch,
            relayed: request.mode == .relay, stop: stop)
    }
}

extension Invocations {
    /// The bind sources of a plan whose grants are checked as a caller
    /// (`grantsCheckedAs`) that the caller cannot open with the access its
    /// mount gives, in mount order: `prepare` refuses the first, dry-run
    /// shows them all.
    package static func unreachableGrants(_ plan: LaunchPlan) -> [CallerAccess.Failure] {
        guard let caller = plan.spec.grantsCheckedAs else { return [] }
        let executables = Set(plan.spec.allowedExecutables)
        var failures: [CallerAccess.Failure] = []
        for entry in plan.mounts {
            // A verified copy: the caller must reach the host's path it stands for.
            if let host = entry.verifiedFrom {
                do {
                    let opened = try CallerAccess.open(host, as: caller, access: executables.contains(host) ? [.read, .execute] : .read, searchDirectories: true)
                    try? opened.close()
                } catch {
                    failures.append(error)
                }
                continue
            }
            guard let access = entry.callerAccess(executables: executables), let source = entry.source else { continue }
            do {
                let opened = try CallerAccess.open(source, as: caller, access: access, searchDirectories: true)
                defer { try? opened.close() }
                if access.contains(.write), let st = CallerAccess.status(opened), CallerAccess.createsFiles(st), !CallerAccess.owns(caller, st) {
                    failures.append(.notOwned(path: source, caller: "\(caller)"))
                }
            } catch {
                failures.append(error)
            }
        }
        return failures
    }

    /// One request to run a tool, whoever makes it: `burrow run`, `burrow mcp`
    /// and burrowd (plain invocations and MCP sessions) each fill one in and
    /// hand it to `prepare`.
    package struct Request: Sendable {
        /// How the tool's stdio meets the caller.
        package enum Mode: Sendable, Equatable {
            /// Straight through (inherited or captured). A profile with MCP relay
            /// policy is refused: the policy would not apply.
            case plain
            /// Straight through, for an MCP server whose caller asked explicitly
            /// to run it without the relay's policy (`burrow run --without-mcp-relay`).
            case withoutRelay
            /// An MCP server (the profile says `mcp = true`) behind the relay:
            /// listed tools, argument schemas, content filters, rate limits and
            /// an audit invocation per call.
            case relay
        }

        package var profile: ProfileSource
        package var argv: [String]
        /// Values for the profile's parameters, by name.
        package var parameters: [String: String]
        /// The caller's environment: only names the profile passes reach the tool.
        package var environment: [String: String]
        /// Refuse names of `environment` the profile does not pass (burrowd,
        /// whose caller named them), rather than leave them out (the CLI, which
        /// offers its whole environment).
        package var refuseUnlistedEnvironment: Bool
        package var workingDirectory: String
        /// The request's own deadline; above the profile's max_execution_time it is refused.
        package var deadline: Seconds?
        package var mode: Mode
        /// What to tell a caller whose plain request names an MCP server.
        package var relayRemedy: String
        /// Sandboxes built ahead for this tool (burrowd); nil: always cold.
        package var warm: WarmSupply?
        /// Open every bind source with this caller's rights (`LaunchPlan`'s
        /// `grantsCheckedAs`); nil: burrowd's own.
        package var grantsCheckedAs: CallerCredentials?
        /// Lower the profile to the host policy's `[users]` ceilings (an
        /// unprivileged caller's own profile, through the session socket).
        package var userCeilings = false
        /// The tool's signed manifest (nil: the profile's `[tool] manifest`, if any).
        package var manifest: ManifestSource?

        package init(
            profile: ProfileSource, argv: [String], parameters: [String: String] = [:], environment: [String: String] = [:], refuseUnlistedEnvironment: Bool = false,
            workingDirectory: String = "/",
            deadline: Seconds? = nil, mode: Mode = .plain, relayRemedy: String = "", warm: WarmSupply? = nil
        ) {
            self.profile = profile
            self.argv = argv
            self.parameters = parameters
            self.environment = environment
            self.refuseUnlistedEnvironment = refuseUnlistedEnvironment
            self.workingDirectory = workingDirectory
            self.deadline = deadline
            self.mode = mode
            self.relayRemedy = relayRemedy
            self.warm = warm
        }
    }

    /// A request refused before it became an invocation: the code (its HTTP
    /// and exit status), the message, and what its PermissionDenied records.
    package struct Refusal: Error, Sendable, CustomStringConvertible {
        package var code: ErrorCode
        package var message: String
        /// The tool the request named (its id once the profile parsed).
        package var tool: String
        /// The profile's findings, for `profile_invalid`.
        package var issues: [ProfileIssue] = []
        package var retryAfter: Int? = nil
        /// Whether the refusal is a PermissionDenied (a bad request is not:
        /// nothing was denied, the request was malformed).
        package var denied = true

        package var description: String { message }

        /// Writes the refusal to the log as one PermissionDenied, with the request's profile and argv.
        package func record(in store: AuditStore, caller: Caller, request: Request) throws(AuditError) {
            let details = RefusalDetails(reason: code.name, message: message, profile: request.profile.label, argv: request.argv)
            try store.append([AuditEvent(tool: tool, context: SecurityContext(principal: caller.principal, uid: caller.uid, host: UserDatabase.hostName), details: details)])
        }
    }
}
