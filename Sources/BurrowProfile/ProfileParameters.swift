/// Profile parameters: one profile for many targets. A profile declares typed
/// parameters in `[parameters.NAME]` and refers to them as `${NAME}` in its
/// grants; each run supplies values (`--param NAME=VALUE`, or `parameters` in
/// a burrowd request), which are checked against their declaration and the
/// host policy, then written into the document before it is decoded, so every
/// rule a literal grant meets applies to them too.
///
/// ```toml
/// [parameters.repo]
/// type = "path"          # path | host | string
/// description = "the repository"
/// must_exist = true      # path: it must exist when the run starts
/// writable = true        # path: it may appear in file_write / write_paths
/// default = "/srv/burrow/repo"
///
/// [permissions]
/// file_write = ["${repo}/**"]
/// ```
package struct ProfileParameter: Sendable, Equatable, Codable {
    package enum Kind: Sendable, Equatable, Codable {
        /// An absolute, normalised host path; a caller's value must lie in the
        /// policy's `[parameters] allowed_roots`.
        case path(mustExist: Bool, writable: Bool)
        /// A host name or address, for `network` entries (`${host}:443`).
        case host
        /// Text matching `pattern` (whole), for the command and the environment only.
        case string(pattern: String)

        package var type: ParameterType {
            switch self {
            case .path: .path
            case .host: .host
            case .string: .string
            }
        }
    }

    package var name: String
    package var kind: Kind
    package var description: String?
    package var defaultValue: String?
}

/// What a parameter names: `type` in its declaration.
package enum ParameterType: String, Sendable, Codable {
    case path, host, string
}

/// A parameter with the value one run uses.
package struct ResolvedParameter: Sendable, Equatable, Codable {
    package enum Source: String, Sendable, Codable {
        /// Supplied with the run.
        case caller
        /// The declaration's `default`.
        case `default`
        /// None supplied (lint, registration): a stand-in, so the rest of the
        /// profile can be checked; nothing runs with it.
        case placeholder
    }

    package var name: String
    package var type: ParameterType
    package var value: String
    package var source: Source
    /// Path parameters: whether the value must exist when the run starts.
    package var mustExist: Bool = false

    package init(name: String, type: ParameterType, value: String, source: Source, mustExist: Bool = false) {
        self.name = name
        self.type = type
        self.value = value
        self.source = source
        self.mustExist = mustExist
    }
}

/// What values a load substitutes.
package enum ParameterValues: Sendable, Equatable, Hashable {
    /// A run: every parameter needs a value, supplied or a default.
    case supplied([String: String])
    /// Checking a profile (lint, registration): defaults, else stand-ins.
    case placeholders
}

package enum ProfileParameters {
    /// Grant lists that may refer to parameters, with the kinds they take.
    static let pathLists: Set<String> = [
        "permissions.file_read", "permissions.file_write", "filesystem_access.read_paths", "filesystem_access.write_paths", "filesystem_access.blocked_paths",
    ]
    static let writeLists: Set<String> = ["permissions.file_write", "filesystem_access.write_paths"]
    static let networkList = "permissions.network"
    /// At most this many parameters per profile, and values this long.
    static let maxParameters = 32
    static let maxValueBytes = 4096

    /// Reads the declarations in `document`, checks `values` against them and
    /// `policy`, and returns the document with every reference replaced and
    /// `[parameters]` removed (nil when anything is wrong; `log` says what).
    static func apply(
        to document: ConfigValue, values: ParameterValues, policy: HostPolicy, log: IssueLog
    ) -> (document: ConfigValue, parameters: [ProfileParameter], resolved: [ResolvedParameter])? {
        guard case .table(var root) = document else { return (document, [], []) }
        let declarations = root.removeValue(forKey: "parameters").flatMap { declare($0, log: log) } ?? []
        let byName = Dictionary(declarations.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var resolved: [ResolvedParameter] = []
        if case .supplied(let supplied) = values {
            for name in supplied.keys.sorted() where byName[name] == nil {
                let declared = declarations.isEmpty ? "it declares none" : "it declares \(declarations.map(\.name).joined(separator: ", "))"
                log.error("parameters", "unknown parameter '\(printable(name))': \(declared)")
            }
        }
        for p in declarations {
            var value: String
            var source: ResolvedParameter.Source
            if case .supplied(let supplied) = values, let given = supplied[p.name] {
                (value, source) = (given, .caller)
            } else if let d = p.defaultValue {
                (value, source) = (d, .default)
            } else if values == .placeholders {
                (value, source) = (placeholder(p), .placeholder)
            } else {
                log.error("parameters.\(p.name)", "the parameter '\(p.name)' needs a value: --param \(p.name)=\(p.kind.type.rawValue.uppercased()) (or \"parameters\" in a burrowd request)")
                continue
            }
            if source != .placeholder, let problem = check(value, p, fromCaller: source == .caller, policy: policy) {
                log.error(source == .caller ? "parameters.\(p.name)" : "parameters.\(p.name).default", "'\(printable(value))' for \(p.name): \(problem)")
                continue
            }
            var r = ResolvedParameter(name: p.name, type: p.kind.type, value: value, source: source)
            if case .path(let mustExist, _) = p.kind { r.mustExist = mustExist }
            resolved.append(r)
        }
        guard !log.hasErrors else { return nil }
        let values = Dictionary(resolved.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        let substituted = substitute(.table(root), path: "", byName: byName, values: values, log: log)
        return log.hasErrors ? nil : (substituted, declarations, resolved)
    }

    /// `${name}` replaced in `text` for every declared name (others are left
    /// as written: a shell's `${HOME}` in a command is not a parameter).
    package static func substitute(_ text: String, _ resolved: [ResolvedParameter]) -> String {
        guard text.contains("${") else { return text }
        var out = text
        for r in resolved { out = out.replacing("${\(r.name)}", with: r.value) }
        return out
    }

    // MARK: declarations

    private static func declare(_ value: ConfigValue, log: IssueLog) -> [ProfileParameter]? {
        guard var table = TableReader(log: log, path: "parameters", value: value) else { return nil }
        var out: [ProfileParameter] = []
        let names = table.entries.keys.sorted()
        if names.count > maxParameters { log.error("parameters", "\(names.count) parameters, more than the \(maxParameters) a profile may declare") }
        for name in names.prefix(maxParameters) {
            let path = "parameters.\(name)"
            guard isName(name) else {
                _ = table.value(name)
                log.error(path, "a parameter name is a-z, 0-9 and _, starting with a letter, up to 32 characters")
                continue
            }
            guard var t = table.table(name) else { continue }
            let description = t.string("description")
            let defaultValue = t.string("default")
            let kind: ProfileParameter.Kind?
            switch t.string("type") {
            case "path":
                kind = .path(mustExist: t.bool("must_exist") ?? false, writable: t.bool("writable") ?? false)
            case "host":
                kind = .host
            case "string":
                if let pattern = t.string("pattern") {
                    if (try? Regex(pattern)) == nil {
                        log.error(t.keyPath("pattern"), "not a regular expression: '\(printable(pattern))'")
                        kind = nil
                    } else {
                        kind = .string(pattern: pattern)
                    }
                } else {
                    log.error(t.keyPath("pattern"), "a string parameter needs a pattern its values must match whole, such as \"^[a-z0-9-]{1,32}$\"")
                    kind = nil
                }
            case nil:
                log.error(t.keyPath("type"), "a parameter needs a type: path, host or string")
                kind = nil
            case let other?:
                log.error(t.keyPath("type"), "unknown parameter type '\(printable(other))': path, host or string")
                kind = nil
            }
            t.finish()
            if let kind { out.append(ProfileParameter(name: name, kind: kind, description: description, defaultValue: defaultValue)) }
        }
        return out
    }

    private static func isName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first), name.count <= 32 else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    private static func placeholder(_ p: ProfileParameter) -> String {
        switch p.kind {
        case .path: "/burrow-parameter/\(p.name)"
        case .host: "\(p.name.replacing("_", with: "-")).parameter.invalid"
        case .string: ""
        }
    }

    // MARK: values

    /// Why `value` does not fit `p`, or nil.
    private static func check(_ value: String, _ p: ProfileParameter, fromCaller: Bool, policy: HostPolicy) -> String? {
        guard value.utf8.count <= maxValueBytes else { return "longer than \(maxValueBytes) bytes" }
        guard !value.utf8.contains(0) else { return "holds a NUL byte" }
        guard !value.contains("${") else { return "a value may not refer to a parameter" }
        switch p.kind {
        case .path:
            switch PathPattern.parse(value) {
            case .failure(let e): return e.message
            case .success(let pattern) where pattern.subtree || value.contains("*") || value.contains("?"):
                return "a path parameter is one path, without wildcards (the profile adds '/**')"
            case .success:
                break
            }
            if value == "/" { return "the whole file system cannot be a parameter" }
            let roots = policy.parameters.allowedRoots
            // Strictly below a root: the root itself would hand over all of it.
            if fromCaller && !roots.contains(where: { value.hasPrefix($0 == "/" ? "/" : $0 + "/") && value != $0 }) {
                let listed = roots.isEmpty ? "none are set" : roots.joined(separator: ", ")
                return "not below the host policy's [parameters] allowed_roots (\(listed))"
            }
            return nil
        case .host:
            switch NetworkTarget.parseHost(value, original: value) {
            // A caller names a public host: the host's loopback and literal
            // addresses (private ranges, metadata endpoints) are the profile's to grant.
            case .success(.name(let n)) where fromCaller && (n == "localhost" || n.hasSuffix(".localhost")):
                return "the host's loopback can only be granted by the profile itself"
            case .success(.address) where fromCaller:
                return "a caller names a host by its DNS name; addresses can only be granted by the profile itself"
            case .success(.name), .success(.address): return nil
            case .success: return "one host name or address, without '*' or a prefix"
            case .failure(let e): return e.message
            }
        case .string(let pattern):
            guard let regex = try? Regex(pattern), (try? regex.wholeMatch(in: value)) != nil else {
                return "does not match the pattern \(pattern)"
            }
            return nil
        }
    }

    // MARK: substitution

    /// Walks the document: references are replaced in the grant lists that
    /// take them (checked for kind), and refused anywhere else.
    private static func substitute(_ value: ConfigValue, path: String, byName: [String: ProfileParameter], values: [String: String], log: IssueLog) -> ConfigValue {
        switch value {
        case .table(let entries):
            var out: [String: ConfigValue] = [:]
            for (key, child) in entries {
                out[key] = substitute(child, path: path.isEmpty ? key : "\(path).\(key)", byName: byName, values: values, log: log)
            }
            return .table(out)
        case .array(let items):
            // Outside the grant lists, only a declared name is a reference (a
            // content filter may well match the text "${jndi:").
            let grantList = pathLists.contains(path) || path == networkList
            return .array(
                items.enumerated().map { i, item in
                    guard case .string(let text) = item, grantList ? text.contains("${") : byName.keys.contains(where: { text.contains("${\($0)}") }) else {
                        return substitute(item, path: "\(path)[\(i)]", byName: byName, values: values, log: log)
                    }
                    return .string(reference(text, in: path, at: "\(path)[\(i)]", byName: byName, values: values, log: log))
                })
        case .string(let text) where byName.keys.contains(where: { text.contains("${\($0)}") }):
            log.error(path, "parameters (${…}) may be used only in permissions.file_read, file_write, network and filesystem_access.read_paths, write_paths, blocked_paths")
            return value
        default:
            return value
        }
    }

    /// One grant that refers to a parameter: `${name}` or `${name}/rest` in a
    /// path list, `${name}:ports` in the network list.
    private static func reference(_ text: String, in list: String, at keyPath: String, byName: [String: ProfileParameter], values: [String: String], log: IssueLog) -> String {
        guard text.hasPrefix("${"), let close = text.firstIndex(of: "}") else {
            log.error(keyPath, "a parameter is used at the start of a grant: '${name}/…' or '${name}:port'")
            return text
        }
        let name = String(text[text.index(text.startIndex, offsetBy: 2)..<close])
        let rest = text[text.index(after: close)...]
        guard let p = byName[name] else {
            log.error(
                keyPath, "unknown parameter '\(printable(name))'\(byName.isEmpty ? ": declare it in [parameters.\(printable(name))]" : " (declared: \(byName.keys.sorted().joined(separator: ", ")))")")
            return text
        }
        guard let value = values[name] else { return text }
        switch p.kind {
        case .path(_, let writable):
            guard pathLists.contains(list) else {
                log.error(keyPath, "'\(name)' is a path parameter: it goes in file_read, file_write, read_paths, write_paths or blocked_paths")
                return text
            }
            guard rest.isEmpty || rest.hasPrefix("/") else {
                log.error(keyPath, "write '${\(name)}' or '${\(name)}/…'")
                return text
            }
            if writeLists.contains(list) && !writable {
                log.error(keyPath, "'\(name)' is not declared writable = true: it cannot be granted for writing")
                return text
            }
            return value + rest
        case .host:
            guard list == networkList, rest.hasPrefix(":") else {
                log.error(keyPath, "'\(name)' is a host parameter: write '${\(name)}:PORT' in permissions.network")
                return text
            }
            return (value.contains(":") ? "[\(value)]" : value) + rest
        case .string:
            log.error(keyPath, "'\(name)' is a string parameter: strings go in the command and the environment only, never in a grant")
            return text
        }
    }

    private static func printable(_ text: String) -> String {
        String(text.unicodeScalars.prefix(200).map { $0.properties.isDefaultIgnorableCodePoint || $0.value < 0x20 || $0.value == 0x7f ? "?" : Character($0) })
    }
}
