import BurrowAPI
import BurrowAudit
import BurrowEgress
import BurrowJSON
import BurrowMCP
import BurrowManifest
import BurrowProfile
import BurrowSession
import FoundationEssentials

/// Burrow's parsers of hostile input, each a function of bytes that must
/// return (never crash, hang or grow without bound) and keep its invariants.
/// libFuzzer drives them in the fuzz build (`Scripts/fuzz.sh`); the normal
/// build replays the seed corpus and every crash found through them
/// (`burrow-fuzz replay`, run by the tests).
enum FuzzTargets {
    static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "profile-toml": { profile($0, format: .toml) },
        "profile-json": { profile($0, format: .json) },
        "api-request": apiRequest,
        "mcp-message": mcpMessage,
        "json-schema": jsonSchema,
        "egress-request": egressRequest,
        "session-frames": sessionFrames,
        "tool-manifest": toolManifest,
    ]

    /// A tool manifest, read strictly (what parses survives its own
    /// encoding), and the same bytes as a signature file over a fixed
    /// manifest, against a fixed CA and CRL (valid until 2126): the PEM
    /// block, its base64, the chain after it, X509_verify_cert, Ed25519 and
    /// the trust levels. The seed `signature.sig` verifies.
    static func toolManifest(_ bytes: [UInt8]) {
        if let manifest = try? ToolManifest.parse(bytes) {
            let encoded = (try? JSONEncoder().encode(manifest)).map { Array($0) } ?? []
            require((try? ToolManifest.parse(encoded)) == manifest, "a manifest did not survive its own encoding")
        }
        let store = TrustStore(anchorsPEM: Array(fuzzCA.utf8), crlPEM: Array(fuzzCRL.utf8))
        guard let (manifest, verified) = try? ManifestSignature.verify(manifest: Array(fuzzManifest.utf8), signatureFile: bytes, store: store, now: 1_800_000_000) else { return }
        let levels = ManifestSignature.levels
        let (level, granted, claimed) = (levels.firstIndex(of: verified.trustLevel), levels.firstIndex(of: verified.granted), levels.firstIndex(of: manifest.trustLevel))
        require(level != nil && granted != nil && claimed != nil, "a level outside the four")
        require((level ?? 9) <= (granted ?? -1) && (level ?? 9) <= (claimed ?? -1), "a trust level above the grant or the claim")
        require(verified.signer == "/CN=fuzz signer", "another signer verified: \(verified.signer)")
    }

    static let fuzzManifest =
        #"{"burrow_manifest":1,"command":["/t"],"expires":"2100-01-01T00:00:00Z","files":[],"issued":"2026-01-01T00:00:00Z","links":[],"profile":"sha256:0000000000000000000000000000000000000000000000000000000000000000","roots":[],"tool":{"id":"t","version":"1"},"trust_level":"verified"}"#
    static let fuzzCA = """
        -----BEGIN CERTIFICATE-----
        MIIBXDCCAQ6gAwIBAgIUJCV1RJuB9wKjHNlDRakFXlhtw/YwBQYDK2VwMBkxFzAV
        BgNVBAMMDkJ1cnJvdyBmdXp6IENBMCAXDTI2MTIwNzE2MzA0OFoYDzIxMjYxMTEz
        MTYzMDQ4WjAZMRcwFQYDVQQDDA5CdXJyb3cgZnV6eiBDQTAqMAUGAytlcAMhAGPd
        E8DarUALcUJuzZfmqlcPczBPuSjWnDj9svO8iEh+o2YwZDAPBgNVHRMBAf8EBTAD
        AQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQU5pDXWtwBx2gAHB0aykzS1pZN
        hw0wIgYUaYKOs+q0za7ChfmI+PHpitGJwwQECgwIdmVyaWZpZWQwBQYDK2VwA0EA
        oz0NOo5QB0kU22d/aacdFziKFkKpT7VFDRJyPBfGzLLfsayJcEzqy5YhuV1rzNV6
        8iiKLBjf00JmFEewHbuuBA==
        -----END CERTIFICATE-----
        """
    static let fuzzCRL = """
        -----BEGIN X509 CRL-----
        MIGhMFUCAQEwBQYDK2VwMBkxFzAVBgNVBAMMDkJ1cnJvdyBmdXp6IENBFw0yNjEy
        MDcxNjMwNDhaGA8yMTI2MTExMzE2MzA0OFqgDjAMMAoGA1UdFAQDAgEBMAUGAytl
        cANBAOoOCPCAU6RwsOZk/3Kh46R/co5k59JOSp9pZoEMAIHRbnJ2gmenratCKt1Y
        25zQJX/bZPLHKo0H3W8m9kWusgA=
        -----END X509 CRL-----
        """

    /// A broken invariant: a crash libFuzzer reports with the input.
    static func require(_ condition: Bool, _ what: @autoclosure () -> String) {
        if !condition { fatalError("invariant broken: \(what())") }
    }

    /// The profile reader, TOML or JSON: bounds, parse, extends (from memory), decode, validate.
    static func profile(_ bytes: [UInt8], format: ConfigFormat) {
        let text = String(decoding: bytes, as: UTF8.self)
        let base = "[tool]\nid = \"base\"\nname = \"b\"\nversion = \"1\"\n[permissions]\nexecute = [\"python3\"]\n"
        let loader = ProfileLoader(policy: .defaults, searchPath: ["/p"], read: { $0 == "/p/base.toml" ? base : nil })
        let loaded = loader.load(document: text, format: format, name: "fuzz.\(format.rawValue)")
        require(loaded.profile == nil || loaded.errors.isEmpty, "a profile came back with errors")
        for issue in loaded.issues { require(!issue.message.isEmpty, "an issue without a message") }
    }

    /// What burrowd decodes from API bodies, strictly (and an API key token or a JWT);
    /// a decoded registration survives a round trip.
    static func apiRequest(_ bytes: [UInt8]) {
        let decoder = StrictJSONDecoder()
        if let registration = try? decoder.decode(ToolRegistration.self, from: bytes) {
            _ = ExecStrings.problem(argv: registration.command, what: "command")
            let encoded = (try? JSONEncoder().encode(registration)).map { Array($0) } ?? []
            let again = try? decoder.decode(ToolRegistration.self, from: encoded)
            require(again == registration, "a registration did not survive its own encoding")
        }
        if let invocation = try? decoder.decode(InvocationRequest.self, from: bytes) {
            _ = ExecStrings.problem(argv: invocation.arguments, what: "arguments", environment: invocation.environment.map { ($0.key, $0.value) })
        }
        // The specification's form: what converts is a registration whose profile renders back without a crash.
        if let json = try? JSONParser.parse(bytes), SpecificationForm.matches(json), let registration = try? SpecificationForm.registration(json) {
            _ = SpecificationForm.security(registration.profile)
        }
        _ = try? decoder.decode(ValidationRequest.self, from: bytes)
        _ = try? decoder.decode(APIKeyRequest.self, from: bytes)
        // The same bytes as an Authorization header's API key: what parses is exactly that shape.
        if let token = APIKeyToken(String(decoding: bytes, as: UTF8.self)) {
            require(Array(token.text.utf8) == bytes && token.id.utf8.count == 16 && token.secret.count == 43, "an API key token parsed from other bytes")
        }
        // …and as a JWT: what parses names an accepted algorithm, signs exactly the first two parts, and its claims never crash.
        if let jwt = try? JWTToken(String(decoding: bytes, as: UTF8.self)) {
            require(JWTToken.algorithms.contains(jwt.alg) && bytes.starts(with: jwt.signingInput) && bytes[jwt.signingInput.count] == UInt8(ascii: "."), "a JWT read other than it was sent")
            _ = try? jwt.subject(.init(issuer: "i", audience: "a", skew: 60, maxLifetime: 86400), now: 1_800_000_000)
        }
    }

    /// The MCP relay's framing: one line within the message limits; what
    /// parses re-parses to the same value from its canonical text.
    static func mcpMessage(_ bytes: [UInt8]) {
        let limits = MCPPlanLimits.messages
        guard let message = try? JSONParser.parse(bytes, limits: limits) else { return }
        let canonical = Array(message.canonicalText.utf8)
        let again = try? JSONParser.parse(canonical, limits: JSONLimits(maxDepth: limits.maxDepth, maxKeyBytes: .max, maxStringBytes: .max, maxItems: .max, maxBytes: .max))
        require(again == message, "canonical text parsed to another value")
        _ = MCPRelay.digest(message)
    }

    /// The JSON Schema subset: input is `[schema, value]`.
    static func jsonSchema(_ bytes: [UInt8]) {
        guard case .array(let pair)? = try? JSONParser.parse(bytes, limits: JSONLimits(maxBytes: 64 << 10)), pair.count == 2 else { return }
        _ = SchemaValidator.violation(of: pair[1], against: pair[0])
    }

    /// The egress proxy's request parser (HTTP CONNECT and forward, SOCKS5),
    /// fed every prefix as bytes arrive; a request never claims more than it read.
    static func egressRequest(_ bytes: [UInt8]) {
        let input = Array(bytes.prefix(EgressParser.maxHead + 64))
        for greeted in [false, true] {
            var end = 0
            while end < input.count {
                end = min(input.count, end + max(1, input.count / 16))
                switch EgressParser.parse(Array(input[..<end]), greeted: greeted) {
                case .request(_, let consumed), .reply(_, let consumed):
                    require(consumed > 0 && consumed <= end, "consumed \(consumed) of \(end) bytes")
                case .more, .fail:
                    break
                }
            }
        }
    }
}

extension FuzzTargets {
    /// burrowd's session socket: the byte stream split into frames (fed in
    /// chunks of every size the input suggests), each request decoded
    /// strictly; a decoded request survives its own encoding.
    static func sessionFrames(_ bytes: [UInt8]) {
        let step = max(1, Int(bytes.first ?? 1))
        var decoder = Session.FrameDecoder(acceptingDescriptorsWith: [.request])
        var offset = 0
        var consumed = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + step)
            decoder.feed(Array(bytes[offset..<end]))
            offset = end
            while true {
                let frame: Session.Frame?
                do {
                    frame = try decoder.next()
                } catch {
                    return
                }
                guard let frame else { break }
                consumed += 5 + frame.payload.count
                require(consumed <= offset, "frames claimed \(consumed) of \(offset) bytes")
                require(frame.payload.count <= Session.maxPayload, "a frame above the limit")
                guard frame.kind == .request, let request = try? StrictJSONDecoder(limits: Session.requestLimits).decode(Session.Request.self, from: frame.payload)
                else { continue }
                let again = (try? Session.Frame(.request, request)).flatMap { try? StrictJSONDecoder(limits: Session.requestLimits).decode(Session.Request.self, from: $0.payload) }
                require(again == request, "a request did not survive its own encoding")
            }
        }
    }
}

/// The relay's message bounds for the default MCP plan (4 MiB lines, nesting 64).
enum MCPPlanLimits {
    static let messages = JSONLimits(maxDepth: 64, maxKeyBytes: 64 << 10, maxStringBytes: 4 << 20, maxItems: 4 << 20, maxBytes: 4 << 20)
}
