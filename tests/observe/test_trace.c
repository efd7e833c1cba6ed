/*
 * test_trace.c — weft/trace.h: a scene (coroutines on a hub exchanging through a Queue named
 * 'jobs', a thread pool task, a child process) traced, the file parsed and checked by
 * check_trace.py (beside this file: JSON, slices nested per thread, async pairs, flows, the
 * counts); the API's errors; a forked child that does not trace; the OOM loop; a canceled
 * park's wake arrow from its canceler; each thread named once in the file. The
 * environment variable (WEFT_TRACE, written at exit; an unwritable path) is checked on an
 * example by tests/observe.cmake.
 */
#include "weft_test.h"

#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core_internal.h" /* weft__name_set: the public _set_name functions come later */

static void trace_path(char *buf, size_t n, const char *what)
{
    snprintf(buf, n, "/tmp/weft-trace-%d-%s.json", (int)getpid(), what);
}

/* Runs check_trace.py on path with the given options; 0 when it holds. */
static int check(const char *path, const char *opts)
{
    char here[4096], cmd[8192];
    snprintf(here, sizeof here, "%s", __FILE__);
    snprintf(cmd, sizeof cmd, "python3 %s/check_trace.py %s %s", dirname(here), path, opts);
    return system(cmd);
}

/* ---- the scene --------------------------------------------------------------------------- */

enum { CONSUMERS = 3, JOBS = 12 };

static weft_queue_t *jobs;
static int taken;

static void producer(void *arg)
{
    (void)arg;
    for (intptr_t i = 1; i <= JOBS; i++) assert_int_equal(weft_queue_put(jobs, (void *)i, 10), 0);
    for (int i = 0; i < CONSUMERS; i++) assert_int_equal(weft_queue_put(jobs, NULL, 10), 0);
}

static void consumer(void *arg)
{
    (void)arg;
    void *job;
    while (weft_queue_get(jobs, 10, &job) == 0 && job) {
        taken++;
        weft_co_yield();
    }
}

static void yielder(void *arg)
{
    (void)arg;
    (void)weft_co_yield();
}

static int task(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static int child(void *arg)
{
    (void)arg;
    /* A fork child does not trace: nothing to flush. */
    return weft_trace_flush() == WEFT_EINVAL ? 3 : 4;
}

static void scene(void)
{
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 2, &jobs), 0);
    assert_int_equal(weft__name_set(jobs, "jobs"), 0);
    taken = 0;
    weft_co_t *cos[CONSUMERS + 1];
    for (int i = 0; i < CONSUMERS; i++)
        assert_int_equal(weft_co_spawn(consumer, NULL, NULL, &cos[i]), 0);
    assert_int_equal(weft_co_spawn(producer, NULL, NULL, &cos[CONSUMERS]), 0);
    for (int i = 0; i <= CONSUMERS; i++) weft_test_co_join(cos[i]);
    assert_int_equal(taken, JOBS);

    weft_executor_t *pool;
    assert_int_equal(weft_thread_pool_create(1, NULL, &pool), 0);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(pool, task, (void *)7, &f), 0);
    void *value = NULL;
    assert_int_equal(weft_future_result(f, 30, &value), 0);
    assert_ptr_equal(value, (void *)7);
    weft_future_release(f);
    assert_int_equal(weft_executor_shutdown(pool, true, false, 30), 0);
    weft_executor_release(pool);

    weft_process_t *p = weft_test_process_start(child, NULL);
    assert_int_equal(weft_test_process_finish(p), 3);
    weft__name_drop(jobs);
    weft__names_reset(); /* the table itself, for the leak guard */
    assert_int_equal(weft_queue_release(jobs), 0);
}

/* The scene traced: runs of every coroutine, parks on "Queue 'jobs' ...", wake arrows, one
 * task from submit to result, one process lifetime; everything nests. */
static void trace_records_a_scene_that_nests_and_counts(void **state)
{
    (void)state;
    char path[256];
    trace_path(path, sizeof path, "scene");
    assert_int_equal(weft_trace_start(path), 0);
    scene();
    assert_int_equal(weft_trace_stop(), 0);
    assert_int_equal(check(path, "--min-runs 4 --processes 1 --tasks 1 --park \"Queue 'jobs'\" "
                                 "--flows"),
                     0);
    unlink(path);
}

/* flush writes a complete file and tracing goes on; stop writes the rest. */
static void trace_flush_writes_a_complete_file_and_goes_on(void **state)
{
    (void)state;
    char path[256];
    trace_path(path, sizeof path, "flush");
    assert_int_equal(weft_trace_start(path), 0);
    weft_event_t e;
    assert_int_equal(weft_event_init(&e), 0);
    assert_int_equal(weft_event_wait(&e, 0.001), WEFT_ETIMEDOUT);
    assert_int_equal(weft_trace_flush(), 0);
    assert_int_equal(check(path, "--park Event"), 0);
    weft_co_t *co;
    assert_int_equal(weft_co_spawn(yielder, NULL, NULL, &co), 0);
    weft_test_co_join(co);
    assert_int_equal(weft_trace_stop(), 0);
    assert_int_equal(check(path, "--min-runs 1 --park Event"), 0);
    unlink(path);
}

/* Bad input: a clear code each, and nothing runs. */
static void trace_start_rejects_bad_input(void **state)
{
    (void)state;
    assert_int_equal(weft_trace_start(NULL), WEFT_EINVAL);
    assert_int_equal(weft_trace_start(""), WEFT_EINVAL);
    assert_int_equal(weft_trace_start("/nonexistent-weft-dir/trace.json"), WEFT_ENOENT);
    assert_int_equal(weft_trace_start("/tmp"), WEFT_EISDIR);
    assert_int_equal(weft_trace_flush(), WEFT_EINVAL);
    assert_int_equal(weft_trace_stop(), WEFT_EINVAL);
    char path[256];
    trace_path(path, sizeof path, "twice");
    assert_int_equal(weft_trace_start(path), 0);
    assert_int_equal(weft_trace_start(path), WEFT_EALREADY);
    assert_int_equal(weft_trace_stop(), 0);
    assert_int_equal(weft_trace_stop(), WEFT_EINVAL);
    assert_int_equal(check(path, ""), 0);
    unlink(path);
}

/* "%p" in the path is the process id. */
static void trace_path_expands_the_pid(void **state)
{
    (void)state;
    char path[256], expect[256];
    snprintf(path, sizeof path, "/tmp/weft-trace-%%p-pid.json");
    snprintf(expect, sizeof expect, "/tmp/weft-trace-%d-pid.json", (int)getpid());
    unlink(expect);
    assert_int_equal(weft_trace_start(path), 0);
    assert_int_equal(access(expect, F_OK), 0);
    assert_int_equal(weft_trace_stop(), 0);
    assert_int_equal(check(expect, ""), 0);
    unlink(expect);
}

static weft_queue_t *cq;

static void canceled_getter(void *arg)
{
    (void)arg;
    void *item;
    assert_int_equal(weft_queue_get(cq, 30, &item), WEFT_ECANCELED);
}

/* A coroutine parked on a Queue and canceled by weft_co_cancel: its park ends "canceled" with
 * a wake arrow from the canceler's "wake: Queue get" slice, as a put's wake would have. */
static void trace_records_who_cancels_a_parked_coroutine(void **state)
{
    (void)state;
    char path[256];
    trace_path(path, sizeof path, "cancel");
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 1, &cq), 0);
    assert_int_equal(weft_trace_start(path), 0);
    weft_co_t *co;
    assert_int_equal(weft_co_spawn(canceled_getter, NULL, NULL, &co), 0);
    while (weft_co_state(co) != WEFT_CO_BLOCKED) assert_int_equal(weft_co_yield(), 0);
    assert_int_equal(weft_co_cancel(co), 0);
    weft_test_co_join(co);
    assert_int_equal(weft_trace_stop(), 0);
    assert_int_equal(check(path, "--cancel-wake \"Queue get\" --flows"), 0);
    assert_int_equal(weft_queue_release(cq), 0);
    unlink(path);
}

/* A thread parked before the trace starts, woken in it: the park is recorded from the trace's
 * start, so the wake's arrow arrives (before: the waker's "wake" slice and arrow start, and
 * no park, no arrow end). */
static weft_event_t before_ev;

static void *parks_before_the_trace(void *arg)
{
    (void)arg;
    assert_int_equal(weft_event_wait(&before_ev, 30), 0);
    return NULL;
}

static void trace_clips_a_park_that_began_before_it(void **state)
{
    (void)state;
    char path[256];
    trace_path(path, sizeof path, "before");
    assert_int_equal(weft_event_init(&before_ev), 0);
    assert_int_equal(weft__name_set(&before_ev, "before"), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, parks_before_the_trace, NULL), 0);
    weft_test_wait_queued(&before_ev.waiters_, 1);
    assert_int_equal(weft_trace_start(path), 0);
    assert_int_equal(weft_event_set(&before_ev), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(weft_trace_stop(), 0);
    assert_int_equal(check(path, "--woken-wake \"Event 'before'\" --flows"), 0);
    assert_int_equal(weft_event_destroy(&before_ev), 0);
    weft__names_reset();
    unlink(path);
}

/* ---- threads ----------------------------------------------------------------------------- */

enum { ROUNDS = 300 };
static weft_queue_t *ping, *pong;

static void *ponger(void *arg)
{
    (void)arg;
    void *item;
    for (int i = 0; i < ROUNDS; i++) {
        assert_int_equal(weft_queue_get(ping, 30, &item), 0);
        assert_int_equal(weft_queue_put(pong, item, 30), 0);
    }
    return NULL;
}

/* Two threads exchange through two Queues (a park and a wake per message, more than a buffer
 * holds) while a third flushes the file again and again; the ponger's buffers are handed over
 * at its exit. The file nests, pairs, and has its wake arrows. */
static void trace_threads_record_while_flushed(void **state)
{
    (void)state;
    char path[256];
    trace_path(path, sizeof path, "threads");
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 1, &ping), 0);
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 1, &pong), 0);
    assert_int_equal(weft_trace_start(path), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, ponger, NULL), 0);
    void *item;
    for (int i = 0; i < ROUNDS; i++) {
        assert_int_equal(weft_queue_put(ping, (void *)(intptr_t)(i + 1), 30), 0);
        assert_int_equal(weft_queue_get(pong, 30, &item), 0);
        if (i % 50 == 0) assert_int_equal(weft_trace_flush(), 0);
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(weft_trace_stop(), 0);
    assert_int_equal(check(path, "--park \"Queue get\" --flows"), 0);
    weft_queue_release(ping);
    weft_queue_release(pong);
    unlink(path);
}

/* ---- thread names ------------------------------------------------------------------------ */

enum { SPINS = 256 }; /* two spinners switching: each half fills two of a thread's buffers */

static void spinner(void *arg)
{
    (void)arg;
    for (int i = 0; i < SPINS; i++) (void)weft_co_yield();
}

static void spin_once(void)
{
    weft_co_t *co[2];
    for (int i = 0; i < 2; i++) assert_int_equal(weft_co_spawn(spinner, NULL, NULL, &co[i]), 0);
    for (int i = 0; i < 2; i++) weft_test_co_join(co[i]);
}

static void *renamed_thread(void *arg)
{
    (void)arg;
    assert_int_equal(pthread_setname_np(pthread_self(), "tr-before"), 0);
    spin_once();
    assert_int_equal(weft_trace_flush(), 0);
    assert_int_equal(pthread_setname_np(pthread_self(), "tr-after"), 0);
    spin_once();
    return NULL;
}

/* A thread whose events fill several buffers, flushed in between and renamed half-way: the
 * file names each thread once ("M" thread_name), with its newest name; the process once. */
static void trace_names_each_thread_once(void **state)
{
    (void)state;
    char path[256];
    trace_path(path, sizeof path, "names");
    assert_int_equal(weft_trace_start(path), 0);
    spin_once(); /* this thread too: more than one buffer */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, renamed_thread, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(weft_trace_flush(), 0);
    assert_int_equal(check(path, "--min-runs 1000 --thread-name tr-after"), 0);
    assert_int_equal(weft_trace_stop(), 0);
    assert_int_equal(check(path, "--min-runs 1000 --thread-name tr-after"), 0);
    unlink(path);
}

static int traced_waits(void *ctx)
{
    const char *path = ctx;
    int rc = weft_trace_start(path);
    if (rc) return rc;
    weft_event_t e;
    weft_event_init(&e);
    for (int i = 0; i < 3; i++) (void)weft_event_wait(&e, 0.0001);
    weft_co_t *co;
    rc = weft_co_spawn(yielder, NULL, NULL, &co);
    if (rc == 0) {
        weft_co_join(co, WEFT_FOREVER);
        weft_co_release(co);
    }
    int frc = weft_trace_flush();
    int src = weft_trace_stop();
    return rc ? rc : frc ? frc : src;
}

/* Out of memory anywhere: WEFT_ENOMEM from start, or events dropped; nothing leaks. */
static void trace_survives_oom(void **state)
{
    (void)state;
    char path[256];
    trace_path(path, sizeof path, "oom");
    /* Once first: this thread's hub, made by the first spawn, stays until the thread exits. */
    assert_int_equal(traced_waits(path), 0);
    weft_test_oom(traced_waits, path);
    assert_int_equal(check(path, ""), 0);
    unlink(path);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(trace_records_a_scene_that_nests_and_counts),
    WEFT_TEST(trace_flush_writes_a_complete_file_and_goes_on),
    WEFT_TEST(trace_start_rejects_bad_input),
    WEFT_TEST(trace_path_expands_the_pid),
    WEFT_TEST(trace_records_who_cancels_a_parked_coroutine),
    WEFT_TEST(trace_clips_a_park_that_began_before_it),
    WEFT_TEST(trace_survives_oom),
    WEFT_TEST(trace_threads_record_while_flushed),
    WEFT_TEST(trace_names_each_thread_once),
};
WEFT_TEST_MAIN(cases)
