package import BurrowEgress
package import BurrowSystem

/// What happened in one run: written by `burrow run --json-result` and, later,
/// returned by the daemon. Field names are stable (see docs/run.md).
package struct RunRecord: Sendable, Codable, Equatable {
    package struct Durations: Sendable, Codable, Equatable {
        /// From clone3 to the tool's execve (the sandbox's set-up). The
        /// run's own wall time is `usage.wallMilliseconds`.
        package var spawnMicroseconds: UInt64
    }

    package struct Exit: Sendable, Codable, Equatable {
        /// The tool's exit code, when it exited.
        package var code: Int32?
        /// The signal that ended it, when one did.
        package var signal: Int32?
        package var coreDumped: Bool
        /// The shell convention: the code, or 128 + the signal.
        package var status: Int32
    }

    /// One control: what the plan asked for and what this run enforced.
    package struct Control: Sendable, Codable, Equatable {
        package var control: String
        package var requested: String
        package var enforced: Bool
        package var detail: String
    }

    /// A refused system call, reported by seccomp user notification.
    package struct Violation: Sendable, Codable, Equatable {
        package var syscall: String
        package var errno: String
        package var count: Int
        package var reason: String
        /// What the tool was doing when it first happened (the MCP calls in
        /// flight, as their invocation ids); nil when the caller tracks none.
        package var during: [String]?
    }

    /// A limit the sandbox hit (a ResourceLimitExceeded event): which one,
    /// its value, and what the kernel or the supervisor saw.
    package struct LimitEvent: Sendable, Codable, Equatable {
        /// The profile's name for it: max_memory, max_processes, max_cpu_time,
        /// max_execution_time, max_file_size, scratch_size, max_network_bytes;
        /// disk_write (max_disk_write) or disk_free (min_free_disk).
        package var resource: String
        /// The limit as the plan shows it ("64 MiB", "2s").
        package var limit: String
        /// What was seen, in words (with the evidence's source).
        package var observed: String
        /// The unit of the two numbers: bytes, tasks or milliseconds.
        package var unit: String
        package var limitValue: UInt64
        /// nil when the evidence carries no number (SIGXFSZ).
        package var observedValue: UInt64?
        package var invocationID: String
        /// What the tool was doing when it was hit (the MCP calls in flight).
        package var during: [String]?
    }

    /// What the whole tree used.
    package struct Usage: Sendable, Codable, Equatable {
        package var cpuMicroseconds: UInt64?
        package var peakMemoryBytes: UInt64?
        /// Most tasks (processes and threads) alive at once.
        package var peakProcesses: UInt64?
        package var wallMilliseconds: UInt64
    }

    /// Where the invocation's tasks lived.
    package struct Cgroup: Sendable, Codable, Equatable {
        package var version: Int
        /// Its directories: removed by the end of the run unless `notes` says otherwise.
        package var paths: [String]
        /// What the supervisor prepared first (v2 base).
        package var setup: [String]
    }

    /// What the supervisor read back from the sandbox's first process after execve.
    package struct Observed: Sendable, Codable, Equatable {
        package var uid: String
        package var gid: String
        package var groups: String
        package var capabilityBounding: String
        package var capabilityEffective: String
        package var capabilityPermitted: String
        package var capabilityAmbient: String
        package var noNewPrivileges: String
        package var seccomp: String
        package var seccompFilters: String
        package var namespaces: [String: String]
        /// Each namespace's identity as /proc shows it (`mnt:[4026532301]`):
        /// once the run is over no process may be left in any of them.
        package var namespaceIDs: [String: String]
    }

    /// The supervisor's own footprint (it must stay small whatever the tool does).
    package struct Supervisor: Sendable, Codable, Equatable {
        /// Peak resident set of the supervising process (VmHWM in /proc/self/status).
        /// Nil when /proc/self/status could not be read.
        package var peakResidentKilobytes: UInt64?
    }

    package var invocationID: String
    package var tool: String
    package var argv: [String]
    package var sandboxLevel: String
    package var uid: UInt32
    package var startedAt: String
    package var durations: Durations
    package var exit: Exit
    package var controls: [Control]
    package var usage: Usage
    package var cgroup: Cgroup?
    package var violations: [Violation]
    /// Refusals named in `permissions.quiet_refusals`: refused all the same,
    /// counted here, but neither SecurityViolations nor anomaly input.
    package var quietRefusals: [Violation] = []
    package var limits: [LimitEvent]
    package var observed: Observed?
    package var supervisor: Supervisor
    /// Invocation cgroups of dead supervisors this run's start-up sweep killed and removed.
    package var swept: [SweptInvocation]
    /// Invocations left open in the audit log by dead supervisors, closed by
    /// this run as ToolFailed `supervisor_lost`.
    package var recovered: [String]
    /// Events of this run the audit log could not take (each says which and
    /// why); empty when the whole trail is durable.
    package var auditProblems: [String]
    /// The outcome (the terminal event) could not be recorded when the run
    /// ended; it is kept and recorded late (see `auditProblems`).
    package var auditLost = false
    /// Plan rows that did not apply on this host, with the reason.
    package var notes: [String]
    /// Why the supervisor was told to end the tool early (`RunStop`), if it was.
    package var stopped: String? = nil
    /// What the egress proxy did (restricted network only).
    package var network: EgressSummary? = nil
    /// The process's steps with their CLOCK_MONOTONIC times, when BURROW_PHASES=1.
    package var phases: [Phases.Mark]? = nil
}
