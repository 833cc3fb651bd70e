import BurrowAudit
import BurrowJSON
import BurrowManifest
import BurrowTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `burrow run --manifest` for real: a tool the test owns (a script in a
/// virtualenv-like tree reading a data file there), signed by a CA the
/// test makes, run in its sandbox from the verified copies.
@Suite(
    "signed tools run what was signed", .requires(.installed("/usr/bin/openssl")), .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces),
    .requires(.landlock), .requires(.seccomp))
struct SignedRunTests {
    /// The tool, its profile, its policy (the test's certificate store and
    /// verified store) and its signed manifest.
    final class SignedTool: @unchecked Sendable {
        let pki: TestPKI
        let directory: String
        var venv: String { directory + "/venv" }
        var data: String { venv + "/lib/data.txt" }
        var script: String { venv + "/bin/tool" }
        var profile: String { directory + "/tool.toml" }
        var policy: String { directory + "/burrow.toml" }
        var manifest: String { directory + "/tool.manifest" }
        var audit: String { directory + "/audit.db" }

        init(signer level: String = "verified", claim: String = "verified", policyExtra: String = "", profileExtra: String = "", sign: Bool = true) throws {
            pki = try TestPKI()
            try pki.signer("signer", level: level)
            directory = try Subprocess.temporaryDirectory()
            chmod(directory, 0o755)
            try FileManager.default.createDirectory(atPath: venv + "/bin", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: venv + "/lib", withIntermediateDirectories: true)
            try "home = /usr/bin\n".write(toFile: venv + "/pyvenv.cfg", atomically: true, encoding: .utf8)
            try "#!/bin/sh\ncat \(data)\n".write(toFile: script, atomically: true, encoding: .utf8)
            chmod(script, 0o755)
            try "signed bytes\n".write(toFile: data, atomically: true, encoding: .utf8)
            try """
            [security]
            cert_store_path = "\(pki.store)"
            verified_store = "\(directory)/verified"
            \(policyExtra)
            """.write(toFile: policy, atomically: true, encoding: .utf8)
            try writeProfile(claim: claim, extra: profileExtra)
            if sign { try self.sign() }
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }

        func writeProfile(claim: String, extra: String = "") throws {
            try """
            extends = "\(Fixtures.profilesDirectory)/minimal.toml"
            \(extra.hasPrefix("sandbox_level") ? extra : "")
            [tool]
            id = "signed-tool"
            name = "a signed tool"
            version = "1"
            trust_level = "\(claim)"
            [permissions]
            execute = ["sh", "cat", "\(script)"]
            file_read = ["\(venv)/**"]
            \(extra.hasPrefix("sandbox_level") ? "" : extra)
            """.write(toFile: profile, atomically: true, encoding: .utf8)
        }

        func sign(expires: String = "1d", key: String = "signer") throws {
            let made = try burrow(["tools", "manifest", "--policy", policy, "--profile", profile, "--expires", expires, "-o", manifest, "--", script])
            try #require(made.status == 0, "\(made.stderr)")
            let signed = try burrow(["tools", "sign", "--key", pki.directory + "/\(key).key", "--cert", pki.directory + "/\(key).pem", manifest])
            try #require(signed.status == 0, "\(signed.stderr)")
        }

        func burrow(_ arguments: [String]) throws -> Subprocess.Result {
            try Subprocess.run([Subprocess.burrow] + arguments, environment: ["BURROW_AUDIT_DB": audit])
        }

        func run(manifest: Bool = true, _ extra: [String] = []) throws -> Subprocess.Result {
            try burrow(["run", "--policy", policy, "--profile", profile, "--quiet"] + (manifest ? ["--manifest", self.manifest] : []) + ["--", script] + extra)
        }

        func plan(manifest: Bool = true) throws -> [String: Any] {
            let r = try burrow(["dry-run", "--policy", policy, "--profile", profile, "--json"] + (manifest ? ["--manifest", self.manifest] : []) + ["--", script])
            try #require(r.status == 0 || r.status == 4, "\(r.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        }

        /// Replaces the data file's bytes in place (the same inode).
        func overwrite(_ text: String) throws {
            let handle = try #require(FileHandle(forWritingAtPath: data))
            try handle.truncate(atOffset: 0)
            try handle.write(contentsOf: Data(text.utf8))
            try handle.close()
        }

        func events(_ type: AuditEventType) throws -> [AuditEvent] {
            let store = try AuditStore(.init(path: audit, redactor: try Redactor()), access: .read)
            return try store.events(AuditQuery(types: [type]))
        }
    }

    @Test(
        "a signed tool runs at its signer's level, its sandbox showing the verified copies; a file changed on the host is refused (manifest_mismatch, AnomalousActivity) until it holds the signed bytes again"
    )
    func runsVerifiedCopies() throws {
        let tool = try SignedTool()
        let plan = try tool.plan()
        let trust = try #require(plan["trust"] as? [String: Any])
        #expect(trust["level"] as? String == "verified" && trust["claimed"] as? String == "verified", "\(trust)")
        let manifest = try #require(trust["manifest"] as? [String: Any])
        #expect(manifest["signer"] as? String == "/CN=signer" && manifest["granted"] as? String == "verified")
        let tree = try #require(manifest["verifiedTree"] as? String)
        #expect(tree.hasPrefix(tool.directory + "/verified/trees/"))
        let mounts = try #require(plan["mounts"] as? [[String: Any]])
        let venvMount = mounts.first { $0["target"] as? String == tool.venv }
        #expect(venvMount?["source"] as? String == tree + tool.venv, "\(String(describing: venvMount))")
        // The copy is root's and read-only, whatever the host's modes.
        var st = stat()
        #expect(lstat(tree + tool.data, &st) == 0 && st.st_uid == 0 && st.st_mode & 0o777 == 0o444)

        let ran = try tool.run()
        #expect(ran.status == 0 && ran.output == "signed bytes\n", "\(ran.output)\(ran.stderr)")
        // Unsigned, the same profile runs untrusted (signatures are not required here).
        let unsigned = try tool.plan(manifest: false)
        #expect((unsigned["trust"] as? [String: Any])?["level"] as? String == "untrusted")
        #expect(try tool.run(manifest: false).output == "signed bytes\n")

        // Changed on the host, in place: refused, with both digests, and reported.
        try tool.overwrite("evil bytes\n")
        let refused = try tool.run()
        #expect(refused.status == 125 && refused.stderr.contains("\(tool.data): sha256 ") && refused.stderr.contains("the manifest says"), "\(refused.stderr)")
        #expect(!refused.output.contains("evil"))
        let anomaly = try tool.events(.anomalousActivity).last
        #expect(anomaly?.details["reason"]?.stringValue == "manifest_mismatch" && anomaly?.details["path"]?.stringValue == tool.data, "\(String(describing: anomaly))")
        #expect(try tool.events(.permissionDenied).last?.details["reason"]?.stringValue == "manifest_mismatch")
        let verify = try tool.burrow(["tools", "verify", "--policy", tool.policy, tool.manifest])
        #expect(verify.status == 1 && verify.stderr.contains("data.txt: sha256"), "\(verify.stderr)")
        // The signed bytes back (a new modification time): it runs again.
        try tool.overwrite("signed bytes\n")
        let again = try tool.run()
        #expect(again.status == 0 && again.output == "signed bytes\n", "\(again.stderr)")
    }

    @Test(
        "a link in the signed tree redirected on the host (the script's interpreter, to a file of the attacker's) never runs its new target; a manifest file that is a FIFO is refused, not waited on")
    func redirectedLinkNeverRuns() throws {
        let tool = try SignedTool(sign: false)
        // The script's interpreter is a link in the virtualenv, as a venv's python is.
        symlink("/bin/sh", tool.venv + "/bin/interp")
        try "#!\(tool.venv)/bin/interp\ncat \(tool.data)\n".write(toFile: tool.script, atomically: true, encoding: .utf8)
        chmod(tool.script, 0o755)
        try tool.sign()
        #expect(try tool.run().output == "signed bytes\n")
        let evil = tool.directory + "/evil"
        try "#!/bin/sh\necho evil\n".write(toFile: evil, atomically: true, encoding: .utf8)
        chmod(evil, 0o755)
        unlink(tool.venv + "/bin/interp")
        symlink(evil, tool.venv + "/bin/interp")
        let redirected = try tool.run()
        #expect(!redirected.output.contains("evil"), "\(redirected.output)")
        #expect(redirected.status == 125 && redirected.stderr.contains("bin/interp: points to \(evil), the manifest says /bin/sh"), "\(redirected.stderr)")
        #expect(try tool.events(.anomalousActivity).last?.details["path"]?.stringValue == tool.venv + "/bin/interp")

        let fifo = tool.directory + "/fifo.manifest"
        mkfifo(fifo, 0o644)
        let waited = try tool.burrow(["run", "--policy", tool.policy, "--profile", tool.profile, "--manifest", fifo, "--", tool.script])
        #expect(waited.status == 125 && waited.stderr.contains("not a regular file"), "\(waited.stderr)")
    }

    @Test("a writer racing the runs, swapping the script and its data for other bytes, never gets them run: each run prints the signed bytes or is refused")
    func racingWriterNeverWins() throws {
        let tool = try SignedTool()
        #expect(try tool.run().output == "signed bytes\n")
        let evilScript = tool.directory + "/evil-tool"
        let evilData = tool.directory + "/evil-data"
        let goodScript = tool.directory + "/good-tool"
        let goodData = tool.directory + "/good-data"
        try "#!/bin/sh\necho evil script\n".write(toFile: evilScript, atomically: true, encoding: .utf8)
        try "evil bytes\n".write(toFile: evilData, atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: tool.script, toPath: goodScript)
        try FileManager.default.copyItem(atPath: tool.data, toPath: goodData)
        for path in [evilScript, goodScript] { chmod(path, 0o755) }
        let stop = Atomic<Bool>(false)
        let swaps = Atomic<Int>(0)
        let writer = Thread {
            // Renamed over the real paths (a link of each version first, so the rename is atomic).
            var evil = true
            while !stop.load(ordering: .relaxed) {
                for (from, to) in [(evil ? evilScript : goodScript, tool.script), (evil ? evilData : goodData, tool.data)] {
                    let temporary = to + ".swap"
                    unlink(temporary)
                    if link(from, temporary) == 0 { rename(temporary, to) }
                }
                evil.toggle()
                swaps.add(1, ordering: .relaxed)
                usleep(200)
            }
        }
        writer.start()
        var outcomes: [String: Int] = [:]
        for _ in 0..<12 {
            let r = try tool.run()
            let outcome = r.status == 0 ? r.output : r.status == 125 && r.stderr.contains("the manifest says") ? "refused" : "other: \(r.status) \(r.output) \(r.stderr)"
            outcomes[outcome, default: 0] += 1
        }
        stop.store(true, ordering: .relaxed)
        while !writer.isFinished { usleep(1000) }
        #expect(swaps.load(ordering: .relaxed) > 10)
        #expect(outcomes.keys.allSatisfy { $0 == "signed bytes\n" || $0 == "refused" }, "\(outcomes)")
        #expect(!outcomes.keys.contains { $0.contains("evil") }, "\(outcomes)")
    }

    @Test(
        "the host policy: require_signatures runs exactly the signed tools; min_trust_level holds against the level the signer grants (never the profile's claim); [trust.<level>] ceilings refuse a profile asking more; sandbox none needs a system signer"
    )
    func trustPolicy() throws {
        // require_signatures: unsigned refused, signed runs.
        let required = try SignedTool(policyExtra: "require_signatures = true")
        let unsigned = try required.run(manifest: false)
        #expect(unsigned.status == 125 && unsigned.stderr.contains("require_signatures") && unsigned.stderr.contains("no manifest"), "\(unsigned.stderr)")
        #expect(try required.events(.permissionDenied).last?.details["reason"]?.stringValue == "trust_refused")
        #expect(try required.run().output == "signed bytes\n")

        // A signer who may grant community only: a profile claiming verified runs at community.
        let minimum = try SignedTool(signer: "community", policyExtra: "min_trust_level = \"verified\"")
        let below = try minimum.run()
        #expect(below.status == 125 && below.stderr.contains("trust level community") && below.stderr.contains("min_trust_level"), "\(below.stderr)")
        // A claim above the signer's grant is still lowered to the grant.
        let lowered = try SignedTool(signer: "community")
        #expect((try lowered.plan()["trust"] as? [String: Any])?["level"] as? String == "community")

        // Ceilings: untrusted tools may not write; the signed one may.
        let write = "file_write = [\"/tmp/burrow-ceiling-test\"]"
        let ceiling = try SignedTool(policyExtra: "[trust.untrusted]\nallow_write = false\nnetwork_policy = \"none\"", profileExtra: write)
        let refusedWrite = try ceiling.run(manifest: false)
        #expect(refusedWrite.status == 125 && refusedWrite.stderr.contains("[trust.untrusted] allow_write"), "\(refusedWrite.stderr)")
        #expect(try ceiling.run().status == 0)

        // Sandbox level none: a profile's claim of system is not enough.
        let none = try SignedTool(claim: "system", policyExtra: "default_sandbox = \"none\"", profileExtra: "sandbox_level = \"none\"")
        let noneUnsigned = try none.run(manifest: false)
        #expect(noneUnsigned.status == 125 && noneUnsigned.stderr.contains("sandbox_level 'none'"), "\(noneUnsigned.status) \(noneUnsigned.stderr)")
    }

    @Test("a manifest refused: for another profile, another command, an expired one, a signer the store does not know, a signature that does not match")
    func manifestsRefused() throws {
        let tool = try SignedTool()
        // The profile changed since it was signed.
        try tool.writeProfile(claim: "verified", extra: "# a comment changes the digest")
        let changed = try tool.run()
        #expect(changed.status == 125 && changed.stderr.contains("signed for another profile"), "\(changed.stderr)")
        try tool.writeProfile(claim: "verified")
        #expect(try tool.run().status == 0)
        // Arguments may follow the signed command; another command may not run under it.
        #expect(try tool.run(["extra"]).status == 0)
        let other = try tool.burrow(["run", "--policy", tool.policy, "--profile", tool.profile, "--manifest", tool.manifest, "--", "/bin/sh", "-c", "echo hi"])
        #expect(other.status == 125 && other.stderr.contains("signs the command"), "\(other.stderr)")
        // A signature by a key the store does not vouch for.
        let stranger = try TestPKI()
        try stranger.signer("stranger", level: "system")
        let foreign = try tool.burrow(["tools", "sign", "--key", stranger.directory + "/stranger.key", "--cert", stranger.directory + "/stranger.pem", tool.manifest])
        try #require(foreign.status == 0, "\(foreign.stderr)")
        let unknown = try tool.run()
        #expect(unknown.status == 125 && unknown.stderr.contains("tool.manifest:"), "\(unknown.stderr)")
        // A manifest changed after signing.
        try tool.sign()
        var bytes = try String(contentsOfFile: tool.manifest, encoding: .utf8)
        bytes = bytes.replacingOccurrences(of: "\"trust_level\" : \"verified\"", with: "\"trust_level\" : \"system\"")
        try bytes.write(toFile: tool.manifest, atomically: true, encoding: .utf8)
        let tampered = try tool.run()
        #expect(tampered.status == 125 && tampered.stderr.contains("does not match the manifest"), "\(tampered.stderr)")
        // Expired: signed to expire two seconds from now.
        try tool.sign()
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tool.manifest))) as? [String: Any])
        let formatter = ISO8601DateFormatter()
        object["expires"] = formatter.string(from: Date().addingTimeInterval(2))
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: URL(fileURLWithPath: tool.manifest))
        let resigned = try tool.burrow(["tools", "sign", "--key", tool.pki.directory + "/signer.key", "--cert", tool.pki.directory + "/signer.pem", tool.manifest])
        try #require(resigned.status == 0, "\(resigned.stderr)")
        #expect(try tool.run().status == 0)
        usleep(3_000_000)
        let expired = try tool.run()
        #expect(expired.status == 125 && expired.stderr.contains("expired"), "\(expired.stderr)")
    }
}
