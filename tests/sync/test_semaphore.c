/*
 * Semaphore and BoundedSemaphore (threading.Semaphore / BoundedSemaphore): the behaviours of
 * CPython's Lib/test/lock_tests.py BaseSemaphoreTests, SemaphoreTests and
 * BoundedSemaphoreTests, then what C adds: NULL arguments, limits, destroy while waited on,
 * FIFO hand-off, cancellation and timeouts that lose no unit, and a holder-count stress.
 *
 * To know that a helper thread is blocked in acquire, the tests look at the semaphore's wait
 * queue (white-box, through wait/wait_internal.h) instead of sleeping.
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

static int queued(weft_semaphore_t *s)
{
    return weft_test_queue_length(&s->waiters_);
}

static void wait_queued(weft_semaphore_t *s, int n)
{
    weft_test_wait_queued(&s->waiters_, n);
}

/* Spins (yielding) until nobody is queued on s; fails the case after 10 s. */
static void wait_queue_empty(weft_semaphore_t *s)
{
    int64_t give_up = weft_time_monotonic_ns() + 10000 * MS;
    while (queued(s) != 0) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
}

/* A helper thread doing one acquire of a Semaphore (weft_test_acquirer_t). */
typedef weft_test_acquirer_t acquirer_t;
#define wait_at_least weft_test_wait_at_least

static int acquire_one(void *obj, double timeout)
{
    return weft_semaphore_acquire(obj, timeout);
}

static int release_one(void *obj)
{
    return weft_semaphore_release(obj, 1);
}

static acquirer_t acquirer(weft_semaphore_t *obj, double timeout, bool release_after)
{
    return (acquirer_t){.acquire = acquire_one,
                        .release = release_after ? release_one : NULL,
                        .obj = obj,
                        .timeout = timeout};
}

/* ---- CPython BaseSemaphoreTests ----------------------------------------------------------- */

/* BaseSemaphoreTests.test_constructor: a value above WEFT_SEMAPHORE_MAX is refused (Python:
 * a negative value is ValueError; C's unsigned value has no negatives, its limit is above). */
static void semaphore_init_checks_value(void **state)
{
    (void)state;
    weft_semaphore_t s;
    for (int bounded = 0; bounded <= 1; bounded++) {
        assert_int_equal(weft_semaphore_init(&s, WEFT_SEMAPHORE_MAX + 1u, bounded), WEFT_EINVAL);
        assert_int_equal(weft_semaphore_init(&s, (unsigned)-1, bounded), WEFT_EINVAL);
        assert_int_equal(weft_semaphore_init(&s, WEFT_SEMAPHORE_MAX, bounded), 0);
        assert_int_equal(weft_semaphore_value(&s), WEFT_SEMAPHORE_MAX);
        assert_int_equal(weft_semaphore_destroy(&s), 0);
        assert_int_equal(weft_semaphore_init(&s, 0, bounded), 0);
        assert_int_equal(weft_semaphore_value(&s), 0);
        assert_int_equal(weft_semaphore_destroy(&s), 0);
        assert_int_equal(weft_semaphore_init(&s, 2, bounded), 0);
        assert_int_equal(weft_semaphore_value(&s), 2);
        assert_int_equal(weft_semaphore_destroy(&s), 0);
    }
}

/* BaseSemaphoreTests.test_acquire. */
static void semaphore_acquire_release(void **state)
{
    (void)state;
    for (int bounded = 0; bounded <= 1; bounded++) {
        weft_semaphore_t s;
        weft_semaphore_init(&s, 1, bounded);
        assert_int_equal(weft_semaphore_acquire(&s, WEFT_FOREVER), 0);
        assert_int_equal(weft_semaphore_value(&s), 0);
        assert_int_equal(weft_semaphore_release(&s, 1), 0);
        assert_int_equal(weft_semaphore_value(&s), 1);
        assert_int_equal(weft_semaphore_destroy(&s), 0);

        weft_semaphore_init(&s, 2, bounded);
        assert_int_equal(weft_semaphore_acquire(&s, WEFT_FOREVER), 0);
        assert_int_equal(weft_semaphore_acquire(&s, WEFT_FOREVER), 0);
        assert_int_equal(weft_semaphore_value(&s), 0);
        assert_int_equal(weft_semaphore_release(&s, 1), 0);
        assert_int_equal(weft_semaphore_release(&s, 1), 0);
        assert_int_equal(weft_semaphore_value(&s), 2);
        assert_int_equal(weft_semaphore_destroy(&s), 0);
    }
}

/* BaseSemaphoreTests.test_acquire_destroy: nobody waits, so destroy succeeds even with a
 * unit out (a semaphore has no owner to track). */
static void semaphore_destroy_after_acquire(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 2, false);
    assert_int_equal(weft_semaphore_acquire(&s, WEFT_FOREVER), 0);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* BaseSemaphoreTests.test_acquire_contended and test_multirelease: Semaphore(7) with one unit
 * taken; 10 threads each acquire twice. Six get through at phase 0; releasing 7 lets exactly
 * 7 more through (phase 1), 6 more give phase 2, and then a poll fails: no unit leaks. With
 * `multi` the units come from one release(n) instead of n release(1). */
typedef struct phased {
    weft_semaphore_t sem;
    _Atomic int phase;
    _Atomic int got;      /* acquisitions so far */
    _Atomic int finished; /* threads done with both acquisitions */
    _Atomic int per_phase[3];
    _Atomic int errors;
} phased_t;

static void *acquire_twice(void *arg)
{
    phased_t *p = arg;
    for (int k = 0; k < 2; k++) {
        if (weft_semaphore_acquire(&p->sem, 30.0) != 0) {
            atomic_fetch_add(&p->errors, 1);
            continue;
        }
        /* Record the phase before counting: main moves on only after counting us. */
        atomic_fetch_add(&p->per_phase[atomic_load(&p->phase)], 1);
        atomic_fetch_add(&p->got, 1);
    }
    atomic_fetch_add(&p->finished, 1);
    return NULL;
}

/* Spins until every thread still wanting a unit is queued: none can get through then, since
 * none is left. */
static void wait_all_blocked(phased_t *p, int n)
{
    int64_t give_up = weft_time_monotonic_ns() + 10000 * MS;
    while (queued(&p->sem) + atomic_load(&p->finished) < n) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
}

static void give(weft_semaphore_t *s, unsigned n, bool multi)
{
    if (multi) {
        assert_int_equal(weft_semaphore_release(s, n), 0);
    } else {
        for (unsigned i = 0; i < n; i++) assert_int_equal(weft_semaphore_release(s, 1), 0);
    }
}

static void check_contended(bool bounded, bool multi)
{
    enum { N = 10 };
    phased_t p = {0};
    weft_semaphore_init(&p.sem, 7, bounded);
    assert_int_equal(weft_semaphore_acquire(&p.sem, WEFT_FOREVER), 0);
    pthread_t t[N];
    for (int i = 0; i < N; i++) t[i] = weft_test_start(acquire_twice, &p);
    weft_test_wait_at_least(&p.got, 6);
    wait_all_blocked(&p, N);
    assert_int_equal(atomic_load(&p.got), 6);
    atomic_store(&p.phase, 1);
    give(&p.sem, 7, multi);
    weft_test_wait_at_least(&p.got, 13);
    wait_all_blocked(&p, N);
    assert_int_equal(atomic_load(&p.got), 13);
    atomic_store(&p.phase, 2);
    give(&p.sem, 6, multi);
    weft_test_wait_at_least(&p.got, 19);
    wait_all_blocked(&p, N);
    assert_int_equal(weft_semaphore_acquire(&p.sem, 0), WEFT_ETIMEDOUT); /* still locked */
    assert_int_equal(atomic_load(&p.got), 19);
    give(&p.sem, 1, multi); /* let the last one through */
    for (int i = 0; i < N; i++) weft_test_join(t[i]);
    assert_int_equal(atomic_load(&p.errors), 0);
    assert_int_equal(atomic_load(&p.got), 20);
    assert_int_equal(atomic_load(&p.per_phase[0]), 6);
    assert_int_equal(atomic_load(&p.per_phase[1]), 7);
    assert_int_equal(atomic_load(&p.per_phase[2]), 7);
    assert_int_equal(weft_semaphore_value(&p.sem), 0);
    assert_int_equal(weft_semaphore_destroy(&p.sem), 0);
}

static void semaphore_acquire_contended(void **state)
{
    (void)state;
    check_contended(false, false);
    check_contended(true, false);
}

static void semaphore_multirelease(void **state)
{
    (void)state;
    check_contended(false, true);
    check_contended(true, true);
}

/* BaseSemaphoreTests.test_try_acquire: acquire(blocking=False) is a timeout of 0. */
static void semaphore_try_acquire_polls(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 2, false);
    assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(weft_semaphore_acquire(&s, 0), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic_ns() - t0 < SLACK_NS);
    assert_int_equal(weft_semaphore_value(&s), 0);
    assert_int_equal(weft_semaphore_release(&s, 2), 0);
    assert_int_equal(weft_semaphore_value(&s), 2);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* BaseSemaphoreTests.test_try_acquire_contended: Semaphore(4) with one unit taken; 5 threads
 * poll: exactly 3 succeed, 2 fail. */
typedef struct poller {
    weft_semaphore_t sem;
    _Atomic int ok, failed, errors;
} poller_t;

static void poll_once(void *arg, int i)
{
    (void)i;
    poller_t *p = arg;
    int rc = weft_semaphore_acquire(&p->sem, 0);
    if (rc == 0)
        atomic_fetch_add(&p->ok, 1);
    else if (rc == WEFT_ETIMEDOUT)
        atomic_fetch_add(&p->failed, 1);
    else
        atomic_fetch_add(&p->errors, 1);
}

static void semaphore_try_acquire_contended(void **state)
{
    (void)state;
    poller_t p = {0};
    weft_semaphore_init(&p.sem, 4, false);
    assert_int_equal(weft_semaphore_acquire(&p.sem, 0), 0);
    weft_test_run_threads(5, poll_once, &p);
    assert_int_equal(atomic_load(&p.errors), 0);
    assert_int_equal(atomic_load(&p.ok), 3);
    assert_int_equal(atomic_load(&p.failed), 2);
    assert_int_equal(weft_semaphore_value(&p.sem), 0);
    assert_int_equal(weft_semaphore_release(&p.sem, 4), 0);
    assert_int_equal(weft_semaphore_destroy(&p.sem), 0);
}

/* BaseSemaphoreTests.test_acquire_timeout: with no unit, acquire(timeout) waits about that
 * long and fails with WEFT_ETIMEDOUT; with one, it succeeds at once. */
static void semaphore_acquire_timeout_expires(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 2, false);
    assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    assert_int_equal(weft_semaphore_acquire(&s, 0.005), WEFT_ETIMEDOUT);
    assert_int_equal(weft_semaphore_release(&s, 1), 0);
    assert_int_equal(weft_semaphore_acquire(&s, 0.005), 0);

    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(weft_semaphore_acquire(&s, 0.1), WEFT_ETIMEDOUT);
    int64_t elapsed = weft_time_monotonic_ns() - t0;
    assert_true(elapsed >= 100 * MS);
    assert_true(elapsed < 100 * MS + SLACK_NS);
    assert_int_equal(weft_semaphore_value(&s), 0);
    assert_int_equal(queued(&s), 0); /* the timed-out waiter left the queue */
    assert_int_equal(weft_semaphore_release(&s, 2), 0);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* A NaN timeout is refused whether or not a unit is free, and takes nothing. */
static void semaphore_acquire_timeout_nan_is_einval(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 1, false);
    assert_int_equal(weft_semaphore_acquire(&s, NAN), WEFT_EINVAL);
    assert_int_equal(weft_semaphore_value(&s), 1);
    assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    assert_int_equal(weft_semaphore_acquire(&s, NAN), WEFT_EINVAL);
    assert_int_equal(weft_semaphore_release(&s, 1), 0);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* BaseSemaphoreTests.test_default_value: Python's default value is 1 (C has no default): the
 * second acquirer blocks until the first releases. */
static void semaphore_value_one_blocks_second_acquirer(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 1, false);
    assert_int_equal(weft_semaphore_acquire(&s, WEFT_FOREVER), 0);
    acquirer_t a = acquirer(&s, WEFT_FOREVER, true);
    pthread_t t = weft_test_start(weft_test_acquire_thread, &a);
    wait_queued(&s, 1);
    assert_int_equal(atomic_load(&a.done), 0);
    assert_int_equal(weft_semaphore_release(&s, 1), 0);
    weft_test_join(t);
    assert_int_equal(a.result, 0);
    assert_int_equal(a.release_result, 0);
    assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    assert_int_equal(weft_semaphore_release(&s, 1), 0);
    assert_int_equal(weft_semaphore_value(&s), 1);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* BaseSemaphoreTests.test_with: C's `with sem:` is acquire, then a release on every way out
 * of the block; nested blocks use up both units of a Semaphore(2). */
static int with_semaphore(weft_semaphore_t *s, int err)
{
    int rc = weft_semaphore_acquire(s, WEFT_FOREVER);
    if (rc) return rc;
    rc = weft_semaphore_acquire(s, 0) == 0 ? 0 : -1; /* one unit left */
    weft_semaphore_release(s, 1);
    if (rc) goto out;
    rc = weft_semaphore_acquire(s, WEFT_FOREVER); /* the nested `with sem:` */
    if (rc) goto out;
    if (weft_semaphore_acquire(s, 0) != WEFT_ETIMEDOUT) rc = -1; /* none left now */
    if (err && !rc) rc = err;                                    /* the block "raises" */
    weft_semaphore_release(s, 1);
out:
    weft_semaphore_release(s, 1);
    return rc;
}

static void semaphore_with_block_releases_on_every_exit(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 2, true);
    assert_int_equal(with_semaphore(&s, 0), 0);
    assert_int_equal(weft_semaphore_value(&s), 2);
    assert_int_equal(with_semaphore(&s, WEFT_EINVAL), WEFT_EINVAL);
    assert_int_equal(weft_semaphore_value(&s), 2);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* SemaphoreTests.test_release_unacquired: a plain Semaphore may be released beyond its
 * initial value. */
static void semaphore_release_unacquired_raises_value(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 1, false);
    assert_int_equal(weft_semaphore_release(&s, 1), 0);
    assert_int_equal(weft_semaphore_value(&s), 2);
    assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    assert_int_equal(weft_semaphore_acquire(&s, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_semaphore_release(&s, 1), 0);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* BoundedSemaphoreTests.test_release_unacquired: a release past the initial value is
 * WEFT_EOVERFLOW (Python's ValueError) and changes nothing, also for a release(n) that would
 * only partly fit, and also for a BoundedSemaphore(0). */
static void bounded_semaphore_release_past_bound_is_eoverflow(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 1, true);
    assert_int_equal(weft_semaphore_release(&s, 1), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_value(&s), 1);
    assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    assert_int_equal(weft_semaphore_release(&s, 2), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_value(&s), 0);
    assert_int_equal(weft_semaphore_release(&s, 1), 0);
    assert_int_equal(weft_semaphore_release(&s, 1), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_value(&s), 1);
    assert_int_equal(weft_semaphore_destroy(&s), 0);

    weft_semaphore_init(&s, 3, true);
    assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    assert_int_equal(weft_semaphore_release(&s, 3), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_value(&s), 1);
    assert_int_equal(weft_semaphore_release(&s, 2), 0);
    assert_int_equal(weft_semaphore_value(&s), 3);
    assert_int_equal(weft_semaphore_destroy(&s), 0);

    /* BoundedSemaphore(0): Python refuses every release. */
    weft_semaphore_init(&s, 0, true);
    assert_int_equal(weft_semaphore_release(&s, 1), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_value(&s), 0);
    assert_int_equal(weft_semaphore_acquire(&s, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* A bounded release hands units to waiters: the bound counts units held, not just the value
 * (two holders of a BoundedSemaphore(2) plus a waiter: both holders may release). */
static void bounded_semaphore_release_to_waiter_respects_bound(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 2, true);
    weft_semaphore_acquire(&s, 0);
    weft_semaphore_acquire(&s, 0);
    acquirer_t a = acquirer(&s, WEFT_FOREVER, false);
    pthread_t t = weft_test_start(weft_test_acquire_thread, &a);
    wait_queued(&s, 1);
    assert_int_equal(weft_semaphore_release(&s, 1), 0); /* goes to the waiter */
    weft_test_join(t);
    assert_int_equal(a.result, 0);
    assert_int_equal(weft_semaphore_value(&s), 0);
    assert_int_equal(weft_semaphore_release(&s, 2), 0); /* the waiter's and the other's */
    assert_int_equal(weft_semaphore_release(&s, 1), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_value(&s), 2);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* ---- limits and failure paths ------------------------------------------------------------- */

static void semaphore_release_zero_is_einval(void **state)
{
    (void)state;
    for (int bounded = 0; bounded <= 1; bounded++) {
        weft_semaphore_t s;
        weft_semaphore_init(&s, 1, bounded);
        weft_semaphore_acquire(&s, 0);
        assert_int_equal(weft_semaphore_release(&s, 0), WEFT_EINVAL);
        assert_int_equal(weft_semaphore_value(&s), 0);
        assert_int_equal(weft_semaphore_release(&s, 1), 0);
        assert_int_equal(weft_semaphore_destroy(&s), 0);
    }
}

/* An unbounded Semaphore stops at WEFT_SEMAPHORE_MAX: a release past it is WEFT_EOVERFLOW
 * and changes nothing. */
static void semaphore_release_past_max_is_eoverflow(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, WEFT_SEMAPHORE_MAX - 1, false);
    assert_int_equal(weft_semaphore_release(&s, 2), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_value(&s), WEFT_SEMAPHORE_MAX - 1);
    assert_int_equal(weft_semaphore_release(&s, 1), 0);
    assert_int_equal(weft_semaphore_value(&s), WEFT_SEMAPHORE_MAX);
    assert_int_equal(weft_semaphore_release(&s, 1), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_destroy(&s), 0);

    weft_semaphore_init(&s, 0, false);
    assert_int_equal(weft_semaphore_release(&s, UINT32_MAX), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_release(&s, WEFT_SEMAPHORE_MAX + 1u), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_value(&s), 0);
    assert_int_equal(weft_semaphore_release(&s, WEFT_SEMAPHORE_MAX), 0);
    assert_int_equal(weft_semaphore_value(&s), WEFT_SEMAPHORE_MAX);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

static void semaphore_null_arguments_are_einval(void **state)
{
    (void)state;
    assert_int_equal(weft_semaphore_init(NULL, 1, false), WEFT_EINVAL);
    assert_int_equal(weft_semaphore_init(NULL, 1, true), WEFT_EINVAL);
    assert_int_equal(weft_semaphore_destroy(NULL), WEFT_EINVAL);
    assert_int_equal(weft_semaphore_acquire(NULL, WEFT_FOREVER), WEFT_EINVAL);
    assert_int_equal(weft_semaphore_acquire(NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_semaphore_release(NULL, 1), WEFT_EINVAL);
    assert_int_equal(weft_semaphore_value(NULL), 0);
}

/* Destroy is refused while a thread waits, and the refusal changes nothing: the waiter still
 * gets the next unit. */
static void semaphore_destroy_while_waited_on_is_ebusy(void **state)
{
    (void)state;
    for (int bounded = 0; bounded <= 1; bounded++) {
        weft_semaphore_t s;
        weft_semaphore_init(&s, 1, bounded);
        weft_semaphore_acquire(&s, 0);
        acquirer_t a = acquirer(&s, WEFT_FOREVER, true);
        pthread_t t = weft_test_start(weft_test_acquire_thread, &a);
        wait_queued(&s, 1);
        assert_int_equal(weft_semaphore_destroy(&s), WEFT_EBUSY);
        assert_int_equal(weft_semaphore_value(&s), 0);
        assert_int_equal(weft_semaphore_release(&s, 1), 0);
        weft_test_join(t);
        assert_int_equal(a.result, 0);
        assert_int_equal(a.release_result, 0);
        assert_int_equal(weft_semaphore_value(&s), 1);
        assert_int_equal(weft_semaphore_destroy(&s), 0);
    }
}

/* A timeout of 0 never waits and never queues, also while others wait. */
static void semaphore_timeout_zero_polls_without_waiting(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 0, false);
    acquirer_t a = acquirer(&s, WEFT_FOREVER, false);
    pthread_t t = weft_test_start(weft_test_acquire_thread, &a);
    wait_queued(&s, 1);
    int64_t t0 = weft_time_monotonic_ns();
    for (int i = 0; i < 1000; i++) assert_int_equal(weft_semaphore_acquire(&s, 0), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic_ns() - t0 < SLACK_NS);
    assert_int_equal(queued(&s), 1);
    assert_int_equal(weft_semaphore_release(&s, 1), 0);
    weft_test_join(t);
    assert_int_equal(a.result, 0);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* ---- FIFO --------------------------------------------------------------------------------- */

/* Waiters are served in the order they started waiting, by release(1) one at a time and by
 * release(n) at once, and release(n) wakes exactly n of them. */
static void semaphore_waiters_served_fifo(void **state)
{
    (void)state;
    enum { N = 6 };
    weft_semaphore_t s;
    weft_semaphore_init(&s, 0, false);
    _Atomic int order = 0;
    acquirer_t a[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        a[i] = acquirer(&s, WEFT_FOREVER, false);
        a[i].order = &order;
        t[i] = weft_test_start(weft_test_acquire_thread, &a[i]);
        wait_queued(&s, i + 1); /* one at a time: queue order is start order */
    }
    /* One by one: each release goes to the head of the queue. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(weft_semaphore_release(&s, 1), 0);
        weft_test_wait_at_least(&a[i].done,
                                1); /* fails, rather than hangs, if another got the unit */
        weft_test_join(t[i]);
        assert_int_equal(a[i].result, 0);
        assert_int_equal(a[i].position, i);
        assert_int_equal(queued(&s), N - 1 - i);
    }
    /* release(2) serves exactly the next two, the last one keeps waiting. */
    assert_int_equal(weft_semaphore_release(&s, 2), 0);
    weft_test_wait_at_least(&a[3].done, 1);
    weft_test_wait_at_least(&a[4].done, 1);
    weft_test_join(t[3]);
    weft_test_join(t[4]);
    assert_int_equal(a[3].result, 0);
    assert_int_equal(a[4].result, 0);
    assert_int_equal(queued(&s), 1);
    assert_int_equal(atomic_load(&a[5].done), 0);
    assert_int_equal(weft_semaphore_value(&s), 0);
    /* release(3) with one waiter: one unit to it, two kept. */
    assert_int_equal(weft_semaphore_release(&s, 3), 0);
    weft_test_join(t[5]);
    assert_int_equal(a[5].result, 0);
    assert_int_equal(a[5].position, 5);
    assert_int_equal(weft_semaphore_value(&s), 2);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* A released unit goes to the queued waiter, not to a caller that arrives later: a poll
 * right after the release finds nothing, even before the waiter has run. */
static void semaphore_release_hands_unit_to_waiter_not_barger(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 0, false);
    acquirer_t a = acquirer(&s, WEFT_FOREVER, false);
    pthread_t t = weft_test_start(weft_test_acquire_thread, &a);
    wait_queued(&s, 1);
    assert_int_equal(weft_semaphore_release(&s, 1), 0);
    assert_int_equal(weft_semaphore_acquire(&s, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_semaphore_value(&s), 0);
    weft_test_join(t);
    assert_int_equal(a.result, 0);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* ---- cancellation and timeouts lose no unit ----------------------------------------------- */

/* A blocked acquire is interrupted by a cancel and returns WEFT_ECANCELED; the cancel stays
 * pending until uncancel; the semaphore's value and queue are as before. */
typedef struct canceled_acquirer {
    weft_semaphore_t *sem;
    _Atomic(weft__waitctx_t *) ctx;
    int rc_blocked, rc_pending, rc_pending_with_unit, rc_after_uncancel;
    int64_t pending_ns;
} canceled_acquirer_t;

static void *canceled_acquire_thread(void *p)
{
    canceled_acquirer_t *c = p;
    weft__waitctx_t *self = weft__waitctx_current();
    atomic_store(&c->ctx, self);
    c->rc_blocked = weft_semaphore_acquire(c->sem, WEFT_FOREVER);
    int64_t t0 = weft_time_monotonic_ns();
    c->rc_pending = weft_semaphore_acquire(c->sem, 10.0);
    c->pending_ns = weft_time_monotonic_ns() - t0;
    weft__waitctx_uncancel(self);
    c->rc_after_uncancel = weft_semaphore_acquire(c->sem, 0.02);
    return NULL;
}

static void semaphore_cancel_interrupts_blocked_acquire(void **state)
{
    (void)state;
    weft_semaphore_t s;
    weft_semaphore_init(&s, 0, false);
    canceled_acquirer_t c = {.sem = &s};
    pthread_t t = weft_test_start(canceled_acquire_thread, &c);
    wait_queued(&s, 1);
    weft__waitctx_cancel(atomic_load(&c.ctx));
    weft_test_join(t);
    assert_int_equal(c.rc_blocked, WEFT_ECANCELED);
    assert_int_equal(c.rc_pending, WEFT_ECANCELED);
    assert_true(c.pending_ns < SLACK_NS);
    assert_int_equal(c.rc_after_uncancel, WEFT_ETIMEDOUT);
    assert_int_equal(queued(&s), 0);
    assert_int_equal(weft_semaphore_value(&s), 0);
    /* The next unit is kept, not handed to the departed waiter. */
    assert_int_equal(weft_semaphore_release(&s, 1), 0);
    assert_int_equal(weft_semaphore_value(&s), 1);
    assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

/* A cancel or a deadline racing a release: the waiter either gets the unit (0) or fails and
 * the unit stays in the semaphore; never both, never neither. The release comes at a varying
 * moment around the waiter's 2 ms deadline, or just before or after the cancel. */
static void spin_ns(int64_t ns)
{
    int64_t until = weft_time_monotonic_ns() + ns;
    while (weft_time_monotonic_ns() < until) {
    }
}

static void check_race_conserves_units(bool cancel)
{
    weft_semaphore_t s;
    weft_semaphore_init(&s, 0, false);
    int rounds = SCALED(300), got = 0;
    for (int i = 0; i < rounds; i++) {
        acquirer_t a = acquirer(&s, cancel ? WEFT_FOREVER : 0.002, false);
        pthread_t t = weft_test_start(weft_test_acquire_thread, &a);
        int64_t give_up = weft_time_monotonic_ns() + 10000 * MS;
        while (queued(&s) == 0 && !atomic_load(&a.done)) { /* a deadline may come first */
            assert_true(weft_time_monotonic_ns() < give_up);
            sched_yield();
        }
        if (!cancel) {
            spin_ns((i % 9) * MS / 2); /* 0 .. 4 ms: before, around and after the deadline */
            weft_semaphore_release(&s, 1);
        } else if (i % 3 == 0) { /* cancel, and release only once the waiter has left */
            weft__waitctx_cancel(atomic_load(&a.ctx));
            wait_queue_empty(&s);
            weft_semaphore_release(&s, 1);
        } else if (i % 3 == 1) {
            weft__waitctx_cancel(atomic_load(&a.ctx));
            weft_semaphore_release(&s, 1);
        } else {
            weft_semaphore_release(&s, 1);
            weft__waitctx_cancel(atomic_load(&a.ctx));
        }
        weft_test_join(t);
        int fail = cancel ? WEFT_ECANCELED : WEFT_ETIMEDOUT;
        assert_true(a.result == 0 || a.result == fail);
        if (cancel && i % 3 == 0) assert_int_equal(a.result, WEFT_ECANCELED);
        if (a.result == 0) got++;
        /* The unit is either with the waiter or still here. */
        assert_int_equal(weft_semaphore_value(&s), a.result == 0 ? 0 : 1);
        assert_int_equal(queued(&s), 0);
        if (a.result != 0) assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    }
    print_message("%s race: waiter got the unit %d of %d times\n", cancel ? "cancel" : "timeout",
                  got, rounds);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

static void semaphore_cancel_racing_release_loses_no_unit(void **state)
{
    (void)state;
    check_race_conserves_units(true);
}

static void semaphore_timeout_racing_release_loses_no_unit(void **state)
{
    (void)state;
    check_race_conserves_units(false);
}

/* The same race made deterministic (white-box). The main thread holds the semaphore's queue
 * lock, so the waiter cannot leave the queue, and, once the waiter is parked, its waiting
 * context's lock, which the core's leave() takes right after a park ends. Then the park ends
 * (cancel, or the deadline), the waiter stops in leave() still queued, and the release is
 * sure to pop it: the waiter must take the unit it was handed (0), not report the cancel or
 * timeout and drop it. The cancel is made while we hold the context lock; a deadline comes
 * 0.2 s after we took it. (Had the park ended before, the waiter would be blocked on the
 * queue lock instead; such a round is only checked for conservation.) */
static void check_departing_waiter_keeps_unit(bool cancel)
{
    weft_semaphore_t s;
    weft_semaphore_init(&s, 0, false);
    weft__mutex_t *qlock = weft__waitq_mutex(&s.waiters_);
    uint32_t final = cancel ? WEFT__W_CANCELED : WEFT__W_TIMEDOUT;
    int rounds = 20, stopped = 0;
    for (int i = 0; i < rounds; i++) {
        acquirer_t a = acquirer(&s, cancel ? WEFT_FOREVER : 0.2, false);
        pthread_t t = weft_test_start(weft_test_acquire_thread, &a);
        wait_queued(&s, 1);
        weft__waitctx_t *ctx = atomic_load(&a.ctx);
        weft__waitq_lock(&s.waiters_);
        weft__waiter_t *w =
            weft__waitq_first(&s.waiters_); /* alive: it cannot leave while we hold q */
        int64_t give_up = weft_time_monotonic_ns() + 10000 * MS;
        while (atomic_load(&w->state) == WEFT__W_WAITING) { /* until parked: past enter() */
            assert_true(weft_time_monotonic_ns() < give_up);
            sched_yield();
        }
        weft__mutex_lock(&ctx->lock);
        if (cancel) weft_test_cancel_holding_ctx_lock(ctx, w);
        while (atomic_load(&w->state) != final ||
               (atomic_load(&ctx->lock.state) != 2 && atomic_load(&qlock->state) != 2)) {
            assert_true(weft_time_monotonic_ns() < give_up);
            sched_yield();
        }
        bool in_leave = atomic_load(&ctx->lock.state) == 2;
        weft__waitq_unlock(&s.waiters_);
        assert_int_equal(weft_semaphore_release(&s, 1), 0);
        weft__mutex_unlock(&ctx->lock);
        weft_test_join(t);
        if (in_leave) {
            stopped++;
            assert_int_equal(a.result, 0); /* it was popped: the unit is its */
        }
        assert_true(a.result == 0 || a.result == (cancel ? WEFT_ECANCELED : WEFT_ETIMEDOUT));
        assert_int_equal(weft_semaphore_value(&s), a.result == 0 ? 0 : 1);
        assert_int_equal(queued(&s), 0);
        if (a.result != 0) assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
    }
    print_message("%s waiter stopped in leave() and popped by the release %d of %d times\n",
                  cancel ? "canceled" : "timed-out", stopped, rounds);
    assert_true(stopped > 0);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

static void semaphore_canceled_waiter_popped_by_release_keeps_unit(void **state)
{
    (void)state;
    check_departing_waiter_keeps_unit(true);
}

static void semaphore_timed_out_waiter_popped_by_release_keeps_unit(void **state)
{
    (void)state;
    check_departing_waiter_keeps_unit(false);
}

/* ---- at most N holders under stress ------------------------------------------------------- */

typedef struct limited {
    weft_semaphore_t sem;
    weft_barrier_t start;
    int iterations;
    _Atomic int holders; /* right now: must never exceed the semaphore's value */
    _Atomic int max_holders;
    _Atomic long timeouts;
    _Atomic int errors;
} limited_t;

static void busy(int n)
{
    for (volatile int j = 0; j < n; j++) {
    }
}

static void hold_unit(void *arg, int i)
{
    static const double timeouts[] = {WEFT_FOREVER, 0, 1e-5, 1e-3, 5.0};
    limited_t *l = arg;
    if (weft_barrier_wait(&l->start, 10.0) < 0) atomic_fetch_add(&l->errors, 1);
    for (int k = 0; k < l->iterations; k++) {
        int rc;
        while ((rc = weft_semaphore_acquire(&l->sem, timeouts[(i + k) % 5])) != 0) {
            if (rc != WEFT_ETIMEDOUT) atomic_fetch_add(&l->errors, 1);
            atomic_fetch_add(&l->timeouts, 1);
        }
        int now = atomic_fetch_add(&l->holders, 1) + 1;
        int max = atomic_load(&l->max_holders);
        while (now > max && !atomic_compare_exchange_weak(&l->max_holders, &max, now)) {
        }
        busy(40);
        atomic_fetch_sub(&l->holders, 1);
        if (weft_semaphore_release(&l->sem, 1) != 0) atomic_fetch_add(&l->errors, 1);
        busy(40);
    }
}

/* A waiter that timed out leaves the queue but may leave the Semaphore's "waiters" mark up
 * (semaphore.c): value() still shows only units, the next release lands in the count (and
 * drops the mark), and a BoundedSemaphore's bound still holds, on both sides of it. */
static void semaphore_after_a_timed_out_waiter_counts_and_bounds_right(void **state)
{
    (void)state;
    for (int bounded = 0; bounded <= 1; bounded++) {
        weft_semaphore_t s;
        assert_int_equal(weft_semaphore_init(&s, 1, bounded), 0);
        assert_int_equal(weft_semaphore_acquire(&s, WEFT_FOREVER), 0);
        assert_int_equal(weft_semaphore_acquire(&s, 0.01), WEFT_ETIMEDOUT);
        assert_int_equal(queued(&s), 0);
        assert_int_equal(weft_semaphore_value(&s), 0);
        if (bounded) assert_int_equal(weft_semaphore_release(&s, 2), WEFT_EOVERFLOW);
        assert_int_equal(weft_semaphore_value(&s), 0);
        assert_int_equal(weft_semaphore_release(&s, 1), 0);
        assert_int_equal(weft_semaphore_value(&s), 1);
        if (bounded) assert_int_equal(weft_semaphore_release(&s, 1), WEFT_EOVERFLOW);
        assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
        assert_int_equal(weft_semaphore_acquire(&s, 0), WEFT_ETIMEDOUT);
        assert_int_equal(weft_semaphore_release(&s, 1), 0);
        assert_int_equal(weft_semaphore_value(&s), 1);
        assert_int_equal(weft_semaphore_destroy(&s), 0);
    }
}

/* Semaphore(3), 8 threads: never more than 3 holders at once; every unit comes back. */
static void semaphore_never_more_than_n_holders(void **state)
{
    (void)state;
    enum { THREADS = 8, UNITS = 3 };
    for (int bounded = 0; bounded <= 1; bounded++) {
        limited_t l = {.iterations = SCALED(30000)};
        weft_semaphore_init(&l.sem, UNITS, bounded);
        weft_barrier_init(&l.start, THREADS, NULL, NULL);
        double t0 = weft_time_monotonic();
        weft_test_run_threads(THREADS, hold_unit, &l);
        print_message("%s: %d threads x %d: %.3f s, at most %d holders, %ld timeouts\n",
                      bounded ? "bounded" : "plain", THREADS, l.iterations,
                      weft_time_monotonic() - t0, atomic_load(&l.max_holders),
                      atomic_load(&l.timeouts));
        assert_int_equal(atomic_load(&l.errors), 0);
        assert_true(atomic_load(&l.max_holders) <= UNITS);
        assert_true(atomic_load(&l.max_holders) >= 1);
        assert_int_equal(weft_semaphore_value(&l.sem), UNITS);
        assert_int_equal(queued(&l.sem), 0);
        assert_int_equal(weft_semaphore_destroy(&l.sem), 0);
        assert_int_equal(weft_barrier_destroy(&l.start), 0);
    }
}

/* Threads using a semaphore leave no thread or allocation behind. */
static void semaphore_thread_leak(void **state)
{
    (void)state;
    limited_t l = {.iterations = 100};
    weft_semaphore_init(&l.sem, 2, true);
    weft_barrier_init(&l.start, 15, NULL, NULL);
    long allocs = weft_test_live_allocs();
    weft_test_run_threads(15, hold_unit, &l);
    assert_int_equal(weft_test_live_allocs(), allocs);
    assert_int_equal(atomic_load(&l.errors), 0);
    assert_int_equal(weft_semaphore_value(&l.sem), 2);
    assert_int_equal(weft_semaphore_destroy(&l.sem), 0);
    assert_int_equal(weft_barrier_destroy(&l.start), 0);
}

/* The timeout rules (weft/core.h): -0.5 polls (WEFT_ETIMEDOUT at once), WEFT_FOREVER blocks
 * until a release, NaN is WEFT_EINVAL. */
static int timed_sem_acquire(void *p)
{
    return weft_semaphore_acquire(p, -0.5);
}

static int forever_sem_acquire(void *p)
{
    return weft_semaphore_acquire(p, WEFT_FOREVER);
}

static void sem_release_one(void *p)
{
    assert_int_equal(weft_semaphore_release(p, 1), 0);
}

static void semaphore_acquire_negative_timeout_polls(void **state)
{
    (void)state;
    weft_semaphore_t s;
    assert_int_equal(weft_semaphore_init(&s, 0, false), 0);
    assert_int_equal(weft_test_polls(timed_sem_acquire, &s), WEFT_ETIMEDOUT);
    assert_int_equal(weft_semaphore_acquire(&s, NAN), WEFT_EINVAL);
    weft_test_blocks_until(forever_sem_acquire, &s, sem_release_one, &s, 0);
    assert_int_equal(weft_semaphore_value(&s), 0);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(semaphore_acquire_negative_timeout_polls),
    WEFT_TEST(semaphore_init_checks_value),
    WEFT_TEST(semaphore_acquire_release),
    WEFT_TEST(semaphore_destroy_after_acquire),
    WEFT_TEST(semaphore_acquire_contended),
    WEFT_TEST(semaphore_multirelease),
    WEFT_TEST(semaphore_try_acquire_polls),
    WEFT_TEST(semaphore_try_acquire_contended),
    WEFT_TEST(semaphore_acquire_timeout_expires),
    WEFT_TEST(semaphore_acquire_timeout_nan_is_einval),
    WEFT_TEST(semaphore_value_one_blocks_second_acquirer),
    WEFT_TEST(semaphore_with_block_releases_on_every_exit),
    WEFT_TEST(semaphore_release_unacquired_raises_value),
    WEFT_TEST(bounded_semaphore_release_past_bound_is_eoverflow),
    WEFT_TEST(bounded_semaphore_release_to_waiter_respects_bound),
    WEFT_TEST(semaphore_release_zero_is_einval),
    WEFT_TEST(semaphore_release_past_max_is_eoverflow),
    WEFT_TEST(semaphore_null_arguments_are_einval),
    WEFT_TEST(semaphore_destroy_while_waited_on_is_ebusy),
    WEFT_TEST(semaphore_timeout_zero_polls_without_waiting),
    WEFT_TEST(semaphore_waiters_served_fifo),
    WEFT_TEST(semaphore_release_hands_unit_to_waiter_not_barger),
    WEFT_TEST(semaphore_cancel_interrupts_blocked_acquire),
    WEFT_TEST(semaphore_cancel_racing_release_loses_no_unit),
    WEFT_TEST(semaphore_timeout_racing_release_loses_no_unit),
    WEFT_TEST(semaphore_canceled_waiter_popped_by_release_keeps_unit),
    WEFT_TEST(semaphore_timed_out_waiter_popped_by_release_keeps_unit),
    WEFT_TEST(semaphore_after_a_timed_out_waiter_counts_and_bounds_right),
    WEFT_TEST(semaphore_never_more_than_n_holders),
    WEFT_TEST(semaphore_thread_leak),
};
WEFT_TEST_MAIN(cases)
