/*
 * deadlock.c — deadlock reports: the wait-for graph of the tasks blocked in weft waits, its
 * cycles, and the tasks that wait on something nobody holds (starvation), in words.
 *
 * The graph: the task snapshot (observe_internal.h, weft__tasks_snapshot: every thread,
 * every hub's coroutines, pool tasks, child processes); a blocked task has one edge, to the
 * task owning what it waits on (the snapshot's `owner`: a Lock's or RLock's holder — never
 * for a process-shared one —, the joined thread or coroutine, a running future's runner).
 * Each task has at most one edge, so every cycle is found by walking from each task until a
 * task repeats (a functional graph); a cycle's tasks are all blocked (for at least the
 * threshold, when one is given).
 *
 * Starvation: a blocked task outside every cycle whose object has no owner by nature (a
 * Queue, an Event, a Semaphore, a Condition, a Barrier, a Future nobody runs, a process Queue
 * or Pipe): reported as what is seen ("no task holds or feeds it"), weft cannot know the
 * future.
 *
 * Three users: weft_debug_deadlocks (on demand), the hub's "nothing can wake us"
 * (weft__deadlock_report_hook, set at load, called on the hub's thread before its waits end
 * with WEFT_EDEADLK), and the watchdog (WEFT_DEADLOCK_CHECK=<seconds> or
 * weft_debug_deadlock_check_start), a raw thread that reports each situation once.
 */
#include "observe_internal.h"
#include "../core/sys_internal.h"
#include "weft/debug.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NONE WEFT__TASK_NONE

/* The snapshot, and a walk mark per task: 0 unseen, 1 on the current walk, 2 done, 3 in a
 * cycle, 4 left out: a thread of weft's own, or a worker thread whose running pool task
 * stands for it (they share one waiting context, so one wait; owners resolve to the task, see
 * tasks.c find_owner). */
typedef struct graph {
    weft__tasks_t ts;
    uint8_t *mark;
} graph_t;

/* Waits on an object nobody owns by nature: what starvation may be reported for. */
static bool ownerless(unsigned on)
{
    switch (on) {
    case WEFT__ON_SEMAPHORE:
    case WEFT__ON_EVENT:
    case WEFT__ON_CONDITION:
    case WEFT__ON_BARRIER:
    case WEFT__ON_QUEUE_GET:
    case WEFT__ON_QUEUE_PUT:
    case WEFT__ON_QUEUE_JOIN:
    case WEFT__ON_FUTURE:
    case WEFT__ON_MPQUEUE_GET:
    case WEFT__ON_MPQUEUE_PUT:
    case WEFT__ON_PIPE_RECV:
    case WEFT__ON_PIPE_SEND:
        return true;
    default:
        return false;
    }
}

/* Takes the snapshot. 0 or WEFT_ENOMEM; weft__tasks_free(&g->ts) and free g->mark after. */
static int collect(graph_t *g)
{
    int rc = weft__tasks_snapshot(&g->ts);
    if (rc) return rc;
    g->mark = weft__calloc(g->ts.n ? g->ts.n : 1, 1);
    if (!g->mark) {
        weft__tasks_free(&g->ts);
        return WEFT_ENOMEM;
    }
    for (size_t i = 0; i < g->ts.n; i++)
        if (g->ts.v[i].internal || g->ts.v[i].behind) g->mark[i] = 4;
    return 0;
}

/* The task t waits for next (in the graph), or NONE. */
static size_t next_of(const graph_t *g, size_t i)
{
    const weft__task_t *t = &g->ts.v[i];
    return t->state == WEFT__TASK_BLOCKED ? t->owner : NONE;
}

/* ---- words ------------------------------------------------------------------------------- */

static const char *kind_word(const weft__task_t *n)
{
    return weft__task_kind_name(n->kind);
}

/* What n waits on, in words: "Lock 'x'", "Queue 'jobs' get", "the end of coroutine 'b'". */
static void what(const graph_t *g, const weft__task_t *n, char *buf, size_t size)
{
    char name[WEFT__NAME_MAX + 24];
    const char *words = weft__on_name(n->on);
    const weft__task_t *o = n->owner != NONE ? &g->ts.v[n->owner] : NULL;
    switch (n->on) {
    case WEFT__ON_FD_READ:
    case WEFT__ON_FD_WRITE:
        snprintf(buf, size, "fd %d %s", (int)(intptr_t)n->obj, strchr(words, ' ') + 1);
        return;
    case WEFT__ON_PROCESS_JOIN:
        snprintf(buf, size, "the end of process %d", (int)(intptr_t)n->obj);
        return;
    case WEFT__ON_THREAD_JOIN:
    case WEFT__ON_CO_JOIN:
        if (o)
            snprintf(buf, size, "the end of %s '%s'", kind_word(o), o->name);
        else
            snprintf(buf, size, "the end of %s %p",
                     n->on == WEFT__ON_CO_JOIN ? "coroutine" : "thread", n->obj);
        return;
    default:
        break;
    }
    if (n->obj_name[0])
        snprintf(name, sizeof name, "'%s'", n->obj_name);
    else
        snprintf(name, sizeof name, "%p", n->obj);
    const char *space = strchr(words, ' ');
    /* "Queue get" -> "Queue 'jobs' get"; "process Queue get" keeps its two first words. */
    if (n->on == WEFT__ON_MPQUEUE_GET || n->on == WEFT__ON_MPQUEUE_PUT) space = strrchr(words, ' ');
    if (space)
        snprintf(buf, size, "%.*s %s%s", (int)(space - words), words, name, space);
    else
        snprintf(buf, size, "%s %s", words, name);
}

/* " held by", " run by" or "" (a join names its task already) before the owner. */
static const char *owner_words(unsigned on)
{
    switch (on) {
    case WEFT__ON_LOCK:
    case WEFT__ON_RLOCK:
        return " held by ";
    case WEFT__ON_FUTURE:
        return " run by ";
    default:
        return NULL;
    }
}

static void blocked_for(const weft__task_t *n, int64_t now, char *buf, size_t size)
{
    if (n->since && now > n->since)
        snprintf(buf, size, " (blocked %.3f s)", (double)(now - n->since) / 1e9);
    else
        buf[0] = 0;
}

static void print_cycle(FILE *out, const graph_t *g, size_t start, int64_t now)
{
    char obj[200], dur[40];
    fputs("weft: deadlock: ", out);
    size_t i = start;
    do {
        const weft__task_t *n = &g->ts.v[i], *o = &g->ts.v[n->owner];
        what(g, n, obj, sizeof obj);
        blocked_for(n, now, dur, sizeof dur);
        if (i == start)
            fprintf(out, "%s '%s'%s waits for %s", kind_word(n), n->name, dur, obj);
        else
            fprintf(out, ", which%s waits for %s", dur, obj);
        const char *ow = owner_words(n->on);
        if (ow) fprintf(out, "%s%s '%s'", ow, kind_word(o), o->name);
        i = n->owner;
    } while (i != start);
    fputs(": a cycle, none of them can go on\n", out);
}

static void print_starved(FILE *out, const graph_t *g, const weft__task_t *n, int64_t now)
{
    char obj[200], dur[40];
    what(g, n, obj, sizeof obj);
    blocked_for(n, now, dur, sizeof dur);
    fprintf(out, "weft: starvation: %s '%s'%s waits for %s; no task holds or feeds it\n",
            kind_word(n), n->name, dur, obj);
}

static void print_behind(FILE *out, const graph_t *g, const weft__task_t *n,
                         const weft__task_t *member, int64_t now)
{
    char obj[200], dur[40];
    what(g, n, obj, sizeof obj);
    blocked_for(n, now, dur, sizeof dur);
    fprintf(out, "weft: deadlock: %s '%s'%s waits for %s", kind_word(n), n->name, dur, obj);
    const char *ow = owner_words(n->on);
    if (ow && n->owner != NONE)
        fprintf(out, "%s%s '%s'", ow, kind_word(&g->ts.v[n->owner]), g->ts.v[n->owner].name);
    fprintf(out, ": stuck behind the cycle of %s '%s'\n", kind_word(member), member->name);
}

/* ---- the report -------------------------------------------------------------------------- */

/* A cycle's fingerprint: its members, what they wait on, and since when (a new episode of
 * the same cycle differs). */
static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t fingerprint(const weft__task_t *n)
{
    return mix(mix(mix((uintptr_t)n->ctx ^ n->id, (uintptr_t)n->obj), n->on), (uint64_t)n->since);
}

typedef struct report {
    FILE *out;
    int64_t min_ns;      /* only tasks blocked this long (needs since stamps; 0: all) */
    const uint64_t *old; /* situations reported before (the watchdog), or NULL */
    size_t nold;
    uint64_t *seen; /* the situations of this round (the watchdog), or NULL */
    size_t nseen, capseen;
    size_t cycles, starved, behind;
} report_t;

static bool long_enough(const report_t *r, const weft__task_t *n, int64_t now)
{
    if (n->state != WEFT__TASK_BLOCKED) return false;
    if (!r->min_ns) return true;
    return n->since && now - n->since >= r->min_ns;
}

/* Whether situation h is new (and notes it as seen this round). */
static bool fresh(report_t *r, uint64_t h)
{
    if (r->seen && r->nseen < r->capseen) r->seen[r->nseen++] = h;
    for (size_t i = 0; i < r->nold; i++)
        if (r->old[i] == h) return false;
    return true;
}

static int report(report_t *r)
{
    graph_t g = {0};
    int rc = collect(&g);
    if (rc) return rc;
    int64_t now = weft_time_monotonic_ns();
    const weft__task_t *v = g.ts.v;
    for (size_t s = 0; s < g.ts.n; s++) {
        if (g.mark[s]) continue;
        size_t i = s;
        while (i != NONE && !g.mark[i]) {
            g.mark[i] = 1;
            i = long_enough(r, &v[i], now) ? next_of(&g, i) : NONE;
        }
        if (i != NONE && g.mark[i] == 1) { /* back on this walk: a cycle through i */
            uint64_t h = 0;
            size_t k = i;
            do {
                g.mark[k] = 3;
                h += fingerprint(&v[k]); /* the same whichever member starts */
                k = v[k].owner;
            } while (k != i);
            r->cycles++;
            if (fresh(r, h)) print_cycle(r->out, &g, i, now);
        }
        for (i = s; i != NONE && g.mark[i] == 1; i = next_of(&g, i)) g.mark[i] = 2;
    }
    /* The tasks stuck behind a cycle: their chain of owners ends in one. */
    for (size_t i = 0; i < g.ts.n; i++) {
        if (g.mark[i] >= 3 || !long_enough(r, &v[i], now)) continue;
        size_t k = next_of(&g, i);
        for (size_t steps = 0; k != NONE && g.mark[k] != 3 && steps < g.ts.n; steps++)
            k = long_enough(r, &v[k], now) ? next_of(&g, k) : NONE;
        if (k == NONE || g.mark[k] != 3) continue;
        r->behind++;
        if (fresh(r, fingerprint(&v[i]) ^ 0x5bd1e995u)) print_behind(r->out, &g, &v[i], &v[k], now);
    }
    for (size_t i = 0; i < g.ts.n; i++) {
        const weft__task_t *n = &v[i];
        if (g.mark[i] >= 3 || n->owner_ctx || !ownerless(n->on) || !long_enough(r, n, now))
            continue;
        r->starved++;
        if (fresh(r, fingerprint(n))) print_starved(r->out, &g, n, now);
    }
    fflush(r->out);
    weft__free(g.mark);
    weft__tasks_free(&g.ts);
    return 0;
}

static _Atomic(FILE *) report_file;

static FILE *report_out(void)
{
    FILE *f = atomic_load_explicit(&report_file, memory_order_acquire);
    return f ? f : stderr;
}

int weft_debug_set_report(FILE *out)
{
    atomic_store_explicit(&report_file, out, memory_order_release);
    return 0;
}

int weft_debug_deadlocks(FILE *out, double min_blocked, size_t *cycles, size_t *starved)
{
    if (!out || isnan(min_blocked) || min_blocked < 0 || min_blocked > 1e9) return WEFT_EINVAL;
    report_t r = {.out = out, .min_ns = (int64_t)(min_blocked * 1e9)};
    int rc = report(&r);
    if (rc) return rc;
    if (cycles) *cycles = r.cycles;
    if (starved) *starved = r.starved;
    return 0;
}

/* The hub's "nothing can wake us", on its thread, before its waits end with WEFT_EDEADLK. */
static void hub_report(void)
{
    report_t r = {.out = report_out()};
    fprintf(r.out,
            "weft: deadlock: nothing can wake the coroutines of the hub of thread %d: their "
            "waits end with WEFT_EDEADLK\n",
            (int)gettid());
    if (report(&r) == WEFT_ENOMEM) fputs("weft: deadlock: (no memory for the report)\n", r.out);
}

/* ---- the watchdog ------------------------------------------------------------------------ */

#define MAX_SITUATIONS 256

static struct {
    weft__mutex_t lock; /* guards start and stop */
    bool running;
    _Atomic bool stop;
    pthread_t thread;
    int64_t threshold;
    uint64_t old[MAX_SITUATIONS], cur[MAX_SITUATIONS];
    size_t nold;
} dl = {.lock = WEFT__MUTEX_INIT};

static void *watch(void *arg)
{
    (void)arg;
    (void)pthread_setname_np(pthread_self(), "weft-deadlock");
    (void)weft__ctx_list_internal(); /* unlisted: its snapshots list it as a plain thread */
    int64_t period = dl.threshold / 4;
    if (period < 10000000) period = 10000000;
    if (period > 1000000000) period = 1000000000;
    while (!atomic_load_explicit(&dl.stop, memory_order_acquire)) {
        struct timespec ts = {(time_t)(period / 1000000000), (long)(period % 1000000000)};
        weft__sys_nanosleep(&ts);
        if (atomic_load_explicit(&dl.stop, memory_order_acquire)) break;
        report_t r = {.out = report_out(),
                      .min_ns = dl.threshold,
                      .old = dl.old,
                      .nold = dl.nold,
                      .seen = dl.cur,
                      .capseen = MAX_SITUATIONS};
        if (report(&r)) continue; /* no memory: the next round tries again */
        /* What was seen this round is what the next one must not repeat. */
        memcpy(dl.old, dl.cur, r.nseen * sizeof *dl.cur);
        dl.nold = r.nseen;
    }
    return NULL;
}

static void watchdog_fork_child(void)
{
    dl.lock = (weft__mutex_t)WEFT__MUTEX_INIT;
    if (dl.running) /* the thread does not exist in the child */
        atomic_fetch_sub_explicit(&weft__idle_helpers, 1, memory_order_release);
    dl.running = false;
}

static const weft__fork_hooks_t fork_hooks = {.rank = WEFT__LAYER_EXECUTOR,
                                              .child = watchdog_fork_child};

int weft_debug_deadlock_check_start(double seconds)
{
    if (isnan(seconds) || seconds <= 0 || seconds > 1e6) return WEFT_EINVAL;
    int rc = weft__fork_register(&fork_hooks);
    if (rc) return rc;
    weft__mutex_lock(&dl.lock);
    if (dl.running) {
        weft__mutex_unlock(&dl.lock);
        return WEFT_EALREADY;
    }
    dl.threshold = (int64_t)(seconds * 1e9);
    dl.nold = 0;
    (void)weft_debug_observe(true);
    atomic_store_explicit(&dl.stop, false, memory_order_relaxed);
    /* The watchdog never wakes a waiter: a hub's "nothing can wake us" must not count it as a
     * thread that might (weft__idle_helpers), or a hub deadlock would hang instead of failing
     * with WEFT_EDEADLK. Counted before it exists, so a fork meanwhile sees it counted. */
    atomic_fetch_add_explicit(&weft__idle_helpers, 1, memory_order_release);
    rc = weft__sys_pthread_create(&dl.thread, NULL, watch, NULL) ? WEFT_EAGAIN : 0;
    if (rc) atomic_fetch_sub_explicit(&weft__idle_helpers, 1, memory_order_release);
    dl.running = rc == 0;
    weft__mutex_unlock(&dl.lock);
    return rc;
}

int weft_debug_deadlock_check_stop(void)
{
    weft__mutex_lock(&dl.lock);
    if (!dl.running) {
        weft__mutex_unlock(&dl.lock);
        return WEFT_EALREADY;
    }
    atomic_store_explicit(&dl.stop, true, memory_order_release);
    pthread_join(dl.thread, NULL);
    atomic_fetch_sub_explicit(&weft__idle_helpers, 1, memory_order_release);
    dl.running = false;
    weft__mutex_unlock(&dl.lock);
    return 0;
}

/* At load: the hub's hook, and WEFT_DEADLOCK_CHECK=<seconds>. */
__attribute__((constructor)) static void deadlock_init(void)
{
    weft__deadlock_report_hook = hub_report;
    const char *env = weft__getenv("WEFT_DEADLOCK_CHECK");
    if (env && atof(env) > 0) (void)weft_debug_deadlock_check_start(atof(env));
}
