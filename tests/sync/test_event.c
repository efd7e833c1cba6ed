/*
 * Event: the flag, set waking every waiter, timed waits, the wake-up that survives a clear,
 * argument errors, destroy while waited on, cancellation, and the thread parker's idle cost.
 * Mirrors CPython's Lib/test/lock_tests.py EventTests (reset_internal_locks has no analogue:
 * weft's Event has no internal lock to re-create after fork).
 *
 * Synchronisation is by queue inspection (a waiter is parked once it sits on the event's wait
 * queue) or by atomics, never by sleeping.
 */
#include "weft_test.h"

#include "wait/wait_internal.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>

enum { NTHREADS = 5 };

/* ---- helpers ---------------------------------------------------------------------------- */

static void wait_count(_Atomic int *counter, int n)
{
    int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
    while (atomic_load(counter) < n) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
}

/* ---- the flag --------------------------------------------------------------------------- */

/* EventTests.test_is_set */
static void event_is_set_follows_set_and_clear(void **state)
{
    (void)state;
    weft_event_t e;
    assert_int_equal(weft_event_init(&e), 0);
    assert_false(weft_event_is_set(&e));
    assert_int_equal(weft_event_set(&e), 0);
    assert_true(weft_event_is_set(&e));
    assert_int_equal(weft_event_set(&e), 0);
    assert_true(weft_event_is_set(&e));
    assert_int_equal(weft_event_clear(&e), 0);
    assert_false(weft_event_is_set(&e));
    assert_int_equal(weft_event_clear(&e), 0);
    assert_false(weft_event_is_set(&e));
    assert_int_equal(weft_event_destroy(&e), 0);
}

/* EventTests.test_timeout, second half: a set event satisfies any wait at once. */
static void event_wait_on_set_event_returns_at_once(void **state)
{
    (void)state;
    weft_event_t e;
    weft_event_init(&e);
    weft_event_set(&e);
    assert_int_equal(weft_event_wait(&e, 0), 0);
    assert_int_equal(weft_event_wait(&e, 0.5), 0);
    assert_int_equal(weft_event_wait(&e, WEFT_FOREVER), 0);
    assert_int_equal(weft_event_wait(&e, INFINITY), 0);
    weft_event_destroy(&e);
}

/* ---- set wakes every waiter ------------------------------------------------------------- */

typedef struct notify_ctx {
    weft_event_t e;
    double timeout;
    _Atomic int done;
    int rc[NTHREADS];
} notify_ctx_t;

static void waiter(void *arg, int i)
{
    notify_ctx_t *c = arg;
    c->rc[i] = weft_event_wait(&c->e, c->timeout);
    atomic_fetch_add(&c->done, 1);
}

/* EventTests.test_notify (_check_notify): every waiter blocks until set, then all return;
 * once set, new waiters pass straight through; after clear they block again. */
static void event_set_wakes_every_waiter(void **state)
{
    (void)state;
    notify_ctx_t c = {.timeout = WEFT_FOREVER};
    weft_event_init(&c.e);
    for (int round = 0; round < 2; round++) {
        atomic_store(&c.done, 0);
        weft_test_bg_t bg;
        weft_test_bg_start(&bg, NTHREADS, waiter, &c);
        weft_test_wait_queued(&c.e.waiters_, NTHREADS);
        assert_int_equal(atomic_load(&c.done), 0);
        assert_int_equal(weft_event_set(&c.e), 0);
        weft_test_bg_join(&bg);
        for (int i = 0; i < NTHREADS; i++) assert_int_equal(c.rc[i], 0);

        atomic_store(&c.done, 0);
        weft_test_bg_start(&bg, NTHREADS, waiter, &c); /* already set: nobody blocks */
        weft_test_bg_join(&bg);
        for (int i = 0; i < NTHREADS; i++) assert_int_equal(c.rc[i], 0);
        assert_int_equal(weft_test_queue_length(&c.e.waiters_), 0);
        weft_event_clear(&c.e);
    }
    assert_int_equal(weft_event_destroy(&c.e), 0);
}

/* Waiters that time out leave the queue from the middle; set still wakes the others. */
typedef struct mixed_ctx {
    weft_event_t e;
    _Atomic int timed_out;
    int rc[NTHREADS];
} mixed_ctx_t;

static void mixed_waiter(void *arg, int i)
{
    mixed_ctx_t *c = arg;
    c->rc[i] = weft_event_wait(&c->e, i % 2 ? 0.02 : WEFT_FOREVER);
    if (c->rc[i] == WEFT_ETIMEDOUT) atomic_fetch_add(&c->timed_out, 1);
}

static void event_set_wakes_waiters_left_after_timeouts(void **state)
{
    (void)state;
    mixed_ctx_t c = {0};
    weft_event_init(&c.e);
    weft_test_bg_t bg;
    weft_test_bg_start(&bg, NTHREADS, mixed_waiter, &c);
    wait_count(&c.timed_out, NTHREADS / 2); /* the odd ones */
    weft_test_wait_queued(&c.e.waiters_, NTHREADS - NTHREADS / 2);
    weft_event_set(&c.e);
    weft_test_bg_join(&bg);
    for (int i = 0; i < NTHREADS; i++) assert_int_equal(c.rc[i], i % 2 ? WEFT_ETIMEDOUT : 0);
    assert_int_equal(weft_event_destroy(&c.e), 0);
}

/* ---- timeouts --------------------------------------------------------------------------- */

typedef struct timeout_ctx {
    weft_event_t e;
    int rc_poll[NTHREADS], rc_timed[NTHREADS];
    double elapsed[NTHREADS];
} timeout_ctx_t;

static void timed_waiter(void *arg, int i)
{
    timeout_ctx_t *c = arg;
    c->rc_poll[i] = weft_event_wait(&c->e, 0.0);
    double t0 = weft_time_monotonic();
    c->rc_timed[i] = weft_event_wait(&c->e, 0.1);
    c->elapsed[i] = weft_time_monotonic() - t0;
}

/* EventTests.test_timeout: a poll of an unset event fails at once; a timed wait fails after
 * its timeout (never before it); both with WEFT_ETIMEDOUT. */
static void event_wait_timeout_expires(void **state)
{
    (void)state;
    timeout_ctx_t c;
    weft_event_init(&c.e);
    weft_test_run_threads(NTHREADS, timed_waiter, &c);
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(c.rc_poll[i], WEFT_ETIMEDOUT);
        assert_int_equal(c.rc_timed[i], WEFT_ETIMEDOUT);
        assert_true(c.elapsed[i] >= 0.1);
        assert_true(c.elapsed[i] < 5.0);
    }
    assert_int_equal(weft_test_queue_length(&c.e.waiters_), 0);
    /* ... and once set, a timed wait succeeds at once. */
    weft_event_set(&c.e);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_event_wait(&c.e, 0.1), 0);
    assert_true(weft_time_monotonic() - t0 < 0.1);
    assert_int_equal(weft_event_destroy(&c.e), 0);
}

/* EventTests.test_set_and_clear: a waiter woken by set returns 0 even though the flag was
 * cleared again before it got to run. */
static void event_set_then_clear_still_wakes_waiters(void **state)
{
    (void)state;
    notify_ctx_t c = {.timeout = 5.0};
    weft_event_init(&c.e);
    weft_test_bg_t bg;
    weft_test_bg_start(&bg, NTHREADS, waiter, &c);
    weft_test_wait_queued(&c.e.waiters_, NTHREADS);
    weft_event_set(&c.e);
    weft_event_clear(&c.e);
    weft_test_bg_join(&bg);
    for (int i = 0; i < NTHREADS; i++) assert_int_equal(c.rc[i], 0);
    assert_false(weft_event_is_set(&c.e));
    assert_int_equal(weft_event_destroy(&c.e), 0);
}

/* Timeouts too large to represent, +inf included, mean forever (weft/core.h). */
typedef struct huge_ctx {
    weft_event_t e;
    int rc[2];
} huge_ctx_t;

static void huge_waiter(void *arg, int i)
{
    huge_ctx_t *c = arg;
    c->rc[i] = weft_event_wait(&c->e, i == 0 ? INFINITY : 1e300);
}

static void event_wait_huge_timeout_blocks_until_set(void **state)
{
    (void)state;
    huge_ctx_t c = {.rc = {1, 1}};
    weft_event_init(&c.e);
    weft_test_bg_t bg;
    weft_test_bg_start(&bg, 2, huge_waiter, &c);
    weft_test_wait_queued(&c.e.waiters_, 2);
    weft_event_set(&c.e);
    weft_test_bg_join(&bg);
    assert_int_equal(c.rc[0], 0);
    assert_int_equal(c.rc[1], 0);
    assert_int_equal(weft_event_destroy(&c.e), 0);
}

/* ---- errors ----------------------------------------------------------------------------- */

static void event_null_args_are_einval(void **state)
{
    (void)state;
    assert_int_equal(weft_event_init(NULL), WEFT_EINVAL);
    assert_int_equal(weft_event_destroy(NULL), WEFT_EINVAL);
    assert_int_equal(weft_event_set(NULL), WEFT_EINVAL);
    assert_int_equal(weft_event_clear(NULL), WEFT_EINVAL);
    assert_int_equal(weft_event_wait(NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_event_wait(NULL, WEFT_FOREVER), WEFT_EINVAL);
    assert_false(weft_event_is_set(NULL));
}

/* NaN is never a timeout (weft/core.h), whether or not the wait would have to block. */
static void event_wait_nan_timeout_is_einval(void **state)
{
    (void)state;
    weft_event_t e;
    weft_event_init(&e);
    assert_int_equal(weft_event_wait(&e, NAN), WEFT_EINVAL);
    weft_event_set(&e);
    assert_int_equal(weft_event_wait(&e, NAN), WEFT_EINVAL);
    assert_int_equal(weft_event_destroy(&e), 0);
}

/* Destroy refuses while a thread waits, changes nothing, and the event keeps working. */
static void event_destroy_while_waited_on_is_ebusy(void **state)
{
    (void)state;
    notify_ctx_t c = {.timeout = WEFT_FOREVER};
    weft_event_init(&c.e);
    weft_test_bg_t bg;
    weft_test_bg_start(&bg, 1, waiter, &c);
    weft_test_wait_queued(&c.e.waiters_, 1);
    assert_int_equal(weft_event_destroy(&c.e), WEFT_EBUSY);
    assert_false(weft_event_is_set(&c.e));
    assert_int_equal(weft_event_set(&c.e), 0);
    weft_test_bg_join(&bg);
    assert_int_equal(c.rc[0], 0);
    assert_int_equal(weft_event_destroy(&c.e), 0);
}

/* ---- cancellation (through the waiting core's internal API) ---------------------------- */

typedef struct cancel_ctx {
    weft_event_t e;
    weft__waitctx_t *_Atomic ctx;
    int rc, rc_after;
} cancel_ctx_t;

static void cancelable_waiter(void *arg, int i)
{
    (void)i;
    cancel_ctx_t *c = arg;
    weft__waitctx_t *self = weft__waitctx_current();
    atomic_store(&c->ctx, self);
    c->rc = weft_event_wait(&c->e, WEFT_FOREVER);
    weft__waitctx_uncancel(self);
    c->rc_after = weft_event_wait(&c->e, 0.01); /* blocking calls work again */
}

/* A parked waiter is canceled: ECANCELED, and it has left the queue. */
static void event_wait_canceled_while_parked(void **state)
{
    (void)state;
    cancel_ctx_t c = {0};
    weft_event_init(&c.e);
    weft_test_bg_t bg;
    weft_test_bg_start(&bg, 1, cancelable_waiter, &c);
    weft_test_wait_queued(&c.e.waiters_, 1);
    weft__waitctx_cancel(atomic_load(&c.ctx));
    weft_test_bg_join(&bg);
    assert_int_equal(c.rc, WEFT_ECANCELED);
    assert_int_equal(c.rc_after, WEFT_ETIMEDOUT);
    assert_int_equal(weft_test_queue_length(&c.e.waiters_), 0);
    assert_int_equal(weft_event_destroy(&c.e), 0);
}

/* A cancel pending before the call fails it at once, unless the flag is already set. */
static void event_wait_with_pending_cancel(void **state)
{
    (void)state;
    weft__waitctx_t *self = weft__waitctx_current();
    weft_event_t e;
    weft_event_init(&e);
    weft__waitctx_cancel(self);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_event_wait(&e, 5.0), WEFT_ECANCELED);
    assert_int_equal(weft_event_wait(&e, WEFT_FOREVER), WEFT_ECANCELED);
    assert_true(weft_time_monotonic() - t0 < 2.0);
    weft_event_set(&e);
    assert_int_equal(weft_event_wait(&e, WEFT_FOREVER), 0);
    weft__waitctx_uncancel(self);
    weft_event_clear(&e);
    assert_int_equal(weft_event_wait(&e, 0.01), WEFT_ETIMEDOUT);
    assert_int_equal(weft_event_destroy(&e), 0);
}

/* ---- signal handlers -------------------------------------------------------------------- */

static weft_event_t signal_event;

static void on_signal(int sig)
{
    (void)sig;
    weft_event_set(&signal_event);
}

/* weft_event_set is async-signal-safe when nobody waits (weft/sync.h). */
static void event_set_from_signal_handler(void **state)
{
    (void)state;
    weft_event_init(&signal_event);
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    raise(SIGUSR1);
    sigaction(SIGUSR1, &old, NULL);
    assert_true(weft_event_is_set(&signal_event));
    assert_int_equal(weft_event_wait(&signal_event, 0), 0);
    assert_int_equal(weft_event_destroy(&signal_event), 0);
}

/* ---- stress and cost -------------------------------------------------------------------- */

typedef struct pingpong {
    weft_event_t ping, pong;
    int rounds;
    long counter; /* plain: ordered only by the events (TSan checks that they order it) */
    int failures; /* asserts belong to the main thread: the ponger counts instead */
} pingpong_t;

static void ponger(void *arg, int i)
{
    (void)i;
    pingpong_t *p = arg;
    for (int r = 0; r < p->rounds; r++) {
        if (weft_event_wait(&p->ping, WEFT_FOREVER) != 0) p->failures++;
        weft_event_clear(&p->ping);
        p->counter++;
        weft_event_set(&p->pong);
    }
}

/* Two threads hand control back and forth through two events; every hand-off arrives once,
 * and the events order the plain counter between the threads. */
static void event_ping_pong_between_two_threads(void **state)
{
    (void)state;
    pingpong_t p = {.rounds = SANITIZED ? 2000 : 10000};
    weft_event_init(&p.ping);
    weft_event_init(&p.pong);
    weft_test_bg_t bg;
    weft_test_bg_start(&bg, 1, ponger, &p);
    for (int r = 0; r < p.rounds; r++) {
        weft_event_set(&p.ping);
        assert_int_equal(weft_event_wait(&p.pong, WEFT_FOREVER), 0);
        weft_event_clear(&p.pong);
        assert_int_equal(p.counter, r + 1);
    }
    weft_test_bg_join(&bg);
    assert_int_equal(p.failures, 0);
    assert_false(weft_event_is_set(&p.ping));
    assert_int_equal(weft_event_destroy(&p.ping), 0);
    assert_int_equal(weft_event_destroy(&p.pong), 0);
}

/* The thread parker spins only briefly (tens of microseconds) before sleeping in the kernel:
 * half a second of waiting for nobody costs almost no CPU. */
static void event_wait_idle_does_not_burn_cpu(void **state)
{
    (void)state;
    weft_event_t e;
    weft_event_init(&e);
    double cpu = weft_test_cpu_seconds();
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_event_wait(&e, 0.5), WEFT_ETIMEDOUT);
    double wall = weft_time_monotonic() - t0;
    cpu = weft_test_cpu_seconds() - cpu;
    print_message("0.5 s idle event wait: %.1f ms CPU over %.3f s\n", cpu * 1e3, wall);
    assert_true(wall >= 0.5);
    assert_true(cpu < 0.05);
    assert_int_equal(weft_event_destroy(&e), 0);
}

/* The timeout rules (weft/core.h): -0.5 polls (WEFT_ETIMEDOUT at once), WEFT_FOREVER blocks
 * until set, NaN is WEFT_EINVAL. */
static int timed_event_wait(void *p)
{
    return weft_event_wait(p, -0.5);
}

static int forever_event_wait(void *p)
{
    return weft_event_wait(p, WEFT_FOREVER);
}

static void event_set_it(void *p)
{
    assert_int_equal(weft_event_set(p), 0);
}

static void event_wait_negative_timeout_polls(void **state)
{
    (void)state;
    weft_event_t e;
    assert_int_equal(weft_event_init(&e), 0);
    assert_int_equal(weft_test_polls(timed_event_wait, &e), WEFT_ETIMEDOUT);
    assert_int_equal(weft_event_wait(&e, NAN), WEFT_EINVAL);
    weft_test_blocks_until(forever_event_wait, &e, event_set_it, &e, 0);
    assert_int_equal(weft_event_destroy(&e), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(event_wait_negative_timeout_polls),
    WEFT_TEST(event_is_set_follows_set_and_clear),
    WEFT_TEST(event_wait_on_set_event_returns_at_once),
    WEFT_TEST(event_set_wakes_every_waiter),
    WEFT_TEST(event_set_wakes_waiters_left_after_timeouts),
    WEFT_TEST(event_wait_timeout_expires),
    WEFT_TEST(event_set_then_clear_still_wakes_waiters),
    WEFT_TEST(event_wait_huge_timeout_blocks_until_set),
    WEFT_TEST(event_null_args_are_einval),
    WEFT_TEST(event_wait_nan_timeout_is_einval),
    WEFT_TEST(event_destroy_while_waited_on_is_ebusy),
    WEFT_TEST(event_wait_canceled_while_parked),
    WEFT_TEST(event_wait_with_pending_cancel),
    WEFT_TEST(event_set_from_signal_handler),
    WEFT_TEST(event_ping_pong_between_two_threads),
    WEFT_TEST(event_wait_idle_does_not_burn_cpu),
};
WEFT_TEST_MAIN(cases)
