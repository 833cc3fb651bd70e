public import Hummingbird
import NIOCore

/// Per-request state: the connection's channel and, once the access
/// middleware ran, the caller's credential and roles.
public struct DaemonContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: (any Channel)?
    public var peer: PeerCredential?
    public var roles: Set<Role> = []

    public init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        channel = source.channel
    }
}
