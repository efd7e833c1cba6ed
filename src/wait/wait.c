/*
 * wait.c — the waiting core: wait queues, parking a thread on its waiter's futex word, waking,
 * deadlines and cancellation. The protocol and the waiter states are described in
 * wait_internal.h; this file is their only implementation.
 */
#include "wait_internal.h"

#include <sched.h>
#include <stdlib.h>

WEFT__TLS weft__waitctx_t weft__thread_ctx;
WEFT__TLS weft__waitctx_t *weft__current_ctx;

/* ---- queues ------------------------------------------------------------------------------ */

void weft__waitq_push(weft_waitq_t *q, weft__waiter_t *w)
{
    weft__list_push_back(&q->waiters_, &w->node);
    w->queued = true;
}

/* A waiter taken off its queue starts a private wake list of its own (next NULL). */
void weft__waitq_remove(weft_waitq_t *q, weft__waiter_t *w)
{
    weft__list_remove(&q->waiters_, &w->node);
    w->next = NULL;
    w->queued = false;
}

weft__waiter_t *weft__waitq_pop(weft_waitq_t *q)
{
    weft__waiter_t *w = weft__waitq_first(q);
    if (w) weft__waitq_remove(q, w);
    return w;
}

/* ---- waking ------------------------------------------------------------------------------ */

/* Makes w's state final and gets its owner running. Everything needed afterwards is read
 * before: once the state is final the waiter may return and its stack be reused. A sleeping
 * thread is woken through WAKING, so the futex word outlives the futex_wake on it (a wake on
 * a reused stack word would be harmless to the kernel, but it is a read of dead memory). */
static void finish(weft__waiter_t *w, uint32_t final)
{
    const weft__parker_t *parker = w->ctx->parker;
    void *arg = w->ctx->park_arg;
    if (parker) {
        /* WAKING until unpark returned: the coroutine cannot leave its park (and end, and be
         * freed) while unpark still touches it. */
        atomic_store_explicit(&w->state, WEFT__W_WAKING, memory_order_release);
        parker->unpark(arg);
        atomic_store_explicit(&w->state, final, memory_order_release);
        return;
    }
    uint32_t s = atomic_load_explicit(&w->state, memory_order_relaxed);
    for (;;) {
        if (s == WEFT__W_SLEEPING) {
            if (atomic_compare_exchange_weak_explicit(&w->state, &s, WEFT__W_WAKING,
                                                      memory_order_acq_rel, memory_order_relaxed)) {
                weft__futex_wake(&w->state, 1, false);
                atomic_store_explicit(&w->state, final, memory_order_release);
                return;
            }
        } else if (atomic_compare_exchange_weak_explicit(&w->state, &s, final, memory_order_acq_rel,
                                                         memory_order_relaxed)) {
            return;
        }
    }
}

/* Tracing: the waker's end of the arrow to w (its flow id goes to w before the WOKEN). */
__attribute__((noinline, cold)) static void trace_wake(weft__waiter_t *w)
{
    w->flow = weft__trace_id();
    weft__trace_ev_t ev = {.type = WEFT__TR_WAKE,
                           .on = w->on,
                           .t0 = weft_time_monotonic_ns(),
                           .flow = w->flow,
                           .obj = w->obj};
    weft__trace_emit(&ev);
}

void weft__waiter_wake(weft__waiter_t *w)
{
    if (weft__observe(WEFT__OBSERVE_TRACE)) trace_wake(w);
    finish(w, WEFT__W_WOKEN);
}

weft__waiter_t *weft__waitq_take(weft_waitq_t *q, int n, uintptr_t data)
{
    weft__waiter_t *first = NULL, *last = NULL;
    for (int count = 0; n < 0 || count < n; count++) {
        weft__waiter_t *w = weft__waitq_pop(q);
        if (!w) break;
        w->data = data;
        if (last)
            last->next = w;
        else
            first = w;
        last = w;
    }
    return first;
}

int weft__waiters_wake(weft__waiter_t *list)
{
    int count = 0;
    while (list) {
        weft__waiter_t *next = list->next; /* read before the wake lets it go */
        weft__waiter_wake(list);
        list = next;
        count++;
    }
    return count;
}

int weft__waitq_wake(weft_waitq_t *q, int n, uintptr_t data)
{
    weft__waitq_lock(q);
    weft__waiter_t *list = weft__waitq_take(q, n, data);
    weft__waitq_unlock(q);
    return weft__waiters_wake(list);
}

/* ---- cancellation ------------------------------------------------------------------------ */

void weft__waitctx_cancel(weft__waitctx_t *ctx)
{
    /* Tracing: the canceler's wake, as weft__waiter_wake records a waker's (emitted once the
     * context's lock is let go: the sink may allocate). */
    weft__trace_ev_t ev = {.type = WEFT__TR_WAKE};
    weft__mutex_lock(&ctx->lock);
    atomic_store_explicit(&ctx->cancel, 1, memory_order_release);
    weft__waiter_t *w = ctx->current;
    if (w) {
        /* Only an unfinished park is interrupted; a waiter being woken (WAKING) or WOKEN keeps
         * what it was given. */
        uint32_t s = atomic_load_explicit(&w->state, memory_order_acquire);
        while (s < WEFT__W_WAKING) {
            w->cancel_flow = weft__observe(WEFT__OBSERVE_TRACE) ? weft__trace_id() : 0;
            if (w->cancel_flow) ev.t0 = weft_time_monotonic_ns();
            if (atomic_compare_exchange_weak_explicit(&w->state, &s, WEFT__W_CANCELED,
                                                      memory_order_acq_rel, memory_order_acquire)) {
                ev.flow = w->cancel_flow;
                ev.on = w->on;
                ev.obj = w->obj;
                if (ctx->parker)
                    ctx->parker->unpark(ctx->park_arg);
                else if (s == WEFT__W_SLEEPING)
                    weft__futex_wake(&w->state, 1, false);
                break;
            }
        }
    }
    weft__mutex_unlock(&ctx->lock);
    if (ev.flow) weft__trace_emit(&ev);
}

bool weft_cancel_requested(void)
{
    return weft__waitctx_canceled(weft__waitctx_current());
}

void weft__waitctx_uncancel(weft__waitctx_t *ctx)
{
    atomic_store_explicit(&ctx->cancel, 0, memory_order_release);
}

/* In a forked child that runs one function alone (weft__fork_fresh; the coroutine layer's
 * hook ran first, so this is the thread's own context): the forking thread's cancel request
 * and cancel scopes were its own, not the function's. Registered at load: it has nothing to
 * set up. */
static void fresh_child(void)
{
    weft__waitctx_t *ctx = weft__waitctx_current();
    weft__waitctx_uncancel(ctx);
    weft__cancel_scope_reset(ctx);
}

static const weft__fork_hooks_t fork_hooks = {.rank = WEFT__LAYER_WAIT, .fresh = fresh_child};

__attribute__((constructor)) static void register_fork_hooks(void)
{
    weft__fork_register(&fork_hooks); /* only a fresh hook: cannot fail */
}

/* ---- parking a thread -------------------------------------------------------------------- */

int64_t weft__spin_ns(void)
{
    /* Read once. Relaxed is enough: the value is self-contained and idempotent to compute. */
    static _Atomic int64_t spin = -1;
    int64_t ns = atomic_load_explicit(&spin, memory_order_relaxed);
    if (ns < 0) {
        const char *env = weft__getenv("WEFT_SPIN_NS");
        ns = env ? atoll(env) : 20000;
        if (ns < 0) ns = 0;
        if (weft__ncpu() < 2) ns = 0;
        atomic_store_explicit(&spin, ns, memory_order_relaxed);
    }
    return ns;
}

/* A thread spins (weft__spin) until its waiter's state is final. */
static bool state_final(const void *w)
{
    return atomic_load_explicit(&((const weft__waiter_t *)w)->state, memory_order_acquire) >=
           WEFT__W_WOKEN;
}

/* A waker is between its futex_wake and the final store: a few instructions, or the return
 * from that system call, unless it was preempted there, most often by the very thread it woke
 * (placed on the waker's CPU): then only a yield lets it finish. So a short spin (64 pauses,
 * one or two microseconds: a system call's return on another CPU), then yields. */
static uint32_t await_final(weft__waiter_t *w)
{
    uint32_t s;
    for (int i = 0; (s = atomic_load_explicit(&w->state, memory_order_acquire)) < WEFT__W_WOKEN;
         i++) {
        if (i < 64)
            weft__cpu_relax();
        else
            sched_yield();
    }
    return s;
}

/* ---- the adaptive spin ------------------------------------------------------------------------
 * A thread spins before it sleeps because a waker that comes meanwhile costs nothing, while a
 * sleep and its futex_wake cost tens of microseconds on a virtual machine. The spin pays only
 * while wakers come within it: with more runnable threads than CPUs the waker is often queued
 * behind the spinner (even for the spinner's own CPU), and every spin then burns its whole
 * budget and delays the wake it waits for; a timed wait that nobody ends burns it for nothing.
 * Reading how many threads are runnable is far too costly per wait; the cheap signal is the
 * thread's own history: `misses` counts its last spins in a row that ended without a wake.
 *   misses 0        the whole budget (weft__spin_ns)
 *   misses 1        an eighth of it
 *   misses 2        no spin, except every SPIN_PROBE_EVERY-th park, which spins an eighth
 * A park that times out (nobody came at all: an idle timed wait) sets 2 at once, so the next
 * idle wait sleeps without spinning (probing every eighth park), and a park that a waker ends
 * sets 0 again. Counting spins that missed their wake (1, then 2, and a retry by time
 * SPIN_RETRY_NS after a stop, with SPIN_GRACE_PARKS uncounted spins) is compiled out with
 * SPIN_COUNT_MISSES 0: it served the oversubscribed machine but stopped token-passing pairs
 * that spinning serves (see below). Per thread, in initial-exec TLS: a thread parks one waiter
 * at a time, and nobody else reads it. Naps (nospin) leave it alone.
 * Coroutines never spin (they park through their hub). */
enum { SPIN_MISS_MAX = 2, SPIN_PROBE_EVERY = 8, SPIN_SHORT_SHIFT = 3, SPIN_GRACE_PARKS = 16 };
/* Whether a spin that saw no wake counts as a miss. Off: at load 5-8 the miss rules stopped the
 * spinning of a token-passing pair that a spin would have served (event ping-pong 0.55x condvar
 * where main's always-spin gave 4.38x in the same minute), and the idle-machine ping-pong must
 * keep its >= 100x. Only a park that timed out stops the spin now, until the next woken park. */
#define SPIN_COUNT_MISSES 0
#define SPIN_RETRY_NS     (10 * 1000000LL)

static WEFT__TLS struct spin_history {
    uint8_t misses;     /* last spins in a row that saw no wake, up to SPIN_MISS_MAX */
    uint8_t skipped;    /* parks without a spin since the last probe */
    uint8_t grace;      /* spins left that miss without counting, after a retry */
    bool idle;          /* its last park timed out: no retry by time (an idle waiter) */
    int64_t stopped_at; /* when misses last reached SPIN_MISS_MAX */
} spin_history;

int64_t weft__spin_retry_ns;

/* The budget of the calling thread's next spin, in ns (0: sleep at once). */
static int64_t spin_budget(void)
{
    int64_t full = weft__spin_ns();
    struct spin_history *h = &spin_history;
    if (full == 0 || h->misses == 0 || h->grace) return full;
    if (h->misses < SPIN_MISS_MAX) return full >> SPIN_SHORT_SHIFT;
    int64_t retry = weft__spin_retry_ns ? weft__spin_retry_ns : SPIN_RETRY_NS;
    if (!h->idle && weft_time_monotonic_ns() - h->stopped_at >= retry) {
        h->misses = 0;
        h->grace = SPIN_GRACE_PARKS;
        return full;
    }
    if (++h->skipped < SPIN_PROBE_EVERY) return 0;
    h->skipped = 0;
    return full >> SPIN_SHORT_SHIFT;
}

static void spin_stop(struct spin_history *h)
{
    h->misses = SPIN_MISS_MAX;
    h->skipped = 0;
    h->grace = 0;
    h->stopped_at = weft_time_monotonic_ns();
}

/* Records how a spin of the calling thread ended: woken within it (the whole budget again), or
 * not (misses + 1, unless it is one of a retry's grace spins). */
static void spin_record(bool woken)
{
    struct spin_history *h = &spin_history;
    if (woken) {
        h->misses = 0;
        h->grace = 0;
    } else if (h->grace) {
        h->grace--;
    } else if (SPIN_COUNT_MISSES && h->misses < SPIN_MISS_MAX && ++h->misses == SPIN_MISS_MAX) {
        spin_stop(h);
    }
}

/* The park timed out: nobody came at all. Already stopped, the probe count goes on and the
 * retry waits for 10 ms without a timeout (an idle waiter keeps sleeping without spinning). */
static void spin_record_timeout(void)
{
    struct spin_history *h = &spin_history;
    h->idle = true;
    if (h->misses < SPIN_MISS_MAX) {
        spin_stop(h);
    } else {
        h->grace = 0;
        h->stopped_at = weft_time_monotonic_ns();
    }
}

int weft__spin_misses(void)
{
    return spin_history.misses;
}

static uint32_t thread_park(weft__waiter_t *w, int64_t deadline)
{
    bool learn = !w->nospin && weft__spin_ns() > 0; /* naps and WEFT_SPIN_NS=0 leave it alone */
    if (learn) {
        int64_t budget = spin_budget();
        if (budget > 0) spin_record(weft__spin_for(state_final, w, deadline, budget));
    }
    uint32_t s = atomic_load_explicit(&w->state, memory_order_acquire);
    while (s < WEFT__W_WOKEN) {
        if (s == WEFT__W_WAKING) return await_final(w);
        if (s == WEFT__W_WAITING &&
            !atomic_compare_exchange_strong_explicit(&w->state, &s, WEFT__W_SLEEPING,
                                                     memory_order_acq_rel, memory_order_acquire))
            continue; /* s now holds the new state */
        int r = weft__futex_wait(&w->state, WEFT__W_SLEEPING, deadline, false);
        s = atomic_load_explicit(&w->state, memory_order_acquire);
        if (r == WEFT_ETIMEDOUT && s == WEFT__W_SLEEPING &&
            atomic_compare_exchange_strong_explicit(&w->state, &s, WEFT__W_TIMEDOUT,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            if (learn) spin_record_timeout();
            return WEFT__W_TIMEDOUT;
        }
    }
    if (learn) { /* a wake came: not an idle waiter; spin again next time */
        spin_history.idle = false;
        spin_history.misses = 0;
    }
    return s;
}

static uint32_t park(weft__waitctx_t *ctx, weft__waiter_t *w, int64_t deadline)
{
    if (ctx->parker) return ctx->parker->park(ctx->park_arg, w, deadline);
    return thread_park(w, deadline);
}

/* Registers w as ctx's current park so a canceler can interrupt it; false if a cancel is
 * already pending (then the park must not start). */
static bool enter(weft__waitctx_t *ctx, weft__waiter_t *w)
{
    if (w->nocancel) return true;
    weft__mutex_lock(&ctx->lock);
    bool ok = !weft__waitctx_canceled(ctx);
    if (ok) ctx->current = w;
    weft__mutex_unlock(&ctx->lock);
    return ok;
}

static void leave(weft__waitctx_t *ctx, weft__waiter_t *w)
{
    if (w->nocancel) return;
    weft__mutex_lock(&ctx->lock);
    ctx->current = NULL;
    weft__mutex_unlock(&ctx->lock);
}

int weft__waiter_park(weft_waitq_t *q, weft__waiter_t *w, int64_t deadline)
{
    return weft__waiter_park_in(weft__waitq_mutex(q), q, w, deadline);
}

/* Tracing: ctx's park on w from t0 until now, ended in state s. */
__attribute__((noinline, cold)) static void trace_park(weft__waitctx_t *ctx, weft__waiter_t *w,
                                                       int64_t t0, uint32_t s)
{
    weft__trace_ev_t ev = {.type = WEFT__TR_PARK,
                           .kind = ctx->kind,
                           .on = w->on,
                           .t0 = t0,
                           .t1 = weft_time_monotonic_ns(),
                           .id = (uintptr_t)ctx,
                           .obj = w->obj,
                           .flow = s == WEFT__W_WOKEN      ? w->flow
                                   : s == WEFT__W_CANCELED ? w->cancel_flow
                                                           : 0,
                           .arg = s == WEFT__W_WOKEN      ? 0
                                  : s == WEFT__W_CANCELED ? WEFT_ECANCELED
                                  : s == WEFT__W_DEADLK   ? WEFT_EDEADLK
                                                          : WEFT_ETIMEDOUT};
    weft__trace_emit(&ev);
}

int weft__waiter_park_in(weft__mutex_t *lock, weft_waitq_t *q, weft__waiter_t *w, int64_t deadline)
{
    weft__waitctx_t *ctx = w->ctx;
    if (ctx->scope && ctx->scope < deadline) deadline = ctx->scope;
    uint32_t s;
    if (enter(ctx, w)) {
        /* A park inside a described wait (a nap of a shared-word wait, the fd wait of a
         * process join) keeps the outer description (weft__blocked_enter). */
        bool mark = weft__blocked_enter(ctx, w->on, w->obj, deadline);
        int64_t t0 = weft__observe(WEFT__OBSERVE_TRACE) ? weft_time_monotonic_ns() : 0;
        s = park(ctx, w, deadline);
        /* A park that began before a trace did is recorded from the trace's start (t0 0: the
         * sink clips it), so that the wake arrow a waker recorded into the trace arrives. */
        if (t0 || weft__observe(WEFT__OBSERVE_TRACE)) trace_park(ctx, w, t0, s);
        weft__blocked_leave(ctx, mark);
        leave(ctx, w);
    } else {
        s = WEFT__W_CANCELED;
    }
    if (s == WEFT__W_WOKEN) return 0;

    /* Deadline or cancel: leave the queue, unless a waker got there first. */
    weft__mutex_lock(lock);
    bool queued = w->queued;
    if (queued) weft__waitq_remove(q, w);
    weft__mutex_unlock(lock);
    if (queued)
        return s == WEFT__W_CANCELED ? WEFT_ECANCELED
               : s == WEFT__W_DEADLK ? WEFT_EDEADLK
                                     : WEFT_ETIMEDOUT;

    /* A waker dequeued us and its WOKEN is on the way: take it, and what it hands over. */
    for (;;) {
        s = atomic_load_explicit(&w->state, memory_order_acquire);
        if (s == WEFT__W_WAKING) s = await_final(w);
        if (s == WEFT__W_WOKEN) return 0;
        if (atomic_compare_exchange_strong_explicit(&w->state, &s, WEFT__W_WAITING,
                                                    memory_order_acq_rel, memory_order_acquire))
            park(ctx, w, WEFT_NO_DEADLINE);
    }
}

int weft__wait_queued(weft__mutex_t *lock, weft_waitq_t *q, weft__waiter_t *w, int64_t deadline)
{
    if (deadline != WEFT_NO_DEADLINE && deadline <= weft_time_monotonic_ns()) {
        weft__mutex_unlock(lock);
        return WEFT_ETIMEDOUT; /* a poll (timeout 0), or a deadline already passed */
    }
    weft__waiter_t own;
    if (!w) {
        weft__waiter_init(&own);
        w = &own;
    }
    weft__waitq_push(q, w);
    weft__mutex_unlock(lock);
    return weft__waiter_park_in(lock, q, w, deadline);
}

/* A waiter nobody will wake, on a queue of its own: only the deadline (or a cancel) ends the
 * park. */
int weft__nap(int64_t deadline, bool nocancel)
{
    weft_waitq_t q = WEFT_WAITQ_INIT;
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waiter_on(&w, WEFT__ON_SLEEP, NULL); /* inside a described wait: that one shows */
    w.nocancel = nocancel;
    w.nospin = true;
    weft__waitq_lock(&q);
    weft__waitq_push(&q, &w);
    weft__waitq_unlock(&q);
    int rc = weft__waiter_park(&q, &w, deadline);
    if (rc != WEFT_ETIMEDOUT) return rc;
    /* The nap's own deadline is success; a timeout scope that ends first is not. */
    int64_t scope = w.ctx->scope;
    return scope && scope < deadline && weft_time_monotonic_ns() >= scope ? WEFT_ETIMEDOUT : 0;
}
