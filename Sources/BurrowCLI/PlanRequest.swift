import ArgumentParser
import BurrowAudit
import BurrowPolicy
import BurrowProfile
import BurrowRuntime
import BurrowSystem

/// Profile + policy + host + command → the LaunchPlan: the one path both
/// `dry-run` and `run` take, so what dry-run prints is what run executes.
struct PlanRequest {
    var options: ProfileOptions
    var profile: String
    var command: [String]
    /// The leased sandbox id (`run`); nil for dry-run.
    var sandboxID: UInt32? = nil
    /// Exit status for a bad profile or command.
    var failureStatus: Int32 = 1
    /// The profile files' text exactly as the loader read it (for the audit digest).
    let reads = ReadLog()
    /// Told about a refused request (tool id when the profile loaded, reason, message) before it fails.
    var onRefusal: (_ tool: String?, _ reason: String, _ message: String) -> Void = { _, _, _ in }

    /// - Returns: the plan, the compiler that made it, the effective profile and the profile's warnings.
    func compile() throws -> (LaunchPlan, PlanCompiler, EffectiveProfile, [ProfileIssue]) {
        let policy = try options.loadPolicy()
        return try compile(policy: policy)
    }

    func compile(policy: HostPolicy) throws -> (LaunchPlan, PlanCompiler, EffectiveProfile, [ProfileIssue]) {
        let reads = reads
        let loaded = options.loader(
            policy: policy,
            read: { path in
                let text = HostConfiguration.readTextFile(path)
                reads.record(path, text)
                return text
            }
        ).load(profile)
        guard let parsed = loaded.profile, loaded.errors.isEmpty else {
            let issues = loaded.issues.map(\.description)
            onRefusal(loaded.profile?.tool.id, "profile_invalid", "the profile is not valid: " + issues.joined(separator: "; "))
            printError("burrow: the profile is not valid:\n" + issues.map { "  " + printable($0) }.joined(separator: "\n"))
            throw ExitCode(failureStatus)
        }
        let effective = policy.clamp(parsed)
        var compiler = PlanCompiler(
            policy: policy, host: HostFacts.probe(children: sandboxID == nil), fs: LiveFileSystem(),
            environment: ProcessEnvironment.current(), workingDirectory: currentDirectory())
        compiler.sandboxID = sandboxID
        do {
            return (try compiler.compile(effective, profileFiles: loaded.files, argv: command), compiler, effective, loaded.warnings)
        } catch {
            onRefusal(parsed.tool.id, "plan_refused", "\(error)")
            printError("burrow: \(error)")
            throw ExitCode(failureStatus)
        }
    }
}
