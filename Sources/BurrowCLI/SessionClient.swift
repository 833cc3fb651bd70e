import ArgumentParser
import BurrowHost
import BurrowProfile
import BurrowRuntime
import BurrowSession
import BurrowSystem
import FoundationEssentials
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// `--socket` for the commands that become burrowd's clients when not run as root.
struct SessionOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Not root: burrowd's API socket, beside which its session socket is (default: $BURROW_SOCKET, else the policy's [daemon] socket, /run/burrow/burrowd.sock).",
            valueName: "path"))
    var socket: String?
}

/// The unprivileged path of `burrow run`, `burrow mcp` and `burrow dry-run`:
/// the same request, sent to burrowd's session socket (`Session`), which
/// runs it through the same front door as root's, with this user's identity
/// (grants checked as this user, `[users]` ceilings). For run and mcp, this
/// process's stdin, stdout and stderr go with the request (SCM_RIGHTS): the
/// tool reads and writes them directly. SIGINT, SIGTERM, SIGHUP and SIGQUIT
/// are passed on; this process ending stops the sandbox.
enum SessionClient {
    /// burrowd's API socket: `--socket`, else $BURROW_SOCKET, else the policy's.
    static func apiSocket(_ options: SessionOptions, policyFile: String) -> String {
        if let s = options.socket { return s }
        if let env = getenv("BURROW_SOCKET"), env.pointee != 0 { return String(cString: env) }
        return ((try? HostConfiguration.loadPolicy(policyFile)) ?? .defaults).daemon.socket
    }

    /// The session socket, beside the API socket.
    static func socketPath(_ options: SessionOptions, policyFile: String) -> String {
        HostPolicy.Daemon.sessionSocket(beside: apiSocket(options, policyFile: policyFile))
    }

    /// The request for `profile`: a name burrowd looks up in its own
    /// profile directories, or a file read here with this user's rights.
    static func request(_ command: Session.Request.Command, profile: String, argv: [String], parameters: [String: String]) throws -> Session.Request {
        var p = Session.Request.Profile()
        if profile.contains("/") || ConfigFormat(path: profile) != nil {
            guard let format = ConfigFormat(path: profile) else { throw CLIError("\(profile): a profile file ends in .toml or .json") }
            var st = stat()
            guard stat(profile, &st) == 0 else { throw CLIError("\(profile): \(String(cString: strerror(errno)))") }
            guard st.st_mode & S_IFMT == S_IFREG else { throw CLIError("\(profile): not a regular file") }
            guard st.st_size <= DocumentLimits.maxBytes else { throw CLIError("\(profile): \(st.st_size) bytes, above the \(DocumentLimits.maxBytes)-byte limit of a profile") }
            do {
                p.document = try FileIO.read(profile, limit: DocumentLimits.maxBytes)
            } catch {
                throw CLIError("\(profile): \(error)")
            }
            p.format = format == .json ? "json" : "toml"
            p.file = profile
        } else {
            p.name = profile
        }
        var request = Session.Request(command: command, profile: p, argv: argv, workingDirectory: currentDirectory())
        request.parameters = parameters
        request.environment = ProcessEnvironment.current()
        return request
    }

    /// burrowd's answer that ended the session.
    enum Answer {
        case refused(Session.Refusal)
        case failed(Session.Refusal)
        case plan(Session.Plan)
        case finished(Session.Finished)
    }

    /// Connects, sends `request` (with this process's stdio for run and mcp),
    /// passes on signals, reports violations, and returns the final answer.
    /// burrowd unreachable, or a session that ends without an answer, is
    /// told here and exits 125.
    static func send(_ request: Session.Request, to path: String, onViolation: (RunRecord.Violation) -> Void = { _ in }) throws -> Answer {
        let socket = try connect(path)
        defer { socket.close() }
        let passStdio = request.command != .dryRun
        // Blocked from here, read from the signalfd and passed on.
        let signals = passStdio ? try? Kernel.signalDescriptor(Runner.forwardedSignals) : nil
        defer { try? signals?.close() }
        // burrowd may refuse before reading the whole request (no role, too
        // many connections) and close: its answer is still there to read.
        var sendError: (any Error)?
        do {
            try socket.send(try Session.Frame(.request, request).bytes, descriptors: passStdio ? [0, 1, 2] : [])
        } catch {
            sendError = error
        }
        var reader = Session.Reader(socket)
        var fds = [pollfd(fd: socket.descriptor.rawValue, events: Int16(POLLIN), revents: 0), pollfd(fd: signals?.rawValue ?? -1, events: Int16(POLLIN), revents: 0)]
        while true {
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if fds[1].revents & Int16(POLLIN) != 0, let signals {
                while let sig = Kernel.nextSignal(signals) {
                    _ = try? socket.send(try Session.Frame(.signal, Session.Signal(number: sig)).bytes)
                }
            }
            guard fds[0].revents != 0 else { continue }
            let frame: Session.Frame?
            do {
                frame = try reader.next()
            } catch {
                printError("burrow: the session with burrowd broke: \(sendError.map { "cannot send the request (\($0))" } ?? "\(error)")")
                throw ExitCode(125)
            }
            guard let frame else { break }
            do {
                let decoder = JSONDecoder()
                switch frame.kind {
                case .violation: onViolation(try decoder.decode(RunRecord.Violation.self, from: Data(frame.payload)))
                case .refused: return .refused(try decoder.decode(Session.Refusal.self, from: Data(frame.payload)))
                case .failed: return .failed(try decoder.decode(Session.Refusal.self, from: Data(frame.payload)))
                case .plan: return .plan(try decoder.decode(Session.Plan.self, from: Data(frame.payload)))
                case .finished: return .finished(try decoder.decode(Session.Finished.self, from: Data(frame.payload)))
                case .request, .signal: break
                }
            } catch {
                printError("burrow: burrowd sent an answer this burrow cannot read (\(error)); are burrow and burrowd the same version?")
                throw ExitCode(125)
            }
        }
        if let sendError {
            printError("burrow: cannot send the request to burrowd (\(path)): \(sendError)")
        } else {
            printError("burrow: burrowd ended the session without an answer (see `journalctl -u burrowd`)")
        }
        throw ExitCode(125)
    }

    /// The session socket, or why it cannot be reached and what to do (exit 125).
    static func connect(_ path: String) throws -> UnixSocket {
        do {
            return try UnixSocket.connect(path)
        } catch {
            let fix: String
            switch error {
            case .noSuchFileOrDirectory:
                fix = "burrowd is not running (no socket at \(path)): start it with `sudo systemctl start burrowd` (Scripts/install.sh installs it)"
            case .connectionRefused:
                fix = "burrowd is not running (nothing listens at \(path)): start it with `sudo systemctl start burrowd`"
            case .permissionDenied, .notPermitted:
                var st = stat()
                let group = stat(path, &st) == 0 ? UserDatabase.groupName(st.st_gid) ?? "gid \(st.st_gid)" : "burrow"
                let me = UserDatabase.userName(getuid()) ?? "$USER"
                fix =
                    "you may not use burrowd's socket \(path): it is for the group \(group). An administrator adds you with `sudo usermod -aG \(group) \(me)`; then log in again (or run `newgrp \(group)`)"
            case .fileNameTooLong:
                fix = "the socket path \(path) is too long for a Unix socket (at most 107 bytes)"
            default:
                fix = "cannot connect to burrowd at \(path): \(error)"
            }
            printError("burrow: not root, so this runs through burrowd, but " + fix)
            throw ExitCode(125)
        }
    }

    /// Prints a refusal as root's own command would, and its exit status.
    static func report(_ refusal: Session.Refusal) -> ExitCode {
        if let issues = refusal.issues, !issues.isEmpty {
            FrontDoor.printIssues(issues)
        } else {
            printError("burrow: refusing to run: \(refusal.message)")
        }
        return ExitCode(refusal.exitStatus)
    }
}
