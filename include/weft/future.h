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
 * reference for the caller. WEFT_EINVAL (f NULL), WEFT_ENOMEM; then *f is NULL. */
WEFT_EXTERN WEFT_NODISCARD int weft_future_create(weft_future_t **f);

/* Adds a reference; returns f (NULL for NULL). */
WEFT_EXTERN weft_future_t *weft_future_retain(weft_future_t *f);

/* Drops a reference; the last one frees the future, its message and its callbacks. Never
 * touches a result value set with weft_future_set_result, nor the user data: those are the
 * caller's (result bytes are the future's, and go with it). 0, or WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_future_release(weft_future_t *f);
/* Names f for the task dump and the deadlock report (weft/debug.h): the Future (a pool task shows
 * under it) shows as
 * "'name'" there. A copy is kept (up to 47 bytes, longer is cut); NULL or "" removes it;
 * its last release drops it. 0, WEFT_EINVAL (f NULL), WEFT_ENOMEM (the old name stays). From any
 * thread or coroutine; not from a signal handler (it locks and allocates). */
WEFT_EXTERN int weft_future_set_name(weft_future_t *f, const char *name);

/* ---- the consumer side ---------------------------------------------------------------- */

/* Waits up to timeout for f to be done and returns how it ended: 0 with the task's result in
 * *value (value may be NULL), the task's error code (*value is set to NULL), or
 * WEFT_ECANCELED if f was cancelled. While it waits: WEFT_ETIMEDOUT (f is not done yet: the
 * C name of concurrent.futures.TimeoutError), WEFT_ECANCELED (the caller's own task was
 * canceled). WEFT_EINVAL (f NULL, timeout NaN). A task may itself fail with one of those
 * codes: weft_future_done tells the cases apart. A future whose result is bytes (a process-
 * or MPI-pool task's) gives WEFT_EINVAL here, with *value NULL: read it with
 * weft_future_result_bytes. */
WEFT_EXTERN WEFT_NODISCARD int weft_future_result(weft_future_t *f, double timeout, void **value);

/* The result of a future whose task returns bytes (a process-pool or MPI-pool task: both
 * pools store the same representation), waiting up to timeout as weft_future_result does,
 * with the same return values. On 0, *data and *len (either may be NULL) describe the result
 * bytes, owned by the future: valid while the caller holds a reference; an empty result
 * (the task left none) is *data NULL and *len 0, as in weft_process_pool_map's results and
 * weft_bytes_t (so data NULL alone does not tell a failure: the return value does). WEFT_EINVAL
 * also when f finished with a result that is not bytes (a thread pool's, or one set by hand with
 * weft_future_set_result: read those with weft_future_result). On every nonzero return
 * *data is NULL and *len 0. */
WEFT_EXTERN WEFT_NODISCARD int weft_future_result_bytes(weft_future_t *f, double timeout,
                                                        const void **data, size_t *len);

/* The error of f once it is done, waiting up to timeout as weft_future_result does. Returns 0
 * when f is done, with *code (may be NULL) set to how it ended: 0 if its task succeeded, the
 * code its task failed with, or WEFT_ECANCELED if f was cancelled. Otherwise *code is left
 * alone and the call returns WEFT_ETIMEDOUT (f is not done yet; timeout 0 asks without
 * waiting), WEFT_ECANCELED (only when the CALLER was canceled while it waited), WEFT_EINVAL
 * (f NULL, timeout NaN). Unlike weft_future_result, the return value never carries the task's
 * own code, so the two cases cannot be confused. */
WEFT_EXTERN WEFT_NODISCARD int weft_future_error(weft_future_t *f, double timeout, int *code);

/* The message a failed task left (weft_future_fail_current, weft_future_set_error), NULL if none or
 * not done. Valid while the caller holds a reference to f. */
WEFT_EXTERN const char *weft_future_error_message(weft_future_t *f);

/* ---- user data --------------------------------------------------------------------------
 * One pointer a program attaches to a future, to find its own record again when the future
 * comes back from weft_future_wait or weft_as_completed (Python's `{future: url}` dict). */

/* Sets f's user data to data (replacing what was there). weft never looks at it, never frees
 * it, and keeps it for the future's whole life (also after it is done): the caller owns what
 * it points to and must keep it valid while it reads it back. 0, or WEFT_EINVAL for f NULL.
 * May be called at any time, from any thread, concurrently with weft_future_data: a reader
 * that gets the pointer also sees what the setter wrote before setting it. */
WEFT_EXTERN int weft_future_set_data(weft_future_t *f, void *data);

/* f's user data: the last value set with weft_future_set_data, NULL if none was set or for
 * f NULL. */
WEFT_EXTERN void *weft_future_data(weft_future_t *f);

/* The state right now (a snapshot); WEFT_FUTURE_INVALID for NULL. */
WEFT_EXTERN weft_future_state_t weft_future_state(weft_future_t *f);
/* State tests (snapshots), false for NULL: cancelled (CANCELLED), running (RUNNING), done
 * (FINISHED or CANCELLED). */
WEFT_EXTERN bool weft_future_cancelled(weft_future_t *f);
WEFT_EXTERN bool weft_future_running(weft_future_t *f);
WEFT_EXTERN bool weft_future_done(weft_future_t *f);

/* Cancels f (Future.cancel). Returns 0 if f is now CANCELLED: it was PENDING (or already
 * cancelled); its waiters wake with WEFT_ECANCELED and its callbacks run, here. WEFT_EBUSY if
 * f is RUNNING: it is not cancelled, but its task is asked to stop (weft_cancel_requested()
 * is true inside it, and its blocking calls fail with WEFT_ECANCELED); it will finish with
 * whatever the task returns. (A future moved to RUNNING by hand, with set_running, has no task
 * to ask: cancel only returns WEFT_EBUSY.) WEFT_EALREADY if f had already finished.
 * WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_future_cancel(weft_future_t *f);

/* Calls fn(f, arg) once f is done, in the thread that completes it, after its waiters were
 * woken; at once, in the caller, if f is already done. Callbacks run in the order they were
 * added. A callback reports failure by returning nonzero: the failure goes to the callback
 * error handler (weft_future_set_callback_error_handler) and nothing else happens: the
 * other callbacks run, the pool's worker goes on. A callback may release f's references,
 * retain it, or add more callbacks. WEFT_EINVAL (f or fn NULL), WEFT_ENOMEM (then fn will not
 * be called). */
WEFT_EXTERN int weft_future_add_done_callback(weft_future_t *f,
                                              int (*fn)(weft_future_t *f, void *arg), void *arg);

/* Sets the process-wide handler of failing callbacks (fn receives the future, the code the
 * callback returned and arg). NULL restores the default, which prints one line to stderr
 * (Python logs the exception). Call it before futures are in use. */
WEFT_EXTERN void weft_future_set_callback_error_handler(void (*fn)(weft_future_t *f, int code,
                                                                   void *arg),
                                                        void *arg);

/* ---- the producer side ---------------------------------------------------------------- */

/* Moves a PENDING future to RUNNING (Future.set_running_or_notify_cancel): 0, or
 * WEFT_ECANCELED if it was cancelled (then do not run it), WEFT_EALREADY if it is already
 * running or finished, WEFT_EINVAL for NULL. Optional before set_result / set_error. */
WEFT_EXTERN int weft_future_set_running(weft_future_t *f);

/* Completes f with a result / an error (code nonzero; message copied, may be NULL): it becomes
 * FINISHED, its waiters wake and its callbacks run in the caller. WEFT_EALREADY (nothing
 * changes) if f is already FINISHED or CANCELLED (Python's InvalidStateError). A future an
 * executor is running may be completed this way too: the first completion stands, and what
 * its task returns later is dropped. WEFT_EINVAL
 * (f NULL, code 0); set_error may return WEFT_ENOMEM when the message cannot be copied: f
 * then finishes with the code and no message. */
WEFT_EXTERN int weft_future_set_result(weft_future_t *f, void *value);
WEFT_EXTERN int weft_future_set_error(weft_future_t *f, int code, const char *message);

/* Inside a task run by an executor: records a printf-style message for the task's future and
 * returns code, so a task fails with `return weft_future_fail_current(code, "...", ...)`. The
 * thread pool's, the process pool's and the MPI pool's tasks all carry it (the process and MPI
 * pools send it back with the failure; the MPI pool cuts it to 4095 bytes). Outside a task (and
 * outside weft_future_capture_begin/_end) it only returns code. */
WEFT_EXTERN int weft_future_fail_current(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* For an executor that runs a task outside any future, in another process or on another host,
 * and carries its outcome back itself (weft's process and MPI pools do): between
 * weft_future_capture_begin and weft_future_capture_end on one thread, weft_future_fail_current
 * on that thread keeps its message (the last one) instead of dropping it; the runner then sends
 * it with the failure and completes the submitter's future with weft_future_set_error. Inside a
 * task run in a future, fail_current goes to that future as always. begin drops a message an
 * unfinished capture kept and returns 0. end stops capturing and hands the message over in
 * *message (malloc'd: free it with free(); NULL when there was none): 0, WEFT_EINVAL (message
 * NULL: nothing changes), WEFT_ENOMEM (no memory for the copy: *message NULL, the capture is
 * over). Per thread; not async-signal-safe; fork: a child's capture starts where the parent's
 * was. */
WEFT_EXTERN int weft_future_capture_begin(void);
WEFT_EXTERN int weft_future_capture_end(char **message);

/* ---- waiting on many ------------------------------------------------------------------ */

enum {
    WEFT_FIRST_COMPLETED = 1, /* any future done (finished or cancelled) */
    WEFT_FIRST_EXCEPTION = 2, /* any future finished with an error; else all done */
    WEFT_ALL_COMPLETED = 3,   /* every future done */
};

/* Waits until the futures fs[0..n-1] meet return_when (concurrent.futures.wait), or the
 * timeout passes. Stores in *ndone (may be NULL) how many entries of fs are done at return
 * (weft_future_done tells which). Returns 0 when the condition is met (at once if it already
 * is, and for n == 0), WEFT_ETIMEDOUT when the timeout passed first, WEFT_ECANCELED when the
 * caller was canceled, WEFT_EINVAL (fs NULL with n > 0, a NULL entry, an unknown return_when,
 * NaN), WEFT_ENOMEM. The same future may appear more than once. */
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
 * create: WEFT_EINVAL (it NULL, fs NULL with n > 0, a NULL entry, NaN), WEFT_ENOMEM. The
 * iterator holds a reference to every future until release. Duplicates in fs are yielded
 * once. next: 0 with *f (BORROWED: valid until release), WEFT_EEOF when every future has been
 * yielded, WEFT_ETIMEDOUT once the overall timeout passed and none of the futures left is done
 * (Python's TimeoutError; later calls still yield a future done meanwhile, without waiting),
 * WEFT_ECANCELED, WEFT_EINVAL. One iterator is for one consumer at a
 * time. release frees the iterator and drops its references: 0, or WEFT_EINVAL for NULL. */
typedef struct weft_as_completed weft_as_completed_t;
WEFT_EXTERN WEFT_NODISCARD int weft_as_completed_create(weft_future_t *const *fs, size_t n,
                                                        double timeout, weft_as_completed_t **it);
WEFT_EXTERN int weft_as_completed_next(weft_as_completed_t *it, weft_future_t **f);
WEFT_EXTERN int weft_as_completed_release(weft_as_completed_t *it);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_FUTURE_H */
