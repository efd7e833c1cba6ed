/*
 * joinable_queue — waiting until every task is done (Queue.task_done / Queue.join; the
 * notes' JoinableQueue).
 *
 * A boss puts 6 jobs on a queue for 3 workers and then joins the queue: join returns only
 * when each job taken with get has been marked done with task_done, not merely taken. Then
 * the boss shuts the queue down, which sends the idle workers home (their get fails with
 * WEFT_ESHUTDOWN), and reports. One task_done too many is refused (WEFT_EINVAL, Python's
 * ValueError).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "weft.h"

enum { WORKERS = 3, JOBS = 6 };

static weft_queue_t *jobs;
static _Atomic int finished;

static void worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    void *job;
    while (weft_queue_get(jobs, &job, WEFT_FOREVER) == 0) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL); /* the work */
        atomic_fetch_add(&finished, 1);
        printf("  worker %d finished job %ld\n", id, (long)(intptr_t)job);
        weft_queue_task_done(jobs); /* pairs with the get above */
    }
}

int main(void)
{
    weft_queue_create(&jobs, WEFT_QUEUE_FIFO, 0);
    weft_thread_t *t[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        weft_thread_start(&t[i], worker, (void *)(intptr_t)(i + 1), NULL);

    for (intptr_t j = 1; j <= JOBS; j++) weft_queue_put(jobs, (void *)j, WEFT_FOREVER);
    weft_queue_join(jobs, WEFT_FOREVER); /* every job done, not just taken */
    printf("boss: all %d jobs done (%d finished)\n", JOBS, atomic_load(&finished));
    printf("boss: one task_done too many -> %s\n", weft_err_name(weft_queue_task_done(jobs)));

    weft_queue_shutdown(jobs, false); /* idle workers' get fails: they go home */
    for (int i = 0; i < WORKERS; i++) {
        weft_thread_join(t[i], WEFT_FOREVER);
        weft_thread_release(t[i]);
    }
    weft_queue_destroy(jobs);
    return 0;
}
