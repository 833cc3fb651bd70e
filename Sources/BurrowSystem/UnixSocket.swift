import CBurrowSystem
package import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A connected Unix stream socket that carries descriptors (SCM_RIGHTS)
/// with its bytes: `burrow` and burrowd's session socket. Blocking, with
/// optional receive and send timeouts. The descriptor is owned: `close` once.
package struct UnixSocket: Sendable {
    package let descriptor: FileDescriptor

    package init(_ descriptor: FileDescriptor) { self.descriptor = descriptor }

    /// The most descriptors one message carries.
    package static let maxDescriptors = 8

    private static func check(_ rc: Int) throws(Errno) -> Int {
        if rc < 0 { throw Errno(rawValue: Int32(-rc)) }
        return rc
    }

    /// Connects to the socket at `path`.
    package static func connect(_ path: String) throws(Errno) -> UnixSocket {
        UnixSocket(FileDescriptor(rawValue: Int32(try check(Int(brw_unix_connect(path))))))
    }

    /// Binds and listens at `path` (which must not exist).
    package static func listen(_ path: String, backlog: Int32 = 128) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: Int32(try check(Int(brw_unix_listen(path, backlog)))))
    }

    /// The next connection on `listener`.
    package static func accept(_ listener: FileDescriptor) throws(Errno) -> UnixSocket {
        UnixSocket(FileDescriptor(rawValue: Int32(try check(Int(brw_unix_accept(listener.rawValue))))))
    }

    /// Sends all of `bytes`; `descriptors` (duplicated into the peer) go
    /// with the first chunk. More than `maxDescriptors`: EINVAL, nothing sent.
    package func send(_ bytes: [UInt8], descriptors: [Int32] = []) throws(Errno) {
        guard descriptors.count <= Self.maxDescriptors else { throw .invalidArgument }
        var sent = 0
        var passing = descriptors
        while sent < bytes.count {
            let n = try bytes.withUnsafeBufferPointer { buffer throws(Errno) in
                guard let base = buffer.baseAddress else { return bytes.count }
                return try passing.withUnsafeBufferPointer { fds throws(Errno) in
                    try Self.check(brw_send_fds(descriptor.rawValue, base + sent, bytes.count - sent, fds.baseAddress, Int32(fds.count)))
                }
            }
            sent += n
            passing = []
        }
    }

    /// Reads up to `max` bytes (fewer when fewer are waiting; none at end of
    /// stream), and the descriptors that came with them (close-on-exec).
    /// More descriptors than `maxDescriptors` in one message: EMSGSIZE, all of them closed.
    package func receive(max: Int) throws(Errno) -> (bytes: [UInt8], descriptors: [FileDescriptor]) {
        var fds = [Int32](repeating: -1, count: Self.maxDescriptors)
        var count: Int32 = 0
        var bytes = [UInt8](repeating: 0, count: Swift.max(1, max))
        let n = try bytes.withUnsafeMutableBufferPointer { buffer throws(Errno) in
            guard let base = buffer.baseAddress else { return 0 }
            return try Self.check(brw_recv_fds(descriptor.rawValue, base, buffer.count, &fds, Int32(Self.maxDescriptors), &count))
        }
        bytes.removeSubrange(n...)
        return (bytes, fds.prefix(Int(count)).map { FileDescriptor(rawValue: $0) })
    }

    /// Who connected, as the kernel recorded it at connect(): pid, uid, gid
    /// (SO_PEERCRED) and the supplementary groups (SO_PEERGROUPS).
    package func peer() throws(Errno) -> (pid: Int32, uid: UInt32, gid: UInt32, groups: [UInt32]) {
        var (pid, uid, gid): (Int32, UInt32, UInt32) = (0, 0, 0)
        _ = try Self.check(Int(brw_peer_credentials(descriptor.rawValue, &pid, &uid, &gid)))
        var groups = [UInt32](repeating: 0, count: 256)
        var n = Int(brw_peer_groups(descriptor.rawValue, &groups, Int32(groups.count)))
        if n == -Int(ERANGE) {
            // NGROUPS_MAX is 65536.
            groups = [UInt32](repeating: 0, count: 65536)
            n = Int(brw_peer_groups(descriptor.rawValue, &groups, Int32(groups.count)))
        }
        return (pid, uid, gid, Array(groups.prefix(try Self.check(n))))
    }

    /// Receive and send timeouts (nil: none): a blocked call then fails with EAGAIN.
    package func setTimeouts(receive: Duration?, send: Duration?) throws(Errno) {
        func ms(_ d: Duration?) -> Int32 {
            guard let d else { return 0 }
            return Int32(clamping: max(1, d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000))
        }
        _ = try Self.check(Int(brw_socket_timeouts(descriptor.rawValue, ms(receive), ms(send))))
    }

    /// Ends both directions (a thread blocked reading it wakes with end of stream).
    package func shutdown() { _ = Glibc.shutdown(descriptor.rawValue, Int32(SHUT_RDWR)) }

    package func close() { try? descriptor.close() }
}
