package import BurrowJSON

/// A parsed configuration document: the common form of TOML and JSON, so both
/// decode through one strict reader with the same key paths and errors.
package indirect enum ConfigValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case array([ConfigValue])
    case table([String: ConfigValue])
    /// A TOML date or time, kept as its text; no profile key takes one.
    case date(String)

    /// The name of this value's type, as used in messages.
    package var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .bool: "a boolean"
        case .array: "an array"
        case .table: "a table"
        case .date: "a date"
        }
    }
}

/// The format of a configuration file, from its extension.
package enum ConfigFormat: String, Sendable {
    case toml, json

    package init?(path: String) {
        if path.hasSuffix(".toml") {
            self = .toml
        } else if path.hasSuffix(".json") {
            self = .json
        } else {
            return nil
        }
    }
}

extension ConfigValue {
    /// Parses a document whose top level must be a table.
    /// - Throws: `ProfileIssue` naming the file (and line and column for TOML syntax errors).
    package static func parse(_ text: String, format: ConfigFormat, file: String) throws(ProfileIssue) -> ConfigValue {
        switch format {
        case .toml:
            do {
                return try TOMLReader.parse(text)
            } catch {
                throw ProfileIssue(file: file, keyPath: "", message: "TOML document refused at line \(error.line), column \(error.column): \(error.message)")
            }
        case .json:
            let json: JSON
            do {
                json = try JSONParser.parse(text, limits: DocumentLimits.json)
            } catch {
                throw ProfileIssue(file: file, keyPath: "", message: "JSON syntax error: \(error)")
            }
            guard case .object = json else {
                throw ProfileIssue(file: file, keyPath: "", message: "the document must be an object, found \(json.describedType)")
            }
            do {
                return try ConfigValue(json: json, path: "")
            } catch {
                throw ProfileIssue(file: file, keyPath: error.path, message: error.message)
            }
        }
    }

    /// As JSON (a TOML date as its text).
    package var json: JSON {
        switch self {
        case .string(let s), .date(let s): .string(s)
        case .integer(let i): .number(String(i))
        case .float(let d): .number(String(d))
        case .bool(let b): .bool(b)
        case .array(let items): .array(items.map(\.json))
        case .table(let members): .object(members.mapValues(\.json))
        }
    }

    /// The common form of a parsed JSON value. JSON's null has no TOML
    /// counterpart: a key is omitted instead.
    init(json: JSON, path: String) throws(JSONDecodeError) {
        switch json {
        case .null: throw JSONDecodeError(path: path, message: "null is not allowed; omit the key instead")
        case .bool(let b): self = .bool(b)
        case .string(let s): self = .string(s)
        case .number(let n):
            if JSON.isIntegerText(n) {
                guard let i = Int(n) else { throw JSONDecodeError(path: path, message: "\(n) is out of range for an integer") }
                self = .integer(i)
            } else {
                guard let d = Double(n), d.isFinite else { throw JSONDecodeError(path: path, message: "\(n) is out of range") }
                self = .float(d)
            }
        case .array(let items):
            var out: [ConfigValue] = []
            out.reserveCapacity(items.count)
            for (i, item) in items.enumerated() { out.append(try ConfigValue(json: item, path: "\(path)[\(i)]")) }
            self = .array(out)
        case .object(let members):
            var out: [String: ConfigValue] = [:]
            for (key, value) in members { out[key] = try ConfigValue(json: value, path: path.isEmpty ? key : "\(path).\(key)") }
            self = .table(out)
        }
    }
}
