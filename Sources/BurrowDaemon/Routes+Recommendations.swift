import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowProfile
import FoundationEssentials
import Hummingbird

/// Recommendations (`GET /v1/discovery/recommendations?context=…&tool=…`):
/// tools suggested from the context's words (the registry's full-text
/// index), from co-usage (the principals that invoked `tool` in the last 30
/// days, and what else each of them invoked: for callers who may read the
/// audit log, auditors and admins), and from categories shared
/// with `tool`; each with its reasons. Only tools the caller may invoke
/// (the invoker role, and every capability rule's conditions for it now),
/// enabled ones, never `tool` itself; the same data always ranks the same.
extension API {
    /// `specification`: statistics in the specification's form (`/api/v1`).
    func recommendations(_ request: Request, _ context: DaemonContext, specification: Bool = false) async throws -> Response {
        try await requireAny(context, request, "asking for recommendations")
        let q = request.uri.queryParameters
        let contextText = q.get("context") ?? ""
        let anchor = q.get("tool")
        guard !contextText.isEmpty || anchor != nil else {
            throw DaemonError(.invalidParameter, "context, tool: give the words of what the caller is doing, a tool it uses, or both")
        }
        var limit = 10
        if let text = q.get("limit") {
            guard let n = Int(text), (1...50).contains(n) else { throw DaemonError(.invalidParameter, "limit: expected 1 to 50") }
            limit = n
        }
        // Only what this caller may invoke.
        guard context.roles.contains(.invoker) else { return try json([RankedTool]()) }
        let candidates = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.list(category: nil, status: nil) }
            .map(daemon.health.annotate)
            // A tool whose health checks fail is no suggestion.
            .filter { ![.disabled, .unavailable].contains($0.status) && $0.registration.id != anchor && mayInvoke($0.registration.id, context) }
        var scores: [String: (score: Int, reasons: [String])] = [:]
        func add(_ id: String, _ points: Int, _ reason: String) {
            scores[id, default: (0, [])].score += points
            scores[id, default: (0, [])].reasons.append(reason)
        }
        let ids = Set(candidates.map(\.registration.id))
        if !contextText.isEmpty {
            let found = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.search(contextText, limit: 50) }
            for record in found where ids.contains(record.registration.id) { add(record.registration.id, 3, "its name, description or categories match '\(contextText.prefix(64))'") }
        }
        if let anchor {
            let anchorRecord = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.versions(anchor) }.first
            let shared = Set(anchorRecord?.registration.metadata.categories ?? [])
            for record in candidates {
                for category in record.registration.metadata.categories.filter(shared.contains).sorted() { add(record.registration.id, 2, "shares the category '\(category)' with \(anchor)") }
            }
            // Co-usage tells what other principals did: only for those who may read the audit log.
            let audit = daemon.audit
            let since = AuditClock.now() - 30 * 86_400_000_000
            let coUsed = mayReadAudit(context) ? (try? await BlockingIO.run { try audit.coUsage(of: anchor, since: since) }) ?? [:] : [:]
            for (id, principals) in coUsed.sorted(by: { $0.key < $1.key }) where ids.contains(id) {
                add(id, min(principals, 5), "invoked by \(principals) of the principals that invoked \(anchor) in the last 30 days")
            }
        }
        let byID = Dictionary(candidates.map { ($0.registration.id, $0) }, uniquingKeysWith: { a, _ in a })
        let ranked = RankedTool.ranked(
            scores.map {
                RankedTool(tool: $0.key, version: byID[$0.key]?.registration.metadata.version ?? "", score: $0.value.score, reasons: $0.value.reasons, status: byID[$0.key]?.status)
            })
        let chosen = Array(ranked.prefix(limit))
        return specification ? try json(JSON.array(chosen.map(SpecificationForm.json))) : try json(chosen)
    }

    /// Whether the caller meets the conditions of `tool`'s capability rules now (nothing is recorded or counted).
    private func mayInvoke(_ tool: String, _ context: DaemonContext) -> Bool {
        let identity = context.identity
        return [tool, "*"].allSatisfy { scope in
            guard let rules = daemon.policy.capabilities[scope] else { return true }
            return rules.refusal(method: identity.remote?.method?.rawValue ?? "local", address: identity.remote?.address, now: Date(), zone: Self.zone) == nil
        }
    }
}
