import BurrowSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Who invoked a tool: a user name (or `uid:N`), the uid, and the process
/// when it is known (`burrow` itself, or burrowd's session client); or a
/// remote principal (`cert:NAME`), which is no user of this host.
package struct Caller: Sendable, Equatable {
    package var principal: String
    /// Nil for a remote caller.
    package var uid: UInt32?
    package var pid: Int32?

    package init(principal: String, uid: UInt32?, pid: Int32? = nil) {
        self.principal = principal
        self.uid = uid
        self.pid = pid
    }

    /// The user `uid`, named as the user database names it (`uid:N` when it does not).
    package init(uid: UInt32, pid: Int32? = nil) {
        self.init(principal: UserDatabase.userName(uid) ?? "uid:\(uid)", uid: uid, pid: pid)
    }

    /// A caller authenticated over the network: no uid, no process here.
    package init(remote principal: String) {
        self.init(principal: principal, uid: nil)
    }

    /// This process and its real user.
    package static func current() -> Caller { Caller(uid: getuid(), pid: getpid()) }
}
