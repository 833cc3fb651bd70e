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
