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

    package init(store: AuditStore, principal: String, uid: UInt32, plan: LaunchPlan, session: String, profileDigest: String?) {
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
            var extra: [String: JSONValue] = [:]
            if !c.filters.isEmpty { extra["filters"] = .array(c.filters.map { .string($0) }) }
            if let d = c.forwardedDigest { extra["forwardedDigest"] = .string(d) }
            if let t = c.approvedUntil { extra["approvedUntil"] = .integer(t) }
            e = AuditEvent(tool: tool, type: .toolInvoked, context: context(invocation(c)), details: details(c, extra))
        case .callEnded(let c, let ms, let outcome):
            var extra: [String: JSONValue] = ["milliseconds": .integer(Int64(clamping: ms))]
            switch outcome {
            case .completed: break
            case .jsonrpcError(let code):
                extra["jsonrpcError"] = .integer(code)
                extra["reason"] = .string("jsonrpc_error")
            case .toolError: extra["reason"] = .string("tool_error")
            case .cancelled: extra["reason"] = .string("cancelled")
            case .sessionEnded: extra["reason"] = .string("session_ended")
            }
            e = AuditEvent(tool: tool, type: outcome.failed ? .toolFailed : .toolCompleted, context: context(invocation(c)), details: details(c, extra))
        case .callRefused(let c, let reason, let message):
            var extra: [String: JSONValue] = ["reason": .string(reason), "message": .string(message), "denial": .string("mcp")]
            if !c.filters.isEmpty { extra["filters"] = .array(c.filters.map { .string($0) }) }
            e = AuditEvent(tool: tool, type: .permissionDenied, context: context(session), details: details(c, extra))
        case .requestRefused(let method, let id, let reason, let message):
            e = AuditEvent(
                tool: tool, type: .permissionDenied, context: context(session),
                details: .object([
                    "mcp": .string(method), "session": .string(session), "jsonrpcID": .string(id), "reason": .string(reason), "message": .string(message),
                    "denial": .string("mcp"),
                ]))
        case .violation(let direction, let message, let offset, let streamOffset):
            e = AuditEvent(
                tool: tool, type: .securityViolation, context: context(session),
                details: .object([
                    "mcp": .string("framing"), "direction": .string(direction), "side": .string(direction == MCPRelay.fromServerSide ? "server" : "client"),
                    "message": .string(message), "offset": .integer(Int64(offset)), "streamOffset": .integer(Int64(streamOffset)), "session": .string(session),
                ]))
        case .notJSON(let direction, let message, let sample, let streamOffset):
            // Once per session and side: the line was dropped, never forwarded.
            e = AuditEvent(
                tool: tool, type: .permissionDenied, context: context(session),
                details: .object([
                    "mcp": .string("framing"), "direction": .string(direction), "side": .string(direction == MCPRelay.fromServerSide ? "server" : "client"),
                    "reason": .string("not_json"), "message": .string("a line that is not a JSON-RPC message was dropped (\(message)); later ones are counted, not recorded"),
                    "sample": .string(sample), "streamOffset": .integer(Int64(streamOffset)), "session": .string(session), "denial": .string("mcp"),
                ]))
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

    private func details(_ c: MCPRelay.Call, _ extra: [String: JSONValue]) -> JSONValue {
        var d: [String: JSONValue] = [
            "mcp": .string("tools/call"), "session": .string(session), "call": .integer(Int64(c.sequence)), "jsonrpcID": .string(c.id),
            "name": .string(c.tool), "argumentsDigest": .string(c.argumentsDigest),
        ]
        for (k, v) in extra { d[k] = v }
        return .object(d)
    }
}
