/*
 * wait_internal.h — THE waiting core. Every blocking call in weft goes through here; no
 * primitive sleeps on its own (musl's __timedwait idea, with libdill's deadlines).
 *
 * The pieces:
 *   waiter   lives on the waiting caller's stack; joins the object's wait queue (intrusive,
 *            so nothing allocates on a wait path), then parks. Its `state` word says how the
 *            park ended, and is also the futex a parked thread sleeps on.
 *   waitq    the object's FIFO of waiters (weft_waitq_t) and the small mutex guarding it.
 *   waitctx  who is waiting: one per OS thread, and (later) one per coroutine. It says how to
 *            park (parker NULL: futex; otherwise the coroutine layer's park/unpark) and
 *            carries the cancel request.
 *
 * The protocol (and its invariant: a waiter taken off a queue is always woken):
 *   waiter:  lock q; check the object; if it must wait: weft__waiter_init, push; unlock q;
 *            r = weft__waiter_park(q, &w, deadline)   (weft__wait_until does these steps)
 *   waker:   lock q; w = weft__waitq_pop(q) (and hand w whatever it waited for, in w->data or
 *            in the object); unlock q; weft__waiter_wake(w)
 *   A park that ends by deadline or cancellation re-locks q: if w is still queued it removes
 *   itself and returns WEFT_ETIMEDOUT / WEFT_ECANCELED; if a waker already took it, the wake
 *   is on its way and park waits for it and returns 0: the waiter then owns what the waker
 *   handed over, so nothing given is ever lost.
 *
 * States of waiter.state: WAITING (queued, running or spinning), SLEEPING (a thread about to
 * sleep or asleep in futex_wait: a waker must futex_wake), WAKING (a waker is in that
 * futex_wake: the waiter must not return, and free the word, before it is done), then one
 * final state: WOKEN (set only by the waker that dequeued it), TIMEDOUT or CANCELED (set by
 * the waiter itself or a canceler; a later WOKEN overrides them).
 *
 * Where coroutines plug in: weft__waitctx_current() returns a thread-local pointer that the
 * coroutine layer repoints at the running coroutine's waitctx, whose parker switches to the
 * hub instead of sleeping. The primitives never see the difference.
 */
#ifndef WEFT_WAIT_INTERNAL_H
#define WEFT_WAIT_INTERNAL_H

#include "../core/core_internal.h"
#include "weft/wait.h"

enum {
    WEFT__W_WAITING = 0,
    WEFT__W_SLEEPING = 1,
    WEFT__W_WAKING = 2,
    WEFT__W_WOKEN = 3,
    WEFT__W_TIMEDOUT = 4,
    WEFT__W_CANCELED = 5,
    WEFT__W_DEADLK = 6, /* set by a hub that found all its coroutines stuck */
};

typedef struct weft__waiter weft__waiter_t;
typedef struct weft__waitctx weft__waitctx_t;

/* How a coroutine parks (installed by the coroutine layer; threads have parker NULL).
 * park:   called by the waiting coroutine; returns once w->state is final (>= WOKEN) or the
 *         deadline passed (then it sets TIMEDOUT itself, by CAS from WAITING). Returns the
 *         final state it saw.
 * unpark: called by a waker or canceler from any thread after it made w->state final; gets
 *         only `arg` (w may already be gone) and must make the coroutine runnable. */
typedef struct weft__parker {
    uint32_t (*park)(void *arg, weft__waiter_t *w, int64_t deadline);
    void (*unpark)(void *arg);
} weft__parker_t;

/* What a park waits on (waiter.on, waitctx.on), for the task dump, the deadlock report and
 * the trace. `obj` says which one: the object's address, or, for the fd and process kinds,
 * the number itself (intptr_t). weft__on_name gives each its words ("Lock", "Queue get",
 * "fd read"...). */
typedef enum weft__on {
    WEFT__ON_NONE = 0, /* not blocked */
    WEFT__ON_WAIT,     /* a wait the caller did not describe */
    WEFT__ON_LOCK,
    WEFT__ON_RLOCK,
    WEFT__ON_SEMAPHORE,
    WEFT__ON_EVENT,
    WEFT__ON_CONDITION,
    WEFT__ON_BARRIER,
    WEFT__ON_TIMER, /* a Timer's cancel waiting for its function */
    WEFT__ON_QUEUE_GET,
    WEFT__ON_QUEUE_PUT,
    WEFT__ON_QUEUE_JOIN,
    WEFT__ON_FUTURE,       /* obj: the weft_future_t */
    WEFT__ON_FUTURES,      /* several futures (weft_future_wait); obj: the first */
    WEFT__ON_EXECUTOR,     /* an executor's shutdown waiting for its tasks */
    WEFT__ON_THREAD_JOIN,  /* obj: the weft_thread_t */
    WEFT__ON_CO_JOIN,      /* obj: the weft_co_t */
    WEFT__ON_GROUP,        /* a group's join or a spawn waiting for a slot; obj: the group */
    WEFT__ON_SCOPE,        /* a scope's join; obj: the weft_scope_t */
    WEFT__ON_HUBS,         /* a hub set's start or stop */
    WEFT__ON_FD_READ,      /* obj: the fd */
    WEFT__ON_FD_WRITE,     /* obj: the fd */
    WEFT__ON_PROCESS_JOIN, /* obj: the pid */
    WEFT__ON_PIPE_SEND,    /* obj: the weft_conn_t */
    WEFT__ON_PIPE_RECV,    /* obj: the weft_conn_t */
    WEFT__ON_MPQUEUE_GET,
    WEFT__ON_MPQUEUE_PUT,
    WEFT__ON_SHARED, /* a process-shared object's word; obj: the object */
    WEFT__ON_SLEEP,
    WEFT__ON_RESOLVE, /* a host name lookup */
    WEFT__ON_COUNT
} weft__on_t;

/* The words for `on` ("Lock", "Queue get", ...); "?" for a value out of range. */
const char *weft__on_name(unsigned on);

/* A context's kind: an OS thread's own (weft__thread_ctx, also the root of a thread that runs
 * a hub), or a coroutine's. */
enum { WEFT__CTX_THREAD = 0, WEFT__CTX_COROUTINE = 1 };

struct weft__waitctx {
    const weft__parker_t *parker; /* NULL: an OS thread parking on its futex */
    void *park_arg;
    weft__mutex_t lock;      /* guards `current` against a concurrent cancel */
    weft__waiter_t *current; /* the waiter this context is parked on, if any */
    _Atomic uint32_t cancel; /* a cancel was requested: blocking calls fail */
    uint32_t cancelable;     /* depth of cancel scopes: while > 0 somebody may cancel it */
    int64_t scope;           /* deadline of the innermost timeout scope; 0: none */
    uint64_t scope_depth;    /* timeout scopes open (weft_timeout_begin/end) */
    /* What it is blocked on now (weft__blocked_begin/end), read by the dump, the deadlock
     * report and the trace from other threads (hence atomic, relaxed: a snapshot). */
    _Atomic uint32_t on;       /* weft__on_t; WEFT__ON_NONE: not blocked */
    _Atomic(const void *) obj; /* what on; see weft__on_t */
    _Atomic int64_t deadline;  /* the park's deadline, WEFT_NO_DEADLINE: none */
    _Atomic int64_t since;     /* when the park began (WEFT__OBSERVE_SINCE), else 0 */
    uint8_t kind;              /* WEFT__CTX_* */
    bool listed;               /* a thread's: on the registry of thread contexts */
    bool internal; /* a thread of weft's own (weft__ctx_list_internal), under the registry's lock */
    _Atomic int tid;                      /* a thread's: its kernel thread id, once listed */
    _Atomic(void *) who;                  /* a weft_thread_t's own (thread layer), else NULL */
    weft__waitctx_t *reg_prev, *reg_next; /* the registry (wait.c's lock) */
};

/* Marks ctx blocked on (on, obj) until `deadline` (weft__waiter_park does it for every park;
 * a blocking call that does not park through a waiter — a thread's fd wait, a shared word, a
 * nap — calls these itself). A thread's context joins the registry of thread contexts at its
 * first block. end clears it. Only ctx's own thread calls them. */
void weft__blocked_begin(weft__waitctx_t *ctx, unsigned on, const void *obj, int64_t deadline);
static inline void weft__blocked_end(weft__waitctx_t *ctx)
{
    atomic_store_explicit(&ctx->on, WEFT__ON_NONE, memory_order_relaxed);
}

/* The description of a wait made of other waits (a process join by naps or an fd, a Pipe's
 * message, a shared object's word): marks ctx only while nothing describes it yet, so the
 * outermost description stands for the parks inside. Returns whether it marked; pass that to
 * weft__blocked_leave. Only ctx's own thread calls them. */
static inline bool weft__blocked_enter(weft__waitctx_t *ctx, unsigned on, const void *obj,
                                       int64_t deadline)
{
    if (atomic_load_explicit(&ctx->on, memory_order_relaxed) != 0) return false;
    weft__blocked_begin(ctx, on, obj, deadline);
    return true;
}
static inline void weft__blocked_leave(weft__waitctx_t *ctx, bool marked)
{
    if (marked) weft__blocked_end(ctx);
}

/* Puts the calling thread's own context on the registry now (a weft thread at its start, the
 * dump for its caller): 0 or WEFT_ENOMEM (the registry's exit key could not be made). */
int weft__ctx_list_self(void);

/* Lists the calling thread as one of weft's own (a pool's manager, a watchdog, the dump's
 * thread): the dump shows it apart from the program's tasks and deadlock reports leave it out.
 * At the thread's start, before it blocks. 0 or WEFT_ENOMEM (then it is not listed at all). */
int weft__ctx_list_internal(void);

/* Calls fn on every listed thread context (the threads that ever blocked in weft, or listed
 * themselves, and have not exited) under the registry's lock: fn must not block, nor end a
 * thread. A thread leaves the registry at its exit (a key destructor). */
void weft__ctx_visit(void (*fn)(weft__waitctx_t *ctx, void *arg), void *arg);

struct weft__waiter {
    weft__list_node_t node; /* its place on its queue */
    weft__waiter_t *next;   /* a private wake list, once taken off its queue (weft__waitq_take) */
    _Atomic uint32_t state;
    bool queued;          /* on its queue (guarded by the queue's lock) */
    bool nocancel;        /* a park cancellation must not cut short (re-taking a lock) */
    bool nospin;          /* a thread sleeps at once (its owner knows a wake is far off) */
    uint8_t on;           /* what it waits on (weft__on_t), set by its primitive */
    weft__waitctx_t *ctx; /* who waits */
    uintptr_t data;       /* what the waker hands over, defined by each primitive */
    const void *obj;      /* which one (see weft__on_t) */
    uint64_t flow;        /* tracing: the waker's flow id (written before its WOKEN), 0: none */
    /* tracing: the canceler's flow id, 0: none; written by weft__waitctx_cancel before its
     * CANCELED (under the context's lock, while the park is unfinished), read only after a
     * park ended CANCELED: no initialisation on the waiting path */
    uint64_t cancel_flow;
};

/* The waiting context of the caller: the running coroutine's, else the thread's own. Inline:
 * RLock asks for it on every acquire and release. */
extern WEFT__TLS weft__waitctx_t weft__thread_ctx;
extern WEFT__TLS weft__waitctx_t *weft__current_ctx;

static inline weft__waitctx_t *weft__waitctx_current(void)
{
    weft__waitctx_t *ctx = weft__current_ctx;
    if (weft__likely(!ctx)) return &weft__thread_ctx; /* a thread: no taken branch */
    return ctx;
}

/* Repoints the calling thread's current context (the coroutine layer's switch hook); NULL
 * restores the thread's own. */
static inline void weft__waitctx_switch(weft__waitctx_t *ctx)
{
    weft__current_ctx = ctx;
}

/* Requests cancellation of ctx: its current park ends with WEFT_ECANCELED, and so does every
 * later blocking call until weft__waitctx_uncancel. Safe from any thread while ctx lives. */
void weft__waitctx_cancel(weft__waitctx_t *ctx);
void weft__waitctx_uncancel(weft__waitctx_t *ctx);

static inline bool weft__waitctx_canceled(const weft__waitctx_t *ctx)
{
    return atomic_load_explicit(&ctx->cancel, memory_order_acquire) != 0;
}

/* ---- cancellation scopes -----------------------------------------------------------------
 * A cancel scope says "somebody may cancel this context while it is open" (an executor opens
 * one around each task it runs: weft_future_cancel cancels the task's context). The waiting
 * core's own parks are woken by a cancel wherever they are; a wait it cannot wake (a thread in
 * futex(2) on a process-shared word, in poll(2) on an fd) sleeps in slices of
 * WEFT__CANCEL_SLICE_NS inside a scope, to see a cancel within one, and in one sleep outside.
 * Entered and left by the context's own thread; scopes nest. */
#define WEFT__CANCEL_SLICE_NS (50 * 1000000LL)

static inline void weft__cancel_scope_enter(weft__waitctx_t *ctx)
{
    ctx->cancelable++;
}

static inline void weft__cancel_scope_leave(weft__waitctx_t *ctx)
{
    ctx->cancelable--;
}

/* Closes every scope of ctx (a forked child, which runs none of its parent's tasks). */
static inline void weft__cancel_scope_reset(weft__waitctx_t *ctx)
{
    ctx->cancelable = 0;
}

/* The end of the next sleep of a wait the core cannot wake, bounded by `deadline` (already
 * clamped to the timeout scope): a slice's end inside a cancel scope (unless nocancel). */
static inline int64_t weft__cancel_slice_end(const weft__waitctx_t *ctx, int64_t deadline,
                                             bool nocancel)
{
    if (nocancel || !ctx->cancelable) return deadline;
    int64_t end = weft_time_monotonic_ns() + WEFT__CANCEL_SLICE_NS;
    return end < deadline ? end : deadline;
}

/* The earlier of a wait's deadline and the timeout scope of ctx. */
static inline int64_t weft__scoped_deadline(const weft__waitctx_t *ctx, int64_t deadline)
{
    return ctx->scope && ctx->scope < deadline ? ctx->scope : deadline;
}

/* ---- queues ------------------------------------------------------------------------------ */

static inline weft__mutex_t *weft__waitq_mutex(weft_waitq_t *q)
{
    return (weft__mutex_t *)(void *)&q->lock_;
}

static inline void weft__waitq_lock(weft_waitq_t *q)
{
    weft__mutex_lock(weft__waitq_mutex(q));
}
static inline void weft__waitq_unlock(weft_waitq_t *q)
{
    weft__mutex_unlock(weft__waitq_mutex(q));
}
static inline bool weft__waitq_empty(const weft_waitq_t *q)
{
    return weft__list_empty(&q->waiters_);
}

/* The waiter of a list node (NULL for none). */
static inline weft__waiter_t *weft__waiter_of(const weft__list_node_t *n)
{
    return n ? weft__container_of(n, weft__waiter_t, node) : NULL;
}

/* Walking a queue in order, under its lock: the first waiter, the one after w (NULL at the
 * end). Read the next one before taking w off. */
static inline weft__waiter_t *weft__waitq_first(const weft_waitq_t *q)
{
    return weft__waiter_of(q->waiters_.head);
}
static inline weft__waiter_t *weft__waitq_next(const weft__waiter_t *w)
{
    return weft__waiter_of(w->node.next);
}
/* The waiter queued last (NULL when none). */
static inline weft__waiter_t *weft__waitq_last(const weft_waitq_t *q)
{
    return weft__waiter_of(q->waiters_.tail);
}

/* Whether anybody waits on q, read under its lock (the destroy check of every object). */
static inline bool weft__waitq_busy(weft_waitq_t *q)
{
    weft__waitq_lock(q);
    bool busy = !weft__waitq_empty(q);
    weft__waitq_unlock(q);
    return busy;
}

/* List operations; the caller holds the queue's lock. A waiter popped or removed has `next`
 * NULL: it can start a private wake list (weft__waiters_wake). */
void weft__waitq_push(weft_waitq_t *q, weft__waiter_t *w);
weft__waiter_t *weft__waitq_pop(weft_waitq_t *q);
void weft__waitq_remove(weft_waitq_t *q, weft__waiter_t *w);

/* ---- waiting ----------------------------------------------------------------------------- */

/* Prepares a waiter for the calling thread or coroutine. */
static inline void weft__waiter_init(weft__waiter_t *w)
{
    w->node.next = w->node.prev = NULL;
    w->next = NULL;
    atomic_store_explicit(&w->state, WEFT__W_WAITING, memory_order_relaxed);
    w->queued = false;
    w->nocancel = false;
    w->nospin = false;
    w->on = WEFT__ON_WAIT;
    w->ctx = weft__waitctx_current();
    w->data = 0;
    w->obj = NULL;
    w->flow = 0;
}

/* Says what w waits on (after weft__waiter_init): the dump's and the report's words. */
static inline void weft__waiter_on(weft__waiter_t *w, weft__on_t on, const void *obj)
{
    w->on = (uint8_t)on;
    w->obj = obj;
}

/* Parks a waiter that was pushed on q (q unlocked). Returns 0 when a waker took it (it owns
 * what was handed over), WEFT_ETIMEDOUT when the deadline (or the context's timeout scope)
 * passed, WEFT_ECANCELED when its context was canceled, WEFT_EDEADLK when its hub found that
 * nothing can wake it; in those cases w is no longer on q. */
int weft__waiter_park(weft_waitq_t *q, weft__waiter_t *w, int64_t deadline);

/* The same for an object that guards several wait queues with one lock of its own (a queue:
 * getters, putters, joiners): `lock` is taken instead of q's to leave q on timeout or cancel.
 * Wakers of such a q hold `lock` while they pop. */
int weft__waiter_park_in(weft__mutex_t *lock, weft_waitq_t *q, weft__waiter_t *w, int64_t deadline);

/* What a weft__wait_until check answers when the caller must wait. */
enum { WEFT__WAIT_PARK = 1 };

/* weft__wait_until's second half, once check said WEFT__WAIT_PARK: `lock` is held, and
 * dropped here. */
int weft__wait_queued(weft__mutex_t *lock, weft_waitq_t *q, weft__waiter_t *w, int64_t deadline);

/* The one "wait until the object is ready" of the waiting core, the protocol above in full:
 * takes `lock` (NULL: q's own), asks check(arg) under it, and
 *   - returns what check answered, unlocking first, unless that is WEFT__WAIT_PARK (so 0 for
 *     ready, or a WEFT_E* code of the object's: closed, shut down...; check may take what it
 *     found, a slot, under the lock);
 *   - returns WEFT_ETIMEDOUT when it must wait but the deadline has passed (a poll);
 *   - else queues w on q, unlocks, and parks it: 0 once a waker took it (whatever the waker
 *     handed over is in w->data), or weft__waiter_park's codes.
 * A wake is the answer: the caller that must check again after one (a wake that says only
 * "something changed") calls again. w is the caller's, prepared with weft__waiter_init (and
 * its options and data set) before the call; NULL: a plain waiter of the call's own.
 * Inline, so that the check inlines and a wait that need not park costs what the lock does. */
static inline int weft__wait_until(weft__mutex_t *lock, weft_waitq_t *q, weft__waiter_t *w,
                                   int (*check)(void *arg), void *arg, int64_t deadline)
{
    if (!lock) lock = weft__waitq_mutex(q);
    weft__mutex_lock(lock);
    int rc = check(arg);
    if (rc == WEFT__WAIT_PARK) return weft__wait_queued(lock, q, w, deadline);
    weft__mutex_unlock(lock);
    return rc;
}

/* Wakes a waiter the caller has popped from its queue (q locked or not). */
void weft__waiter_wake(weft__waiter_t *w);

/* Pops up to n waiters (n < 0: all) into a private list linked through `next`, handing each
 * `data`; the caller holds q's lock. Returns the list; wake it with weft__waiters_wake after
 * dropping the lock (and after adjusting each one's data, if it needs to). */
weft__waiter_t *weft__waitq_take(weft_waitq_t *q, int n, uintptr_t data);
/* Wakes every waiter of a list from weft__waitq_take; returns how many. */
int weft__waiters_wake(weft__waiter_t *list);

/* lock q; take up to n (n < 0: all) handing each `data`; unlock; wake them. Returns how many. */
int weft__waitq_wake(weft_waitq_t *q, int n, uintptr_t data);

/* Whether the caller parks as a coroutine (a coroutine, or a thread's root context once it
 * has coroutines): its thread's hub runs others meanwhile. Asked by the waiting core and the
 * coroutine layer only (io asks the hub which one parks the caller: weft__hub_parking); the
 * others ask the questions below, whose answers the core derives from it. */
static inline bool weft__parks_coroutine(void)
{
    return weft__waitctx_current()->parker != NULL;
}

/* Whether the caller may spin before it parks (for weft__spin_ns): a thread may; a coroutine
 * must not, its thread's other coroutines would wait meanwhile. */
static inline bool weft__may_spin(void)
{
    return !weft__parks_coroutine();
}

/* Whether the caller may block its thread in a system call that nothing but the kernel ends
 * (a recv with no timeout): a thread (a coroutine would block its thread's others) that
 * nobody can cancel meanwhile (outside every cancel scope, or nocancel). */
static inline bool weft__may_block(bool nocancel)
{
    const weft__waitctx_t *ctx = weft__waitctx_current();
    return !ctx->parker && (nocancel || !ctx->cancelable);
}

/* Parks the caller (thread or coroutine) until the deadline, as a sleep (a thread sleeps at
 * once, without spinning): 0 when it passed, WEFT_ETIMEDOUT when the caller's timeout scope
 * ended first, WEFT_ECANCELED when the caller's context was canceled (unless nocancel),
 * WEFT_EDEADLK when its hub found nothing else can run (not for a timed nap). */
int weft__nap(int64_t deadline, bool nocancel);

/* ---- waiting on a process-shared word ------------------------------------------------------
 * An object in shared memory holds no waiter of the waiting core (those live on one process's
 * stacks): its waiters wait on a word of the object, and its changers wake the word with a
 * process-shared futex_wake.
 *
 * weft__shared_park waits while *word reads `seen`, until the deadline (or the context's
 * timeout scope). A thread sleeps on the word with a process-shared FUTEX_WAIT (in cancel
 * slices inside a cancel scope, unless nocancel). A coroutine cannot (the futex would block
 * its thread, and every coroutine on it): it looks at the word between naps (weft__nap_until;
 * a change is seen up to 1 ms late). Returns 0 when the word changed, the sleep was woken or
 * ended early (a slice, a signal): the caller looks at its object again; WEFT_ETIMEDOUT;
 * WEFT_ECANCELED (unless nocancel). It returns an error only when it consumed no futex wake
 * (a waker that woke "one" reached somebody who looks again). */
int weft__shared_park(_Atomic uint32_t *word, uint32_t seen, int64_t deadline, bool nocancel);

/* The one backoff loop, for what nobody can wake (a word in shared memory looked at by a
 * coroutine, a child without a pidfd): looks at done(arg), and until it holds naps 20 us,
 * doubling to 1 ms, between looks. 0 once done(arg); WEFT_ETIMEDOUT when the deadline (or the
 * context's timeout scope) passed first; WEFT_ECANCELED when the caller's context was canceled
 * (unless nocancel). A thread naps on its futex, a coroutine through its hub. */
int weft__nap_until(bool (*done)(void *arg), void *arg, int64_t deadline, bool nocancel);

/* The thread parker's spin budget before it sleeps, in nanoseconds (0 disables). Waking a
 * sleeping thread costs tens of microseconds on a virtual machine; a waker that arrives while
 * we still spin costs nothing. Tuned by WEFT_SPIN_NS in the environment. */
int64_t weft__spin_ns(void);

/* A thread whose last park timed out sleeps without spinning until a park is ended by a waker
 * (wait.c, "the adaptive spin"; the rules that also stopped it on spins that missed their wake
 * are compiled out: SPIN_COUNT_MISSES). This is that history of the calling thread (0: spins,
 * 2: stopped), for tests. */
int weft__spin_misses(void);

/* How long after spinning stopped a thread tries again (wait.c); 0: 10 ms. A seam for tests
 * (set on the thread under test before it parks, restored after). */
extern int64_t weft__spin_retry_ns;

/* The one bounded spin: pauses until done(arg), for `budget` nanoseconds but not past the
 * deadline. True as soon as done(arg) holds, false once the budget is spent (at once when it is
 * 0 or less). The clock is read every 64 pauses only: a pause is tens of cycles, a clock read
 * about as much again. Inline, so that a `done` known at the call inlines into the loop. */
static inline bool weft__spin_for(bool (*done)(const void *arg), const void *arg, int64_t deadline,
                                  int64_t budget)
{
    if (budget <= 0) return false;
    int64_t until = weft_time_monotonic_ns() + budget;
    if (until > deadline) until = deadline;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (done(arg)) return true;
            weft__cpu_relax();
        }
        if (weft_time_monotonic_ns() >= until) return false;
    }
}

/* weft__spin_for with the whole spin budget (weft__spin_ns: none on one CPU, or with
 * WEFT_SPIN_NS=0). */
static inline bool weft__spin(bool (*done)(const void *arg), const void *arg, int64_t deadline)
{
    return weft__spin_for(done, arg, deadline, weft__spin_ns());
}

#endif /* WEFT_WAIT_INTERNAL_H */
