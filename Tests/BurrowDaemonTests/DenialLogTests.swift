import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Synchronization
import Testing

@testable import BurrowDaemon

/// A refused caller cannot grow the audit log at its request rate.
@Suite("DenialLog: refusals aggregated per caller, reason and window")
struct DenialLogTests {
    let store: AuditStore
    let now = TestClock()

    init() throws {
        let directory = try Subprocess.temporaryDirectory()
        store = try AuditStore(
            .init(path: directory + "/audit.db", redactor: try Redactor(), anomaly: .init(threshold: 10, windowMicroseconds: 60_000_000)), access: .write)
    }

    func log(window: UInt64 = 10_000_000_000) -> DenialLog {
        let now = now
        return DenialLog(audit: store, metrics: nil, windowNanoseconds: window, threshold: 10, clock: { now.read() })
    }

    func advance(_ ns: UInt64) { now.advance(ns) }

    func denials() throws -> [AuditEvent] { try store.events(AuditQuery(types: [.permissionDenied])) }

    @Test func aFloodIsThreeRowsAndStillRaisesTheAnomaly() async throws {
        let log = log()
        let peer = PeerCredential(pid: 9, uid: 4999, gid: 4999)
        for i in 0..<1000 {
            await log.record(caller: .local(peer), tool: "t\(i % 3)", RefusalDetails(reason: "role_required", message: "invoking a tool needs the invoker role"))
            advance(1_000_000)  // 1000 refusals in 1 s
        }
        // The first at once; the count once it reached the threshold.
        #expect(try denials().count == 2)
        #expect(try store.events(AuditQuery(types: [.anomalousActivity])).count == 1)
        advance(10_000_000_000)
        await log.flush()
        let rows = try denials()
        #expect(rows.count == 3)
        // Each aggregate stands for its `repeated` refusals; the first row for itself.
        #expect(rows.reduce(0) { $0 + Int($1.details["repeated"]?.integerValue ?? 1) } == 1000)
        #expect(rows.compactMap { $0.details["repeated"]?.integerValue } == [11, 988])
        #expect(rows.last?.tool == "burrowd" && rows.last?.details["distinctTools"]?.integerValue == 3)
        // Another reason, or another caller, is its own window.
        await log.record(caller: .local(peer), tool: "t", RefusalDetails(reason: "rate_limited", message: "m"))
        await log.record(caller: .local(PeerCredential(pid: 1, uid: 5000, gid: 5000)), tool: "t", RefusalDetails(reason: "role_required", message: "m"))
        #expect(try denials().count == 5)
    }

    @Test func callerChosenStringsAreCut() async throws {
        let log = log()
        let long = String(repeating: "x", count: 60_000)
        await log.record(caller: .local(PeerCredential(pid: 1, uid: 7, gid: 7)), tool: "t", RefusalDetails(reason: "role_required", message: long, path: "/v1/" + long))
        let row = try #require(try denials().first)
        #expect(row.details["message"]?.stringValue?.utf8.count ?? .max <= DenialLog.maxStringBytes)
        #expect(row.details["path"]?.stringValue?.utf8.count ?? .max <= DenialLog.maxStringBytes)
    }

    @Test func noWindowWritesEveryRefusal() async throws {
        let log = log(window: 0)
        for _ in 0..<5 { await log.record(caller: .local(PeerCredential(pid: 1, uid: 7, gid: 7)), tool: "t", RefusalDetails(reason: "role_required", message: "m")) }
        #expect(try denials().count == 5)
    }
}

final class TestClock: Sendable {
    private let nanoseconds = Mutex<UInt64>(1_000_000_000)
    func read() -> UInt64 { nanoseconds.withLock { $0 } }
    func advance(_ ns: UInt64) { nanoseconds.withLock { $0 += ns } }
}
