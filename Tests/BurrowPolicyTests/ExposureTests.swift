import BurrowPolicy
import BurrowProfile
import BurrowTestSupport
import Testing

@Suite("Exposure score")
struct ExposureTests {
    @Test func untrustedBelowMinimalBelowFullNetwork() throws {
        let untrusted = try compile(profile: "untrusted", argv: ["true"], cwd: "/").exposure.score
        let minimal = try compile(profile: "minimal", argv: ["true"], cwd: "/").exposure.score
        let fullText = Fixtures.profileTOML(
            "trust_level = \"verified\"\n[permissions]\nexecute = [\"true\", \"sh\"]\nfile_write = [\"/home\"]\n[permissions.process]\nfork = true",
            header: "network_access = \"full\"")
        var policy = HostPolicy.defaults
        policy.policies.networkPolicy = .full
        let full = try #require(Fixtures.loader(["/p/full.toml": fullText], policy: policy).load("/p/full.toml").profile)
        let compiler = PlanCompiler(policy: policy, host: Fixtures.capableHost, fs: FakeFileSystem.debianLike, environment: [:], workingDirectory: "/")
        let fullPlan = try compiler.compile(policy.clamp(full), profileFiles: [], argv: ["true"])
        #expect(untrusted < minimal, "untrusted \(untrusted) must score below minimal \(minimal)")
        #expect(minimal < fullPlan.exposure.score, "minimal \(minimal) must score below full network \(fullPlan.exposure.score)")
        #expect(fullPlan.warnings.contains { $0.contains("full network access") })
        #expect(fullPlan.warnings.contains { $0.contains("write access to /home") })
        #expect(fullPlan.warnings.contains { $0.contains("interpreter /usr/bin/dash") })
        #expect((0...10).contains(fullPlan.exposure.score))
    }

    @Test func secretLookingReadsAreFlagged() throws {
        let text = Fixtures.profileTOML("[permissions]\nexecute = [\"true\"]\nfile_read = [\"/home/alice/.ssh\"]")
        let profile = try #require(Fixtures.loader(["/p/s.toml": text]).load("/p/s.toml").profile)
        let compiler = PlanCompiler(policy: .defaults, host: Fixtures.capableHost, fs: FakeFileSystem.debianLike, environment: [:], workingDirectory: "/")
        let plan = try compiler.compile(HostPolicy.defaults.clamp(profile), profileFiles: [], argv: ["true"])
        #expect(plan.warnings.contains { $0.contains("/home/alice/.ssh is readable") })
        #expect(plan.exposure.checks.first { $0.id == "filesystem-read" }?.exposure == 1)
    }
}
