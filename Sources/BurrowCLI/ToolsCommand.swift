import ArgumentParser
import BurrowAPI
import BurrowAudit
import BurrowHost
import BurrowJSON
import BurrowProfile
import BurrowRemote
import BurrowSystem
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// How the CLI reaches burrowd: `--socket`, else $BURROW_SOCKET, else the
/// host policy's [daemon] socket; or over the network with `--url` (or
/// $BURROW_URL), signed with an API key or authenticated by a client
/// certificate. Several nodes of a fleet: `--url` (or `--socket`) repeated,
/// or $BURROW_URLS; requests are spread over them, and one a node does not
/// take is sent to the next (`send`).
struct DaemonOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "burrowd's socket (default: $BURROW_SOCKET, else the policy's [daemon] socket, /run/burrow/burrowd.sock); repeat it for several nodes on one host.",
            valueName: "path"))
    var socket: [String] = []

    @Option(name: .long, help: ArgumentHelp("The host policy file (read for the socket path only).", valueName: "file"))
    var policy: String = HostPolicy.defaultPath

    @Option(
        name: .long,
        help: ArgumentHelp(
            "burrowd over the network instead of its socket: its HTTPS listener, https://HOST:PORT (default: $BURROW_URLS, comma-separated, else $BURROW_URL). TLS 1.3; the server's certificate must name HOST. Repeat it for several nodes of a fleet: requests are spread over them, and one a node does not take goes to the next.",
            valueName: "url"))
    var url: [String] = []

    @Option(name: .long, help: ArgumentHelp("With --url: the CA certificate (PEM) burrowd's certificate must chain to (default: the system's roots).", valueName: "file"))
    var cacert: String?

    @Option(name: .long, help: ArgumentHelp("With --url: a client certificate (PEM) for mutual TLS; burrowd names you cert:<its CN>.", valueName: "file"))
    var cert: String?

    @Option(name: .long, help: ArgumentHelp("With --url: the client certificate's private key (PEM; default: in --cert's file).", valueName: "file"))
    var key: String?

    @Option(
        name: .customLong("api-key-file"),
        help: ArgumentHelp(
            "With --url: a file holding an API key (burrow keys create); every request is signed with it (Burrow-Signature), so its secret never travels (default: $BURROW_API_KEY, the key itself).",
            valueName: "file"))
    var apiKeyFile: String?

    /// The connection: burrowd's socket, or its HTTPS listener.
    enum Client {
        case socket(UnixHTTPClient)
        case remote(RemoteClient)

        func send(_ method: String, _ path: String, body: [UInt8]?, headers: [(String, String)], onBody: (([UInt8]) -> Void)?) throws(UnixHTTPClient.Failure) -> UnixHTTPClient.Response {
            switch self {
            case .socket(let c): try c.send(method, path, body: body, headers: headers, onBody: onBody)
            case .remote(let c): try c.send(method, path, body: body, headers: headers, onBody: onBody)
            }
        }

        var name: String {
            switch self {
            case .socket(let c): c.socketPath
            case .remote(let c): c.url
            }
        }
    }

    private static func environment(_ name: String) -> String? { getenv(name).flatMap { $0.pointee == 0 ? nil : String(cString: $0) } }

    /// The one burrowd (the first of several).
    func client() throws -> Client { try clients()[0] }

    /// Every node given, in the order given.
    func clients() throws -> [Client] {
        let env = Self.environment
        var urls = url
        if urls.isEmpty && socket.isEmpty {
            if let list = env("BURROW_URLS") {
                urls = Self.urlList(list)
            } else if let one = env("BURROW_URL") {
                urls = [one]
            }
        }
        guard !urls.isEmpty else {
            if cacert != nil || cert != nil || key != nil || apiKeyFile != nil { throw CLIError("--cacert, --cert, --key and --api-key-file go with --url (burrowd over the network)") }
            if !socket.isEmpty { return socket.map { .socket(UnixHTTPClient(socketPath: $0)) } }
            if let path = env("BURROW_SOCKET") { return [.socket(UnixHTTPClient(socketPath: path))] }
            let path = (try? HostConfiguration.loadPolicy(policy))?.daemon.socket ?? HostPolicy.defaults.daemon.socket
            return [.socket(UnixHTTPClient(socketPath: path))]
        }
        guard socket.isEmpty else { throw CLIError("--socket and --url name burrowds two ways: give one kind") }
        var apiKey = env("BURROW_API_KEY")
        if let file = apiKeyFile {
            guard let bytes = try? FileIO.readConfigured(file, secret: false, limit: 4096), let text = String(validating: bytes, as: UTF8.self) else {
                throw CLIError("\(file): cannot read the API key")
            }
            apiKey = text.split(whereSeparator: \.isWhitespace).first.map(String.init)
        }
        do {
            return try urls.map { url throws(UnixHTTPClient.Failure) in .remote(try RemoteClient(url: url, caFile: cacert, certificateFile: cert, keyFile: key, apiKey: apiKey)) }
        } catch {
            throw CLIError(error.description)
        }
    }

    /// $BURROW_URLS: separated by commas, spaces or newlines.
    private static func urlList(_ text: String) -> [String] { text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" }).map(String.init) }

    /// Several nodes were given (read from the options, not by making the clients).
    var fleet: Bool {
        if !url.isEmpty || !socket.isEmpty { return url.count + socket.count > 1 }
        return Self.environment("BURROW_URLS").map { Self.urlList($0).count > 1 } ?? false
    }

    /// Sends a request and decodes a 2xx answer as `T`; anything else is printed as burrowd's error and fails.
    func call<T: Decodable>(_ method: String, _ path: String, body: (some Encodable)? = Optional<Int>.none, headers: [(String, String)] = [], as type: T.Type) throws -> T {
        let response = try send(method, path, body: body, headers: headers)
        do {
            return try JSONDecoder().decode(T.self, from: Data(response.body))
        } catch {
            throw CLIError("burrowd sent an answer this burrow cannot read (\(error)); are burrow and burrowd the same version?")
        }
    }

    /// - Parameter acceptStatus: statuses besides 2xx the caller handles itself.
    func send(
        _ method: String, _ path: String, body: (some Encodable)? = Optional<Int>.none, headers: [(String, String)] = [], acceptStatus: Set<Int> = [],
        onBody: (([UInt8]) -> Void)? = nil
    ) throws -> UnixHTTPClient.Response {
        var bytes: [UInt8]?
        if let body {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            bytes = Array(try encoder.encode(body))
        }
        let response = try sendToAny(method, path, body: bytes, headers: headers, onBody: onBody)
        guard (200..<300).contains(response.status) || acceptStatus.contains(response.status) else { throw Self.failure(response) }
        return response
    }

    /// Sends to one node, starting at a random one of several (requests
    /// spread), and on to the next while a node does not take it: it cannot
    /// be reached (nothing sent), or it refuses with 503 (shutting down,
    /// busy: nothing ran) or 502 `central_unavailable` (it cannot reach the
    /// fleet's database: no change made, nothing run). A request that may have reached a node that then
    /// failed goes on only when sending it twice does no harm: a read, a
    /// PUT or DELETE (the same change again), or one with an Idempotency-Key
    /// (answered from the first run).
    func sendToAny(
        _ method: String, _ path: String, body: [UInt8]?, headers: [(String, String)], onBody: (([UInt8]) -> Void)?
    ) throws -> UnixHTTPClient.Response {
        let all = try clients()
        let start = all.count > 1 ? Int.random(in: 0..<all.count) : 0
        let order = Array(all[start...] + all[..<start])
        let repeatable = ["GET", "HEAD", "PUT", "DELETE"].contains(method) || headers.contains { $0.0.lowercased() == "idempotency-key" }
        for (i, client) in order.enumerated() {
            let last = i == order.count - 1
            do {
                let response = try client.send(method, path, body: body, headers: headers, onBody: onBody)
                // 503: refused before anything ran; 502 central_unavailable: this node cannot reach the fleet's database, and made no change and ran nothing.
                let elsewhere =
                    response.status == 503
                    || (response.status == 502 && (try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)))?.error.code == "central_unavailable")
                if elsewhere, !last {
                    printError("burrow: \(client.name) refused the request (\(Self.failure(response))); trying \(order[i + 1].name)")
                    continue
                }
                return response
            } catch {
                guard !last, !error.sent || repeatable else { throw CLIError(error.description) }
                printError("burrow: \(error.description); trying \(order[i + 1].name)")
            }
        }
        throw CLIError("no node was given")
    }

    /// burrowd's error body as a message (with every validation finding).
    static func failure(_ response: UnixHTTPClient.Response) -> CLIError {
        guard let error = try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)) else {
            return CLIError("burrowd answered \(response.status): \(String(decoding: response.body.prefix(500), as: UTF8.self))")
        }
        var text = "\(error.error.message) [\(error.error.code)]"
        if let retry = response.header("retry-after") { text += " (retry after \(retry) s)" }
        for f in error.validation?.findings ?? [] {
            text += "\n  \(f.severity): \(f.keyPath.isEmpty ? "" : f.keyPath + ": ")\(printable(f.message))"
        }
        return CLIError(text)
    }
}

/// Percent-encodes a path segment or query value.
func urlEncoded(_ text: String) -> String {
    let safe = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
    let hex = Array("0123456789ABCDEF")
    return text.utf8.map { safe.contains($0) ? String(UnicodeScalar($0)) : "%\(hex[Int($0 >> 4)])\(hex[Int($0 & 15)])" }.joined()
}

/// `burrow tools`: the daemon's registry from the command line.
struct ToolsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tools",
        abstract: "Register, list, show, search and remove tools in burrowd's registry.",
        discussion: """
            Talks to burrowd over its Unix socket (see `burrowd --help`). Registering and removing \
            need the admin role; listing, showing and searching any role.

            Examples:
              burrow tools register --profile Profiles/mcp-server-time.toml --version 1.0.0 \\
                  --category time -- python3 -m mcp_server_time
              burrow tools list --category time
              burrow tools show mcp-server-time
              burrow tools search clock
              burrow tools remove mcp-server-time --version 1.0.0
              burrow tools manifest --profile P.toml -- /opt/venvs/x/bin/x > x.manifest
              burrow tools sign --key signer.key --cert signer.pem x.manifest
              burrow tools verify --store /etc/burrow/certs x.manifest
            """,
        subcommands: [Register.self, List.self, Show.self, Search.self, Remove.self, ApproveDefinitions.self, Manifest.self, Sign.self, Verify.self])

    struct Register: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "register",
            abstract: "Register a tool version (or replace it with --update).",
            discussion: """
                The profile is sent as it is (TOML or JSON) and validated by burrowd exactly like \
                `burrow profile lint`, then clamped by its host policy; every finding is printed. Its \
                `extends` must name a profile burrowd has (in its profile path), not a file path. The \
                registration id is the profile's [tool] id. Alternatively give a whole ToolRegistration \
                as JSON with --file (docs/daemon-api.md shows the format).
                """)

        @OptionGroup var daemon: DaemonOptions

        @Option(name: .long, help: ArgumentHelp("The tool's security profile (.toml or .json).", valueName: "file"))
        var profile: String?

        @Option(name: .long, help: ArgumentHelp("A complete registration as JSON, in Burrow's form or the specification's (instead of --profile and the options below).", valueName: "file"))
        var file: String?

        @Option(name: .long, help: "The version being registered, such as 1.2.0 (default: the profile's [tool] version).")
        var version: String?

        @Option(name: .long, help: "Display name (default: the profile's [tool] name).")
        var name: String?

        @Option(name: .long, help: "What the tool does (default: the profile's [tool] description).")
        var description: String?

        @Option(name: .long, help: "The tool's author.")
        var author: String?

        @Option(name: .long, help: ArgumentHelp("A category (repeat for several).", valueName: "name"))
        var category: [String] = []

        @Option(name: .long, help: "A documentation URL.")
        var documentation: String?

        @Option(name: .long, help: "active, deprecated or disabled.")
        var status: String = "active"

        @Option(name: .long, help: "Requests per minute this tool accepts (lowered to the host policy's).")
        var requestsPerMinute: Int?

        @Option(name: .long, help: "Sandboxes of this tool that may run at once (lowered to the host policy's).")
        var maxConcurrent: Int?

        @Option(
            name: .long,
            help: ArgumentHelp(
                "Check the tool's health every this many seconds (\(HealthCheck.intervals.lowerBound) to \(HealthCheck.intervals.upperBound)); an MCP server is started and must answer initialize and tools/list, any other tool needs --health-command.",
                valueName: "seconds"))
        var healthInterval: Int?

        @Option(name: .long, help: ArgumentHelp("Each health check's time limit (default \(HealthCheck.defaultTimeout)).", valueName: "seconds"))
        var healthTimeout: Int?

        @Option(
            name: .long, help: ArgumentHelp("Failed checks in a row that make the tool unavailable (default \(HealthCheck.defaultThreshold)); fewer make it degraded.", valueName: "n"))
        var healthThreshold: Int?

        @Option(
            name: .long,
            help: ArgumentHelp(
                "A tool that is not an MCP server: the check run in its sandbox instead of its command, healthy when it exits 0: an executable, or a JSON list such as '[\"sh\", \"-c\", \"test -r /srv/data\"]'.",
                valueName: "command"))
        var healthCommand: String?

        @Option(
            name: .long,
            help: ArgumentHelp(
                "The tool's signed manifest (its signature beside it, FILE.sig): every invocation runs at the level its signer grants, from the verified copies.",
                valueName: "file"))
        var manifest: String?

        @Flag(name: .long, help: "Replace an existing version (PUT) instead of adding one.")
        var update = false

        @Argument(parsing: .postTerminator, help: ArgumentHelp("The command each invocation runs, after '--'; callers' arguments are appended.", valueName: "command"))
        var command: [String] = []

        func validate() throws {
            if file == nil && profile == nil { throw ValidationError("give --profile FILE and the command after '--', or --file REGISTRATION.json") }
            if file != nil && (profile != nil || !command.isEmpty) { throw ValidationError("--file holds the whole registration: drop --profile and the command") }
            if profile != nil && command.isEmpty { throw ValidationError("give the command after '--', e.g. -- python3 -m mcp_server_time") }
            if !ToolStatus.registrable.contains(where: { $0.rawValue == status }) { throw ValidationError("--status: expected active, deprecated or disabled") }
            if healthInterval == nil && (healthTimeout != nil || healthThreshold != nil || healthCommand != nil) {
                throw ValidationError("--health-timeout, --health-threshold and --health-command go with --health-interval SECONDS")
            }
            if let problem = try health()?.problem { throw ValidationError(problem) }
        }

        /// The health check the options describe.
        private func health() throws -> HealthCheck? {
            guard let healthInterval else { return nil }
            var command: [String]?
            if let text = healthCommand {
                if text.hasPrefix("[") {
                    guard let argv = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
                        throw ValidationError("--health-command: a JSON list of strings, such as '[\"sh\", \"-c\", \"test -r /srv/data\"]'")
                    }
                    command = argv
                } else {
                    command = [text]
                }
            }
            return HealthCheck(
                intervalSeconds: healthInterval, timeoutSeconds: healthTimeout ?? HealthCheck.defaultTimeout,
                unhealthyThreshold: healthThreshold ?? HealthCheck.defaultThreshold, command: command)
        }

        func run() throws {
            var registration: ToolRegistration
            if let file {
                guard let text = HostConfiguration.readTextFile(file) else { throw CLIError("cannot read \(file)") }
                do {
                    // Either form; sent in Burrow's (the same profile object, so the same digest).
                    registration = try SpecificationForm.decode(try JSONParser.parse(text), limit: 64 << 20).registration
                } catch {
                    throw CLIError("\(file) is not a registration (Burrow's form or the specification's): \(error)")
                }
            } else if let profile {
                registration = try fromProfile(profile)
            } else {
                throw CLIError("give --profile FILE or --file REGISTRATION.json")
            }
            if let manifest {
                func text(_ path: String) throws -> String { String(decoding: try ManifestIO.read(path), as: UTF8.self) }
                registration.manifest = SignedManifest(manifest: try text(manifest), signature: try text(manifest + ".sig"))
            }
            let path = update ? "/v1/tools/\(urlEncoded(registration.id))" : "/v1/tools"
            let record = try daemon.call(update ? "PUT" : "POST", path, body: registration, as: ToolRecord.self)
            let v = record.validation
            print("\(update ? "updated" : "registered") \(record.registration.id) \(record.registration.metadata.version)" + (v.exposureScore.map { " (exposure \($0))" } ?? ""))
            for f in v.findings { print("  \(f.severity): \(f.keyPath.isEmpty ? "" : f.keyPath + ": ")\(printable(f.message))") }
            for c in v.clamps { print("  clamped \(c.key): \(c.requested) → \(c.effective) (\(c.reason))") }
            for u in v.plan?.unenforceable ?? [] { print("  warning: not enforceable on this host, invocations will be refused: \(u)") }
            if let trust = v.plan?.trust { print("  trust: \(trust.level) (\(printable(trust.reason)))" + (trust.expires.map { "; the manifest expires \($0)" } ?? "")) }
        }

        private func fromProfile(_ path: String) throws -> ToolRegistration {
            guard let text = HostConfiguration.readTextFile(path) else { throw CLIError("cannot read the profile \(path)") }
            let format = ConfigFormat(path: path) ?? .toml
            let document: JSON
            do {
                document = format == .json ? try JSONParser.parse(text) : .string(text)
            } catch {
                throw CLIError("\(path) is not valid JSON: \(error)")
            }
            let field = ProfileToolTable(text, path: path).field
            guard let id = field("id") else { throw CLIError("\(path) has no [tool] id: the registration id is taken from it") }
            guard let version = version ?? field("version") else { throw CLIError("give --version (the profile's [tool] has no version)") }
            return ToolRegistration(
                id: id,
                metadata: ToolMetadata(
                    name: name ?? field("name") ?? id, version: version, description: description ?? field("description") ?? "", author: author,
                    categories: category, documentationURL: documentation),
                profile: document, command: command, status: ToolStatus(rawValue: status) ?? .active,
                rateLimits: requestsPerMinute == nil && maxConcurrent == nil ? nil : ToolRateLimits(requestsPerMinute: requestsPerMinute, maxConcurrent: maxConcurrent),
                health: try health())
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List registered tools (the latest version of each).")

        @OptionGroup var daemon: DaemonOptions

        @Option(name: .long, help: "Only tools in this category.")
        var category: String?

        @Option(name: .long, help: "Only tools with this status: active, deprecated, disabled, or (failing health checks) degraded or unavailable.")
        var status: String?

        @Flag(name: .long, help: "Print the registrations as JSON.")
        var json = false

        func run() throws {
            var query: [String] = []
            if let category { query.append("category=\(urlEncoded(category))") }
            if let status { query.append("status=\(urlEncoded(status))") }
            let tools = try daemon.call("GET", "/v1/tools" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")), as: [ToolRecord].self)
            if json { return try printJSON(tools) }
            printTable(tools)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Show one tool: its registration, validation and versions.")

        @OptionGroup var daemon: DaemonOptions

        @Argument(help: "The tool id.")
        var id: String

        @Option(name: .long, help: "A version (default: the latest).")
        var version: String?

        @Option(name: .long, help: ArgumentHelp("The window of its usage statistics, such as 24h or 30d (default: 7d).", valueName: "duration"))
        var window: String?

        @Flag(name: .long, help: "Print it as JSON.")
        var json = false

        func run() throws {
            let query = [version.map { "version=\(urlEncoded($0))" }, window.map { "window=\(urlEncoded($0))" }].compactMap(\.self)
            let detail = try daemon.call("GET", "/v1/tools/\(urlEncoded(id))" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")), as: ToolDetail.self)
            if json { return try printJSON(detail) }
            let r = detail.tool.registration
            let m = r.metadata
            var rows: [[String]] = [
                ["id", r.id], ["name", m.name], ["version", m.version + (detail.versions.count > 1 ? "  (all: \(detail.versions.joined(separator: ", ")))" : "")],
                ["status", detail.tool.status.rawValue + (detail.tool.status != r.status ? " (registered \(r.status.rawValue))" : "")],
                ["command", r.command.map(AuditPrinter.shellQuoted).joined(separator: " ")],
                ["description", m.description], ["categories", m.categories.joined(separator: ", ")],
                ["registered", "\(detail.tool.registeredAt) by \(detail.tool.registeredBy); updated \(detail.tool.updatedAt)"],
            ]
            if let a = m.author { rows.append(["author", a]) }
            if let d = m.documentationURL { rows.append(["documentation", d]) }
            if let s = detail.tool.validation.exposureScore { rows.append(["exposure", "\(s) (0 nothing exposed … 10)"]) }
            if let p = detail.tool.validation.plan {
                rows.append(["sandbox", "\(p.sandboxLevel); namespaces \(p.namespaces.joined(separator: " ")); network \(p.networkAccess)"])
                rows.append(["limits", p.limits.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")])
            }
            if let h = r.health {
                var text = "every \(h.intervalSeconds) s (timeout \(h.timeoutSeconds) s, unavailable after \(h.unhealthyThreshold) failures in a row)"
                text += h.command.map { ": " + $0.map(AuditPrinter.shellQuoted).joined(separator: " ") } ?? ": initialize and tools/list"
                if let found = detail.tool.health {
                    text += "; \(found.status.rawValue)" + (found.since.map { " since \($0)" } ?? "")
                    if let at = found.checkedAt { text += ", last checked \(at)" + (found.lastMilliseconds.map { " (\($0) ms)" } ?? "") }
                    if let error = found.lastError { text += "; \(found.consecutiveFailures) failed in a row, last: \(error)" }
                } else {
                    text += "; not checked yet"
                }
                rows.append(["health", text])
            }
            if !detail.dependents.isEmpty { rows.append(["dependents", detail.dependents.map { "\($0.id) \($0.version) (\($0.versionRequirement))" }.joined(separator: ", ")]) }
            if let s = detail.statistics {
                var usage = "\(s.invocations) runs since \(s.since)"
                if let rate = s.successRate { usage += ", \(Int((rate * 100).rounded()))% completed" }
                if let p50 = s.p50Milliseconds, let p95 = s.p95Milliseconds { usage += ", p50 \(p50) ms, p95 \(p95) ms" }
                if let cpu = s.meanCPUMicroseconds { usage += ", CPU \(cpu / 1000) ms on average" }
                if let memory = s.peakMemoryBytes { usage += ", peak memory \(memory >> 20) MiB" }
                usage += "; \(s.limitHits) limit hits, \(s.violations) violations, \(s.denials) refusals"
                rows.append(["usage", usage])
            }
            print(columns(rows.map { [$0[0], printable($0[1])] }, indent: 0))
            for c in detail.tool.validation.clamps { print("  clamped \(c.key): \(c.requested) → \(c.effective) (\(c.reason))") }
        }
    }

    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "search", abstract: "Search tools by name, id, description and category (words match as prefixes).")

        @OptionGroup var daemon: DaemonOptions

        @Argument(help: "Words to search for.")
        var words: [String]

        @Flag(name: .long, help: "Print the matches as JSON.")
        var json = false

        func run() throws {
            let tools = try daemon.call("GET", "/v1/discovery/search?q=\(urlEncoded(words.joined(separator: " ")))", as: [ToolRecord].self)
            if json { return try printJSON(tools) }
            printTable(tools)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove", abstract: "Remove a tool: one version, or every version.")

        @OptionGroup var daemon: DaemonOptions

        @Argument(help: "The tool id.")
        var id: String

        @Option(name: .long, help: "Only this version (default: all of them).")
        var version: String?

        func run() throws {
            let removed = try daemon.call("DELETE", "/v1/tools/\(urlEncoded(id))" + (version.map { "?version=\(urlEncoded($0))" } ?? ""), as: RemovedTool.self)
            print("removed \(removed.id) \(removed.removed.joined(separator: ", "))")
        }
    }
}

extension ToolsCommand {
    struct ApproveDefinitions: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "approve-definitions",
            abstract: "Show the tool definitions a registered MCP server offers in place of those pinned, and approve them.",
            discussion: """
                burrowd pins each registered server's tool definitions (the first complete listing one of \
                its sessions or health checks sees); a tool listed otherwise later is withheld and its calls \
                refused. This shows what the server offers instead, field by field; with --yes it approves \
                exactly that set (named by its digest: a set that changed meanwhile is refused).
                """)

        @OptionGroup var daemon: DaemonOptions

        @Argument(help: "The tool id.")
        var id: String

        @Option(name: .long, help: "The version (default: the latest).")
        var version: String?

        @Flag(name: .long, help: "Approve the set shown.")
        var yes = false

        func run() throws {
            let shown = try daemon.call("GET", "/v1/tools/\(urlEncoded(id))/definitions" + (version.map { "?version=\(urlEncoded($0))" } ?? ""), as: ToolDefinitions.self)
            guard let set = shown.offeredSet else {
                print("\(shown.id) \(shown.version): nothing offered other than the approved definitions")
                return
            }
            print("\(shown.id) \(shown.version) offers \(set):")
            // Whole: what is approved is what is shown (the diff cuts long fields).
            for d in shown.differences {
                let name = d["name"]?.stringValue ?? "?"
                print(
                    "  \(d["change"]?.stringValue ?? "?") \(printable(name))"
                        + ((d["fields"]?.arrayValue).map { f in f.isEmpty ? "" : ": " + f.compactMap(\.stringValue).joined(separator: ", ") } ?? ""))
                if let before = shown.approved?["tools"]?[name] { print("    approved: \(printable(before.canonicalText))") }
                if let now = shown.offered?["tools"]?[name] { print("    offered:  \(printable(now.canonicalText))") }
            }
            guard yes else {
                print("run again with --yes to approve it")
                return
            }
            let approved = try daemon.call("POST", "/v1/tools/\(urlEncoded(id))/definitions", body: DefinitionsApproval(version: shown.version, approve: set), as: DefinitionsApproval.self)
            print("approved \(approved.approve) for \(shown.id) \(approved.version ?? shown.version)")
        }
    }
}

private func printTable(_ tools: [ToolRecord]) {
    guard !tools.isEmpty else {
        print("no tools")
        return
    }
    let style = Style.stdout
    var rows = [["ID", "VERSION", "STATUS", "CATEGORIES", "DESCRIPTION"].map(style.bold)]
    for t in tools {
        let m = t.registration.metadata
        rows.append([t.registration.id, m.version, t.status.rawValue, m.categories.joined(separator: ","), String(m.description.prefix(60))].map(printable))
    }
    print(columns(rows, indent: 0))
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// A profile's `[tool]` table as written (what it extends is burrowd's
/// business): the registration's and the manifest's id, version and name.
struct ProfileToolTable {
    private let document: ConfigValue?

    init(_ text: String, path: String) {
        document = try? ConfigValue.parse(text, format: ConfigFormat(path: path) ?? .toml, file: path)
    }

    func field(_ key: String) -> String? {
        guard case .table(let root)? = document, case .table(let t)? = root["tool"], case .string(let s)? = t[key] else { return nil }
        return s
    }
}
