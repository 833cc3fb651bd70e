#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Users, groups and the host name as NSS resolves them (re-entrant calls
/// only: the daemon asks from many threads).
package enum UserDatabase {
    package static func userName(_ uid: UInt32) -> String? { account(uid)?.name }

    /// The user's primary group (its passwd entry), or nil for an unknown uid.
    package static func primaryGroup(_ uid: UInt32) -> UInt32? { account(uid)?.gid }

    /// The passwd entry of `uid`: its name and primary group.
    private static func account(_ uid: UInt32) -> (name: String?, gid: UInt32)? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return (entry.pw_name.map { String(cString: $0) }, entry.pw_gid)
    }

    package static func userID(_ name: String) -> UInt32? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.pw_uid
    }

    package static func groupID(_ name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }

    package static func groupName(_ gid: UInt32) -> String? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.gr_name else { return nil }
        return String(cString: name)
    }

    /// `gid` and every group the user `uid` is a member of (as login would give them).
    package static func groups(ofUser uid: UInt32, primary gid: UInt32) -> Set<UInt32> {
        var out: Set<UInt32> = [gid]
        guard let name = userName(uid) else { return out }
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &list, &count) == -1 {
            list = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, gid, &list, &count)
        }
        for g in list.prefix(Int(max(0, count))) { out.insert(g) }
        return out
    }

    /// This machine's name, as audit events record it.
    package static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()
}

/// Names that become file names, cgroup names and URL path segments (invocation
/// and tool ids, versions): 1 to 128 letters, digits, '-', '_', '.', not starting with '.'.
package enum SafeName {
    package static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128 && !name.hasPrefix(".")
            && name.utf8.allSatisfy { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }
    }
}
