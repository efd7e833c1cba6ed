/*
 * event.c — weft_event_t, Python's Event.
 *
 * state_ holds two bits: SET (the flag) and WAITERS (the queue may be non-empty). A waiter,
 * under the queue's lock, sets WAITERS and queues itself only if SET was clear in the same
 * atomic step; set() raises SET with one CAS while WAITERS is down, and otherwise raises it
 * under the queue's lock, drops WAITERS and wakes everyone queued. So set() costs one atomic
 * when nobody waits, a waiter cannot slip between set()'s check and its wake-up, and a set()
 * wakes only waiters that queued before it: both decide under the same lock.
 */
#include "sync_internal.h"

#include <math.h>

enum { SET = 1, WAITERS = 2 };

int weft_event_init(weft_event_t *e)
{
    if (!e) return WEFT_EINVAL;
    weft__name_drop(e); /* a re-initialised object starts without a name */
    *e = (weft_event_t)WEFT_EVENT_INIT;
    WEFT__OBJ_INIT(e, WEFT__ID_EVENT);
    return 0;
}

int weft_event_destroy(weft_event_t *e)
{
    WEFT__OBJ_CHECK(e, WEFT__ID_EVENT, "event");
    if (!e) return WEFT_EINVAL;
    if (e->shared_) return WEFT__OBJ_DESTROYED(e, weft__name_dropped(e, weft__pevent_destroy(e)));
    bool busy = weft__waitq_busy(&e->waiters_);
    return WEFT__OBJ_DESTROYED(e, weft__name_dropped(e, busy ? WEFT_EBUSY : 0));
}

int weft_event_set_name(weft_event_t *e, const char *name)
{
    if (!e) return WEFT_EINVAL;
    return weft__name_set(e, name);
}

int weft_event_set(weft_event_t *e)
{
    WEFT__OBJ_CHECK(e, WEFT__ID_EVENT, "event");
    if (!e) return WEFT_EINVAL;
    if (weft__unlikely(e->shared_)) return weft__pevent_set(e);
    /* Nobody waits: raise SET with one CAS. A waiter arriving meanwhile changes the word (it
     * raises WAITERS under the lock), so the CAS fails and we take the locked path. */
    uint32_t s = atomic_load_explicit(&e->state_, memory_order_relaxed);
    while (!(s & WAITERS))
        if (atomic_compare_exchange_weak_explicit(&e->state_, &s, s | SET, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return 0;
    /* Raise SET under the lock, so the waiters taken are exactly those that queued before it:
     * raising it first and locking after would let a waiter that queued after a clear() in
     * between be woken by this set (a wait returning 0 with the flag down; the ping-pong
     * test caught it on a fresh machine). */
    weft__waitq_lock(&e->waiters_);
    atomic_fetch_or_explicit(&e->state_, SET, memory_order_acq_rel);
    atomic_fetch_and_explicit(&e->state_, ~(uint32_t)WAITERS, memory_order_relaxed);
    weft__waiter_t *all = weft__waitq_take(&e->waiters_, -1, 0);
    weft__waitq_unlock(&e->waiters_);
    weft__waiters_wake(all);
    return 0;
}

int weft_event_clear(weft_event_t *e)
{
    WEFT__OBJ_CHECK(e, WEFT__ID_EVENT, "event");
    if (!e) return WEFT_EINVAL;
    atomic_fetch_and_explicit(&e->state_, ~(uint32_t)SET, memory_order_release);
    return 0;
}

bool weft_event_is_set(const weft_event_t *e)
{
    WEFT__OBJ_PEEK(e, WEFT__ID_EVENT, "event");
    return e && (atomic_load_explicit(&e->state_, memory_order_acquire) & SET);
}

int weft_event_wait(weft_event_t *e, double timeout)
{
    WEFT__OBJ_CHECK(e, WEFT__ID_EVENT, "event");
    /* NaN is refused even when the flag would let the call through: whether an argument is
     * valid must not depend on timing. */
    if (!e || isnan(timeout)) return WEFT_EINVAL;
    if (weft__unlikely(e->shared_)) return weft__pevent_wait(e, timeout);
    if (atomic_load_explicit(&e->state_, memory_order_acquire) & SET) return 0;
    int64_t deadline;
    if (weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (weft__timeout_polls(timeout)) return WEFT_ETIMEDOUT;
    if (weft__waitctx_canceled(weft__waitctx_current())) return WEFT_ECANCELED;

    weft__waiter_t w;
    weft__waitq_lock(&e->waiters_);
    if (atomic_fetch_or_explicit(&e->state_, WAITERS, memory_order_acq_rel) & SET) {
        weft__waitq_unlock(&e->waiters_);
        return 0;
    }
    weft__waiter_init(&w);
    weft__waiter_on(&w, WEFT__ON_EVENT, e);
    weft__waitq_push(&e->waiters_, &w);
    weft__waitq_unlock(&e->waiters_);
    return weft__waiter_park(&e->waiters_, &w, deadline);
}

void weft_event_set_cb(void *event)
{
    weft_event_set(event);
}
