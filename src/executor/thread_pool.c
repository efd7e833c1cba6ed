/*
 * thread_pool.c — the thread-pool executor backend (ThreadPoolExecutor).
 *
 * Data structure: one FIFO of queued futures shared by all workers, the list of idle workers
 * parked on it (a wait list whose waiters live in the worker structs), and the worker slots.
 * Tasks start in submission order.
 *
 * The FIFO is a two-lock queue (Michael & Scott's, with Vyukov's intrusive dummy node): futures
 * are linked through future->link; the pool's `dummy` link keeps it from ever running out of
 * links. Submitters append under `tail_lock`; workers take from the head under `head_lock`, so
 * a submit never waits for a worker taking a task, nor the other way round, while the queue
 * holds more than one task. A worker that takes the last task takes `tail_lock` too, to put
 * the dummy back behind it. Under `tail_lock`, the queue is empty exactly when `tail` is the
 * dummy; a spinning worker watches `tail` for that (a hint: it takes the task under the lock).
 *
 * Scheduling (chosen by measurement, docs/BENCHMARKS.md): at most one idle worker spins,
 * watching the FIFO for the waiting core's spin budget before it parks; the others park
 * without spinning. A submit queues the task and then looks at three hints, without a lock:
 * a spinning worker not yet counted on takes it (the submit counts on it, once: one task per
 * spinner, so a burst still spreads over every worker); else, if a worker is parked, the most
 * recently parked one is woken (LIFO: its cache is the warmest); else, if fewer than
 * max_workers exist, one is started (Python's _adjust_thread_count); else every worker is busy
 * and one of them takes the task when it is done. A worker that takes a task and leaves more
 * queued, with nobody spinning, wakes a parked worker, so a backlog is never run by fewer
 * workers than it could be. Why: on few CPUs, several spinning workers take the CPU the
 * submitter needs (3 runnable threads on 2 CPUs halved throughput), and a wake-up per task
 * costs more than the task; one spinner gives streams of short tasks a worker that needs no
 * wake-up and keeps the rest asleep, and a stream that keeps every worker busy costs a submit
 * no lock but the tail's.
 *
 * No lost wake-up (Dekker's pattern, all four accesses seq_cst): a submitter stores the new
 * tail, then reads `spinner` and `nsleep`; a worker that parks stores its count in `nsleep`,
 * then reads the tail again. So either the submitter sees the worker (and wakes it) or the
 * worker sees the task. A submit counts on a spinner only by CAS, which fails once the spinner
 * stopped spinning (and then the submit wakes or starts a worker itself).
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
 * every pool's locks across fork so the child sees consistent pools. In the child no worker
 * exists: a pool there is broken (submit fails with WEFT_EBROKEN) and its queued and running
 * futures are failed the next time it is used (WEFT_EBROKEN, WEFT_EWORKERDIED).
 *
 * Locks: `pools_lock` guards the global list and each pool's `exit_handled`; `lock` the slots,
 * the idle list, `starts` and the flags (shut, broken, forked); `head_lock` the head and each
 * worker's `running`; `tail_lock` the tail and `closed` (shut, broken or forked: written under all
 * three locks, so any one of them is enough to read it); `spare_lock` the spare futures. Order:
 * pools_lock, a pool's lock, head_lock, tail_lock, spare_lock, a future's lock.
 *
 * Futures (not in debug builds, whose handle quarantine needs each one freed) come from the
 * pool's bin (weft__future_bin_t, executor_internal.h): a future's last release returns it
 * there, and the next submits reuse it, so a stream of tasks costs no malloc, free or fresh
 * page per task. The pool keeps at most 2 * SPARE_MAX of them between bursts; its memory goes
 * with the last future it made.
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
    weft__waiter_t idle;    /* on pool->idle while parked */
} worker_t;

/* The spinner word: no worker spins; one spins and no submit counted on it yet; one spins and
 * a submit counted on it (the next submits wake or start another worker). */
enum { SPIN_NONE = 0, SPIN_FREE = 1, SPIN_TAKEN = 2 };

struct pool {
    weft_executor_t base;
    _Atomic uint32_t refs;
    weft__mutex_t lock;
    weft_waitq_t idle;   /* idle workers (a list only: `lock` guards it) */
    weft_waitq_t starts; /* shutdowns waiting for a worker's start to settle (ditto) */
    bool shut, forked;
    int broken;                /* 0, or the error submit reports (WEFT_EBROKEN) */
    size_t max_workers, nlive; /* nlive: workers reserved, starting or running */
    worker_t **slots;          /* [nslots]; NULL: a slot whose start failed */
    size_t nslots, cap;
    int (*initializer)(void *);
    void *initarg;
    size_t stack_size;
    double exit_timeout;
    char prefix[WEFT__WORKER_NAME_MAX]; /* of the workers' names, as far as it can be kept */
    /* Under pools_lock, away from the flags `lock` guards (a compiler may read those with one
     * wider load, which a race detector would see overlap a write of this one). */
    weft__list_node_t link; /* on `pools` */
    bool exit_handled;

    /* What every submit reads, apart from the lines the workers and the submitters write
     * (the pads keep them on cache lines of their own). Relaxed hints, written under `lock`
     * (`spinner` by CAS); see "No lost wake-up". */
    char pad0_[64];
    _Atomic uint32_t spinner; /* SPIN_* */
    _Atomic uint32_t nsleep;  /* workers on `idle` */
    _Atomic bool full;        /* nlive == max_workers: no worker to start */
    char pad1_[64];
    /* The head: workers. */
    weft__mutex_t head_lock;
    weft__task_link_t *head;
    char pad2_[64];
    /* The tail: submitters. */
    weft__mutex_t tail_lock;
    _Atomic bool closed;             /* shut, broken or forked: submit takes the slow way */
    weft__task_link_t *_Atomic tail; /* the dummy: empty (under tail_lock; else a hint) */
    weft__task_link_t dummy;
    char pad3_[64];
    /* Recycled futures (not in debug builds): submitters take them from `spare`, filled from
     * the bin's `returned` when empty, under spare_lock; `made` counts the futures made from
     * the bin (see weft__future_bin_t). */
    weft__mutex_t spare_lock;
    weft__task_link_t *spare;
    uint64_t made;
    weft__future_bin_t bin;
    char pad4_[64];
};

/* The most futures a pool's bin takes back (the submitters' spares hold as many again): 2^18,
 * ~52 MiB. A future released beyond them is freed. */
enum { SPARE_MAX = 1 << 18 };

static weft__mutex_t pools_lock = WEFT__MUTEX_INIT;
static weft__list_t pools; /* every pool not freed (pool_t.link), the newest first */

/* The pool after p on `pools` (the first for NULL); the caller holds pools_lock. */
static pool_t *pools_next(pool_t *p)
{
    weft__list_node_t *n = p ? weft__list_next(&p->link) : weft__list_first(&pools);
    return n ? weft__container_of(n, pool_t, link) : NULL;
}

static const char broken_message[] =
    "a thread initializer failed, the thread pool is not usable anymore";

/* ---- the FIFO ----------------------------------------------------------------------------- */

static weft_future_t *future_of_link(weft__task_link_t *l)
{
    return weft__container_of(l, weft_future_t, link);
}

static void fifo_reset(pool_t *p)
{
    atomic_store_explicit(&p->dummy.next, NULL, memory_order_relaxed);
    p->head = &p->dummy;
    atomic_store_explicit(&p->tail, &p->dummy, memory_order_relaxed);
}

/* Appends f (the caller holds tail_lock). The link is published before the tail, so a worker
 * that sees the new tail finds the link too; the tail's store is seq_cst ("No lost wake-up"). */
static void fifo_push(pool_t *p, weft_future_t *f)
{
    atomic_store_explicit(&f->link.next, NULL, memory_order_relaxed);
    weft__task_link_t *t = atomic_load_explicit(&p->tail, memory_order_relaxed);
    atomic_store_explicit(&t->next, &f->link, memory_order_release);
    atomic_store_explicit(&p->tail, &f->link, memory_order_seq_cst);
}

/* Empty, as a hint (exact under tail_lock). seq_cst: "No lost wake-up". */
static bool fifo_empty(pool_t *p)
{
    return atomic_load_explicit(&p->tail, memory_order_seq_cst) == &p->dummy;
}

/* Takes the oldest future (the caller holds head_lock), or NULL when none is queued. */
static weft_future_t *fifo_pop(pool_t *p)
{
    weft__task_link_t *h = p->head;
    weft__task_link_t *n = atomic_load_explicit(&h->next, memory_order_acquire);
    if (h == &p->dummy) {
        if (!n) return NULL;
        p->head = h = n;
        n = atomic_load_explicit(&h->next, memory_order_acquire);
    }
    if (!n) {
        /* h is the last one, unless a submit is appending behind it: put the dummy behind it,
         * under the tail's lock, so that the queue keeps a link when h leaves. */
        weft__mutex_lock(&p->tail_lock);
        if (atomic_load_explicit(&p->tail, memory_order_relaxed) == h) {
            atomic_store_explicit(&p->dummy.next, NULL, memory_order_relaxed);
            atomic_store_explicit(&h->next, &p->dummy, memory_order_relaxed);
            atomic_store_explicit(&p->tail, &p->dummy, memory_order_relaxed);
        }
        weft__mutex_unlock(&p->tail_lock);
        n = atomic_load_explicit(&h->next, memory_order_acquire);
    }
    p->head = n;
    return future_of_link(h);
}

/* Whether more futures are queued after a pop (the caller holds head_lock). */
static bool fifo_more(pool_t *p)
{
    return p->head != &p->dummy ||
           atomic_load_explicit(&p->dummy.next, memory_order_acquire) != NULL;
}

void weft__thread_pools_visit(void (*fn)(const weft__pool_task_view_t *v, void *arg), void *arg)
{
    weft__mutex_lock(&pools_lock);
    for (pool_t *p = pools_next(NULL); p; p = pools_next(p)) {
        weft__mutex_lock(&p->lock);
        weft__mutex_lock(&p->head_lock);
        for (size_t i = 0; i < p->nslots; i++) {
            worker_t *w = p->slots[i];
            if (!w || !w->running) continue;
            weft_future_t *f = w->running; /* the queue's reference: alive under head_lock */
            weft__waitq_lock(&f->waiters);
            weft__pool_task_view_t v = {&p->base, f, true, w->index, w->thread, f->runner, 0};
            weft__waitq_unlock(&f->waiters);
            fn(&v, arg);
        }
        weft__mutex_lock(&p->tail_lock); /* both ends held: the links between them stay put */
        for (weft__task_link_t *l = p->head; l;
             l = atomic_load_explicit(&l->next, memory_order_relaxed)) {
            if (l == &p->dummy) continue;
            weft__pool_task_view_t v = {&p->base, future_of_link(l), false, SIZE_MAX, NULL, NULL,
                                        0};
            fn(&v, arg);
        }
        weft__mutex_unlock(&p->tail_lock);
        weft__mutex_unlock(&p->head_lock);
        weft__mutex_unlock(&p->lock);
    }
    weft__mutex_unlock(&pools_lock);
}

/* Takes the whole FIFO as a list (through future->node); the caller holds both queue locks. */
static weft__list_t fifo_take(pool_t *p)
{
    weft__list_t list = {0};
    for (weft__task_link_t *l = p->head, *next; l; l = next) {
        next = atomic_load_explicit(&l->next, memory_order_relaxed);
        if (l != &p->dummy) weft__list_push_back(&list, &future_of_link(l)->node);
    }
    fifo_reset(p);
    return list;
}

/* Takes the whole FIFO, taking the queue locks (the caller holds `lock`). */
static weft__list_t fifo_take_locked(pool_t *p)
{
    weft__mutex_lock(&p->head_lock);
    weft__mutex_lock(&p->tail_lock);
    weft__list_t list = fifo_take(p);
    weft__mutex_unlock(&p->tail_lock);
    weft__mutex_unlock(&p->head_lock);
    return list;
}

/* Marks the pool closed for submits and workers (the caller holds `lock`). */
static void close_pool(pool_t *p)
{
    weft__mutex_lock(&p->head_lock);
    weft__mutex_lock(&p->tail_lock);
    atomic_store_explicit(&p->closed, true, memory_order_relaxed); /* read under a lock */
    weft__mutex_unlock(&p->tail_lock);
    weft__mutex_unlock(&p->head_lock);
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

/* nlive changed (the caller holds `lock`): the hint of whether a worker can be started. */
static void set_nlive(pool_t *p, size_t n)
{
    p->nlive = n;
    atomic_store_explicit(&p->full, n >= p->max_workers, memory_order_relaxed); /* a hint */
}

/* The bin's count reached 0: the pool is gone and so is every future it made. */
static void bin_release(weft__future_bin_t *bin)
{
    pool_t *p = weft__container_of(bin, pool_t, bin);
    weft__future_free_returned(p->spare);
    weft__future_free_returned(
        atomic_exchange_explicit(&bin->returned, NULL, memory_order_acquire));
    weft__handle_free(p, &p->base.hd);
}

#ifndef WEFT_DEBUG
/* Moves the futures returned to the bin to `spare` (the caller holds spare_lock and found it
 * empty). */
static void take_returned(pool_t *p)
{
    p->spare = atomic_exchange_explicit(&p->bin.returned, NULL, memory_order_acquire);
}

/* The thread pool's future maker (weft_executor.make): a returned future if there is one, else
 * a fresh one. */
static weft_future_t *pool_make(weft_executor_t *ex, weft_task_fn fn, void *arg, uint32_t refs)
{
    pool_t *p = (pool_t *)ex;
    weft__mutex_lock(&p->spare_lock);
    if (!p->spare) take_returned(p);
    weft__task_link_t *l = p->spare;
    if (l) {
        p->spare = atomic_load_explicit(&l->next, memory_order_relaxed);
        p->made++;
    }
    weft__mutex_unlock(&p->spare_lock);
    weft_future_t *f =
        l ? weft__container_of(l, weft_future_t, link) : weft__handle_alloc(sizeof *f);
    if (!f) return NULL;
    if (!l) {
        weft__mutex_lock(&p->spare_lock);
        p->made++;
        weft__mutex_unlock(&p->spare_lock);
    }
    weft__future_init(f, fn, arg, refs, &p->bin);
    return f;
}
#endif

static void pool_free(pool_t *p)
{
    weft__mutex_lock(&pools_lock);
    weft__list_remove(&pools, &p->link);
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
    if (!p->base.make) { /* a debug build: no bin */
        weft__handle_free(p, &p->base.hd);
        return;
    }
    /* No submit is left (this was the last reference): take back the bias less what was made.
     * The last future returned frees the pool, the spares and what was returned; not before:
     * a future returning now may read the depth of one it saw on top of the stack (a spare
     * since). */
    uint64_t bias = WEFT__BIN_BIAS - p->made;
    if (atomic_fetch_sub_explicit(&p->bin.refs, bias, memory_order_acq_rel) == bias)
        bin_release(&p->bin);
}

static void pool_unref(pool_t *p)
{
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) pool_free(p);
}

/* Wakes every idle worker, so each re-checks the pool. The caller holds the lock; returns the
 * list to wake once it is dropped. */
static weft__waiter_t *take_idle(pool_t *p)
{
    atomic_store_explicit(&p->nsleep, 0, memory_order_relaxed); /* a hint, under `lock` */
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
    *queued = fifo_take_locked(p);
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

static void worker_main(void *arg);

/* An initializer failed: no worker will run anything again. */
static void break_pool(pool_t *p)
{
    weft__mutex_lock(&p->lock);
    p->broken = WEFT_EBROKEN;
    close_pool(p);
    weft__list_t queued = fifo_take_locked(p);
    weft__waiter_t *idle = take_idle(p);
    weft__mutex_unlock(&p->lock);
    weft__waiters_wake(idle);
    settle_list(queued, WEFT_EBROKEN, broken_message);
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
    set_nlive(p, p->nlive + 1);
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
        set_nlive(p, p->nlive - 1);
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

/* Gets one more worker onto the FIFO: wakes the most recently parked idle worker (LIFO), or,
 * if none is parked and `start`, starts one when fewer than max_workers exist. 0, or the
 * start's error (WEFT_ENOMEM also when no slot could be reserved). */
static int add_worker(pool_t *p, bool start)
{
    weft__mutex_lock(&p->lock);
    weft__waiter_t *idle = weft__waitq_last(&p->idle);
    if (idle) {
        weft__waitq_remove(&p->idle, idle);
        atomic_store_explicit(&p->nsleep, p->nsleep - 1, memory_order_relaxed); /* under lock */
        weft__mutex_unlock(&p->lock);
        weft__waiter_wake(idle);
        return 0;
    }
    /* Also once shut down: a task queued before the shutdown still needs a worker. */
    bool grow = start && !p->broken && p->nlive < p->max_workers;
    worker_t *w = grow ? reserve_worker(p) : NULL;
    weft__mutex_unlock(&p->lock);
    if (w) return start_worker(p, w);
    return grow ? WEFT_ENOMEM : 0;
}

/* The spinning worker watches the FIFO's tail (without the lock) for the spin budget; a
 * shutdown ends its spin too. */
static bool work_queued(const void *arg)
{
    pool_t *p = (pool_t *)arg;
    /* Relaxed: a hint; the worker looks again under the lock. */
    return !fifo_empty(p) || atomic_load_explicit(&p->closed, memory_order_relaxed);
}

/* Becomes the pool's spinner if there is none (and spinning is allowed): spins, stops being
 * the spinner, and returns true; false, at once, otherwise. */
static bool spin_for_work(pool_t *p)
{
    uint32_t none = SPIN_NONE;
    if (weft__spin_ns() == 0 ||
        !atomic_compare_exchange_strong_explicit(&p->spinner, &none, SPIN_FREE,
                                                 memory_order_acq_rel, memory_order_relaxed))
        return false;
    weft__spin(work_queued, p, WEFT_NO_DEADLINE);
    /* Acquire: a submit that counted on us (SPIN_TAKEN) appended before, so we find its task. */
    atomic_exchange_explicit(&p->spinner, SPIN_NONE, memory_order_acq_rel);
    return true;
}

/* Parks the idle worker w until a submit or a shutdown wakes it. */
static void sleep_idle(pool_t *p, worker_t *w)
{
    weft__mutex_lock(&p->lock);
    if (p->shut || p->broken) { /* `closed` is set under `lock` too: the loop sees it */
        weft__mutex_unlock(&p->lock);
        return;
    }
    weft__waiter_init(&w->idle);
    w->idle.nospin = true;
    weft__waitq_push(&p->idle, &w->idle);
    /* Counted as parked (seq_cst), then look at the FIFO again: a submit that appended before
     * it could see the count left its task for us to find here (see "No lost wake-up"). */
    atomic_store_explicit(&p->nsleep, p->nsleep + 1, memory_order_seq_cst); /* under lock */
    weft__mutex_unlock(&p->lock);
    if (!fifo_empty(p)) {
        weft__mutex_lock(&p->lock);
        bool queued = w->idle.queued;
        if (queued) {
            weft__waitq_remove(&p->idle, &w->idle);
            atomic_store_explicit(&p->nsleep, p->nsleep - 1, memory_order_relaxed);
        }
        weft__mutex_unlock(&p->lock);
        if (queued) return;
        /* A waker took us off the list: its wake is on the way; take it below. */
    }
    /* No deadline, and nothing cancels an idle worker: a task's cancel is cleared before its
     * worker gets here. So the park ends with a wake. */
    weft__waiter_park_in(&p->lock, &p->idle, &w->idle, WEFT_NO_DEADLINE);
}

static void worker_main(void *arg)
{
    worker_t *w = arg;
    pool_t *p = w->pool;
    if (p->initializer && p->initializer(p->initarg)) {
        break_pool(p);
        weft__mutex_lock(&p->lock);
        set_nlive(p, p->nlive - 1);
        weft__mutex_unlock(&p->lock);
        pool_unref(p);
        return;
    }
    bool spun = false; /* has spun since its last task */
    weft__mutex_lock(&p->head_lock);
    for (;;) {
        weft_future_t *f = fifo_pop(p);
        if (!f) {
            if (atomic_load_explicit(&p->closed, memory_order_relaxed)) break; /* under a lock */
            weft__mutex_unlock(&p->head_lock);
            if (spun || !spin_for_work(p)) {
                sleep_idle(p, w);
                spun = false;
            } else {
                spun = true;
            }
            weft__mutex_lock(&p->head_lock);
            continue;
        }
        w->running = f;
        bool more = fifo_more(p);
        weft__mutex_unlock(&p->head_lock);
        /* A backlog and nobody spinning: get a parked worker going on the next task. */
        if (more && atomic_load_explicit(&p->spinner, memory_order_relaxed) == SPIN_NONE &&
            atomic_load_explicit(&p->nsleep, memory_order_relaxed) > 0)
            add_worker(p, false);
        weft__future_run(f);
        spun = false;
        weft__mutex_lock(&p->head_lock);
        w->running = NULL;
        /* The FIFO's reference; never the last while a caller holds theirs, and a plain
         * atomic decrement otherwise. Dropped under the lock: freeing a future takes no lock. */
        weft__future_unref(f);
    }
    weft__mutex_unlock(&p->head_lock);
    weft__mutex_lock(&p->lock);
    set_nlive(p, p->nlive - 1);
    weft__mutex_unlock(&p->lock);
    pool_unref(p);
}

/* ---- the executor interface --------------------------------------------------------------- */

/* A submit to a closed pool: why (reaping a fork child's pool first). */
static int submit_refused(pool_t *p)
{
    weft__list_t queued, running;
    weft__mutex_lock(&p->lock);
    reap_fork(p, &queued, &running);
    int rc = p->shut ? WEFT_ESHUTDOWN : p->broken ? p->broken : WEFT_EBROKEN;
    weft__mutex_unlock(&p->lock);
    settle_reaped(queued, running);
    return rc;
}

/* No worker could be started for f (error rc). If none runs at all, nothing would ever take f
 * (or anything queued with it): take f back (rc) and fail the rest; else a running worker
 * will take it (0). */
static int submit_stranded(pool_t *p, weft_future_t *f, int rc)
{
    weft__mutex_lock(&p->lock);
    weft__list_t stranded = p->nlive == 0 ? fifo_take_locked(p) : (weft__list_t){0};
    weft__mutex_unlock(&p->lock);
    if (weft__list_empty(&stranded)) return 0;
    bool mine = false;
    for (weft__list_node_t *n = stranded.head; n && !mine; n = n->next) mine = n == &f->node;
    if (mine) weft__list_remove(&stranded, &f->node);
    settle_list(stranded, rc, "no worker thread could be started");
    return mine ? rc : 0;
}

static int pool_submit(weft_executor_t *ex, weft_future_t *f)
{
    pool_t *p = (pool_t *)ex;
    weft__mutex_lock(&p->tail_lock);
    if (atomic_load_explicit(&p->closed, memory_order_relaxed)) { /* under the lock */
        weft__mutex_unlock(&p->tail_lock);
        return submit_refused(p);
    }
    if (weft__observe(WEFT__OBSERVE_TRACE)) weft__future_trace_submit(f, "thread pool");
    fifo_push(p, f);
    weft__mutex_unlock(&p->tail_lock);
    /* Appended, then look for a worker: seq_cst loads (see "No lost wake-up"). */
    uint32_t spin = atomic_load_explicit(&p->spinner, memory_order_seq_cst);
    if (spin == SPIN_FREE &&
        atomic_compare_exchange_strong_explicit(&p->spinner, &spin, SPIN_TAKEN,
                                                memory_order_acq_rel, memory_order_relaxed))
        return 0; /* the spinner takes it */
    if (atomic_load_explicit(&p->nsleep, memory_order_seq_cst) == 0 &&
        atomic_load_explicit(&p->full, memory_order_relaxed)) /* a hint: set under `lock` */
        return 0; /* every worker is busy: one takes it when done */
    int rc = add_worker(p, true);
    return rc ? submit_stranded(p, f, rc) : 0;
}

static int pool_shutdown(weft_executor_t *ex, bool wait, bool cancel_futures, int64_t deadline)
{
    pool_t *p = (pool_t *)ex;
    weft__list_t queued, running;
    weft__mutex_lock(&p->lock);
    reap_fork(p, &queued, &running);
    p->shut = true;
    close_pool(p);
    weft__list_t cancel = cancel_futures ? fifo_take_locked(p) : (weft__list_t){0};
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
        weft__mutex_lock(&p->head_lock);
        weft_future_t *f = p->slots[i] ? weft_future_retain(p->slots[i]->running) : NULL;
        weft__mutex_unlock(&p->head_lock);
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
        pool_t *p = pools_next(NULL);
        while (p && p->exit_handled) p = pools_next(p);
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

/* Fork holds, besides every pool's locks, the lock of every future a pool owns (queued, or
 * running on a worker): those are the futures the child fails when it reaps the pool, and a
 * worker settling one, or a caller queueing itself on one, holds its lock for a moment at any
 * time. Taken after the pool's (the documented order); a holder of a future's lock never waits
 * for a pool's. */
static void lock_futures(pool_t *p, void (*op)(weft_waitq_t *q))
{
    for (weft__task_link_t *l = p->head; l;
         l = atomic_load_explicit(&l->next, memory_order_relaxed))
        if (l != &p->dummy) op(&future_of_link(l)->waiters);
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
    for (pool_t *p = pools_next(NULL); p; p = pools_next(p)) {
        weft__mutex_lock(&p->lock);
        weft__mutex_lock(&p->head_lock);
        weft__mutex_lock(&p->tail_lock);
        weft__mutex_lock(&p->spare_lock);
        lock_futures(p, weft__waitq_lock);
    }
}

static void fork_parent(void)
{
    for (pool_t *p = pools_next(NULL); p; p = pools_next(p)) {
        lock_futures(p, weft__waitq_unlock);
        weft__mutex_unlock(&p->spare_lock);
        weft__mutex_unlock(&p->tail_lock);
        weft__mutex_unlock(&p->head_lock);
        weft__mutex_unlock(&p->lock);
    }
    weft__mutex_unlock(&pools_lock);
}

/* The child's only thread: no worker exists here. Their references go, idle waiters (on the
 * dead workers' memory copies) are forgotten, and the pool is marked for reaping. */
static void fork_child(void)
{
    for (pool_t *p = pools_next(NULL); p; p = pools_next(p)) {
        lock_futures(p, reinit_lock);
        atomic_fetch_sub_explicit(&p->refs, (uint32_t)p->nlive, memory_order_relaxed);
        set_nlive(p, 0);
        p->idle = (weft_waitq_t)WEFT_WAITQ_INIT;
        p->starts = (weft_waitq_t)WEFT_WAITQ_INIT;
        atomic_store_explicit(&p->nsleep, 0, memory_order_relaxed);
        atomic_store_explicit(&p->spinner, SPIN_NONE, memory_order_relaxed);
        atomic_store_explicit(&p->closed, true, memory_order_relaxed); /* submit reaps it */
        p->forked = true;
        p->lock = (weft__mutex_t)WEFT__MUTEX_INIT;
        p->head_lock = (weft__mutex_t)WEFT__MUTEX_INIT;
        p->tail_lock = (weft__mutex_t)WEFT__MUTEX_INIT;
        p->spare_lock = (weft__mutex_t)WEFT__MUTEX_INIT;
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
    p->head_lock = p->tail_lock = p->spare_lock = (weft__mutex_t)WEFT__MUTEX_INIT;
    fifo_reset(p);
#ifndef WEFT_DEBUG /* a debug build frees every future, for its handle quarantine */
    p->base.make = pool_make;
    atomic_init(&p->bin.refs, WEFT__BIN_BIAS);
    atomic_init(&p->bin.returned, NULL);
    p->bin.max = SPARE_MAX;
    p->bin.release = bin_release;
#endif

    weft__mutex_lock(&pools_lock);
    weft__list_push_front(&pools, &p->link);
    weft__mutex_unlock(&pools_lock);
    const char *prefix =
        o.thread_name_prefix && *o.thread_name_prefix ? o.thread_name_prefix : "weft_pool";
    snprintf(p->prefix, sizeof p->prefix, "%s", prefix); /* cut: no name keeps more */
    *ex = &p->base;
    return 0;
}
