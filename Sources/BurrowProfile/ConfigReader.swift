import BurrowJSON

/// Collects the issues found while reading one document.
final class IssueLog {
    /// Which file supplied each key path (`extends` merges several files).
    let origins: [String: String]
    let defaultFile: String
    private(set) var issues: [ProfileIssue] = []

    init(file: String, origins: [String: String] = [:]) {
        self.defaultFile = file
        self.origins = origins
    }

    /// The file that supplied `keyPath`, or its nearest enclosing key.
    func file(for keyPath: String) -> String {
        var path = Substring(keyPath)
        while !path.isEmpty {
            if let file = origins[String(path)] { return file }
            guard let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            path = path[..<cut]
        }
        return defaultFile
    }

    func error(_ keyPath: String, _ message: String) {
        issues.append(ProfileIssue(file: file(for: keyPath), keyPath: keyPath, message: message))
    }

    func warning(_ keyPath: String, _ message: String) {
        issues.append(ProfileIssue(file: file(for: keyPath), keyPath: keyPath, message: message, severity: .warning))
    }

    var hasErrors: Bool { issues.contains { $0.severity == .error } }
}

/// Reads one table strictly: every key must be read by the caller, and
/// `finish()` reports the rest as unknown (a typo is never ignored).
struct TableReader {
    let log: IssueLog
    let path: String
    let entries: [String: ConfigValue]
    private var seen: Set<String> = []

    init(log: IssueLog, path: String, entries: [String: ConfigValue]) {
        self.log = log
        self.path = path
        self.entries = entries
    }

    /// Reads the table at `value`, or reports a type error and returns nil.
    init?(log: IssueLog, path: String, value: ConfigValue) {
        guard case .table(let entries) = value else {
            log.error(path, "expected a table, found \(value.typeName)")
            return nil
        }
        self.init(log: log, path: path, entries: entries)
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    mutating func value(_ key: String) -> ConfigValue? {
        seen.insert(key)
        return entries[key]
    }

    mutating func string(_ key: String) -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else {
            log.error(keyPath(key), "expected a string, found \(v.typeName)")
            return nil
        }
        return s
    }

    mutating func bool(_ key: String) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else {
            log.error(keyPath(key), "expected true or false, found \(v.typeName)")
            return nil
        }
        return b
    }

    mutating func integer(_ key: String) -> Int? {
        guard let v = value(key) else { return nil }
        guard case .integer(let i) = v else {
            log.error(keyPath(key), "expected an integer, found \(v.typeName)")
            return nil
        }
        return i
    }

    /// An array of strings, each with its own key path (`key[i]`).
    mutating func strings(_ key: String) -> [(value: String, keyPath: String)]? {
        guard let v = value(key) else { return nil }
        guard case .array(let items) = v else {
            log.error(keyPath(key), "expected an array of strings, found \(v.typeName)")
            return nil
        }
        var out: [(String, String)] = []
        for (i, item) in items.enumerated() {
            let p = "\(keyPath(key))[\(i)]"
            guard case .string(let s) = item else {
                log.error(p, "expected a string, found \(item.typeName)")
                continue
            }
            out.append((s, p))
        }
        return out
    }

    mutating func table(_ key: String) -> TableReader? {
        guard let v = value(key) else { return nil }
        return TableReader(log: log, path: keyPath(key), value: v)
    }

    /// Reports every key that was not read, suggesting the closest known one.
    /// `topLevel` names keys that belong at the document's top level: TOML
    /// puts every key after a `[table]` header into that table, a common slip.
    func finish(topLevel: [String] = []) {
        for key in entries.keys.sorted() where !seen.contains(key) {
            var hint = closest(to: key, in: seen).map { " (did you mean '\($0)'?)" } ?? ""
            if !path.isEmpty && topLevel.contains(key) {
                hint = " ('\(key)' is a top-level key: in TOML, move it above the first [table] header)"
            }
            let known = seen.sorted().joined(separator: ", ")
            log.error(keyPath(key), "unknown key '\(key)'\(hint); known keys here: \(known)")
        }
    }
}
