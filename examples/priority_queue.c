/*
 * Notes §13 线程queue, beyond the notes: 优先级队列 / thread queues: PriorityQueue.
 *
 * priority_queue — lowest priority value first (Python's queue.PriorityQueue).
 *
 * An emergency room: patients arrive with a triage level (1 most urgent). The doctor always
 * sees the most urgent patient waiting; patients of the same level are seen in the order they
 * arrived (Python gets that with (priority, count, item) tuples; weft does it for you).
 */
#include <stdio.h>

#include "weft.h"

typedef struct patient {
    const char *name;
    int level;
} patient_t;

int main(void)
{
    patient_t arrivals[] = {{"Ann", 3}, {"Bob", 1}, {"Cid", 2}, {"Dee", 3}, {"Eve", 1}, {"Fay", 2}};
    weft_queue_t *er;
    if (weft_queue_create(WEFT_QUEUE_PRIORITY, 0, &er)) return 1;

    for (size_t i = 0; i < sizeof arrivals / sizeof arrivals[0]; i++) {
        if (weft_queue_put_priority(er, &arrivals[i], arrivals[i].level, WEFT_FOREVER)) return 1;
        printf("arrived: %s (level %d)\n", arrivals[i].name, arrivals[i].level);
    }
    void *next;
    while (weft_queue_get_nowait(er, &next) == 0) { /* Bob, Eve, Cid, Fay, Ann, Dee */
        patient_t *p = next;
        printf("doctor sees %s (level %d)\n", p->name, p->level);
    }
    weft_queue_release(er);
    return 0;
}
