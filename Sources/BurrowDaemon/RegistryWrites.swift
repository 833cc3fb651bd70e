import BurrowAPI
import BurrowFleet
import Logging
import Synchronization

/// One registry change at a time, from the checks that judge it against
/// the stored registrations (dependencies and dependents) to its audit
/// event (or its undoing): a removal and a registration that depends on
/// what it removes, sent at once, cannot both pass their checks against
/// the registry as it was before the other. Waiters are served in order;
/// nothing else waits on it (reads, invocations and health checks never do).
///
/// With a shared registry (`[registry] url`) the lock is the fleet's too:
/// `lock` opens a transaction holding PostgreSQL's registry lock and first
/// takes what other nodes changed, so the checks judge the fleet's
/// registry; the route writes the local replica, `publish`es the tool's
/// rows into the transaction, records its audit event, and `commit`s.
/// A change that fails anywhere is rolled back there and the replica
/// taken again from the fleet's rows. Changes made elsewhere arrive
/// through `follow` (LISTEN/NOTIFY), under the same lock.
final class RegistryWrites: Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// The shared registry's transaction of the change under way.
        var transaction: RegistryTransaction?
        /// The replica was written in it (rolled back: take the fleet's rows again).
        var written = false
    }

    private let state = Mutex(State())
    let registry: RegistryStore
    /// The fleet's registry; nil: the local one alone.
    let shared: SharedRegistry?
    /// Called with the tools whose rows another node changed (their warm sandboxes are stale).
    let changed: @Sendable (Set<String>) -> Void
    /// The shared registry's revision the replica holds; nil: to be taken whole.
    private let revision = Mutex<Int64?>(nil)
    /// The replica's state for the metrics: connected to the fleet's registry, and its revision.
    let following = Mutex<(connected: Bool, revision: Int64)>((false, 0))
    /// Pins on their way to the fleet's registry (`publishPins`).
    private let pendingPins = Mutex<Set<RegistryKey>>([])
    let logger = Logger(label: "burrowd")

    init(registry: RegistryStore, shared: SharedRegistry?, changed: @escaping @Sendable (Set<String>) -> Void) {
        self.registry = registry
        self.shared = shared
        self.changed = changed
        guard shared != nil else { return }
        registry.pinsKept.withLock {
            $0 = { [weak self] id, version, first in self?.publishPins(id, version: version, first: first) }
        }
    }

    /// Takes pins an invocation kept to the fleet's registry, off its path.
    /// A first approval is the fleet's first: when another node's was
    /// committed before, this replica takes that one instead (its next
    /// sessions use it). Several for one version while one is pending are
    /// one. Unreachable, the pins stay this node's (a complete pull keeps a
    /// local approval the fleet lacks) and go with the tool's next change.
    func publishPins(_ id: String, version: String, first approved: String?) {
        let key = RegistryKey(id: id, version: version)
        guard pendingPins.withLock({ $0.insert(key).inserted }) else { return }
        Task {
            defer { _ = pendingPins.withLock { $0.remove(key) } }
            do {
                try await lock()
                defer { unlock() }
                if approved != nil,
                    let transaction = state.withLock({ s -> RegistryTransaction? in
                        s.written = true
                        return s.transaction
                    })
                {
                    // The approval as this replica holds it now (the pull in `lock` may have brought another).
                    let local = try registry.pins(id, version: version)
                    let inForce: SharedPins?
                    do {
                        inForce = try await transaction.keepFirstApproval(id: id, version: version, approved: local.approved ?? approved ?? "")
                    } catch {
                        giveUp(transaction)
                        throw error
                    }
                    if let inForce, (inForce.approved, inForce.offered) != (local.approved, local.offered) {
                        try registry.restorePins(id, version: version, approved: inForce.approved, offered: inForce.offered)
                        changed([id])
                    }
                } else {
                    try await publish(id, version: version, pinsOnly: true)
                }
                try await commit()
            } catch {
                logger.warning("the pinned definitions of \(id) \(version) did not reach the fleet's registry: \(error)")
            }
        }
    }

    /// This node's turn, without the fleet's lock (taking changes made elsewhere).
    private func take() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                guard s.held else {
                    s.held = true
                    return true
                }
                s.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Hands the lock to the next waiter, if any.
    private func handOff() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.transaction = nil
            s.written = false
            guard !s.waiters.isEmpty else {
                s.held = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }

    /// Takes the lock for a change: this node's, and with a shared registry
    /// the fleet's, with what other nodes changed taken into the replica
    /// first. Without the fleet's registry no change is made.
    func lock() async throws(DaemonError) {
        await take()
        guard let shared else { return }
        let transaction: RegistryTransaction
        let changes: RegistryChanges
        do {
            (transaction, changes) = try await shared.begin(after: revision.withLock { $0 })
        } catch {
            handOff()
            throw DaemonError(.centralUnavailable, "the fleet's registry (\(shared.database.url)) cannot be reached, so no change is made: \(explainFleetError(error))")
        }
        do {
            try apply(changes)
        } catch {
            // The fleet's lock is not kept by a change that cannot start.
            await shared.rollback(transaction)
            handOff()
            throw DaemonError(.registryUnavailable, "this node's replica cannot take the fleet's registry, so no change is made: \(error)")
        }
        state.withLock { $0.transaction = transaction }
    }

    /// Brings the replica to `changes` (held: under the lock). A replica of
    /// one database never takes another's rows (a database recreated, or
    /// another one at the same address): only `start` may adopt one.
    private func apply(_ changes: RegistryChanges, adopting: Bool = false) throws {
        if !adopting, let known = try registry.replicaOf(), known != changes.database {
            throw NotAReplica(
                description:
                    "the fleet's registry (\(shared.map { "\($0.database.url)" } ?? "")) is another database now (\(changes.database); this replica's was \(known)): the replica is left as it is; restart burrowd to join it"
            )
        }
        let ids = try registry.apply(changes)
        revision.withLock { $0 = changes.revision }
        following.withLock { $0.revision = changes.revision }
        if !ids.isEmpty { changed(ids) }
    }

    /// Puts the replica's rows of tool `id` (one version, or all; its pins
    /// only with `pinsOnly`) into the fleet's change under way. Nothing to
    /// do without a shared registry. A failure gives the change up.
    func publish(_ id: String, version: String? = nil, pinsOnly: Bool = false) async throws(DaemonError) {
        guard let shared,
            let transaction = state.withLock({ s -> RegistryTransaction? in
                s.written = true
                return s.transaction
            })
        else { return }
        do {
            let rows = try registry.sharedRows(id, version: version)
            try await transaction.put(id: id, version: version, tools: pinsOnly ? nil : rows.tools, pins: rows.pins)
        } catch {
            giveUp(transaction)
            throw DaemonError(.centralUnavailable, "the fleet's registry (\(shared.database.url)) did not take the change, so it was undone: \(explainFleetError(error))")
        }
    }

    /// A change whose statement failed or timed out: its connection is
    /// closed (never ROLLBACK on it: a statement a timeout abandoned would
    /// then run after it, on its own).
    private func giveUp(_ transaction: RegistryTransaction) {
        shared?.abandon(transaction)
        state.withLock { if $0.transaction === transaction { $0.transaction = nil } }
    }

    /// Commits the fleet's change (announcing it to the other nodes). A
    /// COMMIT whose answer never came is asked after: committed, it is a
    /// success; otherwise the error says whether it is known not to be in
    /// force. Either way the replica is taken again at `unlock`.
    func commit() async throws(DaemonError) {
        guard let shared, let transaction = state.withLock({ $0.transaction }) else { return }
        state.withLock { $0.transaction = nil }
        do {
            let moved = try await shared.commit(transaction)
            state.withLock { $0.written = false }
            revision.withLock { $0 = moved }
            following.withLock { $0.revision = moved }
        } catch SharedRegistry.CommitFailure.aborted(let why) {
            throw DaemonError(.centralUnavailable, "the fleet's registry (\(shared.database.url)) did not commit the change (\(why)): recorded in the audit log, but not in force")
        } catch {
            throw DaemonError(
                .centralUnavailable,
                "the fleet's registry (\(shared.database.url)): \(error); recorded in the audit log, it may or may not be in force: read it back (GET) once the database answers")
        }
    }

    /// Releases the lock. A fleet change not committed is rolled back, and
    /// a replica written in it is taken again from the fleet's rows.
    func unlock() {
        let (transaction, written) = state.withLock { ($0.transaction, $0.written) }
        guard let shared, transaction != nil || written else { return handOff() }
        Task {
            if let transaction { await shared.rollback(transaction) }
            if written {
                do {
                    try apply(try await shared.snapshot())
                } catch {
                    // Taken whole at the next pull (by `follow`, or the next change).
                    revision.withLock { $0 = nil }
                    logger.warning("the registry replica: \(explainFleetError(error)); it is taken whole again once the fleet's registry answers")
                }
            }
            handOff()
        }
    }

    /// At start, before burrowd serves: the replica taken whole from the
    /// fleet's registry. A node that was never a replica of it brings its
    /// registrations when the fleet has none yet (the first node), starts
    /// empty when it has none, and is refused otherwise: two registries are
    /// never merged silently. A replica that cannot reach the fleet serves
    /// what it last took (and follows once it can); a node that never took
    /// it refuses to start.
    func start() async throws {
        guard let shared else { return }
        let known = try registry.replicaOf()
        do {
            let (transaction, changes) = try await shared.begin(after: nil)
            let local: Int
            do {
                local = try registry.versionCount()
                if known == changes.database || local == 0 {
                    await shared.rollback(transaction)
                    try apply(changes, adopting: true)
                    return
                }
            } catch {
                await shared.rollback(transaction)
                throw error
            }
            guard changes.revision == 0 else {
                await shared.rollback(transaction)
                throw NotAReplica(
                    description:
                        "this node's registry (\(registry.path)) holds \(local) registered versions and is not a replica of the fleet's (\(shared.database.url)), which holds registrations of its own: they are never merged. Move the local file away to join the fleet (register its tools again through any node), or point [registry] url at an empty database to bring them"
                )
            }
            // The first node: its registrations become the fleet's, and it a replica of them.
            let rows: (tools: [SharedTool], pins: [SharedPins])
            let moved: Int64
            do {
                rows = try registry.allSharedRows()
                for id in Set(rows.tools.map(\.id)).union(rows.pins.map(\.id)).sorted() {
                    try await transaction.put(id: id, tools: rows.tools.filter { $0.id == id }, pins: rows.pins.filter { $0.id == id })
                }
                moved = try await shared.commit(transaction)
            } catch {
                shared.abandon(transaction)
                throw error
            }
            try registry.markReplica(of: changes.database)
            revision.withLock { $0 = moved }
            following.withLock { $0.revision = moved }
            logger.info("brought this node's \(rows.tools.count) registered versions to the fleet's registry (\(shared.database.url))")
        } catch let error as NotAReplica {
            await shared.close()
            throw error
        } catch {
            guard known != nil else {
                await shared.close()
                throw FleetError("the fleet's registry (\(shared.database.url)): \(explainFleetError(error)); this node never took a copy of it, so it does not start")
            }
            logger.warning("the fleet's registry (\(shared.database.url)): \(explainFleetError(error)); serving the registrations last taken from it until it answers")
        }
    }

    /// Follows the fleet's registry until cancelled (`SharedRegistry.follow`),
    /// taking each change into the replica under the lock.
    func follow() async {
        guard let shared else { return }
        await shared.follow(
            every: .seconds(5), logger: logger,
            connected: { up in self.following.withLock { $0.connected = up } },
            pull: { read in
                await self.take()
                defer { self.handOff() }
                try self.apply(try await read(self.revision.withLock { $0 }))
            })
    }
}

/// A local registry with registrations of its own, which the fleet's registry does not have.
struct NotAReplica: Error, CustomStringConvertible {
    var description: String
}
