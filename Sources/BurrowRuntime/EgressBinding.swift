import BurrowEgress
import BurrowPolicy
import BurrowSystem
import CBurrowChild
import Dispatch
import Synchronization
import SystemPackage

/// The egress proxy's side of one run with restricted network: the network
/// namespace the sandbox is cloned into (loopback only, owned by the
/// supervisor's user namespace) with the proxy's listener inside it, and the
/// proxy session serving that listener.
final class EgressBinding {
    /// The prepared namespace, until the sandbox has been cloned into it.
    private(set) var namespace: FileDescriptor?
    private let session: EgressSession
    /// Audit appends leave the proxy's thread here, in order.
    private let audit: DispatchQueue
    /// What the tool was doing when the byte budget cut its connections.
    private let budgetActivity: Latch

    private init(namespace: FileDescriptor, session: EgressSession, audit: DispatchQueue, budgetActivity: Latch) {
        self.namespace = namespace
        self.session = session
        self.audit = audit
        self.budgetActivity = budgetActivity
    }

    deinit { try? namespace?.close() }

    static func start(_ egress: NetworkPlan.Egress, trail: InvocationTrail?, activity: (@Sendable () -> [String])?) throws(RunError) -> EgressBinding {
        var ns: Int32 = -1
        var listener: Int32 = -1
        let rc = brw_netns_prepare(egress.port, &ns, &listener)
        guard rc == 0 else {
            throw .preparation("cannot prepare the sandbox's network namespace with the egress proxy's listener on 127.0.0.1:\(egress.port): \(errnoName(rc))")
        }
        let proxy: EgressProxy
        do {
            proxy = try EgressProxy.shared()
        } catch {
            _ = try? FileDescriptor(rawValue: ns).close()
            _ = try? FileDescriptor(rawValue: listener).close()
            throw .preparation("refusing to run: \(error)")
        }
        let audit = DispatchQueue(label: "burrow.egress.audit")
        let budgetActivity = Latch()
        let session: EgressSession
        do {
            session = try proxy.serve(listener: FileDescriptor(rawValue: listener), egress: egress) { record in
                // Asked on the proxy's thread, as the connection ends.
                let during = activity?()
                if record.budgetCut { budgetActivity.set(during ?? []) }
                guard let trail else { return }
                audit.async { trail.network(record, during: during) }
            }
        } catch {
            _ = try? FileDescriptor(rawValue: ns).close()
            throw .preparation("refusing to run: \(error)")
        }
        return EgressBinding(namespace: FileDescriptor(rawValue: ns), session: session, audit: audit, budgetActivity: budgetActivity)
    }

    /// The sandbox holds the namespace now.
    func launched() {
        try? namespace?.close()
        namespace = nil
    }

    /// Ends the proxy's service (every open connection is closed and
    /// reported) and waits until every record is in the audit log.
    func finish() -> EgressSummary {
        let summary = session.finish()
        audit.sync {}
        return summary
    }

    /// The activity when the budget was spent (nil: not spent, or not tracked).
    var budgetDuring: [String]? { budgetActivity.value.flatMap { $0.isEmpty ? nil : $0 } }
}

/// Keeps the first value set.
private final class Latch: Sendable {
    private let state = Mutex<[String]?>(nil)

    func set(_ value: [String]) { state.withLock { if $0 == nil { $0 = value } } }
    var value: [String]? { state.withLock { $0 } }
}
