/// `burrow audit verify --central`: each node's chain in the central copy
/// checked as `burrow audit verify` checks a local log (every row against
/// its hash, each link to the row before, no sequence missing), and this
/// node's against its own log where the two overlap.
package struct CentralVerification: Sendable, Codable, Equatable {
    package struct Node: Sendable, Codable, Equatable {
        package var node: String
        package var events: Int64 = 0
        /// The first and last rows the copy holds (the copy starts where shipping started).
        package var firstSequence: Int64?
        package var lastSequence: Int64?
        /// The last row's hash (hex): `SEQ:HASH` as `burrow audit verify --expect` takes it.
        package var head: String?
        /// What is wrong; nil: the chain holds.
        package var problem: String?
        /// This node only: whether the local log agrees with the copy where both have rows (nil: no overlap to compare).
        package var matchesLocal: Bool?

        package var ok: Bool { problem == nil && matchesLocal != false }

        package init(node: String) { self.node = node }
    }

    package var nodes: [Node]
    package var ok: Bool { nodes.allSatisfy(\.ok) }

    package init(nodes: [Node]) { self.nodes = nodes }
}

/// A node of the fleet as its database knows it (`GET /v1/nodes`): up
/// while its last heartbeat is within three of its intervals by
/// PostgreSQL's clock, down after that.
package struct FleetNode: Sendable, Codable, Equatable {
    package var id: String
    package var version: String
    package var host: String
    /// The kernel, Landlock ABI and cgroup backend it runs on, in one line.
    package var facts: String
    package var startedAt: String
    package var heartbeatAt: String
    package var heartbeatAgeMilliseconds: Int64
    /// `up` or `down`.
    package var status: String
    /// Its audit log's newest row, and how far the central copy holds it, at the last heartbeat.
    package var auditHead: Int64
    package var auditShipped: Int64

    package init(
        id: String, version: String, host: String, facts: String, startedAt: String, heartbeatAt: String, heartbeatAgeMilliseconds: Int64, status: String, auditHead: Int64,
        auditShipped: Int64
    ) {
        self.id = id
        self.version = version
        self.host = host
        self.facts = facts
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.heartbeatAgeMilliseconds = heartbeatAgeMilliseconds
        self.status = status
        self.auditHead = auditHead
        self.auditShipped = auditShipped
    }
}
