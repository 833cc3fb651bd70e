import BurrowProfile
import BurrowTestSupport
import Testing

@Suite("Profile loading")
struct ProfileLoaderTests {
    @Test func tomlAndJSONDecodeToTheSameModel() throws {
        let toml = """
            network_access = "restricted"
            env_whitelist = ["LANG"]
            [tool]
            id = "t"
            name = "Test"
            version = "1"
            trust_level = "verified"
            [permissions]
            file_read = ["/usr/share/**"]
            execute = ["python3"]
            network = ["example.com:443"]
            [permissions.process]
            fork = true
            max_processes = 10
            [resource_limits]
            max_memory = "128M"
            max_execution_time = "30s"
            [filesystem_access]
            scratch_size = "8M"
            """
        let json = """
            {"network_access": "restricted", "env_whitelist": ["LANG"],
             "tool": {"id": "t", "name": "Test", "version": "1", "trust_level": "verified"},
             "permissions": {"file_read": ["/usr/share/**"], "execute": ["python3"], "network": ["example.com:443"],
                             "process": {"fork": true, "max_processes": 10}},
             "resource_limits": {"max_memory": "128M", "max_execution_time": 30},
             "filesystem_access": {"scratch_size": 8388608}}
            """
        let loader = Fixtures.loader(["/p/a.toml": toml, "/p/a.json": json])
        let a = try #require(loader.load("/p/a.toml").profile)
        let b = try #require(loader.load("/p/a.json").profile)
        #expect(a == b)
        #expect(a.permissions.fileRead == [PathPattern(path: "/usr/share", subtree: true)])
        #expect(a.resourceLimits.maxMemory == .mebibytes(128))
        #expect(a.resourceLimits.maxExecutionTime == .seconds(30))
    }

    @Test func jsonUnknownKeyIsReported() {
        let loaded = Fixtures.loader(["/p/a.json": #"{"tool": {"id": "t", "name": "n", "version": "1", "trustlevel": "system"}}"#]).load("/p/a.json")
        #expect(loaded.errors.contains { $0.keyPath == "tool.trustlevel" && $0.message.contains("did you mean 'trust_level'?") })
    }

    @Test func extendsMergesTablesAndReplacesArrays() throws {
        let base = """
            env_whitelist = ["LANG"]
            [tool]
            id = "base"
            name = "Base"
            version = "1"
            [permissions]
            execute = ["python3"]
            file_read = ["/usr/lib/python3.11"]
            [resource_limits]
            max_memory = "64M"
            """
        let child = """
            extends = "base"
            [tool]
            id = "child"
            [permissions]
            file_read = ["/srv/data"]
            [resource_limits]
            max_cpu_time = "5s"
            """
        let loaded = Fixtures.loader(["/profiles/base.toml": base, "/p/child.toml": child]).load("/p/child.toml")
        let p = try #require(loaded.profile, "\(loaded.issues)")
        #expect(loaded.files == ["/p/child.toml", "/profiles/base.toml"])
        #expect(p.tool.id == "child")
        #expect(p.tool.name == "Base")
        #expect(p.permissions.execute.map(\.text) == ["python3"])
        #expect(p.permissions.fileRead.map(\.path) == ["/srv/data"])
        #expect(p.resourceLimits.maxMemory == .mebibytes(64))
        #expect(p.resourceLimits.maxCpuTime == .seconds(5))
        #expect(p.envWhitelist.map(\.text) == ["LANG"])
    }

    @Test func extendsPrefersTheExtendingFilesDirectory() throws {
        let files = [
            "/p/base.toml": Fixtures.profileTOML("description = \"near\""),
            "/profiles/base.toml": Fixtures.profileTOML("description = \"far\""),
            "/p/child.toml": "extends = \"base\"\n",
        ]
        let p = try #require(Fixtures.loader(files).load("/p/child.toml").profile)
        #expect(p.tool.description == "near")
    }

    @Test func errorsAreAttributedToTheFileThatHasTheKey() {
        let files = [
            "/profiles/base.toml": Fixtures.profileTOML("[resource_limits]\nmax_memory = \"4G\""),
            "/p/child.toml": "extends = \"base\"\n[permissions]\nfile_read = [\"relative\"]\n",
        ]
        let loaded = Fixtures.loader(files).load("/p/child.toml")
        #expect(loaded.errors.contains { $0.file == "/profiles/base.toml" && $0.keyPath == "resource_limits.max_memory" })
        #expect(loaded.errors.contains { $0.file == "/p/child.toml" && $0.keyPath == "permissions.file_read[0]" })
    }

    @Test func extendsCycleIsRefused() {
        let files = ["/p/a.toml": "extends = \"b\"\n", "/p/b.toml": "extends = \"a\"\n"]
        let loaded = Fixtures.loader(files).load("/p/a.toml")
        #expect(loaded.errors.contains { $0.message.contains("extends cycle: /p/a.toml -> /p/b.toml -> /p/a.toml") })
    }

    @Test func missingParentIsRefused() {
        let loaded = Fixtures.loader(["/p/a.toml": "extends = \"nope\"\n"]).load("/p/a.toml")
        #expect(loaded.errors.contains { $0.keyPath == "extends" && $0.message.contains("cannot find the profile 'nope'") })
    }

    @Test func inMemoryJSONDocumentsResolveExtendsInTheSearchPath() throws {
        let loader = Fixtures.loader(["/profiles/base.toml": Fixtures.profileTOML("[resource_limits]\nmax_memory = \"32M\"")])
        let loaded = loader.load(document: #"{"extends": "base", "tool": {"id": "api-tool"}}"#, format: .json, name: "request body")
        let p = try #require(loaded.profile, "\(loaded.issues)")
        #expect(p.tool.id == "api-tool")
        #expect(p.resourceLimits.maxMemory == .mebibytes(32))
        let bad = loader.load(document: #"{"tool": {"id": "x", "name": "n", "version": "1"}, "sandbox": "none"}"#, format: .json, name: "request body")
        #expect(bad.errors.contains { $0.file == "request body" && $0.keyPath == "sandbox" })
    }

    @Test func profileByNameUsesTheSearchPath() {
        let loaded = Fixtures.loader(["/profiles/x.toml": Fixtures.profileTOML()]).load("x")
        #expect(loaded.profile != nil)
        #expect(Fixtures.loader([:]).load("x").errors.first?.message.contains("no profile named 'x'") == true)
    }
}

@Suite("Host policy")
struct HostPolicyTests {
    @Test func defaultsMatchTheSpecification() {
        let p = HostPolicy.defaults
        #expect(p.policies.maxExecutionTime == .seconds(300))
        #expect(p.policies.maxMemory == .mebibytes(512))
        #expect(p.policies.maxFileSize == .mebibytes(100))
        #expect(p.policies.auditRetentionDays == 90)
        #expect(p.rateLimits.requestsPerMinute == 60)
        #expect(p.rateLimits.maxConcurrent == 5)
        #expect(p.rateLimits.registrationAttemptsPerHour == 10)
    }

    @Test func decodesEverySectionAndRejectsTypos() throws {
        let text = """
            [security]
            require_signatures = false
            min_trust_level = "community"
            default_sandbox = "container"
            [policies]
            max_execution_time = 60
            max_memory_mb = 256
            max_file_size_mb = 10
            network_policy = "none"
            audit_retention_days = 30
            [rate_limits]
            requests_per_minute = 5
            max_concurrent = 2
            registration_attempts_per_hour = 1
            [sandbox]
            id_range = "700000-700099"
            [audit]
            database = "/srv/audit/burrow.db"
            reader_group = "auditors"
            redact = ["corp-[0-9]+"]
            anomaly_threshold = 0
            anomaly_window = "5m"
            duration_threshold = "250ms"
            cpu_threshold = 2
            [daemon]
            warm_sandboxes = false
            warm_sandbox_idle = "2m"
            """
        let policy = try HostPolicy.decode(try ConfigValue.parse(text, format: .toml, file: "p.toml"), file: "p.toml")
        #expect(policy.audit.database == "/srv/audit/burrow.db" && policy.audit.readerGroup == "auditors" && policy.audit.redact == ["corp-[0-9]+"])
        #expect(policy.audit.anomalyThreshold == 0 && policy.audit.anomalyWindow == .seconds(300))
        #expect(policy.audit.durationThreshold == Seconds(milliseconds: 250) && policy.audit.cpuThreshold == .seconds(2))
        #expect(!policy.daemon.warmSandboxes && policy.daemon.warmSandboxIdle == .seconds(120) && HostPolicy().daemon.warmSandboxes)
        for bad in ["[audit]\ndatabase = \"relative.db\"", "[audit]\nanomaly_threshold = -1", "[audit]\nunknown = 1"] {
            #expect(throws: ProfileErrors.self, "\(bad)") { try HostPolicy.decode(try ConfigValue.parse(bad, format: .toml, file: "p.toml"), file: "p.toml") }
        }
        #expect(policy.security.minTrustLevel == .community)
        #expect(policy.policies.maxMemory == .mebibytes(256))
        #expect(policy.policies.networkPolicy == NetworkAccess.none)
        #expect(policy.sandbox.idRange == 700_000...700_099)

        #expect(throws: ProfileErrors.self) {
            try HostPolicy.decode(try ConfigValue.parse("[policies]\nmax_memroy_mb = 1", format: .toml, file: "p.toml"), file: "p.toml")
        }
    }

    @Test func clampFillsUnsetLimitsAndLowersNetwork() throws {
        var policy = HostPolicy.defaults
        policy.policies.networkPolicy = .none
        policy.security.defaultSandbox = .container
        let text = Fixtures.profileTOML(
            "[resource_limits]\nmax_memory = \"64M\"\n[permissions]\nnetwork = [\"example.com:443\"]", header: "network_access = \"restricted\"\nsandbox_level = \"process\"")
        let profile = try #require(Fixtures.loader(["/p/t.toml": text], policy: policy).load("/p/t.toml").profile)
        let effective = policy.clamp(profile)
        #expect(effective.limits.maxMemory == .mebibytes(64))
        #expect(effective.limits.maxExecutionTime == policy.policies.maxExecutionTime)
        #expect(effective.profile.networkAccess == .none)
        #expect(effective.profile.permissions.network.isEmpty)
        #expect(effective.profile.sandboxLevel == .container)
        let keys = effective.clamps.map(\.key)
        #expect(keys.contains("network_access"))
        #expect(keys.contains("sandbox_level"))
        #expect(keys.contains("resource_limits.max_execution_time"))
        #expect(!keys.contains("resource_limits.max_memory"))
        let net = try #require(effective.clamps.first { $0.key == "network_access" })
        #expect(net.requested == "restricted" && net.effective == "none")
    }
}
