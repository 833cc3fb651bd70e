import BurrowPolicy
import BurrowProfile
import BurrowSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `max_disk_write`: the bytes a run may add under its host write grants,
/// bounded by the kernel through project quotas (`ProjectQuota`).
///
/// Each write grant belongs to a project: the one it is in, or, the first
/// time, a new one numbered after the grant's inode, given to every file and
/// directory below it (and, by inheritance, to whatever is created there
/// later). For the run, the project's hard limit becomes its usage at the
/// start plus the budget, so a write past the budget fails with EDQUOT
/// before a byte lands; the supervisor reads the usage at every check and
/// stops the run once the grants together have no room for another block.
/// The limits the project had before are put back when the run ends, and
/// kept in a lease file under /var/lib/burrow/disk-budgets meanwhile, so a
/// supervisor that dies mid-run leaves them for the next run to restore.
/// Runs with a budget on the same project take turns (the lease): two could
/// not tell their bytes apart.
final class DiskBudget {
    struct Project {
        /// The write grant (the first, when several share a project).
        var path: String
        /// The grant, open read-only: quotactl_fd and the ioctls need a real descriptor.
        var fd: FileDescriptor
        var id: UInt32
        var startBytes: UInt64
        var limitBytes: UInt64
        var blockSize: UInt64
        var original: (hard: UInt64, soft: UInt64)
        var lease: Lease
    }

    /// What the supervisor reads.
    struct Reading {
        /// Net bytes added under every grant since the start (negative: freed).
        var added: Int64
        /// No room left for another block, under one grant or all together.
        var exhausted: Bool
    }

    static let stateDirectory = "/var/lib/burrow/disk-budgets"

    let budget: UInt64
    private(set) var projects: [Project] = []
    private var ended = false

    private init(budget: UInt64) { self.budget = budget }

    deinit { _ = end() }

    /// Sets every write grant's project limit for the run.
    /// - Throws: `RunError.refused` when a grant cannot be bounded (the plan's
    ///   control row says so first; this is the check at the moment of use).
    static func begin(_ plan: LaunchPlan) throws(RunError) -> DiskBudget? {
        guard let budget = plan.limits.maxDiskWrite?.bytes else { return nil }
        let made = DiskBudget(budget: budget)
        var ok = false
        defer { if !ok { _ = made.end() } }
        if mkdir("/var/lib/burrow", 0o755) != 0 && errno != EEXIST || mkdir(stateDirectory, 0o700) != 0 && errno != EEXIST {
            throw .preparation("cannot create \(stateDirectory) for disk budget leases: \(errnoName(errno))")
        }
        for path in plan.writeGrantSources { try made.add(path) }
        ok = true
        return made
    }

    private func refuse(_ path: String, _ why: String) -> RunError { .refused("disk write budget (max_disk_write): \(path): \(why)") }

    private func add(_ path: String) throws(RunError) {
        guard let inner = ProjectQuota.mountPoints(under: path) else { throw refuse(path, "cannot read /proc/self/mountinfo to see what is mounted inside it") }
        if let inner = inner.first {
            throw refuse(path, "\(inner) is another mount inside the grant, whose writes would not count")
        }
        let fd: FileDescriptor
        do {
            fd = try Kernel.openNoFollow(path, flags: O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        } catch {
            throw refuse(path, "cannot open it: \(errnoName(error.rawValue))")
        }
        var kept = false
        defer { if !kept { try? fd.close() } }
        var st = stat()
        guard fstat(fd.rawValue, &st) == 0 else { throw refuse(path, "cannot stat it: \(errnoName(errno))") }
        let isDirectory = st.st_mode & S_IFMT == S_IFDIR
        guard isDirectory || st.st_mode & S_IFMT == S_IFREG else { throw refuse(path, "neither a directory nor a regular file") }
        let id: UInt32
        do {
            guard try ProjectQuota.state(fd) == .enforced else { throw refuse(path, ProjectQuota.support(at: path).detail) }
            let current = try ProjectQuota.project(of: fd)
            // Inode numbers are unique on a file system; 0 is no project.
            let own = UInt32(truncatingIfNeeded: st.st_ino) == 0 ? 1 : UInt32(truncatingIfNeeded: st.st_ino)
            let marker = Self.labelledMarker(st)
            if current.id == 0 || (current.id == own && access(marker, F_OK) != 0) {
                id = own
                // A marker left by an earlier inode with this number (a tree removed and made again) says nothing of this one.
                unlink(marker)
                try label(fd, path: path, project: id, device: st.st_dev, isDirectory: isDirectory)
                let made = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
                if made >= 0 { close(made) }
            } else {
                id = current.id
                if isDirectory && !current.inherits { try ProjectQuota.assign(fd, project: id, inherit: true) }
            }
        } catch let error as RunError {
            throw error
        } catch {
            throw refuse(path, ProjectQuota.support(at: path).detail)
        }
        if projects.contains(where: { $0.id == id && fstatDevice($0.fd) == st.st_dev }) { return }
        guard let lease = try Lease.take("\(Self.stateDirectory)/\(st.st_dev)-\(id)") else {
            throw refuse(path, "another run with a disk write budget is writing to its project \(id); runs with a budget on the same grant take turns")
        }
        // A run that died holding the lease left the limits it found.
        let saved = Self.savedLimits(lease)?.limits
        do {
            let usage = try ProjectQuota.usage(fd, project: id)
            let original: (hard: UInt64, soft: UInt64) = saved ?? (usage.hardBlocks, usage.softBlocks)
            // What a dead run saved stays as it is: rewriting it could lose it.
            if saved == nil { try Self.save(original, path: path, in: lease) }
            // In 1024-byte blocks, rounded up and saturating: 0 would mean no limit at all.
            let (sum, overflow) = usage.usedBytes.addingReportingOverflow(budget)
            let wanted = overflow ? UInt64.max / 1024 : max(1, sum / 1024 + (sum % 1024 == 0 ? 0 : 1))
            let hard = original.hard == 0 ? wanted : min(original.hard, wanted)
            try ProjectQuota.setLimits(fd, project: id, hardBlocks: hard, softBlocks: original.soft)
            var v = statvfs()
            let block = fstatvfs(fd.rawValue, &v) == 0 ? UInt64(v.f_bsize) : 4096
            projects.append(
                Project(
                    path: path, fd: fd, id: id, startBytes: usage.usedBytes, limitBytes: hard.multipliedReportingOverflow(by: 1024).overflow ? .max : hard * 1024,
                    blockSize: block, original: original, lease: lease))
            kept = true
        } catch {
            // Limits a dead run left stay recorded for the next one to put back.
            if saved == nil { lease.end() }
            throw refuse(path, "cannot set the limit of project \(id): \(errnoName(error.rawValue))")
        }
    }

    private func fstatDevice(_ fd: FileDescriptor) -> dev_t? {
        var st = stat()
        return fstat(fd.rawValue, &st) == 0 ? st.st_dev : nil
    }

    /// Puts the grant, and everything below it on the same file system, in
    /// project `id`. Each directory is labelled (and passes the id on) before
    /// it is read, so what a host user creates meanwhile inherits it; a
    /// marker in the state directory says the walk finished, so an
    /// interrupted one is walked again. Symlinks and special files hold no
    /// data and are left.
    private func label(_ root: FileDescriptor, path: String, project id: UInt32, device: dev_t, isDirectory: Bool) throws(RunError) {
        guard isDirectory else {
            do { try ProjectQuota.assign(root, project: id, inherit: false) } catch { throw refuse(path, "cannot set its project: \(errnoName(error.rawValue))") }
            return
        }
        try assign(".", in: root, name: nil, project: id, grant: path)
        var pending = [""]
        while let relative = pending.popLast() {
            let dir: FileDescriptor
            do {
                dir = try Kernel.openNoFollow(relative.isEmpty ? "." : relative, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC, beneath: root)
            } catch {
                throw refuse(path, "cannot open \(relative): \(errnoName(error.rawValue))")
            }
            defer { try? dir.close() }
            guard let names = Self.entries(dir) else { throw refuse(path, "cannot read the directory \(relative.isEmpty ? "." : relative): \(errnoName(errno))") }
            for name in names {
                let child = relative.isEmpty ? name : relative + "/" + name
                var st = stat()
                guard fstatat(dir.rawValue, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                    if errno == ENOENT { continue }  // removed meanwhile
                    throw refuse(path, "cannot stat \(child): \(errnoName(errno))")
                }
                let type = st.st_mode & S_IFMT
                guard type == S_IFDIR || type == S_IFREG else { continue }
                guard st.st_dev == device else { throw refuse(path, "\(child) is another mount inside the grant, whose writes would not count") }
                if type == S_IFDIR {
                    let sub: FileDescriptor
                    do {
                        sub = try Kernel.openNoFollow(name, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC, beneath: dir)
                    } catch {
                        throw refuse(path, "cannot open \(child): \(errnoName(error.rawValue))")
                    }
                    defer { try? sub.close() }
                    try assign(child, in: sub, name: nil, project: id, grant: path)
                    pending.append(child)
                } else {
                    try assign(child, in: dir, name: name, project: id, grant: path)
                }
            }
        }
    }

    /// The marker of a finished labelling walk of the grant whose root is `st`.
    private static func labelledMarker(_ st: stat) -> String { "\(stateDirectory)/labelled-\(st.st_dev)-\(st.st_ino)" }

    /// Labels one inode (`name` in `dir`, or `dir` itself), refusing one that
    /// another project owns: its bytes would count elsewhere.
    private func assign(_ relative: String, in dir: FileDescriptor, name: String?, project id: UInt32, grant: String) throws(RunError) {
        let fd: FileDescriptor
        if let name {
            do {
                fd = try Kernel.openNoFollow(name, flags: O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, beneath: dir)
            } catch {
                throw refuse(grant, "cannot open \(relative): \(errnoName(error.rawValue))")
            }
        } else {
            fd = dir
        }
        defer { if name != nil { try? fd.close() } }
        let current: (id: UInt32, inherits: Bool)
        do {
            current = try ProjectQuota.project(of: fd)
        } catch {
            throw refuse(grant, "cannot read the project of \(relative): \(errnoName(error.rawValue))")
        }
        guard current.id == 0 || current.id == id else {
            throw refuse(grant, "\(relative) belongs to project \(current.id), so its bytes would count elsewhere: give the tree one project first (chattr -R -p)")
        }
        guard current.id != id || (name == nil && !current.inherits) else { return }
        do {
            try ProjectQuota.assign(fd, project: id, inherit: name == nil)
        } catch {
            throw refuse(grant, "cannot set the project of \(relative): \(errnoName(error.rawValue))")
        }
    }

    /// The names in a directory (not "." or ".."); nil when it cannot be read.
    private static func entries(_ dir: FileDescriptor) -> [String]? {
        let copy = dup(dir.rawValue)
        guard copy >= 0 else { return nil }
        guard let stream = fdopendir(copy) else {
            close(copy)
            return nil
        }
        defer { closedir(stream) }
        // fdopendir shares the offset with `dir`: read from the start.
        rewinddir(stream)
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else { return errno == 0 ? names : nil }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
    }

    /// The limits (and the grant) saved by a run that died holding the lease:
    /// "HARD SOFT\nPATH\n".
    private static func savedLimits(_ lease: Lease) -> (limits: (hard: UInt64, soft: UInt64), path: String)? {
        var buffer = [UInt8](repeating: 0, count: 8192)
        let n = pread(lease.descriptor.rawValue, &buffer, buffer.count, 0)
        guard n > 0 else { return nil }
        let lines = String(decoding: buffer[..<n], as: UTF8.self).split(separator: "\n", maxSplits: 1)
        let fields = lines.first?.split(separator: " ") ?? []
        guard lines.count == 2, fields.count == 2, let hard = UInt64(fields[0]), let soft = UInt64(fields[1]) else { return nil }
        return ((hard, soft), String(lines[1].dropLast(lines[1].hasSuffix("\n") ? 1 : 0)))
    }

    /// Puts back the limits of projects whose run died holding them (its
    /// supervisor was killed): before each run, and when burrowd starts.
    static func recoverAbandoned() -> [String] {
        guard let names = LiveFileSystem().list(stateDirectory) else { return [] }
        var notes: [String] = []
        for name in names {
            let parts = name.split(separator: "-")
            guard parts.count == 2, let device = UInt64(parts[0]), let id = UInt32(parts[1]) else { continue }
            guard let lease = try? Lease.take("\(stateDirectory)/\(name)") else { continue }
            guard let saved = savedLimits(lease) else {
                lease.end()
                continue
            }
            var st = stat()
            guard let fd = try? Kernel.openNoFollow(saved.path, flags: O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY) else {
                notes.append("max_disk_write: project \(id)'s limits from an abandoned run are kept in \(stateDirectory)/\(name): \(saved.path) cannot be opened")
                continue
            }
            defer { try? fd.close() }
            guard fstat(fd.rawValue, &st) == 0, UInt64(st.st_dev) == device,
                (try? ProjectQuota.setLimits(fd, project: id, hardBlocks: saved.limits.hard, softBlocks: saved.limits.soft)) != nil
            else {
                notes.append("max_disk_write: cannot restore project \(id)'s limits on \(saved.path) from an abandoned run; kept in \(stateDirectory)/\(name)")
                continue
            }
            lease.end()
            notes.append("max_disk_write: restored project \(id)'s limits on \(saved.path), left by a run whose supervisor died")
        }
        return notes
    }

    private static func save(_ limits: (hard: UInt64, soft: UInt64), path: String, in lease: Lease) throws(Errno) {
        let text = Array("\(limits.hard) \(limits.soft)\n\(path)\n".utf8)
        let fd = lease.descriptor.rawValue
        guard ftruncate(fd, 0) == 0, pwrite(fd, text, text.count, 0) == text.count, fsync(fd) == 0 else { throw Errno(rawValue: errno) }
    }

    /// The usage now; nil when a project cannot be read (the run is stopped:
    /// a budget that cannot be read cannot be watched).
    func reading() -> Reading? {
        var added: Int64 = 0
        var exhausted = false
        for p in projects {
            guard let usage = try? ProjectQuota.usage(p.fd, project: p.id) else { return nil }
            added = added.addingReportingOverflow(Int64(clamping: usage.usedBytes) - Int64(clamping: p.startBytes)).partialValue
            if usage.usedBytes.addingReportingOverflow(p.blockSize).partialValue > p.limitBytes { exhausted = true }
        }
        let (room, overflow) = Int64(clamping: budget).subtractingReportingOverflow(added)
        if !overflow && room < Int64(clamping: projects.map(\.blockSize).max() ?? 0) && !projects.isEmpty { exhausted = true }
        return Reading(added: added, exhausted: exhausted)
    }

    /// Puts back the limits each project had; returns what could not be.
    func end() -> [String] {
        guard !ended else { return [] }
        ended = true
        var problems: [String] = []
        for p in projects {
            do {
                try ProjectQuota.setLimits(p.fd, project: p.id, hardBlocks: p.original.hard, softBlocks: p.original.soft)
                p.lease.end()
            } catch {
                // The lease file keeps the original limits for the next run to restore.
                problems.append(
                    "max_disk_write: cannot restore project \(p.id)'s limits on \(p.path) (\(errnoName(error.rawValue))); the next run with a budget there restores them")
            }
            try? p.fd.close()
        }
        projects = []
        return problems
    }

    /// What the run record's control row says was applied.
    var applied: String {
        projects.map { "\($0.path): project \($0.id), \($0.startBytes) bytes at the start, hard limit \($0.limitBytes)" }.joined(separator: "; ")
    }
}
