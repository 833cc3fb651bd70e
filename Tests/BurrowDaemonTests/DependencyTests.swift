import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Synchronization
import Testing

/// `metadata.dependencies`: version requirements, and burrowd keeping a
/// registry's dependencies whole (live).
@Suite(
    "dependencies", .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.seccomp), .requires(.landlock), .requires(.cgroupLimits),
    .timeLimit(.minutes(2)))
struct DependencyTests {
    @Test("version requirements: *, exact, comparators, ^ and ~, conjunctions and alternatives; malformed ones are none")
    func requirements() throws {
        func holds(_ requirement: String, _ versions: [String]) throws -> [Bool] {
            let r = try #require(VersionRequirement(requirement), "\(requirement)")
            return versions.map(r.satisfied(by:))
        }
        #expect(try holds("*", ["0.1", "9.9.9"]) == [true, true])
        #expect(try holds("1.2.3", ["1.2.3", "1.2.4"]) == [true, false])
        #expect(try holds(">=1.2 <2", ["1.1.9", "1.2", "1.10.0", "2.0.0"]) == [false, true, true, false])
        #expect(try holds("^1.2.3", ["1.2.2", "1.2.3", "1.99", "2.0.0"]) == [false, true, true, false])
        #expect(try holds("^0.2.3", ["0.2.3", "0.2.9", "0.3.0"]) == [true, true, false])
        #expect(try holds("~1.2.3", ["1.2.9", "1.3.0"]) == [true, false])
        #expect(try holds("<1 || >=3", ["0.9", "1.0", "2.5", "3.0"]) == [true, false, false, true])
        for bad in ["", ">=", "^x", "1.2 ||", ">=1.2 <", "=>1", "latest", String(repeating: "1", count: 300)] {
            #expect(VersionRequirement(bad) == nil, "\(bad)")
        }
    }

    /// A registration in the specification's form: `id` at `version`, depending on `dependencies` (`id requirement`).
    static func tool(_ id: String, _ version: String, _ dependencies: [(String, String)] = [], status: String = "active") -> String {
        let deps = dependencies.map { #"{"id": "\#($0.0)", "version_requirement": "\#($0.1)"}"# }.joined(separator: ", ")
        return #"""
            {"id": "\#(id)", "metadata": {"name": "\#(id)", "version": "\#(version)", "dependencies": [\#(deps)]},
             "security": {"permissions": [{"Execute": ["true"]}]}, "command": ["true"], "status": "\#(status)"}
            """#
    }

    func send(_ daemon: LiveDaemon, _ method: String, _ path: String, _ body: String? = nil) throws -> (Int, String) {
        let r = try daemon.client.send(method, path, body: body.map { Array($0.utf8) })
        return (r.status, String(decoding: r.body, as: UTF8.self))
    }

    @Test("a dependency must be registered and satisfied, and close no cycle; what others depend on is not removed or disabled unless forced; GET shows dependents")
    func registryKeepsDependenciesWhole() throws {
        let daemon = try LiveDaemon(policy: DaemonInvocationTests.policy)
        try keepsDependenciesWhole(daemon, daemon)
    }

    /// The scenario, its changes sent to `daemon` and `other` in turn: one
    /// burrowd, or two nodes of a fleet sharing one registry.
    func keepsDependenciesWhole(_ daemon: LiveDaemon, _ other: LiveDaemon) throws {
        for (id, version) in [("base", "1.0.0"), ("base", "2.0.0")] {
            let (status, body) = try send(daemon, "POST", "/api/v1/tools/register", Self.tool(id, version))
            try #require(status == 201, "\(body)")
        }
        #expect(try send(other, "POST", "/api/v1/tools/register", Self.tool("app", "1", [("base", ">=1 <2")])).0 == 201)
        let missing = try send(other, "POST", "/api/v1/tools/register", Self.tool("app2", "1", [("nowhere", "*")]))
        #expect(missing.0 == 422 && missing.1.contains("no tool nowhere is registered"), "\(missing)")
        let unsatisfied = try send(other, "POST", "/api/v1/tools/register", Self.tool("app3", "1", [("base", "^3")]))
        #expect(unsatisfied.0 == 422 && unsatisfied.1.contains("no enabled version of base satisfies ^3"), "\(unsatisfied)")
        let malformed = try send(daemon, "POST", "/api/v1/tools/register", Self.tool("app4", "1", [("base", "newest")]))
        #expect(malformed.0 == 422 && malformed.1.contains("not a version requirement"), "\(malformed)")
        let cycle = try send(other, "POST", "/api/v1/tools/register", Self.tool("base", "3.0.0", [("app", "*")]))
        #expect(cycle.0 == 422 && cycle.1.contains("base → app → base"), "\(cycle)")
        let selfish = try send(daemon, "POST", "/api/v1/tools/register", Self.tool("loop", "1", [("loop", "*")]))
        #expect(selfish.0 == 422 && selfish.1.contains("cannot depend on itself"), "\(selfish)")

        // base's dependents, in either form.
        let (_, shown) = try send(other, "GET", "/api/v1/tools/base")
        #expect(shown.contains(#""dependents":[{"id":"app","version":"1","version_requirement":">=1 <2"}]"#), "\(shown)")
        #expect(try send(daemon, "GET", "/v1/tools/base").1.contains(#""versionRequirement":">=1 <2""#))

        // 2.0.0 is not what app needs: it goes. 1.0.0 is: refused, listing app, unless forced.
        #expect(try send(daemon, "DELETE", "/api/v1/tools/base?version=2.0.0").0 == 200)
        let refused = try send(other, "DELETE", "/api/v1/tools/base?version=1.0.0")
        #expect(refused.0 == 409 && refused.1.contains("has_dependents") && refused.1.contains("app 1 (needs base >=1 <2)"), "\(refused)")
        let disabled = try send(daemon, "PUT", "/api/v1/tools/base", Self.tool("base", "1.0.0", status: "disabled"))
        #expect(disabled.0 == 409, "disabling what app depends on: \(disabled)")
        #expect(try send(daemon, "PUT", "/api/v1/tools/base", Self.tool("base", "1.0.0", status: "deprecated")).0 == 200, "a change that breaks nothing")
        // Disabled anyway (forced): its event names what it broke, as a forced removal's does; then enabled again.
        #expect(try send(daemon, "PUT", "/api/v1/tools/base?force=true", Self.tool("base", "1.0.0", status: "disabled")).0 == 200)
        let forcedUpdate = try daemon.trail("base").last { $0.type == .toolUpdated }
        #expect(forcedUpdate?.details["brokenDependents"] == .strings(["app 1 (needs base >=1 <2)"]), "\(String(describing: forcedUpdate?.details))")
        #expect(try send(daemon, "PUT", "/api/v1/tools/base", Self.tool("base", "1.0.0", status: "deprecated")).0 == 200)
        let forced = try send(other, "DELETE", "/v1/tools/base?force=true")
        #expect(forced.0 == 200, "\(forced)")
        // Removed on every node: another follows at once (LISTEN/NOTIFY), within a moment.
        var gone = false
        for _ in 0..<100 where !gone {
            gone = try send(daemon, "GET", "/v1/tools/base").0 == 404
            if !gone { usleep(20_000) }
        }
        #expect(gone, "removed everywhere")
        let removal = try other.trail("base").last { $0.type == .toolDeregistered }
        #expect(removal?.details["brokenDependents"] == .strings(["app 1 (needs base >=1 <2)"]), "\(String(describing: removal?.details))")
    }
}

extension DependencyTests {
    @Test("a removal and a registration that depends on what it removes, sent at once, never both succeed")
    func concurrentChangesKeepDependenciesWhole() throws {
        let daemon = try LiveDaemon(policy: DaemonInvocationTests.policy)
        try changesAtOnceKeepDependenciesWhole(daemon, daemon)
    }

    /// The registration sent to `daemon`, the removal to `other`, at once.
    func changesAtOnceKeepDependenciesWhole(_ daemon: LiveDaemon, _ other: LiveDaemon) throws {
        var bothWon: [Int] = []
        for i in 0..<40 {
            let (status, body) = try send(daemon, "POST", "/api/v1/tools/register", Self.tool("base\(i)", "1"))
            try #require(status == 201, "\(body)")
            let outcomes = Mutex<[String: Int]>([:])
            DispatchQueue.concurrentPerform(iterations: 2) { which in
                let result =
                    which == 0
                    ? try? send(daemon, "POST", "/api/v1/tools/register", Self.tool("app\(i)", "1", [("base\(i)", "*")]))
                    : try? send(other, "DELETE", "/api/v1/tools/base\(i)")
                outcomes.withLock { $0[which == 0 ? "register" : "remove"] = result?.0 ?? 0 }
            }
            let o = outcomes.withLock { $0 }
            #expect([o["register"], o["remove"]].allSatisfy { [200, 201, 409, 422].contains($0 ?? 0) }, "\(o)")
            if o["register"] == 201 && o["remove"] == 200 { bothWon.append(i) }
        }
        #expect(bothWon.isEmpty, "a dependent registered while what it depends on was removed, in rounds \(bothWon)")
    }
}

/// Per-tool statistics from the audit trail (live).
@Suite(
    "tool statistics", .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.seccomp), .requires(.landlock), .requires(.cgroupLimits),
    .requires(.installed("/usr/bin/setpriv")), .requires(.installed("/usr/bin/curl")), .timeLimit(.minutes(2)))
struct ToolStatisticsTests {
    @Test("GET /v1/tools/{id} counts the runs of its window: completed and failed, the success rate, p50 and p95, CPU, memory; burrow tools show prints them")
    func statistics() throws {
        let daemon = try LiveDaemon(policy: DaemonInvocationTests.policy)
        try DaemonInvocationTests.register(daemon)
        for script in ["true", "echo one", "echo two", "exit 3"] {
            _ = try daemon.client.send("POST", "/v1/tools/minimal/invocations", body: Array(#"{"arguments": ["\#(script)"]}"#.utf8))
        }
        let (status, detail, _) = try daemon.request("GET", "/v1/tools/minimal", as: ToolDetail.self)
        let s = try #require(detail?.statistics, "\(status)")
        #expect(s.invocations == 4 && s.completed == 3 && s.failed == 1 && s.successRate == 0.75, "\(s)")
        #expect(s.p50Milliseconds != nil && s.p95Milliseconds! >= s.p50Milliseconds! && s.peakMemoryBytes ?? 0 > 0 && s.meanCPUMicroseconds != nil, "\(s)")
        let (_, later, _) = try daemon.request("GET", "/v1/tools/minimal?window=1ms", as: ToolDetail.self)
        #expect(later?.statistics?.invocations == 0 && later?.statistics?.successRate == nil, "a window with no runs: \(String(describing: later?.statistics))")
        #expect(try daemon.client.send("GET", "/v1/tools/minimal?window=forever").status == 400)
        let (_, spec, _) = try daemon.request("GET", "/api/v1/tools/minimal", as: JSON.self)
        #expect(spec?["statistics"]?["invocations"] == .number("4"), "\(String(describing: spec))")
        // The specification's form writes the statistics in snake_case too.
        #expect(spec?["statistics"]?["success_rate"] != nil && spec?["statistics"]?["limit_hits"] != nil && spec?["statistics"]?["successRate"] == nil, "\(String(describing: spec))")
        let shown = try daemon.burrow(["tools", "show", "minimal"])
        #expect(shown.output.contains("4 runs since") && shown.output.contains("75% completed"), "\(shown.output)")
        // A run stopped at its deadline is a limit hit, and a failure.
        _ = try daemon.client.send("POST", "/v1/tools/minimal/invocations", body: Array(#"{"arguments": ["sleep 5"], "timeoutSeconds": 0.3}"#.utf8))
        let limited = try #require(try daemon.request("GET", "/v1/tools/minimal", as: ToolDetail.self).1?.statistics)
        #expect(limited.invocations == 5 && limited.failed == 2 && limited.limitHits == 1 && limited.violations == 0, "\(limited)")
        // An invoker that is no auditor sees the tool, not what the audit log says of it.
        chmod(daemon.socket, 0o666)
        let invoker = try Subprocess.run([
            "/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/curl", "-s", "--unix-socket", daemon.socket, "http://burrowd/v1/tools/minimal",
        ]).output
        #expect(invoker.contains(#""registration""#) && !invoker.contains(#""statistics""#), "\(invoker)")
    }
}
