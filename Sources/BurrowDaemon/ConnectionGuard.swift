import BurrowAPI
import FoundationEssentials
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOSSL
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How many connections may be open, in all and per caller, with a reserve
/// that only root and admins may use: a flood from one caller, or from
/// many, leaves root able to reach burrowd.
///
/// Beyond its caps a caller's connection is answered (429 or 503, JSON,
/// Retry-After) and closed; those answers have a small cap of their own
/// (`maxRefusing`), beyond which a connection is closed at once, unread. So
/// burrowd's descriptors stay within `hardLimit` whatever callers do.
final class ConnectionLimiter: Sendable {
    struct Limits: Sendable {
        var total: Int
        var perUser: Int
        var reserve: Int
        /// Connections being answered with a refusal at once.
        var maxRefusing = 64
    }

    enum Decision: Equatable {
        case admitted
        /// Answer the first request with this and close.
        case refused(ErrorCode, message: String)
        /// Close at once: even the refusals are at their cap.
        case dropped
    }

    private struct State {
        var open = 0
        /// By uid on the socket; by address on the HTTPS listener (a TCP peer has no uid).
        var byCaller: [CallerIdentity.Key: Int] = [:]
        var refusing = 0
        var refusedTotal = 0
    }

    let limits: Limits
    private let state = Mutex(State())

    init(_ limits: Limits) { self.limits = limits }

    /// Every descriptor connections can hold at once.
    var hardLimit: Int { limits.total + limits.reserve + limits.maxRefusing }

    func admit(uid: UInt32, privileged: Bool) -> Decision { admit(.uid(uid), privileged: privileged) }

    func release(uid: UInt32, _ decision: Decision) { release(.uid(uid), decision) }

    func admit(_ caller: CallerIdentity.Key, privileged: Bool) -> Decision {
        state.withLock { s in
            let mine = s.byCaller[caller, default: 0]
            var refusal: Decision?
            if privileged {
                if s.open >= limits.total + limits.reserve {
                    refusal = .refused(
                        .serverBusy, message: "burrowd has \(s.open) connections open, its limit with the admins' reserve ([daemon] max_connections + admin_connection_reserve)")
                }
            } else if mine >= limits.perUser {
                let (who, key) =
                    if case .address = caller { ("address", "[transport.http] max_connections_per_address") } else { ("caller", "[daemon] max_connections_per_user") }
                refusal = .refused(.tooManyConnections, message: "this \(who) has \(mine) connections open, the most one \(who) may (\(key))")
            } else if s.open >= limits.total {
                refusal = .refused(.serverBusy, message: "burrowd has \(s.open) connections open, the most it takes ([daemon] max_connections); the rest are kept for admins")
            }
            guard let refusal else {
                s.open += 1
                s.byCaller[caller] = mine + 1
                return .admitted
            }
            s.refusedTotal += 1
            guard s.refusing < limits.maxRefusing else { return .dropped }
            s.refusing += 1
            return refusal
        }
    }

    func release(_ caller: CallerIdentity.Key, _ decision: Decision) {
        state.withLock { s in
            switch decision {
            case .admitted:
                s.open -= 1
                let left = s.byCaller[caller, default: 1] - 1
                s.byCaller[caller] = left > 0 ? left : nil
            case .refused:
                s.refusing -= 1
            case .dropped:
                break
            }
        }
    }

    /// Open (admitted) connections, and refusals answered so far.
    var counts: (open: Int, refusing: Int, refusedTotal: Int) { state.withLock { ($0.open, $0.refusing, $0.refusedTotal) } }
}

/// Hummingbird's HTTP/1 child channel with admission in front: the peer's
/// credentials are read when the connection is accepted, and the limiter
/// decides before any byte of it is parsed.
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let base: HTTP1Channel
    let limiter: ConnectionLimiter
    /// Whether a peer may use the admins' reserve (root or the admin role).
    let privileged: @Sendable (PeerCredential) -> Bool

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> { setup(channel: channel, logger: logger, afterTLS: false) }

    /// `afterTLS`: the byte watch goes behind the TLS handler (it counts the
    /// request's bytes, not the handshake's); else first.
    func setup(channel: any Channel, logger: Logger, afterTLS: Bool) -> EventLoopFuture<Value> {
        let (limiter, base, privileged) = (limiter, base, privileged)
        let credential: EventLoopFuture<PeerCredential?>
        if let provider = channel as? any SocketOptionProvider {
            credential = provider.unsafeGetSocketOption(level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: SO_PEERCRED))
                .map { (c: PeerCredential) in c.uid == UInt32.max ? nil : c }
        } else {
            credential = channel.eventLoop.makeSucceededFuture(nil)
        }
        return credential.flatMap { peer -> EventLoopFuture<Value> in
            // A caller whose credentials cannot be read gets the API's 401 from the access middleware;
            // a TCP peer (no uid) is counted by its address.
            let key: CallerIdentity.Key = peer.map { .uid($0.uid) } ?? channel.remoteAddress?.ipAddress.map { .address($0) } ?? .uid(.max)
            let decision = limiter.admit(key, privileged: peer.map(privileged) ?? false)
            if decision == .dropped {
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
            }
            channel.closeFuture.whenComplete { _ in limiter.release(key, decision) }
            return base.setup(channel: channel, logger: logger).flatMapThrowing { value in
                let guardHandler = try channel.pipeline.syncOperations.handler(type: RequestGuard.self)
                let position: ChannelPipeline.SynchronousOperations.Position =
                    afterTLS ? .after(try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)) : .first
                try channel.pipeline.syncOperations.addHandler(ByteWatch(guardHandler), position: position)
                if case .refused(let code, let message) = decision { guardHandler.refuse(code, message: message) }
                return value
            }
        }
    }

    func handle(value: Value, logger: Logger) async { await base.handle(value: value, logger: logger) }
}

/// In front of the HTTP decoder: tells the guard that bytes came, so a
/// connection that sent part of a head is told 408 at the header deadline
/// while one that sent nothing is merely idle.
final class ByteWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let guardHandler: RequestGuard

    init(_ guardHandler: RequestGuard) { self.guardHandler = guardHandler }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guardHandler.bytesSinceResponse = true
        context.fireChannelRead(data)
    }
}

/// Per connection, between the HTTP codec and Hummingbird: the header and
/// body deadlines, the API's JSON error body for what the HTTP parser
/// refuses (Hummingbird sends a bare 400), the refusal of a connection over
/// its caps, and the close of a connection whose request body was answered
/// before it was read (so an endless chunked body is not drained forever).
final class RequestGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    struct Timeouts: Sendable {
        var header: TimeAmount
        var body: TimeAmount
        /// For a connection that is only answered with a refusal.
        var refusal: TimeAmount = .seconds(2)
    }

    /// What ended a request early, for the body reader: it throws this instead of seeing a short body.
    struct Deadline: Error, CustomStringConvertible {
        var description: String
    }

    private let timeouts: Timeouts
    private var timer: Scheduled<Void>?
    /// A request head came and its body has not ended.
    private var requestOpen = false
    /// Requests whose response has not ended (pipelined requests count too).
    private var unanswered = 0
    private var responding = false
    /// A byte came since the connection opened or the last response ended (`ByteWatch`).
    fileprivate var bytesSinceResponse = false
    private var parseError: HTTPParserError?
    private var refusal: (code: ErrorCode, message: String)?

    init(_ timeouts: Timeouts) { self.timeouts = timeouts }

    func refuse(_ code: ErrorCode, message: String) { refusal = (code, message) }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context, timeouts.header, "header") }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context, refusal == nil ? timeouts.header : timeouts.refusal, "header")
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }

    private func arm(_ context: ChannelHandlerContext, _ delay: TimeAmount, _ what: String) {
        disarm()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            expired(loopBound.value, what)
        }
    }

    private func expired(_ context: ChannelHandlerContext, _ what: String) {
        timer = nil
        // No byte of a next request yet: the connection is idle, not slow;
        // Hummingbird closes it, silently, after [daemon] idle_timeout.
        if what == "header" && !bytesSinceResponse && refusal == nil { return }
        if let refusal, !responding {
            // Over its caps and silent: it gets its refusal now.
            return answerAndClose(context, refusal.code, message: refusal.message)
        }
        let seconds = (what == "body" ? timeouts.body : timeouts.header).nanoseconds / 1_000_000_000
        let message =
            what == "body"
            ? "the request body did not arrive within \(seconds) s of its head ([daemon] body_timeout)"
            : "no complete request head within \(seconds) s ([daemon] header_timeout)"
        if what == "body" {
            // The handler reading the body must fail, not see a short body as complete.
            context.fireErrorCaught(Deadline(description: message))
        }
        if responding {
            context.close(promise: nil)
        } else {
            answerAndClose(context, what == "body" ? .bodyTimeout : .headerTimeout, message: message)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if let refusal {
            // Over its caps: the first request gets the refusal, nothing reaches the API.
            if case .head = part, !responding {
                answerAndClose(context, refusal.code, message: refusal.message)
            }
            return
        }
        switch part {
        case .head:
            requestOpen = true
            unanswered += 1
            arm(context, timeouts.body, "body")
        case .body:
            break
        case .end:
            requestOpen = false
            disarm()
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError { parseError = error }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            responding = true
            // Hummingbird's answer to a parse error: a bare 400. Sent as the API's error body instead.
            if let error = parseError, head.status == .badRequest, head.headerFields[.contentLength] == "0" {
                let (code, message) = Self.describe(error)
                let (newHead, body) = Self.errorResponse(code, message: message)
                context.write(wrapOutboundOut(.head(newHead)), promise: nil)
                context.write(wrapOutboundOut(.body(body)), promise: promise)
                return
            }
            context.write(data, promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            responding = false
            unanswered = max(0, unanswered - 1)
            if requestOpen {
                // Answered before its body was read (413, 403, ...): the rest is not drained.
                let closing = context.eventLoop.makePromise(of: Void.self)
                closing.futureResult.cascade(to: promise)
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                closing.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
                context.write(data, promise: closing)
            } else {
                context.write(data, promise: promise)
                // The next request's head is due now, unless one is already being served.
                if unanswered == 0 {
                    bytesSinceResponse = false
                    arm(context, timeouts.header, "header")
                }
            }
        }
    }

    /// A whole JSON error response written from here (timeouts, refusals), then the close.
    private func answerAndClose(_ context: ChannelHandlerContext, _ code: ErrorCode, message: String) {
        responding = true
        let (head, body) = Self.errorResponse(code, message: message)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in loopBound.value.close(promise: nil) }
    }

    static func errorResponse(_ code: ErrorCode, message: String) -> (HTTPResponse, ByteBuffer) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let encoded: [UInt8] = (try? encoder.encode(ErrorBody(code: code, message: message))).map { Array($0) } ?? Array(#"{"error":{"code":"internal","message":""}}"#.utf8)
        var body = ByteBuffer(bytes: encoded)
        body.writeString("\n")
        var fields: HTTPFields = [.contentType: "application/json", .connection: "close", .contentLength: "\(body.readableBytes)"]
        if code.httpStatus == 429 || code.httpStatus == 503 { fields[.retryAfter] = "1" }
        return (HTTPResponse(status: .init(code: code.httpStatus), headerFields: fields), body)
    }

    /// What the HTTP parser refused, as the API says it.
    static func describe(_ error: HTTPParserError) -> (ErrorCode, String) {
        switch error {
        case .headerOverflow:
            return (.headersTooLarge, "the request line or headers are larger than burrowd takes (80 KiB, 1000 fields)")
        case .invalidContentLength, .unexpectedContentLength:
            return (.invalidContentLength, "the Content-Length is not valid, or comes with Transfer-Encoding (which is refused)")
        case .invalidChunkSize:
            return (.invalidChunkSize, "a chunk size of the chunked body is not valid")
        case .invalidMethod:
            return (.invalidMethod, "the request method is not valid")
        case .invalidURL, .invalidPath, .invalidQueryString, .invalidFragment, .invalidHost, .invalidPort:
            return (.invalidURL, "the request target is not a valid URL")
        case .invalidVersion:
            return (.invalidVersion, "only HTTP/1.0 and HTTP/1.1 are served")
        default:
            return (.badHTTP, "the request is not valid HTTP/1.1 (a malformed request line or header, or Content-Length with Transfer-Encoding)")
        }
    }
}
