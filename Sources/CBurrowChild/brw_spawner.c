/*
 * brw_spawner.c: spawning through a small helper process.
 *
 * clone3() copies the caller's address space (page tables, and copy-on-write
 * faults afterwards), and the sandbox's init copies it again when it forks
 * the tool. From burrowd, a large multithreaded process, that costs
 * milliseconds per sandbox (measured: 3.8 ms with 40 MiB touched against
 * 1.0 ms from a 1 MiB process). So burrowd hands each child plan to
 * burrow-spawner, a tiny single-threaded process, which clones the sandbox
 * with CLONE_PARENT: the sandbox is still burrowd's child (burrowd waits for
 * it through its pidfd, and its parent-death signal follows the burrowd
 * thread that started the spawner).
 *
 * The plan travels flat: the struct, then every string and array it points
 * to, pointers replaced by offsets into the message and descriptors by
 * indices into its SCM_RIGHTS array.
 */
#define _GNU_SOURCE
#include "brw_child.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define BRW_PACK_MAGIC 0x42525750u /* "BRWP" */
#define BRW_MAX_FDS    250

struct brw_pack_header {
    uint32_t magic;
    uint32_t fd_count;
    uint64_t size;
};

struct packer {
    uint8_t *buf;
    size_t cap, len;
    int fds[BRW_MAX_FDS];
    uint32_t fd_count;
    int overflow;
};

static uint64_t put(struct packer *k, const void *data, size_t n, size_t align) {
    size_t at = (k->len + align - 1) & ~(align - 1);
    if (at + n > k->cap) {
        k->overflow = 1;
        return 0;
    }
    if (n) memcpy(k->buf + at, data, n);
    k->len = at + n;
    return at;
}

static uint64_t put_string(struct packer *k, const char *s) { return s ? put(k, s, strlen(s) + 1, 1) : 0; }

/* Index of `fd` in the descriptor array; -1 (none) stays -1. */
static int32_t put_fd(struct packer *k, int32_t fd) {
    if (fd < 0) return -1;
    if (k->fd_count >= BRW_MAX_FDS) {
        k->overflow = 1;
        return -1;
    }
    k->fds[k->fd_count] = fd;
    return (int32_t)k->fd_count++;
}

static uint64_t put_strings(struct packer *k, char *const *v) {
    if (!v) return 0;
    size_t n = 0;
    while (v[n]) n++;
    uint64_t offsets[n + 1];
    for (size_t i = 0; i < n; i++) offsets[i] = put_string(k, v[i]);
    offsets[n] = 0;
    return put(k, offsets, sizeof offsets, 8);
}

/* Offsets in place of pointers: stored in the pointer fields (same width). */
#define AS_PTR(type, off) ((type)(uintptr_t)(off))

static ssize_t brw_plan_pack(const struct brw_child_plan *p, uint8_t *buf, size_t cap, int *fds, uint32_t *fd_count) {
    struct packer k = {buf, cap, sizeof(struct brw_pack_header), {0}, 0, 0};
    struct brw_child_plan flat = *p;
    /* No pointer of this address space may travel: each is set below or stays 0. */
    flat.cgroup_tasks = 0;
    flat.staging = 0;
    flat.mounts = 0;
    flat.workdir = 0;
    flat.hostname = 0;
    flat.rlimits = 0;
    flat.landlock_rules = 0;
    flat.landlock_ports = 0;
    flat.seccomp_filter = 0;
    flat.path = 0;
    flat.argv = 0;
    flat.envp = 0;
    uint64_t plan_at = put(&k, &flat, sizeof flat, 8);

    flat.cgroup_fd = put_fd(&k, p->cgroup_fd);
    flat.sock = put_fd(&k, p->sock);
    flat.status_fd = put_fd(&k, p->status_fd);
    flat.netns_fd = put_fd(&k, p->netns_fd);
    for (int i = 0; i < 3; i++) flat.stdio[i] = put_fd(&k, p->stdio[i]);
    if (p->cgroup_tasks && p->cgroup_task_count) {
        int32_t idx[p->cgroup_task_count];
        for (uint32_t i = 0; i < p->cgroup_task_count; i++) idx[i] = put_fd(&k, p->cgroup_tasks[i]);
        flat.cgroup_tasks = AS_PTR(const int32_t *, put(&k, idx, sizeof idx, 4));
    }
    flat.staging = AS_PTR(const char *, put_string(&k, p->staging));
    if (p->mounts && p->mount_count) {
        struct brw_mount m[p->mount_count];
        for (uint32_t i = 0; i < p->mount_count; i++) {
            m[i] = p->mounts[i];
            m[i].source_fd = put_fd(&k, p->mounts[i].source_fd);
            m[i].target = AS_PTR(const char *, put_string(&k, p->mounts[i].target));
            m[i].fstype = AS_PTR(const char *, put_string(&k, p->mounts[i].fstype));
            m[i].data = AS_PTR(const char *, put_string(&k, p->mounts[i].data));
            if (p->mounts[i].text) {
                /* FILE content has text_len bytes; a SYMLINK's text is a C string. Either way a NUL follows. */
                const char *t = p->mounts[i].text;
                size_t n = p->mounts[i].text_len ? p->mounts[i].text_len : strlen(t);
                m[i].text = AS_PTR(const char *, put(&k, t, n, 1));
                put(&k, "", 1, 1);
                if (!n) m[i].text = AS_PTR(const char *, k.len - 1);
            }
        }
        flat.mounts = AS_PTR(const struct brw_mount *, put(&k, m, sizeof m, 8));
    }
    flat.workdir = AS_PTR(const char *, put_string(&k, p->workdir));
    flat.hostname = AS_PTR(const char *, put_string(&k, p->hostname));
    if (p->rlimits && p->rlimit_count)
        flat.rlimits = AS_PTR(const struct brw_rlimit *, put(&k, p->rlimits, p->rlimit_count * sizeof *p->rlimits, 8));
    if (p->landlock_rules && p->landlock_rule_count) {
        struct brw_landlock_rule r[p->landlock_rule_count];
        for (uint32_t i = 0; i < p->landlock_rule_count; i++) {
            r[i] = p->landlock_rules[i];
            r[i].path = AS_PTR(const char *, put_string(&k, p->landlock_rules[i].path));
        }
        flat.landlock_rules = AS_PTR(const struct brw_landlock_rule *, put(&k, r, sizeof r, 8));
    }
    if (p->landlock_ports && p->landlock_port_count)
        flat.landlock_ports = AS_PTR(const uint16_t *, put(&k, p->landlock_ports, p->landlock_port_count * 2, 2));
    if (p->seccomp_filter && p->seccomp_len)
        flat.seccomp_filter = AS_PTR(const void *, put(&k, p->seccomp_filter, (size_t)p->seccomp_len * 8, 8));
    flat.path = AS_PTR(const char *, put_string(&k, p->path));
    flat.argv = AS_PTR(char *const *, put_strings(&k, p->argv));
    flat.envp = AS_PTR(char *const *, put_strings(&k, p->envp));
    if (k.overflow) return -E2BIG;

    memcpy(buf + plan_at, &flat, sizeof flat);
    struct brw_pack_header h = {BRW_PACK_MAGIC, k.fd_count, k.len};
    memcpy(buf, &h, sizeof h);
    memcpy(fds, k.fds, k.fd_count * sizeof(int));
    *fd_count = k.fd_count;
    return (ssize_t)k.len;
}

/* ---- the spawner's side ---------------------------------------------------- */

struct unpacker {
    uint8_t *buf;
    size_t len;
    const int *fds;
    uint32_t fd_count;
    int bad;
};

static void *at(struct unpacker *u, uintptr_t off, size_t n) {
    if (!off) return 0;
    if (off >= u->len || n > u->len - off) {
        u->bad = 1;
        return 0;
    }
    return u->buf + off;
}

/* A non-empty array's storage must be there. */
static void *need(struct unpacker *u, void *p) {
    if (!p) u->bad = 1;
    return p;
}

static const char *string_at(struct unpacker *u, uintptr_t off) {
    char *s = at(u, off, 1);
    if (s && !memchr(s, 0, u->len - off)) u->bad = 1;
    return s;
}

static int32_t fd_at(struct unpacker *u, int32_t index) {
    if (index < 0) return -1;
    if ((uint32_t)index >= u->fd_count) {
        u->bad = 1;
        return -1;
    }
    return u->fds[index];
}

static char *const *strings_at(struct unpacker *u, uintptr_t off) {
    if (!off) return 0;
    uint64_t *v = at(u, off, 8);
    if (!v) return 0;
    for (size_t i = 0;; i++) {
        if (!at(u, off + i * 8, 8)) return 0;
        if (!v[i]) break;
        v[i] = (uint64_t)(uintptr_t)string_at(u, (uintptr_t)v[i]);
    }
    return (char *const *)v;
}

/* Rebuilds the plan in `buf` (pointers into buf, descriptors from fds).
 * Returns it, or NULL when the message is malformed. */
static struct brw_child_plan *plan_unpack(uint8_t *buf, size_t len, const int *fds, uint32_t fd_count) {
    struct unpacker u = {buf, len, fds, fd_count, 0};
    if (len < sizeof(struct brw_pack_header) + sizeof(struct brw_child_plan)) return 0;
    struct brw_pack_header *h = (struct brw_pack_header *)buf; /* offset 0: `at` reads 0 as "none" */
    if (h->magic != BRW_PACK_MAGIC || h->size != len || h->fd_count != fd_count) return 0;
    struct brw_child_plan *p = at(&u, 16, sizeof *p);
    if (!p) return 0;
    p->cgroup_fd = fd_at(&u, p->cgroup_fd);
    p->sock = fd_at(&u, p->sock);
    p->status_fd = fd_at(&u, p->status_fd);
    p->netns_fd = fd_at(&u, p->netns_fd);
    for (int i = 0; i < 3; i++) p->stdio[i] = fd_at(&u, p->stdio[i]);
    if (p->cgroup_task_count) {
        int32_t *t = need(&u, at(&u, (uintptr_t)p->cgroup_tasks, (size_t)p->cgroup_task_count * 4));
        for (uint32_t i = 0; t && i < p->cgroup_task_count; i++) t[i] = fd_at(&u, t[i]);
        p->cgroup_tasks = t;
    }
    p->staging = string_at(&u, (uintptr_t)p->staging);
    if (p->mount_count) {
        struct brw_mount *m = need(&u, at(&u, (uintptr_t)p->mounts, p->mount_count * sizeof *m));
        for (uint32_t i = 0; m && i < p->mount_count; i++) {
            m[i].source_fd = fd_at(&u, m[i].source_fd);
            m[i].target = string_at(&u, (uintptr_t)m[i].target);
            m[i].fstype = string_at(&u, (uintptr_t)m[i].fstype);
            m[i].data = string_at(&u, (uintptr_t)m[i].data);
            m[i].text = string_at(&u, (uintptr_t)m[i].text);
            if (m[i].text && m[i].text_len && m[i].text_len >= u.len - (size_t)((const uint8_t *)m[i].text - u.buf))
                u.bad = 1;
        }
        p->mounts = m;
    }
    p->workdir = string_at(&u, (uintptr_t)p->workdir);
    p->hostname = string_at(&u, (uintptr_t)p->hostname);
    if (p->rlimit_count) p->rlimits = need(&u, at(&u, (uintptr_t)p->rlimits, p->rlimit_count * sizeof *p->rlimits));
    if (p->landlock_rule_count) {
        struct brw_landlock_rule *r =
            need(&u, at(&u, (uintptr_t)p->landlock_rules, p->landlock_rule_count * sizeof *r));
        for (uint32_t i = 0; r && i < p->landlock_rule_count; i++) r[i].path = string_at(&u, (uintptr_t)r[i].path);
        p->landlock_rules = r;
    }
    if (p->landlock_port_count)
        p->landlock_ports = need(&u, at(&u, (uintptr_t)p->landlock_ports, (size_t)p->landlock_port_count * 2));
    if (p->seccomp_len) p->seccomp_filter = need(&u, at(&u, (uintptr_t)p->seccomp_filter, (size_t)p->seccomp_len * 8));
    p->path = need(&u, (void *)string_at(&u, (uintptr_t)p->path));
    p->argv = need(&u, (void *)strings_at(&u, (uintptr_t)p->argv));
    p->envp = need(&u, (void *)strings_at(&u, (uintptr_t)p->envp));
    return u.bad ? 0 : p;
}

/* One request: the packed plan with its descriptors. One reply:
 * {errno or 0, pid} with the pidfd. */
struct brw_spawn_reply {
    int32_t err;
    int32_t pid;
    uint32_t flags; /* BRW_SPAWNED_* */
    uint32_t reserved;
};

/* Room for BRW_MAX_FDS descriptors in one SCM_RIGHTS message, aligned. */
union fd_control {
    char buf[CMSG_SPACE(BRW_MAX_FDS * sizeof(int))];
    struct cmsghdr align;
};

static ssize_t send_with_fds(int sock, const void *data, size_t len, const int *fds, uint32_t n) {
    struct iovec iov = {(void *)data, len};
    union fd_control control;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (n) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), fds, n * sizeof(int));
    }
    ssize_t sent;
    do sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    return sent;
}

static ssize_t recv_with_fds(int sock, void *data, size_t cap, int *fds, uint32_t *n) {
    struct iovec iov = {data, cap};
    union fd_control control;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t got;
    do got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (got < 0 && errno == EINTR);
    *n = 0;
    if (got < 0) return got;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        uint32_t k = (uint32_t)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        memcpy(fds + *n, CMSG_DATA(c), k * sizeof(int));
        *n += k;
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        for (uint32_t i = 0; i < *n; i++) close(fds[i]);
        *n = 0;
        errno = EMSGSIZE;
        return -1;
    }
    return got;
}

int brw_spawner_request(int sock, const struct brw_child_plan *plan, uint8_t *buf, size_t cap, pid_t *pid, int *pidfd,
                        uint32_t *flags) {
    int fds[BRW_MAX_FDS];
    uint32_t n = 0;
    ssize_t len = brw_plan_pack(plan, buf, cap, fds, &n);
    if (len < 0) return (int)-len;
    if (send_with_fds(sock, buf, (size_t)len, fds, n) < 0) return errno;
    struct brw_spawn_reply reply;
    int got_fds[BRW_MAX_FDS];
    uint32_t k = 0;
    ssize_t got = recv_with_fds(sock, &reply, sizeof reply, got_fds, &k);
    if (got < 0) return errno;
    if (got != sizeof reply) {
        for (uint32_t i = 0; i < k; i++) close(got_fds[i]);
        return EPIPE; /* the spawner is gone */
    }
    if (reply.err) {
        for (uint32_t i = 0; i < k; i++) close(got_fds[i]);
        return reply.err;
    }
    if (k != 1) {
        for (uint32_t i = 0; i < k; i++) close(got_fds[i]);
        return EPROTO;
    }
    *pid = reply.pid;
    *pidfd = got_fds[0];
    *flags = reply.flags;
    return 0;
}

/*
 * Network namespaces prepared ahead. An empty one with loopback up is the most
 * expensive namespace to create, so between requests the spawner moves into a
 * fresh one; the next sandbox that asks for its own network namespace is
 * cloned into it (without CLONE_NEWNET) and the spawner leaves it for good:
 * each is used once. It is owned by the host's user namespace, so the tool
 * (with no capability there) cannot reconfigure it.
 *
 * Between requests: ready >= 0 means the spawner's current network namespace
 * is that prepared, unused one; ready < 0 means it is the host's.
 */
struct nets {
    int host;
    int ready;
};

static void prepare_net(struct nets *n) {
    if (n->ready >= 0 || n->host < 0) return;
    if (unshare(CLONE_NEWNET) == 0) {
        if (brw_loopback_up() == 0) {
            n->ready = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
            if (n->ready >= 0) return;
        }
        setns(n->host, CLONE_NEWNET); /* back to the host's: the plan's CLONE_NEWNET stands */
    }
}

static int spawn(struct nets *n, struct brw_child_plan *plan, pid_t *pid, int *pidfd, uint32_t *flags) {
    plan->clone_parent = 1;
    int wants_net = (plan->clone_flags & CLONE_NEWNET) != 0;
    /* The caller's own namespace (egress proxy): brw_spawn enters it for the clone. */
    if (n->ready < 0 || plan->netns_fd >= 0) return brw_spawn(plan, pid, pidfd);
    if (wants_net) {
        plan->clone_flags &= ~(uint64_t)CLONE_NEWNET;
        plan->loopback_up = 0; /* up already; the sandbox could not do it in a namespace it does not own */
        int rc = brw_spawn(plan, pid, pidfd);
        if (rc) return rc;
        *flags |= BRW_SPAWNED_PREPARED_NET;
        close(n->ready);
        n->ready = -1;
        return setns(n->host, CLONE_NEWNET) < 0 ? errno : 0;
    }
    /* The sandbox shares the host's network: clone from there, then come back. */
    if (setns(n->host, CLONE_NEWNET) < 0) return errno;
    int rc = brw_spawn(plan, pid, pidfd);
    if (setns(n->ready, CLONE_NEWNET) < 0) {
        close(n->ready);
        n->ready = -1;
    }
    return rc;
}

int brw_spawner_serve(int sock, uint8_t *buf, size_t cap) {
    struct nets nets = {open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), -1};
    for (;;) {
        prepare_net(&nets); /* for the next request, while none is waiting */
        int fds[BRW_MAX_FDS];
        uint32_t n = 0;
        ssize_t got = recv_with_fds(sock, buf, cap, fds, &n);
        if (got == 0) return 0; /* burrowd closed its end */
        struct brw_spawn_reply reply = {0, 0, 0, 0};
        int pidfd = -1;
        if (got < 0) {
            if (errno != EMSGSIZE) return errno;
            reply.err = EMSGSIZE;
        } else {
            struct brw_child_plan *plan = plan_unpack(buf, (size_t)got, fds, n);
            if (!plan) {
                reply.err = EPROTO;
            } else {
                pid_t pid = 0;
                reply.err = spawn(&nets, plan, &pid, &pidfd, &reply.flags);
                reply.pid = pid;
                if (reply.err && pidfd >= 0) {
                    close(pidfd);
                    pidfd = -1;
                }
            }
        }
        for (uint32_t i = 0; i < n; i++) close(fds[i]);
        ssize_t sent = send_with_fds(sock, &reply, sizeof reply, &pidfd, pidfd >= 0 ? 1 : 0);
        if (pidfd >= 0) close(pidfd);
        if (sent < 0) return errno;
    }
}
