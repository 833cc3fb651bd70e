/// A tool's security profile: what it may touch, how much it may use, and how
/// strongly it is sandboxed. Decoded from TOML (operators) or JSON (API) with
/// the same keys; see docs/profiles.md for every key.
package struct SecurityProfile: Sendable, Equatable, Codable {
    package var tool: ToolIdentity
    package var sandboxLevel: SandboxLevel
    package var networkAccess: NetworkAccess
    package var permissions: Permissions
    package var resourceLimits: ResourceLimits
    package var filesystem: FilesystemAccess
    /// Variables passed through from the caller's environment.
    package var envWhitelist: [EnvironmentPattern]
    /// `mcp = true` and `[mcp_policy]`: how the MCP relay treats the tool.
    package var mcp: MCPPolicy

    package init(
        tool: ToolIdentity, sandboxLevel: SandboxLevel = .container, networkAccess: NetworkAccess = .none,
        permissions: Permissions = Permissions(), resourceLimits: ResourceLimits = ResourceLimits(),
        filesystem: FilesystemAccess = FilesystemAccess(), envWhitelist: [EnvironmentPattern] = [], mcp: MCPPolicy = MCPPolicy()
    ) {
        self.mcp = mcp
        self.tool = tool
        self.sandboxLevel = sandboxLevel
        self.networkAccess = networkAccess
        self.permissions = permissions
        self.resourceLimits = resourceLimits
        self.filesystem = filesystem
        self.envWhitelist = envWhitelist
    }
}

package struct ToolIdentity: Sendable, Equatable, Codable {
    package var id: String
    package var name: String
    package var version: String
    package var description: String
    package var trustLevel: TrustLevel
    /// `[tool] manifest`: the tool's signed manifest (its signature beside
    /// it, `.sig`), relative to the profile file's directory or absolute.
    package var manifest: String?

    package init(id: String, name: String, version: String, description: String = "", trustLevel: TrustLevel = .untrusted) {
        self.id = id
        self.name = name
        self.version = version
        self.description = description
        self.trustLevel = trustLevel
    }
}

/// Who vouches for a tool, from most to least trusted.
package enum TrustLevel: String, Sendable, Codable, CaseIterable, Comparable {
    case system, verified, community, untrusted

    /// Higher is more trusted.
    package var rank: Int {
        switch self {
        case .system: 3
        case .verified: 2
        case .community: 1
        case .untrusted: 0
        }
    }

    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

/// How the tool is isolated, from none to a virtual machine.
package enum SandboxLevel: String, Sendable, Codable, CaseIterable, Comparable {
    /// rlimits, no_new_privs and capability drop only: no namespaces.
    case none
    /// Namespaces, seccomp and Landlock, with the host's root file system bound read-only where granted.
    case process
    /// As process, on a root built from an image directory when one is given.
    case container
    /// A virtual machine (needs a configured VM runtime).
    case vm

    package var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

package enum NetworkAccess: String, Sendable, Codable, CaseIterable, Comparable {
    /// A network namespace with loopback only.
    case none
    /// Only the Network permission's targets, through Burrow's egress proxy.
    case restricted
    /// The host's network.
    case full

    package var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

package struct Permissions: Sendable, Equatable, Codable {
    package var fileRead: [PathPattern]
    package var fileWrite: [PathPattern]
    package var execute: [CommandPattern]
    package var network: [NetworkTarget]
    /// Variables a caller may set per invocation (in addition to `env_whitelist`).
    package var environment: [EnvironmentPattern]
    package var process: ProcessPermission
    /// Capabilities kept inside the sandbox (names like `CAP_NET_BIND_SERVICE`); all others are dropped.
    package var capabilities: [String]
    /// Refusals the tool is known to provoke harmlessly: still refused, counted, but quiet.
    package var quietRefusals: [QuietRefusal]

    package init(
        fileRead: [PathPattern] = [], fileWrite: [PathPattern] = [], execute: [CommandPattern] = [],
        network: [NetworkTarget] = [], environment: [EnvironmentPattern] = [],
        process: ProcessPermission = ProcessPermission(), capabilities: [String] = [], quietRefusals: [QuietRefusal] = []
    ) {
        self.quietRefusals = quietRefusals
        self.fileRead = fileRead
        self.fileWrite = fileWrite
        self.execute = execute
        self.network = network
        self.environment = environment
        self.process = process
        self.capabilities = capabilities
    }
}

package struct ProcessPermission: Sendable, Equatable, Codable {
    /// Whether the tool may create processes (threads are always allowed).
    package var fork: Bool
    /// Whether the tool may signal its own processes (it can never signal others).
    package var signalOwn: Bool
    /// The most processes and threads the tool's tree may hold at once.
    package var maxProcesses: Int

    package init(fork: Bool = false, signalOwn: Bool = true, maxProcesses: Int = 32) {
        self.fork = fork
        self.signalOwn = signalOwn
        self.maxProcesses = maxProcesses
    }
}

/// Limits left unset are filled from the host policy's maxima.
package struct ResourceLimits: Sendable, Equatable, Codable {
    package var maxCpuTime: Seconds?
    package var maxMemory: ByteSize?
    package var maxFileSize: ByteSize?
    package var maxOpenFiles: Int?
    package var maxExecutionTime: Seconds?
    /// Connections open at once through the egress proxy (restricted network).
    package var maxConnections: Int?
    /// Bytes both ways through the egress proxy over the whole run.
    package var maxNetworkBytes: ByteSize?
    /// Bytes a run may add under its host write grants (project quotas).
    package var maxDiskWrite: ByteSize?

    package init(
        maxCpuTime: Seconds? = nil, maxMemory: ByteSize? = nil, maxFileSize: ByteSize? = nil,
        maxOpenFiles: Int? = nil, maxExecutionTime: Seconds? = nil, maxConnections: Int? = nil, maxNetworkBytes: ByteSize? = nil,
        maxDiskWrite: ByteSize? = nil
    ) {
        self.maxDiskWrite = maxDiskWrite
        self.maxConnections = maxConnections
        self.maxNetworkBytes = maxNetworkBytes
        self.maxCpuTime = maxCpuTime
        self.maxMemory = maxMemory
        self.maxFileSize = maxFileSize
        self.maxOpenFiles = maxOpenFiles
        self.maxExecutionTime = maxExecutionTime
    }
}

/// The shape of the sandbox's file system. `read_paths` and `write_paths` add
/// to the file_read and file_write permissions; `blocked_paths` are masked
/// even inside granted trees.
package struct FilesystemAccess: Sendable, Equatable, Codable {
    package var readPaths: [PathPattern]
    package var writePaths: [PathPattern]
    package var blockedPaths: [PathPattern]
    /// Size of the private tmpfs at /tmp.
    package var scratchSize: ByteSize

    package init(
        readPaths: [PathPattern] = [], writePaths: [PathPattern] = [], blockedPaths: [PathPattern] = [],
        scratchSize: ByteSize = .mebibytes(64)
    ) {
        self.readPaths = readPaths
        self.writePaths = writePaths
        self.blockedPaths = blockedPaths
        self.scratchSize = scratchSize
    }

    /// Every readable path: file_read grants plus read_paths.
    package func allReads(_ permissions: Permissions) -> [PathPattern] { permissions.fileRead + readPaths }
    /// Every writable path: file_write grants plus write_paths.
    package func allWrites(_ permissions: Permissions) -> [PathPattern] { permissions.fileWrite + writePaths }
}
