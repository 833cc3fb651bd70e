/*
 * brw_private.h: what the child (brw_child.c) and the parent side
 * (brw_parent.c) of one spawn share, not part of the module's interface.
 */
#ifndef BRW_PRIVATE_H
#define BRW_PRIVATE_H

#include "brw_child.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* A report with room for one descriptor (the seccomp listener) beside it. */
struct brw_fd_message {
    struct msghdr msg;
    struct iovec iov;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
};

static inline void fd_message_init(struct brw_fd_message *_Nonnull m, struct brw_child_report *_Nonnull report) {
    memset(m, 0, sizeof *m);
    m->iov.iov_base = report;
    m->iov.iov_len = sizeof *report;
    m->msg.msg_iov = &m->iov;
    m->msg.msg_iovlen = 1;
    m->msg.msg_control = m->control.buf;
    m->msg.msg_controllen = sizeof m->control.buf;
}

/* The child's whole life after clone3 (brw_child.c): never returns. */
__attribute__((noreturn, visibility("hidden"))) void brw_child_main(const struct brw_child_plan *_Nonnull p);

#endif
