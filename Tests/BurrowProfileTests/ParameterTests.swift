import BurrowProfile
import BurrowTestSupport
import Testing

/// Profile parameters: declared, checked, substituted into grants only.
@Suite("Profile parameters")
struct ParameterTests {
    static let declarations = """
        network_access = "restricted"
        [tool]
        id = "p"
        name = "p"
        version = "1"

        [parameters.repo]
        type = "path"
        must_exist = true
        writable = true

        [parameters.docs]
        type = "path"
        default = "/srv/docs"

        [parameters.site]
        type = "host"
        default = "2001:db8::1"   # the profile may name an address; a caller may not

        [parameters.branch]
        type = "string"
        pattern = "^[a-z0-9._-]{1,32}$"
        """

    func load(_ body: String, _ values: ParameterValues, policy: HostPolicy = .defaults) -> ProfileLoader.Loaded {
        Fixtures.loader(["/p.toml": Self.declarations + "\n" + body], policy: policy).load("/p.toml", parameters: values)
    }

    func errors(_ loaded: ProfileLoader.Loaded) -> [String] { loaded.errors.map { "\($0.keyPath): \($0.message)" } }

    static let grants = """
        [permissions]
        file_read = ["${docs}/**"]
        file_write = ["${repo}/**"]
        network = ["${site}:443"]
        [filesystem_access]
        blocked_paths = ["${repo}/.git/hooks"]
        """

    @Test("supplied values and defaults are written into the grants, and the load says which was which")
    func substitution() throws {
        let loaded = load(Self.grants, .supplied(["repo": "/home/me/project", "branch": "main"]))
        let profile = try #require(loaded.profile, "\(errors(loaded))")
        #expect(profile.permissions.fileWrite.map(\.description) == ["/home/me/project/**"])
        #expect(profile.permissions.fileRead.map(\.description) == ["/srv/docs/**"])
        #expect(profile.permissions.network.map(\.description) == ["[2001:db8::1]:443"])
        #expect(profile.filesystem.blockedPaths.map(\.description) == ["/home/me/project/.git/hooks"])
        let byName = Dictionary(uniqueKeysWithValues: loaded.parameters.map { ($0.name, $0) })
        #expect(byName["repo"]?.source == .caller && byName["repo"]?.mustExist == true)
        #expect(byName["docs"]?.source == .default && byName["site"]?.source == .default && byName["branch"]?.value == "main")
    }

    @Test("a command or environment value gets declared names replaced, and nothing else")
    func commandSubstitution() {
        let resolved = [ResolvedParameter(name: "repo", type: .path, value: "/home/me/p", source: .caller)]
        #expect(ProfileParameters.substitute("--repository=${repo}", resolved) == "--repository=/home/me/p")
        #expect(ProfileParameters.substitute("echo ${HOME} ${repo}", resolved) == "echo ${HOME} /home/me/p", "a shell's own ${HOME} is left alone")
    }

    @Test(
        "bad values are refused with the parameter's name and why",
        arguments: [
            (["repo": "/etc/shadow-dir", "branch": "m"], "parameters.repo: '/etc/shadow-dir' for repo: not below the host policy's [parameters] allowed_roots (/home, /srv)"),
            (["repo": "/home/../etc", "branch": "m"], "parameters.repo: '/home/../etc' for repo:"),
            (["repo": "/home/me/*", "branch": "m"], "parameters.repo: '/home/me/*' for repo:"),
            (["repo": "/home/me", "branch": "Main Branch"], "does not match the pattern"),
            (["repo": "/home/me", "branch": "m", "site": "*.example.com"], "parameters.site:"),
            (["repo": "/home/me", "branch": "m", "colour": "red"], "unknown parameter 'colour': it declares branch, docs, repo, site"),
            (["branch": "m"], "parameters.repo: the parameter 'repo' needs a value: --param repo=PATH"),
            (["repo": "/home/me/${docs}", "branch": "m"], "may not refer to a parameter"),
            (["repo": "/home", "branch": "m"], "not below the host policy's [parameters] allowed_roots"),
            (["repo": "/home/me", "branch": "m", "site": "localhost"], "the host's loopback can only be granted by the profile itself"),
            (["repo": "/home/me", "branch": "m", "site": "127.0.0.1"], "addresses can only be granted by the profile itself"),
            (["repo": "/home/me", "branch": "m", "site": "169.254.169.254"], "addresses can only be granted by the profile itself"),
        ])
    func badValues(values: [String: String], expected: String) {
        let loaded = load(Self.grants, .supplied(values))
        #expect(loaded.profile == nil)
        #expect(errors(loaded).contains { $0.contains(expected) }, "\(errors(loaded))")
    }

    @Test(
        "references are checked for kind and place",
        arguments: [
            ("[permissions]\nfile_write = [\"${docs}/**\"]", "'docs' is not declared writable = true"),
            ("[permissions]\nfile_read = [\"${branch}/**\"]", "'branch' is a string parameter"),
            ("[permissions]\nnetwork = [\"${repo}:443\"]", "'repo' is a path parameter"),
            ("[permissions]\nfile_read = [\"${site}/x\"]", "'site' is a host parameter"),
            ("[permissions]\nfile_read = [\"/srv/${repo}\"]", "at the start of a grant"),
            ("[permissions]\nfile_read = [\"${nope}/**\"]", "unknown parameter 'nope'"),
            ("[permissions]\nexecute = [\"${repo}/bin/tool\"]", "permissions.execute[0]: 'repo' is a path parameter"),
            ("[filesystem_access]\nscratch_size = \"${repo}\"", "filesystem_access.scratch_size: parameters (${…}) may be used only in"),
            ("[parameters.x]\ntype = \"path\"\nwritable = \"yes\"", "parameters.x.writable: expected true or false"),
            ("[parameters.y]\ntype = \"regex\"", "unknown parameter type 'regex'"),
            ("[parameters.z]\ntype = \"string\"", "a string parameter needs a pattern"),
            ("[parameters.Bad]\ntype = \"path\"", "a parameter name is a-z"),
        ])
    func badReferences(body: String, expected: String) {
        let loaded = load(body, .supplied(["repo": "/home/me", "branch": "m"]))
        #expect(errors(loaded).contains { $0.contains(expected) }, "\(errors(loaded))")
    }

    @Test("checking a profile without values (lint, registration) uses defaults, else stand-ins, and says so")
    func placeholders() throws {
        let loaded = load(Self.grants, .placeholders)
        let profile = try #require(loaded.profile, "\(errors(loaded))")
        #expect(profile.permissions.fileWrite.map(\.description) == ["/burrow-parameter/repo/**"])
        #expect(loaded.parameters.first { $0.name == "repo" }?.source == .placeholder)
        #expect(loaded.parameters.first { $0.name == "docs" }?.source == .default)
    }

    @Test("the host policy's allowed_roots decide where a caller's path may point")
    func allowedRoots() throws {
        var policy = HostPolicy.defaults
        policy.parameters.allowedRoots = ["/data"]
        #expect(load(Self.grants, .supplied(["repo": "/data/x", "branch": "m"]), policy: policy).profile != nil)
        #expect(load(Self.grants, .supplied(["repo": "/database", "branch": "m"]), policy: policy).profile == nil, "a prefix of a name is not a root")
        let parsed = try HostPolicy.decode(try ConfigValue.parse("[parameters]\nallowed_roots = [\"/data\", \"/home\"]", format: .toml, file: "p.toml"), file: "p.toml")
        #expect(parsed.parameters.allowedRoots == ["/data", "/home"])
        #expect(throws: ProfileErrors.self) {
            try HostPolicy.decode(try ConfigValue.parse("[parameters]\nallowed_roots = [\"/home/*\"]", format: .toml, file: "p.toml"), file: "p.toml")
        }
    }
}
