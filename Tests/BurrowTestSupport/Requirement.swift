public import Testing
public import BurrowSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A real requirement of a test (root, a kernel feature). Unmet requirements
/// skip the test with the reason, or fail it when BURROW_TEST_STRICT=1 (CI).
public struct Requirement: Sendable, CustomStringConvertible {
    public var description: String
    /// nil when met, else why not.
    public var whyUnmet: String?

    public var isMet: Bool { whyUnmet == nil }

    /// Whether unmet requirements fail instead of skipping.
    public static var strict: Bool { getenv("BURROW_TEST_STRICT").map { String(cString: $0) == "1" } ?? false }

    /// Root with the initial user namespace's full uid_map (not root in some user namespace).
    public static var rootInInitialUserNamespace: Requirement {
        let facts = host
        return Requirement(
            description: "root in the initial user namespace",
            whyUnmet: facts.rootInInitialUserNamespace ? nil : "euid \(facts.euid) or a non-initial user namespace")
    }

    /// seccomp filters can be compiled and loaded.
    public static var seccomp: Requirement {
        Requirement(description: "seccomp", whyUnmet: host.seccompFilter.available ? nil : host.seccompFilter.detail)
    }

    /// Every namespace a container-level sandbox uses, created together.
    public static var sandboxNamespaces: Requirement {
        Requirement(description: "sandbox namespaces", whyUnmet: host.namespacesTogether.available ? nil : host.namespacesTogether.detail)
    }

    /// Landlock is available (any ABI).
    public static var landlock: Requirement {
        Requirement(description: "Landlock", whyUnmet: host.landlock.available ? nil : host.landlock.detail)
    }

    /// The cgroup backend `burrow run` enforces limits with on this build (v1 on hybrid hosts).
    public static var cgroupV1Limits: Requirement {
        let backend = host.cgroupBackend
        return Requirement(
            description: "cgroup v1 memory, pids, cpuacct and freezer beneath this process's cgroups",
            whyUnmet: backend?.version == 1 && ["memory", "pids", "cpuacct", "freezer"].allSatisfy { backend?.controllers.contains($0) ?? false }
                ? nil : "cgroup backend here: \(backend.map { "v\($0.version) \($0.controllers)" } ?? "none")")
    }

    /// An executable installed by Scripts/install-tools.sh.
    public static func installed(_ path: String) -> Requirement {
        Requirement(description: path, whyUnmet: access(path, X_OK) == 0 ? nil : "not installed (run Scripts/install-tools.sh)")
    }

    /// What `burrow run` needs to sandbox a tool here.
    public static var sandbox: [Requirement] { [.rootInInitialUserNamespace, .sandboxNamespaces, .landlock, .seccomp, .cgroupV1Limits] }

    /// Throws (in strict mode, records a failure) when unmet.
    public func check(sourceLocation: SourceLocation = #_sourceLocation) throws {
        guard let why = whyUnmet else { return }
        Issue.record("requirement unmet: \(description): \(why)", sourceLocation: sourceLocation)
        throw RequirementUnmet(description: "\(description): \(why)")
    }

    /// The host probe, made once per test process.
    public static let host: HostFacts = HostFacts.probe()
}

public struct RequirementUnmet: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test only when `requirement` is met, or always in strict mode
    /// (where the test's own `check()` then fails loudly).
    public static func requires(_ requirement: Requirement) -> Self {
        .enabled(
            if: requirement.isMet || Requirement.strict,
            Comment(rawValue: "requires \(requirement): \(requirement.whyUnmet ?? "met")"))
    }
}
