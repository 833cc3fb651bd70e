import BurrowSystem
import BurrowTestSupport
import Foundation
import SystemPackage
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// max_disk_write enforced for real: an ext4 file system with project quotas
/// made by the test. This host's kernel cannot mount one (no CONFIG_QFMT_V2),
/// so the suite runs in Scripts/vm-test.sh; here, ResourceLimitTests checks
/// that a run asking for the budget is refused.
@Suite(
    .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits), .requires(.projectQuotas),
    .timeLimit(.minutes(5)))
struct DiskQuotaTests: SandboxTesting {
    let directory: String
    let disk: ProjectQuotaDisk
    let grant: String

    init() throws {
        directory = try Self.makeDirectory()
        try Requirement.projectQuotas.check()
        disk = try ProjectQuotaDisk.make(in: directory)
        grant = disk.mountPoint + "/grant"
        try FileManager.default.createDirectory(atPath: grant + "/old", withIntermediateDirectories: true)
        chmod(grant, 0o777)
        // A megabyte already there: it stays, and it is not the run's to count.
        try Data(repeating: 0x61, count: 1 << 20).write(to: URL(fileURLWithPath: grant + "/old/existing.bin"))
    }

    private func budgetProfile(_ budget: String) throws -> String {
        try profile(
            extending: "minimal",
            """
            [permissions]
            execute = ["sh", "sleep", "\(Subprocess.hog)"]
            [filesystem_access]
            write_paths = ["\(grant)"]
            [resource_limits]
            max_disk_write = "\(budget)"
            max_execution_time = "60s"
            """)
    }

    private func open(_ path: String) throws -> FileDescriptor { try FileDescriptor.open(path, .readOnly) }

    private func project(_ path: String) throws -> (id: UInt32, inherits: Bool) {
        let fd = try open(path)
        defer { try? fd.close() }
        return try ProjectQuota.project(of: fd)
    }

    @Test("max_disk_write: a tool writing past its budget gets EDQUOT and is stopped (disk_write); the project's limit is put back")
    func budget() throws {
        defer { disk.remove() }
        let recordPath = directory + "/record.json"
        let result = try run(
            try budgetProfile("3M"), ["sh", "-c", "\(Subprocess.hog) write \(grant)/a 2 && \(Subprocess.hog) write \(grant)/b 4; sleep 30"], record: recordPath)
        #expect(result.status == 137, "\(result.output) \(result.stderr)")
        // The first file is written whole. The second write meets EDQUOT, and
        // the hog says so unless the supervisor, seeing the budget spent at
        // its next check, stops the tree first (both seen in the VM): the
        // sizes on the host below are the proof either way.
        #expect(result.output.hasPrefix("write: 2097152 bytes"), "\(result.output)")
        let rec = try record(recordPath)
        let limits = rec["limits"] as? [[String: Any]] ?? []
        #expect(limits.count == 1, "\(limits)")
        let event = try #require(limits.first { $0["resource"] as? String == "disk_write" }, "\(limits)")
        #expect(event["limit"] as? String == "3M" && event["unit"] as? String == "bytes", "\(event)")
        #expect((event["limitValue"] as? NSNumber)?.uint64Value == 3 << 20)
        let added = (event["observedValue"] as? NSNumber)?.uint64Value ?? 0
        #expect(added > 2 << 20 && added <= 3 << 20, "\(event)")
        // On the host: the first file whole, the second cut at the budget.
        let a = try FileManager.default.attributesOfItem(atPath: grant + "/a")[.size] as? UInt64 ?? 0
        let b = try FileManager.default.attributesOfItem(atPath: grant + "/b")[.size] as? UInt64 ?? 0
        #expect(a == 2 << 20 && b <= 1 << 20, "a \(a), b \(b)")
        let controls = rec["controls"] as? [[String: Any]] ?? []
        let row = try #require(controls.first { $0["control"] as? String == "disk write budget" }, "\(controls)")
        #expect(row["enforced"] as? Bool == true && (row["detail"] as? String ?? "").contains("hard limit"), "\(row)")

        // The tree is one project, numbered after the grant's inode, what was there before included.
        var st = stat()
        #expect(stat(grant, &st) == 0)
        let id = UInt32(truncatingIfNeeded: st.st_ino)
        for dir in [grant, grant + "/old"] {
            let p = try project(dir)
            #expect(p.id == id && p.inherits, "\(dir): \(p)")
        }
        #expect(try project(grant + "/old/existing.bin").id == id)
        #expect(try project(grant + "/b").id == id)
        #expect(access("/var/lib/burrow/disk-budgets/labelled-\(st.st_dev)-\(st.st_ino)", F_OK) == 0, "the finished walk is marked")
        // The limit is gone again, and so is the lease that kept the old one.
        let fd = try open(grant)
        defer { try? fd.close() }
        let usage = try ProjectQuota.usage(fd, project: id)
        #expect(usage.hardBlocks == 0 && usage.softBlocks == 0, "\(usage)")
        #expect(access("/var/lib/burrow/disk-budgets/\(st.st_dev)-\(id)", F_OK) != 0)

        // A second run finds the tree labelled and writes within its budget.
        let again = directory + "/again.json"
        let second = try run(try budgetProfile("2M"), ["sh", "-c", "\(Subprocess.hog) write \(grant)/c 1"], record: again)
        #expect(second.status == 0, "\(second.output) \(second.stderr)")
        #expect((try record(again)["limits"] as? [[String: Any]] ?? []).isEmpty)
        #expect(try ProjectQuota.usage(fd, project: id).hardBlocks == 0)
    }

    @Test("max_disk_write: a grant with a subtree in another project is refused before anything runs")
    func foreignProject() throws {
        defer { disk.remove() }
        let fd = try open(grant + "/old")
        try ProjectQuota.assign(fd, project: 4242, inherit: true)
        try fd.close()
        let result = try run(try budgetProfile("3M"), ["sh", "-c", "echo ran"])
        #expect(result.status == 125, "\(result.output) \(result.stderr)")
        #expect(!result.output.contains("ran"))
        #expect(result.stderr.contains("old belongs to project 4242, so its bytes would count elsewhere"), "\(result.stderr)")
        // The walk labels each directory before reading it, the grant first; with no
        // marker of a finished walk, the next run walks again, and refuses again.
        var st = stat()
        #expect(stat(grant, &st) == 0)
        #expect(access("/var/lib/burrow/disk-budgets/labelled-\(st.st_dev)-\(st.st_ino)", F_OK) != 0)
        let again = try run(try budgetProfile("3M"), ["sh", "-c", "echo ran"])
        #expect(again.status == 125 && again.stderr.contains("old belongs to project 4242"), "\(again.stderr)")
    }

    @Test("max_disk_write: the limits a killed supervisor left behind are put back by the next run")
    func abandonedLimitsAreRestored() throws {
        defer { disk.remove() }
        let profile = try budgetProfile("3M")
        let running = try Subprocess.start(
            [Subprocess.burrow, "run", "--profile", profile, "--quiet", "--", "sh", "-c", "echo started; sleep 60"], environment: burrowEnvironment,
            directory: directory)
        // Once the tool runs, the limit is in force; then the supervisor dies.
        let deadline = Date().addingTimeInterval(30)
        while !running.outputSoFar.contains("started") && Date() < deadline { usleep(20_000) }
        var st = stat()
        #expect(stat(grant, &st) == 0)
        let id = UInt32(truncatingIfNeeded: st.st_ino)
        let fd = try open(grant)
        defer { try? fd.close() }
        #expect(try ProjectQuota.usage(fd, project: id).hardBlocks > 0, "the budget's limit is set while the tool runs")
        kill(running.pid, SIGKILL)
        _ = try? running.finish()
        #expect(try ProjectQuota.usage(fd, project: id).hardBlocks > 0, "a SIGKILLed supervisor cannot put it back")

        let recordPath = directory + "/next.json"
        let next = try run(try budgetProfile("1M"), ["sh", "-c", "true"], record: recordPath)
        #expect(next.status == 0, "\(next.stderr)")
        // Any run restores it (another test's, running alongside, may be first); this one says so if it did.
        let notes = try record(recordPath)["notes"] as? [String] ?? []
        let restored = notes.filter { $0.contains("project \(id)'s limits") }
        #expect(restored.allSatisfy { $0.hasPrefix("max_disk_write: restored project \(id)'s limits on \(grant)") }, "\(notes)")
        #expect(try ProjectQuota.usage(fd, project: id).hardBlocks == 0)
        #expect(access("/var/lib/burrow/disk-budgets/\(st.st_dev)-\(id)", F_OK) != 0)
    }
}
