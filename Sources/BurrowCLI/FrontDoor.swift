import ArgumentParser
import BurrowAPI
import BurrowAudit
import BurrowHost
import BurrowInvocation
import BurrowPolicy
import BurrowProfile
import BurrowSystem

/// The CLI's side of the front door (`Invocations`): the host policy, this
/// process's request (its environment, its working directory, the profile
/// read with its own rights) and how a refusal is told.
enum FrontDoor {
    /// The plan `burrow dry-run` prints: the same planner, for the first id
    /// of the sandbox range. Failures exit 1.
    static func plan(
        _ options: ProfileOptions, parameters: [String: String], profile: String, command: [String], grantsCheckedAs caller: CallerCredentials? = nil,
        manifest: ManifestSource? = nil
    ) throws -> (LaunchPlan, PlanCompiler, Planner.Loaded) {
        let planner = Planner(policy: try options.loadPolicy(), host: HostFacts.probe())
        let loading = planner.load(.reference(profile), parameters: .supplied(parameters), caller: Caller.current())
        guard let loaded = loading.loaded else {
            printIssues(loading.issues)
            throw ExitCode(1)
        }
        let environment = ProcessEnvironment.current()
        let compiler = planner.compiler(environment: environment, workingDirectory: currentDirectory(), sandboxID: nil)
        do {
            return (
                try planner.plan(
                    loaded, argv: command, environment: environment, workingDirectory: currentDirectory(), sandboxID: nil, grantsCheckedAs: caller, manifest: manifest),
                compiler,
                loaded
            )
        } catch {
            printError("burrow: \(error)")
            throw ExitCode(1)
        }
    }

    /// What `burrow run` and `burrow mcp` do before the sandbox starts: the
    /// policy, the audit log (no run without it), then the front door. A
    /// refusal is a PermissionDenied and exits with its code's status (125).
    static func prepare(
        _ options: ProfileOptions, _ auditOptions: AuditOptions, parameters: [String: String], profile: String, command: [String], mode: Invocations.Request.Mode,
        grantsCheckedAs caller: CallerCredentials? = nil, manifest: ManifestSource? = nil
    ) throws -> PreparedInvocation {
        let policy: HostPolicy
        let store: AuditStore
        do {
            policy = try options.loadPolicy()
        } catch {
            printError("burrow: \(error)")
            throw ExitCode(125)
        }
        Phases.mark("policy_loaded")
        do {
            store = try auditOptions.open(policy, access: .write)
        } catch {
            printError("burrow: refusing to run without an audit log: \(error)")
            throw ExitCode(125)
        }
        Phases.mark("audit_opened")
        let invocations = Invocations(planner: Planner(policy: policy, host: HostFacts.probe(children: false)), audit: store)
        Phases.mark("host_probed")
        var request = Invocations.Request(
            profile: .reference(profile), argv: command, parameters: parameters, environment: ProcessEnvironment.current(), workingDirectory: currentDirectory(), mode: mode,
            relayRemedy: "use `burrow mcp`, or `burrow run --without-mcp-relay` to run it without that policy")
        request.grantsCheckedAs = caller
        request.manifest = manifest
        let caller = Caller.current()
        do {
            defer { Phases.mark("planned") }
            return try invocations.prepare(request, caller: caller)
        } catch {
            if error.denied {
                do {
                    try error.record(in: store, caller: caller, request: request)
                } catch {
                    printError("burrow: the refusal was not recorded in the audit log: \(error)")
                }
            }
            if error.code == .profileInvalid {
                printIssues(error.issues)
            } else {
                printError("burrow: refusing to run: \(error.message)")
            }
            throw ExitCode(error.code.exitStatus)
        }
    }

    static func printIssues(_ issues: [ProfileIssue]) {
        printError("burrow: the profile is not valid:\n" + issues.map { "  " + printable($0.description) }.joined(separator: "\n"))
    }
}
