/// A Linux namespace type, named as in namespaces(7).
package enum NamespaceKind: String, Codable, Sendable, CaseIterable, CodingKeyRepresentable, Comparable {
    case user, pid, mount, ipc, uts, cgroup, net, time

    /// The `CLONE_NEW*` flag that creates it.
    package var cloneFlag: UInt64 {
        switch self {
        case .user: 0x1000_0000  // CLONE_NEWUSER
        case .pid: 0x2000_0000  // CLONE_NEWPID
        case .mount: 0x0002_0000  // CLONE_NEWNS
        case .ipc: 0x0800_0000  // CLONE_NEWIPC
        case .uts: 0x0400_0000  // CLONE_NEWUTS
        case .cgroup: 0x0200_0000  // CLONE_NEWCGROUP
        case .net: 0x4000_0000  // CLONE_NEWNET
        case .time: 0x0000_0080  // CLONE_NEWTIME
        }
    }

    /// The C flag name, for output an operator can grep in man pages.
    package var cloneFlagName: String {
        switch self {
        case .mount: "CLONE_NEWNS"
        default: "CLONE_NEW" + rawValue.uppercased()
        }
    }

    package static func < (lhs: Self, rhs: Self) -> Bool {
        (allCases.firstIndex(of: lhs) ?? 0) < (allCases.firstIndex(of: rhs) ?? 0)
    }
}
