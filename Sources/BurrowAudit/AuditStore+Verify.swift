import BurrowSQLite

/// What `burrow audit verify` found.
package struct AuditVerification: Sendable, Equatable, Codable {
    package struct Problem: Sendable, Equatable, Codable {
        package enum Kind: String, Sendable, Codable {
            /// A row's contents no longer match its hash.
            case edited
            /// Rows are missing between two that remain, or before the first.
            case deleted
            /// A row sits where another was written (its link or position is wrong).
            case reordered
            /// The pruning checkpoints do not chain.
            case checkpoint
            /// An expected head (`--expect`) is not on the chain.
            case anchor
        }
        package var kind: Kind
        /// The first row concerned (nil for checkpoints).
        package var sequence: Int64?
        package var message: String

        package init(kind: Kind, sequence: Int64?, message: String) {
            self.kind = kind
            self.sequence = sequence
            self.message = message
        }
    }

    package var ok: Bool { problem == nil }
    /// Rows checked.
    package var events: Int64
    package var firstSequence: Int64?
    package var lastSequence: Int64?
    /// The hash of the newest row (or of the last cut): record it elsewhere
    /// and pass it to `--expect` later to detect a rewritten or truncated log.
    package var head: String
    package var checkpoints: Int
    /// Rows removed by retention, per the checkpoints.
    package var pruned: Int64
    /// The first broken link; nil when the chain is intact.
    package var problem: Problem?
}

extension AuditStore {
    /// Recomputes the whole chain from the stored bytes and reports the first broken link.
    /// - Parameter expect: a (sequence, hex hash) pair recorded earlier that must still be on the chain.
    package func verify(expect: (sequence: Int64, hash: String)? = nil) throws(AuditError) -> AuditVerification {
        try withReader { db throws(AuditError) in
            var report = AuditVerification(events: 0, head: AuditChain.hex(AuditChain.genesis), checkpoints: 0, pruned: 0)
            func fail(_ kind: AuditVerification.Problem.Kind, _ sequence: Int64?, _ message: String) -> AuditVerification {
                report.problem = .init(kind: kind, sequence: sequence, message: message)
                return report
            }

            // The checkpoints chain among themselves; the last says where the events resume.
            var previous = AuditChain.genesis
            var expectedSequence: Int64 = 1
            var expectedPrevious = AuditChain.genesis
            let cps = try db.prepare("SELECT id, time, through_sequence, through_hash, deleted, previous_hash, hash FROM checkpoints ORDER BY id")
            while try cps.step() {
                let c = AuditChain.Checkpoint(id: cps.int64(0), time: cps.int64(1), throughSequence: cps.int64(2), throughHash: cps.bytes(3), deleted: cps.int64(4), previous: cps.bytes(5))
                guard c.previous == previous, AuditChain.link(c) == cps.bytes(6), c.throughSequence >= expectedSequence - 1 else {
                    return fail(.checkpoint, nil, "checkpoint \(c.id) (cut through row \(c.throughSequence)) was altered or does not follow the previous one")
                }
                previous = cps.bytes(6)
                report.checkpoints += 1
                report.pruned += c.deleted
                expectedSequence = c.throughSequence + 1
                expectedPrevious = c.throughHash
            }
            report.head = AuditChain.hex(expectedPrevious)
            let cut = expectedSequence - 1
            var anchorSeen = expect == nil || expect?.sequence == expectedSequence - 1 && expect?.hash == report.head

            let rows = try db.prepare(
                "SELECT sequence, time, tool, type, principal, uid, invocation, profile_digest, sandbox_level, host, details, previous_hash, hash, origin FROM events ORDER BY sequence")
            while try rows.step() {
                func optional(_ i: Int32) -> [UInt8]? { rows.isNull(i) ? nil : rows.bytes(i) }
                var row = AuditChain.Row(
                    sequence: rows.int64(0), time: rows.int64(1), tool: rows.bytes(2), type: rows.bytes(3), principal: rows.bytes(4),
                    uid: rows.isNull(5) ? nil : rows.int64(5), invocation: optional(6), profileDigest: optional(7), sandboxLevel: optional(8),
                    host: rows.bytes(9), details: rows.bytes(10), origin: optional(13))
                let linkedTo = rows.bytes(11)
                let stored = rows.bytes(12)
                let sequence = row.sequence
                if report.firstSequence == nil { report.firstSequence = sequence }
                if AuditChain.link(previous: linkedTo, row: row) != stored {
                    // Written for another position? Then rows were moved, not edited.
                    for other in [sequence - 1, sequence + 1] {
                        row.sequence = other
                        if AuditChain.link(previous: linkedTo, row: row) == stored {
                            return fail(.reordered, sequence, "row \(sequence) holds the event written as row \(other): rows were reordered")
                        }
                    }
                    return fail(.edited, sequence, "row \(sequence) does not match its hash: it was edited")
                }
                if sequence > expectedSequence {
                    let what = expectedSequence == sequence - 1 ? "row \(expectedSequence) is" : "rows \(expectedSequence)–\(sequence - 1) are"
                    return fail(.deleted, expectedSequence, "\(what) missing before row \(sequence): deleted outside retention")
                }
                if linkedTo != expectedPrevious {
                    return fail(.reordered, sequence, "row \(sequence) does not link to row \(sequence - 1): rows were reordered or replaced")
                }
                expectedPrevious = stored
                expectedSequence = sequence + 1
                report.events += 1
                report.lastSequence = sequence
                if let expect, expect.sequence == sequence { anchorSeen = AuditChain.hex(stored) == expect.hash.lowercased() }
            }
            report.head = AuditChain.hex(expectedPrevious)
            if let expect, !anchorSeen {
                let last = expectedSequence - 1
                return fail(
                    .anchor, expect.sequence,
                    expect.sequence < cut
                        ? "row \(expect.sequence) was pruned (the log resumes after row \(cut)): it can no longer be checked"
                        : expect.sequence > last
                            ? "the chain ends at row \(last), before the expected row \(expect.sequence): rows were removed from the end"
                            : "row \(expect.sequence) does not have the expected hash: the log was rewritten")
            }
            return report
        }
    }
}
