import BurrowSystem
import Synchronization

/// What one compiler run may hand the next (burrowd compiles a plan per
/// invocation):
/// - the runtime found for a set of execute grants and a command, with every
///   path it was found from stamped. An entry is reused only while each of
///   those paths still has its stamp, so a package upgrade, a replaced
///   library or a new file earlier on the search path is seen by the very
///   next plan;
/// - the seccomp plan, keyed by everything `SeccompPolicy.rules` reads.
/// Everything else in a plan is computed again each time.
package final class CompileMemo: Sendable {
    struct Key: Hashable {
        var grants: [String]
        var searchPath: [String]
        var command: String
        var workingDirectory: String
    }

    struct Entry: Sendable {
        var runtime: RuntimeResolver.Result
        var command: String
        var files: RecordingFileSystem
    }

    /// Entries kept at most (one per registered command, in practice).
    static let capacity = 256
    private let entries = Mutex<[Key: Entry]>([:])
    private let counts = Mutex<(hits: Int, misses: Int)>((0, 0))

    struct FilterKey: Hashable {
        var isolated: Bool
        var machine: String
        var inputs: SeccompPolicy.Inputs
    }

    private let filters = Mutex<[FilterKey: SeccompPlan]>([:])

    func seccomp(_ key: FilterKey, compute: () throws(SeccompCompiler.Failure) -> SeccompPlan) throws(SeccompCompiler.Failure) -> SeccompPlan {
        if let plan = filters.withLock({ $0[key] }) { return plan }
        let plan = try compute()
        filters.withLock { $0[key] = plan }
        return plan
    }

    /// An answer depending on a file changed less than this long ago is not
    /// kept (as git treats "racily clean" entries): within a tick of the
    /// file system's coarse clock, a second change may leave no trace in the stamps.
    let racyWindowNanoseconds: Int64

    package init(racyWindow: Duration = .seconds(2)) {
        racyWindowNanoseconds = racyWindow.components.seconds * 1_000_000_000 + racyWindow.components.attoseconds / 1_000_000_000
    }

    /// Reuses, or computes and keeps, the runtime for `key`.
    func runtime(
        _ key: Key, fs: any FileSystemView, compute: (any FileSystemView) throws(PlanError) -> (RuntimeResolver.Result, String)
    ) throws(PlanError) -> (RuntimeResolver.Result, String) {
        if let entry = entries.withLock({ $0[key] }), entry.files.unchanged() {
            counts.withLock { $0.hits += 1 }
            return (entry.runtime, entry.command)
        }
        counts.withLock { $0.misses += 1 }
        let files = RecordingFileSystem(fs)
        let (runtime, command) = try compute(files)
        guard files.lastChange < Kernel.realtimeNanoseconds() - racyWindowNanoseconds else { return (runtime, command) }
        entries.withLock {
            if $0.count >= Self.capacity { $0.removeAll() }
            $0[key] = Entry(runtime: runtime, command: command, files: files)
        }
        return (runtime, command)
    }

    /// Runtimes reused and computed so far.
    package var statistics: (hits: Int, misses: Int) { counts.withLock { $0 } }
}
