/*
 * Coroutine IO: weft_fd_wait and the read/write/recv/send/accept/connect calls on pipes,
 * socketpairs and loopback TCP; EOF, resets, refused connections, timeouts, cancellation, an
 * fd closed under its waiters, SIGPIPE, many fds, fork, poller choice and out-of-memory. Runs
 * once per poller (CTest suffix .select/.poll/.epoll/.io_uring). Mirrors gevent's
 * test__socket.py (TestTCP: sendall/recv, timeouts, connect refused), test__select.py and
 * test__core_fork.py; each case names the one it follows.
 */
#include "weft_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* weft_fd_read's count, or its error: one int for a case to store and compare. */
static int read_count(int fd, void *buf, size_t n, double timeout)
{
    size_t done = 0;
    int rc = weft_fd_read(fd, buf, n, timeout, &done);
    return rc ? rc : (int)done;
}

static void make_pipe(int p[2])
{
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
}

/* A listening loopback TCP socket on an ephemeral port; its address in *addr. */
static int listener(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
    socklen_t len = sizeof *addr;
    assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    assert_int_equal(listen(fd, 128), 0);
    return fd;
}

static int tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    return fd;
}

static void nothing(void *p)
{
    (void)p;
}

/* ---- readiness ----------------------------------------------------------------------------- */

static void write_later(void *p)
{
    int fd = *(int *)p;
    assert_int_equal(weft_time_sleep(0.01), 0);
    assert_int_equal(weft_fd_write(fd, "x", 1, 5, NULL), 0);
}

/* test__select.py: an empty pipe is writable at once, readable only after a write (which a
 * coroutine does while the root waits); a wait for nothing times out. */
static void wait_fd_readiness(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    assert_int_equal(weft_co_spawn(write_later, &p[1], NULL, NULL), 0); /* gives the thread a hub */
    int got = -1;
    assert_int_equal(weft_fd_wait(p[1], WEFT_WRITE, 5, &got), 0);
    assert_int_equal(got, WEFT_WRITE);
    assert_int_equal(weft_fd_wait(p[0], WEFT_READ, 0, &got), WEFT_ETIMEDOUT);
    assert_int_equal(got, 0);
    assert_int_equal(weft_fd_wait(p[0], WEFT_READ | WEFT_WRITE, 5, &got), 0);
    assert_int_equal(got, WEFT_READ);
    char c;
    size_t n = 0;
    assert_int_equal(weft_fd_read(p[0], &c, 1, 5, &n), 0);
    assert_int_equal(n, 1);
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(weft_fd_wait(p[0], WEFT_READ, 0.03, NULL), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic_ns() - t0 >= 25 * 1000000LL);
    /* Which poller serves us: the one CTest asked for. */
    const char *want = getenv("WEFT_POLLER");
    if (want) assert_string_equal(weft_poller_name(), want);
    close(p[0]);
    close(p[1]);
}

/* Bad input: codes, never a crash. */
static void wait_fd_bad_input(void **state)
{
    (void)state;
    assert_int_equal(weft_fd_wait(-1, WEFT_READ, 1, NULL), WEFT_EINVAL);
    assert_int_equal(weft_fd_wait(0, 0, 1, NULL), WEFT_EINVAL);
    assert_int_equal(weft_fd_wait(0, 8, 1, NULL), WEFT_EINVAL);
    assert_int_equal(weft_fd_wait(0, WEFT_READ, NAN, NULL), WEFT_EINVAL);
    assert_int_equal(weft_fd_read(-1, NULL, 0, 1, &(size_t){0}), WEFT_EINVAL);
    assert_int_equal(weft_fd_write(3, NULL, 5, 1, NULL), WEFT_EINVAL);
    assert_int_equal(weft_fd_accept(-1, NULL, NULL, 1, &(int){0}), WEFT_EINVAL);
    assert_int_equal(weft_fd_connect(3, NULL, 0, 1), WEFT_EINVAL);
    assert_int_equal(weft_fd_close(-1), WEFT_EINVAL);
    assert_int_equal(weft_poller_set("kqueue"), WEFT_EINVAL);
    /* A closed fd, from a thread (poll) and from a coroutine (the poller). (A high number:
     * the poller's own fds take the lowest free ones.) */
    int bad = 999;
    close(bad);
    assert_int_equal(weft_fd_wait(bad, WEFT_READ, 1, NULL), WEFT_EBADF);
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, NULL), 0); /* a hub */
    int rc = weft_fd_wait(bad, WEFT_READ, 1, NULL);
    assert_int_equal(rc, WEFT_EBADF);
    char c;
    assert_int_equal(weft_fd_read(bad, &c, 1, 1, &(size_t){0}), WEFT_EBADF);
}

static void read_until_closed(void *p)
{
    int *a = p;
    char c;
    a[1] = read_count(a[0], &c, 1, WEFT_FOREVER);
}

/* weft_fd_close wakes the coroutines waiting on the fd with EBADF before it closes. */
static void close_wakes_waiters(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    int a[2] = {p[0], 1}, b[2] = {p[0], 1};
    weft_co_t *x = weft_test_spawn(read_until_closed, a),
              *y = weft_test_spawn(read_until_closed, b);
    assert_int_equal(weft_co_yield(), 0);
    assert_int_equal(weft_co_state(x), WEFT_CO_BLOCKED);
    assert_int_equal(weft_fd_close(p[0]), 0);
    weft_test_co_join(x);
    weft_test_co_join(y);
    assert_int_equal(a[1], WEFT_EBADF);
    assert_int_equal(b[1], WEFT_EBADF);
    close(p[1]);
}

/* ---- pipes --------------------------------------------------------------------------------- */

typedef struct stream {
    int fd;
    size_t n;
    uint64_t sum;
    ssize_t last;
} stream_t;

static void pump_out(void *p)
{
    stream_t *s = p;
    unsigned char buf[8192]; /* (a 64 KiB array would overflow the default stack) */
    size_t sent = 0;
    while (sent < s->n) {
        size_t k = s->n - sent < sizeof buf ? s->n - sent : sizeof buf;
        for (size_t i = 0; i < k; i++) buf[i] = (unsigned char)((sent + i) * 7);
        for (size_t i = 0; i < k; i++) s->sum += buf[i];
        size_t done = 0;
        assert_int_equal(weft_fd_write(s->fd, buf, k, 30, &done), 0);
        assert_int_equal(done, k);
        sent += k;
    }
    close(s->fd);
}

static void pump_in(void *p)
{
    stream_t *s = p;
    unsigned char buf[4096];
    size_t r;
    int rc;
    while ((rc = weft_fd_read(s->fd, buf, sizeof buf, 30, &r)) == 0 && r > 0) {
        for (size_t i = 0; i < r; i++) s->sum += buf[i];
        s->n += r;
    }
    s->last = rc ? rc : (int)r;
}

/* 4 MiB through a pipe between two coroutines of one thread: writes wait for room, reads for
 * data; every byte arrives; EOF is 0. */
static void pipe_stream_and_eof(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    stream_t out = {p[1], (size_t)4 << 20, 0, 0}, in = {p[0], 0, 0, 1};
    weft_co_t *r = weft_test_spawn(pump_in, &in), *w = weft_test_spawn(pump_out, &out);
    weft_test_co_join(w);
    weft_test_co_join(r);
    assert_int_equal(in.n, out.n);
    assert_true(in.sum == out.sum);
    assert_int_equal(in.last, 0);
    close(p[0]);
}

/* A caller that blocks SIGPIPE and has one pending keeps it across a write to a pipe whose
 * reader is gone: the write's EPIPE takes only the SIGPIPE it raised itself, never one that
 * was pending before (it used to take that one too). */
static void write_to_gone_reader_keeps_a_pending_sigpipe(void **state)
{
    (void)state;
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &pipe_set, &old), 0);
    assert_int_equal(pthread_kill(pthread_self(), SIGPIPE), 0);
    int p[2];
    make_pipe(p);
    close(p[0]);
    assert_int_equal(weft_fd_write(p[1], "x", 1, 1, NULL), WEFT_EPIPE);
    close(p[1]);
    sigpending(&pending);
    bool kept = sigismember(&pending, SIGPIPE);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE) {
    }
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    assert_true(kept);
}

/* A write to a pipe whose reader is gone is EPIPE, not a SIGPIPE death; the thread's pending
 * signals and mask are as before. */
static void write_to_gone_reader(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    close(p[0]);
    assert_int_equal(weft_fd_write(p[1], "x", 1, 1, NULL), WEFT_EPIPE);
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGPIPE));
    close(p[1]);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    close(sv[0]);
    assert_int_equal(weft_fd_send(sv[1], "x", 1, 0, 1, NULL), WEFT_EPIPE);
    close(sv[1]);
}

/* A reader that takes one byte and closes its end (a plain thread, blocking read). */
static void *read_one_and_close(void *p)
{
    int fd = *(int *)p;
    char c;
    if (read(fd, &c, 1) != 1) abort();
    close(fd);
    return NULL;
}

/* test__socket.py sendall to a peer that goes away: a write that sent part of its buffer and
 * then met an error reports the error, and how much went (the old weft_write returned the part
 * and dropped the error). A pipe from a thread without a hub, then a socketpair from a
 * coroutine's hub. */
static void fd_partial_write_reports_error_and_count(void **state)
{
    (void)state;
    size_t n = (size_t)8 << 20; /* far more than a pipe or socket buffer holds */
    char *big = calloc(1, n);
    assert_non_null(big);
    int p[2];
    make_pipe(p);
    pthread_t t = weft_test_start(read_one_and_close, &p[0]);
    size_t done = 0;
    int rc = weft_fd_write(p[1], big, n, 30, &done);
    weft_test_join(t);
    assert_int_equal(rc, WEFT_EPIPE);
    assert_true(done > 0 && done < n);
    close(p[1]);
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, NULL), 0); /* a hub */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    t = weft_test_start(read_one_and_close, &sv[0]);
    rc = weft_fd_send(sv[1], big, n, 0, 30, &done);
    weft_test_join(t);
    assert_true(rc == WEFT_EPIPE || rc == WEFT_ECONNRESET);
    assert_true(done > 0 && done < n);
    close(sv[1]);
    free(big);
}

/* A timeout after part of a write: WEFT_ETIMEDOUT, and *done says how much went; a read gets
 * what is there, then 0 with *done 0 at EOF; a NULL done is EINVAL for a read. */
static void fd_write_timeout_reports_count(void **state)
{
    (void)state;
    size_t n = (size_t)4 << 20;
    char *big = calloc(1, n);
    assert_non_null(big);
    int p[2];
    make_pipe(p);
    size_t done = 0;
    assert_int_equal(weft_fd_write(p[1], big, n, 0.05, &done), WEFT_ETIMEDOUT);
    assert_true(done > 0 && done < n);
    assert_int_equal(weft_fd_write(p[1], big, n, 0, NULL), WEFT_ETIMEDOUT); /* full: no room */
    close(p[1]);
    size_t total = 0, got = 1;
    while (weft_fd_read(p[0], big, n, 5, &got) == 0 && got > 0) total += got;
    assert_int_equal(got, 0); /* EOF */
    assert_int_equal(total, done);
    assert_int_equal(weft_fd_read(p[0], big, 1, 5, NULL), WEFT_EINVAL);
    assert_int_equal(weft_fd_recv(p[0], big, 1, 0, 5, NULL), WEFT_EINVAL);
    assert_int_equal(weft_fd_accept(p[0], NULL, NULL, 5, NULL), WEFT_EINVAL);
    close(p[0]);
    free(big);
}

/* ---- TCP ------------------------------------------------------------------------------------ */

static void echo_conn(void *p)
{
    int fd = (int)(intptr_t)p;
    char buf[1024];
    size_t n;
    while (weft_fd_recv(fd, buf, sizeof buf, 0, 30, &n) == 0 && n > 0)
        assert_int_equal(weft_fd_send(fd, buf, n, 0, 30, NULL), 0);
    weft_fd_close(fd);
}

typedef struct server {
    int fd;
    int conns;
} server_t;

static void serve(void *p)
{
    server_t *s = p;
    for (int i = 0; i < s->conns; i++) {
        int c = -1;
        assert_int_equal(weft_fd_accept(s->fd, NULL, NULL, 30, &c), 0);
        assert_true(c >= 0);
        assert_int_equal(weft_co_spawn(echo_conn, (void *)(intptr_t)c, NULL, NULL), 0);
    }
}

typedef struct client {
    struct sockaddr_in addr;
    int rounds;
    int ok;
} client_t;

static void client(void *p)
{
    client_t *c = p;
    int fd = tcp_socket();
    assert_int_equal(weft_fd_connect(fd, (struct sockaddr *)&c->addr, sizeof c->addr, 30), 0);
    for (int i = 0; i < c->rounds; i++) {
        char msg[64], got[64];
        int len = snprintf(msg, sizeof msg, "message %d", i);
        assert_int_equal(weft_fd_send(fd, msg, (size_t)len, 0, 30, NULL), 0);
        size_t have = 0;
        while (have < (size_t)len) {
            size_t r = 0;
            assert_int_equal(weft_fd_recv(fd, got + have, sizeof got - have, 0, 30, &r), 0);
            assert_true(r > 0);
            have += r;
        }
        assert_memory_equal(got, msg, (size_t)len);
        c->ok++;
    }
    weft_fd_close(fd);
}

/* test__socket.py TestTCP.test_sendall / the seed's echo server: one thread, a server
 * coroutine accepting, a coroutine per connection, 20 client coroutines, all on loopback. */
static void tcp_echo_many_clients(void **state)
{
    (void)state;
    enum { CLIENTS = 20 };
    server_t s = {0, CLIENTS};
    struct sockaddr_in addr;
    s.fd = listener(&addr);
    weft_co_t *srv = weft_test_spawn(serve, &s);
    client_t cl[CLIENTS];
    weft_co_t *cs[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = (client_t){addr, 50, 0};
        cs[i] = weft_test_spawn(client, &cl[i]);
    }
    assert_int_equal(weft_co_join_all(cs, CLIENTS, 60), 0);
    for (int i = 0; i < CLIENTS; i++) {
        assert_int_equal(cl[i].ok, 50);
        weft_co_release(cs[i]);
    }
    weft_test_co_join(srv);
    /* The echo coroutines end on EOF; let them. */
    for (int i = 0; i < 100; i++) weft_co_yield();
    assert_int_equal(weft_time_sleep(0.01), 0);
    assert_int_equal(weft_fd_close(s.fd), 0);
}

/* test__socket.py test_connect_refused / timeouts: a closed port refuses; accept and recv
 * time out; a reset by the peer is ECONNRESET. */
static void tcp_refused_timeouts_reset(void **state)
{
    (void)state;
    struct sockaddr_in addr;
    int l = listener(&addr);
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, NULL), 0); /* run as the hub's root */
    assert_int_equal(weft_fd_accept(l, NULL, NULL, 0.02, &(int){0}), WEFT_ETIMEDOUT);
    int c = tcp_socket();
    assert_int_equal(weft_fd_connect(c, (struct sockaddr *)&addr, sizeof addr, 5), 0);
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    int a = -1;
    assert_int_equal(weft_fd_accept(l, (struct sockaddr *)&peer, &plen, 5, &a), 0);
    assert_true(a >= 0);
    assert_int_equal(plen, sizeof peer);
    assert_int_equal(peer.sin_family, AF_INET);
    char buf[8];
    assert_int_equal(weft_fd_recv(c, buf, sizeof buf, 0, 0.02, &(size_t){0}), WEFT_ETIMEDOUT);
    /* The peer aborts: SO_LINGER 0 makes close send a reset. */
    struct linger lg = {1, 0};
    assert_int_equal(setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    size_t done = 0;
    assert_int_equal(weft_fd_send(a, "hi", 2, 0, 5, &done), 0);
    assert_int_equal(done, 2);
    weft_fd_close(a);
    int rc = weft_fd_recv(c, buf, sizeof buf, 0, 5, &done);
    assert_true((rc == 0 && done == 2) || rc == WEFT_ECONNRESET);
    if (rc == 0)
        assert_int_equal(weft_fd_recv(c, buf, sizeof buf, 0, 5, &(size_t){0}), WEFT_ECONNRESET);
    weft_fd_close(c);
    /* The port is closed now: refused. */
    weft_fd_close(l);
    c = tcp_socket();
    assert_int_equal(weft_fd_connect(c, (struct sockaddr *)&addr, sizeof addr, 5),
                     WEFT_ECONNREFUSED);
    weft_fd_close(c);
}

/* ---- cancellation, threads, fork ------------------------------------------------------------ */

static void read_forever(void *p)
{
    int *a = p;
    char c;
    a[1] = read_count(a[0], &c, 1, WEFT_FOREVER);
}

/* libdill cancel.c: a coroutine parked in IO is canceled: ECANCELED, and the fd stays usable. */
static void cancel_io_wait(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    int a[2] = {p[0], 1};
    weft_co_t *co = weft_test_spawn(read_forever, a);
    assert_int_equal(weft_co_yield(), 0);
    assert_int_equal(weft_co_cancel(co), 0);
    weft_test_co_join(co);
    assert_int_equal(a[1], WEFT_ECANCELED);
    assert_int_equal(write(p[1], "y", 1), 1);
    char c;
    assert_int_equal(read_count(p[0], &c, 1, 5), 1);
    close(p[0]);
    close(p[1]);
}

typedef struct thread_read {
    int fd, first, second;
    weft_event_t timed_out; /* set once the first read has ended */
} thread_read_t;

static void *thread_reader(void *p)
{
    thread_read_t *r = p;
    char c;
    r->first = read_count(r->fd, &c, 1, 0.02); /* no hub here: poll(2) */
    weft_event_set(&r->timed_out);
    r->second = read_count(r->fd, &c, 1, 5);
    return NULL;
}

/* A thread without coroutines waits in poll(2); timeouts work the same. The byte is written
 * only once the first read has ended (a sleep instead once let a loaded machine start the
 * thread after the write: the first read got the byte). */
static void thread_without_hub(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    thread_read_t r = {p[0], 1, 1, WEFT_EVENT_INIT};
    pthread_t t = weft_test_start(thread_reader, &r);
    assert_int_equal(weft_event_wait(&r.timed_out, 60), 0);
    assert_int_equal(write(p[1], "z", 1), 1);
    weft_test_join(t);
    assert_int_equal(r.first, WEFT_ETIMEDOUT);
    assert_int_equal(r.second, 1);
    weft_event_destroy(&r.timed_out);
    close(p[0]);
    close(p[1]);
}

static void *set_soon(void *p)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    weft_event_set(p);
    return NULL;
}

static void wait_event(void *p)
{
    assert_int_equal(weft_event_wait(p, 30), 0);
}

static void *signal_then_write(void *p)
{
    void **a = p;
    pthread_t target = *(pthread_t *)a[0];
    for (int i = 0; i < 10; i++) {
        pthread_kill(target, SIGUSR1);
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (write(*(int *)a[1], "e", 1) != 1) abort();
    return NULL;
}

static void on_usr1(int sig)
{
    (void)sig;
}

typedef struct eintr_arg {
    int fd;
    _Atomic int started;
    ssize_t got;
    char c;
} eintr_arg_t;

static void *read_through_signals(void *p)
{
    eintr_arg_t *a = p;
    atomic_store(&a->started, 1);
    a->got = read_count(a->fd, &a->c, 1, 10);
    return NULL;
}

static void echo_back(void *p)
{
    int *fd = p;
    char c;
    if (read_count(fd[0], &c, 1, 10) != 1) return;
    if (weft_fd_write(fd[1], &c, 1, 10, NULL) != 0) return; /* the reader then sees no echo */
}

/* Signals without SA_RESTART interrupt the waits (EINTR): weft retries, the calls complete
 * with the data, in a thread's poll(2) and in a hub's poller alike. */
static void eintr_is_retried(void **state)
{
    (void)state;
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_usr1; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    int p[2];
    make_pipe(p);
    eintr_arg_t a = {.fd = p[0]};
    pthread_t t = weft_test_start(read_through_signals, &a);
    while (!atomic_load(&a.started)) sched_yield();
    for (int i = 0; i < 10; i++) {
        pthread_kill(t, SIGUSR1);
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(write(p[1], "s", 1), 1);
    weft_test_join(t);
    assert_int_equal(a.got, 1);
    assert_int_equal(a.c, 's');
    /* The hub: a coroutine echoes through a second pipe while the root, in its poller, is
     * interrupted by signals sent from another thread. */
    int q[2];
    make_pipe(q);
    int fds[2] = {p[0], q[1]};
    assert_int_equal(weft_co_spawn(echo_back, fds, NULL, NULL), 0);
    assert_int_equal(weft_co_yield(), 0);
    static pthread_t self;
    static void *targs[2];
    self = pthread_self();
    targs[0] = &self;
    targs[1] = &p[1];
    pthread_t killer = weft_test_start(signal_then_write, targs);
    char c = 0;
    assert_int_equal(read_count(q[0], &c, 1, 10), 1);
    assert_int_equal(c, 'e');
    weft_test_join(killer);
    sigaction(SIGUSR1, &old, NULL);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
}

/* A hub asleep in its poller is woken by another thread's Event.set (through the poller's
 * eventfd) — the cross-thread wake path once a hub does IO. */
static void cross_thread_wake_in_poller(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    weft_event_t e;
    weft_event_init(&e);
    weft_co_t *w = weft_test_spawn(wait_event, &e);
    /* The root waits on a pipe nobody writes: the hub sleeps in the poller. */
    pthread_t t = weft_test_start(set_soon, &e);
    assert_int_equal(weft_fd_wait(p[0], WEFT_READ, 0.3, NULL), WEFT_ETIMEDOUT);
    assert_int_equal(weft_co_state(w), WEFT_CO_DONE);
    weft_test_co_join(w);
    weft_test_join(t);
    weft_event_destroy(&e);
    close(p[0]);
    close(p[1]);
}

/* test__core_fork.py: a child forked while the hub has a poller gets its own (the parent's
 * kernel objects are left alone) and its coroutines wait on fds as before. */
static void fork_with_poller(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    assert_int_equal(weft_co_spawn(write_later, &p[1], NULL, NULL), 0);
    char c;
    assert_int_equal(read_count(p[0], &c, 1, 5), 1); /* the poller exists */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int ok = weft_co_spawn(write_later, &p[1], NULL, NULL) == 0 &&
                 read_count(p[0], &c, 1, 5) == 1 &&
                 weft_fd_wait(p[0], WEFT_READ, 0.01, NULL) == WEFT_ETIMEDOUT;
        _exit(ok ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent's poller still works. */
    assert_int_equal(weft_co_spawn(write_later, &p[1], NULL, NULL), 0);
    assert_int_equal(read_count(p[0], &c, 1, 5), 1);
    close(p[0]);
    close(p[1]);
}

static void await_child(void *p)
{
    int *a = p;
    int got = 0;
    a[1] = weft_fd_wait(a[0], WEFT_READ, 30, &got);
    if (a[1] == 0) a[1] = got;
}

/* A coroutine waits for a child process through its pidfd (readable when the child exits:
 * what the process layer's join builds on), while the thread's other coroutines run: the
 * child exits only once the main coroutine has run three times (it used to sleep 30 ms and
 * count on three 2 ms sleeps fitting in it, which a loaded machine broke). */
static void coroutine_waits_for_a_process(void **state)
{
    (void)state;
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        close(go[1]);
        while (read(go[0], &c, 1) < 0 && errno == EINTR) {
        }
        _exit(7);
    }
    close(go[0]);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) { /* a kernel before 5.3 */
        close(go[1]);
        waitpid(pid, NULL, 0);
        skip();
    }
    int a[2] = {pidfd, 0};
    weft_co_t *w = weft_test_spawn(await_child, a);
    int ticks = 0;
    while (weft_co_state(w) != WEFT_CO_DONE) {
        if (++ticks == 3) assert_int_equal(write(go[1], "x", 1), 1);
        assert_int_equal(weft_time_sleep(0.002), 0);
    }
    close(go[1]);
    weft_test_co_join(w);
    assert_int_equal(a[1], WEFT_READ);
    assert_true(ticks >= 3);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 7);
    close(pidfd);
}

/* ---- many fds -------------------------------------------------------------------------------- */

static void wait_pair(void *p)
{
    int *fd = p;
    char c;
    fd[1] = read_count(fd[0], &c, 1, 30);
}

/* 1,500 socketpairs waited on at once, all woken. select cannot watch fds >= FD_SETSIZE: for it
 * those waits are EINVAL. */
static void many_fds(void **state)
{
    (void)state;
    enum { N = 1500 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * N + 64) {
        rl.rlim_cur = rl.rlim_max < 2 * N + 64 ? rl.rlim_max : 2 * N + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < 2 * N + 64) skip();
    static int sv[N][2], res[N][2];
    weft_co_t **cs = calloc(N, sizeof *cs);
    for (int i = 0; i < N; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]), 0);
        res[i][0] = sv[i][0];
        res[i][1] = 1;
        cs[i] = weft_test_spawn(wait_pair, res[i]);
    }
    assert_int_equal(weft_co_yield(), 0);
    for (int i = 0; i < N; i++) assert_int_equal(write(sv[i][1], "k", 1), 1);
    assert_int_equal(weft_co_join_all(cs, N, 60), 0);
    bool select_ = !strcmp(weft_poller_name(), "select");
    for (int i = 0; i < N; i++) {
        if (select_ && sv[i][0] >= 1024)
            assert_int_equal(res[i][1], WEFT_EINVAL);
        else
            assert_int_equal(res[i][1], 1);
        weft_co_release(cs[i]);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    free(cs);
}

/* ---- out of memory --------------------------------------------------------------------------- */

static int oom_body(void *ctx)
{
    int *p = ctx;
    /* A high fd number grows the fd table (and the backend's). */
    int fd = fcntl(p[0], F_DUPFD_CLOEXEC, 900);
    if (fd < 0) return WEFT_EIO;
    int got = 0;
    int rc = weft_fd_wait(fd, WEFT_WRITE, 1, &got);
    weft_fd_close(fd);
    return rc ? rc : got == WEFT_WRITE ? 0 : WEFT_EIO;
}

/* Every allocation on the IO path may fail: a code, nothing left behind. (The hub and its
 * poller live as long as the thread, so they are made first.) */
static void out_of_memory(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    assert_int_equal(weft_co_spawn(write_later, &p[1], NULL, NULL), 0);
    char c;
    assert_int_equal(read_count(p[0], &c, 1, 5), 1);
    int w[1] = {p[1]};
    weft_test_oom(oom_body, w);
    close(p[0]);
    close(p[1]);
}

/* The timeout rules (weft/core.h): waiting for an empty pipe with -0.5 polls (WEFT_ETIMEDOUT
 * at once), from a thread and from a coroutine; WEFT_FOREVER blocks until data comes; NaN is
 * WEFT_EINVAL. */
static int timed_fd_calls(void *p)
{
    int fd = *(int *)p;
    char c;
    if (weft_fd_wait(fd, WEFT_READ, -0.5, NULL) != WEFT_ETIMEDOUT) return -1;
    if (read_count(fd, &c, 1, -0.5) != WEFT_ETIMEDOUT) return -2;
    if (read_count(fd, &c, 1, NAN) != WEFT_EINVAL) return -3;
    return 0;
}

static void timed_fd_calls_co(void *p)
{
    int *fdrc = p;
    fdrc[1] = timed_fd_calls(&fdrc[0]);
}

/* The same from a coroutine of a hub on this call's thread. */
static int timed_fd_calls_in_hub(void *p)
{
    int fdrc[2] = {*(int *)p, 1};
    weft_co_t *co;
    if (weft_co_spawn(timed_fd_calls_co, fdrc, NULL, &co)) return -4;
    int rc = weft_co_join(co, WEFT_FOREVER);
    weft_co_release(co);
    return rc ? rc : fdrc[1];
}

static int forever_read(void *p)
{
    char c = 0;
    int n = read_count(*(int *)p, &c, 1, WEFT_FOREVER);
    return n == 1 ? c : (int)n;
}

static void write_x(void *p)
{
    assert_int_equal(write(*(int *)p, "x", 1), 1);
}

static void fd_negative_timeout_polls(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    assert_int_equal(weft_test_polls(timed_fd_calls, &p[0]), 0);
    assert_int_equal(weft_test_polls(timed_fd_calls_in_hub, &p[0]), 0);
    weft_test_blocks_until(forever_read, &p[0], write_x, &p[1], 'x');
    close(p[0]);
    close(p[1]);
}

/* ---- the level contract on every poller ----------------------------------------------------
 * io_uring's multishot polls report edges; io_internal.h promises levels: as long as an fd is
 * ready, every wait reports it, whether or not the readiness was reported before, and whether
 * or not anybody waited when it came. These cases drive both sides of the io_uring backend:
 * its multishot mode (this kernel's) and, on a thread whose hub is made after
 * weft__poller_uring_multishot(0), its one-shot mode. On the other pollers they check the
 * same contract. */

int weft__poller_uring_multishot(int enable); /* io_internal.h: tests only */

/* Ready and not consumed: every wait says so. */
static void level_waits(int fd, int peer)
{
    int got = 0;
    assert_int_equal(write(peer, "a", 1), 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(weft_fd_wait(fd, WEFT_READ, 5, &got), 0);
        assert_int_equal(got, WEFT_READ);
    }
    char c;
    assert_int_equal(read_count(fd, &c, 1, 5), 1);
    assert_int_equal(weft_fd_wait(fd, WEFT_READ, 0.02, &got), WEFT_ETIMEDOUT);
    assert_int_equal(got, 0);
}

typedef struct late_pair {
    int fd_peer, pipe_w;
} late_pair_t;

/* Input for the fd, then a byte on the pipe its reader waits on meanwhile. */
static void input_then_pipe(void *p)
{
    late_pair_t *a = p;
    assert_int_equal(write(a->fd_peer, "b", 1), 1);
    assert_int_equal(weft_co_yield(), 0); /* the hub looks at its poller: the fd's report */
    assert_int_equal(weft_time_sleep(0.01), 0);
    assert_int_equal(write(a->pipe_w, "p", 1), 1);
}

/* Input that came while its fd's reader waited on something else (its report found nobody):
 * the next wait on the fd still reports it. */
static void unwaited_report_kept(int fd, int peer)
{
    int got = 0, pp[2];
    make_pipe(pp);
    char c;
    assert_int_equal(weft_fd_wait(fd, WEFT_READ, 0.01, &got), WEFT_ETIMEDOUT); /* armed */
    late_pair_t a = {peer, pp[1]};
    weft_co_t *w = weft_test_spawn(input_then_pipe, &a);
    assert_int_equal(read_count(pp[0], &c, 1, 5), 1);
    weft_test_co_join(w);
    assert_int_equal(weft_fd_wait(fd, WEFT_READ, 5, &got), 0);
    assert_int_equal(got, WEFT_READ);
    assert_int_equal(read_count(fd, &c, 1, 5), 1);
    assert_int_equal(c, 'b');
    assert_int_equal(weft_fd_close(pp[0]), 0);
    assert_int_equal(weft_fd_close(pp[1]), 0);
}

/* A read that parks (its try said EAGAIN) is woken by input that comes later, and a
 * write to a full socket by room. */
static void late_peer(void *p)
{
    int *fds = p;
    assert_int_equal(weft_time_sleep(0.01), 0);
    assert_int_equal(write(fds[1], "c", 1), 1);
}

static void parked_read_woken(int fd, int peer)
{
    int fds[2] = {fd, peer};
    char c;
    weft_co_t *w = weft_test_spawn(late_peer, fds);
    assert_int_equal(read_count(fd, &c, 1, 5), 1);
    assert_int_equal(c, 'c');
    weft_test_co_join(w);
}

static void level_cases(void)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    level_waits(sv[0], sv[1]);
    unwaited_report_kept(sv[0], sv[1]);
    parked_read_woken(sv[0], sv[1]);
    level_waits(sv[0], sv[1]);
    assert_int_equal(weft_fd_close(sv[0]), 0); /* the numbers are used again next */
    assert_int_equal(weft_fd_close(sv[1]), 0);
}

static void level_cases_co(void *p)
{
    (void)p;
    level_cases();
}

static void readiness_is_reported_as_a_level(void **state)
{
    (void)state;
    weft_test_co_join(weft_test_spawn(level_cases_co, NULL)); /* the thread's hub */
    level_cases();
}

static void level_cases_thread(void *p)
{
    (void)p;
    weft_co_t *co;
    assert_int_equal(weft_co_spawn(level_cases_co, NULL, NULL, &co), 0);
    assert_int_equal(weft_co_join(co, 60), 0);
    assert_int_equal(weft_co_release(co), 0);
}

/* The same on the io_uring backend's one-shot polls (kernels before 5.13): a hub made on a
 * new thread after the multishot probe is turned off. */
static void readiness_is_reported_as_a_level_with_one_shot_polls(void **state)
{
    (void)state;
    weft__poller_uring_multishot(0);
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(level_cases_thread, NULL, NULL, &t), 0);
    assert_int_equal(weft_thread_join(t, 60), 0);
    assert_int_equal(weft_thread_release(t), 0);
    weft__poller_uring_multishot(1);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(fd_negative_timeout_polls),
    WEFT_TEST(wait_fd_readiness),
    WEFT_TEST(wait_fd_bad_input),
    WEFT_TEST(close_wakes_waiters),
    WEFT_TEST(pipe_stream_and_eof),
    WEFT_TEST(write_to_gone_reader),
    WEFT_TEST(write_to_gone_reader_keeps_a_pending_sigpipe),
    WEFT_TEST(fd_partial_write_reports_error_and_count),
    WEFT_TEST(fd_write_timeout_reports_count),
    WEFT_TEST(tcp_echo_many_clients),
    WEFT_TEST(tcp_refused_timeouts_reset),
    WEFT_TEST(cancel_io_wait),
    WEFT_TEST(thread_without_hub),
    WEFT_TEST(eintr_is_retried),
    WEFT_TEST(cross_thread_wake_in_poller),
    WEFT_TEST(fork_with_poller),
    WEFT_TEST(coroutine_waits_for_a_process),
    WEFT_TEST(many_fds),
    WEFT_TEST(out_of_memory),
    WEFT_TEST(readiness_is_reported_as_a_level),
    WEFT_TEST(readiness_is_reported_as_a_level_with_one_shot_polls),
};

WEFT_TEST_MAIN(cases)
