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

    package init() throws(RunError) {
        do {
            descriptor = try Kernel.eventDescriptor()
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
