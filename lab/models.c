/*
 * models.c — the same echo service written in each IO model of the seed's notes:
 *
 *   blocking    a thread per connection, blocking accept/read/write (both phases block)
 *   fork        a process per connection, blocking calls
 *   busy        non-blocking sockets polled in a loop (the notes: "the CPU does useless work")
 *   select      IO multiplexing with select(2) (at most FD_SETSIZE fds)
 *   poll        IO multiplexing with poll(2)
 *   epoll       IO multiplexing with epoll(7), level-triggered
 *   io_uring    asynchronous IO: recv and send submitted to the kernel, completions reaped
 *   threadpool  epoll for readiness, a weft thread pool doing the reads and writes
 *   sigio       signal-driven IO: O_ASYNC + F_SETSIG, the signals read from a signalfd
 *   coroutines  plain blocking code (accept, read, write) in weft coroutines, one thread,
 *               under weft_monkey_patch()
 *
 * Each serve_* takes the listening socket and never returns (SIGTERM ends the process).
 */
#include "lab.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef WEFT_HAVE_LIBURING
#include <liburing.h>
#endif

#include "weft.h"

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Writes all of buf (blocking or not: on EAGAIN it waits for room with poll). */
static bool write_all(int fd, const char *buf, size_t n)
{
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return false;
            struct pollfd p = {fd, POLLOUT, 0};
            poll(&p, 1, 1000);
            continue;
        }
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads what is there and echoes it. false: the connection is done (EOF or error). With a
 * non-blocking fd, EAGAIN is "nothing now" (true). */
static bool echo_once(int fd)
{
    char buf[4096];
    ssize_t r = read(fd, buf, sizeof buf);
    if (r > 0) return write_all(fd, buf, (size_t)r);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    return false;
}

/* Echoes until the non-blocking fd has nothing more; false when the connection is done. */
static bool drain(int fd)
{
    for (;;) {
        char buf[4096];
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
            if (!write_all(fd, buf, (size_t)r)) return false;
            continue;
        }
        return r < 0 && (errno == EAGAIN || errno == EINTR);
    }
}

/* ---- blocking, thread per connection ------------------------------------------------------ */

static void *conn_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    while (echo_once(fd)) {
    }
    close(fd);
    return NULL;
}

static void serve_blocking(int lfd)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) continue;
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 64 * 1024);
        if (pthread_create(&t, &a, conn_thread, (void *)(intptr_t)fd)) close(fd);
        pthread_attr_destroy(&a);
    }
}

/* ---- blocking, process per connection ----------------------------------------------------- */

static void serve_fork(int lfd)
{
    signal(SIGCHLD, SIG_IGN); /* children reap themselves */
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) continue;
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            while (echo_once(fd)) {
            }
            _exit(0);
        }
        close(fd);
    }
}

/* ---- non-blocking busy polling -------------------------------------------------------------- */

static void serve_busy(int lfd)
{
    set_nonblock(lfd);
    int *fds = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0) {
            set_nonblock(fd);
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                fds = realloc(fds, cap * sizeof *fds);
                if (!fds) abort();
            }
            fds[n++] = fd;
        }
        for (size_t i = 0; i < n;) {
            if (!echo_once(fds[i])) {
                close(fds[i]);
                fds[i] = fds[--n];
            } else {
                i++;
            }
        }
    }
}

/* ---- select ------------------------------------------------------------------------------- */

static void serve_select(int lfd)
{
    fd_set all;
    FD_ZERO(&all);
    FD_SET(lfd, &all);
    int top = lfd;
    for (;;) {
        fd_set r = all;
        if (select(top + 1, &r, NULL, NULL, NULL) < 0) continue;
        for (int fd = 0; fd <= top; fd++) {
            if (!FD_ISSET(fd, &r)) continue;
            if (fd == lfd) {
                int c = accept(lfd, NULL, NULL);
                if (c < 0) continue;
                if (c >= FD_SETSIZE) { /* the model's limit */
                    close(c);
                    continue;
                }
                FD_SET(c, &all);
                if (c > top) top = c;
            } else if (!echo_once(fd)) {
                close(fd);
                FD_CLR(fd, &all);
            }
        }
    }
}

/* ---- poll --------------------------------------------------------------------------------- */

static void serve_poll(int lfd)
{
    size_t n = 1, cap = 64;
    struct pollfd *p = malloc(cap * sizeof *p);
    if (!p) abort();
    p[0] = (struct pollfd){lfd, POLLIN, 0};
    for (;;) {
        if (poll(p, n, -1) < 0) continue;
        size_t count = n;
        for (size_t i = 1; i < count; i++) {
            if (!p[i].revents) continue;
            if (!echo_once(p[i].fd)) {
                close(p[i].fd);
                p[i].fd = -1; /* removed below */
            }
        }
        if (p[0].revents & POLLIN) {
            int c = accept(lfd, NULL, NULL);
            if (c >= 0) {
                if (n == cap) {
                    cap *= 2;
                    p = realloc(p, cap * sizeof *p);
                    if (!p) abort();
                }
                p[n++] = (struct pollfd){c, POLLIN, 0};
            }
        }
        size_t k = 1;
        for (size_t i = 1; i < n; i++)
            if (p[i].fd >= 0) p[k++] = p[i];
        n = k;
    }
}

/* ---- epoll -------------------------------------------------------------------------------- */

static void serve_epoll(int lfd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, events[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                if (c < 0) continue;
                struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
            } else if (!echo_once(fd)) {
                close(fd); /* leaves the epoll set with it */
            }
        }
    }
}

/* ---- io_uring: asynchronous recv and send --------------------------------------------------- */

#ifdef WEFT_HAVE_LIBURING
/* A free submission slot: when the queue is full, hand it to the kernel first. */
static struct io_uring_sqe *sqe_get(struct io_uring *ring)
{
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(ring))) io_uring_submit(ring);
    return sqe;
}

typedef struct uconn {
    int fd;
    bool sending;
    char buf[4096];
} uconn_t;

static void serve_io_uring(int lfd)
{
    struct io_uring ring;
    if (io_uring_queue_init(4096, &ring, 0) < 0) {
        fprintf(stderr, "io_uring: not available here\n");
        pause();
    }
    struct io_uring_sqe *sqe = sqe_get(&ring);
    io_uring_prep_accept(sqe, lfd, NULL, NULL, 0);
    io_uring_sqe_set_data(sqe, NULL);
    for (;;) {
        io_uring_submit_and_wait(&ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            seen++;
            uconn_t *c = io_uring_cqe_get_data(cqe);
            if (!c) { /* an accept: serve it, accept again */
                if (cqe->res >= 0) {
                    uconn_t *nc = calloc(1, sizeof *nc);
                    nc->fd = cqe->res;
                    struct io_uring_sqe *s = sqe_get(&ring);
                    io_uring_prep_recv(s, nc->fd, nc->buf, sizeof nc->buf, 0);
                    io_uring_sqe_set_data(s, nc);
                }
                struct io_uring_sqe *s = sqe_get(&ring);
                io_uring_prep_accept(s, lfd, NULL, NULL, 0);
                io_uring_sqe_set_data(s, NULL);
                continue;
            }
            if (cqe->res <= 0) {
                close(c->fd);
                free(c);
                continue;
            }
            struct io_uring_sqe *s = sqe_get(&ring);
            if (!c->sending) { /* got data: send it back */
                io_uring_prep_send(s, c->fd, c->buf, (size_t)cqe->res, MSG_WAITALL);
                c->sending = true;
            } else { /* sent: receive again */
                io_uring_prep_recv(s, c->fd, c->buf, sizeof c->buf, 0);
                c->sending = false;
            }
            io_uring_sqe_set_data(s, c);
        }
        io_uring_cq_advance(&ring, seen);
    }
}
#else
static void serve_io_uring(int lfd)
{
    (void)lfd;
    fprintf(stderr, "io_uring: built without liburing\n");
    pause();
}
#endif

/* ---- a thread pool doing the IO ----------------------------------------------------------- */

static int pool_ep;

static int pool_echo(void *arg, void **result)
{
    int fd = (int)(intptr_t)arg;
    *result = NULL;
    if (!echo_once(fd)) {
        close(fd);
        return 0;
    }
    struct epoll_event e = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = fd};
    epoll_ctl(pool_ep, EPOLL_CTL_MOD, fd, &e); /* ready for the next message */
    return 0;
}

static void serve_threadpool(int lfd)
{
    weft_executor_t *pool;
    if (weft_thread_pool_create(2, NULL, &pool)) abort();
    pool_ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, events[256];
    epoll_ctl(pool_ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(pool_ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                if (c < 0) continue;
                struct epoll_event e = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = c};
                epoll_ctl(pool_ep, EPOLL_CTL_ADD, c, &e);
            } else {
                if (weft_executor_submit(pool, pool_echo, (void *)(intptr_t)fd, NULL))
                    close(fd); /* shutting down: the connection ends here */
            }
        }
    }
}

/* ---- signal-driven IO ----------------------------------------------------------------------- */

/* The notes: "the system sends a notification signal when data is ready". Each socket gets
 * O_ASYNC with F_SETSIG(SIGRTMIN): a queued real-time signal per readiness, carrying the fd;
 * they are read from a signalfd instead of a handler. If the signal queue overflows the
 * kernel sends a plain SIGIO: then every socket is tried. */
static void serve_sigio(int lfd)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    sigaddset(&set, SIGIO);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    int *fds = calloc(65536, sizeof *fds); /* fd -> open */
    int top = 0;
    int socks[] = {lfd};
    for (size_t i = 0; i < 1; i++) {
        fcntl(socks[i], F_SETOWN, getpid());
        fcntl(socks[i], F_SETSIG, SIGRTMIN);
        fcntl(socks[i], F_SETFL, fcntl(socks[i], F_GETFL) | O_ASYNC | O_NONBLOCK);
    }
    struct signalfd_siginfo si[64];
    /* Connections that queued before O_ASYNC was set raise no signal: take them now (a fake
     * "listener ready" first round). */
    bool first = true;
    for (;;) {
        ssize_t r = 0;
        if (first) {
            si[0] = (struct signalfd_siginfo){.ssi_signo = (uint32_t)SIGRTMIN, .ssi_fd = lfd};
            r = sizeof si[0];
            first = false;
        } else {
            r = read(sfd, si, sizeof si);
        }
        if (r <= 0) continue;
        bool scan = false;
        for (size_t i = 0; i < (size_t)r / sizeof si[0]; i++) {
            if (si[i].ssi_signo == (uint32_t)SIGIO) {
                scan = true;
                continue;
            }
            int fd = si[i].ssi_fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= 65536) {
                        close(c);
                        continue;
                    }
                    fcntl(c, F_SETOWN, getpid());
                    fcntl(c, F_SETSIG, SIGRTMIN);
                    fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_ASYNC);
                    fds[c] = 1;
                    if (c > top) top = c;
                    if (!drain(c)) { /* data that came before O_ASYNC was set */
                        fds[c] = 0;
                        close(c);
                    }
                }
            } else if (fd >= 0 && fd < 65536 && fds[fd] && !drain(fd)) {
                fds[fd] = 0;
                close(fd);
            }
        }
        if (scan)
            for (int fd = 0; fd <= top; fd++)
                if (fds[fd] && !drain(fd)) {
                    fds[fd] = 0;
                    close(fd);
                }
    }
}

/* ---- coroutines, plain blocking code ----------------------------------------------------------
 */

static void co_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t r;
    /* Plain blocking calls: the monkey patch parks this coroutine when one would block. */
    while ((r = read(fd, buf, sizeof buf)) > 0)
        if (write(fd, buf, (size_t)r) != r) break;
    close(fd);
}

static void nothing(void *arg)
{
    (void)arg;
}

static void serve_coroutines(int lfd)
{
    weft_monkey_patch();
    /* the thread's hub: from now on its blocking calls park */
    if (weft_co_spawn(nothing, NULL, NULL, NULL) != 0) return;
    for (;;) {
        int fd = accept(lfd, NULL, NULL); /* parks the root: the connections run meanwhile */
        if (fd >= 0 && weft_co_spawn(co_conn, (void *)(intptr_t)fd, NULL, NULL) != 0) close(fd);
    }
}

const lab_model_t lab_models[] = {
    {"blocking", "thread per connection, blocking calls", serve_blocking, 0},
    {"fork", "process per connection, blocking calls", serve_fork, 0},
    {"busy", "non-blocking sockets polled in a loop", serve_busy, 0},
    {"select", "select(2) multiplexing", serve_select, FD_SETSIZE - 16},
    {"poll", "poll(2) multiplexing", serve_poll, 0},
    {"epoll", "epoll(7) multiplexing, level-triggered", serve_epoll, 0},
    {"io_uring", "asynchronous recv/send through io_uring", serve_io_uring, 0},
    {"threadpool", "epoll + a weft thread pool doing the IO", serve_threadpool, 0},
    {"sigio", "signal-driven IO: O_ASYNC + F_SETSIG read from a signalfd", serve_sigio, 0},
    {"coroutines", "plain blocking code in weft coroutines, monkey-patched", serve_coroutines, 0},
};
const size_t lab_nmodels = sizeof lab_models / sizeof lab_models[0];
