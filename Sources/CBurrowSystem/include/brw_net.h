#ifndef BRW_NET_H
#define BRW_NET_H

/* Thin wrappers for the egress proxy's event loop: epoll, splice and
 * non-blocking sockets, which Swift's Glibc module does not export. All
 * return a count or 0 on success, and -errno on failure. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int brw_epoll_create(void);
/* op: 1 add, 2 delete, 3 modify. */
int brw_epoll_ctl(int ep, int op, int fd, uint32_t events, uint64_t token);
int brw_epoll_wait(int ep, uint64_t *_Nonnull tokens, uint32_t *_Nonnull events, int max, int timeout_ms);

/* A non-blocking, close-on-exec pipe for splice, grown to `size` bytes when the kernel allows. */
int brw_relay_pipe(int *_Nonnull fds, int size);
/* splice(2) without blocking: bytes moved, 0 at end of input, -EAGAIN when nothing can move. */
ssize_t brw_splice(int in, int out, size_t len);

/* accept4 (non-blocking, close-on-exec): the new descriptor or -errno. */
int brw_accept(int listener);
/* A non-blocking TCP connection to addr (4 or 16 bytes) and port: the
 * descriptor (connecting, or connected) or -errno. */
int brw_tcp_connect(const uint8_t *_Nonnull addr, int len, uint16_t port);
/* SO_ERROR of a socket: 0 once a non-blocking connect succeeded. */
int brw_socket_error(int fd);
int brw_shutdown_write(int fd);
/* Closes with a reset instead of a FIN (SO_LINGER 0). */
void brw_close_reset(int fd);
/* The address and port of a connected TCP socket's peer or local end: family 4 or 6, 0 on error. */
int brw_socket_address(int fd, int peer, uint8_t *_Nonnull addr, uint16_t *_Nonnull port);

/* getaddrinfo for TCP, both families: up to `max` addresses as 17-byte
 * records (family 4 or 6, then 16 address bytes), in the resolver's order.
 * 0 with *count set, or a getaddrinfo error code (see brw_resolve_error). */
int brw_resolve(const char *_Nonnull name, uint8_t *_Nonnull out, int max, int *_Nonnull count);
const char *_Nonnull brw_resolve_error(int code);

#endif
