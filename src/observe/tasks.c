/*
 * tasks.c — the snapshot of every task of the process (observe_internal.h).
 *
 * Four passes, each under the lock of the list it reads, copy what they find into growable
 * arrays (allocating under those locks, never blocking): the weft threads (thread layer's
 * registry), the listed thread contexts (wait layer's registry), every hub with its live
 * coroutines (coro layer: the hubs' registry, then each hub's live-list lock), the thread
 * and process pools' queued and running futures (executor layer), the child processes
 * (process layer).
 * No two of those locks are held at once. Then, without a lock, the copies are joined: a
 * context with its weft thread (ctx->who, else the kernel tid) and its hub (the hub's tid),
 * and each wait with the task holding its object, matched by identity (pointers are compared,
 * never followed). The one object followed is a Lock (or an RLock's inner Lock) a context
 * says it waits on, for its owner_: read only while the context still says so (checked
 * before and after), which holds while the waiter is inside weft_lock_acquire on it.
 */
#include "observe_internal.h"
#include "../coro/coro_internal.h"
#include "../core/sys_internal.h"
#include "../executor/executor_internal.h"
#include "../process/process_internal.h"
#include "../thread/thread_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

/* ---- growable arrays ----------------------------------------------------------------------- */

typedef struct vec {
    void *v;
    size_t n, cap, size;
    bool failed; /* a push found no memory: the snapshot fails */
} vec_t;

/* A zeroed new element at the end, or NULL (v->failed set) when out of memory. */
static void *push(vec_t *v)
{
    if (v->failed) return NULL;
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 16;
        void *nv = weft__realloc(v->v, ncap * v->size);
        if (!nv) {
            v->failed = true;
            return NULL;
        }
        v->v = nv;
        v->cap = ncap;
    }
    void *e = (char *)v->v + v->n++ * v->size;
    memset(e, 0, v->size);
    return e;
}

static void *at(const vec_t *v, size_t i)
{
    return (char *)v->v + i * v->size;
}

static void vec_free(vec_t *v)
{
    weft__free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

/* ---- what each pass copies ------------------------------------------------------------------ */

typedef struct thread_rec {
    const void *rec; /* the weft_thread_t */
    long ident;
    char name[64];
    bool matched;
} thread_rec_t;

typedef struct hub_rec {
    const void *hub;
    int tid;
    size_t first, count; /* its coroutines in the coroutine array */
} hub_rec_t;

typedef struct passes {
    vec_t threads;  /* thread_rec_t */
    vec_t ctxs;     /* weft__task_t: listed thread contexts */
    vec_t hubs;     /* hub_rec_t */
    vec_t cos;      /* weft__task_t */
    vec_t pool;     /* weft__task_t */
    vec_t procs;    /* weft__task_t */
    hub_rec_t *hub; /* the hub whose coroutines are being copied */
} passes_t;

static void copy_name(char *dst, size_t n, const char *src)
{
    size_t len = strnlen(src, n - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* The owner of a Lock ctx waits on (NULL: free, or process-shared: owner_ means nothing
 * here). An RLock's waiter waits on its inner Lock (the RLock's own address), whose owner_ is
 * the RLock's owner. */
static const weft__waitctx_t *lock_owner(const void *obj)
{
    const weft_lock_t *l = obj;
    if (l->shared_) return NULL;
    return atomic_load_explicit(&((weft_lock_t *)l)->owner_, memory_order_relaxed);
}

/* Copies what ctx is blocked on into t (state BLOCKED), or leaves t RUNNING. Relaxed loads:
 * a snapshot; the context's own thread writes on last at a park's start, and `on` is loaded
 * again after the rest so that a park that ended meanwhile is not reported with a mixed
 * description. */
static void read_wait(const weft__waitctx_t *c, weft__task_t *t)
{
    weft__waitctx_t *ctx = (weft__waitctx_t *)c;
    t->state = WEFT__TASK_RUNNING;
    t->on = WEFT__ON_NONE;
    unsigned on = atomic_load_explicit(&ctx->on, memory_order_relaxed);
    if (on == WEFT__ON_NONE) return;
    const void *obj = atomic_load_explicit(&ctx->obj, memory_order_relaxed);
    int64_t deadline = atomic_load_explicit(&ctx->deadline, memory_order_relaxed);
    int64_t since = atomic_load_explicit(&ctx->since, memory_order_relaxed);
    const weft__waitctx_t *owner = NULL;
    if ((on == WEFT__ON_LOCK || on == WEFT__ON_RLOCK) && obj) owner = lock_owner(obj);
    if (atomic_load_explicit(&ctx->on, memory_order_relaxed) != on ||
        atomic_load_explicit(&ctx->obj, memory_order_relaxed) != obj)
        return; /* it moved on meanwhile: running, as far as this snapshot knows */
    t->state = WEFT__TASK_BLOCKED;
    t->on = on;
    t->obj = obj;
    t->deadline = deadline;
    t->since = since;
    t->owner_ctx = owner;
}

static void init_task(weft__task_t *t, unsigned kind)
{
    t->kind = (uint8_t)kind;
    t->worker = SIZE_MAX;
    t->owner = WEFT__TASK_NONE;
    t->deadline = WEFT_NO_DEADLINE;
}

/* ---- the passes ----------------------------------------------------------------------------- */

static void on_thread(const weft_thread_t *t, void *arg)
{
    passes_t *ps = arg;
    thread_rec_t *r = push(&ps->threads);
    if (!r) return;
    r->rec = t;
    r->ident = t->ident;
    copy_name(r->name, sizeof r->name, t->name);
}

static void on_ctx(weft__waitctx_t *ctx, void *arg)
{
    passes_t *ps = arg;
    weft__task_t *t = push(&ps->ctxs);
    if (!t) return;
    init_task(t, WEFT__TASK_THREAD);
    t->ctx = ctx;
    t->tid = atomic_load_explicit(&ctx->tid, memory_order_relaxed);
    t->id = (uint64_t)t->tid;
    t->handle = atomic_load_explicit(&ctx->who, memory_order_relaxed);
    t->internal = ctx->internal; /* under the registry's lock */
    read_wait(ctx, t);
}

static const uint8_t co_states[] = {
    [WEFT_CO_READY] = WEFT__TASK_READY,
    [WEFT_CO_RUNNING] = WEFT__TASK_RUNNING,
    [WEFT_CO_BLOCKED] = WEFT__TASK_BLOCKED,
    [WEFT_CO_DONE] = WEFT__TASK_DONE,
};

static void on_co(weft_co_t *co, void *arg)
{
    passes_t *ps = arg;
    weft__task_t *t = push(&ps->cos);
    if (!t) return;
    init_task(t, WEFT__TASK_COROUTINE);
    t->id = co->id;
    copy_name(t->name, sizeof t->name, co->name);
    t->hub = ps->hub->hub;
    t->tid = ps->hub->tid;
    t->handle = co;
    t->ctx = &co->wctx;
    read_wait(&co->wctx, t);
    /* Relaxed: the hub's thread changes it; a snapshot. */
    uint32_t s = atomic_load_explicit(&co->state, memory_order_relaxed);
    if (s < sizeof co_states) t->state = co_states[s];
    if (t->state != WEFT__TASK_BLOCKED) {
        t->on = WEFT__ON_NONE;
        t->owner_ctx = NULL;
    } else if (t->on == WEFT__ON_NONE) {
        t->on = WEFT__ON_WAIT; /* parked, its description not (or no longer) seen */
    }
    ps->hub->count++;
}

static void on_hub(weft__hub_t *hub, void *arg)
{
    passes_t *ps = arg;
    hub_rec_t *h = push(&ps->hubs);
    if (!h) return;
    h->hub = hub;
    h->tid = weft__hub_tid(hub);
    h->first = ps->cos.n;
    ps->hub = h;
    weft__hub_visit_cos(hub, on_co, ps);
}

static void on_pool_task(const weft__pool_task_view_t *v, void *arg)
{
    passes_t *ps = arg;
    /* A future cancelled (or completed by hand) while queued is no task any more, though its
     * pool holds it until a worker reaches it. Relaxed: the pool's lock keeps it alive. */
    uint32_t s = atomic_load_explicit(&((weft_future_t *)v->f)->state, memory_order_relaxed);
    if (s != WEFT_FUTURE_PENDING && s != WEFT_FUTURE_RUNNING) return;
    weft__task_t *t = push(&ps->pool);
    if (!t) return;
    init_task(t, WEFT__TASK_POOL);
    t->id = (uint64_t)(uintptr_t)v->f;
    t->handle = v->f;
    t->pool = v->ex;
    t->worker = v->running ? v->worker : SIZE_MAX;
    t->pid = (int)v->pid;
    /* A thread pool's task runs once its runner is set; a process pool's has none here. */
    t->state = v->running && (v->runner || v->pid) ? WEFT__TASK_RUNNING : WEFT__TASK_READY;
    t->ctx = v->runner;
    /* The running task's thread: filled in the join below from the worker's thread. */
    t->owner_ctx = NULL;
    t->obj = v->thread; /* parked here until the join: the worker's weft thread */
}

static void on_process(const weft__process_view_t *v, void *arg)
{
    passes_t *ps = arg;
    weft__task_t *t = push(&ps->procs);
    if (!t) return;
    init_task(t, WEFT__TASK_PROCESS);
    t->id = (uint64_t)v->pid;
    t->handle = v->handle;
    copy_name(t->name, sizeof t->name, v->name);
    t->alive = !v->reaped;
    t->status = v->status;
    t->state = v->reaped ? WEFT__TASK_DONE : WEFT__TASK_RUNNING;
}

/* ---- joining the copies --------------------------------------------------------------------- */

/* A thread's kernel name, as the OS keeps it (15 bytes): /proc/self/task/<tid>/comm. */
static void os_thread_name(int tid, char *buf, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    buf[0] = '\0';
    int fd = weft__sys_open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t got = weft__sys_read(fd, buf, n - 1);
    weft__sys_close(fd);
    if (got <= 0) return;
    buf[got] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl) *nl = '\0';
}

static thread_rec_t *thread_of(passes_t *ps, const void *who, int tid)
{
    for (size_t i = 0; i < ps->threads.n; i++) {
        thread_rec_t *r = at(&ps->threads, i);
        if ((who && r->rec == who) || (!who && tid && r->ident == tid)) return r;
    }
    return NULL;
}

static hub_rec_t *hub_of(passes_t *ps, int tid)
{
    for (size_t i = 0; tid && i < ps->hubs.n; i++) {
        hub_rec_t *h = at(&ps->hubs, i);
        if (h->tid == tid) return h;
    }
    return NULL;
}

static bool add(weft__tasks_t *out, const weft__task_t *t)
{
    if (out->n == out->cap) {
        size_t ncap = out->cap ? out->cap * 2 : 32;
        weft__task_t *nv = weft__realloc(out->v, ncap * sizeof *nv);
        if (!nv) return false;
        out->v = nv;
        out->cap = ncap;
    }
    out->v[out->n++] = *t;
    return true;
}

/* Adds a hub's coroutines, each with its thread's name. */
static bool add_cos(weft__tasks_t *out, passes_t *ps, hub_rec_t *h, const char *thread)
{
    for (size_t k = 0; k < h->count; k++) {
        weft__task_t *c = at(&ps->cos, h->first + k);
        copy_name(c->thread, sizeof c->thread, thread);
        if (!add(out, c)) return false;
    }
    h->count = 0; /* added */
    return true;
}

/* The index of the task whose context is ctx, or whose handle is handle. */
static size_t find(const weft__tasks_t *ts, const weft__waitctx_t *ctx, const void *handle)
{
    for (size_t i = 0; i < ts->n; i++) {
        if (ctx && ts->v[i].ctx == ctx) return i;
        if (handle && ts->v[i].handle == handle &&
            (ts->v[i].kind == WEFT__TASK_THREAD || ts->v[i].kind == WEFT__TASK_COROUTINE))
            return i;
    }
    return WEFT__TASK_NONE;
}

static bool assemble(weft__tasks_t *out, passes_t *ps)
{
    /* Threads, each followed by its hub's coroutines. */
    for (size_t i = 0; i < ps->ctxs.n; i++) {
        weft__task_t t = *(weft__task_t *)at(&ps->ctxs, i);
        thread_rec_t *r = thread_of(ps, t.handle, t.tid);
        if (r) {
            r->matched = true;
            t.handle = r->rec;
            copy_name(t.name, sizeof t.name, r->name);
        } else {
            t.handle = NULL;
            os_thread_name(t.tid, t.name, sizeof t.name);
        }
        copy_name(t.thread, sizeof t.thread, t.name);
        hub_rec_t *h = hub_of(ps, t.tid);
        t.hub = h ? h->hub : NULL;
        if (!add(out, &t) || (h && !add_cos(out, ps, h, t.name))) return false;
    }
    /* Weft threads that never blocked nor listed themselves (the main thread, say). */
    for (size_t i = 0; i < ps->threads.n; i++) {
        thread_rec_t *r = at(&ps->threads, i);
        if (r->matched) continue;
        weft__task_t t;
        memset(&t, 0, sizeof t);
        init_task(&t, WEFT__TASK_THREAD);
        t.id = (uint64_t)r->ident;
        t.tid = (int)r->ident;
        t.handle = r->rec;
        t.state = WEFT__TASK_RUNNING;
        copy_name(t.name, sizeof t.name, r->name);
        copy_name(t.thread, sizeof t.thread, r->name);
        hub_rec_t *h = hub_of(ps, t.tid);
        t.hub = h ? h->hub : NULL;
        if (!add(out, &t) || (h && !add_cos(out, ps, h, t.name))) return false;
    }
    /* Hubs whose thread the snapshot did not see (it exited meanwhile). */
    for (size_t i = 0; i < ps->hubs.n; i++) {
        hub_rec_t *h = at(&ps->hubs, i);
        if (h->count && !add_cos(out, ps, h, "")) return false;
    }
    /* Pool tasks: the running ones on their worker's thread. */
    for (size_t i = 0; i < ps->pool.n; i++) {
        weft__task_t t = *(weft__task_t *)at(&ps->pool, i);
        const void *worker_thread = t.obj;
        t.obj = NULL;
        if (!weft__name_get(t.handle, t.name, sizeof t.name)) {
            char pool[WEFT__NAME_MAX];
            if (weft__name_get(t.pool, pool, sizeof pool))
                snprintf(t.name, sizeof t.name, "%s task", pool);
            else
                snprintf(t.name, sizeof t.name, "task");
        }
        size_t w = worker_thread ? find(out, NULL, worker_thread) : WEFT__TASK_NONE;
        if (w != WEFT__TASK_NONE) {
            t.tid = out->v[w].tid;
            copy_name(t.thread, sizeof t.thread, out->v[w].name);
            if (t.state == WEFT__TASK_RUNNING && out->v[w].state == WEFT__TASK_BLOCKED) {
                /* The task is what blocks there: it shares its worker thread's wait. */
                t.state = WEFT__TASK_BLOCKED;
                t.on = out->v[w].on;
                t.obj = out->v[w].obj;
                t.deadline = out->v[w].deadline;
                t.since = out->v[w].since;
                t.owner_ctx = out->v[w].owner_ctx;
            }
        }
        if (!add(out, &t)) return false;
    }
    for (size_t i = 0; i < ps->procs.n; i++)
        if (!add(out, at(&ps->procs, i))) return false;
    return true;
}

/* The task whose context is ctx: a running pool task rather than the worker thread it shares
 * the context with (the task is what holds a Lock taken in it, and what runs a Future). */
static size_t find_owner(const weft__tasks_t *ts, const weft__waitctx_t *ctx)
{
    for (size_t i = 0; i < ts->n; i++)
        if (ts->v[i].kind == WEFT__TASK_POOL && ts->v[i].ctx == ctx) return i;
    return find(ts, ctx, NULL);
}

/* Who holds what each task waits on, and the objects' names; which worker threads stand
 * behind their running pool task. */
static void link_owners(weft__tasks_t *out)
{
    for (size_t i = 0; i < out->n; i++) {
        const weft__task_t *t = &out->v[i];
        if (t->kind != WEFT__TASK_POOL || !t->ctx) continue;
        for (size_t k = 0; k < out->n; k++)
            if (out->v[k].kind == WEFT__TASK_THREAD && out->v[k].ctx == t->ctx)
                out->v[k].behind = true;
    }
    for (size_t i = 0; i < out->n; i++) {
        weft__task_t *t = &out->v[i];
        if (t->state != WEFT__TASK_BLOCKED) continue;
        switch (t->on) {
        case WEFT__ON_THREAD_JOIN:
        case WEFT__ON_CO_JOIN: {
            size_t k = find(out, NULL, t->obj);
            if (k != WEFT__TASK_NONE) t->owner_ctx = out->v[k].ctx;
            break;
        }
        case WEFT__ON_FUTURE:
        case WEFT__ON_FUTURES:
            for (size_t k = 0; k < out->n; k++) {
                if (out->v[k].kind != WEFT__TASK_POOL || out->v[k].handle != t->obj) continue;
                t->owner_ctx = out->v[k].ctx; /* its runner; NULL while queued */
                /* Named as its pool task's line names it ("jobs task" for an unnamed future
                 * of a pool named "jobs"); with neither named, the address tells it apart. */
                if (strcmp(out->v[k].name, "task") != 0)
                    copy_name(t->obj_name, sizeof t->obj_name, out->v[k].name);
            }
            break;
        default:
            break;
        }
        if (t->owner_ctx) t->owner = find_owner(out, t->owner_ctx);
        /* The fd and process kinds carry a number, not an object. */
        if (t->obj && !t->obj_name[0] && t->on != WEFT__ON_FD_READ && t->on != WEFT__ON_FD_WRITE &&
            t->on != WEFT__ON_PROCESS_JOIN && t->on != WEFT__ON_SLEEP)
            weft__name_get(t->obj, t->obj_name, sizeof t->obj_name);
    }
}

int weft__tasks_snapshot(weft__tasks_t *out)
{
    if (!out) return WEFT_EINVAL;
    *out = (weft__tasks_t){0};
    (void)weft__ctx_list_self(); /* the caller is in it (unlisted: no memory for the key) */
    passes_t ps = {
        .threads = {.size = sizeof(thread_rec_t)},
        .ctxs = {.size = sizeof(weft__task_t)},
        .hubs = {.size = sizeof(hub_rec_t)},
        .cos = {.size = sizeof(weft__task_t)},
        .pool = {.size = sizeof(weft__task_t)},
        .procs = {.size = sizeof(weft__task_t)},
    };
    out->taken = weft_time_monotonic_ns();
    weft__threads_visit(on_thread, &ps);
    weft__ctx_visit(on_ctx, &ps);
    weft__hubs_visit(on_hub, &ps);
    weft__thread_pools_visit(on_pool_task, &ps);
    weft__process_pools_visit(on_pool_task, &ps);
    weft__processes_visit(on_process, &ps);
    bool ok = !ps.threads.failed && !ps.ctxs.failed && !ps.hubs.failed && !ps.cos.failed &&
              !ps.pool.failed && !ps.procs.failed && assemble(out, &ps);
    if (ok) link_owners(out);
    vec_free(&ps.threads);
    vec_free(&ps.ctxs);
    vec_free(&ps.hubs);
    vec_free(&ps.cos);
    vec_free(&ps.pool);
    vec_free(&ps.procs);
    if (!ok) {
        weft__tasks_free(out);
        return WEFT_ENOMEM;
    }
    return 0;
}

void weft__tasks_free(weft__tasks_t *t)
{
    if (!t) return;
    weft__free(t->v);
    *t = (weft__tasks_t){0};
}

const char *weft__task_kind_name(unsigned kind)
{
    static const char *const names[] = {"thread", "coroutine", "pool task", "process"};
    return kind < sizeof names / sizeof *names ? names[kind] : "?";
}

const char *weft__task_state_name(unsigned state)
{
    static const char *const names[] = {"ready", "running", "blocked", "done"};
    return state < sizeof names / sizeof *names ? names[state] : "?";
}
