/// An absolute, normalised host path, optionally written with a trailing
/// `/**` to say "this directory and everything beneath it".
///
/// Bind mounts and Landlock rules both work on concrete hierarchies, so the
/// only wildcard is that trailing `/**`; a directory grant without it covers
/// its subtree just the same (the suffix is for readers).
package struct PathPattern: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    /// The normalised path, without the `/**` suffix.
    package var path: String
    /// Whether the pattern was written with `/**`.
    package var subtree: Bool

    package init(path: String, subtree: Bool = false) {
        self.path = path
        self.subtree = subtree
    }

    /// Parses a pattern; the failure says what is wrong and how to write it.
    package static func parse(_ text: String) -> Result<PathPattern, PatternError> {
        guard !text.isEmpty else { return .failure("path is empty") }
        if let bad = controlCharacter(in: text) { return .failure("path contains \(bad)") }
        guard text.utf8.count < pathMax else { return .failure("path is \(text.utf8.count) bytes, longer than the kernel takes (\(pathMax - 1))") }
        guard text.hasPrefix("/") else { return .failure("path must be absolute (start with '/'): '\(text)'") }
        var components = text.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        var subtree = false
        if components.last == "**" {
            subtree = true
            components.removeLast()
        }
        if components.contains("..") { return .failure("'..' is not allowed in paths: '\(text)'") }
        if components.contains(where: { $0.contains("*") || $0.contains("?") || $0.contains("[") }) {
            return .failure("wildcards are only allowed as a trailing '/**': '\(text)'")
        }
        let normalised = "/" + components.filter { !$0.isEmpty && $0 != "." }.joined(separator: "/")
        let written = "/" + components.joined(separator: "/")
        if written != normalised && !(components == [""] && normalised == "/") {
            let suggestion = subtree ? (normalised == "/" ? "/**" : normalised + "/**") : normalised
            return .failure("path is not normalised: write '\(suggestion)' instead of '\(text)'")
        }
        return .success(PathPattern(path: normalised, subtree: subtree))
    }

    /// Whether `other` is this path or lies beneath it.
    package func covers(_ other: String) -> Bool { isPath(other, within: path) }

    package var description: String { subtree ? (path == "/" ? "/**" : path + "/**") : path }

    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.path < rhs.path }
}

/// PATH_MAX: a path the kernel takes is shorter (it counts the NUL).
package let pathMax = 4096

/// The first control character in `text`, named for a message ("the NUL
/// character U+0000", "the control character U+001B"), or nil. A NUL
/// cannot reach the kernel inside a C string: whatever follows it would be
/// cut off, so a value holding one is refused, never truncated.
package func controlCharacter(in text: some StringProtocol) -> String? {
    guard let bad = text.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7f }) else { return nil }
    let code = String(bad.value, radix: 16, uppercase: true)
    return bad.value == 0 ? "the NUL character U+0000" : "the control character U+" + String(repeating: "0", count: 4 - code.count) + code
}

/// Whether `path` is `root` or lies beneath it (component-wise, not by string prefix).
package func isPath(_ path: String, within root: String) -> Bool {
    root == "/" || path == root || path.hasPrefix(root + "/")
}

/// How many components `path` has ("/" none, "/a//b/" two: what
/// `split(separator: "/")` counts), without allocating.
package func componentCount(_ path: String) -> Int {
    var count = 0
    var afterSlash = true
    for byte in path.utf8 {
        if byte == UInt8(ascii: "/") {
            afterSlash = true
        } else {
            if afterSlash { count += 1 }
            afterSlash = false
        }
    }
    return count
}

/// Why a pattern or value was refused; the text is the whole message.
package struct PatternError: Error, Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByStringInterpolation {
    package var message: String
    package init(_ message: String) { self.message = message }
    package init(stringLiteral value: String) { message = value }
    package init(stringInterpolation: DefaultStringInterpolation) { message = String(stringInterpolation: stringInterpolation) }
}

/// A command the tool may execute: a bare name looked up in the sandbox's
/// search path (`python3`), or an absolute path whose last component may hold
/// `*` and `?` (`/usr/bin/python3.*`).
package struct CommandPattern: Sendable, Hashable, Codable, CustomStringConvertible {
    package var text: String
    package var isPath: Bool { text.hasPrefix("/") }

    package static func parse(_ text: String) -> Result<CommandPattern, PatternError> {
        guard !text.isEmpty else { return .failure("command is empty") }
        if let bad = controlCharacter(in: text) { return .failure("command contains \(bad)") }
        if text.hasPrefix("/") {
            let directory = String(text[..<(text.lastIndex(of: "/") ?? text.startIndex)])
            let last = text[text.index(after: text.lastIndex(of: "/") ?? text.startIndex)...]
            if last.isEmpty || last == "**" || last.contains("[") {
                return .failure("an executable path must name a file; wildcards '*' and '?' are allowed in its last component only: '\(text)'")
            }
            if !directory.isEmpty {
                switch PathPattern.parse(directory) {
                case .failure(let error): return .failure(error)
                case .success(let p) where p.subtree:
                    return .failure("wildcards are allowed in the last component only: '\(text)'")
                case .success: break
                }
            }
            if last == "." || last == ".." { return .failure("'..' is not allowed in paths: '\(text)'") }
            return .success(CommandPattern(text: text))
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-*?")
        guard text.allSatisfy(allowed.contains), text != "*", !text.hasPrefix(".") else {
            return .failure("a command is an absolute path or a plain name such as 'python3': '\(text)'")
        }
        return .success(CommandPattern(text: text))
    }

    package var description: String { text }
}
