/*
 * weft/net.h: "host:port" listen and connect, Unix sockets, and the stream server (gevent's
 * StreamServer): echo round trips, refused and timed-out connects, bad addresses, a stop with
 * connections open (graceful, then canceled; the leak guard checks no fd is left), 200
 * concurrent clients, a connection limit, a stop from another thread and from a Timer. Runs
 * once per poller. Mirrors gevent's test__server.py (test_serve_forever / test_stop,
 * test_max_connections) and libdill's tests/tcp.c and ipc.c; each case names the one it
 * follows.
 */
#include "weft_test.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- an echo handler, and clients -------------------------------------------------------- */

typedef struct stats {
    _Atomic int running, most, served;
    _Atomic int last_rc; /* the last handler's last call that failed (0: ended by EOF) */
} stats_t;

/* Echoes until EOF or an error; counts how many run at once. */
static void echo(int fd, void *arg)
{
    stats_t *st = arg;
    int now = atomic_fetch_add(&st->running, 1) + 1;
    for (int m = atomic_load(&st->most);
         now > m && !atomic_compare_exchange_weak(&st->most, &m, now);) {
    }
    char buf[512];
    size_t n = 0;
    int rc;
    while ((rc = weft_fd_recv(fd, buf, sizeof buf, 0, 30, &n)) == 0 && n > 0)
        if ((rc = weft_fd_send(fd, buf, n, 0, 30, NULL)) != 0) break;
    atomic_store(&st->last_rc, rc);
    atomic_fetch_sub(&st->running, 1);
    atomic_fetch_add(&st->served, 1);
}

/* Whether this system resolves "localhost" at all (a minimal root without /etc/hosts does
 * not: the cases that look the name up skip that part there, saying so). */
static bool localhost_resolves(void)
{
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo("localhost", NULL, NULL, &ai);
    if (ai) freeaddrinfo(ai);
    if (rc) print_message("\"localhost\" does not resolve here: the name lookup part is skipped\n");
    return rc == 0;
}

/* One round trip of msg on fd. */
static void round_trip(int fd, const char *msg)
{
    size_t len = strlen(msg), have = 0, n = 0;
    char back[256];
    assert_int_equal(weft_fd_send(fd, msg, len, 0, 30, &n), 0);
    assert_int_equal(n, len);
    while (have < len) {
        assert_int_equal(weft_fd_recv(fd, back + have, sizeof back - have, 0, 30, &n), 0);
        assert_true(n > 0);
        have += n;
    }
    assert_memory_equal(back, msg, len);
}

static void tcp_round_trip(const char *addr)
{
    int fd = -1;
    assert_int_equal(weft_tcp_connect(addr, 10, &fd), 0);
    assert_true(fd >= 0);
    round_trip(fd, addr);
    assert_int_equal(weft_fd_close(fd), 0);
}

/* A server for lfd with the echo handler, started on this thread's hub. */
static weft_server_t *echo_server(int lfd, stats_t *st, const weft_server_opts_t *opts)
{
    weft_server_t *srv = NULL;
    assert_int_equal(weft_server_create(lfd, echo, st, opts, &srv), 0);
    assert_int_equal(weft_server_start(srv), 0);
    return srv;
}

static void stop_and_release(weft_server_t *srv)
{
    assert_int_equal(weft_server_stop(srv, 5), 0);
    assert_int_equal(weft_server_release(srv), 0);
}

/* ---- TCP ----------------------------------------------------------------------------------- */

/* libdill tcp.c / test__server.py test_serve: a listener on port 0, its port, echoes through
 * a numeric address, a name ("localhost") and, where the system has IPv6, "[::1]"; a ":0"
 * listener takes IPv4 clients. */
static void tcp_echo_round_trip_on_port_0(void **state)
{
    (void)state;
    stats_t st = {0};
    int lfd = -1, port = 0;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 16, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    assert_true(port > 0);
    weft_server_t *srv = echo_server(lfd, &st, NULL);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    tcp_round_trip(addr);
    bool named = localhost_resolves();
    if (named) {
        snprintf(addr, sizeof addr, "localhost:%d", port);
        tcp_round_trip(addr);
    }
    stop_and_release(srv);
    assert_int_equal(atomic_load(&st.served), named ? 2 : 1);
    assert_int_equal(atomic_load(&st.last_rc), 0); /* ended by the client's close */

    assert_int_equal(weft_tcp_listen(":0", 16, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    srv = echo_server(lfd, &st, NULL);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    tcp_round_trip(addr);
    snprintf(addr, sizeof addr, ":%d", port); /* the loopback */
    tcp_round_trip(addr);
    stop_and_release(srv);

    int rc = weft_tcp_listen("[::1]:0", 16, &lfd);
    if (rc == WEFT_EADDRNOTAVAIL || rc == WEFT_EAFNOSUPPORT) return; /* no IPv6 here */
    assert_int_equal(rc, 0);
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    srv = echo_server(lfd, &st, NULL);
    snprintf(addr, sizeof addr, "[::1]:%d", port);
    tcp_round_trip(addr);
    stop_and_release(srv);
}

/* A name lookup the caller gives up on (a timeout that polls) finishes on its own thread and
 * leaves nothing behind (the leak guard counts the thread and the memory); a listener on
 * "localhost:0" waits for its lookup (without a timeout) from a thread without a hub. */
static void tcp_connect_gives_up_on_a_lookup(void **state)
{
    (void)state;
    int fd = 7;
    int rc = weft_tcp_connect("localhost:1", 0, &fd);
    assert_true(rc == WEFT_ETIMEDOUT || rc == WEFT_ECONNREFUSED);
    assert_int_equal(fd, -1);
    int lfd = -1;
    if (!localhost_resolves()) return;
    assert_int_equal(weft_tcp_listen("localhost:0", 4, &lfd), 0);
    assert_int_equal(weft_fd_close(lfd), 0);
}

/* libdill tcp.c, test__socket.py test_connect_timeout: a port nobody listens on refuses at
 * once; a listener whose backlog is full drops the SYN, and the connect times out on time. */
static void tcp_connect_refused_and_timeout(void **state)
{
    (void)state;
    int lfd = -1, port = 0;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 0, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    /* Fill the backlog (never accepted) until a connect times out. */
    int fds[8], n = 0, rc = 0, fd = -1;
    for (; n < 8; n++) {
        int64_t t0 = weft_time_monotonic_ns();
        rc = weft_tcp_connect(addr, 0.2, &fds[n]);
        if (rc) {
            assert_int_equal(rc, WEFT_ETIMEDOUT);
            assert_int_equal(fds[n], -1);
            assert_true(weft_time_monotonic_ns() - t0 >= 150 * 1000000LL);
            break;
        }
    }
    assert_int_equal(rc, WEFT_ETIMEDOUT);
    for (int i = 0; i < n; i++) assert_int_equal(weft_fd_close(fds[i]), 0);
    assert_int_equal(weft_fd_close(lfd), 0);
    /* Nobody listens there now. */
    assert_int_equal(weft_tcp_connect(addr, 5, &fd), WEFT_ECONNREFUSED);
    assert_int_equal(fd, -1);
    /* Two listeners on one port: in use. */
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 4, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_int_equal(weft_tcp_listen(addr, 4, &fd), WEFT_EADDRINUSE);
    assert_int_equal(fd, -1);
    assert_int_equal(weft_fd_close(lfd), 0);
}

/* Every malformed address, NULL and bad argument is WEFT_EINVAL (never a crash), with the
 * output set to -1 / NULL. */
static void bad_hostport_strings_are_einval(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "8080",
        "localhost",
        "host:",
        ":",
        "host:port",
        "host:8o",
        "host:-1",
        "host:+80",
        "host:65536",
        "host:123456",
        "::1:80",
        "[::1]",
        "[::1]80",
        "[::1:80",
        "[]:80",
        "[not-v6]:80",
        "[127.0.0.1]:80",
        "1.2.3.4:80:90",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = 7;
        if (weft_tcp_listen(bad[i], 4, &fd) != WEFT_EINVAL || fd != -1)
            fail_msg("listen %s", bad[i]);
        fd = 7;
        if (weft_tcp_connect(bad[i], 1, &fd) != WEFT_EINVAL || fd != -1)
            fail_msg("connect %s", bad[i]);
    }
    int fd = 7;
    assert_int_equal(weft_tcp_listen(NULL, 4, &fd), WEFT_EINVAL);
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", -1, &fd), WEFT_EINVAL);
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 4, NULL), WEFT_EINVAL);
    assert_int_equal(weft_tcp_connect(NULL, 1, &fd), WEFT_EINVAL);
    assert_int_equal(weft_tcp_connect("127.0.0.1:0", 1, &fd), WEFT_EINVAL); /* port 0 */
    assert_int_equal(weft_tcp_connect("127.0.0.1:80", NAN, &fd), WEFT_EINVAL);
    assert_int_equal(weft_tcp_connect("127.0.0.1:80", 1, NULL), WEFT_EINVAL);
    int port = 7;
    assert_int_equal(weft_tcp_local_port(-1, &port), WEFT_EINVAL);
    assert_int_equal(port, 0);
    assert_int_equal(weft_tcp_local_port(0, NULL), WEFT_EINVAL);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(weft_tcp_local_port(p[0], &port), WEFT_ENOTSOCK);
    close(p[0]);
    close(p[1]);
    assert_int_equal(weft_tcp_local_port(999, &port), WEFT_EBADF);
    /* Unix paths. */
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    assert_int_equal(weft_unix_listen(NULL, 4, &fd), WEFT_EINVAL);
    assert_int_equal(weft_unix_listen("", 4, &fd), WEFT_EINVAL);
    assert_int_equal(weft_unix_listen("/tmp/x", -1, &fd), WEFT_EINVAL);
    assert_int_equal(weft_unix_listen("/tmp/x", 4, NULL), WEFT_EINVAL);
    assert_int_equal(weft_unix_listen(longp, 4, &fd), WEFT_ENAMETOOLONG);
    assert_int_equal(weft_unix_connect(longp, 1, &fd), WEFT_ENAMETOOLONG);
    assert_int_equal(weft_unix_connect("/tmp/x", NAN, &fd), WEFT_EINVAL);
    assert_int_equal(weft_unix_connect("/no/such/dir/sock", 1, &fd), WEFT_ENOENT);
    assert_int_equal(fd, -1);
    /* The server's calls. */
    weft_server_t *srv = (weft_server_t *)1;
    weft_server_opts_t o = {0};
    assert_int_equal(weft_server_create(-1, echo, NULL, NULL, &srv), WEFT_EINVAL);
    assert_null(srv);
    assert_int_equal(weft_server_create(3, NULL, NULL, NULL, &srv), WEFT_EINVAL);
    assert_int_equal(weft_server_create(3, echo, NULL, NULL, NULL), WEFT_EINVAL);
    o.reserved_[2] = 1;
    assert_int_equal(weft_server_create(3, echo, NULL, &o, &srv), WEFT_EINVAL);
    o = (weft_server_opts_t){.stack_size = 100};
    assert_int_equal(weft_server_create(3, echo, NULL, &o, &srv), WEFT_EINVAL);
    assert_int_equal(weft_server_start(NULL), WEFT_EINVAL);
    assert_int_equal(weft_server_serve_forever(NULL), WEFT_EINVAL);
    assert_int_equal(weft_server_stop(NULL, 1), WEFT_EINVAL);
    assert_int_equal(weft_server_release(NULL), WEFT_EINVAL);
    /* A server never started: release closes its listener (the leak guard sees it). */
    int lfd;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 4, &lfd), 0);
    assert_int_equal(weft_server_create(lfd, echo, NULL, NULL, &srv), 0);
    assert_int_equal(weft_server_stop(srv, NAN), WEFT_EINVAL);
    assert_int_equal(weft_server_release(srv), 0);
}

/* ---- Unix sockets ---------------------------------------------------------------------- */

static void unix_round_trip(const char *path)
{
    stats_t st = {0};
    int lfd = -1, fd = -1;
    assert_int_equal(weft_unix_listen(path, 16, &lfd), 0);
    weft_server_t *srv = echo_server(lfd, &st, NULL);
    assert_int_equal(weft_unix_connect(path, 10, &fd), 0);
    round_trip(fd, path);
    assert_int_equal(weft_fd_close(fd), 0);
    stop_and_release(srv);
    assert_int_equal(atomic_load(&st.served), 1);
}

/* libdill ipc.c: an echo through a socket file, then through an abstract name; a second
 * listener on the file is EADDRINUSE; nobody listening is ECONNREFUSED. */
static void unix_echo_round_trip(void **state)
{
    (void)state;
    char path[64], name[64];
    snprintf(path, sizeof path, "/tmp/weft-test-net-%d.sock", (int)getpid());
    snprintf(name, sizeof name, "@weft-test-net-%d", (int)getpid());
    unlink(path);
    unix_round_trip(path);
    int fd = -1;
    assert_int_equal(weft_unix_listen(path, 4, &fd), WEFT_EADDRINUSE); /* the file stays */
    assert_int_equal(weft_unix_connect(path, 1, &fd), WEFT_ECONNREFUSED);
    assert_int_equal(fd, -1);
    unlink(path);
    unix_round_trip(name);
    assert_int_equal(weft_unix_connect(name, 1, &fd), WEFT_ECONNREFUSED);
}

/* A Unix listener whose backlog is full: a connect waits for room, and times out. */
static void unix_connect_to_a_full_backlog_times_out(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "@weft-test-full-%d", (int)getpid());
    int lfd = -1, fds[8], n = 0, rc = 0;
    assert_int_equal(weft_unix_listen(name, 0, &lfd), 0);
    for (; n < 8; n++) {
        int64_t t0 = weft_time_monotonic_ns();
        if ((rc = weft_unix_connect(name, 0.1, &fds[n])) != 0) {
            assert_true(weft_time_monotonic_ns() - t0 >= 80 * 1000000LL);
            break;
        }
    }
    assert_int_equal(rc, WEFT_ETIMEDOUT);
    for (int i = 0; i < n; i++) assert_int_equal(weft_fd_close(fds[i]), 0);
    assert_int_equal(weft_fd_close(lfd), 0);
}

/* ---- the server's stop ------------------------------------------------------------------- */

typedef struct stop_case {
    _Atomic int graceful_done, stuck_rc, ready;
} stop_case_t;

/* 'g': answers, waits a little and returns (a graceful end); 'h': answers, then reads until
 * the stop cancels it. */
static void slow_or_stuck(int fd, void *arg)
{
    stop_case_t *sc = arg;
    char c = 0;
    size_t n = 0;
    if (weft_fd_recv(fd, &c, 1, 0, 30, &n) || n != 1) return;
    if (weft_fd_send(fd, "k", 1, 0, 30, NULL)) return;
    atomic_fetch_add(&sc->ready, 1);
    if (c == 'g') {
        if (weft_time_sleep(0.05) == 0) atomic_store(&sc->graceful_done, 1);
        return;
    }
    char buf[8];
    atomic_store(&sc->stuck_rc, weft_fd_recv(fd, buf, sizeof buf, 0, 60, &n));
}

/* Connects and has the handler answer (so it runs when this returns). */
/* A started server of handler on a loopback port: its "127.0.0.1:<port>" in addr (64 bytes),
 * its port in *port (may be NULL). */
static weft_server_t *serve_loopback(weft_server_handler_fn handler, void *arg, char *addr,
                                     int *port)
{
    int lfd = -1, p = 0;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 16, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &p), 0);
    snprintf(addr, 64, "127.0.0.1:%d", p);
    if (port) *port = p;
    weft_server_t *srv = NULL;
    assert_int_equal(weft_server_create(lfd, handler, arg, NULL, &srv), 0);
    assert_int_equal(weft_server_start(srv), 0);
    return srv;
}

static int open_conn(const char *addr, char kind)
{
    int fd = -1;
    char c = 0;
    size_t n = 0;
    assert_int_equal(weft_tcp_connect(addr, 10, &fd), 0);
    assert_int_equal(weft_fd_send(fd, &kind, 1, 0, 10, NULL), 0);
    assert_int_equal(weft_fd_recv(fd, &c, 1, 0, 10, &n), 0);
    assert_int_equal(c, 'k');
    return fd;
}

/* test__server.py test_stop / StreamServer.stop(timeout): with two connections open, a stop
 * lets the one that ends within the grace period end, cancels the other (ECANCELED in its
 * read), closes every accepted fd and the listener (the leak guard counts fds), and a second
 * stop returns at once. A stop from a handler is EDEADLK; a release while running EBUSY. */
static void server_stop_with_open_connections(void **state)
{
    (void)state;
    stop_case_t sc = {0};
    char addr[64];
    weft_server_t *srv = serve_loopback(slow_or_stuck, &sc, addr, NULL);
    assert_int_equal(weft_server_start(srv), WEFT_EALREADY);
    int g = open_conn(addr, 'g'), h = open_conn(addr, 'h');
    assert_int_equal(weft_server_release(srv), WEFT_EBUSY);
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(weft_server_stop(srv, 0.3), 0);
    int64_t took = weft_time_monotonic_ns() - t0;
    assert_true(took >= 250 * 1000000LL); /* the grace period, for the stuck one */
    assert_int_equal(atomic_load(&sc.graceful_done), 1);
    assert_int_equal(atomic_load(&sc.stuck_rc), WEFT_ECANCELED);
    assert_int_equal(weft_server_stop(srv, 1), 0);
    assert_int_equal(weft_server_start(srv), WEFT_ESHUTDOWN);
    assert_int_equal(weft_server_serve_forever(srv), 0); /* stopped: returns at once */
    assert_int_equal(weft_server_release(srv), 0);
    /* The server closed its ends: the clients read EOF. */
    size_t n = 9;
    char c;
    assert_int_equal(weft_fd_recv(g, &c, 1, 0, 5, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(weft_fd_recv(h, &c, 1, 0, 5, &n), 0);
    assert_int_equal(n, 0);
    weft_fd_close(g);
    weft_fd_close(h);
    /* And the port is free: nobody listens. */
    int fd;
    assert_int_equal(weft_tcp_connect(addr, 5, &fd), WEFT_ECONNREFUSED);
}

typedef struct self_closer {
    weft_event_t closed, go;
} self_closer_t;

/* 'c': closes its own fd (the conn.close() habit net.h warns against) and waits to be let go;
 * 'k': answers 'k', then answers each byte with the next letter until EOF. */
static void closes_its_own_fd(int fd, void *arg)
{
    self_closer_t *sc = arg;
    char c;
    size_t n = 0;
    if (weft_fd_recv(fd, &c, 1, 0, 10, &n) || n != 1) return;
    if (c == 'c') {
        weft_fd_close(fd);
        weft_event_set(&sc->closed);
        (void)weft_event_wait(&sc->go, 10);
        return;
    }
    for (char reply = 'k'; weft_fd_send(fd, &reply, 1, 0, 10, NULL) == 0; reply = (char)(c + 1))
        if (weft_fd_recv(fd, &c, 1, 0, 10, &n) || n != 1) return;
}

/* A handler that closes its fd itself, then returns after the number went to the next
 * connection: the server's own close at the handler's end must not close that connection
 * (it checks the fd is still the socket it accepted). (Before: the server closed the reused
 * number, and the other client read EOF instead of its answer.) */
static void server_handler_closing_its_fd_spares_the_next_connection(void **state)
{
    (void)state;
    self_closer_t sc = {WEFT_EVENT_INIT, WEFT_EVENT_INIT};
    char addr[64];
    int port = 0;
    weft_server_t *srv = serve_loopback(closes_its_own_fd, &sc, addr, &port);
    /* B's socket exists before A's handler frees its number: B's accepted end takes it. */
    int b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(b >= 0);
    int a = -1;
    assert_int_equal(weft_tcp_connect(addr, 10, &a), 0);
    assert_int_equal(weft_fd_send(a, "c", 1, 0, 10, NULL), 0);
    assert_int_equal(weft_event_wait(&sc.closed, 10), 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(weft_fd_connect(b, (struct sockaddr *)&sin, sizeof sin, 10), 0);
    char c = 0;
    size_t n = 0;
    assert_int_equal(weft_fd_send(b, "k", 1, 0, 10, NULL), 0);
    assert_int_equal(weft_fd_recv(b, &c, 1, 0, 10, &n), 0);
    assert_int_equal(c, 'k');
    assert_int_equal(weft_event_set(&sc.go), 0); /* A's handler returns; the server cleans up */
    assert_int_equal(weft_time_sleep(0.05), 0);
    assert_int_equal(weft_fd_send(b, "x", 1, 0, 10, NULL), 0);
    assert_int_equal(weft_fd_recv(b, &c, 1, 0, 10, &n), 0);
    assert_int_equal(n, 1); /* not EOF: B's connection is whole */
    assert_int_equal(c, 'y');
    weft_fd_close(a);
    weft_fd_close(b);
    assert_int_equal(weft_server_stop(srv, 5), 0);
    assert_int_equal(weft_server_release(srv), 0);
    weft_event_destroy(&sc.closed);
    weft_event_destroy(&sc.go);
}

typedef struct self_stop {
    weft_server_t *srv;
    _Atomic int rc;
} self_stop_t;

static void stops_itself(int fd, void *arg)
{
    (void)fd;
    self_stop_t *s = arg;
    atomic_store(&s->rc, weft_server_stop(s->srv, 1));
}

/* A handler that stops its own server would wait for itself: EDEADLK, nothing done. */
static void server_stop_from_a_handler_is_edeadlk(void **state)
{
    (void)state;
    self_stop_t s = {NULL, 1};
    int fd = -1;
    char addr[64];
    s.srv = serve_loopback(stops_itself, &s, addr, NULL);
    assert_int_equal(weft_tcp_connect(addr, 10, &fd), 0);
    char c;
    size_t n = 9;
    assert_int_equal(weft_fd_recv(fd, &c, 1, 0, 10, &n), 0); /* EOF: the handler returned */
    assert_int_equal(n, 0);
    assert_int_equal(atomic_load(&s.rc), WEFT_EDEADLK);
    weft_fd_close(fd);
    stop_and_release(s.srv);
}

/* ---- load ---------------------------------------------------------------------------------- */

typedef struct load {
    char addr[64];
    int rounds;
    _Atomic int ok;
} load_t;

static void load_client(void *p)
{
    load_t *l = p;
    int fd = -1;
    if (weft_tcp_connect(l->addr, 30, &fd)) return;
    char msg[64];
    for (int i = 0; i < l->rounds; i++) {
        snprintf(msg, sizeof msg, "round %d of %p", i, (void *)&fd);
        round_trip(fd, msg);
    }
    weft_fd_close(fd);
    atomic_fetch_add(&l->ok, 1);
}

static void run_clients(load_t *l, int n)
{
    weft_co_t **cos = calloc((size_t)n, sizeof *cos);
    assert_non_null(cos);
    for (int i = 0; i < n; i++) assert_int_equal(weft_co_spawn(load_client, l, NULL, &cos[i]), 0);
    assert_int_equal(weft_co_join_all(cos, (size_t)n, 60), 0);
    for (int i = 0; i < n; i++) weft_co_release(cos[i]);
    free(cos);
}

/* test__server.py under load: 200 clients at once on one thread, each a few round trips. */
static void server_200_concurrent_clients(void **state)
{
    (void)state;
    stats_t st = {0};
    load_t l = {.rounds = 3};
    int lfd = -1, port = 0;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 512, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    snprintf(l.addr, sizeof l.addr, "127.0.0.1:%d", port);
    weft_server_t *srv = echo_server(lfd, &st, NULL);
    run_clients(&l, 200);
    assert_int_equal(atomic_load(&l.ok), 200);
    stop_and_release(srv);
    assert_int_equal(atomic_load(&st.served), 200);
}

/* test__server.py test_max_connections (a pool of size n): never more handlers at once. */
static void server_max_connections_limits_handlers(void **state)
{
    (void)state;
    stats_t st = {0};
    load_t l = {.rounds = 2};
    int lfd = -1, port = 0;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 512, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    snprintf(l.addr, sizeof l.addr, "127.0.0.1:%d", port);
    weft_server_opts_t o = {.max_connections = 4, .stack_size = 128 * 1024};
    weft_server_t *srv = echo_server(lfd, &st, &o);
    run_clients(&l, 40);
    assert_int_equal(atomic_load(&l.ok), 40);
    stop_and_release(srv);
    assert_int_equal(atomic_load(&st.served), 40);
    assert_true(atomic_load(&st.most) <= 4);
    assert_true(atomic_load(&st.most) >= 1);
}

/* ---- stop from elsewhere ------------------------------------------------------------------- */

typedef struct remote {
    weft_server_t *srv;
    weft_event_t served; /* a client's round trip is done and its connection still open */
    char addr[64];
    int fd;
    _Atomic int stop_rc;
} remote_t;

static void *stopper_thread(void *p)
{
    remote_t *r = p;
    if (weft_event_wait(&r->served, 30) == 0)
        atomic_store(&r->stop_rc, weft_server_stop(r->srv, 0.05));
    return NULL;
}

static void remote_client(void *p)
{
    remote_t *r = p;
    assert_int_equal(weft_tcp_connect(r->addr, 10, &r->fd), 0);
    round_trip(r->fd, "before the stop");
    weft_event_set(&r->served);
}

static void stop_by_timer(void *p)
{
    remote_t *r = p;
    atomic_store(&r->stop_rc, weft_server_stop(r->srv, 0.05));
}

/* StreamServer.serve_forever stopped from another thread (the handler still reading is
 * canceled after the grace period), then from a Timer callback. */
static void server_stop_from_another_thread(void **state)
{
    (void)state;
    stats_t st = {0};
    remote_t r = {.fd = -1, .stop_rc = 1};
    weft_event_init(&r.served);
    int lfd = -1, port = 0;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 16, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    snprintf(r.addr, sizeof r.addr, "127.0.0.1:%d", port);
    assert_int_equal(weft_server_create(lfd, echo, &st, NULL, &r.srv), 0);
    pthread_t t = weft_test_start(stopper_thread, &r);
    weft_co_t *c = weft_test_spawn(remote_client, &r);
    assert_int_equal(weft_server_serve_forever(r.srv), 0);
    weft_test_join(t);
    assert_int_equal(atomic_load(&r.stop_rc), 0);
    assert_int_equal(atomic_load(&st.last_rc), WEFT_ECANCELED);
    assert_int_equal(weft_server_release(r.srv), 0);
    weft_test_co_join(c);
    weft_fd_close(r.fd);
    weft_event_destroy(&r.served);

    /* A Timer callback stops the next one. */
    atomic_store(&r.stop_rc, 1);
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 16, &lfd), 0);
    assert_int_equal(weft_server_create(lfd, echo, &st, NULL, &r.srv), 0);
    weft_timer_t timer;
    weft_timer_init(&timer);
    assert_int_equal(weft_timer_start(&timer, 0.05, stop_by_timer, &r), 0);
    assert_int_equal(weft_server_serve_forever(r.srv), 0);
    assert_int_equal(weft_timer_join(&timer, 30), 0);
    assert_int_equal(atomic_load(&r.stop_rc), 0);
    weft_timer_destroy(&timer);
    assert_int_equal(weft_server_release(r.srv), 0);
}

/* A server is made only for a listening socket: a connected socket, a socket not listening
 * yet and a pipe are WEFT_EINVAL at create, and stay the caller's (before, create took them and
 * serve_forever failed later, with WEFT_ENOTSOCK for the pipe). */
static void server_create_refuses_an_fd_that_is_no_listener(void **state)
{
    (void)state;
    int sv[2], pfd[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    int unbound = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(unbound >= 0);
    int fds[] = {sv[0], pfd[0], unbound};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        weft_server_t *srv = (weft_server_t *)1;
        assert_int_equal(weft_server_create(fds[i], echo, NULL, NULL, &srv), WEFT_EINVAL);
        assert_null(srv);
        assert_true(fcntl(fds[i], F_GETFD) >= 0); /* still open: the caller's */
    }
    close(sv[0]);
    close(sv[1]);
    close(pfd[0]);
    close(pfd[1]);
    close(unbound);
}

/* A stop right after start, before the accept loop ever ran (its coroutine is spawned, not
 * yet run): the loop sees the stop when it starts, and the stop waits for that. */
static void server_stop_before_the_accept_loop_ran(void **state)
{
    (void)state;
    int lfd = -1, port = 0, fd = -1;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 16, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    weft_server_t *srv = NULL;
    assert_int_equal(weft_server_create(lfd, echo, NULL, NULL, &srv), 0);
    assert_int_equal(weft_server_start(srv), 0);
    assert_int_equal(weft_server_stop(srv, 0), 0);
    assert_int_equal(weft_server_release(srv), 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_int_equal(weft_tcp_connect(addr, 5, &fd), WEFT_ECONNREFUSED);
}

static const struct CMUnitTest tests[] = {
    WEFT_TEST(tcp_echo_round_trip_on_port_0),
    WEFT_TEST(tcp_connect_refused_and_timeout),
    WEFT_TEST(tcp_connect_gives_up_on_a_lookup),
    WEFT_TEST(bad_hostport_strings_are_einval),
    WEFT_TEST(unix_echo_round_trip),
    WEFT_TEST(unix_connect_to_a_full_backlog_times_out),
    WEFT_TEST(server_stop_with_open_connections),
    WEFT_TEST(server_handler_closing_its_fd_spares_the_next_connection),
    WEFT_TEST(server_stop_from_a_handler_is_edeadlk),
    WEFT_TEST(server_200_concurrent_clients),
    WEFT_TEST(server_max_connections_limits_handlers),
    WEFT_TEST(server_stop_from_another_thread),
    WEFT_TEST(server_create_refuses_an_fd_that_is_no_listener),
    WEFT_TEST(server_stop_before_the_accept_loop_ran),
};

WEFT_TEST_MAIN(tests)
