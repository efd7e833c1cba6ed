/*
 * Notes §3 升级版队列 joinableQueue / the JoinableQueue.
 *
 * joinable_queue — waiting until every task is done (Queue.task_done / Queue.join; the
 * notes' JoinableQueue).
 *
 * A boss puts 6 jobs (square a number) on a queue for 3 workers and then joins the queue:
 * join returns only when each job taken with get has been marked done with task_done, not
 * merely taken, so the boss can read every result. Then the boss shuts the queue down, which
 * sends the idle workers home (their get fails with WEFT_ESHUTDOWN). One task_done too many
 * is refused (WEFT_EINVAL, Python's ValueError).
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "weft.h"

enum { WORKERS = 3, JOBS = 6 };

static weft_queue_t *jobs;
static long results[JOBS + 1]; /* results[j]: job j's answer, written by whoever did it */

static void worker(void *arg)
{
    (void)arg;
    void *job;
    while (weft_queue_get(jobs, WEFT_FOREVER, &job) == 0) {
        long j = (long)(intptr_t)job;
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL); /* the work takes a while */
        results[j] = j * j;
        weft_queue_task_done(jobs); /* pairs with the get above; after the result is written */
    }
}

int main(void)
{
    if (weft_queue_create(WEFT_QUEUE_FIFO, 0, &jobs)) return 1;
    for (intptr_t j = 1; j <= JOBS; j++)
        if (weft_queue_put(jobs, (void *)j, WEFT_FOREVER)) return 1;
    printf("boss: %d jobs queued, nobody working: join(timeout 0) -> %s\n", JOBS,
           weft_error_name(weft_queue_join(jobs, 0)));

    weft_thread_t *t[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        if (weft_thread_start(worker, NULL, NULL, &t[i])) return 1;
    weft_queue_join(jobs, WEFT_FOREVER); /* every job done, not just taken */
    printf("boss: join returned, all done:");
    for (int j = 1; j <= JOBS; j++) printf(" %d*%d=%ld", j, j, results[j]);
    printf("\nboss: one task_done too many -> %s\n", weft_error_name(weft_queue_task_done(jobs)));

    weft_queue_shutdown(jobs, false); /* idle workers' get fails: they go home */
    for (int i = 0; i < WORKERS; i++) {
        weft_thread_join(t[i], WEFT_FOREVER);
        weft_thread_release(t[i]);
    }
    printf("boss: workers went home\n");
    weft_queue_release(jobs);
    return 0;
}
