/*
 * process_internal.h — what the process layer's files share, and only they (the process pool
 * gets what it needs through process_shared.h, included here too).
 *
 *   process.c   child processes: start, join, signals, the registry of children, exit rules
 *   conn.c      Pipe and Connection: messages over a Unix stream socket pair
 *   mpqueue.c   the queue between processes, in shared memory
 *   shm.c       shared memory: anonymous mappings and named POSIX objects
 *   value.c     a shared 64-bit integer
 *   fdwait.c    waiting for an fd (a pidfd, a pipe end) with a deadline and cancellation
 */
#ifndef WEFT_PROCESS_INTERNAL_H
#define WEFT_PROCESS_INTERNAL_H

#include "../wait/wait_internal.h"
#include "process_shared.h"
#include "weft/process.h"

#include <errno.h>

/* How often a blocked process-layer wait looks at the caller's cancel request. */
#define WEFT__CANCEL_SLICE_NS (50 * 1000000LL)

/* Waits until fd reports one of `events` (or an error / hang-up) or the deadline passes:
 * 0, WEFT_ETIMEDOUT, WEFT_ECANCELED (the caller's context was canceled, unless nocancel; seen
 * within one slice), or the poll error. A ready fd wins over a cancel or an expired deadline.
 * A thread blocks in ppoll (in slices); a coroutine parks through its hub's poller. */
int weft__fd_wait(int fd, short events, int64_t deadline, bool nocancel);

/* White-box, for tests that play a process writing garbage into a queue's shared memory: the
 * queue's shared mapping and the size this process mapped it with. */
void *weft__mpqueue_shared(weft_mpqueue_t *q, size_t *size);

#endif /* WEFT_PROCESS_INTERNAL_H */
