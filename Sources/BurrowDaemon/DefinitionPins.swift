import BurrowAPI
import BurrowAudit
import BurrowInvocation
import BurrowMCP
import BurrowSystem

/// Pinned MCP tool definitions of registered tools: each version's approved
/// set is kept in the registry (`tool_pins`). The first complete listing
/// one of its sessions (or health checks) sees is approved when none is
/// kept yet; later, what a server lists otherwise is withheld, and the set
/// it offers is kept for an operator to approve
/// (`POST /v1/tools/{id}/definitions`, `burrow tools approve-definitions`).
extension InvocationService {
    func pinnedDefinitions(for record: ToolRecord) -> PinnedDefinitions {
        let id = record.registration.id
        let version = record.registration.metadata.version
        let registry = self.registry
        var approved: ToolPins?
        var unreadable = false
        do {
            if let text = try registry.pins(id, version: version).approved {
                approved = try ToolPins.parse(Array(text.utf8))
            }
        } catch {
            // Pins that cannot be read approve nothing: every tool is withheld, none approved anew.
            unreadable = true
        }
        let audit = front.audit
        return PinnedDefinitions(
            server: id, approved: unreadable ? ToolPins(server: id, tools: [:]) : approved,
            keep: { pins in
                // The first approval only: another session's, kept first, wins.
                do {
                    if let other = try registry.saveFirstApproval(id, version: version, String(decoding: pins.encoded, as: UTF8.self)) {
                        return (try? ToolPins.parse(Array(other.utf8))).map { .superseded($0) } ?? .failed
                    }
                } catch {
                    return .failed
                }
                let event = AuditEvent(
                    tool: id, context: SecurityContext(principal: "burrowd:pins", uid: nil, host: UserDatabase.hostName),
                    details: DefinitionsApprovedDetails(version: version, set: pins.setDigest, previous: nil, tools: pins.tools.keys.sorted(), first: true))
                _ = try? audit.append([event])
                return .kept
            },
            offer: { pins in try? registry.saveOffered(id, version: version, String(decoding: pins.encoded, as: UTF8.self)) })
    }
}
