package import BurrowProfile
package import BurrowSystem

/// One launch: the single source of truth that `burrow dry-run` prints and
/// `burrow run` executes, in three values.
///
/// - `spec`: what the kernel is told (namespaces, ids, mounts, rlimits,
///   cgroup writes, capabilities, seccomp, Landlock, network set-up, the
///   file executed and where): typed, and compared by value. A sandbox built
///   ahead serves a request whose spec equals its own.
/// - `exec`: what differs per invocation and reaches only execve or the
///   supervisor: argv, environment, the deadline.
/// - `report`: what describes the plan to a reader: controls, clamps,
///   exposure, warnings, the limits the supervisor watches.
///
/// Compiled by `PlanCompiler` from an effective profile, the host policy and
/// the host probe. Its JSON form (`burrow dry-run --json`) is flat, as
/// documented in docs/dry-run.md, and versioned by `schemaVersion`; the accessors
/// below (`mounts`, `limits`, ...) read and write through to the three values.
package struct LaunchPlan: Sendable, Equatable {
    package static let currentSchemaVersion = 1

    package var schemaVersion = LaunchPlan.currentSchemaVersion
    package var tool: ToolIdentity
    /// The profile file and the files it extends, in that order.
    package var profileFiles: [String]
    package var spec: SandboxSpec
    package var exec: ExecRequest
    /// What the MCP relay enforces when the tool runs as an MCP server.
    package var mcp: MCPPlan
    package var report: PlanReport
    /// The profile's parameters with the values this plan was compiled with.
    package var parameters: [ResolvedParameter] = []
    /// The level the run gets and the signed manifest behind it.
    package var trust = TrustPlan.undecided

    /// Whether every requested control can be enforced here; `burrow run` refuses otherwise.
    package var isEnforceable: Bool { report.controls.allSatisfy(\.enforceable) }

    /// Whether a sandbox built from `other` is this very sandbox: the same
    /// tool, profile files, relay policy and everything the kernel was told.
    package func sameSandbox(as other: LaunchPlan) -> Bool {
        spec == other.spec && tool == other.tool && profileFiles == other.profileFiles && mcp == other.mcp && trust == other.trust && schemaVersion == other.schemaVersion
    }
}

/// Exactly what the kernel is told for one sandbox.
package struct SandboxSpec: Sendable, Equatable {
    package var sandboxLevel: SandboxLevel
    /// The host file executed (after symlinks), checked against `execute`.
    package var executable: String
    package var workingDirectory: String
    /// The executables the profile lets the tool run, resolved on this host.
    package var allowedExecutables: [String]
    package var namespaces: [NamespacePlan]
    package var identity: IdentityPlan
    package var mounts: [MountEntry]
    package var rlimits: [RlimitEntry]
    /// Its `supervised` notes are in the report.
    package var cgroup: CgroupPlan
    package var capabilities: CapabilityPlan
    package var seccomp: SeccompPlan
    package var landlock: LandlockPlan
    package var network: NetworkPlan
    /// The limits; `maxExecutionTime` is the tool's own (an invocation's
    /// deadline, which may be shorter, is `ExecRequest.deadline`).
    package var limits: EffectiveLimits
    /// When set, every bind source is opened with this caller's rights and
    /// must allow the access its mount gives (an unprivileged caller's run,
    /// or `--as-user`): nothing is bound that the caller could not reach.
    package var grantsCheckedAs: CallerCredentials? = nil
}

extension SandboxSpec {
    /// The host name in the sandbox's UTS namespace (and its /etc/hosts).
    package static let hostName = "burrow"
}

extension LaunchPlan {
    /// The host paths the tool may write (its write grants, not devices or scratch).
    package var writeGrantSources: [String] { mounts.writeGrantSources }
}

extension [MountEntry] {
    /// The host paths these mounts make writable (not devices or scratch).
    package var writeGrantSources: [String] {
        compactMap { m in
            guard m.kind == .bind, m.options.readOnly == false, let source = m.source, !source.hasPrefix("/dev/") else { return nil }
            return source
        }
    }
}

/// What one invocation adds to its sandbox: only execve and the supervisor see it.
package struct ExecRequest: Sendable, Equatable {
    package var argv: [String]
    package var environment: [EnvironmentEntry]
    /// Wall clock, then the tree is killed.
    package var deadline: Seconds
}

/// What describes a plan to its reader.
package struct PlanReport: Sendable, Equatable {
    /// Requested vs enforceable on this host, one row per control.
    package var controls: [ControlStatus]
    package var clamps: [Clamp]
    package var exposure: ExposureReport
    /// Risky grants, in words an operator can act on.
    package var warnings: [String]
    /// Limits watched by the supervisor rather than written to a file.
    package var supervised: [String]
}

extension LaunchPlan {
    package init(
        tool: ToolIdentity, profileFiles: [String], spec: SandboxSpec, exec: ExecRequest, mcp: MCPPlan, report: PlanReport
    ) {
        self.tool = tool
        self.profileFiles = profileFiles
        self.spec = spec
        self.exec = exec
        self.mcp = mcp
        self.report = report
    }

    package var sandboxLevel: SandboxLevel {
        get { spec.sandboxLevel }
        set { spec.sandboxLevel = newValue }
    }

    package var command: CommandPlan {
        get { CommandPlan(argv: exec.argv, executable: spec.executable, workingDirectory: spec.workingDirectory, allowedExecutables: spec.allowedExecutables) }
        set {
            exec.argv = newValue.argv
            spec.executable = newValue.executable
            spec.workingDirectory = newValue.workingDirectory
            spec.allowedExecutables = newValue.allowedExecutables
        }
    }

    package var namespaces: [NamespacePlan] {
        get { spec.namespaces }
        set { spec.namespaces = newValue }
    }

    package var identity: IdentityPlan {
        get { spec.identity }
        set { spec.identity = newValue }
    }

    package var mounts: [MountEntry] {
        get { spec.mounts }
        set { spec.mounts = newValue }
    }

    package var environment: [EnvironmentEntry] {
        get { exec.environment }
        set { exec.environment = newValue }
    }

    package var rlimits: [RlimitEntry] {
        get { spec.rlimits }
        set { spec.rlimits = newValue }
    }

    /// The spec's cgroup with the report's supervised limits.
    package var cgroup: CgroupPlan {
        get {
            var c = spec.cgroup
            c.supervised = report.supervised
            return c
        }
        set {
            var c = newValue
            report.supervised = c.supervised
            c.supervised = []
            spec.cgroup = c
        }
    }

    package var capabilities: CapabilityPlan {
        get { spec.capabilities }
        set { spec.capabilities = newValue }
    }

    package var seccomp: SeccompPlan {
        get { spec.seccomp }
        set { spec.seccomp = newValue }
    }

    package var landlock: LandlockPlan {
        get { spec.landlock }
        set { spec.landlock = newValue }
    }

    package var network: NetworkPlan {
        get { spec.network }
        set { spec.network = newValue }
    }

    /// The limits in force for this invocation: the spec's, with the
    /// request's deadline. Setting them sets both.
    package var limits: EffectiveLimits {
        get {
            var l = spec.limits
            l.maxExecutionTime = exec.deadline
            return l
        }
        set {
            spec.limits = newValue
            exec.deadline = newValue.maxExecutionTime
        }
    }

    package var controls: [ControlStatus] {
        get { report.controls }
        set { report.controls = newValue }
    }

    package var clamps: [Clamp] {
        get { report.clamps }
        set { report.clamps = newValue }
    }

    package var exposure: ExposureReport {
        get { report.exposure }
        set { report.exposure = newValue }
    }

    package var warnings: [String] {
        get { report.warnings }
        set { report.warnings = newValue }
    }
}

extension LaunchPlan: Codable {
    /// The flat JSON of `burrow dry-run --json` (schema version 1).
    enum CodingKeys: String, CodingKey {
        case schemaVersion, tool, profileFiles, sandboxLevel, command, namespaces, identity, mounts, environment, rlimits, cgroup, capabilities, seccomp
        case landlock, network, mcp, limits, controls, clamps, exposure, warnings, parameters, grantsCheckedAs, trust
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(schemaVersion, forKey: .schemaVersion)
        try c.encode(tool, forKey: .tool)
        try c.encode(profileFiles, forKey: .profileFiles)
        try c.encode(sandboxLevel, forKey: .sandboxLevel)
        try c.encode(command, forKey: .command)
        try c.encode(namespaces, forKey: .namespaces)
        try c.encode(identity, forKey: .identity)
        try c.encode(mounts, forKey: .mounts)
        try c.encode(environment, forKey: .environment)
        try c.encode(rlimits, forKey: .rlimits)
        try c.encode(cgroup, forKey: .cgroup)
        try c.encode(capabilities, forKey: .capabilities)
        try c.encode(seccomp, forKey: .seccomp)
        try c.encode(landlock, forKey: .landlock)
        try c.encode(network, forKey: .network)
        try c.encode(mcp, forKey: .mcp)
        try c.encode(limits, forKey: .limits)
        try c.encode(controls, forKey: .controls)
        try c.encode(clamps, forKey: .clamps)
        try c.encode(exposure, forKey: .exposure)
        try c.encode(warnings, forKey: .warnings)
        try c.encode(parameters, forKey: .parameters)
        try c.encodeIfPresent(spec.grantsCheckedAs, forKey: .grantsCheckedAs)
        try c.encode(trust, forKey: .trust)
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let command = try c.decode(CommandPlan.self, forKey: .command)
        var cgroup = try c.decode(CgroupPlan.self, forKey: .cgroup)
        let supervised = cgroup.supervised
        cgroup.supervised = []
        let limits = try c.decode(EffectiveLimits.self, forKey: .limits)
        self.init(
            tool: try c.decode(ToolIdentity.self, forKey: .tool), profileFiles: try c.decode([String].self, forKey: .profileFiles),
            spec: SandboxSpec(
                sandboxLevel: try c.decode(SandboxLevel.self, forKey: .sandboxLevel), executable: command.executable,
                workingDirectory: command.workingDirectory, allowedExecutables: command.allowedExecutables,
                namespaces: try c.decode([NamespacePlan].self, forKey: .namespaces), identity: try c.decode(IdentityPlan.self, forKey: .identity),
                mounts: try c.decode([MountEntry].self, forKey: .mounts), rlimits: try c.decode([RlimitEntry].self, forKey: .rlimits), cgroup: cgroup,
                capabilities: try c.decode(CapabilityPlan.self, forKey: .capabilities), seccomp: try c.decode(SeccompPlan.self, forKey: .seccomp),
                landlock: try c.decode(LandlockPlan.self, forKey: .landlock), network: try c.decode(NetworkPlan.self, forKey: .network), limits: limits),
            exec: ExecRequest(argv: command.argv, environment: try c.decode([EnvironmentEntry].self, forKey: .environment), deadline: limits.maxExecutionTime),
            mcp: try c.decode(MCPPlan.self, forKey: .mcp),
            report: PlanReport(
                controls: try c.decode([ControlStatus].self, forKey: .controls), clamps: try c.decode([Clamp].self, forKey: .clamps),
                exposure: try c.decode(ExposureReport.self, forKey: .exposure), warnings: try c.decode([String].self, forKey: .warnings),
                supervised: supervised))
        schemaVersion = try c.decode(Int.self, forKey: .schemaVersion)
        parameters = try c.decodeIfPresent([ResolvedParameter].self, forKey: .parameters) ?? []
        spec.grantsCheckedAs = try c.decodeIfPresent(CallerCredentials.self, forKey: .grantsCheckedAs)
        trust = try c.decodeIfPresent(TrustPlan.self, forKey: .trust) ?? .undecided
    }
}

package struct CommandPlan: Sendable, Codable, Equatable {
    package var argv: [String]
    /// The host file that will be executed (after symlinks), checked against `execute`.
    package var executable: String
    package var workingDirectory: String
    /// The executables the profile lets the tool run, resolved on this host.
    package var allowedExecutables: [String]
}

package struct NamespacePlan: Sendable, Codable, Equatable {
    package var kind: NamespaceKind
    package var reason: String

    package init(kind: NamespaceKind, reason: String) {
        self.kind = kind
        self.reason = reason
    }

    /// The `CLONE_NEW*` name, derived from the kind (shown, never read back).
    package var cloneFlag: String { kind.cloneFlagName }

    enum CodingKeys: String, CodingKey { case kind, cloneFlag, reason }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(cloneFlag, forKey: .cloneFlag)
        try c.encode(reason, forKey: .reason)
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(NamespaceKind.self, forKey: .kind)
        reason = try c.decode(String.self, forKey: .reason)
        guard try c.decodeIfPresent(String.self, forKey: .cloneFlag).map({ $0 == kind.cloneFlagName }) ?? true else {
            throw DecodingError.dataCorruptedError(forKey: .cloneFlag, in: c, debugDescription: "cloneFlag does not match namespace \(kind.rawValue)")
        }
    }
}

package struct IDMapping: Sendable, Codable, Equatable {
    package var inside: UInt32
    package var outside: UInt32
    package var count: UInt32
}

package struct IdentityPlan: Sendable, Codable, Equatable {
    /// The uid and gid the tool runs as (inside the user namespace, and on the host).
    package var uid: UInt32
    package var gid: UInt32
    package var uidMap: [IDMapping]
    package var gidMap: [IDMapping]
    /// What /proc/PID/setgroups is set to before gid_map.
    package var setgroups: SetgroupsPolicy
    package var supplementaryGroups: [UInt32]
    package var note: String
}

/// /proc/PID/setgroups (user_namespaces(7)): the words the kernel takes.
package enum SetgroupsPolicy: String, Sendable, Codable {
    /// setgroups(2) works in the namespace (the child clears the groups it inherited).
    case allow
    /// setgroups(2) is refused in the namespace.
    case deny
    /// No user namespace: the file is not written.
    case unchanged
}

/// One step of building the sandbox's file system, applied in order.
package struct MountEntry: Sendable, Codable, Equatable {
    package enum Kind: String, Sendable, Codable {
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

    package var kind: Kind
    package var source: String?
    package var target: String
    package var options: MountOptions
    package var content: String?
    package var reason: String
    /// A bind of a signed tool's verified copy: the host path it stands
    /// for. The copy is opened as root (the store is root's alone); a
    /// caller's right is checked on this path.
    package var verifiedFrom: String?

    package init(kind: Kind, source: String? = nil, target: String, options: MountOptions = MountOptions(), content: String? = nil, reason: String) {
        self.kind = kind
        self.source = source
        self.target = target
        self.options = options
        self.content = content
        self.reason = reason
    }
}

extension MountEntry {
    /// The access a caller must have to the source of this mount, when the
    /// plan's binds are checked as a caller (`grantsCheckedAs`): read, write
    /// too for a writable mount, execute for an allowed executable (search
    /// for a directory is added where it is opened). Nil: nothing is bound
    /// from the host (tmpfs, proc, a symlink, a file, a remount).
    package func callerAccess(executables: Set<String>) -> CallerAccess.Access? {
        guard kind == .bind || (kind == .mask && source != "tmpfs"), let source, verifiedFrom == nil else { return nil }
        // A mask (/dev/null over a blocked file) hides; nothing is granted through it.
        if kind == .mask { return .read }
        var access: CallerAccess.Access = options.readOnly == true ? .read : [.read, .write]
        if executables.contains(source) { access.insert(.execute) }
        return access
    }
}

package struct EnvironmentEntry: Sendable, Codable, Equatable {
    package enum Source: String, Sendable, Codable {
        /// Set by Burrow.
        case burrow
        /// Passed through from the caller's environment (env_whitelist).
        case caller
    }
    package var name: String
    package var value: String
    package var source: Source
}

package struct RlimitEntry: Sendable, Codable, Equatable {
    package var resource: RlimitResource
    package var soft: UInt64
    package var hard: UInt64
    package var reason: String
}

/// `RLIMIT_*` of <sys/resource.h>: the kernel's numbers (the same on every
/// architecture Burrow builds for), named from this table.
package enum RlimitResource: Int32, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case cpu = 0
    case fsize = 1
    case data = 2
    case stack = 3
    case core = 4
    case nproc = 6
    case nofile = 7
    case addressSpace = 9

    package var name: String {
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

    package var description: String { name }

    package func encode(to encoder: any Encoder) throws { try NamedCoding.encode(name, to: encoder) }
    package init(from decoder: any Decoder) throws { self = try NamedCoding.decode(decoder, among: Self.allCases, name: \.name, what: "rlimit") }
}

package struct CgroupWrite: Sendable, Codable, Equatable {
    package var file: String
    package var value: String
    package var reason: String
}

package struct CgroupPlan: Sendable, Codable, Equatable {
    /// 2, 1, or 0 when no usable cgroup hierarchy was found.
    package var version: Int
    /// Where the invocation's cgroup is created, relative to Burrow's own cgroup.
    package var path: String
    /// v1: controller → Burrow's own cgroup directory in that hierarchy, where
    /// `path` is created (memory, pids, cpu, cpuacct, freezer). v2: "cgroup2"
    /// → Burrow's own cgroup2 directory. Empty without a backend.
    package var directories: [String: String]
    /// The controllers the invocation's cgroup gets (v2: enabled in the base's
    /// and tools/'s cgroup.subtree_control; v1: the hierarchies joined).
    package var controllers: [String]
    /// What the supervisor prepares before the invocation's cgroup exists.
    package var setup: [String]
    /// Written to the invocation's cgroup, in order, before the child starts:
    /// exactly what `burrow run` writes.
    package var writes: [CgroupWrite]
    /// Limits watched by the supervisor rather than written to a file.
    package var supervised: [String]
}

/// A control a plan asks the host for. Its name (what dry-run shows and a
/// run record lists) comes from the value; the runtime decides what it
/// enforced by the value, never by the text.
package enum Control: Hashable, Sendable, Codable, CustomStringConvertible {
    case sandboxLevelVM, privileges, rlimits, noNewPrivileges, capabilityDrop
    case namespace(NamespaceKind)
    case namespacesTogether, seccompFilter, seccompUserNotification, landlock, pidfd
    case memoryLimit, processLimit, cpuTimeBudget, cpuBandwidth, cgroupPlacement, treeKill, executionDeadline, networkEgressProxy
    case diskWriteBudget

    package var name: String {
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
        case .diskWriteBudget: "disk write budget"
        }
    }

    package var description: String { name }

    static let all: [Control] =
        [.sandboxLevelVM, .privileges, .rlimits, .noNewPrivileges, .capabilityDrop] + NamespaceKind.allCases.map { .namespace($0) }
        + [.namespacesTogether, .seccompFilter, .seccompUserNotification, .landlock, .pidfd, .memoryLimit, .processLimit, .cpuTimeBudget, .cpuBandwidth]
        + [.cgroupPlacement, .treeKill, .executionDeadline, .networkEgressProxy, .diskWriteBudget]

    package func encode(to encoder: any Encoder) throws { try NamedCoding.encode(name, to: encoder) }
    package init(from decoder: any Decoder) throws { self = try NamedCoding.decode(decoder, among: Self.all, name: \.name, what: "control") }
}

package struct CapabilityPlan: Sendable, Codable, Equatable {
    /// Kept in the bounding, permitted, effective, inheritable and ambient sets.
    package var kept: [Capability]
    /// Dropped from all five sets.
    package var dropped: [Capability]
    package var securebits: Securebits
    package var noNewPrivileges: Bool

    /// The kept capabilities as a bit mask (bit n = capability n).
    package var keptMask: UInt64 { kept.reduce(0) { $0 | UInt64(1) << UInt64($1.number) } }
}

/// `SECBIT_*` of <linux/securebits.h>: the process's securebits.
package struct Securebits: KernelFlags {
    package let rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }

    package static let noRoot = Self(rawValue: 1 << 0)
    package static let noRootLocked = Self(rawValue: 1 << 1)
    package static let noSetuidFixup = Self(rawValue: 1 << 2)
    package static let noSetuidFixupLocked = Self(rawValue: 1 << 3)
    package static let keepCaps = Self(rawValue: 1 << 4)
    package static let keepCapsLocked = Self(rawValue: 1 << 5)
    package static let noCapAmbientRaise = Self(rawValue: 1 << 6)
    package static let noCapAmbientRaiseLocked = Self(rawValue: 1 << 7)

    package static let names: [(flag: Self, name: String)] = [
        (.noRoot, "SECBIT_NOROOT"), (.noRootLocked, "SECBIT_NOROOT_LOCKED"), (.noSetuidFixup, "SECBIT_NO_SETUID_FIXUP"),
        (.noSetuidFixupLocked, "SECBIT_NO_SETUID_FIXUP_LOCKED"), (.keepCaps, "SECBIT_KEEP_CAPS"), (.keepCapsLocked, "SECBIT_KEEP_CAPS_LOCKED"),
        (.noCapAmbientRaise, "SECBIT_NO_CAP_AMBIENT_RAISE"), (.noCapAmbientRaiseLocked, "SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED"),
    ]
}

package struct ControlStatus: Sendable, Codable, Equatable {
    package var control: Control
    package var requested: String
    package var enforceable: Bool
    package var detail: String
}
