/*
 * The monkey patch: plain libc blocking calls inside coroutines park only the coroutine, and
 * behave exactly as libc's elsewhere. Mirrors gevent's src/gevent/tests/test__monkey.py
 * (patch_all, the audit), test__socket.py (blocking sockets in greenlets), test__select.py,
 * test__core_timer / test__sleep0 (sleep), test__getaddrinfo_import / test__socket_dns
 * (resolution off the hub), and the proof the issue asks for: an unmodified Debian client
 * library (hiredis) against a real redis-server, 200 requests of 100 ms each from ONE thread.
 * Runs once per poller (CTest suffix .select/.poll/.epoll/.io_uring).
 */
#include "weft_test.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/un.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef WEFT_TEST_HIREDIS
#include <hiredis/hiredis.h>
#endif

/* TSan, by default, kills the child of a multi-threaded fork once it creates a thread;
 * connect_after_fork does exactly that, on purpose (the child's helper thread). */
#if defined(__SANITIZE_THREAD__)
#define HOOK_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HOOK_TEST_TSAN 1
#endif
#endif
#ifdef HOOK_TEST_TSAN
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "die_after_fork=0";
}
#endif

/* Every case runs patched. */
#undef WEFT_TEST
#define WEFT_TEST(NAME)                                                                            \
    cmocka_unit_test_setup_teardown(NAME, weft_test_setup_patched, weft_test_teardown_patched)

/* A coroutine that counts while others wait: proof that the thread was not blocked. */
typedef struct ticker {
    _Atomic int stop, ticks;
} ticker_t;

static void tick(void *p)
{
    ticker_t *t = p;
    while (!atomic_load(&t->stop)) {
        atomic_fetch_add(&t->ticks, 1);
        weft_time_sleep(0.001);
    }
}

/* ---- the audit ------------------------------------------------------------------------------ */

/* test__monkey.py: after patch_all every call is patched; unpatching turns them off. */
static void audit(void **state)
{
    (void)state;
    const weft_patch_t *list;
    size_t n = weft_monkey_patched(&list);
    assert_true(n >= 22);
    for (size_t i = 0; i < n; i++) {
        assert_true(list[i].active);
        assert_non_null(strstr(list[i].mechanism, "interposed"));
    }
    assert_int_equal(weft_monkey_patch(), 0); /* idempotent */
    assert_int_equal(weft_monkey_unpatch(), 0);
    weft_monkey_patched(NULL);
    assert_false(list[0].active);
    assert_int_equal(weft_monkey_patch(), 0);
    weft_monkey_patched(NULL);
    assert_true(list[0].active);
}

/* ---- files and pipes ------------------------------------------------------------------------ */

typedef struct pipe_arg {
    int fd[2];
    char got[16];
    ssize_t n;
} pipe_arg_t;

static void blocking_reader(void *p)
{
    pipe_arg_t *a = p;
    a->n = read(a->fd[0], a->got, sizeof a->got); /* plain libc read on a blocking pipe */
}

static void late_writer(void *p)
{
    pipe_arg_t *a = p;
    usleep(20000); /* plain usleep */
    assert_int_equal(write(a->fd[1], "hello", 5), 5);
}

/* A plain read() on a blocking pipe parks only its coroutine: the writer (after a plain
 * usleep) and a ticker run meanwhile, on the same thread. */
static void read_write_sleep(void **state)
{
    (void)state;
    pipe_arg_t a = {{0}, {0}, 0};
    assert_int_equal(pipe(a.fd), 0);
    ticker_t t = {0};
    weft_co_t *tk = weft_test_spawn(tick, &t), *r = weft_test_spawn(blocking_reader, &a),
              *w = weft_test_spawn(late_writer, &a);
    weft_test_co_join(r);
    weft_test_co_join(w);
    atomic_store(&t.stop, 1);
    weft_test_co_join(tk);
    assert_int_equal(a.n, 5);
    assert_memory_equal(a.got, "hello", 5);
    assert_true(atomic_load(&t.ticks) >= 2); /* it ran again after its first nap */
    close(a.fd[0]);
    close(a.fd[1]);
}

static void big_writer(void *p)
{
    pipe_arg_t *a = p;
    static char buf[1 << 20];
    memset(buf, 'x', sizeof buf);
    a->n = write(a->fd[1], buf, sizeof buf); /* more than the pipe holds: parks for room */
}

static void drain(void *p)
{
    pipe_arg_t *a = p;
    char buf[4096];
    size_t total = 0;
    while (total < (1 << 20)) {
        ssize_t r = read(a->fd[0], buf, sizeof buf);
        assert_true(r > 0);
        total += (size_t)r;
    }
}

/* A blocking write larger than the pipe completes in full (as libc's would), while its
 * reader, a coroutine of the same thread, drains it. */
static void big_write_completes(void **state)
{
    (void)state;
    pipe_arg_t a = {{0}, {0}, 0};
    assert_int_equal(pipe(a.fd), 0);
    weft_co_t *w = weft_test_spawn(big_writer, &a), *r = weft_test_spawn(drain, &a);
    weft_test_co_join(w);
    weft_test_co_join(r);
    assert_int_equal(a.n, 1 << 20);
    close(a.fd[0]);
    close(a.fd[1]);
}

static void nothing(void *p)
{
    (void)p;
}

/* The user's O_NONBLOCK keeps its meaning: EAGAIN at once, no parking. */
static void user_nonblock_kept(void **state)
{
    (void)state;
    int fd[2];
    assert_int_equal(pipe2(fd, O_NONBLOCK), 0);
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, NULL),
                     0); /* a hub: the calls are intercepted */
    char c;
    errno = 0;
    assert_int_equal(read(fd[0], &c, 1), -1);
    assert_int_equal(errno, EAGAIN);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(recv(sv[0], &c, 1, 0), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(recv(sv[0], &c, 1, MSG_DONTWAIT), -1);
    /* Modes changed later are seen: blocking again through fcntl (a recv then parks until the
     * timeout set afterwards with setsockopt), non-blocking through ioctl(FIONBIO). */
    assert_int_equal(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) & ~O_NONBLOCK), 0);
    struct timeval tv = {0, 20000};
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(recv(sv[0], &c, 1, 0), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(weft_time_monotonic_ns() - t0 >= 15000000);
    int on = 1;
    assert_int_equal(ioctl(sv[0], FIONBIO, &on), 0);
    t0 = weft_time_monotonic_ns();
    assert_int_equal(recv(sv[0], &c, 1, 0), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(weft_time_monotonic_ns() - t0 < 15000000);
    close(fd[0]);
    close(fd[1]);
    close(sv[0]);
    close(sv[1]);
}

static void closing_reader(void *p)
{
    pipe_arg_t *a = p;
    errno = 0;
    a->n = read(a->fd[0], a->got, 1);
    a->got[1] = (char)errno;
}

/* A plain close() of an fd a coroutine reads wakes it with EBADF (not a hang). */
static void close_wakes_reader(void **state)
{
    (void)state;
    pipe_arg_t a = {{0}, {0}, 0};
    assert_int_equal(pipe(a.fd), 0);
    weft_co_t *r = weft_test_spawn(closing_reader, &a);
    assert_int_equal(weft_co_yield(), 0);
    assert_int_equal(close(a.fd[0]), 0);
    weft_test_co_join(r);
    assert_int_equal(a.n, -1);
    assert_int_equal(a.got[1], EBADF);
    close(a.fd[1]);
}

/* ---- sockets -------------------------------------------------------------------------------- */

static struct sockaddr_in server_addr;

static void serve_conn(void *p)
{
    int fd = (int)(intptr_t)p;
    char buf[256];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) assert_int_equal(send(fd, buf, (size_t)n, 0), n);
    close(fd);
}

static void acceptor(void *p)
{
    int lfd = *(int *)p;
    for (int i = 0; i < 20; i++) {
        int fd = accept(lfd, NULL, NULL); /* plain blocking accept */
        assert_true(fd >= 0);
        assert_int_equal(weft_co_spawn(serve_conn, (void *)(intptr_t)fd, NULL, NULL), 0);
    }
}

static void blocking_client(void *p)
{
    int *ok = p;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr), 0);
    assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK); /* the mode the user chose stays */
    for (int i = 0; i < 20; i++) {
        char msg[32], got[32];
        int len = snprintf(msg, sizeof msg, "line %d", i);
        assert_int_equal(write(fd, msg, (size_t)len), len);
        ssize_t have = 0;
        while (have < len) {
            ssize_t r = read(fd, got + have, sizeof got - (size_t)have);
            assert_true(r > 0);
            have += r;
        }
        assert_memory_equal(got, msg, (size_t)len);
        (*ok)++;
    }
    close(fd);
}

/* test__socket.py TestTCP with plain libc calls: socket/bind/listen/accept/connect/read/write
 * on blocking sockets, a server and 20 clients as coroutines of one thread. */
static void blocking_sockets(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    server_addr =
        (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof server_addr;
    assert_int_equal(bind(lfd, (struct sockaddr *)&server_addr, len), 0);
    assert_int_equal(listen(lfd, 64), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&server_addr, &len), 0);
    weft_co_t *a = weft_test_spawn(acceptor, &lfd);
    int ok[20] = {0};
    weft_co_t *c[20];
    for (int i = 0; i < 20; i++) c[i] = weft_test_spawn(blocking_client, &ok[i]);
    assert_int_equal(weft_co_join_all(c, 20, 60), 0);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(ok[i], 20);
        weft_co_release(c[i]);
    }
    weft_test_co_join(a);
    assert_int_equal(weft_time_sleep(0.01), 0); /* the servers see EOF and end */
    close(lfd);
}

/* SO_RCVTIMEO keeps its meaning: a recv with nothing to read fails with EAGAIN after it,
 * while the thread's other coroutines run. */
static void rcvtimeo_kept(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct timeval tv = {0, 50000};
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    ticker_t t = {0};
    weft_co_t *tk = weft_test_spawn(tick, &t);
    char c;
    int64_t t0 = weft_time_monotonic_ns();
    errno = 0;
    assert_int_equal(recv(sv[0], &c, 1, 0), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(weft_time_monotonic_ns() - t0 >= 45 * 1000000LL);
    atomic_store(&t.stop, 1);
    weft_test_co_join(tk);
    assert_true(atomic_load(&t.ticks) >= 2); /* it ran again after its first nap */
    close(sv[0]);
    close(sv[1]);
}

/* After a short read (the socket drained), the next read waits for the poller first instead
 * of trying: input that is already there is read at once, input that comes later wakes it,
 * SO_RCVTIMEO still bounds it, O_NONBLOCK set since still means EAGAIN at once, and a full
 * read afterwards goes back to trying first. */
static void drained_socket_reads(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, NULL), 0);
    char buf[64];
    assert_int_equal(write(sv[1], "ab", 2), 2);
    assert_int_equal(read(sv[0], buf, sizeof buf), 2); /* short: drained */
    assert_int_equal(write(sv[1], "cd", 2), 2);
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(read(sv[0], buf, sizeof buf), 2); /* already there: no wait */
    assert_memory_equal(buf, "cd", 2);
    assert_true(weft_time_monotonic_ns() - t0 < 1000000000LL);
    pipe_arg_t a = {{sv[0], sv[1]}, {0}, 0};
    weft_co_t *w = weft_test_spawn(late_writer, &a); /* "hello" after 20 ms */
    assert_int_equal(recv(sv[0], buf, sizeof buf, 0), 5);
    assert_memory_equal(buf, "hello", 5);
    weft_test_co_join(w);
    struct timeval tv = {0, 30000};
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    t0 = weft_time_monotonic_ns();
    errno = 0;
    assert_int_equal(read(sv[0], buf, sizeof buf), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(weft_time_monotonic_ns() - t0 >= 25 * 1000000LL);
    assert_int_equal(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
    t0 = weft_time_monotonic_ns();
    assert_int_equal(read(sv[0], buf, sizeof buf), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(weft_time_monotonic_ns() - t0 < 25 * 1000000LL);
    assert_int_equal(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) & ~O_NONBLOCK), 0);
    assert_int_equal(write(sv[1], "0123", 4), 4);
    assert_int_equal(read(sv[0], buf, 4), 4); /* a full read: not drained any more */
    assert_int_equal(write(sv[1], "xy", 2), 2);
    assert_int_equal(read(sv[0], buf, 2), 2);
    assert_memory_equal(buf, "xy", 2);
    close(sv[0]);
    close(sv[1]);
}

/* A short read is no proof that a socket is drained: a datagram socket keeps its next
 * datagram, a peek keeps what it saw. A read after either returns what is there at once, on
 * every poller (io_uring's multishot polls report only input that comes later: there the
 * patch tries before it waits). Each socket first has a read that parked (its poll armed). */
static void short_read_leaves_input(int type)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
    char buf[64];
    pipe_arg_t a = {{sv[0], sv[1]}, {0}, 0};
    weft_co_t *w = weft_test_spawn(late_writer, &a); /* "hello" after 20 ms */
    assert_int_equal(read(sv[0], buf, sizeof buf), 5);
    weft_test_co_join(w);
    struct timeval tv = {5, 0}; /* a hang fails the case with EAGAIN, not by its timeout */
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(write(sv[1], "ab", 2), 2);
    assert_int_equal(write(sv[1], "cd", 2), 2);
    if (type == SOCK_DGRAM) {
        assert_int_equal(read(sv[0], buf, sizeof buf), 2); /* short: one datagram */
        assert_memory_equal(buf, "ab", 2);
        assert_int_equal(read(sv[0], buf, sizeof buf), 2);
        assert_memory_equal(buf, "cd", 2);
    } else {
        assert_int_equal(recv(sv[0], buf, sizeof buf, MSG_PEEK), 4); /* short: all kept */
        assert_int_equal(read(sv[0], buf, sizeof buf), 4);
        assert_memory_equal(buf, "abcd", 4);
    }
    close(sv[0]);
    close(sv[1]);
}

static void short_reads_of_datagrams_and_peeks_leave_input(void **state)
{
    (void)state;
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, NULL), 0);
    short_read_leaves_input(SOCK_DGRAM);
    short_read_leaves_input(SOCK_STREAM);
}

/* ---- a number closed and reused where the patch cannot see it ---------------------------------
 * fclose, closedir and pclose close their fd inside glibc (no call through the dynamic linker
 * reaches weft's close), and syscall(SYS_close) bypasses libc altogether. Whatever weft knew of
 * the socket that had the number must not change what a call on the file that reuses it
 * returns: each case leaves weft's knowledge of a socket on a number (a drained read, or the
 * socket's non-blocking mode), closes the number through one of those paths, reuses it for a
 * pipe, a socket, an eventfd and a regular file, and checks that read/recv answer as libc's,
 * in a coroutine and on a thread without one. */

typedef enum { BY_FCLOSE, BY_CLOSEDIR, BY_PCLOSE, BY_SYSCALL } closer_t;
typedef enum { AS_PIPE, AS_SOCKET, AS_EVENTFD, AS_FILE, NREUSE } reuse_t;

typedef struct closing {
    closer_t how;
    FILE *f;
    DIR *d;
    int fd;
} closing_t;

/* Opens what `how` closes, on the lowest free number. */
static int closing_open(closing_t *c, closer_t how)
{
    *c = (closing_t){how, NULL, NULL, -1};
    switch (how) {
    case BY_FCLOSE:
        c->f = fopen("/dev/null", "r");
        return c->fd = c->f ? fileno(c->f) : -1;
    case BY_CLOSEDIR:
        c->d = opendir("/");
        return c->fd = c->d ? dirfd(c->d) : -1;
    case BY_PCLOSE:
        c->f = popen("true", "r");
        return c->fd = c->f ? fileno(c->f) : -1;
    case BY_SYSCALL:
        return c->fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    return -1;
}

static void closing_close(closing_t *c)
{
    switch (c->how) {
    case BY_FCLOSE:
        assert_int_equal(fclose(c->f), 0);
        break;
    case BY_CLOSEDIR:
        assert_int_equal(closedir(c->d), 0);
        break;
    case BY_PCLOSE:
        assert_true(pclose(c->f) != -1);
        break;
    case BY_SYSCALL:
        assert_int_equal(syscall(SYS_close, c->fd), 0);
        break;
    }
}

typedef struct reused {
    reuse_t as;
    int fd, peer; /* the number, and the far end (a pipe's writer, the socket's peer) */
    ssize_t got;
    int err;
    char buf[64];
} reused_t;

/* The read the case checks: read() on a pipe, eventfd or file, recv() on a blocking socket
 * whose input comes only after the call started. */
static void reused_read(reused_t *r)
{
    errno = 0;
    memset(r->buf, 0, sizeof r->buf);
    r->got = r->as == AS_SOCKET ? recv(r->fd, r->buf, sizeof r->buf, 0)
                                : read(r->fd, r->buf, r->as == AS_EVENTFD ? 8 : sizeof r->buf);
    r->err = errno;
}

static void reused_read_co(void *p)
{
    reused_read(p);
}

static void socket_input_later(void *p)
{
    reused_t *r = p;
    assert_int_equal(write(r->peer, "late", 4), 4);
}

static void *reused_read_thread(void *p)
{
    reused_read(p);
    return NULL;
}

/* Makes the reused file readable (again) and checks one read of it in `in_coroutine`. */
static void check_reused(reused_t *r, bool in_coroutine)
{
    uint64_t one = 1;
    switch (r->as) {
    case AS_PIPE:
        assert_int_equal(write(r->peer, "hi", 2), 2);
        break;
    case AS_EVENTFD:
        assert_int_equal(write(r->fd, &one, 8), 8);
        break;
    case AS_FILE:
        assert_int_equal(lseek(r->fd, 0, SEEK_SET), 0);
        break;
    case AS_SOCKET:
        break; /* written after the read started (a coroutine), or for the thread */
    default:
        break;
    }
    if (in_coroutine) {
        weft_co_t *co = weft_test_spawn(reused_read_co, r);
        weft_co_t *w = r->as == AS_SOCKET ? weft_test_spawn(socket_input_later, r) : NULL;
        weft_test_co_join(co);
        if (w) weft_test_co_join(w);
    } else {
        if (r->as == AS_SOCKET) socket_input_later(r);
        weft_test_join(weft_test_start(reused_read_thread, r));
    }
    static const char *const want[NREUSE] = {"hi", "late", "\1", "abc"};
    size_t len = r->as == AS_EVENTFD ? 8 : strlen(want[r->as]);
    if (r->got != (ssize_t)len)
        fail_msg("%s, reused as %d: got %zd (errno %s)", in_coroutine ? "coroutine" : "thread",
                 (int)r->as, r->got, strerror(r->err));
    assert_memory_equal(r->buf, want[r->as], r->as == AS_EVENTFD ? 1 : len);
}

static void stale_cache_case(closer_t how, reuse_t as)
{
    /* What the reuse needs, made first so that the closed number is the lowest free one. */
    char path[] = "/tmp/weft-hook-XXXXXX";
    int t[2] = {-1, -1};
    if (as == AS_FILE) {
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "abc", 3), 3);
        assert_int_equal(close(fd), 0);
    }
    if (as == AS_SOCKET) assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, t), 0);

    closing_t c;
    int n = closing_open(&c, how);
    assert_true(n >= 0);
    /* A socket takes the number behind the closer's back (dup3 as a raw system call), and weft
     * learns about it through patched calls: for a socket reuse, that it is non-blocking; for
     * the other files, that it is blocking and its last read drained it. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(syscall(SYS_dup3, sv[0], n, O_CLOEXEC), n);
    assert_int_equal(close(sv[0]), 0);
    int fl = fcntl(n, F_GETFL);
    if (as == AS_SOCKET) {
        assert_int_equal(fcntl(n, F_SETFL, fl | O_NONBLOCK), 0);
    } else {
        assert_int_equal(fcntl(n, F_SETFL, fl & ~O_NONBLOCK), 0);
        char buf[64];
        assert_int_equal(write(sv[1], "x", 1), 1);
        assert_int_equal(read(n, buf, sizeof buf), 1); /* less than asked: drained */
    }
    closing_close(&c); /* the socket on n goes, unseen */
    assert_int_equal(close(sv[1]), 0);

    reused_t r = {.as = as, .fd = -1, .peer = -1};
    int p[2];
    switch (as) {
    case AS_PIPE:
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        r.fd = p[0];
        r.peer = p[1];
        break;
    case AS_SOCKET:
        r.fd = fcntl(t[0], F_DUPFD_CLOEXEC, 0); /* a blocking socket */
        r.peer = t[1];
        assert_int_equal(close(t[0]), 0);
        break;
    case AS_EVENTFD:
        r.fd = eventfd(0, EFD_CLOEXEC);
        break;
    case AS_FILE:
        r.fd = open(path, O_RDONLY | O_CLOEXEC);
        break;
    default:
        break;
    }
    assert_int_equal(r.fd, n); /* the number is reused */
    check_reused(&r, true);
    check_reused(&r, false);
    close(r.fd);
    if (r.peer >= 0) close(r.peer);
    if (as == AS_FILE) unlink(path);
}

static void stale_cache_cases(closer_t how)
{
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, NULL),
                     0); /* a hub: the calls here are intercepted */
    for (reuse_t as = 0; as < NREUSE; as++) stale_cache_case(how, as);
}

static void reused_number_after_fclose(void **state)
{
    (void)state;
    stale_cache_cases(BY_FCLOSE);
}

static void reused_number_after_closedir(void **state)
{
    (void)state;
    stale_cache_cases(BY_CLOSEDIR);
}

static void reused_number_after_pclose(void **state)
{
    (void)state;
    stale_cache_cases(BY_PCLOSE);
}

static void reused_number_after_raw_close(void **state)
{
    (void)state;
    stale_cache_cases(BY_SYSCALL);
}

/* ---- a watched number closed by stdio -------------------------------------------------- */

typedef struct waited {
    int fd;      /* read from by the coroutine */
    int peer;    /* written to by the other (-1: the fd gets input by itself) */
    ssize_t got; /* what the read returned */
} waited_t;

static void waited_read(void *p)
{
    waited_t *w = p;
    char c[8];
    w->got = read(w->fd, c, sizeof c);
}

static void waited_input(void *p)
{
    waited_t *w = p;
    assert_int_equal(weft_time_sleep(0.01), 0);
    assert_int_equal(write(w->peer, "x", 1), 1);
}

/* A coroutine reads fd (it parks: the poller watches fd) and gets input; returns when it did,
 * failing the case if that took 10 s (a poller that does not watch the fd it has would wait
 * forever). */
static void read_parks_then_wakes(int fd, int peer)
{
    waited_t w = {fd, peer, -2};
    weft_co_t *r = weft_test_spawn(waited_read, &w);
    weft_co_t *in = peer >= 0 ? weft_test_spawn(waited_input, &w) : NULL;
    int rc = weft_co_join(r, 10);
    if (rc) {
        weft_co_cancel(r);
        weft_test_co_join(r);
        fail_msg("the read of fd %d did not wake: %s", fd, weft_error_name(rc));
    }
    weft_co_release(r);
    if (in) weft_test_co_join(in);
    assert_true(w.got > 0);
}

typedef enum { BY_STDIO_FCLOSE, BY_STDIO_PCLOSE } stdio_closer_t;

/* A number a coroutine waited on is closed by fclose or pclose (libc's own close inside them,
 * which the patch cannot catch) and a pipe takes it: a read of the pipe wakes when its input
 * comes (gevent: a socket closed through its file object). With epoll, the closed file's
 * registration went with it while weft still believed the number watched: the read hung. */
static void watched_number_closed_by(stdio_closer_t how)
{
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, NULL), 0);
    for (int round = 0; round < 3; round++) {
        int sv[2] = {-1, -1}, n;
        FILE *f;
        if (how == BY_STDIO_FCLOSE) {
            assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
            f = fdopen(sv[0], "r+");
            assert_non_null(f);
            n = sv[0];
            read_parks_then_wakes(n, sv[1]);
        } else {
            f = popen("sleep 0.02; echo x", "re");
            assert_non_null(f);
            n = fileno(f);
            read_parks_then_wakes(n, -1);
        }
        assert_int_equal(how == BY_STDIO_FCLOSE ? fclose(f) : pclose(f), 0);
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(p[0], n); /* the number is reused */
        read_parks_then_wakes(p[0], p[1]);
        close(p[0]);
        close(p[1]);
        if (sv[1] >= 0) close(sv[1]);
    }
}

static void watched_number_closed_by_fclose(void **state)
{
    (void)state;
    watched_number_closed_by(BY_STDIO_FCLOSE);
}

static void watched_number_closed_by_pclose(void **state)
{
    (void)state;
    watched_number_closed_by(BY_STDIO_PCLOSE);
}

/* ---- poll, select, sleeps ------------------------------------------------------------------ */

static void write_second(void *p)
{
    int *fd = p;
    usleep(10000);
    assert_int_equal(write(fd[1], "!", 1), 1);
}

/* test__select.py: poll and select with a timeout park the coroutine; readiness of one fd
 * of several ends them; a timeout that passes returns 0. */
static void poll_and_select(void **state)
{
    (void)state;
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    weft_co_t *w = weft_test_spawn(write_second, b);
    struct pollfd fds[2] = {{a[0], POLLIN, 0}, {b[0], POLLIN, 0}};
    assert_int_equal(poll(fds, 2, 5000), 1);
    assert_int_equal(fds[0].revents, 0);
    assert_true(fds[1].revents & POLLIN);
    weft_test_co_join(w);
    char c;
    assert_int_equal(read(b[0], &c, 1), 1);
    assert_int_equal(poll(fds, 2, 20), 0); /* nothing: times out */
    w = weft_test_spawn(write_second, a);
    fd_set r;
    FD_ZERO(&r);
    FD_SET(a[0], &r);
    FD_SET(b[0], &r);
    struct timeval tv = {5, 0};
    int top = (a[0] > b[0] ? a[0] : b[0]) + 1;
    assert_int_equal(select(top, &r, NULL, NULL, &tv), 1);
    assert_true(FD_ISSET(a[0], &r));
    assert_false(FD_ISSET(b[0], &r));
    assert_true(tv.tv_sec < 5 || tv.tv_usec < 1000000);
    weft_test_co_join(w);
    int fds4[] = {a[0], a[1], b[0], b[1]};
    for (int i = 0; i < 4; i++) close(fds4[i]);
}

typedef struct sleeper {
    int rc, err;
    struct timespec rem;
} sleeper_t;

static void long_nap(void *p)
{
    sleeper_t *s = p;
    struct timespec req = {30, 0};
    s->rc = nanosleep(&req, &s->rem);
    s->err = errno;
}

/* sleep, usleep and nanosleep park the coroutine; a canceled nanosleep ends with EINTR and
 * the time left, as a signal would end it. */
static void sleeps(void **state)
{
    (void)state;
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(usleep(10000), 0);
    struct timespec req = {0, 10000000};
    assert_int_equal(nanosleep(&req, NULL), 0);
    assert_true(weft_time_monotonic_ns() - t0 >= 19000000);
    sleeper_t s = {0, 0, {0, 0}};
    weft_co_t *co = weft_test_spawn(long_nap, &s);
    assert_int_equal(weft_co_yield(), 0);
    weft_co_cancel(co);
    weft_test_co_join(co);
    assert_int_equal(s.rc, -1);
    assert_int_equal(s.err, EINTR);
    assert_true(s.rem.tv_sec >= 28);
    req.tv_nsec = 2000000000L;
    assert_int_equal(nanosleep(&req, NULL), -1);
    assert_int_equal(errno, EINVAL);
}

/* Outside coroutines (a thread without a hub) everything is libc's, patched or not. */
static void *plain_thread(void *p)
{
    (void)p;
    int fd[2];
    if (pipe(fd)) return (void *)1;
    char c = 0;
    struct pollfd pfd = {fd[0], POLLIN, 0};
    int ok = write(fd[1], "p", 1) == 1 && poll(&pfd, 1, 1000) == 1 && read(fd[0], &c, 1) == 1 &&
             c == 'p' && usleep(1000) == 0;
    close(fd[0]);
    close(fd[1]);
    return ok ? NULL : (void *)1;
}

static void outside_coroutines(void **state)
{
    (void)state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, plain_thread, NULL), 0);
    void *r;
    assert_int_equal(pthread_join(t, &r), 0);
    assert_null(r);
}

/* ---- poll keeps its deadline; connect keeps the file's mode -----------------------------------
 */

typedef struct herd {
    int a[2], b[2]; /* a: polled; b: wakes the consumer first */
    int rc;
    short revents;
    int64_t took;
} herd_t;

static void poll_a(void *p)
{
    herd_t *h = p;
    struct pollfd pfd = {h->a[0], POLLIN, 0};
    int64_t t0 = weft_time_monotonic_ns();
    h->rc = poll(&pfd, 1, 5000);
    h->took = weft_time_monotonic_ns() - t0;
    h->revents = pfd.revents;
}

/* Woken by b in the same report of the poller as the poller of a, and ahead of it: takes a's
 * input before the poll looks, then sends more after a while. */
static void consume_a(void *p)
{
    herd_t *h = p;
    char c;
    assert_int_equal(read(h->b[0], &c, 1), 1);
    /* A raw read: the patched one of a pipe waits for the poller first, which would let the
     * poll look before the input is gone. */
    assert_int_equal(syscall(SYS_read, h->a[0], &c, 1), 1);
    assert_int_equal(usleep(50000), 0);
    assert_int_equal(write(h->a[1], "2", 1), 1);
}

/* select.poll's contract (CPython test_poll): a poll with a timeout returns 0 only when the
 * timeout has passed. Another coroutine takes the input that woke it: the poll must go back to
 * waiting (and see the next input), not return 0 early. */
static void poll_woken_for_nothing_keeps_waiting(void **state)
{
    (void)state;
    herd_t h = {{-1, -1}, {-1, -1}, -1, 0, 0};
    assert_int_equal(pipe2(h.a, O_CLOEXEC), 0);
    assert_int_equal(pipe2(h.b, O_CLOEXEC), 0);
    /* Writers that never park, so both inputs arrive before the hub looks. */
    assert_int_equal(fcntl(h.a[1], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(h.b[1], F_SETFL, O_NONBLOCK), 0);
    weft_co_t *consumer = weft_test_spawn(consume_a, &h), *poller = weft_test_spawn(poll_a, &h);
    assert_int_equal(weft_co_yield(), 0); /* both park: on b, and on a */
    assert_int_equal(write(h.b[1], "1", 1), 1);
    assert_int_equal(write(h.a[1], "1", 1), 1);
    weft_test_co_join(consumer);
    weft_test_co_join(poller);
    if (h.rc != 1)
        fail_msg("poll returned %d after %.1f ms (want 1: the second input)", h.rc,
                 (double)h.took / 1e6);
    assert_true(h.revents & POLLIN);
    for (int i = 0; i < 2; i++) {
        close(h.a[i]);
        close(h.b[i]);
    }
}

/* poll's "normal data" bits (POLLRDNORM, POLLWRNORM: what select-style code built on poll asks
 * for) wake a parked poll as POLLIN does. */
static void poll_normal_data_bits_wake(void **state)
{
    (void)state;
    int fd[2];
    assert_int_equal(pipe2(fd, O_CLOEXEC), 0);
    weft_co_t *w = weft_test_spawn(write_second, fd); /* a byte after 10 ms */
    struct pollfd pfd = {fd[0], POLLRDNORM, 0};
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_true(weft_time_monotonic_ns() - t0 < 4000000000LL);
    assert_true(pfd.revents & POLLRDNORM);
    weft_test_co_join(w);
    close(fd[0]);
    close(fd[1]);
}

typedef struct connecting {
    struct sockaddr_un addr;
    socklen_t len;
    int fd, rc, err;
    bool done;
} connecting_t;

static void connect_co(void *p)
{
    connecting_t *c = p;
    errno = 0;
    c->rc = connect(c->fd, (struct sockaddr *)&c->addr, c->len);
    c->err = errno;
    c->done = true;
}

/* A listener whose backlog is full (one connection it never accepted, on *first), and in c a
 * fresh blocking socket to connect to it; the thread has a hub, so the calls are patched. */
static void full_listener(connecting_t *c, const char *tag, int *l, int *first)
{
    *c = (connecting_t){.addr = {.sun_family = AF_UNIX}};
    snprintf(c->addr.sun_path + 1, sizeof c->addr.sun_path - 1, "weft-hook-%s%d", tag,
             (int)getpid());
    c->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(c->addr.sun_path + 1));
    *l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(*l, (struct sockaddr *)&c->addr, c->len), 0);
    assert_int_equal(listen(*l, 0), 0);
    *first = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, NULL), 0);
    assert_int_equal(connect(*first, (struct sockaddr *)&c->addr, c->len), 0); /* fills it */
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

/* A listener whose backlog is full: a plain blocking connect parks the coroutine until the
 * listener accepts (libc's waits in the kernel). The fd's open file is shared — a dup'ed fd, a
 * forked child — and none of them sees O_NONBLOCK while the connect is under way. */
static void connect_parks_without_changing_the_mode(void **state)
{
    (void)state;
    connecting_t c;
    int l, first;
    full_listener(&c, "", &l, &first);
    int dup_fd = dup(c.fd);
    ticker_t t = {0};
    weft_co_t *tk = weft_test_spawn(tick, &t), *co = weft_test_spawn(connect_co, &c);
    assert_int_equal(weft_time_sleep(0.05), 0); /* the connect is under way; the ticker runs */
    bool early = c.done;
    int ticks = atomic_load(&t.ticks);
    bool dup_saw = fcntl(dup_fd, F_GETFL) & O_NONBLOCK;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(fcntl(c.fd, F_GETFL) & O_NONBLOCK ? 1 : 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    int a1 = accept(l, NULL, NULL); /* room again: the connect completes */
    weft_test_co_join(co);
    int a2 = c.rc == 0 ? accept(l, NULL, NULL) : -1;
    atomic_store(&t.stop, 1);
    weft_test_co_join(tk);
    if (early) fail_msg("connect returned %d (%s) at once", c.rc, strerror(c.err));
    if (c.rc != 0) fail_msg("connect returned %d (%s)", c.rc, strerror(c.err));
    assert_true(ticks >= 2);
    assert_false(dup_saw);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(a1 >= 0 && a2 >= 0);
    assert_false(fcntl(c.fd, F_GETFL) & O_NONBLOCK);
    int fds[] = {l, first, c.fd, dup_fd, a1, a2};
    for (int i = 0; i < 6; i++) close(fds[i]);
}

/* A canceled coroutine's connect fails with EINTR at once, as a signal would end libc's; the
 * connection goes on (POSIX) and completes once the listener has room, and nothing is left
 * behind (the leak guard: the helper's duplicate fd is closed, the helper leaves). */
static void connect_canceled_fails_with_eintr(void **state)
{
    (void)state;
    connecting_t c;
    int l, first;
    full_listener(&c, "c-", &l, &first);
    weft_co_t *co = weft_test_spawn(connect_co, &c);
    assert_int_equal(weft_time_sleep(0.02), 0);
    assert_false(c.done);
    weft_co_cancel(co);
    weft_test_co_join(co);
    assert_int_equal(c.rc, -1);
    assert_int_equal(c.err, EINTR);
    int a1 = accept(l, NULL, NULL), a2 = accept(l, NULL, NULL); /* the connection went on */
    assert_true(a1 >= 0 && a2 >= 0);
    int fds[] = {l, first, c.fd, a1, a2};
    for (int i = 0; i < 5; i++) close(fds[i]);
}

enum { WATCHED = 200 }; /* a fixed number: always a dup of the socket being connected */

typedef struct watch {
    _Atomic int stop, seen;
} watch_t;

static void *watch_mode(void *p)
{
    watch_t *w = p;
    while (!atomic_load(&w->stop)) {
        int fl = fcntl(WATCHED, F_GETFL);
        if (fl >= 0 && (fl & O_NONBLOCK)) atomic_fetch_add(&w->seen, 1);
    }
    return NULL;
}

/* Many TCP connects on loopback, each socket dup'ed onto a number another thread watches the
 * whole time (and, for some, a forked child): the mode is never seen non-blocking. */
static void connect_mode_never_seen_nonblocking(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    assert_int_equal(bind(lfd, (struct sockaddr *)&addr, len), 0);
    assert_int_equal(listen(lfd, 512), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&addr, &len), 0);
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, NULL), 0);
    watch_t w = {0};
    pthread_t t = weft_test_start(watch_mode, &w);
    int children_saw = 0;
    for (int i = 0; i < 300; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(dup2(fd, WATCHED), WATCHED);
        int ready[2] = {-1, -1}, stop[2] = {-1, -1};
        pid_t pid = -1;
        if (i % 30 == 0) { /* a child that watches its copy of the fd during this connect */
            assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
            assert_int_equal(pipe2(stop, O_CLOEXEC), 0);
            pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) { /* raw system calls: the child's thread still has the hub's copy */
                int seen = 0;
                struct pollfd pfd = {stop[0], POLLIN, 0};
                struct timespec zero = {0, 0};
                syscall(SYS_write, ready[1], "r", 1);
                while (syscall(SYS_ppoll, &pfd, 1, &zero, NULL, 0) == 0) {
                    int fl = (int)syscall(SYS_fcntl, fd, F_GETFL);
                    seen |= fl >= 0 && (fl & O_NONBLOCK);
                }
                _exit(seen);
            }
            char c;
            assert_int_equal(read(ready[0], &c, 1), 1); /* it is watching */
        }
        assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
        int a = accept(lfd, NULL, NULL);
        assert_true(a >= 0);
        if (pid > 0) {
            assert_int_equal(write(stop[1], "x", 1), 1);
            int status;
            assert_int_equal(waitpid(pid, &status, 0), pid);
            children_saw += WIFEXITED(status) ? WEXITSTATUS(status) : 1;
            int pipes[] = {ready[0], ready[1], stop[0], stop[1]};
            for (int k = 0; k < 4; k++) close(pipes[k]);
        }
        close(a);
        close(fd);
    }
    atomic_store(&w.stop, 1);
    weft_test_join(t);
    close(WATCHED);
    close(lfd);
    if (atomic_load(&w.seen) || children_saw)
        fail_msg("O_NONBLOCK seen %d times by a thread watching a dup, by %d forked children",
                 atomic_load(&w.seen), children_saw);
}

static int connect_to(const struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = connect(fd, (const struct sockaddr *)addr, sizeof *addr);
    close(fd);
    return rc;
}

static void connect_in_child(void *p)
{
    *(int *)p = connect_to(&server_addr);
}

/* After fork, the child's coroutines connect (and resolve) on helpers of its own: the parent's
 * helper threads do not exist in the child (the pool started before the fork is forgotten). */
static void connect_after_fork(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    server_addr =
        (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof server_addr;
    assert_int_equal(bind(lfd, (struct sockaddr *)&server_addr, len), 0);
    assert_int_equal(listen(lfd, 16), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&server_addr, &len), 0);
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, NULL), 0);
    assert_int_equal(connect_to(&server_addr), 0); /* the parent's helper pool is up */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20); /* a hang fails the case instead of stalling it */
        int rc = -1;
        weft_co_t *co;
        if (weft_co_spawn(connect_in_child, &rc, NULL, &co) || weft_co_join(co, 15)) _exit(2);
        _exit(rc == 0 ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the child's connect failed (status %#x)", status);
    for (int i = 0; i < 2; i++) close(accept(lfd, NULL, NULL));
    close(lfd);
}

/* ---- name resolution ------------------------------------------------------------------------ */

static void resolve(void *p)
{
    int *ok = p;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    /* A numeric host: a fresh machine may have no /etc/hosts; the call still goes to the
     * helper thread and back. */
    int rc = getaddrinfo("127.0.0.1", "80", &hints, &res);
    if (rc == 0 && res && res->ai_family == AF_INET) *ok = 1;
    if (res) freeaddrinfo(res);
}

/* test__socket_dns.py: getaddrinfo runs on a helper thread while the coroutine parks; ten
 * at once all succeed. */
static void getaddrinfo_off_the_hub(void **state)
{
    (void)state;
    int ok[10] = {0};
    weft_co_t *c[10];
    for (int i = 0; i < 10; i++) c[i] = weft_test_spawn(resolve, &ok[i]);
    assert_int_equal(weft_co_join_all(c, 10, 60), 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(ok[i], 1);
        weft_co_release(c[i]);
    }
}

/* ---- an unmodified third-party client library ----------------------------------------------- */

#ifdef WEFT_TEST_HIREDIS
static int redis_port;

static void redis_request(void *p)
{
    int *ok = p;
    redisContext *c = redisConnect("127.0.0.1", redis_port);
    if (!c || c->err) {
        if (c) redisFree(c);
        return;
    }
    /* An empty list: the server answers nil after 100 ms, without blocking its other
     * clients. hiredis's plain blocking write and read park this coroutine only. */
    redisReply *r = redisCommand(c, "BLPOP weft:nothing 0.1");
    if (r && r->type == REDIS_REPLY_NIL) *ok = 1;
    if (r) freeReplyObject(r);
    redisFree(c);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, len) || getsockname(fd, (struct sockaddr *)&a, &len))
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}
#endif

/* The proof: hiredis (Debian's libhiredis, unmodified, blocking API) against a real
 * redis-server the test starts: 200 coroutines on ONE thread each make a request the server
 * answers after 100 ms. Blocking, that is 20 s; patched, they overlap. */
static void hiredis_200_requests_one_thread(void **state)
{
    (void)state;
#ifndef WEFT_TEST_HIREDIS
    fail_msg("built without hiredis (libhiredis-dev): make deps installs it");
#else
    const char *server = "/usr/bin/redis-server";
    if (access(server, X_OK)) fail_msg("%s missing (redis-server): make deps installs it", server);
    redis_port = free_port();
    assert_true(redis_port > 0);
    char port[16];
    snprintf(port, sizeof port, "%d", redis_port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl(server, server, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
              "no", "--daemonize", "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    /* Wait (up to 10 s) until it accepts. */
    bool up = false;
    for (int i = 0; i < 1000 && !up; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)redis_port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        up = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (!up) usleep(10000);
    }
    enum { N = 200 };
    int ok[N] = {0};
    weft_co_t **c = calloc(N, sizeof *c);
    double t0 = weft_time_monotonic();
    for (int i = 0; i < N && up; i++) c[i] = weft_test_spawn(redis_request, &ok[i]);
    int rc = up ? weft_co_join_all(c, N, 60) : WEFT_EIO;
    double took = weft_time_monotonic() - t0;
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    assert_true(up);
    assert_int_equal(rc, 0);
    int good = 0;
    for (int i = 0; i < N; i++) {
        good += ok[i];
        weft_co_release(c[i]);
    }
    free(c);
    print_message("%d/%d hiredis requests of 100 ms in %.3f s on one thread\n", good, N, took);
    assert_int_equal(good, N);
    assert_true(took < (SANITIZED || RUNNING_ON_VALGRIND ? 15.0 : 1.0));
#endif
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(audit),
    WEFT_TEST(read_write_sleep),
    WEFT_TEST(big_write_completes),
    WEFT_TEST(user_nonblock_kept),
    WEFT_TEST(close_wakes_reader),
    WEFT_TEST(blocking_sockets),
    WEFT_TEST(rcvtimeo_kept),
    WEFT_TEST(drained_socket_reads),
    WEFT_TEST(short_reads_of_datagrams_and_peeks_leave_input),
    WEFT_TEST(reused_number_after_fclose),
    WEFT_TEST(reused_number_after_closedir),
    WEFT_TEST(reused_number_after_pclose),
    WEFT_TEST(reused_number_after_raw_close),
    WEFT_TEST(watched_number_closed_by_fclose),
    WEFT_TEST(watched_number_closed_by_pclose),
    WEFT_TEST(poll_and_select),
    WEFT_TEST(poll_woken_for_nothing_keeps_waiting),
    WEFT_TEST(poll_normal_data_bits_wake),
    WEFT_TEST(connect_parks_without_changing_the_mode),
    WEFT_TEST(connect_mode_never_seen_nonblocking),
    WEFT_TEST(connect_canceled_fails_with_eintr),
    WEFT_TEST(connect_after_fork),
    WEFT_TEST(sleeps),
    WEFT_TEST(outside_coroutines),
    WEFT_TEST(getaddrinfo_off_the_hub),
    WEFT_TEST(hiredis_200_requests_one_thread),
};

WEFT_TEST_MAIN(cases)
