import ArgumentParser
import BurrowAPI
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// `burrow invoke TOOL -- ARGS`: runs a registered tool through burrowd.
struct InvokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invoke",
        abstract: "Invoke a tool registered with burrowd and stream its output here.",
        discussion: """
            burrowd runs the tool's registered command with these arguments appended, in the sandbox \
            its registered profile describes, audited like `burrow run`. Its stdout and stderr appear \
            here as they are produced; refused system calls and limits are reported on stderr. Needs \
            the invoker role.

            Exit status: the tool's own, or 128+N when signal N ended it; 125 when burrowd refused \
            or could not start it (the reason is printed), 127 when the command was not found.

            Examples:
              burrow invoke echoer -- hello world
              echo '{"q": 1}' | burrow invoke my-tool --stdin - -- --format json
              burrow invoke my-tool --env LANG=C.UTF-8 --timeout 5 -- arg
              burrow invoke my-tool --json -- arg      (the whole result as JSON, output included)
              burrow invoke my-tool --url https://burrow.example:8443 --cacert ca.pem --api-key-file key -- arg
                                                    (burrowd over the network; each request signed with the key)
            """)

    @OptionGroup var daemon: DaemonOptions
    @OptionGroup var parameters: ParameterOptions

    @Argument(help: "The tool id.")
    var tool: String

    @Option(name: .long, help: "The version to run (default: the latest that is not disabled).")
    var version: String?

    @Option(name: .long, help: ArgumentHelp("A file whose bytes become the tool's stdin ('-': this process's stdin).", valueName: "file"))
    var stdin: String?

    @Option(name: .long, help: ArgumentHelp("NAME=VALUE for the tool's environment; the profile's env_whitelist must admit NAME (repeatable).", valueName: "NAME=VALUE"))
    var env: [String] = []

    @Option(name: .long, help: "A deadline in seconds, shorter than the profile's max_execution_time.")
    var timeout: Double?

    @Flag(name: .long, help: "Wait for the end and print the whole result as JSON instead of streaming.")
    var json = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A key naming this request (1 to 255 visible ASCII characters, such as a UUID): run again with the same key, it is answered from the first run's result, never run twice. The output comes at the end, not streamed. With several nodes (--url or --socket repeated) a request carries a fresh key of its own unless given one.",
            valueName: "key"))
    var idempotencyKey: String?

    @Argument(parsing: .postTerminator, help: ArgumentHelp("Arguments appended to the registered command, after '--'.", valueName: "args"))
    var arguments: [String] = []

    func run() throws {
        do {
            try invoke()
        } catch let error as CLIError {
            printError("burrow: \(error)")
            throw ExitCode(125)
        }
    }

    private func invoke() throws {
        var environment: [String: String] = [:]
        for pair in env {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else { throw ValidationError("--env: expected NAME=VALUE, found '\(pair)'") }
            environment[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        var request = InvocationRequest(arguments: arguments, environment: environment, timeoutSeconds: timeout, version: version, parameters: try parameters.parsed())
        if let stdin {
            let bytes = try readInput(stdin)
            if let text = String(validating: bytes, as: UTF8.self) { request.stdin = text } else { request.stdinBase64 = Data(bytes).base64EncodedString() }
        }
        let path = "/v1/tools/\(urlEncoded(tool))/invocations"
        // Several nodes: the request carries a key of its own, so that sent again to another node it is answered, never run twice.
        let key = idempotencyKey ?? (daemon.fleet ? "burrow-" + UUID().uuidString.lowercased() : nil)
        if json || key != nil {
            // A replayed answer is a stored result, never a stream.
            let result = try key.map { try replayable(path, request, key: $0) } ?? daemon.call("POST", path, body: request, as: InvocationResult.self)
            if json {
                try printJSON(result)
            } else {
                Self.writeAll(text: result.stdout?.text, base64: result.stdout?.base64, to: STDOUT_FILENO)
                Self.writeAll(text: result.stderr?.text, base64: result.stderr?.base64, to: STDERR_FILENO)
                Self.report(result)
            }
            throw ExitCode(Self.status(result))
        }
        var pending: [UInt8] = []
        var result: InvocationResult?
        var problem: (any Error)?
        _ = try daemon.send(
            "POST", path + "?stream=1", body: request,
            onBody: { bytes in
                pending += bytes
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(pending[..<newline])
                    pending.removeFirst(newline + 1)
                    do {
                        let event = try JSONDecoder().decode(InvocationEvent.self, from: Data(line))
                        if let r = Self.show(event) { result = r }
                    } catch {
                        problem = error
                    }
                }
            })
        if let problem { throw CLIError("burrowd sent an event this burrow cannot read: \(problem)") }
        guard let result else { throw CLIError("the stream ended before the tool did (burrowd stopped?)") }
        throw ExitCode(Self.status(result))
    }

    /// POSTs with an Idempotency-Key; while the first request with that key
    /// still runs (409 in_progress), waits as burrowd says and asks again.
    private func replayable(_ path: String, _ request: InvocationRequest, key: String) throws -> InvocationResult {
        var said = false
        while true {
            let response = try daemon.send("POST", path, body: request, headers: [("Idempotency-Key", key)], acceptStatus: [409])
            if response.status == 409, let e = try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)), e.error.code == "in_progress" {
                if !said { printError("burrow: \(e.error.message); waiting for it") }
                said = true
                sleep(UInt32(response.header("Retry-After").flatMap { UInt32($0) } ?? 1))
                continue
            }
            guard response.status == 200 else { throw DaemonOptions.failure(response) }
            do {
                return try JSONDecoder().decode(InvocationResult.self, from: Data(response.body))
            } catch {
                throw CLIError("burrowd sent an answer this burrow cannot read (\(error)); are burrow and burrowd the same version?")
            }
        }
    }

    /// Text, or base64 for bytes that are not UTF-8 (a captured stream, a streamed event), written whole to `fd`.
    private static func writeAll(text: String?, base64: String?, to fd: Int32) {
        let bytes = text.map { Array($0.utf8) } ?? base64.flatMap { Data(base64Encoded: $0) }.map(Array.init) ?? []
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// What burrowd said of the run besides its output: its error, why it stopped it, what it truncated.
    private static func report(_ r: InvocationResult) {
        if let e = r.error { printError("burrow: \(e.message) [\(e.code)]") }
        if let s = r.stopped { printError("burrow: stopped by burrowd: \(s)") }
        for (name, output) in [("stdout", r.stdout), ("stderr", r.stderr)] {
            guard let o = output, o.truncated else { continue }
            printError("burrow: \(name) truncated by burrowd: \(o.bytes) bytes written, the first \(o.text?.utf8.count ?? 0) kept")
        }
    }

    /// Prints one streamed event; returns the result once it ends.
    private static func show(_ event: InvocationEvent) -> InvocationResult? {
        func output(_ fd: Int32) { writeAll(text: event.text, base64: event.base64, to: fd) }
        switch event.event {
        case "stdout": output(STDOUT_FILENO)
        case "stderr": output(STDERR_FILENO)
        case "violation":
            if let v = event.violation { printError("burrow: refused \(v.syscall) (\(v.errno)): \(v.reason)") }
        case "limit":
            if let l = event.limit { printError("burrow: limit exceeded: \(l.resource) \(l.limit): \(l.observed)") }
        case "exited":
            guard let r = event.result else { return nil }
            report(r)
            return r
        default: break
        }
        return nil
    }

    /// `burrow run`'s convention: the tool's status, 128+signal, 125/127 for burrowd's own failures.
    static func status(_ r: InvocationResult) -> Int32 {
        if let code = r.exitCode { return code }
        if let signal = r.signal { return 128 + signal }
        return ErrorCode.resultExitStatus(r.error?.code)
    }

    private func readInput(_ path: String) throws -> [UInt8] {
        let fd = path == "-" ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CLIError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { if fd != STDIN_FILENO { close(fd) } }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw CLIError("reading \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { return out }
            out += chunk[0..<n]
        }
    }
}
