/*
 * thread_pool.c — the thread-pool executor backend (ThreadPoolExecutor).
 *
 * Data structure: one FIFO of queued futures (linked through future->node) shared by all
 * workers, the list of idle workers parked on it (a wait list whose waiters live in the worker
 * structs), and the worker slots. One mutex, `lock`, guards all of it. Tasks start in
 * submission order.
 *
 * Scheduling (chosen by measurement, docs/BENCHMARKS.md): at most one idle worker spins,
 * watching the FIFO for the waiting core's spin budget before it parks; the others park
 * without spinning. A submit queues the task for a spinning worker not yet counted on (it
 * will take it, at no wake-up cost; one task per spinner, so a burst still spreads over
 * every worker), and otherwise hands it straight to the most recently parked idle worker
 * (LIFO: a wake-up either way, and its cache is the warmest). A worker that takes a task and
 * leaves more queued, with nobody spinning, hands the next one to a parked worker, so a
 * backlog is never run by fewer workers than it could be. Why: on few CPUs, several spinning
 * workers take the CPU the submitter needs (3 runnable threads on 2 CPUs halved throughput),
 * and a wake-up per task (one handoff each) costs more than the task; one spinner gives
 * streams of short tasks a worker that needs no wake-up and keeps the rest asleep.
 *
 * Workers start lazily: a submit that finds no idle worker starts one if fewer than
 * max_workers exist (Python's _adjust_thread_count). They are daemon weft threads and live
 * until shutdown, then drain the FIFO and exit.
 *
 * A worker's start is in flight while its slot has no thread yet: the submitter that reserved
 * it is inside weft_thread_start (parked there, if it is a coroutine). A shutdown that must
 * wait for the workers parks on `starts` until start_worker settles the slot (thread set, or
 * slot freed), never spins: the starter may be a coroutine of the shutdown's own thread.
 *
 * Lifetime: `refs` counts the user's handle plus one per started worker; the last one frees
 * the pool, so destroy never waits. Every pool is on a global list (pools_lock) for the exit
 * handler, which bounds how long a pool can delay exit, and for the fork handlers, which hold
 * every pool's lock across fork so the child sees consistent pools. In the child no worker
 * exists: a pool there is broken (submit fails with WEFT_EBROKEN) and its queued and running
 * futures are failed the next time it is used (WEFT_EBROKEN, WEFT_EWORKERDIED).
 *
 * Lock order: pools_lock, then a pool's lock, then a future's lock.
 */
#include "executor_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft/thread.h"

typedef struct pool pool_t;

typedef struct worker {
    pool_t *pool;
    size_t index;
    weft_thread_t *thread;  /* NULL while starting */
    weft_future_t *running; /* the future it runs (the queue's reference), or NULL */
    weft__waiter_t idle;    /* on pool->idle while parked; data: the future handed over */
} worker_t;

struct pool {
    weft_executor_t base;
    _Atomic uint32_t refs;
    weft__mutex_t lock;
    weft_waitq_t idle;   /* idle workers (a list only: `lock` guards it) */
    weft_waitq_t starts; /* shutdowns waiting for a worker's start to settle (ditto) */
    weft__list_t fifo;   /* queued futures, each holding one reference */
    bool shut, exit_handled, forked;
    bool spinning;             /* an idle worker watches the FIFO instead of parking (one) */
    bool spinner_free;         /* ... and no submit has counted on it yet */
    _Atomic bool queued;       /* fifo not empty: what a spinning worker watches */
    int broken;                /* 0, or the error submit reports (WEFT_EBROKEN) */
    size_t max_workers, nlive; /* nlive: workers reserved, starting or running */
    worker_t **slots;          /* [nslots]; NULL: a slot whose start failed */
    size_t nslots, cap;
    int (*initializer)(void *);
    void *initarg;
    size_t stack_size;
    double exit_timeout;
    char prefix[WEFT__WORKER_NAME_MAX]; /* of the workers' names, as far as it can be kept */
    pool_t *prev, *next;                /* the global list, under pools_lock */
};

static weft__mutex_t pools_lock = WEFT__MUTEX_INIT;
static pool_t *pools;

static const char broken_message[] =
    "a thread initializer failed, the thread pool is not usable anymore";

/* ---- the FIFO (caller holds pool->lock) --------------------------------------------------- */

static void fifo_push(pool_t *p, weft_future_t *f)
{
    weft__list_push_back(&p->fifo, &f->node);
    /* Relaxed: a hint for the spinner, which re-checks under the lock. */
    atomic_store_explicit(&p->queued, true, memory_order_relaxed);
}

static weft_future_t *fifo_pop(pool_t *p)
{
    weft_future_t *f = weft__future_of(weft__list_pop_front(&p->fifo));
    if (f && weft__list_empty(&p->fifo))
        atomic_store_explicit(&p->queued, false, memory_order_relaxed);
    return f;
}

/* Takes the whole FIFO as a list. */
static weft__list_t fifo_take(pool_t *p)
{
    weft__list_t list = p->fifo;
    p->fifo = (weft__list_t){0};
    atomic_store_explicit(&p->queued, false, memory_order_relaxed);
    return list;
}

/* Finishes every future of a list with code (or cancels them, code 0) and drops the
 * references the list held. */
static void settle_list(weft__list_t list, int code, const char *message)
{
    weft_future_t *f;
    while ((f = weft__future_of(weft__list_pop_front(&list)))) {
        if (code)
            weft_future_set_error(f, code, message);
        else
            weft_future_cancel(f);
        weft__future_unref(f);
    }
}

/* ---- life --------------------------------------------------------------------------------- */

static void pool_free(pool_t *p)
{
    weft__mutex_lock(&pools_lock);
    if (p->prev)
        p->prev->next = p->next;
    else
        pools = p->next;
    if (p->next) p->next->prev = p->prev;
    weft__mutex_unlock(&pools_lock);
    /* No worker is left, so nothing is queued (workers drain the FIFO before they exit)
     * except in a fork child or after every start failed: cancel those. */
    settle_list(fifo_take(p), 0, NULL);
    for (size_t i = 0; i < p->nslots; i++) {
        if (!p->slots[i]) continue;
        weft_thread_release(p->slots[i]->thread);
        weft__free(p->slots[i]);
    }
    weft__free(p->slots);
    weft__handle_free(p, &p->base.hd);
}

static void pool_unref(pool_t *p)
{
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) pool_free(p);
}

/* Wakes every idle worker with nothing handed over, so each re-checks the pool. The caller
 * holds the lock; returns the list to wake once it is dropped. */
static weft__waiter_t *take_idle(pool_t *p)
{
    return weft__waitq_take(&p->idle, -1, 0);
}

/* In a fork child: the workers are gone. Fail what they would have run (the caller holds
 * the lock; the lists are settled by the caller once it dropped it). */
static void reap_fork(pool_t *p, weft__list_t *queued, weft__list_t *running)
{
    *queued = *running = (weft__list_t){0};
    if (!p->forked) return;
    p->forked = false;
    p->broken = WEFT_EBROKEN;
    *queued = fifo_take(p);
    for (size_t i = 0; i < p->nslots; i++) {
        worker_t *w = p->slots[i];
        if (!w || !w->running) continue;
        weft__list_push_back(running, &w->running->node); /* not queued: its node is free */
        w->running = NULL;
    }
}

static void settle_reaped(weft__list_t queued, weft__list_t running)
{
    settle_list(queued, WEFT_EBROKEN, "the process forked: its thread pool's workers are gone");
    settle_list(running, WEFT_EWORKERDIED, "the process forked while the task ran");
}

/* ---- workers ------------------------------------------------------------------------------ */

/* An initializer failed: no worker will run anything again. */
static void break_pool(pool_t *p)
{
    weft__mutex_lock(&p->lock);
    p->broken = WEFT_EBROKEN;
    weft__list_t queued = fifo_take(p);
    weft__waiter_t *idle = take_idle(p);
    weft__mutex_unlock(&p->lock);
    weft__waiters_wake(idle);
    settle_list(queued, WEFT_EBROKEN, broken_message);
}

/* Pops the most recently parked idle worker and gives it f; the caller holds the lock and
 * wakes the returned waiter after dropping it. NULL if no worker is parked. */
static weft__waiter_t *hand_over(pool_t *p, weft_future_t *f)
{
    weft__waiter_t *idle = weft__waitq_last(&p->idle);
    if (!idle) return NULL;
    weft__waitq_remove(&p->idle, idle);
    weft__container_of(idle, worker_t, idle)->running = f;
    idle->data = (uintptr_t)f;
    return idle;
}

/* The spinning worker watches `queued` (without the lock) for the spin budget. */
static bool work_queued(const void *p)
{
    /* Relaxed: a hint; the worker looks at the FIFO again under the lock. */
    return atomic_load_explicit(&((const pool_t *)p)->queued, memory_order_relaxed);
}

static void spin_for_work(pool_t *p)
{
    weft__spin(work_queued, p, WEFT_NO_DEADLINE);
}

static void worker_main(void *arg)
{
    worker_t *w = arg;
    pool_t *p = w->pool;
    if (p->initializer && p->initializer(p->initarg)) {
        break_pool(p);
        weft__mutex_lock(&p->lock);
        p->nlive--;
        weft__mutex_unlock(&p->lock);
        pool_unref(p);
        return;
    }
    bool spun = false; /* has spun since its last task */
    weft__mutex_lock(&p->lock);
    for (;;) {
        weft_future_t *f = fifo_pop(p);
        if (!f) {
            if (p->shut || p->broken) break;
            if (!spun && !p->spinning && weft__spin_ns() > 0) {
                p->spinning = p->spinner_free = true;
                weft__mutex_unlock(&p->lock);
                spin_for_work(p);
                weft__mutex_lock(&p->lock);
                p->spinning = p->spinner_free = false;
                spun = true;
                continue;
            }
            weft__waiter_init(&w->idle);
            w->idle.nospin = true;
            weft__waitq_push(&p->idle, &w->idle);
            weft__mutex_unlock(&p->lock);
            /* No deadline, and nothing cancels an idle worker: a task's cancel is cleared
             * before its worker gets here. So the park ends with a wake. */
            weft__waiter_park_in(&p->lock, &p->idle, &w->idle, WEFT_NO_DEADLINE);
            f = (weft_future_t *)w->idle.data; /* `running` was set by hand_over */
            spun = false;
            if (!f) {
                weft__mutex_lock(&p->lock);
                continue;
            }
        } else {
            w->running = f;
            /* A backlog and nobody spinning: get a parked worker going on the next task. */
            weft_future_t *next = weft__future_of(p->fifo.head);
            weft__waiter_t *helper = next && !p->spinner_free ? hand_over(p, next) : NULL;
            if (helper) fifo_pop(p);
            weft__mutex_unlock(&p->lock);
            if (helper) weft__waiter_wake(helper);
        }
        weft__future_run(f);
        spun = false;
        weft__mutex_lock(&p->lock);
        w->running = NULL;
        /* The FIFO's reference; never the last while a caller holds theirs, and a plain
         * atomic decrement otherwise. Dropped under the lock: freeing a future takes no lock. */
        weft__future_unref(f);
    }
    p->nlive--;
    weft__mutex_unlock(&p->lock);
    pool_unref(p);
}

/* Reserves a slot for a new worker (the caller holds the lock and checked nlive <
 * max_workers). NULL when out of memory. */
static worker_t *reserve_worker(pool_t *p)
{
    size_t i = 0;
    while (i < p->nslots && p->slots[i]) i++;
    if (i == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 4;
        worker_t **slots = weft__realloc(p->slots, cap * sizeof *slots);
        if (!slots) return NULL;
        p->slots = slots;
        p->cap = cap;
    }
    worker_t *w = weft__calloc(1, sizeof *w);
    if (!w) return NULL;
    w->pool = p;
    w->index = i;
    p->slots[i] = w;
    if (i == p->nslots) p->nslots++;
    p->nlive++;
    return w;
}

/* Starts the reserved worker w. On failure the slot is freed again. */
static int start_worker(pool_t *p, worker_t *w)
{
    char name[WEFT__WORKER_NAME_MAX];
    weft__worker_name(name, p->prefix, w->index);
    weft_thread_opts_t opts = {.name = name, .daemon = true, .stack_size = p->stack_size};
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed); /* the worker's; see below */
    weft_thread_t *t;
    int rc = weft_thread_start(worker_main, w, &opts, &t);
    weft__mutex_lock(&p->lock);
    if (rc == 0) {
        w->thread = t;
    } else {
        p->slots[w->index] = NULL;
        p->nlive--;
    }
    weft__waiter_t *shutdowns = weft__waitq_take(&p->starts, -1, 0); /* the slot is settled */
    weft__mutex_unlock(&p->lock);
    weft__waiters_wake(shutdowns);
    if (rc) {
        weft__free(w);
        pool_unref(p); /* cannot be the last: the submitter's caller holds the handle */
    }
    return rc;
}

/* ---- the executor interface --------------------------------------------------------------- */

static int pool_submit(weft_executor_t *ex, weft_future_t *f)
{
    pool_t *p = (pool_t *)ex;
    weft__list_t queued, running;
    weft__mutex_lock(&p->lock);
    reap_fork(p, &queued, &running);
    int rc = p->shut ? WEFT_ESHUTDOWN : p->broken;
    if (rc) {
        weft__mutex_unlock(&p->lock);
        settle_reaped(queued, running);
        return rc;
    }
    /* A free spinner takes this task: queue it and count on that spinner, once. */
    bool for_spinner = p->spinner_free;
    p->spinner_free = false;
    weft__waiter_t *idle = for_spinner ? NULL : hand_over(p, f);
    if (idle) {
        weft__mutex_unlock(&p->lock);
        weft__waiter_wake(idle);
        return 0;
    }
    fifo_push(p, f);
    worker_t *w = !for_spinner && p->nlive < p->max_workers ? reserve_worker(p) : NULL;
    bool none = p->nlive == 0; /* out of memory for the only worker */
    weft__mutex_unlock(&p->lock);
    if (w)
        rc = start_worker(p, w);
    else if (none)
        rc = WEFT_ENOMEM;
    if (rc == 0) return 0;

    /* No worker started. If none runs at all, nothing would ever take f (or anything queued
     * with it): take f back and fail the rest. */
    weft__mutex_lock(&p->lock);
    weft__list_t stranded = p->nlive == 0 ? fifo_take(p) : (weft__list_t){0};
    weft__mutex_unlock(&p->lock);
    if (weft__list_empty(&stranded)) return 0; /* a running worker will take it */
    bool mine = false;
    for (weft__list_node_t *n = stranded.head; n && !mine; n = n->next) mine = n == &f->node;
    if (mine) weft__list_remove(&stranded, &f->node);
    settle_list(stranded, rc, "no worker thread could be started");
    return mine ? rc : 0;
}

static int pool_shutdown(weft_executor_t *ex, bool wait, bool cancel_futures, int64_t deadline)
{
    pool_t *p = (pool_t *)ex;
    weft__list_t queued, running;
    weft__mutex_lock(&p->lock);
    reap_fork(p, &queued, &running);
    p->shut = true;
    weft__list_t cancel = cancel_futures ? fifo_take(p) : (weft__list_t){0};
    weft__waiter_t *idle = take_idle(p);
    weft__mutex_unlock(&p->lock);
    weft__waiters_wake(idle);
    settle_reaped(queued, running);
    settle_list(cancel, 0, NULL);
    if (!wait) return 0;

    weft_thread_t *me = weft_thread_current();
    for (size_t i = 0;;) {
        weft__mutex_lock(&p->lock);
        if (i == p->nslots) {
            weft__mutex_unlock(&p->lock);
            return 0;
        }
        worker_t *w = p->slots[i];
        if (w && !w->thread) {
            /* Its start is in flight (the worker will see `shut` and exit): wait until
             * start_worker settles the slot, then look at it again. */
            weft__waiter_t settled;
            weft__waiter_init(&settled);
            weft__waitq_push(&p->starts, &settled);
            weft__mutex_unlock(&p->lock);
            int rc = weft__waiter_park_in(&p->lock, &p->starts, &settled, deadline);
            if (rc) return rc;
            continue;
        }
        weft_thread_t *t = w ? weft_thread_retain(w->thread) : NULL;
        weft__mutex_unlock(&p->lock);
        int rc = t && t != me ? weft_thread_join(t, weft__deadline_remaining(deadline)) : 0;
        weft_thread_release(t);
        if (rc) return rc;
        i++;
    }
}

static void pool_destroy(weft_executor_t *ex)
{
    pool_shutdown(ex, false, false, 0);
    pool_unref((pool_t *)ex);
}

static const weft__executor_ops_t pool_ops = {pool_submit, pool_shutdown, pool_destroy};

/* ---- exit and fork ------------------------------------------------------------------------- */

/* Cancels what the workers of p are running (they are asked to stop). */
static void cancel_running(pool_t *p)
{
    for (size_t i = 0;; i++) {
        weft__mutex_lock(&p->lock);
        if (i >= p->nslots) {
            weft__mutex_unlock(&p->lock);
            return;
        }
        weft_future_t *f = p->slots[i] ? weft_future_retain(p->slots[i]->running) : NULL;
        weft__mutex_unlock(&p->lock);
        weft_future_cancel(f);
        weft_future_release(f);
    }
}

/* At exit: every pool that was never shut down gets its exit_timeout to finish, then its
 * queued futures are cancelled and its running tasks asked to stop. Pools shut down without
 * waiting are left alone (gh-80961). Never blocks longer than the pools' exit timeouts (only
 * a pool whose exit_timeout is WEFT_FOREVER waits for its tasks, however long they take). */
static void pools_at_exit(void)
{
    for (;;) {
        weft__mutex_lock(&pools_lock);
        pool_t *p = pools;
        while (p && p->exit_handled) p = p->next;
        if (p) {
            p->exit_handled = true;
            atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
        }
        weft__mutex_unlock(&pools_lock);
        if (!p) return;
        weft__mutex_lock(&p->lock);
        bool open = !p->shut;
        weft__mutex_unlock(&p->lock);
        if (open) {
            int64_t deadline;
            weft__deadline(p->exit_timeout, &deadline); /* NaN was refused at create */
            /* No time (0, negative): no wait; WEFT_FOREVER: as long as the tasks take. */
            pool_shutdown(&p->base, !weft__timeout_polls(p->exit_timeout), false, deadline);
            pool_shutdown(&p->base, false, true, 0);
            cancel_running(p);
        }
        pool_unref(p);
    }
}

/* Fork holds, besides every pool's lock, the lock of every future a pool owns (queued, or
 * running on a worker): those are the futures the child fails when it reaps the pool, and a
 * worker settling one, or a caller queueing itself on one, holds its lock for a moment at any
 * time. Taken after the pool's (the documented order); a holder of a future's lock never waits
 * for a pool's. */
static void lock_futures(pool_t *p, void (*op)(weft_waitq_t *q))
{
    for (weft__list_node_t *n = p->fifo.head; n; n = n->next) op(&weft__future_of(n)->waiters);
    for (size_t i = 0; i < p->nslots; i++)
        if (p->slots[i] && p->slots[i]->running) op(&p->slots[i]->running->waiters);
}

static void reinit_lock(weft_waitq_t *q)
{
    *weft__waitq_mutex(q) = (weft__mutex_t)WEFT__MUTEX_INIT;
}

static void fork_prepare(void)
{
    weft__mutex_lock(&pools_lock);
    for (pool_t *p = pools; p; p = p->next) {
        weft__mutex_lock(&p->lock);
        lock_futures(p, weft__waitq_lock);
    }
}

static void fork_parent(void)
{
    for (pool_t *p = pools; p; p = p->next) {
        lock_futures(p, weft__waitq_unlock);
        weft__mutex_unlock(&p->lock);
    }
    weft__mutex_unlock(&pools_lock);
}

/* The child's only thread: no worker exists here. Their references go, idle waiters (on the
 * dead workers' memory copies) are forgotten, and the pool is marked for reaping. */
static void fork_child(void)
{
    for (pool_t *p = pools; p; p = p->next) {
        lock_futures(p, reinit_lock);
        atomic_fetch_sub_explicit(&p->refs, (uint32_t)p->nlive, memory_order_relaxed);
        p->nlive = 0;
        p->idle = (weft_waitq_t)WEFT_WAITQ_INIT;
        p->starts = (weft_waitq_t)WEFT_WAITQ_INIT;
        p->forked = true;
        p->lock = (weft__mutex_t)WEFT__MUTEX_INIT;
    }
    pools_lock = (weft__mutex_t)WEFT__MUTEX_INIT;
}

static const weft__fork_hooks_t fork_hooks = {
    .rank = WEFT__LAYER_EXECUTOR,
    .prepare = fork_prepare,
    .parent = fork_parent,
    .child = fork_child,
};
static const weft__exit_rule_t exit_rule = {WEFT__LAYER_EXECUTOR, pools_at_exit};

/* Registers the exit rule and the fork hooks (not under pools_lock: a fork on another thread
 * holds the core's registry lock while its prepare hook takes pools_lock). */
static int register_handlers(void)
{
    int rc = weft__fork_register(&fork_hooks);
    return rc ? rc : weft__exit_register(&exit_rule);
}

/* ---- creation ------------------------------------------------------------------------------ */

int weft_thread_pool_create(size_t max_workers, const weft_thread_pool_opts_t *opts,
                            weft_executor_t **ex)
{
    if (!ex) return WEFT_EINVAL;
    *ex = NULL;
    weft_thread_pool_opts_t o = opts ? *opts : (weft_thread_pool_opts_t)WEFT_THREAD_POOL_OPTS_INIT;
    if (o.stack_size && o.stack_size < (size_t)PTHREAD_STACK_MIN) return WEFT_EINVAL;
    if (isnan(o.exit_timeout) || (o.exit_timeout < 0 && o.exit_timeout != WEFT_FOREVER))
        return WEFT_EINVAL; /* 0 is the default: exit does not wait */
    if (max_workers == 0) {
        int n = weft__ncpu() + 4;
        max_workers = n < 32 ? (size_t)n : 32;
    }
    int rc = register_handlers();
    if (rc) return rc;
    pool_t *p = weft__handle_calloc(sizeof *p);
    if (!p) return WEFT_ENOMEM;
    p->base.ops = &pool_ops;
    weft__handle_init(&p->base.hd, WEFT__ID_EXECUTOR, 1);
    atomic_init(&p->refs, 1);
    p->max_workers = max_workers;
    p->initializer = o.initializer;
    p->initarg = o.initarg;
    p->stack_size = o.stack_size;
    p->exit_timeout = o.exit_timeout;

    weft__mutex_lock(&pools_lock);
    p->next = pools;
    if (pools) pools->prev = p;
    pools = p;
    weft__mutex_unlock(&pools_lock);
    const char *prefix =
        o.thread_name_prefix && *o.thread_name_prefix ? o.thread_name_prefix : "weft_pool";
    snprintf(p->prefix, sizeof p->prefix, "%s", prefix); /* cut: no name keeps more */
    *ex = &p->base;
    return 0;
}
