import BurrowAPI
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

/// The MCP Registry specification's paths (`/api/v1`) and its form of a
/// registration (snake_case, `security` with the `Permission` list),
/// against a live burrowd: registered, shown, invoked, updated with the
/// answer it gave, refused with the key path of what is wrong.
@Suite(
    "the specification's API (live)", .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.seccomp), .requires(.landlock), .requires(.cgroupLimits),
    .timeLimit(.minutes(2)))
struct SpecificationFormTests {
    static let registration = #"""
        {"id": "spec-echo",
         "metadata": {"name": "Spec echo", "version": "1.0.0", "description": "echoes", "author": "tests", "categories": ["shell"],
                      "documentation": "https://example.org/spec-echo", "dependencies": [{"id": "minimal", "version_requirement": ">=1"}]},
         "security": {"permissions": [{"Execute": ["sh", "echo"]}, {"Process": {"fork": true, "max_processes": 8}}, {"Environment": ["LANG"]}],
                      "resource_limits": {"max_cpu_time": {"secs": 10, "nanos": 0}, "max_memory": 134217728, "max_execution_time": 30},
                      "sandbox_level": "Container", "network_access": "None"},
         "capabilities": {"tools": []},
         "command": ["sh", "-c"]}
        """#

    func send(_ daemon: LiveDaemon, _ method: String, _ path: String, _ body: String? = nil) throws -> (Int, JSON) {
        let r = try daemon.client.send(method, path, body: body.map { Array($0.utf8) })
        return (r.status, (try? JSONParser.parse(r.body)) ?? .null)
    }

    @Test("POST /api/v1/tools/register in the specification's form: stored, answered in that form, shown in either form by path, invoked, updated with its own answer")
    func specificationForm() throws {
        let daemon = try LiveDaemon(policy: DaemonInvocationTests.policy)
        try DaemonInvocationTests.register(daemon)  // minimal 1.0.0: what spec-echo depends on
        let (status, answer) = try send(daemon, "POST", "/api/v1/tools/register", Self.registration)
        #expect(status == 201, "\(answer)")
        #expect(answer["registered_at"]?.stringValue != nil && answer["status"] == .string("active") && answer["profile"] == nil, "\(answer)")
        #expect(answer["metadata"]?["documentation"] == .string("https://example.org/spec-echo"))
        #expect(answer["metadata"]?["dependencies"] == .array([.object(["id": .string("minimal"), "version_requirement": .string(">=1")])]))
        let permissions = answer["security"]?["permissions"]?.arrayValue ?? []
        #expect(permissions.contains(.object(["Execute": .array([.string("sh"), .string("echo")])])) && permissions.contains { $0["Process"] != nil }, "\(permissions)")
        #expect(permissions.contains(.object(["Environment": .array([.string("LANG")])])), "\(permissions)")

        // The same tool through either prefix: the specification's form under /api/v1, Burrow's under /v1.
        let (_, spec) = try send(daemon, "GET", "/api/v1/tools/spec-echo")
        #expect(spec["tool"]?["security"]?["sandbox_level"] == .string("container") && spec["versions"] == .array([.string("1.0.0")]), "\(spec)")
        let (_, own) = try send(daemon, "GET", "/v1/tools/spec-echo")
        #expect(own["tool"]?["registration"]?["profile"]?["permissions"]?["execute"] != nil && own["tool"]?["registration"]?["metadata"]?["documentationUrl"] != nil, "\(own)")
        let (_, listed) = try send(daemon, "GET", "/api/v1/tools")
        #expect(listed.arrayValue?.first?["registered_at"] != nil, "\(listed)")

        // It runs as registered: the Permission list became the profile's [permissions].
        let invoked = try daemon.client.send("POST", "/v1/tools/spec-echo/invocations", body: Array(#"{"arguments": ["echo from the specification"]}"#.utf8))
        #expect(String(decoding: invoked.body, as: UTF8.self).contains("from the specification"), "\(String(decoding: invoked.body, as: UTF8.self))")

        // Its own answer, sent back, is a valid update.
        guard case .object(var tool)? = spec["tool"] else { throw RequirementUnmet(description: "no tool in \(spec)") }
        tool["status"] = .string("deprecated")
        let (updated, again) = try send(daemon, "PUT", "/api/v1/tools/spec-echo", JSON.object(tool).canonicalText)
        #expect(updated == 200 && again["status"] == .string("deprecated"), "\(again)")
    }

    @Test("POST /api/v1/security/validate takes the specification's security profile too: its report, its plan for a command, and refusals with key paths")
    func validation() throws {
        let daemon = try LiveDaemon(policy: DaemonInvocationTests.policy)
        let good = #"{"id": "v", "security": {"permissions": [{"Execute": ["sh"]}], "sandbox_level": "Container"}, "command": ["sh", "-c"]}"#
        let (status, report) = try send(daemon, "POST", "/api/v1/security/validate", good)
        #expect(status == 200 && report["valid"] == .bool(true) && report["plan"]?["executable"] == .string("/usr/bin/sh"), "\(report)")
        let ungranted = try send(daemon, "POST", "/api/v1/security/validate", good.replacingOccurrences(of: #"["sh", "-c"]"#, with: #"["cat"]"#))
        #expect(ungranted.0 == 200 && ungranted.1["valid"] == .bool(false), "an ungranted command: \(ungranted.1)")
        #expect(try send(daemon, "POST", "/api/v1/security/validate", good.replacingOccurrences(of: "Execute", with: "Teleport")).0 == 400)
        #expect(try send(daemon, "POST", "/v1/security/validate", good.replacingOccurrences(of: #""id""#, with: #""badge""#)).0 == 400)
    }

    @Test("a specification-form body that is not a registration is refused with the key path: no command, an unknown Permission, a bad duration, an unknown field")
    func refusals() throws {
        let daemon = try LiveDaemon(policy: DaemonInvocationTests.policy)
        func refused(_ body: String) throws -> String {
            let (status, answer) = try send(daemon, "POST", "/api/v1/tools/register", body)
            #expect(status == 400, "\(answer)")
            return answer["error"]?["message"]?.stringValue ?? ""
        }
        #expect(try refused(Self.registration.replacingOccurrences(of: #""command": ["sh", "-c"]"#, with: #""status": "active""#)).contains("command: required"))
        #expect(try refused(Self.registration.replacingOccurrences(of: #"{"Execute": ["sh", "echo"]}"#, with: #"{"Teleport": ["anywhere"]}"#)).contains("not a permission"))
        // What the profile itself refuses is a validation failure, named by the profile's key.
        let (status, invalid) = try send(daemon, "POST", "/api/v1/tools/register", Self.registration.replacingOccurrences(of: #"{"secs": 10, "nanos": 0}"#, with: #""soon""#))
        #expect(status == 422 && invalid["error"]?["message"]?.stringValue?.contains("max_cpu_time") == true, "\(invalid)")
        #expect(try refused(Self.registration.replacingOccurrences(of: #""capabilities""#, with: #""superpowers""#)).contains("superpowers"))
    }

    @Test("capability matching: ?capability=&input= ranks tools by their MCP tool names, properties, descriptions and input types, explaining each match; deterministic")
    func capabilityMatching() throws {
        let daemon = try LiveDaemon(policy: DaemonInvocationTests.policy)
        func register(_ id: String, _ tools: String) throws {
            let body = #"""
                {"id": "\#(id)", "metadata": {"name": "\#(id)", "version": "1"}, "security": {"permissions": [{"Execute": ["true"]}]}, "command": ["true"],
                 "capabilities": {"tools": [\#(tools)]}}
                """#
            let (status, answer) = try send(daemon, "POST", "/api/v1/tools/register", body)
            try #require(status == 201, "\(answer)")
        }
        try register("clock", #"{"name": "get_current_time", "description": "The time now in a zone", "inputSchema": {"type": "object", "properties": {"timezone": {"type": "string"}}}}"#)
        try register("money", #"{"name": "convert_currency", "description": "Converts at today's time-stamped rate", "inputSchema": {"type": "object", "properties": {"amount": {"type": "number"}}}}"#)
        try register("silent", #"{"name": "noop", "description": "nothing", "inputSchema": {"type": "object"}}"#)
        let (status, found) = try send(daemon, "GET", "/api/v1/discovery/search?capability=current+time&input=timezone:string")
        let hits = found.arrayValue ?? []
        #expect(status == 200 && hits.count == 2, "\(found)")
        #expect(hits.first?["tool"] == .string("clock") && hits.first?["score"] == .number("8"), "name 'current' 3 + name 'time' 3 + input 2: \(found)")
        #expect(hits.first?["reasons"]?.arrayValue?.contains(.string("get_current_time: input 'timezone' (string) meets 'timezone:string'")) == true, "\(found)")
        #expect(hits.last?["tool"] == .string("money") && hits.last?["score"] == .number("1"), "its description has 'time': \(found)")
        #expect(try send(daemon, "GET", "/v1/discovery/search?input=number").1.arrayValue?.map { $0["tool"] } == [.string("money")])
        #expect(try send(daemon, "GET", "/v1/discovery/search?capability=%20").0 == 400)
        #expect(try send(daemon, "GET", "/v1/discovery/search?input=:").0 == 200, "an empty name:type matches nothing, and breaks nothing")
        #expect(try send(daemon, "GET", "/v1/discovery/search?input=::,a:").0 == 200)
    }

    @Test(
        "recommendations: from the context's words, categories shared with a tool and co-usage in the audit log, each with its reasons; never the tool itself, nor one the caller may not invoke; the same data ranks the same"
    )
    func recommendations() throws {
        let daemon = try LiveDaemon(policy: DaemonInvocationTests.policy + "\n[capabilities.money]\nrequired_auth = [\"mtls\"]\n")
        for (id, categories) in [("clock", #"["time"]"#), ("calendar", #"["time", "dates"]"#), ("money", #"["time", "finance"]"#), ("notes", #"["text"]"#)] {
            let body = #"""
                {"id": "\#(id)", "metadata": {"name": "\#(id)", "version": "1", "categories": \#(categories)},
                 "security": {"permissions": [{"Execute": ["true"]}]}, "command": ["true"]}
                """#
            let (status, answer) = try send(daemon, "POST", "/api/v1/tools/register", body)
            try #require(status == 201, "\(answer)")
        }
        // root uses clock and notes: notes is co-used with clock.
        for id in ["clock", "notes"] { _ = try daemon.client.send("POST", "/v1/tools/\(id)/invocations", body: Array("{}".utf8)) }
        let (status, ranked) = try send(daemon, "GET", "/api/v1/discovery/recommendations?tool=clock")
        let tools = ranked.arrayValue?.compactMap { $0["tool"]?.stringValue } ?? []
        #expect(status == 200 && tools == ["calendar", "notes"], "money needs mTLS, clock is the anchor: \(ranked)")
        #expect(ranked.arrayValue?.first?["reasons"] == .array([.string("shares the category 'time' with clock")]), "\(ranked)")
        #expect(ranked.arrayValue?.last?["reasons"]?.arrayValue?.first?.stringValue?.contains("invoked by 1 of the principals that invoked clock") == true, "\(ranked)")
        let (_, byWords) = try send(daemon, "GET", "/v1/discovery/recommendations?context=dates")
        #expect(byWords.arrayValue?.first?["tool"] == .string("calendar"), "\(byWords)")
        #expect(try send(daemon, "GET", "/v1/discovery/recommendations?tool=clock").1 == ranked, "deterministic")
        #expect(try send(daemon, "GET", "/v1/discovery/recommendations").0 == 400)
    }
}
