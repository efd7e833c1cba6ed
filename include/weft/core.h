/*
 * weft/core.h — the bottom layer: error codes, the monotonic clock and deadlines, and the
 * allocation hook. Everything else in weft is built on these.
 *
 * Error convention (the whole library): a function returns int, 0 on success or a negative
 * WEFT_E* code on failure; out-values go through pointers. Codes that have an errno
 * equivalent are that errno negated (WEFT_EINVAL == -EINVAL), libuv-style; weft's own codes
 * live below -4000. Every errno a system call gives weft goes through one converter: one of
 * the list below keeps its number, any other becomes WEFT_ESYSTEM, so every code a weft call
 * returns has a name (weft_error_name) and a message (weft_error_message). weft never sets errno as
 * its way of reporting and never aborts on bad input.
 *
 * Timeouts are double seconds as in Python, the same in every call that takes one:
 *   WEFT_FOREVER (-infinity)  blocks without limit; it is the only value that does;
 *   0 or any other negative   polls: the deadline has already passed (so a computed
 *                             `deadline - now` that went negative never blocks forever);
 *   a positive value          waits at most that long; more than ~292 years, or +inf, is
 *                             forever too;
 *   NaN                       WEFT_EINVAL.
 * A wait whose deadline passes, including a failed poll, returns WEFT_ETIMEDOUT. Every call
 * converts its timeout with weft_deadline_after() below, so the rules cannot differ between calls.
 *
 * Safety: every function here is safe from any thread or coroutine at once, and after fork;
 * the clock, deadline and error-name calls are also async-signal-safe. weft_allocator_set is
 * the exception: see its own rule below.
 */
#ifndef WEFT_CORE_H
#define WEFT_CORE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#if !defined(__GNUC__) && !defined(__clang__)
#include <math.h> /* HUGE_VAL, for WEFT_FOREVER */
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the public functions: exported from the shared library while weft is built, empty
 * for its callers. */
#if defined(WEFT_BUILDING) && defined(__GNUC__)
#define WEFT_EXTERN __attribute__((visibility("default")))
#else
#define WEFT_EXTERN
#endif

/* On the calls whose result must not be dropped (docs/API.md, "Results that must be used"):
 * constructors that can fail, data transfers, and result getters. gcc and clang warn when a
 * caller ignores the result; a (void) cast does not silence gcc: check the code. */
#if defined(__GNUC__) || defined(__clang__)
#define WEFT_NODISCARD __attribute__((warn_unused_result))
#else
#define WEFT_NODISCARD
#endif

/* _Atomic fields in public structs, spelled so C++ can still include the headers (same size
 * and alignment as the plain type on every supported target). Never touch them directly. */
#ifdef __cplusplus
#define WEFT__ATOMIC(T) T
#else
#define WEFT__ATOMIC(T) _Atomic(T)
#endif

/* An intrusive list (a head and a tail of nodes embedded in the elements), declared here only
 * so that public caller-allocated objects can embed one (a wait queue inside a Lock). Private:
 * weft's own code alone links and unlinks them. Zero-initialised is an empty list. */
struct weft__list_node {
    struct weft__list_node *next, *prev;
};
struct weft__list {
    struct weft__list_node *head, *tail;
};

/* The one list of error codes: errno-backed ones, then weft's own. weft_error_message() and
 * weft_error_name() are generated from it, so they cannot drift. */
#define WEFT_ERRNO_MAP(XX)                                                                         \
    XX(EPERM, "operation not permitted")                                                           \
    XX(ENOENT, "no such file or directory")                                                        \
    XX(ESRCH, "no such process")                                                                   \
    XX(EINTR, "interrupted system call")                                                           \
    XX(EIO, "i/o error")                                                                           \
    XX(EBADF, "bad file descriptor")                                                               \
    XX(ECHILD, "no child processes")                                                               \
    XX(EAGAIN, "resource temporarily unavailable")                                                 \
    XX(ENOMEM, "out of memory")                                                                    \
    XX(EACCES, "permission denied")                                                                \
    XX(EFAULT, "bad address")                                                                      \
    XX(EBUSY, "resource busy or locked")                                                           \
    XX(EEXIST, "already exists")                                                                   \
    XX(EINVAL, "invalid argument")                                                                 \
    XX(EMFILE, "too many open files")                                                              \
    XX(ENOSPC, "no space left")                                                                    \
    XX(EPIPE, "broken pipe")                                                                       \
    XX(ERANGE, "result out of range")                                                              \
    XX(EDEADLK, "resource deadlock would occur")                                                   \
    XX(ENOSYS, "function not implemented")                                                         \
    XX(EOVERFLOW, "value too large for its type or bound")                                         \
    XX(ENOTSUP, "operation not supported")                                                         \
    XX(ECONNRESET, "connection reset by peer")                                                     \
    XX(ESHUTDOWN, "shut down")                                                                     \
    XX(ETIMEDOUT, "timed out")                                                                     \
    XX(ECONNREFUSED, "connection refused")                                                         \
    XX(EALREADY, "operation already done or in progress")                                          \
    XX(ECANCELED, "operation canceled")                                                            \
    XX(EOWNERDEAD, "previous owner died")                                                          \
    XX(ENOTSOCK, "socket operation on non-socket")                                                 \
    XX(ENOTCONN, "socket is not connected")                                                        \
    XX(EADDRINUSE, "address already in use")                                                       \
    XX(ECONNABORTED, "connection aborted")                                                         \
    XX(ENETUNREACH, "network is unreachable")                                                      \
    XX(EHOSTUNREACH, "host is unreachable")                                                        \
    XX(EMSGSIZE, "message too long")                                                               \
    XX(ENXIO, "no such device or address")                                                         \
    XX(E2BIG, "argument list too long")                                                            \
    XX(ENOEXEC, "exec format error")                                                               \
    XX(EXDEV, "cross-device link")                                                                 \
    XX(ENODEV, "no such device")                                                                   \
    XX(ENOTDIR, "not a directory")                                                                 \
    XX(EISDIR, "is a directory")                                                                   \
    XX(ENFILE, "too many open files in the system")                                                \
    XX(ENOTTY, "inappropriate ioctl for device")                                                   \
    XX(ETXTBSY, "text file busy")                                                                  \
    XX(EFBIG, "file too large")                                                                    \
    XX(ESPIPE, "illegal seek")                                                                     \
    XX(EROFS, "read-only file system")                                                             \
    XX(EMLINK, "too many links")                                                                   \
    XX(ENAMETOOLONG, "name too long")                                                              \
    XX(ENOLCK, "no locks available")                                                               \
    XX(ENOTEMPTY, "directory not empty")                                                           \
    XX(ELOOP, "too many symbolic links encountered")                                               \
    XX(ENODATA, "no data available")                                                               \
    XX(EPROTO, "protocol error")                                                                   \
    XX(EBADMSG, "bad message")                                                                     \
    XX(EILSEQ, "illegal byte sequence")                                                            \
    XX(EDESTADDRREQ, "destination address required")                                               \
    XX(EPROTOTYPE, "protocol wrong type for socket")                                               \
    XX(ENOPROTOOPT, "protocol not available")                                                      \
    XX(EPROTONOSUPPORT, "protocol not supported")                                                  \
    XX(ESOCKTNOSUPPORT, "socket type not supported")                                               \
    XX(EAFNOSUPPORT, "address family not supported")                                               \
    XX(EADDRNOTAVAIL, "address not available")                                                     \
    XX(ENETDOWN, "network is down")                                                                \
    XX(ENETRESET, "connection reset by network")                                                   \
    XX(ENOBUFS, "no buffer space available")                                                       \
    XX(EISCONN, "socket is already connected")                                                     \
    XX(EHOSTDOWN, "host is down")                                                                  \
    XX(EINPROGRESS, "operation in progress")                                                       \
    XX(ESTALE, "stale file handle")                                                                \
    XX(EDQUOT, "disk quota exceeded")                                                              \
    XX(ENOTRECOVERABLE, "state not recoverable")

/* weft's own codes, below -4000: XX(name, value, message). */
#define WEFT_OWN_ERROR_MAP(XX)                                                                     \
    XX(EBROKEN, -4001, "broken (barrier aborted, reset or timed out)")                             \
    XX(EEOF, -4002, "end of file")                                                                 \
    XX(EWORKERDIED, -4003, "worker died while running the task")                                   \
    XX(ETASKFAILED, -4004, "a task of the scope failed")                                           \
    XX(ESYSTEM, -4090, "unexpected system error (an errno weft does not name)")

enum {
#define WEFT__ERRNO_ENUM(name, msg) WEFT_##name = -name,
    WEFT_ERRNO_MAP(WEFT__ERRNO_ENUM)
#undef WEFT__ERRNO_ENUM
#define WEFT__OWN_ENUM(name, value, msg) WEFT_##name = value,
        WEFT_OWN_ERROR_MAP(WEFT__OWN_ENUM)
#undef WEFT__OWN_ENUM
};

/* A message for an error code ("timed out"). Safe from any thread, coroutine or signal
 * handler, and after fork.
 * code: a WEFT_E* code (any int is accepted).
 * Returns a static string (never free it), never NULL; "unknown error" for a code weft does
 * not know. */
WEFT_EXTERN const char *weft_error_message(int code);

/* The code's name ("WEFT_ETIMEDOUT"). Same safety as weft_error_message.
 * code: a WEFT_E* code (any int is accepted).
 * Returns a static string (never free it), never NULL; "WEFT_UNKNOWN" for a code weft does
 * not know. */
WEFT_EXTERN const char *weft_error_name(int code);

/* ---- clock and deadlines ---------------------------------------------------------------- */

/* Blocks without limit when passed as a timeout; the only value that does. It is -infinity, a
 * value no arithmetic on finite timeouts produces (a deadline minus now that went negative is
 * an expired deadline, not "forever"). A constant expression in C and C++. */
#if defined(__GNUC__) || defined(__clang__)
#define WEFT_FOREVER (-__builtin_inf())
#else
#define WEFT_FOREVER (-HUGE_VAL) /* <math.h>, included above */
#endif

/* CLOCK_MONOTONIC now, in nanoseconds / in seconds (Python's time.monotonic()).
 * Safe everywhere, including signal handlers.
 * Returns the time since an arbitrary fixed origin: nanoseconds / seconds. */
WEFT_EXTERN int64_t weft_time_monotonic_ns(void);
WEFT_EXTERN double weft_time_monotonic(void);

/* A deadline: one timeout turned into a point in time (on the monotonic clock), so that several
 * waits can share one overall limit, or a timer can be started at it (weft_timer_start_at).
 * Opaque: made by weft_deadline_after, moved by weft_deadline_add, read by
 * weft_deadline_remaining; never touch its field. A plain value of 8 bytes (fixed for 1.x):
 * copy it, keep it anywhere, pass it by value. Every deadline is either a point in time or
 * "never" (made from WEFT_FOREVER, or from a timeout too large to represent). */
typedef struct weft_deadline {
    int64_t at_ns_; /* private */
} weft_deadline_t;

/* Turns a timeout in seconds into a deadline, the one conversion every weft call uses.
 * Safe everywhere (any thread or coroutine, signal handlers, after fork).
 * timeout: seconds: WEFT_FOREVER → never; 0 or any other negative value → now (already
 *     passed); positive → now + timeout, saturating to never (more than ~292 years, +inf).
 * deadline: receives the deadline.
 * Returns 0, or WEFT_EINVAL for a NaN timeout or a NULL deadline (then nothing is written). */
WEFT_EXTERN int weft_deadline_after(double timeout, weft_deadline_t *deadline);

/* Moves *deadline by `seconds` (negative: earlier), for a periodic timer that restarts itself
 * at its previous deadline + period so that it does not drift. Safe everywhere.
 * deadline: the deadline to move, in place. Never stays never; a result too large to
 *     represent makes it never; a result before the clock's origin is "already passed".
 * seconds: how far to move it (negative: earlier); ±infinity (WEFT_FOREVER included) makes it
 *     never.
 * Returns 0, or WEFT_EINVAL for NULL or NaN (then *deadline is unchanged). */
WEFT_EXTERN int weft_deadline_add(weft_deadline_t *deadline, double seconds);

/* Seconds left until a deadline. Pass it on as the timeout of the next call to keep one
 * overall deadline across several waits (as Python's Condition.wait_for does). Safe everywhere.
 * deadline: the deadline (from weft_deadline_after).
 * Returns the seconds left; WEFT_FOREVER for never, 0 once it has passed. */
WEFT_EXTERN double weft_deadline_remaining(weft_deadline_t deadline);

/* ---- allocation hook -------------------------------------------------------------------- */

/* The allocation functions weft_allocator_set takes: malloc, realloc, calloc and free's
 * signatures and contracts. */
typedef void *(*weft_malloc_fn)(size_t size);
typedef void *(*weft_realloc_fn)(void *ptr, size_t size);
typedef void *(*weft_calloc_fn)(size_t count, size_t size);
typedef void (*weft_free_fn)(void *ptr);

/* Replaces the allocator every weft allocation goes through (libuv's uv_replace_allocator).
 * All four NULL restores libc's.
 * NOT thread-safe: call it before weft is used from more than one thread, and never while
 * weft holds memory from the previous allocator (it would be freed with the new one).
 * Tests use it to make the Nth allocation fail: every weft function that allocates returns
 * WEFT_ENOMEM then and leaves nothing behind.
 * malloc_fn: replaces malloc (same contract).
 * realloc_fn: replaces realloc (same contract).
 * calloc_fn: replaces calloc (same contract).
 * free_fn: replaces free (same contract).
 * Returns 0, or WEFT_EINVAL if only some are NULL (then nothing changes). */
WEFT_EXTERN int weft_allocator_set(weft_malloc_fn malloc_fn, weft_realloc_fn realloc_fn,
                                   weft_calloc_fn calloc_fn, weft_free_fn free_fn);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_CORE_H */
