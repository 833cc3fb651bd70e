import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// burrowd's periodic health checks (live): an MCP server that starts
/// failing and recovers, one that stops answering, a plain tool's health
/// command, the checks' share of the tool's slots, and what a registration
/// may not ask for.
@Suite(
    "health checks", .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.seccomp), .requires(.landlock), .requires(.cgroupLimits),
    .requires(.installed("/usr/bin/python3")), .timeLimit(.minutes(3)))
struct HealthCheckTests {
    init() throws {
        for r in Requirement.sandbox { try r.check() }
    }

    static let policy = """
        [rate_limits]
        requests_per_minute = 1000
        max_concurrent = 4
        registration_attempts_per_hour = 100
        [daemon]
        shutdown_grace = "1s"
        health_min_interval = "1s"
        """

    /// A directory the sandbox may read, holding the server's mode file.
    static func modeDirectory() throws -> String {
        let directory = try Subprocess.temporaryDirectory()
        chmod(directory, 0o755)
        try setMode(directory, "ok")
        return directory
    }

    static func setMode(_ directory: String, _ mode: String) throws {
        try mode.write(toFile: directory + "/mode", atomically: true, encoding: .utf8)
        chmod(directory + "/mode", 0o644)
    }

    /// Registers Tests/MCP/flaky_server.py as `flaky`, checked every second.
    static func registerServer(_ daemon: LiveDaemon, _ directory: String, extra: [String] = []) throws {
        let profile = directory + "/flaky.toml"
        try """
        extends = "mcp-base"
        [tool]
        id = "flaky"
        name = "an MCP server whose health the test sets"
        version = "1"
        [permissions]
        file_read = ["/usr/lib/python3.11/**", "\(Fixtures.repositoryRoot)/Tests/MCP/**", "\(directory)/**"]
        """.write(toFile: profile, atomically: true, encoding: .utf8)
        chmod(profile, 0o644)
        let r = try daemon.burrow(
            ["tools", "register", "--profile", profile, "--health-interval", "1", "--health-timeout", "3", "--health-threshold", "3"] + extra + [
                "--", "/usr/bin/python3", Fixtures.repositoryRoot + "/Tests/MCP/flaky_server.py", directory + "/mode",
            ])
        try #require(r.status == 0, "\(r.stderr)")
    }

    static func health(_ daemon: LiveDaemon, _ tool: String) throws -> ToolHealth? {
        try daemon.request("GET", "/v1/tools/\(tool)", as: ToolDetail.self).1?.tool.health
    }

    /// Waits (up to 30 s) until the tool's health checks find `status`.
    @discardableResult
    static func waitFor(_ daemon: LiveDaemon, _ tool: String, _ status: ToolHealth.Status) throws -> ToolHealth {
        var last: ToolHealth?
        for _ in 0..<300 {
            last = try health(daemon, tool)
            if let last, last.status == status { return last }
            usleep(100_000)
        }
        throw RequirementUnmet(description: "\(tool) never became \(status.rawValue): \(String(describing: last))")
    }

    static func healthEvents(_ daemon: LiveDaemon, _ tool: String) throws -> [AuditEvent] {
        try daemon.trail(tool).filter { $0.type == .toolUpdated && $0.details["health"] != nil }
    }

    @Test("an MCP server that starts failing turns degraded, then unavailable, and active again when it recovers; each change audited; checks are no caller's runs")
    func serverFailsAndRecovers() throws {
        let daemon = try LiveDaemon(policy: Self.policy)
        let directory = try Self.modeDirectory()
        try Self.registerServer(daemon, directory)
        let healthy = try Self.waitFor(daemon, "flaky", .active)
        #expect(healthy.version == "1" && healthy.consecutiveFailures == 0 && healthy.checkedAt != nil, "\(healthy)")
        #expect(try Self.healthEvents(daemon, "flaky").isEmpty, "a first check that passes changes nothing anyone should hear of")

        try Self.setMode(directory, "crash")
        // Degraded for two checks: the list by status shows it so, the operator's status stays active.
        var listed: [ToolRecord] = []
        for _ in 0..<300 where listed.isEmpty {
            listed = try daemon.request("GET", "/v1/tools?status=degraded", as: [ToolRecord].self).1 ?? []
            if listed.isEmpty { usleep(50_000) }
        }
        #expect(listed.map(\.registration.id) == ["flaky"] && listed.first?.registration.status == .active && listed.first?.status == .degraded, "\(listed)")
        let degraded = try #require(listed.first?.health)
        #expect((1...2).contains(degraded.consecutiveFailures) && degraded.lastError != nil, "\(degraded)")
        let raw = String(decoding: try daemon.client.send("GET", "/v1/tools?status=degraded").body, as: UTF8.self)
        #expect(raw.contains(#""status":"degraded""#), "Burrow's form carries the status callers see: \(raw)")
        let down = try Self.waitFor(daemon, "flaky", .unavailable)
        #expect(down.consecutiveFailures >= 3, "\(down)")
        let (_, spec, _) = try daemon.request("GET", "/api/v1/tools/flaky", as: JSON.self)
        #expect(spec?["tool"]?["status"] == .string("unavailable") && spec?["tool"]?["health_state"]?["status"] == .string("unavailable"), "\(String(describing: spec))")
        #expect(spec?["tool"]?["health"]?["interval_seconds"] == .number("1"), "\(String(describing: spec))")
        let (_, none, _) = try daemon.request("GET", "/v1/tools?status=active", as: [ToolRecord].self)
        #expect(none?.isEmpty == true, "an unavailable tool is not listed as active")
        let metrics = String(decoding: try daemon.client.send("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains(#"burrow_tool_health{tool="flaky"} 2"#) && metrics.contains(#"burrow_health_checks_total{tool="flaky",outcome="failed"}"#), "\(metrics)")

        try Self.setMode(directory, "ok")
        try Self.waitFor(daemon, "flaky", .active)
        let events = try Self.healthEvents(daemon, "flaky")
        let changes = events.map { "\($0.details["previousStatus"]?.stringValue ?? "?")→\($0.details["status"]?.stringValue ?? "?")" }
        #expect(changes == ["active→degraded", "degraded→unavailable", "unavailable→active"], "\(changes)")
        #expect(events.allSatisfy { $0.context.principal == "burrowd:health" && $0.details["health"]?["check"] == .string("mcp") })
        #expect(events.first?.details["health"]?["reason"]?.stringValue != nil, "a failure says why")
        // The checks are runs of their own, audited, and counted in nobody's statistics.
        let trail = try daemon.trail("flaky")
        #expect(trail.contains { $0.type == .toolInvoked && $0.context.principal == "burrowd:health" })
        let (_, detail, _) = try daemon.request("GET", "/v1/tools/flaky", as: ToolDetail.self)
        #expect(detail?.statistics?.invocations == 0, "\(String(describing: detail?.statistics))")
        let shown = try daemon.burrow(["tools", "show", "flaky"])
        #expect(shown.output.contains("every 1 s") && shown.output.contains("active since"), "\(shown.output)")
        let audit = try Subprocess.run([Subprocess.burrow, "audit", "--audit-db", daemon.auditDB, "--tool", "flaky", "--type", "ToolUpdated"])
        #expect(audit.output.contains("health 1: degraded → unavailable (mcp check)"), "\(audit.output) \(audit.stderr)")
    }

    @Test("a server that stops answering fails its check at the timeout; a check that finds every slot taken is skipped, not failed")
    func timeoutAndSlots() throws {
        let daemon = try LiveDaemon(policy: Self.policy)
        let directory = try Self.modeDirectory()
        try Self.registerServer(daemon, directory, extra: ["--max-concurrent", "1"])
        try Self.waitFor(daemon, "flaky", .active)
        // A session holds the tool's only slot: the checks meanwhile are skipped.
        // A check may hold the only slot for a moment: retried until the session has it.
        var started: SessionStarted?
        var last = ""
        for _ in 0..<100 where started == nil {
            let (status, answer, response) = try daemon.request("POST", "/v1/tools/flaky/sessions", [String: String](), as: SessionStarted.self)
            started = answer
            last = "\(status) \(String(decoding: response.body, as: UTF8.self))"
            if started == nil { usleep(50_000) }
        }
        let session = try #require(started, "\(last)")
        var skipped = false
        for _ in 0..<100 where !skipped {
            usleep(100_000)
            skipped = String(decoding: try daemon.client.send("GET", "/metrics").body, as: UTF8.self).contains(#"burrow_health_checks_total{tool="flaky",outcome="skipped"}"#)
        }
        #expect(skipped)
        #expect(try Self.health(daemon, "flaky")?.status == .active, "a skipped check changes nothing")
        #expect(try daemon.client.send("DELETE", session.endpoint).status == 204)

        try Self.setMode(directory, "hang")
        let degraded = try Self.waitFor(daemon, "flaky", .degraded)
        #expect(degraded.lastError?.contains("no answer within 3 s") == true, "\(degraded)")
        #expect((degraded.lastMilliseconds ?? 0) >= 3000, "\(degraded)")
    }

    @Test("a plain tool is checked by its health command: exit 0 is healthy, anything else fails it")
    func plainToolCommand() throws {
        let daemon = try LiveDaemon(policy: Self.policy)
        let directory = try Self.modeDirectory()
        let profile = directory + "/plain.toml"
        try """
        extends = "minimal"
        [tool]
        id = "plain"
        name = "a plain tool"
        version = "2"
        [permissions]
        file_read = ["\(directory)/**"]
        """.write(toFile: profile, atomically: true, encoding: .utf8)
        chmod(profile, 0o644)
        let r = try daemon.burrow([
            "tools", "register", "--profile", profile, "--health-interval", "1", "--health-threshold", "1", "--health-command",
            #"["sh", "-c", "read -r m < \#(directory)/mode; [ \"$m\" = ok ] || { echo sick >&2; exit 4; }"]"#, "--", "sh", "-c",
        ])
        try #require(r.status == 0, "\(r.stderr)")
        try Self.waitFor(daemon, "plain", .active)
        try Self.setMode(directory, "crash")
        let down = try Self.waitFor(daemon, "plain", .unavailable)
        #expect(down.lastError == "exit status 4: sick", "\(down)")
        #expect(try Self.healthEvents(daemon, "plain").first?.details["health"]?["check"] == .string("command"))
        try Self.setMode(directory, "ok")
        try Self.waitFor(daemon, "plain", .active)
        // A new version starts unchecked (its state is its own, after it was registered), and is then checked itself.
        let format = DateFormatter()
        format.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"
        format.timeZone = TimeZone(identifier: "UTC")
        format.locale = Locale(identifier: "en_US_POSIX")
        let before = format.string(from: Date())
        let update = try daemon.burrow(["tools", "register", "--profile", profile, "--version", "3", "--health-interval", "1", "--health-command", "sh", "--", "sh", "-c"])
        try #require(update.status == 0, "\(update.stderr)")
        let next = try Self.waitFor(daemon, "plain", .active)
        #expect(next.version == "3" && (next.checkedAt ?? "") >= before && next.consecutiveFailures == 0, "\(next)")
        // A health command the profile does not grant is refused at registration, not failed at every check.
        let ungranted = try daemon.burrow(["tools", "register", "--profile", profile, "--version", "4", "--health-interval", "1", "--health-command", "/usr/bin/python3", "--", "sh", "-c"])
        #expect(ungranted.status != 0 && ungranted.stderr.contains("health.command"), "\(ungranted.stderr)")
    }

    @Test("registrations that ask for what the checks cannot give are refused", .requires(.installed("/opt/burrow/venvs/mcp-server-time/bin/python3")))
    func refusals() throws {
        let daemon = try LiveDaemon(policy: Self.policy.replacingOccurrences(of: #"health_min_interval = "1s""#, with: ""))
        func register(_ extra: [String], _ command: [String] = ["sh", "-c"], profile: String = "/minimal.toml") throws -> Subprocess.Result {
            try daemon.burrow(["tools", "register", "--profile", Fixtures.profilesDirectory + profile, "--version", "1"] + extra + ["--"] + command)
        }
        let short = try register(["--health-interval", "5", "--health-command", "/bin/true"])
        #expect(short.status != 0 && short.stderr.contains("at least 10 on this host ([daemon] health_min_interval)"), "\(short.stderr)")
        let noCommand = try register(["--health-interval", "60"])
        #expect(noCommand.status != 0 && noCommand.stderr.contains("health.command"), "\(noCommand.stderr)")
        let serverCommand = try register(
            ["--health-interval", "60", "--health-command", "/bin/true"], ["/opt/burrow/venvs/mcp-server-time/bin/python3", "-m", "mcp_server_time"],
            profile: "/mcp-server-time.toml")
        #expect(serverCommand.status != 0 && serverCommand.stderr.contains("leave health.command out"), "\(serverCommand.stderr)")
        let status = try daemon.client.send(
            "POST", "/v1/tools",
            body: Array(
                #"{"id": "minimal", "metadata": {"name": "m", "version": "1"}, "profile": {"extends": "minimal"}, "command": ["sh"], "status": "unavailable"}"#.utf8))
        #expect(status.status == 400 && String(decoding: status.body, as: UTF8.self).contains("set by the tool's health checks"))
        // In the specification's form too: never silently taken as active.
        let spec = try daemon.client.send(
            "POST", "/api/v1/tools/register",
            body: Array(#"{"id": "minimal", "metadata": {"name": "m", "version": "1"}, "security": {}, "command": ["sh"], "status": "degraded"}"#.utf8))
        #expect(spec.status == 400 && String(decoding: spec.body, as: UTF8.self).contains("set by health checks"), "\(String(decoding: spec.body, as: UTF8.self))")
        let timeout = try register(["--health-interval", "60", "--health-timeout", "0", "--health-command", "/bin/true"])
        #expect(timeout.status != 0 && timeout.stderr.contains("health.timeoutSeconds"), "\(timeout.stderr)")
    }
}
