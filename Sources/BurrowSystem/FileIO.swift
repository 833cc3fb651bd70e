import CBurrowSystem
package import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Small, allocation-light file helpers used by probes and parsers.
package enum FileIO {
    /// Reads a whole (small) file such as a /proc or /sys entry.
    /// - Parameter directory: resolve `path` beneath this directory (then the
    ///   last component must not be a symlink), instead of from the working directory.
    /// - Throws: the `Errno` of `open(2)` or `read(2)`.
    package static func read(_ path: String, in directory: FileDescriptor? = nil, limit: Int = 1 << 20) throws(Errno) -> String {
        let raw = openat(directory?.rawValue ?? AT_FDCWD, path, O_RDONLY | O_CLOEXEC | (directory == nil ? 0 : O_NOFOLLOW))
        guard raw >= 0 else { throw Errno(rawValue: errno) }
        let fd = FileDescriptor(rawValue: raw)
        defer { try? fd.close() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let n: Int
            do {
                n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0, retryOnInterrupt: true) }
            } catch let error as Errno {
                throw error
            } catch {
                throw Errno.ioError
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes all of `bytes` to `fd` (retrying short writes and EINTR);
    /// false, with errno set, when a write fails.
    package static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, base + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    /// Why a configuration file was not read (`readConfigured`).
    package enum ConfiguredFailure: Error, Equatable {
        case system(Errno)
        case notRegular
        /// A secret that is not the process's own, or that others may read: its mode and owner.
        case exposed(mode: UInt32, owner: UInt32)
        case tooLarge
    }

    /// A configuration file's bytes (a certificate, a key), read from the
    /// descriptor that was checked: a regular file of at most `limit`
    /// bytes; a `secret` also owned by the effective uid and readable by no
    /// one else.
    package static func readConfigured(_ path: String, secret: Bool, limit: Int = 1 << 20) throws(ConfiguredFailure) -> [UInt8] {
        let raw = open(path, O_RDONLY | O_CLOEXEC)
        guard raw >= 0 else { throw .system(Errno(rawValue: errno)) }
        defer { close(raw) }
        var st = stat()
        guard fstat(raw, &st) == 0 else { throw .system(Errno(rawValue: errno)) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw .notRegular }
        if secret && (st.st_uid != geteuid() || st.st_mode & 0o077 != 0) { throw .exposed(mode: st.st_mode & 0o777, owner: st.st_uid) }
        guard st.st_size <= limit else { throw .tooLarge }
        do {
            return try Array(read(path: raw, limit: limit))
        } catch {
            throw .system(error)
        }
    }

    private static func read(path fd: Int32, limit: Int) throws(Errno) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= limit {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw Errno(rawValue: errno) }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// Whether `path` exists (without following a final symlink).
    package static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Whether `path` is a directory (following symlinks).
    package static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Whether the calling process may create entries in directory `path`.
    package static func isWritableDirectory(_ path: String) -> Bool {
        isDirectory(path) && access(path, W_OK) == 0
    }

    /// A close-on-exec anonymous memory file (memfd_create(2)).
    /// - Returns: the descriptor, or the negated errno.
    package static func anonymousMemoryFile(_ name: String) -> Int32 { brw_memfd(name) }
}
