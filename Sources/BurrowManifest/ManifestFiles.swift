import BurrowCrypto
import BurrowSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A manifest's files on this host: hashed through the descriptor each is
/// opened with (never followed through a symlink), checked against what
/// the manifest lists, and listed for a new one.
package enum ManifestFiles {
    /// One difference between a manifest and the host.
    package struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        package var path: String
        package var message: String
        /// The host's file is not what the manifest lists (rather than a
        /// problem of the store or the manifest itself).
        package var differs = false
        package var description: String { "\(path): \(message)" }

        package init(_ path: String, _ message: String, differs: Bool = false) {
            self.path = path
            self.message = message
            self.differs = differs
        }
    }

    /// A regular file's digest (hex), size and permission bits, read
    /// through one descriptor; at most `limit` bytes and one more are read
    /// (a file that grows past it, or a /proc file whose size says nothing,
    /// is not read to its end).
    /// With `copy`, every byte read is written there too (a verified copy
    /// holds exactly the bytes that were hashed).
    package static func digest(_ path: String, limit: Int64 = ToolManifest.maxFileBytes, copy: Int32? = nil) -> Result<ToolManifest.File, Problem> {
        digest(path, limit: limit, copy: copy, opened: nil)
    }

    /// `digest`, telling `opened` what fstat(2) says of the descriptor hashed.
    static func digest(_ path: String, limit: Int64, copy: Int32?, opened: ((stat) -> Void)?) -> Result<ToolManifest.File, Problem> {
        let fd: Int32
        do {
            // No symlink anywhere on the way: a listed path is the file's real one.
            fd = try Kernel.openNoFollow(path, flags: O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK).rawValue
        } catch {
            return .failure(
                Problem(
                    path,
                    error == .tooManySymbolicLinkLevels ? "a symlink on the way to it (the manifest lists real paths)" : error == .noSuchFileOrDirectory ? "missing" : "cannot be opened: \(error)",
                    differs: true))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return .failure(Problem(path, "not a regular file", differs: true)) }
        opened?(st)
        guard Int64(st.st_size) <= limit else { return .failure(Problem(path, "\(st.st_size) bytes, more than \(limit)", differs: true)) }
        var left = limit + 1
        var copyFailure: Int32?
        guard
            let (digest, size) = SHA256.hash(reading: { buffer in
                while left > 0 {
                    let n = read(fd, buffer.baseAddress, Int(min(Int64(buffer.count), left)))
                    if n < 0 && errno == EINTR { continue }
                    if n > 0 {
                        left -= Int64(n)
                        if let copy, let base = buffer.baseAddress, !FileIO.writeAll(copy, UnsafeRawBufferPointer(start: base, count: n)) {
                            copyFailure = errno
                            return -1
                        }
                    }
                    return n
                }
                return 0
            })
        else {
            // The copy's failure is the store's (a full disk), not a difference of the host's file.
            if let copyFailure { return .failure(Problem(path, "its verified copy cannot be written: \(String(cString: strerror(copyFailure)))")) }
            return .failure(Problem(path, "cannot be read: \(String(cString: strerror(errno)))", differs: true))
        }
        guard size <= limit else { return .failure(Problem(path, "more than \(limit) bytes", differs: true)) }
        return .success(ToolManifest.File(path: path, sha256: Hex.encode(digest), size: size, mode: UInt32(st.st_mode & 0o7777)))
    }

    /// Every way the host differs from `manifest`: a listed file changed
    /// (with both digests), missing or not a regular file; a link that
    /// points elsewhere; a file, link or anything else in a root that the
    /// manifest does not list. Empty: the host has exactly what it lists.
    package static func verify(_ manifest: ToolManifest) -> [Problem] {
        var problems: [Problem] = []
        for listed in manifest.files {
            // Hashed only as far as the size listed: a file of another size differs, whatever it holds.
            switch digest(listed.path, limit: listed.size) {
            case .failure(let problem): problems.append(problem)
            case .success(let found):
                if Array(found.sha256.utf8) != Array(listed.sha256.utf8) {
                    problems.append(Problem(listed.path, "sha256 \(found.sha256), the manifest says \(listed.sha256)"))
                } else if found.mode != listed.mode {
                    problems.append(Problem(listed.path, "mode \(String(found.mode, radix: 8)), the manifest says \(String(listed.mode, radix: 8))"))
                }
            }
        }
        for link in manifest.links {
            switch readLink(link.path) {
            case nil: problems.append(Problem(link.path, "not a symlink (the manifest lists one to \(link.target))"))
            case let target? where Array(target.utf8) != Array(link.target.utf8): problems.append(Problem(link.path, "points to \(target), the manifest says \(link.target)"))
            default: break
            }
        }
        // Compared as bytes: two names Swift holds equal (canonically equivalent) are two files to the kernel.
        let listed = Set((manifest.files.map(\.path) + manifest.links.map(\.path)).map { Array($0.utf8) })
        for root in manifest.roots {
            do {
                let found = try walk(root)
                for path in found.files + found.links.map(\.path) where !listed.contains(Array(path.utf8)) {
                    problems.append(Problem(path, "in \(root), which the manifest covers, but not listed in it"))
                }
            } catch {
                problems.append(error)
            }
        }
        return problems
    }

    /// The regular files and symlinks under `root` (a directory with no
    /// symlink on the way to it), in no particular order; each directory opened without
    /// following a symlink, its entries read from that descriptor. Anything
    /// else there, or a name that is not UTF-8, is a problem.
    package static func walk(_ root: String) throws(Problem) -> (files: [String], links: [ToolManifest.Link]) {
        var files: [String] = []
        var links: [ToolManifest.Link] = []
        var pending = [(root, 0)]
        while let (directory, depth) = pending.popLast() {
            guard depth < 64 else { throw Problem(directory, "nested more than 64 directories deep") }
            let fd: Int32
            do {
                fd = try Kernel.openNoFollow(directory, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC).rawValue
            } catch {
                throw Problem(directory, directory == root ? "a root must be a directory with no symlink on the way to it (\(error))" : "cannot be listed: \(error)")
            }
            guard let handle = fdopendir(fd) else {
                close(fd)
                throw Problem(directory, "cannot be listed: \(String(cString: strerror(errno)))")
            }
            defer { closedir(handle) }
            while let entry = readdir(handle) {
                let raw = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
                if raw == [0x2e] || raw == [0x2e, 0x2e] { continue }
                guard let name = String(validating: raw, as: UTF8.self) else { throw Problem(directory, "holds a name that is not UTF-8") }
                let path = directory + "/" + name
                var st = stat()
                guard fstatat(dirfd(handle), name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { throw Problem(path, "vanished while listed") }
                switch st.st_mode & S_IFMT {
                case S_IFREG: files.append(path)
                case S_IFLNK: links.append(ToolManifest.Link(path: path, target: readLink(path) ?? ""))
                case S_IFDIR: pending.append((path, depth + 1))
                default: throw Problem(path, "neither a file, a directory nor a symlink")
                }
                guard files.count + links.count <= ToolManifest.maxEntries else { throw Problem(root, "more than \(ToolManifest.maxEntries) files") }
            }
        }
        return (files, links)
    }

    /// A symlink's target; nil when `path` is not one (or its target is not UTF-8).
    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink(path, &buffer, 4096)
        guard n >= 0 else { return nil }
        return String(validating: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `path` is the host's base system, which a manifest does not
    /// list: its real path is under /usr (not /usr/local) or /etc, and it
    /// and every directory above it belong to root and are writable by
    /// nobody else. A file a package installed there is such a file; one a
    /// user could have replaced is not.
    package static func isBase(_ path: String) -> Bool {
        guard let real = realpath(path, nil) else { return false }
        defer { free(real) }
        let resolved = String(cString: real)
        guard (resolved.hasPrefix("/usr/") && !resolved.hasPrefix("/usr/local/")) || resolved.hasPrefix("/etc/") else { return false }
        return isProtected(resolved)
    }

    /// Whether `path` and every directory above it belong to root and are
    /// writable by nobody else (so only root can change what it is).
    package static func isProtected(_ path: String) -> Bool {
        var current = path
        while true {
            var st = stat()
            guard stat(current, &st) == 0, st.st_uid == 0, st.st_mode & 0o022 == 0 else { return false }
            if current == "/" { return true }
            let slash = current.lastIndex(of: "/") ?? current.startIndex
            current = slash == current.startIndex ? "/" : String(current[..<slash])
        }
    }
}
