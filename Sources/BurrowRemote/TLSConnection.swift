import BurrowAPI
import CSSL

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking TLS 1.3 client connection (OpenSSL's libssl) to burrowd's
/// HTTPS listener: the server's certificate verified against `caFile` (or
/// the system's roots) and for the host or IP address connected to; a
/// client certificate when one is given.
final class TLSConnection {
    struct Options: Sendable {
        var caFile: String?
        var certificateFile: String?
        var keyFile: String?
    }

    typealias Failure = UnixHTTPClient.Failure

    private let fd: Int32
    private let context: OpaquePointer
    private let ssl: OpaquePointer

    init(host: String, port: Int, options: Options) throws(Failure) {
        // libssl writes with write(2): a connection burrowd closed must be an error here, not SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        ERR_clear_error()
        fd = try Self.connect(host: host, port: port)
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            close(fd)
            throw Failure(description: "TLS: \(Self.errors())")
        }
        self.context = context
        // The context is set up before the connection is made from it: SSL_new copies its verify mode.
        let configured = Result { () throws(Failure) in try Self.configure(context, options: options) }
        guard case .success = configured, let ssl = SSL_new(context) else {
            SSL_CTX_free(context)
            close(fd)
            if case .failure(let failure) = configured { throw failure }
            throw Failure(description: "TLS: \(Self.errors())")
        }
        self.ssl = ssl
        try bind(host: host)
        ERR_clear_error()
        guard SSL_connect(ssl) == 1 else {
            let verify = SSL_get_verify_result(ssl)
            let why = verify == X509_V_OK ? Self.errors() : "the server's certificate: " + String(cString: X509_verify_cert_error_string(verify))
            throw Failure(description: "TLS handshake with \(host):\(port) failed: \(why)")
        }
    }

    deinit {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
        SSL_free(ssl)
        SSL_CTX_free(context)
        close(fd)
    }

    private static func configure(_ context: OpaquePointer, options: Options) throws(Failure) {
        // TLS 1.3 only, as burrowd speaks it.
        guard SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_3_VERSION), nil) == 1 else { throw Failure(description: "TLS: \(errors())") }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        if let ca = options.caFile {
            guard SSL_CTX_load_verify_locations(context, ca, nil) == 1 else { throw Failure(description: "\(ca): not a CA certificate file (PEM): \(Self.errors())") }
        } else {
            guard SSL_CTX_set_default_verify_paths(context) == 1 else { throw Failure(description: "TLS: the system's CA certificates: \(Self.errors())") }
        }
        if let cert = options.certificateFile {
            let key = options.keyFile ?? cert
            guard SSL_CTX_use_certificate_chain_file(context, cert) == 1 else { throw Failure(description: "\(cert): not a certificate chain (PEM): \(Self.errors())") }
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1, SSL_CTX_check_private_key(context) == 1 else {
                throw Failure(description: "\(key): not the private key (PEM) of \(cert): \(Self.errors())")
            }
        }
    }

    /// The socket, and the host or address the server's certificate must name.
    private func bind(host: String) throws(Failure) {
        guard SSL_set_fd(ssl, fd) == 1 else { throw Failure(description: "TLS: \(Self.errors())") }
        var address = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, host, &address) == 1 || inet_pton(AF_INET6, host, &address) == 1 {
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 else { throw Failure(description: "TLS: \(Self.errors())") }
        } else {
            // The name checked in the certificate, and sent as SNI.
            let sni = host.withCString { name in SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: name)) }
            guard SSL_set1_host(ssl, host) == 1, sni == 1 else { throw Failure(description: "TLS: \(Self.errors())") }
        }
    }

    func write(_ bytes: [UInt8]) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            let n = bytes[offset...].withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
            guard n > 0 else {
                let why = Self.errors()
                // burrowd may have refused the connection (its alert is waiting to be read): say that, not EPIPE.
                var pending = [UInt8](repeating: 0, count: 512)
                _ = try read(&pending)
                throw Failure(description: "writing the request: \(why)")
            }
            offset += Int(n)
        }
    }

    /// Reads into the front of `buffer`; 0 once burrowd has closed the
    /// connection properly (close_notify). A connection cut without one is
    /// an error: a body could have been truncated.
    func read(_ buffer: inout [UInt8]) throws(Failure) -> Int {
        ERR_clear_error()
        let n = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
        if n > 0 { return Int(n) }
        if SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN { return 0 }
        let why = Self.errors()
        // TLS 1.3: burrowd judges the client's certificate after the client's side of the handshake, so its refusal comes here.
        if why.contains("alert certificate required") { throw Failure(description: "burrowd requires a client certificate: give --cert and --key (\(why))") }
        if why.contains("alert") { throw Failure(description: "burrowd refused the TLS connection: \(why)") }
        throw Failure(description: "reading the response: \(why) (the connection was cut)")
    }

    /// A TCP connection to `host` (a name or an address) and `port`.
    private static func connect(host: String, port: Int) throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &found)
        guard rc == 0, let first = found else { throw Failure(description: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(found) }
        var lastError = ECONNREFUSED
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let a = entry {
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.ai_protocol)
            if fd >= 0 {
                if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
                lastError = errno
                close(fd)
            }
            entry = a.pointee.ai_next
        }
        throw Failure(description: "cannot connect to burrowd at \(host):\(port): \(String(cString: strerror(lastError)))")
    }

    /// OpenSSL's error queue, as text (and emptied).
    private static func errors() -> String {
        var texts: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            texts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return texts.isEmpty ? "unknown error" : texts.joined(separator: "; ")
    }
}
