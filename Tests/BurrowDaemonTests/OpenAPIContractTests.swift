import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// docs/openapi.yaml against a live burrowd: the description is valid, a
/// client generated from it (openapi-python-client) drives every
/// operation and reads every answer as the model it promises, and
/// schemathesis, fuzzing a live burrowd from it, finds no answer that
/// breaks it (no server error, every status, content type, header and body
/// as described). The tools come from Scripts/install-tools.sh.
@Suite(
    "OpenAPI contract", .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.seccomp), .requires(.landlock), .requires(.cgroupLimits),
    .requires(.installed("/opt/burrow/venvs/openapi-tools/bin/schemathesis")), .timeLimit(.minutes(3)))
struct OpenAPIContractTests {
    static let tools = "/opt/burrow/venvs/openapi-tools/bin"
    static let description = Fixtures.repositoryRoot + "/docs/openapi.yaml"
    static let contract = Fixtures.repositoryRoot + "/Tests/Contract"
    /// The generator's post-hooks (ruff) are found on PATH.
    static let environment = ["PATH": tools + ":/usr/bin:/bin"]

    static let policy = """
        [rate_limits]
        requests_per_minute = 1000
        max_concurrent = 4
        registration_attempts_per_hour = 100000
        [daemon]
        shutdown_grace = "1s"
        reporters = ["uid:0"]
        """

    @Test("docs/openapi.yaml is a valid OpenAPI 3.0 description")
    func descriptionIsValid() throws {
        let r = try Subprocess.run([Self.tools + "/openapi-spec-validator", Self.description])
        #expect(r.status == 0 && r.output.contains("OK"), "\(r.output) \(r.stderr)")
    }

    @Test("a client generated from docs/openapi.yaml drives every operation against burrowd, each answer the model the description promises")
    func generatedClient() throws {
        let directory = try Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let generated = try Subprocess.run(
            [Self.tools + "/openapi-python-client", "generate", "--path", Self.description, "--output-path", directory + "/burrowd_client", "--meta", "none"],
            environment: Self.environment)
        let said = generated.output + generated.stderr
        try #require(generated.status == 0, "\(said)")
        #expect(!said.localizedCaseInsensitiveContains("warning") && !said.localizedCaseInsensitiveContains("error"), "the generator understood all of it: \(said)")

        let daemon = try LiveDaemon(policy: Self.policy)
        var environment = Self.environment
        environment["PYTHONPATH"] = directory
        let run = try Subprocess.run([Self.tools + "/python", Self.contract + "/contract_client.py", daemon.socket, "burrowd_client"], environment: environment)
        #expect(run.status == 0, "\(run.output) \(run.stderr)")
        #expect(run.output.contains("contract: 14 operations"), "\(run.output)")
    }

    @Test("schemathesis fuzzes a live burrowd from docs/openapi.yaml and finds no server error and no answer the description does not allow")
    func schemathesis() throws {
        let daemon = try LiveDaemon(policy: Self.policy)
        // schemathesis speaks TCP: a proxy on loopback forwards to the socket.
        let proxy = try Subprocess.start([Self.tools + "/python", Self.contract + "/socket_proxy.py", daemon.socket])
        defer {
            // SIGKILL: a child started from a test thread inherits its blocked signals (SIGTERM among them).
            kill(proxy.pid, SIGKILL)
            _ = try? proxy.finish()
        }
        var port = ""
        for _ in 0..<100 where port.isEmpty {
            usleep(50_000)
            port = proxy.outputSoFar.split(separator: "\n").first.map(String.init) ?? ""
        }
        try #require(Int(port) != nil, "the proxy did not start: \(proxy.errorSoFar)")
        // Its cache (.schemathesis) goes to a directory of its own, not the checkout.
        let scratch = try Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let r = try Subprocess.run(
            [
                Self.tools + "/schemathesis", "run", Self.description, "--url", "http://127.0.0.1:\(port)",
                "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method",
                "--phases", "examples,coverage,fuzzing", "--max-examples", "40", "--seed", "1",
            ], environment: Self.environment, directory: scratch)
        let tail = r.output.split(separator: "\n").suffix(60).joined(separator: "\n")
        #expect(r.status == 0, "\(tail) \(r.stderr)")
        #expect(r.output.contains("Tested: 14"), "every operation: \(tail)")
    }
}
