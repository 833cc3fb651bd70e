import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The audit log's disk fills before, during and after a run: the run is
/// refused, or its result says its outcome was not recorded (auditLost) and
/// the outcome is recorded as soon as the log takes it, never relabelled
/// `supervisor_lost`.
@Suite(.requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits), .timeLimit(.minutes(2)))
struct AuditDiskFullTests: SandboxTesting {
    let directory: String

    init() throws {
        let directory = try Self.makeDirectory()
        // The test's directory, audit log included, is an 8 MiB tmpfs of its own.
        guard mount("burrow-test-full", directory, "tmpfs", 0, "size=8m,mode=0755") == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EPERM)
        }
        self.directory = directory
    }

    var filler: String { directory + "/filler" }

    /// Writes until the file system refuses (ENOSPC).
    func fill() throws {
        let fd = open(filler, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        try #require(fd >= 0)
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0x55, count: 4096)
        while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        #expect(errno == ENOSPC)
    }

    func free() { unlink(filler) }

    func finish() { umount2(directory, Int32(MNT_DETACH)) }

    @Test("full before, during and after a run: refused, then auditLost and recorded late, then whole again")
    func diskFull() throws {
        defer { finish() }
        let minimal = try profile(extending: "minimal")
        // A tool that leaves a mark outside this (soon full) file system.
        let marks = try Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: marks) }
        let marking = try profile(extending: "minimal", "[permissions]\nfile_write = [\"\(marks)/**\"]")
        let mark = ["sh", "-c", "echo ran > \(marks)/ran"]
        // The log exists and has its schema.
        #expect(try run(marking, mark).status == 0)
        #expect(unlink(marks + "/ran") == 0, "the marking tool ran")

        // Before: ToolInvoked cannot be written, so nothing runs (the sandbox
        // is built while the commit is tried, but the tool never reaches execve).
        try fill()
        let before = try run(marking, mark)
        #expect(before.status == 125, "\(before.stderr)")
        #expect(before.stderr.contains("cannot record ToolInvoked"), "\(before.stderr)")
        #expect(access(marks + "/ran", F_OK) != 0, "the tool ran without its ToolInvoked")
        free()

        // During: the log fills while the tool runs; the outcome cannot be written when it ends.
        // The record goes elsewhere: this disk will be full.
        let record = try Subprocess.temporaryDirectory() + "/record.json"
        let during = try Subprocess.start(
            [Subprocess.burrow, "run", "--profile", minimal, "--quiet", "--json-result", record, "--", "sleep", "1"], environment: burrowEnvironment, directory: directory)
        usleep(400_000)
        try fill()
        let result = try during.finish()
        #expect(result.status == 0, "the tool's own status stands: \(result.stderr)")
        #expect(result.stderr.contains("the outcome was not recorded") && result.stderr.contains("recorded once the audit log takes it"), "\(result.stderr)")
        let fields = try self.record(record)
        #expect(fields["auditLost"] as? Bool == true)
        let invocation = try #require(fields["invocationID"] as? String)
        #expect(access("/run/burrow/outcomes/\(invocation).json", F_OK) == 0)

        // After: space again; the next run's sweep records the kept outcome, as it was.
        free()
        let after = try run(minimal, ["true"])
        #expect(after.status == 0, "\(after.stderr)")
        let trail = try auditTrail(invocation)
        #expect(trail.map(\.type) == [.toolInvoked, .toolCompleted])
        #expect(trail.last?.details["recordedLate"] == .bool(true))
        #expect(trail.last?.details["exit"]?["code"]?.integerValue == 0)
        #expect(try auditLog().events(AuditQuery()).allSatisfy { $0.details["reason"]?.stringValue != "supervisor_lost" })
        #expect(access("/run/burrow/outcomes/\(invocation).json", F_OK) != 0)
    }
}
