/*
 * list.h — weft's one intrusive list: a doubly-linked FIFO of nodes embedded in the elements
 * (a waiter, a coroutine, a queued future), reached back with weft__container_of. Nothing
 * allocates: pushing, popping and removing only relink pointers, so the wait and enqueue
 * paths can use it.
 *
 * A list is a head and a tail (both NULL: empty; zero-initialised is empty). Each node links
 * to the next one (NULL after the tail) and, unless it is the head, to the one before; the
 * head's `prev` is not kept up (so taking the head off, the hot operation of a FIFO, writes
 * nothing into the node after it). A node taken off keeps stale links: whether a node is on
 * a list is its owner's to record. The caller provides the locking: every operation assumes
 * nothing else changes the list meanwhile.
 *
 * The two structs are declared in weft/core.h, so that public caller-allocated objects (a
 * wait queue inside a Lock) can embed a list; only this header operates on them.
 */
#ifndef WEFT_CORE_LIST_H
#define WEFT_CORE_LIST_H

#include "weft/core.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct weft__list_node weft__list_node_t;
typedef struct weft__list weft__list_t;

static inline bool weft__list_empty(const weft__list_t *l)
{
    return l->head == NULL;
}

static inline void weft__list_push_back(weft__list_t *l, weft__list_node_t *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static inline void weft__list_push_front(weft__list_t *l, weft__list_node_t *n)
{
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    else
        l->tail = n;
    l->head = n;
}

/* The first node of l (NULL: empty) and the one after n (NULL: n is the last), for a walk
 * under the list's lock. */
static inline weft__list_node_t *weft__list_first(const weft__list_t *l)
{
    return l->head;
}

static inline weft__list_node_t *weft__list_next(const weft__list_node_t *n)
{
    return n->next;
}

/* Takes n, which is on l, off it. */
static inline void weft__list_remove(weft__list_t *l, weft__list_node_t *n)
{
    if (l->head == n)
        l->head = n->next;
    else
        n->prev->next = n->next;
    if (l->tail == n)
        l->tail = l->head ? n->prev : NULL;
    else
        n->next->prev = n->prev;
}

/* Takes n, l's head, off l: for a caller that read the head and must do something else in
 * between (the list unchanged meanwhile), so it need not be read and tested again. */
static inline void weft__list_pop_head(weft__list_t *l, weft__list_node_t *n)
{
    l->head = n->next;
    if (!n->next) l->tail = NULL;
}

/* Takes the first node off l and returns it; NULL when l is empty. */
static inline weft__list_node_t *weft__list_pop_front(weft__list_t *l)
{
    weft__list_node_t *n = l->head;
    if (n) weft__list_pop_head(l, n);
    return n;
}

/* Moves every node of `from` to the end of `to`, in order; `from` is left empty. */
static inline void weft__list_append(weft__list_t *to, weft__list_t *from)
{
    if (!from->head) return;
    if (to->tail) {
        to->tail->next = from->head;
        from->head->prev = to->tail;
    } else {
        to->head = from->head;
    }
    to->tail = from->tail;
    from->head = from->tail = NULL;
}

#endif /* WEFT_CORE_LIST_H */
