/// The registry specification's audit event taxonomy. Every invocation has
/// exactly one `toolInvoked` and one terminal event (`toolCompleted` or
/// `toolFailed`), plus whatever happened in between.
package enum AuditEventType: String, Sendable, Codable, CaseIterable {
    case toolRegistered = "ToolRegistered"
    case toolDeregistered = "ToolDeregistered"
    case toolUpdated = "ToolUpdated"
    case toolInvoked = "ToolInvoked"
    case toolCompleted = "ToolCompleted"
    case toolFailed = "ToolFailed"
    case permissionDenied = "PermissionDenied"
    case securityViolation = "SecurityViolation"
    case anomalousActivity = "AnomalousActivity"
    case resourceLimitExceeded = "ResourceLimitExceeded"
    case performanceThreshold = "PerformanceThreshold"
    /// Burrow's addition: a connection the egress proxy allowed (or could not
    /// complete), with its destination and bytes, written when it ends.
    /// Refused connections are PermissionDenied.
    case networkConnection = "NetworkConnection"
    /// Burrow's addition: an API key created (`burrow keys create`), or revoked.
    case credentialIssued = "CredentialIssued"
    case credentialRevoked = "CredentialRevoked"

    /// Whether the event ends an invocation.
    package var isTerminal: Bool { self == .toolCompleted || self == .toolFailed }
}
