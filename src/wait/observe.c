/*
 * observe.c — what the waiting core records for the task dump, the deadlock report and the
 * trace: what each context is blocked on (weft__blocked_begin/end), the words for it, and the
 * registry of thread contexts.
 *
 * Registry: a thread's own context (weft__thread_ctx, thread-local) joins a doubly linked list
 * at its first block or when its thread lists itself (weft__ctx_list_self); a pthread key's
 * destructor takes it off at the thread's exit, before its thread-local storage goes. The
 * list's lock is held across fork; in the child only the forking thread exists, so the list
 * keeps only its context. Coroutine contexts are not listed here: each hub knows its own.
 *
 * Cost on a park: four relaxed stores (on, obj, deadline, and since when observing); a thread
 * not yet listed lists itself once.
 */
#include "wait_internal.h"

#include <pthread.h>
#include <unistd.h>
#include <sys/syscall.h>

/* Kept as an array in the binary (used): tools/weft-gdb.py reads it (clang otherwise turned
 * it into a table of its own, and gdb saw it as optimized out). */
__attribute__((used)) static const char *const on_names[WEFT__ON_COUNT] = {
    [WEFT__ON_NONE] = "running",
    [WEFT__ON_WAIT] = "wait",
    [WEFT__ON_LOCK] = "Lock",
    [WEFT__ON_RLOCK] = "RLock",
    [WEFT__ON_SEMAPHORE] = "Semaphore",
    [WEFT__ON_EVENT] = "Event",
    [WEFT__ON_CONDITION] = "Condition",
    [WEFT__ON_BARRIER] = "Barrier",
    [WEFT__ON_TIMER] = "Timer",
    [WEFT__ON_QUEUE_GET] = "Queue get",
    [WEFT__ON_QUEUE_PUT] = "Queue put",
    [WEFT__ON_QUEUE_JOIN] = "Queue join",
    [WEFT__ON_FUTURE] = "Future",
    [WEFT__ON_FUTURES] = "Futures",
    [WEFT__ON_EXECUTOR] = "Executor shutdown",
    [WEFT__ON_THREAD_JOIN] = "thread join",
    [WEFT__ON_CO_JOIN] = "coroutine join",
    [WEFT__ON_GROUP] = "Group",
    [WEFT__ON_SCOPE] = "Scope join",
    [WEFT__ON_HUBS] = "hubs",
    [WEFT__ON_FD_READ] = "fd read",
    [WEFT__ON_FD_WRITE] = "fd write",
    [WEFT__ON_PROCESS_JOIN] = "process join",
    [WEFT__ON_PIPE_SEND] = "Pipe send",
    [WEFT__ON_PIPE_RECV] = "Pipe recv",
    [WEFT__ON_MPQUEUE_GET] = "process Queue get",
    [WEFT__ON_MPQUEUE_PUT] = "process Queue put",
    [WEFT__ON_SHARED] = "shared object",
    [WEFT__ON_SLEEP] = "sleep",
    [WEFT__ON_RESOLVE] = "name lookup",
};

const char *weft__on_name(unsigned on)
{
    return on < WEFT__ON_COUNT && on_names[on] ? on_names[on] : "?";
}

static weft__mutex_t reg_lock = WEFT__MUTEX_INIT;
static weft__waitctx_t *reg_head;
static pthread_key_t reg_key;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static bool reg_key_made;

static void unlist(void *arg)
{
    weft__waitctx_t *ctx = arg;
    weft__mutex_lock(&reg_lock);
    if (ctx->listed) {
        if (ctx->reg_prev)
            ctx->reg_prev->reg_next = ctx->reg_next;
        else
            reg_head = ctx->reg_next;
        if (ctx->reg_next) ctx->reg_next->reg_prev = ctx->reg_prev;
        ctx->reg_prev = ctx->reg_next = NULL;
        ctx->listed = false;
    }
    weft__mutex_unlock(&reg_lock);
}

static void make_key(void)
{
    reg_key_made = pthread_key_create(&reg_key, unlist) == 0;
}

int weft__ctx_list_self(void)
{
    weft__waitctx_t *ctx = &weft__thread_ctx;
    if (ctx->listed) return 0;
    pthread_once(&reg_once, make_key);
    /* The key's value is what its destructor unlists at the thread's exit. */
    if (!reg_key_made || pthread_setspecific(reg_key, ctx) != 0) return WEFT_ENOMEM;
    atomic_store_explicit(&ctx->tid, (int)syscall(SYS_gettid), memory_order_relaxed);
    weft__mutex_lock(&reg_lock);
    ctx->reg_prev = NULL;
    ctx->reg_next = reg_head;
    if (reg_head) reg_head->reg_prev = ctx;
    reg_head = ctx;
    ctx->listed = true;
    weft__mutex_unlock(&reg_lock);
    return 0;
}

int weft__ctx_list_internal(void)
{
    int rc = weft__ctx_list_self();
    weft__mutex_lock(&reg_lock);
    weft__thread_ctx.internal = weft__thread_ctx.listed;
    weft__mutex_unlock(&reg_lock);
    return rc;
}

void weft__ctx_visit(void (*fn)(weft__waitctx_t *ctx, void *arg), void *arg)
{
    weft__mutex_lock(&reg_lock);
    for (weft__waitctx_t *c = reg_head; c; c = c->reg_next) fn(c, arg);
    weft__mutex_unlock(&reg_lock);
}

void weft__blocked_begin(weft__waitctx_t *ctx, unsigned on, const void *obj, int64_t deadline)
{
    if (weft__unlikely(ctx->kind == WEFT__CTX_THREAD && !ctx->listed))
        (void)weft__ctx_list_self(); /* unlisted (no memory for the key): only unseen */
    atomic_store_explicit(&ctx->obj, obj, memory_order_relaxed);
    atomic_store_explicit(&ctx->deadline, deadline, memory_order_relaxed);
    atomic_store_explicit(&ctx->since,
                          weft__observe(WEFT__OBSERVE_SINCE) ? weft_time_monotonic_ns() : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&ctx->on, on, memory_order_relaxed);
}

/* A fork while a thread lists itself would leave the lock held in the child; there only the
 * forking thread lives on, so the list keeps only its context. */
static void prepare(void)
{
    weft__mutex_lock(&reg_lock);
}

static void parent(void)
{
    weft__mutex_unlock(&reg_lock);
}

static void child(void)
{
    weft__waitctx_t *self = &weft__thread_ctx;
    for (weft__waitctx_t *c = reg_head, *next; c; c = next) {
        next = c->reg_next;
        if (c == self) continue;
        c->listed = false; /* memory of a thread that does not exist here */
        c->reg_prev = c->reg_next = NULL;
    }
    reg_head = self->listed ? self : NULL;
    if (self->listed) {
        self->reg_prev = self->reg_next = NULL;
        atomic_store_explicit(&self->tid, (int)syscall(SYS_gettid), memory_order_relaxed);
    }
    weft__mutex_unlock(&reg_lock);
}

static const weft__fork_hooks_t fork_hooks = {
    .rank = WEFT__LAYER_WAIT, .prepare = prepare, .parent = parent, .child = child};

__attribute__((constructor)) static void register_fork_hooks(void)
{
    weft__fork_register(&fork_hooks);
}
