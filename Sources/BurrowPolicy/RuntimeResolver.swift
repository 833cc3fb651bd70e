import BurrowSystem

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Finds what the granted executables need to start: the files themselves,
/// their `#!` interpreters, ELF interpreters and shared libraries, and the
/// symlinks on the way. The result decides the read-only "runtime" binds.
struct RuntimeResolver {
    let fs: any FileSystemView
    let searchPath: [String]

    static let libraryDirectories = [
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
    ]

    struct Result {
        /// Final (symlink-free) paths of everything that may be executed.
        var executables: [String] = []
        /// Why each executable is there (the grant, or the script that needs it).
        var executableReasons: [String: String] = [:]
        /// Directories holding executables, interpreters and libraries.
        var directories: Set<String> = []
        /// Symlinks in directories that are not bound (at the root: /lib64 → usr/lib64).
        var rootLinks: [String: String] = [:]
        /// Every other symlink on the way to an executable or library, with its text.
        var links: [String: String] = [:]
        /// Directories holding a shared library, an ELF interpreter or a link
        /// to one: bound whole (libraries load others by name at run time).
        /// The other directories hold executables only, and the sandbox sees
        /// only the granted ones in them.
        var libraryDirectories: Set<String> = []
        /// Grants that match nothing on this host.
        var unmatched: [String] = []
        var visitedLibraries: Set<String> = []
    }

    /// Concrete host paths for one execute grant.
    func expand(_ pattern: String) -> [String] {
        if pattern.hasPrefix("/") {
            let slash = pattern.lastIndex(of: "/") ?? pattern.startIndex
            let directory = slash == pattern.startIndex ? "/" : String(pattern[..<slash])
            let name = String(pattern[pattern.index(after: slash)...])
            return matches(name, in: directory)
        }
        for directory in searchPath {
            let found = matches(pattern, in: directory)
            if !found.isEmpty { return found }
        }
        return []
    }

    private func matches(_ name: String, in directory: String) -> [String] {
        let prefix = directory == "/" ? "" : directory
        guard name.contains("*") || name.contains("?") else {
            return fs.kind(prefix + "/" + name) == nil ? [] : [prefix + "/" + name]
        }
        return (fs.list(directory) ?? []).filter { fnmatch(name, $0, FNM_PERIOD) == 0 }.map { prefix + "/" + $0 }
    }

    /// Adds an executable (and, transitively, what it needs) to `result`.
    func addExecutable(_ path: String, reason: String, to result: inout Result, depth: Int = 0) {
        guard depth < 8, let final = follow(path, into: &result) else { return }
        guard case .file(true) = fs.kind(final) else { return }
        if result.executableReasons[final] == nil {
            result.executables.append(final)
            result.executableReasons[final] = reason
        } else {
            return
        }
        if let (interpreter, argument) = ELFInfo.shebang(final, from: fs) {
            addExecutable(interpreter, reason: "#! interpreter of \(final)", to: &result, depth: depth + 1)
            // `#!/usr/bin/env NAME` runs NAME from the search path.
            if interpreter.hasSuffix("/env"), let argument, !argument.hasPrefix("-") {
                for found in expand(argument) {
                    addExecutable(found, reason: "#!/usr/bin/env \(argument) in \(final)", to: &result, depth: depth + 1)
                }
            }
            return
        }
        addLibraries(of: final, to: &result, depth: depth)
    }

    private func addLibraries(of file: String, to result: inout Result, depth: Int) {
        guard depth < 32, let elf = ELFInfo.read(file, from: fs) else { return }
        if let interpreter = elf.interpreter, let final = follow(interpreter, into: &result, library: true) {
            result.executableReasons[final] = result.executableReasons[final] ?? "ELF interpreter"
            if !result.executables.contains(final) { result.executables.append(final) }
        }
        let origin = String(file[..<(file.lastIndex(of: "/") ?? file.startIndex)])
        let runpath = elf.runpath.map { $0.replacingOccurrences(of: "$ORIGIN", with: origin) }
        for library in elf.needed {
            guard let found = (runpath + Self.libraryDirectories).lazy.map({ $0 + "/" + library }).first(where: { fs.kind($0) != nil }),
                let final = follow(found, into: &result, library: true), result.visitedLibraries.insert(final).inserted
            else { continue }
            addLibraries(of: final, to: &result, depth: depth + 1)
        }
    }

    /// Resolves symlinks, recording the directories and root links that
    /// must exist in the sandbox for the kernel to walk the same way.
    private func follow(_ path: String, into result: inout Result, library: Bool = false) -> String? {
        guard let (final, links) = fs.resolve(path) else { return nil }
        for (link, target) in links {
            let parent = dirname(link)
            if parent == "/" {
                result.rootLinks[link] = target
            } else {
                result.directories.insert(parent)
                result.links[link] = target
                if library { result.libraryDirectories.insert(parent) }
            }
        }
        result.directories.insert(dirname(final))
        if library { result.libraryDirectories.insert(dirname(final)) }
        return final
    }
}

func dirname(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
    return String(path[..<slash])
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}
