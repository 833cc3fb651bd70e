import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// burrowd for real: its socket, the kernel's peer credentials, callers with
/// other uids (curl under setpriv), SIGTERM.
@Suite(.requires(.rootInInitialUserNamespace), .requires(.installed("/usr/bin/curl")), .requires(.installed("/usr/bin/setpriv")), .timeLimit(.minutes(2)))
struct DaemonSocketTests {
    let directory: String
    var socket: String { directory + "/burrowd.sock" }

    init() throws {
        try Requirement.rootInInitialUserNamespace.check()
        directory = try Subprocess.temporaryDirectory()
        chmod(directory, 0o755)
    }

    /// curl through the socket as `uid` (nil: root): status and body.
    func get(_ path: String, as uid: UInt32? = nil, gid: UInt32 = 65534) throws -> (Int, Data) {
        var argv = ["/usr/bin/curl", "-s", "--unix-socket", socket, "-w", "\n%{http_code}", "http://burrowd" + path]
        if let uid { argv = ["/usr/bin/setpriv", "--reuid", "\(uid)", "--regid", "\(gid)", "--clear-groups"] + argv }
        let result = try Subprocess.run(argv)
        var lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        let code = Int(lines.popLast() ?? "") ?? 0
        return (code, Data(lines.joined(separator: "\n").utf8))
    }

    @Test("the socket is 0660 root:socket_group; roles by peer uid; a refused caller gets 403 and a PermissionDenied; SIGTERM stops it cleanly")
    func liveSocket() throws {
        let policy = directory + "/burrow.toml"
        // nobody (65534) may read the audit log; uid 1 (daemon) has no role but may connect (group nogroup).
        try "[daemon]\nsocket_group = \"nogroup\"\nauditors = [\"uid:65534\"]\ninvokers = []\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let daemon = try Subprocess.start([Subprocess.burrowd, "--policy", policy, "--socket", socket, "--audit-db", directory + "/audit.db", "--registry-db", directory + "/registry.db"])
        var stopped = false
        defer { if !stopped { kill(daemon.pid, SIGKILL) } }
        for _ in 0..<100 where access(socket, F_OK) != 0 { usleep(50_000) }
        var st = stat()
        try #require(stat(socket, &st) == 0, "burrowd did not create its socket")
        // It is created 0600 and opened to the group once it serves: wait for that (bounded).
        for _ in 0..<100 where st.st_mode & 0o777 != 0o660 {
            usleep(20_000)
            _ = stat(socket, &st)
        }
        #expect(st.st_mode & 0o777 == 0o660 && st.st_uid == 0 && st.st_gid == 65534)
        usleep(100_000)

        let root = try get("/v1/health")
        #expect(root.0 == 200)
        let health = try JSONDecoder().decode(HealthResponse.self, from: root.1)
        #expect(health.caller.uid == 0 && health.caller.roles == ["admin", "auditor", "invoker", "reporter", "runner"] && (health.caller.pid ?? 0) > 0 && health.caller.principal == "root")

        let nobody = try get("/v1/health", as: 65534)
        #expect(try JSONDecoder().decode(HealthResponse.self, from: nobody.1).caller.roles == ["auditor"])
        #expect(try get("/v1/security/audit/anything", as: 65534).0 == 200)

        let refused = try get("/v1/security/audit/anything", as: 1)
        #expect(refused.0 == 403)
        #expect(try JSONDecoder().decode(ErrorBody.self, from: refused.1).error.code == "forbidden")
        let trail = try get("/v1/security/audit/anything", as: 65534)
        let events = try JSONDecoder().decode([AuditEvent].self, from: trail.1)
        #expect(events.map(\.type) == [.permissionDenied])
        #expect(events.first?.context.uid == 1 && events.first?.details["path"]?.stringValue == "/v1/security/audit/anything")

        kill(daemon.pid, SIGTERM)
        let exit = try daemon.finish()
        stopped = true
        #expect(exit.status == 0, "\(exit.stderr)")
        #expect(access(socket, F_OK) != 0, "the socket is removed on exit")
    }
}
