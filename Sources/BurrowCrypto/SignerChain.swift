import CCrypto

#if canImport(Glibc)
    import Glibc
#endif

/// A signer's certificate chain, verified by libcrypto against a store of
/// trust anchors (`X509_verify_cert`): every signature up to an anchor, the
/// validity dates at `now`, CA basic constraints, and revocation of every
/// certificate of the chain against the store's CRLs (each issuing CA must
/// have a current one: fail closed). On top of that the leaf must be an
/// Ed25519 key whose usage allows digital signatures and whose extended
/// key usage names code signing. Each certificate's value of a text
/// extension (`extensionOID`, a UTF8String, e.g. the highest trust level it
/// may grant) is read from the verified chain.
package struct SignerChain: Sendable {
    /// The leaf's subject (one line).
    package var subject: String
    /// The extension's value in each certificate of the verified chain, leaf first (nil: absent).
    package var extensionValues: [String?]
    /// The leaf's public key (PEM), for `Ed25519.verify`.
    package var publicKeyPEM: [UInt8]
    /// The leaf's validity end (Unix seconds).
    package var notAfter: Int64
    /// The SHA-256 (hex) of each certificate's public key in the verified
    /// chain, leaf first, the anchor last: what a store's per-CA ceiling is
    /// keyed by (a key, not one encoding of a certificate: a CA re-issued
    /// or cross-signed with the same key is the same CA).
    package var keyFingerprints: [String]

    /// - Parameters:
    ///   - chainPEM: the leaf, then any intermediates.
    ///   - anchorsPEM: the trust anchors (self-signed CA certificates).
    ///   - crlPEM: the CRLs of the CAs (empty: none, and every chain is refused).
    ///   - now: Unix seconds.
    package init(chainPEM: [UInt8], anchorsPEM: [UInt8], crlPEM: [UInt8], now: Int64, extensionOID: String) throws(CryptoError) {
        let chain = try RevocationLists.readAll(chainPEM, what: "certificate") { PEM_read_bio_X509($0, nil, nil, nil) }
        defer { for c in chain { X509_free(c) } }
        let anchors = try RevocationLists.readAll(anchorsPEM, what: "trust anchor") { PEM_read_bio_X509($0, nil, nil, nil) }
        defer { for c in anchors { X509_free(c) } }
        let crls = crlPEM.isEmpty ? [] : try RevocationLists.readAll(crlPEM, what: "CRL") { PEM_read_bio_X509_CRL($0, nil, nil, nil) }
        defer { for c in crls { X509_CRL_free(c) } }

        guard let store = X509_STORE_new() else { throw CryptoError("out of memory") }
        defer { X509_STORE_free(store) }
        for anchor in anchors { X509_STORE_add_cert(store, anchor) }
        for crl in crls {
            // A list that never goes stale cannot be trusted to be current.
            guard X509_CRL_get0_nextUpdate(crl) != nil else {
                throw CryptoError("the CRL of '\(RevocationLists.text(X509_CRL_get_issuer(crl)))' has no nextUpdate")
            }
            X509_STORE_add_crl(store, crl)
        }
        guard let untrusted = OPENSSL_sk_new_null() else { throw CryptoError("out of memory") }
        defer { OPENSSL_sk_free(untrusted) }
        for intermediate in chain.dropFirst() { OPENSSL_sk_push(untrusted, UnsafeRawPointer(intermediate)) }
        guard let ctx = X509_STORE_CTX_new() else { throw CryptoError("out of memory") }
        defer { X509_STORE_CTX_free(ctx) }
        let leaf = chain[0]
        guard X509_STORE_CTX_init(ctx, store, leaf, untrusted) == 1, let parameters = X509_STORE_CTX_get0_param(ctx) else {
            throw CryptoError("cannot set up the chain's verification")
        }
        X509_VERIFY_PARAM_set_time(parameters, time_t(now))
        X509_VERIFY_PARAM_set_flags(parameters, UInt(X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL | X509_V_FLAG_X509_STRICT))
        // 112-bit security at least: no SHA-1 signatures, no short RSA keys anywhere in the chain.
        X509_VERIFY_PARAM_set_auth_level(parameters, 2)
        guard X509_verify_cert(ctx) == 1 else {
            let error = X509_STORE_CTX_get_error(ctx)
            let depth = X509_STORE_CTX_get_error_depth(ctx)
            let reason = X509_verify_cert_error_string(Int(error)).map { String(cString: $0) } ?? "error \(error)"
            ERR_clear_error()
            throw CryptoError("the signer's certificate chain does not verify: \(reason) (certificate \(depth) of the chain, 0 the signer's)")
        }
        // Usage: a key for signatures, certified for code signing.
        // X509_get_key_usage answers "any" when the extension is absent: it must be there.
        guard X509_get_extension_flags(leaf) & UInt32(EXFLAG_KUSAGE) != 0, X509_get_key_usage(leaf) & UInt32(KU_DIGITAL_SIGNATURE) != 0 else {
            throw CryptoError("the signer's certificate does not allow digital signatures (keyUsage digitalSignature)")
        }
        guard X509_get_extended_key_usage(leaf) & UInt32(XKU_CODE_SIGN) != 0, X509_get_extension_flags(leaf) & UInt32(EXFLAG_XKUSAGE) != 0 else {
            throw CryptoError("the signer's certificate is not for code signing (extendedKeyUsage codeSigning)")
        }
        guard let key = X509_get0_pubkey(leaf), EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 else {
            throw CryptoError("the signer's key is not an Ed25519 key")
        }
        publicKeyPEM = try Self.pem(key)
        subject = RevocationLists.text(X509_get_subject_name(leaf))
        guard let end = X509_get0_notAfter(leaf), let seconds = RevocationLists.seconds(end) else { throw CryptoError("the signer's certificate has no end of validity") }
        notAfter = seconds

        guard let object = OBJ_txt2obj(extensionOID, 1) else { throw CryptoError("not an OID: \(extensionOID)") }
        defer { ASN1_OBJECT_free(object) }
        guard let verified = X509_STORE_CTX_get1_chain(ctx) else { throw CryptoError("the verified chain is not available") }
        defer { OPENSSL_sk_pop_free(verified) { X509_free(OpaquePointer($0)) } }
        var values: [String?] = []
        for i in 0..<OPENSSL_sk_num(verified) {
            guard let certificate = OPENSSL_sk_value(verified, i) else { continue }
            values.append(try Self.text(extension: object, of: OpaquePointer(certificate)))
        }
        extensionValues = values
        var keys: [String] = []
        for i in 0..<OPENSSL_sk_num(verified) {
            guard let certificate = OPENSSL_sk_value(verified, i) else { continue }
            keys.append(try Self.keyFingerprint(OpaquePointer(certificate)))
        }
        keyFingerprints = keys
    }

    /// The SHA-256 (hex) of each certificate's public key in `pem`, in order.
    package static func keyFingerprints(pem: [UInt8]) throws(CryptoError) -> [String] {
        let certificates = try RevocationLists.readAll(pem, what: "certificate") { PEM_read_bio_X509($0, nil, nil, nil) }
        defer { for c in certificates { X509_free(c) } }
        var out: [String] = []
        for certificate in certificates { out.append(try keyFingerprint(certificate)) }
        return out
    }

    private static func keyFingerprint(_ certificate: OpaquePointer) throws(CryptoError) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        guard X509_pubkey_digest(certificate, EVP_sha256(), &digest, &length) == 1, length == 32 else { throw CryptoError("cannot take a certificate's key fingerprint") }
        return Hex.encode(digest)
    }

    /// The extension's UTF8String value; nil when the certificate has none.
    private static func text(extension object: OpaquePointer, of certificate: OpaquePointer) throws(CryptoError) -> String? {
        let index = X509_get_ext_by_OBJ(certificate, object, -1)
        guard index >= 0 else { return nil }
        guard X509_get_ext_by_OBJ(certificate, object, index) < 0 else { throw CryptoError("a certificate carries the trust extension twice") }
        guard let ext = X509_get_ext(certificate, index), let data = X509_EXTENSION_get_data(ext) else { return nil }
        let n = Int(ASN1_STRING_length(data))
        guard n > 0, let bytes = ASN1_STRING_get0_data(data) else { throw CryptoError("an empty trust extension") }
        var p: UnsafePointer<UInt8>? = bytes
        guard let string = d2i_ASN1_UTF8STRING(nil, &p, n) else {
            ERR_clear_error()
            throw CryptoError("the trust extension is not a UTF8String")
        }
        defer { ASN1_UTF8STRING_free(string) }
        let length = Int(ASN1_STRING_length(string))
        guard let content = ASN1_STRING_get0_data(string) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: content, count: length), as: UTF8.self)
    }

    private static func pem(_ key: OpaquePointer) throws(CryptoError) -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { throw CryptoError("out of memory") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PUBKEY(bio, key) == 1 else { throw CryptoError("cannot write the signer's key") }
        var data: UnsafeMutablePointer<CChar>?
        let n = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data)
        guard n > 0, let data else { throw CryptoError("cannot write the signer's key") }
        return data.withMemoryRebound(to: UInt8.self, capacity: n) { Array(UnsafeBufferPointer(start: $0, count: n)) }
    }
}
