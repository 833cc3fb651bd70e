import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

/// `POST /api/v1/security/audit`: a registry's own events in burrowd's hash
/// chain, marked as reported, never passing for what burrowd ran (live).
@Suite(
    "reported audit events", .requires(.rootInInitialUserNamespace), .requires(.installed("/usr/bin/setpriv")), .requires(.installed("/usr/bin/curl")),
    .timeLimit(.minutes(2)))
struct ReportedEventTests {
    static let event = #"""
        {"timestamp": "2026-12-07T10:00:00Z", "tool_id": "minimal", "event_type": "PermissionDenied",
         "details": {"reason": "bad_token", "client": "10.0.0.7"}, "security_context": {"principal": "root", "invocationID": "forged"}}
        """#

    @Test(
        "the reporter role records a registry's event with its origin and the submitter as principal; the chain still verifies; invocation events, unknown fields, oversized bodies and callers without the role are refused; reported denials feed no anomaly and no statistics"
    )
    func reported() throws {
        let daemon = try LiveDaemon(policy: DaemonInvocationTests.policy)
        let posted = try daemon.client.send("POST", "/api/v1/security/audit", body: Array(Self.event.utf8))
        #expect(posted.status == 201, "\(String(decoding: posted.body, as: UTF8.self))")
        // Answered, and read back under /api/v1, in the specification's form; /v1 keeps Burrow's.
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(posted.body)) as? [String: Any])
        #expect(
            answer["tool_id"] as? String == "minimal" && answer["event_type"] as? String == "PermissionDenied" && answer["timestamp"] is String
                && (answer["security_context"] as? [String: Any])?["principal"] is String && (answer["origin"] as? String)?.hasPrefix("reported:") == true
                && answer["previous_hash"] is String && answer["type"] == nil, "\(answer)")
        let specified = try #require(try JSONSerialization.jsonObject(with: Data(try daemon.client.send("GET", "/api/v1/security/audit/minimal").body)) as? [[String: Any]])
        #expect(specified.contains { $0["event_type"] as? String == "PermissionDenied" && $0["tool_id"] as? String == "minimal" }, "\(specified)")
        let burrows = try #require(try JSONSerialization.jsonObject(with: Data(try daemon.client.send("GET", "/v1/security/audit/minimal").body)) as? [[String: Any]])
        #expect(burrows.contains { $0["type"] as? String == "PermissionDenied" && $0["tool"] as? String == "minimal" }, "\(burrows)")
        let trail = try daemon.trail("minimal")
        let reported = try #require(trail.first { $0.type == .permissionDenied })
        #expect(reported.origin?.hasPrefix("reported:") == true && reported.context.invocationID == nil && reported.context.principal != "forged", "\(reported)")
        #expect(reported.details["reportedContext"]?["invocationID"] == .string("forged") && reported.details["reportedAt"] == .string("2026-12-07T10:00:00Z"))
        #expect(try daemon.burrow(["audit", "--audit-db", daemon.auditDB, "--tool", "minimal"]).output.contains("[reported:"))

        // Never an invocation's event, nothing but the spec's fields, bounded.
        func refused(_ body: String) throws -> Int { try daemon.client.send("POST", "/v1/security/audit", body: Array(body.utf8)).status }
        #expect(try refused(Self.event.replacingOccurrences(of: "PermissionDenied", with: "ToolCompleted")) == 400)
        #expect(try refused(Self.event.replacingOccurrences(of: "\"timestamp\"", with: "\"sequence\"")) == 400)
        #expect(try refused(Self.event.replacingOccurrences(of: "bad_token", with: String(repeating: "x", count: 20000))) == 413)
        #expect(try refused(#"{"tool_id": "../../etc", "event_type": "PermissionDenied", "details": {}}"#) == 400)
        // An invoker is not a reporter.
        chmod(daemon.socket, 0o666)
        let other = try Subprocess.run([
            "/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket",
            daemon.socket, "-X", "POST", "-H", "Content-Type: application/json", "-d", Self.event, "http://burrowd/api/v1/security/audit",
        ])
        #expect(other.output == "403")

        // Many reported denials: no AnomalousActivity, and the tool's statistics count none of them.
        for _ in 0..<15 { _ = try daemon.client.send("POST", "/api/v1/security/audit", body: Array(Self.event.utf8)) }
        #expect(try !daemon.trail("minimal").contains { $0.type == .anomalousActivity })
        try DaemonInvocationTests.register(daemon)
        let (_, detail, _) = try daemon.request("GET", "/v1/tools/minimal", as: ToolDetail.self)
        #expect(detail?.statistics?.denials == 0, "\(String(describing: detail?.statistics))")

        let verify = try Subprocess.run([Subprocess.burrow, "audit", "verify", "--audit-db", daemon.auditDB])
        #expect(verify.status == 0, "\(verify.output)\(verify.stderr)")
    }

    @Test("a principal that is only a reporter may report, and read nothing: not the registry, not the policy")
    func reporterOnly() throws {
        let daemon = try LiveDaemon(policy: DaemonInvocationTests.policy.replacingOccurrences(of: #"invokers = ["uid:65534"]"#, with: #"invokers = []"# + "\nreporters = [\"uid:65534\"]"))
        chmod(daemon.socket, 0o666)
        func nobody(_ method: String, _ path: String, _ body: String? = nil) throws -> String {
            try Subprocess.run(
                [
                    "/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", daemon.socket, "-X",
                    method,
                ]
                    + (body.map { ["-H", "Content-Type: application/json", "-d", $0] } ?? []) + ["http://burrowd" + path]
            ).output
        }
        #expect(try nobody("POST", "/api/v1/security/audit", Self.event) == "201")
        // 60 a minute, in bursts of 20: a reporter that floods is refused (429), and said so once per refusal window.
        let codes = try (0..<25).map { _ in try nobody("POST", "/api/v1/security/audit", Self.event) }
        #expect(codes.filter { $0 == "201" }.count < 25 && codes.contains("429"), "\(codes)")
        #expect(try nobody("GET", "/api/v1/tools") == "403")
        #expect(try nobody("GET", "/v1/security/policies") == "403")
    }
}
