import BurrowAudit
package import BurrowHost
package import BurrowJSON
import BurrowManifest
package import BurrowPolicy
package import BurrowProfile
package import BurrowSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where an invocation's profile comes from.
package enum ProfileSource: Sendable {
    /// A file path, or a name looked up in the search path: what `burrow
    /// run --profile` names, read with the caller's own rights.
    case reference(String)
    /// A registered profile document (TOML text as a JSON string, or a JSON
    /// object), named `id`: it may extend shipped profiles by name only.
    case document(JSON, id: String)

    /// The name a refusal before the profile loaded is recorded under.
    package var label: String {
        switch self {
        case .reference(let r): r
        case .document(_, let id): id
        }
    }
}

/// Profile → loaded, validated and clamped → launch plan: the one path
/// `burrow dry-run`, `burrow run`, `burrow mcp` and burrowd take, so what
/// dry-run prints is what runs.
package struct Planner: Sendable {
    package var policy: HostPolicy
    /// Probed once (burrowd: at start-up, so no call pays for a probe).
    package var host: HostFacts
    /// Where `extends` names and profiles given by name are found.
    package var searchPath: [String]

    /// What planning may reuse from one invocation to the next: registered
    /// profiles loaded (while the files they extend read the same) and
    /// runtimes found (while every path they were found from is unchanged).
    let loads = LoadMemo()
    let memo = CompileMemo(runCache: RunCache.forThisBinary)
    /// Manifests verified, while what they were verified from reads the same.
    let trustMemo = TrustMemo()

    package init(policy: HostPolicy, host: HostFacts, searchPath: [String] = HostConfiguration.profileSearchPath()) {
        self.policy = policy
        self.host = host
        self.searchPath = searchPath
    }

    /// A profile that loaded, clamped by the host policy: what plans are compiled from.
    package struct Loaded: Sendable {
        package var effective: EffectiveProfile
        /// The profile's files, itself first, then what it extends.
        package var files: [String]
        /// `sha256:` over the files as read (the audit's profileDigest).
        package var digest: String?
        package var warnings: [ProfileIssue]
        /// The profile's parameters with this request's values.
        package var parameters: [ResolvedParameter] = []
    }

    /// The outcome of loading: every issue, and the profile when none is an error.
    package struct Loading: Sendable {
        package var issues: [ProfileIssue]
        package var loaded: Loaded?
        /// The tool's id when the profile parsed, even if it did not validate.
        package var tool: String?
    }

    /// Loads, validates and clamps the profile. A registered document is
    /// loaded once and reused while every file its loading read (or found
    /// missing) reads the same.
    /// - Parameters:
    ///   - caller: who supplies the parameters' values (a run); a path it
    ///     names must be its own (root's: any, below the roots).
    ///   - ceilings: lowers the profile further (`[users]`: an unprivileged
    ///     caller's own profile through the session socket).
    ///   - readingAs: reads the host (the profile's files, its parameters'
    ///     paths) with this caller's file-system identity: what the load says
    ///     is only what the caller could see (the session socket).
    package func load(
        _ source: ProfileSource, parameters: ParameterValues = .placeholders, caller: Caller? = nil, ceilings: HostPolicy.Users? = nil,
        readingAs: CallerCredentials? = nil
    ) -> Loading {
        guard let readingAs else { return loadHere(source, parameters: parameters, caller: caller, ceilings: ceilings, memoize: true) }
        // Not kept in the memo of registered profiles: a user's documents
        // must not push out the registry's (nor be read back by another caller).
        do {
            return try CallerAccess.asCaller(readingAs) { () -> Loading in
                loadHere(source, parameters: parameters, caller: caller, ceilings: ceilings, memoize: false)
            }.get()
        } catch {
            return Loading(issues: [ProfileIssue(file: source.label, keyPath: "", message: "cannot read with \(readingAs)'s rights: \(error)")], loaded: nil)
        }
    }

    /// `load` with this thread's identity.
    private func loadHere(_ source: ProfileSource, parameters: ParameterValues, caller: Caller?, ceilings: HostPolicy.Users?, memoize: Bool) -> Loading {
        var loading = loadChecked(source, parameters: parameters, memoize: memoize)
        if let ceilings, let loaded = loading.loaded { loading.loaded?.effective = ceilings.clamp(loaded.effective) }
        // On every request (a load is reused; the host's paths may have
        // changed), and only for a run: checking a profile uses stand-ins.
        if let loaded = loading.loaded, case .supplied = parameters {
            let problems = Self.pathProblems(loaded.parameters, file: loaded.files.first ?? source.label, caller: caller)
            if !problems.isEmpty {
                loading.issues += problems
                loading.loaded = nil
            }
        }
        return loading
    }

    /// A path parameter's value as the host has it: present when it must
    /// be, reached without a symlink (which could lead outside the allowed
    /// roots), and, when a caller supplied it, owned by that caller (or, for
    /// a path yet to be made, its nearest existing ancestor): the grant maps
    /// the owner to the tool, so a caller may hand over only what is its own.
    static func pathProblems(
        _ parameters: [ResolvedParameter], file: String, caller: Caller?, fs: any FileSystemView = LiveFileSystem(), owner: (String) -> UInt32? = Self.owner
    ) -> [ProfileIssue] {
        var problems: [ProfileIssue] = []
        for p in parameters where p.type == .path && p.source != .placeholder {
            let keyPath = "parameters.\(p.name)"
            if let (final, _) = fs.resolve(p.value) {
                if final != p.value {
                    problems.append(ProfileIssue(file: file, keyPath: keyPath, message: "'\(p.value)' is reached through a symlink (to \(final)): give the path itself"))
                    continue
                }
            } else if p.mustExist {
                problems.append(ProfileIssue(file: file, keyPath: keyPath, message: "'\(p.value)' does not exist (the parameter says must_exist = true)"))
                continue
            }
            guard p.source == .caller, let caller, caller.uid != 0 else { continue }
            guard let uid = caller.uid else {
                problems.append(ProfileIssue(file: file, keyPath: keyPath, message: "'\(p.value)': \(caller.principal) is a remote caller, no user of this host, so it owns no path to grant"))
                continue
            }
            var existing = p.value
            while fs.kind(existing) == nil, existing != "/" {
                let parent = String(existing[..<(existing.lastIndex(of: "/") ?? existing.startIndex)])
                existing = parent.isEmpty ? "/" : parent
            }
            if owner(existing) != uid {
                problems.append(ProfileIssue(file: file, keyPath: keyPath, message: "'\(p.value)' is not yours (uid \(uid)): a caller may grant only paths it owns"))
            }
        }
        return problems
    }

    /// The owner of `path` (not following a final symlink), or nil.
    static func owner(_ path: String) -> UInt32? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_uid : nil
    }

    private func loadChecked(_ source: ProfileSource, parameters: ParameterValues, memoize: Bool) -> Loading {
        switch source {
        case .reference(let reference):
            let reads = ReadLog()
            let loader = ProfileLoader(
                policy: policy, searchPath: searchPath,
                read: { path in
                    let text = HostConfiguration.readTextFile(path)
                    reads.record(path, text)
                    return text
                })
            return finish(loader.load(reference, parameters: parameters), reads: reads)
        case .document(let profile, let id):
            let (text, format, name) = Self.document(profile, id: id)
            let key = LoadMemo.Key(text: text, name: name, parameters: parameters)
            if memoize, let kept = loads.lookup(key) { return kept }
            let reads = ReadLog()
            reads.record(name, text)
            let consulted = Mutex<[LoadMemo.Read]>([])
            let searchPath = searchPath
            let loader = ProfileLoader(
                policy: policy, searchPath: searchPath,
                read: { path in
                    // A registration extends shipped profiles by name only:
                    // burrowd (root) reads nothing a caller names by path.
                    guard Self.isProfileFile(path, in: searchPath) else { return nil }
                    let text = HostConfiguration.readTextFile(path)
                    consulted.withLock { $0.append(LoadMemo.Read(path: path, text: text)) }
                    reads.record(path, text)
                    return text
                })
            let loading = finish(loader.load(document: text, format: format, name: name, parameters: parameters), reads: reads)
            if memoize { loads.keep(key, reads: consulted.withLock { $0 }, loading: loading) }
            return loading
        }
    }

    private func finish(_ result: ProfileLoader.Loaded, reads: ReadLog) -> Loading {
        guard let parsed = result.profile, result.errors.isEmpty else {
            return Loading(issues: result.issues, loaded: nil, tool: result.profile?.tool.id)
        }
        let loaded = Loaded(
            effective: policy.clamp(parsed), files: result.files, digest: reads.digest(of: result.files), warnings: result.warnings, parameters: result.parameters)
        return Loading(issues: result.issues, loaded: loaded, tool: parsed.tool.id)
    }

    /// The compiler for one request: `environment` is the caller's (only
    /// whitelisted names reach the tool); `sandboxID` the leased uid (nil:
    /// the first of the range, as dry-run shows).
    package func compiler(environment: [String: String], workingDirectory: String, sandboxID: UInt32?) -> PlanCompiler {
        var compiler = PlanCompiler(policy: policy, host: host, fs: LiveFileSystem(), environment: environment, workingDirectory: workingDirectory)
        compiler.sandboxID = sandboxID
        compiler.memo = memo
        return compiler
    }

    /// The launch plan for one request (see `compiler`). With `grantsCheckedAs`,
    /// the host is read with that caller's file-system identity while
    /// compiling (globs listed, runtimes resolved, ELF headers and `#!` lines
    /// read, symlinks followed), so neither the plan nor its refusals show
    /// what the caller could not see itself.
    /// - Parameter manifest: the run's signed manifest (nil: the profile's
    ///   `[tool] manifest`, if it names one); see `decideTrust`. A signed
    ///   tool's sandbox shows the verified copies of its files.
    package func plan(
        _ loaded: Loaded, argv: [String], environment: [String: String], workingDirectory: String = "/", sandboxID: UInt32?, deadline: Seconds? = nil,
        grantsCheckedAs caller: CallerCredentials? = nil, manifest: ManifestSource? = nil
    ) throws(PlanError) -> LaunchPlan {
        // Parameters are written into the command and the caller's values
        // before compiling, so the plan's own checks (ExecStrings) see them.
        let p = loaded.parameters
        let argv = argv.map { ProfileParameters.substitute($0, p) }
        let (trust, verified) = try decideTrust(loaded, manifest: manifest, argv: argv, readingAs: caller, now: AuditClock.now())
        var compiler = compiler(environment: environment.mapValues { ProfileParameters.substitute($0, p) }, workingDirectory: workingDirectory, sandboxID: sandboxID)
        // A signed tool's paths are read from its verified copies: links,
        // `#!` lines and ELF headers as signed, whatever the host has now.
        let overlay = trust.manifest?.verifiedTree.flatMap { tree in verified.map { VerifiedFileSystem(tree: tree, manifest: $0.manifest, caller: caller) } }
        if let overlay { compiler.fs = overlay }
        let compile = { () throws(PlanError) -> LaunchPlan in
            try compiler.compile(loaded.effective, profileFiles: loaded.files, argv: argv, deadline: deadline)
        }
        var plan: LaunchPlan
        if let caller {
            do {
                plan = try CallerAccess.asCaller(caller, compile).get()
            } catch let error as PlanError {
                throw error
            } catch {
                throw PlanError(description: "cannot read the host with \(caller)'s rights: \(error)")
            }
        } else {
            plan = try compile()
        }
        plan.parameters = p
        plan.spec.grantsCheckedAs = caller
        if let verified {
            // Outside the caller's identity now: the copies and the host as root sees them.
            let fs: any FileSystemView = trust.manifest?.verifiedTree.map { VerifiedFileSystem(tree: $0, manifest: verified.manifest, caller: nil) } ?? LiveFileSystem()
            try Self.showVerified(&plan, verified.manifest, tree: trust.manifest?.verifiedTree, fs: fs)
        }
        plan.trust = trust
        plan.tool.trustLevel = trust.level
        return plan
    }

    /// A signed tool's plan: its command must be one of the manifest's
    /// files (or the base system's, running a listed script), and its
    /// sandbox binds the verified copies at the listed paths.
    static func showVerified(_ plan: inout LaunchPlan, _ manifest: ToolManifest, tree: String?, fs: any FileSystemView) throws(PlanError) {
        func vouched(_ path: String) -> Bool {
            manifest.files.contains { $0.path == path } || (manifest.root(of: path) != nil && tree != nil && fs.kind(path) != nil) || ManifestFiles.isBase(path)
        }
        // The file execve runs, its links followed as the sandbox will see
        // them; it is executed by that path, so no link of the host's
        // (outside a root, where a wider bind shows the host's) decides it.
        guard let executable = fs.resolve(plan.spec.executable)?.path else {
            throw PlanError(description: "the command \(plan.spec.executable) cannot be resolved", kind: .trust)
        }
        guard vouched(executable) else {
            throw PlanError(description: "the command runs \(executable), which the signed manifest does not list (and which is not the host's base system)", kind: .trust)
        }
        if tree != nil { plan.spec.executable = executable }
        // Everything else it may run (interpreters of its scripts included): listed or base.
        if let other = plan.spec.allowedExecutables.first(where: { !vouched($0) }) {
            throw PlanError(
                description: "the profile lets the tool run \(other), which the signed manifest does not list (add it: burrow tools manifest --file \(other)), and which is not the host's base system",
                kind: .trust)
        }
        guard let tree else { return }
        do {
            plan.mounts = try plan.mounts.showingVerified(
                tree: tree, roots: manifest.roots, files: manifest.files.map(\.path), links: Dictionary(manifest.links.map { ($0.path, $0.target) }, uniquingKeysWith: { a, _ in a }),
                exists: { path in
                    var st = stat()
                    return lstat(path, &st) == 0
                })
        } catch {
            throw PlanError(description: error.description, kind: .trust)
        }
    }

    /// The profile's document, its format and the name findings refer to.
    package static func document(_ profile: JSON, id: String) -> (text: String, format: ConfigFormat, name: String) {
        if case .string(let toml) = profile { return (toml, .toml, "\(id).toml") }
        return (profile.canonicalText, .json, "\(id).json")
    }

    /// Whether `path` names a file directly inside one of `directories` (no `..`).
    package static func isProfileFile(_ path: String, in directories: [String]) -> Bool {
        guard !path.split(separator: "/").contains("..") else { return false }
        return directories.contains { directory in
            let prefix = directory.hasSuffix("/") ? directory : directory + "/"
            return path.hasPrefix(prefix) && !path.dropFirst(prefix.count).contains("/")
        }
    }
}

/// Registered profiles loaded, each kept with every file its loading asked
/// for (and what it read, or that it was missing): reused only while each
/// of those files reads the same.
final class LoadMemo: Sendable {
    struct Key: Hashable {
        var text: String
        var name: String
        var parameters: ParameterValues
    }

    struct Read: Sendable {
        var path: String
        var text: String?
    }

    private struct Entry: Sendable {
        var reads: [Read]
        var loading: Planner.Loading
    }

    static let capacity = 256
    private let entries = Mutex<[Key: Entry]>([:])

    func lookup(_ key: Key) -> Planner.Loading? {
        guard let entry = entries.withLock({ $0[key] }) else { return nil }
        guard entry.reads.allSatisfy({ HostConfiguration.readTextFile($0.path) == $0.text }) else { return nil }
        return entry.loading
    }

    func keep(_ key: Key, reads: [Read], loading: Planner.Loading) {
        entries.withLock {
            if $0.count >= Self.capacity { $0.removeAll() }
            $0[key] = Entry(reads: reads, loading: loading)
        }
    }
}
