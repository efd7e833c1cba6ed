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
 * Closing: weft_close (and, when patched, close(2), dup2(2) and dup3(2) onto the number) ends
 * every wait on the fd, in every hub and every thread of the process: each waiter returns
 * WEFT_EBADF at once, and no hub watches the number any more when the close returns, so no
 * waiter ever sees the events of the fd that takes the number next. A wait that starts while
 * the close runs waits for it, then starts over on whatever fd has the number then. A plain
 * close(2) (unpatched) wakes nobody: use weft_close for an fd anybody may wait on.
 *
 * Pollers (the seed's IO models): "select", "poll", "epoll", "io_uring" (when built with
 * liburing and the kernel allows it). One per hub, chosen when the hub is created: the name
 * given to weft_poller_set, else the WEFT_POLLER environment variable (read as secure_getenv
 * reads it: ignored in a setuid/setgid or file-capability program), else epoll (cheapest
 * per wait for sockets: its interest persists), else io_uring, poll, select. select cannot
 * watch fds >= FD_SETSIZE (1024): WEFT_EINVAL.
 *
 * Non-blocking mode: weft_read/weft_write on a non-socket fd set O_NONBLOCK on it (shared with
 * every holder of the open file, as gevent does); sockets are used with MSG_DONTWAIT and keep
 * their mode.
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

/* Event bits for weft_wait_fd. */
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

/* Waits until fd is ready for one of `events` (WEFT_READ | WEFT_WRITE) and returns the ready
 * ones (> 0). Errors: WEFT_EINVAL (fd < 0, events empty, timeout NaN), WEFT_EBADF (fd not
 * open, or closed by weft_close while waiting), WEFT_ETIMEDOUT, WEFT_ECANCELED. Any number of
 * coroutines may wait on one fd; a readiness wakes them all. */
WEFT_EXTERN int weft_wait_fd(int fd, int events, double timeout);

/* read(2) that waits for data: returns bytes read (> 0), 0 at EOF, or a negative code
 * (WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_EBADF, WEFT_ECONNRESET, ...). */
WEFT_EXTERN ssize_t weft_read(int fd, void *buf, size_t n, double timeout);

/* Writes all n bytes, waiting for room as needed. Returns n; or, when an error or the timeout
 * came after part was written, the part (call again to learn the error); or a negative code
 * when nothing was written (WEFT_EPIPE for a reader gone: never a SIGPIPE death). */
WEFT_EXTERN ssize_t weft_write(int fd, const void *buf, size_t n, double timeout);

/* recv(2) / send(2) for sockets, with the same rules as weft_read / weft_write (flags are
 * passed on; MSG_NOSIGNAL and MSG_DONTWAIT are added). */
WEFT_EXTERN ssize_t weft_recv(int fd, void *buf, size_t n, int flags, double timeout);
WEFT_EXTERN ssize_t weft_send(int fd, const void *buf, size_t n, int flags, double timeout);

/* accept(2) that waits for a connection; the new fd is close-on-exec. Returns it (>= 0) or a
 * negative code. */
WEFT_EXTERN int weft_accept(int fd, struct sockaddr *addr, socklen_t *len, double timeout);

/* connect(2) that waits for the connection to complete: 0 or a negative code
 * (WEFT_ECONNREFUSED, WEFT_ETIMEDOUT, ...). fd is left non-blocking. */
WEFT_EXTERN int weft_connect(int fd, const struct sockaddr *addr, socklen_t len, double timeout);

/* Closes fd, first ending every wait on it in the process: the coroutines of every hub (this
 * thread's and other threads') and the threads without a hub waiting on fd in weft_wait_fd,
 * weft_read, ... return WEFT_EBADF at once. Returns 0, or WEFT_EINVAL (fd < 0, or the calling
 * hub's own eventfd), WEFT_EBADF (fd not open), WEFT_EIO or another close(2) error (the fd is
 * released all the same; never retry). Safe from any thread or coroutine; not from a signal
 * handler (it takes internal locks). In a forked child it concerns the child's waits only. */
WEFT_EXTERN int weft_close(int fd);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
