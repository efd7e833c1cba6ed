/*
 * weft/debug.h — seeing inside a running program: every task (thread, coroutine, pool task,
 * child process), what it is blocked on, for how long, and who holds that (Go's SIGQUIT
 * dump, gevent's print_run_info).
 *
 *     weft_lock_set_name(&lock, "x");
 *     weft_queue_set_name(jobs, "jobs");
 *     weft_debug_observe(true);        stamp when each wait began: "for 1.25 s"
 *     weft_debug_dump(stderr);
 *
 * prints, grouped by thread (a thread's hub's coroutines indented under it), then the pool
 * tasks, then the child processes, one line per task:
 *
 *     weft dump: pid 4242, 7 tasks
 *     thread 4242 'MainThread': blocked on process 4250 join
 *     thread 4243 'worker': blocked on Lock 'x' held by thread 'MainThread' for 1.25 s
 *     thread 4244 'Thread-2': blocked on coroutine 'getter' join
 *       coroutine 3 'getter': blocked on Queue 'jobs' get
 *       coroutine 4 'Coroutine-4': blocked on sleep until +0.25 s
 *     pool task 0x5581e2c0 'task': running on thread 'weft_pool_0'
 *     pool task 0x5581e340 'task': ready
 *     process 4250 'Process-1': running
 *
 * A line is `<kind> <id> '<name>': <state>` then, when blocked, ` on <what>`, where <what>
 * is the object's kind and name (or address when unnamed: "Event 0x7ffd..."), "fd 7 read",
 * "process 1234 join", "sleep until +0.25 s"; ` held by <kind> '<name>'` when the object has
 * an owner (a Lock's or RLock's holder, a joined thread or coroutine, the worker running a
 * Future); ` until +<s> s` for a timed wait; ` for <s> s` once observing is on. Ids: a
 * thread's kernel tid, a coroutine's number (N of "Coroutine-N"), a pool task's future
 * address, a process's pid. A process's state is "running" or "done (exit <code>)".
 *
 * WEFT_DUMP_SIGNAL=QUIT (or USR1, USR2, HUP, or a number), read at load: that signal prints
 * the dump to stderr and the program goes on (Go exits after its SIGQUIT dump; going on is
 * friendlier: dump again later, or attach a debugger). The handler only writes a byte to a
 * pipe; a thread of weft's own ("weft-dump", blocked in read, never in a weft wait) prints.
 * Setting it turns observing on. Not in a fork child (its dump thread is not copied).
 */
#ifndef WEFT_DEBUG_H
#define WEFT_DEBUG_H

#include <stdbool.h>
#include <stdio.h>

#include "weft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Prints every task of the process now to out (the format above), flushed. From any thread
 * or coroutine while the others run; it takes short internal locks, never waits for a task.
 * Not from a signal handler (use WEFT_DUMP_SIGNAL). 0, WEFT_EINVAL (out NULL), WEFT_ENOMEM,
 * WEFT_EIO (writing to out failed). */
WEFT_EXTERN int weft_debug_dump(FILE *out);

/* Turns the stamping of when each wait begins on or off (off by default: it costs a clock
 * read per park). On, the dump says how long each task has been blocked ("for 1.25 s") for
 * the waits that began after. It is one switch for the process: the deadlock watchdog and the
 * trace turn it on when they start, and off turns it off for them too. Returns 0. From any
 * thread; fork-safe (the child inherits the switch). */
WEFT_EXTERN int weft_debug_observe(bool on);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_DEBUG_H */
