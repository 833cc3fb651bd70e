package import BurrowProfile

/// What a run's trust rests on: the level it gets, and the signed manifest
/// that gives it (none: `untrusted`, whatever the profile claims).
package struct TrustPlan: Sendable, Codable, Equatable {
    /// The level the run gets: the lowest of the profile's claim and what
    /// its manifest's signer may grant; `untrusted` without a manifest.
    package var level: TrustLevel
    /// What the profile's `[tool] trust_level` claims.
    package var claimed: TrustLevel
    package var manifest: Manifest?
    /// In words: why the run has this level.
    package var reason: String

    package struct Manifest: Sendable, Codable, Equatable {
        /// Where it was read (a file, or what a registration or request carried).
        package var source: String
        /// `sha256:` over its bytes: names its verified copy.
        package var digest: String
        /// The signing certificate's subject.
        package var signer: String
        /// The highest level the signer's chain may grant.
        package var granted: TrustLevel
        /// RFC 3339: the run is refused from then on.
        package var expires: String
        /// Where the manifest's files are, as hashed: the sandbox binds
        /// these copies at the listed paths (nil: sandbox level none, whose
        /// files are checked on the host at each run).
        package var verifiedTree: String?

        package init(source: String, digest: String, signer: String, granted: TrustLevel, expires: String, verifiedTree: String?) {
            self.source = source
            self.digest = digest
            self.signer = signer
            self.granted = granted
            self.expires = expires
            self.verifiedTree = verifiedTree
        }
    }

    package init(level: TrustLevel, claimed: TrustLevel, manifest: Manifest? = nil, reason: String) {
        self.level = level
        self.claimed = claimed
        self.manifest = manifest
        self.reason = reason
    }

    /// A plan compiled before its trust was decided (nothing is granted).
    package static let undecided = TrustPlan(level: .untrusted, claimed: .untrusted, reason: "not decided")
}

extension [MountEntry] {
    /// The mounts with a manifest's verified copies in place of the host's
    /// files: every bind at or beneath a root the manifest covers, or of a
    /// file it lists, takes its source from `tree` (which mirrors host
    /// paths); a root or listed file that a directory bind shows gets a bind
    /// of its own, on top, from the copy. What the manifest does not list
    /// is then absent beneath a root.
    /// - Throws: `PlanError` for a writable bind at or beneath a verified
    ///   path (the copy is read-only), and for a granted path beneath a root
    ///   that the manifest does not list.
    /// A symlink the plan creates at a verified path must be the manifest's.
    package func showingVerified(
        tree: String, roots: [String], files: [String], links: [String: String], exists: (String) -> Bool
    ) throws(PlanError) -> [MountEntry] {
        let outside = files.filter { file in !roots.contains { isPath(file, within: $0) } }
        let verified = roots + outside
        var mounts = self
        var shown = Set<String>()
        for entry in mounts where entry.kind == .symlink && (links[entry.target] != nil || roots.contains { isPath(entry.target, within: $0) }) {
            guard let target = links[entry.target], target == entry.source else {
                throw PlanError(description: "the plan would make \(entry.target) a link to \(entry.source ?? "nothing"), which the signed manifest does not list")
            }
        }
        for i in mounts.indices where mounts[i].kind == .bind {
            let target = mounts[i].target
            guard let path = verified.first(where: { isPath(target, within: $0) }) else { continue }
            guard mounts[i].options.readOnly == true else {
                throw PlanError(description: "\(target) is granted for writing, but it is part of the signed manifest's files (\(path)): a verified tool's files are read-only")
            }
            guard exists(tree + target) else {
                throw PlanError(description: "\(target) is granted, but the signed manifest does not list it (it covers \(path))")
            }
            mounts[i].source = tree + target
            mounts[i].verifiedFrom = target
            // The copies are root's: nothing of the caller's to map.
            mounts[i].options.idmap = false
            mounts[i].reason += ", from the verified copy"
            if target == path { shown.insert(path) }
        }
        for path in verified where !shown.contains(path) {
            // Only what the sandbox would show from the host: a bind above
            // it, and no mask (a blocked path) at or above it.
            guard let above = mounts.last(where: { $0.kind == .bind && $0.target != path && isPath(path, within: $0.target) }) else { continue }
            if mounts.contains(where: { $0.kind == .mask && isPath(path, within: $0.target) }) { continue }
            var options = above.options
            options.readOnly = true
            options.idmap = false
            options.recursive = true
            var entry = MountEntry(kind: .bind, source: tree + path, target: path, options: options, reason: "the signed manifest's verified copy")
            entry.verifiedFrom = path
            // Parents before children: after every mount no deeper than it.
            let depth = componentCount(path)
            let end = mounts.last?.kind == .remount ? mounts.count - 1 : mounts.count
            let at = mounts[1..<end].firstIndex { componentCount($0.target) > depth } ?? end
            mounts.insert(entry, at: at)
        }
        return mounts
    }
}
