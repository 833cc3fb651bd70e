package import BurrowAudit
import BurrowSystem
import Logging
import PostgresNIO
import Synchronization

/// Ships every event of the local audit log to the central copy, in
/// order, in batches: the local log stays the source of truth (an event
/// is durable there before it is shipped, and nothing waits for
/// PostgreSQL); the central copy catches up after an outage, resuming from
/// what it holds. Each batch goes in one statement, idempotent by (node,
/// sequence); a row already there must have the local row's hash, else the
/// two logs have diverged (a node restored from a backup, or two nodes with
/// one id) and shipping stops with an AnomalousActivity event rather than
/// mix two chains. The local `shipped` mark follows each durable batch, and
/// pruning keeps what it has not reached.
package final class AuditShipper: Sendable {
    /// The local log's name for the central copy (`AuditStore.markShipped`).
    package static let target = AuditStore.centralCopy
    package static let principal = "burrowd:shipping"
    /// A statement with no answer within this long: the connection is given up and made again.
    static let timeout = 20

    package let central: FleetDatabase
    /// Writes the `shipped` mark and the alerts.
    let audit: AuditStore
    /// Reads the log on a read-only connection of its own: the idle poll
    /// (every 50 ms) and the lag tick never take, or wait for, the writer's
    /// commit lock that every invocation's audit append goes through.
    let reader: AuditStore
    package let node: String
    let maxLagMicroseconds: Int64
    let batch: Int

    /// What the metrics show.
    package struct State: Sendable, Equatable {
        /// The newest sequence the central copy holds (0: none yet).
        package var shipped: Int64 = 0
        /// The local log's newest sequence when last looked at.
        package var head: Int64 = 0
        /// The oldest event not yet shipped: its age in microseconds (0: none waiting).
        package var lagMicroseconds: Int64 = 0
        package var connected = false
        /// Why shipping stopped for good (diverged logs); nil while it goes on.
        package var stopped: String?
        package var shippedEvents: Int64 = 0
    }

    private let state = Mutex(State())
    package var current: State { state.withLock { $0 } }
    /// An alert raised for the lag now going on (one per episode).
    private let lagAlerted = Mutex(false)

    /// - Parameter reader: the same log opened read-only (nil: `audit` reads too, as a benchmark may).
    package init(central: FleetDatabase, audit: AuditStore, reader: AuditStore? = nil, node: String, maxLagMicroseconds: Int64, batch: Int = 1000) {
        self.central = central
        self.audit = audit
        self.reader = reader ?? audit
        self.node = node
        self.maxLagMicroseconds = maxLagMicroseconds
        self.batch = batch
    }

    /// Ships until cancelled, reconnecting with a growing pause (0.5 s to 30 s) after a failure.
    package func run() async {
        var pause: Duration = .milliseconds(500)
        while !Task.isCancelled {
            do {
                let connection = try await central.connect()
                state.withLock { $0.connected = true }
                central.logger.info("audit shipping: connected to \(central.url) as node \(node)")
                pause = .milliseconds(500)
                defer { state.withLock { $0.connected = false } }
                // Closing a connection whose server vanished may wait as long: bounded too.
                let close = { _ = try? await bounded("closing", seconds: 5) { try await connection.close() } }
                do {
                    try await ship(on: connection)
                } catch {
                    await close()
                    throw error
                }
                await close()
                if current.stopped != nil { return }
            } catch {
                if Task.isCancelled { return }
                let reason = explainFleetError(error)
                central.logger.warning("audit shipping to \(central.url): \(reason); retrying in \(pause)")
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(30))
            }
        }
    }

    /// Resumes from what the central copy holds, then ships while there is anything to ship.
    private func ship(on c: PostgresConnection) async throws {
        var shipped: Int64
        let local = try reader.head()
        let node = node
        let central = central
        if let (sequence, hash) = try await bounded("reading the central copy's head", seconds: Self.timeout, { try await central.head(c, node: node) }) {
            // The central copy must be this chain's: the row it ends on is ours.
            if sequence > local.sequence {
                return try await stop(
                    "the central copy holds node \(node)'s events through row \(sequence), and this log ends at row \(local.sequence): this log was restored or replaced, or another node uses the id \(node)"
                )
            }
            if let ours = try reader.hash(at: sequence), ours != hash {
                return try await stop("row \(sequence) of node \(node) differs between this log and the central copy: the two logs have diverged")
            }
            shipped = sequence
        } else {
            shipped = 0
        }
        try audit.markShipped(to: Self.target, through: shipped)
        state.withLock { $0.shipped = shipped }
        // Rows after what the copy holds that this log no longer has: pruned before they were shipped
        // (shipping was off meanwhile). Said now; the copy's chain shows the gap too.
        let next = try reader.records(after: shipped, limit: 1).first?.sequence ?? (local.sequence + 1)
        if shipped > 0 && next > shipped + 1 {
            alert(reason: "central_gap", message: "rows \(shipped + 1)–\(next - 1) of node \(node) were pruned before they reached the central copy")
        }
        while !Task.isCancelled {
            let records = try reader.records(after: shipped, limit: batch)
            // A server that went away closes the connection: reconnect rather than send into it.
            guard !c.isClosed else { throw FleetError("the server closed the connection") }
            guard let last = records.last else {
                // Nothing new: look again soon (a query of the local log's index; the lag's floor).
                try await Task.sleep(for: .milliseconds(50))
                continue
            }
            let present = try await bounded("shipping \(records.count) events", seconds: Self.timeout) { try await central.insert(c, node: node, records) }
            if !present.isEmpty {
                // Shipped before (a crash between the insert and the mark): the same rows, or a divergence.
                let (first, last) = (present.min() ?? 0, present.max() ?? 0)
                let theirs = try await bounded("reading the central copy", seconds: Self.timeout) { try await central.hashes(c, node: node, from: first, through: last) }
                for record in records where present.contains(record.sequence) && theirs[record.sequence] != record.hash {
                    return try await stop("row \(record.sequence) of node \(node) differs between this log and the central copy: the two logs have diverged")
                }
            }
            try audit.markShipped(to: Self.target, through: last.sequence)
            shipped = last.sequence
            state.withLock {
                $0.shipped = shipped
                $0.shippedEvents += Int64(records.count)
            }
        }
    }

    private func stop(_ message: String) async throws {
        central.logger.error("audit shipping stopped: \(message)")
        state.withLock { $0.stopped = message }
        alert(reason: "central_divergence", message: message + "; shipping stopped (docs/operations.md, A fleet: Divergence)")
    }

    /// Measures the lag from the local log (the oldest event past the
    /// `shipped` mark), whatever the connection is doing, and raises one
    /// AnomalousActivity per episode beyond the bound; the log says when it
    /// ends. burrowd calls it every second.
    package func tick() {
        let shipped = (try? reader.shipped(to: Self.target)) ?? current.shipped
        let oldest = (try? reader.records(after: shipped, limit: 1))?.first
        let head = (try? reader.head().sequence) ?? current.head
        let lag = oldest.map { max(0, AuditClock.now() - $0.time) } ?? 0
        state.withLock {
            $0.lagMicroseconds = lag
            $0.head = head
        }
        let over = lag > maxLagMicroseconds
        let wasOver = lagAlerted.withLock { flag in
            defer { flag = over }
            return flag
        }
        if over && !wasOver {
            alert(
                reason: "central_lag",
                message: "the central copy is \(lag / 1_000_000) s behind node \(node)'s log (rows after \(shipped) not shipped; [audit] central_max_lag is \(maxLagMicroseconds / 1_000_000) s)"
            )
        } else if wasOver && !over {
            central.logger.info("audit shipping: the central copy has caught up with node \(node)")
        }
    }

    private func alert(reason: String, message: String) {
        central.logger.warning("audit shipping: \(message)")
        let event = AuditEvent(
            tool: "burrowd", context: SecurityContext(principal: Self.principal, uid: nil, host: UserDatabase.hostName),
            details: CentralAuditDetails(reason: reason, node: node, message: message))
        do {
            try audit.append([event])
        } catch {
            central.logger.error("audit shipping: \(message) was not recorded: \(error)")
        }
    }
}
