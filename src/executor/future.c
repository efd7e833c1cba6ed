/*
 * future.c — weft_future_t: the states, waiting for the outcome, cancellation, done
 * callbacks, listeners, and running a task on behalf of an executor.
 *
 * Everything that changes a future happens under its lock (the lock of its wait queue), in
 * one place: settle(). settle() makes the state final, then, still under the lock, takes the
 * waiters and the callbacks and calls the listeners; after unlocking it wakes the waiters and
 * runs the callbacks in the order they were added. Callbacks added after that see a final
 * state and run at once in the adder. Readers of a final state need no lock: the release
 * store of the state publishes value, error and message, which never change again.
 *
 * Cancelling a RUNNING task: its runner's waiting context (weft__waitctx_t, the worker's or
 * the coroutine's) is canceled under the future's lock, and cancel_requested is set; the
 * runner clears its context after settling the future, so a cancel can never leak into the
 * next task the worker runs (cancel only acts while the state is RUNNING, and the runner
 * settles before it clears). The runner holds a cancel scope on its context while the task
 * runs: the waits the waiting core cannot wake see the cancel within a slice.
 */
#include "executor_internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void default_callback_error(weft_future_t *f, int code, void *arg)
{
    (void)arg;
    fprintf(stderr, "weft: exception calling callback for future %p: %s (%s)\n", (void *)f,
            weft_error_name(code), weft_error_message(code));
}

static void (*callback_error)(weft_future_t *, int, void *) = default_callback_error;
static void *callback_error_arg;

void weft_future_set_callback_error_handler(void (*fn)(weft_future_t *f, int code, void *arg),
                                            void *arg)
{
    callback_error = fn ? fn : default_callback_error;
    callback_error_arg = fn ? arg : NULL;
}

/* ---- life ------------------------------------------------------------------------------- */

weft_future_t *weft__future_create(weft_task_fn fn, void *arg, uint32_t refs)
{
    weft_future_t *f = weft__handle_alloc(sizeof *f);
    if (f) weft__future_init(f, fn, arg, refs, NULL);
    return f;
}

void weft__future_init(weft_future_t *f, weft_task_fn fn, void *arg, uint32_t refs,
                       weft__future_bin_t *bin)
{
    weft__handle_init(&f->hd, WEFT__ID_FUTURE, 0); /* the caller counts the one it hands out */
    atomic_init(&f->refs, refs);
    atomic_init(&f->state, WEFT_FUTURE_PENDING);
    f->waiters = (weft_waitq_t)WEFT_WAITQ_INIT;
    f->error = 0;
    f->cancel_requested = false;
    f->value = NULL;
    f->message = NULL;
    f->runner = NULL;
    f->task_message = NULL;
    f->first = (weft__callback_t){0};
    f->more = NULL;
    f->more_tail = &f->more;
    f->listeners = NULL;
    f->dispose = NULL;
    atomic_init(&f->offer, NULL);
    f->owned = false;
    atomic_init(&f->data, NULL);
    f->fn = fn;
    f->arg = arg;
    f->node = (weft__list_node_t){0};
    /* Stores, not atomic_init: a future returning to the bin may read the depth of one it saw
     * on top of the stack, which a submitter is reusing here (its CAS then fails). */
    atomic_store_explicit(&f->link.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&f->link.depth, 0, memory_order_relaxed);
    f->bin = bin;
    f->trace_id = 0;
}

void weft__future_trace_submit(weft_future_t *f, const char *pool)
{
    f->trace_id = weft__trace_id();
    weft__trace_ev_t ev = {.type = WEFT__TR_TASK_SUBMIT,
                           .t0 = weft_time_monotonic_ns(),
                           .id = f->trace_id,
                           .obj = f,
                           .name = pool};
    weft__trace_emit(&ev);
}

/* Tracing: f's result is in (its state is final, under f's lock). */
__attribute__((noinline, cold)) static void trace_done(weft_future_t *f, uint32_t state)
{
    weft__trace_ev_t ev = {.type = WEFT__TR_TASK_DONE,
                           .t0 = weft_time_monotonic_ns(),
                           .id = f->trace_id,
                           .obj = f,
                           .arg = f->error,
                           .flow = state == WEFT_FUTURE_CANCELLED};
    weft__trace_emit(&ev);
}

void weft__future_free_returned(weft__task_link_t *l)
{
    while (l) {
        weft_future_t *f = weft__container_of(l, weft_future_t, link);
        l = atomic_load_explicit(&l->next, memory_order_relaxed); /* ours alone now */
        weft__handle_free(f, &f->hd);
    }
}

/* The last reference of a future made from a bin went: back to the bin, unless it holds `max`
 * already (then freed). The push comes first, so that whoever brings the bin's count to 0 frees
 * this future too. */
static void return_to_bin(weft_future_t *f)
{
    weft__future_bin_t *bin = f->bin;
    /* Acquire: the depth of the one on top was written before its push. */
    weft__task_link_t *top = atomic_load_explicit(&bin->returned, memory_order_acquire);
    for (;;) {
        /* Relaxed: a count for the cap only (a stale one, after the top was taken and pushed
         * again, only moves the cap a little). */
        size_t depth = top ? atomic_load_explicit(&top->depth, memory_order_relaxed) + 1 : 1;
        if (depth > bin->max) {
            weft__handle_free(f, &f->hd);
            break;
        }
        atomic_store_explicit(&f->link.depth, depth, memory_order_relaxed);
        atomic_store_explicit(&f->link.next, top, memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&bin->returned, &top, &f->link,
                                                  memory_order_acq_rel, memory_order_acquire))
            break;
    }
    if (atomic_fetch_sub_explicit(&bin->refs, 1, memory_order_acq_rel) == 1) bin->release(bin);
}

int weft_future_create(weft_future_t **f)
{
    if (!f) return WEFT_EINVAL;
    *f = weft__future_create(NULL, NULL, 1);
    WEFT__HANDLE_GIVE(*f);
    return *f ? 0 : WEFT_ENOMEM;
}

weft_future_t *weft_future_retain(weft_future_t *f)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    /* Relaxed: the caller already holds a reference, so the future cannot go away meanwhile. */
    if (f) atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    WEFT__HANDLE_GIVE(f);
    return f;
}

int weft_future_release(weft_future_t *f)
{
    WEFT__HANDLE_RELEASE(f, WEFT__ID_FUTURE, "future");
    if (!f) return WEFT_EINVAL;
    weft__future_unref(f);
    return 0;
}

int weft_future_set_name(weft_future_t *f, const char *name)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    if (!f) return WEFT_EINVAL;
    return weft__name_set(f, name);
}

void weft__future_unref(weft_future_t *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1) return;
    /* Callbacks of a future that never completed are dropped with it. */
    for (weft__callback_t *c = f->more, *next; c; c = next) {
        next = c->next;
        weft__free(c);
    }
    if (f->owned) f->dispose(f->value);
    weft__free(f->message);
    weft__free(f->task_message);
    weft__name_drop(f);
    if (f->bin)
        return_to_bin(f);
    else
        weft__handle_free(f, &f->hd);
}

/* ---- settling ------------------------------------------------------------------------------ */

static void run_callback(weft_future_t *f, const weft__callback_t *c)
{
    int rc = c->fn(f, c->arg);
    if (rc) callback_error(f, rc, callback_error_arg);
}

/* Makes f final (the caller holds f's lock and has checked it is not final yet); unlocks;
 * wakes its waiters and runs its callbacks. */
static void settle(weft_future_t *f, uint32_t state)
{
    f->runner = NULL;
    atomic_store_explicit(&f->state, state, memory_order_release);
    if (weft__unlikely(f->trace_id)) trace_done(f, state);
    for (weft__listener_t *l = f->listeners, *next; l; l = next) {
        next = l->next;
        l->linked = false;
        l->notify(l, f);
    }
    f->listeners = NULL;
    weft__waiter_t *waiters = weft__waitq_take(&f->waiters, -1, 0);
    weft__callback_t first = f->first;
    weft__callback_t *more = f->more;
    f->first.fn = NULL;
    f->more = NULL;
    f->more_tail = &f->more;
    /* A callback may drop the last outside reference: hold one until they have all run. */
    bool callbacks = first.fn != NULL;
    if (callbacks) atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed); /* as retain */
    weft__waitq_unlock(&f->waiters);

    weft__waiters_wake(waiters);
    if (!callbacks) return;
    run_callback(f, &first);
    for (weft__callback_t *c = more, *next; c; c = next) {
        next = c->next;
        run_callback(f, c);
        weft__free(c);
    }
    weft__future_unref(f);
}

int weft__future_finish(weft_future_t *f, int code, void *value, char *message)
{
    weft__waitq_lock(&f->waiters);
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (weft__future_state_final(s)) {
        weft__waitq_unlock(&f->waiters);
        weft__free(message);
        return WEFT_EALREADY;
    }
    f->error = code;
    f->value = code ? NULL : value;
    f->owned = !code && value && value == atomic_load_explicit(&f->offer, memory_order_relaxed);
    if (message) {
        weft__free(f->message);
        f->message = message;
    }
    settle(f, WEFT_FUTURE_FINISHED);
    return 0;
}

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = weft__malloc(n);
    if (copy) memcpy(copy, s, n);
    return copy;
}

int weft_future_set_result(weft_future_t *f, void *value)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    if (!f) return WEFT_EINVAL;
    return weft__future_finish(f, 0, value, NULL);
}

int weft_future_set_error(weft_future_t *f, int code, const char *message)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    if (!f || code == 0) return WEFT_EINVAL;
    char *copy = message ? copy_string(message) : NULL;
    int rc = weft__future_finish(f, code, NULL, copy);
    if (rc == 0 && message && !copy) return WEFT_ENOMEM;
    return rc;
}

int weft_future_set_running(weft_future_t *f)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    if (!f) return WEFT_EINVAL;
    weft__waitq_lock(&f->waiters);
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (s == WEFT_FUTURE_PENDING)
        atomic_store_explicit(&f->state, WEFT_FUTURE_RUNNING, memory_order_release);
    weft__waitq_unlock(&f->waiters);
    if (s == WEFT_FUTURE_PENDING) return 0;
    return s == WEFT_FUTURE_CANCELLED ? WEFT_ECANCELED : WEFT_EALREADY;
}

int weft_future_cancel(weft_future_t *f)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    if (!f) return WEFT_EINVAL;
    weft__waitq_lock(&f->waiters);
    switch (atomic_load_explicit(&f->state, memory_order_relaxed)) {
    case WEFT_FUTURE_PENDING:
        settle(f, WEFT_FUTURE_CANCELLED); /* unlocks */
        return 0;
    case WEFT_FUTURE_RUNNING:
        if (f->runner && !f->cancel_requested) {
            f->cancel_requested = true;
            weft__waitctx_cancel(f->runner);
        }
        weft__waitq_unlock(&f->waiters);
        return WEFT_EBUSY;
    case WEFT_FUTURE_CANCELLED:
        weft__waitq_unlock(&f->waiters);
        return 0;
    default:
        weft__waitq_unlock(&f->waiters);
        return WEFT_EALREADY;
    }
}

/* ---- running a task --------------------------------------------------------------------- */

/* The task the calling thread runs (weft_future_fail_current's), and the waiting context it runs
 * in: a coroutine started by the task has a context of its own, and runs no task. Forgotten in a
 * forked child, which runs none of its parent's tasks. */
typedef struct running {
    weft_future_t *f;
    weft__waitctx_t *ctx;
} running_t;

static WEFT__TLS running_t running;

/* An executor that runs its task outside any future (a process-pool worker, an MPI worker
 * rank) captures weft_future_fail_current's message here between weft_future_capture_begin
 * and _end, to carry it back with the failure. */
static WEFT__TLS bool capturing;
static WEFT__TLS char *captured;

int weft_future_capture_begin(void)
{
    weft__free(captured);
    captured = NULL;
    capturing = true;
    return 0;
}

int weft_future_capture_end(char **message)
{
    if (!message) return WEFT_EINVAL; /* nothing changes */
    *message = NULL;
    char *kept = captured;
    captured = NULL;
    capturing = false;
    if (!kept) return 0;
    /* The caller frees it with free(): a copy from libc's malloc, whatever weft's allocator. */
    size_t n = strlen(kept) + 1;
    *message = malloc(n);
    if (*message) memcpy(*message, kept, n);
    weft__free(kept);
    return *message ? 0 : WEFT_ENOMEM;
}

static void running_forget(void)
{
    running = (running_t){NULL, NULL};
}

static const weft__fork_hooks_t fork_hooks = {.rank = WEFT__LAYER_EXECUTOR,
                                              .child = running_forget};

__attribute__((constructor)) static void register_fork_hooks(void)
{
    weft__fork_register(&fork_hooks); /* failing, a child only keeps a stale copy */
}

bool weft__future_run(weft_future_t *f)
{
    weft__waitctx_t *ctx = weft__waitctx_current();
    weft__waitq_lock(&f->waiters);
    if (atomic_load_explicit(&f->state, memory_order_relaxed) != WEFT_FUTURE_PENDING) {
        weft__waitq_unlock(&f->waiters);
        return false;
    }
    f->runner = ctx;
    atomic_store_explicit(&f->state, WEFT_FUTURE_RUNNING, memory_order_release);
    weft__waitq_unlock(&f->waiters);

    running_t outer = running;
    running = (running_t){f, ctx};
    weft__cancel_scope_enter(ctx);
    void *value = NULL;
    int64_t t0 = f->trace_id ? weft_time_monotonic_ns() : 0;
    int code = f->fn(f->arg, &value);
    if (t0) {
        weft__trace_ev_t ev = {.type = WEFT__TR_TASK_RUN,
                               .t0 = t0,
                               .t1 = weft_time_monotonic_ns(),
                               .id = f->trace_id,
                               .obj = f};
        weft__trace_emit(&ev);
    }
    weft__cancel_scope_leave(ctx);
    running = outer;

    char *message = code ? f->task_message : NULL;
    if (!code) weft__free(f->task_message); /* a task that returned 0 has no error message */
    f->task_message = NULL;
    weft__waitq_lock(&f->waiters);
    bool canceled = f->cancel_requested;
    if (weft__future_state_final(atomic_load_explicit(&f->state, memory_order_relaxed))) {
        /* Completed by hand (set_result / set_error) while the task ran: that outcome stands. */
        weft__waitq_unlock(&f->waiters);
        weft__free(message);
    } else {
        f->error = code;
        f->value = code ? NULL : value;
        f->message = message;
        settle(f, WEFT_FUTURE_FINISHED);
    }
    /* Settled: no cancel can reach this context through f any more; clear the one that did.
     * (f may be gone here if settle's callbacks dropped the last reference besides ours —
     * they cannot: our caller holds one.) */
    if (canceled) weft__waitctx_uncancel(ctx);
    return true;
}

int weft_future_fail_current(int code, const char *fmt, ...)
{
    weft_future_t *f = running.ctx == weft__waitctx_current() ? running.f : NULL;
    if ((!f && !capturing) || !fmt) return code;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return code;
    char *message = weft__malloc((size_t)n + 1);
    if (!message) return code; /* the code matters more than its message */
    va_start(ap, fmt);
    vsnprintf(message, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (!f) { /* a task run outside a future (weft_future_capture_begin): kept for its runner */
        weft__free(captured);
        captured = message;
        return code;
    }
    /* Kept aside by the runner (readers never see it) until weft__future_run settles f. */
    weft__free(f->task_message);
    f->task_message = message;
    return code;
}

/* ---- the consumer side ------------------------------------------------------------------ */

static bool is_final(const void *f)
{
    return weft__future_state_final(
        atomic_load_explicit(&((const weft_future_t *)f)->state, memory_order_acquire));
}

int weft__future_wait(weft_future_t *f, int64_t deadline)
{
    if (is_final(f)) return 0;
    if (deadline <= weft_time_monotonic_ns()) return WEFT_ETIMEDOUT;
    weft__waitctx_t *ctx = weft__waitctx_current();
    if (weft__waitctx_canceled(ctx)) return WEFT_ECANCELED;
    /* A thread spins on the state itself first (the waiting core's budget), before it queues
     * a waiter: a short task then completes with nobody to wake, and the caller takes no lock.
     * Its park below then sleeps at once: the budget is spent. */
    bool spun = weft__may_spin() && weft__spin_ns() > 0;
    if (spun && weft__spin(is_final, f, weft__scoped_deadline(ctx, deadline))) return 0;
    weft__waiter_t w;
    weft__waitq_lock(&f->waiters);
    if (weft__future_state_final(atomic_load_explicit(&f->state, memory_order_relaxed))) {
        weft__waitq_unlock(&f->waiters);
        return 0;
    }
    weft__waiter_init(&w);
    weft__waiter_on(&w, WEFT__ON_FUTURE, f);
    w.nospin = spun;
    weft__waitq_push(&f->waiters, &w);
    weft__waitq_unlock(&f->waiters);
    return weft__waiter_park(&f->waiters, &w, deadline);
}

/* How a final future ended, as result() reports it. */
static int outcome(weft_future_t *f, void **value)
{
    if (atomic_load_explicit(&f->state, memory_order_acquire) == WEFT_FUTURE_CANCELLED) {
        if (value) *value = NULL;
        return WEFT_ECANCELED;
    }
    if (value) *value = f->value;
    return f->error;
}

/* weft_future_result for either kind of result: a pointer, or the future's own bytes. */
static int result_of(weft_future_t *f, double timeout, void **value)
{
    int64_t deadline;
    if (value) *value = NULL;
    if (!f || weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    int rc = weft__future_wait(f, deadline);
    if (rc) return rc;
    return outcome(f, value);
}

int weft_future_result(weft_future_t *f, double timeout, void **value)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    int rc = result_of(f, timeout, value);
    /* Final with a result: `owned` was written with the state, seen through its acquire. Its
     * value is weft's record of the bytes, never the caller's to use. */
    if (rc == 0 && f->owned) {
        if (value) *value = NULL;
        return WEFT_EINVAL;
    }
    return rc;
}

int weft_future_result_bytes(weft_future_t *f, double timeout, const void **data, size_t *len)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    if (data) *data = NULL;
    if (len) *len = 0;
    void *value = NULL;
    int rc = result_of(f, timeout, &value);
    if (rc) return rc;
    if (!f->owned) return WEFT_EINVAL; /* a pointer result, not bytes */
    const weft__bytes_t *b = value;
    if (data) *data = b->len ? b->data : NULL; /* empty: NULL, as map gives and tasks leave */
    if (len) *len = b->len;
    return 0;
}

int weft_future_error(weft_future_t *f, double timeout, int *code)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    int64_t deadline;
    if (!f || weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    int rc = weft__future_wait(f, deadline);
    if (rc) return rc;
    int outcome_code = outcome(f, NULL);
    if (code) *code = outcome_code;
    return 0;
}

const char *weft_future_error_message(weft_future_t *f)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    if (!f || atomic_load_explicit(&f->state, memory_order_acquire) != WEFT_FUTURE_FINISHED)
        return NULL;
    return f->message;
}

int weft_future_set_data(weft_future_t *f, void *data)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    if (!f) return WEFT_EINVAL;
    /* Release: a reader that sees the pointer sees what the setter wrote before it. */
    atomic_store_explicit(&f->data, data, memory_order_release);
    return 0;
}

void *weft_future_data(weft_future_t *f)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    return f ? atomic_load_explicit(&f->data, memory_order_acquire) : NULL;
}

weft_future_state_t weft_future_state(weft_future_t *f)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    if (!f) return WEFT_FUTURE_INVALID;
    return (weft_future_state_t)atomic_load_explicit(&f->state, memory_order_acquire);
}

bool weft_future_cancelled(weft_future_t *f)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    return weft_future_state(f) == WEFT_FUTURE_CANCELLED;
}

bool weft_future_running(weft_future_t *f)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    return weft_future_state(f) == WEFT_FUTURE_RUNNING;
}

bool weft_future_done(weft_future_t *f)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    return weft__future_state_final(weft_future_state(f));
}

int weft_future_add_done_callback(weft_future_t *f, int (*fn)(weft_future_t *f, void *arg),
                                  void *arg)
{
    WEFT__HANDLE_CHECK(f, WEFT__ID_FUTURE, "future");
    if (!f || !fn) return WEFT_EINVAL;
    weft__callback_t *node = NULL;
    weft__waitq_lock(&f->waiters);
    bool final = weft__future_state_final(atomic_load_explicit(&f->state, memory_order_relaxed));
    if (!final && f->first.fn) {
        /* Allocating under the future's lock is rare (a second callback) and short. */
        node = weft__malloc(sizeof *node);
        if (!node) {
            weft__waitq_unlock(&f->waiters);
            return WEFT_ENOMEM;
        }
        *node = (weft__callback_t){NULL, fn, arg};
        *f->more_tail = node;
        f->more_tail = &node->next;
    } else if (!final) {
        f->first = (weft__callback_t){NULL, fn, arg};
    }
    weft__waitq_unlock(&f->waiters);
    if (final) run_callback(f, &(weft__callback_t){NULL, fn, arg});
    return 0;
}

/* ---- listeners --------------------------------------------------------------------------- */

void weft__future_listen(weft_future_t *f, weft__listener_t *l)
{
    weft__waitq_lock(&f->waiters);
    if (weft__future_state_final(atomic_load_explicit(&f->state, memory_order_relaxed))) {
        l->linked = false;
        l->notify(l, f);
    } else {
        l->prev = NULL;
        l->next = f->listeners;
        if (f->listeners) f->listeners->prev = l;
        f->listeners = l;
        l->linked = true;
    }
    weft__waitq_unlock(&f->waiters);
}

void weft__future_unlisten(weft_future_t *f, weft__listener_t *l)
{
    weft__waitq_lock(&f->waiters);
    if (l->linked) {
        if (l->prev)
            l->prev->next = l->next;
        else
            f->listeners = l->next;
        if (l->next) l->next->prev = l->prev;
        l->linked = false;
    }
    weft__waitq_unlock(&f->waiters);
}
