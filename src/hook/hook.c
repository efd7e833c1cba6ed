/*
 * hook.c — the monkey patch: libc's blocking calls, redefined. Each definition first asks
 * whether to intercept (patched, and the caller's thread has a hub: a coroutine or a root
 * context with coroutines); if not, it calls libc's function at once (a TLS load, a relaxed
 * load and an indirect call). Otherwise it does the call without blocking and, where libc's
 * would block, parks through the hub (weft__io_wait) and tries again. weft/hook.h states the
 * semantics kept. What decides a result (an fd's mode, its socket timeouts) is asked of the
 * kernel in the call; the only thing kept between calls is a per-number hint about cost (see
 * "what the kernel says" below). Calls with no non-blocking form that keeps libc's semantics
 * (getaddrinfo, a stream socket's connect) run on helper threads while the coroutine parks.
 *
 * libc's functions are found with dlsym(RTLD_NEXT) on first use, and weft_monkey_patch refuses
 * (WEFT_ENOTSUP) while one of them cannot be found. Nothing stands in for one dlsym cannot
 * find: every definition here, patched or not, calls libc's through what dlsym returned.
 */
#include "../io/io_internal.h"
#include "weft/hook.h"
#include "weft/queue.h"
#include "weft/sync.h"
#include "weft/thread.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define HOOK __attribute__((visibility("default")))

static _Atomic int patched;

/* ---- libc's functions ---------------------------------------------------------------------- */

#define LIBC_CALLS(X)                                                                              \
    X(read, ssize_t, (int, void *, size_t))                                                        \
    X(write, ssize_t, (int, const void *, size_t))                                                 \
    X(readv, ssize_t, (int, const struct iovec *, int))                                            \
    X(writev, ssize_t, (int, const struct iovec *, int))                                           \
    X(recv, ssize_t, (int, void *, size_t, int))                                                   \
    X(recvfrom, ssize_t, (int, void *, size_t, int, struct sockaddr *, socklen_t *))               \
    X(recvmsg, ssize_t, (int, struct msghdr *, int))                                               \
    X(send, ssize_t, (int, const void *, size_t, int))                                             \
    X(sendto, ssize_t, (int, const void *, size_t, int, const struct sockaddr *, socklen_t))       \
    X(sendmsg, ssize_t, (int, const struct msghdr *, int))                                         \
    X(accept, int, (int, struct sockaddr *, socklen_t *))                                          \
    X(accept4, int, (int, struct sockaddr *, socklen_t *, int))                                    \
    X(connect, int, (int, const struct sockaddr *, socklen_t))                                     \
    X(poll, int, (struct pollfd *, nfds_t, int))                                                   \
    X(select, int, (int, fd_set *, fd_set *, fd_set *, struct timeval *))                          \
    X(sleep, unsigned, (unsigned))                                                                 \
    X(usleep, int, (useconds_t))                                                                   \
    X(nanosleep, int, (const struct timespec *, struct timespec *))                                \
    X(close, int, (int))                                                                           \
    X(dup2, int, (int, int))                                                                       \
    X(dup3, int, (int, int, int))                                                                  \
    X(fclose, int, (FILE *))                                                                       \
    X(pclose, int, (FILE *))                                                                       \
    X(getaddrinfo, int, (const char *, const char *, const struct addrinfo *, struct addrinfo **)) \
    X(socket, int, (int, int, int))                                                                \
    X(socketpair, int, (int, int, int, int *))

static void *lookup(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

/* libc_<name>: libc's function, looked up once (NULL only if dlsym cannot find it); LIBC(name)
 * is it. (A racing first lookup stores the same value twice.) */
#define DECLARE(name, ret, args)                                                                   \
    static ret(*_Atomic libc_##name) args;                                                         \
    static ret(*get_##name(void)) args                                                             \
    {                                                                                              \
        ret(*f) args = atomic_load_explicit(&libc_##name, memory_order_relaxed);                   \
        if (!f) {                                                                                  \
            f = (ret(*) args)lookup(#name);                                                        \
            atomic_store_explicit(&libc_##name, f, memory_order_relaxed);                          \
        }                                                                                          \
        return f;                                                                                  \
    }
LIBC_CALLS(DECLARE)
#undef DECLARE

#define LIBC(name) (get_##name())

/* Whether this call is to be intercepted. */
static inline bool active(void)
{
    return weft__tls_hub != NULL && atomic_load_explicit(&patched, memory_order_relaxed);
}

/* A weft code as errno and -1 (a timeout as EAGAIN, as SO_RCVTIMEO reports it; a cancel as
 * EINTR, as a signal would end the call). */
static long fail(int code)
{
    /* weft's own codes (WEFT_EBROKEN ... WEFT_ESYSTEM, below -4000) have no errno: EIO. */
    errno = code == WEFT_ETIMEDOUT   ? EAGAIN
            : code == WEFT_ECANCELED ? EINTR
            : code <= -4000          ? EIO
                                     : -code;
    return -1;
}

static bool user_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK);
}

/* ---- what the kernel says, and the one hint weft keeps ---------------------------------------
 * The mode (O_NONBLOCK) and the timeouts (SO_RCVTIMEO, SO_SNDTIMEO) that decide whether a call
 * returns EAGAIN, parks, or gives up when, are asked of the kernel in the call that needs them,
 * once, and only on the way to parking: they belong to the open file description and the
 * socket, which dup'ed fds and forked children share and may change, and a number can be
 * closed and reused where weft cannot see it (fclose, closedir, pclose, glibc's own closes,
 * syscall(SYS_close)). Nothing weft remembers can change what a call returns.
 *
 * What weft does remember, per fd number below HINT_FDS: that the last read of a socket on it
 * took less than it asked (the socket is likely drained). The next blocking read then waits
 * for the poller before trying: in a request/response exchange the try would only say EAGAIN.
 * It is a hint about cost, never about results: it is followed only once the kernel has said,
 * in the same call, that the fd is an open blocking socket (and given its SO_RCVTIMEO), and a
 * wait on such a socket ends exactly when a blocking read of it would (readable, EOF, error,
 * or the timeout). A stale hint therefore costs at most a trip through the poller. */
enum { HINT_FDS = 65536 };
static _Atomic uint8_t drained[HINT_FDS];

static void hint_clear(int fd)
{
    /* Relaxed: a hint; a racing reader that sees the old value pays one poller trip. */
    if (fd >= 0 && fd < HINT_FDS && atomic_load_explicit(&drained[fd], memory_order_relaxed))
        atomic_store_explicit(&drained[fd], 0, memory_order_relaxed);
}

/* Notes whether a read of n bytes that returned r drained the socket; stored only when it
 * changes, so readers of neighbouring fds on other threads do not fight over the line. */
static void note_read(int fd, ssize_t r, size_t n)
{
    if (fd < 0 || fd >= HINT_FDS || r < 0) return;
    uint8_t now = (size_t)r < n;
    if (atomic_load_explicit(&drained[fd], memory_order_relaxed) != now)
        atomic_store_explicit(&drained[fd], now, memory_order_relaxed);
}

/* Not with a poller that reports edges (io_uring's multishot polls): there a wait that does
 * not follow an EAGAIN makes the poller look at the fd (a request of its own), which costs
 * more than the try, and a short read is no proof of a drained socket (a datagram socket, a
 * peek). */
static bool wait_first(int fd, int flags)
{
    return !(flags & MSG_DONTWAIT) && fd >= 0 && fd < HINT_FDS &&
           atomic_load_explicit(&drained[fd], memory_order_relaxed) && !weft__io_edge();
}

/* The kernel's answer for a socket call about to wait: 1 when fd's open file is in blocking
 * mode, with *deadline the one `opt` (SO_RCVTIMEO or SO_SNDTIMEO) sets for a call starting now
 * (WEFT_NO_DEADLINE when unset); 0 when it is non-blocking (the user's EAGAIN); -1 with errno
 * when fd is no open socket. */
static int blocking_socket(int fd, int opt, int64_t *deadline)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return -1;
    if (fl & O_NONBLOCK) return 0;
    struct timeval tv = {0, 0};
    socklen_t len = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len) < 0) return -1;
    /* unset (0), or beyond any deadline weft can hold: no deadline */
    *deadline = tv.tv_sec == 0 && tv.tv_usec == 0
                    ? WEFT_NO_DEADLINE
                    : weft__deadline_after(tv.tv_sec, (int64_t)tv.tv_usec * 1000);
    return 1;
}

/* Waits for fd; 0 when ready (or not pollable: a regular file is always ready), else -1 with
 * errno. after_eagain: the caller's own try has just found fd not ready (EAGAIN), with nothing
 * run since (weft__io_wait_after_eagain). */
static int await(int fd, int events, int64_t deadline, bool after_eagain)
{
    int rc = after_eagain ? weft__io_wait_after_eagain(fd, events, deadline)
                          : weft__io_wait(fd, events, deadline);
    if (rc > 0 || rc == WEFT_EINVAL || rc == WEFT_EPERM) return 0;
    return (int)fail(rc);
}

/* ---- reading ------------------------------------------------------------------------------- */

typedef ssize_t (*attempt_fn)(int fd, void *ctx, int flags);

/* Socket input: try with MSG_DONTWAIT; on EAGAIN wait for input (unless the user wants
 * EAGAIN), within SO_RCVTIMEO. Returns what the blocking call would have (ENOTSOCK, before any
 * wait, when fd is no socket). */
static ssize_t sock_in(int fd, attempt_fn attempt, void *ctx, int flags)
{
    int64_t deadline = WEFT_NO_DEADLINE;
    bool asked = false; /* deadline holds the kernel's answer */
    if (wait_first(fd, flags)) {
        int saved = errno;
        if (blocking_socket(fd, SO_RCVTIMEO, &deadline) == 1) {
            asked = true;
            if (await(fd, WEFT_READ, deadline, false)) return -1;
        } else {
            errno = saved; /* not a blocking socket now: the try below answers */
        }
    }
    for (;;) {
        ssize_t r = attempt(fd, ctx, flags | MSG_DONTWAIT);
        if (r >= 0 || errno != EAGAIN || (flags & MSG_DONTWAIT)) return r;
        if (!asked) {
            int b = blocking_socket(fd, SO_RCVTIMEO, &deadline);
            if (b <= 0) {
                if (b == 0) errno = EAGAIN; /* the user's non-blocking socket */
                return -1;
            }
            asked = true;
        }
        if (await(fd, WEFT_READ, deadline, true)) return -1;
    }
}

typedef struct buf_ctx {
    void *buf;
    size_t n;
    struct sockaddr *addr;
    socklen_t *alen;
} buf_ctx_t;

static ssize_t try_recvfrom(int fd, void *ctx, int flags)
{
    buf_ctx_t *c = ctx;
    ssize_t r = LIBC(recvfrom)(fd, c->buf, c->n, flags, c->addr, c->alen);
    note_read(fd, r, c->n);
    return r;
}

static ssize_t try_recvmsg(int fd, void *ctx, int flags)
{
    return LIBC(recvmsg)(fd, ctx, flags);
}

/* Non-socket input (pipe, tty, file): wait until readable, then read. */
static bool other_ready(int fd, int events)
{
    if (user_nonblock(fd)) return true; /* the user's EAGAIN */
    return await(fd, events, WEFT_NO_DEADLINE, false) == 0;
}

HOOK ssize_t read(int fd, void *buf, size_t n)
{
    if (!active()) return LIBC(read)(fd, buf, n);
    buf_ctx_t c = {buf, n, NULL, NULL};
    int saved = errno;
    ssize_t r = sock_in(fd, try_recvfrom, &c, 0);
    if (r >= 0 || errno != ENOTSOCK) return r;
    errno = saved;
    return other_ready(fd, WEFT_READ) ? LIBC(read)(fd, buf, n) : -1;
}

HOOK ssize_t readv(int fd, const struct iovec *iov, int n)
{
    if (!active()) return LIBC(readv)(fd, iov, n);
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)(n < 0 ? 0 : n)};
    int saved = errno;
    ssize_t r = sock_in(fd, try_recvmsg, &m, 0);
    if (r >= 0 || errno != ENOTSOCK) return r;
    errno = saved;
    return other_ready(fd, WEFT_READ) ? LIBC(readv)(fd, iov, n) : -1;
}

HOOK ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    if (!active()) return LIBC(recv)(fd, buf, n, flags);
    buf_ctx_t c = {buf, n, NULL, NULL};
    return sock_in(fd, try_recvfrom, &c, flags);
}

HOOK ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                      socklen_t *alen)
{
    if (!active()) return LIBC(recvfrom)(fd, buf, n, flags, addr, alen);
    buf_ctx_t c = {buf, n, addr, alen};
    return sock_in(fd, try_recvfrom, &c, flags);
}

HOOK ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
    if (!active()) return LIBC(recvmsg)(fd, m, flags);
    return sock_in(fd, try_recvmsg, m, flags);
}

/* ---- writing ------------------------------------------------------------------------------- */

/* Socket output: as a blocking send, everything goes (or an error after nothing went; after a
 * part, the part), waiting for room within SO_SNDTIMEO. The message's iovecs are advanced as
 * parts go (a private copy). */
static ssize_t sock_out(int fd, struct msghdr *m, int flags, const struct sockaddr *to,
                        socklen_t tolen)
{
    if (flags & MSG_DONTWAIT) return LIBC(sendmsg)(fd, m, flags);
    struct iovec local[8], *iov = local;
    size_t n = m->msg_iovlen;
    if (n > 8 && !(iov = malloc(n * sizeof *iov))) return fail(WEFT_ENOMEM);
    memcpy(iov, m->msg_iov, n * sizeof *iov);
    struct msghdr cur = *m;
    cur.msg_iov = iov;
    if (to) {
        cur.msg_name = (void *)to;
        cur.msg_namelen = tolen;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += iov[i].iov_len;
    size_t sent = 0;
    int64_t deadline = WEFT_NO_DEADLINE;
    bool asked = false; /* deadline holds the kernel's answer */
    ssize_t result;
    for (;;) {
        ssize_t r = LIBC(sendmsg)(fd, &cur, flags | MSG_DONTWAIT);
        if (r >= 0) {
            sent += (size_t)r;
            if (sent >= total) {
                result = (ssize_t)sent;
                break;
            }
            /* Advance past what went. */
            size_t k = (size_t)r;
            while (cur.msg_iovlen && k >= cur.msg_iov[0].iov_len) {
                k -= cur.msg_iov[0].iov_len;
                cur.msg_iov++;
                cur.msg_iovlen--;
            }
            if (cur.msg_iovlen) {
                cur.msg_iov[0].iov_base = (char *)cur.msg_iov[0].iov_base + k;
                cur.msg_iov[0].iov_len -= k;
            }
            continue;
        }
        int b = errno != EAGAIN ? -1 : asked ? 1 : blocking_socket(fd, SO_SNDTIMEO, &deadline);
        if (b <= 0) {
            if (b == 0) errno = EAGAIN; /* the user's non-blocking socket */
            result = sent ? (ssize_t)sent : -1;
            break;
        }
        asked = true;
        if (await(fd, WEFT_WRITE, deadline, true)) {
            result = sent ? (ssize_t)sent : -1;
            break;
        }
    }
    if (iov != local) {
        int e = errno;
        free(iov);
        errno = e;
    }
    return result;
}

/* Non-socket output: a regular file (or anything poll cannot watch) is written at once; a pipe
 * or a device in pieces the kernel takes without blocking once it says "writable" (PIPE_BUF).
 */
static ssize_t other_out(int fd, const void *buf, size_t n)
{
    struct stat st;
    if (user_nonblock(fd) || fstat(fd, &st) < 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return LIBC(write)(fd, buf, n);
    size_t done = 0;
    while (done < n || n == 0) {
        if (await(fd, WEFT_WRITE, WEFT_NO_DEADLINE, false)) return done ? (ssize_t)done : -1;
        size_t k = n - done < PIPE_BUF ? n - done : PIPE_BUF;
        ssize_t r = LIBC(write)(fd, (const char *)buf + done, k);
        if (r < 0) {
            if (errno == EAGAIN) continue; /* another writer took the room */
            return done ? (ssize_t)done : -1;
        }
        done += (size_t)r;
        if (n == 0) break;
    }
    return (ssize_t)done;
}

HOOK ssize_t write(int fd, const void *buf, size_t n)
{
    if (!active()) return LIBC(write)(fd, buf, n);
    int saved = errno;
    ssize_t r = LIBC(sendto)(fd, buf, n, MSG_DONTWAIT, NULL, 0);
    if (r >= 0 && (size_t)r == n) return r;
    if (r >= 0 || errno == EAGAIN) {
        size_t done = r > 0 ? (size_t)r : 0;
        struct iovec iov = {(char *)buf + done, n - done};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t more = sock_out(fd, &m, 0, NULL, 0);
        if (more < 0) return done ? (ssize_t)done : -1;
        return (ssize_t)done + more;
    }
    if (errno != ENOTSOCK) return r;
    errno = saved;
    return other_out(fd, buf, n);
}

HOOK ssize_t writev(int fd, const struct iovec *iov, int n)
{
    if (!active()) return LIBC(writev)(fd, iov, n);
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)(n < 0 ? 0 : n)};
    int saved = errno;
    int type;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0) return sock_out(fd, &m, 0, NULL, 0);
    if (errno != ENOTSOCK) return -1;
    errno = saved;
    if (n < 0 || n > IOV_MAX) return LIBC(writev)(fd, iov, n);
    ssize_t total = 0;
    for (int i = 0; i < n; i++) {
        ssize_t r = other_out(fd, iov[i].iov_base, iov[i].iov_len);
        if (r < 0) return total ? total : -1;
        total += r;
        if ((size_t)r < iov[i].iov_len) break;
    }
    return total;
}

HOOK ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    if (!active()) return LIBC(send)(fd, buf, n, flags);
    struct iovec iov = {(void *)buf, n};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    return sock_out(fd, &m, flags, NULL, 0);
}

HOOK ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
                    socklen_t tolen)
{
    if (!active()) return LIBC(sendto)(fd, buf, n, flags, to, tolen);
    struct iovec iov = {(void *)buf, n};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    return sock_out(fd, &m, flags, to, tolen);
}

HOOK ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
    if (!active()) return LIBC(sendmsg)(fd, m, flags);
    struct msghdr copy = *m;
    return sock_out(fd, &copy, flags, NULL, 0);
}

/* ---- blocking calls on helper threads
 * ------------------------------------------------------------ getaddrinfo and a stream socket's
 * connect have no non-blocking form that keeps libc's semantics, so they run, as libc's blocking
 * calls, on helper threads while the coroutine parks on the request's event. A request is shared by
 * the parked coroutine and the helper; whoever finishes with it last frees it (a canceled coroutine
 * leaves early). Helpers start on demand — one more whenever a request finds none idle, up to
 * HELPER_THREADS, since a connect may block for minutes (SYN retries) — and leave after a second
 * idle. */
typedef struct helper_req helper_req_t;
struct helper_req {
    _Atomic int refs;
    void (*run)(helper_req_t *q);     /* on the helper */
    void (*release)(helper_req_t *q); /* frees the request and what run left in it */
    weft_event_t done;
};

enum { HELPER_THREADS = 64 };
static weft__mutex_t helper_lock = WEFT__MUTEX_INIT; /* guards the three below */
static weft_queue_t *helper_queue;
static size_t helper_threads, helper_idle;

/* In a child after fork the helpers do not exist: forget the pool (its queue and the requests
 * in it are left behind; they belonged to the parent's threads), so the child starts its own.
 * The queues left behind stay reachable (a leak checker in the child would otherwise report
 * the parent's pool as lost; a few generations of forks are remembered). Registered once, by
 * the first request. */
static weft_queue_t *helper_queues_left[8];
static unsigned helper_queues_left_n;

static void helper_fork_child(void)
{
    helper_lock = (weft__mutex_t)WEFT__MUTEX_INIT;
    if (helper_queue) helper_queues_left[helper_queues_left_n++ % 8] = helper_queue;
    helper_queue = NULL;
    helper_threads = helper_idle = 0;
}

static const weft__fork_hooks_t fork_hooks = {.rank = WEFT__LAYER_HOOK, .child = helper_fork_child};
static pthread_once_t helper_atfork_once = PTHREAD_ONCE_INIT;

static void helper_atfork(void)
{
    weft__fork_register(&fork_hooks); /* fails only for lack of memory */
}

static void helper_put(helper_req_t *q)
{
    if (atomic_fetch_sub_explicit(&q->refs, 1, memory_order_acq_rel) != 1) return;
    weft_event_destroy(&q->done);
    q->release(q);
}

static void helper_main(void *arg)
{
    (void)arg;
    (void)weft__ctx_list_internal(); /* unlisted: the dump shows it as a plain thread */
    for (;;) {
        void *item;
        weft__mutex_lock(&helper_lock);
        helper_idle++;
        weft__mutex_unlock(&helper_lock);
        int rc = weft_queue_get(helper_queue, 1.0, &item);
        weft__mutex_lock(&helper_lock);
        helper_idle--;
        if (rc != 0) {
            /* Idle for a second: leave; the last one out frees the queue. (Requests are put
             * under helper_lock, so none can arrive between the look and the exit.) */
            bool idle = weft_queue_empty(helper_queue);
            if (idle && --helper_threads == 0) {
                weft_queue_release(helper_queue);
                helper_queue = NULL;
            }
            weft__mutex_unlock(&helper_lock);
            if (idle) return;
            continue;
        }
        weft__mutex_unlock(&helper_lock);
        helper_req_t *q = item;
        q->run(q);
        weft_event_set(&q->done);
        helper_put(q);
    }
}

/* Sets the request up (two references: the caller's and the helper's) and queues it, starting
 * the queue and one more helper as needed. Returns 0 or a weft code (the request is then the
 * caller's alone, not initialised: free it directly). helper_lock is never held across a park
 * (a thread start parks a coroutine, and the next coroutine of the hub may come here). */
static int helper_call(helper_req_t *q, void (*run)(helper_req_t *),
                       void (*release)(helper_req_t *))
{
    q->run = run;
    q->release = release;
    pthread_once(&helper_atfork_once, helper_atfork);
    int rc = 0;
    weft__mutex_lock(&helper_lock);
    if (!helper_queue) rc = weft_queue_create(WEFT_QUEUE_FIFO, 0, &helper_queue);
    bool more =
        !rc && helper_threads < HELPER_THREADS && helper_idle <= weft_queue_qsize(helper_queue);
    if (more) helper_threads++; /* reserved; given back if the start fails */
    weft__mutex_unlock(&helper_lock);
    if (rc) return rc;
    if (more) {
        weft_thread_t *t;
        weft_thread_opts_t o = {.name = "weft-helper", .daemon = true};
        if (weft_thread_start(helper_main, NULL, &o, &t) == 0) {
            weft_thread_release(t);
        } else {
            weft__mutex_lock(&helper_lock);
            helper_threads--;
            weft__mutex_unlock(&helper_lock);
        }
    }
    atomic_init(&q->refs, 2);
    weft_event_init(&q->done);
    weft__mutex_lock(&helper_lock);
    rc = helper_threads ? weft_queue_put_nowait(helper_queue, q) : WEFT_EAGAIN;
    weft__mutex_unlock(&helper_lock);
    if (rc) weft_event_destroy(&q->done);
    return rc;
}

/* ---- connections ----------------------------------------------------------------------------- */

static int accept_common(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int64_t deadline = WEFT_NO_DEADLINE;
    bool asked = false; /* the listener is blocking; deadline holds its SO_RCVTIMEO */
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (LIBC(poll)(&pfd, 1, 0) > 0 ||
            (!asked && blocking_socket(fd, SO_RCVTIMEO, &deadline) != 1)) {
            /* Ready, or not a blocking listener: the kernel's accept answers (at once). */
            int c = LIBC(accept4)(fd, addr, len, flags);
            hint_clear(c);
            return c;
        }
        asked = true;
        if (await(fd, WEFT_READ, deadline, true)) return -1; /* the poll found none */
    }
}

HOOK int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    if (!active()) return LIBC(accept)(fd, addr, len);
    return accept_common(fd, addr, len, 0);
}

HOOK int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    if (!active()) return LIBC(accept4)(fd, addr, len, flags);
    return accept_common(fd, addr, len, flags);
}

/* A connection request run on a helper thread: the kernel's own blocking connect, on a dup of
 * the caller's fd (the same open file, so the same socket; and a number of its own, which the
 * caller closing and reusing its fd meanwhile cannot redirect). */
typedef struct connect_req {
    helper_req_t base;
    int fd;
    struct sockaddr_storage addr;
    socklen_t len;
    int rc, err;
} connect_req_t;

static void connect_run(helper_req_t *h)
{
    connect_req_t *q = (connect_req_t *)h;
    /* Not a coroutine here: the call goes straight to libc. */
    q->rc = LIBC(connect)(q->fd, (struct sockaddr *)&q->addr, q->len);
    q->err = errno;
    LIBC(close)(q->fd);
    q->fd = -1;
}

static void connect_free(helper_req_t *h)
{
    connect_req_t *q = (connect_req_t *)h;
    if (q->fd >= 0) LIBC(close)(q->fd);
    free(q);
}

/* A blocking connect on a stream socket waits for the handshake. Making the socket
 * non-blocking for the call would change the mode of an open file that dup'ed fds and forked
 * children share (they would see O_NONBLOCK during the call); instead the kernel's blocking
 * connect runs on a helper thread while the coroutine parks, so every semantic — SO_SNDTIMEO,
 * the errors, an AF_UNIX listener whose backlog is full — is the kernel's. A datagram connect
 * never blocks, and a non-blocking socket's is the user's: both go straight to libc. */
HOOK int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (!active()) return LIBC(connect)(fd, addr, len);
    int fl = fcntl(fd, F_GETFL), type = 0;
    socklen_t tlen = sizeof type;
    if (fl < 0 || (fl & O_NONBLOCK) || !addr || len > sizeof(struct sockaddr_storage) ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 ||
        (type != SOCK_STREAM && type != SOCK_SEQPACKET))
        return LIBC(connect)(fd, addr, len);
    connect_req_t *q = calloc(1, sizeof *q);
    if (q) {
        q->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        memcpy(&q->addr, addr, len);
        q->len = len;
    }
    if (!q || q->fd < 0 || helper_call(&q->base, connect_run, connect_free)) {
        /* No helper (out of memory or fds): blocking this thread still gives the right answer. */
        if (q) connect_free(&q->base);
        return LIBC(connect)(fd, addr, len);
    }
    int rc = weft_event_wait(&q->base.done, WEFT_FOREVER);
    if (rc) { /* canceled: as a signal would, EINTR; the connection goes on (POSIX) */
        helper_put(&q->base);
        errno = EINTR;
        return -1;
    }
    rc = q->rc;
    if (rc) errno = q->err;
    helper_put(&q->base);
    return rc;
}

/* ---- waiting on many fds ------------------------------------------------------------------- */

/* The events of poll(2) a private epoll set can watch for (Linux gives poll's bits and epoll's
 * the same values): all of them, the normal and priority data bits included. */
#define POLL_BITS                                                                                  \
    (EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND |       \
     EPOLLRDHUP)

/* poll(2) that parks: look first; if nothing is ready, gather the fds in a private epoll set,
 * wait on that one fd through the hub, and look again (and wait again while nothing is). */

static int poll_until(struct pollfd *fds, nfds_t n, int64_t deadline)
{
    int r = LIBC(poll)(fds, n, 0);
    if (r != 0 || deadline <= weft_time_monotonic_ns()) return r;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -1;
    for (nfds_t i = 0; i < n; i++) {
        if (fds[i].fd < 0) continue;
        struct epoll_event ev = {.events = (uint32_t)fds[i].events & POLL_BITS,
                                 .data.fd = fds[i].fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i].fd, &ev) < 0 && errno == EEXIST) {
            /* The same fd twice: one registration with both interests. */
            for (nfds_t j = 0; j < i; j++)
                if (fds[j].fd == fds[i].fd) ev.events |= (uint32_t)fds[j].events & POLL_BITS;
            epoll_ctl(ep, EPOLL_CTL_MOD, fds[i].fd, &ev);
        }
    }
    /* Readiness the private set reports may be gone when poll looks (another coroutine took
     * the input): as the kernel's poll, wait again until something is ready or the deadline
     * has passed — 0 only then. */
    for (;;) {
        int rc = weft__io_wait(ep, WEFT_READ, deadline);
        if (rc < 0 && rc != WEFT_ETIMEDOUT) {
            r = (int)fail(rc);
            break;
        }
        r = LIBC(poll)(fds, n, 0);
        if (r != 0 || deadline <= weft_time_monotonic_ns()) break;
    }
    int e = errno;
    weft__io_forget(ep);
    LIBC(close)(ep);
    errno = e;
    return r;
}

HOOK int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    if (!active() || timeout == 0) return LIBC(poll)(fds, n, timeout);
    /* poll(2)'s rule, not weft's: any negative number of milliseconds is infinite. */
    int64_t deadline = timeout < 0
                           ? WEFT_NO_DEADLINE
                           : weft__deadline_after(timeout / 1000, timeout % 1000 * 1000000LL);
    return poll_until(fds, n, deadline);
}

HOOK int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    if (!active() || (tv && tv->tv_sec == 0 && tv->tv_usec == 0) || nfds < 0 || nfds > FD_SETSIZE)
        return LIBC(select)(nfds, r, w, e, tv);
    if (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)) {
        errno = EINVAL;
        return -1;
    }
    int64_t deadline =
        tv ? weft__deadline_after(tv->tv_sec, (int64_t)tv->tv_usec * 1000) : WEFT_NO_DEADLINE;
    struct pollfd local[64], *fds = local;
    nfds_t n = 0;
    for (int fd = 0; fd < nfds; fd++)
        if ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e))) n++;
    if (n > 64 && !(fds = malloc(n * sizeof *fds))) return (int)fail(WEFT_ENOMEM);
    n = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev =
            (short)((r && FD_ISSET(fd, r) ? POLLIN : 0) | (w && FD_ISSET(fd, w) ? POLLOUT : 0) |
                    (e && FD_ISSET(fd, e) ? POLLPRI : 0));
        if (ev) fds[n++] = (struct pollfd){fd, ev, 0};
    }
    int rc = poll_until(fds, n, deadline);
    int count = 0;
    if (rc >= 0) {
        if (r) FD_ZERO(r);
        if (w) FD_ZERO(w);
        if (e) FD_ZERO(e);
        for (nfds_t i = 0; i < n; i++) {
            short re = fds[i].revents;
            if (re & POLLNVAL) {
                rc = (int)fail(WEFT_EBADF);
                break;
            }
            if (r && (fds[i].events & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR))) {
                FD_SET(fds[i].fd, r);
                count++;
            }
            if (w && (fds[i].events & POLLOUT) && (re & (POLLOUT | POLLERR))) {
                FD_SET(fds[i].fd, w);
                count++;
            }
            if (e && (fds[i].events & POLLPRI) && (re & POLLPRI)) {
                FD_SET(fds[i].fd, e);
                count++;
            }
        }
    }
    if (fds != local) free(fds);
    if (tv) { /* Linux select leaves the time not slept in *tv */
        int64_t left = deadline - weft_time_monotonic_ns();
        if (left < 0) left = 0;
        tv->tv_sec = (time_t)(left / 1000000000);
        tv->tv_usec = (suseconds_t)(left % 1000000000 / 1000);
    }
    return rc < 0 ? rc : count;
}

/* ---- sleeping -------------------------------------------------------------------------------- */

/* Sleeps sec seconds and nsec nanoseconds (both >= 0) through the hub; returns 0, or the
 * nanoseconds left when canceled (INT64_MAX at most). */
static int64_t sleep_for(int64_t sec, int64_t nsec)
{
    int64_t deadline = weft__deadline_after(sec, nsec);
    if (weft_time_sleep((double)sec + (double)nsec / 1e9) == WEFT_ECANCELED) {
        int64_t left = deadline - weft_time_monotonic_ns();
        return left > 0 ? left : 1;
    }
    return 0;
}

HOOK unsigned sleep(unsigned seconds)
{
    if (!active()) return LIBC(sleep)(seconds);
    int64_t left = sleep_for(seconds, 0);
    return (unsigned)((left + 999999999) / 1000000000);
}

HOOK int usleep(useconds_t us)
{
    if (!active()) return LIBC(usleep)(us);
    if (sleep_for(us / 1000000, us % 1000000 * 1000LL)) {
        errno = EINTR;
        return -1;
    }
    return 0;
}

HOOK int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (!active() || !req) return LIBC(nanosleep)(req, rem);
    if (req->tv_nsec < 0 || req->tv_nsec >= 1000000000 || req->tv_sec < 0) {
        errno = EINVAL;
        return -1;
    }
    int64_t left = sleep_for(req->tv_sec, req->tv_nsec);
    if (!left) return 0;
    if (rem) {
        rem->tv_sec = (time_t)(left / 1000000000);
        rem->tv_nsec = (long)(left % 1000000000);
    }
    errno = EINTR;
    return -1;
}

/* ---- fds going away ----------------------------------------------------------------------------
 */

/* Patched, a close (or a dup onto a number) ends every wait on the fd, in every hub and thread
 * (weft__io_close), whether or not the closing thread has a hub. */
static int close_op(int fd, void *arg)
{
    (void)arg;
    return LIBC(close)(fd);
}

static int dup3_op(int fd, void *arg)
{
    const int *a = arg; /* old, flags (-1: dup2) */
    return a[1] < 0 ? LIBC(dup2)(a[0], fd) : LIBC(dup3)(a[0], fd, a[1]);
}

HOOK int close(int fd)
{
    hint_clear(fd);
    if (atomic_load_explicit(&patched, memory_order_relaxed) && fd >= 0)
        return weft__io_close(fd, close_op, NULL);
    return LIBC(close)(fd);
}

HOOK int dup2(int old, int fd)
{
    if (old != fd) hint_clear(fd);
    int a[2] = {old, -1};
    if (atomic_load_explicit(&patched, memory_order_relaxed) && old != fd && fd >= 0 &&
        fcntl(old, F_GETFD) >= 0) /* (a bad old closes nothing) */
        return weft__io_close(fd, dup3_op, a);
    return LIBC(dup2)(old, fd);
}

HOOK int dup3(int old, int fd, int flags)
{
    if (old != fd) hint_clear(fd);
    int a[2] = {old, flags};
    if (atomic_load_explicit(&patched, memory_order_relaxed) && old != fd && fd >= 0 &&
        flags >= 0 && fcntl(old, F_GETFD) >= 0)
        return weft__io_close(fd, dup3_op, a);
    return LIBC(dup3)(old, fd, flags);
}

/* fclose and pclose close their fd with libc's own close, which the patch cannot catch: a hub
 * that watched the number would go on believing it watched (epoll drops a closed file
 * silently), and a wait on the fd that takes the number next would never end. So they end
 * every wait on the number first, as close does. (A stream without an fd, fmemopen's, goes
 * straight to libc.) */
static int fclose_op(int fd, void *arg)
{
    (void)fd;
    return LIBC(fclose)(arg);
}

static int pclose_op(int fd, void *arg)
{
    (void)fd;
    return LIBC(pclose)(arg);
}

HOOK int fclose(FILE *f)
{
    int fd = f && atomic_load_explicit(&patched, memory_order_relaxed) ? fileno(f) : -1;
    if (fd < 0) return LIBC(fclose)(f);
    hint_clear(fd);
    return weft__io_close(fd, fclose_op, f);
}

HOOK int pclose(FILE *f)
{
    int fd = f && atomic_load_explicit(&patched, memory_order_relaxed) ? fileno(f) : -1;
    if (fd < 0) return LIBC(pclose)(f);
    hint_clear(fd);
    return weft__io_close(fd, pclose_op, f);
}

/* ---- new sockets: no hint from a number's earlier holder ----------------------------------------
 */

HOOK int socket(int domain, int type, int protocol)
{
    int fd = LIBC(socket)(domain, type, protocol);
    hint_clear(fd);
    return fd;
}

HOOK int socketpair(int domain, int type, int protocol, int sv[2])
{
    int r = LIBC(socketpair)(domain, type, protocol, sv);
    if (r == 0) {
        hint_clear(sv[0]);
        hint_clear(sv[1]);
    }
    return r;
}

/* ---- name resolution on helper threads ------------------------------------------------------- */

typedef struct gai_req {
    helper_req_t base;
    char *node, *service;
    struct addrinfo hints;
    bool has_hints;
    struct addrinfo *res;
    int rc, err;
} gai_req_t;

static void gai_run(helper_req_t *h)
{
    gai_req_t *q = (gai_req_t *)h;
    /* Not a coroutine here: the call goes straight to libc. */
    q->rc = LIBC(getaddrinfo)(q->node, q->service, q->has_hints ? &q->hints : NULL, &q->res);
    q->err = errno;
}

static void gai_free(helper_req_t *h)
{
    gai_req_t *q = (gai_req_t *)h;
    if (q->res) freeaddrinfo(q->res);
    free(q->node);
    free(q->service);
    free(q);
}

HOOK int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                     struct addrinfo **res)
{
    if (!active() || !res) return LIBC(getaddrinfo)(node, service, hints, res);
    gai_req_t *q = calloc(1, sizeof *q);
    if (!q) return EAI_MEMORY;
    q->node = node ? strdup(node) : NULL;
    q->service = service ? strdup(service) : NULL;
    if (hints) {
        q->hints = *hints;
        q->hints.ai_addr = NULL; /* only flags, family, socktype and protocol count */
        q->hints.ai_canonname = NULL;
        q->hints.ai_next = NULL;
        q->has_hints = true;
    }
    if ((node && !q->node) || (service && !q->service)) {
        gai_free(&q->base);
        return EAI_MEMORY;
    }
    if (helper_call(&q->base, gai_run, gai_free)) {
        /* No helper: blocking this thread still gives the right answer. */
        gai_free(&q->base);
        return LIBC(getaddrinfo)(node, service, hints, res);
    }
    int rc = weft_event_wait(&q->base.done, WEFT_FOREVER);
    if (rc) { /* canceled: the helper finishes and frees the request */
        helper_put(&q->base);
        errno = EINTR;
        return EAI_SYSTEM;
    }
    rc = q->rc;
    *res = q->res;
    q->res = NULL;
    if (rc == EAI_SYSTEM) errno = q->err;
    helper_put(&q->base);
    return rc;
}

/* ---- switching it on, and the audit -------------------------------------------------------- */

#define NAME_ENTRY(name, ret, args) {#name, "", false},
static weft_patch_t table[] = {LIBC_CALLS(NAME_ENTRY)};
#undef NAME_ENTRY

#define OURS_ENTRY(name, ret, args) (void *)name,
static void *const ours[] = {LIBC_CALLS(OURS_ENTRY)};
#undef OURS_ENTRY

int weft_monkey_patch(void)
{
#define RESOLVE(name, ret, args)                                                                   \
    if (!LIBC(name)) return WEFT_ENOTSUP;
    LIBC_CALLS(RESOLVE)
#undef RESOLVE
    atomic_store_explicit(&patched, 1, memory_order_release);
    return 0;
}

int weft_monkey_unpatch(void)
{
    atomic_store_explicit(&patched, 0, memory_order_release);
    return 0;
}

size_t weft_monkey_patched(const weft_patch_t **list)
{
    bool on = atomic_load_explicit(&patched, memory_order_acquire);
    size_t n = sizeof table / sizeof table[0];
    for (size_t i = 0; i < n; i++) {
        /* Whom does a caller elsewhere in the process reach? */
        void *first = dlsym(RTLD_DEFAULT, table[i].name);
        bool reached = first == ours[i];
        table[i].active = on && reached;
        table[i].mechanism = !reached ? "not reached: another definition comes first"
                             : !strcmp(table[i].name, "getaddrinfo")
                                 ? "interposed (resolved on a helper thread)"
                             : !strcmp(table[i].name, "connect")
                                 ? "interposed (stream sockets: connected on a helper thread)"
                                 : "interposed";
    }
    if (list) *list = table;
    return n;
}

/* LD_PRELOAD=libweft.so WEFT_PATCH=1: patched before main. */
__attribute__((constructor)) static void patch_from_env(void)
{
    const char *env = weft__getenv("WEFT_PATCH");
    if (env && atoi(env) > 0) weft_monkey_patch();
}
