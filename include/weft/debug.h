/*
 * weft/debug.h — seeing inside a running program: what its tasks (threads, coroutines) are
 * blocked on, and the deadlocks among them.
 */
#ifndef WEFT_DEBUG_H
#define WEFT_DEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "weft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- deadlock reports ---------------------------------------------------------------------
 * The wait-for graph of the tasks blocked in weft waits: a task points at the task that owns
 * what it waits on — the one holding a Lock or RLock (never for a process-shared one), the
 * thread or coroutine it joins, the task running the Future it waits for. A cycle is a
 * deadlock, reported in one line naming tasks and objects (names from weft_thread_start,
 * weft_co_spawn and the objects' _set_name; an unnamed object by its address):
 *
 *   weft: deadlock: thread 'a' waits for Lock 'x' held by coroutine 'b', which waits for
 *   Lock 'y' held by thread 'a': a cycle, none of them can go on
 *
 * A blocked task outside every cycle that waits on an object nobody owns by nature (a Queue,
 * an Event, a Semaphore, a Condition, a Barrier, a Future nobody runs yet, a process Queue, a
 * Pipe) is reported as starvation, as what is seen, not as a prophecy:
 *
 *   weft: starvation: thread 'w' (blocked 2.004 s) waits for Queue 'jobs' get; no task holds
 *   or feeds it
 *
 * "(blocked N s)" appears when park times are stamped (the watchdog turns the stamps on).
 * Tasks seen: every thread that has blocked in a weft wait (weft threads by their names,
 * others by their kernel name), and the coroutines of the caller's own hub (the watchdog,
 * which runs on no hub, sees threads only). A task blocked on something the report does not
 * see (a coroutine of another hub) ends the chain there.
 *
 * Three ways to get it:
 * - When a hub finds that nothing can wake its coroutines (their waits then fail with
 *   WEFT_EDEADLK, weft/coro.h), it prints the report first, to the report file.
 * - WEFT_DEADLOCK_CHECK=<seconds> in the environment (read at load), or
 *   weft_debug_deadlock_check_start: a watchdog thread looks every quarter threshold (at least
 *   every 10 ms, at most every second) and reports, to the report file, the cycles whose
 *   tasks have all been blocked longer than the threshold and the starving tasks blocked
 *   longer than it; each situation once (a new episode — a task that woke and blocked
 *   again — is a new situation). It turns on the park time stamps (one clock read per park).
 *   Its thread is an internal one (not a weft thread); while it runs, a hub's "nothing can
 *   wake us" check sees another thread and does not fire, so hubs rely on it instead.
 * - weft_debug_deadlocks, on demand.
 */

/* Where the hub's and the watchdog's reports go: out (the program keeps it open while
 * reports may come), NULL for stderr (the default). Always 0. From any thread. */
WEFT_EXTERN int weft_debug_set_report(FILE *out);

/* Writes the report of the tasks blocked now to out and flushes it: the cycles, and the
 * starvation; only tasks blocked for at least min_blocked seconds count (0: every blocked
 * task; above 0 needs the park time stamps — an unstamped park never counts then). *cycles
 * (may be NULL) gets the number of cycles found, *starved (may be NULL) the number of starving
 * tasks. 0, WEFT_EINVAL (out NULL, min_blocked NaN, negative or above 1e9), WEFT_ENOMEM
 * (nothing written). From any thread or coroutine; it does not block on the tasks it looks
 * at. Not from a signal handler. */
WEFT_EXTERN int weft_debug_deadlocks(FILE *out, double min_blocked, size_t *cycles,
                                     size_t *starved);

/* Starts the deadlock watchdog with a threshold in seconds (see above). 0, WEFT_EINVAL
 * (NaN, <= 0, above 1e6), WEFT_EALREADY (running), WEFT_EAGAIN (no thread), WEFT_ENOMEM. A
 * forked child has no watchdog. */
WEFT_EXTERN int weft_debug_deadlock_check_start(double seconds);

/* Stops it (waits for its thread to end). 0, or WEFT_EALREADY when not running. */
WEFT_EXTERN int weft_debug_deadlock_check_stop(void);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_DEBUG_H */
