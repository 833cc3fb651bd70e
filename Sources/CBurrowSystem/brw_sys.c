/*
 * brw_sys.c: see brw_sys.h. The probe children below run between clone and
 * exit in a multithreaded process: they make exactly one raw system call
 * (exit_group) and touch no memory, no locks and no libc state.
 */
#define _GNU_SOURCE
#include "brw_sys.h"

#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <dlfcn.h>

#include <errno.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/openat2.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/vfs.h>
#include <sys/quota.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

static int neg_errno(long r) { return r < 0 ? -errno : (int)r; }

int brw_landlock_abi(void) {
    return neg_errno(syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION));
}

int brw_seccomp_action_available(uint32_t action) {
    return neg_errno(syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action));
}

int brw_seccomp_notify_sizes(uint16_t *notif, uint16_t *resp, uint16_t *data) {
    struct seccomp_notif_sizes sizes;
    memset(&sizes, 0, sizeof sizes);
    long r = syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes);
    if (r < 0) return -errno;
    *notif = sizes.seccomp_notif;
    *resp = sizes.seccomp_notif_resp;
    *data = sizes.seccomp_data;
    return 0;
}

int brw_memfd(const char *name) { return neg_errno(syscall(SYS_memfd_create, name, MFD_CLOEXEC)); }

int brw_pidfd_open(pid_t pid, unsigned int flags) { return neg_errno(syscall(SYS_pidfd_open, pid, flags)); }

int brw_probe_clone(uint64_t flags, int use_clone3, int cgroup_fd) {
    long pid;
    int pidfd = -1;
    if (use_clone3) {
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = flags | CLONE_PIDFD;
        args.pidfd = (uint64_t)(uintptr_t)&pidfd;
        args.exit_signal = SIGCHLD;
        if (cgroup_fd >= 0) {
            args.flags |= CLONE_INTO_CGROUP;
            args.cgroup = (uint64_t)cgroup_fd;
        }
        pid = syscall(SYS_clone3, &args, sizeof args);
    } else {
        /* x86_64 argument order: flags, stack, parent_tid, child_tid, tls. */
        pid = syscall(SYS_clone, (unsigned long)flags | SIGCHLD, 0, 0, 0, 0);
    }
    if (pid < 0) return -errno;
    if (pid == 0) {
        syscall(SYS_exit_group, 0);
        __builtin_unreachable();
    }
    int status = 0;
    long w;
    do { w = waitpid((pid_t)pid, &status, __WALL); } while (w < 0 && errno == EINTR);
    int saved = errno;
    if (pidfd >= 0) close(pidfd);
    if (w < 0) return -saved;
    if (use_clone3 && pidfd < 0) return -EBADF; /* CLONE_PIDFD gave nothing back */
    return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ? 0 : -ECHILD;
}

int brw_open_nofollow(int dirfd, const char *path, uint64_t flags, int beneath) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (beneath ? RESOLVE_BENEATH : 0);
    return neg_errno(syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

int brw_pidfd_send_signal(int pidfd, int sig) { return neg_errno(syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0)); }

int brw_pidfd_wait(int pidfd, int flags, int *status) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid((idtype_t)3 /* P_PIDFD */, (id_t)pidfd, &info, WEXITED | flags) < 0) return -errno;
    if (info.si_pid == 0) return 0;
    switch (info.si_code) {
    case CLD_EXITED: *status = (info.si_status & 0xff) << 8; break;
    case CLD_KILLED: *status = info.si_status & 0x7f; break;
    case CLD_DUMPED: *status = (info.si_status & 0x7f) | 0x80; break;
    default: *status = 0;
    }
    return info.si_pid;
}

int brw_notify_receive(int listener, struct brw_notification *out) {
    /* The kernel's struct may grow; size the buffer from SECCOMP_GET_NOTIF_SIZES. */
    static struct seccomp_notif_sizes sizes;
    if (sizes.seccomp_notif == 0 && syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) return -errno;
    union {
        struct seccomp_notif n;
        char bytes[512];
    } buf;
    if (sizes.seccomp_notif > sizeof buf) return -EOVERFLOW;
    memset(&buf, 0, sizeof buf);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &buf) < 0) return -errno;
    out->id = buf.n.id;
    out->pid = buf.n.pid;
    out->nr = buf.n.data.nr;
    out->arch = buf.n.data.arch;
    memcpy(out->args, buf.n.data.args, sizeof out->args);
    return 0;
}

int brw_notify_deny(int listener, uint64_t id, int error) {
    union {
        struct seccomp_notif_resp r;
        char bytes[256];
    } buf;
    memset(&buf, 0, sizeof buf);
    buf.r.id = id;
    buf.r.error = -error;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &buf) < 0) return -errno;
    return 0;
}

static void fill(sigset_t *set, const int *signals, int count) {
    sigemptyset(set);
    for (int i = 0; i < count; i++) sigaddset(set, signals[i]);
}

int brw_signalfd(const int *signals, int count) {
    sigset_t set;
    fill(&set, signals, count);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    return neg_errno(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
}

int brw_pipe_cloexec(int *fds) { return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0; }

int brw_eventfd(void) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int brw_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n < 0) return errno == EAGAIN ? 0 : -errno;
    return n == sizeof info ? (int)info.ssi_signo : 0;
}

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

int brw_clone_mount(int fd, int recursive, uint64_t attr_set, int userns_fd) {
    int tree = (int)syscall(SYS_open_tree, fd, "",
                            OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
    if (tree < 0) return -errno;
    struct {
        uint64_t attr_set, attr_clr, propagation, userns_fd;
    } attr = {attr_set | (userns_fd >= 0 ? 0x00100000 /* MOUNT_ATTR_IDMAP */ : 0), 0, 0,
              userns_fd >= 0 ? (uint64_t)userns_fd : 0};
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
        int e = errno;
        close(tree);
        return -e;
    }
    return tree;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -(n < 0 ? e : EIO);
}

int brw_idmap_userns(uint32_t inside_uid, uint32_t outside_uid, uint32_t inside_gid, uint32_t outside_gid) {
    int pidfd = -1;
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_NEWUSER | CLONE_PIDFD;
    args.pidfd = (uint64_t)(uintptr_t)&pidfd;
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0) return -errno;
    if (pid == 0) {
        for (;;) syscall(SYS_pause); /* raw calls only: this is a child of a threaded process */
    }
    char path[64], map[64];
    int rc = 0;
    snprintf(path, sizeof path, "/proc/%ld/uid_map", pid);
    snprintf(map, sizeof map, "%u %u 1\n", inside_uid, outside_uid);
    rc = write_file(path, map);
    if (rc == 0) {
        snprintf(path, sizeof path, "/proc/%ld/setgroups", pid);
        rc = write_file(path, "deny");
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "/proc/%ld/gid_map", pid);
        snprintf(map, sizeof map, "%u %u 1\n", inside_gid, outside_gid);
        rc = write_file(path, map);
    }
    int ns = -1;
    if (rc == 0) {
        snprintf(path, sizeof path, "/proc/%ld/ns/user", pid);
        ns = open(path, O_RDONLY | O_CLOEXEC);
        if (ns < 0) rc = -errno;
    }
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    siginfo_t info;
    waitid((idtype_t)3 /* P_PIDFD */, (id_t)pidfd, &info, WEXITED);
    close(pidfd);
    return rc < 0 ? rc : ns;
}

int brw_fs_usage(int fd, uint64_t *used_bytes, uint64_t *used_inodes, uint64_t *inodes, int *full) {
    struct statfs fs;
    if (fstatfs(fd, &fs) != 0) return -errno;
    *used_bytes = (uint64_t)(fs.f_blocks - fs.f_bfree) * (uint64_t)fs.f_bsize;
    *used_inodes = (uint64_t)(fs.f_files - fs.f_ffree);
    *inodes = (uint64_t)fs.f_files;
    *full = fs.f_bavail == 0 ? 1 : fs.f_ffree == 0 ? 2 : 0;
    return 0;
}

#ifndef SYS_quotactl_fd
#define SYS_quotactl_fd 443 /* the same number on every architecture */
#endif

static int brw_quotactl(int fd, int cmd, uint32_t id, void *addr) {
    return syscall(SYS_quotactl_fd, fd, QCMD(cmd, PRJQUOTA), id, addr) == 0 ? 0 : -errno;
}

int64_t brw_fs_type(int fd) {
    struct statfs fs;
    return fstatfs(fd, &fs) == 0 ? (int64_t)(uint64_t)(unsigned long)fs.f_type : -errno;
}

int brw_project_quota_on(int fd) {
    struct fs_quota_statv st;
    memset(&st, 0, sizeof st);
    st.qs_version = FS_QSTATV_VERSION1;
    int r = brw_quotactl(fd, Q_XGETQSTATV, 0, &st);
    if (r != 0) return r;
    if (!(st.qs_flags & FS_QUOTA_PDQ_ACCT)) return -ESRCH;
    return (st.qs_flags & FS_QUOTA_PDQ_ENFD) ? 0 : 1;
}

int brw_project_quota_get(int fd, uint32_t id, struct brw_quota *out) {
    struct if_dqblk q;
    memset(&q, 0, sizeof q);
    int r = brw_quotactl(fd, Q_GETQUOTA, id, &q);
    if (r != 0) return r;
    out->used_bytes = q.dqb_curspace;
    out->hard_blocks = q.dqb_bhardlimit;
    out->soft_blocks = q.dqb_bsoftlimit;
    return 0;
}

int brw_project_quota_set(int fd, uint32_t id, uint64_t hard_blocks, uint64_t soft_blocks) {
    struct if_dqblk q;
    memset(&q, 0, sizeof q);
    q.dqb_bhardlimit = hard_blocks;
    q.dqb_bsoftlimit = soft_blocks;
    q.dqb_valid = QIF_BLIMITS;
    return brw_quotactl(fd, Q_SETQUOTA, id, &q);
}

int brw_project_get(int fd, uint32_t *id, uint32_t *xflags) {
    struct fsxattr a;
    if (ioctl(fd, FS_IOC_FSGETXATTR, &a) != 0) return -errno;
    *id = a.fsx_projid;
    *xflags = a.fsx_xflags;
    return 0;
}

int brw_project_set(int fd, uint32_t id, int inherit) {
    struct fsxattr a;
    if (ioctl(fd, FS_IOC_FSGETXATTR, &a) != 0) return -errno;
    a.fsx_projid = id;
    if (inherit) a.fsx_xflags |= FS_XFLAG_PROJINHERIT;
    return ioctl(fd, FS_IOC_FSSETXATTR, &a) == 0 ? 0 : -errno;
}

int brw_thread_nice(int value) { return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), value); }

const char *brw_symbol_file(const void *symbol) {
    Dl_info info;
    return dladdr(symbol, &info) != 0 ? info.dli_fname : 0;
}

int brw_thread_fs_identity(uint32_t uid, uint32_t gid, const uint32_t *groups, int count) {
    if (syscall(SYS_setgroups, (size_t)count, groups) < 0) return -errno;
    /* setfsuid/setfsgid report the previous id, never an error: a second
     * call returns the id now in force. */
    setfsgid(gid);
    if ((uint32_t)setfsgid(gid) != gid) return -EPERM;
    setfsuid(uid);
    if ((uint32_t)setfsuid(uid) != uid) return -EPERM;
    return 0;
}

int brw_thread_groups(uint32_t *out, int max) {
    int n = (int)syscall(SYS_getgroups, max, out);
    return n < 0 ? -errno : n;
}

int brw_access_fd(int fd, int mode) {
    return neg_errno(syscall(SYS_faccessat2, fd, "", mode, AT_EMPTY_PATH | AT_EACCESS));
}
