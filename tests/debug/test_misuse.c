/*
 * The debug mode (WEFT_DEBUG, preset `debug`): misuse of a caller-allocated object or of a
 * handle is reported on stderr, naming the call and the object, and the process aborts;
 * correct use raises nothing. Built and registered only in a WEFT_DEBUG build.
 *
 * Each misuse case forks a child that commits it with its stderr on a pipe; the parent checks
 * that the child died of SIGABRT and that the one line names the call and the object's kind.
 * (The child never returns into cmocka.) The objects are set up in the child, so the parent's
 * leak guard sees nothing of them.
 */
#include "weft_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs misuse() in a child with stderr on a pipe: it must die of SIGABRT having written one
 * "weft: misuse: <call>(0x...): ..." line that contains `what`. */
static void expect_misuse(void (*misuse)(void), const char *call, const char *what)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core); /* an abort that is expected leaves no core file */
        if (dup2(p[1], STDERR_FILENO) < 0) _exit(2);
        close(p[0]);
        close(p[1]);
        misuse();
        _exit(3); /* not reported: the parent sees exit code 3 instead of SIGABRT */
    }
    close(p[1]);
    char out[1024];
    size_t n = 0;
    ssize_t got;
    while (n < sizeof out - 1 && (got = read(p[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)got;
    out[n] = '\0';
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("child: status %#x, stderr: %s", status, out);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "weft: misuse: %s(0x", call);
    if (!strstr(out, prefix) || !strstr(out, what))
        fail_msg("expected \"%s...): ...%s\", got: %s", prefix, what, out);
}

/* ---- caller-allocated objects ------------------------------------------------------------ */

static void garbage_event_wait(void)
{
    weft_event_t e;
    memset(&e, 0x5a, sizeof e);
    (void)weft_event_wait(&e, 0);
}

static void garbage_event_wait_is_reported(void **state)
{
    (void)state;
    expect_misuse(garbage_event_wait, "weft_event_wait",
                  "not an initialised weft_event_t (garbage or never initialised)");
}

static void garbage_semaphore_release(void)
{
    weft_semaphore_t s;
    memset(&s, 0xff, sizeof s);
    (void)weft_semaphore_release(&s, 1);
}

static void garbage_semaphore_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(garbage_semaphore_release, "weft_semaphore_release",
                  "not an initialised weft_semaphore_t");
}

static void lock_after_destroy(void)
{
    weft_lock_t l;
    if (weft_lock_init(&l) || weft_lock_destroy(&l)) _exit(4);
    (void)weft_lock_acquire(&l, 0);
}

static void lock_used_after_destroy_is_reported(void **state)
{
    (void)state;
    expect_misuse(lock_after_destroy, "weft_lock_acquire",
                  "weft_lock_t used after weft_lock_destroy");
}

static void static_lock_after_destroy(void)
{
    static weft_lock_t l = WEFT_LOCK_INIT;
    if (weft_lock_destroy(&l)) _exit(4);
    (void)weft_lock_release(&l);
}

static void static_lock_used_after_destroy_is_reported(void **state)
{
    (void)state;
    expect_misuse(static_lock_after_destroy, "weft_lock_release",
                  "weft_lock_t used after weft_lock_destroy");
}

static void event_destroy_twice(void)
{
    weft_event_t e;
    if (weft_event_init(&e) || weft_event_destroy(&e)) _exit(4);
    (void)weft_event_destroy(&e);
}

static void event_destroyed_twice_is_reported(void **state)
{
    (void)state;
    expect_misuse(event_destroy_twice, "weft_event_destroy",
                  "weft_event_t used after weft_event_destroy");
}

static void rlock_after_destroy(void)
{
    weft_rlock_t r;
    if (weft_rlock_init(&r) || weft_rlock_destroy(&r)) _exit(4);
    (void)weft_rlock_acquire(&r, 0);
}

static void rlock_used_after_destroy_is_reported(void **state)
{
    (void)state;
    expect_misuse(rlock_after_destroy, "weft_rlock_acquire",
                  "weft_rlock_t used after weft_rlock_destroy");
}

static void condition_after_destroy(void)
{
    weft_condition_t c;
    if (weft_condition_init(&c, NULL, NULL) || weft_condition_destroy(&c)) _exit(4);
    (void)weft_condition_notify_all(&c);
}

static void condition_used_after_destroy_is_reported(void **state)
{
    (void)state;
    expect_misuse(condition_after_destroy, "weft_condition_notify_all",
                  "weft_condition_t used after weft_condition_destroy");
}

static void barrier_after_destroy(void)
{
    weft_barrier_t b;
    if (weft_barrier_init(&b, 1, NULL, NULL) || weft_barrier_destroy(&b)) _exit(4);
    (void)weft_barrier_wait(&b, 0);
}

static void barrier_used_after_destroy_is_reported(void **state)
{
    (void)state;
    expect_misuse(barrier_after_destroy, "weft_barrier_wait",
                  "weft_barrier_t used after weft_barrier_destroy");
}

static void nothing(void *arg)
{
    (void)arg;
}

static void timer_after_destroy(void)
{
    weft_timer_t t = WEFT_TIMER_INIT;
    if (weft_timer_destroy(&t)) _exit(4);
    (void)weft_timer_start(&t, 10, nothing, NULL);
}

static void timer_used_after_destroy_is_reported(void **state)
{
    (void)state;
    expect_misuse(timer_after_destroy, "weft_timer_start",
                  "weft_timer_t used after weft_timer_destroy");
}

static void value_after_destroy(void)
{
    weft_value_t v;
    if (weft_value_init(&v, 1) || weft_value_destroy(&v)) _exit(4);
    (void)weft_value_set(&v, 2);
}

static void value_used_after_destroy_is_reported(void **state)
{
    (void)state;
    expect_misuse(value_after_destroy, "weft_value_set",
                  "weft_value_t used after weft_value_destroy");
}

/* ---- handles ------------------------------------------------------------------------------ */

static weft_event_t go = WEFT_EVENT_INIT;

static void wait_go(void *arg)
{
    (void)arg;
    (void)weft_event_wait(&go, 30);
}

/* The thread still runs (it holds a reference of its own): the second release is the
 * program's second, and is caught although the record is alive. */
static void thread_release_twice(void)
{
    weft_thread_t *t;
    if (weft_thread_start(wait_go, NULL, NULL, &t)) _exit(4);
    if (weft_thread_release(t)) _exit(5);
    (void)weft_thread_release(t);
}

static void thread_double_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(thread_release_twice, "weft_thread_release", "thread handle released twice");
}

/* Joined and released, the record is gone (quarantined): the second release names the same
 * misuse, not a use after release (a headers-only program read "weft_thread_t used after
 * weft_thread_release" for its double release). */
static void thread_join_then_release_twice(void)
{
    weft_thread_t *t;
    if (weft_thread_start(nothing, NULL, NULL, &t)) _exit(4);
    if (weft_thread_join(t, 30) || weft_thread_release(t)) _exit(5);
    (void)weft_thread_release(t);
}

static void thread_double_release_after_join_is_reported_as_such(void **state)
{
    (void)state;
    expect_misuse(thread_join_then_release_twice, "weft_thread_release",
                  "thread handle released twice");
}

/* Two references (start, retain), three releases: the third is caught. */
static void thread_retain_then_release_three_times(void)
{
    weft_thread_t *t;
    if (weft_thread_start(wait_go, NULL, NULL, &t)) _exit(4);
    weft_thread_t *again = weft_thread_retain(t);
    if (weft_thread_release(again) || weft_thread_release(t)) _exit(5);
    (void)weft_thread_release(t);
}

static void thread_release_after_retain_and_two_releases_is_reported(void **state)
{
    (void)state;
    expect_misuse(thread_retain_then_release_three_times, "weft_thread_release",
                  "thread handle released twice");
}

static int wait_go_task(void *arg, void **result)
{
    (void)arg, (void)result;
    return weft_event_wait(&go, 30);
}

/* The task still runs and holds the queue's reference: the double release is the program's. */
static void future_release_twice(void)
{
    weft_executor_t *ex;
    weft_future_t *f;
    if (weft_thread_pool_create(1, NULL, &ex)) _exit(4);
    if (weft_executor_submit(ex, wait_go_task, NULL, &f)) _exit(5);
    if (weft_future_release(f)) _exit(6);
    (void)weft_future_release(f);
}

static void future_double_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(future_release_twice, "weft_future_release", "future handle released twice");
}

static void future_use_after_release(void)
{
    weft_future_t *f;
    if (weft_future_create(&f) || weft_future_release(f)) _exit(4);
    (void)weft_future_set_result(f, NULL);
}

static void future_used_after_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(future_use_after_release, "weft_future_set_result",
                  "weft_future_t used after weft_future_release");
}

static void co_release_twice(void)
{
    weft_co_t *co;
    if (weft_co_spawn(nothing, NULL, NULL, &co)) _exit(4);
    if (weft_co_join(co, 10) || weft_co_release(co)) _exit(5);
    (void)weft_co_release(co);
}

static void co_double_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(co_release_twice, "weft_co_release", "co handle released twice");
}

static int exit_zero(void *arg)
{
    (void)arg;
    return 0;
}

static void process_release_twice(void)
{
    weft_process_t *p;
    if (weft_process_start(exit_zero, NULL, NULL, &p)) _exit(4);
    if (weft_process_join(p, 10) || weft_process_release(p)) _exit(5);
    (void)weft_process_release(p);
}

static void process_double_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(process_release_twice, "weft_process_release", "process handle released twice");
}

static void conn_release_twice(void)
{
    weft_conn_t *a, *b;
    if (weft_pipe_create(true, &a, &b)) _exit(4);
    if (weft_conn_release(a)) _exit(5);
    (void)weft_conn_release(a);
}

static void conn_double_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(conn_release_twice, "weft_conn_release", "conn handle released twice");
}

static void queue_release_twice(void)
{
    weft_queue_t *q;
    if (weft_queue_create(WEFT_QUEUE_FIFO, 0, &q) || weft_queue_release(q)) _exit(4);
    (void)weft_queue_release(q);
}

static void queue_double_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(queue_release_twice, "weft_queue_release", "queue handle released twice");
}

static void queue_put_after_release(void)
{
    weft_queue_t *q;
    if (weft_queue_create(WEFT_QUEUE_FIFO, 0, &q) || weft_queue_release(q)) _exit(4);
    if (weft_queue_put_nowait(q, NULL) == 0) _exit(5);
}

static void queue_used_after_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(queue_put_after_release, "weft_queue_put_nowait",
                  "weft_queue_t used after weft_queue_release");
}

static void garbage_queue_get(void)
{
    static uint64_t fake[64]; /* zeroes: no queue weft made */
    void *item;
    if (weft_queue_get_nowait((weft_queue_t *)fake, &item) == 0) _exit(5);
}

static void garbage_queue_handle_is_reported(void **state)
{
    (void)state;
    expect_misuse(garbage_queue_get, "weft_queue_get_nowait", "not a weft_queue_t");
}

static void mpqueue_release_twice(void)
{
    weft_mpqueue_t *q;
    if (weft_mpqueue_create(0, 0, false, &q) || weft_mpqueue_release(q)) _exit(4);
    (void)weft_mpqueue_release(q);
}

static void mpqueue_double_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(mpqueue_release_twice, "weft_mpqueue_release", "mpqueue handle released twice");
}

static void executor_release_twice(void)
{
    weft_executor_t *ex;
    if (weft_thread_pool_create(1, NULL, &ex)) _exit(4);
    if (weft_executor_shutdown(ex, true, false, 10) || weft_executor_release(ex)) _exit(5);
    (void)weft_executor_release(ex);
}

static void executor_double_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(executor_release_twice, "weft_executor_release",
                  "executor handle released twice");
}

static void group_release_twice(void)
{
    weft_group_t *g;
    if (weft_group_create(0, &g) || weft_group_release(g)) _exit(4);
    (void)weft_group_release(g);
}

static void group_double_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(group_release_twice, "weft_group_release", "group handle released twice");
}

static void as_completed_release_twice(void)
{
    weft_as_completed_t *it;
    if (weft_as_completed_create(NULL, 0, 1, &it) || weft_as_completed_release(it)) _exit(4);
    (void)weft_as_completed_release(it);
}

static void as_completed_double_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(as_completed_release_twice, "weft_as_completed_release",
                  "as_completed handle released twice");
}

static void thread_local_release_twice(void)
{
    weft_thread_local_t *l;
    if (weft_thread_local_create(NULL, &l) || weft_thread_local_release(l)) _exit(4);
    (void)weft_thread_local_release(l);
}

static void thread_local_double_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(thread_local_release_twice, "weft_thread_local_release",
                  "thread_local handle released twice");
}

static void handler(int fd, void *arg)
{
    (void)fd, (void)arg;
}

static void server_release_twice(void)
{
    int lfd;
    weft_server_t *s;
    if (weft_tcp_listen("127.0.0.1:0", 4, &lfd)) _exit(4);
    if (weft_server_create(lfd, handler, NULL, NULL, &s) || weft_server_release(s)) _exit(5);
    (void)weft_server_release(s);
}

static void server_double_release_is_reported(void **state)
{
    (void)state;
    expect_misuse(server_release_twice, "weft_server_release", "server handle released twice");
}

/* ---- correct use raises nothing ---------------------------------------------------------- */

static weft_lock_t s_lock = WEFT_LOCK_INIT;
static weft_rlock_t s_rlock = WEFT_RLOCK_INIT;
static weft_semaphore_t s_sem = WEFT_SEMAPHORE_INIT(1);
static weft_event_t s_event = WEFT_EVENT_INIT;
static weft_condition_t s_cond = WEFT_CONDITION_INIT;
static weft_barrier_t s_barrier = WEFT_BARRIER_INIT(1);
static weft_timer_t s_timer = WEFT_TIMER_INIT;
static weft_value_t s_value = WEFT_VALUE_INIT(0);

static int answer(void *arg, void **result)
{
    *result = arg;
    return 0;
}

/* Every object through init, use, destroy, init again (a destroyed object may be re-initialised);
 * the static initializers through use and destroy; every handle through create, use, release. */
static void correct_use_raises_nothing(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        weft_lock_t l;
        weft_rlock_t r;
        weft_semaphore_t s;
        weft_event_t e;
        weft_condition_t c;
        weft_barrier_t b;
        weft_timer_t t;
        weft_value_t v;
        assert_int_equal(weft_lock_init(&l), 0);
        assert_int_equal(weft_rlock_init(&r), 0);
        assert_int_equal(weft_semaphore_init(&s, 1, true), 0);
        assert_int_equal(weft_event_init(&e), 0);
        assert_int_equal(weft_condition_init(&c, &l, NULL), 0);
        assert_int_equal(weft_barrier_init(&b, 1, NULL, NULL), 0);
        assert_int_equal(weft_timer_init(&t), 0);
        assert_int_equal(weft_value_init(&v, 1), 0);
        assert_int_equal(weft_lock_acquire(&l, 0), 0);
        assert_int_equal(weft_condition_notify_all(&c), 0);
        assert_true(weft_lock_locked(&l));
        assert_int_equal(weft_lock_release(&l), 0);
        assert_int_equal(weft_rlock_acquire(&r, 0), 0);
        assert_true(weft_rlock_is_owned(&r));
        assert_int_equal(weft_rlock_release(&r), 0);
        assert_int_equal(weft_semaphore_acquire(&s, 0), 0);
        assert_int_equal(weft_semaphore_release(&s, 1), 0);
        assert_int_equal(weft_event_set(&e), 0);
        assert_int_equal(weft_event_wait(&e, 0), 0);
        assert_int_equal(weft_barrier_wait(&b, 0), 0);
        assert_int_equal(weft_timer_start(&t, 0, weft_event_set_cb, &e), 0);
        assert_int_equal(weft_timer_join(&t, 10), 0);
        assert_int_equal(weft_value_add(&v, 1, NULL), 0);
        assert_int_equal(weft_lock_destroy(&l), 0);
        assert_int_equal(weft_rlock_destroy(&r), 0);
        assert_int_equal(weft_semaphore_destroy(&s), 0);
        assert_int_equal(weft_event_destroy(&e), 0);
        assert_int_equal(weft_condition_destroy(&c), 0);
        assert_int_equal(weft_barrier_destroy(&b), 0);
        assert_int_equal(weft_timer_destroy(&t), 0);
        assert_int_equal(weft_value_destroy(&v), 0);
    }
    assert_false(weft_lock_locked(&s_lock)); /* a query on a static initializer stamps nothing */
    assert_int_equal(weft_lock_acquire(&s_lock, 0), 0);
    assert_int_equal(weft_lock_release(&s_lock), 0);
    assert_int_equal(weft_rlock_acquire(&s_rlock, 0), 0);
    assert_int_equal(weft_rlock_release(&s_rlock), 0);
    assert_int_equal(weft_semaphore_acquire(&s_sem, 0), 0);
    assert_int_equal(weft_semaphore_release(&s_sem, 1), 0);
    assert_int_equal(weft_event_set(&s_event), 0);
    assert_int_equal(weft_condition_acquire(&s_cond, 0), 0);
    assert_int_equal(weft_condition_notify(&s_cond, 1), 0);
    assert_int_equal(weft_condition_release(&s_cond), 0);
    assert_int_equal(weft_barrier_wait(&s_barrier, 0), 0);
    assert_int_equal(weft_timer_start(&s_timer, 0, nothing, NULL), 0);
    assert_int_equal(weft_timer_join(&s_timer, 10), 0);
    assert_int_equal(weft_value_set(&s_value, 3), 0);
    assert_int_equal(weft_lock_destroy(&s_lock), 0);
    assert_int_equal(weft_rlock_destroy(&s_rlock), 0);
    assert_int_equal(weft_semaphore_destroy(&s_sem), 0);
    assert_int_equal(weft_event_destroy(&s_event), 0);
    assert_int_equal(weft_condition_destroy(&s_cond), 0);
    assert_int_equal(weft_barrier_destroy(&s_barrier), 0);
    assert_int_equal(weft_timer_destroy(&s_timer), 0);
    assert_int_equal(weft_value_destroy(&s_value), 0);

    /* Handles: a retained reference is released once per reference. */
    weft_executor_t *ex;
    weft_future_t *f;
    void *out;
    assert_int_equal(weft_thread_pool_create(1, NULL, &ex), 0);
    assert_int_equal(weft_executor_submit(ex, answer, (void *)42, &f), 0);
    weft_future_t *f2 = weft_future_retain(f);
    assert_int_equal(weft_future_result(f, 10, &out), 0);
    assert_ptr_equal(out, (void *)42);
    weft_as_completed_t *it;
    assert_int_equal(weft_as_completed_create(&f, 1, 10, &it), 0);
    weft_future_t *done;
    assert_int_equal(weft_as_completed_next(it, &done), 0);
    assert_int_equal(weft_as_completed_release(it), 0);
    assert_int_equal(weft_future_release(f), 0);
    assert_int_equal(weft_future_release(f2), 0);
    assert_int_equal(weft_executor_shutdown(ex, true, false, 10), 0);
    assert_int_equal(weft_executor_release(ex), 0);

    weft_thread_t *t;
    assert_int_equal(weft_thread_start(nothing, NULL, NULL, &t), 0);
    weft_thread_t *t2 = weft_thread_retain(t);
    assert_int_equal(weft_thread_join(t, 10), 0);
    assert_int_equal(weft_thread_release(t), 0);
    assert_int_equal(weft_thread_release(t2), 0);
    assert_int_equal(weft_thread_release(weft_thread_main()), 0); /* ignored, as documented */

    weft_co_t *co;
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, &co), 0);
    assert_int_equal(weft_co_join(co, 10), 0);
    assert_int_equal(weft_co_release(co), 0);
    weft_group_t *g;
    assert_int_equal(weft_group_create(2, &g), 0);
    assert_int_equal(weft_group_spawn(g, nothing, NULL, 10, NULL), 0);
    assert_int_equal(weft_group_join(g, 10), 0);
    assert_int_equal(weft_group_release(g), 0);

    weft_queue_t *q;
    void *item;
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 1, &q), 0);
    assert_int_equal(weft_queue_put(q, (void *)1, 0), 0);
    assert_int_equal(weft_queue_get(q, 0, &item), 0);
    assert_int_equal(weft_queue_release(q), 0);

    weft_mpqueue_t *mq;
    char buf[8];
    size_t len;
    assert_int_equal(weft_mpqueue_create(0, 0, false, &mq), 0);
    assert_int_equal(weft_mpqueue_put(mq, "x", 1, 0), 0);
    assert_int_equal(weft_mpqueue_get(mq, buf, sizeof buf, 10, &len), 0);
    assert_int_equal(weft_mpqueue_release(mq), 0);

    weft_conn_t *a, *b;
    assert_int_equal(weft_pipe_create(true, &a, &b), 0);
    assert_int_equal(weft_conn_send_bytes(a, "y", 1, 10), 0);
    assert_int_equal(weft_conn_recv_bytes(b, buf, sizeof buf, 10, &len), 0);
    assert_int_equal(weft_conn_release(a), 0);
    assert_int_equal(weft_conn_release(b), 0);

    weft_process_t *p;
    assert_int_equal(weft_process_start(exit_zero, NULL, NULL, &p), 0);
    assert_int_equal(weft_process_join(p, 10), 0);
    assert_int_equal(weft_process_release(p), 0);

    weft_thread_local_t *tl;
    assert_int_equal(weft_thread_local_create(NULL, &tl), 0);
    assert_int_equal(weft_thread_local_set(tl, &tl), 0);
    assert_ptr_equal(weft_thread_local_get(tl), &tl);
    assert_int_equal(weft_thread_local_release(tl), 0);

    int lfd;
    weft_server_t *srv;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 4, &lfd), 0);
    assert_int_equal(weft_server_create(lfd, handler, NULL, NULL, &srv), 0);
    assert_int_equal(weft_server_release(srv), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(garbage_event_wait_is_reported),
    WEFT_TEST(garbage_semaphore_release_is_reported),
    WEFT_TEST(lock_used_after_destroy_is_reported),
    WEFT_TEST(static_lock_used_after_destroy_is_reported),
    WEFT_TEST(event_destroyed_twice_is_reported),
    WEFT_TEST(rlock_used_after_destroy_is_reported),
    WEFT_TEST(condition_used_after_destroy_is_reported),
    WEFT_TEST(barrier_used_after_destroy_is_reported),
    WEFT_TEST(timer_used_after_destroy_is_reported),
    WEFT_TEST(value_used_after_destroy_is_reported),
    WEFT_TEST(thread_double_release_is_reported),
    WEFT_TEST(thread_double_release_after_join_is_reported_as_such),
    WEFT_TEST(thread_release_after_retain_and_two_releases_is_reported),
    WEFT_TEST(future_double_release_is_reported),
    WEFT_TEST(future_used_after_release_is_reported),
    WEFT_TEST(co_double_release_is_reported),
    WEFT_TEST(process_double_release_is_reported),
    WEFT_TEST(conn_double_release_is_reported),
    WEFT_TEST(queue_double_release_is_reported),
    WEFT_TEST(queue_used_after_release_is_reported),
    WEFT_TEST(garbage_queue_handle_is_reported),
    WEFT_TEST(mpqueue_double_release_is_reported),
    WEFT_TEST(executor_double_release_is_reported),
    WEFT_TEST(group_double_release_is_reported),
    WEFT_TEST(as_completed_double_release_is_reported),
    WEFT_TEST(thread_local_double_release_is_reported),
    WEFT_TEST(server_double_release_is_reported),
    WEFT_TEST(correct_use_raises_nothing),
};
WEFT_TEST_MAIN(cases)
