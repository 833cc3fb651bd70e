import BurrowPolicy
import BurrowSystem
import Dispatch
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The event loop. Everything but `post` and `newID` runs on its thread.
final class ProxyLoop: @unchecked Sendable {
    static let requestTimeout: UInt64 = 10_000_000_000
    /// Bytes one direction of one connection may move before others get a turn.
    static let turnBytes = 512 * 1024
    static let pipeSize: Int32 = 1 << 20

    private let ep: Int32
    private let wake: FileDescriptor
    private let inbox = Mutex<[LoopCommand]>([])
    private let ids = Atomic<UInt64>(1)
    private let resolvers = (0..<4).map { DispatchQueue(label: "burrow.egress.resolver.\($0)") }
    private let resolverTurn = Atomic<Int>(0)

    private var sessions: [UInt64: SessionState] = [:]
    private var connections: [UInt64: Connection] = [:]
    private var again: Set<UInt64> = []
    private var nextSweep: UInt64 = 0

    private enum Role: UInt64 {
        case wake = 0
        case listener, client, upstream
    }

    init() throws(EgressError) {
        do {
            ep = try Net.epollCreate()
            wake = try Kernel.eventDescriptor()
            try Net.watch(ep, wake.rawValue, [.readable], token: Role.wake.rawValue)
        } catch {
            throw EgressError(description: "cannot create the egress proxy's event loop: \(error)")
        }
    }

    func newID() -> UInt64 { ids.wrappingAdd(1, ordering: .relaxed).newValue }

    func post(_ command: LoopCommand) {
        inbox.withLock { $0.append(command) }
        var one: UInt64 = 1
        _ = write(wake.rawValue, &one, 8)
    }

    private func token(_ id: UInt64, _ role: Role) -> UInt64 { id << 2 | role.rawValue }

    /// Called by `serve` on the caller's thread.
    func watchListener(_ session: SessionState) throws(Errno) {
        try Net.watch(ep, session.listener, [.readable], token: token(session.id, .listener))
    }

    // MARK: the loop

    func run() {
        var tokens = [UInt64](repeating: 0, count: 128)
        var events = [UInt32](repeating: 0, count: 128)
        while true {
            let n = (try? Net.wait(ep, tokens: &tokens, events: &events, timeoutMilliseconds: again.isEmpty ? 250 : 0)) ?? 0
            for i in 0..<n {
                let id = tokens[i] >> 2
                switch Role(rawValue: tokens[i] & 3) {
                case .wake:
                    var count: UInt64 = 0
                    _ = read(wake.rawValue, &count, 8)
                case .listener:
                    if let session = sessions[id] { accept(session) }
                case .client, .upstream:
                    if let c = connections[id] { service(c, upstreamEvent: tokens[i] & 3 == Role.upstream.rawValue, events: Net.Events(rawValue: events[i])) }
                case nil:
                    break
                }
            }
            for command in inbox.withLock({ q in
                defer { q.removeAll() }
                return q
            }) { handle(command) }
            if !again.isEmpty {
                let turn = again
                again = []
                for id in turn { if let c = connections[id], c.state == .relaying { relay(c) } }
            }
            let now = Kernel.monotonicNanoseconds()
            if now >= nextSweep {
                nextSweep = now + 250_000_000
                sweep(now)
            }
        }
    }

    private func handle(_ command: LoopCommand) {
        switch command {
        case .attach(let session):
            sessions[session.id] = session
        case .detach(let id, let done):
            guard let session = sessions.removeValue(forKey: id) else {
                done.semaphore.signal()
                return
            }
            Net.unwatch(ep, session.listener)
            close(session.listener)
            for cid in session.connections {
                if let c = connections[cid] { finish(c, .closed(reason: "the sandbox ended"), reset: true) }
            }
            done.summary.withLock { $0 = session.summary }
            done.semaphore.signal()
        case .resolved(let id, let result):
            guard let c = connections[id], c.state == .resolving, let host = c.host, let request = c.request else { return }
            switch result {
            case .failure(let e):
                fail(c, "\(host) does not resolve: \(e.message)", socks: 4, status: 502)
            case .success(let raw):
                let addresses = raw.compactMap { b -> IPAddress? in
                    b.count == 4 ? .v4(b.reduce(0) { $0 << 8 | UInt32($1) }) : b.count == 16 ? .v6(b) : nil
                }
                if addresses.isEmpty { return fail(c, "\(host) has no address", socks: 4, status: 502) }
                if let refusal = c.session.rules.screen(addresses, host: host, port: request.port) { return refuse(c, refusal) }
                connect(c, addresses)
            }
        }
    }

    // MARK: accepting and reading the request

    private func accept(_ session: SessionState) {
        for _ in 0..<64 {
            let fd: Int32
            do {
                fd = try Net.accept(session.listener)
            } catch {
                return  // EAGAIN, or a transient error: the listener stays watched
            }
            session.numbered += 1
            let now = Kernel.monotonicNanoseconds()
            let c = Connection(id: newID(), session: session, number: session.numbered, client: fd, now: now)
            if session.summary.budgetExhausted != nil || session.connections.count >= session.egress.maxConnections {
                let refusal: EgressRefusal = session.summary.budgetExhausted.map { .budgetExhausted($0) } ?? .connectionLimit(session.egress.maxConnections)
                Net.closeWithReset(fd)
                session.summary.refused += 1
                session.sink(record(c, .refused(refusal), now: now))
                continue
            }
            connections[c.id] = c
            session.connections.insert(c.id)
            session.summary.peakConnections = max(session.summary.peakConnections, session.connections.count)
            do {
                try Net.watch(ep, fd, [.readable, .writable, .peerClosed, .edgeTriggered], token: token(c.id, .client))
            } catch {
                finish(c, .failed("cannot watch the connection: \(error)"), reset: true)
                continue
            }
            readRequest(c)
        }
    }

    private func service(_ c: Connection, upstreamEvent: Bool, events: Net.Events) {
        switch c.state {
        case .greeting:
            readRequest(c)
        case .resolving:
            if events.contains(.hangUp) || events.contains(.error) { finish(c, .failed("the tool closed the connection while its destination was being resolved"), reset: true) }
        case .connecting:
            if upstreamEvent {
                connected(c)
            } else if events.contains(.hangUp) || events.contains(.error) {
                finish(c, .failed("the tool closed the connection while it was being connected"), reset: true)
            }
        case .replying:
            flushReplies(c)
        case .relaying:
            relay(c)
        }
    }

    private func readRequest(_ c: Connection) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while c.state == .greeting {
            let n = read(c.client, &chunk, chunk.count)
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { return }
                return finish(c, nil, reset: true)
            }
            // Closed before asking for anything: not an attempt to reach a destination.
            if n == 0 { return finish(c, nil, reset: false) }
            c.buffer += chunk[0..<n]
            parse(c)
        }
    }

    private func parse(_ c: Connection) {
        while c.state == .greeting {
            switch EgressParser.parse(c.buffer, greeted: c.greeted) {
            case .more:
                if c.buffer.count > EgressParser.maxHead {
                    return refuse(c, .protocolError("no complete request in the first \(EgressParser.maxHead) bytes"), reply: [])
                }
                return
            case .reply(let bytes, let consumed):
                c.greeted = true
                c.buffer.removeFirst(consumed)
                c.replies += bytes
                flushReplies(c)
            case .request(let request, let consumed):
                c.early = Array(c.buffer[consumed...])
                c.buffer = []
                decide(c, request)
            case .fail(let refusal, let reply):
                refuse(c, refusal, reply: reply)
            }
        }
    }

    // MARK: deciding

    private func decide(_ c: Connection, _ request: EgressRequest) {
        c.request = request
        c.deadline = Kernel.monotonicNanoseconds() + c.session.egress.connectTimeoutMilliseconds * 1_000_000
        let host: EgressHost
        switch EgressHost.normalise(request.host) {
        case .failure(let refusal): return refuse(c, refusal)
        case .success(let h): host = h
        }
        c.host = host
        if let refusal = c.session.rules.admit(host, port: request.port) { return refuse(c, refusal) }
        switch host {
        case .address(let address):
            connect(c, [address])
        case .name(EgressRules.localhost):
            // Never looked up: the name is the host's loopback.
            let addresses = EgressRules.localhostAddresses
            if let refusal = c.session.rules.screen(addresses, host: host, port: request.port) { return refuse(c, refusal) }
            connect(c, addresses)
        case .name(let name):
            c.state = .resolving
            let id = c.id
            let queue = resolvers[resolverTurn.wrappingAdd(1, ordering: .relaxed).oldValue % resolvers.count]
            queue.async { [self] in post(.resolved(id, Net.resolve(name))) }
        }
    }

    private func refuse(_ c: Connection, _ refusal: EgressRefusal, reply: [UInt8]? = nil) {
        c.session.summary.refused += 1
        let answer: [UInt8]
        if let reply {
            answer = reply
        } else if case .socks = c.request {
            answer = EgressParser.socksReply(2)
        } else {
            let status = refusal.code == "malformed_host" ? 400 : 403
            answer = EgressParser.httpReply(status, status == 400 ? "Bad Request" : "Forbidden", refusal: refusal, message: refusal.description)
        }
        self.answer(c, answer, then: .refused(refusal))
    }

    private func fail(_ c: Connection, _ why: String, socks: UInt8, status: Int) {
        c.session.summary.failed += 1
        let answer: [UInt8]
        if case .socks = c.request {
            answer = EgressParser.socksReply(socks)
        } else {
            answer = EgressParser.httpReply(status, status == 504 ? "Gateway Timeout" : "Bad Gateway", message: why)
        }
        self.answer(c, answer, then: .failed(why))
    }

    /// Sends a final answer to the tool, then closes and reports.
    private func answer(_ c: Connection, _ answer: [UInt8], then outcome: EgressRecord.Outcome) {
        if c.upstream >= 0 {
            Net.unwatch(ep, c.upstream)
            close(c.upstream)
            c.upstream = -1
        }
        c.state = .replying
        c.replies += answer
        c.pendingRecord = outcome
        c.deadline = Kernel.monotonicNanoseconds() + Self.requestTimeout
        flushReplies(c)
    }

    private func flushReplies(_ c: Connection) {
        while !c.replies.isEmpty {
            let n = c.replies.withUnsafeBytes { write(c.client, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { return }
                c.replies = []
                break
            }
            c.replies.removeFirst(n)
        }
        if c.state == .replying { finish(c, c.pendingRecord, reset: false) }
    }

    // MARK: connecting

    private func connect(_ c: Connection, _ addresses: [IPAddress]) {
        c.candidates = addresses
        c.nextCandidate = 0
        tryNext(c)
    }

    private func tryNext(_ c: Connection) {
        guard let request = c.request else { return }
        if c.upstream >= 0 {
            Net.unwatch(ep, c.upstream)
            close(c.upstream)
            c.upstream = -1
        }
        while c.nextCandidate < c.candidates.count {
            let address = c.candidates[c.nextCandidate]
            c.nextCandidate += 1
            do {
                // The very address that was checked: no second resolution.
                let fd = try Net.connect(address.bytes, port: request.port)
                c.upstream = fd
                c.address = address
                c.state = .connecting
                try Net.watch(ep, fd, [.readable, .writable, .peerClosed, .edgeTriggered], token: token(c.id, .upstream))
                return
            } catch {
                c.lastConnectError = "\(address): \(errnoName(error.rawValue))"
            }
        }
        fail(c, "cannot connect to \(c.host?.description ?? request.host):\(request.port) (\(c.lastConnectError))", socks: c.lastConnectError.contains("ECONNREFUSED") ? 5 : 4, status: 502)
    }

    private func connected(_ c: Connection) {
        if let error = Net.pendingError(c.upstream) {
            c.lastConnectError = "\(c.address?.description ?? "?"): \(errnoName(error.rawValue))"
            return tryNext(c)
        }
        guard let request = c.request else { return }
        let up = Direction(src: c.client, dst: c.upstream)
        let down = Direction(src: c.upstream, dst: c.client)
        do {
            up.pipe = try Net.relayPipe(size: Self.pipeSize)
            down.pipe = try Net.relayPipe(size: Self.pipeSize)
        } catch {
            c.up = up
            c.down = down
            return finish(c, .failed("cannot create relay pipes: \(error)"), reset: true)
        }
        switch request {
        case .connect: down.pending = EgressParser.connectEstablished
        case .socks: down.pending = EgressParser.socksReply(0)
        case .forward(_, _, let head): up.pending = head
        }
        down.pendingCounts = false
        up.pending += c.early
        c.early = []
        // What the tool sent before the tunnel existed is its traffic too.
        if let budget = c.session.egress.maxBytes, c.session.bytesUsed + UInt64(up.pending.count) > budget {
            c.up = up
            c.down = down
            return exhaust(c.session)
        }
        c.session.bytesUsed += UInt64(up.pending.count)
        c.up = up
        c.down = down
        c.state = .relaying
        c.lastActivity = Kernel.monotonicNanoseconds()
        c.session.summary.allowed += 1
        relay(c)
    }

    // MARK: relaying

    private enum Pumped {
        case idle, more
        case failed(String)
        case budget
    }

    private func relay(_ c: Connection) {
        guard let up = c.up, let down = c.down else { return }
        var moved = false
        for d in [up, down] {
            let before = d.bytes
            switch pump(d, session: c.session) {
            case .idle: break
            case .more: again.insert(c.id)
            case .failed(let why): return finish(c, .closed(reason: why), reset: true)
            case .budget: return exhaust(c.session)
            }
            if d.bytes != before { moved = true }
        }
        if moved { c.lastActivity = Kernel.monotonicNanoseconds() }
        if up.drained && down.drained { finish(c, .closed(reason: "closed"), reset: false) }
    }

    private func pump(_ d: Direction, session: SessionState) -> Pumped {
        var moved = 0
        while true {
            if !d.pending.isEmpty {
                let n = d.pending.withUnsafeBytes { write(d.dst, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EAGAIN || errno == EINTR { return .idle }
                    return .failed("reset (\(errnoName(errno)))")
                }
                d.pending.removeFirst(n)
                if d.pendingCounts { d.bytes += UInt64(n) }
                continue
            }
            if d.inPipe > 0 {
                do {
                    let n = try Net.splice(from: d.pipe.read, to: d.dst, max: d.inPipe)
                    d.inPipe -= n
                    d.bytes += UInt64(n)
                    continue
                } catch {
                    return error == .resourceTemporarilyUnavailable ? .idle : .failed("reset (\(errnoName(error.rawValue)))")
                }
            }
            if d.eof {
                if !d.shut {
                    Net.shutdownWrite(d.dst)
                    d.shut = true
                }
                return .idle
            }
            if moved >= Self.turnBytes { return .more }
            var want = Int(Self.pipeSize)
            var left: UInt64?
            if let budget = session.egress.maxBytes {
                let remaining = budget > session.bytesUsed ? budget - session.bytesUsed : 0
                left = remaining
                // One byte past the budget proves the tool wanted more; it is never forwarded.
                want = Int(min(UInt64(want), remaining + 1))
            }
            do {
                let n = try Net.splice(from: d.src, to: d.pipe.write, max: want)
                if n == 0 {
                    d.eof = true
                    continue
                }
                if let left, UInt64(n) > left { return .budget }
                session.bytesUsed += UInt64(n)
                d.inPipe += n
                moved += n
            } catch {
                return error == .resourceTemporarilyUnavailable ? .idle : .failed("reset (\(errnoName(error.rawValue)))")
            }
        }
    }

    /// The byte budget is spent: every connection of the sandbox is cut and new ones are refused.
    private func exhaust(_ session: SessionState) {
        guard let budget = session.egress.maxBytes else { return }
        session.summary.budgetExhausted = budget
        for id in session.connections {
            if let c = connections[id] { finish(c, .closed(reason: "network byte budget of \(budget) bytes exhausted"), reset: true, budgetCut: true) }
        }
    }

    // MARK: timers and closing

    private func sweep(_ now: UInt64) {
        for c in Array(connections.values) {
            switch c.state {
            case .greeting where now > c.deadline:
                refuse(c, .protocolError("no complete request within \(Self.requestTimeout / 1_000_000_000) s"), reply: [])
            case .replying where now > c.deadline:
                finish(c, c.pendingRecord, reset: true)
            case .resolving where now > c.deadline, .connecting where now > c.deadline:
                fail(c, "\(c.host?.description ?? "?"):\(c.request?.port ?? 0) did not answer within \(c.session.egress.connectTimeoutMilliseconds) ms", socks: 4, status: 504)
            case .relaying where now - c.lastActivity > c.session.egress.idleTimeoutMilliseconds * 1_000_000:
                finish(c, .closed(reason: "idle for \(c.session.egress.idleTimeoutMilliseconds / 1000) s"), reset: true)
            default:
                break
            }
        }
    }

    /// Closes everything the connection holds and reports it (`outcome` nil: silently).
    private func finish(_ c: Connection, _ outcome: EgressRecord.Outcome?, reset: Bool, budgetCut: Bool = false) {
        guard connections.removeValue(forKey: c.id) != nil else { return }
        c.session.connections.remove(c.id)
        again.remove(c.id)
        for fd in [c.client, c.upstream] where fd >= 0 {
            Net.unwatch(ep, fd)
            if reset { Net.closeWithReset(fd) } else { close(fd) }
        }
        for d in [c.up, c.down].compactMap({ $0 }) {
            for fd in [d.pipe.read, d.pipe.write] where fd >= 0 { close(fd) }
        }
        guard let outcome else { return }
        var r = record(c, outcome, now: Kernel.monotonicNanoseconds())
        r.budgetCut = budgetCut
        c.session.summary.bytesOut += r.bytesOut
        c.session.summary.bytesIn += r.bytesIn
        c.session.sink(r)
    }

    private func record(_ c: Connection, _ outcome: EgressRecord.Outcome, now: UInt64) -> EgressRecord {
        EgressRecord(
            connection: c.number, protocolName: c.request?.protocolName ?? "unknown", requested: c.request?.host ?? "",
            host: c.host?.description, port: c.request?.port, address: c.address?.description,
            bytesOut: c.up?.bytes ?? 0, bytesIn: c.down?.bytes ?? 0, milliseconds: (now - c.started) / 1_000_000, outcome: outcome)
    }
}
