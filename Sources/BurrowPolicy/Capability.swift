import CCap

/// A capability: the kernel's number. Its name is libcap's for that number
/// (`CAP_CHOWN`), so a capability without a name cannot exist; JSON shows the
/// name, and a name libcap does not know is refused when a plan is read back.
package struct Capability: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    package let number: UInt8

    package init(number: UInt8) { self.number = number }

    /// The capability libcap names `name` (case does not matter), if any.
    package init?(name: String) {
        var value: cap_value_t = 0
        guard cap_from_name(name.lowercased(), &value) == 0, let n = UInt8(exactly: value) else { return nil }
        number = n
    }

    /// libcap's name, upper case; `CAP_<n>` for a number newer than libcap.
    package var name: String {
        guard let raw = cap_to_name(cap_value_t(number)) else { return "CAP_\(number)" }
        defer { cap_free(raw) }
        return String(cString: raw).uppercased()
    }

    package var description: String { name }

    /// Every capability the kernel has, 0 through `lastCap`.
    package static func all(lastCap: Int) -> [Capability] { (0...max(0, min(lastCap, 63))).map { Capability(number: UInt8($0)) } }

    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.number < rhs.number }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        if let known = Capability(name: text) {
            self = known
        } else if text.hasPrefix("CAP_"), let n = UInt8(text.dropFirst(4)) {
            self = Capability(number: n)
        } else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown capability \(text)")
        }
    }
}
