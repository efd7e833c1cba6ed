/*
 * test_deadlock.c — the deadlock report (weft/debug.h): cycles among threads and coroutines,
 * a join cycle, starvation, the hub's report before WEFT_EDEADLK, the watchdog, bad input,
 * out of memory. Every scene is broken after its report (a release from the test, a cancel,
 * the hub's EDEADLK), so every case ends; nothing waits on time.
 */
#include "weft_test.h"

#include "core/core_internal.h" /* weft__names_reset: the names table is kept till exit */

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The report of now, as a string (the caller frees it); its counts in *cycles, *starved. */
/* Lock holders are recorded only while the process observes them (sync_internal.h): this
 * turns that on alone, so the report's words stay those of a run without park stamps. */
static void owners_on(void)
{
    atomic_fetch_or_explicit(&weft__observing, WEFT__OBSERVE_OWNERS, memory_order_relaxed);
}

static char *report_now(double min_blocked, size_t *cycles, size_t *starved)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(weft_debug_deadlocks(f, min_blocked, cycles, starved), 0);
    fclose(f);
    return buf;
}

/* Polls (yielding: a coroutine caller lets its hub run the others) until the report shows
 * `cycles` cycles and `starved` starving tasks; returns that report. Fails after 30 s. */
static char *report_when(size_t cycles, size_t starved)
{
    int64_t give_up = weft_time_monotonic_ns() + 30 * 1000000000LL;
    for (;;) {
        size_t c = 0, s = 0;
        char *text = report_now(0, &c, &s);
        if (c == cycles && s == starved) return text;
        free(text);
        assert_true(weft_time_monotonic_ns() < give_up);
        (void)weft_co_yield(); /* a hub's root lets its coroutines run */
        sched_yield();
    }
}

static weft_thread_t *start(void (*fn)(void *), void *arg, const char *n)
{
    weft_thread_t *t;
    weft_thread_opts_t o = {.name = n};
    assert_int_equal(weft_thread_start(fn, arg, &o, &t), 0);
    return t;
}

static void join(weft_thread_t *t)
{
    assert_int_equal(weft_thread_join(t, 60), 0);
    assert_int_equal(weft_thread_release(t), 0);
}

static weft_co_t *spawn(void (*fn)(void *), void *arg, const char *n)
{
    weft_co_t *co;
    weft_co_opts_t o = {.name = n};
    assert_int_equal(weft_co_spawn(fn, arg, &o, &co), 0);
    return co;
}

/* ---- two threads, two Locks --------------------------------------------------------------- */

typedef struct scene {
    weft_lock_t x, y;
    weft_event_t has_x, has_y;
    weft_queue_t *q;
    weft_co_t *c1, *c2;
    int rc1, rc2;
} scene_t;

static void scene_init(scene_t *s)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(weft_lock_init(&s->x), 0);
    assert_int_equal(weft_lock_init(&s->y), 0);
    assert_int_equal(weft_event_init(&s->has_x), 0);
    assert_int_equal(weft_event_init(&s->has_y), 0);
    assert_int_equal(weft_lock_set_name(&s->x, "x"), 0);
    assert_int_equal(weft_lock_set_name(&s->y, "y"), 0);
}

static void scene_destroy(scene_t *s)
{
    assert_int_equal(weft_lock_destroy(&s->x), 0);
    assert_int_equal(weft_lock_destroy(&s->y), 0);
    assert_int_equal(weft_event_destroy(&s->has_x), 0);
    assert_int_equal(weft_event_destroy(&s->has_y), 0);
    weft__names_reset();
}

/* Takes x, then y once the other holds y; x is released by the test (a Lock has no owner). */
static void take_x_then_y(void *arg)
{
    scene_t *s = arg;
    assert_int_equal(weft_lock_acquire(&s->x, WEFT_FOREVER), 0);
    assert_int_equal(weft_event_set(&s->has_x), 0);
    assert_int_equal(weft_event_wait(&s->has_y, WEFT_FOREVER), 0);
    assert_int_equal(weft_lock_acquire(&s->y, WEFT_FOREVER), 0);
    assert_int_equal(weft_lock_release(&s->y), 0);
}

/* Takes y, then x once the other holds x; releases both. */
static void take_y_then_x(void *arg)
{
    scene_t *s = arg;
    assert_int_equal(weft_lock_acquire(&s->y, WEFT_FOREVER), 0);
    assert_int_equal(weft_event_set(&s->has_y), 0);
    assert_int_equal(weft_event_wait(&s->has_x, WEFT_FOREVER), 0);
    assert_int_equal(weft_lock_acquire(&s->x, WEFT_FOREVER), 0);
    assert_int_equal(weft_lock_release(&s->x), 0);
    assert_int_equal(weft_lock_release(&s->y), 0);
}

static void two_lock_cycle_between_threads(void **state)
{
    (void)state;
    owners_on();
    scene_t s;
    scene_init(&s);
    weft_thread_t *a = start(take_x_then_y, &s, "a");
    weft_thread_t *b = start(take_y_then_x, &s, "b");
    char *text = report_when(1, 0);
    /* The walk may enter the cycle at either thread. */
    bool from_a = strstr(text, "weft: deadlock: thread 'a' waits for Lock 'y' held by thread "
                               "'b', which waits for Lock 'x' held by thread 'a': "
                               "a cycle, none of them can go on\n") != NULL;
    bool from_b = strstr(text, "weft: deadlock: thread 'b' waits for Lock 'x' held by thread "
                               "'a', which waits for Lock 'y' held by thread 'b': "
                               "a cycle, none of them can go on\n") != NULL;
    if (!from_a && !from_b) fail_msg("report: %s", text);
    assert_null(strstr(text, "starvation"));
    free(text);
    assert_int_equal(weft_lock_release(&s.x), 0); /* breaks it: b takes x */
    join(a);
    join(b);
    scene_destroy(&s);
}

/* ---- a Future and a Lock: the pool task, not its worker thread ------------------------------ */

typedef struct fut_scene {
    weft_lock_t l;
    weft_event_t has_l;
    weft_executor_t *pool;
} fut_scene_t;

static int needs_l(void *arg, void **result)
{
    (void)result;
    fut_scene_t *s = arg;
    int rc = weft_lock_acquire(&s->l, WEFT_FOREVER);
    if (rc == 0) rc = weft_lock_release(&s->l);
    return rc;
}

/* Holds L, then waits for the future whose task needs L. */
static void holds_l_waits_future(void *arg)
{
    fut_scene_t *s = arg;
    assert_int_equal(weft_lock_acquire(&s->l, WEFT_FOREVER), 0);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(s->pool, needs_l, s, &f), 0);
    assert_int_equal(weft_future_set_name(f, "needs-L"), 0);
    assert_int_equal(weft_event_set(&s->has_l), 0);
    assert_int_equal(weft_future_error(f, WEFT_FOREVER, NULL), 0);
    weft_future_release(f);
}

static void future_lock_cycle_names_the_pool_task_once(void **state)
{
    (void)state;
    owners_on();
    fut_scene_t s;
    assert_int_equal(weft_lock_init(&s.l), 0);
    assert_int_equal(weft_lock_set_name(&s.l, "L"), 0);
    assert_int_equal(weft_event_init(&s.has_l), 0);
    assert_int_equal(weft_thread_pool_create(1, NULL, &s.pool), 0);
    weft_thread_t *w = start(holds_l_waits_future, &s, "waiter");
    assert_int_equal(weft_event_wait(&s.has_l, 30), 0);
    char *text = report_when(1, 0);
    /* One line, the cycle, entered at either member; the worker thread is not a member of its
     * own (its task stands for it), nor is anything "stuck behind" the cycle. */
    const char *from_waiter = "weft: deadlock: thread 'waiter' waits for Future 'needs-L' run by "
                              "pool task 'needs-L', which waits for Lock 'L' held by thread "
                              "'waiter': a cycle, none of them can go on\n";
    const char *from_task = "weft: deadlock: pool task 'needs-L' waits for Lock 'L' held by "
                            "thread 'waiter', which waits for Future 'needs-L' run by pool task "
                            "'needs-L': a cycle, none of them can go on\n";
    if (strcmp(text, from_waiter) != 0 && strcmp(text, from_task) != 0)
        fail_msg("report:\n%s", text);
    free(text);
    assert_int_equal(weft_lock_release(&s.l), 0); /* the task takes it: all ends */
    join(w);
    assert_int_equal(weft_executor_shutdown(s.pool, true, false, 30), 0);
    assert_int_equal(weft_executor_release(s.pool), 0);
    assert_int_equal(weft_lock_destroy(&s.l), 0);
    assert_int_equal(weft_event_destroy(&s.has_l), 0);
    weft__names_reset();
}

/* ---- a coroutine and a thread ------------------------------------------------------------- */

static void co_take_x_then_y(void *arg)
{
    take_x_then_y(arg);
}

static void mixed_coroutine_thread_cycle(void **state)
{
    (void)state;
    owners_on();
    scene_t s;
    scene_init(&s);
    weft_co_t *c = spawn(co_take_x_then_y, &s, "c");
    weft_thread_t *t = start(take_y_then_x, &s, "t");
    /* The test runs on the hub's root: the report sees its coroutine c. */
    char *text = report_when(1, 0);
    bool from_c = strstr(text, "coroutine 'c' waits for Lock 'y' held by thread 't', which "
                               "waits for Lock 'x' held by coroutine 'c': a cycle") != NULL;
    bool from_t = strstr(text, "thread 't' waits for Lock 'x' held by coroutine 'c', which "
                               "waits for Lock 'y' held by thread 't': a cycle") != NULL;
    if (!from_c && !from_t) fail_msg("report: %s", text);
    free(text);
    assert_int_equal(weft_lock_release(&s.x), 0);
    join(t);
    weft_test_co_join(c);
    scene_destroy(&s);
}

/* ---- a join cycle ------------------------------------------------------------------------- */

static void join_c2(void *arg)
{
    scene_t *s = arg;
    s->rc1 = weft_co_join(s->c2, WEFT_FOREVER);
}

static void join_c1(void *arg)
{
    scene_t *s = arg;
    s->rc2 = weft_co_join(s->c1, WEFT_FOREVER);
}

static void coroutine_join_cycle(void **state)
{
    (void)state;
    scene_t s;
    scene_init(&s);
    s.c1 = spawn(join_c2, &s, "c1");
    s.c2 = spawn(join_c1, &s, "c2");
    char *text = report_when(1, 0);
    bool from_1 = strstr(text, "weft: deadlock: coroutine 'c1' waits for the end of coroutine "
                               "'c2', which waits for the end of coroutine "
                               "'c1': a cycle") != NULL;
    bool from_2 = strstr(text, "weft: deadlock: coroutine 'c2' waits for the end of coroutine "
                               "'c1', which waits for the end of coroutine "
                               "'c2': a cycle") != NULL;
    if (!from_1 && !from_2) fail_msg("report: %s", text);
    free(text);
    assert_int_equal(weft_co_cancel(s.c1), 0); /* breaks it: c1's join fails, c1 ends */
    assert_int_equal(weft_co_join(s.c1, 60), 0);
    assert_int_equal(weft_co_join(s.c2, 60), 0);
    assert_int_equal(s.rc1, WEFT_ECANCELED);
    assert_int_equal(s.rc2, 0);
    weft_co_release(s.c1);
    weft_co_release(s.c2);
    scene_destroy(&s);
}

/* ---- a Queue nobody feeds ----------------------------------------------------------------- */

static void get_one(void *arg)
{
    scene_t *s = arg;
    void *item = NULL;
    assert_int_equal(weft_queue_get(s->q, WEFT_FOREVER, &item), 0);
    assert_ptr_equal(item, s);
}

static void queue_nobody_feeds_is_starvation(void **state)
{
    (void)state;
    scene_t s;
    scene_init(&s);
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 0, &s.q), 0);
    assert_int_equal(weft_queue_set_name(s.q, "jobs"), 0);
    weft_thread_t *w = start(get_one, &s, "w");
    char *text = report_when(0, 1);
    if (!strstr(text, "weft: starvation: thread 'w' waits for Queue 'jobs' get; no task holds "
                      "or feeds it\n"))
        fail_msg("report: %s", text);
    assert_null(strstr(text, "deadlock"));
    free(text);
    /* Park times not stamped: a threshold above 0 counts nobody. */
    size_t c = 9, st = 9;
    free(report_now(0.001, &c, &st));
    assert_int_equal(c, 0);
    assert_int_equal(st, 0);
    assert_int_equal(weft_queue_put(s.q, &s, WEFT_FOREVER), 0);
    join(w);
    assert_int_equal(weft_queue_release(s.q), 0);
    scene_destroy(&s);
}

/* ---- the hub's report before WEFT_EDEADLK ------------------------------------------------- */

static void hub_x_then_y(void *arg)
{
    scene_t *s = arg;
    assert_int_equal(weft_lock_acquire(&s->x, WEFT_FOREVER), 0);
    assert_int_equal(weft_co_yield(), 0);
    s->rc1 = weft_lock_acquire(&s->y, WEFT_FOREVER);
    if (s->rc1 == 0) assert_int_equal(weft_lock_release(&s->y), 0);
    assert_int_equal(weft_lock_release(&s->x), 0);
}

static void hub_y_then_x(void *arg)
{
    scene_t *s = arg;
    assert_int_equal(weft_lock_acquire(&s->y, WEFT_FOREVER), 0);
    assert_int_equal(weft_co_yield(), 0);
    s->rc2 = weft_lock_acquire(&s->x, WEFT_FOREVER);
    if (s->rc2 == 0) assert_int_equal(weft_lock_release(&s->x), 0);
    assert_int_equal(weft_lock_release(&s->y), 0);
}

/* The watchdog never wakes a waiter: a hub whose coroutines deadlock still fails their waits
 * with WEFT_EDEADLK while it runs. (Before: its thread counted as one that might wake them, and
 * the program hung.) */
static void hub_edeadlk_while_the_watchdog_runs(void **state)
{
    (void)state;
    owners_on();
    scene_t s;
    scene_init(&s);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(weft_debug_set_report(f), 0);
    assert_int_equal(weft_debug_deadlock_check_start(100), 0);
    s.c1 = spawn(hub_x_then_y, &s, "c1");
    s.c2 = spawn(hub_y_then_x, &s, "c2");
    /* No deadline (a timer would keep the hub from its check); a hang fails by timeout. */
    int rc = weft_co_join(s.c1, WEFT_FOREVER);
    assert_true(rc == WEFT_EDEADLK || rc == 0);
    assert_int_equal(weft_co_join(s.c1, 60), 0);
    assert_int_equal(weft_co_join(s.c2, 60), 0);
    assert_true(s.rc1 == WEFT_EDEADLK || s.rc2 == WEFT_EDEADLK);
    assert_int_equal(weft_debug_deadlock_check_stop(), 0);
    assert_int_equal(weft_debug_observe(false), 0);
    assert_int_equal(weft_debug_set_report(NULL), 0);
    fclose(f);
    weft_co_release(s.c1);
    weft_co_release(s.c2);
    scene_destroy(&s);
}

static void hub_edeadlk_prints_report(void **state)
{
    (void)state;
    owners_on();
    scene_t s;
    scene_init(&s);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(weft_debug_set_report(f), 0);
    s.c1 = spawn(hub_x_then_y, &s, "c1");
    s.c2 = spawn(hub_y_then_x, &s, "c2");
    /* Nothing else runs: the hub finds that nothing can wake anybody, reports, and fails
     * every wait with WEFT_EDEADLK (this join's too). */
    int rc = weft_co_join(s.c1, WEFT_FOREVER);
    assert_true(rc == WEFT_EDEADLK || rc == 0);
    assert_int_equal(weft_co_join(s.c1, 60), 0);
    assert_int_equal(weft_co_join(s.c2, 60), 0);
    /* The first to run after the break releases its lock, which may hand the other its
     * second lock before that one sees its EDEADLK (a wake overrides it): one fails at least. */
    assert_true(s.rc1 == WEFT_EDEADLK || s.rc2 == WEFT_EDEADLK);
    assert_true(s.rc1 == WEFT_EDEADLK || s.rc1 == 0);
    assert_true(s.rc2 == WEFT_EDEADLK || s.rc2 == 0);
    assert_int_equal(weft_debug_set_report(NULL), 0);
    fclose(f);
    bool from_1 = strstr(buf, "weft: deadlock: coroutine 'c1' waits for Lock 'y' held by "
                              "coroutine 'c2', which waits for Lock 'x' held by "
                              "coroutine 'c1': a cycle, none of them can go on\n") != NULL;
    bool from_2 = strstr(buf, "weft: deadlock: coroutine 'c2' waits for Lock 'x' held by "
                              "coroutine 'c1', which waits for Lock 'y' held by "
                              "coroutine 'c2': a cycle, none of them can go on\n") != NULL;
    if (!from_1 && !from_2) fail_msg("report: %s", buf);
    assert_non_null(strstr(buf, "weft: deadlock: nothing can wake the coroutines of the hub of "
                                "thread "));
    /* The test's own join waits behind the cycle. */
    if (!strstr(buf, "waits for the end of coroutine 'c1': stuck behind the cycle of coroutine "))
        fail_msg("report: %s", buf);
    free(buf);
    weft_co_release(s.c1);
    weft_co_release(s.c2);
    scene_destroy(&s);
}

/* ---- the watchdog ------------------------------------------------------------------------- */

static size_t count(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

/* What the watchdog wrote so far (f is written by its thread; read through another fd). */
static char *written(int fd)
{
    static char buf[1 << 16];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

static void wait_event(void *arg)
{
    assert_int_equal(weft_event_wait(arg, WEFT_FOREVER), 0);
}

static void watchdog_reports_each_situation_once(void **state)
{
    (void)state;
    scene_t s;
    scene_init(&s);
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 0, &s.q), 0);
    assert_int_equal(weft_queue_set_name(s.q, "jobs"), 0);
    assert_int_equal(weft_event_set_name(&s.has_x, "go"), 0);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(weft_debug_set_report(f), 0);
    assert_int_equal(weft_debug_deadlock_check_start(0.01), 0);
    assert_int_equal(weft_debug_deadlock_check_start(0.01), WEFT_EALREADY);
    weft_thread_t *w = start(get_one, &s, "w");
    int64_t give_up = weft_time_monotonic_ns() + 30 * 1000000000LL;
    while (!strstr(written(fileno(f)), "Queue 'jobs' get")) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
    /* A second situation: once it is reported, later rounds saw the first one again. */
    weft_thread_t *e = start(wait_event, &s.has_x, "e");
    while (!strstr(written(fileno(f)), "Event 'go'")) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
    assert_int_equal(weft_debug_deadlock_check_stop(), 0);
    assert_int_equal(weft_debug_deadlock_check_stop(), WEFT_EALREADY);
    char *text = written(fileno(f));
    assert_int_equal(count(text, "thread 'w' (blocked "), 1);
    assert_non_null(strstr(text, "s) waits for Queue 'jobs' get; no task holds or feeds it\n"));
    assert_int_equal(count(text, "thread 'e' (blocked "), 1);
    assert_int_equal(weft_debug_set_report(NULL), 0);
    fclose(f);
    assert_int_equal(weft_debug_observe(false), 0);
    assert_int_equal(weft_queue_put(s.q, &s, WEFT_FOREVER), 0);
    assert_int_equal(weft_event_set(&s.has_x), 0);
    join(w);
    join(e);
    assert_int_equal(weft_queue_release(s.q), 0);
    scene_destroy(&s);
}

/* ---- bad input, no memory ----------------------------------------------------------------- */

static void deadlocks_bad_arguments_are_einval(void **state)
{
    (void)state;
    assert_int_equal(weft_debug_deadlocks(NULL, 0, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_debug_deadlocks(stderr, -1, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_debug_deadlocks(stderr, NAN, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_debug_deadlocks(stderr, 2e9, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_debug_deadlock_check_start(0), WEFT_EINVAL);
    assert_int_equal(weft_debug_deadlock_check_start(-1), WEFT_EINVAL);
    assert_int_equal(weft_debug_deadlock_check_start(NAN), WEFT_EINVAL);
    assert_int_equal(weft_debug_deadlock_check_stop(), WEFT_EALREADY);
    /* Nothing blocked: nothing reported, counts 0 (NULL counts are fine too). */
    size_t c = 9, s = 9;
    char *text = report_now(0, &c, &s);
    assert_int_equal(c, 0);
    assert_int_equal(s, 0);
    assert_string_equal(text, "");
    free(text);
    assert_int_equal(weft_debug_deadlocks(stderr, 0, NULL, NULL), 0);
}

static int report_body(void *ctx)
{
    FILE *f = ctx;
    rewind(f);
    return weft_debug_deadlocks(f, 0, NULL, NULL);
}

static void deadlocks_out_of_memory(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    weft_test_oom(report_body, f);
    fclose(f);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(two_lock_cycle_between_threads),
    WEFT_TEST(future_lock_cycle_names_the_pool_task_once),
    WEFT_TEST(mixed_coroutine_thread_cycle),
    WEFT_TEST(coroutine_join_cycle),
    WEFT_TEST(queue_nobody_feeds_is_starvation),
    WEFT_TEST(hub_edeadlk_prints_report),
    WEFT_TEST(hub_edeadlk_while_the_watchdog_runs),
    WEFT_TEST(watchdog_reports_each_situation_once),
    WEFT_TEST(deadlocks_bad_arguments_are_einval),
    WEFT_TEST(deadlocks_out_of_memory),
};
WEFT_TEST_MAIN(cases)
