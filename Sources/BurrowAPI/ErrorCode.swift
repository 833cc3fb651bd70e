/// Every error code burrowd answers with (`{"error": {"code": "…"}}`), with
/// its HTTP status and what `burrow` exits with when it meets one: the one
/// table, listed in docs/daemon-api.md (a test checks every code is there).
/// A code is a value: no call site writes one as a string.
package struct ErrorCode: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// What the wire carries.
    package let name: String
    /// 200 for the codes of a result (`state: failed`), which answer no request.
    package let httpStatus: Int
    /// `burrow invoke` and `burrow tools` exit with it (the tool's own status when it ran).
    package let exitStatus: Int32

    private init(_ name: String, _ httpStatus: Int, exit: Int32 = 125) {
        self.name = name
        self.httpStatus = httpStatus
        self.exitStatus = exit
    }

    package var description: String { name }

    // MARK: the caller and its request

    package static let unauthenticated = ErrorCode("unauthenticated", 401)
    package static let forbidden = ErrorCode("forbidden", 403)
    package static let notFound = ErrorCode("not_found", 404)
    package static let methodNotAllowed = ErrorCode("method_not_allowed", 405)
    package static let notAcceptable = ErrorCode("not_acceptable", 406)
    package static let invalidRequest = ErrorCode("invalid_request", 400)
    package static let invalidParameter = ErrorCode("invalid_parameter", 400)
    package static let invalidID = ErrorCode("invalid_id", 400)
    package static let bodyIncomplete = ErrorCode("body_incomplete", 400)
    package static let environmentNotAllowed = ErrorCode("environment_not_allowed", 400)
    package static let requestTooLarge = ErrorCode("request_too_large", 413)
    package static let validationFailed = ErrorCode("validation_failed", 422)

    // MARK: HTTP itself (no handler saw the request)

    package static let badHTTP = ErrorCode("bad_http", 400)
    package static let invalidMethod = ErrorCode("invalid_method", 400)
    package static let invalidURL = ErrorCode("invalid_url", 400)
    package static let invalidVersion = ErrorCode("invalid_version", 400)
    package static let invalidContentLength = ErrorCode("invalid_content_length", 400)
    package static let invalidChunkSize = ErrorCode("invalid_chunk_size", 400)
    package static let headersTooLarge = ErrorCode("headers_too_large", 431)
    package static let headerTimeout = ErrorCode("header_timeout", 408)
    package static let bodyTimeout = ErrorCode("body_timeout", 408)

    // MARK: what the registry and the tool allow

    package static let versionExists = ErrorCode("version_exists", 409)
    package static let toolDisabled = ErrorCode("tool_disabled", 409)
    package static let hasDependents = ErrorCode("has_dependents", 409)
    package static let profileInvalid = ErrorCode("profile_invalid", 409)
    package static let planRefused = ErrorCode("plan_refused", 409)
    /// The tool's trust does not allow the run (unsigned where signatures
    /// are required, a signature that does not verify, a level below the
    /// minimum or a request above its level's ceiling).
    package static let trustRefused = ErrorCode("trust_refused", 403)
    /// A file differs from the tool's signed manifest.
    package static let manifestMismatch = ErrorCode("manifest_mismatch", 409)
    package static let notMCP = ErrorCode("not_mcp", 409)
    package static let mcpRelayRequired = ErrorCode("mcp_relay_required", 409)
    package static let sessionNotFound = ErrorCode("session_not_found", 404)
    package static let sessionEnded = ErrorCode("session_ended", 502)
    package static let duplicateID = ErrorCode("duplicate_id", 409)
    /// An `Idempotency-Key` already used for another request (another tool or body).
    package static let idempotencyMismatch = ErrorCode("idempotency_mismatch", 422)
    /// An `Idempotency-Key` whose first request is still running: its result comes later.
    package static let inProgress = ErrorCode("in_progress", 409)

    // MARK: limits

    package static let rateLimited = ErrorCode("rate_limited", 429)
    package static let tooManyConcurrent = ErrorCode("too_many_concurrent", 429)
    package static let registrationLimit = ErrorCode("registration_limit", 429)
    package static let tooManyValidations = ErrorCode("too_many_validations", 429)
    package static let tooManyConnections = ErrorCode("too_many_connections", 429)
    package static let serverBusy = ErrorCode("server_busy", 503)
    package static let shuttingDown = ErrorCode("shutting_down", 503)
    package static let noSandboxID = ErrorCode("no_sandbox_id", 503)

    // MARK: burrowd itself

    package static let auditUnavailable = ErrorCode("audit_unavailable", 500)
    package static let registryUnavailable = ErrorCode("registry_unavailable", 500)
    /// The central audit copy ([audit] central_url) is not configured (404) or cannot be reached (502).
    package static let noCentralCopy = ErrorCode("no_central_copy", 404)
    package static let centralUnavailable = ErrorCode("central_unavailable", 502)
    package static let `internal` = ErrorCode("internal", 500)

    // MARK: a result whose tool did not run (200, state failed)

    package static let refused = ErrorCode("refused", 200)
    package static let preparationFailed = ErrorCode("preparation_failed", 200)
    package static let spawnFailed = ErrorCode("spawn_failed", 200)
    /// The command is not in the sandbox (the same name as the 404 on the wire: what is missing differs).
    package static let commandNotFound = ErrorCode("not_found", 200, exit: 127)
    package static let notExecutable = ErrorCode("not_executable", 200, exit: 126)
    package static let supervisionFailed = ErrorCode("supervision_failed", 200)
    package static let supervisorLost = ErrorCode("supervisor_lost", 200)
    /// The node that ran it stopped beating in the fleet's database: its outcome is unknown, and it is not run again.
    package static let nodeLost = ErrorCode("node_lost", 200)

    package static let all: [ErrorCode] = [
        unauthenticated, forbidden, notFound, methodNotAllowed, notAcceptable, invalidRequest, invalidParameter, invalidID, bodyIncomplete, environmentNotAllowed,
        requestTooLarge, validationFailed, badHTTP, invalidMethod, invalidURL, invalidVersion, invalidContentLength, invalidChunkSize, headersTooLarge,
        headerTimeout, bodyTimeout, versionExists, toolDisabled, hasDependents, profileInvalid, planRefused, trustRefused, manifestMismatch, notMCP, mcpRelayRequired, sessionNotFound, sessionEnded,
        duplicateID, idempotencyMismatch, inProgress, rateLimited, tooManyConcurrent, registrationLimit, tooManyValidations, tooManyConnections, serverBusy, shuttingDown, noSandboxID,
        auditUnavailable, registryUnavailable, noCentralCopy, centralUnavailable, `internal`, refused, preparationFailed, spawnFailed, commandNotFound, notExecutable, supervisionFailed,
        supervisorLost, nodeLost,
    ]

    /// The code of a failed result (`state: failed`) named `name`.
    package static func result(named name: String?) -> ErrorCode? {
        all.first { $0.httpStatus == 200 && $0.name == name }
    }

    /// What `burrow invoke` exits with for a failed result carrying `name`.
    package static func resultExitStatus(_ name: String?) -> Int32 {
        result(named: name)?.exitStatus ?? 125
    }
}
