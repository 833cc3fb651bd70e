extension SecurityProfile {
    /// Cross-key rules: contradictions, paths against blocked paths, limits
    /// against the host policy. Per-value rules ran while decoding.
    func validate(policy: HostPolicy, log: IssueLog, networkPaths: [String]) {
        validatePaths(log: log)
        validateNetwork(policy: policy, log: log, networkPaths: networkPaths)
        validateLimits(policy: policy, log: log)
        validateEnvironment(log: log)

        if tool.trustLevel < policy.security.minTrustLevel {
            log.error(
                "tool.trust_level",
                "trust level '\(tool.trustLevel.rawValue)' is below the host policy's minimum '\(policy.security.minTrustLevel.rawValue)' ([security] min_trust_level)")
        }
        if policy.security.requireSignatures {
            log.error("", "the host policy requires signed profiles ([security] require_signatures) and Burrow cannot verify signatures yet; set it to false to run unsigned profiles")
        }
        if sandboxLevel == .none && tool.trustLevel != .system {
            log.error("sandbox_level", "'none' (no namespaces, seccomp or Landlock) is only for trust_level 'system' tools; this one is '\(tool.trustLevel.rawValue)'")
        }
    }

    private func validatePaths(log: IssueLog) {
        let reads = labelled(permissions.fileRead, "permissions.file_read") + labelled(filesystem.readPaths, "filesystem_access.read_paths")
        let writes = labelled(permissions.fileWrite, "permissions.file_write") + labelled(filesystem.writePaths, "filesystem_access.write_paths")
        let blocked = labelled(filesystem.blockedPaths, "filesystem_access.blocked_paths")

        for (i, a) in (reads + writes).enumerated() {
            for b in (reads + writes).prefix(i) where a.pattern.path == b.pattern.path {
                let sameKind = reads.contains { $0.keyPath == a.keyPath } == reads.contains { $0.keyPath == b.keyPath }
                log.error(
                    a.keyPath,
                    sameKind
                        ? "duplicate grant '\(a.pattern)' (already at \(b.keyPath))"
                        : "'\(a.pattern.path)' is granted for both reading (\(b.keyPath)) and writing: write access includes reading, keep it in the write list only")
            }
        }
        for w in writes {
            if w.pattern.path == "/" { log.error(w.keyPath, "write access to '/' would make the whole host writable") }
            for b in blocked where b.pattern.covers(w.pattern.path) {
                log.error(w.keyPath, "write path '\(w.pattern.path)' lies inside blocked path '\(b.pattern.path)' (\(b.keyPath))")
            }
        }
        for r in reads {
            for b in blocked where b.pattern.covers(r.pattern.path) {
                log.error(r.keyPath, "read path '\(r.pattern.path)' lies inside blocked path '\(b.pattern.path)' (\(b.keyPath)): it would be masked")
            }
        }
        for (i, b) in blocked.enumerated() where b.pattern.path == "/" {
            log.error(blocked[i].keyPath, "blocking '/' would leave nothing to run")
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
        for (i, a) in permissions.network.enumerated() {
            for (j, b) in permissions.network.enumerated() where j < i && a.host == b.host && a.ports.overlaps(b.ports) {
                log.error(networkPaths[i], "'\(a)' overlaps '\(b)' (\(networkPaths[j])): merge them into one grant")
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
