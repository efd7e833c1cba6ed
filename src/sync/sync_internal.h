/*
 * sync_internal.h — what the sync objects share privately: the lock entry points Condition
 * needs to release and re-take its lock however the wait ended.
 */
#ifndef WEFT_SYNC_INTERNAL_H
#define WEFT_SYNC_INTERNAL_H

#include "../wait/wait_internal.h"
#include "sync_shared.h"
#include "weft/sync.h"

/* ---- the single-threaded fast paths ---------------------------------------------------------
 * While the process has one thread, an object no other thread can reach needs no atomic
 * read-modify-write: a plain load and store of the word do the same, and on x86 a locked
 * instruction costs 10-20 ns where a store costs one (glibc's mutexes take the same shortcut).
 * The answer comes from glibc's __libc_single_threaded, set false by the first pthread_create
 * before the new thread runs and never set back (so "true" is never stale; a forked child keeps
 * "false"). Coroutines are no exception to it: they switch only where they park, never inside a
 * fast path. A signal handler may only set an Event or release a Semaphore the interrupted
 * thread never waits on or acquires (weft/sync.h), so it cannot interleave with these paths,
 * which Lock, RLock and a Semaphore's acquire use; a Semaphore's release keeps its atomic.
 * Process-shared objects never take them (a shared Lock's state_ is never FREE; a Semaphore's
 * shared_ flag sends it away first).
 *
 * weft__single_threaded (core_internal.h) tells it. */

/* A Lock's state_ (lock.c): 0 free, 1 locked, 2 locked and maybe waited on. */
enum { WEFT__LOCK_FREE = 0, WEFT__LOCK_LOCKED = 1, WEFT__LOCK_CONTENDED = 2 };

/* A free Lock becomes LOCKED: one CAS, or a load and a store while single-threaded. Inline for
 * RLock's fast path too. Fails on a shared Lock (its state_ is never FREE). */
/* The Lock's owner_ (the dump's and the deadlock report's "held by"): written by every
 * acquire after it took the word: the waiting context that took it while the process records
 * holders (WEFT__OBSERVE_OWNERS: weft_debug_observe, the deadlock watchdog), NULL otherwise.
 * Measured on an uncontended acquire+release against pthread_mutex: finding the context on
 * every acquire cost 12%, a test of the switch nothing measurable. A release leaves owner_ (a
 * store just before the release's locked instruction waits for the store buffer: 5-6%): a
 * free Lock's owner_ means nothing, and readers look only at a Lock somebody waits for.
 * Relaxed: a snapshot for readers on other threads. Python's Lock has no owner (any thread
 * may release it): this is who took it, not who must release. */
static inline void weft__lock_set_owner(weft_lock_t *l)
{
    void *who = weft__observe(WEFT__OBSERVE_OWNERS) ? (void *)weft__waitctx_current() : NULL;
    atomic_store_explicit(&l->owner_, who, memory_order_relaxed);
}

static inline bool weft__lock_try_take(weft_lock_t *l)
{
    if (weft__single_threaded()) {
        /* Relaxed: nobody else can read the word (see above). */
        if (atomic_load_explicit(&l->state_, memory_order_relaxed) != WEFT__LOCK_FREE) return false;
        atomic_store_explicit(&l->state_, WEFT__LOCK_LOCKED, memory_order_relaxed);
        weft__lock_set_owner(l);
        return true;
    }
    uint32_t expect = WEFT__LOCK_FREE;
    if (!atomic_compare_exchange_strong_explicit(&l->state_, &expect, WEFT__LOCK_LOCKED,
                                                 memory_order_acquire, memory_order_relaxed))
        return false;
    weft__lock_set_owner(l);
    return true;
}

/* A LOCKED Lock nobody waits for becomes FREE, the same way; false otherwise (free, contended
 * or shared: the caller's slow path decides), with *seen the state found. */
static inline bool weft__lock_try_give(weft_lock_t *l, uint32_t *seen)
{
    if (weft__single_threaded()) {
        /* Relaxed: as in weft__lock_try_take. */
        *seen = atomic_load_explicit(&l->state_, memory_order_relaxed);
        if (*seen != WEFT__LOCK_LOCKED) return false;
        atomic_store_explicit(&l->state_, WEFT__LOCK_FREE, memory_order_relaxed);
        return true;
    }
    *seen = WEFT__LOCK_LOCKED;
    return atomic_compare_exchange_strong_explicit(&l->state_, seen, WEFT__LOCK_FREE,
                                                   memory_order_release, memory_order_relaxed);
}

/* weft_lock_acquire and weft_lock_release past their fast paths (a taken Lock; one not LOCKED,
 * `seen` the state weft__lock_try_give found), for RLock's inline fast paths. The arguments
 * are checked (not NULL, timeout not NaN). */
int weft__lock_acquire_slow(weft_lock_t *l, double timeout);
int weft__lock_release_slow(weft_lock_t *l, uint32_t seen);

/* Acquires l with no deadline, immune to cancellation (re-taking a Condition's lock). */
void weft__lock_acquire_nocancel(weft_lock_t *l);

/* Drops every level of an RLock the caller owns; returns the count to restore. */
unsigned long weft__rlock_release_all(weft_rlock_t *r);
/* Re-takes r (immune to cancellation) at the saved count. */
void weft__rlock_restore(weft_rlock_t *r, unsigned long count);

/* A private Semaphore's value_: the free units, and this bit while its queue may hold waiters
 * (semaphore.c). A shared one never sets it (its values stop at WEFT_SEMAPHORE_MAX). */
#define WEFT__SEM_WAITERS 0x80000000u
#define WEFT__SEM_COUNT   0x7fffffffu

/* Takes a unit of a Semaphore's value_ if there is one (private and shared mode alike). */
static inline bool weft__sem_try_take(weft_semaphore_t *s)
{
    uint32_t v = atomic_load_explicit(&s->value_, memory_order_relaxed);
    while (v & WEFT__SEM_COUNT)
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
