import BurrowSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Who invoked a tool: a user name (or `uid:N`) and the uid.
package struct Caller: Sendable, Equatable {
    package var principal: String
    package var uid: UInt32

    package init(principal: String, uid: UInt32) {
        self.principal = principal
        self.uid = uid
    }

    /// The user `uid`, named as the user database names it (`uid:N` when it does not).
    package init(uid: UInt32) {
        self.init(principal: UserDatabase.userName(uid) ?? "uid:\(uid)", uid: uid)
    }

    /// This process's real user.
    package static func current() -> Caller { Caller(uid: getuid()) }
}
