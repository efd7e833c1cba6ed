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

/* Chooses the poller of the hubs created from now on in this process. Hubs already running
 * keep theirs.
 * name: "select", "poll", "epoll" or "io_uring"; NULL: the default again (WEFT_POLLER, else
 *   the best available). Read during the call only.
 * Returns 0, WEFT_EINVAL (unknown name), WEFT_ENOTSUP (not available here). */
WEFT_EXTERN int weft_poller_set(const char *name);

/* The poller of the calling thread's hub, or of the hubs to come when it has none yet.
 * Returns its name ("select", "poll", "epoll" or "io_uring"): never NULL; a static string,
 * not to be freed. */
WEFT_EXTERN const char *weft_poller_name(void);

/* Waits until fd is ready for one of `events`. Any number of coroutines may wait on one fd; a
 * readiness wakes them all. A thread without a hub waits in ppoll(2) beside an eventfd of its
 * own, which weft_fd_close writes: this and every weft wait on an fd from such a thread (the
 * fd calls below, weft_conn, joins of processes) keep that one eventfd (close-on-exec) from
 * the thread's first wait until it exits; a forked child closes its copies.
 * fd: the file descriptor (>= 0; under the select poller < FD_SETSIZE).
 * events: WEFT_READ, WEFT_WRITE or both (WEFT_READ | WEFT_WRITE); no other bits.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 *   value) only polls.
 * revents: receives the ready ones of `events` on 0, and 0 on an error; may be NULL.
 * Returns 0 (ready), WEFT_EINVAL (fd < 0, events empty or unknown bits, timeout NaN),
 * WEFT_EBADF (fd not open, or closed by weft_fd_close while waiting), WEFT_ETIMEDOUT,
 * WEFT_ECANCELED. */
WEFT_EXTERN int weft_fd_wait(int fd, int events, double timeout, int *revents);

/* read(2) that waits for data: one read of up to n bytes once fd is readable.
 * fd: the file descriptor (>= 0); a non-socket fd is set O_NONBLOCK (above).
 * buf: where the bytes go, n bytes of room; may be NULL when n is 0.
 * n: the most bytes to read.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 *   value) only tries.
 * done: receives the bytes read on 0 (> 0, or 0 at EOF or for n 0), and 0 on an error; not
 *   NULL.
 * Returns 0, WEFT_EINVAL (fd < 0, buf NULL with n > 0, done NULL, timeout NaN),
 * WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_EBADF, WEFT_ECONNRESET, ... (read(2)'s errors). */
WEFT_EXTERN WEFT_NODISCARD int weft_fd_read(int fd, void *buf, size_t n, double timeout,
                                            size_t *done);

/* Writes all n bytes, waiting for room as needed.
 * fd: the file descriptor (>= 0); a non-socket fd is set O_NONBLOCK (above).
 * buf: the bytes to write; may be NULL when n is 0.
 * n: how many bytes to write.
 * timeout: seconds for the whole write; WEFT_FOREVER waits without a limit, 0 (or any other
 *   negative value) writes what fits now.
 * done: receives the bytes written: n on 0; on an error the part written before it (0 when
 *   nothing went); may be NULL.
 * Returns 0 (all n written), WEFT_EINVAL (fd < 0, buf NULL with n > 0, timeout NaN),
 * WEFT_EPIPE (the reader is gone: never a SIGPIPE death), WEFT_ETIMEDOUT, WEFT_ECANCELED,
 * WEFT_EBADF, ...: returned even when part was written first, with the part in *done. */
WEFT_EXTERN WEFT_NODISCARD int weft_fd_write(int fd, const void *buf, size_t n, double timeout,
                                             size_t *done);

/* recv(2) / send(2) for sockets, with the same rules, errors and *done as weft_fd_read /
 * weft_fd_write. On an fd that is not a socket they read and write as weft_fd_read /
 * weft_fd_write do (flags unused).
 * fd: the socket (>= 0).
 * buf: recv: where the bytes go (n bytes of room); send: the bytes to send; may be NULL when
 *   n is 0.
 * n: recv: the most bytes to receive; send: how many bytes to send (all of them).
 * flags: MSG_* flags, passed on; MSG_NOSIGNAL and MSG_DONTWAIT are added.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 *   value) only tries.
 * done: as weft_fd_read's (recv: not NULL) and weft_fd_write's (send: may be NULL).
 * Returns 0, or the errors of weft_fd_read (recv) and weft_fd_write (send). */
WEFT_EXTERN WEFT_NODISCARD int weft_fd_recv(int fd, void *buf, size_t n, int flags, double timeout,
                                            size_t *done);
WEFT_EXTERN WEFT_NODISCARD int weft_fd_send(int fd, const void *buf, size_t n, int flags,
                                            double timeout, size_t *done);

/* accept(2) that waits for a connection. Sets O_NONBLOCK on fd.
 * fd: the listening socket (>= 0).
 * addr: receives the peer's address as accept(2) gives it; may be NULL (then len is ignored).
 * len: in: the room at addr; out: the address's length, as accept(2)'s; not NULL with addr.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 *   value) only tries.
 * conn: receives the new fd (close-on-exec, non-blocking; the caller closes it) on 0, -1 on
 *   an error; not NULL.
 * Returns 0, WEFT_EINVAL (fd < 0, conn NULL, addr without len, timeout NaN), WEFT_ETIMEDOUT,
 * WEFT_ECANCELED, WEFT_EBADF, WEFT_EMFILE, ... (accept(2)'s errors). */
WEFT_EXTERN WEFT_NODISCARD int weft_fd_accept(int fd, struct sockaddr *addr, socklen_t *len,
                                              double timeout, int *conn);

/* connect(2) that waits for the connection to complete. fd is left non-blocking. After a
 * timeout or a cancel the connection attempt may still be going on: close fd.
 * fd: the socket (>= 0).
 * addr: the address to connect to; not NULL; read during the call only.
 * len: addr's length, as connect(2)'s.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 *   value) only tries.
 * Returns 0 (connected) or a negative code: WEFT_EINVAL (fd < 0, addr NULL or timeout NaN),
 * WEFT_ECONNREFUSED, WEFT_ETIMEDOUT, WEFT_ECANCELED, ... (connect(2)'s errors). */
WEFT_EXTERN WEFT_NODISCARD int weft_fd_connect(int fd, const struct sockaddr *addr, socklen_t len,
                                               double timeout);

/* Closes fd, first ending every wait on it in the process: the coroutines of every hub (this
 * thread's and other threads') and the threads without a hub waiting on fd in weft_fd_wait,
 * weft_fd_read, ... return WEFT_EBADF at once. Safe from any thread or coroutine; not from a
 * signal handler (it takes internal locks). In a forked child it concerns the child's waits
 * only.
 * fd: the fd to close (>= 0); released by the call, whatever it returns.
 * Returns 0, or WEFT_EINVAL (fd < 0, or the calling hub's own eventfd), WEFT_EBADF (fd not
 * open), WEFT_EIO or another close(2) error (the fd is released all the same; never retry). */
WEFT_EXTERN int weft_fd_close(int fd);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
