import ArgumentParser
import BurrowAPI
import BurrowInvocation
import BurrowMCP
import BurrowPolicy
import BurrowProfile
import BurrowRuntime
import BurrowSession

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

            The profile must say it is an MCP server (`mcp = true`, as every profile extending mcp-base \
            does). The server runs exactly as under `burrow run` (same plan, same audit of the session). Between \
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
              - the server's stderr is passed on up to 64 KiB/s; the rest is dropped and counted;
              - with --pin FILE, the tools the server lists are held against the definitions approved \
            in FILE (name, title, description, input and output schemas, annotations): a tool whose \
            definition changed, or one not approved, is withheld from tools/list and its calls are refused \
            (SecurityViolation definition_changed, with what differs), also after \
            notifications/tools/list_changed. Without FILE, the first listing is approved and written there; \
            --approve-definitions approves what the server lists now. Invisible characters (Unicode tags, \
            zero-width and bidirectional controls) are removed from tool definitions and results, and reported.

            Exit status: the server's, or 125 when Burrow refused or ended the session.
            """)

    @OptionGroup var options: ProfileOptions
    @OptionGroup var parameters: ParameterOptions
    @OptionGroup var caller: CallerOptions
    @OptionGroup var manifest: ManifestOptions
    @OptionGroup var auditOptions: AuditOptions
    @OptionGroup var session: SessionOptions

    @Option(name: .long, help: ArgumentHelp("A profile file, or a name looked up in $BURROW_PROFILE_PATH and /etc/burrow/profiles.", valueName: "file|name"))
    var profile: String

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The server's approved tool definitions: held against every listing; written from the first listing when FILE does not exist yet (default: PROFILE.pins beside a profile file, when it exists).",
            valueName: "file"))
    var pin: String?

    /// --pin, else the pins file beside the profile file (`tool.toml` →
    /// `tool.pins`) when there is one: a profile's own pins hold without asking.
    var pinFile: String? {
        if let pin { return pin }
        guard profile.contains("/"), let dot = profile.lastIndex(of: "."), !profile[dot...].contains("/") else { return nil }
        let beside = String(profile[..<dot]) + ".pins"
        var st = stat()
        return lstat(beside, &st) == 0 ? beside : nil
    }

    @Flag(help: "Approve the tool definitions the server lists in this session (written to --pin FILE, replacing what it held).")
    var approveDefinitions = false

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The server's command and arguments, after '--'.", valueName: "command"))
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the server's command after '--', e.g. burrow mcp --profile mcp-server-time -- mcp-server-time") }
        if approveDefinitions && pinFile == nil { throw ValidationError("--approve-definitions writes the definitions to --pin FILE (or PROFILE.pins beside the profile): give it") }
    }

    /// The pins of --pin: those in the file, or (none yet, or
    /// --approve-definitions) the session's first listing, written there.
    private func readPins() throws -> ToolPins? {
        guard let pin = pinFile else { return nil }
        // Only a file that is not there yet is written from the first listing;
        // anything else there is read (and any error of reading it shown).
        var st = stat()
        if lstat(pin, &st) != 0 && errno == ENOENT { return nil }
        do {
            return try ToolPins.parse(try ManifestIO.read(pin))
        } catch let error as ToolPins.Invalid {
            throw CLIError("\(pin): \(error)")
        }
    }

    private func pinnedDefinitions(_ existing: ToolPins?, server: String) throws -> PinnedDefinitions? {
        guard let pin = pinFile else { return nil }
        if let existing, existing.server != server { throw CLIError("\(pin) pins the tools of \(existing.server), not of \(server)") }
        if let existing, !approveDefinitions { return PinnedDefinitions(server: server, approved: existing, keep: { _ in .kept }) }
        return PinnedDefinitions(
            server: server, approved: nil,
            keep: { pins in
                // The first complete listing, once.
                do {
                    try ManifestIO.write(pin, pins.encoded)
                    printError("burrow: approved \(pins.tools.count) tool definitions of \(server) in \(pin)")
                    return .kept
                } catch {
                    printError("burrow: the approved definitions were not written, so none are approved in this session: \(error)")
                    return .failed
                }
            })
    }

    func run() throws {
        guard geteuid() == 0 else { return try runThroughBurrowd() }
        let pins = try readPins()
        let prepared = try FrontDoor.prepare(
            options, auditOptions, parameters: try parameters.parsed(), profile: profile, command: command, mode: .relay, grantsCheckedAs: try caller.credentials(),
            manifest: manifest.source)
        var client = PreparedInvocation.RelayClient(input: 0, output: 1, stderr: 2)
        client.pins = try pinnedDefinitions(pins, server: prepared.plan.tool.id)
        let outcome: PreparedInvocation.Outcome
        do {
            outcome = try prepared.run(Runner.Options(), client: client)
        } catch {
            printError("burrow: \(error)")
            throw ExitCode(error.code.exitStatus)
        }
        try finish(outcome.record, problems: outcome.problems, droppedLines: outcome.droppedLines, relayEndedBy: outcome.relayEndedBy)
    }

    /// Not root: burrowd runs the relay, on this process's stdin and stdout,
    /// so its policy and per-call audit are burrowd's to keep.
    private func runThroughBurrowd() throws {
        _ = try caller.credentials()
        try auditOptions.refuseWithoutRoot()
        var request = try SessionClient.request(.mcp, profile: profile, argv: command, parameters: try parameters.parsed())
        request.manifest = try manifest.forSession()
        // burrowd's relay holds the pins; a set approved there comes back to be written here.
        if let file = pinFile {
            let existing = try readPins()
            request.pins = Session.Request.Pins(document: existing.map { String(decoding: $0.encoded, as: UTF8.self) }, file: file, approve: approveDefinitions)
        }
        switch try SessionClient.send(request, to: SessionClient.socketPath(session, policyFile: options.policy)) {
        case .refused(let refusal): throw SessionClient.report(refusal)
        case .failed(let failure):
            printError("burrow: \(failure.message)")
            throw ExitCode(failure.exitStatus)
        case .finished(let f):
            if let text = f.approvedPins, let file = pinFile {
                do {
                    try ManifestIO.write(file, Array(text.utf8))
                    printError("burrow: approved tool definitions written to \(file)")
                } catch {
                    printError("burrow: the approved definitions were not written: \(error)")
                }
            }
            try finish(f.record, problems: f.problems, droppedLines: f.droppedLines, relayEndedBy: f.relayEndedBy)
        case .plan: throw ExitCode(125)
        }
    }

    private func finish(_ record: RunRecord, problems: [String], droppedLines: [String: Int], relayEndedBy: String?) throws {
        for problem in problems { printError("burrow: \(problem)") }
        for (direction, count) in droppedLines.sorted(by: { $0.key < $1.key }) {
            printError(
                direction == MCPRelay.unjudgedKey
                    ? "burrow: \(count) message(s) the relay could not judge (answers to no request in progress, invisible characters in keys) were dropped (the first is in the audit log)"
                    : "burrow: \(count) line(s) \(direction) were not JSON-RPC messages and were dropped (the first is in the audit log)")
        }
        if let why = relayEndedBy {
            printError("burrow: MCP session ended: \(why)")
            throw ExitCode(125)
        }
        throw ExitCode(record.exit.status)
    }
}
