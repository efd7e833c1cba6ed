/*
 * executor_internal.h — the seam every executor backend plugs into, and the parts of a
 * future that backends and the multi-future waits (wait_many.c) see.
 *
 *   future.c      the future: states, result, cancel, callbacks, listeners, running a task
 *   wait_many.c   weft_future_wait and as_completed, built on listeners
 *   executor.c    the generic executor calls (submit, map, shutdown, destroy)
 *   thread_pool.c the thread-pool backend
 *
 * The future (struct weft_future). Its wait queue's lock is the future's lock: it guards
 * everything below except `refs` (atomic), `state` (written under the lock, read lock-free
 * with acquire by the state tests: whatever was stored before a release store of a final
 * state — value, error, message — is visible to whoever sees that state), and the task part
 * (`fn`, `arg`, `node`), which belongs to the executor that queued the future.
 * A future goes PENDING -> RUNNING -> FINISHED or PENDING -> CANCELLED; once final it never
 * changes again, and at that moment its waiters are taken and woken, its listeners are called
 * (under the lock) and unlinked, and its callbacks are taken and run (without the lock).
 */
#ifndef WEFT_EXECUTOR_INTERNAL_H
#define WEFT_EXECUTOR_INTERNAL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../wait/wait_internal.h"
#include "weft/executor.h"
#include "weft/future.h"
#include "weft/process.h"
#include "weft/thread.h"

/* ---- listeners: internal observers of completion ------------------------------------------
 * A listener is linked into a future's list and `notify` is called, under the future's lock,
 * when the future becomes final (or at once by weft__future_listen if it already is). It must
 * be short and must not take the future's lock. */
typedef struct weft__listener weft__listener_t;
struct weft__listener {
    weft__listener_t *next, *prev;
    bool linked; /* on the future's list (guarded by the future's lock) */
    void (*notify)(weft__listener_t *l, weft_future_t *f);
};

/* A link of the thread pool's task queue (thread_pool.c): `next` is written by a submitter
 * while a worker may read it, hence atomic. */
typedef struct weft__task_link weft__task_link_t;
struct weft__task_link {
    weft__task_link_t *_Atomic next;
    _Atomic size_t depth; /* on a bin's `returned` stack: how many it holds from here down */
};

/* ---- recycled futures ------------------------------------------------------------------------
 * An executor may make its futures from a bin of its own (the thread pool does, but in debug
 * builds, whose handle quarantine needs every future freed): a future whose last reference goes
 * is pushed on its bin's `returned` stack (through `link`) instead of being freed, and the
 * executor's next submits reuse it: no malloc, no free, no fresh pages per task. `refs` is
 * WEFT__BIN_BIAS while the owner lives, plus one per future made from the bin, minus one per
 * future returned; the owner's end takes back the bias less the count it made. Whoever brings
 * it to 0 calls `release`, which frees what was returned and the owner's memory. Nothing frees
 * a future of `returned` before that (a pusher reads the depth of the one on top). */
typedef struct weft__future_bin weft__future_bin_t;
#define WEFT__BIN_BIAS ((uint64_t)1 << 62)
struct weft__future_bin {
    _Atomic uint64_t refs;
    weft__task_link_t *_Atomic returned; /* pushed one by one (CAS), taken whole (exchange) */
    size_t max;                          /* a future returned to a stack this deep is freed */
    void (*release)(weft__future_bin_t *bin);
};

typedef struct weft__callback weft__callback_t;
struct weft__callback {
    weft__callback_t *next;
    int (*fn)(weft_future_t *f, void *arg);
    void *arg;
};

struct weft_future {
    weft__handle_t hd; /* debug mode: magic, the program's references (core_internal.h) */
    _Atomic uint32_t refs;
    _Atomic uint32_t state; /* weft_future_state_t */
    weft_waitq_t waiters;   /* result() callers; its lock is the future's lock */
    int error;              /* nonzero: the task failed with it */
    bool cancel_requested;  /* cancel() reached it RUNNING and told its runner */
    void *value;
    char *message;
    weft__waitctx_t *runner; /* who runs the task while RUNNING (cancel target), or NULL */
    char *task_message; /* weft_future_fail_current's, kept by the runner alone until it settles */
    weft__callback_t first; /* the first callback, kept inline (fn NULL: none) */
    weft__callback_t *more, **more_tail;
    weft__listener_t *listeners;
    /* Bytes results (weft__future_set_bytes): `dispose` frees one, set by the backend before
     * the future is shared; `offer` is the result its runner is completing it with; `owned`
     * (written with the final state) says the value is that weft__bytes_t, which the future
     * frees at its last release; false: the value is the caller's (a hand completion won). */
    void (*dispose)(void *value);
    _Atomic(void *) offer;
    bool owned;
    _Atomic(void *) data; /* weft_future_set_data's; never looked at */
    /* The task, owned by the executor that queued the future. */
    weft_task_fn fn;
    void *arg;
    weft__list_node_t node;  /* its place in the executor's queue (or another list of its own) */
    weft__task_link_t link;  /* its place in a thread pool's task queue (thread_pool.c) */
    weft__future_bin_t *bin; /* where its memory returns at the last release; NULL: freed */
    uint64_t trace_id;       /* tracing: its id from submit to result (weft__trace_id), 0: none */
};

/* A result made of bytes (the process pool's and the MPI pool's, which store the same
 * representation): len bytes at data, which points into the same allocation (raw, after
 * whatever header the backend received with them). */
typedef struct weft__bytes {
    size_t len;
    unsigned char *data;
    unsigned char raw[];
} weft__bytes_t;

/* The future a list node of an executor's belongs to (NULL for none). */
static inline weft_future_t *weft__future_of(const weft__list_node_t *n)
{
    return n ? weft__container_of(n, weft_future_t, node) : NULL;
}

/* Tracing (the caller saw weft__observe(WEFT__OBSERVE_TRACE)): f, about to be queued by a pool
 * of kind `pool` ("thread pool", "process pool"), gets a trace id and its submit is recorded;
 * its run and its result are recorded by weft__future_run and as it settles. */
void weft__future_trace_submit(weft_future_t *f, const char *pool);

/* A PENDING future for fn(arg) with `refs` references, or NULL when out of memory. */
weft_future_t *weft__future_create(weft_task_fn fn, void *arg, uint32_t refs);
/* Sets every field of f (memory of weft__handle_alloc's size, fresh or returned to bin) as
 * weft__future_create does; bin: where it returns at its last release (NULL: freed then). */
void weft__future_init(weft_future_t *f, weft_task_fn fn, void *arg, uint32_t refs,
                       weft__future_bin_t *bin);
/* Frees the futures of a list taken from a bin's `returned` (linked through `link`). */
void weft__future_free_returned(weft__task_link_t *l);
/* Drops a reference that is not the program's (a queue's, a runner's); frees f with the last
 * one. weft_future_release is the program's. */
void weft__future_unref(weft_future_t *f);

/* Runs f's task in the caller (a worker): PENDING -> RUNNING (false, and nothing runs, if it
 * was cancelled), the task with weft_future_fail_current and cancellation wired to this context,
 * then FINISHED with its outcome. The caller holds a reference. */
bool weft__future_run(weft_future_t *f);

/* Completes f with code (0: value is the result) and message (taken over, may be NULL).
 * WEFT_EALREADY (and message freed) if f was already final. */
int weft__future_finish(weft_future_t *f, int code, void *value, char *message);

/* Completes f (whose dispose the backend set) with result, which f owns from then on
 * (weft_future_result_bytes reads it). 0, or WEFT_EALREADY if f was completed by hand
 * meanwhile: that outcome stands and result stays the caller's. Public calls only: the MPI
 * pool, a library of its own, uses it too. */
static inline int weft__future_set_bytes(weft_future_t *f, weft__bytes_t *result)
{
    /* Read by weft__future_finish under f's lock, in this thread's set_result or in a hand
     * completion racing with it (which never completes with this fresh pointer). */
    atomic_store_explicit(&f->offer, result, memory_order_relaxed);
    return weft_future_set_result(f, result);
}

/* Waits until f is final: 0, WEFT_ETIMEDOUT or WEFT_ECANCELED. */
int weft__future_wait(weft_future_t *f, int64_t deadline);

/* Links l into f's listeners, or, if f is final already, calls l->notify at once (l is then
 * not linked). */
void weft__future_listen(weft_future_t *f, weft__listener_t *l);
/* Unlinks l if it is still linked; once this returns, l->notify is not running and will not
 * be called. */
void weft__future_unlisten(weft_future_t *f, weft__listener_t *l);

static inline bool weft__future_state_final(uint32_t s)
{
    return s == WEFT_FUTURE_FINISHED || s == WEFT_FUTURE_CANCELLED;
}

/* ---- the executor interface --------------------------------------------------------------
 * submit:   takes over one reference to f (PENDING, fn and arg set) and schedules it; on
 *           error the reference is still the caller's and f was not scheduled.
 * shutdown: as weft_executor_shutdown, with an absolute deadline.
 * destroy:  shut down without waiting, drop the handle; the backend frees itself when its
 *           last worker is done. */
typedef struct weft__executor_ops {
    int (*submit)(weft_executor_t *ex, weft_future_t *f);
    int (*shutdown)(weft_executor_t *ex, bool wait, bool cancel_futures, int64_t deadline);
    void (*destroy)(weft_executor_t *ex);
} weft__executor_ops_t;

struct weft_executor {
    const weft__executor_ops_t *ops;
    weft__handle_t hd; /* debug mode: magic, the program's reference (core_internal.h) */
    /* Optional (NULL: weft__future_create): makes the PENDING future weft_executor_submit
     * hands to ops->submit, as weft__future_create does, or NULL when out of memory. */
    weft_future_t *(*make)(weft_executor_t *ex, weft_task_fn fn, void *arg, uint32_t refs);
};

/* ---- the task snapshot's view of the pools ---------------------------------------------------
 * weft__thread_pools_visit calls fn on every future a thread pool holds: those taken by a
 * worker (running, worker: its index, thread: its weft thread; runner: the context running
 * it, NULL while not started yet) and those queued (running false, worker SIZE_MAX, thread
 * and runner NULL), under the global pool list's lock, the pool's lock and its queue's locks
 * (fn must not block nor touch a pool). weft__process_pools_visit does the same for the
 * process pools of this process: those handed to a worker process (pid: its pid; running for
 * the one it runs, false for those waiting in its pipe) and those queued (pid 0), under the
 * process pools' list lock and the pool's locks. For src/observe. */
typedef struct weft__pool_task_view {
    const weft_executor_t *ex;
    const weft_future_t *f;
    bool running;
    size_t worker;
    const weft_thread_t *thread;
    const weft__waitctx_t *runner;
    long pid; /* a process pool's worker process; 0: none */
} weft__pool_task_view_t;
void weft__thread_pools_visit(void (*fn)(const weft__pool_task_view_t *v, void *arg), void *arg);
void weft__process_pools_visit(void (*fn)(const weft__pool_task_view_t *v, void *arg), void *arg);

/* ---- map over bytes ------------------------------------------------------------------------
 * The map of the pools whose tasks take and give bytes (weft_process_pool_map,
 * weft_mpi_pool_map). Inline and on public calls only: the MPI pool is a library of its own,
 * which sees nothing of libweft's internals. */

/* Submits one task of a map: the pool's own submit of `task` (a pointer to the process
 * pool's function, the MPI pool's task name) with the bytes of arg. */
typedef int weft__bytes_submit_fn(weft_executor_t *ex, const void *task, weft_bytes_t arg,
                                  weft_future_t **out);

/* weft_process_pool_map's semantics (weft/executor.h) for any such pool: submits task for
 * each of args[0..n-1], then collects the results in order within one deadline, copying each
 * into malloc'd memory; on the first failure in argument order, cancels and drops the rest.
 * task NULL is WEFT_EINVAL (the caller's own NULL checks), kind is what submitting to ex would
 * fail with for its kind (0, or WEFT_ENOTSUP), checked after the NULL checks. */
static inline int weft__map_bytes(weft_executor_t *ex, weft__bytes_submit_fn *submit,
                                  const void *task, int kind, const weft_bytes_t *args, size_t n,
                                  weft_bytes_t *results, double timeout, size_t *ndone)
{
    weft_deadline_t deadline;
    if (ndone) *ndone = 0;
    if (!ex || !task || !results || (!args && n > 0) || weft_deadline_after(timeout, &deadline))
        return WEFT_EINVAL;
    for (size_t i = 0; i < n; i++) results[i] = (weft_bytes_t){NULL, 0};
    if (kind) return kind;
    if (n == 0) return 0;
    if (n > PTRDIFF_MAX / sizeof(weft_future_t *)) return WEFT_ENOMEM;
    weft_future_t **fs = malloc(n * sizeof *fs);
    if (!fs) return WEFT_ENOMEM;
    int rc = 0;
    size_t submitted = 0;
    while (submitted < n && (rc = submit(ex, task, args[submitted], &fs[submitted])) == 0)
        submitted++;
    size_t i = 0;
    for (; rc == 0 && i < n; i++) {
        const void *data;
        size_t len;
        rc = weft_future_result_bytes(fs[i], weft_deadline_remaining(deadline), &data, &len);
        if (rc) break;
        void *copy = len ? malloc(len) : NULL;
        if (len && !copy) {
            rc = WEFT_ENOMEM;
            break;
        }
        if (len) memcpy(copy, data, len);
        results[i] = (weft_bytes_t){copy, len};
        weft_future_release(fs[i]);
    }
    /* From the one that failed or timed out (or all, when a submit failed): they may not have
     * run; running ones finish on their own. Last first, so that no call is started by a
     * worker the cancel of an earlier one freed. */
    for (size_t k = submitted; k-- > i;) {
        weft_future_cancel(fs[k]);
        weft_future_release(fs[k]);
    }
    if (ndone) *ndone = i;
    free(fs);
    return rc;
}

/* ---- worker names -------------------------------------------------------------------------
 * Pool workers are named "<prefix>_<n>" in at most 15 characters, what the OS keeps of a
 * thread's or process's name (comm: top, ps, gdb): the prefix is cut so that the number always
 * fits. name has room for WEFT__WORKER_NAME_MAX bytes (the NUL included). */
enum { WEFT__WORKER_NAME_MAX = 16 };
void weft__worker_name(char *name, const char *prefix, size_t n);

/* ---- the process pool's test hook ----------------------------------------------------------
 * A test seam: called, when set, by a process pool worker at each stage of a task, so that
 * tests can crash a worker exactly there (CPython's test_deadlock.py does it with pickling
 * hooks): stage GOT_TASK after the task's bytes arrived (arg, len: the argument), SENDING
 * before the reply is sent (len: its size; fd: the worker's end of its pipe, to send part of
 * a frame by hand). Set it before creating the pool (the workers inherit it with their memory);
 * none (NULL) in normal use. Only tests call the setter. */
enum { WEFT__PPOOL_GOT_TASK = 1, WEFT__PPOOL_SENDING = 2 };
typedef void weft__ppool_hook_fn(int stage, const void *arg, size_t len, int fd);
void weft__ppool_set_test_hook(weft__ppool_hook_fn *hook);

/* A process pool worker's loop on its end of the pool's pipe: receive a task message (the
 * function pointer, then the argument bytes), run it, send the reply (a 4-byte code, 4 bytes
 * of padding, the result bytes); until an empty message or EOF (0), max_tasks tasks (0: no
 * limit; 0 when reached), or an error (1). Internal: tests drive it over a pipe of their own. */
int weft__ppool_serve(weft_conn_t *c, size_t max_tasks);

#endif /* WEFT_EXECUTOR_INTERNAL_H */
