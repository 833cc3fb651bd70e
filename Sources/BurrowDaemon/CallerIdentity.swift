package import BurrowHost
package import BurrowProfile
import BurrowSystem
package import NIOCore
import NIOSSL

/// Who made a request: a local process, as the kernel recorded it on the
/// Unix socket (SO_PEERCRED), or a remote client the HTTPS listener
/// authenticated. Limits, denials, session ownership and audit rows are
/// keyed by `key`, so two remote principals never share a uid's share and a
/// remote caller never counts as a local user.
package struct CallerIdentity: Sendable, Equatable {
    /// What limits and ownership are counted by.
    package enum Key: Sendable, Hashable {
        case uid(UInt32)
        case principal(String)
        /// A remote client not (yet) authenticated, by its address.
        case address(String)
    }

    /// How a remote caller proved who it is.
    package enum Method: String, Sendable {
        case mtls
        case apiKey = "api_key"
        /// A request signed with an API key's signing key (`RequestSigning`).
        case signedKey = "signed_key"
        /// A JSON Web Token (`JWTVerifier`).
        case jwt
    }

    /// A remote caller: its principal (`cert:NAME`) and how it was
    /// authenticated (both nil when it was not), and the address it
    /// connected from.
    package struct Remote: Sendable, Equatable {
        package var principal: String?
        package var method: Method?
        package var address: String
        /// The roles its credential carries (an API key's), on top of those
        /// the policy's `[daemon]` roles give its principal.
        package var scopes: Set<Role> = []

        package init(principal: String? = nil, method: Method? = nil, address: String, scopes: Set<Role> = []) {
            self.principal = principal
            self.method = method
            self.address = address
            self.scopes = scopes
        }
    }

    /// The kernel's record of a local caller; nil for a remote one.
    package var local: PeerCredential?
    package var remote: Remote?

    package static func local(_ peer: PeerCredential) -> CallerIdentity { CallerIdentity(local: peer) }
    package static func remote(_ r: Remote) -> CallerIdentity { CallerIdentity(remote: r) }
    /// Credentials that could not be read (uid and gid -1).
    package static let unknown = CallerIdentity.local(.unknown)

    package var key: Key {
        guard let remote else { return .uid(local?.uid ?? .max) }
        return remote.principal.map { .principal($0) } ?? .address(remote.address)
    }

    /// The runtime's view: a user name (`uid:N`) and uid for a local
    /// caller; the principal (`anonymous`) and no uid for a remote one.
    package var caller: Caller {
        if let remote { return Caller(remote: remote.principal ?? "anonymous") }
        let peer = local ?? .unknown
        return Caller(uid: peer.uid, pid: peer.pid)
    }

    /// How the daemon learns a connection's caller; tests substitute a fixed one.
    package typealias Lookup = @Sendable (any Channel) async throws -> CallerIdentity?

    /// A Unix socket's SO_PEERCRED.
    package static func socket(_ lookup: @escaping PeerCredential.Lookup) -> Lookup {
        { channel in try await lookup(channel).map(CallerIdentity.local) }
    }

    /// The HTTPS listener's caller: the client certificate TLS verified
    /// (against `client_ca`, its dates, its key usage, and its CRL when one
    /// is configured), named by its subject's one common name or its one
    /// subjectAltName of the configured kind (`client_identity`). Without
    /// one, or with a name no principal may carry (none, several, control
    /// characters, over 255 bytes), the caller is anonymous: it holds no
    /// role, and its refusals are counted by address.
    package static func certificate(_ identity: HostPolicy.Transport.HTTP.ClientIdentity) -> Lookup {
        { channel in
            let address = channel.remoteAddress?.ipAddress ?? "unknown"
            guard let certificate = try await channel.nioSSL_peerCertificate().get() else { return .remote(Remote(address: address)) }
            let names: [String]
            switch identity {
            case .commonName: names = certificate.subjectName.filter { $0.type == .commonName }.map(\.value)
            case .sanDNS: names = alternativeNames(certificate, .dnsName)
            case .sanEmail: names = alternativeNames(certificate, .email)
            case .sanURI: names = alternativeNames(certificate, .uri)
            }
            guard names.count == 1, let name = names.first, HostPolicy.Daemon.Principal.isRemoteName(name) else { return .remote(Remote(address: address)) }
            return .remote(Remote(principal: HostPolicy.Daemon.Principal.certificate(name).description, method: .mtls, address: address))
        }
    }

    /// A certificate's subjectAltNames of one kind, as text (one that is
    /// not UTF-8 is an empty name, which names no one: it still counts).
    private static func alternativeNames(_ certificate: NIOSSLCertificate, _ kind: _SubjectAlternativeName.NameType) -> [String] {
        certificate._subjectAlternativeNames().filter { $0.nameType == kind }.map { String(validating: Array($0.contents), as: UTF8.self) ?? "" }
    }

    /// Whether anyone vouched for this caller (a local one always: the kernel did).
    package var authenticated: Bool { remote.map { $0.principal != nil } ?? true }
}
