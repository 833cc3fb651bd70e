import BurrowPolicy
import BurrowProfile
import BurrowSystem
import BurrowTestSupport
import Testing

/// Checks on the compiled BPF itself, not only on the rule list.
@Suite("Seccomp filter")
struct SeccompTests {
    struct Instruction: Equatable {
        var code: UInt16, jt: UInt8, jf: UInt8, k: UInt32
    }

    func instructions(_ plan: LaunchPlan) -> [Instruction] {
        let b = plan.seccomp.bpf.bytes
        var out: [Instruction] = []
        for i in stride(from: 0, to: b.count, by: 8) {
            let code = UInt16(b[i]) | UInt16(b[i + 1]) << 8
            var k: UInt32 = 0
            for j in 0..<4 { k |= UInt32(b[i + 4 + j]) << (8 * UInt32(j)) }
            out.append(Instruction(code: code, jt: b[i + 2], jf: b[i + 3], k: k))
        }
        return out
    }

    @Test("quiet refusals: an unknown call fails the plan, an allowed one is warned about, and the responder answers the rest with the planned errno, quietly")
    func quietRefusals() throws {
        let loader = ProfileLoader(policy: .defaults, searchPath: [Fixtures.profilesDirectory], read: Fixtures.readFile)
        var profile = try #require(loader.load("minimal").profile)
        let compiler = PlanCompiler(policy: .defaults, host: Fixtures.capableHost, fs: FakeFileSystem.debianLike, environment: [:], workingDirectory: "/")
        profile.permissions.quietRefusals = [QuietRefusal(syscall: "nosuchcall")]
        #expect(throws: PlanError.self) { try compiler.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: ["true"]) }
        profile.permissions.quietRefusals = [QuietRefusal(syscall: "read"), QuietRefusal(syscall: "mbind"), QuietRefusal(syscall: "socket", family: .netlink)]
        let plan = try compiler.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: ["true"])
        #expect(plan.warnings.contains { $0.contains("quiet_refusals \"read\"") }, "\(plan.warnings)")
        #expect(plan.seccomp.quietRefusals.map(\.description) == ["read", "mbind", "socket:AF_NETLINK"])
        let responder = SeccompResponder(plan: plan.seccomp)
        let mbind = try #require(SeccompResponder.number(of: "mbind"))
        let socket = try #require(SeccompResponder.number(of: "socket"))
        var loud = profile
        loud.permissions.quietRefusals = []
        let planned = SeccompResponder(plan: try compiler.compile(HostPolicy.defaults.clamp(loud), profileFiles: [], argv: ["true"]).seccomp)
        let quietMbind = responder.answer(syscall: mbind, arguments: [0, 0, 0, 0, 0, 0])
        let loudMbind = planned.answer(syscall: mbind, arguments: [0, 0, 0, 0, 0, 0])
        #expect(quietMbind.quiet && !loudMbind.quiet)
        #expect(quietMbind.errno == loudMbind.errno && quietMbind.reason == loudMbind.reason, "the same refusal: \(quietMbind) \(loudMbind)")
        let netlink = responder.answer(syscall: socket, arguments: [16, 3, 0, 0, 0, 0])
        let packet = responder.answer(syscall: socket, arguments: [17, 3, 0, 0, 0, 0])
        #expect(netlink.quiet && !packet.quiet, "only the named family")
        #expect(netlink.errno == packet.errno && netlink.reason == packet.reason, "refused exactly as planned")

        // What the dangerous list reports, and terminal injection, can never be quiet;
        // a quiet clone that asks for a namespace is loud all the same.
        for call in ["ptrace", "bpf", "unshare", "ioctl", "io_uring_setup"] {
            profile.permissions.quietRefusals = [QuietRefusal(syscall: call)]
            #expect(throws: PlanError.self, "\(call)") { try compiler.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: ["true"]) }
        }
        profile.permissions.process.fork = false
        profile.permissions.quietRefusals = [QuietRefusal(syscall: "clone")]
        let forkless = SeccompResponder(plan: try compiler.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: ["true"]).seccomp)
        let clone = try #require(SeccompResponder.number(of: "clone"))
        #expect(forkless.answer(syscall: clone, arguments: [17, 0, 0, 0, 0, 0]).quiet, "a plain fork-like clone (SIGCHLD)")
        #expect(!forkless.answer(syscall: clone, arguments: [0x1000_0000 | 17, 0, 0, 0, 0, 0]).quiet, "CLONE_NEWUSER stays loud")
        #expect(SeccompResponder.lookup("nosuchcall") == .unknown)
    }

    @Test("without Landlock the plan has no Landlock rules (a run refuses it), never rules with no rights")
    func noLandlock() throws {
        let loader = ProfileLoader(policy: .defaults, searchPath: [Fixtures.profilesDirectory], read: Fixtures.readFile)
        let profile = try #require(loader.load("minimal").profile)
        var host = Fixtures.capableHost
        host.landlockABI = nil
        host.landlock = .no("not in this kernel")
        let compiler = PlanCompiler(policy: .defaults, host: host, fs: FakeFileSystem.debianLike, environment: [:], workingDirectory: "/")
        let plan = try compiler.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: ["true"])
        #expect(plan.landlock.abi == nil && plan.landlock.pathRules.isEmpty && plan.landlock.handledFileSystem.isEmpty && plan.landlock.portRules.isEmpty)
        #expect(plan.controls.contains { $0.control == .landlock && !$0.enforceable } && !plan.isEnforceable)
    }

    @Test func checksArchitectureAndRefusesX32() throws {
        let plan = try compile(profile: "untrusted", argv: ["true"], cwd: "/")
        let prog = instructions(plan)
        #expect(prog.count == plan.seccomp.instructions)
        // ld [arch]; jeq AUDIT_ARCH_X86_64
        #expect(prog[0] == Instruction(code: 0x20, jt: 0, jf: 0, k: 4))
        #expect(prog[1].code == 0x15 && prog[1].k == 0xC000_003E)
        // x32 system call numbers (bit 30) fall to the bad-architecture action.
        #expect(prog.contains { $0.code == 0x35 && $0.k == 0x4000_0000 })
        #expect(prog.contains { $0.code == 0x06 && $0.k == 0x8000_0000 }, "KILL_PROCESS is present")
        #expect(plan.seccomp.badArchitectureAction == .killProcess)
    }

    @Test func ioctlComparesTheLow32BitsOnly() throws {
        let plan = try compile(profile: "minimal", argv: ["true"], cwd: "/")
        let tiocsti = try #require(plan.seccomp.rules.first { $0.syscall == "ioctl" && $0.conditions.first?.valueName == "TIOCSTI" })
        #expect(tiocsti.conditions.first?.mask == 0xffff_ffff)
        #expect(tiocsti.action == .notify(errno: 1))
        #expect(!plan.seccomp.allowed.contains("ioctl"), "ioctl must never be allowed unconditionally")
        #expect(plan.seccomp.rules.filter { $0.syscall == "ioctl" && $0.action == .allow }.allSatisfy { $0.conditions.first?.mask == 0xffff_ffff })
    }

    @Test func forkPermissionControlsClone() throws {
        let noFork = try compile(profile: "untrusted", argv: ["true"], cwd: "/").seccomp
        #expect(!noFork.allowed.contains("clone") && !noFork.allowed.contains("fork"))
        // Threads only: CLONE_THREAD set and no CLONE_NEW* flag, in one masked compare.
        let thread = try #require(noFork.rules.first { $0.syscall == "clone" && $0.action == .allow })
        #expect(thread.conditions.first?.value == 0x1_0000)
        #expect(thread.conditions.first?.mask == 0x1_0000 | 0x7e02_0080)
        let fork = try compile(profile: "minimal", argv: ["true"], cwd: "/").seccomp
        // With fork: processes, but clone never takes a CLONE_NEW* flag (no nested namespaces).
        #expect(!fork.allowed.contains("clone") && fork.allowed.contains("fork"))
        let process = try #require(fork.rules.first { $0.syscall == "clone" && $0.action == .allow })
        #expect(process.conditions.first?.value == 0 && process.conditions.first?.mask == 0x7e02_0080)
        #expect(fork.rules.contains { $0.syscall == "clone" && $0.action == .notify(errno: 1) && $0.conditions.isEmpty })
        #expect(fork.rules.contains { $0.syscall == "clone3" && $0.action == .errno(38) })
    }

    @Test func cachedFiltersAreKeyedByTheirRules() throws {
        let minimal = try compile(profile: "minimal", argv: ["true"], cwd: "/").seccomp
        let untrusted = try compile(profile: "untrusted", argv: ["true"], cwd: "/").seccomp
        #expect(minimal.bpf != untrusted.bpf, "different rule sets must not share a cached program")
        #expect(try compile(profile: "minimal", argv: ["true"], cwd: "/").seccomp.bpf == minimal.bpf)
        #expect(try compile(profile: "untrusted", argv: ["true"], cwd: "/").seccomp.bpf == untrusted.bpf)
    }

    @Test func noNetworkMeansUnixSocketsOnly() throws {
        let plan = try compile(profile: "minimal", argv: ["true"], cwd: "/")
        let socketAllows = plan.seccomp.rules.filter { $0.syscall == "socket" && $0.action == .allow }
        #expect(socketAllows.map { $0.conditions.first?.valueName } == ["AF_UNIX"])
    }

    @Test func dangerousCallsAreNotAllowed() throws {
        let plan = try compile(profile: "mcp-server-git", argv: ["git", "status"], cwd: "/")
        for call in [
            "bpf", "perf_event_open", "keyctl", "mount", "ptrace", "process_vm_readv", "kexec_load", "init_module", "userfaultfd", "open_by_handle_at", "io_uring_setup", "unshare", "setns",
            "memfd_create",
        ] {
            #expect(!plan.seccomp.allowed.contains(call), "\(call) must not be allowed")
        }
        #expect(plan.seccomp.defaultAction == .notify(errno: 38))
    }
}
