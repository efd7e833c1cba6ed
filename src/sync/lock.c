/*
 * lock.c — weft_lock_t, Python's Lock, in the three tiers of musl's mutex: an atomic fast
 * path, a short bounded spin, then a park through the waiting core.
 *
 * state_: 0 free, 1 locked, 2 locked and maybe waited on. A waiter, under the queue's lock,
 * swaps in 2 before it queues itself, so the holder's release sees 2 and wakes the queue's
 * head; a woken waiter competes again (and takes the lock as 2, since others may still
 * wait). The queue's lock orders "saw it locked, queued" against "released, popped", so no
 * wake-up is lost: either the waiter's swap saw 0 and it owns the lock, or the releaser's swap
 * saw 2 and it pops a waiter that is already queued.
 *
 * A process-shared lock (pshared.c) keeps state_ at 2^31 or above, never FREE or LOCKED, so
 * the fast paths' compare-and-swap fails on it and only then is shared_ read: a load of the
 * line before the CAS would cost a second coherence transaction when the lock is contended
 * (bench_lock, 2 threads: 21 Mops/s with the load first, 30 without).
 *
 * The fast paths (weft__lock_try_take, weft__lock_try_give in sync_internal.h) are one CAS
 * each, or a plain load and store while the process is single-threaded.
 */
#include "sync_internal.h"

#include <math.h>

enum { FREE = WEFT__LOCK_FREE, LOCKED = WEFT__LOCK_LOCKED, CONTENDED = WEFT__LOCK_CONTENDED };

int weft_lock_init(weft_lock_t *l)
{
    if (!l) return WEFT_EINVAL;
    weft__name_drop(l); /* a re-initialised object starts without a name */
    *l = (weft_lock_t)WEFT_LOCK_INIT;
    WEFT__OBJ_INIT(l, WEFT__ID_LOCK);
    return 0;
}

int weft_lock_destroy(weft_lock_t *l)
{
    WEFT__OBJ_CHECK(l, WEFT__ID_LOCK, "lock");
    if (!l) return WEFT_EINVAL;
    if (l->shared_)
        return WEFT__OBJ_DESTROYED(l,
                                   weft__name_dropped(l, weft__plock_destroy(l))); /* pshared.c */
    if (atomic_load_explicit(&l->state_, memory_order_acquire) != FREE) return WEFT_EBUSY;
    /* Free is not idle: a release frees the lock before it pops one waiter, and the others
     * stay queued until it is taken again. */
    bool busy = weft__waitq_busy(&l->waiters_);
    return WEFT__OBJ_DESTROYED(l, weft__name_dropped(l, busy ? WEFT_EBUSY : 0));
}

int weft_lock_set_name(weft_lock_t *l, const char *name)
{
    if (!l) return WEFT_EINVAL;
    return weft__name_set(l, name);
}

static int acquire_slow(weft_lock_t *l, int64_t deadline, bool nocancel)
{
    if (weft__ncpu() > 1 && !weft__single_threaded()) { /* alone, the holder is a coroutine */
        for (int i = 0; i < 100; i++) {
            if (atomic_load_explicit(&l->state_, memory_order_relaxed) == FREE &&
                weft__lock_try_take(l))
                return 0;
            weft__cpu_relax();
        }
    }
    for (;;) {
        weft__waiter_t w;
        weft__waitq_lock(&l->waiters_);
        if (atomic_exchange_explicit(&l->state_, CONTENDED, memory_order_acquire) == FREE) {
            weft__waitq_unlock(&l->waiters_);
            weft__lock_set_owner(l);
            return 0;
        }
        if (deadline != WEFT_NO_DEADLINE && deadline <= weft_time_monotonic_ns()) {
            weft__waitq_unlock(&l->waiters_);
            return WEFT_ETIMEDOUT; /* state stays 2: at worst one needless wake-up */
        }
        weft__waiter_init(&w);
        weft__waiter_on(&w, WEFT__ON_LOCK, l);
        w.nocancel = nocancel;
        weft__waitq_push(&l->waiters_, &w);
        weft__waitq_unlock(&l->waiters_);
        int r = weft__waiter_park(&l->waiters_, &w, deadline);
        if (r != 0) return r;
    }
}

int weft_lock_acquire(weft_lock_t *l, double timeout)
{
    WEFT__OBJ_CHECK(l, WEFT__ID_LOCK, "lock");
    /* NaN is refused before the fast path, so it fails whether or not the lock is free. */
    if (!l || isnan(timeout)) return WEFT_EINVAL;
    if (weft__likely(weft__lock_try_take(l))) return 0;
    return weft__lock_acquire_slow(l, timeout);
}

int weft__lock_acquire_slow(weft_lock_t *l, double timeout)
{
    if (weft__unlikely(l->shared_)) return weft__plock_acquire(l, timeout);
    int64_t deadline;
    if (weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (weft__timeout_polls(timeout)) return WEFT_ETIMEDOUT;
    if (weft__waitctx_canceled(weft__waitctx_current())) return WEFT_ECANCELED;
    return acquire_slow(l, deadline, false);
}

void weft__lock_acquire_nocancel(weft_lock_t *l)
{
    if (weft__lock_try_take(l)) return;
    if (l->shared_)
        weft__plock_acquire_deadline(l, WEFT_NO_DEADLINE, true);
    else
        acquire_slow(l, WEFT_NO_DEADLINE, true);
}

int weft_lock_release(weft_lock_t *l)
{
    WEFT__OBJ_CHECK(l, WEFT__ID_LOCK, "lock");
    if (!l) return WEFT_EINVAL;
    uint32_t s;
    if (weft__likely(weft__lock_try_give(l, &s))) return 0;
    return weft__lock_release_slow(l, s);
}

int weft__lock_release_slow(weft_lock_t *l, uint32_t s)
{
    if (weft__unlikely(l->shared_)) return weft__plock_release(l);
    if (s == FREE) return WEFT_EPERM;
    /* Contended; a racing second release of the same lock can only find it FREE here. */
    if (atomic_exchange_explicit(&l->state_, FREE, memory_order_release) == FREE) return WEFT_EPERM;
    weft__waitq_wake(&l->waiters_, 1, 0);
    return 0;
}

bool weft_lock_locked(const weft_lock_t *l)
{
    WEFT__OBJ_PEEK(l, WEFT__ID_LOCK, "lock");
    /* Relaxed: a snapshot that orders nothing; callers must not infer ownership from it. */
    if (l && l->shared_) return weft__plock_locked(l);
    return l && atomic_load_explicit(&l->state_, memory_order_relaxed) != FREE;
}
