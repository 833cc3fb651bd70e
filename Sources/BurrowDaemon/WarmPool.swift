import BurrowAPI
import BurrowInvocation
import BurrowProfile
import BurrowRuntime
import BurrowSystem
import Synchronization

/// Sandboxes built ahead of their request: at most one per tool, made after
/// each plain invocation of that tool, on a thread of its own, so the next
/// request skips the clone, the mounts and every other step before execve.
///
/// An entry is only a guess at the next plan. The request's plan is compiled
/// as always and the entry is used only if it fits it (`WarmSandbox.fits`);
/// otherwise it is discarded and the request gets a fresh sandbox. Entries
/// idle longer than `idle` are discarded, as are a tool's when it is
/// updated or removed, and all at shutdown.
final class WarmPool: Sendable {
    typealias Entry = WarmEntry

    private struct State {
        var ready: [String: Entry] = [:]
        /// Tools with a build under way, and the generation it belongs to.
        var building: [String: UInt64] = [:]
        /// Bumped per tool by `drop`: a build that finishes after it is thrown away.
        var generation: [String: UInt64] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    /// How long an entry may wait; zero: nothing is built ahead.
    let idle: UInt64
    private let metrics: DaemonMetrics

    init(idle: Seconds, metrics: DaemonMetrics) {
        self.idle = idle.milliseconds * 1_000_000
        self.metrics = metrics
    }

    var enabled: Bool { idle > 0 }

    /// The tool's entry, removed from the pool; nil when there is none ready.
    func take(_ tool: String) -> Entry? {
        guard let entry = state.withLock({ $0.ready.removeValue(forKey: tool) }) else { return nil }
        guard entry.sandbox.isReady else {
            retire(entry)
            metrics.warm("lost")
            return nil
        }
        return entry
    }

    /// An entry taken for a request that was then refused before it ran: back it goes.
    func giveBack(_ tool: String, _ entry: Entry) {
        let kept = state.withLock { s in
            guard !s.closed, s.ready[tool] == nil else { return false }
            s.ready[tool] = entry
            return true
        }
        if !kept { retire(entry) }
    }

    /// Discards an entry off the caller's path (a kill, a reap and a cgroup
    /// removal, which a request should not wait for); in place when no
    /// thread can be had.
    func retire(_ entry: Entry) {
        do {
            try Kernel.detachedThread { entry.sandbox.discard() }
        } catch {
            entry.sandbox.discard()
        }
    }

    /// Starts building the tool's next sandbox unless one is ready or under
    /// way. `make` runs on a thread of its own and returns nil when the plan
    /// cannot be built ahead (the next request then starts cold, as before).
    func refill(_ tool: String, make: @escaping @Sendable () -> Entry?) {
        guard enabled else { return }
        let generation: UInt64? = state.withLock { s in
            guard !s.closed, s.ready[tool] == nil, s.building[tool] == nil else { return nil }
            let g = s.generation[tool, default: 0]
            s.building[tool] = g
            return g
        }
        guard let generation else { return }
        let done: @Sendable () -> Void = { [self] in
            let entry = make()
            let stale = state.withLock { s in
                s.building[tool] = nil
                guard let entry, !s.closed, s.generation[tool, default: 0] == generation, s.ready[tool] == nil else { return true }
                s.ready[tool] = entry
                return false
            }
            if stale { entry?.sandbox.discard() }
        }
        do {
            try Kernel.detachedThread(done)
        } catch {
            state.withLock { $0.building[tool] = nil }
        }
    }

    /// The pool's key of a registered version: "id@version" ('@' is in neither).
    static func key(_ record: ToolRecord) -> String { record.registration.id + "@" + record.registration.metadata.version }

    /// Discards the entries of every version of tool `id` (updated or
    /// removed), and any build under way for them.
    func drop(_ id: String) {
        let entries = state.withLock { s in
            let keys = Set(s.ready.keys).union(s.building.keys).filter { $0.hasPrefix(id + "@") }
            for key in keys { s.generation[key, default: 0] += 1 }
            return keys.compactMap { s.ready.removeValue(forKey: $0) }
        }
        for entry in entries { retire(entry) }
    }

    /// Discards entries idle longer than `idle` (called now and then).
    func expire() {
        let now = Kernel.monotonicNanoseconds()
        let old = state.withLock { s in
            let keys = s.ready.filter { now - $0.value.sandbox.readyAt > idle }.map(\.key)
            return keys.compactMap { s.ready.removeValue(forKey: $0) }
        }
        for entry in old { entry.sandbox.discard() }
    }

    /// Shutdown: every entry is discarded and no more are built.
    func close() {
        let all = state.withLock { s in
            s.closed = true
            defer { s.ready = [:] }
            return Array(s.ready.values)
        }
        for entry in all { entry.sandbox.discard() }
    }
}
