import BurrowAPI
import BurrowAudit
import BurrowJSON
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
/// from the configured CA only, named `cert:CN` and given the roles that
/// name them; every refusal audited; SIGHUP swaps the certificate.
@Suite(
    .serialized, .requires(.rootInInitialUserNamespace), .requires(.installed("/usr/bin/openssl")), .requires(.installed("/usr/bin/curl")),
    .timeLimit(.minutes(2)))
final class HTTPSListenerTests {
    let directory: String
    /// The burrowd `serve` started: stopped, and the directory removed, when the test ends.
    private var running: Subprocess.Running?

    init() throws {
        directory = try Subprocess.temporaryDirectory()
    }

    deinit {
        if let running {
            kill(running.pid, SIGTERM)
            _ = try? running.finish()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Certificates made, and burrowd serving HTTPS on a free port with this policy.
    func serve(clientAuth: String = "require", invokers: String = "\"cert:registry\"", extra: String = "") throws -> (port: Int, daemon: Subprocess.Running) {
        try certificates()
        let port = try freePort()
        let daemon = try startDaemon(port: port, clientAuth: clientAuth, invokers: invokers, extra: extra)
        running = daemon
        waitForPort(port)
        return (port, daemon)
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
        for (name, ca, ext) in [
            ("server", "ca", "subjectAltName=IP:127.0.0.1"), ("server2", "ca", "subjectAltName=IP:127.0.0.1"), ("client", "ca", "extendedKeyUsage=clientAuth"),
            ("registry", "ca", "extendedKeyUsage=clientAuth"), ("stranger", "otherca", "extendedKeyUsage=clientAuth"), ("serveronly", "ca", "extendedKeyUsage=serverAuth"),
        ] {
            try sign(name, ca: ca, ext: ext)
        }
        // An expired one: openssl ca can date a certificate in the past.
        try "extendedKeyUsage=clientAuth\n".write(toFile: directory + "/expired.ext", atomically: true, encoding: .utf8)
        try """
        [ca]
        default_ca = d
        [d]
        database = index.txt
        new_certs_dir = .
        serial = serial
        default_md = sha256
        policy = p
        [p]
        commonName = supplied
        """.write(toFile: directory + "/ca.cnf", atomically: true, encoding: .utf8)
        try "".write(toFile: directory + "/index.txt", atomically: true, encoding: .utf8)
        try "1000\n".write(toFile: directory + "/serial", atomically: true, encoding: .utf8)
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=registry"])
        try openssl([
            "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", "expired.csr", "-out", "expired.pem", "-notext", "-startdate",
            "20200101000000Z", "-enddate", "20200102000000Z", "-extfile", "expired.ext",
        ])
        for name in ["server", "server2"] { chmod(directory + "/\(name).key", 0o600) }
    }

    func sign(_ name: String, ca: String, ext: String) throws {
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(name)"])
        try "\(ext)\n".write(toFile: directory + "/\(name).ext", atomically: true, encoding: .utf8)
        try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key", "-CAcreateserial", "-out", "\(name).pem", "-days", "2", "-extfile", "\(name).ext"])
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

    func startDaemon(port: Int, clientAuth: String = "require", invokers: String = "\"cert:registry\"", extra: String = "") throws -> Subprocess.Running {
        let policy = directory + "/burrow.toml"
        try """
        [daemon]
        invokers = [\(invokers)]
        [audit]
        denial_window = "1ms"
        [transport.http]
        listen = ["127.0.0.1:\(port)"]
        tls_cert = "\(directory)/server.pem"
        tls_key = "\(directory)/server.key"
        client_auth = "\(clientAuth)"
        client_ca = "\(directory)/ca.pem"
        allowed_origins = ["https://app.example"]
        \(extra)
        """.write(toFile: policy, atomically: true, encoding: .utf8)
        return try Subprocess.start(
            [
                Subprocess.burrowd, "--policy", policy, "--socket", directory + "/burrowd.sock", "--audit-db", directory + "/audit.db",
                "--registry-db", directory + "/registry.db",
            ], environment: ["BURROW_PROFILE_PATH": Fixtures.profilesDirectory])
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

    /// Sends burrowd SIGHUP; whether its log says `text` within 5 s.
    func reload(_ daemon: Subprocess.Running, until text: String) -> Bool {
        kill(daemon.pid, SIGHUP)
        for _ in 0..<200 {
            if daemon.errorSoFar.contains(text) { return true }
            usleep(25_000)
        }
        return false
    }

    func curl(_ port: Int, _ extra: [String], path: String = "/v1/health") throws -> Subprocess.Result {
        try Subprocess.run(
            ["/usr/bin/curl", "-sS", "--cacert", directory + "/ca.pem", "-w", "\n%{http_code}", "https://127.0.0.1:\(port)\(path)"] + extra, directory: directory)
    }

    /// The PermissionDenied events burrowd wrote, by reason.
    func denials() throws -> [String: [AuditEvent]] {
        let store = try AuditStore(.init(path: directory + "/audit.db", redactor: try Redactor()), access: .read)
        return Dictionary(grouping: try store.events(AuditQuery(types: [.permissionDenied]))) { $0.details["reason"]?.stringValue ?? "" }
    }

    /// The serial of the certificate the listener presents now.
    func servedSerial(_ port: Int) throws -> String {
        let r = try Subprocess.run(
            [
                "/bin/sh", "-c",
                "/usr/bin/openssl s_client -connect 127.0.0.1:\(port) -tls1_3 -CAfile ca.pem -cert client.pem -key client.key </dev/null 2>/dev/null | /usr/bin/openssl x509 -noout -serial",
            ], directory: directory)
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func serial(_ file: String) throws -> String {
        try Subprocess.run(["/usr/bin/openssl", "x509", "-noout", "-serial", "-in", file], directory: directory).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(
        "TLS 1.3 with a client certificate from the configured CA names the caller cert:CN, with the roles that name it; no certificate, another CA's, an expired one, a server-only one, TLS 1.2 and a suite not configured are refused in the handshake, and audited"
    )
    func listener() throws {
        let (port, _) = try serve()
        // A certificate the roles do not name: known, but allowed nothing.
        let known = try curl(port, ["--cert", "client.pem", "--key", "client.key"])
        #expect(known.output.hasSuffix("\n200"), "\(known.output)\(known.stderr)")
        let health = try JSONDecoder().decode(HealthResponse.self, from: Data(known.output.split(separator: "\n").dropLast().joined(separator: "\n").utf8))
        #expect(health.caller.principal == "cert:client" && health.caller.roles.isEmpty && health.caller.uid == nil && health.caller.authentication == "mtls")
        #expect(health.caller.address == "127.0.0.1")
        #expect(try curl(port, ["--cert", "client.pem", "--key", "client.key"], path: "/v1/tools").output.hasSuffix("\n403"))
        // [auth] methods is mtls alone: a bearer token is refused, never passed over for the certificate.
        let bearer = try curl(port, ["--cert", "registry.pem", "--key", "registry.key", "-H", "Authorization: Bearer bk_0123456789abcdef_" + String(repeating: "A", count: 43)])
        #expect(bearer.output.hasSuffix("\n401") && bearer.output.contains("does not accept API keys"), "\(bearer.output)")
        // cert:registry is an invoker.
        let registry = try curl(port, ["--cert", "registry.pem", "--key", "registry.key"], path: "/v1/tools")
        #expect(registry.output.hasSuffix("\n200"), "\(registry.output)\(registry.stderr)")
        for (what, extra) in [
            ("no client certificate", [String]()), ("another CA's certificate", ["--cert", "stranger.pem", "--key", "stranger.key"]),
            ("an expired certificate", ["--cert", "expired.pem", "--key", "expired.key"]),
            ("a certificate for servers only", ["--cert", "serveronly.pem", "--key", "serveronly.key"]),
            ("TLS 1.2", ["--cert", "client.pem", "--key", "client.key", "--tls-max", "1.2"]),
        ] {
            let refused = try curl(port, extra)
            #expect(refused.status != 0 && !refused.output.hasSuffix("200") && !refused.output.hasSuffix("401"), "\(what): \(refused.output) \(refused.stderr)")
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
        #expect(strong.stderr.contains("TLS_AES_256_GCM_SHA384") && strong.output.contains("200 OK"), "\(strong.output)\(strong.stderr)")
        let weak = try handshake("TLS_AES_128_GCM_SHA256")
        #expect(!weak.output.contains("200 OK") && weak.stderr.lowercased().contains("handshake failure"), "\(weak.output)\(weak.stderr)")
        // Every refused handshake is a PermissionDenied of the address (written as it happens: poll a moment).
        var refusals: [AuditEvent] = []
        for _ in 0..<100 {
            refusals = try denials()["tls_handshake_failed"] ?? []
            if refusals.count >= 6 { break }
            usleep(50_000)
        }
        let messages = refusals.compactMap { $0.details["message"]?.stringValue }
        #expect(refusals.count == 6, "\(messages)")
        #expect(refusals.allSatisfy { $0.context.principal == "anonymous" && $0.context.uid == nil && $0.details["address"]?.stringValue == "127.0.0.1" })
        #expect(messages.contains { $0.contains("TLS_AES_128_GCM_SHA256") }, "\(messages)")
        #expect(messages.contains { $0.contains("CERTIFICATE_VERIFY_FAILED") || $0.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") }, "\(messages)")
        #expect(try denials()["role_required"]?.first?.context.principal == "cert:client")
    }

    @Test(
        "every answer carries the security headers; a browser origin the policy does not list is refused (and audited), a listed one gets CORS headers and its preflight; optional client certificates: without one, 401"
    )
    func headersAndOrigins() throws {
        let (port, _) = try serve(clientAuth: "optional")
        let cert = ["--cert", "registry.pem", "--key", "registry.key", "-D", "-"]
        let ok = try curl(port, cert, path: "/v1/tools")
        for header in ["strict-transport-security: max-age=", "x-content-type-options: nosniff", "x-frame-options: DENY", "referrer-policy: no-referrer", "cache-control: no-store"] {
            #expect(ok.output.lowercased().contains(header.lowercased()), "\(header): \(ok.output)")
        }
        // Without a certificate: unauthenticated, with the headers too.
        let anonymous = try curl(port, ["-D", "-"], path: "/v1/tools")
        #expect(anonymous.output.hasSuffix("\n401") && anonymous.output.lowercased().contains("x-frame-options: deny"), "\(anonymous.output)")
        let evil = try curl(port, cert + ["-H", "Origin: https://evil.example"], path: "/v1/tools")
        #expect(evil.output.hasSuffix("\n403") && evil.output.contains("allowed_origins") && !evil.output.lowercased().contains("access-control-allow-origin"), "\(evil.output)")
        let listed = try curl(port, cert + ["-H", "Origin: https://app.example"], path: "/v1/tools")
        #expect(listed.output.hasSuffix("\n200") && listed.output.lowercased().contains("access-control-allow-origin: https://app.example"), "\(listed.output)")
        let preflight = try curl(
            port, cert + ["-X", "OPTIONS", "-H", "Origin: https://app.example", "-H", "Access-Control-Request-Method: POST", "-H", "Access-Control-Request-Headers: content-type"],
            path: "/v1/tools")
        #expect(preflight.output.hasSuffix("\n204") && preflight.output.lowercased().contains("access-control-allow-methods: get, post, delete"), "\(preflight.output)")
        // A preflight carries no credential: answered without one (client_auth = optional here).
        let bare = try curl(
            port, ["-D", "-", "-X", "OPTIONS", "-H", "Origin: https://app.example", "-H", "Access-Control-Request-Method: POST"], path: "/v1/tools")
        #expect(bare.output.hasSuffix("\n204"), "\(bare.output)")
        let badPreflight = try curl(
            port, cert + ["-X", "OPTIONS", "-H", "Origin: https://app.example", "-H", "Access-Control-Request-Method: PATCH"], path: "/v1/tools")
        #expect(badPreflight.output.hasSuffix("\n403"), "\(badPreflight.output)")
        let d = try denials()
        #expect(d["origin_refused"]?.first?.context.principal == "cert:registry" && d["origin_refused"]?.count == 2)
        #expect(d["unauthenticated"]?.first?.context.principal == "anonymous" && d["unauthenticated"]?.first?.details["address"]?.stringValue == "127.0.0.1")
    }

    @Test("SIGHUP swaps the certificate for new connections; a broken key is refused and the serving certificate stays")
    func reload() throws {
        let (port, daemon) = try serve()
        let (first, second) = (try serial("server.pem"), try serial("server2.pem"))
        #expect(try servedSerial(port) == first)
        // A key that is not one: refused, and the first certificate still serves.
        try FileManager.default.copyItem(atPath: directory + "/server.key", toPath: directory + "/server.key.good")
        try "not a key\n".write(toFile: directory + "/server.key", atomically: false, encoding: .utf8)
        #expect(reload(daemon, until: "not reloaded"), "\(daemon.errorSoFar)")
        #expect(try servedSerial(port) == first)
        // The second certificate and its key: new connections see it.
        for (from, to) in [("server2.pem", "server.pem"), ("server2.key", "server.key")] {
            _ = try FileManager.default.removeItem(atPath: directory + "/" + to)
            try FileManager.default.copyItem(atPath: directory + "/" + from, toPath: directory + "/" + to)
        }
        #expect(reload(daemon, until: "reloaded; new connections"), "\(daemon.errorSoFar)")
        #expect(try servedSerial(port) == second && first != second)
    }

    @Test(
        "API keys: made on the host by burrow keys, shown once, carry their roles as key:<id>; a wrong secret, a malformed token, a revoked or expired key get 401, each audited; a remote caller cannot manage keys"
    )
    func apiKeys() throws {
        let (port, _) = try serve(clientAuth: "optional", extra: "[auth]\nmethods = [\"mtls\", \"api_key\"]")
        func keys(_ arguments: [String]) throws -> Subprocess.Result {
            try Subprocess.run([Subprocess.burrow, "keys"] + arguments + ["--socket", directory + "/burrowd.sock"], directory: directory)
        }
        let made = try keys(["create", "--name", "registry-eu", "--role", "invoker", "--expires", "1h"])
        try #require(made.status == 0, "\(made.stderr)")
        let secret = made.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let id = String(secret.dropFirst(3).prefix(16))
        #expect(secret.hasPrefix("bk_") && secret.count == 63 && made.stderr.contains("shown only now"), "\(made.output)\(made.stderr)")
        func bearer(_ token: String, _ path: String = "/v1/health", _ extra: [String] = []) throws -> Subprocess.Result {
            try curl(port, ["-H", "Authorization: Bearer \(token)"] + extra, path: path)
        }
        let health = try bearer(secret)
        #expect(health.output.hasSuffix("\n200"), "\(health.output)")
        let caller = try JSONDecoder().decode(HealthResponse.self, from: Data(health.output.split(separator: "\n").dropLast().joined(separator: "\n").utf8)).caller
        #expect(caller.principal == "key:\(id)" && caller.roles == ["invoker"] && caller.authentication == "api_key", "\(caller)")
        #expect(try bearer(secret, "/v1/tools").output.hasSuffix("\n200"))
        // Its roles only: registering needs admin.
        #expect(try bearer(secret, "/v1/tools", ["-X", "POST", "-d", "{}"]).output.hasSuffix("\n403"))
        // A wrong secret (the last character changed) and a token that is not a key.
        let wrong = String(secret.dropLast()) + (secret.hasSuffix("A") ? "B" : "A")
        let refusedWrong = try bearer(wrong)
        #expect(refusedWrong.output.hasSuffix("\n401") && refusedWrong.output.contains("not valid"), "\(refusedWrong.output)")
        #expect(try bearer("eyJhbGciOiJub25lIn0.e30.").output.hasSuffix("\n401"))
        // A remote caller, even with admin's key, cannot make keys.
        let admin = try keys(["create", "--name", "ops", "--role", "admin", "--role", "invoker", "--expires", "1h"])
        let adminSecret = admin.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let remoteCreate = try bearer(adminSecret, "/v1/keys", ["-X", "POST", "-H", "Content-Type: application/json", "-d", #"{"name":"x","roles":["invoker"],"expiresInSeconds":60}"#])
        #expect(remoteCreate.output.hasSuffix("\n403") && remoteCreate.output.contains("burrow keys"), "\(remoteCreate.output)")
        // Runner is never a key's; an over-long life is refused.
        #expect(try keys(["create", "--name", "r", "--role", "runner"]).status != 0)
        #expect(try keys(["create", "--name", "r", "--role", "invoker", "--expires", "400d"]).stderr.contains("max_key_lifetime"))
        // Revoked: refused from the next request on, and listed so.
        let revoked = try keys(["revoke", id])
        #expect(revoked.status == 0 && revoked.output.contains("revoked \(id)"), "\(revoked.output)\(revoked.stderr)")
        #expect(try bearer(secret).output.hasSuffix("\n401"))
        #expect(try keys(["list"]).output.contains("registry-eu"))
        // Expired.
        let brief = try keys(["create", "--name", "brief", "--role", "invoker", "--expires", "1s"])
        let briefSecret = brief.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try bearer(briefSecret).output.hasSuffix("\n200"))
        usleep(1_100_000)
        #expect(try bearer(briefSecret).output.hasSuffix("\n401"))
        // The audit log: what was issued and revoked, and why each key was refused (never a secret).
        let store = try AuditStore(.init(path: directory + "/audit.db", redactor: try Redactor()), access: .read)
        #expect(try store.events(AuditQuery(types: [.credentialIssued])).count == 3)
        #expect(try store.events(AuditQuery(types: [.credentialRevoked])).first?.details["id"]?.stringValue == id)
        let reasons = (try denials()["bad_credential"] ?? []).compactMap { $0.details["message"]?.stringValue }
        for expected in ["does not match", "not an API key", "was revoked", "has expired"] {
            #expect(reasons.contains { $0.contains(expected) }, "\(expected): \(reasons)")
        }
        let all = try store.events(AuditQuery()).map { $0.details.canonicalText }.joined()
        #expect(!all.contains(String(secret.dropFirst(20))) && !all.contains(String(briefSecret.dropFirst(20))))
    }

    /// Unpadded base64url.
    static func base64URL(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// A JWT signed independently of burrowd: HS256 by python's hmac, EdDSA by openssl.
    func jwt(_ header: String, _ payload: String, ed25519 key: String? = nil) throws -> String {
        let input = Self.base64URL(header.utf8) + "." + Self.base64URL(payload.utf8)
        if let key {
            try input.write(toFile: directory + "/jwt.input", atomically: false, encoding: .utf8)
            try openssl(["pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", "jwt.input", "-out", "jwt.sig"])
            return input + "." + Self.base64URL(try Data(contentsOf: URL(fileURLWithPath: directory + "/jwt.sig")))
        }
        return input + "." + (try hs256(input, keyFile: "hs.secret"))
    }

    /// HMAC-SHA256 by python, in base64url: the key is the file's bytes less trailing newlines.
    func hs256(_ input: String, keyFile: String) throws -> String {
        let code = [
            "import base64, hashlib, hmac, sys", "key = open(sys.argv[2], 'rb').read().rstrip(b'\\n')",
            "print(base64.urlsafe_b64encode(hmac.new(key, sys.argv[1].encode(), hashlib.sha256).digest()).rstrip(b'=').decode())",
        ]
        let r = try Subprocess.run(["/usr/bin/python3", "-c", code.joined(separator: "\n"), input, directory + "/" + keyFile])
        try #require(r.status == 0, "\(r.stderr)")
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// An Ed25519 key made by openssl, and its JWK (`kid`).
    func ed25519(_ name: String) throws -> String {
        try openssl(["genpkey", "-algorithm", "ed25519", "-out", "\(name).key"])
        try openssl(["pkey", "-in", "\(name).key", "-pubout", "-outform", "DER", "-out", "\(name).der"])
        let x = Self.base64URL(try Data(contentsOf: URL(fileURLWithPath: directory + "/\(name).der")).suffix(32))
        return #"{"kty": "OKP", "crv": "Ed25519", "kid": "\#(name)", "x": "\#(x)"}"#
    }

    @Test(
        "JWTs (HS256 signed by python's hmac, EdDSA by openssl): jwt:<sub> with the roles that name it; alg none, HS256 over the public key, a wrong audience, an expired token are 401 and audited; SIGHUP reads a rotated JWKS"
    )
    func jwts() throws {
        try "a-secret-of-more-than-thirty-two-bytes-for-the-test\n".write(toFile: directory + "/hs.secret", atomically: false, encoding: .utf8)
        chmod(directory + "/hs.secret", 0o600)
        try #"{"keys": [\#(try ed25519("ed1"))]}"#.write(toFile: directory + "/jwks.json", atomically: false, encoding: .utf8)
        let (port, daemon) = try serve(
            clientAuth: "optional", invokers: "\"jwt:alice\"",
            extra: """
                [auth]
                methods = ["mtls", "jwt"]
                [auth.jwt]
                issuer = "https://idp.example"
                audience = "burrowd"
                hs256_secret = "\(directory)/hs.secret"
                jwks = "\(directory)/jwks.json"
                """)
        let now = Int(Date().timeIntervalSince1970)
        func claims(sub: String = "alice", aud: String = "burrowd", exp: Int = 600) -> String {
            #"{"iss": "https://idp.example", "aud": "\#(aud)", "sub": "\#(sub)", "iat": \#(now), "exp": \#(now + exp)}"#
        }
        func bearer(_ token: String, _ path: String = "/v1/health") throws -> Subprocess.Result {
            try curl(port, ["-H", "Authorization: Bearer \(token)"], path: path)
        }
        func caller(_ r: Subprocess.Result) throws -> HealthResponse.Caller {
            try JSONDecoder().decode(HealthResponse.self, from: Data(r.output.split(separator: "\n").dropLast().joined(separator: "\n").utf8)).caller
        }
        let alice = try bearer(try jwt(#"{"alg":"HS256","typ":"JWT"}"#, claims()))
        #expect(alice.output.hasSuffix("\n200"), "\(alice.output)")
        let a = try caller(alice)
        #expect(a.principal == "jwt:alice" && a.roles == ["invoker"] && a.authentication == "jwt", "\(a)")
        #expect(try bearer(try jwt(#"{"alg":"HS256"}"#, claims()), "/v1/tools").output.hasSuffix("\n200"))
        let bob = try bearer(try jwt(#"{"alg":"EdDSA","kid":"ed1"}"#, claims(sub: "bob"), ed25519: "ed1.key"))
        #expect(try caller(bob).principal == "jwt:bob" && (try caller(bob).roles.isEmpty))
        #expect(try bearer(try jwt(#"{"alg":"EdDSA","kid":"ed1"}"#, claims(sub: "bob"), ed25519: "ed1.key"), "/v1/tools").output.hasSuffix("\n403"))
        // Refused, each audited with its reason.
        let none = Self.base64URL(#"{"alg":"none"}"#.utf8) + "." + Self.base64URL(claims().utf8) + "."
        let publicKey = try String(contentsOfFile: directory + "/jwks.json", encoding: .utf8)
        try publicKey.write(toFile: directory + "/confusion.secret", atomically: false, encoding: .utf8)
        let confusedInput = Self.base64URL(#"{"alg":"HS256","kid":"ed1"}"#.utf8) + "." + Self.base64URL(claims().utf8)
        let confused = confusedInput + "." + (try hs256(confusedInput, keyFile: "confusion.secret"))
        for token in [none, confused, try jwt(#"{"alg":"HS256"}"#, claims(aud: "other")), try jwt(#"{"alg":"HS256"}"#, claims(exp: -120))] {
            let r = try bearer(token)
            #expect(r.output.hasSuffix("\n401") && r.output.contains("JWT is not valid"), "\(r.output)")
        }
        let reasons = (try denials()["bad_credential"] ?? []).compactMap { $0.details["message"]?.stringValue }
        for expected in ["compact form", "algorithm confusion", "another audience", "expired"] {
            #expect(reasons.contains { $0.contains(expected) }, "\(expected): \(reasons)")
        }
        // A rotated JWKS: SIGHUP reads it; the old key's tokens stop, the new one's work.
        try #"{"keys": [\#(try ed25519("ed2"))]}"#.write(toFile: directory + "/jwks.json", atomically: false, encoding: .utf8)
        #expect(reload(daemon, until: "JWT keys ([auth.jwt] hs256_secret, jwks) reloaded"), "\(daemon.errorSoFar)")
        #expect(try bearer(try jwt(#"{"alg":"EdDSA","kid":"ed2"}"#, claims(), ed25519: "ed2.key")).output.hasSuffix("\n200"))
        #expect(try bearer(try jwt(#"{"alg":"EdDSA","kid":"ed1"}"#, claims(), ed25519: "ed1.key")).output.hasSuffix("\n401"))
    }

    @Test(
        "signed requests (signed with python's hmac, independently): accepted once; a replayed nonce, a skewed timestamp, a changed body, an unsigned request when signing is required are 401 and audited; a full nonce memory is 503, never a forgotten nonce"
    )
    func signedRequests() throws {
        let (port, _) = try serve(clientAuth: "optional", extra: "[auth]\nmethods = [\"mtls\", \"api_key\"]\n[auth.signing]\nrequired = true\nmax_nonces = 3")
        let made = try Subprocess.run(
            [Subprocess.burrow, "keys", "create", "--name", "signer", "--role", "invoker", "--expires", "1h", "--socket", directory + "/burrowd.sock"], directory: directory)
        try #require(made.status == 0, "\(made.stderr)")
        let token = made.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let id = String(token.dropFirst(3).prefix(16))
        try """
        import hashlib, hmac, sys
        token, method, target, body, ts, nonce = sys.argv[1:7]
        key = hmac.new(token[20:].encode(), b"burrow-request-signing-v1", hashlib.sha256).digest()
        text = f"{method}\\n{target}\\n{ts}\\n{nonce}\\n{hashlib.sha256(body.encode()).hexdigest()}\\n".encode()
        print(hmac.new(key, text, hashlib.sha256).hexdigest())
        """.write(toFile: directory + "/sign.py", atomically: true, encoding: .utf8)
        var counter = 0
        /// curl with the four headers: signed over `signedBody`, sending `body`.
        func signed(
            _ method: String, _ target: String, body: String = "", signedBody: String? = nil, timestamp: Int? = nil, nonce: String? = nil
        ) throws -> (Subprocess.Result, [String]) {
            counter += 1
            let ts = String(timestamp ?? Int(Date().timeIntervalSince1970))
            let n = nonce ?? "nonce-\(counter)-abcdefghijklmnop"
            let mac = try Subprocess.run(["/usr/bin/python3", "sign.py", token, method, target, signedBody ?? body, ts, n], directory: directory)
            let headers = ["Burrow-Key: \(id)", "Burrow-Timestamp: \(ts)", "Burrow-Nonce: \(n)", "Burrow-Signature: \(mac.output.trimmingCharacters(in: .whitespacesAndNewlines))"]
            var extra = headers.flatMap { ["-H", $0] } + ["-X", method]
            if !body.isEmpty { extra += ["-H", "Content-Type: application/json", "--data-binary", body] }
            return (try curl(port, extra, path: target), headers)
        }
        // Unsigned: refused, even with a valid key.
        let unsigned = try curl(port, ["-H", "Authorization: Bearer \(token)"], path: "/v1/tools")
        #expect(unsigned.output.hasSuffix("\n401") && unsigned.output.contains("must be signed"), "\(unsigned.output)")
        // Signed, with a query: accepted as key:<id>.
        let (listed, headers) = try signed("GET", "/v1/tools?status=active")
        #expect(listed.output.hasSuffix("\n200"), "\(listed.output)")
        let (health, _) = try signed("GET", "/v1/health")
        #expect(health.output.contains("\"principal\":\"key:\(id)\"") && health.output.contains("signed_key"), "\(health.output)")
        // The same request again: a replay.
        let replay = try curl(port, headers.flatMap { ["-H", $0] }, path: "/v1/tools?status=active")
        #expect(replay.output.hasSuffix("\n401"), "\(replay.output)")
        // Ten minutes off; a body changed after signing; a signature for another path.
        #expect(try signed("GET", "/v1/tools", timestamp: Int(Date().timeIntervalSince1970) - 600).0.output.hasSuffix("\n401"))
        let profile = #"{"profile":"[tool]\nid = \"x\"\nname = \"x\"\nversion = \"1\"\n"}"#
        #expect(try signed("POST", "/v1/security/validate", body: profile, signedBody: "{}").0.output.hasSuffix("\n401"))
        // Signed whole: the body, read to be checked, still reaches the handler.
        let validated = try signed("POST", "/v1/security/validate", body: profile).0
        #expect(validated.output.hasSuffix("\n200") && validated.output.contains("findings"), "\(validated.output)")
        // Three nonces are live (max_nonces = 3): the fourth signed request is refused, not let through by forgetting one.
        let full = try signed("GET", "/v1/health").0
        #expect(full.output.hasSuffix("\n503"), "\(full.output)")
        let reasons = (try denials()["bad_credential"] ?? []).compactMap { $0.details["message"]?.stringValue }
        for expected in ["unsigned request", "replayed request", "from burrowd's clock", "signature does not match", "nonce is still live"] {
            #expect(reasons.contains { $0.contains(expected) }, "\(expected): \(reasons)")
        }
    }

    @Test(
        "client_crl: a revoked certificate is refused in the handshake (audited), a good one passes; SIGHUP reads a new CRL; a stale CRL, one signed by another key, or a CA without one stop burrowd from starting"
    )
    func revocation() throws {
        try certificates()
        func ca(_ arguments: [String], ca: String = "ca") throws {
            try openssl(["ca", "-batch", "-config", "ca.cnf", "-cert", "\(ca).pem", "-keyfile", "\(ca).key"] + arguments)
        }
        try ca(["-gencrl", "-crldays", "1", "-out", "crl.pem"])
        let port = try freePort()
        let daemon = try startDaemon(port: port, extra: "client_crl = \"\(directory)/crl.pem\"")
        running = daemon
        waitForPort(port)
        func status(_ name: String) throws -> String { String(try curl(port, ["--cert", "\(name).pem", "--key", "\(name).key"]).output.suffix(3)) }
        #expect(try status("client") == "200" && (try status("registry")) == "200")
        try ca(["-revoke", "client.pem"])
        try ca(["-gencrl", "-crldays", "1", "-out", "crl.pem"])
        #expect(reload(daemon, until: "CRLs reloaded"), "\(daemon.errorSoFar)")
        #expect(try status("client") == "000", "revoked: no HTTP at all")
        #expect(try status("registry") == "200")
        let refusals = (try denials()["tls_handshake_failed"] ?? []).compactMap { $0.details["message"]?.stringValue }
        #expect(refusals.contains { $0.contains("is revoked") }, "\(refusals)")
        kill(daemon.pid, SIGTERM)
        _ = try daemon.finish()
        running = nil
        // Refused at start: stale, signed by another key under the same name, or no list for the CA.
        try ca(["-gencrl", "-crl_lastupdate", "20200101000000Z", "-crl_nextupdate", "20200102000000Z", "-out", "stale.pem"])
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "evil.key", "-out", "evil.pem", "-days", "2", "-subj", "/CN=ca"])
        try ca(["-gencrl", "-crldays", "1", "-out", "forged.pem"], ca: "evil")
        try ca(["-gencrl", "-crldays", "1", "-out", "other.pem"], ca: "otherca")
        for (file, expected) in [("stale.pem", "is stale"), ("forged.pem", "not signed by its key"), ("other.pem", "no CRL for the CA")] {
            let refused = try startDaemon(port: try freePort(), extra: "client_crl = \"\(directory)/\(file)\"").finish()
            #expect(refused.status != 0 && refused.stderr.contains(expected), "\(file): \(refused.stderr)")
        }
    }

    @Test("client_identity = \"san_dns\": the certificate's one DNS subjectAltName names the caller; a certificate without one is anonymous")
    func alternativeNames() throws {
        try certificates()
        try sign("named", ca: "ca", ext: "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:registry.example")
        let port = try freePort()
        running = try startDaemon(port: port, invokers: "\"cert:registry.example\"", extra: "client_identity = \"san_dns\"")
        waitForPort(port)
        let named = try curl(port, ["--cert", "named.pem", "--key", "named.key"])
        let caller = try JSONDecoder().decode(HealthResponse.self, from: Data(named.output.split(separator: "\n").dropLast().joined(separator: "\n").utf8)).caller
        #expect(caller.principal == "cert:registry.example" && caller.roles == ["invoker"], "\(caller)")
        #expect(try curl(port, ["--cert", "registry.pem", "--key", "registry.key"]).output.hasSuffix("\n401"), "a CN alone names no one here")
    }

    @Test(
        "burrow --url: the CLI over HTTPS, signing every request with an API key (a listener requiring signatures accepts it) or with a client certificate; a CA that is not burrowd's, a host the certificate does not name, and http:// are refused with a clear error"
    )
    func cliOverHTTPS() throws {
        for r in Requirement.sandbox { try r.check() }
        let (port, _) = try serve(
            clientAuth: "optional", invokers: "\"cert:registry\"", extra: "[auth]\nmethods = [\"mtls\", \"api_key\"]\n[auth.signing]\nrequired = true")
        func burrow(_ arguments: [String], environment: [String: String] = [:]) throws -> Subprocess.Result {
            try Subprocess.run([Subprocess.burrow] + arguments, environment: environment, directory: directory)
        }
        let socket = ["--socket", directory + "/burrowd.sock"]
        #expect(try burrow(["tools", "register"] + socket + ["--profile", Fixtures.profilesDirectory + "/minimal.toml", "--version", "1", "--", "sh", "-c"]).status == 0)
        let made = try burrow(["keys", "create", "--name", "cli", "--role", "invoker", "--expires", "1h"] + socket)
        try "\(made.output)".write(toFile: directory + "/key.txt", atomically: false, encoding: .utf8)
        let url = "https://127.0.0.1:\(port)"
        // Signed with the API key: the invocation runs, its output streamed back.
        let invoked = try burrow(["invoke", "--url", url, "--cacert", "ca.pem", "--api-key-file", "key.txt", "minimal", "--", "echo signed"])
        #expect(invoked.status == 0 && invoked.output == "signed\n", "\(invoked.output)\(invoked.stderr)")
        let listed = try burrow(["tools", "list", "--cacert", "ca.pem"], environment: ["BURROW_URL": url, "BURROW_API_KEY": made.output.trimmingCharacters(in: .whitespacesAndNewlines)])
        #expect(listed.status == 0 && listed.output.contains("minimal"), "\(listed.output)\(listed.stderr)")
        // A certificate alone is not a signature, where signatures are required.
        let unsigned = try burrow(["tools", "list", "--url", url, "--cacert", "ca.pem", "--cert", "registry.pem", "--key", "registry.key"])
        #expect(unsigned.status != 0 && unsigned.stderr.contains("must be signed"), "\(unsigned.stderr)")
        let audited = (try denials()["bad_credential"] ?? []).compactMap { $0.details["message"]?.stringValue }
        #expect(audited.contains { $0.contains("unsigned") }, "\(audited)")
        // What the client refuses before any request.
        let otherCA = try burrow(["tools", "list", "--url", url, "--cacert", "otherca.pem", "--api-key-file", "key.txt"])
        #expect(otherCA.status != 0 && otherCA.stderr.contains("TLS handshake") && otherCA.stderr.contains("certificate"), "\(otherCA.stderr)")
        let wrongHost = try burrow(["tools", "list", "--url", "https://localhost:\(port)", "--cacert", "ca.pem", "--api-key-file", "key.txt"])
        #expect(wrongHost.status != 0 && wrongHost.stderr.contains("TLS handshake"), "the certificate names 127.0.0.1 only: \(wrongHost.stderr)")
        #expect(try burrow(["tools", "list", "--url", "http://127.0.0.1:\(port)"]).stderr.contains("HTTPS only"))
        #expect(try burrow(["tools", "list", "--cacert", "ca.pem"] + socket).stderr.contains("go with --url"))
    }

    @Test("burrow --url with a client certificate: mutual TLS names the caller cert:<CN>")
    func cliWithCertificate() throws {
        let (port, _) = try serve()
        let r = try Subprocess.run(
            [Subprocess.burrow, "tools", "list", "--url", "https://127.0.0.1:\(port)", "--cacert", "ca.pem", "--cert", "registry.pem", "--key", "registry.key"], directory: directory)
        #expect(r.status == 0, "\(r.stderr)")
        let none = try Subprocess.run([Subprocess.burrow, "tools", "list", "--url", "https://127.0.0.1:\(port)", "--cacert", "ca.pem"], directory: directory)
        #expect(none.status != 0 && none.stderr.contains("requires a client certificate"), "client_auth = require: \(none.stderr)")
        // A large body written before burrowd's refusal arrives: still that message, never SIGPIPE.
        let big = try Subprocess.run(
            [Subprocess.burrow, "invoke", "minimal", "--url", "https://127.0.0.1:\(port)", "--cacert", "ca.pem", "--stdin", "-", "--", "cat"],
            stdin: Data(repeating: UInt8(ascii: "x"), count: 1 << 20), directory: directory)
        #expect(big.status == 125 && big.stderr.contains("client certificate"), "\(big.status) \(big.stderr)")
    }

    @Test(
        "capability rules per tool: required_auth, allowed_ips, time_windows and requests_per_minute refuse a call of the tool (403 or 429 naming the rule, audited as capability_rule); a call passing them runs"
    )
    func capabilityRules() throws {
        for r in Requirement.sandbox { try r.check() }
        try certificates()
        let weekday = Calendar(identifier: .gregorian).component(.weekday, from: Date())  // 1 is Sunday, in the local zone (UTC here)
        let elsewhen = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][(weekday + 1) % 7]  // two days on: never now, nor last night's overnight
        let variants: [(rules: String, expectations: [(token: Bool, status: String, rule: String?)])] = [
            (
                "required_auth = [\"mtls\", \"local\"]\nallowed_ips = [\"127.0.0.0/8\", \"::1\"]\ntime_windows = [\"Mon-Sun 00:00-24:00\"]\nrequests_per_minute = 12",
                [(false, "200", nil), (true, "403", "required_auth"), (false, "200", nil), (false, "429", "requests_per_minute")]
            ),
            ("allowed_ips = [\"10.0.0.0/8\", \"2001:db8::/32\"]", [(false, "403", "allowed_ips")]),
            ("time_windows = [\"\(elsewhen) 00:00-24:00 UTC\"]", [(false, "403", "time_windows")]),
        ]
        var registered = false
        for (rules, expectations) in variants {
            let port = try freePort()
            let daemon = try startDaemon(
                port: port, clientAuth: "optional",
                extra: "[auth]\nmethods = [\"mtls\", \"api_key\"]\n[capabilities.minimal]\n\(rules)\n[capabilities.\"*\"]\nrequired_auth = [\"mtls\", \"api_key\", \"local\"]")
            running = daemon
            waitForPort(port)
            if !registered {
                let r = try Subprocess.run([
                    Subprocess.burrow, "tools", "register", "--socket", directory + "/burrowd.sock", "--profile", Fixtures.profilesDirectory + "/minimal.toml", "--version", "1", "--", "sh", "-c",
                ])
                try #require(r.status == 0, "\(r.stderr)")
                registered = true
            }
            let key = try Subprocess.run([Subprocess.burrow, "keys", "create", "--name", "k", "--role", "invoker", "--expires", "1h", "--socket", directory + "/burrowd.sock"])
            let token = key.output.trimmingCharacters(in: .whitespacesAndNewlines)
            for (useToken, status, rule) in expectations {
                let credential = useToken ? ["-H", "Authorization: Bearer \(token)"] : ["--cert", "registry.pem", "--key", "registry.key"]
                let r = try curl(
                    port, credential + ["-D", "-", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", #"{"arguments": ["echo ran"]}"#],
                    path: "/v1/tools/minimal/invocations")
                #expect(r.output.hasSuffix("\n" + status), "\(rules) \(useToken): \(r.output)")
                if let rule {
                    #expect(r.output.contains(#"[capabilities.\"minimal\"] "# + rule), "\(r.output)")  // as JSON escapes it
                    if status == "429" { #expect(r.output.lowercased().contains("retry-after: "), "\(r.output)") }
                } else {
                    #expect(r.output.contains("ran"), "\(r.output)")
                }
            }
            kill(daemon.pid, SIGTERM)
            _ = try daemon.finish()
            running = nil
        }
        let audited = (try denials()["capability_rule"] ?? []).compactMap { $0.details["rule"]?.stringValue }
        for rule in ["required_auth", "requests_per_minute", "allowed_ips", "time_windows"] {
            #expect(audited.contains("capabilities.\"minimal\".\(rule)"), "\(rule): \(audited)")
        }
    }

    @Test(
        "over HTTPS with a client certificate, a server's logging notification and sampling request reach the SDK's client on the session's GET stream, and its sampling answer goes back"
    )
    func remoteServerStream() throws {
        for r in Requirement.sandbox { try r.check() }
        let python = "/opt/burrow/venvs/mcp-server-time/bin/python3"
        try Requirement.installed(python).check()
        let (port, _) = try serve()
        let (profile, command) = try Fixtures.streamsServer(in: directory)
        let registered = try Subprocess.run(
            [Subprocess.burrow, "tools", "register", "--socket", directory + "/burrowd.sock", "--profile", profile, "--version", "1", "--"] + command,
            environment: ["BURROW_PROFILE_PATH": Fixtures.profilesDirectory])
        try #require(registered.status == 0, "\(registered.stderr)")
        let url = "https://127.0.0.1:\(port)/v1/tools/mcp-streams/mcp"
        let r = try Subprocess.run([python, Fixtures.repositoryRoot + "/Tests/MCP/streams_client.py", url, "ca.pem", "registry.pem", "registry.key"], directory: directory)
        #expect(r.output.contains(#"ask "sampled: 4""#) && r.output.contains(#"logs ["asking the client", "note 1", "note 2", "note 3"]"#), "\(r.output)\(r.stderr.suffix(2000))")
        // A session-less client has no stream: the server's sampling request is answered with an error at once, and its call completes.
        let ask = #"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"ask","arguments":{"question":"2+2?"}}}"#
        let sessionless = try curl(
            port,
            [
                "--cert", "registry.pem", "--key", "registry.key", "-X", "POST", "--data-binary", ask, "-H", "Content-Type: application/json", "-H", "MCP-Protocol-Version: 2026-07-28",
                "-H", "Mcp-Method: tools/call", "-H", "Mcp-Name: ask", "--max-time", "20",
            ], path: "/v1/tools/mcp-streams/mcp")
        #expect(sessionless.output.hasSuffix("\n200") && sessionless.output.contains("sampled: error") && sessionless.output.contains("no stream for server requests"), "\(sessionless.output)")
    }

    @Test(
        "a remote MCP client (the MCP Python SDK over HTTPS with a client certificate) uses a registered server at /v1/tools/{id}/mcp (the SDK's legacy and auto modes); its session is bound to its principal: another certificate gets 404"
    )
    func remoteMCPClient() throws {
        for r in Requirement.sandbox { try r.check() }
        let python = "/opt/burrow/venvs/mcp-server-time/bin/python3"
        try Requirement.installed(python).check()
        let (port, _) = try serve(extra: "[rate_limits]\nrequests_per_minute = 1000\n[rate_limits.methods]\n\"tools/call\" = 4\n")
        let registered = try Subprocess.run([
            Subprocess.burrow, "tools", "register", "--socket", directory + "/burrowd.sock", "--profile", Fixtures.profilesDirectory + "/mcp-server-time.toml",
            "--version", "1", "--", python, "-m", "mcp_server_time",
        ])
        try #require(registered.status == 0, "\(registered.stderr)")
        let url = "https://127.0.0.1:\(port)/v1/tools/mcp-server-time/mcp"
        for mode in ["legacy", "auto"] {
            let r = try Subprocess.run([python, Fixtures.repositoryRoot + "/Tests/MCP/http_client.py", url, mode, "ca.pem", "registry.pem", "registry.key"], directory: directory)
            #expect(r.output.contains("ok False") && r.output.contains("Europe/Paris"), "\(mode): \(r.output)\(r.stderr.suffix(2000))")
            #expect(r.output.contains("expected string, got integer"), "\(mode): \(r.output)")
            if mode == "legacy" { #expect(r.output.contains("tools ['convert_time', 'get_current_time']"), "\(r.output)") }
            // auto: the session-less era, served by the caller's own implicit session of the tool.
            if mode == "auto" { #expect(r.output.contains("version 2026-07-28"), "\(r.output)") }
        }
        // The session id is the principal's: another certificate's request with it is as if there were none.
        let initialize = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#
        let json = ["-H", "Content-Type: application/json", "-H", "Accept: application/json, text/event-stream", "-D", "-"]
        let started = try curl(port, ["--cert", "registry.pem", "--key", "registry.key", "-X", "POST", "--data-binary", initialize] + json, path: "/v1/tools/mcp-server-time/mcp")
        let sid = try #require(
            started.output.split(separator: "\r\n").first { $0.lowercased().hasPrefix("mcp-session-id:") }.map { String($0.dropFirst(15)).trimmingCharacters(in: .whitespaces) },
            "\(started.output)")
        let list = #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#
        let stranger = try curl(
            port, ["--cert", "client.pem", "--key", "client.key", "-X", "POST", "-H", "Mcp-Session-Id: \(sid)", "--data-binary", list] + json, path: "/v1/tools/mcp-server-time/mcp")
        #expect(stranger.output.hasSuffix("\n404"), "\(stranger.output)")
        let notAnID = try curl(
            port,
            ["--cert", "registry.pem", "--key", "registry.key", "-X", "POST", "-H", "Mcp-Session-Id: \(String(repeating: "\u{7f}", count: 36))", "--data-binary", list]
                + json, path: "/v1/tools/mcp-server-time/mcp")
        #expect(notAnID.output.hasSuffix("\n400"), "\(notAnID.output)")
        let call = #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_current_time","arguments":{"timezone":"UTC"}}}"#
        let owner = try curl(
            port, ["--cert", "registry.pem", "--key", "registry.key", "-X", "POST", "-H", "Mcp-Session-Id: \(sid)", "--data-binary", call] + json,
            path: "/v1/tools/mcp-server-time/mcp")
        // [rate_limits.methods] "tools/call" = 4 per minute: the SDK's two runs took them.
        #expect(owner.output.hasSuffix("\n429") && owner.output.lowercased().contains("retry-after:") && owner.output.contains("rate_limits.methods"), "\(owner.output)")
        // Session-less: the routing headers must say what the body does (-32020 otherwise, audited).
        func modern(_ headers: [String], _ body: String) throws -> String {
            try curl(
                port,
                ["--cert", "registry.pem", "--key", "registry.key", "-X", "POST", "--data-binary", body, "-H", "MCP-Protocol-Version: 2026-07-28"] + json
                    + headers.flatMap { ["-H", $0] }, path: "/v1/tools/mcp-server-time/mcp"
            ).output
        }
        let listing = #"{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#
        let listed = try modern(["Mcp-Method: tools/list"], listing)
        #expect(listed.hasSuffix("\n200") && listed.contains("get_current_time") && !listed.lowercased().contains("mcp-session-id"), "\(listed)")
        let lying = try modern(["Mcp-Method: tools/list"], call)
        #expect(lying.hasSuffix("\n400") && lying.contains("-32020"), "\(lying)")
        let misnamed = try modern(["Mcp-Method: tools/call", "Mcp-Name: convert_time"], call)
        #expect(misnamed.hasSuffix("\n400") && misnamed.contains("Mcp-Name"), "\(misnamed)")
        #expect(try modern(["Mcp-Method: tools/call"], call).hasSuffix("\n400"), "no Mcp-Name")
        // A key longer than the default parser's bound does not make the message look like a response.
        let padded = call.replacingOccurrences(of: #""params":{"#, with: #""params":{""# + String(repeating: "k", count: 2000) + #"":0,"#)
        let smuggled = try modern(["Mcp-Method: tools/list"], padded)
        #expect(smuggled.hasSuffix("\n400") && smuggled.contains("-32020"), "\(smuggled)")
        #expect(try denials()["mcp_header_mismatch"]?.isEmpty == false)
        let ended = try curl(port, ["--cert", "registry.pem", "--key", "registry.key", "-X", "DELETE", "-H", "Mcp-Session-Id: \(sid)"], path: "/v1/tools/mcp-server-time/mcp")
        #expect(ended.output.hasSuffix("\n204"), "\(ended.output)")
        #expect(try denials()["not_session_owner"]?.first?.context.principal == "cert:client")
        #expect(try denials()["method_rate_limited"]?.first?.context.principal == "cert:registry")
    }

    @Test("[rate_limits.clients]: a remote principal past its burst gets 429 with Retry-After (audited); root on the socket is never limited")
    func clientRateLimit() throws {
        let (port, _) = try serve(extra: "[rate_limits.clients]\nrequests_per_minute = 6\nburst = 3\n")
        let answers = try (0..<5).map { _ in try curl(port, ["--cert", "registry.pem", "--key", "registry.key", "-D", "-"]).output }
        #expect(answers.prefix(3).allSatisfy { $0.hasSuffix("\n200") } && answers.suffix(2).allSatisfy { $0.hasSuffix("\n429") }, "\(answers.map { $0.suffix(4) })")
        #expect(answers.last?.lowercased().contains("retry-after: ") == true, "\(answers.last ?? "")")
        // Another principal has a bucket of its own.
        #expect(try curl(port, ["--cert", "client.pem", "--key", "client.key"]).output.hasSuffix("\n200"))
        for _ in 0..<5 {
            let root = try Subprocess.run(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", directory + "/burrowd.sock", "http://b/v1/health"])
            #expect(root.output == "200")
        }
        #expect(try denials()["client_rate_limited"]?.first?.context.principal == "cert:registry")
    }

    @Test("one client address holds at most max_connections_per_address connections: the next is answered 429 too_many_connections and closed")
    func connectionsPerAddress() throws {
        let (port, _) = try serve(extra: "max_connections_per_address = 2")
        let script = """
            import socket, ssl, sys, time
            ctx = ssl.create_default_context(cafile="ca.pem")
            ctx.load_cert_chain("client.pem", "client.key")
            held = [ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(port))), server_hostname="127.0.0.1") for _ in range(2)]
            third = ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(port))), server_hostname="127.0.0.1")
            third.sendall(b"GET /v1/health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            answer = b""
            while chunk := third.recv(4096):
                answer += chunk
            print(answer.decode(errors="replace"))
            held[0].close()
            time.sleep(0.5)  # burrowd sees the close
            fourth = ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(port))), server_hostname="127.0.0.1")
            fourth.sendall(b"GET /v1/health HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
            print(fourth.recv(4096).decode(errors="replace")[:12])
            """
        let r = try Subprocess.run(["/usr/bin/python3", "-c", script], directory: directory)
        #expect(r.output.contains("HTTP/1.1 429") && r.output.contains("too_many_connections") && r.output.contains("max_connections_per_address"), "\(r.output)\(r.stderr)")
        // A connection given back makes room.
        #expect(r.output.contains("HTTP/1.1 200"), "\(r.output)")
    }

    @Test("a private key others may read stops burrowd from starting, saying how to fix it")
    func readableKey() throws {
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
        let http = "[transport.http]\nlisten = [\"127.0.0.1:8443\"]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\nclient_auth = \"none\"\n"
        let keys = "\n[auth]\nmethods = [\"api_key\"]\n"
        let base = http + keys
        #expect(!refused(base))
        // client_auth = none leaves API keys or JWTs as the only ways in; JWT needs its table.
        #expect(refused(http))
        #expect(refused(http + "\n[auth]\nmethods = [\"jwt\"]\n"))
        #expect(!refused(http + "\n[auth]\nmethods = [\"jwt\"]\n[auth.jwt]\nissuer = \"i\"\naudience = \"a\"\njwks = \"/j.json\"\n"))
        #expect(refused(http + "min_version = \"1.2\"" + keys))
        #expect(refused(http + "cipher_suites = [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]" + keys))
        #expect(refused("[transport.http]\nlisten = [\"127.0.0.1:8443\"]\nclient_auth = \"none\"" + keys))
        #expect(refused(base.replacingOccurrences(of: "client_auth = \"none\"", with: "client_auth = \"require\"")))
        #expect(refused(http + "allowed_origins = [\"https://app.example/path\"]" + keys))
        #expect(refused(http + "client_ca = \"/ca.pem\"\nclient_crl = \"/crl.pem\"" + keys), "client_auth = none: no certificate to check against a CRL")
        #expect(!refused(http + "allowed_origins = [\"https://app.example\", \"http://localhost:3000\"]" + keys))
        for bad in ["localhost:8443", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "[::1]8443", "1.2.3:80"] {
            #expect(refused(base.replacingOccurrences(of: "127.0.0.1:8443", with: bad)), "\(bad)")
        }
        #expect(HostPolicy.Transport.HTTP.address("[::1]:8443")?.host == "::1")
        #expect(HostPolicy.defaults.transport.http.listen.isEmpty, "off by default")
    }
}
