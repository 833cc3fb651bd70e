import BurrowCrypto
import BurrowJSON
import BurrowSQLite
import BurrowTestSupport
import Foundation
import Testing

@testable import BurrowAudit

#if canImport(Glibc)
    import Glibc
#endif

/// What `burrow run` writes to the audit log for real runs, and what
/// `burrow audit` shows of it.
@Suite(.requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits), .timeLimit(.minutes(5)))
struct AuditRunTests: SandboxTesting {
    let directory: String

    init() throws { directory = try Self.makeDirectory() }

    var minimal: String { Fixtures.profilesDirectory + "/minimal.toml" }

    /// Runs and returns the invocation id from the run record.
    func invoke(_ profile: String, _ command: [String]) throws -> (Subprocess.Result, String, [String: Any]) {
        let path = directory + "/record-\(UUID().uuidString.prefix(8)).json"
        let result = try run(profile, command, record: path)
        let record = (try? record(path)) ?? [:]
        return (result, record["invocationID"] as? String ?? "", record)
    }

    func audit(_ arguments: [String]) throws -> Subprocess.Result {
        try Subprocess.run([Subprocess.burrow, "audit"] + arguments + ["--audit-db", auditDatabase])
    }

    @Test("a clean run: ToolInvoked with the caller, profile digest and argv, then ToolCompleted")
    func completed() throws {
        let (result, invocation, _) = try invoke(minimal, ["sh", "-c", "exit 0"])
        #expect(result.status == 0, "\(result.stderr)")
        let trail = try auditTrail(invocation)
        #expect(trail.map(\.type) == [.toolInvoked, .toolCompleted])
        let invoked = trail[0]
        #expect(invoked.tool == "minimal")
        #expect(invoked.context.principal == "root" && invoked.context.uid == 0)
        #expect(invoked.context.sandboxLevel == "container")
        let text = try String(contentsOfFile: minimal, encoding: .utf8)
        #expect(invoked.context.profileDigest == SHA256.label(Array("\(text.utf8.count)\n\(text)".utf8)))
        #expect(invoked.details["argv"] == .array(["sh", "-c", "exit 0"].map { .string($0) }))
        #expect(trail[1].details["exit"]?["code"]?.integerValue == 0)
    }

    @Test("failures are ToolFailed with a reason: exit status, signal, not found, refused plan")
    func failures() throws {
        for (command, reason) in [(["sh", "-c", "exit 3"], "exit_status"), (["sh", "-c", "kill -TERM $$"], "signal")] {
            let (_, invocation, _) = try invoke(minimal, command)
            let trail = try auditTrail(invocation)
            #expect(trail.last?.type == .toolFailed)
            #expect(trail.last?.details["reason"]?.stringValue == reason, "\(command): \(String(describing: trail.last?.details))")
        }
        // A command the profile does not grant never becomes an invocation: PermissionDenied.
        let (denied, _, _) = try invoke(minimal, ["/no/such/tool"])
        #expect(denied.status == 125)
        let refusal = try #require(try auditLog().events(AuditQuery(limit: 1)).first)
        #expect(refusal.type == .permissionDenied && refusal.tool == "minimal" && refusal.context.invocationID == nil)
        #expect(refusal.details["reason"]?.stringValue == "plan_refused")
        #expect(refusal.details["argv"] == .array([.string("/no/such/tool")]))
        // A plan this host cannot enforce: invoked, then refused before anything started.
        let vm = try profile(extending: "minimal", top: "sandbox_level = \"vm\"")
        let refused = try run(vm, ["true"])
        #expect(refused.status == 125)
        let last = try auditLog().events(AuditQuery(limit: 2))
        #expect(last.map(\.type) == [.toolInvoked, .toolFailed])
        #expect(last.last?.details["reason"]?.stringValue == "refused")
        #expect(last.last?.details["message"]?.stringValue?.contains("refusing to run") == true)
        #expect(last.first?.context.invocationID == last.last?.context.invocationID)
    }

    @Test("every refused system call the run record lists is a SecurityViolation of that invocation")
    func violations() throws {
        let profile = try profile(extending: "minimal", "[permissions]\nexecute = [\"\(Subprocess.probe)\"]")
        let (_, invocation, record) = try invoke(profile, [Subprocess.probe, "all"])
        let listed = (record["violations"] as? [[String: Any]] ?? []).compactMap { $0["syscall"] as? String }
        #expect(!listed.isEmpty, "the probe makes refused calls")
        let trail = try auditTrail(invocation)
        let logged = trail.filter { $0.type == .securityViolation }.compactMap { $0.details["syscall"]?.stringValue }
        #expect(logged == listed)
        // They precede the outcome, whose count matches.
        #expect(trail.last?.details["violations"]?.integerValue == Int64((record["violations"] as? [[String: Any]] ?? []).reduce(0) { $0 + (($1["count"] as? NSNumber)?.intValue ?? 0) }))
    }

    @Test("a run and an in-process writer share the log without losing an event")
    func concurrentWriters() throws {
        // The daemon's side: a store in this process appending continuously.
        let store = try AuditStore(.init(path: auditDatabase, redactor: try Redactor()), access: .write)
        let runs = 4
        let appended = 400
        let writer = Thread {
            for i in 0..<appended {
                _ = try? store.append([AuditEvent(tool: "daemon", type: .toolRegistered, context: SecurityContext(principal: "test", uid: 0, host: "h"), details: .object(["i": .integer(Int64(i))]))])
            }
        }
        writer.start()
        let results = try (0..<runs).map { _ in try Subprocess.start([Subprocess.burrow, "run", "--profile", minimal, "--", "true"], environment: burrowEnvironment) }.map { try $0.finish() }
        while !writer.isFinished { usleep(10_000) }
        for r in results { #expect(r.status == 0, "\(r.stderr)") }
        let log = try auditLog()
        #expect(try log.verify().ok)
        #expect(try log.events(AuditQuery(tool: "daemon")).count == appended)
        #expect(try log.events(AuditQuery(tool: "minimal", types: [.toolInvoked])).count == runs)
        #expect(try log.events(AuditQuery(tool: "minimal", types: [.toolCompleted])).count == runs)
    }

    @Test("PerformanceThreshold and AnomalousActivity from the host policy's thresholds")
    func monitoring() throws {
        let policy = directory + "/burrow.toml"
        try "[audit]\nduration_threshold = \"200ms\"\nanomaly_threshold = 2\nanomaly_window = \"1h\"\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let slow = try Subprocess.run([Subprocess.burrow, "run", "--policy", policy, "--profile", minimal, "--", "sleep", "0.5"], environment: burrowEnvironment)
        #expect(slow.status == 0, "\(slow.stderr)")
        let events = try auditLog().events()
        let threshold = try #require(events.first { $0.type == .performanceThreshold })
        #expect(threshold.details["metric"]?.stringValue == "duration" && threshold.details["threshold"]?.integerValue == 200)
        // Wall time runs from the parent's clock reading after it releases the child, so a
        // 500 ms sleep may read a few ms short; 400 still tells real time from a default.
        #expect((threshold.details["observed"]?.integerValue ?? 0) >= 400)
        #expect(events.last?.type == .toolCompleted, "the outcome comes last")

        // The probe makes more than two refused calls: one AnomalousActivity for the tool.
        let profile = try profile(extending: "minimal", "[permissions]\nexecute = [\"\(Subprocess.probe)\"]")
        _ = try Subprocess.run([Subprocess.burrow, "run", "--policy", policy, "--profile", profile, "--quiet", "--", Subprocess.probe, "all"], environment: burrowEnvironment)
        let anomalies = try auditLog().events(AuditQuery(types: [.anomalousActivity]))
        #expect(anomalies.count == 1)
        #expect(anomalies.first?.tool == "test-minimal" && anomalies.first?.details["count"]?.integerValue == 3)
        #expect(try auditLog().verify().ok)
    }

    @Test("burrow audit follow prints new events as they are written")
    func follow() throws {
        _ = try invoke(minimal, ["true"])
        let follower = try Subprocess.start([Subprocess.burrow, "audit", "follow", "--jsonl", "--limit", "1", "--interval", "50", "--audit-db", auditDatabase])
        defer { kill(follower.pid, SIGKILL) }
        usleep(300_000)
        let (_, invocation, _) = try invoke(minimal, ["sh", "-c", "exit 4"])
        // It polls every 50 ms; on a loaded host that can take a while.
        for _ in 0..<200 where follower.outputSoFar.split(separator: "\n").count < 3 { usleep(50_000) }
        kill(follower.pid, SIGTERM)
        let out = try follower.finish()
        let events = try out.output.split(separator: "\n").map { try JSONDecoder().decode(AuditEvent.self, from: Data($0.utf8)) }
        #expect(events.count == 3, "\(out.output) \(out.stderr)")
        #expect(events.first?.type == .toolCompleted)
        #expect(events.dropFirst().map(\.type) == [.toolInvoked, .toolFailed] && events.last?.context.invocationID == invocation)
    }

    @Test("burrow audit prune cuts behind a checkpoint; the chain still verifies")
    func prune() throws {
        for _ in 0..<2 { _ = try invoke(minimal, ["true"]) }
        #expect(try audit(["prune", "--dry-run", "--older-than", "0"]).output.contains("would delete 4 events"))
        let pruned = try audit(["prune", "--older-than", "0"])
        #expect(pruned.output.contains("deleted 4 events through row 4"), "\(pruned.output)\(pruned.stderr)")
        _ = try invoke(minimal, ["true"])
        let verified = try audit(["verify", "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: verified.stdout) as? [String: Any])
        #expect(verified.status == 0 && report["events"] as? Int == 2 && report["pruned"] as? Int == 4 && report["firstSequence"] as? Int == 5, "\(report)")
    }

    @Test("runs racing to create a new log all start (none gets SQLITE_BUSY while it switches to WAL)")
    func racingCreation() throws {
        for round in 0..<3 {
            let environment = ["BURROW_AUDIT_DB": directory + "/race-\(round)/audit.db"]
            let runs = try (0..<6).map { _ in try Subprocess.start([Subprocess.burrow, "run", "--profile", minimal, "--", "true"], environment: environment) }
            for r in try runs.map({ try $0.finish() }) { #expect(r.status == 0, "\(r.stderr)") }
        }
    }

    @Test("hostile arguments are stored exactly, shown escaped; secrets in arguments never reach the file")
    func hostileArguments() throws {
        let hostile = "line1\nline2\u{1B}[31mred\u{1B}]0;pwned\u{07}\u{202E}cod.exe"
        let (result, invocation, _) = try invoke(minimal, ["echo", hostile, "--password", "hunter2-hunter2", "token=abcdef123456"])
        #expect(result.status == 0)
        let trail = try auditTrail(invocation)
        #expect(trail[0].details["argv"] == .array(["echo", hostile, "--password", "[REDACTED]", "token=[REDACTED]"].map { .string($0) }))

        let table = try audit(["--invocation", invocation])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(!table.output.contains("\u{1B}") && !table.output.contains("\u{202E}") && !table.output.contains("\u{07}"), "\(table.output)")
        #expect(table.output.contains("\\u{1b}[31mred"), "\(table.output)")
        #expect(table.output.split(separator: "\n").count == 3, "one line per event plus the header: \(table.output)")

        let lines = try audit(["--invocation", invocation, "--jsonl"])
        let decoded = try lines.output.split(separator: "\n").map { try JSONDecoder().decode(AuditEvent.self, from: Data($0.utf8)) }
        #expect(decoded == trail)

        for file in [auditDatabase, auditDatabase + "-wal"] {
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data()
            #expect(bytes.range(of: Data("hunter2-hunter2".utf8)) == nil && bytes.range(of: Data("abcdef123456".utf8)) == nil, "a secret is in \(file)")
        }
    }

    @Test("burrow audit verify finds an edited row and exits 1; filters and JSON work from the command line")
    func verifyCommand() throws {
        for _ in 0..<3 { _ = try invoke(minimal, ["true"]) }
        let ok = try audit(["verify"])
        #expect(ok.status == 0 && ok.output.contains("intact"), "\(ok.output)\(ok.stderr)")
        let head = try #require(ok.output.split(separator: "\n").first { $0.contains("head") }?.split(separator: " ").last.map(String.init))
        #expect(try audit(["verify", "--expect", head]).status == 0)

        let json = try audit(["--type", "toolcompleted", "--since", "1h", "--json"])
        let array = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [[String: Any]])
        #expect(array.count == 3 && array.allSatisfy { $0["type"] as? String == "ToolCompleted" })
        #expect(try audit(["--type", "Nope"]).stderr.contains("unknown event type 'Nope'"))

        try AuditDatabase(path: auditDatabase, mode: .readWrite).execute("UPDATE events SET principal = 'mallory' WHERE sequence = 2")
        let broken = try audit(["verify"])
        #expect(broken.status == 1)
        #expect(broken.output.contains("BROKEN (edited): row 2 does not match its hash"), "\(broken.output)")
    }
}
