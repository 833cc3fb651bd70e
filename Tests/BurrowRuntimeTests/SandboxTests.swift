import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `burrow run` for real, as root: the hostile probe, real tools, the run
/// record against what the tool sees from inside, stdio, signals and limits.
@Suite(.requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits))
struct SandboxTests: SandboxTesting {
    let directory: String

    init() throws { directory = try Self.makeDirectory() }

    // MARK: the hostile probe

    /// Host-side bait for the probe: a secret file, a TCP service on
    /// loopback and an abstract unix socket, all reachable without a sandbox.
    final class Bait {
        let secret: String
        let port: Int
        let abstractName: String
        private var fds: [Int32] = []

        init(directory: String) throws {
            secret = directory + "/secret"
            try "top secret\n".write(toFile: secret, atomically: true, encoding: .utf8)
            chmod(secret, 0o644)  // readable by anyone: only the sandbox may hide it

            let tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(tcp, $0, len) } }
            listen(tcp, 16)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(tcp, $0, &len) } }
            port = Int(UInt16(bigEndian: addr.sin_port))
            fds.append(tcp)

            abstractName = "burrow-test-" + UUID().uuidString.prefix(8)
            let unix = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var u = sockaddr_un()
            u.sun_family = sa_family_t(AF_UNIX)
            let name = Array(abstractName.utf8)
            withUnsafeMutableBytes(of: &u.sun_path) { raw in
                for (i, b) in name.enumerated() { raw[i + 1] = b }
            }
            let ulen = socklen_t(MemoryLayout<sa_family_t>.size + 1 + name.count)
            _ = withUnsafePointer(to: &u) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(unix, $0, ulen) } }
            listen(unix, 16)
            fds.append(unix)
        }

        deinit { for fd in fds { close(fd) } }

        var arguments: [String] { ["--secret", secret, "--port", "\(port)", "--abstract", abstractName] }
    }

    /// The probe's lines as (case, verdict, detail).
    func verdicts(_ output: String) -> [(String, String, String)] {
        output.split(separator: "\n").map { line in
            let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
            return (parts[0], parts.count > 1 ? parts[1] : "", parts.count > 2 ? parts[2] : "")
        }
    }

    @Test("the hostile probe finds no escape", arguments: ["minimal", "untrusted"])
    func probeFindsNoEscape(base: String) throws {
        let bait = try Bait(directory: directory)
        let profile = try profile(extending: base, "[permissions]\nexecute = [\"\(Subprocess.probe)\"]")
        // fd 7 is left open (not close-on-exec) in burrow: the probe must not see it.
        let command = [Subprocess.burrow, "run", "--profile", profile, "--quiet", "--", Subprocess.probe] + bait.arguments + ["all"]
        let result = try Subprocess.run(["/bin/sh", "-c", "exec 7</etc/hostname; exec \"$@\"", "sh"] + command, environment: burrowEnvironment, directory: directory)
        let lines = verdicts(result.output)
        #expect(lines.count >= 40, "probe output: \(result.output) \(result.stderr)")
        for (name, verdict, detail) in lines {
            #expect(verdict == "blocked", "\(base): \(name) \(verdict): \(detail)")
        }
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test("x32 and int 0x80 system calls kill the tool", arguments: ["minimal", "untrusted"], ["x32", "int80"])
    func foreignArchitecturesAreKilled(base: String, probeCase: String) throws {
        let profile = try profile(extending: base, "[permissions]\nexecute = [\"\(Subprocess.probe)\"]")
        let result = try run(profile, [Subprocess.probe, probeCase])
        #expect(result.status == 128 + SIGSYS, "\(probeCase): \(result.output) \(result.stderr)")
    }

    @Test("without a sandbox the probe reports escapes (it can tell)")
    func probeSeesEscapesUnsandboxed() throws {
        let bait = try Bait(directory: directory)
        // The probe may ptrace this throwaway process (never the test runner).
        let victim = try Subprocess.start(["/bin/sleep", "30"])
        defer {
            kill(victim.pid, SIGKILL)
            _ = try? victim.finish()
        }
        // A private mount and UTS namespace only, so the probe changes nothing on the host.
        let result = try Subprocess.run(
            ["/bin/sh", "-c", "exec 7</etc/hostname; exec unshare --mount --uts \"$@\"", "sh", Subprocess.probe]
                + bait.arguments + ["--ptrace", "\(victim.pid)", "all"])
        let escaped = Set(verdicts(result.output).filter { $0.1 == "escaped" }.map(\.0))
        for expected in ["capabilities", "read_secret", "write_outside_0", "host_loopback", "leaked_fds", "kill_all", "exec_scratch", "setuid_root", "mount_tmpfs", "ptrace_seize"] {
            #expect(escaped.contains(expected), "\(expected) should escape without a sandbox: \(result.output)")
        }
        #expect(result.status > 0)
    }

    // MARK: real tools

    @Test("sh -c runs under minimal")
    func shell() throws {
        let result = try run(Fixtures.profilesDirectory + "/minimal.toml", ["sh", "-c", "echo hello; id -u; exit 7"])
        #expect(result.status == 7)
        let lines = result.output.split(separator: "\n")
        #expect(lines.first == "hello")
        #expect(lines.count == 2 && UInt32(lines[1]).map { $0 >= 524288 } == true, "\(result.output)")
    }

    @Test("python3 -c runs under python-script", .requires(.installed("/usr/bin/python3")))
    func python() throws {
        let result = try run(Fixtures.profilesDirectory + "/python-script.toml", ["python3", "-c", "import json, os; print(json.dumps({'uid': os.getuid() > 0, 'sum': sum(range(10))}))"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "{\"uid\": true, \"sum\": 45}\n")
    }

    @Test("git status in a read-only repository", .requires(.installed("/usr/bin/git")))
    func gitStatus() throws {
        let repo = directory + "/repo"
        #expect(try Subprocess.run(["/usr/bin/git", "init", "-q", repo]).status == 0)
        try "hello\n".write(toFile: repo + "/README", atomically: true, encoding: .utf8)
        let profile = try profile(
            extending: "minimal",
            """
            [permissions]
            execute = ["git"]
            file_read = ["\(repo)/**", "/usr/share/git-core/**"]
            [permissions.process]
            fork = true
            max_processes = 16
            """)
        let result = try run(profile, ["git", "status", "--porcelain"], directory: repo)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output == "?? README\n")
        // Read-only: git cannot even refresh its index.
        let write = try run(profile, ["git", "add", "README"], directory: repo)
        #expect(write.status != 0)
    }

    @Test("mcp-server-time answers an MCP request over stdio", .requires(.installed("/opt/burrow/venvs/mcp-server-time/bin/python3")))
    func mcpServerTime() throws {
        let messages =
            [
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"burrow-test","version":"1"}}}"#,
                #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_current_time","arguments":{"timezone":"Europe/Paris"}}}"#,
            ].joined(separator: "\n") + "\n"
        try messages.write(toFile: directory + "/requests", atomically: true, encoding: .utf8)
        // stdin stays open a little after the requests, as a client's would.
        let command =
            "(cat \(directory)/requests; sleep 3) | \(Subprocess.burrow) run --profile \(Fixtures.profilesDirectory)/mcp-server-time.toml --quiet --without-mcp-relay -- /opt/burrow/venvs/mcp-server-time/bin/python3 -m mcp_server_time"
        let result = try Subprocess.run(["/bin/sh", "-c", command])
        let replies = result.output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let call = replies.first { ($0["id"] as? Int) == 2 }
        let text = String(describing: call?["result"] ?? "none")
        #expect(text.contains("Europe/Paris"), "replies: \(result.output) stderr: \(result.stderr)")
    }

    // MARK: the record matches what the tool sees

    @Test("BURROW_PHASES=1 puts the process's steps in the record, in order; without it there are none")
    func phases() throws {
        let path = directory + "/phases.json"
        let profile = Fixtures.profilesDirectory + "/minimal.toml"
        let result = try Subprocess.run(
            [Subprocess.burrow, "run", "--profile", profile, "--quiet", "--json-result", path, "--", "true"],
            environment: burrowEnvironment.merging(["BURROW_PHASES": "1"]) { $1 }, directory: directory)
        #expect(result.status == 0, "\(result.stderr)")
        let marks = try #require(try record(path)["phases"] as? [[String: Any]])
        // ToolInvoked is made durable while the child builds the sandbox: after
        // the clone's cgroup exists, always before the tool's execve.
        #expect(
            marks.map { $0["name"] as? String ?? "" } == [
                "main", "arguments_parsed", "policy_loaded", "audit_opened", "host_probed", "profile_loaded", "identity_leased", "plan_compiled", "planned", "cgroup_created",
                "tool_invoked_durable", "execve",
                "tool_reaped", "cgroup_removed",
                "tool_completed_durable",
            ])
        let times = marks.map { ($0["monotonicNanoseconds"] as? NSNumber)?.uint64Value ?? 0 }
        #expect(times.first.map { $0 > 0 } == true && zip(times, times.dropFirst()).allSatisfy { $0 <= $1 }, "\(times)")
        #expect(try run(profile, ["true"], record: path).status == 0)
        #expect(try record(path)["phases"] == nil)
    }

    @Test("the run record matches /proc as seen from inside")
    func recordMatchesInside() throws {
        let path = directory + "/record.json"
        let result = try run(Fixtures.profilesDirectory + "/minimal.toml", ["cat", "/proc/self/status", "/proc/self/uid_map", "/proc/self/mountinfo"], record: path)
        #expect(result.status == 0, "\(result.stderr)")
        let inside = Dictionary(
            result.output.split(separator: "\n").compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].split(whereSeparator: { $0 == "\t" || $0 == " " }).joined(separator: " "))
            }, uniquingKeysWith: { a, _ in a })
        let record = try record(path)
        let uid = try #require(record["uid"] as? Int)
        let observed = try #require(record["observed"] as? [String: Any])
        #expect(inside["Uid"] == "\(uid) \(uid) \(uid) \(uid)")
        #expect(observed["uid"] as? String == inside["Uid"])
        for (field, key) in [("CapBnd", "capabilityBounding"), ("CapEff", "capabilityEffective"), ("CapPrm", "capabilityPermitted"), ("CapAmb", "capabilityAmbient")] {
            #expect(inside[field] == "0000000000000000")
            #expect(observed[key] as? String == inside[field])
        }
        #expect(inside["CapInh"] == "0000000000000000")
        #expect(inside["NoNewPrivs"] == "1" && observed["noNewPrivileges"] as? String == "1")
        #expect(inside["Seccomp"] == "2" && observed["seccomp"] as? String == "2")
        let maps = result.output.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(maps.contains("\(uid) \(uid) 1"), "uid_map inside: \(result.output)")
        // The root is the read-only tmpfs; no host mount is left below it.
        let mounts = result.output.split(separator: "\n").filter { $0.contains(" - ") }
        #expect(mounts.contains { $0.split(separator: " ")[4] == "/" && $0.contains(" ro,") && $0.contains("- tmpfs") })
        #expect(!mounts.contains { $0.split(separator: " ")[4] == "/home" || $0.split(separator: " ")[4] == "/root" })
        let controls = try #require(record["controls"] as? [[String: Any]])
        #expect(!controls.isEmpty && controls.allSatisfy { $0["enforced"] as? Bool == true }, "\(controls)")
    }

    @Test("sandbox level none: caller's uid, no capabilities, no_new_privs")
    func levelNone() throws {
        let profile = try profile(extending: "minimal", top: "sandbox_level = \"none\"", "trust_level = \"system\"")
        let result = try run(profile, ["cat", "/proc/self/status"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.output.contains("CapEff:\t0000000000000000"))
        #expect(result.output.contains("CapBnd:\t0000000000000000"))
        #expect(result.output.contains("NoNewPrivs:\t1"))
    }

    // MARK: stdio, exit status, signals

    @Test("stdio passes through byte-exact")
    func stdioIsByteExact() throws {
        var bytes = [UInt8](repeating: 0, count: 1 << 20)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        let result = try run(Fixtures.profilesDirectory + "/minimal.toml", ["cat"], stdin: Data(bytes))
        #expect(result.status == 0)
        #expect(result.stdout == Data(bytes))
    }

    @Test("a signal that ends the tool becomes 128+N")
    func signalledTool() throws {
        let result = try run(Fixtures.profilesDirectory + "/minimal.toml", ["sh", "-c", "kill -KILL $$"])
        #expect(result.status == 137)
    }

    @Test("SIGTERM to burrow run reaches the tool")
    func signalsAreForwarded() throws {
        let running = try Subprocess.start([Subprocess.burrow, "run", "--profile", Fixtures.profilesDirectory + "/minimal.toml", "--", "sleep", "30"])
        usleep(500_000)
        kill(running.pid, SIGTERM)
        let start = Date()
        let result = try running.finish()
        #expect(result.status == 128 + SIGTERM, "\(result.stderr)")
        #expect(Date().timeIntervalSince(start) < 5)
    }

    // MARK: refusals

    @Test("a control this host cannot enforce is refused, not weakened")
    func refusesUnenforceable() throws {
        let vm = try profile(extending: "minimal", top: "sandbox_level = \"vm\"")
        let refused = try run(vm, ["true"])
        #expect(refused.status == 125)
        #expect(refused.stderr.contains("VM"), "\(refused.stderr)")
    }
}
