/// JSON inside Codable types (API wire types, stored audit events): a
/// number is encoded as the Int64 its text is, else as a Double.
extension JSON: Codable {
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
        } else if let v = try? c.decode([JSON].self) {
            self = .array(v)
        } else {
            self = .object(try c.decode([String: JSON].self))
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .number(let n):
            if Self.isIntegerText(n), let i = Int64(n) {
                try c.encode(i)
            } else if let d = Double(n), d.isFinite {
                try c.encode(d)
            } else {
                throw EncodingError.invalidValue(n, .init(codingPath: c.codingPath, debugDescription: "\(n) is not a finite number"))
            }
        case .string(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }
}

extension JSON: JSONTreeDecodable {
    /// A caller's JSON kept as parsed, but for numbers no Double can hold
    /// (1e999): refused here, where the path can be named.
    package init(json: JSON, path: String) throws(JSONDecodeError) {
        try Self.checkNumbers(json, path: path)
        self = json
    }

    private static func checkNumbers(_ json: JSON, path: String) throws(JSONDecodeError) {
        switch json {
        case .number(let n):
            guard let d = Double(n), d.isFinite else { throw JSONDecodeError(path: path, message: "\(n) is out of range") }
        case .array(let items):
            for (i, item) in items.enumerated() { try checkNumbers(item, path: "\(path)[\(i)]") }
        case .object(let members):
            for (key, value) in members { try checkNumbers(value, path: path.isEmpty ? key : "\(path).\(key)") }
        default:
            break
        }
    }
}
