import BurrowAPI
import BurrowAudit
import BurrowHost
import BurrowJSON
import BurrowSystem
import Hummingbird
import NIOCore

/// `POST /api/v1/security/audit` (and `/v1/security/audit`): a registry's
/// own observations (its authentication decisions, client-side validation,
/// anomalies) into the same hash chain. The reporter role only; at most 16
/// KiB, details an object of bounded shape; 60 a minute per reporter. The
/// event is burrowd's to date and to attribute: the caller is its
/// principal, its `origin` says it was reported (`reported:<principal>`),
/// and it carries no invocation, so it can never pass for one burrowd ran.
extension API {
    static let reportLimit = 16 << 10

    /// `specification`: answered in the specification's form (`/api/v1`).
    func report(_ request: Request, _ context: DaemonContext, specification: Bool = false) async throws -> Response {
        try await require(.reporter, context, request, "reporting an audit event", tool: nil)
        let identity = context.identity
        if identity.local?.uid != 0, let retry = daemon.clientLimits.take("report \(identity.key)", perMinute: 60, burst: 20) {
            let message = "a reporter may submit 60 events a minute; retry in \(retry) s"
            await daemon.denials.record(caller: identity, tool: "burrowd", RefusalDetails(reason: "report_rate_limited", message: message, method: request.method.rawValue, path: request.uri.path))
            throw DaemonError(.rateLimited, message, retryAfter: retry)
        }
        let bytes: [UInt8]
        do {
            bytes = Array(try await request.body.collect(upTo: Self.reportLimit).readableBytesView)
        } catch is NIOTooManyBytesError {
            throw DaemonError(.requestTooLarge, "a reported event is at most \(Self.reportLimit) bytes")
        }
        func invalid(_ message: String) -> DaemonError { DaemonError(.invalidRequest, "the body is not a reportable event: \(message)") }
        guard case .object(let fields)? = try? JSONParser.parse(bytes, limits: JSONLimits(maxDepth: 8, maxKeyBytes: 128, maxStringBytes: 4096, maxItems: 256, maxBytes: Self.reportLimit))
        else { throw invalid("one JSON object of at most 16 KiB, nesting at most 8, strings at most 4 KiB, 256 items") }
        let known: Set = ["timestamp", "tool_id", "event_type", "details", "security_context"]
        if let unknown = fields.keys.filter({ !known.contains($0) }).sorted().first { throw invalid("'\(unknown.prefix(64))' is not a field (expected \(known.sorted().joined(separator: ", ")))") }
        guard case .string(let tool)? = fields["tool_id"], (1...128).contains(tool.utf8.count), tool.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
            throw invalid("tool_id: a tool id (1 to 128 letters, digits, '.', '_', '-')")
        }
        let reportable = ReportedDetails.types.map(\.rawValue)
        guard case .string(let typeName)? = fields["event_type"], let type = AuditEventType(rawValue: typeName), ReportedDetails.types.contains(type) else {
            throw invalid("event_type: one of \(reportable.joined(separator: ", ")) (what a registry observes; never an invocation's events, which only burrowd writes)")
        }
        guard case .object(var details)? = fields["details"] else { throw invalid("details: an object") }
        // What the reporter says of itself and of when stays inside its details: burrowd dates and attributes the event.
        if let reported = fields["security_context"] { details["reportedContext"] = reported }
        if let at = fields["timestamp"] { details["reportedAt"] = at }
        let principal = identity.caller.principal
        var event = AuditEvent(
            tool: tool, context: SecurityContext(principal: principal, uid: identity.caller.uid, host: UserDatabase.hostName),
            details: ReportedDetails(type: type, details: .object(details)))
        event.origin = "reported:" + principal
        let audit = daemon.audit
        let reported = event
        let stored: [AuditEvent]
        do {
            stored = try await BlockingIO.run { try audit.append([reported]) }
        } catch {
            throw DaemonError(.auditUnavailable, "the audit log cannot record the event now: \(error)")
        }
        let answered = stored.first ?? reported
        return specification ? try json(try Self.specificationEvent(answered), status: .created) : try json(answered, status: .created)
    }
}
