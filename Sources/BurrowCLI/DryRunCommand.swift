import ArgumentParser
import BurrowInvocation
import BurrowPolicy
import BurrowProfile
import BurrowSession
import BurrowSystem
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// `burrow dry-run`: compiles and prints the launch plan without running anything.
struct DryRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dry-run",
        abstract: "Show exactly what the kernel will be told for a command, without running it.",
        discussion: """
            Loads the profile, validates and clamps it by the host policy, probes this host, and prints \
            the launch plan that `burrow run` would execute: namespaces, id maps, the mount table, \
            environment, rlimits, cgroup writes, capabilities, the seccomp rule set, Landlock rules, \
            the network plan, what this host can enforce, and an exposure score (0.0 best, 10.0 worst).

            Exit status: 0 plan made; 1 profile or command error; 3 exposure above --threshold; \
            4 some control cannot be enforced on this host (`burrow run` would refuse).

            Examples:
              burrow dry-run --profile Profiles/mcp-server-git.toml -- git status
              burrow dry-run --profile minimal --json -- /bin/true
              burrow dry-run --profile untrusted --threshold 2.5 -- python3 -c 'print(1)'
            """)

    @OptionGroup var options: ProfileOptions
    @OptionGroup var parameters: ParameterOptions
    @OptionGroup var caller: CallerOptions
    @OptionGroup var manifest: ManifestOptions
    @OptionGroup var session: SessionOptions

    @Option(name: .long, help: ArgumentHelp("A profile file, or a name looked up in $BURROW_PROFILE_PATH and /etc/burrow/profiles.", valueName: "file|name"))
    var profile: String

    @Flag(name: .long, help: "Print the plan as JSON (schema: docs/dry-run.md).")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Exit with status 3 when the exposure score is above this value.", valueName: "score"))
    var threshold: Double?

    @Flag(name: .long, help: "Also print libseccomp's pseudo-code listing of the compiled filter.")
    var seccompListing = false

    @Flag(name: .long, help: "Show the values of variables passed from the caller's environment (hidden by default).")
    var showEnvironment = false

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command and its arguments, after '--'.", valueName: "command"))
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command after '--', e.g. burrow dry-run --profile minimal -- /bin/true") }
        if let threshold, !(0...10).contains(threshold) { throw ValidationError("--threshold must be between 0 and 10") }
    }

    func run() throws {
        guard geteuid() == 0 else { return try planThroughBurrowd() }
        let (plan, compiler, loaded) = try FrontDoor.plan(
            options, parameters: try parameters.parsed(), profile: profile, command: command, grantsCheckedAs: try caller.credentials(), manifest: manifest.source)
        // With --as-user: what that user's run would refuse, shown before it is tried.
        let unreachable = Invocations.unreachableGrants(plan).map {
            ProfileIssue(file: loaded.files.first ?? profile, keyPath: "", message: "\($0): `burrow run` refuses this grant", severity: .warning)
        }
        try show(plan, warnings: loaded.warnings + unreachable, listing: seccompListing ? compiler.seccompListing(loaded.effective) : nil)
    }

    /// Not root: the plan burrowd would run for this user (its profile
    /// directories, `[users]` ceilings, grants checked as this user).
    private func planThroughBurrowd() throws {
        _ = try caller.credentials()
        var request = try SessionClient.request(.dryRun, profile: profile, argv: command, parameters: try parameters.parsed())
        request.seccompListing = seccompListing ? true : nil
        request.manifest = try manifest.forSession()
        switch try SessionClient.send(request, to: SessionClient.socketPath(session, policyFile: options.policy)) {
        case .refused(let refusal): throw SessionClient.report(refusal)
        case .failed(let failure):
            printError("burrow: \(failure.message)")
            throw ExitCode(failure.exitStatus)
        case .plan(let answer): try show(answer.plan, warnings: answer.warnings, listing: answer.seccompListing)
        case .finished: throw ExitCode(125)
        }
    }

    private func show(_ plan: LaunchPlan, warnings: [ProfileIssue], listing: String?) throws {
        if json {
            print(try PlanJSON.encode(plan, showEnvironment: showEnvironment))
        } else {
            print(PlanPrinter(plan: plan, style: .stdout, showEnvironment: showEnvironment, issues: warnings).render())
        }
        if let listing { print(listing) }
        if let threshold, plan.exposure.score > threshold {
            printError("burrow: exposure \(plan.exposure.score) is above the threshold \(threshold)")
            throw ExitCode(3)
        }
        if !plan.isEnforceable { throw ExitCode(4) }
    }
}

/// The dry-run JSON: the plan itself, with caller-supplied environment values
/// redacted unless asked for.
enum PlanJSON {
    static func encode(_ plan: LaunchPlan, showEnvironment: Bool) throws -> String {
        var shown = plan
        if !showEnvironment { shown.environment = shown.environment.map(redacted) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(shown), as: UTF8.self)
    }

    static func redacted(_ entry: EnvironmentEntry) -> EnvironmentEntry {
        var e = entry
        if e.source == .caller { e.value = "<redacted>" }
        return e
    }
}

enum ProcessEnvironment {
    static func current() -> [String: String] {
        var out: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") { out[String(text[..<eq])] = String(text[text.index(after: eq)...]) }
            p += 1
        }
        return out
    }
}

func currentDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buffer, buffer.count) != nil else { return "/" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func printError(_ message: String) {
    var text = message + "\n"
    text.withUTF8 { buffer in _ = write(STDERR_FILENO, buffer.baseAddress, buffer.count) }
}
