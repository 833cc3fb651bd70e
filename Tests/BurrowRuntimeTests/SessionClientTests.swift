import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Unprivileged users as burrowd's clients (issue 23): a real burrowd, real
/// throwaway users and groups (made here, removed after), `burrow run`,
/// `mcp` and `dry-run` started under setpriv with each user's identity.
@Suite(
    .serialized, .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits),
    .requires(.installed("/usr/bin/setpriv")), .requires(.installed("/usr/sbin/useradd")), .timeLimit(.minutes(3)))
final class SessionClientTests: SessionFixture {
    @Test("a runner runs minimal through burrowd: its own stdio, the tool's exit status, ToolInvoked naming the user and its pid")
    func runner() throws {
        try startDaemon()
        let result = try burrow(as: alice, ["run", "--socket", socket, "--profile", "minimal", "--", "/bin/sh", "-c", "echo out; echo err >&2; id -u; exit 3"])
        #expect(result.status == 3, "\(result.stderr)")
        let lines = result.output.split(separator: "\n")
        #expect(lines.first == "out" && result.stderr == "err\n", "\(result.output) \(result.stderr)")
        let aliceUID = try uid(alice)
        #expect(lines.count == 2 && UInt32(lines[1]) != aliceUID, "the tool runs as a leased sandbox id, never the user's")
        let invoked = try #require(try auditLog().events(AuditQuery(types: [.toolInvoked])).last)
        #expect(invoked.context.principal == alice && invoked.context.uid == aliceUID)
        #expect((invoked.details["callerPID"]?.integerValue ?? 0) > 0, "\(invoked.details.canonicalText)")
        // dry-run shows the plan burrowd would run, checked as the user.
        let plan = try burrow(as: alice, ["dry-run", "--socket", socket, "--profile", "minimal", "--", "/bin/true"])
        #expect(plan.status == 0 && plan.output.contains("binds checked as") && plan.output.contains("(\(alice))"), "\(plan.output)\(plan.stderr)")
    }

    @Test("a user without the runner role, one outside the socket group, and a stopped burrowd are each told why and how to fix it (exit 125)")
    func refusedCallers() throws {
        try startDaemon()
        let noRole = try burrow(as: carol, ["run", "--socket", socket, "--profile", "minimal", "--", "/bin/true"])
        #expect(noRole.status == 125 && noRole.stderr.contains("holds no runner role") && noRole.stderr.contains("[daemon] runners"), "\(noRole.stderr)")
        let outside = try burrow(as: dave, ["run", "--socket", socket, "--profile", "minimal", "--", "/bin/true"])
        #expect(outside.status == 125 && outside.stderr.contains("usermod -aG \(group) \(dave)"), "\(outside.stderr)")
        // The refusal is audited (aggregated per caller, written within the denial window's first event).
        var denied: [AuditEvent] = []
        for _ in 0..<40 where denied.isEmpty {
            usleep(50_000)
            denied = try auditLog().events(AuditQuery(types: [.permissionDenied]))
        }
        #expect(denied.first?.context.principal == carol && denied.first?.details["reason"]?.stringValue == "role_required")
        if let daemon {
            kill(daemon.pid, SIGTERM)
            _ = try daemon.finish()
            self.daemon = nil
        }
        let down = try burrow(as: alice, ["run", "--socket", socket, "--profile", "minimal", "--", "/bin/true"])
        #expect(down.status == 125 && down.stderr.contains("burrowd is not running") && down.stderr.contains("systemctl start burrowd"), "\(down.stderr)")
    }

    @Test("a grant the user cannot reach (0700, another owner) is refused and audited before anything runs; dry-run warns")
    func unreachableGrant() throws {
        try startDaemon()
        let secret = directory + "/rootonly"
        try #require(mkdir(secret, 0o700) == 0)
        try write("root's", to: secret + "/secret", owner: "root", mode: 0o600)
        let profile = try userProfile(alice, extending: "minimal", "[permissions]\nfile_read = [\"\(secret)/**\"]")
        let result = try burrow(as: alice, ["run", "--socket", socket, "--profile", profile, "--", "/bin/cat", secret + "/secret"])
        #expect(result.status == 125 && result.stderr.contains(secret) && result.output.isEmpty, "\(result.stderr)")
        let events = try auditLog().events(AuditQuery())
        #expect(!events.contains { $0.type == .toolInvoked }, "nothing ran")
        #expect(events.contains { $0.type == .permissionDenied && $0.details.canonicalText.contains(secret) })
        let plan = try burrow(as: alice, ["dry-run", "--socket", socket, "--profile", profile, "--", "/bin/true"])
        #expect(plan.output.contains("burrow run` refuses this grant") && plan.output.contains(secret), "\(plan.output)\(plan.stderr)")
    }

    @Test("a grant's directory swapped for a symlink to a root-only one, again and again while runs start, never shows the root-only file")
    func swappedGrant() throws {
        try startDaemon()
        let hidden = directory + "/hidden"
        try #require(mkdir(hidden, 0o700) == 0)
        try write("root's secret", to: hidden + "/note", owner: "root", mode: 0o600)
        let granted = home(alice) + "/granted"
        let parked = home(alice) + "/parked"
        try #require(mkdir(granted, 0o755) == 0)
        try write("alice's note", to: granted + "/note", owner: alice)
        let profile = try userProfile(alice, extending: "minimal", "[permissions]\nfile_read = [\"\(granted)/**\"]")
        // Swaps granted ⇄ a symlink to hidden, as fast as it can, while runs start.
        let swapping = ManagedAtomicFlag()
        let swapper = Thread {
            while !swapping.isSet {
                _ = rename(granted, parked)
                _ = symlink(hidden, granted)
                usleep(200)
                _ = unlink(granted)
                _ = rename(parked, granted)
            }
        }
        swapper.start()
        var outputs: [String] = []
        for _ in 0..<20 {
            let r = try burrow(as: alice, ["run", "--socket", socket, "--quiet", "--profile", profile, "--", "/bin/cat", granted + "/note"])
            outputs.append(r.output)
        }
        swapping.set()
        while swapper.isExecuting { usleep(1000) }
        #expect(!outputs.contains { $0.contains("root's") }, "\(outputs)")
    }

    @Test("files the tool writes under a write grant belong to the user on the host")
    func ownership() throws {
        try startDaemon()
        let work = home(alice) + "/work"
        try #require(mkdir(work, 0o755) == 0)
        try #require(try Subprocess.run(["/bin/chown", "\(alice):\(alice)", work]).status == 0)
        let profile = try userProfile(alice, extending: "minimal", "[permissions]\nexecute = [\"/bin/sh\", \"/bin/mkdir\"]\nfile_write = [\"\(work)/**\"]")
        let result = try burrow(as: alice, ["run", "--socket", socket, "--profile", profile, "--", "/bin/sh", "-c", "mkdir \(work)/d && echo x > \(work)/d/f && echo y > \(work)/g"])
        #expect(result.status == 0, "\(result.stderr)")
        let aliceUID = try uid(alice)
        for path in [work + "/d", work + "/d/f", work + "/g"] {
            var st = stat()
            #expect(lstat(path, &st) == 0 && st.st_uid == aliceUID, "\(path) is owned by \(st.st_uid)")
        }
    }

    @Test("the real MCP client, as the user, drives mcp-server-git through burrow mcp: commits in the user's own repository; the relay still refuses a schema-invalid call")
    func mcpGit() throws {
        try startDaemon()
        let python = "/opt/burrow/venvs/mcp-server-git/bin/python3"
        try #require(access(python, X_OK) == 0, "mcp-server-git is installed by Scripts/install-mcp-servers.sh")
        let repo = home(alice) + "/repo"
        let other = home(alice) + "/other"
        for r in [repo, other] {
            #expect(try Subprocess.run(setpriv(alice) + ["/usr/bin/git", "init", "-q", r]).status == 0)
            try write("tracked soon\n", to: r + "/new.txt", owner: alice)
        }
        let identity = ["GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@burrow.invalid", "GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "alice@burrow.invalid"]
        let result = try Subprocess.run(
            setpriv(alice) + [
                python, Fixtures.repositoryRoot + "/Tests/MCP/git_client.py", repo, other, "new.txt", "--",
                Subprocess.burrow, "mcp", "--socket", socket, "--profile", "mcp-server-git", "--param", "repo=" + repo, "--", python, "-m", "mcp_server_git",
            ],
            environment: identity, directory: home(alice))
        let lines = result.output.split(separator: "\n").map(String.init)
        func line(_ n: Int) -> String { n < lines.count ? lines[n] : "" }
        #expect(line(3).hasPrefix("call git_commit False") && line(3).contains("committed"), "\(result.output)\n\(result.stderr)")
        #expect(line(5).hasPrefix("call git_status True"), "another repository is not even visible: \(line(5))")
        #expect(line(7).contains(#"raised MCPError "burrow: arguments: missing required property repo_path"#), "\(line(7))")
        let log = try Subprocess.run(["/usr/bin/git", "-C", repo, "log", "--format=%an %s"], environment: ["GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"])
        #expect(log.output == "Alice added through burrow\n", "\(log.output)\(log.stderr)")
        // Every file git wrote is the user's on the host.
        let foreign = try Subprocess.run(["/usr/bin/find", repo, "!", "-user", alice])
        #expect(foreign.output.isEmpty, "files not owned by \(alice): \(foreign.output)")
        let calls = try auditLog().events(AuditQuery()).filter { $0.details["mcp"]?.stringValue == "tools/call" }
        #expect(calls.filter { $0.type == .toolCompleted }.count == 4 && calls.allSatisfy { $0.context.principal == alice })
        #expect(calls.filter { $0.type == .permissionDenied }.compactMap { $0.details["reason"]?.stringValue } == ["invalid_arguments"])
    }

    @Test(
        "mcp-server-time and mcp-server-fetch (restricted network, in a test network namespace) as a normal user: the same answers and egress audit",
        .requires(.installed("/opt/burrow/venvs/mcp-server-fetch/bin/python3")), .requires(.installed("/opt/burrow/venvs/mcp-server-time/bin/python3")),
        .requires(.installed("/usr/bin/unshare")), .requires(.installed("/usr/sbin/ip")))
    func timeAndFetch() throws {
        try startDaemon()
        let time = "/opt/burrow/venvs/mcp-server-time/bin/python3"
        let calls = try Subprocess.run(
            setpriv(alice) + [
                time, Fixtures.repositoryRoot + "/Tests/MCP/calls_client.py", "auto", "get_current_time", "--", Subprocess.burrow, "mcp", "--socket", socket, "--profile",
                "mcp-server-time", "--", time, "-m", "mcp_server_time",
            ], directory: home(alice))
        #expect(calls.output.contains("call ") && calls.output.contains("Europe/Paris") && !calls.output.contains("raised"), "\(calls.output)\(calls.stderr)")
        if let daemon {
            kill(daemon.pid, SIGTERM)
            _ = try daemon.finish()
            self.daemon = nil
        }
        // burrowd itself runs in the harness's network namespace, where the test names resolve.
        let script = """
            BURROW_PROFILE_PATH="$PROFILES" "$D" --policy "$POLICY" --socket "$S" --audit-db "$A" --registry-db "$A.registry" & d=$!
            for i in $(seq 200); do [ -S "${S%.sock}-session.sock" ] && break; sleep 0.05; done
            V=/opt/burrow/venvs/mcp-server-fetch/bin/python3
            for url in http://example.com/index.html http://other.test/index.html; do
                timeout 120 setpriv --reuid "$U" --regid "$U" --init-groups $V "$CLIENT" "$url" -- "$B" mcp --socket "$S" --profile mcp-server-fetch -- $V -m mcp_server_fetch
            done
            kill $d; wait $d
            """
        let result = try Subprocess.run(
            ["/usr/bin/unshare", "--net", "--mount", "--fork", "--kill-child", "/bin/bash", Fixtures.repositoryRoot + "/Tests/Egress/netns-harness.sh", directory, "--", "/bin/bash", "-c", script],
            environment: [
                "B": Subprocess.burrow, "D": Subprocess.burrowd, "S": socket, "A": auditDatabase, "POLICY": try writePolicy(), "PROFILES": Fixtures.profilesDirectory,
                "U": alice, "CLIENT": Fixtures.repositoryRoot + "/Tests/Egress/fetch_client.py",
            ])
        let results = result.output.split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        try #require(results.count == 2, "\(result.output)\(result.stderr)")
        #expect(results[0]["isError"] as? Bool == false && (results[0]["text"] as? String ?? "").contains("hello through the proxy"), "\(results[0])")
        #expect(results[1]["isError"] as? Bool == true, "\(results[1])")
        let events = try auditLog().events(AuditQuery(types: [.networkConnection, .permissionDenied]))
        #expect(events.contains { $0.type == .networkConnection && $0.details["host"]?.stringValue == "example.com" && $0.context.principal == alice })
        #expect(events.contains { $0.type == .permissionDenied && $0.details["host"]?.stringValue == "other.test" })
    }

    @Test("with [audit] user_reads_own, `burrow audit` as a user shows its own runs only; without it, the refusal says how to allow it")
    func ownAudit() throws {
        try startDaemon("[audit]\nuser_reads_own = true")
        for user in [alice, bob] {
            let r = try burrow(as: user, ["run", "--socket", socket, "--profile", "minimal", "--", "/bin/true"])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let mine = try burrow(as: alice, ["audit", "--socket", socket, "--json"])
        #expect(mine.status == 0, "\(mine.stderr)")
        let events = try JSONDecoder().decode([AuditEvent].self, from: mine.stdout)
        #expect(events.count >= 2 && events.allSatisfy { $0.context.principal == alice }, "\(events.map(\.context.principal))")
        #expect(events.contains { $0.type == .toolInvoked } && events.contains { $0.type == .toolCompleted })
        if let daemon {
            kill(daemon.pid, SIGTERM)
            _ = try daemon.finish()
            self.daemon = nil
        }
        try startDaemon()
        let refused = try burrow(as: alice, ["audit", "--socket", socket])
        #expect(refused.status != 0 && refused.stderr.contains("user_reads_own"), "\(refused.stderr)")
    }

    @Test("an MCP client that keeps its stdin open after the server ended: burrowd ends the relay, holds none of the client's descriptors, and the client exits")
    func relayEndsWithTheServer() throws {
        try startDaemon()
        let daemonPID = try #require(daemon?.pid)
        let profile = try userProfile(alice, extending: "mcp-base", "[permissions]\nexecute = [\"/bin/true\"]")
        func burrowdDescriptors() throws -> Int { try FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemonPID)/fd").count }
        _ = try burrow(as: alice, ["run", "--socket", socket, "--profile", "minimal", "--", "/bin/true"])  // burrowd's own descriptors, warmed
        let before = try burrowdDescriptors()
        // Its stdin is a pipe this test keeps open, as `sleep inf | burrow mcp …` would.
        let input = Pipe()
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        client.arguments = Array(setpriv(alice).dropFirst()) + [Subprocess.burrow, "mcp", "--socket", socket, "--profile", profile, "--", "/bin/true"]
        client.currentDirectoryURL = URL(fileURLWithPath: home(alice))
        client.standardInput = input
        client.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        client.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try client.run()
        for _ in 0..<200 where client.isRunning { usleep(50_000) }
        #expect(!client.isRunning, "the client did not exit")
        if client.isRunning { kill(client.processIdentifier, SIGKILL) }
        var after = try burrowdDescriptors()
        for _ in 0..<40 where after > before {
            usleep(50_000)
            after = try burrowdDescriptors()
        }
        #expect(after <= before, "burrowd holds \(after - before) more descriptors after the session")
        try input.fileHandleForWriting.close()
    }

    @Test("killing the client ends the sandbox (ToolFailed client_gone)")
    func clientKilled() throws {
        try startDaemon()
        let client = try Subprocess.start(
            setpriv(alice) + [Subprocess.burrow, "run", "--socket", socket, "--profile", "minimal", "--", "/bin/sleep", "60"])
        var started = false
        for _ in 0..<100 where !started {
            usleep(50_000)
            started = try auditLog().events(AuditQuery(types: [.toolInvoked])).count == 1
        }
        #expect(started)
        usleep(200_000)
        kill(client.pid, SIGKILL)
        _ = try client.finish()
        var failed: AuditEvent?
        for _ in 0..<100 where failed == nil {
            usleep(50_000)
            failed = try auditLog().events(AuditQuery(types: [.toolFailed])).first
        }
        #expect(failed?.details["reason"]?.stringValue == "stopped" && failed?.details["message"]?.stringValue == "client_gone", "\(failed?.details.canonicalText ?? "no ToolFailed")")
    }

    @Test("two users' runs at once: each sees its own files and output only; neither can grant the other's home")
    func twoUsers() throws {
        try startDaemon()
        for user in [alice, bob] {
            try #require(chmod(home(user), 0o700) == 0)
            try write("\(user)'s own", to: home(user) + "/mine", owner: user, mode: 0o600)
        }
        let profiles = try [alice, bob].map { try userProfile($0, extending: "minimal", "[permissions]\nfile_read = [\"\(home($0))/mine\"]") }
        let runs = try zip([alice, bob], profiles).map { user, profile in
            try Subprocess.start(
                setpriv(user) + [
                    Subprocess.burrow, "run", "--socket", socket, "--profile", profile, "--", "/bin/sh", "-c", "sleep 0.3; cat \(home(user))/mine; ls -a /home 2>&1; exit 0",
                ])
        }
        let results = try runs.map { try $0.finish() }
        #expect(results[0].status == 0 && results[0].output.hasPrefix("\(alice)'s own") && !results[0].output.contains(bob), "\(results[0].output)\(results[0].stderr)")
        #expect(results[1].status == 0 && results[1].output.hasPrefix("\(bob)'s own") && !results[1].output.contains(alice), "\(results[1].output)\(results[1].stderr)")
        let crossing = try userProfile(bob, extending: "minimal", "[permissions]\nfile_read = [\"\(home(alice))/mine\"]")
        let refused = try burrow(as: bob, ["run", "--socket", socket, "--profile", crossing, "--", "/bin/cat", home(alice) + "/mine"])
        #expect(refused.status == 125 && refused.stderr.contains(home(alice)) && !refused.output.contains("own"), "\(refused.stderr)")
    }

    @Test("[users] ceilings clamp a user's own profile further than the host policy, and dry-run shows each clamp")
    func ceilings() throws {
        try startDaemon("[users]\nallow_write = false\nmax_memory_mb = 64\nnetwork_policy = \"none\"")
        let work = home(alice) + "/work"
        try #require(mkdir(work, 0o755) == 0)
        try #require(try Subprocess.run(["/bin/chown", "\(alice):\(alice)", work]).status == 0)
        let profile = try userProfile(alice, extending: "minimal", "[permissions]\nfile_write = [\"\(work)/**\"]\n[resource_limits]\nmax_memory = \"100M\"")
        let plan = try burrow(as: alice, ["dry-run", "--socket", socket, "--profile", profile, "--json", "--", "/bin/true"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let json = try JSONParser.parse(plan.output)
        let clamps = json["clamps"]?.arrayValue ?? []
        #expect(clamps.contains { $0["key"]?.stringValue == "resource_limits.max_memory" && $0["effective"]?.stringValue == "64M" }, "\(clamps)")
        #expect(clamps.contains { $0["key"]?.stringValue == "permissions.file_write" }, "\(clamps)")
        let result = try burrow(as: alice, ["run", "--socket", socket, "--quiet", "--profile", profile, "--", "/bin/sh", "-c", "echo x > \(work)/f"])
        #expect(result.status != 0 && access(work + "/f", F_OK) != 0, "a write grant became read-only: \(result.stderr)")
    }
}

/// A flag one thread sets and another polls.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
