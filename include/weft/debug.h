/*
 * weft/debug.h — seeing inside a running program: every task (thread, coroutine, pool task,
 * child process), what it is blocked on, for how long, and who holds that (Go's SIGQUIT
 * dump, gevent's print_run_info).
 *
 *     weft_lock_set_name(&lock, "x");
 *     weft_queue_set_name(jobs, "jobs");
 *     weft_debug_observe(true);        stamp when each wait began ("for 1.25 s"), record
 *                                      who takes each Lock ("held by")
 *     weft_debug_dump(stderr);
 *
 * prints, grouped by thread (a thread's hub's coroutines indented under it), then the pool
 * tasks, then the child processes, one line per task, then weft's own threads (a process
 * pool's manager, the deadlock watchdog, the dump's thread), which are not counted as tasks:
 *
 *     weft dump: pid 4242, 9 tasks
 *     thread 4242 'MainThread': blocked on process 4250 join
 *     thread 4243 'worker': blocked on Lock 'x' held by thread 'MainThread' for 1.25 s
 *     thread 4244 'Thread-2': blocked on coroutine 'getter' join
 *       coroutine 3 'getter': blocked on Queue 'jobs' get
 *       coroutine 4 'Coroutine-4': blocked on sleep until +0.25 s
 *     pool task 0x5581e2c0 'task': running in thread 'weft_pool_0'
 *     pool task 0x5581e340 'task': ready
 *     pool task 0x5581e3c0 'jobs task': running in process 4251
 *     pool task 0x5581e440 'jobs task': ready queued for process 4251
 *     process 4250 'Process-1': running
 *     process 4251 'weft_proc_0': running
 *     weft's own threads:
 *     thread 4245 'weft_proc': running
 *
 * A process pool's task is "running in process N" on the worker that runs it, "ready queued
 * for process N" while it waits in that worker's pipe (each worker takes a few at a time), and
 * "ready" while queued in the pool.
 *
 * A line is `KIND ID 'NAME': STATE` then, when blocked, ` on WHAT`, where WHAT
 * is the object's kind and name (or address when unnamed: "Event 0x7ffd..."), "fd 7 read",
 * "process 1234 join", "sleep until +0.25 s"; ` held by KIND 'NAME'` when the object has
 * an owner (a Lock's or RLock's holder, a joined thread or coroutine), ` run by KIND 'NAME'`
 * for a Future a worker runs (the pool task, which stands for its worker thread); ` until +S s` for
 * a timed wait; ` for S s` once observing is on. Ids: a thread's kernel tid, a coroutine's number
 * (N of "Coroutine-N"), a pool task's future address, a process's pid. A process's state is
 * "running" or "done (exit <code>)".
 *
 * WEFT_DUMP_SIGNAL=QUIT (or USR1, USR2, HUP, or a number), read at load: that signal prints
 * the dump to stderr and the program goes on (Go exits after its SIGQUIT dump; going on is
 * friendlier: dump again later, or attach a debugger). The handler only writes a byte to a
 * pipe; a thread of weft's own ("weft-dump", blocked in read, never in a weft wait) prints.
 * Setting it turns observing on. Not in a fork child (its dump thread is not copied): there
 * the signal has the action it had before weft's handler (so a signal sent to the whole
 * process group, as Ctrl-\ sends, acts on the children as it would without weft: by default
 * SIGQUIT ends them, and a process pool replaces the workers it ends). A value that names no
 * signal is ignored.
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

/* Prints every task of the process now to out (the format above), flushed. From any thread
 * or coroutine while the others run; it takes short internal locks, never waits for a task.
 * Not from a signal handler (use WEFT_DUMP_SIGNAL). 0, WEFT_EINVAL (out NULL), WEFT_ENOMEM,
 * WEFT_EIO (writing to out failed).
 * out: the stream to print to (the caller's: not closed).
 * Returns 0, WEFT_EINVAL (out NULL), WEFT_ENOMEM, WEFT_EIO (writing to out failed). */
WEFT_EXTERN int weft_debug_dump(FILE *out);

/* Turns observing on or off (off by default): the stamping of when each wait begins (a clock
 * read per park), and the recording of who takes each Lock and RLock (the waiting context
 * found on every acquire: 12% of an uncontended acquire+release). On, the dump says how long
 * each task has been blocked ("for 1.25 s") for the waits that began after, and "held by ..."
 * for the Locks taken after; the deadlock report can then follow a wait for a Lock to its
 * holder (off, a Lock's holder is not known, and no cycle through a Lock is found; a join or a
 * future still leads to its task). Turn it on at the start of the program to know every
 * holder. It is one switch for the process: the deadlock watchdog turns it on when it starts,
 * and off turns it off for it too. Returns 0. From any thread; fork-safe (the child inherits
 * the switch).
 * on: true turns observing on, false off (for the deadlock watchdog too).
 * Returns 0. */
WEFT_EXTERN int weft_debug_observe(bool on);

/* ---- deadlock reports ---------------------------------------------------------------------
 * The wait-for graph of the tasks blocked in weft waits: a task points at the task that owns
 * what it waits on — the one holding a Lock or RLock (known only for a Lock taken while
 * observing is on: weft_debug_observe; never for a process-shared one), the thread or
 * coroutine it joins, the task running the Future it waits for. A cycle is a
 * deadlock, reported in one line naming tasks and objects (names from weft_thread_start,
 * weft_co_spawn and the objects' _set_name; an unnamed object by its address):
 *
 *   weft: deadlock: thread 'a' waits for Lock 'x' held by coroutine 'b', which waits for
 *   Lock 'y' held by thread 'a': a cycle, none of them can go on
 *
 * A task whose chain of owners leads into a cycle is named after it:
 *
 *   weft: deadlock: thread 'main' waits for the end of coroutine 'b': stuck behind the cycle
 *   of coroutine 'b'
 *
 * A blocked task outside every cycle that waits on an object nobody owns by nature (a Queue,
 * an Event, a Semaphore, a Condition, a Barrier, a Future nobody runs yet, a process Queue, a
 * Pipe) is reported as starvation, as what is seen, not as a prophecy:
 *
 *   weft: starvation: thread 'w' (blocked 2.004 s) waits for Queue 'jobs' get; no task holds
 *   or feeds it
 *
 * "(blocked N s)" appears when park times are stamped (the watchdog turns the stamps on).
 * Tasks seen: every task of the snapshot weft_debug_dump prints (every thread, every hub's
 * coroutines, pool tasks). A task blocked on something whose holder is not a task (a Lock
 * taken by a thread that has ended) ends the chain there.
 *
 * Three ways to get it:
 * - When a hub finds that nothing can wake its coroutines (their waits then fail with
 *   WEFT_EDEADLK, weft/coro.h), it prints the report first, to the report file, after a
 *   line "weft: deadlock: nothing can wake the coroutines of the hub of thread <tid>: their
 *   waits end with WEFT_EDEADLK". The report is made on the hub's thread, on the stack of
 *   the coroutine that gave up the CPU last (a few KB: mind a minimal stack).
 * - WEFT_DEADLOCK_CHECK=<seconds> in the environment (read at load; a value that is not a
 *   positive number is ignored, as README says of weft's environment variables), or
 *   weft_debug_deadlock_check_start: a watchdog thread looks every quarter threshold (at least
 *   every 10 ms, at most every second) and reports, to the report file, the cycles whose
 *   tasks have all been blocked longer than the threshold and the starving tasks blocked
 *   longer than it; each situation once (a new episode — a task that woke and blocked
 *   again — is a new situation). It turns on the park time stamps (weft_debug_observe(true);
 *   one clock read per park; weft_debug_observe(false) turns them off for it too).
 *   Its thread is an internal one (not a weft thread) that never wakes a waiter: a hub's
 *   "nothing can wake us" check does not count it (nor WEFT_DUMP_SIGNAL's thread), so a hub
 *   deadlock still fails its waits with WEFT_EDEADLK while it runs.
 * - weft_debug_deadlocks, on demand.
 */

/* Sets where the hub's and the watchdog's reports go. From any thread.
 * out: the report file (the program keeps it open while reports may come); NULL: stderr (the
 *      default).
 * Returns 0, always. */
WEFT_EXTERN int weft_debug_set_report(FILE *out);

/* Writes the report of the tasks blocked now to out and flushes it: the cycles, and the
 * starvation; only tasks blocked for at least min_blocked seconds count (0: every blocked
 * task; above 0 needs the park time stamps — an unstamped park never counts then). *cycles
 * (may be NULL) gets the number of cycles found, *starved (may be NULL) the number of starving
 * tasks. 0, WEFT_EINVAL (out NULL, min_blocked NaN, negative or above 1e9), WEFT_ENOMEM
 * (nothing written). From any thread or coroutine; it does not block on the tasks it looks
 * at. Not from a signal handler.
 * out: the stream to write to (the caller's: not closed).
 * min_blocked: seconds a task must have been blocked to count, 0 .. 1e9; 0: every blocked
 *              task.
 * cycles: NULL, or receives the number of cycles found.
 * starved: NULL, or receives the number of starving tasks.
 * Returns 0, WEFT_EINVAL (out NULL, min_blocked NaN, negative or above 1e9), WEFT_ENOMEM
 * (nothing written). */
WEFT_EXTERN int weft_debug_deadlocks(FILE *out, double min_blocked, size_t *cycles,
                                     size_t *starved);

/* Starts the deadlock watchdog with a threshold in seconds (see above). 0, WEFT_EINVAL
 * (NaN, <= 0, above 1e6), WEFT_EALREADY (running), WEFT_EAGAIN (no thread), WEFT_ENOMEM. A
 * forked child has no watchdog.
 * seconds: the threshold: how long the tasks of a cycle, or a starving task, must have been
 *          blocked to be reported; above 0, at most 1e6.
 * Returns 0 (started), WEFT_EINVAL (NaN, <= 0, above 1e6), WEFT_EALREADY (running),
 * WEFT_EAGAIN (no thread), WEFT_ENOMEM. */
WEFT_EXTERN int weft_debug_deadlock_check_start(double seconds);

/* Stops the deadlock watchdog (waits for its thread to end).
 * Returns 0 (stopped), or WEFT_EALREADY when not running. */
WEFT_EXTERN int weft_debug_deadlock_check_stop(void);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_DEBUG_H */
