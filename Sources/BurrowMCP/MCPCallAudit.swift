package import BurrowAudit
package import BurrowPolicy
import BurrowProfile
import BurrowSystem
import Dispatch
import Synchronization

/// Each `tools/call` as its own audit invocation, `<session>/<n>`.
package final class MCPCallAudit: Sendable {
    let store: AuditStore
    let tool: String
    let session: String
    let context: @Sendable (String?) -> SecurityContext
    private let notes = Mutex<[String]>([])
    private let queue = DispatchQueue(label: "burrow.mcp.audit")

    package init(store: AuditStore, principal: String, uid: UInt32?, plan: LaunchPlan, session: String, profileDigest: String?) {
        self.store = store
        self.tool = plan.tool.id
        self.session = session
        let level = plan.sandboxLevel.rawValue
        self.context = { invocation in
            SecurityContext(principal: principal, uid: uid, invocationID: invocation, profileDigest: profileDigest, sandboxLevel: level, host: UserDatabase.hostName)
        }
    }

    package var problems: [String] { notes.withLock { $0 } }

    /// The audit invocation id of a call.
    package func invocation(_ c: MCPRelay.Call) -> String { "\(session)/\(c.sequence)" }

    package func record(_ event: MCPRelay.Event) {
        let e: AuditEvent
        switch event {
        case .callStarted(let c):
            e = AuditEvent(tool: tool, context: context(invocation(c)), details: MCPCallDetails(call: identity(c), forwardedDigest: c.forwardedDigest, approvedUntil: c.approvedUntil))
        case .callEnded(let c, let ms, let outcome):
            var reason: String?
            var code: Int64?
            switch outcome {
            case .completed: break
            case .jsonrpcError(let error):
                reason = "jsonrpc_error"
                code = error
            case .toolError: reason = "tool_error"
            case .cancelled: reason = "cancelled"
            case .sessionEnded: reason = "session_ended"
            }
            e = AuditEvent(tool: tool, context: context(invocation(c)), details: MCPCallEndedDetails(call: identity(c), milliseconds: ms, reason: reason, jsonrpcError: code))
        case .callRefused(let c, let reason, let message):
            e = AuditEvent(tool: tool, context: context(session), details: MCPCallRefusedDetails(call: identity(c), reason: reason, message: message))
        case .requestRefused(let method, let id, let reason, let message):
            e = AuditEvent(tool: tool, context: context(session), details: MCPRequestRefusedDetails(method: method, session: session, jsonrpcID: id, reason: reason, message: message))
        case .violation(let direction, let message, let offset, let streamOffset):
            e = AuditEvent(
                tool: tool, context: context(session), details: MCPFramingViolationDetails(origin: origin(direction), message: message, offset: offset, streamOffset: streamOffset))
        case .notJSON(let direction, let message, let sample, let streamOffset, let unjudged):
            // Once per session and side (and apart, for messages the relay could not judge): dropped, never forwarded.
            e = AuditEvent(
                tool: tool, context: context(session),
                details: MCPNotJSONDetails(origin: origin(direction), message: message, sample: sample, streamOffset: streamOffset, unjudged: unjudged))
        case .definitionWithheld(let d):
            e = AuditEvent(tool: tool, context: context(session), details: MCPDefinitionDetails(session: session, name: d.name, change: d.change, diff: d.diff, digest: d.digest))
        case .invisibleCharacters(let location, let count):
            e = AuditEvent(tool: tool, context: context(session), details: MCPInvisibleCharactersDetails(session: session, location: location, count: count))
        }
        // Appended off the relay's threads, in order: a call never waits on SQLite.
        queue.async { [self] in
            do {
                try store.append([e])
            } catch {
                notes.withLock { $0.append("audit: \(e.type.rawValue) for the MCP session not recorded: \(error)") }
            }
        }
    }

    /// Waits until every event recorded so far is in the audit log.
    package func flush() { queue.sync {} }

    private func identity(_ c: MCPRelay.Call) -> MCPCallIdentity {
        MCPCallIdentity(session: session, call: c.sequence, jsonrpcID: c.id, name: c.tool, argumentsDigest: c.argumentsDigest, filters: c.filters)
    }

    private func origin(_ direction: String) -> MCPLineOrigin {
        MCPLineOrigin(direction: direction, side: direction == MCPRelay.fromServerSide ? "server" : "client", session: session)
    }
}
