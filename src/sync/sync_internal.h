/*
 * sync_internal.h — what the sync objects share privately: the lock entry points Condition
 * needs to release and re-take its lock however the wait ended.
 */
#ifndef WEFT_SYNC_INTERNAL_H
#define WEFT_SYNC_INTERNAL_H

#include "../wait/wait_internal.h"
#include "sync_shared.h"
#include "weft/sync.h"

/* Acquires l with no deadline, immune to cancellation (re-taking a Condition's lock). */
void weft__lock_acquire_nocancel(weft_lock_t *l);

/* Drops every level of an RLock the caller owns; returns the count to restore. */
unsigned long weft__rlock_release_all(weft_rlock_t *r);
/* Re-takes r (immune to cancellation) at the saved count. */
void weft__rlock_restore(weft_rlock_t *r, unsigned long count);

/* Takes a unit of a Semaphore's value_ if there is one (private and shared mode alike). */
static inline bool weft__sem_try_take(weft_semaphore_t *s)
{
    uint32_t v = atomic_load_explicit(&s->value_, memory_order_relaxed);
    while (v > 0)
        if (atomic_compare_exchange_weak_explicit(&s->value_, &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

/* ---- process-shared mode (pshared.c) -------------------------------------------------------
 * Called by the public functions when the object's shared_ flag is set, after their argument
 * checks (NULL, NaN). The init functions themselves are public (weft/process.h). */
/* A shared Lock's state_: 2^31 or above (see lock.c), the holder's context tag or this. */
#define WEFT__PLOCK_NOBODY 0x80000000u
int weft__plock_acquire(weft_lock_t *l, double timeout);
bool weft__plock_locked(const weft_lock_t *l);
int weft__plock_destroy(weft_lock_t *l);
int weft__prlock_acquire(weft_rlock_t *r, double timeout);
int weft__prlock_release(weft_rlock_t *r);
bool weft__prlock_is_owned(const weft_rlock_t *r);
int weft__psem_acquire(weft_semaphore_t *s, double timeout);
int weft__psem_release(weft_semaphore_t *s, unsigned n);
int weft__psem_destroy(weft_semaphore_t *s);
int weft__pevent_set(weft_event_t *e);
int weft__pevent_wait(weft_event_t *e, double timeout);
int weft__pevent_destroy(weft_event_t *e);
bool weft__pcond_owned(weft_condition_t *c);
int weft__pcond_acquire(weft_condition_t *c, double timeout);
int weft__pcond_release(weft_condition_t *c);
int weft__pcond_wait(weft_condition_t *c, double timeout);
int weft__pcond_notify(weft_condition_t *c, int n);
int weft__pcond_destroy(weft_condition_t *c);

#endif /* WEFT_SYNC_INTERNAL_H */
