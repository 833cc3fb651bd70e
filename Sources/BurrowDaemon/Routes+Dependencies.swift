import BurrowAPI
import Hummingbird

/// Dependency tracking (`metadata.dependencies`): what a registration
/// depends on must be registered, satisfy its requirement and not lead back
/// to it; a version others depend on is not removed or disabled from under
/// them unless the request says `?force=true`.
extension API {
    /// What is wrong with a registration's dependencies, as validation findings.
    func dependencyFindings(_ r: ToolRegistration) throws(DaemonError) -> [ValidationFinding] {
        var findings: [ValidationFinding] = []
        func finding(_ keyPath: String, _ message: String) { findings.append(ValidationFinding(severity: "error", file: r.id, keyPath: keyPath, message: message)) }
        for (i, d) in r.metadata.dependencies.enumerated() {
            let path = "metadata.dependencies[\(i)]"
            guard let requirement = VersionRequirement(d.versionRequirement) else {
                finding(path + ".versionRequirement", "'\(d.versionRequirement)' is not a version requirement (*, 1.2.3, >=1.2, <2, ^1.2.3, ~1.2, joined by spaces or ||)")
                continue
            }
            guard d.id != r.id else {
                finding(path, "a tool cannot depend on itself")
                continue
            }
            let versions = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.versions(d.id) }
            guard !versions.isEmpty else {
                finding(path, "no tool \(d.id) is registered (register it first)")
                continue
            }
            let usable = versions.filter { $0.registration.status != .disabled }.map(\.registration.metadata.version)
            if !usable.contains(where: requirement.satisfied(by:)) {
                finding(path, "no enabled version of \(d.id) satisfies \(requirement) (enabled: \(usable.isEmpty ? "none" : usable.joined(separator: ", ")))")
            }
        }
        if let cycle = try cycle(from: r) { finding("metadata.dependencies", "a dependency cycle: \(cycle.joined(separator: " → "))") }
        return findings
    }

    /// A path of dependencies from `r` back to it, if there is one (every
    /// stored version's dependencies count: any of them may be chosen).
    private func cycle(from r: ToolRegistration) throws(DaemonError) -> [String]? {
        var visited: Set = [r.id]
        func edges(_ id: String) throws(DaemonError) -> [String] {
            if id == r.id { return r.metadata.dependencies.map(\.id) }
            let versions = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.versions(id) }
            var seen = Set<String>()
            return versions.flatMap { $0.registration.metadata.dependencies.map(\.id) }.filter { seen.insert($0).inserted }
        }
        var stack: [(id: String, path: [String])] = [(r.id, [r.id])]
        while let (id, path) = stack.popLast() {
            for next in try edges(id) {
                if next == r.id { return path + [next] }
                if visited.insert(next).inserted { stack.append((next, path + [next])) }
            }
        }
        return nil
    }

    /// Versions of other tools that depend on `id`.
    func dependents(of id: String) throws(DaemonError) -> [ToolDependent] {
        let records = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.dependents(of: id) }
        return records.flatMap { record in
            record.registration.metadata.dependencies.filter { $0.id == id }.map {
                ToolDependent(id: record.registration.id, version: record.registration.metadata.version, versionRequirement: $0.versionRequirement)
            }
        }.sorted { ($0.id, $0.version) < ($1.id, $1.version) }
    }

    /// The dependents of `id` that no enabled version of `remaining` would satisfy.
    func brokenDependents(of id: String, remaining: [ToolRecord]) throws(DaemonError) -> [String] {
        let usable = remaining.filter { $0.registration.status != .disabled }.map(\.registration.metadata.version)
        return try dependents(of: id).filter { d in
            guard let requirement = VersionRequirement(d.versionRequirement) else { return true }
            return !usable.contains(where: requirement.satisfied(by:))
        }.map { "\($0.id) \($0.version) (needs \(id) \($0.versionRequirement))" }
    }

    /// Refuses (409) a change that would leave `broken` without a version
    /// they depend on, unless the request says `?force=true`; returns
    /// what a forced change breaks.
    func guardDependents(_ broken: [String], _ request: Request, _ what: String) throws(DaemonError) -> [String] {
        guard !broken.isEmpty else { return [] }
        guard request.uri.queryParameters.get("force") == "true" else {
            throw DaemonError(.hasDependents, "\(what) would leave \(broken.joined(separator: ", ")) without a version they depend on; ?force=true does it anyway")
        }
        return broken
    }
}
