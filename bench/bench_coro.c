/*
 * bench_coro.c — weft's coroutines against boost.context, ucontext, Go's goroutines and
 * gevent's greenlets.
 *
 * Four comparisons (issue 5), each run once per repetition for every contender, order rotating;
 * figures are medians (bench_common.h):
 *   switch       two coroutines take turns with weft_co_yield, SWITCHES yields each, joined by
 *                the thread's root; ns per switch (one yield = one switch). Peers: a round trip
 *                between the caller and one other context with boost.context's jump_fcontext
 *                and boost::context::fiber::resume, and glibc's swapcontext (peer_fcontext.cpp,
 *                peer_ucontext.c: the bare switch, no scheduler); Go, two goroutines
 *                ping-ponging on unbuffered channels with GOMAXPROCS=1 (peer_coro.go); gevent,
 *                two greenlets taking turns with gevent.sleep(0) (through gevent's hub, as
 *                weft_co_yield goes through weft's) and two bare greenlets switching with
 *                greenlet.switch (peer_coro.py).
 *   spawn+join   coroutines in batches: a batch is spawned, then joined; ns per coroutine.
 *                Batches of 10,000 (a stack each, beyond any cache) and of 50 (the steady
 *                state of a server spawning per request: stacks come from the hub's cache).
 *                weft three ways: weft_co_spawn + weft_co_join + weft_co_release each;
 *                weft_group_spawn + one weft_group_join; weft_co_spawn + a countdown whose last
 *                coroutine sets an Event (Go's WaitGroup). Peers: Go, go + sync.WaitGroup
 *                with GOMAXPROCS=1 and 2; gevent, gevent.spawn + gevent.joinall.
 *   spawn+join on 2 hubs   (section "hubs") the countdown way on a weft_hubs_t of 2 hubs: a
 *                driver coroutine on hub 0 spawns each batch of 10,000 with WEFT_HUBS_ANY and
 *                waits for the countdown. Peers: the countdown on one hub, Go GOMAXPROCS=2.
 *   memory       PARKED coroutines each parked in weft_time_sleep(10^6 s), or in weft_event_wait
 *                on one Event; the growth of the resident set (/proc/self/statm) over the
 *                count, in a fresh process (this program re-run with --memory) so no freed
 *                memory of an earlier run is reused. Peers: Go, goroutines parked receiving on
 *                one channel (the resident set, and the runtime's MemStats.Sys); gevent,
 *                greenlets parked in Event.wait().
 *   spawn parked SPAWN_PARKED coroutines started at once, each blocking in weft_event_wait on one
 *                Event (a countdown sets another Event once all are parked), then the Event is
 *                set and all are waited for (a countdown whose last coroutine sets an Event);
 *                seconds from the first spawn to the last end, in a fresh process (this program
 *                re-run with --parked) so every stack is a new one. Also, as a comment, how the
 *                second half of the spawn calls took against the first (1: linear). Peer: Go,
 *                as many goroutines blocking on one channel, counted in and out by two
 *                WaitGroups (Go's default GOMAXPROCS). It needs address space for every stack
 *                (64 KiB each, MAP_NORESERVE: vm.overcommit_memory must not be 2) and about
 *                5 KiB of RAM per coroutine, 6 KiB per goroutine: the section says so and skips
 *                when MemAvailable is short of SPAWN_PARKED * 8 KiB.
 *   cross-thread wake   a round trip through two Events between a plain thread and a coroutine
 *                on another thread's hub: the thread sets `ping` and waits for `pong`, the
 *                coroutine waits for `ping`, clears it and sets `pong`; the median round trip
 *                of ROUNDS in µs. Also the coroutine waiting with a 60 s timeout instead of
 *                forever (a hub with a timer armed skips the deadlock check when it idles),
 *                and the same between two plain threads (weft's thread parker on both
 *                sides). The peer: two pthread mutex+condvar flags between two threads.
 * Peers missing at build time print "peer <name>: not installed". Go is built by CMake from
 * peer_coro.go into the build directory; Python is Debian's /usr/bin/python3 with
 * python3-gevent. Peer programs are started with popen once per repetition and time
 * themselves after a warm-up, so start-up is not counted.
 * Arguments pick sections (switch, spawn, hubs, memory, parked, wake); none runs them all.
 * Goals: switch no slower than boost.context and >= 30x faster than ucontext; spawn+join faster
 * than Go; memory per parked coroutine no more than Go's.
 */
#include "bench_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "peer_context.h"
#include "weft/coro.h"
#include "weft/sync.h"

enum {
    REPS = 7,
    MEM_REPS = 3,
    SWITCHES = 1000000, /* yields per coroutine (weft), round trips (boost.context) */
    UC_SWITCHES = 100000,
    GO_SWITCHES = 200000,
    PY_SLEEP0 = 50000,
    PY_SWITCHES = 200000,
    BIG_TOTAL = 20000, /* coroutines per spawn+join repetition in big batches (C, Go) */
    SMALL_TOTAL = 100000,
    PY_SPAWN_TOTAL = 10000,
    BIG_BATCH = 10000,
    SMALL_BATCH = 50,
    PARKED = 100000,
    SPAWN_PARKED = 1000000,
    ROUNDS = 2000, /* round trips per cross-thread repetition */
    WARM_ROUNDS = 100,
    MAX_CASES = 8,
};

static char self_exe[1024]; /* this program, re-run for the memory figures */

/* ---- the comparison --------------------------------------------------------------------- */

/* One contender. A second figure of the same run (extra) is printed as a figure of its own
 * and compared like one when extra_unit is NULL, else as a '#' comment in extra_unit. */
typedef struct contender {
    const char *name;
    double (*run)(void *arg, double *extra);
    void *arg;
    const char *extra_name;
    const char *extra_unit;
} contender_t;

/* Runs `figure` for every contender (the first nweft are weft's), prints the medians and
 * every weft contender's speedup over every peer. Every figure is a cost (time, bytes): the
 * speedup is the peer's over weft's. */
static void compare(const char *figure, const char *unit, const contender_t *who, int n, int nweft,
                    int reps)
{
    bench_case_t cases[MAX_CASES];
    for (int i = 0; i < n; i++) cases[i] = (bench_case_t){.run = who[i].run, .arg = who[i].arg};
    bench_interleave(cases, n, reps);
    char fig[160];
    for (int i = 0; i < n; i++) {
        snprintf(fig, sizeof fig, "%s %s", figure, who[i].name);
        bench_figure(fig, cases[i].median, unit);
        if (who[i].extra_name && !who[i].extra_unit) {
            snprintf(fig, sizeof fig, "%s %s %s", figure, who[i].name, who[i].extra_name);
            bench_figure(fig, cases[i].extra_median, unit);
        } else if (who[i].extra_name) {
            printf("# %s %s: %s ", figure, who[i].name, who[i].extra_name);
            bench_print_value(cases[i].extra_median);
            printf(" %s\n", who[i].extra_unit);
        }
    }
    for (int w = 0; w < nweft; w++) {
        if (nweft > 1)
            snprintf(fig, sizeof fig, "%s %s", figure, who[w].name);
        else
            snprintf(fig, sizeof fig, "%s", figure);
        for (int p = nweft; p < n; p++) {
            bench_speedup(fig, who[p].name, cases[p].median / cases[w].median);
            if (who[p].extra_name && !who[p].extra_unit) {
                char peer[96];
                snprintf(peer, sizeof peer, "%s %s", who[p].name, who[p].extra_name);
                bench_speedup(fig, peer, cases[p].extra_median / cases[w].median);
            }
        }
    }
    fflush(stdout);
}

/* ---- peer programs (Go, Python, this program re-run) ------------------------------------ */

/* A command line run with popen; its "<key>: <value>" line is the figure, and extra_key's
 * (if any) the second figure. */
typedef struct command {
    char line[1200];
    const char *key, *extra_key;
} command_t;

static double value_of(const char *line, const char *key)
{
    size_t k = strlen(key);
    return strncmp(line, key, k) == 0 && line[k] == ':' ? atof(line + k + 1) : -1;
}

static double command_run(void *arg, double *extra)
{
    command_t *c = arg;
    FILE *p = popen(c->line, "r");
    bench_check(p != NULL, "popen");
    char line[256];
    double value = -1, v;
    while (fgets(line, sizeof line, p)) {
        if ((v = value_of(line, c->key)) >= 0) value = v;
        if (c->extra_key && (v = value_of(line, c->extra_key)) >= 0) *extra = v;
    }
    if (pclose(p) != 0 || value < 0) {
        fprintf(stderr, "bench: `%s` failed or printed no \"%s\"\n", c->line, c->key);
        exit(1);
    }
    return value;
}

static bool have_go(void)
{
#ifdef WEFT_HAVE_GO
    return access(WEFT_PEER_CORO_GO, X_OK) == 0;
#else
    return false;
#endif
}

static bool have_gevent(void)
{
#ifdef WEFT_HAVE_GEVENT
    return access(WEFT_PYTHON, X_OK) == 0;
#else
    return false;
#endif
}

/* Fills c with a run of the Go peer (GOMAXPROCS=procs; 0: Go's default). */
static void go_command(command_t *c, int procs, const char *args, const char *key)
{
#ifdef WEFT_HAVE_GO
    char env[32] = "";
    if (procs) snprintf(env, sizeof env, "GOMAXPROCS=%d ", procs);
    snprintf(c->line, sizeof c->line, "%s%s %s", env, WEFT_PEER_CORO_GO, args);
#else
    (void)procs, (void)args;
#endif
    c->key = key;
    c->extra_key = NULL;
}

static void python_command(command_t *c, const char *args, const char *key)
{
#ifdef WEFT_HAVE_GEVENT
    snprintf(c->line, sizeof c->line, "%s %s %s", WEFT_PYTHON, WEFT_PEER_CORO_PY, args);
#else
    (void)args;
#endif
    c->key = key;
    c->extra_key = NULL;
}

/* ---- switch ----------------------------------------------------------------------------- */

static void yielder(void *arg)
{
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) bench_check(weft_co_yield() == 0, "weft_co_yield");
}

static double weft_switch(void *arg, double *extra)
{
    (void)arg, (void)extra;
    long n = SWITCHES;
    weft_co_t *a, *b;
    bench_check(weft_co_spawn(yielder, &n, NULL, &a) == 0, "weft_co_spawn");
    bench_check(weft_co_spawn(yielder, &n, NULL, &b) == 0, "weft_co_spawn");
    int64_t t0 = bench_now_ns();
    bench_check(weft_co_join(a, WEFT_FOREVER) == 0 && weft_co_join(b, WEFT_FOREVER) == 0,
                "weft_co_join");
    int64_t elapsed = bench_now_ns() - t0;
    weft_co_release(a);
    weft_co_release(b);
    return (double)elapsed / (double)(2 * n);
}

#ifdef WEFT_HAVE_BOOST_CONTEXT
static double fcontext_switch(void *arg, double *extra)
{
    (void)arg, (void)extra;
    return peer_fcontext_switch_ns(SWITCHES);
}

static double fiber_switch(void *arg, double *extra)
{
    (void)arg, (void)extra;
    double ns = peer_fiber_switch_ns(SWITCHES);
    bench_check(ns > 0, "boost::context::fiber");
    return ns;
}
#endif

static double ucontext_switch(void *arg, double *extra)
{
    (void)arg, (void)extra;
    return peer_ucontext_switch_ns(UC_SWITCHES);
}

static void bench_switch(void)
{
    static command_t go, sleep0, greenlet;
    contender_t who[MAX_CASES];
    int n = 0;
    who[n++] = (contender_t){"weft_co_yield", weft_switch, NULL, NULL, NULL};
#ifdef WEFT_HAVE_BOOST_CONTEXT
    who[n++] = (contender_t){"boost jump_fcontext", fcontext_switch, NULL, NULL, NULL};
    who[n++] = (contender_t){"boost fiber", fiber_switch, NULL, NULL, NULL};
#endif
    who[n++] = (contender_t){"ucontext swapcontext", ucontext_switch, NULL, NULL, NULL};
    char args[64];
    if (have_go()) {
        snprintf(args, sizeof args, "switch %d", GO_SWITCHES);
        go_command(&go, 1, args, "ns per switch");
        who[n++] = (contender_t){"go GOMAXPROCS=1 channels", command_run, &go, NULL, NULL};
    }
    if (have_gevent()) {
        snprintf(args, sizeof args, "sleep0 %d", PY_SLEEP0);
        python_command(&sleep0, args, "ns per switch");
        who[n++] = (contender_t){"gevent sleep(0)", command_run, &sleep0, NULL, NULL};
        snprintf(args, sizeof args, "switch %d", PY_SWITCHES);
        python_command(&greenlet, args, "ns per switch");
        who[n++] = (contender_t){"greenlet.switch", command_run, &greenlet, NULL, NULL};
    }
    printf("# switch: weft %d yields per coroutine, boost.context %d round trips, ucontext %d, "
           "Go %d, gevent sleep(0) %d yields per greenlet, greenlet.switch %d round trips\n",
           SWITCHES, SWITCHES, UC_SWITCHES, GO_SWITCHES, PY_SLEEP0, PY_SWITCHES);
    compare("switch", "ns per switch", who, n, 1, REPS);
}

/* ---- spawn+join ------------------------------------------------------------------------- */

static long ran; /* what every spawned coroutine touches (all on this thread: no atomics) */

static void touch(void *arg)
{
    (void)arg;
    ran++;
}

static weft_co_t *handles[BIG_BATCH];

/* Runs `total` coroutines in batches of `batch` through one of the three weft ways; returns
 * ns per coroutine. */
typedef enum spawn_way { WAY_SPAWN, WAY_GROUP, WAY_GO } spawn_way_t;

typedef struct countdown {
    long left;
    weft_event_t done;
} countdown_t;

static void touch_and_count(void *arg)
{
    countdown_t *c = arg;
    ran++;
    if (--c->left == 0) weft_event_set(&c->done);
}

static double weft_spawn_batches(spawn_way_t way, long total, long batch)
{
    weft_group_t *g = NULL;
    countdown_t c;
    if (way == WAY_GROUP) bench_check(weft_group_create(0, &g) == 0, "weft_group_create");
    if (way == WAY_GO) bench_check(weft_event_init(&c.done) == 0, "weft_event_init");
    long ran0 = ran;
    int64_t t0 = bench_now_ns();
    for (long done = 0; done < total; done += batch) {
        if (way == WAY_SPAWN) {
            for (long i = 0; i < batch; i++)
                bench_check(weft_co_spawn(touch, NULL, NULL, &handles[i]) == 0, "weft_co_spawn");
            for (long i = 0; i < batch; i++) {
                bench_check(weft_co_join(handles[i], WEFT_FOREVER) == 0, "weft_co_join");
                weft_co_release(handles[i]);
            }
        } else if (way == WAY_GROUP) {
            for (long i = 0; i < batch; i++)
                bench_check(weft_group_spawn(g, touch, NULL, WEFT_FOREVER, NULL) == 0,
                            "weft_group_spawn");
            bench_check(weft_group_join(g, WEFT_FOREVER) == 0, "weft_group_join");
        } else {
            c.left = batch;
            for (long i = 0; i < batch; i++)
                bench_check(weft_co_spawn(touch_and_count, &c, NULL, NULL) == 0, "weft_co_spawn");
            bench_check(weft_event_wait(&c.done, WEFT_FOREVER) == 0, "weft_event_wait");
            weft_event_clear(&c.done);
        }
    }
    int64_t elapsed = bench_now_ns() - t0;
    bench_check(ran - ran0 == total, "every coroutine ran once");
    if (g) bench_check(weft_group_release(g) == 0, "weft_group_release");
    if (way == WAY_GO) weft_event_destroy(&c.done);
    return (double)elapsed / (double)total;
}

typedef struct spawn_case {
    spawn_way_t way;
    long total, batch;
} spawn_case_t;

static double weft_spawn_run(void *arg, double *extra)
{
    spawn_case_t *s = arg;
    (void)extra;
    return weft_spawn_batches(s->way, s->total, s->batch);
}

static void bench_spawn(long total, long batch)
{
    static spawn_case_t ways[3];
    static command_t go1, go2, py;
    contender_t who[MAX_CASES];
    int n = 0;
    ways[0] = (spawn_case_t){WAY_SPAWN, total, batch};
    ways[1] = (spawn_case_t){WAY_GROUP, total, batch};
    ways[2] = (spawn_case_t){WAY_GO, total, batch};
    who[n++] = (contender_t){"weft_co_spawn+join+release", weft_spawn_run, &ways[0], NULL, NULL};
    who[n++] = (contender_t){"weft_group_spawn+group_join", weft_spawn_run, &ways[1], NULL, NULL};
    who[n++] = (contender_t){"weft_co_spawn+event countdown", weft_spawn_run, &ways[2], NULL, NULL};
    for (int i = 0; i < 3; i++) weft_spawn_run(&ways[i], NULL); /* warm-up (stacks, hub) */
    char args[64];
    if (have_go()) {
        snprintf(args, sizeof args, "spawn %ld %ld", total, batch);
        go_command(&go1, 1, args, "ns per spawn+join");
        go_command(&go2, 2, args, "ns per spawn+join");
        who[n++] = (contender_t){"go GOMAXPROCS=1 WaitGroup", command_run, &go1, NULL, NULL};
        who[n++] = (contender_t){"go GOMAXPROCS=2 WaitGroup", command_run, &go2, NULL, NULL};
    }
    if (have_gevent()) {
        snprintf(args, sizeof args, "spawn %d %ld", PY_SPAWN_TOTAL, batch);
        python_command(&py, args, "ns per spawn+join");
        who[n++] = (contender_t){"gevent spawn+joinall", command_run, &py, NULL, NULL};
    }
    char figure[64];
    snprintf(figure, sizeof figure, "spawn+join batch %ld", batch);
    printf("# %s: %ld coroutines per repetition (gevent: %d), spawned %ld at a time, then "
           "joined\n",
           figure, total, PY_SPAWN_TOTAL, batch);
    compare(figure, "ns per coroutine", who, n, 3, REPS);
}

/* ---- spawn+join on several hubs (weft_hubs_t) ------------------------------------------ */

/* Go's shape on 2 cores: a driver coroutine on hub 0 spawns each batch onto the least loaded of
 * the hubs (WEFT_HUBS_ANY: half stay on its own hub, half go to the other's thread), then waits
 * for a countdown (an atomic count whose last coroutine sets an Event: Go's WaitGroup). The
 * main thread only starts the driver and joins it. Peers: the same countdown on one hub (this
 * thread's: weft_co_spawn+event countdown above), and Go with GOMAXPROCS=2. */
typedef struct hubs_countdown {
    _Atomic long left;
    _Atomic long ran;
    weft_event_t done;
} hubs_countdown_t;

typedef struct hubs_case {
    weft_hubs_t *hubs;
    long total, batch;
    hubs_countdown_t c;
    int64_t elapsed;
} hubs_case_t;

static void touch_and_count_atomic(void *arg)
{
    hubs_countdown_t *c = arg;
    atomic_fetch_add_explicit(&c->ran, 1, memory_order_relaxed);
    if (atomic_fetch_sub_explicit(&c->left, 1, memory_order_acq_rel) == 1) weft_event_set(&c->done);
}

static void hubs_driver(void *arg)
{
    hubs_case_t *h = arg;
    int64_t t0 = bench_now_ns();
    for (long done = 0; done < h->total; done += h->batch) {
        atomic_store_explicit(&h->c.left, h->batch, memory_order_relaxed);
        for (long i = 0; i < h->batch; i++)
            bench_check(weft_hubs_spawn(h->hubs, WEFT_HUBS_ANY, touch_and_count_atomic, &h->c, NULL,
                                        NULL) == 0,
                        "weft_hubs_spawn");
        bench_check(weft_event_wait(&h->c.done, WEFT_FOREVER) == 0, "weft_event_wait");
        weft_event_clear(&h->c.done);
    }
    h->elapsed = bench_now_ns() - t0;
}

static double weft_hubs_spawn_run(void *arg, double *extra)
{
    hubs_case_t *h = arg;
    (void)extra;
    atomic_store(&h->c.ran, 0);
    weft_co_t *d;
    bench_check(weft_hubs_spawn(h->hubs, 0, hubs_driver, h, NULL, &d) == 0, "weft_hubs_spawn");
    bench_check(weft_co_join(d, WEFT_FOREVER) == 0, "weft_co_join");
    weft_co_release(d);
    bench_check(atomic_load(&h->c.ran) == h->total, "every coroutine ran once");
    return (double)h->elapsed / (double)h->total;
}

static void bench_spawn_hubs(long total, long batch, size_t nhubs)
{
    static hubs_case_t h;
    static spawn_case_t one;
    static command_t go;
    contender_t who[MAX_CASES];
    int n = 0;
    h = (hubs_case_t){.total = total, .batch = batch};
    bench_check(weft_hubs_start(nhubs, NULL, &h.hubs) == 0, "weft_hubs_start");
    bench_check(weft_event_init(&h.c.done) == 0, "weft_event_init");
    one = (spawn_case_t){WAY_GO, total, batch};
    char name[64];
    snprintf(name, sizeof name, "weft_hubs %zu hubs", nhubs);
    who[n++] = (contender_t){name, weft_hubs_spawn_run, &h, NULL, NULL};
    who[n++] = (contender_t){"weft one hub", weft_spawn_run, &one, NULL, NULL};
    weft_hubs_spawn_run(&h, NULL); /* warm-up (stacks, hubs) */
    weft_spawn_run(&one, NULL);
    char args[64];
    if (have_go()) {
        snprintf(args, sizeof args, "spawn %ld %ld", total, batch);
        go_command(&go, (int)nhubs, args, "ns per spawn+join");
        static char go_name[48];
        snprintf(go_name, sizeof go_name, "go GOMAXPROCS=%zu WaitGroup", nhubs);
        who[n++] = (contender_t){go_name, command_run, &go, NULL, NULL};
    }
    char figure[64];
    snprintf(figure, sizeof figure, "spawn+join on %zu hubs batch %ld", nhubs, batch);
    printf("# %s: %ld coroutines per repetition, spawned %ld at a time from a coroutine of hub "
           "0 onto the least loaded hub, then counted down\n",
           figure, total, batch);
    compare(figure, "ns per coroutine", who, n, 1, REPS);
    bench_check(weft_hubs_stop(h.hubs, WEFT_FOREVER) == 0, "weft_hubs_stop");
    bench_check(weft_hubs_release(h.hubs) == 0, "weft_hubs_release");
    weft_event_destroy(&h.c.done);
}

/* ---- memory per parked coroutine (this program re-run with --memory) -------------------- */

static long resident_bytes(void)
{
    long size, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    if (f) fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static long mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int ch;
    while (f && (ch = fgetc(f)) != EOF) n += ch == '\n';
    if (f) fclose(f);
    return n;
}

static weft_event_t park_event;
static long parked;

static void park_sleeping(void *arg)
{
    (void)arg;
    parked++;
    weft_time_sleep(1e6); /* canceled: WEFT_ECANCELED */
}

static void park_on_event(void *arg)
{
    (void)arg;
    parked++;
    bench_check(weft_event_wait(&park_event, WEFT_FOREVER) == 0, "weft_event_wait");
}

/* The child's side: parks n coroutines and prints the growth per coroutine. */
static int memory_child(const char *how, long n)
{
    bool sleeping = strcmp(how, "sleep") == 0;
    weft_co_t **cos = malloc((size_t)n * sizeof *cos);
    bench_check(cos != NULL && weft_event_init(&park_event) == 0, "setup");
    memset(cos, 0, (size_t)n * sizeof *cos); /* resident before the first measure */
    weft_co_t *first;
    bench_check(weft_co_spawn(touch, NULL, NULL, &first) == 0, "weft_co_spawn"); /* the hub */
    bench_check(weft_co_join(first, WEFT_FOREVER) == 0, "weft_co_join");
    weft_co_release(first);
    long rss0 = resident_bytes(), maps0 = mappings();
    for (long i = 0; i < n; i++)
        bench_check(weft_co_spawn(sleeping ? park_sleeping : park_on_event, NULL, NULL, &cos[i]) ==
                        0,
                    "weft_co_spawn");
    while (parked < n) weft_co_yield(); /* one yield: each runs to its park */
    long rss1 = resident_bytes(), maps1 = mappings();
    printf("bytes per coroutine RSS: %.1f\n", (double)(rss1 - rss0) / (double)n);
    printf("mappings added: %ld\n", maps1 - maps0);
    if (sleeping)
        for (long i = 0; i < n; i++) weft_co_cancel(cos[i]);
    else
        weft_event_set(&park_event);
    for (long i = 0; i < n; i++) {
        bench_check(weft_co_join(cos[i], WEFT_FOREVER) == 0, "weft_co_join");
        weft_co_release(cos[i]);
    }
    free(cos);
    return 0;
}

static void bench_memory(void)
{
    static command_t sleeping, waiting, go, py;
    contender_t who[MAX_CASES];
    int n = 0;
    snprintf(sleeping.line, sizeof sleeping.line, "%s --memory sleep %d", self_exe, PARKED);
    snprintf(waiting.line, sizeof waiting.line, "%s --memory event %d", self_exe, PARKED);
    sleeping.key = waiting.key = "bytes per coroutine RSS";
    sleeping.extra_key = waiting.extra_key = "mappings added";
    who[n++] =
        (contender_t){"weft_time_sleep", command_run, &sleeping, "mappings added", "for all"};
    who[n++] = (contender_t){"weft_event_wait", command_run, &waiting, "mappings added", "for all"};
    char args[64];
    snprintf(args, sizeof args, "memory %d", PARKED);
    if (have_go()) {
        go_command(&go, 0, args, "bytes per goroutine RSS");
        go.extra_key = "bytes per goroutine Sys";
        who[n++] = (contender_t){"go channel receive", command_run, &go, "(MemStats.Sys)", NULL};
    }
    if (have_gevent()) {
        python_command(&py, args, "bytes per greenlet RSS");
        who[n++] = (contender_t){"gevent Event.wait", command_run, &py, NULL, NULL};
    }
    printf("# memory: %d coroutines parked at once, resident-set growth over the count, each "
           "contender in a fresh process (stack size %s)\n",
           PARKED, getenv("WEFT_STACK_SIZE") ? getenv("WEFT_STACK_SIZE") : "default 64 KiB");
    compare("memory per parked coroutine", "bytes", who, n, 2, MEM_REPS);
}

/* ---- spawning many parked coroutines (this program re-run with --parked) ----------------- */

typedef struct parked_run {
    long n, parked;
    weft_event_t all_parked, release;
    countdown_t ended;
} parked_run_t;

static void park_until_released(void *arg)
{
    parked_run_t *r = arg;
    if (++r->parked == r->n) weft_event_set(&r->all_parked);
    bench_check(weft_event_wait(&r->release, WEFT_FOREVER) == 0, "weft_event_wait");
    if (--r->ended.left == 0) weft_event_set(&r->ended.done);
}

/* The child's side: n coroutines spawned, parked, released and ended; prints the time. */
static int parked_child(long n)
{
    static parked_run_t r;
    r.n = n;
    r.ended.left = n;
    bench_check(weft_event_init(&r.all_parked) == 0 && weft_event_init(&r.release) == 0 &&
                    weft_event_init(&r.ended.done) == 0,
                "weft_event_init");
    weft_co_t *first;
    bench_check(weft_co_spawn(touch, NULL, NULL, &first) == 0, "weft_co_spawn"); /* the hub */
    bench_check(weft_co_join(first, WEFT_FOREVER) == 0, "weft_co_join");
    weft_co_release(first);
    long maps0 = mappings();
    int64_t t0 = bench_now_ns(), half = 0;
    for (long i = 0; i < n; i++) {
        if (i == n / 2) half = bench_now_ns();
        bench_check(weft_co_spawn(park_until_released, &r, NULL, NULL) == 0, "weft_co_spawn");
    }
    int64_t spawned = bench_now_ns();
    bench_check(weft_event_wait(&r.all_parked, WEFT_FOREVER) == 0, "weft_event_wait");
    long maps1 = mappings();
    weft_event_set(&r.release);
    bench_check(weft_event_wait(&r.ended.done, WEFT_FOREVER) == 0, "weft_event_wait");
    int64_t t1 = bench_now_ns();
    printf("seconds for all: %.3f\n", (double)(t1 - t0) / 1e9);
    printf("second half of the spawns over the first: %.3f\n",
           (double)(spawned - half) / (double)(half - t0));
    printf("mappings added: %ld\n", maps1 - maps0);
    weft_event_destroy(&r.all_parked);
    weft_event_destroy(&r.release);
    weft_event_destroy(&r.ended.done);
    return 0;
}

/* MemAvailable in bytes (-1: unknown). */
static long long mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    long long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

static void bench_spawn_parked(void)
{
    static command_t weft, go;
    char figure[64];
    snprintf(figure, sizeof figure, "spawn %d parked", SPAWN_PARKED);
    long long avail = mem_available(), need = (long long)SPAWN_PARKED * 8192;
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int overcommit = 0;
    if (f && fscanf(f, "%d", &overcommit) != 1) overcommit = 0;
    if (f) fclose(f);
    if (overcommit == 2 || avail < need) {
        printf("# %s: skipped: needs vm.overcommit_memory 0 or 1 (is %d) and %lld MiB available "
               "(has %lld MiB)\n",
               figure, overcommit, need >> 20, avail >> 20);
        return;
    }
    contender_t who[MAX_CASES];
    int n = 0;
    snprintf(weft.line, sizeof weft.line, "%s --parked %d", self_exe, SPAWN_PARKED);
    weft.key = "seconds for all";
    weft.extra_key = "second half of the spawns over the first";
    who[n++] = (contender_t){"weft_co_spawn+event", command_run, &weft,
                             "second half of the spawns over the first", "(1: linear)"};
    char args[64];
    snprintf(args, sizeof args, "parked %d", SPAWN_PARKED);
    if (have_go()) {
        go_command(&go, 0, args, "seconds for all");
        who[n++] = (contender_t){"go channel receive", command_run, &go, NULL, NULL};
    }
    printf("# %s: coroutines spawned at once, each parked on one Event, then released and "
           "waited for; each contender in a fresh process\n",
           figure);
    compare(figure, "s for all", who, n, 1, MEM_REPS);
}

/* ---- cross-thread wake ------------------------------------------------------------------ */

/* A flag under a mutex and condvar: the peer's Event. */
typedef struct cv_flag {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool set;
} cv_flag_t;

static void cv_set(cv_flag_t *f)
{
    pthread_mutex_lock(&f->m);
    f->set = true;
    pthread_cond_signal(&f->c);
    pthread_mutex_unlock(&f->m);
}

static void cv_wait(cv_flag_t *f)
{
    pthread_mutex_lock(&f->m);
    while (!f->set) pthread_cond_wait(&f->c, &f->m);
    f->set = false;
    pthread_mutex_unlock(&f->m);
}

typedef enum echo_kind { ECHO_COROUTINE, ECHO_THREAD, ECHO_CONDVAR } echo_kind_t;

typedef struct echo_case {
    echo_kind_t kind;
    double timeout; /* the echoing side's wait */
} echo_case_t;

typedef struct pingpong {
    echo_kind_t kind;
    double timeout;
    weft_event_t ping, pong;
    cv_flag_t cv_ping, cv_pong;
} pingpong_t;

static double round_ns[ROUNDS];

/* The echoing side: waits for ping, answers with pong, WARM_ROUNDS + ROUNDS times. */
static void echo_loop(pingpong_t *p)
{
    for (int i = 0; i < WARM_ROUNDS + ROUNDS; i++) {
        if (p->kind == ECHO_CONDVAR) {
            cv_wait(&p->cv_ping);
            cv_set(&p->cv_pong);
        } else {
            bench_check(weft_event_wait(&p->ping, p->timeout) == 0, "weft_event_wait");
            weft_event_clear(&p->ping);
            weft_event_set(&p->pong);
        }
    }
}

static void echo_coroutine(void *arg)
{
    echo_loop(arg);
}

/* The echoing thread: for ECHO_COROUTINE it only hosts the hub the coroutine runs on (its
 * root waits in the join meanwhile). */
static void *echo_thread(void *arg)
{
    pingpong_t *p = arg;
    if (p->kind == ECHO_COROUTINE) {
        weft_co_t *co;
        bench_check(weft_co_spawn(echo_coroutine, p, NULL, &co) == 0, "weft_co_spawn");
        bench_check(weft_co_join(co, WEFT_FOREVER) == 0, "weft_co_join");
        weft_co_release(co);
    } else {
        echo_loop(p);
    }
    return NULL;
}

/* The calling thread (a plain thread, no hub): times each round trip. */
static void *call_thread(void *arg)
{
    pingpong_t *p = arg;
    for (int i = 0; i < WARM_ROUNDS + ROUNDS; i++) {
        int64_t t0 = bench_now_ns();
        if (p->kind == ECHO_CONDVAR) {
            cv_set(&p->cv_ping);
            cv_wait(&p->cv_pong);
        } else {
            weft_event_set(&p->ping);
            bench_check(weft_event_wait(&p->pong, WEFT_FOREVER) == 0, "weft_event_wait");
            weft_event_clear(&p->pong);
        }
        if (i >= WARM_ROUNDS) round_ns[i - WARM_ROUNDS] = (double)(bench_now_ns() - t0);
    }
    return NULL;
}

static double pingpong_run(void *arg, double *extra)
{
    (void)extra;
    echo_case_t *e = arg;
    pingpong_t p = {.kind = e->kind,
                    .timeout = e->timeout,
                    .cv_ping = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false},
                    .cv_pong = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false}};
    bench_check(weft_event_init(&p.ping) == 0 && weft_event_init(&p.pong) == 0, "weft_event_init");
    pthread_t echo, call;
    bench_check(pthread_create(&echo, NULL, echo_thread, &p) == 0, "pthread_create");
    bench_check(pthread_create(&call, NULL, call_thread, &p) == 0, "pthread_create");
    pthread_join(call, NULL);
    pthread_join(echo, NULL);
    weft_event_destroy(&p.ping);
    weft_event_destroy(&p.pong);
    qsort(round_ns, ROUNDS, sizeof *round_ns, bench_cmp_double);
    return (round_ns[ROUNDS / 2 - 1] + round_ns[ROUNDS / 2]) / 2 / 1e3;
}

static void bench_cross_thread(void)
{
    static echo_case_t kinds[] = {{ECHO_COROUTINE, WEFT_FOREVER},
                                  {ECHO_COROUTINE, 60},
                                  {ECHO_THREAD, WEFT_FOREVER},
                                  {ECHO_CONDVAR, 0}};
    contender_t who[] = {
        {"weft_event thread->coroutine", pingpong_run, &kinds[0], NULL, NULL},
        {"weft_event thread->coroutine (wait timeout 60 s)", pingpong_run, &kinds[1], NULL, NULL},
        {"weft_event thread->thread", pingpong_run, &kinds[2], NULL, NULL},
        {"pthread condvar thread->thread", pingpong_run, &kinds[3], NULL, NULL},
    };
    printf("# cross-thread wake: median of %d round trips through two events (after %d "
           "unmeasured), each side on its own thread; the coroutine waits forever, or with a "
           "60 s timeout (a timer in its hub: no deadlock check when the hub idles)\n",
           ROUNDS, WARM_ROUNDS);
    compare("cross-thread wake", "µs per round trip", who, 4, 3, REPS);
}

/* Whether the command line asks for `section` (no arguments: every section). */
static bool wanted(int argc, char **argv, const char *section)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], section) == 0) return true;
    return argc == 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--memory") == 0) return memory_child(argv[2], atol(argv[3]));
    if (argc == 3 && strcmp(argv[1], "--parked") == 0) return parked_child(atol(argv[2]));
    ssize_t len = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    bench_check(len > 0, "readlink /proc/self/exe");
    self_exe[len] = '\0';
    bench_header("bench_coro: weft coroutines vs boost.context, ucontext, Go goroutines and "
                 "gevent greenlets",
                 REPS);
#ifndef WEFT_HAVE_BOOST_CONTEXT
    printf("peer boost.context: not installed\n");
#endif
    if (!have_go()) printf("peer go: not installed\n");
    if (!have_gevent()) printf("peer gevent: not installed\n");
    if (wanted(argc, argv, "switch")) bench_switch();
    if (wanted(argc, argv, "spawn")) {
        bench_spawn(BIG_TOTAL, BIG_BATCH);
        bench_spawn(SMALL_TOTAL, SMALL_BATCH);
    }
    if (wanted(argc, argv, "hubs")) bench_spawn_hubs(BIG_TOTAL, BIG_BATCH, 2);
    if (wanted(argc, argv, "memory")) bench_memory();
    if (wanted(argc, argv, "parked")) bench_spawn_parked();
    if (wanted(argc, argv, "wake")) bench_cross_thread();
    return 0;
}
