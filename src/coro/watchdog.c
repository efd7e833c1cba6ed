/*
 * watchdog.c — the opt-in hog detector: a thread that samples every hub's switch count
 * every quarter threshold, and reports a hub whose count has not moved for `threshold`
 * seconds while it runs a coroutine and others of its coroutines wait (they starve).
 *
 * A round samples every hub under the hubs' registry lock (a hub cannot go away meanwhile)
 * and only notes in its table which hogs are due, with a copy of the hog's name; the user's
 * report callbacks run after the lock is dropped, so a callback may create hubs, end
 * threads, or take as long as it likes without holding up any hub's creation or teardown.
 * The table belongs to the watchdog thread alone while it runs.
 */
#include "coro_internal.h"
#include "../core/sys_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen {
    weft__hub_t *hub;
    uint64_t switches;
    int64_t since;
    bool reported;
    bool due;                    /* to report after the round (the lock is dropped) */
    double seconds;              /* ... how long it has run */
    char name[WEFT_CO_NAME_MAX]; /* ... and its name, copied under the lock */
} seen_t;

static struct {
    weft__mutex_t lock; /* guards the fields below, and start/stop */
    bool running;
    _Atomic bool stop;
    pthread_t thread;
    int64_t threshold;
    void (*report)(const char *name, double seconds, void *arg);
    void *arg;
    seen_t *seen; /* the watchdog thread's own table */
    size_t nseen, capseen;
} wd = {.lock = WEFT__MUTEX_INIT};

static void default_report(const char *name, double seconds, void *arg)
{
    (void)arg;
    fprintf(stderr, "weft watchdog: coroutine '%s' has run %.3f s without switching\n", name,
            seconds);
}

static void visit(weft__hub_t *hub, void *arg)
{
    int64_t now = *(int64_t *)arg;
    uint64_t sw;
    char name[WEFT_CO_NAME_MAX];
    bool busy = weft__hub_sample(hub, &sw, name, sizeof name);
    seen_t *s = NULL;
    for (size_t i = 0; i < wd.nseen; i++)
        if (wd.seen[i].hub == hub) s = &wd.seen[i];
    if (!s) {
        if (wd.nseen == wd.capseen) {
            size_t cap = wd.capseen ? 2 * wd.capseen : 8;
            seen_t *t = weft__realloc(wd.seen, cap * sizeof *t);
            if (!t) return;
            wd.seen = t;
            wd.capseen = cap;
        }
        s = &wd.seen[wd.nseen++];
        *s = (seen_t){.hub = hub, .switches = sw, .since = now};
        return;
    }
    if (!busy || sw != s->switches) {
        s->switches = sw;
        s->since = now;
        s->reported = false;
        return;
    }
    if (!s->reported && now - s->since >= wd.threshold) {
        s->reported = s->due = true;
        s->seconds = (double)(now - s->since) / 1e9;
        memcpy(s->name, name, sizeof s->name);
    }
}

/* Runs the reports a round found due, without the registry lock. */
static void report_due(void)
{
    for (size_t i = 0; i < wd.nseen; i++) {
        if (!wd.seen[i].due) continue;
        wd.seen[i].due = false;
        wd.report(wd.seen[i].name, wd.seen[i].seconds, wd.arg);
    }
}

static void *watch(void *unused)
{
    (void)unused;
    struct timespec ts = {(time_t)(wd.threshold / 4 / 1000000000),
                          (long)(wd.threshold / 4 % 1000000000)};
    while (!atomic_load_explicit(&wd.stop, memory_order_acquire)) {
        weft__sys_nanosleep(&ts);
        int64_t now = weft_time_monotonic_ns();
        /* A table entry whose hub is gone may be matched by a new hub at the same address:
         * it then starts with a fresh sample, since the counts differ or it is idle. */
        weft__hubs_visit(visit, &now);
        report_due();
    }
    return NULL;
}

/* In a fork child the watchdog thread does not exist: the child starts with none (wd.lock may
 * have been held by a thread that is gone, starting or stopping it). The table stays (start
 * empties it): a fork from a report callback goes on in the child on the watchdog thread's
 * copy, which finishes its round on it and then ends, as `stop` says. */
static void watchdog_fork_child(void)
{
    wd.lock = (weft__mutex_t)WEFT__MUTEX_INIT;
    wd.running = false;
    atomic_store_explicit(&wd.stop, true, memory_order_relaxed); /* one thread here */
}

static const weft__fork_hooks_t fork_hooks = {.rank = WEFT__LAYER_CORO,
                                              .child = watchdog_fork_child};

int weft_watchdog_start(double threshold,
                        void (*report)(const char *name, double seconds, void *arg), void *arg)
{
    if (isnan(threshold) || threshold <= 0 || threshold > 1e6) return WEFT_EINVAL;
    int rc = weft__fork_register(&fork_hooks);
    if (rc) return rc;
    weft__mutex_lock(&wd.lock);
    if (wd.running) {
        weft__mutex_unlock(&wd.lock);
        return WEFT_EALREADY;
    }
    wd.threshold = (int64_t)(threshold * 1e9);
    if (wd.threshold < 1000000) wd.threshold = 1000000;
    wd.report = report ? report : default_report;
    wd.arg = arg;
    wd.nseen = 0;
    atomic_store_explicit(&wd.stop, false, memory_order_relaxed);
    rc = weft__sys_pthread_create(&wd.thread, NULL, watch, NULL) ? WEFT_EAGAIN : 0;
    wd.running = rc == 0;
    weft__mutex_unlock(&wd.lock);
    return rc;
}

int weft_watchdog_stop(void)
{
    weft__mutex_lock(&wd.lock);
    if (!wd.running) {
        weft__mutex_unlock(&wd.lock);
        return WEFT_EALREADY;
    }
    atomic_store_explicit(&wd.stop, true, memory_order_release);
    pthread_join(wd.thread, NULL);
    wd.running = false;
    weft__free(wd.seen);
    wd.seen = NULL;
    wd.nseen = wd.capseen = 0;
    weft__mutex_unlock(&wd.lock);
    return 0;
}

/* WEFT_WATCHDOG=<seconds> in the environment: started at the first spawn. */
void weft__watchdog_from_env(void)
{
    static _Atomic int done;
    /* Read first: a spawn on every thread comes here, and an exchange would move the line. */
    if (atomic_load_explicit(&done, memory_order_relaxed) ||
        atomic_exchange_explicit(&done, 1, memory_order_relaxed))
        return;
    const char *env = weft__getenv("WEFT_WATCHDOG");
    if (env && atof(env) > 0) weft_watchdog_start(atof(env), NULL, NULL);
}
