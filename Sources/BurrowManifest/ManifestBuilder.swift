import BurrowAudit
import BurrowCrypto

#if canImport(Glibc)
    import Glibc
#endif

/// A new manifest for a profile and a command: what the command runs that
/// is not the host's base system (`ManifestFiles.isBase`). That is the
/// executable (and the links on the way to it), files named by absolute
/// path among its arguments (a script an interpreter reads), the Python
/// virtualenv it lives in (found by its `pyvenv.cfg`: covered whole, as a
/// root), and the roots and files the caller adds for what Burrow cannot
/// see (modules a script imports from elsewhere, plugins it loads).
package struct ManifestBuilder {
    package var tool: ToolManifest.Tool
    package var trustLevel: String
    /// `sha256:` over the profile's files as loaded (the audit's profileDigest).
    package var profileDigest: String
    package var command: [String]
    /// Where a plain command name is looked up.
    package var searchPath: [String]
    package var extraRoots: [String] = []
    package var extraFiles: [String] = []
    /// Unix seconds.
    package var issued: Int64
    package var expires: Int64

    package init(
        tool: ToolManifest.Tool, trustLevel: String, profileDigest: String, command: [String], searchPath: [String], extraRoots: [String] = [],
        extraFiles: [String] = [], issued: Int64, expires: Int64
    ) {
        self.tool = tool
        self.trustLevel = trustLevel
        self.profileDigest = profileDigest
        self.command = command
        self.searchPath = searchPath
        self.extraRoots = extraRoots
        self.extraFiles = extraFiles
        self.issued = issued
        self.expires = expires
    }

    package func build() throws(ManifestFiles.Problem) -> ToolManifest {
        guard let first = command.first, !first.isEmpty else { throw ManifestFiles.Problem("command", "give the executable and its arguments") }
        for path in extraRoots + extraFiles where !path.hasPrefix("/") { throw ManifestFiles.Problem(path, "give an absolute path") }
        var links: [[UInt8]: (path: String, target: String)] = [:]
        let executable = try resolve(first)
        // Every path is taken at its real location, each symlink on the way
        // (of a directory too) recorded: verification finds one replaced.
        let resolvedExecutable = try real(executable, &links)
        var roots = Set<String>()
        for root in extraRoots { roots.insert(try real(root, &links)) }
        // A virtualenv's bin/ entry (as named, or where its link leads): the whole environment is what runs.
        for candidate in [executable, resolvedExecutable] {
            let environment = parent(parent(candidate))
            if access(environment + "/pyvenv.cfg", F_OK) == 0 { roots.insert(try real(environment, &links)) }
        }
        var singles = [resolvedExecutable]
        for path in extraFiles { singles.append(try real(path, &links)) }
        for argument in command.dropFirst() where argument.hasPrefix("/") {
            var st = stat()
            if stat(argument, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { singles.append(try real(argument, &links)) }
        }
        // Keyed by bytes: two names Swift holds equal are two files.
        var files: [[UInt8]: ToolManifest.File] = [:]
        let sortedRoots = roots.sorted()
        func inRoots(_ path: String) -> Bool { sortedRoots.contains { path.hasPrefix($0 + "/") } }
        for root in sortedRoots {
            let found = try ManifestFiles.walk(root)
            for path in found.files { files[Array(path.utf8)] = try ManifestFiles.digest(path).get() }
            for link in found.links {
                links[Array(link.path.utf8)] = (link.path, link.target)
                // A link that leads out of the roots (a virtualenv's python) leads to what runs too.
                if let target = try? real(link.path, &links), !inRoots(target) { singles.append(target) }
            }
        }
        for path in singles where !inRoots(path) && !ManifestFiles.isBase(path) {
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            files[Array(path.utf8)] = try ManifestFiles.digest(path).get()
        }
        let manifest = ToolManifest(
            tool: tool, trustLevel: trustLevel, profile: profileDigest, command: command, issued: Self.rfc3339(issued), expires: Self.rfc3339(expires),
            roots: sortedRoots, files: files.values.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) },
            links: links.values.map { ToolManifest.Link(path: $0.path, target: $0.target) }.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) })
        do {
            try manifest.check()
        } catch {
            throw ManifestFiles.Problem("manifest", error.description)
        }
        return manifest
    }

    /// `path` with every symlink on the way resolved, component by
    /// component, each one recorded in `links` (path → target as written).
    private func real(_ path: String, _ links: inout [[UInt8]: (path: String, target: String)]) throws(ManifestFiles.Problem) -> String {
        var pending = Array(path.split(separator: "/").map(String.init).reversed())
        var current = ""
        var followed = 0
        while let part = pending.popLast() {
            if part == "." || part.isEmpty { continue }
            if part == ".." {
                current = parent(current.isEmpty ? "/" : current)
                if current == "/" { current = "" }
                continue
            }
            let candidate = current + "/" + part
            guard let target = ManifestFiles.readLink(candidate) else {
                current = candidate
                continue
            }
            followed += 1
            guard followed <= 40 else { throw ManifestFiles.Problem(path, "more than 40 symlinks on the way") }
            // A link only root can replace (its directory, and every one
            // above, root's and closed to others: /bin → usr/bin) is the
            // host's; any other is recorded, and verified.
            if !ManifestFiles.isProtected(current.isEmpty ? "/" : current) { links[Array(candidate.utf8)] = (candidate, target) }
            pending += target.split(separator: "/").map(String.init).reversed()
            if target.hasPrefix("/") { current = "" }
        }
        return current.isEmpty ? "/" : current
    }

    /// A command's executable: a path as given (made absolute), or the first match on the search path.
    private func resolve(_ name: String) throws(ManifestFiles.Problem) -> String {
        if name.contains("/") {
            guard name.hasPrefix("/") else { throw ManifestFiles.Problem(name, "give the executable by absolute path, or a plain name found on the search path") }
            guard access(name, X_OK) == 0 else { throw ManifestFiles.Problem(name, "not an executable file") }
            return name
        }
        for directory in searchPath where directory.hasPrefix("/") && access(directory + "/" + name, X_OK) == 0 { return directory + "/" + name }
        throw ManifestFiles.Problem(name, "not found on the search path (\(searchPath.joined(separator: ":")))")
    }

    private func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// RFC 3339 UTC, whole seconds.
    static func rfc3339(_ seconds: Int64) -> String {
        let text = AuditClock.format(seconds * 1_000_000)
        return String(text.prefix(19)) + "Z"
    }
}
