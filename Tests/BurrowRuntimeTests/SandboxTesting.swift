import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What the runtime suites share: a scratch directory, profiles written
/// there, and `burrow run` driven the way an operator drives it.
protocol SandboxTesting {
    /// A fresh directory per test (mode 0755, so sandbox ids can read it).
    var directory: String { get }
}

extension SandboxTesting {
    static func makeDirectory() throws -> String {
        for r in Requirement.sandbox { try r.check() }
        let directory = try Subprocess.temporaryDirectory()
        chmod(directory, 0o755)
        return directory
    }

    /// A profile file in the test's directory: `body` below `extends = "<base>"`.
    func profile(extending base: String, top: String = "", _ body: String = "") throws -> String {
        let path = directory + "/\(base)-\(UUID().uuidString.prefix(8)).toml"
        let text = """
            extends = "\(Fixtures.profilesDirectory)/\(base).toml"
            \(top)
            [tool]
            id = "test-\(base)"
            name = "test"
            version = "1"
            description = "test profile"
            \(body.contains("trust_level") ? "" : "trust_level = \"untrusted\"")
            \(body)
            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Each test's own audit log (every `burrow run` here writes to it).
    var auditDatabase: String { directory + "/audit.db" }

    /// The environment `burrow` runs with in these tests.
    var burrowEnvironment: [String: String] { ["BURROW_AUDIT_DB": auditDatabase] }

    func run(_ profile: String, _ command: [String], stdin: Data = Data(), record: String? = nil, directory: String? = nil) throws -> Subprocess.Result {
        var argv = [Subprocess.burrow, "run", "--profile", profile, "--quiet"]
        if let record { argv += ["--json-result", record] }
        return try Subprocess.run(argv + ["--"] + command, stdin: stdin, environment: burrowEnvironment, directory: directory ?? self.directory)
    }

    /// The test's audit log, read as an auditor would (read-only).
    func auditLog() throws -> AuditStore {
        try AuditStore(.init(path: auditDatabase, redactor: try Redactor()), access: .read)
    }

    /// One invocation's events, after checking the whole chain verifies and
    /// the invocation has exactly one ToolInvoked, first, and one terminal event, last.
    func auditTrail(_ invocation: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [AuditEvent] {
        let log = try auditLog()
        let report = try log.verify()
        #expect(report.ok, "\(report)", sourceLocation: sourceLocation)
        let events = try log.events(AuditQuery(invocation: invocation))
        #expect(events.first?.type == .toolInvoked, "\(events.map(\.type))", sourceLocation: sourceLocation)
        #expect(events.filter { $0.type == .toolInvoked }.count == 1, "\(events.map(\.type))", sourceLocation: sourceLocation)
        #expect(events.filter(\.type.isTerminal).count == 1, "\(events.map(\.type))", sourceLocation: sourceLocation)
        #expect(events.last?.type.isTerminal == true, "\(events.map(\.type))", sourceLocation: sourceLocation)
        return events
    }

    func record(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}
