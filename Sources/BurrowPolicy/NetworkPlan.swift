package import BurrowProfile

/// How the tool reaches the network.
package struct NetworkPlan: Sendable, Codable, Equatable {
    package var access: NetworkAccess
    /// Whether the tool gets its own network namespace (loopback only).
    package var ownNamespace: Bool
    /// The egress proxy's address inside the sandbox, for restricted access.
    package var proxyEndpoint: String?
    /// The allowlist after normalisation.
    package var allowlist: [String]
    package var dns: String
    /// What happens to traffic that ignores the proxy.
    package var otherTraffic: String
    /// The egress proxy's rules and limits (restricted access only).
    package var egress: Egress?

    /// What the supervisor's egress proxy enforces for one sandbox.
    package struct Egress: Sendable, Codable, Equatable {
        /// The allowlist the proxy decides by.
        package var targets: [NetworkTarget]
        /// The proxy's listening port on the sandbox's loopback.
        package var port: UInt16
        package var protocols: [String]
        package var maxConnections: Int
        /// Bytes both ways over the run; nil: no budget.
        package var maxBytes: UInt64?
        package var connectTimeoutMilliseconds: UInt64
        package var idleTimeoutMilliseconds: UInt64
        /// Refused outright whatever the name, unless an IP/CIDR entry names them.
        package var refusedRanges: [String]

        package init(
            targets: [NetworkTarget], port: UInt16 = NetworkPlan.proxyPort, maxConnections: Int, maxBytes: UInt64?,
            connectTimeoutMilliseconds: UInt64, idleTimeoutMilliseconds: UInt64
        ) {
            self.targets = targets
            self.port = port
            self.protocols = ["HTTP CONNECT", "HTTP forwarding (http:// URLs)", "SOCKS5 CONNECT (names resolved by the proxy)"]
            self.maxConnections = maxConnections
            self.maxBytes = maxBytes
            self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
            self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
            self.refusedRanges = SpecialAddress.ranges.map { "\($0.network)/\($0.prefix) \($0.name)" }
        }
    }

    /// The proxy's port on the sandbox's loopback.
    package static let proxyPort: UInt16 = 3128

    static func make(_ profile: SecurityProfile, level: SandboxLevel, limits: EffectiveLimits, policy: HostPolicy) -> NetworkPlan {
        let isolated = level != .none
        switch profile.networkAccess {
        case .none:
            return NetworkPlan(
                access: .none, ownNamespace: isolated, proxyEndpoint: nil, allowlist: [],
                dns: isolated ? "none: no resolver, no route" : "host resolver (sandbox level none)",
                otherTraffic: isolated ? "no route: the namespace has loopback only" : "not isolated (sandbox level none)")
        case .restricted:
            let egress = Egress(
                targets: profile.permissions.network, maxConnections: limits.maxConnections, maxBytes: limits.maxNetworkBytes?.bytes,
                connectTimeoutMilliseconds: policy.network.connectTimeout.milliseconds,
                idleTimeoutMilliseconds: policy.network.idleTimeout.milliseconds)
            return NetworkPlan(
                access: .restricted, ownNamespace: true, proxyEndpoint: "127.0.0.1:\(proxyPort)",
                allowlist: profile.permissions.network.map(\.description),
                dns: "none inside: names are resolved by the proxy, outside the sandbox, once per connection (the checked address is the one connected to)",
                otherTraffic: "no route: the namespace has loopback only, and Landlock allows TCP connect to the proxy's port only; non-proxy-aware protocols are blocked",
                egress: egress)
        case .full:
            return NetworkPlan(
                access: .full, ownNamespace: false, proxyEndpoint: nil, allowlist: [],
                dns: "host resolver", otherTraffic: "host network: nothing is filtered")
        }
    }
}
