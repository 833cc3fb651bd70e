/*
 * brw_parent.c: the parent side of a spawn, which runs in the supervisor (or
 * burrow-spawner) and may use anything a normal thread may: the clone3 call
 * itself, reading the child's reports, and preparing a network namespace
 * ahead. Everything that runs in the child after clone3 is in brw_child.c,
 * under that file's rules.
 */
#define _GNU_SOURCE
#include "brw_child.h"
#include "brw_private.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

int brw_netns_prepare(uint16_t port, int *netns_fd, int *listen_fd) {
    *netns_fd = -1;
    *listen_fd = -1;
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) return errno;
    if (unshare(CLONE_NEWNET) < 0) {
        int e = errno;
        close(home);
        return e;
    }
    int rc = brw_loopback_up() < 0 ? errno : 0;
    int s = -1, ns = -1;
    if (!rc) {
        s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 256) < 0) rc = errno;
    }
    if (!rc && (ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) rc = errno;
    /* Back home before anything else: this thread must not stay inside. */
    if (setns(home, CLONE_NEWNET) < 0 && !rc) rc = errno;
    close(home);
    if (rc) {
        if (s >= 0) close(s);
        if (ns >= 0) close(ns);
        return rc;
    }
    *netns_fd = ns;
    *listen_fd = s;
    return 0;
}

int brw_spawn(const struct brw_child_plan *plan, pid_t *pid, int *pidfd) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int fd = -1;
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = plan->clone_flags | CLONE_PIDFD | CLONE_CLEAR_SIGHAND | (plan->clone_parent ? CLONE_PARENT : 0);
    args.pidfd = (uint64_t)(uintptr_t)&fd;
    /* With CLONE_PARENT the child takes the caller's own exit signal (SIGCHLD
     * for burrow-spawner) and clone3 requires 0 here. */
    args.exit_signal = plan->clone_parent ? 0 : SIGCHLD;
    if (plan->cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)plan->cgroup_fd;
    }
    /* A prepared network namespace: the child inherits the calling thread's,
     * so this thread enters it for the clone only. */
    int home = -1;
    if (plan->netns_fd >= 0) {
        home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (home < 0 || setns(plan->netns_fd, CLONE_NEWNET) < 0) {
            int e = errno;
            if (home >= 0) close(home);
            pthread_sigmask(SIG_SETMASK, &old, 0);
            return e;
        }
    }
    long r = syscall(SYS_clone3, &args, sizeof args);
    if (r == 0) brw_child_main(plan);
    int e = errno;
    if (home >= 0) {
        /* Cannot fail for a thread that just left it (same credentials). */
        (void)setns(home, CLONE_NEWNET);
        close(home);
    }
    pthread_sigmask(SIG_SETMASK, &old, 0);
    if (r < 0) return e;
    *pid = (pid_t)r;
    *pidfd = fd;
    return 0;
}

ssize_t brw_recv_report(int sock, struct brw_child_report *report, int *fd, int timeout_ms) {
    *fd = -1;
    struct pollfd pfd = {sock, POLLIN, 0};
    int ready;
    do ready = poll(&pfd, 1, timeout_ms);
    while (ready < 0 && errno == EINTR);
    if (ready < 0) return -errno;
    if (ready == 0) return -ETIMEDOUT;
    struct brw_fd_message m;
    fd_message_init(&m, report);
    ssize_t n;
    do n = recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m.msg); c; c = CMSG_NXTHDR(&m.msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(fd, CMSG_DATA(c), sizeof(int));
    }
    return n;
}
