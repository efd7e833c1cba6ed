/*
 * Patched close(2), dup2(2) and dup3(2) end every wait on the number they close (issue 20):
 * a coroutine of another thread's hub blocked in a plain read() on an fd wakes with EBADF when
 * a thread without a hub closes the fd, or dup2s / dup3s another file onto its number, and it
 * never reads the file that now has the number. Runs patched, once per poller. Mirrors
 * gevent's test__socket.py test_close_socket_while_blocked, through plain libc calls.
 */
#include "weft_test.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#undef WEFT_TEST
#define WEFT_TEST(NAME)                                                                            \
    cmocka_unit_test_setup_teardown(NAME, weft_test_setup_patched, weft_test_teardown_patched)

typedef struct reader {
    int fd;
    _Atomic(weft_co_t *) co;
    ssize_t n;
    int err;
} reader_t;

static void read_plain(void *p)
{
    reader_t *r = p;
    char c;
    errno = 0;
    r->n = read(r->fd, &c, 1); /* patched: parks this coroutine only */
    r->err = errno;
}

/* A thread with a hub whose one coroutine reads r->fd with plain read(). */
static void *hub_thread(void *p)
{
    reader_t *r = p;
    weft_co_t *co;
    if (weft_co_spawn(read_plain, r, NULL, &co) != 0) abort();
    atomic_store(&r->co, weft_co_retain(co));
    if (weft_co_join(co, 60) != 0) abort();
    weft_co_release(co);
    return NULL;
}

static void wait_blocked(reader_t *r)
{
    int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
    while (!atomic_load(&r->co) || weft_co_state(atomic_load(&r->co)) != WEFT_CO_BLOCKED) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
}

/* how: 0 close, 1 dup2, 2 dup3 of a readable pipe onto the number */
static void replace_under_reader(int how)
{
    int p[2], q[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(pipe2(q, O_CLOEXEC), 0);
    assert_int_equal(write(q[1], "x", 1), 1); /* the file that takes the number is readable */
    reader_t r = {.fd = p[0], .n = 1};
    pthread_t t = weft_test_start(hub_thread, &r);
    wait_blocked(&r);
    if (how == 0)
        assert_int_equal(close(p[0]), 0);
    else if (how == 1)
        assert_int_equal(dup2(q[0], p[0]), p[0]);
    else
        assert_int_equal(dup3(q[0], p[0], O_CLOEXEC), p[0]);
    weft_test_join(t);
    weft_co_release(atomic_load(&r.co));
    assert_int_equal(r.n, -1);
    assert_int_equal(r.err, EBADF);
    if (how) { /* nobody read the new file's byte */
        char c;
        assert_int_equal(read(p[0], &c, 1), 1);
        close(p[0]);
    }
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

static void close_from_thread_wakes_coroutine_of_another_hub(void **state)
{
    (void)state;
    replace_under_reader(0);
}

static void dup2_onto_watched_number_wakes_its_reader(void **state)
{
    (void)state;
    replace_under_reader(1);
}

static void dup3_onto_watched_number_wakes_its_reader(void **state)
{
    (void)state;
    replace_under_reader(2);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(close_from_thread_wakes_coroutine_of_another_hub),
    WEFT_TEST(dup2_onto_watched_number_wakes_its_reader),
    WEFT_TEST(dup3_onto_watched_number_wakes_its_reader),
};

WEFT_TEST_MAIN(cases)
