import BurrowSQLite

/// What `burrow audit prune` removed.
package struct AuditPruning: Sendable, Equatable, Codable {
    /// Events deleted (0 when nothing was old enough).
    package var deleted: Int64
    /// The newest deleted row; the chain now resumes after it.
    package var throughSequence: Int64?
    /// The checkpoint recording the cut.
    package var checkpoint: Int64?
    /// Events old enough to go that were kept: the central copy does not hold them yet.
    package var heldBack: Int64 = 0

    package init(deleted: Int64, throughSequence: Int64? = nil, checkpoint: Int64? = nil, heldBack: Int64 = 0) {
        self.deleted = deleted
        self.throughSequence = throughSequence
        self.checkpoint = checkpoint
        self.heldBack = heldBack
    }
}

extension AuditStore {
    /// Deletes every event older than `cutoff` (microseconds since the epoch)
    /// and the events before them, and records the cut as a checkpoint: the
    /// hash of the last deleted row, chained to the previous checkpoint, so
    /// `verify` still starts from a known link.
    /// - Parameter shippedTo: a central copy the log is shipped to: rows it
    ///   does not hold yet are kept, whatever their age (nothing is lost
    ///   through an outage longer than the retention).
    package func prune(olderThan cutoff: Int64, now: Int64 = AuditClock.now(), shippedTo target: String? = nil) throws(AuditError) -> AuditPruning {
        guard let db = writerConnection else { throw .file("\(path) is open read-only") }
        var heldBack: Int64 = 0
        return try withReader { _ throws(AuditError) in
            let result = try db.transaction { () throws(AuditError) -> AuditPruning in
                let newest = try db.prepare("SELECT max(sequence) FROM events WHERE time < ?")
                newest.bind(1, cutoff)
                guard try newest.step(), !newest.isNull(0) else { return AuditPruning(deleted: 0) }
                var through = newest.int64(0)
                if let target {
                    let shipped = try db.prepare("SELECT through_sequence FROM shipped WHERE target = ?")
                    shipped.bind(1, target)
                    let held = try shipped.step() ? shipped.int64(0) : 0
                    if held < through {
                        let kept = try db.prepare("SELECT count(*) FROM events WHERE sequence > ? AND sequence <= ?")
                        kept.bind(1, held)
                        kept.bind(2, through)
                        _ = try kept.step()
                        heldBack = kept.int64(0)
                        through = held
                    }
                    let any = try db.prepare("SELECT 1 FROM events WHERE sequence <= ? LIMIT 1")
                    any.bind(1, through)
                    guard try any.step() else { return AuditPruning(deleted: 0, heldBack: heldBack) }
                }
                let row = try db.prepare("SELECT hash FROM events WHERE sequence = ?")
                row.bind(1, through)
                try row.step()
                let throughHash = row.bytes(0)
                let count = try db.prepare("SELECT count(*) FROM events WHERE sequence <= ?")
                count.bind(1, through)
                try count.step()
                let deleted = count.int64(0)

                let last = try db.prepare("SELECT id, hash FROM checkpoints ORDER BY id DESC LIMIT 1")
                let (id, previous) = try last.step() ? (last.int64(0) + 1, last.bytes(1)) : (1, AuditChain.genesis)
                let checkpoint = AuditChain.Checkpoint(id: id, time: now, throughSequence: through, throughHash: throughHash, deleted: deleted, previous: previous)
                let insert = try db.prepare("INSERT INTO checkpoints (id, time, through_sequence, through_hash, deleted, previous_hash, hash) VALUES (?,?,?,?,?,?,?)")
                insert.bind(1, id)
                insert.bind(2, now)
                insert.bind(3, through)
                insert.bind(4, throughHash)
                insert.bind(5, deleted)
                insert.bind(6, previous)
                insert.bind(7, AuditChain.link(checkpoint))
                try insert.step()
                let delete = try db.prepare("DELETE FROM events WHERE sequence <= ?")
                delete.bind(1, through)
                try delete.step()
                return AuditPruning(deleted: deleted, throughSequence: through, checkpoint: id, heldBack: heldBack)
            }
            if result.deleted > 0 {
                // Give the space back and leave no deleted rows in the WAL.
                try? db.execute("PRAGMA incremental_vacuum")
                try? db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            }
            return result
        }
    }
}
