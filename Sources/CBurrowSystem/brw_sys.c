/*
 * brw_sys.c: see brw_sys.h. The probe children below run between clone and
 * exit in a multithreaded process: they make exactly one raw system call
 * (exit_group) and touch no memory, no locks and no libc state.
 */
#define _GNU_SOURCE
#include "brw_sys.h"

#include <errno.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
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

int brw_memfd(const char *name) {
    return neg_errno(syscall(SYS_memfd_create, name, MFD_CLOEXEC));
}

int brw_pidfd_open(pid_t pid, unsigned int flags) {
    return neg_errno(syscall(SYS_pidfd_open, pid, flags));
}

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
    do {
        w = waitpid((pid_t)pid, &status, __WALL);
    } while (w < 0 && errno == EINTR);
    int saved = errno;
    if (pidfd >= 0) close(pidfd);
    if (w < 0) return -saved;
    if (use_clone3 && pidfd < 0) return -EBADF; /* CLONE_PIDFD gave nothing back */
    return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ? 0 : -ECHILD;
}
