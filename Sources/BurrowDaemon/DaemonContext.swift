package import Hummingbird
import NIOCore

/// Per-request state: the connection's channel and, once the access
/// middleware ran, the caller's credential and roles.
package struct DaemonContext: RequestContext {
    package var coreContext: CoreRequestContextStorage
    let channel: (any Channel)?
    package var peer: PeerCredential?
    package var roles: Set<Role> = []

    package init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        channel = source.channel
    }
}
