import BurrowSystem
package import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One invocation's cgroups on a v1 (or hybrid) host: a directory
/// `burrow/tools/<invocation>` beneath Burrow's own cgroup in each hierarchy
/// it uses (memory, pids, cpuacct, freezer). Every file is reached through the
/// invocation directory's descriptor.
package final class CgroupV1Group {
    /// One hierarchy's invocation directory.
    struct Directory {
        var controller: String
        var path: String
        var fd: FileDescriptor
        /// The descriptor of `burrow/tools`, to remove the invocation directory.
        var parent: FileDescriptor
        var name: String
    }

    private var directories: [String: Directory] = [:]

    /// Creates the invocation's directory in the hierarchy of each controller.
    /// - Parameter hierarchies: controller name → that hierarchy's own directory (Burrow's cgroup).
    package init(invocation: String, hierarchies: [String: String]) throws(CgroupError) {
        for (controller, own) in hierarchies.sorted(by: { $0.key < $1.key }) {
            do {
                directories[controller] = try Self.create(controller: controller, own: own, invocation: invocation)
            } catch {
                remove()
                throw error
            }
        }
    }

    deinit {
        for d in directories.values {
            try? d.fd.close()
            try? d.parent.close()
        }
    }

    private static func create(controller: String, own: String, invocation: String) throws(CgroupError) -> Directory {
        var fd = try openDirectory(AT_FDCWD, own, display: own)
        var path = own
        for component in ["burrow", "tools"] {
            path += "/" + component
            if mkdirat(fd.rawValue, component, 0o755) != 0 && errno != EEXIST {
                let e = Errno(rawValue: errno)
                try? fd.close()
                throw .io(op: "create", path: path, e)
            }
            let next = try openDirectory(fd.rawValue, component, display: path)
            try? fd.close()
            fd = next
        }
        guard mkdirat(fd.rawValue, invocation, 0o755) == 0 else {
            let e = Errno(rawValue: errno)
            try? fd.close()
            throw .io(op: "create", path: path + "/" + invocation, e)
        }
        let dir = try openDirectory(fd.rawValue, invocation, display: path + "/" + invocation)
        return Directory(controller: controller, path: path + "/" + invocation, fd: dir, parent: fd, name: invocation)
    }

    private static func openDirectory(_ at: Int32, _ name: String, display: String) throws(CgroupError) -> FileDescriptor {
        let fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .io(op: "open", path: display, Errno(rawValue: errno)) }
        return FileDescriptor(rawValue: fd)
    }

    /// The controllers this group has a directory for.
    package var controllers: [String] { directories.keys.sorted() }

    /// Writes `value` to `file` of `controller`'s directory.
    package func write(_ controller: String, _ file: String, _ value: String) throws(CgroupError) {
        guard let d = directories[controller] else { throw .unsupported("no \(controller) hierarchy for this invocation") }
        let fd = openat(d.fd.rawValue, file, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .io(op: "open", path: d.path + "/" + file, Errno(rawValue: errno)) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else { throw .io(op: "write \(value) to", path: d.path + "/" + file, Errno(rawValue: errno)) }
    }

    /// Reads `file` of `controller`'s directory.
    package func read(_ controller: String, _ file: String) -> String? {
        guard let d = directories[controller] else { return nil }
        let fd = openat(d.fd.rawValue, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = Glibc.read(fd, &buffer, buffer.count)
        return n >= 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }

    /// A number from a file that holds one.
    package func number(_ controller: String, _ file: String) -> UInt64? {
        read(controller, file).flatMap { UInt64($0.trimmed) }
    }

    /// A counter from a flat-keyed file (`oom_kill 1`, `max 3`).
    package func counter(_ controller: String, _ file: String, key: String) -> UInt64? {
        guard let text = read(controller, file) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == key { return UInt64(parts[1]) }
        }
        return nil
    }

    /// Places process `pid` (and so everything it will start) in every hierarchy.
    package func join(_ pid: Int32) throws(CgroupError) {
        for controller in controllers { try write(controller, "cgroup.procs", "\(pid)") }
    }

    /// Kills every task: freeze (so nothing forks meanwhile), SIGKILL each, thaw.
    package func killAll() {
        let frozen = (try? write("freezer", "freezer.state", "FROZEN")) != nil
        for controller in controllers {
            for line in (read(controller, "cgroup.procs") ?? "").split(separator: "\n") {
                if let pid = pid_t(line) { kill(pid, SIGKILL) }
            }
        }
        if frozen { try? write("freezer", "freezer.state", "THAWED") }
    }

    /// Removes the invocation directories once they are empty (retrying
    /// briefly while the last tasks finish exiting).
    package func remove() {
        for (controller, d) in directories {
            var tries = 0
            while unlinkat(d.parent.rawValue, d.name, AT_REMOVEDIR) != 0 && errno == EBUSY && tries < 200 {
                if tries == 20 { killAll() }
                tries += 1
                usleep(1000)
            }
            try? d.fd.close()
            try? d.parent.close()
            directories[controller] = nil
        }
    }
}
