package import BurrowProfile
package import BurrowSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Paths and fixed inputs shared by the tests.
package enum Fixtures {
    /// The repository root (three levels above this file).
    package static var repositoryRoot: String {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
        return path
    }

    package static var profilesDirectory: String { repositoryRoot + "/Profiles" }

    /// Writes the profile of Tests/MCP/streams_server.py (an MCP server that
    /// speaks first: tool id `mcp-streams`) into `directory`; returns its
    /// path and the command that runs the server.
    package static func streamsServer(in directory: String) throws -> (profile: String, command: [String]) {
        let path = directory + "/streams.toml"
        let text = """
            extends = "mcp-base"
            [tool]
            id = "mcp-streams"
            name = "An MCP server that speaks first"
            version = "1"
            [permissions]
            file_read = ["/usr/lib/python3.11/**", "\(repositoryRoot)/Tests/MCP/**"]

            """
        guard let f = fopen(path, "w") else { throw RequirementUnmet(description: "cannot write \(path)") }
        fputs(text, f)
        fclose(f)
        chmod(path, 0o644)
        return (path, ["/usr/bin/python3", repositoryRoot + "/Tests/MCP/streams_server.py"])
    }

    /// Reads a file from disk (for loaders under test).
    package static let readFile: @Sendable (String) -> String? = { path in
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A profile loader over in-memory files.
    package static func loader(_ files: [String: String], policy: HostPolicy = .defaults, searchPath: [String] = ["/profiles"]) -> ProfileLoader {
        ProfileLoader(policy: policy, searchPath: searchPath, read: { files[$0] })
    }

    /// A host that can enforce everything, with cgroup v2 (for golden plans).
    package static let capableHost = HostFacts(
        kernelRelease: "6.18.0-test", machine: "x86_64", euid: 0, rootInInitialUserNamespace: true,
        namespaces: Dictionary(uniqueKeysWithValues: NamespaceKind.allCases.map { ($0, HostFacts.Check.yes("probed")) }),
        namespacesTogether: .yes("probed"), maxUserNamespaces: 1000, seccompFilter: .yes("probed"),
        seccompUserNotification: .yes("probed"), landlock: .yes("ABI 6"), landlockABI: 6, pidfd: .yes("probed"),
        clone3: .yes("probed"), cloneIntoCgroup: .yes("probed"), cgroupKill: .yes("probed"),
        cgroups: CgroupLayout(mode: .unified, v2MountPoint: "/sys/fs/cgroup", v2OwnPath: "/system.slice/burrowd.service", v1: []),
        cgroupV2Controllers: ["cpu", "io", "memory", "pids"], cgroupV1WritableControllers: [], systemd: .yes("probed"),
        capLastCap: 40)

    /// A minimal valid profile document in TOML, with `extra` appended.
    package static func profileTOML(_ extra: String = "", header: String = "") -> String {
        """
        \(header)
        [tool]
        id = "t"
        name = "Test"
        version = "1"

        \(extra)
        """
    }
}
