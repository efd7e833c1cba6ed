/*
 * weft/thread.h — Python's threading.Thread for C: OS threads with names, daemon flags,
 * join with a timeout, the registry behind current_thread / active_count / enumerate,
 * thread-local data (threading.local), and Python's exit rule.
 *
 * A weft_thread_t is a library-allocated, reference-counted record. weft_thread_start hands
 * the caller one reference (its handle); the running thread holds another until it finishes;
 * weft_thread_enumerate hands out more. Release each with weft_thread_release — the record is
 * freed when the last reference goes, so a released running thread simply runs on detached.
 * weft_thread_current and weft_thread_main return BORROWED pointers (no reference), valid
 * while that thread lives; take weft_thread_retain before keeping or joining one elsewhere.
 *
 * Three kinds of record are listed while their thread lives:
 *   - threads started with weft_thread_start ("Thread-N" unless named);
 *   - the main thread ("MainThread"), a static record, always listed;
 *   - a "dummy" ("Dummy-N", daemon) for a thread weft did not start that called
 *     weft_thread_current or set a thread-local value (Python's _DummyThread); it leaves the
 *     list, and its thread-local values are destroyed, when that thread exits.
 *
 * The exit rule (Python's): when the process exits normally (return from main, or exit()),
 * every non-daemon thread started with weft_thread_start is joined first, then exit goes on.
 * Daemon threads are not waited for: they vanish with the process, mid-work. The join runs in
 * an atexit handler registered by the first weft_thread_start, so atexit handlers registered
 * AFTER that run before the join (while non-daemon threads still run); _exit() and
 * quick_exit() skip the rule. A non-daemon thread that never finishes makes exit hang, as
 * in Python.
 *
 * Blocking (join, and the start handshake) goes through weft's waiting core: from a coroutine
 * it will park only the coroutine. Waits take a timeout in seconds (WEFT_FOREVER blocks,
 * 0 or any other negative value polls; see weft/core.h) and return 0, WEFT_ETIMEDOUT,
 * WEFT_ECANCELED (the caller's task was canceled) or WEFT_EINVAL (NULL / NaN).
 *
 * Fork: in the child only the forking thread exists, and the registry says so: active_count
 * is 1, enumerate lists that thread alone, and it becomes weft_thread_main() (as Python, even
 * when a non-main thread forked). Records of the threads left behind read as finished (join
 * returns 0 at once, is_alive is false); their thread-local values are dropped without
 * running destructors. Handles held across fork stay valid and must still be released.
 * One gap: a record that another thread was joining or polling (is_alive) at the very instant
 * of fork, and that is no longer listed (its thread already finished), may keep its internal
 * lock held in the child, where joining it then blocks.
 *
 * Signal handlers may call weft_thread_ident, weft_thread_name, weft_thread_is_daemon and
 * weft_thread_local_get; nothing else here is async-signal-safe.
 */
#ifndef WEFT_THREAD_H
#define WEFT_THREAD_H

#include <stdbool.h>
#include <stddef.h>

#include "weft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A thread handle (threading.Thread). */
typedef struct weft_thread weft_thread_t;

/* Longest thread name, NUL included (63 characters). The OS (comm, ps, gdb) sees only the
 * first 15 bytes. */
#define WEFT_THREAD_NAME_MAX 64

/* How to start a thread. Zero-initialised (or a NULL opts) is Python's default: name
 * "Thread-N", non-daemon, the default stack size.
 *   name        copied; NULL or "" picks "Thread-N"; longer than 63 characters is WEFT_EINVAL
 *   daemon      not waited for at exit (unlike Python, NOT inherited from the creator: false
 *               means non-daemon)
 *   stack_size  bytes; 0 is the default (RLIMIT_STACK, usually 8 MiB); below
 *               PTHREAD_STACK_MIN is WEFT_EINVAL; glibc carves the thread's static TLS out
 *               of it, so ask for some room beyond what the function itself needs */
typedef struct weft_thread_opts {
    const char *name;      /* see above */
    bool daemon;           /* see above */
    size_t stack_size;     /* see above */
    uint64_t reserved_[5]; /* room to grow in 1.x; zero-initialise opts: {0} or {.field = ...} */
} weft_thread_opts_t;

/* ---- starting and joining ----------------------------------------------------------------*/

/* Starts an OS thread running fn(arg) and stores a handle in *t (one reference: release it).
 * The call returns once the thread runs, so its ident is known and is_alive is true (as
 * Python's start()). The first start registers the exit rule's atexit handler.
 * Safe from any thread or coroutine (the wait for the new thread cannot be canceled).
 * fn: the thread's function, not NULL. It may end by returning or by pthread_exit; the thread
 * counts as finished either way.
 * arg: passed to fn; the caller keeps it valid for as long as fn uses it.
 * opts: name, daemon flag and stack size (weft_thread_opts_t above), read during the call;
 * NULL: the defaults.
 * t: receives the handle on success; NULL on failure.
 * Returns 0 (started), WEFT_EINVAL (t or fn NULL, name too long, stack size too small),
 * WEFT_ENOMEM, WEFT_EAGAIN (the OS refused another thread) — then *t is NULL and nothing is
 * left behind. */
WEFT_EXTERN WEFT_NODISCARD int weft_thread_start(void (*fn)(void *arg), void *arg,
                                                 const weft_thread_opts_t *opts, weft_thread_t **t);

/* Waits until t has finished: fn returned and its thread-local destructors ran. Any number of
 * threads and coroutines may join the same thread at once. The main thread and dummy threads
 * can be joined too: the former finishes never (the process ends with it), a dummy when its
 * thread exits.
 * t: the thread; the caller must hold a reference to it.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 * value) only checks.
 * Returns 0 once t has finished (then at once, forever after), WEFT_ETIMEDOUT, WEFT_ECANCELED,
 * WEFT_EINVAL (t NULL, timeout NaN), WEFT_EDEADLK when t is the calling thread (Python's
 * RuntimeError "cannot join current thread") or a coroutine's hub has nothing left to wake it
 * (weft/coro.h). */
WEFT_EXTERN int weft_thread_join(weft_thread_t *t, double timeout);

/* Whether t is still running (a snapshot): true from the return of weft_thread_start until
 * fn has returned and its thread-local destructors have run — when join would return 0.
 * t: the thread; the caller holds a reference (or a borrowed pointer while it lives).
 * Returns true while it runs: always for weft_thread_main() and every listed thread; false
 * once it has finished, or for NULL. */
WEFT_EXTERN bool weft_thread_is_alive(weft_thread_t *t);

/* Adds a reference to t (none for the main thread's static record).
 * t: the thread, a handle or a borrowed pointer to a live thread; NULL does nothing.
 * Returns t, a handle the caller releases with weft_thread_release (NULL for NULL). */
WEFT_EXTERN weft_thread_t *weft_thread_retain(weft_thread_t *t);

/* Drops one reference; the record is freed with the last one. Releasing the handle of a
 * running thread detaches it: it runs on and cleans up after itself. Never release a borrowed
 * pointer (current, main) you did not retain. The main thread's static record ignores retain
 * and release.
 * t: the handle; not to be used again after the call.
 * Returns 0, WEFT_EINVAL (t NULL). */
WEFT_EXTERN int weft_thread_release(weft_thread_t *t);

/* ---- attributes ---------------------------------------------------------------------------*/

/* The thread's OS thread id (gettid(), Python's native_id; also what weft uses as ident).
 * Known from the moment weft_thread_start returns and kept after the thread finishes; the OS
 * may reuse it for a later thread.
 * t: the thread.
 * Returns the id; -1 for NULL. */
WEFT_EXTERN long weft_thread_ident(const weft_thread_t *t);

/* The name: "Thread-N", "MainThread", "Dummy-N" or the one given.
 * t: the thread.
 * Returns the name, owned by t: valid while the caller holds a reference (or the thread
 * lives, for a borrowed pointer); NULL for NULL. */
WEFT_EXTERN const char *weft_thread_name(const weft_thread_t *t);

/* Whether the exit rule skips t. Dummy threads are daemons; the main thread is not.
 * t: the thread.
 * Returns true for a daemon; false otherwise, or for NULL. */
WEFT_EXTERN bool weft_thread_is_daemon(const weft_thread_t *t);

/* ---- the registry -------------------------------------------------------------------------*/

/* The calling thread's record (Python's current_thread()). For a thread weft did not start,
 * the first call registers a dummy record. From a coroutine: the OS thread's record.
 * Returns the record, BORROWED (valid while this thread lives; retain it to keep it); NULL if
 * the dummy record cannot be allocated (the only failure). */
WEFT_EXTERN weft_thread_t *weft_thread_current(void);

/* The main thread's record (Python's main_thread()). In a fork child it is the forking
 * thread's record instead.
 * Returns the record, BORROWED, never NULL: a static record that is never freed. */
WEFT_EXTERN weft_thread_t *weft_thread_main(void);

/* How many threads are alive (Python's active_count()).
 * Returns the count (a snapshot): the main thread, every started thread whose fn has not
 * finished, and every live dummy. */
WEFT_EXTERN size_t weft_thread_active_count(void);

/* Lists the threads alive (Python's enumerate()), in the order they registered (main first).
 * A snapshot: a listed thread may finish right after.
 * out: receives up to cap RETAINED handles in out[0 .. min(cap, *count)-1] — release each;
 * NULL with cap 0 only counts.
 * cap: how many handles out has room for.
 * count: receives the total, which may exceed cap; untouched on failure.
 * Returns 0, WEFT_EINVAL (count NULL, or out NULL with cap > 0). */
WEFT_EXTERN int weft_thread_enumerate(weft_thread_t **out, size_t cap, size_t *count);

/* ---- thread-local data ---------------------------------------------------------------------
 * A weft_thread_local_t is one pointer-sized value per thread (threading.local; a pthread key
 * with Python's lifetime rules). Every thread starts with NULL. A destructor, if given, is
 * called with each non-NULL value left behind:
 *   - when its thread exits: a weft thread (after fn, before join returns), or any other
 *     thread that stored a value (through its dummy record, at pthread exit);
 *   - by weft_thread_local_release, for every thread's value still set (in the caller).
 * Overwriting or clearing a value with set does not call the destructor (as pthread). A
 * destructor may set values again; after four rounds the rest are dropped (as pthread).
 * Values are per OS thread, shared by the coroutines running on it. Values still held by the
 * main thread when the process exits are not destroyed. */
typedef struct weft_thread_local weft_thread_local_t;

/* Creates a slot.
 * destructor: called with each non-NULL value left behind (above); NULL: none.
 * out: receives the slot on success (release it with weft_thread_local_release); NULL on
 * failure.
 * Returns 0, WEFT_EINVAL (out NULL), WEFT_ENOMEM. */
WEFT_EXTERN WEFT_NODISCARD int weft_thread_local_create(void (*destructor)(void *value),
                                                        weft_thread_local_t **out);

/* The calling thread's value. Never allocates, never locks: a TLS load and an array read.
 * Async-signal-safe.
 * l: the slot.
 * Returns the value, NULL if none (or l NULL). */
WEFT_EXTERN void *weft_thread_local_get(const weft_thread_local_t *l);

/* Stores the calling thread's value.
 * l: the slot.
 * value: the value; the destructor, if any, gets it if it is left behind (above); NULL clears
 * it.
 * Returns 0, WEFT_EINVAL (l NULL), WEFT_ENOMEM (this thread's value array could not grow, or —
 * for a thread weft did not start — its dummy record could not be allocated); the old value
 * is kept then. */
WEFT_EXTERN int weft_thread_local_set(weft_thread_local_t *l, void *value);

/* Runs the destructor on every thread's remaining value, here in the caller, then frees the
 * slot. A destructor already running in an exiting thread may still be running when release
 * returns. Must not race with get/set of the same l (as any release).
 * l: the slot; not to be used again after the call.
 * Returns 0, WEFT_EINVAL (l NULL). */
WEFT_EXTERN int weft_thread_local_release(weft_thread_local_t *l);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_THREAD_H */
