import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// burrow-spawner treats what arrives on its socket as untrusted: a malformed
/// message gets EPROTO (or EMSGSIZE) and the helper keeps serving; it exits
/// when its caller closes the socket.
@Suite("burrow-spawner protocol")
struct SpawnerTests {
    /// Starts the helper with one end of a SEQPACKET pair as its fd 3.
    func start() throws -> (socket: Int32, pid: pid_t) {
        var fds: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        var pid: pid_t = 0
        let path = Subprocess.productsDirectory + "/burrow-spawner"
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        defer { free(argv[0]) }
        let envp: [UnsafeMutablePointer<CChar>?] = [nil]
        try #require(posix_spawn(&pid, path, &actions, nil, argv, envp) == 0, "cannot start \(path)")
        close(fds[1])
        return (fds[0], pid)
    }

    /// Sends `bytes` and reads the reply: (errno, pid) and how many descriptors came with it.
    func exchange(_ socket: Int32, _ bytes: [UInt8]) -> (err: Int32, descriptors: Int)? {
        guard bytes.withUnsafeBytes({ send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else { return nil }
        var reply = [Int32](repeating: 0, count: 4)
        var control = [UInt8](repeating: 0, count: 64)
        var n = 0
        var descriptors = 0
        reply.withUnsafeMutableBytes { r in
            control.withUnsafeMutableBytes { c in
                var iov = iovec(iov_base: r.baseAddress, iov_len: r.count)
                withUnsafeMutablePointer(to: &iov) { iovp in
                    var msg = msghdr()
                    msg.msg_iov = iovp
                    msg.msg_iovlen = 1
                    msg.msg_control = c.baseAddress
                    msg.msg_controllen = c.count
                    n = recvmsg(socket, &msg, 0)
                    descriptors = msg.msg_controllen > 0 ? 1 : 0
                }
            }
        }
        return n == 16 ? (reply[0], descriptors) : nil
    }

    @Test("malformed plans are refused one by one; the helper keeps serving and exits on EOF")
    func malformed() throws {
        let (socket, pid) = try start()
        defer { close(socket) }
        var header: [UInt8] = [0x50, 0x57, 0x52, 0x42] + [0, 0, 0, 0] + [UInt8](repeating: 0, count: 8)  // magic "BRWP", 0 fds, size 0
        let cases: [(String, [UInt8])] = [
            ("one byte", [1]),
            ("noise", (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }),
            ("a header whose size disagrees", header + [UInt8](repeating: 0, count: 2048)),
        ]
        for (name, bytes) in cases {
            let reply = exchange(socket, bytes)
            #expect(reply?.err == EPROTO && reply?.descriptors == 0, "\(name): \(String(describing: reply))")
        }
        // A header claiming descriptors that did not come, with a matching size.
        let size = UInt64(16 + 2048)
        header = [0x50, 0x57, 0x52, 0x42] + [3, 0, 0, 0] + withUnsafeBytes(of: size.littleEndian, Array.init)
        #expect(exchange(socket, header + [UInt8](repeating: 0xff, count: 2048))?.err == EPROTO)
        // A right header over a plan of 0xff: every offset, count and descriptor index out of range.
        header = [0x50, 0x57, 0x52, 0x42] + [0, 0, 0, 0] + withUnsafeBytes(of: size.littleEndian, Array.init)
        #expect(exchange(socket, header + [UInt8](repeating: 0xff, count: 2048))?.err == EPROTO)
        // The same with small counts and offsets (0x01 bytes): still refused, never a crash.
        #expect(exchange(socket, header + [UInt8](repeating: 0x01, count: 2048))?.err == EPROTO)
        shutdown(socket, Int32(SHUT_WR))
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
        #expect(status & 0x7f == 0, "it exited rather than crashed (status \(status))")
    }
}
