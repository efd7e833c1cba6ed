/*
 * weft/sync.h — Python's threading synchronisation objects: Lock, RLock, Semaphore and
 * BoundedSemaphore, Event, Condition, Barrier, and Timer.
 *
 * All of them are caller-allocated (`weft_lock_t l; weft_lock_init(&l);`), need no
 * allocation, and block through weft's waiting core: called from an OS thread they park the
 * thread, called from a coroutine they park only the coroutine. Every blocking call
 * takes a timeout in seconds (WEFT_FOREVER blocks; 0 or any other negative value polls; see
 * weft/core.h) and returns 0, WEFT_ETIMEDOUT when it expires (a failed poll included),
 * WEFT_ECANCELED when the caller's task was canceled, or WEFT_EINVAL for NULL / NaN arguments.
 *
 * Static initializers: every object here but the process-shared ones has a WEFT_<TYPE>_INIT
 * (WEFT_LOCK_INIT, WEFT_SEMAPHORE_INIT(value), ...) equivalent to its init with the same
 * arguments: `static weft_lock_t l = WEFT_LOCK_INIT;` needs no init call and is usable at once
 * from any thread; destroy works on it as on any other.
 * ABI: each struct has a fixed size with a reserved tail (zeroed by init and by the
 * initializer), so a 1.x version can grow inside it; the fields are private.
 *
 * Thread safety: every function may be called concurrently from any thread or coroutine on
 * the same object, except init and destroy, which must not race with any other use.
 * Coroutines: a blocking call parks only the calling coroutine, and the hub runs the thread's
 * other coroutines meanwhile (they may be the ones that wake it); an RLock's owner is the
 * coroutine that took it, not its thread. A coroutine that holds a Lock while it blocks
 * elsewhere keeps it held: its sibling coroutines that want it park, as other threads would.
 * The *_cb adapters are as safe as the call they make.
 * Fork: an object that no thread held at fork time is usable in the child; one held by a
 * thread that does not exist in the child stays held there (as with pthread objects).
 * Signal handlers: only weft_event_set, weft_event_is_set, weft_lock_locked and
 * weft_semaphore_release are safe there, and only on an object the interrupted thread never
 * acquires or waits on (a handler setting an Event another thread waits on is fine).
 * Destroy: returns WEFT_EBUSY (and changes nothing) while the object is held or waited on.
 *
 * Process-shared mode: Lock, RLock, Semaphore, Event and Condition can also be initialised
 * for use by several processes, in shared memory (weft_lock_init_shared and friends, declared
 * and described in weft/process.h). The functions below then work on them unchanged, with
 * the differences that header lists (a shared Lock has an owner and is robust).
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <pthread.h>
#include <stdbool.h>

#include "weft/core.h"
#include "weft/wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Lock -------------------------------------------------------------------------------
 * A non-recursive mutual-exclusion lock (threading.Lock). Like Python's, and unlike a pthread
 * mutex, it has no owner: any thread may release it, so it also serves as a binary semaphore
 * or a hand-off token. Re-acquiring it from the holder blocks (until the timeout).
 * Cost: an uncontended acquire+release is two atomic instructions (none while the process has a
 * single thread: then a plain load and store do, as in glibc's mutexes); a contended acquire
 * spins briefly, then parks. Not fair: a running thread may take it ahead of a parked one. */
typedef struct weft_lock {
    WEFT__ATOMIC(uint32_t) state_;
    uint32_t shared_; /* process-shared (weft_lock_init_shared, weft/process.h) */
    union {
        struct {
            weft_waitq_t waiters_;       /* process-private */
            WEFT__ATOMIC(void *) owner_; /* process-private: who took it (the dump), if known */
        };
        pthread_mutex_t pmutex_; /* process-shared: a robust, process-shared mutex */
        uint64_t size_[6];       /* 48 bytes on every target (pthread_mutex_t: 40 or 48) */
    };
    uint64_t reserved_[1]; /* room to grow within 1.x; zero */
} weft_lock_t;

/* A static initializer: `static weft_lock_t l = WEFT_LOCK_INIT;` is an unlocked lock, the same
 * as one from weft_lock_init (no init call needed; destroy it as any other). */
#define WEFT_LOCK_INIT                                                                             \
    {                                                                                              \
        0, 0, {{WEFT_WAITQ_INIT, (void *)0}},                                                      \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* Initialises an unlocked lock.
 * l: the lock (caller-allocated storage).
 * Returns 0, WEFT_EINVAL (l NULL). */
WEFT_EXTERN int weft_lock_init(weft_lock_t *l);
/* Ends l's use: once this returns 0 the lock may be re-initialised or freed.
 * l: the lock.
 * Returns 0, WEFT_EBUSY (nothing changes) while it is locked or waited on, WEFT_EINVAL (l NULL). */
WEFT_EXTERN int weft_lock_destroy(weft_lock_t *l);
/* Names l for the task dump and the deadlock report (weft/debug.h): the Lock shows as
 * "'name'" there. Its destroy, or a new init, drops the name.
 * From any thread or coroutine; not from a signal handler (it locks and allocates).
 * l: the Lock.
 * name: copied (up to 47 bytes, longer is cut; a control character or a quote is kept as
 * '?'); NULL or "" removes the name.
 * Returns 0, WEFT_EINVAL (l NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_lock_set_name(weft_lock_t *l, const char *name);
/* Acquires the lock, waiting up to timeout.
 * l: the lock.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 * value) only tries.
 * Returns 0 (acquired), WEFT_ETIMEDOUT (the time ran out, or a try found it locked),
 * WEFT_ECANCELED (a cancel scope or a canceled coroutine), WEFT_EDEADLK (a coroutine whose hub
 * has nothing left to wake it, weft/coro.h), WEFT_EINVAL (l NULL, timeout NaN). A process-shared
 * lock adds WEFT_EOWNERDEAD and WEFT_EDEADLK (weft/process.h). */
WEFT_EXTERN int weft_lock_acquire(weft_lock_t *l, double timeout);
/* Releases the lock, from any thread.
 * l: the lock.
 * Returns 0, WEFT_EPERM (it is not locked; a process-shared lock: the caller does not hold it),
 * WEFT_EINVAL (l NULL). */
WEFT_EXTERN int weft_lock_release(weft_lock_t *l);
/* Whether the lock is held right now (a snapshot).
 * l: the lock.
 * Returns true while it is held; false when it is free or l is NULL. */
WEFT_EXTERN bool weft_lock_locked(const weft_lock_t *l);

/* ---- RLock ------------------------------------------------------------------------------
 * A reentrant lock (threading.RLock): its owner (the thread, or the coroutine, that acquired
 * it) may acquire it again; it is free once released as many times as acquired. */
typedef struct weft_rlock {
    weft_lock_t lock_;
    WEFT__ATOMIC(void *) owner_;
    unsigned long count_;
    uint64_t reserved_[2]; /* room to grow within 1.x; zero */
} weft_rlock_t;

/* A free RLock, the same as one from weft_rlock_init. */
#define WEFT_RLOCK_INIT                                                                            \
    {                                                                                              \
        WEFT_LOCK_INIT, NULL, 0,                                                                   \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* Initialises a free RLock.
 * r: the RLock (caller-allocated storage).
 * Returns 0, WEFT_EINVAL (r NULL). */
WEFT_EXTERN int weft_rlock_init(weft_rlock_t *r);
/* Ends r's use.
 * r: the RLock.
 * Returns 0, WEFT_EBUSY (nothing changes) while it is held or waited on, WEFT_EINVAL (r NULL). */
WEFT_EXTERN int weft_rlock_destroy(weft_rlock_t *r);
/* Names r for the task dump and the deadlock report (weft/debug.h): the RLock (its waiters show as
 * "Lock" of the same address) shows as "'name'" there. Its destroy, or a new init, drops the
 * name. From any thread or coroutine; not from a signal handler (it locks and allocates).
 * r: the RLock.
 * name: copied (up to 47 bytes, longer is cut; a control character or a quote is kept as
 * '?'); NULL or "" removes the name.
 * Returns 0, WEFT_EINVAL (r NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_rlock_set_name(weft_rlock_t *r, const char *name);
/* Acquires r, waiting up to timeout; its owner takes it once more at once.
 * r: the RLock.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 * value) only tries.
 * Returns 0 (count + 1), WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_EDEADLK (a coroutine whose hub has
 * nothing left to wake it, weft/coro.h), WEFT_EINVAL (r NULL, timeout NaN); WEFT_EOVERFLOW if the
 * count would wrap. */
WEFT_EXTERN int weft_rlock_acquire(weft_rlock_t *r, double timeout);
/* Releases r once: it is free when released as many times as acquired.
 * r: the RLock.
 * Returns 0, WEFT_EPERM if the caller is not the owner (Python's RuntimeError), WEFT_EINVAL
 * (r NULL). */
WEFT_EXTERN int weft_rlock_release(weft_rlock_t *r);
/* Whether the caller owns it (Python's RLock._is_owned).
 * r: the RLock.
 * Returns true if the calling thread or coroutine holds r; false otherwise, or for NULL. */
WEFT_EXTERN bool weft_rlock_is_owned(const weft_rlock_t *r);

/* ---- Semaphore / BoundedSemaphore -------------------------------------------------------
 * A counter of available units (threading.Semaphore). acquire takes one unit, waiting while
 * there are none; release gives n back. Waiters are served in FIFO order. With `bounded`
 * (threading.BoundedSemaphore) a release that would raise the value above its initial value
 * fails with WEFT_EOVERFLOW and changes nothing.
 * Cost: an uncontended acquire is one atomic instruction (none while the process has a single
 * thread), a release nobody waits for one; a release with waiters queued hands them units under
 * the queue's lock. */
typedef struct weft_semaphore {
    WEFT__ATOMIC(uint32_t) value_;
    uint32_t bound_; /* 0: unbounded */
    union {
        weft_waitq_t waiters_;            /* process-private */
        WEFT__ATOMIC(uint32_t) nwaiters_; /* process-shared: sleepers on value_ */
    };
    uint32_t shared_;      /* process-shared (weft_semaphore_init_shared, weft/process.h) */
    uint64_t reserved_[3]; /* room to grow within 1.x; zero */
} weft_semaphore_t;

/* value <= WEFT_SEMAPHORE_MAX; WEFT_EINVAL otherwise. */
#define WEFT_SEMAPHORE_MAX 0x7fffffffu
/* bound_ of a BoundedSemaphore: this bit | its initial value (private). */
#define WEFT__SEMAPHORE_BOUNDED 0x80000000u

/* Static initializers, the same as weft_semaphore_init(s, value, false) and (s, value, true).
 * A macro cannot refuse a value above WEFT_SEMAPHORE_MAX with WEFT_EINVAL as init does (use
 * weft_semaphore_init for a value computed at run time).
 * value: the initial units, an integer constant from 0 to WEFT_SEMAPHORE_MAX.
 * Returns the initializer of a weft_semaphore_t. */
#define WEFT_SEMAPHORE_INIT(value)                                                                 \
    {                                                                                              \
        (value), 0, {WEFT_WAITQ_INIT}, 0,                                                          \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }
/* A BoundedSemaphore, the same as weft_semaphore_init(s, value, true) (see above).
 * value: the initial units and the bound, an integer constant from 0 to WEFT_SEMAPHORE_MAX.
 * Returns the initializer of a weft_semaphore_t. */
#define WEFT_BOUNDED_SEMAPHORE_INIT(value)                                                         \
    {                                                                                              \
        (value), WEFT__SEMAPHORE_BOUNDED | (value), {WEFT_WAITQ_INIT}, 0,                          \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }
/* Initialises s with value units.
 * s: the semaphore (caller-allocated storage).
 * value: the initial units, 0 to WEFT_SEMAPHORE_MAX.
 * bounded: true makes a BoundedSemaphore (above), whose bound is value.
 * Returns 0, WEFT_EINVAL (s NULL, value above WEFT_SEMAPHORE_MAX). */
WEFT_EXTERN int weft_semaphore_init(weft_semaphore_t *s, unsigned value, bool bounded);
/* Ends s's use.
 * s: the semaphore.
 * Returns 0, WEFT_EBUSY (nothing changes) while it is waited on, WEFT_EINVAL (s NULL). */
WEFT_EXTERN int weft_semaphore_destroy(weft_semaphore_t *s);
/* Names s for the task dump and the deadlock report (weft/debug.h): the Semaphore shows as
 * "'name'" there. Its destroy, or a new init, drops the name.
 * From any thread or coroutine; not from a signal handler (it locks and allocates).
 * s: the Semaphore.
 * name: copied (up to 47 bytes, longer is cut; a control character or a quote is kept as
 * '?'); NULL or "" removes the name.
 * Returns 0, WEFT_EINVAL (s NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_semaphore_set_name(weft_semaphore_t *s, const char *name);
/* Takes one unit, waiting while there are none.
 * s: the semaphore.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 * value) only tries.
 * Returns 0 (a unit taken), WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_EDEADLK (a coroutine whose hub has
 * nothing left to wake it, weft/coro.h), WEFT_EINVAL (s NULL, timeout NaN). */
WEFT_EXTERN int weft_semaphore_acquire(weft_semaphore_t *s, double timeout);
/* Releases n units, waking up to n waiters.
 * s: the semaphore.
 * n: how many units to give back, at least 1.
 * Returns 0, WEFT_EOVERFLOW (nothing changes) if the value would pass the bound or
 * WEFT_SEMAPHORE_MAX, WEFT_EINVAL (s NULL, n 0). */
WEFT_EXTERN int weft_semaphore_release(weft_semaphore_t *s, unsigned n);
/* weft_semaphore_release(semaphore, 1) as a void (void *) callback, for weft_timer_start and
 * the like (see weft/timer.h, "callbacks"): the result (WEFT_EOVERFLOW) is dropped.
 * semaphore: the weft_semaphore_t to release; NULL does nothing. */
WEFT_EXTERN void weft_semaphore_release_cb(void *semaphore);
/* The current value (a snapshot).
 * s: the semaphore.
 * Returns the units free now; 0 for NULL. */
WEFT_EXTERN unsigned weft_semaphore_value(const weft_semaphore_t *s);

/* ---- Event ------------------------------------------------------------------------------
 * A flag threads wait for (threading.Event): set wakes every waiter; wait returns at once
 * while the flag is set. */
typedef struct weft_event {
    WEFT__ATOMIC(uint32_t) state_;
    uint32_t shared_; /* process-shared (weft_event_init_shared, weft/process.h) */
    union {
        weft_waitq_t waiters_;            /* process-private */
        WEFT__ATOMIC(uint32_t) nwaiters_; /* process-shared: sleepers on state_ */
    };
    uint64_t reserved_[4]; /* room to grow within 1.x; zero */
} weft_event_t;

/* A clear Event, the same as one from weft_event_init. */
#define WEFT_EVENT_INIT                                                                            \
    {                                                                                              \
        0, 0, {WEFT_WAITQ_INIT},                                                                   \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* Initialises a clear Event.
 * e: the Event (caller-allocated storage).
 * Returns 0, WEFT_EINVAL (e NULL). */
WEFT_EXTERN int weft_event_init(weft_event_t *e);
/* Ends e's use.
 * e: the Event.
 * Returns 0, WEFT_EBUSY (nothing changes) while it is waited on, WEFT_EINVAL (e NULL). */
WEFT_EXTERN int weft_event_destroy(weft_event_t *e);
/* Names e for the task dump and the deadlock report (weft/debug.h): the Event shows as
 * "'name'" there. Its destroy, or a new init, drops the name.
 * From any thread or coroutine; not from a signal handler (it locks and allocates).
 * e: the Event.
 * name: copied (up to 47 bytes, longer is cut; a control character or a quote is kept as
 * '?'); NULL or "" removes the name.
 * Returns 0, WEFT_EINVAL (e NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_event_set_name(weft_event_t *e, const char *name);
/* Sets the flag and wakes all waiters. Async-signal-safe under the rule at the top of this
 * header: the interrupted thread must not be the one waiting on e or inside a call on e.
 * e: the Event.
 * Returns 0, WEFT_EINVAL (e NULL). */
WEFT_EXTERN int weft_event_set(weft_event_t *e);
/* weft_event_set(event) as a void (void *) callback, for weft_timer_start and the like (see
 * weft/timer.h, "callbacks"): the result is dropped.
 * event: the weft_event_t to set; NULL does nothing. */
WEFT_EXTERN void weft_event_set_cb(void *event);
/* Clears the flag: later waits block until the next set.
 * e: the Event.
 * Returns 0, WEFT_EINVAL (e NULL). */
WEFT_EXTERN int weft_event_clear(weft_event_t *e);
/* Whether the flag is set (a snapshot).
 * e: the Event.
 * Returns true if the flag is set; false if it is clear or e is NULL. */
WEFT_EXTERN bool weft_event_is_set(const weft_event_t *e);
/* Waits until the flag is set, up to timeout; returns at once while it is set.
 * e: the Event.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 * value) only tries.
 * Returns 0 once the flag is set (even if it was cleared again before the waiter ran, as
 * Python), WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_EDEADLK (a coroutine whose hub has nothing left to
 * wake it, weft/coro.h), WEFT_EINVAL (e NULL, timeout NaN). */
WEFT_EXTERN int weft_event_wait(weft_event_t *e, double timeout);

/* ---- Condition --------------------------------------------------------------------------
 * A condition variable bound to a lock (threading.Condition). The lock is a weft_lock_t or a
 * weft_rlock_t given at init, or the condition's own RLock when both are NULL (Python's
 * default); weft_condition_acquire/release take and drop it. wait, notify and notify_all must
 * be called with the lock held (WEFT_EPERM otherwise). wait releases the lock (all levels of
 * an RLock), waits, and always re-acquires it before returning, whatever it returns. */
typedef struct weft_condition {
    weft_lock_t *lock_;
    weft_rlock_t *rlock_; /* NULL with lock_ NULL: own_ */
    weft_rlock_t own_;
    union {
        weft_waitq_t waiters_; /* process-private */
        struct {               /* process-shared (weft_condition_init_shared, weft/process.h) */
            int64_t off_;      /* the lock, as an offset from the condition (0: own_) */
            uint32_t is_rlock_;
            WEFT__ATOMIC(uint32_t) seq_;      /* bumped by every notify: the futex word */
            WEFT__ATOMIC(uint32_t) nwaiters_; /* waiting (changed with the lock held) */
            WEFT__ATOMIC(uint32_t) signals_;  /* notifications not yet taken by a waiter */
        } sh_;
    };
    uint32_t shared_;
    uint64_t reserved_[2]; /* room to grow within 1.x; zero */
} weft_condition_t;

/* Static initializers, the same as weft_condition_init(c, NULL, NULL) (the condition's own
 * RLock), (c, lock, NULL) and (c, NULL, rlock). lock / rlock: the address of a Lock / RLock
 * (in static storage, a constant address such as &my_lock), initialised before the condition
 * is first used. */
#define WEFT_CONDITION_INIT WEFT_CONDITION_INIT_RLOCK(0)
/* The same as weft_condition_init(c, lock, NULL) (see above).
 * lock: the address of a Lock, a constant (see above).
 * Returns the initializer of a weft_condition_t. */
#define WEFT_CONDITION_INIT_LOCK(lock)                                                             \
    {                                                                                              \
        (lock), 0, WEFT_RLOCK_INIT, {WEFT_WAITQ_INIT}, 0,                                          \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }
/* The same as weft_condition_init(c, NULL, rlock) (see above).
 * rlock: the address of an RLock, a constant (see above).
 * Returns the initializer of a weft_condition_t. */
#define WEFT_CONDITION_INIT_RLOCK(rlock)                                                           \
    {                                                                                              \
        0, (rlock), WEFT_RLOCK_INIT, {WEFT_WAITQ_INIT}, 0,                                         \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* Initialises c on a Lock, an RLock, or (both NULL) its own RLock.
 * c: the condition (caller-allocated storage).
 * lock: a Lock, borrowed: it must outlive c's use; NULL: none.
 * rlock: an RLock, borrowed as lock is; NULL: none. At most one of lock and rlock may be
 * non-NULL.
 * Returns 0, WEFT_EINVAL (c NULL, or both lock and rlock non-NULL). */
WEFT_EXTERN int weft_condition_init(weft_condition_t *c, weft_lock_t *lock, weft_rlock_t *rlock);
/* Ends c's use. With the condition's own RLock (both NULL at init), a notified waiter re-takes
 * that lock inside the condition: destroy it only once every notified waiter has returned
 * from wait. With a caller's Lock or RLock it may be destroyed (and freed) right after notify.
 * c: the condition.
 * Returns 0, WEFT_EBUSY (nothing changes) while it is waited on, or while its own RLock is
 * held, WEFT_EINVAL (c NULL). */
WEFT_EXTERN int weft_condition_destroy(weft_condition_t *c);
/* Names c for the task dump and the deadlock report (weft/debug.h): the Condition shows as
 * "'name'" there. Its destroy, or a new init, drops the name.
 * From any thread or coroutine; not from a signal handler (it locks and allocates).
 * c: the Condition.
 * name: copied (up to 47 bytes, longer is cut; a control character or a quote is kept as
 * '?'); NULL or "" removes the name.
 * Returns 0, WEFT_EINVAL (c NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_condition_set_name(weft_condition_t *c, const char *name);
/* Acquires the condition's lock, whichever it is.
 * c: the condition.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 * value) only tries.
 * Returns what weft_lock_acquire or weft_rlock_acquire returns: 0, WEFT_ETIMEDOUT,
 * WEFT_ECANCELED, WEFT_EDEADLK, WEFT_EOVERFLOW (RLock), WEFT_EINVAL (c NULL, timeout NaN). */
WEFT_EXTERN int weft_condition_acquire(weft_condition_t *c, double timeout);
/* Releases the condition's lock, whichever it is.
 * c: the condition.
 * Returns what weft_lock_release or weft_rlock_release returns: 0, WEFT_EPERM (not locked;
 * an RLock: the caller is not its owner), WEFT_EINVAL (c NULL). */
WEFT_EXTERN int weft_condition_release(weft_condition_t *c);
/* Releases the condition's lock (all levels of an RLock), waits up to timeout to be notified,
 * and re-acquires the lock before returning, whatever it returns.
 * c: the condition; the caller holds its lock.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 or less does not wait.
 * Returns 0 when notified, WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_EDEADLK; the lock is held again
 * in every case except WEFT_EINVAL (c NULL, timeout NaN) / WEFT_EPERM (the lock is not held:
 * a Lock by anyone, an RLock by the caller), where nothing happened. */
WEFT_EXTERN int weft_condition_wait(weft_condition_t *c, double timeout);
/* Waits until pred(arg) is true, re-checking after each wake-up, within one overall timeout.
 * c: the condition; the caller holds its lock.
 * pred: the predicate, not NULL; called with the lock held, first before any wait.
 * arg: passed to pred.
 * timeout: seconds for the whole call; WEFT_FOREVER waits without a limit, 0 or less only
 * checks pred.
 * Returns 0 when pred is true, WEFT_ETIMEDOUT when the time ran out with pred still false,
 * WEFT_ECANCELED (the lock is held again), WEFT_EPERM (the lock is not held), WEFT_EINVAL (c or
 * pred NULL, timeout NaN), WEFT_EDEADLK (a coroutine whose hub has nothing left to wake it,
 * weft/coro.h). */
WEFT_EXTERN int weft_condition_wait_for(weft_condition_t *c, bool (*pred)(void *arg), void *arg,
                                        double timeout);
/* Wakes up to n waiters, in the order they started waiting.
 * c: the condition; the caller holds its lock.
 * n: how many waiters to wake, 0 or more.
 * Returns 0, WEFT_EPERM (the lock is not held), WEFT_EINVAL (c NULL, n < 0). */
WEFT_EXTERN int weft_condition_notify(weft_condition_t *c, int n);
/* Wakes every waiter (Python's notify_all).
 * c: the condition; the caller holds its lock.
 * Returns 0, WEFT_EPERM (the lock is not held), WEFT_EINVAL (c NULL). */
WEFT_EXTERN int weft_condition_notify_all(weft_condition_t *c);

/* ---- Barrier ----------------------------------------------------------------------------
 * A rendezvous of `parties` waiters (threading.Barrier). wait blocks until that many have
 * arrived, then releases them all and the barrier is reusable for the next round. An action,
 * if given, runs once per round in the last arriving caller before the others are released;
 * a nonzero return breaks the barrier. Broken (by abort, reset while waited on, a timeout, or
 * a failing action), waits fail with WEFT_EBROKEN until reset. */
typedef struct weft_barrier {
    unsigned parties_;
    unsigned count_;
    unsigned long generation_;
    bool broken_;
    int (*action_)(void *arg);
    void *action_arg_;
    weft_waitq_t waiters_;
    uint64_t reserved_[4]; /* room to grow within 1.x; zero */
} weft_barrier_t;

/* A barrier of `parties` without action, the same as weft_barrier_init(b, parties, NULL,
 * NULL).
 * parties: an integer constant from 1 to INT32_MAX; with another value the macro cannot
 * refuse, every wait fails with WEFT_EINVAL.
 * Returns the initializer of a weft_barrier_t. */
#define WEFT_BARRIER_INIT(parties)                                                                 \
    {                                                                                              \
        (parties), 0, 0, 0, 0, 0, WEFT_WAITQ_INIT,                                                 \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* Initialises a barrier of parties waiters, with an optional action (above).
 * b: the barrier (caller-allocated storage).
 * parties: how many waiters make a round, 1 <= parties <= INT_MAX.
 * action: run once per round by the last arriving caller, before the others are released; a
 * nonzero return breaks the barrier. NULL: none.
 * action_arg: passed to action; it must stay valid while b is in use.
 * Returns 0, WEFT_EINVAL (b NULL, parties out of range). */
WEFT_EXTERN int weft_barrier_init(weft_barrier_t *b, unsigned parties, int (*action)(void *arg),
                                  void *action_arg);
/* Ends b's use.
 * b: the barrier.
 * Returns 0, WEFT_EBUSY (nothing changes) while it is waited on or its action runs, WEFT_EINVAL
 * (b NULL). */
WEFT_EXTERN int weft_barrier_destroy(weft_barrier_t *b);
/* Names b for the task dump and the deadlock report (weft/debug.h): the Barrier shows as
 * "'name'" there. Its destroy, or a new init, drops the name.
 * From any thread or coroutine; not from a signal handler (it locks and allocates).
 * b: the Barrier.
 * name: copied (up to 47 bytes, longer is cut; a control character or a quote is kept as
 * '?'); NULL or "" removes the name.
 * Returns 0, WEFT_EINVAL (b NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_barrier_set_name(weft_barrier_t *b, const char *name);
/* Arrives at the barrier and waits, up to timeout, until the round completes. A timeout or
 * cancel that lands after the last party arrived does not count: the round passes (Python
 * re-checks the state after a timeout too).
 * b: the barrier.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit; with 0 or less a caller that
 * does not complete the round times out at once.
 * Returns the arrival index 0 .. parties-1 (>= 0) when the round completes; WEFT_EBROKEN (the
 * barrier is or gets broken); WEFT_ETIMEDOUT for the caller whose timeout expired (which
 * breaks the barrier for the others: they get WEFT_EBROKEN); WEFT_ECANCELED and WEFT_EDEADLK
 * (weft/coro.h), which also break it; WEFT_EINVAL (b NULL, timeout NaN, parties out of range
 * from WEFT_BARRIER_INIT). A failing action breaks the barrier, and every waiter of that
 * round, its caller included, gets WEFT_EBROKEN. */
WEFT_EXTERN int weft_barrier_wait(weft_barrier_t *b, double timeout);
/* Breaks the barrier: current and future waits fail with WEFT_EBROKEN until reset.
 * b: the barrier.
 * Returns 0, WEFT_EINVAL (b NULL). */
WEFT_EXTERN int weft_barrier_abort(weft_barrier_t *b);
/* Back to the empty, unbroken state; current waiters get WEFT_EBROKEN.
 * b: the barrier.
 * Returns 0, WEFT_EINVAL (b NULL). */
WEFT_EXTERN int weft_barrier_reset(weft_barrier_t *b);
/* A snapshot: how many parties wait in the current round.
 * b: the barrier.
 * Returns the number waiting; 0 while the barrier is broken, while a complete round is being
 * released, or for NULL. */
WEFT_EXTERN unsigned weft_barrier_n_waiting(const weft_barrier_t *b);
/* A snapshot: whether the barrier is broken.
 * b: the barrier.
 * Returns true if it is broken (until reset); false otherwise, or for NULL. */
WEFT_EXTERN bool weft_barrier_broken(const weft_barrier_t *b);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_SYNC_H */
