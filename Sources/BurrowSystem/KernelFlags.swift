/// A set of kernel flags whose raw value is the kernel's, with one table
/// giving each flag its C name (in bit order). The name of a value is derived
/// from the table, so a flag without a name cannot exist, and a plan read
/// back from its names refuses any name the table does not hold.
///
/// Conforming sets are Codable as the list of their flags' names, which is
/// what `burrow dry-run --json` shows.
package protocol KernelFlags: OptionSet, Sendable, Hashable, Codable, CustomStringConvertible where RawValue: FixedWidthInteger & Sendable, Element == Self {
    /// Every flag with its C name (without a common prefix, where the type says so), in bit order.
    static var names: [(flag: Self, name: String)] { get }
}

extension KernelFlags {
    /// The names of the flags set, in bit order.
    package var flagNames: [String] { Self.names.filter { contains($0.flag) }.map(\.name) }

    /// The set named by `names`; nil when one is not a flag of this type.
    package init?(names: [String]) {
        var value = Self()
        for name in names {
            guard let flag = Self.names.first(where: { $0.name == name })?.flag else { return nil }
            value.insert(flag)
        }
        self = value
    }

    package var description: String { flagNames.joined(separator: " ") }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(flagNames)
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let names = try c.decode([String].self)
        guard let value = Self(names: names) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown flag in \(names); known: \(Self.names.map(\.name).joined(separator: ", "))")
        }
        self = value
    }
}
