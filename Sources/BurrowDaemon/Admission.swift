import BurrowSystem
import Synchronization

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
    }

    private struct Bucket {
        var tokens: Double
        var refilledAt: UInt64
        var live = 0
    }

    private struct State {
        var buckets: [String: Bucket] = [:]
        var registrations: [CallerIdentity.Key: [UInt64]] = [:]
        var planning: [CallerIdentity.Key: Int] = [:]
        var planningTotal = 0
    }

    /// Validations in progress at once, all callers together.
    static let planningTotal = 8

    private let state = Mutex(State())
    private let clock: @Sendable () -> UInt64

    /// - Parameter clock: monotonic nanoseconds (injected by tests).
    init(clock: @escaping @Sendable () -> UInt64 = { Kernel.monotonicNanoseconds() }) {
        self.clock = clock
    }

    /// Takes a token and a sandbox slot of `tool`; `release` gives the slot
    /// back. `takesToken` false: a slot only (burrowd's own health checks, which
    /// share the tool's sandboxes but not its callers' requests per minute).
    func admit(_ tool: String, _ limits: Limits, takesToken: Bool = true) throws(Refusal) {
        // The clock is read under the lock: times only move forward per bucket.
        let refusal: Refusal? = state.withLock { s in
            let now = clock()
            let rate = Double(limits.requestsPerMinute) / 60e9  // tokens per nanosecond
            var b = s.buckets[tool] ?? Bucket(tokens: Double(limits.requestsPerMinute), refilledAt: now)
            b.tokens = min(Double(limits.requestsPerMinute), b.tokens + Double(now - min(now, b.refilledAt)) * rate)
            b.refilledAt = max(now, b.refilledAt)
            defer { s.buckets[tool] = b }
            if b.live >= limits.maxConcurrent { return .concurrency(limit: limits.maxConcurrent) }
            if !takesToken {
                b.live += 1
                return nil
            }
            if b.tokens < 1 {
                let seconds = ((1 - b.tokens) / rate / 1e9).rounded(.up)
                return .rate(limit: limits.requestsPerMinute, retryAfter: max(1, Int(seconds)))
            }
            b.tokens -= 1
            b.live += 1
            return nil
        }
        if let refusal { throw refusal }
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
