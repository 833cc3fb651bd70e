import BurrowSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One invocation's cgroups on a v1 (or hybrid) host: `burrow/tools/<invocation>`
/// beneath Burrow's own cgroup in each hierarchy it uses (memory, pids, cpu,
/// cpuacct, freezer; co-mounted controllers share one directory).
package final class CgroupV1Group: InvocationCgroup {
    /// controller → the invocation's directory in that controller's hierarchy.
    private var directories: [String: CgroupDirectory] = [:]
    /// controller → `burrow/tools` of that hierarchy (to remove the invocation directory).
    private var tools: [String: CgroupDirectory] = [:]
    private let name: String

    private init(name: String) { self.name = name }

    /// Where invocation cgroups live beneath Burrow's own cgroup in a hierarchy.
    package static let toolsPath = ["burrow", "tools"]

    /// Creates the invocation's directory in every hierarchy.
    /// - Parameter hierarchies: controller → that hierarchy's directory of Burrow's own cgroup.
    package static func create(invocation: String, hierarchies: [String: String]) throws(CgroupError) -> CgroupV1Group {
        try make(invocation, hierarchies: hierarchies, create: true)
    }

    /// Takes over an invocation's existing directories (the start-up sweep).
    package static func adopt(invocation: String, hierarchies: [String: String]) throws(CgroupError) -> CgroupV1Group {
        try make(invocation, hierarchies: hierarchies, create: false)
    }

    private static func make(_ name: String, hierarchies: [String: String], create: Bool) throws(CgroupError) -> CgroupV1Group {
        let group = CgroupV1Group(name: name)
        var firstController: [String: String] = [:]  // own directory → the controller that opened it
        for (controller, own) in hierarchies.sorted(by: { $0.key < $1.key }) {
            if let first = firstController[own] {
                group.directories[controller] = group.directories[first]
                group.tools[controller] = group.tools[first]
                continue
            }
            do throws(CgroupError) {
                var dir = try CgroupDirectory.open(own)
                for component in toolsPath { dir = try dir.child(component, create: create) }
                group.directories[controller] = try dir.child(name, create: create, mustBeNew: create)
                group.tools[controller] = dir
                firstController[own] = controller
            } catch {
                // A supervisor that died while creating them may have left some hierarchies without one.
                if !create, case .io(_, _, .noSuchFileOrDirectory) = error { continue }
                if create { try? group.remove() }
                throw error
            }
        }
        return group
    }

    /// The distinct directories (co-mounted controllers share one).
    private var distinct: [(tools: CgroupDirectory, invocation: CgroupDirectory)] {
        var seen = Set<String>()
        return directories.keys.sorted().compactMap { c in
            guard let d = directories[c], let t = tools[c], seen.insert(d.path).inserted else { return nil }
            return (t, d)
        }
    }

    package var paths: [String] { distinct.map(\.invocation.path) }

    /// The invocation cgroups that exist now in any of `hierarchies` (live or left over).
    package static func invocations(hierarchies: [String: String]) -> [String] {
        var names = Set<String>()
        hierarchy: for own in Set(hierarchies.values) {
            guard var dir = try? CgroupDirectory.open(own) else { continue }
            for component in toolsPath {
                guard let next = try? dir.child(component, create: false) else { continue hierarchy }
                dir = next
            }
            names.formUnion(dir.children())
        }
        return names.sorted()
    }
    package var cloneTarget: Int32? { nil }

    package func selfJoinDescriptors() throws(CgroupError) -> [Int32] {
        var fds: [Int32] = []
        for d in distinct {
            do {
                fds.append(try d.invocation.openForWriting("tasks"))
            } catch {
                for fd in fds { close(fd) }
                throw error
            }
        }
        return fds
    }

    package func write(_ file: String, _ value: String) throws(CgroupError) {
        let parts = file.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let d = directories[parts[0]] else { throw .unsupported("\(file) names no hierarchy of this invocation") }
        try d.write(parts[1], value)
    }

    /// Freezes the tree (so nothing forks meanwhile), SIGKILLs every task, thaws.
    package func killAll() {
        // Nothing left (the usual end: init took the tree with it): nothing to freeze.
        guard distinct.contains(where: { !$0.invocation.processes.isEmpty }) else { return }
        let freezer = directories["freezer"]
        let frozen = (try? freezer?.write("freezer.state", "FROZEN")) != nil
        if frozen {
            // FREEZING until every task has stopped; a few ms at most.
            for _ in 0..<100 {
                if freezer?.read("freezer.state")?.trimmed == "FROZEN" { break }
                usleep(1000)
            }
        }
        for d in distinct {
            for pid in d.invocation.processes { kill(pid, SIGKILL) }
        }
        if frozen { try? freezer?.write("freezer.state", "THAWED") }
    }

    package func waitEmpty(timeout: UInt64) -> Bool {
        let end = Kernel.monotonicNanoseconds() + timeout
        var lastKill = Kernel.monotonicNanoseconds()
        let invocations = distinct.map(\.invocation)
        while invocations.contains(where: { !$0.processes.isEmpty }) {
            let now = Kernel.monotonicNanoseconds()
            if now >= end { return false }
            // A task that forked while the first kill ran gets another.
            if now - lastKill > 100_000_000 {
                killAll()
                lastKill = now
            }
            usleep(1000)
        }
        return true
    }

    package func remove() throws(CgroupError) {
        var failure: CgroupError?
        for d in distinct {
            do {
                try d.tools.removeChild(name)
            } catch {
                failure = error
            }
        }
        directories = [:]
        tools = [:]
        if let failure { throw failure }
    }

    package func readings(peaks: Bool) -> CgroupReadings {
        CgroupReadings(
            cpuNanoseconds: directories["cpuacct"]?.number("cpuacct.usage"),
            peakMemoryBytes: peaks ? directories["memory"]?.number("memory.max_usage_in_bytes") : nil,
            peakProcesses: peaks ? directories["pids"]?.number("pids.peak") : nil,
            oomKills: directories["memory"]?.keyed("memory.oom_control", "oom_kill") ?? 0,
            pidsMaxHits: directories["pids"]?.keyed("pids.events", "max") ?? 0)
    }
}
