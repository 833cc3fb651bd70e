import BurrowPolicy
import BurrowProfile
import Testing

@Suite("Egress rules: normalisation and decisions")
struct EgressRulesTests {
    private func host(_ text: String) -> EgressHost? { try? EgressHost.normalise(text).get() }

    private func rules(_ targets: String...) throws -> EgressRules {
        EgressRules(try targets.map { try NetworkTarget.parse($0).get() })
    }

    @Test(arguments: [
        ("Example.COM", "example.com"), ("example.com.", "example.com"), ("ＥＸＡＭＰＬＥ．com", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"), ("münchen.de", "xn--mnchen-3ya.de"), ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("docs.python.org", "docs.python.org"),
    ])
    func namesNormalise(_ input: String, _ expected: String) {
        #expect(host(input) == .name(expected))
    }

    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("127.0.0.1.", "127.0.0.1"), ("１２７.0.0.1", "127.0.0.1"),
        ("169.254.43518", "169.254.169.254"), ("[::1]", "::1"), ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ("[2001:DB8::10]", "2001:db8::10"), ("::1", "::1"),
    ])
    func ipLiteralsInEveryNotationAreAddresses(_ input: String, _ expected: String) throws {
        guard case .address(let a) = try #require(host(input)) else {
            Issue.record("\(input) was not read as an address")
            return
        }
        #expect(a.description == expected)
    }

    @Test(arguments: [
        "", ".", "a..b", "exa mple.com", "example.com/x", "ex_ample.com", "-a.com", "a-.com", "999.1.1.1", "1.2.3.4.5", "0x1g.0", "[::1%eth0]", "[1.2.3.4]", "a\u{200D}b.com", "x.example\u{0}.com",
        String(repeating: "a", count: 64) + ".com",
    ])
    func malformedHostsAreRefused(_ input: String) {
        guard case .failure(let refusal) = EgressHost.normalise(input) else {
            Issue.record("'\(input)' normalised to \(String(describing: host(input)))")
            return
        }
        #expect(refusal.code == "malformed_host")
    }

    @Test func namesMatchEntriesAndPorts() throws {
        let r = try rules("docs.python.org:443", "*.wikipedia.org:443", "example.com:80", "example.com:8000-8100")
        #expect(r.admit(.name("docs.python.org"), port: 443) == nil)
        #expect(r.admit(.name("en.wikipedia.org"), port: 443) == nil)
        #expect(r.admit(.name("wikipedia.org"), port: 443) == .hostNotAllowed("wikipedia.org"), "*.d matches subdomains only")
        #expect(r.admit(.name("evilwikipedia.org"), port: 443) == .hostNotAllowed("evilwikipedia.org"))
        #expect(r.admit(.name("docs.python.org.evil.com"), port: 443) == .hostNotAllowed("docs.python.org.evil.com"))
        #expect(r.admit(.name("example.com"), port: 8050) == nil)
        #expect(r.admit(.name("example.com"), port: 443) == .portNotAllowed(host: "example.com", port: 443))
        #expect(r.admit(.name("docs.python.org"), port: 80) == .portNotAllowed(host: "docs.python.org", port: 80))
        // A literal address needs an address entry, even for an allowlisted name's address.
        let a = try #require(IPAddress(literal: "93.184.215.14"))
        #expect(r.admit(.address(a), port: 80) == .hostNotAllowed("93.184.215.14"))
    }

    @Test func resolvedSpecialAddressesAreRefusedUnlessExplicit() throws {
        let r = try rules("internal.test:80", "meta.test:80", "ok.test:80", "mixed.test:80", "mapped.test:80")
        func screen(_ name: String, _ addresses: String...) -> EgressRefusal? {
            r.screen(addresses.compactMap { IPAddress(literal: $0) }, host: .name(name), port: 80)
        }
        #expect(screen("ok.test", "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c") == nil)
        for bad in [
            "127.0.0.1", "169.254.169.254", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fd00::1", "ff02::1", "::ffff:127.0.0.1",
            "64:ff9b::7f00:1", "2002:7f00:1::",
        ] {
            #expect(screen("internal.test", bad)?.code == "special_address", "\(bad) must be refused")
        }
        #expect(screen("mixed.test", "93.184.215.14", "127.0.0.1")?.code == "special_address", "one bad answer refuses the name")

        let explicit = try rules("internal.test:80", "127.0.0.0/8:80", "[::1]:8080")
        #expect(explicit.screen([IPAddress(literal: "127.0.0.1")!], host: .name("internal.test"), port: 80) == nil)
        #expect(explicit.screen([IPAddress(literal: "::ffff:127.0.0.1")!], host: .name("internal.test"), port: 80) == nil, "mapped form of an allowlisted range")
        #expect(explicit.screen([IPAddress(literal: "127.0.0.1")!], host: .name("internal.test"), port: 81)?.code == "special_address", "the entry's port counts")
        #expect(explicit.admit(.address(IPAddress(literal: "127.0.0.5")!), port: 80) == nil)
        #expect(explicit.admit(.address(IPAddress(literal: "::ffff:127.0.0.5")!), port: 80) == nil)
    }

    @Test("a 'localhost' grant allows the host's loopback for that name only, and only loopback")
    func localhostGrant() throws {
        let r = try rules("localhost:8080", "internal.test:8080")
        let loopback = EgressRules.localhostAddresses
        #expect(loopback.map(\.description) == ["127.0.0.1", "::1"])
        #expect(r.admit(.name("localhost"), port: 8080) == nil)
        #expect(r.admit(.name("localhost"), port: 8081) == .portNotAllowed(host: "localhost", port: 8081))
        #expect(r.screen(loopback, host: .name("localhost"), port: 8080) == nil)
        #expect(r.screen([IPAddress(literal: "10.0.0.1")!], host: .name("localhost"), port: 8080)?.code == "special_address", "loopback only")
        #expect(r.screen(loopback, host: .name("internal.test"), port: 8080)?.code == "special_address", "another name resolving to loopback is still refused")
        #expect(r.admit(.address(loopback[0]), port: 8080) == .hostNotAllowed("127.0.0.1"), "a literal address needs an address entry")
        let none = try rules("internal.test:8080")
        #expect(none.screen(loopback, host: .name("localhost"), port: 8080)?.code == "special_address", "no localhost grant, no loopback")
    }

    @Test func ipv4NotationsRejectOverflow() {
        #expect(IPAddress(anyIPv4Notation: "256.0.0.1") == nil)
        #expect(IPAddress(anyIPv4Notation: "1.2.65536") == nil)
        #expect(IPAddress(anyIPv4Notation: "4294967296") == nil)
        #expect(IPAddress(anyIPv4Notation: "4294967295")?.description == "255.255.255.255")
        #expect(IPAddress(anyIPv4Notation: "08.1.1.1") == nil, "8 is not an octal digit")
    }

    @Test func restrictedPlanCarriesTheProxyRules() throws {
        let plan = try compile(profile: "mcp-server-fetch", argv: ["python3", "-m", "mcp_server_fetch"], cwd: "/")
        let egress = try #require(plan.network.egress)
        #expect(plan.network.proxyEndpoint == "127.0.0.1:3128")
        #expect(egress.targets.map(\.description).contains("*.wikipedia.org:443"))
        #expect(egress.maxConnections == HostPolicy.defaults.policies.maxConnections)
        #expect(plan.environment.contains { $0.name == "HTTPS_PROXY" && $0.value == "http://127.0.0.1:3128" })
        let row = try #require(plan.controls.first { $0.control == .networkEgressProxy })
        #expect(row.enforceable, "\(row.detail)")
    }
}
