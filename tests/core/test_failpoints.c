/*
 * test_failpoints.c — fault injection at the system-call wrappers (src/core/sys_internal.h):
 * the failpoint switch itself, then the failpoint loop (weft_test_faults) over the
 * constructors and operations of the core, thread, sync, timer and process layers, one case
 * per operation, each failing every site it reaches once and persistently. The coroutine and
 * IO operations, whose sites depend on the poller, are in tests/io/test_failpoints.c.
 */
#include "weft_test.h"

#include "core/sys_internal.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* ---- the switch --------------------------------------------------------------------------- */

static void failpoint_set_rejects_bad_sites(void **state)
{
    (void)state;
    assert_int_equal(weft__failpoint_set(-1, 1, false), WEFT_EINVAL);
    assert_int_equal(weft__failpoint_set(WEFT__SITE_COUNT, 1, false), WEFT_EINVAL);
    assert_int_equal(weft__failpoint_set(WEFT__SITE_MMAP, -1, false), WEFT_EINVAL);
    assert_int_equal(weft__failpoint_failed(-1), 0);
    assert_string_equal(weft__failpoint_name(WEFT__SITE_COUNT), "?");
    assert_string_equal(weft__failpoint_name(WEFT__SITE_MMAP), "mmap");
    assert_int_equal(atomic_load(&weft__failpoints_armed), 0);
}

static void failpoint_fails_the_nth_call_once_or_from_then_on(void **state)
{
    (void)state;
    void *p[3];
    for (int persistent = 0; persistent <= 1; persistent++) {
        assert_int_equal(weft__failpoint_set(WEFT__SITE_MMAP, 2, persistent), 0);
        assert_int_equal(weft_shm_alloc(4096, &p[0]), 0);
        assert_int_equal(weft_shm_alloc(4096, &p[1]), WEFT_ENOMEM);
        assert_null(p[1]);
        assert_int_equal(weft_shm_alloc(4096, &p[2]), persistent ? WEFT_ENOMEM : 0);
        assert_int_equal(weft__failpoint_failed(WEFT__SITE_MMAP), 1 + persistent);
        assert_int_equal(weft__failpoint_set(WEFT__SITE_MMAP, 0, false), 0);
        assert_int_equal(atomic_load(&weft__failpoints_armed), 0);
        assert_int_equal(weft_shm_free(p[0], 4096), 0);
        if (!persistent) assert_int_equal(weft_shm_free(p[2], 4096), 0);
    }
}

/* ---- shared memory ------------------------------------------------------------------------ */

/* Found by the loop: weft_shm_free reported a failing munmap (ENOMEM: the kernel could not
 * split a mapping) as WEFT_EINVAL, a bad argument, though the call was right and may be
 * repeated. */
static void shm_free_failing_munmap_is_enomem_and_keeps_the_region(void **state)
{
    (void)state;
    char *p;
    assert_int_equal(weft_shm_alloc(4096, (void **)&p), 0);
    assert_int_equal(weft__failpoint_set(WEFT__SITE_MUNMAP, 1, false), 0);
    assert_int_equal(weft_shm_free(p, 4096), WEFT_ENOMEM);
    weft__failpoint_set(WEFT__SITE_MUNMAP, 0, false);
    p[0] = 1; /* still mapped */
    assert_int_equal(weft_shm_free(p, 4096), 0);
}

static int shm_anonymous_body(void *ctx)
{
    (void)ctx;
    char *p;
    int rc = weft_shm_alloc(3 * 4096, (void **)&p);
    if (rc) return rc;
    memset(p, 7, 3 * 4096);
    rc = weft_shm_free(p, 3 * 4096);
    if (rc) {
        assert_int_equal(rc, WEFT_ENOMEM);
        assert_int_equal(p[4096], 7); /* still mapped: the caller may free it again */
        munmap(p, 3 * 4096);
    }
    return rc;
}

static void shm_anonymous_alloc_free_under_faults(void **state)
{
    (void)state;
    assert_int_equal(weft_test_faults(WEFT__SITE_MMAP, shm_anonymous_body, NULL), 1);
    assert_int_equal(weft_test_faults(WEFT__SITE_MUNMAP, shm_anonymous_body, NULL), 1);
}

static int shm_named_body(void *ctx)
{
    (void)ctx;
    char name[64];
    snprintf(name, sizeof name, "/weft-failpoints-%d", (int)getpid());
    char *a = NULL, *b = NULL;
    size_t size = 0;
    int rc = weft_shm_open(name, 8192, true, (void **)&a, NULL);
    if (rc) {
        assert_int_equal(weft_shm_unlink(name), WEFT_ENOENT); /* a failed create leaves none */
        return rc;
    }
    a[100] = 42;
    rc = weft_shm_open(name, 0, false, (void **)&b, &size);
    if (rc == 0) {
        assert_int_equal(size, 8192);
        assert_int_equal(b[100], 42);
        if (weft_shm_free(b, size)) munmap(b, size);
    }
    if (weft_shm_free(a, 8192)) munmap(a, 8192);
    assert_int_equal(weft_shm_unlink(name), 0);
    return rc;
}

static void shm_named_open_under_faults(void **state)
{
    (void)state;
    assert_int_equal(weft_test_faults(WEFT__SITE_SHM_OPEN, shm_named_body, NULL), 2);
    assert_int_equal(weft_test_faults(WEFT__SITE_FTRUNCATE, shm_named_body, NULL), 1);
    assert_int_equal(weft_test_faults(WEFT__SITE_MMAP, shm_named_body, NULL), 2);
}

/* ---- threads and timers ------------------------------------------------------------------- */

static void add_one(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

static int thread_body(void *ctx)
{
    _Atomic int ran = 0;
    (void)ctx;
    weft_thread_t *t;
    int rc = weft_thread_start(add_one, &ran, NULL, &t);
    if (rc) return rc;
    rc = weft_thread_join(t, 30);
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&ran), 1);
    assert_int_equal(weft_thread_release(t), 0);
    return 0;
}

static void thread_start_join_under_faults(void **state)
{
    (void)state;
    assert_true(weft_test_faults(WEFT__SITE_PTHREAD_CREATE, thread_body, NULL) >= 1);
    /* Futex waits that end early (EINTR) must be waited again, never taken for a wake. */
    weft_test_faults(WEFT__SITE_FUTEX_WAIT, thread_body, NULL);
}

static int timer_body(void *ctx)
{
    _Atomic int ran = 0;
    (void)ctx;
    weft_timer_t t;
    assert_int_equal(weft_timer_init(&t), 0);
    int rc = weft_timer_start(&t, 0.001, add_one, &ran);
    if (rc == 0) {
        assert_int_equal(weft_timer_join(&t, 30), 0);
        assert_int_equal(atomic_load(&ran), 1);
    }
    assert_int_equal(weft_timer_destroy(&t), 0);
    return rc;
}

static void timer_start_under_faults(void **state)
{
    (void)state;
    weft_test_faults(WEFT__SITE_PTHREAD_CREATE, timer_body, NULL);
    weft_test_faults(WEFT__SITE_FUTEX_WAIT, timer_body, NULL);
}

/* ---- sync: waits whose futex calls fail ----------------------------------------------------- */

typedef struct waiter {
    weft_event_t ev;
    int rc;
} waiter_t;

static void *wait_event(void *arg)
{
    waiter_t *w = arg;
    w->rc = weft_event_wait(&w->ev, 30);
    return NULL;
}

static int event_body(void *ctx)
{
    (void)ctx;
    waiter_t w = {.rc = -1};
    assert_int_equal(weft_event_init(&w.ev), 0);
    /* A timed wait on a clear Event still times out. */
    assert_int_equal(weft_event_wait(&w.ev, 0.02), WEFT_ETIMEDOUT);
    pthread_t t = weft_test_start(wait_event, &w);
    weft_test_wait_queued(&w.ev.waiters_, 1);
    assert_int_equal(weft_event_set(&w.ev), 0);
    weft_test_join(t);
    assert_int_equal(w.rc, 0);
    assert_int_equal(weft_event_destroy(&w.ev), 0);
    return 0;
}

static void event_wait_under_futex_faults(void **state)
{
    (void)state;
    assert_true(weft_test_faults(WEFT__SITE_FUTEX_WAIT, event_body, NULL) >= 1);
}

/* ---- processes and pipes ------------------------------------------------------------------ */

static int exit_seven(void *arg)
{
    (void)arg;
    return 7;
}

static int process_body(void *ctx)
{
    weft_process_opts_t *o = ctx;
    weft_process_t *p;
    int rc = weft_process_start(exit_seven, NULL, o, &p);
    if (rc) return rc;
    int code = -1;
    assert_int_equal(weft_process_join(p, 30), 0);
    assert_int_equal(weft_process_exitcode(p, &code), 0);
    assert_int_equal(code, 7);
    assert_int_equal(weft_process_release(p), 0);
    return 0;
}

static void process_start_join_under_faults(void **state)
{
    (void)state;
    weft_process_opts_t daemon = {.daemon = true};
    assert_int_equal(weft_test_faults(WEFT__SITE_FORK, process_body, NULL), 1);
    assert_int_equal(weft_test_faults(WEFT__SITE_FORK, process_body, &daemon), 1);
    weft_test_faults(WEFT__SITE_PIDFD_OPEN, process_body, NULL);
    weft_test_faults(WEFT__SITE_PTHREAD_CREATE, process_body, &daemon);
    weft_test_faults(WEFT__SITE_SOCKETPAIR, process_body, NULL);
    weft_test_faults(WEFT__SITE_FUTEX_WAIT, process_body, NULL);
}

static int task_count(void)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Found by the loop under TSan: a plain start after the daemon forker thread had ended made
 * the child report a data race (and exit 66) on the forker state its fork handler resets,
 * last written by the forker, which nothing ordered before the fork. */
static void process_start_after_the_daemon_forker_ended(void **state)
{
    (void)state;
    int threads = task_count();
    weft_process_opts_t daemon = {.daemon = true};
    assert_int_equal(process_body(&daemon), 0);
    for (int i = 0; i < 5000 && task_count() > threads; i++) { /* the forker leaves */
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(task_count(), threads);
    assert_int_equal(process_body(NULL), 0);
}

static int pipe_body(void *ctx)
{
    (void)ctx;
    weft_conn_t *a, *b;
    int rc = weft_pipe_create(true, &a, &b);
    if (rc) return rc;
    char buf[8];
    size_t len = 0;
    assert_int_equal(weft_conn_send_bytes(a, "ping", 4, 10), 0);
    assert_int_equal(weft_conn_recv_bytes(b, buf, sizeof buf, 10, &len), 0);
    assert_int_equal(len, 4);
    assert_int_equal(weft_conn_release(a), 0);
    assert_int_equal(weft_conn_release(b), 0);
    return 0;
}

/* A one-way Pipe: two pipe2 calls (its pipe and the sentinel), each may fail. */
static int one_way_pipe_body(void *ctx)
{
    (void)ctx;
    weft_conn_t *r, *w;
    int rc = weft_pipe_create(false, &r, &w);
    if (rc) return rc;
    char buf[8];
    size_t len = 0;
    assert_int_equal(weft_conn_send_bytes(w, "ping", 4, 10), 0);
    assert_int_equal(weft_conn_recv_bytes(r, buf, sizeof buf, 10, &len), 0);
    assert_int_equal(len, 4);
    assert_int_equal(weft_conn_release(r), 0);
    assert_int_equal(weft_conn_send_bytes(w, "ping", 4, 10), WEFT_EPIPE);
    assert_int_equal(weft_conn_release(w), 0);
    return 0;
}

static void pipe_create_under_faults(void **state)
{
    (void)state;
    assert_int_equal(weft_test_faults(WEFT__SITE_SOCKETPAIR, pipe_body, NULL), 1);
    assert_int_equal(weft_test_faults(WEFT__SITE_PIPE2, one_way_pipe_body, NULL), 2);
}

static int mpqueue_body(void *ctx)
{
    (void)ctx;
    weft_mpqueue_t *q;
    int rc = weft_mpqueue_create(4096, 0, false, &q);
    if (rc) return rc;
    char buf[8];
    size_t len = 0;
    assert_int_equal(weft_mpqueue_put(q, "abc", 3, 10), 0);
    assert_int_equal(weft_mpqueue_get(q, buf, sizeof buf, 10, &len), 0);
    assert_int_equal(len, 3);
    rc = weft_mpqueue_release(q);
    if (rc) assert_int_equal(rc, WEFT_ENOMEM); /* munmap refused: mapped still, not leaked */
    return rc;
}

static void mpqueue_under_faults(void **state)
{
    (void)state;
    assert_int_equal(weft_test_faults(WEFT__SITE_MMAP, mpqueue_body, NULL), 1);
    assert_int_equal(weft_test_faults(WEFT__SITE_MUNMAP, mpqueue_body, NULL), 1);
}

/* Found by the loop: a release whose munmap fails returned WEFT_EINVAL, documented for NULL
 * only. The handle is freed all the same (the leak guard checks it). */
static void mpqueue_release_failing_munmap_is_enomem_and_frees_the_handle(void **state)
{
    (void)state;
    weft_mpqueue_t *q;
    assert_int_equal(weft_mpqueue_create(4096, 0, false, &q), 0);
    assert_int_equal(weft__failpoint_set(WEFT__SITE_MUNMAP, 1, false), 0);
    assert_int_equal(weft_mpqueue_release(q), WEFT_ENOMEM);
    weft__failpoint_set(WEFT__SITE_MUNMAP, 0, false);
}

static void ignore_report(const char *name, double seconds, void *arg)
{
    (void)name;
    (void)seconds;
    (void)arg;
}

static int watchdog_body(void *ctx)
{
    (void)ctx;
    int rc = weft_watchdog_start(1, ignore_report, NULL);
    if (rc) return rc;
    assert_int_equal(weft_watchdog_stop(), 0);
    return 0;
}

static void watchdog_start_under_faults(void **state)
{
    (void)state;
    assert_int_equal(weft_test_faults(WEFT__SITE_PTHREAD_CREATE, watchdog_body, NULL), 1);
    assert_int_equal(weft_watchdog_stop(), WEFT_EALREADY);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(failpoint_set_rejects_bad_sites),
        WEFT_TEST(failpoint_fails_the_nth_call_once_or_from_then_on),
        WEFT_TEST(shm_free_failing_munmap_is_enomem_and_keeps_the_region),
        WEFT_TEST(shm_anonymous_alloc_free_under_faults),
        WEFT_TEST(shm_named_open_under_faults),
        WEFT_TEST(thread_start_join_under_faults),
        WEFT_TEST(timer_start_under_faults),
        WEFT_TEST(event_wait_under_futex_faults),
        WEFT_TEST(process_start_join_under_faults),
        WEFT_TEST(process_start_after_the_daemon_forker_ended),
        WEFT_TEST(pipe_create_under_faults),
        WEFT_TEST(mpqueue_under_faults),
        WEFT_TEST(mpqueue_release_failing_munmap_is_enomem_and_frees_the_handle),
        WEFT_TEST(watchdog_start_under_faults),
    };
    return weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
