import BurrowSystem
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// The verified copies of signed manifests' files: what a tool with a
/// manifest runs. `trees/<manifest digest>/` mirrors the host paths of
/// everything the manifest lists (the file `/opt/t/bin/tool` is at
/// `trees/<digest>/opt/t/bin/tool`): each file written from the very bytes
/// that were hashed, as they were read through one descriptor, so nothing
/// done to the host's file afterwards (rewritten in place, replaced,
/// renamed over) reaches a sandbox, which binds the copy read-only at the
/// listed path. The store, its trees and every file belong to root and
/// nobody else may write them, and each tree's top directory is root's
/// alone (0700); a tree is complete once it has its name (built under a
/// temporary one, then renamed).
package struct VerifiedStore: Sendable {
    package var directory: String

    package init(directory: String) {
        self.directory = directory
    }

    var trees: String { directory + "/trees" }

    /// The tree of the manifest with `digest` (64 hex digits), when it was
    /// built and is still root's alone; nil otherwise. One lstat.
    package func tree(_ digest: String) -> String? {
        let path = trees + "/" + digest
        return Self.isRootsAlone(path) && Self.onlyRootCanReplace(trees) ? path : nil
    }

    /// Sets aside whatever is at the tree's name and removes it (only root
    /// can have put it there; a tree found unusable is built again).
    /// Unless `always`, a tree that is root's alone is kept (another
    /// builder may have just made it).
    package func discard(_ digest: String, always: Bool = false) {
        let path = trees + "/" + digest
        var st = stat()
        guard lstat(path, &st) == 0, always || !Self.isRootsAlone(path) else { return }
        // Renamed aside, never removed here: a running sandbox may show it.
        _ = rename(path, trees + "/.discarded-\(digest)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    }

    /// Builds the tree of `manifest` (whose bytes have `digest`): every
    /// listed file read, hashed and copied through one descriptor, every
    /// link recreated, each root made. A file that differs from the
    /// manifest (its digest, size or mode), or cannot be read, fails it:
    /// nothing is kept.
    package func build(_ manifest: ToolManifest, digest: String) throws(ManifestFiles.Problem) -> String {
        guard geteuid() == 0 else {
            throw ManifestFiles.Problem(directory, "only root keeps verified copies of a signed tool's files: run it as root or through burrowd")
        }
        var storeDirectories = Set<String>()
        try Self.makeDirectories("", trees, made: &storeDirectories)
        guard Self.onlyRootCanReplace(trees) else {
            throw ManifestFiles.Problem(trees, "it and every directory above it must belong to root, and nobody else may write them (unless sticky, as /tmp)")
        }
        let final = trees + "/" + digest
        if let existing = tree(digest) { return existing }
        let building = trees + "/.building-\(digest)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard mkdir(building, 0o700) == 0 else { throw ManifestFiles.Problem(building, "cannot be made: \(String(cString: strerror(errno)))") }
        var kept = false
        defer { if !kept { try? FileManager.default.removeItem(atPath: building) } }

        var made = Set<String>()
        for root in manifest.roots { try Self.makeDirectories(building, root, made: &made) }
        var stamps = ""
        for listed in manifest.files {
            try Self.makeDirectories(building, parent(of: listed.path), made: &made)
            let stamp = try Self.copy(listed, to: building + listed.path)
            stamps += stamp.record + "\n"
        }
        // What each host file was when it was hashed: `drift` rehashes only the ones that changed since.
        let stampsFile = open(building + "/" + Self.stampsName, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard stampsFile >= 0 else { throw ManifestFiles.Problem(building, "cannot keep the files' stamps: \(String(cString: strerror(errno)))") }
        let written = Array(stamps.utf8).withUnsafeBytes { FileIO.writeAll(stampsFile, $0) }
        close(stampsFile)
        guard written else { throw ManifestFiles.Problem(building, "cannot keep the files' stamps: \(String(cString: strerror(errno)))") }
        // Links as the manifest has them (nothing lies beneath one: the
        // manifest refuses that), once the host's agree.
        if let problem = Self.linkDifference(manifest) { throw problem }
        for link in manifest.links {
            try Self.makeDirectories(building, parent(of: link.path), made: &made)
            guard symlink(link.target, building + link.path) == 0 else {
                throw ManifestFiles.Problem(link.path, "cannot be recreated: \(String(cString: strerror(errno)))")
            }
        }

        // The tree's top stays root's alone (0700): no one on the host reaches
        // a copy through the store; a sandbox gets a bind of what it may see.
        if rename(building, final) != 0 {
            // Another builder finished first: its tree is the same bytes.
            guard errno == EEXIST || errno == ENOTEMPTY, let existing = tree(digest) else {
                throw ManifestFiles.Problem(final, "cannot be made: \(String(cString: strerror(errno)))")
            }
            return existing
        }
        kept = true
        return final
    }

    /// The name, in a tree's top directory (never bound into a sandbox), of
    /// the stamps of the host's files as they were hashed: one line per
    /// listed file, in the manifest's order.
    static let stampsName = ".burrow-stamps"

    /// The first listed link the host has otherwise.
    static func linkDifference(_ manifest: ToolManifest) -> ManifestFiles.Problem? {
        for link in manifest.links {
            guard let target = ManifestFiles.readLink(link.path) else {
                return ManifestFiles.Problem(link.path, "not a symlink (the manifest lists one to \(link.target))", differs: true)
            }
            if Array(target.utf8) != Array(link.target.utf8) {
                return ManifestFiles.Problem(link.path, "points to \(target), the manifest says \(link.target)", differs: true)
            }
        }
        return nil
    }

    /// The first way the host's files differ from the manifest whose tree
    /// is `tree`: a file whose stamp moved since it was copied is hashed
    /// again (a `touch` alone is no difference), one missing or replaced by
    /// other bytes is. Nil: every listed file still holds what was signed.
    /// (The sandbox runs the copies either way; this tells the operator.)
    package func drift(_ manifest: ToolManifest, tree: String) -> ManifestFiles.Problem? {
        guard let text = try? FileIO.read(tree + "/" + Self.stampsName, limit: 64 << 20) else {
            return ManifestFiles.Problem(tree, "its stamps cannot be read")
        }
        let lines = text.split(separator: "\n")
        guard lines.count == manifest.files.count else { return ManifestFiles.Problem(tree, "its stamps do not match its manifest") }
        for (listed, line) in zip(manifest.files, lines) {
            var st = stat()
            guard let kept = FileStamp(record: line) else { return ManifestFiles.Problem(tree, "its stamps are not this Burrow's") }
            if lstat(listed.path, &st) == 0, st.st_mode & S_IFMT == S_IFREG, FileStamp(st) == kept { continue }
            switch ManifestFiles.digest(listed.path, limit: listed.size) {
            case .failure(let problem):
                return problem
            case .success(let found):
                if Array(found.sha256.utf8) != Array(listed.sha256.utf8) || found.size != listed.size {
                    return ManifestFiles.Problem(listed.path, "sha256 \(found.sha256), the manifest says \(listed.sha256)", differs: true)
                }
                if found.mode != listed.mode {
                    return ManifestFiles.Problem(listed.path, "mode \(String(found.mode, radix: 8)), the manifest says \(String(listed.mode, radix: 8))", differs: true)
                }
            }
        }
        return Self.linkDifference(manifest)
    }

    /// Copies `listed` from the host into `destination`, writing exactly
    /// the bytes hashed, and checks them against the manifest.
    static func copy(_ listed: ToolManifest.File, to destination: String) throws(ManifestFiles.Problem) -> FileStamp {
        let out = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard out >= 0 else { throw ManifestFiles.Problem(listed.path, "its copy cannot be made: \(String(cString: strerror(errno)))") }
        defer { close(out) }
        let found: ToolManifest.File
        var hashed = stat()
        switch ManifestFiles.digest(listed.path, limit: listed.size, copy: out, opened: { hashed = $0 }) {
        case .failure(let problem): throw problem
        case .success(let file): found = file
        }
        guard Array(found.sha256.utf8) == Array(listed.sha256.utf8), found.size == listed.size else {
            throw ManifestFiles.Problem(listed.path, "sha256 \(found.sha256), the manifest says \(listed.sha256)", differs: true)
        }
        guard found.mode == listed.mode else {
            throw ManifestFiles.Problem(listed.path, "mode \(String(found.mode, radix: 8)), the manifest says \(String(listed.mode, radix: 8))", differs: true)
        }
        // Readable (the tree's top keeps everyone but root out; a caller's
        // right to read the host's file is checked before its run), executable
        // as the host's; never writable, set-id or sticky.
        guard fchmod(out, mode_t((listed.mode & 0o555) | 0o444)) == 0 else {
            throw ManifestFiles.Problem(listed.path, "its copy cannot be made read-only: \(String(cString: strerror(errno)))")
        }
        // The host file's times (a .pyc is valid only for its source's
        // modification time); not part of what was verified.
        let times = [hashed.st_atim, hashed.st_mtim]
        _ = times.withUnsafeBufferPointer { futimens(out, $0.baseAddress) }
        return FileStamp(hashed)
    }

    /// Makes `path` (absolute, host-side) and its parents beneath `base`,
    /// each 0755 whatever the umask; `made` gets the host paths of those made.
    static func makeDirectories(_ base: String, _ path: String, made: inout Set<String>) throws(ManifestFiles.Problem) {
        var current = base
        var host = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            host += "/" + component
            if mkdir(current, 0o755) == 0 {
                chmod(current, 0o755)
                made.insert(host)
            } else if errno != EEXIST {
                throw ManifestFiles.Problem(path, "its directory cannot be made: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Whether only root can change what `path` is: it (a directory that
    /// belongs to root, writable by nobody else) and each directory above it
    /// belong to root, and any of those others may write is sticky (so
    /// nobody else can rename or remove root's entries in it).
    static func onlyRootCanReplace(_ path: String) -> Bool {
        guard isRootsAlone(path) else { return false }
        var current = parent(of: path)
        while true {
            var st = stat()
            guard lstat(current, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, st.st_uid == 0, st.st_mode & 0o022 == 0 || st.st_mode & S_ISVTX != 0 else { return false }
            if current == "/" { return true }
            current = parent(of: current)
        }
    }

    /// A directory (not a symlink) that belongs to root and that neither its group nor others may write.
    static func isRootsAlone(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR && st.st_uid == 0 && st.st_mode & 0o022 == 0
    }
}

private func parent(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
    return String(path[..<slash])
}
