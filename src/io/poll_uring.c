/*
 * poll_uring.c — the io_uring backend (liburing): readiness through one-shot IORING_OP_POLL_ADD
 * requests, one per fd and event in flight, re-armed after each completion while the event is
 * still of interest — which gives the level-style contract of io_internal.h. The wait submits
 * what was queued and waits for a completion in one system call
 * (io_uring_submit_and_wait_timeout).
 *
 * A request's user_data is fd | event << 32 | generation << 34; weft_fd_close (forget) bumps the
 * fd's generation and removes its requests, so late completions for a closed fd are ignored.
 * Without liburing at build time the backend reports WEFT_ENOTSUP.
 */
#include "io_internal.h"
#include "../core/sys_internal.h"

#ifdef WEFT_HAVE_LIBURING

#include <errno.h>
#include <liburing.h>
#include <poll.h>

#define ENTRIES 256

typedef struct fdring {
    uint8_t interest;
    uint8_t inflight; /* events with a poll request in flight */
    uint32_t gen;
} fdring_t;

typedef struct impl {
    struct io_uring ring;
    fdring_t *fds;
    size_t nfds;
} impl_t;

static int init(weft__poller_t *p)
{
    impl_t *u = weft__calloc(1, sizeof *u);
    if (!u) return WEFT_ENOMEM;
    int rc = weft__sys_io_uring_setup(ENTRIES, &u->ring); /* -errno */
    if (rc < 0) {
        weft__free(u);
        return weft__errno(-rc);
    }
    p->impl = u;
    return 0;
}

static void fini(weft__poller_t *p)
{
    impl_t *u = p->impl;
    io_uring_queue_exit(&u->ring);
    weft__free(u->fds);
    weft__free(u);
    p->impl = NULL;
}

/* In a fork child: the ring is the parent's too (its memory is mapped shared, and the poll
 * requests in flight are the parent's: a submission here would reach the parent's completion
 * queue, a removal cancel the parent's polls). The child only unmaps its own mappings and
 * closes its fd for the ring (io_uring_queue_exit submits nothing): what fini does. */
static void fork_(weft__poller_t *p)
{
    fini(p);
}

static struct io_uring_sqe *sqe_get(impl_t *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) { /* the queue is full: hand it to the kernel and take a fresh slot */
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

static uint64_t tag(int fd, uint32_t event, uint32_t gen)
{
    return (uint64_t)(uint32_t)fd | (uint64_t)event << 32 | (uint64_t)gen << 34;
}

static int add(impl_t *u, int fd, uint32_t event)
{
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe) return WEFT_ENOMEM;
    io_uring_prep_poll_add(sqe, fd, event == WEFT_READ ? POLLIN | POLLRDHUP : POLLOUT);
    io_uring_sqe_set_data64(sqe, tag(fd, event, u->fds[fd].gen));
    u->fds[fd].inflight |= (uint8_t)event;
    return 0;
}

static int arm(weft__poller_t *p, int fd, uint32_t mask)
{
    impl_t *u = p->impl;
    if ((size_t)fd >= u->nfds) {
        if (!mask) return 0;
        size_t n = u->nfds ? u->nfds : 64;
        while (n <= (size_t)fd) n *= 2;
        fdring_t *t = weft__realloc(u->fds, n * sizeof *t);
        if (!t) return WEFT_ENOMEM;
        for (size_t i = u->nfds; i < n; i++) t[i] = (fdring_t){0, 0, 0};
        u->fds = t;
        u->nfds = n;
    }
    fdring_t *f = &u->fds[fd];
    f->interest = (uint8_t)mask;
    /* Events no longer wanted keep their request: its completion is ignored. */
    for (uint32_t ev = WEFT_READ; ev <= WEFT_WRITE; ev <<= 1)
        if ((mask & ev) && !(f->inflight & ev)) {
            int rc = add(u, fd, ev);
            if (rc) return rc;
        }
    return 0;
}

static void forget(weft__poller_t *p, int fd)
{
    impl_t *u = p->impl;
    if ((size_t)fd >= u->nfds) return;
    fdring_t *f = &u->fds[fd];
    for (uint32_t ev = WEFT_READ; ev <= WEFT_WRITE; ev <<= 1)
        if (f->inflight & ev) {
            struct io_uring_sqe *sqe = sqe_get(u);
            if (!sqe) break;
            io_uring_prep_poll_remove(sqe, tag(fd, ev, f->gen));
            io_uring_sqe_set_data64(sqe, UINT64_MAX); /* the removal's own completion */
        }
    io_uring_submit(&u->ring);
    f->inflight = 0;
    f->interest = 0;
    f->gen = (f->gen + 1) & 0x3fffffff;
}

static void wait_(weft__poller_t *p, int64_t deadline)
{
    impl_t *u = p->impl;
    struct io_uring_cqe *cqe;
    struct __kernel_timespec kts;
    struct timespec ts;
    struct timespec *tp = weft__poller_timespec(deadline, &ts);
    if (tp) {
        kts.tv_sec = tp->tv_sec;
        kts.tv_nsec = tp->tv_nsec;
    }
    if (tp && tp->tv_sec == 0 && tp->tv_nsec == 0)
        io_uring_submit(&u->ring);
    else
        io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, tp ? &kts : NULL, NULL);
    /* Take the completions out first: a report may queue new requests. */
    enum { BATCH = 64 };
    struct {
        uint64_t data;
        int32_t res;
    } got[BATCH];
    for (;;) {
        unsigned n = 0, head;
        io_uring_for_each_cqe(&u->ring, head, cqe)
        {
            if (n == BATCH) break;
            got[n].data = io_uring_cqe_get_data64(cqe);
            got[n].res = cqe->res;
            n++;
        }
        io_uring_cq_advance(&u->ring, n);
        if (!n) break;
        for (unsigned i = 0; i < n; i++) {
            if (got[i].data == UINT64_MAX) continue;
            int fd = (int)(uint32_t)got[i].data;
            uint32_t ev = (uint32_t)(got[i].data >> 32) & 3;
            uint32_t gen = (uint32_t)(got[i].data >> 34);
            if ((size_t)fd >= u->nfds || u->fds[fd].gen != gen) continue; /* closed since */
            fdring_t *f = &u->fds[fd];
            f->inflight &= (uint8_t)~ev;
            int32_t res = got[i].res;
            uint32_t report;
            if (res < 0)
                report = res == -ECANCELED ? 0 : WEFT__IO_ERR;
            else
                report = ((res & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) ? WEFT_READ : 0) |
                         ((res & (POLLOUT | POLLHUP | POLLERR)) ? WEFT_WRITE : 0);
            if (report) weft__poller_ready(p, fd, report & (ev | WEFT__IO_ERR));
            f = &u->fds[fd]; /* the report may have grown the table */
            if (f->gen == gen && (f->interest & ev) && !(f->inflight & ev) &&
                !(report & WEFT__IO_ERR))
                add(u, fd, ev);
        }
        if (n < BATCH) break;
    }
}

const weft__poller_ops_t weft__poller_uring = {.name = "io_uring",
                                               .init = init,
                                               .fini = fini,
                                               .fork = fork_,
                                               .arm = arm,
                                               .wait = wait_,
                                               .forget = forget,
                                               .unwatch = NULL,
                                               .oneshot = true};

#else /* no liburing at build time */

static int init(weft__poller_t *p)
{
    (void)p;
    return WEFT_ENOTSUP;
}
static void fini(weft__poller_t *p)
{
    (void)p;
}
static void fork_(weft__poller_t *p)
{
    (void)p;
}
static int arm(weft__poller_t *p, int fd, uint32_t mask)
{
    (void)p, (void)fd, (void)mask;
    return WEFT_ENOTSUP;
}
static void wait_(weft__poller_t *p, int64_t deadline)
{
    (void)p, (void)deadline;
}
static void forget(weft__poller_t *p, int fd)
{
    (void)p, (void)fd;
}
const weft__poller_ops_t weft__poller_uring = {.name = "io_uring",
                                               .init = init,
                                               .fini = fini,
                                               .fork = fork_,
                                               .arm = arm,
                                               .wait = wait_,
                                               .forget = forget,
                                               .unwatch = NULL,
                                               .oneshot = true};

#endif
