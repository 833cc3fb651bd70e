import BurrowJSON
import BurrowProfile
import FoundationEssentials

/// A JSON Web Token as `Authorization: Bearer <JWT>` carries it (JWS compact
/// form), read strictly before any key is touched: three unpadded base64url
/// parts; a header holding `alg` and optionally `typ` (`"JWT"`) and `kid`,
/// nothing else (`crit`, `jwk`, `jku`, `x5u`, `x5c`, `b64`… are refused, so
/// no key and no processing rule comes from the token), duplicate members
/// refused. The payload is read only by `claims`, after the signature held.
package struct JWTToken: Sendable, Equatable {
    /// A refused token: what the audit row says.
    package struct Refusal: Error, Equatable {
        package var message: String
        package init(_ message: String) { self.message = message }
    }

    /// The algorithms burrowd accepts, by their `alg` name.
    package static let algorithms: Set = ["HS256", "ES256", "EdDSA"]
    /// The largest token read.
    package static let maxBytes = 8192

    package var alg: String
    package var kid: String?
    /// The header and payload parts as sent, and the dot between: what is signed.
    package var signingInput: [UInt8]
    package var signature: [UInt8]
    /// The payload's JSON bytes, not yet parsed.
    package var payload: [UInt8]

    package init(_ token: String) throws(Refusal) {
        guard token.utf8.count <= Self.maxBytes else { throw Refusal("a JWT over \(Self.maxBytes) bytes") }
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(Base64URL.isAlphabet) }) else {
            throw Refusal("a token that is not a JWS in compact form (three base64url parts)")
        }
        let header = try Self.object(parts[0], "header")
        if let extra = header.keys.filter({ !["alg", "typ", "kid"].contains($0) }).sorted().first {
            throw Refusal("a JWT header naming '\(extra.prefix(64))': only alg, typ and kid are accepted")
        }
        guard case .string(let alg)? = header["alg"] else { throw Refusal("a JWT header without alg") }
        guard Self.algorithms.contains(alg) else { throw Refusal("a JWT with alg '\(alg.prefix(16))': only HS256, ES256 and EdDSA are accepted") }
        if let typ = header["typ"], typ != .string("JWT") { throw Refusal("a JWT header with typ other than \"JWT\"") }
        switch header["kid"] {
        case nil: kid = nil
        case .string(let k)?: kid = k
        default: throw Refusal("a JWT header whose kid is not a string")
        }
        guard let signature = Base64URL.decode(parts[2]), let payload = Base64URL.decode(parts[1]) else { throw Refusal("a JWT whose parts are not base64url") }
        self.alg = alg
        self.signature = signature
        self.payload = payload
        signingInput = Array(token.utf8.prefix(parts[0].count + 1 + parts[1].count))
    }

    /// What a token must say, and how far its times may be off.
    package struct Expectation: Sendable {
        package var issuer: String
        package var audience: String
        /// Seconds `exp`, `nbf` and `iat` may be off the clock.
        package var skew: Double
        /// Seconds `exp` may be ahead of the clock, at most.
        package var maxLifetime: Double

        package init(issuer: String, audience: String, skew: Double, maxLifetime: Double) {
            (self.issuer, self.audience, self.skew, self.maxLifetime) = (issuer, audience, skew, maxLifetime)
        }
    }

    /// The payload's `sub`, when its claims hold at `now` (Unix seconds):
    /// `iss` and `aud` as expected, `sub` a principal name, `exp` present,
    /// not past and at most `maxLifetime` away, `nbf` and `iat` not in the
    /// future, each within `skew`. Call it only once the signature held.
    package func subject(_ expected: Expectation, now: Double) throws(Refusal) -> String {
        guard case .object(let claims)? = try? JSONParser.parse(payload, limits: Self.limits) else { throw Refusal("a JWT whose payload is not a JSON object") }
        guard case .string(let iss)? = claims["iss"], iss == expected.issuer else { throw Refusal("a JWT from another issuer (iss)") }
        let audiences: [JSON] =
            switch claims["aud"] {
            case .string(let one)?: [.string(one)]
            case .array(let many)?: many
            default: []
            }
        guard audiences.contains(.string(expected.audience)) else { throw Refusal("a JWT for another audience (aud)") }
        guard case .string(let sub)? = claims["sub"], HostPolicy.Daemon.Principal.isRemoteName(sub) else {
            throw Refusal("a JWT without a sub burrowd can name (1 to 255 bytes, no control characters)")
        }
        func time(_ claim: String) throws(Refusal) -> Double? {
            switch claims[claim] {
            case nil: return nil
            case .number(let text)?:
                guard let value = Double(text), value.isFinite else { throw Refusal("a JWT whose \(claim) is not a time") }
                return value
            default: throw Refusal("a JWT whose \(claim) is not a number")
            }
        }
        guard let exp = try time("exp") else { throw Refusal("a JWT without exp: a token must expire") }
        guard exp + expected.skew > now else { throw Refusal("an expired JWT (exp \(Self.seconds(exp)), \(Self.seconds(now - exp)) s ago)") }
        guard exp - now <= expected.maxLifetime + expected.skew else { throw Refusal("a JWT expiring further away than [auth.jwt] max_lifetime") }
        if let nbf = try time("nbf"), nbf - expected.skew > now { throw Refusal("a JWT not valid yet (nbf in \(Self.seconds(nbf - now)) s)") }
        if let iat = try time("iat"), iat - expected.skew > now { throw Refusal("a JWT issued in the future (iat)") }
        return sub
    }

    static let limits = JSONLimits(maxDepth: 8, maxItems: 256, maxBytes: maxBytes)

    /// A time for a message: whole seconds, whatever the claim held (a
    /// signed token may carry any number).
    static func seconds(_ value: Double) -> String {
        abs(value) < 1e15 ? String(Int64(value)) : value < 0 ? "-∞" : "∞"
    }

    private static func object(_ part: Substring.UTF8View.SubSequence, _ name: String) throws(Refusal) -> [String: JSON] {
        guard let bytes = Base64URL.decode(part), case .object(let fields)? = try? JSONParser.parse(bytes, limits: limits) else {
            throw Refusal("a JWT whose \(name) is not a base64url JSON object")
        }
        return fields
    }

}

/// Unpadded base64url (RFC 4648 §5), as API keys, nonces and JWTs write it.
package enum Base64URL {
    /// Whether `c` is of its alphabet (A-Z, a-z, 0-9, '-', '_').
    package static func isAlphabet(_ c: UInt8) -> Bool { (65...90).contains(c) || (97...122).contains(c) || (48...57).contains(c) || c == 45 || c == 95 }

    /// `bytes` as unpadded base64url.
    package static func encode(_ bytes: [UInt8]) -> String {
        String(Data(bytes).base64EncodedString().compactMap { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 == "=" ? nil : $0 })
    }

    /// The bytes `text` encodes, nil unless it is unpadded base64url.
    package static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        guard text.count % 4 != 1, text.allSatisfy(isAlphabet) else { return nil }
        var b64 = text.map { $0 == UInt8(ascii: "-") ? UInt8(ascii: "+") : $0 == UInt8(ascii: "_") ? UInt8(ascii: "/") : $0 }
        b64 += Array(repeating: UInt8(ascii: "="), count: (4 - b64.count % 4) % 4)
        return Data(base64Encoded: Data(b64)).map(Array.init)
    }
}
