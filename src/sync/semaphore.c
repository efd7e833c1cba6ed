/*
 * semaphore.c — weft_semaphore_t, Python's Semaphore and BoundedSemaphore.
 *
 * value_ counts free units (WEFT__SEM_COUNT), and its top bit WAITERS (WEFT__SEM_WAITERS) says
 * the queue may hold waiters. acquire takes a unit with one CAS when there is one (no lock;
 * while single-threaded, a load and a store). A caller that finds none, under the queue's lock,
 * either takes a unit that came meanwhile or raises WAITERS in the same CAS that saw none left,
 * then queues itself. release adds its units with one CAS while WAITERS is down; otherwise it
 * holds the queue's lock, hands units straight to queued waiters (FIFO), and once the queue is
 * empty adds what is left and drops WAITERS in one CAS. So:
 *   - a waiter is queued only while WAITERS is up (only a release that emptied the queue, under
 *     the lock, drops it), so a lock-free release never misses one: its CAS fails on WAITERS;
 *   - units are added to the count only while the queue is empty, so a count above 0 means no
 *     queued waiter, and a barging acquirer can never overtake a parked one;
 *   - WAITERS may stay up with the queue empty (a waiter that timed out left it): the next
 *     release takes the locked path once and drops it.
 *
 * bound_ is 0 for a plain Semaphore; a BoundedSemaphore stores its initial value with the
 * BOUNDED bit set (values stop below it), so that a BoundedSemaphore(0) is still bounded.
 */
#include "sync_internal.h"

#include <math.h>

#define BOUNDED WEFT__SEMAPHORE_BOUNDED
#define WAITERS WEFT__SEM_WAITERS
#define COUNT   WEFT__SEM_COUNT

int weft_semaphore_init(weft_semaphore_t *s, unsigned value, bool bounded)
{
    if (!s || value > WEFT_SEMAPHORE_MAX) return WEFT_EINVAL;
    weft__name_drop(s); /* a re-initialised object starts without a name */
    *s = bounded ? (weft_semaphore_t)WEFT_BOUNDED_SEMAPHORE_INIT(value)
                 : (weft_semaphore_t)WEFT_SEMAPHORE_INIT(value);
    WEFT__OBJ_INIT(s, WEFT__ID_SEMAPHORE);
    return 0;
}

int weft_semaphore_destroy(weft_semaphore_t *s)
{
    WEFT__OBJ_CHECK(s, WEFT__ID_SEMAPHORE, "semaphore");
    if (!s) return WEFT_EINVAL;
    if (s->shared_) return WEFT__OBJ_DESTROYED(s, weft__name_dropped(s, weft__psem_destroy(s)));
    bool busy = weft__waitq_busy(&s->waiters_);
    return WEFT__OBJ_DESTROYED(s, weft__name_dropped(s, busy ? WEFT_EBUSY : 0));
}

int weft_semaphore_set_name(weft_semaphore_t *s, const char *name)
{
    if (!s) return WEFT_EINVAL;
    return weft__name_set(s, name);
}

/* Past the fast path: no unit was free. */
__attribute__((noinline)) static int acquire_slow(weft_semaphore_t *s, double timeout)
{
    if (weft__unlikely(s->shared_)) return weft__psem_acquire(s, timeout);
    if (weft__sem_try_take(s)) return 0;
    int64_t deadline;
    if (weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (weft__timeout_polls(timeout)) return WEFT_ETIMEDOUT;
    if (weft__waitctx_canceled(weft__waitctx_current())) return WEFT_ECANCELED;

    weft__waiter_t w;
    weft__waitq_lock(&s->waiters_);
    uint32_t v = atomic_load_explicit(&s->value_, memory_order_relaxed);
    for (;;) {
        if (v & COUNT) { /* a unit came meanwhile */
            if (atomic_compare_exchange_weak_explicit(&s->value_, &v, v - 1, memory_order_acquire,
                                                      memory_order_relaxed)) {
                weft__waitq_unlock(&s->waiters_);
                return 0;
            }
        } else if ((v & WAITERS) ||
                   atomic_compare_exchange_weak_explicit(
                       &s->value_, &v, v | WAITERS, memory_order_relaxed, memory_order_relaxed)) {
            /* Relaxed: the flag orders nothing by itself; releasers that see it take the
             * queue's lock, which orders our push before their pop. */
            break;
        }
    }
    weft__waiter_init(&w);
    weft__waiter_on(&w, WEFT__ON_SEMAPHORE, s);
    weft__waitq_push(&s->waiters_, &w);
    weft__waitq_unlock(&s->waiters_);
    return weft__waiter_park(&s->waiters_, &w, deadline); /* 0: a releaser handed us a unit */
}

int weft_semaphore_acquire(weft_semaphore_t *s, double timeout)
{
    WEFT__OBJ_CHECK(s, WEFT__ID_SEMAPHORE, "semaphore");
    /* NaN is refused before the fast path, so it fails whether or not a unit is free. */
    if (!s || isnan(timeout)) return WEFT_EINVAL;
    if (weft__single_threaded() && !s->shared_) {
        /* Relaxed: nobody else can reach value_ (sync_internal.h); with no waiter queued by
         * another thread, COUNT > 0 means the queue is empty. */
        uint32_t v = atomic_load_explicit(&s->value_, memory_order_relaxed);
        if (weft__likely(v & COUNT)) {
            atomic_store_explicit(&s->value_, v - 1, memory_order_relaxed);
            return 0;
        }
    } else {
        uint32_t v = atomic_load_explicit(&s->value_, memory_order_relaxed);
        while (weft__likely(v & COUNT))
            if (atomic_compare_exchange_weak_explicit(&s->value_, &v, v - 1, memory_order_acquire,
                                                      memory_order_relaxed))
                return 0;
    }
    return acquire_slow(s, timeout);
}

/* The bound of s's count. */
static uint32_t limit_of(const weft_semaphore_t *s)
{
    return s->bound_ ? s->bound_ & ~BOUNDED : WEFT_SEMAPHORE_MAX;
}

/* WAITERS is up: hand units to queued waiters under the queue's lock, then add what is left. */
__attribute__((noinline)) static int release_slow(weft_semaphore_t *s, unsigned n)
{
    weft__waitq_lock(&s->waiters_);
    weft__waiter_t *list = NULL;
    if (!weft__waitq_empty(&s->waiters_)) {
        /* Waiters queued: the count is 0 and stays so while we hold the lock (acquirers find
         * no unit; lock-free releasers fail on WAITERS), so only n can pass the bound. */
        if (n > limit_of(s)) {
            weft__waitq_unlock(&s->waiters_);
            return WEFT_EOVERFLOW;
        }
        list = weft__waitq_take(&s->waiters_, (int)(n > INT32_MAX ? INT32_MAX : n), 0);
        for (weft__waiter_t *w = list; w; w = w->next) n--;
    }
    if (weft__waitq_empty(&s->waiters_)) {
        /* Nobody waits: add the rest and drop WAITERS. Acquirers may take units meanwhile, and
         * releasers add some once WAITERS is down (another release dropped it): CAS. */
        uint32_t v = atomic_load_explicit(&s->value_, memory_order_relaxed);
        do {
            if ((uint64_t)(v & COUNT) + n > limit_of(s)) {
                /* Only when the queue was empty on entry: nobody was taken. */
                weft__waitq_unlock(&s->waiters_);
                return WEFT_EOVERFLOW;
            }
        } while (!atomic_compare_exchange_weak_explicit(
            &s->value_, &v, (v & COUNT) + n, memory_order_release, memory_order_relaxed));
    }
    weft__waitq_unlock(&s->waiters_);
    weft__waiters_wake(list);
    return 0;
}

int weft_semaphore_release(weft_semaphore_t *s, unsigned n)
{
    WEFT__OBJ_CHECK(s, WEFT__ID_SEMAPHORE, "semaphore");
    if (!s || n == 0) return WEFT_EINVAL;
    if (weft__unlikely(s->shared_)) return weft__psem_release(s, n);
    /* Nobody waits: add n with one CAS. Atomic even while single-threaded: a signal handler
     * may release too (weft/sync.h). */
    uint32_t v = atomic_load_explicit(&s->value_, memory_order_relaxed);
    while (!(v & WAITERS)) {
        if ((uint64_t)v + n > limit_of(s)) return WEFT_EOVERFLOW;
        if (atomic_compare_exchange_weak_explicit(&s->value_, &v, v + n, memory_order_release,
                                                  memory_order_relaxed))
            return 0;
    }
    return release_slow(s, n);
}

unsigned weft_semaphore_value(const weft_semaphore_t *s)
{
    WEFT__OBJ_PEEK(s, WEFT__ID_SEMAPHORE, "semaphore");
    /* Relaxed: a snapshot for display and tests; it orders nothing. */
    return s ? atomic_load_explicit(&s->value_, memory_order_relaxed) & COUNT : 0;
}

void weft_semaphore_release_cb(void *semaphore)
{
    weft_semaphore_release(semaphore, 1);
}
