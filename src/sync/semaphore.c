/*
 * semaphore.c — weft_semaphore_t, Python's Semaphore and BoundedSemaphore.
 *
 * value_ counts free units. acquire takes one with a CAS when value_ > 0 (no lock). A caller
 * that finds none queues itself under the queue's lock, after checking value_ once more there.
 * release holds the queue's lock and hands units straight to queued waiters (FIFO), adding to
 * value_ only what nobody waits for. So value_ > 0 implies an empty queue, a waiter never
 * misses a release (both decide under the same lock), and a barging acquirer can never
 * overtake a parked one.
 *
 * bound_ is 0 for a plain Semaphore; a BoundedSemaphore stores its initial value with the
 * BOUNDED bit set (values stop below it), so that a BoundedSemaphore(0) is still bounded.
 */
#include "sync_internal.h"

#include <math.h>

#define BOUNDED WEFT__SEMAPHORE_BOUNDED

int weft_semaphore_init(weft_semaphore_t *s, unsigned value, bool bounded)
{
    if (!s || value > WEFT_SEMAPHORE_MAX) return WEFT_EINVAL;
    *s = bounded ? (weft_semaphore_t)WEFT_BOUNDED_SEMAPHORE_INIT(value)
                 : (weft_semaphore_t)WEFT_SEMAPHORE_INIT(value);
    WEFT__OBJ_INIT(s, WEFT__ID_SEMAPHORE);
    return 0;
}

int weft_semaphore_destroy(weft_semaphore_t *s)
{
    WEFT__OBJ_CHECK(s, WEFT__ID_SEMAPHORE, "semaphore");
    if (!s) return WEFT_EINVAL;
    if (s->shared_) return WEFT__OBJ_DESTROYED(s, weft__psem_destroy(s));
    bool busy = weft__waitq_busy(&s->waiters_);
    return WEFT__OBJ_DESTROYED(s, busy ? WEFT_EBUSY : 0);
}

int weft_semaphore_acquire(weft_semaphore_t *s, double timeout)
{
    WEFT__OBJ_CHECK(s, WEFT__ID_SEMAPHORE, "semaphore");
    /* NaN is refused before the fast path, so it fails whether or not a unit is free. */
    if (!s || isnan(timeout)) return WEFT_EINVAL;
    if (weft__unlikely(s->shared_)) return weft__psem_acquire(s, timeout);
    if (weft__sem_try_take(s)) return 0;
    int64_t deadline;
    if (weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (weft__timeout_polls(timeout)) return WEFT_ETIMEDOUT;
    if (weft__waitctx_canceled(weft__waitctx_current())) return WEFT_ECANCELED;

    weft__waiter_t w;
    weft__waitq_lock(&s->waiters_);
    if (weft__sem_try_take(s)) {
        weft__waitq_unlock(&s->waiters_);
        return 0;
    }
    weft__waiter_init(&w);
    weft__waitq_push(&s->waiters_, &w);
    weft__waitq_unlock(&s->waiters_);
    return weft__waiter_park(&s->waiters_, &w, deadline); /* 0: a releaser handed us a unit */
}

int weft_semaphore_release(weft_semaphore_t *s, unsigned n)
{
    WEFT__OBJ_CHECK(s, WEFT__ID_SEMAPHORE, "semaphore");
    if (!s || n == 0) return WEFT_EINVAL;
    if (weft__unlikely(s->shared_)) return weft__psem_release(s, n);
    weft__waitq_lock(&s->waiters_);
    uint32_t v = atomic_load_explicit(&s->value_, memory_order_relaxed);
    uint64_t limit = s->bound_ ? s->bound_ & ~BOUNDED : WEFT_SEMAPHORE_MAX;
    if ((uint64_t)v + n > limit) {
        weft__waitq_unlock(&s->waiters_);
        return WEFT_EOVERFLOW;
    }
    weft__waiter_t *list = weft__waitq_take(&s->waiters_, (int)(n > INT32_MAX ? INT32_MAX : n), 0);
    unsigned handed = 0;
    for (weft__waiter_t *w = list; w; w = w->next) handed++;
    if (n > handed) atomic_fetch_add_explicit(&s->value_, n - handed, memory_order_release);
    weft__waitq_unlock(&s->waiters_);
    weft__waiters_wake(list);
    return 0;
}

unsigned weft_semaphore_value(const weft_semaphore_t *s)
{
    WEFT__OBJ_PEEK(s, WEFT__ID_SEMAPHORE, "semaphore");
    /* Relaxed: a snapshot for display and tests; it orders nothing. */
    return s ? atomic_load_explicit(&s->value_, memory_order_relaxed) : 0;
}

void weft_semaphore_release_cb(void *semaphore)
{
    weft_semaphore_release(semaphore, 1);
}
