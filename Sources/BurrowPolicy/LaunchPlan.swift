public import BurrowProfile
public import BurrowSystem

/// Everything the kernel will be told for one launch: the single source of
/// truth that `burrow dry-run` prints and `burrow run` executes.
///
/// Compiled by `PlanCompiler` from an effective profile, the host policy and
/// the host probe. Its JSON form (`burrow dry-run --json`) is documented in
/// README.md and versioned by `schemaVersion`.
public struct LaunchPlan: Sendable, Codable, Equatable {
    public static let currentSchemaVersion = 1

    public var schemaVersion = LaunchPlan.currentSchemaVersion
    public var tool: ToolIdentity
    /// The profile file and the files it extends, in that order.
    public var profileFiles: [String]
    public var sandboxLevel: SandboxLevel
    public var command: CommandPlan
    public var namespaces: [NamespacePlan]
    public var identity: IdentityPlan
    public var mounts: [MountEntry]
    public var environment: [EnvironmentEntry]
    public var rlimits: [RlimitEntry]
    public var cgroup: CgroupPlan
    public var capabilities: CapabilityPlan
    public var seccomp: SeccompPlan
    public var landlock: LandlockPlan
    public var network: NetworkPlan
    /// What the MCP relay enforces when the tool runs as an MCP server.
    public var mcp: MCPPlan
    public var limits: EffectiveLimits
    /// Requested vs enforceable on this host, one row per control.
    public var controls: [ControlStatus]
    public var clamps: [Clamp]
    public var exposure: ExposureReport
    /// Risky grants, in words an operator can act on.
    public var warnings: [String]

    /// Whether every requested control can be enforced here; `burrow run` refuses otherwise.
    public var isEnforceable: Bool { controls.allSatisfy(\.enforceable) }
}

public struct CommandPlan: Sendable, Codable, Equatable {
    public var argv: [String]
    /// The host file that will be executed (after symlinks), checked against `execute`.
    public var executable: String
    public var workingDirectory: String
    /// The executables the profile lets the tool run, resolved on this host.
    public var allowedExecutables: [String]
}

public struct NamespacePlan: Sendable, Codable, Equatable {
    public var kind: NamespaceKind
    public var reason: String

    public init(kind: NamespaceKind, reason: String) {
        self.kind = kind
        self.reason = reason
    }

    /// The `CLONE_NEW*` name, derived from the kind (shown, never read back).
    public var cloneFlag: String { kind.cloneFlagName }

    enum CodingKeys: String, CodingKey { case kind, cloneFlag, reason }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(cloneFlag, forKey: .cloneFlag)
        try c.encode(reason, forKey: .reason)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(NamespaceKind.self, forKey: .kind)
        reason = try c.decode(String.self, forKey: .reason)
        guard try c.decodeIfPresent(String.self, forKey: .cloneFlag).map({ $0 == kind.cloneFlagName }) ?? true else {
            throw DecodingError.dataCorruptedError(forKey: .cloneFlag, in: c, debugDescription: "cloneFlag does not match namespace \(kind.rawValue)")
        }
    }
}

public struct IDMapping: Sendable, Codable, Equatable {
    public var inside: UInt32
    public var outside: UInt32
    public var count: UInt32
}

public struct IdentityPlan: Sendable, Codable, Equatable {
    /// The uid and gid the tool runs as (inside the user namespace, and on the host).
    public var uid: UInt32
    public var gid: UInt32
    public var uidMap: [IDMapping]
    public var gidMap: [IDMapping]
    /// "deny" or "allow" written to /proc/PID/setgroups before gid_map.
    public var setgroups: String
    public var supplementaryGroups: [UInt32]
    public var note: String
}

/// One step of building the sandbox's file system, applied in order.
public struct MountEntry: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// A bind of a host path (`source`) at `target`.
        case bind
        case tmpfs
        case proc
        /// A symbolic link created in the new root.
        case symlink
        /// A small file created in the new root with `content`.
        case file
        /// Hides `target`: /dev/null over a file, an empty read-only tmpfs over a directory.
        case mask
        /// Remounts `target` with `options` (e.g. the root read-only when it is complete).
        case remount
    }

    public var kind: Kind
    public var source: String?
    public var target: String
    public var options: MountOptions
    public var content: String?
    public var reason: String

    public init(kind: Kind, source: String? = nil, target: String, options: MountOptions = MountOptions(), content: String? = nil, reason: String) {
        self.kind = kind
        self.source = source
        self.target = target
        self.options = options
        self.content = content
        self.reason = reason
    }
}

public struct EnvironmentEntry: Sendable, Codable, Equatable {
    public enum Source: String, Sendable, Codable {
        /// Set by Burrow.
        case burrow
        /// Passed through from the caller's environment (env_whitelist).
        case caller
    }
    public var name: String
    public var value: String
    public var source: Source
}

public struct RlimitEntry: Sendable, Codable, Equatable {
    public var resource: RlimitResource
    public var soft: UInt64
    public var hard: UInt64
    public var reason: String
}

/// `RLIMIT_*` of <sys/resource.h>: the kernel's numbers (the same on every
/// architecture Burrow builds for), named from this table.
public enum RlimitResource: Int32, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case cpu = 0, fsize = 1, data = 2, stack = 3, core = 4, nproc = 6, nofile = 7, addressSpace = 9

    public var name: String {
        switch self {
        case .cpu: "RLIMIT_CPU"
        case .fsize: "RLIMIT_FSIZE"
        case .data: "RLIMIT_DATA"
        case .stack: "RLIMIT_STACK"
        case .core: "RLIMIT_CORE"
        case .nproc: "RLIMIT_NPROC"
        case .nofile: "RLIMIT_NOFILE"
        case .addressSpace: "RLIMIT_AS"
        }
    }

    public var description: String { name }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let value = Self.allCases.first(where: { $0.name == text }) else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown rlimit \(text)") }
        self = value
    }
}

public struct CgroupWrite: Sendable, Codable, Equatable {
    public var file: String
    public var value: String
    public var reason: String
}

public struct CgroupPlan: Sendable, Codable, Equatable {
    /// 2, 1, or 0 when no usable cgroup hierarchy was found.
    public var version: Int
    /// Where the invocation's cgroup is created, relative to Burrow's own cgroup.
    public var path: String
    /// v1: controller → Burrow's own cgroup directory in that hierarchy, where
    /// `path` is created (memory, pids, cpu, cpuacct, freezer). v2: "cgroup2"
    /// → Burrow's own cgroup2 directory. Empty without a backend.
    public var directories: [String: String]
    /// The controllers the invocation's cgroup gets (v2: enabled in the base's
    /// and tools/'s cgroup.subtree_control; v1: the hierarchies joined).
    public var controllers: [String]
    /// What the supervisor prepares before the invocation's cgroup exists.
    public var setup: [String]
    /// Written to the invocation's cgroup, in order, before the child starts:
    /// exactly what `burrow run` writes.
    public var writes: [CgroupWrite]
    /// Limits watched by the supervisor rather than written to a file.
    public var supervised: [String]
}

/// A control a plan asks the host for. Its name (what dry-run shows and a
/// run record lists) comes from the value; the runtime decides what it
/// enforced by the value, never by the text.
public enum Control: Hashable, Sendable, Codable, CustomStringConvertible {
    case sandboxLevelVM, privileges, rlimits, noNewPrivileges, capabilityDrop
    case namespace(NamespaceKind)
    case namespacesTogether, seccompFilter, seccompUserNotification, landlock, pidfd
    case memoryLimit, processLimit, cpuTimeBudget, cpuBandwidth, cgroupPlacement, treeKill, executionDeadline, networkEgressProxy

    public var name: String {
        switch self {
        case .sandboxLevelVM: "sandbox level vm"
        case .privileges: "privileges"
        case .rlimits: "rlimits"
        case .noNewPrivileges: "no_new_privs"
        case .capabilityDrop: "capability drop"
        case .namespace(let kind): "\(kind.rawValue) namespace"
        case .namespacesTogether: "namespaces together"
        case .seccompFilter: "seccomp filter"
        case .seccompUserNotification: "seccomp user notification"
        case .landlock: "landlock"
        case .pidfd: "pidfd"
        case .memoryLimit: "memory limit"
        case .processLimit: "process limit"
        case .cpuTimeBudget: "cpu time budget"
        case .cpuBandwidth: "cpu bandwidth"
        case .cgroupPlacement: "cgroup placement"
        case .treeKill: "tree kill"
        case .executionDeadline: "execution deadline"
        case .networkEgressProxy: "network egress proxy"
        }
    }

    public var description: String { name }

    static let all: [Control] =
        [.sandboxLevelVM, .privileges, .rlimits, .noNewPrivileges, .capabilityDrop] + NamespaceKind.allCases.map { .namespace($0) }
        + [.namespacesTogether, .seccompFilter, .seccompUserNotification, .landlock, .pidfd, .memoryLimit, .processLimit, .cpuTimeBudget, .cpuBandwidth]
        + [.cgroupPlacement, .treeKill, .executionDeadline, .networkEgressProxy]

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let value = Self.all.first(where: { $0.name == text }) else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown control \(text)") }
        self = value
    }
}

public struct CapabilityPlan: Sendable, Codable, Equatable {
    /// Kept in the bounding, permitted, effective, inheritable and ambient sets.
    public var kept: [Capability]
    /// Dropped from all five sets.
    public var dropped: [Capability]
    public var securebits: Securebits
    public var noNewPrivileges: Bool

    /// The kept capabilities as a bit mask (bit n = capability n).
    public var keptMask: UInt64 { kept.reduce(0) { $0 | UInt64(1) << UInt64($1.number) } }
}

/// `SECBIT_*` of <linux/securebits.h>: the process's securebits.
public struct Securebits: KernelFlags {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let noRoot = Self(rawValue: 1 << 0)
    public static let noRootLocked = Self(rawValue: 1 << 1)
    public static let noSetuidFixup = Self(rawValue: 1 << 2)
    public static let noSetuidFixupLocked = Self(rawValue: 1 << 3)
    public static let keepCaps = Self(rawValue: 1 << 4)
    public static let keepCapsLocked = Self(rawValue: 1 << 5)
    public static let noCapAmbientRaise = Self(rawValue: 1 << 6)
    public static let noCapAmbientRaiseLocked = Self(rawValue: 1 << 7)

    public static let names: [(flag: Self, name: String)] = [
        (.noRoot, "SECBIT_NOROOT"), (.noRootLocked, "SECBIT_NOROOT_LOCKED"), (.noSetuidFixup, "SECBIT_NO_SETUID_FIXUP"),
        (.noSetuidFixupLocked, "SECBIT_NO_SETUID_FIXUP_LOCKED"), (.keepCaps, "SECBIT_KEEP_CAPS"), (.keepCapsLocked, "SECBIT_KEEP_CAPS_LOCKED"),
        (.noCapAmbientRaise, "SECBIT_NO_CAP_AMBIENT_RAISE"), (.noCapAmbientRaiseLocked, "SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED"),
    ]
}

public struct ControlStatus: Sendable, Codable, Equatable {
    public var control: Control
    public var requested: String
    public var enforceable: Bool
    public var detail: String
}
