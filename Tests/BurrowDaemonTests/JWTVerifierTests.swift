import BurrowAPI
import BurrowAudit
import BurrowProfile
import BurrowTestSupport
import Foundation
import JWTKit
import Testing

@testable import BurrowDaemon

#if canImport(Glibc)
    import Glibc
#endif

/// `[auth.jwt]`: the envelope burrowd checks around jwt-kit's signatures.
/// Every token here is built by hand (header and payload as written, then
/// signed), so the hostile ones are exactly what an attacker would send.
@Suite(.serialized)
final class JWTVerifierTests {
    let directory: String
    let secret = "a-shared-secret-of-more-than-32-bytes-for-hs256"
    let es256 = ES256PrivateKey()
    let ed25519: EdDSA.PrivateKey
    let now = AuditClock.now()
    var seconds: Int64 { now / 1_000_000 }

    init() throws {
        directory = try Subprocess.temporaryDirectory()
        ed25519 = try EdDSA.PrivateKey()
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    var policy: HostPolicy.Auth.JWT {
        var p = HostPolicy.Auth.JWT()
        p.issuer = "https://idp.example"
        p.audience = "burrowd"
        p.hs256Secret = directory + "/hs.secret"
        p.jwks = directory + "/jwks.json"
        return p
    }

    func write(_ text: String, _ name: String, mode: mode_t = 0o600) throws {
        try text.write(toFile: directory + "/" + name, atomically: false, encoding: .utf8)
        chmod(directory + "/" + name, mode)
    }

    /// The JWKS of the test's public keys (an extra member per key when asked).
    func jwks(extra: String = "") -> String {
        let ec = es256.publicKey.parameters!
        let ed = Self.base64URL(Array(ed25519.publicKey.rawRepresentation))
        return """
            {"keys": [
              {"kty": "EC", "crv": "P-256", "kid": "es1", "x": "\(ec.x)", "y": "\(ec.y)"\(extra)},
              {"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "alg": "EdDSA", "x": "\(ed)"}
            ]}
            """
    }

    func verifier(_ p: HostPolicy.Auth.JWT? = nil) async throws -> JWTVerifier {
        try write(secret + "\n", "hs.secret")
        try write(jwks(), "jwks.json", mode: 0o644)
        return try await JWTVerifier.load(p ?? policy)
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    enum Signer {
        case hs256, es256, ed25519, none
        case hmac(String)
    }

    /// `header.payload.signature`, the JSON as given.
    func token(_ header: String, _ payload: String, _ signer: Signer) async throws -> String {
        let input = Self.base64URL(Array(header.utf8)) + "." + Self.base64URL(Array(payload.utf8))
        let algorithm: (any JWTAlgorithm)?
        switch signer {
        case .hs256: algorithm = try await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256).getKey()
        case .hmac(let key): algorithm = try await JWTKeyCollection().add(hmac: HMACKey(from: key), digestAlgorithm: .sha256).getKey()
        case .es256: algorithm = try await JWTKeyCollection().add(ecdsa: es256).getKey()
        case .ed25519: algorithm = try await JWTKeyCollection().add(eddsa: ed25519).getKey()
        case .none: algorithm = nil
        }
        return input + "." + (try algorithm.map { Self.base64URL(try $0.sign(Array(input.utf8))) } ?? "")
    }

    /// Claims that hold now, with changes.
    func claims(_ changes: [String: String] = [:]) -> String {
        var c = ["iss": "\"https://idp.example\"", "aud": "\"burrowd\"", "sub": "\"alice\"", "exp": "\(seconds + 600)", "iat": "\(seconds)"]
        for (k, v) in changes { c[k] = v.isEmpty ? nil : v }
        return "{" + c.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
    }

    func refusal(_ v: JWTVerifier, _ token: String) -> String? {
        do {
            _ = try v.verify(token, now: now)
            return nil
        } catch {
            return error.message
        }
    }

    @Test("a token signed with the HS256 secret, an ES256 key or an Ed25519 key names jwt:<sub>; within max_skew of exp it still holds")
    func accepted() async throws {
        let v = try await verifier()
        #expect(try v.verify(try await token(#"{"alg":"HS256","typ":"JWT"}"#, claims(), .hs256), now: now) == "jwt:alice")
        #expect(try v.verify(try await token(#"{"alg":"ES256","kid":"es1"}"#, claims(["aud": #"["other","burrowd"]"#]), .es256), now: now) == "jwt:alice")
        #expect(try v.verify(try await token(#"{"alg":"EdDSA","kid":"ed1"}"#, claims(["sub": "\"bob@example\""]), .ed25519), now: now) == "jwt:bob@example")
        // Without a kid: the only key of the header's algorithm.
        #expect(try v.verify(try await token(#"{"alg":"ES256"}"#, claims(), .es256), now: now) == "jwt:alice")
        #expect(try v.verify(try await token(#"{"alg":"HS256"}"#, claims(["exp": "\(seconds - 30)"]), .hs256), now: now) == "jwt:alice")
    }

    @Test("alg none, an unknown alg, HS256 signed with the ES256 public key (confusion), an unknown kid, a header naming its own key or crit: refused")
    func hostileHeaders() async throws {
        let v = try await verifier()
        #expect(refusal(v, try await token(#"{"alg":"none"}"#, claims(), .none))?.contains("compact form") == true)
        #expect(refusal(v, try await token(#"{"alg":"none"}"#, claims(), .hs256))?.contains("'none'") == true)
        #expect(refusal(v, try await token(#"{"alg":"RS256"}"#, claims(), .hs256))?.contains("only HS256, ES256 and EdDSA") == true)
        #expect(refusal(v, try await token(#"{"typ":"JWT"}"#, claims(), .hs256))?.contains("without alg") == true)
        // The classic confusion: HS256 with the public key as the HMAC secret, naming the ES256 key.
        let publicPEM = es256.publicKey.pemRepresentation
        #expect(refusal(v, try await token(#"{"alg":"HS256","kid":"es1"}"#, claims(), .hmac(publicPEM)))?.contains("algorithm confusion") == true)
        #expect(refusal(v, try await token(#"{"alg":"HS256"}"#, claims(), .hmac(publicPEM)))?.contains("does not verify") == true)
        #expect(refusal(v, try await token(#"{"alg":"ES256","kid":"ed1"}"#, claims(), .es256))?.contains("algorithm confusion") == true)
        // An unknown kid is refused, never checked against a default key.
        #expect(refusal(v, try await token(#"{"alg":"HS256","kid":"nope"}"#, claims(), .hs256))?.contains("no configured key") == true)
        for member in [#""crit":["exp"]"#, #""jwk":{"kty":"oct","k":"AAAA"}"#, #""jku":"https://evil.example/jwks""#, #""x5u":"https://evil.example""#, #""b64":false"#] {
            #expect(refusal(v, try await token(#"{"alg":"HS256","# + member + "}", claims(), .hs256))?.contains("only alg, typ and kid") == true, "\(member)")
        }
        #expect(refusal(v, try await token(#"{"alg":"HS256","typ":"at+jwt"}"#, claims(), .hs256))?.contains("typ") == true)
        #expect(refusal(v, try await token(#"{"alg":"HS256","alg":"none"}"#, claims(), .hs256))?.contains("JSON object") == true, "duplicate keys")
        #expect(refusal(v, "a.b") != nil && refusal(v, "a.b.c.d") != nil && refusal(v, "a b.c.d") != nil && refusal(v, String(repeating: "a", count: 9000)) != nil)
    }

    @Test("signature and claims: a changed payload, another key, another issuer or audience, expired, not yet valid, issued in the future, no exp, too long a life, no or a bad sub: refused")
    func hostileClaims() async throws {
        let v = try await verifier()
        let good = try await token(#"{"alg":"ES256","kid":"es1"}"#, claims(), .es256)
        let parts = good.split(separator: ".")
        let changed = parts[0] + "." + Self.base64URL(Array(claims(["sub": "\"root\""]).utf8)) + "." + parts[2]
        #expect(refusal(v, String(changed))?.contains("does not verify") == true)
        #expect(refusal(v, try await token(#"{"alg":"HS256"}"#, claims(), .hmac(secret + "x")))?.contains("does not verify") == true)
        let cases: [([String: String], String)] = [
            (["iss": "\"https://evil.example\""], "issuer"), (["iss": ""], "issuer"), (["aud": "\"other\""], "audience"), (["aud": "[\"a\",\"b\"]"], "audience"),
            (["aud": ""], "audience"), (["exp": "\(seconds - 61)"], "expired"), (["exp": ""], "without exp"), (["exp": "\"tomorrow\""], "not a number"),
            (["exp": "\(seconds + 2 * 86400)"], "max_lifetime"), (["nbf": "\(seconds + 120)"], "not valid yet"), (["iat": "\(seconds + 120)"], "future"),
            (["sub": ""], "sub"), (["sub": "\"\""], "sub"), (["sub": "\"a\\u0000b\""], "sub"), (["sub": "42"], "sub"),
            (["exp": "-1e19"], "expired"), (["nbf": "1e19"], "not valid yet"), (["exp": "1e400"], "not a time"),
        ]
        for (change, expected) in cases {
            let refused = refusal(v, try await token(#"{"alg":"HS256"}"#, claims(change), .hs256))
            #expect(refused?.contains(expected) == true, "\(change): \(refused ?? "accepted")")
        }
        #expect(refusal(v, try await token(#"{"alg":"HS256"}"#, claims(["nbf": "\(seconds + 30)"]), .hs256)) == nil, "within max_skew")
    }

    @Test("the keys: a secret shorter than 32 bytes, readable by others, a JWKS with a private key, an RSA key, two keys with one kid or an alg that disagrees: burrowd does not start")
    func keyFiles() async throws {
        _ = try await verifier()
        func loadFails(_ expected: String) async -> Bool {
            do {
                _ = try await JWTVerifier.load(policy)
                return false
            } catch {
                return error.description.contains(expected)
            }
        }
        try write("short\n", "hs.secret")
        #expect(await loadFails("at least 32"))
        try write(secret, "hs.secret", mode: 0o640)
        #expect(await loadFails("chmod 600"))
        try write(secret, "hs.secret")
        let ec = es256.publicKey.parameters!
        for (document, expected) in [
            (jwks(extra: #", "d": "AAAA""#), "public keys only"), (jwks(extra: #", "alg": "ES384""#), "does not match"),
            (jwks(extra: #", "use": "enc""#), "not \"sig\""),
            (#"{"keys": [{"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}]}"#, "only EC P-256"),
            (#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "\#(ec.x)", "y": "\#(ec.y)"}]}"#, "no kid"),
            (
                #"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "a", "x": "\#(ec.x)", "y": "\#(ec.y)"}, {"kty": "EC", "crv": "P-256", "kid": "a", "x": "\#(ec.x)", "y": "\#(ec.y)"}]}"#,
                "names two keys"
            ),
            (#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "a", "x": "AAAA", "y": "AAAA"}]}"#, "not a usable"),
            (#"{"keys": []}"#, "no keys"), ("[]", "expected a JWKS"),
        ] {
            try write(document, "jwks.json", mode: 0o644)
            #expect(await loadFails(expected), "\(expected)")
        }
    }

    @Test("the policy: jwt needs an issuer, an audience and a key; max_skew at most 5m; jwt:<sub> is a principal roles can name")
    func policyTable() throws {
        func decode(_ text: String) -> HostPolicy? {
            try? HostPolicy.decode(try ConfigValue.parse(text, format: .toml, file: "p.toml"), file: "p.toml")
        }
        let base = "[auth]\nmethods = [\"jwt\"]\n[auth.jwt]\nissuer = \"https://idp\"\naudience = \"burrowd\"\njwks = \"/etc/burrow/jwks.json\"\n"
        let p = try #require(decode(base + "max_skew = \"30s\"\n[daemon]\ninvokers = [\"jwt:alice\"]\n"))
        #expect(p.auth.methods == [.jwt] && p.auth.jwt.maxSkew.milliseconds == 30_000 && p.daemon.invokers == [.jwt("alice")])
        #expect(decode(base.replacingOccurrences(of: "issuer = \"https://idp\"\n", with: "")) == nil)
        #expect(decode(base.replacingOccurrences(of: "audience = \"burrowd\"\n", with: "")) == nil)
        #expect(decode(base.replacingOccurrences(of: "jwks = \"/etc/burrow/jwks.json\"\n", with: "")) == nil)
        #expect(decode(base + "max_skew = \"10m\"\n") == nil)
        #expect(decode(base + "hs256_kid = \"k\"\n") == nil, "a kid for a secret that is not set")
        #expect(decode(base.replacingOccurrences(of: "/etc/burrow/jwks.json", with: "jwks.json")) == nil)
    }
}
