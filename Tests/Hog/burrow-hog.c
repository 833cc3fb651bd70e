/*
 * burrow-hog: a tool that abuses resources, one way per mode, so the tests can
 * assert which limit ended it. It prints what it managed before it stopped.
 *
 *   burrow-hog memory MIB           touch MIB MiB, 1 MiB at a time
 *   burrow-hog fork N               fork up to N children that sleep, then sleep
 *   burrow-hog spin CHILDREN THREADS MS
 *                                   CHILDREN processes, each with THREADS
 *                                   spinning threads, each process stopping at
 *                                   MS ms of its own CPU time (keep MS under
 *                                   RLIMIT_CPU: only the tree's sum is over)
 *   burrow-hog burn THREADS         spin THREADS threads of this one process
 *                                   until something stops it
 *   burrow-hog sleep SECONDS        sleep
 *   burrow-hog stop                 SIGSTOP itself
 *   burrow-hog daemon TOKEN         double-fork a daemon that closes its stdio
 *                                   and sleeps (TOKEN marks it in /proc/PID/cmdline)
 *   burrow-hog write PATH MIB       write MIB MiB to PATH
 *   burrow-hog files DIR N          create N empty files in DIR
 *   burrow-hog flood MIB            write MIB MiB to stdout
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024L * 1024L)

static long process_cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static long spin_limit_ms;

static void *spin(void *arg) {
    (void)arg;
    volatile unsigned long x = 0;
    while (process_cpu_ms() < spin_limit_ms) x++;
    return NULL;
}

static int mode_spin(int children, int threads, long ms) {
    spin_limit_ms = ms;
    for (int c = 0; c < children; c++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            pthread_t t[64];
            int n = threads < 64 ? threads : 64;
            for (int i = 1; i < n; i++) pthread_create(&t[i], NULL, spin, NULL);
            spin(NULL);
            for (int i = 1; i < n; i++) pthread_join(t[i], NULL);
            _exit(0);
        }
    }
    int status, done = 0;
    while (wait(&status) > 0) done++;
    printf("spin: %d children finished\n", done);
    return 0;
}

static void *burn(void *arg) {
    (void)arg;
    volatile unsigned long x = 0;
    for (;;) x++;
    return NULL;
}

static int mode_burn(int threads) {
    pthread_t t;
    for (int i = 1; i < threads && i < 64; i++) pthread_create(&t, NULL, burn, NULL);
    burn(NULL);
    return 0;
}

static int mode_memory(long mib) {
    for (long i = 0; i < mib; i++) {
        char *p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            printf("memory: mmap failed after %ld MiB: %s\n", i, strerror(errno));
            return 1;
        }
        memset(p, 0x5a, MIB);
    }
    printf("memory: touched %ld MiB\n", mib);
    return 0;
}

static int mode_fork(int n) {
    int made = 0;
    for (; made < n; made++) {
        pid_t pid = fork();
        if (pid < 0) {
            printf("fork: refused after %d children: %s\n", made, strerror(errno));
            fflush(stdout);
            break;
        }
        if (pid == 0) {
            pause();
            _exit(0);
        }
    }
    sleep(60);
    return 0;
}

static int mode_daemon(void) {
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid > 0) {
        waitpid(pid, NULL, 0);
        printf("daemon: started\n");
        return 0;
    }
    setsid();
    if (fork() != 0) _exit(0);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    for (;;) pause();
}

static int mode_write(const char *path, long mib) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        printf("write: open %s: %s\n", path, strerror(errno));
        return 1;
    }
    static char block[MIB];
    memset(block, 'x', sizeof block);
    long total = 0;
    for (long i = 0; i < mib; i++) {
        ssize_t n = write(fd, block, sizeof block);
        if (n < 0) {
            printf("write: %s after %ld bytes\n", strerror(errno), total);
            return 1;
        }
        total += n;
    }
    printf("write: %ld bytes\n", total);
    return 0;
}

static int mode_files(const char *dir, long n) {
    char path[4096];
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%ld", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT, 0600);
        if (fd < 0) {
            printf("files: %s after %ld files\n", strerror(errno), i);
            return 1;
        }
        close(fd);
    }
    printf("files: %ld\n", n);
    return 0;
}

static int mode_flood(long mib) {
    static char block[64 * 1024];
    memset(block, 'y', sizeof block);
    for (long i = 0; i < mib * 16; i++) {
        for (size_t off = 0; off < sizeof block;) {
            ssize_t n = write(1, block + off, sizeof block - off);
            if (n < 0) return 1;
            off += (size_t)n;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "memory") && argc == 3) return mode_memory(atol(argv[2]));
    if (!strcmp(m, "fork") && argc == 3) return mode_fork(atoi(argv[2]));
    if (!strcmp(m, "burn") && argc == 3) return mode_burn(atoi(argv[2]));
    if (!strcmp(m, "spin") && argc == 5) return mode_spin(atoi(argv[2]), atoi(argv[3]), atol(argv[4]));
    if (!strcmp(m, "sleep") && argc == 3) return sleep((unsigned)atoi(argv[2])) == 0 ? 0 : 1;
    if (!strcmp(m, "stop") && argc == 2) {
        raise(SIGSTOP);
        printf("stop: resumed\n");
        return 0;
    }
    if (!strcmp(m, "daemon") && argc == 3) return mode_daemon();
    if (!strcmp(m, "write") && argc == 4) return mode_write(argv[2], atol(argv[3]));
    if (!strcmp(m, "files") && argc == 4) return mode_files(argv[2], atol(argv[3]));
    if (!strcmp(m, "flood") && argc == 3) return mode_flood(atol(argv[2]));
    fprintf(stderr, "usage: see the comment at the top of burrow-hog.c\n");
    return 2;
}
