import BurrowCgroup
import BurrowPolicy
import BurrowSystem
import SystemPackage

/// Applies the plan's cgroup section: creates the invocation's cgroups,
/// writes the plan's values (the same rows dry-run prints), and reads the
/// evidence of a limit being hit.
final class CgroupBinding {
    let group: CgroupV1Group
    /// Plan rows that could not apply on this host, and why (recorded, not hidden).
    private(set) var skipped: [String] = []

    /// The controllers a v1 invocation uses.
    static let v1Controllers = ["memory", "pids", "cpuacct", "freezer"]

    private init(group: CgroupV1Group) { self.group = group }

    /// - Returns: nil when the plan has no cgroup section (version 0 is refused earlier).
    static func make(_ plan: CgroupPlan, invocation: String) throws(RunError) -> CgroupBinding? {
        switch plan.version {
        case 1:
            var hierarchies: [String: String] = [:]
            for controller in v1Controllers {
                guard let directory = plan.directories[controller] else {
                    throw .refused("the cgroup v1 \(controller) controller is not mounted")
                }
                hierarchies[controller] = directory
            }
            let binding: CgroupBinding
            do {
                binding = CgroupBinding(group: try CgroupV1Group(invocation: invocation, hierarchies: hierarchies))
            } catch {
                throw .preparation("cannot create the invocation's cgroups: \(error)")
            }
            try binding.apply(plan.writes)
            return binding
        case 2:
            throw .refused("cgroup v2 limits are enforced by the resource-control step, which has not landed; this build enforces limits through cgroup v1 only")
        default:
            return nil
        }
    }

    private func apply(_ writes: [CgroupWrite]) throws(RunError) {
        for w in writes {
            let parts = w.file.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                group.remove()
                throw .preparation("cgroup write \(w.file) names no controller")
            }
            do {
                try group.write(parts[0], parts[1], w.value)
            } catch {
                // Without swap accounting there is no memsw file: harmless only when no swap is on.
                if parts[1] == "memory.memsw.limit_in_bytes", case .io(_, _, let e) = error, e == .noSuchFileOrDirectory, !Self.swapIsOn {
                    skipped.append("\(w.file): swap accounting is off, and so is swap: the memory limit is the whole budget")
                    continue
                }
                group.remove()
                throw .preparation("cannot apply cgroup limit \(w.file) = \(w.value): \(error)")
            }
        }
    }

    /// Whether any swap area is active (/proc/swaps lists more than its header).
    private static var swapIsOn: Bool {
        ((try? FileIO.read("/proc/swaps")) ?? "x\ny").split(separator: "\n").count > 1
    }

    /// CPU time of the whole tree so far, in nanoseconds.
    var cpuNanoseconds: UInt64? { group.number("cpuacct", "cpuacct.usage") }
    /// Highest memory use of the tree, in bytes.
    var peakMemory: UInt64? { group.number("memory", "memory.max_usage_in_bytes") }
    /// How many times the kernel's OOM killer killed a task of the tree.
    var oomKills: UInt64 { group.counter("memory", "memory.oom_control", key: "oom_kill") ?? 0 }
    /// How many forks failed at pids.max.
    var pidsMaxHits: UInt64 { group.counter("pids", "pids.events", key: "max") ?? 0 }
}
