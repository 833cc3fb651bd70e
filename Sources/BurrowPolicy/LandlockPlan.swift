import BurrowSystem

/// Landlock rules mirroring the file plan: a second, unprivileged layer under
/// the mount table. Rights are the kernel's bits; their names (as in
/// <linux/landlock.h>, without the `LANDLOCK_ACCESS_*_` prefix) come from one
/// table per kind.
package struct LandlockPlan: Sendable, Codable, Equatable {
    package struct PathRule: Sendable, Codable, Equatable {
        package var path: String
        package var access: LandlockFileAccess
    }
    package struct PortRule: Sendable, Codable, Equatable {
        package var port: UInt16
        package var access: LandlockNetAccess
    }

    /// The ABI this host offers (nil: Landlock unavailable).
    package var hostABI: Int?
    /// The ABI the rules are written for: the best the host offers.
    package var abi: Int?
    package var handledFileSystem: LandlockFileAccess
    package var handledNetwork: LandlockNetAccess
    package var scoped: LandlockScope
    package var pathRules: [PathRule]
    package var portRules: [PortRule]
    /// What a newer ABI would add, and which other layer covers it meanwhile.
    package var notAvailable: [String]
}

/// `LANDLOCK_ACCESS_FS_*`.
package struct LandlockFileAccess: KernelFlags {
    package let rawValue: UInt64
    package init(rawValue: UInt64) { self.rawValue = rawValue }

    package static let execute = Self(rawValue: 1 << 0)
    package static let writeFile = Self(rawValue: 1 << 1)
    package static let readFile = Self(rawValue: 1 << 2)
    package static let readDir = Self(rawValue: 1 << 3)
    package static let removeDir = Self(rawValue: 1 << 4)
    package static let removeFile = Self(rawValue: 1 << 5)
    package static let makeChar = Self(rawValue: 1 << 6)
    package static let makeDir = Self(rawValue: 1 << 7)
    package static let makeReg = Self(rawValue: 1 << 8)
    package static let makeSock = Self(rawValue: 1 << 9)
    package static let makeFifo = Self(rawValue: 1 << 10)
    package static let makeBlock = Self(rawValue: 1 << 11)
    package static let makeSym = Self(rawValue: 1 << 12)
    /// ABI 2.
    package static let refer = Self(rawValue: 1 << 13)
    /// ABI 3.
    package static let truncate = Self(rawValue: 1 << 14)
    /// ABI 5.
    package static let ioctlDev = Self(rawValue: 1 << 15)

    package static let names: [(flag: Self, name: String)] = [
        (.execute, "EXECUTE"), (.writeFile, "WRITE_FILE"), (.readFile, "READ_FILE"), (.readDir, "READ_DIR"), (.removeDir, "REMOVE_DIR"),
        (.removeFile, "REMOVE_FILE"), (.makeChar, "MAKE_CHAR"), (.makeDir, "MAKE_DIR"), (.makeReg, "MAKE_REG"), (.makeSock, "MAKE_SOCK"),
        (.makeFifo, "MAKE_FIFO"), (.makeBlock, "MAKE_BLOCK"), (.makeSym, "MAKE_SYM"), (.refer, "REFER"), (.truncate, "TRUNCATE"),
        (.ioctlDev, "IOCTL_DEV"),
    ]

    /// The rights a Landlock ABI knows.
    package static func known(abi: Int) -> Self {
        var all: Self = abi >= 1 ? Self(rawValue: (1 << 13) - 1) : []
        if abi >= 2 { all.insert(.refer) }
        if abi >= 3 { all.insert(.truncate) }
        if abi >= 5 { all.insert(.ioctlDev) }
        return all
    }

    static let read: Self = [.readFile, .readDir]
    /// The rights the kernel accepts on a rule for a non-directory (others are EINVAL).
    static let fileOnly: Self = [.execute, .writeFile, .readFile, .truncate, .ioctlDev]
    static let write: Self = [
        .readFile, .readDir, .writeFile, .removeDir, .removeFile, .makeDir, .makeReg, .makeSym, .makeFifo, .makeSock, .refer, .truncate,
    ]
}

/// `LANDLOCK_ACCESS_NET_*` (ABI 4).
package struct LandlockNetAccess: KernelFlags {
    package let rawValue: UInt64
    package init(rawValue: UInt64) { self.rawValue = rawValue }

    package static let bindTCP = Self(rawValue: 1 << 0)
    package static let connectTCP = Self(rawValue: 1 << 1)

    package static let names: [(flag: Self, name: String)] = [(.bindTCP, "BIND_TCP"), (.connectTCP, "CONNECT_TCP")]
}

/// `LANDLOCK_SCOPE_*` (ABI 6).
package struct LandlockScope: KernelFlags {
    package let rawValue: UInt64
    package init(rawValue: UInt64) { self.rawValue = rawValue }

    package static let abstractUnixSocket = Self(rawValue: 1 << 0)
    package static let signal = Self(rawValue: 1 << 1)

    package static let names: [(flag: Self, name: String)] = [(.abstractUnixSocket, "ABSTRACT_UNIX_SOCKET"), (.signal, "SIGNAL")]
}

extension LandlockPlan {
    /// Builds the rules for the given grants at the host's best ABI.
    /// `isDirectory` tells which rule paths are directories: a rule on any
    /// other file may only carry file rights.
    static func make(
        hostABI: Int?, reads: [String], writes: [String], executables: [String], devices: [String],
        networkAccess: String, proxyPort: UInt16?, isDirectory: (String) -> Bool
    ) -> LandlockPlan {
        // Without Landlock there is nothing to plan: the control row says so,
        // and a run refuses the plan rather than carry rules with no rights.
        guard let abi = hostABI else {
            return LandlockPlan(
                hostABI: nil, abi: nil, handledFileSystem: [], handledNetwork: [], scoped: [], pathRules: [], portRules: [], notAvailable: [])
        }
        let usable = LandlockFileAccess.known(abi: abi)
        var rules: [PathRule] = []
        func fitting(_ rights: LandlockFileAccess, _ path: String) -> LandlockFileAccess {
            (isDirectory(path) ? rights : rights.intersection(.fileOnly)).intersection(usable)
        }
        for path in reads { rules.append(PathRule(path: path, access: fitting(.read, path))) }
        for path in writes { rules.append(PathRule(path: path, access: fitting(.write, path))) }
        for path in devices { rules.append(PathRule(path: path, access: usable.intersection([.readFile, .writeFile]))) }
        for path in executables { rules.append(PathRule(path: path, access: usable.intersection([.execute, .readFile]))) }

        var netHandled: LandlockNetAccess = []
        var ports: [PortRule] = []
        var scoped: LandlockScope = []
        var missing: [String] = []
        if abi >= 4 {
            if networkAccess != "full" {
                netHandled = [.bindTCP, .connectTCP]
                if let proxyPort { ports.append(PortRule(port: proxyPort, access: .connectTCP)) }
            }
        } else {
            missing.append("TCP bind/connect rules (ABI 4): covered by the network namespace")
        }
        if abi >= 6 {
            scoped = [.abstractUnixSocket, .signal]
        } else {
            missing.append("abstract-socket and signal scoping (ABI 6): covered by the network and PID namespaces")
        }
        if abi < 3 { missing.append("TRUNCATE (ABI 3): covered by read-only mounts") }
        if abi < 5 { missing.append("IOCTL_DEV (ABI 5): covered by seccomp's ioctl rules") }
        return LandlockPlan(
            hostABI: hostABI, abi: abi, handledFileSystem: usable, handledNetwork: netHandled,
            scoped: scoped, pathRules: rules, portRules: ports, notAvailable: missing)
    }
}
