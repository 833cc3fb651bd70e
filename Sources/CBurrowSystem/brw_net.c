#define _GNU_SOURCE
#include "brw_net.h"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int brw_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int brw_epoll_ctl(int ep, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = token;
    return epoll_ctl(ep, op, fd, &ev) < 0 ? -errno : 0;
}

int brw_epoll_wait(int ep, uint64_t *tokens, uint32_t *events, int max, int timeout_ms) {
    struct epoll_event evs[128];
    if (max > 128) max = 128;
    int n;
    do n = epoll_wait(ep, evs, max, timeout_ms);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) {
        tokens[i] = evs[i].data.u64;
        events[i] = evs[i].events;
    }
    return n;
}

int brw_relay_pipe(int *fds, int size) {
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) return -errno;
    (void)fcntl(fds[0], F_SETPIPE_SZ, size); /* the default (64 KiB) still works */
    return 0;
}

ssize_t brw_splice(int in, int out, size_t len) {
    ssize_t n;
    do n = splice(in, 0, out, 0, len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

int brw_accept(int listener) {
    int fd;
    do fd = accept4(listener, 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

int brw_tcp_connect(const uint8_t *addr, int len, uint16_t port) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (len == 4) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        memcpy(&a->sin_addr, addr, 4);
        sl = sizeof *a;
    } else if (len == 16) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        memcpy(&a->sin6_addr, addr, 16);
        sl = sizeof *a;
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int brw_socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
    return err;
}

int brw_shutdown_write(int fd) { return shutdown(fd, SHUT_WR) < 0 ? -errno : 0; }

void brw_close_reset(int fd) {
    struct linger l = {1, 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

int brw_socket_address(int fd, int peer, uint8_t *addr, uint16_t *port) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl) : getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (rc < 0) return 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        memcpy(addr, &a->sin_addr, 4);
        *port = ntohs(a->sin_port);
        return 4;
    }
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        memcpy(addr, &a->sin6_addr, 16);
        *port = ntohs(a->sin6_port);
        return 6;
    }
    return 0;
}

int brw_resolve(const char *name, uint8_t *out, int max, int *count) {
    struct addrinfo hints, *res = 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    /* A name only: a numeric string here would be a parser bug upstream. */
    int rc = getaddrinfo(name, 0, &hints, &res);
    *count = 0;
    if (rc) return rc;
    for (struct addrinfo *a = res; a && *count < max; a = a->ai_next) {
        uint8_t *rec = out + 17 * *count;
        memset(rec, 0, 17);
        if (a->ai_family == AF_INET) {
            rec[0] = 4;
            memcpy(rec + 1, &((struct sockaddr_in *)a->ai_addr)->sin_addr, 4);
        } else if (a->ai_family == AF_INET6) {
            rec[0] = 6;
            memcpy(rec + 1, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, 16);
        } else {
            continue;
        }
        /* getaddrinfo repeats an address once per socket type it could serve. */
        int seen = 0;
        for (int i = 0; i < *count && !seen; i++) seen = memcmp(out + 17 * i, rec, 17) == 0;
        if (!seen) (*count)++;
    }
    freeaddrinfo(res);
    return 0;
}

const char *brw_resolve_error(int code) { return gai_strerror(code); }

static int brw_unix_address(const char *path, struct sockaddr_un *sa) {
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof sa->sun_path) return -ENAMETOOLONG;
    memcpy(sa->sun_path, path, n);
    return 0;
}

int brw_unix_listen(const char *path, int backlog) {
    struct sockaddr_un sa;
    int rc = brw_unix_address(path, &sa);
    if (rc < 0) return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int brw_unix_connect(const char *path) {
    struct sockaddr_un sa;
    int rc = brw_unix_address(path, &sa);
    if (rc < 0) return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    do rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int brw_unix_accept(int listener) {
    int fd;
    do fd = accept4(listener, 0, 0, SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

#define BRW_MAX_FDS 8

ssize_t brw_send_fds(int sock, const uint8_t *buf, size_t len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > BRW_MAX_FDS) return -EINVAL;
    struct iovec iov = {(void *)buf, len};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    union {
        char bytes[CMSG_SPACE(sizeof(int) * BRW_MAX_FDS)];
        struct cmsghdr align;
    } control;
    if (nfds > 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.bytes;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    do n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

ssize_t brw_recv_fds(int sock, uint8_t *buf, size_t cap, int *fds, int max, int *nfds) {
    *nfds = 0;
    struct iovec iov = {buf, cap};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    union {
        char bytes[CMSG_SPACE(sizeof(int) * BRW_MAX_FDS)];
        struct cmsghdr align;
    } control;
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;
    ssize_t n;
    do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    int too_many = (msg.msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int got[BRW_MAX_FDS];
        if (count > BRW_MAX_FDS) count = BRW_MAX_FDS;
        memcpy(got, CMSG_DATA(c), sizeof(int) * count);
        for (int i = 0; i < count; i++) {
            if (*nfds < max && !too_many)
                fds[(*nfds)++] = got[i];
            else {
                too_many = 1;
                close(got[i]);
            }
        }
    }
    if (too_many) {
        for (int i = 0; i < *nfds; i++) close(fds[i]);
        *nfds = 0;
        return -EMSGSIZE;
    }
    return n;
}

int brw_peer_credentials(int sock, int32_t *pid, uint32_t *uid, uint32_t *gid) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -errno;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

int brw_peer_groups(int sock, uint32_t *out, int max) {
    socklen_t len = (socklen_t)(sizeof(gid_t) * (max > 0 ? max : 0));
    if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, out, &len) < 0) return -errno;
    return (int)(len / sizeof(gid_t));
}

int brw_socket_timeouts(int sock, int receive_ms, int send_ms) {
    struct timeval r = {receive_ms / 1000, (receive_ms % 1000) * 1000};
    struct timeval s = {send_ms / 1000, (send_ms % 1000) * 1000};
    if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &r, sizeof r) < 0) return -errno;
    if (setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &s, sizeof s) < 0) return -errno;
    return 0;
}
