/*
 * The hub's fd table under parked waiters: a coroutine parks on a low fd, another one of the
 * same thread waits on an fd far above it (which grows the table), and then the first one's
 * wait ends by timeout, by cancel or by weft_fd_close. Its waiter must still be found where it
 * was queued, and the low fd must work as before (issue 12, item 1: the table was one array,
 * reallocated, and the parked waiter's queue moved away under it). Runs once per poller.
 * gevent's hub keeps one watcher per fd object, never moved (gevent/libev/corecext.pyx).
 */
#include "weft_test.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
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
    int result;
} waiter_t;

static void read_one(void *p)
{
    waiter_t *w = p;
    char c;
    w->result = read_count(w->fd, &c, 1, w->timeout);
}

/* A coroutine parks on a pipe above the fds of the low ones: the table grows while the low
 * waiter is parked. Returns the coroutine; its pipe in hi[2] (hi[0] dup'ed to >= 300). */
static weft_co_t *grow_table(int hi[2], waiter_t *w)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    hi[0] = fcntl(p[0], F_DUPFD_CLOEXEC, 300);
    assert_true(hi[0] >= 300);
    close(p[0]);
    hi[1] = p[1];
    *w = (waiter_t){hi[0], 30, 1};
    weft_co_t *co = weft_test_spawn(read_one, w);
    assert_int_equal(weft_co_yield(), 0);
    assert_int_equal(weft_co_state(co), WEFT_CO_BLOCKED);
    return co;
}

/* The low fd still works after its waiter left: a new waiter gets a byte written to it. */
static void low_fd_still_works(int lo[2])
{
    waiter_t again = {lo[0], 10, 1};
    weft_co_t *co = weft_test_spawn(read_one, &again);
    assert_int_equal(weft_co_yield(), 0);
    assert_int_equal(write(lo[1], "a", 1), 1);
    weft_test_co_join(co);
    assert_int_equal(again.result, 1);
}

static void finish_high(int hi[2], weft_co_t *co, waiter_t *w)
{
    assert_int_equal(write(hi[1], "b", 1), 1);
    weft_test_co_join(co);
    assert_int_equal(w->result, 1);
    assert_int_equal(weft_fd_close(hi[0]), 0);
    close(hi[1]);
}

/* The low waiter times out after the table grew. */
static void table_growth_under_timed_out_waiter(void **state)
{
    (void)state;
    int lo[2];
    assert_int_equal(pipe2(lo, O_CLOEXEC), 0);
    waiter_t low = {lo[0], 0.2, 1};
    weft_co_t *a = weft_test_spawn(read_one, &low);
    assert_int_equal(weft_co_yield(), 0);
    assert_int_equal(weft_co_state(a), WEFT_CO_BLOCKED);
    int hi[2];
    waiter_t high;
    weft_co_t *b = grow_table(hi, &high);
    weft_test_co_join(a);
    assert_int_equal(low.result, WEFT_ETIMEDOUT);
    low_fd_still_works(lo);
    finish_high(hi, b, &high);
    assert_int_equal(weft_fd_close(lo[0]), 0);
    close(lo[1]);
}

/* The low waiter is canceled after the table grew. */
static void table_growth_under_canceled_waiter(void **state)
{
    (void)state;
    int lo[2];
    assert_int_equal(pipe2(lo, O_CLOEXEC), 0);
    waiter_t low = {lo[0], WEFT_FOREVER, 1};
    weft_co_t *a = weft_test_spawn(read_one, &low);
    assert_int_equal(weft_co_yield(), 0);
    int hi[2];
    waiter_t high;
    weft_co_t *b = grow_table(hi, &high);
    assert_int_equal(weft_co_cancel(a), 0);
    weft_test_co_join(a);
    assert_int_equal(low.result, WEFT_ECANCELED);
    low_fd_still_works(lo);
    finish_high(hi, b, &high);
    assert_int_equal(weft_fd_close(lo[0]), 0);
    close(lo[1]);
}

/* The low fd is closed with weft_fd_close after the table grew: its waiter gets EBADF, and a new
 * pipe (which takes the low number again) works. */
static void table_growth_under_closed_waiter(void **state)
{
    (void)state;
    int lo[2];
    assert_int_equal(pipe2(lo, O_CLOEXEC), 0);
    waiter_t low = {lo[0], WEFT_FOREVER, 1}, low2 = {lo[0], WEFT_FOREVER, 1};
    weft_co_t *a = weft_test_spawn(read_one, &low), *a2 = weft_test_spawn(read_one, &low2);
    assert_int_equal(weft_co_yield(), 0);
    int hi[2];
    waiter_t high;
    weft_co_t *b = grow_table(hi, &high);
    assert_int_equal(weft_fd_close(lo[0]), 0);
    weft_test_co_join(a);
    weft_test_co_join(a2);
    assert_int_equal(low.result, WEFT_EBADF);
    assert_int_equal(low2.result, WEFT_EBADF);
    close(lo[1]);
    assert_int_equal(pipe2(lo, O_CLOEXEC), 0);
    low_fd_still_works(lo);
    finish_high(hi, b, &high);
    assert_int_equal(weft_fd_close(lo[0]), 0);
    close(lo[1]);
}

/* Growth far beyond: waiters parked on fds spread over many chunks of the table and several
 * growths of its index, each ending a different way, all found. */
static void table_growth_many_times(void **state)
{
    (void)state;
    enum { MAX = 12 };
    int pipes[MAX][2];
    waiter_t w[MAX];
    weft_co_t *co[MAX];
    /* up to 15360; select cannot watch fds >= FD_SETSIZE: up to 960 there */
    int N = strcmp(weft_poller_name(), "select") ? MAX : 8;
    for (int i = 0; i < N; i++) {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        /* 15, 30, 60, ...: every one above the last, the higher ones in chunks of their own */
        int want = i == 0 ? 0 : 10 * (1 << i) / 2 * 3 / 2;
        pipes[i][0] = i == 0 ? p[0] : fcntl(p[0], F_DUPFD_CLOEXEC, want);
        assert_true(pipes[i][0] >= 0);
        if (i) close(p[0]);
        pipes[i][1] = p[1];
        w[i] = (waiter_t){pipes[i][0], i % 3 == 0 ? 0.2 : WEFT_FOREVER, 1};
        co[i] = weft_test_spawn(read_one, &w[i]);
        assert_int_equal(weft_co_yield(), 0);
    }
    for (int i = 0; i < N; i++) {
        if (i % 3 == 1) assert_int_equal(weft_co_cancel(co[i]), 0);
        if (i % 3 == 2) assert_int_equal(weft_fd_close(pipes[i][0]), 0);
    }
    for (int i = 0; i < N; i++) {
        weft_test_co_join(co[i]);
        assert_int_equal(w[i].result, i % 3 == 0   ? WEFT_ETIMEDOUT
                                      : i % 3 == 1 ? WEFT_ECANCELED
                                                   : WEFT_EBADF);
        if (i % 3 != 2) {
            low_fd_still_works(pipes[i]);
            assert_int_equal(weft_fd_close(pipes[i][0]), 0);
        }
        close(pipes[i][1]);
    }
}

static void nothing(void *p)
{
    (void)p;
}

/* A wait on a huge fd number that is not open: WEFT_EBADF, without sizing the table for it
 * (the one-array table asked for 2^31 entries and said WEFT_ENOMEM). */
static void huge_fd_number_is_ebadf(void **state)
{
    (void)state;
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, NULL),
                     0); /* a hub: the wait goes through the poller */
    assert_int_equal(weft_fd_wait(INT_MAX - 1, WEFT_READ, 1, NULL),
                     WEFT_EBADF); /* makes the poller */
    long before = weft_test_live_allocs();
    assert_int_equal(weft_fd_wait(1 << 24, WEFT_WRITE, 1, NULL), WEFT_EBADF);
    assert_int_equal(weft_fd_wait(INT_MAX - 1, WEFT_READ, 1, NULL), WEFT_EBADF);
    assert_int_equal(weft_test_live_allocs(), before);
    assert_int_equal(weft_fd_close(INT_MAX - 1), WEFT_EBADF);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(table_growth_under_timed_out_waiter),
    WEFT_TEST(table_growth_under_canceled_waiter),
    WEFT_TEST(table_growth_under_closed_waiter),
    WEFT_TEST(table_growth_many_times),
    WEFT_TEST(huge_fd_number_is_ebadf),
};

WEFT_TEST_MAIN(cases)
