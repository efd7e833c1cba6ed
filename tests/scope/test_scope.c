/*
 * Scopes (weft/scope.h): each kind of task alone and mixed, the first failure canceling the
 * rest, weft_scope_cancel, the deadline, nesting, cancel races, joins from threads and
 * coroutines, misuse, the OOM loop and fork. Mirrors CPython's
 * Lib/test/test_asyncio/test_taskgroups.py (test_taskgroup_01 .. _30: children awaited,
 * first error cancels siblings, cancelled parent, nested groups, create_task after close)
 * and Trio's trio/_core/_tests/test_run.py nursery cases.
 */
#include "weft_test.h"

#include "core/core_internal.h" /* weft__names_reset */

#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <unistd.h>

/* A task that blocks on *ev until canceled; counts how it ended. */
typedef struct blocker {
    weft_event_t ev;
    _Atomic int started, canceled, saw_request, ran;
} blocker_t;

static void blocker_init(blocker_t *b)
{
    memset(b, 0, sizeof *b);
    assert_int_equal(weft_event_init(&b->ev), 0);
}

static int block(void *arg)
{
    blocker_t *b = arg;
    atomic_fetch_add(&b->started, 1);
    int rc = weft_event_wait(&b->ev, WEFT_FOREVER);
    if (rc == WEFT_ECANCELED) atomic_fetch_add(&b->canceled, 1);
    if (weft_cancel_requested()) atomic_fetch_add(&b->saw_request, 1);
    return rc;
}

static int block_task(void *arg, void **result)
{
    (void)result;
    return block(arg);
}

static int ok(void *arg)
{
    if (arg) atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

static int ok_task(void *arg, void **result)
{
    (void)result;
    return ok(arg);
}

static int fail_eio(void *arg)
{
    (void)arg;
    return WEFT_EIO;
}

/* Fails with WEFT_EIO once the event arg is set. */
static int fail_after_gate_task(void *arg, void **result)
{
    (void)result;
    assert_int_equal(weft_event_wait(arg, 10), 0);
    return WEFT_EIO;
}

static int exit3(void *arg)
{
    (void)arg;
    return 3;
}

static int child_sleeps(void *arg)
{
    (void)arg;
    for (;;) pause();
    return 0;
}

static int child_ignores_term(void *arg)
{
    (void)arg;
    signal(SIGTERM, SIG_IGN);
    _Atomic int *ready = arg;
    (void)ready;
    for (;;) pause();
    return 0;
}

static weft_scope_t *open_scope(double timeout)
{
    weft_scope_t *s;
    assert_int_equal(weft_scope_create(NULL, timeout, &s), 0);
    assert_non_null(s);
    return s;
}

static weft_executor_t *pool(size_t n)
{
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(n, NULL, &ex), 0);
    return ex;
}

static void pool_done(weft_executor_t *ex)
{
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

static void bad_arguments(void **state)
{
    (void)state;
    weft_scope_t *s = NULL;
    assert_int_equal(weft_scope_create(NULL, 0, NULL), WEFT_EINVAL);
    assert_int_equal(weft_scope_create(NULL, NAN, &s), WEFT_EINVAL);
    assert_null(s);
    weft_scope_opts_t o = {.grace = NAN};
    assert_int_equal(weft_scope_create(&o, WEFT_FOREVER, &s), WEFT_EINVAL);
    s = open_scope(WEFT_FOREVER);
    weft_co_t *co = (weft_co_t *)1;
    assert_int_equal(weft_scope_spawn(NULL, ok, NULL, NULL, &co), WEFT_EINVAL);
    assert_null(co);
    assert_int_equal(weft_scope_spawn(s, NULL, NULL, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_scope_thread_start(s, NULL, NULL, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_scope_thread_start(NULL, ok, NULL, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_scope_submit(s, NULL, ok_task, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_scope_process_start(s, NULL, NULL, NULL, NULL), WEFT_EINVAL);
    weft_co_opts_t bad = {.stack_size = 1};
    assert_int_equal(weft_scope_spawn(s, ok, NULL, &bad, NULL), WEFT_EINVAL);
    assert_int_equal(weft_scope_live(s), 0);
    assert_int_equal(weft_scope_cancel(NULL), WEFT_EINVAL);
    assert_int_equal(weft_scope_join(NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_scope_join(s, NAN), WEFT_EINVAL);
    assert_int_equal(weft_scope_errors(NULL, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_scope_live(NULL), 0);
    assert_int_equal(weft_scope_release(NULL), WEFT_EINVAL);
    assert_null(weft_scope_current());
    assert_int_equal(weft_scope_join(s, 0), 0); /* nothing in it */
    assert_int_equal(weft_scope_release(s), 0);
}

static void coroutines_alone_are_all_joined(void **state)
{
    (void)state;
    _Atomic int n = 0;
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    weft_co_t *co;
    assert_int_equal(weft_scope_spawn(s, ok, &n, NULL, &co), 0);
    for (int i = 0; i < 9; i++) assert_int_equal(weft_scope_spawn(s, ok, &n, NULL, NULL), 0);
    assert_int_equal(weft_scope_live(s), 10);
    assert_int_equal(weft_scope_join(s, 10), 0);
    assert_int_equal(atomic_load(&n), 10);
    assert_int_equal(weft_co_state(co), WEFT_CO_DONE);
    assert_int_equal(weft_co_release(co), 0);
    assert_int_equal(weft_scope_join(s, 0), 0); /* again: the same answer */
    assert_int_equal(weft_scope_release(s), 0);
}

static void threads_alone_are_all_joined(void **state)
{
    (void)state;
    _Atomic int n = 0;
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    weft_thread_t *t;
    assert_int_equal(weft_scope_thread_start(s, ok, &n, NULL, &t), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(weft_scope_thread_start(s, ok, &n, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(s, 10), 0);
    assert_int_equal(atomic_load(&n), 4);
    assert_false(weft_thread_is_alive(t));
    assert_int_equal(weft_thread_release(t), 0);
    assert_int_equal(weft_scope_release(s), 0);
}

static void futures_alone_are_all_waited(void **state)
{
    (void)state;
    _Atomic int n = 0;
    weft_executor_t *ex = pool(2);
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    weft_future_t *f;
    assert_int_equal(weft_scope_submit(s, ex, ok_task, &n, &f), 0);
    for (int i = 0; i < 5; i++) assert_int_equal(weft_scope_submit(s, ex, ok_task, &n, NULL), 0);
    assert_int_equal(weft_scope_join(s, 10), 0);
    assert_int_equal(atomic_load(&n), 6);
    assert_true(weft_future_done(f));
    assert_int_equal(weft_future_release(f), 0);
    assert_int_equal(weft_scope_release(s), 0);
    pool_done(ex);
}

static void processes_alone_are_all_reaped(void **state)
{
    (void)state;
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    weft_process_t *p;
    assert_int_equal(weft_scope_process_start(s, ok, NULL, NULL, &p), 0);
    assert_int_equal(weft_scope_process_start(s, ok, NULL, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(s, 30), 0);
    int code = -1;
    assert_int_equal(weft_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(weft_scope_release(s), 0); /* releases p too */
}

static void mixed_kinds_are_all_joined(void **state)
{
    (void)state;
    _Atomic int n = 0;
    weft_executor_t *ex = pool(1);
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    assert_int_equal(weft_scope_spawn(s, ok, &n, NULL, NULL), 0);
    assert_int_equal(weft_scope_thread_start(s, ok, &n, NULL, NULL), 0);
    assert_int_equal(weft_scope_submit(s, ex, ok_task, &n, NULL), 0);
    assert_int_equal(weft_scope_process_start(s, ok, NULL, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(s, 30), 0);
    assert_int_equal(atomic_load(&n), 3);
    size_t count = 9;
    int first = 9;
    assert_int_equal(weft_scope_errors(s, &first, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(first, 0);
    assert_int_equal(weft_scope_release(s), 0);
    pool_done(ex);
}

/* test_taskgroup_02: the first error cancels the siblings; the error is join's answer. */
static void coroutine_failure_cancels_the_rest(void **state)
{
    (void)state;
    blocker_t b;
    blocker_init(&b);
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    for (int i = 0; i < 3; i++) assert_int_equal(weft_scope_spawn(s, block, &b, NULL, NULL), 0);
    assert_int_equal(weft_scope_spawn(s, fail_eio, NULL, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(s, 10), WEFT_ETASKFAILED);
    assert_int_equal(atomic_load(&b.canceled), 3);
    size_t count;
    int first;
    assert_int_equal(weft_scope_errors(s, &first, &count), 0);
    assert_int_equal(count, 1); /* the canceled ones are not failures */
    assert_int_equal(first, WEFT_EIO);
    assert_int_equal(weft_scope_release(s), 0);
    assert_int_equal(weft_event_destroy(&b.ev), 0);
}

static void thread_failure_cancels_the_rest(void **state)
{
    (void)state;
    blocker_t b;
    blocker_init(&b);
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    for (int i = 0; i < 2; i++)
        assert_int_equal(weft_scope_thread_start(s, block, &b, NULL, NULL), 0);
    assert_int_equal(weft_scope_thread_start(s, fail_eio, NULL, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(s, 10), WEFT_ETASKFAILED);
    /* a thread canceled before it ran never ran its function */
    assert_int_equal(atomic_load(&b.canceled), atomic_load(&b.started));
    assert_int_equal(atomic_load(&b.saw_request), atomic_load(&b.started));
    size_t count;
    assert_int_equal(weft_scope_errors(s, NULL, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(weft_scope_release(s), 0);
    assert_int_equal(weft_event_destroy(&b.ev), 0);
}

/* A running future sees the cancel; a queued one never runs. */
static void future_failure_cancels_the_rest(void **state)
{
    (void)state;
    blocker_t b;
    blocker_init(&b);
    weft_executor_t *ex = pool(2);
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    weft_future_t *running, *queued, *failing;
    _Atomic int ran = 0;
    assert_int_equal(weft_scope_submit(s, ex, block_task, &b, &running), 0);
    while (atomic_load(&b.started) == 0) sched_yield();
    weft_event_t gate;
    assert_int_equal(weft_event_init(&gate), 0);
    assert_int_equal(weft_scope_submit(s, ex, fail_after_gate_task, &gate, &failing), 0);
    assert_int_equal(weft_scope_submit(s, ex, ok_task, &ran, &queued), 0); /* both workers busy */
    assert_int_equal(weft_event_set(&gate), 0);
    int rc = weft_scope_join(s, 10);
    assert_int_equal(rc, WEFT_ETASKFAILED);
    int code;
    assert_int_equal(weft_future_error(running, 0, &code), 0);
    assert_int_equal(code, WEFT_ECANCELED);
    assert_int_equal(atomic_load(&b.saw_request), 1);
    assert_true(weft_future_done(queued));
    /* the failing task's worker cancels the queued one before it takes another task */
    assert_true(weft_future_cancelled(queued));
    assert_int_equal(atomic_load(&ran), 0);
    size_t count;
    assert_int_equal(weft_scope_errors(s, NULL, &count), 0);
    assert_int_equal(count, 1);
    weft_future_release(running);
    weft_future_release(queued);
    weft_future_release(failing);
    assert_int_equal(weft_scope_release(s), 0);
    pool_done(ex);
    assert_int_equal(weft_event_destroy(&b.ev), 0);
    assert_int_equal(weft_event_destroy(&gate), 0);
}

/* A child that exits 3 fails the scope (WEFT_ETASKFAILED, first 3); a sleeping one is terminated;
 * one that ignores SIGTERM is killed after the grace period. Neither is a failure. */
static void process_failure_cancels_the_rest(void **state)
{
    (void)state;
    /* under valgrind a child's exit (its leak check) can outlast a short grace period */
    weft_scope_opts_t o = {.grace = RUNNING_ON_VALGRIND ? 5 : 0.2};
    weft_scope_t *s;
    assert_int_equal(weft_scope_create(&o, WEFT_FOREVER, &s), 0);
    weft_process_t *sleeper, *ignores_term;
    assert_int_equal(weft_scope_process_start(s, child_sleeps, NULL, NULL, &sleeper), 0);
    assert_int_equal(weft_scope_process_start(s, child_ignores_term, NULL, NULL, &ignores_term), 0);
    assert_int_equal(weft_scope_process_start(s, exit3, NULL, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(s, 30), WEFT_ETASKFAILED);
    int first, code;
    size_t count;
    assert_int_equal(weft_scope_errors(s, &first, &count), 0);
    assert_int_equal(first, 3);
    assert_int_equal(count, 1);
    assert_int_equal(weft_process_exitcode(sleeper, &code), 0);
    assert_int_equal(code, -SIGTERM);
    assert_int_equal(weft_process_exitcode(ignores_term, &code), 0);
    assert_true(code == -SIGKILL || code == -SIGTERM); /* TERM if it came before signal() */
    assert_int_equal(weft_scope_release(s), 0);
}

static void cancel_from_another_thread(void *arg)
{
    assert_int_equal(weft_scope_cancel(arg), 0);
}

static void scope_cancel_from_another_thread_cancels_every_kind(void **state)
{
    (void)state;
    blocker_t b;
    blocker_init(&b);
    weft_executor_t *ex = pool(1);
    weft_scope_opts_t o = {.grace = -1};
    weft_scope_t *s;
    assert_int_equal(weft_scope_create(&o, WEFT_FOREVER, &s), 0);
    assert_int_equal(weft_scope_spawn(s, block, &b, NULL, NULL), 0);
    assert_int_equal(weft_scope_thread_start(s, block, &b, NULL, NULL), 0);
    assert_int_equal(weft_scope_submit(s, ex, block_task, &b, NULL), 0);
    assert_int_equal(weft_scope_process_start(s, child_sleeps, NULL, NULL, NULL), 0);
    while (atomic_load(&b.started) < 2) assert_int_equal(weft_co_yield(), 0); /* thread, future */
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(cancel_from_another_thread, s, NULL, &t), 0);
    assert_int_equal(weft_scope_join(s, 30), WEFT_ECANCELED);
    assert_int_equal(weft_thread_join(t, 10), 0);
    weft_thread_release(t);
    size_t count;
    assert_int_equal(weft_scope_errors(s, NULL, &count), 0);
    assert_int_equal(count, 0);
    /* later starts are refused */
    assert_int_equal(weft_scope_spawn(s, ok, NULL, NULL, NULL), WEFT_ESHUTDOWN);
    assert_int_equal(weft_scope_cancel(s), 0);
    assert_int_equal(weft_scope_release(s), 0);
    pool_done(ex);
    assert_int_equal(weft_event_destroy(&b.ev), 0);
}

static int cancel_own_scope(void *arg)
{
    (void)arg;
    assert_int_equal(weft_scope_cancel(weft_scope_current()), 0);
    assert_int_equal(weft_scope_join(weft_scope_current(), 0), WEFT_EDEADLK);
    assert_int_equal(weft_scope_spawn(weft_scope_current(), ok, NULL, NULL, NULL), WEFT_ECANCELED);
    return WEFT_ECANCELED;
}

static void cancel_from_inside_a_task(void **state)
{
    (void)state;
    blocker_t b;
    blocker_init(&b);
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    assert_int_equal(weft_scope_thread_start(s, block, &b, NULL, NULL), 0);
    assert_int_equal(weft_scope_spawn(s, cancel_own_scope, NULL, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(s, 10), WEFT_ECANCELED);
    assert_int_equal(weft_scope_release(s), 0);
    assert_int_equal(weft_event_destroy(&b.ev), 0);
}

static void deadline_cancels_and_join_says_etimedout(void **state)
{
    (void)state;
    blocker_t b;
    blocker_init(&b);
    double t0 = weft_time_monotonic(); /* the deadline counts from the create */
    weft_scope_t *s = open_scope(0.1);
    assert_int_equal(weft_scope_spawn(s, block, &b, NULL, NULL), 0);
    int rc = weft_scope_thread_start(s, block, &b, NULL, NULL); /* slow under TSan: may be late */
    assert_true(rc == 0 || rc == WEFT_ECANCELED);
    assert_int_equal(weft_scope_join(s, 10), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.09);
    assert_int_equal(weft_scope_join(s, 10), WEFT_ETIMEDOUT);
    size_t count;
    assert_int_equal(weft_scope_errors(s, NULL, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(weft_scope_release(s), 0);
    /* a start after the deadline cancels the scope and is refused */
    s = open_scope(0);
    assert_int_equal(weft_scope_spawn(s, ok, NULL, NULL, NULL), WEFT_ECANCELED);
    assert_int_equal(weft_scope_join(s, 10), WEFT_ETIMEDOUT);
    assert_int_equal(weft_scope_release(s), 0);
    assert_int_equal(weft_event_destroy(&b.ev), 0);
}

static void join_timeout_is_ebusy_and_release_refuses_live_tasks(void **state)
{
    (void)state;
    blocker_t b;
    blocker_init(&b);
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    assert_int_equal(weft_scope_thread_start(s, block, &b, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(s, 0.05), WEFT_EBUSY);
    assert_int_equal(weft_scope_live(s), 1);
    assert_int_equal(weft_scope_release(s), WEFT_EBUSY);
    assert_int_equal(weft_event_set(&b.ev), 0);
    assert_int_equal(weft_scope_join(s, 10), 0);
    assert_int_equal(weft_scope_thread_start(s, ok, NULL, NULL, NULL), WEFT_ESHUTDOWN);
    assert_int_equal(weft_scope_submit(s, (weft_executor_t *)s, ok_task, NULL, NULL),
                     WEFT_ESHUTDOWN);
    assert_int_equal(weft_scope_process_start(s, ok, NULL, NULL, NULL), WEFT_ESHUTDOWN);
    assert_int_equal(weft_scope_release(s), 0);
    assert_int_equal(weft_event_destroy(&b.ev), 0);
}

/* test_taskgroup_09-ish: a task opens a child scope; cancelling the parent cancels it. */
typedef struct nest {
    blocker_t b;
    _Atomic int inner_rc;
    weft_scope_t *inner;
    weft_event_t opened;
} nest_t;

static int opens_child(void *arg)
{
    nest_t *n = arg;
    weft_scope_t *c;
    int rc = weft_scope_create(NULL, WEFT_FOREVER, &c);
    if (rc == WEFT_ECANCELED) { /* the parent was canceled first: no child scope then */
        atomic_store(&n->inner_rc, rc);
        return rc;
    }
    assert_int_equal(rc, 0);
    n->inner = c;
    /* The other opener may have opened the gate already and the parent's cancel come first:
     * then these starts are refused (an assertion failed here once, on the thread task). */
    rc = weft_scope_spawn(c, block, &n->b, NULL, NULL);
    assert_true(rc == 0 || rc == WEFT_ECANCELED);
    rc = weft_scope_thread_start(c, block, &n->b, NULL, NULL);
    assert_true(rc == 0 || rc == WEFT_ECANCELED);
    assert_int_equal(weft_event_set(&n->opened), 0);
    rc = weft_scope_join(c, 20);
    atomic_store(&n->inner_rc, rc);
    assert_int_equal(weft_scope_release(c), 0);
    return rc;
}

static void nested_scope_is_canceled_with_its_parent(void **state)
{
    (void)state;
    nest_t n;
    memset(&n, 0, sizeof n);
    blocker_init(&n.b);
    assert_int_equal(weft_event_init(&n.opened), 0);
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    assert_int_equal(weft_scope_thread_start(s, opens_child, &n, NULL, NULL), 0);
    assert_int_equal(weft_scope_spawn(s, opens_child, &n, NULL, NULL), 0);
    assert_int_equal(weft_event_wait(&n.opened, 10), 0);
    assert_int_equal(weft_scope_release(s), WEFT_EBUSY);
    assert_int_equal(weft_scope_cancel(s), 0);
    assert_int_equal(weft_scope_join(s, 20), WEFT_ECANCELED);
    assert_int_equal(atomic_load(&n.inner_rc), WEFT_ECANCELED);
    assert_int_equal(atomic_load(&n.b.canceled), atomic_load(&n.b.started));
    assert_int_equal(weft_scope_release(s), 0);
    assert_int_equal(weft_event_destroy(&n.b.ev), 0);
    assert_int_equal(weft_event_destroy(&n.opened), 0);
}

/* A child scope's failure reaches the parent through the task that joins it. */
static int child_scope_fails(void *arg)
{
    (void)arg;
    weft_scope_t *c;
    assert_int_equal(weft_scope_create(NULL, WEFT_FOREVER, &c), 0);
    assert_int_equal(weft_scope_spawn(c, fail_eio, NULL, NULL, NULL), 0);
    int rc = weft_scope_join(c, 10);
    assert_int_equal(rc, WEFT_ETASKFAILED);
    int first;
    assert_int_equal(weft_scope_errors(c, &first, NULL), 0);
    assert_int_equal(first, WEFT_EIO);
    assert_int_equal(weft_scope_release(c), 0);
    return rc;
}

static void nested_failure_reaches_the_parent_through_its_task(void **state)
{
    (void)state;
    blocker_t b;
    blocker_init(&b);
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    assert_int_equal(weft_scope_thread_start(s, block, &b, NULL, NULL), 0);
    assert_int_equal(weft_scope_thread_start(s, child_scope_fails, NULL, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(s, 10), WEFT_ETASKFAILED);
    int first;
    assert_int_equal(weft_scope_errors(s, &first, NULL), 0);
    assert_int_equal(first, WEFT_ETASKFAILED); /* what the joining task returned */
    assert_int_equal(weft_scope_release(s), 0);
    assert_int_equal(weft_event_destroy(&b.ev), 0);
}

/* The parent's deadline bounds the child's. */
static int child_waits_forever(void *arg)
{
    blocker_t *b = arg;
    weft_scope_t *c;
    int rc = weft_scope_create(NULL, WEFT_FOREVER, &c);
    if (rc == WEFT_ECANCELED) return rc; /* started late (valgrind): the deadline came first */
    assert_int_equal(rc, 0);
    rc = weft_scope_spawn(c, block, b, NULL, NULL);
    assert_true(rc == 0 || rc == WEFT_ECANCELED); /* the inherited deadline may be past */
    rc = weft_scope_join(c, 10);
    assert_int_equal(weft_scope_release(c), 0);
    return rc;
}

static void nested_scope_keeps_its_parents_deadline(void **state)
{
    (void)state;
    blocker_t b;
    blocker_init(&b);
    weft_scope_t *s = open_scope(0.1);
    assert_int_equal(weft_scope_thread_start(s, child_waits_forever, &b, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(s, 10), WEFT_ETIMEDOUT);
    size_t count;
    assert_int_equal(weft_scope_errors(s, NULL, &count), 0);
    assert_int_equal(count, 0); /* the child's WEFT_ETIMEDOUT is this deadline's, not a failure */
    assert_int_equal(weft_scope_release(s), 0);
    assert_int_equal(weft_event_destroy(&b.ev), 0);
}

/* A child scope joined with no timeout, its parent's deadline passing meanwhile: the join
 * waits for its tasks to end and says the scope ended, never that its (absent) timeout passed.
 * (Before: WEFT_EBUSY when the parent's join canceled it first, and the child was leaked.) */
static _Atomic int forever_rc;

static int child_joins_forever(void *arg)
{
    blocker_t *b = arg;
    weft_scope_t *c;
    int rc = weft_scope_create(NULL, WEFT_FOREVER, &c);
    if (rc == WEFT_ECANCELED) return rc; /* started late (valgrind): the deadline came first */
    assert_int_equal(rc, 0);
    rc = weft_scope_spawn(c, block, b, NULL, NULL);
    assert_true(rc == 0 || rc == WEFT_ECANCELED);
    rc = weft_scope_join(c, WEFT_FOREVER);
    atomic_store(&forever_rc, rc);
    assert_int_equal(weft_scope_release(c), 0);
    return rc;
}

static void child_join_forever_outlives_the_parents_deadline(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        blocker_t b;
        blocker_init(&b);
        atomic_store(&forever_rc, 1);
        weft_scope_t *s = open_scope(0.05);
        assert_int_equal(weft_scope_spawn(s, child_joins_forever, &b, NULL, NULL), 0);
        assert_int_equal(weft_scope_join(s, 20), WEFT_ETIMEDOUT);
        int rc = atomic_load(&forever_rc);
        /* 1: it never joined (valgrind: the deadline came before it ran, or created its scope) */
        assert_true(rc == WEFT_ETIMEDOUT || rc == 1); /* the deadline's, whoever canceled */
        assert_int_equal(weft_scope_release(s), 0);
        assert_int_equal(weft_event_destroy(&b.ev), 0);
    }
}

/* A parent's deadline reaches its child scope, whose deadline is at most the parent's: the
 * child's join says WEFT_ETIMEDOUT, also when the parent's joiner canceled the child before
 * the child's own joiner saw the deadline (before: WEFT_ECANCELED then, 5 runs in 40). Here
 * the child's joiner joins only once the parent's cancel reached the child's task: it saw the
 * cancel, or ended unrun (canceled before its thread ran it). */
static _Atomic int deadline_rc;

static int joins_child_after_the_cascade(void *arg)
{
    blocker_t *b = arg;
    weft_scope_t *c;
    int rc = weft_scope_create(NULL, WEFT_FOREVER, &c);
    if (rc != 0) return rc;
    rc = weft_scope_thread_start(c, block, b, NULL, NULL);
    weft_event_t gate; /* nobody sets it: the parent's deadline cancels this wait */
    assert_int_equal(weft_event_init(&gate), 0);
    int waited = weft_event_wait(&gate, 30);
    assert_int_equal(weft_event_destroy(&gate), 0);
    int64_t give_up = weft_time_monotonic_ns() + 20 * (int64_t)1000000000;
    while (rc == 0 && atomic_load(&b->canceled) == 0 && weft_scope_live(c) != 0 &&
           weft_time_monotonic_ns() < give_up)
        sched_yield();
    atomic_store(&deadline_rc, rc == 0 && waited == WEFT_ECANCELED ? weft_scope_join(c, 30) : 1);
    assert_int_equal(weft_scope_release(c), 0);
    return atomic_load(&deadline_rc);
}

static void child_scope_says_the_parents_deadline_came(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        blocker_t b;
        blocker_init(&b);
        atomic_store(&deadline_rc, 2);
        /* Long enough for the task to reach its gate first (valgrind starts threads slowly). */
        weft_scope_t *s = open_scope(SANITIZED || RUNNING_ON_VALGRIND ? 1 : 0.05);
        assert_int_equal(weft_scope_thread_start(s, joins_child_after_the_cascade, &b, NULL, NULL),
                         0);
        assert_int_equal(weft_scope_join(s, 30), WEFT_ETIMEDOUT);
        if (atomic_load(&deadline_rc) != WEFT_ETIMEDOUT)
            fail_msg("the child's join said %s", weft_error_name(atomic_load(&deadline_rc)));
        assert_int_equal(weft_scope_release(s), 0);
        assert_int_equal(weft_event_destroy(&b.ev), 0);
    }
}

/* A crawler: each task starts its children in its own scope (weft_scope_current), threads
 * starting coroutines and coroutines starting threads. A thread task returns right after
 * spawning its coroutines: the scope must still run them (a thread that ends cancels the
 * coroutines its hub has not started). */
static _Atomic int crawled;

static int crawl(void *arg)
{
    long depth = (long)arg;
    atomic_fetch_add(&crawled, 1);
    if (depth == 0) return 0;
    weft_scope_t *me = weft_scope_current();
    assert_non_null(me);
    for (int i = 0; i < 2; i++) {
        int rc = depth % 2 ? weft_scope_thread_start(me, crawl, (void *)(depth - 1), NULL, NULL)
                           : weft_scope_spawn(me, crawl, (void *)(depth - 1), NULL, NULL);
        if (rc != 0) return rc;
    }
    return 0;
}

static int crawl_task(void *arg, void **result)
{
    (void)result;
    return crawl(arg);
}

static void thread_task_returning_before_its_coroutines_ran(void **state)
{
    (void)state;
    atomic_store(&crawled, 0);
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    assert_int_equal(weft_scope_thread_start(s, crawl, (void *)3L, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(s, 20), 0);
    assert_int_equal(atomic_load(&crawled), 15);
    assert_int_equal(weft_scope_release(s), 0);
    /* the same from a pool's task: its worker's hub runs them before the future completes */
    atomic_store(&crawled, 0);
    weft_executor_t *ex = pool(1);
    s = open_scope(WEFT_FOREVER);
    assert_int_equal(weft_scope_submit(s, ex, crawl_task, (void *)2L, NULL), 0);
    assert_int_equal(weft_scope_join(s, 20), 0);
    assert_int_equal(atomic_load(&crawled), 7);
    assert_int_equal(weft_scope_release(s), 0);
    pool_done(ex);
}

typedef struct cojoin {
    weft_executor_t *ex;
    int rc;
} cojoin_t;

static void joins_in_a_coroutine(void *arg)
{
    cojoin_t *c = arg;
    _Atomic int n = 0;
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    assert_int_equal(weft_scope_thread_start(s, ok, &n, NULL, NULL), 0);
    assert_int_equal(weft_scope_submit(s, c->ex, ok_task, &n, NULL), 0);
    assert_int_equal(weft_scope_spawn(s, ok, &n, NULL, NULL), 0);
    c->rc = weft_scope_join(s, 10);
    assert_int_equal(atomic_load(&n), 3);
    assert_int_equal(weft_scope_release(s), 0);
}

static void join_from_a_coroutine(void **state)
{
    (void)state;
    cojoin_t c = {.ex = pool(1), .rc = 1};
    weft_test_co_join(weft_test_spawn(joins_in_a_coroutine, &c));
    assert_int_equal(c.rc, 0);
    pool_done(c.ex);
}

/* Cancels racing starts and ends: tasks that end at once, a cancel from another thread at a
 * random point; every run ends in 0 or WEFT_ECANCELED, nothing left behind. */
static void cancel_races_starts_and_ends(void **state)
{
    (void)state;
    int runs = SANITIZED || RUNNING_ON_VALGRIND ? 20 : 100;
    weft_executor_t *ex = pool(2);
    for (int i = 0; i < runs; i++) {
        weft_scope_t *s = open_scope(WEFT_FOREVER);
        weft_thread_t *t;
        assert_int_equal(weft_thread_start(cancel_from_another_thread, s, NULL, &t), 0);
        for (int k = 0; k < 4; k++) {
            int rc = weft_scope_spawn(s, ok, NULL, NULL, NULL);
            assert_true(rc == 0 || rc == WEFT_ECANCELED);
            rc = weft_scope_thread_start(s, ok, NULL, NULL, NULL);
            assert_true(rc == 0 || rc == WEFT_ECANCELED);
            rc = weft_scope_submit(s, ex, ok_task, NULL, NULL);
            assert_true(rc == 0 || rc == WEFT_ECANCELED);
        }
        int rc = weft_scope_join(s, 20);
        assert_true(rc == 0 || rc == WEFT_ECANCELED);
        assert_int_equal(weft_thread_join(t, 10), 0);
        weft_thread_release(t);
        assert_int_equal(weft_scope_release(s), 0);
    }
    pool_done(ex);
}

/* A joiner on another thread joins and releases the scope as soon as the last task ends, while
 * the starter of that task is still inside weft_scope_thread_start: the start must not write
 * into a released record. */
typedef struct start_race {
    weft_scope_t *s;
    weft_event_t gate;
} start_race_t;

static int open_gate(void *arg)
{
    return weft_event_set(arg);
}

static void joins_and_releases(void *arg)
{
    start_race_t *r = arg;
    assert_int_equal(weft_scope_join(r->s, 20), 0);
    assert_int_equal(weft_scope_release(r->s), 0);
}

static int wait_gate(void *arg)
{
    return weft_event_wait(arg, 20);
}

static void join_never_ends_under_a_start(void **state)
{
    (void)state;
    int runs = SANITIZED || RUNNING_ON_VALGRIND ? 30 : 200;
    for (int i = 0; i < runs; i++) {
        start_race_t r;
        assert_int_equal(weft_event_init(&r.gate), 0);
        r.s = open_scope(WEFT_FOREVER);
        assert_int_equal(weft_scope_thread_start(r.s, wait_gate, &r.gate, NULL, NULL), 0);
        weft_thread_t *joiner;
        assert_int_equal(weft_thread_start(joins_and_releases, &r, NULL, &joiner), 0);
        /* the last task: opens the gate, so both end while this start may still run */
        assert_int_equal(weft_scope_thread_start(r.s, open_gate, &r.gate, NULL, NULL), 0);
        assert_int_equal(weft_thread_join(joiner, 20), 0);
        weft_thread_release(joiner);
        assert_int_equal(weft_event_destroy(&r.gate), 0);
    }
}

/* The body makes its own pool and shuts it down: a pool keeps the futures it made for reuse
 * (a run whose warm-up future was still on its way back made one more), so a pool that outlives
 * the body would hold allocations the loop cannot tell from a leak. */
static int oom_body(void *ctx)
{
    (void)ctx;
    weft_executor_t *ex;
    int rc = weft_thread_pool_create(1, NULL, &ex);
    if (rc != 0) return rc;
    weft_scope_t *s;
    rc = weft_scope_create(NULL, WEFT_FOREVER, &s);
    if (rc == 0) {
        int r1 = weft_scope_spawn(s, ok, NULL, NULL, NULL);
        int r2 = weft_scope_thread_start(s, ok, NULL, NULL, NULL);
        int r3 = weft_scope_submit(s, ex, ok_task, NULL, NULL);
        rc = weft_scope_join(s, 20);
        if (rc == WEFT_ETASKFAILED) /* a task's own ENOMEM */
            assert_int_equal(weft_scope_errors(s, &rc, NULL), 0);
        assert_int_equal(weft_scope_release(s), 0);
        if (rc == 0) rc = r1 ? r1 : r2 ? r2 : r3;
    }
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    assert_int_equal(weft_executor_release(ex), 0);
    if (rc != 0 && rc != WEFT_ENOMEM) fail_msg("OOM run: %s", weft_error_name(rc));
    return rc;
}

static void out_of_memory_anywhere_is_clean(void **state)
{
    (void)state;
    /* warm the hub so that its lazy allocations are not the scope's */
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    assert_int_equal(weft_scope_spawn(s, ok, NULL, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(s, 10), 0);
    assert_int_equal(weft_scope_release(s), 0);
    assert_true(weft_test_oom(oom_body, NULL) > 0);
}

static weft_scope_t *inherited;

static int child_uses_inherited_scope(void *arg)
{
    (void)arg;
    if (weft_scope_spawn(inherited, ok, NULL, NULL, NULL) != WEFT_EBROKEN) return 1;
    if (weft_scope_join(inherited, 0) != WEFT_EBROKEN) return 2;
    if (weft_scope_cancel(inherited) != WEFT_EBROKEN) return 3;
    if (weft_scope_current() != NULL) return 4;
    /* a scope of its own works (a coroutine: TSan cannot start threads after this fork) */
    weft_scope_t *s;
    if (weft_scope_create(NULL, WEFT_FOREVER, &s) != 0) return 5;
    if (weft_scope_spawn(s, ok, NULL, NULL, NULL) != 0) return 6;
    if (weft_scope_join(s, 10) != 0) return 7;
    if (weft_scope_release(s) != 0) return 8;
    if (weft_scope_release(inherited) != 0) return 9;
    return 0;
}

static int in_scope_forks(void *arg)
{
    (void)arg;
    weft_process_t *p = weft_test_process_start(child_uses_inherited_scope, NULL);
    return weft_test_process_finish(p);
}

static void fork_child_sees_the_scope_broken(void **state)
{
    (void)state;
    inherited = open_scope(WEFT_FOREVER);
    /* forked by a task of the scope, so the child also starts inside "current" */
    assert_int_equal(weft_scope_thread_start(inherited, in_scope_forks, NULL, NULL, NULL), 0);
    assert_int_equal(weft_scope_join(inherited, 30), 0);
    assert_int_equal(weft_scope_release(inherited), 0);
}

/* ---- issue 17, a headers-only user round ----------------------------------------------- */

/* Polls the dump until it holds `want` (bounded: 10 s); the caller parks between looks, so its
 * own coroutines run meanwhile. */
static void wait_dump_line(const char *want)
{
    int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
    for (;;) {
        char *text = weft_test_dump_text();
        bool found = strstr(text, want) != NULL;
        if (!found && weft_time_monotonic_ns() > give_up)
            fail_msg("no \"%s\" in the dump:\n%s", want, text);
        free(text);
        if (found) return;
        assert_int_equal(weft_time_sleep(0.002), 0);
    }
}

typedef struct joiner {
    weft_scope_t *s;
    int rc;
} joiner_t;

static void joins_the_scope(void *arg)
{
    joiner_t *j = arg;
    j->rc = weft_scope_join(j->s, 30);
}

/* A thread and a coroutine parked in weft_scope_join show as such in the dump (before: "blocked
 * on wait"): "Scope 0x... join" for an unnamed scope, "Scope 'name' join" for a named one. */
static void dump_shows_a_scope_joiner(void **state)
{
    (void)state;
    blocker_t b;
    blocker_init(&b);
    weft_scope_t *plain = open_scope(WEFT_FOREVER), *named = open_scope(WEFT_FOREVER);
    assert_int_equal(weft_scope_thread_start(plain, block, &b, NULL, NULL), 0);
    assert_int_equal(weft_scope_thread_start(named, block, &b, NULL, NULL), 0);
    assert_int_equal(weft_scope_set_name(NULL, "x"), WEFT_EINVAL);
    assert_int_equal(weft_scope_set_name(named, "batch"), 0);
    joiner_t tj = {.s = plain, .rc = 1}, cj = {.s = named, .rc = 1};
    weft_thread_opts_t to = {.name = "scope-joiner"};
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(joins_the_scope, &tj, &to, &t), 0);
    weft_co_opts_t co_opts = {.name = "scope-cojoiner"};
    weft_co_t *co;
    assert_int_equal(weft_co_spawn(joins_the_scope, &cj, &co_opts, &co), 0);
    char want[160];
    snprintf(want, sizeof want, "'scope-joiner': blocked on Scope %p join", (void *)plain);
    wait_dump_line(want);
    wait_dump_line("'scope-cojoiner': blocked on Scope 'batch' join");
    assert_int_equal(weft_scope_cancel(plain), 0);
    assert_int_equal(weft_scope_cancel(named), 0);
    assert_int_equal(weft_thread_join(t, 20), 0);
    assert_int_equal(weft_co_join(co, 20), 0);
    assert_int_equal(tj.rc, WEFT_ECANCELED);
    assert_int_equal(cj.rc, WEFT_ECANCELED);
    weft_thread_release(t);
    weft_co_release(co);
    assert_int_equal(weft_scope_release(plain), 0);
    assert_int_equal(weft_scope_release(named), 0);
    assert_int_equal(weft_event_destroy(&b.ev), 0);
    weft__names_reset(); /* the table itself, kept till exit, for the leak guard */
}

/* A plain thread (no task of the scope) spawns into it and ends without blocking in weft: its
 * hub cancels the coroutine unrun at the thread's exit. The scope sees that end: join returns
 * at once with 0 (canceled unrun is not a failure), the function never ran. (Before: join
 * returned only WEFT_EBUSY at its timeout, forever.) */
static void spawns_and_exits(void *arg)
{
    joiner_t *j = arg;
    j->rc = weft_scope_spawn(j->s, ok, NULL, NULL, NULL);
}

static void plain_threads_unrun_coroutine_ends_in_the_scope(void **state)
{
    (void)state;
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    joiner_t j = {.s = s, .rc = 1};
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(spawns_and_exits, &j, NULL, &t), 0);
    assert_int_equal(weft_thread_join(t, 20), 0);
    weft_thread_release(t);
    assert_int_equal(j.rc, 0);
    assert_int_equal(weft_scope_join(s, 5), 0);
    assert_int_equal(weft_scope_live(s), 0);
    size_t count = 9;
    assert_int_equal(weft_scope_errors(s, NULL, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(weft_scope_release(s), 0);
}

/* The same end for a coroutine canceled through its handle before it ran. */
static void coroutine_canceled_before_it_ran_ends_in_the_scope(void **state)
{
    (void)state;
    _Atomic int ran = 0;
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    weft_co_t *co;
    assert_int_equal(weft_scope_spawn(s, ok, &ran, NULL, &co), 0);
    assert_int_equal(weft_co_cancel(co), 0);
    assert_int_equal(weft_scope_join(s, 5), 0);
    assert_int_equal(atomic_load(&ran), 0);
    assert_int_equal(weft_co_state(co), WEFT_CO_DONE);
    assert_int_equal(weft_co_release(co), 0);
    assert_int_equal(weft_scope_release(s), 0);
}

/* A coroutine of the hubs spawns into a scope (one task that blocks, and one it cancels before
 * it runs) and returns; stopping the hubs cancels the blocked one. join returns at once: the
 * blocked task's WEFT_ECANCELED is a failure (its scope was not canceled), the unrun one is
 * not. */
typedef struct hub_spawner {
    weft_scope_t *s;
    blocker_t *b;
    int rc;
} hub_spawner_t;

static void spawns_on_a_hub(void *arg)
{
    hub_spawner_t *h = arg;
    weft_co_t *co;
    h->rc = weft_scope_spawn(h->s, ok, NULL, NULL, &co);
    if (h->rc != 0) return;
    (void)weft_co_cancel(co);
    weft_co_release(co);
    h->rc = weft_scope_spawn(h->s, block, h->b, NULL, NULL);
}

static void hubs_stop_ends_the_scopes_coroutines(void **state)
{
    (void)state;
    blocker_t b;
    blocker_init(&b);
    weft_scope_t *s = open_scope(WEFT_FOREVER);
    weft_hubs_t *hubs;
    assert_int_equal(weft_hubs_start(1, NULL, &hubs), 0);
    hub_spawner_t h = {.s = s, .b = &b, .rc = 1};
    weft_co_t *co;
    assert_int_equal(weft_hubs_spawn(hubs, 0, spawns_on_a_hub, &h, NULL, &co), 0);
    assert_int_equal(weft_co_join(co, 20), 0);
    weft_co_release(co);
    assert_int_equal(h.rc, 0);
    int64_t give_up = weft_time_monotonic_ns() + 20 * 1000000000LL;
    while (atomic_load(&b.started) == 0) { /* the blocker runs once its hub is idle */
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
    assert_int_equal(weft_hubs_stop(hubs, 0), 0);
    assert_int_equal(weft_hubs_release(hubs), 0);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_scope_join(s, 5), WEFT_ETASKFAILED);
    assert_true(weft_time_monotonic() - t0 < 4);
    int first;
    size_t count;
    assert_int_equal(weft_scope_errors(s, &first, &count), 0);
    assert_int_equal(first, WEFT_ECANCELED);
    assert_int_equal(count, 1);
    assert_int_equal(atomic_load(&b.canceled), 1);
    assert_int_equal(weft_scope_release(s), 0);
    assert_int_equal(weft_event_destroy(&b.ev), 0);
}

/* A task's code is never mistaken for one of join's own statuses: join says WEFT_ETASKFAILED
 * for any failure, weft_scope_errors gives the task's own code. (Before: join returned the
 * task's code, so a task's WEFT_ETIMEDOUT read as the scope's deadline, its WEFT_EBUSY as
 * join's timeout...) */
static int returns_code(void *arg)
{
    return (int)(intptr_t)arg;
}

static void task_codes_are_told_apart_from_joins_statuses(void **state)
{
    (void)state;
    const int codes[] = {WEFT_ETIMEDOUT, WEFT_EBUSY,     WEFT_EINVAL,
                         WEFT_EDEADLK,   WEFT_ECANCELED, WEFT_EBROKEN,
                         WEFT_ESHUTDOWN, WEFT_EIO,       7};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        weft_scope_t *s = open_scope(WEFT_FOREVER);
        assert_int_equal(weft_scope_spawn(s, returns_code, (void *)(intptr_t)codes[i], NULL, NULL),
                         0);
        int rc = weft_scope_join(s, 10);
        if (rc != WEFT_ETASKFAILED)
            fail_msg("a task returning %s: join said %s", weft_error_name(codes[i]),
                     weft_error_name(rc));
        int first;
        size_t count;
        assert_int_equal(weft_scope_errors(s, &first, &count), 0);
        assert_int_equal(first, codes[i]);
        assert_int_equal(count, 1);
        assert_int_equal(weft_scope_join(s, 0), WEFT_ETASKFAILED); /* again: the same */
        assert_int_equal(weft_scope_release(s), 0);
    }
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(bad_arguments),
    WEFT_TEST(coroutines_alone_are_all_joined),
    WEFT_TEST(threads_alone_are_all_joined),
    WEFT_TEST(futures_alone_are_all_waited),
    WEFT_TEST(processes_alone_are_all_reaped),
    WEFT_TEST(mixed_kinds_are_all_joined),
    WEFT_TEST(coroutine_failure_cancels_the_rest),
    WEFT_TEST(thread_failure_cancels_the_rest),
    WEFT_TEST(future_failure_cancels_the_rest),
    WEFT_TEST(process_failure_cancels_the_rest),
    WEFT_TEST(scope_cancel_from_another_thread_cancels_every_kind),
    WEFT_TEST(cancel_from_inside_a_task),
    WEFT_TEST(deadline_cancels_and_join_says_etimedout),
    WEFT_TEST(join_timeout_is_ebusy_and_release_refuses_live_tasks),
    WEFT_TEST(nested_scope_is_canceled_with_its_parent),
    WEFT_TEST(child_scope_says_the_parents_deadline_came),
    WEFT_TEST(nested_failure_reaches_the_parent_through_its_task),
    WEFT_TEST(nested_scope_keeps_its_parents_deadline),
    WEFT_TEST(child_join_forever_outlives_the_parents_deadline),
    WEFT_TEST(join_from_a_coroutine),
    WEFT_TEST(thread_task_returning_before_its_coroutines_ran),
    WEFT_TEST(cancel_races_starts_and_ends),
    WEFT_TEST(join_never_ends_under_a_start),
    WEFT_TEST(out_of_memory_anywhere_is_clean),
    WEFT_TEST(fork_child_sees_the_scope_broken),
    WEFT_TEST(dump_shows_a_scope_joiner),
    WEFT_TEST(plain_threads_unrun_coroutine_ends_in_the_scope),
    WEFT_TEST(coroutine_canceled_before_it_ran_ends_in_the_scope),
    WEFT_TEST(hubs_stop_ends_the_scopes_coroutines),
    WEFT_TEST(task_codes_are_told_apart_from_joins_statuses),
};

WEFT_TEST_MAIN(cases)
