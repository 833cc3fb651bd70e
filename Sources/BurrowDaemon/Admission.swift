import BurrowFleet
import BurrowSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Limits on callers: per tool a token bucket (requests per minute, bursts up
/// to a minute's worth) and a cap on live sandboxes; per principal a window
/// of registration attempts. Beyond a limit the caller is refused at once
/// (429 with Retry-After): nothing queues inside burrowd, so a flood can
/// neither grow its memory nor delay the callers that stay within limits.
final class Admission: Sendable {
    struct Limits: Sendable, Equatable {
        var requestsPerMinute: Int
        var maxConcurrent: Int
    }

    enum Refusal: Error, Equatable {
        /// The bucket is empty: a token is due in `retryAfter` seconds.
        case rate(limit: Int, retryAfter: Int)
        /// `live` sandboxes run already (`limit` allowed).
        case concurrency(limit: Int)
        case registrations(limit: Int, retryAfter: Int)
        /// The caller has `limit` validations in progress (or burrowd has `limit` in all).
        case planning(limit: Int, everyone: Bool)
        /// Limits hold across the fleet, and its counters were never read yet.
        case fleetUnknown
    }

    private struct Bucket {
        var tokens: Double
        var refilledAt: UInt64
        var live = 0
    }

    /// The fleet's share of a tool's limits (`[rate_limits] scope = "fleet"`).
    private struct Fleet {
        /// The other nodes' counts as last read; nil: never read yet.
        var view: FleetCounters.View?
        var syncedAt: UInt64 = 0
        /// This node's admissions per tool and wall-clock second, the last minute's.
        var counts: [String: [Int64: Int]] = [:]
        /// The seconds whose counts changed since they were last pushed.
        var dirty: [String: Set<Int64>] = [:]
        /// Tools admitted fleet-wide: their live counts are pushed.
        var tools: Set<String> = []
    }

    private struct State {
        var fleet = Fleet()
        var buckets: [String: Bucket] = [:]
        var registrations: [CallerIdentity.Key: [UInt64]] = [:]
        var planning: [CallerIdentity.Key: Int] = [:]
        var planningTotal = 0
    }

    /// Validations in progress at once, all callers together.
    static let planningTotal = 8

    private let state: Mutex<State>
    private let clock: @Sendable () -> UInt64
    /// Wall-clock seconds: the second an admission is counted in, as the fleet's nodes share them.
    private let wallClock: @Sendable () -> Int64
    /// Tools' limits hold across the fleet (`[rate_limits] scope = "fleet"`).
    private let fleetWide: Bool
    /// Past this, the fleet's counts are stale (its database does not answer): each node keeps to its share.
    private let staleAfter: UInt64

    /// - Parameter clock: monotonic nanoseconds (injected by tests).
    /// - Parameter fleetSync: with it, tools' limits hold across the fleet, its counts read every this many ns.
    init(
        clock: @escaping @Sendable () -> UInt64 = { Kernel.monotonicNanoseconds() }, wallClock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) },
        fleetSync: UInt64? = nil
    ) {
        self.clock = clock
        self.wallClock = wallClock
        state = Mutex(State())
        fleetWide = fleetSync != nil
        staleAfter = max(5_000_000_000, 5 * (fleetSync ?? 0))
    }

    /// Takes a token and a sandbox slot of `tool`; `release` gives the slot
    /// back. `takesToken` false: a slot only (burrowd's own health checks, which
    /// share the tool's sandboxes but not its callers' requests per minute).
    /// `shared`: a tool's limits, held across the fleet when the policy says
    /// so (callers' sessions are this node's alone).
    func admit(_ tool: String, _ limits: Limits, takesToken: Bool = true, shared: Bool = false) throws(Refusal) {
        // The clock is read under the lock: times only move forward per bucket.
        let refusal: Refusal? = state.withLock { s in
            let now = clock()
            let rate = Double(limits.requestsPerMinute) / 60e9  // tokens per nanosecond
            var b = s.buckets[tool] ?? Bucket(tokens: Double(limits.requestsPerMinute), refilledAt: now)
            b.tokens = min(Double(limits.requestsPerMinute), b.tokens + Double(now - min(now, b.refilledAt)) * rate)
            b.refilledAt = max(now, b.refilledAt)
            defer { s.buckets[tool] = b }
            if b.live >= limits.maxConcurrent { return .concurrency(limit: limits.maxConcurrent) }
            let fleetWide = shared && self.fleetWide
            // The wall clock only for limits the fleet shares: a node's own admissions read the monotonic clock alone.
            let second = fleetWide ? wallClock() : 0
            if fleetWide {
                if let refusal = fleetRefusal(&s.fleet, tool, limits, takesToken: takesToken, live: b.live, now: now, second: second) { return refusal }
                s.fleet.tools.insert(tool)
            }
            if takesToken {
                if b.tokens < 1 {
                    let seconds = ((1 - b.tokens) / rate / 1e9).rounded(.up)
                    return .rate(limit: limits.requestsPerMinute, retryAfter: max(1, Int(seconds)))
                }
                b.tokens -= 1
                if fleetWide {
                    s.fleet.counts[tool, default: [:]][second, default: 0] += 1
                    s.fleet.dirty[tool, default: []].insert(second)
                }
            }
            b.live += 1
            return nil
        }
        if let refusal { throw refusal }
    }

    /// The fleet's check of `tool`: this node's live sandboxes and last
    /// minute's admissions, with the other nodes' as last read. Stale counts
    /// (the database silent), each node keeps to its share of the limits
    /// (divided by the nodes last seen); never read, nothing is admitted.
    private func fleetRefusal(_ f: inout Fleet, _ tool: String, _ limits: Limits, takesToken: Bool, live: Int, now: UInt64, second: Int64) -> Refusal? {
        // Never read: callers wait (or go to another node); burrowd's own health checks are not held up.
        guard let view = f.view else { return takesToken ? .fleetUnknown : nil }
        let stale = now - min(now, f.syncedAt) > staleAfter
        let share = stale ? max(1, view.nodes) : 1
        let others = stale ? (admitted: 0, live: 0) : (admitted: view.admitted[tool] ?? 0, live: view.live[tool] ?? 0)
        if live + others.live >= (limits.maxConcurrent + share - 1) / share { return .concurrency(limit: limits.maxConcurrent) }
        guard takesToken else { return nil }
        // This node's last minute, per second (at most 60 entries), the older ones forgotten in place.
        var mine = 0
        var oldest: Int64?
        if let seconds = f.counts[tool] {
            for (s, n) in seconds {
                if s <= second - 60 {
                    f.counts[tool]?[s] = nil
                } else {
                    mine += n
                    oldest = min(oldest ?? s, s)
                }
            }
        }
        if mine + others.admitted >= (limits.requestsPerMinute + share - 1) / share {
            // When this node's oldest second leaves the window, if it holds any; the others' are known as a sum only.
            let wait = oldest.map { 60 - (second - $0) + 1 } ?? 1
            return .rate(limit: limits.requestsPerMinute, retryAfter: Int(min(60, max(1, wait))))
        }
        return nil
    }

    /// What the fleet's counters push: each tool's counts of the seconds
    /// that changed (absolute: pushing one twice counts it once), and the
    /// live sandboxes of every tool admitted fleet-wide.
    func fleetPush() -> FleetCounters.Push {
        state.withLock { s in
            let second = wallClock()
            var admitted: [String: [Int64: Int]] = [:]
            for (tool, seconds) in s.fleet.dirty {
                // A second out of the window no longer counts anywhere: it is not pushed.
                let current = seconds.filter { $0 > second - 60 }
                s.fleet.dirty[tool] = current.isEmpty ? nil : current
                for sec in current { admitted[tool, default: [:]][sec] = s.fleet.counts[tool]?[sec] ?? 0 }
            }
            var live: [String: Int] = [:]
            for tool in s.fleet.tools { live[tool] = s.buckets[tool]?.live ?? 0 }
            return FleetCounters.Push(admitted: admitted, live: live)
        }
    }

    /// A push the database took: its seconds are clean unless they changed since.
    func fleetPushed(_ push: FleetCounters.Push) {
        state.withLock { s in
            let second = wallClock()
            for (tool, seconds) in push.admitted {
                for (sec, n) in seconds where (s.fleet.counts[tool]?[sec] ?? 0) == n || sec <= second - 60 { _ = s.fleet.dirty[tool]?.remove(sec) }
                if s.fleet.dirty[tool]?.isEmpty == true { s.fleet.dirty[tool] = nil }
            }
        }
    }

    /// The other nodes' counts as just read (nil: the sync failed).
    func fleetView(_ view: FleetCounters.View?) {
        state.withLock { s in
            guard let view else { return }
            s.fleet.view = view
            s.fleet.syncedAt = clock()
        }
    }

    func release(_ tool: String) {
        state.withLock { s in s.buckets[tool]?.live -= 1 }
    }

    /// One admitted sandbox slot, given back exactly once: by `release()` or
    /// when the slot is dropped.
    final class Slot: Sendable {
        private let admission: Admission
        private let tool: String
        private let held = Atomic<Bool>(true)

        init(_ admission: Admission, _ tool: String) {
            self.admission = admission
            self.tool = tool
        }

        deinit { release() }

        func release() {
            if held.exchange(false, ordering: .relaxed) { admission.release(tool) }
        }
    }

    /// A slot for loading and planning a caller's profile (validation,
    /// registration): at most `perUser` per caller and `planningTotal` in all
    /// at once. Released when the returned ticket is.
    func planning(caller: CallerIdentity.Key, perUser: Int) throws(Refusal) -> PlanningTicket {
        let refusal: Refusal? = state.withLock { s in
            let mine = s.planning[caller, default: 0]
            if mine >= perUser { return .planning(limit: perUser, everyone: false) }
            if s.planningTotal >= Self.planningTotal { return .planning(limit: Self.planningTotal, everyone: true) }
            s.planning[caller] = mine + 1
            s.planningTotal += 1
            return nil
        }
        if let refusal { throw refusal }
        return PlanningTicket(self, caller)
    }

    fileprivate func endPlanning(_ caller: CallerIdentity.Key) {
        state.withLock { s in
            let left = s.planning[caller, default: 1] - 1
            s.planning[caller] = left > 0 ? left : nil
            s.planningTotal -= 1
        }
    }

    final class PlanningTicket: Sendable {
        private let admission: Admission
        private let caller: CallerIdentity.Key
        private let held = Atomic<Bool>(true)

        fileprivate init(_ admission: Admission, _ caller: CallerIdentity.Key) {
            self.admission = admission
            self.caller = caller
        }

        deinit { release() }

        func release() {
            if held.exchange(false, ordering: .relaxed) { admission.endPlanning(caller) }
        }
    }

    /// Counts one registration attempt by `caller` (refused ones too), at most `perHour` in any hour.
    func registrationAttempt(caller: CallerIdentity.Key, perHour: Int) throws(Refusal) {
        let hour: UInt64 = 3_600_000_000_000
        let refusal: Refusal? = state.withLock { s in
            let now = clock()
            var times = (s.registrations[caller] ?? []).filter { now - min(now, $0) < hour }
            defer { s.registrations[caller] = times }
            if times.count >= perHour {
                let retry = (hour - (now - min(now, times[0]))) / 1_000_000_000 + 1
                return .registrations(limit: perHour, retryAfter: Int(retry))
            }
            times.append(now)
            return nil
        }
        if let refusal { throw refusal }
    }
}
