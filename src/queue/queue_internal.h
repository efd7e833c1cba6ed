/*
 * queue_internal.h — white-box access to a queue for weft's own tests.
 */
#ifndef WEFT_QUEUE_INTERNAL_H
#define WEFT_QUEUE_INTERNAL_H

#include "weft/queue.h"

/* How many callers are blocked right now in get (blocked[0]), put (blocked[1]) and join
 * (blocked[2]), read under the queue's lock. */
void weft__queue_blocked(weft_queue_t *q, int blocked[3]);

#endif /* WEFT_QUEUE_INTERNAL_H */
