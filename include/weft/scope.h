/*
 * weft/scope.h — structured concurrency: a scope owns the tasks started through it (Python's
 * asyncio.TaskGroup, Trio's nursery), of all four kinds weft has: coroutines, OS threads,
 * executor futures and child processes.
 *
 *     weft_scope_t *s;
 *     weft_scope_create(NULL, WEFT_FOREVER, &s);
 *     weft_scope_spawn(s, fetch, url1, NULL, NULL);          // a coroutine
 *     weft_scope_thread_start(s, crunch, data, NULL, NULL);   // a thread
 *     int rc = weft_scope_join(s, WEFT_FOREVER);              // waits for both
 *     weft_scope_release(s);
 *
 * Failure. A coroutine, thread or process task is an int (*)(void *arg) (weft_scope_fn): it
 * fails by returning nonzero, preferably a negative WEFT_E* code. A future fails when it
 * completes with an error (its task returned nonzero); a process fails when it exits with a
 * nonzero status or dies by a signal. The first failure cancels every other task of the scope;
 * join then returns WEFT_ETASKFAILED, a code that means only that (a task's own code could be
 * any WEFT_E*, join's own statuses included), and weft_scope_errors gives the first failure's
 * own code and the count (as Python's TaskGroup raises an ExceptionGroup of the tasks'
 * exceptions).
 *
 * Cancellation (weft_scope_cancel, a first failure, the deadline, a parent scope's cancel) reaches
 * each kind as weft already cancels it: a coroutine by weft_co_cancel (one that has not started
 * never runs its function: it ends canceled unrun, as one canceled by its thread's exit, see
 * weft_scope_spawn); a thread by the waiting core's cancel (its weft waits fail with WEFT_ECANCELED
 * and weft_cancel_requested() turns true; it is expected to return); a future by weft_future_cancel
 * (a queued one never runs, a running one sees the cancel as a thread does); a child process gets
 * SIGTERM, then SIGKILL once the scope's grace period (weft_scope_opts_t.grace) has passed. A task
 * that ends with WEFT_ECANCELED after its scope was canceled (or with WEFT_ETIMEDOUT once the
 * scope's deadline has passed, which cancels the scope then if nobody did: a child scope's join
 * says so, its deadline being at most this one), a cancelled future, and a child that dies of the
 * scope's SIGTERM or SIGKILL are not failures. A task that returns another nonzero value while the
 * scope is being canceled is still counted as a failure (Trio's rule: only the cancellation itself
 * is swallowed).
 *
 * Nesting. A scope opened by a task of another scope (a coroutine or thread it runs, a
 * future's task while it runs) is that scope's child: a cancel of the parent cancels it, and
 * its deadline is at most the parent's. A child's failure is not the parent's by itself: the
 * task that joins the child scope gets WEFT_ETASKFAILED (the child's first code from
 * weft_scope_errors) and fails the parent by returning a nonzero code.
 * weft_scope_current() tells a task its own scope (to start siblings, as nursery passing).
 * A coroutine runs on the hub of the thread that started it: a thread task (or a future's
 * task) that starts coroutines in its scope joins them before it ends, so they run.
 * Coroutines and threads a task starts with weft_co_spawn / weft_thread_start are not in
 * the scope.
 *
 * Deadline. weft_scope_create's timeout is a deadline for everything in the scope: reaching it
 * cancels the scope, and join then returns WEFT_ETIMEDOUT once every task has ended, unless a
 * task failed first. The deadline is kept by the scope's joiner (a join waits at most until
 * it, then cancels) and by the starts (one after it cancels the scope and fails): no thread
 * of its own watches it, so a scope nobody joins is canceled only when joined. A cancel that
 * reaches a scope once its deadline has passed is the deadline's, whoever brings it: a child
 * scope canceled by its parent's deadline (its own is at most the parent's) also joins with
 * WEFT_ETIMEDOUT.
 *
 * Thread and coroutine safety: every call is safe from any thread or coroutine at once, and
 * from the scope's own tasks (spawn more, cancel, read errors); join from a task of the same
 * scope is WEFT_EDEADLK. Joins park as any weft wait does (a joining coroutine lets its hub run
 * the others); weft_debug_dump shows a joiner as "blocked on Scope 'name' join" (the name from
 * weft_scope_set_name; unnamed: the scope's address). Not async-signal-safe.
 *
 * Fork: a plainly forked child sees every scope it inherited as broken: spawn, join and cancel
 * return WEFT_EBROKEN (its tasks' threads are not in the child, and their coroutines, futures
 * and children are the parent's to join); weft_scope_release frees the child's copy of the
 * record without touching the parent's tasks. A process started in a scope
 * (weft_scope_process_start) runs outside every scope: a scope it opens is a root scope.
 *
 * Memory: a scope keeps a record of about 100 bytes per task until it is released; use one
 * scope per batch of work rather than one for the life of a server.
 */
#ifndef WEFT_SCOPE_H
#define WEFT_SCOPE_H

#include "weft/core.h"
#include "weft/coro.h"
#include "weft/executor.h"
#include "weft/future.h"
#include "weft/process.h"
#include "weft/thread.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A scope: the tasks started through it, joined together (opaque; weft_scope_create). */
typedef struct weft_scope weft_scope_t;

/* A coroutine, thread or process task: 0 is success, nonzero a failure (a negative WEFT_E*
 * code is the clear way; WEFT_ECANCELED after a cancel is how a task says it stopped). */
typedef int (*weft_scope_fn)(void *arg);

/* How a scope behaves; zero-initialised (or NULL) is the default.
 *   grace  seconds between a child process's SIGTERM and its SIGKILL when the scope is
 *          canceled: 0 is the default (1 s); a negative value kills at once; NaN: WEFT_EINVAL */
typedef struct weft_scope_opts {
    double grace;          /* see above */
    uint64_t reserved_[6]; /* room to grow in 1.x; zero-initialise opts: {0} or {.field = ...} */
} weft_scope_opts_t;

/* Opens a scope (with opts, NULL for the defaults) whose deadline is `timeout` seconds from
 * now (WEFT_FOREVER: none; 0 or a negative value: already reached, so the first start cancels
 * it) and stores it in *scope. Called from a task of another scope, the new one is that scope's
 * child (see "Nesting"); the parent must still be open (not joined): else WEFT_ECANCELED when the
 * parent is canceled, WEFT_ESHUTDOWN when it is joined. Errors: WEFT_EINVAL (scope NULL, timeout or
 * grace NaN), WEFT_ENOMEM; then *scope is NULL.
 * opts: how the scope behaves (weft_scope_opts_t); NULL: the defaults.
 * timeout: seconds to the scope's deadline; WEFT_FOREVER: none; 0 or negative: already
 *          reached.
 * scope: receives the scope on success (join it, then weft_scope_release it), NULL on failure.
 * Returns 0, WEFT_EINVAL (scope NULL, timeout or grace NaN), WEFT_ENOMEM, WEFT_ECANCELED (the
 * parent scope is canceled), WEFT_ESHUTDOWN (the parent scope is joined). */
WEFT_EXTERN WEFT_NODISCARD int weft_scope_create(const weft_scope_opts_t *opts, double timeout,
                                                 weft_scope_t **scope);

/* Spawns fn(arg) as a coroutine of the scope, on the calling thread's hub (as weft_co_spawn,
 * with opts). It runs when that thread blocks in weft (a join of the scope does) or yields:
 * the scope's own thread tasks and futures' tasks join theirs before they end. A coroutine
 * canceled before it first ran never runs fn: a plain thread (no task of the scope) that spawns
 * and then exits without blocking in weft cancels it at its exit (weft/coro.h, "Thread exit"),
 * as a stop of the hubs it was spawned on (weft_hubs_stop) or a weft_co_cancel of *co does. The
 * task then ends canceled unrun, as one the scope's cancel reached before it started: not a
 * failure (weft_scope_errors does not count it), and join does not wait for it; make sure such
 * a thread blocks (joins the scope) if the work must be done. co may be NULL; else it gets a
 * handle of its own (weft_co_release it). Errors: WEFT_EINVAL (scope or fn NULL, bad opts),
 * WEFT_ECANCELED (the scope is canceled: a failure, a cancel or its deadline came), WEFT_ESHUTDOWN
 * (the scope was joined), WEFT_EBROKEN (a scope inherited over fork), WEFT_ENOMEM and
 * weft_co_spawn's errors; then nothing was started and *co is NULL.
 * scope: the scope.
 * fn: the task; its return value is its result (0 success). Not NULL.
 * arg: passed to fn as is.
 * opts: as for weft_co_spawn; NULL: the defaults.
 * co: NULL, or receives a handle of its own (weft_co_release it) on success, NULL on failure.
 * Returns 0, WEFT_EINVAL (scope or fn NULL, bad opts), WEFT_ECANCELED (the scope is
 * canceled), WEFT_ESHUTDOWN (the scope was joined), WEFT_EBROKEN (inherited over fork),
 * WEFT_ENOMEM, or an error of weft_co_spawn. */
WEFT_EXTERN WEFT_NODISCARD int weft_scope_spawn(weft_scope_t *scope, weft_scope_fn fn, void *arg,
                                                const weft_co_opts_t *opts, weft_co_t **co);

/* Starts fn(arg) on a new OS thread of the scope (as weft_thread_start, with opts). t may be
 * NULL; else it gets a handle of its own (weft_thread_release it). Inside, weft waits are
 * cancelable by the scope (in slices of 50 ms for waits on kernel objects, as in an executor
 * task). Errors: as weft_scope_spawn's, with weft_thread_start's (WEFT_EAGAIN).
 * scope: the scope.
 * fn: the task; its return value is its result (0 success). Not NULL.
 * arg: passed to fn as is.
 * opts: as for weft_thread_start; NULL: the defaults.
 * t: NULL, or receives a handle of its own (weft_thread_release it) on success, NULL on
 *    failure.
 * Returns 0, the errors of weft_scope_spawn, or one of weft_thread_start's (WEFT_EAGAIN). */
WEFT_EXTERN WEFT_NODISCARD int weft_scope_thread_start(weft_scope_t *scope, weft_scope_fn fn,
                                                       void *arg, const weft_thread_opts_t *opts,
                                                       weft_thread_t **t);

/* Submits fn(arg) to the executor ex (a thread pool) as a task of the scope, and stores its
 * future in *f when f is not NULL (a reference of the caller's: weft_future_release it). The
 * future counts as done when it completes, however that happens (also when ex is shut down
 * with cancel_futures: then it is cancelled, which is not a failure). The result stays the
 * caller's to read through *f. Errors: as weft_scope_spawn's, with weft_executor_submit's
 * (WEFT_ESHUTDOWN for a shut down executor, WEFT_EBROKEN).
 * scope: the scope.
 * ex: the executor that runs the task.
 * fn: the task. Not NULL.
 * arg: passed to fn as is.
 * f: NULL, or receives the task's future on success (the caller's reference:
 *    weft_future_release it), NULL on failure.
 * Returns 0, WEFT_EINVAL (scope, ex or fn NULL), the other errors of weft_scope_spawn, or one
 * of weft_executor_submit's (WEFT_ESHUTDOWN for a shut down executor, WEFT_EBROKEN). */
WEFT_EXTERN WEFT_NODISCARD int weft_scope_submit(weft_scope_t *scope, weft_executor_t *ex,
                                                 weft_task_fn fn, void *arg, weft_future_t **f);

/* Starts fn(arg) in a child process of the scope (as weft_process_start, with opts); its exit
 * code is fn's return value. p may be NULL; else it gets the scope's handle, borrowed: valid
 * until weft_scope_release, which releases it (do not release it yourself). The scope watches the
 * child with a thread of its own. The child runs outside every scope. Errors: as
 * weft_scope_spawn's, with weft_process_start's (WEFT_EAGAIN, WEFT_EMFILE); then no child is left
 * behind.
 * scope: the scope.
 * fn: the task, run in the child; its return value is the exit code. Not NULL.
 * arg: passed to fn in the child as is.
 * opts: as for weft_process_start; NULL: the defaults.
 * p: NULL, or receives the scope's handle, borrowed until weft_scope_release (do not release
 *    it yourself); NULL on failure.
 * Returns 0, the errors of weft_scope_spawn, or one of weft_process_start's (WEFT_EAGAIN,
 * WEFT_EMFILE). */
WEFT_EXTERN WEFT_NODISCARD int weft_scope_process_start(weft_scope_t *scope, weft_scope_fn fn,
                                                        void *arg, const weft_process_opts_t *opts,
                                                        weft_process_t **p);

/* Cancels the scope (Trio's cancel_scope.cancel()): every live task and child scope is asked to
 * stop as "Cancellation" says, and later starts fail with WEFT_ECANCELED. Does not wait (join
 * does). Returns 0, also when the scope is already canceled or joined; WEFT_EINVAL (NULL),
 * WEFT_EBROKEN (inherited over fork). Safe from any thread, coroutine or task of the scope.
 * scope: the scope.
 * Returns 0 (also when already canceled or joined), WEFT_EINVAL (scope NULL), WEFT_EBROKEN
 * (inherited over fork). */
WEFT_EXTERN int weft_scope_cancel(weft_scope_t *scope);

/* Waits until every task of the scope has ended (its threads and coroutines joined, its
 * processes reaped), at most `timeout` seconds, then closes the scope to new tasks. Returns:
 *   0                 every task succeeded
 *   WEFT_ETASKFAILED  a task failed (see "Failure"): whatever code it returned (a WEFT_ETIMEDOUT,
 *                     a WEFT_EBUSY, a process's exit status...), join says only this;
 *                     weft_scope_errors gives the first failure's own code and the count
 *   WEFT_ETIMEDOUT    the scope's deadline came (and no task failed first)
 *   WEFT_ECANCELED    the scope was canceled (weft_scope_cancel, a parent's cancel, or the
 *                     joiner's own cancel, which join passes on to the scope) and no task failed
 * Once one of those was returned, every later join returns it again at once.
 *   WEFT_EBUSY        the timeout passed with tasks still running: nothing changes, the scope
 *                     stays open (join again, or cancel then join)
 *   WEFT_EINVAL       scope NULL, timeout NaN
 *   WEFT_EDEADLK      the caller is a task of this scope, or its hub found every coroutine
 *                     stuck
 *   WEFT_EBROKEN      a scope inherited over fork
 * None of these comes from a task: each is join's own. (Changed before 1.2's release, where
 * scopes are new: join no longer returns the first failure's own code, which could not be told
 * from these.)
 * A canceled joiner does not stop waiting: the cancel goes to the scope, and join waits for the
 * tasks to end (a task that ignores cancellation holds it up to the timeout).
 * scope: the scope.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 only polls.
 * Returns 0 (every task succeeded), WEFT_ETASKFAILED, WEFT_ETIMEDOUT (the scope's deadline),
 * WEFT_ECANCELED, WEFT_EBUSY (the timeout passed), WEFT_EINVAL, WEFT_EDEADLK, WEFT_EBROKEN, as
 * listed above. */
WEFT_EXTERN int weft_scope_join(weft_scope_t *scope, double timeout);

/* How many tasks failed so far (*count, may be NULL) and the first failure's own value
 * (*first, may be NULL; 0 if none): the code a task returned (any nonzero int, a WEFT_E*
 * code of join's own included: it is the task's, never join's), the error of a future, or a
 * process's exit code (Python's: > 0 its exit status, < 0 the signal that killed it). What a
 * join's WEFT_ETASKFAILED stands for. A process's value is not a WEFT_E* code, even when it is
 * negative: -9 is SIGKILL, not WEFT_EBADF; and a process task that returns a WEFT_E* code exits
 * with its low 8 bits (WEFT_ETIMEDOUT -> 146), as any exit status. 0, or WEFT_EINVAL for
 * NULL.
 * scope: the scope.
 * first: NULL, or receives the first failure's own value (0 if none).
 * count: NULL, or receives how many tasks failed so far.
 * Returns 0, or WEFT_EINVAL (scope NULL). */
WEFT_EXTERN int weft_scope_errors(weft_scope_t *scope, int *first, size_t *count);

/* How many of the scope's tasks have not ended yet. A snapshot.
 * scope: the scope.
 * Returns the number of live tasks; 0 for NULL. */
WEFT_EXTERN size_t weft_scope_live(weft_scope_t *scope);

/* The scope the caller runs in as a task (a coroutine or thread of it, a future's task while
 * it runs), NULL elsewhere. Borrowed: valid while the caller's task runs.
 * Returns the caller's scope (borrowed), or NULL outside every scope's task. */
WEFT_EXTERN weft_scope_t *weft_scope_current(void);

/* Names the scope for the task dump and the deadlock report (weft/debug.h), as the other
 * objects' _set_name do: a task parked in weft_scope_join shows as "blocked on Scope 'name'
 * join" there (unnamed: "Scope 0x... join"). A copy is kept (up to 47 bytes, longer is cut);
 * NULL or "" removes it; weft_scope_release drops it. 0, WEFT_EINVAL (scope NULL), WEFT_ENOMEM
 * (the old name stays). From any thread, coroutine or task of the scope; not from a signal
 * handler (it locks and allocates). New in 1.2.
 * scope: the scope.
 * name: copied (up to 47 bytes); NULL or "": remove the name.
 * Returns 0, WEFT_EINVAL (scope NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_scope_set_name(weft_scope_t *scope, const char *name);

/* Frees the scope. WEFT_EBUSY while it has live tasks or open child scopes: nothing happens
 * then (join first: a scope is never left behind with tasks nobody waits for). A scope that
 * was never joined but whose tasks have all ended is freed (their handles released).
 * WEFT_EINVAL for NULL. In a forked child: frees the child's copy (see "Fork").
 * scope: the scope; not used after a 0.
 * Returns 0 (freed), WEFT_EBUSY (live tasks or open child scopes; nothing happens),
 * WEFT_EINVAL (scope NULL). */
WEFT_EXTERN int weft_scope_release(weft_scope_t *scope);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_SCOPE_H */
