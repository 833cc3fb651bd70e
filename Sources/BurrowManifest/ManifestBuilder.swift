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
    package var profileBytes: [UInt8]
    package var command: [String]
    /// Where a plain command name is looked up.
    package var searchPath: [String]
    package var extraRoots: [String] = []
    package var extraFiles: [String] = []
    /// Unix seconds.
    package var issued: Int64
    package var expires: Int64

    package init(
        tool: ToolManifest.Tool, trustLevel: String, profileBytes: [UInt8], command: [String], searchPath: [String], extraRoots: [String] = [],
        extraFiles: [String] = [], issued: Int64, expires: Int64
    ) {
        self.tool = tool
        self.trustLevel = trustLevel
        self.profileBytes = profileBytes
        self.command = command
        self.searchPath = searchPath
        self.extraRoots = extraRoots
        self.extraFiles = extraFiles
        self.issued = issued
        self.expires = expires
    }

    package func build() throws(ManifestFiles.Problem) -> ToolManifest {
        guard let first = command.first, !first.isEmpty else { throw ManifestFiles.Problem("command", "give the executable and its arguments") }
        let executable = try resolve(first)
        var roots = Set(extraRoots.map(normalised))
        // A virtualenv's bin/ entry: the whole environment is what runs.
        let environment = parent(parent(executable))
        if access(environment + "/pyvenv.cfg", F_OK) == 0 { roots.insert(environment) }
        var singles = [executable] + extraFiles.map(normalised)
        for argument in command.dropFirst() where argument.hasPrefix("/") {
            var st = stat()
            if stat(argument, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { singles.append(normalised(argument)) }
        }
        var files: [String: ToolManifest.File] = [:]
        var links: [String: String] = [:]
        for root in roots.sorted() {
            let found = try ManifestFiles.walk(root)
            for path in found.files { files[path] = try ManifestFiles.digest(path).get() }
            for link in found.links { links[link.path] = link.target }
        }
        let sortedRoots = roots.sorted()
        for path in singles where !sortedRoots.contains(where: { path.hasPrefix($0 + "/") }) {
            // Each link on the way, then the file it ends at, unless that is the base system's.
            var current = path
            for _ in 0..<40 {
                guard let target = ManifestFiles.readLink(current) else { break }
                links[current] = target
                current = target.hasPrefix("/") ? normalised(target) : normalised(parent(current) + "/" + target)
            }
            if !ManifestFiles.isBase(current) && !sortedRoots.contains(where: { current.hasPrefix($0 + "/") }) {
                files[current] = try ManifestFiles.digest(current).get()
            }
        }
        let manifest = ToolManifest(
            tool: tool, trustLevel: trustLevel, profile: SHA256.label(profileBytes), command: command, issued: Self.rfc3339(issued), expires: Self.rfc3339(expires),
            roots: sortedRoots, files: files.values.sorted { $0.path < $1.path },
            links: links.map { ToolManifest.Link(path: $0.key, target: $0.value) }.sorted { $0.path < $1.path })
        do {
            try manifest.check()
        } catch {
            throw ManifestFiles.Problem("manifest", error.description)
        }
        return manifest
    }

    /// A command's executable: a path as given (made absolute), or the first match on the search path.
    private func resolve(_ name: String) throws(ManifestFiles.Problem) -> String {
        if name.contains("/") {
            guard name.hasPrefix("/") else { throw ManifestFiles.Problem(name, "give the executable by absolute path, or a plain name found on the search path") }
            guard access(name, X_OK) == 0 else { throw ManifestFiles.Problem(name, "not an executable file") }
            return normalised(name)
        }
        for directory in searchPath where access(directory + "/" + name, X_OK) == 0 { return normalised(directory + "/" + name) }
        throw ManifestFiles.Problem(name, "not found on the search path (\(searchPath.joined(separator: ":")))")
    }

    private func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// `.` and empty parts dropped, `..` applied (lexically: links are followed one by one above).
    private func normalised(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                _ = parts.popLast()
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// RFC 3339 UTC, whole seconds.
    static func rfc3339(_ seconds: Int64) -> String {
        let text = AuditClock.format(seconds * 1_000_000)
        return String(text.prefix(19)) + "Z"
    }
}
