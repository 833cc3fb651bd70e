import BurrowSystem
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Lets another thread end a run: the supervisor polls its eventfd, kills the
/// whole sandbox when it fires, and records why (`RunRecord.stopped`).
package final class RunStop: Sendable {
    let descriptor: FileDescriptor
    private let why = Mutex<String?>(nil)

    package init() throws(RunError) { descriptor = try Self.eventfd() }

    /// An eventfd for another thread to wake the supervisor's poll with.
    static func eventfd() throws(RunError) -> FileDescriptor {
        do {
            return try Kernel.eventDescriptor()
        } catch {
            throw .preparation("cannot create an eventfd: \(error)")
        }
    }

    deinit { try? descriptor.close() }

    /// Ends the run (once; later calls keep the first reason).
    package func stop(_ reason: String) {
        let first = why.withLock { current in
            guard current == nil else { return false }
            current = reason
            return true
        }
        guard first else { return }
        var one: UInt64 = 1
        _ = write(descriptor.rawValue, &one, 8)
    }

    /// Why the run was stopped, if it was.
    package var reason: String? { why.withLock { $0 } }
}

/// Signals to pass on to a run's tool from another thread (burrowd, for a
/// client that received them): the supervisor polls the eventfd and sends
/// each queued signal to the sandbox's init, which passes it on to the tool,
/// as it does for `burrow run`'s own (`Runner.forwardedSignals`).
package final class SignalRelay: Sendable {
    let descriptor: FileDescriptor
    private let queue = Mutex<[Int32]>([])

    package init() throws(RunError) { descriptor = try RunStop.eventfd() }

    deinit { try? descriptor.close() }

    /// Queues `signal` for the tool; one of `Runner.forwardedSignals` only (others are ignored).
    package func send(_ signal: Int32) {
        guard Runner.forwardedSignals.contains(signal) else { return }
        queue.withLock { if $0.count < 64 { $0.append(signal) } }
        var one: UInt64 = 1
        _ = write(descriptor.rawValue, &one, 8)
    }

    /// The queued signals, oldest first (the eventfd is reset).
    func take() -> [Int32] {
        var count: UInt64 = 0
        _ = read(descriptor.rawValue, &count, 8)
        return queue.withLock { q in
            defer { q.removeAll() }
            return q
        }
    }
}
