package import BurrowAPI
package import Hummingbird

/// An API error: an HTTP status, a stable code and a message, sent as
/// `ErrorBody` JSON.
package struct DaemonError: HTTPResponseError, Sendable {
    package var status: HTTPResponse.Status
    package var code: String
    package var message: String
    /// Seconds, sent as Retry-After (429, 503).
    package var retryAfter: Int?
    package var validation: ValidationReport?

    package init(_ status: HTTPResponse.Status, code: String, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try json(ErrorBody(code: code, message: message, validation: validation), status: status)
        if let retryAfter { response.headers[.retryAfter] = "\(retryAfter)" }
        return response
    }

    static func forbidden(_ role: Role, _ what: String) -> DaemonError {
        DaemonError(.forbidden, code: "forbidden", "\(what) needs the \(role.rawValue) role (host policy [daemon] \(role.rawValue)s)")
    }

    static let unauthenticated = DaemonError(.unauthorized, code: "unauthenticated", "the caller's credentials could not be read (connect through the Unix socket)")
    static let notFound = DaemonError(.notFound, code: "not_found", "no such endpoint; the API lives under /v1")
}
