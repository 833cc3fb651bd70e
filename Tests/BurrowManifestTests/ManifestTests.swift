import BurrowCrypto
import BurrowManifest
import BurrowTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("signed tool manifests", .requires(.installed("/usr/bin/openssl")))
struct ManifestTests {
    /// A tool the tests own: a virtualenv-like tree (pyvenv.cfg, bin/tool) and a profile file.
    static func toolTree() throws -> (directory: String, profile: String, command: [String]) {
        let directory = try Subprocess.temporaryDirectory()
        let venv = directory + "/venv"
        try FileManager.default.createDirectory(atPath: venv + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: venv + "/lib/site", withIntermediateDirectories: true)
        try "home = /usr/bin\n".write(toFile: venv + "/pyvenv.cfg", atomically: true, encoding: .utf8)
        try "#!/bin/sh\necho tool\n".write(toFile: venv + "/bin/tool", atomically: true, encoding: .utf8)
        chmod(venv + "/bin/tool", 0o755)
        try "print('module')\n".write(toFile: venv + "/lib/site/module.py", atomically: true, encoding: .utf8)
        symlink("/bin/sh", venv + "/bin/shell")
        try "[tool]\nid = \"tool\"\n".write(toFile: directory + "/tool.toml", atomically: true, encoding: .utf8)
        return (directory, directory + "/tool.toml", [venv + "/bin/tool", "--flag"])
    }

    static func manifest(_ tree: (directory: String, profile: String, command: [String]), level: String = "verified", expires: Int64 = 86_400) throws -> ([UInt8], ToolManifest) {
        let now = Int64(Date().timeIntervalSince1970)
        let built = try ManifestBuilder(
            tool: .init(id: "tool", version: "1"), trustLevel: level, profileDigest: SHA256.label(Array(try Data(contentsOf: URL(fileURLWithPath: tree.profile)))), command: tree.command,
            searchPath: ["/usr/bin"], issued: now - 10, expires: now + expires
        ).build()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let bytes = Array(try encoder.encode(built))
        return (bytes, try ToolManifest.parse(bytes))
    }

    /// A moment after the certificates just made began (openssl dates them to the second).
    static func now() -> Int64 { Int64(Date().timeIntervalSince1970) + 2 }

    @Test("a manifest covers the command's virtualenv whole; verification finds a changed, a missing and an added file, and a link that moved")
    func filesAreChecked() throws {
        let tree = try Self.toolTree()
        let (_, manifest) = try Self.manifest(tree)
        let venv = tree.directory + "/venv"
        #expect(manifest.roots == [venv], "\(manifest.roots)")
        #expect(manifest.files.map(\.path) == [venv + "/bin/tool", venv + "/lib/site/module.py", venv + "/pyvenv.cfg"], "\(manifest.files.map(\.path))")
        #expect(manifest.links == [ToolManifest.Link(path: venv + "/bin/shell", target: "/bin/sh")])
        #expect(manifest.files.first?.mode == 0o755 && manifest.files.first?.sha256 == Hex.encode(SHA256.hash(Array("#!/bin/sh\necho tool\n".utf8))))
        #expect(ManifestFiles.verify(manifest).isEmpty)

        // The same size, other bytes: only the digest tells.
        try "print('change')\n".write(toFile: venv + "/lib/site/module.py", atomically: true, encoding: .utf8)
        try "import evil\n".write(toFile: venv + "/lib/site/added.pth", atomically: true, encoding: .utf8)
        unlink(venv + "/pyvenv.cfg")
        unlink(venv + "/bin/shell")
        symlink("/usr/bin/python3", venv + "/bin/shell")
        let problems = ManifestFiles.verify(manifest).map(\.description)
        #expect(problems.contains { $0.hasPrefix(venv + "/lib/site/module.py: sha256 ") && $0.contains("the manifest says") }, "\(problems)")
        #expect(problems.contains(venv + "/pyvenv.cfg: missing"), "\(problems)")
        #expect(problems.contains { $0.hasPrefix(venv + "/lib/site/added.pth: in \(venv)") }, "\(problems)")
        #expect(problems.contains(venv + "/bin/shell: points to /usr/bin/python3, the manifest says /bin/sh"), "\(problems)")
        #expect(problems.count == 4, "\(problems)")
        // A larger file is refused by its size, without reading past what the manifest lists.
        try "print('changed!')\n".write(toFile: venv + "/lib/site/module.py", atomically: true, encoding: .utf8)
        #expect(ManifestFiles.verify(manifest).map(\.description).contains(venv + "/lib/site/module.py: 18 bytes, more than 16"), "\(ManifestFiles.verify(manifest))")
        // A name Swift holds equal to a listed one (K and KELVIN SIGN) is another file to the kernel.
        // (Written with open(2): Foundation would normalise the name, making both the same file.)
        func create(_ path: String) {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            close(fd)
        }
        create(venv + "/lib/site/\u{212A}.py")
        try "home = /usr/bin\n".write(toFile: venv + "/pyvenv.cfg", atomically: true, encoding: .utf8)
        let (_, fresh) = try Self.manifest(tree)
        #expect(fresh.roots == [venv] && ManifestFiles.verify(fresh).isEmpty)
        create(venv + "/lib/site/K.py")
        #expect(ManifestFiles.verify(fresh).map(\.description).contains { $0.hasPrefix(venv + "/lib/site/K.py: in ") }, "\(ManifestFiles.verify(fresh))")
        // Built with both twins there, the manifest lists both, and holds.
        let (_, both) = try Self.manifest(tree)
        #expect(both.files.count == fresh.files.count + 1 && ManifestFiles.verify(both).isEmpty, "\(both.files.map(\.path))")
    }

    @Test("the base system is not listed; what a user could replace is")
    func baseSystem() throws {
        #expect(ManifestFiles.isBase("/usr/bin/env") && ManifestFiles.isBase("/bin/sh"))
        #expect(!ManifestFiles.isBase("/tmp") && !ManifestFiles.isBase("/nonexistent/file"))
        let tree = try Self.toolTree()
        #expect(!ManifestFiles.isBase(tree.profile))
    }

    @Test("a manifest is read strictly: unknown fields, bad digests, relative or repeated paths, an expiry before the issue are refused")
    func strictParsing() throws {
        let tree = try Self.toolTree()
        let (bytes, manifest) = try Self.manifest(tree)
        let text = String(decoding: bytes, as: UTF8.self)
        for (change, expected) in [
            (text.replacingOccurrences(of: manifest.files[0].sha256, with: "abc"), "64 lowercase hex digits"),
            (text.replacingOccurrences(of: "\"size\":\(manifest.files[0].size)", with: "\"size\":17179869185"), "a size from 0 to"),
            (text.replacingOccurrences(of: manifest.expires, with: "2001-01-01T00:00:00Z"), "expires is not after issued"),
            (text.replacingOccurrences(of: "\"burrow_manifest\":1", with: "\"burrow_manifest\":1,\"extra\":1"), "not a manifest"),
            (text.replacingOccurrences(of: "\"burrow_manifest\":1", with: "\"burrow_manifest\":2"), "this Burrow reads version 1"),
            (text.replacingOccurrences(of: "\"trust_level\":\"verified\"", with: "\"trust_level\":\"root\""), "trust_level"),
            (text.replacingOccurrences(of: tree.directory + "/venv/pyvenv.cfg", with: "venv/pyvenv.cfg"), "not an absolute, normalised path"),
            (text.replacingOccurrences(of: tree.directory + "/venv/pyvenv.cfg", with: tree.directory + "/venv/bin/tool"), "listed twice"),
            // A file through a link the manifest lists: a copy would be built through the link.
            (text.replacingOccurrences(of: tree.directory + "/venv/pyvenv.cfg", with: tree.directory + "/venv/bin/shell/pyvenv.cfg"), "lies beneath the link"),
        ] {
            #expect(throws: ToolManifest.Invalid.self, "\(expected)") { try ToolManifest.parse(Array(change.utf8)) }
            do {
                _ = try ToolManifest.parse(Array(change.utf8))
            } catch {
                #expect(error.description.contains(expected), "\(error)")
            }
        }
    }

    @Test("a signed manifest verifies up to the store's CA; the level is the lowest of the claim and the signer's grant; tampering, another CA, revocation, no CRL, no code signing, expiry all fail")
    func signatures() throws {
        let pki = try TestPKI()
        try pki.signer("signer", level: "community")
        let tree = try Self.toolTree()
        let (bytes, manifest) = try Self.manifest(tree, level: "verified")
        let signature = try ManifestSignature.sign(manifest: bytes, privateKeyPEM: try pki.bytes("signer.key"), chainPEM: try pki.bytes("signer.pem"))
        let store = try TrustStore.load(pki.store)
        let now = Self.now()
        let (_, good) = try ManifestSignature.verify(manifest: bytes, signatureFile: signature, store: store, now: now)
        #expect(good.signer == "/CN=signer" && good.granted == "community" && good.trustLevel == "community", "\(good)")

        func refusal(_ bytes: [UInt8], _ signature: [UInt8], store: TrustStore, now: Int64 = Self.now()) -> String {
            do {
                _ = try ManifestSignature.verify(manifest: bytes, signatureFile: signature, store: store, now: now)
                return "verified"
            } catch {
                return error.description
            }
        }
        // The manifest changed after signing: a file's digest swapped for another.
        let tampered = Array(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: manifest.files[0].sha256, with: String(repeating: "0", count: 64)).utf8)
        #expect(refusal(tampered, signature, store: store).contains("does not match the manifest"))
        // A store whose anchor is another CA.
        let other = try TestPKI()
        #expect(refusal(bytes, signature, store: try TrustStore.load(other.store)).contains("does not verify"))
        // A store without the CA's CRL: fail closed.
        #expect(refusal(bytes, signature, store: TrustStore(anchorsPEM: store.anchorsPEM, crlPEM: [])).contains("does not verify"))
        // After the certificate's validity (the CRL still current), and after the manifest's expiry.
        try pki.signer("brief", level: "community", days: 1)
        let brief = try ManifestSignature.sign(manifest: bytes, privateKeyPEM: try pki.bytes("brief.key"), chainPEM: try pki.bytes("brief.pem"))
        #expect(refusal(bytes, brief, store: store) == "verified")
        #expect(refusal(bytes, brief, store: store, now: now + 2 * 86_400).contains("certificate has expired"), "\(refusal(bytes, brief, store: store, now: now + 2 * 86_400))")
        let (shortBytes, _) = try Self.manifest(tree, expires: 60)
        let shortSignature = try ManifestSignature.sign(manifest: shortBytes, privateKeyPEM: try pki.bytes("signer.key"), chainPEM: try pki.bytes("signer.pem"))
        #expect(refusal(shortBytes, shortSignature, store: store, now: now + 120).contains("expired"))
        // A signer whose certificate has no keyUsage at all.
        try pki.signer("unbounded", level: "community", keyUsage: false)
        let unbounded = try ManifestSignature.sign(manifest: bytes, privateKeyPEM: try pki.bytes("unbounded.key"), chainPEM: try pki.bytes("unbounded.pem"))
        #expect(refusal(bytes, unbounded, store: store).contains("keyUsage"))
        // A signer whose certificate is not for code signing, and one with no grant (untrusted).
        try pki.signer("mailer", level: "system", codeSigning: false)
        let mailed = try ManifestSignature.sign(manifest: bytes, privateKeyPEM: try pki.bytes("mailer.key"), chainPEM: try pki.bytes("mailer.pem"))
        #expect(refusal(bytes, mailed, store: store).contains("code signing"))
        try pki.signer("plain", level: nil)
        let (_, plain) = try ManifestSignature.verify(
            manifest: bytes, signatureFile: try ManifestSignature.sign(manifest: bytes, privateKeyPEM: try pki.bytes("plain.key"), chainPEM: try pki.bytes("plain.pem")),
            store: store, now: Self.now())
        #expect(plain.trustLevel == "untrusted")
        // A signer that claims more than its CA allows is held to the CA's ceiling (verified).
        try pki.signer("boaster", level: "system")
        let (_, boasted) = try ManifestSignature.verify(
            manifest: bytes,
            signatureFile: try ManifestSignature.sign(manifest: bytes, privateKeyPEM: try pki.bytes("boaster.key"), chainPEM: try pki.bytes("boaster.pem")), store: store, now: Self.now())
        #expect(boasted.granted == "verified" && boasted.trustLevel == "verified", "\(boasted)")
        // A key kept in the certificate's file never reaches the signature file.
        let combined = try ManifestSignature.sign(manifest: bytes, privateKeyPEM: try pki.bytes("signer.key"), chainPEM: try pki.bytes("signer.key") + pki.bytes("signer.pem"))
        #expect(!String(decoding: combined, as: UTF8.self).contains("PRIVATE KEY") && refusal(bytes, combined, store: store) == "verified")
        // Revoked: the CRL lists it.
        try pki.revoke("signer")
        #expect(refusal(bytes, signature, store: try TrustStore.load(pki.store)).contains("revoked"))
    }

    @Test(
        "a store's NAME.level is a ceiling for every signer under the anchors of NAME.pem (a CA without Burrow's extension); a level file for no anchor, or not one level, refuses the store"
    )
    func storeCeilings() throws {
        let pki = try TestPKI()
        try pki.signer("signer", level: "verified")
        let tree = try Self.toolTree()
        let (bytes, _) = try Self.manifest(tree, level: "verified")
        let signature = try ManifestSignature.sign(manifest: bytes, privateKeyPEM: try pki.bytes("signer.key"), chainPEM: try pki.bytes("signer.pem"))
        let (_, unbounded) = try ManifestSignature.verify(manifest: bytes, signatureFile: signature, store: try TrustStore.load(pki.store), now: Self.now())
        #expect(unbounded.granted == "verified" && unbounded.storeCeiling == nil)
        func level(_ name: String, _ text: String) throws {
            try text.write(toFile: pki.store + "/" + name, atomically: false, encoding: .utf8)
            chmod(pki.store + "/" + name, 0o644)
        }
        try level("ca.level", "community\n")
        let (_, held) = try ManifestSignature.verify(manifest: bytes, signatureFile: signature, store: try TrustStore.load(pki.store), now: Self.now())
        #expect(held.granted == "community" && held.trustLevel == "community" && held.storeCeiling?.file == pki.store + "/ca.level", "\(held)")
        // The same CA key in a certificate of its own (re-issued, no level file): the ceiling follows the key.
        try pki.openssl(["req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=Burrow test CA", "-days", "60", "-config", "ca.cnf", "-extensions", "ca_ext", "-out", "reissued.pem"])
        try FileManager.default.copyItem(atPath: pki.directory + "/reissued.pem", toPath: pki.store + "/0-reissued.pem")
        chmod(pki.store + "/0-reissued.pem", 0o644)
        let (_, reissued) = try ManifestSignature.verify(manifest: bytes, signatureFile: signature, store: try TrustStore.load(pki.store), now: Self.now())
        #expect(reissued.granted == "community", "\(reissued)")
        unlink(pki.store + "/0-reissued.pem")
        // A ceiling above the CA's own extension (verified) changes nothing, and is not named: the lowest holds.
        try level("ca.level", "system")
        let (_, above) = try ManifestSignature.verify(manifest: bytes, signatureFile: signature, store: try TrustStore.load(pki.store), now: Self.now())
        #expect(above.granted == "verified" && above.storeCeiling == nil)
        // Another store's anchor is not held by this one's level file.
        let other = try TestPKI(name: "another CA")
        try other.signer("stranger", level: "verified")
        try FileManager.default.copyItem(atPath: other.store + "/ca.pem", toPath: pki.store + "/other.pem")
        try FileManager.default.copyItem(atPath: other.store + "/ca.crl", toPath: pki.store + "/other.crl")
        chmod(pki.store + "/other.pem", 0o644)
        chmod(pki.store + "/other.crl", 0o644)
        try level("ca.level", "untrusted")
        let stranger = try ManifestSignature.sign(manifest: bytes, privateKeyPEM: try other.bytes("stranger.key"), chainPEM: try other.bytes("stranger.pem"))
        let (_, strange) = try ManifestSignature.verify(manifest: bytes, signatureFile: stranger, store: try TrustStore.load(pki.store), now: Self.now())
        #expect(strange.granted == "verified" && strange.storeCeiling == nil, "\(strange)")
        func refusal() -> String {
            do {
                _ = try TrustStore.load(pki.store)
                return "loaded"
            } catch {
                return error.description
            }
        }
        try level("ca.level", "community verified")
        #expect(refusal().contains("expected one trust level"))
        try level("ca.level", "community")
        try level("gone.level", "community")
        #expect(refusal().contains("the store has neither"), "\(refusal())")
        unlink(pki.store + "/gone.level")
        // Like every file of the store: nobody else may write it.
        chmod(pki.store + "/ca.level", 0o666)
        #expect(refusal().contains("writable by nobody else"))
    }

    @Test("burrow tools manifest, sign and verify: exit 0 when all holds, 1 with what failed")
    func commandLine() throws {
        let pki = try TestPKI()
        try pki.signer("signer", level: "verified")
        let tree = try Self.toolTree()
        let manifest = tree.directory + "/tool.manifest"
        // A profile that loads (its digest is the one a run compares).
        try """
        extends = "\(Fixtures.profilesDirectory)/minimal.toml"
        [tool]
        id = "tool"
        name = "tool"
        version = "1"
        """.write(toFile: tree.profile, atomically: true, encoding: .utf8)
        let made = try Subprocess.run([Subprocess.burrow, "tools", "manifest", "--profile", tree.profile, "--trust-level", "verified", "-o", manifest, "--"] + tree.command)
        try #require(made.status == 0, "\(made.stderr)")
        #expect(made.stderr.contains("3 files, 1 links, 1 roots"), "\(made.stderr)")
        let signed = try Subprocess.run([Subprocess.burrow, "tools", "sign", "--key", pki.directory + "/signer.key", "--cert", pki.directory + "/signer.pem", manifest])
        try #require(signed.status == 0, "\(signed.stderr)")
        // The store named by the host policy's [security] cert_store_path.
        let policy = tree.directory + "/burrow.toml"
        try "[security]\ncert_store_path = \"\(pki.store)\"\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let verified = try Subprocess.run([Subprocess.burrow, "tools", "verify", "--policy", policy, manifest])
        #expect(verified.status == 0 && verified.output.contains("signature: good, by /CN=signer; trust level verified"), "\(verified.output) \(verified.stderr)")
        try "changed\n".write(toFile: tree.directory + "/venv/lib/site/module.py", atomically: true, encoding: .utf8)
        let changed = try Subprocess.run([Subprocess.burrow, "tools", "verify", "--store", pki.store, manifest])
        #expect(changed.status == 1 && changed.stderr.contains("module.py: sha256"), "\(changed.output) \(changed.stderr)")
        #expect(changed.output.contains("signature: good"), "the signature still holds; the file does not")
    }
}
