/*
 * sync_internal.h — what the sync objects share privately: the lock entry points Condition
 * needs to release and re-take its lock however the wait ended.
 */
#ifndef WEFT_SYNC_INTERNAL_H
#define WEFT_SYNC_INTERNAL_H

#include "../wait/wait_internal.h"
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

/* ---- waiting on a process-shared word --------------------------------------------------------
 * Process-shared objects (pshared.c, and the process layer's queue) sleep on futex words of
 * their own instead of the waiting core. Inside an executor task such a sleep ends every
 * 50 ms so that a cancel request is seen (only a task can be canceled today); elsewhere it
 * lasts until the deadline. */
#define WEFT__SHARED_SLICE_NS (50 * 1000000LL)

/* The deadline of the next sleep. */
static inline int64_t weft__shared_sleep_end(int64_t deadline)
{
    if (!weft__waitctx_current()->task) return deadline;
    int64_t end = weft_monotonic_ns() + WEFT__SHARED_SLICE_NS;
    return end < deadline ? end : deadline;
}

/* Why a wait that has not succeeded should stop now: 0 (go on), WEFT_ECANCELED or
 * WEFT_ETIMEDOUT. */
static inline int weft__shared_stop_reason(int64_t deadline)
{
    if (weft__waitctx_canceled(weft__waitctx_current())) return WEFT_ECANCELED;
    if (deadline != WEFT_NO_DEADLINE && deadline <= weft_monotonic_ns()) return WEFT_ETIMEDOUT;
    return 0;
}

/* Sleeps while *word reads `seen`, until the deadline (or the task slice) ends; returns
 * nothing: the caller re-checks its condition and calls weft__shared_stop_reason. A thread
 * sleeps on the word with a process-shared futex; a coroutine cannot (the futex would block
 * its thread and every coroutine on it), so it looks at the word between naps of 20 us
 * doubling to 1 ms (a wake-up comes up to 1 ms late; the other coroutines run meanwhile). */
void weft__shared_wait(_Atomic uint32_t *word, uint32_t seen, int64_t deadline);

/* The naps of a coroutine that polls a process-shared object: 20 us doubling to 1 ms. */
#define WEFT__SHARED_NAP_MIN_NS 20000LL
#define WEFT__SHARED_NAP_MAX_NS 1000000LL

/* ---- process-shared mode (pshared.c) -------------------------------------------------------
 * Called by the public functions when the object's shared_ flag is set, after their argument
 * checks (NULL, NaN). The init functions themselves are public (weft/process.h). */
/* A shared Lock's state_: 2^31 or above (see lock.c), the holder's context tag or this. */
#define WEFT__PLOCK_NOBODY 0x80000000u
int weft__plock_acquire(weft_lock_t *l, double timeout);
int weft__plock_acquire_deadline(weft_lock_t *l, int64_t deadline, bool nocancel);
int weft__plock_release(weft_lock_t *l);
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
