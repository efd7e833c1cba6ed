/*
 * The thread-pool executor: submit/result, task errors with messages, map, shutdown (wait,
 * cancel_futures, timeout, from inside a task), destroy without shutdown, lazy workers and
 * max_workers, initializer (and the broken pool), thread names, cooperative cancellation of a
 * running task, callbacks, stress, and out-of-memory. Mirrors CPython's
 * Lib/test/test_concurrent_futures/ (executor.py ExecutorTest, test_thread_pool.py,
 * test_shutdown.py, test_init.py); each case names the one it follows. Exit and fork are in
 * test_pool_lifecycle.c.
 */
#include "weft_test.h"

#include "thread/thread_internal.h" /* the registry lock, to hold a worker's start */

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ITEM(i)  ((void *)(intptr_t)(i))
#define VALUE(p) ((intptr_t)(p))

/* The task's error of a future that is done, asked without waiting; fails the case if f is
 * not done. */
static int error_of(weft_future_t *f)
{
    int code = INT32_MIN;
    assert_int_equal(weft_future_error(f, 0, &code), 0);
    return code;
}
static weft_executor_t *pool(size_t workers)
{
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(workers, NULL, &ex), 0);
    assert_non_null(ex);
    return ex;
}

static void finish(weft_executor_t *ex)
{
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* ---- tasks ------------------------------------------------------------------------------ */

static int square(void *arg, void **result)
{
    *result = ITEM(VALUE(arg) * VALUE(arg));
    return 0;
}

static int fail_odd(void *arg, void **result)
{
    if (VALUE(arg) % 2)
        return weft_future_fail_current(WEFT_ERANGE, "odd argument %ld", (long)VALUE(arg));
    *result = arg;
    return 0;
}

/* Waits for the event given as arg; returns what the wait returned. */
static int wait_event(void *arg, void **result)
{
    (void)result;
    return weft_event_wait(arg, WEFT_FOREVER);
}

static _Atomic int ran;

static int count_run(void *arg, void **result)
{
    (void)arg;
    (void)result;
    atomic_fetch_add(&ran, 1);
    return 0;
}

/* ---- submit and result ----------------------------------------------------------------- */

/* ExecutorTest.test_submit / test_submit_keyword: the future gives the task's result. */
static void submit_and_result(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(2);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, square, ITEM(7), &f), 0);
    void *v;
    assert_int_equal(weft_future_result(f, WEFT_FOREVER, &v), 0);
    assert_int_equal(VALUE(v), 49);
    assert_int_equal(weft_future_state(f), WEFT_FUTURE_FINISHED);
    weft_future_release(f);
    assert_int_equal(weft_executor_submit(ex, count_run, NULL, NULL), 0); /* no handle */
    finish(ex);
}

/* test_future.test_exception_with_success in a pool: a failing task's code and message reach
 * result, error and error_message. */
static void task_error_and_message(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(2);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, fail_odd, ITEM(3), &f), 0);
    void *v = ITEM(1);
    assert_int_equal(weft_future_result(f, WEFT_FOREVER, &v), WEFT_ERANGE);
    assert_null(v);
    assert_int_equal(error_of(f), WEFT_ERANGE);
    assert_string_equal(weft_future_error_message(f), "odd argument 3");
    weft_future_release(f);
    assert_int_equal(weft_future_fail_current(WEFT_EIO, "outside a task"),
                     WEFT_EIO); /* only returns */
    finish(ex);
}

/* ExecutorTest.test_map / test_map_exception / test_map_timeout: results in argument order;
 * the first failure in order stops it, with the results before it stored; a timeout. */
static void map_in_order_failure_and_timeout(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(3);
    void *args[20], *results[20];
    for (int i = 0; i < 20; i++) args[i] = ITEM(i);
    size_t nd;
    assert_int_equal(weft_executor_map(ex, square, args, 20, results, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 20);
    for (int i = 0; i < 20; i++) assert_int_equal(VALUE(results[i]), i * i);

    args[0] = ITEM(0);
    args[1] = ITEM(2);
    args[2] = ITEM(5); /* odd: fails */
    assert_int_equal(weft_executor_map(ex, fail_odd, args, 4, results, WEFT_FOREVER, &nd),
                     WEFT_ERANGE);
    assert_int_equal(nd, 2);

    weft_event_t never;
    weft_event_init(&never);
    void *blocks[2] = {&never, &never};
    assert_int_equal(weft_executor_map(ex, wait_event, blocks, 2, results, 0.05, &nd),
                     WEFT_ETIMEDOUT);
    assert_int_equal(nd, 0);
    weft_event_set(&never); /* the running ones finish */
    assert_int_equal(weft_executor_map(ex, square, NULL, 0, results, 0, &nd), 0);
    assert_int_equal(weft_executor_map(NULL, square, args, 1, results, 0, &nd), WEFT_EINVAL);
    assert_int_equal(weft_executor_map(ex, square, NULL, 1, results, 0, &nd), WEFT_EINVAL);
    finish(ex);
}

/* A call that counts its starts, then sleeps 0.2 s (a canceled sleep ends at once). */
static _Atomic int map_starts;
static int count_then_sleep(void *arg, void **result)
{
    (void)arg;
    atomic_fetch_add(&map_starts, 1);
    weft_time_sleep(0.2);
    *result = NULL;
    return 0;
}

/* A map that times out on its first call (running on the only worker) cancels the queued
 * ones before it stops the running one, so the worker it frees finds none of them: exactly
 * one call ever starts. (Canceling in argument order stopped the running call first and its
 * worker started the next one in 9 of 20 rounds.) */
static void map_timeout_starts_no_queued_call(void **state)
{
    (void)state;
    for (int round = 0; round < 10; round++) {
        atomic_store(&map_starts, 0);
        weft_executor_t *ex = pool(1);
        void *args[6] = {0}, *results[6];
        size_t nd;
        assert_int_equal(weft_executor_map(ex, count_then_sleep, args, 6, results, 0.05, &nd),
                         WEFT_ETIMEDOUT);
        assert_int_equal(nd, 0);
        finish(ex);
        assert_int_equal(atomic_load(&map_starts), 1);
    }
}

/* n so large that n pointers overflow a size_t: WEFT_ENOMEM, not a short allocation. */
static void map_of_an_impossible_count_is_enomem(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(1);
    void *args[1] = {0}, *results[1];
    size_t nd = 7;
    assert_int_equal(
        weft_executor_map(ex, square, args, SIZE_MAX / sizeof(void *) + 2, results, 0, &nd),
        WEFT_ENOMEM);
    assert_int_equal(nd, 0);
    assert_int_equal(weft_executor_map(ex, square, args, SIZE_MAX, results, 0, &nd), WEFT_ENOMEM);
    finish(ex);
}

/* ThreadPoolExecutorTest.test_executor_map_current_future_cancel: map with timeout 0 behind a
 * busy worker times out on its first call, and neither call ever runs: the one it timed out on
 * and the one after are both cancelled (CPython's _result_or_cancel cancels the future whose
 * result() raised; weft's header: "after cancelling the calls not yet started"). */
static void map_timeout_cancels_the_rest(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    weft_executor_t *ex = pool(1);
    weft_event_t stop;
    weft_event_init(&stop);
    weft_future_t *first;
    assert_int_equal(weft_executor_submit(ex, wait_event, &stop, &first), 0);
    void *args[2] = {ITEM(2), ITEM(3)}, *results[2];
    size_t nd = 9;
    assert_int_equal(weft_executor_map(ex, count_run, args, 2, results, 0, &nd), WEFT_ETIMEDOUT);
    assert_int_equal(nd, 0);
    weft_event_set(&stop);
    assert_int_equal(weft_future_result(first, WEFT_FOREVER, NULL), 0);
    weft_future_release(first);
    finish(ex);
    int n = atomic_load(&ran);
    if (n) fail_msg("%d of map's 2 calls ran after map timed out (expected 0: both cancelled)", n);
}

/* test_run_after_shutdown for map: the submit error comes back, nothing is stored or run. */
static void map_on_shut_down_pool(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    weft_executor_t *ex = pool(2);
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    void *args[3] = {NULL, NULL, NULL}, *results[3];
    size_t nd = 9;
    assert_int_equal(weft_executor_map(ex, count_run, args, 3, results, WEFT_FOREVER, &nd),
                     WEFT_ESHUTDOWN);
    assert_int_equal(nd, 0);
    assert_int_equal(atomic_load(&ran), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* ExecutorTest.test_max_workers_negative, in C terms (weft's 0 is the default, see
 * default_max_workers): bad options and NULLs are WEFT_EINVAL, out-pointers cleared. */
static void bad_arguments(void **state)
{
    (void)state;
    weft_executor_t *ex = ITEM(1);
    weft_thread_pool_opts_t tiny_stack = {.stack_size = 1024};
    weft_thread_pool_opts_t nan_exit = {.exit_timeout = NAN};
    assert_int_equal(weft_thread_pool_create(1, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_thread_pool_create(1, &tiny_stack, &ex), WEFT_EINVAL);
    assert_null(ex);
    assert_int_equal(weft_thread_pool_create(1, &nan_exit, &ex), WEFT_EINVAL);
    weft_future_t *f = ITEM(1);
    assert_int_equal(weft_executor_submit(NULL, square, NULL, &f), WEFT_EINVAL);
    assert_null(f);
    ex = pool(1);
    assert_int_equal(weft_executor_submit(ex, NULL, NULL, &f), WEFT_EINVAL);
    assert_int_equal(weft_executor_shutdown(NULL, true, false, 0), WEFT_EINVAL);
    assert_int_equal(weft_executor_shutdown(ex, true, false, NAN), WEFT_EINVAL);
    assert_int_equal(weft_executor_release(NULL), WEFT_EINVAL);
    finish(ex);
}

/* ---- shutdown and destroy ------------------------------------------------------------- */

/* test_shutdown.test_run_after_shutdown / test_submit_after_interpreter_shutdown: submit after
 * shutdown fails with RuntimeError (WEFT_ESHUTDOWN); shutdown may be repeated. */
static void submit_after_shutdown_fails(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(2);
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    weft_future_t *f = ITEM(1);
    assert_int_equal(weft_executor_submit(ex, square, ITEM(1), &f), WEFT_ESHUTDOWN);
    assert_null(f);
    assert_int_equal(weft_executor_shutdown(ex, true, true, 0), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* test_shutdown.test_hang_issue12364 / ThreadPoolShutdownTest.test_threads_terminate: shutdown
 * with wait lets every queued task run and joins the workers. */
static void shutdown_wait_runs_queued_tasks(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    weft_executor_t *ex = pool(2);
    weft_event_t go;
    weft_event_init(&go);
    weft_future_t *blocker;
    assert_int_equal(weft_executor_submit(ex, wait_event, &go, &blocker), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(weft_executor_submit(ex, count_run, NULL, NULL), 0);
    weft_event_set(&go);
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    assert_int_equal(atomic_load(&ran), 50);
    assert_true(weft_future_done(blocker));
    weft_future_release(blocker);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* test_shutdown.test_cancel_futures: shutdown(cancel_futures) cancels what has not started;
 * the running task finishes. */
static void shutdown_cancel_futures(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    weft_executor_t *ex = pool(1);
    weft_event_t go;
    weft_event_init(&go);
    weft_future_t *running, *queued[5];
    assert_int_equal(weft_executor_submit(ex, wait_event, &go, &running), 0);
    while (!weft_future_running(running)) sched_yield();
    for (int i = 0; i < 5; i++)
        assert_int_equal(weft_executor_submit(ex, count_run, NULL, &queued[i]), 0);
    assert_int_equal(weft_executor_shutdown(ex, false, true, 0), 0);
    for (int i = 0; i < 5; i++) {
        assert_true(weft_future_cancelled(queued[i]));
        assert_int_equal(weft_future_result(queued[i], 0, NULL), WEFT_ECANCELED);
        weft_future_release(queued[i]);
    }
    assert_false(weft_future_done(running));
    weft_event_set(&go);
    assert_int_equal(weft_future_result(running, WEFT_FOREVER, NULL), 0);
    weft_future_release(running);
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    assert_int_equal(atomic_load(&ran), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* shutdown's timeout (weft's addition): a wait that ends first returns WEFT_ETIMEDOUT, the
 * shutdown stands, and a later call waits again. */
static void shutdown_timeout(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(1);
    weft_event_t go;
    weft_event_init(&go);
    assert_int_equal(weft_executor_submit(ex, wait_event, &go, NULL), 0);
    assert_int_equal(weft_executor_shutdown(ex, true, false, 0.05), WEFT_ETIMEDOUT);
    assert_int_equal(weft_executor_submit(ex, square, NULL, NULL), WEFT_ESHUTDOWN);
    weft_event_set(&go);
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

static int shut_own_pool(void *arg, void **result)
{
    (void)result;
    return weft_executor_shutdown(arg, true, false, 10);
}

/* test_shutdown.test_shutdown_no_wait / calling shutdown from a worker: it does not wait for
 * its own task, so it cannot deadlock. */
static void shutdown_from_inside_a_task(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(2);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, shut_own_pool, ex, &f), 0);
    assert_int_equal(weft_future_result(f, WEFT_FOREVER, NULL), 0);
    weft_future_release(f);
    finish(ex);
}

/* ThreadPoolShutdownTest.test_shutdown_no_wait: shutdown(wait=False) returns at once; the
 * tasks already submitted still complete with their results; a later shutdown(wait) joins. */
static void shutdown_no_wait_tasks_still_complete(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(5);
    weft_future_t *fs[10];
    for (int i = 0; i < 10; i++)
        assert_int_equal(weft_executor_submit(ex, square, ITEM(i - 5), &fs[i]), 0);
    assert_int_equal(weft_executor_shutdown(ex, false, false, 0), 0);
    for (int i = 0; i < 10; i++) {
        void *v;
        assert_int_equal(weft_future_result(fs[i], WEFT_FOREVER, &v), 0);
        assert_int_equal(VALUE(v), (i - 5) * (i - 5));
        weft_future_release(fs[i]);
    }
    finish(ex);
}

/* test_hang_gh94440: a future submitted and cancelled right before shutdown(wait=True) does
 * not make the shutdown hang. */
static void shutdown_after_cancelled_submit(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    weft_executor_t *ex = pool(1);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, square, ITEM(1), &f), 0);
    assert_int_equal(weft_future_result(f, WEFT_FOREVER, NULL), 0);
    weft_future_release(f);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(weft_executor_submit(ex, count_run, NULL, &f), 0);
        int rc = weft_future_cancel(f); /* 0, or the worker was quicker */
        assert_true(rc == 0 || rc == WEFT_EBUSY || rc == WEFT_EALREADY);
        weft_future_release(f);
    }
    assert_int_equal(weft_executor_shutdown(ex, true, false, 30), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

typedef struct shutter {
    weft_executor_t *ex;
    int rc;
    pthread_t tid;
} shutter_t;

static void *shut_and_wait(void *p)
{
    shutter_t *s = p;
    s->rc = weft_executor_shutdown(s->ex, true, false, WEFT_FOREVER);
    return NULL;
}

/* No direct CPython test (ExecutorShutdownTest's shutdowns are sequential). shutdown "may be
 * called concurrently from any thread": two threads waiting in
 * shutdown(wait) for the same blocked task both return 0 once it is released. */
static void shutdown_wait_from_two_threads(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(2);
    weft_event_t go;
    weft_event_init(&go);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, wait_event, &go, &f), 0);
    shutter_t sh[2];
    for (int i = 0; i < 2; i++) {
        sh[i] = (shutter_t){.ex = ex, .rc = 1};
        sh[i].tid = weft_test_start(shut_and_wait, &sh[i]);
    }
    int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
    while (weft_executor_submit(ex, square, NULL, NULL) != WEFT_ESHUTDOWN) {
        assert_true(weft_time_monotonic_ns() < give_up); /* the shutdowns have begun */
        sched_yield();
    }
    weft_event_set(&go);
    for (int i = 0; i < 2; i++) {
        weft_test_join(sh[i].tid);
        assert_int_equal(sh[i].rc, 0);
    }
    assert_true(weft_future_done(f));
    weft_future_release(f);
    assert_int_equal(weft_executor_release(ex), 0);
}

typedef struct last_task {
    weft_event_t done;
    _Atomic int count;
} last_task_t;

static int count_then_signal(void *arg, void **result)
{
    (void)result;
    last_task_t *l = arg;
    if (atomic_fetch_add(&l->count, 1) + 1 == 20) weft_event_set(&l->done);
    return 0;
}

/* test_shutdown.test_del_shutdown / gh-80961's counterpart: destroy without shutdown returns at
 * once; the queued tasks still run; the workers then leave and free the pool (the leak guard
 * checks threads and memory). */
static void destroy_without_shutdown(void **state)
{
    (void)state;
    size_t threads_before = weft_thread_active_count();
    weft_executor_t *ex = pool(2);
    static last_task_t l;
    weft_event_init(&l.done);
    atomic_store(&l.count, 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(weft_executor_submit(ex, count_then_signal, &l, NULL), 0);
    assert_int_equal(weft_executor_release(ex), 0);
    assert_int_equal(weft_event_wait(&l.done, WEFT_FOREVER), 0);
    int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
    while (weft_thread_active_count() > threads_before) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
}

/* ---- workers ----------------------------------------------------------------------------- */

/* ThreadPoolExecutorTest.test_idle_thread_reuse / test_saturation: one task at a time uses one
 * worker; a flood never starts more than max_workers. */
static void workers_start_lazily_up_to_max(void **state)
{
    (void)state;
    size_t base = weft_thread_active_count();
    weft_executor_t *ex = pool(3);
    assert_int_equal(weft_thread_active_count(), base); /* none yet */
    weft_future_t *first;
    assert_int_equal(weft_executor_submit(ex, square, ITEM(2), &first), 0);
    assert_int_equal(weft_thread_active_count(), base + 1); /* one submit, one worker */
    assert_int_equal(weft_future_result(first, WEFT_FOREVER, NULL), 0);
    weft_future_release(first);
    for (int i = 0; i < 10; i++) {
        weft_future_t *f;
        assert_int_equal(weft_executor_submit(ex, square, ITEM(i), &f), 0);
        assert_int_equal(weft_future_result(f, WEFT_FOREVER, NULL), 0);
        weft_future_release(f);
        /* The worker that finished counts as idle only once it is back at the FIFO; a submit
         * that comes first starts another (Python's _adjust_thread_count races the same way;
         * CI's ASan run started all three). Never more than max_workers. */
        assert_true(weft_thread_active_count() <= base + 3);
    }
    weft_event_t go;
    weft_event_init(&go);
    weft_future_t *fs[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(weft_executor_submit(ex, wait_event, &go, &fs[i]), 0);
    int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
    int running = 0;
    while (running < 3) { /* all three workers get busy */
        assert_true(weft_time_monotonic_ns() < give_up);
        running = 0;
        for (int i = 0; i < 8; i++) running += weft_future_running(fs[i]);
        sched_yield();
    }
    assert_int_equal(weft_thread_active_count(), base + 3);
    assert_int_equal(running, 3);
    weft_event_set(&go);
    assert_int_equal(weft_future_wait(fs, 8, WEFT_ALL_COMPLETED, WEFT_FOREVER, NULL), 0);
    for (int i = 0; i < 8; i++) weft_future_release(fs[i]);
    finish(ex);
}

static weft_barrier_t meet_barrier;

static int meet(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = weft_barrier_wait(&meet_barrier, 10);
    return rc < 0 ? rc : 0;
}

/* ThreadPoolExecutorTest.test_saturation / test_idle_thread_reuse, as behaviour: a burst of
 * max_workers tasks that can only finish together (they meet at a barrier) submitted to a
 * pool whose workers are idle must get all max_workers workers, whether the idle ones are
 * parked or spinning. CPython gives each submit its own idle worker (the idle semaphore) or a
 * new thread.
 * The idle worker's spin is made long here (WEFT_SPIN_NS, read once per process, before any
 * wait) so that every round hits the window in which a worker spins: the behaviour must not
 * depend on the spin budget. Seen: the submits that arrive while one worker spins are all
 * queued for it and start no worker, and the parked ones are not woken for the backlog (only
 * one is handed the next task), so tasks wait in the queue behind blocked ones although
 * max_workers permits running them: the barrier times out (WEFT_ETIMEDOUT / WEFT_EBROKEN). */
static void burst_runs_on_all_workers(void **state)
{
    (void)state;
    setenv("WEFT_SPIN_NS", "100000000", 0);
    enum { WORKERS = 4, ROUNDS = 10 };
    weft_executor_t *ex = pool(WORKERS);
    weft_barrier_init(&meet_barrier, WORKERS, NULL, NULL);
    int failed_round = -1;
    for (int round = 0; round < ROUNDS && failed_round < 0; round++) {
        if (round == 0) { /* one idle worker first (test_idle_thread_reuse) */
            weft_future_t *f;
            assert_int_equal(weft_executor_submit(ex, square, ITEM(1), &f), 0);
            assert_int_equal(weft_future_result(f, WEFT_FOREVER, NULL), 0);
            weft_future_release(f);
        }
        weft_future_t *fs[WORKERS];
        for (int i = 0; i < WORKERS; i++)
            assert_int_equal(weft_executor_submit(ex, meet, NULL, &fs[i]), 0);
        for (int i = 0; i < WORKERS; i++) {
            if (weft_future_result(fs[i], WEFT_FOREVER, NULL) != 0) failed_round = round;
            weft_future_release(fs[i]);
        }
        if (failed_round >= 0) weft_barrier_reset(&meet_barrier);
    }
    finish(ex);
    weft_barrier_destroy(&meet_barrier);
    if (failed_round >= 0)
        fail_msg("round %d: %d tasks that must run together did not all get a worker of %d",
                 failed_round, WORKERS, WORKERS);
}

/* ThreadPoolExecutorTest.test_default_workers: max_workers 0 is min(32, CPUs + 4). */
static void default_max_workers(void **state)
{
    (void)state;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int expect = (int)(cpus + 4 < 32 ? cpus + 4 : 32);
    size_t base = weft_thread_active_count();
    weft_executor_t *ex = pool(0);
    weft_event_t go;
    weft_event_init(&go);
    enum { N = 40 };
    weft_future_t *fs[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(weft_executor_submit(ex, wait_event, &go, &fs[i]), 0);
    int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
    int running;
    do {
        assert_true(weft_time_monotonic_ns() < give_up);
        running = 0;
        for (int i = 0; i < N; i++) running += weft_future_running(fs[i]);
        sched_yield();
    } while (running < expect);
    assert_int_equal(running, expect);
    assert_int_equal(weft_thread_active_count(), base + (size_t)expect);
    weft_event_set(&go);
    for (int i = 0; i < N; i++) {
        assert_int_equal(weft_future_result(fs[i], WEFT_FOREVER, NULL), 0);
        weft_future_release(fs[i]);
    }
    finish(ex);
}

static weft_barrier_t name_barrier;

/* The comm (what top, ps and gdb show) of the calling thread, without its newline. */
static void own_comm(char *buf, size_t cap)
{
    FILE *f = fopen("/proc/thread-self/comm", "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, (int)cap, f));
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

typedef struct named {
    char name[64], comm[32];
} named_t;

/* Records its worker's weft name and comm, once every worker is busy (so each of the pool's
 * n tasks runs on a worker of its own). */
static int names_after_barrier(void *arg, void **result)
{
    (void)result;
    named_t *out = arg;
    int rc = weft_barrier_wait(&name_barrier, 30);
    if (rc < 0) return rc;
    snprintf(out->name, sizeof out->name, "%s", weft_thread_name(weft_thread_current()));
    own_comm(out->comm, sizeof out->comm);
    return 0;
}

/* Runs n tasks on a pool of n workers made with opts; checks that the workers are named
 * expect_0, expect_1, ... (each exactly once), as threads and in /proc/self/task/<tid>/comm. */
static void check_worker_names(const weft_thread_pool_opts_t *opts, size_t n,
                               const char *const *expect)
{
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(n, opts, &ex), 0);
    weft_barrier_init(&name_barrier, n, NULL, NULL);
    named_t got[12];
    weft_future_t *fs[12];
    assert_true(n <= 12);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(weft_executor_submit(ex, names_after_barrier, &got[i], &fs[i]), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(weft_future_result(fs[i], WEFT_FOREVER, NULL), 0);
        weft_future_release(fs[i]);
    }
    for (size_t k = 0; k < n; k++) {
        assert_true(strlen(expect[k]) <= 15);
        int found = 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(got[i].name, expect[k]) == 0) {
                assert_string_equal(got[i].comm, expect[k]);
                found++;
            }
        assert_int_equal(found, 1);
    }
    finish(ex);
    weft_barrier_destroy(&name_barrier);
}

/* test_thread_names_assigned / test_thread_names_default: workers are "<prefix>_0",
 * "<prefix>_1", ... in at most the 15 characters the OS keeps (a longer prefix is cut so that
 * the number fits), "weft_pool_<n>" by default. Before, the default was
 * "ThreadPoolExecutor-<k>_<n>", shown as "ThreadPoolExecu" for every worker of every pool. */
static void thread_names(void **state)
{
    (void)state;
    const char *const by_default[] = {"weft_pool_0", "weft_pool_1"};
    check_worker_names(NULL, 2, by_default);
    weft_thread_pool_opts_t opts = WEFT_THREAD_POOL_OPTS_INIT;
    opts.thread_name_prefix = "";
    check_worker_names(&opts, 2, by_default);
    opts.thread_name_prefix = "io";
    check_worker_names(&opts, 2, (const char *const[]){"io_0", "io_1"});
    opts.thread_name_prefix = "SpecialPool-0123456789-0123456789"; /* cut to fit "_<n>" */
    const char *const cut[] = {"SpecialPool-0_0", "SpecialPool-0_1", "SpecialPool-0_2",
                               "SpecialPool-0_3", "SpecialPool-0_4", "SpecialPool-0_5",
                               "SpecialPool-0_6", "SpecialPool-0_7", "SpecialPool-0_8",
                               "SpecialPool-0_9", "SpecialPool-_10", "SpecialPool-_11"};
    check_worker_names(&opts, 12, cut);
    opts.thread_name_prefix = "fourteen-chars";
    check_worker_names(&opts, 1, (const char *const[]){"fourteen-char_0"});
}

static _Atomic int inits;
static _Thread_local int init_status; /* INITIALIZER_STATUS, per worker */

static int init_ok(void *arg)
{
    assert_ptr_equal(arg, ITEM(5));
    atomic_fetch_add(&inits, 1);
    init_status = 1;
    return 0;
}

static int get_init_status(void *arg, void **result)
{
    (void)arg;
    *result = ITEM(init_status);
    return 0;
}

static int init_fails(void *arg)
{
    (void)arg;
    return WEFT_EIO;
}

/* test_init.InitializerMixin.test_initializer: each worker runs the initializer once, before
 * its first task. */
static void initializer_runs_once_per_worker(void **state)
{
    (void)state;
    atomic_store(&inits, 0);
    weft_thread_pool_opts_t opts = {.initializer = init_ok, .initarg = ITEM(5)};
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(2, &opts, &ex), 0);
    void *args[30], *results[30];
    for (int i = 0; i < 30; i++) args[i] = ITEM(i);
    assert_int_equal(weft_executor_map(ex, square, args, 30, results, WEFT_FOREVER, NULL), 0);
    /* test_initializer: every task sees its worker initialized. */
    assert_int_equal(weft_executor_map(ex, get_init_status, args, 30, results, WEFT_FOREVER, NULL),
                     0);
    for (int i = 0; i < 30; i++) assert_int_equal(VALUE(results[i]), 1);
    finish(ex);
    assert_true(atomic_load(&inits) >= 1 && atomic_load(&inits) <= 2);
}

/* test_init.FailingInitializerMixin.test_initializer: a failing initializer breaks the pool:
 * queued futures fail with BrokenThreadPool (WEFT_EBROKEN), and so do later submits. */
static void failing_initializer_breaks_the_pool(void **state)
{
    (void)state;
    weft_thread_pool_opts_t opts = {.initializer = init_fails};
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(2, &opts, &ex), 0);
    weft_future_t *fs[5];
    int submitted = 0;
    for (int i = 0; i < 5; i++) {
        int rc = weft_executor_submit(ex, square, ITEM(i), &fs[submitted]);
        if (rc == 0)
            submitted++;
        else
            assert_int_equal(rc, WEFT_EBROKEN); /* the break may already have happened */
    }
    for (int i = 0; i < submitted; i++) {
        assert_int_equal(weft_future_result(fs[i], WEFT_FOREVER, NULL), WEFT_EBROKEN);
        assert_non_null(weft_future_error_message(fs[i]));
        weft_future_release(fs[i]);
    }
    assert_int_equal(weft_executor_submit(ex, square, NULL, NULL), WEFT_EBROKEN);
    finish(ex);
}

/* ---- cancellation --------------------------------------------------------------------------- */

typedef struct coop {
    weft_event_t started, never;
    _Atomic int saw_request, wait_rc;
} coop_t;

static int cooperative(void *arg, void **result)
{
    (void)result;
    coop_t *c = arg;
    weft_event_set(&c->started);
    int rc = weft_event_wait(&c->never, WEFT_FOREVER); /* ends with WEFT_ECANCELED */
    atomic_store(&c->wait_rc, rc);
    atomic_store(&c->saw_request, weft_cancel_requested());
    return rc;
}

static int report_cancel_flag(void *arg, void **result)
{
    (void)arg;
    *result = ITEM(weft_cancel_requested());
    return 0;
}

/* No CPython counterpart (Python cannot stop a running task; weft's cooperative cancel).
 * Cooperative cancellation: cancel on a RUNNING future returns WEFT_EBUSY, the task sees
 * weft_cancel_requested() and its blocking wait fails with WEFT_ECANCELED; the future finishes
 * with what the task returned; the next task on the same worker is not affected. */
static void cancel_running_task_cooperatively(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(1);
    static coop_t c;
    weft_event_init(&c.started);
    weft_event_init(&c.never);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, cooperative, &c, &f), 0);
    assert_int_equal(weft_event_wait(&c.started, WEFT_FOREVER), 0);
    assert_int_equal(weft_future_cancel(f), WEFT_EBUSY);
    assert_int_equal(weft_future_result(f, WEFT_FOREVER, NULL), WEFT_ECANCELED);
    assert_false(weft_future_cancelled(f)); /* it ran: FINISHED with the task's code */
    assert_int_equal(atomic_load(&c.wait_rc), WEFT_ECANCELED);
    assert_true(atomic_load(&c.saw_request));
    assert_int_equal(weft_future_cancel(f), WEFT_EALREADY);
    weft_future_release(f);

    void *flag;
    assert_int_equal(weft_executor_submit(ex, report_cancel_flag, NULL, &f), 0);
    assert_int_equal(weft_future_result(f, WEFT_FOREVER, &flag), 0);
    assert_null(flag); /* the same worker, a fresh task: no cancel */
    weft_future_release(f);
    assert_false(weft_cancel_requested());
    finish(ex);
}

/* test_future.test_cancel (pending in a pool): cancelling a queued future succeeds and its
 * task never runs. */
static void cancel_queued_future(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    weft_executor_t *ex = pool(1);
    weft_event_t go;
    weft_event_init(&go);
    weft_future_t *blocker, *queued;
    assert_int_equal(weft_executor_submit(ex, wait_event, &go, &blocker), 0);
    assert_int_equal(weft_executor_submit(ex, count_run, NULL, &queued), 0);
    assert_int_equal(weft_future_cancel(queued), 0);
    assert_true(weft_future_cancelled(queued));
    weft_event_set(&go);
    finish(ex);
    assert_int_equal(atomic_load(&ran), 0);
    assert_int_equal(weft_future_result(blocker, 0, NULL), 0);
    weft_future_release(blocker);
    weft_future_release(queued);
}

typedef struct poller {
    weft_event_t started;
    _Atomic long spins;
} poller_t;

/* Never blocks: polls weft_cancel_requested() and returns 42 once asked to stop. */
static int poll_for_cancel(void *arg, void **result)
{
    poller_t *p = arg;
    weft_event_set(&p->started);
    while (!weft_cancel_requested()) {
        atomic_fetch_add(&p->spins, 1);
        sched_yield();
    }
    *result = ITEM(42);
    return 0;
}

/* No CPython counterpart (weft's cooperative cancel). A task that never blocks: cancel() returns
 * WEFT_EBUSY, the task sees weft_cancel_requested() and ends as it chooses (here a success: the
 * future is FINISHED with 42, not CANCELLED); the next task on that worker starts with no cancel.
 */
static void cancel_running_task_that_polls(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(1);
    static poller_t p;
    weft_event_init(&p.started);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, poll_for_cancel, &p, &f), 0);
    assert_int_equal(weft_event_wait(&p.started, WEFT_FOREVER), 0);
    assert_int_equal(weft_future_cancel(f), WEFT_EBUSY);
    void *v;
    assert_int_equal(weft_future_result(f, WEFT_FOREVER, &v), 0);
    assert_int_equal(VALUE(v), 42);
    assert_int_equal(weft_future_state(f), WEFT_FUTURE_FINISHED);
    assert_int_equal(weft_future_cancel(f), WEFT_EALREADY);
    weft_future_release(f);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(weft_executor_submit(ex, report_cancel_flag, NULL, &f), 0);
        assert_int_equal(weft_future_result(f, WEFT_FOREVER, &v), 0);
        assert_null(v);
        weft_future_release(f);
    }
    finish(ex);
}

typedef struct by_hand {
    weft_event_t started, go;
} by_hand_t;

static int fail_after_go(void *arg, void **result)
{
    (void)result;
    by_hand_t *b = arg;
    weft_event_set(&b->started);
    weft_event_wait(&b->go, WEFT_FOREVER);
    return weft_future_fail_current(WEFT_ERANGE, "from the task");
}

static int succeed_after_go(void *arg, void **result)
{
    by_hand_t *b = arg;
    weft_event_set(&b->started);
    weft_event_wait(&b->go, WEFT_FOREVER);
    *result = ITEM(7);
    return 0;
}

/* test_future.test_multiple_set_result / test_multiple_set_exception with a pool future. A
 * pool future completed by hand while its task runs (set_error / set_result are callable
 * on any future, from any thread: the header gives WEFT_EALREADY only for FINISHED or
 * CANCELLED, so a RUNNING one accepts). The first completion must stand, as the header says
 * of every final state and as CPython does (the worker's own set_result then raises
 * InvalidStateError): the task's later return must not overwrite the code, value or message
 * that waiters already saw, nor free the message a reader holds. */
static void hand_completed_pool_future_keeps_first_outcome(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(1);
    static by_hand_t b;
    weft_event_init(&b.started);
    weft_event_init(&b.go);
    weft_future_t *f, *g;
    assert_int_equal(weft_executor_submit(ex, fail_after_go, &b, &f), 0);
    assert_int_equal(weft_event_wait(&b.started, WEFT_FOREVER), 0);
    assert_int_equal(weft_future_set_error(f, WEFT_EIO, "by hand"), 0);
    const char *held = weft_future_error_message(f); /* valid while we hold f */
    assert_string_equal(held, "by hand");
    weft_event_set(&b.go);
    assert_int_equal(weft_executor_submit(ex, square, ITEM(2), &g), 0); /* runs after f's task */
    assert_int_equal(weft_future_result(g, WEFT_FOREVER, NULL), 0);
    weft_future_release(g);
    int code = error_of(f);
    char now[32], still[32];
    snprintf(now, sizeof now, "%s", weft_future_error_message(f));
    snprintf(still, sizeof still, "%s", held); /* ASan: heap-use-after-free if it was replaced */
    for (char *c = still; *c; c++)
        if (*c < ' ' || *c > '~') *c = '?';
    weft_future_release(f);

    weft_event_init(&b.started);
    weft_event_init(&b.go);
    assert_int_equal(weft_executor_submit(ex, succeed_after_go, &b, &f), 0);
    assert_int_equal(weft_event_wait(&b.started, WEFT_FOREVER), 0);
    assert_int_equal(weft_future_set_result(f, ITEM(42)), 0);
    weft_event_set(&b.go);
    assert_int_equal(weft_executor_submit(ex, square, ITEM(2), &g), 0);
    assert_int_equal(weft_future_result(g, WEFT_FOREVER, NULL), 0);
    weft_future_release(g);
    void *v = NULL;
    int rc = weft_future_result(f, 0, &v);
    weft_future_release(f);
    finish(ex);

    bool first_kept = code == WEFT_EIO && !strcmp(now, "by hand") && !strcmp(still, "by hand");
    bool value_kept = rc == 0 && VALUE(v) == 42;
    if (!first_kept || !value_kept)
        fail_msg("set_error(EIO, \"by hand\") on a RUNNING future whose task then fails with "
                 "ERANGE \"from the task\": now %s \"%s\" (a held pointer reads \"%.8s\"); "
                 "set_result(42) on one whose task then returns 7: now %s, %ld",
                 weft_error_name(code), now, still, weft_error_name(rc), (long)VALUE(v));
}

/* ---- callbacks ------------------------------------------------------------------------------ */

static _Atomic long callback_sum;

static int add_result(weft_future_t *f, void *arg)
{
    (void)arg;
    void *v;
    int rc = weft_future_result(f, 0, &v);
    if (rc == 0) atomic_fetch_add(&callback_sum, (long)VALUE(v));
    return rc;
}

/* The notes' pool.submit(func, *args).add_done_callback(func1): callbacks of pool futures run
 * (in the worker, or at once if already done), one per future. */
static void pool_future_callbacks(void **state)
{
    (void)state;
    atomic_store(&callback_sum, 0);
    weft_executor_t *ex = pool(2);
    long expect = 0;
    for (int i = 0; i < 100; i++) {
        weft_future_t *f;
        assert_int_equal(weft_executor_submit(ex, square, ITEM(i), &f), 0);
        assert_int_equal(weft_future_add_done_callback(f, add_result, NULL), 0);
        weft_future_release(f);
        expect += (long)i * i;
    }
    finish(ex);
    assert_int_equal(atomic_load(&callback_sum), expect);
}

static _Atomic int handler_calls, handler_code, after_failing;

static void on_callback_error(weft_future_t *f, int code, void *arg)
{
    (void)f;
    (void)arg;
    atomic_store(&handler_code, code);
    atomic_fetch_add(&handler_calls, 1);
}

static int failing_callback(weft_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    return WEFT_EPERM;
}

static int note_after(weft_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    atomic_fetch_add(&after_failing, 1);
    return 0;
}

/* test_done_callback_raises in a pool: a failing callback run by the worker goes to the
 * handler, the callback after it still runs, and the worker goes on with the next task. */
static void failing_callback_in_worker_is_reported(void **state)
{
    (void)state;
    atomic_store(&handler_calls, 0);
    atomic_store(&after_failing, 0);
    weft_future_set_callback_error_handler(on_callback_error, NULL);
    weft_executor_t *ex = pool(1);
    weft_event_t go;
    weft_event_init(&go);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, wait_event, &go, &f), 0);
    assert_int_equal(weft_future_add_done_callback(f, failing_callback, NULL), 0);
    assert_int_equal(weft_future_add_done_callback(f, note_after, NULL), 0);
    weft_event_set(&go); /* not done before: the worker runs both callbacks */
    weft_future_release(f);
    assert_int_equal(weft_executor_submit(ex, square, ITEM(3), &f), 0);
    void *v;
    assert_int_equal(weft_future_result(f, WEFT_FOREVER, &v), 0);
    assert_int_equal(VALUE(v), 9);
    weft_future_release(f);
    finish(ex);
    assert_int_equal(atomic_load(&handler_calls), 1);
    assert_int_equal(atomic_load(&handler_code), WEFT_EPERM);
    assert_int_equal(atomic_load(&after_failing), 1);
    weft_future_set_callback_error_handler(NULL, NULL);
}

static int submit_follow_up(void *arg, void **result)
{
    weft_future_t *inner;
    int rc = weft_executor_submit(arg, square, ITEM(6), &inner);
    if (rc == 0) *result = inner;
    return rc;
}

/* test_hang_global_shutdown_lock's submit-from-a-task (bpo-45021). Executor calls from inside
 * the executor's own tasks: a task submits a follow-up to its own
 * pool (one worker: the follow-up runs after it) and hands back its future. */
static void submit_from_inside_a_task(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(1);
    weft_future_t *outer;
    assert_int_equal(weft_executor_submit(ex, submit_follow_up, ex, &outer), 0);
    void *inner, *v;
    assert_int_equal(weft_future_result(outer, WEFT_FOREVER, &inner), 0);
    assert_int_equal(weft_future_result(inner, WEFT_FOREVER, &v), 0);
    assert_int_equal(VALUE(v), 36);
    weft_future_release(inner);
    weft_future_release(outer);
    finish(ex);
}

/* ---- wait and as_completed on pool futures ------------------------------------------------- */

static weft_future_t *made(int code)
{
    weft_future_t *f;
    assert_int_equal(weft_future_create(&f), 0);
    if (code > 0)
        assert_int_equal(weft_future_cancel(f), 0);
    else if (code < 0)
        assert_int_equal(weft_future_set_error(f, code, "made"), 0);
    else
        assert_int_equal(weft_future_set_result(f, ITEM(42)), 0);
    return f;
}

#define SUCCESSFUL 0
#define CANCELLED  1
#define EXCEPTION  WEFT_EIO

static int wait_then_fail(void *arg, void **result)
{
    (void)result;
    int rc = weft_event_wait(arg, WEFT_FOREVER);
    return rc ? rc : weft_future_fail_current(WEFT_EINVAL, "this is an exception");
}

/* ThreadPoolWaitTests (test_wait.py) with pool futures mixed with made ones. weft counts a
 * cancelled future as done at once (CPython's CANCELLED_FUTURE, cancelled but not yet
 * "notified", is an internal state with no C counterpart), so test_first_completed leaves it
 * out. */
static void wait_on_pool_futures(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(4);
    weft_future_t *ok = made(SUCCESSFUL), *cancelled = made(CANCELLED), *failed = made(EXCEPTION);
    weft_event_t e1, e2;
    weft_event_init(&e1);
    weft_event_init(&e2);
    size_t nd;

    /* test_20369: the same future twice. */
    weft_future_t *f1, *f2, *f3;
    assert_int_equal(weft_executor_submit(ex, square, ITEM(2), &f1), 0);
    weft_future_t *twice[2] = {f1, f1};
    assert_int_equal(weft_future_wait(twice, 2, WEFT_ALL_COMPLETED, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 2);
    weft_future_release(f1);

    /* test_first_completed */
    assert_int_equal(weft_executor_submit(ex, square, ITEM(21), &f1), 0);
    assert_int_equal(weft_executor_submit(ex, wait_event, &e1, &f2), 0);
    weft_future_t *first[2] = {f1, f2};
    assert_int_equal(weft_future_wait(first, 2, WEFT_FIRST_COMPLETED, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 1);
    assert_true(weft_future_done(f1));
    assert_false(weft_future_done(f2));
    weft_event_set(&e1);
    assert_int_equal(weft_future_result(f2, WEFT_FOREVER, NULL), 0);
    weft_future_release(f1);
    weft_future_release(f2);
    weft_event_clear(&e1);

    /* test_first_exception: f1 done first, then f2 fails; f3 still blocked. */
    assert_int_equal(weft_executor_submit(ex, square, ITEM(2), &f1), 0);
    assert_int_equal(weft_executor_submit(ex, wait_then_fail, &e1, &f2), 0);
    assert_int_equal(weft_executor_submit(ex, wait_event, &e2, &f3), 0);
    assert_int_equal(weft_future_result(f1, WEFT_FOREVER, NULL), 0);
    weft_event_set(&e1);
    weft_future_t *three[3] = {f1, f2, f3};
    assert_int_equal(weft_future_wait(three, 3, WEFT_FIRST_EXCEPTION, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 2);
    assert_int_equal(error_of(f2), WEFT_EINVAL);
    assert_false(weft_future_done(f3));
    weft_future_release(f1);
    weft_future_release(f2);

    /* test_first_exception_some_already_complete */
    assert_int_equal(weft_executor_submit(ex, fail_odd, ITEM(21), &f1), 0);
    weft_future_t *some[5] = {ok, cancelled, f1, f3, ok};
    assert_int_equal(weft_future_wait(some, 5, WEFT_FIRST_EXCEPTION, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 4);
    weft_future_release(f1);

    /* test_timeout: ALL_COMPLETED with one blocked, 50 ms. */
    weft_future_t *timed[4] = {cancelled, failed, ok, f3};
    assert_int_equal(weft_future_wait(timed, 4, WEFT_ALL_COMPLETED, 0.05, &nd), WEFT_ETIMEDOUT);
    assert_int_equal(nd, 3);
    weft_event_set(&e2);

    /* test_all_completed */
    assert_int_equal(weft_executor_submit(ex, fail_odd, ITEM(1), &f1), 0);
    assert_int_equal(weft_executor_submit(ex, square, ITEM(21), &f2), 0);
    weft_future_t *all[6] = {ok, cancelled, failed, f1, f2, f3};
    assert_int_equal(weft_future_wait(all, 6, WEFT_ALL_COMPLETED, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 6);
    weft_future_release(f1);
    weft_future_release(f2);
    weft_future_release(f3);

    weft_future_release(ok);
    weft_future_release(cancelled);
    weft_future_release(failed);
    finish(ex);
}

/* Python's `{executor.submit(load, url): url for url in urls}`: each future carries its input
 * in its user-data slot, and as_completed (in completion order, not submission order) and
 * weft_future_wait give back futures from which the program finds the input of every result. */
typedef struct job {
    intptr_t input;
    bool seen;
} job_t;

static void user_data_maps_results_back_to_inputs(void **state)
{
    (void)state;
    enum { N = 16 };
    weft_executor_t *ex = pool(4);
    job_t jobs[N];
    weft_future_t *fs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (job_t){.input = N - i}; /* the inputs are not the indexes */
        assert_int_equal(weft_executor_submit(ex, square, ITEM(jobs[i].input), &fs[i]), 0);
        assert_int_equal(weft_future_set_data(fs[i], &jobs[i]), 0);
    }
    weft_as_completed_t *it;
    weft_future_t *f;
    int rc, n = 0;
    assert_int_equal(weft_as_completed_create(fs, N, WEFT_FOREVER, &it), 0);
    while ((rc = weft_as_completed_next(it, &f)) == 0) {
        job_t *job = weft_future_data(f);
        assert_non_null(job);
        assert_false(job->seen);
        job->seen = true;
        void *value;
        assert_int_equal(weft_future_result(f, 0, &value), 0);
        assert_int_equal(VALUE(value), job->input * job->input);
        n++;
    }
    assert_int_equal(rc, WEFT_EEOF);
    assert_int_equal(n, N);
    weft_as_completed_release(it);
    size_t nd;
    assert_int_equal(weft_future_wait(fs, N, WEFT_ALL_COMPLETED, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, N);
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(weft_future_data(fs[i]), &jobs[i]);
        weft_future_release(fs[i]);
    }
    finish(ex);
}

/* AsCompletedTests (test_as_completed.py) with pool futures: test_no_timeout,
 * test_future_times_out (timeouts 0 and 0.1 s), test_duplicate_futures. */
static void as_completed_on_pool_futures(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(3);
    weft_future_t *ok = made(SUCCESSFUL), *cancelled = made(CANCELLED), *failed = made(EXCEPTION);
    weft_as_completed_t *it;
    weft_future_t *f, *f1, *f2;

    assert_int_equal(weft_executor_submit(ex, square, ITEM(21), &f1), 0);
    assert_int_equal(weft_executor_submit(ex, square, ITEM(7), &f2), 0);
    weft_future_t *five[5] = {cancelled, failed, ok, f1, f2};
    assert_int_equal(weft_as_completed_create(five, 5, WEFT_FOREVER, &it), 0);
    unsigned seen = 0;
    int rc;
    while ((rc = weft_as_completed_next(it, &f)) == 0)
        for (int i = 0; i < 5; i++)
            if (f == five[i]) {
                assert_false(seen & (1u << i));
                seen |= 1u << i;
            }
    assert_int_equal(rc, WEFT_EEOF);
    assert_int_equal(seen, 0x1f);
    weft_as_completed_release(it);
    weft_future_release(f1);
    weft_future_release(f2);

    weft_event_t go;
    weft_event_init(&go);
    double timeouts[2] = {0, 0.1};
    for (int t = 0; t < 2; t++) {
        assert_int_equal(weft_executor_submit(ex, wait_event, &go, &f1), 0);
        weft_future_t *four[4] = {cancelled, failed, ok, f1};
        assert_int_equal(weft_as_completed_create(four, 4, timeouts[t], &it), 0);
        int n = 0;
        while ((rc = weft_as_completed_next(it, &f)) == 0) {
            assert_ptr_not_equal(f, f1);
            n++;
        }
        assert_int_equal(rc, WEFT_ETIMEDOUT);
        assert_int_equal(n, 3);
        weft_as_completed_release(it);
        weft_future_release(f1);
    }

    assert_int_equal(weft_executor_submit(ex, wait_event, &go, &f1), 0);
    weft_future_t *thrice[3] = {f1, f1, f1};
    assert_int_equal(weft_as_completed_create(thrice, 3, WEFT_FOREVER, &it), 0);
    weft_event_set(&go);
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_ptr_equal(f, f1);
    assert_int_equal(weft_as_completed_next(it, &f), WEFT_EEOF);
    weft_as_completed_release(it);
    weft_future_release(f1);

    weft_future_release(ok);
    weft_future_release(cancelled);
    weft_future_release(failed);
    finish(ex);
}

/* ---- stress -------------------------------------------------------------------------------- */

enum { SUBMITTERS = 4, BATCH = 64 };

typedef struct flood {
    weft_executor_t *ex;
    int per; /* tasks per submitter, a multiple of BATCH */
    _Atomic long sum;
    _Atomic unsigned char *runs; /* [SUBMITTERS * per]: how many times each task ran */
} flood_t;

static flood_t *the_flood;

/* Task `id`: counts its run, returns 2 * id + 1. */
static int tagged(void *arg, void **result)
{
    atomic_fetch_add(&the_flood->runs[VALUE(arg)], 1);
    *result = ITEM(2 * VALUE(arg) + 1);
    return 0;
}

static void submitter(void *arg, int i)
{
    flood_t *fl = arg;
    weft_future_t *fs[BATCH];
    for (int done = 0; done < fl->per; done += BATCH) {
        for (int k = 0; k < BATCH; k++)
            assert_int_equal(
                weft_executor_submit(fl->ex, tagged, ITEM((long)i * fl->per + done + k), &fs[k]),
                0);
        if (i % 2) {
            size_t nd;
            assert_int_equal(weft_future_wait(fs, BATCH, WEFT_ALL_COMPLETED, WEFT_FOREVER, &nd), 0);
            assert_int_equal(nd, BATCH);
        } else {
            weft_as_completed_t *it;
            weft_future_t *f;
            int n = 0, rc;
            assert_int_equal(weft_as_completed_create(fs, BATCH, WEFT_FOREVER, &it), 0);
            while ((rc = weft_as_completed_next(it, &f)) == 0) n++;
            weft_as_completed_release(it);
            assert_int_equal(rc, WEFT_EEOF);
            assert_int_equal(n, BATCH);
        }
        for (int k = 0; k < BATCH; k++) {
            void *v;
            assert_int_equal(weft_future_result(fs[k], 0, &v), 0);
            atomic_fetch_add(&fl->sum, (long)VALUE(v));
            weft_future_release(fs[k]);
        }
    }
}

/* ---- the scheduling paths: spinner, parked workers, busy workers ---------------------------
 * A submit appends to the FIFO without the workers' lock, then picks a worker from lock-free
 * hints: the spinning worker, a parked one to wake, one to start, or none (all busy). A worker
 * parks only after counting itself and looking at the FIFO again. A lost wake-up there would
 * leave a task queued with every worker asleep: these cases would hang (and fail by timeout). */

/* Round trips from four threads at once on a pool of 2 whose workers never spin
 * (WEFT_SPIN_NS=0): every idle worker parks, so each task goes through the count-then-look
 * handshake of a parking worker against a submit appending at the same moment. */
static void round_trip(void *arg, int i)
{
    weft_executor_t *ex = arg;
    for (int k = 0; k < (SANITIZED || RUNNING_ON_VALGRIND ? 300 : 3000); k++) {
        weft_future_t *f;
        void *v;
        assert_int_equal(weft_executor_submit(ex, square, ITEM(i + k), &f), 0);
        assert_int_equal(weft_future_result(f, WEFT_FOREVER, &v), 0);
        assert_int_equal(VALUE(v), (long)(i + k) * (i + k));
        weft_future_release(f);
    }
}

static void parked_workers_are_woken_for_every_task(void **state)
{
    (void)state;
    setenv("WEFT_SPIN_NS", "0", 1); /* read once per process: this case's */
    weft_executor_t *ex = pool(2);
    weft_test_run_threads(4, round_trip, ex);
    finish(ex);
}

/* The same with the default spinning: the spinner takes tasks without a wake-up, the other
 * worker parks and is woken when a submit finds the spinner already counted on. */
static void spinning_worker_and_parked_worker_share_a_stream(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(2);
    weft_test_run_threads(4, round_trip, ex);
    finish(ex);
}

/* Fire and forget (no future handed out: the pool holds the only reference, and frees the
 * future after its task ran): every task runs once, bursts and trickles alike. */
static atomic_long forgotten_runs;

static int count_forgotten(void *arg, void **result)
{
    (void)arg, (void)result;
    atomic_fetch_add(&forgotten_runs, 1);
    return 0;
}

static void fire_and_forget_tasks_all_run(void **state)
{
    (void)state;
    const int BURST = RUNNING_ON_VALGRIND ? 500 : 5000;
    atomic_store(&forgotten_runs, 0);
    weft_executor_t *ex = pool(2);
    for (int i = 0; i < BURST; i++)
        assert_int_equal(weft_executor_submit(ex, count_forgotten, NULL, NULL), 0);
    for (int i = 0; i < 200; i++) { /* one at a time: workers go idle between them */
        assert_int_equal(weft_executor_submit(ex, count_forgotten, NULL, NULL), 0);
        while (atomic_load(&forgotten_runs) < BURST + i + 1) sched_yield();
    }
    finish(ex); /* shutdown(wait) runs what is queued */
    assert_int_equal(atomic_load(&forgotten_runs), BURST + 200);
}

/* A backlog behind busy workers: every worker is busy (max_workers reached, none parked, none
 * spinning), so a submit only queues; the workers take the backlog when their tasks end. */
static void backlog_behind_busy_workers_runs_when_they_are_free(void **state)
{
    (void)state;
    enum { WORKERS = 2, QUEUED = 50 };
    weft_executor_t *ex = pool(WORKERS);
    weft_event_t go;
    weft_event_init(&go);
    weft_future_t *busy[WORKERS], *queued[QUEUED];
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(weft_executor_submit(ex, wait_event, &go, &busy[i]), 0);
    for (int i = 0; i < WORKERS; i++)
        while (!weft_future_running(busy[i])) sched_yield();
    for (int i = 0; i < QUEUED; i++)
        assert_int_equal(weft_executor_submit(ex, square, ITEM(i), &queued[i]), 0);
    for (int i = 0; i < QUEUED; i++)
        assert_int_equal(weft_future_state(queued[i]), WEFT_FUTURE_PENDING);
    weft_event_set(&go);
    for (int i = 0; i < QUEUED; i++) {
        void *v;
        assert_int_equal(weft_future_result(queued[i], WEFT_FOREVER, &v), 0);
        assert_int_equal(VALUE(v), (long)i * i);
        weft_future_release(queued[i]);
    }
    for (int i = 0; i < WORKERS; i++) {
        assert_int_equal(weft_future_result(busy[i], WEFT_FOREVER, NULL), 0);
        weft_future_release(busy[i]);
    }
    finish(ex);
    weft_event_destroy(&go);
}

/* result() spins on the future's state first, then queues itself and parks: a task longer
 * than the spin ends the wait by its deadline (WEFT_ETIMEDOUT, the future still pending or
 * running), and a later result() gets the outcome through the park's wake-up. */
static void result_spins_then_parks_for_a_long_task(void **state)
{
    (void)state;
    setenv("WEFT_SPIN_NS", "1000000", 1); /* a 1 ms spin: the deadline below ends it */
    weft_executor_t *ex = pool(1);
    weft_event_t go;
    weft_event_init(&go);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, wait_event, &go, &f), 0);
    void *v = ITEM(1);
    assert_int_equal(weft_future_result(f, 0.0005, &v), WEFT_ETIMEDOUT); /* inside the spin */
    assert_null(v);
    assert_int_equal(weft_future_result(f, 0.01, &v), WEFT_ETIMEDOUT); /* spin, then park */
    assert_false(weft_future_done(f));
    weft_event_set(&go);
    assert_int_equal(weft_future_result(f, WEFT_FOREVER, NULL), 0);
    weft_future_release(f);
    finish(ex);
    weft_event_destroy(&go);
}

/* ---- recycled futures ----------------------------------------------------------------------
 * A pool's futures go back to the pool at their last release and are reused by its next
 * submits (not in debug builds). */

/* Futures kept past the pool's release still work, and the last of them frees the pool (the
 * leak guard checks that nothing stays allocated, ASan that nothing is touched after). */
static void futures_outlive_their_pool(void **state)
{
    (void)state;
    enum { N = 300 };
    weft_future_t *fs[N];
    weft_executor_t *ex = pool(2);
    for (int i = 0; i < N; i++)
        assert_int_equal(weft_executor_submit(ex, square, ITEM(i), &fs[i]), 0);
    for (int i = 0; i < N / 2; i++) weft_future_release(fs[i]); /* returned while it lives */
    finish(ex);
    for (int i = N / 2; i < N; i++) {
        void *v;
        assert_int_equal(weft_future_result(fs[i], WEFT_FOREVER, &v), 0);
        assert_int_equal(VALUE(v), (long)i * i);
        weft_future_release(fs[i]);
    }
}

static atomic_int stale_callbacks;

static int count_callback(weft_future_t *f, void *arg)
{
    (void)f, (void)arg;
    atomic_fetch_add(&stale_callbacks, 1);
    return 0;
}

/* A future made from a returned one starts as new: no error, message, user data, callbacks or
 * result of the one before. */
static void reused_future_starts_clean(void **state)
{
    (void)state;
    atomic_store(&stale_callbacks, 0);
    weft_executor_t *ex = pool(1);
    for (int round = 0; round < 50; round++) {
        weft_future_t *f;
        assert_int_equal(weft_executor_submit(ex, fail_odd, ITEM(2 * round + 1), &f), 0);
        assert_int_equal(weft_future_set_data(f, ITEM(7)), 0);
        assert_int_equal(weft_future_add_done_callback(f, count_callback, NULL), 0);
        assert_int_equal(weft_future_add_done_callback(f, count_callback, NULL), 0);
        assert_int_equal(weft_future_result(f, WEFT_FOREVER, NULL), WEFT_ERANGE);
        assert_non_null(weft_future_error_message(f));
        weft_future_release(f);
        assert_int_equal(weft_executor_submit(ex, square, ITEM(round), &f), 0);
        assert_null(weft_future_data(f));
        void *v;
        assert_int_equal(weft_future_result(f, WEFT_FOREVER, &v), 0);
        assert_int_equal(VALUE(v), (long)round * round);
        assert_int_equal(error_of(f), 0);
        assert_null(weft_future_error_message(f));
        weft_future_release(f);
    }
    finish(ex);
    assert_int_equal(atomic_load(&stale_callbacks), 2 * 50); /* each callback ran once */
}

/* test_pending_calls_race at scale: four submitters flood a pool of 3 (two collect with
 * wait(ALL_COMPLETED), two with as_completed). Every task ran exactly once (a count per
 * task) and every result came back once (the sum of 2 * id + 1 over all ids is n^2). */
static void stress_many_submitters(void **state)
{
    (void)state;
    flood_t fl = {pool(3), SANITIZED ? 640 : 6400, 0, NULL};
    long n = (long)SUBMITTERS * fl.per;
    fl.runs = calloc((size_t)n, 1);
    assert_non_null(fl.runs);
    the_flood = &fl;
    weft_test_run_threads(SUBMITTERS, submitter, &fl);
    finish(fl.ex);
    for (long id = 0; id < n; id++) assert_int_equal(atomic_load(&fl.runs[id]), 1);
    assert_int_equal(atomic_load(&fl.sum), n * n);
    free(fl.runs);
}

/* test_pending_calls_race: 100 tasks blocked on one Event, released at once, are all waited
 * for by wait(ALL_COMPLETED). */
static void pending_calls_race(void **state)
{
    (void)state;
    weft_executor_t *ex = pool(5);
    weft_event_t go;
    weft_event_init(&go);
    weft_future_t *fs[100];
    for (int i = 0; i < 100; i++)
        assert_int_equal(weft_executor_submit(ex, wait_event, &go, &fs[i]), 0);
    weft_event_set(&go);
    size_t nd;
    assert_int_equal(weft_future_wait(fs, 100, WEFT_ALL_COMPLETED, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 100);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(error_of(fs[i]), 0);
        weft_future_release(fs[i]);
    }
    finish(ex);
}

typedef struct racing_submitter {
    weft_executor_t *ex;
    int max;
    int accepted, refused_other;
    pthread_t tid;
} racing_submitter_t;

static void *submit_until_refused(void *p)
{
    racing_submitter_t *r = p;
    for (int i = 0; i < r->max; i++) {
        int rc = weft_executor_submit(r->ex, count_run, NULL, NULL);
        if (rc == WEFT_ESHUTDOWN) break;
        if (rc)
            r->refused_other++;
        else
            r->accepted++;
    }
    return NULL;
}

/* No direct CPython test (test_shutdown_race_issue12456 is the nearest). Submits racing
 * shutdown(wait): each submit is either accepted (and its task has run when
 * shutdown returns: the workers drain the queue before they exit) or refused with
 * WEFT_ESHUTDOWN; nothing is lost in between. */
static void submit_races_shutdown(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    weft_executor_t *ex = pool(3);
    racing_submitter_t r[SUBMITTERS];
    for (int i = 0; i < SUBMITTERS; i++) {
        r[i] = (racing_submitter_t){.ex = ex, .max = SANITIZED ? 20000 : 200000};
        r[i].tid = weft_test_start(submit_until_refused, &r[i]);
    }
    int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
    while (atomic_load(&ran) < 200) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    int ran_at_shutdown = atomic_load(&ran);
    int accepted = 0;
    for (int i = 0; i < SUBMITTERS; i++) {
        weft_test_join(r[i].tid);
        assert_int_equal(r[i].refused_other, 0);
        accepted += r[i].accepted;
    }
    assert_int_equal(ran_at_shutdown, accepted);
    assert_int_equal(atomic_load(&ran), accepted);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* ---- out of memory ------------------------------------------------------------------------ */

static int oom_pool_life(void *ctx)
{
    (void)ctx;
    weft_executor_t *ex;
    int rc = weft_thread_pool_create(2, NULL, &ex);
    if (rc) return rc;
    weft_future_t *f = NULL;
    rc = weft_executor_submit(ex, square, ITEM(3), &f);
    void *v = NULL;
    if (rc == 0) rc = weft_future_result(f, WEFT_FOREVER, &v);
    if (rc == 0) assert_int_equal(VALUE(v), 9);
    weft_future_release(f);
    void *args[3] = {ITEM(1), ITEM(2), ITEM(3)}, *results[3];
    if (rc == 0) rc = weft_executor_map(ex, square, args, 3, results, WEFT_FOREVER, NULL);
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    weft_executor_release(ex);
    return rc;
}

/* No CPython counterpart (SQLite-style malloc tests): create, submit, result, map, shutdown,
 * destroy with every allocation in turn failing; each run reports WEFT_ENOMEM (or recovers)
 * and leaves no allocation or thread behind. */
static void out_of_memory(void **state)
{
    (void)state;
    assert_true(weft_test_oom(oom_pool_life, NULL) >= 4);
}

/* The timeout rules (weft/core.h) for executors: map and shutdown with -0.5 while a task
 * blocks poll (WEFT_ETIMEDOUT at once), WEFT_FOREVER waits until the task is released, NaN
 * is WEFT_EINVAL. */
typedef struct timed_pool {
    weft_executor_t *ex;
    weft_event_t go;
    double timeout;
} timed_pool_t;

static int wait_for_go(void *arg, void **result)
{
    *result = NULL;
    return weft_event_wait(arg, WEFT_FOREVER);
}

static int timed_map(void *p)
{
    timed_pool_t *t = p;
    void *args[1] = {&t->go}, *results[1];
    size_t nd = 0;
    return weft_executor_map(t->ex, wait_for_go, args, 1, results, t->timeout, &nd);
}

static int timed_shutdown(void *p)
{
    timed_pool_t *t = p;
    return weft_executor_shutdown(t->ex, true, false, t->timeout);
}

static void let_go(void *p)
{
    assert_int_equal(weft_event_set(p), 0);
}

static void pool_negative_timeout_polls(void **state)
{
    (void)state;
    timed_pool_t t = {.timeout = -0.5};
    assert_int_equal(weft_event_init(&t.go), 0);
    assert_int_equal(weft_thread_pool_create(2, NULL, &t.ex), 0);
    assert_int_equal(weft_test_polls(timed_map, &t), WEFT_ETIMEDOUT);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(t.ex, wait_for_go, &t.go, &f), 0);
    assert_int_equal(weft_executor_shutdown(t.ex, true, false, NAN), WEFT_EINVAL);
    assert_int_equal(weft_test_polls(timed_shutdown, &t), WEFT_ETIMEDOUT);
    t.timeout = WEFT_FOREVER;
    weft_test_blocks_until(timed_shutdown, &t, let_go, &t.go, 0);
    assert_int_equal(weft_future_result(f, 0, NULL), 0);
    weft_future_release(f);
    assert_int_equal(weft_executor_release(t.ex), 0);
    assert_int_equal(weft_event_destroy(&t.go), 0);
}

/* Shutdown(wait) from a coroutine while a sibling coroutine of the same thread is parked in
 * weft_thread_start (its submit is starting a worker): shutdown must park until that start is
 * settled, not spin with sched_yield (the sibling, on the same thread, would never run again:
 * 100% CPU forever). To hold the worker's start in flight, the case holds the thread
 * registry's lock (white-box), which a starting thread takes before it reports RUNNING. */
typedef struct starting_shutdown {
    weft_executor_t *ex;
    int submit_rc, shutdown_rc;
} starting_shutdown_t;

static int return_zero(void *arg, void **result)
{
    (void)arg;
    *result = NULL;
    return 0;
}

static void submit_co(void *p)
{
    starting_shutdown_t *s = p;
    weft_future_t *f = NULL;
    s->submit_rc = weft_executor_submit(s->ex, return_zero, NULL, &f);
    if (f) {
        if (weft_future_result(f, 30, NULL) && s->submit_rc == 0) s->submit_rc = -1;
        weft_future_release(f);
    }
}

static void shutdown_co(void *p)
{
    starting_shutdown_t *s = p;
    s->shutdown_rc = weft_executor_shutdown(s->ex, true, false, WEFT_FOREVER);
}

static void nothing_at_all(void *arg)
{
    (void)arg;
}

static int shutdown_beside_a_starting_submit(void *p)
{
    starting_shutdown_t *s = p;
    /* What takes the registry lock once is done before it is held: this thread's record, and
     * the exit rule a first weft_thread_start installs. */
    weft_thread_current();
    weft_thread_t *t;
    if (weft_thread_start(nothing_at_all, NULL, NULL, &t)) return -3;
    weft_thread_join(t, WEFT_FOREVER);
    weft_thread_release(t);
    weft__mutex_lock(&weft__registry_lock);
    weft_co_t *a = NULL, *b = NULL;
    int rc = weft_co_spawn(submit_co, s, NULL, &a);
    if (!rc) rc = weft_co_spawn(shutdown_co, s, NULL, &b);
    weft_co_yield(); /* a parks in the worker's start, then b in shutdown (on the fixed code) */
    weft__mutex_unlock(&weft__registry_lock);
    if (a && weft_co_join(a, 30) && !rc) rc = -1;
    if (b && weft_co_join(b, 30) && !rc) rc = -2;
    weft_co_release(a);
    weft_co_release(b);
    return rc;
}

static void shutdown_waits_for_a_starting_worker_without_spinning(void **state)
{
    (void)state;
    starting_shutdown_t s = {.submit_rc = 1, .shutdown_rc = 1};
    assert_int_equal(weft_thread_pool_create(1, NULL, &s.ex), 0);
    weft_test_call_t *c = weft_test_call_start(shutdown_beside_a_starting_submit, &s);
    int rc = -100;
    assert_true(weft_test_call_wait(c, 20.0, &rc, NULL)); /* returns: does not spin forever */
    assert_int_equal(rc, 0);
    assert_int_equal(s.submit_rc, 0);
    assert_int_equal(s.shutdown_rc, 0);
    assert_int_equal(weft_executor_release(s.ex), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(shutdown_waits_for_a_starting_worker_without_spinning),
    WEFT_TEST(pool_negative_timeout_polls),
    WEFT_TEST(submit_and_result),
    WEFT_TEST(task_error_and_message),
    WEFT_TEST(map_in_order_failure_and_timeout),
    WEFT_TEST(map_timeout_starts_no_queued_call),
    WEFT_TEST(map_of_an_impossible_count_is_enomem),
    WEFT_TEST(map_timeout_cancels_the_rest),
    WEFT_TEST(map_on_shut_down_pool),
    WEFT_TEST(bad_arguments),
    WEFT_TEST(submit_after_shutdown_fails),
    WEFT_TEST(shutdown_wait_runs_queued_tasks),
    WEFT_TEST(shutdown_cancel_futures),
    WEFT_TEST(shutdown_timeout),
    WEFT_TEST(shutdown_from_inside_a_task),
    WEFT_TEST(shutdown_no_wait_tasks_still_complete),
    WEFT_TEST(shutdown_after_cancelled_submit),
    WEFT_TEST(shutdown_wait_from_two_threads),
    WEFT_TEST(destroy_without_shutdown),
    WEFT_TEST(workers_start_lazily_up_to_max),
    WEFT_TEST(burst_runs_on_all_workers),
    WEFT_TEST(default_max_workers),
    WEFT_TEST(thread_names),
    WEFT_TEST(initializer_runs_once_per_worker),
    WEFT_TEST(failing_initializer_breaks_the_pool),
    WEFT_TEST(cancel_running_task_cooperatively),
    WEFT_TEST(cancel_queued_future),
    WEFT_TEST(cancel_running_task_that_polls),
    WEFT_TEST(hand_completed_pool_future_keeps_first_outcome),
    WEFT_TEST(pool_future_callbacks),
    WEFT_TEST(failing_callback_in_worker_is_reported),
    WEFT_TEST(submit_from_inside_a_task),
    WEFT_TEST(wait_on_pool_futures),
    WEFT_TEST(as_completed_on_pool_futures),
    WEFT_TEST(user_data_maps_results_back_to_inputs),
    WEFT_TEST(stress_many_submitters),
    WEFT_TEST(parked_workers_are_woken_for_every_task),
    WEFT_TEST(spinning_worker_and_parked_worker_share_a_stream),
    WEFT_TEST(fire_and_forget_tasks_all_run),
    WEFT_TEST(backlog_behind_busy_workers_runs_when_they_are_free),
    WEFT_TEST(result_spins_then_parks_for_a_long_task),
    WEFT_TEST(futures_outlive_their_pool),
    WEFT_TEST(reused_future_starts_clean),
    WEFT_TEST(pending_calls_race),
    WEFT_TEST(submit_races_shutdown),
    WEFT_TEST(out_of_memory),
};
WEFT_TEST_MAIN(cases)
