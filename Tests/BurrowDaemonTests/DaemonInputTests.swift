import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowProfile
import BurrowTestSupport
import Foundation
import Hummingbird
import Testing

@testable import BurrowDaemon

/// Hostile bodies and paths, in process: each is a clear 4xx in the API's
/// error shape, nothing crashes, and a refused id never reaches the audit log.
@Suite("burrowd: hostile input")
struct DaemonInputTests {
    let api: TestDaemon
    static let admin = RegistryTests.admin

    init() throws {
        var policy = HostPolicy.defaults
        policy.daemon.admins = [.uid(4100)]
        policy.rateLimits.registrationAttemptsPerHour = 1000
        api = try TestDaemon(policy: policy)
    }

    private func post(_ path: String, _ text: String, as peer: PeerCredential = admin) async throws -> (HTTPResponse.Status, ErrorBody?) {
        let (status, data) = try await api.respond(.post, path, as: peer, body: Data(text.utf8))
        return (status, try? JSONDecoder().decode(ErrorBody.self, from: data))
    }

    private static let profile = #""extends = \"minimal\"\n[tool]\nid = \"t\"\nname = \"t\"\nversion = \"1\"\n""#

    private static func registration(command: String = #"["echo"]"#, extra: String = "", profile: String = profile) -> String {
        #"{"id": "t", "metadata": {"name": "T", "version": "1.0.0"}, "profile": \#(profile), "command": \#(command)\#(extra)}"#
    }

    @Test("unknown, duplicate and mistyped fields are refused, with the nearest name")
    func strictFields() async throws {
        let ok = try await post("/v1/tools", Self.registration())
        #expect(ok.0 == .created)
        let misspelt = try await post("/v1/tools", Self.registration(extra: #", "rateLimts": {"maxConcurrent": 1}"#))
        #expect(misspelt.0 == .badRequest && misspelt.1?.error.code == "invalid_request")
        #expect(misspelt.1?.error.message.contains("unknown field \"rateLimts\" (did you mean 'rateLimits'?)") == true)
        let duplicate = try await post("/v1/tools", #"{"id": "t", "id": "u"}"#)
        #expect(duplicate.1?.error.message.contains("duplicate key \"id\"") == true)
        let mistyped = try await post("/v1/tools", Self.registration(extra: #", "rateLimits": {"maxConcurrent": 1.5}"#))
        #expect(mistyped.1?.error.message.contains("rateLimits.maxConcurrent: expected an integer, found 1.5") == true)
        let deep = String(repeating: "[", count: 400) + String(repeating: "]", count: 400)
        let nested = try await post("/v1/tools", Self.registration(extra: #", "capabilities": [\#(deep)]"#))
        #expect(nested.0 == .badRequest && nested.1?.error.message.contains("nested deeper than 64 levels") == true)
        let invoke = try await post("/v1/tools/t/invocations", #"{"argumnets": ["x"]}"#, as: TestDaemon.root)
        #expect(invoke.0 == .badRequest && invoke.1?.error.message.contains("did you mean 'arguments'?") == true)
    }

    @Test("a NUL, a relative or '..' command: refused where the value is checked, never cut")
    func bytes() async throws {
        let nul = try await post("/v1/tools", Self.registration(command: #"["echo", "a\u0000b"]"#))
        #expect(nul.0 == .badRequest && nul.1?.error.message == "command[1] contains the NUL character U+0000, which cannot reach execve: refused rather than cut")
        for command in [#"["../../bin/sh"]"#, #"["bin/sh"]"#, #"["/usr/bin/../bin/sh"]"#, #"["/usr//bin/sh"]"#] {
            let r = try await post("/v1/tools", Self.registration(command: command))
            #expect(r.0 == .badRequest && r.1?.error.message.contains("absolute normalised path") == true, "\(command)")
        }
        let tomlNul = #""extends = \"minimal\"\n[tool]\nid = \"t\"\nname = \"t\"\nversion = \"1\"\n[permissions]\nfile_read = [\"/etc\\u0000/nonexistent\"]\n""#
        let refused = try await post("/v1/tools", Self.registration(profile: tomlNul))
        #expect(refused.0 == .unprocessableContent && refused.1?.error.message.contains("a NUL character") == true)
        let jsonNul = #"{"extends": "minimal", "tool": {"id": "t", "name": "t", "version": "1"}, "permissions": {"file_read": ["/etc\u0000/nonexistent"]}}"#
        let refusedJSON = try await post("/v1/tools", Self.registration(profile: jsonNul))
        #expect(refusedJSON.0 == .unprocessableContent && refusedJSON.1?.error.message.contains("permissions.file_read[0]: path contains the NUL character") == true)
        let control = try await post("/v1/tools", #"{"id": "t", "metadata": {"name": "T\u001b[31m", "version": "1.0.0"}, "profile": \#(Self.profile), "command": ["echo"]}"#)
        #expect(control.0 == .badRequest && control.1?.error.message == "metadata.name: contains the control character U+1B")

        #expect(try await post("/v1/tools", Self.registration()).0 == .created)
        let root = TestDaemon.root
        let argument = try await post("/v1/tools/t/invocations", #"{"arguments": ["a\u0000b"]}"#, as: root)
        #expect(argument.0 == .badRequest && argument.1?.error.message.hasPrefix("arguments[0] contains the NUL character") == true)
        let value = try await post("/v1/tools/t/invocations", #"{"environment": {"LANG": "C\u0000.UTF-8"}}"#, as: root)
        #expect(value.0 == .badRequest && value.1?.error.message.hasPrefix("environment LANG contains the NUL character") == true)
        let name = try await post("/v1/tools/t/invocations", #"{"environment": {"A=B": "x"}}"#, as: root)
        #expect(name.0 == .badRequest && name.1?.error.message.contains("contains '=' or the NUL character") == true)
    }

    @Test("a deep or huge profile to validate is a finding, not a crash or a stall")
    func validation() async throws {
        let dotted = Array(repeating: "a", count: 35_000).joined(separator: ".")
        let deep = try await api.respond(.post, "/v1/security/validate", as: TestDaemon.root, body: Data(#"{"profile": "\#(dotted) = 1\n"}"#.utf8))
        #expect(deep.0 == .ok)
        let report = try JSONDecoder().decode(ValidationReport.self, from: deep.1)
        #expect(!report.valid && report.findings.first?.message.contains("nested deeper than 32 levels") == true)
        let paths = (0..<50_000).map { "\"/p\($0)\"" }.joined(separator: ",")
        let huge = try await api.respond(
            .post, "/v1/security/validate", as: TestDaemon.root,
            body: Data(#"{"profile": {"tool": {"id": "t", "name": "t", "version": "1"}, "permissions": {"file_read": [\#(paths)]}}}"#.utf8))
        let hugeReport = try JSONDecoder().decode(ValidationReport.self, from: huge.1)
        #expect(!hugeReport.valid && hugeReport.findings.map(\.message) == ["50000 entries, more than the 4096 a profile may list here"], "\(hugeReport.findings)")
    }

    @Test("ids in the path are checked before any lookup or audit write")
    func pathIDs() async throws {
        let before = try api.store.events(AuditQuery()).count
        let nobody = PeerCredential(pid: 5, uid: 4999, gid: 4999)
        let long = String(repeating: "x", count: 60_000)
        for (method, path) in [
            (HTTPRequest.Method.get, "/v1/tools/\(long)"), (.delete, "/v1/tools/\(long)"), (.post, "/v1/tools/\(long)/invocations"),
            (.get, "/v1/security/audit/\(long)"), (.get, "/v1/tools/..%2f"), (.get, "/v1/invocations/\(long)"), (.post, "/v1/sessions/not-a-session/mcp"),
        ] {
            let (status, data) = try await api.respond(method, path, as: nobody, body: Data("{}".utf8))
            #expect(status == .badRequest, "\(method) \(path.prefix(40))")
            #expect(try JSONDecoder().decode(ErrorBody.self, from: data).error.code == "invalid_id")
        }
        #expect(try api.store.events(AuditQuery()).count == before)
        for query in ["/v1/tools/t?version=%00", "/v1/tools?category=a%1Bb", "/v1/discovery/search?q=" + String(repeating: "q", count: 2000)] {
            let (status, data) = try await api.respond(.get, query, as: TestDaemon.root)
            let code = try JSONDecoder().decode(ErrorBody.self, from: data).error.code
            #expect(status == .badRequest && code == "invalid_parameter", "\(query.prefix(50))")
        }
    }
}
