import BurrowAPI
import BurrowHost
package import BurrowMCP
package import BurrowPolicy
import BurrowProfile
package import BurrowRuntime
import BurrowSystem
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A request that passed every check and holds its host identity: `run`
/// starts it (once). Until then, or while it runs, `stop` ends it.
package final class PreparedInvocation: Sendable {
    /// How the sandbox is launched.
    package enum Launch: String, Sendable {
        /// Built for this request.
        case cold
        /// Built ahead, and the request's plan fits it.
        case warm
        /// Built ahead, but the request's plan does not fit it: discarded, built for this request.
        case unfit
    }

    package let id: String
    package let plan: LaunchPlan
    /// The profile the plan came from (burrowd builds the tool's next sandbox ahead from it).
    package let loaded: Planner.Loaded
    package let audit: RunAudit
    package let launch: Launch
    /// Ends the run from any thread (before it starts: it ends at once).
    package let stop: RunStop
    /// Behind the MCP relay: `run` needs the client's ends.
    package let relayed: Bool
    private let warm: WarmSandbox?
    /// The host identity, given back when the run ends (or when this is dropped unrun).
    private let lease: Mutex<SandboxIDLease?>

    init(id: String, plan: LaunchPlan, loaded: Planner.Loaded, audit: RunAudit, lease: SandboxIDLease, warm: WarmSandbox?, launch: Launch, relayed: Bool, stop: RunStop) {
        self.id = id
        self.plan = plan
        self.loaded = loaded
        self.audit = audit
        self.lease = Mutex(lease)
        self.warm = warm
        self.launch = launch
        self.relayed = relayed
        self.stop = stop
    }

    /// The client's side of an MCP relay: where its messages come from and
    /// its answers go, and where the server's stderr is passed on.
    package struct RelayClient: Sendable {
        package var input: Int32
        package var output: Int32
        package var stderr: Int32
        /// An eventfd that, once readable, ends the relay's waits on these
        /// descriptors (burrowd's session clients: their descriptors may
        /// never close); -1: none.
        package var stop: Int32
        /// Runs once no thread of the relay uses these descriptors any more
        /// (exactly once, also when the relay could not start).
        package var whenDone: @Sendable () -> Void
        /// The server's approved tool definitions; nil: none are pinned.
        package var pins: PinnedDefinitions?

        package init(input: Int32, output: Int32, stderr: Int32, stop: Int32 = -1, whenDone: @escaping @Sendable () -> Void = {}) {
            self.input = input
            self.output = output
            self.stderr = stderr
            self.stop = stop
            self.whenDone = whenDone
        }
    }

    /// What became of the run.
    package struct Outcome: Sendable {
        package var record: RunRecord
        /// Behind the relay: why it ended the session early, if it did.
        package var relayEndedBy: String?
        /// Lines that were not JSON-RPC messages, dropped, by direction.
        package var droppedLines: [String: Int] = [:]
        /// The run's audit problems, and the relay's.
        package var problems: [String] { record.auditProblems + relayProblems }
        var relayProblems: [String] = []
    }

    /// Runs the invocation to its end on the calling thread: ToolInvoked,
    /// the sandbox (cold or released), supervision, the outcome. `options`
    /// says how the tool's stdio meets the caller (inherited, captured), where
    /// it is cloned and what to call as it goes; the audit trail, the stop,
    /// the sandbox built ahead and (behind the relay) the stdio and activity
    /// are this invocation's. Behind the relay, `client` is required.
    package func run(_ options: Runner.Options, client: RelayClient? = nil) throws(RunError) -> Outcome {
        defer { _ = lease.withLock { $0.take() } }
        var options = options
        options.audit = audit
        options.stop = stop
        options.warm = warm
        guard relayed else {
            guard client == nil else { throw .preparation("a relay client was given for an invocation that is not behind the MCP relay") }
            return Outcome(record: try Runner.run(plan, invocationID: id, options: options))
        }
        guard let client else { throw .preparation("an invocation behind the MCP relay needs the client's descriptors") }
        let relay = try RelayWiring(self, client: client)
        options.streams = nil
        options.stdio = relay.serverStdio
        options.activity = relay.activity
        options.beforeOutcome = { relay.end() }
        let record: RunRecord
        do {
            record = try Runner.run(plan, invocationID: id, options: options)
        } catch {
            relay.end()
            throw error
        }
        relay.end()
        return Outcome(record: record, relayEndedBy: relay.relay.endedBy, droppedLines: relay.relay.droppedLines, relayProblems: relay.calls.problems)
    }
}

/// The relay between an MCP client and the sandboxed server: the server's
/// three pipes, the relay's threads, and each call's audit invocation.
private final class RelayWiring: Sendable {
    let relay: MCPRelay
    let calls: MCPCallAudit
    /// The child's ends: its stdin, stdout and stderr (Runner closes them).
    let serverStdio: [FileDescriptor]
    private let done = Atomic<Bool>(false)
    private let ended = Atomic<Bool>(false)

    init(_ p: PreparedInvocation, client: PreparedInvocation.RelayClient) throws(RunError) {
        let pipes: [(FileDescriptor, FileDescriptor)]
        do {
            pipes = try [Kernel.pipe(), Kernel.pipe(), Kernel.pipe()]
        } catch {
            client.whenDone()
            throw .preparation("cannot create the server's pipes: \(error)")
        }
        // stdin: the child reads pipes[0].0; stdout and stderr: the child writes .1.
        serverStdio = [pipes[0].0, pipes[1].1, pipes[2].1]
        let (toServer, fromServer, serverErr) = (pipes[0].1, pipes[1].0, pipes[2].0)
        let calls = MCPCallAudit(
            store: p.audit.store, principal: p.audit.caller.principal, uid: p.audit.caller.uid, plan: p.plan, session: p.id, profileDigest: p.audit.profileDigest)
        self.calls = calls
        relay = MCPRelay(plan: p.plan.mcp, server: p.plan.tool.id, pins: client.pins) { calls.record($0) }
        let stop = p.stop
        do {
            try Kernel.detachedThread { [self] in
                relay.run(
                    clientIn: client.input, clientOut: client.output, serverIn: toServer.rawValue, serverOut: fromServer.rawValue, serverErr: serverErr.rawValue,
                    errOut: client.stderr, stop: client.stop, onViolation: { stop.stop("mcp_violation") },
                    whenDone: {
                        try? fromServer.close()
                        try? serverErr.close()
                        client.whenDone()
                    })
                done.store(true, ordering: .releasing)
            }
        } catch {
            for fd in serverStdio + [toServer, fromServer, serverErr] { try? fd.close() }
            client.whenDone()
            throw .preparation("cannot start the relay: \(error)")
        }
    }

    /// The calls in flight, for the sandbox's events.
    var activity: @Sendable () -> [String] { { [relay, calls] in relay.callsInFlight.map { calls.invocation($0) } } }

    /// The server is gone: the relay passes on what it wrote last (up to a
    /// second), calls it never answered end with the session, and every
    /// call's events are written, before the session's outcome (once).
    func end() {
        guard !ended.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for _ in 0..<200 where !done.load(ordering: .acquiring) { usleep(5000) }
        relay.endSession()
        calls.flush()
    }
}
