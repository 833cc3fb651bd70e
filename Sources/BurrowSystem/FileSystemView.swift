#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The kind of a file system entry, without following a final symlink.
public enum FileKind: Sendable, Equatable {
    case file(executable: Bool)
    case directory
    case symlink
    case other
}

/// Read-only questions the plan compiler asks about the host file system.
/// A protocol so golden tests can compile plans against a fixed fake host.
public protocol FileSystemView: Sendable {
    /// The entry at `path` (lstat), or nil when it does not exist.
    func kind(_ path: String) -> FileKind?
    /// The target of the symlink at `path`.
    func readLink(_ path: String) -> String?
    /// Entry names in directory `path`, sorted.
    func list(_ path: String) -> [String]?
    /// Up to `count` bytes of the file at `path`, from `offset`.
    func read(_ path: String, offset: Int, count: Int) -> [UInt8]?
}

extension FileSystemView {
    /// Follows symlinks in every component of an absolute path, as the kernel
    /// would. Returns the final path and each symlink passed on the way.
    public func resolve(_ path: String) -> (path: String, links: [(link: String, target: String)])? {
        var pending = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var links: [(String, String)] = []
        var hops = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component == "." || component.isEmpty { continue }
            if component == ".." {
                _ = resolved.popLast()
                continue
            }
            let current = "/" + (resolved + [component]).joined(separator: "/")
            guard let kind = kind(current) else { return nil }
            if kind == .symlink {
                hops += 1
                guard hops <= 40, let target = readLink(current) else { return nil }
                links.append((current, target))
                if target.hasPrefix("/") { resolved = [] }
                pending = target.split(separator: "/").map(String.init) + pending
            } else {
                resolved.append(component)
            }
        }
        return ("/" + resolved.joined(separator: "/"), links)
    }
}

/// The real host file system.
public struct LiveFileSystem: FileSystemView {
    public init() {}

    public func kind(_ path: String) -> FileKind? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file(executable: st.st_mode & 0o111 != 0)
        case S_IFDIR: return .directory
        case S_IFLNK: return .symlink
        default: return .other
        }
    }

    public func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func list(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func read(_ path: String, offset: Int, count: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { buffer in
            buffer.baseAddress.map { pread(fd, $0, count, off_t(offset)) } ?? -1
        }
        guard n >= 0 else { return nil }
        return Array(bytes.prefix(n))
    }
}
