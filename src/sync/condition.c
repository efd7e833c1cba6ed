/*
 * condition.c — weft_condition_t, Python's Condition.
 *
 * The condition's own queue holds the waiters; its lock is the user's Lock or RLock (or the
 * condition's own RLock). wait queues the caller BEFORE it drops the user's lock, so a
 * notify made by the next holder of that lock always finds it (no lost wake-up), then parks,
 * then re-takes the lock — immune to cancellation, so the caller always gets the lock back,
 * as a pthread condvar and Python guarantee.
 */
#include "sync_internal.h"

int weft_condition_init(weft_condition_t *c, weft_lock_t *lock, weft_rlock_t *rlock)
{
    if (!c || (lock && rlock)) return WEFT_EINVAL;
    weft__name_drop(c); /* a re-initialised object starts without a name */
    *c = lock ? (weft_condition_t)WEFT_CONDITION_INIT_LOCK(lock)
              : (weft_condition_t)WEFT_CONDITION_INIT_RLOCK(rlock);
    WEFT__OBJ_INIT(c, WEFT__ID_CONDITION);
    return 0;
}

/* The RLock of a condition without a Lock: the caller's, or (rlock_ NULL) its own. */
static weft_rlock_t *rlock_of(weft_condition_t *c)
{
    return c->rlock_ ? c->rlock_ : &c->own_;
}

int weft_condition_destroy(weft_condition_t *c)
{
    WEFT__OBJ_CHECK(c, WEFT__ID_CONDITION, "condition");
    if (!c) return WEFT_EINVAL;
    if (c->shared_) return WEFT__OBJ_DESTROYED(c, weft__name_dropped(c, weft__pcond_destroy(c)));
    bool busy = weft__waitq_busy(&c->waiters_);
    if (busy) return WEFT_EBUSY;
    return WEFT__OBJ_DESTROYED(c, weft__name_dropped(c, weft_rlock_destroy(&c->own_)));
}

int weft_condition_set_name(weft_condition_t *c, const char *name)
{
    if (!c) return WEFT_EINVAL;
    return weft__name_set(c, name);
}

int weft_condition_acquire(weft_condition_t *c, double timeout)
{
    WEFT__OBJ_CHECK(c, WEFT__ID_CONDITION, "condition");
    if (!c) return WEFT_EINVAL;
    if (c->shared_) return weft__pcond_acquire(c, timeout);
    return c->lock_ ? weft_lock_acquire(c->lock_, timeout)
                    : weft_rlock_acquire(rlock_of(c), timeout);
}

int weft_condition_release(weft_condition_t *c)
{
    WEFT__OBJ_CHECK(c, WEFT__ID_CONDITION, "condition");
    if (!c) return WEFT_EINVAL;
    if (c->shared_) return weft__pcond_release(c);
    return c->lock_ ? weft_lock_release(c->lock_) : weft_rlock_release(rlock_of(c));
}

/* Python's Condition._is_owned: an RLock knows its owner; a plain Lock can only say that
 * somebody holds it. */
static bool owned(weft_condition_t *c)
{
    if (c->shared_) return weft__pcond_owned(c);
    return c->lock_ ? weft_lock_locked(c->lock_) : weft_rlock_is_owned(rlock_of(c));
}

int weft_condition_wait(weft_condition_t *c, double timeout)
{
    WEFT__OBJ_CHECK(c, WEFT__ID_CONDITION, "condition");
    if (!c) return WEFT_EINVAL;
    if (c->shared_) return weft__pcond_wait(c, timeout);
    int64_t deadline;
    if (weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (!owned(c)) return WEFT_EPERM;

    /* Read c now: once notified, this waiter no longer waits on c, which its owner may then
     * destroy and free (as a pthread condvar after a broadcast) while we re-take the lock. */
    weft_lock_t *lock = c->lock_;
    weft_rlock_t *rlock = lock ? NULL : rlock_of(c);
    weft_waitq_t *q = &c->waiters_;

    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waiter_on(&w, WEFT__ON_CONDITION, c);
    weft__waitq_lock(q);
    weft__waitq_push(q, &w);
    weft__waitq_unlock(q);

    unsigned long levels = 0;
    if (lock)
        weft_lock_release(lock);
    else
        levels = weft__rlock_release_all(rlock);

    int rc = weft__waiter_park(q, &w, deadline);

    if (lock)
        weft__lock_acquire_nocancel(lock);
    else
        weft__rlock_restore(rlock, levels);
    return rc;
}

int weft_condition_wait_for(weft_condition_t *c, bool (*pred)(void *arg), void *arg, double timeout)
{
    WEFT__OBJ_CHECK(c, WEFT__ID_CONDITION, "condition");
    if (!c || !pred) return WEFT_EINVAL;
    int64_t deadline;
    if (weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (!owned(c)) return WEFT_EPERM;
    while (!pred(arg)) {
        double left = weft__deadline_remaining(deadline);
        if (left == 0) return WEFT_ETIMEDOUT;
        int rc = weft_condition_wait(c, left);
        if (rc == WEFT_ETIMEDOUT) return pred(arg) ? 0 : WEFT_ETIMEDOUT;
        if (rc) return rc; /* canceled, a deadlock, a shared lock's dead owner: never again */
    }
    return 0;
}

int weft_condition_notify(weft_condition_t *c, int n)
{
    WEFT__OBJ_CHECK(c, WEFT__ID_CONDITION, "condition");
    if (!c || n < 0) return WEFT_EINVAL;
    if (c->shared_) return weft__pcond_notify(c, n);
    if (!owned(c)) return WEFT_EPERM;
    weft__waitq_wake(&c->waiters_, n, 0);
    return 0;
}

int weft_condition_notify_all(weft_condition_t *c)
{
    WEFT__OBJ_CHECK(c, WEFT__ID_CONDITION, "condition");
    if (!c) return WEFT_EINVAL;
    if (c->shared_) return weft__pcond_notify(c, -1);
    if (!owned(c)) return WEFT_EPERM;
    weft__waitq_wake(&c->waiters_, -1, 0);
    return 0;
}
