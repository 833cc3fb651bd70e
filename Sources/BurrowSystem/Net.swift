import CBurrowSystem
package import SystemPackage

/// The calls the egress proxy's event loop makes: epoll, splice and
/// non-blocking TCP. Raw descriptors (Int32): the loop owns and closes them.
package enum Net {
    /// epoll(7) event bits (EPOLLIN, EPOLLOUT, ...: fixed by the kernel ABI).
    package struct Events: OptionSet, Sendable {
        package let rawValue: UInt32
        package init(rawValue: UInt32) { self.rawValue = rawValue }
        package static let readable = Events(rawValue: 0x001)
        package static let writable = Events(rawValue: 0x004)
        package static let error = Events(rawValue: 0x008)
        package static let hangUp = Events(rawValue: 0x010)
        package static let peerClosed = Events(rawValue: 0x2000)
        package static let edgeTriggered = Events(rawValue: 0x8000_0000)
    }

    private static func check(_ rc: Int32) throws(Errno) -> Int32 {
        if rc < 0 { throw Errno(rawValue: -rc) }
        return rc
    }

    package static func epollCreate() throws(Errno) -> Int32 { try check(brw_epoll_create()) }

    package static func watch(_ ep: Int32, _ fd: Int32, _ events: Events, token: UInt64) throws(Errno) {
        _ = try check(brw_epoll_ctl(ep, 1, fd, events.rawValue, token))
    }

    package static func change(_ ep: Int32, _ fd: Int32, _ events: Events, token: UInt64) throws(Errno) {
        _ = try check(brw_epoll_ctl(ep, 3, fd, events.rawValue, token))
    }

    package static func unwatch(_ ep: Int32, _ fd: Int32) {
        _ = brw_epoll_ctl(ep, 2, fd, 0, 0)
    }

    /// Up to `tokens.count` ready descriptors as (token, events).
    package static func wait(_ ep: Int32, tokens: inout [UInt64], events: inout [UInt32], timeoutMilliseconds: Int32) throws(Errno) -> Int {
        let max = Int32(min(tokens.count, events.count))
        return Int(try check(brw_epoll_wait(ep, &tokens, &events, max, timeoutMilliseconds)))
    }

    package static func relayPipe(size: Int32) throws(Errno) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        _ = try check(brw_relay_pipe(&fds, size))
        return (fds[0], fds[1])
    }

    /// Bytes moved, 0 at end of input; throws EAGAIN when nothing can move now.
    package static func splice(from: Int32, to: Int32, max: Int) throws(Errno) -> Int {
        let n = brw_splice(from, to, max)
        if n < 0 { throw Errno(rawValue: Int32(-n)) }
        return n
    }

    package static func accept(_ listener: Int32) throws(Errno) -> Int32 { try check(brw_accept(listener)) }

    /// Starts a non-blocking connection to `address` (4 or 16 bytes).
    package static func connect(_ address: [UInt8], port: UInt16) throws(Errno) -> Int32 {
        try check(brw_tcp_connect(address, Int32(address.count), port))
    }

    /// The outcome of a non-blocking connect: nil once connected.
    package static func pendingError(_ fd: Int32) -> Errno? {
        let e = brw_socket_error(fd)
        return e == 0 ? nil : Errno(rawValue: e)
    }

    package static func shutdownWrite(_ fd: Int32) { _ = brw_shutdown_write(fd) }
    package static func closeWithReset(_ fd: Int32) { brw_close_reset(fd) }

    /// The local (or peer) address and port of a socket: (bytes, port) or nil.
    package static func address(of fd: Int32, peer: Bool) -> (bytes: [UInt8], port: UInt16)? {
        var bytes = [UInt8](repeating: 0, count: 16)
        var port: UInt16 = 0
        let family = brw_socket_address(fd, peer ? 1 : 0, &bytes, &port)
        guard family != 0 else { return nil }
        return (Array(bytes.prefix(family == 4 ? 4 : 16)), port)
    }

    /// Resolves a host name for TCP (both families), in the resolver's order:
    /// the addresses as 4 or 16 bytes, or the resolver's message.
    package static func resolve(_ name: String, max: Int = 16) -> Result<[[UInt8]], ResolveError> {
        var out = [UInt8](repeating: 0, count: 17 * max)
        var count: Int32 = 0
        let rc = brw_resolve(name, &out, Int32(max), &count)
        guard rc == 0 else { return .failure(ResolveError(message: String(cString: brw_resolve_error(rc)))) }
        return .success(
            (0..<Int(count)).map { i in
                let record = out[(17 * i)..<(17 * i + 17)]
                return Array(record.dropFirst().prefix(record.first == 4 ? 4 : 16))
            })
    }

    package struct ResolveError: Error, Sendable {
        package let message: String
    }
}
