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

/* openat2(2) with RESOLVE_NO_SYMLINKS (and RESOLVE_BENEATH when beneath != 0):
 * a descriptor for `path` reached without following any symlink, or -errno. */
int brw_open_nofollow(int dirfd, const char *_Nonnull path, uint64_t flags, int beneath);

/* pipe2(2) with O_CLOEXEC: 0 or -errno. */
int brw_pipe_cloexec(int *_Nonnull fds);

/* A non-blocking, close-on-exec eventfd counting from 0, or -errno. */
int brw_eventfd(void);

/* The calling thread's nice value set to `value` (setpriority on its tid); 0 or -1 with errno. */
int brw_thread_nice(int value);

/* A detached copy of the mount at `fd` (an O_PATH descriptor) for a bind
 * mount elsewhere: open_tree(2) with OPEN_TREE_CLONE (AT_RECURSIVE when
 * `recursive`), then mount_setattr(2) setting `attr_set` (MOUNT_ATTR_*) on
 * the whole copy, and MOUNT_ATTR_IDMAP with `userns_fd` when it is >= 0. Returns the new descriptor or -errno. */
int brw_clone_mount(int fd, int recursive, uint64_t attr_set, int userns_fd);

/* A user namespace (as a descriptor from /proc/PID/ns/user) mapping host
 * uid `outside_uid` to `inside_uid` and gid `outside_gid` to `inside_gid`,
 * for MOUNT_ATTR_IDMAP. A throwaway child holds the namespace while its maps
 * are written, then is killed and reaped. Returns the descriptor or -errno. */
int brw_idmap_userns(uint32_t inside_uid, uint32_t outside_uid, uint32_t inside_gid, uint32_t outside_gid);

/* pidfd_send_signal(2): 0 or -errno. */
int brw_pidfd_send_signal(int pidfd, int sig);

/* waitid(P_PIDFD, pidfd, WEXITED | flags): stores the wait status in the
 * classic encoding (WIFEXITED/WTERMSIG); returns the pid, 0 if none is ready
 * (WNOHANG), or -errno. */
int brw_pidfd_wait(int pidfd, int flags, int *_Nonnull status);

/* One seccomp user notification, received with SECCOMP_IOCTL_NOTIF_RECV. */
struct brw_notification {
    uint64_t id;
    uint32_t pid;
    int32_t nr;
    uint32_t arch;
    uint64_t args[6];
};

/* Receives the next notification from `listener` (blocking): 0 or -errno
 * (-ENOENT when the caller died before it could be read). */
int brw_notify_receive(int listener, struct brw_notification *_Nonnull out);

/* Answers notification `id`: the call fails with `error` (a positive errno). 0 or -errno. */
int brw_notify_deny(int listener, uint64_t id, int error);

/* signalfd(2) for the given signals (non-blocking, close-on-exec), after
 * blocking them in the calling thread; or -errno. */
int brw_signalfd(const int *_Nonnull signals, int count);

/* The next signal number from a signalfd, 0 when none is pending, or -errno. */
int brw_signalfd_read(int fd);

/* What the file system behind `fd` has in use (fstatfs(2)): bytes used,
 * inodes used and in all; `full` 1 when no block is left, 2 when no inode
 * is. 0 or -errno. */
int brw_fs_usage(int fd, uint64_t *_Nonnull used_bytes, uint64_t *_Nonnull used_inodes, uint64_t *_Nonnull inodes,
                 int *_Nonnull full);

/* Project quotas (ext4 with -O project mounted prjquota, xfs with pquota),
 * through quotactl_fd(2) (Linux 5.14) on any descriptor of the file system. */
struct brw_quota {
    uint64_t used_bytes;  /* in use, reserved (delayed allocation) included */
    uint64_t hard_blocks; /* 1024-byte blocks; 0: no limit */
    uint64_t soft_blocks;
};

/* The file of the loaded object holding `symbol` (dladdr(3)), or NULL. */
const char *_Nullable brw_symbol_file(const void *_Nonnull symbol);

/* Sets the calling thread's file-system identity: supplementary groups
 * (setgroups(2) made raw: glibc's wrapper changes every thread), fsgid and
 * fsuid, checked after each change. Leaving fsuid 0 clears the thread's
 * file-system capabilities (CAP_DAC_OVERRIDE…); returning to 0 restores
 * them. 0, or -errno (the thread may then be half changed: set it back). */
int brw_thread_fs_identity(uint32_t uid, uint32_t gid, const uint32_t *_Nullable groups, int count);

/* The calling thread's supplementary groups (getgroups(2)): their count, or -errno. */
int brw_thread_groups(uint32_t *_Nonnull out, int max);

/* Whether the calling thread's file-system identity may access the file
 * `fd` refers to (an O_PATH descriptor will do) with `mode` (R_OK, W_OK,
 * X_OK): faccessat2(2) with AT_EMPTY_PATH | AT_EACCESS, made raw so that no
 * library emulation falls back to the effective ids. 0, or -errno. */
int brw_access_fd(int fd, int mode);

/* The file system's magic number (fstatfs(2) f_type), or -errno. */
int64_t brw_fs_type(int fd);

/* 0 when project quotas are counted and enforced on the file system behind
 * `fd` (Q_XGETQSTATV: FS_QUOTA_PDQ_ACCT and _ENFD), 1 when only counted, or
 * -errno: -ESRCH (quotas off), -ENOSYS (no quotactl_fd, or a file system
 * without quota operations), -EOPNOTSUPP and others. */
int brw_project_quota_on(int fd);

/* The project `id`'s usage and limits. 0 or -errno. */
int brw_project_quota_get(int fd, uint32_t id, struct brw_quota *_Nonnull out);

/* Sets the project `id`'s block limits (1024-byte blocks; 0: none). 0 or -errno. */
int brw_project_quota_set(int fd, uint32_t id, uint64_t hard_blocks, uint64_t soft_blocks);

/* The project id and FS_XFLAG_* flags of the inode behind `fd` (FS_IOC_FSGETXATTR). 0 or -errno. */
int brw_project_get(int fd, uint32_t *_Nonnull id, uint32_t *_Nonnull xflags);

/* Sets the inode's project id, and FS_XFLAG_PROJINHERIT when `inherit`
 * (directories: what is created inside takes the id). 0 or -errno. */
int brw_project_set(int fd, uint32_t id, int inherit);

#include "brw_net.h"

#endif
