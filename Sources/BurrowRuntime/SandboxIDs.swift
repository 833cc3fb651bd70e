import BurrowSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A host uid/gid leased to one live sandbox, so no two sandboxes share an
/// identity (files, RLIMIT_NPROC, signals). The lease is an exclusive flock(2)
/// on /run/burrow/ids/<id>, held until the lease is released or the process
/// ends, so it is never left behind by a crash.
public final class SandboxIDLease: @unchecked Sendable {
    public let id: UInt32
    private let descriptor: FileDescriptor

    init(id: UInt32, descriptor: FileDescriptor) {
        self.id = id
        self.descriptor = descriptor
    }

    deinit { try? descriptor.close() }

    /// Where the lock files live.
    public static let directory = "/run/burrow/ids"

    /// Leases a free id from `range`, starting at a random one.
    /// - Throws: `RunError.preparation` when the lock directory is unusable or every id is taken.
    public static func acquire(in range: ClosedRange<UInt32>, directory: String = SandboxIDLease.directory) throws(RunError) -> SandboxIDLease {
        if mkdir("/run/burrow", 0o755) != 0 && errno != EEXIST || mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw .preparation("cannot create \(directory) for sandbox id leases: \(errnoName(errno))")
        }
        let count = UInt64(range.upperBound - range.lowerBound) + 1
        let start = UInt64.random(in: 0..<count)
        for step in 0..<min(count, 4096) {
            let id = range.lowerBound + UInt32((start + step) % count)
            let fd = open("\(directory)/\(id)", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { throw .preparation("cannot open \(directory)/\(id): \(errnoName(errno))") }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return SandboxIDLease(id: id, descriptor: FileDescriptor(rawValue: fd)) }
            close(fd)
        }
        throw .preparation("no free sandbox id in \(range.lowerBound)-\(range.upperBound): too many live sandboxes")
    }
}
