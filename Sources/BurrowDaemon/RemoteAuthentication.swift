import BurrowAPI
import BurrowProfile
import HTTPTypes
import Hummingbird

/// Who a request on the HTTPS listener comes from, by the methods `[auth]`
/// accepts: a signature (`RequestSigning`), or else an `Authorization`
/// header (an API key or a JWT), when there is one, names the caller (and must be valid: a bad
/// one is never passed over for the certificate); without either, the
/// verified client certificate does when "mtls" is accepted (and signing
/// is not required). Anything else is anonymous (no role, 401).
struct RemoteAuthentication: Sendable {
    let methods: [HostPolicy.Auth.Method]
    let keys: APIKeys
    /// Nil unless API keys are accepted (they are what signs).
    let signing: RequestSigning?
    /// The largest body a signed request may have (it is read to be checked).
    let maxBody: Int
    /// The keys JWTs are checked with: loaded when burrowd starts serving,
    /// and again on SIGHUP (empty unless "jwt" is accepted).
    let jwt = JWTKeys()

    init(_ auth: HostPolicy.Auth, keys: APIKeys, maxBody: Int) {
        methods = auth.methods
        self.keys = keys
        signing = auth.methods.contains(.apiKey) ? RequestSigning(auth.signing, keys: keys) : nil
        self.maxBody = maxBody
    }

    /// A refusal: what the audit row says, and what the caller is told.
    struct Refused: Error {
        var audit: String
        var message: String
        var code = ErrorCode.unauthenticated
    }

    /// What an anonymous caller is told it needs.
    var needed: String {
        var ways: [String] = []
        if methods.contains(.mtls) { ways.append("a client certificate issued by [transport.http] client_ca, with one subject common name") }
        if methods.contains(.apiKey) { ways.append("an API key (Authorization: Bearer bk_…; burrow keys create)") }
        if methods.contains(.jwt) { ways.append("a JWT from the issuer [auth.jwt] names (Authorization: Bearer <JWT>)") }
        return "no credential: present " + ways.joined(separator: ", or ")
    }

    func authenticate(_ request: inout Request, connection: CallerIdentity.Remote) async throws(Refused) -> CallerIdentity.Remote {
        if let name = HTTPField.Name(RequestSigning.Header.signature), request.headers[name] != nil {
            return try await signed(&request, connection: connection)
        }
        if signing?.policy.required == true {
            throw Refused(
                audit: "an unsigned request ([auth.signing] required)",
                message: "requests must be signed ([auth.signing] required): Burrow-Key, Burrow-Timestamp, Burrow-Nonce and Burrow-Signature")
        }
        let given = request.headers[values: .authorization]
        guard let header = given.first else {
            guard methods.contains(.mtls), connection.principal != nil else { return CallerIdentity.Remote(address: connection.address) }
            return connection
        }
        guard given.count == 1 else { throw Refused(audit: "several Authorization headers", message: "send one Authorization header") }
        let token = header.hasPrefix("Bearer ") ? header.dropFirst(7) : ""
        guard token.hasPrefix(APIKeyToken.prefix) else {
            guard !token.isEmpty, methods.contains(.jwt) else {
                throw Refused(
                    audit: token.isEmpty ? "an Authorization header that is not a bearer token" : "a bearer token that is not an API key ([auth] methods accepts no JWT)",
                    message: "the Authorization header is not one burrowd accepts: \(bearers)")
            }
            guard let verifier = jwt.current else {
                throw Refused(audit: "a JWT, before its keys were loaded", message: "JWTs cannot be checked now; retry later", code: .registryUnavailable)
            }
            do {
                return CallerIdentity.Remote(principal: try verifier.verify(String(token)), method: .jwt, address: connection.address)
            } catch {
                throw Refused(audit: error.message, message: "the JWT is not valid (its signature, issuer, audience, subject or times)")
            }
        }
        guard methods.contains(.apiKey) else {
            throw Refused(audit: "an API key, which [auth] methods does not accept", message: "this listener does not accept API keys ([auth] methods)")
        }
        do {
            let key = try keys.verify(token)
            return CallerIdentity.Remote(
                principal: HostPolicy.Daemon.Principal.key(key.id).description, method: .apiKey, address: connection.address,
                scopes: Set(key.roles.compactMap(Role.init(rawValue:))))
        } catch let refusal as APIKeys.Refusal {
            throw Refused(audit: refusal.message, message: "the API key is not valid (unknown, expired or revoked)")
        } catch {
            throw Refused(audit: "the key store: \(error)", message: "API keys cannot be checked now; retry later", code: .registryUnavailable)
        }
    }

    /// The bearer tokens this listener accepts, as the caller is told.
    private var bearers: String {
        let accepted = [methods.contains(.apiKey) ? "Bearer bk_<id>_<secret>" : nil, methods.contains(.jwt) ? "Bearer <JWT>" : nil].compactMap(\.self)
        return accepted.isEmpty ? "none ([auth] methods accepts no bearer token)" : accepted.joined(separator: " or ")
    }

    /// A signed request: its body read (within max_request_size) to be
    /// checked, and left for the handler.
    private func signed(_ request: inout Request, connection: CallerIdentity.Remote) async throws(Refused) -> CallerIdentity.Remote {
        guard let signing else {
            throw Refused(audit: "a signed request, which [auth] methods does not accept (no api_key)", message: "this listener does not accept signed requests ([auth] methods)")
        }
        func header(_ name: String) -> String? {
            guard let field = HTTPField.Name(name) else { return nil }
            let values = request.headers[values: field]
            return values.count == 1 ? values[0] : nil
        }
        guard let id = header(RequestSigning.Header.key), let timestamp = header(RequestSigning.Header.timestamp), let nonce = header(RequestSigning.Header.nonce),
            let signature = header(RequestSigning.Header.signature)
        else {
            throw Refused(
                audit: "a signed request without exactly one of each Burrow- header", message: "a signed request needs one each of Burrow-Key, Burrow-Timestamp, Burrow-Nonce and Burrow-Signature")
        }
        let body: [UInt8]
        do {
            body = Array(try await request.collectBody(upTo: maxBody).readableBytesView)
        } catch {
            throw Refused(audit: "a signed request whose body was too large or cut short", message: "the body did not arrive whole within [daemon] max_request_size", code: .requestTooLarge)
        }
        do {
            let key = try signing.verify(
                key: id, timestamp: timestamp, nonce: nonce, signature: signature, method: request.method.rawValue, target: request.uri.description, body: body)
            return CallerIdentity.Remote(
                principal: HostPolicy.Daemon.Principal.key(key.id).description, method: .signedKey, address: connection.address,
                scopes: Set(key.roles.compactMap(Role.init(rawValue:))))
        } catch {
            if error == .busy { throw Refused(audit: error.message, message: "burrowd cannot take more signed requests now; retry in a moment", code: .serverBusy) }
            throw Refused(audit: error.message, message: "the request signature is not valid (its key, time, nonce or signature)")
        }
    }
}
