/*
 * thread.c — starting, finishing and joining threads (threading.Thread).
 *
 * A started thread is a DETACHED pthread, so nothing ever races pthread_join against
 * pthread_detach; completion is published through the waiting core instead. The record's
 * `phase` (STARTING -> RUNNING -> DONE) changes under its wait queue's lock, and each change
 * wakes everything queued: the starter waits for RUNNING (so weft_thread_start returns with
 * the ident known, as Python's start() waits for _started), joiners wait for DONE; a waiter
 * woken by the earlier change simply re-checks and queues again.
 *
 * Freeing without a race: the thread's last touch of its record is one critical section of
 * the queue's lock in which it drops its own reference and sets DONE. Everyone who looks for
 * DONE (join, is_alive) looks under that lock, so nobody can see DONE, drop the last handle
 * and free the record while the thread still uses it; when the thread's reference was the
 * last, nobody else can reach the record and the thread frees it itself. So when join
 * returns, the record belongs to the handles alone, which is also what lets the OOM tests
 * count allocations right after a join.
 */
#include "thread_internal.h"
#include "../core/sys_internal.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

/* The OS keeps 15 bytes of a thread's name (plus the NUL). */
enum { OS_NAME_MAX = 16 };

static void set_os_name(const char *name)
{
    char os_name[OS_NAME_MAX];
    size_t len = strnlen(name, OS_NAME_MAX - 1);
    memcpy(os_name, name, len);
    os_name[len] = '\0';
    (void)pthread_setname_np(pthread_self(), os_name); /* cosmetic: a failure changes nothing */
}

static void *trampoline(void *arg)
{
    weft_thread_t *t = arg;
    weft__thread_self = t;
    /* If fn ends the thread with pthread_exit, the key's destructor finishes the record. This
     * can fail only for lack of memory, and only for keys past the first 32; ours is created
     * early: then only the pthread_exit case goes unfinished. */
    (void)pthread_setspecific(weft__thread_key, t);
    set_os_name(t->name);
    t->ident = gettid();
    /* The task snapshot finds every weft thread, blocked or not, and names its context. */
    atomic_store_explicit(&weft__thread_ctx.who, (void *)t, memory_order_relaxed);
    (void)weft__ctx_list_self(); /* no memory for the key: listed at its first block, or never */

    weft__mutex_lock(&weft__registry_lock);
    weft__registry_add_locked(t);
    weft__waitq_lock(&t->waiters);
    t->phase = WEFT__PHASE_RUNNING;
    weft__waiter_t *starter = weft__waitq_take(&t->waiters, -1, 0);
    weft__waitq_unlock(&t->waiters);
    weft__mutex_unlock(&weft__registry_lock);
    weft__waiters_wake(starter);

    t->fn(t->arg);

    (void)pthread_setspecific(weft__thread_key, NULL); /* clearing never fails */
    weft__thread_finish(t);
    return NULL;
}

void weft__thread_finish(weft_thread_t *t)
{
    weft__locals_finish(t);
    weft__thread_self = NULL;

    weft__mutex_lock(&weft__registry_lock);
    weft__registry_remove_locked(t);
    /* Under the registry's lock: a snapshot pairs contexts with records under it. */
    atomic_store_explicit(&weft__thread_ctx.who, NULL, memory_order_relaxed);
    weft__waitq_lock(&t->waiters);
    t->phase = WEFT__PHASE_DONE;
    weft__waiter_t *joiners = weft__waitq_take(&t->waiters, -1, 0);
    weft__waitq_unlock(&t->waiters);
    weft__mutex_unlock(&weft__registry_lock);
    weft__waiters_wake(joiners); /* each joiner holds a reference of its own */

    /* The thread's own reference goes last: until the lock above is released, t must live
     * (a handle released meanwhile in another thread would otherwise free it under us). */
    if (t->kind != WEFT__THREAD_MAIN &&
        atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        weft__handle_free(t, &t->hd);
}

typedef struct phase_wait {
    weft_thread_t *t;
    uint32_t phase;
    bool reached;
} phase_wait_t;

/* weft__thread_wait_phase's check, under t's wait queue lock (which `phase` changes under). */
static int phase_reached(void *arg)
{
    phase_wait_t *pw = arg;
    pw->reached = pw->t->phase >= pw->phase;
    return pw->reached ? 0 : WEFT__WAIT_PARK;
}

int weft__thread_wait_phase(weft_thread_t *t, uint32_t phase, int64_t deadline, bool nocancel)
{
    phase_wait_t pw = {t, phase, false};
    for (;;) { /* a wake by an earlier phase change than the awaited one: check again */
        weft__waiter_t w;
        weft__waiter_init(&w);
        weft__waiter_on(&w, WEFT__ON_THREAD_JOIN, t);
        w.nocancel = nocancel;
        int rc = weft__wait_until(NULL, &t->waiters, &w, phase_reached, &pw, deadline);
        if (rc || pw.reached) return rc;
    }
}

/* pthread_attr for the options; 0 or a WEFT_E* code (attr is destroyed on failure). */
static int make_attr(pthread_attr_t *attr, size_t stack_size)
{
    int rc = pthread_attr_init(attr);
    if (rc) return weft__errno(rc);
    rc = pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
    if (!rc && stack_size) rc = pthread_attr_setstacksize(attr, stack_size);
    if (rc) pthread_attr_destroy(attr);
    return rc ? weft__errno(rc) : 0;
}

int weft_thread_start(void (*fn)(void *arg), void *arg, const weft_thread_opts_t *opts,
                      weft_thread_t **out)
{
    if (out) *out = NULL;
    weft_thread_opts_t o = opts ? *opts : (weft_thread_opts_t){0};
    if (!out || !fn) return WEFT_EINVAL;
    if (o.name && strnlen(o.name, WEFT_THREAD_NAME_MAX) == WEFT_THREAD_NAME_MAX) return WEFT_EINVAL;
    if (o.stack_size && o.stack_size < (size_t)PTHREAD_STACK_MIN) return WEFT_EINVAL;
    int rc = weft__thread_init();
    if (!rc) rc = weft__exit_rule_install();
    if (rc) return rc;

    weft_thread_t *t = weft__handle_alloc(sizeof *t);
    if (!t) return WEFT_ENOMEM;
    /* Two references: the caller's handle and the running thread's own. */
    weft__thread_record_init(t, WEFT__THREAD_STARTED, o.daemon, 2, WEFT__PHASE_STARTING, o.name,
                             "Thread");
    t->fn = fn;
    t->arg = arg;

    pthread_attr_t attr;
    pthread_t tid;
    rc = make_attr(&attr, o.stack_size);
    if (rc) goto fail;
    rc = weft__sys_pthread_create(&tid, &attr, trampoline, t);
    pthread_attr_destroy(&attr);
    if (rc) {
        rc = weft__errno(rc);
        goto fail;
    }

    /* The thread is ours now: this wait cannot be given up (no deadline, no cancel). */
    weft__thread_wait_phase(t, WEFT__PHASE_RUNNING, WEFT_NO_DEADLINE, true);
    *out = t;
    return 0;
fail:
    weft__handle_free(t, &t->hd);
    return rc;
}

int weft_thread_join(weft_thread_t *t, double timeout)
{
    WEFT__HANDLE_CHECK(t, WEFT__ID_THREAD, "thread");
    int64_t deadline;
    if (!t || weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (t == weft__thread_caller()) return WEFT_EDEADLK;
    return weft__thread_wait_phase(t, WEFT__PHASE_DONE, deadline, false);
}

bool weft_thread_is_alive(weft_thread_t *t)
{
    WEFT__HANDLE_CHECK(t, WEFT__ID_THREAD, "thread");
    if (!t) return false;
    weft__waitq_lock(&t->waiters);
    bool alive = t->phase != WEFT__PHASE_DONE;
    weft__waitq_unlock(&t->waiters);
    return alive;
}

weft_thread_t *weft_thread_retain(weft_thread_t *t)
{
    WEFT__HANDLE_CHECK(t, WEFT__ID_THREAD, "thread");
    /* Relaxed is enough: the caller already holds a reference, so the count cannot reach zero
     * meanwhile, and nothing else is published by the increment (as shared_ptr copies). */
    if (t && t->kind != WEFT__THREAD_MAIN) {
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
        WEFT__HANDLE_GIVE(t);
    }
    return t;
}

int weft_thread_release(weft_thread_t *t)
{
    if (!t) return WEFT_EINVAL;
    if (t->kind == WEFT__THREAD_MAIN) return 0; /* (a quarantined handle still has its kind) */
    WEFT__HANDLE_RELEASE(t, WEFT__ID_THREAD, "thread");
    weft__thread_unref(t);
    return 0;
}

void weft__thread_unref(weft_thread_t *t)
{
    if (t->kind == WEFT__THREAD_MAIN) return;
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        weft__handle_free(t, &t->hd);
}

long weft_thread_ident(const weft_thread_t *t)
{
    WEFT__HANDLE_CHECK(t, WEFT__ID_THREAD, "thread");
    return t ? t->ident : -1;
}
const char *weft_thread_name(const weft_thread_t *t)
{
    WEFT__HANDLE_CHECK(t, WEFT__ID_THREAD, "thread");
    return t ? t->name : NULL;
}
bool weft_thread_is_daemon(const weft_thread_t *t)
{
    WEFT__HANDLE_CHECK(t, WEFT__ID_THREAD, "thread");
    return t && t->daemon;
}
