/*
 * brw_sys.h: raw system calls that Swift cannot express (variadic syscall(2),
 * calls glibc does not wrap) and throwaway-child probes for `burrow doctor`.
 *
 * Every function returns a non-negative result or a negated errno; none keeps
 * state. Imported only by the BurrowSystem module.
 */
#ifndef BRW_SYS_H
#define BRW_SYS_H

#include <stdint.h>
#include <sys/types.h>

/* Landlock ABI version (>= 1), or -errno (-ENOSYS, -EOPNOTSUPP when disabled). */
int brw_landlock_abi(void);

/* 0 when the seccomp return action `action` (SECCOMP_RET_*) is available, or -errno. */
int brw_seccomp_action_available(uint32_t action);

/* 0 when seccomp user notification works (SECCOMP_GET_NOTIF_SIZES), or -errno. */
int brw_seccomp_notify_sizes(uint16_t *_Nonnull notif, uint16_t *_Nonnull resp, uint16_t *_Nonnull data);

/* A pidfd for `pid` (pidfd_open(2)), or -errno. */
int brw_pidfd_open(pid_t pid, unsigned int flags);

/*
 * Creates a child with `flags` (CLONE_NEW*), which exits at once with status 0,
 * and reaps it. use_clone3: 1 for clone3(2) (with CLONE_PIDFD, and
 * CLONE_INTO_CGROUP when cgroup_fd >= 0), 0 for the legacy clone(2).
 * Returns 0 when the child was created and exited cleanly, or -errno.
 * Nothing is tried in the calling process itself.
 */
int brw_probe_clone(uint64_t flags, int use_clone3, int cgroup_fd);

/* An anonymous, close-on-exec memory file (memfd_create(2)), or -errno. */
int brw_memfd(const char *_Nonnull name);

#endif
