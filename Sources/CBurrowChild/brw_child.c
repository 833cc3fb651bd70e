/*
 * brw_child.c: the code that runs between clone3() and execve(). See brw_child.h
 * for the protocol.
 *
 * The supervisor is multithreaded. After clone3() only the calling thread
 * exists in the child, and any lock another thread held (malloc, stdio, the
 * Swift runtime) stays held forever. So, in everything reachable from
 * brw_child_main():
 *
 *   Allowed:   raw system calls and the libc wrappers listed in signal-safety(7),
 *              except the credential setters (setuid, setresuid, setgroups, …):
 *              glibc broadcasts those to every thread it believes exists, under
 *              a lock (use syscall(SYS_…) instead); memcpy/memset/strlen on
 *              parent-owned buffers; fixed stack arrays.
 *   Forbidden: malloc/free/strdup, printf and snprintf, stdio, strerror,
 *              getpwnam, opendir, exit(), mutexes, any libseccomp, libcap or
 *              sqlite call, logging, Swift.
 *
 * Errors are numbers ({stage, errno, index} on the report socket); the parent
 * turns them into text. Review every change against the lists above.
 */
#define _GNU_SOURCE
#include "brw_child.h"
#include "brw_private.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* <linux/mount.h> of Debian 12 lacks struct mount_attr. */
struct brw_mount_attr {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/* <linux/landlock.h> of Debian 12 predates ABI 4 (network) and 6 (scoping). */
struct brw_landlock_ruleset_attr {
    uint64_t handled_access_fs, handled_access_net, scoped;
};
struct brw_landlock_path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));
struct brw_landlock_net_port {
    uint64_t allowed_access;
    uint64_t port;
};
#define BRW_LANDLOCK_RULE_PATH_BENEATH      1
#define BRW_LANDLOCK_RULE_NET_PORT          2
#define BRW_LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)

#define SECBIT_NO_SETUID_FIXUP_ONLY (1U << 2)

/* ---- reporting ------------------------------------------------------------ */

/* One report with room for one descriptor (SCM_RIGHTS), on the stack of
 * whichever side sends or receives it. */
static void brw_send(int sock, uint32_t stage, int32_t err, uint32_t index) {
    struct brw_child_report r = {stage, err, index, 0};
    while (send(sock, &r, sizeof r, MSG_NOSIGNAL) < 0 && errno == EINTR) {}
}

/* The one way out of a failed step: report and _exit (never exit(): no atexit handlers). */
static __attribute__((noreturn)) void brw_fail(const struct brw_child_plan *p, uint32_t stage, uint32_t index) {
    brw_send(p->sock, stage, errno, index);
    _exit(127);
}

#define STEP(stage, call)                                                                                              \
    do {                                                                                                               \
        if ((call) < 0) brw_fail(p, (stage), 0);                                                                       \
    } while (0)

/* "/proc/self/fd/N" into buf (no snprintf in the child). */
static const char *fd_path(char buf[32], int fd) {
    static const char prefix[] = "/proc/self/fd/";
    char digits[12];
    int n = 0;
    unsigned v = (unsigned)fd;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < 11);
    memcpy(buf, prefix, sizeof prefix - 1);
    int at = (int)sizeof prefix - 1;
    while (n) buf[at++] = digits[--n];
    buf[at] = 0;
    return buf;
}

/* ---- mounts --------------------------------------------------------------- */

/*
 * Walks `target` below root_fd without following symlinks, creating missing
 * directories (unless must_exist). On success *dir is the parent directory
 * (O_PATH) and *name points at the last component inside `buf`.
 * Returns 1 when a must_exist target is absent, 0 on success, -1 with errno.
 */
static int walk_to_parent(int root_fd, const char *target, int must_exist, char buf[4096], int *dir, char **name) {
    size_t len = strlen(target);
    if (len == 0 || len >= 4096) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, target, len + 1);
    int fd = root_fd;
    char *component = buf;
    for (;;) {
        char *slash = strchr(component, '/');
        if (!slash) break;
        *slash = 0;
        if (!must_exist && mkdirat(fd, component, 0755) < 0 && errno != EEXIST) goto fail;
        int next = openat(fd, component, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            if (must_exist && errno == ENOENT) {
                if (fd != root_fd) close(fd);
                return 1;
            }
            goto fail;
        }
        if (fd != root_fd) close(fd);
        fd = next;
        component = slash + 1;
    }
    *dir = fd;
    *name = component;
    return 0;
fail:;
    int e = errno;
    if (fd != root_fd) close(fd);
    errno = e;
    return -1;
}

static int mount_one(int root_fd, const struct brw_mount *m) {
    char buf[4096], path[32];
    int dir = -1;
    char *name = 0;
    int walked = walk_to_parent(root_fd, m->target, (int)m->must_exist, buf, &dir, &name);
    if (walked != 0) return walked > 0 ? 0 : -1;
    int rc = -1, point = -1;

    if (m->kind == BRW_MOUNT_SYMLINK) {
        rc = symlinkat(m->text, dir, name);
        goto out;
    }
    if (m->kind == BRW_MOUNT_FILE) {
        int f = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, m->mode);
        if (f < 0) goto out;
        uint64_t done = 0;
        while (done < m->text_len) {
            ssize_t w = write(f, m->text + done, m->text_len - done);
            if (w < 0) {
                if (errno == EINTR) continue;
                int e = errno;
                close(f);
                errno = e;
                goto out;
            }
            done += (uint64_t)w;
        }
        rc = fchmod(f, m->mode);
        close(f);
        goto out;
    }

    /* The mount point: created in our own tmpfs, or an existing entry for masks. */
    if (!m->must_exist) {
        if (m->target_is_dir) {
            if (mkdirat(dir, name, 0755) < 0 && errno != EEXIST) goto out;
        } else {
            /* O_EXCL: an existing entry (a file a read-only bind below shows,
             * which a signed tool's verified copy covers) is EEXIST, never
             * EROFS, and is never opened for writing. */
            int f = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (f >= 0)
                close(f);
            else if (errno != EEXIST)
                goto out;
        }
    }
    point = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (point < 0) {
        if (m->must_exist && errno == ENOENT) rc = 0;
        goto out;
    }
    /* Mount onto the descriptor, so the entry that was checked is the one covered. */
    if (m->kind == BRW_MOUNT_FS) {
        rc = mount(m->fstype, fd_path(path, point), m->fstype, (unsigned long)m->flags, m->data);
        goto out;
    }
    /* BIND: attach the detached copy the parent prepared (flags already set
     * on every submount), so a path swapped since cannot redirect it. */
    rc = (int)syscall(SYS_move_mount, m->source_fd, "", point, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
out:;
    int e = errno;
    if (point >= 0) close(point);
    if (dir != root_fd) close(dir);
    errno = e;
    return rc;
}

/* Builds the new root at plan->staging, pivots into it and seals it. */
static void step_filesystem(const struct brw_child_plan *p) {
    /* Nothing we mount may propagate back to the host. */
    STEP(BRW_STAGE_MOUNTS, mount(0, "/", 0, MS_REC | MS_PRIVATE, 0));
    const struct brw_mount *root = &p->mounts[0];
    if (mount(root->fstype, p->staging, root->fstype, (unsigned long)root->flags, root->data) < 0)
        brw_fail(p, BRW_STAGE_MOUNTS, 0);
    int root_fd = open(p->staging, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) brw_fail(p, BRW_STAGE_MOUNTS, 0);
    for (uint32_t i = 1; i < p->mount_count; i++) {
        if (mount_one(root_fd, &p->mounts[i]) < 0) brw_fail(p, BRW_STAGE_MOUNTS, i);
    }
    /* pivot_root(".", ".") stacks the old root on the new one; detaching "."
     * then drops it with every host mount below it (see pivot_root(2)). */
    STEP(BRW_STAGE_PIVOT_ROOT, fchdir(root_fd));
    STEP(BRW_STAGE_PIVOT_ROOT, (int)syscall(SYS_pivot_root, ".", "."));
    STEP(BRW_STAGE_PIVOT_ROOT, umount2(".", MNT_DETACH));
    STEP(BRW_STAGE_PIVOT_ROOT, chdir("/"));
    close(root_fd);
    struct brw_mount_attr attr = {p->root_attr, 0, 0, 0};
    STEP(BRW_STAGE_REMOUNT_ROOT, (int)syscall(SYS_mount_setattr, AT_FDCWD, "/", 0, &attr, sizeof attr));
}

int brw_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(s);
    errno = e;
    return rc;
}

/* ---- Landlock ------------------------------------------------------------- */

static int landlock_prepare(const struct brw_child_plan *p, uint32_t *failed) {
    struct brw_landlock_ruleset_attr attr = {p->landlock_handled_fs, p->landlock_handled_net, p->landlock_scoped};
    size_t size = p->landlock_abi >= 6 ? 24 : p->landlock_abi >= 4 ? 16 : 8;
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (ruleset < 0) return -1;
    for (uint32_t i = 0; i < p->landlock_rule_count; i++) {
        int fd = open(p->landlock_rules[i].path, O_PATH | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT) continue; /* nothing there to grant */
            *failed = i;
            return -1;
        }
        struct brw_landlock_path_beneath rule = {p->landlock_rules[i].access, fd};
        long rc = syscall(SYS_landlock_add_rule, ruleset, BRW_LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
        int e = errno;
        close(fd);
        if (rc < 0) {
            errno = e;
            *failed = i;
            return -1;
        }
    }
    for (uint32_t i = 0; i < p->landlock_port_count; i++) {
        struct brw_landlock_net_port rule = {BRW_LANDLOCK_ACCESS_NET_CONNECT_TCP, p->landlock_ports[i]};
        if (syscall(SYS_landlock_add_rule, ruleset, BRW_LANDLOCK_RULE_NET_PORT, &rule, 0) < 0) {
            *failed = p->landlock_rule_count + i;
            return -1;
        }
    }
    return ruleset;
}

/* ---- identity and capabilities ------------------------------------------ */

static int capset_masks(uint32_t eff0, uint32_t eff1, uint32_t perm0, uint32_t perm1, uint32_t inh0, uint32_t inh1) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{eff0, perm0, inh0}, {eff1, perm1, inh1}};
    return (int)syscall(SYS_capset, &header, data);
}

static int kept(const struct brw_child_plan *p, uint32_t cap) {
    return cap < 64 && (p->keep_caps[cap / 32] >> (cap % 32)) & 1;
}

/*
 * The ids come first, right after the go byte: every file the child creates
 * (the new root, mount points, /etc/passwd) gets its owner from the fsuid,
 * which must be mapped in the user namespace (else EOVERFLOW). The
 * capabilities the child holds in its namespace survive the id change because
 * SECBIT_NO_SETUID_FIXUP is set first (that needs CAP_SETPCAP, still held).
 * setuid comes after setgid and setgroups, which it would forbid.
 */
/* Every descriptor above 2 but the report socket and the init's status pipe
 * closes once the mounts are made (their sources were the last others in
 * use). The caller's open descriptors would otherwise count against a low
 * RLIMIT_NOFILE until execve: with more than max_open_files of them open, no
 * number would be free for a Landlock rule or the seccomp listener. */
static int close_inherited(const struct brw_child_plan *p) {
    int keep[2] = {p->sock, p->status_fd};
    if (keep[0] > keep[1]) {
        int t = keep[0];
        keep[0] = keep[1];
        keep[1] = t;
    }
    unsigned int from = 3;
    for (int i = 0; i < 2; i++) {
        if (keep[i] < (int)from) continue;
        if ((unsigned int)keep[i] > from && syscall(SYS_close_range, from, (unsigned int)keep[i] - 1, 0U) < 0)
            return -1;
        from = (unsigned int)keep[i] + 1;
    }
    return (int)syscall(SYS_close_range, from, ~0U, 0U);
}

static void step_identity(const struct brw_child_plan *p) {
    STEP(BRW_STAGE_SECUREBITS, prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP_ONLY, 0, 0, 0));
    if (!p->set_ids) return;
    /* Raw system calls: glibc's wrappers apply credentials to every thread
     * it believes exists (nptl's setxid broadcast), taking a lock that another
     * thread of a multithreaded parent (burrowd) may have held at clone time:
     * the child would wait on that futex forever. Here there is one thread. */
    STEP(BRW_STAGE_SETGROUPS, (int)syscall(SYS_setgroups, 0, 0));
    STEP(BRW_STAGE_SETGID, (int)syscall(SYS_setresgid, p->gid, p->gid, p->gid));
    STEP(BRW_STAGE_SETUID, (int)syscall(SYS_setresuid, p->uid, p->uid, p->uid));
}

/*
 * Then, once the sandbox is built: the bounding set (needs CAP_SETPCAP) ->
 * permitted/inheritable to the kept set plus CAP_SETPCAP -> ambient raise of
 * the kept set -> the final securebits with their locks and
 * NO_CAP_AMBIENT_RAISE (needs CAP_SETPCAP) -> the last capset drops it.
 */
static void step_capabilities(const struct brw_child_plan *p) {
    for (uint32_t cap = 0; cap <= p->cap_last; cap++) {
        if (!kept(p, cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) brw_fail(p, BRW_STAGE_BOUNDING_SET, cap);
    }
    const uint32_t setpcap0 = 1U << CAP_SETPCAP;
    STEP(BRW_STAGE_CAPABILITIES, capset_masks(p->keep_caps[0] | setpcap0, p->keep_caps[1], p->keep_caps[0] | setpcap0,
                                              p->keep_caps[1], p->keep_caps[0], p->keep_caps[1]));
    STEP(BRW_STAGE_CAPABILITIES, prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
    for (uint32_t cap = 0; cap <= p->cap_last; cap++) {
        if (kept(p, cap) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
            brw_fail(p, BRW_STAGE_CAPABILITIES, cap);
    }
    STEP(BRW_STAGE_SECUREBITS, prctl(PR_SET_SECUREBITS, p->securebits, 0, 0, 0));
    STEP(BRW_STAGE_CAPABILITIES, capset_masks(p->keep_caps[0], p->keep_caps[1], p->keep_caps[0], p->keep_caps[1],
                                              p->keep_caps[0], p->keep_caps[1]));
    /* Changing credentials clears the parent-death signal, so arm it after
     * the last change. The parent's liveness is checked afterwards by the
     * handshake on `sock` (and by the exec report reaching it). */
    STEP(BRW_STAGE_PARENT_DEATH, prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0));
}

/* ---- the tool ------------------------------------------------------------- */

/*
 * Splits an 'X' message (brw_child.h) of `len` bytes at `msg` into argv and
 * envp, each NULL-terminated, written to `ptrs` (room for len + 2 pointers).
 * Returns 0, or -1 when the message is malformed: a wrong tag or header, no
 * argv[0], a string without its NUL, or bytes after the last string.
 */
static int exec_message(char *msg, size_t len, char **ptrs) {
    uint32_t count[2];
    if (len < 9 || msg[0] != 'X') return -1;
    memcpy(count, msg + 1, sizeof count);
    if (count[0] == 0 || (uint64_t)count[0] + count[1] > len) return -1;
    char *s = msg + 9, *end = msg + len;
    for (int list = 0; list < 2; list++) {
        for (uint32_t i = 0; i < count[list]; i++) {
            size_t room = (size_t)(end - s);
            size_t n = strnlen(s, room);
            if (n == room) return -1;
            *ptrs++ = s;
            s += n + 1;
        }
        *ptrs++ = 0;
    }
    return s == end ? 0 : -1;
}

static __attribute__((noreturn)) void exec_tool(const struct brw_child_plan *p) {
    /* Handlers are default after CLONE_CLEAR_SIGHAND, but ignored signals
     * stay ignored (the supervisor may ignore SIGPIPE): reset every one. */
    /* Raw rt_sigaction: glibc's wrapper refuses its internal signals 32 and 33. */
    struct {
        void *handler;
        unsigned long flags;
        void *restorer;
        uint64_t mask;
    } dfl = {SIG_DFL, 0, 0, 0};
    for (int sig = 1; sig <= 64; sig++) syscall(SYS_rt_sigaction, sig, &dfl, 0, sizeof dfl.mask);

    /* Only 0-2 survive execve; `sock` stays usable until then. */
    STEP(BRW_STAGE_CLOSE_FDS, (int)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC));

    /* A held tool reads its argv and envp into memory mapped now, before a
     * filter could refuse mmap: after seccomp it only touches the pages. */
    char *held = 0;
    size_t held_size = BRW_EXEC_MESSAGE_MAX + ((size_t)BRW_EXEC_MESSAGE_MAX + 2) * sizeof(char *);
    if (p->hold_exec) {
        void *m = mmap(0, held_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) brw_fail(p, BRW_STAGE_HANDSHAKE, 0);
        held = m;
    }
    char *const *argv = p->argv;
    char *const *envp = p->envp;
    if (p->seccomp_len || p->hold_exec) { /* ChildPlan.stopsBeforeExec says the same */
        /* Last before execve: every call from here on is filtered. The
         * listener goes to the supervisor, which answers refused calls. */
        int listener = -1;
        if (p->seccomp_len) {
            struct sock_fprog prog = {p->seccomp_len, (struct sock_filter *)p->seccomp_filter};
            listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
            if (listener < 0) brw_fail(p, BRW_STAGE_SECCOMP, 0);
        }

        struct brw_child_report r = {listener >= 0 ? BRW_STAGE_LISTENER : BRW_STAGE_HELD, 0, 0, 0};
        struct brw_fd_message m;
        fd_message_init(&m, &r);
        if (listener >= 0) {
            struct cmsghdr *c = CMSG_FIRSTHDR(&m.msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &listener, sizeof listener);
        } else {
            m.msg.msg_control = 0;
            m.msg.msg_controllen = 0;
        }
        ssize_t sent;
        do sent = sendmsg(p->sock, &m.msg, MSG_NOSIGNAL);
        while (sent < 0 && errno == EINTR);
        if (sent < 0) brw_fail(p, BRW_STAGE_HANDSHAKE, 0);
        if (listener >= 0) close(listener);
        if (held) {
            ssize_t got;
            do got = recv(p->sock, held, BRW_EXEC_MESSAGE_MAX, MSG_TRUNC);
            while (got < 0 && errno == EINTR);
            if (got <= 0) _exit(127); /* the supervisor is gone, or dropped the sandbox unused */
            if ((size_t)got > BRW_EXEC_MESSAGE_MAX) {
                errno = E2BIG;
                brw_fail(p, BRW_STAGE_HANDSHAKE, 0);
            }
            char **ptrs = (char **)(held + (((size_t)got + 7) & ~(size_t)7));
            if (exec_message(held, (size_t)got, ptrs) < 0) {
                errno = EPROTO;
                brw_fail(p, BRW_STAGE_HANDSHAKE, 0);
            }
            uint32_t argc;
            memcpy(&argc, held + 1, sizeof argc);
            argv = ptrs;
            envp = ptrs + argc + 1;
        } else {
            char ack = 0;
            ssize_t got;
            do got = recv(p->sock, &ack, 1, 0);
            while (got < 0 && errno == EINTR);
            if (got != 1) _exit(127); /* the supervisor is gone */
        }
    }

    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, 0);
    execve(p->path, argv, envp);
    brw_fail(p, BRW_STAGE_EXEC, 0);
}

/* ---- init ------------------------------------------------------------------ */

/*
 * PID 1 of the sandbox: reaps every orphan, forwards the signals the
 * supervisor sends to the tool, and when the tool ends writes its wait status
 * on status_fd and exits, which makes the kernel kill whatever is left in the
 * PID namespace. All signals stay blocked; sigwaitinfo collects them.
 */
static __attribute__((noreturn)) void run_init(const struct brw_child_plan *p, pid_t tool) {
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (p->seccomp_len) {
        /* The same filter, without a listener: refused calls fail with ENOSYS. */
        struct sock_fprog prog = {p->seccomp_len, (struct sock_filter *)p->seccomp_filter};
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
            int e = errno;
            kill(tool, SIGKILL);
            errno = e;
            brw_fail(p, BRW_STAGE_SECCOMP, 0);
        }
    }
    /* Only now: EOF on `sock` (init's copy and the tool's, closed at execve)
     * tells the supervisor that both are sealed. */
    close(p->sock);
    int status_fd = p->status_fd;
    if (status_fd > 3) syscall(SYS_close_range, 3U, (unsigned)status_fd - 1, 0);
    syscall(SYS_close_range, (unsigned)status_fd + 1, ~0U, 0);
    sigset_t all;
    sigfillset(&all);
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0) continue;
        if (sig != SIGCHLD) {
            kill(tool, sig);
            continue;
        }
        for (;;) {
            int status = 0;
            pid_t done = wait4(-1, &status, WNOHANG, 0);
            if (done <= 0) break;
            if (done == tool) {
                ssize_t w;
                do w = write(status_fd, &status, sizeof status);
                while (w < 0 && errno == EINTR);
                _exit(0);
            }
        }
    }
}

/* ---- the child, in order -------------------------------------------------- */

void brw_child_main(const struct brw_child_plan *p) {
    /* Wait until the parent has written uid_map/gid_map and placed us in cgroups. */
    char go = 0;
    ssize_t got;
    do got = recv(p->sock, &go, 1, 0);
    while (got < 0 && errno == EINTR);
    if (got != 1 || go != 'G') {
        if (got == 0) errno = EPIPE;
        brw_fail(p, BRW_STAGE_WAIT_PARENT, 0);
    }
    /* cgroup v1: join the invocation's cgroups before anything else runs
     * here. Moving oneself (a single thread) skips the global threadgroup
     * lock that moving another process takes (an RCU grace period). */
    for (uint32_t i = 0; i < p->cgroup_task_count; i++) {
        ssize_t w;
        do w = write(p->cgroup_tasks[i], "0", 1);
        while (w < 0 && errno == EINTR);
        if (w != 1) brw_fail(p, BRW_STAGE_CGROUP_JOIN, i);
    }
    /* The daemon's pipes (all above 2, close-on-exec) become 0-2; dup2 clears
     * close-on-exec on the copy, and the originals close at execve. */
    for (int i = 0; i < 3; i++) {
        if (p->stdio[i] >= 0) STEP(BRW_STAGE_STDIO, dup2(p->stdio[i], i));
    }
    step_identity(p);
    if (p->clone_flags & CLONE_NEWPID) STEP(BRW_STAGE_SESSION, setsid()); /* no controlling terminal */
    if (p->mount_count) step_filesystem(p);
    STEP(BRW_STAGE_CLOSE_FDS, close_inherited(p));
    if (p->hostname) STEP(BRW_STAGE_HOSTNAME, sethostname(p->hostname, strlen(p->hostname)));
    if (p->loopback_up) STEP(BRW_STAGE_LOOPBACK, brw_loopback_up());
    if (p->workdir) STEP(BRW_STAGE_CHDIR, chdir(p->workdir));
    for (uint32_t i = 0; i < p->rlimit_count; i++) {
        struct rlimit rl = {p->rlimits[i].soft, p->rlimits[i].hard};
        if (setrlimit((__rlimit_resource_t)p->rlimits[i].resource, &rl) < 0) brw_fail(p, BRW_STAGE_RLIMITS, i);
    }
    /* Landlock rules are opened in the finished sandbox view. */
    int ruleset = -1;
    if (p->landlock_abi) {
        uint32_t failed = 0;
        ruleset = landlock_prepare(p, &failed);
        if (ruleset < 0) brw_fail(p, BRW_STAGE_LANDLOCK_RULES, failed);
    }
    step_capabilities(p);
    STEP(BRW_STAGE_NO_NEW_PRIVS, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    if (ruleset >= 0) {
        STEP(BRW_STAGE_LANDLOCK, (int)syscall(SYS_landlock_restrict_self, ruleset, 0));
        close(ruleset);
    }
    if (!p->use_init) exec_tool(p);

    pid_t tool = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, 0, 0, 0, 0);
    if (tool < 0) brw_fail(p, BRW_STAGE_FORK_INIT, 0);
    if (tool == 0) exec_tool(p);
    run_init(p, tool);
}
