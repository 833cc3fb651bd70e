/// What happened in one run: written by `burrow run --json-result` and, later,
/// returned by the daemon. Field names are stable (see README.md).
public struct RunRecord: Sendable, Codable, Equatable {
    public struct Durations: Sendable, Codable, Equatable {
        /// From clone3 to the tool's execve (the sandbox's set-up). The
        /// run's own wall time is `usage.wallMilliseconds`.
        public var spawnMicroseconds: UInt64
    }

    public struct Exit: Sendable, Codable, Equatable {
        /// The tool's exit code, when it exited.
        public var code: Int32?
        /// The signal that ended it, when one did.
        public var signal: Int32?
        public var coreDumped: Bool
        /// The shell convention: the code, or 128 + the signal.
        public var status: Int32
    }

    /// One control: what the plan asked for and what this run enforced.
    public struct Control: Sendable, Codable, Equatable {
        public var control: String
        public var requested: String
        public var enforced: Bool
        public var detail: String
    }

    /// A refused system call, reported by seccomp user notification.
    public struct Violation: Sendable, Codable, Equatable {
        public var syscall: String
        public var errno: String
        public var count: Int
        public var reason: String
    }

    /// A limit the sandbox hit.
    public struct LimitEvent: Sendable, Codable, Equatable {
        public var resource: String
        public var limit: String
        public var observed: String
    }

    /// What the whole tree used.
    public struct Usage: Sendable, Codable, Equatable {
        public var cpuMicroseconds: UInt64?
        public var peakMemoryBytes: UInt64?
        public var wallMilliseconds: UInt64
    }

    /// What the supervisor read back from the sandbox's first process after execve.
    public struct Observed: Sendable, Codable, Equatable {
        public var uid: String
        public var gid: String
        public var groups: String
        public var capabilityBounding: String
        public var capabilityEffective: String
        public var capabilityPermitted: String
        public var capabilityAmbient: String
        public var noNewPrivileges: String
        public var seccomp: String
        public var seccompFilters: String
        public var namespaces: [String: String]
    }

    public var invocationID: String
    public var tool: String
    public var argv: [String]
    public var sandboxLevel: String
    public var uid: UInt32
    public var startedAt: String
    public var durations: Durations
    public var exit: Exit
    public var controls: [Control]
    public var usage: Usage
    public var violations: [Violation]
    public var limits: [LimitEvent]
    public var observed: Observed?
    /// Plan rows that did not apply on this host, with the reason.
    public var notes: [String]
}
