/*
 * Queue: FIFO / LIFO / priority order, bounded blocking in both directions with FIFO service
 * of blocked callers, timeouts and the nowait calls, task_done/join, 3.13's shutdown, bad
 * arguments, destroy, cancellation, stress with checksums, and out-of-memory. Mirrors
 * CPython's Lib/test/test_queue.py (BaseQueueTestMixin, QueueJoinTests, the 3.13 shutdown
 * tests, FailingQueueTest); each case names the one it follows.
 *
 * Synchronisation is by inspecting the queue's blocked callers (weft__queue_blocked), never by
 * sleeping.
 */
#include "weft_test.h"

#include "queue/queue_internal.h"
#include "wait/wait_internal.h"

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define ITEM(i)  ((void *)(intptr_t)(i))
#define VALUE(p) ((intptr_t)(p))

/* ---- helpers ------------------------------------------------------------------------------ */

/* Waits (yielding) until the queue has at least `getters`, `putters`, `joiners` blocked. */
static void wait_blocked(weft_queue_t *q, int getters, int putters, int joiners)
{
    int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
    for (;;) {
        int b[3];
        weft__queue_blocked(q, b);
        if (b[0] >= getters && b[1] >= putters && b[2] >= joiners) return;
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
}

static weft_queue_t *make(weft_queue_kind_t kind, size_t maxsize)
{
    weft_queue_t *q;
    assert_int_equal(weft_queue_create(kind, maxsize, &q), 0);
    assert_non_null(q);
    return q;
}

/* A background call on a plain pthread, with its result. */
typedef struct call {
    weft_queue_t *q;
    void *item;
    int64_t priority;
    double timeout;
    int rc;
    _Atomic(weft__waitctx_t *) ctx;
    pthread_t tid;
} call_t;

static void *do_get(void *p)
{
    call_t *c = p;
    atomic_store(&c->ctx, weft__waitctx_current());
    c->rc = weft_queue_get(c->q, c->timeout, &c->item);
    return NULL;
}

static void *do_put(void *p)
{
    call_t *c = p;
    atomic_store(&c->ctx, weft__waitctx_current());
    c->rc = weft_queue_put_priority(c->q, c->item, c->priority, c->timeout);
    return NULL;
}

static void *do_join(void *p)
{
    call_t *c = p;
    atomic_store(&c->ctx, weft__waitctx_current());
    c->rc = weft_queue_join(c->q, c->timeout);
    return NULL;
}

static void start_call(call_t *c, weft_queue_t *q, void *(*fn)(void *), void *item)
{
    *c = (call_t){.q = q, .item = item, .timeout = WEFT_FOREVER, .rc = 1};
    c->tid = weft_test_start(fn, c);
}

/* ---- order -------------------------------------------------------------------------------- */

/* BaseQueueTestMixin.simple_queue_test (Queue): items come out in the order put. */
static void fifo_order(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 0);
    for (int i = 0; i < 100; i++) /* past the first growth of the buffer, and wrapping */
        assert_int_equal(weft_queue_put(q, ITEM(i), 0), 0);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 50; i++) {
            void *v;
            assert_int_equal(weft_queue_get(q, 0, &v), 0);
            assert_int_equal(VALUE(v), round * 50 + i);
            assert_int_equal(weft_queue_put(q, ITEM(100 + round * 50 + i), 0), 0);
        }
    }
    assert_int_equal(weft_queue_qsize(q), 100);
    for (int i = 150; i < 250; i++) {
        void *v;
        assert_int_equal(weft_queue_get(q, 0, &v), 0);
        assert_int_equal(VALUE(v), i);
    }
    assert_int_equal(weft_queue_release(q), 0);
}

/* simple_queue_test (LifoQueue): the last item put comes out first. */
static void lifo_order(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_LIFO, 0);
    for (int i = 0; i < 40; i++) assert_int_equal(weft_queue_put(q, ITEM(i), 0), 0);
    for (int i = 39; i >= 0; i--) {
        void *v;
        assert_int_equal(weft_queue_get(q, 0, &v), 0);
        assert_int_equal(VALUE(v), i);
    }
    assert_true(weft_queue_empty(q));
    assert_int_equal(weft_queue_release(q), 0);
}

/* simple_queue_test (PriorityQueue): lowest priority first; equal priorities in insertion
 * order (Python needs (priority, count, item) tuples for that; weft does it itself). Plain put
 * means priority 0. */
static void priority_order_and_ties(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_PRIORITY, 0);
    enum { N = 500 };
    for (int i = 0; i < N; i++) /* priorities 0..9, scrambled */
        assert_int_equal(weft_queue_put_priority(q, ITEM(i), (i * 7) % 10, 0), 0);
    assert_int_equal(weft_queue_put_priority(q, ITEM(-1), -5, 0), 0);
    assert_int_equal(weft_queue_put(q, ITEM(N), 0), 0);
    void *v;
    assert_int_equal(weft_queue_get(q, 0, &v), 0);
    assert_int_equal(VALUE(v), -1);
    int64_t last_prio = -1, last_item = -1;
    for (int i = 0; i < N + 1; i++) {
        assert_int_equal(weft_queue_get(q, 0, &v), 0);
        int64_t item = VALUE(v), prio = item == N ? 0 : (item * 7) % 10;
        if (prio == last_prio)
            assert_true(item > last_item); /* ties: insertion order */
        else
            assert_true(prio > last_prio);
        last_prio = prio;
        last_item = item;
    }
    assert_int_equal(weft_queue_get_nowait(q, &v), WEFT_ETIMEDOUT);
    assert_int_equal(weft_queue_release(q), 0);
}

/* Python queues hold None like any item; NULL is an item here. */
static void null_items_are_items(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 2);
    assert_int_equal(weft_queue_put(q, NULL, 0), 0);
    assert_int_equal(weft_queue_put(q, NULL, 0), 0);
    assert_true(weft_queue_full(q));
    void *v = ITEM(1);
    assert_int_equal(weft_queue_get(q, 0, &v), 0);
    assert_null(v);
    assert_int_equal(weft_queue_qsize(q), 1);
    assert_int_equal(weft_queue_release(q), 0);
}

/* ---- sizes, nowait, timeouts ------------------------------------------------------------ */

/* BaseQueueTestMixin.basic_queue_test: qsize, empty and full track the contents; an unbounded
 * queue is never full. */
static void qsize_empty_full(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 3);
    assert_true(weft_queue_empty(q));
    assert_false(weft_queue_full(q));
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(weft_queue_put(q, ITEM(i), 0), 0);
        assert_int_equal(weft_queue_qsize(q), (size_t)i);
        assert_false(weft_queue_empty(q));
    }
    assert_true(weft_queue_full(q));
    assert_int_equal(weft_queue_release(q), 0);

    q = make(WEFT_QUEUE_LIFO, 0);
    for (int i = 0; i < 1000; i++) assert_int_equal(weft_queue_put_nowait(q, ITEM(i)), 0);
    assert_false(weft_queue_full(q));
    assert_int_equal(weft_queue_qsize(q), 1000);
    assert_int_equal(weft_queue_release(q), 0);
}

/* basic_queue_test: put_nowait on a full queue raises Full, get_nowait on an empty one raises
 * Empty (WEFT_ETIMEDOUT both), and neither changes the queue. */
static void nowait_calls_fail_at_once(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 1);
    void *v = ITEM(7);
    assert_int_equal(weft_queue_get_nowait(q, &v), WEFT_ETIMEDOUT);
    assert_int_equal(VALUE(v), 7); /* untouched on failure */
    assert_int_equal(weft_queue_put_nowait(q, ITEM(1)), 0);
    assert_int_equal(weft_queue_put_nowait(q, ITEM(2)), WEFT_ETIMEDOUT);
    assert_int_equal(weft_queue_qsize(q), 1);
    assert_int_equal(weft_queue_get_nowait(q, &v), 0);
    assert_int_equal(VALUE(v), 1);
    assert_int_equal(weft_queue_release(q), 0);
}

/* basic_queue_test: put(block, timeout) on a full queue and get(timeout) on an empty one wait
 * that long, then fail with Full / Empty (WEFT_ETIMEDOUT) leaving the queue as it was. */
static void timeouts_expire_and_change_nothing(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 1);
    void *v;
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_queue_get(q, 0.05, &v), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.04);
    assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
    t0 = weft_time_monotonic();
    assert_int_equal(weft_queue_put(q, ITEM(2), 0.05), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.04);
    assert_int_equal(weft_queue_qsize(q), 1);
    int b[3];
    weft__queue_blocked(q, b);
    assert_int_equal(b[0] + b[1] + b[2], 0); /* the timed-out callers left no trace */
    assert_int_equal(weft_queue_get(q, 0, &v), 0);
    assert_int_equal(VALUE(v), 1);
    assert_int_equal(weft_queue_release(q), 0);
}

/* ---- blocking ------------------------------------------------------------------------------ */

/* do_blocking_test (get on an empty queue blocks until a put): the put hands its item to the
 * waiting getter. */
static void blocked_get_woken_by_put(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 0);
    call_t get;
    start_call(&get, q, do_get, NULL);
    wait_blocked(q, 1, 0, 0);
    assert_int_equal(weft_queue_put(q, ITEM(42), 0), 0);
    weft_test_join(get.tid);
    assert_int_equal(get.rc, 0);
    assert_int_equal(VALUE(get.item), 42);
    assert_true(weft_queue_empty(q));
    assert_int_equal(weft_queue_release(q), 0);
}

/* do_blocking_test (put on a full queue blocks until a get frees a slot): the putter's item
 * goes in behind the others. */
static void blocked_put_woken_by_get(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 2);
    assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
    assert_int_equal(weft_queue_put(q, ITEM(2), 0), 0);
    call_t put;
    start_call(&put, q, do_put, ITEM(3));
    wait_blocked(q, 0, 1, 0);
    void *v;
    assert_int_equal(weft_queue_get(q, 0, &v), 0);
    assert_int_equal(VALUE(v), 1);
    weft_test_join(put.tid);
    assert_int_equal(put.rc, 0);
    assert_true(weft_queue_full(q));
    for (int i = 2; i <= 3; i++) {
        assert_int_equal(weft_queue_get(q, 0, &v), 0);
        assert_int_equal(VALUE(v), i);
    }
    assert_int_equal(weft_queue_release(q), 0);
}

/* Blocked getters are served in arrival order. */
static void blocked_getters_served_in_order(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 0);
    enum { N = 4 };
    call_t get[N];
    for (int i = 0; i < N; i++) {
        start_call(&get[i], q, do_get, NULL);
        wait_blocked(q, i + 1, 0, 0); /* arrival order is fixed before the next starts */
    }
    for (int i = 0; i < N; i++) assert_int_equal(weft_queue_put(q, ITEM(100 + i), 0), 0);
    for (int i = 0; i < N; i++) {
        weft_test_join(get[i].tid);
        assert_int_equal(get[i].rc, 0);
        assert_int_equal(VALUE(get[i].item), 100 + i);
    }
    assert_int_equal(weft_queue_release(q), 0);
}

/* Blocked putters are served in arrival order, in every kind of queue: a slot freed goes to
 * the longest-waiting putter. */
static void blocked_putters_served_in_order(void **state)
{
    (void)state;
    weft_queue_kind_t kinds[] = {WEFT_QUEUE_FIFO, WEFT_QUEUE_LIFO, WEFT_QUEUE_PRIORITY};
    for (int k = 0; k < 3; k++) {
        weft_queue_t *q = make(kinds[k], 1);
        assert_int_equal(weft_queue_put(q, ITEM(0), 0), 0);
        enum { N = 4 };
        call_t put[N];
        for (int i = 0; i < N; i++) {
            start_call(&put[i], q, do_put, ITEM(i + 1));
            wait_blocked(q, 0, i + 1, 0);
        }
        for (int i = 0; i <= N; i++) {
            void *v;
            assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), 0);
            assert_int_equal(VALUE(v), i); /* with maxsize 1 the order is the putters' */
        }
        for (int i = 0; i < N; i++) {
            weft_test_join(put[i].tid);
            assert_int_equal(put[i].rc, 0);
        }
        assert_int_equal(weft_queue_release(q), 0);
    }
}

/* ---- task_done and join ---------------------------------------------------------------- */

typedef struct join_world {
    weft_queue_t *q;
    _Atomic long sum;
} join_world_t;

static void join_worker(void *arg, int i)
{
    (void)i;
    join_world_t *w = arg;
    void *v;
    while (weft_queue_get(w->q, WEFT_FOREVER, &v) == 0) {
        atomic_fetch_add(&w->sum, (long)VALUE(v));
        assert_int_equal(weft_queue_task_done(w->q), 0);
    }
}

/* QueueJoinTests.test_queue_join (queue_join_test): workers get and task_done; join returns
 * once every item put has been done, and again for a second batch; then shutdown sends the
 * idle workers home (their get fails with WEFT_ESHUTDOWN). */
static void task_done_and_join(void **state)
{
    (void)state;
    join_world_t w = {make(WEFT_QUEUE_FIFO, 0), 0};
    weft_test_bg_t workers;
    weft_test_bg_start(&workers, 4, join_worker, &w);
    for (int batch = 1; batch <= 2; batch++) {
        for (int i = 0; i < 100; i++)
            assert_int_equal(weft_queue_put(w.q, ITEM(i), WEFT_FOREVER), 0);
        assert_int_equal(weft_queue_join(w.q, WEFT_FOREVER), 0);
        assert_int_equal(atomic_load(&w.sum), batch * 4950L); /* done, not just taken */
    }
    assert_int_equal(weft_queue_shutdown(w.q, false), 0);
    weft_test_bg_join(&workers);
    assert_int_equal(weft_queue_release(w.q), 0);
}

/* QueueJoinTests.test_queue_task_done: join with nothing unfinished returns at once; one
 * task_done too many is an error (ValueError) and changes nothing. */
static void task_done_too_many(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 0);
    assert_int_equal(weft_queue_join(q, 0), 0);
    assert_int_equal(weft_queue_task_done(q), WEFT_EINVAL);
    assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
    void *v;
    assert_int_equal(weft_queue_get(q, 0, &v), 0);
    assert_int_equal(weft_queue_join(q, 0), WEFT_ETIMEDOUT); /* taken, not done */
    assert_int_equal(weft_queue_task_done(q), 0);
    assert_int_equal(weft_queue_task_done(q), WEFT_EINVAL);
    assert_int_equal(weft_queue_join(q, 0), 0);
    assert_int_equal(weft_queue_release(q), 0);
}

/* join takes a timeout (Python's has none): it expires with WEFT_ETIMEDOUT; a blocked join is
 * released by the last task_done. */
static void join_timeout_and_wakeup(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 0);
    assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
    assert_int_equal(weft_queue_put(q, ITEM(2), 0), 0);
    assert_int_equal(weft_queue_join(q, 0.03), WEFT_ETIMEDOUT);
    call_t join;
    start_call(&join, q, do_join, NULL);
    wait_blocked(q, 0, 0, 1);
    void *v;
    assert_int_equal(weft_queue_get(q, 0, &v), 0);
    assert_int_equal(weft_queue_task_done(q), 0);
    assert_int_equal(weft_queue_get(q, 0, &v), 0);
    int b[3];
    weft__queue_blocked(q, b);
    assert_int_equal(b[2], 1); /* one task still unfinished */
    assert_int_equal(weft_queue_task_done(q), 0);
    weft_test_join(join.tid);
    assert_int_equal(join.rc, 0);
    assert_int_equal(weft_queue_release(q), 0);
}

/* ---- shutdown (Python 3.13) ------------------------------------------------------------ */

/* test_shutdown_empty: after shutdown, put fails and get on the empty queue fails, with
 * ShutDown (WEFT_ESHUTDOWN). */
static void shutdown_empty(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 0);
    assert_false(weft_queue_is_shutdown(q));
    assert_int_equal(weft_queue_shutdown(q, false), 0);
    assert_true(weft_queue_is_shutdown(q));
    void *v;
    assert_int_equal(weft_queue_put(q, ITEM(1), 0), WEFT_ESHUTDOWN);
    assert_int_equal(weft_queue_put(q, ITEM(1), WEFT_FOREVER), WEFT_ESHUTDOWN);
    assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), WEFT_ESHUTDOWN);
    assert_int_equal(weft_queue_get_nowait(q, &v), WEFT_ESHUTDOWN);
    assert_int_equal(weft_queue_release(q), 0);
}

/* test_shutdown_nonempty: getters still drain what is queued, then get ShutDown. */
static void shutdown_nonempty(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_LIFO, 0);
    assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
    assert_int_equal(weft_queue_put(q, ITEM(2), 0), 0);
    assert_int_equal(weft_queue_shutdown(q, false), 0);
    void *v;
    assert_int_equal(weft_queue_get(q, 0, &v), 0);
    assert_int_equal(VALUE(v), 2);
    assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), 0);
    assert_int_equal(VALUE(v), 1);
    assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), WEFT_ESHUTDOWN);
    assert_int_equal(weft_queue_release(q), 0);
}

typedef struct disposed {
    int count;
    long sum;
    weft_queue_t *shut; /* set: called by a shutdown, which must not hold the queue's lock */
} disposed_t;

static void count_dispose(void *item, void *arg)
{
    disposed_t *d = arg;
    d->count++;
    d->sum += (long)VALUE(item);
    if (d->shut) assert_true(weft_queue_is_shutdown(d->shut)); /* takes the lock */
}

/* test_shutdown_immediate / test_shutdown_immediate_join: an immediate shutdown discards what
 * is queued (to the dispose function), counts it as done so join returns, and every get fails
 * from then on. */
static void shutdown_immediate(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_PRIORITY, 0);
    disposed_t d = {0, 0, q};
    assert_int_equal(weft_queue_set_dispose(q, count_dispose, &d), 0);
    for (int i = 1; i <= 5; i++) assert_int_equal(weft_queue_put_priority(q, ITEM(i), -i, 0), 0);
    void *v;
    assert_int_equal(weft_queue_get(q, 0, &v), 0); /* taken: unfinished until task_done */
    assert_int_equal(VALUE(v), 5);
    call_t join;
    start_call(&join, q, do_join, NULL);
    wait_blocked(q, 0, 0, 1);
    assert_int_equal(weft_queue_shutdown(q, true), 0);
    assert_int_equal(d.count, 4);
    assert_int_equal(d.sum, 1 + 2 + 3 + 4);
    assert_int_equal(weft_queue_qsize(q), 0);
    assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), WEFT_ESHUTDOWN);
    int b[3];
    weft__queue_blocked(q, b);
    assert_int_equal(b[2], 1); /* the item taken is still unfinished */
    assert_int_equal(weft_queue_task_done(q), 0);
    weft_test_join(join.tid);
    assert_int_equal(join.rc, 0);
    d.shut = NULL;
    assert_int_equal(weft_queue_release(q), 0);
    assert_int_equal(d.count, 4);
}

/* test_shutdown_get (_shutdown_get): getters blocked on an empty queue wake with ShutDown. */
static void shutdown_wakes_blocked_getters(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 0);
    call_t get[3];
    for (int i = 0; i < 3; i++) start_call(&get[i], q, do_get, ITEM(9));
    wait_blocked(q, 3, 0, 0);
    assert_int_equal(weft_queue_shutdown(q, false), 0);
    for (int i = 0; i < 3; i++) {
        weft_test_join(get[i].tid);
        assert_int_equal(get[i].rc, WEFT_ESHUTDOWN);
    }
    assert_int_equal(weft_queue_release(q), 0);
}

/* test_shutdown_put (_shutdown_put): putters blocked on a full queue wake with ShutDown and
 * their items are not queued; what was queued can still be taken. */
static void shutdown_wakes_blocked_putters(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 1);
    assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
    call_t put[2];
    for (int i = 0; i < 2; i++) start_call(&put[i], q, do_put, ITEM(10 + i));
    wait_blocked(q, 0, 2, 0);
    assert_int_equal(weft_queue_shutdown(q, false), 0);
    for (int i = 0; i < 2; i++) {
        weft_test_join(put[i].tid);
        assert_int_equal(put[i].rc, WEFT_ESHUTDOWN);
    }
    void *v;
    assert_int_equal(weft_queue_get(q, 0, &v), 0);
    assert_int_equal(VALUE(v), 1);
    assert_int_equal(weft_queue_get(q, 0, &v), WEFT_ESHUTDOWN);
    assert_int_equal(weft_queue_release(q), 0);
}

/* test_shutdown_allowed_transitions: shutdown may be repeated, and an immediate one may follow
 * a plain one (then the queued items are discarded); the reverse keeps it immediate. */
static void shutdown_repeated_and_upgraded(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 0);
    disposed_t d = {0, 0, q};
    weft_queue_set_dispose(q, count_dispose, &d);
    assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
    assert_int_equal(weft_queue_put(q, ITEM(2), 0), 0);
    assert_int_equal(weft_queue_shutdown(q, false), 0);
    assert_int_equal(weft_queue_shutdown(q, false), 0);
    assert_int_equal(weft_queue_qsize(q), 2);
    assert_int_equal(weft_queue_shutdown(q, true), 0);
    assert_int_equal(d.count, 2);
    assert_int_equal(weft_queue_shutdown(q, false), 0);
    void *v;
    assert_int_equal(weft_queue_get(q, 0, &v), WEFT_ESHUTDOWN);
    assert_int_equal(weft_queue_join(q, 0), 0);
    assert_int_equal(weft_queue_release(q), 0);
}

/* test_shutdown_all_methods_in_one_thread and test_shutdown_immediate_all_methods_in_one_thread,
 * in every kind: after a plain shutdown, puts fail and the queued items can still be taken and
 * marked done, then gets fail (blocking, nowait, with a timeout); after an immediate one, gets
 * fail at once, task_done has nothing left to mark (ValueError) and join returns. */
static void shutdown_all_methods_in_one_thread(void **state)
{
    (void)state;
    weft_queue_kind_t kinds[] = {WEFT_QUEUE_FIFO, WEFT_QUEUE_LIFO, WEFT_QUEUE_PRIORITY};
    for (int k = 0; k < 3; k++)
        for (int immediate = 0; immediate < 2; immediate++) {
            weft_queue_t *q = make(kinds[k], 2);
            assert_int_equal(weft_queue_put(q, ITEM(1), WEFT_FOREVER), 0);
            assert_int_equal(weft_queue_put_nowait(q, ITEM(2)), 0);
            assert_int_equal(weft_queue_shutdown(q, immediate), 0);
            assert_true(weft_queue_is_shutdown(q));
            assert_int_equal(weft_queue_put(q, ITEM(3), WEFT_FOREVER), WEFT_ESHUTDOWN);
            assert_int_equal(weft_queue_put_nowait(q, ITEM(4)), WEFT_ESHUTDOWN);
            void *v;
            if (immediate) {
                assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), WEFT_ESHUTDOWN);
                assert_int_equal(weft_queue_get_nowait(q, &v), WEFT_ESHUTDOWN);
                assert_int_equal(weft_queue_task_done(q), WEFT_EINVAL);
                assert_int_equal(weft_queue_join(q, WEFT_FOREVER), 0);
            } else {
                intptr_t sum = 0;
                for (int i = 0; i < 2; i++) {
                    assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), 0);
                    sum += VALUE(v);
                    assert_int_equal(weft_queue_task_done(q), 0);
                }
                assert_int_equal(sum, 3);
                assert_int_equal(weft_queue_join(q, WEFT_FOREVER), 0);
                assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), WEFT_ESHUTDOWN);
                assert_int_equal(weft_queue_get_nowait(q, &v), WEFT_ESHUTDOWN);
                assert_int_equal(weft_queue_get(q, 1.0, &v), WEFT_ESHUTDOWN); /* at once */
            }
            assert_int_equal(weft_queue_qsize(q), 0);
            assert_int_equal(weft_queue_release(q), 0);
        }
}

/* test_shutdown_immediate_put: putters blocked on a full queue wake with ShutDown; what was
 * queued goes to the dispose function, their own items do not (they were never queued and
 * still belong to them). */
static void shutdown_immediate_wakes_blocked_putters(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 2);
    disposed_t d = {0, 0, q};
    weft_queue_set_dispose(q, count_dispose, &d);
    assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
    assert_int_equal(weft_queue_put(q, ITEM(2), 0), 0);
    call_t put[2];
    for (int i = 0; i < 2; i++) start_call(&put[i], q, do_put, ITEM(10 + i));
    wait_blocked(q, 0, 2, 0);
    assert_int_equal(weft_queue_shutdown(q, true), 0);
    for (int i = 0; i < 2; i++) {
        weft_test_join(put[i].tid);
        assert_int_equal(put[i].rc, WEFT_ESHUTDOWN);
    }
    assert_int_equal(d.count, 2);
    assert_int_equal(d.sum, 1 + 2);
    assert_int_equal(weft_queue_qsize(q), 0);
    assert_int_equal(weft_queue_join(q, 0), 0);
    assert_int_equal(weft_queue_release(q), 0);
}

/* test_shutdown_join / test_shutdown_immediate_join: a plain shutdown does not release join
 * (the queued item is still to be taken and done); an immediate one does, since the items it
 * discards count as done. */
static void shutdown_and_blocked_join(void **state)
{
    (void)state;
    for (int immediate = 0; immediate < 2; immediate++) {
        weft_queue_t *q = make(WEFT_QUEUE_FIFO, 0);
        assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
        call_t join[2];
        for (int i = 0; i < 2; i++) start_call(&join[i], q, do_join, NULL);
        wait_blocked(q, 0, 0, 2);
        assert_int_equal(weft_queue_shutdown(q, immediate), 0);
        if (!immediate) {
            int b[3];
            weft__queue_blocked(q, b);
            assert_int_equal(b[2], 2); /* still waiting for the item to be done */
            void *v;
            assert_int_equal(weft_queue_get(q, 0, &v), 0);
            assert_int_equal(weft_queue_task_done(q), 0);
        }
        for (int i = 0; i < 2; i++) {
            weft_test_join(join[i].tid);
            assert_int_equal(join[i].rc, 0);
        }
        assert_int_equal(weft_queue_release(q), 0);
    }
}

/* test_shutdown_put_join / test_shutdown_immediate_put_join: with one item queued and a join
 * blocked, a put after the shutdown fails; after a plain shutdown the item is still taken and
 * its task_done releases join; after an immediate one the get fails and join is released. */
static void shutdown_put_join(void **state)
{
    (void)state;
    for (int immediate = 0; immediate < 2; immediate++) {
        weft_queue_t *q = make(WEFT_QUEUE_FIFO, 2);
        assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
        call_t join;
        start_call(&join, q, do_join, NULL);
        wait_blocked(q, 0, 0, 1);
        assert_int_equal(weft_queue_shutdown(q, immediate), 0);
        assert_int_equal(weft_queue_put(q, ITEM(2), WEFT_FOREVER), WEFT_ESHUTDOWN);
        void *v;
        if (immediate) {
            assert_int_equal(weft_queue_get_nowait(q, &v), WEFT_ESHUTDOWN);
        } else {
            assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), 0);
            assert_int_equal(VALUE(v), 1);
            assert_int_equal(weft_queue_task_done(q), 0);
        }
        weft_test_join(join.tid);
        assert_int_equal(join.rc, 0);
        assert_int_equal(weft_queue_release(q), 0);
    }
}

static void get_task_done_worker(void *arg, int i)
{
    (void)i;
    weft_queue_t *q = arg;
    void *v;
    assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), 0);
    assert_int_equal(weft_queue_task_done(q), 0);
}

/* test_shutdown_get_task_done_join: after a plain shutdown of a full queue, two getters each
 * take an item and mark it done, and the two blocked joins return. */
static void shutdown_get_task_done_join(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 2);
    assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
    assert_int_equal(weft_queue_put(q, ITEM(2), 0), 0);
    call_t join[2];
    for (int i = 0; i < 2; i++) start_call(&join[i], q, do_join, NULL);
    wait_blocked(q, 0, 0, 2);
    assert_int_equal(weft_queue_shutdown(q, false), 0);
    weft_test_bg_t getters;
    weft_test_bg_start(&getters, 2, get_task_done_worker, q);
    weft_test_bg_join(&getters);
    for (int i = 0; i < 2; i++) {
        weft_test_join(join[i].tid);
        assert_int_equal(join[i].rc, 0);
    }
    void *v;
    assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), WEFT_ESHUTDOWN);
    assert_int_equal(weft_queue_release(q), 0);
}

/* ---- arguments, destroy, cancellation ------------------------------------------------ */

static void bad_arguments(void **state)
{
    (void)state;
    weft_queue_t *q = ITEM(1);
    void *v;
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 0, NULL), WEFT_EINVAL);
    assert_int_equal(weft_queue_create((weft_queue_kind_t)7, 0, &q), WEFT_EINVAL);
    assert_null(q);
    assert_int_equal(weft_queue_release(NULL), WEFT_EINVAL);
    assert_int_equal(weft_queue_put(NULL, NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_queue_put_nowait(NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_queue_get(NULL, 0, &v), WEFT_EINVAL);
    assert_int_equal(weft_queue_get_nowait(NULL, &v), WEFT_EINVAL);
    assert_int_equal(weft_queue_task_done(NULL), WEFT_EINVAL);
    assert_int_equal(weft_queue_join(NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_queue_shutdown(NULL, true), WEFT_EINVAL);
    assert_int_equal(weft_queue_set_dispose(NULL, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_queue_qsize(NULL), 0);
    assert_false(weft_queue_empty(NULL));
    assert_false(weft_queue_full(NULL));
    assert_false(weft_queue_is_shutdown(NULL));

    q = make(WEFT_QUEUE_FIFO, 1);
    assert_int_equal(weft_queue_get(q, 0, NULL), WEFT_EINVAL);
    assert_int_equal(weft_queue_put(q, ITEM(1), NAN), WEFT_EINVAL);
    assert_int_equal(weft_queue_get(q, NAN, &v), WEFT_EINVAL);
    assert_int_equal(weft_queue_join(q, NAN), WEFT_EINVAL);
    assert_int_equal(weft_queue_qsize(q), 0); /* the NaN put did not go in */
    assert_int_equal(weft_queue_release(q), 0);
}

/* destroy refuses (and changes nothing) while a caller is blocked in get or join (put: see
 * destroy_busy_with_blocked_putter); leftovers go to dispose. */
static void destroy_busy_then_disposes_leftovers(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 0);
    call_t get;
    start_call(&get, q, do_get, NULL);
    wait_blocked(q, 1, 0, 0);
    assert_int_equal(weft_queue_release(q), WEFT_EBUSY);
    assert_int_equal(weft_queue_put(q, ITEM(5), 0), 0);
    weft_test_join(get.tid);
    assert_int_equal(VALUE(get.item), 5);

    call_t join;
    start_call(&join, q, do_join, NULL);
    wait_blocked(q, 0, 0, 1);
    assert_int_equal(weft_queue_release(q), WEFT_EBUSY);
    assert_int_equal(weft_queue_task_done(q), 0);
    weft_test_join(join.tid);
    assert_int_equal(join.rc, 0);

    disposed_t d = {0, 0, NULL};
    weft_queue_set_dispose(q, count_dispose, &d);
    for (int i = 1; i <= 3; i++) assert_int_equal(weft_queue_put(q, ITEM(i), 0), 0);
    assert_int_equal(weft_queue_release(q), 0);
    assert_int_equal(d.count, 3);
    assert_int_equal(d.sum, 6);
}

/* destroy refuses while a putter is blocked on a full queue. */
static void destroy_busy_with_blocked_putter(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_LIFO, 1);
    assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
    call_t put;
    start_call(&put, q, do_put, ITEM(2));
    wait_blocked(q, 0, 1, 0);
    assert_int_equal(weft_queue_release(q), WEFT_EBUSY);
    void *v;
    assert_int_equal(weft_queue_get(q, 0, &v), 0);
    weft_test_join(put.tid);
    assert_int_equal(put.rc, 0);
    assert_int_equal(weft_queue_release(q), 0);
}

/* A blocked get, put or join canceled by its task returns WEFT_ECANCELED and takes or leaves
 * nothing; a canceled caller whose call need not wait still succeeds. */
static void cancel_blocked_calls(void **state)
{
    (void)state;
    weft_queue_t *q = make(WEFT_QUEUE_FIFO, 1);
    call_t get;
    start_call(&get, q, do_get, ITEM(3));
    wait_blocked(q, 1, 0, 0);
    weft__waitctx_cancel(atomic_load(&get.ctx));
    weft_test_join(get.tid);
    assert_int_equal(get.rc, WEFT_ECANCELED);
    assert_int_equal(VALUE(get.item), 3);

    assert_int_equal(weft_queue_put(q, ITEM(1), 0), 0);
    call_t put;
    start_call(&put, q, do_put, ITEM(2));
    wait_blocked(q, 0, 1, 0);
    weft__waitctx_cancel(atomic_load(&put.ctx));
    weft_test_join(put.tid);
    assert_int_equal(put.rc, WEFT_ECANCELED);
    assert_int_equal(weft_queue_qsize(q), 1);
    void *v;
    assert_int_equal(weft_queue_get(q, 0, &v), 0);
    assert_int_equal(VALUE(v), 1);

    assert_int_equal(weft_queue_put(q, ITEM(5), 0), 0);
    call_t join;
    start_call(&join, q, do_join, NULL);
    wait_blocked(q, 0, 0, 1);
    weft__waitctx_cancel(atomic_load(&join.ctx));
    weft_test_join(join.tid);
    assert_int_equal(join.rc, WEFT_ECANCELED);
    assert_int_equal(weft_queue_join(q, 0), WEFT_ETIMEDOUT); /* still unfinished */
    assert_int_equal(weft_queue_get(q, 0, &v), 0);
    assert_int_equal(VALUE(v), 5);

    weft__waitctx_t *me = weft__waitctx_current();
    weft__waitctx_cancel(me);
    assert_int_equal(weft_queue_put(q, ITEM(4), WEFT_FOREVER), 0); /* room: no wait */
    assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), 0);
    assert_int_equal(weft_queue_get(q, WEFT_FOREVER, &v), WEFT_ECANCELED);
    weft__waitctx_uncancel(me);
    assert_int_equal(weft_queue_release(q), 0);
}

/* A background call whose thread stays alive (so its waiting context does too) until told to
 * go, for races that cancel it while it may already have returned. */
typedef struct lingering {
    call_t call;
    int (*fn)(call_t *c);
    atomic_bool go_home; /* not an Event: a pending cancel would make waiting on it fail */
    atomic_bool ready;   /* the canceler runs */
    atomic_bool go;      /* ... and starts when the other side is about to act */
    int delay;           /* pauses the canceler waits after the start */
} lingering_t;

static int lingering_get(call_t *c)
{
    return weft_queue_get(c->q, WEFT_FOREVER, &c->item);
}

static int lingering_put(call_t *c)
{
    return weft_queue_put(c->q, c->item, WEFT_FOREVER);
}

static void *lingering_main(void *p)
{
    lingering_t *l = p;
    atomic_store(&l->call.ctx, weft__waitctx_current());
    l->call.rc = l->fn(&l->call);
    while (!atomic_load(&l->go_home)) sched_yield();
    return NULL;
}

static void *cancel_main(void *p)
{
    lingering_t *l = p;
    atomic_store(&l->ready, true);
    while (!atomic_load(&l->go)) weft__cpu_relax();
    for (int i = 0; i < l->delay; i++) weft__cpu_relax();
    weft__waitctx_cancel(atomic_load(&l->call.ctx));
    return NULL;
}

/* A cancel racing with the hand-off that would end a blocked call loses nothing: a blocked get
 * either returns the item put at that moment or fails with WEFT_ECANCELED and leaves it
 * queued; a blocked put either has its item moved in by the get at that moment or fails and
 * has not queued it. Rounds stagger the two sides' head starts so both outcomes occur (counts
 * are printed; neither is required, since timing decides). */
static void cancel_races_with_hand_off(void **state)
{
    (void)state;
    int rounds = SANITIZED ? 64 : 256, outcomes[2][2] = {{0}};
    for (int r = 0; r < rounds; r++)
        for (int putting = 0; putting < 2; putting++) {
            weft_queue_t *q = make(WEFT_QUEUE_FIFO, 1);
            if (putting) assert_int_equal(weft_queue_put(q, ITEM(-1), 0), 0);
            lingering_t l = {.fn = putting ? lingering_put : lingering_get, .delay = r % 16 * 8};
            l.call = (call_t){.q = q, .item = ITEM(putting ? r : -2), .rc = 1};
            pthread_t caller = weft_test_start(lingering_main, &l);
            wait_blocked(q, !putting, putting, 0);
            pthread_t canceler = weft_test_start(cancel_main, &l);
            while (!atomic_load(&l.ready)) sched_yield();
            atomic_store(&l.go, true);
            for (int i = 0; i < r / 16 % 16 * 256; i++)
                weft__cpu_relax(); /* the other head start */
            void *v;
            if (putting) {
                assert_int_equal(weft_queue_get(q, 0, &v), 0);
                assert_int_equal(VALUE(v), -1);
            } else {
                assert_int_equal(weft_queue_put(q, ITEM(r), 0), 0);
            }
            weft_test_join(canceler);
            atomic_store(&l.go_home, true);
            weft_test_join(caller);
            int rc = l.call.rc;
            assert_true(rc == 0 || rc == WEFT_ECANCELED);
            outcomes[putting][rc == 0]++;
            if (putting) { /* the putter's item is queued exactly when its put succeeded */
                assert_int_equal(weft_queue_qsize(q), rc == 0 ? 1 : 0);
            } else if (rc == 0) {
                assert_int_equal(VALUE(l.call.item), r);
                assert_true(weft_queue_empty(q));
            } else {
                assert_int_equal(weft_queue_qsize(q), 1);
            }
            if (weft_queue_get_nowait(q, &v) == 0) assert_int_equal(VALUE(v), r);
            assert_int_equal(weft_queue_release(q), 0);
        }
    print_message("get: %d canceled, %d served; put: %d canceled, %d served\n", outcomes[0][0],
                  outcomes[0][1], outcomes[1][0], outcomes[1][1]);
}

/* A huge maxsize costs nothing up front: the buffer grows with the contents. */
static void huge_maxsize_allocates_lazily(void **state)
{
    (void)state;
    long before = weft_test_live_allocs();
    weft_queue_t *q = make(WEFT_QUEUE_PRIORITY, SIZE_MAX / 2);
    for (int i = 0; i < 3; i++) assert_int_equal(weft_queue_put(q, ITEM(i), 0), 0);
    assert_true(weft_test_live_allocs() - before <= 2);
    assert_false(weft_queue_full(q));
    assert_int_equal(weft_queue_release(q), 0);
}

/* ---- stress ------------------------------------------------------------------------------ */

enum { PRODUCERS = 4, CONSUMERS = 4 };

typedef struct stress {
    weft_queue_t *q;
    int per_producer;
    double get_timeout; /* consumers poll with this timeout and retry */
    _Atomic long sum, xor_, count;
} stress_t;

static void stress_producer(void *arg, int i)
{
    stress_t *s = arg;
    for (int k = 0; k < s->per_producer; k++) {
        intptr_t item = (intptr_t)i * 10000000 + k + 1;
        int rc;
        while ((rc = weft_queue_put_priority(s->q, ITEM(item), k % 7, s->get_timeout)) ==
               WEFT_ETIMEDOUT)
            ;
        assert_int_equal(rc, 0);
    }
}

static void stress_consumer(void *arg, int i)
{
    (void)i;
    stress_t *s = arg;
    long sum = 0, x = 0, n = 0;
    for (;;) {
        void *v;
        int rc = weft_queue_get(s->q, s->get_timeout, &v);
        if (rc == WEFT_ETIMEDOUT) continue;
        if (rc == WEFT_ESHUTDOWN) break;
        assert_int_equal(rc, 0);
        sum += (long)VALUE(v);
        x ^= (long)VALUE(v);
        n++;
        assert_int_equal(weft_queue_task_done(s->q), 0);
    }
    atomic_fetch_add(&s->sum, sum);
    atomic_fetch_xor(&s->xor_, x);
    atomic_fetch_add(&s->count, n);
}

/* Many producers and consumers, every kind, bounded (tiny and small) and unbounded, blocking
 * and with short timeouts (so hand-offs race with expiring waits): the sum, xor and count of
 * what comes out equal what went in, so nothing was lost or duplicated. */
static void stress_producers_consumers(void **state)
{
    (void)state;
    int per = SANITIZED ? 2000 : 20000;
    weft_queue_kind_t kinds[] = {WEFT_QUEUE_FIFO, WEFT_QUEUE_LIFO, WEFT_QUEUE_PRIORITY};
    size_t sizes[] = {0, 1, 16};
    double timeouts[] = {WEFT_FOREVER, 0.0005};
    for (int k = 0; k < 3; k++)
        for (int m = 0; m < 3; m++)
            for (int t = 0; t < 2; t++) {
                stress_t s = {make(kinds[k], sizes[m]), per, timeouts[t], 0, 0, 0};
                weft_test_bg_t prod, cons;
                weft_test_bg_start(&cons, CONSUMERS, stress_consumer, &s);
                weft_test_bg_start(&prod, PRODUCERS, stress_producer, &s);
                weft_test_bg_join(&prod);
                assert_int_equal(weft_queue_join(s.q, WEFT_FOREVER), 0);
                weft_queue_shutdown(s.q, false);
                weft_test_bg_join(&cons);
                long sum = 0, x = 0;
                for (int i = 0; i < PRODUCERS; i++)
                    for (int j = 0; j < per; j++) {
                        long item = (long)i * 10000000 + j + 1;
                        sum += item;
                        x ^= item;
                    }
                assert_int_equal(atomic_load(&s.count), (long)PRODUCERS * per);
                assert_int_equal(atomic_load(&s.sum), sum);
                assert_int_equal(atomic_load(&s.xor_), x);
                assert_int_equal(weft_queue_release(s.q), 0);
            }
}

/* test_shutdown_all_methods_in_many_threads and its immediate twin: writers put until the
 * queue is shut down under them, readers (some blocking, some polling with get_nowait) take
 * and mark done until get fails with ShutDown, joiners wait for everything to be done. Every
 * item that was put is accounted for exactly once: taken by a reader, or discarded by the
 * immediate shutdown to the dispose function. Unbounded FIFO as in CPython, and a small
 * bounded priority queue so that putters are blocked when the shutdown comes. */
typedef struct storm {
    weft_queue_t *q;
    int per_writer;
    _Atomic long puts, put_sum, put_xor, got, got_sum, got_xor;
    long disposed, disposed_sum, disposed_xor; /* only the shutting-down thread writes these */
} storm_t;

static void storm_writer(void *arg, int i)
{
    storm_t *s = arg;
    long sum = 0, x = 0;
    for (int k = 0; k < s->per_writer; k++) {
        long item = (long)i * 10000000 + k + 1;
        int rc = weft_queue_put_priority(s->q, ITEM(item), k % 5, WEFT_FOREVER);
        if (rc == WEFT_ESHUTDOWN) break;
        assert_int_equal(rc, 0);
        sum += item;
        x ^= item;
        atomic_fetch_add_explicit(&s->puts, 1, memory_order_relaxed);
    }
    atomic_fetch_add(&s->put_sum, sum);
    atomic_fetch_xor(&s->put_xor, x);
}

static void storm_reader(void *arg, int i)
{
    storm_t *s = arg;
    long sum = 0, x = 0, n = 0;
    for (;;) {
        void *v;
        int rc = i % 2 ? weft_queue_get_nowait(s->q, &v) : weft_queue_get(s->q, WEFT_FOREVER, &v);
        if (rc == WEFT_ETIMEDOUT) {
            sched_yield();
            continue;
        }
        if (rc == WEFT_ESHUTDOWN) break;
        assert_int_equal(rc, 0);
        sum += (long)VALUE(v);
        x ^= (long)VALUE(v);
        n++;
        assert_int_equal(weft_queue_task_done(s->q), 0);
    }
    atomic_fetch_add(&s->got, n);
    atomic_fetch_add(&s->got_sum, sum);
    atomic_fetch_xor(&s->got_xor, x);
}

static void storm_joiner(void *arg, int i)
{
    (void)i;
    storm_t *s = arg;
    assert_int_equal(weft_queue_join(s->q, WEFT_FOREVER), 0);
}

static void storm_dispose(void *item, void *arg)
{
    storm_t *s = arg;
    s->disposed++;
    s->disposed_sum += (long)VALUE(item);
    s->disposed_xor ^= (long)VALUE(item);
}

static void shutdown_all_methods_in_many_threads(void **state)
{
    (void)state;
    enum { WRITERS = 4, READERS = 4, JOINERS = 2 };
    int per = SANITIZED ? 2000 : 16000;
    for (int shape = 0; shape < 2; shape++)
        for (int immediate = 0; immediate < 2; immediate++) {
            storm_t s = {.per_writer = per};
            s.q = shape ? make(WEFT_QUEUE_PRIORITY, 8) : make(WEFT_QUEUE_FIFO, 0);
            weft_queue_set_dispose(s.q, storm_dispose, &s);
            weft_test_bg_t readers = {0}, writers = {0}, joiners = {0};
            weft_test_bg_start(&readers, READERS, storm_reader, &s);
            weft_test_bg_start(&writers, WRITERS, storm_writer, &s);
            weft_test_bg_start(&joiners, JOINERS, storm_joiner, &s);
            while (atomic_load(&s.puts) < (long)WRITERS * per / 2) sched_yield();
            assert_int_equal(weft_queue_shutdown(s.q, immediate), 0);
            weft_test_bg_join(&writers);
            weft_test_bg_join(&readers);
            weft_test_bg_join(&joiners);
            assert_true(weft_queue_empty(s.q));
            if (!immediate) assert_int_equal(s.disposed, 0);
            assert_int_equal(atomic_load(&s.got) + s.disposed, atomic_load(&s.puts));
            assert_int_equal(atomic_load(&s.got_sum) + s.disposed_sum, atomic_load(&s.put_sum));
            assert_int_equal(atomic_load(&s.got_xor) ^ s.disposed_xor, atomic_load(&s.put_xor));
            assert_int_equal(weft_queue_join(s.q, 0), 0);
            assert_int_equal(weft_queue_task_done(s.q), WEFT_EINVAL);
            assert_int_equal(weft_queue_release(s.q), 0);
        }
}

/* ---- out of memory -------------------------------------------------------------------- */

static int oom_create(void *ctx)
{
    (void)ctx;
    weft_queue_t *q;
    int rc = weft_queue_create(WEFT_QUEUE_PRIORITY, 4, &q);
    if (rc) {
        assert_null(q);
        return rc;
    }
    return weft_queue_release(q);
}

/* FailingQueueTest (a queue whose internal operation fails leaves it consistent): a put that
 * cannot grow the buffer fails with WEFT_ENOMEM, its item is not queued, and the queue keeps
 * working. */
static int oom_put_grows(void *ctx)
{
    weft_queue_kind_t kind = *(weft_queue_kind_t *)ctx;
    weft_queue_t *q;
    int rc = weft_queue_create(kind, 0, &q);
    if (rc) return rc;
    int put = 0;
    for (; put < 100; put++) {
        rc = weft_queue_put(q, ITEM(put), 0);
        if (rc) break;
    }
    assert_int_equal(weft_queue_qsize(q), (size_t)put);
    for (int i = 0; i < put; i++) {
        void *v;
        assert_int_equal(weft_queue_get(q, 0, &v), 0);
        /* order survived the failed growth (priorities all 0: insertion order) */
        assert_int_equal(VALUE(v), kind == WEFT_QUEUE_LIFO ? put - 1 - i : i);
    }
    assert_int_equal(weft_queue_release(q), 0);
    return rc;
}

static void out_of_memory(void **state)
{
    (void)state;
    assert_true(weft_test_oom(oom_create, NULL) >= 1);
    weft_queue_kind_t kinds[] = {WEFT_QUEUE_FIFO, WEFT_QUEUE_LIFO, WEFT_QUEUE_PRIORITY};
    for (int k = 0; k < 3; k++) assert_true(weft_test_oom(oom_put_grows, &kinds[k]) >= 2);
}

/* The timeout rules (weft/core.h): get from an empty queue, put into a full one and join of
 * unfinished work with -0.5 poll (WEFT_ETIMEDOUT at once; queue.Queue.get(timeout=-0.5) would
 * raise ValueError, weft polls); WEFT_FOREVER blocks until served; NaN is WEFT_EINVAL. */
typedef struct timed_queue {
    weft_queue_t *q;
    double timeout;
    void *item;
} timed_queue_t;

static int timed_queue_get(void *p)
{
    timed_queue_t *t = p;
    return weft_queue_get(t->q, t->timeout, &t->item);
}

static int timed_queue_put(void *p)
{
    timed_queue_t *t = p;
    return weft_queue_put(t->q, ITEM(2), t->timeout);
}

static int timed_queue_join(void *p)
{
    timed_queue_t *t = p;
    return weft_queue_join(t->q, t->timeout);
}

static void queue_put_one(void *p)
{
    assert_int_equal(weft_queue_put(p, ITEM(1), 0), 0);
}

static void queue_take_one(void *p)
{
    void *v;
    assert_int_equal(weft_queue_get(p, 0, &v), 0);
    assert_int_equal(weft_queue_task_done(p), 0);
}

static void queue_negative_timeout_polls(void **state)
{
    (void)state;
    timed_queue_t t = {.timeout = -0.5};
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 1, &t.q), 0);
    assert_int_equal(weft_test_polls(timed_queue_get, &t), WEFT_ETIMEDOUT);
    t.timeout = WEFT_FOREVER;
    weft_test_blocks_until(timed_queue_get, &t, queue_put_one, t.q, 0);
    assert_int_equal(VALUE(t.item), 1);
    assert_int_equal(weft_queue_task_done(t.q), 0);
    assert_int_equal(weft_queue_put(t.q, ITEM(1), 0), 0); /* full now */
    t.timeout = -0.5;
    assert_int_equal(weft_test_polls(timed_queue_put, &t), WEFT_ETIMEDOUT);
    assert_int_equal(weft_test_polls(timed_queue_join, &t), WEFT_ETIMEDOUT);
    assert_int_equal(weft_queue_put(t.q, ITEM(2), NAN), WEFT_EINVAL);
    t.timeout = WEFT_FOREVER;
    weft_test_blocks_until(timed_queue_put, &t, queue_take_one, t.q, 0);
    weft_test_blocks_until(timed_queue_join, &t, queue_take_one, t.q, 0);
    assert_int_equal(weft_queue_release(t.q), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(queue_negative_timeout_polls),
    WEFT_TEST(fifo_order),
    WEFT_TEST(lifo_order),
    WEFT_TEST(priority_order_and_ties),
    WEFT_TEST(null_items_are_items),
    WEFT_TEST(qsize_empty_full),
    WEFT_TEST(nowait_calls_fail_at_once),
    WEFT_TEST(timeouts_expire_and_change_nothing),
    WEFT_TEST(blocked_get_woken_by_put),
    WEFT_TEST(blocked_put_woken_by_get),
    WEFT_TEST(blocked_getters_served_in_order),
    WEFT_TEST(blocked_putters_served_in_order),
    WEFT_TEST(task_done_and_join),
    WEFT_TEST(task_done_too_many),
    WEFT_TEST(join_timeout_and_wakeup),
    WEFT_TEST(shutdown_empty),
    WEFT_TEST(shutdown_nonempty),
    WEFT_TEST(shutdown_immediate),
    WEFT_TEST(shutdown_wakes_blocked_getters),
    WEFT_TEST(shutdown_wakes_blocked_putters),
    WEFT_TEST(shutdown_repeated_and_upgraded),
    WEFT_TEST(shutdown_all_methods_in_one_thread),
    WEFT_TEST(shutdown_immediate_wakes_blocked_putters),
    WEFT_TEST(shutdown_and_blocked_join),
    WEFT_TEST(shutdown_put_join),
    WEFT_TEST(shutdown_get_task_done_join),
    WEFT_TEST(bad_arguments),
    WEFT_TEST(destroy_busy_then_disposes_leftovers),
    WEFT_TEST(destroy_busy_with_blocked_putter),
    WEFT_TEST(cancel_blocked_calls),
    WEFT_TEST(cancel_races_with_hand_off),
    WEFT_TEST(huge_maxsize_allocates_lazily),
    WEFT_TEST(stress_producers_consumers),
    WEFT_TEST(shutdown_all_methods_in_many_threads),
    WEFT_TEST(out_of_memory),
};
WEFT_TEST_MAIN(cases)
