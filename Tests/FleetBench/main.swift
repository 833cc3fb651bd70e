// burrow-fleet-bench: the central audit copy's throughput and lag
// (Scripts/bench-fleet.sh starts the PostgreSQL server it ships to).
//
// 1. Backlog: N events already in a local log (an outage's worth) shipped
//    to an empty central copy: events per second, start to last row.
// 2. Steady lag: events appended at a steady rate while the shipper runs;
//    the lag (an event's append to its row being in PostgreSQL, as the
//    shipper's mark says) sampled every 10 ms: median and p99.
import BurrowAudit
import BurrowFleet
import BurrowProfile
import BurrowSystem
import Foundation
import Logging

func argument(_ name: String) -> String? {
    guard let i = CommandLine.arguments.firstIndex(of: name), i + 1 < CommandLine.arguments.count else { return nil }
    return CommandLine.arguments[i + 1]
}

guard let urlText = argument("--url"), let url = try? PostgresURL(parsing: urlText) else {
    FileHandle.standardError.write(Data("usage: burrow-fleet-bench --url postgresql://… [--password-file F] [--events N] [--rate N] [--seconds S]\n".utf8))
    exit(2)
}
let events = Int(argument("--events") ?? "50000") ?? 50000
let rate = Int(argument("--rate") ?? "2000") ?? 2000
let seconds = Int(argument("--seconds") ?? "3") ?? 3
var central = HostPolicy.Audit.Central(url: url)
central.passwordFile = argument("--password-file")

let directory = NSTemporaryDirectory() + "burrow-fleet-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: directory) }
let audit = try AuditStore(.init(path: directory + "/audit.db", redactor: try Redactor()), access: .write)

func event(_ i: Int) -> AuditEvent {
    AuditEvent(
        tool: "bench", context: SecurityContext(principal: "uid:0", uid: 0, host: "bench"),
        details: RefusalDetails(reason: "bench", message: "event \(i) of the fleet benchmark, about as long as a refusal's message is"))
}

// 1. The backlog.
var appended = 0
while appended < events {
    let n = min(1000, events - appended)
    try audit.append((0..<n).map { event(appended + $0) })
    appended += n
}
var logger = Logger(label: "bench")
logger.logLevel = .error
let node = "bench-\(getpid())"
let shipper = AuditShipper(central: try FleetDatabase(central.endpoint, logger: logger), audit: audit, node: node, maxLagMicroseconds: 3_600_000_000)
let head = try audit.head().sequence
let started = ContinuousClock.now
let task = Task { await shipper.run() }
while shipper.current.shipped < head {
    if let stopped = shipper.current.stopped { fatalError(stopped) }
    try await Task.sleep(for: .milliseconds(2))
    if ContinuousClock.now - started > .seconds(300) { fatalError("the backlog was not shipped within 300 s") }
}
let backlog = ContinuousClock.now - started
let backlogSeconds: Double = backlog / .seconds(1)
let backlogRate = Double(events) / backlogSeconds

// 2. Steady appends, lag sampled.
var lags: [Double] = []
let steadyStart = ContinuousClock.now
var written = 0
var appendedAt: [Int64: ContinuousClock.Instant] = [:]
while ContinuousClock.now - steadyStart < .seconds(seconds) {
    let elapsed: Double = (ContinuousClock.now - steadyStart) / .seconds(1)
    let due = Int(Double(rate) * elapsed)
    if due > written {
        let stored = try audit.append((written..<due).map(event))
        let now = ContinuousClock.now
        for e in stored { appendedAt[e.sequence] = now }
        written = due
    }
    let shipped = shipper.current.shipped
    for (sequence, at) in appendedAt where sequence <= shipped {
        let waited: Double = (ContinuousClock.now - at) / .milliseconds(1)
        lags.append(waited)
        appendedAt[sequence] = nil
    }
    try await Task.sleep(for: .milliseconds(10))
}
task.cancel()
let sorted = lags.sorted()
let percentile = { (p: Double) -> Double in sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
print("backlog: \(events) events in \(backlog), \(Int(backlogRate)) events/s")
print("steady: \(written) events at \(rate)/s for \(seconds) s; lag median \(String(format: "%.1f", percentile(0.5))) ms, p99 \(String(format: "%.1f", percentile(0.99))) ms (\(sorted.count) sampled)")
let json: [String: Any] = ["eventsPerSecond": backlogRate, "lagMedianMs": percentile(0.5), "lagP99Ms": percentile(0.99), "events": events, "node": node]
print("json: " + String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), as: UTF8.self))
try? FileManager.default.removeItem(atPath: directory)
exit(0)
