/*
 * brw_child.h: the only code that runs between clone3() and execve().
 *
 * Swift (BurrowRuntime) builds a `struct brw_child_plan` of plain data, calls
 * brw_spawn(), and then drives the parent side of the protocol below. The
 * child only applies the plan: raw system calls on memory the parent owns.
 *
 *   supervisor (parent)                 init (clone child, PID 1)        tool (PID 2)
 *   brw_spawn ── clone3(CLONE_PIDFD|NEW*) ──►  waits on `sock`
 *   writes uid_map/gid_map, joins cgroups
 *   send 'G' ───────────────────────────────►  mounts, pivot_root, rlimits,
 *                                              creds, caps, no_new_privs,
 *                                              Landlock; fork ─────────────►  seccomp (NEW_LISTENER)
 *   recv {LISTENER} + SCM_RIGHTS fd ◄─────────────────────────────────────── sendmsg
 *   send 'A' ─────────────────────────────────────────────────────────────►  execve
 *     (hold_exec: the tool waits here, fully built, until the supervisor
 *     sends 'X' with the argv and envp to execve; see brw_exec_message)
 *   recv → 0 bytes (EOF: execve succeeded; `sock` is close-on-exec)
 *   recv {stage, errno, index} instead: that step failed; the child _exit(127)s
 *   status pipe: init writes the tool's wait status (int) when it ends
 *
 * Without an init (sandbox level none) the clone child is the tool itself.
 */
#ifndef BRW_CHILD_H
#define BRW_CHILD_H

#include <stdint.h>
#include <sys/types.h>

/* Mirrored 1:1 by Swift `ChildStage` (a test keeps them in step). */
enum brw_stage {
    BRW_STAGE_WAIT_PARENT = 1,
    BRW_STAGE_SESSION = 2,
    BRW_STAGE_MOUNTS = 3,
    BRW_STAGE_PIVOT_ROOT = 4,
    BRW_STAGE_REMOUNT_ROOT = 5,
    BRW_STAGE_HOSTNAME = 6,
    BRW_STAGE_LOOPBACK = 7,
    BRW_STAGE_CHDIR = 8,
    BRW_STAGE_RLIMITS = 9,
    BRW_STAGE_LANDLOCK_RULES = 10,
    BRW_STAGE_BOUNDING_SET = 11,
    BRW_STAGE_SECUREBITS = 12,
    BRW_STAGE_SETGROUPS = 13,
    BRW_STAGE_SETGID = 14,
    BRW_STAGE_SETUID = 15,
    BRW_STAGE_CAPABILITIES = 16,
    BRW_STAGE_PARENT_DEATH = 17,
    BRW_STAGE_NO_NEW_PRIVS = 18,
    BRW_STAGE_LANDLOCK = 19,
    BRW_STAGE_FORK_INIT = 20,
    BRW_STAGE_CLOSE_FDS = 21,
    BRW_STAGE_SECCOMP = 22,
    BRW_STAGE_HANDSHAKE = 23,
    BRW_STAGE_EXEC = 24,
    BRW_STAGE_STDIO = 25,
    BRW_STAGE_CGROUP_JOIN = 26,
    /* Not a failure: the message carries the seccomp listener (SCM_RIGHTS). */
    BRW_STAGE_LISTENER = 100,
    /* Not a failure: hold_exec without a seccomp filter, the tool waits for 'X'. */
    BRW_STAGE_HELD = 101,
};

/* One message on `sock`, child to parent. */
struct brw_child_report {
    uint32_t stage;
    int32_t err;    /* errno of the failed call, 0 for BRW_STAGE_LISTENER */
    uint32_t index; /* mount entry, rlimit or rule index for list stages, else 0 */
    uint32_t reserved;
};

enum brw_mount_kind {
    BRW_MOUNT_BIND = 1,    /* attach source_fd (a detached mount from open_tree) at target */
    BRW_MOUNT_FS = 2,      /* a fresh file system: fstype/data/flags (tmpfs, proc) */
    BRW_MOUNT_SYMLINK = 3, /* symlink target -> text */
    BRW_MOUNT_FILE = 4,    /* a file with text[0..text_len) */
};

struct brw_mount {
    uint32_t kind;
    int32_t source_fd;            /* BIND: a detached mount prepared by the parent (flags already set) */
    const char *_Nullable target; /* relative to the new root, no leading '/'; "" is the root itself */
    const char *_Nullable fstype; /* FS */
    const char *_Nullable data;   /* FS: mount data ("size=16M,mode=1777") */
    const char *_Nullable text;   /* SYMLINK: link text; FILE: content */
    uint64_t text_len;
    uint64_t flags;         /* FS: MS_* flags */
    uint32_t target_is_dir; /* mount point to create: directory (1) or file (0) */
    uint32_t must_exist;    /* do not create the mount point; skip when absent (masks) */
    uint32_t mode;          /* FILE: permission bits */
};

struct brw_rlimit {
    uint32_t resource;
    uint64_t soft, hard;
};

struct brw_landlock_rule {
    const char *_Nullable path; /* absolute, in the sandbox view (after pivot_root) */
    uint64_t access;            /* LANDLOCK_ACCESS_FS_* */
};

struct brw_child_plan {
    /* clone */
    uint64_t clone_flags;  /* CLONE_NEW* */
    int32_t cgroup_fd;     /* >= 0: CLONE_INTO_CGROUP */
    int32_t sock;          /* child end of the SOCK_SEQPACKET report socket */
    int32_t status_fd;     /* write end of the status pipe (init only), or -1 */
    int32_t netns_fd;      /* >= 0: cloned into this network namespace (setns around clone3); -1: none */
    uint32_t use_init;     /* 1: the clone child stays as PID 1 and forks the tool */
    uint32_t clone_parent; /* 1: CLONE_PARENT (burrow-spawner: the sandbox is its caller's child) */
    int32_t stdio[3];      /* >= 0: becomes the tool's fd 0, 1, 2; -1: inherited */
    const int32_t *_Nullable cgroup_tasks; /* v1 `tasks` files the child writes "0" to (joins itself) */
    uint32_t cgroup_task_count;

    /* file system */
    const char *_Nullable staging; /* where the new root's tmpfs is mounted before pivot_root */
    const struct brw_mount *_Nullable mounts;
    uint32_t mount_count;
    uint64_t root_attr; /* MOUNT_ATTR_* for the new root once complete */
    const char *_Nullable workdir;
    const char *_Nullable hostname; /* NULL: leave it */
    uint32_t loopback_up;

    /* resources */
    const struct brw_rlimit *_Nullable rlimits;
    uint32_t rlimit_count;

    /* identity and privileges */
    uint32_t set_ids; /* 0: keep the caller's ids (sandbox level none) */
    uint32_t uid, gid;
    uint32_t cap_last;     /* /proc/sys/kernel/cap_last_cap */
    uint32_t keep_caps[2]; /* capability bit mask (0..63) kept in all five sets */
    uint32_t securebits;   /* final value, locks included */

    /* Landlock (abi 0: none) */
    uint32_t landlock_abi;
    uint64_t landlock_handled_fs, landlock_handled_net, landlock_scoped;
    const struct brw_landlock_rule *_Nullable landlock_rules;
    uint32_t landlock_rule_count;
    const uint16_t *_Nullable landlock_ports; /* CONNECT_TCP allowed to these ports */
    uint32_t landlock_port_count;

    /* seccomp (len 0: none) */
    const void *_Nullable seccomp_filter; /* struct sock_filter[] */
    uint16_t seccomp_len;

    /* exec */
    const char *_Nullable path;
    char *_Nullable const *_Nullable argv;
    char *_Nullable const *_Nullable envp;
    /* 1: argv and envp are ignored; the built sandbox waits at the handshake
     * for the supervisor's 'X' message with the ones to execve (a sandbox
     * built ahead of its request). */
    uint32_t hold_exec;
};

/*
 * The 'X' message to a held tool, one SOCK_SEQPACKET datagram of at most
 * BRW_EXEC_MESSAGE_MAX bytes: 'X', argc and envc (uint32, host order), then
 * argc + envc NUL-terminated strings, nothing after. The tool reads it into a
 * mapping made before its seccomp filter and execve()s plan->path with it.
 */
#define BRW_EXEC_MESSAGE_MAX (256u << 10)

/*
 * Creates the child. On success returns 0 and stores its pid and pidfd; the
 * child then waits for the go byte on plan->sock. Returns an errno otherwise.
 * All signals are blocked around clone3 so no handler runs in the child.
 */
int brw_spawn(const struct brw_child_plan *_Nonnull plan, pid_t *_Nonnull pid, int *_Nonnull pidfd);

/* burrow-spawner (brw_spawner.c). The caller sends a plan with its
 * descriptors; the spawner clones the sandbox as the caller's child
 * (CLONE_PARENT) and answers with its pid and pidfd. `buf` is scratch space
 * for the packed plan. Both return 0 or an errno (serve: when it ends). */
int brw_spawner_request(int sock, const struct brw_child_plan *_Nonnull plan, uint8_t *_Nonnull buf, size_t cap,
                        pid_t *_Nonnull pid, int *_Nonnull pidfd, uint32_t *_Nonnull flags);
int brw_spawner_serve(int sock, uint8_t *_Nonnull buf, size_t cap);

/* brw_spawner_request's flags: the sandbox got a network namespace the
 * spawner prepared ahead (empty, loopback up, owned by the host's user
 * namespace) instead of a CLONE_NEWNET of its own. */
#define BRW_SPAWNED_PREPARED_NET 1u

/* Brings loopback up in the caller's network namespace (signal-safe). */
int brw_loopback_up(void);

/* A network namespace for a sandbox whose egress goes through the
 * supervisor's proxy: created by the calling thread alone (unshare), with
 * loopback up and a TCP socket listening on 127.0.0.1:port inside it; the
 * thread then returns to its own namespace. The namespace belongs to the
 * caller's user namespace, so a sandbox placed in it cannot reconfigure it.
 * Returns 0 with both descriptors (close-on-exec; the listener non-blocking),
 * or an errno. */
int brw_netns_prepare(uint16_t port, int *_Nonnull netns_fd, int *_Nonnull listen_fd);

/* Parent side: receives one report, and the descriptor it carries, if any.
 * Returns the byte count (0 at EOF) or -errno. *fd is -1 when none came. */
ssize_t brw_recv_report(int sock, struct brw_child_report *_Nonnull report, int *_Nonnull fd, int timeout_ms);

#endif
