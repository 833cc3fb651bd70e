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

    enum Claim: Sendable {
        /// New: this request runs, and the key is its.
        case claimed
        /// Taken by an earlier request: its digest, and its answer once it has one (nil: still running).
        case taken(digest: String, answer: InvocationResult?, invocation: String?)
    }

    /// Claims `key` for `principal`'s request (`digest`: what it asks).
    /// A running key of a node that stopped beating is answered as
    /// `node_lost` (resolved once, by the first node that meets it).
    func claim(principal: String, key: String, digest: String, retentionMicroseconds: Int64, tool: String) async throws(DaemonError) -> Claim {
        switch self {
        case .local(let registry):
            let claim: RegistryStore.IdempotencyClaim
            do {
                claim = try registry.claimIdempotencyKey(principal: principal, key: key, digest: digest, retention: retentionMicroseconds)
            } catch {
                throw DaemonError(.registryUnavailable, error.description)
            }
            switch claim {
            case .claimed: return .claimed
            case .taken(let digest, let invocation):
                let stored = invocation.flatMap { try? registry.invocation($0)?.0 }
                return .taken(digest: digest, answer: stored?.state == .running ? nil : stored, invocation: invocation)
            }
        case .fleet(let keys, let audit):
            do {
                guard let row = try await keys.claim(principal: principal, key: key, digest: digest, retentionSeconds: Double(retentionMicroseconds) / 1_000_000) else {
                    return .claimed
                }
                let result = row.result.flatMap { try? JSONDecoder().decode(InvocationResult.self, from: Data($0.utf8)) }
                guard row.state == "running", row.nodeDown, let invocation = row.invocation, var lost = result else {
                    return .taken(digest: row.digest, answer: row.state == "finished" ? result : nil, invocation: row.invocation)
                }
                // Its node is gone: the run's outcome is unknown, and it is not run again.
                lost.state = .failed
                lost.finishedAt = AuditClock.format(AuditClock.now())
                lost.error = .init(code: .nodeLost, message: "node \(row.node) stopped beating in the fleet's database while the invocation ran: its outcome is unknown, and it is not run again")
                let text = String(decoding: try JSONEncoder().encode(lost), as: UTF8.self)
                let inForce = try await keys.lose(principal: principal, key: key, invocation: invocation, result: text)
                if inForce == text {
                    let event = AuditEvent(
                        tool: tool, context: SecurityContext(principal: "burrowd:fleet", uid: nil, invocationID: invocation, host: UserDatabase.hostName),
                        details: CentralAuditDetails(reason: "node_lost", node: row.node, message: "invocation \(invocation) (Idempotency-Key '\(key)' of \(principal)) reported node_lost"))
                    _ = try? await BlockingIO.run { try audit.append([event]) }
                }
                let answer = inForce.flatMap { try? JSONDecoder().decode(InvocationResult.self, from: Data($0.utf8)) }
                return .taken(digest: row.digest, answer: answer, invocation: invocation)
            } catch let error as DaemonError {
                throw error
            } catch {
                throw DaemonError(.centralUnavailable, "the fleet's idempotency keys (\(keys.database.url)): \(explainFleetError(error)); the request was not run")
            }
        }
    }

    /// The key's request runs as `started` (its result as it starts).
    func bind(principal: String, key: String, started: InvocationResult) async throws(DaemonError) {
        switch self {
        case .local(let registry):
            do {
                try registry.bindIdempotencyKey(principal: principal, key: key, invocation: started.id)
            } catch {
                throw DaemonError(.registryUnavailable, error.description)
            }
        case .fleet(let keys, _):
            do {
                let text = String(decoding: try JSONEncoder().encode(started), as: UTF8.self)
                try await keys.bind(principal: principal, key: key, invocation: started.id, result: text)
            } catch {
                throw DaemonError(.centralUnavailable, "the fleet's idempotency keys (\(keys.database.url)): \(explainFleetError(error)); the request was not run")
            }
        }
    }

    /// The key's request ended (the local registry keeps results already).
    func finish(principal: String, key: String, result: InvocationResult, logger: Logger) async {
        guard case .fleet(let keys, _) = self else { return }
        do {
            let text = String(decoding: try JSONEncoder().encode(result), as: UTF8.self)
            try await keys.finish(principal: principal, key: key, invocation: result.id, result: text)
        } catch {
            // The key stays running: a retry waits (409), and once this node is down it is answered node_lost.
            logger.error("the result of invocation \(result.id) did not reach the fleet's idempotency keys: \(explainFleetError(error))")
        }
    }

    /// A claimed key whose request never ran (refused): free for a retry.
    func release(principal: String, key: String) async {
        switch self {
        case .local(let registry): _ = try? registry.releaseIdempotencyKey(principal: principal, key: key)
        case .fleet(let keys, _): try? await keys.release(principal: principal, key: key)
        }
    }
}
