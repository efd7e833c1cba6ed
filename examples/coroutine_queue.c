/*
 * Notes §15 协程: 协程与队列 / coroutines with a queue.
 *
 * coroutine_queue — producer and consumers as coroutines over a weft Queue (gevent.queue).
 *
 * The same weft_queue_t that threads use: a coroutine that finds it full or empty parks
 * itself and the thread runs the others. One producer puts ten jobs into a queue of three
 * slots; three consumers take them; a bounded group (gevent.pool.Pool) holds the consumers;
 * the producer ends by shutting the queue, which ends the consumers' gets with
 * WEFT_ESHUTDOWN once it is drained.
 */
#include <stdint.h>
#include <stdio.h>

#include "weft.h"

static weft_queue_t *jobs;

static void producer(void *arg)
{
    (void)arg;
    for (intptr_t i = 1; i <= 10; i++) {
        /* parks while the 3 slots are full */
        if (weft_queue_put(jobs, (void *)i, WEFT_FOREVER)) break;
        printf("put job %ld (queue holds %zu)\n", (long)i, weft_queue_qsize(jobs));
    }
    weft_queue_shutdown(jobs, false);
}

static void consumer(void *arg)
{
    const char *me = weft_co_name(weft_co_current());
    int *done = arg;
    void *job;
    while (weft_queue_get(jobs, WEFT_FOREVER, &job) == 0) {
        printf("  %s works on job %ld\n", me, (long)(intptr_t)job);
        weft_time_sleep(0.01); /* the work: others run meanwhile */
        (*done)++;
    }
}

int main(void)
{
    if (weft_queue_create(WEFT_QUEUE_FIFO, 3, &jobs)) return 1;
    weft_group_t *workers;
    if (weft_group_create(3, &workers)) return 1;
    int done = 0;
    weft_co_t *p;
    if (weft_co_spawn(producer, NULL, NULL, &p)) return 1;
    for (int i = 0; i < 3; i++)
        if (weft_group_spawn(workers, consumer, &done, WEFT_FOREVER, NULL)) return 1;
    weft_group_join(workers, WEFT_FOREVER);
    weft_co_join(p, WEFT_FOREVER);
    weft_co_release(p);
    printf("%d jobs done\n", done);
    weft_group_release(workers);
    weft_queue_release(jobs);
    return done == 10 ? 0 : 1;
}
