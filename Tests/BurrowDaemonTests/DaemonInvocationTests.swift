import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real burrowd on a temporary socket, audit log and registry.
final class LiveDaemon: @unchecked Sendable {
    let directory: String
    var socket: String { directory + "/burrowd.sock" }
    var auditDB: String { directory + "/audit.db" }
    let policyFile: String
    private(set) var process: Subprocess.Running?
    var client: UnixHTTPClient { UnixHTTPClient(socketPath: socket) }

    /// Where burrowd finds the profiles a registration extends.
    let profilePath: String

    init(policy: String, profilePath: String = Fixtures.profilesDirectory) throws {
        self.profilePath = profilePath
        directory = try Subprocess.temporaryDirectory()
        chmod(directory, 0o755)
        policyFile = directory + "/burrow.toml"
        try policy.write(toFile: policyFile, atomically: true, encoding: .utf8)
        try start()
    }

    deinit { if let process { kill(process.pid, SIGKILL) } }

    func start() throws {
        unlink(socket)
        let p = try Subprocess.start(
            [Subprocess.burrowd, "--policy", policyFile, "--socket", socket, "--audit-db", auditDB, "--registry-db", directory + "/registry.db"],
            environment: ["BURROW_PROFILE_PATH": profilePath])
        process = p
        for _ in 0..<200 {
            if (try? client.send("GET", "/v1/health"))?.status == 200 { return }
            usleep(25_000)
        }
        kill(p.pid, SIGKILL)
        throw RequirementUnmet(description: "burrowd did not start: \(try p.finish().stderr)")
    }

    /// Signals burrowd and waits for it; returns its result.
    func stop(_ signal: Int32) throws -> Subprocess.Result {
        guard let p = process else { throw RequirementUnmet(description: "not running") }
        kill(p.pid, signal)
        process = nil
        return try p.finish()
    }

    func burrow(_ args: [String], stdin: Data = Data()) throws -> Subprocess.Result {
        try Subprocess.run([Subprocess.burrow] + args, stdin: stdin, environment: ["BURROW_SOCKET": socket, "BURROW_PROFILE_PATH": Fixtures.profilesDirectory])
    }

    func request<T: Decodable>(_ method: String, _ path: String, _ body: (some Encodable)? = Optional<Int>.none, as: T.Type) throws -> (Int, T?, UnixHTTPClient.Response) {
        let bytes = try body.map { Array(try JSONEncoder().encode($0)) }
        let response = try client.send(method, path, body: bytes)
        return (response.status, try? JSONDecoder().decode(T.self, from: Data(response.body)), response)
    }

    func trail(_ tool: String) throws -> [AuditEvent] {
        try request("GET", "/v1/security/audit/\(tool)?limit=1000", as: [AuditEvent].self).1 ?? []
    }

    /// The invocation id of the first ToolInvoked of `tool`, once it is there.
    func waitForInvocation(_ tool: String) throws -> AuditEvent {
        for _ in 0..<400 {
            if let e = try trail(tool).first(where: { $0.type == .toolInvoked }) { return e }
            usleep(25_000)
        }
        throw RequirementUnmet(description: "no ToolInvoked for \(tool)")
    }
}

/// The pids whose parent is `parent` and whose name is `name` (/proc/PID/stat).
func children(of parent: Int32, named name: String) -> [Int32] {
    let proc = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return proc.compactMap(Int32.init).filter { pid in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        let comm = stat[stat.index(after: stat.firstIndex(of: "(")!)..<close]
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        return comm == name && fields.count > 1 && Int32(fields[1]) == parent
    }
}

/// Whether the process is PID 1 of a PID namespace below ours (a sandbox's init).
func isSandboxInit(_ pid: Int32) -> Bool {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    return status.split(separator: "\n").first { $0.hasPrefix("NSpid:") }?.split(whereSeparator: \.isWhitespace).last == "1"
}

func isZombie(_ pid: Int32) -> Bool {
    ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "").contains(") Z ")
}

/// Processes whose cgroup names this invocation (its sandbox's tasks).
func tasks(ofInvocation id: String) -> [String] {
    let proc = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return proc.filter { $0.allSatisfy(\.isNumber) }.filter { pid in
        ((try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? "").contains(id)
    }
}

@Suite(
    "burrowd invocations (live)", .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.seccomp), .requires(.landlock),
    .requires(.cgroupLimits), .requires(.installed("/usr/bin/curl")), .requires(.installed("/usr/bin/setpriv")), .timeLimit(.minutes(3)))
struct DaemonInvocationTests {
    init() throws {
        for r in Requirement.sandbox { try r.check() }
    }

    static let policy = """
        [rate_limits]
        requests_per_minute = 1000
        max_concurrent = 4
        registration_attempts_per_hour = 100
        [daemon]
        max_output_size = "1K"
        shutdown_grace = "1s"
        invokers = ["uid:65534"]
        auditors = []
        """

    static func register(_ daemon: LiveDaemon, _ extra: [String] = []) throws {
        let r = try daemon.burrow(["tools", "register", "--profile", Fixtures.profilesDirectory + "/minimal.toml", "--version", "1.0.0", "--category", "shell"] + extra + ["--", "sh", "-c"])
        try #require(r.status == 0, "\(r.stderr)")
    }

    @Test("a registry-like client registers, invokes (plain, streamed, CLI), reads the result, the audit trail and the metrics")
    func endToEnd() throws {
        let daemon = try LiveDaemon(policy: Self.policy)
        try Self.register(daemon)

        // The CLI: output streamed to our stdout and stderr, the tool's exit status.
        let cli = try daemon.burrow(["invoke", "minimal", "--", "echo out; echo err >&2; exit 3"])
        #expect(cli.status == 3 && cli.output == "out\n" && cli.stderr.contains("err"), "\(cli.stderr)")
        let piped = try daemon.burrow(["invoke", "minimal", "--stdin", "-", "--env", "LANG=C.UTF-8", "--", "cat; echo \"$LANG\""], stdin: Data("from stdin\n".utf8))
        #expect(piped.status == 0 && piped.output == "from stdin\nC.UTF-8\n", "\(piped.stderr)")
        let refusedEnv = try daemon.burrow(["invoke", "minimal", "--env", "AWS_SECRET=x", "--", "true"])
        #expect(refusedEnv.status == 125 && refusedEnv.stderr.contains("environment_not_allowed"))

        // Plain JSON: capped output with its true size.
        let loop = "i=0; while [ $i -lt 300 ]; do echo 0123456789; i=$((i+1)); done"
        let (status, result, _) = try daemon.request("POST", "/v1/tools/minimal/invocations", InvocationRequest(arguments: [loop]), as: InvocationResult.self)
        let r = try #require(result, "status \(status)")
        // Cloned by burrow-spawner (burrowd's small helper), not in process.
        #expect(!(r.notes ?? []).contains { $0.contains("cloned in process") }, "\(r.notes ?? [])")
        #expect(children(of: try #require(daemon.process?.pid), named: "burrow-spawner").filter { !isSandboxInit($0) }.count == 1)
        #expect(r.state == .finished && r.exitCode == 0 && r.stdout?.bytes == 3300 && r.stdout?.truncated == true && r.stdout?.text?.utf8.count == 1024)
        #expect(r.spawnMicroseconds ?? 0 > 0 && r.durationMilliseconds != nil)
        let stored = try daemon.request("GET", "/v1/invocations/\(r.id)", as: InvocationResult.self).1
        #expect(stored == r)

        // About 1 MiB of arguments: one message to burrow-spawner, still cloned by it.
        let big = InvocationRequest(arguments: ["echo $#", "x"] + Array(repeating: String(repeating: "a", count: 100_000), count: 10))
        let bigResult = try #require(try daemon.request("POST", "/v1/tools/minimal/invocations", big, as: InvocationResult.self).1)
        #expect(bigResult.exitCode == 0 && bigResult.stdout?.text == "10\n", "\(bigResult)")
        #expect(!(bigResult.notes ?? []).contains { $0.contains("cloned in process") }, "\(bigResult.notes ?? [])")

        // Streamed: started, output, exited with the same result shape.
        var lines: [InvocationEvent] = []
        var pending = Data()
        let streamed = try daemon.client.send(
            "POST", "/v1/tools/minimal/invocations?stream=1", body: Array(try JSONEncoder().encode(InvocationRequest(arguments: ["echo one; sleep 0.2; echo two"]))),
            onBody: { bytes in
                pending += bytes
                while let nl = pending.firstIndex(of: 10) {
                    if let e = try? JSONDecoder().decode(InvocationEvent.self, from: pending[pending.startIndex..<nl]) { lines.append(e) }
                    pending = Data(pending[(nl + 1)...])
                }
            })
        #expect(streamed.status == 200 && streamed.header("content-type") == "application/x-ndjson")
        #expect(lines.map(\.event) == ["started", "stdout", "stdout", "exited"], "\(lines.map(\.event))")
        #expect(lines.filter { $0.event == "stdout" }.compactMap(\.text) == ["one\n", "two\n"])
        #expect(lines.last?.result?.exitCode == 0 && lines.last?.result?.stdout?.text == "one\ntwo\n")

        // The audit trail through the socket: one ToolInvoked and one terminal event per invocation.
        let trail = try daemon.trail("minimal")
        #expect(trail.first?.type == .toolRegistered)
        let invocations = Dictionary(grouping: trail.filter { $0.context.invocationID != nil }, by: { $0.context.invocationID! })
        #expect(invocations.count == 5)
        for (_, events) in invocations {
            #expect(events.filter { $0.type == .toolInvoked }.count == 1 && events.filter { $0.type.isTerminal }.count == 1)
            #expect(events.allSatisfy { $0.context.principal == "root" })
        }
        #expect(trail.contains { $0.type == .permissionDenied && $0.details["reason"]?.stringValue == "environment_not_allowed" })

        let metrics = String(decoding: try daemon.client.send("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains("burrow_invocations_total{outcome=\"completed\"} 4"), "\(metrics)")
        #expect(metrics.contains("burrow_invocations_total{outcome=\"failed\"} 1"))
        #expect(metrics.contains("burrow_spawn_seconds_count 5") && metrics.contains("burrow_active_sandboxes 0"))
        #expect(metrics.contains("burrow_denials_total{reason=\"environment_not_allowed\"} 1"))

        // A caller of another uid: nobody may invoke but not read the trail; uid 1 may do neither.
        func curl(_ uid: UInt32, _ method: String, _ path: String, _ body: String = "") throws -> Int {
            let out = try Subprocess.run([
                "/usr/bin/setpriv", "--reuid", "\(uid)", "--regid", "65534", "--clear-groups", "/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                "--unix-socket", daemon.socket, "-X", method, "-d", body, "http://burrowd" + path,
            ])
            return Int(out.output) ?? 0
        }
        chmod(daemon.socket, 0o666)
        #expect(try curl(65534, "POST", "/v1/tools/minimal/invocations", "{\"arguments\": [\"true\"]}") == 200)
        #expect(try curl(65534, "GET", "/v1/security/audit/minimal") == 403)
        #expect(try curl(1, "POST", "/v1/tools/minimal/invocations", "{\"arguments\": [\"true\"]}") == 403)
        let denied = try daemon.trail("minimal").filter { $0.type == .permissionDenied && $0.details["reason"]?.stringValue == "role_required" }
        #expect(Set(denied.map(\.context.uid)) == [65534, 1])
        #expect(try daemon.stop(SIGTERM).status == 0)
    }

    @Test("profile parameters through burrowd: the request's values become the grant and the command, ToolInvoked records them, bad or missing ones are refused")
    func parameters() throws {
        let work = try Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        chmod(work, 0o755)
        try FileManager.default.createDirectory(atPath: work + "/out", withIntermediateDirectories: true)
        let daemon = try LiveDaemon(policy: Self.policy + "\n[parameters]\nallowed_roots = [\"\(work)\"]\n")
        let profile = """
            extends = "minimal"
            [tool]
            id = "param-tool"
            name = "param"
            version = "1"
            [parameters.out]
            type = "path"
            must_exist = true
            writable = true
            [permissions]
            execute = ["sh"]
            file_write = ["${out}/**"]
            """
        let registration: [String: Any] = ["id": "param-tool", "metadata": ["name": "param", "version": "1"], "command": ["sh", "-c"], "profile": profile]
        let registered = try daemon.client.send("POST", "/v1/tools", body: Array(try JSONSerialization.data(withJSONObject: registration)))
        try #require(registered.status == 201, "\(String(decoding: registered.body, as: UTF8.self))")

        let ok = try daemon.request(
            "POST", "/v1/tools/param-tool/invocations", InvocationRequest(arguments: ["echo written > ${out}/f && echo ${out}"], parameters: ["out": work + "/out"]),
            as: InvocationResult.self)
        let result = try #require(ok.1, "\(String(decoding: ok.2.body, as: UTF8.self))")
        #expect(result.exitCode == 0 && result.stdout?.text == work + "/out\n", "\(result)")
        #expect(try String(contentsOfFile: work + "/out/f", encoding: .utf8) == "written\n")
        let invoked = try #require(try daemon.trail("param-tool").first { $0.type == .toolInvoked })
        #expect(invoked.details["parameters"] == .object(["out": .string(work + "/out")]), "\(invoked.details)")

        // The CLI client passes them too.
        let cli = try daemon.burrow(["invoke", "param-tool", "--param", "out=\(work)/out", "--", "read l < ${out}/f && echo $l"])
        #expect(cli.status == 0 && cli.output == "written\n", "\(cli.status) \(cli.output) \(cli.stderr)")

        for (parameters, why) in [([:], "needs a value"), (["out": "/etc"], "allowed_roots"), (["out": work + "/out", "x": "1"], "unknown parameter 'x'")] {
            let refused = try daemon.client.send(
                "POST", "/v1/tools/param-tool/invocations", body: Array(try JSONEncoder().encode(InvocationRequest(arguments: ["true"], parameters: parameters))))
            let body = String(decoding: refused.body, as: UTF8.self)
            #expect(refused.status == 409 && body.contains("profile_invalid") && body.contains(why), "\(refused.status) \(body)")
        }
    }

    @Test("an edited base profile applies from the next invocation on (what a registration extends is read again each time, not kept)")
    func editedBaseProfileApplies() throws {
        let profiles = try Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: profiles) }
        chmod(profiles, 0o755)
        let minimal = try String(contentsOfFile: Fixtures.profilesDirectory + "/minimal.toml", encoding: .utf8)
        let base = minimal.replacingOccurrences(of: "id = \"minimal\"", with: "id = \"edited-base\"")
        try #require(base.contains("max_open_files = 128"))
        try base.write(toFile: profiles + "/edited-base.toml", atomically: true, encoding: .utf8)

        let daemon = try LiveDaemon(policy: Self.policy, profilePath: profiles)
        let registration = """
            {"id": "memo-tool", "metadata": {"name": "memo", "version": "1"}, "command": ["sh", "-c"],
             "profile": "extends = \\"edited-base\\"\\n[tool]\\nid = \\"memo-tool\\"\\nname = \\"memo\\"\\nversion = \\"1\\"\\n"}
            """
        let registered = try daemon.client.send("POST", "/v1/tools", body: Array(registration.utf8))
        try #require(registered.status == 201, "\(String(decoding: registered.body, as: UTF8.self))")
        func openFiles() throws -> String? {
            try daemon.request("POST", "/v1/tools/memo-tool/invocations", InvocationRequest(arguments: ["ulimit -n"]), as: InvocationResult.self).1?.stdout?.text
        }
        #expect(try openFiles() == "128\n")
        #expect(try openFiles() == "128\n")
        // The next sandbox, built ahead from the base as it was, waits ...
        let burrowd = try #require(daemon.process?.pid)
        func held() -> [Int32] { children(of: burrowd, named: "burrow-spawner").filter { isSandboxInit($0) && !isZombie($0) } }
        for _ in 0..<100 where held().isEmpty { usleep(20_000) }
        #expect(!held().isEmpty, "a sandbox was built ahead")
        // ... and does not fit once the base is rewritten in place: read again by the next invocation.
        try base.replacingOccurrences(of: "max_open_files = 128", with: "max_open_files = 96").write(toFile: profiles + "/edited-base.toml", atomically: false, encoding: .utf8)
        #expect(try openFiles() == "96\n")
    }

    @Test("a used tool's next sandbox is built ahead and serves the next request that fits: its own argv, environment, stdin and deadline; an update or removal discards it")
    func warmSandbox() throws {
        let daemon = try LiveDaemon(policy: Self.policy)
        func registration(_ limits: String = "") throws -> [UInt8] {
            let profile = "extends = \"minimal\"\n[tool]\nid = \"warm-tool\"\nname = \"warm\"\nversion = \"1\"\n" + limits
            let body: [String: Any] = ["id": "warm-tool", "metadata": ["name": "warm", "version": "1"], "command": ["sh", "-c"], "profile": profile]
            return Array(try JSONSerialization.data(withJSONObject: body))
        }
        let registered = try daemon.client.send("POST", "/v1/tools", body: try registration())
        try #require(registered.status == 201, "\(String(decoding: registered.body, as: UTF8.self))")
        let burrowd = try #require(daemon.process?.pid)
        func held() -> [Int32] { children(of: burrowd, named: "burrow-spawner").filter { isSandboxInit($0) && !isZombie($0) } }
        func invoke(_ request: InvocationRequest) throws -> InvocationResult {
            try #require(try daemon.request("POST", "/v1/tools/warm-tool/invocations", request, as: InvocationResult.self).1)
        }
        func built(_ r: InvocationResult) -> Bool { (r.notes ?? []).contains { $0.hasPrefix("sandbox built ahead of the request") } }
        func metric(_ outcome: String) throws -> Int {
            let text = String(decoding: try daemon.client.send("GET", "/metrics").body, as: UTF8.self)
            let line = text.split(separator: "\n").first { $0.hasPrefix("burrow_warm_sandboxes_total{outcome=\"\(outcome)\"}") }
            return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        }
        let first = try invoke(InvocationRequest(arguments: ["id -u"]))
        #expect(first.exitCode == 0 && !built(first), "\(first)")
        // The next sandbox is built on a thread of its own after the first request.
        var warm: InvocationResult?
        for _ in 0..<100 {
            usleep(20_000)
            let r = try invoke(
                InvocationRequest(arguments: ["echo \"$0|$1|$LANG|$(cat)|$(id -u)\"", "zero", "arg-1"], stdin: "from-stdin", environment: ["LANG": "C.UTF-8"]))
            #expect(r.exitCode == 0, "\(r)")
            if built(r) {
                warm = r
                break
            }
        }
        let r = try #require(warm, "no invocation was served by a sandbox built ahead")
        let fields = (r.stdout?.text ?? "").dropLast().split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        #expect(fields.count == 5 && fields[0] == "zero" && fields[1] == "arg-1" && fields[2] == "C.UTF-8" && fields[3] == "from-stdin", "\(fields)")
        // Its own sandbox identity, not the first invocation's (ids are leased per live sandbox).
        #expect(fields.count == 5 && Int(fields[4]) != nil && fields[4] != first.stdout?.text?.dropLast().description, "\(fields)")
        // The audit trail names the request's argv, and its result the sandbox it used.
        let invoked = try daemon.trail("warm-tool").first { $0.context.invocationID == r.id && $0.type == .toolInvoked }
        #expect(invoked?.details["argv"]?.arrayValue?.compactMap(\.stringValue).last == "arg-1", "\(String(describing: invoked))")
        #expect(try metric("hit") >= 1)

        // A shorter deadline than the plan it was built from still holds (the supervisor's, from the request's plan).
        var deadline: InvocationResult?
        for _ in 0..<50 {
            usleep(20_000)
            let d = try invoke(InvocationRequest(arguments: ["sleep 5"], timeoutSeconds: 0.3))
            if built(d) {
                deadline = d
                break
            }
        }
        let d = try #require(deadline, "no timed request was served by a sandbox built ahead")
        #expect(d.limits.contains { $0.resource == "max_execution_time" } && (d.durationMilliseconds ?? 0) < 3000, "\(d)")

        // An update discards what was built from the old registration: the
        // next request runs the new profile (max_open_files 64, not 128).
        for _ in 0..<100 where held().isEmpty { usleep(20_000) }
        try #require(!held().isEmpty, "a sandbox was built ahead")
        let put = try daemon.client.send("PUT", "/v1/tools/warm-tool", body: try registration("[resource_limits]\nmax_open_files = 64\n"))
        try #require(put.status == 200, "\(String(decoding: put.body, as: UTF8.self))")
        let after = try invoke(InvocationRequest(arguments: ["ulimit -n"]))
        #expect(after.stdout?.text == "64\n" && !built(after), "\(after)")

        // Removal discards the one built after that request: no held sandbox is left.
        for _ in 0..<100 where held().isEmpty { usleep(20_000) }
        try #require(!held().isEmpty, "a sandbox was built ahead")
        let removed = try daemon.client.send("DELETE", "/v1/tools/warm-tool")
        try #require(removed.status == 200)
        for _ in 0..<100 where !held().isEmpty { usleep(20_000) }
        #expect(held().isEmpty, "\(held())")
        _ = try daemon.stop(SIGTERM)
    }

    @Test("concurrent invocations from several clients all complete (no sandbox child inherits a lock held by another thread)")
    func concurrentClients() async throws {
        let daemon = try LiveDaemon(policy: Self.policy)
        try Self.register(daemon)
        let results = await withTaskGroup(of: [Int32?].self) { group in
            for client in 0..<4 {
                group.addTask {
                    (0..<40).map { i in
                        let request = InvocationRequest(arguments: ["echo \(client)-\(i)"])
                        let result = try? daemon.request("POST", "/v1/tools/minimal/invocations", request, as: InvocationResult.self).1
                        return result?.stdout?.text == "\(client)-\(i)\n" ? result?.exitCode : nil
                    }
                }
            }
            var all: [Int32?] = []
            for await part in group { all += part }
            return all
        }
        #expect(results.count == 160 && results.allSatisfy { $0 == 0 }, "\(results.filter { $0 != 0 }.count) of 160 failed")
        _ = try daemon.stop(SIGTERM)
    }

    @Test("a streaming caller that leaves stops the tool, even a silent one; a plain caller's result stays readable")
    func streamingDisconnect() throws {
        let daemon = try LiveDaemon(policy: Self.policy)
        try Self.register(daemon)
        let client = try Subprocess.start([
            "/usr/bin/curl", "-sN", "--unix-socket", daemon.socket, "-X", "POST", "-d", "{\"arguments\": [\"sleep 60\"]}",
            "http://burrowd/v1/tools/minimal/invocations?stream=1",
        ])
        let id = try #require(try daemon.waitForInvocation("minimal").context.invocationID)
        kill(client.pid, SIGKILL)
        _ = try client.finish()
        var terminal: AuditEvent?
        for _ in 0..<200 where terminal == nil {
            terminal = try daemon.trail("minimal").first { $0.context.invocationID == id && $0.type.isTerminal }
            if terminal == nil { usleep(25_000) }
        }
        #expect(terminal?.details["reason"]?.stringValue == "stopped", "\(String(describing: terminal))")
        #expect(terminal?.details["message"]?.stringValue == "the client disconnected from the stream")
        _ = try daemon.stop(SIGTERM)
    }

    @Test("max_concurrent and requests_per_minute refuse with 429 and Retry-After; each refusal is audited")
    func callerLimits() throws {
        let daemon = try LiveDaemon(policy: Self.policy)
        try Self.register(daemon, ["--max-concurrent", "1", "--requests-per-minute", "3"])
        let long = try Subprocess.start([
            "/usr/bin/curl", "-s", "--unix-socket", daemon.socket, "-X", "POST", "-d", "{\"arguments\": [\"sleep 3\"]}", "http://burrowd/v1/tools/minimal/invocations",
        ])
        _ = try daemon.waitForInvocation("minimal")
        let (busy, _, busyResponse) = try daemon.request("POST", "/v1/tools/minimal/invocations", InvocationRequest(arguments: ["true"]), as: ErrorBody.self)
        #expect(busy == 429 && busyResponse.header("retry-after") == "1")
        #expect(String(decoding: busyResponse.body, as: UTF8.self).contains("too_many_concurrent"))
        _ = try long.finish()
        #expect(try daemon.request("POST", "/v1/tools/minimal/invocations", InvocationRequest(arguments: ["true"]), as: InvocationResult.self).0 == 200)
        #expect(try daemon.request("POST", "/v1/tools/minimal/invocations", InvocationRequest(arguments: ["true"]), as: InvocationResult.self).0 == 200)
        // Three tokens a minute, all spent: the next is due in about 20 s.
        let (limited, error, response) = try daemon.request("POST", "/v1/tools/minimal/invocations", InvocationRequest(arguments: ["true"]), as: ErrorBody.self)
        #expect(limited == 429 && error?.error.code == "rate_limited" && (Int(response.header("retry-after") ?? "") ?? 0) >= 15)
        let reasons = try daemon.trail("minimal").filter { $0.type == .permissionDenied }.compactMap { $0.details["reason"]?.stringValue }
        #expect(reasons == ["too_many_concurrent", "rate_limited"])
        _ = try daemon.stop(SIGTERM)
    }

    @Test("SIGTERM: running invocations get the grace period, then are stopped and audited; registrations survive the restart")
    func gracefulStop() throws {
        // Long enough for the quick one even on a loaded machine.
        let daemon = try LiveDaemon(policy: Self.policy.replacingOccurrences(of: "shutdown_grace = \"1s\"", with: "shutdown_grace = \"4s\""))
        try Self.register(daemon)
        let quick = try Subprocess.start([
            "/usr/bin/curl", "-s", "--unix-socket", daemon.socket, "-X", "POST", "-d", "{\"arguments\": [\"sleep 0.3; echo done\"]}",
            "http://burrowd/v1/tools/minimal/invocations",
        ])
        let slow = try Subprocess.start([
            "/usr/bin/curl", "-s", "--unix-socket", daemon.socket, "-X", "POST", "-d", "{\"arguments\": [\"sleep 60\"]}", "http://burrowd/v1/tools/minimal/invocations",
        ])
        for _ in 0..<200 where try daemon.trail("minimal").filter({ $0.type == .toolInvoked }).count < 2 { usleep(25_000) }
        let started = ContinuousClock.now
        let exit = try daemon.stop(SIGTERM)
        #expect(exit.status == 0, "\(exit.stderr)")
        #expect(ContinuousClock.now - started < .seconds(15))
        let finished = try JSONDecoder().decode(InvocationResult.self, from: try quick.finish().stdout)
        #expect(finished.exitCode == 0 && finished.stdout?.text == "done\n" && finished.stopped == nil, "\(finished)")
        let stopped = try JSONDecoder().decode(InvocationResult.self, from: try slow.finish().stdout)
        #expect(stopped.signal == SIGKILL && stopped.stopped?.contains("grace period") == true, "\(stopped)")

        try daemon.start()
        let terminal = try daemon.trail("minimal").filter { $0.context.invocationID == stopped.id && $0.type.isTerminal }
        #expect(terminal.count == 1 && terminal.first?.type == .toolFailed && terminal.first?.details["reason"]?.stringValue == "stopped")
        let tools = try daemon.request("GET", "/v1/tools", as: [ToolRecord].self).1
        #expect(tools?.map(\.registration.id) == ["minimal"])
        #expect(tasks(ofInvocation: stopped.id).isEmpty)
        _ = try daemon.stop(SIGTERM)
    }

    @Test("SIGKILL mid-invocation: the sandbox dies with burrowd; the restart sweeps its cgroup and completes the audit trail")
    func killedDaemon() throws {
        let daemon = try LiveDaemon(policy: Self.policy)
        try Self.register(daemon)
        let client = try Subprocess.start([
            "/usr/bin/curl", "-sN", "--unix-socket", daemon.socket, "-X", "POST", "-d", "{\"arguments\": [\"sleep 60\"]}",
            "http://burrowd/v1/tools/minimal/invocations?stream=1",
        ])
        let invoked = try daemon.waitForInvocation("minimal")
        let id = try #require(invoked.context.invocationID)
        let sandboxUID = try #require(invoked.details["sandboxID"]?.integerValue)
        for _ in 0..<100 where tasks(ofInvocation: id).isEmpty { usleep(20_000) }
        #expect(!tasks(ofInvocation: id).isEmpty, "the sandbox runs in its invocation cgroup")

        // The helper and the sandbox's init (cloned from it, burrowd's child by
        // CLONE_PARENT); maybe the next one's, built ahead and not yet exec'd.
        let spawners = children(of: try #require(daemon.process?.pid), named: "burrow-spawner")
        #expect(spawners.filter { !isSandboxInit($0) }.count == 1 && spawners.filter(isSandboxInit).count >= 1, "\(spawners)")
        _ = try daemon.stop(SIGKILL)
        _ = try client.finish()
        for _ in 0..<200 where spawners.contains(where: { kill($0, 0) == 0 && !isZombie($0) }) { usleep(25_000) }
        #expect(!spawners.contains { kill($0, 0) == 0 && !isZombie($0) }, "burrow-spawner and the sandbox's init die with burrowd")
        // The sandbox's parent-death signal fired with burrowd's supervising thread.
        for _ in 0..<200 where !tasks(ofInvocation: id).isEmpty { usleep(25_000) }
        #expect(tasks(ofInvocation: id).isEmpty, "no task of the invocation outlives burrowd")
        func leftovers() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { pid in
                ((try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? "").contains("Uid:\t\(sandboxUID)\t")
            }
        }
        // Tasks killed with their PID namespace take a moment to be reaped.
        for _ in 0..<200 where !leftovers().isEmpty { usleep(25_000) }
        #expect(leftovers().isEmpty, "processes of sandbox uid \(sandboxUID): \(leftovers())")

        try daemon.start()
        let events = try daemon.trail("minimal").filter { $0.context.invocationID == id }
        #expect(events.map(\.type) == [.toolInvoked, .toolFailed])
        #expect(events.last?.details["reason"]?.stringValue == "supervisor_lost")
        let result = try daemon.request("GET", "/v1/invocations/\(id)", as: InvocationResult.self).1
        #expect(result?.state == .failed && result?.error?.code == "supervisor_lost")
        // And it is still one intact chain.
        let verify = try Subprocess.run([Subprocess.burrow, "audit", "verify", "--audit-db", daemon.auditDB])
        #expect(verify.status == 0, "\(verify.output)\(verify.stderr)")
        _ = try daemon.stop(SIGTERM)
    }
}
