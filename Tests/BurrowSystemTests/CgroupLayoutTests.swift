import BurrowSystem
import BurrowTestSupport
import Testing

@Suite("cgroup layout")
struct CgroupLayoutTests {
    @Test func hybridHost() {
        let mountinfo = """
            31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
            32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
            39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
            """
        let cgroup = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n"
        let layout = CgroupLayout.parse(mountinfo: mountinfo, procSelfCgroup: cgroup)
        #expect(layout.mode == .hybrid)
        #expect(layout.v2OwnDirectory == "/sys/fs/cgroup/unified")
        #expect(layout.v1Hierarchy(for: "memory")?.ownDirectory == "/sys/fs/cgroup/memory/process_api/abc")
        #expect(layout.v1Hierarchy(for: "pids")?.ownDirectory == "/sys/fs/cgroup/pids")
        #expect(layout.v1Hierarchy(for: "name=systemd") != nil)
    }

    @Test func unifiedHostUnderSystemd() {
        let mountinfo = "25 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
        let layout = CgroupLayout.parse(mountinfo: mountinfo, procSelfCgroup: "0::/system.slice/burrowd.service\n")
        #expect(layout.mode == .unified)
        #expect(layout.v2OwnDirectory == "/sys/fs/cgroup/system.slice/burrowd.service")
        #expect(layout.v1.isEmpty)
    }

    @Test func escapedMountPoints() {
        let mountinfo = #"41 31 0:38 / /sys/fs/cgroup/with\040space rw - cgroup2 cgroup2 rw"#
        #expect(CgroupLayout.parse(mountinfo: mountinfo, procSelfCgroup: "0::/\n").v2MountPoint == "/sys/fs/cgroup/with space")
    }
}

@Suite("Host probe")
struct HostProbeTests {
    @Test(.requires(.rootInInitialUserNamespace))
    func rootHostCreatesEveryNamespace() throws {
        try Requirement.rootInInitialUserNamespace.check()
        let facts = HostFacts.probe()
        for kind in [NamespaceKind.user, .pid, .mount, .ipc, .uts, .cgroup, .net] {
            #expect(facts.namespaces[kind]?.available == true, "\(kind): \(facts.namespaces[kind]?.detail ?? "-")")
        }
        #expect(facts.namespacesTogether.available, "\(facts.namespacesTogether.detail)")
        #expect(facts.pidfd.available)
        #expect(facts.capLastCap >= 37)
    }

    @Test func probeDoesNotChangeThisProcess() throws {
        let before = try String(contentsOfProcFile: "/proc/self/status")
        _ = HostFacts.probe()
        let after = try String(contentsOfProcFile: "/proc/self/status")
        for field in ["NoNewPrivs:", "Seccomp:", "CapEff:", "CapBnd:", "Uid:"] {
            #expect(line(field, before) == line(field, after), "\(field) changed")
        }
    }

    private func line(_ field: String, _ text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(field) }.map(String.init)
    }
}

extension String {
    init(contentsOfProcFile path: String) throws {
        guard let text = Fixtures.readFile(path) else { throw RequirementUnmet(description: "cannot read \(path)") }
        self = text
    }
}
