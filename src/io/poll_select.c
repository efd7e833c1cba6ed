/*
 * poll_select.c — the select(2) backend, the oldest IO model: three fd_sets rebuilt from the
 * interest masks at every wait. It cannot watch an fd >= FD_SETSIZE (WEFT_EINVAL).
 */
#include "io_internal.h"
#include "../core/sys_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct impl {
    unsigned char mask[FD_SETSIZE];
    int maxfd; /* highest fd with a mask, or -1 */
} impl_t;

static int init(weft__poller_t *p)
{
    impl_t *s = weft__calloc(1, sizeof *s);
    if (!s) return WEFT_ENOMEM;
    s->maxfd = -1;
    p->impl = s;
    return 0;
}

static void fini(weft__poller_t *p)
{
    weft__free(p->impl);
    p->impl = NULL;
}

/* In a fork child: nothing is shared with the parent (the masks are this process's memory).
 * They are dropped all the same, like the other backends' state, and the child's poller arms
 * its table into fresh ones: one path for every backend. */
static void fork_(weft__poller_t *p)
{
    fini(p);
}

static bool fcntl_ok(int fd)
{
    return weft__sys_fcntl(fd, F_GETFD, 0) >= 0;
}

static int arm(weft__poller_t *p, int fd, uint32_t mask)
{
    impl_t *s = p->impl;
    if (fd >= FD_SETSIZE) return mask ? WEFT_EINVAL : 0;
    /* select ignores an fd beyond the process's fd table instead of failing: check here. */
    if (mask && !s->mask[fd] && !fcntl_ok(fd)) return WEFT_EBADF;
    s->mask[fd] = (unsigned char)mask;
    if (mask && fd > s->maxfd) s->maxfd = fd;
    while (s->maxfd >= 0 && !s->mask[s->maxfd]) s->maxfd--;
    return 0;
}

static void forget(weft__poller_t *p, int fd)
{
    arm(p, fd, 0);
}

static void wait_(weft__poller_t *p, int64_t deadline)
{
    impl_t *s = p->impl;
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    int top = s->maxfd;
    for (int fd = 0; fd <= top; fd++) {
        if (s->mask[fd] & WEFT_READ) FD_SET(fd, &r);
        if (s->mask[fd] & WEFT_WRITE) FD_SET(fd, &w);
    }
    struct timespec ts;
    /* The raw system call: no signal mask (valgrind misreads glibc's pselect6 mask argument
     * when a signal interrupts the wait), and not select(3), which the monkey patch redefines. */
    int n = (int)syscall(SYS_pselect6, top + 1, &r, &w, NULL, weft__poller_timespec(deadline, &ts),
                         NULL);
    if (n < 0 && errno == EBADF) {
        /* Some watched fd was closed behind our back: find it and fail its waiters. */
        for (int fd = 0; fd <= top; fd++)
            if (s->mask[fd] && fcntl_ok(fd) == false) weft__poller_ready(p, fd, WEFT__IO_ERR);
        return;
    }
    for (int fd = 0; fd <= top && n > 0; fd++) {
        uint32_t got = (FD_ISSET(fd, &r) ? WEFT_READ : 0) | (FD_ISSET(fd, &w) ? WEFT_WRITE : 0);
        if (got) {
            n -= (got & WEFT_READ ? 1 : 0) + (got & WEFT_WRITE ? 1 : 0);
            weft__poller_ready(p, fd, got);
        }
    }
}

const weft__poller_ops_t weft__poller_select = {.name = "select",
                                                .init = init,
                                                .fini = fini,
                                                .fork = fork_,
                                                .arm = arm,
                                                .wait = wait_,
                                                .forget = forget,
                                                .unwatch = NULL};
