import BurrowAudit
import CCrypto

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Why an approval cannot be made or checked.
package struct ApprovalError: Error, Sendable, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}

/// Approvals for calls an `authorize` content filter holds back.
///
/// An approval is an Ed25519 signature over one call: the server (the
/// profile's tool id), the tool name, the digest of the exact arguments and
/// an expiry. The approver (a person, or the registry's approval service)
/// holds the private key; the relay holds only the public key
/// (`[mcp] approval_key`), so neither Burrow nor the client it serves can
/// mint one. The client passes it in `params._meta["dev.burrow/approval"]`;
/// each approval is accepted once per session.
///
/// Token: `v1.<expiry, Unix seconds>.<signature, hex>`; signed text:
/// `burrow-approval/v1\n<server>\n<tool>\n<arguments digest>\n<expiry>`.
package enum Approval {
    package static let metaKey = "dev.burrow/approval"

    static func message(server: String, tool: String, argumentsDigest: String, expires: Int64) -> [UInt8] {
        Array("burrow-approval/v1\n\(server)\n\(tool)\n\(argumentsDigest)\n\(expires)".utf8)
    }

    /// Reads a PEM key file (the relay's public key, or the approver's private key).
    package static func loadKey(_ path: String?) -> Result<[UInt8], ApprovalError> {
        guard let path else { return .failure(ApprovalError("no approval key is configured ([mcp] approval_key in the host policy)")) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ApprovalError("cannot open the approval key \(path): \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 16 {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return .failure(ApprovalError("cannot read the approval key \(path): \(String(cString: strerror(errno)))")) }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return .success(bytes)
    }

    /// A token approving one call until `expires`.
    package static func sign(privateKeyPEM: [UInt8], server: String, tool: String, argumentsDigest: String, expires: Int64) throws(ApprovalError) -> String {
        let key = try pemKey(privateKeyPEM, isPrivate: true)
        defer { EVP_PKEY_free(key) }
        let text = message(server: server, tool: tool, argumentsDigest: argumentsDigest, expires: expires)
        guard let ctx = EVP_MD_CTX_new() else { throw ApprovalError("out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = signature.count
        guard EVP_DigestSignInit(ctx, nil, nil, nil, key) == 1,
            EVP_DigestSign(ctx, &signature, &length, text, text.count) == 1, length == 64
        else { throw ApprovalError("signing failed") }
        return "v1.\(expires).\(AuditChain.hex(signature))"
    }

    /// Checks `token` for this very call; returns its expiry.
    package static func verify(token: String, publicKeyPEM: [UInt8], server: String, tool: String, argumentsDigest: String, now: Int64) throws(ApprovalError) -> Int64 {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "v1", let expires = Int64(parts[1]), let signature = unhex(parts[2]), signature.count == 64 else {
            throw ApprovalError("malformed token (expected v1.<expiry>.<128 hex digits>)")
        }
        guard expires > now else { throw ApprovalError("expired \(now - expires) s ago") }
        let key = try pemKey(publicKeyPEM, isPrivate: false)
        defer { EVP_PKEY_free(key) }
        let text = message(server: server, tool: tool, argumentsDigest: argumentsDigest, expires: expires)
        guard let ctx = EVP_MD_CTX_new() else { throw ApprovalError("out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, key) == 1, EVP_DigestVerify(ctx, signature, signature.count, text, text.count) == 1 else {
            throw ApprovalError("the signature does not match this server, tool and arguments")
        }
        return expires
    }

    private static func pemKey(_ pem: [UInt8], isPrivate: Bool) throws(ApprovalError) -> OpaquePointer {
        let key: OpaquePointer? = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return isPrivate ? PEM_read_bio_PrivateKey(bio, nil, nil, nil) : PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        guard let key else { throw ApprovalError("not a PEM \(isPrivate ? "private" : "public") key") }
        guard EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 else {
            EVP_PKEY_free(key)
            throw ApprovalError("the key is not an Ed25519 key (openssl genpkey -algorithm ed25519)")
        }
        return key
    }

    static func unhex(_ text: Substring) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < chars.count {
            guard let hi = Character(Unicode.Scalar(chars[i])).hexDigitValue, let lo = Character(Unicode.Scalar(chars[i + 1])).hexDigitValue else { return nil }
            out.append(UInt8(hi << 4 | lo))
            i += 2
        }
        return out
    }
}
