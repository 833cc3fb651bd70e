import Synchronization

/// One registry change at a time, from the checks that judge it against
/// the stored registrations (dependencies and dependents) to its audit
/// event (or its undoing): a removal and a registration that depends on
/// what it removes, sent at once, cannot both pass their checks against
/// the registry as it was before the other. Waiters are served in order;
/// nothing else waits on it (reads, invocations and health checks never do).
final class RegistryWrites: Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func lock() async {
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
    func unlock() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard !s.waiters.isEmpty else {
                s.held = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
