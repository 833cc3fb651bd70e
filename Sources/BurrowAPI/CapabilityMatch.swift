import BurrowJSON

/// A tool a discovery query ranked: capability matching
/// (`search?capability=…&input=…`) and recommendations
/// (`recommendations?context=…&tool=…`), highest score first, each with the
/// reasons for it.
package struct RankedTool: Codable, Sendable, Equatable {
    package var tool: String
    package var version: String
    package var score: Int
    /// Why: one line per match or signal.
    package var reasons: [String]
    /// The tool's status (health checks included), and its statistics over
    /// the last 7 days for auditors and admins (capability search only).
    package var status: ToolStatus?
    package var statistics: ToolStatistics?

    package init(tool: String, version: String, score: Int, reasons: [String], status: ToolStatus? = nil, statistics: ToolStatistics? = nil) {
        self.tool = tool
        self.version = version
        self.score = score
        self.reasons = reasons
        self.status = status
        self.statistics = statistics
    }

    /// Highest score first, then by id: the same data always ranks the same.
    package static func ranked(_ tools: [RankedTool]) -> [RankedTool] { tools.sorted { ($1.score, $0.tool) < ($0.score, $1.tool) } }
}

/// Capability matching: the tools whose MCP capabilities (tool names,
/// descriptions, inputSchema properties and their types) match what the
/// caller needs.
package enum CapabilityMatch {
    /// Words of a query: lowercase letters and digits, at most 16.
    package static func words(_ text: String) -> [String] {
        Array(text.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).prefix(16).map(String.init))
    }

    /// How `record`'s capabilities match: each `capability` word found in a
    /// tool's name (3 points), a property name (2) or a description (1); each
    /// `input` (`name`, `type`, or `name:type`) met by an inputSchema
    /// property (2). Nil when nothing matches.
    package static func match(_ record: ToolRecord, capability: [String], input: [String]) -> RankedTool? {
        var score = 0
        var matches: [String] = []
        for schema in record.registration.capabilities {
            guard case .object(let tool) = schema else { continue }
            let name = tool["name"]?.stringValue ?? "?"
            let nameWords = Set(words(name))
            let descriptionWords = Set(words(tool["description"]?.stringValue ?? ""))
            var properties: [(name: String, type: String)] = []
            if case .object(let props)? = tool["inputSchema"]?["properties"] {
                for (key, value) in props.sorted(by: { $0.key < $1.key }) { properties.append((key.lowercased(), value["type"]?.stringValue?.lowercased() ?? "")) }
            }
            let propertyWords = Set(properties.flatMap { words($0.name) })
            for word in capability {
                if nameWords.contains(word) {
                    score += 3
                    matches.append("\(name): its name has '\(word)'")
                } else if propertyWords.contains(word) {
                    score += 2
                    matches.append("\(name): an input property is named '\(word)'")
                } else if descriptionWords.contains(word) {
                    score += 1
                    matches.append("\(name): its description has '\(word)'")
                }
            }
            for wanted in input {
                let parts = wanted.lowercased().split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else { continue }
                let met = properties.first { p in
                    parts.count == 2 ? p.name == parts[0] && p.type == parts[1] : p.name == parts[0] || p.type == parts[0]
                }
                if let met {
                    score += 2
                    matches.append("\(name): input '\(met.name)' (\(met.type.isEmpty ? "any type" : met.type)) meets '\(wanted)'")
                }
            }
        }
        return score > 0 ? RankedTool(tool: record.registration.id, version: record.registration.metadata.version, score: score, reasons: matches, status: record.status) : nil
    }
}
