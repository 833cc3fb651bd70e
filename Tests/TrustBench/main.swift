// burrow-trust-bench: what a signed run costs at the front door, in one
// process (as burrowd plans every invocation): the trust step cold (the
// manifest read, its signature verified, the verified tree built or found)
// and warm (from the memo), with the stamps of every listed file checked
// (each burrowd recheck) or not (within the recheck interval), and whole
// plans with and without the manifest. Driven by Scripts/bench-trust.sh.
import BurrowAudit
import BurrowHost
import BurrowInvocation
import BurrowPolicy
import BurrowProfile
import BurrowSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("burrow-trust-bench: \(message)\n".utf8))
    exit(1)
}

nonisolated(unsafe) var arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
    defer { arguments.removeSubrange(i...(i + 1)) }
    return arguments[i + 1]
}
guard let policyPath = option("--policy"), let profile = option("--profile"), let manifestPath = option("--manifest") else {
    fail("usage: --policy FILE --profile FILE --manifest FILE [--iterations N] -- COMMAND...")
}
let iterations = Int(option("--iterations") ?? "200") ?? 200
guard let dash = arguments.firstIndex(of: "--") else { fail("give the command after --") }
let command = Array(arguments[(dash + 1)...])

let policy: HostPolicy
do {
    policy = try HostConfiguration.loadPolicy(policyPath)
} catch {
    fail("\(error)")
}
let planner = Planner(policy: policy, host: HostFacts.probe(children: false))
guard let loaded = planner.load(.reference(profile)).loaded else { fail("\(profile) does not load") }
let manifest = ManifestSource.file(manifestPath)

/// Median and 95th percentile of `body`'s time, in microseconds.
func measure(_ count: Int, _ body: () throws -> Void) rethrows -> (median: Double, p95: Double) {
    var times: [UInt64] = []
    for _ in 0..<count {
        let start = now()
        try body()
        times.append(now() - start)
    }
    times.sort()
    return (Double(times[times.count / 2]) / 1000, Double(times[min(times.count - 1, times.count * 95 / 100)]) / 1000)
}

func show(_ name: String, _ t: (median: Double, p95: Double)) -> String {
    String(format: "%@: median %.1f µs, p95 %.1f µs", name, t.median, t.p95)
}

var results: [String: Double] = [:]
do {
    let cold = try measure(1) { _ = try planner.decideTrust(loaded, manifest: manifest, argv: command, readingAs: nil, now: AuditClock.now()) }
    print(show("trust step, cold (read, verify, tree built or found, stamps checked)", cold))
    let (trust, _) = try planner.decideTrust(loaded, manifest: manifest, argv: command, readingAs: nil, now: AuditClock.now())
    print("trust: \(trust.level.rawValue) (\(trust.reason)); tree \(trust.manifest?.verifiedTree ?? "none")")
    // Within the recheck interval: the memo's stamps of the manifest, its signature and the store, one lstat of the tree.
    let warm = try measure(iterations) { _ = try planner.decideTrust(loaded, manifest: manifest, argv: command, readingAs: nil, now: AuditClock.now()) }
    print(show("trust step, warm (memo)", warm))
    results["warm"] = warm.median
    // Every stamp checked each time: what a run pays when the recheck interval has passed.
    var clock = AuditClock.now()
    let checked = try measure(max(5, iterations / 20)) {
        clock += 10_000_000
        _ = try planner.decideTrust(loaded, manifest: manifest, argv: command, readingAs: nil, now: clock)
    }
    print(show("trust step, warm, every listed file's stamp checked", checked))
    results["stamps"] = checked.median
    let signed = try measure(max(5, iterations / 10)) {
        _ = try planner.plan(loaded, argv: command, environment: [:], sandboxID: nil, manifest: manifest)
    }
    let unsigned = try measure(max(5, iterations / 10)) { _ = try planner.plan(loaded, argv: command, environment: [:], sandboxID: nil) }
    print(show("whole plan, signed (compiled against the verified copies)", signed))
    print(show("whole plan, unsigned (compile memo)", unsigned))
    results["planSigned"] = signed.median
    results["planUnsigned"] = unsigned.median
} catch {
    fail("\(error)")
}
let json = try JSONSerialization.data(withJSONObject: results, options: [.sortedKeys])
print("json: " + String(decoding: json, as: UTF8.self))
