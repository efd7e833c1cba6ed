/*
 * hub.c — the per-thread scheduler: spawning, switching, parking and waking coroutines,
 * timers, the idle wait, deadlock detection, and the hub's life with its thread. The
 * protocols are described in coro_internal.h.
 */
#include "coro_internal.h"
#include "coro_shared.h"
#include "../core/sys_internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_STACK (64 * 1024)
#define MIN_STACK     (16 * 1024)
#define MAX_STACK     ((size_t)1 << 30)
/* Free stacks a hub keeps for reuse (their touched pages stay). A burst may leave more: they
 * are kept until the hub has stayed idle for TRIM_IDLE_NS (a hub that idles between bursts,
 * as one waiting for another thread does, keeps them), then unmapped, TRIM_CHUNK per idle
 * pass. */
#define STACK_CACHE  1024
#define TRIM_CHUNK   1024
#define TRIM_IDLE_NS 1000000000
#define NO_TIMER     SIZE_MAX

typedef struct timer {
    int64_t deadline;
    weft_co_t *co;
} timer_t_;

struct weft__hub {
    weft_co_t root; /* the thread's own context (no stack of its own) */
    weft_co_t *current;
    weft__list_t ready;          /* runnable coroutines, in order (weft_co_t.ready) */
    _Atomic(weft_co_t *) remote; /* wakes from other threads, newest first */
    _Atomic uint32_t sleeping;   /* 0 awake, 1 futex wait, 2 poller wait */
    timer_t_ *timers;            /* binary min-heap on deadline; room for every coroutine */
    size_t ntimers, captimers;   /* (live ones and the root) is reserved by spawn, so a park
                                  * never allocates: each context holds one timer at most */
    weft__list_t all;            /* live spawned coroutines (weft_co_t.alln), the newest first:
                                  * written under all_lock, on the hub's thread; other threads
                                  * read it under all_lock */
    weft__mutex_t all_lock;      /* the task snapshot reads `all` from other threads */
    _Atomic int tid;             /* its thread's kernel id (the snapshot's "thread") */
    _Atomic size_t nlive;        /* spawned and not yet ended (the watchdog and hubs.c read it;
                                  * weft__co_prepare adds from other threads) */
    /* What the next switch must do after it (one word, so that a switch looks at one): the
     * coroutine that ended, whose stack is released then (a pointer, or 0), | AFTER_TRACE while
     * this hub records a trace (hub_trace_refresh sets it from weft__observing at each spawn
     * and at least every 64 picks: a trace begins and ends within 64 switches of a busy hub). */
    uintptr_t after_switch;
    int64_t trace_t0;            /* tracing: when trace_co was switched in, or 0 */
    weft_co_t *trace_co;         /* tracing: the coroutine whose run began at trace_t0 */
    weft__stack_t *cache;        /* free stacks of the default size (see STACK_CACHE) */
    weft__hub_t *next_abandoned; /* hub_abandon's list */
    size_t ncache, capcache;
    const weft__hub_io_t *io_ops;
    void *io;
    _Atomic unsigned ticks;       /* picks of a next coroutine (one before every switch): the hub
                                   * looks outside every 64th; the watchdog watches it move */
    _Atomic(weft_co_t *) running; /* for the watchdog: the current coroutine */
    _Atomic uint32_t sampling;    /* the watchdog reads `running`'s name (weft__hub_sample) */
    weft__hub_t *reg_next, *reg_prev; /* the registry of hubs (watchdog) */
    bool closing;
    int64_t probe_ns; /* the deadlock probe's current idle spell (0: none yet) */
    int64_t trim_at;  /* when an idle spell may trim the stack cache (0: no spell yet) */
    void *altstack;   /* the thread's alternate signal stack, if the hub gave it (stack.c) */
#if WEFT__TSAN
    void *tsan_root;
#endif
#if WEFT__ASAN
    weft_co_t *asan_from; /* the context being switched away from */
#endif
};

WEFT__TLS weft__hub_t *weft__tls_hub;
#define tls_hub weft__tls_hub
static pthread_key_t hub_key;
static pthread_once_t hub_once = PTHREAD_ONCE_INIT;
static int hub_init_error;
static _Atomic size_t co_counter;

/* ---- the registry (for the watchdog) ----------------------------------------------------- */

static weft__mutex_t reg_lock = WEFT__MUTEX_INIT;
static weft__hub_t *reg_head;

void weft__hubs_visit(void (*fn)(weft__hub_t *hub, void *arg), void *arg)
{
    weft__mutex_lock(&reg_lock);
    for (weft__hub_t *h = reg_head; h; h = h->reg_next) fn(h, arg);
    weft__mutex_unlock(&reg_lock);
}

/* The live coroutine after co (the newest for NULL); NULL after the oldest. */
static inline weft_co_t *all_next(weft__hub_t *hub, weft_co_t *co)
{
    weft__list_node_t *n = co ? weft__list_next(&co->alln) : weft__list_first(&hub->all);
    return n ? weft__container_of(n, weft_co_t, alln) : NULL;
}

/* The live list's lock, for its hub's thread's changes: none while the process has one thread
 * (then no snapshot can run meanwhile: a snapshot on this thread runs between the changes, and
 * no other thread can start during one). Returns whether it was skipped, for the drop. */
static inline bool all_lock_take(weft__hub_t *hub)
{
    bool alone = weft__single_threaded();
    if (!alone) weft__mutex_lock(&hub->all_lock);
    return alone;
}

static inline void all_lock_drop(weft__hub_t *hub, bool alone)
{
    if (!alone) weft__mutex_unlock(&hub->all_lock);
}

void weft__hub_visit_cos(weft__hub_t *hub, void (*fn)(weft_co_t *co, void *arg), void *arg)
{
    weft__mutex_lock(&hub->all_lock);
    for (weft_co_t *co = all_next(hub, NULL); co; co = all_next(hub, co)) fn(co, arg);
    weft__mutex_unlock(&hub->all_lock);
}

int weft__hub_tid(const weft__hub_t *hub)
{
    return atomic_load_explicit(&hub->tid, memory_order_relaxed);
}

weft_co_t *weft__hub_root(weft__hub_t *hub)
{
    return &hub->root;
}

/* What the watchdog sees of a hub: its switch count, and whether it runs a coroutine (not
 * idle); the running one's name is copied into buf, and counts when the switch count did not
 * move meanwhile.
 *
 * The name is read from another thread while the hub runs on, so the coroutine must not be
 * freed under the reader. A Dekker handshake on two words makes sure of it: the sampler
 * raises `sampling`, then loads `running`; the hub, before it drops an ended coroutine's own
 * reference (which comes before any free of it), stores the coroutine it now runs in
 * `running`, then waits while `sampling` is up (all four seq_cst). Either the sampler's load
 * comes after the hub's store and sees the new coroutine, or the hub sees the flag and waits
 * for the copy to finish. Only a coroutine's end pays (one seq_cst store); switches publish
 * `running` with a release store, so its name, written at spawn, is visible. */
void (*weft__watchdog_sample_hook)(weft_co_t *co);
bool weft__hub_sample(weft__hub_t *hub, uint64_t *switches, char *buf, size_t n)
{
    uint64_t before = atomic_load_explicit(&hub->ticks, memory_order_acquire);
    *switches = before;
    if (atomic_load_explicit(&hub->sleeping, memory_order_acquire) ||
        !atomic_load_explicit(&hub->nlive, memory_order_relaxed))
        return false; /* idle, or nobody else to starve */
    atomic_store_explicit(&hub->sampling, 1, memory_order_seq_cst);
    weft_co_t *co = atomic_load_explicit(&hub->running, memory_order_seq_cst);
    if (!co) co = &hub->root;
    if (weft__watchdog_sample_hook) weft__watchdog_sample_hook(co);
    snprintf(buf, n, "%s", co->name);
    atomic_store_explicit(&hub->sampling, 0, memory_order_release);
    return atomic_load_explicit(&hub->ticks, memory_order_acquire) == before;
}

/* Before an ended coroutine's own reference goes (the hub's thread, `running` already moved
 * on): waits until no sample may still read the coroutine's name (see weft__hub_sample). The
 * seq_cst store of `running` again (same value) is this side of the handshake: a fence would
 * do, but TSan does not model fences. */
static void wait_unsampled(weft__hub_t *hub)
{
    atomic_store_explicit(&hub->running, hub->current, memory_order_seq_cst);
    for (int i = 1; atomic_load_explicit(&hub->sampling, memory_order_seq_cst); i++) {
        if (i % 64 == 0)
            sched_yield(); /* the watchdog thread may have been preempted mid-copy */
        else
            weft__cpu_relax();
    }
}

/* ---- ready queue, remote stack, timers --------------------------------------------------- */

static void ready_push(weft__hub_t *hub, weft_co_t *co)
{
    weft__list_push_back(&hub->ready, &co->ready);
    atomic_store_explicit(&co->state, WEFT_CO_READY, memory_order_relaxed);
}

static weft_co_t *ready_pop(weft__hub_t *hub)
{
    weft__list_node_t *n = weft__list_pop_front(&hub->ready);
    return n ? weft__container_of(n, weft_co_t, ready) : NULL;
}

static void remote_push(weft__hub_t *hub, weft_co_t *co)
{
    weft_co_t *head = atomic_load_explicit(&hub->remote, memory_order_relaxed);
    do co->next = head;
    while (!atomic_compare_exchange_weak_explicit(&hub->remote, &head, co, memory_order_seq_cst,
                                                  memory_order_relaxed));
    uint32_t s = atomic_exchange_explicit(&hub->sleeping, 0, memory_order_seq_cst);
    if (s == 1)
        weft__futex_wake(&hub->sleeping, 1, false);
    else if (s == 2)
        hub->io_ops->notify(hub->io);
}

/* Moves the remote wakes to the ready queue, oldest first. */
static bool drain_remote(weft__hub_t *hub)
{
    if (!atomic_load_explicit(&hub->remote, memory_order_relaxed)) return false;
    weft_co_t *list = atomic_exchange_explicit(&hub->remote, NULL, memory_order_acquire);
    weft_co_t *rev = NULL;
    while (list) {
        weft_co_t *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    bool any = rev != NULL;
    while (rev) {
        weft_co_t *next = rev->next;
        ready_push(hub, rev);
        rev = next;
    }
    return any;
}

static void timer_set(weft__hub_t *hub, size_t i, timer_t_ t)
{
    hub->timers[i] = t;
    t.co->timer = i;
}

static void timer_up(weft__hub_t *hub, size_t i)
{
    timer_t_ t = hub->timers[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (hub->timers[parent].deadline <= t.deadline) break;
        timer_set(hub, i, hub->timers[parent]);
        i = parent;
    }
    timer_set(hub, i, t);
}

static void timer_down(weft__hub_t *hub, size_t i)
{
    timer_t_ t = hub->timers[i];
    size_t n = hub->ntimers;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hub->timers[c + 1].deadline < hub->timers[c].deadline) c++;
        if (t.deadline <= hub->timers[c].deadline) break;
        timer_set(hub, i, hub->timers[c]);
        i = c;
    }
    timer_set(hub, i, t);
}

/* Makes room in the heap for n timers (spawn reserves one per coroutine, the root's too). */
static int timer_reserve(weft__hub_t *hub, size_t n)
{
    if (n <= hub->captimers) return 0;
    size_t cap = hub->captimers ? hub->captimers : 64;
    while (cap < n) cap *= 2;
    timer_t_ *t = weft__realloc(hub->timers, cap * sizeof *t);
    if (!t) return WEFT_ENOMEM;
    hub->timers = t;
    hub->captimers = cap;
    return 0;
}

/* Never fails: every parked context (at most one timer each) has its slot reserved. */
static void timer_add(weft__hub_t *hub, weft_co_t *co, int64_t deadline)
{
    size_t i = hub->ntimers++;
    timer_set(hub, i, (timer_t_){deadline, co});
    timer_up(hub, i);
}

static void timer_remove(weft__hub_t *hub, weft_co_t *co)
{
    size_t i = co->timer;
    co->timer = NO_TIMER;
    size_t last = --hub->ntimers;
    if (i == last) return;
    timer_set(hub, i, hub->timers[last]);
    if (i > 0 && hub->timers[i].deadline < hub->timers[(i - 1) / 2].deadline)
        timer_up(hub, i);
    else
        timer_down(hub, i);
}

/* ---- parking and waking (the waiting core's parker) -------------------------------------- */

static void co_unpark(void *arg)
{
    weft_co_t *co = arg;
    if (atomic_exchange_explicit(&co->wake, 2, memory_order_acq_rel) != 1) return;
    weft__hub_t *hub = co->hub;
    if (hub == tls_hub)
        ready_push(hub, co);
    else
        remote_push(hub, co);
}

/* Fires the expired timers: each one times out its coroutine's park (unless a waker or
 * canceler got there first: its unpark is on the way). */
static bool run_timers(weft__hub_t *hub)
{
    if (!hub->ntimers) return false;
    int64_t now = weft_time_monotonic_ns();
    bool any = false;
    while (hub->ntimers && hub->timers[0].deadline <= now) {
        weft_co_t *co = hub->timers[0].co;
        timer_remove(hub, co);
        weft__waiter_t *w = co->parked_on;
        uint32_t s = WEFT__W_WAITING;
        if (w && atomic_compare_exchange_strong_explicit(
                     &w->state, &s, WEFT__W_TIMEDOUT, memory_order_acq_rel, memory_order_acquire)) {
            co_unpark(co);
            any = true;
        }
    }
    return any;
}

static inline void finish_switch(weft__hub_t *hub, weft_co_t *from);

/* Tracing, on the coroutine just switched to (finish_switch, before an ended one is freed):
 * the run of the one before ends (a RUN event), the run of the current one begins. Here and not
 * in switch_to, so that the check costs the switch no register across the context switch. */
__attribute__((noinline, cold)) static void trace_switch(weft__hub_t *hub)
{
    int64_t now = weft_time_monotonic_ns();
    weft_co_t *prev = hub->trace_co;
    if (prev && hub->trace_t0) {
        weft__trace_ev_t ev = {
            .type = WEFT__TR_RUN, .t0 = hub->trace_t0, .t1 = now, .obj = prev, .name = prev->name};
        weft__trace_emit(&ev);
    }
    weft_co_t *co = hub->current;
    hub->trace_co = co == &hub->root ? NULL : co;
    hub->trace_t0 = hub->trace_co ? now : 0;
}

/* Tracing: the hub goes idle (sleeps in its poller or futex) on the stack of the coroutine that
 * blocked last: that coroutine's run ends now; schedule starts it again if it is the next. */
__attribute__((noinline, cold)) static void trace_idle(weft__hub_t *hub)
{
    weft_co_t *co = hub->trace_co;
    if (co && hub->trace_t0) {
        weft__trace_ev_t ev = {.type = WEFT__TR_RUN,
                               .t0 = hub->trace_t0,
                               .t1 = weft_time_monotonic_ns(),
                               .obj = co,
                               .name = co->name};
        weft__trace_emit(&ev);
    }
    hub->trace_t0 = 0;
    hub->trace_co = NULL;
}

/* Tracing: co runs on after an idle spell (trace_idle ended its run): a new run begins. Out of
 * line, so that schedule needs no stack frame of its own for it. */
__attribute__((noinline, cold)) static void trace_resume(weft__hub_t *hub, weft_co_t *co)
{
    if (hub->trace_t0 || co == &hub->root) return;
    hub->trace_t0 = weft_time_monotonic_ns();
    hub->trace_co = co;
}

/* after_switch's flag: this hub records a trace (a coroutine's address is even). */
#define AFTER_TRACE ((uintptr_t)1)

/* Makes after_switch's AFTER_TRACE say whether a trace runs; one that ended forgets its run. */
static inline void hub_trace_refresh(weft__hub_t *hub)
{
    bool on = weft__observe(WEFT__OBSERVE_TRACE);
    if (on == ((hub->after_switch & AFTER_TRACE) != 0)) return;
    if (on) {
        hub->after_switch |= AFTER_TRACE;
    } else {
        hub->after_switch &= ~AFTER_TRACE;
        hub->trace_t0 = 0;
        hub->trace_co = NULL;
    }
}

/* Switches from the current coroutine to co (co != current). */
__attribute__((always_inline)) static inline void switch_to(weft__hub_t *hub, weft_co_t *co)
{
    weft_co_t *from = hub->current;
    hub->current = co;
    atomic_store_explicit(&hub->running, co, memory_order_release);
    atomic_store_explicit(&co->state, WEFT_CO_RUNNING, memory_order_relaxed);
    weft__waitctx_switch(co == &hub->root ? NULL : &co->wctx);
#if WEFT__ASAN
    /* An ended coroutine never comes back: NULL tells ASan to drop its fake stack. */
    bool ended = atomic_load_explicit(&from->state, memory_order_relaxed) == WEFT_CO_DONE;
    hub->asan_from = from;
    __sanitizer_start_switch_fiber(ended ? NULL : &from->asan_fake, co->stack.lo, co->stack.size);
#endif
#if WEFT__TSAN
    __tsan_switch_to_fiber(co == &hub->root ? hub->tsan_root : co->tsan_fiber, 0);
#endif
    weft__ctx_switch(&from->ctx, &co->ctx);
    finish_switch(hub, from);
}

static size_t default_stack(void);
static void co_unref(weft_co_t *co);

static void release_stack(weft__hub_t *hub, weft__stack_t *s)
{
    if (hub->ncache == hub->capcache) {
        size_t cap = hub->capcache ? 2 * hub->capcache : 16;
        weft__stack_t *c = weft__realloc(hub->cache, cap * sizeof *c);
        if (c) {
            hub->cache = c;
            hub->capcache = cap;
        }
    }
    if (hub->ncache < hub->capcache && s->size == weft__stack_round(default_stack())) {
        weft__stack_reset(s);
        hub->cache[hub->ncache++] = *s;
    } else {
        weft__stack_free(s);
    }
    s->base = NULL;
}

/* Runs in the context just switched to: finishes the sanitizer switch, and releases the stack
 * of a coroutine that ended (it cannot free what it runs on). */
__attribute__((always_inline)) static inline void finish_switch(weft__hub_t *hub, weft_co_t *self)
{
#if WEFT__ASAN
    /* The stack we came from: the first switch out of the root tells ASan's idea of the
     * thread's own stack, which later switches back to the root must name. */
    const void *bottom;
    size_t size;
    __sanitizer_finish_switch_fiber(self->asan_fake, &bottom, &size);
    if (hub->asan_from == &hub->root && !hub->root.stack.lo) {
        hub->root.stack.lo = (void *)bottom;
        hub->root.stack.size = size;
    }
#else
    (void)self;
#endif
    uintptr_t after = hub->after_switch;
    if (weft__likely(!after)) return;
    if (after & AFTER_TRACE) trace_switch(hub);
    weft_co_t *z = (weft_co_t *)(after & ~AFTER_TRACE);
    if (z) {
        hub->after_switch = after & AFTER_TRACE;
        if (hub->trace_co == z) hub->trace_co = NULL; /* a trace started later must not read it */
#if WEFT__TSAN
        __tsan_destroy_fiber(z->tsan_fiber);
#endif
        release_stack(hub, &z->stack);
        wait_unsampled(hub);
        co_unref(z); /* the reference it held on itself while alive */
    }
}

static int count_threads(void);

/* Nothing is ready, no timer is set and no fd is watched: can anything still wake a parked
 * coroutine of this hub? Only another thread (or a signal handler, which weft does not
 * support as a waker). */
static bool stuck(weft__hub_t *hub)
{
    if (hub->ntimers || (hub->io_ops && hub->io_ops->busy(hub->io))) return false;
    /* Acquire: pairs with the helper's update, made before it parks. */
    return count_threads() - atomic_load_explicit(&weft__idle_helpers, memory_order_acquire) <= 1;
}

/* Fails every park of the hub with WEFT_EDEADLK. */
static void break_deadlock(weft__hub_t *hub)
{
    weft_co_t *co = &hub->root;
    for (;;) {
        weft__waiter_t *w = co->parked_on;
        uint32_t s = WEFT__W_WAITING;
        if (w && atomic_compare_exchange_strong_explicit(
                     &w->state, &s, WEFT__W_DEADLK, memory_order_acq_rel, memory_order_acquire))
            co_unpark(co);
        co = all_next(hub, co == &hub->root ? NULL : co);
        if (!co) break;
    }
}

/* The hub's loop, run by a coroutine that gives up the CPU: returns the next coroutine to
 * run (possibly the caller itself, woken meanwhile). */
static weft_co_t *next_ready_slow(weft__hub_t *hub);

/* Only the hub's thread writes ticks: a plain increment, published for the watchdog. */
static inline unsigned tick(weft__hub_t *hub)
{
    unsigned t = atomic_load_explicit(&hub->ticks, memory_order_relaxed) + 1;
    atomic_store_explicit(&hub->ticks, t, memory_order_release);
    return t;
}

/* The common case inline: a coroutine is ready and it is not the 64th pick (when the hub
 * looks outside: remote wakes, timers, fds, even while coroutines keep each other busy). */
static inline weft_co_t *next_ready(weft__hub_t *hub)
{
    weft__list_node_t *n = hub->ready.head;
    if (weft__likely(n != NULL && (tick(hub) & 63) != 0)) {
        weft__list_pop_head(&hub->ready, n);
        return weft__container_of(n, weft_co_t, ready);
    }
    return next_ready_slow(hub);
}

/* Idle with more than STACK_CACHE free stacks: gives back what a burst left, a chunk per idle
 * pass, once the hub has stayed idle for TRIM_IDLE_NS (until then it shortens *deadline to that
 * time). Returns true when more is left to trim (the next pass comes at once: *deadline 0). */
static bool trim_cache(weft__hub_t *hub, int64_t *deadline)
{
    int64_t now = weft_time_monotonic_ns();
    if (!hub->trim_at) hub->trim_at = now + TRIM_IDLE_NS;
    if (now < hub->trim_at) {
        if (*deadline > hub->trim_at) *deadline = hub->trim_at;
        return false;
    }
    for (size_t k = 0; k < TRIM_CHUNK && hub->ncache > STACK_CACHE; k++)
        weft__stack_free(&hub->cache[--hub->ncache]);
    if (hub->ncache > STACK_CACHE) {
        *deadline = 0;
        return true;
    }
    hub->trim_at = 0;
    return false;
}

static weft_co_t *next_ready_slow(weft__hub_t *hub)
{
    hub_trace_refresh(hub);
    if (!weft__list_empty(&hub->ready) || (tick(hub) & 63) == 0) {
        drain_remote(hub);
        run_timers(hub);
        if (hub->io_ops) hub->io_ops->poll(hub->io, 0);
    }
    for (;;) {
        weft_co_t *co = ready_pop(hub);
        if (co) {
            hub->trim_at = 0; /* busy: an idle spell starts over */
            return co;
        }
        if (drain_remote(hub) || run_timers(hub)) continue;
        int64_t deadline = hub->ntimers ? hub->timers[0].deadline : WEFT_NO_DEADLINE;
        bool probe = false;
        if (deadline == WEFT_NO_DEADLINE && !(hub->io_ops && hub->io_ops->busy(hub->io))) {
            /* Only another thread can wake us now. Whether one exists costs a read of /proc:
             * look only after an idle spell (10 ms, doubling to 1 s while threads exist), so
             * a wake that comes soon pays nothing. */
            if (hub->probe_ns && stuck(hub)) {
                if (weft__deadlock_report_hook) weft__deadlock_report_hook();
                break_deadlock(hub);
                continue;
            }
            hub->probe_ns = !hub->probe_ns              ? 10000000
                            : hub->probe_ns < 500000000 ? 2 * hub->probe_ns
                                                        : 1000000000;
            deadline = weft_time_monotonic_ns() + hub->probe_ns;
            probe = true;
        }
        if (hub->ncache > STACK_CACHE && trim_cache(hub, &deadline))
            probe = false; /* not an idle spell: the deadlock probe starts over */
        if (weft__observe(WEFT__OBSERVE_TRACE)) trace_idle(hub);
        uint32_t mode = hub->io_ops ? 2 : 1;
        atomic_store_explicit(&hub->sleeping, mode, memory_order_seq_cst);
        if (atomic_load_explicit(&hub->remote, memory_order_seq_cst)) {
            atomic_store_explicit(&hub->sleeping, 0, memory_order_relaxed);
            continue;
        }
        if (mode == 2)
            hub->io_ops->poll(hub->io, deadline);
        else
            weft__futex_wait(&hub->sleeping, 1, deadline, false);
        atomic_store_explicit(&hub->sleeping, 0, memory_order_relaxed);
        /* A probe that ended without anything to do keeps its interval (the next idle spell
         * checks for threads); anything else starts over. */
        if (!probe || !weft__list_empty(&hub->ready) ||
            atomic_load_explicit(&hub->remote, memory_order_relaxed))
            hub->probe_ns = 0;
    }
}

static inline void schedule(weft__hub_t *hub)
{
    weft_co_t *co = next_ready(hub);
    if (co != hub->current) {
        switch_to(hub, co);
    } else {
        atomic_store_explicit(&co->state, WEFT_CO_RUNNING, memory_order_relaxed);
        /* Tracing: the same coroutine runs on after an idle spell (trace_idle ended its run). */
        if (hub->after_switch & AFTER_TRACE) trace_resume(hub, co);
    }
}

/* Parks the current coroutine until its permit is given (returns at once if it already was). */
static void block(weft__hub_t *hub, weft_co_t *co)
{
    uint32_t expect = 0;
    if (!atomic_compare_exchange_strong_explicit(&co->wake, &expect, 1, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        atomic_store_explicit(&co->wake, 0, memory_order_relaxed); /* the permit, taken */
        return;
    }
    atomic_store_explicit(&co->state, WEFT_CO_BLOCKED, memory_order_relaxed);
    schedule(hub);
    atomic_exchange_explicit(&co->wake, 0, memory_order_acq_rel);
}

static uint32_t co_park(void *arg, weft__waiter_t *w, int64_t deadline)
{
    weft_co_t *co = arg;
    weft__hub_t *hub = co->hub;
    co->parked_on = w;
    if (deadline != WEFT_NO_DEADLINE) timer_add(hub, co, deadline);
    uint32_t s;
    for (int spins = 0;
         (s = atomic_load_explicit(&w->state, memory_order_acquire)) < WEFT__W_WOKEN;) {
        if (s == WEFT__W_WAKING) {
            /* A waker on another thread is between its unpark (which already ran us) and its
             * final store: a few instructions, so wait here rather than park for a wake that
             * will not come again. */
            if (++spins < 100)
                weft__cpu_relax();
            else
                sched_yield();
            continue;
        }
        block(hub, co);
    }
    if (co->timer != NO_TIMER) timer_remove(hub, co);
    co->parked_on = NULL;
    return s;
}

static const weft__parker_t co_parker = {co_park, co_unpark};

/* ---- the hub's life ---------------------------------------------------------------------- */

static void init_co(weft_co_t *co, weft__hub_t *hub)
{
    co->hub = hub;
    co->wctx.parker = &co_parker;
    co->wctx.park_arg = co;
    co->wctx.kind = WEFT__CTX_COROUTINE;
    co->timer = NO_TIMER;
    atomic_store_explicit(&co->refs, 1, memory_order_relaxed);
    weft__handle_init(&co->hd, WEFT__ID_CO, 0);
}

/* Drops a reference that is not the program's (the one a coroutine holds on itself). */
static void co_unref(weft_co_t *co)
{
    if (atomic_fetch_sub_explicit(&co->refs, 1, memory_order_acq_rel) == 1)
        weft__handle_free(co, &co->hd);
}

static void on_thread_exit(void *p);

/* Fork: the registry's lock is held across fork, so no hub is half-linked and no watchdog
 * sample is in progress in the child (every hub's `sampling` is down). The child keeps only
 * the forking thread's hub on the registry: the others' threads are gone (their hubs stay
 * allocated, as their memory copies do). */
static void reg_fork_prepare(void)
{
    weft__mutex_lock(&reg_lock);
}

static void reg_fork_parent(void)
{
    weft__mutex_unlock(&reg_lock);
}

static void reg_fork_child(void)
{
    reg_head = tls_hub;
    if (tls_hub) {
        tls_hub->reg_next = tls_hub->reg_prev = NULL;
        tls_hub->all_lock = (weft__mutex_t)WEFT__MUTEX_INIT; /* a snapshot's, in a gone thread */
        atomic_store_explicit(&tls_hub->tid, (int)gettid(), memory_order_relaxed);
    }
    reg_lock = (weft__mutex_t)WEFT__MUTEX_INIT;
}

static void hub_abandon(void);

static const weft__fork_hooks_t fork_hooks = {
    .rank = WEFT__LAYER_CORO,
    .prepare = reg_fork_prepare,
    .parent = reg_fork_parent,
    .child = reg_fork_child,
    .fresh = hub_abandon,
};

static void hub_once_init(void)
{
    if (pthread_key_create(&hub_key, on_thread_exit) || weft__fork_register(&fork_hooks))
        hub_init_error = WEFT_EAGAIN;
}

weft__hub_t *weft__hub_current(void)
{
    return tls_hub;
}

weft__hub_t *weft__hub_parking(void)
{
    return weft__parks_coroutine() ? tls_hub : NULL;
}

weft__hub_t *weft__hub_get(void)
{
    weft__hub_t *hub = tls_hub;
    if (weft__likely(hub != NULL)) return hub;
    pthread_once(&hub_once, hub_once_init);
    if (hub_init_error) return NULL;
    hub = weft__calloc(1, sizeof *hub);
    if (!hub) return NULL;
    if (timer_reserve(hub, 1) || pthread_setspecific(hub_key, hub)) { /* the root's timer */
        weft__free(hub->timers);
        weft__free(hub);
        return NULL;
    }
    init_co(&hub->root, hub);
    hub->all_lock = (weft__mutex_t)WEFT__MUTEX_INIT;
    atomic_store_explicit(&hub->tid, (int)gettid(), memory_order_relaxed);
    snprintf(hub->root.name, sizeof hub->root.name, "root");
    atomic_store_explicit(&hub->root.state, WEFT_CO_RUNNING, memory_order_relaxed);
    hub->current = &hub->root;
#if WEFT__TSAN
    hub->tsan_root = __tsan_get_current_fiber();
#endif
    /* The thread's own context parks through the hub from now on; its cancel flag, task and
     * timeout scope stay where they are. */
    weft__thread_ctx.parker = &co_parker;
    weft__thread_ctx.park_arg = &hub->root;
    hub->altstack = weft__stack_guard_start();
    weft__mutex_lock(&reg_lock);
    hub->reg_next = reg_head;
    if (reg_head) reg_head->reg_prev = hub;
    reg_head = hub;
    weft__mutex_unlock(&reg_lock);
    tls_hub = hub;
    return hub;
}

void *weft__hub_io(weft__hub_t *hub)
{
    return hub->io;
}

void weft__hub_set_io(weft__hub_t *hub, const weft__hub_io_t *ops, void *io)
{
    hub->io = io;
    hub->io_ops = ops;
}

/* The thread ends: its coroutines are canceled and run to their end (their cleanup runs),
 * then everything the hub holds is freed. */
static void hub_destroy(weft__hub_t *hub)
{
    hub->closing = true;
    weft__waitctx_uncancel(&weft__thread_ctx);
    while (!weft__list_empty(&hub->all)) {
        for (weft_co_t *co = all_next(hub, NULL); co; co = all_next(hub, co)) weft_co_cancel(co);
        weft_co_t *co = weft_co_retain(all_next(hub, NULL));
        weft_co_join(co, WEFT_FOREVER); /* canceled root: a park that need not wait still works */
        weft_co_release(co);
    }
    /* An ended coroutine's stack is released at the next switch: there is none to come. */
    if (hub->after_switch & ~AFTER_TRACE) {
        weft_co_t *z = (weft_co_t *)(hub->after_switch & ~AFTER_TRACE);
        hub->after_switch &= AFTER_TRACE;
#if WEFT__TSAN
        __tsan_destroy_fiber(z->tsan_fiber);
#endif
        weft__stack_free(&z->stack);
        wait_unsampled(hub);
        co_unref(z);
    }
    if (hub->io_ops) hub->io_ops->destroy(hub->io);
    for (size_t i = 0; i < hub->ncache; i++) weft__stack_free(&hub->cache[i]);
    weft__stack_carve_release();
    weft__free(hub->cache);
    weft__free(hub->timers);
    weft__mutex_lock(&reg_lock);
    if (hub->reg_prev)
        hub->reg_prev->reg_next = hub->reg_next;
    else
        reg_head = hub->reg_next;
    if (hub->reg_next) hub->reg_next->reg_prev = hub->reg_prev;
    weft__mutex_unlock(&reg_lock);
    weft__thread_ctx.parker = NULL;
    weft__thread_ctx.park_arg = NULL;
    for (size_t i = 0; i < hub->root.nlocals; i++)
        if (hub->root.locals[i].value && hub->root.locals[i].key->dtor)
            hub->root.locals[i].key->dtor(hub->root.locals[i].value);
    weft__free(hub->root.locals);
    weft__stack_guard_stop(hub->altstack);
    tls_hub = NULL;
    weft__free(hub);
}

static void on_thread_exit(void *p)
{
    hub_destroy(p);
}

/* Tests only (tests/support's per-case teardown): see coro_internal.h. */
void weft__hub_shutdown(void)
{
    weft__hub_t *hub = tls_hub;
    if (!hub || hub->current != &hub->root) return;
    pthread_setspecific(hub_key, NULL);
    hub_destroy(hub);
}

/* The hubs left behind by hub_abandon: kept reachable (a leak checker would otherwise count a
 * forked child's copy of its parent's coroutines as its own leak). */
static weft__hub_t *abandoned;

/* The fresh hook (weft__fork_fresh), in a forked child that is to run one function alone
 * (weft_process_start): the thread's hub and the copies of its coroutines are left as they
 * are, never to run, and the caller goes on as a plain thread with the thread's own waiting
 * context (on whatever stack it runs). A later weft_co_spawn makes a fresh hub. */
static void hub_abandon(void)
{
    weft__hub_t *hub = tls_hub;
    if (!hub) return;
    hub->next_abandoned = abandoned;
    abandoned = hub;
    weft__mutex_lock(&reg_lock); /* nothing runs it again: off the watchdog's registry */
    if (hub->reg_prev)
        hub->reg_prev->reg_next = hub->reg_next;
    else if (reg_head == hub)
        reg_head = hub->reg_next;
    if (hub->reg_next) hub->reg_next->reg_prev = hub->reg_prev;
    hub->reg_next = hub->reg_prev = NULL;
    weft__mutex_unlock(&reg_lock);
    tls_hub = NULL;
    pthread_setspecific(hub_key, NULL);
    weft__waitctx_switch(NULL);
    weft__thread_ctx.parker = NULL;
}

/* Threads in this process (/proc/self/stat, field 20), minus a sanitizer's own. */
static int count_threads(void)
{
    int fd = weft__sys_open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 2;
    char buf[1024];
    ssize_t n = weft__sys_read(fd, buf, sizeof buf - 1); /* one read: the file is made whole */
    weft__sys_close(fd);
    buf[n > 0 ? n : 0] = 0;
    char *p = strrchr(buf, ')');
    int field = 2, threads = 2;
    for (; p && *p; p++)
        if (*p == ' ' && ++field == 20) {
            threads = atoi(p + 1);
            break;
        }
#if WEFT__TSAN
    threads--; /* TSan's background thread */
#endif
    return threads;
}

/* ---- coroutines -------------------------------------------------------------------------- */

static void end_locals(weft_co_t *co)
{
    /* A destructor may set values again (as with pthread keys): a few rounds. */
    for (int round = 0; round < 4; round++) {
        bool any = false;
        for (size_t i = 0; i < co->nlocals; i++) {
            void *v = co->locals[i].value;
            if (v && co->locals[i].key->dtor) {
                co->locals[i].value = NULL;
                co->locals[i].key->dtor(v);
                any = true;
            }
        }
        if (!any) break;
    }
}

_Noreturn void weft__ctx_entry(void *arg)
{
    weft_co_t *co = arg;
    weft__hub_t *hub = co->hub;
    finish_switch(hub, co);
    if (!weft__waitctx_canceled(&co->wctx))
        co->fn(co->arg);
    else if (co->unrun)
        co->unrun(co->arg); /* weft__co_on_unrun */
    end_locals(co);
    weft__free(co->locals);
    co->locals = NULL;
    co->nlocals = co->caplocals = 0;
    /* Off the live list; DONE under the joiners' lock, then the joiners wake. */
    bool alone = all_lock_take(hub);
    weft__list_remove(&hub->all, &co->alln);
    all_lock_drop(hub, alone);
    atomic_fetch_sub_explicit(&hub->nlive, 1, memory_order_relaxed);
    weft__waitq_lock(&co->joiners);
    atomic_store_explicit(&co->state, WEFT_CO_DONE, memory_order_release);
    weft__waiter_t *list = weft__waitq_take(&co->joiners, -1, 0);
    weft__waitq_unlock(&co->joiners);
    weft__waiters_wake(list);
    if (co->group) weft__group_left(co);
    hub->after_switch = (uintptr_t)co | (hub->after_switch & AFTER_TRACE);
    for (;;) {
        weft_co_t *next = next_ready(hub);
        switch_to(hub, next); /* never comes back */
    }
}

/* "Coroutine-N" without snprintf (which costs as much as the rest of a spawn). */
static void default_name(char *out, size_t n)
{
    static const char prefix[] = "Coroutine-";
    char digits[24];
    int k = 0;
    do digits[k++] = (char)('0' + n % 10);
    while ((n /= 10) && k < 20);
    memcpy(out, prefix, sizeof prefix - 1);
    char *p = out + sizeof prefix - 1;
    while (k) *p++ = digits[--k];
    *p = 0;
}

/* The default stack size: WEFT_STACK_SIZE when sensible, else 64 KiB (read once). */
static size_t default_stack(void)
{
    static _Atomic size_t dflt;
    size_t d = atomic_load_explicit(&dflt, memory_order_relaxed);
    if (!d) {
        const char *env = weft__getenv("WEFT_STACK_SIZE");
        long long v = env ? atoll(env) : 0;
        d = v >= MIN_STACK && (size_t)v <= MAX_STACK ? (size_t)v : DEFAULT_STACK;
        atomic_store_explicit(&dflt, d, memory_order_relaxed);
    }
    return d;
}

static int check_opts(const weft_co_opts_t *opts, size_t *stack)
{
    size_t d = default_stack();
    *stack = d;
    if (!opts) return 0;
    if (opts->name && strlen(opts->name) >= WEFT_CO_NAME_MAX) return WEFT_EINVAL;
    if (opts->stack_size) {
        if (opts->stack_size < MIN_STACK || opts->stack_size > MAX_STACK) return WEFT_EINVAL;
        *stack = opts->stack_size;
    }
    return 0;
}

/* A stack of `rounded` bytes for a new coroutine of hub: a cached one serves any request of its
 * size, unless a real guard is demanded and it has none; else one mapped (default-sized ones
 * carved from the thread's chunk). 0 or weft__stack_alloc's code. */
static int take_stack(weft__hub_t *hub, weft__stack_t *s, size_t rounded, int guard)
{
    if (hub->ncache && rounded == hub->cache[hub->ncache - 1].size &&
        (guard <= 0 || hub->cache[hub->ncache - 1].guard != 0)) {
        *s = hub->cache[--hub->ncache];
        return 0;
    }
    return weft__stack_alloc(s, rounded, guard, rounded == weft__stack_round(default_stack()));
}

/* The name opts gives co, or "Coroutine-N". */
static void name_co(weft_co_t *co, const weft_co_opts_t *opts)
{
    /* Relaxed: only uniqueness matters. The id is the N of "Coroutine-N". */
    co->id = atomic_fetch_add_explicit(&co_counter, 1, memory_order_relaxed) + 1;
    if (opts && opts->name && opts->name[0])
        snprintf(co->name, sizeof co->name, "%s", opts->name);
    else
        default_name(co->name, co->id);
}

/* Makes co's context on its stack and puts it on its hub's list of coroutines and, READY, on
 * the ready queue. */
static void start_co(weft__hub_t *hub, weft_co_t *co)
{
    hub_trace_refresh(hub); /* a trace started before this spawn records its runs */
    weft__ctx_make(&co->ctx, co->stack.lo, co->stack.size, co);
#if WEFT__TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
    __tsan_set_fiber_name(co->tsan_fiber, co->name);
#endif
    bool alone = all_lock_take(hub);
    weft__list_push_front(&hub->all, &co->alln);
    all_lock_drop(hub, alone);
    ready_push(hub, co);
}

int weft_co_spawn(void (*fn)(void *arg), void *arg, const weft_co_opts_t *opts, weft_co_t **out)
{
    if (out) *out = NULL;
    if (!fn) return WEFT_EINVAL;
    size_t stack_size;
    int rc = check_opts(opts, &stack_size);
    if (rc) return rc;
    weft__hub_t *hub = weft__hub_get();
    if (!hub) return WEFT_ENOMEM;
    if (hub->closing) return WEFT_ESHUTDOWN;
    weft__watchdog_from_env();
    /* The new coroutine's timer slot (see struct weft__hub): its parks never allocate. Relaxed:
     * other threads only add coroutines not yet launched (weft__co_prepare), for which the room
     * is merely reserved early. */
    if (timer_reserve(hub, atomic_load_explicit(&hub->nlive, memory_order_relaxed) + 2))
        return WEFT_ENOMEM;
    weft_co_t *co = weft__handle_calloc(sizeof *co);
    if (!co) return WEFT_ENOMEM;
    if ((rc = take_stack(hub, &co->stack, weft__stack_round(stack_size), opts ? opts->guard : 0)) !=
        0) {
        weft__handle_free(co, &co->hd);
        return rc;
    }
    init_co(co, hub);
    /* Its own reference, and the caller's if it asked for a handle. */
    atomic_store_explicit(&co->refs, out ? 2 : 1, memory_order_relaxed);
    co->fn = fn;
    co->arg = arg;
    name_co(co, opts);
    atomic_fetch_add_explicit(&hub->nlive, 1, memory_order_relaxed);
    start_co(hub, co);
    if (out) *out = co;
    WEFT__HANDLE_GIVE(out ? co : NULL);
    return 0;
}

void weft__co_on_unrun(weft_co_t *co, void (*unrun)(void *arg))
{
    co->unrun = unrun;
}

weft_co_t *weft_co_retain(weft_co_t *co)
{
    WEFT__HANDLE_CHECK(co, WEFT__ID_CO, "co");
    if (co) atomic_fetch_add_explicit(&co->refs, 1, memory_order_relaxed);
    WEFT__HANDLE_GIVE(co);
    return co;
}

int weft_co_release(weft_co_t *co)
{
    WEFT__HANDLE_RELEASE(co, WEFT__ID_CO, "co");
    if (!co) return WEFT_EINVAL;
    co_unref(co);
    return 0;
}

/* weft_co_join's check, under co->joiners' lock (which DONE is set under). */
static int co_ended(void *arg)
{
    weft_co_t *co = arg;
    return atomic_load_explicit(&co->state, memory_order_acquire) == WEFT_CO_DONE ? 0
                                                                                  : WEFT__WAIT_PARK;
}

int weft_co_join(weft_co_t *co, double timeout)
{
    WEFT__HANDLE_CHECK(co, WEFT__ID_CO, "co");
    int64_t deadline;
    if (!co || weft__deadline(timeout, &deadline)) return WEFT_EINVAL; /* NaN */
    if (co == weft_co_current()) return WEFT_EDEADLK;
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waiter_on(&w, WEFT__ON_CO_JOIN, co);
    return weft__wait_until(NULL, &co->joiners, &w, co_ended, co, deadline);
}

int weft_co_join_all(weft_co_t *const *cos, size_t n, double timeout)
{
    if ((!cos && n) || isnan(timeout)) return WEFT_EINVAL;
    int64_t deadline;
    weft__deadline(timeout, &deadline);
    for (size_t i = 0; i < n; i++) {
        if (!cos[i]) continue;
        int rc = weft_co_join(cos[i], weft__deadline_remaining(deadline));
        if (rc) return rc;
    }
    return 0;
}

int weft_co_cancel(weft_co_t *co)
{
    WEFT__HANDLE_CHECK(co, WEFT__ID_CO, "co");
    if (!co) return WEFT_EINVAL;
    if (atomic_load_explicit(&co->state, memory_order_acquire) != WEFT_CO_DONE)
        weft__waitctx_cancel(&co->wctx);
    return 0;
}

void weft_co_cancel_cb(void *co)
{
    weft_co_cancel(co);
}

weft_co_t *weft_co_current(void)
{
    weft__hub_t *hub = tls_hub;
    if (!hub || hub->current == &hub->root) return NULL;
    return hub->current;
}

weft_co_state_t weft_co_state(const weft_co_t *co)
{
    WEFT__HANDLE_CHECK(co, WEFT__ID_CO, "co");
    if (!co) return WEFT_CO_INVALID;
    return (weft_co_state_t)atomic_load_explicit(&co->state, memory_order_acquire);
}

const char *weft_co_name(const weft_co_t *co)
{
    WEFT__HANDLE_CHECK(co, WEFT__ID_CO, "co");
    return co ? co->name : NULL;
}

int weft_co_yield(void)
{
    weft__hub_t *hub = tls_hub;
    if (!hub) {
        sched_yield();
        return weft__waitctx_canceled(weft__waitctx_current()) ? WEFT_ECANCELED : 0;
    }
    /* The permit word stays 0 (running): an unpark meanwhile leaves a permit instead of
     * queueing us a second time. */
    weft_co_t *self = hub->current;
    ready_push(hub, self);
    schedule(hub);
    return weft__waitctx_canceled(self == &hub->root ? &weft__thread_ctx : &self->wctx)
               ? WEFT_ECANCELED
               : 0;
}

int weft_time_sleep(double seconds)
{
    int64_t deadline;
    if (weft__deadline(seconds, &deadline)) return WEFT_EINVAL; /* NaN */
    /* 0 or a negative time (a deadline already passed): no wait, only a yield. */
    if (weft__timeout_polls(seconds)) return weft_co_yield();
    return weft__nap(deadline, false);
}

/* ---- coroutine-local data ---------------------------------------------------------------- */

static weft_co_t *local_owner(bool create)
{
    weft__hub_t *hub = create ? weft__hub_get() : tls_hub;
    return hub ? hub->current : NULL;
}

void *weft_co_local_get(const weft_co_key_t *key)
{
    weft_co_t *co = local_owner(false);
    if (!key || !co) return NULL;
    for (size_t i = 0; i < co->nlocals; i++)
        if (co->locals[i].key == key) return co->locals[i].value;
    return NULL;
}

int weft_co_local_set(const weft_co_key_t *key, void *value)
{
    if (!key) return WEFT_EINVAL;
    weft_co_t *co = local_owner(true);
    if (!co) return WEFT_ENOMEM;
    for (size_t i = 0; i < co->nlocals; i++)
        if (co->locals[i].key == key) {
            co->locals[i].value = value;
            return 0;
        }
    if (co->nlocals == co->caplocals) {
        size_t cap = co->caplocals ? co->caplocals * 2 : 4;
        weft__local_t *l = weft__realloc(co->locals, cap * sizeof *l);
        if (!l) return WEFT_ENOMEM;
        co->locals = l;
        co->caplocals = cap;
    }
    co->locals[co->nlocals++] = (weft__local_t){key, value};
    return 0;
}

/* ---- spawning onto another thread's hub (hubs.c) ----------------------------------------- */

int weft__co_prepare(weft__hub_t *hub, void (*fn)(void *arg), void *arg, const weft_co_opts_t *opts,
                     bool handle, weft_co_t **out)
{
    *out = NULL;
    size_t stack_size;
    int rc = check_opts(opts, &stack_size);
    if (rc) return rc;
    weft__watchdog_from_env();
    weft_co_t *co = weft__handle_calloc(sizeof *co);
    if (!co) return WEFT_ENOMEM;
    init_co(co, hub);
    atomic_store_explicit(&co->refs, handle ? 2 : 1, memory_order_relaxed);
    co->fn = fn;
    co->arg = arg;
    name_co(co, opts);
    /* What the launch needs, kept in the stack's fields until it maps one. */
    co->stack.size = weft__stack_round(stack_size);
    co->stack.guard = opts ? opts->guard : 0;
    /* Counted live from now on, so that its hub's load (weft__hub_load) counts it at once. */
    atomic_fetch_add_explicit(&hub->nlive, 1, memory_order_relaxed);
    WEFT__HANDLE_GIVE(handle ? co : NULL);
    *out = co;
    return 0;
}

/* A prepared coroutine that cannot start (no memory for its stack or timer slot, or its hub
 * is closing): it ends without running, as one canceled before its start. */
static void end_unlaunched(weft_co_t *co)
{
    atomic_fetch_sub_explicit(&co->hub->nlive, 1, memory_order_relaxed);
    weft__waitq_lock(&co->joiners);
    atomic_store_explicit(&co->state, WEFT_CO_DONE, memory_order_release);
    weft__waiter_t *list = weft__waitq_take(&co->joiners, -1, 0);
    weft__waitq_unlock(&co->joiners);
    weft__waiters_wake(list);
    co_unref(co);
}

bool weft__co_launch(weft_co_t *co)
{
    weft__hub_t *hub = co->hub;
    size_t rounded = co->stack.size;
    int guard = co->stack.guard;
    co->stack = (weft__stack_t){0};
    if (hub->closing ||
        timer_reserve(hub, atomic_load_explicit(&hub->nlive, memory_order_relaxed) + 2)) {
        end_unlaunched(co);
        return false;
    }
    if (take_stack(hub, &co->stack, rounded, guard) != 0) {
        end_unlaunched(co);
        return false;
    }
    start_co(hub, co); /* (counted in nlive since weft__co_prepare) */
    return true;
}

size_t weft__hub_load(weft__hub_t *hub)
{
    return atomic_load_explicit(&hub->nlive, memory_order_relaxed);
}

void weft__hub_drain(int64_t deadline)
{
    weft__hub_t *hub = tls_hub;
    if (!hub || hub->current != &hub->root) return;
    while (!weft__list_empty(&hub->all)) {
        weft_co_t *co = weft_co_retain(all_next(hub, NULL));
        int rc = weft_co_join(co, weft__deadline_remaining(deadline));
        weft_co_release(co);
        if (rc) break; /* out of time */
    }
}
