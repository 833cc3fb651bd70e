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

/* Unix stream sockets between `burrow` and burrowd's session socket
 * (blocking, close-on-exec). */
/* A socket bound and listening at path: the descriptor or -errno (-ENAMETOOLONG past sun_path). */
int brw_unix_listen(const char *_Nonnull path, int backlog);
/* A connection to the socket at path: the descriptor or -errno. */
int brw_unix_connect(const char *_Nonnull path);
/* accept4, close-on-exec, blocking: the new descriptor or -errno. */
int brw_unix_accept(int listener);
/* sendmsg (MSG_NOSIGNAL) of len bytes, with nfds descriptors (at most 8) as
 * SCM_RIGHTS: the bytes sent or -errno. */
ssize_t brw_send_fds(int sock, const uint8_t *_Nonnull buf, size_t len, const int *_Nullable fds, int nfds);
/* recvmsg (MSG_CMSG_CLOEXEC) into buf; descriptors that came with the bytes
 * go to fds (up to max, *nfds set). More than max, or a truncated control
 * message: every descriptor that arrived is closed and -EMSGSIZE returned.
 * The bytes read (0 at end of stream) or -errno. */
ssize_t brw_recv_fds(int sock, uint8_t *_Nonnull buf, size_t cap, int *_Nonnull fds, int max, int *_Nonnull nfds);
/* SO_PEERCRED: the peer's pid, uid and gid at connect(). */
int brw_peer_credentials(int sock, int32_t *_Nonnull pid, uint32_t *_Nonnull uid, uint32_t *_Nonnull gid);
/* SO_PEERGROUPS: the peer's supplementary groups at connect(): the count, or -errno (-ERANGE: more than max). */
int brw_peer_groups(int sock, uint32_t *_Nonnull out, int max);
/* SO_RCVTIMEO and SO_SNDTIMEO in milliseconds (0: none). */
int brw_socket_timeouts(int sock, int receive_ms, int send_ms);

#endif
