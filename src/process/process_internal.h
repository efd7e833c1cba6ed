/*
 * process_internal.h — what the process layer's files share.
 *
 *   process.c   child processes: start, join, signals, the registry of children, exit rules
 *   fdwait.c    waiting for an fd (a pidfd, a pipe end) with a deadline and cancellation
 */
#ifndef WEFT_PROCESS_INTERNAL_H
#define WEFT_PROCESS_INTERNAL_H

#include "../wait/wait_internal.h"
#include "weft/process.h"

#include <errno.h>

/* The calling context's errno as a weft code (through the one converter, weft__errno). */
static inline int weft__errno_code(void)
{
    return weft__errno(errno);
}

/* How often a blocked process-layer wait looks at the caller's cancel request. */
#define WEFT__CANCEL_SLICE_NS (50 * 1000000LL)

/* Waits until fd reports one of `events` (or an error / hang-up) or the deadline passes:
 * 0, WEFT_ETIMEDOUT, WEFT_ECANCELED (the caller's context was canceled, unless nocancel; seen
 * within one slice), or the poll error. A ready fd wins over a cancel or an expired deadline.
 * A thread blocks in ppoll (in slices); a coroutine parks through its hub's poller. */
int weft__fd_wait(int fd, short events, int64_t deadline, bool nocancel);

/* The child's pidfd (readable once it has ended), for a caller that holds the handle and
 * polls several children at once (the process pool). -1 for a foreign handle, and where the
 * kernel (or valgrind) has no pidfd_open: then poll weft_process_is_alive instead. */
int weft__process_pidfd(const weft_process_t *p);

#endif /* WEFT_PROCESS_INTERNAL_H */
