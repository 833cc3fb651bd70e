import BurrowAPI
import BurrowAudit
import BurrowCrypto
import BurrowProfile
import Synchronization

/// Signed requests (`[auth.signing]`, the MCP security ADR's replay
/// protection). A caller holding an API key sends, instead of the key:
///
///     Burrow-Key: <id>
///     Burrow-Timestamp: <Unix seconds>
///     Burrow-Nonce: <16 to 64 base64url characters, never reused>
///     Burrow-Signature: hex(HMAC-SHA256(signing key, text))
///
/// where the signing key is HMAC-SHA256(secret, "burrow-request-signing-v1")
/// and the text is the method, the request target (path and query, as
/// sent), the timestamp, the nonce and hex(SHA-256(body)), each followed by
/// a newline. burrowd refuses a timestamp further than `max_skew` from its
/// clock, a nonce it has seen within twice that, and a signature that does
/// not match; the secret itself never travels.
final class RequestSigning: Sendable {
    enum Header {
        static let key = "Burrow-Key"
        static let timestamp = "Burrow-Timestamp"
        static let nonce = "Burrow-Nonce"
        static let signature = "Burrow-Signature"
    }

    /// A refused signed request: what the audit row says, and the status.
    enum Refusal: Error, Equatable {
        case malformed(String)
        case skewed(seconds: Int64)
        case key(APIKeys.Refusal)
        case badSignature(String)
        case replayed(String)
        /// The nonce memory is full of live nonces: refusing is the only
        /// answer that cannot let a replay through.
        case busy

        var message: String {
            switch self {
            case .malformed(let what): "a signed request with \(what)"
            case .skewed(let s): "a signed request whose timestamp is \(s) s from burrowd's clock ([auth.signing] max_skew)"
            case .key(let refusal): refusal.message
            case .badSignature(let id): "API key \(id): the request signature does not match (a changed body, path or header, or another key)"
            case .replayed(let id): "API key \(id): a nonce used before (a replayed request)"
            case .busy: "every remembered nonce is still live ([auth.signing] max_nonces)"
            }
        }
    }

    let policy: HostPolicy.Auth.Signing
    let keys: APIKeys
    private let nonces: NonceCache

    init(_ policy: HostPolicy.Auth.Signing, keys: APIKeys) {
        self.policy = policy
        self.keys = keys
        nonces = NonceCache(capacity: policy.maxNonces, lifetime: Int64(policy.maxSkew.milliseconds) * 2000)
    }

    /// The bytes signed.
    static func text(method: String, target: String, timestamp: String, nonce: String, body: [UInt8]) -> [UInt8] {
        Array("\(method)\n\(target)\n\(timestamp)\n\(nonce)\n\(Hex.encode(SHA256.hash(body)))\n".utf8)
    }

    /// The key that signed this request, if the signature holds, the time is
    /// near, the key current and the nonce new (then remembered).
    func verify(
        key id: String, timestamp: String, nonce: String, signature: String, method: String, target: String, body: [UInt8], now: Int64 = AuditClock.now()
    ) throws(Refusal) -> RegistryStore.StoredKey {
        guard APIKeyToken.isID(id) else { throw .malformed("a \(Header.key) that is not a key id") }
        guard let seconds = Int64(timestamp), timestamp.utf8.count <= 12, timestamp.utf8.allSatisfy({ (48...57).contains($0) }) else {
            throw .malformed("a \(Header.timestamp) that is not Unix seconds")
        }
        guard (16...64).contains(nonce.utf8.count), nonce.utf8.allSatisfy(Base64URL.isAlphabet) else {
            throw .malformed("a \(Header.nonce) that is not 16 to 64 base64url characters")
        }
        guard let mac = Hex.decode(signature), mac.count == 32 else { throw .malformed("a \(Header.signature) that is not 64 hex digits") }
        let skew = now / 1_000_000 - seconds
        guard abs(skew) * 1000 <= Int64(policy.maxSkew.milliseconds) else { throw .skewed(seconds: skew) }
        let key: RegistryStore.StoredKey
        do {
            guard let found = try keys.store.key(id) else { throw APIKeys.Refusal.unknown(id) }
            key = found
        } catch let refusal as APIKeys.Refusal {
            throw .key(refusal)
        } catch {
            throw .malformed("a key that cannot be looked up now (\(error))")
        }
        guard !key.signingKey.isEmpty else { throw .malformed("API key \(id), made before request signing existed: make a new key to sign with") }
        let expected = HMACSHA256.mac(key: key.signingKey, Self.text(method: method, target: target, timestamp: timestamp, nonce: nonce, body: body))
        guard ConstantTime.equal(expected, mac) else { throw .badSignature(id) }
        do {
            try APIKeys.current(key, now: now)
        } catch {
            throw .key(error)
        }
        // Remembered only once the signature holds: no one without a key can fill the memory.
        switch nonces.insert(id + ":" + nonce, now: now) {
        case .fresh: return key
        case .replayed: throw .replayed(id)
        case .full: throw .busy
        }
    }

}

/// Nonces seen within their lifetime, at most `capacity` at once. When
/// full, a new nonce is refused (`.full`) until the oldest expire: forgetting
/// a live one would let its request be replayed.
final class NonceCache: Sendable {
    enum Outcome: Equatable { case fresh, replayed, full }

    private struct State {
        var expiry: [String: Int64] = [:]
        /// In insertion order (so in expiry order: one lifetime for all).
        var queue: [(String, Int64)] = []
        var head = 0
    }

    let capacity: Int
    /// Microseconds a nonce is remembered.
    let lifetime: Int64
    private let state = Mutex(State())

    init(capacity: Int, lifetime: Int64) {
        self.capacity = capacity
        self.lifetime = lifetime
    }

    func insert(_ nonce: String, now: Int64) -> Outcome {
        state.withLock { s in
            while s.head < s.queue.count, s.queue[s.head].1 <= now {
                let (old, expires) = s.queue[s.head]
                if s.expiry[old] == expires { s.expiry[old] = nil }
                s.head += 1
            }
            if s.head > 1024 && s.head * 2 > s.queue.count {
                s.queue.removeFirst(s.head)
                s.head = 0
            }
            if let expires = s.expiry[nonce], expires > now { return .replayed }
            guard s.expiry.count < capacity else { return .full }
            s.expiry[nonce] = now + lifetime
            s.queue.append((nonce, now + lifetime))
            return .fresh
        }
    }

    var count: Int { state.withLock { $0.expiry.count } }
}
