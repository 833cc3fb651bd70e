/// A parsed JSON value. Numbers keep their text: the MCP relay forwards
/// original bytes and never re-encodes, and the strict decoder converts a
/// number only to the exact type a field asks for.
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

    package var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    package var double: Double? {
        if case .number(let n) = self { return Double(n) }
        return nil
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
    /// characters and DEL as \u00XX, everything else as UTF-8).
    package static func quote(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
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
