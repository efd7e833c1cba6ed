/*
 * queue — producers and consumers passing work through a bounded FIFO (Python's queue.Queue).
 *
 * A bakery: two bakers put loaves on a shelf that holds 3; two customers take them off. put
 * blocks while the shelf is full and get blocks while it is empty, so nobody polls and nobody
 * overruns the shelf. When the bakers are done, the shop closes (shutdown): customers take
 * what is left, then get WEFT_ESHUTDOWN and go home. Also shows empty/full/qsize and the
 * non-blocking calls failing with WEFT_ETIMEDOUT (Python's queue.Full / queue.Empty).
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "weft.h"

enum { SHELF = 3, LOAVES_EACH = 4 };

static weft_queue_t *shelf;

static void sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void baker(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 1; i <= LOAVES_EACH; i++) {
        intptr_t loaf = id * 100 + i;
        weft_queue_put(shelf, (void *)loaf, WEFT_FOREVER); /* waits while the shelf is full */
        printf("  baker %d: loaf %ld on the shelf (%zu there)\n", id, (long)loaf,
               weft_queue_qsize(shelf));
    }
}

static void customer(void *arg)
{
    int id = (int)(intptr_t)arg, eaten = 0;
    void *loaf;
    while (weft_queue_get(shelf, &loaf, WEFT_FOREVER) == 0) { /* waits while it is empty */
        printf("  customer %d: took loaf %ld\n", id, (long)(intptr_t)loaf);
        eaten++;
        sleep_ms(5);
    }
    printf("  customer %d: shop closed, went home with %d loaves\n", id, eaten);
}

int main(void)
{
    weft_queue_create(&shelf, WEFT_QUEUE_FIFO, SHELF);

    void *item;
    printf("empty shelf: empty=%d, get_nowait -> %s\n", weft_queue_empty(shelf),
           weft_err_name(weft_queue_get_nowait(shelf, &item)));

    weft_thread_t *t[4];
    weft_thread_start(&t[0], baker, (void *)1, NULL);
    weft_thread_start(&t[1], baker, (void *)2, NULL);
    weft_thread_start(&t[2], customer, (void *)1, NULL);
    weft_thread_start(&t[3], customer, (void *)2, NULL);
    weft_thread_join(t[0], WEFT_FOREVER);
    weft_thread_join(t[1], WEFT_FOREVER);

    weft_queue_shutdown(shelf, false); /* no more loaves; customers finish the shelf */
    printf("closing: put now -> %s\n", weft_err_name(weft_queue_put_nowait(shelf, NULL)));
    weft_thread_join(t[2], WEFT_FOREVER);
    weft_thread_join(t[3], WEFT_FOREVER);
    for (int i = 0; i < 4; i++) weft_thread_release(t[i]);
    weft_queue_destroy(shelf);

    /* A full shelf refuses a non-blocking put. */
    weft_queue_create(&shelf, WEFT_QUEUE_FIFO, 1);
    weft_queue_put_nowait(shelf, (void *)1);
    printf("full shelf: full=%d, put_nowait -> %s\n", weft_queue_full(shelf),
           weft_err_name(weft_queue_put_nowait(shelf, (void *)2)));
    weft_queue_destroy(shelf);
    return 0;
}
