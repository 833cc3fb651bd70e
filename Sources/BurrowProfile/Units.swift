/// A size in bytes, written `512M`, `2G`, `64K` or a plain integer of bytes.
/// Suffixes are binary (K = 1024).
package struct ByteSize: Sendable, Equatable, Comparable, Hashable, Codable, CustomStringConvertible {
    package var bytes: UInt64

    package init(bytes: UInt64) { self.bytes = bytes }
    package static func mebibytes(_ n: UInt64) -> ByteSize { ByteSize(bytes: n << 20) }

    /// Parses `512M`-style text; nil when malformed or out of range.
    package init?(parsing text: String) {
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(text)
        var multiplier: UInt64 = 1
        if let last = digits.last, let unit = units[Character(last.uppercased())] {
            multiplier = unit
            digits = digits.dropLast()
            if digits.last == "i" || digits.last == "I" { return nil }
        } else if digits.last == "B" || digits.last == "b" {
            return nil
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
            let n = UInt64(digits)
        else { return nil }
        let (product, overflow) = n.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        bytes = product
    }

    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.bytes < rhs.bytes }

    /// The shortest exact form: `512M`, `1G`, `1536K`, or bytes.
    package var description: String {
        for (suffix, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] as [(String, UInt64)]
        where bytes != 0 && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(suffix)"
        }
        return "\(bytes)"
    }

    package init(from decoder: any Decoder) throws { bytes = try decoder.singleValueContainer().decode(UInt64.self) }
    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(bytes)
    }
}

/// A duration in whole milliseconds, written `30s`, `5m`, `1h`, `90d`, `250ms`
/// or a plain integer of seconds.
package struct Seconds: Sendable, Equatable, Comparable, Hashable, Codable, CustomStringConvertible {
    package var milliseconds: UInt64

    package init(milliseconds: UInt64) { self.milliseconds = milliseconds }
    package static func seconds(_ n: UInt64) -> Seconds { Seconds(milliseconds: n * 1000) }

    package init?(parsing text: String) {
        let scales: [Character: UInt64] = ["s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
        var digits = Substring(text)
        var scale: UInt64 = 1000
        if digits.hasSuffix("ms") {
            digits = digits.dropLast(2)
            scale = 1
        } else if let last = digits.last, let unit = scales[last] {
            digits = digits.dropLast()
            scale = unit
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let n = UInt64(digits)
        else { return nil }
        let (product, overflow) = n.multipliedReportingOverflow(by: scale)
        guard !overflow else { return nil }
        milliseconds = product
    }

    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.milliseconds < rhs.milliseconds }

    package var description: String {
        for (suffix, scale) in [("h", 3_600_000), ("m", 60_000), ("s", 1000)] as [(String, UInt64)]
        where milliseconds != 0 && milliseconds % scale == 0 {
            return "\(milliseconds / scale)\(suffix)"
        }
        return "\(milliseconds)ms"
    }

    /// Whole seconds, rounded up (for RLIMIT_CPU, which counts seconds).
    package var wholeSecondsRoundedUp: UInt64 { (milliseconds + 999) / 1000 }

    package init(from decoder: any Decoder) throws {
        milliseconds = try decoder.singleValueContainer().decode(UInt64.self)
    }
    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(milliseconds)
    }
}

/// How much of a file system must stay free: a share of its size (`5%`) or
/// a size (`2G`), counted as the blocks unprivileged writers may still use.
package enum DiskFloor: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    /// Hundredths of a percent (`5%` is 500), so the text round-trips.
    case percent(basisPoints: UInt64)
    case size(ByteSize)

    /// `5%`, `0.5%` or a size such as `2G`; nil for anything else.
    package init?(parsing text: String) {
        if text.hasSuffix("%") {
            let number = text.dropLast()
            let parts = number.split(separator: ".", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
                let whole = UInt64(parts[0]), parts.count == 1 || parts[1].count <= 2
            else { return nil }
            let fraction = parts.count == 2 ? (UInt64(parts[1]) ?? 0) * (parts[1].count == 1 ? 10 : 1) : 0
            let points = whole * 100 + fraction
            guard points > 0, points < 100 * 100 else { return nil }
            self = .percent(basisPoints: points)
        } else if let size = ByteSize(parsing: text), size.bytes > 0 {
            self = .size(size)
        } else {
            return nil
        }
    }

    /// The free bytes this floor asks for on a file system of `total` bytes.
    package func bytes(ofTotal total: UInt64) -> UInt64 {
        switch self {
        case .percent(let points): total / 10_000 * points + total % 10_000 * points / 10_000
        case .size(let size): size.bytes
        }
    }

    package var description: String {
        switch self {
        case .percent(let p): p % 100 == 0 ? "\(p / 100)%" : "\(p / 100).\(p % 100 < 10 ? "0" : "")\(p % 100)%"
        case .size(let s): s.description
        }
    }
}

/// Kernel values written by their name in JSON (the dry-run plan) and read
/// back through the same table, so a name no value has is refused.
package enum NamedCoding {
    package static func encode(_ name: String, to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }

    /// The value among `values` whose `name` the decoder holds.
    package static func decode<T>(_ decoder: any Decoder, among values: some Sequence<T>, name: (T) -> String, what: String) throws -> T {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let value = values.first(where: { name($0) == text }) else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown \(what) \(text)") }
        return value
    }
}
