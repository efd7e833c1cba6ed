/*
 * io.c — fd readiness for coroutines and the IO calls built on it. The poller of a hub is
 * created the first time one of its coroutines waits on an fd, and installed in the hub as
 * its idle wait (weft__hub_set_io): from then on the hub sleeps in the poller, and remote
 * wakes come through the poller's eventfd. See io_internal.h for the fd table.
 *
 * A caller that does not park through a hub (a thread without coroutines) waits in poll(2).
 */
#include "io_internal.h"
#include "../core/sys_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- choosing a backend ------------------------------------------------------------------ */

/* In order of preference. epoll first: its interest persists between waits, where io_uring's
 * one-shot polls are re-submitted after every report (the patched echo server at 1000
 * connections: 0.68x the hand-written epoll loop's CPU per request with epoll, 0.54x with
 * io_uring; docs/BENCHMARKS.md). */
static const weft__poller_ops_t *const backends[] = {&weft__poller_epoll,
#ifdef WEFT_HAVE_LIBURING
                                                     &weft__poller_uring,
#endif
                                                     &weft__poller_poll, &weft__poller_select};
#define NBACKENDS (sizeof backends / sizeof backends[0])

static _Atomic(const weft__poller_ops_t *) chosen; /* weft_poller_set; NULL: default */

static const weft__poller_ops_t *by_name(const char *name)
{
    static const weft__poller_ops_t *const all[] = {&weft__poller_select, &weft__poller_poll,
                                                    &weft__poller_epoll, &weft__poller_uring};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(all[i]->name, name)) return all[i];
    return NULL;
}

static bool available(const weft__poller_ops_t *ops)
{
    for (size_t i = 0; i < NBACKENDS; i++)
        if (backends[i] == ops) return true;
    return false;
}

int weft_poller_set(const char *name)
{
    if (!name) {
        atomic_store_explicit(&chosen, NULL, memory_order_release);
        return 0;
    }
    const weft__poller_ops_t *ops = by_name(name);
    if (!ops) return WEFT_EINVAL;
    if (!available(ops)) return WEFT_ENOTSUP;
    atomic_store_explicit(&chosen, ops, memory_order_release);
    return 0;
}

/* The backend a new hub tries first: weft_poller_set's, else WEFT_POLLER's, else the best. */
static const weft__poller_ops_t *preferred(void)
{
    const weft__poller_ops_t *ops = atomic_load_explicit(&chosen, memory_order_acquire);
    if (ops) return ops;
    const char *env = weft__getenv("WEFT_POLLER");
    if (env && *env && (ops = by_name(env)) && available(ops)) return ops;
    return backends[0];
}

/* ---- the poller as the hub's idle wait --------------------------------------------------- */

static void hub_poll(void *io, int64_t deadline)
{
    weft__poller_t *p = io;
    p->peeking = deadline == 0;
    p->ops->wait(p, deadline);
    p->peeking = false;
}

static void hub_notify(void *io)
{
    weft__poller_t *p = io;
    uint64_t one = 1;
    while (syscall(SYS_write, p->evfd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

static bool hub_busy(void *io)
{
    return ((weft__poller_t *)io)->nwaiting > 0;
}

static void hub_destroy(void *io)
{
    weft__poller_t *p = io;
    p->ops->fini(p);
    weft__sys_close(p->evfd);
    weft__free(p->fds);
    weft__free(p);
}

static const weft__hub_io_t hub_io = {hub_poll, hub_notify, hub_busy, hub_destroy};

static int grow(weft__poller_t *p, int fd)
{
    if ((size_t)fd < p->nfds) return 0;
    size_t n = p->nfds ? p->nfds : 64;
    while (n <= (size_t)fd) n *= 2;
    weft__fdstate_t *t = weft__realloc(p->fds, n * sizeof *t);
    if (!t) return WEFT_ENOMEM;
    memset(t + p->nfds, 0, (n - p->nfds) * sizeof *t);
    p->fds = t;
    p->nfds = n;
    return 0;
}

/* Creates the backend and the eventfd, and registers the latter. */
static int start(weft__poller_t *p, const weft__poller_ops_t *first)
{
    p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->evfd < 0) return weft__errno(errno);
    int rc = WEFT_ENOTSUP;
    const weft__poller_ops_t *try[NBACKENDS + 1];
    size_t n = 0;
    try[n++] = first;
    for (size_t i = 0; i < NBACKENDS; i++)
        if (backends[i] != first) try[n++] = backends[i];
    for (size_t i = 0; i < n; i++) {
        p->ops = try[i];
        if ((rc = p->ops->init(p)) != 0) continue;
        if ((rc = grow(p, p->evfd)) == 0 && (rc = p->ops->arm(p, p->evfd, WEFT_READ)) == 0) {
            p->fds[p->evfd].interest = WEFT_READ;
            return 0;
        }
        p->ops->fini(p);
    }
    weft__sys_close(p->evfd);
    return rc;
}

static void on_fork_child(void);

static weft__poller_t *poller_get(weft__hub_t *hub)
{
    weft__poller_t *p = weft__hub_io(hub);
    if (p) return p;
    p = weft__calloc(1, sizeof *p);
    if (!p) return NULL;
    if (start(p, preferred()) != 0) {
        weft__free(p->fds);
        weft__free(p);
        return NULL;
    }
    static _Atomic int registered;
    if (!atomic_exchange_explicit(&registered, 1, memory_order_relaxed))
        pthread_atfork(NULL, NULL, on_fork_child);
    weft__hub_set_io(hub, &hub_io, p);
    return p;
}

/* ---- fork --------------------------------------------------------------------------------
 * In a forked child the forking thread keeps its hub, but the poller's kernel objects (the
 * backend's epoll instance or ring, the eventfd) are shared with the parent. The child handler
 * does only what cannot fail for lack of memory or fds and allocates nothing: it gives the
 * poller a private eventfd under the same fd number (so remote wakes never reach the parent,
 * and the fd table needs no change), and puts the "forked" backend below in front of the real
 * one. The backend is rebuilt on the hub's thread at its next fd wait or idle wait, where a
 * failure is an error code for that call (the next call tries again) instead of an abort.
 * Until then the idle wait still watches the eventfd, so remote wakes and timers work. */

static const weft__poller_ops_t *forked_real; /* the backend the parent used */
static bool forked_released;                  /* its copy in this process is gone already */
static bool forked_evfd_pending;              /* no private eventfd yet */

/* Gives p a private eventfd, under the old number when there is one. 0, or the error: then at
 * least the parent's is dropped (eating the parent's wakes here would lose them there), and
 * p->evfd is -1 until a later call succeeds (a notification then fails harmlessly). */
static int forked_private_evfd(weft__poller_t *p)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0 && p->evfd >= 0 && fd != p->evfd) {
        if (weft__sys_dup3(fd, p->evfd, O_CLOEXEC) >= 0) { /* the old number, now private */
            weft__sys_close(fd);
            fd = p->evfd;
        }
    }
    if (fd != p->evfd && p->evfd >= 0) { /* no private one there: drop the parent's */
        p->fds[p->evfd].interest = 0;
        weft__sys_close(p->evfd);
        p->evfd = -1;
    }
    if (fd < 0) return weft__errno(err);
    if (p->evfd < 0) {
        int rc = grow(p, fd);
        if (rc) {
            weft__sys_close(fd);
            return rc;
        }
        p->evfd = fd;
        p->fds[fd].interest = WEFT_READ;
    }
    forked_evfd_pending = false;
    return 0;
}

/* Builds this process's own backend for p (any of them, the parent's first) and arms every
 * fd of the table again. 0, or the error. */
static int forked_rebuild(weft__poller_t *p)
{
    if (!forked_released) {
        forked_real->fini(p); /* closes this process's copies only (and frees an fd) */
        p->impl = NULL;
        forked_released = true;
    }
    if (forked_evfd_pending) {
        int rc = forked_private_evfd(p);
        if (rc) return rc;
    }
    int rc = WEFT_ENOTSUP;
    const weft__poller_ops_t *try[NBACKENDS + 1];
    size_t n = 0;
    try[n++] = forked_real;
    for (size_t i = 0; i < NBACKENDS; i++)
        if (backends[i] != forked_real) try[n++] = backends[i];
    for (size_t i = 0; i < n; i++) {
        if ((rc = try[i]->init(p)) != 0) continue;
        rc = try[i]->arm(p, p->evfd, WEFT_READ);
        for (size_t fd = 0; rc == 0 && fd < p->nfds; fd++)
            if ((int)fd != p->evfd && p->fds[fd].interest)
                rc = try[i]->arm(p, (int)fd, p->fds[fd].interest);
        if (rc == 0) {
            p->ops = try[i];
            forked_real = NULL;
            return 0;
        }
        try[i]->fini(p);
        p->impl = NULL;
    }
    return rc;
}

static int forked_init(weft__poller_t *p)
{
    (void)p;
    return WEFT_ENOTSUP; /* never chosen: only installed by the fork handler */
}

static void forked_fini(weft__poller_t *p)
{
    if (!forked_released) forked_real->fini(p);
    forked_released = true;
}

static int forked_arm(weft__poller_t *p, int fd, uint32_t mask)
{
    int rc = forked_rebuild(p);
    return rc ? rc : p->ops->arm(p, fd, mask);
}

static void forked_wait(weft__poller_t *p, int64_t deadline)
{
    if (forked_rebuild(p) == 0) {
        p->ops->wait(p, 0); /* a look; the hub waits again, on the new backend */
        return;
    }
    /* No backend: the eventfd alone, with a short cap so the next wait tries again. */
    int64_t cap = weft_monotonic_ns() + 10 * 1000000LL;
    struct timespec ts;
    struct pollfd pfd = {.fd = p->evfd, .events = POLLIN};
    if (weft__sys_ppoll(&pfd, 1, weft__poller_timespec(deadline < cap ? deadline : cap, &ts)) > 0)
        weft__poller_ready(p, p->evfd, WEFT_READ);
}

static void forked_forget(weft__poller_t *p, int fd)
{
    (void)p;
    (void)fd; /* nothing is armed in this process yet */
}

static const weft__poller_ops_t forked_backend = {
    "forked", forked_init, forked_fini, forked_arm, forked_wait, forked_forget, false};

static void on_fork_child(void)
{
    weft__hub_t *hub = weft__hub_current();
    weft__poller_t *p = hub ? weft__hub_io(hub) : NULL;
    if (!p) return;
    if (p->ops != &forked_backend) { /* (a fork of a child that did not rebuild yet: as is) */
        forked_real = p->ops;
        forked_released = false;
        p->ops = &forked_backend;
    }
    forked_evfd_pending = true;
    forked_private_evfd(p); /* on failure the rebuild tries again */
}

const char *weft_poller_name(void)
{
    weft__hub_t *hub = weft__hub_current();
    weft__poller_t *p = hub ? weft__hub_io(hub) : NULL;
    return p ? p->ops->name : preferred()->name;
}

/* ---- readiness --------------------------------------------------------------------------- */

static uint32_t wanted(weft__fdstate_t *s)
{
    uint32_t mask = 0;
    for (weft__waiter_t *w = s->waiters.head_; w; w = w->next) mask |= (uint32_t)w->data;
    return mask;
}

void weft__poller_ready(weft__poller_t *p, int fd, uint32_t revents)
{
    if (fd == p->evfd) {
        uint64_t v;
        while (syscall(SYS_read, fd, &v, sizeof v) < 0 && errno == EINTR) {
        }
        return;
    }
    if (fd < 0 || (size_t)fd >= p->nfds) return;
    weft__fdstate_t *s = &p->fds[fd];
    /* Wake every waiter the report concerns (an error concerns all), handing it its events. */
    weft__waiter_t *list = NULL, **tail = &list;
    weft__waitq_lock(&s->waiters);
    uint32_t wanted_now = wanted(s); /* before the wake: what this report had waiters for */
    for (weft__waiter_t *w = s->waiters.head_, *next; w; w = next) {
        next = w->next;
        uint32_t got = (uint32_t)w->data & revents;
        if (revents & WEFT__IO_ERR) got = WEFT__IO_ERR;
        if (!got) continue;
        weft__waitq_remove(&s->waiters, w);
        w->data = got;
        *tail = w;
        tail = &w->next;
    }
    *tail = NULL;
    weft__waitq_unlock(&s->waiters);
    weft__waiters_wake(list);
    /* Level-triggered backends would report an unwanted event forever: narrow the interest,
     * lazily: only by the events this report found nobody waiting for. (Narrowing by what is
     * left after the wake would drop the interest of every woken reader, to add it again at
     * its next wait: two epoll_ctl per request in a ping-pong.) */
    uint32_t unwanted = (revents & WEFT__IO_ERR ? WEFT_READ | WEFT_WRITE : revents) &
                        (WEFT_READ | WEFT_WRITE) & ~wanted_now; /* a bad fd: all nobody waits for */
    /* Not on a peek, though: the hub looks at the poller every 64 picks while coroutines are
     * ready, and a report nobody waits for then is most often for a coroutine woken by the
     * last one that has not run yet: narrowing would cost an epoll_ctl now and another at its
     * next wait. When the hub blocks in the poller, every woken coroutine has run. (A
     * one-shot backend narrows for free, and would re-arm for nothing.) */
    if (p->peeking && !p->ops->oneshot && !(revents & WEFT__IO_ERR)) unwanted = 0;
    if (s->interest & unwanted) {
        uint32_t want = s->interest & ~unwanted;
        if (p->ops->arm(p, fd, want) != 0) want = 0;
        s->interest = want;
    }
}

static int wait_poll(int fd, int events, int64_t deadline, bool nocancel)
{
    struct pollfd pfd = {
        fd, (short)((events & WEFT_READ ? POLLIN : 0) | (events & WEFT_WRITE ? POLLOUT : 0)), 0};
    for (;;) {
        if (!nocancel && weft__waitctx_canceled(weft__waitctx_current())) return WEFT_ECANCELED;
        struct timespec ts;
        int r = weft__sys_ppoll(&pfd, 1, weft__poller_timespec(deadline, &ts));
        if (r < 0) {
            if (errno == EINTR) continue;
            return weft__errno(errno);
        }
        if (r == 0) return WEFT_ETIMEDOUT;
        if (pfd.revents & POLLNVAL) return WEFT_EBADF;
        int got = 0;
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) got |= WEFT_READ;
        if (pfd.revents & (POLLOUT | POLLHUP | POLLERR)) got |= WEFT_WRITE;
        got &= events;
        if (got) return got;
    }
}

static int io_wait(int fd, int events, int64_t deadline, bool nocancel)
{
    if (!weft__hub_parks()) {
        weft__waitctx_t *ctx = weft__waitctx_current();
        if (ctx->scope && ctx->scope < deadline) deadline = ctx->scope;
        return wait_poll(fd, events, deadline, nocancel);
    }
    weft__hub_t *hub = weft__hub_get();
    weft__poller_t *p = hub ? poller_get(hub) : NULL;
    if (!p) return WEFT_ENOMEM;
    if (fd == p->evfd) return WEFT_EINVAL;
    int rc = grow(p, fd);
    if (rc) return rc;
    weft__fdstate_t *s = &p->fds[fd];
    uint32_t want = (uint32_t)events;
    if ((s->interest & want) != want) {
        rc = p->ops->arm(p, fd, s->interest | want);
        if (rc) return rc;
        s->interest |= want;
    }
    if (deadline != WEFT_NO_DEADLINE && deadline <= weft_monotonic_ns()) {
        /* A zero timeout: only look (the wait below would park until the next poll). */
        struct timespec zero = {0, 0};
        struct pollfd pfd = {
            fd, (short)((want & WEFT_READ ? POLLIN : 0) | (want & WEFT_WRITE ? POLLOUT : 0)), 0};
        int r = weft__sys_ppoll(&pfd, 1, &zero);
        if (r > 0 && (pfd.revents & POLLNVAL)) return WEFT_EBADF;
        int got = 0;
        if (r > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) got |= WEFT_READ;
        if (r > 0 && (pfd.revents & (POLLOUT | POLLHUP | POLLERR))) got |= WEFT_WRITE;
        got &= events;
        return got ? got : WEFT_ETIMEDOUT;
    }
    weft__waiter_t w;
    weft__waiter_init(&w);
    w.data = want;
    w.nocancel = nocancel;
    weft__waitq_lock(&s->waiters);
    weft__waitq_push(&s->waiters, &w);
    weft__waitq_unlock(&s->waiters);
    p->nwaiting++;
    rc = weft__waiter_park(&s->waiters, &w, deadline);
    p->nwaiting--;
    if (rc) return rc;
    if (w.data & WEFT__IO_ERR) return WEFT_EBADF;
    return (int)w.data;
}

int weft__io_wait(int fd, int events, int64_t deadline)
{
    return io_wait(fd, events, deadline, false);
}

int weft__io_wait_nocancel(int fd, int events, int64_t deadline)
{
    return io_wait(fd, events, deadline, true);
}

int weft_wait_fd(int fd, int events, double timeout)
{
    if (fd < 0 || !(events & (WEFT_READ | WEFT_WRITE)) || (events & ~(WEFT_READ | WEFT_WRITE)) ||
        isnan(timeout))
        return WEFT_EINVAL;
    weft_deadline_t deadline;
    weft_deadline(timeout, &deadline);
    return weft__io_wait(fd, events, deadline);
}

struct timespec *weft__poller_timespec(int64_t deadline, struct timespec *ts)
{
    if (deadline == WEFT_NO_DEADLINE) return NULL;
    int64_t left = deadline - weft_monotonic_ns();
    if (left < 0) left = 0;
    ts->tv_sec = (time_t)(left / 1000000000);
    ts->tv_nsec = (long)(left % 1000000000);
    return ts;
}

/* ---- IO calls ---------------------------------------------------------------------------- */

static int set_nonblock(int fd)
{
    int flags = weft__sys_fcntl(fd, F_GETFL, 0);
    if (flags < 0) return weft__errno(errno);
    if (!(flags & O_NONBLOCK) && weft__sys_fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return weft__errno(errno);
    return 0;
}

/* One attempt of an IO call that must not block. */
typedef ssize_t (*attempt_fn)(int fd, void *buf, size_t n, int flags);

static ssize_t try_read(int fd, void *buf, size_t n, int flags)
{
    ssize_t r = weft__sys_recv(fd, buf, n, flags | MSG_DONTWAIT);
    if (r < 0 && errno == ENOTSOCK) {
        int rc = set_nonblock(fd);
        if (rc) {
            errno = -rc;
            return -1;
        }
        r = weft__sys_read(fd, buf, n);
    }
    return r;
}

static ssize_t try_write(int fd, void *buf, size_t n, int flags)
{
    ssize_t r = weft__sys_send(fd, buf, n, flags | MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0 && errno == ENOTSOCK) {
        int rc = set_nonblock(fd);
        if (rc) {
            errno = -rc;
            return -1;
        }
        /* A pipe whose reader is gone: EPIPE, not SIGPIPE. SIGPIPE is process-directed only
         * when ignored... so block it for this thread around the write. */
        sigset_t pipe_set, old;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
        r = weft__sys_write(fd, buf, n);
        int err = errno;
        if (r < 0 && err == EPIPE) {
            /* Take the pending SIGPIPE this write raised, unless one was pending before. */
            struct timespec zero = {0, 0};
            sigtimedwait(&pipe_set, NULL, &zero);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = err;
    }
    return r;
}

static ssize_t io_once(int fd, void *buf, size_t n, int flags, int event, attempt_fn fn,
                       int64_t deadline)
{
    for (;;) {
        ssize_t r = fn(fd, buf, n, flags);
        if (r >= 0) return r;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return weft__errno(errno);
        int rc = weft__io_wait(fd, event, deadline);
        if (rc < 0) return rc;
    }
}

static ssize_t io_all(int fd, const void *buf, size_t n, int flags, double timeout)
{
    if (fd < 0 || (!buf && n) || isnan(timeout)) return WEFT_EINVAL;
    weft_deadline_t deadline;
    weft_deadline(timeout, &deadline);
    size_t done = 0;
    while (done < n || n == 0) {
        ssize_t r =
            io_once(fd, (char *)buf + done, n - done, flags, WEFT_WRITE, try_write, deadline);
        if (r < 0) return done ? (ssize_t)done : r;
        done += (size_t)r;
        if (n == 0) break;
    }
    return (ssize_t)done;
}

ssize_t weft_read(int fd, void *buf, size_t n, double timeout)
{
    if (fd < 0 || (!buf && n) || isnan(timeout)) return WEFT_EINVAL;
    weft_deadline_t deadline;
    weft_deadline(timeout, &deadline);
    return io_once(fd, buf, n, 0, WEFT_READ, try_read, deadline);
}

ssize_t weft_write(int fd, const void *buf, size_t n, double timeout)
{
    return io_all(fd, buf, n, 0, timeout);
}

ssize_t weft_recv(int fd, void *buf, size_t n, int flags, double timeout)
{
    if (fd < 0 || (!buf && n) || isnan(timeout)) return WEFT_EINVAL;
    weft_deadline_t deadline;
    weft_deadline(timeout, &deadline);
    return io_once(fd, buf, n, flags, WEFT_READ, try_read, deadline);
}

ssize_t weft_send(int fd, const void *buf, size_t n, int flags, double timeout)
{
    return io_all(fd, buf, n, flags, timeout);
}

static ssize_t try_accept(int fd, void *buf, size_t n, int flags)
{
    (void)n;
    (void)flags;
    struct sockaddr **addr = buf;
    socklen_t *len = (socklen_t *)(addr + 1);
    return weft__sys_accept4(fd, addr[0], addr[0] ? len : NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

int weft_accept(int fd, struct sockaddr *addr, socklen_t *len, double timeout)
{
    if (fd < 0 || (addr && !len) || isnan(timeout)) return WEFT_EINVAL;
    weft_deadline_t deadline;
    weft_deadline(timeout, &deadline);
    int rc = set_nonblock(fd); /* accept4's flag is for the new socket only */
    if (rc) return rc;
    struct {
        struct sockaddr *addr;
        socklen_t len;
    } a = {addr, len ? *len : 0};
    ssize_t r = io_once(fd, &a, 0, 0, WEFT_READ, try_accept, deadline);
    if (r >= 0 && len) *len = a.len;
    return (int)r;
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t len, double timeout)
{
    if (fd < 0 || !addr || isnan(timeout)) return WEFT_EINVAL;
    weft_deadline_t deadline;
    weft_deadline(timeout, &deadline);
    int rc = set_nonblock(fd);
    if (rc) return rc;
    while (weft__sys_connect(fd, addr, len) < 0) {
        if (errno == EINTR) continue; /* the connection goes on: wait for it below */
        if (errno != EINPROGRESS) return weft__errno(errno);
        break;
    }
    rc = weft__io_wait(fd, WEFT_WRITE, deadline);
    if (rc < 0) return rc;
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) return weft__errno(errno);
    return err ? weft__errno(err) : 0;
}

void weft__io_forget(int fd)
{
    weft__hub_t *hub = weft__hub_current();
    weft__poller_t *p = hub ? weft__hub_io(hub) : NULL;
    if (!p || fd < 0 || (size_t)fd >= p->nfds || fd == p->evfd) return;
    weft__fdstate_t *s = &p->fds[fd];
    if (s->interest) {
        p->ops->arm(p, fd, 0);
        p->ops->forget(p, fd);
        s->interest = 0;
    }
    weft__waitq_lock(&s->waiters);
    weft__waiter_t *list = weft__waitq_take(&s->waiters, -1, WEFT__IO_ERR);
    weft__waitq_unlock(&s->waiters);
    weft__waiters_wake(list);
}

int weft_close(int fd)
{
    if (fd < 0) return WEFT_EINVAL;
    weft__hub_t *hub = weft__hub_current();
    weft__poller_t *p = hub ? weft__hub_io(hub) : NULL;
    if (p && fd == p->evfd) return WEFT_EINVAL;
    weft__io_forget(fd);
    /* Linux releases the fd even when close reports EINTR: never retry. */
    if (weft__sys_close(fd) < 0 && errno != EINTR) return weft__errno(errno);
    return 0;
}
