/*
 * weft/mpi.h — the executor on MPI ranks (mpi4py.futures' MPIPoolExecutor for C), built when
 * Open MPI is found: library libweft_mpi, which links MPI itself (`pkg-config --libs weft-mpi`:
 * -lweft_mpi -lweft; in CMake, weft::weft_mpi: find_package(weft COMPONENTS mpi) of an installed
 * weft built with MPI, or the target in weft's own build). This header needs
 * no <mpi.h>. Not included by weft.h.
 *
 * The same executor as the process pool, across hosts (submit by name, weft_mpi_pool_map for
 * map, weft_future_result_bytes for results): weft_executor_shutdown / release and
 * every future call (result, callbacks, weft_future_wait, as_completed, cancel) work on it as on
 * any executor. A task is a function plus argument bytes and returns bytes, as a process-pool task
 * (weft_process_task_fn); since addresses differ between hosts, a task names its function
 * through a registry that every rank fills the same way: WEFT_MPI_TASK(fn) after fn's
 * definition registers it under its name ("fn") when the program loads.
 *
 * Launch models (as mpi4py.futures):
 *   - `mpirun -np N ./app`: every rank runs main, which first calls weft_mpi_serve. On world
 *     rank 0 (the submitter) it returns at once with *was_worker false and main goes on; on
 *     ranks 1..N-1 it serves tasks until rank 0 finalizes, then returns with *was_worker true
 *     and main returns. A pool uses the N-1 worker ranks.
 *   - spawn (MPI_Comm_spawn): a program started alone creates a pool with
 *     opts.spawn_command: the pool starts that many processes of the command (MPI_Comm_spawn;
 *     with Open MPI a singleton needs its runtime, which works on one host), whose main calls
 *     weft_mpi_serve too (it sees its parent and serves it). Those workers belong to that pool
 *     and leave when it is released.
 *
 * Threads: a worker rank runs its tasks in its main thread and answers the heartbeat from a
 * thread of its own (their MPI calls one at a time). On the submitter, weft_mpi_serve
 * initializes MPI in the calling thread (MPI_THREAD_SERIALIZED) and
 * starts weft's MPI thread, which from then on makes every MPI call (the progress of every
 * pool), one at a time; weft_mpi_finalize stops it and finalizes MPI back in the calling
 * thread, as MPI requires (call both from the main thread). Submitters only queue and poke the
 * MPI thread, so submit is safe from any thread or coroutine and never blocks a hub; waits
 * (result, shutdown) park only the caller. A program that initialized MPI itself must have
 * MPI_THREAD_MULTIPLE (else WEFT_ENOTSUP) and finalizes it itself, after weft_mpi_finalize.
 *
 * Transport: tasks are handed to ranks in batches (many small tasks in one message, sized to
 * about 1 ms of work by the measured task time, so slow tasks go one by one; results come back
 * batched the same way), with up to 4 batches in flight per rank while tasks are short and 2
 * when they are not: those handed out are RUNNING and can no longer be cancelled. Arguments and
 * results above 64 KiB travel alone, in 1 MiB chunks posted as non-blocking sends and
 * receives, so a 64 MiB payload never stalls the MPI thread's other traffic.
 *
 * Failure: a task's nonzero code fails its future, with the message the task left with
 * weft_future_fail_current (weft_future_error_message; cut to 4095 bytes). A name no rank
 * registered fails its future with WEFT_ENOENT. A worker rank that dies breaks the pools (MPI
 * cannot go on without ULFM): every future queued or in flight in any MPI pool fails with
 * WEFT_EBROKEN, with a message naming the rank and its pid ("worker rank 2 (pid 4242) died:
 * the MPI pool is broken"; "spawned worker rank ..." for a pool's own, "... on another host"
 * when that pid is not on this host, "stopped answering the heartbeat" when the heartbeat
 * found it), and later submits and creates return WEFT_EBROKEN; nothing hangs. A death is
 * seen at once for ranks on the submitter's host (their pids are watched through pidfds), and
 * for any rank by a heartbeat: the MPI thread pings a rank that has tasks in flight every
 * heartbeat_interval, and a thread of the worker's own (not the one running its tasks, so a
 * long task does not count as silence) answers; a ping left unanswered for heartbeat_timeout
 * declares the rank dead, as a rank on another host that died, or one that stopped (SIGSTOP, a
 * hung host), would otherwise leave its tasks waiting forever. So a death is seen within
 * interval + timeout at most (1 + 10 s by default). The job must be started with
 * `mpirun --enable-recovery` (Open MPI 4), or mpirun itself kills every rank, the submitter
 * included, when one dies.
 *
 * Cancel: a queued task can be cancelled; a running one (handed to a rank) cannot:
 * weft_future_cancel returns WEFT_EBUSY and, unlike a thread or process pool's task, the task
 * is not asked to stop (the request is not forwarded to the worker rank:
 * weft_cancel_requested() stays false there); it runs to its end and its future finishes with
 * what it returns.
 *
 * Inside a task (on a worker rank), the submitter's calls refuse: weft_mpi_pool_create
 * returns WEFT_ENOTSUP (no pool is made from a worker rank), weft_mpi_serve and
 * weft_mpi_finalize WEFT_EALREADY (the rank is serving already; the submitter ends it). The
 * other weft calls work as in any process. Fork: an MPI pool is not usable in a forked child
 * (WEFT_EBROKEN).
 * Signal handlers: no call here is async-signal-safe.
 */
#ifndef WEFT_MPI_H
#define WEFT_MPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>  /* WEFT_MPI_TASK's report */
#include <stdlib.h> /* and its abort */

#include "weft/executor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An MPI task: the process-pool task (weft/executor.h), run in a worker rank. */
typedef weft_process_task_fn weft_mpi_task_fn;

/* Registers fn under name, on this rank. Do it the same way on every rank, before
 * weft_mpi_serve (WEFT_MPI_TASK does it at load). Thread-safe.
 * name: the task's name, 1 to 255 bytes; copied (the caller keeps its string).
 * fn: the task function; not NULL.
 * Returns 0 (registered; also the same pair again), WEFT_EINVAL (name or fn NULL, name empty
 * or longer than 255 bytes), WEFT_EEXIST (name taken by another function), WEFT_ENOMEM. */
WEFT_EXTERN int weft_mpi_register(const char *name, weft_mpi_task_fn fn);

/* Registers fn under its own name when the program (or library) loads. Use at file scope,
 * after fn is declared: WEFT_MPI_TASK(sum_to); A registration that fails is a bug of the
 * program, found at load: above all two tasks of one name (static functions of the same name
 * in two files; the second would never run), but also a name over 255 bytes or no memory.
 * Then the program prints "weft: WEFT_MPI_TASK(<name>): ..." on stderr and aborts, before
 * main, on every rank.
 * fn: the task function (a weft_mpi_task_fn), by its identifier: that identifier is the
 *   name the task is registered and submitted under. */
#define WEFT_MPI_TASK(fn)                                                                          \
    __attribute__((constructor)) static void weft_mpi_register_##fn(void)                          \
    {                                                                                              \
        int weft_rc_ = weft_mpi_register(#fn, fn);                                                 \
        if (weft_rc_ != 0) {                                                                       \
            fprintf(stderr, "weft: WEFT_MPI_TASK(%s): %s\n", #fn,                                  \
                    weft_rc_ == WEFT_EEXIST                                                        \
                        ? "another function is registered under this name (task names must "       \
                          "be unique in the program)"                                              \
                        : weft_error_message(weft_rc_));                                           \
            abort();                                                                               \
        }                                                                                          \
    }

/* Call first in main, on every rank, with main's argc/argv. On a worker (world rank > 0, or
 * a process spawned by a pool) it serves tasks until the submitter ends, finalizes MPI and
 * returns 0 with *was_worker true: main should return. On the submitter it starts the MPI
 * thread, initializes MPI there and returns 0 with *was_worker false. Not async-signal-safe;
 * call it from the main thread.
 * argc: &argc of main, passed to MPI_Init_thread (which may change it); may be NULL.
 * argv: &argv of main, passed the same way; may be NULL.
 * was_worker: receives true on a worker rank once it is done serving, false on the submitter
 *   and on every error; not NULL.
 * Returns 0, WEFT_EINVAL (was_worker NULL), WEFT_EALREADY (called before, inside a task on a
 * worker rank, or after weft_mpi_finalize), WEFT_ENOTSUP (MPI was initialized without
 * MPI_THREAD_MULTIPLE, or weft's own init got less than MPI_THREAD_SERIALIZED), WEFT_EIO (MPI
 * failed), WEFT_EAGAIN (no thread), WEFT_ENOMEM, WEFT_EMFILE (no fd for the MPI thread's
 * eventfd). */
WEFT_EXTERN int weft_mpi_serve(int *argc, char ***argv, bool *was_worker);

/* On the submitter: ends MPI, as Python's exit joins its executors (mpi4py.futures'
 * shutdown(wait=True)). First every MPI pool is shut down (later submits and maps on a handle
 * still held fail with WEFT_ESHUTDOWN, as creates do). A released pool's queued and running
 * tasks all run to their end first (release promised that they run); a pool still held
 * keeps its running tasks, whose results are kept, and its queued futures fail with
 * WEFT_ESHUTDOWN (message: "MPI was finalized (weft_mpi_finalize) before the task was handed
 * to a worker rank"). Once nothing is queued or in flight it tells every worker rank to leave,
 * finalizes MPI and stops the MPI thread; so it waits as long as those tasks take (a rank that
 * dies meanwhile fails what is left with WEFT_EBROKEN, as always, and it goes on). A held
 * handle is still to be released, after. Runs at exit if not called. After a worker rank
 * died, the submitter and the surviving workers leave without MPI_Finalize: Open MPI 4.1's can
 * wait forever for the dead rank. Call it from the main thread, never from a future's
 * callback.
 * Returns 0 (MPI finalized), WEFT_EALREADY (not started, done, on a worker rank, or in a
 * forked child of the submitter). */
WEFT_EXTERN int weft_mpi_finalize(void);

/* How to make an MPI pool; NULL or all zero: every world rank but 0.
 *   max_workers         at most this many worker ranks (0: all of them): the first ones,
 *                       world ranks 1..max_workers. Ranks are shared, not reserved: two pools
 *                       of max_workers 1 both run on world rank 1 (their tasks take turns).
 *                       With spawn_command it is not used: the pool runs on the
 *                       spawn_nprocs ranks it starts
 *   spawn_command       non-NULL: start spawn_nprocs (0: 1) processes of this program with
 *                       spawn_argv (NULL-terminated, may be NULL) through MPI_Comm_spawn; they
 *                       serve this pool only
 *   heartbeat_interval  seconds between pings of a rank with tasks in flight (0: 1 s;
 *                       WEFT_FOREVER: no pings, so no heartbeat)
 *   heartbeat_timeout   seconds a ping may go unanswered before its rank is declared dead and
 *                       the pools break (0: 10 s; WEFT_FOREVER: no heartbeat)
 * Durations follow docs/API.md's rule: a negative value other than WEFT_FOREVER, or NaN, is
 * WEFT_EINVAL. The ranks are shared by the pools: the MPI thread uses the smallest interval and
 * timeout of the pools alive. A timeout shorter than a rank's answers can take (on a loaded
 * host its heartbeat thread waits for a CPU) breaks a healthy pool: keep it at several
 * intervals, and well above a second on a busy machine. */
typedef struct weft_mpi_pool_opts {
    size_t max_workers;        /* see above */
    const char *spawn_command; /* see above */
    char **spawn_argv;         /* see above */
    int spawn_nprocs;          /* see above */
    double heartbeat_interval; /* taken from reserved_: the struct's size and layout before it */
    double heartbeat_timeout;  /* are unchanged */
    uint64_t reserved_[2]; /* room to grow in 1.x; zero-initialise opts: {0} or {.field = ...} */
} weft_mpi_pool_opts_t;

/* Creates an MPI pool (starting the MPI thread and MPI first if weft_mpi_serve was not
 * called).
 * opts: how to make it (above; read during the call only); NULL: every world rank but 0.
 * ex: receives the pool on 0 (one reference: weft_executor_release it), NULL on an error;
 *   not NULL.
 * Returns 0, WEFT_EINVAL (ex NULL, spawn_nprocs < 0, a bad heartbeat option), WEFT_ENOMEM,
 * WEFT_EAGAIN (no worker rank: world size 1 without spawn_command), WEFT_ENOENT
 * (spawn_command is not a program this host can run), WEFT_EIO (MPI_Comm_spawn failed; a
 * program that runs but never calls weft_mpi_serve makes the create wait forever),
 * WEFT_EBROKEN (a worker rank died before, or in a forked child), WEFT_ESHUTDOWN (MPI was
 * finalized in this process: weft_mpi_finalize ran, or it served as a worker; WEFT_EBROKEN
 * instead if a rank had died), WEFT_ENOTSUP (see weft_mpi_serve; also inside a task on a
 * worker rank); and weft_mpi_serve's errors when it starts MPI here. */
WEFT_EXTERN WEFT_NODISCARD int weft_mpi_pool_create(const weft_mpi_pool_opts_t *opts,
                                                    weft_executor_t **ex);

/* Schedules the task registered as name with a copy of the len bytes at arg. Futures fail
 * with the task's code, WEFT_ENOENT (no such task on the worker), WEFT_EBROKEN (a worker rank
 * died), WEFT_ECANCELED (cancelled while queued), WEFT_ESHUTDOWN (still queued in a pool not
 * released when weft_mpi_finalize ran). An empty result reads as data NULL, length 0 (as in
 * weft_mpi_pool_map). Safe from any thread or coroutine.
 * ex: an MPI pool (weft_mpi_pool_create).
 * name: the task's registered name, 1 to 255 bytes; copied.
 * arg: the argument bytes, copied before the call returns; may be NULL when len is 0.
 * len: arg's length in bytes.
 * out: receives the future on 0 (one reference: the caller releases it), NULL on an error;
 *   may be NULL (the task runs; the caller gets no future).
 * Returns 0 (queued), WEFT_EINVAL (ex or name NULL, arg NULL with len > 0, name empty or
 * longer than 255), WEFT_ENOTSUP (ex is not an MPI pool), WEFT_ESHUTDOWN (the pool was shut
 * down, or weft_mpi_finalize ran), WEFT_EBROKEN (a rank died, or in a forked child),
 * WEFT_ENOMEM. */
WEFT_EXTERN WEFT_NODISCARD int weft_mpi_pool_submit(weft_executor_t *ex, const char *name,
                                                    const void *arg, size_t len,
                                                    weft_future_t **out);

/* Pool.map on an MPI pool: weft_process_pool_map (weft/executor.h: results in order, copies
 * from malloc the caller frees, the first failure in argument order, one overall timeout,
 * *ndone) with the task registered as name. Safe from any thread or coroutine.
 * ex: an MPI pool (weft_mpi_pool_create).
 * name: the task's registered name, 1 to 255 bytes.
 * args: the n arguments (each copied at its submit); may be NULL when n is 0.
 * n: how many tasks.
 * results: the caller's array of n; receives the results in argument order, each a copy from
 *   malloc the caller frees (data NULL when len is 0); those past *ndone are {NULL, 0}.
 * timeout: seconds for the whole map, counted from the call; WEFT_FOREVER waits as long as
 *   it takes, 0 (or negative) only collects what is done at once.
 * ndone: receives how many leading results were stored (the caller's to free); may be NULL.
 * Returns 0 (every task succeeded; also for n 0), else the first failure in argument order,
 * as weft_process_pool_map's, with weft_mpi_pool_submit's: WEFT_EINVAL (ex, name or results
 * NULL, args NULL with n > 0, a bad name or argument, NaN), WEFT_ENOTSUP (ex is not an MPI
 * pool), WEFT_ESHUTDOWN, WEFT_EBROKEN, WEFT_ENOMEM; a task's code, WEFT_ENOENT (no such task
 * on the worker), WEFT_ETIMEDOUT, WEFT_ECANCELED. */
WEFT_EXTERN WEFT_NODISCARD int weft_mpi_pool_map(weft_executor_t *ex, const char *name,
                                                 const weft_bytes_t *args, size_t n,
                                                 weft_bytes_t *results, double timeout,
                                                 size_t *ndone);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_MPI_H */
