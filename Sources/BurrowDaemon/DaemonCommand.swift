public import ArgumentParser
import BurrowAudit
import BurrowProfile
import BurrowRuntime
import Logging

/// `burrowd`: serves the API on a Unix socket until SIGTERM.
public struct DaemonCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "burrowd",
        abstract: "Burrow's daemon: the tool registry's delegate, on a Unix socket.",
        discussion: """
            Serves HTTP/1.1 + JSON under /v1 on the socket of the host policy's [daemon] section \
            (/run/burrow/burrowd.sock, mode 0660, group `burrow`). Callers are identified by the \
            kernel (SO_PEERCRED) and hold the roles the policy gives their user or groups: admin, \
            invoker, auditor; root holds all. Anything else is refused and recorded as a \
            PermissionDenied audit event.

            Endpoints in this version:
              GET /v1/health                     any caller: version, uptime, the caller's roles
              GET /v1/security/policies          any role: the host policy in force
              GET /v1/security/audit/{tool_id}   auditor: ?type=&since=&until=&invocation=&limit=

            Example:
              curl --unix-socket /run/burrow/burrowd.sock http://burrowd/v1/health
            """,
        version: burrowDaemonVersion)

    @Option(name: .long, help: ArgumentHelp("The host policy file.", valueName: "file"))
    var policy: String = HostPolicy.defaultPath

    @Option(name: .long, help: ArgumentHelp("The socket to serve on (default: the policy's [daemon] socket).", valueName: "path"))
    var socket: String?

    @Option(name: .long, help: ArgumentHelp("The audit database (default: $BURROW_AUDIT_DB, else the policy's [audit] database).", valueName: "file"))
    var auditDB: String?

    public init() {}

    public func run() async throws {
        var logger = Logger(label: "burrowd")
        logger.logLevel = .info
        let hostPolicy: HostPolicy
        let daemon: Daemon
        do {
            hostPolicy = try HostConfiguration.loadPolicy(policy)
            let store = try HostConfiguration.openAudit(hostPolicy, path: HostConfiguration.auditPath(hostPolicy, explicit: auditDB), access: .write)
            daemon = Daemon(policy: hostPolicy, socketPath: socket ?? hostPolicy.daemon.socket, audit: store)
        } catch {
            throw ValidationError("\(error)")
        }
        try await daemon.run(logger: logger)
    }
}

/// The entry point of the `burrowd` executable, which imports nothing else.
public enum DaemonEntry {
    public static func main() async { await DaemonCommand.main() }
}
