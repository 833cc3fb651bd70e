package import BurrowProfile

/// What the MCP relay enforces between a client and the sandboxed server
/// (`burrow mcp`, daemon sessions): framing limits, per-session request
/// limits and the profile's content filters.
package struct MCPPlan: Sendable, Codable, Equatable {
    /// The profile says the tool is an MCP server (`mcp = true`).
    package var server: Bool
    /// The longest line accepted either way, newline excluded.
    package var maxLineBytes: Int
    /// The deepest JSON nesting accepted either way.
    package var maxDepth: Int
    /// Server stderr passed on per second; the rest is dropped and counted.
    package var stderrBytesPerSecond: Int
    /// Client requests the server may have in hand at once.
    package var maxConcurrentRequests: Int
    /// Requests per minute by method, per session.
    package var rateLimits: [MethodRate]
    package var contentFilters: [ContentFilter]
    /// The host's approval key file (`[mcp] approval_key`) for `authorize`
    /// filters; nil: none is configured, so such calls are refused.
    package var approvalKey: String?

    package init(
        server: Bool = false, maxLineBytes: Int = 4 << 20, maxDepth: Int = 64, stderrBytesPerSecond: Int = 64 << 10,
        maxConcurrentRequests: Int = MCPPolicy.defaultConcurrentRequests, rateLimits: [MethodRate] = [], contentFilters: [ContentFilter] = [],
        approvalKey: String? = nil
    ) {
        self.server = server
        self.maxLineBytes = maxLineBytes
        self.maxDepth = maxDepth
        self.stderrBytesPerSecond = stderrBytesPerSecond
        self.maxConcurrentRequests = maxConcurrentRequests
        self.rateLimits = rateLimits
        self.contentFilters = contentFilters
        self.approvalKey = approvalKey
    }

    static func make(_ profile: SecurityProfile, policy: HostPolicy) -> MCPPlan {
        MCPPlan(
            server: profile.mcp.server, maxConcurrentRequests: profile.mcp.maxConcurrentRequests, rateLimits: profile.mcp.rateLimits,
            contentFilters: profile.mcp.contentFilters, approvalKey: policy.mcp.approvalKey)
    }

    /// Whether the profile asked anything of the relay (dry-run shows the section then).
    package var isConfigured: Bool { server || !rateLimits.isEmpty || !contentFilters.isEmpty || maxConcurrentRequests != MCPPolicy.defaultConcurrentRequests }
}
