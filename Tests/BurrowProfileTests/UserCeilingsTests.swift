import BurrowProfile
import BurrowTestSupport
import Testing

/// `[users]`, `[daemon] runners` and `[audit] user_reads_own`: what an
/// unprivileged caller's own profile may get (the session socket).
@Suite("Users' ceilings")
struct UserCeilingsTests {
    func policy(_ text: String) throws -> HostPolicy {
        try HostPolicy.decode(try ConfigValue.parse(text, format: .toml, file: "p.toml"), file: "p.toml")
    }

    @Test func policyKeysParseAndBadOnesAreRefused() throws {
        let p = try policy(
            """
            [users]
            network_policy = "none"
            max_memory_mb = 64
            max_cpu_time = "30s"
            max_execution_time = "1m"
            max_processes = 8
            max_scratch_mb = 16
            allow_write = false
            max_concurrent = 2
            runs_per_minute = 10
            [daemon]
            runners = ["group:devs", "uid:1000"]
            socket = "/run/b/api.sock"
            [audit]
            user_reads_own = true
            """)
        #expect(p.users.networkPolicy == NetworkAccess.none && p.users.maxMemory == .mebibytes(64) && p.users.maxCpuTime == .seconds(30))
        #expect(p.users.maxExecutionTime == .seconds(60) && p.users.maxProcesses == 8 && p.users.maxScratch == .mebibytes(16))
        #expect(!p.users.allowWrite && p.users.maxConcurrent == 2 && p.users.runsPerMinute == 10)
        #expect(p.daemon.runners == [.group("devs"), .uid(1000)] && p.audit.userReadsOwn)
        #expect(p.daemon.sessionSocket == "/run/b/api-session.sock")
        #expect(HostPolicy.Daemon.sessionSocket(beside: "/run/b/api") == "/run/b/api-session")
        #expect(HostPolicy().daemon.runners == [.group("burrow")] && !HostPolicy().audit.userReadsOwn && HostPolicy().users.allowWrite)
        for bad in ["[users]\nmax_concurrent = 0", "[users]\nnetwork_policy = \"wide\"", "[users]\nallow_writes = true", "[daemon]\nrunners = [\"someone\"]"] {
            #expect(throws: ProfileErrors.self, "\(bad)") { try policy(bad) }
        }
    }

    @Test func ceilingsLowerLimitsNetworkAndWritesEachAsAClamp() throws {
        let text = Fixtures.profileTOML(
            """
            [resource_limits]
            max_memory = "256M"
            max_cpu_time = "10s"
            [permissions]
            network = ["example.com:443"]
            file_read = ["/srv/lib/**"]
            file_write = ["/srv/data/**", "/srv/out/**"]
            """, header: "network_access = \"restricted\"")
        let profile = try #require(Fixtures.loader(["/p/t.toml": text]).load("/p/t.toml").profile)
        let effective = HostPolicy.defaults.clamp(profile)
        var users = HostPolicy.Users()
        users.maxMemory = .mebibytes(64)
        users.maxCpuTime = .seconds(30)
        users.networkPolicy = .none
        users.allowWrite = false
        let clamped = users.clamp(effective)
        #expect(clamped.limits.maxMemory == .mebibytes(64), "lowered")
        #expect(clamped.limits.maxCpuTime == .seconds(10), "already below the ceiling: kept")
        #expect(clamped.profile.networkAccess == NetworkAccess.none && clamped.profile.permissions.network.isEmpty)
        #expect(clamped.profile.permissions.fileWrite.isEmpty && clamped.profile.filesystem.writePaths.isEmpty)
        #expect(clamped.profile.permissions.fileRead.map(\.description) == ["/srv/lib/**", "/srv/data/**", "/srv/out/**"], "writes become reads")
        let keys = clamped.clamps.dropFirst(effective.clamps.count).map(\.key)
        #expect(keys == ["resource_limits.max_memory", "network_access", "permissions.file_write"], "\(keys)")
        #expect(clamped.clamps.last?.reason.contains("[users] allow_write = false") == true)
        // Defaults change nothing a host-clamped profile has…
        #expect(HostPolicy.Users().clamp(effective) == effective)
        // …but level none, which a host may allow its own tools, is never a user's.
        var none = effective
        none.profile.sandboxLevel = .none
        let raised = HostPolicy.Users().clamp(none)
        #expect(raised.profile.sandboxLevel == .process && raised.clamps.last?.key == "sandbox_level")
    }
}
