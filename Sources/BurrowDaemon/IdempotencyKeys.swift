import BurrowAPI
import BurrowAudit
import BurrowFleet
import BurrowSystem
import FoundationEssentials
import Logging

/// Where an invocation's `Idempotency-Key` is claimed: this node's
/// registry, or with `[registry] url` the fleet's (`FleetKeys`), so a
/// retry on any node is answered from the first run and never runs twice.
enum IdempotencyKeys: Sendable {
    case local(RegistryStore)
    case fleet(FleetKeys, audit: AuditStore)

    /// A claim this request holds: its key, and the claim's own token (the fleet's).
    struct Held: Sendable {
        var principal: String
        var key: String
        var token: String
    }

    enum Claim: Sendable {
        /// New: this request runs, and the key is its.
        case claimed(Held)
        /// Taken by an earlier request: its digest, and its answer once it has one (nil: still running).
        case taken(digest: String, answer: InvocationResult?, invocation: String?)
    }

    /// A caller as the fleet knows it: a principal named over HTTPS is the
    /// same on every node; a local uid (or address) is one host's own, so
    /// it is named with the host (nodes on one host share its users).
    static func fleetPrincipal(_ principal: String) -> String {
        principal.hasPrefix("uid:") || principal.hasPrefix("address:") ? principal + "@" + UserDatabase.hostName : principal
    }

    /// Claims `key` for `principal`'s request (`digest`: what it asks).
    /// A running key of a node that stopped beating is answered as
    /// `node_lost` (resolved once, by the first node that meets it with
    /// the same request).
    func claim(principal: String, key: String, digest: String, retentionMicroseconds: Int64) async throws(DaemonError) -> Claim {
        switch self {
        case .local(let registry):
            let claim: RegistryStore.IdempotencyClaim
            do {
                claim = try registry.claimIdempotencyKey(principal: principal, key: key, digest: digest, retention: retentionMicroseconds)
            } catch {
                throw DaemonError(.registryUnavailable, error.description)
            }
            switch claim {
            case .claimed: return .claimed(Held(principal: principal, key: key, token: ""))
            case .taken(let digest, let invocation):
                let stored: InvocationResult?
                do {
                    stored = try invocation.flatMap { id throws(RegistryStore.Failure) in try registry.invocation(id)?.0 }
                } catch {
                    throw DaemonError(.registryUnavailable, error.description)
                }
                return .taken(digest: digest, answer: stored?.state == .running ? nil : stored, invocation: invocation)
            }
        case .fleet(let keys, let audit):
            let principal = Self.fleetPrincipal(principal)
            let token = UUID().uuidString.lowercased()
            do {
                guard let row = try await keys.claim(principal: principal, key: key, digest: digest, token: token, retentionSeconds: Double(retentionMicroseconds) / 1_000_000)
                else {
                    return .claimed(Held(principal: principal, key: key, token: token))
                }
                let result = row.result.flatMap { try? JSONDecoder().decode(InvocationResult.self, from: Data($0.utf8)) }
                // Another request under the key (the caller answers 422) resolves nothing.
                guard row.digest == digest, row.state == "running", row.nodeDown, let invocation = row.invocation, let lost = result else {
                    return .taken(digest: row.digest, answer: row.state == "finished" ? result : nil, invocation: row.invocation)
                }
                let inForce = try await Self.lose(keys, audit: audit, FleetKeys.Lost(principal: principal, key: key, invocation: invocation, node: row.node, result: row.result ?? ""), as: lost)
                let answer = inForce.flatMap { try? JSONDecoder().decode(InvocationResult.self, from: Data($0.utf8)) }
                return .taken(digest: row.digest, answer: answer, invocation: invocation)
            } catch {
                // The claim may have been stored though its answer was lost: it is not left to hold the key.
                Task { try? await keys.release(principal: principal, key: key, token: token) }
                throw DaemonError(.centralUnavailable, "the fleet's idempotency keys (\(keys.database.url)): \(explainFleetError(error)); the request was not run")
            }
        }
    }

    /// Reports a running key of a down node `node_lost` (once: the first
    /// node to do so records the AnomalousActivity); returns the result in force.
    static func lose(_ keys: FleetKeys, audit: AuditStore, _ run: FleetKeys.Lost, as started: InvocationResult) async throws -> String? {
        var lost = started
        lost.state = .failed
        lost.finishedAt = AuditClock.format(AuditClock.now())
        lost.error = .init(code: .nodeLost, message: "node \(run.node) stopped beating in the fleet's database while the invocation ran: its outcome is unknown, and it is not run again")
        let text = String(decoding: try JSONEncoder().encode(lost), as: UTF8.self)
        let (inForce, mine) = try await keys.lose(principal: run.principal, key: run.key, invocation: run.invocation, result: text)
        if mine {
            let event = AuditEvent(
                tool: lost.tool, context: SecurityContext(principal: "burrowd:fleet", uid: nil, invocationID: run.invocation, host: UserDatabase.hostName),
                details: CentralAuditDetails(
                    reason: "node_lost", node: run.node, message: "invocation \(run.invocation) (Idempotency-Key '\(run.key)' of \(run.principal)) reported node_lost"))
            do {
                _ = try await BlockingIO.run { try audit.append([event]) }
            } catch {
                Logger(label: "burrowd").error("invocation \(run.invocation) was reported node_lost, and the audit log could not record it: \(error)")
            }
        }
        return inForce
    }

    /// Reports every running key of a down node `node_lost`, before any
    /// retry asks (called now and then by each node).
    func sweepLost() async {
        guard case .fleet(let keys, let audit) = self, let runs = try? await keys.lostRuns() else { return }
        for run in runs {
            // A result this burrowd cannot read (another version's) is still reported, from what the row says.
            let started =
                (try? JSONDecoder().decode(InvocationResult.self, from: Data(run.result.utf8)))
                ?? InvocationResult(id: run.invocation, tool: "burrowd", version: "", state: .running, startedAt: "")
            _ = try? await Self.lose(keys, audit: audit, run, as: started)
        }
    }

    /// The claim's request runs as `started` (its result as it starts).
    func bind(_ held: Held, started: InvocationResult) async throws(DaemonError) {
        switch self {
        case .local(let registry):
            do {
                try registry.bindIdempotencyKey(principal: held.principal, key: held.key, invocation: started.id)
            } catch {
                throw DaemonError(.registryUnavailable, error.description)
            }
        case .fleet(let keys, _):
            let bound: Bool
            do {
                let text = String(decoding: try JSONEncoder().encode(started), as: UTF8.self)
                bound = try await keys.bind(principal: held.principal, key: held.key, token: held.token, invocation: started.id, result: text)
            } catch {
                throw DaemonError(.centralUnavailable, "the fleet's idempotency keys (\(keys.database.url)): \(explainFleetError(error)); the request was not run")
            }
            // Taken over meanwhile (this node was taken for lost): whoever holds it answers.
            guard bound else { throw DaemonError(.inProgress, "the request with Idempotency-Key '\(held.key)' was taken over by another node; retry for its answer", retryAfter: 1) }
        }
    }

    /// The claim's request ended (the local registry keeps results
    /// already). Tried once before the answer goes, then again off the
    /// caller's path for a minute if the fleet's database did not take it:
    /// until then a retry waits (409).
    func finish(_ held: Held, result: InvocationResult, logger: Logger) async {
        guard case .fleet(let keys, _) = self, let text = try? JSONEncoder().encode(result) else { return }
        let json = String(decoding: text, as: UTF8.self)
        @Sendable func attempt() async throws {
            if try await !keys.finish(principal: held.principal, key: held.key, token: held.token, result: json) {
                logger.warning("invocation \(result.id) ended after its key was answered node_lost: that answer stands")
            }
        }
        do {
            try await attempt()
        } catch {
            Task {
                var pause = Duration.milliseconds(500)
                for retry in 0..<7 {
                    try? await Task.sleep(for: pause)
                    pause = min(pause * 2, .seconds(15))
                    do {
                        try await attempt()
                        return
                    } catch {
                        if retry == 6 { logger.error("the result of invocation \(result.id) did not reach the fleet's idempotency keys: \(explainFleetError(error))") }
                    }
                }
            }
        }
    }

    /// A claim whose request never ran (refused, or its bind failed): free for a retry.
    func release(_ held: Held) async {
        switch self {
        case .local(let registry): _ = try? registry.releaseIdempotencyKey(principal: held.principal, key: held.key)
        case .fleet(let keys, _): try? await keys.release(principal: held.principal, key: held.key, token: held.token)
        }
    }
}
