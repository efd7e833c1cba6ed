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
 * accept, accept4, connect, poll, select, sleep, usleep, nanosleep; close, dup2 and dup3 (an fd
 * closed or replaced under waiting coroutines wakes them, as weft_close does); getaddrinfo
 * (resolution runs on a helper thread while the coroutine parks). Bookkeeping: socket,
 * socketpair, accept, fcntl (F_SETFL), ioctl (FIONBIO) and setsockopt (SO_RCVTIMEO,
 * SO_SNDTIMEO) keep weft's cache of each socket's mode and timeouts current, so a call about to
 * park does not ask the kernel for them; a mode changed behind libc's back (a raw system call)
 * is not seen until the fd is closed.
 *
 * Mechanism: symbol interposition. libweft defines these functions; the dynamic linker binds
 * every caller in the process — the program and every shared library it loads — to the first
 * definition, which is weft's when weft is linked into the program (statically, or as
 * libweft.so) or preloaded (LD_PRELOAD=libweft.so WEFT_PATCH=1 patches at load; WEFT_PATCH is read
 * as secure_getenv reads it, so it is ignored in a setuid/setgid or file-capability program,
 * where the environment belongs to a less privileged user). weft reaches
 * libc's own functions with dlsym(RTLD_NEXT). Calls glibc makes internally (stdio's reads)
 * do not go through the dynamic linker and are not intercepted. weft_monkey_patched() tells,
 * per call, whether the process's callers reach weft's definition.
 *
 * Semantics kept: the fd's O_NONBLOCK flag is never changed (sockets are tried with
 * MSG_DONTWAIT; other fds are waited for, then read or written); an fd the user made
 * non-blocking still returns EAGAIN at once; SO_RCVTIMEO / SO_SNDTIMEO still end a wait with
 * EAGAIN; a send or write on a blocking fd still transfers everything (or fails); a canceled
 * coroutine's call fails with EINTR (errno), as a signal would end it; SIGPIPE behaves as
 * libc's. Two coroutines of different threads accepting on one blocking listener may block a
 * thread briefly (the loser of the race sleeps in accept).
 */
#ifndef WEFT_HOOK_H
#define WEFT_HOOK_H

#include "weft/core.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Turns the interception on for the whole process (idempotent). Returns 0, or WEFT_ENOTSUP
 * when libc's functions cannot be found (a fully static program without dlsym). Safe from any
 * thread; calls in progress finish the way they started. */
WEFT_EXTERN int weft_monkey_patch(void);

/* Turns it off again (calls from then on go straight to libc). Returns 0. */
WEFT_EXTERN int weft_monkey_unpatch(void);

/* One intercepted call, as weft_monkey_patched lists it. */
typedef struct weft_patch {
    const char *name;      /* "read", "getaddrinfo", ... */
    const char *mechanism; /* "interposed", "interposed (helper thread)", or "not reached: ..." */
    bool active;           /* patched, and the process's callers reach weft's definition */
} weft_patch_t;

/* The audit: stores a pointer to a static table in *list (may be NULL) and returns its length.
 * Each entry says whether the call is intercepted now and by which mechanism. */
WEFT_EXTERN size_t weft_monkey_patched(const weft_patch_t **list);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_HOOK_H */
