/// The host operator's policy (`/etc/burrow/burrow.toml`): ceilings every
/// profile is validated and clamped against. A missing file means `.defaults`.
package struct HostPolicy: Sendable, Equatable, Codable {
    package struct Security: Sendable, Equatable, Codable {
        /// Refuse tools without a signed manifest that verifies.
        package var requireSignatures = false
        /// Tools below this trust level (the level their signer grants:
        /// `untrusted` when unsigned) are refused.
        package var minTrustLevel = TrustLevel.untrusted
        /// The level a profile gets when it names none, and the weakest it may get.
        package var defaultSandbox = SandboxLevel.process
        /// Trust anchors (*.pem, *.crt) and CRLs (*.crl) that tool manifests' signatures are verified against.
        package var certStorePath = "/etc/burrow/certs"
        /// Where the verified copies of signed tools' files are kept (root's own).
        package var verifiedStore = "/var/lib/burrow/verified"
    }

    /// `[trust.<level>]`: the most a tool of that trust level may ask for.
    /// A profile asking for more is refused, not lowered.
    package struct TrustCeiling: Sendable, Equatable, Codable {
        /// The most network it may have.
        package var networkPolicy = NetworkAccess.full
        /// Whether it may have write grants.
        package var allowWrite = true

        package init(networkPolicy: NetworkAccess = .full, allowWrite: Bool = true) {
            self.networkPolicy = networkPolicy
            self.allowWrite = allowWrite
        }
    }

    package struct Policies: Sendable, Equatable, Codable {
        package var maxExecutionTime = Seconds.seconds(300)
        package var maxMemory = ByteSize.mebibytes(512)
        package var maxFileSize = ByteSize.mebibytes(100)
        /// The most network any profile may get.
        package var networkPolicy = NetworkAccess.restricted
        package var auditRetentionDays = 90
        // Burrow's additions: ceilings for the limits the specification leaves open.
        package var maxCpuTime = Seconds.seconds(300)
        package var maxOpenFiles = 1024
        package var maxProcesses = 256
        package var maxScratch = ByteSize.mebibytes(256)
        /// CPU bandwidth of one invocation's whole tree, in percent of one CPU
        /// (cgroup cpu.max, like systemd's CPUQuota=); 0 leaves it unlimited.
        package var cpuQuotaPercent = 100
        /// Connections one sandbox may hold open at once through the egress proxy.
        package var maxConnections = 64
        /// Bytes one sandbox may move through the egress proxy per run; nil: no budget.
        package var maxNetworkBytes: ByteSize?
        /// A run with write grants is stopped when a file system holding one
        /// has less free than this; nil: no floor.
        package var minFreeDisk: DiskFloor? = .percent(basisPoints: 500)
    }

    /// Burrow's own section: the egress proxy of sandboxes with restricted network.
    package struct Network: Sendable, Equatable, Codable {
        /// How long the proxy waits for a destination to accept a connection.
        package var connectTimeout = Seconds.seconds(10)
        /// A connection with no traffic either way for this long is closed.
        package var idleTimeout = Seconds.seconds(120)
    }

    package struct RateLimits: Sendable, Equatable, Codable {
        /// Per caller over every API request (`[rate_limits.clients]`): a
        /// token bucket of `requests_per_minute` holding up to `burst`.
        /// Off unless set; root on the socket is never limited.
        package struct Clients: Sendable, Equatable, Codable {
            package var requestsPerMinute: Int
            package var burst: Int
        }

        package var requestsPerMinute = 60
        package var maxConcurrent = 5
        package var registrationAttemptsPerHour = 10
        package var clients: Clients?
        /// Per caller and MCP method (`[rate_limits.methods]`, such as
        /// `"tools/call" = 60`): requests per minute, bursts up to a minute's worth.
        package var methods: [String: Int] = [:]
        /// Whether each tool's requests_per_minute and max_concurrent hold per node or across the fleet.
        package enum Scope: String, Sendable, Equatable, Codable { case node, fleet }
        /// `fleet`: counted in the fleet's database (`[registry] url`), synced every `fleetSync`.
        package var scope = Scope.node
        package var fleetSync = Seconds.seconds(1)
    }

    /// Burrow's own section: how sandboxes are built on this host.
    package struct Sandbox: Sendable, Equatable, Codable {
        /// Host uids (and gids) given to sandboxed tools, one per live sandbox; never 0.
        package var idRange: ClosedRange<UInt32> = 524_288...589_823
        /// Where bare command names in `execute` are looked up, in order.
        package var execSearchPath = ["/usr/local/bin", "/usr/bin", "/bin"]
    }

    /// Burrow's own section: the audit log.
    package struct Audit: Sendable, Equatable, Codable {
        /// The SQLite file every run and the daemon append to.
        package var database = "/var/lib/burrow/audit.db"
        /// The group that may read it (root always can); a missing group means root only.
        package var readerGroup = "burrow-audit"
        /// Secret patterns (POSIX extended regular expressions) redacted from
        /// every stored string, besides the built-in credential shapes.
        package var redact: [String] = []
        /// AnomalousActivity when one tool has more than this many
        /// SecurityViolation and PermissionDenied events within `anomalyWindow`; 0 turns it off.
        package var anomalyThreshold = 10
        package var anomalyWindow = Seconds.seconds(60)
        /// burrowd writes a caller's repeated refusals (same uid, same
        /// reason) within this window as one PermissionDenied with a count.
        package var denialWindow = Seconds.seconds(10)
        /// PerformanceThreshold when a run takes longer than this (wall clock)…
        package var durationThreshold = Seconds.seconds(60)
        /// …or uses more CPU time than this (its whole tree).
        package var cpuThreshold = Seconds.seconds(60)
        /// A user may read the events of its own runs (`burrow audit` through burrowd).
        package var userReadsOwn = false
        /// The central copy every event is shipped to (PostgreSQL); nil: none.
        package var central: Central?

        /// `central_url` and the keys beside it.
        package struct Central: Sendable, Equatable, Codable {
            package var url: PostgresURL
            /// The database password, alone in a file of root's (mode 0600 or stricter); nil: none (trust or peer authentication).
            package var passwordFile: String?
            /// The CA the server's certificate must chain to (PEM); nil: the system's roots.
            package var caFile: String?
            /// An AnomalousActivity event when the oldest event not yet shipped is older than this.
            package var maxLag = Seconds.seconds(300)

            package init(url: PostgresURL) { self.url = url }

            /// Where and how to connect.
            package var endpoint: PostgresEndpoint { PostgresEndpoint(url: url, passwordFile: passwordFile, caFile: caFile) }
        }
    }

    /// A PostgreSQL database of the fleet: its URL, and how burrowd proves
    /// itself and checks the server.
    package struct PostgresEndpoint: Sendable, Equatable, Codable {
        package var url: PostgresURL
        /// The database password, alone in a file of root's (mode 0600 or stricter); nil: none (trust or peer authentication).
        package var passwordFile: String?
        /// The CA the server's certificate must chain to (PEM); nil: the system's roots.
        package var caFile: String?

        package init(url: PostgresURL, passwordFile: String? = nil, caFile: String? = nil) {
            self.url = url
            self.passwordFile = passwordFile
            self.caFile = caFile
        }
    }

    /// Burrow's own section: burrowd over the network (the MCP security
    /// ADR's transport). Off unless `listen` names an address.
    package struct Transport: Sendable, Equatable, Codable {
        package struct HTTP: Sendable, Equatable, Codable {
            /// How a client must present a certificate.
            package enum ClientAuth: String, Sendable, Codable, CaseIterable {
                case require, optional, none
            }

            /// `host:port` pairs (IPv4, or `[IPv6]`) an HTTPS listener binds; empty: none.
            package var listen: [String] = []
            /// The server's certificate chain (PEM) and its private key (PEM;
            /// refused when any other user may read it).
            package var tlsCert: String?
            package var tlsKey: String?
            /// TLS 1.3 only: the one version accepted.
            package var minVersion = "1.3"
            /// The TLS 1.3 suites a connection may use (a subset of the three).
            package var cipherSuites = ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
            package var clientAuth = ClientAuth.require
            /// The CA (PEM) client certificates must chain to.
            package var clientCA: String?
            /// Certificate revocation lists (PEM), one per CA of `client_ca`:
            /// a revoked certificate, or one whose CA's list is stale, is
            /// refused in the handshake. Nil: revocation is not checked.
            package var clientCRL: String?
            /// What names a client: the certificate's one subject common name,
            /// or its one subjectAltName of a kind (DNS name, email, URI).
            package enum ClientIdentity: String, Sendable, Codable, CaseIterable {
                case commonName = "common_name"
                case sanDNS = "san_dns"
                case sanEmail = "san_email"
                case sanURI = "san_uri"
            }

            package var clientIdentity = ClientIdentity.commonName
            /// Web origins (`https://app.example`) whose requests are
            /// answered; a request with any other `Origin` is refused (the
            /// DNS-rebinding defence). Empty: no browser origin at all.
            package var allowedOrigins: [String] = []
            /// What a listed origin may send (CORS): methods and request headers.
            package var corsMethods = ["GET", "POST", "DELETE"]
            package var corsHeaders = ["content-type", "authorization", "mcp-session-id", "mcp-protocol-version", "last-event-id"]
            /// Connections one client address may hold open (of `[daemon] max_connections`).
            package var maxConnectionsPerAddress = 64

            /// `listen`'s `host:port` as a host (an IPv4 or IPv6 literal,
            /// without brackets) and a port (1–65535); nil when malformed.
            package static func address(_ text: String) -> (host: String, port: Int)? {
                let host: Substring
                let portText: Substring
                if text.hasPrefix("[") {
                    guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
                    host = text[text.index(after: text.startIndex)..<close]
                    portText = text[text.index(close, offsetBy: 2)...]
                    guard host.contains(":"), host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
                } else {
                    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
                    guard parts.count == 2 else { return nil }
                    (host, portText) = (parts[0], parts[1])
                    let octets = host.split(separator: ".", omittingEmptySubsequences: false)
                    guard octets.count == 4, octets.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCII) && Int($0).map { (0...255).contains($0) } == true }) else {
                        return nil
                    }
                }
                guard let port = Int(portText), (1...65535).contains(port), portText.allSatisfy(\.isASCII) else { return nil }
                return (String(host), port)
            }

            /// `scheme://host[:port]`, lowercase, nothing after: how a browser
            /// writes the `Origin` header (compared byte for byte).
            package static func isOrigin(_ text: String) -> Bool {
                let scheme = text.hasPrefix("https://") ? "https" : text.hasPrefix("http://") ? "http" : ""
                guard !scheme.isEmpty else { return false }
                let rest = text.dropFirst(scheme.count + 3)
                guard !rest.isEmpty, rest.utf8.count <= 253 + 6 else { return false }
                return rest.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || "-.:[]".contains($0) } && !rest.hasPrefix(":")
            }

            /// An HTTP header name (RFC 9110 token).
            package static func isToken(_ text: String) -> Bool {
                !text.isEmpty && text.utf8.count <= 64 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "!#$%&'*+-.^_`|~".contains($0)) }
            }

            /// Every TLS 1.3 cipher suite, by its IANA name and number.
            package static let tls13Suites: [String: UInt16] = [
                "TLS_AES_128_GCM_SHA256": 0x1301, "TLS_AES_256_GCM_SHA384": 0x1302, "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
            ]
        }

        package var http = HTTP()
    }

    /// How remote callers on the HTTPS listener prove who they are (the MCP
    /// security ADR's `[auth]`).
    package struct Auth: Sendable, Equatable, Codable {
        package enum Method: String, Sendable, Codable, CaseIterable {
            /// The verified client certificate: `cert:<CN>`.
            case mtls
            /// `Authorization: Bearer bk_<id>_<secret>` (`burrow keys`): `key:<id>`.
            case apiKey = "api_key"
            /// `Authorization: Bearer <JWT>` (`[auth.jwt]`): `jwt:<sub>`.
            case jwt
        }

        /// JSON Web Tokens (`[auth.jwt]`): who issues them, for whom, and
        /// the keys that sign them. A token names its caller `jwt:<sub>`.
        package struct JWT: Sendable, Equatable, Codable {
            /// The `iss` every token must carry (compared byte for byte).
            package var issuer: String?
            /// The `aud` every token must carry (or list).
            package var audience: String?
            /// A file (mode 0600, burrowd's own) whose bytes, less one
            /// trailing newline, are the HS256 secret: at least 32 bytes.
            package var hs256Secret: String?
            /// The `kid` a token signed with that secret may name (none: it
            /// names none).
            package var hs256KeyID: String?
            /// A JWKS file of public keys (`kid` on each; ES256 on P-256, or EdDSA on Ed25519).
            package var jwks: String?
            /// How far `exp`, `nbf` and `iat` may be off burrowd's clock (at most 5m).
            package var maxSkew = Seconds.seconds(60)
            /// A token whose `exp` is further away than this is refused (a
            /// token that never expires is a password).
            package var maxLifetime = Seconds.seconds(86400)

            package init() {}
        }

        /// Signed requests (`[auth.signing]`): HMAC-SHA256 with an API key's
        /// signing key over the method, path, timestamp, nonce and body, each
        /// nonce accepted once.
        package struct Signing: Sendable, Equatable, Codable {
            /// Every remote request must be signed (a bare bearer key or a
            /// certificate alone is refused).
            package var required = false
            /// How far a request's timestamp may be from burrowd's clock.
            package var maxSkew = Seconds.seconds(300)
            /// Nonces remembered (for twice `max_skew`); when that many are
            /// live, signed requests are refused (503) rather than any forgotten.
            package var maxNonces = 100_000
        }

        package var methods: [Method] = [.mtls]
        /// The longest an API key may live (`burrow keys create --expires`).
        package var maxKeyLifetime = Seconds.seconds(366 * 86400)
        package var signing = Signing()
        package var jwt = JWT()
    }

    /// Burrow's own section: ceilings for what unprivileged callers run
    /// through the session socket (their own profiles), below `[policies]`.
    /// Limits above a ceiling are lowered, network access too, and write
    /// grants become read-only when `allow_write` is false; each change is a
    /// clamp the plan shows.
    package struct Users: Sendable, Equatable, Codable {
        /// The most network a caller's own profile may get.
        package var networkPolicy = NetworkAccess.restricted
        package var maxMemory: ByteSize?
        package var maxCpuTime: Seconds?
        package var maxExecutionTime: Seconds?
        package var maxProcesses: Int?
        package var maxScratch: ByteSize?
        /// Whether a caller's profile may keep its host write grants.
        package var allowWrite = true
        /// Sessions one caller (uid) may have running at once.
        package var maxConcurrent = 8
        /// Sessions one caller may start per minute.
        package var runsPerMinute = 120

        package init() {}
    }

    /// Who may call the daemon, and how: each role lists principals as
    /// `user:NAME`, `uid:N`, `group:NAME` or `gid:N` (a caller matches a group
    /// by its primary or any supplementary group). Root holds every role.
    package struct Daemon: Sendable, Equatable, Codable {
        package enum Principal: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
            case user(String)
            case uid(UInt32)
            case group(String)
            case gid(UInt32)
            /// A remote client on the HTTPS listener whose certificate's
            /// subject common name is this (`[transport.http]` client_ca).
            case certificate(String)
            /// A remote client presenting the API key with this id (`burrow keys`).
            case key(String)
            /// A remote client presenting a JWT whose `sub` is this (`[auth.jwt]`).
            case jwt(String)

            package init?(parsing text: String) {
                let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[1].isEmpty else { return nil }
                switch parts[0] {
                case "user": self = .user(parts[1])
                case "group": self = .group(parts[1])
                case "uid":
                    guard let n = UInt32(parts[1]) else { return nil }
                    self = .uid(n)
                case "gid":
                    guard let n = UInt32(parts[1]) else { return nil }
                    self = .gid(n)
                case "cert":
                    guard Self.isRemoteName(parts[1]) else { return nil }
                    self = .certificate(parts[1])
                case "key":
                    guard Self.isRemoteName(parts[1]) else { return nil }
                    self = .key(parts[1])
                case "jwt":
                    guard Self.isRemoteName(parts[1]) else { return nil }
                    self = .jwt(parts[1])
                default: return nil
                }
            }

            /// Written as in the policy file: "group:burrow".
            package init(from decoder: any Decoder) throws {
                let text = try decoder.singleValueContainer().decode(String.self)
                guard let p = Principal(parsing: text) else {
                    throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "expected user:NAME, uid:N, group:NAME, gid:N, cert:NAME, key:ID or jwt:SUB"))
                }
                self = p
            }

            package func encode(to encoder: any Encoder) throws {
                var c = encoder.singleValueContainer()
                try c.encode(description)
            }

            package var description: String {
                switch self {
                case .user(let n): "user:\(n)"
                case .uid(let n): "uid:\(n)"
                case .group(let n): "group:\(n)"
                case .gid(let n): "gid:\(n)"
                case .certificate(let n): "cert:\(n)"
                case .key(let n): "key:\(n)"
                case .jwt(let n): "jwt:\(n)"
                }
            }

            /// A name a remote credential may carry: 1 to 255 bytes, no
            /// control characters.
            package static func isRemoteName(_ s: some StringProtocol) -> Bool {
                !s.isEmpty && s.utf8.count <= 255 && !s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
            }
        }

        /// The API socket (HTTP/1.1 + JSON).
        package var socket = "/run/burrow/burrowd.sock"
        /// The socket is 0660 root:this group (the session socket too).
        package var socketGroup = "burrow"

        /// The session socket, beside the API socket: `burrowd.sock` →
        /// `burrowd-session.sock` (unprivileged `burrow run`, `mcp` and
        /// `dry-run` connect to it and pass their stdio).
        package var sessionSocket: String { Self.sessionSocket(beside: socket) }

        package static func sessionSocket(beside api: String) -> String {
            api.hasSuffix(".sock") ? String(api.dropLast(5)) + "-session.sock" : api + "-session"
        }
        /// Register, update and delete tools.
        package var admins: [Principal] = []
        /// Invoke registered tools.
        package var invokers: [Principal] = [.group("burrow")]
        /// Run their own profiles (a shipped profile by name, or a document
        /// they send) through the session socket: an unprivileged `burrow
        /// run`, `burrow mcp` or `burrow dry-run`. Clamped by `[users]`.
        package var runners: [Principal] = [.group("burrow")]
        /// Read the audit log.
        package var auditors: [Principal] = [.group("burrow-audit")]
        /// Report events into the audit log (a registry's own authentication
        /// decisions, validation and anomalies); none by default.
        package var reporters: [Principal] = []
        /// The largest request body accepted.
        package var maxRequestBytes = ByteSize.mebibytes(4)
        /// A connection must deliver a whole request head within this long
        /// (after it opens, or after the previous response).
        package var headerTimeout = Seconds.seconds(10)
        /// A request body must arrive whole within this long after its head.
        package var bodyTimeout = Seconds.seconds(60)
        /// A connection with no request in progress is closed after this long.
        package var idleTimeout = Seconds.seconds(60)
        /// Connections open at once, all callers together; root and admins
        /// may open `adminConnectionReserve` more beyond it.
        package var maxConnections = 512
        /// Connections open at once per caller uid (root and admins excepted).
        package var maxConnectionsPerUser = 64
        package var adminConnectionReserve = 32
        /// Validations and registrations (loading a profile, compiling its
        /// plan) one caller may have in progress at once.
        package var maxValidationsPerUser = 2
        /// This node's name in a fleet (the central audit copy keys its events by it); nil: the host name.
        package var nodeID: String?
        /// How often this node's heartbeat reaches the fleet's database (with `[audit] central_url`); down after three missed.
        package var heartbeatInterval = Seconds.seconds(5)
        /// Where registrations and invocation results are kept (SQLite).
        package var registry = "/var/lib/burrow/registry.db"
        /// stdout and stderr kept per invocation, each (the rest is counted and dropped).
        package var maxOutputBytes = ByteSize.mebibytes(1)
        /// How long running invocations may go on after SIGTERM before their sandboxes are killed.
        package var shutdownGrace = Seconds.seconds(30)
        /// Finished invocations stay readable (GET /v1/invocations/ID) this long.
        package var resultRetention = Seconds.seconds(86_400)
        /// A tool invoked through burrowd gets its next sandbox built ahead
        /// (up to the moment before execve).
        package var warmSandboxes = true
        /// How long a sandbox built ahead waits for a request before it is discarded.
        package var warmSandboxIdle = Seconds.seconds(60)
        /// The shortest interval a registration's health checks may have:
        /// each check starts a sandbox.
        package var healthMinInterval = Seconds.seconds(10)
        /// How often the signed manifests of registered tools are checked
        /// again (signature, expiry, every file), and reported.
        package var manifestCheckInterval = Seconds.seconds(86_400)
    }

    /// Burrow's own section: the MCP relay.
    package struct MCP: Sendable, Equatable, Codable {
        /// The key that signs approvals for `authorize` content filters
        /// (a file of at least 32 bytes, readable by root only); nil: such calls are refused.
        package var approvalKey: String?
        /// A burrowd MCP session with no request for this long is ended.
        package var sessionIdleTimeout = Seconds.seconds(600)
        /// burrowd MCP sessions live at once, all callers together…
        package var maxSessions = 100
        /// …and of one caller (a uid, or a remote principal).
        package var maxSessionsPerCaller = 16
    }

    /// Burrow's own section: what profile parameters a caller may supply.
    package struct Parameters: Sendable, Equatable, Codable {
        /// A path a caller supplies for a parameter must lie below one of these.
        package var allowedRoots = ["/home", "/srv"]
    }

    package var parameters = Parameters()
    package var security = Security()
    /// Ceilings by trust level (raw value), for the levels the policy names.
    package var trust: [String: TrustCeiling] = [:]
    package var policies = Policies()
    package var rateLimits = RateLimits()
    package var sandbox = Sandbox()
    package var network = Network()
    package var audit = Audit()
    package var daemon = Daemon()
    /// `[registry] url`: the fleet's shared registry in PostgreSQL; nil: the local SQLite registry alone.
    package var sharedRegistry: PostgresEndpoint?
    package var mcp = MCP()
    package var users = Users()
    package var transport = Transport()
    package var auth = Auth()
    /// `[capabilities."<tool id>"]` (and `"*"`): rules a call of that tool must pass.
    package var capabilities: [String: CapabilityRules] = [:]

    package init() {}

    /// The specification's defaults (used when no policy file exists).
    package static let defaults = HostPolicy()

    /// The default location of the host policy.
    package static let defaultPath = "/etc/burrow/burrow.toml"
}

extension HostPolicy {
    /// Decodes a policy document strictly (unknown keys are errors).
    /// - Throws: `ProfileErrors` with every problem found.
    package static func decode(_ document: ConfigValue, file: String) throws(ProfileErrors) -> HostPolicy {
        let log = IssueLog(file: file)
        var policy = HostPolicy()
        guard var root = TableReader(log: log, path: "", value: document) else { throw ProfileErrors(log.issues) }
        if var t = root.table("security") {
            if let v = t.bool("require_signatures") { policy.security.requireSignatures = v }
            if let v = t.enumValue("min_trust_level", TrustLevel.self) { policy.security.minTrustLevel = v }
            if let v = t.enumValue("default_sandbox", SandboxLevel.self) { policy.security.defaultSandbox = v }
            if let v = t.string("cert_store_path") {
                if v.hasPrefix("/") { policy.security.certStorePath = v } else { log.error(t.keyPath("cert_store_path"), "expected an absolute path, such as '/etc/burrow/certs'") }
            }
            if let v = t.string("verified_store") {
                if v.hasPrefix("/") && v != "/" {
                    policy.security.verifiedStore = v
                } else {
                    log.error(t.keyPath("verified_store"), "expected an absolute path, such as '/var/lib/burrow/verified'")
                }
            }
            t.finish()
        }
        if var t = root.table("trust") {
            for level in t.entries.keys.sorted() {
                guard let known = TrustLevel(rawValue: level) else {
                    _ = t.value(level)
                    t.log.error(t.keyPath(level), "expected a trust level: system, verified, community or untrusted")
                    continue
                }
                guard var r = t.table(level) else { continue }
                var ceiling = TrustCeiling()
                if let v = r.enumValue("network_policy", NetworkAccess.self) { ceiling.networkPolicy = v }
                if let v = r.bool("allow_write") { ceiling.allowWrite = v }
                r.finish()
                policy.trust[known.rawValue] = ceiling
            }
            t.finish()
        }
        if var t = root.table("policies") {
            if let v = t.duration("max_execution_time") { policy.policies.maxExecutionTime = v }
            if let v = t.positive("max_memory_mb") { policy.policies.maxMemory = .mebibytes(UInt64(v)) }
            if let v = t.positive("max_file_size_mb") { policy.policies.maxFileSize = .mebibytes(UInt64(v)) }
            if let v = t.enumValue("network_policy", NetworkAccess.self) { policy.policies.networkPolicy = v }
            if let v = t.positive("audit_retention_days") { policy.policies.auditRetentionDays = v }
            if let v = t.duration("max_cpu_time") { policy.policies.maxCpuTime = v }
            if let v = t.positive("max_open_files") { policy.policies.maxOpenFiles = v }
            if let v = t.positive("max_processes") { policy.policies.maxProcesses = v }
            if let v = t.positive("max_scratch_mb") { policy.policies.maxScratch = .mebibytes(UInt64(v)) }
            if let v = t.positive("max_connections") { policy.policies.maxConnections = v }
            if let v = t.positive("max_network_mb") { policy.policies.maxNetworkBytes = .mebibytes(UInt64(v)) }
            if let text = t.string("min_free_disk") {
                if text == "off" {
                    policy.policies.minFreeDisk = nil
                } else if let floor = DiskFloor(parsing: text) {
                    policy.policies.minFreeDisk = floor
                } else {
                    log.error(t.keyPath("min_free_disk"), "expected a share such as \"5%\", a size such as \"2G\", or \"off\"")
                }
            }
            if let v = t.integer("cpu_quota_percent") {
                if v >= 0 { policy.policies.cpuQuotaPercent = v } else { log.error(t.keyPath("cpu_quota_percent"), "expected a percentage of one CPU (100 = one CPU), or 0 for no cap (found \(v))") }
            }
            t.finish()
        }
        if var t = root.table("parameters") {
            if let paths = t.strings("allowed_roots") {
                var roots: [String] = []
                for (text, keyPath) in paths {
                    switch PathPattern.parse(text) {
                    case .success(let p) where !p.subtree && !text.contains("*"): roots.append(p.path)
                    case .success: log.error(keyPath, "a root is one directory, without wildcards")
                    case .failure(let e): log.error(keyPath, e.message)
                    }
                }
                policy.parameters.allowedRoots = roots
            }
            t.finish()
        }
        if var t = root.table("network") {
            if let v = t.duration("connect_timeout") { policy.network.connectTimeout = v }
            if let v = t.duration("idle_timeout") { policy.network.idleTimeout = v }
            t.finish()
        }
        if var t = root.table("rate_limits") {
            if let v = t.positive("requests_per_minute") { policy.rateLimits.requestsPerMinute = v }
            if let v = t.positive("max_concurrent") { policy.rateLimits.maxConcurrent = v }
            if let v = t.positive("registration_attempts_per_hour") { policy.rateLimits.registrationAttemptsPerHour = v }
            if let v = t.string("scope") {
                if let scope = RateLimits.Scope(rawValue: v) { policy.rateLimits.scope = scope } else { log.error(t.keyPath("scope"), "\"node\" or \"fleet\" (found '\(v.prefix(32))')") }
            }
            if let v = t.duration("fleet_sync") {
                if v.milliseconds < 100 || v.milliseconds > 60_000 { log.error(t.keyPath("fleet_sync"), "from 100ms to 60s, such as \"1s\"") } else { policy.rateLimits.fleetSync = v }
            }
            if var c = t.table("clients") {
                let perMinute = c.positive("requests_per_minute")
                let burst = c.positive("burst")
                if let perMinute { policy.rateLimits.clients = .init(requestsPerMinute: perMinute, burst: burst ?? max(1, perMinute / 6)) }
                if perMinute == nil && burst != nil { c.log.error(c.keyPath("burst"), "burst needs requests_per_minute beside it") }
                c.finish()
            }
            if var m = t.table("methods") {
                for key in m.entries.keys.sorted() {
                    guard key.utf8.count <= 128, !key.isEmpty, key.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7f }) else {
                        _ = m.value(key)
                        m.log.error(m.keyPath(key), "expected an MCP method name, such as \"tools/call\"")
                        continue
                    }
                    if let v = m.positive(key) { policy.rateLimits.methods[key] = v }
                }
                m.finish()
            }
            t.finish()
        }
        if var t = root.table("sandbox") {
            if let text = t.string("id_range") {
                let parts = text.split(separator: "-").compactMap { UInt32($0) }
                if parts.count == 2, parts[0] > 0, parts[0] <= parts[1] {
                    policy.sandbox.idRange = parts[0]...parts[1]
                } else {
                    log.error(t.keyPath("id_range"), "expected 'first-last' host ids above 0, such as '524288-589823'")
                }
            }
            if let paths = t.strings("exec_search_path") {
                var dirs: [String] = []
                for (text, keyPath) in paths {
                    switch PathPattern.parse(text) {
                    case .success(let p) where !p.subtree: dirs.append(p.path)
                    case .success: log.error(keyPath, "a search directory takes no '/**'")
                    case .failure(let e): log.error(keyPath, e.message)
                    }
                }
                policy.sandbox.execSearchPath = dirs
            }
            t.finish()
        }
        if var t = root.table("audit") {
            if let v = t.string("database") {
                if v.hasPrefix("/") { policy.audit.database = v } else { log.error(t.keyPath("database"), "expected an absolute path, such as '/var/lib/burrow/audit.db'") }
            }
            if let v = t.string("reader_group") { policy.audit.readerGroup = v }
            if let patterns = t.strings("redact") { policy.audit.redact = patterns.map(\.value) }
            if let v = t.integer("anomaly_threshold") {
                if v >= 0 { policy.audit.anomalyThreshold = v } else { log.error(t.keyPath("anomaly_threshold"), "expected a number of events, or 0 to turn detection off (found \(v))") }
            }
            if let v = t.duration("anomaly_window") { policy.audit.anomalyWindow = v }
            if let v = t.duration("denial_window") { policy.audit.denialWindow = v }
            if let v = t.duration("duration_threshold") { policy.audit.durationThreshold = v }
            if let v = t.duration("cpu_threshold") { policy.audit.cpuThreshold = v }
            if let v = t.bool("user_reads_own") { policy.audit.userReadsOwn = v }
            if let v = t.string("central_url") {
                do {
                    policy.audit.central = Audit.Central(url: try PostgresURL(parsing: v))
                } catch {
                    log.error(t.keyPath("central_url"), error.description)
                }
            }
            for key in ["central_password_file", "central_ca_file"] {
                guard let v = t.string(key) else { continue }
                guard v.hasPrefix("/") else {
                    log.error(t.keyPath(key), "expected an absolute path")
                    continue
                }
                guard policy.audit.central != nil else {
                    log.error(t.keyPath(key), "goes with central_url")
                    continue
                }
                if key == "central_password_file" { policy.audit.central?.passwordFile = v } else { policy.audit.central?.caFile = v }
            }
            if let v = t.duration("central_max_lag") {
                if policy.audit.central == nil {
                    log.error(t.keyPath("central_max_lag"), "goes with central_url")
                } else if v.milliseconds < 1000 {
                    log.error(t.keyPath("central_max_lag"), "at least 1s, such as \"5m\"")
                } else {
                    policy.audit.central?.maxLag = v
                }
            }
            t.finish()
        }
        if var t = root.table("daemon") {
            if let v = t.string("socket") {
                if v.hasPrefix("/") { policy.daemon.socket = v } else { log.error(t.keyPath("socket"), "expected an absolute path, such as '/run/burrow/burrowd.sock'") }
            }
            if let v = t.string("socket_group") { policy.daemon.socketGroup = v }
            func principals(_ key: String) -> [Daemon.Principal]? {
                guard let items = t.strings(key) else { return nil }
                var out: [Daemon.Principal] = []
                for (text, keyPath) in items {
                    if let p = Daemon.Principal(parsing: text) { out.append(p) } else { log.error(keyPath, "expected user:NAME, uid:N, group:NAME, gid:N, cert:NAME or key:ID (found '\(text)')") }
                }
                return out
            }
            if let v = principals("admins") { policy.daemon.admins = v }
            if let v = principals("invokers") { policy.daemon.invokers = v }
            if let v = principals("auditors") { policy.daemon.auditors = v }
            if let v = principals("reporters") { policy.daemon.reporters = v }
            if let v = principals("runners") { policy.daemon.runners = v }
            if let v = t.size("max_request_size") {
                if v.bytes > 256 << 20 { log.error(t.keyPath("max_request_size"), "at most 256M") } else { policy.daemon.maxRequestBytes = v }
            }
            if let v = t.duration("header_timeout") { policy.daemon.headerTimeout = v }
            if let v = t.duration("body_timeout") { policy.daemon.bodyTimeout = v }
            if let v = t.duration("idle_timeout") { policy.daemon.idleTimeout = v }
            if let v = t.positive("max_connections") { policy.daemon.maxConnections = v }
            if let v = t.positive("max_connections_per_user") { policy.daemon.maxConnectionsPerUser = v }
            if let v = t.integer("admin_connection_reserve") {
                if v < 0 { log.error(t.keyPath("admin_connection_reserve"), "must be zero or more") } else { policy.daemon.adminConnectionReserve = v }
            }
            if let v = t.positive("max_validations_per_user") { policy.daemon.maxValidationsPerUser = v }
            if let v = t.string("node_id") {
                if !v.isEmpty, v.utf8.count <= 64, v.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
                    policy.daemon.nodeID = v
                } else {
                    log.error(t.keyPath("node_id"), "1 to 64 letters, digits, '-', '_' or '.' (found '\(v.prefix(64))')")
                }
            }
            if let v = t.duration("heartbeat_interval") {
                if v.milliseconds < 200 { log.error(t.keyPath("heartbeat_interval"), "at least 200ms, such as \"5s\"") } else { policy.daemon.heartbeatInterval = v }
            }
            if let v = t.string("registry") {
                if v.hasPrefix("/") { policy.daemon.registry = v } else { log.error(t.keyPath("registry"), "expected an absolute path, such as '/var/lib/burrow/registry.db'") }
            }
            if let v = t.size("max_output_size") { policy.daemon.maxOutputBytes = v }
            if let v = t.duration("shutdown_grace") { policy.daemon.shutdownGrace = v }
            if let v = t.duration("result_retention") { policy.daemon.resultRetention = v }
            if let v = t.bool("warm_sandboxes") { policy.daemon.warmSandboxes = v }
            if let v = t.duration("warm_sandbox_idle") { policy.daemon.warmSandboxIdle = v }
            if let v = t.duration("health_min_interval") {
                if v.milliseconds < 1000 || v.milliseconds % 1000 != 0 {
                    log.error(t.keyPath("health_min_interval"), "whole seconds, at least 1s, such as \"10s\"")
                } else {
                    policy.daemon.healthMinInterval = v
                }
            }
            if let v = t.duration("manifest_check_interval") {
                if v.milliseconds < 1000 { log.error(t.keyPath("manifest_check_interval"), "at least 1s, such as \"24h\"") } else { policy.daemon.manifestCheckInterval = v }
            }
            t.finish()
        }
        if var transport = root.table("transport") {
            if var t = transport.table("http") {
                if let items = t.strings("listen") {
                    var addresses: [String] = []
                    for (text, keyPath) in items {
                        if Transport.HTTP.address(text) != nil {
                            addresses.append(text)
                        } else {
                            log.error(keyPath, "expected an IP address and a port, such as \"127.0.0.1:8443\" or \"[::1]:8443\" (found '\(text)')")
                        }
                    }
                    policy.transport.http.listen = addresses
                }
                for (key, keyPath) in [
                    ("tls_cert", \Transport.HTTP.tlsCert), ("tls_key", \Transport.HTTP.tlsKey), ("client_ca", \Transport.HTTP.clientCA), ("client_crl", \Transport.HTTP.clientCRL),
                ] {
                    guard let v = t.string(key) else { continue }
                    if v.hasPrefix("/") { policy.transport.http[keyPath: keyPath] = v } else { log.error(t.keyPath(key), "expected an absolute path") }
                }
                if let v = t.string("min_version") {
                    if v == "1.3" {
                        policy.transport.http.minVersion = v
                    } else {
                        log.error(t.keyPath("min_version"), "only \"1.3\": TLS 1.2 and below are refused (found '\(v)')")
                    }
                }
                if let items = t.strings("cipher_suites") {
                    let known = Transport.HTTP.tls13Suites.keys.sorted()
                    let names = items.filter { known.contains($0.value) }.map(\.value)
                    for (text, keyPath) in items where !known.contains(text) {
                        log.error(keyPath, "not a TLS 1.3 cipher suite (TLS 1.2 suites are refused with TLS 1.2): expected one of \(known.joined(separator: ", "))")
                    }
                    if items.isEmpty { log.error(t.keyPath("cipher_suites"), "name at least one suite") } else { policy.transport.http.cipherSuites = names }
                }
                if let v = t.enumValue("client_auth", Transport.HTTP.ClientAuth.self) { policy.transport.http.clientAuth = v }
                if let v = t.enumValue("client_identity", Transport.HTTP.ClientIdentity.self) { policy.transport.http.clientIdentity = v }
                if let v = t.positive("max_connections_per_address") { policy.transport.http.maxConnectionsPerAddress = v }
                if let items = t.strings("allowed_origins") {
                    for (text, keyPath) in items where !Transport.HTTP.isOrigin(text) {
                        log.error(keyPath, "expected an origin: a scheme, a host and an optional port, such as \"https://app.example\" or \"http://localhost:3000\", no path (found '\(text)')")
                    }
                    policy.transport.http.allowedOrigins = items.map(\.value).filter(Transport.HTTP.isOrigin)
                }
                if let items = t.strings("cors_methods") {
                    let known: Set = ["GET", "POST", "PUT", "DELETE"]
                    for (text, keyPath) in items where !known.contains(text) { log.error(keyPath, "expected GET, POST, PUT or DELETE (found '\(text)')") }
                    policy.transport.http.corsMethods = items.map(\.value).filter(known.contains)
                }
                if let items = t.strings("cors_headers") {
                    for (text, keyPath) in items where !Transport.HTTP.isToken(text) { log.error(keyPath, "expected a header name (found '\(text)')") }
                    policy.transport.http.corsHeaders = items.map { $0.value.lowercased() }.filter(Transport.HTTP.isToken)
                }
                t.finish()
                let h = policy.transport.http
                if !h.listen.isEmpty {
                    if h.tlsCert == nil || h.tlsKey == nil { log.error("transport.http", "an HTTPS listener needs tls_cert and tls_key") }
                    if h.clientCRL != nil && h.clientCA == nil { log.error("transport.http.client_crl", "needs client_ca: each list is checked against its CA") }
                    if h.clientCRL != nil && h.clientAuth == .none { log.error("transport.http.client_crl", "client_auth = \"none\" asks for no certificate: there is nothing to check against a CRL") }
                    if h.clientAuth != .none && h.clientCA == nil {
                        log.error("transport.http", "client_auth = \"\(h.clientAuth.rawValue)\" needs client_ca (the CA client certificates must chain to)")
                    }
                }
            }
            transport.finish()
        }
        if var t = root.table("users") {
            if let v = t.enumValue("network_policy", NetworkAccess.self) { policy.users.networkPolicy = v }
            if let v = t.positive("max_memory_mb") { policy.users.maxMemory = .mebibytes(UInt64(v)) }
            if let v = t.duration("max_cpu_time") { policy.users.maxCpuTime = v }
            if let v = t.duration("max_execution_time") { policy.users.maxExecutionTime = v }
            if let v = t.positive("max_processes") { policy.users.maxProcesses = v }
            if let v = t.positive("max_scratch_mb") { policy.users.maxScratch = .mebibytes(UInt64(v)) }
            if let v = t.bool("allow_write") { policy.users.allowWrite = v }
            if let v = t.positive("max_concurrent") { policy.users.maxConcurrent = v }
            if let v = t.positive("runs_per_minute") { policy.users.runsPerMinute = v }
            t.finish()
        }
        if var t = root.table("auth") {
            if let items = t.strings("methods") {
                var methods: [Auth.Method] = []
                for (text, keyPath) in items {
                    switch Auth.Method(rawValue: text) {
                    case let m?: if !methods.contains(m) { methods.append(m) }
                    case nil: log.error(keyPath, "expected \"mtls\", \"api_key\" or \"jwt\" (found '\(text)')")
                    }
                }
                if items.isEmpty { log.error(t.keyPath("methods"), "name at least one method: a listener no one can use is not one") }
                policy.auth.methods = methods
            }
            if let v = t.duration("max_key_lifetime") { policy.auth.maxKeyLifetime = v }
            if var signing = t.table("signing") {
                if let v = signing.bool("required") { policy.auth.signing.required = v }
                if let v = signing.duration("max_skew") {
                    if v.milliseconds <= 900_000 { policy.auth.signing.maxSkew = v } else { signing.log.error(signing.keyPath("max_skew"), "at most 15m: nonces are kept twice as long") }
                }
                if let v = signing.positive("max_nonces") { policy.auth.signing.maxNonces = v }
                signing.finish()
            }
            if var jwt = t.table("jwt") {
                for (key, keyPath) in [("issuer", \Auth.JWT.issuer), ("audience", \Auth.JWT.audience), ("hs256_kid", \Auth.JWT.hs256KeyID)] {
                    guard let v = jwt.string(key) else { continue }
                    if Daemon.Principal.isRemoteName(v) { policy.auth.jwt[keyPath: keyPath] = v } else { jwt.log.error(jwt.keyPath(key), "expected 1 to 255 bytes, no control characters") }
                }
                for (key, keyPath) in [("hs256_secret", \Auth.JWT.hs256Secret), ("jwks", \Auth.JWT.jwks)] {
                    guard let v = jwt.string(key) else { continue }
                    if v.hasPrefix("/") { policy.auth.jwt[keyPath: keyPath] = v } else { jwt.log.error(jwt.keyPath(key), "expected an absolute path") }
                }
                if let v = jwt.duration("max_skew") {
                    if v.milliseconds <= 300_000 { policy.auth.jwt.maxSkew = v } else { jwt.log.error(jwt.keyPath("max_skew"), "at most 5m") }
                }
                if let v = jwt.duration("max_lifetime") { policy.auth.jwt.maxLifetime = v }
                jwt.finish()
            }
            t.finish()
            if policy.auth.methods.contains(.jwt) {
                let j = policy.auth.jwt
                if j.issuer == nil || j.audience == nil {
                    log.error("auth.jwt", "\"jwt\" in [auth] methods needs issuer and audience: a token is accepted only from that issuer, for that audience")
                }
                if j.hs256Secret == nil && j.jwks == nil { log.error("auth.jwt", "\"jwt\" in [auth] methods needs hs256_secret or jwks: the keys tokens are signed with") }
                if j.hs256KeyID != nil && j.hs256Secret == nil { log.error("auth.jwt.hs256_kid", "names the kid of hs256_secret, which is not set") }
            }
            if policy.auth.signing.required && !policy.auth.methods.contains(.apiKey) {
                log.error("auth.signing", "required = true needs \"api_key\" in [auth] methods: requests are signed with an API key's signing key")
            }
        }
        if var t = root.table("capabilities") {
            for tool in t.entries.keys.sorted() {
                guard tool == "*" || (tool.utf8.count <= 64 && !tool.hasPrefix(".") && tool.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7f })) else {
                    _ = t.value(tool)
                    t.log.error(t.keyPath(tool), "expected a tool id, or \"*\" for every tool")
                    continue
                }
                guard var r = t.table(tool) else { continue }
                var rules = CapabilityRules()
                if let items = r.strings("required_auth") {
                    for (text, keyPath) in items where !CapabilityRules.methods.contains(text) {
                        r.log.error(keyPath, "expected one of \(CapabilityRules.methods.joined(separator: ", ")) (found '\(text)')")
                    }
                    rules.requiredAuth = items.map(\.value).filter(CapabilityRules.methods.contains)
                    if items.isEmpty { r.log.error(r.keyPath("required_auth"), "name at least one method: an empty list would refuse every caller") }
                }
                if let items = r.list("allowed_ips", AddressRange.parse) {
                    rules.allowedIPs = items.map(\.0)
                    if items.isEmpty { r.log.error(r.keyPath("allowed_ips"), "name at least one network: an empty list would refuse every remote caller") }
                }
                if let items = r.list("time_windows", TimeWindow.parse) {
                    rules.timeWindows = items.map(\.0)
                    if items.isEmpty { r.log.error(r.keyPath("time_windows"), "name at least one window: an empty list would refuse every call") }
                }
                if let v = r.positive("requests_per_minute") { rules.requestsPerMinute = v }
                r.finish()
                policy.capabilities[tool] = rules
            }
            t.finish()
        }
        if var t = root.table("registry") {
            if let v = t.string("url") {
                do {
                    policy.sharedRegistry = PostgresEndpoint(url: try PostgresURL(parsing: v))
                } catch {
                    log.error(t.keyPath("url"), error.description)
                }
            }
            for key in ["password_file", "ca_file"] {
                guard let v = t.string(key) else { continue }
                guard v.hasPrefix("/") else {
                    log.error(t.keyPath(key), "expected an absolute path")
                    continue
                }
                guard policy.sharedRegistry != nil else {
                    log.error(t.keyPath(key), "goes with url")
                    continue
                }
                if key == "password_file" { policy.sharedRegistry?.passwordFile = v } else { policy.sharedRegistry?.caFile = v }
            }
            t.finish()
        }
        if var t = root.table("mcp") {
            if let v = t.string("approval_key") {
                if v.hasPrefix("/") { policy.mcp.approvalKey = v } else { log.error(t.keyPath("approval_key"), "expected an absolute path, such as '/etc/burrow/approval.pub'") }
            }
            if let v = t.duration("session_idle_timeout") { policy.mcp.sessionIdleTimeout = v }
            if let v = t.positive("max_sessions") { policy.mcp.maxSessions = v }
            if let v = t.positive("max_sessions_per_caller") { policy.mcp.maxSessionsPerCaller = v }
            t.finish()
        }
        if !policy.transport.http.listen.isEmpty && policy.transport.http.clientAuth == .none && policy.auth.methods == [.mtls] {
            log.error("transport.http", "client_auth = \"none\" with [auth] methods = [\"mtls\"]: no caller could authenticate (ask for client certificates, or accept \"api_key\" or \"jwt\")")
        }
        if policy.rateLimits.scope == .fleet && policy.sharedRegistry == nil {
            log.error("rate_limits.scope", "\"fleet\" counts in the fleet's database: set [registry] url too")
        }
        root.finish()
        if log.hasErrors { throw ProfileErrors(log.issues) }
        return policy
    }
}
