package import ArgumentParser
import BurrowAPI
import BurrowAudit
import BurrowFleet
import BurrowHost
import BurrowProfile
import BurrowRuntime
import BurrowSystem
import FoundationEssentials
import Logging

/// `burrowd`: serves the API on a Unix socket until SIGTERM.
package struct DaemonCommand: AsyncParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "burrowd",
        abstract: "Burrow's daemon: the tool registry's delegate, on a Unix socket.",
        discussion: """
            Serves HTTP/1.1 + JSON under /v1, and the MCP Registry specification's operations under \
            /api/v1 in its own form (docs/openapi.yaml), on the socket of the host policy's [daemon] \
            section (/run/burrow/burrowd.sock, mode 0660, group `burrow`). Callers are identified by \
            the kernel (SO_PEERCRED) and hold the roles the policy gives their user or groups: admin, \
            invoker, runner, auditor, reporter; root holds all. Anything else is refused and recorded \
            as a PermissionDenied audit event.

            Endpoints (docs/daemon-api.md documents each body):
              GET    /v1/health                      any caller: version, uptime, the caller's roles
              POST   /v1/tools                       admin: register a tool version (validated like
                                                     `burrow profile lint`, clamped by the policy)
              GET    /v1/tools?category=&status=     any role: the latest version of each tool
              GET    /v1/tools/{id}?version=&window= any role: one version, its versions, dependents, statistics
              PUT    /v1/tools/{id}                  admin: replace a version
              DELETE /v1/tools/{id}?version=&force=  admin: remove one version or all (force: despite dependents)
              POST   /v1/tools/{id}/invocations      invoker: run it (?stream=1: NDJSON events)
              GET    /v1/invocations/{id}            its caller, admin or auditor: the result
              POST   /v1/security/validate           any role: findings, exposure, plan summary
              GET    /v1/security/policies           any role: the host policy in force
              GET    /v1/security/audit/{tool_id}    auditor: ?type=&since=&until=&invocation=&limit=&central=1&node=
              GET    /v1/audit/central               auditor: every node's chain in the central copy verified
              GET    /v1/nodes                       auditor: the fleet's nodes, up or down by heartbeat
              POST   /v1/security/audit              reporter: a registry's own event into the chain
              GET    /v1/discovery/search?q=         any role: full-text search (?capability=&input=: by MCP capability)
              GET    /v1/discovery/categories        any role
              GET    /v1/discovery/recommendations   invoker: ?context=&tool= suggestions, each with its reasons
              /api/v1/...                            the specification's paths (tools/register, tools, tools/{id},
                                                     security/..., discovery/...): the same operations, its form
              GET    /metrics                        any role: Prometheus text format

            Limits on callers come from the policy's [rate_limits]: requests per minute and live             sandboxes per tool (429 with Retry-After beyond them; nothing queues), registration             attempts per hour per caller, and [daemon] max_request_size for bodies.

            On SIGTERM burrowd refuses new invocations, gives running ones [daemon] shutdown_grace             to finish, then stops their sandboxes (each recorded as ToolFailed `stopped`). At start             it sweeps what a previous burrowd left behind. Under systemd it reports READY,             STOPPING and WATCHDOG (Type=notify).

            Examples:
              burrowd --policy /etc/burrow/burrow.toml
              curl --unix-socket /run/burrow/burrowd.sock http://burrowd/v1/health
              burrow tools list          (the CLI client; see `burrow tools --help`)
            """,
        version: burrowDaemonVersion)

    @Option(name: .long, help: ArgumentHelp("The host policy file.", valueName: "file"))
    var policy: String = HostPolicy.defaultPath

    @Option(name: .long, help: ArgumentHelp("The socket to serve on (default: the policy's [daemon] socket).", valueName: "path"))
    var socket: String?

    @Option(name: .long, help: ArgumentHelp("The audit database (default: $BURROW_AUDIT_DB, else the policy's [audit] database).", valueName: "file"))
    var auditDB: String?

    @Option(name: .long, help: ArgumentHelp("The registrations database (default: the policy's [daemon] registry).", valueName: "file"))
    var registryDB: String?

    package init() {}

    package func run() async throws {
        var logger = Logger(label: "burrowd")
        logger.logLevel = .info
        let hostPolicy: HostPolicy
        let daemon: Daemon
        do {
            hostPolicy = try HostConfiguration.loadPolicy(policy)
            let store = try HostConfiguration.openAudit(
                hostPolicy, path: HostConfiguration.auditPath(hostPolicy, explicit: auditDB), access: .write,
                // A long-lived writer: commits never wait for a checkpoint (see AuditStore.Checkpoints).
                checkpoints: .background(pages: 1000))
            let registry = try RegistryStore(path: registryDB ?? hostPolicy.daemon.registry)
            // The central copy's password is read now: a configuration that cannot ship refuses to start.
            let facts = HostFacts.probe(children: false)
            let node = hostPolicy.daemon.nodeID ?? UserDatabase.hostName
            let central = try hostPolicy.audit.central.map { central in (central, try FleetDatabase(central.endpoint, logger: logger)) }
            let shipper = try central.map { (central, database) in
                AuditShipper(
                    central: database, audit: store, reader: try HostConfiguration.openAudit(hostPolicy, path: store.path, access: .read), node: node,
                    maxLagMicroseconds: Int64(central.maxLag.milliseconds) * 1000)
            }
            // The shared registry's database coordinates the fleet (heartbeats, idempotency keys); without one, the central copy's.
            let shared = try hostPolicy.sharedRegistry.map { try FleetDatabase($0, logger: logger) }
            let backend = facts.cgroupBackend.map { "cgroup v\($0.version)" } ?? "no cgroups"
            let heartbeat = (shared ?? central?.1).map { database in
                NodeHeartbeat(
                    central: database, node: node, version: burrowDaemonVersion, host: UserDatabase.hostName,
                    facts: "Linux \(facts.kernelRelease) \(facts.machine), Landlock ABI \(facts.landlockABI.map(String.init) ?? "none"), \(backend)",
                    intervalMilliseconds: Int64(hostPolicy.daemon.heartbeatInterval.milliseconds), shipper: shipper)
            }
            let fleetKeys = shared.map { database in
                FleetKeys(database: database, node: node) { started in
                    // A run the previous burrowd on this node left: its result as this node kept it (an
                    // outcome the fleet did not get), else failed: its sandbox was swept at this start.
                    guard var result = try? JSONDecoder().decode(InvocationResult.self, from: Data(started.utf8)) else { return started }
                    if let (kept, _) = try? registry.invocation(result.id), kept.state != .running, let text = try? JSONEncoder().encode(kept) {
                        return String(decoding: text, as: UTF8.self)
                    }
                    result.state = .failed
                    result.finishedAt = AuditClock.format(AuditClock.now())
                    result.error = .init(code: .supervisorLost, message: "burrowd on node \(node) ended while the invocation ran (its sandbox was swept at the next start)")
                    return (try? JSONEncoder().encode(result)).map { String(decoding: $0, as: UTF8.self) } ?? started
                }
            }
            daemon = Daemon(
                policy: hostPolicy, socketPath: socket ?? hostPolicy.daemon.socket, audit: store, registry: registry, host: facts,
                searchPath: HostConfiguration.profileSearchPath(), shipper: shipper, heartbeat: heartbeat, sharedRegistry: shared.map { SharedRegistry(database: $0) },
                fleetKeys: fleetKeys, counters: hostPolicy.rateLimits.scope == .fleet ? shared.map { FleetCounters(database: $0, node: node) } : nil)
            // The replica taken before anything is served from it.
            do {
                try await daemon.registryWrites.start()
            } catch {
                await daemon.closeFleet()
                throw error
            }
        } catch {
            throw ValidationError("\(error)")
        }
        // The fleet's connections are closed however burrowd ends (a connection must be closed before it goes).
        do {
            try await daemon.run(logger: logger)
        } catch {
            await daemon.closeFleet()
            throw error
        }
        await daemon.closeFleet()
    }
}

/// The entry point of the `burrowd` executable, which imports nothing else.
package enum DaemonEntry {
    package static func main() async { await DaemonCommand.main() }
}
