/*
 * observe_internal.h — the task registry's view: a snapshot of every task of the process now
 * (threads, coroutines, pool tasks, child processes), what each is blocked on and who holds
 * that. Built by tasks.c from the lists each layer keeps (the registry of thread contexts, the
 * weft threads, every hub's live coroutines, the thread pools' queues and workers, the child
 * processes), each read under its own lock and copied; then, with no lock held, the copies
 * are joined: a thread's context with its weft thread (ctx->who, or the kernel tid), a
 * coroutine with its hub's thread, a wait with the task that holds its object.
 *
 * Users: the dump (dump.c), the deadlock report (deadlock.c), the gdb script's tests. Nothing
 * below src/observe includes this header.
 */
#ifndef WEFT_OBSERVE_INTERNAL_H
#define WEFT_OBSERVE_INTERNAL_H

#include "../core/core_internal.h"
#include "../wait/wait_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum weft__task_kind {
    WEFT__TASK_THREAD = 0,    /* an OS thread: a weft thread, the main thread, a foreign one */
    WEFT__TASK_COROUTINE = 1, /* a spawned coroutine of a hub */
    WEFT__TASK_POOL = 2,      /* a thread pool's future, queued or running */
    WEFT__TASK_PROCESS = 3,   /* a child process started here and not yet closed */
} weft__task_kind_t;

/* The seed's states (weft_co_state_t's words). A queued pool task is READY; a child process
 * that ended and was reaped is DONE. */
typedef enum weft__task_state {
    WEFT__TASK_READY = 0,
    WEFT__TASK_RUNNING = 1,
    WEFT__TASK_BLOCKED = 2,
    WEFT__TASK_DONE = 3,
} weft__task_state_t;

#define WEFT__TASK_NONE SIZE_MAX /* no such task (an index into weft__tasks_t.v) */

typedef struct weft__task {
    uint64_t id;   /* stable while the task lives: a thread's tid, a coroutine's N
                    * ("Coroutine-N"), a process's pid, a pool task's future address */
    uint8_t kind;  /* weft__task_kind_t */
    uint8_t state; /* weft__task_state_t */
    char name[64]; /* thread, coroutine, process name; a pool task: "<pool name> task" */
    /* Where it runs: its thread's kernel id and name (0, "": none, e.g. a queued pool task or
     * a child process), its hub (coroutines, and a thread that runs one), the pool worker. */
    int tid;
    char thread[64];
    const void *hub;
    size_t worker;              /* a running pool task's worker index; SIZE_MAX: none */
    int pid;                    /* a process pool's task handed to a worker: its pid; 0: none */
    bool internal;              /* a thread of weft's own (weft__ctx_list_internal) */
    bool behind;                /* a worker thread whose running pool task shares its context
                                 * (one wait, told once: by the task) */
    const void *handle;         /* weft_thread_t, weft_co_t, weft_future_t, weft_process_t (identity
                                 * only: never followed, it may be gone once the snapshot returns) */
    const void *pool;           /* a pool task's executor (identity only) */
    const weft__waitctx_t *ctx; /* its waiting context (identity only), NULL: none */
    /* What it is blocked on (state BLOCKED): weft__on_t, the object (an fd or pid for those
     * kinds), the object's name ("" none), the park's deadline (WEFT_NO_DEADLINE: none), and
     * when it began (0: not stamped — weft_debug_observe / WEFT__OBSERVE_SINCE off). */
    unsigned on;
    const void *obj;
    char obj_name[WEFT__NAME_MAX];
    int64_t deadline;
    int64_t since;
    /* Who holds what it waits on: a Lock's or RLock's owner, a joined thread's or
     * coroutine's own context, a running future's runner. owner_ctx: that context (identity
     * only) or NULL; owner: its index in the snapshot, or WEFT__TASK_NONE (none, or not found:
     * a context the snapshot does not list). Event, Queue, Semaphore... have no owner. */
    const weft__waitctx_t *owner_ctx;
    size_t owner;
    /* A child process: alive (not reaped), its exit status once reaped (code, or -signal; 0
     * when not known). */
    bool alive;
    int status;
} weft__task_t;

typedef struct weft__tasks {
    weft__task_t *v; /* the tasks, grouped: each thread, then the coroutines of its hub; then
                      * pool tasks; then child processes */
    size_t n, cap;
    int64_t taken; /* weft_time_monotonic_ns() when the snapshot was taken */
} weft__tasks_t;

/* Fills *out with every task of the process now. From any thread or coroutine, while the
 * others run (each list is read under its own lock; the objects waits name are read only
 * for a Lock's or RLock's owner, while the waiting context still says it waits on them).
 * The calling thread lists itself first, so it is always in the snapshot. Not from a signal
 * handler (it locks and allocates). 0, WEFT_EINVAL (out NULL), WEFT_ENOMEM (*out empty).
 * A task that starts or ends meanwhile may or may not be in it. */
int weft__tasks_snapshot(weft__tasks_t *out);

/* Frees what a snapshot allocated (*t empty after; NULL or an empty one: nothing). */
void weft__tasks_free(weft__tasks_t *t);

/* The words for a kind and a state: "thread", "coroutine", "pool task", "process";
 * "ready", "running", "blocked", "done". */
const char *weft__task_kind_name(unsigned kind);
const char *weft__task_state_name(unsigned state);

/* dump.c, the dump on a signal (WEFT_DUMP_SIGNAL, read at load, starts it on stderr):
 *   weft__dump_signal_start: from now on, signal sig prints the dump to fd (a byte through a
 *     pipe to the "weft-dump" thread); turns observing on. 0, WEFT_EINVAL (a signal that
 *     cannot be caught, fd < 0), WEFT_EBUSY (started already), or the pipe's or thread's error.
 *   weft__dump_signal_stop: puts the signal's old action back and ends the thread (tests).
 *   weft__dump_signal_parse: "QUIT", "SIGUSR1", "10"... -> the number; 0: not a signal. */
int weft__dump_signal_start(int sig, int fd);
void weft__dump_signal_stop(void);
int weft__dump_signal_parse(const char *v);

#endif /* WEFT_OBSERVE_INTERNAL_H */
