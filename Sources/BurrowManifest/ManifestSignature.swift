import BurrowAudit
import BurrowCrypto
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// A manifest's signature (`MANIFEST.sig`): a `BURROW MANIFEST SIGNATURE`
/// PEM block holding the Ed25519 signature of `burrow-manifest-v1`, a NUL
/// and the manifest's exact bytes, then the signer's certificate and any
/// intermediates (PEM). It holds when the signature verifies under the
/// signer's key, the chain verifies up to a trust anchor of the store
/// (`TrustStore`: dates, CA constraints, revocation against the store's
/// CRLs, a code-signing leaf), and the manifest has not expired.
///
/// **Trust levels.** A certificate may carry the extension
/// `ManifestSignature.trustLevelOID` (a UTF8String: system, verified,
/// community or untrusted): in the signer's certificate, the highest level
/// it may grant; in a CA's, a ceiling for everything below it. A signer
/// whose certificate has none grants `untrusted`. The manifest's level is
/// the lowest of its own claim, the signer's grant and every ceiling.
package enum ManifestSignature {
    /// Burrow's private OID (2.25: a UUID, no registration needed) for the trust-level extension.
    package static let trustLevelOID = "2.25.179714903112585212283008490205872284036"
    static let domain = Array("burrow-manifest-v1".utf8) + [0]
    static let label = "BURROW MANIFEST SIGNATURE"
    /// Lowest first.
    package static let levels = ["untrusted", "community", "verified", "system"]

    /// A level's place in `levels` (an unknown one: the lowest).
    static func rank(_ level: String) -> Int { levels.firstIndex(of: level) ?? 0 }

    /// Why a signature does not hold.
    package struct Failure: Error, Sendable, CustomStringConvertible {
        package var description: String
        init(_ description: String) { self.description = description }
    }

    /// The `.sig` file's bytes for `manifest`, signed with an Ed25519 key (PEM)
    /// whose certificate (and intermediates) `chainPEM` holds.
    /// Only the CERTIFICATE blocks of `chainPEM` go into the file: a key
    /// kept in the same PEM file stays out of what is shipped.
    package static func sign(manifest: [UInt8], privateKeyPEM: [UInt8], chainPEM: [UInt8]) throws(Failure) -> [UInt8] {
        let signature: [UInt8]
        do {
            signature = try Ed25519.sign(domain + manifest, privateKeyPEM: privateKeyPEM)
        } catch {
            throw Failure("cannot sign: \(error)")
        }
        let certificates = Self.blocks("CERTIFICATE", in: String(decoding: chainPEM, as: UTF8.self))
        guard !certificates.isEmpty else { throw Failure("the certificate file has no CERTIFICATE block") }
        let block = "-----BEGIN \(label)-----\n\(Data(signature).base64EncodedString())\n-----END \(label)-----\n"
        return Array((block + certificates.joined()).utf8)
    }

    /// Each `label` PEM block of `text`, whole, with its line breaks.
    static func blocks(_ label: String, in text: String) -> [String] {
        let begin = "-----BEGIN \(label)-----"
        let end = "-----END \(label)-----"
        var out: [String] = []
        var rest = text[...]
        while let start = rest.firstRange(of: begin), let stop = rest[start.upperBound...].firstRange(of: end) {
            out.append(String(rest[start.lowerBound..<stop.upperBound]) + "\n")
            rest = rest[stop.upperBound...]
        }
        return out
    }

    /// What a verified signature says.
    package struct Verified: Sendable, Equatable {
        /// The signer's subject.
        package var signer: String
        /// What the signer's certificate grants, after its CAs' ceilings.
        package var granted: String
        /// The manifest's level: the lowest of its claim and `granted`.
        package var trustLevel: String
        /// Unix seconds.
        package var expires: Int64
        /// The store's ceiling that held the grant lower than the chain's certificates did, and the file that sets it (`NAME.level`); nil: none did.
        package var storeCeiling: (level: String, file: String)?

        package static func == (a: Verified, b: Verified) -> Bool {
            a.signer == b.signer && a.granted == b.granted && a.trustLevel == b.trustLevel && a.expires == b.expires
                && a.storeCeiling?.level == b.storeCeiling?.level && a.storeCeiling?.file == b.storeCeiling?.file
        }
    }

    /// Verifies `signatureFile` over the manifest's bytes at `now` (Unix
    /// seconds); what it says (level, expiry) is read from those same bytes.
    package static func verify(manifest manifestBytes: [UInt8], signatureFile: [UInt8], store: TrustStore, now: Int64) throws(Failure) -> (ToolManifest, Verified) {
        let manifest: ToolManifest
        do {
            manifest = try ToolManifest.parse(manifestBytes)
        } catch {
            throw Failure("the manifest: \(error)")
        }
        let text = String(decoding: signatureFile, as: UTF8.self)
        let begin = "-----BEGIN \(label)-----"
        let end = "-----END \(label)-----"
        guard let start = text.firstRange(of: begin), let stop = text[start.upperBound...].firstRange(of: end) else {
            throw Failure("the signature file has no \(label) block")
        }
        let body = text[start.upperBound..<stop.lowerBound].filter { !$0.isWhitespace }
        guard let signature = Data(base64Encoded: String(body)), signature.count == 64 else { throw Failure("the signature is not 64 bytes of base64") }
        let chainPEM = Array(text[stop.upperBound...].utf8)
        let chain: SignerChain
        do {
            chain = try SignerChain(chainPEM: chainPEM, anchorsPEM: store.anchorsPEM, crlPEM: store.crlPEM, now: now, extensionOID: trustLevelOID)
        } catch {
            throw Failure("\(error)")
        }
        let valid: Bool
        do {
            valid = try Ed25519.verify(Array(signature), of: domain + manifestBytes, publicKeyPEM: chain.publicKeyPEM)
        } catch {
            throw Failure("the signer's key: \(error)")
        }
        guard valid else { throw Failure("the signature does not match the manifest (changed since it was signed, or signed by another key)") }
        guard let expires = AuditClock.parse(manifest.expires).map({ $0 / 1_000_000 }) else { throw Failure("the manifest's expiry does not parse") }
        guard expires > now else { throw Failure("the manifest expired at \(manifest.expires)") }
        // The signer's grant (none: untrusted), under every CA's ceiling.
        var granted = chain.extensionValues.first.flatMap { $0 } == nil ? 0 : levels.count - 1
        for value in chain.extensionValues {
            guard let value else { continue }
            guard let rank = levels.firstIndex(of: value) else { throw Failure("a certificate's trust level '\(value)' is none of \(levels.joined(separator: ", "))") }
            granted = min(granted, rank)
        }
        // The store's own ceilings, for any CA of the chain by its key (a CA that cannot carry Burrow's extension).
        // Named only when one held the grant lower than the certificates did.
        var ceiling: (level: String, file: String)?
        for key in chain.keyFingerprints {
            guard let found = store.ceilings[key], rank(found.level) < granted else { continue }
            granted = rank(found.level)
            ceiling = found
        }
        let claimed = levels.firstIndex(of: manifest.trustLevel) ?? 0
        return (
            manifest,
            Verified(signer: chain.subject, granted: levels[granted], trustLevel: levels[min(claimed, granted)], expires: expires, storeCeiling: ceiling)
        )
    }
}

/// A directory of trust anchors and CRLs: every
/// `*.pem` or `*.crt` file's certificates are anchors, every `*.crl`
/// file's lists are CRLs, and a `NAME.level` file (one word: system,
/// verified, community or untrusted) is the highest level any signer
/// under a CA of `NAME.pem` (or `NAME.crt`) may grant: the operator's
/// ceiling for a CA that does not carry Burrow's extension. It holds for
/// every chain through that CA's key, wherever in the chain (an
/// intermediate the store names, a root re-issued with the same key).
/// Files must be root's (or the reader's) and writable by nobody else: an
/// anchor anyone could add is no anchor.
package struct TrustStore: Sendable {
    package var anchorsPEM: [UInt8]
    package var crlPEM: [UInt8]
    /// The files read (what to watch for a change).
    package var files: [String] = []
    /// Per-CA ceilings, by the SHA-256 of the CA's public key (hex): the level and the file that sets it.
    package var ceilings: [String: (level: String, file: String)] = [:]

    package init(anchorsPEM: [UInt8], crlPEM: [UInt8]) {
        self.anchorsPEM = anchorsPEM
        self.crlPEM = crlPEM
    }

    /// The store itself, like its files, must be root's (or the reader's)
    /// and writable by nobody else: whoever may add or rename a file there
    /// may add an anchor, or put an old CRL back.
    package static func load(_ directory: String) throws(ManifestSignature.Failure) -> TrustStore {
        func closed(_ st: stat) -> Bool { (st.st_uid == 0 || st.st_uid == geteuid()) && st.st_mode & 0o022 == 0 }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directoryFD >= 0 else { throw ManifestSignature.Failure("the certificate store \(directory) cannot be read: \(String(cString: strerror(errno)))") }
        guard let handle = fdopendir(directoryFD) else {
            close(directoryFD)
            throw ManifestSignature.Failure("the certificate store \(directory) cannot be read: \(String(cString: strerror(errno)))")
        }
        defer { closedir(handle) }
        var st = stat()
        guard fstat(directoryFD, &st) == 0, closed(st) else {
            throw ManifestSignature.Failure("the certificate store \(directory) must belong to root (or you) and be writable by nobody else")
        }
        var names: [String] = []
        while let entry = readdir(handle) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) })
        }
        var store = TrustStore(anchorsPEM: [], crlPEM: [])
        var anchorFiles: [String: [UInt8]] = [:]
        var levelFiles: [(name: String, text: String)] = []
        for name in names.sorted() {
            let isAnchor = name.hasSuffix(".pem") || name.hasSuffix(".crt")
            let isLevel = name.hasSuffix(".level")
            guard isAnchor || isLevel || name.hasSuffix(".crl") else { continue }
            let path = directory + "/" + name
            let fd = openat(directoryFD, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { throw ManifestSignature.Failure("\(path) cannot be opened: \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, closed(st) else {
                throw ManifestSignature.Failure("\(path): the store's files must be regular files of root (or yours), writable by nobody else")
            }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &chunk, chunk.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                bytes += chunk[0..<n]
                guard bytes.count <= 16 << 20 else { throw ManifestSignature.Failure("\(path) is larger than 16 MiB") }
            }
            if isLevel {
                levelFiles.append((name, String(decoding: bytes, as: UTF8.self)))
            } else if isAnchor {
                store.anchorsPEM += bytes + [0x0a]
                anchorFiles[name] = bytes
            } else {
                store.crlPEM += bytes + [0x0a]
            }
            store.files.append(path)
        }
        guard !store.anchorsPEM.isEmpty else { throw ManifestSignature.Failure("the certificate store \(directory) has no trust anchor (*.pem or *.crt)") }
        for (name, text) in levelFiles {
            let path = directory + "/" + name
            let words = text.split(whereSeparator: \.isWhitespace)
            let level = words.count == 1 ? String(words[0]) : text
            guard ManifestSignature.levels.contains(level) else {
                throw ManifestSignature.Failure("\(path): expected one trust level (\(ManifestSignature.levels.joined(separator: ", "))), not '\(level.prefix(64))'")
            }
            let base = String(name.dropLast(".level".count))
            let anchors = [base + ".pem", base + ".crt"].compactMap { anchorFiles[$0] }
            // A ceiling that holds nothing back is a misconfiguration, never silently ignored.
            guard !anchors.isEmpty else { throw ManifestSignature.Failure("\(path) sets a ceiling for \(base).pem or \(base).crt, and the store has neither") }
            for bytes in anchors {
                let fingerprints: [String]
                do {
                    fingerprints = try SignerChain.keyFingerprints(pem: bytes)
                } catch {
                    throw ManifestSignature.Failure("\(directory)/\(base): \(error)")
                }
                for fingerprint in fingerprints {
                    // The same key in two files with two ceilings: the lower holds.
                    if let kept = store.ceilings[fingerprint], ManifestSignature.rank(kept.level) <= ManifestSignature.rank(level) { continue }
                    store.ceilings[fingerprint] = (level, path)
                }
            }
        }
        return store
    }
}
