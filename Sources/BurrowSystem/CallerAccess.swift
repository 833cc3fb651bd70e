import CBurrowSystem
package import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Who is asking, as the kernel checks file access: a user id, its primary
/// group and its supplementary groups (a burrowd caller, from its socket
/// credentials and the user database).
package struct CallerCredentials: Sendable, Equatable, Codable, CustomStringConvertible {
    package var uid: UInt32
    package var gid: UInt32
    package var groups: [UInt32]

    package init(uid: UInt32, gid: UInt32, groups: [UInt32]) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    /// The user's primary group and every group it is a member of, as login gives them.
    package static func ofUser(_ uid: UInt32, primary gid: UInt32) -> CallerCredentials {
        CallerCredentials(uid: uid, gid: gid, groups: UserDatabase.groups(ofUser: uid, primary: gid).sorted())
    }

    package var description: String {
        let name = UserDatabase.userName(uid).map { " (\($0))" } ?? ""
        return "uid \(uid)\(name)"
    }
}

/// Paths opened with a caller's rights, not burrowd's: the file-system
/// identity of the calling thread only (fsuid, fsgid, supplementary groups;
/// the kernel keeps them per thread, and leaving fsuid 0 drops the thread's
/// CAP_DAC_OVERRIDE and its kin) is the caller's while the path is walked and
/// the access checked, then root's again. What is opened is a descriptor: a
/// bind made from it is of the file that was checked, whatever is renamed or
/// swapped at that path afterwards.
package enum CallerAccess {
    /// The access a grant needs (`access(2)`'s R_OK, W_OK, X_OK).
    package struct Access: OptionSet, Sendable, CustomStringConvertible {
        package let rawValue: Int32
        package init(rawValue: Int32) { self.rawValue = rawValue }
        package static let read = Access(rawValue: R_OK)
        package static let write = Access(rawValue: W_OK)
        package static let execute = Access(rawValue: X_OK)

        package var description: String {
            [(Access.read, "read"), (.write, "write"), (.execute, "execute")].filter { contains($0.0) }.map(\.1).joined(separator: " and ")
        }
    }

    /// Why a path was not opened for the caller.
    package enum Failure: Error, Equatable, CustomStringConvertible {
        /// The caller may not reach the path, or not with that access.
        case denied(path: String, caller: String, access: Access)
        /// A component of the path is a symlink, which is never followed.
        case symlink(path: String)
        case missing(path: String)
        /// A write grant of a directory that is not the caller's own (owner
        /// and group): what the tool creates there would belong to its
        /// sandbox uid, which other users' runs lease too, not the caller.
        case notOwned(path: String, caller: String)
        /// The thread could not take the caller's identity (burrowd is not root).
        case identity(Errno)
        case other(path: String, Errno)

        package static func == (a: Failure, b: Failure) -> Bool { a.description == b.description }

        package var description: String {
            switch self {
            case .denied(let path, let caller, let access): "\(caller) may not \(access) \(path)"
            case .symlink(let path): "\(path): a path component is a symlink, which Burrow does not follow"
            case .missing(let path): "\(path) does not exist"
            case .notOwned(let path, let caller):
                "\(path) is not \(caller)'s own (its owner and group): a write grant must be, so that what the tool writes there is the caller's (an id-mapped mount), not its sandbox uid's"
            case .identity(let errno): "cannot take the caller's file-system identity: \(errnoName(errno.rawValue)) (burrowd must run as root)"
            case .other(let path, let errno): "\(path): \(errnoName(errno.rawValue)) (\(errno))"
            }
        }
    }

    /// What the questions below need of a file: its owner, its group, whether it is a directory.
    package struct Status: Sendable {
        package var uid: UInt32
        package var gid: UInt32
        package var isDirectory: Bool

        package init(uid: UInt32, gid: UInt32, isDirectory: Bool) {
            self.uid = uid
            self.gid = gid
            self.isDirectory = isDirectory
        }
    }

    /// The status of the file `fd` (one fstat for the questions below); nil when it cannot be read.
    package static func status(_ fd: FileDescriptor) -> Status? {
        var st = stat()
        guard fstat(fd.rawValue, &st) == 0 else { return nil }
        return Status(uid: st.st_uid, gid: st.st_gid, isDirectory: st.st_mode & S_IFMT == S_IFDIR)
    }

    /// Whether a file is `caller`'s own: its owner, and a group of its.
    package static func owns(_ caller: CallerCredentials, _ st: Status) -> Bool {
        st.uid == caller.uid && (st.gid == caller.gid || caller.groups.contains(st.gid))
    }

    /// Whether a writable grant of a file would create files: a directory
    /// (a device or an existing file is written in place, keeping its owner).
    package static func createsFiles(_ st: Status) -> Bool { st.isDirectory }

    /// Runs `body` on this thread with `caller`'s file-system identity, and
    /// gives the thread root's back before returning (a thread that cannot
    /// be given it back is not left to serve anyone: the process stops).
    /// `body` must not start a thread or a process: a new one inherits the
    /// identity of the thread that made it, and would keep the caller's.
    package static func asCaller<T, E: Error>(_ caller: CallerCredentials, _ body: () throws(E) -> T) throws(Failure) -> Result<T, E> {
        var none: UInt32 = 0
        let needed = brw_thread_groups(&none, 0)  // getgroups(0, …): how many
        guard needed >= 0 else { throw .identity(Errno(rawValue: -needed)) }
        var saved = [UInt32](repeating: 0, count: Int(needed) + 1)
        let count = brw_thread_groups(&saved, Int32(saved.count))
        guard count >= 0 else { throw .identity(Errno(rawValue: -count)) }
        saved.removeSubrange(Int(count)...)
        let rc = caller.groups.withUnsafeBufferPointer { brw_thread_fs_identity(caller.uid, caller.gid, $0.baseAddress, Int32($0.count)) }
        defer {
            let back = saved.withUnsafeBufferPointer { brw_thread_fs_identity(0, 0, $0.baseAddress, Int32($0.count)) }
            precondition(back == 0, "cannot give this thread root's file-system identity back: \(errnoName(-back))")
        }
        guard rc == 0 else { throw .identity(Errno(rawValue: -rc)) }
        do {
            return .success(try body())
        } catch {
            return .failure(error)
        }
    }

    /// Runs `body` with root's file-system identity on a thread that has
    /// `caller`'s (only inside `asCaller`), and gives the caller's back: for
    /// Burrow's own files (a signed tool's verified copies), which the caller
    /// has no right to and which show nothing of the host's.
    package static func asRoot<T>(within caller: CallerCredentials, _ body: () -> T) -> T {
        let rc = brw_thread_fs_identity(0, 0, nil, 0)
        defer {
            let back = caller.groups.withUnsafeBufferPointer { brw_thread_fs_identity(caller.uid, caller.gid, $0.baseAddress, Int32($0.count)) }
            precondition(back == 0, "cannot give this thread \(caller)'s file-system identity back: \(errnoName(-back))")
        }
        precondition(rc == 0, "cannot take root's file-system identity back on this thread: \(errnoName(-rc))")
        return body()
    }

    /// Opens `path` as `caller` (O_PATH; no symlink anywhere on the way, so
    /// every directory is searched with the caller's rights) and checks
    /// `access` on the file it opened (and, with `searchDirectories`, the
    /// right to search it when it is a directory).
    package static func open(_ path: String, as caller: CallerCredentials, access: Access, searchDirectories: Bool = false) throws(Failure) -> FileDescriptor {
        let outcome = try asCaller(caller) { () throws(Failure) -> FileDescriptor in
            let fd: FileDescriptor
            do throws(Errno) {
                fd = try Kernel.openNoFollow(path, flags: 0o1000_0000)  // O_PATH
            } catch {
                switch error {
                case .permissionDenied: throw .denied(path: path, caller: caller.description, access: access)
                case .tooManySymbolicLinkLevels: throw .symlink(path: path)
                case .noSuchFileOrDirectory: throw .missing(path: path)
                default: throw .other(path: path, error)
                }
            }
            var wanted = access
            var st = stat()
            if searchDirectories && fstat(fd.rawValue, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR { wanted.insert(.execute) }
            let rc = brw_access_fd(fd.rawValue, wanted.rawValue)
            guard rc == 0 else {
                try? fd.close()
                if rc == -EACCES || rc == -EPERM || rc == -EROFS { throw .denied(path: path, caller: caller.description, access: wanted) }
                throw .other(path: path, Errno(rawValue: -rc))
            }
            return fd
        }
        return try outcome.get()
    }
}
