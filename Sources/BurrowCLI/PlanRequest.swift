import ArgumentParser
import BurrowPolicy
import BurrowProfile
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

    /// - Returns: the plan, the compiler that made it, the effective profile and the profile's warnings.
    func compile() throws -> (LaunchPlan, PlanCompiler, EffectiveProfile, [ProfileIssue]) {
        let policy = try options.loadPolicy()
        return try compile(policy: policy)
    }

    func compile(policy: HostPolicy) throws -> (LaunchPlan, PlanCompiler, EffectiveProfile, [ProfileIssue]) {
        let loaded = options.loader(policy: policy).load(profile)
        guard let parsed = loaded.profile, loaded.errors.isEmpty else {
            printError("burrow: the profile is not valid:\n" + loaded.issues.map { "  " + printable($0.description) }.joined(separator: "\n"))
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
            printError("burrow: \(error)")
            throw ExitCode(failureStatus)
        }
    }
}
