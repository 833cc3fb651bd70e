import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

/// Restricted network end to end: real clients (curl, Python's urllib, git,
/// the MCP SDK with mcp-server-fetch) in a sandbox under `burrow run`, the
/// supervisor's egress proxy, and destinations in a network namespace the test
/// creates (Tests/Egress/netns-harness.sh): nothing leaves this machine.
@Suite(
    .serialized, .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits),
    .requires(.installed("/usr/bin/unshare")), .requires(.installed("/usr/bin/curl")), .requires(.installed("/usr/bin/git")),
    .requires(.installed("/usr/sbin/ip")), .timeLimit(.minutes(5)))
struct EgressRunTests: SandboxTesting {
    let directory: String

    init() throws { directory = try Self.makeDirectory() }

    /// Everything the clients below need, and the harness's destinations.
    func clientsProfile(_ extra: String = "") throws -> String {
        let path = directory + "/clients.toml"
        try """
        sandbox_level = "container"
        network_access = "restricted"
        [tool]
        id = "egress-clients"
        name = "egress clients"
        version = "1"
        [permissions]
        execute = ["curl", "python3", "git", "/usr/lib/git-core/git", "/usr/lib/git-core/git-remote-http"]
        file_read = ["/usr/lib/python3.11/**", "/usr/lib/git-core/**", "/usr/share/git-core/**"]
        network = ["allowed.test:8080", "v6only.test:8080", "evil.test:8080", "meta.test:80", "[2001:db8::10]:8080"]
        [permissions.process]
        fork = true
        max_processes = 64
        [resource_limits]
        max_open_files = 1024
        \(extra)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs `script` (bash) inside the harness's network namespace, with $B
    /// the burrow binary, $P `profile` and $W the test directory.
    func inNetwork(_ script: String, profile: String) throws -> String {
        let harness = Fixtures.repositoryRoot + "/Tests/Egress/netns-harness.sh"
        let result = try Subprocess.run(
            ["/usr/bin/unshare", "--net", "--mount", "--fork", "--kill-child", "/bin/bash", harness, directory, "--", "/bin/bash", "-c", script],
            environment: burrowEnvironment.merging(["B": Subprocess.burrow, "P": profile, "W": directory]) { $1 })
        #expect(result.status == 0, "harness: \(result.stderr)")
        return result.output + result.stderr
    }

    func events(_ type: AuditEventType) throws -> [[String: JSON]] {
        try auditLog().events(AuditQuery(types: [type])).compactMap { event -> [String: JSON]? in
            if case .object(let d) = event.details { return d }
            return nil
        }
    }

    @Test("allowed destinations through HTTP forwarding, CONNECT and SOCKS5: curl, urllib, git, IPv6; each connection audited")
    func allowedDestinations() throws {
        let profile = try clientsProfile()
        let output = try inNetwork(
            """
            run() { echo "== $1"; shift; "$B" run --quiet --profile "$P" -- "$@" 2>&1; echo "rc=$?"; }
            run forward curl -sS -m 10 http://allowed.test:8080/index.html
            run connect curl -sS -m 10 -p http://allowed.test:8080/index.html
            run socks curl -sS -m 10 --proxy socks5h://127.0.0.1:3128 http://allowed.test:8080/index.html
            run normalised curl -sS -m 10 http://ALLOWED.TEST.:8080/index.html
            run ipv6-literal curl -sS -m 10 'http://[2001:db8::10]:8080/index.html'
            run ipv6-name curl -sS -m 10 http://v6only.test:8080/index.html
            run urllib python3 -c "import urllib.request; print(urllib.request.urlopen('http://allowed.test:8080/index.html', timeout=10).read().decode())"
            run git git ls-remote http://allowed.test:8080/repo.git
            """, profile: profile)
        let sections = output.components(separatedBy: "== ").dropFirst()
        #expect(sections.count == 8, "\(output)")
        for section in sections {
            let name = section.prefix { $0 != "\n" }
            let ok = name == "git" ? section.contains("refs/heads/main") : section.contains("hello through the proxy")
            #expect(ok && section.contains("rc=0"), "\(section)")
        }
        let connections = try events(.networkConnection)
        #expect(connections.count >= 8, "one per client, two for git: \(connections)")
        #expect(connections.allSatisfy { $0["outcome"] == .string("allowed") })
        #expect(connections.contains { $0["host"] == .string("allowed.test") && $0["address"] == .string("203.0.113.10") && $0["protocol"] == .string("socks5") })
        #expect(connections.contains { $0["host"] == .string("v6only.test") && $0["address"] == .string("2001:db8::10") })
        #expect(connections.allSatisfy { ($0["bytesIn"]?.integerValue ?? 0) > 0 })
        #expect(try events(.permissionDenied).isEmpty)
    }

    @Test("refused: other hosts and ports, names resolving to loopback or the metadata address, IP literals in any notation, direct connections, DNS")
    func everythingElseIsRefused() throws {
        let profile = try clientsProfile()
        let output = try inNetwork(
            #"""
            code() { echo "== $1 $("$B" run --quiet --profile "$P" -- curl -s -m 10 -o /dev/null -w '%{http_code} %header{x-burrow-refusal}' "$2")"; }
            code other-host http://other.test:8080/
            code other-port http://allowed.test:8081/
            code loopback-name http://evil.test:8080/
            code metadata-name http://meta.test/latest/meta-data/
            code decimal http://2130706433:8080/
            code hex http://0x7f.1:8080/
            code mapped 'http://[::ffff:127.0.0.1]:8080/'
            code suffix-trick http://allowed.test.other.test:8080/
            echo "== direct $("$B" run --quiet --profile "$P" -- curl -sS -m 5 --noproxy '*' http://203.0.113.10:8080/ 2>&1 | tr '\n' ' '; echo rc=${PIPESTATUS[0]})"
            echo "== dns $("$B" run --quiet --profile "$P" -- python3 -c "import socket; socket.getaddrinfo('allowed.test', 8080)" 2>&1 | tail -1)"
            echo "== udp $("$B" run --quiet --profile "$P" -- python3 -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'q', ('203.0.113.10', 53))" 2>&1 | tail -1)"
            """#, profile: profile)
        func line(_ name: String) -> String { output.split(separator: "\n").first { $0.hasPrefix("== \(name) ") }.map(String.init) ?? "(missing)" }
        #expect(line("other-host") == "== other-host 403 host_not_allowed")
        #expect(line("other-port") == "== other-port 403 port_not_allowed")
        #expect(line("loopback-name") == "== loopback-name 403 special_address")
        #expect(line("metadata-name") == "== metadata-name 403 special_address")
        for literal in ["decimal", "hex", "mapped"] { #expect(line(literal) == "== \(literal) 403 host_not_allowed", "\(output)") }
        #expect(line("suffix-trick") == "== suffix-trick 403 host_not_allowed")
        #expect(line("direct").contains("rc=7"), "no route out without the proxy: \(line("direct"))")
        #expect(line("dns").contains("gaierror"), "no resolver inside: \(line("dns"))")
        #expect(line("udp").contains("Network is unreachable"), "\(line("udp"))")
        let denied = try events(.permissionDenied)
        #expect(denied.count == 8, "\(denied)")
        #expect(denied.contains { $0["host"] == .string("meta.test") && $0["reason"] == .string("special_address") && ($0["message"].map { "\($0)".contains("169.254.169.254") } ?? false) })
        #expect(try events(.networkConnection).isEmpty, "nothing was connected")
    }

    @Test("a tool opening 1,000 connections gets max_connections of them; every refusal is audited and the run ends cleanly")
    func aThousandConnections() throws {
        let profile = try clientsProfile("max_connections = 16")
        let output = try inNetwork(
            """
            "$B" run --quiet --profile "$P" -- python3 -c '
            import socket
            held, accepted = [], 0
            for i in range(1000):
                try:
                    held.append(socket.create_connection(("127.0.0.1", 3128), timeout=5))
                except OSError:
                    pass  # reset by the proxy before connect() returned
            for s in held:
                try:
                    s.sendall(b"CONNECT allowed.test:8080 HTTP/1.1\\r\\n\\r\\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"): accepted += 1
                except OSError:
                    pass
            print("accepted", accepted)
            '
            echo "rc=$?"
            """, profile: profile)
        #expect(output.contains("accepted 16"), "\(output)")
        #expect(output.contains("rc=0"), "\(output)")
        let denied = try events(.permissionDenied)
        #expect(denied.count == 984, "\(denied.count) refusals")
        #expect(denied.allSatisfy { $0["reason"] == .string("connection_limit") })
        #expect(try events(.networkConnection).count == 16)
        #expect(try !events(.anomalousActivity).isEmpty, "a burst of refusals is anomalous")
    }

    @Test("burrowd: a registered restricted tool reaches its allowlist through the proxy, cloned by burrow-spawner into the prepared namespace")
    func throughTheDaemon() throws {
        let profile = directory + "/daemon-clients.toml"
        try """
        sandbox_level = "container"
        network_access = "restricted"
        [tool]
        id = "egress-daemon"
        name = "egress through burrowd"
        version = "1"
        description = "curl"
        [permissions]
        execute = ["curl"]
        network = ["allowed.test:8080"]
        """.write(toFile: profile, atomically: true, encoding: .utf8)
        let output = try inNetwork(
            """
            D=$(dirname "$B")
            printf '[daemon]\\nsocket = "%s"\\nregistry = "%s"\\n[audit]\\ndatabase = "%s"\\n' "$W/d.sock" "$W/registry.db" "$BURROW_AUDIT_DB" > "$W/burrow.toml"
            "$D/burrowd" --policy "$W/burrow.toml" 2>"$W/burrowd.log" &
            for _ in $(seq 200); do [ -S "$W/d.sock" ] && break; sleep 0.05; done
            export BURROW_SOCKET=$W/d.sock
            "$B" tools register --profile "$P" --version 1.0.0 -- curl -sS -m 10 >/dev/null
            echo "== allowed $("$B" invoke egress-daemon --json -- http://allowed.test:8080/index.html | tr -d '\\n')"
            echo "== refused $("$B" invoke egress-daemon -- -o /dev/null -w '%{http_code}' http://evil.test:8080/)"
            kill -KILL %1
            """, profile: profile)
        let allowed = output.split(separator: "\n").first { $0.hasPrefix("== allowed ") }.map { String($0.dropFirst(11)) } ?? ""
        let result = try JSONSerialization.jsonObject(with: Data(allowed.utf8)) as? [String: Any]
        #expect(((result?["stdout"] as? [String: Any])?["text"] as? String) == "hello through the proxy\n", "\(output)")
        #expect(result?["notes"] == nil, "no fallback note: burrow-spawner cloned the sandbox: \(result?["notes"] ?? "")")
        #expect(output.contains("== refused 403"), "\(output)")
        #expect(try events(.networkConnection).contains { $0["host"] == .string("allowed.test") })
        #expect(try events(.permissionDenied).contains { $0["host"] == .string("evil.test") && $0["reason"] == .string("host_not_allowed") })
    }

    @Test(
        "mcp-server-fetch under its shipped profile, driven by the MCP SDK client: allowlisted site fetched, any other refused, both audited",
        .requires(.installed("/opt/burrow/venvs/mcp-server-fetch/bin/python3")))
    func mcpServerFetch() throws {
        let shipped = Fixtures.profilesDirectory + "/mcp-server-fetch.toml"
        let client = Fixtures.repositoryRoot + "/Tests/Egress/fetch_client.py"
        let output = try inNetwork(
            """
            V=/opt/burrow/venvs/mcp-server-fetch/bin/python3
            for url in http://example.com/index.html http://other.test/index.html; do
                timeout 120 $V \(client) "$url" -- "$B" mcp --profile "$P" -- $V -m mcp_server_fetch
            done
            """, profile: shipped)
        let results = output.split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        try #require(results.count == 2, "\(output)")
        #expect(results[0]["tools"] as? [String] == ["fetch"])
        #expect(results[0]["isError"] as? Bool == false && (results[0]["text"] as? String ?? "").contains("hello through the proxy"), "\(results[0])")
        #expect(results[1]["isError"] as? Bool == true, "\(results[1])")
        // Through the MCP relay: each connection names the call it served.
        let allowed = try #require(try events(.networkConnection).first { $0["host"] == .string("example.com") && $0["port"] == .integer(80) })
        #expect(allowed["during"]?.arrayValue?.first?.stringValue?.hasSuffix("/1") == true, "\(allowed)")
        let refused = try #require(try events(.permissionDenied).first { $0["host"] == .string("other.test") && $0["reason"] == .string("host_not_allowed") })
        #expect(refused["during"]?.arrayValue?.count == 1)
    }

    @Test(
        "mcp-server-fetch in its default (markdown) mode under the shipped profile: readabilipy's probe for node finds none and the page converts",
        .requires(.installed("/opt/burrow/venvs/mcp-server-fetch/bin/python3")))
    func mcpServerFetchMarkdown() throws {
        let shipped = Fixtures.profilesDirectory + "/mcp-server-fetch.toml"
        let client = Fixtures.repositoryRoot + "/Tests/Egress/fetch_client.py"
        let output = try inNetwork(
            """
            V=/opt/burrow/venvs/mcp-server-fetch/bin/python3
            timeout 120 $V \(client) --markdown http://example.com/page.html -- "$B" mcp --profile "$P" -- $V -m mcp_server_fetch
            """, profile: shipped)
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("{") }, "\(output)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let text = result["text"] as? String ?? ""
        #expect(result["isError"] as? Bool == false, "\(result)")
        #expect(text.contains("long enough for a readability extractor") && !text.contains("<p>"), "converted to markdown: \(text)")
    }

    @Test("a 'localhost' grant reaches a service on the host's loopback through the proxy (curl and urllib honour the proxy: no NO_PROXY)")
    func localhostGrant() throws {
        let profile = try clientsProfile()
        let text = try String(contentsOfFile: profile, encoding: .utf8).replacingOccurrences(
            of: #"network = ["allowed.test:8080", "v6only.test:8080", "evil.test:8080", "meta.test:80", "[2001:db8::10]:8080"]"#, with: #"network = ["localhost:8080"]"#)
        try text.write(toFile: profile, atomically: true, encoding: .utf8)
        let output = try inNetwork(
            """
            run() { "$B" run --quiet --profile "$P" -- "$@" 2>&1; }
            run curl -sS -m 10 http://localhost:8080/index.html
            run python3 -c "import urllib.request; print(urllib.request.urlopen('http://localhost:8080/index.html', timeout=10).read().decode().strip())"
            run curl -sS -m 10 -o /dev/null -w '%{http_code}\\n' http://localhost:80/index.html
            """, profile: profile)
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0 == "hello through the proxy" }.count == 2, "curl and urllib: \(output)")
        #expect(lines.contains("403"), "port 80 is not granted: \(output)")
        let connections = try events(.networkConnection).filter { $0["host"] == .string("localhost") }
        #expect(connections.count == 2 && connections.allSatisfy { $0["address"] == .string("127.0.0.1") }, "\(connections)")
    }
}
