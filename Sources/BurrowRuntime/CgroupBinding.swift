import BurrowCgroup
package import BurrowPolicy
import BurrowSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Applies the plan's cgroup section: creates the invocation's cgroup(s),
/// writes the plan's values (the same rows dry-run prints), and reads the
/// evidence of a limit being hit.
final class CgroupBinding {
    let group: any InvocationCgroup
    /// What was prepared on the way (the v2 base), for the record.
    private(set) var setup: [String]
    /// Plan rows that could not apply on this host, and why (recorded, not hidden).
    private(set) var skipped: [String] = []

    private init(group: any InvocationCgroup, setup: [String]) {
        self.group = group
        self.setup = setup
    }

    /// Creates the invocation's cgroup at `site` and writes the plan's values.
    static func make(_ plan: CgroupPlan, site: CgroupSite, invocation: String) throws(RunError) -> CgroupBinding {
        let binding: CgroupBinding
        do {
            binding = CgroupBinding(group: try site.create(invocation), setup: site.setup)
        } catch {
            throw .preparation("cannot create the invocation's cgroup: \(error)")
        }
        try binding.apply(plan.writes)
        return binding
    }

    private func apply(_ writes: [CgroupWrite]) throws(RunError) {
        for w in writes {
            do {
                try group.write(w.file, w.value)
            } catch {
                // Without swap accounting there is no swap file: harmless only when no swap is on.
                if w.file.hasSuffix("memory.memsw.limit_in_bytes") || w.file == "memory.swap.max", case .io(_, _, .noSuchFileOrDirectory) = error,
                    !Self.swapIsOn
                {
                    skipped.append("\(w.file): swap accounting is off, and so is swap: the memory limit is the whole budget")
                    continue
                }
                _ = group.finish()
                throw .preparation("cannot apply cgroup limit \(w.file) = \(w.value): \(error)")
            }
        }
    }

    /// Whether any swap area is active (/proc/swaps lists more than its header).
    private static var swapIsOn: Bool {
        ((try? FileIO.read("/proc/swaps")) ?? "x\ny").split(separator: "\n").count > 1
    }
}

/// An invocation cgroup the start-up sweep found without a live supervisor.
package struct SweptInvocation: Sendable, Codable, Equatable {
    package var invocationID: String
    package var paths: [String]
    /// nil when it was killed and removed; else why it is still there.
    package var problem: String?
}

/// Where this host keeps invocation cgroups for a plan: the v1 hierarchies'
/// directories or the prepared v2 base.
enum CgroupSite {
    case v1(hierarchies: [String: String])
    case v2(CgroupV2Base)

    /// - Returns: nil when the plan has no cgroup section (version 0 is refused earlier).
    static func locate(_ plan: CgroupPlan) throws(RunError) -> CgroupSite? {
        do throws(CgroupError) {
            switch plan.version {
            case 1:
                var hierarchies: [String: String] = [:]
                for controller in plan.controllers {
                    guard let directory = plan.directories[controller] else {
                        throw .unsupported("the cgroup v1 \(controller) controller is not mounted")
                    }
                    hierarchies[controller] = directory
                }
                return .v1(hierarchies: hierarchies)
            case 2:
                guard let own = plan.directories["cgroup2"] else { throw .unsupported("cgroup2 is not mounted") }
                return .v2(try CgroupV2Base.prepare(ownDirectory: own, controllers: plan.controllers))
            default:
                return nil
            }
        } catch {
            throw .preparation("cannot prepare Burrow's cgroups: \(error)")
        }
    }

    /// What was prepared to get here (the v2 base), for the record.
    var setup: [String] {
        if case .v2(let base) = self { return base.setup }
        return []
    }

    func create(_ invocation: String) throws(CgroupError) -> any InvocationCgroup {
        switch self {
        case .v1(let hierarchies): try CgroupV1Group.create(invocation: invocation, hierarchies: hierarchies)
        case .v2(let base): try CgroupV2Group.create(invocation: invocation, base: base)
        }
    }

    /// Kills and removes every invocation cgroup whose supervisor is gone
    /// (crashed or SIGKILLed: its lease in /run/burrow/invocations is free).
    /// Live invocations of other supervisors are left alone.
    func sweep() -> [SweptInvocation] {
        let names: [String]
        switch self {
        case .v1(let hierarchies): names = CgroupV1Group.invocations(hierarchies: hierarchies)
        case .v2(let base): names = base.invocations
        }
        var swept: [SweptInvocation] = []
        for name in names {
            guard let lease = try? InvocationLease.takeOver(name) else { continue }  // nil: alive
            defer { lease.end() }
            let group: (any InvocationCgroup)?
            switch self {
            case .v1(let hierarchies): group = try? CgroupV1Group.adopt(invocation: name, hierarchies: hierarchies)
            case .v2(let base): group = try? CgroupV2Group.adopt(invocation: name, base: base)
            }
            guard let group else { continue }  // finished meanwhile
            swept.append(SweptInvocation(invocationID: name, paths: group.paths, problem: group.finish()))
        }
        return swept
    }
}

extension Runner {
    /// Kills and removes every invocation cgroup left by a dead supervisor
    /// (what `run` does before each invocation; the daemon calls it at start).
    package static func sweep(_ plan: CgroupPlan) throws(RunError) -> [SweptInvocation] {
        try CgroupSite.locate(plan)?.sweep() ?? []
    }
}
