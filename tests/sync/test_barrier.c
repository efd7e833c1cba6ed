/*
 * Barrier: rounds of `parties` waiters, arrival indices, the action (once per round, in the
 * last arrival, before anyone is released; a failing one breaks the round), abort, reset,
 * timeouts and cancellation breaking the barrier, n_waiting, broken, argument errors, destroy
 * while waited on, and stress. Mirrors CPython's Lib/test/lock_tests.py BarrierTests
 * (test_default_timeout has no analogue: weft's Barrier takes no default timeout).
 *
 * Synchronisation is by n_waiting, broken, queue inspection or atomics, never by sleeping
 * (one sleep below waits out a timeout whose expiry must not change the outcome).
 */
#include "weft_test.h"

#include "wait/wait_internal.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

enum { N = 5 }; /* parties, as CPython's BarrierTests.N */

/* ---- helpers ---------------------------------------------------------------------------- */

/* Yields until n callers are parked in the barrier (n_waiting and its queue agree); fails
 * after 10 s. Usable from any thread: it asserts nothing there, it only gives up. */
static bool wait_waiting(weft_barrier_t *b, unsigned n)
{
    int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
    while (weft_barrier_n_waiting(b) < n || weft_test_queue_length(&b->waiters_) < (int)n) {
        if (weft_time_monotonic_ns() > give_up) return false;
        sched_yield();
    }
    return true;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* ---- rounds ----------------------------------------------------------------------------- */

enum { ROUNDS = 5 };

typedef struct rounds_ctx {
    weft_barrier_t b;
    _Atomic int arrived, left; /* CPython's results[0] and results[1] */
    _Atomic int failures;
    _Atomic unsigned indices[2 * ROUNDS]; /* per wait: bit i = index i was returned */
} rounds_ctx_t;

static void check(rounds_ctx_t *r, bool ok)
{
    if (!ok) atomic_fetch_add(&r->failures, 1);
}

/* CPython's multipass: nobody leaves a round before everybody has arrived at it. */
static void multipass(void *arg, int t)
{
    (void)t;
    rounds_ctx_t *r = arg;
    for (int i = 0; i < ROUNDS; i++) {
        atomic_fetch_add(&r->arrived, 1);
        check(r, atomic_load(&r->left) == i * N);
        int idx = weft_barrier_wait(&r->b, WEFT_FOREVER);
        check(r, idx >= 0 && idx < N);
        if (idx >= 0) atomic_fetch_or(&r->indices[2 * i], 1u << idx);
        atomic_fetch_add(&r->left, 1);
        check(r, atomic_load(&r->arrived) == (i + 1) * N);
        idx = weft_barrier_wait(&r->b, WEFT_FOREVER);
        check(r, idx >= 0 && idx < N);
        if (idx >= 0) atomic_fetch_or(&r->indices[2 * i + 1], 1u << idx);
    }
    check(r, weft_barrier_n_waiting(&r->b) == 0);
    check(r, !weft_barrier_broken(&r->b));
}

/* BarrierTests.test_barrier and test_wait_return: N threads pass the barrier round after
 * round; in every round the arrival indices are exactly 0..N-1. */
static void barrier_rounds_release_all_parties(void **state)
{
    (void)state;
    rounds_ctx_t r = {0};
    assert_int_equal(weft_barrier_init(&r.b, N, NULL, NULL), 0);
    weft_test_run_threads(N, multipass, &r);
    assert_int_equal(atomic_load(&r.failures), 0);
    for (int i = 0; i < 2 * ROUNDS; i++)
        assert_int_equal(atomic_load(&r.indices[i]), (1u << N) - 1);
    assert_int_equal(weft_barrier_n_waiting(&r.b), 0);
    assert_false(weft_barrier_broken(&r.b));
    assert_int_equal(weft_barrier_destroy(&r.b), 0);
}

/* ---- the action ------------------------------------------------------------------------- */

typedef struct action_ctx {
    weft_barrier_t b;
    _Atomic int arrived, left, runs, failures;
    _Atomic(pthread_t) ran_in[ROUNDS];
    pthread_t last_in[ROUNDS]; /* written by the thread whose index was N-1 */
    int fail_round;            /* the round whose action fails (-1: none) */
    int rc[N][ROUNDS];
} action_ctx_t;

static int action(void *arg)
{
    action_ctx_t *a = arg;
    int round = atomic_fetch_add(&a->runs, 1);
    /* Everybody of this round has arrived; nobody has been released yet. */
    if (atomic_load(&a->arrived) != (round + 1) * N) atomic_fetch_add(&a->failures, 1);
    if (atomic_load(&a->left) != round * N) atomic_fetch_add(&a->failures, 1);
    if (round < ROUNDS) atomic_store(&a->ran_in[round], pthread_self());
    return round == a->fail_round ? -1 : 0;
}

static void action_party(void *arg, int t)
{
    action_ctx_t *a = arg;
    for (int i = 0; i < ROUNDS; i++) {
        atomic_fetch_add(&a->arrived, 1);
        int rc = a->rc[t][i] = weft_barrier_wait(&a->b, WEFT_FOREVER);
        if (rc == N - 1) a->last_in[i] = pthread_self();
        atomic_fetch_add(&a->left, 1);
        if (rc < 0) return;
    }
}

/* BarrierTests.test_action: the action runs once per round, in the last arrival (the caller
 * whose index is N-1), after everybody arrived and before anybody is released. */
static void barrier_action_runs_once_per_round_before_release(void **state)
{
    (void)state;
    action_ctx_t a = {.fail_round = -1};
    assert_int_equal(weft_barrier_init(&a.b, N, action, &a), 0);
    weft_test_run_threads(N, action_party, &a);
    assert_int_equal(atomic_load(&a.failures), 0);
    assert_int_equal(atomic_load(&a.runs), ROUNDS);
    for (int i = 0; i < ROUNDS; i++) {
        assert_true(pthread_equal(atomic_load(&a.ran_in[i]), a.last_in[i]));
        unsigned seen = 0;
        for (int t = 0; t < N; t++) {
            assert_true(a.rc[t][i] >= 0);
            seen |= 1u << a.rc[t][i];
        }
        assert_int_equal(seen, (1u << N) - 1);
    }
    assert_int_equal(weft_barrier_destroy(&a.b), 0);
}

/* A failing action breaks the barrier: every waiter of that round, the caller that ran the
 * action included, gets WEFT_EBROKEN; later waits too, until reset. */
static void barrier_failing_action_breaks_round_for_all(void **state)
{
    (void)state;
    action_ctx_t a = {.fail_round = 1};
    assert_int_equal(weft_barrier_init(&a.b, N, action, &a), 0);
    weft_test_run_threads(N, action_party, &a);
    assert_int_equal(atomic_load(&a.failures), 0);
    assert_int_equal(atomic_load(&a.runs), 2);
    for (int t = 0; t < N; t++) {
        assert_true(a.rc[t][0] >= 0);
        assert_int_equal(a.rc[t][1], WEFT_EBROKEN);
    }
    assert_true(weft_barrier_broken(&a.b));
    assert_int_equal(weft_barrier_wait(&a.b, 0), WEFT_EBROKEN);
    assert_int_equal(weft_barrier_reset(&a.b), 0);
    assert_false(weft_barrier_broken(&a.b));
    assert_int_equal(weft_barrier_destroy(&a.b), 0);
}

static int count_runs(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

/* BarrierTests.test_single_thread: one party never blocks; its action runs every time. */
static void barrier_single_party_never_blocks(void **state)
{
    (void)state;
    weft_barrier_t b;
    _Atomic int runs = 0;
    assert_int_equal(weft_barrier_init(&b, 1, count_runs, &runs), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(weft_barrier_wait(&b, 0), 0);
    assert_int_equal(weft_barrier_wait(&b, WEFT_FOREVER), 0);
    assert_int_equal(atomic_load(&runs), 4);
    assert_int_equal(weft_barrier_n_waiting(&b), 0);
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

/* ---- abort and reset -------------------------------------------------------------------- */

typedef struct abort_ctx {
    weft_barrier_t b, b2;
    _Atomic int passed, broken, others, failures; /* results1, results2, results3 */
} abort_ctx_t;

/* CPython's f() of test_abort: the thread with index N/2 "raises" and aborts instead of
 * waiting a second time. */
static void abort_party(void *arg, int t)
{
    (void)t;
    abort_ctx_t *a = arg;
    int i = weft_barrier_wait(&a->b, WEFT_FOREVER);
    if (i == N / 2) {
        weft_barrier_abort(&a->b);
        return;
    }
    int rc = weft_barrier_wait(&a->b, WEFT_FOREVER);
    if (rc == WEFT_EBROKEN)
        atomic_fetch_add(&a->broken, 1);
    else
        atomic_fetch_add(&a->passed, 1);
}

/* BarrierTests.test_abort: abort wakes every waiter with WEFT_EBROKEN and fails every later
 * wait; broken() says so. */
static void barrier_abort_breaks_waiters(void **state)
{
    (void)state;
    abort_ctx_t a = {0};
    weft_barrier_init(&a.b, N, NULL, NULL);
    weft_test_run_threads(N, abort_party, &a);
    assert_int_equal(atomic_load(&a.passed), 0);
    assert_int_equal(atomic_load(&a.broken), N - 1);
    assert_true(weft_barrier_broken(&a.b));
    assert_int_equal(weft_barrier_n_waiting(&a.b), 0);
    assert_int_equal(weft_barrier_wait(&a.b, WEFT_FOREVER), WEFT_EBROKEN);
    assert_int_equal(weft_barrier_destroy(&a.b), 0);
}

static void reset_party(void *arg, int t)
{
    (void)t;
    abort_ctx_t *a = arg;
    int i = weft_barrier_wait(&a->b, WEFT_FOREVER);
    if (i == N / 2) {
        /* Wait until the other threads are all in the barrier. */
        if (!wait_waiting(&a->b, N - 1)) atomic_fetch_add(&a->failures, 1);
        weft_barrier_reset(&a->b);
    } else {
        int rc = weft_barrier_wait(&a->b, WEFT_FOREVER);
        atomic_fetch_add(rc == WEFT_EBROKEN ? &a->broken : &a->passed, 1);
    }
    /* Now, pass the barrier again. */
    if (weft_barrier_wait(&a->b, WEFT_FOREVER) >= 0) atomic_fetch_add(&a->others, 1);
}

/* BarrierTests.test_reset: reset while N-1 wait gives each of them WEFT_EBROKEN, and leaves
 * the barrier unbroken and usable for the next full round. */
static void barrier_reset_wakes_waiters_broken(void **state)
{
    (void)state;
    abort_ctx_t a = {0};
    weft_barrier_init(&a.b, N, NULL, NULL);
    weft_test_run_threads(N, reset_party, &a);
    assert_int_equal(atomic_load(&a.failures), 0);
    assert_int_equal(atomic_load(&a.passed), 0);
    assert_int_equal(atomic_load(&a.broken), N - 1);
    assert_int_equal(atomic_load(&a.others), N);
    assert_false(weft_barrier_broken(&a.b));
    assert_int_equal(weft_barrier_destroy(&a.b), 0);
}

static void abort_and_reset_party(void *arg, int t)
{
    (void)t;
    abort_ctx_t *a = arg;
    int i = weft_barrier_wait(&a->b, WEFT_FOREVER);
    if (i == N / 2) {
        weft_barrier_abort(&a->b);
    } else {
        int rc = weft_barrier_wait(&a->b, WEFT_FOREVER);
        atomic_fetch_add(rc == WEFT_EBROKEN ? &a->broken : &a->passed, 1);
    }
    /* Synchronise and reset the barrier: first so that everyone has left it when we reset,
     * then so that nobody enters it before the reset. */
    if (weft_barrier_wait(&a->b2, WEFT_FOREVER) == N / 2) weft_barrier_reset(&a->b);
    weft_barrier_wait(&a->b2, WEFT_FOREVER);
    if (weft_barrier_wait(&a->b, WEFT_FOREVER) >= 0) atomic_fetch_add(&a->others, 1);
}

/* BarrierTests.test_abort_and_reset: a broken barrier is usable again after reset. */
static void barrier_abort_and_reset(void **state)
{
    (void)state;
    abort_ctx_t a = {0};
    weft_barrier_init(&a.b, N, NULL, NULL);
    weft_barrier_init(&a.b2, N, NULL, NULL);
    weft_test_run_threads(N, abort_and_reset_party, &a);
    assert_int_equal(atomic_load(&a.passed), 0);
    assert_int_equal(atomic_load(&a.broken), N - 1);
    assert_int_equal(atomic_load(&a.others), N);
    assert_false(weft_barrier_broken(&a.b));
    assert_int_equal(weft_barrier_destroy(&a.b), 0);
    assert_int_equal(weft_barrier_destroy(&a.b2), 0);
}

/* abort / reset / broken on an idle barrier. */
static void barrier_broken_until_reset(void **state)
{
    (void)state;
    weft_barrier_t b;
    weft_barrier_init(&b, 2, NULL, NULL);
    assert_false(weft_barrier_broken(&b));
    assert_int_equal(weft_barrier_abort(&b), 0);
    assert_true(weft_barrier_broken(&b));
    assert_int_equal(weft_barrier_abort(&b), 0);
    assert_int_equal(weft_barrier_wait(&b, 0), WEFT_EBROKEN);
    assert_int_equal(weft_barrier_wait(&b, WEFT_FOREVER), WEFT_EBROKEN);
    assert_int_equal(weft_barrier_n_waiting(&b), 0);
    assert_int_equal(weft_barrier_reset(&b), 0);
    assert_false(weft_barrier_broken(&b));
    assert_int_equal(weft_barrier_reset(&b), 0);
    assert_false(weft_barrier_broken(&b));
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

/* ---- timeouts --------------------------------------------------------------------------- */

typedef struct timeout_ctx {
    weft_barrier_t b;
    _Atomic int timed_out, broken, failures;
} timeout_ctx_t;

static void timeout_party(void *arg, int t)
{
    (void)t;
    timeout_ctx_t *x = arg;
    int i = weft_barrier_wait(&x->b, WEFT_FOREVER);
    if (i == N / 2) {
        /* One thread is late: it arrives only once the others gave up. */
        int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
        while (!weft_barrier_broken(&x->b) && weft_time_monotonic_ns() < give_up) sched_yield();
        if (weft_barrier_wait(&x->b, WEFT_FOREVER) != WEFT_EBROKEN)
            atomic_fetch_add(&x->failures, 1);
        return;
    }
    int rc = weft_barrier_wait(&x->b, 0.1);
    if (rc == WEFT_ETIMEDOUT)
        atomic_fetch_add(&x->timed_out, 1);
    else if (rc == WEFT_EBROKEN)
        atomic_fetch_add(&x->broken, 1);
    else
        atomic_fetch_add(&x->failures, 1);
}

/* BarrierTests.test_timeout: a late party makes the others' timed waits fail. The first to
 * time out breaks the barrier: it gets WEFT_ETIMEDOUT; the others get WEFT_EBROKEN, or their
 * own WEFT_ETIMEDOUT if it expired at about the same time; the late one WEFT_EBROKEN. */
static void barrier_timeout_breaks_for_all(void **state)
{
    (void)state;
    timeout_ctx_t x = {0};
    weft_barrier_init(&x.b, N, NULL, NULL);
    weft_test_run_threads(N, timeout_party, &x);
    assert_int_equal(atomic_load(&x.failures), 0);
    assert_true(atomic_load(&x.timed_out) >= 1);
    assert_int_equal(atomic_load(&x.timed_out) + atomic_load(&x.broken), N - 1);
    assert_true(weft_barrier_broken(&x.b));
    assert_int_equal(weft_barrier_destroy(&x.b), 0);
}

typedef struct one_ctx {
    weft_barrier_t *b;
    double timeout;
    int rc;
    double elapsed;
    weft__waitctx_t *_Atomic ctx;
} one_ctx_t;

static void one_wait(void *arg, int i)
{
    (void)i;
    one_ctx_t *o = arg;
    atomic_store(&o->ctx, weft__waitctx_current());
    double t0 = weft_time_monotonic();
    o->rc = weft_barrier_wait(o->b, o->timeout);
    o->elapsed = weft_time_monotonic() - t0;
    weft__waitctx_uncancel(atomic_load(&o->ctx)); /* in case it was canceled */
}

/* The caller whose timeout expires gets WEFT_ETIMEDOUT (after its timeout) and breaks the
 * barrier: the parked party gets WEFT_EBROKEN, a late one too. */
static void barrier_timeout_breaks_for_others(void **state)
{
    (void)state;
    weft_barrier_t b;
    weft_barrier_init(&b, 3, NULL, NULL);
    one_ctx_t patient = {.b = &b, .timeout = WEFT_FOREVER};
    weft_test_bg_t bg = {0};
    weft_test_bg_add(&bg, 1, 0, one_wait, &patient);
    assert_true(wait_waiting(&b, 1));
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_barrier_wait(&b, 0.05), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.05);
    weft_test_bg_join(&bg);
    assert_int_equal(patient.rc, WEFT_EBROKEN);
    assert_true(weft_barrier_broken(&b));
    assert_int_equal(weft_barrier_wait(&b, WEFT_FOREVER), WEFT_EBROKEN);
    /* A zero timeout polls: a lone arrival breaks the barrier at once. */
    weft_barrier_reset(&b);
    assert_int_equal(weft_barrier_wait(&b, 0), WEFT_ETIMEDOUT);
    assert_true(weft_barrier_broken(&b));
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

/* The last arrival completes the round without waiting, whatever its timeout. */
static void barrier_last_arrival_ignores_its_timeout(void **state)
{
    (void)state;
    weft_barrier_t b;
    weft_barrier_init(&b, 2, NULL, NULL);
    one_ctx_t first = {.b = &b, .timeout = 5.0};
    weft_test_bg_t bg = {0};
    weft_test_bg_add(&bg, 1, 0, one_wait, &first);
    assert_true(wait_waiting(&b, 1));
    assert_int_equal(weft_barrier_wait(&b, 0), 1);
    weft_test_bg_join(&bg);
    assert_int_equal(first.rc, 0);
    assert_false(weft_barrier_broken(&b));
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

/* While the last arrival runs the action, the round is complete: a party whose timeout
 * expires meanwhile still passes, as in Python (whose wait_for re-checks the barrier's state
 * after a timeout, and whose action runs under the lock). */
typedef struct slow_action {
    weft_event_t started, go;
} slow_action_t;

static int slow(void *arg)
{
    slow_action_t *s = arg;
    weft_event_set(&s->started);
    weft_event_wait(&s->go, WEFT_FOREVER);
    return 0;
}

static void barrier_timeout_during_action_still_passes(void **state)
{
    (void)state;
    slow_action_t s;
    weft_event_init(&s.started);
    weft_event_init(&s.go);
    weft_barrier_t b;
    weft_barrier_init(&b, 2, slow, &s);
    one_ctx_t early = {.b = &b, .timeout = 1.0}, last = {.b = &b, .timeout = WEFT_FOREVER};
    weft_test_bg_t bg = {0};
    weft_test_bg_add(&bg, 1, 0, one_wait, &early);
    assert_true(wait_waiting(&b, 1));
    weft_test_bg_add(&bg, 1, 0, one_wait, &last);
    assert_int_equal(weft_event_wait(&s.started, 10.0), 0);
    sleep_s(1.3); /* past the first party's timeout (1 s, so a slow start of the last party under
                     valgrind cannot make it expire before the round fills) */
    weft_event_set(&s.go);
    weft_test_bg_join(&bg);
    assert_int_equal(early.rc, 0);
    assert_int_equal(last.rc, 1);
    assert_false(weft_barrier_broken(&b));
    assert_int_equal(weft_barrier_destroy(&b), 0);
    weft_event_destroy(&s.started);
    weft_event_destroy(&s.go);
}

/* A caller that arrives while the previous round's action still runs waits to join the next
 * round. If its timeout (or a cancel) ends that wait first, it returns WEFT_ETIMEDOUT
 * (WEFT_ECANCELED) and breaks the barrier for the rounds after — but the round that was
 * already complete is not undone: its parties pass. */
static void barrier_early_arrival_timeout_spares_complete_round(void **state)
{
    (void)state;
    for (int cancel = 0; cancel <= 1; cancel++) {
        slow_action_t s;
        weft_event_init(&s.started);
        weft_event_init(&s.go);
        weft_barrier_t b;
        weft_barrier_init(&b, 2, slow, &s);
        one_ctx_t first = {.b = &b, .timeout = WEFT_FOREVER};
        one_ctx_t last = {.b = &b, .timeout = WEFT_FOREVER};
        one_ctx_t early = {.b = &b, .timeout = cancel ? WEFT_FOREVER : 0.05};
        weft_test_bg_t bg = {0};
        weft_test_bg_add(&bg, 1, 0, one_wait, &first);
        assert_true(wait_waiting(&b, 1));
        weft_test_bg_add(&bg, 1, 0, one_wait, &last);
        assert_int_equal(weft_event_wait(&s.started, 10.0), 0);
        weft_test_bg_t bg2 = {0};
        weft_test_bg_add(&bg2, 1, 0, one_wait, &early);
        if (cancel) {
            int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
            while (weft_test_queue_length(&b.waiters_) < 2 && weft_time_monotonic_ns() < give_up)
                sched_yield(); /* until it is parked beside the first party */
            weft__waitctx_cancel(atomic_load(&early.ctx));
        }
        weft_test_bg_join(&bg2);
        assert_int_equal(early.rc, cancel ? WEFT_ECANCELED : WEFT_ETIMEDOUT);
        weft_event_set(&s.go);
        weft_test_bg_join(&bg);
        assert_int_equal(first.rc, 0);
        assert_int_equal(last.rc, 1);
        assert_true(weft_barrier_broken(&b)); /* for the next round */
        assert_int_equal(weft_barrier_wait(&b, WEFT_FOREVER), WEFT_EBROKEN);
        assert_int_equal(weft_barrier_reset(&b), 0);
        assert_int_equal(weft_barrier_destroy(&b), 0);
        weft_event_destroy(&s.started);
        weft_event_destroy(&s.go);
    }
}

/* Races a timeout against the last arrival, many times. Whatever wins, the outcome is one of
 * the two consistent ones: both pass (with indices 0 and 1), or the timed-out party gets
 * WEFT_ETIMEDOUT and the other WEFT_EBROKEN. Never one passing while the other times out,
 * and never a barrier broken after a round that passed. */
typedef struct race_ctx {
    weft_barrier_t b;
    pthread_barrier_t trial;
    int trials;
    int rc[2];
    _Atomic int spin; /* ns the last arrival dawdles, varied per trial */
} race_ctx_t;

static void race_party(void *arg, int t)
{
    race_ctx_t *r = arg;
    for (int k = 0; k < r->trials; k++) {
        pthread_barrier_wait(&r->trial);
        if (t == 0) {
            r->rc[0] = weft_barrier_wait(&r->b, 50e-6);
        } else {
            int64_t until = weft_time_monotonic_ns() + atomic_load(&r->spin);
            while (weft_time_monotonic_ns() < until) weft__cpu_relax();
            r->rc[1] = weft_barrier_wait(&r->b, WEFT_FOREVER);
        }
        pthread_barrier_wait(&r->trial); /* main checks the outcome */
        pthread_barrier_wait(&r->trial);
    }
}

static void barrier_timeout_racing_last_arrival_is_consistent(void **state)
{
    (void)state;
    race_ctx_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->trials = SANITIZED ? 300 : 3000;
    weft_barrier_init(&r->b, 2, NULL, NULL);
    pthread_barrier_init(&r->trial, NULL, 3);
    weft_test_bg_t bg = {0};
    weft_test_bg_add(&bg, 2, 0, race_party, r);
    /* The last arrival's delay homes in on the point where either side wins half the time:
     * longer after a pass, shorter after a timeout. */
    int passed = 0, timed_out = 0, spin = 50000;
    for (int k = 0; k < r->trials; k++) {
        atomic_store(&r->spin, spin);
        pthread_barrier_wait(&r->trial);
        pthread_barrier_wait(&r->trial);
        if (r->rc[0] >= 0) {
            assert_int_equal(r->rc[0] + r->rc[1], 1);
            assert_false(weft_barrier_broken(&r->b));
            passed++;
            spin += 1000;
        } else {
            assert_int_equal(r->rc[0], WEFT_ETIMEDOUT);
            assert_int_equal(r->rc[1], WEFT_EBROKEN);
            assert_true(weft_barrier_broken(&r->b));
            weft_barrier_reset(&r->b);
            timed_out++;
            spin = spin > 1000 ? spin - 1000 : 0;
        }
        pthread_barrier_wait(&r->trial);
    }
    weft_test_bg_join(&bg);
    print_message("%d trials: %d passed, %d timed out\n", r->trials, passed, timed_out);
    pthread_barrier_destroy(&r->trial);
    assert_int_equal(weft_barrier_destroy(&r->b), 0);
    free(r);
}

/* ---- cancellation (through the waiting core's internal API) ---------------------------- */

/* A parked party is canceled: WEFT_ECANCELED for it, WEFT_EBROKEN for the others. */
static void barrier_wait_canceled_breaks_for_others(void **state)
{
    (void)state;
    weft_barrier_t b;
    weft_barrier_init(&b, 3, NULL, NULL);
    one_ctx_t victim = {.b = &b, .timeout = WEFT_FOREVER};
    one_ctx_t other = {.b = &b, .timeout = WEFT_FOREVER};
    weft_test_bg_t bg = {0};
    weft_test_bg_add(&bg, 1, 0, one_wait, &victim);
    assert_true(wait_waiting(&b, 1));
    weft_test_bg_add(&bg, 1, 0, one_wait, &other);
    assert_true(wait_waiting(&b, 2));
    weft__waitctx_cancel(atomic_load(&victim.ctx));
    weft_test_bg_join(&bg);
    assert_int_equal(victim.rc, WEFT_ECANCELED);
    assert_int_equal(other.rc, WEFT_EBROKEN);
    assert_true(weft_barrier_broken(&b));
    /* After reset (and uncancel, done by the victim) a full round passes again. */
    assert_int_equal(weft_barrier_reset(&b), 0);
    one_ctx_t again[2] = {{.b = &b, .timeout = WEFT_FOREVER}, {.b = &b, .timeout = 1.0}};
    weft_test_bg_add(&bg, 1, 0, one_wait, &again[0]);
    assert_true(wait_waiting(&b, 1));
    weft_test_bg_add(&bg, 1, 0, one_wait, &again[1]);
    assert_true(wait_waiting(&b, 2));
    assert_int_equal(weft_barrier_wait(&b, WEFT_FOREVER), 2);
    weft_test_bg_join(&bg);
    assert_int_equal(again[0].rc, 0);
    assert_int_equal(again[1].rc, 1);
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

/* ---- n_waiting and destroy -------------------------------------------------------------- */

/* n_waiting counts the parties parked in the current round; 0 once it is released. */
static void barrier_n_waiting_counts_parked_parties(void **state)
{
    (void)state;
    weft_barrier_t b;
    weft_barrier_init(&b, 3, NULL, NULL);
    assert_int_equal(weft_barrier_n_waiting(&b), 0);
    one_ctx_t o[2] = {{.b = &b, .timeout = WEFT_FOREVER}, {.b = &b, .timeout = WEFT_FOREVER}};
    weft_test_bg_t bg = {0};
    weft_test_bg_add(&bg, 1, 0, one_wait, &o[0]);
    assert_true(wait_waiting(&b, 1));
    assert_int_equal(weft_barrier_n_waiting(&b), 1);
    weft_test_bg_add(&bg, 1, 0, one_wait, &o[1]);
    assert_true(wait_waiting(&b, 2));
    assert_int_equal(weft_barrier_n_waiting(&b), 2);
    assert_int_equal(weft_barrier_wait(&b, WEFT_FOREVER), 2);
    weft_test_bg_join(&bg);
    assert_int_equal(o[0].rc, 0);
    assert_int_equal(o[1].rc, 1);
    assert_int_equal(weft_barrier_n_waiting(&b), 0);
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

static int destroy_self(void *arg)
{
    weft_barrier_t *b = *(weft_barrier_t **)arg;
    return weft_barrier_destroy(b) == WEFT_EBUSY ? 0 : -1; /* a wrong answer breaks it */
}

/* Destroy refuses while a party waits or the action runs, changes nothing, and the barrier
 * keeps working. */
static void barrier_destroy_while_waited_on_is_ebusy(void **state)
{
    (void)state;
    weft_barrier_t b, *self = &b;
    weft_barrier_init(&b, 2, destroy_self, &self);
    one_ctx_t o = {.b = &b, .timeout = WEFT_FOREVER};
    weft_test_bg_t bg = {0};
    weft_test_bg_add(&bg, 1, 0, one_wait, &o);
    assert_true(wait_waiting(&b, 1));
    assert_int_equal(weft_barrier_destroy(&b), WEFT_EBUSY);
    assert_int_equal(weft_barrier_n_waiting(&b), 1);
    assert_int_equal(weft_barrier_wait(&b, WEFT_FOREVER), 1); /* the action saw EBUSY too */
    weft_test_bg_join(&bg);
    assert_int_equal(o.rc, 0);
    assert_false(weft_barrier_broken(&b));
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

/* ---- errors ----------------------------------------------------------------------------- */

/* BarrierTests.test_constructor (parties must be positive) and NULL everywhere. */
static void barrier_invalid_args_are_einval(void **state)
{
    (void)state;
    weft_barrier_t b;
    assert_int_equal(weft_barrier_init(NULL, 1, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_barrier_init(&b, 0, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_barrier_init(&b, 0x80000000u, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_barrier_destroy(NULL), WEFT_EINVAL);
    assert_int_equal(weft_barrier_wait(NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_barrier_wait(NULL, WEFT_FOREVER), WEFT_EINVAL);
    assert_int_equal(weft_barrier_abort(NULL), WEFT_EINVAL);
    assert_int_equal(weft_barrier_reset(NULL), WEFT_EINVAL);
    assert_int_equal(weft_barrier_n_waiting(NULL), 0);
    assert_false(weft_barrier_broken(NULL));
}

/* NaN is no timeout: refused before the caller counts as arrived. */
static void barrier_wait_nan_timeout_is_einval(void **state)
{
    (void)state;
    weft_barrier_t b;
    weft_barrier_init(&b, 2, NULL, NULL);
    assert_int_equal(weft_barrier_wait(&b, NAN), WEFT_EINVAL);
    assert_int_equal(weft_barrier_n_waiting(&b), 0);
    assert_false(weft_barrier_broken(&b));
    weft_barrier_t one;
    weft_barrier_init(&one, 1, NULL, NULL);
    assert_int_equal(weft_barrier_wait(&one, NAN), WEFT_EINVAL);
    assert_int_equal(weft_barrier_destroy(&one), 0);
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

/* ---- stress ----------------------------------------------------------------------------- */

enum { STRESS_THREADS = 4, STRESS_ROUNDS_MAX = 1000 };

typedef struct stress_ctx {
    weft_barrier_t b;
    int rounds;
    _Atomic int runs, failures;
    _Atomic unsigned indices[STRESS_ROUNDS_MAX];
    long work[STRESS_THREADS]; /* plain: each thread writes its own, all read after the round */
} stress_ctx_t;

static int stress_action(void *arg)
{
    stress_ctx_t *s = arg;
    int round = atomic_fetch_add(&s->runs, 1);
    /* The barrier orders every party's work before the action: read it all, plain. */
    for (int t = 0; t < STRESS_THREADS; t++)
        if (s->work[t] != round + 1) atomic_fetch_add(&s->failures, 1);
    return 0;
}

static void stress_party(void *arg, int t)
{
    stress_ctx_t *s = arg;
    for (int i = 0; i < s->rounds; i++) {
        s->work[t] = i + 1;
        int idx = weft_barrier_wait(&s->b, WEFT_FOREVER);
        if (idx < 0 || idx >= STRESS_THREADS) {
            atomic_fetch_add(&s->failures, 1);
            return;
        }
        atomic_fetch_or(&s->indices[i], 1u << idx);
        /* ... and the action before every party's next step. */
        if (atomic_load(&s->runs) != i + 1) atomic_fetch_add(&s->failures, 1);
    }
}

/* 4 threads x 1000 rounds: distinct indices every round, one action per round. */
static void barrier_many_rounds_stress(void **state)
{
    (void)state;
    stress_ctx_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->rounds = SANITIZED ? 200 : STRESS_ROUNDS_MAX;
    weft_barrier_init(&s->b, STRESS_THREADS, stress_action, s);
    double t0 = weft_time_monotonic();
    weft_test_run_threads(STRESS_THREADS, stress_party, s);
    print_message("%d threads x %d rounds in %.3f s\n", STRESS_THREADS, s->rounds,
                  weft_time_monotonic() - t0);
    assert_int_equal(atomic_load(&s->failures), 0);
    assert_int_equal(atomic_load(&s->runs), s->rounds);
    for (int i = 0; i < s->rounds; i++)
        assert_int_equal(atomic_load(&s->indices[i]), (1u << STRESS_THREADS) - 1);
    assert_int_equal(weft_barrier_destroy(&s->b), 0);
    free(s);
}

/* More threads than parties: callers that arrive while a round is still completing (its
 * action runs) join the next round; every wait is part of a full round and returns a valid
 * index. A thread done with its waits keeps filling rounds for the others until all are done;
 * the last one then aborts, which releases whoever is left parked. */
enum { OVER_THREADS = 6, OVER_PARTIES = 3 };

typedef struct over_ctx {
    weft_barrier_t b;
    int rounds;
    _Atomic int runs, failures, finished;
} over_ctx_t;

static void over_party(void *arg, int t)
{
    (void)t;
    over_ctx_t *o = arg;
    for (int i = 0; i < o->rounds; i++) {
        int idx = weft_barrier_wait(&o->b, WEFT_FOREVER);
        if (idx < 0 || idx >= OVER_PARTIES) atomic_fetch_add(&o->failures, 1);
    }
    if (atomic_fetch_add(&o->finished, 1) + 1 == OVER_THREADS) {
        weft_barrier_abort(&o->b);
        return;
    }
    int rc;
    while ((rc = weft_barrier_wait(&o->b, WEFT_FOREVER)) >= 0) continue;
    if (rc != WEFT_EBROKEN || atomic_load(&o->finished) != OVER_THREADS)
        atomic_fetch_add(&o->failures, 1);
}

static void barrier_more_threads_than_parties(void **state)
{
    (void)state;
    over_ctx_t o = {.rounds = SANITIZED ? 100 : 500};
    weft_barrier_init(&o.b, OVER_PARTIES, count_runs, &o.runs);
    weft_test_run_threads(OVER_THREADS, over_party, &o);
    assert_int_equal(atomic_load(&o.failures), 0);
    assert_true(atomic_load(&o.runs) >= OVER_THREADS * o.rounds / OVER_PARTIES);
    assert_true(weft_barrier_broken(&o.b));
    assert_int_equal(weft_barrier_n_waiting(&o.b), 0);
    assert_int_equal(weft_barrier_destroy(&o.b), 0);
}

/* The timeout rules (weft/core.h): a wait with -0.5 times out at once and breaks the barrier
 * (Python's Barrier.wait(timeout=-0.5) breaks it too); WEFT_FOREVER blocks until the last
 * party arrives; NaN is WEFT_EINVAL. */
static int timed_barrier_wait(void *p)
{
    return weft_barrier_wait(p, -0.5);
}

static int forever_barrier_wait(void *p)
{
    int rc = weft_barrier_wait(p, WEFT_FOREVER);
    return rc >= 0 ? 0 : rc;
}

static void barrier_arrive(void *p)
{
    assert_true(weft_barrier_wait(p, WEFT_FOREVER) >= 0);
}

static void barrier_wait_negative_timeout_polls(void **state)
{
    (void)state;
    weft_barrier_t b;
    assert_int_equal(weft_barrier_init(&b, 2, NULL, NULL), 0);
    assert_int_equal(weft_barrier_wait(&b, NAN), WEFT_EINVAL);
    assert_false(weft_barrier_broken(&b));
    assert_int_equal(weft_test_polls(timed_barrier_wait, &b), WEFT_ETIMEDOUT);
    assert_true(weft_barrier_broken(&b));
    assert_int_equal(weft_barrier_reset(&b), 0);
    weft_test_blocks_until(forever_barrier_wait, &b, barrier_arrive, &b, 0);
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

/* The last arrival completes the round only once every other party is queued: a party that
 * left the queue on a timeout just as the round filled is on its way back, and the last
 * arrival waits for it. That wait parks (it used to spin on sched_yield: 100% CPU, and from
 * a coroutine its whole thread). White-box: count_ = 1 with nobody queued is exactly the state
 * such a returning party leaves behind; the abort stands in for its return (both end the
 * wait). */
static int complete_forever(void *p)
{
    return weft_barrier_wait(p, WEFT_FOREVER);
}

static void barrier_last_arrival_parks_while_a_party_returns(void **state)
{
    (void)state;
    weft_barrier_t b;
    assert_int_equal(weft_barrier_init(&b, 2, NULL, NULL), 0);
    weft__waitq_lock(&b.waiters_);
    b.count_ = 1; /* one party arrived, timed out, and is between two critical sections */
    weft__waitq_unlock(&b.waiters_);
    weft_test_call_t *c = weft_test_call_start(complete_forever, &b);
    weft_test_wait_queued(&b.waiters_, 1); /* parked as the round's completer */
    double cpu0 = weft_test_cpu_seconds();
    int rc = 1;
    assert_false(weft_test_call_wait(c, 0.3, &rc, NULL)); /* still waiting for the party */
    assert_true(weft_test_cpu_seconds() - cpu0 < 0.1);    /* and not spinning */
    assert_int_equal(weft_barrier_abort(&b), 0);
    assert_true(weft_test_call_wait(c, 30, &rc, NULL));
    assert_int_equal(rc, WEFT_EBROKEN);
    assert_int_equal(weft_barrier_reset(&b), 0);
    assert_int_equal(weft_barrier_destroy(&b), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(barrier_last_arrival_parks_while_a_party_returns),
    WEFT_TEST(barrier_wait_negative_timeout_polls),
    WEFT_TEST(barrier_rounds_release_all_parties),
    WEFT_TEST(barrier_action_runs_once_per_round_before_release),
    WEFT_TEST(barrier_failing_action_breaks_round_for_all),
    WEFT_TEST(barrier_single_party_never_blocks),
    WEFT_TEST(barrier_abort_breaks_waiters),
    WEFT_TEST(barrier_reset_wakes_waiters_broken),
    WEFT_TEST(barrier_abort_and_reset),
    WEFT_TEST(barrier_broken_until_reset),
    WEFT_TEST(barrier_timeout_breaks_for_all),
    WEFT_TEST(barrier_timeout_breaks_for_others),
    WEFT_TEST(barrier_last_arrival_ignores_its_timeout),
    WEFT_TEST(barrier_timeout_during_action_still_passes),
    WEFT_TEST(barrier_early_arrival_timeout_spares_complete_round),
    WEFT_TEST(barrier_timeout_racing_last_arrival_is_consistent),
    WEFT_TEST(barrier_wait_canceled_breaks_for_others),
    WEFT_TEST(barrier_n_waiting_counts_parked_parties),
    WEFT_TEST(barrier_destroy_while_waited_on_is_ebusy),
    WEFT_TEST(barrier_invalid_args_are_einval),
    WEFT_TEST(barrier_wait_nan_timeout_is_einval),
    WEFT_TEST(barrier_many_rounds_stress),
    WEFT_TEST(barrier_more_threads_than_parties),
};
WEFT_TEST_MAIN(cases)
