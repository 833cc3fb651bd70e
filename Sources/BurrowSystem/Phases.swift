import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Timestamps of the steps of one `burrow` process, or of one burrowd
/// invocation, for the phase budgets of `Scripts/bench-spawn.sh` and
/// `Scripts/bench-api.sh`: recorded only when `BURROW_PHASES=1`, and then
/// carried in the run record (`phases`) or burrowd's answer (the
/// `Burrow-Phases` header). `CLOCK_MONOTONIC` is one clock for the whole
/// machine, so a benchmark can put its own readings (before the process
/// starts, after it exits, after the answer arrives) on the same line.
package enum Phases {
    package struct Mark: Sendable, Codable, Equatable {
        package var name: String
        package var monotonicNanoseconds: UInt64
    }

    /// nil until `start()` finds BURROW_PHASES=1: then one process's marks, at most `limit`.
    private static let marks = Mutex<[Mark]?>(nil)
    private static let limit = 64

    /// Called once by `burrow`'s entry point, for the process's own marks.
    package static func start() {
        guard requested else { return }
        let now = Kernel.monotonicNanoseconds()
        marks.withLock { $0 = [Mark(name: "main", monotonicNanoseconds: now)] }
    }

    /// True when `BURROW_PHASES=1`: burrowd then gives each invocation a `Recorder`.
    package static let requested = getenv("BURROW_PHASES").map { String(cString: $0) == "1" } ?? false

    /// One invocation's marks, in a process that runs many at once
    /// (burrowd): `mark` writes to the recorder the calling thread is
    /// `recording` into, and to the process's list otherwise.
    package final class Recorder: Sendable {
        private let marks = Mutex<[Mark]>([])
        package init() {}
        package func mark(_ name: String) {
            let now = Kernel.monotonicNanoseconds()
            marks.withLock { if $0.count < Phases.limit { $0.append(Mark(name: name, monotonicNanoseconds: now)) } }
        }
        package var recorded: [Mark] { marks.withLock { $0 } }
    }

    /// The thread's recorder while `recording` runs (a pthread key: the
    /// body is synchronous, and burrowd runs each invocation's steps on
    /// one thread at a time).
    private static let current: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "no pthread key left for the phase recorder")
        return key
    }()

    /// Runs `body` with its marks going to `recorder` (nil: as before).
    package static func recording<T, E: Error>(_ recorder: Recorder?, _ body: () throws(E) -> T) throws(E) -> T {
        guard let recorder else { return try body() }
        let previous = pthread_getspecific(current)
        pthread_setspecific(current, Unmanaged.passUnretained(recorder).toOpaque())
        defer { pthread_setspecific(current, previous) }
        return try body()
    }

    /// Notes that `name` happened now (a no-op unless started or recording).
    package static func mark(_ name: StaticString) {
        // The spawn path marks a dozen steps: without BURROW_PHASES=1, no lock.
        guard requested else { return }
        if let raw = pthread_getspecific(current) {
            Unmanaged<Recorder>.fromOpaque(raw).takeUnretainedValue().mark(name.description)
            return
        }
        marks.withLock { marks in
            guard var list = marks, list.count < limit else { return }
            marks = nil  // no second copy while appending
            list.append(Mark(name: name.description, monotonicNanoseconds: Kernel.monotonicNanoseconds()))
            marks = list
        }
    }

    /// The marks so far, in order; nil unless started.
    package static func recorded() -> [Mark]? { marks.withLock { $0 } }

    /// Marks as one header value: `name=nanoseconds` pairs, comma-separated.
    package static func header(_ marks: [Mark]) -> String {
        marks.map { "\($0.name)=\($0.monotonicNanoseconds)" }.joined(separator: ",")
    }
}
