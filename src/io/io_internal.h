/*
 * io_internal.h — the io layer inside: one poller per hub, behind one interface that four
 * backends implement, one file each (poll_select.c, poll_poll.c, poll_epoll.c,
 * poll_uring.c; Redis's ae_*.c pattern).
 *
 * The common part (io.c) owns the fd table of each poller: per fd, the waiters (waiting-core
 * waiters whose `data` holds the events they want, then the events they got) and the interest
 * mask it gave the backend. The table is two-level, as the kernel's fdtable: an index of
 * chunks of WEFT__FD_CHUNK states. A chunk never moves while it exists (parked waiters point
 * into it: their queue); a bigger index replaces a smaller one, which is kept until the hub
 * ends (another thread may be reading it); an index entry and the chunk it names are only
 * dropped when no state of the chunk is in use, under the pollers' lock.
 *
 * Who touches a state: the hub's thread (waits, reports, interest), and weft_fd_close on any
 * thread (it ends every wait on the fd in every hub: see io.c). Both under the state's waiters
 * lock for the waiters, the interest and `closed`; the hub's thread alone for the rest.
 *
 * A backend keeps, per fd, an INTEREST mask (WEFT_READ | WEFT_WRITE) and reports readiness
 * level-style: as long as an fd is ready for an event of its interest, every wait reports it.
 * (io_uring's one-shot polls are re-armed by the backend to give the same contract.) A backend
 * that reports edges (io_uring's multishot polls: `edge`) gives it with the common part: a
 * wait whose caller has just seen the fd not ready (EAGAIN, nothing run since: the waits of the
 * IO calls) is woken by the next edge; any other wait first asks the backend to `recheck` the
 * fd. The common part narrows the interest lazily: only when a report of a wait that blocks
 * finds no waiter for an event (see weft__poller_ready).
 *
 * The hub's remote wakes arrive on an eventfd that the common part registers like any fd.
 */
#ifndef WEFT_IO_INTERNAL_H
#define WEFT_IO_INTERNAL_H

#include "../coro/coro_internal.h"
#include "io_shared.h"
#include "weft/io.h"

#define WEFT__IO_ERR 0x100u /* in a report: the fd is bad (closed under the poller) */

typedef struct weft__poller weft__poller_t;

typedef struct weft__poller_ops {
    const char *name;
    /* Sets up p->impl. Returns 0 or a negative code (then the next backend is tried). */
    int (*init)(weft__poller_t *p);
    /* Frees p->impl (in a forked child: without touching what the parent shares). */
    void (*fini)(weft__poller_t *p);
    /* In a forked child, from the io layer's fork handler (the only thread: nothing may be
     * allocated or waited for): lets go of this process's copy of the backend, never touching
     * what the parent's poller goes on using, and frees p->impl. The io layer then builds a
     * backend afresh at the hub's next wait and arms every fd of its table again (libuv's
     * uv__io_fork). Each backend's file says what it shares with the parent. */
    void (*fork)(weft__poller_t *p);
    /* Sets fd's interest to `mask` (0: none; the fd may be gone then). Errors: negative code
     * (WEFT_EBADF for a closed fd, WEFT_EINVAL for an fd the backend cannot watch). */
    int (*arm)(weft__poller_t *p, int fd, uint32_t mask);
    /* Waits until the deadline (0: only looks; WEFT_NO_DEADLINE: no limit) for readiness,
     * and calls weft__poller_ready for each ready fd. */
    void (*wait)(weft__poller_t *p, int64_t deadline);
    /* weft_fd_close is closing fd: forget it (poll requests in flight are canceled). */
    void (*forget)(weft__poller_t *p, int fd);
    /* From any thread, fd still open and its state locked: the kernel stops watching fd for
     * this poller at once (NULL when only the hub's thread can: then it is asked to). */
    void (*unwatch)(weft__poller_t *p, int fd);
    /* For a backend that reports edges (p->edge), NULL otherwise: a wait for `events` of fd
     * starts (fd armed for them) whose caller has not just seen fd not ready: the backend
     * reports the events that are ready now, at its next wait. */
    void (*recheck)(weft__poller_t *p, int fd, uint32_t events);
} weft__poller_ops_t;

#define WEFT__FD_CHUNK 256 /* fd states per chunk of the table */

typedef struct weft__fdstate weft__fdstate_t;
struct weft__fdstate {
    weft_waitq_t waiters;    /* each waiter's data: wanted events, then the events it got */
    uint32_t interest;       /* what the backend watches for this fd (under the lock) */
    _Atomic uint32_t closed; /* weft_fd_close dropped it: the hub's thread must reset it */
    int fd;
    uint32_t nwait;               /* io waits in progress on it (hub's thread) */
    bool used;                    /* counted in its chunk's `used` (hub's thread) */
    weft__fdstate_t *next_closed; /* the poller's list of closed states */
};

typedef struct weft__fdchunk {
    size_t used; /* states with an interest, a wait in progress or a close to reset */
    weft__fdstate_t s[WEFT__FD_CHUNK];
} weft__fdchunk_t;

typedef struct weft__fdindex {
    size_t n;                      /* chunks it can name */
    struct weft__fdindex *retired; /* the smaller one it replaced (freed with the poller) */
    _Atomic(weft__fdchunk_t *) chunk[];
} weft__fdindex_t;

struct weft__poller {
    const weft__poller_ops_t *ops;
    void *impl;
    int evfd; /* remote wakes */
    _Atomic(weft__fdindex_t *) index;
    _Atomic(weft__fdstate_t *) closed; /* states weft_fd_close dropped on other threads */
    size_t nwaiting;                   /* waiters parked on fds */
    /* How the backend reports, set by its init (false by default): */
    bool oneshot; /* interest is re-armed per report (io_uring's one-shot polls): keeping an
                   * interest nobody waits for costs a request per report, dropping it nothing */
    bool edge;    /* readiness is reported as it comes (io_uring's multishot polls): see top */
    bool peeking; /* the hub only looks (deadline 0) while coroutines are ready */
    bool dying;   /* its hub is being destroyed: off the list of pollers */
    weft__list_node_t all; /* on io.c's list of every poller of the process (its lock) */
};

/* Called by a backend's wait for each ready fd (revents: WEFT_READ, WEFT_WRITE, WEFT__IO_ERR). */
void weft__poller_ready(weft__poller_t *p, int fd, uint32_t revents);

/* Remaining time to a deadline as a timespec for a backend (NULL: forever; zero: poll). */
struct timespec;
struct timespec *weft__poller_timespec(int64_t deadline, struct timespec *ts);

/* weft__io_wait and weft__io_wait_nocancel (io_shared.h) are the io layer's fd wait, for the
 * layers above (the monkey patch, the process layer) as for io.c's own calls. */
/* weft__io_wait for a caller whose own non-blocking try on fd has just said EAGAIN (or, for
 * WEFT_WRITE after connect, EINPROGRESS; for an accept, a poll that found nothing), with
 * nothing run since: a backend that reports edges need not look at fd first. */
int weft__io_wait_after_eagain(int fd, int events, int64_t deadline);
/* Whether a wait of the calling coroutine (or thread with a hub) goes to a poller that reports
 * edges (then a wait that does not follow an EAGAIN costs the poller a look at the fd). */
bool weft__io_edge(void);

/* Tests: the io_uring backend's rings set up from now on use one-shot polls (enable 0) or ask
 * the kernel for multishot polls again (1). Returns whether multishot polls were in use. */
int weft__poller_uring_multishot(int enable);
/* The calling thread's poller stops watching fd and wakes its waiters with WEFT_EBADF (for an
 * fd private to the caller; others are closed with weft__io_close). */
void weft__io_forget(int fd);

/* weft_fd_connect by deadline (net.c tries several addresses within one deadline). */
int weft__io_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline);

/* Closes fd by op(fd, arg) (close(2), or a dup2/dup3 onto fd), after ending every wait on it:
 * the waiters of every hub and of every thread without a hub wake with WEFT_EBADF, and the
 * hubs stop watching it before op runs, so nobody sees the events of the fd that takes the
 * number next. A wait that starts on fd while op runs waits for op to finish, then starts
 * again (on whatever fd then has the number). Returns op's result, with op's errno. From any
 * thread or coroutine. */
int weft__io_close(int fd, int (*op)(int fd, void *arg), void *arg);

/* Closes the calling thread's kick, the eventfd its thread-side fd waits keep from its first
 * wait to its exit (io.c), if it has one; its next such wait makes another. For the tests'
 * leak guard, which counts the fds of the process around a case. */
void weft__io_kick_release(void);

extern const weft__poller_ops_t weft__poller_select, weft__poller_poll, weft__poller_epoll,
    weft__poller_uring;

#endif /* WEFT_IO_INTERNAL_H */
