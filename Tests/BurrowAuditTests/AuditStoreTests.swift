import BurrowJSON
import BurrowSQLite
import Foundation
import Testing

@testable import BurrowAudit

#if canImport(Glibc)
    import Glibc
#endif

/// A fresh database in a new temporary directory.
func temporaryDatabase(_ name: String = "audit.db") -> String {
    var template = Array("/tmp/burrow-audit-test-XXXXXX".utf8CString)
    let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    return dir + "/" + name
}

func openStore(_ path: String, anomaly: AuditStore.AnomalyRule? = nil, patterns: [String] = []) throws -> AuditStore {
    try AuditStore(.init(path: path, redactor: try Redactor(patterns: patterns), anomaly: anomaly), access: .write)
}

let context = SecurityContext(principal: "root", uid: 0, invocationID: "inv-1", profileDigest: "sha256:abc", sandboxLevel: "container", host: "testhost")

func event(_ type: AuditEventType, tool: String = "t", invocation: String? = "inv-1", details: JSON = .object(["k": .string("v")]), time: Int64? = nil) -> AuditEvent {
    var c = context
    c.invocationID = invocation
    return AuditEvent(tool: tool, type: type, context: c, details: details, time: time)
}

@Suite("Audit store")
struct AuditStoreTests {
    @Test("every event type round-trips with its context and details")
    func roundTrip() throws {
        let path = temporaryDatabase()
        let store = try openStore(path)
        let details: JSON = .object([
            "n": .integer(-42), "x": .number(1.5), "b": .bool(true), "nil": .null,
            "list": .array([.string("a"), .integer(1)]), "nested": .object(["s": .string("é ü 😀")]),
        ])
        var written: [AuditEvent] = []
        for type in AuditEventType.allCases { written += try store.append([event(type, details: details)]) }
        #expect(written.map(\.sequence) == Array(1...Int64(AuditEventType.allCases.count)))

        // A second connection (another process would do the same) reads them back.
        let reader = try AuditStore(.init(path: path, redactor: try Redactor()), access: .read)
        let read = try reader.events()
        #expect(read == written)
        #expect(read.map(\.type) == AuditEventType.allCases)
        #expect(read[0].details == details)
        #expect(read[0].context == context)
        #expect(read[1].previousHash == read[0].hash)
        #expect(try reader.verify().ok)
        #expect(try reader.verify().events == Int64(AuditEventType.allCases.count))

        // JSON form: stable field names, RFC 3339 time, decodes back.
        let json = try JSONEncoder().encode(read[0])
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(Set(object.keys) == ["sequence", "time", "tool", "type", "context", "details", "hash", "previousHash"])
        #expect((object["time"] as? String)?.hasSuffix("Z") == true)
        #expect(try JSONDecoder().decode(AuditEvent.self, from: json) == read[0])
    }

    @Test("queries filter by tool, type, invocation, time and limit")
    func queries() throws {
        let store = try openStore(temporaryDatabase())
        let base: Int64 = 1_800_000_000_000_000
        try store.append([
            event(.toolInvoked, tool: "a", invocation: "1", time: base),
            event(.securityViolation, tool: "a", invocation: "1", time: base + 1_000_000),
            event(.toolCompleted, tool: "a", invocation: "1", time: base + 2_000_000),
            event(.toolInvoked, tool: "b", invocation: "2", time: base + 3_000_000),
            event(.toolFailed, tool: "b", invocation: "2", time: base + 4_000_000),
        ])
        #expect(try store.events(AuditQuery(tool: "a")).count == 3)
        #expect(try store.events(AuditQuery(types: [.toolCompleted, .toolFailed])).map(\.sequence) == [3, 5])
        #expect(try store.events(AuditQuery(invocation: "2")).map(\.type) == [.toolInvoked, .toolFailed])
        #expect(try store.events(AuditQuery(since: base + 1_000_000, until: base + 3_000_000)).map(\.sequence) == [2, 3])
        #expect(try store.events(AuditQuery(limit: 2)).map(\.sequence) == [4, 5])
        #expect(try store.events(AuditQuery(afterSequence: 3)).map(\.sequence) == [4, 5])
        #expect(try store.lastSequence() == 5)
    }

    @Test("open invocations: ToolInvoked opens, a terminal event closes, appendIfOpen closes once")
    func openInvocations() throws {
        let store = try openStore(temporaryDatabase())
        try store.append([event(.toolInvoked, invocation: "x"), event(.toolInvoked, invocation: "y"), event(.toolCompleted, invocation: "x")])
        #expect(try store.openInvocations().map(\.invocationID) == ["y"])
        #expect(try store.appendIfOpen(event(.toolFailed, invocation: "y")) != nil)
        #expect(try store.appendIfOpen(event(.toolFailed, invocation: "y")) == nil)
        #expect(try store.openInvocations().isEmpty)
        #expect(try store.events(AuditQuery(invocation: "y")).map(\.type) == [.toolInvoked, .toolFailed])
    }

    @Test("the database is created 0640 in a 0750 directory, WAL mode")
    func fileModes() throws {
        let path = temporaryDatabase("sub/dir/audit.db")
        let store = try openStore(path)
        try store.append([event(.toolInvoked)])
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o640)
        let dir = String(path[..<path.lastIndex(of: "/")!])
        #expect(stat(dir, &st) == 0 && st.st_mode & 0o777 == 0o750)
        #expect(stat(path + "-wal", &st) == 0 && st.st_mode & 0o777 == 0o640)
        withExtendedLifetime(store) {}
    }

    @Test("schema: a newer file is refused, a read-only open of a missing file says so")
    func schemaVersions() throws {
        let path = temporaryDatabase()
        _ = try openStore(path)
        try AuditDatabase(path: path, mode: .readWrite).execute("PRAGMA user_version = 99")
        #expect(throws: AuditError.newerSchema(found: 99, supported: 4)) { try openStore(path) }
        // A version 1 file (before the uid index, reported events' origin and the shipped mark) is brought up to date, its events kept and still verifying.
        let old = temporaryDatabase("v1.db")
        let written = try openStore(old).append([event(.toolInvoked)])
        let db = try AuditDatabase(path: old, mode: .readWrite)
        try db.execute("DROP INDEX events_by_uid")
        try db.execute("ALTER TABLE events DROP COLUMN origin")
        try db.execute("DROP TABLE shipped")
        try db.execute("PRAGMA user_version = 1")
        let reopened = try openStore(old)
        #expect(try AuditDatabase(path: old, mode: .readWrite).pragma("user_version") == "4")
        #expect(try reopened.events(AuditQuery(uid: written.first?.context.uid)).map(\.hash) == written.map(\.hash))
        #expect(try reopened.verify().ok)
        let missing = temporaryDatabase("none.db")
        #expect(throws: AuditError.missing(missing)) { try AuditStore(.init(path: missing, redactor: try Redactor()), access: .read) }
    }

    @Test("AnomalousActivity once a tool exceeds the threshold within the window, once per window")
    func anomaly() throws {
        let store = try openStore(temporaryDatabase(), anomaly: .init(threshold: 3, windowMicroseconds: 60_000_000))
        let t: Int64 = 1_800_000_000_000_000
        var stored: [AuditEvent] = []
        for i in 0..<6 { stored += try store.append([event(.securityViolation, time: t + Int64(i) * 1_000_000)]) }
        // Another tool's denials do not count towards this one.
        stored += try store.append([event(.permissionDenied, tool: "other", time: t)])
        let anomalies = stored.filter { $0.type == .anomalousActivity }
        try #require(anomalies.count == 1)
        #expect(anomalies[0].details["count"]?.integerValue == 4)
        #expect(anomalies[0].details["trigger"]?.integerValue == anomalies[0].sequence - 1)
        // Outside the window, it is reported again.
        let later = try store.append([event(.permissionDenied, time: t + 200_000_000)] + (1...4).map { event(.permissionDenied, time: t + 200_000_000 + $0) })
        #expect(later.filter { $0.type == .anomalousActivity }.count == 1)
        #expect(try store.verify().ok)
    }

    @Test("reported events (an origin) count toward no anomaly and silence none; they hash with their origin and the chain verifies")
    func reportedEvents() throws {
        let store = try openStore(temporaryDatabase(), anomaly: .init(threshold: 3, windowMicroseconds: 60_000_000))
        let t: Int64 = 1_800_000_000_000_000
        func reported(_ type: AuditEventType, _ time: Int64) -> AuditEvent {
            var e = event(type, invocation: nil, time: time)
            e.origin = "reported:cert:registry"
            return e
        }
        // A reporter's AnomalousActivity and denials first: they raise nothing and hide nothing.
        var stored = try store.append([reported(.anomalousActivity, t)] + (1...5).map { reported(.permissionDenied, t + Int64($0)) })
        #expect(stored.filter { $0.type == .anomalousActivity }.count == 1, "only the reported one")
        for i in 0..<4 { stored += try store.append([event(.securityViolation, time: t + 10 + Int64(i))]) }
        let witnessed = stored.filter { $0.type == .anomalousActivity && $0.origin == nil }
        #expect(witnessed.count == 1 && witnessed.first?.details["count"]?.integerValue == 4, "\(witnessed.map(\.details))")
        #expect(try store.events(AuditQuery(types: [.permissionDenied])).allSatisfy { $0.origin == "reported:cert:registry" })
        #expect(try store.verify().ok)
    }
}
