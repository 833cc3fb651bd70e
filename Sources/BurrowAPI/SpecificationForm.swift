package import BurrowJSON
import BurrowProfile
import FoundationEssentials

/// The MCP Registry specification's form of a registration, beside
/// Burrow's own: snake_case names, `security` (the specification's
/// SecurityProfile, with its `Permission` list) instead of `profile`,
/// `metadata.documentation` and `metadata.dependencies` as
/// `{id, version_requirement}`, and `registered_at` in answers. Both forms
/// decode to one `ToolRegistration`: `security` becomes the profile's JSON
/// form (the `[permissions]` table from the list, `[tool]` from the
/// registration), which the profile loader then validates like any other.
/// `command`, which the specification does not have, is Burrow's
/// extension and required: it is what runs. `manifest` (`{manifest,
/// signature}`, as in Burrow's form) is Burrow's extension too: the
/// tool's signed manifest, whose `profile` digest is that of the profile
/// `security` converts to (`burrow tools manifest --registration` makes
/// one); answers add `trust`, the level its invocations get.
package enum SpecificationForm {
    /// A body in the specification's form: it has `security` and no `profile`.
    package static func matches(_ body: JSON) -> Bool {
        guard case .object(let fields) = body else { return false }
        return fields["security"] != nil && fields["profile"] == nil
    }

    /// Why a specification-form body is not a registration (its key path and the reason).
    package struct Problem: Error, Equatable, CustomStringConvertible {
        package var keyPath: String
        package var message: String
        package var description: String { keyPath.isEmpty ? message : "\(keyPath): \(message)" }

        init(_ keyPath: String, _ message: String) {
            self.keyPath = keyPath
            self.message = message
        }
    }

    /// A registration document in either form, as burrowd takes it: the
    /// specification's when `matches`, else Burrow's (decoded strictly,
    /// strings and the whole at most `limit` bytes). `burrow tools
    /// manifest --registration` reads one the same way, so the profile it
    /// signs is the one burrowd loads.
    package static func decode(_ body: JSON, limit: Int) throws(Problem) -> (registration: ToolRegistration, specification: Bool) {
        if matches(body) { return (try registration(body), true) }
        do {
            let decoder = StrictJSONDecoder(limits: JSONLimits(maxStringBytes: limit, maxBytes: limit))
            return (try decoder.decode(ToolRegistration.self, from: Array(body.canonicalText.utf8)), false)
        } catch {
            throw Problem("", "\(error)")
        }
    }

    /// The registration a specification-form body describes.
    package static func registration(_ body: JSON) throws(Problem) -> ToolRegistration {
        guard case .object(let top) = body else { throw Problem("", "expected a JSON object") }
        // registered_at, updated_at, registered_by, health_state, statistics and trust are burrowd's (an answer sent back as an update has them): ignored.
        let known: Set = [
            "id", "metadata", "security", "capabilities", "status", "registered_at", "updated_at", "registered_by", "command", "rate_limits", "health", "health_state",
            "statistics", "manifest", "trust",
        ]
        if let unknown = top.keys.filter({ !known.contains($0) }).sorted().first {
            throw Problem(unknown, "not a field of a registration (expected \(known.sorted().joined(separator: ", ")))")
        }
        let id = try string(top["id"], "id")
        guard case .object(let meta)? = top["metadata"] else { throw Problem("metadata", "expected an object: name, version, description, author, categories, documentation, dependencies") }
        let metaKnown: Set = ["name", "version", "description", "author", "categories", "documentation", "dependencies"]
        if let unknown = meta.keys.filter({ !metaKnown.contains($0) }).sorted().first { throw Problem("metadata.\(unknown)", "not a field of metadata") }
        var dependencies: [ToolDependency] = []
        if let given = meta["dependencies"] {
            guard case .array(let items) = given else { throw Problem("metadata.dependencies", "expected a list of {id, version_requirement}") }
            for (i, item) in items.enumerated() {
                let path = "metadata.dependencies[\(i)]"
                switch item {
                case .string(let dependency): dependencies.append(ToolDependency(id: dependency))
                case .object(let d):
                    if let unknown = d.keys.filter({ $0 != "id" && $0 != "version_requirement" }).first { throw Problem("\(path).\(unknown)", "expected id and version_requirement") }
                    dependencies.append(ToolDependency(id: try string(d["id"], "\(path).id"), versionRequirement: try optionalString(d["version_requirement"], "\(path).version_requirement") ?? "*"))
                default: throw Problem(path, "expected {id, version_requirement}")
                }
            }
        }
        let metadata = ToolMetadata(
            name: try string(meta["name"], "metadata.name"), version: try string(meta["version"], "metadata.version"),
            description: try optionalString(meta["description"], "metadata.description") ?? "", author: try optionalString(meta["author"], "metadata.author"),
            categories: try strings(meta["categories"], "metadata.categories"), documentationURL: try optionalString(meta["documentation"], "metadata.documentation"),
            dependencies: dependencies)
        guard case .array(let commandItems)? = top["command"] else {
            throw Problem("command", "required: the command Burrow runs for each invocation (a list of strings; Burrow's extension to the specification's registration)")
        }
        let command = try strings(.array(commandItems), "command")
        let capabilities: [JSON]
        switch top["capabilities"] {
        case nil: capabilities = []
        case .array(let items)?: capabilities = items
        case .object(let fields)?:
            if case .array(let tools)? = fields["tools"] { capabilities = tools } else { capabilities = [.object(fields)] }
        default: throw Problem("capabilities", "expected the tool's capabilities: an object, or a list of MCP tool schemas")
        }
        var status = ToolStatus.active
        if let given = top["status"] {
            let text = try string(given, "status").lowercased()
            guard let s = ToolStatus(rawValue: text), ToolStatus.registrable.contains(s) else {
                // degraded and unavailable are the health checks' to set: never silently taken as active.
                throw Problem("status", "expected active, deprecated or disabled (degraded and unavailable are set by health checks)")
            }
            status = s
        }
        var health: HealthCheck?
        if let given = top["health"] {
            let keys = ["interval_seconds", "timeout_seconds", "unhealthy_threshold", "command"]
            guard case .object(let h) = given, h.keys.allSatisfy(keys.contains) else { throw Problem("health", "expected an object: \(keys.joined(separator: ", "))") }
            func number(_ key: String, _ fallback: Int) throws(Problem) -> Int { try h[key].map { v throws(Problem) in try integer(v, "health.\(key)") } ?? fallback }
            health = HealthCheck(
                intervalSeconds: try number("interval_seconds", HealthCheck.defaultInterval), timeoutSeconds: try number("timeout_seconds", HealthCheck.defaultTimeout),
                unhealthyThreshold: try number("unhealthy_threshold", HealthCheck.defaultThreshold),
                command: h["command"] == nil ? nil : try strings(h["command"], "health.command"))
        }
        var rateLimits: ToolRateLimits?
        if let given = top["rate_limits"] {
            guard case .object(let r) = given, r.keys.allSatisfy({ $0 == "requests_per_minute" || $0 == "max_concurrent" }) else {
                throw Problem("rate_limits", "expected requests_per_minute and max_concurrent")
            }
            rateLimits = ToolRateLimits(
                requestsPerMinute: try r["requests_per_minute"].map { v throws(Problem) in try integer(v, "rate_limits.requests_per_minute") },
                maxConcurrent: try r["max_concurrent"].map { v throws(Problem) in try integer(v, "rate_limits.max_concurrent") })
        }
        let profile = try profile(top["security"] ?? .null, id: id, metadata: metadata)
        var registration = ToolRegistration(
            id: id, metadata: metadata, profile: profile, command: command, capabilities: capabilities, status: status, rateLimits: rateLimits, health: health)
        if let given = top["manifest"] {
            // Burrow's extension, as in its own form: the manifest's exact text and its signature file's.
            guard case .object(let m) = given, m.keys.allSatisfy({ $0 == "manifest" || $0 == "signature" }) else {
                throw Problem("manifest", "expected {manifest, signature}: the manifest's exact text and its .sig file's (burrow tools sign)")
            }
            registration.manifest = SignedManifest(manifest: try string(m["manifest"], "manifest.manifest"), signature: try string(m["signature"], "manifest.signature"))
        }
        return registration
    }

    /// The specification's `Permission` variants and the `[permissions]` keys they fill.
    static let permissions = ["FileRead": "file_read", "FileWrite": "file_write", "Execute": "execute", "Network": "network"]

    /// A validation request in the specification's form: `security`, and
    /// optionally `id`, `metadata` (`name`, `version`) and `command` (the
    /// plan it would get is compiled too).
    package static func validation(_ body: JSON) throws(Problem) -> ValidationRequest {
        guard case .object(let top) = body else { throw Problem("", "expected a JSON object") }
        let known: Set = ["id", "metadata", "security", "command"]
        if let unknown = top.keys.filter({ !known.contains($0) }).sorted().first {
            throw Problem(unknown, "not a field of a validation request (expected \(known.sorted().joined(separator: ", ")))")
        }
        let id = try optionalString(top["id"], "id") ?? "profile"
        let name = try optionalString(top["metadata"]?["name"], "metadata.name") ?? id
        let version = try optionalString(top["metadata"]?["version"], "metadata.version") ?? "1"
        let command: [String]? = top["command"] == nil ? nil : try strings(top["command"], "command")
        let profile = try profile(top["security"] ?? .null, id: id, metadata: ToolMetadata(name: name, version: version))
        return ValidationRequest(profile: profile, command: command, id: id)
    }

    /// The profile (its JSON form) of a specification SecurityProfile.
    static func profile(_ security: JSON, id: String, metadata: ToolMetadata) throws(Problem) -> JSON {
        guard case .object(var fields) = security else { throw Problem("security", "expected the security profile: an object") }
        var profile: [String: JSON] = [:]
        var table: [String: JSON] = [:]
        if let given = fields.removeValue(forKey: "permissions") {
            guard case .array(let items) = given else {
                throw Problem("security.permissions", "expected a list of permissions, such as [{\"FileRead\": [\"/srv/data/**\"]}, {\"Execute\": [\"python3\"]}]")
            }
            var lists: [String: [JSON]] = [:]
            var environment: [JSON] = []
            for (i, item) in items.enumerated() {
                let path = "security.permissions[\(i)]"
                guard case .object(let one) = item, one.count == 1, let (kind, value) = one.first else {
                    throw Problem(path, "expected one permission: {\"FileRead\" | \"FileWrite\" | \"Execute\" | \"Network\" | \"Environment\": [patterns]} or {\"Process\": {…}}")
                }
                switch kind {
                case "Process":
                    guard case .object = value, table["process"] == nil else { throw Problem("\(path).Process", "expected one object of process permissions") }
                    table["process"] = value
                case "Environment":
                    guard case .array(let patterns) = value else { throw Problem("\(path).Environment", "expected a list of variable names or patterns") }
                    environment += patterns
                default:
                    guard let key = permissions[kind] else { throw Problem("\(path).\(kind)", "not a permission: FileRead, FileWrite, Execute, Network, Environment or Process") }
                    guard case .array(let patterns) = value else { throw Problem("\(path).\(kind)", "expected a list of patterns") }
                    lists[key, default: []] += patterns
                }
            }
            for (key, patterns) in lists { table[key] = .array(patterns) }
            if !environment.isEmpty { profile["env_whitelist"] = .array(environment) }
        }
        // What an answer of burrowd's showed under Burrow's own name (no variant of the specification's has it).
        if case .object(let extra)? = fields.removeValue(forKey: "burrow_permissions") {
            for (key, value) in extra where table[key] == nil { table[key] = value }
        }
        if !table.isEmpty { profile["permissions"] = .object(table) }
        if let limits = fields.removeValue(forKey: "resource_limits") {
            guard case .object(let given) = limits else { throw Problem("security.resource_limits", "expected an object") }
            var converted: [String: JSON] = [:]
            for (key, value) in given {
                let path = "security.resource_limits.\(key)"
                switch key {
                case "max_cpu_time", "max_execution_time": converted[key] = try duration(value, path)
                default: converted[key] = value
                }
            }
            profile["resource_limits"] = .object(converted)
        }
        for key in ["sandbox_level", "network_access"] {
            guard let value = fields.removeValue(forKey: key) else { continue }
            // The specification's enum variants (Container, VM) as the profile writes them.
            profile[key] = .string(try string(value, "security.\(key)").lowercased())
        }
        if let env = fields.removeValue(forKey: "env_whitelist") {
            guard case .array(let names) = env else { throw Problem("security.env_whitelist", "expected a list") }
            profile["env_whitelist"] = .array((profile["env_whitelist"]?.arrayValue ?? []) + names)
        }
        // The trust level the profile claims (the profile's [tool] trust_level; a signer decides what it gets).
        let trustLevel = try fields.removeValue(forKey: "trust_level").map { v throws(Problem) in try string(v, "security.trust_level").lowercased() }
        // The rest (filesystem_access, and Burrow's own profile keys) as the profile has them.
        for (key, value) in fields where key != "tool" { profile[key] = value }
        var tool: [String: JSON] = ["id": .string(id), "name": .string(metadata.name), "version": .string(metadata.version)]
        tool["trust_level"] = trustLevel.map(JSON.string)
        if !metadata.description.isEmpty { tool["description"] = .string(metadata.description) }
        profile["tool"] = .object(tool)
        return .object(profile)
    }

    /// A duration as the profile writes it: seconds (a number), serde's
    /// `{secs, nanos}`, or already text (`"30s"`).
    static func duration(_ value: JSON, _ path: String) throws(Problem) -> JSON {
        switch value {
        case .string: return value
        case .number(let n):
            guard let seconds = Double(n), seconds.isFinite, seconds >= 0, seconds <= 1e9 else { throw Problem(path, "expected seconds") }
            return .string("\(Int64((seconds * 1000).rounded()))ms")
        case .object(let o):
            guard o.keys.allSatisfy({ $0 == "secs" || $0 == "nanos" }), case .number(let s)? = o["secs"], let secs = Int64(s), secs >= 0, secs <= 1_000_000_000 else {
                throw Problem(path, "expected {secs, nanos}")
            }
            var nanos: Int64 = 0
            if case .number(let n)? = o["nanos"] { nanos = Int64(n) ?? 0 }
            return .string("\(secs * 1000 + nanos / 1_000_000)ms")
        default: throw Problem(path, "expected a duration: seconds, {secs, nanos} or \"30s\"")
        }
    }

    /// A stored registration in the specification's form.
    package static func json(_ record: ToolRecord) -> JSON {
        let r = record.registration
        let m = r.metadata
        var metadata: [String: JSON] = [
            "name": .string(m.name), "version": .string(m.version), "description": .string(m.description), "categories": .array(m.categories.map(JSON.string)),
            "dependencies": .array(m.dependencies.map { .object(["id": .string($0.id), "version_requirement": .string($0.versionRequirement)]) }),
        ]
        metadata["author"] = m.author.map(JSON.string)
        metadata["documentation"] = m.documentationURL.map(JSON.string)
        var out: [String: JSON] = [
            "id": .string(r.id), "metadata": .object(metadata), "security": security(r.profile), "capabilities": .array(r.capabilities),
            "command": .array(r.command.map(JSON.string)), "status": .string(record.status.rawValue), "registered_at": .string(record.registeredAt),
            "updated_at": .string(record.updatedAt), "registered_by": .string(record.registeredBy),
        ]
        if let limits = r.rateLimits {
            var l: [String: JSON] = [:]
            l["requests_per_minute"] = limits.requestsPerMinute.map { .number(String($0)) }
            l["max_concurrent"] = limits.maxConcurrent.map { .number(String($0)) }
            out["rate_limits"] = .object(l)
        }
        if let h = r.health {
            var fields: [String: JSON] = [
                "interval_seconds": .integer(Int64(h.intervalSeconds)), "timeout_seconds": .integer(Int64(h.timeoutSeconds)),
                "unhealthy_threshold": .integer(Int64(h.unhealthyThreshold)),
            ]
            fields["command"] = h.command.map { .array($0.map(JSON.string)) }
            out["health"] = .object(fields)
        }
        if let h = record.health {
            var fields: [String: JSON] = ["status": .string(h.status.rawValue), "version": .string(h.version), "consecutive_failures": .integer(Int64(h.consecutiveFailures))]
            fields["since"] = h.since.map(JSON.string)
            fields["checked_at"] = h.checkedAt.map(JSON.string)
            fields["last_error"] = h.lastError.map(JSON.string)
            fields["last_milliseconds"] = h.lastMilliseconds.map { .integer($0) }
            out["health_state"] = .object(fields)
        }
        if let m = r.manifest {
            out["manifest"] = .object(["manifest": .string(m.manifest), "signature": .string(m.signature)])
        }
        if let t = record.validation.plan?.trust {
            var fields: [String: JSON] = ["level": .string(t.level), "claimed": .string(t.claimed), "reason": .string(t.reason)]
            fields["signer"] = t.signer.map(JSON.string)
            fields["granted"] = t.granted.map(JSON.string)
            fields["expires"] = t.expires.map(JSON.string)
            fields["manifest_digest"] = t.manifestDigest.map(JSON.string)
            out["trust"] = .object(fields)
        }
        if let statistics = record.statistics { out["statistics"] = json(statistics) }
        return .object(out)
    }

    /// A tool's statistics in the specification's snake_case (`success_rate`, `p50_milliseconds`, …).
    package static func json(_ statistics: ToolStatistics) -> JSON {
        guard let encoded = try? JSONEncoder().encode(statistics), case .object(let fields)? = try? JSONParser.parse(Array(encoded)) else { return .object([:]) }
        let names = [
            "successRate": "success_rate", "p50Milliseconds": "p50_milliseconds", "p95Milliseconds": "p95_milliseconds", "meanCPUMicroseconds": "mean_cpu_microseconds",
            "peakMemoryBytes": "peak_memory_bytes", "limitHits": "limit_hits",
        ]
        return .object(Dictionary(uniqueKeysWithValues: fields.map { (names[$0.key] ?? $0.key, $0.value) }))
    }

    /// A ranked tool (capability matching, recommendations), its statistics in the specification's form.
    package static func json(_ ranked: RankedTool) -> JSON {
        guard let encoded = try? JSONEncoder().encode(ranked), case .object(var fields)? = try? JSONParser.parse(Array(encoded)) else { return .object([:]) }
        if let statistics = ranked.statistics { fields["statistics"] = json(statistics) }
        return .object(fields)
    }

    /// A profile (JSON, or TOML text) as the specification's SecurityProfile:
    /// the `[permissions]` lists as `Permission` variants, the rest as the
    /// profile has it. (A profile that `extends` another shows its own keys:
    /// the effective profile is in the validation report's plan.)
    package static func security(_ profile: JSON) -> JSON {
        var fields: [String: JSON]
        switch profile {
        case .object(let o): fields = o
        case .string(let text):
            guard case .object(let o)? = try? ConfigValue.parse(text, format: .toml, file: "profile").json else { return profile }
            fields = o
        default: return profile
        }
        if case .object(let tool)? = fields.removeValue(forKey: "tool"), let level = tool["trust_level"] { fields["trust_level"] = level }
        var list: [JSON] = []
        if case .object(var table)? = fields.removeValue(forKey: "permissions") {
            for (kind, key) in permissions.sorted(by: { $0.key < $1.key }) {
                if let patterns = table.removeValue(forKey: key) { list.append(.object([kind: patterns])) }
            }
            if let process = table.removeValue(forKey: "process") { list.append(.object(["Process": process])) }
            // Keys the specification has no variant for stay under Burrow's own name.
            if !table.isEmpty { fields["burrow_permissions"] = .object(table) }
        }
        if case .array(let names)? = fields.removeValue(forKey: "env_whitelist"), !names.isEmpty { list.append(.object(["Environment": .array(names)])) }
        fields["permissions"] = .array(list)
        return .object(fields)
    }

    private static func string(_ value: JSON?, _ path: String) throws(Problem) -> String {
        guard case .string(let s)? = value else { throw Problem(path, value == nil ? "required: a string" : "expected a string") }
        return s
    }

    private static func optionalString(_ value: JSON?, _ path: String) throws(Problem) -> String? {
        guard let value else { return nil }
        return try string(value, path)
    }

    private static func strings(_ value: JSON?, _ path: String) throws(Problem) -> [String] {
        guard let value else { return [] }
        guard case .array(let items) = value else { throw Problem(path, "expected a list of strings") }
        var out: [String] = []
        for (i, item) in items.enumerated() { out.append(try string(item, "\(path)[\(i)]")) }
        return out
    }

    private static func integer(_ value: JSON, _ path: String) throws(Problem) -> Int {
        guard case .number(let n) = value, let i = Int(n) else { throw Problem(path, "expected an integer") }
        return i
    }
}
