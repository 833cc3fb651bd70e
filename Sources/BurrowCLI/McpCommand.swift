import ArgumentParser
import BurrowAudit
import BurrowMCP
import BurrowPolicy
import BurrowProfile
import BurrowRuntime
import BurrowSystem
import FoundationEssentials
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// `burrow mcp`: an MCP server over stdio, sandboxed, behind the relay.
struct McpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Run an MCP stdio server sandboxed, relaying its JSON-RPC with per-call policy and audit.",
        discussion: """
            Use it where an MCP client configuration names the server's command: replace
              python3 -m mcp_server_git --repository /srv/burrow/repo
            with
              burrow mcp --profile mcp-server-git -- python3 -m mcp_server_git --repository /srv/burrow/repo

            The server runs exactly as under `burrow run` (same plan, same audit of the session). Between \
            the client (this process's stdin and stdout) and the server, Burrow relays newline-delimited \
            JSON-RPC, forwarding the original bytes. It parses each line only to apply policy:
              - framing: lines up to 4 MiB, nesting up to 64, valid UTF-8, no duplicate keys, either way; \
            a violation ends the session (exit 125) with a message here and an audit event;
              - tools/call only for a tool the server listed in tools/list, with arguments its inputSchema \
            accepts (type, properties, required, enum, const, minimum/maximum, minLength/maxLength, \
            pattern, items, additionalProperties); a refused call is answered with JSON-RPC error -32602 \
            and a PermissionDenied event, and never reaches the server;
              - every call is its own audit invocation (`<session>/<n>`): ToolInvoked with the tool name and \
            a digest of the arguments, then ToolCompleted or ToolFailed with the duration and the JSON-RPC \
            error code;
              - the server's stderr is passed on up to 64 KiB/s; the rest is dropped and counted.

            Exit status: the server's, or 125 when Burrow refused or ended the session.
            """)

    @OptionGroup var options: ProfileOptions
    @OptionGroup var auditOptions: AuditOptions

    @Option(name: .long, help: ArgumentHelp("A profile file, or a name looked up in $BURROW_PROFILE_PATH and /etc/burrow/profiles.", valueName: "file|name"))
    var profile: String

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The server's command and arguments, after '--'.", valueName: "command"))
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the server's command after '--', e.g. burrow mcp --profile mcp-server-time -- mcp-server-time") }
    }

    func run() throws {
        let setup = try RunSetup.prepare(options: options, auditOptions: auditOptions, profile: profile, command: command, relayPolicyHandled: true)
        let (plan, audit, lease) = (setup.plan, setup.audit, setup.lease)
        let session = UUID().uuidString.lowercased()

        let pipes: [(FileDescriptor, FileDescriptor)]
        do {
            pipes = try [Kernel.pipe(), Kernel.pipe(), Kernel.pipe()]
        } catch {
            printError("burrow: cannot create the server's pipes: \(error)")
            throw ExitCode(125)
        }
        let calls = MCPCallAudit(store: audit.store, principal: audit.caller.principal, uid: audit.caller.uid, plan: plan, session: session, profileDigest: audit.profileDigest)
        let relay = MCPRelay(plan: plan.mcp, server: plan.tool.id) { event in calls.record(event) }
        let stop: RunStop
        do {
            stop = try RunStop()
        } catch {
            printError("burrow: \(error)")
            throw ExitCode(125)
        }
        // stdin: the child reads pipes[0].0; stdout and stderr: the child writes .1.
        let (serverIn, serverOut, serverErr) = (pipes[0].1.rawValue, pipes[1].0.rawValue, pipes[2].0.rawValue)
        let relayDone = Atomic<Bool>(false)
        try Kernel.detachedThread {
            relay.run(clientIn: 0, clientOut: 1, serverIn: serverIn, serverOut: serverOut, serverErr: serverErr, errOut: 2) {
                stop.stop("mcp_violation")
            }
            relayDone.store(true, ordering: .releasing)
        }
        let record: RunRecord
        do {
            record = try Runner.run(
                plan, invocationID: session,
                options: Runner.Options(
                    audit: audit, stop: stop, stdio: [pipes[0].0, pipes[1].1, pipes[2].1],
                    activity: { relay.callsInFlight.map { calls.invocation($0) } }))
        } catch {
            printError("burrow: \(error)")
            throw ExitCode(error.exitStatus)
        }
        // The server is gone: let the relay pass on what it wrote last.
        for _ in 0..<200 where !relayDone.load(ordering: .acquiring) { usleep(5000) }
        // Calls the server never answered end with the session.
        relay.endSession()
        calls.flush()
        withExtendedLifetime(lease) {}
        for problem in record.auditProblems + calls.problems { printError("burrow: \(problem)") }
        for (direction, count) in relay.droppedLines.sorted(by: { $0.key < $1.key }) {
            printError("burrow: \(count) line(s) \(direction) were not JSON-RPC messages and were dropped (the first is in the audit log)")
        }
        if let why = relay.endedBy {
            printError("burrow: MCP session ended: \(why)")
            throw ExitCode(125)
        }
        throw ExitCode(record.exit.status)
    }
}
