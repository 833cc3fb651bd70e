import BurrowCgroup
package import BurrowPolicy
import BurrowProfile
import BurrowSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A sandbox built ahead of its request (burrowd keeps one per busy tool):
/// its cgroup made and limited, every namespace, mount, rlimit, credential,
/// capability drop, Landlock domain and seccomp filter applied, the tool
/// waiting at the last handshake before execve. A request whose plan `fits`
/// releases it with its own argv and environment (`Runner.Options.warm`);
/// any other plan discards it. Used once, never shared.
///
/// Nothing ran in it before the release, so it has no audit trail: the
/// invocation's ToolInvoked is written before the release, and a sandbox
/// discarded unused (or left behind by a crash: the sweep removes its cgroup)
/// leaves no event.
package final class WarmSandbox: @unchecked Sendable {
    /// The plan it was built from; the request's plan must fit it.
    package let plan: LaunchPlan
    /// The invocation it will be (its cgroup and lease carry the id).
    package let invocationID: String
    /// When it was ready (monotonic nanoseconds).
    package let readyAt: UInt64
    let lease: InvocationLease
    private let staged: Runner.Staged
    /// Taken or discarded: either happens once.
    private let used = Atomic<Bool>(false)
    /// The request plan `claim` found fitting: the only plan `take` releases it for.
    private let claimed = Mutex<LaunchPlan?>(nil)

    private init(plan: LaunchPlan, invocationID: String, lease: InvocationLease, staged: Runner.Staged) {
        self.plan = plan
        self.invocationID = invocationID
        self.lease = lease
        self.staged = staged
        self.readyAt = Kernel.monotonicNanoseconds()
    }

    deinit { discard() }

    /// Whether a plan can be built ahead: an isolated sandbox whose tool's
    /// streams are captured (no egress proxy, which belongs to one invocation's trail).
    package static func canBuild(_ plan: LaunchPlan) -> Bool {
        plan.sandboxLevel != .none && plan.network.egress == nil && plan.namespaces.contains { $0.kind == .pid }
    }

    /// Builds `plan`'s sandbox up to the moment before execve.
    /// - Throws: `RunError` as `Runner.run` would for the same plan.
    package static func build(_ plan: LaunchPlan, invocationID: String, spawner: Spawner?) throws(RunError) -> WarmSandbox {
        guard canBuild(plan) else { throw .preparation("\(plan.tool.id)'s sandbox cannot be built ahead (no isolation, or an egress proxy)") }
        try Runner.checkEnforceable(plan)
        let lease = try InvocationLease.acquire(invocationID)
        do throws(RunError) {
            let site = try CgroupSite.locate(plan.cgroup)
            let options = Runner.Options(forwardSignals: false, spawner: spawner, sweep: false)
            let staged = try Runner.stage(plan, site: site, invocationID: invocationID, options: options, trail: nil, hold: true)
            return WarmSandbox(plan: plan, invocationID: invocationID, lease: lease, staged: staged)
        } catch {
            lease.end()
            throw error
        }
    }

    /// Whether `request` would build this very sandbox: its spec (everything
    /// the kernel was told) equal to this one's, differing at most in its
    /// `exec` (argv and environment, which reach only execve, and the
    /// deadline, which only the supervisor enforces) and its report; and its
    /// argv and environment fit the one message the held tool reads.
    func fits(_ request: LaunchPlan) -> Bool {
        request.sameSandbox(as: plan) && Sandbox.execMessage(argv: request.exec.argv, environment: request.execEnvironment) != nil
    }

    /// Reserves it for `request` if the plan fits (checked here, once): the
    /// invocation then passes that same plan to `Runner.run`.
    package func claim(_ request: LaunchPlan) -> Bool {
        guard fits(request) else { return false }
        return claimed.withLock { c in
            guard c == nil else { return false }
            c = request
            return true
        }
    }

    /// Whether it is still waiting (its processes could have been killed from outside).
    package var isReady: Bool { !used.load(ordering: .relaxed) && staged.sandbox.isHeld && !staged.sandbox.hasEnded }

    /// Releases the tool with `plan`'s argv and environment. `plan` must be
    /// the one it was claimed for: the same value, so the comparison meets
    /// shared storage and costs next to nothing on the spawn path.
    func take(_ plan: LaunchPlan, streams: CapturedStreams?) throws(RunError) -> Runner.Staged {
        guard claimed.withLock({ $0 == plan }) else { throw .preparation("the sandbox built ahead was not claimed for this invocation's plan") }
        guard let streams, let pump = staged.pump else { throw .preparation("a sandbox built ahead serves captured streams only") }
        guard !used.exchange(true, ordering: .acquiringAndReleasing) else { throw .preparation("the sandbox built ahead was already used") }
        pump.bind(streams)
        do throws(RunError) {
            try staged.sandbox.release(argv: plan.command.argv, environment: plan.execEnvironment)
        } catch {
            _ = staged.cgroup?.group.finish()
            throw error
        }
        return staged
    }

    /// Kills it unused and removes its cgroup (a plan that no longer fits,
    /// a tool updated or removed, shutdown). Nothing ran: nothing is audited.
    package func discard() {
        guard !used.exchange(true, ordering: .acquiringAndReleasing) else { return }
        staged.sandbox.discard()
        _ = staged.cgroup?.group.finish()
        lease.end()
    }
}
