import BurrowProfile
import BurrowTestSupport
import Testing

@Suite("Shipped profiles")
struct ShippedProfilesTests {
    static let names = [
        "minimal", "untrusted", "mcp-base", "mcp-server-time", "mcp-server-git", "mcp-server-fetch", "python-script",
        // Third-party servers (issue 21).
        "mcp-server-sqlite", "mcp-server-duckdb", "mcp-server-calculator", "mcp-shell-server", "cli-mcp-server", "excel-mcp-server", "mcp-memex", "mcp-pandoc",
        "markitdown-mcp", "mcp-text-editor",
    ]

    @Test(arguments: names)
    func loadsWithoutIssues(_ name: String) throws {
        let loader = ProfileLoader(policy: .defaults, searchPath: [Fixtures.profilesDirectory], read: Fixtures.readFile)
        let loaded = loader.load(name)
        #expect(loaded.issues.isEmpty, "\(loaded.issues.map(\.description))")
        let profile = try #require(loaded.profile)
        #expect(profile.tool.id == name)
        #expect(loaded.files.first == "\(Fixtures.profilesDirectory)/\(name).toml")
    }

    @Test func everyProfileFileIsListed() throws {
        let listed = Set(Self.names.map { $0 + ".toml" })
        let onDisk = Set(try listDirectory(Fixtures.profilesDirectory).filter { $0.hasSuffix(".toml") })
        #expect(onDisk == listed)
    }
}

#if canImport(Glibc)
    import Glibc
#endif

private func listDirectory(_ path: String) throws -> [String] {
    guard let dir = opendir(path) else { throw RequirementUnmet(description: "cannot open \(path)") }
    defer { closedir(dir) }
    var names: [String] = []
    while let e = readdir(dir) {
        names.append(withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
    }
    return names
}
