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
