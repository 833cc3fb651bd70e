import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Timestamps of the steps of one `burrow` process, for the phase budget of
/// `Scripts/bench-spawn.sh`: recorded only when `BURROW_PHASES=1`, and then
/// carried in the run record (`phases`). `CLOCK_MONOTONIC` is one clock for
/// the whole machine, so a benchmark can put its own readings (before the
/// process starts, after it exits) on the same line.
package enum Phases {
    package struct Mark: Sendable, Codable, Equatable {
        package var name: String
        package var monotonicNanoseconds: UInt64
    }

    /// nil until `start()` finds BURROW_PHASES=1: then one process's marks, at most `limit`.
    private static let marks = Mutex<[Mark]?>(nil)
    private static let limit = 64

    /// Called once by `burrow`'s entry point: burrowd, which runs many
    /// invocations in one process, never records any.
    package static func start() {
        guard getenv("BURROW_PHASES").map({ String(cString: $0) == "1" }) ?? false else { return }
        let now = Kernel.monotonicNanoseconds()
        marks.withLock { $0 = [Mark(name: "main", monotonicNanoseconds: now)] }
    }

    /// Notes that `name` happened now (a no-op unless started).
    package static func mark(_ name: StaticString) {
        marks.withLock { marks in
            guard var list = marks, list.count < limit else { return }
            marks = nil  // no second copy while appending
            list.append(Mark(name: name.description, monotonicNanoseconds: Kernel.monotonicNanoseconds()))
            marks = list
        }
    }

    /// The marks so far, in order; nil unless started.
    package static func recorded() -> [Mark]? { marks.withLock { $0 } }
}
