/* The thread pool at process exit and across fork. A pool must never make a program hang at
 * exit (CPython gh-72165, gh-80961: interpreter exit blocked on a pool's workers), and a fork
 * child, where the workers do not exist, must get errors rather than futures that never end.
 * Each case forks a child that does the thing and reports through its exit status and a
 * pipe; the parent bounds how long that may take. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft_test.h"

static int write_fd = -1;
static weft_event_t never;

/* Waits on an event nobody sets, for `arg` seconds at most; writes what the wait returned. */
static int blocked_task(void *arg, void **result)
{
    (void)result;
    double seconds = *(double *)arg;
    int rc = weft_event_wait(&never, seconds);
    const char *what = rc == WEFT_ECANCELED ? "C" : rc == WEFT_ETIMEDOUT ? "T" : "?";
    ssize_t w = write(write_fd, what, 1);
    (void)w;
    return rc;
}

static int quick_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    struct timespec ts = {0, 50 * 1000000L}; /* the work: 50 ms */
    nanosleep(&ts, NULL);
    ssize_t w = write(write_fd, "q", 1);
    (void)w;
    return 0;
}

typedef struct child_plan {
    double exit_timeout;
    bool shut_down_first; /* shutdown(wait=false) before exit */
    int blocked;          /* tasks blocked on `never` for task_seconds */
    int quick;            /* 50 ms tasks queued behind them */
    double task_seconds;
} child_plan_t;

/* The child: a pool of one worker with the plan's tasks, then exit(0) without a shutdown. */
static void child_run(const child_plan_t *plan)
{
    weft_event_init(&never);
    weft_thread_pool_opts_t opts = {.exit_timeout = plan->exit_timeout};
    weft_executor_t *ex;
    if (weft_thread_pool_create(1, &opts, &ex)) _exit(3);
    double seconds = plan->task_seconds;
    for (int i = 0; i < plan->blocked; i++)
        if (weft_executor_submit(ex, blocked_task, &seconds, NULL)) _exit(4);
    for (int i = 0; i < plan->quick; i++)
        if (weft_executor_submit(ex, quick_task, NULL, NULL)) _exit(5);
    if (plan->shut_down_first && weft_executor_shutdown(ex, false, false, 0)) _exit(6);
    exit(0); /* as a return from main: atexit handlers run */
}

/* Runs the plan in a child; returns what its tasks wrote, and how long the child took. */
static size_t run_child(const child_plan_t *plan, char *buf, size_t cap, double *elapsed)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    double t0 = weft_time_monotonic();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        write_fd = fds[1];
        child_run(plan);
    }
    close(fds[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *elapsed = weft_time_monotonic() - t0;
    size_t n = 0;
    for (ssize_t r; n < cap && (r = read(fds[0], buf + n, cap - n)) > 0;) n += (size_t)r;
    close(fds[0]);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    return n;
}

/* gh-72165: a pool that was never shut down, with a task that would block for 30 s, does not
 * hold up exit (default exit_timeout 0). */
static void exit_does_not_wait_for_an_open_pool(void **state)
{
    (void)state;
    child_plan_t plan = {.blocked = 1, .quick = 3, .task_seconds = 30};
    char buf[16];
    double elapsed;
    size_t n = run_child(&plan, buf, sizeof buf, &elapsed);
    assert_true(elapsed < 20);
    /* The queued quick tasks were cancelled, not run. */
    assert_null(memchr(buf, 'q', n));
}

/* With an exit_timeout, exit first gives queued and running tasks that long to finish
 * (Python's wait-at-exit, bounded). */
static void exit_waits_up_to_exit_timeout(void **state)
{
    (void)state;
    child_plan_t plan = {.exit_timeout = 30, .quick = 3};
    char buf[16];
    double elapsed;
    size_t n = run_child(&plan, buf, sizeof buf, &elapsed);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "qqq", 3);
    assert_true(elapsed < 20);
}

/* exit_timeout follows the duration rule: 0, the default, is no wait; a negative value other
 * than WEFT_FOREVER is WEFT_EINVAL at create (before, negative was documented apart from 0);
 * WEFT_FOREVER is no limit: exit waits for every task, here a blocked one that ends by its own
 * 0.5 s timeout, then the queued ones (before, WEFT_FOREVER did not wait at all: the quick
 * tasks were cancelled). */
static void exit_timeout_zero_is_no_wait_forever_no_limit_negative_einval(void **state)
{
    (void)state;
    weft_thread_pool_opts_t bad = {.exit_timeout = -1};
    weft_executor_t *ex = (weft_executor_t *)1;
    assert_int_equal(weft_thread_pool_create(1, &bad, &ex), WEFT_EINVAL);
    assert_null(ex);
    child_plan_t none = {.exit_timeout = 0, .blocked = 1, .quick = 3, .task_seconds = 30};
    char buf[16];
    double elapsed;
    size_t n = run_child(&none, buf, sizeof buf, &elapsed);
    assert_true(elapsed < 20);
    assert_null(memchr(buf, 'q', n));

    child_plan_t all = {
        .exit_timeout = WEFT_FOREVER, .blocked = 1, .quick = 2, .task_seconds = 0.5};
    n = run_child(&all, buf, sizeof buf, &elapsed);
    assert_true(elapsed >= 0.4);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "Tqq", 3);
}

/* When exit_timeout passes with a task still blocked, that task is asked to stop (its wait
 * fails with WEFT_ECANCELED) and exit goes on. */
static void exit_timeout_passes_then_tasks_are_canceled(void **state)
{
    (void)state;
    child_plan_t plan = {.exit_timeout = 0.2, .blocked = 1, .quick = 2, .task_seconds = 30};
    char buf[16];
    double elapsed;
    size_t n = run_child(&plan, buf, sizeof buf, &elapsed);
    assert_true(elapsed >= 0.15);
    assert_true(elapsed < 20);
    assert_null(memchr(buf, 'q', n)); /* queued behind the blocked one: cancelled */
    assert_null(memchr(buf, 'T', n)); /* the blocked wait never ran into its own timeout */
}

/* gh-80961: exit does not wait for a pool shut down with wait=false, whatever its
 * exit_timeout. */
static void exit_ignores_pools_shut_down_without_waiting(void **state)
{
    (void)state;
    child_plan_t plan = {
        .exit_timeout = 30, .shut_down_first = true, .blocked = 1, .task_seconds = 30};
    char buf[16];
    double elapsed;
    run_child(&plan, buf, sizeof buf, &elapsed);
    assert_true(elapsed < 20);
}

/* weft_process_start's child ends, when its function returns, through the same exit rules as
 * exit() (Python's Process._bootstrap: threading._shutdown runs the pools' atexit callbacks):
 * a pool its function left open gets its exit_timeout too. */
static int child_leaves_pool_open(void *arg)
{
    (void)arg;
    weft_thread_pool_opts_t opts = {.exit_timeout = 30};
    weft_executor_t *ex;
    if (weft_thread_pool_create(1, &opts, &ex)) return 3;
    for (int i = 0; i < 3; i++)
        if (weft_executor_submit(ex, quick_task, NULL, NULL)) return 4;
    return 0; /* no shutdown: the exit rules decide */
}

static void process_child_gives_its_pool_exit_timeout(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    write_fd = fds[1]; /* the child's copy */
    weft_process_t *p;
    assert_int_equal(weft_process_start(child_leaves_pool_open, NULL, NULL, &p), 0);
    close(fds[1]);
    write_fd = -1;
    assert_int_equal(weft_process_join(p, 60), 0);
    int code;
    assert_int_equal(weft_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(weft_process_release(p), 0);
    char buf[16];
    size_t n = 0;
    for (ssize_t r; n < sizeof buf && (r = read(fds[0], buf + n, sizeof buf - n)) > 0;)
        n += (size_t)r;
    close(fds[0]);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "qqq", 3);
}

/* ---- fork ------------------------------------------------------------------------------------ */

static weft_event_t release_parent_task;

static int parent_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return weft_event_wait(&release_parent_task, WEFT_FOREVER);
}

/* Child checks, as an exit status (0: all held). */
static int fork_child_checks(weft_executor_t *ex, weft_future_t *running, weft_future_t *queued)
{
    weft_future_t *f;
    if (weft_executor_submit(ex, parent_task, NULL, &f) != WEFT_EBROKEN || f) return 1;
    if (weft_future_result(running, 10, NULL) != WEFT_EWORKERDIED) return 2;
    if (weft_future_result(queued, 10, NULL) != WEFT_EBROKEN) return 3;
    if (!weft_future_error_message(queued)) return 4;
    if (weft_executor_shutdown(ex, true, false, 10) != 0) return 5;
    weft_future_release(running);
    weft_future_release(queued);
    weft_executor_release(ex);
    return 0;
}

/* In a fork child the pool's workers do not exist: its futures fail instead of hanging (a
 * running one with WEFT_EWORKERDIED, a queued one with WEFT_EBROKEN), submit fails with
 * WEFT_EBROKEN, and shutdown/destroy work. The parent's pool is untouched. */
static void fork_child_sees_a_broken_pool(void **state)
{
    (void)state;
    weft_event_init(&release_parent_task);
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(1, NULL, &ex), 0);
    weft_future_t *running, *queued;
    assert_int_equal(weft_executor_submit(ex, parent_task, NULL, &running), 0);
    assert_int_equal(weft_executor_submit(ex, parent_task, NULL, &queued), 0);
    while (!weft_future_running(running)) sched_yield();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(fork_child_checks(ex, running, queued));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    assert_false(weft_future_done(queued));
    weft_event_set(&release_parent_task);
    assert_int_equal(weft_future_result(running, WEFT_FOREVER, NULL), 0);
    assert_int_equal(weft_future_result(queued, WEFT_FOREVER, NULL), 0);
    weft_future_release(running);
    weft_future_release(queued);
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    weft_executor_release(ex);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(exit_does_not_wait_for_an_open_pool),
    WEFT_TEST(exit_waits_up_to_exit_timeout),
    WEFT_TEST(exit_timeout_zero_is_no_wait_forever_no_limit_negative_einval),
    WEFT_TEST(exit_timeout_passes_then_tasks_are_canceled),
    WEFT_TEST(exit_ignores_pools_shut_down_without_waiting),
    WEFT_TEST(process_child_gives_its_pool_exit_timeout),
    WEFT_TEST(fork_child_sees_a_broken_pool),
};
WEFT_TEST_MAIN(cases)
