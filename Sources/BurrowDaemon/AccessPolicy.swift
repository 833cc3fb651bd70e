public import BurrowProfile

#if canImport(Glibc)
    import Glibc
#endif

/// What a caller may do.
public enum Role: String, Sendable, CaseIterable, Codable {
    /// Register, update and delete tools.
    case admin
    /// Invoke tools.
    case invoker
    /// Read the audit log.
    case auditor
}

/// The host policy's `[daemon]` roles, resolved to ids once at start-up.
/// Default deny: a caller holds only the roles that name it (root holds all).
public struct AccessPolicy: Sendable {
    struct Grants: Sendable {
        var uids: Set<UInt32> = []
        var gids: Set<UInt32> = []
    }

    private var grants: [Role: Grants] = [:]
    /// Principals that named no existing user or group: they grant nothing.
    public private(set) var unresolved: [String] = []

    public init(_ daemon: HostPolicy.Daemon) {
        for (role, principals) in [(Role.admin, daemon.admins), (.invoker, daemon.invokers), (.auditor, daemon.auditors)] {
            var g = Grants()
            for p in principals {
                switch p {
                case .uid(let n): g.uids.insert(n)
                case .gid(let n): g.gids.insert(n)
                case .user(let name):
                    if let uid = AccessPolicy.userID(name) { g.uids.insert(uid) } else { unresolved.append("\(role.rawValue): \(p)") }
                case .group(let name):
                    if let gid = AccessPolicy.groupID(name) { g.gids.insert(gid) } else { unresolved.append("\(role.rawValue): \(p)") }
                }
            }
            grants[role] = g
        }
    }

    /// The roles of a peer: by uid, primary gid, or any group its user is a member of.
    public func roles(of peer: PeerCredential) -> Set<Role> {
        if peer.uid == 0 { return Set(Role.allCases) }
        let groups = AccessPolicy.groups(of: peer)
        return Set(Role.allCases.filter { role in
            guard let g = grants[role] else { return false }
            return g.uids.contains(peer.uid) || !g.gids.isDisjoint(with: groups)
        })
    }

    /// The peer's gid and the groups its user belongs to (the group database,
    /// as login would give them; not the process's own, which the socket does not carry).
    static func groups(of peer: PeerCredential) -> Set<UInt32> {
        var out: Set<UInt32> = [peer.gid]
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(peer.uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else { return out }
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, peer.gid, &list, &count) == -1 {
            list = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, peer.gid, &list, &count)
        }
        for g in list.prefix(Int(max(0, count))) { out.insert(g) }
        return out
    }

    static func userID(_ name: String) -> UInt32? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.pw_uid
    }

    static func groupID(_ name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }
}
