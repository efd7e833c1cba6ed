/*
 * The waiting core: queue order, parking with deadlines, wake-ups that race timeouts,
 * cancellation, and the plug-in point a coroutine parker uses. These are the invariants every
 * primitive relies on (src/wait/wait_internal.h).
 */
#include "weft_test.h"

#include "wait/wait_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int64_t deadline_in(double seconds)
{
    int64_t d;
    assert_int_equal(weft__deadline(seconds, &d), 0);
    return d;
}

static void waitq_push_pop_is_fifo(void **state)
{
    (void)state;
    weft_waitq_t q = WEFT_WAITQ_INIT;
    weft__waiter_t w[4];
    weft__waitq_lock(&q);
    for (int i = 0; i < 4; i++) {
        weft__waiter_init(&w[i]);
        weft__waitq_push(&q, &w[i]);
    }
    weft__waitq_remove(&q, &w[1]);
    assert_false(w[1].queued);
    assert_ptr_equal(weft__waitq_pop(&q), &w[0]);
    assert_ptr_equal(weft__waitq_pop(&q), &w[2]);
    assert_ptr_equal(weft__waitq_pop(&q), &w[3]);
    assert_null(weft__waitq_pop(&q));
    assert_true(weft__waitq_empty(&q));
    weft__waitq_unlock(&q);
}

static void park_times_out_and_leaves_queue(void **state)
{
    (void)state;
    weft_waitq_t q = WEFT_WAITQ_INIT;
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waitq_lock(&q);
    weft__waitq_push(&q, &w);
    weft__waitq_unlock(&q);
    int64_t start = weft_time_monotonic_ns();
    assert_int_equal(weft__waiter_park(&q, &w, deadline_in(0.05)), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic_ns() - start >= 50000000);
    assert_true(weft__waitq_empty(&q));
}

static void wake_before_park_is_not_lost(void **state)
{
    (void)state;
    weft_waitq_t q = WEFT_WAITQ_INIT;
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waitq_lock(&q);
    weft__waitq_push(&q, &w);
    weft__waitq_unlock(&q);
    assert_int_equal(weft__waitq_wake(&q, 1, 7), 1);
    assert_int_equal(weft__waiter_park(&q, &w, WEFT_NO_DEADLINE), 0);
    assert_int_equal(w.data, 7);
}

/* A waiter thread: queues itself, says so, parks until `deadline_s` (< 0: forever). */
typedef struct parked {
    weft_waitq_t *q;
    double deadline_s;
    _Atomic int queued;
    weft__waitctx_t *_Atomic ctx;
    int result;
    uintptr_t data;
    int64_t elapsed;
} parked_t;

static void *park_thread(void *p)
{
    parked_t *a = p;
    weft__waiter_t w;
    weft__waiter_init(&w);
    atomic_store(&a->ctx, w.ctx);
    weft__waitq_lock(a->q);
    weft__waitq_push(a->q, &w);
    weft__waitq_unlock(a->q);
    int64_t start = weft_time_monotonic_ns();
    atomic_store(&a->queued, 1);
    a->result = weft__waiter_park(
        a->q, &w, a->deadline_s < 0 ? WEFT_NO_DEADLINE : deadline_in(a->deadline_s));
    a->elapsed = weft_time_monotonic_ns() - start;
    a->data = w.data;
    return NULL;
}

static void wait_queued(parked_t *a)
{
    while (!atomic_load(&a->queued)) sleep_ms(1);
}

static void park_returns_when_woken_by_other_thread(void **state)
{
    (void)state;
    weft_waitq_t q = WEFT_WAITQ_INIT;
    parked_t a = {.q = &q, .deadline_s = -1};
    pthread_t t;
    pthread_create(&t, NULL, park_thread, &a);
    wait_queued(&a);
    sleep_ms(20); /* most likely asleep in the futex by now; correct either way */
    assert_int_equal(weft__waitq_wake(&q, 1, 42), 1);
    pthread_join(t, NULL);
    assert_int_equal(a.result, 0);
    assert_int_equal(a.data, 42);
}

/* The race every timed primitive depends on: a waker dequeues the waiter (and so owes it a
 * wake-up and whatever it hands over), the waiter's deadline passes before the wake arrives.
 * The waiter must take the wake (0), not report a timeout and drop what it was given. */
static void dequeued_waiter_takes_wake_after_deadline(void **state)
{
    (void)state;
    weft_waitq_t q = WEFT_WAITQ_INIT;
    /* 0.5 s: the pop below must come before it, even on a machine so loaded that this thread
     * waits tens of milliseconds for a CPU (0.02 s failed there: the waiter had left). */
    parked_t a = {.q = &q, .deadline_s = 0.5};
    pthread_t t;
    pthread_create(&t, NULL, park_thread, &a);
    wait_queued(&a);
    weft__waitq_lock(&q);
    weft__waiter_t *w = weft__waitq_pop(&q);
    weft__waitq_unlock(&q);
    assert_non_null(w);
    w->data = 99;
    sleep_ms(700); /* well past the waiter's deadline */
    weft__waiter_wake(w);
    pthread_join(t, NULL);
    assert_int_equal(a.result, 0);
    assert_int_equal(a.data, 99);
    assert_true(a.elapsed >= 600000000);
}

static void cancel_interrupts_park(void **state)
{
    (void)state;
    weft_waitq_t q = WEFT_WAITQ_INIT;
    parked_t a = {.q = &q, .deadline_s = -1};
    pthread_t t;
    pthread_create(&t, NULL, park_thread, &a);
    wait_queued(&a);
    sleep_ms(20);
    weft__waitctx_cancel(atomic_load(&a.ctx));
    pthread_join(t, NULL);
    assert_int_equal(a.result, WEFT_ECANCELED);
    assert_true(weft__waitq_empty(&q));
}

static void cancel_pending_fails_next_park_until_uncancel(void **state)
{
    (void)state;
    weft__waitctx_t *self = weft__waitctx_current();
    weft_waitq_t q = WEFT_WAITQ_INIT;
    weft__waitctx_cancel(self);
    assert_true(weft__waitctx_canceled(self));
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waitq_lock(&q);
    weft__waitq_push(&q, &w);
    weft__waitq_unlock(&q);
    int64_t start = weft_time_monotonic_ns();
    assert_int_equal(weft__waiter_park(&q, &w, deadline_in(5)), WEFT_ECANCELED);
    assert_true(weft_time_monotonic_ns() - start < 1000000000);
    assert_true(weft__waitq_empty(&q));
    weft__waitctx_uncancel(self);
    assert_false(weft__waitctx_canceled(self));
    weft__waiter_init(&w);
    weft__waitq_lock(&q);
    weft__waitq_push(&q, &w);
    weft__waitq_unlock(&q);
    assert_int_equal(weft__waiter_park(&q, &w, deadline_in(0.01)), WEFT_ETIMEDOUT);
}

/* A woken waiter keeps what it was handed even if a cancel arrives afterwards. */
static void cancel_after_wake_keeps_wake(void **state)
{
    (void)state;
    weft__waitctx_t *self = weft__waitctx_current();
    weft_waitq_t q = WEFT_WAITQ_INIT;
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waitq_lock(&q);
    weft__waitq_push(&q, &w);
    weft__waitq_unlock(&q);
    weft__waitq_wake(&q, 1, 5);
    weft__waitctx_cancel(self); /* not parked: only the flag is set */
    /* The pending cancel stops the park from starting, but the waker already dequeued the
     * waiter: the wake wins and the waiter gets what was handed over. */
    assert_int_equal(weft__waiter_park(&q, &w, WEFT_NO_DEADLINE), 0);
    assert_int_equal(w.data, 5);
    assert_true(weft__waitq_empty(&q));
    weft__waitctx_uncancel(self);
}

static void waitq_wake_n_wakes_exactly_n_in_order(void **state)
{
    (void)state;
    weft_waitq_t q = WEFT_WAITQ_INIT;
    parked_t a[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (parked_t){.q = &q, .deadline_s = -1};
        pthread_create(&t[i], NULL, park_thread, &a[i]);
        wait_queued(&a[i]); /* one at a time: queue order is creation order */
    }
    assert_int_equal(weft__waitq_wake(&q, 2, 1), 2);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    assert_int_equal(a[0].data, 1);
    assert_int_equal(a[1].data, 1);
    weft__waitq_lock(&q);
    int left = 0;
    for (weft__waiter_t *w = weft__waitq_first(&q); w; w = weft__waitq_next(w)) left++;
    weft__waitq_unlock(&q);
    assert_int_equal(left, 2);
    assert_int_equal(weft__waitq_wake(&q, -1, 2), 2);
    pthread_join(t[2], NULL);
    pthread_join(t[3], NULL);
    assert_int_equal(a[2].data, 2);
    assert_int_equal(a[3].data, 2);
}

static void idle_park_does_not_burn_cpu(void **state)
{
    (void)state;
    weft_waitq_t q = WEFT_WAITQ_INIT;
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waitq_lock(&q);
    weft__waitq_push(&q, &w);
    weft__waitq_unlock(&q);
    double cpu = weft_test_cpu_seconds();
    assert_int_equal(weft__waiter_park(&q, &w, deadline_in(0.5)), WEFT_ETIMEDOUT);
    cpu = weft_test_cpu_seconds() - cpu;
    print_message("cpu for a 0.5 s idle park: %.3f ms\n", cpu * 1e3);
    assert_true(cpu < 0.05);
}

/* ---- the adaptive spin (wait.c) -------------------------------------------------------------
 * A pre-woken waiter is a wake every spin sees at once; a timed park nobody ends is a spin that
 * sees none. */

/* Parks one waiter of the calling thread on a queue of its own: already woken (0), or woken by
 * nobody until 1 ms from now (WEFT_ETIMEDOUT). */
static int park_once(bool woken)
{
    weft_waitq_t q = WEFT_WAITQ_INIT;
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waitq_lock(&q);
    weft__waitq_push(&q, &w);
    weft__waitq_unlock(&q);
    if (woken) assert_int_equal(weft__waitq_wake(&q, 1, 0), 1);
    return weft__waiter_park(&q, &w, woken ? WEFT_NO_DEADLINE : deadline_in(0.001));
}

/* A timed park nobody ends (an idle wait) stops a thread's spinning at once: its next idle wait
 * sleeps without paying the spin first. A park that a waker ends gives the whole budget back. */
static void wait_nobody_ends_stops_the_spin_until_a_wake(void **state)
{
    (void)state;
    if (weft__spin_ns() == 0) skip(); /* one CPU or WEFT_SPIN_NS=0: no spin at all */
    weft__spin_retry_ns = INT64_MAX;  /* no retry by time while the case runs */
    assert_int_equal(weft__spin_misses(), 0);
    assert_int_equal(park_once(false), WEFT_ETIMEDOUT);
    assert_int_equal(weft__spin_misses(), 2);
    assert_int_equal(park_once(false), WEFT_ETIMEDOUT); /* no spin: the first park without */
    assert_int_equal(weft__spin_misses(), 2);
    assert_int_equal(park_once(true), 0); /* a park a waker ends: the whole budget again */
    assert_int_equal(weft__spin_misses(), 0);
    weft__spin_retry_ns = 0;
}

/* A wake that comes only after the spin gave up (the waker here wakes only once the waiter
 * sleeps) does not stop the spin: misses are not counted (wait.c, SPIN_COUNT_MISSES), and a
 * woken park spins with the whole budget next time. */
typedef struct late_waker {
    weft_waitq_t q;
    weft__waiter_t *_Atomic w; /* the waiter to wake once it sleeps */
} late_waker_t;

static void *wake_once_asleep(void *p)
{
    late_waker_t *a = p;
    for (int round = 0; round < 2; round++) {
        weft__waiter_t *w;
        while (!(w = atomic_load(&a->w)) || atomic_load(&w->state) != WEFT__W_SLEEPING)
            sched_yield();
        atomic_store(&a->w, NULL);
        assert_int_equal(weft__waitq_wake(&a->q, 1, 0), 1);
    }
    return NULL;
}

static void late_wakes_keep_the_spin(void **state)
{
    (void)state;
    if (weft__spin_ns() == 0) skip();
    late_waker_t a = {.q = WEFT_WAITQ_INIT};
    weft__spin_retry_ns = INT64_MAX; /* no retry by time while the case runs */
    pthread_t t = weft_test_start(wake_once_asleep, &a);
    for (int round = 1; round <= 2; round++) {
        weft__waiter_t w;
        weft__waiter_init(&w);
        weft__waitq_lock(&a.q);
        weft__waitq_push(&a.q, &w);
        weft__waitq_unlock(&a.q);
        atomic_store(&a.w, &w);
        assert_int_equal(weft__waiter_park(&a.q, &w, WEFT_NO_DEADLINE), 0);
        assert_int_equal(weft__spin_misses(), 0);
    }
    weft_test_join(t);
    weft__spin_retry_ns = 0;
}

/* A thread whose last park timed out (an idle waiter) does not spin, not even after the retry
 * interval (1 ns here, through the seam); a park that a waker ends gives it the whole budget
 * back. */
static void idle_waiter_spins_again_after_a_woken_park(void **state)
{
    (void)state;
    if (weft__spin_ns() == 0) skip();
    weft__spin_retry_ns = 1;
    assert_int_equal(park_once(false), WEFT_ETIMEDOUT); /* stops the spin: an idle waiter */
    assert_int_equal(weft__spin_misses(), 2);
    assert_int_equal(park_once(true), 0); /* no retry, no spin; but woken */
    assert_int_equal(weft__spin_misses(), 0);
    weft__spin_retry_ns = 0;
}

/* A sleeping thread is woken through WAKING and a futex_wake, and gets what the waker handed
 * over, round after round. The waker here wakes only once the waiter sleeps. */
typedef struct sleeper {
    weft_waitq_t q;
    weft__waiter_t *_Atomic w;
    int rounds;
} sleeper_t;

static void *wake_sleepers(void *p)
{
    sleeper_t *a = p;
    for (int round = 0; round < a->rounds; round++) {
        weft__waiter_t *w;
        while (!(w = atomic_load(&a->w)) || atomic_load(&w->state) != WEFT__W_SLEEPING)
            sched_yield();
        atomic_store(&a->w, NULL);
        assert_int_equal(weft__waitq_wake(&a->q, 1, (uintptr_t)round + 1), 1);
    }
    return NULL;
}

static void sleeping_thread_is_woken_with_what_was_handed_over(void **state)
{
    (void)state;
    {
        sleeper_t a = {.q = WEFT_WAITQ_INIT, .rounds = 20};
        pthread_t t = weft_test_start(wake_sleepers, &a);
        for (int round = 0; round < a.rounds; round++) {
            weft__waiter_t w;
            weft__waiter_init(&w);
            w.nospin = true; /* straight to the futex */
            weft__waitq_lock(&a.q);
            weft__waitq_push(&a.q, &w);
            weft__waitq_unlock(&a.q);
            atomic_store(&a.w, &w);
            assert_int_equal(weft__waiter_park(&a.q, &w, WEFT_NO_DEADLINE), 0);
            assert_int_equal(w.data, (uintptr_t)round + 1);
        }
        weft_test_join(t);
    }
}

/* A thread that stopped spinning sleeps at once, and a wake from another thread still reaches
 * it, in the futex or on its way there; so does a cancel. */
typedef struct unspun {
    weft_waitq_t q;
    _Atomic int queued;
    weft__waitctx_t *_Atomic ctx;
    int misses, result;
} unspun_t;

static void *unspun_park(void *p)
{
    unspun_t *a = p;
    park_once(false);
    park_once(false);
    a->misses = weft__spin_misses();
    weft__waiter_t w;
    weft__waiter_init(&w);
    atomic_store(&a->ctx, w.ctx);
    weft__waitq_lock(&a->q);
    weft__waitq_push(&a->q, &w);
    weft__waitq_unlock(&a->q);
    atomic_store(&a->queued, 1);
    a->result = weft__waiter_park(&a->q, &w, WEFT_NO_DEADLINE);
    return NULL;
}

static void park_without_spin_is_woken_or_canceled_by_another_thread(void **state)
{
    (void)state;
    for (int cancel = 0; cancel < 2; cancel++) {
        unspun_t a = {.q = WEFT_WAITQ_INIT};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, unspun_park, &a), 0);
        while (!atomic_load(&a.queued)) sched_yield();
        if (cancel)
            weft__waitctx_cancel(atomic_load(&a.ctx));
        else
            assert_int_equal(weft__waitq_wake(&a.q, 1, 0), 1);
        weft_test_join(t);
        assert_int_equal(a.misses, weft__spin_ns() ? 2 : 0);
        assert_int_equal(a.result, cancel ? WEFT_ECANCELED : 0);
        assert_true(weft__waitq_empty(&a.q));
    }
}

/* A nap is a wait like any other: a timeout scope that ends before the nap's own deadline
 * fails it with WEFT_ETIMEDOUT (gevent.Timeout around gevent.sleep raises), where it used to
 * return 0, the "slept the whole time" answer, which kept the backoff loops built on naps
 * (a coroutine waiting for a shared lock, a polled process join) napping on at once, forever
 * past the scope. The nap's own deadline is still success, inside a scope or not. */
static void nap_cut_short_by_timeout_scope_times_out(void **state)
{
    (void)state;
    weft_timeout_t t;
    assert_int_equal(weft_timeout_begin(&t, 0.05), 0);
    int64_t start = weft_time_monotonic_ns();
    assert_int_equal(weft__nap(deadline_in(10), false), WEFT_ETIMEDOUT);
    int64_t took = weft_time_monotonic_ns() - start;
    assert_true(took >= 50000000 && took < 5000000000LL);
    assert_int_equal(weft__nap(deadline_in(10), false), WEFT_ETIMEDOUT); /* scope already over */
    assert_int_equal(weft_timeout_end(&t), WEFT_ETIMEDOUT);

    assert_int_equal(weft_timeout_begin(&t, 10), 0);
    assert_int_equal(weft__nap(deadline_in(0.01), false), 0);
    assert_int_equal(weft_timeout_end(&t), 0);
    assert_int_equal(weft__nap(deadline_in(0.01), false), 0);
}

/* ---- the modes for what the core cannot wake: shared words, backoff naps ----------------- */

typedef struct shared_parked {
    _Atomic uint32_t word;
    _Atomic(weft__waitctx_t *) ctx;
    _Atomic int tid;
    bool scope;
    int rc;
    int64_t elapsed;
} shared_parked_t;

static void *shared_park_thread(void *arg)
{
    shared_parked_t *a = arg;
    weft__waitctx_t *ctx = weft__waitctx_current();
    if (a->scope) weft__cancel_scope_enter(ctx);
    atomic_store(&a->ctx, ctx);
    atomic_store(&a->tid, (int)gettid());
    int64_t start = weft_time_monotonic_ns();
    a->rc = weft__shared_park(&a->word, 0, deadline_in(10), false);
    a->elapsed = weft_time_monotonic_ns() - start;
    if (a->scope) weft__cancel_scope_leave(ctx);
    return NULL;
}

/* A thread parked on a process-shared word returns 0 once the word changes and is woken. */
static void shared_park_returns_when_word_is_woken(void **state)
{
    (void)state;
    shared_parked_t a = {.word = 0};
    pthread_t t;
    pthread_create(&t, NULL, shared_park_thread, &a);
    weft_test_wait_thread_asleep(&a.tid);
    atomic_store(&a.word, 1);
    weft__futex_wake(&a.word, 1, true);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    assert_true(a.elapsed < 5000000000LL);
}

/* Inside a cancel scope a thread's shared park sleeps in slices: a cancel is seen within one. */
static void shared_park_in_cancel_scope_sees_cancel(void **state)
{
    (void)state;
    shared_parked_t a = {.word = 0, .scope = true};
    pthread_t t;
    pthread_create(&t, NULL, shared_park_thread, &a);
    weft_test_wait_thread_asleep(&a.tid);
    weft__waitctx_cancel(atomic_load(&a.ctx));
    pthread_join(t, NULL);
    assert_int_equal(a.rc, WEFT_ECANCELED);
    assert_true(a.elapsed < 2 * WEFT__CANCEL_SLICE_NS + 1000000000LL);
}

/* A shared park ends at its deadline, at the timeout scope's, and at once on a pending cancel
 * (not with nocancel); a word that already moved returns 0. */
static void shared_park_deadline_scope_and_cancel(void **state)
{
    (void)state;
    _Atomic uint32_t word = 0;
    weft__waitctx_t *self = weft__waitctx_current();
    assert_int_equal(weft__shared_park(&word, 0, deadline_in(0.01), false), WEFT_ETIMEDOUT);
    assert_int_equal(weft__shared_park(&word, 1, deadline_in(10), false), 0);
    int64_t saved = self->scope;
    self->scope = deadline_in(0.01);
    assert_int_equal(weft__shared_park(&word, 0, deadline_in(10), false), WEFT_ETIMEDOUT);
    self->scope = saved;
    weft__waitctx_cancel(self);
    assert_int_equal(weft__shared_park(&word, 0, deadline_in(10), false), WEFT_ECANCELED);
    assert_int_equal(weft__shared_park(&word, 0, deadline_in(0.01), true), WEFT_ETIMEDOUT);
    weft__waitctx_uncancel(self);
}

static bool third_look(void *arg)
{
    return ++*(int *)arg >= 3;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

/* The backoff loop looks first, naps between looks, and stops at the deadline or a cancel. */
static void nap_until_looks_naps_and_stops(void **state)
{
    (void)state;
    int looks = 0;
    assert_int_equal(weft__nap_until(third_look, &looks, deadline_in(10), false), 0);
    assert_int_equal(looks, 3);
    assert_int_equal(weft__nap_until(never, NULL, deadline_in(0.01), false), WEFT_ETIMEDOUT);
    weft__waitctx_t *self = weft__waitctx_current();
    weft__waitctx_cancel(self);
    assert_int_equal(weft__nap_until(never, NULL, deadline_in(10), false), WEFT_ECANCELED);
    assert_int_equal(weft__nap_until(never, NULL, deadline_in(0.01), true), WEFT_ETIMEDOUT);
    weft__waitctx_uncancel(self);
}

/* ---- the coroutine plug-in point, exercised with a stand-in parker --------------------- */

/* A parker that is not a futex: the waiting side sleeps on a condvar, the waker signals it.
 * A coroutine parker does the same with "switch to the hub" and "make runnable". */
typedef struct fake_parker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int parks, unparks;
} fake_parker_t;

static uint32_t fake_park(void *arg, weft__waiter_t *w, int64_t deadline)
{
    fake_parker_t *f = arg;
    pthread_mutex_lock(&f->mu);
    f->parks++;
    uint32_t s;
    while ((s = atomic_load(&w->state)) < WEFT__W_WOKEN) {
        if (deadline != WEFT_NO_DEADLINE && weft_time_monotonic_ns() >= deadline) {
            if (atomic_compare_exchange_strong(&w->state, &s, WEFT__W_TIMEDOUT)) {
                s = WEFT__W_TIMEDOUT;
                break;
            }
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 1000000; /* re-check every ms: enough for a test */
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&f->cv, &f->mu, &ts);
    }
    pthread_mutex_unlock(&f->mu);
    return s;
}

static void fake_unpark(void *arg)
{
    fake_parker_t *f = arg;
    pthread_mutex_lock(&f->mu);
    f->unparks++;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static const weft__parker_t fake_ops = {fake_park, fake_unpark};

typedef struct plug {
    fake_parker_t fp;
    weft__waitctx_t ctx;
    weft_event_t ev;
    weft_lock_t lock;
    _Atomic int started;
    int event_rc, lock_rc, timeout_rc;
} plug_t;

static void *plugged_thread(void *p)
{
    plug_t *a = p;
    weft__waitctx_switch(&a->ctx); /* from here on this thread waits "as a coroutine" */
    atomic_store(&a->started, 1);
    a->event_rc = weft_event_wait(&a->ev, WEFT_FOREVER);
    a->lock_rc = weft_lock_acquire(&a->lock, WEFT_FOREVER);
    weft_lock_release(&a->lock);
    weft_event_clear(&a->ev);
    a->timeout_rc = weft_event_wait(&a->ev, 0.02);
    weft__waitctx_switch(NULL);
    return NULL;
}

static void custom_parker_serves_every_primitive(void **state)
{
    (void)state;
    plug_t a = {.fp = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0}};
    a.ctx.parker = &fake_ops;
    a.ctx.park_arg = &a.fp;
    weft_event_init(&a.ev);
    weft_lock_init(&a.lock);
    weft_lock_acquire(&a.lock, WEFT_FOREVER);
    pthread_t t;
    pthread_create(&t, NULL, plugged_thread, &a);
    while (!atomic_load(&a.started)) sleep_ms(1);
    sleep_ms(20);
    weft_event_set(&a.ev);
    sleep_ms(20);
    weft_lock_release(&a.lock);
    pthread_join(t, NULL);
    assert_int_equal(a.event_rc, 0);
    assert_int_equal(a.lock_rc, 0);
    assert_int_equal(a.timeout_rc, WEFT_ETIMEDOUT);
    /* The primitives parked through the plugged-in parker, never on a futex of their own. */
    assert_true(a.fp.parks >= 2);
    assert_true(a.fp.unparks >= 1);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(waitq_push_pop_is_fifo),
    WEFT_TEST(park_times_out_and_leaves_queue),
    WEFT_TEST(wake_before_park_is_not_lost),
    WEFT_TEST(park_returns_when_woken_by_other_thread),
    WEFT_TEST(dequeued_waiter_takes_wake_after_deadline),
    WEFT_TEST(cancel_interrupts_park),
    WEFT_TEST(cancel_pending_fails_next_park_until_uncancel),
    WEFT_TEST(cancel_after_wake_keeps_wake),
    WEFT_TEST(waitq_wake_n_wakes_exactly_n_in_order),
    WEFT_TEST(idle_park_does_not_burn_cpu),
    WEFT_TEST(nap_cut_short_by_timeout_scope_times_out),
    WEFT_TEST(wait_nobody_ends_stops_the_spin_until_a_wake),
    WEFT_TEST(late_wakes_keep_the_spin),
    WEFT_TEST(idle_waiter_spins_again_after_a_woken_park),
    WEFT_TEST(sleeping_thread_is_woken_with_what_was_handed_over),
    WEFT_TEST(park_without_spin_is_woken_or_canceled_by_another_thread),
    WEFT_TEST(shared_park_returns_when_word_is_woken),
    WEFT_TEST(shared_park_in_cancel_scope_sees_cancel),
    WEFT_TEST(shared_park_deadline_scope_and_cancel),
    WEFT_TEST(nap_until_looks_naps_and_stops),
    WEFT_TEST(custom_parker_serves_every_primitive),
};
WEFT_TEST_MAIN(cases)
