import BurrowProfile

/// Turns a profile's permissions into seccomp rules (architecture-neutral
/// names; `SeccompCompiler` resolves and compiles them).
enum SeccompPolicy {
    static let EPERM: Int32 = 1
    static let ENOENT: Int32 = 2
    static let ENOSYS: Int32 = 38
    static let EAFNOSUPPORT: Int32 = 97
    static let ENOTTY: Int32 = 25

    /// ioctl requests any tool may make (values from asm-generic/ioctls.h and linux/fs.h).
    static let ioctlAllowed: [(UInt64, String)] = [
        (0x5401, "TCGETS"), (0x5402, "TCSETS"), (0x5403, "TCSETSW"), (0x5404, "TCSETSF"), (0x5409, "TCSBRK"),
        (0x540A, "TCXONC"), (0x540B, "TCFLSH"), (0x540F, "TIOCGPGRP"), (0x5410, "TIOCSPGRP"), (0x5411, "TIOCOUTQ"),
        (0x5413, "TIOCGWINSZ"), (0x5414, "TIOCSWINSZ"), (0x541B, "FIONREAD"), (0x5421, "FIONBIO"),
        (0x5450, "FIONCLEX"), (0x5451, "FIOCLEX"), (0x5452, "FIOASYNC"), (0x802C_542A, "TCGETS2"),
        (0x402C_542B, "TCSETS2"), (0x402C_542C, "TCSETSW2"), (0x402C_542D, "TCSETSF2"),
        (0x4004_9409, "FICLONE"), (0x4020_940D, "FICLONERANGE"), (0x8008_6601, "FS_IOC_GETFLAGS"),
    ]

    /// Calls real tools need (Python, git, sh, coreutils), grouped by purpose.
    static let baseline: [String] = [
        // files and descriptors
        "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
        "open", "openat", "openat2", "close", "close_range", "creat", "lseek", "stat", "fstat", "lstat",
        "newfstatat", "statx", "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents",
        "getdents64", "getcwd", "chdir", "fchdir", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir",
        "unlink", "unlinkat", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2",
        "chown", "fchown", "lchown", "fchownat", "truncate", "ftruncate", "fallocate", "fsync", "fdatasync",
        "sync_file_range", "flock", "fcntl", "dup", "dup2", "dup3", "pipe", "pipe2", "utime", "utimes", "utimensat",
        "futimesat", "umask", "statfs", "fstatfs", "sendfile", "copy_file_range", "splice", "tee", "fadvise64",
        "readahead", "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr",
        "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
        // memory
        "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mlock", "mlock2", "munlock", "mincore", "msync",
        "membarrier", "get_mempolicy", "pkey_alloc", "pkey_free", "pkey_mprotect",
        // threads, signals, time
        "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "kill", "tkill", "tgkill", "rt_sigaction",
        "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo",
        "rt_tgsigqueueinfo", "sigaltstack", "pause", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp",
        "getsid", "setsid", "set_tid_address", "set_robust_list", "get_robust_list", "futex", "futex_waitv", "rseq",
        "arch_prctl", "prctl", "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
        "sched_getscheduler", "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
        "getpriority", "setpriority", "getrlimit", "setrlimit", "prlimit64", "getrusage", "times", "uname",
        "sysinfo", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "capget",
        "capset", "getcpu", "getrandom", "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep",
        "gettimeofday", "time", "alarm", "getitimer", "setitimer", "timer_create", "timer_settime",
        "timer_gettime", "timer_getoverrun", "timer_delete", "timerfd_create", "timerfd_settime",
        "timerfd_gettime", "eventfd", "eventfd2", "signalfd", "signalfd4", "epoll_create", "epoll_create1",
        "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect6",
        "restart_syscall", "pidfd_open", "pidfd_send_signal", "ioprio_get", "landlock_create_ruleset",
        "landlock_add_rule", "landlock_restrict_self", "seccomp",
        // sockets (the family is checked on socket(2) itself)
        "socketpair", "connect", "accept", "accept4", "bind", "listen", "getsockname", "getpeername", "sendto",
        "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "setsockopt", "getsockopt",
        // System V and POSIX IPC (private to the sandbox's IPC namespace)
        "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semctl", "semtimedop", "msgget", "msgsnd",
        "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    ]

    /// Calls that break out of, or attack, a sandbox. Always refused and reported.
    static let dangerous: [(String, String)] = [
        ("bpf", "loads kernel programs"), ("perf_event_open", "kernel attack surface, side channels"),
        ("keyctl", "kernel keyrings are not namespaced"), ("add_key", "kernel keyrings"), ("request_key", "kernel keyrings"),
        ("mount", "changes the mount table"), ("umount2", "could reveal masked paths"), ("pivot_root", "changes the root"),
        ("move_mount", "mount API"), ("open_tree", "mount API"), ("fsopen", "mount API"), ("fsconfig", "mount API"),
        ("fsmount", "mount API"), ("fspick", "mount API"), ("mount_setattr", "mount API"),
        ("ptrace", "inspects other processes"), ("process_vm_readv", "reads other processes' memory"),
        ("process_vm_writev", "writes other processes' memory"), ("kexec_load", "replaces the kernel"),
        ("kexec_file_load", "replaces the kernel"), ("init_module", "loads kernel modules"),
        ("finit_module", "loads kernel modules"), ("delete_module", "unloads kernel modules"),
        ("userfaultfd", "widens kernel race windows"), ("open_by_handle_at", "opens files outside the mount namespace"),
        ("name_to_handle_at", "file handles"), ("io_uring_setup", "bypasses seccomp for the calls it queues"),
        ("io_uring_enter", "io_uring"), ("io_uring_register", "io_uring"), ("unshare", "nested namespaces"),
        ("setns", "joins other namespaces"), ("chroot", "chroot escapes"), ("swapon", "host swap"), ("swapoff", "host swap"),
        ("reboot", "host power"), ("acct", "host accounting"), ("settimeofday", "host clock"), ("clock_settime", "host clock"),
        ("clock_adjtime", "host clock"), ("adjtimex", "host clock"), ("syslog", "kernel log"), ("iopl", "raw I/O ports"),
        ("ioperm", "raw I/O ports"), ("quotactl", "host quotas"), ("quotactl_fd", "host quotas"),
        ("lookup_dcookie", "kernel internals"), ("vhangup", "terminal hijacking"), ("fanotify_init", "watches the host"),
        ("memfd_create", "executes code that is in no granted file"), ("memfd_secret", "hidden memory"),
        ("pidfd_getfd", "steals descriptors from other processes"), ("kcmp", "kernel pointer comparison"),
        ("sethostname", "host identity"), ("setdomainname", "host identity"), ("uselib", "legacy loader"),
        ("ustat", "legacy"), ("sysfs", "legacy"), ("_sysctl", "legacy"), ("nfsservctl", "legacy"),
        ("modify_ldt", "legacy segment tricks"), ("vm86", "legacy"), ("vm86old", "legacy"),
        ("process_madvise", "acts on other processes"), ("move_pages", "acts on other processes"),
        ("migrate_pages", "acts on other processes"), ("mbind", "NUMA policy"), ("set_mempolicy", "NUMA policy"),
        ("mknod", "creates device nodes"), ("mknodat", "creates device nodes"),
        ("setxattr", "extended attributes"), ("lsetxattr", "extended attributes"), ("fsetxattr", "extended attributes"),
        ("removexattr", "extended attributes"), ("lremovexattr", "extended attributes"), ("fremovexattr", "extended attributes"),
    ]

    /// Refusals a profile can never quiet: what the dangerous list exists to
    /// report (the NUMA calls aside, which numerical libraries make at every
    /// start), and ioctl, whose refused requests inject terminal input.
    /// (A clone that asks for a namespace stays loud too: see SeccompResponder.)
    static let neverQuiet: [String: String] = {
        var out: [String: String] = [:]
        for (call, why) in dangerous where !["mbind", "set_mempolicy", "migrate_pages", "move_pages"].contains(call) { out[call] = why }
        out["ioctl"] = "terminal input injection (TIOCSTI, TIOCLINUX)"
        return out
    }()

    static let CLONE_THREAD: UInt64 = 0x0001_0000
    /// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME.
    static let CLONE_NEW_ANY: UInt64 = 0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000 | 0x80
    static let TIOCSTI: UInt64 = 0x5412
    static let TIOCLINUX: UInt64 = 0x541C
    static let AF_UNIX: UInt64 = 1
    static let AF_INET: UInt64 = 2
    static let AF_INET6: UInt64 = 10

    /// Everything of a profile the rule set depends on: the plan compiler's
    /// memo keeps one seccomp plan per value.
    struct Inputs: Hashable, Sendable {
        var fork: Bool
        var networkAccess: NetworkAccess
    }

    static func inputs(of profile: SecurityProfile) -> Inputs {
        Inputs(fork: profile.permissions.process.fork, networkAccess: profile.networkAccess)
    }

    /// The rule set for `profile` (already clamped by policy).
    static func rules(for profile: SecurityProfile) -> (allowed: [String], rules: [SeccompRule]) { rules(for: inputs(of: profile)) }

    /// The rule set for a profile with these inputs: it reads nothing else.
    static func rules(for profile: Inputs) -> (allowed: [String], rules: [SeccompRule]) {
        var allowed = baseline
        var rules: [SeccompRule] = []
        let fork = profile.fork

        // Processes: threads always, new processes only with the fork permission.
        if fork {
            // New processes, but never new namespaces: clone's flags are in a
            // register, so the filter sees them (unshare and setns are refused outright).
            allowed += ["fork", "vfork"]
            rules.append(
                SeccompRule(
                    syscall: "clone", action: .allow,
                    conditions: [SeccompCondition(argument: 0, operation: .maskedEqual, value: 0, mask: CLONE_NEW_ANY, valueName: "no CLONE_NEW*")],
                    reason: "processes and threads (permissions.process.fork), without new namespaces"))
            rules.append(SeccompRule(syscall: "clone", action: .notify(errno: EPERM), conditions: [], reason: "clone with CLONE_NEW* flags: no nested namespaces"))
        } else {
            rules.append(
                SeccompRule(
                    syscall: "clone", action: .allow,
                    conditions: [SeccompCondition(argument: 0, operation: .maskedEqual, value: CLONE_THREAD, mask: CLONE_THREAD | CLONE_NEW_ANY, valueName: "CLONE_THREAD, no CLONE_NEW*")],
                    reason: "threads only: permissions.process.fork is false"))
            // ENOENT, not EPERM: to the tool, no program can be run here, so
            // code probing for an optional helper (`node -v`, `uname -p`)
            // sees it missing (Python raises FileNotFoundError) and goes on.
            rules.append(SeccompRule(syscall: "clone", action: .notify(errno: ENOENT), conditions: [], reason: "a new process: permissions.process.fork is false"))
            for call in ["fork", "vfork"] {
                rules.append(SeccompRule(syscall: call, action: .notify(errno: ENOENT), conditions: [], reason: "permissions.process.fork is false"))
            }
        }
        // glibc tries clone3 first and falls back to clone on ENOSYS; clone3's
        // flags live in memory that seccomp cannot inspect.
        rules.append(SeccompRule(syscall: "clone3", action: .errno(ENOSYS), conditions: [], reason: "flags are not inspectable; libc falls back to clone(2)"))

        // Sockets: AF_UNIX always; IP families only with network access.
        var families: [(UInt64, String)] = [(AF_UNIX, "AF_UNIX")]
        if profile.networkAccess != .none { families += [(AF_INET, "AF_INET"), (AF_INET6, "AF_INET6")] }
        for (family, name) in families {
            rules.append(
                SeccompRule(
                    syscall: "socket", action: .allow,
                    conditions: [SeccompCondition(argument: 0, operation: .equal, value: family, valueName: name)],
                    reason: profile.networkAccess == .none ? "no Network permission: local sockets only" : "network_access is \(profile.networkAccess.rawValue)"))
        }

        // ioctl: an allowlist of request numbers, each compared on the low 32
        // bits only, because the kernel truncates the request to 32 bits: a
        // full 64-bit compare would let TIOCSTI | 1 << 32 through. Anything
        // else (TIOCSTI, TIOCLINUX included) goes to the supervisor.
        for (request, name) in ioctlAllowed {
            rules.append(
                SeccompRule(
                    syscall: "ioctl", action: .allow,
                    conditions: [SeccompCondition(argument: 1, operation: .maskedEqual, value: request, mask: 0xffff_ffff, valueName: name)],
                    reason: "terminal, descriptor and file-clone requests"))
        }
        for (request, name) in [(TIOCSTI, "TIOCSTI"), (TIOCLINUX, "TIOCLINUX")] {
            rules.append(
                SeccompRule(
                    syscall: "ioctl", action: .notify(errno: EPERM),
                    conditions: [SeccompCondition(argument: 1, operation: .maskedEqual, value: request, mask: 0xffff_ffff, valueName: name)],
                    reason: "injects input into a terminal: reported as a SecurityViolation"))
        }
        rules.append(SeccompRule(syscall: "ioctl", action: .notify(errno: ENOTTY), conditions: [], reason: "any other request: answered 'not supported'"))

        rules.append(SeccompRule(syscall: "socket", action: .notify(errno: EAFNOSUPPORT), conditions: [], reason: "any other address family"))

        // personality: only PER_LINUX and the query; other personas turn off ASLR or mark memory executable.
        for (value, name) in [(UInt64(0), "PER_LINUX"), (UInt64(0xffff_ffff), "query")] {
            rules.append(
                SeccompRule(
                    syscall: "personality", action: .allow,
                    conditions: [SeccompCondition(argument: 0, operation: .equal, value: value, valueName: name)],
                    reason: "other personas disable ASLR or imply executable memory"))
        }

        for (call, why) in dangerous {
            rules.append(SeccompRule(syscall: call, action: .notify(errno: EPERM), conditions: [], reason: why))
        }
        return (allowed.sorted(), rules)
    }
}
