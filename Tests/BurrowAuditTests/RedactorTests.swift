import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Testing

@Suite("Audit redaction")
struct RedactorTests {
    let redactor: Redactor

    init() throws { redactor = try Redactor(patterns: [#"corp-[0-9]{6}"#, #"(?i)pin ([0-9]{4})"#]) }

    @Test(
        "secret shapes are replaced, the rest kept",
        arguments: [
            ("--token=abc123secret", "--token=[REDACTED]"),
            ("API_KEY: \"hunter22\"", "API_KEY: \"[REDACTED]\""),
            ("GITHUB_TOKEN=ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa x", "GITHUB_TOKEN=[REDACTED] x"),
            ("https://bob:s3cr3t@example.com/repo.git", "https://bob:[REDACTED]@example.com/repo.git"),
            ("Authorization: Bearer eyJhbGciOi.abc.def", "Authorization: Bearer [REDACTED]"),
            ("curl -H 'x: Bearer eyJhbGciOi.abc.def'", "curl -H 'x: Bearer [REDACTED]'"),
            ("key sk-proj-ABCDEFGHIJKLMNOPQRSTUV end", "key [REDACTED] end"),
            ("AKIAABCDEFGHIJKLMNOP", "[REDACTED]"),
            ("id corp-123456 and PIN 1234", "id [REDACTED] and PIN [REDACTED]"),
            ("just a normal argument with author=Ann", "just a normal argument with author=Ann"),
        ])
    func patterns(input: String, expected: String) {
        #expect(redactor.redact(input) == expected)
    }

    @Test("the argument after a secret-naming flag is hidden; environment values are hidden anywhere")
    func argvAndEnvironment() {
        let argv: JSON = .array(["tool", "--password", "pw", "-token", "t0k", "--name", "ann", "--api-key", "k"].map { .string($0) })
        #expect(redactor.redact(argv) == .array(["tool", "--password", "[REDACTED]", "-token", "[REDACTED]", "--name", "ann", "--api-key", "[REDACTED]"].map { .string($0) }))
        let nested: JSON = .object(["argv": .array([.string("--url=http://x/?q=VerySecretValue42")]), "n": .integer(1)])
        #expect(redactor.redact(nested, secrets: ["VerySecretValue42", "ab"]) == .object(["argv": .array([.string("--url=http://x/?q=[REDACTED]")]), "n": .integer(1)]))
    }

    @Test("patterns are found past NUL bytes and in long strings; a huge string keeps 64 KiB")
    func hostileInput() {
        #expect(redactor.redact("a\u{0}password=xyz") == "a\u{0}password=[REDACTED]")
        let long = String(repeating: "x", count: 70_000) + " token=abc"
        #expect(redactor.redact(long).hasSuffix("…[truncated: 70010 bytes in all]"))
        let huge = String(repeating: "é", count: 5 * 1024 * 1024)
        let kept = redactor.redact(huge)
        #expect(kept.utf8.count < Redactor.maxStringBytes + 64)
        #expect(kept.hasSuffix("…[truncated: 10485760 bytes in all]"))
        #expect(kept.hasPrefix("éé"))
    }

    @Test("skipping a built-in pattern on strings without its literals changes no output")
    func prefilterIsExact() throws {
        let fast = try Redactor(patterns: [#"corp-[0-9]{6}"#])
        let slow = try Redactor(patterns: [#"corp-[0-9]{6}"#], prefilter: false)
        // Pieces around every literal a pattern needs, in both cases, joined at random.
        let parts = [
            "password", "PASSWORD", "Passwd", "secret", "TOKEN", "api-key", "API_KEY", "access_key", "private-key", "auth_token", "Authorization", "credentials",
            "=", ":", " ", "\"", "'", "bearer ", "Bearer ", "BEARER ", "basic ", "token ", "://", "https://", "user", ":", "@", "example.com",
            "sk-", "sk_", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "abcdefghijklmnop", "gh", "ghp_", "gho_", "github_pat_", "xoxb-", "xox", "AKIA",
            "AKIAABCDEFGHIJKLMNOP", "-----BEGIN ", "RSA PRIVATE KEY-----", "PRIVATE KEY-----", "corp-", "123456", "é", "\u{0}", "--", "-", "x",
        ]
        var generator = SeededGenerator(seed: 22)
        var checked = 0
        for _ in 0..<4000 {
            let s = (0..<Int.random(in: 1...8, using: &generator)).map { _ in parts.randomElement(using: &generator)! }.joined()
            #expect(fast.redact(s) == slow.redact(s), "\(s)")
            checked += 1
        }
        let argv: JSON = .array(parts.map { .string($0) } + ["--password", "x", "-token", "y", "--api-key", "z"].map { .string($0) })
        #expect(fast.redact(argv) == slow.redact(argv))
        #expect(checked == 4000)
    }

    @Test("an operator pattern that does not compile is an error naming it")
    func invalidPattern() {
        #expect(throws: RedactorError.self) { try Redactor(patterns: ["ok", "(unclosed"]) }
        do {
            _ = try Redactor(patterns: ["ok", "(unclosed"])
        } catch {
            #expect(error.index == 1)
            #expect(error.description.hasPrefix("redact pattern #2 (unclosed: "))
        }
    }

    @Test("redaction happens before hashing: the secret never reaches the file")
    func neverStored() throws {
        let path = temporaryDatabase()
        let store = try openStore(path)
        try store.append(
            [event(.toolInvoked, details: .object(["argv": .array([.string("--password"), .string("Tr0ub4dor&3"), .string("sk-live-0123456789abcdefghij")])]))], secrets: ["EnvSecretValue"])
        try store.append([event(.toolFailed, details: .object(["message": .string("failed with EnvSecretValue")]))], secrets: ["EnvSecretValue"])
        #expect(try store.verify().ok)
        // The main file and its write-ahead log together hold every byte written.
        let bytes = try #require(Fixtures.readFile(path)) + (Fixtures.readFile(path + "-wal") ?? "")
        for secret in ["Tr0ub4dor&3", "sk-live-0123456789abcdefghij", "EnvSecretValue"] {
            #expect(!bytes.contains(secret), "\(secret) is in the database file")
        }
        #expect(bytes.contains("[REDACTED]"))
    }
}

/// SplitMix64: the same strings on every run.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
