import BurrowProfile
import BurrowTestSupport
import Testing

/// One case per validation rule: the document, the key path and a phrase the message must contain.
struct ValidationCase: Sendable, CustomTestStringConvertible {
    var rule: String
    var header: String = ""
    var body: String = ""
    var keyPath: String
    var message: String
    var testDescription: String { rule }
}

@Suite("Profile validation rules")
struct ValidationTests {
    static let cases: [ValidationCase] = [
        ValidationCase(rule: "unknown top-level key", header: "premissions = 1", keyPath: "premissions", message: "unknown key 'premissions' (did you mean 'permissions'?)"),
        ValidationCase(rule: "unknown nested key", body: "[resource_limits]\nmax_memroy = \"1M\"", keyPath: "resource_limits.max_memroy", message: "did you mean 'max_memory'?"),
        ValidationCase(rule: "top-level key inside a table", body: "sandbox_level = \"process\"", keyPath: "tool.sandbox_level", message: "is a top-level key"),
        ValidationCase(rule: "wrong type", body: "[permissions]\nfile_read = \"/etc\"", keyPath: "permissions.file_read", message: "expected an array of strings, found a string"),
        ValidationCase(rule: "relative path", body: "[permissions]\nfile_read = [\"etc/passwd\"]", keyPath: "permissions.file_read[0]", message: "path must be absolute"),
        ValidationCase(rule: "non-normalised path", body: "[permissions]\nfile_read = [\"/usr//lib/\"]", keyPath: "permissions.file_read[0]", message: "path is not normalised: write '/usr/lib'"),
        ValidationCase(rule: "dot-dot", body: "[permissions]\nfile_read = [\"/srv/../etc\"]", keyPath: "permissions.file_read[0]", message: "'..' is not allowed"),
        ValidationCase(
            rule: "wildcard in the middle", body: "[permissions]\nfile_read = [\"/home/*/x\"]", keyPath: "permissions.file_read[0]", message: "wildcards are only allowed as a trailing '/**'"),
        ValidationCase(
            rule: "write inside blocked", body: "[permissions]\nfile_write = [\"/srv/a/b\"]\n[filesystem_access]\nblocked_paths = [\"/srv/a\"]", keyPath: "permissions.file_write[0]",
            message: "lies inside blocked path '/srv/a'"),
        ValidationCase(
            rule: "read inside blocked", body: "[permissions]\nfile_read = [\"/etc/ssh\"]\n[filesystem_access]\nblocked_paths = [\"/etc\"]", keyPath: "permissions.file_read[0]",
            message: "it would be masked"),
        ValidationCase(rule: "write to root", body: "[permissions]\nfile_write = [\"/\"]", keyPath: "permissions.file_write[0]", message: "whole host writable"),
        ValidationCase(rule: "zero limit", body: "[resource_limits]\nmax_memory = \"0M\"", keyPath: "resource_limits.max_memory", message: "must be greater than zero"),
        ValidationCase(rule: "zero count", body: "[resource_limits]\nmax_open_files = 0", keyPath: "resource_limits.max_open_files", message: "must be greater than zero"),
        ValidationCase(
            rule: "limit above policy", body: "[resource_limits]\nmax_memory = \"2G\"", keyPath: "resource_limits.max_memory",
            message: "2G exceeds the host policy maximum of 512M ([policies] max_memory_mb)"),
        ValidationCase(
            rule: "time above policy", body: "[resource_limits]\nmax_execution_time = \"10m\"", keyPath: "resource_limits.max_execution_time", message: "exceeds the host policy maximum of 5m"),
        ValidationCase(rule: "malformed size", body: "[resource_limits]\nmax_memory = \"12MB\"", keyPath: "resource_limits.max_memory", message: "expected a size such as \"512M\""),
        ValidationCase(rule: "malformed duration", body: "[resource_limits]\nmax_cpu_time = \"ten\"", keyPath: "resource_limits.max_cpu_time", message: "expected a duration such as \"30s\""),
        ValidationCase(rule: "unknown sandbox level", header: "sandbox_level = \"jail\"", keyPath: "sandbox_level", message: "unknown value 'jail'; expected one of: none, process, container, vm"),
        ValidationCase(rule: "unknown network access", header: "network_access = \"some\"", keyPath: "network_access", message: "expected one of: none, restricted, full"),
        ValidationCase(
            rule: "malformed host", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"exa_mple.com:443\"]", keyPath: "permissions.network[0]",
            message: "malformed host name"),
        ValidationCase(
            rule: "connections above the policy", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"example.com:443\"]\n[resource_limits]\nmax_connections = 100000",
            keyPath: "resource_limits.max_connections", message: "exceeds the host policy maximum of 64"),
        ValidationCase(rule: "missing port", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"example.com\"]", keyPath: "permissions.network[0]", message: "needs a port"),
        ValidationCase(
            rule: "port out of range", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"example.com:70000\"]", keyPath: "permissions.network[0]",
            message: "malformed port '70000'"),
        ValidationCase(
            rule: "inverted port range", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"example.com:90-80\"]", keyPath: "permissions.network[0]",
            message: "malformed port '90-80'"),
        ValidationCase(
            rule: "numeric host", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"2130706433:80\"]", keyPath: "permissions.network[0]", message: "non-standard notation"),
        ValidationCase(
            rule: "hex host", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"0x7f.1:80\"]", keyPath: "permissions.network[0]", message: "non-standard notation"),
        ValidationCase(
            rule: "uppercase host", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"Example.com:443\"]", keyPath: "permissions.network[0]",
            message: "write 'example.com' in lowercase"),
        ValidationCase(
            rule: "too broad wildcard", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"*.com:443\"]", keyPath: "permissions.network[0]", message: "too broad"),
        ValidationCase(
            rule: "non-canonical IPv6", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"[2001:DB8:0::1]:443\"]", keyPath: "permissions.network[0]",
            message: "write '2001:db8::1'"),
        ValidationCase(
            rule: "name below .localhost", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"app.localhost:8080\"]", keyPath: "permissions.network[0]",
            message: "names below .localhost are loopback"),
        ValidationCase(
            rule: "multicast address", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"239.1.2.3:443\"]", keyPath: "permissions.network[0]",
            message: "can never be reached: 224.0.0.0/4 is multicast"),
        ValidationCase(
            rule: "this-network range", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"0.0.0.0/8:80\"]", keyPath: "permissions.network[0]",
            message: "can never be reached"),
        ValidationCase(
            rule: "unspecified IPv6", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"[::]:80\"]", keyPath: "permissions.network[0]",
            message: "unspecified address"),
        ValidationCase(
            rule: "quiet refusal that is no call name", body: "[permissions]\nquiet_refusals = [\"Mbind\"]", keyPath: "permissions.quiet_refusals[0]",
            message: "is not a system call name"),
        ValidationCase(
            rule: "quiet refusal with a family on another call", body: "[permissions]\nquiet_refusals = [\"mbind:AF_INET\"]", keyPath: "permissions.quiet_refusals[0]",
            message: "only socket and socketpair take an address family"),
        ValidationCase(
            rule: "quiet refusal with an unknown family", body: "[permissions]\nquiet_refusals = [\"socket:AF_FOO\"]", keyPath: "permissions.quiet_refusals[0]",
            message: "unknown address family 'AF_FOO'"),
        ValidationCase(rule: "LD_ variable", header: "env_whitelist = [\"LD_PRELOAD\"]", keyPath: "env_whitelist[0]", message: "'LD_PRELOAD' may not be passed to a tool"),
        ValidationCase(rule: "prefix covering LD_", header: "env_whitelist = [\"L*\"]", keyPath: "env_whitelist[0]", message: "may not be passed"),
        ValidationCase(rule: "whole environment", header: "env_whitelist = [\"*\"]", keyPath: "env_whitelist[0]", message: "would pass the whole environment"),
        ValidationCase(rule: "duplicate grant", body: "[permissions]\nfile_read = [\"/srv\", \"/srv/**\"]", keyPath: "permissions.file_read[1]", message: "duplicate grant"),
        ValidationCase(
            rule: "read and write of one path", body: "[permissions]\nfile_read = [\"/srv\"]\nfile_write = [\"/srv\"]", keyPath: "permissions.file_write[0]", message: "granted for both reading"),
        ValidationCase(rule: "targets without network", body: "[permissions]\nnetwork = [\"example.com:443\"]", keyPath: "permissions.network[0]", message: "network_access is 'none'"),
        ValidationCase(
            rule: "targets with full network", header: "network_access = \"full\"", body: "[permissions]\nnetwork = [\"example.com:443\"]", keyPath: "permissions.network[0]",
            message: "which allows everything"),
        ValidationCase(rule: "restricted without targets", header: "network_access = \"restricted\"", keyPath: "network_access", message: "needs at least one target"),
        ValidationCase(
            rule: "overlapping targets", header: "network_access = \"restricted\"", body: "[permissions]\nnetwork = [\"example.com:80-90\", \"example.com:85\"]", keyPath: "permissions.network[1]",
            message: "overlaps"),
        ValidationCase(rule: "dangerous capability", body: "[permissions]\ncapabilities = [\"CAP_SYS_ADMIN\"]", keyPath: "permissions.capabilities[0]", message: "CAP_SYS_ADMIN cannot be kept"),
        ValidationCase(rule: "unknown capability", body: "[permissions]\ncapabilities = [\"net_admin\"]", keyPath: "permissions.capabilities[0]", message: "unknown capability"),
        ValidationCase(
            rule: "sandbox none for a community tool", header: "sandbox_level = \"none\"", body: "trust_level = \"community\"", keyPath: "sandbox_level", message: "only for trust_level 'system'"),
        ValidationCase(rule: "malformed tool id", body: "", keyPath: "tool.id", message: "malformed id 'T!'"),
        ValidationCase(rule: "mcp is a boolean", header: "mcp = \"yes\"", keyPath: "mcp", message: "expected true or false"),
        ValidationCase(
            rule: "unknown filter action", body: "[[mcp_policy.content_filters]]\nname = \"a\"\npattern = \"x\"\naction = \"deny\"", keyPath: "mcp_policy.content_filters[0].action",
            message: "expected one of: block, sanitize, log, authorize"),
        ValidationCase(
            rule: "filter pattern does not compile", body: "[[mcp_policy.content_filters]]\nname = \"a\"\npattern = \"(unclosed\"\naction = \"block\"",
            keyPath: "mcp_policy.content_filters[0].pattern", message: "not a regular expression"),
        ValidationCase(
            rule: "filter without a name", body: "[[mcp_policy.content_filters]]\npattern = \"x\"\naction = \"log\"", keyPath: "mcp_policy.content_filters[0].name", message: "every filter has a name"),
        ValidationCase(
            rule: "duplicate filter name",
            body: "[[mcp_policy.content_filters]]\nname = \"a\"\npattern = \"x\"\naction = \"log\"\n[[mcp_policy.content_filters]]\nname = \"a\"\npattern = \"y\"\naction = \"block\"",
            keyPath: "mcp_policy.content_filters[1].name", message: "names must be unique"),
        ValidationCase(
            rule: "replacement on a block filter", body: "[[mcp_policy.content_filters]]\nname = \"a\"\npattern = \"x\"\naction = \"block\"\nreplacement = \"y\"",
            keyPath: "mcp_policy.content_filters[0].replacement", message: "only a 'sanitize' filter"),
        ValidationCase(rule: "zero rate", body: "[mcp_policy.rate_limits]\n\"tools/call\" = 0", keyPath: "mcp_policy.rate_limits.tools/call", message: "must be greater than zero"),
        ValidationCase(
            rule: "unknown mcp_policy key", body: "[mcp_policy]\nmax_concurent_requests = 2", keyPath: "mcp_policy.max_concurent_requests", message: "did you mean 'max_concurrent_requests'?"),
        ValidationCase(rule: "too few open files", body: "[resource_limits]\nmax_open_files = 3", keyPath: "resource_limits.max_open_files", message: "too few"),
    ]

    @Test(arguments: cases)
    func rule(_ c: ValidationCase) throws {
        var text = Fixtures.profileTOML(c.body, header: c.header)
        if c.rule == "malformed tool id" { text = text.replacingOccurrences(of: "id = \"t\"", with: "id = \"T!\"") }
        let loaded = Fixtures.loader(["/p/t.toml": text]).load("/p/t.toml")
        #expect(loaded.profile == nil, "the profile must be refused")
        let match = loaded.errors.first { $0.keyPath == c.keyPath && $0.message.contains(c.message) }
        #expect(match != nil, "expected \(c.keyPath): …\(c.message)… in:\n\(loaded.errors.map(\.description).joined(separator: "\n"))")
        #expect(match?.file == "/p/t.toml")
    }

    @Test func validProfileHasNoIssues() {
        let loaded = Fixtures.loader(["/p/t.toml": Fixtures.profileTOML("[permissions]\nexecute = [\"true\"]")]).load("/p/t.toml")
        #expect(loaded.issues.isEmpty)
        #expect(loaded.profile?.tool.id == "t")
    }

    @Test func mcpPolicyIsRead() throws {
        let body = """
            [mcp_policy]
            max_concurrent_requests = 3
            [mcp_policy.rate_limits]
            "tools/call" = 50
            "resources/read" = 200
            [[mcp_policy.content_filters]]
            name = "aws"
            pattern = "AKIA[0-9A-Z]{16}"
            action = "block"
            [[mcp_policy.content_filters]]
            name = "pw"
            pattern = "password=\\\\S+"
            action = "sanitize"
            tools = ["login"]
            replacement = "password=***"
            """
        let loaded = Fixtures.loader(["/p/t.toml": Fixtures.profileTOML(body, header: "mcp = true")]).load("/p/t.toml")
        #expect(loaded.issues.isEmpty, "\(loaded.issues)")
        let mcp = try #require(loaded.profile?.mcp)
        #expect(mcp.server && mcp.maxConcurrentRequests == 3)
        #expect(mcp.rateLimits == [MethodRate(method: "resources/read", perMinute: 200), MethodRate(method: "tools/call", perMinute: 50)])
        #expect(
            mcp.contentFilters == [
                ContentFilter(name: "aws", pattern: "AKIA[0-9A-Z]{16}", action: .block),
                ContentFilter(name: "pw", pattern: "password=\\S+", action: .sanitize, tools: ["login"], replacement: "password=***"),
            ])
    }

    @Test func missingToolTableIsReported() {
        let loaded = Fixtures.loader(["/p/t.toml": "sandbox_level = \"process\"\n"]).load("/p/t.toml")
        #expect(loaded.errors.contains { $0.keyPath == "tool" && $0.message.contains("required") })
    }

    @Test func tomlSyntaxErrorNamesLine() {
        let loaded = Fixtures.loader(["/p/t.toml": "[tool]\nid = \n"]).load("/p/t.toml")
        #expect(loaded.errors.first?.message.contains("line 2") == true, "\(loaded.errors)")
    }

    @Test func trustBelowPolicyMinimum() {
        var policy = HostPolicy.defaults
        policy.security.minTrustLevel = .verified
        let loaded = Fixtures.loader(["/p/t.toml": Fixtures.profileTOML("trust_level = \"community\"")], policy: policy).load("/p/t.toml")
        #expect(loaded.errors.contains { $0.keyPath == "tool.trust_level" && $0.message.contains("below the host policy's minimum 'verified'") })
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
