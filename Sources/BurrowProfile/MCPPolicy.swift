/// How the MCP relay treats a tool that is an MCP server: the profile's
/// top-level `mcp = true` and its `[mcp_policy]` table. `burrow mcp` applies
/// it whatever `mcp` says; the daemon opens sessions only for `mcp = true`.
package struct MCPPolicy: Sendable, Equatable, Codable {
    /// The tool is an MCP stdio server (`mcp = true`): the daemon serves it as sessions.
    package var server: Bool
    /// Requests from the client the server may have in hand at once, per session.
    package var maxConcurrentRequests: Int
    /// Requests per minute per session, by JSON-RPC method.
    package var rateLimits: [MethodRate]
    /// Checked in order on the string values of every tools/call's arguments.
    package var contentFilters: [ContentFilter]

    package init(server: Bool = false, maxConcurrentRequests: Int = MCPPolicy.defaultConcurrentRequests, rateLimits: [MethodRate] = [], contentFilters: [ContentFilter] = []) {
        self.server = server
        self.maxConcurrentRequests = maxConcurrentRequests
        self.rateLimits = rateLimits
        self.contentFilters = contentFilters
    }

    package static let defaultConcurrentRequests = 16
    /// The most a profile may ask for; a session is one process's pipe.
    package static let maxConcurrentRequestsCeiling = 1024
}

package struct MethodRate: Sendable, Equatable, Codable {
    package var method: String
    package var perMinute: Int

    package init(method: String, perMinute: Int) {
        self.method = method
        self.perMinute = perMinute
    }
}

/// A regular expression matched against the string values of a call's
/// arguments (the specification's InputValidator / ContentFilter).
package struct ContentFilter: Sendable, Equatable, Codable {
    package enum Action: String, Sendable, Codable, CaseIterable {
        /// The call is refused (PermissionDenied); it never reaches the server.
        case block
        /// Each match is replaced by `replacement` before the call is forwarded.
        case sanitize
        /// The call passes; the match is recorded on its ToolInvoked event.
        case log
        /// The call is refused unless it carries an approval for exactly this
        /// call (`params._meta["dev.burrow/approval"]`, see `burrow approve`).
        case authorize
    }

    package var name: String
    package var pattern: String
    package var action: Action
    /// The tools it applies to; empty: every tool.
    package var tools: [String]
    /// What `sanitize` writes in place of each match.
    package var replacement: String

    package init(name: String, pattern: String, action: Action, tools: [String] = [], replacement: String = "[redacted]") {
        self.name = name
        self.pattern = pattern
        self.action = action
        self.tools = tools
        self.replacement = replacement
    }

    package func applies(to tool: String) -> Bool { tools.isEmpty || tools.contains(tool) }
}

extension MCPPolicy {
    /// Reads `[mcp_policy]`; `server` comes from the top-level `mcp` key.
    static func decode(_ t: inout TableReader, server: Bool) -> MCPPolicy {
        var policy = MCPPolicy(server: server)
        if let n = t.positive("max_concurrent_requests") {
            if n > maxConcurrentRequestsCeiling {
                t.log.error(t.keyPath("max_concurrent_requests"), "\(n) is more than Burrow allows per session (\(maxConcurrentRequestsCeiling))")
            } else {
                policy.maxConcurrentRequests = n
            }
        }
        if var rates = t.table("rate_limits") {
            for method in rates.entries.keys.sorted() {
                guard let n = rates.positive(method) else { continue }
                if method.isEmpty || method.contains(where: { $0.isWhitespace }) {
                    rates.log.error(rates.keyPath(method), "'\(method)' is not a JSON-RPC method name, such as \"tools/call\"")
                } else {
                    policy.rateLimits.append(MethodRate(method: method, perMinute: n))
                }
            }
            rates.finish()
        }
        if let value = t.value("content_filters") {
            let path = t.keyPath("content_filters")
            guard case .array(let items) = value else {
                t.log.error(path, "expected an array of tables ([[mcp_policy.content_filters]]), found \(value.typeName)")
                return policy
            }
            for (i, item) in items.enumerated() {
                guard var f = TableReader(log: t.log, path: "\(path)[\(i)]", value: item) else { continue }
                if let filter = ContentFilter.decode(&f) {
                    if policy.contentFilters.contains(where: { $0.name == filter.name }) {
                        t.log.error(f.keyPath("name"), "a filter named '\(filter.name)' comes earlier: names must be unique (events cite them)")
                    } else {
                        policy.contentFilters.append(filter)
                    }
                }
                f.finish()
            }
        }
        return policy
    }
}

extension ContentFilter {
    static func decode(_ t: inout TableReader) -> ContentFilter? {
        let name = t.string("name")
        let pattern = t.string("pattern")
        let action = t.enumValue("action", Action.self)
        let tools = t.strings("tools")?.map(\.value) ?? []
        let replacement = t.string("replacement")
        if name == nil, t.entries["name"] == nil { t.log.error(t.keyPath("name"), "missing: every filter has a name, cited by its events") }
        if pattern == nil, t.entries["pattern"] == nil { t.log.error(t.keyPath("pattern"), "missing: the regular expression to look for") }
        if action == nil, t.entries["action"] == nil {
            t.log.error(t.keyPath("action"), "missing: one of \(Action.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let pattern {
            if pattern.isEmpty {
                t.log.error(t.keyPath("pattern"), "an empty pattern matches every call")
            } else {
                do {
                    _ = try Regex(pattern)
                } catch {
                    t.log.error(t.keyPath("pattern"), "not a regular expression Burrow can use: \(error)")
                }
            }
        }
        if replacement != nil, let action, action != .sanitize {
            t.log.error(t.keyPath("replacement"), "only a 'sanitize' filter replaces text; this one is '\(action.rawValue)'")
        }
        guard let name, let pattern, let action, !pattern.isEmpty, (try? Regex(pattern)) != nil else { return nil }
        return ContentFilter(name: name, pattern: pattern, action: action, tools: tools, replacement: replacement ?? "[redacted]")
    }
}
