import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A registration that carries its tool's signed manifest: validated at
/// registration (signature, chain, profile, command; the verified copies
/// built), shown, and held at every invocation.
@Suite(
    "signed registrations", .requires(.installed("/usr/bin/openssl")), .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock),
    .requires(.seccomp))
struct SignedRegistrationTests {
    @Test(
        "burrow tools register --manifest: the registration shows the trust its signer grants; invocations run the verified copies and are refused (manifest_mismatch) once a file changes; a registration whose manifest does not verify, or is another profile's, is refused"
    )
    func registeredWithManifest() throws {
        let pki = try TestPKI()
        try pki.signer("signer", level: "verified")
        let tool = try Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: tool) }
        chmod(tool, 0o755)
        let script = tool + "/bin/tool"
        let data = tool + "/data.txt"
        try FileManager.default.createDirectory(atPath: tool + "/bin", withIntermediateDirectories: true)
        try "#!/bin/sh\ncat \(data)\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        try "signed bytes\n".write(toFile: data, atomically: true, encoding: .utf8)
        let profile = tool + "/signed.toml"
        try """
        extends = "minimal"
        [tool]
        id = "signed"
        name = "a signed tool"
        version = "1.0.0"
        trust_level = "verified"
        [permissions]
        execute = ["sh", "cat", "\(script)"]
        file_read = ["\(tool)/**"]
        """.write(toFile: profile, atomically: true, encoding: .utf8)
        let daemon = try LiveDaemon(
            policy: "[security]\ncert_store_path = \"\(pki.store)\"\nverified_store = \"\(tool)/verified\"\n[daemon]\nshutdown_grace = \"1s\"\n")
        let manifest = tool + "/signed.manifest"
        // The data file is not on the command line: --file lists it.
        let made = try daemon.burrow(["tools", "manifest", "--policy", daemon.policyFile, "--profile", profile, "--file", data, "-o", manifest, "--", script])
        try #require(made.status == 0, "\(made.stderr)")
        let signed = try daemon.burrow(["tools", "sign", "--key", pki.directory + "/signer.key", "--cert", pki.directory + "/signer.pem", manifest])
        try #require(signed.status == 0, "\(signed.stderr)")

        let registered = try daemon.burrow(["tools", "register", "--profile", profile, "--manifest", manifest, "--", script])
        #expect(registered.status == 0 && registered.output.contains("trust: verified (signed by /CN=signer"), "\(registered.output)\(registered.stderr)")
        let (status, detail, _) = try daemon.request("GET", "/v1/tools/signed", as: ToolDetail.self)
        #expect(status == 200 && detail?.tool.validation.plan?.trust?.signer == "/CN=signer" && detail?.tool.validation.plan?.trust?.level == "verified", "\(String(describing: detail))")
        #expect(detail?.tool.registration.manifest != nil)
        // The registration's audit event says what trust its invocations get.
        let log = try AuditStore(.init(path: daemon.auditDB, redactor: try Redactor()), access: .read)
        let registeredEvent = try log.events(AuditQuery(types: [.toolRegistered])).last
        #expect(registeredEvent?.details["trust"]?["signer"]?.stringValue == "/CN=signer" && registeredEvent?.details["trust"]?["level"]?.stringValue == "verified")
        // The specification's form shows the manifest and the trust; sent back, its `security` converts to
        // another profile than the TOML text signed here, so the manifest is refused, never silently dropped.
        let spec = try daemon.client.send("GET", "/api/v1/tools/signed")
        let specTool = try #require((try JSONParser.parse(spec.body))["tool"])
        #expect(specTool["trust"]?["level"]?.stringValue == "verified" && specTool["manifest"]?["signature"]?.stringValue != nil, "\(specTool.canonicalText)")
        let put = try daemon.client.send("PUT", "/api/v1/tools/signed", body: Array(specTool.canonicalText.utf8))
        #expect(
            put.status == 422 && String(decoding: put.body, as: UTF8.self).contains("--registration"), "\(put.status) \(String(decoding: put.body, as: UTF8.self))")

        // Signed in the specification's form: `burrow tools manifest --registration` signs the profile `security` converts to.
        let specText = """
            {"id": "spec-signed", "metadata": {"name": "signed in the specification's form", "version": "2.0.0"}, "command": ["\(script)"],
             "security": {"extends": "minimal", "network_access": "None", "trust_level": "Verified",
                          "permissions": [{"FileRead": ["\(tool)/**"]}, {"Execute": ["sh", "cat", "\(script)"]}]}}
            """
        guard case .object(var document) = try JSONParser.parse(specText) else { throw CocoaError(.coderInvalidValue) }
        let registrationFile = tool + "/spec.json"
        try JSON.object(document).canonicalText.write(toFile: registrationFile, atomically: true, encoding: .utf8)
        let specManifest = tool + "/spec.manifest"
        let madeSpec = try daemon.burrow(["tools", "manifest", "--policy", daemon.policyFile, "--registration", registrationFile, "--file", data, "-o", specManifest])
        try #require(madeSpec.status == 0, "\(madeSpec.stderr)")
        try #require(try daemon.burrow(["tools", "sign", "--key", pki.directory + "/signer.key", "--cert", pki.directory + "/signer.pem", specManifest]).status == 0)
        document["manifest"] = .object([
            "manifest": .string(try String(contentsOfFile: specManifest, encoding: .utf8)), "signature": .string(try String(contentsOfFile: specManifest + ".sig", encoding: .utf8)),
        ])
        let posted = try daemon.client.send("POST", "/api/v1/tools/register", body: Array(JSON.object(document).canonicalText.utf8))
        let answer = try JSONParser.parse(posted.body)
        #expect(posted.status == 201 && answer["trust"]?["signer"]?.stringValue == "/CN=signer", "\(posted.status) \(answer.canonicalText)")
        // Its answer sent back keeps the signature: the same profile, the same manifest.
        let again = try daemon.client.send("PUT", "/api/v1/tools/spec-signed", body: posted.body)
        let kept = try JSONParser.parse(again.body)
        #expect(again.status == 200 && kept["trust"]?["level"]?.stringValue == "verified", "\(again.status) \(String(decoding: again.body, as: UTF8.self))")
        // A client that knows nothing of `manifest` (a status change) cannot unsign it behind the operator's back.
        guard case .object(var unsigned) = kept else { throw CocoaError(.coderInvalidValue) }
        unsigned.removeValue(forKey: "manifest")
        unsigned["status"] = .string("deprecated")
        let dropped = try daemon.client.send("PUT", "/api/v1/tools/spec-signed", body: Array(JSON.object(unsigned).canonicalText.utf8))
        #expect(dropped.status == 400 && String(decoding: dropped.body, as: UTF8.self).contains("carries a signed manifest"), "\(String(decoding: dropped.body, as: UTF8.self))")
        let specRan = try daemon.burrow(["invoke", "spec-signed"])
        #expect(specRan.status == 0 && specRan.output == "signed bytes\n", "\(specRan.output)\(specRan.stderr)")
        // A spec-form manifest that is not {manifest, signature}: a 400 naming the field.
        document["manifest"] = .object(["manifest": .string("{}")])
        let malformed = try daemon.client.send("POST", "/api/v1/tools/register", body: Array(JSON.object(document).canonicalText.utf8))
        #expect(malformed.status == 400 && String(decoding: malformed.body, as: UTF8.self).contains("manifest.signature"), "\(String(decoding: malformed.body, as: UTF8.self))")

        let ran = try daemon.burrow(["invoke", "signed"])
        #expect(ran.status == 0 && ran.output == "signed bytes\n", "\(ran.output)\(ran.stderr)")
        // Changed on the host: refused once burrowd rechecks (at most 5 s later); never the changed bytes.
        try "changed\n".write(toFile: data, atomically: false, encoding: .utf8)
        #expect(try daemon.burrow(["invoke", "signed"]).output != "changed\n")
        usleep(5_100_000)
        let refused = try daemon.burrow(["invoke", "signed"])
        #expect(refused.status == 125 && refused.stderr.contains("manifest_mismatch"), "\(refused.stderr)")
        let anomaly = try AuditStore(.init(path: daemon.auditDB, redactor: try Redactor()), access: .read).events(AuditQuery(types: [.anomalousActivity])).last
        #expect(anomaly?.details["reason"]?.stringValue == "manifest_mismatch" && anomaly?.details["path"]?.stringValue == data, "\(String(describing: anomaly))")

        // Another signature (a key the store does not know) or another profile: refused at registration.
        let stranger = try TestPKI()
        try stranger.signer("stranger", level: "system")
        #expect(try daemon.burrow(["tools", "sign", "--key", stranger.directory + "/stranger.key", "--cert", stranger.directory + "/stranger.pem", manifest]).status == 0)
        let foreign = try daemon.burrow(["tools", "register", "--update", "--profile", profile, "--manifest", manifest, "--", script])
        #expect(foreign.status != 0 && foreign.stderr.contains("validation_failed"), "\(foreign.output)\(foreign.stderr)")
        try #require(try daemon.burrow(["tools", "sign", "--key", pki.directory + "/signer.key", "--cert", pki.directory + "/signer.pem", manifest]).status == 0)
        try (try String(contentsOfFile: profile, encoding: .utf8) + "\n# changed since it was signed\n").write(toFile: profile, atomically: true, encoding: .utf8)
        let otherProfile = try daemon.burrow(["tools", "register", "--update", "--profile", profile, "--manifest", manifest, "--", script])
        #expect(otherProfile.status != 0 && otherProfile.stderr.contains("signed for another profile"), "\(otherProfile.output)\(otherProfile.stderr)")
    }

    @Test(
        "the manifest check ([daemon] manifest_check_interval) reports, as burrowd:manifests, a registered manifest that changed on the host and one that expired, without any invocation"
    )
    func manifestCheckReports() throws {
        let pki = try TestPKI()
        try pki.signer("signer", level: "verified")
        let tool = try Subprocess.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: tool) }
        chmod(tool, 0o755)
        let script = tool + "/tool"
        try "#!/bin/sh\necho signed\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let profile = tool + "/checked.toml"
        try """
        extends = "minimal"
        [tool]
        id = "checked"
        name = "a checked tool"
        version = "1.0.0"
        [permissions]
        execute = ["sh", "\(script)"]
        file_read = ["\(tool)/**"]
        """.write(toFile: profile, atomically: true, encoding: .utf8)
        let daemon = try LiveDaemon(
            policy:
                "[security]\ncert_store_path = \"\(pki.store)\"\nverified_store = \"\(tool)/verified\"\n[daemon]\nshutdown_grace = \"1s\"\nmanifest_check_interval = \"1s\"\n")
        let manifest = tool + "/checked.manifest"
        try #require(try daemon.burrow(["tools", "manifest", "--policy", daemon.policyFile, "--profile", profile, "-o", manifest, "--", script]).status == 0)
        // Expiring four seconds from now (edited, then signed).
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: manifest))) as? [String: Any])
        object["expires"] = ISO8601DateFormatter().string(from: Date().addingTimeInterval(4))
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: URL(fileURLWithPath: manifest))
        try #require(try daemon.burrow(["tools", "sign", "--key", pki.directory + "/signer.key", "--cert", pki.directory + "/signer.pem", manifest]).status == 0)
        let registered = try daemon.burrow(["tools", "register", "--profile", profile, "--manifest", manifest, "--", script])
        try #require(registered.status == 0, "\(registered.output)\(registered.stderr)")
        func reported(_ reason: String) throws -> AuditEvent? {
            try AuditStore(.init(path: daemon.auditDB, redactor: try Redactor()), access: .read).events(AuditQuery(types: [.anomalousActivity])).last {
                $0.details["reason"]?.stringValue == reason && $0.context.principal == "burrowd:manifests"
            }
        }
        // Changed on the host: reported within a check or two, though nothing ran.
        try "#!/bin/sh\necho changed\n".write(toFile: script, atomically: false, encoding: .utf8)
        var mismatch: AuditEvent?
        for _ in 0..<40 where mismatch == nil {
            usleep(100_000)
            mismatch = try reported("manifest_mismatch")
        }
        #expect(mismatch?.details["path"]?.stringValue == script && mismatch?.tool == "checked", "\(String(describing: mismatch))")
        // Expired: reported, and an invocation is refused.
        var expired: AuditEvent?
        for _ in 0..<80 where expired == nil {
            usleep(100_000)
            expired = try reported("manifest_expired")
        }
        #expect(expired?.details["message"]?.stringValue?.contains("expired at") == true, "\(String(describing: expired))")
        let refused = try daemon.burrow(["invoke", "checked"])
        #expect(refused.status == 125 && refused.stderr.contains("expired"), "\(refused.stderr)")
    }
}
