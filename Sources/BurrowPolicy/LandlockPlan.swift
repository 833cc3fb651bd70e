/// Landlock rules mirroring the file plan: a second, unprivileged layer under
/// the mount table. Access rights are named as in <linux/landlock.h>.
public struct LandlockPlan: Sendable, Codable, Equatable {
    public struct PathRule: Sendable, Codable, Equatable {
        public var path: String
        public var access: [String]
    }
    public struct PortRule: Sendable, Codable, Equatable {
        public var port: UInt16
        public var access: [String]
    }

    /// The ABI this host offers (nil: Landlock unavailable).
    public var hostABI: Int?
    /// The ABI the rules are written for: the best the host offers.
    public var abi: Int?
    public var handledFileSystem: [String]
    public var handledNetwork: [String]
    public var scoped: [String]
    public var pathRules: [PathRule]
    public var portRules: [PortRule]
    /// What a newer ABI would add, and which other layer covers it meanwhile.
    public var notAvailable: [String]
}

/// Landlock access rights and the ABI that introduced each.
enum LandlockRight: String, CaseIterable {
    case execute = "EXECUTE", writeFile = "WRITE_FILE", readFile = "READ_FILE", readDir = "READ_DIR"
    case removeDir = "REMOVE_DIR", removeFile = "REMOVE_FILE", makeChar = "MAKE_CHAR", makeDir = "MAKE_DIR"
    case makeReg = "MAKE_REG", makeSock = "MAKE_SOCK", makeFifo = "MAKE_FIFO", makeBlock = "MAKE_BLOCK"
    case makeSym = "MAKE_SYM", refer = "REFER", truncate = "TRUNCATE", ioctlDev = "IOCTL_DEV"

    var abi: Int {
        switch self {
        case .refer: 2
        case .truncate: 3
        case .ioctlDev: 5
        default: 1
        }
    }

    /// Bit in `LANDLOCK_ACCESS_FS_*`.
    var bit: UInt64 { UInt64(1) << UInt64(Self.allCases.firstIndex(of: self) ?? 0) }

    static let read: [LandlockRight] = [.readFile, .readDir]
    /// The rights the kernel accepts on a rule for a non-directory (others are EINVAL).
    static let fileOnly: Set<LandlockRight> = [.execute, .writeFile, .readFile, .truncate, .ioctlDev]
    static let write: [LandlockRight] = [
        .readFile, .readDir, .writeFile, .removeDir, .removeFile, .makeDir, .makeReg, .makeSym, .makeFifo,
        .makeSock, .refer, .truncate,
    ]
}

extension LandlockPlan {
    /// Builds the rules for the given grants at the host's best ABI.
    /// `isDirectory` tells which rule paths are directories: a rule on any
    /// other file may only carry file rights.
    static func make(
        hostABI: Int?, reads: [String], writes: [String], executables: [String], devices: [String],
        networkAccess: String, proxyPort: UInt16?, isDirectory: (String) -> Bool
    ) -> LandlockPlan {
        let abi = hostABI
        let usable = LandlockRight.allCases.filter { $0.abi <= (abi ?? 0) }
        func names(_ rights: [LandlockRight], extra: [LandlockRight] = []) -> [String] {
            (rights + extra).filter(usable.contains).map(\.rawValue)
        }
        var rules: [PathRule] = []
        func fitting(_ rights: [LandlockRight], _ path: String) -> [LandlockRight] {
            isDirectory(path) ? rights : rights.filter(LandlockRight.fileOnly.contains)
        }
        for path in reads { rules.append(PathRule(path: path, access: names(fitting(LandlockRight.read, path)))) }
        for path in writes { rules.append(PathRule(path: path, access: names(fitting(LandlockRight.write, path)))) }
        for path in devices { rules.append(PathRule(path: path, access: names([.readFile, .writeFile]))) }
        for path in executables { rules.append(PathRule(path: path, access: names([.execute, .readFile]))) }

        var netHandled: [String] = []
        var ports: [PortRule] = []
        var scoped: [String] = []
        var missing: [String] = []
        if let abi, abi >= 4 {
            if networkAccess != "full" {
                netHandled = ["BIND_TCP", "CONNECT_TCP"]
                if let proxyPort { ports.append(PortRule(port: proxyPort, access: ["CONNECT_TCP"])) }
            }
        } else {
            missing.append("TCP bind/connect rules (ABI 4): covered by the network namespace")
        }
        if let abi, abi >= 6 {
            scoped = ["ABSTRACT_UNIX_SOCKET", "SIGNAL"]
        } else {
            missing.append("abstract-socket and signal scoping (ABI 6): covered by the network and PID namespaces")
        }
        if (abi ?? 0) < 3 { missing.append("TRUNCATE (ABI 3): covered by read-only mounts") }
        if (abi ?? 0) < 5 { missing.append("IOCTL_DEV (ABI 5): covered by seccomp's ioctl rules") }
        return LandlockPlan(
            hostABI: hostABI, abi: abi, handledFileSystem: usable.map(\.rawValue), handledNetwork: netHandled,
            scoped: scoped, pathRules: rules, portRules: ports, notAvailable: abi == nil ? [] : missing)
    }
}
