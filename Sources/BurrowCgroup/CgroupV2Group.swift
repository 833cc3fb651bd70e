import BurrowSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One invocation's cgroup on a cgroup v2 host: `tools/<invocation>` beneath
/// Burrow's base (see `CgroupV2Base`). The child is born in it
/// (clone3 CLONE_INTO_CGROUP), it is killed with cgroup.kill, and removed
/// once cgroup.events says `populated 0`.
package final class CgroupV2Group: InvocationCgroup {
    private let directory: CgroupDirectory
    private let tools: CgroupDirectory
    private let name: String

    private init(directory: CgroupDirectory, tools: CgroupDirectory, name: String) {
        self.directory = directory
        self.tools = tools
        self.name = name
    }

    /// Creates `tools/<invocation>` (which must not exist yet).
    package static func create(invocation: String, base: CgroupV2Base) throws(CgroupError) -> CgroupV2Group {
        CgroupV2Group(directory: try base.tools.child(invocation, mustBeNew: true), tools: base.tools, name: invocation)
    }

    /// Takes over an existing invocation cgroup (the start-up sweep).
    package static func adopt(invocation: String, base: CgroupV2Base) throws(CgroupError) -> CgroupV2Group {
        CgroupV2Group(directory: try base.tools.child(invocation, create: false), tools: base.tools, name: invocation)
    }

    package var paths: [String] { [directory.path] }
    package var cloneTarget: Int32? { directory.fd.rawValue }

    package func selfJoinDescriptors() throws(CgroupError) -> [Int32] { [] }

    package func write(_ file: String, _ value: String) throws(CgroupError) {
        try directory.write(file, value)
    }

    /// cgroup.kill: SIGKILL to every task of the subtree, stopped ones
    /// included, with no race against forks (Linux 5.14).
    package func killAll() {
        try? directory.write("cgroup.kill", "1")
    }

    package func waitEmpty(timeout: UInt64) -> Bool {
        let end = Kernel.monotonicNanoseconds() + timeout
        let raw = openat(directory.fd.rawValue, "cgroup.events", O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard raw >= 0 else { return false }
        defer { close(raw) }
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = pread(raw, &buffer, buffer.count, 0)
            guard n > 0 else { return false }
            let text = String(decoding: buffer[0..<n], as: UTF8.self)
            if text.split(separator: "\n").contains("populated 0") { return true }
            let now = Kernel.monotonicNanoseconds()
            if now >= end { return false }
            // The kernel signals a change of cgroup.events with POLLPRI.
            var pfd = pollfd(fd: raw, events: Int16(POLLPRI), revents: 0)
            _ = poll(&pfd, 1, Int32(min(100, (end - now) / 1_000_000 + 1)))
        }
    }

    package func remove() throws(CgroupError) {
        try tools.removeChild(name)
    }

    package func readings(peaks: Bool) -> CgroupReadings {
        CgroupReadings(
            cpuNanoseconds: directory.keyed("cpu.stat", "usage_usec").map { $0 * 1000 },
            peakMemoryBytes: peaks ? directory.number("memory.peak") : nil,
            peakProcesses: peaks ? directory.number("pids.peak") : nil,
            oomKills: directory.keyed("memory.events", "oom_kill") ?? 0,
            pidsMaxHits: directory.keyed("pids.events", "max") ?? 0)
    }
}

/// Burrow's part of the cgroup v2 tree: a base directory beneath the
/// process's own cgroup whose `tools/` child has memory, pids and cpu enabled.
///
/// - own cgroup is the root (a VM, a container host): base `burrow/`; the
///   root's own controllers must already be enabled (Burrow never writes the root).
/// - own cgroup is `…/supervisor` (a supervisor that already moved itself):
///   the base is its parent.
/// - otherwise the own cgroup is the base (under systemd: the unit's delegated
///   subtree). Controllers can only be enabled in a cgroup without tasks, so
///   the supervisor first moves itself into `supervisor/`; when other
///   processes share the cgroup, Burrow refuses rather than move them.
package struct CgroupV2Base {
    package let base: CgroupDirectory
    package let tools: CgroupDirectory
    /// What was done to get here (for the record).
    package let setup: [String]

    /// The controllers every invocation gets.
    package let controllers: [String]

    /// Finds (and prepares) the base for invocations that get `controllers`.
    package static func prepare(ownDirectory: String, controllers: [String]) throws(CgroupError) -> CgroupV2Base {
        func missing(_ dir: CgroupDirectory) -> [String] {
            let enabled = (dir.read("cgroup.subtree_control") ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            return controllers.filter { !enabled.contains($0) }
        }
        func requireEnabled(_ dir: CgroupDirectory, hint: String) throws(CgroupError) {
            let absent = missing(dir)
            guard absent.isEmpty else {
                throw .unsupported("\(dir.path)/cgroup.subtree_control lacks \(absent.joined(separator: ", ")): \(hint)")
            }
        }
        func enable(_ dir: CgroupDirectory, _ setup: inout [String]) throws(CgroupError) {
            let absent = missing(dir)
            guard !absent.isEmpty else { return }
            try dir.write("cgroup.subtree_control", absent.map { "+" + $0 }.joined(separator: " "))
            setup.append("enabled \(absent.joined(separator: ", ")) in \(dir.path)/cgroup.subtree_control")
        }

        let own = try CgroupDirectory.open(ownDirectory)
        var setup: [String] = []
        let base: CgroupDirectory
        // cgroup-v2.rst: cgroup.type "exists on non-root cgroups".
        if !own.has("cgroup.type") {
            try requireEnabled(own, hint: "enable them in the root's cgroup.subtree_control (Burrow never writes the root cgroup)")
            base = try own.child("burrow")
        } else if ownDirectory.split(separator: "/").last == "supervisor" {
            base = try own.parent()
            try requireEnabled(base, hint: "the supervisor's parent was expected to be Burrow's base")
        } else {
            base = own
            if missing(base) != [] {
                let others = base.processes.filter { $0 != getpid() }
                guard others.isEmpty else {
                    throw .unsupported(
                        "cannot enable \(controllers.joined(separator: ", ")) beneath \(base.path): the cgroup also holds \(others.count) process(es) Burrow did not start (e.g. pid \(others[0])); run Burrow in a delegated cgroup of its own (burrowd's unit has Delegate=yes; for the CLI: systemd-run --scope -p Delegate=yes burrow run …)"
                    )
                }
                let supervisor = try base.child("supervisor")
                try supervisor.write("cgroup.procs", "\(getpid())")
                setup.append("moved the supervisor (pid \(getpid())) into \(supervisor.path)")
            }
        }
        try enable(base, &setup)
        let tools = try base.child("tools")
        try enable(tools, &setup)
        return CgroupV2Base(base: base, tools: tools, setup: setup, controllers: controllers)
    }

    /// The invocation cgroups that exist now (live or left over).
    package var invocations: [String] { tools.children() }
}
