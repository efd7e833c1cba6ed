/*
 * weft/trace.h — a trace of what a program's tasks did, for Perfetto (https://ui.perfetto.dev)
 * and chrome://tracing: a JSON file in the Trace Event Format ({"traceEvents": [...]}), as
 * `go tool trace` records one for Go.
 *
 * What it records, per thread (the file's "tid"; one "M" metadata event "thread_name" per
 * thread, with the name the thread had when its newest buffer began, and one "process_name"):
 *   - every run of a coroutine: a slice ("ph":"X", cat "coroutine") named by the coroutine
 *     (a hub looks whether a trace runs at each spawn and at least every 64 switches, not at
 *     every switch, which then costs nothing while no trace runs: a hub already busy when a
 *     trace starts or stops records up to 64 switches late);
 *   - every park in a weft wait, with what it waits on ("Queue 'jobs' get", "Lock 'db'",
 *     "fd 7 read", "process 1234 join"; the object's name if the program gave it one): a
 *     thread's park is a slice "wait: <what>" (cat "park") on its thread; a coroutine's is an
 *     async pair ("b"/"e", cat "park", id: the coroutine) from its park to its resumption;
 *     args.outcome says "woken", "timeout", "canceled" or "deadlock"; a park that began
 *     before the trace and ended in it starts at the trace's start;
 *   - every wake: a zero-length slice "wake: <what>" (cat "wake") on the waker's thread, and
 *     a flow arrow ("s" -> "f", cat "wake") from it to the woken thread or coroutine; a park
 *     ended by a cancel (weft_co_cancel, weft_future_cancel of a running task, a thread's
 *     cancellation) has the same, from the canceler's thread;
 *   - every pool task (thread pool, process pool) from its submit to its result: an async
 *     pair "task <n>" (cat "task"; args.outcome "result", "error" or "cancelled"), and a
 *     slice "task <n> run" on the worker thread of a thread pool while it runs;
 *   - every child process of weft_process_start from its start to its reap: an async pair
 *     "process <name>" (cat "process", args.pid, and args.status at its end: exit code, or
 *     -signal).
 * Timestamps ("ts", "dur") are microseconds of CLOCK_MONOTONIC (weft_time_monotonic_ns /
 * 1000), with nanosecond decimals.
 *
 * How: each thread appends fixed-size records to a buffer of its own (no lock per event; a
 * full buffer, and a thread's at its exit, goes to a global list); the JSON is written only by
 * weft_trace_flush, weft_trace_stop and at exit. The first 1048576 events of a trace are
 * kept; later ones, and those for which no buffer could be allocated, are counted in the
 * file's "otherData": {"dropped": n}. With no trace running, each point that records costs
 * one relaxed load (a coroutine switch not even that).
 *
 * WEFT_TRACE=<path> (environment): the program traces from its start (the library's load)
 * to its exit, as if it called weft_trace_start(path) first; the file is written at exit
 * (after the exit rule has joined the threads and shut the pools down), or not at all on
 * _exit or a crash. A path that cannot be opened prints one line on stderr and the program
 * runs untraced. In the path, "%p" becomes the process id: a program that starts other
 * programs with the same environment then gets a file per process.
 *
 * Fork: a forked child (weft_process_start's, or fork()) does not trace, and never writes its
 * parent's file: its copy of the trace is dropped. Its function may call weft_trace_start
 * with a path of its own.
 *
 * All three functions are safe from any thread or coroutine (they serialize with each other),
 * not from a signal handler.
 */
#ifndef WEFT_TRACE_H
#define WEFT_TRACE_H

#include "weft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Starts a trace written to path. The file is created (or truncated) now, so a path that
 * cannot be written fails here; it is written at weft_trace_flush, weft_trace_stop, or the
 * process's exit.
 * path: the file to write; "%p" in it becomes the process id. Read during the call only.
 * Returns 0 (tracing), WEFT_EINVAL (path NULL or ""), WEFT_ENAMETOOLONG (path, once "%p" is
 * expanded, is 4096 bytes or longer), WEFT_EALREADY (a trace runs), the open's error
 * (WEFT_ENOENT, WEFT_EACCES, WEFT_EISDIR...: see weft/core.h), WEFT_ENOMEM. */
WEFT_EXTERN WEFT_NODISCARD int weft_trace_start(const char *path);

/* Writes the file now: every event recorded since weft_trace_start (the whole file is
 * rewritten each time, so it is always a complete JSON document). Tracing goes on; the events
 * stay in memory until weft_trace_stop. The events a running thread is recording meanwhile
 * may or may not be in it.
 * Returns 0 (written), WEFT_EINVAL (no trace runs), the write's error (WEFT_ENOSPC,
 * WEFT_EIO...; tracing goes on). */
WEFT_EXTERN int weft_trace_flush(void);

/* Stops tracing, writes the file and frees the events (a buffer a running thread still holds
 * is freed by that thread: at its next event of a later trace, or at its exit).
 * Returns 0 (stopped and written), WEFT_EINVAL (no trace runs), the write's error (tracing
 * has stopped anyway). */
WEFT_EXTERN int weft_trace_stop(void);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_TRACE_H */
