package import BurrowJSON

/// Validates tool arguments against a tool's `inputSchema`, for the JSON
/// Schema subset Burrow enforces: `type` (a name or a list), `properties`,
/// `required`, `enum`, `const`, `minimum`, `maximum`, `exclusiveMinimum`,
/// `exclusiveMaximum`, `minLength`, `maxLength` (in code points), `pattern`,
/// `items`, `additionalProperties` (false or a schema). Other keywords are
/// left to the server. A `pattern` Swift's regex engine cannot compile
/// refuses the call rather than being skipped.
package enum SchemaValidator {
    /// The first violation, as `path: what`, or nil when `value` conforms.
    package static func violation(of value: JSON, against schema: JSON, path: String = "arguments") -> String? {
        guard case .object(let s) = schema else { return nil }
        if let type = s["type"] {
            let allowed: [String] =
                type.stringValue.map { [$0] }
                ?? {
                    if case .array(let a) = type { return a.compactMap(\.stringValue) }
                    return []
                }()
            if !allowed.isEmpty, !allowed.contains(where: { matches(value, type: $0) }) {
                return "\(path): expected \(allowed.joined(separator: " or ")), got \(value.typeName)"
            }
        }
        if case .array(let options) = s["enum"] ?? .null, !options.contains(value) {
            return "\(path): not one of the allowed values"
        }
        if let c = s["const"], c != value { return "\(path): must be the constant the schema names" }
        switch value {
        case .number:
            let n = value.doubleValue ?? .nan
            if let m = s["minimum"]?.doubleValue, n < m { return "\(path): \(n) is below the minimum \(m)" }
            if let m = s["maximum"]?.doubleValue, n > m { return "\(path): \(n) is above the maximum \(m)" }
            if let m = s["exclusiveMinimum"]?.doubleValue, n <= m { return "\(path): \(n) must be above \(m)" }
            if let m = s["exclusiveMaximum"]?.doubleValue, n >= m { return "\(path): \(n) must be below \(m)" }
        case .string(let text):
            let length = text.unicodeScalars.count
            if let m = s["minLength"]?.doubleValue, Double(length) < m { return "\(path): shorter than \(whole(m)) characters" }
            if let m = s["maxLength"]?.doubleValue, Double(length) > m { return "\(path): longer than \(whole(m)) characters" }
            if let pattern = s["pattern"]?.stringValue {
                guard let regex = try? Regex(pattern) else { return "\(path): the schema's pattern cannot be checked here, so the call is refused" }
                if (try? regex.firstMatch(in: text)) == nil { return "\(path): does not match the pattern \(pattern)" }
            }
        case .array(let items):
            if let itemSchema = s["items"] {
                for (k, item) in items.enumerated() {
                    if let v = violation(of: item, against: itemSchema, path: "\(path)[\(k)]") { return v }
                }
            }
        case .object(let members):
            if case .array(let required) = s["required"] ?? .null {
                for name in required.compactMap(\.stringValue) where members[name] == nil { return "\(path): missing required property \(name)" }
            }
            let properties: [String: JSON] = if case .object(let p) = s["properties"] ?? .null { p } else { [:] }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                if let sub = properties[name] {
                    if let v = violation(of: member, against: sub, path: "\(path).\(name)") { return v }
                } else if let extra = s["additionalProperties"] {
                    if extra == .bool(false) { return "\(path): property \(name) is not allowed" }
                    if let v = violation(of: member, against: extra, path: "\(path).\(name)") { return v }
                }
            }
        default:
            break
        }
        return nil
    }

    private static func matches(_ value: JSON, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object), ("number", .number): true
        case ("integer", .number(let n)):
            // 1.0 is an integer to JSON Schema; 1.5 is not.
            !n.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) || (Double(n).map { $0 == $0.rounded() } ?? false)
        default: false
        }
    }

    /// A count from a schema, for messages: the server chose it, so it may be
    /// any double (1e300 must not trap a conversion to Int).
    static func whole(_ m: Double) -> String {
        m.isFinite && abs(m) < 9e15 ? String(Int(m)) : "\(m)"
    }
}
