package import BurrowPolicy
import BurrowSystem
import Dispatch
import Synchronization
package import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

package struct EgressError: Error, Sendable, CustomStringConvertible {
    package var description: String
}

/// The supervisor's egress proxy: one event-loop thread serves the proxy
/// listeners of every restricted sandbox of this process (each listener lives
/// in its sandbox's network namespace; the proxy's own sockets to
/// destinations in the supervisor's).
///
/// Bytes are relayed with splice(2) through a pipe per direction, never copied
/// into this process; each connection moves at most `turnBytes` per direction
/// before the loop serves the next one, so a busy sandbox cannot starve the
/// others. Names are resolved on a small pool of resolver threads, so a slow
/// resolver cannot stall the loop either.
package final class EgressProxy: Sendable {
    private let loop: ProxyLoop

    private static let instance = Mutex<EgressProxy?>(nil)

    /// The process's proxy, started on first use.
    package static func shared() throws(EgressError) -> EgressProxy {
        try instance.withLock { (proxy: inout EgressProxy?) throws(EgressError) -> EgressProxy in
            if let proxy { return proxy }
            let made = try EgressProxy()
            proxy = made
            return made
        }
    }

    init() throws(EgressError) {
        loop = try ProxyLoop()
        let loop = self.loop
        do {
            try Kernel.detachedThread { loop.run() }
        } catch {
            throw EgressError(description: "cannot start the egress proxy's thread: \(error)")
        }
    }

    /// Serves the sandbox whose proxy listener is `listener` (the proxy owns it
    /// from now on, and closes it on failure too) until `EgressSession.finish()`.
    /// - Parameter sink: receives every connection record on the proxy's thread; it must not block.
    /// - Throws: when the listener cannot be watched (the sandbox would have no way out at all).
    package func serve(listener: FileDescriptor, egress: NetworkPlan.Egress, sink: @escaping @Sendable (EgressRecord) -> Void) throws(EgressError) -> EgressSession {
        let session = SessionState(id: loop.newID(), listener: listener.rawValue, egress: egress, sink: sink)
        loop.post(.attach(session))
        let handle = EgressSession(loop: loop, id: session.id)
        do {
            // epoll_ctl may be called from any thread. The listener is level-triggered:
            // a connection that arrives before the loop has the session is seen again.
            try loop.watchListener(session)
        } catch {
            _ = handle.finish()
            throw EgressError(description: "cannot watch the egress proxy's listener: \(error)")
        }
        return handle
    }
}

/// One sandbox's use of the proxy.
package final class EgressSession: Sendable {
    private let loop: ProxyLoop
    private let id: UInt64
    private let summary = Mutex<EgressSummary?>(nil)

    fileprivate init(loop: ProxyLoop, id: UInt64) {
        self.loop = loop
        self.id = id
    }

    /// Closes the listener and every connection still open (each reported as
    /// ended with the sandbox), and returns what the proxy did. Idempotent.
    package func finish() -> EgressSummary {
        if let done = summary.withLock({ $0 }) { return done }
        let done = DetachReply()
        loop.post(.detach(id, done))
        done.semaphore.wait()
        let result = done.summary.withLock { $0 }
        summary.withLock { $0 = result }
        return result
    }
}

/// What a detaching session waits for: its summary, once the loop has dropped it.
final class DetachReply: Sendable {
    let semaphore = DispatchSemaphore(value: 0)
    let summary = Mutex(EgressSummary())
}

/// What other threads ask of the loop thread, through its inbox.
enum LoopCommand: Sendable {
    case attach(SessionState)
    case detach(UInt64, DetachReply)
    case resolved(UInt64, Result<[[UInt8]], Net.ResolveError>)
}

/// A sandbox's proxy state. Touched by the loop thread only (it is handed
/// over once, through the command queue).
final class SessionState: @unchecked Sendable {
    let id: UInt64
    let listener: Int32
    let egress: NetworkPlan.Egress
    let rules: EgressRules
    let sink: @Sendable (EgressRecord) -> Void
    var connections: Set<UInt64> = []
    var numbered = 0
    var bytesUsed: UInt64 = 0
    var summary = EgressSummary()

    init(id: UInt64, listener: Int32, egress: NetworkPlan.Egress, sink: @escaping @Sendable (EgressRecord) -> Void) {
        self.id = id
        self.listener = listener
        self.egress = egress
        self.rules = EgressRules(egress.targets)
        self.sink = sink
    }
}

/// One direction of a relayed connection: src → pipe → dst.
final class Direction {
    let src: Int32
    let dst: Int32
    var pipe: (read: Int32, write: Int32) = (-1, -1)
    var inPipe = 0
    /// Bytes to write before splicing (a forwarded request head, proxy replies).
    var pending: [UInt8] = []
    var pendingCounts = true
    var eof = false
    var shut = false
    var bytes: UInt64 = 0

    init(src: Int32, dst: Int32) {
        self.src = src
        self.dst = dst
    }

    var drained: Bool { eof && shut && inPipe == 0 && pending.isEmpty }
}

final class Connection {
    enum State { case greeting, resolving, connecting, relaying, replying }

    let id: UInt64
    let session: SessionState
    let number: Int
    let client: Int32
    var upstream: Int32 = -1
    var state = State.greeting
    var buffer: [UInt8] = []
    var greeted = false
    var request: EgressRequest?
    var host: EgressHost?
    var candidates: [IPAddress] = []
    var nextCandidate = 0
    var address: IPAddress?
    var lastConnectError = ""
    /// Bytes the tool sent after its request head, owed to the destination.
    var early: [UInt8] = []
    /// Replies to the tool before relaying starts (SOCKS greeting, refusals).
    var replies: [UInt8] = []
    var up: Direction?
    var down: Direction?
    let started: UInt64
    var lastActivity: UInt64
    var deadline: UInt64
    /// The record to emit when a refused connection's reply has gone out.
    var pendingRecord: EgressRecord.Outcome?

    init(id: UInt64, session: SessionState, number: Int, client: Int32, now: UInt64) {
        self.id = id
        self.session = session
        self.number = number
        self.client = client
        self.started = now
        self.lastActivity = now
        self.deadline = now + ProxyLoop.requestTimeout
    }
}
