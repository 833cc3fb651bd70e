import BurrowAPI
import BurrowAudit
import BurrowJSON
import BurrowProfile
import BurrowSystem
import FoundationEssentials
import JWTKit
import Synchronization

/// JSON Web Tokens on the HTTPS listener (`[auth.jwt]`): `Authorization:
/// Bearer <JWT>` names its caller `jwt:<sub>`.
///
/// jwt-kit reads the keys and checks signatures; the envelope around them
/// (`JWTToken`) is checked here, stricter than jwt-kit's own `verify`
/// (which falls back to its default key for an unknown `kid`, and does not
/// bind a key to one algorithm):
/// - the header as `JWTToken` reads it; `alg` HS256, ES256 or EdDSA;
/// - the key is the one whose `kid` the header names (an unknown `kid` is
///   refused), or, without a `kid`, the only key of the header's algorithm;
///   and its algorithm must be the header's
///   (an ES256 public key is never an HS256 secret);
/// - then, and only then, the payload: `iss` and `aud` as configured, `sub`
///   a principal name, `exp` required and at most `max_lifetime` away,
///   `nbf` and `iat` not in the future, each within `max_skew`.
final class JWTVerifier: Sendable {
    /// A key tokens may be signed with: its algorithm (jwt-kit's), and the
    /// `kid` it answers to (nil: none; it serves tokens naming no kid).
    struct Key: Sendable {
        var id: String?
        var algorithm: any JWTAlgorithm
    }

    let policy: HostPolicy.Auth.JWT
    let keys: [Key]

    init(_ policy: HostPolicy.Auth.JWT, keys: [Key]) {
        self.policy = policy
        self.keys = keys
    }

    /// The keys of the policy: the HS256 secret (burrowd's own file, mode
    /// 0600, at least 32 bytes) and the JWKS file's public keys.
    static func load(_ policy: HostPolicy.Auth.JWT) async throws(HTTPSListener.Failure) -> JWTVerifier {
        var keys: [Key] = []
        if let path = policy.hs256Secret {
            var secret = try HTTPSListener.read(path, secret: true)
            if secret.last == UInt8(ascii: "\n") { secret.removeLast() }
            guard secret.count >= 32 else {
                throw HTTPSListener.Failure(description: "\(path): an HS256 secret of \(secret.count) bytes; at least 32 (head -c 48 /dev/urandom | base64 > \(path))")
            }
            do {
                keys.append(Key(id: policy.hs256KeyID, algorithm: try await algorithm(of: JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256), alg: "HS256")))
            } catch {
                throw HTTPSListener.Failure(description: "\(path): not a usable HS256 secret (\(error))")
            }
        }
        if let path = policy.jwks {
            for (id, alg, jwk) in try publicKeys(try HTTPSListener.read(path, secret: false), path: path) {
                guard !keys.contains(where: { $0.id == id }) else { throw HTTPSListener.Failure(description: "\(path): kid '\(id)' names two keys") }
                do {
                    let collection = try await JWTKeyCollection().add(jwk: jwk)
                    keys.append(Key(id: id, algorithm: try await algorithm(of: collection, alg: alg, kid: JWKIdentifier(string: id))))
                } catch {
                    throw HTTPSListener.Failure(description: "\(path): key '\(id)' is not a usable \(alg) public key (\(error))")
                }
            }
        }
        return JWTVerifier(policy, keys: keys)
    }

    /// The one key of `collection`, checked to be for `alg`.
    private static func algorithm(of collection: JWTKeyCollection, alg: String, kid: JWKIdentifier? = nil) async throws -> any JWTAlgorithm {
        let algorithm = try await collection.getKey(for: kid, alg: alg)
        guard algorithm.name == alg else { throw HTTPSListener.Failure(description: "jwt-kit reads it as \(algorithm.name)") }
        return algorithm
    }

    /// A JWKS file's keys with the algorithm each is for: every key has a
    /// `kid`, is public (no `d`), and is EC P-256 (ES256) or OKP Ed25519
    /// (EdDSA); an `alg` it names must agree. Anything else refuses the file.
    static func publicKeys(_ bytes: [UInt8], path: String) throws(HTTPSListener.Failure) -> [(String, String, JWK)] {
        func fail(_ why: String) -> HTTPSListener.Failure { HTTPSListener.Failure(description: "\(path): \(why)") }
        let document: JSON
        do { document = try JSONParser.parse(bytes) } catch { throw fail("not JSON: \(error)") }
        guard case .object(let top) = document, case .array(let entries)? = top["keys"] else { throw fail("expected a JWKS: {\"keys\": [ … ]}") }
        guard !entries.isEmpty else { throw fail("no keys in it") }
        let decoded: JWKS
        do { decoded = try JSONDecoder().decode(JWKS.self, from: Data(bytes)) } catch { throw fail("not a JWKS jwt-kit reads: \(error)") }
        guard decoded.keys.count == entries.count else { throw fail("not a JWKS jwt-kit reads") }
        var out: [(String, String, JWK)] = []
        for (n, (entry, jwk)) in zip(entries, decoded.keys).enumerated() {
            guard case .object(let k) = entry, case .string(let kid)? = k["kid"], HostPolicy.Daemon.Principal.isRemoteName(kid) else { throw fail("key \(n + 1): no kid") }
            guard k["d"] == nil, k["p"] == nil, k["k"] == nil else { throw fail("key '\(kid)' holds private or secret material: a JWKS file lists public keys only") }
            let alg: String
            switch (k["kty"], k["crv"]) {
            case (.string("EC")?, .string("P-256")?): alg = "ES256"
            case (.string("OKP")?, .string("Ed25519")?): alg = "EdDSA"
            default: throw fail("key '\(kid)': only EC P-256 (ES256) and OKP Ed25519 (EdDSA) keys are accepted")
            }
            if let named = k["alg"], named != .string(alg) { throw fail("key '\(kid)': alg \(named) does not match its \(alg) key") }
            if let use = k["use"], use != .string("sig") { throw fail("key '\(kid)': use \(use), not \"sig\"") }
            out.append((kid, alg, jwk))
        }
        return out
    }

    /// The principal (`jwt:<sub>`) a token names, when it holds.
    func verify(_ text: String, now: Int64 = AuditClock.now()) throws(JWTToken.Refusal) -> String {
        let token = try JWTToken(text)
        let key: Key
        if let kid = token.kid {
            guard let found = keys.first(where: { $0.id == kid }) else { throw JWTToken.Refusal("a JWT naming kid '\(kid.prefix(64))', which is no configured key") }
            key = found
        } else {
            let candidates = keys.filter { $0.algorithm.name == token.alg }
            guard candidates.count == 1 else { throw JWTToken.Refusal("a \(token.alg) JWT without a kid, and \(candidates.count) \(token.alg) keys to choose from") }
            key = candidates[0]
        }
        guard key.algorithm.name == token.alg else { throw JWTToken.Refusal("a JWT with alg \(token.alg) naming a \(key.algorithm.name) key (algorithm confusion)") }
        let valid = (try? key.algorithm.verify(token.signature, signs: token.signingInput)) ?? false
        guard valid else { throw JWTToken.Refusal("a JWT whose \(token.alg) signature does not verify") }
        let expected = JWTToken.Expectation(
            issuer: policy.issuer ?? "", audience: policy.audience ?? "", skew: Double(policy.maxSkew.milliseconds) / 1000,
            maxLifetime: Double(policy.maxLifetime.milliseconds) / 1000)
        return HostPolicy.Daemon.Principal.jwt(try token.subject(expected, now: Double(now) / 1_000_000)).description
    }
}

/// The verifier new requests use: set when burrowd starts serving, and
/// replaced on SIGHUP (a JWKS rotated on disk is read again; a broken one
/// keeps the previous keys serving).
final class JWTKeys: Sendable {
    private let state = Mutex<JWTVerifier?>(nil)

    var current: JWTVerifier? { state.withLock { $0 } }

    func replace(_ verifier: JWTVerifier) { state.withLock { $0 = verifier } }
}
