import BurrowAPI
import Testing

@testable import BurrowDaemon

@Suite("ConnectionLimiter: per caller, in all, and the admins' reserve")
struct ConnectionLimiterTests {
    @Test func capsAndReserve() {
        let limiter = ConnectionLimiter(.init(total: 4, perUser: 2, reserve: 2, maxRefusing: 1))
        #expect(limiter.admit(uid: 1000, privileged: false) == .admitted)
        #expect(limiter.admit(uid: 1000, privileged: false) == .admitted)
        guard case .refused(.tooManyConnections, _) = limiter.admit(uid: 1000, privileged: false) else {
            Issue.record("a third connection of one caller was not refused")
            return
        }
        // Refusals being answered have a cap of their own: beyond it, closed unread.
        #expect(limiter.admit(uid: 1000, privileged: false) == .dropped)
        limiter.release(uid: 1000, .refused(.tooManyConnections, message: ""))
        #expect(limiter.admit(uid: 1001, privileged: false) == .admitted)
        #expect(limiter.admit(uid: 1002, privileged: false) == .admitted)
        guard case .refused(.serverBusy, _) = limiter.admit(uid: 1003, privileged: false) else {
            Issue.record("a connection past the total was not refused")
            return
        }
        limiter.release(uid: 1003, .refused(.serverBusy, message: ""))
        // Root and admins use the reserve, however many they hold.
        #expect(limiter.admit(uid: 0, privileged: true) == .admitted)
        #expect(limiter.admit(uid: 0, privileged: true) == .admitted)
        guard case .refused(.serverBusy, _) = limiter.admit(uid: 0, privileged: true) else {
            Issue.record("the reserve has no end")
            return
        }
        #expect(limiter.counts.open == 6)
        for uid: UInt32 in [1000, 1000, 1001, 1002, 0, 0] { limiter.release(uid: uid, .admitted) }
        #expect(limiter.counts.open == 0)
        #expect(limiter.admit(uid: 1000, privileged: false) == .admitted)
    }
}
