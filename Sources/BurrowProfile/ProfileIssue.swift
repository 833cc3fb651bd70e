/// One problem found in a profile or policy file: where, and why.
///
/// `keyPath` uses the file's own key names (`permissions.file_read[2]`), so an
/// operator can find the line. Errors make a profile unusable; warnings are
/// shown by lint and dry-run but do not fail them.
package struct ProfileIssue: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    package enum Severity: String, Sendable, Codable { case error, warning }

    package var file: String
    package var keyPath: String
    package var message: String
    package var severity: Severity

    package init(file: String, keyPath: String, message: String, severity: Severity = .error) {
        self.file = file
        self.keyPath = keyPath
        self.message = message
        self.severity = severity
    }

    /// `file: key.path: message` (the key path is left out for whole-file problems).
    package var description: String {
        let location = keyPath.isEmpty ? file : "\(file): \(keyPath)"
        return severity == .warning ? "\(location): warning: \(message)" : "\(location): \(message)"
    }
}

/// Every problem found while loading, so lint can report them all at once.
package struct ProfileErrors: Error, Sendable, CustomStringConvertible {
    package var issues: [ProfileIssue]

    package init(_ issues: [ProfileIssue]) { self.issues = issues }

    package var description: String { issues.map(\.description).joined(separator: "\n") }
}
