/*
 * registry.c — the threads alive (Python's threading._active), and what hangs off it:
 * current_thread, main_thread, active_count, enumerate, dummy records for foreign threads, the
 * fork reset and the exit rule.
 *
 * The registry is a list (core's) through the records' `link`, in registration order,
 * with its length, all under weft__registry_lock (a short internal mutex, never held across a
 * park or a call into user code). The main thread's record is static and joins the list at
 * initialisation; started records join when their thread starts running and leave when it
 * finishes (thread.c); a dummy joins when its foreign thread first asks for its record and
 * leaves from the pthread key destructor when that thread exits.
 *
 * Fork: the prepare handler takes the registry lock, so the child inherits a consistent list;
 * the child handler keeps only the forking thread's record (the static main record when the
 * forking thread has none), marks the others finished and drops their running references,
 * and makes the kept record the main thread, as Python's _after_fork does.
 */
#include "thread_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

WEFT__TLS weft_thread_t *weft__thread_self;
weft__mutex_t weft__registry_lock = WEFT__MUTEX_INIT;
pthread_key_t weft__thread_key;

static struct {
    weft__list_t list; /* weft_thread_t.link */
    size_t count;
} registry;

static weft_thread_t main_record = {
    .hd = {WEFT__HANDLE_MAGIC(WEFT__ID_THREAD), 0},
    .kind = WEFT__THREAD_MAIN,
    .phase = WEFT__PHASE_RUNNING,
    .name = "MainThread",
};
static weft_thread_t *main_thread = &main_record; /* changed only in a fork child */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_error;
static atomic_bool exit_rule_installed;

/* Python numbers Thread-N and Dummy-N from one counter. Relaxed is enough: only uniqueness
 * matters, and fetch_add gives it at any order. */
static _Atomic unsigned long name_counter;

void weft__thread_record_init(weft_thread_t *t, uint8_t kind, bool daemon, uint32_t refs,
                              uint32_t phase, const char *name, const char *prefix)
{
    weft__handle_init(&t->hd, WEFT__ID_THREAD, kind == WEFT__THREAD_STARTED); /* the starter's */
    atomic_init(&t->refs, refs);
    t->kind = kind;
    t->daemon = daemon;
    t->phase = phase;
    t->ident = 0;
    t->fn = NULL;
    t->arg = NULL;
    t->waiters = (weft_waitq_t)WEFT_WAITQ_INIT;
    t->values = NULL;
    t->nvalues = 0;
    if (name && name[0]) {
        snprintf(t->name, sizeof t->name, "%s", name); /* the caller checked the length */
    } else {
        unsigned long n = atomic_fetch_add_explicit(&name_counter, 1, memory_order_relaxed) + 1;
        snprintf(t->name, sizeof t->name, "%s-%lu", prefix, n);
    }
}

void weft__registry_add_locked(weft_thread_t *t)
{
    weft__list_push_back(&registry.list, &t->link);
    registry.count++;
}

void weft__registry_remove_locked(weft_thread_t *t)
{
    weft__list_remove(&registry.list, &t->link);
    registry.count--;
}

weft_thread_t *weft__registry_next_locked(weft_thread_t *t)
{
    weft__list_node_t *n = t ? weft__list_next(&t->link) : weft__list_first(&registry.list);
    return n ? weft__container_of(n, weft_thread_t, link) : NULL;
}

/* ---- fork ---------------------------------------------------------------------------------*/

static void fork_prepare(void)
{
    weft__mutex_lock(&weft__registry_lock);
}
static void fork_parent(void)
{
    weft__mutex_unlock(&weft__registry_lock);
}

/* A record whose thread did not survive the fork: it reads as finished; its queue held only
 * waiters of vanished threads. */
static void abandon(weft_thread_t *t)
{
    weft__locals_drop(t);
    t->waiters = (weft_waitq_t)WEFT_WAITQ_INIT;
    t->phase = WEFT__PHASE_DONE;
    weft__thread_unref(t); /* the vanished thread's own reference (ignored for main) */
}

static void fork_child(void)
{
    weft_thread_t *keep = weft__thread_self ? weft__thread_self : &main_record;
    weft__list_t old = registry.list;
    registry.list = (weft__list_t){0};
    registry.count = 0;
    for (weft__list_node_t *n; (n = weft__list_pop_front(&old));) {
        weft_thread_t *t = weft__container_of(n, weft_thread_t, link);
        if (t != keep) abandon(t);
    }
    keep->waiters = (weft_waitq_t)WEFT_WAITQ_INIT;
    keep->ident = getpid();
    keep->phase = WEFT__PHASE_RUNNING;
    weft__registry_add_locked(keep);
    main_thread = keep;
    /* Held by the prepare handler in a thread that is gone: start afresh. */
    weft__registry_lock = (weft__mutex_t)WEFT__MUTEX_INIT;
}

static const weft__fork_hooks_t fork_hooks = {
    .rank = WEFT__LAYER_THREAD,
    .prepare = fork_prepare,
    .parent = fork_parent,
    .child = fork_child,
};

/* ---- initialisation ------------------------------------------------------------------------*/

static void on_thread_exit(void *record)
{
    weft__thread_finish(record);
}

static void init(void)
{
    main_record.ident = getpid();
    weft__mutex_lock(&weft__registry_lock);
    weft__registry_add_locked(&main_record);
    weft__mutex_unlock(&weft__registry_lock);

    int rc = pthread_key_create(&weft__thread_key, on_thread_exit);
    if (rc) {
        init_error = weft__errno(rc);
        return;
    }
    init_error = weft__fork_register(&fork_hooks);
}

int weft__thread_init(void)
{
    pthread_once(&init_once, init);
    return init_error; /* pthread_once orders init's writes before this read */
}

/* ---- current, main, count, enumerate -------------------------------------------------------*/

weft_thread_t *weft__thread_caller(void)
{
    weft_thread_t *t = weft__thread_self;
    if (t) return t;
    weft__thread_init();
    /* A thread without a record is the main thread (its tid is the pid) or a foreign one. */
    return gettid() == getpid() ? main_thread : NULL;
}

/* Registers the calling foreign thread (Python's _DummyThread). */
static weft_thread_t *make_dummy(void)
{
    if (init_error) return NULL;
    weft_thread_t *t = weft__handle_alloc(sizeof *t);
    if (!t) return NULL;
    /* One reference, the thread's own, dropped by the key destructor at its exit. */
    weft__thread_record_init(t, WEFT__THREAD_DUMMY, true, 1, WEFT__PHASE_RUNNING, NULL, "Dummy");
    t->ident = gettid();
    if (pthread_setspecific(weft__thread_key, t)) {
        weft__handle_free(t, &t->hd);
        return NULL;
    }
    weft__mutex_lock(&weft__registry_lock);
    weft__registry_add_locked(t);
    weft__mutex_unlock(&weft__registry_lock);
    weft__thread_self = t;
    return t;
}

weft_thread_t *weft_thread_current(void)
{
    weft_thread_t *t = weft__thread_caller();
    if (!t) return make_dummy();
    weft__thread_self = t; /* the main thread's, remembered: next time one TLS load */
    return t;
}

weft_thread_t *weft_thread_main(void)
{
    weft__thread_init();
    return main_thread;
}

size_t weft_thread_active_count(void)
{
    weft__thread_init();
    weft__mutex_lock(&weft__registry_lock);
    size_t n = registry.count;
    weft__mutex_unlock(&weft__registry_lock);
    return n;
}

int weft_thread_enumerate(weft_thread_t **out, size_t cap, size_t *count)
{
    if (!count || (!out && cap)) return WEFT_EINVAL;
    weft__thread_init();
    size_t n = 0;
    weft__mutex_lock(&weft__registry_lock);
    for (weft_thread_t *t = weft__registry_next_locked(NULL); t;
         t = weft__registry_next_locked(t), n++)
        if (n < cap) out[n] = weft_thread_retain(t); /* listed, so its thread holds a ref */
    weft__mutex_unlock(&weft__registry_lock);
    *count = n;
    return 0;
}

void weft__threads_visit(void (*fn)(const weft_thread_t *t, void *arg), void *arg)
{
    weft__thread_init();
    weft__mutex_lock(&weft__registry_lock);
    for (weft_thread_t *t = weft__registry_next_locked(NULL); t; t = weft__registry_next_locked(t))
        fn(t, arg);
    weft__mutex_unlock(&weft__registry_lock);
}

/* ---- the exit rule -------------------------------------------------------------------------*/

/* Joins every non-daemon started thread still running, except the caller, one at a time,
 * until none is left (threads they start are joined too, as Python's _shutdown). */
static void join_at_exit(void)
{
    weft_thread_t *me = weft__thread_caller();
    for (;;) {
        weft_thread_t *t = NULL;
        weft__mutex_lock(&weft__registry_lock);
        for (weft_thread_t *r = weft__registry_next_locked(NULL); r && !t;
             r = weft__registry_next_locked(r))
            if (r->kind == WEFT__THREAD_STARTED && !r->daemon && r != me) t = weft_thread_retain(r);
        weft__mutex_unlock(&weft__registry_lock);
        if (!t) return;
        weft__thread_wait_phase(t, WEFT__PHASE_DONE, WEFT_NO_DEADLINE, true);
        weft_thread_release(t);
    }
}

static const weft__exit_rule_t exit_rule = {WEFT__LAYER_THREAD, join_at_exit};

int weft__exit_rule_install(void)
{
    if (atomic_load_explicit(&exit_rule_installed, memory_order_acquire)) return 0;
    int rc = weft__exit_register(&exit_rule); /* registering twice is harmless */
    if (!rc) atomic_store_explicit(&exit_rule_installed, true, memory_order_release);
    return rc;
}
