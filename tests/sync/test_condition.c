/*
 * Condition: its lock (a Lock, an RLock, or its own RLock), wait and notify only with the lock
 * held, notify(n) / notify_all waking the longest waiters first, timed waits that always give
 * the lock back, wait_for with one overall deadline, all levels of an RLock released during a
 * wait, argument errors, destroy while waited on, cancellation, and a bounded-buffer stress.
 * Mirrors CPython's Lib/test/lock_tests.py ConditionTests.
 *
 * Every behaviour that does not depend on the kind of lock runs with all three kinds.
 * Synchronisation is by queue inspection (a waiter is parked once it sits on the condition's
 * wait queue) or by atomics, never by sleeping.
 */
#include "weft_test.h"

#include "wait/wait_internal.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
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

/* A condition over each kind of lock. */
typedef enum { WITH_LOCK, WITH_RLOCK, WITH_OWN_RLOCK } kind_t;
static const kind_t kinds[] = {WITH_LOCK, WITH_RLOCK, WITH_OWN_RLOCK};
static const char *const kind_names[] = {"Lock", "RLock", "own RLock"};

typedef struct fixture {
    kind_t kind;
    weft_lock_t lock;
    weft_rlock_t rlock;
    weft_condition_t c;
} fixture_t;

static void fixture_init(fixture_t *f, kind_t kind)
{
    f->kind = kind;
    assert_int_equal(weft_lock_init(&f->lock), 0);
    assert_int_equal(weft_rlock_init(&f->rlock), 0);
    assert_int_equal(weft_condition_init(&f->c, kind == WITH_LOCK ? &f->lock : NULL,
                                         kind == WITH_RLOCK ? &f->rlock : NULL),
                     0);
}

static void fixture_destroy(fixture_t *f)
{
    assert_int_equal(weft_condition_destroy(&f->c), 0);
    assert_int_equal(weft_rlock_destroy(&f->rlock), 0);
    assert_int_equal(weft_lock_destroy(&f->lock), 0);
}

/* The queue of the lock under the condition (where a thread blocked re-taking it waits). */
static weft_waitq_t *lock_queue(fixture_t *f)
{
    switch (f->kind) {
    case WITH_LOCK:
        return &f->lock.waiters_;
    case WITH_RLOCK:
        return &f->rlock.lock_.waiters_;
    default:
        return &f->c.own_.lock_.waiters_;
    }
}

/* Releases the condition's lock, which the caller must hold (an RLock: exactly once): true if
 * it did. A Lock has no owner, so all it can tell is that somebody held it. */
static bool release_once(fixture_t *f)
{
    if (f->kind == WITH_LOCK)
        return weft_lock_locked(&f->lock) && weft_condition_release(&f->c) == 0;
    weft_rlock_t *r = f->kind == WITH_RLOCK ? &f->rlock : &f->c.own_;
    return weft_rlock_is_owned(r) && weft_condition_release(&f->c) == 0 && !weft_rlock_is_owned(r);
}

/* ---- the lock --------------------------------------------------------------------------- */

/* ConditionTests.test_acquire: the default lock is re-entrant; a given Lock is the very lock
 * the condition takes and drops. */
static void condition_acquire_takes_the_given_lock(void **state)
{
    (void)state;
    weft_condition_t c;
    assert_int_equal(weft_condition_init(&c, NULL, NULL), 0);
    assert_int_equal(weft_condition_acquire(&c, WEFT_FOREVER), 0);
    assert_int_equal(weft_condition_acquire(&c, 0), 0); /* RLock: the owner re-enters */
    assert_int_equal(weft_condition_release(&c), 0);
    assert_int_equal(weft_condition_release(&c), 0);
    assert_int_equal(weft_condition_release(&c), WEFT_EPERM);
    assert_int_equal(weft_condition_destroy(&c), 0);

    weft_lock_t lock;
    weft_lock_init(&lock);
    assert_int_equal(weft_condition_init(&c, &lock, NULL), 0);
    assert_int_equal(weft_condition_acquire(&c, WEFT_FOREVER), 0);
    assert_int_equal(weft_lock_acquire(&lock, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_condition_release(&c), 0);
    assert_int_equal(weft_lock_acquire(&lock, 0), 0);
    assert_int_equal(weft_condition_acquire(&c, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_condition_acquire(&c, 0.01), WEFT_ETIMEDOUT);
    assert_int_equal(weft_lock_release(&lock), 0);
    assert_int_equal(weft_condition_acquire(&c, 0), 0);
    assert_true(weft_lock_locked(&lock));
    assert_int_equal(weft_condition_release(&c), 0);
    assert_int_equal(weft_condition_destroy(&c), 0);

    weft_rlock_t rlock;
    weft_rlock_init(&rlock);
    assert_int_equal(weft_condition_init(&c, NULL, &rlock), 0);
    assert_int_equal(weft_condition_acquire(&c, WEFT_FOREVER), 0);
    assert_true(weft_rlock_is_owned(&rlock));
    assert_int_equal(weft_rlock_acquire(&rlock, 0), 0);
    assert_int_equal(weft_condition_release(&c), 0);
    assert_int_equal(weft_condition_release(&c), 0);
    assert_false(weft_rlock_is_owned(&rlock));
    assert_int_equal(weft_condition_destroy(&c), 0);
    assert_int_equal(weft_rlock_destroy(&rlock), 0);
    assert_int_equal(weft_lock_destroy(&lock), 0);
}

/* ConditionTests.test_unacquired_wait */
static void condition_wait_without_lock_is_eperm(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        fixture_t f;
        fixture_init(&f, kinds[k]);
        assert_int_equal(weft_condition_wait(&f.c, 0.01), WEFT_EPERM);
        assert_int_equal(weft_condition_wait(&f.c, WEFT_FOREVER), WEFT_EPERM);
        assert_int_equal(weft_test_queue_length(&f.c.waiters_), 0);
        fixture_destroy(&f);
    }
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static bool always(void *arg)
{
    (void)arg;
    return true;
}

/* ConditionTests.test_unacquired_wait, for wait_for: nothing is even evaluated. */
static void condition_wait_for_without_lock_is_eperm(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        fixture_t f;
        fixture_init(&f, kinds[k]);
        assert_int_equal(weft_condition_wait_for(&f.c, never, NULL, 0.01), WEFT_EPERM);
        assert_int_equal(weft_condition_wait_for(&f.c, always, NULL, WEFT_FOREVER), WEFT_EPERM);
        fixture_destroy(&f);
    }
}

/* ConditionTests.test_unacquired_notify */
static void condition_notify_without_lock_is_eperm(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        fixture_t f;
        fixture_init(&f, kinds[k]);
        assert_int_equal(weft_condition_notify(&f.c, 1), WEFT_EPERM);
        assert_int_equal(weft_condition_notify(&f.c, 0), WEFT_EPERM);
        assert_int_equal(weft_condition_notify_all(&f.c), WEFT_EPERM);
        fixture_destroy(&f);
    }
}

typedef struct other_holder {
    weft_condition_t *c;
    _Atomic int stage; /* 1: holds the lock, 2: may release it */
} other_holder_t;

static void hold_lock(void *arg, int i)
{
    (void)i;
    other_holder_t *o = arg;
    weft_condition_acquire(o->c, WEFT_FOREVER);
    atomic_store(&o->stage, 1);
    while (atomic_load(&o->stage) != 2) sched_yield();
    weft_condition_release(o->c);
}

/* An RLock knows its owner: a thread that does not own it may not wait or notify, even while
 * another thread holds it (Python's Condition._is_owned). */
static void condition_rlock_held_by_other_thread_is_eperm(void **state)
{
    (void)state;
    for (int k = 1; k < 3; k++) {
        fixture_t f;
        fixture_init(&f, kinds[k]);
        other_holder_t o = {.c = &f.c};
        weft_test_bg_t bg = {0};
        weft_test_bg_add(&bg, 1, 0, hold_lock, &o);
        wait_count(&o.stage, 1);
        assert_int_equal(weft_condition_wait(&f.c, 0), WEFT_EPERM);
        assert_int_equal(weft_condition_notify(&f.c, 1), WEFT_EPERM);
        assert_int_equal(weft_condition_notify_all(&f.c), WEFT_EPERM);
        assert_int_equal(weft_condition_release(&f.c), WEFT_EPERM);
        atomic_store(&o.stage, 2);
        weft_test_bg_join(&bg);
        fixture_destroy(&f);
    }
}

/* ---- notify ----------------------------------------------------------------------------- */

typedef struct notify_ctx {
    fixture_t f;
    int order[NTHREADS]; /* who woke, in the order they got the lock back (under the lock) */
    int rc[NTHREADS];
    bool held[NTHREADS];
    int nwoke; /* under the lock */
    _Atomic int woke;
} notify_ctx_t;

static void notified_waiter(void *arg, int i)
{
    notify_ctx_t *n = arg;
    weft_condition_acquire(&n->f.c, WEFT_FOREVER);
    n->rc[i] = weft_condition_wait(&n->f.c, WEFT_FOREVER);
    n->order[n->nwoke++] = i;
    n->held[i] = release_once(&n->f);
    atomic_fetch_add(&n->woke, 1);
}

static void notify(notify_ctx_t *n, int how_many)
{
    assert_int_equal(weft_condition_acquire(&n->f.c, WEFT_FOREVER), 0);
    if (how_many < 0)
        assert_int_equal(weft_condition_notify_all(&n->f.c), 0);
    else
        assert_int_equal(weft_condition_notify(&n->f.c, how_many), 0);
    assert_int_equal(weft_condition_release(&n->f.c), 0);
}

/* The waiters order[from..to) are exactly {from, ..., to-1}, in any order. */
static void assert_woke_set(notify_ctx_t *n, int from, int to)
{
    weft_condition_acquire(&n->f.c, WEFT_FOREVER);
    int mask = 0;
    for (int k = from; k < to; k++) mask |= 1 << n->order[k];
    weft_condition_release(&n->f.c);
    int want = 0;
    for (int k = from; k < to; k++) want |= 1 << k;
    assert_int_equal(mask, want);
}

/* ConditionTests.test_notify (_check_notify): notify(1), notify(n) and notify_all wake exactly
 * that many waiters, the longest-waiting first; each returns 0 holding the lock. */
static void condition_notify_wakes_longest_waiters_first(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        print_message("with %s\n", kind_names[k]);
        notify_ctx_t n = {0};
        fixture_init(&n.f, kinds[k]);
        weft_test_bg_t bg = {0};
        for (int i = 0; i < NTHREADS; i++) {
            weft_test_bg_add(&bg, 1, i, notified_waiter, &n);
            weft_test_wait_queued(&n.f.c.waiters_, i + 1); /* queue order = start order */
        }
        notify(&n, 0);
        assert_int_equal(weft_test_queue_length(&n.f.c.waiters_), NTHREADS);
        assert_int_equal(atomic_load(&n.woke), 0);

        notify(&n, 1);
        wait_count(&n.woke, 1);
        assert_woke_set(&n, 0, 1);
        assert_int_equal(weft_test_queue_length(&n.f.c.waiters_), NTHREADS - 1);

        notify(&n, 2);
        wait_count(&n.woke, 3);
        assert_woke_set(&n, 1, 3);
        assert_int_equal(weft_test_queue_length(&n.f.c.waiters_), NTHREADS - 3);

        notify(&n, -1);
        wait_count(&n.woke, NTHREADS);
        assert_woke_set(&n, 3, NTHREADS);
        weft_test_bg_join(&bg);
        for (int i = 0; i < NTHREADS; i++) {
            assert_int_equal(n.rc[i], 0);
            assert_true(n.held[i]);
        }
        /* Nobody waits: notify is a no-op, not an error. */
        notify(&n, 3);
        notify(&n, -1);
        fixture_destroy(&n.f);
    }
}

/* notify(n) with n beyond the number of waiters wakes those there are. */
static void condition_notify_more_than_waiting(void **state)
{
    (void)state;
    notify_ctx_t n = {0};
    fixture_init(&n.f, WITH_LOCK);
    weft_test_bg_t bg = {0};
    weft_test_bg_add(&bg, 2, 0, notified_waiter, &n);
    weft_test_wait_queued(&n.f.c.waiters_, 2);
    notify(&n, 1000);
    weft_test_bg_join(&bg);
    assert_int_equal(atomic_load(&n.woke), 2);
    assert_int_equal(n.rc[0], 0);
    assert_int_equal(n.rc[1], 0);
    fixture_destroy(&n.f);
}

/* ---- timeouts --------------------------------------------------------------------------- */

typedef struct timeout_ctx {
    fixture_t f;
    int rc[NTHREADS];
    double elapsed[NTHREADS];
    bool held[NTHREADS];
} timeout_ctx_t;

static void timed_waiter(void *arg, int i)
{
    timeout_ctx_t *t = arg;
    weft_condition_acquire(&t->f.c, WEFT_FOREVER);
    double t0 = weft_time_monotonic();
    t->rc[i] = weft_condition_wait(&t->f.c, 0.1);
    t->elapsed[i] = weft_time_monotonic() - t0;
    t->held[i] = release_once(&t->f);
}

/* ConditionTests.test_timeout: each waiter times out after its timeout, with the lock held
 * again when wait returns. */
static void condition_wait_timeout_reacquires_lock(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        timeout_ctx_t t = {0};
        fixture_init(&t.f, kinds[k]);
        weft_test_run_threads(NTHREADS, timed_waiter, &t);
        for (int i = 0; i < NTHREADS; i++) {
            assert_int_equal(t.rc[i], WEFT_ETIMEDOUT);
            assert_true(t.elapsed[i] >= 0.1);
            assert_true(t.elapsed[i] < 5.0);
            assert_true(t.held[i]);
        }
        assert_int_equal(weft_test_queue_length(&t.f.c.waiters_), 0);
        fixture_destroy(&t.f);
    }
}

/* A zero timeout polls: it fails at once, and the lock is still (again) held. */
static void condition_wait_zero_timeout_keeps_lock(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        fixture_t f;
        fixture_init(&f, kinds[k]);
        assert_int_equal(weft_condition_acquire(&f.c, WEFT_FOREVER), 0);
        assert_int_equal(weft_condition_wait(&f.c, 0), WEFT_ETIMEDOUT);
        assert_true(release_once(&f));
        assert_int_equal(weft_test_queue_length(&f.c.waiters_), 0);
        fixture_destroy(&f);
    }
}

/* ---- wait_for --------------------------------------------------------------------------- */

typedef struct waitfor_ctx {
    fixture_t f;
    int state;  /* guarded by the condition's lock */
    int checks; /* predicate evaluations, likewise */
    int rc, seen;
    double elapsed;
    bool held;
} waitfor_ctx_t;

static bool state_is_4(void *arg)
{
    waitfor_ctx_t *w = arg;
    w->checks++;
    return w->state == 4;
}

static void waitfor_waiter(void *arg, int i)
{
    waitfor_ctx_t *w = arg;
    double timeout = i == 0 ? WEFT_FOREVER : 0.1;
    weft_condition_acquire(&w->f.c, WEFT_FOREVER);
    double t0 = weft_time_monotonic();
    w->rc = weft_condition_wait_for(&w->f.c, state_is_4, w, timeout);
    w->elapsed = weft_time_monotonic() - t0;
    w->seen = w->state;
    w->held = release_once(&w->f);
}

static void bump_state(waitfor_ctx_t *w)
{
    assert_int_equal(weft_condition_acquire(&w->f.c, WEFT_FOREVER), 0);
    w->state++;
    assert_int_equal(weft_condition_notify(&w->f.c, 1), 0);
    assert_int_equal(weft_condition_release(&w->f.c), 0);
}

/* ConditionTests.test_waitfor: wait_for re-checks its predicate after every wake-up and
 * returns only once it holds, with the lock held. */
static void condition_wait_for_rechecks_predicate(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        waitfor_ctx_t w = {0};
        fixture_init(&w.f, kinds[k]);
        weft_test_bg_t bg = {0};
        weft_test_bg_add(&bg, 1, 0, waitfor_waiter, &w);
        for (int i = 0; i < 4; i++) {
            weft_test_wait_queued(&w.f.c.waiters_, 1); /* it checked, saw false, and waits again */
            bump_state(&w);
        }
        weft_test_bg_join(&bg);
        assert_int_equal(w.rc, 0);
        assert_int_equal(w.seen, 4);
        assert_int_equal(w.checks, 5);
        assert_true(w.held);
        fixture_destroy(&w.f);
    }
}

/* ConditionTests.test_waitfor_timeout: the predicate never holds; wait_for gives up after
 * the (overall) timeout with WEFT_ETIMEDOUT and the lock held, however often it was woken. */
static void condition_wait_for_timeout_expires(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        waitfor_ctx_t w = {0};
        fixture_init(&w.f, kinds[k]);
        weft_test_bg_t bg = {0};
        weft_test_bg_add(&bg, 1, 1, waitfor_waiter, &w);
        for (int i = 0; i < 3; i++) bump_state(&w); /* wakes it, or nobody: fine either way */
        weft_test_bg_join(&bg);
        assert_int_equal(w.rc, WEFT_ETIMEDOUT);
        assert_true(w.seen < 4);
        assert_true(w.elapsed >= 0.1);
        assert_true(w.elapsed < 5.0);
        assert_true(w.held);
        fixture_destroy(&w.f);
    }
}

/* A predicate that already holds returns at once, even with a zero timeout. */
static void condition_wait_for_true_predicate_does_not_wait(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        fixture_t f;
        fixture_init(&f, kinds[k]);
        assert_int_equal(weft_condition_acquire(&f.c, WEFT_FOREVER), 0);
        assert_int_equal(weft_condition_wait_for(&f.c, always, NULL, 0), 0);
        assert_int_equal(weft_condition_wait_for(&f.c, always, NULL, WEFT_FOREVER), 0);
        assert_int_equal(weft_condition_wait_for(&f.c, never, NULL, 0), WEFT_ETIMEDOUT);
        assert_true(release_once(&f));
        fixture_destroy(&f);
    }
}

/* ---- RLocks: all levels released during the wait --------------------------------------- */

typedef struct recursive_ctx {
    fixture_t f;
    int rc;
    int releases[4];
} recursive_ctx_t;

static void recursive_waiter(void *arg, int i)
{
    (void)i;
    recursive_ctx_t *r = arg;
    for (int k = 0; k < 3; k++) weft_condition_acquire(&r->f.c, WEFT_FOREVER);
    r->rc = weft_condition_wait(&r->f.c, WEFT_FOREVER);
    for (int k = 0; k < 4; k++) r->releases[k] = weft_condition_release(&r->f.c);
}

/* ConditionTests over an RLock held three levels deep: wait frees it completely (another
 * thread takes it at once), and gives all three levels back. */
static void condition_wait_releases_all_rlock_levels(void **state)
{
    (void)state;
    for (int k = 1; k < 3; k++) {
        recursive_ctx_t r = {0};
        fixture_init(&r.f, kinds[k]);
        weft_test_bg_t bg = {0};
        weft_test_bg_add(&bg, 1, 0, recursive_waiter, &r);
        weft_test_wait_queued(&r.f.c.waiters_, 1);
        /* Free although its owner acquired it three times (it drops them just after it
         * queued itself, hence a timeout rather than a poll): */
        assert_int_equal(weft_condition_acquire(&r.f.c, 5.0), 0);
        assert_int_equal(weft_condition_notify(&r.f.c, 1), 0);
        assert_int_equal(weft_condition_release(&r.f.c), 0);
        weft_test_bg_join(&bg);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.releases[0], 0);
        assert_int_equal(r.releases[1], 0);
        assert_int_equal(r.releases[2], 0);
        assert_int_equal(r.releases[3], WEFT_EPERM);
        fixture_destroy(&r.f);
    }
}

/* ---- errors ----------------------------------------------------------------------------- */

static void condition_null_args_are_einval(void **state)
{
    (void)state;
    weft_condition_t c;
    assert_int_equal(weft_condition_init(NULL, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_condition_destroy(NULL), WEFT_EINVAL);
    assert_int_equal(weft_condition_acquire(NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_condition_acquire(NULL, WEFT_FOREVER), WEFT_EINVAL);
    assert_int_equal(weft_condition_release(NULL), WEFT_EINVAL);
    assert_int_equal(weft_condition_wait(NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_condition_wait_for(NULL, always, NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_condition_notify(NULL, 1), WEFT_EINVAL);
    assert_int_equal(weft_condition_notify_all(NULL), WEFT_EINVAL);

    assert_int_equal(weft_condition_init(&c, NULL, NULL), 0);
    assert_int_equal(weft_condition_acquire(&c, WEFT_FOREVER), 0);
    assert_int_equal(weft_condition_wait_for(&c, NULL, NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_condition_wait_for(&c, NULL, NULL, WEFT_FOREVER), WEFT_EINVAL);
    assert_int_equal(weft_condition_release(&c), 0);
    assert_int_equal(weft_condition_destroy(&c), 0);
}

static void condition_init_with_lock_and_rlock_is_einval(void **state)
{
    (void)state;
    weft_condition_t c;
    weft_lock_t lock;
    weft_rlock_t rlock;
    weft_lock_init(&lock);
    weft_rlock_init(&rlock);
    assert_int_equal(weft_condition_init(&c, &lock, &rlock), WEFT_EINVAL);
    assert_int_equal(weft_lock_destroy(&lock), 0);
    assert_int_equal(weft_rlock_destroy(&rlock), 0);
}

static void condition_notify_negative_is_einval(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        fixture_t f;
        fixture_init(&f, kinds[k]);
        assert_int_equal(weft_condition_notify(&f.c, -1), WEFT_EINVAL);
        assert_int_equal(weft_condition_acquire(&f.c, WEFT_FOREVER), 0);
        assert_int_equal(weft_condition_notify(&f.c, -1), WEFT_EINVAL);
        assert_int_equal(weft_condition_notify(&f.c, -1000), WEFT_EINVAL);
        assert_true(release_once(&f));
        fixture_destroy(&f);
    }
}

/* NaN is never a timeout: wait and wait_for refuse it and leave the lock as it was. */
static void condition_wait_nan_timeout_is_einval(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        fixture_t f;
        fixture_init(&f, kinds[k]);
        assert_int_equal(weft_condition_wait(&f.c, NAN), WEFT_EINVAL);
        assert_int_equal(weft_condition_wait_for(&f.c, always, NULL, NAN), WEFT_EINVAL);
        assert_int_equal(weft_condition_acquire(&f.c, WEFT_FOREVER), 0);
        assert_int_equal(weft_condition_wait(&f.c, NAN), WEFT_EINVAL);
        assert_int_equal(weft_condition_wait_for(&f.c, never, NULL, NAN), WEFT_EINVAL);
        assert_int_equal(weft_test_queue_length(&f.c.waiters_), 0);
        assert_true(release_once(&f));
        fixture_destroy(&f);
    }
}

/* NaN is never a timeout, for acquire either (weft/core.h, weft/sync.h), whether or not the
 * lock happens to be free or already owned by the caller (Python raises ValueError). */
static void condition_acquire_nan_timeout_is_einval(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        print_message("with %s\n", kind_names[k]);
        fixture_t f;
        fixture_init(&f, kinds[k]);
        int rc = weft_condition_acquire(&f.c, NAN);
        if (rc == 0) weft_condition_release(&f.c);
        assert_int_equal(rc, WEFT_EINVAL);
        fixture_destroy(&f);
    }
}

/* ---- destroy ---------------------------------------------------------------------------- */

/* Destroy refuses while a thread waits, changes nothing, and the condition keeps working. */
static void condition_destroy_while_waited_on_is_ebusy(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        notify_ctx_t n = {0};
        fixture_init(&n.f, kinds[k]);
        weft_test_bg_t bg = {0};
        weft_test_bg_add(&bg, 1, 0, notified_waiter, &n);
        weft_test_wait_queued(&n.f.c.waiters_, 1);
        assert_int_equal(weft_condition_destroy(&n.f.c), WEFT_EBUSY);
        notify(&n, 1);
        weft_test_bg_join(&bg);
        assert_int_equal(n.rc[0], 0);
        assert_true(n.held[0]);
        fixture_destroy(&n.f);
    }
}

/* With its own RLock, the condition is also busy while that lock is held. */
static void condition_destroy_while_own_lock_held_is_ebusy(void **state)
{
    (void)state;
    weft_condition_t c;
    weft_condition_init(&c, NULL, NULL);
    assert_int_equal(weft_condition_acquire(&c, WEFT_FOREVER), 0);
    assert_int_equal(weft_condition_destroy(&c), WEFT_EBUSY);
    assert_int_equal(weft_condition_notify(&c, 1), 0); /* still a working condition */
    assert_int_equal(weft_condition_release(&c), 0);
    assert_int_equal(weft_condition_destroy(&c), 0);
}

typedef struct freed_ctx {
    weft_lock_t lock;
    weft_condition_t *c; /* malloc'd, freed while the waiter still re-takes the lock */
    int rc;
    bool held;
} freed_ctx_t;

static void freed_waiter(void *arg, int i)
{
    (void)i;
    freed_ctx_t *x = arg;
    weft_lock_acquire(&x->lock, WEFT_FOREVER);
    x->rc = weft_condition_wait(x->c, WEFT_FOREVER);
    x->held = weft_lock_locked(&x->lock);
    weft_lock_release(&x->lock);
}

/* Once notified, a waiter is no longer waiting on the condition: as with a pthread condvar
 * after a broadcast, the condition may be destroyed and freed while the waiter is still
 * re-taking its (separate) lock, which must then not touch the freed condition. */
static void condition_destroy_after_notify_before_waiter_returns(void **state)
{
    (void)state;
    freed_ctx_t x = {0};
    weft_lock_init(&x.lock);
    x.c = malloc(sizeof *x.c);
    assert_non_null(x.c);
    assert_int_equal(weft_condition_init(x.c, &x.lock, NULL), 0);
    weft_test_bg_t bg = {0};
    weft_test_bg_add(&bg, 1, 0, freed_waiter, &x);
    weft_test_wait_queued(&x.c->waiters_, 1);
    assert_int_equal(weft_lock_acquire(&x.lock, WEFT_FOREVER), 0);
    assert_int_equal(weft_condition_notify(x.c, 1), 0);
    assert_int_equal(weft_condition_destroy(x.c), 0);
    free(x.c);
    x.c = NULL;
    assert_int_equal(weft_lock_release(&x.lock), 0);
    weft_test_bg_join(&bg);
    assert_int_equal(x.rc, 0);
    assert_true(x.held);
    assert_int_equal(weft_lock_destroy(&x.lock), 0);
}

/* ---- cancellation (through the waiting core's internal API) ---------------------------- */

typedef struct cancel_ctx {
    fixture_t f;
    bool use_wait_for;
    weft__waitctx_t *_Atomic ctx;
    int rc;
    bool held;
} cancel_ctx_t;

static void cancelable_waiter(void *arg, int i)
{
    (void)i;
    cancel_ctx_t *x = arg;
    weft__waitctx_t *self = weft__waitctx_current();
    atomic_store(&x->ctx, self);
    weft_condition_acquire(&x->f.c, WEFT_FOREVER);
    x->rc = x->use_wait_for ? weft_condition_wait_for(&x->f.c, never, NULL, WEFT_FOREVER)
                            : weft_condition_wait(&x->f.c, WEFT_FOREVER);
    weft__waitctx_uncancel(self);
    x->held = release_once(&x->f);
}

/* A parked waiter is canceled while another thread holds the lock: the wait ends with
 * WEFT_ECANCELED, but only once the waiter has the lock back (re-taking it is immune to the
 * cancel, which is still pending meanwhile). Same for wait_for. */
static void condition_wait_canceled_reacquires_lock(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        for (int use_wait_for = 0; use_wait_for <= 1; use_wait_for++) {
            cancel_ctx_t x = {.use_wait_for = use_wait_for};
            fixture_init(&x.f, kinds[k]);
            weft_test_bg_t bg = {0};
            weft_test_bg_add(&bg, 1, 0, cancelable_waiter, &x);
            weft_test_wait_queued(&x.f.c.waiters_, 1);
            assert_int_equal(weft_condition_acquire(&x.f.c, WEFT_FOREVER), 0);
            weft__waitctx_cancel(atomic_load(&x.ctx));
            weft_test_wait_queued(lock_queue(&x.f),
                                  1); /* canceled, now blocked on the lock we hold */
            assert_int_equal(weft_test_queue_length(&x.f.c.waiters_), 0);
            assert_int_equal(weft_condition_release(&x.f.c), 0);
            weft_test_bg_join(&bg);
            assert_int_equal(x.rc, WEFT_ECANCELED);
            assert_true(x.held);
            fixture_destroy(&x.f);
        }
    }
}

/* A cancel pending before the call: wait fails at once, lock still held. */
static void condition_wait_with_pending_cancel(void **state)
{
    (void)state;
    weft__waitctx_t *self = weft__waitctx_current();
    for (int k = 0; k < 3; k++) {
        fixture_t f;
        fixture_init(&f, kinds[k]);
        assert_int_equal(weft_condition_acquire(&f.c, WEFT_FOREVER), 0);
        weft__waitctx_cancel(self);
        double t0 = weft_time_monotonic();
        assert_int_equal(weft_condition_wait(&f.c, 5.0), WEFT_ECANCELED);
        assert_int_equal(weft_condition_wait_for(&f.c, never, NULL, WEFT_FOREVER), WEFT_ECANCELED);
        assert_int_equal(weft_condition_wait_for(&f.c, always, NULL, WEFT_FOREVER), 0);
        assert_true(weft_time_monotonic() - t0 < 2.0);
        weft__waitctx_uncancel(self);
        assert_int_equal(weft_condition_wait(&f.c, 0.01), WEFT_ETIMEDOUT);
        assert_true(release_once(&f));
        fixture_destroy(&f);
    }
}

/* ---- stress: a bounded buffer ----------------------------------------------------------- */

enum { PRODUCERS = 4, CONSUMERS = 4, CAPACITY = 8 };

typedef struct buffer {
    weft_lock_t lock;
    weft_condition_t not_full, not_empty; /* two conditions over one Lock */
    int items[CAPACITY];
    int head, count;
    int per_producer, total, taken;
    unsigned char *seen;
    long long sum;
} buffer_t;

static bool has_room(void *arg)
{
    return ((buffer_t *)arg)->count < CAPACITY;
}

static bool has_item_or_done(void *arg)
{
    buffer_t *b = arg;
    return b->count > 0 || b->taken == b->total;
}

static void producer(void *arg, int p)
{
    buffer_t *b = arg;
    for (int k = 0; k < b->per_producer; k++) {
        weft_condition_acquire(&b->not_full, WEFT_FOREVER);
        weft_condition_wait_for(&b->not_full, has_room, b, WEFT_FOREVER);
        b->items[(b->head + b->count++) % CAPACITY] = p * b->per_producer + k;
        weft_condition_notify(&b->not_empty, 1);
        weft_condition_release(&b->not_full);
    }
}

static void consumer(void *arg, int i)
{
    (void)i;
    buffer_t *b = arg;
    for (;;) {
        weft_condition_acquire(&b->not_empty, WEFT_FOREVER);
        /* A plain wait loop here; wait_for on the producers' side. */
        while (!has_item_or_done(b)) weft_condition_wait(&b->not_empty, WEFT_FOREVER);
        if (b->count == 0) { /* everything was taken */
            weft_condition_release(&b->not_empty);
            return;
        }
        int v = b->items[b->head];
        b->head = (b->head + 1) % CAPACITY;
        b->count--;
        b->taken++;
        b->seen[v]++;
        b->sum += v;
        if (b->taken == b->total)
            weft_condition_notify_all(&b->not_empty); /* let the other consumers go */
        weft_condition_notify(&b->not_full, 1);
        weft_condition_release(&b->not_empty);
    }
}

/* 4 producers and 4 consumers through an 8-slot buffer: every item arrives exactly once. */
static void condition_bounded_buffer_loses_nothing(void **state)
{
    (void)state;
    buffer_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->per_producer = SANITIZED ? 2000 : 20000;
    b->total = PRODUCERS * b->per_producer;
    b->seen = calloc((size_t)b->total, 1);
    assert_non_null(b->seen);
    weft_lock_init(&b->lock);
    weft_condition_init(&b->not_full, &b->lock, NULL);
    weft_condition_init(&b->not_empty, &b->lock, NULL);
    double t0 = weft_time_monotonic();
    weft_test_bg_t bg = {0};
    weft_test_bg_add(&bg, CONSUMERS, 0, consumer, b);
    weft_test_bg_add(&bg, PRODUCERS, 0, producer, b);
    weft_test_bg_join(&bg);
    print_message("%d items through a %d-slot buffer in %.3f s\n", b->total, CAPACITY,
                  weft_time_monotonic() - t0);
    assert_int_equal(b->taken, b->total);
    assert_int_equal(b->count, 0);
    for (int v = 0; v < b->total; v++) assert_int_equal(b->seen[v], 1);
    assert_true(b->sum == (long long)b->total * (b->total - 1) / 2);
    assert_int_equal(weft_condition_destroy(&b->not_full), 0);
    assert_int_equal(weft_condition_destroy(&b->not_empty), 0);
    assert_int_equal(weft_lock_destroy(&b->lock), 0);
    free(b->seen);
    free(b);
}

/* The timeout rules (weft/core.h): a wait with -0.5 times out at once (the lock is held again
 * when it returns), WEFT_FOREVER blocks until notified, NaN is WEFT_EINVAL. */
typedef struct timed_cond {
    weft_lock_t l;
    weft_condition_t c;
    double timeout;
} timed_cond_t;

static int timed_cond_wait(void *p)
{
    timed_cond_t *t = p;
    assert_int_equal(weft_condition_acquire(&t->c, WEFT_FOREVER), 0);
    int rc = weft_condition_wait(&t->c, t->timeout);
    assert_true(weft_lock_locked(&t->l));
    assert_int_equal(weft_condition_release(&t->c), 0);
    return rc;
}

static void timed_cond_notify(void *p)
{
    timed_cond_t *t = p;
    /* The waiter holds the lock until it waits: taking it here means it waits. */
    assert_int_equal(weft_condition_acquire(&t->c, WEFT_FOREVER), 0);
    assert_int_equal(weft_condition_notify(&t->c, 1), 0);
    assert_int_equal(weft_condition_release(&t->c), 0);
}

static void condition_wait_negative_timeout_polls(void **state)
{
    (void)state;
    timed_cond_t t;
    assert_int_equal(weft_lock_init(&t.l), 0);
    assert_int_equal(weft_condition_init(&t.c, &t.l, NULL), 0);
    t.timeout = -0.5;
    assert_int_equal(weft_test_polls(timed_cond_wait, &t), WEFT_ETIMEDOUT);
    assert_int_equal(weft_condition_acquire(&t.c, WEFT_FOREVER), 0);
    assert_int_equal(weft_condition_wait(&t.c, NAN), WEFT_EINVAL);
    assert_int_equal(weft_condition_release(&t.c), 0);
    t.timeout = WEFT_FOREVER;
    weft_test_blocks_until(timed_cond_wait, &t, timed_cond_notify, &t, 0);
    assert_int_equal(weft_condition_destroy(&t.c), 0);
    assert_int_equal(weft_lock_destroy(&t.l), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(condition_wait_negative_timeout_polls),
    WEFT_TEST(condition_acquire_takes_the_given_lock),
    WEFT_TEST(condition_wait_without_lock_is_eperm),
    WEFT_TEST(condition_wait_for_without_lock_is_eperm),
    WEFT_TEST(condition_notify_without_lock_is_eperm),
    WEFT_TEST(condition_rlock_held_by_other_thread_is_eperm),
    WEFT_TEST(condition_notify_wakes_longest_waiters_first),
    WEFT_TEST(condition_notify_more_than_waiting),
    WEFT_TEST(condition_wait_timeout_reacquires_lock),
    WEFT_TEST(condition_wait_zero_timeout_keeps_lock),
    WEFT_TEST(condition_wait_for_rechecks_predicate),
    WEFT_TEST(condition_wait_for_timeout_expires),
    WEFT_TEST(condition_wait_for_true_predicate_does_not_wait),
    WEFT_TEST(condition_wait_releases_all_rlock_levels),
    WEFT_TEST(condition_null_args_are_einval),
    WEFT_TEST(condition_init_with_lock_and_rlock_is_einval),
    WEFT_TEST(condition_notify_negative_is_einval),
    WEFT_TEST(condition_wait_nan_timeout_is_einval),
    WEFT_TEST(condition_acquire_nan_timeout_is_einval),
    WEFT_TEST(condition_destroy_while_waited_on_is_ebusy),
    WEFT_TEST(condition_destroy_while_own_lock_held_is_ebusy),
    WEFT_TEST(condition_destroy_after_notify_before_waiter_returns),
    WEFT_TEST(condition_wait_canceled_reacquires_lock),
    WEFT_TEST(condition_wait_with_pending_cancel),
    WEFT_TEST(condition_bounded_buffer_loses_nothing),
};
WEFT_TEST_MAIN(cases)
