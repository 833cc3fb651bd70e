import BurrowEgress
import BurrowPolicy
import BurrowProfile
import BurrowSystem
import Synchronization
import SystemPackage
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The proxy engine on this host's loopback: a listener of the test's own
/// (standing in for the one inside a sandbox's namespace), an echo server as
/// the destination, and raw-socket clients, so every byte is checked.
@Suite("Egress proxy engine", .serialized)
struct EgressProxyTests {
    @Test func connectTunnelRelaysBothWaysAndCountsBytes() throws {
        let echo = try EchoServer()
        let proxy = try Harness(["127.0.0.1:\(echo.port)"])
        let c = try proxy.client()
        try c.send("CONNECT 127.0.0.1:\(echo.port) HTTP/1.1\r\nHost: 127.0.0.1:\(echo.port)\r\n\r\n")
        let payload = [UInt8]((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        #expect(try c.receive(until: "\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        try c.send(payload)
        c.shutdownWrite()
        #expect(try c.receiveAll() == payload, "1 MiB echoed unchanged through the tunnel")
        c.close()
        let summary = proxy.finish()
        let record = try #require(proxy.records.first)
        #expect(record.outcome == .closed(reason: "closed"))
        #expect(record.protocolName == "http-connect" && record.address == "127.0.0.1" && record.port == echo.port)
        #expect(record.bytesOut == UInt64(payload.count) && record.bytesIn == UInt64(payload.count))
        #expect(summary.allowed == 1 && summary.bytesOut == UInt64(payload.count))
    }

    @Test func plainHTTPIsRewrittenToOriginFormWithoutProxyHeaders() throws {
        let echo = try EchoServer()
        let proxy = try Harness(["127.0.0.1:\(echo.port)"])
        let c = try proxy.client()
        try c.send(
            "GET http://127.0.0.1:\(echo.port)/a/b?q=1#frag HTTP/1.1\r\nHost: 127.0.0.1:\(echo.port)\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nUser-Agent: t\r\n\r\n")
        c.shutdownWrite()
        let echoed = String(decoding: try c.receiveAll(), as: UTF8.self)
        #expect(echoed.hasPrefix("GET /a/b?q=1 HTTP/1.1\r\n"), "\(echoed)")
        #expect(echoed.contains("User-Agent: t\r\n") && echoed.contains("Connection: close\r\n"))
        #expect(!echoed.lowercased().contains("proxy-"))
        _ = proxy.finish()
        #expect(proxy.records.first?.protocolName == "http")
    }

    @Test func socks5ConnectsByAddressAndByName() throws {
        let echo = try EchoServer()
        // localhost resolves to loopback: only explicit ranges allow that.
        let proxy = try Harness(["127.0.0.1:\(echo.port)", "localhost:\(echo.port)", "127.0.0.0/8:\(echo.port)", "[::1]:\(echo.port)"])
        for request in [[UInt8]([5, 1, 0, 1, 127, 0, 0, 1]), [5, 1, 0, 3, 9] + Array("localhost".utf8)] {
            let c = try proxy.client()
            try c.send([5, 1, 0])
            #expect(try c.receive(count: 2) == [5, 0])
            try c.send(request + [UInt8(echo.port >> 8), UInt8(echo.port & 0xff)])
            #expect(try c.receive(count: 10).prefix(2) == [5, 0])
            try c.send("ping")
            c.shutdownWrite()
            #expect(String(decoding: try c.receiveAll(), as: UTF8.self) == "ping")
            c.close()
        }
        let summary = proxy.finish()
        #expect(summary.allowed == 2, "\(proxy.records)")
        #expect(proxy.records.allSatisfy { $0.protocolName == "socks5" })
    }

    @Test func refusalsAnswerTheToolAndAreRecorded() throws {
        let echo = try EchoServer()
        // The host's loopback by name, and no address entry: literal
        // addresses of it are refused. (A name that *resolves* to a special
        // address is EgressRulesTests' case: no name here does so reliably.)
        let proxy = try Harness(["localhost:\(echo.port)"])
        let cases: [(String, String, String)] = [
            ("CONNECT other.example:443 HTTP/1.1\r\n\r\n", "403", "host_not_allowed"),
            ("CONNECT localhost:1 HTTP/1.1\r\n\r\n", "403", "port_not_allowed"),
            ("CONNECT 2130706433:\(echo.port) HTTP/1.1\r\n\r\n", "403", "host_not_allowed"),
            ("CONNECT [::ffff:127.0.0.1]:\(echo.port) HTTP/1.1\r\n\r\n", "403", "host_not_allowed"),
            ("CONNECT exa_mple.com:80 HTTP/1.1\r\n\r\n", "400", "malformed_host"),
            ("GET http://127.0.0.1:\(echo.port)@evil.example/ HTTP/1.1\r\n\r\n", "400", "protocol_error"),
            ("GET https://127.0.0.1:\(echo.port)/ HTTP/1.1\r\n\r\n", "400", "protocol_error"),
        ]
        for (request, status, code) in cases {
            let c = try proxy.client()
            try c.send(request)
            let head = try c.receive(until: "\r\n\r\n")
            #expect(head.hasPrefix("HTTP/1.1 \(status)"), "\(request): \(head)")
            #expect(head.contains("X-Burrow-Refusal: \(code)"), "\(request): \(head)")
            c.close()
        }
        let summary = proxy.finish()
        let refused = proxy.records.compactMap { r -> String? in
            if case .refused(let why) = r.outcome { return why.code }
            return nil
        }
        #expect(refused == cases.map(\.2))
        #expect(summary.refused == cases.count && summary.allowed == 0)
        #expect(proxy.records[2].host == "127.0.0.1", "2130706433 is read as the address it is")
    }

    @Test("a localhost grant reaches the host's loopback through the proxy, by any spelling of the name, without a lookup")
    func localhostGrantReachesTheHostLoopback() throws {
        let echo = try EchoServer()
        let proxy = try Harness(["localhost:\(echo.port)"])
        for name in ["localhost", "LOCALHOST."] {
            let c = try proxy.client()
            try c.send("CONNECT \(name):\(echo.port) HTTP/1.1\r\n\r\n")
            #expect(try c.receive(until: "\r\n\r\n").hasPrefix("HTTP/1.1 200"), "\(name)")
            try c.send("ping")
            c.shutdownWrite()
            #expect(String(decoding: try c.receiveAll(), as: UTF8.self) == "ping")
            c.close()
        }
        let summary = proxy.finish()
        #expect(summary.allowed == 2, "\(proxy.records)")
        #expect(proxy.records.allSatisfy { $0.host == "localhost" && $0.address == "127.0.0.1" }, "\(proxy.records)")
    }

    @Test func aThousandConnectionsAreBoundedAndNothingLeaks() throws {
        let echo = try EchoServer()
        let baseline = openDescriptors()
        let proxy = try Harness(["127.0.0.1:\(echo.port)"], maxConnections: 8)
        var clients: [Client] = []
        for _ in 0..<1000 { clients.append(try proxy.client()) }
        // The proxy accepts as fast as it can; wait until every connection was seen.
        let deadline = Kernel.monotonicNanoseconds() + 10_000_000_000
        while proxy.records.count < 992 && Kernel.monotonicNanoseconds() < deadline { usleep(10_000) }
        #expect(proxy.records.count == 992, "every connection past the 8th refused")
        #expect(proxy.records.allSatisfy { $0.outcome == .refused(.connectionLimit(8)) })
        for c in clients { c.close() }
        let summary = proxy.finish()
        #expect(summary.peakConnections == 8)
        #expect(openDescriptors() <= baseline + 2, "descriptors before \(baseline), after \(openDescriptors())")
    }

    @Test func theByteBudgetCutsEveryConnection() throws {
        let echo = try EchoServer()
        let proxy = try Harness(["127.0.0.1:\(echo.port)"], maxBytes: 100_000)
        let c = try proxy.client()
        try c.send("CONNECT 127.0.0.1:\(echo.port) HTTP/1.1\r\n\r\n")
        _ = try c.receive(until: "\r\n\r\n")
        _ = try? c.send([UInt8](repeating: 1, count: 1 << 20))
        let got = (try? c.receiveAll()) ?? []
        #expect(got.count <= 100_000)
        let summary = proxy.finish()
        #expect(summary.budgetExhausted == 100_000)
        #expect(summary.bytesOut + summary.bytesIn <= 100_000)
        // New connections after the budget is spent are refused.
        #expect(proxy.records.contains { if case .closed(let r) = $0.outcome { return r.contains("budget") } else { return false } })
    }

    @Test func theRequestHeadCountsAgainstTheBudget() throws {
        let echo = try EchoServer()
        let proxy = try Harness(["127.0.0.1:\(echo.port)"], maxBytes: 1000)
        let c = try proxy.client()
        // A forwarded request whose head alone is over the budget never reaches the destination.
        try c.send("GET http://127.0.0.1:\(echo.port)/\(String(repeating: "x", count: 4000)) HTTP/1.1\r\n\r\n")
        #expect(((try? c.receiveAll()) ?? []).isEmpty)
        let summary = proxy.finish()
        #expect(summary.budgetExhausted == 1000)
        #expect(summary.bytesOut == 0 && summary.allowed == 0)
    }

    @Test func idleConnectionsAreClosed() throws {
        let echo = try EchoServer()
        let proxy = try Harness(["127.0.0.1:\(echo.port)"], idleMilliseconds: 300)
        let c = try proxy.client()
        try c.send("CONNECT 127.0.0.1:\(echo.port) HTTP/1.1\r\n\r\n")
        _ = try c.receive(until: "\r\n\r\n")
        let start = Kernel.monotonicNanoseconds()
        _ = try? c.receiveAll()  // ends when the proxy closes the idle tunnel
        #expect(Kernel.monotonicNanoseconds() - start < 3_000_000_000)
        _ = proxy.finish()
        #expect(proxy.records.first.map { if case .closed(let r) = $0.outcome { r.hasPrefix("idle") } else { false } } == true)
    }
}

/// One proxy session on a listener of the test's own.
final class Harness: Sendable {
    let port: UInt16
    let session: EgressSession
    private let collected = Records()

    final class Records: Sendable {
        let items = Mutex<[EgressRecord]>([])
    }

    init(_ targets: [String], maxConnections: Int = 64, maxBytes: UInt64? = nil, idleMilliseconds: UInt64 = 60_000) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 1024)
        port = Net.address(of: fd, peer: false)?.port ?? 0
        let egress = NetworkPlan.Egress(
            targets: try targets.map { try NetworkTarget.parse($0).get() }, maxConnections: maxConnections, maxBytes: maxBytes,
            connectTimeoutMilliseconds: 2000, idleTimeoutMilliseconds: idleMilliseconds)
        let collected = self.collected
        session = try EgressProxy.shared().serve(listener: FileDescriptor(rawValue: fd), egress: egress) { r in collected.items.withLock { $0.append(r) } }
    }

    var records: [EgressRecord] { collected.items.withLock { $0 } }

    func finish() -> EgressSummary { session.finish() }

    /// A connected client. A connect refused with a reset (seen under the
    /// whole suite's load, 1,000 connections at once) never reached the
    /// proxy's accept, so it is tried again; anything else is an error.
    func client() throws -> Client {
        for _ in 0..<3 {
            do {
                return try Client(port: port)
            } catch Errno.connectionReset {
                usleep(1000)
            }
        }
        return try Client(port: port)
    }
}

/// A blocking TCP client with a 5 s receive timeout.
/// Its descriptor is closed exactly once (by `close()` or at deinit): a
/// second close would hit a number another test's thread has since opened.
final class Client {
    private(set) var fd: Int32 = -1
    private var leftover: [UInt8] = []

    init(port: UInt16) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc != 0 {
            let error = Errno(rawValue: errno)
            Glibc.close(fd)
            throw error
        }
        self.fd = fd
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { throw Errno(rawValue: errno) }
            offset += n
        }
    }

    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n < 0 { throw Errno(rawValue: errno) }
        leftover += chunk[0..<n]
        return n > 0
    }

    func receive(count: Int) throws -> [UInt8] {
        while leftover.count < count { guard try fill() else { break } }
        let out = Array(leftover.prefix(count))
        leftover.removeFirst(out.count)
        return out
    }

    func receive(until marker: String) throws -> String {
        let m = Array(marker.utf8)
        while true {
            if let i = (0...max(0, leftover.count - m.count)).first(where: { leftover.count >= m.count && Array(leftover[$0..<($0 + m.count)]) == m }) {
                let out = Array(leftover[0..<(i + m.count)])
                leftover.removeFirst(out.count)
                return String(decoding: out, as: UTF8.self)
            }
            guard try fill() else { return String(decoding: leftover, as: UTF8.self) }
        }
    }

    func receiveAll() throws -> [UInt8] {
        while try fill() {}
        defer { leftover = [] }
        return leftover
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
    deinit { close() }
}

/// Echoes each connection's bytes back and closes once the peer has finished sending.
final class EchoServer: Sendable {
    let port: UInt16
    private let fd: Int32
    /// Set when the accept thread has returned: only then is the listener
    /// closed (its number must not be reused under that thread).
    private let acceptEnded = Flag()

    final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(listener, 1024)
        fd = listener
        port = Net.address(of: listener, peer: false)?.port ?? 0
        let ended = acceptEnded
        try Kernel.detachedThread {
            defer { ended.value.store(true, ordering: .releasing) }
            while true {
                let c = accept(listener, nil, nil)
                if c < 0 { return }
                try? Kernel.detachedThread {
                    var chunk = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let n = recv(c, &chunk, chunk.count, 0)
                        if n <= 0 { break }
                        var off = 0
                        while off < n {
                            let w = chunk[off..<n].withUnsafeBytes { Glibc.send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                            if w <= 0 { break }
                            off += w
                        }
                    }
                    Glibc.close(c)
                }
            }
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        // Bounded: a thread that never started never sets it.
        var waited = 0
        while !acceptEnded.value.load(ordering: .acquiring) && waited < 5000 {
            usleep(1000)
            waited += 1
        }
        Glibc.close(fd)
    }
}

func openDescriptors() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return 0 }
    defer { closedir(dir) }
    var count = 0
    while readdir(dir) != nil { count += 1 }
    return count
}
