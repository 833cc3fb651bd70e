/// A tool's security profile: what it may touch, how much it may use, and how
/// strongly it is sandboxed. Decoded from TOML (operators) or JSON (API) with
/// the same keys; see docs/profiles.md for every key.
public struct SecurityProfile: Sendable, Equatable, Codable {
    public var tool: ToolIdentity
    public var sandboxLevel: SandboxLevel
    public var networkAccess: NetworkAccess
    public var permissions: Permissions
    public var resourceLimits: ResourceLimits
    public var filesystem: FilesystemAccess
    /// Variables passed through from the caller's environment.
    public var envWhitelist: [EnvironmentPattern]
    /// `mcp = true` and `[mcp_policy]`: how the MCP relay treats the tool.
    public var mcp: MCPPolicy

    public init(
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

public struct ToolIdentity: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var version: String
    public var description: String
    public var trustLevel: TrustLevel

    public init(id: String, name: String, version: String, description: String = "", trustLevel: TrustLevel = .untrusted) {
        self.id = id
        self.name = name
        self.version = version
        self.description = description
        self.trustLevel = trustLevel
    }
}

/// Who vouches for a tool, from most to least trusted.
public enum TrustLevel: String, Sendable, Codable, CaseIterable, Comparable {
    case system, verified, community, untrusted

    /// Higher is more trusted.
    public var rank: Int {
        switch self {
        case .system: 3
        case .verified: 2
        case .community: 1
        case .untrusted: 0
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

/// How the tool is isolated, from none to a virtual machine.
public enum SandboxLevel: String, Sendable, Codable, CaseIterable, Comparable {
    /// rlimits, no_new_privs and capability drop only: no namespaces.
    case none
    /// Namespaces, seccomp and Landlock, with the host's root file system bound read-only where granted.
    case process
    /// As process, on a root built from an image directory when one is given.
    case container
    /// A virtual machine (needs a configured VM runtime).
    case vm

    public var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

public enum NetworkAccess: String, Sendable, Codable, CaseIterable, Comparable {
    /// A network namespace with loopback only.
    case none
    /// Only the Network permission's targets, through Burrow's egress proxy.
    case restricted
    /// The host's network.
    case full

    public var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

public struct Permissions: Sendable, Equatable, Codable {
    public var fileRead: [PathPattern]
    public var fileWrite: [PathPattern]
    public var execute: [CommandPattern]
    public var network: [NetworkTarget]
    /// Variables a caller may set per invocation (in addition to `env_whitelist`).
    public var environment: [EnvironmentPattern]
    public var process: ProcessPermission
    /// Capabilities kept inside the sandbox (names like `CAP_NET_BIND_SERVICE`); all others are dropped.
    public var capabilities: [String]

    public init(
        fileRead: [PathPattern] = [], fileWrite: [PathPattern] = [], execute: [CommandPattern] = [],
        network: [NetworkTarget] = [], environment: [EnvironmentPattern] = [],
        process: ProcessPermission = ProcessPermission(), capabilities: [String] = []
    ) {
        self.fileRead = fileRead
        self.fileWrite = fileWrite
        self.execute = execute
        self.network = network
        self.environment = environment
        self.process = process
        self.capabilities = capabilities
    }
}

public struct ProcessPermission: Sendable, Equatable, Codable {
    /// Whether the tool may create processes (threads are always allowed).
    public var fork: Bool
    /// Whether the tool may signal its own processes (it can never signal others).
    public var signalOwn: Bool
    /// The most processes and threads the tool's tree may hold at once.
    public var maxProcesses: Int

    public init(fork: Bool = false, signalOwn: Bool = true, maxProcesses: Int = 32) {
        self.fork = fork
        self.signalOwn = signalOwn
        self.maxProcesses = maxProcesses
    }
}

/// Limits left unset are filled from the host policy's maxima.
public struct ResourceLimits: Sendable, Equatable, Codable {
    public var maxCpuTime: Seconds?
    public var maxMemory: ByteSize?
    public var maxFileSize: ByteSize?
    public var maxOpenFiles: Int?
    public var maxExecutionTime: Seconds?
    /// Connections open at once through the egress proxy (restricted network).
    public var maxConnections: Int?
    /// Bytes both ways through the egress proxy over the whole run.
    public var maxNetworkBytes: ByteSize?

    public init(
        maxCpuTime: Seconds? = nil, maxMemory: ByteSize? = nil, maxFileSize: ByteSize? = nil,
        maxOpenFiles: Int? = nil, maxExecutionTime: Seconds? = nil, maxConnections: Int? = nil, maxNetworkBytes: ByteSize? = nil
    ) {
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
public struct FilesystemAccess: Sendable, Equatable, Codable {
    public var readPaths: [PathPattern]
    public var writePaths: [PathPattern]
    public var blockedPaths: [PathPattern]
    /// Size of the private tmpfs at /tmp.
    public var scratchSize: ByteSize

    public init(
        readPaths: [PathPattern] = [], writePaths: [PathPattern] = [], blockedPaths: [PathPattern] = [],
        scratchSize: ByteSize = .mebibytes(64)
    ) {
        self.readPaths = readPaths
        self.writePaths = writePaths
        self.blockedPaths = blockedPaths
        self.scratchSize = scratchSize
    }

    /// Every readable path: file_read grants plus read_paths.
    public func allReads(_ permissions: Permissions) -> [PathPattern] { permissions.fileRead + readPaths }
    /// Every writable path: file_write grants plus write_paths.
    public func allWrites(_ permissions: Permissions) -> [PathPattern] { permissions.fileWrite + writePaths }
}
