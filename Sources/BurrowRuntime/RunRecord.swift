public import BurrowEgress

/// What happened in one run: written by `burrow run --json-result` and, later,
/// returned by the daemon. Field names are stable (see docs/run.md).
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
        /// What the tool was doing when it first happened (the MCP calls in
        /// flight, as their invocation ids); nil when the caller tracks none.
        public var during: [String]?
    }

    /// A limit the sandbox hit (a ResourceLimitExceeded event): which one,
    /// its value, and what the kernel or the supervisor saw.
    public struct LimitEvent: Sendable, Codable, Equatable {
        /// The profile's name for it: max_memory, max_processes, max_cpu_time,
        /// max_execution_time, max_file_size, scratch_size.
        public var resource: String
        /// The limit as the plan shows it ("64 MiB", "2s").
        public var limit: String
        /// What was seen, in words (with the evidence's source).
        public var observed: String
        /// The unit of the two numbers: bytes, tasks or milliseconds.
        public var unit: String
        public var limitValue: UInt64
        /// nil when the evidence carries no number (SIGXFSZ).
        public var observedValue: UInt64?
        public var invocationID: String
        /// What the tool was doing when it was hit (the MCP calls in flight).
        public var during: [String]?
    }

    /// What the whole tree used.
    public struct Usage: Sendable, Codable, Equatable {
        public var cpuMicroseconds: UInt64?
        public var peakMemoryBytes: UInt64?
        /// Most tasks (processes and threads) alive at once.
        public var peakProcesses: UInt64?
        public var wallMilliseconds: UInt64
    }

    /// Where the invocation's tasks lived.
    public struct Cgroup: Sendable, Codable, Equatable {
        public var version: Int
        /// Its directories: removed by the end of the run unless `notes` says otherwise.
        public var paths: [String]
        /// What the supervisor prepared first (v2 base).
        public var setup: [String]
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
        /// Each namespace's identity as /proc shows it (`mnt:[4026532301]`):
        /// once the run is over no process may be left in any of them.
        public var namespaceIDs: [String: String]
    }

    /// The supervisor's own footprint (it must stay small whatever the tool does).
    public struct Supervisor: Sendable, Codable, Equatable {
        /// Peak resident set of the supervising process (VmHWM in /proc/self/status).
        public var peakResidentKilobytes: UInt64
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
    public var cgroup: Cgroup?
    public var violations: [Violation]
    public var limits: [LimitEvent]
    public var observed: Observed?
    public var supervisor: Supervisor
    /// Invocation cgroups of dead supervisors this run's start-up sweep killed and removed.
    public var swept: [SweptInvocation]
    /// Invocations left open in the audit log by dead supervisors, closed by
    /// this run as ToolFailed `supervisor_lost`.
    public var recovered: [String]
    /// Events of this run the audit log could not take (each says which and
    /// why); empty when the whole trail is durable.
    public var auditProblems: [String]
    /// The outcome (the terminal event) could not be recorded when the run
    /// ended; it is kept and recorded late (see `auditProblems`).
    public var auditLost = false
    /// Plan rows that did not apply on this host, with the reason.
    public var notes: [String]
    /// Why the supervisor was told to end the tool early (`RunStop`), if it was.
    public var stopped: String? = nil
    /// What the egress proxy did (restricted network only).
    public var network: EgressSummary? = nil
}
