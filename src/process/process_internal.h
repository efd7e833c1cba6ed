/*
 * process_internal.h — what the process layer's files share, and only they (the process pool
 * gets what it needs through process_shared.h, included here too).
 *
 *   process.c   child processes: start, join, signals, the registry of children, exit rules
 *   conn.c      Pipe and Connection: messages over a Unix stream socket pair
 *   mpqueue.c   the queue between processes, in shared memory
 *   shm.c       shared memory: anonymous mappings and named POSIX objects
 *   value.c     a shared 64-bit integer
 * Waits on an fd (a pidfd, a pipe end) are the io layer's (io_shared.h).
 */
#ifndef WEFT_PROCESS_INTERNAL_H
#define WEFT_PROCESS_INTERNAL_H

#include "../wait/wait_internal.h"
#include "process_shared.h"
#include "weft/process.h"

#include <errno.h>

/* White-box, for tests that play a process writing garbage into a queue's shared memory: the
 * queue's shared mapping and the size this process mapped it with. */
void *weft__mpqueue_shared(weft_mpqueue_t *q, size_t *size);

/* For the task snapshot (src/observe): calls fn on every child process started here and not
 * yet closed, in start order, under the registry's lock (fn must not block). `reaped`: its
 * exit was collected (status: the exit code, or -signal; 0 when not known). */
typedef struct weft__process_view {
    const void *handle; /* the weft_process_t */
    int pid;
    bool reaped;
    int status;
    const char *name;
} weft__process_view_t;
void weft__processes_visit(void (*fn)(const weft__process_view_t *v, void *arg), void *arg);

#endif /* WEFT_PROCESS_INTERNAL_H */
