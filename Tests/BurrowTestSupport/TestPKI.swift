import BurrowManifest
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A certificate authority the tests make with the openssl CLI: Ed25519
/// keys, a CA whose certificates may carry Burrow's trust-level extension,
/// signers, and a CRL.
package final class TestPKI: @unchecked Sendable {
    package let directory: String
    package var store: String { directory + "/store" }

    /// - Parameter name: the CA's common name (two stores' CAs side by side need two).
    package init(name: String = "Burrow test CA") throws {
        directory = try Subprocess.temporaryDirectory()
        try write(
            "ca.cnf",
            """
            [req]
            distinguished_name = dn
            [dn]
            [ca_ext]
            basicConstraints = critical,CA:TRUE
            keyUsage = critical,keyCertSign,cRLSign
            subjectKeyIdentifier = hash
            \(ManifestSignature.trustLevelOID) = ASN1:UTF8String:verified
            [ca]
            default_ca = ca0
            [ca0]
            database = \(directory)/index.txt
            crlnumber = \(directory)/crlnumber
            default_md = default
            default_crl_days = 30
            """)
        try write("index.txt", "")
        try write("crlnumber", "01\n")
        try openssl(["genpkey", "-algorithm", "ed25519", "-out", "ca.key"])
        try openssl(["req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=\(name)", "-days", "30", "-config", "ca.cnf", "-extensions", "ca_ext", "-out", "ca.pem"])
        try refreshCRL()
        mkdir(store, 0o755)
        chmod(directory, 0o755)
        chmod(store, 0o755)
        try FileManager.default.copyItem(atPath: directory + "/ca.pem", toPath: store + "/ca.pem")
        try FileManager.default.copyItem(atPath: directory + "/ca.crl", toPath: store + "/ca.crl")
        // Whatever the umask: the store refuses files others may write.
        chmod(store + "/ca.pem", 0o644)
        chmod(store + "/ca.crl", 0o644)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    package func write(_ name: String, _ text: String) throws {
        try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
    }

    package func openssl(_ arguments: [String]) throws {
        let r = try Subprocess.run(["/usr/bin/openssl"] + arguments, directory: directory)
        guard r.status == 0 else { throw RequirementUnmet(description: "openssl \(arguments.joined(separator: " ")): \(r.stderr)") }
    }

    package func refreshCRL() throws {
        try openssl(["ca", "-gencrl", "-keyfile", "ca.key", "-cert", "ca.pem", "-config", "ca.cnf", "-out", "ca.crl"])
    }

    /// A signer `name` (key `name.key`, certificate `name.pem`): `level` in
    /// the extension (nil: none), code signing unless `codeSigning` is false.
    package func signer(_ name: String, level: String?, codeSigning: Bool = true, keyUsage: Bool = true, days: Int = 10) throws {
        var ext = "basicConstraints = critical,CA:FALSE\nauthorityKeyIdentifier = keyid\n"
        if keyUsage { ext += "keyUsage = critical,digitalSignature\n" }
        if codeSigning { ext += "extendedKeyUsage = codeSigning\n" }
        if let level { ext += "\(ManifestSignature.trustLevelOID) = ASN1:UTF8String:\(level)\n" }
        try write(name + ".ext", ext)
        try openssl(["genpkey", "-algorithm", "ed25519", "-out", name + ".key"])
        chmod(directory + "/" + name + ".key", 0o600)
        try openssl(["req", "-new", "-key", name + ".key", "-subj", "/CN=\(name)", "-config", "ca.cnf", "-out", name + ".csr"])
        try openssl(["x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "\(days)", "-extfile", name + ".ext", "-out", name + ".pem"])
    }

    package func revoke(_ name: String) throws {
        try openssl(["ca", "-revoke", name + ".pem", "-keyfile", "ca.key", "-cert", "ca.pem", "-config", "ca.cnf"])
        try refreshCRL()
        try FileManager.default.removeItem(atPath: store + "/ca.crl")
        try FileManager.default.copyItem(atPath: directory + "/ca.crl", toPath: store + "/ca.crl")
        chmod(store + "/ca.crl", 0o644)
    }

    package func bytes(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))) }
}
