import BurrowAPI
import BurrowAudit
import BurrowProfile
import FoundationEssentials
// Named time zones (Europe/Berlin) come from the tz database through ICU.
import FoundationInternationalization
import Hummingbird

extension API {
    /// Which of a tool's capability rules a request meets.
    struct CapabilityCheck: OptionSet, Sendable {
        let rawValue: Int
        /// How the caller authenticated, where it comes from, the time.
        static let conditions = CapabilityCheck(rawValue: 1)
        /// A token of the caller's `requests_per_minute` on the tool: one
        /// per call (an invocation, a session's start, a `tools/call`).
        static let call = CapabilityCheck(rawValue: 2)
        static let all: CapabilityCheck = [.conditions, .call]
    }

    /// `[capabilities."<tool>"]` and `[capabilities."*"]`: how the caller
    /// authenticated, where a remote one comes from, the time, and its rate
    /// on this tool (root on the socket has no rate). A refusal names the
    /// rule (403, or 429 with Retry-After), audited as `capability_rule`.
    func checkCapabilities(_ tool: String, _ context: DaemonContext, _ request: Request, _ check: CapabilityCheck = .all) async throws(DaemonError) {
        let identity = context.identity
        for scope in [tool, "*"] {
            guard let rules = daemon.policy.capabilities[scope] else { continue }
            let name = "capabilities.\"\(scope)\""
            func refuse(_ rule: String, _ message: String, code: ErrorCode = .forbidden, retryAfter: Int? = nil) async -> DaemonError {
                var details = RefusalDetails(reason: "capability_rule", message: message, method: request.method.rawValue, path: request.uri.path)
                details.rule = "\(name).\(rule)"
                await daemon.denials.record(caller: identity, tool: tool, details)
                return DaemonError(code, "calling \(tool): \(message) ([\(name)] \(rule))", retryAfter: retryAfter)
            }
            if check.contains(.conditions),
                let (rule, message) = rules.refusal(method: identity.remote?.method?.rawValue ?? "local", address: identity.remote?.address, now: Date(), zone: Self.zone)
            {
                throw await refuse(rule, message)
            }
            if check.contains(.call), let perMinute = rules.requestsPerMinute, identity.local?.uid != 0,
                let retry = daemon.clientLimits.take("capability \(scope) \(tool) \(identity.key)", perMinute: perMinute, burst: max(1, perMinute / 6))
            {
                throw await refuse("requests_per_minute", "this caller may call it \(perMinute) times a minute; retry in \(retry) s", code: .rateLimited, retryAfter: retry)
            }
        }
    }

    /// A time zone by its IANA name.
    @Sendable static func zone(_ name: String) -> TimeZone? { TimeZone(identifier: name) }

    /// Zones of `[capabilities]` time windows this burrowd cannot resolve
    /// (it refuses to start: a window it cannot read would refuse every call).
    static func unresolvedZones(_ policy: HostPolicy) -> [String] {
        Set(policy.capabilities.values.flatMap { $0.timeWindows ?? [] }.map(\.zone)).filter { zone($0) == nil }.sorted()
    }
}
