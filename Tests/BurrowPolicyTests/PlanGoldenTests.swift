import BurrowPolicy
import BurrowProfile
import BurrowSystem
import BurrowTestSupport
import FoundationEssentials
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Compiles shipped profiles against a fixed fake host and compares the
/// dry-run JSON with Golden/<profile>.json. Set BURROW_UPDATE_GOLDEN=1 to
/// rewrite the files after an intended change, and review the diff.
@Suite("Dry-run golden plans")
struct PlanGoldenTests {
    static let cases: [(profile: String, argv: [String], cwd: String)] = [
        ("minimal", ["sh", "-c", "echo hi"], "/"),
        ("untrusted", ["true"], "/"),
        ("mcp-server-git", ["/opt/burrow/venvs/mcp-server-git/bin/python3", "-m", "mcp_server_git", "--repository", "/srv/burrow/repo"], "/srv/burrow/repo"),
    ]

    @Test(arguments: cases.map(\.profile))
    func matchesGolden(_ name: String) throws {
        let c = try #require(Self.cases.first { $0.profile == name })
        let json = try goldenPlanJSON(profile: c.profile, argv: c.argv, cwd: c.cwd)
        let path = Fixtures.repositoryRoot + "/Tests/BurrowPolicyTests/Golden/\(name).json"
        if getenv("BURROW_UPDATE_GOLDEN") != nil {
            let f = try #require(fopen(path, "w"))
            fputs(json + "\n", f)
            fclose(f)
        }
        let golden = try #require(Fixtures.readFile(path), "missing \(path): run with BURROW_UPDATE_GOLDEN=1")
        #expect(json + "\n" == golden, "dry-run JSON for \(name) differs from \(path)")
    }

    @Test func planRoundTripsThroughJSON() throws {
        var plan = try compile(profile: "mcp-server-git", argv: ["git", "status"], cwd: "/srv/burrow/repo")
        let data = try JSONEncoder().encode(plan)
        #expect(try JSONDecoder().decode(LaunchPlan.self, from: data) == plan)
        // As burrowd sends it to an unprivileged dry-run: with the caller its binds are checked as.
        plan.spec.grantsCheckedAs = CallerCredentials(uid: 1000, gid: 1000, groups: [27, 1000])
        #expect(try JSONDecoder().decode(LaunchPlan.self, from: try JSONEncoder().encode(plan)) == plan)
    }

    @Test func commandOutsideExecuteIsRefused() throws {
        #expect(throws: PlanError.self) { try compile(profile: "untrusted", argv: ["sh", "-c", "id"], cwd: "/") }
        let error = #expect(throws: PlanError.self) { try compile(profile: "untrusted", argv: ["cat", "/etc/shadow"], cwd: "/") }
        #expect(error?.description.contains("is not granted by permissions.execute") == true, "\(String(describing: error))")
    }

    @Test func gitPlanBindsTheRepositoryWritableAndMasksHooks() throws {
        let plan = try compile(profile: "mcp-server-git", argv: ["git", "status"], cwd: "/srv/burrow/repo")
        let repo = try #require(plan.mounts.first { $0.target == "/srv/burrow/repo" })
        #expect(repo.kind == .bind && repo.options.readOnly == false && repo.options.flags.contains(.noExecute))
        #expect(plan.mounts.contains { $0.kind == .mask && $0.target == "/srv/burrow/repo/.git/hooks" })
        #expect(plan.command.workingDirectory == "/srv/burrow/repo")
        #expect(plan.command.executable == "/usr/bin/git")
        #expect(plan.namespaces.map(\.kind) == [.user, .pid, .mount, .ipc, .uts, .cgroup, .net])
        #expect(plan.cgroup.version == 2)
        #expect(plan.cgroup.writes.contains { $0.file == "memory.max" && $0.value == "\(256 << 20)" })
        #expect(plan.mounts.last?.kind == .remount)
        #expect(plan.isEnforceable)
    }

    @Test func sandboxLevelNoneKeepsOnlyRlimitsAndCapabilityDrop() throws {
        var policy = HostPolicy.defaults
        policy.security.defaultSandbox = .none
        let text = Fixtures.profileTOML("trust_level = \"system\"\n[permissions]\nexecute = [\"true\"]", header: "sandbox_level = \"none\"")
        let profile = try #require(Fixtures.loader(["/p/sys.toml": text], policy: policy).load("/p/sys.toml").profile)
        let compiler = PlanCompiler(policy: policy, host: Fixtures.capableHost, fs: FakeFileSystem.debianLike, environment: [:], workingDirectory: "/")
        let plan = try compiler.compile(policy.clamp(profile), profileFiles: [], argv: ["true"])
        #expect(plan.namespaces.isEmpty && plan.mounts.isEmpty)
        #expect(plan.seccomp.bpf.bytes.isEmpty && plan.landlock.pathRules.isEmpty)
        #expect(plan.capabilities.noNewPrivileges && plan.capabilities.kept.isEmpty)
        #expect(!plan.controls.contains { if case .namespace = $0.control { true } else { false } })
        #expect(plan.exposure.checks.first { $0.id == "sandbox-level" }?.exposure == 1)
        // The default policy raises the level back to process, and says so.
        let clamped = HostPolicy.defaults.clamp(profile)
        #expect(clamped.profile.sandboxLevel == .process && clamped.clamps.contains { $0.key == "sandbox_level" })
    }

    @Test func symlinkGrantsAreRecreated() throws {
        let plan = try compile(profile: "mcp-server-time", argv: ["python3", "-m", "mcp_server_time"], cwd: "/")
        let link = try #require(plan.mounts.first { $0.target == "/etc/localtime" })
        #expect(link.kind == .symlink && link.source == "/usr/share/zoneinfo/Etc/UTC")
        #expect(!plan.landlock.pathRules.contains { $0.path == "/etc/localtime" })
        #expect(!plan.warnings.contains { $0.contains("/etc/localtime") })
    }

    @Test func landlockRulesOnFilesCarryOnlyFileRights() throws {
        let plan = try compile(profile: "minimal", argv: ["true"], cwd: "/")
        let files = plan.landlock.pathRules.filter { $0.path.hasPrefix("/etc/") || $0.path.hasPrefix("/dev/") || plan.command.allowedExecutables.contains($0.path) }
        #expect(files.count >= 7)
        for rule in files {
            #expect(rule.access.isSubset(of: [.execute, .writeFile, .readFile, .truncate, .ioctlDev]), "\(rule.path): \(rule.access)")
        }
        #expect(plan.landlock.pathRules.first { $0.path == "/tmp" }?.access.contains(.makeReg) == true)
    }

    @Test func restrictedNetworkIsEnforceableWhenTheSandboxHasItsOwnNetwork() throws {
        let plan = try compile(profile: "mcp-server-fetch", argv: ["python3", "-c", "1"], cwd: "/")
        #expect(plan.isEnforceable)
        #expect(plan.network.allowlist.contains("*.wikipedia.org:443"))
        #expect(plan.landlock.portRules.map(\.port) == [3128], "TCP connect only to the proxy inside the sandbox")
    }

    @Test func callerEnvironmentIsFilteredByTheWhitelist() throws {
        let plan = try compile(profile: "minimal", argv: ["true"], cwd: "/", environment: ["LANG": "C.UTF-8", "AWS_SECRET_ACCESS_KEY": "x", "LD_PRELOAD": "/evil.so", "PATH": "/evil"])
        #expect(plan.environment.map(\.name) == ["PATH", "HOME", "TMPDIR", "LANG"])
        #expect(plan.environment.first { $0.name == "PATH" }?.value == "/usr/local/bin:/usr/bin:/bin")
    }
}

func compile(profile: String, argv: [String], cwd: String, environment: [String: String] = ["LANG": "C.UTF-8", "HOME": "/root", "SECRET_TOKEN": "s3cr3t"]) throws -> LaunchPlan {
    let loader = ProfileLoader(policy: .defaults, searchPath: [Fixtures.profilesDirectory], read: Fixtures.readFile)
    let loaded = loader.load(profile)
    let parsed = try #require(loaded.profile, "\(loaded.issues)")
    let compiler = PlanCompiler(policy: .defaults, host: Fixtures.capableHost, fs: FakeFileSystem.debianLike, environment: environment, workingDirectory: cwd)
    var plan = try compiler.compile(HostPolicy.defaults.clamp(parsed), profileFiles: loaded.files, argv: argv)
    // Golden files must not depend on where the checkout lives.
    plan.profileFiles = plan.profileFiles.map { String($0.dropFirst(Fixtures.repositoryRoot.count + 1)) }
    return plan
}

func goldenPlanJSON(profile: String, argv: [String], cwd: String) throws -> String {
    let plan = try compile(profile: profile, argv: argv, cwd: cwd)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(plan), as: UTF8.self)
}

@Suite("Kernel values in the plan")
struct PlanKernelValueTests {
    @Test func mountOptionsRoundTripThroughTheirNames() throws {
        let options = MountOptions(readOnly: false, [.noSetuid, .noDevices, .noExecute], mode: 0o1777, size: .mebibytes(8), inodes: 1024)
        #expect(options.names == ["rw", "nosuid", "nodev", "noexec", "mode=1777", "size=8M", "nr_inodes=1024"])
        #expect(options.kernelFlags == 2 | 4 | 8 && options.fileSystemData == "mode=1777,size=8M,nr_inodes=1024")
        let read = try JSONDecoder().decode(MountOptions.self, from: try JSONEncoder().encode(options))
        #expect(read == options)
        // A name that is no mount option is refused, never dropped.
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(MountOptions.self, from: Data(#"["ro", "nosuid", "nosymfollow"]"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(LandlockFileAccess.self, from: Data(#"["READ_FILE", "READ_EVERYTHING"]"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(RlimitResource.self, from: Data(#""RLIMIT_MEMLOCK""#.utf8)) }
    }

    @Test func landlockRightsAreTheKernelsBits() {
        // <linux/landlock.h>: LANDLOCK_ACCESS_FS_EXECUTE (1ULL << 0) ... IOCTL_DEV (1ULL << 15).
        #expect(LandlockFileAccess.execute.rawValue == 1 && LandlockFileAccess.refer.rawValue == 1 << 13 && LandlockFileAccess.ioctlDev.rawValue == 1 << 15)
        #expect(LandlockFileAccess.names.enumerated().allSatisfy { $0.element.flag.rawValue == 1 << UInt64($0.offset) })
        #expect(LandlockFileAccess.known(abi: 1).rawValue == (1 << 13) - 1 && LandlockFileAccess.known(abi: 5).contains(.ioctlDev))
        #expect(LandlockNetAccess.connectTCP.rawValue == 2 && LandlockScope.signal.rawValue == 2)
        #expect(Securebits.noCapAmbientRaiseLocked.rawValue == 1 << 7)
    }
}

@Suite("The plan's three values")
struct PlanValuesTests {
    func plan(argv: [String], environment: [String: String] = ["LANG": "C.UTF-8"], deadline: Seconds? = nil) throws -> LaunchPlan {
        let loader = ProfileLoader(policy: .defaults, searchPath: [Fixtures.profilesDirectory], read: Fixtures.readFile)
        let parsed = try #require(loader.load("minimal").profile)
        let compiler = PlanCompiler(policy: .defaults, host: Fixtures.capableHost, fs: FakeFileSystem.debianLike, environment: environment, workingDirectory: "/")
        return try compiler.compile(HostPolicy.defaults.clamp(parsed), profileFiles: [], argv: argv, deadline: deadline)
    }

    @Test func aRequestChangesItsExecNotTheSpec() throws {
        let base = try plan(argv: ["sh", "-c", "true"])
        let other = try plan(argv: ["sh", "-c", "echo hi"], environment: ["LANG": "C", "LC_ALL": "C"], deadline: .seconds(3))
        #expect(other.sameSandbox(as: base), "argv, environment and deadline reach only execve and the supervisor")
        #expect(other.exec != base.exec && other.exec.deadline == .seconds(3) && other.limits.maxExecutionTime == .seconds(3))
        #expect(other.spec.limits.maxExecutionTime == base.spec.limits.maxExecutionTime, "the spec keeps the tool's own deadline")
        #expect(other.clamps.contains { $0.key == "resource_limits.max_execution_time" && $0.reason == "the request's timeoutSeconds" })
        // Another executable is another sandbox (the held child was told its path).
        #expect(!(try plan(argv: ["cat"])).sameSandbox(as: base))
        var edited = base
        edited.spec.mounts.append(MountEntry(kind: .tmpfs, target: "/srv", options: MountOptions(readOnly: false, mode: 0o755), reason: "test"))
        #expect(!edited.sameSandbox(as: base))
    }

    @Test func theJSONStaysFlatAndReadsBack() throws {
        let original = try plan(argv: ["sh", "-c", "true"], deadline: .seconds(5))
        let read = try JSONDecoder().decode(LaunchPlan.self, from: try JSONEncoder().encode(original))
        #expect(read.exec == original.exec && read.report == original.report && read.command == original.command)
        #expect(read.cgroup == original.cgroup && read.mounts == original.mounts && read.landlock == original.landlock)
    }
}

@Suite("Disk write budget in the plan")
struct DiskWriteBudgetPlanTests {
    private func plan(quota: HostFacts.Check?) throws -> LaunchPlan {
        let text = """
            extends = "minimal"
            [tool]
            id = "w"
            name = "W"
            version = "1"
            [permissions]
            execute = ["sh"]
            [filesystem_access]
            write_paths = ["/srv/burrow/repo"]
            [resource_limits]
            max_disk_write = "10M"
            """
        let loader = ProfileLoader(policy: .defaults, searchPath: [Fixtures.profilesDirectory], read: Fixtures.readFile)
        let loaded = loader.load(document: text, format: .toml, name: "w.toml")
        let parsed = try #require(loaded.profile, "\(loaded.issues)")
        var fs = FakeFileSystem.debianLike
        if let quota { fs.projectQuotas["/srv/burrow/repo"] = quota }
        let compiler = PlanCompiler(policy: .defaults, host: Fixtures.capableHost, fs: fs, environment: [:], workingDirectory: "/")
        return try compiler.compile(HostPolicy.defaults.clamp(parsed), profileFiles: loaded.files, argv: ["sh"])
    }

    @Test func everyWriteGrantNeedsProjectQuotas() throws {
        let bounded = try plan(quota: .yes("project quotas enforced on /srv/burrow/repo's ext4"))
        let row = try #require(bounded.controls.first { $0.control == .diskWriteBudget })
        #expect(row.enforceable && row.requested == "10M added under the write grants" && row.detail.hasPrefix("project quotas enforced on /srv/burrow/repo's ext4; "), "\(row)")
        #expect(bounded.limits.maxDiskWrite == .mebibytes(10))
        #expect(bounded.report.supervised.contains { $0.hasPrefix("max_disk_write 10M: project quota hard limit") })
        let unbounded = try plan(quota: nil)
        let refused = try #require(unbounded.controls.first { $0.control == .diskWriteBudget })
        #expect(!refused.enforceable && refused.detail == "/srv/burrow/repo is on a fake file system without project quotas", "\(refused)")
    }

    @Test func aBudgetWithoutWriteGrantsIsAWarning() {
        let loader = ProfileLoader(policy: .defaults, searchPath: [Fixtures.profilesDirectory], read: Fixtures.readFile)
        let loaded = loader.load(document: "[tool]\nid = \"x\"\nname = \"X\"\nversion = \"1\"\n[resource_limits]\nmax_disk_write = \"5M\"\n", format: .toml, name: "x.toml")
        #expect(loaded.profile?.resourceLimits.maxDiskWrite == .mebibytes(5))
        #expect(loaded.issues.map(\.message) == ["bounds what a run adds under its write grants, and this profile has none"], "\(loaded.issues)")
    }
}
