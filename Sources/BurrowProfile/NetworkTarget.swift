#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A destination the tool may connect to: `host:port`, `host:low-high`,
/// `*.domain:port` (any subdomain), `192.0.2.7:443`, `[2001:db8::1]:443`, or a
/// network `198.51.100.0/24:443` / `[2001:db8::/32]:443`.
package struct NetworkTarget: Sendable, Hashable, Codable, CustomStringConvertible {
    package enum Host: Sendable, Hashable, Codable {
        /// One DNS name, lowercase, without a trailing dot.
        case name(String)
        /// Any name below this domain (`*.example.com` matches `a.example.com`, not `example.com`).
        case suffix(String)
        /// An IPv4 or IPv6 address literal, in canonical form.
        case address(String)
        /// An address range.
        case network(String, prefix: Int)
    }

    package var host: Host
    package var ports: ClosedRange<UInt16>

    package var description: String {
        let portText = ports.lowerBound == ports.upperBound ? "\(ports.lowerBound)" : "\(ports.lowerBound)-\(ports.upperBound)"
        switch host {
        case .name(let n): return "\(n):\(portText)"
        case .suffix(let d): return "*.\(d):\(portText)"
        case .address(let a): return (a.contains(":") ? "[\(a)]" : a) + ":\(portText)"
        case .network(let a, let p): return (a.contains(":") ? "[\(a)/\(p)]" : "\(a)/\(p)") + ":\(portText)"
        }
    }

    package static func parse(_ text: String) -> Result<NetworkTarget, PatternError> {
        let hostText: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return .failure("expected '[ipv6]:port': '\(text)'")
            }
            hostText = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                return .failure("a network target needs a port: write '\(text):443' (or a range such as '\(text):8000-8100')")
            }
            hostText = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard case .success(let ports) = parsePorts(portText) else {
            return .failure("malformed port '\(portText)' in '\(text)': expected 1-65535 or a range low-high")
        }
        switch parseHost(String(hostText), original: text) {
        case .success(let host): return .success(NetworkTarget(host: host, ports: ports))
        case .failure(let e): return .failure(e)
        }
    }

    static func parsePorts(_ text: Substring) -> Result<ClosedRange<UInt16>, PatternError> {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        let numbers = parts.map { part -> UInt16? in
            guard !part.isEmpty, part.count <= 5, part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber),
                let n = UInt16(part), n > 0, !(part.hasPrefix("0"))
            else { return nil }
            return n
        }
        guard numbers.allSatisfy({ $0 != nil }), let low = numbers.first ?? nil else { return .failure("bad port") }
        let high = (numbers.count == 2 ? numbers[1] : low) ?? low
        guard low <= high else { return .failure("bad range") }
        return .success(low...high)
    }

    static func parseHost(_ host: String, original: String) -> Result<Host, PatternError> {
        if host.isEmpty { return .failure("the host is empty in '\(original)'") }
        if let slash = host.firstIndex(of: "/") {
            let address = String(host[..<slash])
            let prefixText = host[host.index(after: slash)...]
            guard let family = addressFamily(address), let prefix = Int(prefixText), prefixText.allSatisfy(\.isNumber),
                prefix >= 0, prefix <= (family == AF_INET ? 32 : 128)
            else { return .failure("malformed network '\(host)' in '\(original)': expected address/prefix") }
            let canonical = canonicalAddress(address, family: family)
            guard canonical == address else {
                return .failure("network address is not canonical: write '\(canonical)/\(prefix)' in '\(original)'")
            }
            return .success(.network(canonical, prefix: prefix))
        }
        if let family = addressFamily(host) {
            let canonical = canonicalAddress(host, family: family)
            guard canonical == host else {
                return .failure("address is not canonical: write '\(canonical)' in '\(original)'")
            }
            return .success(.address(canonical))
        }
        if host.contains(":") { return .failure("IPv6 addresses go in brackets: '[\(host)]:port'") }
        var name = host
        var isSuffix = false
        if name.hasPrefix("*.") {
            isSuffix = true
            name.removeFirst(2)
        }
        if name.contains("*") {
            return .failure("'*' is only allowed as a whole first label ('*.example.com'): '\(original)'")
        }
        if !name.allSatisfy(\.isASCII) {
            return .failure("host '\(host)' is not ASCII: write its IDNA form (xn--...)")
        }
        if name.hasSuffix(".") { return .failure("host is not normalised: drop the trailing dot in '\(original)'") }
        if name != name.lowercased() {
            return .failure("host is not normalised: write '\(name.lowercased())' in lowercase")
        }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        let labelChars = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        guard name.count <= 253,
            labels.allSatisfy({ !$0.isEmpty && $0.count <= 63 && $0.allSatisfy(labelChars.contains) && !$0.hasPrefix("-") && !$0.hasSuffix("-") })
        else { return .failure("malformed host name '\(host)' in '\(original)'") }
        // Names made only of digits, dots and hex are IP literals in other notations
        // (2130706433, 0x7f.1, 127.1): refuse them rather than guess.
        if let last = labels.last, last.allSatisfy({ $0.isNumber }) || last.hasPrefix("0x") {
            return .failure("'\(host)' looks like an IP address in a non-standard notation: write it in dotted-decimal form")
        }
        if isSuffix && labels.count < 2 {
            return .failure("'*.\(name)' is too broad: name at least a registrable domain such as '*.example.com'")
        }
        return .success(isSuffix ? .suffix(name) : .name(name))
    }
}

extension NetworkTarget {
    /// Why no connection through Burrow's proxy can ever reach this target, or
    /// nil: a name below `.localhost` (loopback, which only a `localhost`
    /// entry reaches), or addresses no TCP connection goes to (this network,
    /// multicast, reserved, unspecified).
    package var neverReachable: String? {
        switch host {
        case .name(let n) where n.hasSuffix(".localhost"), .suffix(let n) where n == "localhost" || n.hasSuffix(".localhost"):
            return "names below .localhost are loopback, which only a 'localhost' entry (or a 127.0.0.1 / [::1] address entry) reaches: write 'localhost:\(portText)'"
        case .address(let a):
            return Self.unconnectable(a, prefix: nil)
        case .network(let a, let prefix):
            return Self.unconnectable(a, prefix: prefix)
        case .name, .suffix:
            return nil
        }
    }

    /// An address entry on the loopback (127.0.0.0/8, ::1): like a
    /// `localhost` grant, it reaches the host's own services.
    package var reachesLoopback: Bool {
        switch host {
        case .address(let a): a.hasPrefix("127.") || a == "::1"
        case .network(let a, _): a.hasPrefix("127.") || a == "::1"
        default: false
        }
    }

    private var portText: String { ports.lowerBound == ports.upperBound ? "\(ports.lowerBound)" : "\(ports.lowerBound)-\(ports.upperBound)" }

    /// A whole network (or one address) inside a range TCP cannot connect to.
    private static func unconnectable(_ address: String, prefix: Int?) -> String? {
        var b = [UInt8](repeating: 0, count: 16)
        if address.contains(":") {
            guard inet_pton(AF_INET6, address, &b) == 1 else { return nil }
            if prefix == nil && b.allSatisfy({ $0 == 0 }) { return "'::' is the unspecified address: no connection goes there" }
            if (prefix ?? 128) >= 8 && b[0] == 0xff { return "ff00::/8 is multicast: TCP cannot connect there" }
            return nil
        }
        guard inet_pton(AF_INET, address, &b) == 1 else { return nil }
        if (prefix ?? 32) >= 8 && b[0] == 0 { return "0.0.0.0/8 is 'this network': no connection goes there" }
        if (prefix ?? 32) >= 4 && b[0] >= 224 && b[0] < 240 { return "224.0.0.0/4 is multicast: TCP cannot connect there" }
        if (prefix ?? 32) >= 4 && b[0] >= 240 { return "240.0.0.0/4 is reserved (and 255.255.255.255 broadcast): TCP cannot connect there" }
        return nil
    }
}

/// AF_INET or AF_INET6 when `text` is a strict address literal, else nil.
func addressFamily(_ text: String) -> Int32? {
    var buffer = [UInt8](repeating: 0, count: 16)
    if text.contains(":") {
        return inet_pton(AF_INET6, text, &buffer) == 1 ? AF_INET6 : nil
    }
    // inet_pton(AF_INET) accepts only dotted-decimal with four parts; it rejects leading zeros on glibc.
    return inet_pton(AF_INET, text, &buffer) == 1 ? AF_INET : nil
}

/// The canonical text of an address literal (RFC 5952 for IPv6).
func canonicalAddress(_ text: String, family: Int32) -> String {
    var buffer = [UInt8](repeating: 0, count: 16)
    guard inet_pton(family, text, &buffer) == 1 else { return text }
    var out = [CChar](repeating: 0, count: 64)
    guard inet_ntop(family, buffer, &out, socklen_t(out.count)) != nil else { return text }
    return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
