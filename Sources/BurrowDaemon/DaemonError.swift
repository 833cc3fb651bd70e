package import BurrowAPI
package import Hummingbird

/// An API error: an HTTP status, a stable code and a message, sent as
/// `ErrorBody` JSON.
package struct DaemonError: HTTPResponseError, Sendable {
    package var code: ErrorCode
    package var message: String
    /// Seconds, sent as Retry-After (429, 503).
    package var retryAfter: Int?
    package var validation: ValidationReport?
    /// The methods the path takes (405), sent as Allow.
    package var allow: [String]?

    package init(_ code: ErrorCode, _ message: String, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    /// From the code's row of the table.
    package var status: HTTPResponse.Status { HTTPResponse.Status(code: code.httpStatus) }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try json(ErrorBody(code: code, message: message, validation: validation), status: status)
        if let retryAfter { response.headers[.retryAfter] = "\(retryAfter)" }
        if let allow { response.headers[.allow] = allow.joined(separator: ", ") }
        return response
    }

    static func forbidden(_ role: Role, _ what: String) -> DaemonError {
        DaemonError(.forbidden, "\(what) needs the \(role.rawValue) role (host policy [daemon] \(role.rawValue)s)")
    }

    static let unauthenticated = DaemonError(.unauthenticated, "the caller's credentials could not be read (connect through the Unix socket)")
    static let notFound = DaemonError(.notFound, "no such endpoint; the API lives under /v1")
}
