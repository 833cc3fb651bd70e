import Hummingbird
import Synchronization

/// The methods each of the API's paths takes, read from the router once
/// its routes are in (`Daemon.router`): a request for a path the API
/// serves, with a method it does not take there, is answered 405 with
/// `Allow`, not 404 (the router itself knows no such thing).
final class RouteMethods: Sendable {
    /// Each route's path as segments (nil: a parameter, any one segment) and its methods.
    private let table = Mutex<[(segments: [String?], methods: [String])]>([])

    func fill(_ routes: [Router<DaemonContext>.RouteDescription]) {
        var byPath: [String: [String]] = [:]
        for route in routes { byPath[route.path.description, default: []].append(route.method.rawValue) }
        let rows = byPath.sorted { $0.key < $1.key }.map { path, methods in
            (segments: path.split(separator: "/").map { $0.hasPrefix("{") ? nil : String($0) } as [String?], methods: methods.sorted())
        }
        table.withLock { $0 = rows }
    }

    /// The methods `path` takes; empty when the API serves no such path.
    func allowed(_ path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return table.withLock { rows in
            rows.first { row in
                row.segments.count == segments.count && zip(row.segments, segments).allSatisfy { pattern, given in pattern.map { $0 == given } ?? true }
            }?.methods ?? []
        }
    }
}
