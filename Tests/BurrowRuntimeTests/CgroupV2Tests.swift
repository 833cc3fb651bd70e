import BurrowSystem
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// How Burrow finds its place in a cgroup v2 tree (run by Scripts/vm-test.sh:
/// the host has no cgroup v2 controllers). Each test makes a cgroup of its
/// own beneath the test's cgroup and starts `burrow run` in it.
@Suite(.requires(.rootInInitialUserNamespace), .requires(.cgroupV2))
struct CgroupV2Tests: SandboxTesting {
    let directory: String
    /// A cgroup of this test's own, beneath the test runner's.
    let cgroup: String

    init() throws {
        try Requirement.cgroupV2.check()
        directory = try Self.makeDirectory()
        let layout = Requirement.host.cgroups
        let own = try #require(layout.v2OwnDirectory)
        cgroup = own + "/burrow-test-" + UUID().uuidString.prefix(8).lowercased()
        try #require(mkdir(cgroup, 0o755) == 0, "mkdir \(cgroup): \(errno)")
    }

    /// Runs `burrow run` (through sh) in the test's cgroup: `sh -c 'echo $$ > cgroup.procs; exec burrow …'`.
    func runInCgroup(record: String) throws -> Subprocess.Result {
        let script = "echo $$ > \"$1/cgroup.procs\" || exit 99; exec \"$2\" run --profile \"$3\" --json-result \"$4\" -- cat /proc/self/cgroup"
        return try Subprocess.run(["/bin/sh", "-c", script, "sh", cgroup, Subprocess.burrow, Fixtures.profilesDirectory + "/minimal.toml", record])
    }

    /// Removes the test's cgroup tree, children first (each empty by then).
    func removeTree() {
        _ = try? Subprocess.run(["/bin/sh", "-c", "find \"$1\" -depth -type d -exec rmdir {} + 2>/dev/null; true", "sh", cgroup])
    }

    @Test("alone in a delegated cgroup, burrow moves itself into supervisor/ and runs the tool in tools/<id>")
    func movesIntoSupervisorLeaf() throws {
        defer { removeTree() }
        let path = directory + "/record.json"
        let result = try runInCgroup(record: path)
        #expect(result.status == 0, "\(result.stderr)")
        let record = try record(path)
        let cgroupRecord = try #require(record["cgroup"] as? [String: Any])
        #expect(cgroupRecord["version"] as? Int == 2)
        let setup = cgroupRecord["setup"] as? [String] ?? []
        #expect(setup.contains { $0.hasPrefix("moved the supervisor") }, "\(setup) \(result.stderr)")
        let paths = try #require(cgroupRecord["paths"] as? [String])
        let invocation = try #require(record["invocationID"] as? String)
        #expect(paths == [cgroup + "/tools/" + invocation])
        #expect(access(paths[0], F_OK) != 0, "removed after the run")
        // Born in its cgroup (CLONE_INTO_CGROUP) with its own cgroup namespace: it sees "/".
        #expect(result.output == "0::/\n", "\(result.output)")
        let enabled = try String(contentsOfFile: cgroup + "/tools/cgroup.subtree_control", encoding: .utf8)
        for controller in ["cpu", "memory", "pids"] { #expect(enabled.contains(controller), "\(enabled)") }
    }

    @Test("a cgroup shared with processes burrow did not start is refused, not taken over")
    func refusesSharedCgroup() throws {
        defer { removeTree() }
        // A process of this test's that stays in the cgroup: burrow must not move it.
        let sibling = try Subprocess.start(["/bin/sleep", "600"])
        defer {
            kill(sibling.pid, SIGKILL)
            _ = try? sibling.finish()
        }
        try "\(sibling.pid)".write(toFile: cgroup + "/cgroup.procs", atomically: false, encoding: .utf8)
        let result = try runInCgroup(record: directory + "/refused.json")
        #expect(result.status == 125, "\(result.output) \(result.stderr)")
        #expect(result.stderr.contains("process(es) Burrow did not start (e.g. pid \(sibling.pid))"), "\(result.stderr)")
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: cgroup)) ?? []
        #expect(!entries.contains("supervisor") && !entries.contains("tools"), "nothing was created: \(entries)")
        let procs = try String(contentsOfFile: cgroup + "/cgroup.procs", encoding: .utf8)
        #expect(procs == "\(sibling.pid)\n", "the sibling stays where it was, alone: \(procs)")
    }
}
