/*
 * hook.c — the monkey patch: libc's blocking calls, redefined. Each definition first asks
 * whether to intercept (patched, and the caller's thread has a hub: a coroutine or a root
 * context with coroutines); if not, it calls libc's function at once (a TLS load, a relaxed
 * load and an indirect call). Otherwise it does the call without blocking and, where libc's
 * would block, parks through the hub (weft__io_wait) and tries again. weft/hook.h states the
 * semantics kept.
 *
 * libc's functions are found with dlsym(RTLD_NEXT) on first use. Until then (or if dlsym
 * itself calls one of these early) the raw system call stands in.
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
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <stdarg.h>
#include <sys/ioctl.h>
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
    X(getaddrinfo, int, (const char *, const char *, const struct addrinfo *, struct addrinfo **)) \
    X(socket, int, (int, int, int))                                                                \
    X(socketpair, int, (int, int, int, int *))                                                     \
    X(fcntl, int, (int, int, ...))                                                                 \
    X(fcntl64, int, (int, int, ...))                                                               \
    X(ioctl, int, (int, unsigned long, ...))                                                       \
    X(setsockopt, int, (int, int, int, const void *, socklen_t))

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
    errno = code == WEFT_ETIMEDOUT ? EAGAIN : code == WEFT_ECANCELED ? EINTR : -code;
    return -1;
}

static bool user_nonblock(int fd)
{
    int fl = LIBC(fcntl)(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK);
}

/* What weft knows of a socket's mode, so the path that is about to park does not ask the
 * kernel each time: bits per fd (fds below SOCK_CACHE), kept current by the hooks of the calls
 * that create sockets or change the mode or the timeouts, and forgotten when the fd closes. */
enum {
    SOCK_CACHE = 65536,
    S_KNOWN = 1,    /* S_NB is right */
    S_NB = 2,       /* O_NONBLOCK */
    S_TKNOWN = 4,   /* S_RCV and S_SND are right */
    S_RCV = 8,      /* SO_RCVTIMEO set */
    S_SND = 16,     /* SO_SNDTIMEO set */
    S_DRAINED = 32, /* the last read took less than asked: likely nothing more is there yet */
};
static _Atomic uint8_t sockstate[SOCK_CACHE];

static void sock_set(int fd, uint8_t v)
{
    if (fd >= 0 && fd < SOCK_CACHE) atomic_store_explicit(&sockstate[fd], v, memory_order_relaxed);
}

static uint8_t sock_get(int fd)
{
    return fd >= 0 && fd < SOCK_CACHE ? atomic_load_explicit(&sockstate[fd], memory_order_relaxed)
                                      : 0;
}

static bool sock_nonblock(int fd)
{
    uint8_t st = sock_get(fd);
    if (st & S_KNOWN) return st & S_NB;
    bool nb = user_nonblock(fd);
    sock_set(fd, (uint8_t)((st & ~S_NB) | S_KNOWN | (nb ? S_NB : 0)));
    return nb;
}

/* Notes whether a read of n bytes that returned r drained the socket. A hint only (a wrong one
 * costs a trip through the poller, which is level-triggered): changed atomically and only when
 * it changes, so readers of neighbouring fds on other threads do not fight over the line. */
static void note_read(int fd, ssize_t r, size_t n)
{
    if (fd < 0 || fd >= SOCK_CACHE || r < 0) return;
    bool drained = (size_t)r < n;
    uint8_t st = atomic_load_explicit(&sockstate[fd], memory_order_relaxed);
    if (drained == !!(st & S_DRAINED)) return;
    if (drained)
        atomic_fetch_or_explicit(&sockstate[fd], S_DRAINED, memory_order_relaxed);
    else
        atomic_fetch_and_explicit(&sockstate[fd], (uint8_t)~S_DRAINED, memory_order_relaxed);
}

/* Whether to wait before trying to read: a blocking socket whose last read drained it. In a
 * request/response exchange the next read would only say EAGAIN (a wasted system call on every
 * request); the poller reports the input when it comes, or at once if it is already there. */
static bool wait_first(int fd, int flags)
{
    uint8_t st = sock_get(fd);
    return !(flags & MSG_DONTWAIT) && (st & (S_DRAINED | S_KNOWN | S_NB)) == (S_DRAINED | S_KNOWN);
}

static int64_t timeo_deadline(int fd, int opt)
{
    struct timeval tv = {0, 0};
    socklen_t len = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len) < 0 || (tv.tv_sec == 0 && tv.tv_usec == 0))
        return WEFT_NO_DEADLINE;
    return weft_monotonic_ns() + (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
}

/* The deadline SO_RCVTIMEO / SO_SNDTIMEO sets for a socket call starting now. */
static int64_t sock_deadline(int fd, int opt)
{
    uint8_t st = sock_get(fd), bit = opt == SO_RCVTIMEO ? S_RCV : S_SND;
    if ((st & S_TKNOWN) && !(st & bit)) return WEFT_NO_DEADLINE;
    if (st & S_TKNOWN) return timeo_deadline(fd, opt);
    int64_t r = timeo_deadline(fd, SO_RCVTIMEO), w = timeo_deadline(fd, SO_SNDTIMEO);
    sock_set(fd,
             (uint8_t)((st & (S_KNOWN | S_NB)) | S_TKNOWN | (r != WEFT_NO_DEADLINE ? S_RCV : 0) |
                       (w != WEFT_NO_DEADLINE ? S_SND : 0)));
    return opt == SO_RCVTIMEO ? r : w;
}

/* Waits for fd; 0 when ready (or not pollable: a regular file is always ready), else -1 with
 * errno. */
static int await(int fd, int events, int64_t deadline)
{
    int rc = weft__io_wait(fd, events, deadline);
    if (rc > 0 || rc == WEFT_EINVAL || rc == WEFT_EPERM) return 0;
    return (int)fail(rc);
}

/* ---- reading ------------------------------------------------------------------------------- */

typedef ssize_t (*attempt_fn)(int fd, void *ctx, int flags);

/* Socket input: try with MSG_DONTWAIT; on EAGAIN wait for input (unless the user wants
 * EAGAIN), within SO_RCVTIMEO. Returns what the blocking call would have. */
static ssize_t sock_in(int fd, attempt_fn attempt, void *ctx, int flags)
{
    int64_t deadline = -1;
    if (wait_first(fd, flags)) {
        deadline = sock_deadline(fd, SO_RCVTIMEO);
        if (await(fd, WEFT_READ, deadline)) return -1;
    }
    for (;;) {
        ssize_t r = attempt(fd, ctx, flags | MSG_DONTWAIT);
        if (r >= 0 || errno != EAGAIN) return r;
        if ((flags & MSG_DONTWAIT) || sock_nonblock(fd)) return -1;
        if (deadline == -1) deadline = sock_deadline(fd, SO_RCVTIMEO);
        if (await(fd, WEFT_READ, deadline)) return -1;
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
    return await(fd, events, WEFT_NO_DEADLINE) == 0;
}

HOOK ssize_t read(int fd, void *buf, size_t n)
{
    if (!active()) return LIBC(read)(fd, buf, n);
    buf_ctx_t c = {buf, n, NULL, NULL};
    if (wait_first(fd, 0)) return sock_in(fd, try_recvfrom, &c, 0);
    int saved = errno;
    ssize_t r = try_recvfrom(fd, &c, MSG_DONTWAIT);
    if (r >= 0) return r;
    if (errno == EAGAIN) return sock_in(fd, try_recvfrom, &c, 0);
    if (errno != ENOTSOCK) return r;
    errno = saved;
    return other_ready(fd, WEFT_READ) ? LIBC(read)(fd, buf, n) : -1;
}

HOOK ssize_t readv(int fd, const struct iovec *iov, int n)
{
    if (!active()) return LIBC(readv)(fd, iov, n);
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)(n < 0 ? 0 : n)};
    int saved = errno;
    ssize_t r = LIBC(recvmsg)(fd, &m, MSG_DONTWAIT);
    if (r >= 0) return r;
    if (errno == EAGAIN) return sock_in(fd, try_recvmsg, &m, 0);
    if (errno != ENOTSOCK) return r;
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
    int64_t deadline = -1;
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
        if (errno != EAGAIN || sock_nonblock(fd)) {
            result = sent ? (ssize_t)sent : -1;
            break;
        }
        if (deadline == -1) deadline = sock_deadline(fd, SO_SNDTIMEO);
        if (await(fd, WEFT_WRITE, deadline)) {
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
        if (await(fd, WEFT_WRITE, WEFT_NO_DEADLINE)) return done ? (ssize_t)done : -1;
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

/* ---- connections ----------------------------------------------------------------------------- */

static int accept_common(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int64_t deadline = -1;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (sock_nonblock(fd) || LIBC(poll)(&pfd, 1, 0) > 0) {
            int c = LIBC(accept4)(fd, addr, len, flags);
            if (c >= 0) sock_set(c, S_KNOWN | S_TKNOWN | (flags & SOCK_NONBLOCK ? S_NB : 0));
            return c;
        }
        if (deadline == -1) deadline = sock_deadline(fd, SO_RCVTIMEO);
        if (await(fd, WEFT_READ, deadline)) return -1;
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

HOOK int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (!active()) return LIBC(connect)(fd, addr, len);
    int fl = LIBC(fcntl)(fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK)) return LIBC(connect)(fd, addr, len);
    /* Start it non-blocking (the mode goes back at once: the connection proceeds either way),
     * then wait for it to complete. */
    if (LIBC(fcntl)(fd, F_SETFL, fl | O_NONBLOCK) < 0) return LIBC(connect)(fd, addr, len);
    int r = LIBC(connect)(fd, addr, len);
    int e = errno;
    LIBC(fcntl)(fd, F_SETFL, fl);
    if (r == 0 || e != EINPROGRESS) {
        errno = e;
        return r;
    }
    if (await(fd, WEFT_WRITE, sock_deadline(fd, SO_SNDTIMEO))) {
        if (errno == EAGAIN) errno = ETIMEDOUT; /* SO_SNDTIMEO on connect */
        return -1;
    }
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) return -1;
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/* ---- waiting on many fds ------------------------------------------------------------------- */

/* poll(2) that parks: look first; if nothing is ready, gather the fds in a private epoll set,
 * wait on that one fd through the hub, and look again. */
static int poll_until(struct pollfd *fds, nfds_t n, int64_t deadline)
{
    int r = LIBC(poll)(fds, n, 0);
    if (r != 0 || deadline <= weft_monotonic_ns()) return r;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -1;
    for (nfds_t i = 0; i < n; i++) {
        if (fds[i].fd < 0) continue;
        struct epoll_event ev = {.events = (uint32_t)fds[i].events &
                                           (EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP),
                                 .data.fd = fds[i].fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i].fd, &ev) < 0 && errno == EEXIST) {
            /* The same fd twice: one registration with both interests. */
            for (nfds_t j = 0; j < i; j++)
                if (fds[j].fd == fds[i].fd) ev.events |= (uint32_t)fds[j].events;
            epoll_ctl(ep, EPOLL_CTL_MOD, fds[i].fd, &ev);
        }
    }
    int rc = weft__io_wait(ep, WEFT_READ, deadline);
    weft__io_forget(ep);
    LIBC(close)(ep);
    if (rc < 0 && rc != WEFT_ETIMEDOUT) return (int)fail(rc);
    return LIBC(poll)(fds, n, 0);
}

HOOK int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    if (!active() || timeout == 0) return LIBC(poll)(fds, n, timeout);
    int64_t deadline =
        timeout < 0 ? WEFT_NO_DEADLINE : weft_monotonic_ns() + (int64_t)timeout * 1000000;
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
    int64_t start = weft_monotonic_ns();
    int64_t deadline = tv ? start + (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000
                          : WEFT_NO_DEADLINE;
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
        int64_t left = deadline - weft_monotonic_ns();
        if (left < 0) left = 0;
        tv->tv_sec = (time_t)(left / 1000000000);
        tv->tv_usec = (suseconds_t)(left % 1000000000 / 1000);
    }
    return rc < 0 ? rc : count;
}

/* ---- sleeping -------------------------------------------------------------------------------- */

/* Sleeps ns through the hub; returns 0, or the nanoseconds left when canceled. */
static int64_t sleep_ns(int64_t ns)
{
    int64_t start = weft_monotonic_ns();
    if (weft_sleep((double)ns / 1e9) == WEFT_ECANCELED) {
        int64_t left = start + ns - weft_monotonic_ns();
        return left > 0 ? left : 1;
    }
    return 0;
}

HOOK unsigned sleep(unsigned seconds)
{
    if (!active()) return LIBC(sleep)(seconds);
    int64_t left = sleep_ns((int64_t)seconds * 1000000000);
    return (unsigned)((left + 999999999) / 1000000000);
}

HOOK int usleep(useconds_t us)
{
    if (!active()) return LIBC(usleep)(us);
    if (sleep_ns((int64_t)us * 1000)) {
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
    int64_t left = sleep_ns((int64_t)req->tv_sec * 1000000000 + req->tv_nsec);
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
    sock_set(fd, 0);
    if (atomic_load_explicit(&patched, memory_order_relaxed) && fd >= 0)
        return weft__io_close(fd, close_op, NULL);
    return LIBC(close)(fd);
}

HOOK int dup2(int old, int fd)
{
    if (old != fd) sock_set(fd, 0);
    int a[2] = {old, -1};
    if (atomic_load_explicit(&patched, memory_order_relaxed) && old != fd && fd >= 0 &&
        LIBC(fcntl)(old, F_GETFD) >= 0) /* (a bad old closes nothing) */
        return weft__io_close(fd, dup3_op, a);
    return LIBC(dup2)(old, fd);
}

HOOK int dup3(int old, int fd, int flags)
{
    if (old != fd) sock_set(fd, 0);
    int a[2] = {old, flags};
    if (atomic_load_explicit(&patched, memory_order_relaxed) && old != fd && fd >= 0 &&
        flags >= 0 && LIBC(fcntl)(old, F_GETFD) >= 0)
        return weft__io_close(fd, dup3_op, a);
    return LIBC(dup3)(old, fd, flags);
}

/* ---- keeping the socket-mode cache current ------------------------------------------------- */

HOOK int socket(int domain, int type, int protocol)
{
    int fd = LIBC(socket)(domain, type, protocol);
    if (fd >= 0) sock_set(fd, S_KNOWN | S_TKNOWN | (type & SOCK_NONBLOCK ? S_NB : 0));
    return fd;
}

HOOK int socketpair(int domain, int type, int protocol, int sv[2])
{
    int r = LIBC(socketpair)(domain, type, protocol, sv);
    if (r == 0)
        for (int i = 0; i < 2; i++)
            sock_set(sv[i], S_KNOWN | S_TKNOWN | (type & SOCK_NONBLOCK ? S_NB : 0));
    return r;
}

/* fcntl and ioctl take one more argument of a type their command decides; it is passed on as
 * the pointer-sized value glibc's own wrappers read. */
static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
    int r = real(fd, cmd, arg);
    if (r >= 0 && cmd == F_SETFL) {
        uint8_t st = sock_get(fd);
        sock_set(fd, (uint8_t)((st & ~S_NB) | S_KNOWN | (((intptr_t)arg & O_NONBLOCK) ? S_NB : 0)));
    }
    return r;
}

HOOK int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_common(LIBC(fcntl), fd, cmd, arg);
}

HOOK int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_common(LIBC(fcntl64), fd, cmd, arg);
}

HOOK int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = LIBC(ioctl)(fd, req, arg);
    if (r == 0 && req == FIONBIO && arg) {
        uint8_t st = sock_get(fd);
        sock_set(fd, (uint8_t)((st & ~S_NB) | S_KNOWN | (*(int *)arg ? S_NB : 0)));
    }
    return r;
}

HOOK int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    int r = LIBC(setsockopt)(fd, level, name, value, len);
    if (r == 0 && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO))
        sock_set(fd, (uint8_t)(sock_get(fd) & ~(S_TKNOWN | S_RCV | S_SND)));
    return r;
}

/* ---- name resolution on helper threads ------------------------------------------------------- */

/* A request shared by the parked coroutine and the helper thread; whoever finishes last frees
 * it (a canceled coroutine leaves early). */
typedef struct gai_req {
    _Atomic int refs;
    char *node, *service;
    struct addrinfo hints;
    bool has_hints;
    struct addrinfo *res;
    int rc, err;
    weft_event_t done;
} gai_req_t;

enum { GAI_THREADS = 4 };
static weft__mutex_t gai_lock = WEFT__MUTEX_INIT; /* guards the two below */
static weft_queue_t *gai_queue;
static size_t gai_threads;

static void gai_put(gai_req_t *q)
{
    if (atomic_fetch_sub_explicit(&q->refs, 1, memory_order_acq_rel) != 1) return;
    if (q->res) freeaddrinfo(q->res);
    weft_event_destroy(&q->done);
    free(q->node);
    free(q->service);
    free(q);
}

static void gai_worker(void *arg)
{
    (void)arg;
    for (;;) {
        void *item;
        if (weft_queue_get(gai_queue, &item, 1.0) != 0) {
            /* Idle for a second: leave; the last one out frees the queue. (Requests are put
             * under gai_lock, so none can arrive between the look and the exit.) */
            weft__mutex_lock(&gai_lock);
            bool idle = weft_queue_empty(gai_queue);
            if (idle && --gai_threads == 0) {
                weft_queue_destroy(gai_queue);
                gai_queue = NULL;
            }
            weft__mutex_unlock(&gai_lock);
            if (idle) return;
            continue;
        }
        gai_req_t *q = item;
        /* Not a coroutine here: the call goes straight to libc. */
        q->rc = LIBC(getaddrinfo)(q->node, q->service, q->has_hints ? &q->hints : NULL, &q->res);
        q->err = errno;
        weft_event_set(&q->done);
        gai_put(q);
    }
}

/* Queues a request, starting the queue and one more helper thread (up to GAI_THREADS) as
 * needed. gai_lock is never held across a park (a thread start parks a coroutine, and the
 * next coroutine of the hub may come here). */
static int gai_submit(gai_req_t *q)
{
    int rc = 0;
    weft__mutex_lock(&gai_lock);
    if (!gai_queue) rc = weft_queue_create(&gai_queue, WEFT_QUEUE_FIFO, 0);
    bool more = !rc && gai_threads < GAI_THREADS && weft_queue_qsize(gai_queue) >= gai_threads / 2;
    if (more) gai_threads++; /* reserved; given back if the start fails */
    weft__mutex_unlock(&gai_lock);
    if (rc) return rc;
    if (more) {
        weft_thread_t *t;
        weft_thread_opts_t o = {.name = "weft-getaddrinfo", .daemon = true};
        if (weft_thread_start(&t, gai_worker, NULL, &o) == 0) {
            weft_thread_release(t);
        } else {
            weft__mutex_lock(&gai_lock);
            gai_threads--;
            weft__mutex_unlock(&gai_lock);
        }
    }
    weft__mutex_lock(&gai_lock);
    rc = gai_threads ? weft_queue_put_nowait(gai_queue, q) : WEFT_EAGAIN;
    weft__mutex_unlock(&gai_lock);
    return rc;
}

HOOK int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                     struct addrinfo **res)
{
    if (!active() || !res) return LIBC(getaddrinfo)(node, service, hints, res);
    gai_req_t *q = calloc(1, sizeof *q);
    if (!q) return EAI_MEMORY;
    atomic_init(&q->refs, 2);
    q->node = node ? strdup(node) : NULL;
    q->service = service ? strdup(service) : NULL;
    if (hints) {
        q->hints = *hints;
        q->hints.ai_addr = NULL; /* only flags, family, socktype and protocol count */
        q->hints.ai_canonname = NULL;
        q->hints.ai_next = NULL;
        q->has_hints = true;
    }
    weft_event_init(&q->done);
    if ((node && !q->node) || (service && !q->service) || gai_submit(q)) {
        q->refs = 1;
        gai_put(q);
        return EAI_MEMORY;
    }
    int rc = weft_event_wait(&q->done, WEFT_FOREVER);
    if (rc) { /* canceled: the helper finishes and frees the request */
        gai_put(q);
        errno = EINTR;
        return EAI_SYSTEM;
    }
    rc = q->rc;
    *res = q->res;
    q->res = NULL;
    if (rc == EAI_SYSTEM) errno = q->err;
    gai_put(q);
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
                                 : "interposed";
    }
    if (list) *list = table;
    return n;
}

/* LD_PRELOAD=libweft.so WEFT_PATCH=1: patched before main. */
__attribute__((constructor)) static void patch_from_env(void)
{
    const char *env = getenv("WEFT_PATCH");
    if (env && atoi(env) > 0) weft_monkey_patch();
}
