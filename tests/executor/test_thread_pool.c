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

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define ITEM(i)  ((void *)(intptr_t)(i))
#define VALUE(p) ((intptr_t)(p))

static weft_executor_t *pool(size_t workers)
{
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(&ex, workers, NULL), 0);
    assert_non_null(ex);
    return ex;
}

static void finish(weft_executor_t *ex)
{
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    assert_int_equal(weft_executor_destroy(ex), 0);
}

/* ---- tasks ------------------------------------------------------------------------------ */

static int square(void *arg, void **result)
{
    *result = ITEM(VALUE(arg) * VALUE(arg));
    return 0;
}

static int fail_odd(void *arg, void **result)
{
    if (VALUE(arg) % 2) return weft_task_fail(WEFT_ERANGE, "odd argument %ld", (long)VALUE(arg));
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

static int current_name(void *arg, void **result)
{
    (void)arg;
    *result = (void *)weft_thread_name(weft_thread_current()); /* the worker outlives the call */
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
    assert_int_equal(weft_future_error(f), WEFT_ERANGE);
    assert_string_equal(weft_future_error_message(f), "odd argument 3");
    weft_future_release(f);
    assert_int_equal(weft_task_fail(WEFT_EIO, "outside a task"), WEFT_EIO); /* only returns */
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
    assert_int_equal(weft_executor_map(ex, square, args, 20, WEFT_FOREVER, results, &nd), 0);
    assert_int_equal(nd, 20);
    for (int i = 0; i < 20; i++) assert_int_equal(VALUE(results[i]), i * i);

    args[0] = ITEM(0);
    args[1] = ITEM(2);
    args[2] = ITEM(5); /* odd: fails */
    assert_int_equal(weft_executor_map(ex, fail_odd, args, 4, WEFT_FOREVER, results, &nd),
                     WEFT_ERANGE);
    assert_int_equal(nd, 2);

    weft_event_t never;
    weft_event_init(&never);
    void *blocks[2] = {&never, &never};
    assert_int_equal(weft_executor_map(ex, wait_event, blocks, 2, 0.05, results, &nd),
                     WEFT_ETIMEDOUT);
    assert_int_equal(nd, 0);
    weft_event_set(&never); /* the running ones finish */
    assert_int_equal(weft_executor_map(ex, square, NULL, 0, 0, results, &nd), 0);
    assert_int_equal(weft_executor_map(NULL, square, args, 1, 0, results, &nd), WEFT_EINVAL);
    assert_int_equal(weft_executor_map(ex, square, NULL, 1, 0, results, &nd), WEFT_EINVAL);
    finish(ex);
}

static void bad_arguments(void **state)
{
    (void)state;
    weft_executor_t *ex = ITEM(1);
    weft_thread_pool_opts_t long_prefix = {.thread_name_prefix =
                                               "a-prefix-that-is-far-too-long-for-a-thread-name-x"};
    weft_thread_pool_opts_t tiny_stack = {.stack_size = 1024};
    weft_thread_pool_opts_t nan_exit = {.exit_timeout = NAN};
    assert_int_equal(weft_thread_pool_create(NULL, 1, NULL), WEFT_EINVAL);
    assert_int_equal(weft_thread_pool_create(&ex, 1, &long_prefix), WEFT_EINVAL);
    assert_null(ex);
    assert_int_equal(weft_thread_pool_create(&ex, 1, &tiny_stack), WEFT_EINVAL);
    assert_int_equal(weft_thread_pool_create(&ex, 1, &nan_exit), WEFT_EINVAL);
    weft_future_t *f = ITEM(1);
    assert_int_equal(weft_executor_submit(NULL, square, NULL, &f), WEFT_EINVAL);
    assert_null(f);
    ex = pool(1);
    assert_int_equal(weft_executor_submit(ex, NULL, NULL, &f), WEFT_EINVAL);
    assert_int_equal(weft_executor_shutdown(NULL, true, false, 0), WEFT_EINVAL);
    assert_int_equal(weft_executor_shutdown(ex, true, false, NAN), WEFT_EINVAL);
    assert_int_equal(weft_executor_destroy(NULL), WEFT_EINVAL);
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
    assert_int_equal(weft_executor_destroy(ex), 0);
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
    assert_int_equal(weft_executor_destroy(ex), 0);
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
    assert_int_equal(weft_executor_destroy(ex), 0);
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
    assert_int_equal(weft_executor_destroy(ex), 0);
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
    assert_int_equal(weft_executor_destroy(ex), 0);
    assert_int_equal(weft_event_wait(&l.done, WEFT_FOREVER), 0);
    int64_t give_up = weft_monotonic_ns() + 10 * 1000000000LL;
    while (weft_thread_active_count() > threads_before) {
        assert_true(weft_monotonic_ns() < give_up);
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
    for (int i = 0; i < 10; i++) {
        weft_future_t *f;
        assert_int_equal(weft_executor_submit(ex, square, ITEM(i), &f), 0);
        assert_int_equal(weft_future_result(f, WEFT_FOREVER, NULL), 0);
        weft_future_release(f);
        /* The worker that finished is idle (or about to be); at most one more may have
         * started while it was still busy. */
        assert_true(weft_thread_active_count() <= base + 2);
    }
    weft_event_t go;
    weft_event_init(&go);
    weft_future_t *fs[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(weft_executor_submit(ex, wait_event, &go, &fs[i]), 0);
    int64_t give_up = weft_monotonic_ns() + 10 * 1000000000LL;
    int running = 0;
    while (running < 3) { /* all three workers get busy */
        assert_true(weft_monotonic_ns() < give_up);
        running = 0;
        for (int i = 0; i < 8; i++) running += weft_future_running(fs[i]);
        sched_yield();
    }
    assert_int_equal(weft_thread_active_count(), base + 3);
    assert_int_equal(running, 3);
    weft_event_set(&go);
    assert_int_equal(weft_wait(fs, 8, WEFT_FOREVER, WEFT_ALL_COMPLETED, NULL), 0);
    for (int i = 0; i < 8; i++) weft_future_release(fs[i]);
    finish(ex);
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
    int64_t give_up = weft_monotonic_ns() + 10 * 1000000000LL;
    int running;
    do {
        assert_true(weft_monotonic_ns() < give_up);
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

/* ThreadPoolExecutorTest.test_thread_names_assigned / _default: workers are "<prefix>_<n>",
 * or "ThreadPoolExecutor-<k>_<n>". */
static void thread_names(void **state)
{
    (void)state;
    weft_thread_pool_opts_t opts = {.thread_name_prefix = "SpecialPool"};
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(&ex, 1, &opts), 0);
    void *name;
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, current_name, NULL, &f), 0);
    assert_int_equal(weft_future_result(f, WEFT_FOREVER, &name), 0);
    assert_string_equal(name, "SpecialPool_0");
    weft_future_release(f);
    finish(ex);

    ex = pool(1);
    assert_int_equal(weft_executor_submit(ex, current_name, NULL, &f), 0);
    assert_int_equal(weft_future_result(f, WEFT_FOREVER, &name), 0);
    assert_memory_equal(name, "ThreadPoolExecutor-", 19);
    assert_non_null(strstr(name, "_0"));
    weft_future_release(f);
    finish(ex);
}

static _Atomic int inits;

static int init_ok(void *arg)
{
    assert_ptr_equal(arg, ITEM(5));
    atomic_fetch_add(&inits, 1);
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
    assert_int_equal(weft_thread_pool_create(&ex, 2, &opts), 0);
    void *args[30], *results[30];
    for (int i = 0; i < 30; i++) args[i] = ITEM(i);
    assert_int_equal(weft_executor_map(ex, square, args, 30, WEFT_FOREVER, results, NULL), 0);
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
    assert_int_equal(weft_thread_pool_create(&ex, 2, &opts), 0);
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

/* Cooperative cancellation: cancel on a RUNNING future returns WEFT_EBUSY, the task sees
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

/* ---- stress -----------------------------------------------------------------------------------
 */

typedef struct flood {
    weft_executor_t *ex;
    int per;
    _Atomic long sum;
} flood_t;

static void submitter(void *arg, int i)
{
    flood_t *fl = arg;
    enum { BATCH = 64 };
    weft_future_t *fs[BATCH];
    for (int done = 0; done < fl->per; done += BATCH) {
        for (int k = 0; k < BATCH; k++)
            assert_int_equal(
                weft_executor_submit(fl->ex, square, ITEM(i * 1000 + k % 1000), &fs[k]), 0);
        if (i % 2) {
            assert_int_equal(weft_wait(fs, BATCH, WEFT_FOREVER, WEFT_ALL_COMPLETED, NULL), 0);
        } else {
            weft_as_completed_t *it;
            weft_future_t *f;
            int n = 0;
            assert_int_equal(weft_as_completed_begin(&it, fs, BATCH, WEFT_FOREVER), 0);
            while (weft_as_completed_next(it, &f) == 0) n++;
            weft_as_completed_end(it);
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

/* Four submitters flood a pool (two wait with wait(ALL_COMPLETED), two with as_completed): the
 * sum of all results proves each task ran exactly once. */
static void stress_many_submitters(void **state)
{
    (void)state;
    flood_t fl = {pool(3), SANITIZED ? 640 : 6400, 0};
    weft_test_run_threads(4, submitter, &fl);
    long expect = 0;
    for (int i = 0; i < 4; i++)
        for (int done = 0; done < fl.per; done += 64)
            for (int k = 0; k < 64; k++) {
                long x = i * 1000 + k % 1000;
                expect += x * x;
            }
    assert_int_equal(atomic_load(&fl.sum), expect);
    finish(fl.ex);
}

/* ---- out of memory ------------------------------------------------------------------------ */

static int oom_pool_life(void *ctx)
{
    (void)ctx;
    weft_executor_t *ex;
    int rc = weft_thread_pool_create(&ex, 2, NULL);
    if (rc) return rc;
    weft_future_t *f = NULL;
    rc = weft_executor_submit(ex, square, ITEM(3), &f);
    void *v = NULL;
    if (rc == 0) rc = weft_future_result(f, WEFT_FOREVER, &v);
    if (rc == 0) assert_int_equal(VALUE(v), 9);
    weft_future_release(f);
    void *args[3] = {ITEM(1), ITEM(2), ITEM(3)}, *results[3];
    if (rc == 0) rc = weft_executor_map(ex, square, args, 3, WEFT_FOREVER, results, NULL);
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    weft_executor_destroy(ex);
    return rc;
}

static void out_of_memory(void **state)
{
    (void)state;
    assert_true(weft_test_oom(oom_pool_life, NULL) >= 4);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(submit_and_result),
    WEFT_TEST(task_error_and_message),
    WEFT_TEST(map_in_order_failure_and_timeout),
    WEFT_TEST(bad_arguments),
    WEFT_TEST(submit_after_shutdown_fails),
    WEFT_TEST(shutdown_wait_runs_queued_tasks),
    WEFT_TEST(shutdown_cancel_futures),
    WEFT_TEST(shutdown_timeout),
    WEFT_TEST(shutdown_from_inside_a_task),
    WEFT_TEST(destroy_without_shutdown),
    WEFT_TEST(workers_start_lazily_up_to_max),
    WEFT_TEST(default_max_workers),
    WEFT_TEST(thread_names),
    WEFT_TEST(initializer_runs_once_per_worker),
    WEFT_TEST(failing_initializer_breaks_the_pool),
    WEFT_TEST(cancel_running_task_cooperatively),
    WEFT_TEST(cancel_queued_future),
    WEFT_TEST(pool_future_callbacks),
    WEFT_TEST(stress_many_submitters),
    WEFT_TEST(out_of_memory),
};
WEFT_TEST_MAIN(cases)
