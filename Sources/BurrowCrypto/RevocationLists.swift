import CCrypto

#if canImport(Glibc)
    import Glibc
#endif

/// Certificate revocation lists for client certificates (`[transport.http]
/// client_crl`): one CRL per CA of `client_ca`, each signed by its CA's key.
/// A client certificate is good only when the CRL of its issuer is current
/// (its nextUpdate has not passed) and does not list its serial number; a
/// certificate whose issuer has no CRL here is refused (fail closed).
package struct RevocationLists: Sendable {
    struct List: Sendable {
        /// The issuer's name (DER), and as text for messages.
        var issuer: [UInt8]
        var issuerText: String
        /// Revoked serial numbers, as their big-endian magnitude bytes.
        var revoked: Set<[UInt8]>
        /// Unix seconds after which the list is stale.
        var nextUpdate: Int64
    }

    let lists: [List]

    /// What a certificate's revocation status is.
    package enum Status: Equatable, Sendable {
        case good
        /// Why not: revoked, its issuer's list stale, or no list for its issuer.
        case refused(String)
    }

    /// The CRLs of `crlPEM` (one or more, PEM), each verified against the
    /// CA of `caPEM` whose subject is its issuer; every CA of `caPEM` must
    /// have one, current at `now`.
    package init(crlPEM: [UInt8], caPEM: [UInt8], now: Int64) throws(CryptoError) {
        let cas = try Self.readAll(caPEM, what: "certificate") { PEM_read_bio_X509($0, nil, nil, nil) }
        defer { for ca in cas { X509_free(ca) } }
        let crls = try Self.readAll(crlPEM, what: "CRL") { PEM_read_bio_X509_CRL($0, nil, nil, nil) }
        defer { for crl in crls { X509_CRL_free(crl) } }
        var lists: [List] = []
        for ca in cas {
            let subject = Self.der(X509_get_subject_name(ca))
            let name = Self.text(X509_get_subject_name(ca))
            guard let crl = crls.first(where: { Self.der(X509_CRL_get_issuer($0)) == subject }) else {
                throw CryptoError("no CRL for the CA '\(name)' (every CA of client_ca needs one)")
            }
            guard let key = X509_get0_pubkey(ca), X509_CRL_verify(crl, key) == 1 else {
                ERR_clear_error()
                throw CryptoError("the CRL of '\(name)' is not signed by its key")
            }
            guard let next = X509_CRL_get0_nextUpdate(crl), let nextUpdate = Self.seconds(next) else {
                throw CryptoError("the CRL of '\(name)' has no nextUpdate (a list that never goes stale cannot be trusted to be current)")
            }
            guard nextUpdate > now else { throw CryptoError("the CRL of '\(name)' is stale: its nextUpdate has passed (fetch a new one)") }
            var revoked = Set<[UInt8]>()
            if let entries = X509_CRL_get_REVOKED(crl) {
                for i in 0..<OPENSSL_sk_num(entries) {
                    guard let entry = OPENSSL_sk_value(entries, i), let serial = X509_REVOKED_get0_serialNumber(OpaquePointer(entry)) else { continue }
                    revoked.insert(Self.bytes(serial))
                }
            }
            lists.append(List(issuer: subject, issuerText: name, revoked: revoked, nextUpdate: nextUpdate))
        }
        self.lists = lists
    }

    /// A certificate's (DER) status at `now` (Unix seconds).
    package func status(ofCertificateDER der: [UInt8], now: Int64) -> Status {
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var p = buffer.baseAddress
            return d2i_X509(nil, &p, buffer.count)
        }
        guard let certificate = parsed else { return .refused("a certificate that does not parse") }
        defer { X509_free(certificate) }
        let issuer = Self.der(X509_get_issuer_name(certificate))
        guard let list = lists.first(where: { $0.issuer == issuer }) else {
            return .refused("no CRL for its issuer '\(Self.text(X509_get_issuer_name(certificate)))'")
        }
        guard list.nextUpdate > now else { return .refused("the CRL of '\(list.issuerText)' is stale (its nextUpdate has passed): revocation cannot be checked") }
        guard let serial = X509_get_serialNumber(certificate) else { return .refused("a certificate without a serial number") }
        let number = Self.bytes(serial)
        return list.revoked.contains(number) ? .refused("certificate \(Hex.encode(number)) of '\(list.issuerText)' is revoked") : .good
    }

    /// Every PEM object `read` finds in `pem`; at least one.
    static func readAll(_ pem: [UInt8], what: String, _ read: (OpaquePointer) -> OpaquePointer?) throws(CryptoError) -> [OpaquePointer] {
        let found: [OpaquePointer] = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return [] }
            defer { BIO_free(bio) }
            var out: [OpaquePointer] = []
            while out.count < 1024, let next = read(bio) { out.append(next) }
            return out
        }
        ERR_clear_error()
        guard !found.isEmpty else { throw CryptoError("no PEM \(what) in it") }
        return found
    }

    private static func der(_ name: OpaquePointer?) -> [UInt8] {
        guard let name else { return [] }
        var out: UnsafeMutablePointer<UInt8>?
        let n = i2d_X509_NAME(name, &out)
        guard n > 0, let out else { return [] }
        defer { CRYPTO_free(out, #fileID, #line) }
        return Array(UnsafeBufferPointer(start: out, count: Int(n)))
    }

    static func text(_ name: OpaquePointer?) -> String {
        guard let name else { return "?" }
        var buffer = [CChar](repeating: 0, count: 256)
        guard X509_NAME_oneline(name, &buffer, Int32(buffer.count)) != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func bytes(_ integer: UnsafePointer<ASN1_INTEGER>) -> [UInt8] {
        let n = Int(ASN1_STRING_length(integer))
        guard n > 0, let data = ASN1_STRING_get0_data(integer) else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: n))
    }

    static func seconds(_ time: UnsafePointer<ASN1_TIME>) -> Int64? {
        var t = tm()
        guard ASN1_TIME_to_tm(time, &t) == 1 else { return nil }
        return Int64(timegm(&t))
    }
}
