import BurrowSystem
import Synchronization

/// Per-caller token buckets (`[rate_limits.clients]`, `[rate_limits.methods]`):
/// a caller past its rate is refused at once (429 with Retry-After), on top
/// of the per-tool limits. The buckets are keyed by the caller (its uid, or
/// its remote principal or address) and, for a method's, the MCP method. At
/// most `maxTracked` are kept: beyond, the full ones (idle callers, whose
/// bucket would start full anyway) are dropped first, and when none is, a
/// caller not yet tracked is refused until one is (never an untracked pass).
final class ClientLimits: Sendable {
    static let maxTracked = 100_000

    private struct Bucket {
        var tokens: Double
        var refilledAt: UInt64
    }

    private let state = Mutex<[String: Bucket]>([:])
    private let clock: @Sendable () -> UInt64

    init(clock: @escaping @Sendable () -> UInt64 = { Kernel.monotonicNanoseconds() }) {
        self.clock = clock
    }

    /// Takes a token from `key`'s bucket; nil when there was one, else the
    /// seconds until there will be.
    func take(_ key: String, perMinute: Int, burst: Int) -> Int? {
        state.withLock { buckets in
            let now = clock()
            let rate = Double(perMinute) / 60e9  // tokens per nanosecond
            let capacity = Double(burst)
            var b = buckets[key] ?? Bucket(tokens: capacity, refilledAt: now)
            b.tokens = min(capacity, b.tokens + Double(now - min(now, b.refilledAt)) * rate)
            b.refilledAt = max(now, b.refilledAt)
            if buckets[key] == nil && buckets.count >= Self.maxTracked {
                buckets = buckets.filter { $0.value.tokens + Double(now - min(now, $0.value.refilledAt)) * rate < capacity }
                if buckets.count >= Self.maxTracked { return max(1, Int((1 / rate / 1e9).rounded(.up))) }
            }
            guard b.tokens >= 1 else {
                buckets[key] = b
                return max(1, Int(((1 - b.tokens) / rate / 1e9).rounded(.up)))
            }
            b.tokens -= 1
            buckets[key] = b
            return nil
        }
    }
}
