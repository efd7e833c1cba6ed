/*
 * RLock (threading.RLock): the behaviours of CPython's Lib/test/lock_tests.py RLockTests (and
 * the BaseLockTests that apply to any lock), then what C adds: NULL arguments, destroy while
 * held, NaN timeouts, count overflow, cancellation through the waiting core, and mutual
 * exclusion under stress with recursion.
 *
 * The owner of an RLock is the caller's waiting context (one per OS thread here). To know that
 * a helper thread is blocked in acquire, the tests look at the inner lock's wait queue
 * (white-box, through wait/wait_internal.h) instead of sleeping.
 */
#include "weft_test.h"

#include "wait/wait_internal.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>

/* Iteration counts for the stress cases: sanitizers run them 5-15x slower. */
#define SCALED(n) (SANITIZED ? (n) / 4 : (n))

#define MS 1000000LL
/* How much later than its timeout a timed wait may return on a loaded machine. */
#define SLACK_NS (5000 * MS)

/* ---- helpers ----------------------------------------------------------------------------- */

static int queued(weft_rlock_t *r)
{
    return weft_test_queue_length(&r->lock_.waiters_);
}

static void wait_queued(weft_rlock_t *r, int n)
{
    weft_test_wait_queued(&r->lock_.waiters_, n);
}

/* A helper thread that takes the RLock `depth` times, says so through `holding`, waits for
 * `finish`, then runs `then` (release count, or -1 for "try to release once more than it
 * acquired"). Also used as a plain blocked acquirer. Only the main thread asserts. */
typedef struct holder {
    weft_rlock_t *rlock;
    double timeout;
    int depth;
    weft_event_t holding, finish;
    _Atomic(weft__waitctx_t *) ctx;
    int acquire_rc[4], release_rc[5];
    bool owned_while_holding;
    int64_t elapsed_ns;
} holder_t;

static void *holder_thread(void *p)
{
    holder_t *h = p;
    atomic_store(&h->ctx, weft__waitctx_current());
    int64_t t0 = weft_time_monotonic_ns();
    int got = 0;
    for (int i = 0; i < h->depth; i++) {
        h->acquire_rc[i] = weft_rlock_acquire(h->rlock, h->timeout);
        if (h->acquire_rc[i] == 0) got++;
    }
    h->elapsed_ns = weft_time_monotonic_ns() - t0;
    h->owned_while_holding = weft_rlock_is_owned(h->rlock);
    weft_event_set(&h->holding);
    weft_event_wait(&h->finish, 30.0);
    for (int i = 0; i < got; i++) h->release_rc[i] = weft_rlock_release(h->rlock);
    h->release_rc[got] = weft_rlock_release(h->rlock); /* one too many: WEFT_EPERM */
    return NULL;
}

static void holder_init(holder_t *h, weft_rlock_t *r, double timeout, int depth)
{
    *h = (holder_t){.rlock = r, .timeout = timeout, .depth = depth};
    weft_event_init(&h->holding);
    weft_event_init(&h->finish);
}

/* Starts a holder and waits until it holds the RLock (or gave up). */
static pthread_t start_holding(holder_t *h)
{
    pthread_t t = weft_test_start(holder_thread, h);
    assert_int_equal(weft_event_wait(&h->holding, 10.0), 0);
    return t;
}

static void finish_holding(holder_t *h, pthread_t t)
{
    weft_event_set(&h->finish);
    weft_test_join(t);
    assert_int_equal(weft_event_destroy(&h->holding), 0);
    assert_int_equal(weft_event_destroy(&h->finish), 0);
}

/* ---- CPython RLockTests / BaseLockTests --------------------------------------------------- */

/* BaseLockTests.test_constructor. */
static void rlock_init_gives_unowned_lock(void **state)
{
    (void)state;
    weft_rlock_t r;
    assert_int_equal(weft_rlock_init(&r), 0);
    assert_false(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* BaseLockTests.test_acquire_release and test_acquire_destroy. */
static void rlock_acquire_release(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    assert_int_equal(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    assert_true(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_false(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* RLockTests.test_reacquire: the owner acquires again without blocking, and the lock is free
 * once released as many times. */
static void rlock_reacquire_by_owner(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    assert_int_equal(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    assert_int_equal(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    assert_int_equal(weft_rlock_acquire(&r, 0), 0); /* a poll by the owner succeeds too */
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_true(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_false(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_release(&r), WEFT_EPERM);

    /* Free for another thread now. */
    holder_t h;
    holder_init(&h, &r, 0, 1);
    pthread_t t = start_holding(&h);
    assert_int_equal(h.acquire_rc[0], 0);
    finish_holding(&h, t);
    assert_int_equal(h.release_rc[0], 0);
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* RLockTests.test_release_unacquired: releasing an RLock one does not hold is WEFT_EPERM
 * (Python's RuntimeError), before any use and after balanced use. */
static void rlock_release_unacquired_is_eperm(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    assert_int_equal(weft_rlock_release(&r), WEFT_EPERM);
    assert_int_equal(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    assert_int_equal(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_int_equal(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_int_equal(weft_rlock_release(&r), WEFT_EPERM);
    assert_false(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* RLockTests.test_different_thread: a thread that does not own the RLock cannot release it,
 * and the failed release changes nothing. */
static void rlock_release_by_non_owner_is_eperm(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    holder_t h;
    holder_init(&h, &r, WEFT_FOREVER, 2);
    pthread_t t = start_holding(&h);
    assert_true(h.owned_while_holding);
    assert_int_equal(weft_rlock_release(&r), WEFT_EPERM);
    assert_false(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_acquire(&r, 0), WEFT_ETIMEDOUT); /* still held by h */
    finish_holding(&h, t);
    assert_int_equal(h.release_rc[0], 0);
    assert_int_equal(h.release_rc[1], 0);
    assert_int_equal(h.release_rc[2], WEFT_EPERM);
    assert_int_equal(weft_rlock_acquire(&r, 0), 0);
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* RLockTests.test__is_owned: owned by the caller only, at every depth. */
static void rlock_is_owned_only_by_owner(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    assert_false(weft_rlock_is_owned(&r));
    weft_rlock_acquire(&r, WEFT_FOREVER);
    assert_true(weft_rlock_is_owned(&r));
    weft_rlock_acquire(&r, WEFT_FOREVER);
    assert_true(weft_rlock_is_owned(&r));

    /* Another thread sees it taken but not its own. */
    holder_t h;
    holder_init(&h, &r, 0, 1);
    pthread_t t = start_holding(&h);
    assert_int_equal(h.acquire_rc[0], WEFT_ETIMEDOUT);
    assert_false(h.owned_while_holding);
    finish_holding(&h, t);
    assert_int_equal(h.release_rc[0], WEFT_EPERM);

    weft_rlock_release(&r);
    assert_true(weft_rlock_is_owned(&r));
    weft_rlock_release(&r);
    assert_false(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* BaseLockTests.test_try_acquire_contended: another thread's poll fails at once. */
static void rlock_try_acquire_contended_fails_at_once(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    weft_rlock_acquire(&r, WEFT_FOREVER);
    holder_t h;
    holder_init(&h, &r, 0, 1);
    pthread_t t = start_holding(&h);
    assert_int_equal(h.acquire_rc[0], WEFT_ETIMEDOUT);
    assert_true(h.elapsed_ns < SLACK_NS);
    finish_holding(&h, t);
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* BaseLockTests.test_acquire_contended: blocked threads get through once the owner has
 * released every level, not before. */
static void rlock_acquire_contended_waits_for_last_release(void **state)
{
    (void)state;
    enum { N = 3 };
    weft_rlock_t r;
    weft_rlock_init(&r);
    weft_rlock_acquire(&r, WEFT_FOREVER);
    weft_rlock_acquire(&r, WEFT_FOREVER);
    holder_t h[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        holder_init(&h[i], &r, WEFT_FOREVER, 2);
        weft_event_set(&h[i].finish); /* release as soon as it holds */
        t[i] = weft_test_start(holder_thread, &h[i]);
    }
    wait_queued(&r, N);
    assert_int_equal(weft_rlock_release(&r), 0);
    for (int i = 0; i < N; i++) assert_false(weft_event_is_set(&h[i].holding));
    assert_int_equal(queued(&r), N); /* one level left: nobody was woken */
    assert_int_equal(weft_rlock_release(&r), 0);
    for (int i = 0; i < N; i++) {
        finish_holding(&h[i], t[i]);
        assert_int_equal(h[i].acquire_rc[0], 0);
        assert_int_equal(h[i].acquire_rc[1], 0);
        assert_true(h[i].owned_while_holding);
        assert_int_equal(h[i].release_rc[0], 0);
        assert_int_equal(h[i].release_rc[1], 0);
        assert_int_equal(h[i].release_rc[2], WEFT_EPERM);
    }
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* BaseLockTests.test_thread_leak: threads using an RLock recursively leave no thread or
 * allocation behind. */
static void rlock_thread_leak_run(void *arg, int i)
{
    (void)i;
    weft_rlock_t *r = arg;
    for (int k = 0; k < 100; k++) {
        weft_rlock_acquire(r, WEFT_FOREVER);
        weft_rlock_acquire(r, WEFT_FOREVER);
        weft_rlock_release(r);
        weft_rlock_release(r);
    }
}

static void rlock_thread_leak(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    long allocs = weft_test_live_allocs();
    weft_test_run_threads(15, rlock_thread_leak_run, &r);
    assert_int_equal(weft_test_live_allocs(), allocs);
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* BaseLockTests.test_timeout: a non-owner's timed acquire waits about that long and fails
 * with WEFT_ETIMEDOUT; the owner's never waits. */
static void rlock_acquire_timeout_expires(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    weft_rlock_acquire(&r, WEFT_FOREVER);
    holder_t h;
    holder_init(&h, &r, 0.1, 1);
    pthread_t t = start_holding(&h);
    assert_int_equal(h.acquire_rc[0], WEFT_ETIMEDOUT);
    assert_true(h.elapsed_ns >= 100 * MS);
    assert_true(h.elapsed_ns < 100 * MS + SLACK_NS);
    finish_holding(&h, t);
    assert_int_equal(h.release_rc[0], WEFT_EPERM);
    assert_true(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_acquire(&r, 0.1), 0);
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* BaseLockTests.test_timeout: a NaN timeout is refused (Python: ValueError), also when the
 * caller already owns the lock, and the refusal changes the count not at all. */
static void rlock_acquire_timeout_nan_is_einval(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    assert_int_equal(weft_rlock_acquire(&r, NAN), WEFT_EINVAL);
    assert_false(weft_rlock_is_owned(&r));
    weft_rlock_acquire(&r, WEFT_FOREVER);
    assert_int_equal(weft_rlock_acquire(&r, NAN), WEFT_EINVAL);
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_false(weft_rlock_is_owned(&r)); /* the NaN call did not add a level */
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* ---- failure paths ------------------------------------------------------------------------ */

static void rlock_null_arguments_are_einval(void **state)
{
    (void)state;
    assert_int_equal(weft_rlock_init(NULL), WEFT_EINVAL);
    assert_int_equal(weft_rlock_destroy(NULL), WEFT_EINVAL);
    assert_int_equal(weft_rlock_acquire(NULL, WEFT_FOREVER), WEFT_EINVAL);
    assert_int_equal(weft_rlock_release(NULL), WEFT_EINVAL);
    assert_false(weft_rlock_is_owned(NULL));
}

/* Destroy is refused while held (at any depth) or waited on, and changes nothing. */
static void rlock_destroy_while_held_is_ebusy(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    weft_rlock_acquire(&r, WEFT_FOREVER);
    weft_rlock_acquire(&r, WEFT_FOREVER);
    assert_int_equal(weft_rlock_destroy(&r), WEFT_EBUSY);
    assert_true(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_int_equal(weft_rlock_destroy(&r), WEFT_EBUSY);

    holder_t h;
    holder_init(&h, &r, WEFT_FOREVER, 1);
    weft_event_set(&h.finish);
    pthread_t t = weft_test_start(holder_thread, &h);
    wait_queued(&r, 1);
    assert_int_equal(weft_rlock_destroy(&r), WEFT_EBUSY);
    assert_int_equal(weft_rlock_release(&r), 0);
    finish_holding(&h, t);
    assert_int_equal(h.acquire_rc[0], 0);
    assert_int_equal(h.release_rc[0], 0);
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* The recursion count cannot wrap: at its maximum, one more acquire is WEFT_EOVERFLOW and
 * changes nothing. (White-box: the count is set near its limit instead of taking the lock
 * ULONG_MAX times.) */
static void rlock_count_overflow_is_eoverflow(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    weft_rlock_acquire(&r, WEFT_FOREVER);
    r.count_ = ULONG_MAX - 1;
    assert_int_equal(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    assert_int_equal(weft_rlock_acquire(&r, WEFT_FOREVER), WEFT_EOVERFLOW);
    assert_int_equal(weft_rlock_acquire(&r, 0), WEFT_EOVERFLOW);
    assert_true(r.count_ == ULONG_MAX);
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_true(weft_rlock_is_owned(&r));
    r.count_ = 1;
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_false(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* ---- cancellation (the waiting core's internal API) --------------------------------------- */

/* A non-owner blocked in acquire is interrupted by a cancel and returns WEFT_ECANCELED; the
 * owner's hold is untouched; after uncancel the same thread acquires normally. */
static void rlock_cancel_interrupts_blocked_acquire(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    weft_rlock_acquire(&r, WEFT_FOREVER);
    weft_rlock_acquire(&r, WEFT_FOREVER);
    holder_t h;
    holder_init(&h, &r, WEFT_FOREVER, 1);
    pthread_t t = weft_test_start(holder_thread, &h);
    wait_queued(&r, 1);
    weft__waitctx_cancel(atomic_load(&h.ctx));
    assert_int_equal(weft_event_wait(&h.holding, 10.0), 0);
    finish_holding(&h, t);
    assert_int_equal(h.acquire_rc[0], WEFT_ECANCELED);
    assert_false(h.owned_while_holding);
    assert_int_equal(h.release_rc[0], WEFT_EPERM);
    assert_int_equal(queued(&r), 0);

    /* The owner still holds both levels. */
    assert_true(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_true(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_false(weft_rlock_is_owned(&r));
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* A pending cancel fails a non-owner's blocking acquire at once, but not the owner's
 * re-acquire, which never blocks; uncancel restores normal waits. */
typedef struct pending {
    weft_rlock_t *rlock;
    int rc_blocked, rc_after_uncancel;
    int64_t blocked_ns;
} pending_t;

static void *pending_thread(void *p)
{
    pending_t *c = p;
    weft__waitctx_t *self = weft__waitctx_current();
    weft__waitctx_cancel(self);
    int64_t t0 = weft_time_monotonic_ns();
    c->rc_blocked = weft_rlock_acquire(c->rlock, 10.0);
    c->blocked_ns = weft_time_monotonic_ns() - t0;
    weft__waitctx_uncancel(self);
    c->rc_after_uncancel = weft_rlock_acquire(c->rlock, 0.02);
    return NULL;
}

static void rlock_pending_cancel_fails_blocking_acquire_at_once(void **state)
{
    (void)state;
    weft_rlock_t r;
    weft_rlock_init(&r);
    weft_rlock_acquire(&r, WEFT_FOREVER);
    pending_t c = {.rlock = &r};
    weft_test_join(weft_test_start(pending_thread, &c));
    assert_int_equal(c.rc_blocked, WEFT_ECANCELED);
    assert_true(c.blocked_ns < SLACK_NS);
    assert_int_equal(c.rc_after_uncancel, WEFT_ETIMEDOUT);

    /* The owner, canceled, still re-enters: that never blocks. */
    weft__waitctx_t *self = weft__waitctx_current();
    weft__waitctx_cancel(self);
    assert_int_equal(weft_rlock_acquire(&r, WEFT_FOREVER), 0);
    weft__waitctx_uncancel(self);
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_int_equal(weft_rlock_release(&r), 0);
    assert_int_equal(weft_rlock_destroy(&r), 0);
}

/* ---- mutual exclusion under stress -------------------------------------------------------- */

typedef struct counted {
    weft_rlock_t rlock;
    weft_barrier_t start;
    int iterations;
    long counter;       /* plain: only ever touched under the lock */
    _Atomic int inside; /* distinct owners right now: must never exceed 1 */
    _Atomic int overlaps;
    _Atomic long contended;
    _Atomic int errors;
} counted_t;

static void busy(int n)
{
    for (volatile int j = 0; j < n; j++) {
    }
}

/* Takes the RLock three levels deep (the inner levels timed, as a re-entrant caller might)
 * and increments the counter at each level. */
static void count_recursively(void *arg, int i)
{
    (void)i;
    counted_t *c = arg;
    if (weft_barrier_wait(&c->start, 10.0) < 0) atomic_fetch_add(&c->errors, 1);
    for (int k = 0; k < c->iterations; k++) {
        if (!weft_rlock_is_owned(&c->rlock) && weft_rlock_acquire(&c->rlock, 0) != 0) {
            atomic_fetch_add(&c->contended, 1);
            if (weft_rlock_acquire(&c->rlock, WEFT_FOREVER) != 0) atomic_fetch_add(&c->errors, 1);
        }
        if (atomic_fetch_add(&c->inside, 1) != 0) atomic_fetch_add(&c->overlaps, 1);
        for (int level = 0; level < 2; level++)
            if (weft_rlock_acquire(&c->rlock, level ? 0 : 1.0) != 0)
                atomic_fetch_add(&c->errors, 1);
        long seen = c->counter;
        busy(40);
        c->counter = seen + 1;
        for (int level = 0; level < 2; level++)
            if (weft_rlock_release(&c->rlock) != 0) atomic_fetch_add(&c->errors, 1);
        if (!weft_rlock_is_owned(&c->rlock)) atomic_fetch_add(&c->errors, 1);
        atomic_fetch_sub(&c->inside, 1);
        if (weft_rlock_release(&c->rlock) != 0) atomic_fetch_add(&c->errors, 1);
        if (weft_rlock_is_owned(&c->rlock)) atomic_fetch_add(&c->errors, 1);
        busy(80);
    }
}

/* 8 threads x 50k recursive critical sections: no two owners at once, no lost increment. */
static void rlock_mutual_exclusion_stress(void **state)
{
    (void)state;
    enum { THREADS = 8 };
    counted_t c = {.iterations = SCALED(50000)};
    weft_rlock_init(&c.rlock);
    weft_barrier_init(&c.start, THREADS, NULL, NULL);
    double t0 = weft_time_monotonic();
    weft_test_run_threads(THREADS, count_recursively, &c);
    print_message("%d threads x %d recursive sections: %.3f s, %ld found it taken\n", THREADS,
                  c.iterations, weft_time_monotonic() - t0, atomic_load(&c.contended));
    assert_int_equal(atomic_load(&c.errors), 0);
    assert_int_equal(atomic_load(&c.overlaps), 0);
    assert_int_equal(c.counter, (long)THREADS * c.iterations);
    assert_int_equal(queued(&c.rlock), 0);
    assert_int_equal(weft_rlock_destroy(&c.rlock), 0);
    assert_int_equal(weft_barrier_destroy(&c.start), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(rlock_init_gives_unowned_lock),
    WEFT_TEST(rlock_acquire_release),
    WEFT_TEST(rlock_reacquire_by_owner),
    WEFT_TEST(rlock_release_unacquired_is_eperm),
    WEFT_TEST(rlock_release_by_non_owner_is_eperm),
    WEFT_TEST(rlock_is_owned_only_by_owner),
    WEFT_TEST(rlock_try_acquire_contended_fails_at_once),
    WEFT_TEST(rlock_acquire_contended_waits_for_last_release),
    WEFT_TEST(rlock_thread_leak),
    WEFT_TEST(rlock_acquire_timeout_expires),
    WEFT_TEST(rlock_acquire_timeout_nan_is_einval),
    WEFT_TEST(rlock_null_arguments_are_einval),
    WEFT_TEST(rlock_destroy_while_held_is_ebusy),
    WEFT_TEST(rlock_count_overflow_is_eoverflow),
    WEFT_TEST(rlock_cancel_interrupts_blocked_acquire),
    WEFT_TEST(rlock_pending_cancel_fails_blocking_acquire_at_once),
    WEFT_TEST(rlock_mutual_exclusion_stress),
};
WEFT_TEST_MAIN(cases)
