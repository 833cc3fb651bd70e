// burrow-egress-bench: the egress proxy engine against direct connections on
// this host's loopback (Scripts/bench-net.sh runs it). Three measurements:
//   latency     connect, one byte each way, close: direct vs through CONNECT
//               (the proxy's accept, request parse, policy, resolution of a
//               name, connect and relay setup are all inside the difference)
//   throughput  one connection receiving BYTES: direct vs through the proxy
//   fairness    a second sandbox's latency while the first streams flat out
//               through the same proxy thread
// Prints one human line per result and a final `json:` line.
import BurrowEgress
import BurrowPolicy
import BurrowProfile
import BurrowSystem
import Foundation
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

func fail(_ message: String) -> Never {
    let text = "burrow-egress-bench: \(message)\n"
    _ = write(2, text, text.utf8.count)
    exit(1)
}

func listener(nonBlocking: Bool) -> (Int32, UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0, listen(fd, 1024) == 0, let port = Net.address(of: fd, peer: false)?.port else { fail("cannot listen: \(errno)") }
    return (fd, port)
}

func dial(_ port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    if rc != 0 { fail("connect to \(port): \(errno)") }
    return fd
}

func sendAll(_ fd: Int32, _ bytes: [UInt8]) {
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { return }
        off += n
    }
}

/// Reads up to and including "\r\n\r\n" (the proxy's CONNECT answer).
func readHead(_ fd: Int32) {
    var window: [UInt8] = []
    var byte: UInt8 = 0
    while recv(fd, &byte, 1, 0) == 1 {
        window.append(byte)
        if window.suffix(4) == [13, 10, 13, 10] { return }
    }
    fail("the proxy closed the tunnel")
}

/// The destination: 'E' answers one byte; 'S' + 8-byte count streams that many bytes.
func serve(_ fd: Int32) {
    let chunk = [UInt8](repeating: 0x5a, count: 1 << 20)
    try? Kernel.detachedThread {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 { continue }
            try? Kernel.detachedThread {
                var mode: UInt8 = 0
                guard recv(c, &mode, 1, 0) == 1 else {
                    close(c)
                    return
                }
                if mode == UInt8(ascii: "E") {
                    sendAll(c, [1])
                } else {
                    var count: UInt64 = 0
                    _ = withUnsafeMutableBytes(of: &count) { recv(c, $0.baseAddress, 8, Int32(MSG_WAITALL)) }
                    var left = count
                    while left > 0 {
                        let n = chunk.withUnsafeBytes { send(c, $0.baseAddress, Int(min(UInt64($0.count), left)), Int32(MSG_NOSIGNAL)) }
                        if n <= 0 { break }
                        left -= UInt64(n)
                    }
                }
                close(c)
            }
        }
    }
}

/// The reference relay: the least a user-space relay can do, to show where
/// the ceiling is on this host. One thread per direction, splice(2) through
/// a 1 MiB pipe, blocking on poll(2) only when a side is not ready; no
/// request to parse, no policy, no accounting. It tunnels straight to `port`.
func referenceRelay(to port: UInt16) -> UInt16 {
    let (fd, relayPort) = listener(nonBlocking: false)
    @Sendable func pump(_ src: Int32, _ dst: Int32) {
        guard let (r, w) = try? Net.relayPipe(size: 1 << 20) else { fail("pipe") }
        func wait(_ fd: Int32, _ events: Int16) {
            var p = pollfd(fd: fd, events: events, revents: 0)
            _ = poll(&p, 1, -1)
        }
        loop: while true {
            var inPipe = 0
            do throws(Errno) {
                inPipe = try Net.splice(from: src, to: w, max: 1 << 20)
            } catch {
                if error == .resourceTemporarilyUnavailable {
                    wait(src, Int16(POLLIN))
                    continue
                }
                break
            }
            if inPipe == 0 { break }
            while inPipe > 0 {
                do throws(Errno) {
                    inPipe -= try Net.splice(from: r, to: dst, max: inPipe)
                } catch {
                    if error == .resourceTemporarilyUnavailable {
                        wait(dst, Int16(POLLOUT))
                        continue
                    }
                    break loop
                }
            }
        }
        shutdown(dst, Int32(SHUT_WR))
        close(r)
        close(w)
    }
    try! Kernel.detachedThread {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 { continue }
            let upstream = dial(port)
            let closed = Atomic<Int>(0)
            for (src, dst) in [(client, upstream), (upstream, client)] {
                try! Kernel.detachedThread {
                    pump(src, dst)
                    if closed.add(1, ordering: .acquiringAndReleasing).newValue == 2 {
                        close(client)
                        close(upstream)
                    }
                }
            }
        }
    }
    return relayPort
}

struct Target {
    let port: UInt16
    /// nil: direct; else the proxy's port, and the destination is asked for by name.
    let proxy: UInt16?

    func open() -> Int32 {
        guard let proxy else { return dial(port) }
        let fd = dial(proxy)
        sendAll(fd, Array("CONNECT localhost:\(port) HTTP/1.1\r\n\r\n".utf8))
        readHead(fd)
        return fd
    }
}

func latencies(_ target: Target, count: Int) -> [Double] {
    var out: [Double] = []
    for _ in 0..<count {
        let start = Kernel.monotonicNanoseconds()
        let fd = target.open()
        sendAll(fd, [UInt8(ascii: "E")])
        var b: UInt8 = 0
        guard recv(fd, &b, 1, 0) == 1 else { fail("no answer") }
        close(fd)
        out.append(Double(Kernel.monotonicNanoseconds() - start) / 1e6)
    }
    return out.sorted()
}

/// Bytes per second receiving `bytes` on one connection.
func throughput(_ target: Target, bytes: UInt64) -> Double {
    let start = Kernel.monotonicNanoseconds()
    let fd = target.open()
    var request = [UInt8(ascii: "S")]
    withUnsafeBytes(of: bytes) { request += $0 }
    sendAll(fd, request)
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    var got: UInt64 = 0
    while got < bytes {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        got += UInt64(n)
    }
    close(fd)
    guard got == bytes else { fail("received \(got) of \(bytes) bytes") }
    return Double(bytes) / (Double(Kernel.monotonicNanoseconds() - start) / 1e9)
}

func percentile(_ sorted: [Double], _ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }

var samples = 2000
var megabytes: UInt64 = 2048
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--samples": samples = Int(args.popFirst() ?? "") ?? samples
    case "--megabytes": megabytes = UInt64(args.popFirst() ?? "") ?? megabytes
    default: fail("usage: burrow-egress-bench [--samples N] [--megabytes M]")
    }
}

let (serverFD, serverPort) = listener(nonBlocking: false)
serve(serverFD)
let proxy: EgressProxy
do { proxy = try EgressProxy.shared() } catch { fail("\(error)") }
// localhost resolves to loopback: the allowlist names it and its range, as an operator must.
let targets = try! ["localhost:\(serverPort)", "127.0.0.1/32:\(serverPort)", "[::1]:\(serverPort)"].map { try NetworkTarget.parse($0).get() }
func session() -> (EgressSession, UInt16) {
    let (fd, port) = listener(nonBlocking: true)
    let egress = NetworkPlan.Egress(targets: targets, maxConnections: 64, maxBytes: nil, connectTimeoutMilliseconds: 5000, idleTimeoutMilliseconds: 60_000)
    return (try! proxy.serve(listener: FileDescriptor(rawValue: fd), egress: egress) { _ in }, port)
}
let (a, aPort) = session()
let (b, bPort) = session()
let direct = Target(port: serverPort, proxy: nil)
let viaA = Target(port: serverPort, proxy: aPort)
let viaB = Target(port: serverPort, proxy: bPort)

_ = latencies(direct, count: 100)
_ = latencies(viaA, count: 100)
let directLatency = latencies(direct, count: samples)
let proxyLatency = latencies(viaA, count: samples)
let added = percentile(proxyLatency, 0.5) - percentile(directLatency, 0.5)
print(
    String(
        format: "latency     direct p50 %.3f ms p99 %.3f ms | proxy p50 %.3f ms p99 %.3f ms | added p50 %.3f ms (target <= 1 ms)",
        percentile(directLatency, 0.5), percentile(directLatency, 0.99), percentile(proxyLatency, 0.5), percentile(proxyLatency, 0.99), added))

let bytes = megabytes << 20
let reference = Target(port: referenceRelay(to: serverPort), proxy: nil)
_ = throughput(direct, bytes: 64 << 20)
_ = throughput(viaA, bytes: 64 << 20)
_ = throughput(reference, bytes: 64 << 20)
var directRates: [Double] = []
var proxyRates: [Double] = []
var referenceRates: [Double] = []
for _ in 0..<3 {
    directRates.append(throughput(direct, bytes: bytes))
    proxyRates.append(throughput(viaA, bytes: bytes))
    referenceRates.append(throughput(reference, bytes: bytes))
}
let directRate = directRates.sorted()[1]
let proxyRate = proxyRates.sorted()[1]
let referenceRate = referenceRates.sorted()[1]
print(
    String(
        format: "throughput  direct %.0f MB/s | proxy %.0f MB/s | %.0f%% of direct (target >= 80%%), median of 3 x %llu MiB",
        directRate / 1e6, proxyRate / 1e6, 100 * proxyRate / directRate, megabytes))
print(
    String(
        format: "            reference relay (thread per direction, splice, no policy) %.0f MB/s | %.0f%% of direct; the proxy moves %.0f%% of what it does",
        referenceRate / 1e6, 100 * referenceRate / directRate, 100 * proxyRate / referenceRate))

// Fairness: sandbox A streams without pause while sandbox B measures.
let streaming = Atomic<Bool>(true)
let streamed = Atomic<UInt64>(0)
let streamerDone = Atomic<Bool>(false)
try! Kernel.detachedThread {
    while streaming.load(ordering: .relaxed) {
        _ = throughput(viaA, bytes: 256 << 20)
        streamed.add(256 << 20, ordering: .relaxed)
    }
    streamerDone.store(true, ordering: .releasing)
}
usleep(200_000)
let busyLatency = latencies(viaB, count: max(200, samples / 4))
streaming.store(false, ordering: .relaxed)
// The stream's last transfer ends before B is measured quiet, and before
// session A is finished: finishing it ends its tunnels, and would cut the
// transfer short (which this benchmark reports as a failure).
while !streamerDone.load(ordering: .acquiring) { usleep(10_000) }
let quietB = latencies(viaB, count: max(200, samples / 4))
print(
    String(
        format: "fairness    sandbox B p50 %.3f ms p99 %.3f ms while sandbox A streams (%.1f GiB moved) | quiet p50 %.3f ms p99 %.3f ms",
        percentile(busyLatency, 0.5), percentile(busyLatency, 0.99), Double(streamed.load(ordering: .relaxed)) / Double(1 << 30),
        percentile(quietB, 0.5), percentile(quietB, 0.99)))
_ = a.finish()
_ = b.finish()
print(
    String(
        format:
            "json: {\"addedP50Ms\": %.4f, \"directP50Ms\": %.4f, \"proxyP50Ms\": %.4f, \"proxyP99Ms\": %.4f, \"directMBps\": %.1f, \"proxyMBps\": %.1f, \"referenceMBps\": %.1f, \"busyP50Ms\": %.4f, \"busyP99Ms\": %.4f, \"quietP50Ms\": %.4f, \"quietP99Ms\": %.4f}",
        added, percentile(directLatency, 0.5), percentile(proxyLatency, 0.5), percentile(proxyLatency, 0.99), directRate / 1e6, proxyRate / 1e6, referenceRate / 1e6,
        percentile(busyLatency, 0.5), percentile(busyLatency, 0.99), percentile(quietB, 0.5), percentile(quietB, 0.99)))
