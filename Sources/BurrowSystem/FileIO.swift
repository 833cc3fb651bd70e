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
