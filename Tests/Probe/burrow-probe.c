/*
 * burrow-probe: a hostile tool. Run inside a sandbox, it attempts escapes and
 * prints one line per attempt:
 *
 *     <case> blocked|escaped <detail>
 *
 * and exits with the number of escapes (capped at 100). Cases that a correct
 * sandbox answers by killing the process (x32, int80) run alone: the caller
 * expects SIGSYS. Run without a sandbox (as root) the same cases must show
 * escapes, which proves the probe can tell.
 *
 * Usage: burrow-probe [--secret PATH] [--port N] [--abstract NAME] [--ptrace PID] CASE...
 *        burrow-probe all      (every in-process case)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static const char *secret_path = "/etc/shadow";
static int host_port = 0;
static const char *abstract_name = "burrow-probe";
static int escapes = 0;
static pid_t ptrace_target = 1;

static void verdict(const char *name, int escaped, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void verdict(const char *name, int escaped, const char *fmt, ...) {
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    printf("%s %s %s\n", name, escaped ? "escaped" : "blocked", detail);
    fflush(stdout);
    if (escaped) escapes++;
}

/* A call that must fail: escaped when it succeeds. */
static void must_fail(const char *name, long rc, int saved_errno) {
    if (rc >= 0)
        verdict(name, 1, "succeeded (%ld)", rc);
    else
        verdict(name, 0, "%s", strerrorname_np(saved_errno) ? strerrorname_np(saved_errno) : "error");
}
#define MUST_FAIL(name, call)                                                                                          \
    do {                                                                                                               \
        errno = 0;                                                                                                     \
        long rc_ = (long)(call);                                                                                       \
        must_fail(name, rc_, errno);                                                                                   \
    } while (0)

/* ---- privilege ---- */

static int no_new_privs(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int nnp = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "NoNewPrivs:\t1", 13)) nnp = 1;
    if (f) fclose(f);
    return nnp;
}

static void case_setuid(void) { MUST_FAIL("setuid_root", setuid(0)); }

static void case_setuid_binary(void) {
    /* A setuid-root program must not give root: exec would fail or run
     * unprivileged (nosuid, no_new_privs). Here: is any found and executable? */
    const char *candidates[] = {"/usr/bin/su", "/bin/su", "/usr/bin/passwd", "/usr/bin/mount", "/usr/bin/sudo"};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
        struct stat st;
        if (stat(candidates[i], &st) == 0 && (st.st_mode & S_ISUID) && access(candidates[i], X_OK) == 0) {
            /* Reachable; privileges still cannot rise if no_new_privs is set. */
            int nnp = no_new_privs();
            verdict("setuid_binary", !nnp, "%s reachable, no_new_privs=%d", candidates[i], nnp);
            return;
        }
    }
    verdict("setuid_binary", 0, "no setuid program reachable");
}

static void case_capabilities(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        verdict("capabilities", 0, "/proc/self/status unreadable");
        return;
    }
    char line[256], found[512] = "";
    int any = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Cap", 3)) {
            char *v = strchr(line, '\t');
            if (v && strtoull(v + 1, 0, 16) != 0) {
                any = 1;
                line[strcspn(line, "\n")] = 0;
                strncat(found, line, sizeof found - strlen(found) - 2);
                strcat(found, " ");
            }
        }
    }
    fclose(f);
    verdict("capabilities", any, "%s", any ? found : "all five sets empty");
}

static void case_file_capabilities(void) {
    /* File capabilities are ignored under no_new_privs. */
    int nnp = no_new_privs();
    verdict("file_capabilities", !nnp, "no_new_privs=%d", nnp);
}

static void case_ptrace(void) {
    /* PTRACE_SEIZE does not stop the tracee; exiting detaches it. The target
     * is the sandbox's init by default: never point it at a process that
     * must not be traced (the unsandboxed control run passes a throwaway). */
    errno = 0;
    long rc = ptrace(PTRACE_SEIZE, ptrace_target, 0, 0);
    must_fail("ptrace_seize", rc, errno);
}

static void case_userns(void) {
    MUST_FAIL("unshare_userns", unshare(CLONE_NEWUSER));
    /* raw clone with a new user namespace; the child (if any) exits at once */
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, 0, 0);
    must_fail("clone_userns", pid, errno);
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_NEWUSER;
    args.exit_signal = SIGCHLD;
    errno = 0;
    pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, 0, 0);
    must_fail("clone3_userns", pid, errno);
}

static void case_mount(void) {
    /* /mnt, not a path the later cases use (the control run really mounts it). */
    MUST_FAIL("mount_tmpfs", mount("none", "/mnt", "tmpfs", 0, 0));
    MUST_FAIL("remount_root_rw", mount(0, "/", 0, MS_REMOUNT | MS_BIND, 0));
    MUST_FAIL("umount_proc", umount2("/proc", MNT_DETACH));
}

static void case_setns(void) {
    int fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    long rc = fd >= 0 ? setns(fd, 0) : -1;
    int e = errno;
    if (fd >= 0) close(fd);
    must_fail("setns", rc, e);
}

static void case_chroot(void) {
    if (chroot("/tmp") < 0) {
        verdict("chroot_escape", 0, "chroot: %s", strerrorname_np(errno));
        return;
    }
    for (int i = 0; i < 64; i++) chdir("..");
    int escaped = chroot(".") == 0 && access(secret_path, F_OK) == 0;
    verdict("chroot_escape", escaped, "classic double chroot");
}

/* ---- seccomp bypass ---- */

static void case_x32(void) {
    /* x32 ABI: the same numbers with bit 30 set. A correct filter kills us. */
    long rc = syscall(0x40000000 | SYS_getpid);
    verdict("x32", rc >= 0, "x32 getpid returned %ld (%s)", rc, rc < 0 ? strerrorname_np(errno) : "ok");
}

static void case_int80(void) {
    /* The i386 entry point: getpid is 20 there. A correct filter kills us. */
    long rc;
    __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20) : "memory");
    verdict("int80", rc >= 0, "int 0x80 getpid returned %ld", rc);
}

static void case_io_uring(void) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    long fd = syscall(SYS_io_uring_setup, 4, &params);
    int e = errno;
    if (fd >= 0) close((int)fd);
    must_fail("io_uring", fd, e);
}

static void case_tiocsti(void) {
    char c = 'x';
    /* The kernel compares only the low 32 bits of the request: TIOCSTI with high bits set. */
    unsigned long request = TIOCSTI | (1UL << 32);
    errno = 0;
    long rc = ioctl(0, request, &c);
    int e = errno;
    /* Refused by seccomp (EPERM) or not a terminal (ENOTTY): both mean no input was injected. */
    if (rc >= 0)
        verdict("tiocsti_high_bits", 1, "ioctl succeeded");
    else
        verdict("tiocsti_high_bits", 0, "%s", strerrorname_np(e));
    errno = 0;
    rc = ioctl(0, TIOCLINUX, &c);
    must_fail("tioclinux", rc, errno);
}

static void case_unknown_syscall(void) {
    errno = 0;
    long rc = syscall(1000);
    int e = errno;
    verdict("unknown_syscall", !(rc < 0 && e == ENOSYS), "syscall(1000) = %ld %s", rc,
            rc < 0 ? strerrorname_np(e) : "");
}

static void *thread_unshare(void *arg) {
    (void)arg;
    long rc = unshare(CLONE_NEWNS);
    return (void *)(rc < 0 ? (intptr_t)errno : 0);
}

static void case_thread_race(void) {
    /* A thread must be under the same filter as the main thread. */
    pthread_t t;
    void *result = 0;
    if (pthread_create(&t, 0, thread_unshare, 0) != 0) {
        verdict("thread_race", 0, "no thread could be created");
        return;
    }
    pthread_join(t, &result);
    intptr_t e = (intptr_t)result;
    verdict("thread_race", e == 0, "unshare from a thread: %s", e ? strerrorname_np((int)e) : "succeeded");
}

/* ---- file system ---- */

static void case_secret(void) {
    int fd = open(secret_path, O_RDONLY | O_CLOEXEC);
    int e = errno;
    if (fd >= 0) close(fd);
    must_fail("read_secret", fd, e);
}

static void case_write_outside(void) {
    const char *paths[] = {"/etc/burrow-probe-wrote-here", "/usr/burrow-probe-wrote-here", "/burrow-probe-wrote-here"};
    for (size_t i = 0; i < 3; i++) {
        int fd = open(paths[i], O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        int e = errno;
        if (fd >= 0) {
            close(fd);
            unlink(paths[i]);
        }
        char name[64];
        snprintf(name, sizeof name, "write_outside_%zu", i);
        must_fail(name, fd, e);
    }
}

static void case_symlink_out(void) {
    unlink("/tmp/probe-link");
    if (symlink(secret_path, "/tmp/probe-link") < 0) {
        verdict("symlink_out", 0, "symlink: %s", strerrorname_np(errno));
        return;
    }
    int fd = open("/tmp/probe-link", O_RDONLY | O_CLOEXEC);
    int e = errno;
    if (fd >= 0) close(fd);
    unlink("/tmp/probe-link");
    must_fail("symlink_out", fd, e);
}

static void case_hardlink_out(void) {
    unlink("/tmp/probe-hard");
    MUST_FAIL("hardlink_secret", link(secret_path, "/tmp/probe-hard"));
    unlink("/tmp/probe-hard");
    MUST_FAIL("hardlink_system_file", link("/etc/passwd", "/tmp/probe-hard"));
    unlink("/tmp/probe-hard");
}

static void case_proc_sys(void) {
    /* Opening for writing is the test: nothing is written, so a run without a
     * sandbox changes no host setting. */
    const char *writes[] = {"/proc/sys/kernel/hostname", "/proc/sysrq-trigger", "/sys/kernel/uevent_helper",
                            "/proc/1/oom_score_adj", "/proc/sys/kernel/core_pattern"};
    for (size_t i = 0; i < sizeof writes / sizeof *writes; i++) {
        int fd = open(writes[i], O_WRONLY | O_CLOEXEC);
        int e = errno;
        if (fd >= 0) close(fd);
        char name[80];
        snprintf(name, sizeof name, "write_%s", writes[i] + 1);
        for (char *c = name; *c; c++)
            if (*c == '/') *c = '_';
        must_fail(name, fd, e);
    }
}

static void case_devices(void) {
    MUST_FAIL("mknod", mknod("/tmp/probe-dev", S_IFCHR | 0600, makedev(1, 1)));
    unlink("/tmp/probe-dev");
    const char *devs[] = {"/dev/mem", "/dev/kmsg", "/dev/sda", "/dev/vda", "/dev/tty", "/dev/console"};
    for (size_t i = 0; i < sizeof devs / sizeof *devs; i++) {
        int fd = open(devs[i], O_RDWR | O_CLOEXEC);
        int e = errno;
        if (fd >= 0) close(fd);
        char name[64];
        snprintf(name, sizeof name, "open%s", devs[i]);
        for (char *c = name; *c; c++)
            if (*c == '/') *c = '_';
        must_fail(name, fd, e);
    }
}

static void case_fds(void) {
    char found[256] = "";
    int any = 0;
    for (int fd = 3; fd < 1024; fd++) {
        if (fcntl(fd, F_GETFD) >= 0) {
            any = 1;
            char n[16];
            snprintf(n, sizeof n, "%d ", fd);
            strncat(found, n, sizeof found - strlen(found) - 1);
        }
    }
    verdict("leaked_fds", any, "%s", any ? found : "only 0-2 open");
}

static void case_cwd(void) {
    /* cwd must be inside the new root: climbing can never reach the host's secret. */
    for (int i = 0; i < 64; i++) chdir("..");
    int fd = openat(AT_FDCWD, secret_path[0] == '/' ? secret_path + 1 : secret_path, O_RDONLY | O_CLOEXEC);
    int e = errno;
    if (fd >= 0) close(fd);
    must_fail("cwd_climb", fd, e);
}

static void case_exec_scratch(const char *self) {
    /* Runs last: on success execve replaces us with a copy that reports the escape. */
    int in = open(self, O_RDONLY | O_CLOEXEC);
    if (in < 0) in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    int out = open("/tmp/probe-exec", O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0755);
    if (in < 0 || out < 0) {
        verdict("exec_scratch", 0, "cannot copy the probe: %s", strerrorname_np(errno));
        return;
    }
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) write(out, buf, (size_t)n);
    close(in);
    close(out);
    chmod("/tmp/probe-exec", 0755);
    char *argv[] = {"/tmp/probe-exec", "--exec-escaped", 0};
    char *envp[] = {0};
    execve("/tmp/probe-exec", argv, envp);
    verdict("exec_scratch", 0, "execve: %s", strerrorname_np(errno));
}

/* ---- network ---- */

static void case_network(void) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) {
        verdict("egress_socket", 0, "socket(AF_INET): %s", strerrorname_np(errno));
        verdict("host_loopback", 0, "no IP socket");
    } else {
        /* 192.0.2.1 (TEST-NET-1): a route means egress exists (EINPROGRESS); no route is ENETUNREACH. */
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9)};
        a.sin_addr.s_addr = htonl(0xC0000201);
        int rc = connect(s, (struct sockaddr *)&a, sizeof a);
        int e = errno;
        int routed = rc == 0 || e == EINPROGRESS;
        verdict("egress_socket", routed, "connect 192.0.2.1:9: %s", rc == 0 ? "connected" : strerrorname_np(e));
        close(s);
        if (host_port) {
            s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            struct sockaddr_in l = {.sin_family = AF_INET, .sin_port = htons((uint16_t)host_port)};
            l.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            rc = connect(s, (struct sockaddr *)&l, sizeof l);
            verdict("host_loopback", rc == 0, "connect 127.0.0.1:%d: %s", host_port,
                    rc == 0 ? "connected" : strerrorname_np(errno));
            close(s);
        }
    }
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un u;
    memset(&u, 0, sizeof u);
    u.sun_family = AF_UNIX;
    size_t len = strlen(abstract_name);
    if (len > sizeof u.sun_path - 2) len = sizeof u.sun_path - 2;
    memcpy(u.sun_path + 1, abstract_name, len);
    int rc =
        s >= 0 ? connect(s, (struct sockaddr *)&u, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)) : -1;
    verdict("abstract_unix", rc == 0, "connect @%s: %s", abstract_name, rc == 0 ? "connected" : strerrorname_np(errno));
    if (s >= 0) close(s);
}

/* ---- signals ---- */

static void case_signals(void) {
    /* Signal 0 checks permission without sending anything: success means some
     * process outside the probe could be signalled. */
    errno = 0;
    int rc = kill(-1, 0);
    verdict("kill_all", rc == 0, "kill(-1, 0): %s", rc == 0 ? "reached other processes" : strerrorname_np(errno));
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--exec-escaped")) {
        printf("exec_scratch escaped a copy written to /tmp was executed\n");
        return 1;
    }
    int first = 1;
    while (first + 1 < argc && argv[first][0] == '-' && argv[first][1] == '-') {
        if (!strcmp(argv[first], "--secret"))
            secret_path = argv[first + 1];
        else if (!strcmp(argv[first], "--port"))
            host_port = atoi(argv[first + 1]);
        else if (!strcmp(argv[first], "--abstract"))
            abstract_name = argv[first + 1];
        else if (!strcmp(argv[first], "--ptrace"))
            ptrace_target = atoi(argv[first + 1]);
        first += 2;
    }
    int all = first < argc && !strcmp(argv[first], "all");
    int exec_last = 0;
    for (int i = first; i < argc; i++) {
        const char *c = argv[i];
#define RUN(name, fn)                                                                                                  \
    if (all || !strcmp(c, name)) fn();
        RUN("setuid", case_setuid)
        RUN("setuid_binary", case_setuid_binary)
        RUN("capabilities", case_capabilities)
        RUN("file_capabilities", case_file_capabilities)
        RUN("ptrace", case_ptrace)
        RUN("mount", case_mount)
        RUN("setns", case_setns)
        RUN("io_uring", case_io_uring)
        RUN("tiocsti", case_tiocsti)
        RUN("unknown_syscall", case_unknown_syscall)
        RUN("thread_race", case_thread_race)
        RUN("secret", case_secret)
        RUN("write_outside", case_write_outside)
        RUN("symlink_out", case_symlink_out)
        RUN("hardlink_out", case_hardlink_out)
        RUN("proc_sys", case_proc_sys)
        RUN("devices", case_devices)
        RUN("fds", case_fds)
        RUN("network", case_network)
        RUN("signals", case_signals)
        RUN("cwd", case_cwd)
        RUN("chroot", case_chroot)
        /* Last of the in-process cases: a successful unshare(CLONE_NEWUSER)
         * would take the privileges the other cases test. */
        RUN("userns", case_userns)
        if (!all && !strcmp(c, "x32")) case_x32();
        if (!all && !strcmp(c, "int80")) case_int80();
        if (all || !strcmp(c, "exec_scratch")) exec_last = 1;
        if (all) break;
    }
    if (exec_last) case_exec_scratch(argv[0]);
    return escapes > 100 ? 100 : escapes;
}
