import CCrypto

/// SHA-256 (OpenSSL's libcrypto): the audit log's hash chain, profile and
/// argument digests. Through the low-level SHA256_Init/Update/Final: no
/// provider is fetched and libcrypto is never initialized for a digest.
package enum SHA256 {
    /// The 32-byte digest of `bytes`.
    package static func hash(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var context = SHA256_CTX()
        func digest(_ input: UnsafeBufferPointer<UInt8>) -> Bool {
            SHA256_Init(&context) == 1 && SHA256_Update(&context, input.baseAddress, input.count) == 1 && SHA256_Final(&out, &context) == 1
        }
        let ok = bytes.withContiguousStorageIfAvailable(digest) ?? Array(bytes).withUnsafeBufferPointer(digest)
        // These only fail on a null context, which cannot happen here.
        precondition(ok, "SHA-256 failed")
        return out
    }

    /// The digest of everything `read` returns (into the buffer it is
    /// given, the count read; 0 at the end, negative on an error, which is
    /// returned), and how many bytes that was: a file hashed through its
    /// open descriptor, a chunk at a time.
    package static func hash(reading read: (UnsafeMutableRawBufferPointer) -> Int) -> (digest: [UInt8], bytes: Int64)? {
        var context = SHA256_CTX()
        guard SHA256_Init(&context) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 1 << 18)
        var total: Int64 = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read($0) }
            if n < 0 { return nil }
            if n == 0 { break }
            guard buffer.withUnsafeBytes({ SHA256_Update(&context, $0.baseAddress, n) }) == 1 else { return nil }
            total += Int64(n)
        }
        var out = [UInt8](repeating: 0, count: 32)
        guard SHA256_Final(&out, &context) == 1 else { return nil }
        return (out, total)
    }

    /// `sha256:` and the hex digest: how Burrow names a digest in the audit log.
    package static func label(_ bytes: some Collection<UInt8>) -> String { "sha256:" + Hex.encode(hash(bytes)) }
}

/// HMAC-SHA256 (RFC 2104) over `SHA256`: signed requests to burrowd.
package enum HMACSHA256 {
    package static func mac(key: [UInt8], _ message: some Collection<UInt8>) -> [UInt8] {
        var block = key.count > 64 ? SHA256.hash(key) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        let inner = SHA256.hash(block.map { $0 ^ 0x36 } + Array(message))
        return SHA256.hash(block.map { $0 ^ 0x5c } + inner)
    }
}

/// Comparison of secrets (their digests) whose time does not depend on
/// where they differ: libcrypto's CRYPTO_memcmp.
package enum ConstantTime {
    package static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, x.count) == 0 } }
    }
}

/// Lower-case hexadecimal.
package enum Hex {
    package static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of `text` (either case); nil unless it is an even number of hex digits.
    package static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = value(chars[i]), let lo = value(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

/// Why a key could not be used.
package struct CryptoError: Error, Sendable, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}

/// Ed25519 signatures over PEM keys (MCP call approvals).
package enum Ed25519 {
    /// libcrypto set up without reading openssl.cnf: a signature needs no
    /// configuration, and parsing it cost most of a millisecond per process.
    private static let initialized: Bool = OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_LOAD_CONFIG), nil) == 1

    /// The 64-byte signature of `message` with a PEM private key.
    package static func sign(_ message: [UInt8], privateKeyPEM: [UInt8]) throws(CryptoError) -> [UInt8] {
        let key = try pemKey(privateKeyPEM, isPrivate: true)
        defer { EVP_PKEY_free(key) }
        guard let ctx = EVP_MD_CTX_new() else { throw CryptoError("out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = signature.count
        guard EVP_DigestSignInit(ctx, nil, nil, nil, key) == 1, EVP_DigestSign(ctx, &signature, &length, message, message.count) == 1, length == 64 else {
            throw CryptoError("signing failed")
        }
        return signature
    }

    /// Whether `signature` signs `message` under a PEM public key.
    /// - Throws: when the key is not an Ed25519 PEM public key.
    package static func verify(_ signature: [UInt8], of message: [UInt8], publicKeyPEM: [UInt8]) throws(CryptoError) -> Bool {
        let key = try pemKey(publicKeyPEM, isPrivate: false)
        defer { EVP_PKEY_free(key) }
        guard let ctx = EVP_MD_CTX_new() else { throw CryptoError("out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        return EVP_DigestVerifyInit(ctx, nil, nil, nil, key) == 1 && EVP_DigestVerify(ctx, signature, signature.count, message, message.count) == 1
    }

    private static func pemKey(_ pem: [UInt8], isPrivate: Bool) throws(CryptoError) -> OpaquePointer {
        guard initialized else { throw CryptoError("libcrypto could not be initialized") }
        let key: OpaquePointer? = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return isPrivate ? PEM_read_bio_PrivateKey(bio, nil, nil, nil) : PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        guard let key else { throw CryptoError("not a PEM \(isPrivate ? "private" : "public") key") }
        guard EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 else {
            EVP_PKEY_free(key)
            throw CryptoError("the key is not an Ed25519 key (openssl genpkey -algorithm ed25519)")
        }
        return key
    }
}
