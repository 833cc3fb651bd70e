import BurrowTestSupport
import Foundation
import Testing

@testable import BurrowCgroup

#if canImport(Glibc)
    import Glibc
#endif

/// The cgroup v2 code over a fake cgroupfs: a directory tree holding the
/// files the kernel would (nothing is created that the kernel would not
/// provide: writes never create files). What the kernel itself does with
/// the files is tested for real in the VM (CgroupV2Tests, ResourceLimitTests).
@Suite("BurrowCgroup on a fake cgroup v2 tree")
struct CgroupV2GroupTests {
    let root: String

    init() throws { root = try Subprocess.temporaryDirectory() }

    /// A cgroup directory with these files (name → content).
    func cgroup(_ path: String, _ files: [String: String] = [:]) throws -> String {
        let dir = root + "/" + path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, content) in files { try content.write(toFile: dir + "/" + name, atomically: false, encoding: .utf8) }
        return dir
    }

    func read(_ path: String) -> String { (try? String(contentsOfFile: root + "/" + path, encoding: .utf8)) ?? "<none>" }

    @Test func theRootCgroupIsNeverWrittenAndMustOfferTheControllers() throws {
        // No cgroup.type: the root of a cgroup2 mount.
        let own = try cgroup("host", ["cgroup.subtree_control": "cpu", "cgroup.procs": ""])
        let error = #expect(throws: CgroupError.self) { try CgroupV2Base.prepare(ownDirectory: own, controllers: ["cpu", "memory", "pids"]) }
        #expect("\(String(describing: error))".contains("lacks memory, pids"))
        #expect(read("host/cgroup.subtree_control") == "cpu", "the root is never written")
    }

    @Test func aDelegatedCgroupIsPreparedItsTasksMovedToSupervisor() throws {
        let own = try cgroup("unit", ["cgroup.type": "domain\n", "cgroup.subtree_control": "", "cgroup.procs": "\(getpid())\n"])
        _ = try cgroup("unit/supervisor", ["cgroup.procs": ""])
        _ = try cgroup("unit/tools", ["cgroup.subtree_control": ""])
        let base = try CgroupV2Base.prepare(ownDirectory: own, controllers: ["cpu", "memory", "pids"])
        #expect(read("unit/supervisor/cgroup.procs") == "\(getpid())")
        #expect(read("unit/cgroup.subtree_control") == "+cpu +memory +pids")
        #expect(read("unit/tools/cgroup.subtree_control") == "+cpu +memory +pids")
        #expect(base.setup.count == 3 && base.setup[0].hasPrefix("moved the supervisor"))
    }

    @Test func aCgroupSharedWithOtherProcessesIsRefusedNotTakenOver() throws {
        let own = try cgroup("shared", ["cgroup.type": "domain\n", "cgroup.subtree_control": "", "cgroup.procs": "1\n\(getpid())\n"])
        let error = #expect(throws: CgroupError.self) { try CgroupV2Base.prepare(ownDirectory: own, controllers: ["memory"]) }
        #expect("\(String(describing: error))".contains("also holds 1 process(es) Burrow did not start (e.g. pid 1)"))
        #expect(!FileManager.default.fileExists(atPath: root + "/shared/supervisor"), "nothing was moved")
    }

    @Test func anInvocationCgroupIsWrittenReadAndKilledThroughItsDirectory() throws {
        let own = try cgroup("svc", ["cgroup.type": "domain\n", "cgroup.subtree_control": "cpu memory pids"])
        _ = try cgroup("svc/tools", ["cgroup.subtree_control": "cpu memory pids"])
        let base = try CgroupV2Base.prepare(ownDirectory: own, controllers: ["cpu", "memory", "pids"])
        #expect(base.setup.isEmpty, "already prepared: nothing to do")
        _ = try cgroup(
            "svc/tools/inv-1",
            [
                "memory.max": "", "cgroup.kill": "", "cgroup.events": "populated 0\nfrozen 0\n", "cpu.stat": "usage_usec 1500\nuser_usec 1000\n",
                "memory.peak": "4096\n", "pids.peak": "3\n", "memory.events": "low 0\noom_kill 1\n", "pids.events": "max 2\n",
            ])
        let group = try CgroupV2Group.adopt(invocation: "inv-1", base: base)
        try group.write("memory.max", "1048576")
        #expect(read("svc/tools/inv-1/memory.max") == "1048576")
        let r = group.readings(peaks: true)
        #expect(r.cpuNanoseconds == 1_500_000 && r.peakMemoryBytes == 4096 && r.peakProcesses == 3 && r.oomKills == 1 && r.pidsMaxHits == 2)
        group.killAll()
        #expect(read("svc/tools/inv-1/cgroup.kill") == "1")
        #expect(group.waitEmpty(timeout: 1_000_000_000))
        #expect(base.invocations == ["inv-1"])
        // A write to a file the kernel does not offer fails, never creates it.
        #expect(throws: CgroupError.self) { try group.write("memory.high", "1") }
        // An invocation never reuses a cgroup.
        #expect(throws: CgroupError.self) { try CgroupV2Group.create(invocation: "inv-1", base: base) }
        let fresh = try CgroupV2Group.create(invocation: "inv-2", base: base)
        try fresh.remove()
        #expect(base.invocations == ["inv-1"])
    }
}
