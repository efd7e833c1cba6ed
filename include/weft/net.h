/*
 * weft/net.h — TCP and Unix-socket helpers on weft's fd calls (libdill's tcp_listen /
 * tcp_connect / ipc_*), and a stream server that serves each connection in a coroutine of its
 * own (gevent.server.StreamServer).
 *
 * Addresses: "host:port" — host a numeric IPv4 address ("127.0.0.1"), a bracketed IPv6 one
 * ("[::1]:0"), a name ("localhost:8080"), or empty (":8080": every address when listening,
 * the loopback when connecting); port a decimal number 0..65535 (0 when listening: the system
 * picks a free one, see weft_tcp_local_port). Anything else is WEFT_EINVAL. A numeric host is
 * parsed here (it never waits); a name is resolved by the system resolver (getaddrinfo, on a
 * short-lived thread of its own) while the caller waits for it as for any weft object (a
 * coroutine parks, the thread runs the others), within the call's timeout (a lookup given up
 * finishes on its thread); a name that resolves to nothing is WEFT_ENXIO. Unix paths: a file path,
 * or "@name" for a name in Linux's abstract namespace (no file); longer than the address holds
 * (107 bytes): WEFT_ENAMETOOLONG.
 *
 * Every fd these calls return is non-blocking and close-on-exec, ready for weft_fd_read,
 * weft_fd_write, weft_fd_accept (weft/io.h); close it with weft_fd_close.
 *
 * Thread safety: every call may be made from any thread or coroutine. A server's calls may be
 * made from any thread (weft_server_stop from another thread, or from a weft_timer callback);
 * its accept loop and handlers run as coroutines on the hub of the thread that started it
 * (the handlers on a set of hubs instead with weft_server_opts_t.hubs).
 * Not async-signal-safe. Fork: a child does not run the parent's servers (their coroutines
 * belong to the parent's threads); it inherits their listening fds as fork shares fds. A name
 * lookup in progress at fork has no thread in the child: a wait for it there ends only by its
 * timeout.
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include "weft/core.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- TCP --------------------------------------------------------------------------------- */

/* A listening TCP socket on "host:port" (SO_REUSEADDR set; ":port" listens on every IPv6 and
 * IPv4 address where the system has IPv6, else on every IPv4 one) with `backlog` pending
 * connections at most (as listen(2); the kernel caps it): 0, the fd in *fd. Each address the
 * host resolves to is tried in turn. Errors: WEFT_EINVAL (hostport NULL or malformed, backlog
 * < 0, fd NULL), WEFT_EADDRINUSE, WEFT_EACCES (a privileged port), WEFT_ENXIO (a name that
 * resolves to nothing), WEFT_EMFILE, ...; *fd is -1 then. A name lookup may wait (without a
 * limit of its own: the resolver's).
 * hostport: "host:port" or ":port" (every address).
 * backlog: pending connections at most, >= 0 (as listen(2)).
 * fd: receives the listening socket on success (the caller's to close, or hand to
 *     weft_server_create), -1 on failure.
 * Returns 0, WEFT_EINVAL (hostport NULL or malformed, backlog < 0, fd NULL), WEFT_EADDRINUSE,
 * WEFT_EACCES (a privileged port), WEFT_ENXIO (a name that resolves to nothing), WEFT_EMFILE,
 * or another system error as a WEFT_E* code. */
WEFT_EXTERN WEFT_NODISCARD int weft_tcp_listen(const char *hostport, int backlog, int *fd);

/* Connects to "host:port" within `timeout` seconds (all addresses of the host tried in turn,
 * within the one timeout, name lookup included): 0, the connected fd in *fd. Errors:
 * WEFT_EINVAL (hostport NULL or malformed, port 0, fd NULL, timeout NaN), WEFT_ECONNREFUSED,
 * WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_ENXIO, WEFT_ENETUNREACH, ... (the last address's error);
 * *fd is -1 then.
 * hostport: "host:port"; port not 0.
 * timeout: seconds for it all, name lookup included; WEFT_FOREVER waits without a limit.
 * fd: receives the connected socket on success (the caller's to close), -1 on failure.
 * Returns 0, WEFT_EINVAL (hostport NULL or malformed, port 0, fd NULL, timeout NaN),
 * WEFT_ECONNREFUSED, WEFT_ETIMEDOUT, WEFT_ECANCELED, WEFT_ENXIO, WEFT_ENETUNREACH, or another
 * system error (the last address's). */
WEFT_EXTERN WEFT_NODISCARD int weft_tcp_connect(const char *hostport, double timeout, int *fd);

/* The local port of a TCP socket (what a listener on port 0 got): 0, the port in *port.
 * Errors: WEFT_EINVAL (fd < 0, port NULL, not an IPv4/IPv6 socket), WEFT_EBADF, WEFT_ENOTSOCK.
 * fd: the socket.
 * port: receives its local port on success.
 * Returns 0, WEFT_EINVAL (fd < 0, port NULL, not an IPv4/IPv6 socket), WEFT_EBADF (fd not
 * open), WEFT_ENOTSOCK (fd not a socket). */
WEFT_EXTERN int weft_tcp_local_port(int fd, int *port);

/* ---- Unix sockets ------------------------------------------------------------------------ */

/* A listening Unix stream socket at `path` ("@name": abstract): 0, the fd in *fd. An existing
 * file at path is WEFT_EADDRINUSE (remove it first); the socket file stays after close (unlink
 * it). Errors: WEFT_EINVAL (path NULL or empty, backlog < 0, fd NULL), WEFT_ENAMETOOLONG,
 * WEFT_EADDRINUSE, WEFT_EACCES, WEFT_ENOENT, ...; *fd is -1 then.
 * path: the socket file's path, or "@name" for an abstract socket; not empty.
 * backlog: pending connections at most, >= 0 (as listen(2)).
 * fd: receives the listening socket on success (the caller's to close), -1 on failure.
 * Returns 0, WEFT_EINVAL (path NULL or empty, backlog < 0, fd NULL), WEFT_ENAMETOOLONG,
 * WEFT_EADDRINUSE (a file exists at path), WEFT_EACCES, WEFT_ENOENT, or another system
 * error. */
WEFT_EXTERN WEFT_NODISCARD int weft_unix_listen(const char *path, int backlog, int *fd);

/* Connects to the Unix stream socket at `path` within `timeout` seconds: 0, the fd in *fd.
 * Errors: WEFT_EINVAL, WEFT_ENAMETOOLONG, WEFT_ENOENT (no socket there), WEFT_ECONNREFUSED
 * (nobody listens), WEFT_ETIMEDOUT (its backlog stayed full), WEFT_ECANCELED, ...; *fd is -1
 * then.
 * path: the socket's path, or "@name" for an abstract socket.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit.
 * fd: receives the connected socket on success (the caller's to close), -1 on failure.
 * Returns 0, WEFT_EINVAL, WEFT_ENAMETOOLONG, WEFT_ENOENT (no socket there), WEFT_ECONNREFUSED
 * (nobody listens), WEFT_ETIMEDOUT (its backlog stayed full), WEFT_ECANCELED, or another
 * system error. */
WEFT_EXTERN WEFT_NODISCARD int weft_unix_connect(const char *path, double timeout, int *fd);

/* ---- the stream server (gevent.server.StreamServer) -------------------------------------- */

typedef struct weft_server weft_server_t;

/* Serves one connection: fd is connected, non-blocking and the handler's to use until it
 * returns; the server closes it then (the handler need not close it; dup it to keep it; a
 * handler that closes it anyway costs nothing: the server closes the fd only if it is still
 * the socket it accepted, never a later connection that got the same number). A
 * handler runs as a coroutine: it may block in any weft call, and it should end when a call
 * returns WEFT_ECANCELED (weft_server_stop cancels the handlers that outlive its timeout).
 * fd: the accepted connection, borrowed until the handler returns.
 * arg: weft_server_create's arg. */
typedef void (*weft_server_handler_fn)(int fd, void *arg);

/* Server options; zero-initialised (or NULL) is the default.
 *   max_connections  handlers at once (gevent's pool size); while that many run the server
 *                    accepts no more (the kernel's backlog holds the next). 0: no limit.
 *   stack_size       the handlers' coroutine stack (weft_co_opts_t.stack_size; 0: default).
 *   hubs             NULL: the handlers run on the hub of the thread that started the server.
 *                    A set of hubs (weft_hubs_start, weft/coro.h): each accepted connection's
 *                    handler is spawned on the least loaded of them (weft_hubs_spawn), so the
 *                    connections spread over their threads; the accept loop stays on the
 *                    starting thread's hub (start the server from a coroutine of one of the
 *                    hubs to keep it there too). max_connections counts them all. The hubs
 *                    must stay running while the server does: stop the server first. A
 *                    connection accepted once the hubs refuse spawns (stopping) is closed.
 * The reserved words must be zero (room for options of later 1.x versions). */
typedef struct weft_server_opts {
    size_t max_connections; /* see above */
    size_t stack_size;      /* see above */
    struct weft_hubs *hubs; /* see above */
    uintptr_t reserved_[3];
} weft_server_opts_t;

/* Makes a server for the listening socket listen_fd (from weft_tcp_listen, weft_unix_listen or
 * your own): 0, the server in *srv; it does not run yet. From then on the server owns
 * listen_fd (weft_server_stop, or weft_server_release of a server never started, closes it).
 * Errors: WEFT_EINVAL (listen_fd < 0 or not a listening socket, handler or srv NULL, bad opts:
 * non-zero reserved words, a stack_size weft_co_spawn refuses), WEFT_ENOMEM; *srv is NULL then
 * and listen_fd stays the caller's.
 * listen_fd: a listening socket; the server's on success, still the caller's on failure.
 * handler: serves each connection; not NULL.
 * arg: passed to every handler call as is (kept alive until the server is released).
 * opts: options (weft_server_opts_t); NULL: the defaults.
 * srv: receives the server on success (free with weft_server_release), NULL on failure.
 * Returns 0, WEFT_EINVAL (listen_fd < 0 or not listening, handler or srv NULL, bad opts),
 * WEFT_ENOMEM. */
WEFT_EXTERN WEFT_NODISCARD int weft_server_create(int listen_fd, weft_server_handler_fn handler,
                                                  void *arg, const weft_server_opts_t *opts,
                                                  weft_server_t **srv);

/* Starts serving: spawns the accept loop as a coroutine on the calling thread's hub, and
 * returns at once (gevent's start). The loop accepts connections and spawns a handler
 * coroutine for each, on the same hub: the thread must go on running its hub (block in weft
 * calls, e.g. weft_server_serve_forever) for them to run. Errors: WEFT_EINVAL (NULL),
 * WEFT_EALREADY (started already), WEFT_ESHUTDOWN (stopped), WEFT_ENOMEM.
 * srv: the server.
 * Returns 0 (serving), WEFT_EINVAL (srv NULL), WEFT_EALREADY (started already),
 * WEFT_ESHUTDOWN (stopped), WEFT_ENOMEM. */
WEFT_EXTERN int weft_server_start(weft_server_t *srv);

/* Starts the server when it is not started yet, then waits until weft_server_stop has stopped
 * it (from another thread, a timer, or another coroutine): 0. Errors: WEFT_EINVAL (NULL), those
 * of weft_server_start, WEFT_ECANCELED (the caller was canceled: the server runs on), or the
 * error that ended the accept loop on its own (e.g. WEFT_EBADF for a listening fd closed under
 * it, or WEFT_EINVAL for one shut down with shutdown(2)): then stop and release it. On a
 * server stopped already: 0 at once.
 * srv: the server.
 * Returns 0 (stopped), WEFT_EINVAL (srv NULL), WEFT_ENOMEM (weft_server_start could not spawn
 * the accept loop), WEFT_ECANCELED (the caller was canceled; the server runs on), or the error
 * that ended the accept loop (e.g. WEFT_EBADF). */
WEFT_EXTERN int weft_server_serve_forever(weft_server_t *srv);

/* Stops the server (gevent's stop(timeout)): stops accepting and closes the listening fd,
 * waits up to `timeout` seconds for the handlers to return, cancels the ones still running and
 * waits for them to end (a handler that ignores the cancel holds this up). Every accepted fd is
 * closed when it returns. 0 (also when the server was stopped already: a second stop waits for
 * the first). Errors: WEFT_EINVAL (NULL, timeout NaN), WEFT_EDEADLK (called from one of the
 * server's own handlers; nothing done). A cancel of the caller only ends the graceful wait
 * early. From any thread or coroutine.
 * srv: the server.
 * timeout: seconds to wait for the handlers before canceling them; WEFT_FOREVER waits without
 *          a limit, 0 cancels at once.
 * Returns 0 (stopped), WEFT_EINVAL (srv NULL, timeout NaN), WEFT_EDEADLK (called from one of
 * its handlers; nothing done). */
WEFT_EXTERN int weft_server_stop(weft_server_t *srv, double timeout);

/* Frees the server: 0; a server never started also closes its listening fd. Errors:
 * WEFT_EINVAL (NULL), WEFT_EBUSY (started and not yet stopped: stop it first; nothing
 * happened). Call it after weft_server_serve_forever has returned.
 * srv: the server; not used after a 0.
 * Returns 0 (freed), WEFT_EINVAL (srv NULL), WEFT_EBUSY (started and not stopped). */
WEFT_EXTERN int weft_server_release(weft_server_t *srv);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_NET_H */
