import BurrowAPI
import BurrowAudit
import BurrowHost
import BurrowJSON
import BurrowMCP
import BurrowSystem
import Hummingbird

/// A registered MCP server's pinned tool definitions (`DefinitionPins`):
/// `GET /v1/tools/{id}/definitions` shows those approved, those the server
/// offered instead and how they differ; `POST` approves the offered set,
/// named by its digest (so what was reviewed is what is approved).
extension API {
    private func definitionsState(_ id: String, version: String?) throws(DaemonError) -> (String, ToolPins?, ToolPins?) {
        let versions = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.versions(id) }
        guard let record = version.map({ v in versions.first { $0.registration.metadata.version == v } }) ?? versions.first else {
            throw DaemonError(.notFound, "no tool \(id)\(version.map { " version \($0)" } ?? "") is registered")
        }
        let v = record.registration.metadata.version
        let stored = try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.pins(id, version: v) }
        func parse(_ text: String?) throws(DaemonError) -> ToolPins? {
            guard let text else { return nil }
            do {
                return try ToolPins.parse(Array(text.utf8))
            } catch {
                throw DaemonError(.internal, "the pinned definitions of \(id) \(v) cannot be read: \(error)")
            }
        }
        return (v, try parse(stored.approved), try parse(stored.offered))
    }

    func definitions(_ request: Request, _ context: DaemonContext) async throws -> Response {
        let id = try Self.toolID(context)
        try await require(.admin, context, request, "reading pinned definitions", tool: id)
        let (version, approved, offered) = try definitionsState(id, version: request.uri.queryParameters.get("version"))
        var differences: [JSON] = []
        if let offered {
            let base = approved ?? ToolPins(server: id, tools: [:])
            for name in offered.tools.keys.sorted() {
                guard let tool = offered.tools[name], let d = base.difference(tool) else { continue }
                differences.append(.object(["name": .string(d.name), "change": .string(d.change), "fields": .strings(d.fields), "diff": .strings(d.diff)]))
            }
        }
        return try json(
            ToolDefinitions(id: id, version: version, approved: approved?.json, offered: offered?.json, offeredSet: offered?.setDigest, differences: differences))
    }

    func approveDefinitions(_ request: Request, _ context: DaemonContext) async throws -> Response {
        let id = try Self.toolID(context)
        try await require(.admin, context, request, "approving tool definitions", tool: id)
        let body = try await decode(DefinitionsApproval.self, request, context, tool: id)
        try await daemon.registryWrites.lock()
        defer { daemon.registryWrites.unlock() }
        let (version, approved, offered) = try definitionsState(id, version: body.version)
        guard let offered else { throw DaemonError(.notFound, "\(id) \(version) offers no definitions other than those approved") }
        guard offered.setDigest == body.approve else {
            throw DaemonError(.invalidRequest, "the definitions \(id) offers are now \(offered.setDigest), not \(body.approve): review them again (GET /v1/tools/\(id)/definitions)")
        }
        try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.saveApproved(id, version: version, String(decoding: offered.encoded, as: UTF8.self)) }
        let undo = { () throws(RegistryStore.Failure) in
            try daemon.registry.restorePins(
                id, version: version, approved: approved.map { String(decoding: $0.encoded, as: UTF8.self) }, offered: String(decoding: offered.encoded, as: UTF8.self))
        }
        do {
            try await daemon.registryWrites.publish(id, version: version, pinsOnly: true)
        } catch {
            try? undo()
            throw error
        }
        let identity = context.identity
        let event = AuditEvent(
            tool: id, context: SecurityContext(principal: identity.caller.principal, uid: identity.caller.uid, host: UserDatabase.hostName),
            details: DefinitionsApprovedDetails(version: version, set: offered.setDigest, previous: approved?.setDigest, tools: offered.tools.keys.sorted()))
        do {
            let audit = daemon.audit
            _ = try await BlockingIO.run { try audit.append([event]) }
        } catch {
            // Fail closed: unrecorded, the approval is undone (the row put back as it was).
            do {
                try undo()
            } catch let undo {
                throw DaemonError(.auditUnavailable, "the audit log cannot record the approval (\(error)), and undoing it failed: \(undo)")
            }
            throw DaemonError(.auditUnavailable, "the audit log cannot record the approval, so it was undone: \(error)")
        }
        do {
            try await daemon.registryWrites.commit()
        } catch {
            try? undo()
            throw error
        }
        return try json(DefinitionsApproval(version: version, approve: offered.setDigest))
    }
}
