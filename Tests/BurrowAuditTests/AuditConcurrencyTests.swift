import BurrowJSON
import Foundation
import Testing

@testable import BurrowAudit

@Suite("Audit store under load and hostile input")
struct AuditConcurrencyTests {
    @Test("concurrent writers on two connections lose nothing and keep one chain")
    func concurrentWriters() throws {
        let path = temporaryDatabase()
        // Two stores on one file behave like two processes: each has its own
        // connection and SQLite's lock decides who commits next.
        let stores = [try openStore(path), try openStore(path)]
        let threads = 8
        let perThread = 150
        let failures = LockedCounter()
        let done = DispatchSemaphore(value: 0)
        for t in 0..<threads {
            let store = stores[t % 2]
            Thread.detachNewThread {
                for i in 0..<perThread {
                    do {
                        try store.append([event(.toolInvoked, tool: "w\(t)", invocation: "\(t)-\(i)")])
                    } catch {
                        failures.add()
                    }
                }
                done.signal()
            }
        }
        for _ in 0..<threads { done.wait() }
        #expect(failures.value == 0)
        let events = try stores[0].events()
        #expect(events.count == threads * perThread)
        #expect(events.map(\.sequence) == Array(1...Int64(threads * perThread)))
        #expect(Set(events.compactMap(\.context.invocationID)).count == threads * perThread)
        for t in 0..<threads { #expect(events.filter { $0.tool == "w\(t)" }.count == perThread) }
        #expect(try stores[1].verify().ok)
    }

    @Test("a store with background checkpoints never checkpoints on the committing thread; its own thread does, and nothing is lost")
    func backgroundCheckpoints() throws {
        func walBytes(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0 }
        func appendMany(_ store: AuditStore) throws {
            for i in 0..<300 { try store.append([event(.toolInvoked, tool: "c", invocation: "c-\(i)")]) }
        }
        // At commit (burrow run): the WAL restarts every 32 pages and stays short.
        let inline = temporaryDatabase()
        let a = try openStore(inline)
        try appendMany(a)
        #expect(walBytes(inline) < 1 << 20, "an at-commit store keeps its WAL under journal_size_limit")
        #expect(a.backgroundCheckpoints == 0)

        // Background with a threshold never reached: no commit checkpointed, so the WAL holds every commit.
        let never = temporaryDatabase()
        let b = try AuditStore(.init(path: never, redactor: try Redactor(patterns: []), checkpoints: .background(pages: 1_000_000)), access: .write)
        try appendMany(b)
        #expect(walBytes(never) > 1 << 20, "commits left the WAL to grow: none of them checkpointed")
        #expect(b.backgroundCheckpoints == 0)

        // Background at 64 pages: the store's thread checkpoints, and every event is there and chained.
        let path = temporaryDatabase()
        let c = try AuditStore(.init(path: path, redactor: try Redactor(patterns: []), checkpoints: .background(pages: 64)), access: .write)
        try appendMany(c)
        let deadline = Date().addingTimeInterval(10)
        while c.backgroundCheckpoints == 0 && Date() < deadline { usleep(10_000) }
        #expect(c.backgroundCheckpoints > 0)
        let reader = try AuditStore(.init(path: path, redactor: try Redactor(patterns: [])), access: .read)
        #expect(try reader.events().count == 300)
        #expect(try reader.verify().ok)

        // Closed (the thread ends with its store): -wal and -shm stay for the auditor group's readers.
        let last = temporaryDatabase()
        do {
            let store = try AuditStore(.init(path: last, redactor: try Redactor(patterns: []), checkpoints: .background(pages: 8)), access: .write)
            try store.append([event(.toolInvoked)])
        }
        #expect(FileManager.default.fileExists(atPath: last + "-wal") && FileManager.default.fileExists(atPath: last + "-shm"))
    }

    @Test("newlines, ANSI escapes, NUL, bidi controls, U+FFFD and a 10 MB argument are stored intact or cut, and verify")
    func hostileStrings() throws {
        let store = try openStore(temporaryDatabase())
        let hostile = ["line1\nline2\r\n", "\u{1B}[31mred\u{1B}[0m\u{1B}]0;title\u{07}", "nul\u{0}byte", "\u{202E}txt.exe", "bad \u{FFFD} utf8", "quote\"back\\slash"]
        let huge = String(repeating: "A", count: 10 * 1024 * 1024)
        let stored = try store.append([
            AuditEvent(
                tool: "tool\nwith\u{1B}[2Jnewline", type: .toolInvoked,
                context: SecurityContext(principal: "evil\u{1B}[0m", uid: 0, invocationID: "i", host: "h"),
                details: .object(["argv": .array((hostile + [huge]).map { .string($0) })]))
        ])
        let back = try #require(try store.events().first)
        #expect(back == stored[0])
        guard case .array(let argv)? = back.details["argv"] else {
            Issue.record("argv is not an array")
            return
        }
        #expect(Array(argv.prefix(hostile.count)) == hostile.map { .string($0) })
        let cut = try #require(argv.last?.stringValue)
        #expect(cut.hasSuffix("…[truncated: 10485760 bytes in all]") && cut.utf8.count < 70_000)
        #expect(back.tool == "tool\nwith\u{1B}[2Jnewline")
        #expect(try store.verify().ok)
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
