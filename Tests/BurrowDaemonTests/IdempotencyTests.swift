import BurrowAPI
import BurrowAudit
import BurrowTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `Idempotency-Key` on invocations: a retried request is answered from
/// the first one's stored result, never run twice.
@Suite(
    "idempotent invocations (live)", .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.seccomp), .requires(.landlock),
    .requires(.cgroupLimits), .timeLimit(.minutes(2)))
struct IdempotencyTests {
    @Test(
        "the same key and request run once and answer alike (Idempotent-Replayed), another request under the key is a 422, a retry while the first runs a 409 with Retry-After, a refused request frees its key, and burrow invoke --idempotency-key does the same"
    )
    func retriedOnce() throws {
        let daemon = try LiveDaemon(policy: DaemonInvocationTests.policy)
        try DaemonInvocationTests.register(daemon)
        @Sendable func post(_ key: String, _ body: InvocationRequest) throws -> UnixHTTPClient.Response {
            try daemon.client.send("POST", "/v1/tools/minimal/invocations", body: Array(try JSONEncoder().encode(body)), headers: [("Idempotency-Key", key)])
        }
        func invoked() throws -> Int { try daemon.trail("minimal").filter { $0.type == .toolInvoked }.count }
        // Each run prints something of its own (its mounts' ids, new for every sandbox): a replay must print the first run's.
        let unique = InvocationRequest(arguments: ["cat /proc/self/mountinfo"])
        let first = try post("k1", unique)
        let again = try post("k1", unique)
        let a = try JSONDecoder().decode(InvocationResult.self, from: Data(first.body))
        let b = try JSONDecoder().decode(InvocationResult.self, from: Data(again.body))
        #expect(first.status == 200 && again.status == 200 && a.id == b.id && a.stdout?.text == b.stdout?.text && a.stdout?.text?.isEmpty == false, "\(a) \(b)")
        #expect(again.header("Idempotent-Replayed") == "true" && first.header("Idempotent-Replayed") == nil)
        #expect(try invoked() == 1)

        // The key names one request: another body under it is refused, not run.
        let other = try post("k1", InvocationRequest(arguments: ["echo other"]))
        #expect(other.status == 422 && String(decoding: other.body, as: UTF8.self).contains("idempotency_mismatch"), "\(String(decoding: other.body, as: UTF8.self))")

        // A retry while the first still runs: 409 in_progress, then the first's result once it ended.
        let slow = InvocationRequest(arguments: ["sleep 1.5; cat /proc/self/mountinfo"])
        let running = Thread { _ = try? post("k2", slow) }
        running.start()
        usleep(500_000)
        let meanwhile = try post("k2", slow)
        #expect(meanwhile.status == 409 && meanwhile.header("Retry-After") == "1" && String(decoding: meanwhile.body, as: UTF8.self).contains("in_progress"))
        while !running.isFinished { usleep(50_000) }
        let later = try post("k2", slow)
        #expect(later.status == 200 && later.header("Idempotent-Replayed") == "true", "\(later.status)")
        #expect(try invoked() == 2)

        // Refused before it ran (an environment variable the profile does not pass): the key is free again.
        let refused = try post("k3", InvocationRequest(arguments: ["true"], environment: ["AWS_SECRET": "x"]))
        #expect(refused.status == 400)
        #expect(try post("k3", InvocationRequest(arguments: ["echo fine"])).status == 200)
        #expect(try invoked() == 3)

        // Streams are not replayed; a bad key is said.
        let streamed = try daemon.client.send(
            "POST", "/v1/tools/minimal/invocations?stream=1", body: Array(try JSONEncoder().encode(unique)), headers: [("Idempotency-Key", "k4")])
        #expect(streamed.status == 400)
        #expect(try post(String(repeating: "x", count: 256), unique).status == 400)

        // The CLI: the same key twice, one run, the same output; another key, another run (its own output).
        let command = ["invoke", "minimal", "--idempotency-key", "cli-1", "--", "cat /proc/self/mountinfo"]
        let cli1 = try daemon.burrow(command)
        let cli2 = try daemon.burrow(command)
        let cli3 = try daemon.burrow(["invoke", "minimal", "--idempotency-key", "cli-2", "--", "cat /proc/self/mountinfo"])
        #expect(cli1.status == 0 && !cli1.output.isEmpty && cli1.output == cli2.output && cli3.output != cli1.output, "\(cli1.output)\(cli1.stderr)")
        #expect(try invoked() == 5)

        // The CLI, retried while the first still runs: it waits for that run and prints its output.
        let waiting = ["invoke", "minimal", "--idempotency-key", "cli-wait", "--", "sleep 1; cat /proc/self/mountinfo"]
        let firstRun = Mutex<Subprocess.Result?>(nil)
        let starter = Thread { firstRun.withLock { $0 = try? daemon.burrow(waiting) } }
        starter.start()
        usleep(400_000)
        let retried = try daemon.burrow(waiting)
        while !starter.isFinished { usleep(50_000) }
        let original = firstRun.withLock { $0 }
        #expect(retried.status == 0 && retried.stderr.contains("waiting for it") && retried.output == original?.output && !(original?.output.isEmpty ?? true), "\(retried.stderr)")
        #expect(try invoked() == 6)
    }

    @Test("a key lives while its run goes on, however long, and until its result is older than result_retention; then the request runs anew")
    func keyLifetime() throws {
        let policy = DaemonInvocationTests.policy.replacingOccurrences(of: "[daemon]\n", with: "[daemon]\nresult_retention = \"1s\"\n")
        let daemon = try LiveDaemon(policy: policy)
        try DaemonInvocationTests.register(daemon)
        @Sendable func post(_ key: String, _ body: InvocationRequest) throws -> UnixHTTPClient.Response {
            try daemon.client.send("POST", "/v1/tools/minimal/invocations", body: Array(try JSONEncoder().encode(body)), headers: [("Idempotency-Key", key)])
        }
        func invoked() throws -> Int { try daemon.trail("minimal").filter { $0.type == .toolInvoked }.count }
        // A run longer than the retention keeps its key: a retry 1.5 s in is still 409, not a second run.
        let slow = InvocationRequest(arguments: ["sleep 2.5"])
        let running = Thread { _ = try? post("long", slow) }
        running.start()
        usleep(1_500_000)
        #expect(try post("long", slow).status == 409)
        while !running.isFinished { usleep(50_000) }
        #expect(try post("long", slow).header("Idempotent-Replayed") == "true")
        #expect(try invoked() == 1)
        // Once the result is older than the retention, the key is forgotten: the same request runs again.
        usleep(1_600_000)
        let anew = try post("long", InvocationRequest(arguments: ["true"]))
        #expect(anew.status == 200 && anew.header("Idempotent-Replayed") == nil, "\(anew.status)")
        #expect(try invoked() == 2)
    }
}
