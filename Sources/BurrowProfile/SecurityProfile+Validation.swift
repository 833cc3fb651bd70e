extension SecurityProfile {
    /// Cross-key rules: contradictions, paths against blocked paths, limits
    /// against the host policy. Per-value rules ran while decoding.
    func validate(policy: HostPolicy, log: IssueLog, networkPaths: [String]) {
        validatePaths(log: log)
        validateNetwork(policy: policy, log: log, networkPaths: networkPaths)
        validateLimits(policy: policy, log: log)
        validateEnvironment(log: log)

        // What the profile claims; a run gets no more than its signed
        // manifest's signer grants (the planner's trust step checks that).
        if tool.trustLevel < policy.security.minTrustLevel {
            log.error(
                "tool.trust_level",
                "trust level '\(tool.trustLevel.rawValue)' is below the host policy's minimum '\(policy.security.minTrustLevel.rawValue)' ([security] min_trust_level)")
        }
        if sandboxLevel == .none && tool.trustLevel != .system {
            log.error("sandbox_level", "'none' (no namespaces, seccomp or Landlock) is only for trust_level 'system' tools; this one is '\(tool.trustLevel.rawValue)'")
        }
    }

    /// Linear in the grants: duplicates through a dictionary, blocked paths
    /// through a trie of their components walked once per grant.
    private func validatePaths(log: IssueLog) {
        let reads = labelled(permissions.fileRead, "permissions.file_read") + labelled(filesystem.readPaths, "filesystem_access.read_paths")
        let writes = labelled(permissions.fileWrite, "permissions.file_write") + labelled(filesystem.writePaths, "filesystem_access.write_paths")
        let blocked = labelled(filesystem.blockedPaths, "filesystem_access.blocked_paths")

        var first: [String: (keyPath: String, isRead: Bool)] = [:]
        for (a, isRead) in reads.map({ ($0, true) }) + writes.map({ ($0, false) }) {
            guard let b = first[a.pattern.path] else {
                first[a.pattern.path] = (a.keyPath, isRead)
                continue
            }
            log.error(
                a.keyPath,
                b.isRead == isRead
                    ? "duplicate grant '\(a.pattern)' (already at \(b.keyPath))"
                    : "'\(a.pattern.path)' is granted for both reading (\(b.keyPath)) and writing: write access includes reading, keep it in the write list only")
        }
        var blocks = PathTrie()
        for (i, b) in blocked.enumerated() { blocks.insert(b.pattern.path, i) }
        for w in writes {
            if w.pattern.path == "/" { log.error(w.keyPath, "write access to '/' would make the whole host writable") }
            for i in blocks.covering(w.pattern.path) {
                log.error(w.keyPath, "write path '\(w.pattern.path)' lies inside blocked path '\(blocked[i].pattern.path)' (\(blocked[i].keyPath))")
            }
        }
        for r in reads {
            for i in blocks.covering(r.pattern.path) {
                log.error(r.keyPath, "read path '\(r.pattern.path)' lies inside blocked path '\(blocked[i].pattern.path)' (\(blocked[i].keyPath)): it would be masked")
            }
        }
        for b in blocked where b.pattern.path == "/" {
            log.error(b.keyPath, "blocking '/' would leave nothing to run")
        }
    }

    private func validateNetwork(policy: HostPolicy, log: IssueLog, networkPaths: [String]) {
        switch networkAccess {
        case .none where !permissions.network.isEmpty:
            log.error(networkPaths.first ?? "permissions.network", "network targets are listed but network_access is 'none': set it to 'restricted' or drop the targets")
        case .full where !permissions.network.isEmpty:
            log.error(networkPaths.first ?? "permissions.network", "network targets are listed but network_access is 'full', which allows everything: set it to 'restricted' to enforce them")
        case .restricted where permissions.network.isEmpty:
            log.error("network_access", "'restricted' needs at least one target in permissions.network; use 'none' for no network")
        default:
            break
        }
        // Only grants for the same host can overlap: compared within each host.
        var byHost: [NetworkTarget.Host: [Int]] = [:]
        for (i, a) in permissions.network.enumerated() {
            for j in byHost[a.host, default: []] where a.ports.overlaps(permissions.network[j].ports) {
                log.error(networkPaths[i], "'\(a)' overlaps '\(permissions.network[j])' (\(networkPaths[j])): merge them into one grant")
            }
            byHost[a.host, default: []].append(i)
        }
        for (i, target) in permissions.network.enumerated() {
            if let why = target.neverReachable {
                log.error(networkPaths[i], "'\(target)' can never be reached: \(why)")
            } else if target.host == .name("localhost") || target.reachesLoopback {
                log.warning(
                    networkPaths[i],
                    "'\(target)' reaches a service on the host's own loopback (the proxy connects from the host's side): grant it only for a service meant for this tool")
            }
        }
    }

    private func validateLimits(policy: HostPolicy, log: IssueLog) {
        let limits = resourceLimits
        let p = policy.policies
        func check<T: Comparable & CustomStringConvertible>(_ value: T?, _ max: T, _ key: String, _ policyKey: String) {
            if let value, value > max {
                log.error("resource_limits.\(key)", "\(value) exceeds the host policy maximum of \(max) ([policies] \(policyKey))")
            }
        }
        check(limits.maxCpuTime, p.maxCpuTime, "max_cpu_time", "max_cpu_time")
        check(limits.maxMemory, p.maxMemory, "max_memory", "max_memory_mb")
        check(limits.maxFileSize, p.maxFileSize, "max_file_size", "max_file_size_mb")
        check(limits.maxOpenFiles, p.maxOpenFiles, "max_open_files", "max_open_files")
        check(limits.maxExecutionTime, p.maxExecutionTime, "max_execution_time", "max_execution_time")
        check(limits.maxConnections, p.maxConnections, "max_connections", "max_connections")
        if let ceiling = p.maxNetworkBytes { check(limits.maxNetworkBytes, ceiling, "max_network_bytes", "max_network_mb") }
        if networkAccess != .restricted {
            for (value, key) in [(limits.maxConnections != nil, "max_connections"), (limits.maxNetworkBytes != nil, "max_network_bytes")] where value {
                log.warning("resource_limits.\(key)", "applies to the egress proxy only, which a profile gets with network_access = \"restricted\"")
            }
        }
        if let budget = limits.maxDiskWrite, budget.bytes > 1 << 50 {
            log.error("resource_limits.max_disk_write", "\(budget) is more than 1 PiB, the most a budget may be")
        }
        if limits.maxDiskWrite != nil, filesystem.allWrites(permissions).isEmpty {
            log.warning("resource_limits.max_disk_write", "bounds what a run adds under its write grants, and this profile has none")
        }
        if permissions.process.maxProcesses > p.maxProcesses {
            log.error("permissions.process.max_processes", "\(permissions.process.maxProcesses) exceeds the host policy maximum of \(p.maxProcesses) ([policies] max_processes)")
        }
        if filesystem.scratchSize > p.maxScratch {
            log.error("filesystem_access.scratch_size", "\(filesystem.scratchSize) exceeds the host policy maximum of \(p.maxScratch) ([policies] max_scratch_mb)")
        }
        if let cpu = limits.maxCpuTime, let wall = limits.maxExecutionTime, cpu > wall, !permissions.process.fork {
            log.warning("resource_limits.max_cpu_time", "\(cpu) of CPU time exceeds the \(wall) wall-clock limit; only threads could use it")
        }
        if let files = limits.maxOpenFiles, files < 8 {
            log.error("resource_limits.max_open_files", "\(files) is too few to start any program (stdio alone takes 3); use at least 8")
        }
    }

    private func validateEnvironment(log: IssueLog) {
        for (list, key) in [(envWhitelist, "env_whitelist"), (permissions.environment, "permissions.environment")] {
            for (i, a) in list.enumerated() {
                for b in list.prefix(i) where a.overlaps(b) && a != b {
                    log.error("\(key)[\(i)]", "'\(a)' overlaps '\(b)': keep one of them")
                }
            }
        }
    }
}

private func labelled(_ patterns: [PathPattern], _ key: String) -> [(pattern: PathPattern, keyPath: String)] {
    patterns.enumerated().map { ($0.element, "\(key)[\($0.offset)]") }
}

/// Normalised absolute paths by component, to find every stored path that
/// is a given path or one of its ancestors in one walk.
private struct PathTrie {
    private struct Node {
        var children: [Substring: Int] = [:]
        var marks: [Int] = []
    }
    private var nodes = [Node()]

    mutating func insert(_ path: String, _ mark: Int) {
        var n = 0
        for component in path.split(separator: "/") {
            if let next = nodes[n].children[component] {
                n = next
            } else {
                nodes.append(Node())
                nodes[n].children[component] = nodes.count - 1
                n = nodes.count - 1
            }
        }
        nodes[n].marks.append(mark)
    }

    /// The marks of `path` and of every ancestor stored, root first.
    func covering(_ path: String) -> [Int] {
        var n = 0
        var out = nodes[0].marks
        for component in path.split(separator: "/") {
            guard let next = nodes[n].children[component] else { break }
            n = next
            out += nodes[n].marks
        }
        return out
    }
}
