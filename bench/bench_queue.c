/*
 * bench_queue.c — weft's Queue against GLib's GAsyncQueue and Python's queue.Queue.
 *
 * P producer threads put ITEMS pointers in total into one queue (each its share, items 1, 2,
 * ... so none is NULL, which GAsyncQueue refuses) while C consumer threads get them (each its
 * share); the consumers' sums must add up to what was put. The figure is items per second,
 * timed from the moment every thread has passed a start barrier to the last one's end
 * (threads are created before and joined after: not counted). Four shapes: 1 producer / 1
 * consumer and 2 / 2, each with an unbounded queue and a bounded one (maxsize 1024, so
 * producers also block when it is full). Contenders:
 *   weft_queue    weft_queue_put / weft_queue_get (FIFO, WEFT_FOREVER)
 *   GAsyncQueue   g_async_queue_push / g_async_queue_pop (unbounded only: GLib has no
 *                 bounded queue)
 *   python queue  queue.Queue(maxsize) with threading producers and consumers, in Debian's
 *                 /usr/bin/python3 (bench/peer_queue.py, started with popen once per
 *                 repetition; the script times itself, so interpreter start-up is not
 *                 counted) with fewer items, since it is about 100x slower
 * Each repetition runs every contender once, order rotating; figures are medians
 * (bench_common.h). Goals: >= 2x GAsyncQueue, >= 50x Python.
 */
#include "bench_common.h"

#include <pthread.h>
#include <stdbool.h>

#include "weft/queue.h"

#ifdef WEFT_HAVE_GLIB
#include <glib.h>
#endif

enum {
    REPS = 7,
    ITEMS = 1000000, /* items per repetition (C queues) */
    PY_ITEMS = 60000,
    BOUND = 1024, /* maxsize of the bounded queues */
    MAX_THREADS = 4,
    MAX_CASES = 3,
};

/* The i-th of `parts` near-equal shares of `total` (peer_queue.py splits the same way). */
static long share(long total, int parts, int i)
{
    return total / parts + (i < total % parts ? 1 : 0);
}

/* ---- one run: producers and consumers around any queue ---------------------------------- */

typedef struct queue_ops {
    void *(*create)(size_t maxsize);
    void (*put)(void *q, void *item);
    void *(*get)(void *q);
    void (*destroy)(void *q);
} queue_ops_t;

typedef struct shape {
    int producers, consumers;
    size_t maxsize; /* 0: unbounded */
} shape_t;

typedef struct run {
    const queue_ops_t *ops;
    void *q;
    pthread_barrier_t start;
} run_t;

typedef struct role {
    run_t *run;
    long n;   /* items to put or get */
    long sum; /* consumers: the sum of what they got */
} role_t;

static void *producer(void *arg)
{
    role_t *me = arg;
    const queue_ops_t *ops = me->run->ops;
    void *q = me->run->q;
    pthread_barrier_wait(&me->run->start);
    for (long k = 1; k <= me->n; k++) ops->put(q, (void *)(uintptr_t)k);
    return NULL;
}

static void *consumer(void *arg)
{
    role_t *me = arg;
    const queue_ops_t *ops = me->run->ops;
    void *q = me->run->q;
    long sum = 0;
    pthread_barrier_wait(&me->run->start);
    for (long k = 0; k < me->n; k++) sum += (long)(uintptr_t)ops->get(q);
    me->sum = sum;
    return NULL;
}

/* One repetition of one contender in one shape; returns items per second. */
static double run_shape(const queue_ops_t *ops, const shape_t *s)
{
    run_t r = {.ops = ops, .q = ops->create(s->maxsize)};
    int n = s->producers + s->consumers;
    pthread_barrier_init(&r.start, NULL, (unsigned)n + 1);
    pthread_t t[MAX_THREADS];
    role_t roles[MAX_THREADS];
    long expected = 0;
    for (int i = 0; i < n; i++) {
        bool prod = i < s->producers;
        long items =
            prod ? share(ITEMS, s->producers, i) : share(ITEMS, s->consumers, i - s->producers);
        roles[i] = (role_t){.run = &r, .n = items};
        if (prod) expected += items * (items + 1) / 2;
        bench_check(pthread_create(&t[i], NULL, prod ? producer : consumer, &roles[i]) == 0,
                    "pthread_create");
    }
    pthread_barrier_wait(&r.start);
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    double rate = ITEMS / ((double)(bench_now_ns() - t0) / 1e9);
    long got = 0;
    for (int i = s->producers; i < n; i++) got += roles[i].sum;
    bench_check(got == expected, "every item got exactly once (sum mismatch)");
    pthread_barrier_destroy(&r.start);
    ops->destroy(r.q);
    return rate;
}

/* ---- weft_queue ------------------------------------------------------------------------- */

static void *weft_create(size_t maxsize)
{
    weft_queue_t *q;
    bench_check(weft_queue_create(WEFT_QUEUE_FIFO, maxsize, &q) == 0, "weft_queue_create");
    return q;
}
static void weft_put(void *q, void *item)
{
    bench_check(weft_queue_put(q, item, WEFT_FOREVER) == 0, "weft_queue_put");
}
static void *weft_get(void *q)
{
    void *item;
    bench_check(weft_queue_get(q, WEFT_FOREVER, &item) == 0, "weft_queue_get");
    return item;
}
static void weft_destroy(void *q)
{
    bench_check(weft_queue_empty(q) && weft_queue_release(q) == 0, "weft_queue_release");
}
static const queue_ops_t weft_ops = {weft_create, weft_put, weft_get, weft_destroy};

/* ---- GLib GAsyncQueue ------------------------------------------------------------------- */
#ifdef WEFT_HAVE_GLIB

static void *glib_create(size_t maxsize)
{
    (void)maxsize; /* only run unbounded */
    return g_async_queue_new();
}
static void glib_put(void *q, void *item)
{
    g_async_queue_push(q, item);
}
static void *glib_get(void *q)
{
    return g_async_queue_pop(q);
}
static void glib_destroy(void *q)
{
    bench_check(g_async_queue_length(q) == 0, "GAsyncQueue drained");
    g_async_queue_unref(q);
}
static const queue_ops_t glib_ops = {glib_create, glib_put, glib_get, glib_destroy};
#endif

/* ---- a contender in a shape, as a bench_case_t ---------------------------------------------- */

typedef struct contender {
    const char *name;
    const queue_ops_t *ops; /* NULL: Python */
    const shape_t *shape;
} contender_t;

static double contender_run(void *arg, double *extra)
{
    contender_t *c = arg;
    (void)extra;
#ifdef WEFT_HAVE_PYTHON
    if (!c->ops) {
        char cmd[1024], line[256];
        snprintf(cmd, sizeof cmd, "%s %s %d %d %d %zu", WEFT_PYTHON, WEFT_PEER_QUEUE_PY,
                 c->shape->producers, c->shape->consumers, PY_ITEMS, c->shape->maxsize);
        FILE *p = popen(cmd, "r");
        bench_check(p != NULL, "popen python3");
        double rate = -1;
        while (fgets(line, sizeof line, p))
            if (strncmp(line, "items/s:", 8) == 0) rate = atof(line + 8);
        bench_check(pclose(p) == 0 && rate > 0, "peer_queue.py");
        return rate;
    }
#endif
    return run_shape(c->ops, c->shape);
}

/* Runs one shape for weft and the peers that have it, prints the figures and weft's
 * speedups (weft's rate over the peer's). */
static void compare(const char *figure, const shape_t *s, bool python)
{
    contender_t who[MAX_CASES];
    int n = 0;
    who[n++] = (contender_t){"weft_queue", &weft_ops, s};
    if (s->maxsize == 0) {
#ifdef WEFT_HAVE_GLIB
        who[n++] = (contender_t){"GAsyncQueue", &glib_ops, s};
#endif
    }
    if (python) who[n++] = (contender_t){"python queue.Queue", NULL, s};
    bench_case_t cases[MAX_CASES];
    for (int i = 0; i < n; i++) cases[i] = (bench_case_t){.run = contender_run, .arg = &who[i]};
    bench_interleave(cases, n, REPS);
    char fig[128];
    for (int i = 0; i < n; i++) {
        snprintf(fig, sizeof fig, "%s %s", figure, who[i].name);
        bench_figure(fig, cases[i].median, "items/s");
    }
    for (int i = 1; i < n; i++)
        bench_speedup(figure, who[i].name, cases[0].median / cases[i].median);
    fflush(stdout);
}

int main(void)
{
    bench_header("bench_queue: weft Queue vs GAsyncQueue and Python queue.Queue, producers "
                 "and consumers passing pointers",
                 REPS);
#ifndef WEFT_HAVE_GLIB
    printf("peer GAsyncQueue: not installed\n");
#endif
    bool python = false;
#ifdef WEFT_HAVE_PYTHON
    python = access(WEFT_PYTHON, X_OK) == 0;
#endif
    if (!python) printf("peer python queue.Queue: not installed\n");
    printf("# %d items per repetition (Python: %d); bounded queues hold at most %d\n", ITEMS,
           PY_ITEMS, BOUND);
    char fig[64];
    for (int threads = 1; threads <= 2; threads++) {
        for (int bounded = 0; bounded <= 1; bounded++) {
            shape_t s = {threads, threads, bounded ? BOUND : 0};
            snprintf(fig, sizeof fig, "queue %dP/%dC %s", threads, threads,
                     bounded ? "bounded" : "unbounded");
            compare(fig, &s, python);
        }
    }
    return 0;
}
