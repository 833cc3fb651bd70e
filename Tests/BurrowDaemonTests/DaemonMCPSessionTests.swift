import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// burrowd's MCP sessions with the MCP Python SDK's Streamable HTTP client
/// over the daemon's Unix socket, and the real mcp-server-time.
@Suite(
    "burrowd MCP sessions (live)", .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.seccomp), .requires(.landlock),
    .requires(.cgroupLimits), .requires(.installed("/opt/burrow/venvs/mcp-server-time/bin/python3")), .requires(.installed("/usr/bin/setpriv")),
    .requires(.installed("/usr/bin/curl")), .timeLimit(.minutes(2)))
struct DaemonMCPSessionTests {
    static let python = "/opt/burrow/venvs/mcp-server-time/bin/python3"

    init() throws {
        for r in Requirement.sandbox { try r.check() }
        try Requirement.installed(Self.python).check()
    }

    static func policy(maxConcurrent: Int = 4, idle: String = "10m", mcp: String = "") -> String {
        """
        [rate_limits]
        requests_per_minute = 1000
        max_concurrent = \(maxConcurrent)
        registration_attempts_per_hour = 100
        [daemon]
        shutdown_grace = "1s"
        invokers = ["uid:65534"]
        [mcp]
        session_idle_timeout = "\(idle)"
        \(mcp)
        """
    }

    static func register(_ daemon: LiveDaemon) throws {
        let r = try daemon.burrow(["tools", "register", "--profile", Fixtures.profilesDirectory + "/mcp-server-time.toml", "--version", "1", "--", python, "-m", "mcp_server_time"])
        try #require(r.status == 0, "\(r.stderr)")
    }

    static func start(_ daemon: LiveDaemon, _ tool: String = "mcp-server-time") throws -> (Int, SessionStarted?, String) {
        let (status, started, response) = try daemon.request("POST", "/v1/tools/\(tool)/sessions", [String: String](), as: SessionStarted.self)
        return (status, started, String(decoding: response.body, as: UTF8.self))
    }

    /// The session's own run has ended (its terminal event is in the log).
    static func waitForEnd(_ daemon: LiveDaemon, _ session: String) throws -> AuditEvent {
        for _ in 0..<300 {
            if let e = try daemon.trail("mcp-server-time").first(where: { $0.context.invocationID == session && ($0.type == .toolCompleted || $0.type == .toolFailed) }) {
                return e
            }
            usleep(20_000)
        }
        throw RequirementUnmet(description: "session \(session) did not end")
    }

    @Test("the SDK client speaks Streamable HTTP to a sandboxed server through the relay, in both eras; each call audited; DELETE ends it")
    func sessionEndToEnd() throws {
        let daemon = try LiveDaemon(policy: Self.policy())
        try Self.register(daemon)
        for mode in ["legacy", "auto"] {
            let (status, started, body) = try Self.start(daemon)
            let session = try #require(started, "\(status) \(body)")
            #expect(status == 201 && session.endpoint == "/v1/sessions/\(session.id)/mcp")
            let out = try Subprocess.run([Self.python, Fixtures.repositoryRoot + "/Tests/MCP/http_client.py", daemon.socket, session.endpoint, mode]).output
            if mode == "legacy" { #expect(out.contains("tools ['convert_time', 'get_current_time']"), "\(out)") } else { #expect(out.contains("version 2026-07-28"), "\(out)") }
            #expect(out.contains("ok False") && out.contains("Europe/Paris"), "\(out)")
            #expect(out.contains(#"bad raised MCPError "burrow: arguments.timezone: expected string, got integer"#), "\(out)")

            let events = try daemon.trail("mcp-server-time")
            let call = events.filter { $0.context.invocationID == session.id + "/1" }
            #expect(call.map(\.type) == [.toolInvoked, .toolCompleted], "\(events.map(\.type))")
            #expect(call.first?.details["name"]?.stringValue == "get_current_time")
            #expect(events.contains { $0.type == .permissionDenied && $0.context.invocationID == session.id && $0.details["reason"]?.stringValue == "invalid_arguments" })
            if mode == "legacy" {
                // The SDK's legacy transport sent DELETE on leaving: the session is over.
                #expect(try Self.waitForEnd(daemon, session.id).type == .toolCompleted)
                let (gone, _, _) = try daemon.request("POST", session.endpoint, ["jsonrpc": "2.0", "method": "ping", "id": "1"], as: ErrorBody.self)
                #expect(gone == 404)
            } else {
                // 2026-07-28 has no session to delete: this client just leaves.
                let raw = try daemon.client.send("DELETE", session.endpoint)
                #expect(raw.status == 204)
                #expect(try Self.waitForEnd(daemon, session.id).type == .toolCompleted)
            }
        }
    }

    @Test("sessions hold max_concurrent slots, idle ones end, a tool that is not an MCP server is refused, a GET stream needs Accept: text/event-stream")
    func sessionLimits() throws {
        let daemon = try LiveDaemon(policy: Self.policy(maxConcurrent: 1, idle: "1s"))
        try Self.register(daemon)
        let r = try daemon.burrow(["tools", "register", "--profile", Fixtures.profilesDirectory + "/minimal.toml", "--version", "1", "--", "sh", "-c"])
        try #require(r.status == 0, "\(r.stderr)")
        let (refused, _, body) = try Self.start(daemon, "minimal")
        #expect(refused == 409 && body.contains("not_mcp"), "\(body)")
        // A plain invocation of an MCP server would feed its stdin past the relay.
        let invoked = try daemon.client.send("POST", "/v1/tools/mcp-server-time/invocations", body: Array(#"{"stdin": "{}"}"#.utf8))
        #expect(invoked.status == 409 && String(decoding: invoked.body, as: UTF8.self).contains("mcp_relay_required"))
        #expect(try daemon.trail("mcp-server-time").contains { $0.type == .permissionDenied && $0.details["reason"]?.stringValue == "mcp_relay_required" })
        #expect(try daemon.trail("minimal").contains { $0.type == .permissionDenied && $0.details["reason"]?.stringValue == "not_mcp" })

        let (status, started, text) = try Self.start(daemon)
        let session = try #require(started, "\(status) \(text)")
        #expect(try daemon.client.send("GET", session.endpoint).status == 406, "a stream is text/event-stream")
        // Another invoker cannot see it, and the attempt is recorded.
        chmod(daemon.socket, 0o666)
        let other = try Subprocess.run([
            "/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
            "--unix-socket", daemon.socket, "-X", "POST", "-d", #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, "http://burrowd" + session.endpoint,
        ])
        #expect(other.output == "404")
        #expect(try daemon.trail("mcp-server-time").contains { $0.type == .permissionDenied && $0.details["reason"]?.stringValue == "not_session_owner" })
        let (second, _, secondBody) = try Self.start(daemon)
        #expect(second == 429 && secondBody.contains("too_many_concurrent"), "a session holds the tool's only slot: \(secondBody)")
        // A request keeps it alive; then silence ends it.
        let ping = try daemon.client.send("POST", session.endpoint, body: Array(#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#.utf8))
        #expect(ping.status == 200 && String(decoding: ping.body, as: UTF8.self).contains(#""id":7"#))
        let note = try daemon.client.send("POST", session.endpoint, body: Array(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.utf8))
        #expect(note.status == 202)
        _ = try Self.waitForEnd(daemon, session.id)
        #expect(try daemon.client.send("POST", session.endpoint, body: Array(#"{"jsonrpc":"2.0","id":8,"method":"ping"}"#.utf8)).status == 404)
        let (again, _, againBody) = try Self.start(daemon)
        #expect(again == 201, "the slot came back: \(againBody)")
    }

    @Test("[mcp] max_sessions_per_caller and max_sessions: a caller past its share, or anyone past the total, gets 429 (audited as session_limit); an ended session frees its place")
    func sessionCaps() throws {
        let daemon = try LiveDaemon(policy: Self.policy(mcp: "max_sessions = 2\nmax_sessions_per_caller = 1"))
        try Self.register(daemon)
        let (status, started, text) = try Self.start(daemon)
        let first = try #require(started, "\(status) \(text)")
        let (mine, _, mineBody) = try Self.start(daemon)
        #expect(mine == 429 && mineBody.contains("max_sessions_per_caller"), "\(mineBody)")
        // Another caller still has its own place.
        chmod(daemon.socket, 0o666)
        func nobody(_ method: String, _ path: String, _ body: String) throws -> String {
            try Subprocess.run([
                "/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/curl", "-s", "-w", "\n%{http_code}", "--unix-socket", daemon.socket, "-X", method,
                "-H", "Content-Type: application/json", "-d", body, "http://burrowd" + path,
            ]).output
        }
        let theirs = try nobody("POST", "/v1/tools/mcp-server-time/sessions", "{}")
        #expect(theirs.hasSuffix("\n201"), "\(theirs)")
        let (full, _, fullBody) = try Self.start(daemon)
        #expect(full == 429 && fullBody.contains("[mcp] max_sessions)"), "\(fullBody)")
        #expect(try daemon.trail("mcp-server-time").filter { $0.type == .permissionDenied && $0.details["reason"]?.stringValue == "session_limit" }.count >= 1)
        // Ended: its place is free again.
        #expect(try daemon.client.send("DELETE", first.endpoint).status == 204)
        _ = try Self.waitForEnd(daemon, first.id)
        var again = 0
        for _ in 0..<100 where again != 201 {
            again = try Self.start(daemon).0
            if again != 201 { usleep(20_000) }
        }
        #expect(again == 201)
    }

    @Test(
        "the server's own messages reach the client over the session's GET stream (SSE): a logging notification, and a sampling request the SDK client answers in a POST; a stream resumes from the kept events with Last-Event-ID"
    )
    func serverStream() throws {
        let daemon = try LiveDaemon(policy: Self.policy())
        let (profile, command) = try Fixtures.streamsServer(in: daemon.directory)
        let registered = try daemon.burrow(["tools", "register", "--profile", profile, "--version", "1", "--"] + command)
        try #require(registered.status == 0, "\(registered.stderr)")

        // The SDK: its GET stream carries the notification and the sampling request; its answer goes back in a POST.
        let (status, started, text) = try Self.start(daemon, "mcp-streams")
        let session = try #require(started, "\(status) \(text)")
        let sdk = try Subprocess.run([Self.python, Fixtures.repositoryRoot + "/Tests/MCP/streams_client.py", daemon.socket, session.endpoint])
        #expect(sdk.output.contains(#"ask "sampled: 4""#), "\(sdk.output)\(sdk.stderr.suffix(3000))")
        #expect(sdk.output.contains(#"notify "sent 3""#) && sdk.output.contains(#"logs ["asking the client", "note 1", "note 2", "note 3"]"#), "\(sdk.output)")

        // By hand: notes sent while no stream is open wait for one; Last-Event-ID resumes after an id.
        let (_, second, _) = try Self.start(daemon, "mcp-streams")
        let endpoint = try #require(second).endpoint
        let initialize = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#
        #expect(try daemon.client.send("POST", endpoint, body: Array(initialize.utf8)).status == 200)
        let call = #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"notify","arguments":{"count":3}}}"#
        #expect(String(decoding: try daemon.client.send("POST", endpoint, body: Array(call.utf8)).body, as: UTF8.self).contains("sent 3"))
        func stream(_ headers: [String]) throws -> String {
            try Subprocess.run(
                ["/usr/bin/curl", "-s", "-N", "--max-time", "1", "--unix-socket", daemon.socket, "-w", "\n%{http_code}"] + headers.flatMap { ["-H", $0] } + ["http://burrowd" + endpoint]
            ).output
        }
        let first = try stream(["Accept: text/event-stream"])
        #expect(first.hasPrefix("id: 0\ndata:\n\nid: 1\nevent: message\ndata: {") && first.contains("note 3") && first.hasSuffix("\n200"), "\(first)")
        let resumed = try stream(["Accept: text/event-stream", "Last-Event-ID: 2"])
        #expect(resumed.hasPrefix("id: 2\ndata:\n\nid: 3\n") && resumed.contains("note 3") && !resumed.contains("note 2"), "\(resumed)")
        let fresh = try stream(["Accept: text/event-stream"])
        #expect(fresh.hasPrefix("id: 3\ndata:\n\n") && !fresh.contains("note"), "delivered before: \(fresh)")
        #expect(try stream(["Accept: text/event-stream", "Last-Event-ID: 99"]).hasSuffix("\n400"))
        #expect(try stream(["Accept: application/json"]).hasSuffix("\n406"))
    }
}
