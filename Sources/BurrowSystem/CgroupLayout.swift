/// How the host mounts cgroups, and where the calling process sits in them.
///
/// Parsed from `/proc/self/mountinfo` and `/proc/self/cgroup`; the parsers take
/// strings so they are testable against any host's files.
package struct CgroupLayout: Codable, Sendable, Equatable {
    package enum Mode: String, Codable, Sendable {
        /// Only cgroup2, at /sys/fs/cgroup (every current distribution).
        case unified
        /// v1 controllers plus a cgroup2 mount (often with no controllers).
        case hybrid
        /// v1 controllers only.
        case legacy
        /// No cgroup file system mounted.
        case none
    }

    /// One mounted v1 hierarchy and this process's place in it.
    package struct V1Hierarchy: Codable, Sendable, Equatable {
        package var controllers: [String]
        package var mountPoint: String
        /// This process's cgroup relative to the hierarchy root ("/" for the root).
        package var ownPath: String
        /// The directory Burrow would create children in.
        package var ownDirectory: String { join(mountPoint, ownPath) }
    }

    package var mode: Mode
    /// Where cgroup2 is mounted, if anywhere.
    package var v2MountPoint: String?
    /// This process's cgroup2 path ("0::" line of /proc/self/cgroup).
    package var v2OwnPath: String?
    package var v1: [V1Hierarchy]

    package init(mode: Mode, v2MountPoint: String?, v2OwnPath: String?, v1: [V1Hierarchy]) {
        self.mode = mode
        self.v2MountPoint = v2MountPoint
        self.v2OwnPath = v2OwnPath
        self.v1 = v1
    }

    /// The cgroup2 directory of this process, if cgroup2 is mounted.
    package var v2OwnDirectory: String? {
        guard let mount = v2MountPoint, let own = v2OwnPath else { return nil }
        return join(mount, own)
    }

    /// The v1 hierarchy that carries `controller`, if mounted.
    package func v1Hierarchy(for controller: String) -> V1Hierarchy? {
        v1.first { $0.controllers.contains(controller) }
    }

    /// Builds the layout from the text of `/proc/self/mountinfo` and `/proc/self/cgroup`.
    package static func parse(mountinfo: String, procSelfCgroup: String) -> CgroupLayout {
        var v2Mount: String?
        var v1Mounts: [(controllers: [String], mountPoint: String, root: String)] = []
        for line in mountinfo.split(separator: "\n") {
            // "36 25 0:32 / /sys/fs/cgroup/memory rw,relatime shared:1 - cgroup cgroup rw,memory"
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3 else { continue }
            let root = unescapeMountField(String(left[3]))
            let mountPoint = unescapeMountField(String(left[4]))
            switch right[0] {
            case "cgroup2":
                if v2Mount == nil || mountPoint == "/sys/fs/cgroup" { v2Mount = mountPoint }
            case "cgroup":
                let options = right[2].split(separator: ",").map(String.init)
                let known = options.filter { !["rw", "ro"].contains($0) && !$0.contains("=") }
                let named = options.compactMap { $0.hasPrefix("name=") ? String($0) : nil }
                v1Mounts.append((known + named, mountPoint, root))
            default:
                continue
            }
        }
        var v2Own: String?
        var v1: [V1Hierarchy] = []
        for line in procSelfCgroup.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let path = String(fields[2])
            if fields[0] == "0" && fields[1].isEmpty {
                v2Own = path
                continue
            }
            let controllers = fields[1].split(separator: ",").map(String.init)
            guard
                let mount = v1Mounts.first(where: { m in
                    !controllers.isEmpty && controllers.allSatisfy(m.controllers.contains)
                })
            else { continue }
            // A mount of a subtree (root != "/") shows paths relative to that subtree.
            let relative =
                mount.root == "/" ? path : (path.hasPrefix(mount.root) ? String(path.dropFirst(mount.root.count)) : path)
            v1.append(
                V1Hierarchy(
                    controllers: controllers, mountPoint: mount.mountPoint,
                    ownPath: relative.isEmpty ? "/" : relative))
        }
        let mode: Mode =
            switch (v2Mount != nil, !v1.isEmpty) {
            case (true, false): .unified
            case (true, true): .hybrid
            case (false, true): .legacy
            case (false, false): .none
            }
        return CgroupLayout(mode: mode, v2MountPoint: v2Mount, v2OwnPath: v2Own, v1: v1)
    }
}

/// Joins a mount point and a cgroup path that starts with "/".
func join(_ mount: String, _ path: String) -> String {
    if path == "/" || path.isEmpty { return mount }
    return mount.hasSuffix("/") ? mount + path.dropFirst() : mount + path
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
func unescapeMountField(_ field: String) -> String {
    guard field.contains("\\") else { return field }
    var out: [UInt8] = []
    let bytes = Array(field.utf8)
    var i = 0
    while i < bytes.count {
        if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count {
            let digits = bytes[(i + 1)...(i + 3)]
            if digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }) {
                out.append(digits.reduce(0) { $0 &* 8 &+ ($1 - UInt8(ascii: "0")) })
                i += 4
                continue
            }
        }
        out.append(bytes[i])
        i += 1
    }
    return String(decoding: out, as: UTF8.self)
}
