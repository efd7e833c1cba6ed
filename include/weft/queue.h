/*
 * weft/queue.h — Python's queue module for C: a thread-safe queue of `void *` items in
 * three orders (Queue, LifoQueue, PriorityQueue), bounded or not, joinable (task_done /
 * join) and shut down as in Python 3.13.
 *
 * A weft_queue_t is created and destroyed by the library (it owns a buffer). Items are
 * pointers the queue never looks at (NULL is a valid item); the caller decides who owns
 * what they point to. Order:
 *   WEFT_QUEUE_FIFO      first in, first out (queue.Queue)
 *   WEFT_QUEUE_LIFO      last in, first out (queue.LifoQueue)
 *   WEFT_QUEUE_PRIORITY  lowest priority value first, equal priorities in insertion order
 *                        (queue.PriorityQueue of (priority, count, item) tuples); the
 *                        priority is given with weft_queue_put_priority (plain put uses 0)
 * maxsize 0 is unbounded; otherwise put blocks while maxsize items are queued.
 *
 * Blocking: put and get take a timeout in seconds (WEFT_FOREVER blocks; 0 or any other negative
 * value polls; see weft/core.h) and block through weft's waiting core, so a coroutine waiting on a
 * queue parks only itself. Blocked getters are served in the order they arrived, and so are blocked
 * putters: an item put while getters wait goes straight to the longest-waiting one; a slot freed
 * while putters wait is filled at once by the longest-waiting putter's item.
 *
 * Errors of blocking calls: WEFT_ETIMEDOUT (the timeout passed, a failed poll included: the
 * C name for queue.Full / queue.Empty), WEFT_ECANCELED (the caller's task was canceled),
 * WEFT_ESHUTDOWN (see weft_queue_shutdown), WEFT_EINVAL (NULL queue or out-pointer, NaN
 * timeout). A call that fails changes nothing: a put that fails did not queue its item, a
 * get that fails took none.
 *
 * Thread safety: every function may be called concurrently from any thread or coroutine,
 * except release. Not async-signal-safe. Fork: a queue that no other thread was using at the
 * instant of fork is usable in the child (it is not shared with the parent: for that see the
 * process queue); waiters of the parent do not exist in the child.
 */
#ifndef WEFT_QUEUE_H
#define WEFT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A thread queue (queue.Queue, LifoQueue or PriorityQueue). */
typedef struct weft_queue weft_queue_t;

/* Which queue: FIFO (queue.Queue), LIFO (LifoQueue) or by priority (PriorityQueue). */
typedef enum weft_queue_kind {
    WEFT_QUEUE_FIFO = 0,
    WEFT_QUEUE_LIFO = 1,
    WEFT_QUEUE_PRIORITY = 2,
} weft_queue_kind_t;

/* Creates an empty queue of the given kind holding at most maxsize items (0: unbounded).
 * kind: WEFT_QUEUE_FIFO, WEFT_QUEUE_LIFO or WEFT_QUEUE_PRIORITY.
 * maxsize: the most items queued at once; 0: unbounded.
 * q: receives the new queue (the caller's: free it with weft_queue_release); NULL on failure.
 * Returns 0, WEFT_EINVAL (q NULL: nothing written; unknown kind), WEFT_ENOMEM; on failure *q
 * is NULL. */
WEFT_EXTERN WEFT_NODISCARD int weft_queue_create(weft_queue_kind_t kind, size_t maxsize,
                                                 weft_queue_t **q);

/* Frees the queue. Items still queued are handed to the dispose function if one was set
 * (weft_queue_set_dispose), else dropped (the caller may drain them first with get_nowait).
 * No call on q may start after release.
 * q: the queue.
 * Returns 0 (freed), WEFT_EBUSY (and nothing happens) while a thread or coroutine is blocked
 * on the queue, WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_queue_release(weft_queue_t *q);
/* Names q for the task dump and the deadlock report (weft/debug.h): the Queue shows as
 * "'name'" there. Its last release drops the name. From any thread or coroutine; not from a
 * signal handler (it locks and allocates).
 * q: the queue.
 * name: the name, copied (up to 47 bytes, longer is cut; the caller keeps its string); NULL
 *     or "" removes it.
 * Returns 0, WEFT_EINVAL (q NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_queue_set_name(weft_queue_t *q, const char *name);

/* Sets the function that receives the items the queue drops: those still queued at release
 * and those discarded by an immediate shutdown (called once per item, without the queue's
 * lock held).
 * q: the queue.
 * dispose: called as dispose(item, arg) for each dropped item; NULL disables (items are
 *     dropped untouched).
 * arg: passed to dispose as is; weft never looks at it nor frees it.
 * Returns 0, WEFT_EINVAL if q is NULL. */
WEFT_EXTERN int weft_queue_set_dispose(weft_queue_t *q, void (*dispose)(void *item, void *arg),
                                       void *arg);

/* Puts item, waiting up to timeout for a free slot in a full bounded queue. Counts one more
 * unfinished task (see task_done). In a PRIORITY queue the item gets priority 0.
 * q: the queue.
 * item: the item, any pointer (NULL too); the queue never looks at it nor frees it (the
 *     dispose function may receive it, see weft_queue_set_dispose).
 * timeout: seconds to wait for a free slot; WEFT_FOREVER waits without a limit, 0 (or any
 *     other negative value) only tries.
 * Returns 0 (queued), WEFT_ETIMEDOUT (the queue stayed full: queue.Full), WEFT_ECANCELED (the
 * caller's task was canceled), WEFT_ESHUTDOWN once the queue is shut down (also for a putter
 * blocked at that moment), WEFT_ENOMEM if the queue could not grow its buffer, WEFT_EINVAL (q
 * NULL, NaN timeout), WEFT_EDEADLK (a coroutine whose hub has nothing left to wake it,
 * weft/coro.h). On failure the item was not queued. */
WEFT_EXTERN WEFT_NODISCARD int weft_queue_put(weft_queue_t *q, void *item, double timeout);

/* put with a priority: lower values come out first (PRIORITY queues; in FIFO and LIFO queues
 * the priority is ignored).
 * q: the queue.
 * item: the item, as for weft_queue_put.
 * priority: any value; lower comes out first, equal ones in the order they were put.
 * timeout: seconds to wait for a free slot, as for weft_queue_put.
 * Returns what weft_queue_put returns. */
WEFT_EXTERN WEFT_NODISCARD int weft_queue_put_priority(weft_queue_t *q, void *item,
                                                       int64_t priority, double timeout);

/* Takes the next item into *item, waiting up to timeout for one.
 * q: the queue.
 * timeout: seconds to wait for an item; WEFT_FOREVER waits without a limit, 0 (or any other
 *     negative value) only tries.
 * item: receives the item (the caller decides who owns what it points to); left unchanged on
 *     failure.
 * Returns 0 (an item was taken), WEFT_ETIMEDOUT (the queue stayed empty: queue.Empty),
 * WEFT_ECANCELED (the caller's task was canceled), WEFT_ESHUTDOWN once the queue is shut down
 * and empty (or shut down immediately), also for a getter blocked at that moment, WEFT_EINVAL
 * (q or item NULL, NaN timeout), WEFT_EDEADLK (a coroutine whose hub has nothing left to wake it,
 * weft/coro.h). */
WEFT_EXTERN WEFT_NODISCARD int weft_queue_get(weft_queue_t *q, double timeout, void **item);

/* put / get with timeout 0 (put_nowait / get_nowait): WEFT_ETIMEDOUT is queue.Full /
 * queue.Empty.
 * q: the queue.
 * item: put_nowait: the item to put; get_nowait: receives the item taken (unchanged on failure).
 * Returns what weft_queue_put / weft_queue_get return with timeout 0. */
WEFT_EXTERN WEFT_NODISCARD int weft_queue_put_nowait(weft_queue_t *q, void *item);
WEFT_EXTERN WEFT_NODISCARD int weft_queue_get_nowait(weft_queue_t *q, void **item);

/* How many items are queued; whether none are; whether a bounded queue holds maxsize (an
 * unbounded queue is never full). Snapshots, as in Python.
 * q: the queue.
 * Returns the count / whether it is empty / whether it is full; 0 / false / false for NULL. */
WEFT_EXTERN size_t weft_queue_qsize(weft_queue_t *q);
WEFT_EXTERN bool weft_queue_empty(weft_queue_t *q);
WEFT_EXTERN bool weft_queue_full(weft_queue_t *q);

/* Marks one task taken with get as done (Queue.task_done): every put counts an unfinished
 * task, and join returns once each has been marked done.
 * q: the queue.
 * Returns 0, WEFT_EINVAL if called more times than items were put (Python's ValueError) or q
 * is NULL; nothing changes then. */
WEFT_EXTERN int weft_queue_task_done(weft_queue_t *q);

/* Blocks until every item ever put has been marked done with task_done (Queue.join), or the
 * timeout passes, or the caller is canceled. An immediate shutdown counts the items it
 * discards as done.
 * q: the queue.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit (as Python's join, which has
 *     no timeout, does), 0 (or any other negative value) only checks.
 * Returns 0 (at once if nothing is unfinished), WEFT_ETIMEDOUT (the timeout passed first),
 * WEFT_ECANCELED (the caller is canceled), WEFT_EINVAL (q NULL, NaN timeout), WEFT_EDEADLK (a
 * coroutine whose hub has nothing left to wake it, weft/coro.h). */
WEFT_EXTERN int weft_queue_join(weft_queue_t *q, double timeout);

/* Shuts the queue down (Python 3.13's Queue.shutdown): from now on put fails with
 * WEFT_ESHUTDOWN, and putters blocked now wake with it. Getters go on taking what is queued;
 * once the queue is empty get fails with WEFT_ESHUTDOWN, and blocked getters wake with it.
 * Calling it again is allowed (immediate may upgrade a plain shutdown).
 * q: the queue.
 * immediate: true: the queued items are discarded at once (handed to the dispose function, and
 *     counted as done for join), so every get fails from now on; false: they stay to be got.
 * Returns 0, or WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_queue_shutdown(weft_queue_t *q, bool immediate);

/* Whether weft_queue_shutdown was called.
 * q: the queue.
 * Returns true once it was shut down; false before, and for NULL. */
WEFT_EXTERN bool weft_queue_is_shutdown(weft_queue_t *q);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_QUEUE_H */
