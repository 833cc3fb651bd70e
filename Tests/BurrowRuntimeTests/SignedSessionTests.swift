import BurrowAudit
import BurrowJSON
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A signed tool run by a user who is not root, through burrowd's session
/// socket: the client reads the manifest with its own rights and sends it,
/// burrowd's front door verifies it, builds the verified copies (root's
/// alone) and checks the user's right to every file they stand for.
@Suite(
    .serialized, .requires(.rootInInitialUserNamespace), .requires(.sandboxNamespaces), .requires(.landlock), .requires(.cgroupLimits),
    .requires(.installed("/usr/bin/setpriv")), .requires(.installed("/usr/sbin/useradd")), .requires(.installed("/usr/bin/openssl")), .timeLimit(.minutes(3)))
final class SignedSessionTests: SessionFixture {
    @Test(
        "a user runs its signed tool through burrowd (--manifest sent by the client): verified level, the copies bound; a file it changed is refused without a digest of what root read; a file it cannot read is refused"
    )
    func signedRunThroughBurrowd() throws {
        let pki = try TestPKI()
        try pki.signer("signer", level: "verified")
        try startDaemon("[security]\ncert_store_path = \"\(pki.store)\"\nverified_store = \"\(directory)/verified\"")
        // The user's tool, in its home (0700 or not: the copies are burrowd's business).
        let home = home(alice)
        let venv = home + "/venv"
        let script = venv + "/bin/tool"
        let data = venv + "/lib/data.txt"
        try FileManager.default.createDirectory(atPath: venv + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: venv + "/lib", withIntermediateDirectories: true)
        try "home = /usr/bin\n".write(toFile: venv + "/pyvenv.cfg", atomically: true, encoding: .utf8)
        try "#!/bin/sh\ncat \(data)\n".write(toFile: script, atomically: true, encoding: .utf8)
        try "signed bytes\n".write(toFile: data, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let profile = home + "/tool.toml"
        try """
        extends = "minimal"
        [tool]
        id = "signed-tool"
        name = "a user's signed tool"
        version = "1"
        trust_level = "verified"
        [permissions]
        execute = ["sh", "cat", "\(script)"]
        file_read = ["\(venv)/**"]
        """.write(toFile: profile, atomically: true, encoding: .utf8)
        #expect(try Subprocess.run(["/bin/chown", "-R", "\(alice):\(alice)", venv, profile]).status == 0)
        // Signed by the test's CA (root runs the signer's tools here).
        let policy = directory + "/signer.toml"
        try "[security]\ncert_store_path = \"\(pki.store)\"\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let manifest = home + "/tool.manifest"
        let made = try Subprocess.run(
            [Subprocess.burrow, "tools", "manifest", "--policy", policy, "--profile", profile, "-o", manifest, "--", script], environment: ["BURROW_PROFILE_PATH": Fixtures.profilesDirectory])
        try #require(made.status == 0, "\(made.stderr)")
        let signed = try Subprocess.run([Subprocess.burrow, "tools", "sign", "--key", pki.directory + "/signer.key", "--cert", pki.directory + "/signer.pem", manifest])
        try #require(signed.status == 0, "\(signed.stderr)")
        chmod(manifest, 0o644)
        chmod(manifest + ".sig", 0o644)

        let ran = try burrow(as: alice, ["run", "--socket", socket, "--profile", profile, "--manifest", manifest, "--", script])
        #expect(ran.status == 0 && ran.output == "signed bytes\n", "\(ran.output)\(ran.stderr)")
        let plan = try burrow(as: alice, ["dry-run", "--socket", socket, "--profile", profile, "--manifest", manifest, "--json", "--", script])
        let object = try #require(try JSONSerialization.jsonObject(with: plan.stdout) as? [String: Any], "\(plan.stderr)")
        let trust = try #require(object["trust"] as? [String: Any])
        #expect(trust["level"] as? String == "verified", "\(trust)")
        #expect(((trust["manifest"] as? [String: Any])?["source"] as? String)?.hasSuffix("(sent by uid \(try uid(alice)))") == true, "\(trust)")
        // The store is root's alone: the user cannot reach the copies.
        let tree = try #require((trust["manifest"] as? [String: Any])?["verifiedTree"] as? String)
        #expect(try Subprocess.run(setpriv(alice) + ["/bin/cat", tree + data]).status != 0, "the copy is not readable through the store")

        // The user changes its file: within burrowd's recheck interval the
        // run shows the copy (never the change); then it is refused, told
        // which file, not the digest of what root read.
        try "changed\n".write(toFile: data, atomically: false, encoding: .utf8)
        let within = try burrow(as: alice, ["run", "--socket", socket, "--profile", profile, "--manifest", manifest, "--", script])
        #expect(within.output == "signed bytes\n" || within.status == 125, "\(within.output)\(within.stderr)")
        usleep(5_100_000)
        let refused = try burrow(as: alice, ["run", "--socket", socket, "--profile", profile, "--manifest", manifest, "--", script])
        #expect(refused.status == 125 && refused.stderr.contains("\(data): not as the signed manifest lists it") && !refused.stderr.contains("sha256 "), "\(refused.stderr)")
        try "signed bytes\n".write(toFile: data, atomically: false, encoding: .utf8)
        // A listed file the user may not read: root does not read it for the user.
        chmod(data, 0o600)
        #expect(try Subprocess.run(["/bin/chown", "root:root", data]).status == 0)
        usleep(5_100_000)  // past the readable check's memo
        let unreadable = try burrow(as: alice, ["run", "--socket", socket, "--profile", profile, "--manifest", manifest, "--", script])
        #expect(unreadable.status == 125 && unreadable.stderr.contains("cannot be read with"), "\(unreadable.stderr)")
    }
}
