/*
 * weft/wait.h — the public face of the waiting core: the wait-queue type that weft's
 * caller-allocated objects (Lock, Event, ...) embed. Its fields are private; it is here only
 * so those objects can be allocated by the caller, on the stack or in static storage.
 *
 * Every blocking call in weft queues a waiter on such a queue and parks it: an OS thread
 * sleeps on a futex of its own; a coroutine (when the coroutine layer is in use) switches
 * back to its hub. That is how one Lock serves threads and coroutines alike.
 *
 * Thread, coroutine and fork safety: a weft_waitq_t is used only through the object that
 * embeds it (its rules apply); its size is part of those objects' ABI. weft_cancel_requested
 * is safe from any thread or coroutine, from signal handlers, and after fork: a forked child's
 * thread keeps the answer its parent thread had, except in weft_process_start's child, which
 * starts with no cancel request and so answers false.
 */
#ifndef WEFT_WAIT_H
#define WEFT_WAIT_H

#include "weft/core.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A FIFO of parked waiters with its own small lock. Zero-initialised is empty and valid. */
typedef struct weft_waitq {
    WEFT__ATOMIC(uint32_t) lock_;
    struct weft__list waiters_;
} weft_waitq_t;

/* An empty wait queue (the same as zero-initialised). */
#define WEFT_WAITQ_INIT                                                                            \
    {                                                                                              \
        0,                                                                                         \
        {                                                                                          \
            0, 0                                                                                   \
        }                                                                                          \
    }

/* Whether the calling task was asked to stop: true inside an executor task whose future was
 * cancelled while it ran (weft_future_cancel), and from then on every weft blocking call it
 * makes that has to wait returns WEFT_ECANCELED. The task is expected to notice (through this
 * or through those errors), clean up and return, usually WEFT_ECANCELED. Calls that need not
 * wait (a free lock, a queued item) still succeed, so cleanup can use them.
 * Safe from any thread or coroutine and from signal handlers.
 * Returns true when the calling task was asked to stop (its future cancelled while it ran);
 * false elsewhere. */
WEFT_EXTERN bool weft_cancel_requested(void);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_WAIT_H */
