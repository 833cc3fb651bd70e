package import BurrowPolicy

/// What a tool asked the proxy for, parsed from the first bytes of a connection.
package enum EgressRequest: Equatable {
    /// HTTP CONNECT host:port: a tunnel, answered `200` once connected.
    case connect(host: String, port: UInt16)
    /// A plain-HTTP request in absolute form: forwarded as `head` (origin form,
    /// proxy headers dropped, `Connection: close`).
    case forward(host: String, port: UInt16, head: [UInt8])
    /// SOCKS5 CONNECT: `reply` answers the greeting; the request's own answer comes once connected.
    case socks(host: String, port: UInt16)

    var protocolName: String {
        switch self {
        case .connect: "http-connect"
        case .forward: "http"
        case .socks: "socks5"
        }
    }

    var host: String {
        switch self {
        case .connect(let h, _), .forward(let h, _, _), .socks(let h, _): h
        }
    }

    var port: UInt16 {
        switch self {
        case .connect(_, let p), .forward(_, let p, _), .socks(_, let p): p
        }
    }
}

/// Incremental parsing of a connection's opening bytes.
package enum EgressParser {
    /// The largest request head the proxy reads (HTTP headers, SOCKS messages).
    package static let maxHead = 16 * 1024

    package enum Step: Equatable {
        /// More bytes are needed.
        case more
        /// Send `reply` to the client and keep parsing what follows `consumed` bytes (the SOCKS greeting).
        case reply([UInt8], consumed: Int)
        /// A complete request; `consumed` bytes were its head, the rest belongs to the destination.
        case request(EgressRequest, consumed: Int)
        /// Refused before any decision: reply (may be empty), then close.
        case fail(EgressRefusal, reply: [UInt8])
    }

    /// - Parameter greeted: the SOCKS5 greeting was already answered.
    package static func parse(_ buffer: [UInt8], greeted: Bool) -> Step {
        guard let first = buffer.first else { return .more }
        switch first {
        case 0x05: return greeted ? socksRequest(buffer) : socksGreeting(buffer)
        case 0x04: return .fail(.unsupported("SOCKS4"), reply: [0, 0x5b, 0, 0, 0, 0, 0, 0])
        default: return http(buffer)
        }
    }

    // MARK: SOCKS5 (RFC 1928)

    private static func socksGreeting(_ b: [UInt8]) -> Step {
        guard b.count >= 2 else { return .more }
        let count = Int(b[1])
        guard b.count >= 2 + count else { return .more }
        guard b[2..<(2 + count)].contains(0x00) else {
            return .fail(.protocolError("the SOCKS5 client offers no 'no authentication' method"), reply: [5, 0xff])
        }
        return .reply([5, 0], consumed: 2 + count)
    }

    /// The reply to a SOCKS5 request: `code` 0 success, 2 not allowed, 4 unreachable, 5 refused, 7/8 unsupported.
    static func socksReply(_ code: UInt8) -> [UInt8] { [5, code, 0, 1, 0, 0, 0, 0, 0, 0] }

    private static func socksRequest(_ b: [UInt8]) -> Step {
        guard b.count >= 5 else { return .more }
        guard b[1] == 1 else {
            return .fail(.unsupported(b[1] == 2 ? "SOCKS5 BIND" : b[1] == 3 ? "SOCKS5 UDP ASSOCIATE" : "SOCKS5 command \(b[1])"), reply: socksReply(7))
        }
        let host: String
        let end: Int
        switch b[3] {
        case 1:
            end = 4 + 4
            guard b.count >= end + 2 else { return .more }
            host = b[4..<8].map(String.init).joined(separator: ".")
        case 3:
            let length = Int(b[4])
            end = 5 + length
            guard b.count >= end + 2 else { return .more }
            guard length > 0, let name = String(validating: b[5..<end], as: UTF8.self) else {
                return .fail(.malformedHost("(\(length) bytes that are not UTF-8)"), reply: socksReply(2))
            }
            host = name
        case 4:
            end = 4 + 16
            guard b.count >= end + 2 else { return .more }
            host = "[" + IPAddress.v6(Array(b[4..<end])).description + "]"
        default:
            return .fail(.unsupported("SOCKS5 address type \(b[3])"), reply: socksReply(8))
        }
        let port = UInt16(b[end]) << 8 | UInt16(b[end + 1])
        return .request(.socks(host: host, port: port), consumed: end + 2)
    }

    // MARK: HTTP

    static func httpReply(_ status: Int, _ reason: String, refusal: EgressRefusal? = nil, message: String) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
        if let refusal { head += "X-Burrow-Refusal: \(refusal.code)\r\n" }
        let body = "burrow egress proxy: \(message)\n"
        head += "Content-Length: \(body.utf8.count)\r\n\r\n"
        return Array((head + body).utf8)
    }

    static let connectEstablished = Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)

    private static func http(_ b: [UInt8]) -> Step {
        guard let headEnd = find(b, [13, 10, 13, 10]) else {
            if b.count > maxHead { return badRequest("the request head is larger than \(maxHead) bytes", status: 431, reason: "Request Header Fields Too Large") }
            return .more
        }
        guard let text = String(validating: b[..<headEnd], as: UTF8.self) else { return badRequest("the request head is not UTF-8") }
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard requestLine.count == 3, requestLine[2] == "HTTP/1.1" || requestLine[2] == "HTTP/1.0", !requestLine[0].isEmpty,
            requestLine[0].utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5a })
        else { return badRequest("malformed request line") }
        let (method, target, version) = (requestLine[0], requestLine[1], requestLine[2])
        let consumed = headEnd + 4

        if method == "CONNECT" {
            guard let (host, port) = authority(target, defaultPort: nil) else {
                return badRequest("CONNECT needs host:port, got '\(target)'")
            }
            return .request(.connect(host: host, port: port), consumed: consumed)
        }
        guard target.lowercased().hasPrefix("http://") else {
            if target.lowercased().hasPrefix("https://") {
                return badRequest("https:// URLs go through CONNECT (set HTTPS_PROXY), not as a plain request")
            }
            return badRequest("a proxy request needs an absolute http:// URL, got '\(target)'")
        }
        let rest = target.dropFirst(7)
        let slash = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        guard let (host, port) = authority(String(rest[..<slash]), defaultPort: 80) else {
            return badRequest("malformed authority in '\(target)'")
        }
        var path = String(rest[slash...])
        if let hash = path.firstIndex(of: "#") { path = String(path[..<hash]) }
        if path.isEmpty || path.hasPrefix("?") { path = "/" + path }
        // Headers about the hop to the proxy go; the destination hears "close":
        // one request per connection, so every request is decided on its own.
        let dropped: Set<String> = ["proxy-connection", "proxy-authorization", "connection", "keep-alive"]
        var head = "\(method) \(path) \(version)\r\n"
        var hasHost = false
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return badRequest("malformed header line") }
            let name = line[..<colon].lowercased()
            if dropped.contains(name) { continue }
            if name == "host" { hasHost = true }
            head += line + "\r\n"
        }
        if !hasHost { head += "Host: \(String(rest[..<slash]))\r\n" }
        head += "Connection: close\r\n\r\n"
        return .request(.forward(host: host, port: port, head: Array(head.utf8)), consumed: consumed)
    }

    private static func badRequest(_ why: String, status: Int = 400, reason: String = "Bad Request") -> Step {
        .fail(.protocolError(why), reply: httpReply(status, reason, refusal: .protocolError(why), message: why))
    }

    /// host:port or [v6]:port; credentials (`user@`) are refused, not skipped.
    static func authority(_ text: String, defaultPort: UInt16?) -> (String, UInt16)? {
        guard !text.isEmpty, !text.contains("@") else { return nil }
        var host = text
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = String(text[...close])
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        }
        let port: UInt16
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber), let p = UInt16(portText), p > 0 else { return nil }
            port = p
        } else {
            guard let defaultPort else { return nil }
            port = defaultPort
        }
        guard !host.isEmpty else { return nil }
        return (host, port)
    }

    static func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }
}
