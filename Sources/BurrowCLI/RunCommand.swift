import ArgumentParser
import BurrowAPI
import BurrowInvocation
import BurrowRuntime
import BurrowSession
import BurrowSystem
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// `burrow run`: executes the launch plan `burrow dry-run` prints.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command inside the sandbox its profile describes.",
        discussion: """
            Compiles the same launch plan `burrow dry-run` prints and executes it: a new user, PID, \
            mount, IPC, UTS, cgroup and (unless network access is full) network namespace; a fresh \
            root holding only what the profile grants; rlimits; every capability dropped; \
            no_new_privs; Landlock; and a seccomp filter whose refused calls are reported here as \
            they happen. The tool's stdin, stdout and stderr are passed through unchanged; SIGINT, \
            SIGTERM, SIGHUP and SIGQUIT are forwarded to it; it dies if burrow dies.

            Burrow refuses to start when any control the profile asks for cannot be enforced on this \
            host (see `burrow doctor` and the Controls section of `burrow dry-run`), or when the audit \
            log cannot record the invocation: every run writes ToolInvoked before the tool starts, \
            then its refused calls, limits and outcome (see `burrow audit`).

            Exit status: the tool's own status, or 128+N when signal N ended it. Burrow's own \
            failures use 125 (invalid profile, refused plan, sandbox set-up failed), 126 (the command \
            could not be executed) and 127 (the command was not found in the sandbox).

            Examples:
              burrow run --profile minimal -- sh -c 'echo hello from $(id -u)'
              burrow run --profile python-script -- python3 /srv/burrow/scripts/report.py
              burrow run --profile untrusted --json-result /tmp/run.json -- python3 -c 'print(1)'
            """)

    @OptionGroup var options: ProfileOptions
    @OptionGroup var parameters: ParameterOptions
    @OptionGroup var caller: CallerOptions
    @OptionGroup var manifest: ManifestOptions
    @OptionGroup var auditOptions: AuditOptions
    @OptionGroup var session: SessionOptions

    @Option(name: .long, help: ArgumentHelp("A profile file, or a name looked up in $BURROW_PROFILE_PATH and /etc/burrow/profiles.", valueName: "file|name"))
    var profile: String

    @Option(name: .long, help: ArgumentHelp("Write the run record (exit, durations, requested vs enforced controls, refused calls) as JSON to this file.", valueName: "file"))
    var jsonResult: String?

    @Flag(name: .long, help: "Do not report refused system calls on stderr (they are still in the run record).")
    var quiet = false

    @Flag(
        name: .long,
        help:
            "Run an MCP server (mcp = true or [mcp_policy]) with its stdio straight through, without the relay's policy: no tool, schema, filter or rate checks and no per-call audit. Without it such a profile is refused here: use `burrow mcp`."
    )
    var withoutMcpRelay = false

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command and its arguments, after '--'.", valueName: "command"))
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command after '--', e.g. burrow run --profile minimal -- /bin/true") }
    }

    func run() throws {
        Phases.mark("arguments_parsed")
        guard geteuid() == 0 else { return try runThroughBurrowd() }
        let prepared = try FrontDoor.prepare(
            options, auditOptions, parameters: try parameters.parsed(), profile: profile, command: command, mode: withoutMcpRelay ? .withoutRelay : .plain, grantsCheckedAs: try caller.credentials(),
            manifest: manifest.source)
        let record: RunRecord
        do {
            record = try prepared.run(Runner.Options(onViolation: report)).record
        } catch {
            printError("burrow: \(error)")
            throw ExitCode(error.code.exitStatus)
        }
        try finish(record, problems: record.auditProblems)
    }

    /// Not root: the same request through burrowd's session socket.
    private func runThroughBurrowd() throws {
        _ = try caller.credentials()
        try auditOptions.refuseWithoutRoot()
        var request = try SessionClient.request(.run, profile: profile, argv: command, parameters: try parameters.parsed())
        request.withoutMcpRelay = withoutMcpRelay ? true : nil
        request.manifest = try manifest.forSession()
        switch try SessionClient.send(request, to: SessionClient.socketPath(session, policyFile: options.policy), onViolation: report) {
        case .refused(let refusal): throw SessionClient.report(refusal)
        case .failed(let failure):
            printError("burrow: \(failure.message)")
            throw ExitCode(failure.exitStatus)
        case .finished(let finished): try finish(finished.record, problems: finished.problems)
        case .plan: throw ExitCode(125)
        }
    }

    private func report(_ v: RunRecord.Violation) {
        if !quiet { printError("burrow: refused \(v.syscall) (\(v.errno)): \(v.reason)") }
    }

    /// What the run left to say, the run record if asked for, and the tool's exit status.
    private func finish(_ record: RunRecord, problems: [String]) throws {
        for s in record.swept {
            printError("burrow: invocation \(s.invocationID) was left by a supervisor that is gone: " + (s.problem ?? "its tasks were killed and its cgroup removed"))
        }
        for id in record.recovered {
            printError("burrow: invocation \(id) had no recorded outcome (its supervisor is gone): recorded as ToolFailed supervisor_lost")
        }
        // The run happened; what the log could not take is said here, not only in the record.
        for problem in problems { printError("burrow: \(problem)") }
        for event in record.limits {
            printError("burrow: limit exceeded: \(event.resource) \(event.limit): \(event.observed)")
        }
        if let jsonResult { try write(record, to: jsonResult) }
        throw ExitCode(record.exit.status)
    }

    private func write(_ record: RunRecord, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(record) + Data("\n".utf8)
        // Written beside the target and renamed, so a reader never sees half a record.
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: data), rename(temporary, path) == 0 else {
            unlink(temporary)
            printError("burrow: cannot write the run record to \(path): \(String(cString: strerror(errno)))")
            throw ExitCode(125)
        }
    }
}
