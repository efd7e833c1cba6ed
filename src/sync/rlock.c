/*
 * rlock.c — weft_rlock_t, Python's RLock: a weft_lock_t plus an owner and a count.
 *
 * The owner is the caller's waiting context (an OS thread's, or a coroutine's), so an RLock
 * taken by a coroutine is not re-entrant for its sibling coroutines on the same thread.
 * owner_ is written only by the thread that holds lock_, and compared only with the reader's
 * own context: a reader either finds itself (it wrote that value, sequenced before) or some
 * other value, so relaxed accesses are enough. count_ is touched only by the owner.
 */
#include "../wait/wait_internal.h"
#include "sync_internal.h"

#include <limits.h>
#include <math.h>

int weft_rlock_init(weft_rlock_t *r)
{
    if (!r) return WEFT_EINVAL;
    weft__name_drop(r); /* a re-initialised object starts without a name */
    *r = (weft_rlock_t)WEFT_RLOCK_INIT;
    WEFT__OBJ_INIT(r, WEFT__ID_RLOCK);
    return 0;
}

int weft_rlock_destroy(weft_rlock_t *r)
{
    WEFT__OBJ_CHECK(r, WEFT__ID_RLOCK, "rlock");
    if (!r) return WEFT_EINVAL;
    return WEFT__OBJ_DESTROYED(r, weft__name_dropped(r, weft_lock_destroy(&r->lock_)));
}

int weft_rlock_set_name(weft_rlock_t *r, const char *name)
{
    if (!r) return WEFT_EINVAL;
    return weft__name_set(r, name);
}

static bool owned_by_me(const weft_rlock_t *r)
{
    return atomic_load_explicit(&r->owner_, memory_order_relaxed) ==
           (void *)weft__waitctx_current();
}

/* The first level, past the fast path: the Lock's slow path, then the owner. */
__attribute__((noinline)) static int acquire_first(weft_rlock_t *r, weft__waitctx_t *me,
                                                   double timeout)
{
    int rc = weft__lock_acquire_slow(&r->lock_, timeout);
    if (rc) return rc;
    atomic_store_explicit(&r->owner_, (void *)me, memory_order_relaxed);
    r->count_ = 1;
    return 0;
}

/* The Lock's fast path is inlined here (weft__lock_try_take): an uncontended acquire is the
 * owner check, one CAS (none while single-threaded) and two stores. */
int weft_rlock_acquire(weft_rlock_t *r, double timeout)
{
    WEFT__OBJ_CHECK(r, WEFT__ID_RLOCK, "rlock");
    /* NaN is refused before the owner's re-entry too, as Python does. */
    if (!r || isnan(timeout)) return WEFT_EINVAL;
    if (weft__unlikely(r->lock_.shared_)) return weft__prlock_acquire(r, timeout);
    weft__waitctx_t *me = weft__waitctx_current();
    if (atomic_load_explicit(&r->owner_, memory_order_relaxed) == (void *)me) {
        if (r->count_ == ULONG_MAX) return WEFT_EOVERFLOW;
        r->count_++;
        return 0;
    }
    if (weft__unlikely(!weft__lock_try_take(&r->lock_))) return acquire_first(r, me, timeout);
    atomic_store_explicit(&r->owner_, (void *)me, memory_order_relaxed);
    r->count_ = 1;
    return 0;
}

int weft_rlock_release(weft_rlock_t *r)
{
    WEFT__OBJ_CHECK(r, WEFT__ID_RLOCK, "rlock");
    if (!r) return WEFT_EINVAL;
    if (weft__unlikely(r->lock_.shared_)) return weft__prlock_release(r);
    if (!owned_by_me(r)) return WEFT_EPERM;
    if (--r->count_ > 0) return 0;
    atomic_store_explicit(&r->owner_, NULL, memory_order_relaxed);
    uint32_t seen;
    if (weft__likely(weft__lock_try_give(&r->lock_, &seen))) return 0;
    return weft__lock_release_slow(&r->lock_, seen);
}

bool weft_rlock_is_owned(const weft_rlock_t *r)
{
    WEFT__OBJ_PEEK(r, WEFT__ID_RLOCK, "rlock");
    if (r && r->lock_.shared_) return weft__prlock_is_owned(r);
    return r && owned_by_me(r);
}

/* For Condition: drop every level at once, and restore them (Python's _release_save and
 * _acquire_restore). */
unsigned long weft__rlock_release_all(weft_rlock_t *r)
{
    unsigned long count = r->count_;
    r->count_ = 0;
    atomic_store_explicit(&r->owner_, NULL, memory_order_relaxed);
    weft_lock_release(&r->lock_);
    return count;
}

void weft__rlock_restore(weft_rlock_t *r, unsigned long count)
{
    weft__lock_acquire_nocancel(&r->lock_);
    atomic_store_explicit(&r->owner_, (void *)weft__waitctx_current(), memory_order_relaxed);
    r->count_ = count;
}
