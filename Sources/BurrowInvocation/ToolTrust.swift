import BurrowAudit
import BurrowCrypto
import BurrowManifest
package import BurrowPolicy
import BurrowProfile
package import BurrowSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where a run's signed manifest comes from.
package enum ManifestSource: Sendable, Equatable {
    /// A file, its signature beside it (`FILE.sig`): `--manifest`, or the
    /// profile's `[tool] manifest`.
    case file(String)
    /// Bytes a request or a registration carried; `label` names them.
    case bytes(manifest: [UInt8], signature: [UInt8], label: String)

    var label: String {
        switch self {
        case .file(let path): path
        case .bytes(_, _, let label): label
        }
    }
}

extension Planner {
    /// A manifest that verified, with what the run's checks need.
    package struct VerifiedManifest: Sendable {
        var manifest: ToolManifest
        var verified: ManifestSignature.Verified
        /// Hex SHA-256 of its bytes.
        var digest: String
    }

    /// The run's trust, decided before its plan is compiled: the manifest
    /// (the request's, else the profile's `[tool] manifest`) verified
    /// against `[security] cert_store_path`, checked against this profile
    /// and command, and the level it gives held against `require_signatures`,
    /// `min_trust_level`, the `[trust.<level>]` ceilings and sandbox level none.
    /// - Parameter readingAs: a manifest file is read with this caller's rights.
    package func decideTrust(
        _ loaded: Loaded, manifest requested: ManifestSource?, argv: [String], readingAs caller: CallerCredentials?, now: Int64
    ) throws(PlanError) -> (TrustPlan, VerifiedManifest?) {
        let profile = loaded.effective.profile
        let claimed = profile.tool.trustLevel
        let security = policy.security
        var source = requested
        if source == nil, let named = profile.tool.manifest {
            // Only a profile file names one: burrowd reads no path a
            // registration or a request's document names.
            guard let file = loaded.files.first, file.hasPrefix("/") else {
                throw PlanError(
                    description: "[tool] manifest names a file, and this profile was registered or sent, not read from a file: send the manifest with the request (--manifest)",
                    kind: .trust)
            }
            source = .file(named.hasPrefix("/") ? named : Self.directory(of: file) + "/" + named)
        }
        guard let source else {
            if security.requireSignatures {
                throw PlanError(
                    description:
                        "the host policy runs signed tools only ([security] require_signatures) and \(profile.tool.id) has no manifest: give one (--manifest, or [tool] manifest in the profile)",
                    kind: .trust)
            }
            let plan = TrustPlan(level: .untrusted, claimed: claimed, reason: "unsigned: no manifest, so untrusted whatever the profile claims")
            try checkLevel(plan, profile: profile)
            return (plan, nil)
        }
        let found = try verifiedManifest(source, readingAs: caller, now: now)
        // A caller other than burrowd's own learns that a file differs, not
        // the digest of bytes root read for it.
        func shown(_ problem: ManifestFiles.Problem) -> String {
            caller != nil && problem.differs ? "\(problem.path): not as the signed manifest lists it" : problem.description
        }
        let manifest = found.manifest
        guard manifest.tool.id == profile.tool.id, manifest.tool.version == profile.tool.version else {
            throw PlanError(
                description: "\(source.label) is the manifest of \(manifest.tool.id) \(manifest.tool.version), not of \(profile.tool.id) \(profile.tool.version)", kind: .trust)
        }
        guard let digest = loaded.digest, manifest.profile == digest else {
            throw PlanError(
                description: "\(source.label) was signed for another profile (\(manifest.profile)); this one is \(loaded.digest ?? "unknown"): make and sign a manifest for it",
                kind: .trust)
        }
        guard argv.starts(with: manifest.command) else {
            throw PlanError(
                description: "\(source.label) signs the command \(manifest.command), and this run is \(argv): a signed tool runs its signed command (arguments may follow it)",
                kind: .trust)
        }
        let granted = TrustLevel(rawValue: found.verified.granted) ?? .untrusted
        let level = min(claimed, TrustLevel(rawValue: found.verified.trustLevel) ?? .untrusted)
        var plan = TrustPlan(
            level: level, claimed: claimed,
            manifest: TrustPlan.Manifest(
                source: source.label, digest: "sha256:" + found.digest, signer: found.verified.signer, granted: granted, expires: manifest.expires, verifiedTree: nil),
            reason:
                "signed by \(found.verified.signer), who may grant \(granted.rawValue)\(found.verified.storeCeiling.map { " (held to \($0.level) by \($0.file))" } ?? ""); the manifest claims \(manifest.trustLevel), the profile \(claimed.rawValue)"
        )
        try checkLevel(plan, profile: profile)
        if profile.sandboxLevel != .none {
            let store = VerifiedStore(directory: security.verifiedStore)
            // Root copies what the manifest lists: for a caller, only what
            // it could read itself (root must not read for it what it may not).
            if let caller, !trustMemo.recentlyReadable(found.digest, by: caller, now: now) {
                if let unreadable = Self.unreadable(manifest, as: caller) {
                    throw PlanError(description: "\(unreadable) cannot be read with \(caller)'s rights (the signed manifest of \(profile.tool.id) lists it)", kind: .trust)
                }
                trustMemo.markReadable(found.digest, by: caller, now: now)
            }
            var tree = store.tree(found.digest)
            // The copies run whatever happened on the host since; a change
            // there is still refused, and reported. Rechecked at most every
            // few seconds (burrowd): the run is safe either way.
            if let existing = tree, !trustMemo.recentlyClean(existing, now: now) {
                if let problem = store.drift(manifest, tree: existing) {
                    guard !problem.differs else {
                        throw PlanError(description: "\(shown(problem)) (the signed manifest of \(profile.tool.id), \(source.label))", kind: .mismatch(path: problem.path))
                    }
                    // Its stamps are unusable: it is built again.
                    store.discard(found.digest, always: true)
                    tree = nil
                } else {
                    trustMemo.markClean(existing, now: now)
                }
            }
            if tree == nil {
                // Anything in its place (half removed, not root's alone) is set aside first.
                store.discard(found.digest)
                do {
                    tree = try store.build(manifest, digest: found.digest)
                } catch {
                    throw PlanError(
                        description: "\(shown(error)) (the signed manifest of \(profile.tool.id), \(source.label))", kind: error.differs ? .mismatch(path: error.path) : .trust)
                }
            }
            plan.manifest?.verifiedTree = tree
        } else {
            // No mount namespace to show copies in: the host's files are
            // checked at each run, just before it (no copy closes the
            // window between this check and execve).
            if let problem = ManifestFiles.verify(manifest).first {
                throw PlanError(description: "\(shown(problem)) (the signed manifest of \(profile.tool.id), \(source.label))", kind: .mismatch(path: problem.path))
            }
        }
        return (plan, found)
    }

    /// `min_trust_level`, sandbox level none, and the policy's ceiling for the level.
    private func checkLevel(_ trust: TrustPlan, profile: SecurityProfile) throws(PlanError) {
        let level = trust.level
        if level < policy.security.minTrustLevel {
            throw PlanError(
                description:
                    "\(profile.tool.id) runs at trust level \(level.rawValue) (\(trust.reason)), below the host policy's minimum \(policy.security.minTrustLevel.rawValue) ([security] min_trust_level)",
                kind: .trust)
        }
        if profile.sandboxLevel == .none && level != .system {
            throw PlanError(
                description: "sandbox_level 'none' is only for tools a signer vouches for at trust level system; \(profile.tool.id) runs at \(level.rawValue) (\(trust.reason))", kind: .trust)
        }
        guard let ceiling = policy.trust[level.rawValue] else { return }
        if profile.networkAccess > ceiling.networkPolicy {
            throw PlanError(
                description:
                    "\(profile.tool.id) runs at trust level \(level.rawValue) (\(trust.reason)), whose tools may have network access \(ceiling.networkPolicy.rawValue) at most ([trust.\(level.rawValue)] network_policy); its profile asks for \(profile.networkAccess.rawValue)",
                kind: .trust)
        }
        if !ceiling.allowWrite, let write = profile.filesystem.allWrites(profile.permissions).first {
            throw PlanError(
                description:
                    "\(profile.tool.id) runs at trust level \(level.rawValue) (\(trust.reason)), whose tools may not write ([trust.\(level.rawValue)] allow_write = false); its profile grants writing \(write.path)",
                kind: .trust)
        }
    }

    /// The manifest verified: from the memo while its files, its signature
    /// and the certificate store read the same (and for a minute at most,
    /// so a certificate's or CRL's time running out is seen), else read and
    /// verified afresh.
    private func verifiedManifest(_ source: ManifestSource, readingAs caller: CallerCredentials?, now: Int64) throws(PlanError) -> VerifiedManifest {
        let storePath = policy.security.certStorePath
        let key = TrustMemo.Key(source: source, store: storePath)
        if caller == nil, let kept = trustMemo.lookup(key, now: now) {
            try Self.checkExpiry(kept, source: source, now: now)
            return kept
        }
        var watched: [(String, Bool)] = [(storePath, true)]
        let bytes: (manifest: [UInt8], signature: [UInt8])
        switch source {
        case .bytes(let manifest, let signature, _):
            bytes = (manifest, signature)
        case .file(let path):
            watched += [(path, true), (path + ".sig", true)]
            func read() throws(PlanError) -> ([UInt8], [UInt8]) { (try Self.readManifestFile(path), try Self.readManifestFile(path + ".sig")) }
            if let caller {
                do {
                    bytes = try CallerAccess.asCaller(caller, read).get()
                } catch let error as PlanError {
                    throw error
                } catch {
                    throw PlanError(description: "cannot read \(path) with \(caller)'s rights: \(error)", kind: .trust)
                }
            } else {
                bytes = try read()
            }
        }
        // Stamped after reading: a change racing a read is recent, and the
        // memo keeps nothing changed within its racy window.
        let store: TrustStore
        do {
            store = try TrustStore.load(storePath)
        } catch {
            throw PlanError(description: "\(source.label): \(error)", kind: .trust)
        }
        watched += store.files.map { ($0, true) }
        let verified: (ToolManifest, ManifestSignature.Verified)
        do {
            verified = try ManifestSignature.verify(manifest: bytes.manifest, signatureFile: bytes.signature, store: store, now: now / 1_000_000)
        } catch {
            throw PlanError(description: "\(source.label): \(error)", kind: .trust)
        }
        let found = VerifiedManifest(manifest: verified.0, verified: verified.1, digest: Hex.encode(SHA256.hash(bytes.manifest)))
        if caller == nil { trustMemo.keep(key, found, watching: watched, now: now) }
        return found
    }

    /// The first listed file `caller` cannot open for reading (nil: none).
    static func unreadable(_ manifest: ToolManifest, as caller: CallerCredentials) -> String? {
        let outcome = try? CallerAccess.asCaller(caller) { () -> String? in
            for listed in manifest.files {
                let fd = open(listed.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
                guard fd >= 0 else { return listed.path }
                close(fd)
            }
            return nil
        }
        // Without the caller's identity nothing is known to be readable.
        guard case .success(let first) = outcome else { return manifest.files.first?.path ?? "the manifest's files" }
        return first
    }

    /// Largest manifest or signature file read.
    static let maxManifestBytes = 64 << 20

    /// A regular file, opened without blocking (a FIFO never hangs the
    /// caller) and without following a final symlink, at most `maxManifestBytes`.
    static func readManifestFile(_ path: String) throws(PlanError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw PlanError(description: "\(path) cannot be read: \(String(cString: strerror(errno)))", kind: .trust) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { throw PlanError(description: "\(path) is not a regular file", kind: .trust) }
        guard st.st_size <= maxManifestBytes else { throw PlanError(description: "\(path) is larger than \(maxManifestBytes) bytes", kind: .trust) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw PlanError(description: "\(path) cannot be read: \(String(cString: strerror(errno)))", kind: .trust) }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
            guard bytes.count <= maxManifestBytes else { throw PlanError(description: "\(path) is larger than \(maxManifestBytes) bytes", kind: .trust) }
        }
    }

    static func checkExpiry(_ found: VerifiedManifest, source: ManifestSource, now: Int64) throws(PlanError) {
        guard found.verified.expires > now / 1_000_000 else {
            throw PlanError(description: "\(source.label): the manifest expired at \(found.manifest.expires)", kind: .trust)
        }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }
}

/// Manifests verified, each kept with the stamps of what its verification
/// read (the manifest, its signature, the certificate store and its
/// files): reused only while each reads the same, and for a minute at most.
final class TrustMemo: Sendable {
    struct Key: Hashable {
        var source: String
        /// For bytes: their digest (two requests carrying the same bytes share an entry).
        var content: [UInt8]
        var store: String

        init(source: ManifestSource, store: String) {
            switch source {
            case .file(let path):
                self.source = path
                content = []
            case .bytes(let manifest, let signature, _):
                self.source = ""
                content = SHA256.hash(manifest) + SHA256.hash(signature)
            }
            self.store = store
        }
    }

    private struct Entry: Sendable {
        var found: Planner.VerifiedManifest
        var watched: [(path: String, listed: Bool, stamp: FileStamp)]
        var until: Int64
    }

    static let capacity = 256
    /// Microseconds an entry is reused at most.
    static let lifetime: Int64 = 60_000_000
    /// A file changed less than this long ago (ns) is not trusted to show a second change in its stamp.
    static let racyWindow: Int64 = 2_000_000_000
    private let entries = Mutex<[Key: Entry]>([:])

    /// Microseconds a verified tree's host files are taken as unchanged
    /// after a check found them so: a change there is refused from the
    /// next check on (the sandbox shows the copies meanwhile, so nothing
    /// changed ever runs).
    static let driftInterval: Int64 = 5_000_000
    private let clean = Mutex<[String: Int64]>([:])

    /// Manifests whose every file a caller (uid) could read, when last checked.
    private let readable = Mutex<[String: Int64]>([:])

    /// Keyed by the whole identity (uid, gid, groups): the same uid with
    /// fewer groups may read less.
    private static func readerKey(_ digest: String, _ caller: CallerCredentials) -> String {
        "\(digest) \(caller.uid) \(caller.gid) \(caller.groups.sorted().map(String.init).joined(separator: ","))"
    }

    func recentlyReadable(_ digest: String, by caller: CallerCredentials, now: Int64) -> Bool {
        guard let at = readable.withLock({ $0[Self.readerKey(digest, caller)] }) else { return false }
        return now >= at && now - at < Self.driftInterval
    }

    func markReadable(_ digest: String, by caller: CallerCredentials, now: Int64) {
        readable.withLock {
            if $0.count >= Self.capacity { $0.removeAll() }
            $0[Self.readerKey(digest, caller)] = now
        }
    }

    func recentlyClean(_ tree: String, now: Int64) -> Bool {
        guard let at = clean.withLock({ $0[tree] }) else { return false }
        return now >= at && now - at < Self.driftInterval
    }

    func markClean(_ tree: String, now: Int64) {
        clean.withLock {
            if $0.count >= Self.capacity { $0.removeAll() }
            $0[tree] = now
        }
    }

    func lookup(_ key: Key, now: Int64) -> Planner.VerifiedManifest? {
        guard let entry = entries.withLock({ $0[key] }), now < entry.until else { return nil }
        guard entry.watched.allSatisfy({ FileStamp.of($0.path, listed: $0.listed) == $0.stamp }) else { return nil }
        return entry.found
    }

    func keep(_ key: Key, _ found: Planner.VerifiedManifest, watching paths: [(String, Bool)], now: Int64) {
        let watched = paths.map { (path: $0.0, listed: $0.1, stamp: FileStamp.of($0.0, listed: $0.1)) }
        // A racily recent change, or a path that cannot be stamped, is not kept.
        guard watched.allSatisfy({ $0.stamp.lastChange < now * 1000 - Self.racyWindow && $0.stamp.isPresent }) else { return }
        entries.withLock {
            if $0.count >= Self.capacity { $0.removeAll() }
            $0[key] = Entry(found: found, watched: watched, until: now + Self.lifetime)
        }
    }
}

/// The host as a signed tool's sandbox shows it: a path within one of the
/// manifest's roots, or a file or link it lists, is read from the verified
/// copy; everything else from the host. The plan of a signed tool is
/// compiled against it, so its links, `#!` lines and ELF headers are the
/// signed ones.
///
/// Compiled with a caller's identity (`grantsCheckedAs`), the host is read
/// with it and the copies with root's: the store is root's alone, and the
/// caller's right to each host file was checked before (`decideTrust`).
struct VerifiedFileSystem: FileSystemView {
    let tree: String
    let roots: [String]
    let listed: Set<String>
    let caller: CallerCredentials?
    let host = LiveFileSystem()

    init(tree: String, manifest: ToolManifest, caller: CallerCredentials?) {
        self.tree = tree
        roots = manifest.roots
        listed = Set(manifest.files.map(\.path) + manifest.links.map(\.path))
        self.caller = caller
    }

    /// A path with a `.` or `..` component is never covered: read from the tree, it could climb out of it.
    private func covered(_ path: String) -> Bool {
        guard !path.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) else { return false }
        return listed.contains(path) || roots.contains(where: { path == $0 || path.hasPrefix($0 + "/") })
    }

    private func answer<T>(_ path: String, _ body: (String) -> T) -> T {
        guard covered(path) else { return body(path) }
        guard let caller else { return body(tree + path) }
        return CallerAccess.asRoot(within: caller) { body(tree + path) }
    }

    func kind(_ path: String) -> FileKind? { answer(path) { host.kind($0) } }
    func readLink(_ path: String) -> String? { answer(path) { host.readLink($0) } }
    func list(_ path: String) -> [String]? { answer(path) { host.list($0) } }
    func read(_ path: String, offset: Int, count: Int) -> [UInt8]? { answer(path) { host.read($0, offset: offset, count: count) } }
    func projectQuota(_ path: String) -> HostFacts.Check { host.projectQuota(path) }
    func denied(_ path: String) -> Bool { covered(path) ? false : host.denied(path) }
}
