/*
 * weft/future.h — concurrent.futures' Future for C, and the functions that wait on several
 * futures at once (wait, as_completed).
 *
 * A weft_future_t is the result of a computation that may not have finished: an executor
 * returns one from weft_executor_submit (weft/executor.h), and any code can make one with
 * weft_future_create and complete it itself (the promise side: set_result / set_error). Futures
 * are reference-counted: create and submit hand out one reference, retain adds one, release
 * drops one, and the last release frees it. A future in use by an executor or a waiter is
 * kept alive by their own references, so releasing yours early is always safe.
 *
 * States (weft_future_state): PENDING -> RUNNING -> FINISHED, or PENDING -> CANCELLED. A
 * FINISHED future holds either a result (a `void *`, never looked at by weft) or an error: the
 * nonzero code its task returned (the C stand-in for an exception) and an optional message.
 *
 * Tasks: a weft_task_fn returns 0 after storing its result in *result (NULL when it does not),
 * or fails by returning a nonzero code, preferably a WEFT_E* one, optionally with a message
 * (return weft_future_fail_current(WEFT_EIO, "cannot open %s", path);).
 *
 * Cancellation is cooperative and the same everywhere: a PENDING future is cancelled outright;
 * for a RUNNING one, weft_future_cancel asks its task to stop: inside it weft_cancel_requested()
 * turns true and every weft blocking call that has to wait returns WEFT_ECANCELED, so a task
 * that checks its errors stops soon and usually reports WEFT_ECANCELED itself.
 *
 * Blocking calls (result, wait, as_completed_next) take a timeout in seconds (WEFT_FOREVER
 * blocks; 0 or any other negative value polls; see weft/core.h) and block through weft's waiting
 * core: from a coroutine they park only the coroutine. Every function may be called from any
 * thread or coroutine on the same future concurrently; none is async-signal-safe. Fork: only
 * futures completed before the fork are of use in the child (the thread that would complete a
 * pending one does not exist there); the pending futures of an executor inherited by the child
 * are failed by it once it is touched there (weft/executor.h: WEFT_EBROKEN or
 * WEFT_EWORKERDIED), never left to hang.
 */
#ifndef WEFT_FUTURE_H
#define WEFT_FUTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "weft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A future: the pending result of a task (concurrent.futures.Future), reference-counted. */
typedef struct weft_future weft_future_t;

/* A task: runs with its argument; returns 0 and stores its result in *result (which starts
 * as NULL), or returns a nonzero error code. */
typedef int (*weft_task_fn)(void *arg, void **result);

/* A future's state, as weft_future_state returns it. */
typedef enum weft_future_state {
    WEFT_FUTURE_INVALID = -1, /* the answer for a NULL handle */
    WEFT_FUTURE_PENDING = 0,
    WEFT_FUTURE_RUNNING = 1,
    WEFT_FUTURE_FINISHED = 2,
    WEFT_FUTURE_CANCELLED = 3,
} weft_future_state_t;

/* ---- life ------------------------------------------------------------------------------ */

/* Creates a PENDING future to be completed by the caller (set_result / set_error), with one
 * reference for the caller.
 * f: receives the future (one reference: drop it with weft_future_release); NULL on
 *     WEFT_ENOMEM.
 * Returns 0, WEFT_EINVAL (f NULL: nothing written), WEFT_ENOMEM (then *f is NULL). */
WEFT_EXTERN WEFT_NODISCARD int weft_future_create(weft_future_t **f);

/* Adds a reference.
 * f: the future; the caller must already hold a reference to it.
 * Returns f (NULL for NULL); the new reference is the caller's to release. */
WEFT_EXTERN weft_future_t *weft_future_retain(weft_future_t *f);

/* Drops a reference; the last one frees the future, its message and its callbacks. Never
 * touches a result value set with weft_future_set_result, nor the user data: those are the
 * caller's (result bytes are the future's, and go with it).
 * f: the future; the caller's reference is gone after the call.
 * Returns 0, or WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_future_release(weft_future_t *f);
/* Names f for the task dump and the deadlock report (weft/debug.h): the Future (a pool task shows
 * under it) shows as "'name'" there. Its last release drops the name. From any thread or
 * coroutine; not from a signal handler (it locks and allocates).
 * f: the future.
 * name: the name, copied (up to 47 bytes, longer is cut; the caller keeps its string); NULL
 *     or "" removes it.
 * Returns 0, WEFT_EINVAL (f NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_future_set_name(weft_future_t *f, const char *name);

/* ---- the consumer side ---------------------------------------------------------------- */

/* Waits up to timeout for f to be done and returns how it ended. A task may itself fail with
 * one of the codes below: weft_future_done tells the cases apart. A future whose result is
 * bytes (a process- or MPI-pool task's) gives WEFT_EINVAL here: read it with
 * weft_future_result_bytes.
 * f: the future.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 *     value) only checks.
 * value: receives the task's result on 0 (the pointer is the caller's business: weft never
 *     frees it); NULL on every other return. May be NULL.
 * Returns 0 (f finished with a result), the task's error code, or WEFT_ECANCELED if f was
 * cancelled. While it waits: WEFT_ETIMEDOUT (f is not done yet: the C name of
 * concurrent.futures.TimeoutError), WEFT_ECANCELED (the caller's own task was canceled).
 * WEFT_EINVAL (f NULL, timeout NaN, or a result that is bytes), WEFT_EDEADLK (a coroutine whose hub
 * has nothing left to wake it, weft/coro.h). */
WEFT_EXTERN WEFT_NODISCARD int weft_future_result(weft_future_t *f, double timeout, void **value);

/* The result of a future whose task returns bytes (a process-pool or MPI-pool task: both
 * pools store the same representation), waiting up to timeout as weft_future_result does.
 * An empty result (the task left none) is *data NULL and *len 0, as in weft_process_pool_map's
 * results and weft_bytes_t (so data NULL alone does not tell a failure: the return value does).
 * f: the future.
 * timeout: seconds to wait, as for weft_future_result.
 * data: receives, on 0, the result bytes, owned by the future: valid while the caller holds a
 *     reference (never free them); NULL on every nonzero return. May be NULL.
 * len: receives, on 0, how many bytes; 0 on every nonzero return. May be NULL.
 * Returns the same values as weft_future_result: 0, the task's error code, WEFT_ECANCELED (f
 * cancelled, or the caller canceled while it waited), WEFT_ETIMEDOUT, WEFT_EINVAL (f NULL,
 * timeout NaN, and also when f finished with a result that is not bytes: a thread pool's, or
 * one set by hand with weft_future_set_result: read those with weft_future_result),
 * WEFT_EDEADLK (a coroutine whose hub has nothing left to wake it, weft/coro.h). */
WEFT_EXTERN WEFT_NODISCARD int weft_future_result_bytes(weft_future_t *f, double timeout,
                                                        const void **data, size_t *len);

/* The error of f once it is done, waiting up to timeout as weft_future_result does. Unlike
 * weft_future_result, the return value never carries the task's own code, so the two cases
 * cannot be confused.
 * f: the future.
 * timeout: seconds to wait, as for weft_future_result; 0 asks without waiting.
 * code: receives, on 0, how f ended: 0 if its task succeeded, the code its task failed with,
 *     or WEFT_ECANCELED if f was cancelled; left alone on a nonzero return. May be NULL.
 * Returns 0 when f is done, WEFT_ETIMEDOUT (f is not done yet), WEFT_ECANCELED (only when the
 * CALLER was canceled while it waited), WEFT_EINVAL (f NULL, timeout NaN), WEFT_EDEADLK (a
 * coroutine whose hub has nothing left to wake it, weft/coro.h). */
WEFT_EXTERN WEFT_NODISCARD int weft_future_error(weft_future_t *f, double timeout, int *code);

/* The message a failed task left (weft_future_fail_current, weft_future_set_error).
 * f: the future.
 * Returns the message, owned by f: valid while the caller holds a reference to f (never free
 * it); NULL if none, if f is not FINISHED, or for f NULL. */
WEFT_EXTERN const char *weft_future_error_message(weft_future_t *f);

/* ---- user data --------------------------------------------------------------------------
 * One pointer a program attaches to a future, to find its own record again when the future
 * comes back from weft_future_wait or weft_as_completed (Python's `{future: url}` dict). */

/* Sets f's user data to data (replacing what was there). May be called at any time, from any
 * thread, concurrently with weft_future_data: a reader that gets the pointer also sees what
 * the setter wrote before setting it.
 * f: the future.
 * data: any pointer (NULL clears it). weft never looks at it, never frees it, and keeps it for
 *     the future's whole life (also after it is done): the caller owns what it points to and
 *     must keep it valid while it reads it back.
 * Returns 0, or WEFT_EINVAL for f NULL. */
WEFT_EXTERN int weft_future_set_data(weft_future_t *f, void *data);

/* f's user data.
 * f: the future.
 * Returns the last value set with weft_future_set_data (the caller's, as set); NULL if none
 * was set or for f NULL. */
WEFT_EXTERN void *weft_future_data(weft_future_t *f);

/* The state right now (a snapshot).
 * f: the future.
 * Returns WEFT_FUTURE_PENDING, _RUNNING, _FINISHED or _CANCELLED; WEFT_FUTURE_INVALID for
 * NULL. */
WEFT_EXTERN weft_future_state_t weft_future_state(weft_future_t *f);
/* State tests (snapshots): cancelled (CANCELLED), running (RUNNING), done (FINISHED or
 * CANCELLED).
 * f: the future.
 * Returns true if f is in that state right now; false otherwise, and for NULL. */
WEFT_EXTERN bool weft_future_cancelled(weft_future_t *f);
WEFT_EXTERN bool weft_future_running(weft_future_t *f);
WEFT_EXTERN bool weft_future_done(weft_future_t *f);

/* Cancels f (Future.cancel). A PENDING future becomes CANCELLED: its waiters wake with
 * WEFT_ECANCELED and its callbacks run, here. A RUNNING one is not cancelled, but its task is
 * asked to stop (weft_cancel_requested() is true inside it, and its blocking calls fail with
 * WEFT_ECANCELED); it will finish with whatever the task returns. (A future moved to RUNNING by
 * hand, with set_running, has no task to ask: cancel only returns WEFT_EBUSY.)
 * Unlike Python's, a cancel can free a worker at once (its task stops), and the worker then
 * starts the next queued future: cancelling a batch in submission order can find each one
 * RUNNING by the time it is reached. Cancel the queued ones first (the last submitted first).
 * f: the future.
 * Returns 0 if f is now CANCELLED (it was PENDING, or already cancelled), WEFT_EBUSY if f is
 * RUNNING, WEFT_EALREADY if f had already finished, WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_future_cancel(weft_future_t *f);

/* Calls fn(f, arg) once f is done, in the thread that completes it, after its waiters were
 * woken; at once, in the caller, if f is already done. Callbacks run in the order they were
 * added. A callback may release f's references, retain it, or add more callbacks.
 * f: the future.
 * fn: the callback; it receives f (borrowed for the call) and arg, and reports failure by
 *     returning nonzero: the failure goes to the callback error handler
 *     (weft_future_set_callback_error_handler) and nothing else happens: the other callbacks
 *     run, the pool's worker goes on.
 * arg: passed to fn as is; weft never looks at it nor frees it.
 * Returns 0, WEFT_EINVAL (f or fn NULL), WEFT_ENOMEM (then fn will not be called). */
WEFT_EXTERN int weft_future_add_done_callback(weft_future_t *f,
                                              int (*fn)(weft_future_t *f, void *arg), void *arg);

/* Sets the process-wide handler of failing callbacks. Call it before futures are in use.
 * fn: the handler; it receives the future, the code the callback returned and arg. NULL
 *     restores the default, which prints one line to stderr (Python logs the exception).
 * arg: passed to fn as is; weft never looks at it nor frees it. */
WEFT_EXTERN void weft_future_set_callback_error_handler(void (*fn)(weft_future_t *f, int code,
                                                                   void *arg),
                                                        void *arg);

/* ---- the producer side ---------------------------------------------------------------- */

/* Moves a PENDING future to RUNNING (Future.set_running_or_notify_cancel). Optional before
 * set_result / set_error.
 * f: the future.
 * Returns 0, or WEFT_ECANCELED if it was cancelled (then do not run it), WEFT_EALREADY if it is
 * already running or finished, WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_future_set_running(weft_future_t *f);

/* Completes f with a result: it becomes FINISHED, its waiters wake and its callbacks run in
 * the caller. A future an executor is running may be completed this way too: the first
 * completion stands, and what its task returns later is dropped.
 * f: the future.
 * value: the result, any pointer (NULL too); weft never looks at it nor frees it.
 * Returns 0, WEFT_EALREADY (nothing changes) if f is already FINISHED or CANCELLED (Python's
 * InvalidStateError), WEFT_EINVAL (f NULL). */
WEFT_EXTERN int weft_future_set_result(weft_future_t *f, void *value);

/* Completes f with an error: it becomes FINISHED, its waiters wake and its callbacks run in
 * the caller. A future an executor is running may be completed this way too: the first
 * completion stands, and what its task returns later is dropped.
 * f: the future.
 * code: the error, nonzero (preferably a WEFT_E* code).
 * message: a message for weft_future_error_message, copied (the caller keeps its string);
 *     NULL: none.
 * Returns 0, WEFT_EALREADY (nothing changes) if f is already FINISHED or CANCELLED (Python's
 * InvalidStateError), WEFT_EINVAL (f NULL, code 0), WEFT_ENOMEM when the message cannot be
 * copied: f then finishes with the code and no message. */
WEFT_EXTERN int weft_future_set_error(weft_future_t *f, int code, const char *message);

/* Inside a task run by an executor: records a printf-style message for the task's future and
 * returns code, so a task fails with `return weft_future_fail_current(code, "...", ...)`. The
 * thread pool's, the process pool's and the MPI pool's tasks all carry it (the process and MPI
 * pools send it back with the failure; the MPI pool cuts it to 4095 bytes). Outside a task (and
 * outside weft_future_capture_begin/_end) it only returns code.
 * code: the error the task fails with, nonzero (preferably a WEFT_E* code).
 * fmt: a printf format for the message, followed by its arguments.
 * Returns code. */
WEFT_EXTERN int weft_future_fail_current(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Starts capturing weft_future_fail_current's message on this thread, for an executor that
 * runs a task outside any future, in another process or on another host, and carries its
 * outcome back itself (weft's process and MPI pools do): between weft_future_capture_begin and
 * weft_future_capture_end on one thread, weft_future_fail_current on that thread keeps its
 * message (the last one) instead of dropping it; the runner then sends it with the failure and
 * completes the submitter's future with weft_future_set_error. Inside a task run in a future,
 * fail_current goes to that future as always. begin drops a message an unfinished capture
 * kept. Per thread; not async-signal-safe; fork: a child's capture starts where the parent's
 * was.
 * Returns 0. */
WEFT_EXTERN int weft_future_capture_begin(void);

/* Stops the capture weft_future_capture_begin started on this thread and hands the message
 * over. Per thread; not async-signal-safe.
 * message: receives the last message weft_future_fail_current kept (malloc'd: free it with
 *     free(); NULL when there was none, and on WEFT_ENOMEM).
 * Returns 0, WEFT_EINVAL (message NULL: nothing changes), WEFT_ENOMEM (no memory for the copy:
 * *message NULL, the capture is over). */
WEFT_EXTERN int weft_future_capture_end(char **message);

/* ---- waiting on many ------------------------------------------------------------------ */

enum {
    WEFT_FIRST_COMPLETED = 1, /* any future done (finished or cancelled) */
    WEFT_FIRST_EXCEPTION = 2, /* any future finished with an error; else all done */
    WEFT_ALL_COMPLETED = 3,   /* every future done */
};

/* Waits until the futures fs[0..n-1] meet return_when (concurrent.futures.wait), or the
 * timeout passes. The same future may appear more than once.
 * fs: the futures, borrowed for the call (the caller keeps its references); no entry NULL.
 * n: how many entries fs has; 0 returns at once.
 * return_when: WEFT_FIRST_COMPLETED, WEFT_FIRST_EXCEPTION or WEFT_ALL_COMPLETED.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or any other negative
 *     value) only checks.
 * ndone: receives how many entries of fs are done at return (weft_future_done tells which);
 *     not written on WEFT_EINVAL. May be NULL.
 * Returns 0 when the condition is met (at once if it already is, and for n == 0),
 * WEFT_ETIMEDOUT when the timeout passed first, WEFT_ECANCELED when the caller was canceled,
 * WEFT_EINVAL (fs NULL with n > 0, a NULL entry, an unknown return_when, NaN), WEFT_ENOMEM,
 * WEFT_EDEADLK (a coroutine whose hub has nothing left to wake it, weft/coro.h). */
WEFT_EXTERN int weft_future_wait(weft_future_t *const *fs, size_t n, int return_when,
                                 double timeout, size_t *ndone);

/* as_completed: yields the futures of fs as they complete (those done already first), each
 * once, within one overall timeout counted from create:
 *
 *     weft_as_completed_t *it;
 *     weft_future_t *f;
 *     weft_as_completed_create(fs, n, 10.0, &it);
 *     while ((r = weft_as_completed_next(it, &f)) == 0) { ...use f... }
 *     weft_as_completed_release(it);   // r is WEFT_EEOF once all were yielded
 *
 * The iterator holds a reference to every future until release. Duplicates in fs are yielded
 * once. One iterator is for one consumer at a time.
 * fs: the futures, borrowed for the call (the iterator takes references of its own); no entry
 *     NULL.
 * n: how many entries fs has.
 * timeout: the overall limit in seconds, counted from create; WEFT_FOREVER: none, 0 (or any
 *     other negative value): only the futures done already.
 * it: receives the iterator (free it with weft_as_completed_release); NULL on failure.
 * Returns 0, WEFT_EINVAL (it NULL, fs NULL with n > 0, a NULL entry, NaN), WEFT_ENOMEM. */
typedef struct weft_as_completed weft_as_completed_t;
WEFT_EXTERN WEFT_NODISCARD int weft_as_completed_create(weft_future_t *const *fs, size_t n,
                                                        double timeout, weft_as_completed_t **it);

/* Yields the next future of an as_completed iterator, waiting (within the overall timeout)
 * for one to complete.
 * it: the iterator.
 * f: receives the future, BORROWED: valid until weft_as_completed_release (retain it to keep
 *     it longer); NULL on every nonzero return but WEFT_EINVAL.
 * Returns 0 (with *f), WEFT_EEOF when every future has been yielded, WEFT_ETIMEDOUT once the
 * overall timeout passed and none of the futures left is done (Python's TimeoutError; later
 * calls still yield a future done meanwhile, without waiting), WEFT_ECANCELED (the caller was
 * canceled), WEFT_EINVAL (it or f NULL), WEFT_EDEADLK (a coroutine whose hub has nothing left to
 * wake it, weft/coro.h). */
WEFT_EXTERN int weft_as_completed_next(weft_as_completed_t *it, weft_future_t **f);

/* Frees an as_completed iterator and drops its references to the futures.
 * it: the iterator; it must not be used afterwards.
 * Returns 0, or WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_as_completed_release(weft_as_completed_t *it);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_FUTURE_H */
