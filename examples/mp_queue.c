/*
 * Notes §2 进程间通讯: queue队列 / processes and IPC: the queue.
 *
 * mp_queue — the seed's 进程间通讯: a producer process and a consumer process talk through a
 * queue in shared memory (multiprocessing.Queue), and a JoinableQueue tells the producer when
 * every item was processed (task_done / join).
 *
 * put blocks while the queue is full (maxsize 3 here), get while it is empty, exactly as the
 * notes say; messages are bytes, copied into the queue.
 */
#include <stdio.h>
#include <string.h>

#include "weft.h"

static weft_mpqueue_t *q;

static int consumer(void *arg)
{
    (void)arg;
    char buf[64];
    size_t len;
    for (;;) {
        if (weft_mpqueue_get(q, buf, sizeof buf - 1, WEFT_FOREVER, &len)) return 1;
        buf[len] = '\0';
        if (len == 0) { /* the empty message: no more work */
            weft_mpqueue_task_done(q);
            return 0;
        }
        printf("consumer ate %s\n", buf);
        weft_mpqueue_task_done(q);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);                  /* each line out at once, even into a pipe */
    if (weft_mpqueue_create(0, 3, true, &q)) return 1; /* JoinableQueue(maxsize=3) */
    weft_process_t *c;
    if (weft_process_start(consumer, NULL, NULL, &c)) return 1;
    const char *buns[] = {"bun 1", "bun 2", "bun 3", "bun 4", "bun 5"};
    for (int i = 0; i < 5; i++) /* blocks while full */
        if (weft_mpqueue_put(q, buns[i], strlen(buns[i]), WEFT_FOREVER)) return 1;
    weft_mpqueue_join(q, WEFT_FOREVER); /* until every bun was eaten */
    printf("producer: all 5 buns eaten; empty = %d\n", weft_mpqueue_empty(q));
    if (weft_mpqueue_put(q, NULL, 0, WEFT_FOREVER)) return 1;
    weft_process_join(c, WEFT_FOREVER);
    weft_process_release(c);
    weft_mpqueue_release(q);
    return 0;
}
