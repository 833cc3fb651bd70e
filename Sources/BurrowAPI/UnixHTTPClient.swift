#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A small blocking HTTP/1.1 client for burrowd's Unix socket: one request
/// per connection (`Connection: close`), bodies by Content-Length or chunked,
/// and chunked bodies passed on as they arrive (NDJSON streams). The
/// exchange itself (`exchange`) also serves `burrow --url` over TLS.
package struct UnixHTTPClient: Sendable {
    package var socketPath: String

    package init(socketPath: String) { self.socketPath = socketPath }

    package struct Response: Sendable {
        package var status: Int
        package var headers: [(name: String, value: String)]
        package var body: [UInt8]

        package func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    }

    package struct Failure: Error, CustomStringConvertible {
        package var description: String
        /// Whether any of the request may have reached burrowd: false when
        /// it failed to connect (or, over TLS, to finish the handshake), so
        /// sending it elsewhere cannot do it twice.
        package var sent: Bool

        package init(description: String, sent: Bool = true) {
            self.description = description
            self.sent = sent
        }
    }

    /// Sends one request. `onBody` (if given) receives a 2xx body as it
    /// arrives, and `Response.body` stays empty; other bodies (errors) are
    /// always in `Response.body`.
    package func send(
        _ method: String, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = [], onBody: (([UInt8]) -> Void)? = nil
    ) throws(Failure) -> Response {
        let fd = try connect()
        defer { close(fd) }
        return try Self.exchange(
            method, path, body: body, headers: headers, onBody: onBody, peer: socketPath,
            write: { bytes throws(Failure) in try writeAll(fd, bytes) },
            read: { chunk throws(Failure) in
                while true {
                    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n < 0 && errno == EINTR { continue }
                    guard n >= 0 else { throw Failure(description: "reading the response: \(String(cString: strerror(errno)))") }
                    return n
                }
            })
    }

    /// One HTTP/1.1 exchange over a connection given by its `write` and
    /// `read` (which fills the front of its buffer and returns how much, 0
    /// at the end): the Unix socket's, or a TLS connection's (`burrow
    /// --url`). `peer` names the other end in errors.
    package static func exchange(
        _ method: String, _ path: String, host: String = "burrowd", body: [UInt8]?, headers: [(String, String)], onBody: (([UInt8]) -> Void)?, peer: String,
        write: ([UInt8]) throws(Failure) -> Void, read: @escaping (inout [UInt8]) throws(Failure) -> Int
    ) throws(Failure) -> Response {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        head += "\r\n"
        try write(Array(head.utf8) + (body ?? []))

        var reader = Reader(read: read)
        guard let statusLine = try reader.line(), statusLine.hasPrefix("HTTP/1.") else {
            throw Failure(description: "burrowd sent no HTTP response on \(peer)")
        }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure(description: "burrowd sent a malformed status line: \(statusLine)") }
        var response = Response(status: status, headers: [], body: [])
        while let line = try reader.line(), !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { continue }
            response.headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingSpaces))
        }
        let deliver: ([UInt8]) -> Void = { bytes in
            if let onBody, (200..<300).contains(status) { onBody(bytes) } else { response.body += bytes }
        }
        if response.header("transfer-encoding")?.lowercased() == "chunked" {
            while true {
                guard let sizeLine = try reader.line(), let size = Int(sizeLine.split(separator: ";")[0].trimmingSpaces, radix: 16) else {
                    throw Failure(description: "burrowd ended the response mid-stream")
                }
                if size == 0 { break }
                deliver(try reader.bytes(size))
                _ = try reader.line()
            }
        } else if let length = response.header("content-length").flatMap({ Int($0) }) {
            if length > 0 { deliver(try reader.bytes(length)) }
        } else {
            deliver(try reader.rest())
        }
        return response
    }

    private func connect() throws(Failure) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))", sent: false) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw Failure(description: "the socket path is too long: \(socketPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in path.enumerated() { buffer[i] = byte }
        }
        let rc = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            let hint =
                e == ENOENT || e == ECONNREFUSED
                ? " (is burrowd running? `systemctl status burrowd`)" : e == EACCES ? " (only root and the socket's group may connect)" : ""
            throw Failure(description: "cannot connect to burrowd at \(socketPath): \(String(cString: strerror(e)))\(hint)", sent: false)
        }
        return fd
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "writing the request: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// Buffered reads from the connection.
    private struct Reader {
        let read: (inout [UInt8]) throws(Failure) -> Int
        var buffer: [UInt8] = []
        var start = 0
        var eof = false
        var chunk = [UInt8](repeating: 0, count: 64 << 10)

        init(read: @escaping (inout [UInt8]) throws(Failure) -> Int) { self.read = read }

        mutating func fill() throws(Failure) {
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            let n = try read(&chunk)
            if n == 0 { eof = true } else { buffer += chunk[0..<n] }
        }

        /// The next CRLF-terminated line without its terminator; nil at EOF.
        mutating func line() throws(Failure) -> String? {
            while true {
                if let i = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    var end = i
                    if end > start && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                    let text = String(decoding: buffer[start..<end], as: UTF8.self)
                    start = i + 1
                    return text
                }
                if eof { return nil }
                try fill()
            }
        }

        mutating func bytes(_ count: Int) throws(Failure) -> [UInt8] {
            while buffer.count - start < count {
                if eof { throw Failure(description: "burrowd ended the response early") }
                try fill()
            }
            let out = Array(buffer[start..<(start + count)])
            start += count
            return out
        }

        mutating func rest() throws(Failure) -> [UInt8] {
            while !eof { try fill() }
            return Array(buffer[start...])
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
