import BurrowAPI
import BurrowProfile
import Hummingbird

/// Who a request on the HTTPS listener comes from, by the methods `[auth]`
/// accepts: an `Authorization` header, when there is one, names the caller
/// (and must be valid: a bad one is never passed over for the certificate);
/// without one, the verified client certificate does when "mtls" is
/// accepted. Anything else is anonymous (no role, 401).
struct RemoteAuthentication: Sendable {
    let methods: [HostPolicy.Auth.Method]
    let keys: APIKeys

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
        return "no credential: present " + ways.joined(separator: ", or ")
    }

    func authenticate(_ request: Request, connection: CallerIdentity.Remote) throws(Refused) -> CallerIdentity.Remote {
        let given = request.headers[values: .authorization]
        guard let header = given.first else {
            guard methods.contains(.mtls), connection.principal != nil else { return CallerIdentity.Remote(address: connection.address) }
            return connection
        }
        guard given.count == 1 else { throw Refused(audit: "several Authorization headers", message: "send one Authorization header") }
        let token = header.hasPrefix("Bearer ") ? header.dropFirst(7) : ""
        guard token.hasPrefix(APIKeyToken.prefix) else {
            throw Refused(audit: "an Authorization header that is not an API key", message: "the Authorization header is not one burrowd accepts: Bearer bk_<id>_<secret>")
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
}
