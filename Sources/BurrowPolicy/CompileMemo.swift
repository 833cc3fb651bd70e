package import BurrowSystem
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

    /// Where runtimes persist between processes (`burrow` runs), under the
    /// same rule: an entry is used only while every stamped path still has
    /// its stamp.
    let runCache: RunCache?

    package init(racyWindow: Duration = .seconds(2), runCache: RunCache? = nil) {
        racyWindowNanoseconds = racyWindow.components.seconds * 1_000_000_000 + racyWindow.components.attoseconds / 1_000_000_000
        self.runCache = runCache
    }

    /// Reuses, or computes and keeps, the runtime for `key`.
    func runtime(
        _ key: Key, fs: any FileSystemView, compute: (any FileSystemView) throws(PlanError) -> (RuntimeResolver.Result, String)
    ) throws(PlanError) -> (RuntimeResolver.Result, String) {
        if let entry = entries.withLock({ $0[key] }), entry.files.unchanged() {
            counts.withLock { $0.hits += 1 }
            return (entry.runtime, entry.command)
        }
        // The working directory counts only for a relative path with a slash
        // (a name is looked up on the search path, a full path is itself).
        let named = key.command
        let relevant = [key.grants, key.searchPath, [named], named.contains("/") && !named.hasPrefix("/") ? [key.workingDirectory] : []]
        // Quoted and escaped as Swift literals: no two inputs give one key.
        let inputs = "\(relevant)"
        let diskKey = "runtime 1|\(RunCache.binaryIdentity ?? "")|" + inputs
        // Named by the inputs alone: a new binary replaces its entry.
        let diskName = RunCache.name("runtime", for: inputs)
        let runCache = RunCache.binaryIdentity == nil ? nil : self.runCache
        if let bytes = runCache?.read(diskName, key: diskKey), let entry = Self.decode(bytes, fs: fs), entry.files.unchanged() {
            counts.withLock { $0.hits += 1 }
            keep(entry, for: key)
            return (entry.runtime, entry.command)
        }
        counts.withLock { $0.misses += 1 }
        let files = RecordingFileSystem(fs)
        let (runtime, command) = try compute(files)
        guard files.lastChange < Kernel.realtimeNanoseconds() - racyWindowNanoseconds else { return (runtime, command) }
        let entry = Entry(runtime: runtime, command: command, files: files)
        keep(entry, for: key)
        if let runCache, let bytes = Self.encode(entry) { runCache.write(diskName, key: diskKey, value: bytes) }
        return (runtime, command)
    }

    private func keep(_ entry: Entry, for key: Key) {
        entries.withLock {
            if $0.count >= Self.capacity { $0.removeAll() }
            $0[key] = entry
        }
    }

    /// An entry as lines of tab-separated fields, a tag first: the command
    /// (`c`), each executable in order (`e`), its reason (`r`), directory
    /// (`d`), root link and link (`R`, `l`), library directory (`L`),
    /// unmatched grant (`u`), visited library (`v`), and each stamp (`s`).
    /// nil when a string holds a tab or a newline.
    static func encode(_ entry: Entry) -> [UInt8]? {
        let r = entry.runtime
        var lines = [["c", entry.command]]
        lines += r.executables.map { ["e", $0] }
        lines += r.executableReasons.sorted { $0.key < $1.key }.map { ["r", $0.key, $0.value] }
        lines += r.directories.sorted().map { ["d", $0] }
        lines += r.rootLinks.sorted { $0.key < $1.key }.map { ["R", $0.key, $0.value] }
        lines += r.links.sorted { $0.key < $1.key }.map { ["l", $0.key, $0.value] }
        lines += r.libraryDirectories.sorted().map { ["L", $0] }
        lines += r.unmatched.map { ["u", $0] }
        lines += r.visitedLibraries.sorted().map { ["v", $0] }
        guard !lines.joined().contains(where: { $0.utf8.contains { $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\n") } }),
            let stamps = entry.files.stampLines
        else { return nil }
        let text = lines.map { $0.joined(separator: "\t") } + stamps.map { "s\t" + $0 }
        return Array((text.joined(separator: "\n") + "\n").utf8)
    }

    /// The entry `encode` wrote; nil when any line is not one it writes.
    static func decode(_ bytes: [UInt8], fs: any FileSystemView) -> Entry? {
        var r = RuntimeResolver.Result()
        var command: String?
        var stamps: [Substring] = []
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasSuffix("\n") else { return nil }
        for line in text.dropLast().split(separator: "\n", omittingEmptySubsequences: false) {
            guard let tab = line.firstIndex(of: "\t") else { return nil }
            let rest = line[line.index(after: tab)...]
            let pair = rest.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            switch line[..<tab] {
            case "c": command = String(rest)
            case "e": r.executables.append(String(rest))
            case "d": r.directories.insert(String(rest))
            case "L": r.libraryDirectories.insert(String(rest))
            case "u": r.unmatched.append(String(rest))
            case "v": r.visitedLibraries.insert(String(rest))
            case "r" where pair.count == 2: r.executableReasons[pair[0]] = pair[1]
            case "R" where pair.count == 2: r.rootLinks[pair[0]] = pair[1]
            case "l" where pair.count == 2: r.links[pair[0]] = pair[1]
            case "s": stamps.append(rest)
            default: return nil
            }
        }
        guard let command, let files = RecordingFileSystem(fs, stampLines: stamps) else { return nil }
        return Entry(runtime: r, command: command, files: files)
    }

    /// Runtimes reused and computed so far.
    package var statistics: (hits: Int, misses: Int) { counts.withLock { $0 } }
}
