import BurrowAPI
import BurrowProfile
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// burrowd's HTTPS listener (`[transport.http]`) for real: certificates made
/// by openssl in a temporary directory, curl and `openssl s_client` as
/// clients. TLS 1.3 only, the configured suites only, client certificates
/// from the configured CA only; no caller is authenticated yet (401).
@Suite(
    .serialized, .requires(.rootInInitialUserNamespace), .requires(.installed("/usr/bin/openssl")), .requires(.installed("/usr/bin/curl")),
    .timeLimit(.minutes(2)))
struct HTTPSListenerTests {
    let directory: String

    init() throws {
        directory = try Subprocess.temporaryDirectory()
    }

    func openssl(_ arguments: [String]) throws {
        let r = try Subprocess.run(["/usr/bin/openssl"] + arguments, directory: directory)
        try #require(r.status == 0, "openssl \(arguments.joined(separator: " ")): \(r.stderr)")
    }

    /// A CA, and a certificate it signs: `name`.pem and `name`.key (EC P-256).
    func certificates() throws {
        for ca in ["ca", "otherca"] {
            try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(ca).key", "-out", "\(ca).pem", "-days", "2", "-subj", "/CN=\(ca)"])
        }
        for (name, ca, ext) in [("server", "ca", "subjectAltName=IP:127.0.0.1"), ("client", "ca", "extendedKeyUsage=clientAuth"), ("stranger", "otherca", "extendedKeyUsage=clientAuth")] {
            try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(name)"])
            try "\(ext)\n".write(toFile: directory + "/\(name).ext", atomically: true, encoding: .utf8)
            try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key", "-CAcreateserial", "-out", "\(name).pem", "-days", "2", "-extfile", "\(name).ext"])
        }
        chmod(directory + "/server.key", 0o600)
    }

    /// A port no one listens on now.
    func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try #require(bind(fd, sa, length) == 0 && getsockname(fd, sa, &length) == 0)
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func startDaemon(port: Int, clientAuth: String = "require") throws -> Subprocess.Running {
        let policy = directory + "/burrow.toml"
        try """
        [transport.http]
        listen = ["127.0.0.1:\(port)"]
        tls_cert = "\(directory)/server.pem"
        tls_key = "\(directory)/server.key"
        client_auth = "\(clientAuth)"
        client_ca = "\(directory)/ca.pem"
        """.write(toFile: policy, atomically: true, encoding: .utf8)
        return try Subprocess.start([Subprocess.burrowd, "--policy", policy, "--socket", directory + "/burrowd.sock", "--audit-db", directory + "/audit.db"])
    }

    func waitForPort(_ port: Int) {
        for _ in 0..<200 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let ok = withUnsafePointer(to: &address) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
            close(fd)
            if ok { return }
            usleep(25_000)
        }
    }

    func curl(_ port: Int, _ extra: [String]) throws -> Subprocess.Result {
        try Subprocess.run(
            ["/usr/bin/curl", "-sS", "--cacert", directory + "/ca.pem", "-w", "\n%{http_code}", "https://127.0.0.1:\(port)/v1/health"] + extra, directory: directory)
    }

    @Test(
        "TLS 1.3 with a client certificate from the configured CA reaches the API (401: no authentication method yet); no certificate, another CA's, TLS 1.2 and a suite not configured are refused in the handshake"
    )
    func listener() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try certificates()
        let port = try freePort()
        let daemon = try startDaemon(port: port)
        defer {
            kill(daemon.pid, SIGTERM)
            _ = try? daemon.finish()
        }
        waitForPort(port)
        let ok = try curl(port, ["--cert", "client.pem", "--key", "client.key"])
        #expect(ok.output.hasSuffix("\n401"), "\(ok.output)\(ok.stderr)")
        #expect(ok.output.contains("\"unauthenticated\""), "\(ok.output)")
        for (what, extra) in [
            ("no client certificate", [String]()), ("another CA's certificate", ["--cert", "stranger.pem", "--key", "stranger.key"]),
            ("TLS 1.2", ["--cert", "client.pem", "--key", "client.key", "--tls-max", "1.2"]),
        ] {
            let refused = try curl(port, extra)
            #expect(refused.status != 0 && !refused.output.hasSuffix("401"), "\(what): \(refused.output) \(refused.stderr)")
        }
        // The suites: AES-256 and ChaCha20 by default, never AES-128.
        func handshake(_ suite: String) throws -> Subprocess.Result {
            try Subprocess.run(
                [
                    "/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-tls1_3", "-ciphersuites", suite, "-CAfile", "ca.pem", "-cert", "client.pem", "-key",
                    "client.key", "-brief", "-ign_eof",
                ], stdin: Data("GET /v1/health HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".utf8), directory: directory)
        }
        let strong = try handshake("TLS_AES_256_GCM_SHA384")
        #expect(strong.stderr.contains("TLS_AES_256_GCM_SHA384") && strong.output.contains("401"), "\(strong.output)\(strong.stderr)")
        let weak = try handshake("TLS_AES_128_GCM_SHA256")
        #expect(!weak.output.contains("401") && weak.stderr.lowercased().contains("handshake failure"), "\(weak.output)\(weak.stderr)")
    }

    @Test("a private key others may read stops burrowd from starting, saying how to fix it")
    func readableKey() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try certificates()
        chmod(directory + "/server.key", 0o644)
        let daemon = try startDaemon(port: try freePort())
        let result = try daemon.finish()
        #expect(result.status != 0 && result.stderr.contains("chmod 600"), "\(result.stderr)")
    }

    @Test("the policy refuses TLS below 1.3, suites that are not TLS 1.3's, a listener without a key, and client_auth without a CA")
    func policy() throws {
        func refused(_ text: String) -> Bool {
            (try? HostPolicy.decode(try ConfigValue.parse(text, format: .toml, file: "p.toml"), file: "p.toml")) == nil
        }
        let base = "[transport.http]\nlisten = [\"127.0.0.1:8443\"]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\nclient_auth = \"none\"\n"
        #expect(!refused(base))
        #expect(refused(base + "min_version = \"1.2\""))
        #expect(refused(base + "cipher_suites = [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]"))
        #expect(refused("[transport.http]\nlisten = [\"127.0.0.1:8443\"]\nclient_auth = \"none\""))
        #expect(refused(base.replacingOccurrences(of: "client_auth = \"none\"", with: "client_auth = \"require\"")))
        for bad in ["localhost:8443", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "[::1]8443", "1.2.3:80"] {
            #expect(refused(base.replacingOccurrences(of: "127.0.0.1:8443", with: bad)), "\(bad)")
        }
        #expect(HostPolicy.Transport.HTTP.address("[::1]:8443")?.host == "::1")
        #expect(HostPolicy.defaults.transport.http.listen.isEmpty, "off by default")
    }
}
