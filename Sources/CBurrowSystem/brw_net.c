#define _GNU_SOURCE
#include "brw_net.h"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
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
