import BurrowSystem
package import SystemPackage

/// Why a cgroup could not be set up or used.
package enum CgroupError: Error, Sendable, CustomStringConvertible {
    case unsupported(String)
    case io(op: String, path: String, Errno)

    package var description: String {
        switch self {
        case .unsupported(let why): why
        case .io(let op, let path, let e): "cannot \(op) \(path): \(errnoName(e.rawValue)) (\(e))"
        }
    }
}
