package import BurrowProfile
import BurrowSystem

/// `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`: the kernel's values, which
/// `MOUNT_ATTR_*` shares (as it does `MS_RDONLY`, 1, kept in `readOnly`).
package struct MountFlags: KernelFlags {
    package let rawValue: UInt64
    package init(rawValue: UInt64) { self.rawValue = rawValue }

    package static let noSetuid = Self(rawValue: 2)
    package static let noDevices = Self(rawValue: 4)
    package static let noExecute = Self(rawValue: 8)

    package static let names: [(flag: Self, name: String)] = [(.noSetuid, "nosuid"), (.noDevices, "nodev"), (.noExecute, "noexec")]
}

/// How one mount is made: its flags, whether it reaches submounts and maps
/// owners, and what a file system (tmpfs, proc) or a created file is told.
/// Shown (and read back) as mount(8)-style options, derived from the values:
/// `ro` or `rw`, the flags, `rec`, `idmap`, then `mode=`, `size=`,
/// `nr_inodes=`, `subset=pid`, `hidepid=invisible`.
package struct MountOptions: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Read-only, read-write, or (a created file, a symlink) not a mount.
    package var readOnly: Bool?
    package var flags: MountFlags
    /// A bind applies to every submount of its source (`AT_RECURSIVE`).
    package var recursive: Bool
    /// A bind maps the source's owner to the sandbox's ids.
    package var idmap: Bool
    /// tmpfs and created files: the permission bits.
    package var mode: UInt32?
    /// tmpfs: its size and inode count.
    package var size: ByteSize?
    package var inodes: UInt64?
    /// proc: only this PID namespace's processes, and none of theirs it may not see.
    package var processesOnly: Bool

    package init(
        readOnly: Bool? = nil, _ flags: MountFlags = [], recursive: Bool = false, idmap: Bool = false, mode: UInt32? = nil, size: ByteSize? = nil,
        inodes: UInt64? = nil, processesOnly: Bool = false
    ) {
        self.readOnly = readOnly
        self.flags = flags
        self.recursive = recursive
        self.idmap = idmap
        self.mode = mode
        self.size = size
        self.inodes = inodes
        self.processesOnly = processesOnly
    }

    /// The flags mount(2) and mount_setattr(2) get.
    package var kernelFlags: UInt64 { (readOnly == true ? 1 : 0) | flags.rawValue }

    /// The data string a file system gets (`mode=0755,size=1M`).
    package var fileSystemData: String { dataOptions.joined(separator: ",") }

    private var dataOptions: [String] {
        var out: [String] = []
        if let mode {
            let octal = String(mode, radix: 8)
            out.append("mode=" + String(repeating: "0", count: max(0, 4 - octal.count)) + octal)
        }
        if let size { out.append("size=\(size)") }
        if let inodes { out.append("nr_inodes=\(inodes)") }
        if processesOnly { out += ["subset=pid", "hidepid=invisible"] }
        return out
    }

    /// The options as mount(8) would write them.
    package var names: [String] {
        var out: [String] = readOnly.map { [$0 ? "ro" : "rw"] } ?? []
        out += flags.flagNames
        if recursive { out.append("rec") }
        if idmap { out.append("idmap") }
        return out + dataOptions
    }

    package var description: String { names.joined(separator: ",") }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(names)
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        var options = MountOptions()
        for name in try c.decode([String].self) {
            guard options.read(name) else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown mount option \(name)") }
        }
        self = options
    }

    private mutating func read(_ name: String) -> Bool {
        let (key, value) = name.firstIndex(of: "=").map { (String(name[..<$0]), String(name[name.index(after: $0)...])) } ?? (name, "")
        switch key {
        case "ro", "rw": readOnly = key == "ro"
        case "rec": recursive = true
        case "idmap": idmap = true
        case "mode": mode = UInt32(value, radix: 8)
        case "size": size = ByteSize(parsing: value)
        case "nr_inodes": inodes = UInt64(value)
        case "subset", "hidepid": processesOnly = true
        default:
            guard let flag = MountFlags.names.first(where: { $0.name == name })?.flag else { return false }
            flags.insert(flag)
            return true
        }
        return value.isEmpty == (key == "ro" || key == "rw" || key == "rec" || key == "idmap")
            && (key != "mode" || mode != nil) && (key != "size" || size != nil) && (key != "nr_inodes" || inodes != nil)
    }
}
