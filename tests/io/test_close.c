/*
 * weft_fd_close ends every wait on the fd, wherever it waits (issue 20): coroutines of other
 * hubs on other threads, threads without a hub, many waiters on several hubs at once; each
 * gets WEFT_EBADF at once, and none of them ever sees the events of the fd that takes the
 * number next. Thread-side waits (no hub) also see a cancel while they wait. Runs once per
 * poller. Mirrors gevent's test__socket.py test_close_socket_while_blocked (closing a socket
 * from another greenlet ends its recv with EBADF) and test__hub.py (cancel_wait on close).
 */
#include "weft_test.h"

#include "io/io_internal.h"

#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* weft_fd_read's count, or its error: one int for a case to store and compare. */
static int read_count(int fd, void *buf, size_t n, double timeout)
{
    size_t done = 0;
    int rc = weft_fd_read(fd, buf, n, timeout, &done);
    return rc ? rc : (int)done;
}

typedef struct waiter {
    int fd;
    double timeout;
    _Atomic int result;
    int64_t took_ns;
    _Atomic int tid; /* a plain thread's, once it is about to wait */
} waiter_t;

static void read_one(void *p)
{
    waiter_t *w = p;
    uint64_t v; /* 8 bytes: an eventfd's read needs them */
    int64_t t0 = weft_time_monotonic_ns();
    atomic_store(&w->result, read_count(w->fd, &v, sizeof v, w->timeout));
    w->took_ns = weft_time_monotonic_ns() - t0;
}

/* ---- waiters on other threads ------------------------------------------------------------- */

enum { MAX_PER_HUB = 64 };

/* A thread with a hub: n coroutines, waiter i reading w[i].fd. */
typedef struct hub_job {
    int n;
    waiter_t *w;
    weft_co_t *co[MAX_PER_HUB];
    _Atomic int spawned;
    pthread_t tid;
} hub_job_t;

static void *hub_thread(void *p)
{
    hub_job_t *j = p;
    for (int i = 0; i < j->n; i++)
        if (weft_co_spawn(read_one, &j->w[i], NULL, &j->co[i]) != 0) abort();
    atomic_store(&j->spawned, 1);
    for (int i = 0; i < j->n; i++)
        if (weft_co_join(j->co[i], 60) != 0) abort();
    return NULL;
}

static void hub_start(hub_job_t *j, waiter_t *w, int n)
{
    *j = (hub_job_t){.n = n, .w = w};
    j->tid = weft_test_start(hub_thread, j);
}

/* Every coroutine of j is parked (in its weft_fd_read: they do nothing else). */
static void hub_wait_parked(hub_job_t *j)
{
    int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
    while (!atomic_load(&j->spawned)) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
    for (int i = 0; i < j->n; i++)
        while (weft_co_state(j->co[i]) != WEFT_CO_BLOCKED) {
            assert_true(weft_time_monotonic_ns() < give_up);
            sched_yield();
        }
}

static void hub_finish(hub_job_t *j)
{
    weft_test_join(j->tid);
    for (int i = 0; i < j->n; i++) weft_co_release(j->co[i]);
}

/* A plain thread (no hub): weft_fd_read in the thread itself. */
static void *plain_thread(void *p)
{
    waiter_t *w = p;
    atomic_store(&w->tid, gettid());
    read_one(w);
    return NULL;
}

/* ---- cases -------------------------------------------------------------------------------- */

/* A coroutine on another thread's hub waits forever on a pipe; this thread (no hub) closes the
 * pipe: the coroutine gets EBADF at once. */
static void close_wakes_coroutine_of_another_hub(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    waiter_t w = {.fd = p[0], .timeout = WEFT_FOREVER, .result = 1};
    hub_job_t j;
    hub_start(&j, &w, 1);
    hub_wait_parked(&j);
    assert_int_equal(weft_fd_close(p[0]), 0);
    hub_finish(&j);
    assert_int_equal(atomic_load(&w.result), WEFT_EBADF);
    close(p[1]);
}

/* Threads without a hub wait on a pipe, one forever, one for 3 s; another thread closes it:
 * both get EBADF at once (not at their deadline). */
static void close_wakes_plain_thread_waiters(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    waiter_t w[2] = {{.fd = p[0], .timeout = WEFT_FOREVER, .result = 1},
                     {.fd = p[0], .timeout = 3.0, .result = 1}};
    pthread_t t0 = weft_test_start(plain_thread, &w[0]), t1 = weft_test_start(plain_thread, &w[1]);
    weft_test_wait_thread_asleep(&w[0].tid);
    weft_test_wait_thread_asleep(&w[1].tid);
    assert_int_equal(weft_fd_close(p[0]), 0);
    weft_test_join(t0);
    weft_test_join(t1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(atomic_load(&w[i].result), WEFT_EBADF);
        assert_true(w[i].took_ns < 2 * 1000000000LL);
    }
    close(p[1]);
}

/* 100 coroutines on 2 hubs (2 threads) wait on one socket; a third thread closes it: all 100
 * get EBADF. */
static void close_wakes_100_coroutines_on_2_hubs(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    enum { PER_HUB = 50 };
    static waiter_t w[2][PER_HUB];
    hub_job_t j[2];
    for (int h = 0; h < 2; h++) {
        for (int i = 0; i < PER_HUB; i++)
            w[h][i] = (waiter_t){.fd = sv[0], .timeout = WEFT_FOREVER, .result = 1};
        hub_start(&j[h], w[h], PER_HUB);
    }
    for (int h = 0; h < 2; h++) hub_wait_parked(&j[h]);
    assert_int_equal(weft_fd_close(sv[0]), 0);
    for (int h = 0; h < 2; h++) {
        hub_finish(&j[h]);
        for (int i = 0; i < PER_HUB; i++)
            assert_int_equal(atomic_load(&w[h][i].result), WEFT_EBADF);
    }
    close(sv[1]);
}

/* An fd of one of three kinds: r is waited on, w made readable by poke(). */
typedef struct pair {
    int r, w;
} pair_t;

static pair_t make_fd(int kind)
{
    pair_t p;
    if (kind == 0) {
        int fds[2];
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        p = (pair_t){fds[0], fds[1]};
    } else if (kind == 1) {
        int fds[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        p = (pair_t){fds[0], fds[1]};
    } else {
        int fd = eventfd(0, EFD_CLOEXEC);
        assert_true(fd >= 0);
        p = (pair_t){fd, fd};
    }
    return p;
}

static void poke(pair_t p)
{
    uint64_t one = 1;
    assert_int_equal(write(p.w, &one, sizeof one), (ssize_t)sizeof one);
}

static void unmake_fd(pair_t p)
{
    if (p.w != p.r) close(p.w);
}

/* 1,000 rounds: waiters on 2 hubs and a plain thread park on an fd; it is closed and its
 * number at once taken by a new pipe, socket or eventfd that is made readable while the old
 * waiters are still being woken. Every old waiter gets EBADF: none reads the new fd. */
static void close_then_reuse_the_number(void **state)
{
    (void)state;
    int rounds = SANITIZED || RUNNING_ON_VALGRIND ? 150 : 1000;
    enum { PER_HUB = 3 };
    int reused = 0;
    for (int round = 0; round < rounds; round++) {
        pair_t old = make_fd(round % 3);
        waiter_t w[2][PER_HUB], plain = {.fd = old.r, .timeout = WEFT_FOREVER, .result = 1};
        hub_job_t j[2];
        for (int h = 0; h < 2; h++) {
            for (int i = 0; i < PER_HUB; i++)
                w[h][i] = (waiter_t){.fd = old.r, .timeout = WEFT_FOREVER, .result = 1};
            hub_start(&j[h], w[h], PER_HUB);
        }
        pthread_t t = weft_test_start(plain_thread, &plain);
        for (int h = 0; h < 2; h++) hub_wait_parked(&j[h]);
        weft_test_wait_thread_asleep(&plain.tid);
        assert_int_equal(weft_fd_close(old.r), 0);
        pair_t now = make_fd((round + 1) % 3);
        reused += now.r == old.r;
        poke(now);
        for (int h = 0; h < 2; h++) {
            hub_finish(&j[h]);
            for (int i = 0; i < PER_HUB; i++)
                assert_int_equal(atomic_load(&w[h][i].result), WEFT_EBADF);
        }
        weft_test_join(t);
        assert_int_equal(atomic_load(&plain.result), WEFT_EBADF);
        unmake_fd(old);
        /* The new fd kept its input: nobody read it. */
        uint64_t v = 0;
        assert_int_equal(read(now.r, &v, sizeof v), now.r == now.w ? 8 : (ssize_t)sizeof v);
        assert_int_equal(v, 1);
        close(now.r);
        unmake_fd(now);
    }
    assert_true(reused > rounds / 2); /* the race was the one meant: the number came back */
}

/* A task of a thread pool (a thread without a hub) waits forever on a pipe; the future is
 * canceled: the wait ends with WEFT_ECANCELED soon after, not never. */
static int read_task(void *arg, void **result)
{
    (void)result;
    waiter_t *w = arg;
    atomic_store(&w->tid, gettid());
    read_one(w);
    return 0;
}

static void thread_fd_wait_sees_cancel(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(1, NULL, &ex), 0);
    waiter_t w = {.fd = p[0], .timeout = WEFT_FOREVER, .result = 1};
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, read_task, &w, &f), 0);
    weft_test_wait_thread_asleep(&w.tid);
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(weft_future_cancel(f), WEFT_EBUSY);
    void *v;
    assert_int_equal(weft_future_result(f, 10, &v), 0);
    assert_int_equal(atomic_load(&w.result), WEFT_ECANCELED);
    assert_true(weft_time_monotonic_ns() - t0 < 2 * 1000000000LL);
    weft_future_release(f);
    assert_int_equal(weft_executor_shutdown(ex, true, false, 10), 0);
    assert_int_equal(weft_executor_release(ex), 0);
    close(p[0]);
    close(p[1]);
}

/* ---- a wait that starts while the fd is being closed ---------------------------------------- */

typedef struct slow_close {
    int fd;
    weft_event_t in_op, go;
    int rc;
} slow_close_t;

static int slow_op(int fd, void *arg)
{
    slow_close_t *c = arg;
    weft_event_set(&c->in_op);
    weft_event_wait(&c->go, 30);
    return close(fd);
}

static void *closer(void *p)
{
    slow_close_t *c = p;
    c->rc = weft__io_close(c->fd, slow_op, c);
    return NULL;
}

/* A wait that finds its fd being closed (weft__io_close's op still running on another thread)
 * waits for the close to be done, then starts over on whatever has the number by then (here:
 * nothing, so WEFT_EBADF); a deadline that passes first ends it with WEFT_ETIMEDOUT. From a
 * plain thread and from a coroutine. */
static void wait_on_an_fd_being_closed_waits_for_the_close(void **state)
{
    (void)state;
    slow_close_t c = {.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    assert_true(c.fd >= 0);
    weft_event_init(&c.in_op);
    weft_event_init(&c.go);
    pthread_t t = weft_test_start(closer, &c);
    assert_int_equal(weft_event_wait(&c.in_op, 30), 0);

    waiter_t timed = {.fd = c.fd, .timeout = 0.05, .result = 1};
    read_one(&timed);
    assert_int_equal(atomic_load(&timed.result), WEFT_ETIMEDOUT);
    assert_true(timed.took_ns >= 50 * 1000000LL);

    waiter_t plain = {.fd = c.fd, .timeout = 30, .result = 1};
    pthread_t pt = weft_test_start(plain_thread, &plain);
    waiter_t co_w = {.fd = c.fd, .timeout = 30, .result = 1};
    weft_co_t *co = weft_test_spawn(read_one, &co_w);
    assert_int_equal(weft_time_sleep(0.1), 0); /* both are waiting for the close now */
    assert_int_equal(atomic_load(&plain.result), 1);
    assert_int_equal(atomic_load(&co_w.result), 1);
    weft_event_set(&c.go);
    weft_test_co_join(co);
    weft_test_join(pt);
    weft_test_join(t);
    assert_int_equal(c.rc, 0);
    assert_int_equal(atomic_load(&co_w.result), WEFT_EBADF);
    assert_int_equal(atomic_load(&plain.result), WEFT_EBADF);
    weft_event_destroy(&c.in_op);
    weft_event_destroy(&c.go);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(close_wakes_coroutine_of_another_hub),
    WEFT_TEST(close_wakes_plain_thread_waiters),
    WEFT_TEST(close_wakes_100_coroutines_on_2_hubs),
    WEFT_TEST(close_then_reuse_the_number),
    WEFT_TEST(thread_fd_wait_sees_cancel),
    WEFT_TEST(wait_on_an_fd_being_closed_waits_for_the_close),
};

WEFT_TEST_MAIN(cases)
