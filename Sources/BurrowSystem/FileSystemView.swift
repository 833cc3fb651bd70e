import Synchronization

// Package: `FileStamp(_:)` takes the C `stat` a caller's fstat(2) filled.
#if canImport(Glibc)
    package import Glibc
#elseif canImport(Musl)
    package import Musl
#endif

/// The kind of a file system entry, without following a final symlink.
package enum FileKind: Sendable, Equatable {
    case file(executable: Bool)
    case directory
    case symlink
    case other
}

/// Read-only questions the plan compiler asks about the host file system.
/// A protocol so golden tests can compile plans against a fixed fake host.
package protocol FileSystemView: Sendable {
    /// The entry at `path` (lstat), or nil when it does not exist.
    func kind(_ path: String) -> FileKind?
    /// The target of the symlink at `path`.
    func readLink(_ path: String) -> String?
    /// Entry names in directory `path`, sorted.
    func list(_ path: String) -> [String]?
    /// Up to `count` bytes of the file at `path`, from `offset`.
    func read(_ path: String, offset: Int, count: Int) -> [UInt8]?
    /// Whether the file system holding `path` can bound a project's bytes.
    func projectQuota(_ path: String) -> HostFacts.Check
    /// Whether `path` may exist but cannot be reached with this thread's
    /// rights (lstat fails with EACCES): a grant the caller cannot reach,
    /// when the plan is compiled with a caller's identity.
    func denied(_ path: String) -> Bool
}

extension FileSystemView {
    package func denied(_ path: String) -> Bool { false }

    /// Follows symlinks in every component of an absolute path, as the kernel
    /// would. Returns the final path and each symlink passed on the way.
    package func resolve(_ path: String) -> (path: String, links: [(link: String, target: String)])? {
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
package struct LiveFileSystem: FileSystemView {
    package init() {}

    package func projectQuota(_ path: String) -> HostFacts.Check { ProjectQuota.support(at: path) }

    package func denied(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) != 0 && errno == EACCES
    }

    package func kind(_ path: String) -> FileKind? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file(executable: st.st_mode & 0o111 != 0)
        case S_IFDIR: return .directory
        case S_IFLNK: return .symlink
        default: return .other
        }
    }

    package func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    package func list(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    package func read(_ path: String, offset: Int, count: Int) -> [UInt8]? {
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

/// What lstat(2) says about one path (stat(2) for a listed directory), or that it is absent: equal stamps
/// mean no answer a `FileSystemView` gives about the path can have changed
/// (a rewrite moves the change time and the size, a replacement the inode).
/// A directory's times count only when its entries were listed: whether it
/// holds a given name is the stamp of that name's own path.
package struct FileStamp: Sendable, Equatable {
    var device: UInt64 = 0
    var inode: UInt64 = 0
    var mode: UInt32 = 0
    var size: Int64 = 0
    var modified: Int64 = 0
    var changed: Int64 = 0
    var error: Int32 = 0

    package static func of(_ path: String, listed: Bool = false) -> FileStamp {
        var st = stat()
        // Listing follows a final symlink (opendir), so its stamp is the directory's.
        guard (listed ? stat(path, &st) : lstat(path, &st)) == 0 else { return FileStamp(error: errno) }
        return FileStamp(st, listed: listed)
    }

    /// What `st` says (of a descriptor, say); a directory's times only when `listed`.
    package init(_ st: stat, listed: Bool = false) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        mode = st.st_mode
        if st.st_mode & S_IFMT != S_IFDIR || listed {
            size = Int64(st.st_size)
            modified = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
            changed = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
        }
    }

    private init(error: Int32) { self.error = error }

    private init(device: UInt64, inode: UInt64, mode: UInt32, size: Int64, modified: Int64, changed: Int64, error: Int32) {
        (self.device, self.inode, self.mode, self.size, self.modified, self.changed, self.error) = (device, inode, mode, size, modified, changed, error)
    }

    /// Its fields, tab-separated: what a stamp kept in a file reads back from (`init?(record:)`).
    package var record: String { "\(device)\t\(inode)\t\(mode)\t\(size)\t\(modified)\t\(changed)\t\(error)" }

    package init?(record: Substring) {
        let f = record.split(separator: "\t", omittingEmptySubsequences: false)
        guard f.count == 7, let device = UInt64(f[0]), let inode = UInt64(f[1]), let mode = UInt32(f[2]), let size = Int64(f[3]), let modified = Int64(f[4]),
            let changed = Int64(f[5]), let error = Int32(f[6])
        else { return nil }
        self.init(device: device, inode: inode, mode: mode, size: size, modified: modified, changed: changed, error: error)
    }

    /// The later of its modification and change times (ns since the epoch; 0 when not stamped).
    package var lastChange: Int64 { max(modified, changed) }

    /// Whether the path was there to stamp.
    package var isPresent: Bool { error == 0 }
}

/// A view that answers from `base` and stamps every path it is asked about
/// (before asking, so a change racing the answer shows up as a changed
/// stamp): whatever was computed from its answers may be reused for as long
/// as `unchanged()` holds. The stamps are of this host's paths: wrap only a
/// view of the live file system.
package final class RecordingFileSystem: FileSystemView {
    private struct Key: Hashable {
        var path: String
        var listed: Bool
    }

    private let base: any FileSystemView
    private let stamps: Mutex<[Key: FileStamp]>

    package init(_ base: any FileSystemView) {
        self.base = base
        stamps = Mutex([:])
    }

    /// A view whose stamps are `lines` (from `stampLines`, an earlier
    /// process's): `unchanged()` then says whether what was computed from
    /// them still holds. nil when a line is not one `stampLines` writes.
    package init?(_ base: any FileSystemView, stampLines lines: [Substring]) {
        self.base = base
        var restored: [Key: FileStamp] = [:]
        for line in lines {
            // The listed flag, the stamp's seven fields, the path: tab-separated.
            let f = line.split(separator: "\t", maxSplits: 8, omittingEmptySubsequences: false)
            guard f.count == 9, f[0] == "0" || f[0] == "1", f[8].hasPrefix("/"), let stamp = FileStamp(record: line[f[1].startIndex..<f[7].endIndex]) else { return nil }
            restored[Key(path: String(f[8]), listed: f[0] == "1")] = stamp
        }
        stamps = Mutex(restored)
    }

    /// One line per stamp, tab-separated, the path last; nil when a path
    /// holds a tab or a newline (then nothing is kept).
    package var stampLines: [String]? {
        var lines: [String] = []
        for (key, s) in stamps.withLock({ $0 }) {
            guard !key.path.utf8.contains(where: { $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\n") }) else { return nil }
            lines.append("\(key.listed ? 1 : 0)\t\(s.record)\t\(key.path)")
        }
        return lines.sorted()
    }

    private func stamp(_ path: String, listed: Bool = false) {
        let key = Key(path: path, listed: listed)
        stamps.withLock { if $0[key] == nil { $0[key] = FileStamp.of(path, listed: listed) } }
    }

    package func kind(_ path: String) -> FileKind? {
        stamp(path)
        return base.kind(path)
    }

    package func denied(_ path: String) -> Bool { base.denied(path) }

    package func readLink(_ path: String) -> String? {
        stamp(path)
        return base.readLink(path)
    }

    package func list(_ path: String) -> [String]? {
        stamp(path, listed: true)
        return base.list(path)
    }

    /// Not recorded: a plan asks it afresh each time.
    package func projectQuota(_ path: String) -> HostFacts.Check { base.projectQuota(path) }

    package func read(_ path: String, offset: Int, count: Int) -> [UInt8]? {
        stamp(path)
        return base.read(path, offset: offset, count: count)
    }

    /// The most recent change among the stamped paths (ns since the epoch).
    /// File times come from a coarse clock: a path changed within a tick of
    /// its stamp could change again without a new time (and with the same
    /// size), so an answer this recent is not safe to keep.
    package var lastChange: Int64 { stamps.withLock { $0.values.map(\.lastChange).max() ?? 0 } }

    /// Whether every path consulted still has the stamp it had.
    package func unchanged() -> Bool {
        let recorded = stamps.withLock { $0 }
        return recorded.allSatisfy { FileStamp.of($0.key.path, listed: $0.key.listed) == $0.value }
    }
}
