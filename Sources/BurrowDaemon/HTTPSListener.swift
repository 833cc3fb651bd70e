import BurrowAudit
import BurrowCrypto
import BurrowProfile
import BurrowSystem
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import NIOTLS
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// burrowd over the network (`[transport.http]`): HTTPS on TCP, TLS 1.3
/// only, the configured TLS 1.3 suites only, client certificates as
/// `client_auth` says; a verified certificate names the caller (`cert:CN`,
/// see `CallerIdentity.certificate`). SIGHUP reads the certificate, key
/// and client CA again (`ReloadService`).
enum HTTPSListener {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// What a handshake is checked with: the TLS context, and the client
    /// CRLs when `client_crl` is set.
    struct Credentials: Sendable {
        var context: NIOSSLContext
        var revocation: RevocationLists?
    }

    /// The policy's credentials: the TLS context, and the CRLs (each signed
    /// by its CA of `client_ca`, none stale).
    static func credentials(_ h: HostPolicy.Transport.HTTP) throws(Failure) -> Credentials {
        var credentials = Credentials(context: try context(h))
        if let crl = h.clientCRL, let ca = h.clientCA, h.clientAuth != .none {
            do {
                credentials.revocation = try RevocationLists(crlPEM: try read(crl, secret: false), caPEM: try read(ca, secret: false), now: AuditClock.now() / 1_000_000)
            } catch let failure as Failure {
                throw failure
            } catch {
                throw Failure(description: "\(crl): \(error)")
            }
        }
        return credentials
    }

    /// The TLS context of the policy: its certificate chain, a private key
    /// no other user may read, TLS 1.3 only, and the client CA.
    static func context(_ h: HostPolicy.Transport.HTTP) throws(Failure) -> NIOSSLContext {
        guard let certFile = h.tlsCert, let keyFile = h.tlsKey else { throw Failure(description: "[transport.http] needs tls_cert and tls_key") }
        do {
            let chain = try NIOSSLCertificate.fromPEMBytes(try read(certFile, secret: false)).map { NIOSSLCertificateSource.certificate($0) }
            guard !chain.isEmpty else { throw Failure(description: "\(certFile): no certificate in it") }
            let key = try NIOSSLPrivateKey(bytes: try read(keyFile, secret: true), format: .pem)
            var c = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            c.minimumTLSVersion = .tlsv13
            c.maximumTLSVersion = .tlsv13
            // A closing connection waits this long for the peer's close_notify (NIOSSL's default, 5 s,
            // would keep a stalled or timed-out connection's descriptor 5 s past [daemon] header_timeout).
            c.shutdownTimeout = .seconds(1)
            switch h.clientAuth {
            case .require: c.certificateVerification = .noHostnameVerification
            case .optional: c.certificateVerification = .optionalVerification
            case .none: c.certificateVerification = .none
            }
            if let ca = h.clientCA {
                // Never the system's roots: only this CA's certificates are clients.
                c.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(try read(ca, secret: false)))
                c.sendCANameList = true
            }
            return try NIOSSLContext(configuration: c)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "[transport.http]: \(error)")
        }
    }

    /// A file's bytes, read from the descriptor that was checked: a regular
    /// file; a secret also owned by this user and readable by no one else.
    static func read(_ path: String, secret: Bool) throws(Failure) -> [UInt8] {
        do {
            return try FileIO.readConfigured(path, secret: secret)
        } catch {
            switch error {
            case .system(let e): throw Failure(description: "\(path): \(e)")
            case .notRegular: throw Failure(description: "\(path): not a regular file")
            case .tooLarge: throw Failure(description: "\(path): larger than 1 MiB")
            case .exposed(let mode, let owner):
                throw Failure(
                    description: "\(path): a private key must be owned by burrowd's user and readable by no one else (mode \(String(mode, radix: 8)), owner \(owner)): chmod 600")
            }
        }
    }
}

/// The TLS context new connections take. SIGHUP replaces it; a connection
/// already open keeps the one it began with (its own reference), so a
/// reload drops nothing.
final class TLSContextBox: Sendable {
    private let state: Mutex<HTTPSListener.Credentials>

    init(_ credentials: HTTPSListener.Credentials) { state = Mutex(credentials) }

    var current: HTTPSListener.Credentials { state.withLock { $0 } }

    func replace(_ credentials: HTTPSListener.Credentials) { state.withLock { $0 = credentials } }
}

/// SIGHUP: the HTTPS certificate, key and client CA (and the JWT keys) are read again, under
/// the same rules as at start-up; when any of them is refused, the context
/// serving now stays, and the journal says why. (The host policy itself is
/// read at start only.) Trapped with or without a listener, so a reload
/// never stops burrowd.
struct ReloadService: Service {
    let http: HostPolicy.Transport.HTTP
    let box: TLSContextBox?
    /// `[auth.jwt]` and the verifier its keys go to, when JWTs are accepted.
    let jwt: (HostPolicy.Auth.JWT, JWTKeys)?
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            guard let box else {
                logger.notice("SIGHUP: no [transport.http] listener, nothing to reload (the host policy is read at start only: restart burrowd to change it)")
                continue
            }
            do {
                box.replace(try HTTPSListener.credentials(http))
                logger.notice("SIGHUP: HTTPS certificate, key, client CA and CRLs reloaded; new connections use them, open ones keep theirs")
            } catch {
                logger.error("SIGHUP: HTTPS credentials not reloaded, the previous ones still serve: \(error)")
            }
            if let (policy, keys) = jwt {
                do {
                    keys.replace(try await JWTVerifier.load(policy))
                    logger.notice("SIGHUP: JWT keys ([auth.jwt] hs256_secret, jwks) reloaded")
                } catch {
                    logger.error("SIGHUP: JWT keys not reloaded, the previous ones still serve: \(error)")
                }
            }
        }
    }
}

/// The HTTPS child channel: the suite check nearest the socket, TLS (with
/// the context of the moment), a watch that reports refused handshakes,
/// then the guarded HTTP/1 channel with its own connection limiter (remote
/// callers never use the local callers' share).
struct HTTPSChannel: ServerChildChannel {
    typealias Value = GuardedHTTP1Channel.Value

    let guarded: GuardedHTTP1Channel
    let context: TLSContextBox
    let suites: Set<UInt16>
    /// The longest a handshake may take ([daemon] header_timeout).
    let deadline: TimeAmount
    /// A handshake refused (address, why): audited by the daemon.
    let refused: @Sendable (String, String) -> Void

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let (credentials, suites, guarded, refused, deadline) = (context.current, suites, guarded, refused, deadline)
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
                ServerHelloCheck(allowed: suites) { refused(address, $0) },
                position: .first)
            if let revocation = credentials.revocation {
                // After BoringSSL verified the chain: the leaf's CRL (swift-nio-ssl's hook for exactly this).
                try channel.pipeline.syncOperations.addHandler(
                    NIOSSLServerHandler._makeSSLServerHandler(context: credentials.context) { leaf, channel in
                        let status = (try? leaf.toDERBytes()).map { revocation.status(ofCertificateDER: $0, now: AuditClock.now() / 1_000_000) } ?? .refused("a certificate without DER")
                        guard case .refused(let why) = status else { return channel.eventLoop.makeSucceededVoidFuture() }
                        refused(address, "client certificate refused: \(why)")
                        return channel.eventLoop.makeFailedFuture(HTTPSListener.Failure(description: why))
                    })
            } else {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: credentials.context))
            }
            try channel.pipeline.syncOperations.addHandler(HandshakeWatch(deadline: deadline) { refused(address, $0) })
        }.flatMap { guarded.setup(channel: channel, logger: logger, afterTLS: true) }
    }

    func handle(value: Value, logger: Logger) async { await guarded.handle(value: value, logger: logger) }
}

/// Reports a TLS handshake that failed: no client certificate, another
/// CA's, an expired one, TLS 1.2, no shared suite. (A client that hung up
/// mid-handshake is not reported: that refuses nothing.) A handshake not
/// done within `deadline` ([daemon] header_timeout) is cut: the socket is
/// closed beneath TLS, which would otherwise wait for the peer to close.
final class HandshakeWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let report: (String) -> Void
    private let deadline: TimeAmount
    private var done = false
    private var timer: Scheduled<Void>?

    init(deadline: TimeAmount, report: @escaping (String) -> Void) {
        self.deadline = deadline
        self.report = report
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: deadline) { [self] in
            guard !done else { return }
            done = true
            // From the first handler: nearer the socket than TLS.
            (try? pipeline.syncOperations.context(handlerType: ServerHelloCheck.self))?.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            done = true
            timer?.cancel()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done, case NIOSSLError.handshakeFailed(let failure) = error {
            done = true
            if case .sslError(let stack) = failure, stack == [.eofDuringHandshake] {
            } else {
                report("TLS handshake refused: \(Self.describe(failure))")
            }
        }
        context.fireErrorCaught(error)
    }

    /// BoringSSL's reasons, without the source paths it appends.
    static func describe(_ failure: BoringSSLError) -> String {
        let text: String
        switch failure {
        case .sslError(let stack), .unknownError(let stack): text = stack.map { "\($0)" }.joined(separator: "; ")
        default: text = "\(failure)"
        }
        return text.split(separator: ";").map { part in
            let s = String(part)
            return s.firstRange(of: " at /").map { String(s[..<$0.lowerBound]) } ?? s
        }.joined(separator: ";")
    }
}

/// Holds the server's first handshake record back until its ServerHello
/// (or HelloRetryRequest) shows the suite BoringSSL chose, and lets it
/// through only when that suite is one `[transport.http] cipher_suites`
/// allows; otherwise a fatal handshake_failure alert and the connection is
/// closed. (BoringSSL, under swift-nio-ssl, offers no way to restrict the
/// TLS 1.3 suites; this check is how the configuration is enforced.)
final class ServerHelloCheck: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let allowed: Set<UInt16>
    private let refused: (String) -> Void
    private var held: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var checked = false

    init(allowed: Set<UInt16>, refused: @escaping (String) -> Void = { _ in }) {
        self.allowed = allowed
        self.refused = refused
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !checked else { return context.write(data, promise: promise) }
        held.append((unwrapOutboundIn(data), promise))
        let bytes = held.flatMap { Array($0.0.readableBytesView) }
        switch Self.suite(in: bytes) {
        case .none:
            return  // the ServerHello is not whole yet
        case .some(let suite?) where allowed.contains(suite):
            checked = true
            for (buffer, p) in held { context.write(wrapOutboundOut(buffer), promise: p) }
            held = []
            // The flushes asked for meanwhile were held back with the bytes.
            context.flush()
        case .some(let suite):
            checked = true
            if let suite {
                let name = HostPolicy.Transport.HTTP.tls13Suites.first { $0.value == suite }?.key ?? "suite 0x" + String(suite, radix: 16)
                refused("TLS handshake refused: it chose \(name) (the client's preference), which [transport.http] cipher_suites does not allow")
            } else {
                refused("TLS handshake refused: the server's first handshake record was not a ServerHello")
            }
            for (_, p) in held { p?.fail(ChannelError.ioOnClosedChannel) }
            held = []
            // A fatal handshake_failure alert, then the end.
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])), promise: nil)
            context.close(promise: nil)
        }
    }

    func flush(context: ChannelHandlerContext) {
        if checked { context.flush() }
    }

    /// The suite of the first ServerHello in `bytes` (TLS records): nil
    /// while it is incomplete; `.some(nil)` when the first record is not
    /// one (nothing passes unchecked).
    static func suite(in bytes: [UInt8]) -> UInt16?? {
        guard bytes.count >= 5 else { return .none }
        let length = Int(bytes[3]) << 8 | Int(bytes[4])
        guard bytes[0] == 22 else { return .some(nil) }  // a handshake record
        guard bytes.count >= 5 + length else { return .none }
        let body = Array(bytes[5..<5 + length])
        // type(1) length(3) legacy_version(2) random(32) session_id_length(1) session_id cipher_suite(2)
        let sessionIDAt = 1 + 3 + 2 + 32
        guard body.first == 2, body.count > sessionIDAt else { return .some(nil) }
        let suiteAt = sessionIDAt + 1 + Int(body[sessionIDAt])
        guard body.count >= suiteAt + 2 else { return .some(nil) }
        return .some(UInt16(body[suiteAt]) << 8 | UInt16(body[suiteAt + 1]))
    }
}
