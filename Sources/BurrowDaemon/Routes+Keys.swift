import BurrowAPI
import BurrowAudit
import BurrowHost
import BurrowProfile
import BurrowSystem
import Hummingbird

/// /v1/keys: API keys for remote callers, managed by local admins only (a
/// remote caller, whatever its roles, cannot make or revoke a key, so a
/// stolen key cannot make itself a successor).
extension API {
    private func requireLocalAdmin(_ request: Request, _ context: DaemonContext, _ what: String) async throws {
        try await require(.admin, context, request, what, tool: nil)
        guard context.identity.local != nil else {
            let message = "\(what) is done on the host (burrow keys), not over the network"
            await daemon.denials.record(
                caller: context.identity, tool: "burrowd", RefusalDetails(reason: "remote_key_management", message: message, method: request.method.rawValue, path: request.uri.path))
            throw DaemonError(.forbidden, message)
        }
    }

    private func record(_ key: APIKeyInfo, revoked: Bool, _ context: DaemonContext) async throws {
        let caller = context.identity.caller
        let event = AuditEvent(
            tool: "burrowd", context: SecurityContext(principal: caller.principal, uid: caller.uid, host: UserDatabase.hostName),
            details: CredentialDetails(revoked: revoked, id: key.id, name: key.name, roles: key.roles, expiresAt: key.expiresAt))
        let audit = daemon.audit
        _ = try await BlockingIO.run { try audit.append([event]) }
    }

    /// POST /v1/keys: a new key, its secret in the answer (and nowhere else).
    func createKey(_ request: Request, _ context: DaemonContext) async throws -> Response {
        try await requireLocalAdmin(request, context, "creating an API key")
        let body = try await decode(APIKeyRequest.self, request, context, tool: nil)
        guard (1...128).contains(body.name.count), !body.name.unicodeScalars.contains(where: AccessMiddleware.isControl) else {
            throw DaemonError(.invalidRequest, "name: 1 to 128 characters, no control characters")
        }
        var roles: [Role] = []
        for name in body.roles {
            guard let role = Role(rawValue: name) else {
                throw DaemonError(.invalidRequest, "roles: '\(name.prefix(32))' is not a role (admin, auditor, invoker, reporter, runner)")
            }
            guard role != .runner else { throw DaemonError(.invalidRequest, "roles: runner is the session socket's (local users'), never a key's") }
            guard context.roles.contains(role) else { throw DaemonError(.invalidRequest, "roles: a key carries only roles its creator holds (not \(name))") }
            if !roles.contains(role) { roles.append(role) }
        }
        guard !roles.isEmpty else { throw DaemonError(.invalidRequest, "roles: name at least one (admin, auditor, invoker or reporter)") }
        let longest = Int(daemon.policy.auth.maxKeyLifetime.milliseconds / 1000)
        guard body.expiresInSeconds > 0, body.expiresInSeconds <= longest else {
            throw DaemonError(.invalidRequest, "expiresInSeconds: 1 to \(longest) ([auth] max_key_lifetime, \(daemon.policy.auth.maxKeyLifetime))")
        }
        let created: APIKeyCreated
        do {
            created = try daemon.keys.create(
                name: body.name, roles: roles.map(\.rawValue).sorted(), lifetimeSeconds: body.expiresInSeconds, createdBy: context.identity.caller.principal)
        } catch {
            throw DaemonError(.registryUnavailable, "the key was not stored: \(error)")
        }
        do {
            try await record(created.key, revoked: false, context)
        } catch {
            // Fail closed: a key the audit log does not show is not left usable.
            _ = try? daemon.registry.deleteKey(created.key.id)
            throw DaemonError(.auditUnavailable, "the audit log cannot record the new key, so it was not kept: \(error)")
        }
        return try json(created, status: .created)
    }

    /// GET /v1/keys: every key, newest first; never a secret.
    func listKeys(_ request: Request, _ context: DaemonContext) async throws -> Response {
        try await requireLocalAdmin(request, context, "listing API keys")
        return try json(try registryCall { () throws(RegistryStore.Failure) in try daemon.registry.keys().map(\.info) })
    }

    /// DELETE /v1/keys/{kid}: revoked at once (kept, so the audit log's
    /// `key:<id>` rows still name a known key).
    func revokeKey(_ request: Request, _ context: DaemonContext) async throws -> Response {
        try await requireLocalAdmin(request, context, "revoking an API key")
        let id = context.parameters.get("kid") ?? ""
        guard APIKeyToken.isID(id) else {
            throw DaemonError(.invalidID, "the key id in the path is not one (16 lowercase hex digits, as burrow keys list shows)")
        }
        let now = AuditClock.now()
        guard let key = try registryCall({ () throws(RegistryStore.Failure) in try daemon.registry.revokeKey(id, at: now) }) else {
            throw DaemonError(.notFound, "no API key \(id)")
        }
        // Revoked before: already recorded.
        guard key.revokedAt == now else { return try json(key.info) }
        do {
            try await record(key.info, revoked: true, context)
        } catch {
            // The revocation stands: it is the safe side.
            throw DaemonError(.auditUnavailable, "the key is revoked, but the audit log cannot record it: \(error)")
        }
        return try json(key.info)
    }
}
