import BurrowAudit
// burrow-audit-bench: sustained append rate of the audit store, every event
// durable (synchronous=FULL) when its append returns. Driven by Scripts/bench-audit.sh.
import BurrowJSON
import BurrowSQLite
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// A ToolInvoked as `burrow run` writes it (argv, environment names, limits).
func realisticEvent(_ i: Int, writer: Int) -> AuditEvent {
    let context = SecurityContext(
        principal: "root", uid: 0, invocationID: "bench-\(writer)-\(i / 2)", profileDigest: "sha256:" + String(repeating: "ab", count: 32), sandboxLevel: "container",
        host: "bench")
    guard i % 2 == 0 else {
        let outcome = OutcomeDetails(
            exitCode: 0, signal: nil, coreDumped: false, status: 0, spawnMicroseconds: 2_900, cpuMicroseconds: 41_000, peakMemoryBytes: 24 << 20, peakProcesses: 1,
            wallMilliseconds: 180, violations: 0, limits: [], unenforced: [], notes: [], reason: nil, message: nil)
        return AuditEvent(tool: "mcp-server-git", context: context, details: outcome)
    }
    let invoked = InvocationDetails(
        argv: ["python3", "-m", "mcp_server_git", "--repository", "/srv/burrow/repo"], executable: "/usr/bin/python3.11", workingDirectory: "/tmp",
        environment: ["PATH (burrow)", "HOME (burrow)", "LANG (burrow)"], profileFiles: ["/etc/burrow/profiles/mcp-server-git.toml"], sandboxID: 524_300,
        namespaces: ["user", "pid", "mount", "ipc", "uts", "cgroup", "network"], cgroupVersion: 2, seccompInstructions: 180, landlockABI: 7, network: "none",
        exposureScore: 2.1,
        limits: .init(
            maxCpuTimeMilliseconds: 60_000, maxMemoryBytes: 536_870_912, maxFileSizeBytes: 64 << 20, maxOpenFiles: 256, maxExecutionTimeMilliseconds: 300_000,
            maxProcesses: 64, scratchSizeBytes: 64 << 20, cpuQuotaPercent: 100))
    return AuditEvent(tool: "mcp-server-git", context: context, details: invoked)
}

final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [UInt64] = []
    func add(_ more: [UInt64]) { lock.withLock { items += more } }
    var all: [UInt64] { lock.withLock { items } }
}

struct Phase {
    var events: Int
    var seconds: Double
    var latencies: [UInt64]
    var rate: Double { Double(events) / seconds }
    func percentile(_ p: Double) -> Double {
        let sorted = latencies.sorted()
        guard !sorted.isEmpty else { return 0 }
        return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1_000_000
    }
}

/// `writers` threads, each appending one event per call for `seconds`.
func threads(_ store: AuditStore, writers: Int, seconds: Double) -> Phase {
    let latencies = Collected()
    let deadline = now() + UInt64(seconds * 1e9)
    let start = now()
    let group = DispatchGroup()
    for w in 0..<writers {
        group.enter()
        Thread.detachNewThread {
            var mine: [UInt64] = []
            var i = 0
            while now() < deadline {
                let t = now()
                do { try store.append([realisticEvent(i, writer: w)]) } catch { fatalError("append: \(error)") }
                mine.append(now() - t)
                i += 1
            }
            latencies.add(mine)
            group.leave()
        }
    }
    group.wait()
    let all = latencies.all
    return Phase(events: all.count, seconds: Double(now() - start) / 1e9, latencies: all)
}

let args = CommandLine.arguments
func option(_ name: String, _ fallback: String) -> String {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return fallback }
    return args[i + 1]
}
let path = option("--db", "/var/tmp/burrow-audit-bench/audit.db")
let seconds = Double(option("--seconds", "3")) ?? 3
let store = try AuditStore(.init(path: path, redactor: try Redactor()), access: .write)

if args.contains("--child") {
    // One process of the multi-process phase: prints its count.
    let phase = threads(store, writers: 1, seconds: seconds)
    print(phase.events)
    exit(0)
}

print("audit store: \(path), SQLite \(SQLiteLibrary.version), WAL, synchronous=FULL (every append durable before it returns)")
print("phase                                events   seconds   events/s   p50 ms   p99 ms")
func report(_ name: String, _ p: Phase) {
    print(name.padding(toLength: 36, withPad: " ", startingAt: 0) + String(format: " %7d %9.2f %10.0f %8.3f %8.3f", p.events, p.seconds, p.rate, p.percentile(0.5), p.percentile(0.99)))
}
var results: [String: Double] = [:]
for writers in [1, 2, 8, 32] {
    let p = threads(store, writers: writers, seconds: seconds)
    report("1 process, \(writers) writer thread(s)", p)
    results["threads-\(writers)"] = p.rate
}

// Several processes, each its own connection: SQLite's write lock orders them.
let processes = Int(option("--processes", "4")) ?? 4
var pids: [pid_t] = []
var pipes: [Int32] = []
let start = now()
for _ in 0..<processes {
    var fds: [Int32] = [0, 0]
    pipe(&fds)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    let argv = ["/proc/self/exe", "--child", "--db", path, "--seconds", String(seconds)]
    var c = argv.map { strdup($0) } + [nil]
    var pid: pid_t = 0
    guard posix_spawn(&pid, "/proc/self/exe", &actions, nil, &c, environ) == 0 else { fatalError("posix_spawn") }
    for p in c { free(p) }
    close(fds[1])
    pids.append(pid)
    pipes.append(fds[0])
}
var total = 0
for (pid, fd) in zip(pids, pipes) {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 64)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    total += Int(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
}
let elapsed = Double(now() - start) / 1e9
report("\(processes) processes, 1 writer each", Phase(events: total, seconds: elapsed, latencies: []))
results["processes"] = Double(total) / elapsed

let verify = try store.verify()
print("verify: \(verify.ok ? "intact" : "BROKEN"), \(verify.events) events")
let data = try JSONSerialization.data(withJSONObject: results, options: [.sortedKeys])
print("json: " + String(decoding: data, as: UTF8.self))
