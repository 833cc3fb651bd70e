import BurrowAPI
import BurrowAudit
import BurrowPolicy
package import BurrowProfile
import BurrowRuntime
package import BurrowSystem
import Synchronization

/// Registration profile → validation report → launch plan: the same loader,
/// clamp and compiler `burrow profile lint`, `dry-run` and `run` use.
package struct ToolPlanner: Sendable {
    package var policy: HostPolicy
    /// Probed once at start-up: the daemon pays no probe per call.
    package var host: HostFacts
    /// Where `extends` names are found.
    package var searchPath: [String]

    /// What planning may reuse from one invocation to the next: profiles
    /// loaded (while the files they extend read the same) and runtimes found
    /// (while every path they were found from is unchanged).
    let loads = LoadMemo()
    let memo = CompileMemo()

    package init(policy: HostPolicy, host: HostFacts, searchPath: [String]) {
        self.policy = policy
        self.host = host
        self.searchPath = searchPath
    }

    /// A profile that loaded: what a plan is compiled from.
    struct Loaded {
        var effective: EffectiveProfile
        var files: [String]
        var digest: String?
    }

    /// The profile's document, its format and the name findings refer to.
    static func document(_ profile: JSONValue, id: String) -> (text: String, format: ConfigFormat, name: String) {
        if case .string(let toml) = profile { return (toml, .toml, "\(id).toml") }
        return (profile.canonicalText, .json, "\(id).json")
    }

    /// Validates a profile as `burrow profile lint` does, clamps it as `burrow
    /// run` does and, given a command, compiles the plan it would get here.
    func validate(_ profile: JSONValue, id: String, command: [String]?) -> (ValidationReport, Loaded?) {
        let (text, format, name) = Self.document(profile, id: id)
        // Invocations validate the registered profile again, unchanged but for the files it extends.
        guard command == nil else { return load(text, format: format, name: name, command: command).answer }
        let key = LoadMemo.Key(text: text, name: name)
        if let kept = loads.lookup(key) { return kept }
        let (answer, consulted) = load(text, format: format, name: name, command: nil)
        loads.keep(key, reads: consulted, answer: answer)
        return answer
    }

    private func load(_ text: String, format: ConfigFormat, name: String, command: [String]?) -> (answer: (ValidationReport, Loaded?), consulted: [(String, String?)]) {
        let reads = ReadLog()
        reads.record(name, text)
        let consulted = Mutex<[(String, String?)]>([])
        let searchPath = searchPath
        let loader = ProfileLoader(
            policy: policy, searchPath: searchPath,
            read: { path in
                // A registration extends shipped profiles by name only: burrowd
                // (root) reads nothing a caller names by path.
                guard Self.isProfileFile(path, in: searchPath) else { return nil }
                let text = HostConfiguration.readTextFile(path)
                consulted.withLock { $0.append((path, text)) }
                reads.record(path, text)
                return text
            })
        let result = loader.load(document: text, format: format, name: name)
        var findings = result.issues.map { ValidationFinding(severity: $0.severity.rawValue, file: $0.file, keyPath: $0.keyPath, message: $0.message) }
        guard let parsed = result.profile, result.errors.isEmpty else {
            return ((ValidationReport(valid: false, findings: findings, clamps: [], exposureScore: nil, plan: nil), nil), consulted.withLock { $0 })
        }
        let effective = policy.clamp(parsed)
        let loaded = Loaded(effective: effective, files: result.files, digest: reads.digest(of: result.files))
        let clamps = effective.clamps
        guard let command, !command.isEmpty else {
            return ((ValidationReport(valid: true, findings: findings, clamps: clamps, exposureScore: nil, plan: nil), loaded), consulted.withLock { $0 })
        }
        do {
            let plan = try self.plan(loaded, argv: command, environment: [:], sandboxID: nil)
            let summary = PlanSummary(
                sandboxLevel: plan.sandboxLevel.rawValue, namespaces: plan.namespaces.map(\.kind.rawValue), networkAccess: effective.profile.networkAccess.rawValue,
                executable: plan.command.executable,
                unenforceable: plan.controls.filter { !$0.enforceable }.map { "\($0.control) (\($0.requested)): \($0.detail)" },
                limits: [
                    "max_cpu_time": "\(plan.limits.maxCpuTime)", "max_memory": "\(plan.limits.maxMemory)", "max_execution_time": "\(plan.limits.maxExecutionTime)",
                    "max_processes": "\(plan.limits.maxProcesses)", "max_open_files": "\(plan.limits.maxOpenFiles)", "max_file_size": "\(plan.limits.maxFileSize)",
                    "scratch_size": "\(plan.limits.scratchSize)",
                ])
            return ((ValidationReport(valid: true, findings: findings, clamps: clamps, exposureScore: plan.exposure.score, plan: summary), loaded), consulted.withLock { $0 })
        } catch {
            findings.append(ValidationFinding(severity: "error", file: name, keyPath: "command", message: error.description))
            return ((ValidationReport(valid: false, findings: findings, clamps: clamps, exposureScore: nil, plan: nil), nil), consulted.withLock { $0 })
        }
    }

    /// Whether `path` names a file directly inside one of `directories` (no `..`).
    static func isProfileFile(_ path: String, in directories: [String]) -> Bool {
        guard !path.split(separator: "/").contains("..") else { return false }
        return directories.contains { directory in
            let prefix = directory.hasSuffix("/") ? directory : directory + "/"
            return path.hasPrefix(prefix) && !path.dropFirst(prefix.count).contains("/")
        }
    }

    /// The launch plan for one invocation: `sandboxID` is the leased uid (nil
    /// for validation only); `environment` is the caller's, of which only
    /// whitelisted names reach the tool.
    func plan(_ loaded: Loaded, argv: [String], environment: [String: String], sandboxID: UInt32?, timeout: Seconds? = nil) throws(PlanError) -> LaunchPlan {
        var compiler = PlanCompiler(policy: policy, host: host, fs: LiveFileSystem(), environment: environment, workingDirectory: "/")
        compiler.sandboxID = sandboxID
        compiler.memo = memo
        return try compiler.compile(loaded.effective, profileFiles: loaded.files, argv: argv, deadline: timeout)
    }
}

/// Profiles loaded for invocations, each kept with every file its loading
/// asked for (and what it read, or that it was missing): reused only while
/// each of those files reads the same.
final class LoadMemo: Sendable {
    struct Key: Hashable {
        var text: String
        var name: String
    }

    private struct Entry: Sendable {
        var reads: [Read]
        var answer: (ValidationReport, ToolPlanner.Loaded?)
    }

    struct Read: Sendable {
        var path: String
        var text: String?
    }

    static let capacity = 256
    private let entries = Mutex<[Key: Entry]>([:])

    func lookup(_ key: Key) -> (ValidationReport, ToolPlanner.Loaded?)? {
        guard let entry = entries.withLock({ $0[key] }) else { return nil }
        guard entry.reads.allSatisfy({ HostConfiguration.readTextFile($0.path) == $0.text }) else { return nil }
        return entry.answer
    }

    func keep(_ key: Key, reads: [(String, String?)], answer: (ValidationReport, ToolPlanner.Loaded?)) {
        entries.withLock {
            if $0.count >= Self.capacity { $0.removeAll() }
            $0[key] = Entry(reads: reads.map { Read(path: $0.0, text: $0.1) }, answer: answer)
        }
    }
}
