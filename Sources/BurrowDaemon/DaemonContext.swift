package import Hummingbird
import NIOCore

/// Per-request state: the connection's channel and, once the access
/// middleware ran, the caller and its roles.
package struct DaemonContext: RequestContext {
    package var coreContext: CoreRequestContextStorage
    let channel: (any Channel)?
    package var identity: CallerIdentity = .unknown
    package var roles: Set<Role> = []

    package init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        channel = source.channel
    }
}
