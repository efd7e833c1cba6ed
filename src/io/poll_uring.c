/*
 * poll_uring.c — the io_uring backend (liburing). Readiness comes from IORING_OP_POLL_ADD
 * requests, one per fd and event of interest, in one of two modes chosen when the ring is set
 * up (probe_multishot, once per process):
 *
 *   multishot  (Linux 5.13+, IORING_POLL_ADD_MULTI): one request per fd and event stays armed
 *              and posts a completion each time the fd's wait queue is woken for the event —
 *              an edge, not a level. The level-style contract of io_internal.h is kept by the
 *              io layer and this file together: a wait whose caller has just seen the fd not
 *              ready (EAGAIN, nothing run since) needs nothing more, since any readiness from
 *              then on wakes the request; any other wait is preceded by `recheck`, a one-shot
 *              poll (queued, so it costs no system call of its own) that reports the fd if it
 *              is ready now. A request the kernel ends (a completion without IORING_CQE_F_MORE)
 *              is added again while its event is of interest.
 *   one-shot   (older kernels): a request per fd and event in flight, re-armed after each
 *              completion while the event is still of interest: the level-style contract.
 *
 * The wait submits what was queued and waits for a completion in one system call
 * (io_uring_submit_and_wait_timeout).
 *
 * A request's user_data is fd | event << 32 | check << 34 | generation << 35; the generation is
 * per fd and event, bumped when that event's requests are removed (weft_fd_close's forget, or
 * an interest that dropped to none), so the completions of a removed request are ignored.
 * A request holds the file: every request of an fd is removed when it is forgotten.
 * Without liburing at build time the backend reports WEFT_ENOTSUP.
 */
#include "io_internal.h"
#include "../core/sys_internal.h"

#ifdef WEFT_HAVE_LIBURING

#include <errno.h>
#include <liburing.h>
#include <poll.h>

#define ENTRIES   512 /* and twice as many completions: multishot polls end when it is full */
#define GEN_MASK  0x1fffffffu
#define TAG_CHECK ((uint64_t)1 << 34)
#define TAG_PROBE (UINT64_MAX - 1) /* the multishot probe's request */

typedef struct fdring {
    uint8_t interest;
    uint8_t inflight; /* events with a poll request in flight (multishot: armed) */
    uint8_t checking; /* events with a recheck in flight (multishot mode) */
    uint32_t gen[2];  /* per event (READ, WRITE) */
} fdring_t;

typedef struct impl {
    struct io_uring ring;
    fdring_t *fds;
    size_t nfds;
    bool multishot;
    bool deferred; /* completions are posted only when asked for (DEFER_TASKRUN) */
} impl_t;

/* Whether the kernel takes multishot polls: 0 not asked yet, 1 yes, -1 no (or turned off by
 * weft__poller_uring_multishot). Every ring of the process asks the same kernel: the first
 * one's answer is kept. Relaxed: a racing second probe stores the same answer. */
static _Atomic int multishot_ok;

int weft__poller_uring_multishot(int enable)
{
    int was = atomic_load_explicit(&multishot_ok, memory_order_relaxed);
    atomic_store_explicit(&multishot_ok, enable ? 0 : -1, memory_order_relaxed);
    return was > 0;
}

/* Asks the kernel on a fresh ring: a multishot poll for POLLOUT on fd (an eventfd: writable,
 * so it completes at once) is refused with EINVAL by a kernel without multishot polls; taken,
 * it is removed again, and its completions are reaped before the ring is used (the removal's
 * own, if left, is ignored by the wait). */
static bool probe_multishot(impl_t *u, int fd)
{
    int known = atomic_load_explicit(&multishot_ok, memory_order_relaxed);
    if (known) return known > 0;
    if (fd < 0) return false;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) return false;
    io_uring_prep_poll_multishot(sqe, fd, POLLOUT);
    io_uring_sqe_set_data64(sqe, TAG_PROBE);
    if (io_uring_submit(&u->ring) != 1) return false;
    bool ok = false, live = true, removing = false;
    while (live) { /* until the poll's last completion (a refusal is one) */
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&u->ring, &cqe) < 0) break; /* (a stray report is ignored) */
        if (io_uring_cqe_get_data64(cqe) == TAG_PROBE) {
            live = (cqe->flags & IORING_CQE_F_MORE) != 0;
            ok |= live && cqe->res > 0;
        }
        io_uring_cqe_seen(&u->ring, cqe);
        if (live && !removing && (sqe = io_uring_get_sqe(&u->ring))) {
            io_uring_prep_poll_remove(sqe, TAG_PROBE);
            io_uring_sqe_set_data64(sqe, UINT64_MAX); /* its own completion: ignored */
            io_uring_submit(&u->ring);
            removing = true;
        }
    }
    atomic_store_explicit(&multishot_ok, ok ? 1 : -1, memory_order_relaxed);
    return ok;
}

/* The ring's setup flags, best first: completions of the hub's own requests posted only when
 * it asks for them (DEFER_TASKRUN: no interrupt of the running hub per wake-up; Linux 6.1,
 * which requires SINGLE_ISSUER: the hub's thread alone submits), else without forcing the
 * hub into the kernel (COOP_TASKRUN, 5.19), else none. The first the kernel takes is kept
 * for the process (relaxed: a racing ring stores the same index). */
static const unsigned setup_flags[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                                       IORING_SETUP_COOP_TASKRUN, 0};
static _Atomic unsigned setup_choice;

static int init(weft__poller_t *p)
{
    impl_t *u = weft__calloc(1, sizeof *u);
    if (!u) return WEFT_ENOMEM;
    unsigned k = atomic_load_explicit(&setup_choice, memory_order_relaxed);
    int rc;
    /* -errno; EINVAL: flags this kernel does not know */
    while ((rc = weft__sys_io_uring_setup(ENTRIES, &u->ring, setup_flags[k])) == -EINVAL &&
           setup_flags[k] != 0)
        k++;
    if (rc < 0) {
        weft__free(u);
        return weft__errno(-rc);
    }
    atomic_store_explicit(&setup_choice, k, memory_order_relaxed);
    u->deferred = (setup_flags[k] & IORING_SETUP_DEFER_TASKRUN) != 0;
    u->multishot = probe_multishot(u, p->evfd);
    p->impl = u;
    p->oneshot = !u->multishot;
    p->edge = u->multishot;
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

static uint32_t ev_index(uint32_t event)
{
    return event == WEFT_WRITE;
}

static uint64_t tag(int fd, uint32_t event, uint64_t check, uint32_t gen)
{
    return (uint64_t)(uint32_t)fd | (uint64_t)event << 32 | check | (uint64_t)gen << 35;
}

static unsigned poll_mask(uint32_t event)
{
    return event == WEFT_READ ? POLLIN | POLLRDHUP : POLLOUT;
}

/* A request for fd's event: multishot in that mode, else one-shot. */
static int add(impl_t *u, int fd, uint32_t event)
{
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe) return WEFT_ENOMEM;
    if (u->multishot)
        io_uring_prep_poll_multishot(sqe, fd, poll_mask(event));
    else
        io_uring_prep_poll_add(sqe, fd, poll_mask(event));
    io_uring_sqe_set_data64(sqe, tag(fd, event, 0, u->fds[fd].gen[ev_index(event)]));
    u->fds[fd].inflight |= (uint8_t)event;
    return 0;
}

/* Removes fd's requests for the events in `events` (the armed ones and the rechecks); their
 * late completions are ignored (the generation moved on). */
static void remove_requests(impl_t *u, int fd, uint32_t events)
{
    fdring_t *f = &u->fds[fd];
    for (uint32_t ev = WEFT_READ; ev <= WEFT_WRITE; ev <<= 1) {
        if (!(events & ev)) continue;
        uint32_t *gen = &f->gen[ev_index(ev)];
        for (uint64_t check = 0; check <= TAG_CHECK; check += TAG_CHECK) {
            if (!((check ? f->checking : f->inflight) & ev)) continue;
            struct io_uring_sqe *sqe = sqe_get(u);
            if (!sqe) break;
            io_uring_prep_poll_remove(sqe, tag(fd, ev, check, *gen));
            io_uring_sqe_set_data64(sqe, UINT64_MAX); /* the removal's own completion */
        }
        f->inflight &= (uint8_t)~ev;
        f->checking &= (uint8_t)~ev;
        *gen = (*gen + 1) & GEN_MASK;
    }
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
        for (size_t i = u->nfds; i < n; i++) t[i] = (fdring_t){0};
        u->fds = t;
        u->nfds = n;
    }
    fdring_t *f = &u->fds[fd];
    f->interest = (uint8_t)mask;
    /* Events no longer wanted keep their request (its completions are ignored), as an epoll
     * registration would stay: adding it again costs more than a report nobody waits for.
     * Only a multishot poll for an fd of no interest at all is removed (it would hold the
     * file for ever; a one-shot request goes at its completion). */
    if (!mask && u->multishot && (f->inflight | f->checking)) {
        remove_requests(u, fd, WEFT_READ | WEFT_WRITE);
        return 0;
    }
    for (uint32_t ev = WEFT_READ; ev <= WEFT_WRITE; ev <<= 1)
        if ((mask & ev) && !(f->inflight & ev)) {
            int rc = add(u, fd, ev);
            if (rc) return rc;
        }
    return 0;
}

/* Multishot mode: a wait starts on fd whose caller has not just seen it not ready: a one-shot
 * poll reports the events of `events` that are ready now (the armed request reports only
 * what happens from now on). */
static void recheck(weft__poller_t *p, int fd, uint32_t events)
{
    impl_t *u = p->impl;
    if ((size_t)fd >= u->nfds) return; /* not armed: arm's add looks at once */
    fdring_t *f = &u->fds[fd];
    for (uint32_t ev = WEFT_READ; ev <= WEFT_WRITE; ev <<= 1) {
        if (!(events & ev) || (f->checking & ev)) continue;
        struct io_uring_sqe *sqe = sqe_get(u);
        if (!sqe) return; /* (never: sqe_get submits to make room) */
        io_uring_prep_poll_add(sqe, fd, poll_mask(ev));
        io_uring_sqe_set_data64(sqe, tag(fd, ev, TAG_CHECK, f->gen[ev_index(ev)]));
        f->checking |= (uint8_t)ev;
    }
}

static void forget(weft__poller_t *p, int fd)
{
    impl_t *u = p->impl;
    if ((size_t)fd >= u->nfds) return;
    remove_requests(u, fd, WEFT_READ | WEFT_WRITE);
    /* Now, before the close: a removed request lets go of the file when it completes, which a
     * deferred ring does only when asked for its completions. */
    if (u->deferred)
        io_uring_submit_and_get_events(&u->ring);
    else
        io_uring_submit(&u->ring);
    u->fds[fd].interest = 0;
}

/* One completion: its report, and the request added again where that is due. */
static void complete(weft__poller_t *p, uint64_t data, int32_t res, uint32_t flags)
{
    impl_t *u = p->impl;
    if (data == UINT64_MAX || data == TAG_PROBE) return;
    int fd = (int)(uint32_t)data;
    uint32_t ev = (uint32_t)(data >> 32) & 3;
    bool check = (data & TAG_CHECK) != 0;
    uint32_t gen = (uint32_t)(data >> 35) & GEN_MASK;
    if ((size_t)fd >= u->nfds || u->fds[fd].gen[ev_index(ev)] != gen) return; /* removed */
    fdring_t *f = &u->fds[fd];
    bool armed = !check && (flags & IORING_CQE_F_MORE);
    if (check)
        f->checking &= (uint8_t)~ev;
    else if (!armed)
        f->inflight &= (uint8_t)~ev;
    uint32_t report;
    if (res < 0)
        report = res == -ECANCELED ? 0 : WEFT__IO_ERR;
    else
        report = ((res & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)) ? WEFT_READ : 0) |
                 ((res & (POLLOUT | POLLHUP | POLLERR)) ? WEFT_WRITE : 0);
    if (report) weft__poller_ready(p, fd, report & (ev | WEFT__IO_ERR));
    f = &u->fds[fd]; /* the report may have grown the table */
    if (!check && f->gen[ev_index(ev)] == gen && (f->interest & ev) && !(f->inflight & ev) &&
        !(report & WEFT__IO_ERR))
        add(u, fd, ev);
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
    if (tp && tp->tv_sec == 0 && tp->tv_nsec == 0) {
        if (u->deferred)
            io_uring_submit_and_get_events(&u->ring);
        else
            io_uring_submit(&u->ring);
    } else
        io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, tp ? &kts : NULL, NULL);
    /* Take the completions out first: a report may queue new requests. Only those there now:
     * a request added meanwhile may complete at once (a full queue is submitted to make room),
     * and its completion is for the next wait — or the hub would never leave this one. */
    enum { BATCH = 64 };
    struct {
        uint64_t data;
        int32_t res;
        uint32_t flags;
    } got[BATCH];
    unsigned left = io_uring_cq_ready(&u->ring);
    while (left) {
        unsigned n = 0, head;
        io_uring_for_each_cqe(&u->ring, head, cqe)
        {
            if (n == BATCH || n == left) break;
            got[n].data = io_uring_cqe_get_data64(cqe);
            got[n].res = cqe->res;
            got[n].flags = cqe->flags;
            n++;
        }
        io_uring_cq_advance(&u->ring, n);
        if (!n) break;
        left -= n;
        for (unsigned i = 0; i < n; i++) complete(p, got[i].data, got[i].res, got[i].flags);
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
                                               .recheck = recheck};

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
int weft__poller_uring_multishot(int enable)
{
    (void)enable;
    return 0;
}
const weft__poller_ops_t weft__poller_uring = {.name = "io_uring",
                                               .init = init,
                                               .fini = fini,
                                               .fork = fork_,
                                               .arm = arm,
                                               .wait = wait_,
                                               .forget = forget,
                                               .unwatch = NULL,
                                               .recheck = NULL};

#endif
