/*
 * pshared.c — the process-shared mode of Lock, RLock, Semaphore, Event and Condition
 * (weft_*_init_shared, documented in weft/process.h). The private-mode files call in here
 * when an object's shared_ flag is set; nothing here is on a private object's path.
 *
 * An object in shared memory can hold no pointer (other processes map it elsewhere) and no
 * waiter of the waiting core (those live on a stack of one process). So every wait here
 * sleeps on a word of the object itself with a process-shared futex, and wakers wake that
 * word:
 *   Lock       a robust, process-shared, error-checking pthread mutex (pmutex_): the kernel's
 *              robust-futex list releases it, marked "owner died", when its owner dies, so
 *              the next acquirer gets WEFT_EOWNERDEAD instead of waiting forever. Its owner is
 *              the tid in the mutex's futex word (glibc's layout, which is the kernel's robust
 *              futex ABI: the tid, cleared by the kernel when that thread dies).
 *   RLock      that Lock plus owner_ (the owner's tid) and count_.
 *   Semaphore  value_ is the futex word; nwaiters_ counts sleepers so release can skip the
 *              wake syscall; both sides use seq_cst so a sleeper's increment and a releaser's
 *              add cannot both miss each other (Dekker).
 *   Event      state_ = generation << 1 | SET; set bumps the generation, so a waiter that
 *              saw the flag down wakes for any set since, even one already cleared again
 *              (Python's rule: wait returns True once set was called).
 *   Condition  seq_ is bumped by every notify and is the futex word; signals_ counts
 *              notifications not yet taken; nwaiters_ counts waiters. A notify (lock held)
 *              adds min(n, waiters not yet signalled) to signals_; a waiter takes one only if
 *              seq_ moved since it began waiting, so a waiter that arrives after a notify
 *              cannot steal it. The lock is found through an offset from the condition, so
 *              the pair may be mapped at any address.
 * Every wait is the waiting core's park on a shared word (weft__shared_park: a thread sleeps
 * in futex(2), a coroutine looks at the word between naps); the Lock's is on the mutex's own
 * futex word, marked with the kernel's FUTEX_WAITERS bit so that an unlock wakes it.
 */
#include "sync_internal.h"
#include "weft/process.h"

#include <limits.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#define TID_MASK 0x3fffffffu /* FUTEX_TID_MASK */

/* ---- the caller's tid, cached (gettid is a system call each time) ------------------------- */

static WEFT__TLS pid_t tid_cache;
static pthread_once_t tid_once = PTHREAD_ONCE_INIT;

static void tid_forget(void)
{
    tid_cache = 0; /* in a fork child, the forking thread has a new tid */
}

static const weft__fork_hooks_t fork_hooks = {.rank = WEFT__LAYER_SYNC, .child = tid_forget};

static void tid_init(void)
{
    weft__fork_register(&fork_hooks); /* a failure only costs the cache in children */
}

static pid_t my_tid(void)
{
    if (weft__unlikely(!tid_cache)) {
        pthread_once(&tid_once, tid_init);
        tid_cache = gettid();
    }
    return tid_cache;
}

/* ---- Lock ---------------------------------------------------------------------------------- */

int weft_lock_init_shared(weft_lock_t *l)
{
    if (!l) return WEFT_EINVAL;
    memset(l, 0, sizeof *l); /* the reserved tail and the union's spare bytes too */
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a)) return WEFT_ENOMEM;
    int rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (!rc) rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (!rc) rc = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    if (!rc) {
        atomic_store_explicit(&l->state_, WEFT__PLOCK_NOBODY, memory_order_relaxed);
        l->shared_ = 1;
        rc = pthread_mutex_init(&l->pmutex_, &a);
    }
    pthread_mutexattr_destroy(&a);
    if (!rc) WEFT__OBJ_INIT(l, WEFT__ID_LOCK);
    return rc ? WEFT_ENOSYS : 0;
}

static uint32_t futex_word(const weft_lock_t *l)
{
    /* Relaxed: a snapshot of who owns it; only the owner's own tid is acted upon, and only
     * the owner can have written it. */
    return (uint32_t)__atomic_load_n(&l->pmutex_.__data.__lock, __ATOMIC_RELAXED);
}

bool weft__plock_locked(const weft_lock_t *l)
{
    return (futex_word(l) & TID_MASK) != 0;
}

static bool plock_owned(const weft_lock_t *l)
{
    return (futex_word(l) & TID_MASK) == (uint32_t)my_tid();
}

int weft__plock_destroy(weft_lock_t *l)
{
    if (weft__plock_locked(l)) return WEFT_EBUSY;
    pthread_mutex_destroy(&l->pmutex_);
    return 0;
}

/* Which context of the owning thread holds a shared Lock (state_, which shared mode keeps at
 * WEFT__PLOCK_NOBODY or above so the private fast paths fail on it): the mutex knows only the
 * thread, and coroutines of one thread must tell "I hold it"
 * (WEFT_EDEADLK) from "a sibling holds it" (wait). Bits of the waiting context's address:
 * meaningful only next to the mutex's owner tid, i.e. within the owner's process. */
static uint32_t ctx_tag(void)
{
    return (uint32_t)((uintptr_t)weft__waitctx_current() >> 3) | WEFT__PLOCK_NOBODY;
}

/* pthread_mutex_trylock, where a coroutine finding the lock held by another coroutine of its
 * thread sees EBUSY (glibc's robust error-checking mutex says EDEADLK to its owner thread).
 * (A thread without coroutines has one context: its EDEADLK always finds its own tag.) */
static int plock_try(weft_lock_t *l)
{
    int r = pthread_mutex_trylock(&l->pmutex_);
    if (r == EDEADLK && atomic_load_explicit(&l->state_, memory_order_relaxed) != ctx_tag())
        r = EBUSY;
    return r;
}

static int plock_result(weft_lock_t *l, int r)
{
    if (r == 0 || r == EOWNERDEAD) /* held: by this context */
        atomic_store_explicit(&l->state_, ctx_tag(), memory_order_relaxed);
    switch (r) {
    case 0:
        return 0;
    case EOWNERDEAD:
        pthread_mutex_consistent(&l->pmutex_); /* the caller holds it; its data may be torn */
        return WEFT_EOWNERDEAD;
    case EDEADLK:
        return WEFT_EDEADLK;
    case ENOTRECOVERABLE: /* weft always makes it consistent; another user did not */
        return WEFT_EOWNERDEAD;
    default:
        return weft__errno(r);
    }
}

/* The mutex's futex word, as the waiting core parks on it. */
static _Atomic uint32_t *lock_word(weft_lock_t *l)
{
    return (_Atomic uint32_t *)(void *)&l->pmutex_.__data.__lock;
}

#define WAITERS 0x80000000u /* FUTEX_WAITERS */

/* Sets the kernel's FUTEX_WAITERS bit in a held mutex's word: glibc's robust unlock then wakes
 * the word (one waiter), and so does the kernel when the owner dies. Returns the word as
 * marked, or 0 when the mutex was found free (try it again). Relaxed: the word is only looked
 * at; the mutex itself is taken by trylock. */
static uint32_t mark_waiters(weft_lock_t *l)
{
    uint32_t v = atomic_load_explicit(lock_word(l), memory_order_relaxed);
    while (v & TID_MASK) {
        if (v & WAITERS) return v;
        if (atomic_compare_exchange_weak_explicit(lock_word(l), &v, v | WAITERS,
                                                  memory_order_relaxed, memory_order_relaxed))
            return v | WAITERS;
    }
    return 0;
}

/* Tries, then parks on the mutex's word until it changes, and tries again (glibc's robust lock
 * loop, with the waiting core's park: a thread sleeps in futex(2), a coroutine as the core
 * decides; trylock keeps TSan's view of the mutex whole, EOWNERDEAD included). A waiter marks
 * the holder's word before every park, so the holder's unlock wakes somebody who tries again;
 * one that takes the mutex after a park marks it again, since others may still sleep (glibc
 * does the same); and one gives up (deadline, cancel) only right after marking the holder's
 * word, so a wake it took leaves somebody to wake at the next unlock. */
int weft__plock_acquire_deadline(weft_lock_t *l, int64_t deadline, bool nocancel)
{
    int r = plock_try(l);
    if (r != EBUSY) return plock_result(l, r);
    if (deadline != WEFT_NO_DEADLINE && deadline <= weft_time_monotonic_ns()) return WEFT_ETIMEDOUT;
    for (int rc = 0;;) {
        uint32_t seen = mark_waiters(l);
        if (seen && rc) return rc;
        if (seen) rc = weft__shared_park(lock_word(l), seen, deadline, nocancel);
        r = plock_try(l);
        if (r == 0 || r == EOWNERDEAD) mark_waiters(l);
        if (r != EBUSY) return plock_result(l, r);
    }
}

int weft__plock_acquire(weft_lock_t *l, double timeout)
{
    int64_t deadline;
    if (weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    return weft__plock_acquire_deadline(l, deadline, false);
}

int weft__plock_release(weft_lock_t *l)
{
    if (!plock_owned(l)) return WEFT_EPERM;
    return pthread_mutex_unlock(&l->pmutex_) ? WEFT_EPERM : 0;
}

/* ---- RLock --------------------------------------------------------------------------------- */

int weft_rlock_init_shared(weft_rlock_t *r)
{
    if (!r) return WEFT_EINVAL;
    memset(r, 0, sizeof *r);
    int rc = weft_lock_init_shared(&r->lock_);
    if (!rc) WEFT__OBJ_INIT(r, WEFT__ID_RLOCK);
    return rc;
}

/* Owned: the mutex's futex word names us (a dead owner's tid is cleared by the kernel, so a
 * thread that inherits a dead owner's tid does not inherit the lock). */
bool weft__prlock_is_owned(const weft_rlock_t *r)
{
    return plock_owned(&r->lock_);
}

int weft__prlock_acquire(weft_rlock_t *r, double timeout)
{
    if (weft__prlock_is_owned(r)) {
        if (r->count_ == ULONG_MAX) return WEFT_EOVERFLOW;
        r->count_++;
        return 0;
    }
    int rc = weft__plock_acquire(&r->lock_, timeout);
    if (rc && rc != WEFT_EOWNERDEAD) return rc;
    /* Relaxed: owner_ is informational in shared mode (ownership is the futex word). */
    atomic_store_explicit(&r->owner_, (void *)(uintptr_t)my_tid(), memory_order_relaxed);
    r->count_ = 1;
    return rc;
}

int weft__prlock_release(weft_rlock_t *r)
{
    if (!weft__prlock_is_owned(r)) return WEFT_EPERM;
    if (--r->count_ > 0) return 0;
    atomic_store_explicit(&r->owner_, NULL, memory_order_relaxed);
    return weft__plock_release(&r->lock_);
}

/* ---- Semaphore ----------------------------------------------------------------------------- */

int weft_semaphore_init_shared(weft_semaphore_t *s, unsigned value, bool bounded)
{
    int rc = weft_semaphore_init(s, value, bounded);
    if (rc) return rc;
    atomic_store_explicit(&s->nwaiters_, 0, memory_order_relaxed);
    s->shared_ = 1;
    return 0;
}

int weft__psem_acquire(weft_semaphore_t *s, double timeout)
{
    if (weft__sem_try_take(s)) return 0;
    int64_t deadline;
    if (weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    for (;;) {
        int rc = 0;
        atomic_fetch_add_explicit(&s->nwaiters_, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&s->value_, memory_order_seq_cst) == 0)
            rc = weft__shared_park(&s->value_, 0, deadline, false);
        atomic_fetch_sub_explicit(&s->nwaiters_, 1, memory_order_relaxed);
        if (weft__sem_try_take(s)) return 0; /* a unit wins over a deadline or cancel */
        if (rc) return rc;
    }
}

int weft__psem_release(weft_semaphore_t *s, unsigned n)
{
    uint64_t limit = s->bound_ ? s->bound_ & ~0x80000000u : WEFT_SEMAPHORE_MAX;
    uint32_t v = atomic_load_explicit(&s->value_, memory_order_relaxed);
    do {
        if ((uint64_t)v + n > limit) return WEFT_EOVERFLOW;
    } while (!atomic_compare_exchange_weak_explicit(&s->value_, &v, v + n, memory_order_seq_cst,
                                                    memory_order_relaxed));
    if (atomic_load_explicit(&s->nwaiters_, memory_order_seq_cst))
        weft__futex_wake(&s->value_, n > INT32_MAX ? INT32_MAX : (int)n, true);
    return 0;
}

/* ---- Event --------------------------------------------------------------------------------- */

enum { SET = 1 };

int weft_event_init_shared(weft_event_t *e)
{
    int rc = weft_event_init(e);
    if (rc) return rc;
    atomic_store_explicit(&e->nwaiters_, 0, memory_order_relaxed);
    e->shared_ = 1;
    return 0;
}

int weft__pevent_set(weft_event_t *e)
{
    uint32_t s = atomic_load_explicit(&e->state_, memory_order_relaxed);
    do {
        if (s & SET) return 0;
    } while (!atomic_compare_exchange_weak_explicit(&e->state_, &s, (s + 2) | SET,
                                                    memory_order_seq_cst, memory_order_relaxed));
    if (atomic_load_explicit(&e->nwaiters_, memory_order_seq_cst))
        weft__futex_wake(&e->state_, INT32_MAX, true);
    return 0;
}

int weft__pevent_wait(weft_event_t *e, double timeout)
{
    uint32_t s = atomic_load_explicit(&e->state_, memory_order_acquire);
    if (s & SET) return 0;
    int64_t deadline;
    if (weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    for (;;) {
        int rc = 0;
        atomic_fetch_add_explicit(&e->nwaiters_, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&e->state_, memory_order_seq_cst) == s)
            rc = weft__shared_park(&e->state_, s, deadline, false);
        atomic_fetch_sub_explicit(&e->nwaiters_, 1, memory_order_relaxed);
        /* Any change from a state with SET down is a set (clear of a clear flag writes
         * nothing, and only set bumps the generation). */
        if (atomic_load_explicit(&e->state_, memory_order_acquire) != s) return 0;
        if (rc) return rc;
    }
}

/* ---- Condition ----------------------------------------------------------------------------- */

int weft_condition_init_shared(weft_condition_t *c, weft_lock_t *lock, weft_rlock_t *rlock)
{
    if (!c || (lock && rlock)) return WEFT_EINVAL;
    if ((lock && !lock->shared_) || (rlock && !rlock->lock_.shared_)) return WEFT_EINVAL;
    memset(c, 0, sizeof *c);
    int rc = weft_rlock_init_shared(&c->own_);
    if (rc) return rc;
    c->lock_ = NULL;
    c->rlock_ = NULL;
    c->sh_.off_ = lock ? (char *)lock - (char *)c : rlock ? (char *)rlock - (char *)c : 0;
    c->sh_.is_rlock_ = !lock;
    atomic_store_explicit(&c->sh_.seq_, 0, memory_order_relaxed);
    atomic_store_explicit(&c->sh_.nwaiters_, 0, memory_order_relaxed);
    atomic_store_explicit(&c->sh_.signals_, 0, memory_order_relaxed);
    c->shared_ = 1;
    WEFT__OBJ_INIT(c, WEFT__ID_CONDITION);
    return 0;
}

static weft_lock_t *pcond_lock(weft_condition_t *c)
{
    return c->sh_.is_rlock_ ? NULL : (weft_lock_t *)(void *)((char *)c + c->sh_.off_);
}

static weft_rlock_t *pcond_rlock(weft_condition_t *c)
{
    if (!c->sh_.is_rlock_) return NULL;
    return c->sh_.off_ ? (weft_rlock_t *)(void *)((char *)c + c->sh_.off_) : &c->own_;
}

bool weft__pcond_owned(weft_condition_t *c)
{
    weft_lock_t *l = pcond_lock(c);
    return l ? plock_owned(l) : weft__prlock_is_owned(pcond_rlock(c));
}

int weft__pcond_acquire(weft_condition_t *c, double timeout)
{
    weft_lock_t *l = pcond_lock(c);
    return l ? weft__plock_acquire(l, timeout) : weft__prlock_acquire(pcond_rlock(c), timeout);
}

int weft__pcond_release(weft_condition_t *c)
{
    weft_lock_t *l = pcond_lock(c);
    return l ? weft__plock_release(l) : weft__prlock_release(pcond_rlock(c));
}

int weft__psem_destroy(weft_semaphore_t *s)
{
    return atomic_load_explicit(&s->nwaiters_, memory_order_acquire) ? WEFT_EBUSY : 0;
}

int weft__pevent_destroy(weft_event_t *e)
{
    return atomic_load_explicit(&e->nwaiters_, memory_order_acquire) ? WEFT_EBUSY : 0;
}

int weft__pcond_destroy(weft_condition_t *c)
{
    if (atomic_load_explicit(&c->sh_.nwaiters_, memory_order_acquire)) return WEFT_EBUSY;
    return weft__plock_destroy(&c->own_.lock_);
}

/* Takes one notification if one is there for a waiter that began at seq `since`. */
static bool take_signal(weft_condition_t *c, uint32_t since)
{
    if (atomic_load_explicit(&c->sh_.seq_, memory_order_acquire) == since) return false;
    uint32_t n = atomic_load_explicit(&c->sh_.signals_, memory_order_relaxed);
    while (n > 0)
        if (atomic_compare_exchange_weak_explicit(&c->sh_.signals_, &n, n - 1, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return true;
    return false;
}

int weft__pcond_wait(weft_condition_t *c, double timeout)
{
    int64_t deadline;
    if (weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (!weft__pcond_owned(c)) return WEFT_EPERM;
    weft_lock_t *l = pcond_lock(c);
    weft_rlock_t *r = pcond_rlock(c);

    /* Lock held: no notify runs between reading seq_ and counting ourselves in. */
    uint32_t since = atomic_load_explicit(&c->sh_.seq_, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->sh_.nwaiters_, 1, memory_order_relaxed);
    unsigned long levels = r ? r->count_ : 0;
    if (r) atomic_store_explicit(&r->owner_, NULL, memory_order_relaxed);
    weft__plock_release(l ? l : &r->lock_);

    int rc = 0;
    uint32_t seen = since;
    while (!take_signal(c, since)) {
        /* Sleep until seq_ moves past what we saw (a notify we could not take is somebody
         * else's: wait for the next one). */
        seen = atomic_load_explicit(&c->sh_.seq_, memory_order_acquire);
        if (take_signal(c, since)) break;
        rc = weft__shared_park(&c->sh_.seq_, seen, deadline, false);
        if (rc) break;
    }

    int relock = weft__plock_acquire_deadline(l ? l : &r->lock_, WEFT_NO_DEADLINE, true);
    /* Lock held again. A notify that raced with our timeout counts as received (Python). */
    if (rc && take_signal(c, since)) rc = 0;
    if (atomic_fetch_sub_explicit(&c->sh_.nwaiters_, 1, memory_order_relaxed) == 1)
        atomic_store_explicit(&c->sh_.signals_, 0, memory_order_relaxed); /* none to take */
    if (r) {
        atomic_store_explicit(&r->owner_, (void *)(uintptr_t)my_tid(), memory_order_relaxed);
        r->count_ = levels;
    }
    return relock == WEFT_EOWNERDEAD ? relock : rc;
}

int weft__pcond_notify(weft_condition_t *c, int n)
{
    if (!weft__pcond_owned(c)) return WEFT_EPERM;
    /* Lock held: nwaiters_ and signals_ cannot change under us except by waiters taking
     * signals (which only lowers signals_). */
    uint32_t waiting = atomic_load_explicit(&c->sh_.nwaiters_, memory_order_relaxed);
    uint32_t pending = atomic_load_explicit(&c->sh_.signals_, memory_order_relaxed);
    uint32_t free = waiting > pending ? waiting - pending : 0;
    uint32_t k = n < 0 || (uint32_t)n > free ? free : (uint32_t)n;
    if (k == 0) return 0;
    atomic_fetch_add_explicit(&c->sh_.signals_, k, memory_order_release);
    atomic_fetch_add_explicit(&c->sh_.seq_, 1, memory_order_release);
    /* Wake everyone on the word: each checks for a signal of its own and sleeps again if it
     * finds none (a futex cannot pick which sleepers wake). */
    weft__futex_wake(&c->sh_.seq_, INT32_MAX, true);
    return 0;
}
