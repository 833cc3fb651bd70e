import ArgumentParser
import Dispatch
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
        let setup = try RunSetup.prepare(options: options, auditOptions: auditOptions, profile: profile, command: command)
        let (plan, audit, lease) = (setup.plan, setup.audit, setup.lease)
        let session = UUID().uuidString.lowercased()

        let pipes: [(FileDescriptor, FileDescriptor)]
        do {
            pipes = try [Kernel.pipe(), Kernel.pipe(), Kernel.pipe()]
        } catch {
            printError("burrow: cannot create the server's pipes: \(error)")
            throw ExitCode(125)
        }
        let calls = CallAudit(store: audit.store, caller: audit.caller, plan: plan, session: session, profileDigest: audit.profileDigest)
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
        if let why = relay.endedBy {
            printError("burrow: MCP session ended: \(why)")
            throw ExitCode(125)
        }
        throw ExitCode(record.exit.status)
    }
}

/// Each `tools/call` as its own audit invocation, `<session>/<n>`.
final class CallAudit: Sendable {
    let store: AuditStore
    let caller: Caller
    let tool: String
    let session: String
    let context: @Sendable (String?) -> SecurityContext
    private let notes = Mutex<[String]>([])
    private let queue = DispatchQueue(label: "burrow.mcp.audit")

    init(store: AuditStore, caller: Caller, plan: LaunchPlan, session: String, profileDigest: String?) {
        self.store = store
        self.caller = caller
        self.tool = plan.tool.id
        self.session = session
        let level = plan.sandboxLevel.rawValue
        self.context = { invocation in
            SecurityContext(principal: caller.principal, uid: caller.uid, invocationID: invocation, profileDigest: profileDigest, sandboxLevel: level, host: UserDatabase.hostName)
        }
    }

    var problems: [String] { notes.withLock { $0 } }

    /// The audit invocation id of a call.
    func invocation(_ c: MCPRelay.Call) -> String { "\(session)/\(c.sequence)" }

    func record(_ event: MCPRelay.Event) {
        let e: AuditEvent
        switch event {
        case .callStarted(let c):
            var extra: [String: JSONValue] = [:]
            if !c.filters.isEmpty { extra["filters"] = .array(c.filters.map { .string($0) }) }
            if let d = c.forwardedDigest { extra["forwardedDigest"] = .string(d) }
            if let t = c.approvedUntil { extra["approvedUntil"] = .integer(t) }
            e = AuditEvent(tool: tool, type: .toolInvoked, context: context(invocation(c)), details: details(c, extra))
        case .callEnded(let c, let ms, let outcome):
            var extra: [String: JSONValue] = ["milliseconds": .integer(Int64(clamping: ms))]
            switch outcome {
            case .completed: break
            case .jsonrpcError(let code):
                extra["jsonrpcError"] = .integer(code)
                extra["reason"] = .string("jsonrpc_error")
            case .toolError: extra["reason"] = .string("tool_error")
            case .cancelled: extra["reason"] = .string("cancelled")
            case .sessionEnded: extra["reason"] = .string("session_ended")
            }
            e = AuditEvent(tool: tool, type: outcome.failed ? .toolFailed : .toolCompleted, context: context(invocation(c)), details: details(c, extra))
        case .callRefused(let c, let reason, let message):
            var extra: [String: JSONValue] = ["reason": .string(reason), "message": .string(message), "denial": .string("mcp")]
            if !c.filters.isEmpty { extra["filters"] = .array(c.filters.map { .string($0) }) }
            e = AuditEvent(tool: tool, type: .permissionDenied, context: context(session), details: details(c, extra))
        case .requestRefused(let method, let id, let reason, let message):
            e = AuditEvent(
                tool: tool, type: .permissionDenied, context: context(session),
                details: .object([
                    "mcp": .string(method), "session": .string(session), "jsonrpcID": .string(id), "reason": .string(reason), "message": .string(message),
                    "denial": .string("mcp"),
                ]))
        case .violation(let direction, let message):
            e = AuditEvent(
                tool: tool, type: .securityViolation, context: context(session),
                details: .object(["mcp": .string("framing"), "direction": .string(direction), "message": .string(message), "session": .string(session)]))
        }
        // Appended off the relay's threads, in order: a call never waits on SQLite.
        queue.async { [self] in
            do {
                try store.append([e])
            } catch {
                notes.withLock { $0.append("audit: \(e.type.rawValue) for the MCP session not recorded: \(error)") }
            }
        }
    }

    /// Waits until every event recorded so far is in the audit log.
    func flush() { queue.sync {} }

    private func details(_ c: MCPRelay.Call, _ extra: [String: JSONValue]) -> JSONValue {
        var d: [String: JSONValue] = [
            "mcp": .string("tools/call"), "session": .string(session), "call": .integer(Int64(c.sequence)), "jsonrpcID": .string(c.id),
            "name": .string(c.tool), "argumentsDigest": .string(c.argumentsDigest),
        ]
        for (k, v) in extra { d[k] = v }
        return .object(d)
    }
}
