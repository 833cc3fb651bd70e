import BurrowSystem
package import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One cgroup directory, reached only through its descriptor: every file and
/// child is opened relative to it (openat, no symlinks), so nothing a tool
/// can write is ever re-resolved by path.
package final class CgroupDirectory {
    package let fd: FileDescriptor
    /// For messages only.
    package let path: String

    init(fd: FileDescriptor, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { try? fd.close() }

    /// Opens the directory at absolute `path`.
    package static func open(_ path: String) throws(CgroupError) -> CgroupDirectory {
        try openDirectory(AT_FDCWD, path, display: path)
    }

    private static func openDirectory(_ at: Int32, _ name: String, display: String) throws(CgroupError) -> CgroupDirectory {
        let fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .io(op: "open", path: display, Errno(rawValue: errno)) }
        return CgroupDirectory(fd: FileDescriptor(rawValue: fd), path: display)
    }

    private func display(_ name: String) -> String { path.hasSuffix("/") ? path + name : path + "/" + name }

    /// Opens child cgroup `name`, creating it first. With `mustBeNew`, an
    /// existing directory is an error (EEXIST): an invocation never reuses one.
    package func child(_ name: String, create: Bool = true, mustBeNew: Bool = false) throws(CgroupError) -> CgroupDirectory {
        if create && mkdirat(fd.rawValue, name, 0o755) != 0 && (errno != EEXIST || mustBeNew) {
            throw .io(op: "create", path: display(name), Errno(rawValue: errno))
        }
        return try Self.openDirectory(fd.rawValue, name, display: display(name))
    }

    /// The parent directory (`..`), for a cgroup found by its own path.
    package func parent() throws(CgroupError) -> CgroupDirectory {
        let display = path.split(separator: "/").dropLast().joined(separator: "/")
        return try Self.openDirectory(fd.rawValue, "..", display: "/" + display)
    }

    /// Removes child cgroup `name` (which must hold no task and no child);
    /// one that is already gone counts as removed. A cgroup whose last task
    /// has just left can stay busy for a moment: retried for up to 200 ms.
    package func removeChild(_ name: String) throws(CgroupError) {
        for _ in 0..<200 {
            if unlinkat(fd.rawValue, name, AT_REMOVEDIR) == 0 || errno == ENOENT { return }
            guard errno == EBUSY else { break }
            usleep(1000)
        }
        throw .io(op: "remove", path: display(name), Errno(rawValue: errno))
    }

    /// The names of the child cgroups.
    package func children() -> [String] {
        let copy = dup(fd.rawValue)
        guard copy >= 0, let dir = fdopendir(copy) else { return [] }
        defer { closedir(dir) }
        rewinddir(dir)
        var names: [String] = []
        while let entry = readdir(dir) {
            guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Opens `file` for writing (close-on-exec): the caller owns the descriptor.
    package func openForWriting(_ file: String) throws(CgroupError) -> Int32 {
        let raw = openat(fd.rawValue, file, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
        guard raw >= 0 else { throw .io(op: "open", path: display(file), Errno(rawValue: errno)) }
        return raw
    }

    /// Writes `value` to `file` in one write(2), as cgroup files require.
    package func write(_ file: String, _ value: String) throws(CgroupError) {
        let raw = openat(fd.rawValue, file, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
        guard raw >= 0 else { throw .io(op: "open", path: display(file), Errno(rawValue: errno)) }
        defer { close(raw) }
        let bytes = Array(value.utf8)
        guard Glibc.write(raw, bytes, bytes.count) == bytes.count else {
            throw .io(op: "write \(value) to", path: display(file), Errno(rawValue: errno))
        }
    }

    /// The whole text of `file`, or nil when it cannot be read.
    package func read(_ file: String) -> String? { try? FileIO.read(file, in: fd) }

    /// Whether `file` exists in this directory.
    package func has(_ file: String) -> Bool { faccessat(fd.rawValue, file, F_OK, AT_SYMLINK_NOFOLLOW) == 0 }

    /// A file that holds one number (`max` reads as nil).
    package func number(_ file: String) -> UInt64? { read(file).flatMap { UInt64($0.trimmed) } }

    /// A value from a flat-keyed file (`oom_kill 1`, `usage_usec 1234`).
    package func keyed(_ file: String, _ key: String) -> UInt64? {
        guard let text = read(file) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == key { return UInt64(parts[1]) }
        }
        return nil
    }

    /// The process ids listed in `cgroup.procs`.
    package var processes: [Int32] { (read("cgroup.procs") ?? "").split(separator: "\n").compactMap { Int32($0) } }
}
