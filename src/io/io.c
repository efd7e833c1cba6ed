/*
 * io.c — fd readiness for coroutines and the IO calls built on it. The poller of a hub is
 * created the first time one of its coroutines waits on an fd, and installed in the hub as
 * its idle wait (weft__hub_set_io): from then on the hub sleeps in the poller, and remote
 * wakes come through the poller's eventfd. See io_internal.h for the fd table.
 *
 * A caller that does not park through a hub (a thread without coroutines) waits in poll(2),
 * beside an eventfd of its own that a close of its fd writes (in cancel slices inside a cancel
 * scope). This is the one fd wait of weft: the process layer's pipes and joins use it too
 * (io_shared.h). That eventfd, the thread's kick, is made at the thread's first such wait and
 * kept until the thread exits (a pthread key's destructor closes it); every kick is on one list
 * (kicks_lock), so that a forked child closes them all: the forking thread's is shared with the
 * parent's thread (a child draining it would eat the parent's wake), the others' threads are
 * gone. A kick is written only while its thread's wait is on a bucket's list, under the
 * bucket's lock; a wait that saw its fd closed drains its kick after it left the list, so the
 * next wait starts with an empty one.
 *
 * Closing (weft__io_close, for weft_fd_close and the monkey patch's close/dup2/dup3): the closer
 * marks the close in progress, ends the waits of threads, then visits every poller's state of
 * the fd under its lock (waiters woken with WEFT_EBADF, the state marked closed, the backend's
 * interest dropped at once or by the hub before it waits again), runs the close and clears the
 * mark. A state marked closed is never waited on or reported on before its hub resets it, and
 * a wait meeting the mark waits for the close: so no waiter of the old fd can see an event of
 * the fd that takes the number, and no wait can start on the old fd and be missed.
 *
 * The fds of the layer's own (a poller's eventfd, a thread's kick) are closed by the system
 * call, never by close(3): the monkey patch's close ends waits through this file again.
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

/* In order of preference: epoll, then io_uring (where the kernel gives a ring), poll, select.
 * io_uring is not the default: its poll requests hold the file they watch, and under load a
 * socket a program had closed stayed open (no FIN to its peer, no fd left to it: held by a
 * ring) in 9 of about 350 runs of scenario.mixed, 0 of 130 on epoll; the request that holds it
 * is not found yet (docs/BENCHMARKS.md, "io_uring as the default"). With multishot polls and a
 * deferred ring its wait costs less per report than epoll's (the patched echo server at 1000
 * connections, issue 16: 8.9 against 12.1 us of CPU per request): WEFT_POLLER=io_uring. */
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

/* ---- the registry of pollers, and closes in progress --------------------------------------
 * weft_fd_close on any thread must reach every hub watching the fd: every poller of the process
 * is on one list (`pollers`, under `pollers_lock`, which also keeps a poller and its table's
 * chunks alive while a closer looks at them). Threads without a hub that wait on an fd, and
 * the closes in progress, are found through a small static hash by fd number (`buckets`):
 * a wait that starts on an fd being closed must not begin before the close is done (it would
 * watch a file about to go, and never be woken). */

static weft__mutex_t pollers_lock = WEFT__MUTEX_INIT;
static weft__list_t pollers; /* weft__poller_t.all, the newest first */

typedef struct thread_watch { /* a thread without a hub waiting on fd (on its stack) */
    int fd;
    int kick;                /* an eventfd in its ppoll set, or -1 */
    _Atomic uint32_t closed; /* weft_fd_close ended the wait */
    weft__list_node_t node;  /* on its bucket's `threads` */
} thread_watch_t;

typedef struct thread_kick {         /* a thread's kick (in its TLS): see the top */
    int fd;                          /* the eventfd, or -1 */
    struct thread_kick *next, *prev; /* on kicks, while fd >= 0 (kicks_lock) */
} thread_kick_t;

static WEFT__TLS thread_kick_t tls_kick = {-1, NULL, NULL};
static weft__mutex_t kicks_lock = WEFT__MUTEX_INIT;
static thread_kick_t *kicks;
static pthread_key_t kick_key; /* its destructor closes the exiting thread's kick */
static bool kick_key_made;     /* else every wait makes and closes an eventfd of its own */

typedef struct closer { /* a close in progress (on the closer's stack) */
    int fd;
    struct closer *next;
} closer_t;

#define NBUCKETS 256
static struct bucket {
    weft__mutex_t lock;
    _Atomic uint32_t nclosing; /* closers on the list: read without the lock first */
    closer_t *closers;
    weft__list_t threads; /* thread_watch_t.node */
} buckets[NBUCKETS];

static struct bucket *bucket_of(int fd)
{
    return &buckets[(unsigned)fd % NBUCKETS];
}

/* Whether a close of fd is in progress (b's lock held). */
static bool closing_locked(struct bucket *b, int fd)
{
    for (closer_t *c = b->closers; c; c = c->next)
        if (c->fd == fd) return true;
    return false;
}

/* Whether a close of fd is in progress. A closer counts itself in before it looks at any hub's
 * state and counts itself out after its close: a waiter that reads the count under its
 * state's lock after the closer visited that state sees it (the lock orders them). Relaxed is
 * enough for the first look for that reason; the list is read under the bucket's lock. */
static bool closing(int fd)
{
    struct bucket *b = bucket_of(fd);
    if (!atomic_load_explicit(&b->nclosing, memory_order_relaxed)) return false;
    weft__mutex_lock(&b->lock);
    bool c = closing_locked(b, fd);
    weft__mutex_unlock(&b->lock);
    return c;
}

static bool close_done(void *fd)
{
    return !closing((int)(intptr_t)fd);
}

/* A wait on fd found it being closed: let the close finish (a system call on another thread,
 * which wakes nobody when it ends: the waiting core's backoff naps look again), then the
 * caller starts over. 0, or the deadline's or a cancel's code. */
static int await_close(int fd, int64_t deadline, bool nocancel)
{
    return weft__nap_until(close_done, (void *)(intptr_t)fd, deadline, nocancel);
}

/* ---- the fd table (see io_internal.h) ---------------------------------------------------- */

#define FIRST_INDEX 16 /* chunks the first index names: fds below 4096 */

static weft__fdindex_t *index_new(size_t n)
{
    weft__fdindex_t *x = weft__calloc(1, sizeof *x + n * sizeof x->chunk[0]);
    if (x) x->n = n;
    return x;
}

/* fd's state, or NULL when its chunk does not exist. From any thread that holds pollers_lock,
 * or the hub's. */
static weft__fdstate_t *state_find(weft__poller_t *p, int fd)
{
    weft__fdindex_t *x = atomic_load_explicit(&p->index, memory_order_acquire);
    size_t i = (size_t)fd / WEFT__FD_CHUNK;
    if (fd < 0 || i >= x->n) return NULL;
    weft__fdchunk_t *c = atomic_load_explicit(&x->chunk[i], memory_order_acquire);
    return c ? &c->s[(size_t)fd % WEFT__FD_CHUNK] : NULL;
}

/* fd's state, its chunk (and a bigger index) made as needed. The hub's thread only. */
static int state_get(weft__poller_t *p, int fd, weft__fdstate_t **out)
{
    weft__fdindex_t *x = atomic_load_explicit(&p->index, memory_order_relaxed); /* ours */
    size_t i = (size_t)fd / WEFT__FD_CHUNK;
    if (i >= x->n) {
        /* Only for an open fd (a bad number would size the index for nothing): an open one is
         * below RLIMIT_NOFILE, so the index stays small. */
        if (weft__sys_fcntl(fd, F_GETFD, 0) < 0) return weft__errno(errno);
        size_t n = x->n;
        while (n <= i) n *= 2;
        weft__fdindex_t *y = index_new(n);
        if (!y) return WEFT_ENOMEM;
        for (size_t k = 0; k < x->n; k++)
            atomic_init(&y->chunk[k], atomic_load_explicit(&x->chunk[k], memory_order_relaxed));
        y->retired = x; /* a closer may be reading x: it goes with the poller */
        atomic_store_explicit(&p->index, y, memory_order_release);
        x = y;
    }
    weft__fdchunk_t *c = atomic_load_explicit(&x->chunk[i], memory_order_relaxed);
    if (!c) {
        c = weft__calloc(1, sizeof *c);
        if (!c) return WEFT_ENOMEM;
        for (size_t k = 0; k < WEFT__FD_CHUNK; k++) c->s[k].fd = (int)(i * WEFT__FD_CHUNK + k);
        atomic_store_explicit(&x->chunk[i], c, memory_order_release);
    }
    *out = &c->s[(size_t)fd % WEFT__FD_CHUNK];
    return 0;
}

static weft__fdchunk_t *chunk_of(weft__fdstate_t *s)
{
    weft__fdstate_t *first = s - (size_t)s->fd % WEFT__FD_CHUNK;
    return weft__container_of(first, weft__fdchunk_t, s);
}

/* Recounts whether s is in use (an interest, a wait in progress, a close to reset): a chunk in
 * use is never freed. The hub's thread. */
static void state_settle(weft__fdstate_t *s)
{
    bool used = s->interest || s->nwait || atomic_load_explicit(&s->closed, memory_order_relaxed);
    if (used == s->used) return;
    s->used = used;
    chunk_of(s)->used += used ? 1 : (size_t)-1;
}

/* After a close: frees fd's chunk when none of its states is in use (a closer may be looking
 * at it: under pollers_lock). The hub's thread. */
static void chunk_release_idle(weft__poller_t *p, int fd)
{
    weft__fdindex_t *x = atomic_load_explicit(&p->index, memory_order_relaxed);
    size_t i = (size_t)fd / WEFT__FD_CHUNK;
    if (i >= x->n) return;
    weft__fdchunk_t *c = atomic_load_explicit(&x->chunk[i], memory_order_relaxed);
    if (!c || c->used) return;
    weft__mutex_lock(&pollers_lock);
    atomic_store_explicit(&x->chunk[i], NULL, memory_order_relaxed);
    weft__mutex_unlock(&pollers_lock);
    weft__free(c);
}

static void table_free(weft__poller_t *p)
{
    weft__fdindex_t *x = atomic_load_explicit(&p->index, memory_order_relaxed);
    for (size_t i = 0; x && i < x->n; i++)
        weft__free(atomic_load_explicit(&x->chunk[i], memory_order_relaxed));
    while (x) {
        weft__fdindex_t *older = x->retired;
        weft__free(x);
        x = older;
    }
}

/* The hub's thread: resets the states weft_fd_close dropped on other threads (the backend
 * forgets the fd; its interest is gone), and frees chunks left idle. */
static void reap_closed(weft__poller_t *p)
{
    weft__fdstate_t *s = atomic_exchange_explicit(&p->closed, NULL, memory_order_acquire);
    while (s) {
        weft__fdstate_t *next = s->next_closed;
        weft__waitq_lock(&s->waiters);
        if (s->interest) p->ops->arm(p, s->fd, 0);
        p->ops->forget(p, s->fd);
        s->interest = 0;
        atomic_store_explicit(&s->closed, 0, memory_order_relaxed);
        weft__waitq_unlock(&s->waiters);
        state_settle(s);
        chunk_release_idle(p, s->fd);
        s = next;
    }
}

/* ---- the poller as the hub's idle wait --------------------------------------------------- */

static void hub_poll(void *io, int64_t deadline)
{
    weft__poller_t *p = io;
    if (atomic_load_explicit(&p->closed, memory_order_relaxed)) reap_closed(p);
    p->peeking = deadline == 0;
    p->ops->wait(p, deadline);
    p->peeking = false;
}

static void hub_notify(void *io)
{
    weft__poller_t *p = io;
    uint64_t one = 1;
    while (weft__sys_write(p->evfd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

static bool hub_busy(void *io)
{
    return ((weft__poller_t *)io)->nwaiting > 0;
}

static void hub_destroy(void *io)
{
    weft__poller_t *p = io;
    p->dying = true; /* a close on this thread (a destructor's) no longer looks at it */
    weft__mutex_lock(&pollers_lock);
    weft__list_remove(&pollers, &p->all);
    weft__mutex_unlock(&pollers_lock);
    p->ops->fini(p);
    weft__sys_close(p->evfd);
    table_free(p);
    weft__free(p);
}

static const weft__hub_io_t hub_io = {hub_poll, hub_notify, hub_busy, hub_destroy};

/* Creates the backend and the eventfd, and registers the latter. */
static int start(weft__poller_t *p, const weft__poller_ops_t *first)
{
    p->evfd = weft__sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->evfd < 0) return weft__errno(errno);
    int rc = WEFT_ENOTSUP;
    const weft__poller_ops_t *try[NBACKENDS + 1];
    size_t n = 0;
    try[n++] = first;
    for (size_t i = 0; i < NBACKENDS; i++)
        if (backends[i] != first) try[n++] = backends[i];
    weft__fdstate_t *s = NULL;
    for (size_t i = 0; i < n; i++) {
        p->ops = try[i];
        p->oneshot = p->edge = false; /* the backend's init says otherwise */
        if ((rc = p->ops->init(p)) != 0) continue;
        if ((rc = state_get(p, p->evfd, &s)) == 0 &&
            (rc = p->ops->arm(p, p->evfd, WEFT_READ)) == 0) {
            s->interest = WEFT_READ; /* not yet on the list of pollers: nobody else looks */
            state_settle(s);
            return 0;
        }
        p->ops->fini(p);
    }
    weft__sys_close(p->evfd);
    if (s) chunk_release_idle(p, s->fd);
    return rc;
}

static void io_once_init(void);
static pthread_once_t io_init_once = PTHREAD_ONCE_INIT;

static weft__poller_t *poller_get(weft__hub_t *hub)
{
    weft__poller_t *p = weft__hub_io(hub);
    if (p) return p;
    pthread_once(&io_init_once, io_once_init);
    p = weft__calloc(1, sizeof *p);
    if (!p) return NULL;
    weft__fdindex_t *x = index_new(FIRST_INDEX);
    if (!x) {
        weft__free(p);
        return NULL;
    }
    atomic_init(&p->index, x);
    if (start(p, preferred()) != 0) {
        table_free(p);
        weft__free(p);
        return NULL;
    }
    weft__mutex_lock(&pollers_lock);
    weft__list_push_front(&pollers, &p->all);
    weft__mutex_unlock(&pollers_lock);
    weft__hub_set_io(hub, &hub_io, p);
    return p;
}

/* ---- fork --------------------------------------------------------------------------------
 * In a forked child the forking thread keeps its hub, but the poller's kernel objects (the
 * backend's epoll instance or ring, the eventfd) are shared with the parent. The child handler
 * does only what cannot fail for lack of memory or fds and allocates nothing: the backend lets
 * go of this process's copy of itself (its fork op: each backend says what it shares), the
 * poller gets a private eventfd under the same fd number (so remote wakes never reach the
 * parent, and the fd table needs no change), and the "forked" backend below takes the real
 * one's place. A backend is built afresh on the hub's thread at its next fd wait or idle wait,
 * where a failure is an error code for that call (the next call tries again) instead of an
 * abort. Until then the idle wait still watches the eventfd, so remote wakes and timers work. */

static const weft__poller_ops_t *forked_real; /* the backend the parent used: tried first */
static bool forked_evfd_pending;              /* no private eventfd yet */

/* Gives p a private eventfd, under the old number when there is one. 0, or the error: then at
 * least the parent's is dropped (eating the parent's wakes here would lose them there), and
 * p->evfd is -1 until a later call succeeds (a notification then fails harmlessly). */
static int forked_private_evfd(weft__poller_t *p)
{
    int fd = weft__sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0 && p->evfd >= 0 && fd != p->evfd) {
        if (weft__sys_dup3(fd, p->evfd, O_CLOEXEC) >= 0) { /* the old number, now private */
            weft__sys_close(fd);
            fd = p->evfd;
        }
    }
    if (fd != p->evfd && p->evfd >= 0) { /* no private one there: drop the parent's */
        weft__fdstate_t *ev = state_find(p, p->evfd);
        if (ev) {
            ev->interest = 0;
            state_settle(ev);
        }
        weft__sys_close(p->evfd);
        p->evfd = -1;
    }
    if (fd < 0) return weft__errno(err);
    if (p->evfd < 0) {
        weft__fdstate_t *ev;
        int rc = state_get(p, fd, &ev);
        if (rc) {
            weft__sys_close(fd);
            return rc;
        }
        p->evfd = fd;
        ev->interest = WEFT_READ;
        state_settle(ev);
    }
    forked_evfd_pending = false;
    return 0;
}

/* Builds this process's own backend for p (any of them, the parent's first) and arms every
 * fd of the table again. 0, or the error. */
static int forked_rebuild(weft__poller_t *p)
{
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
        p->oneshot = p->edge = false; /* the backend's init says otherwise */
        if ((rc = try[i]->init(p)) != 0) continue;
        rc = try[i]->arm(p, p->evfd, WEFT_READ);
        weft__fdindex_t *x = atomic_load_explicit(&p->index, memory_order_relaxed);
        for (size_t k = 0; rc == 0 && k < x->n; k++) {
            weft__fdchunk_t *c = atomic_load_explicit(&x->chunk[k], memory_order_relaxed);
            for (size_t j = 0; rc == 0 && c && j < WEFT__FD_CHUNK; j++) {
                weft__fdstate_t *s = &c->s[j];
                if (s->fd == p->evfd || !s->interest) continue;
                rc = try[i]->arm(p, s->fd, s->interest);
                if (rc != 0 && rc != WEFT_ENOMEM) {
                    /* Closed in the child before the rebuild (the process layer's fork
                     * handler closes the parent's pidfds), or its number now holds what the
                     * rebuild itself opened: not this process's fd any more. Its waiters
                     * are told so; the rebuild goes on. */
                    s->interest = 0;
                    state_settle(s);
                    weft__poller_ready(p, s->fd, WEFT__IO_ERR);
                    rc = 0;
                }
            }
        }
        if (rc == 0) {
            p->ops = try[i];
            forked_real = NULL;
            return 0;
        }
        try[i]->fini(p);
        p->impl = NULL;
        p->oneshot = p->edge = false;
    }
    return rc;
}

static int forked_init(weft__poller_t *p)
{
    (void)p;
    return WEFT_ENOTSUP; /* never chosen: only installed by the fork handler */
}

/* fini and fork: the real backend's copy was let go of by the fork handler already. */
static void forked_fini(weft__poller_t *p)
{
    (void)p;
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
    int64_t cap = weft_time_monotonic_ns() + 10 * 1000000LL;
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

static const weft__poller_ops_t forked_backend = {.name = "forked",
                                                  .init = forked_init,
                                                  .fini = forked_fini,
                                                  .fork = forked_fini,
                                                  .arm = forked_arm,
                                                  .wait = forked_wait,
                                                  .forget = forked_forget,
                                                  .unwatch = NULL,
                                                  .recheck = NULL};

/* Around fork: no closer may be inside a poller's state then (it would hold its lock in the
 * child, where no thread would ever release it). */
static void on_fork_prepare(void)
{
    weft__mutex_lock(&pollers_lock);
    weft__mutex_lock(&kicks_lock);
}

static void on_fork_parent(void)
{
    weft__mutex_unlock(&kicks_lock);
    weft__mutex_unlock(&pollers_lock);
}

static void kick_close(int fd);

/* In a forked child: every thread's kick is closed (see the top); the forking thread makes a
 * new one at its next wait. */
static void kicks_fork_child(void)
{
    for (thread_kick_t *k = kicks, *next; k; k = next) {
        next = k->next;
        kick_close(k->fd);
        *k = (thread_kick_t){-1, NULL, NULL};
    }
    kicks = NULL;
    atomic_store_explicit(&kicks_lock.state, 0, memory_order_relaxed);
}

/* In a forked child only the forking thread lives: the other threads' pollers, waits and
 * closes are gone (their memory is the parent's copy: left alone). The forking thread keeps
 * its hub: its backend lets go of the parent's kernel object, and its poller gets a private
 * eventfd and the "forked" backend above. */
static void on_fork_child(void)
{
    memset(buckets, 0, sizeof buckets);
    kicks_fork_child();
    weft__hub_t *hub = weft__hub_current();
    weft__poller_t *p = hub ? weft__hub_io(hub) : NULL;
    pollers = (weft__list_t){0};
    if (p) weft__list_push_front(&pollers, &p->all);
    atomic_store_explicit(&pollers_lock.state, 0, memory_order_relaxed);
    if (!p) return;
    if (p->ops != &forked_backend) { /* (a fork of a child that did not rebuild yet: as is) */
        forked_real = p->ops;
        p->ops->fork(p); /* frees an fd, too, for the private eventfd */
        p->ops = &forked_backend;
        p->oneshot = p->edge = false;
    }
    forked_evfd_pending = true;
    forked_private_evfd(p); /* on failure the rebuild tries again */
}

static const weft__fork_hooks_t fork_hooks = {
    .rank = WEFT__LAYER_IO,
    .prepare = on_fork_prepare,
    .parent = on_fork_parent,
    .child = on_fork_child,
};

static void kick_at_thread_exit(void *k);

static void io_once_init(void)
{
    weft__fork_register(&fork_hooks); /* fails only for lack of memory */
    kick_key_made = pthread_key_create(&kick_key, kick_at_thread_exit) == 0;
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
    for (weft__waiter_t *w = weft__waitq_first(&s->waiters); w; w = weft__waitq_next(w))
        mask |= (uint32_t)w->data;
    return mask;
}

void weft__poller_ready(weft__poller_t *p, int fd, uint32_t revents)
{
    if (fd == p->evfd) {
        uint64_t v;
        while (weft__sys_read(fd, &v, sizeof v) < 0 && errno == EINTR) {
        }
        return;
    }
    weft__fdstate_t *s = state_find(p, fd);
    if (!s) return;
    /* Wake every waiter the report concerns (an error concerns all), handing it its events. */
    weft__waiter_t *list = NULL, **tail = &list;
    weft__waitq_lock(&s->waiters);
    if (atomic_load_explicit(&s->closed, memory_order_relaxed)) {
        /* Closed on another thread: its waiters are gone, and the report may be of the fd
         * that took the number. The state is reset before anybody waits on it again. */
        weft__waitq_unlock(&s->waiters);
        return;
    }
    uint32_t wanted_now = wanted(s); /* before the wake: what this report had waiters for */
    for (weft__waiter_t *w = weft__waitq_first(&s->waiters), *next; w; w = next) {
        next = weft__waitq_next(w);
        uint32_t got = (uint32_t)w->data & revents;
        if (revents & WEFT__IO_ERR) got = WEFT__IO_ERR;
        if (!got) continue;
        weft__waitq_remove(&s->waiters, w);
        w->data = got;
        *tail = w;
        tail = &w->next;
    }
    *tail = NULL;
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
    if (p->peeking && !p->oneshot && !(revents & WEFT__IO_ERR)) unwanted = 0;
    if (s->interest & unwanted) {
        /* Under the lock: a closer on another thread drops the interest under it too. */
        uint32_t want = s->interest & ~unwanted;
        if (p->ops->arm(p, fd, want) != 0) want = 0;
        s->interest = want;
    }
    weft__waitq_unlock(&s->waiters);
    weft__waiters_wake(list);
    state_settle(s);
}

/* ---- waiting ----------------------------------------------------------------------------- */

static int revents_to(short re, int events)
{
    int got = 0;
    if (re & (POLLIN | POLLHUP | POLLERR)) got |= WEFT_READ;
    if (re & (POLLOUT | POLLHUP | POLLERR)) got |= WEFT_WRITE;
    return got & events;
}

static short events_to(int events)
{
    return (short)((events & WEFT_READ ? POLLIN : 0) | (events & WEFT_WRITE ? POLLOUT : 0));
}

/* A look without waiting: the ready events, WEFT_ETIMEDOUT when none, or WEFT_EBADF. */
static int look(int fd, int events)
{
    struct pollfd pfd = {fd, events_to(events), 0};
    struct timespec zero = {0, 0};
    int r;
    while ((r = weft__sys_ppoll(&pfd, 1, &zero)) < 0 && errno == EINTR) {
    }
    if (r < 0) return weft__errno(errno);
    if (r > 0 && (pfd.revents & POLLNVAL)) return WEFT_EBADF;
    int got = r > 0 ? revents_to(pfd.revents, events) : 0;
    return got ? got : WEFT_ETIMEDOUT;
}

static void thread_unwatch(struct bucket *b, thread_watch_t *t)
{
    weft__mutex_lock(&b->lock);
    weft__list_remove(&b->threads, &t->node);
    weft__mutex_unlock(&b->lock);
}

/* Closes a thread's kick eventfd by the system call (never close(3): see the top). Under TSan
 * through glibc's __close, which TSan intercepts (and the monkey patch does not): a close TSan
 * does not see leaves the number "open" to it, and the next thread's eventfd on that number
 * would look like a race with this one's. */
static void kick_close(int fd)
{
#if WEFT__TSAN
    extern int __close(int fd);
    __close(fd);
#else
    weft__sys_close(fd);
#endif
}

/* The calling thread's kick, made at its first wait: the eventfd, or -1 when none can be made
 * (no fd left: the wait then sleeps in slices). Made under kicks_lock, which a fork's prepare
 * takes, so that a child finds every kick on the list. */
static int kick_get(void)
{
    if (weft__likely(tls_kick.fd >= 0)) return tls_kick.fd;
    if (!kick_key_made) return weft__sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    weft__mutex_lock(&kicks_lock);
    int fd = weft__sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd >= 0 && pthread_setspecific(kick_key, &tls_kick) != 0) {
        kick_close(fd);
        fd = -1;
    }
    if (fd >= 0) {
        tls_kick = (thread_kick_t){fd, kicks, NULL};
        if (kicks) kicks->prev = &tls_kick;
        kicks = &tls_kick;
    }
    weft__mutex_unlock(&kicks_lock);
    return fd;
}

/* Takes k off the list (kicks_lock held); its fd is -1 after. */
static void kick_unlink(thread_kick_t *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        kicks = k->next;
    if (k->next) k->next->prev = k->prev;
    *k = (thread_kick_t){-1, NULL, NULL};
}

/* The kick's key destructor, at the exit of a thread that made one. */
static void kick_at_thread_exit(void *p)
{
    thread_kick_t *k = p;
    weft__mutex_lock(&kicks_lock);
    int fd = k->fd;
    if (fd >= 0) kick_unlink(k);
    weft__mutex_unlock(&kicks_lock);
    if (fd >= 0) kick_close(fd);
}

void weft__io_kick_release(void)
{
    if (tls_kick.fd >= 0) kick_at_thread_exit(&tls_kick);
}

/* The end of a wait with kick fd: an eventfd of the wait's own (no key) is closed; the thread's
 * is drained if a closer may have written it (`closed`: it writes only before the wait leaves
 * its bucket's list, which the caller has done). */
static void kick_put(int fd, bool closed)
{
    if (fd < 0) return;
    if (!kick_key_made) {
        kick_close(fd);
    } else if (closed) {
        uint64_t v;
        while (weft__sys_read(fd, &v, sizeof v) < 0 && errno == EINTR) {
        }
    }
}

/* The thread's kick is no longer open (the program closed the number, which poll reports): it
 * is forgotten, not closed (the number may be another file's by now). */
static void kick_lost(void)
{
    if (!kick_key_made) return;
    weft__mutex_lock(&kicks_lock);
    if (tls_kick.fd >= 0) kick_unlink(&tls_kick);
    weft__mutex_unlock(&kicks_lock);
}

/* A thread without a hub: ppoll on fd and the thread's kick (weft_fd_close writes it). The
 * waiting core cannot wake a thread in ppoll: inside a cancel scope it sleeps in slices
 * (weft__cancel_slice_end) to see a cancel; without a kick (no fd left), in slices of
 * WEFT__CANCEL_SLICE_NS too, to see a close. */
static int thread_wait(int fd, int events, int64_t deadline, bool nocancel)
{
    weft__waitctx_t *ctx = weft__waitctx_current();
    deadline = weft__scoped_deadline(ctx, deadline);
    if (deadline != WEFT_NO_DEADLINE && deadline <= weft_time_monotonic_ns())
        return look(fd, events);
    pthread_once(&io_init_once, io_once_init); /* the fork handler: a child's buckets start empty */
    struct bucket *b = bucket_of(fd);
    thread_watch_t t = {.fd = fd, .kick = kick_get()};
    for (;;) {
        weft__mutex_lock(&b->lock);
        if (!closing_locked(b, fd)) break;
        weft__mutex_unlock(&b->lock);
        int rc = await_close(fd, deadline, nocancel);
        if (rc) {
            kick_put(t.kick, false);
            return rc;
        }
    }
    weft__list_push_front(&b->threads, &t.node);
    weft__mutex_unlock(&b->lock);
    struct pollfd pfd[2] = {{fd, events_to(events), 0}, {t.kick, POLLIN, 0}};
    int rc;
    bool mark = weft__blocked_enter(ctx, events & WEFT_WRITE ? WEFT__ON_FD_WRITE : WEFT__ON_FD_READ,
                                    (const void *)(intptr_t)fd, deadline);
    for (;;) {
        if (atomic_load_explicit(&t.closed, memory_order_acquire)) {
            rc = WEFT_EBADF;
            break;
        }
        if (!nocancel && weft__waitctx_canceled(ctx)) {
            rc = WEFT_ECANCELED;
            break;
        }
        int64_t end = weft__cancel_slice_end(ctx, deadline, nocancel);
        if (t.kick < 0 && end - weft_time_monotonic_ns() > WEFT__CANCEL_SLICE_NS)
            end = weft_time_monotonic_ns() + WEFT__CANCEL_SLICE_NS;
        struct timespec ts;
        int r = weft__sys_ppoll(pfd, 2, weft__poller_timespec(end, &ts));
        if (r < 0) {
            if (errno == EINTR) continue;
            rc = weft__errno(errno);
            break;
        }
        if (pfd[1].revents & POLLNVAL) { /* the kick's number was closed: on without it */
            weft__mutex_lock(&b->lock);
            t.kick = pfd[1].fd = -1;
            weft__mutex_unlock(&b->lock);
            kick_lost();
            continue;
        }
        if (pfd[1].revents) { /* a close: the flag is set (drain for the next slice anyway) */
            uint64_t v;
            while (weft__sys_read(t.kick, &v, sizeof v) < 0 && errno == EINTR) {
            }
            continue;
        }
        if (pfd[0].revents & POLLNVAL) {
            rc = WEFT_EBADF;
            break;
        }
        if ((rc = revents_to(pfd[0].revents, events)) != 0) break;
        if (deadline != WEFT_NO_DEADLINE && weft_time_monotonic_ns() >= deadline) {
            rc = WEFT_ETIMEDOUT;
            break;
        }
    }
    weft__blocked_leave(ctx, mark);
    thread_unwatch(b, &t);
    kick_put(t.kick, atomic_load_explicit(&t.closed, memory_order_relaxed));
    return rc;
}

/* The waits of io_wait on s: s is kept in use meanwhile (its chunk stays). */
static void wait_begin(weft__fdstate_t *s)
{
    s->nwait++;
    state_settle(s);
}

static void wait_end(weft__fdstate_t *s)
{
    s->nwait--;
    state_settle(s);
}

/* io_wait's check, under the fd state's wait queue lock: it always parks, once the poller
 * watches fd for the events (armed here; a backend that reports edges asked to look at fd
 * unless the caller just saw it not ready), unless fd was closed on another thread since the
 * caller looked, or is being closed now (FD_CLOSING: wait for the close to be done and start
 * over, a new fd may have the number by then), or arming failed (arm_rc). */
enum { FD_CLOSING = WEFT__WAIT_PARK + 1 };

typedef struct fd_check {
    weft__poller_t *p;
    weft__fdstate_t *s;
    int fd;
    uint32_t want;
    bool after_eagain;
    int arm_rc;
} fd_check_t;

static int fd_check(void *arg)
{
    fd_check_t *c = arg;
    weft__fdstate_t *s = c->s;
    if (atomic_load_explicit(&s->closed, memory_order_relaxed) || closing(c->fd)) return FD_CLOSING;
    if ((s->interest & c->want) != c->want) {
        c->arm_rc = c->p->ops->arm(c->p, c->fd, s->interest | c->want);
        if (c->arm_rc) return c->arm_rc;
        s->interest |= c->want;
    }
    if (c->p->edge && !c->after_eagain) c->p->ops->recheck(c->p, c->fd, c->want);
    return WEFT__WAIT_PARK;
}

static int io_wait(int fd, int events, int64_t deadline, bool nocancel, bool after_eagain)
{
    weft__hub_t *hub = weft__hub_parking();
    if (!hub) return thread_wait(fd, events, deadline, nocancel);
    weft__poller_t *p = poller_get(hub);
    if (!p) return WEFT_ENOMEM;
    if (fd == p->evfd) return WEFT_EINVAL;
    if (deadline != WEFT_NO_DEADLINE && deadline <= weft_time_monotonic_ns())
        return look(fd, events); /* a zero timeout: the wait below would park until the next poll */
    uint32_t want = (uint32_t)events;
    for (;;) {
        if (atomic_load_explicit(&p->closed, memory_order_relaxed)) reap_closed(p);
        weft__fdstate_t *s;
        int rc = state_get(p, fd, &s);
        if (rc) return rc;
        wait_begin(s);
        weft__waiter_t w;
        weft__waiter_init(&w);
        weft__waiter_on(&w, want & WEFT_WRITE ? WEFT__ON_FD_WRITE : WEFT__ON_FD_READ,
                        (const void *)(intptr_t)fd);
        w.data = want;
        w.nocancel = nocancel;
        fd_check_t c = {p, s, fd, want, after_eagain, 0};
        p->nwaiting++; /* the hub's thread alone reads it, and it runs nothing else meanwhile */
        rc = weft__wait_until(NULL, &s->waiters, &w, fd_check, &c, deadline);
        p->nwaiting--;
        wait_end(s);
        if (rc == FD_CLOSING) {
            if ((rc = await_close(fd, deadline, nocancel)) != 0) return rc;
            continue;
        }
        if (c.arm_rc) {
            chunk_release_idle(p, fd); /* a bad fd (or no memory) keeps no chunk */
            return rc;
        }
        if (rc) return rc;
        if (w.data & WEFT__IO_ERR) return WEFT_EBADF;
        return (int)w.data;
    }
}

int weft__io_wait(int fd, int events, int64_t deadline)
{
    return io_wait(fd, events, deadline, false, false);
}

int weft__io_wait_nocancel(int fd, int events, int64_t deadline)
{
    return io_wait(fd, events, deadline, true, false);
}

int weft__io_wait_after_eagain(int fd, int events, int64_t deadline)
{
    return io_wait(fd, events, deadline, false, true);
}

bool weft__io_edge(void)
{
    weft__hub_t *hub = weft__hub_parking();
    weft__poller_t *p = hub ? weft__hub_io(hub) : NULL;
    return p && p->edge;
}

int weft_fd_wait(int fd, int events, double timeout, int *revents)
{
    if (revents) *revents = 0;
    if (fd < 0 || !(events & (WEFT_READ | WEFT_WRITE)) || (events & ~(WEFT_READ | WEFT_WRITE)) ||
        isnan(timeout))
        return WEFT_EINVAL;
    int64_t deadline;
    weft__deadline(timeout, &deadline);
    int rc = weft__io_wait(fd, events, deadline);
    if (rc < 0) return rc;
    if (revents) *revents = rc;
    return 0;
}

struct timespec *weft__poller_timespec(int64_t deadline, struct timespec *ts)
{
    if (deadline == WEFT_NO_DEADLINE) return NULL;
    int64_t left = deadline - weft_time_monotonic_ns();
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
        /* Only a caller that blocks SIGPIPE itself can have one pending now (an unblocked one
         * was delivered): then ask, so that the EPIPE below does not take that one. */
        bool pending_before = false;
        if (sigismember(&old, SIGPIPE)) {
            sigset_t pending;
            pending_before = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
        }
        r = weft__sys_write(fd, buf, n);
        int err = errno;
        if (r < 0 && err == EPIPE && !pending_before) {
            /* Take the pending SIGPIPE this write raised (none was pending before). */
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
        int rc = weft__io_wait_after_eagain(fd, event, deadline);
        if (rc < 0) return rc;
    }
}

/* Writes all n bytes: 0, or the error that stopped it; what went is in *done (may be NULL)
 * either way. */
static int io_all(int fd, const void *buf, size_t n, int flags, double timeout, size_t *done)
{
    if (done) *done = 0;
    if (fd < 0 || (!buf && n) || isnan(timeout)) return WEFT_EINVAL;
    int64_t deadline;
    weft__deadline(timeout, &deadline);
    size_t sent = 0;
    int rc = 0;
    while (sent < n || n == 0) {
        ssize_t r =
            io_once(fd, (char *)buf + sent, n - sent, flags, WEFT_WRITE, try_write, deadline);
        if (r < 0) {
            rc = (int)r;
            break;
        }
        sent += (size_t)r;
        if (n == 0) break;
    }
    if (done) *done = sent;
    return rc;
}

/* One read: 0 with the count in *done, or the error (*done 0). */
static int io_in(int fd, void *buf, size_t n, int flags, double timeout, size_t *done)
{
    if (done) *done = 0;
    if (fd < 0 || (!buf && n) || !done || isnan(timeout)) return WEFT_EINVAL;
    int64_t deadline;
    weft__deadline(timeout, &deadline);
    ssize_t r = io_once(fd, buf, n, flags, WEFT_READ, try_read, deadline);
    if (r < 0) return (int)r;
    *done = (size_t)r;
    return 0;
}

int weft_fd_read(int fd, void *buf, size_t n, double timeout, size_t *done)
{
    return io_in(fd, buf, n, 0, timeout, done);
}

int weft_fd_write(int fd, const void *buf, size_t n, double timeout, size_t *done)
{
    return io_all(fd, buf, n, 0, timeout, done);
}

int weft_fd_recv(int fd, void *buf, size_t n, int flags, double timeout, size_t *done)
{
    return io_in(fd, buf, n, flags, timeout, done);
}

int weft_fd_send(int fd, const void *buf, size_t n, int flags, double timeout, size_t *done)
{
    return io_all(fd, buf, n, flags, timeout, done);
}

static ssize_t try_accept(int fd, void *buf, size_t n, int flags)
{
    (void)n;
    (void)flags;
    struct sockaddr **addr = buf;
    socklen_t *len = (socklen_t *)(addr + 1);
    return weft__sys_accept4(fd, addr[0], addr[0] ? len : NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

int weft_fd_accept(int fd, struct sockaddr *addr, socklen_t *len, double timeout, int *conn)
{
    if (conn) *conn = -1;
    if (fd < 0 || !conn || (addr && !len) || isnan(timeout)) return WEFT_EINVAL;
    int64_t deadline;
    weft__deadline(timeout, &deadline);
    int rc = set_nonblock(fd); /* accept4's flag is for the new socket only */
    if (rc) return rc;
    struct {
        struct sockaddr *addr;
        socklen_t len;
    } a = {addr, len ? *len : 0};
    ssize_t r = io_once(fd, &a, 0, 0, WEFT_READ, try_accept, deadline);
    if (r < 0) return (int)r;
    if (len) *len = a.len;
    *conn = (int)r;
    return 0;
}

int weft__io_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline)
{
    int rc = set_nonblock(fd);
    if (rc) return rc;
    bool inprogress = false;
    while (weft__sys_connect(fd, addr, len) < 0) {
        if (errno == EINTR) continue; /* the connection goes on: wait for it below */
        if (errno != EINPROGRESS) return weft__errno(errno);
        inprogress = true;
        break;
    }
    rc = inprogress ? weft__io_wait_after_eagain(fd, WEFT_WRITE, deadline)
                    : weft__io_wait(fd, WEFT_WRITE, deadline);
    if (rc < 0) return rc;
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) return weft__errno(errno);
    return err ? weft__errno(err) : 0;
}

int weft_fd_connect(int fd, const struct sockaddr *addr, socklen_t len, double timeout)
{
    if (fd < 0 || !addr || isnan(timeout)) return WEFT_EINVAL;
    int64_t deadline;
    weft__deadline(timeout, &deadline);
    return weft__io_connect(fd, addr, len, deadline);
}

void weft__io_forget(int fd)
{
    weft__hub_t *hub = weft__hub_current();
    weft__poller_t *p = hub ? weft__hub_io(hub) : NULL;
    if (!p || fd < 0 || fd == p->evfd) return;
    weft__fdstate_t *s = state_find(p, fd);
    if (!s) return;
    weft__waitq_lock(&s->waiters);
    if (s->interest) {
        p->ops->arm(p, fd, 0);
        p->ops->forget(p, fd);
        s->interest = 0;
    }
    weft__waiter_t *list = weft__waitq_take(&s->waiters, -1, WEFT__IO_ERR);
    weft__waitq_unlock(&s->waiters);
    weft__waiters_wake(list);
    state_settle(s);
    chunk_release_idle(p, fd);
}

/* A closer's visit to one poller's state of the fd (pollers_lock held): its waiters wake with
 * WEFT_EBADF, and the poller stops watching the fd: at once where the backend can do that from
 * here (epoll), else its hub is asked to (poll, select and io_uring hold the file in their
 * wait, so it would not really close before). The hub resets the state (reap_closed). */
static void close_in(weft__poller_t *p, weft__fdstate_t *s, bool own)
{
    weft__waitq_lock(&s->waiters);
    if (atomic_load_explicit(&s->closed, memory_order_relaxed) ||
        (!s->interest && weft__waitq_empty(&s->waiters))) {
        weft__waitq_unlock(&s->waiters);
        return;
    }
    atomic_store_explicit(&s->closed, 1, memory_order_relaxed);
    bool dropped = p->ops->unwatch != NULL;
    if (dropped && s->interest) p->ops->unwatch(p, s->fd);
    if (dropped && own) s->interest = 0; /* our own state: reap_closed need not drop it again */
    weft__waiter_t *list = weft__waitq_take(&s->waiters, -1, WEFT__IO_ERR);
    weft__fdstate_t *head = atomic_load_explicit(&p->closed, memory_order_relaxed);
    do s->next_closed = head;
    while (!atomic_compare_exchange_weak_explicit(&p->closed, &head, s, memory_order_release,
                                                  memory_order_relaxed));
    weft__waitq_unlock(&s->waiters);
    weft__waiters_wake(list);
    if (!dropped && !own) hub_notify(p);
}

int weft__io_close(int fd, int (*op)(int fd, void *arg), void *arg)
{
    /* 1. A close in progress: waits that start on fd from now on wait for it to be done. */
    struct bucket *b = bucket_of(fd);
    closer_t me = {fd, NULL};
    weft__mutex_lock(&b->lock);
    me.next = b->closers;
    b->closers = &me;
    atomic_fetch_add_explicit(&b->nclosing, 1, memory_order_relaxed); /* see closing() */
    /* 2. Threads without a hub waiting on fd: told, and kicked out of their ppoll. */
    for (weft__list_node_t *n = weft__list_first(&b->threads); n; n = weft__list_next(n)) {
        thread_watch_t *t = weft__container_of(n, thread_watch_t, node);
        if (t->fd == fd) {
            atomic_store_explicit(&t->closed, 1, memory_order_release);
            uint64_t one = 1;
            if (t->kick >= 0)
                while (weft__sys_write(t->kick, &one, sizeof one) < 0 && errno == EINTR) {
                }
        }
    }
    weft__mutex_unlock(&b->lock);
    /* 3. Every hub: waiters woken, interest dropped (see close_in). */
    weft__hub_t *hub = weft__hub_current();
    weft__poller_t *mine = hub ? weft__hub_io(hub) : NULL;
    if (mine && mine->dying) mine = NULL;
    weft__mutex_lock(&pollers_lock);
    for (weft__list_node_t *n = weft__list_first(&pollers); n; n = weft__list_next(n)) {
        weft__poller_t *p = weft__container_of(n, weft__poller_t, all);
        weft__fdstate_t *s = fd == p->evfd ? NULL : state_find(p, fd);
        if (s) close_in(p, s, p == mine);
    }
    weft__mutex_unlock(&pollers_lock);
    /* Our own hub forgets the fd now, before the close (io_uring's polls hold the file). */
    if (mine && atomic_load_explicit(&mine->closed, memory_order_relaxed)) reap_closed(mine);
    if (mine && fd != mine->evfd) chunk_release_idle(mine, fd);
    /* 4. The close itself; then waits on the number may start again. */
    int r = op(fd, arg);
    int err = errno;
    weft__mutex_lock(&b->lock);
    for (closer_t **c = &b->closers; *c; c = &(*c)->next)
        if (*c == &me) {
            *c = me.next;
            break;
        }
    atomic_fetch_sub_explicit(&b->nclosing, 1, memory_order_relaxed);
    weft__mutex_unlock(&b->lock);
    errno = err;
    return r;
}

static int close_op(int fd, void *arg)
{
    (void)arg;
    return weft__sys_close(fd); /* not the monkey patch's close: this is it */
}

int weft_fd_close(int fd)
{
    if (fd < 0) return WEFT_EINVAL;
    weft__hub_t *hub = weft__hub_current();
    weft__poller_t *p = hub ? weft__hub_io(hub) : NULL;
    if (p && fd == p->evfd) return WEFT_EINVAL;
    /* Linux releases the fd even when close reports EINTR: never retry. */
    if (weft__io_close(fd, close_op, NULL) < 0 && errno != EINTR) return weft__errno(errno);
    return 0;
}
