/*
 * bench_pool.c — weft's thread pool against GLib's GThreadPool, libuv's threadpool
 * (uv_queue_work), oneTBB's task_group and Python's ThreadPoolExecutor.
 *
 * Every pool has 2 worker threads (this machine's CPU count) and is created and warmed up
 * before timing; the submitting thread is the caller's own. The task is a no-op: it adds 1
 * to a counter. Two figures:
 *   throughput  submit TASKS tasks, then wait until all have run; tasks per second. weft
 *               keeps every future (weft_executor_submit), waits with weft_future_wait
 *               ALL_COMPLETED and releases them, all timed. weft fire-and-forget: the same
 *               submits with no future handed out, the completion counted as GLib's (the
 *               peers keep no per-task result either: compare them with this row too).
 *               GLib pushes TASKS items into a
 *               GThreadPool(max_threads 2, exclusive); the task that brings an atomic count
 *               to TASKS signals a GCond the caller waits on. libuv: TASKS uv_queue_work
 *               requests (allocated before timing) from the loop thread, then uv_run until
 *               every after_work callback ran (UV_THREADPOOL_SIZE=2). TBB: TASKS
 *               task_group::run then wait, inside a task_arena of 2 threads (the caller takes
 *               one slot and runs tasks in wait: 10-20 % of them, measured).
 *               Python: ThreadPoolExecutor(max_workers=2), submit then wait.
 *   round trip  one task at a time: submit, wait for its completion, repeated ROUNDS times;
 *               the figure is the median round trip in µs. weft: submit then
 *               weft_future_result; GLib: push then wait on a GMutex/GCond flag the task
 *               sets; libuv: uv_queue_work then uv_run (it returns once after_work ran); TBB
 *               task_group: run then wait, where wait runs the task in the caller itself
 *               (every time, measured: no thread crossing, not a pool's round trip); TBB
 *               task_arena enqueue: the caller, outside the arena, enqueues the task, which an
 *               arena worker runs, and waits for the flag it sets (20 µs of spinning, then a
 *               condition variable: weft's waiting policy); Python: submit().result().
 * Python runs in Debian's /usr/bin/python3 (bench/peer_pool.py, started with popen once per
 * repetition; the script times itself, so interpreter start-up is not counted) with fewer
 * tasks, since it is about 100x slower. Peers missing at build time print "peer <name>: not
 * installed". Each repetition runs every pool once, order rotating; figures are medians
 * (bench_common.h). Goals: ahead of GLib and libuv, at least TBB's throughput, 50x Python.
 */
#include "bench_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "weft/executor.h"
#include "weft/future.h"
#include "weft/sync.h"

#ifdef WEFT_HAVE_GLIB
#include <glib.h>
#endif
#ifdef WEFT_HAVE_LIBUV
#include <uv.h>
#endif
#ifdef WEFT_HAVE_TBB
#include "peer_tbb.h"
#endif

enum {
    REPS = 11,
    WORKERS = 2,    /* every pool's worker threads */
    TASKS = 200000, /* no-op tasks per throughput repetition (C pools) */
    PY_TASKS = 10000,
    ROUNDS = 2000, /* round trips per latency repetition (C pools) */
    PY_ROUNDS = 1000,
    MAX_CASES = 7,
};

static atomic_long ran; /* what every no-op task touches, in every pool */

static void touch(void)
{
    /* relaxed: a counter nobody reads while tasks run; it only gives the task a body */
    atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
}

/* Median of the round trips of one repetition, in µs. */
static double median_us(double *ns, long n)
{
    qsort(ns, (size_t)n, sizeof *ns, bench_cmp_double);
    return (n % 2 ? ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2) / 1e3;
}

static double round_ns[ROUNDS]; /* one repetition's round trips (cases run one at a time) */

/* ---- weft ------------------------------------------------------------------------------- */

static weft_executor_t *weft_pool;
static weft_future_t *futures[TASKS];

static int weft_noop(void *arg, void **result)
{
    (void)arg, (void)result;
    touch();
    return 0;
}

static double weft_throughput(void *arg, double *extra)
{
    (void)arg, (void)extra;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < TASKS; i++)
        bench_check(weft_executor_submit(weft_pool, weft_noop, NULL, &futures[i]) == 0,
                    "weft_executor_submit");
    size_t ndone = 0;
    bench_check(weft_future_wait(futures, TASKS, WEFT_ALL_COMPLETED, WEFT_FOREVER, &ndone) == 0 &&
                    ndone == TASKS,
                "weft_future_wait ALL_COMPLETED");
    for (long i = 0; i < TASKS; i++) weft_future_release(futures[i]);
    return TASKS / ((double)(bench_now_ns() - t0) / 1e9);
}

static double weft_round_trip(void *arg, double *extra)
{
    (void)arg, (void)extra;
    for (long i = 0; i < ROUNDS; i++) {
        int64_t t0 = bench_now_ns();
        weft_future_t *f;
        bench_check(weft_executor_submit(weft_pool, weft_noop, NULL, &f) == 0,
                    "weft_executor_submit");
        bench_check(weft_future_result(f, WEFT_FOREVER, NULL) == 0, "weft_future_result");
        weft_future_release(f);
        round_ns[i] = (double)(bench_now_ns() - t0);
    }
    return median_us(round_ns, ROUNDS);
}

/* Fire and forget: weft_executor_submit with no future handed out (out NULL), the completion
 * counted as GLib's is: the task that brings the count to TASKS sets an Event. */
static atomic_long ff_count;
static weft_event_t ff_done;

static int weft_ff_task(void *arg, void **result)
{
    (void)arg, (void)result;
    touch();
    if (atomic_fetch_add_explicit(&ff_count, 1, memory_order_acq_rel) + 1 == TASKS)
        weft_event_set(&ff_done);
    return 0;
}

static double weft_ff_throughput(void *arg, double *extra)
{
    (void)arg, (void)extra;
    atomic_store_explicit(&ff_count, 0, memory_order_relaxed); /* no task runs meanwhile */
    weft_event_clear(&ff_done);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < TASKS; i++)
        bench_check(weft_executor_submit(weft_pool, weft_ff_task, NULL, NULL) == 0,
                    "weft_executor_submit");
    bench_check(weft_event_wait(&ff_done, WEFT_FOREVER) == 0, "weft_event_wait");
    return TASKS / ((double)(bench_now_ns() - t0) / 1e9);
}

static void weft_setup(void)
{
    bench_check(weft_thread_pool_create(WORKERS, NULL, &weft_pool) == 0, "weft_thread_pool_create");
    weft_event_init(&ff_done);
    weft_throughput(NULL, NULL); /* starts both workers */
}

/* ---- GLib GThreadPool ------------------------------------------------------------------- */
#ifdef WEFT_HAVE_GLIB

typedef struct glib_done {
    atomic_long count, target;
    GMutex mutex;
    GCond cond;
    bool finished;
} glib_done_t;

static GThreadPool *glib_pool;
static glib_done_t glib_done;

static void glib_finish(glib_done_t *d)
{
    g_mutex_lock(&d->mutex);
    d->finished = true;
    g_cond_signal(&d->cond);
    g_mutex_unlock(&d->mutex);
}

static void glib_wait(glib_done_t *d)
{
    g_mutex_lock(&d->mutex);
    while (!d->finished) g_cond_wait(&d->cond, &d->mutex);
    d->finished = false;
    g_mutex_unlock(&d->mutex);
}

/* The task: a no-op whose completion the caller counts. */
static void glib_task(gpointer data, gpointer user_data)
{
    glib_done_t *d = data;
    (void)user_data;
    touch();
    if (atomic_fetch_add_explicit(&d->count, 1, memory_order_acq_rel) + 1 ==
        atomic_load_explicit(&d->target, memory_order_relaxed)) /* set before the pushes */
        glib_finish(d);
}

static void glib_start(long n)
{
    atomic_store_explicit(&glib_done.count, 0, memory_order_relaxed);
    atomic_store_explicit(&glib_done.target, n, memory_order_relaxed);
    /* relaxed is enough: g_thread_pool_push hands the item over through a mutex */
}

static double glib_throughput(void *arg, double *extra)
{
    (void)arg, (void)extra;
    glib_start(TASKS);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < TASKS; i++)
        bench_check(g_thread_pool_push(glib_pool, &glib_done, NULL), "g_thread_pool_push");
    glib_wait(&glib_done);
    return TASKS / ((double)(bench_now_ns() - t0) / 1e9);
}

static double glib_round_trip(void *arg, double *extra)
{
    (void)arg, (void)extra;
    for (long i = 0; i < ROUNDS; i++) {
        glib_start(1);
        int64_t t0 = bench_now_ns();
        bench_check(g_thread_pool_push(glib_pool, &glib_done, NULL), "g_thread_pool_push");
        glib_wait(&glib_done);
        round_ns[i] = (double)(bench_now_ns() - t0);
    }
    return median_us(round_ns, ROUNDS);
}

static void glib_setup(void)
{
    g_mutex_init(&glib_done.mutex);
    g_cond_init(&glib_done.cond);
    GError *err = NULL;
    glib_pool = g_thread_pool_new(glib_task, NULL, WORKERS, TRUE, &err);
    bench_check(glib_pool != NULL, "g_thread_pool_new");
    glib_throughput(NULL, NULL);
}
#endif /* WEFT_HAVE_GLIB */

/* ---- libuv uv_queue_work ---------------------------------------------------------------- */
#ifdef WEFT_HAVE_LIBUV

static uv_loop_t uv_loop;
static uv_work_t *uv_reqs; /* [TASKS] */
static long uv_after;      /* after_work callbacks run (loop thread only) */

static void uv_task(uv_work_t *req)
{
    (void)req;
    touch();
}

static void uv_after_task(uv_work_t *req, int status)
{
    (void)req;
    bench_check(status == 0, "uv_queue_work status");
    uv_after++;
}

static double uv_throughput(void *arg, double *extra)
{
    (void)arg, (void)extra;
    uv_after = 0;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < TASKS; i++)
        bench_check(uv_queue_work(&uv_loop, &uv_reqs[i], uv_task, uv_after_task) == 0,
                    "uv_queue_work");
    uv_run(&uv_loop, UV_RUN_DEFAULT);
    double rate = TASKS / ((double)(bench_now_ns() - t0) / 1e9);
    bench_check(uv_after == TASKS, "every after_work callback ran");
    return rate;
}

static double uv_round_trip(void *arg, double *extra)
{
    (void)arg, (void)extra;
    for (long i = 0; i < ROUNDS; i++) {
        uv_after = 0;
        int64_t t0 = bench_now_ns();
        bench_check(uv_queue_work(&uv_loop, &uv_reqs[0], uv_task, uv_after_task) == 0,
                    "uv_queue_work");
        uv_run(&uv_loop, UV_RUN_DEFAULT); /* returns once after_work ran: nothing else is active */
        round_ns[i] = (double)(bench_now_ns() - t0);
        bench_check(uv_after == 1, "after_work ran");
    }
    return median_us(round_ns, ROUNDS);
}

static void uv_setup(void)
{
    bench_check(uv_loop_init(&uv_loop) == 0, "uv_loop_init");
    uv_reqs = calloc(TASKS, sizeof *uv_reqs);
    bench_check(uv_reqs != NULL, "calloc");
    uv_throughput(NULL, NULL); /* starts the threadpool */
}
#endif /* WEFT_HAVE_LIBUV */

/* ---- oneTBB task_group (peer_tbb.cpp) --------------------------------------------------- */
#ifdef WEFT_HAVE_TBB

static double tbb_throughput(void *arg, double *extra)
{
    (void)arg, (void)extra;
    return TASKS / (peer_tbb_throughput_ns(TASKS) / 1e9);
}

static double tbb_round_trip(void *arg, double *extra)
{
    (void)arg, (void)extra;
    peer_tbb_round_trips(ROUNDS, round_ns);
    return median_us(round_ns, ROUNDS);
}

static double tbb_enqueue_round_trip(void *arg, double *extra)
{
    (void)arg, (void)extra;
    peer_tbb_enqueue_round_trips(ROUNDS, round_ns);
    return median_us(round_ns, ROUNDS);
}
#endif /* WEFT_HAVE_TBB */

/* ---- Python ThreadPoolExecutor (peer_pool.py) ------------------------------------------- */
#ifdef WEFT_HAVE_PYTHON

/* Runs peer_pool.py once and returns the value of its "<key>: <value>" line. */
static double python_run(const char *mode, long n, const char *key)
{
    char cmd[1024], line[256];
    snprintf(cmd, sizeof cmd, "%s %s %s %ld", WEFT_PYTHON, WEFT_PEER_POOL_PY, mode, n);
    FILE *p = popen(cmd, "r");
    bench_check(p != NULL, "popen python3");
    double value = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, p))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') value = atof(line + klen + 1);
    bench_check(pclose(p) == 0 && value > 0, "peer_pool.py");
    return value;
}

static double python_throughput(void *arg, double *extra)
{
    (void)arg, (void)extra;
    return python_run("throughput", PY_TASKS, "tasks/s");
}

static double python_round_trip(void *arg, double *extra)
{
    (void)arg, (void)extra;
    return python_run("latency", PY_ROUNDS, "us per round trip");
}
#endif /* WEFT_HAVE_PYTHON */

/* ---- the comparison --------------------------------------------------------------------- */

/* A contender runs one figure or both (NULL: not this one). `variant`: a weft variant whose
 * speedups are printed as "<figure> <variant>" (weft itself: ""); NULL for a peer. */
typedef struct contender {
    const char *name;
    double (*throughput)(void *, double *);
    double (*round_trip)(void *, double *);
    const char *variant;
} contender_t;

/* Runs one figure for every contender that has it (weft first), prints them and each weft
 * variant's speedup over each peer. rate: the figure is a rate (weft's over the peer's is the
 * speedup), else a time (the peer's over weft's). */
static void compare(const char *figure, const char *unit, const contender_t *all, int nall,
                    bool rate)
{
    bench_case_t cases[MAX_CASES];
    const contender_t *who[MAX_CASES];
    int n = 0;
    for (int i = 0; i < nall; i++) {
        double (*run)(void *, double *) = rate ? all[i].throughput : all[i].round_trip;
        if (!run) continue;
        who[n] = &all[i];
        cases[n++] = (bench_case_t){.run = run};
    }
    bench_interleave(cases, n, REPS);
    char fig[128];
    for (int i = 0; i < n; i++) {
        snprintf(fig, sizeof fig, "%s %s", figure, who[i]->name);
        bench_figure(fig, cases[i].median, unit);
    }
    for (int w = 0; w < n; w++) {
        if (!who[w]->variant) continue;
        snprintf(fig, sizeof fig, "%s%s%s", figure, *who[w]->variant ? " " : "", who[w]->variant);
        for (int i = 0; i < n; i++) {
            if (who[i]->variant) continue;
            double x = rate ? cases[w].median / cases[i].median : cases[i].median / cases[w].median;
            bench_speedup(fig, who[i]->name, x);
        }
    }
    fflush(stdout);
}

int main(void)
{
    /* libuv reads it once, when its threadpool starts (the first uv_queue_work). */
    setenv("UV_THREADPOOL_SIZE", "2", 1);
    bench_header("bench_pool: weft thread pool vs GThreadPool, libuv, oneTBB, Python "
                 "ThreadPoolExecutor; 2 workers each",
                 REPS);
    contender_t who[MAX_CASES];
    int n = 0;
    weft_setup();
    who[n++] = (contender_t){"weft_thread_pool", weft_throughput, weft_round_trip, ""};
    who[n++] = (contender_t){"weft_thread_pool fire-and-forget", weft_ff_throughput, NULL,
                             "fire-and-forget"};
#ifdef WEFT_HAVE_GLIB
    glib_setup();
    who[n++] = (contender_t){"GThreadPool", glib_throughput, glib_round_trip, NULL};
#else
    printf("peer GThreadPool: not installed\n");
#endif
#ifdef WEFT_HAVE_LIBUV
    uv_setup();
    who[n++] = (contender_t){"uv_queue_work", uv_throughput, uv_round_trip, NULL};
#else
    printf("peer uv_queue_work: not installed\n");
#endif
#ifdef WEFT_HAVE_TBB
    bench_check(peer_tbb_init(WORKERS) == 0, "tbb::task_arena");
    who[n++] = (contender_t){"tbb::task_group", tbb_throughput, tbb_round_trip, NULL};
    who[n++] = (contender_t){"tbb::task_arena enqueue", NULL, tbb_enqueue_round_trip, NULL};
#else
    printf("peer tbb::task_group: not installed\n");
#endif
#ifdef WEFT_HAVE_PYTHON
    if (access(WEFT_PYTHON, X_OK) == 0)
        who[n++] =
            (contender_t){"python ThreadPoolExecutor", python_throughput, python_round_trip, NULL};
    else
#endif
        printf("peer python ThreadPoolExecutor: not installed\n");
    printf("# throughput: %d no-op tasks per repetition (Python: %d); round trip: median of "
           "%d (Python: %d)\n",
           TASKS, PY_TASKS, ROUNDS, PY_ROUNDS);

    compare("pool throughput", "tasks/s", who, n, true);
    compare("pool round trip", "µs per submit+result", who, n, false);

    bench_check(weft_executor_shutdown(weft_pool, true, false, WEFT_FOREVER) == 0,
                "weft_executor_shutdown");
    weft_executor_release(weft_pool);
#ifdef WEFT_HAVE_GLIB
    g_thread_pool_free(glib_pool, FALSE, TRUE);
#endif
#ifdef WEFT_HAVE_LIBUV
    bench_check(uv_loop_close(&uv_loop) == 0, "uv_loop_close");
    free(uv_reqs);
#endif
    return 0;
}
