import BurrowSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An exclusive flock(2) on a file under /run/burrow, held until released or
/// until the process ends: a crash never leaves a lease behind, and anyone
/// can tell a live owner from a dead one by trying the lock.
final class Lease {
    let path: String
    let descriptor: FileDescriptor

    private init(path: String, descriptor: FileDescriptor) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { try? descriptor.close() }

    /// Takes the lease on `path`, or returns nil when a live process holds it.
    static func take(_ path: String) throws(RunError) -> Lease? {
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { throw .preparation("cannot open \(path): \(errnoName(errno))") }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                close(fd)
                return nil
            }
            // The owner may have unlinked the file (end()) between our open and
            // our lock: a lock on a file no longer at `path` holds nothing.
            var held = stat()
            var named = stat()
            if fstat(fd, &held) == 0, stat(path, &named) == 0, held.st_dev == named.st_dev, held.st_ino == named.st_ino {
                return Lease(path: path, descriptor: FileDescriptor(rawValue: fd))
            }
            close(fd)
        }
    }

    /// Creates `/run/burrow/<name>` (mode 0700) for lease files.
    static func directory(_ name: String) throws(RunError) -> String {
        let path = "/run/burrow/" + name
        if mkdir("/run/burrow", 0o755) != 0 && errno != EEXIST || mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw .preparation("cannot create \(path) for leases: \(errnoName(errno))")
        }
        return path
    }

    /// Removes the file while still holding the lock (whoever opens the path
    /// next gets a fresh, free file), then releases it.
    func end() {
        unlink(path)
    }
}

/// A host uid/gid leased to one live sandbox, so no two sandboxes share an
/// identity (files, RLIMIT_NPROC, signals): /run/burrow/ids/<id>.
package final class SandboxIDLease: @unchecked Sendable {
    package let id: UInt32
    private let lease: Lease

    private init(id: UInt32, lease: Lease) {
        self.id = id
        self.lease = lease
    }

    /// Leases a free id from `range`, starting at a random one.
    /// - Throws: `RunError.preparation` when the lock directory is unusable or every id is taken.
    package static func acquire(in range: ClosedRange<UInt32>) throws(RunError) -> SandboxIDLease {
        let directory = try Lease.directory("ids")
        let count = UInt64(range.upperBound - range.lowerBound) + 1
        let start = UInt64.random(in: 0..<count)
        for step in 0..<min(count, 4096) {
            let id = range.lowerBound + UInt32((start + step) % count)
            if let lease = try Lease.take("\(directory)/\(id)") { return SandboxIDLease(id: id, lease: lease) }
        }
        throw .preparation("no free sandbox id in \(range.lowerBound)-\(range.upperBound): too many live sandboxes")
    }
}

/// Marks an invocation's cgroup as supervised: /run/burrow/invocations/<id>
/// is locked for as long as its supervisor lives. The start-up sweep treats
/// an invocation cgroup whose lease it can take as left behind.
final class InvocationLease {
    let lease: Lease

    private init(lease: Lease) { self.lease = lease }

    static func acquire(_ invocation: String) throws(RunError) -> InvocationLease {
        guard isValidName(invocation) else { throw .preparation("invalid invocation id \(invocation)") }
        guard let lease = try Lease.take(try Lease.directory("invocations") + "/" + invocation) else {
            throw .preparation("invocation \(invocation) is already running")
        }
        return InvocationLease(lease: lease)
    }

    /// Takes the lease of an invocation found on the host, or nil while its supervisor lives.
    static func takeOver(_ invocation: String) throws(RunError) -> InvocationLease? {
        guard isValidName(invocation) else { return nil }
        return try Lease.take(try Lease.directory("invocations") + "/" + invocation).map(InvocationLease.init)
    }

    /// Invocation ids name files and cgroups.
    static func isValidName(_ name: String) -> Bool { SafeName.isValid(name) }

    func end() { lease.end() }
}
