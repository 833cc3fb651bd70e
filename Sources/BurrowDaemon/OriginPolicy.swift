import BurrowProfile
import Hummingbird

/// Browser origins: a request that carries `Origin` is answered only when
/// the policy lists it (`[transport.http] allowed_origins`), the defence
/// against DNS rebinding the MCP specification asks for; a listed origin
/// gets CORS headers for the methods and request headers the policy allows.
/// On the Unix socket no origin is listed, so any request with one is refused.
struct OriginPolicy: Sendable {
    enum Decision {
        /// No `Origin`: not a browser's cross-origin request.
        case noOrigin
        /// A listed origin: answer, with these CORS headers.
        case allowed(HTTPFields)
        /// A listed origin's preflight (OPTIONS): answered here, 204.
        case preflight(HTTPFields)
        case refused(String)
    }

    let origins: Set<String>
    let methods: [String]
    let headers: [String]

    static let none = OriginPolicy(origins: [], methods: [], headers: [])

    init(origins: Set<String>, methods: [String], headers: [String]) {
        self.origins = origins
        self.methods = methods
        self.headers = headers
    }

    init(_ http: HostPolicy.Transport.HTTP) {
        self.init(origins: Set(http.allowedOrigins), methods: http.corsMethods, headers: http.corsHeaders)
    }

    func check(_ request: Request) -> Decision {
        let given = request.headers[values: .origin]
        guard let origin = given.first else { return .noOrigin }
        let shown = String(origin.prefix(200))
        guard given.count == 1, origins.contains(origin) else {
            return .refused(
                origins.isEmpty
                    ? "requests from a browser origin ('\(shown)') are refused here: [transport.http] allowed_origins lists none"
                    : "the origin '\(shown)' is not one burrowd answers ([transport.http] allowed_origins)")
        }
        var fields: HTTPFields = [.accessControlAllowOrigin: origin, .vary: "Origin"]
        guard request.method == .options, let asked = request.headers[.accessControlRequestMethod] else {
            fields[.accessControlExposeHeaders] = "Mcp-Session-Id, Retry-After"
            return .allowed(fields)
        }
        guard methods.contains(asked) else {
            return .refused("'\(asked.prefix(32))' is not a method [transport.http] cors_methods allows (\(methods.joined(separator: ", ")))")
        }
        let requested = (request.headers[.accessControlRequestHeaders] ?? "").split(separator: ",").map { String($0.filter { !$0.isWhitespace }).lowercased() }
        if let header = requested.first(where: { !$0.isEmpty && !headers.contains($0) }) {
            return .refused("the header '\(header.prefix(64))' is not one [transport.http] cors_headers allows")
        }
        fields[.accessControlAllowMethods] = methods.joined(separator: ", ")
        fields[.accessControlAllowHeaders] = headers.joined(separator: ", ")
        fields[.accessControlMaxAge] = "600"
        return .preflight(fields)
    }
}
