package import BurrowSystem
package import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real requirement of a test (root, a kernel feature). Unmet requirements
/// skip the test with the reason, or fail it when BURROW_TEST_STRICT=1 (CI).
package struct Requirement: Sendable, CustomStringConvertible {
    package var description: String
    /// nil when met, else why not.
    package var whyUnmet: String?

    package var isMet: Bool { whyUnmet == nil }

    /// Whether unmet requirements fail instead of skipping.
    package static var strict: Bool { getenv("BURROW_TEST_STRICT").map { String(cString: $0) == "1" } ?? false }

    /// Root with the initial user namespace's full uid_map (not root in some user namespace).
    package static var rootInInitialUserNamespace: Requirement {
        let facts = host
        return Requirement(
            description: "root in the initial user namespace",
            whyUnmet: facts.rootInInitialUserNamespace ? nil : "euid \(facts.euid) or a non-initial user namespace")
    }

    /// seccomp filters can be compiled and loaded.
    package static var seccomp: Requirement {
        Requirement(description: "seccomp", whyUnmet: host.seccompFilter.available ? nil : host.seccompFilter.detail)
    }

    /// Every namespace a container-level sandbox uses, created together.
    package static var sandboxNamespaces: Requirement {
        Requirement(description: "sandbox namespaces", whyUnmet: host.namespacesTogether.available ? nil : host.namespacesTogether.detail)
    }

    /// Landlock is available (any ABI).
    package static var landlock: Requirement {
        Requirement(description: "Landlock", whyUnmet: host.landlock.available ? nil : host.landlock.detail)
    }

    /// A cgroup backend `burrow run` enforces every limit with: v2 (memory,
    /// pids, cpu, cgroup.kill) or, on hybrid hosts, v1 (memory, pids, cpu,
    /// cpuacct, freezer) beneath this process's cgroups.
    package static var cgroupLimits: Requirement {
        let backend = host.cgroupBackend
        let needed = backend?.version == 2 ? ["memory", "pids", "cpu"] : ["memory", "pids", "cpu", "cpuacct", "freezer"]
        var why: String? = nil
        if let backend, needed.allSatisfy(backend.controllers.contains) {
            if backend.version == 2 && !host.cgroupKill.available { why = "cgroup.kill: \(host.cgroupKill.detail)" }
        } else {
            why = "cgroup backend here: \(backend.map { "v\($0.version) \($0.controllers)" } ?? "none"), needs \(needed)"
        }
        return Requirement(description: "cgroup limits (v2, or v1 on hybrid hosts)", whyUnmet: why)
    }

    /// The cgroup v2 backend (the VM suite: Scripts/vm-test.sh).
    package static var cgroupV2: Requirement {
        Requirement(
            description: "cgroup v2 limits",
            whyUnmet: host.cgroupBackend?.version == 2 ? nil : "this host's backend is \(host.cgroupBackend.map { "v\($0.version)" } ?? "none") (run Scripts/vm-test.sh)")
    }

    /// An executable installed by Scripts/install-tools.sh.
    package static func installed(_ path: String) -> Requirement {
        Requirement(description: path, whyUnmet: access(path, X_OK) == 0 ? nil : "not installed (run Scripts/install-tools.sh)")
    }

    /// What `burrow run` needs to sandbox a tool here.
    package static var sandbox: [Requirement] { [.rootInInitialUserNamespace, .sandboxNamespaces, .landlock, .seccomp, .cgroupLimits] }

    /// Throws (in strict mode, records a failure) when unmet.
    package func check(sourceLocation: SourceLocation = #_sourceLocation) throws {
        guard let why = whyUnmet else { return }
        Issue.record("requirement unmet: \(description): \(why)", sourceLocation: sourceLocation)
        throw RequirementUnmet(description: "\(description): \(why)")
    }

    /// The host probe, made once per test process.
    package static let host: HostFacts = HostFacts.probe()
}

package struct RequirementUnmet: Error, CustomStringConvertible {
    package var description: String
    package init(description: String) { self.description = description }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test only when `requirement` is met, or always in strict mode
    /// (where the test's own `check()` then fails loudly).
    package static func requires(_ requirement: Requirement) -> Self {
        .enabled(
            if: requirement.isMet || Requirement.strict,
            Comment(rawValue: "requires \(requirement): \(requirement.whyUnmet ?? "met")"))
    }
}
