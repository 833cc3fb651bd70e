/// A variable name, or a prefix written `LC_*`, that may reach the tool.
package struct EnvironmentPattern: Sendable, Hashable, Codable, CustomStringConvertible {
    package var text: String
    package var isPrefix: Bool { text.hasSuffix("*") }
    package var stem: String { isPrefix ? String(text.dropLast()) : text }

    package func matches(_ name: String) -> Bool { isPrefix ? name.hasPrefix(stem) : name == text }

    /// Variables that change how the loader, libc or an interpreter behaves
    /// before the tool's own code runs (glibc's unsecure-envvars list and the
    /// interpreters' start-up hooks). None may be passed in.
    package static let loaderVariables: [String] = [
        "LD_*", "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH",
        "MALLOC_*", "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR",
        "BASH_ENV", "ENV", "PS4", "SHELLOPTS", "BASHOPTS", "PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME",
        "PYTHONINSPECT", "PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "NODE_PATH",
        "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "GIT_CONFIG_*", "GIT_EXEC_PATH", "GIT_SSH*", "GIT_ASKPASS",
        "PATH",
    ]

    package static func parse(_ text: String) -> Result<EnvironmentPattern, PatternError> {
        let stem = text.hasSuffix("*") ? String(text.dropLast()) : text
        let first = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
        let rest = first.union("0123456789")
        guard let head = stem.first, first.contains(head), stem.allSatisfy(rest.contains) else {
            if text == "*" { return .failure("'*' would pass the whole environment; list the variables the tool needs") }
            return .failure("malformed variable name '\(text)': letters, digits and '_', optionally ending in '*'")
        }
        let pattern = EnvironmentPattern(text: text)
        if let hit = loaderVariables.first(where: { pattern.overlaps(EnvironmentPattern(text: $0)) }) {
            let why =
                hit == "PATH"
                ? "Burrow sets PATH itself from the execute permissions"
                : "it changes how the loader or an interpreter starts (\(hit))"
            return .failure("'\(text)' may not be passed to a tool: \(why)")
        }
        return .success(pattern)
    }

    /// Whether some name matches both patterns.
    package func overlaps(_ other: EnvironmentPattern) -> Bool {
        switch (isPrefix, other.isPrefix) {
        case (false, false): text == other.text
        case (true, false): other.text.hasPrefix(stem)
        case (false, true): text.hasPrefix(other.stem)
        case (true, true): stem.hasPrefix(other.stem) || other.stem.hasPrefix(stem)
        }
    }

    package var description: String { text }
}
