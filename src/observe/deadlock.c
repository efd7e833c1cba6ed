/*
 * deadlock.c — deadlock reports: the wait-for graph of the tasks blocked in weft waits, its
 * cycles, and the tasks that wait on something nobody holds (starvation), in words.
 *
 * The graph: one node per task seen (every listed thread context — weft__ctx_visit — and,
 * when the caller runs on a hub, that hub's coroutines); a blocked node has one edge, to the
 * context that owns what it waits on: a Lock's or RLock's owner_ (never followed for a
 * process-shared one), a thread join's thread (matched by its kernel tid), a coroutine join's
 * &co->wctx, a running future's runner. Each node has at most one edge, so every cycle is
 * found by walking from each node until a node repeats (a functional graph).
 *
 * Starvation: a blocked task outside every cycle whose object has no owner by nature (a
 * Queue, an Event, a Semaphore, a Condition, a Barrier, a pending Future, a process Queue or
 * Pipe): reported as what is seen ("no task holds or feeds it"), weft cannot know the future.
 *
 * What is read: the contexts' relaxed words (a snapshot), and the objects they wait on (a
 * Lock's owner_ word, a future's runner under its lock, a thread record's ident, a
 * coroutine's name). A waiter that wakes and whose program destroys the object between the
 * two reads is the one race this report cannot close; it reads only live tasks' objects.
 *
 * Three users: weft_debug_deadlocks (on demand), the hub's "nothing can wake us"
 * (weft__deadlock_report_hook, set at load, called on the hub's thread before its waits end
 * with WEFT_EDEADLK), and the watchdog (WEFT_DEADLOCK_CHECK=<seconds> or
 * weft_debug_deadlock_check_start), a raw thread that reports each situation once.
 */
#include "../coro/coro_internal.h"
#include "../core/sys_internal.h"
#include "../executor/executor_internal.h"
#include "../thread/thread_internal.h"
#include "weft/debug.h"
#include "weft/sync.h"

#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE SIZE_MAX

typedef struct node {
    const weft__waitctx_t *ctx;
    const weft_co_t *co; /* a coroutine of the caller's hub, else NULL */
    uint8_t kind;
    int tid;
    unsigned on;
    const void *obj;
    int64_t since;
    const void *owner; /* the context owning what it waits on, or NULL */
    size_t next;       /* owner's node, or NONE */
    uint8_t mark;      /* 0 unseen, 1 on the current walk, 2 done, 3 in a cycle */
    char name[WEFT__NAME_MAX];
} node_t;

typedef struct graph {
    node_t *n;
    size_t count, cap;
    bool full;
} graph_t;

static void add_ctx(graph_t *g, const weft__waitctx_t *ctx, const weft_co_t *co)
{
    if (g->count == g->cap) {
        g->full = true;
        return;
    }
    node_t *n = &g->n[g->count++];
    memset(n, 0, sizeof *n);
    n->ctx = ctx;
    n->co = co;
    n->kind = co ? WEFT__CTX_COROUTINE : WEFT__CTX_THREAD;
    n->tid = co ? 0 : atomic_load_explicit(&ctx->tid, memory_order_relaxed);
    n->on = atomic_load_explicit(&ctx->on, memory_order_relaxed);
    n->obj = atomic_load_explicit(&ctx->obj, memory_order_relaxed);
    n->since = atomic_load_explicit(&ctx->since, memory_order_relaxed);
    n->next = NONE;
    if (co) snprintf(n->name, sizeof n->name, "%.*s", (int)sizeof n->name - 1, co->name);
}

static void visit_thread(weft__waitctx_t *ctx, void *arg)
{
    add_ctx(arg, ctx, NULL);
}

static void visit_co(weft_co_t *co, void *arg)
{
    add_ctx(arg, &co->wctx, co);
}

/* A thread's name: its weft thread's (matched by tid), else the kernel's comm. */
static void name_threads(graph_t *g)
{
    weft__mutex_lock(&weft__registry_lock);
    for (weft_thread_t *t = weft__registry_first_locked(); t; t = t->next)
        for (size_t i = 0; i < g->count; i++)
            if (g->n[i].kind == WEFT__CTX_THREAD && g->n[i].tid && g->n[i].tid == t->ident)
                snprintf(g->n[i].name, sizeof g->n[i].name, "%.*s", (int)sizeof g->n[i].name - 1,
                         t->name);
    weft__mutex_unlock(&weft__registry_lock);
    for (size_t i = 0; i < g->count; i++) {
        node_t *n = &g->n[i];
        if (n->kind != WEFT__CTX_THREAD || n->name[0]) continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%d/comm", n->tid);
        int fd = n->tid ? weft__sys_open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd >= 0) {
            ssize_t got = weft__sys_read(fd, n->name, sizeof n->name - 1);
            n->name[got > 0 ? got : 0] = 0;
            n->name[strcspn(n->name, "\n")] = 0;
            weft__sys_close(fd);
        }
        if (!n->name[0]) snprintf(n->name, sizeof n->name, "tid %d", n->tid);
    }
}

/* The context owning what n waits on, or NULL (see the file's comment). */
static const void *owner_of(const graph_t *g, const node_t *n)
{
    switch (n->on) {
    case WEFT__ON_LOCK:
    case WEFT__ON_RLOCK: {
        /* An RLock waits on its inner Lock (its first member): the same owner_. */
        weft_lock_t *l = (weft_lock_t *)(uintptr_t)n->obj;
        if (!l || l->shared_) return NULL;
        return atomic_load_explicit(&l->owner_, memory_order_relaxed);
    }
    case WEFT__ON_THREAD_JOIN: {
        const weft_thread_t *t = n->obj;
        if (!t) return NULL;
        for (size_t i = 0; i < g->count; i++)
            if (g->n[i].kind == WEFT__CTX_THREAD && g->n[i].tid && g->n[i].tid == t->ident)
                return g->n[i].ctx;
        return NULL;
    }
    case WEFT__ON_CO_JOIN: {
        const weft_co_t *co = n->obj;
        return co ? &co->wctx : NULL;
    }
    case WEFT__ON_FUTURE: {
        weft_future_t *f = (weft_future_t *)(uintptr_t)n->obj;
        if (!f) return NULL;
        weft__waitq_lock(&f->waiters);
        const void *r = atomic_load_explicit(&f->state, memory_order_relaxed) == WEFT_FUTURE_RUNNING
                            ? f->runner
                            : NULL;
        weft__waitq_unlock(&f->waiters);
        return r;
    }
    default:
        return NULL;
    }
}

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

/* Collects every task seen. The caller frees g->n. 0 or WEFT_ENOMEM. */
static int collect(graph_t *g)
{
    size_t cap = 64;
    for (;;) {
        g->n = weft__malloc(cap * sizeof *g->n);
        if (!g->n) return WEFT_ENOMEM;
        g->cap = cap;
        g->count = 0;
        g->full = false;
        weft__ctx_visit(visit_thread, g);
        weft__hub_visit_own(visit_co, g);
        if (!g->full) break;
        weft__free(g->n);
        if (cap > SIZE_MAX / 2 / sizeof *g->n) return WEFT_ENOMEM;
        cap *= 2;
    }
    name_threads(g);
    for (size_t i = 0; i < g->count; i++) {
        node_t *n = &g->n[i];
        if (n->on == WEFT__ON_NONE) continue;
        n->owner = owner_of(g, n);
        for (size_t j = 0; n->owner && j < g->count; j++)
            if (g->n[j].ctx == n->owner && j != i) n->next = j;
        if (n->owner == n->ctx) n->next = i; /* waits on what it holds itself */
    }
    return 0;
}

/* ---- words ------------------------------------------------------------------------------- */

static const char *kind_word(const node_t *n)
{
    return n->kind == WEFT__CTX_COROUTINE ? "coroutine" : "thread";
}

/* What n waits on, in words: "Lock 'x'", "Queue 'jobs' get", "the end of coroutine 'b'". */
static void what(const node_t *n, char *buf, size_t size)
{
    char name[WEFT__NAME_MAX + 2];
    const char *words = weft__on_name(n->on);
    switch (n->on) {
    case WEFT__ON_FD_READ:
    case WEFT__ON_FD_WRITE:
        snprintf(buf, size, "fd %d %s", (int)(intptr_t)n->obj, strchr(words, ' ') + 1);
        return;
    case WEFT__ON_PROCESS_JOIN:
        snprintf(buf, size, "the end of process %d", (int)(intptr_t)n->obj);
        return;
    case WEFT__ON_THREAD_JOIN:
        snprintf(buf, size, "the end of thread '%s'", ((const weft_thread_t *)n->obj)->name);
        return;
    case WEFT__ON_CO_JOIN:
        snprintf(buf, size, "the end of coroutine '%s'", ((const weft_co_t *)n->obj)->name);
        return;
    default:
        break;
    }
    char given[WEFT__NAME_MAX];
    if (weft__name_get(n->obj, given, sizeof given))
        snprintf(name, sizeof name, "'%s'", given);
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

static void blocked_for(const node_t *n, int64_t now, char *buf, size_t size)
{
    if (n->since && now > n->since)
        snprintf(buf, size, " (blocked %.3f s)", (double)(now - n->since) / 1e9);
    else
        buf[0] = 0;
}

static void print_cycle(FILE *out, const graph_t *g, size_t start, int64_t now)
{
    char obj[160], dur[40];
    fputs("weft: deadlock: ", out);
    size_t i = start;
    do {
        const node_t *n = &g->n[i], *o = &g->n[n->next];
        what(n, obj, sizeof obj);
        blocked_for(n, now, dur, sizeof dur);
        if (i == start)
            fprintf(out, "%s '%s'%s waits for %s", kind_word(n), n->name, dur, obj);
        else
            fprintf(out, ", which%s waits for %s", dur, obj);
        const char *ow = owner_words(n->on);
        if (ow) fprintf(out, "%s%s '%s'", ow, kind_word(o), o->name);
        i = n->next;
    } while (i != start);
    fputs(": a cycle, none of them can go on\n", out);
}

static void print_starved(FILE *out, const node_t *n, int64_t now)
{
    char obj[160], dur[40];
    what(n, obj, sizeof obj);
    blocked_for(n, now, dur, sizeof dur);
    fprintf(out, "weft: starvation: %s '%s'%s waits for %s; no task holds or feeds it\n",
            kind_word(n), n->name, dur, obj);
}

/* ---- the report -------------------------------------------------------------------------- */

/* A cycle's fingerprint: its members, what they wait on, and since when (a new episode of
 * the same cycle differs). */
static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t fingerprint(const node_t *n)
{
    return mix(mix(mix((uintptr_t)n->ctx, (uintptr_t)n->obj), n->on), (uint64_t)n->since);
}

typedef struct report {
    FILE *out;
    int64_t min_ns;      /* only tasks blocked this long (needs since stamps; 0: all) */
    const uint64_t *old; /* situations reported before (the watchdog), or NULL */
    size_t nold;
    uint64_t *seen; /* the situations of this round (the watchdog), or NULL */
    size_t nseen, capseen;
    size_t cycles, starved;
} report_t;

static bool long_enough(const report_t *r, const node_t *n, int64_t now)
{
    if (n->on == WEFT__ON_NONE) return false;
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
    for (size_t s = 0; s < g.count; s++) {
        if (g.n[s].mark) continue;
        size_t i = s;
        while (i != NONE && !g.n[i].mark) {
            g.n[i].mark = 1;
            i = long_enough(r, &g.n[i], now) ? g.n[i].next : NONE;
        }
        if (i != NONE && g.n[i].mark == 1) { /* back on this walk: a cycle through i */
            uint64_t h = 0;
            size_t k = i;
            do {
                g.n[k].mark = 3;
                h += fingerprint(&g.n[k]); /* the same whichever member starts */
                k = g.n[k].next;
            } while (k != i);
            r->cycles++;
            if (fresh(r, h)) print_cycle(r->out, &g, i, now);
        }
        for (i = s; i != NONE && g.n[i].mark == 1; i = g.n[i].next) g.n[i].mark = 2;
    }
    for (size_t i = 0; i < g.count; i++) {
        const node_t *n = &g.n[i];
        if (n->mark == 3 || n->owner || !ownerless(n->on) || !long_enough(r, n, now)) continue;
        r->starved++;
        if (fresh(r, fingerprint(n))) print_starved(r->out, n, now);
    }
    fflush(r->out);
    weft__free(g.n);
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
    if (report(&r) == WEFT_ENOMEM)
        fputs("weft: deadlock: every coroutine of a hub waits (no memory for the report)\n", r.out);
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
    dl.running = false; /* the thread does not exist in the child */
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
    atomic_fetch_or_explicit(&weft__observing, WEFT__OBSERVE_SINCE, memory_order_relaxed);
    atomic_store_explicit(&dl.stop, false, memory_order_relaxed);
    rc = weft__sys_pthread_create(&dl.thread, NULL, watch, NULL) ? WEFT_EAGAIN : 0;
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
