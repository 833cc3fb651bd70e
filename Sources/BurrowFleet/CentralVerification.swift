package import BurrowAPI
package import BurrowAudit
import PostgresNIO

extension FleetDatabase {
    /// Checks every node's rows in the copy, a page at a time; `local` (this
    /// node's id and log) is compared where both hold rows.
    package func verify(local: (node: String, audit: AuditStore)?) async throws -> CentralVerification {
        let c = try await connect()
        defer { Task { _ = try? await bounded("closing", seconds: 5) { try await c.close() } } }
        var out: [CentralVerification.Node] = []
        for node in try await nodes(c) {
            var report = CentralVerification.Node(node: node)
            var previous: [UInt8]?
            var after: Int64 = 0
            page: while true {
                let rows = try await records(c, node: node, after: after, limit: 5000)
                guard !rows.isEmpty else { break }
                for row in rows {
                    if report.firstSequence == nil { report.firstSequence = row.sequence }
                    guard row.holds else {
                        report.problem = "row \(row.sequence) does not match its hash: it was edited in the central copy"
                        break page
                    }
                    if let previous {
                        guard row.sequence == after + 1 else {
                            report.problem = "rows \(after + 1)–\(row.sequence - 1) are missing before row \(row.sequence)"
                            break page
                        }
                        guard row.previousHash == previous else {
                            report.problem = "row \(row.sequence) does not link to row \(row.sequence - 1): rows were replaced"
                            break page
                        }
                    }
                    previous = row.hash
                    after = row.sequence
                    report.events += 1
                    report.lastSequence = row.sequence
                }
            }
            if let last = report.lastSequence, let previous { report.head = "\(last):" + previous.map { hex($0) }.joined() }
            if let local, local.node == node, report.problem == nil, let first = report.firstSequence, let last = report.lastSequence {
                report.matchesLocal = try await compare(local.audit, first: first, last: last, central: c, node: node)
            }
            out.append(report)
        }
        return CentralVerification(nodes: out)
    }

    /// Both chains verified, one common row with one hash means they agree up to it.
    private func compare(_ audit: AuditStore, first: Int64, last: Int64, central c: PostgresConnection, node: String) async throws -> Bool? {
        let common = min(last, try audit.head().sequence)
        guard common >= first, let ours = try audit.hash(at: common) else { return nil }
        let theirs = try await hashes(c, node: node, from: common, through: common)[common]
        return theirs == ours
    }
}

private func hex(_ b: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}
