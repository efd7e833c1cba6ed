/*
 * Scopes (weft/scope.h): structured concurrency over the public API of the layers below.
 *
 * A scope is a record per task on one list (`tasks`, newest first) and a few counters, all
 * guarded by `lock` (a core mutex: the bookkeeping at a task's end must not fail when the task's
 * context is canceled). Joiners park on `joiners` with that lock (weft__wait_until) until `live`
 * is 0. Records are linked once and freed only by weft_scope_release, so a cancel may walk the
 * list with the lock dropped (a future's cancel runs its done callback, which takes the lock).
 *
 * A task's life: NEW (linked, counted in `live`, not yet running) -> RUNNING -> DONE (`live`
 * dropped, joiners woken). Coroutine and thread tasks run through a wrapper that records the
 * running context (`ctx`, under the lock) so that a cancel reaches it, and skips the function
 * when the scope was canceled before it ran (co_main, thread_main; task_begin and task_end). A
 * coroutine canceled before it first ran (its thread's exit, its hubs' stop, a cancel of its
 * handle) never enters co_main: the coroutine layer calls co_unrun instead (weft__co_on_unrun),
 * which ends the task as canceled unrun. A
 * future ends through its done callback (future_done), whichever way it completes. A process is
 * watched by a thread of the scope (process_watch) that joins it and, once canceled, terminates it,
 * waits the grace period and kills it.
 *
 * Cancel (scope_cancel): raise `canceled` and walk the tasks: a thread's or watcher's context is
 * canceled under the lock (the context lives while `ctx` is set, and task_end clears it under
 * the lock before it ends); a coroutine is canceled with weft_co_cancel; futures are canceled
 * in a second walk without the lock. Child scopes are canceled after. A start that links its
 * record after the walk sees `canceled` under the lock and refuses; one linked before the walk
 * but whose handle was not yet stored is canceled by the start itself once it stores it.
 */
#include "weft/scope.h"

#include "../core/core_internal.h"
#include "../coro/coro_shared.h"
#include "../wait/wait_internal.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

enum kind { K_NONE, K_CO, K_THREAD, K_FUTURE, K_PROCESS };
enum tstate { T_NEW, T_RUNNING, T_DONE };

typedef struct task {
    struct task *next; /* on scope->tasks; never unlinked before release */
    weft_scope_t *scope;
    enum kind kind; /* K_NONE: a start that failed (the record waits for release) */
    enum tstate state;
    bool cancel_sent; /* the scope's cancel reached it (guarded by the lock) */
    bool signaled;    /* a process: the scope sent it SIGTERM or SIGKILL */
    weft_scope_fn fn;
    weft_task_fn task_fn;
    void *arg;
    weft__waitctx_t *ctx; /* a running thread's or watcher's context, under the lock */
    weft_co_t *co;
    weft_thread_t *thread; /* a thread task's, or a process's watcher */
    weft_future_t *future;
    weft_process_t *process;
    pthread_t spawner; /* a coroutine: the thread whose hub runs it */
} task_t;

struct weft_scope {
    weft__mutex_t lock;
    weft_waitq_t joiners;
    task_t *tasks;
    size_t live;
    bool canceled;
    bool closed; /* joined to the end: no more tasks */
    int reason;  /* why it was canceled: WEFT_ECANCELED, WEFT_ETIMEDOUT or 0 (a failure) */
    int first;   /* the first failure's raw value */
    size_t errors;
    int result; /* what join returns once closed */
    int64_t deadline;
    int64_t grace_ns; /* < 0: kill at once */
    pid_t pid;        /* the process that opened it (a forked child sees it broken) */
    weft_scope_t *parent;
    weft_scope_t *children;         /* open child scopes, through sibling */
    weft_scope_t *sibling, **pprev; /* in parent->children, under the parent's lock */
};

/* The task the calling thread runs (a thread task, a future's task, a watcher: NULL). A
 * coroutine's is its coroutine-local value. */
static WEFT__TLS task_t *thread_task;
/* Coroutines this thread spawned into scopes: a task that spawned none need not look for them
 * (join_own_coroutines walks every record). */
static WEFT__TLS uint64_t thread_spawns;
static weft_co_key_t co_task_key = WEFT_CO_KEY_INIT(NULL);

static task_t *current_task(void)
{
    if (weft_co_current()) return weft_co_local_get(&co_task_key);
    return thread_task;
}

static bool broken(const weft_scope_t *s)
{
    return s->pid != getpid();
}

/* ---- cancel --------------------------------------------------------------------------- */

static void scope_cancel(weft_scope_t *s, int reason);

/* Reaches one task with the cancel; s->lock held. Futures are left to the unlocked walk. */
static void cancel_locked(task_t *t)
{
    if (t->state == T_DONE || t->kind == K_NONE || t->cancel_sent) return;
    switch (t->kind) {
    case K_CO:
        if (t->state == T_NEW) return; /* task_begin sees `canceled`: fn is skipped */
        t->cancel_sent = true;
        weft_co_cancel(t->co);
        break;
    case K_THREAD:
    case K_PROCESS:
        if (!t->ctx) return; /* not running yet: task_begin sees `canceled` */
        t->cancel_sent = true;
        weft__waitctx_cancel(t->ctx);
        break;
    case K_FUTURE:
        if (t->future) t->cancel_sent = true; /* canceled by the unlocked walk */
        break;
    default:
        break;
    }
}

static void scope_cancel(weft_scope_t *s, int reason)
{
    int64_t now = weft_time_monotonic_ns();
    weft__mutex_lock(&s->lock);
    if (!s->canceled) {
        s->canceled = true;
        /* A cancel that comes once the scope's deadline passed is the deadline's, whoever
         * brings it (a parent's deadline reaches a child, whose deadline is at most the
         * parent's, through the parent's joiner or through the child's own): join says
         * WEFT_ETIMEDOUT whichever comes first. A failure's cancel (0) stays one. */
        bool expired = s->deadline != WEFT_NO_DEADLINE && now >= s->deadline;
        s->reason = reason != 0 && expired ? WEFT_ETIMEDOUT : reason;
    }
    for (task_t *t = s->tasks; t; t = t->next) cancel_locked(t);
    task_t *head = s->tasks;
    weft__mutex_unlock(&s->lock);
    /* Records are never freed before release and `next` never changes once linked. */
    for (task_t *t = head; t; t = t->next) {
        weft__mutex_lock(&s->lock);
        bool go = t->kind == K_FUTURE && t->cancel_sent && t->state != T_DONE;
        weft_future_t *f = t->future;
        weft__mutex_unlock(&s->lock);
        if (go) (void)weft_future_cancel(f); /* may run future_done here */
    }
    /* Child scopes, depth first, with s->lock held: a child unlinks itself at release under
     * it, so none is freed meanwhile. Locks are taken ancestor first, never the other way. */
    weft__mutex_lock(&s->lock);
    for (weft_scope_t *c = s->children; c; c = c->sibling) scope_cancel(c, WEFT_ECANCELED);
    weft__mutex_unlock(&s->lock);
}

/* ---- ending ---------------------------------------------------------------------------- */

/* Drops n from live (s->lock held); returns the joiners to wake when it reached 0. */
static weft__waiter_t *live_drop(weft_scope_t *s, size_t n)
{
    s->live -= n;
    return s->live == 0 ? weft__waitq_take(&s->joiners, -1, 0) : NULL;
}

/* Whether the scope's deadline has passed (s->lock held). */
static bool past_deadline(const weft_scope_t *s)
{
    return s->deadline != WEFT_NO_DEADLINE && weft_time_monotonic_ns() >= s->deadline;
}

/* Records how t ended (rc: its code; a process's exit code) and wakes the joiners when it was
 * the last one; the first failure cancels the others. A task's WEFT_ECANCELED once the scope was
 * canceled is that cancel coming back; so is its WEFT_ETIMEDOUT once the scope's deadline has
 * passed (a child scope's join says so: its deadline is at most this one), which cancels the
 * scope for its deadline if nobody did yet. */
static void task_end(task_t *t, int rc, bool by_scope)
{
    weft_scope_t *s = t->scope;
    bool fail_first = false;
    weft__mutex_lock(&s->lock);
    t->ctx = NULL;
    bool deadline = !by_scope && rc == WEFT_ETIMEDOUT && past_deadline(s);
    bool deadline_cancel = deadline && !s->canceled;
    if (rc != 0 && !by_scope && !deadline && !(s->canceled && rc == WEFT_ECANCELED)) {
        if (s->errors++ == 0) s->first = rc;
        fail_first = !s->canceled;
        if (fail_first) {
            s->canceled = true;
            s->reason = 0;
        }
    }
    weft__mutex_unlock(&s->lock);
    /* The rest are canceled while this task still counts: a joiner cannot close and free the
     * scope under the walk. */
    if (fail_first) scope_cancel(s, 0);
    if (deadline_cancel) scope_cancel(s, WEFT_ETIMEDOUT);
    weft__mutex_lock(&s->lock);
    t->state = T_DONE;
    weft__waiter_t *wake = live_drop(s, 1);
    weft__mutex_unlock(&s->lock);
    if (wake) weft__waiters_wake(wake); /* the waiters are the joiners', not the scope's */
}

/* Marks t as running (or says the scope was canceled first); s->lock not held. */
static bool task_begin(task_t *t, weft__waitctx_t *ctx)
{
    weft_scope_t *s = t->scope;
    weft__mutex_lock(&s->lock);
    bool go = !s->canceled;
    if (go) {
        t->state = T_RUNNING;
        t->ctx = ctx;
    }
    weft__mutex_unlock(&s->lock);
    return go;
}

static void co_main(void *arg)
{
    task_t *t = arg;
    if (!task_begin(t, NULL)) {
        task_end(t, WEFT_ECANCELED, true);
        return;
    }
    int rc = weft_co_local_set(&co_task_key, t);
    if (rc == 0) rc = t->fn(t->arg);
    task_end(t, rc, false);
}

/* A coroutine task that ended without co_main running (weft__co_on_unrun): canceled before it
 * started, by its thread's exit, its hubs' stop or a cancel of its handle. As a task the
 * scope's cancel reached before it started: canceled unrun, not a failure. */
static void co_unrun(void *arg)
{
    task_end(arg, WEFT_ECANCELED, true);
}

/* Joins the scope's coroutines that run on the calling thread's hub, before a thread task or a
 * future's task ends: a thread that ends with coroutines not yet started cancels them unrun
 * (weft/coro.h, "Thread exit"), and a pool worker's hub runs its coroutines only while the
 * worker waits. New ones are linked at the head, so the walk restarts until it joins none. */
static void join_own_coroutines(weft_scope_t *s)
{
    pthread_t self = pthread_self();
    for (bool again = true; again;) {
        again = false;
        weft__mutex_lock(&s->lock);
        task_t *head = s->tasks;
        weft__mutex_unlock(&s->lock);
        for (task_t *t = head; t; t = t->next) {
            weft__mutex_lock(&s->lock);
            weft_co_t *co = t->kind == K_CO && t->state != T_DONE && pthread_equal(t->spawner, self)
                                ? t->co
                                : NULL;
            weft__mutex_unlock(&s->lock);
            if (!co) continue;
            /* It ends through co_main or co_unrun, which record the end. */
            while (weft_co_join(co, WEFT_FOREVER) == WEFT_ECANCELED) (void)weft_co_yield();
            again = true;
        }
    }
}

static void thread_main(void *arg)
{
    task_t *t = arg;
    weft__waitctx_t *ctx = weft__waitctx_current();
    if (!task_begin(t, ctx)) {
        task_end(t, WEFT_ECANCELED, true);
        return;
    }
    weft__cancel_scope_enter(ctx);
    thread_task = t;
    uint64_t spawns = thread_spawns;
    int rc = t->fn(t->arg);
    if (thread_spawns != spawns) join_own_coroutines(t->scope);
    thread_task = NULL;
    weft__cancel_scope_leave(ctx);
    task_end(t, rc, false);
}

/* A future's task, on a pool worker: the scope is the task's while it runs. */
static int future_main(void *arg, void **result)
{
    task_t *t = arg;
    task_t *saved = thread_task;
    thread_task = t;
    uint64_t spawns = thread_spawns;
    int rc = t->task_fn(t->arg, result);
    if (thread_spawns != spawns) join_own_coroutines(t->scope);
    thread_task = saved;
    return rc;
}

static int future_done(weft_future_t *f, void *arg)
{
    task_t *t = arg;
    int code = 0;
    bool cancelled = weft_future_cancelled(f);
    if (!cancelled && weft_future_error(f, 0, &code) != 0) code = WEFT_ESYSTEM; /* done: cannot */
    task_end(t, cancelled ? WEFT_ECANCELED : code, cancelled);
    return 0;
}

/* The child of a process task runs outside every scope. */
static int process_main(void *arg)
{
    task_t *t = arg;
    thread_task = NULL;
    return t->fn(t->arg);
}

/* Joins the child, retrying where the join was cut short by the watcher's cancel. */
static int join_nocancel(weft_process_t *p, double timeout, weft__waitctx_t *ctx)
{
    int rc;
    while ((rc = weft_process_join(p, timeout)) == WEFT_ECANCELED) weft__waitctx_uncancel(ctx);
    return rc;
}

static void process_watch(void *arg)
{
    task_t *t = arg;
    weft_scope_t *s = t->scope;
    (void)weft__ctx_list_internal(); /* the process is the task; this thread is the scope's */
    weft__waitctx_t *ctx = weft__waitctx_current();
    weft__cancel_scope_enter(ctx);
    int rc = task_begin(t, ctx) ? weft_process_join(t->process, WEFT_FOREVER) : WEFT_ECANCELED;
    if (rc == WEFT_ECANCELED) {
        weft__mutex_lock(&s->lock);
        t->ctx = NULL; /* no second cancel: this thread handles it now */
        t->signaled = true;
        weft__mutex_unlock(&s->lock);
        weft__waitctx_uncancel(ctx);
        if (s->grace_ns >= 0) {
            (void)weft_process_terminate(t->process);
            rc = join_nocancel(t->process, (double)s->grace_ns / 1e9, ctx);
        }
        if (rc != 0) {
            (void)weft_process_kill(t->process);
            rc = join_nocancel(t->process, WEFT_FOREVER, ctx);
        }
    }
    weft__cancel_scope_leave(ctx);
    int code = 0;
    if (rc == 0) rc = weft_process_exitcode(t->process, &code);
    if (rc != 0) code = rc; /* could not learn how it ended */
    bool by_scope = t->signaled && (code == -SIGTERM || code == -SIGKILL);
    task_end(t, code, by_scope);
}

/* ---- starting -------------------------------------------------------------------------- */

/* Links a new record for a task of `kind` or says why not. `live` counts the task and its
 * start: the start holds its share until the task's handle is stored (start_done), so a join
 * cannot end, nor a release free the record, under a starter that is still writing it. */
static int task_link(weft_scope_t *s, enum kind kind, task_t **out)
{
    *out = NULL;
    if (broken(s)) return WEFT_EBROKEN;
    task_t *t = weft__calloc(1, sizeof *t);
    if (!t) return WEFT_ENOMEM;
    t->scope = s;
    t->kind = kind;
    t->state = T_NEW;
    bool expired = s->deadline != WEFT_NO_DEADLINE && weft_time_monotonic_ns() >= s->deadline;
    weft__mutex_lock(&s->lock);
    int rc = s->closed     ? WEFT_ESHUTDOWN
             : s->canceled ? WEFT_ECANCELED
             : expired     ? WEFT_ECANCELED
                           : 0;
    if (rc == 0) {
        t->next = s->tasks;
        s->tasks = t;
        s->live += 2; /* the task, and its start until the handle is stored (start_done) */
    }
    weft__mutex_unlock(&s->lock);
    if (rc != 0) {
        weft__free(t);
        if (expired) scope_cancel(s, WEFT_ETIMEDOUT);
        return rc;
    }
    *out = t;
    return 0;
}

/* The start is over and its handle stored: a joiner may now see the task's end as the last. */
static void start_done(task_t *t)
{
    weft_scope_t *s = t->scope;
    weft__mutex_lock(&s->lock);
    weft__waiter_t *wake = live_drop(s, 1);
    weft__mutex_unlock(&s->lock);
    if (wake) weft__waiters_wake(wake);
}

/* A start that failed after task_link: the record stays (a walk may be on it) as K_NONE. */
static void task_unstart(task_t *t)
{
    weft_scope_t *s = t->scope;
    weft__mutex_lock(&s->lock);
    t->kind = K_NONE;
    t->state = T_DONE;
    weft__waiter_t *wake = live_drop(s, 2);
    weft__mutex_unlock(&s->lock);
    if (wake) weft__waiters_wake(wake);
}

int weft_scope_spawn(weft_scope_t *scope, weft_scope_fn fn, void *arg, const weft_co_opts_t *opts,
                     weft_co_t **co)
{
    if (co) *co = NULL;
    if (!scope || !fn) return WEFT_EINVAL;
    task_t *t;
    int rc = task_link(scope, K_CO, &t);
    if (rc != 0) return rc;
    t->fn = fn;
    t->arg = arg;
    weft_co_t *h;
    /* The handle is stored before the coroutine first runs: it runs on the caller's hub, only
     * once the caller blocks or yields. */
    rc = weft_co_spawn(co_main, t, opts, &h);
    if (rc != 0) {
        task_unstart(t);
        return rc;
    }
    weft__co_on_unrun(h, co_unrun); /* an end without co_main still ends the task */
    weft__mutex_lock(&scope->lock);
    t->co = h;
    t->spawner = pthread_self();
    weft__mutex_unlock(&scope->lock);
    thread_spawns++;
    if (co) *co = weft_co_retain(h);
    start_done(t);
    return 0;
}

int weft_scope_thread_start(weft_scope_t *scope, weft_scope_fn fn, void *arg,
                            const weft_thread_opts_t *opts, weft_thread_t **th)
{
    if (th) *th = NULL;
    if (!scope || !fn) return WEFT_EINVAL;
    task_t *t;
    int rc = task_link(scope, K_THREAD, &t);
    if (rc != 0) return rc;
    t->fn = fn;
    t->arg = arg;
    weft_thread_t *h;
    rc = weft_thread_start(thread_main, t, opts, &h);
    if (rc != 0) {
        task_unstart(t);
        return rc;
    }
    weft__mutex_lock(&scope->lock);
    t->thread = h;
    weft__mutex_unlock(&scope->lock);
    if (th) *th = weft_thread_retain(h);
    start_done(t);
    return 0;
}

int weft_scope_submit(weft_scope_t *scope, weft_executor_t *ex, weft_task_fn fn, void *arg,
                      weft_future_t **f)
{
    if (f) *f = NULL;
    if (!scope || !ex || !fn) return WEFT_EINVAL;
    task_t *t;
    int rc = task_link(scope, K_FUTURE, &t);
    if (rc != 0) return rc;
    t->task_fn = fn;
    t->arg = arg;
    weft_future_t *h;
    rc = weft_executor_submit(ex, future_main, t, &h);
    if (rc != 0) {
        task_unstart(t);
        return rc;
    }
    weft__mutex_lock(&scope->lock);
    t->future = h;
    bool cancel = scope->canceled;
    if (cancel) t->cancel_sent = true;
    weft__mutex_unlock(&scope->lock);
    rc = weft_future_add_done_callback(h, future_done, t);
    if (rc != 0) { /* no memory for the callback: take the task back, or wait it out */
        if (weft_future_cancel(h) != 0)
            while (weft_future_error(h, WEFT_FOREVER, NULL) == WEFT_ECANCELED) sched_yield();
        weft__mutex_lock(&scope->lock);
        t->future = NULL;
        weft__mutex_unlock(&scope->lock);
        weft_future_release(h);
        task_unstart(t);
        return rc;
    }
    if (cancel) (void)weft_future_cancel(h);
    if (f) *f = weft_future_retain(h);
    start_done(t);
    return 0;
}

int weft_scope_process_start(weft_scope_t *scope, weft_scope_fn fn, void *arg,
                             const weft_process_opts_t *opts, weft_process_t **p)
{
    if (p) *p = NULL;
    if (!scope || !fn) return WEFT_EINVAL;
    task_t *t;
    int rc = task_link(scope, K_PROCESS, &t);
    if (rc != 0) return rc;
    t->fn = fn;
    t->arg = arg;
    weft_process_t *h;
    rc = weft_process_start(process_main, t, opts, &h);
    if (rc != 0) {
        task_unstart(t);
        return rc;
    }
    t->process = h;
    weft_thread_opts_t wopts = {.name = "weft-scope-watch", .daemon = true};
    weft_thread_t *w;
    rc = weft_thread_start(process_watch, t, &wopts, &w);
    if (rc != 0) {
        (void)weft_process_kill(h);
        while (weft_process_join(h, WEFT_FOREVER) == WEFT_ECANCELED) sched_yield();
        (void)weft_process_release(h);
        t->process = NULL;
        task_unstart(t);
        return rc;
    }
    weft__mutex_lock(&scope->lock);
    t->thread = w;
    weft__mutex_unlock(&scope->lock);
    if (p) *p = h; /* borrowed: the scope's release releases it */
    start_done(t);
    return 0;
}

/* ---- the scope ------------------------------------------------------------------------- */

int weft_scope_create(const weft_scope_opts_t *opts, double timeout, weft_scope_t **scope)
{
    if (!scope) return WEFT_EINVAL;
    *scope = NULL;
    int64_t deadline;
    int rc = weft__deadline(timeout, &deadline);
    if (rc != 0) return rc;
    double grace = opts ? opts->grace : 0;
    if (isnan(grace)) return WEFT_EINVAL;
    weft_scope_t *s = weft__calloc(1, sizeof *s);
    if (!s) return WEFT_ENOMEM;
    s->lock = (weft__mutex_t)WEFT__MUTEX_INIT;
    s->deadline = deadline;
    s->grace_ns = grace < 0     ? -1
                  : grace == 0  ? 1000000000LL
                  : grace > 1e9 ? INT64_MAX / 2
                                : (int64_t)(grace * 1e9);
    s->pid = getpid();
    task_t *cur = current_task();
    weft_scope_t *parent = cur && !broken(cur->scope) ? cur->scope : NULL;
    if (parent) {
        weft__mutex_lock(&parent->lock);
        rc = parent->closed ? WEFT_ESHUTDOWN : parent->canceled ? WEFT_ECANCELED : 0;
        if (rc == 0) {
            s->parent = parent;
            if (parent->deadline < s->deadline) s->deadline = parent->deadline;
            s->sibling = parent->children;
            if (s->sibling) s->sibling->pprev = &s->sibling;
            s->pprev = &parent->children;
            parent->children = s;
        }
        weft__mutex_unlock(&parent->lock);
        if (rc != 0) {
            weft__free(s);
            return rc;
        }
    }
    *scope = s;
    return 0;
}

int weft_scope_cancel(weft_scope_t *scope)
{
    if (!scope) return WEFT_EINVAL;
    if (broken(scope)) return WEFT_EBROKEN;
    scope_cancel(scope, WEFT_ECANCELED);
    return 0;
}

static int live_is_zero(void *arg)
{
    return ((weft_scope_t *)arg)->live == 0 ? 0 : WEFT__WAIT_PARK;
}

/* Joins the ended tasks' threads and coroutines (they are past their last step, so these
 * joins are short), without the caller's cancel cutting them short. */
static void join_handles(weft_scope_t *s)
{
    for (task_t *t = s->tasks; t; t = t->next) {
        if (t->thread)
            while (weft_thread_join(t->thread, WEFT_FOREVER) == WEFT_ECANCELED) sched_yield();
        if (t->co)
            while (weft_co_join(t->co, WEFT_FOREVER) == WEFT_ECANCELED) (void)weft_co_yield();
    }
}

int weft_scope_join(weft_scope_t *scope, double timeout)
{
    if (!scope) return WEFT_EINVAL;
    int64_t until;
    int rc = weft__deadline(timeout, &until);
    if (rc != 0) return rc;
    if (broken(scope)) return WEFT_EBROKEN;
    task_t *cur = current_task();
    for (task_t *c = cur; c; c = NULL)
        for (weft_scope_t *a = c->scope; a; a = a->parent)
            if (a == scope) return WEFT_EDEADLK; /* it would wait for the caller itself */
    weft__mutex_lock(&scope->lock);
    bool closed = scope->closed;
    rc = scope->result;
    weft__mutex_unlock(&scope->lock);
    if (closed) return rc;
    bool nocancel = false;
    for (;;) {
        weft__mutex_lock(&scope->lock);
        int64_t d = scope->canceled || scope->deadline > until ? until : scope->deadline;
        weft__mutex_unlock(&scope->lock);
        weft__waiter_t w;
        weft__waiter_init(&w);
        weft__waiter_on(&w, WEFT__ON_SCOPE, scope); /* the dump's "Scope 'name' join" */
        w.nocancel = nocancel;
        rc = weft__wait_until(&scope->lock, &scope->joiners, &w, live_is_zero, scope, d);
        if (rc == 0) {
            weft__mutex_lock(&scope->lock);
            bool done = scope->live == 0;
            weft__mutex_unlock(&scope->lock);
            if (done) break;
            continue; /* a wake, then a new task: wait again */
        }
        if (rc == WEFT_ECANCELED) { /* the joiner was canceled: pass it on, keep waiting */
            scope_cancel(scope, WEFT_ECANCELED);
            nocancel = true;
            continue;
        }
        if (rc != WEFT_ETIMEDOUT) return rc;
        int64_t now = weft_time_monotonic_ns();
        weft__mutex_lock(&scope->lock);
        bool expired =
            !scope->canceled && scope->deadline != WEFT_NO_DEADLINE && now >= scope->deadline;
        weft__mutex_unlock(&scope->lock);
        if (expired) {
            scope_cancel(scope, WEFT_ETIMEDOUT); /* the scope's deadline: wait for the rest */
            continue;
        }
        /* The join's own timeout, if it passed; else the wait was for the scope's deadline,
         * and somebody (a parent's deadline, a cancel) canceled the scope first: wait on. */
        if (until != WEFT_NO_DEADLINE && now >= until) return WEFT_EBUSY;
    }
    /* Nothing runs; close to new tasks (a start between live == 0 and here is refused). */
    weft__mutex_lock(&scope->lock);
    scope->closed = true;
    weft__mutex_unlock(&scope->lock);
    join_handles(scope);
    weft__mutex_lock(&scope->lock);
    if (scope->errors) /* the tasks' own codes are weft_scope_errors' to tell */
        scope->result = WEFT_ETASKFAILED;
    else
        scope->result = scope->canceled ? scope->reason : 0;
    rc = scope->result;
    weft__mutex_unlock(&scope->lock);
    return rc;
}

int weft_scope_errors(weft_scope_t *scope, int *first, size_t *count)
{
    if (!scope) return WEFT_EINVAL;
    weft__mutex_lock(&scope->lock);
    if (first) *first = scope->errors ? scope->first : 0;
    if (count) *count = scope->errors;
    weft__mutex_unlock(&scope->lock);
    return 0;
}

size_t weft_scope_live(weft_scope_t *scope)
{
    if (!scope) return 0;
    size_t n = 0;
    weft__mutex_lock(&scope->lock);
    for (task_t *t = scope->tasks; t; t = t->next) n += t->kind != K_NONE && t->state != T_DONE;
    weft__mutex_unlock(&scope->lock);
    return n;
}

weft_scope_t *weft_scope_current(void)
{
    task_t *t = current_task();
    return t && !broken(t->scope) ? t->scope : NULL;
}

int weft_scope_set_name(weft_scope_t *scope, const char *name)
{
    if (!scope) return WEFT_EINVAL;
    return weft__name_set(scope, name);
}

int weft_scope_release(weft_scope_t *scope)
{
    if (!scope) return WEFT_EINVAL;
    bool child = broken(scope);
    if (!child) {
        weft__mutex_lock(&scope->lock);
        bool busy = scope->live != 0 || scope->children != NULL;
        weft__mutex_unlock(&scope->lock);
        if (busy) return WEFT_EBUSY;
        join_handles(scope);
        weft_scope_t *parent = scope->parent;
        if (parent) {
            weft__mutex_lock(&parent->lock);
            *scope->pprev = scope->sibling;
            if (scope->sibling) scope->sibling->pprev = scope->pprev;
            weft__mutex_unlock(&parent->lock);
        }
    }
    for (task_t *t = scope->tasks, *next; t; t = next) {
        next = t->next;
        if (!child) { /* a forked child keeps the parent's handles alone */
            if (t->co) weft_co_release(t->co);
            if (t->thread) weft_thread_release(t->thread);
            if (t->future) weft_future_release(t->future);
            if (t->process) weft_process_release(t->process);
        }
        weft__free(t);
    }
    weft__name_drop(scope); /* a forked child's copy of the table too */
    weft__free(scope);
    return 0;
}
