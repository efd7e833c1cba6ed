/*
 * weft/executor.h — concurrent.futures' Executor for C: one interface (submit, map,
 * shutdown, release) over two backends, each returning weft_future_t: the thread pool
 * (ThreadPoolExecutor) and the process pool (ProcessPoolExecutor, below; its tasks are
 * submitted and mapped as bytes with weft_process_pool_submit and weft_process_pool_map,
 * shutdown and release are the generic ones).
 *
 * Life: a backend's create function returns an executor; weft_executor_shutdown stops it
 * taking work (and optionally waits for the work it has); weft_executor_release shuts it down
 * if needed and frees it, without waiting: tasks still queued or running finish on their own
 * and the backend's resources go with the last of them.
 *
 * Thread safety: submit, map and shutdown may be called concurrently from any thread or
 * coroutine, including from inside the executor's own tasks; release must be the last call.
 * Not async-signal-safe.
 *
 * Fork (Python's rule for a pool inherited through multiprocessing's "fork": not usable): an
 * executor created before a fork has no workers in the child, and says so instead of hanging.
 * There, submit and map fail with WEFT_EBROKEN; the first submit, map, shutdown or release
 * fails the futures it held at the fork: queued ones with WEFT_EBROKEN, running ones with
 * WEFT_EWORKERDIED (a future's result waits until then; futures already final stay as they
 * are; a PROCESS pool's futures held at the fork are the exception: they are not failed in
 * the child, so wait for them there only with a timeout). shutdown and release work as usual
 * (release is how the child frees its copy). A fork may happen at any instant, also while
 * other threads submit, wait for results or settle futures of the pool (its fork handlers
 * hold the pool's locks and its futures' locks across the fork). Executors created in the
 * child work normally.
 */
#ifndef WEFT_EXECUTOR_H
#define WEFT_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "weft/core.h"
#include "weft/future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An executor: a thread pool or a process pool behind one interface (above). */
typedef struct weft_executor weft_executor_t;

/* Schedules fn(arg) and, if out is not NULL, stores a future for it in *out. A thread pool's
 * futures end with the task's own code, or: WEFT_ECANCELED (cancelled, e.g. by shutdown with
 * cancel_futures), WEFT_EBROKEN (an initializer failed, or the process forked, before the task
 * ran), WEFT_EWORKERDIED (the process forked while it ran), or, for tasks queued when no worker
 * runs and none could be started, that start's error: WEFT_EAGAIN (the OS refused a thread),
 * WEFT_ENOMEM.
 * ex: the executor (a thread pool; a process or MPI pool gives WEFT_ENOTSUP).
 * fn: the task, run once in a worker as fn(arg, &result).
 * arg: passed to fn as is; weft never looks at it nor frees it: keep it valid until the task
 *     has run.
 * out: receives the future (one reference: release it); NULL on failure. May be NULL.
 * Returns 0, WEFT_EINVAL (ex or fn NULL), WEFT_ENOTSUP (ex is a process or MPI pool),
 * WEFT_ESHUTDOWN (the executor was shut down: Python's RuntimeError), WEFT_EBROKEN (a worker
 * initializer failed: BrokenThreadPool), WEFT_ENOMEM, WEFT_EAGAIN (no worker could be started and
 * none runs); on failure *out is NULL and fn will not run. */
WEFT_EXTERN WEFT_NODISCARD int weft_executor_submit(weft_executor_t *ex, weft_task_fn fn, void *arg,
                                                    weft_future_t **out);

/* Executor.map, collected: runs fn(args[i]) for i in 0..n-1 concurrently and stores the
 * results in order in results[0..n-1], all within one overall timeout. (A process pool maps
 * bytes: weft_process_pool_map, the same call with weft_bytes_t.) On failure the calls not
 * yet started are cancelled, as Python's map does when its iterator stops early.
 * ex: the executor (a thread pool).
 * fn: the task, run as fn(args[i], &result) for each i.
 * args: n arguments, passed as is (weft never frees them); NULL allowed when n is 0.
 * n: how many calls; 0 returns 0 at once.
 * results: the caller's array of n; receives each call's result pointer in order (the
 *     pointers are the caller's business, as weft_future_result gives them).
 * timeout: one overall limit in seconds, counted from the call; WEFT_FOREVER waits as long
 *     as it takes, 0 (or any other negative value) only collects what is done at once.
 * ndone: receives how many leading results were stored. May be NULL.
 * Returns 0 when every call succeeded; otherwise the first failure in argument order (a task's
 * error code, WEFT_ETIMEDOUT, WEFT_ECANCELED, or a submit error: see weft_executor_submit),
 * WEFT_EINVAL (ex, fn or results NULL, or args NULL with n > 0, NaN timeout), WEFT_ENOMEM. */
WEFT_EXTERN WEFT_NODISCARD int weft_executor_map(weft_executor_t *ex, weft_task_fn fn,
                                                 void *const *args, size_t n, void **results,
                                                 double timeout, size_t *ndone);

/* Stops the executor taking work (Executor.shutdown): later submits fail with WEFT_ESHUTDOWN.
 * Called from one of the executor's own tasks, it does not wait for that task. May be called
 * more than once.
 * ex: the executor.
 * wait: true: then waits up to timeout for the tasks already taken to finish and the workers
 *     to exit; false: returns at once.
 * cancel_futures: true: the futures not yet started are cancelled.
 * timeout: seconds to wait when wait is true (WEFT_FOREVER: Python's wait=True); 0 (or any
 *     other negative value) only checks.
 * Returns 0, or WEFT_ETIMEDOUT when the wait ended first (the shutdown stands; calling again
 * waits again), WEFT_ECANCELED (the caller was canceled while it waited), WEFT_EINVAL (ex NULL,
 * timeout NaN). */
WEFT_EXTERN int weft_executor_shutdown(weft_executor_t *ex, bool wait, bool cancel_futures,
                                       double timeout);

/* Shuts the executor down without waiting (unless that was done already) and drops the
 * caller's handle: queued tasks still run, and the workers free the executor when they are
 * done.
 * ex: the executor; it must not be used afterwards.
 * Returns 0, or WEFT_EINVAL for NULL. */
WEFT_EXTERN int weft_executor_release(weft_executor_t *ex);
/* Names ex for the task dump and the deadlock report (weft/debug.h): the executor (its unnamed
 * tasks show as "<name> task") shows as "'name'" there. Its last release drops the name. From
 * any thread or coroutine; not from a signal handler (it locks and allocates).
 * ex: the executor.
 * name: the name, copied (up to 47 bytes, longer is cut; the caller keeps its string); NULL
 *     or "" removes it.
 * Returns 0, WEFT_EINVAL (ex NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_executor_set_name(weft_executor_t *ex, const char *name);

/* ---- the thread pool ------------------------------------------------------------------ */

/* Duration options (exit_timeout, task_timeout) follow one rule: seconds; WEFT_FOREVER is no
 * limit (so are +inf and a duration too long for a deadline, ~292 years); a positive value is
 * the limit; 0 is the option's default, as for every field of an options struct (a struct of
 * all zero is the default everywhere); any other negative value and NaN are WEFT_EINVAL at
 * create. */

/* How to make a thread pool. A NULL opts, WEFT_THREAD_POOL_OPTS_INIT, or all zero is the
 * default.
 *   initializer, initarg  run once by each worker as it starts (ThreadPoolExecutor's
 *                         initializer/initargs); a nonzero return breaks the pool: queued
 *                         futures fail with WEFT_EBROKEN and so does every later submit
 *   thread_name_prefix    workers are named "<prefix>_<n>" (n: the worker's slot, 0, 1, ...)
 *                         in at most 15 characters, what the OS keeps of a thread's name (top,
 *                         ps, gdb): the prefix is cut so that the number always fits. NULL or
 *                         "" picks "weft_pool" ("weft_pool_0", "weft_pool_1", ...)
 *   stack_size            of each worker (0: the default; see weft_thread_opts_t)
 *   exit_timeout          a duration (rule above): how long the process waits, at exit, for
 *                         the tasks of a pool that was never shut down. 0 (the default): exit
 *                         does not wait; WEFT_FOREVER: it waits until they are done (Python's
 *                         behaviour, which can hang at exit); other negative values and NaN:
 *                         WEFT_EINVAL.
 *                         At exit, after that wait, queued futures are cancelled and running
 *                         tasks asked to stop, and exit goes on: the workers are daemon
 *                         threads, so a pool with a bounded exit_timeout never makes a program
 *                         hang at exit (CPython gh-72165, gh-80961). */
typedef struct weft_thread_pool_opts {
    int (*initializer)(void *initarg); /* see above */
    void *initarg;                     /* see above */
    const char *thread_name_prefix;    /* see above */
    size_t stack_size;                 /* see above */
    double exit_timeout;               /* see above */
    uint64_t reserved_[3]; /* room to grow in 1.x; zero-initialise opts: {0} or {.field = ...} */
} weft_thread_pool_opts_t;

/* The default thread pool options (the same as a NULL opts). */
#define WEFT_THREAD_POOL_OPTS_INIT                                                                 \
    {                                                                                              \
        .thread_name_prefix = NULL, .exit_timeout = 0                                              \
    }

/* Creates a thread pool of at most max_workers threads. Workers start lazily: a submit starts
 * one when no worker is idle and
 * fewer than max_workers run; they live until shutdown. Tasks are taken in submission order.
 * Memory: the pool reuses the memory of its futures once released (their last reference
 * gone) for its next submits, keeping at most 2^18 (about 52 MiB) returned futures plus as
 * many spares taken for reuse; that memory is freed when the pool is released and its last
 * future is. (Debug builds, WEFT_DEBUG, free every future instead.)
 * max_workers: the most worker threads; 0: Python's default, min(32, CPUs + 4).
 * opts: the options, read during the call only; NULL: the defaults.
 * ex: receives the pool (free it with weft_executor_release).
 * Returns 0, WEFT_EINVAL (ex NULL, stack size too small, exit_timeout NaN or negative other
 * than WEFT_FOREVER), WEFT_ENOMEM. */
WEFT_EXTERN WEFT_NODISCARD int weft_thread_pool_create(size_t max_workers,
                                                       const weft_thread_pool_opts_t *opts,
                                                       weft_executor_t **ex);

/* ---- the process pool (ProcessPoolExecutor) ------------------------------------------------
 * Tasks run in worker processes, forked by the pool, so CPU-bound work runs beside the
 * caller's threads without sharing their memory. A task is a function (the same binary runs
 * in the workers, so a function pointer is valid there) plus argument BYTES, copied to the
 * worker; its result is bytes, copied back. Submit with weft_process_pool_submit and map with
 * weft_process_pool_map (the generic weft_executor_submit and weft_executor_map take
 * pointers, which mean nothing in another process: WEFT_ENOTSUP); shutdown and release are
 * the generic ones.
 *
 * A pool thread in the caller's process (a daemon weft thread) feeds idle workers over pipes,
 * collects results and watches the workers. Failures stay with the task that met them:
 *   - a worker that dies while running a task (crash, _exit, a kill) fails that task with
 *     WEFT_EWORKERDIED and is replaced; the pool and the other tasks go on (unlike Python's
 *     BrokenProcessPool);
 *   - task_timeout: a task running longer has its worker killed and fails with
 *     WEFT_ETIMEDOUT;
 *   - max_tasks_per_child: a worker exits after that many tasks and is replaced.
 * Workers start lazily, up to max_workers, and are daemon processes (weft/process.h): they are
 * terminated if the program exits without shutting the pool down, and die with it if it is
 * killed. A running task cannot be canceled (weft_future_cancel returns WEFT_EBUSY); a queued
 * one can. To keep workers busy, each worker is handed up to 4 tasks at a time (1 with a
 * task_timeout): the ones waiting behind its current task are RUNNING already and no longer
 * cancelable (Python hands out max_workers + 1 this way); if the worker dies, those never
 * began and go back to the head of the queue, to run once on another worker. Arguments and
 * results of any size are carried (the pool thread never blocks on a worker's pipe: what a
 * pipe cannot take yet waits in the pool, what comes back is read as it arrives), at the cost
 * of one copy of each in the pool's process while in flight. In a forked child the pool is
 * unusable (submit: WEFT_EBROKEN). */

/* One task signature family for both pools, as far as pointers vs bytes allow. A thread-pool
 * task (weft_task_fn, weft/future.h) takes a pointer and gives a pointer:
 *     int task(void *arg, void **result);
 * A process-pool task has the same shape with each pointer replaced by bytes (a pointer and a
 * length), since only bytes cross into another process:
 *     int task(const void *arg, size_t len, void **result, size_t *result_len);
 * and the calls read the same: weft_executor_submit(ex, fn, arg, &f) /
 * weft_process_pool_submit(ex, fn, arg, len, &f), weft_executor_map / weft_process_pool_map
 * (the same arguments, with a weft_bytes_t for each argument and each result), and
 * weft_future_result / weft_future_result_bytes. The task keeps its four plain parameters
 * (rather than taking weft_bytes_t) so that a task is an ordinary C function of a buffer,
 * callable as such in tests and in the caller's own process; weft_bytes_t is for the arrays
 * of map, where an argument needs its length beside it.
 *
 * A process-pool task: runs in a worker with the argument bytes (arg may be NULL when len is
 * 0); returns 0 and, optionally, a result in *result / *result_len (memory from malloc, freed
 * by the pool after copying it; leave NULL / 0 for none), or a nonzero error code, which
 * becomes the future's error. */
typedef int (*weft_process_task_fn)(const void *arg, size_t len, void **result, size_t *result_len);

/* Bytes: len bytes at data (data may be NULL when len is 0). An argument or a result of
 * weft_process_pool_map. */
typedef struct weft_bytes {
    const void *data; /* the bytes */
    size_t len;       /* how many */
} weft_bytes_t;

/* How to make a process pool. A NULL opts, WEFT_PROCESS_POOL_OPTS_INIT, or all zero is the
 * default.
 *   max_tasks_per_child   0: workers live until shutdown
 *   task_timeout          a duration (rule above): how long a task may run. A task running
 *                         longer has its worker killed and fails with WEFT_ETIMEDOUT (a hard
 *                         limit: the task cannot ignore it). 0 (the default) or WEFT_FOREVER:
 *                         no limit; other negative values and NaN: WEFT_EINVAL
 *   process_name_prefix   workers are named "<prefix>_<n>" (n: the worker's slot), cut to 15
 *                         characters as a thread pool's workers are: weft_process_name and
 *                         the comm the OS shows (top, ps); the pool thread is "<prefix>".
 *                         NULL or "" picks "weft_proc" ("weft_proc_0", ...) */
typedef struct weft_process_pool_opts {
    size_t max_tasks_per_child;      /* see above */
    double task_timeout;             /* see above */
    const char *process_name_prefix; /* see above */
    uint64_t reserved_[5]; /* room to grow in 1.x; zero-initialise opts: {0} or {.field = ...} */
} weft_process_pool_opts_t;

/* The default process pool options (the same as a NULL opts). */
#define WEFT_PROCESS_POOL_OPTS_INIT                                                                \
    {                                                                                              \
        .max_tasks_per_child = 0, .task_timeout = 0, .process_name_prefix = NULL                   \
    }

/* Creates a pool of at most max_workers worker processes. Workers are
 * forked (when a task first needs one, and to replace one that ended) with the parent's
 * memory, but with no fd of the parent's but stdin, stdout and stderr: every other fd open at
 * the fork is closed in the worker, as in a worker of Python's forkserver or spawn start
 * method, so a socket or pipe the parent holds (a server's connections) never stays open in
 * a worker behind its back. A task opens the files it needs.
 * max_workers: the most worker processes; 0: the number of CPUs.
 * opts: the options, read during the call only; NULL: the defaults.
 * ex: receives the pool (free it with weft_executor_release).
 * Returns 0, WEFT_EINVAL (ex NULL, task_timeout NaN or negative other than WEFT_FOREVER),
 * WEFT_ENOMEM, WEFT_EMFILE (no fd for the pool's eventfd), WEFT_EAGAIN (no pool thread). */
WEFT_EXTERN WEFT_NODISCARD int weft_process_pool_create(size_t max_workers,
                                                        const weft_process_pool_opts_t *opts,
                                                        weft_executor_t **ex);

/* Schedules fn with a copy of the len bytes at arg; stores the future in *out if out is not
 * NULL. Futures fail with the task's code, WEFT_EWORKERDIED, WEFT_ETIMEDOUT,
 * WEFT_ENOMEM (the pool could not allocate the result: the worker is replaced),
 * WEFT_ECANCELED (cancelled while queued), or, for tasks queued when no worker process runs
 * and none could be started, that start's error: WEFT_EMFILE (no fd for its pipe: the
 * process's or the system's limit), WEFT_EAGAIN (fork refused: the process limit),
 * WEFT_ENOMEM, WEFT_ESYSTEM (an unexpected errno).
 * ex: the process pool.
 * fn: the task, run in a worker process (see weft_process_task_fn).
 * arg: the argument bytes, copied before the call returns (the caller keeps them); may be
 *     NULL when len is 0.
 * len: how many bytes at arg.
 * out: receives the future (one reference: release it; read its result with
 *     weft_future_result_bytes); NULL on failure. May be NULL.
 * Returns 0, WEFT_EINVAL (ex or fn NULL, arg NULL with len > 0), WEFT_ENOTSUP (ex is not a
 * process pool), WEFT_ESHUTDOWN, WEFT_EBROKEN (in a forked child), WEFT_ENOMEM (also for a len
 * no copy can have: above PTRDIFF_MAX with the message's header); on failure *out is NULL. */
WEFT_EXTERN WEFT_NODISCARD int weft_process_pool_submit(weft_executor_t *ex,
                                                        weft_process_task_fn fn, const void *arg,
                                                        size_t len, weft_future_t **out);

/* Pool.map / Executor.map on a process pool, collected: runs fn on the bytes of args[i] for
 * i in 0..n-1 concurrently and stores the results in order in results[0..n-1], all within one
 * overall timeout. On failure the tasks not yet started are cancelled (those running finish on
 * their own). Safe from any thread or coroutine, including a pool's own tasks (a coroutine
 * waiting parks only itself).
 * ex: the process pool.
 * fn: the task, run in a worker process on each argument.
 * args: n arguments, each copied to its worker (the caller keeps them); NULL allowed when n
 *     is 0; an entry's data may be NULL only when its len is 0.
 * n: how many tasks; 0 returns 0 at once.
 * results: a caller's array of n; each result is a copy in memory from malloc that the caller
 *     frees with free((void *)results[i].data) (data NULL when len is 0): results[0..*ndone)
 *     are the caller's to free, the others are {NULL, 0}.
 * timeout: one overall limit in seconds, counted once, from the call: WEFT_FOREVER waits as
 *     long as it takes, 0 or negative only collects what is done at once.
 * ndone: receives how many leading results were stored. May be NULL.
 * Returns 0 when every task succeeded; otherwise the first failure
 * in argument order (as Python's map raises at the first item that failed, whichever failed
 * first in time): a task's error code, or WEFT_EWORKERDIED, WEFT_ETIMEDOUT (the timeout
 * passed), WEFT_ECANCELED (the caller was canceled, or a task cancelled), WEFT_ENOMEM (no
 * memory for a copy), or a submit error (weft_process_pool_submit: WEFT_ESHUTDOWN after
 * shutdown, WEFT_EBROKEN, ...), WEFT_EINVAL (ex, fn or results NULL, args NULL with n > 0, an
 * argument with data NULL and len > 0, NaN), WEFT_ENOTSUP (ex is not a process pool: a thread
 * pool maps with weft_executor_map, an MPI pool with weft_mpi_pool_map). */
WEFT_EXTERN WEFT_NODISCARD int weft_process_pool_map(weft_executor_t *ex, weft_process_task_fn fn,
                                                     const weft_bytes_t *args, size_t n,
                                                     weft_bytes_t *results, double timeout,
                                                     size_t *ndone);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_EXECUTOR_H */
