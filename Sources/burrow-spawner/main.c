/*
 * burrow-spawner: burrowd's helper for cloning sandboxes from a small address
 * space (see brw_spawner.c). Started by burrowd with its end of a
 * SOCK_SEQPACKET socket as fd 3; serves until burrowd closes it, and dies with
 * the burrowd thread that started it. Single-threaded, no allocation after
 * start-up: everything a request needs lives in one mapping.
 */
#define _GNU_SOURCE
#include "brw_child.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER (16u << 20) /* a packed plan: [daemon] max_request_size and the plan's own tables */

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) return 1;
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET) {
        fprintf(stderr, "burrow-spawner: started by burrowd only (fd 3 must be its socket)\n");
        return 2;
    }
    if (getppid() == 1) return 1; /* burrowd is already gone */
    signal(SIGPIPE, SIG_IGN);
    uint8_t *buf = mmap(0, BUFFER, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) return 1;
    int err = brw_spawner_serve(3, buf, BUFFER);
    if (err) fprintf(stderr, "burrow-spawner: %s\n", strerror(err));
    return err ? 1 : 0;
}
