/// A system call the profile expects the tool to try and be refused, named in
/// `permissions.quiet_refusals`: `mbind`, or `socket:AF_NETLINK` for one
/// address family. The call is still refused with the planned errno and
/// counted in the run record and metrics, but it is not a SecurityViolation
/// and does not feed the anomaly rule.
package struct QuietRefusal: Sendable, Hashable, Codable, CustomStringConvertible {
    package var syscall: String
    /// For `socket` and `socketpair`: only this address family.
    package var family: SocketFamily?

    package init(syscall: String, family: SocketFamily? = nil) {
        self.syscall = syscall
        self.family = family
    }

    package var description: String { family.map { "\(syscall):\($0.name)" } ?? syscall }

    package static func parse(_ text: String) -> Result<QuietRefusal, PatternError> {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let name = parts[0]
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }) else {
            return .failure("'\(text)' is not a system call name: write names such as 'mbind', or 'socket:AF_NETLINK'")
        }
        guard parts.count == 2 else { return .success(QuietRefusal(syscall: name)) }
        guard name == "socket" || name == "socketpair" else {
            return .failure("'\(text)': only socket and socketpair take an address family after ':'")
        }
        guard let family = SocketFamily.named(parts[1]) else {
            return .failure("unknown address family '\(parts[1])': one of \(SocketFamily.allCases.map(\.name).joined(separator: ", "))")
        }
        return .success(QuietRefusal(syscall: name, family: family))
    }
}

/// Address families, with the kernel's numbers (<linux/socket.h>).
package enum SocketFamily: Int32, Sendable, Hashable, Codable, CaseIterable {
    case unix = 1
    case inet = 2
    case inet6 = 10
    case key = 15
    case netlink = 16
    case packet = 17
    case bluetooth = 31
    case alg = 38
    case vsock = 40
    case xdp = 44

    package var name: String {
        switch self {
        case .unix: "AF_UNIX"
        case .inet: "AF_INET"
        case .inet6: "AF_INET6"
        case .key: "AF_KEY"
        case .netlink: "AF_NETLINK"
        case .packet: "AF_PACKET"
        case .bluetooth: "AF_BLUETOOTH"
        case .alg: "AF_ALG"
        case .vsock: "AF_VSOCK"
        case .xdp: "AF_XDP"
        }
    }

    package static func named(_ name: String) -> SocketFamily? { allCases.first { $0.name == name } }

    package init(from decoder: any Decoder) throws { self = try NamedCoding.decode(decoder, among: Self.allCases, name: \.name, what: "address family") }
    package func encode(to encoder: any Encoder) throws { try NamedCoding.encode(name, to: encoder) }
}
