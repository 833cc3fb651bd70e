import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `burrow run --as-user`: every bind source opened with that user's rights
/// (the check an unprivileged user's own run gets), with a throwaway user.
@Suite(.requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits))
struct CallerGrantTests: SandboxTesting {
    let directory: String
    let user: String

    init() throws {
        directory = try Self.makeDirectory()
        user = "brwtest" + String(UUID().uuidString.lowercased().prefix(8))
        let made = try Subprocess.run(["/usr/sbin/useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user])
        try #require(made.status == 0, "useradd: \(made.stderr)")
    }

    func remove() {
        _ = try? Subprocess.run(["/usr/sbin/userdel", user])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A file with `text`, owned by `owner` (a name; root when nil) with `mode`.
    func file(_ name: String, _ text: String, mode: mode_t, owner: String? = nil) throws {
        let path = directory + "/" + name
        try #require(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)))
        if let owner { try #require(try Subprocess.run(["/bin/chown", owner, path]).status == 0) }
        try #require(chmod(path, mode) == 0)
    }

    @Test("a grant the user cannot read is refused before anything runs, naming the path and the user")
    func unreachableGrant() throws {
        defer { remove() }
        try #require(mkdir(directory + "/rootonly", 0o700) == 0)
        try file("rootonly/secret", "root's", mode: 0o600)
        try file("public", "for all", mode: 0o644)
        let profile = try profile(extending: "minimal", "[permissions]\nfile_read = [\"\(directory)/public\", \"\(directory)/rootonly\"]")
        var result = try Subprocess.run(
            [Subprocess.burrow, "run", "--as-user", user, "--profile", profile, "--quiet", "--", "/bin/cat", directory + "/public"], environment: burrowEnvironment)
        #expect(result.status == 125)
        #expect(result.stderr.contains("\(directory)/rootonly") && result.stderr.contains("(\(user)) may not read"), "\(result.stderr)")
        #expect(result.output.isEmpty)
        // Refused before the invocation began: a PermissionDenied naming the path, no ToolInvoked.
        let events = try auditLog().events()
        #expect(events.map(\.type) == [.permissionDenied], "\(events.map(\.type))")
        #expect(events.first?.details.canonicalText.contains("\(directory)/rootonly") == true)
        // As root, the same profile runs: the refusal was the user's rights.
        result = try run(profile, ["/bin/cat", directory + "/public"])
        #expect(result.status == 0 && result.output == "for all", "\(result.stderr)")
    }

    @Test("what the user can reach is bound, its own 0600 file readable in the sandbox; dry-run says whose rights were used")
    func reachableGrants() throws {
        defer { remove() }
        try file("public", "for all", mode: 0o644)
        try file("own", "the user's", mode: 0o600, owner: "\(user):\(user)")
        let profile = try profile(extending: "minimal", "[permissions]\nfile_read = [\"\(directory)/public\", \"\(directory)/own\"]")
        let argv = ["--as-user", user, "--profile", profile, "--", "/bin/cat", directory + "/public", directory + "/own"]
        let plan = try Subprocess.run([Subprocess.burrow, "dry-run"] + argv, environment: burrowEnvironment)
        #expect(plan.status == 0 && plan.output.contains("binds checked as") && plan.output.contains("(\(user))"), "\(plan.output)\(plan.stderr)")
        let result = try Subprocess.run([Subprocess.burrow, "run", "--quiet"] + argv, environment: burrowEnvironment)
        #expect(result.status == 0 && result.output == "for allthe user's", "\(result.stderr)")
    }

    @Test("root cannot be named, nor a user that does not exist")
    func badUsers() throws {
        defer { remove() }
        let profile = try profile(extending: "minimal")
        for (who, message) in [("root", "root's own rights"), ("0", "root's own rights"), ("no-such-user-xyz", "no user no-such-user-xyz")] {
            let result = try Subprocess.run([Subprocess.burrow, "dry-run", "--as-user", who, "--profile", profile, "--", "/bin/true"], environment: burrowEnvironment)
            #expect(result.status != 0 && result.stderr.contains(message), "\(who): \(result.stderr)")
        }
    }
}
