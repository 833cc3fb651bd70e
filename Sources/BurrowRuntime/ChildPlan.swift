import BurrowPolicy
import BurrowProfile
import BurrowSystem
import CBurrowChild
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The `struct brw_child_plan` for one launch, with every string, array and
/// descriptor it points to. Built in the parent before clone (the child only
/// reads it) and freed after the child has exec'd or failed.
final class ChildPlan {
    private(set) var raw = brw_child_plan()
    private var allocations: [UnsafeMutableRawPointer] = []
    /// Detached bind mounts and idmap user namespaces, held until the child has its copies.
    private var descriptors: [FileDescriptor] = []
    /// Idmap user namespaces by host owner (uid, gid).
    private var idmaps: [String: FileDescriptor] = [:]
    private let sandboxIDs: (uid: UInt32, gid: UInt32)
    /// The caller whose rights every bind source is opened with (nil: burrowd's own).
    private let caller: CallerCredentials?
    /// The executables the plan allows: their binds need the caller's execute right.
    private let executables: Set<String>
    /// What could not be applied as planned, with why (for the run record).
    private(set) var notes: [String] = []
    /// Where the new root is assembled before pivot_root (in the child's own mount namespace).
    static let staging = "/tmp"
    static let O_PATH: Int32 = 0o1000_0000

    /// - Parameter cgroup: a cgroup2 directory the child is born in (CLONE_INTO_CGROUP);
    ///   nil on v1 hosts, where the parent places it before the go byte.
    /// - Throws: `RunError.preparation` when a bind source cannot be opened safely.
    init(_ plan: LaunchPlan, cgroup: Int32?) throws(RunError) {
        let isolated = plan.sandboxLevel != .none
        sandboxIDs = (plan.identity.uid, plan.identity.gid)
        caller = plan.spec.grantsCheckedAs
        executables = caller == nil ? [] : Set(plan.spec.allowedExecutables)
        raw.clone_flags = plan.namespaces.reduce(0) { $0 | $1.kind.cloneFlag }
        raw.cgroup_fd = cgroup ?? -1
        raw.sock = -1
        raw.status_fd = -1
        raw.netns_fd = -1
        raw.stdio = (-1, -1, -1)
        raw.use_init = plan.namespaces.contains { $0.kind == .pid } ? 1 : 0

        if isolated {
            try marshalMounts(plan.mounts)
            raw.hostname = UnsafePointer(string(SandboxSpec.hostName))
            raw.loopback_up = plan.namespaces.contains { $0.kind == .net } ? 1 : 0
        }
        raw.workdir = UnsafePointer(string(plan.command.workingDirectory))

        let limits = plan.rlimits.map { brw_rlimit(resource: UInt32($0.resource.rawValue), soft: $0.soft, hard: $0.hard) }
        raw.rlimits = UnsafePointer(array(limits))
        raw.rlimit_count = UInt32(limits.count)

        raw.set_ids = isolated ? 1 : 0
        raw.uid = plan.identity.uid
        raw.gid = plan.identity.gid
        raw.cap_last = UInt32(plan.capabilities.kept.count + plan.capabilities.dropped.count - 1)
        let kept = plan.capabilities.keptMask
        raw.keep_caps = (UInt32(truncatingIfNeeded: kept), UInt32(truncatingIfNeeded: kept >> 32))
        raw.securebits = plan.capabilities.securebits.rawValue

        if let abi = plan.landlock.abi, isolated {
            raw.landlock_abi = UInt32(abi)
            raw.landlock_handled_fs = plan.landlock.handledFileSystem.rawValue
            raw.landlock_handled_net = plan.landlock.handledNetwork.rawValue
            raw.landlock_scoped = plan.landlock.scoped.rawValue
            let rules = plan.landlock.pathRules.map { brw_landlock_rule(path: UnsafePointer(string($0.path)), access: $0.access.rawValue) }
            // The child adds each port rule for CONNECT_TCP; the plan must say no other right.
            guard plan.landlock.portRules.allSatisfy({ $0.access == .connectTCP }) else {
                throw .preparation("a Landlock port rule other than CONNECT_TCP in the plan: the child applies CONNECT_TCP only")
            }
            raw.landlock_rules = UnsafePointer(array(rules))
            raw.landlock_rule_count = UInt32(rules.count)
            let ports = plan.landlock.portRules.map(\.port)
            raw.landlock_ports = UnsafePointer(array(ports))
            raw.landlock_port_count = UInt32(ports.count)
        }

        let bpf = plan.seccomp.bpf.bytes
        if !bpf.isEmpty {
            raw.seccomp_filter = UnsafeRawPointer(array(bpf))
            raw.seccomp_len = UInt16(bpf.count / 8)
        }

        raw.path = UnsafePointer(string(plan.command.executable))
        raw.argv = UnsafePointer(stringArray(plan.command.argv))
        raw.envp = UnsafePointer(stringArray(plan.execEnvironment))
    }

    deinit {
        for pointer in allocations { free(pointer) }
        for fd in descriptors { try? fd.close() }
    }

    /// Closes the bind-source descriptors (the child holds its own copies after clone).
    func closeDescriptors() {
        for fd in descriptors { try? fd.close() }
        descriptors = []
        idmaps = [:]
    }

    /// The v1 `tasks` files the child joins by writing "0" (the caller keeps them open until the clone).
    func setCgroupTasks(_ fds: [Int32]) {
        guard !fds.isEmpty else { return }
        raw.cgroup_tasks = UnsafePointer(array(fds))
        raw.cgroup_task_count = UInt32(fds.count)
    }

    /// A network namespace prepared by the supervisor (the egress proxy listens
    /// inside it): the sandbox is cloned into it instead of getting a new one,
    /// with loopback already up (it could not change it there anyway).
    func setNetworkNamespace(_ fd: FileDescriptor) {
        raw.netns_fd = fd.rawValue
        raw.clone_flags &= ~NamespaceKind.net.cloneFlag
        raw.loopback_up = 0
    }

    /// The sandbox is built ahead of its request: it waits at the handshake
    /// for the argv and environment to execve (`Sandbox.release`).
    func holdExec() { raw.hold_exec = 1 }

    /// Whether the child stops at the handshake after its last step and
    /// before execve, waiting for the supervisor: exactly when brw_child.c
    /// does (a seccomp filter to hand over, or a held sandbox).
    var stopsBeforeExec: Bool { raw.seccomp_len != 0 || raw.hold_exec != 0 }

    func setChannels(sock: FileDescriptor, status: FileDescriptor?, stdio: [FileDescriptor]?) {
        raw.sock = sock.rawValue
        raw.status_fd = status?.rawValue ?? -1
        if let stdio { raw.stdio = (stdio[0].rawValue, stdio[1].rawValue, stdio[2].rawValue) }
    }

    // MARK: mounts

    private func marshalMounts(_ entries: [MountEntry]) throws(RunError) {
        guard let first = entries.first, first.kind == .tmpfs, first.target == "/" else {
            throw .preparation("the mount table must start with the new root's tmpfs")
        }
        var mounts: [brw_mount] = []
        raw.staging = UnsafePointer(string(Self.staging))
        for entry in entries {
            let target = String(entry.target.drop { $0 == "/" })
            let (flags, data) = (entry.options.kernelFlags, entry.options.fileSystemData)
            var m = brw_mount()
            m.source_fd = -1
            m.target = UnsafePointer(string(target))
            switch entry.kind {
            case .tmpfs, .proc:
                m.kind = UInt32(BRW_MOUNT_FS.rawValue)
                m.fstype = UnsafePointer(string(entry.kind == .proc ? "proc" : "tmpfs"))
                m.data = UnsafePointer(string(data))
                m.flags = flags
                m.target_is_dir = 1
            case .bind:
                guard let source = entry.source else { throw .preparation("bind at \(entry.target) has no source") }
                try bind(
                    &m, source: source, flags: flags, recursive: entry.options.recursive, idmap: entry.options.idmap, access: access(entry),
                    verified: entry.verifiedFrom != nil)
            case .symlink:
                m.kind = UInt32(BRW_MOUNT_SYMLINK.rawValue)
                m.text = UnsafePointer(string(entry.source ?? ""))
            case .file:
                let content = Array((entry.content ?? "").utf8)
                m.kind = UInt32(BRW_MOUNT_FILE.rawValue)
                m.text = UnsafePointer(array(content.map { CChar(bitPattern: $0) }))
                m.text_len = UInt64(content.count)
                m.mode = entry.options.mode ?? 0o644
            case .mask:
                m.must_exist = 1
                if entry.source == "tmpfs" {
                    m.kind = UInt32(BRW_MOUNT_FS.rawValue)
                    m.fstype = UnsafePointer(string("tmpfs"))
                    m.data = UnsafePointer(string(data))
                    m.flags = flags
                    m.target_is_dir = 1
                } else {
                    try bind(&m, source: entry.source ?? "/dev/null", flags: flags, recursive: false, idmap: false, access: access(entry))
                }
            case .remount:
                guard target.isEmpty else { throw .preparation("only the root is remounted, not \(entry.target)") }
                raw.root_attr = flags
                continue
            }
            mounts.append(m)
        }
        raw.mounts = UnsafePointer(array(mounts))
        raw.mount_count = UInt32(mounts.count)
    }

    /// Prepares a bind: the source is opened without following symlinks and
    /// cloned into a detached mount (with its flags set on every submount)
    /// here in the parent; the child only attaches it with move_mount(2). A
    /// descriptor of a mount in the parent's namespace could not be bound from
    /// the child's new one.
    ///
    /// With a caller (`grantsCheckedAs`), the source is opened with the
    /// caller's rights, so every directory on the way is searched as the
    /// caller, and the mount's access is checked on what was opened: read,
    /// write too when the mount is writable, search for a directory, execute
    /// for an allowed executable. The mount is cloned from that descriptor.
    /// An idmap then shows only the caller's own files as the sandbox's, never
    /// another owner's (whose rights the caller does not have).
    /// `verified`: a signed tool's verified copy, in the store that is
    /// root's alone: opened as root (the caller's right to the host's file
    /// it stands for was checked when the plan was made).
    private func bind(
        _ m: inout brw_mount, source: String, flags: UInt64, recursive: Bool, idmap: Bool, access: CallerAccess.Access?, verified: Bool = false
    ) throws(RunError) {
        var tree: FileDescriptor
        var st = stat()
        let path: FileDescriptor
        if let caller, !verified {
            do {
                path = try CallerAccess.open(source, as: caller, access: access ?? .read, searchDirectories: true)
            } catch {
                throw .refused("\(error): nothing is bound that the caller could not reach")
            }
        } else {
            do {
                path = try Kernel.openNoFollow(source, flags: Self.O_PATH)
            } catch {
                let why = error == .tooManySymbolicLinkLevels ? "a path component is a symlink, which Burrow does not follow" : "\(errnoName(error.rawValue)) (\(error))"
                throw .preparation("cannot prepare the bind of \(source): \(why)")
            }
        }
        defer { try? path.close() }
        guard fstat(path.rawValue, &st) == 0 else { throw .preparation("cannot prepare the bind of \(source): \(errnoName(errno)) (\(errno))") }
        let status = CallerAccess.Status(uid: st.st_uid, gid: st.st_gid, isDirectory: st.st_mode & S_IFMT == S_IFDIR)
        let callersOwn = caller.map { CallerAccess.owns($0, status) } ?? true
        // A caller's writable directory must come out as the caller's: its own, id-mapped.
        let callersWrite = caller != nil && access?.contains(.write) == true && CallerAccess.createsFiles(status)
        if callersWrite && !callersOwn, let caller {
            throw .refused("\(CallerAccess.Failure.notOwned(path: source, caller: "\(caller)"))")
        }
        var unmappable = false
        do throws(Errno) {
            // MOUNT_ATTR_RDONLY/NOSUID/NODEV/NOEXEC share the MS_* values 1/2/4/8.
            let mapped = idmap && st.st_uid != sandboxIDs.uid && callersOwn
            let namespace = mapped ? try idmapNamespace(uid: st.st_uid, gid: st.st_gid) : nil
            do {
                tree = try Kernel.cloneMount(path, recursive: recursive, attributes: flags, idmap: namespace)
            } catch  where namespace != nil && error == .invalidArgument {
                unmappable = callersWrite
                if unmappable { throw error }
                // The file system cannot be idmapped (9p, for one): bind it as it is.
                notes.append("\(source): its file system does not support idmapped mounts; files keep their host owner \(st.st_uid)")
                tree = try Kernel.cloneMount(path, recursive: recursive, attributes: flags)
            }
        } catch {
            if unmappable {
                throw .refused("\(source): its file system does not support idmapped mounts, so what the tool wrote there would not be the caller's")
            }
            let why = error == .tooManySymbolicLinkLevels ? "a path component is a symlink, which Burrow does not follow" : "\(errnoName(error.rawValue)) (\(error))"
            throw .preparation("cannot prepare the bind of \(source): \(why)")
        }
        descriptors.append(tree)
        m.kind = UInt32(BRW_MOUNT_BIND.rawValue)
        m.source_fd = tree.rawValue
        m.target_is_dir = (st.st_mode & S_IFMT) == S_IFDIR ? 1 : 0
    }

    /// What the caller must be allowed on `entry`'s source; nil (nothing computed) without a caller.
    private func access(_ entry: MountEntry) -> CallerAccess.Access? {
        caller == nil ? nil : entry.callerAccess(executables: executables)
    }

    /// The user namespace that shows host owner uid/gid as the sandbox's ids.
    private func idmapNamespace(uid: UInt32, gid: UInt32) throws(Errno) -> FileDescriptor {
        let key = "\(uid):\(gid)"
        if let fd = idmaps[key] { return fd }
        // An idmapped mount reads an owner id as an id inside the namespace and
        // shows the id it maps to outside: owner inside, sandbox id outside.
        let fd = try Kernel.idmapNamespace(uid: (uid, sandboxIDs.uid), gid: (gid, sandboxIDs.gid))
        idmaps[key] = fd
        descriptors.append(fd)
        return fd
    }

    // MARK: allocation

    private func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        // strdup would cut at a NUL: the compiler refused such values (ExecStrings), so one here is a broken invariant.
        precondition(!s.utf8.contains(0), "a string with a NUL reached the child plan")
        guard let p = strdup(s) else { fatalError("out of memory") }
        allocations.append(p)
        return p
    }

    private func array<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
        guard let raw = malloc(max(1, values.count) * MemoryLayout<T>.stride) else { fatalError("out of memory") }
        let p = raw.bindMemory(to: T.self, capacity: max(1, values.count))
        allocations.append(UnsafeMutableRawPointer(p))
        for (i, v) in values.enumerated() { (p + i).initialize(to: v) }
        return p
    }

    private func stringArray(_ values: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        array(values.map { Optional(string($0)) } + [nil])
    }
}

extension LaunchPlan {
    /// The environment as execve takes it: NAME=value.
    var execEnvironment: [String] { environment.map { "\($0.name)=\($0.value)" } }
}
