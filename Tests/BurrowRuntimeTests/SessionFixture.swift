import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real burrowd and throwaway users and a group for it (made here,
/// removed after), with `burrow` started under setpriv as each user: the
/// suites of unprivileged users subclass it (a suite is a final class).
class SessionFixture: SandboxTesting {
    let directory: String
    let tag = String(UUID().uuidString.lowercased().prefix(6))
    /// The socket group; `alice` and `bob` are in it and hold the runner role,
    /// `carol` is in it without the role, `dave` is not in it.
    var group: String { "bsg" + tag }
    var alice: String { "bsa" + tag }
    var bob: String { "bsb" + tag }
    var carol: String { "bsc" + tag }
    var dave: String { "bsd" + tag }
    var socket: String { directory + "/burrowd.sock" }
    var daemon: Subprocess.Running?

    required init() throws {
        directory = try Self.makeDirectory()
        #expect(try Subprocess.run(["/usr/sbin/groupadd", group]).status == 0)
        for (user, groups) in [(alice, [group]), (bob, [group]), (carol, [group]), (dave, [])] {
            let made = try Subprocess.run(["/usr/sbin/useradd", "--create-home", "--shell", "/bin/sh"] + (groups.isEmpty ? [] : ["-G", groups.joined(separator: ",")]) + [user])
            try #require(made.status == 0, "useradd \(user): \(made.stderr)")
        }
    }

    deinit {
        if let daemon {
            kill(daemon.pid, SIGTERM)
            _ = try? daemon.finish()
        }
        for user in [alice, bob, carol, dave] { _ = try? Subprocess.run(["/usr/sbin/userdel", "--remove", user]) }
        _ = try? Subprocess.run(["/usr/sbin/groupdel", group])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The policy burrowd runs with: the session settings, then `extra` (TOML).
    func writePolicy(_ extra: String = "") throws -> String {
        let file = directory + "/burrow.toml"
        try """
        [daemon]
        socket_group = "\(group)"
        runners = ["user:\(alice)", "user:\(bob)"]
        \(extra)
        """.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// Starts burrowd with `policy` (TOML) added to the session settings.
    func startDaemon(_ policy: String = "") throws {
        let started = try Subprocess.start(
            [Subprocess.burrowd, "--policy", try writePolicy(policy), "--socket", socket, "--audit-db", auditDatabase, "--registry-db", directory + "/registry.db"],
            environment: ["BURROW_PROFILE_PATH": Fixtures.profilesDirectory])
        daemon = started
        let session = directory + "/burrowd-session.sock"
        for _ in 0..<200 where access(session, F_OK) != 0 || access(socket, F_OK) != 0 { usleep(25_000) }
        try #require(access(session, F_OK) == 0, "burrowd did not create its session socket")
    }

    /// The prefix that runs a command as `user` (its uid, primary group and groups).
    func setpriv(_ user: String) -> [String] { ["/usr/bin/setpriv", "--reuid", user, "--regid", user, "--init-groups"] }

    /// `burrow ARGS` as `user` (its uid, primary group and groups), from its home.
    func burrow(as user: String, _ arguments: [String], environment: [String: String] = [:], stdin: Data = Data()) throws -> Subprocess.Result {
        try Subprocess.run(
            setpriv(user) + [Subprocess.burrow] + arguments, stdin: stdin,
            environment: environment, directory: home(user))
    }

    func home(_ user: String) -> String { "/home/" + user }
    func uid(_ user: String) throws -> UInt32 { try #require(getpwnam(user)?.pointee.pw_uid) }

    /// A file owned by `user` with `mode`.
    func write(_ text: String, to path: String, owner: String, mode: mode_t = 0o644) throws {
        try #require(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)))
        try #require(try Subprocess.run(["/bin/chown", "\(owner):\(owner)", path]).status == 0)
        try #require(chmod(path, mode) == 0)
    }

    /// A profile in `user`'s home extending `base` (by name: burrowd's search path).
    func userProfile(_ user: String, extending base: String, _ body: String = "") throws -> String {
        let path = home(user) + "/\(base)-\(UUID().uuidString.prefix(6)).toml"
        try write(
            """
            extends = "\(base)"
            [tool]
            id = "user-\(base)"
            name = "test"
            version = "1"
            description = "a user's own profile"
            trust_level = "untrusted"
            \(body)
            """, to: path, owner: user)
        return path
    }

}
