/// A JSON value, the one type for every JSON Burrow reads or writes: MCP
/// messages, API bodies, audit event details. Numbers keep their text: the
/// MCP relay forwards original bytes and never re-encodes, the strict
/// decoder converts a number only to the exact type a field asks for, and
/// `canonicalText` (keys sorted, no insignificant whitespace) is the byte
/// form the audit log's hash chain covers.
package indirect enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    package subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// Values are equal as JSON values: numbers by value (`1.0` equals `1`,
    /// integers exactly, however long), objects whatever their key order.
    package static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.number(let x), .number(let y)): x == y || sameNumber(x, y)
        case (.string(let x), .string(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x == y
        default: false
        }
    }

    private static func sameNumber(_ x: String, _ y: String) -> Bool {
        if isIntegerText(x) && isIntegerText(y) {
            guard let i = Int64(x), let j = Int64(y) else { return false }
            return i == j
        }
        guard let d = Double(x), let e = Double(y), d.isFinite else { return false }
        return d == e
    }

    /// An integer, in decimal.
    package static func integer(_ v: Int64) -> JSON { .number(String(v)) }

    /// A double, as Swift writes it (the shortest text that reads back the
    /// same); JSON has no NaN or infinity, so those are `null`.
    package static func number(_ v: Double) -> JSON { v.isFinite ? .number("\(v)") : .null }

    package var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    package var arrayValue: [JSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    package var doubleValue: Double? {
        if case .number(let n) = self { return Double(n) }
        return nil
    }

    /// The number as an Int64, when it is one: written as an integer that
    /// fits, or integral and below 2^53 in magnitude however written.
    package var integerValue: Int64? {
        guard case .number(let n) = self else { return nil }
        if Self.isIntegerText(n), let i = Int64(n) { return i }
        guard let d = Double(n), d == d.rounded(), abs(d) < 9e15 else { return nil }
        return Int64(d)
    }

    /// Whether the number is written without a fraction or exponent.
    package static func isIntegerText(_ n: String) -> Bool {
        !n.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
    }

    /// The JSON type name (integers are also "number").
    package var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number(let n): Self.isIntegerText(n) ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

extension JSON {
    /// The type with its article, for messages: "an array", "a string", "null".
    package var describedType: String {
        switch self {
        case .null: "null"
        case .array, .object: "an \(typeName)"
        case .number where typeName == "integer": "an integer"
        default: "a \(typeName)"
        }
    }

    /// Compact JSON text with keys sorted and numbers as written: what the
    /// relay digests, and what it sends when it writes a message itself.
    package var canonicalText: String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): JSON.quote(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (key, value)) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if i > 0 { out += "," }
                JSON.quote(key, into: &out)
                out += ":"
                value.write(into: &out)
            }
            out += "}"
        }
    }

    /// `s` as a JSON string literal, escaped as RFC 8259 requires (control
    /// characters and DEL as \u00XX, everything else as UTF-8). Works on
    /// the UTF-8 bytes: every byte that needs an escape is ASCII, and no byte
    /// of a multi-byte character is, so runs between escapes are copied whole.
    /// (The audit log hashes this text: its bytes must never change.)
    package static func quote(_ s: String, into out: inout String) {
        out += "\""
        var text = s
        text.withUTF8 { bytes in
            var run = 0
            for i in bytes.indices {
                let b = bytes[i]
                guard b < 0x20 || b == 0x22 || b == 0x5C || b == 0x7F else { continue }
                if run < i { out += String(decoding: UnsafeBufferPointer(rebasing: bytes[run..<i]), as: UTF8.self) }
                switch b {
                case 0x22: out += "\\\""
                case 0x5C: out += "\\\\"
                case 0x0A: out += "\\n"
                case 0x0D: out += "\\r"
                case 0x09: out += "\\t"
                default:
                    let digits = Array("0123456789abcdef".utf8)
                    out += "\\u00" + String(decoding: [digits[Int(b >> 4)], digits[Int(b & 15)]], as: UTF8.self)
                }
                run = i + 1
            }
            if run == 0 {
                out += s
            } else if run < bytes.count {
                out += String(decoding: UnsafeBufferPointer(rebasing: bytes[run...]), as: UTF8.self)
            }
        }
        out += "\""
    }

    /// `s` as a JSON string literal.
    package static func quote(_ s: String) -> String {
        var out = ""
        quote(s, into: &out)
        return out
    }
}
