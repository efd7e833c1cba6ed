/*
 * Notes §13 线程queue: 后进先出 LifoQueue / thread queues: LifoQueue.
 *
 * lifo_queue — last in, first out (Python's queue.LifoQueue).
 *
 * A stack of plates: the dishwasher puts plates 1..5 on the stack; the waiter takes from the
 * top, so plate 5 comes first. The same calls as a FIFO queue, only the order differs.
 */
#include <stdint.h>
#include <stdio.h>

#include "weft.h"

int main(void)
{
    weft_queue_t *plates;
    if (weft_queue_create(WEFT_QUEUE_LIFO, 0, &plates)) return 1; /* maxsize 0: unbounded */

    for (intptr_t plate = 1; plate <= 5; plate++) {
        if (weft_queue_put(plates, (void *)plate, WEFT_FOREVER)) return 1;
        printf("put plate %ld\n", (long)plate);
    }
    void *plate;
    while (weft_queue_get_nowait(plates, &plate) == 0)
        printf("took plate %ld\n", (long)(intptr_t)plate); /* 5, 4, 3, 2, 1 */
    weft_queue_release(plates);
    return 0;
}
