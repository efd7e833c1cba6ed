/*
 * hubs.c — a hub per CPU (weft_hubs_t, weft/coro.h): N threads, each running a hub, and the
 * spawn of a coroutine from any thread onto one of them.
 *
 * A spawn prepares the coroutine on the spawning thread (weft__co_prepare: its descriptor,
 * no stack) and pushes it on its hub's `pending` stack (lock-free, linked through the
 * coroutine's `next`, which is free until the coroutine first parks). The hub thread's root
 * context loops: it launches what is pending (weft__co_launch maps the stack from the hub's
 * cache and queues the coroutine) and parks on its slot's wait queue until more is pending or
 * the stop comes. A spawner that finds `pending` empty wakes the root; one that finds it not
 * empty knows the root will look again. Only the hub's thread touches the hub's lists.
 *
 * Stop: `stopping` is raised, then the stopper waits until no spawner is between its check
 * of `stopping` and its push (`inflight`, both sides sequentially consistent: a spawner that
 * counted itself in before the flag went up pushes; one after it sees the flag). Then each
 * root launches the last pending coroutines, joins its hub's coroutines until the deadline
 * (weft__hub_drain), and destroys its hub (weft__hub_shutdown: the rest are canceled and run
 * to their end), counts itself done and ends; the stopper joins the threads.
 *
 * Fork: a child hook bumps `fork_gen`; a set started under another generation belongs to the
 * parent (its threads are not in the child).
 */
#include "coro_internal.h"
#include "../core/sys_internal.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

enum { H_RUNNING, H_STOPPING, H_STOPPED };

typedef struct slot {
    weft__mutex_t lock; /* guards q and the root's check */
    weft_waitq_t q;     /* the root, parked */
    _Atomic(weft_co_t *) pending;
    _Atomic(weft__hub_t *) hub;
    _Atomic bool stop;
    pthread_t thread;
    bool started; /* the thread was created */
    struct weft_hubs *set;
    size_t index;
    int cpu; /* -1: not pinned */
} slot_t;

struct weft_hubs {
    weft__mutex_t lock; /* state, nready, ndone, and the waits below */
    weft_waitq_t waits; /* start waiting for the threads, stop for their end, other stoppers */
    int state;
    size_t nready, ndone, nfailed;
    _Atomic bool stopping;
    _Atomic size_t inflight; /* spawners between their check of `stopping` and their push */
    _Atomic size_t next;     /* round robin among equally loaded hubs */
    int64_t deadline;        /* the stop's grace period, for the roots */
    unsigned gen;            /* fork_gen when started */
    weft__handle_t hd;
    size_t n;
    slot_t slots[];
};

static _Atomic unsigned fork_gen;

static void hubs_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_gen, 1, memory_order_relaxed);
}

static const weft__fork_hooks_t hubs_fork_hooks = {
    .rank = WEFT__LAYER_CORO,
    .child = hubs_fork_child,
};

static bool inherited(const struct weft_hubs *hs)
{
    return hs->gen != atomic_load_explicit(&fork_gen, memory_order_relaxed);
}

/* ---- the hub threads --------------------------------------------------------------------- */

static void launch_pending(slot_t *h)
{
    weft_co_t *list = atomic_exchange_explicit(&h->pending, NULL, memory_order_acquire);
    weft_co_t *rev = NULL;
    while (list) { /* oldest first */
        weft_co_t *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        weft_co_t *next = rev->next;
        rev->next = NULL;
        weft__co_launch(rev);
        rev = next;
    }
}

static int root_has_work(void *p)
{
    slot_t *h = p;
    return atomic_load_explicit(&h->pending, memory_order_relaxed) ||
                   atomic_load_explicit(&h->stop, memory_order_relaxed)
               ? 0
               : WEFT__WAIT_PARK;
}

/* Wakes every waiter of the set's `waits` (after a change of state, ready or done). */
static void set_changed(struct weft_hubs *hs)
{
    weft__waiter_t *list = weft__waitq_take(&hs->waits, -1, 0);
    weft__mutex_unlock(&hs->lock);
    weft__waiters_wake(list);
}

static void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)sched_setaffinity(0, sizeof set, &set); /* a hint: the thread runs anyway */
}

static void *hub_main(void *p)
{
    slot_t *h = p;
    struct weft_hubs *hs = h->set;
    char name[16];
    snprintf(name, sizeof name, "weft-hub-%zu", h->index);
    pthread_setname_np(pthread_self(), name);
    if (h->cpu >= 0) pin_to(h->cpu);
    weft__hub_t *hub = weft__hub_get();
    atomic_store_explicit(&h->hub, hub, memory_order_release);
    weft__mutex_lock(&hs->lock);
    hs->nready++;
    if (!hub) hs->nfailed++, hs->ndone++;
    set_changed(hs);
    if (!hub) return NULL;
    for (;;) {
        launch_pending(h);
        if (atomic_load_explicit(&h->stop, memory_order_acquire)) break;
        weft__waiter_t w;
        weft__waiter_init(&w);
        w.nocancel = true;
        /* In a forked child only this thread is left (the child of a fork in one of the hub's
         * coroutines): nothing can spawn or stop here any more, so once its wait ends ("nothing
         * can wake us", WEFT_EDEADLK) the hub ends as a stopped one does, and with this thread
         * the child. In the parent the loop looks again, whatever ended the wait. */
        (void)weft__wait_until(&h->lock, &h->q, &w, root_has_work, h, WEFT_NO_DEADLINE);
        if (inherited(hs)) break;
    }
    bool child = inherited(hs);
    launch_pending(h); /* the last ones: no spawner pushes any more (see the stop) */
    weft__hub_drain(atomic_load_explicit(&h->stop, memory_order_acquire) ? hs->deadline : 0);
    atomic_store_explicit(&h->hub, NULL, memory_order_release);
    weft__hub_shutdown(); /* cancels the rest, runs them to their end, frees the hub */
    /* In a forked child the set belongs to the parent (its lock may have been held by a
     * thread the child does not have): this thread ends alone, and with it the child. */
    if (child) return NULL;
    weft__mutex_lock(&hs->lock);
    hs->ndone++;
    set_changed(hs);
    return NULL;
}

/* ---- start, spawn, load ------------------------------------------------------------------ */

static int all_ready(void *p)
{
    struct weft_hubs *hs = p;
    return hs->nready == hs->n ? 0 : WEFT__WAIT_PARK;
}

static int all_done(void *p)
{
    struct weft_hubs *hs = p;
    return hs->ndone == hs->nready ? 0 : WEFT__WAIT_PARK;
}

static int stopped(void *p)
{
    return ((struct weft_hubs *)p)->state == H_STOPPED ? 0 : WEFT__WAIT_PARK;
}

/* Waits on hs->waits until check holds, immune to cancellation. */
static void wait_for(struct weft_hubs *hs, int (*check)(void *))
{
    for (;;) {
        weft__waiter_t w;
        weft__waiter_init(&w);
        weft__waiter_on(&w, WEFT__ON_HUBS, hs);
        w.nocancel = true;
        if (weft__wait_until(&hs->lock, &hs->waits, &w, check, hs, WEFT_NO_DEADLINE) != 0) continue;
        weft__mutex_lock(&hs->lock);
        bool done = check(hs) == 0;
        weft__mutex_unlock(&hs->lock);
        if (done) return;
    }
}

/* The CPUs the process may use, in order: cpus[0..count). */
static size_t usable_cpus(int *cpus, size_t max)
{
    cpu_set_t set;
    size_t k = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE && k < max; c++)
            if (CPU_ISSET(c, &set)) cpus[k++] = c;
    return k;
}

/* Ends and joins the threads started so far (start's failure path, and the stop). */
static void end_threads(struct weft_hubs *hs, int64_t deadline)
{
    hs->deadline = deadline;
    for (size_t i = 0; i < hs->n; i++) {
        slot_t *h = &hs->slots[i];
        if (!h->started) continue;
        weft__mutex_lock(&h->lock);
        atomic_store_explicit(&h->stop, true, memory_order_release);
        weft__waiter_t *root = weft__waitq_take(&h->q, -1, 0);
        weft__mutex_unlock(&h->lock);
        weft__waiters_wake(root);
    }
    wait_for(hs, all_done);
    for (size_t i = 0; i < hs->n; i++)
        if (hs->slots[i].started) pthread_join(hs->slots[i].thread, NULL);
}

int weft_hubs_start(size_t n, const weft_hubs_opts_t *opts, weft_hubs_t **out)
{
    if (out) *out = NULL;
    if (!out || n > WEFT_HUBS_MAX) return WEFT_EINVAL;
    weft_hubs_opts_t o = {0};
    if (opts) o = *opts;
    for (size_t i = 0; i < sizeof o.reserved_ / sizeof o.reserved_[0]; i++)
        if (o.reserved_[i]) return WEFT_EINVAL;
    int mycpus[256];
    size_t ncpu = usable_cpus(mycpus, sizeof mycpus / sizeof mycpus[0]);
    if (n == 0) n = ncpu ? ncpu : 1;
    if (weft__fork_register(&hubs_fork_hooks)) return WEFT_ENOMEM;
    struct weft_hubs *hs = weft__handle_calloc(sizeof *hs + n * sizeof hs->slots[0]);
    if (!hs) return WEFT_ENOMEM;
    weft__handle_init(&hs->hd, WEFT__ID_HUBS, 1);
    hs->n = n;
    hs->gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
    hs->lock = (weft__mutex_t)WEFT__MUTEX_INIT;
    for (size_t i = 0; i < n; i++) {
        slot_t *h = &hs->slots[i];
        h->lock = (weft__mutex_t)WEFT__MUTEX_INIT;
        h->set = hs;
        h->index = i;
        h->cpu = o.pin && ncpu ? mycpus[i % ncpu] : -1;
    }
    /* The threads run only their hubs: no signal sent to the process is delivered to them. The
     * ones a fault raises stay open (a blocked SIGSEGV would kill without running a handler,
     * the stack overflow report's included). */
    sigset_t all, old;
    sigfillset(&all);
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigdelset(&all, faults[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    size_t started = 0;
    for (; started < n; started++) {
        slot_t *h = &hs->slots[started];
        int e = weft__sys_pthread_create(&h->thread, NULL, hub_main, h);
        if (e) {
            rc = e == EAGAIN ? WEFT_EAGAIN : weft__errno(e);
            break;
        }
        h->started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0) {
        wait_for(hs, all_ready);
        if (hs->nfailed) rc = WEFT_ENOMEM;
    } else {
        weft__mutex_lock(&hs->lock);
        hs->n = started; /* wait for the ones that run */
        weft__mutex_unlock(&hs->lock);
        wait_for(hs, all_ready);
    }
    if (rc) {
        end_threads(hs, 0);
        weft__handle_free(hs, &hs->hd);
        return rc;
    }
    *out = hs;
    return 0;
}

size_t weft_hubs_count(const weft_hubs_t *hs)
{
    WEFT__HANDLE_CHECK(hs, WEFT__ID_HUBS, "hubs");
    return hs ? hs->n : 0;
}

/* Hub i's load; hs->inflight or hs->lock keeps its hub alive. */
static size_t load_of(slot_t *h)
{
    weft__hub_t *hub = atomic_load_explicit(&h->hub, memory_order_acquire);
    return hub ? weft__hub_load(hub) : 0; /* (pending ones included: weft__co_prepare) */
}

static size_t least_loaded(struct weft_hubs *hs)
{
    size_t n = hs->n;
    size_t start = atomic_fetch_add_explicit(&hs->next, 1, memory_order_relaxed) % n;
    size_t best = start, best_load = SIZE_MAX;
    for (size_t k = 0; k < n; k++) {
        size_t i = start + k < n ? start + k : start + k - n;
        size_t l = load_of(&hs->slots[i]);
        if (l < best_load) {
            best = i;
            best_load = l;
            if (l == 0) break;
        }
    }
    return best;
}

int weft_hubs_spawn(weft_hubs_t *hs, int hub, void (*fn)(void *arg), void *arg,
                    const weft_co_opts_t *opts, weft_co_t **co)
{
    WEFT__HANDLE_CHECK(hs, WEFT__ID_HUBS, "hubs");
    if (co) *co = NULL;
    if (!hs || !fn || hub < WEFT_HUBS_ANY || (hub >= 0 && (size_t)hub >= hs->n)) return WEFT_EINVAL;
    if (inherited(hs)) return WEFT_EBROKEN;
    atomic_fetch_add_explicit(&hs->inflight, 1, memory_order_seq_cst);
    int rc = 0;
    if (atomic_load_explicit(&hs->stopping, memory_order_seq_cst)) {
        rc = WEFT_ESHUTDOWN;
        goto out;
    }
    slot_t *h = &hs->slots[hub == WEFT_HUBS_ANY ? least_loaded(hs) : (size_t)hub];
    weft__hub_t *target = atomic_load_explicit(&h->hub, memory_order_acquire);
    if (target == weft__hub_current() && weft_co_current()) {
        /* A coroutine of that very hub: an ordinary spawn, on its own thread. */
        rc = weft_co_spawn(fn, arg, opts, co);
        goto out;
    }
    weft_co_t *c;
    rc = weft__co_prepare(target, fn, arg, opts, co != NULL, &c);
    if (rc) goto out;
    weft_co_t *head = atomic_load_explicit(&h->pending, memory_order_relaxed);
    do c->next = head;
    while (!atomic_compare_exchange_weak_explicit(&h->pending, &head, c, memory_order_release,
                                                  memory_order_relaxed));
    if (co) *co = c;
    if (!head) { /* the root may be parked: wake it */
        weft__mutex_lock(&h->lock);
        weft__waiter_t *root = weft__waitq_take(&h->q, 1, 0);
        weft__mutex_unlock(&h->lock);
        weft__waiters_wake(root);
    }
out:
    atomic_fetch_sub_explicit(&hs->inflight, 1, memory_order_seq_cst);
    return rc;
}

int weft_hubs_load(weft_hubs_t *hs, size_t hub, size_t *load)
{
    WEFT__HANDLE_CHECK(hs, WEFT__ID_HUBS, "hubs");
    if (load) *load = 0;
    if (!hs || !load || hub >= hs->n) return WEFT_EINVAL;
    if (inherited(hs)) return 0;
    /* Counted in, the hub cannot go before the stop has seen us out. */
    atomic_fetch_add_explicit(&hs->inflight, 1, memory_order_seq_cst);
    if (!atomic_load_explicit(&hs->stopping, memory_order_seq_cst))
        *load = load_of(&hs->slots[hub]);
    atomic_fetch_sub_explicit(&hs->inflight, 1, memory_order_seq_cst);
    return 0;
}

/* ---- stop and release -------------------------------------------------------------------- */

int weft_hubs_stop(weft_hubs_t *hs, double timeout)
{
    WEFT__HANDLE_CHECK(hs, WEFT__ID_HUBS, "hubs");
    if (!hs || isnan(timeout)) return WEFT_EINVAL;
    if (inherited(hs)) return WEFT_EBROKEN;
    int64_t deadline;
    weft__deadline(timeout, &deadline);
    weft__hub_t *mine = weft__hub_current();
    for (size_t i = 0; mine && i < hs->n; i++)
        if (atomic_load_explicit(&hs->slots[i].hub, memory_order_acquire) == mine)
            return WEFT_EDEADLK; /* it would wait for itself */
    weft__mutex_lock(&hs->lock);
    if (hs->state != H_RUNNING) { /* another stop: wait for it */
        weft__mutex_unlock(&hs->lock);
        wait_for(hs, stopped);
        return 0;
    }
    hs->state = H_STOPPING;
    weft__mutex_unlock(&hs->lock);
    atomic_store_explicit(&hs->stopping, true, memory_order_seq_cst);
    for (int i = 1; atomic_load_explicit(&hs->inflight, memory_order_seq_cst); i++) {
        if (i % 64 == 0) /* a spawner between two atomics: a few instructions */
            sched_yield();
        else
            weft__cpu_relax();
    }
    end_threads(hs, deadline);
    weft__mutex_lock(&hs->lock);
    hs->state = H_STOPPED;
    set_changed(hs);
    return 0;
}

int weft_hubs_release(weft_hubs_t *hs)
{
    WEFT__HANDLE_RELEASE(hs, WEFT__ID_HUBS, "hubs");
    if (!hs) return WEFT_EINVAL;
    if (!inherited(hs)) {
        weft__mutex_lock(&hs->lock);
        int state = hs->state;
        weft__mutex_unlock(&hs->lock);
        if (state != H_STOPPED) {
            WEFT__HANDLE_GIVE(hs); /* nothing happened: still the program's */
            return WEFT_EBUSY;
        }
    }
    weft__handle_free(hs, &hs->hd);
    return 0;
}
