import BurrowAPI
import BurrowAudit
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `burrow admin backup` and `restore`: a node's registry and audit log
/// copied while burrowd writes, checked, and put back with the chain whole.
@Suite(
    "backups (live)", .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.seccomp), .requires(.landlock), .requires(.cgroupLimits),
    .timeLimit(.minutes(3)))
struct BackupTests {
    @Test(
        "burrow admin backup copies both databases while invocations write, each a snapshot whose chain verifies; restore refuses a running burrowd, an existing database without --force and a changed copy, then puts back a registry and a chain that burrowd carries on"
    )
    func backupAndRestore() throws {
        let daemon = try LiveDaemon(policy: DaemonInvocationTests.policy)
        try DaemonInvocationTests.register(daemon)
        let registry = daemon.directory + "/registry.db"
        let databases = ["--policy", daemon.policyFile, "--audit-db", daemon.auditDB, "--registry-db", registry]
        for i in 0..<3 { #expect(try daemon.burrow(["invoke", "minimal", "--", "echo \(i)"]).status == 0) }

        // Invocations go on while the backup runs.
        let writer = Thread {
            for i in 0..<5 { _ = try? daemon.burrow(["invoke", "minimal", "--", "echo during \(i)"]) }
        }
        writer.start()
        let backup = daemon.directory + "/backup"
        let made = try daemon.burrow(["admin", "backup"] + databases + [backup])
        while !writer.isFinished { usleep(20_000) }
        try #require(made.status == 0, "\(made.output)\(made.stderr)")
        #expect(made.stderr.contains("audit.db: ") && made.stderr.contains("the chain intact"), "\(made.stderr)")
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: backup + "/backup.json"))) as? [String: Any]
        let head = try #require((record?["audit"] as? [String: Any])?["head"] as? String)
        var st = stat()
        #expect(stat(backup, &st) == 0 && st.st_mode & 0o777 == 0o700)
        #expect(stat(backup + "/audit.db", &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(access(backup + "/audit.db-wal", F_OK) != 0, "a copy stands alone")
        // Never over a backup.
        let again = try daemon.burrow(["admin", "backup"] + databases + [backup])
        #expect(again.status != 0 && again.stderr.contains("already holds a backup"), "\(again.stderr)")

        // After the backup: another event and another tool, which the restore takes away.
        #expect(try daemon.burrow(["invoke", "minimal", "--", "echo after"]).status == 0)
        let later = try daemon.burrow(["tools", "register", "--profile", Fixtures.profilesDirectory + "/minimal.toml", "--version", "2.0.0", "--", "sh", "-c"])
        try #require(later.status == 0, "\(later.stderr)")

        let running = try daemon.burrow(["admin", "restore", "--force", "--socket", daemon.socket] + databases + [backup])
        #expect(running.status != 0 && running.stderr.contains("stop it first"), "\(running.stderr)")
        _ = try daemon.stop(SIGTERM)
        let unforced = try daemon.burrow(["admin", "restore", "--socket", daemon.socket] + databases + [backup])
        #expect(unforced.status != 0 && unforced.stderr.contains("--force"), "\(unforced.stderr)")

        // A copy changed after the backup: nothing restored.
        let tampered = daemon.directory + "/tampered"
        try FileManager.default.copyItem(atPath: backup, toPath: tampered)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: tampered + "/audit.db"))
        try handle.seek(toOffset: 5000)
        try handle.write(contentsOf: Data([0x5a]))
        try handle.close()
        let headBefore = try AuditStore(.init(path: daemon.auditDB, redactor: try Redactor()), access: .read).verify()
        let refused = try daemon.burrow(["admin", "restore", "--force", "--socket", daemon.socket] + databases + [tampered])
        #expect(refused.status == 1 && refused.stderr.contains("not the file the backup wrote") && refused.stderr.contains("nothing restored"), "\(refused.stderr)")
        #expect(try AuditStore(.init(path: daemon.auditDB, redactor: try Redactor()), access: .read).verify().head == headBefore.head)

        let restored = try daemon.burrow(["admin", "restore", "--force", "--socket", daemon.socket] + databases + [backup])
        try #require(restored.status == 0, "\(restored.output)\(restored.stderr)")
        #expect(restored.output.contains("verifies up to \(head)"), "\(restored.output)")
        let verified = try daemon.burrow(["audit", "verify", "--audit-db", daemon.auditDB, "--expect", head])
        #expect(verified.status == 0 && verified.output.contains("head      \(head)"), "\(verified.output)\(verified.stderr)")

        // A fresh host: neither database nor their directory exists; made as burrowd makes them.
        let fresh = daemon.directory + "/fresh/lib"
        let onFresh = try daemon.burrow(
            ["admin", "restore", "--socket", daemon.socket, "--policy", daemon.policyFile, "--audit-db", fresh + "/audit.db", "--registry-db", fresh + "/registry.db", backup])
        #expect(onFresh.status == 0 && onFresh.output.contains("verifies up to \(head)"), "\(onFresh.output)\(onFresh.stderr)")
        #expect(stat(fresh + "/audit.db", &st) == 0 && st.st_mode & 0o777 == 0o640, "the audit log as burrowd makes it: \(String(st.st_mode & 0o777, radix: 8))")
        #expect(stat(fresh + "/registry.db", &st) == 0 && st.st_mode & 0o077 == 0, "\(String(st.st_mode & 0o777, radix: 8))")

        // burrowd carries on from the restored state: the later version is gone, and new events chain on.
        try daemon.start()
        let versions = try daemon.request("GET", "/v1/tools/minimal", as: ToolDetail.self).1?.versions ?? []
        #expect(versions == ["1.0.0"], "\(versions)")
        #expect(try daemon.burrow(["invoke", "minimal", "--", "echo restored"]).output == "restored\n")
        _ = try daemon.stop(SIGTERM)
        let chained = try AuditStore(.init(path: daemon.auditDB, redactor: try Redactor()), access: .read).verify(
            expect: (Int64(head.split(separator: ":")[0])!, String(head.split(separator: ":")[1])))
        #expect(chained.ok && chained.lastSequence ?? 0 > Int64(head.split(separator: ":")[0])!, "\(chained)")
    }
}
