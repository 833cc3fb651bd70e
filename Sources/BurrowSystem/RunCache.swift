import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Answers one `burrow` process may hand the next, so a short command does
/// not redo what an earlier one already worked out (the host's clone probes,
/// a compiled seccomp program, the runtime found for a command). Kept in
/// `/run/burrow/cache` (a tmpfs: gone at reboot), one file per entry.
///
/// An entry is used only when its stored key equals, byte for byte, the key
/// the caller computes now from everything the answer depends on: a
/// different key is a miss, never a guess. The key always includes this
/// binary's identity (device, inode, size and modification time of
/// /proc/self/exe), so a rebuilt or upgraded Burrow starts afresh.
///
/// Only this user's files are trusted: the directory and each entry must be
/// owned by the effective uid and writable by no one else; anything else is
/// a miss, and nothing is written into a directory that is not trusted.
/// Entries are written beside their name and renamed, so a reader sees a
/// whole entry or none. Every failure is a miss: the cache only ever saves
/// time.
package struct RunCache: Sendable {
    package let directory: String

    /// The entry format's version, first in every file.
    static let magic = "burrow-cache 1"
    /// Larger entries are neither written nor read.
    package static let maxEntryBytes = 1 << 20

    package init(directory: String) { self.directory = directory }

    /// `/run/burrow/cache`, or `$BURROW_RUN_CACHE` (tests); nil when that is
    /// set to "off".
    package static let shared: RunCache? = {
        if let path = getenv("BURROW_RUN_CACHE").map({ String(cString: $0) }), !path.isEmpty {
            return path == "off" ? nil : RunCache(directory: path)
        }
        return RunCache(directory: "/run/burrow/cache")
    }()

    /// At most this many entries: a write that finds more empties the directory first.
    package static let maxEntries = 512

    /// This binary as a file: a rebuild or an upgrade changes it. nil when
    /// /proc/self/exe cannot be read: then nothing is read or written.
    package static let binaryIdentity: String? = {
        var st = stat()
        guard stat("/proc/self/exe", &st) == 0 else { return nil }
        return "\(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
    }()

    /// The cache of this process: `shared`, unless this binary cannot be identified.
    package static var forThisBinary: RunCache? { binaryIdentity == nil ? nil : shared }

    /// The entry `name` when its key is `key`; nil otherwise.
    package func read(_ name: String, key: String) -> [UInt8]? {
        guard Self.validName(name), let dir = openDirectory() else { return nil }
        defer { close(dir) }
        let fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == geteuid(), st.st_mode & 0o022 == 0,
            st.st_size > 0, st.st_size <= Self.maxEntryBytes
        else { return nil }
        // One byte more than its size: an entry that grew under us is seen.
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
        var filled = 0
        while filled < bytes.count {
            let start = filled
            guard let n = try? bytes.withUnsafeMutableBytes({ try FileDescriptor(rawValue: fd).read(into: UnsafeMutableRawBufferPointer(rebasing: $0[start...])) })
            else { return nil }
            if n == 0 { break }
            filled += n
        }
        guard filled == Int(st.st_size) else { return nil }  // it changed under us
        return Self.decode(bytes[..<filled], key: key)
    }

    /// Stores `value` as the entry `name` for `key` (best effort).
    package func write(_ name: String, key: String, value: [UInt8]) {
        guard Self.validName(name) else { return }
        let entry = Self.encode(key: key, value: value)
        guard entry.count <= Self.maxEntryBytes, makeDirectory(), let dir = openDirectory() else { return }
        defer { close(dir) }
        tidy(dir)
        let temporary = ".\(name).\(getpid()).\(Kernel.monotonicNanoseconds())"
        let fd = openat(dir, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let written = (try? FileDescriptor(rawValue: fd).writeAll(entry)) == entry.count
        close(fd)
        if !written || renameat(dir, temporary, dir, name) != 0 { unlinkat(dir, temporary, 0) }
    }

    /// Removes what a writer that died left (temporaries over a minute old),
    /// and every entry once there are `maxEntries` (one per command run ad
    /// hoc adds up): the cache only ever saves time.
    private func tidy(_ dir: Int32) {
        let listing = dup(dir)
        guard listing >= 0, let stream = fdopendir(listing) else {
            if listing >= 0 { close(listing) }
            return
        }
        defer { closedir(stream) }
        var names: [(name: String, temporary: Bool)] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append((name, name.hasPrefix("."))) }
        }
        let now = time(nil)
        let full = names.count >= Self.maxEntries
        for (name, temporary) in names {
            var st = stat()
            guard fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if full || (temporary && now - st.st_mtim.tv_sec > 60) { unlinkat(dir, name, 0) }
        }
    }

    /// "burrow-cache 1 KEYLEN VALUELEN\n", the key, then the value.
    static func encode(key: String, value: [UInt8]) -> [UInt8] {
        let keyBytes = Array(key.utf8)
        return Array("\(magic) \(keyBytes.count) \(value.count)\n".utf8) + keyBytes + value
    }

    static func decode(_ entry: ArraySlice<UInt8>, key: String) -> [UInt8]? {
        guard let newline = entry.firstIndex(of: UInt8(ascii: "\n")), newline - entry.startIndex <= 64 else { return nil }
        let header = entry[entry.startIndex..<newline].split(separator: UInt8(ascii: " "))
        let magicWords = magic.utf8.split(separator: UInt8(ascii: " "))
        guard header.count == magicWords.count + 2, zip(header, magicWords).allSatisfy({ $0.elementsEqual($1) }),
            let keyLength = Int(String(decoding: header[header.count - 2], as: UTF8.self)),
            let valueLength = Int(String(decoding: header[header.count - 1], as: UTF8.self)),
            keyLength >= 0, valueLength >= 0
        else { return nil }
        let body = entry[(newline + 1)...]
        let wanted = Array(key.utf8)
        guard body.count == keyLength + valueLength, keyLength == wanted.count, body.prefix(keyLength).elementsEqual(wanted) else { return nil }
        return Array(body.dropFirst(keyLength))
    }

    /// A plain file name: no slash, not hidden (temporaries are), short.
    static func validName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128 && !name.hasPrefix(".") && !name.utf8.contains(UInt8(ascii: "/"))
    }

    /// The directory, opened without following a final link, when it is
    /// this user's alone; the entries are opened relative to it, so the path
    /// is resolved once.
    private func openDirectory() -> Int32? {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_uid == geteuid(), st.st_mode & 0o022 == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    private func trustedDirectory() -> Bool {
        guard let fd = openDirectory() else { return false }
        close(fd)
        return true
    }

    /// Creates the directory (0700) and its parent (0755) if missing; true
    /// when it is there and trusted.
    private func makeDirectory() -> Bool {
        if trustedDirectory() { return true }
        if let slash = directory.lastIndex(of: "/"), slash != directory.startIndex {
            _ = mkdir(String(directory[..<slash]), 0o755)
        }
        _ = mkdir(directory, 0o700)
        return trustedDirectory()
    }

    /// FNV-1a of `text` in hex: a short file name for a long key (a
    /// collision only makes two keys share, and miss, one entry).
    package static func name(_ prefix: String, for text: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 {
            h ^= UInt64(b)
            h &*= 0x100_0000_01b3
        }
        let hex = String(h, radix: 16)
        return prefix + "-" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
