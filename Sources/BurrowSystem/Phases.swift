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

    private static let enabled: Bool = getenv("BURROW_PHASES").map { String(cString: $0) == "1" } ?? false
    private static let marks = Mutex<[Mark]>([])

    /// Notes that `name` happened now (a no-op unless BURROW_PHASES=1).
    package static func mark(_ name: StaticString) {
        guard enabled else { return }
        let now = Kernel.monotonicNanoseconds()
        marks.withLock { $0.append(Mark(name: name.description, monotonicNanoseconds: now)) }
    }

    /// The marks so far, in order; nil unless BURROW_PHASES=1.
    package static func recorded() -> [Mark]? {
        guard enabled else { return nil }
        return marks.withLock { $0 }
    }
}
