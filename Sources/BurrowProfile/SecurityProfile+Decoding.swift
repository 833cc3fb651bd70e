extension SecurityProfile {
    /// Keys of the profile document, in the order docs/profiles.md documents them.
    static let topLevelKeys = [
        "extends", "tool", "sandbox_level", "network_access", "env_whitelist", "permissions", "resource_limits",
        "filesystem_access", "mcp", "mcp_policy",
    ]

    /// Decodes and validates a (merged) profile document against `policy`.
    /// Every problem goes to `log`; returns nil when any was an error.
    static func decode(_ document: ConfigValue, policy: HostPolicy, log: IssueLog) -> SecurityProfile? {
        guard var root = TableReader(log: log, path: "", value: document) else { return nil }
        _ = root.value("extends")  // resolved by the loader before decoding

        var tool = ToolIdentity(id: "", name: "", version: "")
        if var t = root.table("tool") {
            tool.id = t.string("id") ?? ""
            tool.name = t.string("name") ?? ""
            tool.version = t.string("version") ?? ""
            tool.description = t.string("description") ?? ""
            tool.trustLevel = t.enumValue("trust_level", TrustLevel.self) ?? .untrusted
            if let v = t.string("manifest") {
                if v.isEmpty || v.hasSuffix("/") || v.utf8.contains(0) {
                    log.error(t.keyPath("manifest"), "expected the manifest's file, such as 'tool.manifest' (beside the profile) or an absolute path")
                } else {
                    tool.manifest = v
                }
            }
            if t.entries["id"] == nil { log.error(t.keyPath("id"), "missing: every profile names its tool id") }
            if t.entries["name"] == nil { log.error(t.keyPath("name"), "missing: every profile names its tool") }
            if t.entries["version"] == nil { log.error(t.keyPath("version"), "missing: every profile names a tool version") }
            t.finish(topLevel: topLevelKeys)
        } else {
            log.error("tool", "missing: the [tool] table (id, name, version, trust_level) is required")
        }
        let idChars = Set("abcdefghijklmnopqrstuvwxyz0123456789._-")
        if !tool.id.isEmpty && (tool.id.count > 64 || !tool.id.allSatisfy(idChars.contains) || tool.id.hasPrefix(".")) {
            log.error("tool.id", "malformed id '\(tool.id)': up to 64 of a-z, 0-9, '.', '_', '-', not starting with '.'")
        }

        var profile = SecurityProfile(tool: tool)
        profile.sandboxLevel = root.enumValue("sandbox_level", SandboxLevel.self) ?? policy.security.defaultSandbox
        profile.networkAccess = root.enumValue("network_access", NetworkAccess.self) ?? .none
        profile.envWhitelist = root.list("env_whitelist", limit: DocumentLimits.maxEnvironmentEntries, EnvironmentPattern.parse)?.map(\.0) ?? []

        var networkPaths: [String] = []
        if var t = root.table("permissions") {
            let p = decodePermissions(&t, networkPaths: &networkPaths)
            profile.permissions = p
            t.finish(topLevel: topLevelKeys)
        }
        if var t = root.table("resource_limits") {
            profile.resourceLimits = ResourceLimits(
                maxCpuTime: t.duration("max_cpu_time"), maxMemory: t.size("max_memory"),
                maxFileSize: t.size("max_file_size"), maxOpenFiles: t.positive("max_open_files"),
                maxExecutionTime: t.duration("max_execution_time"), maxConnections: t.positive("max_connections"),
                maxNetworkBytes: t.size("max_network_bytes"), maxDiskWrite: t.size("max_disk_write"))
            t.finish(topLevel: topLevelKeys)
        }
        if var t = root.table("filesystem_access") {
            profile.filesystem.readPaths = t.list("read_paths", PathPattern.parse)?.map(\.0) ?? []
            profile.filesystem.writePaths = t.list("write_paths", PathPattern.parse)?.map(\.0) ?? []
            profile.filesystem.blockedPaths = t.list("blocked_paths", PathPattern.parse)?.map(\.0) ?? []
            if let s = t.size("scratch_size") { profile.filesystem.scratchSize = s }
            t.finish(topLevel: topLevelKeys)
        }
        let server = root.bool("mcp") ?? false
        if var t = root.table("mcp_policy") {
            profile.mcp = MCPPolicy.decode(&t, server: server)
            t.finish(topLevel: topLevelKeys)
        } else {
            profile.mcp.server = server
        }
        root.finish()

        profile.validate(policy: policy, log: log, networkPaths: networkPaths)
        return log.hasErrors ? nil : profile
    }

    private static func decodePermissions(_ t: inout TableReader, networkPaths: inout [String]) -> Permissions {
        var p = Permissions()
        p.fileRead = t.list("file_read", PathPattern.parse)?.map(\.0) ?? []
        p.fileWrite = t.list("file_write", PathPattern.parse)?.map(\.0) ?? []
        p.execute = t.list("execute", CommandPattern.parse)?.map(\.0) ?? []
        let network = t.list("network", NetworkTarget.parse) ?? []
        p.network = network.map(\.0)
        networkPaths = network.map(\.1)
        p.environment = t.list("environment", limit: DocumentLimits.maxEnvironmentEntries, EnvironmentPattern.parse)?.map(\.0) ?? []
        if var proc = t.table("process") {
            p.process.fork = proc.bool("fork") ?? p.process.fork
            p.process.signalOwn = proc.bool("signal_own") ?? p.process.signalOwn
            p.process.maxProcesses = proc.positive("max_processes") ?? p.process.maxProcesses
            proc.finish()
        }
        p.capabilities =
            t.list("capabilities") { name in
                keepableCapabilities.contains(name)
                    ? .success(name)
                    : .failure(
                        name.hasPrefix("CAP_") && name == name.uppercased()
                            ? "\(name) cannot be kept: it would let the tool weaken its own sandbox; keepable: \(keepableCapabilities.joined(separator: ", "))"
                            : "unknown capability '\(name)': write names like CAP_NET_BIND_SERVICE")
            }?.map(\.0) ?? []
        p.quietRefusals = t.list("quiet_refusals", QuietRefusal.parse)?.map(\.0) ?? []
        return p
    }

    /// Capabilities a profile may keep. Each is confined by the user namespace
    /// and the mount plan; none lets the tool change its own sandbox.
    package static let keepableCapabilities = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_NET_BIND_SERVICE",
    ]
}
