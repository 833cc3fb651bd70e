package import BurrowProfile

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
/// stay IPv6 here; `unmapped` gives the IPv4 address they stand for.
package enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(UInt32)
    /// 16 bytes, network order.
    case v6([UInt8])

    /// A strict literal: dotted-decimal IPv4 or any RFC 4291 IPv6 text.
    package init?(literal text: String) {
        var buffer = [UInt8](repeating: 0, count: 16)
        if text.contains(":") {
            guard !text.contains("%"), inet_pton(AF_INET6, text, &buffer) == 1 else { return nil }
            self = .v6(buffer)
        } else {
            guard inet_pton(AF_INET, text, &buffer) == 1 else { return nil }
            self = .v4(buffer[0..<4].reduce(0) { $0 << 8 | UInt32($1) })
        }
    }

    /// IPv4 in every notation `inet_aton` (and so most HTTP clients and
    /// resolvers) accepts: one to four parts, each decimal, octal (leading 0)
    /// or hexadecimal (0x), the last filling the remaining bytes:
    /// `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`.
    package init?(anyIPv4Notation text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var values: [UInt64] = []
        for part in parts {
            var digits = Substring(part)
            var radix: UInt64 = 10
            if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
                radix = 16
                digits = digits.dropFirst(2)
            } else if digits.count > 1 && digits.hasPrefix("0") {
                radix = 8
                digits = digits.dropFirst()
            }
            guard !digits.isEmpty, digits.count <= 32 else { return nil }
            var value: UInt64 = 0
            for c in digits {
                guard let d = c.hexDigitValue, UInt64(d) < radix else { return nil }
                value = value * radix + UInt64(d)
                if value > UInt64(UInt32.max) { return nil }
            }
            values.append(value)
        }
        // Every part but the last is one byte; the last fills what is left.
        let leading = values.dropLast()
        guard leading.allSatisfy({ $0 <= 255 }), let last = values.last else { return nil }
        let lastBits = 8 * (4 - leading.count)
        guard lastBits == 32 || last < (UInt64(1) << lastBits) else { return nil }
        var address: UInt64 = 0
        for v in leading { address = address << 8 | v }
        address = address << UInt64(lastBits) | last
        self = .v4(UInt32(address))
    }

    /// The IPv4 address an IPv4-mapped IPv6 address stands for; otherwise itself.
    package var unmapped: IPAddress {
        guard case .v6(let b) = self, b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xff, b[11] == 0xff else { return self }
        return .v4(b[12..<16].reduce(0) { $0 << 8 | UInt32($1) })
    }

    package var isIPv6: Bool {
        if case .v6 = self { return true }
        return false
    }

    /// The address bytes in network order (4 or 16).
    package var bytes: [UInt8] {
        switch self {
        case .v4(let a): [UInt8(a >> 24), UInt8(a >> 16 & 0xff), UInt8(a >> 8 & 0xff), UInt8(a & 0xff)]
        case .v6(let b): b
        }
    }

    /// Canonical text (RFC 5952 for IPv6).
    package var description: String {
        var out = [CChar](repeating: 0, count: 64)
        let family = isIPv6 ? AF_INET6 : AF_INET
        let ok = bytes.withUnsafeBufferPointer { inet_ntop(family, $0.baseAddress, &out, socklen_t(out.count)) != nil }
        guard ok else { return "?" }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether the address lies in `network/prefix` (same family only).
    package func isWithin(_ network: IPAddress, prefix: Int) -> Bool {
        let a = bytes
        let n = network.bytes
        guard a.count == n.count, prefix >= 0, prefix <= a.count * 8 else { return false }
        var bits = prefix
        for i in 0..<a.count where bits > 0 {
            let take = min(8, bits)
            let mask = UInt8(truncatingIfNeeded: 0xff << (8 - take))
            if a[i] & mask != n[i] & mask { return false }
            bits -= take
        }
        return true
    }
}

/// The ranges the egress proxy never connects to unless an allowlist entry
/// names the address or a network around it explicitly.
package enum SpecialAddress {
    struct Range {
        let network: IPAddress
        let prefix: Int
        let name: String
    }

    static let ranges: [Range] = [
        ("0.0.0.0", 8, "this network"), ("10.0.0.0", 8, "private"), ("100.64.0.0", 10, "carrier-grade NAT"),
        ("127.0.0.0", 8, "loopback"), ("169.254.0.0", 16, "link-local (cloud metadata endpoints)"), ("172.16.0.0", 12, "private"),
        ("192.0.0.0", 24, "IETF protocol assignments"), ("192.168.0.0", 16, "private"), ("198.18.0.0", 15, "benchmarking"),
        ("224.0.0.0", 4, "multicast"), ("240.0.0.0", 4, "reserved"),
        ("::", 128, "unspecified"), ("::1", 128, "loopback"), ("::ffff:0:0", 96, "IPv4-mapped"), ("::", 96, "IPv4-compatible"),
        ("64:ff9b::", 96, "NAT64 (embeds an IPv4 address)"), ("64:ff9b:1::", 48, "local NAT64"), ("100::", 64, "discard"),
        ("2001::", 32, "Teredo (embeds an IPv4 address)"), ("2002::", 16, "6to4 (embeds an IPv4 address)"),
        ("fc00::", 7, "unique-local"), ("fe80::", 10, "link-local"), ("fec0::", 10, "site-local"), ("ff00::", 8, "multicast"),
    ].compactMap { r in IPAddress(literal: r.0).map { Range(network: $0, prefix: r.1, name: r.2) } }

    /// The kind of range `address` falls in, or nil for an ordinary public address.
    package static func classify(_ address: IPAddress) -> String? {
        ranges.first { address.isWithin($0.network, prefix: $0.prefix) }?.name
    }
}

/// A destination a tool asked the proxy for, after normalisation.
package enum EgressHost: Sendable, Hashable, CustomStringConvertible {
    /// A DNS name: lowercase ASCII (IDNA labels as `xn--` punycode), no trailing dot.
    case name(String)
    case address(IPAddress)

    package var description: String {
        switch self {
        case .name(let n): n
        case .address(let a): a.isIPv6 ? "[\(a)]" : a.description
        }
    }

    /// Normalises what the tool asked for: case, one trailing dot, IDNA
    /// (fullwidth forms and ideographic full stops folded, other non-ASCII
    /// labels encoded as punycode), and IP literals in every notation
    /// (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) read as addresses.
    /// Anything else that is not a valid host name is refused.
    package static func normalise(_ requested: String) -> Result<EgressHost, EgressRefusal> {
        var text = requested
        if text.hasPrefix("[") && text.hasSuffix("]") {
            let inner = String(text.dropFirst().dropLast())
            guard inner.contains(":"), let address = IPAddress(literal: inner) else { return .failure(.malformedHost(requested)) }
            return .success(.address(address))
        }
        if text.contains(":") {
            guard let address = IPAddress(literal: text) else { return .failure(.malformedHost(requested)) }
            return .success(.address(address))
        }
        text = foldWidth(text).lowercased()
        if text.hasSuffix(".") { text.removeLast() }
        guard !text.isEmpty, text.unicodeScalars.count <= 253 else { return .failure(.malformedHost(requested)) }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        // A last label of digits (or 0x…) is never a top-level domain: this is
        // an IPv4 literal in some notation, and must parse as one.
        if let last = labels.last, last.allSatisfy(\.isASCII), last.allSatisfy(\.isNumber) || last.hasPrefix("0x") {
            guard let address = IPAddress(anyIPv4Notation: text) else { return .failure(.malformedHost(requested)) }
            return .success(.address(address))
        }
        var ascii: [String] = []
        for label in labels {
            guard !label.isEmpty else { return .failure(.malformedHost(requested)) }
            if label.allSatisfy(\.isASCII) {
                ascii.append(String(label))
            } else {
                // Letters, marks and digits only: no symbols, spaces, controls or joiners.
                guard
                    label.unicodeScalars.allSatisfy({ s in
                        let c = s.properties.generalCategory
                        return s.isASCII ? true : [.lowercaseLetter, .otherLetter, .modifierLetter, .nonspacingMark, .spacingMark, .decimalNumber].contains(c)
                    }), let encoded = Punycode.encode(String(label))
                else { return .failure(.malformedHost(requested)) }
                ascii.append("xn--" + encoded)
            }
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-".unicodeScalars)
        let name = ascii.joined(separator: ".")
        guard name.count <= 253,
            ascii.allSatisfy({ $0.count <= 63 && $0.unicodeScalars.allSatisfy(allowed.contains) && !$0.hasPrefix("-") && !$0.hasSuffix("-") })
        else { return .failure(.malformedHost(requested)) }
        return .success(.name(name))
    }

    /// Fullwidth ASCII (U+FF01–FF5E) to ASCII, and the IDNA dot variants to '.'.
    private static func foldWidth(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            switch s.value {
            case 0x3002, 0xFF0E, 0xFF61: scalars.append(".")
            case 0xFF01...0xFF5E: scalars.append(Unicode.Scalar(UInt8(truncatingIfNeeded: s.value - 0xFF01 + 0x21)))
            default: scalars.append(s)
            }
        }
        return String(scalars)
    }
}

/// Why the proxy refused a connection: a stable code and a message.
package enum EgressRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    case malformedHost(String)
    case hostNotAllowed(String)
    case portNotAllowed(host: String, port: UInt16)
    case specialAddress(host: String, address: String, range: String)
    case notResolved(host: String, why: String)
    case connectionLimit(Int)
    case budgetExhausted(UInt64)
    case protocolError(String)
    case unsupported(String)

    /// The `reason` of the PermissionDenied event.
    package var code: String {
        switch self {
        case .malformedHost: "malformed_host"
        case .hostNotAllowed: "host_not_allowed"
        case .portNotAllowed: "port_not_allowed"
        case .specialAddress: "special_address"
        case .notResolved: "not_resolved"
        case .connectionLimit: "connection_limit"
        case .budgetExhausted: "network_bytes"
        case .protocolError: "protocol_error"
        case .unsupported: "unsupported"
        }
    }

    /// Whether this is a policy decision (PermissionDenied) rather than a failure to reach an allowed host.
    package var isDenial: Bool {
        if case .notResolved = self { return false }
        return true
    }

    package var description: String {
        switch self {
        case .malformedHost(let h): "'\(h)' is not a valid host name or address"
        case .hostNotAllowed(let h): "\(h) is not in the profile's network allowlist"
        case .portNotAllowed(let h, let p): "port \(p) is not allowed for \(h)"
        case .specialAddress(let h, let a, let r): "\(h) resolves to \(a) (\(r)); only an explicit IP/CIDR entry (or, for the host's loopback, a 'localhost' entry) allows that range"
        case .notResolved(let h, let why): "\(h) does not resolve: \(why)"
        case .connectionLimit(let n): "the sandbox already has \(n) open connections (the most it may have)"
        case .budgetExhausted(let n): "the sandbox's network byte budget of \(n) bytes is used up"
        case .protocolError(let why): why
        case .unsupported(let what): "\(what) is not supported by Burrow's egress proxy"
        }
    }
}

/// The allowlist of one sandbox: `permissions.network`, decided in two steps
/// around name resolution.
package struct EgressRules: Sendable, Equatable {
    package let targets: [NetworkTarget]

    package init(_ targets: [NetworkTarget]) { self.targets = targets }

    /// A grant of this name reaches the host's loopback (the proxy connects
    /// from the host's side): it is never looked up (RFC 6761), and only the
    /// loopback addresses below are allowed for it.
    package static let localhost = "localhost"
    package static let localhostAddresses: [IPAddress] = [.v4(0x7f00_0001), .v6([UInt8](repeating: 0, count: 15) + [1])]

    /// Step one, before resolving: may the tool ask for `host` on `port`?
    /// Names must match a name or `*.suffix` entry, literal addresses an
    /// address or network entry; then the port must be in that entry's range.
    package func admit(_ host: EgressHost, port: UInt16) -> EgressRefusal? {
        let candidates = targets.filter { covers($0.host, host) }
        if candidates.isEmpty { return .hostNotAllowed(host.description) }
        return candidates.contains { $0.ports.contains(port) } ? nil : .portNotAllowed(host: host.description, port: port)
    }

    /// Step two, after resolving: every address the name resolved to must be
    /// an ordinary public one, or be covered by an explicit address or network
    /// entry for this port. One bad answer refuses the whole name (a name that
    /// resolves partly to loopback is an attack, not a fallback).
    package func screen(_ addresses: [IPAddress], host: EgressHost, port: UInt16) -> EgressRefusal? {
        for address in addresses {
            let plain = address.unmapped
            // An IPv4-mapped address is judged by both its forms.
            let range = SpecialAddress.classify(address) ?? SpecialAddress.classify(plain)
            guard let range else { continue }
            let explicit =
                targets.contains { t in
                    t.ports.contains(port) && (covers(t.host, .address(address)) || covers(t.host, .address(plain)))
                }
                || (host == .name(Self.localhost) && Self.localhostAddresses.contains(plain)
                    && targets.contains { $0.host == .name(Self.localhost) && $0.ports.contains(port) })
            if !explicit { return .specialAddress(host: host.description, address: address.description, range: range) }
        }
        return nil
    }

    private func covers(_ entry: NetworkTarget.Host, _ host: EgressHost) -> Bool {
        switch (entry, host) {
        case (.name(let n), .name(let h)): return n == h
        case (.suffix(let d), .name(let h)): return h.hasSuffix("." + d)
        case (.address(let a), .address(let h)):
            return IPAddress(literal: a).map { $0 == h || $0 == h.unmapped } ?? false
        case (.network(let a, let prefix), .address(let h)):
            guard let net = IPAddress(literal: a) else { return false }
            return h.isWithin(net, prefix: prefix) || h.unmapped.isWithin(net, prefix: prefix)
        default: return false
        }
    }
}

/// RFC 3492 punycode encoding of one label (without the `xn--` prefix).
enum Punycode {
    static func encode(_ label: String) -> String? {
        let input = label.unicodeScalars.map(\.value)
        let base: UInt32 = 36
        let tMin: UInt32 = 1
        let tMax: UInt32 = 26
        let skew: UInt32 = 38
        let damp: UInt32 = 700
        func digit(_ d: UInt32) -> Character { Character(Unicode.Scalar(UInt8(truncatingIfNeeded: d < 26 ? d + 97 : d + 22))) }
        func adapt(_ delta: UInt32, _ count: UInt32, _ first: Bool) -> UInt32 {
            var delta = first ? delta / damp : delta / 2
            delta += delta / count
            var k: UInt32 = 0
            while delta > ((base - tMin) * tMax) / 2 {
                delta /= base - tMin
                k += base
            }
            return k + (base - tMin + 1) * delta / (delta + skew)
        }
        var output = String(input.filter { $0 < 0x80 }.map { Character(Unicode.Scalar(UInt8(truncatingIfNeeded: $0))) })
        let basicCount = UInt32(output.count)
        var handled = basicCount
        if basicCount > 0 { output.append("-") }
        var n: UInt32 = 0x80
        var delta: UInt32 = 0
        var bias: UInt32 = 72
        while handled < UInt32(input.count) {
            guard let m = input.filter({ $0 >= n }).min() else { return nil }
            let (step, overflow) = (m - n).multipliedReportingOverflow(by: handled + 1)
            guard !overflow, delta <= UInt32.max - step else { return nil }
            delta += step
            n = m
            for c in input {
                if c < n {
                    guard delta < UInt32.max else { return nil }
                    delta += 1
                }
                if c == n {
                    var q = delta
                    var k = base
                    while true {
                        let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                        if q < t { break }
                        output.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digit(q))
                    bias = adapt(delta, handled + 1, handled == basicCount)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
        }
        return output
    }
}
