import BurrowAPI
import BurrowAudit
import BurrowHost
import BurrowInvocation
import BurrowJSON
import BurrowPolicy
import BurrowProfile
import BurrowRuntime
import BurrowSystem
import BurrowTestSupport
import Foundation
import Testing

/// The front door alone, in process: every caller's request meets the same
/// checks with the same refusal, and a prepared invocation runs through the
/// same audit trail.
@Suite(.requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits), .timeLimit(.minutes(2)))
final class FrontDoorTests {
    let directory: String
    let store: AuditStore
    let front: Invocations

    init() throws {
        for requirement in Requirement.sandbox { try requirement.check() }
        directory = try Subprocess.temporaryDirectory()
        store = try HostConfiguration.openAudit(.defaults, path: directory + "/audit.db", access: .write)
        front = Invocations(planner: Planner(policy: .defaults, host: Requirement.host, searchPath: [Fixtures.profilesDirectory]), audit: store)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// A registered document (burrowd's source) with `text` as its TOML.
    func document(_ text: String, id: String) -> ProfileSource { .document(.string(text), id: id) }

    func refusal(_ request: Invocations.Request) -> Invocations.Refusal? {
        do {
            _ = try front.prepare(request, caller: .current())
            return nil
        } catch {
            return error
        }
    }

    @Test("an MCP server asked for plainly: one code and one text, from a file (the CLI) or a registration (burrowd)")
    func mcpRelayRequired() throws {
        let text = try String(contentsOfFile: Fixtures.profilesDirectory + "/mcp-server-time.toml", encoding: .utf8)
        let argv = ["/usr/bin/python3", "-m", "mcp_server_time"]
        let fromFile = try #require(refusal(.init(profile: .reference("mcp-server-time"), argv: argv, relayRemedy: "use burrow mcp")))
        let fromRegistry = try #require(refusal(.init(profile: document(text, id: "mcp-server-time"), argv: argv, relayRemedy: "start a session")))
        #expect(fromFile.code == .mcpRelayRequired && fromRegistry.code == .mcpRelayRequired)
        #expect(fromFile.denied && fromRegistry.denied)
        #expect(fromFile.message.hasSuffix("; use burrow mcp") && fromRegistry.message.hasSuffix("; start a session"))
        #expect(fromFile.message.dropLast("use burrow mcp".count) == fromRegistry.message.dropLast("start a session".count))
        #expect(fromFile.tool == "mcp-server-time")
    }

    @Test("a JSON profile is one profile (one digest, the one a manifest signs) whether read from a file with its own spacing or sent as a registration's object")
    func jsonProfileDigest() throws {
        let file = directory + "/spaced.json"
        let text = "{\n  \"tool\": {\"version\": \"1\", \"id\": \"spaced\", \"name\": \"s\"},\n  \"extends\": \"minimal\"\n}\n"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let planner = Planner(policy: .defaults, host: Requirement.host, searchPath: [Fixtures.profilesDirectory])
        let fromFile = try #require(planner.load(.reference(file)).loaded?.digest)
        let fromDocument = try #require(planner.load(.document(try JSONParser.parse(text), id: "spaced")).loaded?.digest)
        #expect(fromFile == fromDocument)
        // Another spelling of the same JSON (an escape, no spacing) is the same profile; another value is not.
        let escaped = "{\"extends\":\"minimal\",\"tool\":{\"id\":\"spaced\",\"name\":\"\\u0073\",\"version\":\"1\"}}"
        #expect(try #require(planner.load(.document(try JSONParser.parse(escaped), id: "spaced")).loaded?.digest) == fromFile)
        let other = "{\"extends\":\"minimal\",\"tool\":{\"id\":\"spaced\",\"name\":\"t\",\"version\":\"1\"}}"
        #expect(try #require(planner.load(.document(try JSONParser.parse(other), id: "spaced")).loaded?.digest) != fromFile)
        // TOML is its text: the same keys in another order are another profile.
        let toml = "extends = \"minimal\"\n[tool]\nid = \"spaced\"\nname = \"s\"\nversion = \"1\"\n"
        let reordered = "extends = \"minimal\"\n[tool]\nname = \"s\"\nid = \"spaced\"\nversion = \"1\"\n"
        let tomlDigest = try #require(planner.load(document(toml, id: "spaced")).loaded?.digest)
        #expect(tomlDigest != (try #require(planner.load(document(reordered, id: "spaced")).loaded?.digest)))
    }

    @Test("behind the relay only what says mcp = true; without the relay only when asked")
    func relayModes() throws {
        let notMCP = try #require(refusal(.init(profile: .reference("minimal"), argv: ["true"], mode: .relay)))
        #expect(notMCP.code == .notMCP && notMCP.message.contains("mcp = true"))
        let prepared = try front.prepare(.init(profile: .reference("mcp-server-time"), argv: ["/usr/bin/python3", "-m", "mcp_server_time"], mode: .withoutRelay), caller: .current())
        #expect(!prepared.relayed && prepared.plan.mcp.server)
        // A plain invocation is not given a relay client, nor a relayed one run without.
        #expect(throws: RunError.self) { try prepared.run(Runner.Options(forwardSignals: false), client: .init(input: -1, output: -1, stderr: -1)) }
    }

    @Test("a profile that does not validate: its issues, under the tool's id once it parsed")
    func profileInvalid() throws {
        let refused = try #require(refusal(.init(profile: document("[tool]\nid = \"broken\"\nname = \"b\"\nversion = \"1\"\n[permissions]\nexecute = 3\n", id: "broken"), argv: ["true"])))
        #expect(refused.code == .profileInvalid && refused.tool == "broken" && refused.denied)
        #expect(refused.issues.contains { $0.severity == .error && $0.keyPath.hasPrefix("permissions.execute") }, "\(refused.issues)")
        let missing = try #require(refusal(.init(profile: .reference("no-such-profile"), argv: ["true"])))
        #expect(missing.code == .profileInvalid && missing.tool == "no-such-profile")
    }

    @Test("a deadline above max_execution_time is a bad request, not a denial")
    func deadline() throws {
        let refused = try #require(refusal(.init(profile: .reference("minimal"), argv: ["true"], deadline: Seconds(milliseconds: 31_000))))
        #expect(refused.code == .invalidRequest && !refused.denied)
        let prepared = try front.prepare(.init(profile: .reference("minimal"), argv: ["true"], deadline: Seconds(milliseconds: 2_000)), caller: .current())
        #expect(prepared.plan.exec.deadline == Seconds(milliseconds: 2_000))
    }

    @Test("environment the profile does not pass: refused when named (burrowd), left out when offered (the CLI)")
    func environment() throws {
        let environment = ["LANG": "C.UTF-8", "SECRET": "x"]
        let refused = try #require(refusal(.init(profile: .reference("minimal"), argv: ["env"], environment: environment, refuseUnlistedEnvironment: true)))
        #expect(refused.code == .environmentNotAllowed && refused.message.hasSuffix("SECRET"))
        let prepared = try front.prepare(.init(profile: .reference("minimal"), argv: ["env"], environment: environment), caller: .current())
        #expect(prepared.plan.environment.contains { $0.name == "LANG" && $0.source == .caller })
        #expect(!prepared.plan.environment.contains { $0.name == "SECRET" })
    }

    @Test("a refusal recorded as the CLI records it: one PermissionDenied with the code, the profile and argv")
    func refusalRecord() throws {
        let request = Invocations.Request(profile: .reference("minimal"), argv: ["/bin/ls"], mode: .relay)
        let refused = try #require(refusal(request))
        try refused.record(in: store, caller: .current(), request: request)
        let event = try #require(try store.events(AuditQuery(tool: "minimal", types: [.permissionDenied])).last)
        #expect(event.details["reason"]?.stringValue == "not_mcp" && event.details["profile"]?.stringValue == "minimal")
        #expect(event.details["argv"] == .array([.string("/bin/ls")]))
    }

    @Test("a prepared invocation runs once, audited from ToolInvoked to its outcome under its id, whatever the caller holds open")
    func runs() throws {
        let profile = "extends = \"minimal\"\n[tool]\nid = \"few-files\"\nname = \"few\"\nversion = \"1\"\n[resource_limits]\nmax_open_files = 16\n"
        let prepared = try front.prepare(.init(profile: document(profile, id: "few-files"), argv: ["sh", "-c", "cat; echo done"]), caller: .current())
        #expect(prepared.launch == .cold)
        // Every descriptor number below the tool's max_open_files (16) in use
        // here: the child must not count this process's descriptors against it.
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        for _ in 0...16 {
            let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { break }
            held.append(fd)
            if fd >= 16 { break }
        }
        #expect(held.last.map { $0 >= 16 } == true, "descriptors 0-15 are all open")
        let streams = CapturedStreams(input: Array("in\n".utf8), cap: 1 << 16)
        let outcome = try prepared.run(Runner.Options(forwardSignals: false, streams: streams))
        #expect(outcome.record.exit.status == 0 && outcome.problems.isEmpty)
        #expect(String(decoding: streams.stdout.bytes, as: UTF8.self) == "in\ndone\n")
        let trail = try store.events(AuditQuery(invocation: prepared.id)).map(\.type)
        #expect(trail == [.toolInvoked, .toolCompleted])
        #expect(try store.events(AuditQuery(invocation: prepared.id)).first?.tool == "few-files")
    }
}
