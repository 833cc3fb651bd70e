#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One invocation's cgroup(s), on either backend: where its tasks live, the
/// limits written there, and the kernel's own evidence of a limit being hit.
package protocol InvocationCgroup: AnyObject {
    /// The invocation's directories (one on v2, one per hierarchy on v1), for the record.
    var paths: [String] { get }
    /// The directory descriptor for clone3(CLONE_INTO_CGROUP), when the
    /// backend can place the child atomically (v2); nil means the child
    /// joins by itself (`selfJoinDescriptors`).
    var cloneTarget: Int32? { get }
    /// Descriptors of the `tasks` files the child writes "0" to, joining by
    /// itself (v1; empty on v2, which uses `cloneTarget`). A thread moving
    /// itself skips the threadgroup rwsem's RCU grace period that moving
    /// another process's thread group costs (about 10 ms against 10 µs).
    /// The caller closes them once the child has them.
    func selfJoinDescriptors() throws(CgroupError) -> [Int32]
    /// Writes a limit: `file` as the plan names it (`memory.max`, `memory/memory.limit_in_bytes`).
    func write(_ file: String, _ value: String) throws(CgroupError)
    /// Kills every task in the invocation's cgroup(s), stopped ones included.
    func killAll()
    /// Waits up to `timeout` nanoseconds for the last task to be gone.
    /// - Returns: whether the cgroup is empty.
    func waitEmpty(timeout: UInt64) -> Bool
    /// Removes the directories (which must be empty).
    func remove() throws(CgroupError)
    /// The limit counters and the tree's CPU time; with `peaks`, also the
    /// peak memory and task count (not needed on every supervision tick).
    func readings(peaks: Bool) -> CgroupReadings
}

/// A snapshot of an invocation's accounting and limit counters.
package struct CgroupReadings: Sendable, Equatable {
    /// CPU time of the whole tree (nil: unreadable, which stops a budgeted run).
    package var cpuNanoseconds: UInt64?
    /// Highest memory charge of the tree (memory.peak, max_usage_in_bytes).
    package var peakMemoryBytes: UInt64?
    /// Highest number of tasks at once (pids.peak).
    package var peakProcesses: UInt64?
    /// Tasks the OOM killer killed because of the invocation's memory limit.
    package var oomKills: UInt64
    /// Forks refused at pids.max.
    package var pidsMaxHits: UInt64
}

extension InvocationCgroup {
    /// Ends the invocation's tasks and removes its cgroup(s).
    /// - Returns: nil when done, else why the directories remain (the next
    ///   start-up sweep removes them).
    package func finish(timeout: UInt64 = 5_000_000_000) -> String? {
        killAll()
        guard waitEmpty(timeout: timeout) else {
            return "the invocation's cgroup still had tasks \(timeout / 1_000_000) ms after the kill: left for the start-up sweep (\(paths.joined(separator: ", ")))"
        }
        do {
            try remove()
            return nil
        } catch {
            return "\(error): left for the start-up sweep"
        }
    }
}
