/*
 * queue.c — weft_queue_t, Python's queue.Queue / LifoQueue / PriorityQueue with task_done,
 * join and 3.13's shutdown.
 *
 * Data structure: the items live in one growable array, used as a ring (FIFO: take at head,
 * add at head + count), a stack (LIFO: head stays 0) or a binary min-heap of {priority,
 * sequence, item} (PRIORITY: the sequence number breaks ties in insertion order). The array
 * grows by doubling (never beyond maxsize), so nothing is allocated per item.
 *
 * Waiting: three wait lists — getters (queue empty), putters (bounded queue full), joiners
 * (unfinished tasks) — whose waiters carry a request on their stack (w->data): the item to
 * put or the slot to get into, and a status. One mutex, `lock`, guards the array, the
 * counters and the three lists (the lists' own locks are unused: parks go through
 * weft__waiter_park_in with `lock`). Hand-offs keep the order FIFO for blocked callers and
 * keep the invariants:
 *   - getters wait only while count == 0, putters only while count == maxsize;
 *   - a put that finds a getter waiting gives it the item directly;
 *   - a get that frees a slot while a putter waits moves that putter's item in at once.
 * `count` is written under the lock and read without it by qsize/empty/full (snapshots).
 * `unfinished` counts items put and not yet marked done; joiners are woken when it reaches 0.
 *
 * The lock is the one line every put and get writes, so under load its cost is moving that
 * line between cores. A contended caller therefore backs off (qlock) instead of spinning on
 * it: the owner keeps the line for a run of operations, and a producer fills, or a consumer
 * drains, several slots in a row (bench/bench_queue.c on 2 CPUs: 2-4x the throughput of
 * weft__mutex_lock's spin for 1 or 2 producers and consumers, bounded or not).
 *
 * Outside the lock: the dispose function (given a snapshot of the detached items and of the
 * function itself), and the wakes, which come last: a caller that wakes waiters touches the
 * queue no more afterwards (a woken caller may destroy it).
 */
#include "queue_internal.h"

#include "../wait/wait_internal.h"

#include <math.h>
#include <string.h>

typedef struct entry {
    int64_t priority;
    uint64_t seq;
    void *item;
} entry_t;

/* The items: a ring (FIFO), a stack (LIFO, head 0) or a heap (PRIORITY). */
typedef struct buffer {
    size_t count, cap, head;
    union {
        void **items;
        entry_t *heap;
    };
} buffer_t;

enum { OPEN, SHUTDOWN, SHUTDOWN_IMMEDIATE };

struct weft_queue {
    weft__mutex_t lock;
    weft_queue_kind_t kind;
    int state; /* OPEN, SHUTDOWN, SHUTDOWN_IMMEDIATE */
    size_t maxsize;
    buffer_t buf;
    _Atomic size_t size; /* buf.count, for the lock-free snapshots */
    uint64_t seq;        /* insertion order, for priority ties */
    size_t unfinished;
    weft_waitq_t getters, putters, joiners;
    void (*dispose)(void *item, void *arg);
    void *dispose_arg;
    weft__handle_t hd; /* debug mode: magic, the program's reference (core_internal.h) */
};

/* What a blocked putter or getter carries; the waker fills it in before the wake. */
typedef struct request {
    void *item;
    int64_t priority;
    int status;
} request_t;

/* ---- the buffer ---------------------------------------------------------------------------- */

static size_t elem_size(weft_queue_kind_t kind)
{
    return kind == WEFT_QUEUE_PRIORITY ? sizeof(entry_t) : sizeof(void *);
}

/* Makes room for one more item, growing by doubling up to `limit` (0: none). WEFT_ENOMEM
 * leaves the buffer as it was. */
static int grow(buffer_t *b, weft_queue_kind_t kind, size_t limit)
{
    if (b->count < b->cap) return 0;
    size_t cap = b->cap ? 2 * b->cap : 16;
    if (limit && cap > limit) cap = limit;
    if (cap > SIZE_MAX / elem_size(kind)) return WEFT_ENOMEM;
    char *mem = weft__malloc(cap * elem_size(kind));
    if (!mem) return WEFT_ENOMEM;
    if (kind == WEFT_QUEUE_FIFO && b->count) { /* unwrap the ring: head..cap-1, 0..head-1 */
        size_t first = b->cap - b->head < b->count ? b->cap - b->head : b->count;
        memcpy(mem, b->items + b->head, first * sizeof(void *));
        memcpy(mem + first * sizeof(void *), b->items, (b->count - first) * sizeof(void *));
    } else if (b->count) {
        memcpy(mem, (void *)b->items, b->count * elem_size(kind));
    }
    weft__free((void *)b->items);
    b->items = (void **)(void *)mem;
    b->head = 0;
    b->cap = cap;
    return 0;
}

static bool before(const entry_t *a, const entry_t *b)
{
    return a->priority < b->priority || (a->priority == b->priority && a->seq < b->seq);
}

/* Adds an item (room was made by grow). */
static void add(buffer_t *b, weft_queue_kind_t kind, void *item, int64_t priority, uint64_t seq)
{
    if (kind == WEFT_QUEUE_FIFO) {
        size_t i = b->head + b->count; /* a compare, not a division: this is the hot path */
        b->items[i < b->cap ? i : i - b->cap] = item;
    } else if (kind == WEFT_QUEUE_LIFO) {
        b->items[b->count] = item;
    } else { /* sift up */
        entry_t e = {priority, seq, item};
        size_t i = b->count;
        for (size_t parent; i > 0 && before(&e, &b->heap[parent = (i - 1) / 2]); i = parent)
            b->heap[i] = b->heap[parent];
        b->heap[i] = e;
    }
    b->count++;
}

/* Takes the next item (count > 0). */
static void *take(buffer_t *b, weft_queue_kind_t kind)
{
    size_t n = --b->count; /* items left */
    if (kind == WEFT_QUEUE_LIFO) return b->items[n];
    if (kind == WEFT_QUEUE_FIFO) {
        void *item = b->items[b->head];
        b->head = b->head + 1 < b->cap ? b->head + 1 : 0;
        return item;
    }
    void *item = b->heap[0].item; /* sift the last entry down from the root */
    entry_t last = b->heap[n];
    size_t i = 0;
    for (size_t child; (child = 2 * i + 1) < n; i = child) {
        if (child + 1 < n && before(&b->heap[child + 1], &b->heap[child])) child++;
        if (!before(&b->heap[child], &last)) break;
        b->heap[i] = b->heap[child];
    }
    if (n) b->heap[i] = last;
    return item;
}

/* Mirrors buf.count for the snapshots. Relaxed: writers hold the lock; readers without it
 * only want a snapshot, which may be stale anyway. */
static void sync_size(weft_queue_t *q)
{
    atomic_store_explicit(&q->size, q->buf.count, memory_order_relaxed);
}

static size_t size_of(weft_queue_t *q)
{
    return atomic_load_explicit(&q->size, memory_order_relaxed);
}

/* Items taken out of the queue to be disposed of: the buffer and the dispose function as
 * they were under the lock. */
typedef struct leftovers {
    buffer_t buf;
    weft_queue_kind_t kind;
    void (*dispose)(void *item, void *arg);
    void *arg;
} leftovers_t;

/* Detaches the buffer (the caller holds the lock); release() hands its items to the dispose
 * function and frees it, outside the lock. */
static leftovers_t detach(weft_queue_t *q)
{
    leftovers_t left = {q->buf, q->kind, q->dispose, q->dispose_arg};
    q->buf = (buffer_t){0};
    sync_size(q);
    return left;
}

static void release(leftovers_t *left)
{
    while (left->buf.count) {
        void *item = take(&left->buf, left->kind);
        if (left->dispose) left->dispose(item, left->arg);
    }
    weft__free((void *)left->buf.items);
}

/* ---- the lock ---------------------------------------------------------------------------- */

/* The queue's lock backs off when contended (see the top of the file). */
static void qlock(weft_queue_t *q)
{
    weft__mutex_lock_backoff(&q->lock);
}

static void qunlock(weft_queue_t *q)
{
    weft__mutex_unlock(&q->lock);
}

/* ---- life ------------------------------------------------------------------------------ */

int weft_queue_create(weft_queue_kind_t kind, size_t maxsize, weft_queue_t **out)
{
    if (!out) return WEFT_EINVAL;
    *out = NULL;
    if (kind != WEFT_QUEUE_FIFO && kind != WEFT_QUEUE_LIFO && kind != WEFT_QUEUE_PRIORITY)
        return WEFT_EINVAL;
    weft_queue_t *q = weft__handle_calloc(sizeof *q);
    if (!q) return WEFT_ENOMEM;
    weft__handle_init(&q->hd, WEFT__ID_QUEUE, 1);
    q->kind = kind;
    q->maxsize = maxsize;
    *out = q;
    return 0;
}

int weft_queue_release(weft_queue_t *q)
{
    WEFT__HANDLE_RELEASE(q, WEFT__ID_QUEUE, "queue");
    if (!q) return WEFT_EINVAL;
    qlock(q);
    bool busy = !weft__waitq_empty(&q->getters) || !weft__waitq_empty(&q->putters) ||
                !weft__waitq_empty(&q->joiners);
    leftovers_t left = busy ? (leftovers_t){0} : detach(q);
    qunlock(q);
    if (busy) {
        WEFT__HANDLE_GIVE(q); /* nothing happened: still the program's */
        return WEFT_EBUSY;
    }
    release(&left);
    weft__name_drop(q);
    weft__handle_free(q, &q->hd);
    return 0;
}

int weft_queue_set_name(weft_queue_t *q, const char *name)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    if (!q) return WEFT_EINVAL;
    return weft__name_set(q, name);
}

int weft_queue_set_dispose(weft_queue_t *q, void (*dispose)(void *item, void *arg), void *arg)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    if (!q) return WEFT_EINVAL;
    qlock(q);
    q->dispose = dispose;
    q->dispose_arg = dispose ? arg : NULL;
    qunlock(q);
    return 0;
}

/* ---- put and get ----------------------------------------------------------------------- */

/* Parks the caller on list with request r (the lock is held on entry, dropped here). The
 * deadline is taken now, when the call turns out to need it (as Python's queue does). */
static int block(weft_queue_t *q, weft_waitq_t *list, request_t *r, double timeout)
{
    int64_t deadline;
    weft__deadline(timeout, &deadline); /* cannot fail: NaN was refused on entry */
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waiter_on(&w,
                    list == &q->getters   ? WEFT__ON_QUEUE_GET
                    : list == &q->putters ? WEFT__ON_QUEUE_PUT
                                          : WEFT__ON_QUEUE_JOIN,
                    q);
    w.data = (uintptr_t)r;
    weft__waitq_push(list, &w);
    qunlock(q);
    int rc = weft__waiter_park_in(&q->lock, list, &w, deadline);
    return rc ? rc : r->status;
}

/* Why a call that would block fails at once instead (0: it may block). */
static int cannot_block(double timeout)
{
    if (weft__timeout_polls(timeout)) return WEFT_ETIMEDOUT;
    if (weft__waitctx_canceled(weft__waitctx_current())) return WEFT_ECANCELED;
    return 0;
}

/* Pops the longest-waiting waiter of list and gives it status (and item); NULL if none. */
static weft__waiter_t *serve(weft_waitq_t *list, int status, void *item)
{
    weft__waiter_t *w = weft__waitq_pop(list);
    if (w) {
        request_t *r = (request_t *)w->data;
        r->status = status;
        r->item = item;
    }
    return w;
}

int weft_queue_put_priority(weft_queue_t *q, void *item, int64_t priority, double timeout)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    if (!q || isnan(timeout)) return WEFT_EINVAL;
    qlock(q);
    int rc = q->state != OPEN ? WEFT_ESHUTDOWN : 0;
    weft__waiter_t *getter = rc ? NULL : serve(&q->getters, 0, item);
    if (rc || getter) {
        if (getter) q->unfinished++;
        qunlock(q);
        if (getter) weft__waiter_wake(getter);
        return rc;
    }
    if (q->maxsize && q->buf.count >= q->maxsize) {
        rc = cannot_block(timeout);
        if (rc) {
            qunlock(q);
            return rc;
        }
        request_t r = {item, priority, 0};
        return block(q, &q->putters, &r, timeout); /* 0: a getter moved our item in */
    }
    rc = grow(&q->buf, q->kind, q->maxsize);
    if (rc == 0) {
        add(&q->buf, q->kind, item, priority, q->seq++);
        sync_size(q);
        q->unfinished++;
    }
    qunlock(q);
    return rc;
}

int weft_queue_put(weft_queue_t *q, void *item, double timeout)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    return weft_queue_put_priority(q, item, 0, timeout);
}

int weft_queue_put_nowait(weft_queue_t *q, void *item)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    return weft_queue_put_priority(q, item, 0, 0);
}

int weft_queue_get(weft_queue_t *q, double timeout, void **item)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    if (!q || !item || isnan(timeout)) return WEFT_EINVAL;
    qlock(q);
    if (q->buf.count > 0) {
        *item = take(&q->buf, q->kind);
        /* A slot is free: the longest-waiting putter's item goes in now (room exists: the
         * buffer held maxsize items a moment ago). */
        weft__waiter_t *putter = weft__waitq_pop(&q->putters);
        if (putter) {
            request_t *r = (request_t *)putter->data;
            add(&q->buf, q->kind, r->item, r->priority, q->seq++);
            q->unfinished++;
            r->status = 0;
        }
        sync_size(q);
        qunlock(q);
        if (putter) weft__waiter_wake(putter);
        return 0;
    }
    int rc = q->state != OPEN ? WEFT_ESHUTDOWN : cannot_block(timeout);
    if (rc) {
        qunlock(q);
        return rc;
    }
    request_t r = {NULL, 0, 0};
    rc = block(q, &q->getters, &r, timeout);
    if (rc == 0) *item = r.item;
    return rc;
}

int weft_queue_get_nowait(weft_queue_t *q, void **item)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    return weft_queue_get(q, 0, item);
}

/* ---- sizes ------------------------------------------------------------------------------ */

size_t weft_queue_qsize(weft_queue_t *q)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    return q ? size_of(q) : 0;
}

bool weft_queue_empty(weft_queue_t *q)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    return q && size_of(q) == 0;
}

bool weft_queue_full(weft_queue_t *q)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    return q && q->maxsize && size_of(q) >= q->maxsize;
}

/* ---- task_done and join ----------------------------------------------------------------- */

int weft_queue_task_done(weft_queue_t *q)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    if (!q) return WEFT_EINVAL;
    qlock(q);
    if (q->unfinished == 0) {
        qunlock(q);
        return WEFT_EINVAL; /* Python: ValueError('task_done() called too many times') */
    }
    weft__waiter_t *joiners = --q->unfinished ? NULL : weft__waitq_take(&q->joiners, -1, 0);
    qunlock(q);
    weft__waiters_wake(joiners);
    return 0;
}

int weft_queue_join(weft_queue_t *q, double timeout)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    if (!q || isnan(timeout)) return WEFT_EINVAL;
    qlock(q);
    int rc = q->unfinished == 0 ? 0 : cannot_block(timeout);
    if (q->unfinished == 0 || rc) {
        qunlock(q);
        return rc;
    }
    request_t r = {NULL, 0, 0};
    return block(q, &q->joiners, &r, timeout);
}

/* ---- shutdown --------------------------------------------------------------------------- */

/* Moves every waiter of list, given status, onto the wake list *wake. */
static void serve_all(weft_waitq_t *list, int status, weft__waiter_t **wake)
{
    for (weft__waiter_t *w; (w = serve(list, status, NULL));) {
        w->next = *wake;
        *wake = w;
    }
}

int weft_queue_shutdown(weft_queue_t *q, bool immediate)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    if (!q) return WEFT_EINVAL;
    leftovers_t dropped = {0};
    weft__waiter_t *wake = NULL;
    qlock(q);
    if (q->state != SHUTDOWN_IMMEDIATE) q->state = immediate ? SHUTDOWN_IMMEDIATE : SHUTDOWN;
    serve_all(&q->putters, WEFT_ESHUTDOWN, &wake);
    if (immediate) {
        dropped = detach(q);
        size_t n = dropped.buf.count;
        q->unfinished = q->unfinished > n ? q->unfinished - n : 0;
        if (q->unfinished == 0) serve_all(&q->joiners, 0, &wake);
    }
    serve_all(&q->getters, WEFT_ESHUTDOWN, &wake); /* they wait only while it is empty */
    qunlock(q);
    release(&dropped); /* before the wakes: a woken caller may destroy q (dropped is ours) */
    weft__waiters_wake(wake);
    return 0;
}

bool weft_queue_is_shutdown(weft_queue_t *q)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_QUEUE, "queue");
    if (!q) return false;
    qlock(q);
    bool shut = q->state != OPEN;
    qunlock(q);
    return shut;
}

static int length(const weft_waitq_t *list)
{
    int n = 0;
    for (const weft__waiter_t *w = weft__waitq_first(list); w; w = weft__waitq_next(w)) n++;
    return n;
}

void weft__queue_blocked(weft_queue_t *q, int blocked[3])
{
    qlock(q);
    blocked[0] = length(&q->getters);
    blocked[1] = length(&q->putters);
    blocked[2] = length(&q->joiners);
    qunlock(q);
}
