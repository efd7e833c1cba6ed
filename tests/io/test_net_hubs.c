/*
 * The stream server on a set of hubs (weft_server_opts_t.hubs): connections spread over the
 * hubs' threads (each hub serves some), echo works on each, the stop cancels handlers running
 * on other threads, and a connection accepted once the hubs refuse spawns is closed. Every
 * case runs once per poller.
 */
#include "weft_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

enum { NCONN = 8 };

typedef struct served {
    _Atomic pthread_t threads[NCONN]; /* (the echo orders nothing TSan sees) */
    _Atomic int n;
} served_t;

/* Echoes until the peer closes; notes the thread that served the connection. */
static void echo(int fd, void *arg)
{
    served_t *s = arg;
    int i = atomic_fetch_add(&s->n, 1);
    if (i < NCONN) atomic_store(&s->threads[i], pthread_self());
    char buf[256];
    for (;;) {
        size_t got;
        int rc = weft_fd_read(fd, buf, sizeof buf, WEFT_FOREVER, &got);
        if (rc || got == 0) return;
        size_t put;
        if (weft_fd_write(fd, buf, got, WEFT_FOREVER, &put)) return;
    }
}

static void roundtrip(int fd, const char *msg)
{
    size_t n = strlen(msg), done;
    assert_int_equal(weft_fd_write(fd, msg, n, 10.0, &done), 0);
    assert_int_equal(done, n);
    char buf[64] = {0};
    size_t got = 0;
    while (got < n) {
        size_t k;
        assert_int_equal(weft_fd_read(fd, buf + got, sizeof buf - got, 10.0, &k), 0);
        assert_true(k > 0);
        got += k;
    }
    assert_memory_equal(buf, msg, n);
}

/* Eight connections held open at once on two hubs: four on each hub's thread (the least
 * loaded takes each), none on the accepting thread; each echoes. */
static void server_spreads_connections_over_hubs(void **state)
{
    (void)state;
    weft_hubs_t *hubs;
    assert_int_equal(weft_hubs_start(2, NULL, &hubs), 0);
    int lfd, port;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 64, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    served_t s = {0};
    weft_server_opts_t opts = {.hubs = hubs};
    weft_server_t *srv;
    assert_int_equal(weft_server_create(lfd, echo, &s, &opts, &srv), 0);
    assert_int_equal(weft_server_start(srv), 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int fds[NCONN];
    for (int i = 0; i < NCONN; i++) {
        assert_int_equal(weft_tcp_connect(addr, 10.0, &fds[i]), 0);
        roundtrip(fds[i], "hello"); /* its handler runs now: counted in its hub's load */
    }
    assert_int_equal(atomic_load(&s.n), NCONN);
    size_t l0, l1;
    assert_int_equal(weft_hubs_load(hubs, 0, &l0), 0);
    assert_int_equal(weft_hubs_load(hubs, 1, &l1), 0);
    assert_int_equal(l0, NCONN / 2);
    assert_int_equal(l1, NCONN / 2);
    int on_first = 0;
    for (int i = 0; i < NCONN; i++) {
        pthread_t t = atomic_load(&s.threads[i]);
        assert_false(pthread_equal(t, pthread_self()));
        on_first += pthread_equal(t, atomic_load(&s.threads[0])) != 0;
    }
    assert_int_equal(on_first, NCONN / 2);
    for (int i = 0; i < NCONN; i++) roundtrip(fds[i], "again");
    for (int i = 0; i < NCONN; i++) assert_int_equal(weft_fd_close(fds[i]), 0);
    assert_int_equal(weft_server_stop(srv, 10.0), 0);
    assert_int_equal(weft_server_release(srv), 0);
    assert_int_equal(weft_hubs_stop(hubs, WEFT_FOREVER), 0);
    assert_int_equal(weft_hubs_release(hubs), 0);
}

/* The stop cancels handlers parked on the hubs' threads (clients still connected). */
static void server_stop_cancels_handlers_on_hubs(void **state)
{
    (void)state;
    weft_hubs_t *hubs;
    assert_int_equal(weft_hubs_start(2, NULL, &hubs), 0);
    int lfd, port;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 64, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    served_t s = {0};
    weft_server_opts_t opts = {.hubs = hubs, .max_connections = 16};
    weft_server_t *srv;
    assert_int_equal(weft_server_create(lfd, echo, &s, &opts, &srv), 0);
    assert_int_equal(weft_server_start(srv), 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int fds[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(weft_tcp_connect(addr, 10.0, &fds[i]), 0);
        roundtrip(fds[i], "x");
    }
    assert_int_equal(weft_server_stop(srv, 0), 0); /* no grace: cancels the four */
    for (int i = 0; i < 4; i++) {
        char c;
        size_t got = 1;
        assert_int_equal(weft_fd_read(fds[i], &c, 1, 10.0, &got), 0);
        assert_int_equal(got, 0); /* the server closed it */
        assert_int_equal(weft_fd_close(fds[i]), 0);
    }
    assert_int_equal(weft_server_release(srv), 0);
    assert_int_equal(weft_hubs_stop(hubs, WEFT_FOREVER), 0);
    assert_int_equal(weft_hubs_release(hubs), 0);
}

/* Hubs stopped under a running server: the connections it accepts are closed, it goes on. */
static void server_on_stopped_hubs_closes_connections(void **state)
{
    (void)state;
    weft_hubs_t *hubs;
    assert_int_equal(weft_hubs_start(1, NULL, &hubs), 0);
    int lfd, port;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 64, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    served_t s = {0};
    weft_server_opts_t opts = {.hubs = hubs};
    weft_server_t *srv;
    assert_int_equal(weft_server_create(lfd, echo, &s, &opts, &srv), 0);
    assert_int_equal(weft_server_start(srv), 0);
    assert_int_equal(weft_hubs_stop(hubs, WEFT_FOREVER), 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int fd;
    assert_int_equal(weft_tcp_connect(addr, 10.0, &fd), 0);
    char c;
    size_t got = 1;
    int rc = weft_fd_read(fd, &c, 1, 10.0, &got);
    assert_true(rc == 0 || rc == WEFT_ECONNRESET);
    assert_int_equal(got, 0);
    assert_int_equal(weft_fd_close(fd), 0);
    assert_int_equal(atomic_load(&s.n), 0);
    assert_int_equal(weft_server_stop(srv, 0), 0);
    assert_int_equal(weft_server_release(srv), 0);
    assert_int_equal(weft_hubs_release(hubs), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(server_spreads_connections_over_hubs),
    WEFT_TEST(server_stop_cancels_handlers_on_hubs),
    WEFT_TEST(server_on_stopped_hubs_closes_connections),
};

WEFT_TEST_MAIN(cases)
