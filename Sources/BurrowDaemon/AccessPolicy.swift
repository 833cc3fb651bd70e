package import BurrowProfile
import BurrowSystem

#if canImport(Glibc)
    import Glibc
#endif

/// What a caller may do.
package enum Role: String, Sendable, CaseIterable, Codable {
    /// Register, update and delete tools.
    case admin
    /// Invoke registered tools.
    case invoker
    /// Run its own profiles through the session socket (an unprivileged `burrow run`, `mcp`, `dry-run`).
    case runner
    /// Read the audit log.
    case auditor
    /// Report events into the audit log (`POST /api/v1/security/audit`): a registry's own observations.
    case reporter
}

/// The host policy's `[daemon]` roles, resolved to ids once at start-up.
/// Default deny: a caller holds only the roles that name it (root holds all).
package struct AccessPolicy: Sendable {
    struct Grants: Sendable {
        var uids: Set<UInt32> = []
        var gids: Set<UInt32> = []
        /// Remote principals (`cert:NAME`), as written.
        var remote: Set<String> = []
    }

    private var grants: [Role: Grants] = [:]
    /// Principals that named no existing user or group: they grant nothing.
    package private(set) var unresolved: [String] = []

    package init(_ daemon: HostPolicy.Daemon) {
        for (role, principals) in [
            (Role.admin, daemon.admins), (.invoker, daemon.invokers), (.runner, daemon.runners), (.auditor, daemon.auditors), (.reporter, daemon.reporters),
        ] {
            var g = Grants()
            for p in principals {
                switch p {
                case .uid(let n): g.uids.insert(n)
                case .gid(let n): g.gids.insert(n)
                case .user(let name):
                    if let uid = UserDatabase.userID(name) { g.uids.insert(uid) } else { unresolved.append("\(role.rawValue): \(p)") }
                case .group(let name):
                    if let gid = UserDatabase.groupID(name) { g.gids.insert(gid) } else { unresolved.append("\(role.rawValue): \(p)") }
                case .certificate, .key, .jwt: g.remote.insert(p.description)
                }
            }
            grants[role] = g
        }
    }

    /// The roles of a caller. A local one by uid, primary gid, or any group
    /// its user is a member of (root holds all); a remote one by the roles
    /// that name its principal and those its API key carries.
    package func roles(of caller: CallerIdentity) -> Set<Role> {
        if let remote = caller.remote {
            guard let name = remote.principal else { return [] }
            return Set(Role.allCases.filter { grants[$0]?.remote.contains(name) == true }).union(remote.scopes)
        }
        return roles(of: caller.local ?? .unknown)
    }

    /// The roles of a local peer.
    package func roles(of peer: PeerCredential) -> Set<Role> {
        if peer.uid == 0 { return Set(Role.allCases) }
        let groups = UserDatabase.groups(ofUser: peer.uid, primary: peer.gid)
        return Set(
            Role.allCases.filter { role in
                guard let g = grants[role] else { return false }
                return g.uids.contains(peer.uid) || !g.gids.isDisjoint(with: groups)
            })
    }
}
