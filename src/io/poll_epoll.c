/*
 * poll_epoll.c — the epoll backend: level-triggered, one registration per fd whose mask is
 * the fd's interest (EPOLL_CTL_MOD on a change, DEL when it drops to none). Waits with
 * nanosecond timeouts (epoll_pwait2) where the kernel has it.
 */
#include "io_internal.h"
#include "../core/sys_internal.h"

#include <errno.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_EVENTS 256

typedef struct impl {
    int epfd;
    struct epoll_event events[MAX_EVENTS];
    unsigned char *registered; /* per fd: in the epoll set */
    size_t nregistered;
    bool no_pwait2;
} impl_t;

static int init(weft__poller_t *p)
{
    impl_t *e = weft__calloc(1, sizeof *e);
    if (!e) return WEFT_ENOMEM;
    e->epfd = weft__sys_epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0) {
        int rc = weft__errno(errno);
        weft__free(e);
        return rc;
    }
    p->impl = e;
    return 0;
}

static void fini(weft__poller_t *p)
{
    impl_t *e = p->impl;
    weft__sys_close(e->epfd);
    weft__free(e->registered);
    weft__free(e);
    p->impl = NULL;
}

/* In a fork child: the epoll instance is the parent's too (an epoll_ctl here would change the
 * parent's registrations, a DEL would silence the parent's fds), so the child only closes its
 * own fd for it and frees the memory: what fini does, and nothing more. */
static void fork_(weft__poller_t *p)
{
    fini(p);
}

static int arm(weft__poller_t *p, int fd, uint32_t mask)
{
    impl_t *e = p->impl;
    if ((size_t)fd >= e->nregistered) {
        if (!mask) return 0;
        size_t n = e->nregistered ? e->nregistered : 64;
        while (n <= (size_t)fd) n *= 2;
        unsigned char *r = weft__realloc(e->registered, n);
        if (!r) return WEFT_ENOMEM;
        for (size_t i = e->nregistered; i < n; i++) r[i] = 0;
        e->registered = r;
        e->nregistered = n;
    }
    struct epoll_event ev = {.events = (mask & WEFT_READ ? EPOLLIN | EPOLLRDHUP : 0) |
                                       (mask & WEFT_WRITE ? EPOLLOUT : 0),
                             .data.fd = fd};
    int op = !mask ? EPOLL_CTL_DEL : e->registered[fd] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int r = weft__sys_epoll_ctl(e->epfd, op, fd, &ev);
    if (r < 0 && op == EPOLL_CTL_MOD && errno == ENOENT) /* closed and reused behind us */
        r = weft__sys_epoll_ctl(e->epfd, op = EPOLL_CTL_ADD, fd, &ev);
    else if (r < 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
        r = weft__sys_epoll_ctl(e->epfd, op = EPOLL_CTL_MOD, fd, &ev);
    if (r < 0 && op == EPOLL_CTL_DEL) r = 0; /* already gone with its fd */
    if (r < 0) return errno == EPERM ? WEFT_EINVAL : weft__errno(errno); /* EPERM: a file */
    e->registered[fd] = mask != 0;
    return 0;
}

static void forget(weft__poller_t *p, int fd)
{
    impl_t *e = p->impl;
    if ((size_t)fd < e->nregistered) e->registered[fd] = 0;
}

/* From any thread: epoll_ctl is safe beside the hub's epoll_wait, and the registration must
 * go before the fd is closed (a dup of it elsewhere would keep it, reporting events tagged
 * with a number that may be reused). `registered` is the hub's: it resets it in forget. */
static void unwatch(weft__poller_t *p, int fd)
{
    impl_t *e = p->impl;
    weft__sys_epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void wait_(weft__poller_t *p, int64_t deadline)
{
    impl_t *e = p->impl;
    struct timespec ts;
    struct timespec *tp = weft__poller_timespec(deadline, &ts);
    int n = -1;
    if (!e->no_pwait2) {
        n = epoll_pwait2(e->epfd, e->events, MAX_EVENTS, tp, NULL);
        if (n < 0 && errno == ENOSYS) e->no_pwait2 = true;
    }
    if (e->no_pwait2) {
        int ms = -1;
        if (tp) /* past ~24 days an int of milliseconds overflows: wake early, look again */
            ms = tp->tv_sec >= INT_MAX / 1000 - 1
                     ? INT_MAX
                     : (int)(tp->tv_sec * 1000 + (tp->tv_nsec + 999999) / 1000000);
        n = epoll_wait(e->epfd, e->events, MAX_EVENTS, ms);
    }
    for (int i = 0; i < n; i++) {
        uint32_t ev = e->events[i].events, got = 0;
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) got |= WEFT_READ;
        if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) got |= WEFT_WRITE;
        weft__poller_ready(p, e->events[i].data.fd, got);
    }
}

const weft__poller_ops_t weft__poller_epoll = {.name = "epoll",
                                               .init = init,
                                               .fini = fini,
                                               .fork = fork_,
                                               .arm = arm,
                                               .wait = wait_,
                                               .forget = forget,
                                               .unwatch = unwatch};
