/// One change the host policy made to a profile: recorded in the plan so the
/// operator sees exactly what was requested and what applies.
package struct Clamp: Sendable, Equatable, Codable {
    package var key: String
    package var requested: String
    package var effective: String
    package var reason: String

    package init(key: String, requested: String, effective: String, reason: String) {
        self.key = key
        self.requested = requested
        self.effective = effective
        self.reason = reason
    }
}

/// Every limit with a value: the profile's, or the policy maximum where unset.
package struct EffectiveLimits: Sendable, Equatable, Codable {
    package var maxCpuTime: Seconds
    package var maxMemory: ByteSize
    package var maxFileSize: ByteSize
    package var maxOpenFiles: Int
    package var maxExecutionTime: Seconds
    package var maxProcesses: Int
    package var scratchSize: ByteSize
    /// CPU bandwidth of the tree in percent of one CPU (host policy); 0: no cap.
    package var cpuQuotaPercent: Int
    /// Egress proxy connections open at once (restricted network only).
    package var maxConnections: Int
    /// Egress proxy bytes both ways per run; nil: no budget.
    package var maxNetworkBytes: ByteSize?
    /// The host policy's floor of free space on a write grant's file system; nil: none.
    package var minFreeDisk: DiskFloor? = nil
    /// Bytes the run may add under its host write grants; nil: no budget.
    package var maxDiskWrite: ByteSize? = nil
}

/// A validated profile after the host policy was applied.
package struct EffectiveProfile: Sendable, Equatable, Codable {
    package var profile: SecurityProfile
    package var limits: EffectiveLimits
    package var clamps: [Clamp]
}

extension HostPolicy {
    /// Every limit at the policy's maximum.
    package var ceilings: EffectiveLimits {
        let p = policies
        return EffectiveLimits(
            maxCpuTime: p.maxCpuTime, maxMemory: p.maxMemory, maxFileSize: p.maxFileSize, maxOpenFiles: p.maxOpenFiles, maxExecutionTime: p.maxExecutionTime,
            maxProcesses: p.maxProcesses, scratchSize: p.maxScratch, cpuQuotaPercent: p.cpuQuotaPercent,
            maxConnections: p.maxConnections, maxNetworkBytes: p.maxNetworkBytes, minFreeDisk: p.minFreeDisk)
    }

    /// Applies this policy to a validated profile. Limits above the policy were
    /// already refused by validation; here unset limits get the policy maximum,
    /// network access is lowered to `network_policy`, and the sandbox level is
    /// raised to `default_sandbox`. Each change is a `Clamp`.
    package func clamp(_ profile: SecurityProfile) -> EffectiveProfile {
        var p = profile
        var clamps: [Clamp] = []
        let r = profile.resourceLimits
        func fill<T: CustomStringConvertible>(_ value: T?, _ max: T, _ key: String, _ policyKey: String) -> T {
            if let value { return value }
            clamps.append(Clamp(key: "resource_limits.\(key)", requested: "unset", effective: "\(max)", reason: "policy maximum ([policies] \(policyKey))"))
            return max
        }
        let limits = EffectiveLimits(
            maxCpuTime: fill(r.maxCpuTime, policies.maxCpuTime, "max_cpu_time", "max_cpu_time"),
            maxMemory: fill(r.maxMemory, policies.maxMemory, "max_memory", "max_memory_mb"),
            maxFileSize: fill(r.maxFileSize, policies.maxFileSize, "max_file_size", "max_file_size_mb"),
            maxOpenFiles: fill(r.maxOpenFiles, policies.maxOpenFiles, "max_open_files", "max_open_files"),
            maxExecutionTime: fill(r.maxExecutionTime, policies.maxExecutionTime, "max_execution_time", "max_execution_time"),
            maxProcesses: profile.permissions.process.maxProcesses,
            scratchSize: profile.filesystem.scratchSize, cpuQuotaPercent: policies.cpuQuotaPercent,
            maxConnections: r.maxConnections ?? policies.maxConnections,
            maxNetworkBytes: r.maxNetworkBytes ?? policies.maxNetworkBytes, minFreeDisk: policies.minFreeDisk, maxDiskWrite: r.maxDiskWrite)

        if profile.networkAccess > policies.networkPolicy {
            // A full-network profile lists no targets, so lowering it to
            // restricted leaves nothing to reach: that is no network.
            p.networkAccess = profile.permissions.network.isEmpty ? .none : policies.networkPolicy
            if p.networkAccess == .none { p.permissions.network = [] }
            clamps.append(
                Clamp(
                    key: "network_access", requested: profile.networkAccess.rawValue, effective: p.networkAccess.rawValue,
                    reason: "host network policy ([policies] network_policy = \"\(policies.networkPolicy.rawValue)\")"))
        }
        if profile.sandboxLevel < security.defaultSandbox {
            clamps.append(
                Clamp(key: "sandbox_level", requested: profile.sandboxLevel.rawValue, effective: security.defaultSandbox.rawValue, reason: "weakest level the host allows ([security] default_sandbox)")
            )
            p.sandboxLevel = security.defaultSandbox
        }
        return EffectiveProfile(profile: p, limits: limits, clamps: clamps)
    }
}

extension HostPolicy.Users {
    /// Lowers a profile the host policy already clamped to these ceilings:
    /// what an unprivileged caller's own profile gets (the session socket).
    /// Each change is a `Clamp` naming `[users]`; a sandbox level below
    /// `process` is always raised to it.
    package func clamp(_ effective: EffectiveProfile) -> EffectiveProfile {
        var e = effective
        func lower<T: Comparable & CustomStringConvertible>(_ keyPath: WritableKeyPath<EffectiveLimits, T>, _ ceiling: T?, _ key: String, _ policyKey: String) {
            guard let ceiling, e.limits[keyPath: keyPath] > ceiling else { return }
            e.clamps.append(
                Clamp(key: "resource_limits.\(key)", requested: "\(e.limits[keyPath: keyPath])", effective: "\(ceiling)", reason: "ceiling for users' own profiles ([users] \(policyKey))"))
            e.limits[keyPath: keyPath] = ceiling
        }
        lower(\.maxMemory, maxMemory, "max_memory", "max_memory_mb")
        lower(\.maxCpuTime, maxCpuTime, "max_cpu_time", "max_cpu_time")
        lower(\.maxExecutionTime, maxExecutionTime, "max_execution_time", "max_execution_time")
        lower(\.maxProcesses, maxProcesses, "max_processes", "max_processes")
        lower(\.scratchSize, maxScratch, "scratch_size", "max_scratch_mb")
        e.profile.permissions.process.maxProcesses = e.limits.maxProcesses
        e.profile.filesystem.scratchSize = e.limits.scratchSize

        let requested = e.profile.networkAccess
        if requested > networkPolicy {
            e.profile.networkAccess = e.profile.permissions.network.isEmpty ? .none : networkPolicy
            if e.profile.networkAccess == .none { e.profile.permissions.network = [] }
            e.clamps.append(
                Clamp(
                    key: "network_access", requested: requested.rawValue, effective: e.profile.networkAccess.rawValue,
                    reason: "ceiling for users' own profiles ([users] network_policy = \"\(networkPolicy.rawValue)\")"))
        }
        // At level none nothing is bound: the tool would reach host paths by
        // name as the sandbox uid, not through descriptors opened as the caller.
        if e.profile.sandboxLevel < .process {
            e.clamps.append(
                Clamp(
                    key: "sandbox_level", requested: e.profile.sandboxLevel.rawValue, effective: SandboxLevel.process.rawValue,
                    reason: "users' own profiles run at least at process level: their grants are bound from paths opened with the user's rights"))
            e.profile.sandboxLevel = .process
        }
        let writes = e.profile.permissions.fileWrite + e.profile.filesystem.writePaths
        if !allowWrite && !writes.isEmpty {
            e.profile.permissions.fileRead += e.profile.permissions.fileWrite.filter { !e.profile.permissions.fileRead.contains($0) }
            e.profile.filesystem.readPaths += e.profile.filesystem.writePaths.filter { !e.profile.filesystem.readPaths.contains($0) }
            e.profile.permissions.fileWrite = []
            e.profile.filesystem.writePaths = []
            e.clamps.append(
                Clamp(
                    key: "permissions.file_write", requested: writes.map(\.description).joined(separator: ", "), effective: "read-only",
                    reason: "users' own profiles may not write to the host ([users] allow_write = false)"))
        }
        return e
    }
}
