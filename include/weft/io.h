/*
 * weft/io.h — file-descriptor readiness and IO that parks only the calling coroutine.
 *
 * In a coroutine (or a thread's root context once it has coroutines) these calls wait through
 * the thread's hub: the poller watches the fd while the thread runs other coroutines. In a
 * thread without coroutines they wait in poll(2), inside an executor task in slices of at most
 * 50 ms, so that a cancel of the task is seen within one. Either way: timeouts in seconds as
 * everywhere in weft (WEFT_FOREVER blocks; 0 or any other negative value polls), EINTR retried,
 * errors as negative WEFT_E* codes (errno negated; an errno weft does not name is WEFT_ESYSTEM).
 *
 * Closing: weft_fd_close (and, when patched, close(2), dup2(2) and dup3(2) onto the number) ends
 * every wait on the fd, in every hub and every thread of the process: each waiter returns
 * WEFT_EBADF at once, and no hub watches the number any more when the close returns, so no
 * waiter ever sees the events of the fd that takes the number next. A wait that starts while
 * the close runs waits for it, then starts over on whatever fd has the number then. A plain
 * close(2) (unpatched) wakes nobody: use weft_fd_close for an fd anybody may wait on.
 *
 * Pollers (the seed's IO models): "select", "poll", "epoll", "io_uring" (when built with
 * liburing and the kernel allows it). One per hub, chosen when the hub is created: the name
 * given to weft_poller_set, else the WEFT_POLLER environment variable (read as secure_getenv
 * reads it: ignored in a setuid/setgid or file-capability program), else io_uring (multishot
 * polls on a ring per hub, about 50 KiB of it; where the kernel refuses a ring — seccomp,
 * kernel.io_uring_disabled, before 5.1 — the next), else epoll, poll, select. select cannot
 * watch fds >= FD_SETSIZE (1024): WEFT_EINVAL.
 *
 * Non-blocking mode: weft_fd_read/weft_fd_write on a non-socket fd set O_NONBLOCK on it (shared
 * with every holder of the open file, as gevent does); sockets are used with MSG_DONTWAIT and
 * keep their mode, except that weft_fd_accept and weft_fd_connect set O_NONBLOCK on theirs.
 *
 * Returns: every call returns 0 or a negative WEFT_E* code; counts, events and new fds come
 * through the output pointer, the last argument. A transfer that moved part of its bytes and
 * then failed (an error, the timeout, a cancel) returns the error AND sets *done to the part.
 *
 * Thread safety: every call may be made from any thread or coroutine, on the same fd from
 * several at once (any number may wait on one fd; a readiness wakes them all; concurrent
 * reads or writes of one stream interleave as read(2)/write(2) do). Not async-signal-safe (a
 * signal handler cannot wake a coroutine: use a thread, or a self-pipe a coroutine reads).
 * Coroutines: a wait parks only the calling coroutine. Cancellation: a wait returns
 * WEFT_ECANCELED when the caller's coroutine or task is canceled, or WEFT_ETIMEDOUT at the end
 * of a weft_timeout scope (coro.h). Fork: in a child, the forking thread's hub gets a poller of
 * its own (nothing is shared with the parent's) at its next wait; the waits of other threads
 * do not exist in the child; the fds themselves are shared as fork shares them.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include "weft/core.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Event bits for weft_fd_wait. */
enum {
    WEFT_READ = 1,  /* readable, or EOF, or an error pending */
    WEFT_WRITE = 2, /* writable, or the peer gone */
};

/* Chooses the poller of the hubs created from now on in this process: "select", "poll",
 * "epoll", "io_uring", or NULL for the default. Errors: WEFT_EINVAL (unknown name),
 * WEFT_ENOTSUP (not available here). Hubs already running keep theirs. */
WEFT_EXTERN int weft_poller_set(const char *name);

/* The poller of the calling thread's hub, or of the hubs to come when it has none yet. */
WEFT_EXTERN const char *weft_poller_name(void);

/* Waits until fd is ready for one of `events` (WEFT_READ | WEFT_WRITE): 0, the ready ones in
 * *revents (may be NULL). Errors: WEFT_EINVAL (fd < 0, events empty or unknown bits, timeout
 * NaN), WEFT_EBADF (fd not open, or closed by weft_fd_close while waiting), WEFT_ETIMEDOUT,
 * WEFT_ECANCELED; *revents is 0 then. Any number of coroutines may wait on one fd; a
 * readiness wakes them all. A thread without a hub waits in ppoll(2) beside an eventfd of its
 * own, which weft_fd_close writes: this and every weft wait on an fd from such a thread (the
 * fd calls below, weft_conn, joins of processes) keep that one eventfd (close-on-exec) from
 * the thread's first wait until it exits; a forked child closes its copies. */
WEFT_EXTERN int weft_fd_wait(int fd, int events, double timeout, int *revents);

/* read(2) that waits for data: 0, with the bytes read in *done (> 0, or 0 at EOF or for n 0).
 * Errors: WEFT_EINVAL (fd < 0, buf NULL with n > 0, done NULL, timeout NaN), WEFT_ETIMEDOUT,
 * WEFT_ECANCELED, WEFT_EBADF, WEFT_ECONNRESET, ...; *done is 0 then. */
WEFT_EXTERN WEFT_NODISCARD int weft_fd_read(int fd, void *buf, size_t n, double timeout,
                                            size_t *done);

/* Writes all n bytes, waiting for room as needed: 0, *done == n. Errors: WEFT_EINVAL (fd < 0,
 * buf NULL with n > 0, timeout NaN), WEFT_EPIPE (the reader is gone: never a SIGPIPE death),
 * WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_EBADF, ...: returned even when part was written first,
 * with the part in *done (0 when nothing went). done may be NULL. */
WEFT_EXTERN WEFT_NODISCARD int weft_fd_write(int fd, const void *buf, size_t n, double timeout,
                                             size_t *done);

/* recv(2) / send(2) for sockets, with the same rules, errors and *done as weft_fd_read /
 * weft_fd_write (flags are passed on; MSG_NOSIGNAL and MSG_DONTWAIT are added). On an fd that
 * is not a socket they read and write as weft_fd_read / weft_fd_write do (flags unused). */
WEFT_EXTERN WEFT_NODISCARD int weft_fd_recv(int fd, void *buf, size_t n, int flags, double timeout,
                                            size_t *done);
WEFT_EXTERN WEFT_NODISCARD int weft_fd_send(int fd, const void *buf, size_t n, int flags,
                                            double timeout, size_t *done);

/* accept(2) that waits for a connection: 0, the new fd (close-on-exec, non-blocking) in *conn;
 * the peer's address in addr/len as accept(2) gives it (addr may be NULL; then len is
 * ignored). Sets O_NONBLOCK on fd. Errors: WEFT_EINVAL (fd < 0, conn NULL, addr without len,
 * timeout NaN), WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_EBADF, WEFT_EMFILE, ...; *conn is -1
 * then. */
WEFT_EXTERN WEFT_NODISCARD int weft_fd_accept(int fd, struct sockaddr *addr, socklen_t *len,
                                              double timeout, int *conn);

/* connect(2) that waits for the connection to complete: 0 or a negative code (WEFT_EINVAL for
 * fd < 0, addr NULL or timeout NaN; WEFT_ECONNREFUSED, WEFT_ETIMEDOUT, WEFT_ECANCELED, ...).
 * fd is left non-blocking. After a timeout or a cancel the connection attempt may still be
 * going on: close fd. */
WEFT_EXTERN WEFT_NODISCARD int weft_fd_connect(int fd, const struct sockaddr *addr, socklen_t len,
                                               double timeout);

/* Closes fd, first ending every wait on it in the process: the coroutines of every hub (this
 * thread's and other threads') and the threads without a hub waiting on fd in weft_fd_wait,
 * weft_fd_read, ... return WEFT_EBADF at once. Returns 0, or WEFT_EINVAL (fd < 0, or the
 * calling hub's own eventfd), WEFT_EBADF (fd not open), WEFT_EIO or another close(2) error (the
 * fd is released all the same; never retry). Safe from any thread or coroutine; not from a
 * signal handler (it takes internal locks). In a forked child it concerns the child's waits
 * only. */
WEFT_EXTERN int weft_fd_close(int fd);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
