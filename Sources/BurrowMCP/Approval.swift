import BurrowCrypto

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
        let text = message(server: server, tool: tool, argumentsDigest: argumentsDigest, expires: expires)
        do {
            return "v1.\(expires).\(Hex.encode(try Ed25519.sign(text, privateKeyPEM: privateKeyPEM)))"
        } catch {
            throw ApprovalError(error.description)
        }
    }

    /// Checks `token` for this very call; returns its expiry.
    package static func verify(token: String, publicKeyPEM: [UInt8], server: String, tool: String, argumentsDigest: String, now: Int64) throws(ApprovalError) -> Int64 {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "v1", let expires = Int64(parts[1]), let signature = Hex.decode(parts[2]), signature.count == 64 else {
            throw ApprovalError("malformed token (expected v1.<expiry>.<128 hex digits>)")
        }
        guard expires > now else { throw ApprovalError("expired \(now - expires) s ago") }
        let text = message(server: server, tool: tool, argumentsDigest: argumentsDigest, expires: expires)
        let valid: Bool
        do {
            valid = try Ed25519.verify(signature, of: text, publicKeyPEM: publicKeyPEM)
        } catch {
            throw ApprovalError(error.description)
        }
        guard valid else { throw ApprovalError("the signature does not match this server, tool and arguments") }
        return expires
    }
}
