public import FoundationEssentials
import TOMLKit

/// A parsed configuration document: the common form of TOML and JSON, so both
/// decode through one strict reader with the same key paths and errors.
public indirect enum ConfigValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case bool(Bool)
    case array([ConfigValue])
    case table([String: ConfigValue])
    /// A TOML date or time, kept as its text; no profile key takes one.
    case date(String)

    /// The name of this value's type, as used in messages.
    public var typeName: String {
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
public enum ConfigFormat: String, Sendable {
    case toml, json

    public init?(path: String) {
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
    public static func parse(_ text: String, format: ConfigFormat, file: String) throws(ProfileIssue) -> ConfigValue {
        switch format {
        case .toml:
            do {
                return ConfigValue(toml: try TOMLTable(string: text))
            } catch let error as TOMLParseError {
                throw ProfileIssue(
                    file: file, keyPath: "",
                    message: "TOML syntax error at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
            } catch {
                throw ProfileIssue(file: file, keyPath: "", message: "TOML syntax error: \(error)")
            }
        case .json:
            let value: ConfigValue
            do {
                value = try JSONDecoder().decode(ConfigValue.self, from: Data(text.utf8))
            } catch {
                throw ProfileIssue(file: file, keyPath: "", message: "JSON syntax error: \(describeJSONError(error))")
            }
            guard case .table = value else {
                throw ProfileIssue(file: file, keyPath: "", message: "the document must be an object, found \(value.typeName)")
            }
            return value
        }
    }

    init(toml table: TOMLTable) {
        var entries: [String: ConfigValue] = [:]
        for (key, value) in table { entries[key] = ConfigValue(toml: value) }
        self = .table(entries)
    }

    init(toml value: any TOMLValueConvertible) {
        switch value.type {
        case .table: self = value.table.map { ConfigValue(toml: $0) } ?? .table([:])
        case .array: self = .array(value.array.map { $0.map { ConfigValue(toml: $0) } } ?? [])
        case .string: self = .string(value.string ?? "")
        case .int: self = .integer(value.int ?? 0)
        case .double: self = .float(value.double ?? 0)
        case .bool: self = .bool(value.bool ?? false)
        case .date, .time, .dateTime: self = .date(value.debugDescription)
        }
    }
}

extension ConfigValue: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let v = try? container.decode(Bool.self) {
            self = .bool(v)
        } else if let v = try? container.decode(Int.self) {
            self = .integer(v)
        } else if let v = try? container.decode(Double.self) {
            self = .float(v)
        } else if let v = try? container.decode(String.self) {
            self = .string(v)
        } else if let v = try? container.decode([ConfigValue].self) {
            self = .array(v)
        } else if let v = try? container.decode([String: ConfigValue].self) {
            self = .table(v)
        } else if container.decodeNil() {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "null is not allowed; omit the key instead")
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "unsupported value")
        }
    }
}

private func describeJSONError(_ error: any Error) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    switch error {
    case .dataCorrupted(let context), .typeMismatch(_, let context), .valueNotFound(_, let context),
        .keyNotFound(_, let context):
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        let underlying = (context.underlyingError).map { " (\($0))" } ?? ""
        return (path.isEmpty ? "" : "at \(path.drop { $0 == "." }): ") + context.debugDescription + underlying
    @unknown default:
        return "\(error)"
    }
}
