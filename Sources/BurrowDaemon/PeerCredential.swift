package import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Who is on the other end of a Unix socket, as the kernel recorded it at
/// connect(): SO_PEERCRED. Laid out as `struct ucred` (which Glibc declares
/// only under _GNU_SOURCE, so Swift does not see it).
package struct PeerCredential: Sendable, Equatable {
    package var pid: Int32
    package var uid: UInt32
    package var gid: UInt32

    package init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// A caller whose credentials are unknown (uid and gid -1).
    package static let unknown = PeerCredential(pid: 0, uid: .max, gid: .max)

    /// How the daemon learns a connection's peer; tests substitute a fixed one.
    package typealias Lookup = @Sendable (any Channel) async throws -> PeerCredential?

    /// SO_PEERCRED of the channel's socket; nil when the channel is not a
    /// socket or not a Unix one (the kernel then reports uid -1).
    package static let socketLookup: Lookup = { channel in
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        let credential: PeerCredential = try await provider.unsafeGetSocketOption(
            level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: SO_PEERCRED)
        ).get()
        return credential.uid == UInt32.max ? nil : credential
    }
}
