public import BurrowProfile

/// How the tool reaches the network.
public struct NetworkPlan: Sendable, Codable, Equatable {
    public var access: NetworkAccess
    /// Whether the tool gets its own network namespace (loopback only).
    public var ownNamespace: Bool
    /// The egress proxy's address inside the sandbox, for restricted access.
    public var proxyEndpoint: String?
    /// The allowlist after normalisation.
    public var allowlist: [String]
    public var dns: String
    /// What happens to traffic that ignores the proxy.
    public var otherTraffic: String

    static let proxyPort: UInt16 = 3128

    static func make(_ profile: SecurityProfile, level: SandboxLevel) -> NetworkPlan {
        let isolated = level != .none
        switch profile.networkAccess {
        case .none:
            return NetworkPlan(
                access: .none, ownNamespace: isolated, proxyEndpoint: nil, allowlist: [],
                dns: isolated ? "none: no resolver, no route" : "host resolver (sandbox level none)",
                otherTraffic: isolated ? "no route: the namespace has loopback only" : "not isolated (sandbox level none)")
        case .restricted:
            return NetworkPlan(
                access: .restricted, ownNamespace: true, proxyEndpoint: "127.0.0.1:\(proxyPort)",
                allowlist: profile.permissions.network.map(\.description),
                dns: "none inside: names are resolved by the proxy, outside the sandbox",
                otherTraffic: "no route: only the proxy's listening socket leads out (non-proxy-aware protocols are blocked)")
        case .full:
            return NetworkPlan(
                access: .full, ownNamespace: false, proxyEndpoint: nil, allowlist: [],
                dns: "host resolver", otherTraffic: "host network: nothing is filtered")
        }
    }
}
