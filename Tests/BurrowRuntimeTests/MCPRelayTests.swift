import BurrowAudit
import BurrowTestSupport
import Foundation
import Testing

/// `burrow mcp` with the real MCP SDK client and the real mcp-server-time.
@Suite(
    .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits),
    .requires(.installed("/opt/burrow/venvs/mcp-server-time/bin/python3")), .timeLimit(.minutes(2)))
struct MCPRelayTests: SandboxTesting {
    let directory: String

    init() throws { directory = try Self.makeDirectory() }

    @Test("tools listed and called through the relay; invalid arguments and unlisted tools refused before the server; each call audited")
    func timeServer() throws {
        let python = "/opt/burrow/venvs/mcp-server-time/bin/python3"
        let result = try Subprocess.run(
            [python, Fixtures.repositoryRoot + "/Tests/MCP/time_client.py", "--", Subprocess.burrow, "mcp", "--profile", Fixtures.profilesDirectory + "/mcp-server-time.toml", "--", python, "-m", "mcp_server_time"],
            environment: burrowEnvironment)
        let out = result.output
        #expect(out.contains("tools ['get_current_time', 'convert_time']"), "\(out)\n\(result.stderr)")
        #expect(out.contains("ok False") && out.contains("Europe/Paris"), "\(out)")
        #expect(out.contains("bad raised MCPError burrow: arguments.timezone: expected string, got integer"), "\(out)")
        #expect(out.contains("unknown raised MCPError burrow: the server did not list a tool named \"rm_rf\""), "\(out)")
        let events = try auditLog().events(AuditQuery())
        let session = try #require(events.first { $0.type == .toolInvoked && $0.details["mcp"] == nil }?.context.invocationID)
        let call = events.filter { $0.context.invocationID == session + "/1" }
        #expect(call.map(\.type) == [.toolInvoked, .toolCompleted])
        #expect(call.first?.details["name"]?.stringValue == "get_current_time")
        #expect(call.first?.details["argumentsDigest"]?.stringValue?.hasPrefix("sha256:") == true)
        let refused = events.filter { $0.type == .permissionDenied }.compactMap { $0.details["reason"]?.stringValue }
        #expect(refused == ["invalid_arguments", "unknown_tool"], "\(events.map(\.type))")
        #expect(events.last?.type == .toolCompleted && events.last?.context.invocationID == session)
    }
}
