/*
 * Notes §13 线程queue: 先进先出 Queue / thread queues: FIFO Queue.
 *
 * queue — a producer and a consumer passing work through a bounded FIFO (Python's
 * queue.Queue).
 *
 * A bakery: the baker puts 6 loaves on a shelf that holds 3; the customer takes them off, one
 * every 10 ms. put blocks while the shelf is full and get blocks while it is empty, so nobody
 * polls and nobody overruns the shelf: the baker, always ahead, waits with a loaf in hand, and
 * each loaf taken makes room for it at once (the shelf stays full until the baker is done).
 * When the baker is done he closes the shop (shutdown): the customer takes what is left, then
 * get fails with WEFT_ESHUTDOWN. Also shows empty/full/qsize and the non-blocking calls
 * failing with WEFT_ETIMEDOUT (Python's queue.Full / queue.Empty).
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "weft.h"

enum { SHELF = 3, LOAVES = 6 };

static weft_queue_t *shelf;

static void sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void baker(void *arg)
{
    (void)arg;
    for (intptr_t loaf = 1; loaf <= LOAVES; loaf++) /* waits while the shelf is full */
        if (weft_queue_put(shelf, (void *)loaf, WEFT_FOREVER)) break;
    weft_queue_shutdown(shelf, false); /* no more loaves: what is on the shelf can still go */
}

static void customer(void *arg)
{
    (void)arg;
    void *loaf;
    sleep_ms(10); /* arrives late: the baker has filled the shelf and waits with loaf 4 */
    printf("customer arrives: shelf full=%d\n", weft_queue_full(shelf));
    while (weft_queue_get(shelf, WEFT_FOREVER, &loaf) == 0) { /* waits while it is empty */
        printf("  took loaf %ld, %zu left on the shelf\n", (long)(intptr_t)loaf,
               weft_queue_qsize(shelf));
        sleep_ms(10); /* eats it */
    }
    printf("customer: shop closed and shelf empty, going home\n");
}

int main(void)
{
    if (weft_queue_create(WEFT_QUEUE_FIFO, SHELF, &shelf)) return 1;
    void *item;
    printf("empty shelf: empty=%d, get_nowait -> %s\n", weft_queue_empty(shelf),
           weft_error_name(weft_queue_get_nowait(shelf, &item)));

    weft_thread_t *b, *c;
    if (weft_thread_start(baker, NULL, NULL, &b)) return 1;
    if (weft_thread_start(customer, NULL, NULL, &c)) return 1;
    weft_thread_join(b, WEFT_FOREVER);
    weft_thread_join(c, WEFT_FOREVER);
    weft_thread_release(b);
    weft_thread_release(c);
    printf("after closing: put_nowait -> %s\n",
           weft_error_name(weft_queue_put_nowait(shelf, NULL)));
    weft_queue_release(shelf);

    /* A full shelf refuses a non-blocking put, and a put with a timeout gives up. */
    if (weft_queue_create(WEFT_QUEUE_FIFO, 1, &shelf)) return 1;
    if (weft_queue_put_nowait(shelf, (void *)1)) return 1;
    printf("full shelf: full=%d, put_nowait -> %s, put(timeout 20 ms) -> %s\n",
           weft_queue_full(shelf), weft_error_name(weft_queue_put_nowait(shelf, (void *)2)),
           weft_error_name(weft_queue_put(shelf, (void *)2, 0.02)));
    weft_queue_release(shelf);
    return 0;
}
