import BurrowAPI
package import BurrowAudit
package import BurrowFleet
import BurrowInvocation
import BurrowPolicy
package import BurrowProfile
import BurrowRuntime
package import BurrowSystem
import FoundationEssentials
package import Hummingbird
import HummingbirdCore
package import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization
import SystemPackage
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// burrowd: the registry's delegate, serving the API on a Unix socket.
package struct Daemon: Sendable {
    package var policy: HostPolicy
    package var socketPath: String
    package var audit: AuditStore
    package var registry: RegistryStore
    package var access: AccessPolicy
    package var lookup: PeerCredential.Lookup
    let planner: Planner
    let metrics = DaemonMetrics()
    let admission: Admission
    let denials: DenialLog
    let invocations: InvocationService
    let sessions: MCPSessions
    let health: HealthMonitor
    /// Registrations, updates and removals, one at a time (`RegistryWrites`),
    /// and with `[registry] url` the replica of the fleet's registry.
    let registryWrites: RegistryWrites
    let connectionLimiter: ConnectionLimiter
    let keys: APIKeys
    /// The HTTPS listeners' (one nonce memory for all of them).
    let authentication: RemoteAuthentication
    /// `[rate_limits.clients]` and `[rate_limits.methods]`, shared by every listener.
    let clientLimits = ClientLimits()
    let startedAt = AuditClock.now()
    /// Ships the audit log to its central copy (`[audit] central_url`); nil: none.
    let shipper: AuditShipper?
    /// This node's heartbeat in the fleet's database; nil: no fleet.
    let heartbeat: NodeHeartbeat?
    /// Where invocations' Idempotency-Keys are claimed: here, or the fleet's.
    let idempotency: IdempotencyKeys
    /// The fleet's rate counters (`[rate_limits] scope = "fleet"`); nil: limits per node.
    let counters: FleetCounters?
    let logger = Logger(label: "burrowd")

    package init(
        policy: HostPolicy, socketPath: String, audit: AuditStore, registry: RegistryStore, host: HostFacts, searchPath: [String],
        lookup: @escaping PeerCredential.Lookup = PeerCredential.socketLookup, shipper: AuditShipper? = nil, heartbeat: NodeHeartbeat? = nil,
        sharedRegistry: SharedRegistry? = nil, fleetKeys: FleetKeys? = nil, counters: FleetCounters? = nil
    ) {
        self.counters = counters
        idempotency = fleetKeys.map { .fleet($0, audit: audit) } ?? .local(registry)
        self.shipper = shipper
        self.heartbeat = heartbeat
        self.policy = policy
        self.socketPath = socketPath
        self.audit = audit
        self.registry = registry
        self.access = AccessPolicy(policy.daemon)
        self.lookup = lookup
        planner = Planner(policy: policy, host: host, searchPath: searchPath)
        admission = Admission(fleetSync: policy.rateLimits.scope == .fleet ? UInt64(policy.rateLimits.fleetSync.milliseconds) * 1_000_000 : nil)
        denials = DenialLog(
            audit: audit, metrics: metrics, windowNanoseconds: policy.audit.denialWindow.milliseconds * 1_000_000,
            threshold: policy.audit.anomalyThreshold > 0 ? policy.audit.anomalyThreshold : nil)
        invocations = InvocationService(
            front: Invocations(planner: planner, audit: audit), registry: registry, metrics: metrics, admission: admission, denials: denials)
        sessions = MCPSessions(
            invocations: invocations, idleTimeout: .milliseconds(Int64(policy.mcp.sessionIdleTimeout.milliseconds)),
            limits: .init(total: policy.mcp.maxSessions, perCaller: policy.mcp.maxSessionsPerCaller))
        let warm = invocations.warm
        registryWrites = RegistryWrites(registry: registry, shared: sharedRegistry) { ids in for id in ids { warm.drop(id) } }
        health = HealthMonitor(registry: registry, invocations: invocations, audit: audit, metrics: metrics, logger: Logger(label: "burrowd"))
        keys = APIKeys(store: registry)
        authentication = RemoteAuthentication(policy.auth, keys: keys, maxBody: Int(clamping: policy.daemon.maxRequestBytes.bytes))
        connectionLimiter = ConnectionLimiter(
            .init(total: policy.daemon.maxConnections, perUser: policy.daemon.maxConnectionsPerUser, reserve: policy.daemon.adminConnectionReserve))
    }

    /// Every route behind the access middleware. `remote`: the HTTPS
    /// listener's, whose callers are named by their client certificates
    /// and whose browser origins are the policy's.
    package func router(remote: Bool = false) -> Router<DaemonContext> {
        let router = Router(context: DaemonContext.self)
        let methods = RouteMethods()
        router.add(
            middleware: AccessMiddleware(
                access: access, lookup: remote ? CallerIdentity.certificate(policy.transport.http.clientIdentity) : CallerIdentity.socket(lookup),
                origins: remote ? OriginPolicy(policy.transport.http) : .none, denials: denials,
                authentication: remote ? authentication : nil, clientLimit: policy.rateLimits.clients, clientLimits: clientLimits, methods: methods))
        let v1 = router.group("v1")
        let api = API(daemon: self)

        v1.get("health") { _, context in try api.health(context) }
        // The MCP Registry specification's operations: under /v1 in Burrow's form, and under
        // /api/v1, its paths, answering in its form (`SpecificationForm`); one handler each.
        for (group, specification) in [(v1, false), (router.group("api/v1"), true)] {
            group.get("security/policies") { request, context in
                try await api.requireAny(context, request, "reading the host policy")
                return try json(api.daemon.policy)
            }
            group.post("security/validate") { request, context in try await api.validate(request, context) }
            group.get("security/audit/:tool") { request, context in try await api.auditTrail(request, context, specification: specification) }
            group.post("security/audit") { request, context in try await api.report(request, context, specification: specification) }
            group.post(specification ? "tools/register" : "tools") { request, context in try await api.register(request, context, replacing: nil) }
            group.get("tools") { request, context in try await api.list(request, context, specification: specification) }
            group.get("tools/:id") { request, context in try await api.show(request, context, specification: specification) }
            group.put("tools/:id") { request, context in try await api.register(request, context, replacing: try API.toolID(context)) }
            group.delete("tools/:id") { request, context in try await api.remove(request, context) }
            group.get("discovery/search") { request, context in try await api.search(request, context, specification: specification) }
            group.get("discovery/recommendations") { request, context in try await api.recommendations(request, context, specification: specification) }
            group.get("discovery/categories") { request, context in
                try await api.requireAny(context, request, "listing categories")
                return try json(try api.registryCall { () throws(RegistryStore.Failure) in try api.daemon.registry.categories() })
            }
        }
        v1.get("security/audit") { request, context in try await api.auditTrail(request, context, allTools: true) }
        v1.get("audit/central") { request, context in try await api.verifyCentral(request, context) }
        for group in [v1, router.group("api/v1")] { group.get("nodes") { request, context in try await api.nodes(request, context) } }
        v1.post("tools/:id/invocations") { request, context in try await api.invoke(request, context) }
        v1.get("invocations/:id") { request, context in try await api.invocation(request, context) }
        v1.get("tools/:id/definitions") { request, context in try await api.definitions(request, context) }
        v1.post("tools/:id/definitions") { request, context in try await api.approveDefinitions(request, context) }
        v1.post("tools/:id/sessions") { request, context in try await api.startSession(request, context) }
        v1.post("sessions/:sid/mcp") { request, context in try await api.sessionMessage(request, context) }
        v1.get("sessions/:sid/mcp") { request, context in try await api.sessionStream(request, context) }
        v1.delete("sessions/:sid/mcp") { request, context in try await api.endSession(request, context) }
        v1.delete("sessions/:sid") { request, context in try await api.endSession(request, context) }
        v1.post("tools/:id/mcp") { request, context in try await api.mcpEndpoint(request, context) }
        v1.get("tools/:id/mcp") { request, context in try await api.mcpEndpoint(request, context) }
        v1.delete("tools/:id/mcp") { request, context in try await api.mcpEndpoint(request, context) }
        v1.post("keys") { request, context in try await api.createKey(request, context) }
        v1.get("keys") { request, context in try await api.listKeys(request, context) }
        v1.delete("keys/:kid") { request, context in try await api.revokeKey(request, context) }

        router.get("metrics") { request, context in
            try await api.requireAny(context, request, "reading metrics")
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: api.daemon.metrics.text())))
        }
        methods.fill(router.routes)
        return router
    }

    /// HTTP/1 with burrowd's connection discipline: admission by peer uid at
    /// accept, header, body and idle deadlines, JSON bodies for what the HTTP
    /// parser refuses.
    func httpServer() -> HTTPServerBuilder {
        let d = policy.daemon
        let timeouts = RequestGuard.Timeouts(header: .milliseconds(Int64(d.headerTimeout.milliseconds)), body: .milliseconds(Int64(d.bodyTimeout.milliseconds)))
        let configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestGuard(timeouts)], idleTimeout: .milliseconds(Int64(d.idleTimeout.milliseconds)))
        let (limiter, access) = (connectionLimiter, access)
        return HTTPServerBuilder { responder in
            GuardedHTTP1Channel(
                base: HTTP1Channel(responder: responder, configuration: configuration), limiter: limiter,
                privileged: { access.roles(of: $0).contains(.admin) })
        }
    }

    /// HTTPS for `[transport.http]`: the same HTTP/1 discipline behind TLS
    /// 1.3, with a connection limiter of its own (remote callers never take
    /// the local callers' connections). A refused handshake is a
    /// PermissionDenied of the address (aggregated as every refusal is).
    func httpsServer(context: TLSContextBox, limiter: ConnectionLimiter) -> HTTPServerBuilder {
        let d = policy.daemon
        let timeouts = RequestGuard.Timeouts(header: .milliseconds(Int64(d.headerTimeout.milliseconds)), body: .milliseconds(Int64(d.bodyTimeout.milliseconds)))
        let configuration = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestGuard(timeouts)], idleTimeout: .milliseconds(Int64(d.idleTimeout.milliseconds)))
        let suites = Set(policy.transport.http.cipherSuites.compactMap { HostPolicy.Transport.HTTP.tls13Suites[$0] })
        let denials = denials
        let refused: @Sendable (String, String) -> Void = { address, message in
            Task {
                await denials.record(
                    caller: .remote(.init(address: address)), tool: "burrowd", RefusalDetails(reason: "tls_handshake_failed", message: message))
            }
        }
        return HTTPServerBuilder { responder in
            HTTPSChannel(
                guarded: GuardedHTTP1Channel(base: HTTP1Channel(responder: responder, configuration: configuration), limiter: limiter, privileged: { _ in false }),
                context: context, suites: suites, deadline: .milliseconds(Int64(d.headerTimeout.milliseconds)), refused: refused)
        }
    }

    /// Closes the fleet's connections (a connection must be closed before it goes).
    func closeFleet() async {
        await registryWrites.shared?.close()
        if case .fleet(let keys, _) = idempotency { await keys.close() }
    }

    /// Start-up: sweeps what a previous burrowd left (cgroups of dead
    /// supervisors, their open audit trails, results still `running`).
    package func recover(logger: Logger) {
        do {
            let compiler = PlanCompiler(policy: policy, host: planner.host, fs: LiveFileSystem(), environment: [:], workingDirectory: "/")
            let (swept, recovered, notes) = try Runner.recover(compiler.hostCgroupPlan(), store: audit)
            for s in swept { logger.warning("swept invocation \(s.invocationID) left by a supervisor that is gone\(s.problem.map { ": " + $0 } ?? "")") }
            for id in recovered { logger.warning("invocation \(id) had no recorded outcome: recorded as ToolFailed supervisor_lost") }
            for note in notes { logger.error("\(note)") }
        } catch {
            logger.error("start-up sweep failed: \(error)")
        }
        do {
            let failed = try registry.failAbandoned(reason: "burrowd ended while the invocation ran (its sandbox was swept at the next start)")
            let freed = try registry.releaseUnboundIdempotencyKeys()
            if freed > 0 { logger.info("\(freed) idempotency key(s) whose request never ran are free again") }
            if !failed.isEmpty { logger.warning("\(failed.count) invocation result(s) left running by the previous burrowd marked failed") }
            try registry.pruneInvocations(olderThanMicroseconds: Int64(policy.daemon.resultRetention.milliseconds) * 1000)
        } catch {
            logger.error("\(error)")
        }
    }

    /// Serves until SIGTERM or SIGINT: the socket is 0660 root:socket_group.
    /// On SIGTERM new requests are refused, running invocations get
    /// `shutdown_grace` to finish, then their sandboxes are stopped (each
    /// recorded as ToolFailed `stopped`).
    package func run(logger: Logger) async throws {
        let gid = UserDatabase.groupID(policy.daemon.socketGroup)
        if gid == nil { logger.warning("socket group \(policy.daemon.socketGroup) does not exist: the socket is root's only") }
        for problem in access.unresolved { logger.warning("role principal names nobody on this host: \(problem)") }
        // A rule for a tool that is not registered protects nothing: a misspelled id is said, not silently kept.
        let unknown = policy.capabilities.keys.filter { $0 != "*" && ((try? registry.versions($0).isEmpty) ?? false) }.sorted()
        for id in unknown { logger.warning("[capabilities.\"\(id)\"] names no registered tool: it applies to nothing until a tool with that id is registered") }
        // Descriptors: connections take at most the limiter's hard limit; the
        // rest is for sandboxes (about a dozen each while they run), the audit
        // log, the registry and burrow-spawner.
        let descriptors = Kernel.raiseOpenFileLimit()
        let forConnections = connectionLimiter.hardLimit + 16
        if descriptors < UInt64(forConnections) * 2 {
            logger.warning(
                "RLIMIT_NOFILE is \(descriptors): connections may take \(forConnections) of them ([daemon] max_connections + admin_connection_reserve + 64 being refused), leaving too few for sandboxes; raise LimitNOFILE or lower max_connections"
            )
        }
        // A tool that closes its stdin early must not kill burrowd with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        recover(logger: logger)
        if let helper = Spawner.besideExecutable {
            do {
                invocations.use(try Spawner.start(helper))
            } catch {
                logger.warning("\(error): sandboxes are cloned in process (slower)")
            }
        } else {
            logger.warning("no burrow-spawner beside burrowd: sandboxes are cloned in process (slower)")
        }
        let sessionPath = HostPolicy.Daemon.sessionSocket(beside: socketPath)
        let sessions = try startSessions(sessionPath, group: gid, logger: logger)
        let path = socketPath
        // Until chmod below, the socket must not be connectable by others.
        let previous = umask(0o177)
        let limits = connectionLimiter
        let app = Application(
            router: router(),
            server: httpServer(),
            configuration: ApplicationConfiguration(
                address: .unixDomainSocket(path: path), serverName: "burrowd", backlog: 128,
                // A backstop: the limiter refuses or drops before this is reached.
                availableConnectionsDelegate: MaximumAvailableConnections(limits.hardLimit + 16)),
            onServerRunning: { _ in
                umask(previous)
                _ = chown(path, uid_t.max, gid ?? 0)
                _ = chmod(path, 0o660)
                logger.info("burrowd \(burrowDaemonVersion) listening on \(path) (sessions: \(sessionPath))")
                SystemdNotify.send("READY=1\nSTATUS=serving on \(path) and \(sessionPath)")
            },
            logger: logger)
        var listeners: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app)]
        let http = policy.transport.http
        var tls: TLSContextBox?
        if let zone = API.unresolvedZones(policy).first {
            sessions.stop()
            unlink(path)
            throw DaemonStartFailure(message: "[capabilities] time_windows: burrowd cannot resolve the time zone '\(zone)'")
        }
        if !http.listen.isEmpty && policy.auth.methods.contains(.jwt) {
            do {
                authentication.jwt.replace(try await JWTVerifier.load(policy.auth.jwt))
            } catch {
                sessions.stop()
                unlink(path)
                throw DaemonStartFailure(message: "cannot check JWTs ([auth.jwt]): \(error)")
            }
        }
        if !http.listen.isEmpty {
            let box: TLSContextBox
            do {
                box = TLSContextBox(try HTTPSListener.credentials(http))
            } catch {
                sessions.stop()
                unlink(path)
                throw DaemonStartFailure(message: "cannot serve HTTPS: \(error)")
            }
            tls = box
            let d = policy.daemon
            let limiter = ConnectionLimiter(.init(total: d.maxConnections, perUser: min(d.maxConnections, http.maxConnectionsPerAddress), reserve: 0))
            for text in http.listen {
                guard let (host, port) = HostPolicy.Transport.HTTP.address(text) else { continue }
                let https = Application(
                    router: router(remote: true), server: httpsServer(context: box, limiter: limiter),
                    configuration: ApplicationConfiguration(
                        address: .hostname(host, port: port), serverName: "burrowd", backlog: 128,
                        availableConnectionsDelegate: MaximumAvailableConnections(policy.daemon.maxConnections + 16)),
                    onServerRunning: { _ in logger.info("burrowd listening on https://\(text) (TLS 1.3, client certificates: \(http.clientAuth.rawValue))") },
                    logger: logger)
                listeners.append(.init(service: https))
            }
        }
        let shutdown = ShutdownService(invocations: invocations, grace: policy.daemon.shutdownGrace, logger: logger)
        var shipping: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let shipper { shipping.append(.init(service: AuditShippingService(shipper: shipper, metrics: metrics), successTerminationBehavior: .ignore)) }
        // The heartbeat is first: shut down last (services stop in reverse order), it beats while running invocations get their grace.
        let beating: [ServiceGroupConfiguration.ServiceConfiguration] = heartbeat.map { [.init(service: HeartbeatService(heartbeat: $0), successTerminationBehavior: .ignore)] } ?? []
        if let counters {
            let admission = admission
            let sync = Duration.milliseconds(Int64(policy.rateLimits.fleetSync.milliseconds))
            shipping.append(
                .init(
                    service: FleetCountersService(counters: counters, every: sync, admission: admission, metrics: metrics), successTerminationBehavior: .ignore))
        }
        if registryWrites.shared != nil || { if case .fleet = idempotency { true } else { false } }() {
            let follow = RegistryFollowService(writes: registryWrites, keysStore: idempotency, retention: policy.daemon.resultRetention, metrics: metrics)
            shipping.append(.init(service: follow, successTerminationBehavior: .ignore))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: beating + listeners + shipping + [
                    .init(service: shutdown, successTerminationBehavior: .ignore),
                    .init(service: WarmPoolService(pool: invocations.warm), successTerminationBehavior: .ignore),
                    .init(service: DenialFlushService(denials: denials), successTerminationBehavior: .ignore),
                    .init(service: HealthService(monitor: health), successTerminationBehavior: .ignore),
                    .init(
                        service: ManifestCheckService(check: ManifestCheck(registry: registry, audit: audit, policy: policy, logger: logger)),
                        successTerminationBehavior: .ignore),
                    .init(
                        service: ReloadService(http: http, box: tls, jwt: policy.auth.methods.contains(.jwt) ? (policy.auth.jwt, authentication.jwt) : nil, logger: logger),
                        successTerminationBehavior: .ignore),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            sessions.stop()
            unlink(path)
            throw error
        }
        sessions.stop()
        unlink(path)
    }

    /// The session socket, serving (unprivileged burrow run, mcp, dry-run).
    private func startSessions(_ path: String, group: gid_t?, logger: Logger) throws -> SessionServer {
        let listener: SystemPackage.FileDescriptor
        do {
            listener = try SessionServer.bind(path, group: group)
        } catch {
            throw DaemonStartFailure(message: "cannot serve the session socket \(path): \(error)")
        }
        let sessions = SessionServer(daemon: self, path: path, listener: listener, logger: logger)
        do {
            try sessions.start()
        } catch {
            sessions.stop()
            throw DaemonStartFailure(message: "cannot start the session socket's thread: \(error)")
        }
        return sessions
    }
}

package let burrowDaemonVersion = "0.2.0"

/// burrowd cannot start serving.
struct DaemonStartFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// This node's heartbeat in the fleet's database while burrowd serves.
struct HeartbeatService: Service {
    let heartbeat: NodeHeartbeat

    func run() async throws {
        await cancelWhenGracefulShutdown { await heartbeat.run() }
    }
}

/// Syncs the fleet's rate counters while burrowd serves.
struct FleetCountersService: Service {
    let counters: FleetCounters
    let every: Duration
    let admission: Admission
    let metrics: DaemonMetrics

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await counters.run(
                every: every, take: { admission.fleetPush() }, pushed: { admission.fleetPushed($0) },
                deliver: { view in
                    admission.fleetView(view)
                    if view != nil { metrics.fleetSynced() }
                })
        }
    }
}

/// Follows the fleet's registry while burrowd serves; its state feeds the metrics.
struct RegistryFollowService: Service {
    let writes: RegistryWrites
    let keysStore: IdempotencyKeys
    /// How long results (and so keys) are kept.
    let retention: Seconds
    let metrics: DaemonMetrics

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await writes.follow() }
                group.addTask {
                    // This node's keys an earlier burrowd left are ended at the first connection: make it now.
                    guard case .fleet(let keys, _) = keysStore else { return }
                    var pause = Duration.seconds(1)
                    var said = false
                    while !Task.isCancelled {
                        do {
                            try await keys.prepare()
                            break
                        } catch {
                            // Said once (an id another burrowd holds, a database down): keyed requests are refused meanwhile.
                            if !said { keys.database.logger.error("the fleet's idempotency keys: \(explainFleetError(error)); requests with an Idempotency-Key are refused until this is mended") }
                            said = true
                            try? await Task.sleep(for: pause)
                            pause = min(pause * 2, .seconds(30))
                        }
                    }
                    // A down node's running keys are reported node_lost (by whichever node comes first);
                    // finished keys go with their results' retention.
                    var ticks = 0
                    while !Task.isCancelled {
                        await keysStore.sweepLost()
                        if ticks % 12 == 0 { try? await keys.prune(retentionSeconds: Double(retention.milliseconds) / 1000) }
                        ticks += 1
                        try? await Task.sleep(for: .seconds(5))
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        metrics.replica(writes.following.withLock { $0 })
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
                await group.waitForAll()
            }
        }
    }
}

/// Ships the audit log to its central copy while burrowd serves; its state feeds the metrics.
struct AuditShippingService: Service {
    let shipper: AuditShipper
    let metrics: DaemonMetrics

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await shipper.run() }
                group.addTask {
                    while !Task.isCancelled {
                        shipper.tick()
                        metrics.shipping(shipper.current)
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
                await group.waitForAll()
            }
        }
    }
}

/// Pings the systemd watchdog while burrowd serves. On graceful shutdown
/// (SIGTERM) it tells systemd, makes new invocations fail with 503, and
/// returns at once so the HTTP server stops accepting; meanwhile running
/// invocations get the grace period, then their sandboxes are stopped, which
/// ends the requests the server is still waiting for.
struct ShutdownService: Service {
    let invocations: InvocationService
    let grace: Seconds
    let logger: Logger

    func run() async throws {
        let watchdog = SystemdNotify.watchdogInterval
        let pinger = Task {
            while let watchdog, !Task.isCancelled {
                SystemdNotify.send("WATCHDOG=1")
                try? await Task.sleep(for: watchdog)
            }
        }
        defer { pinger.cancel() }
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: the group is ending anyway
        }
        SystemdNotify.send("STOPPING=1\nSTATUS=stopping: \(invocations.liveCount) invocation(s) running")
        invocations.drain()
        let (invocations, grace, logger) = (invocations, grace, logger)
        Task {
            let deadline = ContinuousClock.now + .milliseconds(Int64(grace.milliseconds))
            while invocations.liveCount > 0 && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(50))
            }
            let stopped = invocations.stopAll("burrowd is shutting down: the sandbox outlived the \(grace) grace period")
            if stopped > 0 { logger.warning("stopped \(stopped) invocation(s) still running after the \(grace) grace period") }
        }
    }
}

/// Discards sandboxes built ahead that waited longer than the pool's idle
/// time, every few seconds, until shutdown (which discards them all).
struct WarmPoolService: Service {
    let pool: WarmPool

    func run() async throws {
        guard pool.enabled else { return }
        let period = Duration.nanoseconds(Int64(clamping: min(pool.idle / 4, 5_000_000_000)))
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: period)
                pool.expire()
            }
        }
        pool.close()
    }
}

/// Writes the counts of aggregated refusals as their windows end, and all
/// of them at shutdown.
struct DenialFlushService: Service {
    let denials: DenialLog

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                await denials.flush()
            }
        }
        await denials.flush(all: true)
    }
}

/// Encodes a value as the JSON response (keys sorted: stable output).
func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var body = ByteBuffer(bytes: try encoder.encode(value))
    body.writeString("\n")
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
}

/// `?type=…&since=…&until=…&invocation=…&limit=…` → an audit query.
enum AuditQueryParameters {
    static func parse(_ parameters: Parameters, tool: String?) throws(DaemonError) -> AuditQuery {
        var query = AuditQuery(tool: tool ?? parameters.get("tool"), limit: 100)
        for raw in parameters.getAll("type").flatMap({ $0.split(separator: ",") }) {
            guard let t = AuditEventType.allCases.first(where: { $0.rawValue.lowercased() == raw.lowercased() }) else {
                throw DaemonError(.invalidParameter, "unknown event type '\(raw)'; expected one of: \(AuditEventType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            query.types.append(t)
        }
        for (name, keyPath) in [("since", \AuditQuery.since), ("until", \AuditQuery.until)] {
            guard let text = parameters.get(name) else { continue }
            guard let t = AuditClock.parse(text) else { throw DaemonError(.invalidParameter, "\(name): expected an RFC 3339 time, such as 2026-11-21T09:30:00Z") }
            query[keyPath: keyPath] = t
        }
        query.invocation = parameters.get("invocation")
        if let text = parameters.get("limit") {
            guard let n = Int(text), (1...10_000).contains(n) else { throw DaemonError(.invalidParameter, "limit: expected 1 to 10000") }
            query.limit = n
        }
        return query
    }
}
