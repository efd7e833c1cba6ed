/*
 * Lock (threading.Lock): the behaviours of CPython's Lib/test/lock_tests.py (BaseLockTests and
 * LockTests), then what C adds: NULL arguments, destroy while held, timeouts at the edges,
 * cancellation through the waiting core, a hand-off ping-pong, and mutual exclusion under
 * stress.
 *
 * To know that a helper thread is blocked in acquire, the tests look at the lock's wait queue
 * (white-box, through wait/wait_internal.h) instead of sleeping: a queued waiter is parked or
 * about to park, which is all the checks need.
 */
#include "weft_test.h"

#include "wait/wait_internal.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>

/* Iteration counts for the stress cases: sanitizers run them 5-15x slower. */
#define SCALED(n) (SANITIZED ? (n) / 4 : (n))

#define MS 1000000LL
/* How much later than its timeout a timed wait may return on a loaded machine. */
#define SLACK_NS (5000 * MS)

/* ---- helpers ----------------------------------------------------------------------------- */

static int queued(weft_lock_t *l)
{
    return weft_test_queue_length(&l->waiters_);
}

static void wait_queued(weft_lock_t *l, int n)
{
    weft_test_wait_queued(&l->waiters_, n);
}

/* A helper thread doing one acquire of a Lock (weft_test_acquirer_t). */
typedef weft_test_acquirer_t acquirer_t;
#define wait_at_least weft_test_wait_at_least

static int acquire_one(void *obj, double timeout)
{
    return weft_lock_acquire(obj, timeout);
}

static int release_one(void *obj)
{
    return weft_lock_release(obj);
}

static acquirer_t acquirer(weft_lock_t *obj, double timeout, bool release_after)
{
    return (acquirer_t){.acquire = acquire_one,
                        .release = release_after ? release_one : NULL,
                        .obj = obj,
                        .timeout = timeout};
}

/* ---- CPython BaseLockTests / LockTests --------------------------------------------------- */

/* BaseLockTests.test_constructor (+ the static initialiser C adds). */
static void lock_init_gives_unlocked_lock(void **state)
{
    (void)state;
    weft_lock_t l;
    assert_int_equal(weft_lock_init(&l), 0);
    assert_false(weft_lock_locked(&l));
    assert_int_equal(weft_lock_destroy(&l), 0);

    weft_lock_t s = WEFT_LOCK_INIT;
    assert_false(weft_lock_locked(&s));
    assert_int_equal(weft_lock_acquire(&s, 0), 0);
    assert_int_equal(weft_lock_release(&s), 0);
    assert_int_equal(weft_lock_destroy(&s), 0);
}

/* BaseLockTests.test_acquire_release. */
static void lock_acquire_release(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    assert_int_equal(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    assert_true(weft_lock_locked(&l));
    assert_int_equal(weft_lock_release(&l), 0);
    assert_false(weft_lock_locked(&l));
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* BaseLockTests.test_acquire_destroy: in C, destroy after the release (destroying a held lock
 * is WEFT_EBUSY, see lock_destroy_while_held_is_ebusy). */
static void lock_destroy_after_acquire_release(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    assert_int_equal(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    assert_int_equal(weft_lock_release(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
    /* A destroyed lock may be initialised again. */
    assert_int_equal(weft_lock_init(&l), 0);
    assert_int_equal(weft_lock_acquire(&l, 0), 0);
    assert_int_equal(weft_lock_release(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* BaseLockTests.test_try_acquire: acquire(blocking=False) is a timeout of 0. */
static void lock_try_acquire_polls(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    assert_int_equal(weft_lock_acquire(&l, 0), 0);
    assert_int_equal(weft_lock_acquire(&l, 0), WEFT_ETIMEDOUT);
    assert_true(weft_lock_locked(&l));
    assert_int_equal(weft_lock_release(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* BaseLockTests.test_try_acquire_contended: a poll from another thread fails, at once. */
static void lock_try_acquire_contended_fails_at_once(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    weft_lock_acquire(&l, WEFT_FOREVER);
    acquirer_t a = acquirer(&l, 0, true);
    weft_test_join(weft_test_start(weft_test_acquire_thread, &a));
    assert_int_equal(a.result, WEFT_ETIMEDOUT);
    assert_true(a.elapsed_ns < SLACK_NS);
    assert_int_equal(weft_lock_release(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* BaseLockTests.test_acquire_contended: N threads block on a held lock; none gets through
 * until it is released, then all do, one after the other. */
static void lock_acquire_contended_blocks_until_release(void **state)
{
    (void)state;
    enum { N = 5 };
    weft_lock_t l;
    weft_lock_init(&l);
    weft_lock_acquire(&l, WEFT_FOREVER);
    acquirer_t a[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        a[i] = acquirer(&l, WEFT_FOREVER, true);
        t[i] = weft_test_start(weft_test_acquire_thread, &a[i]);
    }
    wait_queued(&l, N);
    for (int i = 0; i < N; i++) assert_int_equal(atomic_load(&a[i].done), 0);
    assert_int_equal(weft_lock_destroy(&l), WEFT_EBUSY);
    assert_int_equal(weft_lock_release(&l), 0);
    for (int i = 0; i < N; i++) {
        weft_test_join(t[i]);
        assert_int_equal(a[i].result, 0);
        assert_int_equal(a[i].release_result, 0);
    }
    assert_false(weft_lock_locked(&l));
    assert_int_equal(queued(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* BaseLockTests.test_with: C's `with lock:` is acquire, then a release on every way out of
 * the block (one exit path). */
static int with_lock(weft_lock_t *l, int err)
{
    int rc = weft_lock_acquire(l, WEFT_FOREVER);
    if (rc) return rc;
    if (err) goto out; /* the block "raises" */
    rc = 0;
out:
    weft_lock_release(l);
    return err ? err : rc;
}

static void lock_with_block_releases_on_every_exit(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    const int errs[] = {0, WEFT_EINVAL}; /* the block ends normally, then with an error */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(with_lock(&l, errs[i]), errs[i]);
        /* Another thread can take it: the block released it. */
        acquirer_t a = acquirer(&l, 5.0, true);
        weft_test_join(weft_test_start(weft_test_acquire_thread, &a));
        assert_int_equal(a.result, 0);
    }
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* BaseLockTests.test_thread_leak: many threads using a lock leave no thread behind (the leak
 * guard checks at teardown) and nothing allocated: the wait path never allocates. */
static void lock_thread_leak_check_run(void *arg, int i)
{
    (void)i;
    weft_lock_t *l = arg;
    for (int k = 0; k < 100; k++) {
        weft_lock_acquire(l, WEFT_FOREVER);
        weft_lock_release(l);
    }
}

static void lock_thread_leak(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    long allocs = weft_test_live_allocs();
    weft_test_run_threads(15, lock_thread_leak_check_run, &l);
    assert_int_equal(weft_test_live_allocs(), allocs);
    assert_false(weft_lock_locked(&l));
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* BaseLockTests.test_timeout: acquire(timeout) on a held lock waits about that long, then
 * fails with WEFT_ETIMEDOUT (Python: returns False). */
static void lock_acquire_timeout_expires(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    weft_lock_acquire(&l, WEFT_FOREVER);
    acquirer_t a = acquirer(&l, 0.1, true);
    weft_test_join(weft_test_start(weft_test_acquire_thread, &a));
    assert_int_equal(a.result, WEFT_ETIMEDOUT);
    assert_true(a.elapsed_ns >= 100 * MS);
    assert_true(a.elapsed_ns < 100 * MS + SLACK_NS);
    assert_true(weft_lock_locked(&l));
    assert_int_equal(queued(&l), 0);
    assert_int_equal(weft_lock_release(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* BaseLockTests.test_timeout: acquire(timeout=5) of a free lock succeeds at once, and so do
 * timeouts Python calls TIMEOUT_MAX and beyond (weft: too large to wait out means forever). */
static void lock_acquire_timeout_of_free_lock_succeeds_at_once(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    const double timeouts[] = {5.0, 1e-9, 1e300, INFINITY, WEFT_FOREVER, -100.0};
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        int64_t t0 = weft_time_monotonic_ns();
        assert_int_equal(weft_lock_acquire(&l, timeouts[i]), 0);
        assert_true(weft_time_monotonic_ns() - t0 < SLACK_NS);
        assert_int_equal(weft_lock_release(&l), 0);
    }
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* BaseLockTests.test_timeout: Python raises ValueError for a timeout it cannot use; weft's
 * only such value is NaN, refused whether the lock is free or held. */
static void lock_acquire_timeout_nan_is_einval(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    assert_int_equal(weft_lock_acquire(&l, NAN), WEFT_EINVAL);
    assert_false(weft_lock_locked(&l)); /* a refused call takes nothing */
    weft_lock_acquire(&l, WEFT_FOREVER);
    assert_int_equal(weft_lock_acquire(&l, NAN), WEFT_EINVAL);
    assert_int_equal(weft_lock_release(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* A timed acquire that is satisfied in time returns 0, not a timeout. */
static void lock_acquire_timeout_succeeds_when_released_in_time(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    weft_lock_acquire(&l, WEFT_FOREVER);
    acquirer_t a = acquirer(&l, 30.0, true);
    pthread_t t = weft_test_start(weft_test_acquire_thread, &a);
    wait_queued(&l, 1);
    assert_int_equal(weft_lock_release(&l), 0);
    weft_test_join(t);
    assert_int_equal(a.result, 0);
    assert_int_equal(a.release_result, 0);
    assert_true(a.elapsed_ns < 30000 * MS);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* LockTests.test_different_thread: a Lock has no owner; another thread may release it. */
static void *release_thread(void *p)
{
    weft_lock_t *l = p;
    return (void *)(intptr_t)weft_lock_release(l);
}

static void lock_release_by_other_thread(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    weft_lock_acquire(&l, WEFT_FOREVER);
    void *rc;
    pthread_t t = weft_test_start(release_thread, &l);
    assert_int_equal(pthread_join(t, &rc), 0);
    assert_int_equal((int)(intptr_t)rc, 0);
    assert_false(weft_lock_locked(&l));
    assert_int_equal(weft_lock_acquire(&l, 0), 0);
    assert_int_equal(weft_lock_release(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* LockTests.test_state_after_timeout (bpo-11618): a timed-out acquire leaves the lock in a
 * proper state: releasing frees it, a poll takes it, and a later blocked waiter is woken. */
static void lock_state_after_timeout(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    weft_lock_acquire(&l, WEFT_FOREVER);
    assert_int_equal(weft_lock_acquire(&l, 0.01), WEFT_ETIMEDOUT);
    assert_int_equal(weft_lock_release(&l), 0);
    assert_false(weft_lock_locked(&l));
    assert_int_equal(weft_lock_acquire(&l, 0), 0);

    /* Held again, after a timeout: the next waiter still gets its wake-up. */
    assert_int_equal(weft_lock_acquire(&l, 0.01), WEFT_ETIMEDOUT);
    acquirer_t a = acquirer(&l, WEFT_FOREVER, true);
    pthread_t t = weft_test_start(weft_test_acquire_thread, &a);
    wait_queued(&l, 1);
    assert_int_equal(weft_lock_release(&l), 0);
    weft_test_join(t);
    assert_int_equal(a.result, 0);
    assert_int_equal(a.release_result, 0);
    assert_false(weft_lock_locked(&l));
    assert_int_equal(weft_lock_release(&l), WEFT_EPERM);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* LockTests.test_reacquire: the holder's second acquire blocks until another thread
 * releases the lock. */
typedef struct reacquirer {
    weft_lock_t *lock;
    _Atomic int phase;
    int rc1, rc2;
} reacquirer_t;

static void *reacquire_thread(void *p)
{
    reacquirer_t *r = p;
    r->rc1 = weft_lock_acquire(r->lock, WEFT_FOREVER);
    atomic_store(&r->phase, 1);
    r->rc2 = weft_lock_acquire(r->lock, WEFT_FOREVER);
    atomic_store(&r->phase, 2);
    return NULL;
}

static void lock_reacquire_blocks_until_released_elsewhere(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    reacquirer_t r = {.lock = &l};
    pthread_t t = weft_test_start(reacquire_thread, &r);
    weft_test_wait_at_least(&r.phase, 1);
    wait_queued(&l, 1); /* blocked in its second acquire */
    assert_int_equal(atomic_load(&r.phase), 1);
    assert_int_equal(weft_lock_release(&l), 0);
    weft_test_join(t);
    assert_int_equal(atomic_load(&r.phase), 2);
    assert_int_equal(r.rc1, 0);
    assert_int_equal(r.rc2, 0);
    /* The thread is gone and left the lock held; anyone may release it. */
    assert_true(weft_lock_locked(&l));
    assert_int_equal(weft_lock_release(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* The holder re-acquiring with a timeout does not deadlock: it times out. */
static void lock_reacquire_by_holder_times_out(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    weft_lock_acquire(&l, WEFT_FOREVER);
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(weft_lock_acquire(&l, 0.05), WEFT_ETIMEDOUT);
    int64_t elapsed = weft_time_monotonic_ns() - t0;
    assert_true(elapsed >= 50 * MS);
    assert_true(elapsed < 50 * MS + SLACK_NS);
    assert_int_equal(weft_lock_release(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* BaseLockTests.test_locked. */
static void lock_locked_reports_state(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    assert_false(weft_lock_locked(&l));
    weft_lock_acquire(&l, WEFT_FOREVER);
    assert_true(weft_lock_locked(&l));
    weft_lock_release(&l);
    assert_false(weft_lock_locked(&l));
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* Python's "release unlocked lock" RuntimeError is WEFT_EPERM, and it changes nothing. */
static void lock_release_unlocked_is_eperm(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    assert_int_equal(weft_lock_release(&l), WEFT_EPERM);
    assert_false(weft_lock_locked(&l));
    weft_lock_acquire(&l, WEFT_FOREVER);
    assert_int_equal(weft_lock_release(&l), 0);
    assert_int_equal(weft_lock_release(&l), WEFT_EPERM);
    assert_int_equal(weft_lock_acquire(&l, 0), 0);
    assert_int_equal(weft_lock_release(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* ---- failure paths ------------------------------------------------------------------------ */

static void lock_null_arguments_are_einval(void **state)
{
    (void)state;
    assert_int_equal(weft_lock_init(NULL), WEFT_EINVAL);
    assert_int_equal(weft_lock_destroy(NULL), WEFT_EINVAL);
    assert_int_equal(weft_lock_acquire(NULL, WEFT_FOREVER), WEFT_EINVAL);
    assert_int_equal(weft_lock_acquire(NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_lock_release(NULL), WEFT_EINVAL);
    assert_false(weft_lock_locked(NULL));
}

/* Destroy is refused while the lock is held or waited on, and the refusal changes nothing. */
static void lock_destroy_while_held_is_ebusy(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    weft_lock_acquire(&l, WEFT_FOREVER);
    assert_int_equal(weft_lock_destroy(&l), WEFT_EBUSY);
    assert_true(weft_lock_locked(&l));
    assert_int_equal(weft_lock_acquire(&l, 0), WEFT_ETIMEDOUT);

    /* Waited on: still busy, and the waiter still gets the lock. */
    acquirer_t a = acquirer(&l, WEFT_FOREVER, true);
    pthread_t t = weft_test_start(weft_test_acquire_thread, &a);
    wait_queued(&l, 1);
    assert_int_equal(weft_lock_destroy(&l), WEFT_EBUSY);
    assert_int_equal(weft_lock_release(&l), 0);
    weft_test_join(t);
    assert_int_equal(a.result, 0);
    assert_int_equal(a.release_result, 0);

    assert_int_equal(weft_lock_acquire(&l, 0), 0);
    assert_int_equal(weft_lock_release(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* "Waited on" is checked on the queue, not only on the state word: right after a release the
 * lock reads free while the waiters it did not wake are still queued. (White-box: a waiter is
 * queued by hand on a free lock to hold that moment still.) */
static void lock_destroy_with_queued_waiter_is_ebusy(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waitq_lock(&l.waiters_);
    weft__waitq_push(&l.waiters_, &w);
    weft__waitq_unlock(&l.waiters_);
    assert_false(weft_lock_locked(&l));
    assert_int_equal(weft_lock_destroy(&l), WEFT_EBUSY);
    weft__waitq_lock(&l.waiters_);
    weft__waitq_remove(&l.waiters_, &w);
    weft__waitq_unlock(&l.waiters_);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* A timeout of 0 never waits, also when the lock is contended by a parked waiter. */
static void lock_timeout_zero_polls_without_waiting(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    weft_lock_acquire(&l, WEFT_FOREVER);
    acquirer_t a = acquirer(&l, WEFT_FOREVER, true);
    pthread_t t = weft_test_start(weft_test_acquire_thread, &a);
    wait_queued(&l, 1);
    int64_t t0 = weft_time_monotonic_ns();
    for (int i = 0; i < 1000; i++) assert_int_equal(weft_lock_acquire(&l, 0), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic_ns() - t0 < SLACK_NS);
    assert_int_equal(queued(&l), 1); /* the polls never queued themselves */
    assert_int_equal(weft_lock_release(&l), 0);
    weft_test_join(t);
    assert_int_equal(a.result, 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* ---- cancellation (the waiting core's internal API) --------------------------------------- */

/* A blocked acquire is interrupted by a cancel of its waiting context and returns
 * WEFT_ECANCELED; the cancel stays pending (every later blocking acquire fails at once) until
 * uncancel; nothing about the lock changed. */
typedef struct canceled_acquirer {
    weft_lock_t *lock;
    _Atomic(weft__waitctx_t *) ctx;
    _Atomic int phase;
    int rc_blocked, rc_pending, rc_pending_timed, rc_after_uncancel, rc_final;
    int64_t pending_ns, after_uncancel_ns;
} canceled_acquirer_t;

static void *canceled_acquire_thread(void *p)
{
    canceled_acquirer_t *c = p;
    weft__waitctx_t *self = weft__waitctx_current();
    atomic_store(&c->ctx, self);
    c->rc_blocked = weft_lock_acquire(c->lock, WEFT_FOREVER);
    int64_t t0 = weft_time_monotonic_ns();
    c->rc_pending = weft_lock_acquire(c->lock, WEFT_FOREVER);
    c->rc_pending_timed = weft_lock_acquire(c->lock, 10.0);
    c->pending_ns = weft_time_monotonic_ns() - t0;
    weft__waitctx_uncancel(self);
    t0 = weft_time_monotonic_ns();
    c->rc_after_uncancel = weft_lock_acquire(c->lock, 0.05);
    c->after_uncancel_ns = weft_time_monotonic_ns() - t0;
    atomic_store(&c->phase, 1);
    c->rc_final = weft_lock_acquire(c->lock, WEFT_FOREVER);
    if (c->rc_final == 0) weft_lock_release(c->lock);
    return NULL;
}

static void lock_cancel_interrupts_blocked_acquire(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    weft_lock_acquire(&l, WEFT_FOREVER);
    canceled_acquirer_t c = {.lock = &l};
    pthread_t t = weft_test_start(canceled_acquire_thread, &c);
    wait_queued(&l, 1);
    weft__waitctx_cancel(atomic_load(&c.ctx));
    weft_test_wait_at_least(&c.phase, 1);
    /* The canceled waiter left the queue, the lock is still ours. */
    assert_true(weft_lock_locked(&l));
    wait_queued(&l, 1); /* the uncanceled thread blocks again, for real */
    assert_int_equal(weft_lock_release(&l), 0);
    weft_test_join(t);
    assert_int_equal(c.rc_blocked, WEFT_ECANCELED);
    assert_int_equal(c.rc_pending, WEFT_ECANCELED);
    assert_int_equal(c.rc_pending_timed, WEFT_ECANCELED);
    assert_true(c.pending_ns < SLACK_NS);
    assert_int_equal(c.rc_after_uncancel, WEFT_ETIMEDOUT);
    assert_true(c.after_uncancel_ns >= 50 * MS);
    assert_int_equal(c.rc_final, 0);
    assert_false(weft_lock_locked(&l));
    assert_int_equal(queued(&l), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* Canceling one of several waiters costs the others nothing: each still gets the lock. */
static void lock_cancel_one_waiter_others_still_get_lock(void **state)
{
    (void)state;
    enum { N = 3 };
    weft_lock_t l;
    weft_lock_init(&l);
    weft_lock_acquire(&l, WEFT_FOREVER);
    acquirer_t a[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        a[i] = acquirer(&l, WEFT_FOREVER, true);
        t[i] = weft_test_start(weft_test_acquire_thread, &a[i]);
        wait_queued(&l, i + 1); /* one at a time, so a[1] is in the middle of the queue */
    }
    weft__waitctx_cancel(atomic_load(&a[1].ctx));
    weft_test_join(t[1]);
    assert_int_equal(a[1].result, WEFT_ECANCELED);
    assert_int_equal(queued(&l), N - 1);
    assert_int_equal(weft_lock_release(&l), 0);
    weft_test_join(t[0]);
    weft_test_join(t[2]);
    assert_int_equal(a[0].result, 0);
    assert_int_equal(a[2].result, 0);
    assert_false(weft_lock_locked(&l));
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* A cancel racing a release: the canceled waiter either gets the lock (and releases it) or
 * fails with WEFT_ECANCELED, and the other waiter always gets its turn: a wake-up handed to
 * a waiter that is being canceled is never lost. The other waiter's timeout only turns a
 * lost wake-up into a failure instead of a hang. */
static void lock_cancel_racing_release_loses_no_wakeup(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    int rounds = SCALED(300);
    int got = 0, canceled = 0;
    for (int i = 0; i < rounds; i++) {
        weft_lock_acquire(&l, WEFT_FOREVER);
        acquirer_t victim = acquirer(&l, WEFT_FOREVER, true);
        acquirer_t other = acquirer(&l, 30.0, true);
        pthread_t tv = weft_test_start(weft_test_acquire_thread, &victim);
        pthread_t to = weft_test_start(weft_test_acquire_thread, &other);
        wait_queued(&l, 2);
        weft__waitctx_t *ctx = atomic_load(&victim.ctx);
        if (i % 3 == 0) { /* cancel, and release only once the victim has left the queue */
            weft__waitctx_cancel(ctx);
            weft_test_join(tv);
            weft_lock_release(&l);
        } else if (i % 3 == 1) {
            weft__waitctx_cancel(ctx);
            weft_lock_release(&l);
            weft_test_join(tv);
        } else {
            weft_lock_release(&l);
            weft__waitctx_cancel(ctx);
            weft_test_join(tv);
        }
        weft_test_join(to);
        assert_true(victim.result == 0 || victim.result == WEFT_ECANCELED);
        if (i % 3 == 0) assert_int_equal(victim.result, WEFT_ECANCELED);
        if (victim.result == 0) {
            got++;
            assert_int_equal(victim.release_result, 0);
        } else {
            canceled++;
        }
        assert_int_equal(other.result, 0);
        assert_int_equal(other.release_result, 0);
        assert_false(weft_lock_locked(&l));
        assert_int_equal(queued(&l), 0);
    }
    print_message("victim got the lock %d times, was canceled %d times\n", got, canceled);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* The same race made deterministic (white-box). The main thread holds the lock's queue lock,
 * so the head waiter (the victim) cannot leave the queue, and, once the victim is parked, its
 * waiting context's lock, which the core's leave() takes right after a park ends. Holding it,
 * it cancels the victim, which then stops in leave() still queued, and releases: the release
 * is sure to pop the canceled victim. That wake-up must not be lost: the victim takes the lock
 * (0) and passes it on, so the waiter behind it gets its turn (its timeout turns a lost
 * wake-up into a failure instead of a hang). */
static void lock_canceled_waiter_popped_by_release_passes_wake_on(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    weft__mutex_t *qlock = weft__waitq_mutex(&l.waiters_);
    int rounds = 0, stopped = 0;
    for (; rounds < 20; rounds++) {
        weft_lock_acquire(&l, WEFT_FOREVER);
        acquirer_t victim = acquirer(&l, WEFT_FOREVER, true);
        acquirer_t other = acquirer(&l, 10.0, true);
        pthread_t tv = weft_test_start(weft_test_acquire_thread, &victim);
        wait_queued(&l, 1);
        pthread_t to = weft_test_start(weft_test_acquire_thread, &other);
        wait_queued(&l, 2);
        weft__waitctx_t *ctx = atomic_load(&victim.ctx);
        weft__waitq_lock(&l.waiters_);
        weft__waiter_t *w = weft__waitq_first(&l.waiters_); /* the victim; alive while we hold q */
        int64_t give_up = weft_time_monotonic_ns() + 10000 * MS;
        while (atomic_load(&w->state) == WEFT__W_WAITING) { /* until parked: past enter() */
            assert_true(weft_time_monotonic_ns() < give_up);
            sched_yield();
        }
        weft__mutex_lock(&ctx->lock);
        weft_test_cancel_holding_ctx_lock(ctx, w);
        while (atomic_load(&w->state) != WEFT__W_CANCELED ||
               (atomic_load(&ctx->lock.state) != 2 && atomic_load(&qlock->state) != 2)) {
            assert_true(weft_time_monotonic_ns() < give_up);
            sched_yield();
        }
        bool in_leave = atomic_load(&ctx->lock.state) == 2;
        weft__waitq_unlock(&l.waiters_);
        assert_int_equal(weft_lock_release(&l), 0);
        weft__mutex_unlock(&ctx->lock);
        weft_test_join(tv);
        weft_test_join(to);
        if (in_leave) {
            stopped++;
            assert_int_equal(victim.result, 0); /* it was popped: the wake-up is its */
        }
        assert_true(victim.result == 0 || victim.result == WEFT_ECANCELED);
        assert_int_equal(other.result, 0);
        assert_false(weft_lock_locked(&l));
        assert_int_equal(queued(&l), 0);
    }
    print_message("canceled waiter stopped in leave() and popped by the release %d of %d times\n",
                  stopped, rounds);
    assert_int_equal(stopped, rounds);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* ---- hand-off ----------------------------------------------------------------------------- */

/* Two Locks used as binary semaphores, each acquired by one thread and released by the
 * other: the main thread releases `ping` and waits on `pong`, the partner does the reverse.
 * 10k round trips; the strict alternation shows in a plain counter. */
typedef struct pingpong {
    weft_lock_t ping, pong;
    int rounds;
    long counter; /* plain: the hand-off through the locks orders every access */
    int errors;
} pingpong_t;

static void *pong_thread(void *p)
{
    pingpong_t *pp = p;
    for (int i = 0; i < pp->rounds; i++) {
        if (weft_lock_acquire(&pp->ping, WEFT_FOREVER) != 0) pp->errors++;
        pp->counter++;
        if (weft_lock_release(&pp->pong) != 0) pp->errors++;
    }
    return NULL;
}

static void lock_handoff_ping_pong(void **state)
{
    (void)state;
    pingpong_t pp = {.rounds = 10000};
    weft_lock_init(&pp.ping);
    weft_lock_init(&pp.pong);
    weft_lock_acquire(&pp.ping, WEFT_FOREVER);
    weft_lock_acquire(&pp.pong, WEFT_FOREVER);
    pthread_t t = weft_test_start(pong_thread, &pp);
    for (int i = 0; i < pp.rounds; i++) {
        assert_int_equal(weft_lock_release(&pp.ping), 0);
        assert_int_equal(weft_lock_acquire(&pp.pong, WEFT_FOREVER), 0);
        assert_int_equal(pp.counter, i + 1);
    }
    weft_test_join(t);
    assert_int_equal(pp.errors, 0);
    assert_int_equal(pp.counter, pp.rounds);
    /* Each lock was last acquired and not yet released. */
    assert_true(weft_lock_locked(&pp.ping));
    assert_true(weft_lock_locked(&pp.pong));
    assert_int_equal(weft_lock_release(&pp.ping), 0);
    assert_int_equal(weft_lock_release(&pp.pong), 0);
    assert_int_equal(queued(&pp.ping), 0);
    assert_int_equal(queued(&pp.pong), 0);
    assert_int_equal(weft_lock_destroy(&pp.ping), 0);
    assert_int_equal(weft_lock_destroy(&pp.pong), 0);
}

/* ---- mutual exclusion under stress -------------------------------------------------------- */

typedef struct counted {
    weft_lock_t lock;
    weft_barrier_t start; /* all threads begin together, so they really contend */
    int iterations;
    bool timed;         /* mix in polls and short timeouts */
    long counter;       /* plain: only ever touched under the lock */
    _Atomic int inside; /* holders right now: must never exceed 1 */
    _Atomic int overlaps;
    _Atomic long successes;
    _Atomic long timeouts;
    _Atomic long contended; /* acquires that found the lock taken: evidence of contention */
    _Atomic int errors;
} counted_t;

/* A few dozen cycles of work, so threads overlap and holders get preempted mid-section. */
static void busy(int n)
{
    for (volatile int j = 0; j < n; j++) {
    }
}

/* Acquires c's lock, by the method chosen for this (thread, iteration), until it succeeds. */
static void acquire_somehow(counted_t *c, int i, int k)
{
    static const double timeouts[] = {WEFT_FOREVER, 0, 1e-6, 1e-4, 1e-3, 5.0};
    double timeout = c->timed ? timeouts[(i + k) % 6] : WEFT_FOREVER;
    int rc;
    while ((rc = weft_lock_acquire(&c->lock, timeout)) != 0) {
        if (rc != WEFT_ETIMEDOUT) atomic_fetch_add(&c->errors, 1);
        atomic_fetch_add(&c->timeouts, 1); /* relaxed would do: read after the join */
    }
}

static void count_under_lock(void *arg, int i)
{
    counted_t *c = arg;
    if (weft_barrier_wait(&c->start, 10.0) < 0) atomic_fetch_add(&c->errors, 1);
    for (int k = 0; k < c->iterations; k++) {
        if (weft_lock_locked(&c->lock)) atomic_fetch_add(&c->contended, 1);
        acquire_somehow(c, i, k);
        if (atomic_fetch_add(&c->inside, 1) != 0) atomic_fetch_add(&c->overlaps, 1);
        long seen = c->counter;
        busy(40);
        c->counter = seen + 1; /* a lost update if anyone else got in meanwhile */
        atomic_fetch_sub(&c->inside, 1);
        atomic_fetch_add(&c->successes, 1);
        if (weft_lock_release(&c->lock) != 0) atomic_fetch_add(&c->errors, 1);
        busy(80);
    }
}

static void run_counted(bool timed, int threads, int iterations)
{
    counted_t c = {.iterations = iterations, .timed = timed};
    weft_lock_init(&c.lock);
    weft_barrier_init(&c.start, (unsigned)threads, NULL, NULL);
    double t0 = weft_time_monotonic();
    weft_test_run_threads(threads, count_under_lock, &c);
    print_message("%d threads x %d %s acquires: %.3f s, %ld found it taken, %ld timeouts\n",
                  threads, iterations, timed ? "mixed" : "blocking", weft_time_monotonic() - t0,
                  atomic_load(&c.contended), atomic_load(&c.timeouts));
    assert_int_equal(atomic_load(&c.errors), 0);
    assert_int_equal(atomic_load(&c.overlaps), 0);
    assert_int_equal(c.counter, (long)threads * iterations);
    assert_int_equal(atomic_load(&c.successes), (long)threads * iterations);
    assert_false(weft_lock_locked(&c.lock));
    assert_int_equal(queued(&c.lock), 0);
    assert_int_equal(weft_lock_destroy(&c.lock), 0);
    assert_int_equal(weft_barrier_destroy(&c.start), 0);
}

/* 8 threads x 100k increments of a plain counter under the lock lose none. */
static void lock_mutual_exclusion_stress(void **state)
{
    (void)state;
    run_counted(false, 8, SCALED(100000));
}

/* The same with a mix of blocking, polling and timed acquires: the timeout paths leave the
 * lock consistent and never let two holders in. */
static void lock_mutual_exclusion_with_timed_acquires(void **state)
{
    (void)state;
    run_counted(true, 8, SCALED(50000));
}

/* Timeouts are the same in every call (weft/core.h): a negative timeout other than
 * WEFT_FOREVER is a deadline already passed, so a held lock's acquire polls and fails at once
 * (Python's acquire(timeout=-0.5) never waits forever either); WEFT_FOREVER alone blocks,
 * until the release; NaN is WEFT_EINVAL. */
typedef struct timed_lock {
    weft_lock_t l;
    double timeout;
} timed_lock_t;

static int timed_lock_acquire(void *p)
{
    timed_lock_t *t = p;
    return weft_lock_acquire(&t->l, t->timeout);
}

static void timed_lock_release(void *p)
{
    assert_int_equal(weft_lock_release(&((timed_lock_t *)p)->l), 0);
}

static void lock_acquire_negative_timeout_polls(void **state)
{
    (void)state;
    timed_lock_t t;
    weft_lock_init(&t.l);
    assert_int_equal(weft_lock_acquire(&t.l, WEFT_FOREVER), 0);
    t.timeout = -0.5;
    assert_int_equal(weft_test_polls(timed_lock_acquire, &t), WEFT_ETIMEDOUT);
    t.timeout = -1e-9;
    assert_int_equal(weft_test_polls(timed_lock_acquire, &t), WEFT_ETIMEDOUT);
    assert_int_equal(weft_lock_acquire(&t.l, NAN), WEFT_EINVAL);
    t.timeout = WEFT_FOREVER;
    weft_test_blocks_until(timed_lock_acquire, &t, timed_lock_release, &t, 0);
    assert_int_equal(weft_lock_release(&t.l), 0);
    assert_int_equal(weft_lock_destroy(&t.l), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(lock_acquire_negative_timeout_polls),
    WEFT_TEST(lock_init_gives_unlocked_lock),
    WEFT_TEST(lock_acquire_release),
    WEFT_TEST(lock_destroy_after_acquire_release),
    WEFT_TEST(lock_try_acquire_polls),
    WEFT_TEST(lock_try_acquire_contended_fails_at_once),
    WEFT_TEST(lock_acquire_contended_blocks_until_release),
    WEFT_TEST(lock_with_block_releases_on_every_exit),
    WEFT_TEST(lock_thread_leak),
    WEFT_TEST(lock_acquire_timeout_expires),
    WEFT_TEST(lock_acquire_timeout_of_free_lock_succeeds_at_once),
    WEFT_TEST(lock_acquire_timeout_nan_is_einval),
    WEFT_TEST(lock_acquire_timeout_succeeds_when_released_in_time),
    WEFT_TEST(lock_release_by_other_thread),
    WEFT_TEST(lock_state_after_timeout),
    WEFT_TEST(lock_reacquire_blocks_until_released_elsewhere),
    WEFT_TEST(lock_reacquire_by_holder_times_out),
    WEFT_TEST(lock_locked_reports_state),
    WEFT_TEST(lock_release_unlocked_is_eperm),
    WEFT_TEST(lock_null_arguments_are_einval),
    WEFT_TEST(lock_destroy_while_held_is_ebusy),
    WEFT_TEST(lock_destroy_with_queued_waiter_is_ebusy),
    WEFT_TEST(lock_timeout_zero_polls_without_waiting),
    WEFT_TEST(lock_cancel_interrupts_blocked_acquire),
    WEFT_TEST(lock_cancel_one_waiter_others_still_get_lock),
    WEFT_TEST(lock_cancel_racing_release_loses_no_wakeup),
    WEFT_TEST(lock_canceled_waiter_popped_by_release_passes_wake_on),
    WEFT_TEST(lock_handoff_ping_pong),
    WEFT_TEST(lock_mutual_exclusion_stress),
    WEFT_TEST(lock_mutual_exclusion_with_timed_acquires),
};
WEFT_TEST_MAIN(cases)
