/*
 * weft/hook.h — monkey patching (gevent's monkey.patch_all()): plain blocking libc calls made
 * inside coroutines park only the coroutine.
 *
 * After weft_monkey_patch(), a blocking call of the list below made by a coroutine (or by a
 * thread's root context once the thread has coroutines) waits through the thread's hub, so
 * unmodified blocking code — your own, or a third-party client library's — runs concurrently
 * in coroutines on one thread. Called outside coroutines, before patching, or on an fd the
 * caller made non-blocking, every call behaves exactly as libc's (it is passed straight on).
 *
 * The calls: read, write, readv, writev, recv, recvfrom, recvmsg, send, sendto, sendmsg,
 * accept, accept4, connect, poll, select, sleep, usleep, nanosleep; close, dup2, dup3, fclose
 * and pclose (an fd closed or replaced under waiting coroutines wakes them, and no poller
 * watches it any more, as weft_fd_close does); getaddrinfo
 * (resolution runs on a helper thread while the coroutine parks); socket and socketpair (a new
 * socket starts with no hint from the number's earlier holder).
 *
 * What weft remembers never changes a result. The fd's mode (O_NONBLOCK) and SO_RCVTIMEO /
 * SO_SNDTIMEO are asked of the kernel by the call that is about to park, so a mode changed
 * through another fd of the same open file, by another process, or by a raw system call counts
 * at once, and a number closed where weft cannot see it (fclose, closedir, pclose, glibc's own
 * closes, syscall(SYS_close)) and reused by a pipe, socket, eventfd or file behaves as that
 * file. The one thing kept per fd number is a hint — the socket's last read took less than it
 * asked — on which the next blocking read of it waits for the poller before trying; it is
 * followed only once the kernel has said, in that call, that the fd is an open blocking socket,
 * so a stale hint costs a trip through the poller at most. (The exception: a listening socket
 * that reaches such a number without weft's socket() or close() seeing it, then read from by
 * mistake, fails with ENOTCONN only when a connection arrives or SO_RCVTIMEO passes.) A close
 * that no hook sees (closedir's, glibc's own, syscall(SYS_close)) of an fd a coroutine WAITED
 * on leaves the poller believing it watches that number: close such fds with close(),
 * fclose(), pclose() or weft_fd_close(), or a wait on the fd that takes the number next may not
 * end (with epoll, which drops a closed file silently).
 *
 * Mechanism: symbol interposition. libweft defines these functions; the dynamic linker binds
 * every caller in the process — the program and every shared library it loads — to the first
 * definition, which is weft's when weft is linked into the program (statically, or as
 * libweft.so) or preloaded (LD_PRELOAD=libweft.so WEFT_PATCH=1 patches at load; WEFT_PATCH is
 * read as secure_getenv reads it, so it is ignored in a setuid/setgid or file-capability
 * program, where the environment belongs to a less privileged user). weft reaches libc's own
 * functions with dlsym(RTLD_NEXT). Calls glibc makes internally (stdio's reads) do not go
 * through the dynamic linker and are not intercepted. weft_monkey_patched() tells, per call,
 * whether the process's callers reach weft's definition.
 *
 * Semantics kept: the fd's O_NONBLOCK flag is never changed, not even for a moment (sockets
 * are tried with MSG_DONTWAIT; other fds are waited for, then read or written; a blocking
 * connect on a stream socket is the kernel's own, run on a helper thread while the coroutine
 * parks, so SO_SNDTIMEO and every error are the kernel's and a dup'ed fd or a forked child
 * sharing the open file never sees O_NONBLOCK); an fd the user made non-blocking still returns
 * EAGAIN at once; SO_RCVTIMEO / SO_SNDTIMEO still end a wait with EAGAIN; a send or write on a
 * blocking fd still transfers everything (or fails); poll and select return 0 only once their
 * timeout has passed (a readiness another coroutine consumed first sends them back to waiting);
 * a canceled coroutine's call fails with EINTR (errno), as a signal would end it (a canceled
 * connect goes on in the background, as POSIX says of an interrupted one); SIGPIPE behaves as
 * libc's. Two coroutines of different threads accepting on one blocking listener may block a
 * thread briefly (the loser of the race sleeps in accept). Known limit: under the select
 * poller (WEFT_POLLER=select), a patched poll or select waits through a private epoll fd, and
 * in a process holding more than FD_SETSIZE (1,024) fds that fd's number can be past what
 * select watches: the call then fails with EINVAL where libc's would work (libcurl reports
 * CURLE_BAD_FUNCTION_ARGUMENT). Use the default poller in such processes.
 *
 * Helper threads: getaddrinfo and connect run on up to 64 daemon threads ("weft-helper",
 * started on demand, gone after a second idle). When none can be started (or no fd is left for
 * the connect's duplicate), the call runs on the caller's thread, blocking it, and still
 * returns libc's answer.
 *
 * Safety: weft_monkey_patch, weft_monkey_unpatch and weft_monkey_patched are safe from any
 * thread or coroutine at any time (a call in progress finishes the way it started); they are
 * not async-signal-safe. The intercepted calls keep libc's own safety: called from a signal
 * handler or in a thread without coroutines they are libc's calls, passed straight on. Fork:
 * the patch stays on in the child, whose forking thread keeps its hub; helper threads are not
 * copied (new ones start on demand).
 */
#ifndef WEFT_HOOK_H
#define WEFT_HOOK_H

#include "weft/core.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Turns the interception on for the whole process (idempotent). Safe from any thread; calls
 * in progress finish the way they started.
 * Returns 0 (patched, or already was), WEFT_ENOTSUP (libc's functions cannot be found: a fully
 * static program without dlsym; the patch is not turned on). */
WEFT_EXTERN int weft_monkey_patch(void);

/* Turns it off again (calls from then on go straight to libc). Idempotent.
 * Returns 0, always (also when the interception was not on). */
WEFT_EXTERN int weft_monkey_unpatch(void);

/* One intercepted call, as weft_monkey_patched lists it. */
typedef struct weft_patch {
    const char *name; /* "read", "getaddrinfo", ... */
    /* How a call reaches weft: "interposed"; for getaddrinfo "interposed (resolved on a helper
     * thread)"; for connect "interposed (stream sockets: connected on a helper thread)"; or
     * "not reached: another definition comes first" when a caller elsewhere in the process
     * binds to a definition other than weft's. */
    const char *mechanism;
    bool active; /* patched, and the process's callers reach weft's definition */
} weft_patch_t;

/* The audit: each entry of a static table says whether its call is intercepted now and by
 * which mechanism (each call refreshes the table).
 * list: receives a pointer to the table (static: never freed, valid for the process's life);
 *   NULL: only the length is returned.
 * Returns the number of entries in the table (the number of intercepted calls). */
WEFT_EXTERN size_t weft_monkey_patched(const weft_patch_t **list);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_HOOK_H */
