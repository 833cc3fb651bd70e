import CBurrowSystem
package import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Typed wrappers for the system calls the runtime uses to supervise a sandbox.
package enum Kernel {
    private static func check(_ rc: Int32) throws(Errno) -> Int32 {
        if rc < 0 { throw Errno(rawValue: -rc) }
        return rc
    }

    /// Opens `path` without following any symlink on the way (or magic links).
    /// The corresponding syscall is `openat2(2)` with `RESOLVE_NO_SYMLINKS`.
    package static func openNoFollow(_ path: String, flags: Int32, beneath directory: FileDescriptor? = nil) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try check(brw_open_nofollow(directory?.rawValue ?? AT_FDCWD, path, UInt64(flags), directory == nil ? 0 : 1)))
    }

    /// A detached copy of the mount at `fd`, with `attributes` (`MOUNT_ATTR_*`)
    /// set on it and, when `recursive`, on every submount. The corresponding
    /// syscalls are `open_tree(2)` with `OPEN_TREE_CLONE` and `mount_setattr(2)`.
    /// With `idmap`, the copy is an idmapped mount through that user namespace.
    package static func cloneMount(_ fd: FileDescriptor, recursive: Bool, attributes: UInt64, idmap: FileDescriptor? = nil) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try check(brw_clone_mount(fd.rawValue, recursive ? 1 : 0, attributes, idmap?.rawValue ?? -1)))
    }

    /// A user namespace mapping `inside` ids to `outside` ones, for idmapped
    /// mounts. A throwaway child holds it while its maps are written.
    package static func idmapNamespace(uid: (inside: UInt32, outside: UInt32), gid: (inside: UInt32, outside: UInt32)) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try check(brw_idmap_userns(uid.inside, uid.outside, gid.inside, gid.outside)))
    }

    /// The corresponding syscall is `pidfd_send_signal(2)`.
    package static func sendSignal(_ signal: Int32, to pidfd: FileDescriptor) throws(Errno) {
        _ = try check(brw_pidfd_send_signal(pidfd.rawValue, signal))
    }

    /// Reaps the process behind `pidfd`, returning its wait status, or nil
    /// with `noHang` when it is still running. The corresponding syscall is
    /// `waitid(2)` with `P_PIDFD`.
    package static func wait(_ pidfd: FileDescriptor, noHang: Bool = false) throws(Errno) -> WaitStatus? {
        var status: Int32 = 0
        let pid = try check(brw_pidfd_wait(pidfd.rawValue, noHang ? WNOHANG : 0, &status))
        return pid == 0 ? nil : WaitStatus(raw: status)
    }

    /// The next seccomp user notification. The corresponding call is
    /// `ioctl(SECCOMP_IOCTL_NOTIF_RECV)`.
    package static func receiveNotification(_ listener: FileDescriptor) throws(Errno) -> SeccompNotification {
        var n = brw_notification()
        _ = try check(brw_notify_receive(listener.rawValue, &n))
        let args = withUnsafeBytes(of: n.args) { Array($0.bindMemory(to: UInt64.self)) }
        return SeccompNotification(id: n.id, pid: n.pid, syscall: n.nr, architecture: n.arch, arguments: args)
    }

    /// Makes the notified call fail with `errno`. The corresponding call is
    /// `ioctl(SECCOMP_IOCTL_NOTIF_SEND)`.
    package static func deny(_ notification: SeccompNotification, errno: Int32, on listener: FileDescriptor) throws(Errno) {
        _ = try check(brw_notify_deny(listener.rawValue, notification.id, errno))
    }

    /// Blocks `signals` in the calling thread and returns a non-blocking
    /// descriptor that reads them. The corresponding syscall is `signalfd(2)`.
    package static func signalDescriptor(_ signals: [Int32]) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try check(brw_signalfd(signals, Int32(signals.count))))
    }

    /// The next signal waiting on a signalfd, or nil when none is.
    package static func nextSignal(_ signalfd: FileDescriptor) -> Int32? {
        let sig = brw_signalfd_read(signalfd.rawValue)
        return sig > 0 ? sig : nil
    }

    /// A connected `SOCK_SEQPACKET` pair, close-on-exec.
    package static func socketPair() throws(Errno) -> (FileDescriptor, FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else { throw Errno(rawValue: errno) }
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    /// A close-on-exec pipe: (read end, write end).
    package static func pipe() throws(Errno) -> (FileDescriptor, FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        _ = try check(brw_pipe_cloexec(&fds))
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    /// A non-blocking, close-on-exec eventfd (a counter another thread can wake a poll with).
    package static func eventDescriptor() throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try check(brw_eventfd()))
    }

    /// Use of the file system behind `fd`. The corresponding syscall is `fstatfs(2)`.
    package static func fileSystemUsage(_ fd: FileDescriptor) throws(Errno) -> FileSystemUsage {
        var u = FileSystemUsage(bytesUsed: 0, inodesUsed: 0, inodes: 0, noSpaceLeft: false, noInodeLeft: false)
        var full: Int32 = 0
        _ = try check(brw_fs_usage(fd.rawValue, &u.bytesUsed, &u.inodesUsed, &u.inodes, &full))
        u.noSpaceLeft = full == 1
        u.noInodeLeft = full == 2
        return u
    }

    /// The bytes an unprivileged writer may still use on the file system
    /// holding `fd` (`f_bavail`), and its size (`fstatvfs(3)`; an `O_PATH`
    /// descriptor will do). Sizes saturate rather than overflow.
    package static func diskSpace(_ fd: FileDescriptor) throws(Errno) -> (available: UInt64, total: UInt64) {
        var v = statvfs()
        guard fstatvfs(fd.rawValue, &v) == 0 else { throw Errno(rawValue: errno) }
        let unit = UInt64(v.f_frsize)
        func bytes(_ blocks: UInt64) -> UInt64 {
            let (product, overflow) = blocks.multipliedReportingOverflow(by: unit)
            return overflow ? .max : product
        }
        return (bytes(UInt64(v.f_bavail)), bytes(UInt64(v.f_blocks)))
    }

    /// Monotonic time in nanoseconds (`CLOCK_MONOTONIC`).
    /// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns
    /// the soft limit now in force. Children set their own (the sandbox's
    /// plan carries max_open_files). The corresponding syscall is `setrlimit(2)`.
    package static func raiseOpenFileLimit() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }

    /// Lowers the calling thread's scheduling priority to nice `value`
    /// (Linux keeps one per thread). It cannot be raised again without
    /// CAP_SYS_NICE: use it on threads that only ever run such work. The
    /// corresponding syscall is `setpriority(2)`.
    package static func lowerThreadPriority(to value: Int32 = 10) {
        _ = brw_thread_nice(value)
    }

    package static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Wall-clock time in nanoseconds since the epoch (`CLOCK_REALTIME`), as file times are kept.
    package static func realtimeNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

/// A process's end, decoded from a wait status.
package enum WaitStatus: Sendable, Equatable {
    case exited(Int32)
    case signaled(Int32, coreDumped: Bool)

    package init(raw: Int32) {
        if raw & 0x7f == 0 {
            self = .exited((raw >> 8) & 0xff)
        } else {
            self = .signaled(raw & 0x7f, coreDumped: raw & 0x80 != 0)
        }
    }

    /// The shell convention: the code, or 128 + the signal.
    package var exitCode: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let sig, _): 128 + sig
        }
    }
}

/// A system call stopped by a seccomp filter, waiting for the supervisor's answer.
package struct SeccompNotification: Sendable {
    package var id: UInt64
    /// The caller's pid in the supervisor's PID namespace.
    package var pid: UInt32
    package var syscall: Int32
    package var architecture: UInt32
    package var arguments: [UInt64]
}

/// How full a file system is (`fstatfs(2)`).
package struct FileSystemUsage: Sendable, Equatable {
    package var bytesUsed: UInt64
    package var inodesUsed: UInt64
    package var inodes: UInt64
    package var noSpaceLeft: Bool
    package var noInodeLeft: Bool
}

extension Kernel {
    private final class ThreadBody {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Runs `body` on a new detached thread (one the Swift concurrency pool
    /// does not own: for loops that block in the kernel).
    package static func detachedThread(_ body: @escaping @Sendable () -> Void) throws(Errno) {
        let box = Unmanaged.passRetained(ThreadBody(body))
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                // pthread_create passes back the pointer it was given: never nil.
                guard let raw else { return nil }
                Unmanaged<ThreadBody>.fromOpaque(raw).takeRetainedValue().body()
                return nil
            }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw Errno(rawValue: rc)
        }
        pthread_detach(thread)
    }
}
