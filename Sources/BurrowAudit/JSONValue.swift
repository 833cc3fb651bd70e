package import BurrowJSON
import FoundationEssentials

/// A JSON document: event details as stored. Its `canonicalText` (keys
/// sorted, no insignificant whitespace) is the byte form the hash chain covers.
package enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    package init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let v = try? c.decode(Bool.self) {
            self = .bool(v)
        } else if let v = try? c.decode(Int64.self) {
            self = .integer(v)
        } else if let v = try? c.decode(Double.self) {
            self = .number(v)
        } else if let v = try? c.decode(String.self) {
            self = .string(v)
        } else if let v = try? c.decode([JSONValue].self) {
            self = .array(v)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .integer(let v): try c.encode(v)
        case .number(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }

    /// Converts any Encodable value (a details struct) to a JSON value.
    package init(encoding value: some Encodable) throws {
        let data = try JSONEncoder().encode(value)
        self = try JSONDecoder().decode(JSONValue.self, from: data)
    }

    /// Parses JSON text.
    package init(parsing text: String) throws {
        self = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    /// Decodes the value into a details struct.
    package func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(canonicalText.utf8))
    }

    package subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    package var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    package var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    package var integerValue: Int64? {
        switch self {
        case .integer(let v): return v
        case .number(let v) where v == v.rounded() && abs(v) < 9e15: return Int64(v)
        default: return nil
        }
    }

    /// Sorted keys, no whitespace, strings escaped as RFC 8259 requires
    /// (control characters as \u00XX; everything else as UTF-8).
    package var canonicalText: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let v): out += v ? "true" : "false"
        case .integer(let v): out += String(v)
        case .number(let v): out += v.isFinite ? "\(v)" : "null"
        case .string(let v): JSON.quote(v, into: &out)
        case .array(let v):
            out += "["
            for (i, e) in v.enumerated() {
                if i > 0 { out += "," }
                e.write(to: &out)
            }
            out += "]"
        case .object(let v):
            out += "{"
            for (i, key) in v.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                JSON.quote(key, into: &out)
                out += ":"
                v[key]?.write(to: &out)
            }
            out += "}"
        }
    }

    /// The same value with every string (not keys) passed through `transform`.
    func mapStrings(_ transform: (String) -> String) -> JSONValue {
        switch self {
        case .string(let s): return .string(transform(s))
        case .array(let a): return .array(a.map { $0.mapStrings(transform) })
        case .object(let o): return .object(o.mapValues { $0.mapStrings(transform) })
        default: return self
        }
    }
}

extension JSONValue: JSONTreeDecodable {
    /// The value of a strictly parsed tree: integers that fit Int64 stay integers.
    package init(json: JSON, path: String) throws(JSONDecodeError) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .string(let s): self = .string(s)
        case .number(let n):
            if JSON.isIntegerText(n), let i = Int64(n) {
                self = .integer(i)
            } else {
                guard let d = Double(n), d.isFinite else { throw JSONDecodeError(path: path, message: "\(n) is out of range") }
                self = .number(d)
            }
        case .array(let items):
            var out: [JSONValue] = []
            out.reserveCapacity(items.count)
            for (i, item) in items.enumerated() { out.append(try JSONValue(json: item, path: "\(path)[\(i)]")) }
            self = .array(out)
        case .object(let members):
            var out: [String: JSONValue] = [:]
            for (key, value) in members { out[key] = try JSONValue(json: value, path: path.isEmpty ? key : "\(path).\(key)") }
            self = .object(out)
        }
    }
}
