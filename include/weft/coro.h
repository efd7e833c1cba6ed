/*
 * weft/coro.h — coroutines (gevent's greenlets): many tasks inside one OS thread, each with a
 * stack of its own, switching when one would block.
 *
 * Every thread gets a hub (its scheduler) the first time it spawns a coroutine. From then on
 * the thread's own code (its "root" context) is a coroutine too: when it blocks in ANY weft
 * call — a Lock, Event, Queue, Future, thread join, weft_time_sleep, weft_fd_wait — only it parks,
 * and the hub runs the thread's other coroutines meanwhile. Coroutines never move between
 * threads. A wake from another thread (a pool worker sets an Event a coroutine waits on)
 * reaches the hub through its poller (or a futex while the hub has no fd to watch). A thread
 * that never spawns pays nothing.
 *
 * Switching is cooperative: a coroutine runs until it blocks, yields or returns. A coroutine
 * that computes for long without blocking holds up its whole thread (weft_watchdog_start
 * reports such hogs).
 *
 * Deadlock: when every coroutine of a hub is blocked and nothing can wake any of them (no
 * timers, no fds, no other thread alive in the process), their waits fail with WEFT_EDEADLK
 * instead of hanging (Go's "all goroutines are asleep", gevent's LoopExit). The check runs
 * after 10 ms of such idleness (it reads /proc/self/stat), so a waker that comes sooner costs
 * nothing; a hub whose process has other threads checks again at growing intervals (to 1 s).
 * Under an emulator that leaves the thread count of /proc/self/stat at 0 (qemu-user 7.2), the
 * check cannot see other threads: there a hub that waits on another thread for more than 10 ms
 * takes itself for deadlocked. A signal handler cannot wake a coroutine (use a thread or a
 * self-pipe read with weft_fd_read).
 *
 * Memory: a coroutine's stack is mapped memory of opts.stack_size (default 64 KiB, or
 * WEFT_STACK_SIZE in the environment, ignored in a setuid/setgid or file-capability program as
 * secure_getenv ignores it) of which only the touched pages cost RAM: a coroutine
 * parked in a weft call touches one 4 KiB page, so with its 288-byte descriptor it costs about
 * 4.4 KB (measured: 4,407 bytes of RSS each for 1,000,000 parked; docs/BENCHMARKS.md). Keep
 * large buffers off coroutine stacks (a 64 KiB array overflows the default one).
 * Below the stack a guard page catches overflow. Where the kernel offers guard regions
 * (MADV_GUARD_INSTALL, Linux 6.13+) it costs no mapping and every stack has one. Elsewhere it
 * is an mprotect'ed page, which splits the stack's mapping: default stacks get one while fewer
 * than a quarter of vm.max_map_count such stacks are mapped (16,382 for the default 65530)
 * and none past that, so that many coroutines still fit in the map count; an unguarded stack
 * that overflows writes into whatever lies below, usually another coroutine's stack. Stacks
 * are pooled per thread and reused: a hub keeps up to 1,024 free ones, and unmaps the rest a
 * burst left once it has stayed idle for 1 s; default ones are mapped 64 at a time (address
 * space only: each costs RAM as it is touched).
 *
 * Stack overflow: a coroutine that faults below its stack makes the process print one line on
 * stderr before it dies of SIGSEGV, as it would have anyway:
 *   weft: coroutine 'NAME' (0xADDR) overflowed its stack of 64 KiB (fault N bytes below its
 *   lowest page); give it more with weft_co_opts_t.stack_size or move large locals to the heap
 * For that, weft installs a SIGSEGV handler (SA_SIGINFO | SA_ONSTACK) at the first hub start
 * that finds SIGSEGV at SIG_DFL: never over a handler the program (or ASan) installed, and not
 * at all with WEFT_SEGV_HANDLER=0 in the environment (read as secure_getenv reads it). Each
 * hub gives its thread an alternate signal stack of 64 KiB (mapped: only touched pages cost
 * RAM) when the thread has none, and removes it when the hub ends. The handler prints only for
 * a fault of the running coroutine at most 8 MiB below its stack; any other SIGSEGV (a NULL
 * dereference, a fault outside coroutines, a kill) passes silently. In every case it restores
 * SIG_DFL and the fault happens again, so the core dump and the exit status are those of a
 * program without the handler. A program that installs its own SIGSEGV handler later
 * replaces weft's. Why 8 MiB: the guard is one page, and a frame larger than a page that is
 * first touched at its low end (a large local array followed by a call: what gcc and clang
 * emit without -fstack-clash-protection) jumps over it, down to its size below the stack.
 * Where it lands on another coroutine's stack it writes there silently (the report comes, if
 * at all, when a later access faults); code built with -fstack-clash-protection probes every
 * page of a large frame in order and always faults in the guard first.
 *
 * Fork: a child keeps only the forking thread. That thread keeps its hub and coroutines (a
 * fork inside a coroutine goes on in that coroutine in the child); the poller gets kernel
 * objects of its own. Hubs of the other threads are unusable in the child (their threads are
 * gone): waking their coroutines from the child has no effect.
 *
 * Thread exit: a thread that ends with coroutines still alive cancels them and runs them to
 * their end (their cleanup runs) before its hub goes; a coroutine that ignores the cancel and
 * keeps computing holds the thread's exit up. Do not call pthread_exit inside a coroutine.
 */
#ifndef WEFT_CORO_H
#define WEFT_CORO_H

#include "weft/core.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A coroutine handle (a greenlet): joined, canceled and released through the calls below. */
typedef struct weft_co weft_co_t;

/* The seed's process states, for coroutines. */
typedef enum weft_co_state {
    WEFT_CO_INVALID = -1, /* the answer for a NULL handle */
    WEFT_CO_READY = 0,    /* runnable, waiting for its turn */
    WEFT_CO_RUNNING = 1,  /* the one running on its thread now */
    WEFT_CO_BLOCKED = 2,  /* parked in a blocking call */
    WEFT_CO_DONE = 3,     /* its function returned */
} weft_co_state_t;

/* Longest coroutine name, NUL included. */
#define WEFT_CO_NAME_MAX 32

/* How to start a coroutine; zero-initialised (or NULL) is the default.
 *   name        copied; NULL or "" picks "Coroutine-N"; longer than 31 characters: WEFT_EINVAL
 *   stack_size  bytes, rounded up to pages; 0: the default (64 KiB, WEFT_STACK_SIZE env);
 *               below 16 KiB or above 1 GiB: WEFT_EINVAL
 *   guard       0: a guard page (without guard regions, within the budget above); > 0:
 *               always (mprotect when the kernel has no guard regions, budget or not);
 *               < 0: never (see "Stack overflow" above) */
typedef struct weft_co_opts {
    const char *name;      /* see above */
    size_t stack_size;     /* see above */
    int guard;             /* see above */
    uint64_t reserved_[5]; /* room to grow in 1.x; zero-initialise opts: {0} or {.field = ...} */
} weft_co_opts_t;

/* ---- spawning and joining ---------------------------------------------------------------- */

/* Starts fn(arg) as a coroutine on the calling thread (creating its hub on first use); opts
 * may be NULL (defaults). When co is not NULL it gets a handle (one reference:
 * weft_co_release it); with co NULL the coroutine runs detached (Go's `go`). The new
 * coroutine is READY: it first runs when the caller blocks or yields (as gevent.spawn).
 * Errors: WEFT_EINVAL (fn NULL, bad opts), WEFT_ENOMEM (no memory or no address space for the
 * stack), WEFT_ESHUTDOWN (the thread's hub is closing); then *co is NULL and nothing is left
 * behind. Safe from any thread or coroutine.
 * fn: the coroutine's function; not NULL.
 * arg: passed to fn as is (the caller keeps it alive while fn may use it).
 * opts: how to start it (weft_co_opts_t); NULL: the defaults. Read during the call only.
 * co: NULL: run detached; else receives the handle (one reference, weft_co_release it) on
 *     success, NULL on failure.
 * Returns 0 (spawned, READY), WEFT_EINVAL (fn NULL, bad opts), WEFT_ENOMEM (no memory or no
 * address space for the stack), WEFT_ESHUTDOWN (the thread's hub is closing). */
WEFT_EXTERN WEFT_NODISCARD int weft_co_spawn(void (*fn)(void *arg), void *arg,
                                             const weft_co_opts_t *opts, weft_co_t **co);

/* Waits until co's function has returned, at most `timeout` seconds (the rules of weft/core.h:
 * WEFT_FOREVER blocks, 0 or any other negative value polls); then 0, at once and forever after. Any
 * number of coroutines and threads may join the same coroutine. Errors: WEFT_EINVAL (co NULL,
 * timeout NaN), WEFT_EDEADLK (co is the caller; or the caller's hub found its coroutines stuck,
 * "Deadlock" above: a join without timeout of a coroutine that waits on what nothing can set),
 * WEFT_ETIMEDOUT, WEFT_ECANCELED (the joiner was canceled). A thread of another hub may join
 * too: it parks as any waiter does.
 * co: the coroutine to wait for (a reference the caller holds).
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 (or negative) only polls.
 * Returns 0 (co's function has returned), WEFT_EINVAL (co NULL, timeout NaN), WEFT_EDEADLK
 * (co is the caller, or its hub found its coroutines stuck), WEFT_ETIMEDOUT, WEFT_ECANCELED
 * (the joiner was canceled). */
WEFT_EXTERN int weft_co_join(weft_co_t *co, double timeout);

/* Joins n coroutines (NULL entries are skipped) within one timeout (gevent.joinall), in array
 * order.
 * cos: an array of n handles (NULL entries skipped); may be NULL when n is 0. Borrowed for
 *      the call.
 * n: the number of entries in cos.
 * timeout: seconds for them all; WEFT_FOREVER waits without a limit, 0 only polls.
 * Returns 0 when all are done, else the first error (then some may still run): WEFT_EINVAL
 * (cos NULL with n > 0, timeout NaN) or one of weft_co_join's (WEFT_ETIMEDOUT,
 * WEFT_ECANCELED, WEFT_EDEADLK). */
WEFT_EXTERN int weft_co_join_all(weft_co_t *const *cos, size_t n, double timeout);

/* Asks co to end (gevent's kill, libdill's cancel): its current or next blocking call that
 * has to wait returns WEFT_ECANCELED (calls that need not wait still succeed, so cleanup can
 * run); the function is expected to clean up and return. A coroutine that has not started
 * yet never runs its function. Returns 0 (also when co is already done), WEFT_EINVAL for
 * NULL. Safe from any thread. Does not wait: join for that. A cancel never takes back what was
 * already handed over: a coroutine parked in a get (or acquire) that a put (or release)
 * reaches before it runs again returns 0 with the item, and its next wait sees the cancel;
 * nothing is lost either way.
 * co: the coroutine to cancel.
 * Returns 0 (also when co is already done), WEFT_EINVAL (co NULL). */
WEFT_EXTERN int weft_co_cancel(weft_co_t *co);
/* weft_co_cancel(co) as a void (void *) callback, for weft_timer_start and the like (see
 * weft/timer.h, "callbacks"); NULL does nothing. The caller keeps its reference to co until
 * the callback has run or its timer was canceled.
 * co: a weft_co_t *; NULL does nothing. */
WEFT_EXTERN void weft_co_cancel_cb(void *co);

/* Reference counting: retain adds a reference to co. A handle lives until its last reference
 * is released; releasing does not stop a running coroutine (it runs on, detached).
 * co: the handle; NULL does nothing.
 * Returns co (NULL for NULL), with one more reference the caller must weft_co_release. */
WEFT_EXTERN weft_co_t *weft_co_retain(weft_co_t *co);

/* Releases one reference to co (the pair of weft_co_spawn's handle and weft_co_retain); the
 * last one frees the handle. Releasing does not stop a running coroutine (it runs on,
 * detached).
 * co: the handle; not used by the caller after this.
 * Returns 0, or WEFT_EINVAL (co NULL). */
WEFT_EXTERN int weft_co_release(weft_co_t *co);

/* ---- the running coroutine --------------------------------------------------------------- */

/* The calling coroutine.
 * Returns the calling coroutine's handle, or NULL in a thread's own context (its root). No
 * reference: borrowed while the coroutine runs (weft_co_retain it to keep it). */
WEFT_EXTERN weft_co_t *weft_co_current(void);

/* A snapshot of co's state.
 * co: the coroutine.
 * Returns its state now (WEFT_CO_READY, _RUNNING, _BLOCKED or _DONE); WEFT_CO_INVALID for
 * NULL. */
WEFT_EXTERN weft_co_state_t weft_co_state(const weft_co_t *co);

/* co's name.
 * co: the coroutine.
 * Returns its name (opts.name or "Coroutine-N"), valid as long as the caller holds its
 * reference to co; NULL for NULL. */
WEFT_EXTERN const char *weft_co_name(const weft_co_t *co);

/* Lets the other ready coroutines of the thread run, then continues (gevent.sleep(0)). Returns
 * 0, or WEFT_ECANCELED when the caller was canceled (it still yielded). From a thread without
 * coroutines: sched_yield.
 * Returns 0, or WEFT_ECANCELED when the caller was canceled (it still yielded). */
WEFT_EXTERN int weft_co_yield(void);

/* Sleeps for `seconds` (0 or negative: yields only, and returns at once, as a deadline that
 * has passed; WEFT_FOREVER: until canceled). Returns 0, WEFT_EINVAL (NaN),
 * WEFT_ECANCELED when canceled meanwhile (it returns at once then), WEFT_ETIMEDOUT when an
 * enclosing timeout scope ends first, or WEFT_EDEADLK for a sleep without deadline
 * (WEFT_FOREVER, +inf) in a coroutine whose hub finds that nothing can ever wake it. A
 * coroutine parks only itself; a thread sleeps. Timers: a binary heap per hub, so a million
 * sleepers cost O(log n) per operation and 16 bytes of heap each (a slot reserved for every
 * coroutine when it is spawned: a timed wait never allocates).
 * seconds: how long; 0 or negative: yield only; WEFT_FOREVER: until canceled.
 * Returns 0 (slept), WEFT_EINVAL (seconds NaN), WEFT_ECANCELED (canceled meanwhile),
 * WEFT_ETIMEDOUT (an enclosing timeout scope ended first), WEFT_EDEADLK (a sleep without
 * deadline that nothing can ever wake). */
WEFT_EXTERN int weft_time_sleep(double seconds);

/* ---- coroutine-local data ---------------------------------------------------------------- */

/* A key: a static object whose address names the value (as a pthread key or gevent.local).
 * `dtor`, when set, is called with every non-NULL value when its coroutine ends.
 * Safety: get and set act on the calling coroutine's own values only (a thread's root context
 * counts as one), so they need no lock and are safe from any thread or coroutine; no call
 * reads another coroutine's values. After fork the child's coroutines keep theirs. */
typedef struct weft_co_key {
    void (*dtor)(void *value); /* see above */
    uint64_t reserved_[3];     /* room to grow within 1.x; zero */
} weft_co_key_t;

/* A key's initializer: `static weft_co_key_t key = WEFT_CO_KEY_INIT(free);` (dtor may be NULL).
 * Designated initializers ({.dtor = free}) work too; both leave the reserved tail zero. */
#define WEFT_CO_KEY_INIT(dtor)                                                                     \
    {                                                                                              \
        (dtor),                                                                                    \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* The calling coroutine's value for key. A thread's root context has values of its own.
 * key: the key (its address names the value).
 * Returns the value last set, NULL when unset or key NULL. */
WEFT_EXTERN void *weft_co_local_get(const weft_co_key_t *key);

/* Sets the calling coroutine's value for key.
 * key: the key (its address names the value); not NULL.
 * value: stored as is (key's dtor, if any, gets it when the coroutine ends); NULL unsets.
 * Returns 0, WEFT_EINVAL (key NULL), WEFT_ENOMEM (no memory for the value's slot, or for the
 * thread's hub). */
WEFT_EXTERN int weft_co_local_set(const weft_co_key_t *key, void *value);

/* ---- groups (gevent.pool.Pool) ----------------------------------------------------------- */

/* Safety: every group call is safe from any thread or coroutine at once (one lock guards the
 * group); spawn puts the member on the CALLER's hub, so one group may hold coroutines of
 * several threads, and spawners and joiners park as any weft wait does (timeouts, cancel).
 * Fork: a group whose members all live on the forking thread goes on in the child; members
 * on other threads are gone there and a join waiting for them waits until its timeout. */
typedef struct weft_group weft_group_t;

/* Creates a group: a set of coroutines of at most `size` members at once.
 * size: the most members at once; 0: unbounded.
 * g: receives the group on success (free it with weft_group_release), NULL on failure.
 * Returns 0, WEFT_EINVAL (g NULL), WEFT_ENOMEM. */
WEFT_EXTERN WEFT_NODISCARD int weft_group_create(size_t size, weft_group_t **g);

/* Spawns fn(arg) in g, first waiting (up to timeout) while g is full. *co (if co is not NULL)
 * gets a handle with a reference of its own. The member runs on the caller's thread, as
 * weft_co_spawn's does: a thread that returns before its members have started cancels them
 * (see "Thread exit" above: they never run, and count as ended for weft_group_join), so join
 * the group before the spawning thread ends. Errors: those of weft_co_spawn, WEFT_ETIMEDOUT,
 * WEFT_ECANCELED, WEFT_ESHUTDOWN (the group is being destroyed).
 * g: the group.
 * fn: the member's function; not NULL.
 * arg: passed to fn as is.
 * timeout: seconds to wait for a free slot; WEFT_FOREVER waits without a limit, 0 only tries.
 * co: NULL, or receives a handle with a reference of its own (weft_co_release it) on success,
 *     NULL on failure.
 * Returns 0, WEFT_EINVAL (g or fn NULL, timeout NaN), WEFT_ETIMEDOUT (g stayed full),
 * WEFT_ECANCELED (the caller was canceled), WEFT_ESHUTDOWN (the group is being destroyed), or
 * an error of weft_co_spawn (WEFT_ENOMEM, WEFT_ESHUTDOWN). */
WEFT_EXTERN WEFT_NODISCARD int weft_group_spawn(weft_group_t *g, void (*fn)(void *arg), void *arg,
                                                double timeout, weft_co_t **co);

/* Waits until every member has ended.
 * g: the group.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 only polls.
 * Returns 0 (no member left), WEFT_EINVAL (g NULL, timeout NaN), WEFT_ETIMEDOUT,
 * WEFT_ECANCELED (the caller was canceled), WEFT_EDEADLK (the caller is a member of g: it
 * would wait for itself; or its hub found its coroutines stuck). */
WEFT_EXTERN int weft_group_join(weft_group_t *g, double timeout);

/* Cancels every member (weft_co_cancel each). Does not wait: join for that.
 * g: the group.
 * Returns 0, or WEFT_EINVAL (g NULL). */
WEFT_EXTERN int weft_group_cancel(weft_group_t *g);
/* weft_group_cancel(group) as a void (void *) callback, for weft_timer_start and the like
 * (see weft/timer.h, "callbacks"); NULL does nothing.
 * group: a weft_group_t *; NULL does nothing. */
WEFT_EXTERN void weft_group_cancel_cb(void *group);

/* How many members run now. A snapshot.
 * g: the group.
 * Returns the slots taken: members not yet ended, and spawns in progress; 0 for NULL. */
WEFT_EXTERN size_t weft_group_size(weft_group_t *g);

/* Frees g (the pair of weft_group_create).
 * g: the group; not used after a 0.
 * Returns 0 (freed), WEFT_EBUSY while members run or a spawn or join waits on g, and nothing
 * happens (cancel and join first); WEFT_EINVAL (g NULL). */
WEFT_EXTERN int weft_group_release(weft_group_t *g);

/* ---- timeout scopes (gevent.Timeout) ----------------------------------------------------- */

/* A scope on the caller's stack: between begin and end, every blocking weft call of the
 * calling coroutine (or thread) waits at most until the scope's deadline and then returns
 * WEFT_ETIMEDOUT. Scopes nest; an inner scope cannot extend an outer one.
 * Safety: a scope belongs to the coroutine (or thread) that began it and bounds only that
 * one's waits; begin and end must be called by it, in nested order. Calls of other threads or
 * coroutines are not affected. A scope open across fork goes on in the child's copy of the
 * forking coroutine. */
typedef struct weft_timeout {
    int64_t deadline_;
    int64_t saved_;
    uint64_t depth_;       /* its nesting depth while open; above the context's once ended */
    uint64_t reserved_[1]; /* room to grow within 1.x; begin zeroes it */
} weft_timeout_t;
/* No WEFT_TIMEOUT_INIT: a scope has no idle state to initialise; weft_timeout_begin sets every
 * field (it is the scope's init), weft_timeout_end closes it. */

/* Opens a scope of `seconds`: WEFT_FOREVER (or +inf) sets no deadline of its own, only
 * nesting; 0 or any other negative value is a deadline already passed (every blocking call in
 * the scope that has to wait fails at once).
 * t: the scope, on the caller's stack (its fields are all set here).
 * seconds: the scope's length; WEFT_FOREVER (or +inf): no deadline of its own; 0 or negative:
 *          already passed.
 * Returns 0 (opened), WEFT_EINVAL (t NULL, seconds NaN). */
WEFT_EXTERN int weft_timeout_begin(weft_timeout_t *t, double seconds);

/* Closes the scope t (scopes end in reverse order). Returns WEFT_ETIMEDOUT when its deadline
 * has passed (whether or not a call noticed), else 0. Ending a scope also ends every scope
 * opened inside it that is still open (an error path that skipped their end); ending a scope
 * again, or one already ended that way, returns WEFT_EINVAL and changes nothing, so an
 * out-of-order end never leaves a stale deadline behind. WEFT_EINVAL for NULL. A scope that
 * is never ended keeps bounding the waits of its thread (a coroutine's end with it): end
 * every scope on every path out.
 * t: the scope weft_timeout_begin opened.
 * Returns 0 (closed, its deadline not passed), WEFT_ETIMEDOUT (closed, its deadline passed,
 * whether or not a call noticed), WEFT_EINVAL (t NULL, or ended already: nothing changes). */
WEFT_EXTERN int weft_timeout_end(weft_timeout_t *t);

/* ---- hubs on several threads: a hub per CPU ------------------------------------------------ */

/* A set of N threads, each running a hub that serves the coroutines spawned onto it, so that
 * coroutines use several cores (Go's GOMAXPROCS). The threads are weft's own: they only run
 * their hub (signals sent to the process are blocked in them; a fault's own, SIGSEGV and the
 * like, are not) until weft_hubs_stop.
 *
 * Placement: weft_hubs_spawn puts a coroutine on a chosen hub or on the least loaded one (the
 * fewest coroutines spawned onto it, or by its coroutines, and not yet ended; ties go round
 * robin). A coroutine spawned inside a hub's coroutine with weft_co_spawn stays on that hub.
 * Coroutines never migrate once started: a C compiler may keep the address of a thread-local
 * variable (errno, weft's own per-thread state, the program's _Thread_local data) in a register
 * or on the stack across a call, so a coroutine resumed on another thread would go on using
 * the first thread's copy. Balance comes from placement only: a hub whose coroutines block a
 * lot is no help to a busy one.
 *
 * The handle weft_hubs_spawn returns is an ordinary weft_co_t: weft_co_join, weft_co_cancel,
 * weft_co_state, weft_co_release work from any thread or coroutine (a joiner parks as any
 * waiter does). Objects shared between coroutines of different hubs are shared between
 * threads: use weft's Lock, Event, Queue... (they park a coroutine, never its thread).
 *
 * Safety: weft_hubs_spawn, weft_hubs_load and weft_hubs_count are safe from any thread or
 * coroutine at once, including the hubs' own coroutines; weft_hubs_stop from any thread or
 * coroutine except one running on the hubs themselves (WEFT_EDEADLK); weft_hubs_release last.
 * Not async-signal-safe. Exit: stop the hubs before the process exits (exit() does not wait
 * for their coroutines); a main thread that ends with pthread_exit while hubs run leaves a
 * process whose only threads block SIGTERM and SIGINT (only SIGKILL ends it). Fork: a child
 * keeps only the forking thread, so the hubs' threads and their coroutines are not in the
 * child: there weft_hubs_spawn and weft_hubs_stop return WEFT_EBROKEN at once,
 * weft_hubs_load answers 0, weft_hubs_count still answers n, and weft_hubs_release frees the
 * handle (0), stopped or not; a join of a coroutine of the parent's hubs waits until its
 * timeout. A child forked inside a coroutine of the hubs is that hub's thread alone: the
 * coroutine goes on; once the hub has nothing left to run, it ends, and with it the child
 * (exit status 0), as a thread's hub ends when nothing can wake it.
 * weft_process_start from a hub's coroutine works as from any coroutine. */
typedef struct weft_hubs weft_hubs_t;

/* weft_hubs_spawn's `hub` for the least loaded hub. */
#define WEFT_HUBS_ANY (-1)

/* Largest number of hubs. */
#define WEFT_HUBS_MAX 1024

/* Hubs options; zero-initialised (or NULL) is the default.
 *   pin  non-zero: hub i's thread runs only on the i-th CPU the process may use (its affinity
 *        mask, round robin when there are more hubs than CPUs); 0: the scheduler's choice.
 * The reserved words must be zero (room for options of later 1.x versions). */
typedef struct weft_hubs_opts {
    int pin; /* see above */
    uint64_t reserved_[4];
} weft_hubs_opts_t;

/* Starts n threads, each running a hub (n = 0: one per CPU the process may use, its affinity
 * mask), and returns once all of them run: 0, the set in *hubs. Errors: WEFT_EINVAL (hubs
 * NULL, n > WEFT_HUBS_MAX, non-zero reserved words), WEFT_ENOMEM, WEFT_EAGAIN (no thread);
 * then *hubs is NULL and every thread already started has ended.
 * n: the number of hubs, at most WEFT_HUBS_MAX; 0: one per CPU the process may use.
 * opts: options (weft_hubs_opts_t); NULL: the defaults.
 * hubs: receives the set on success (stop with weft_hubs_stop, free with weft_hubs_release),
 *       NULL on failure.
 * Returns 0 (all threads run), WEFT_EINVAL (hubs NULL, n > WEFT_HUBS_MAX, non-zero reserved
 * words), WEFT_ENOMEM (also: a hub could not be set up on its thread), WEFT_EAGAIN (no thread),
 * or another pthread_create error as a WEFT_E* code. */
WEFT_EXTERN WEFT_NODISCARD int weft_hubs_start(size_t n, const weft_hubs_opts_t *opts,
                                               weft_hubs_t **hubs);

/* Spawns fn(arg) as a coroutine on hub number `hub` (0 .. count-1), or on the least loaded
 * one with WEFT_HUBS_ANY; opts and co as for weft_co_spawn (co NULL: detached). The
 * coroutine is READY and first runs when its hub gets to it (at once when that hub is idle).
 * Its stack is mapped on its hub: when that fails (out of memory or address space) the
 * coroutine ends there without running (state DONE), as one canceled before it started.
 * Errors: WEFT_EINVAL (hubs or fn NULL, hub out of range, bad opts), WEFT_ENOMEM,
 * WEFT_ESHUTDOWN (weft_hubs_stop has begun), WEFT_EBROKEN (in a forked child); then *co is
 * NULL and nothing is left behind.
 * hubs: the set.
 * hub: the hub's number, 0 .. weft_hubs_count - 1, or WEFT_HUBS_ANY (the least loaded).
 * fn: the coroutine's function; not NULL.
 * arg: passed to fn as is.
 * opts: as for weft_co_spawn; NULL: the defaults.
 * co: NULL: detached; else receives a handle (one reference, weft_co_release it) on success,
 *     NULL on failure.
 * Returns 0, WEFT_EINVAL (hubs or fn NULL, hub out of range, bad opts), WEFT_ENOMEM,
 * WEFT_ESHUTDOWN (weft_hubs_stop has begun), WEFT_EBROKEN (in a forked child). */
WEFT_EXTERN WEFT_NODISCARD int weft_hubs_spawn(weft_hubs_t *hubs, int hub, void (*fn)(void *arg),
                                               void *arg, const weft_co_opts_t *opts,
                                               weft_co_t **co);

/* The number of hubs.
 * hubs: the set.
 * Returns its number of hubs (n of weft_hubs_start, still in a forked child); 0 for NULL. */
WEFT_EXTERN size_t weft_hubs_count(const weft_hubs_t *hubs);

/* A snapshot of hub number `hub`'s load in *load: its coroutines spawned and not yet ended
 * (those waiting to start included); 0 once weft_hubs_stop has begun, and in a forked
 * child.
 * hubs: the set.
 * hub: the hub's number, 0 .. weft_hubs_count - 1.
 * load: receives the hub's count of coroutines spawned and not yet ended.
 * Returns 0, WEFT_EINVAL (hubs or load NULL, hub out of range). */
WEFT_EXTERN int weft_hubs_load(weft_hubs_t *hubs, size_t hub, size_t *load);

/* Stops the hubs: from now on weft_hubs_spawn returns WEFT_ESHUTDOWN; every hub waits up to
 * `timeout` seconds (the rules of weft/core.h) for its coroutines to return (the ones they
 * spawn meanwhile too), then cancels those still running and runs them to their end (a
 * coroutine that ignores the cancel holds this up); then the threads end and are joined.
 * 0 (a second stop waits for the first, then 0). The wait parks a coroutine caller and is
 * not ended by its cancel. Errors: WEFT_EINVAL (NULL, timeout NaN), WEFT_EDEADLK (called from
 * a coroutine on one of these hubs; nothing done), WEFT_EBROKEN (in a forked child).
 * hubs: the set.
 * timeout: seconds each hub waits for its coroutines before canceling them; WEFT_FOREVER
 *          waits without a limit, 0 cancels at once.
 * Returns 0 (stopped; also for a second stop, once the first is done), WEFT_EINVAL (hubs
 * NULL, timeout NaN), WEFT_EDEADLK (called from a coroutine on one of these hubs; nothing
 * done), WEFT_EBROKEN (in a forked child). */
WEFT_EXTERN int weft_hubs_stop(weft_hubs_t *hubs, double timeout);

/* Frees the hubs (the pair of weft_hubs_start). In a forked child: frees it, stopped or not.
 * hubs: the set; not used after a 0.
 * Returns 0 (freed), WEFT_EINVAL (hubs NULL), WEFT_EBUSY (not stopped yet: stop first;
 * nothing happened). */
WEFT_EXTERN int weft_hubs_release(weft_hubs_t *hubs);

/* ---- the watchdog ------------------------------------------------------------------------ */

/* Starts a process-wide watchdog thread that calls report(name, seconds, arg) (default: a line
 * on stderr) for a coroutine that has run `threshold` seconds without switching, once per
 * hog. Also enabled by WEFT_WATCHDOG=<seconds> in the environment at the first spawn (read as
 * secure_getenv reads it: ignored in a setuid/setgid or file-capability program). Errors:
 * WEFT_EINVAL (threshold <= 0 or NaN), WEFT_EALREADY (running), WEFT_EAGAIN (no thread),
 * WEFT_ENOMEM (its fork handler could not be registered).
 * report runs on the watchdog thread holding none of weft's locks: it may use any of weft
 * (start threads, create and end hubs, block) except weft_watchdog_start/stop; while it runs,
 * sampling pauses. `name` is a copy, valid during the call. Sampling never reads a coroutine
 * that is gone: a hub whose coroutine ended waits (a few instructions) for a sample in
 * progress before the coroutine is freed. After fork the watchdog does not run in the child
 * (threads are not copied); weft_watchdog_start there starts the child's own.
 * threshold: seconds a coroutine may run without switching before it is reported; above 0,
 *            at most 1e6.
 * report: called once per hog with the coroutine's name, the seconds it has run and arg;
 *         NULL: a line on stderr.
 * arg: passed to report as is (kept until weft_watchdog_stop).
 * Returns 0 (started), WEFT_EINVAL (threshold <= 0, NaN or above 1e6), WEFT_EALREADY (running),
 * WEFT_EAGAIN (no thread), WEFT_ENOMEM (its fork handler could not be registered). */
WEFT_EXTERN int weft_watchdog_start(double threshold,
                                    void (*report)(const char *name, double seconds, void *arg),
                                    void *arg);

/* Stops the watchdog.
 * Returns 0 (stopped), or WEFT_EALREADY when it was not running. */
WEFT_EXTERN int weft_watchdog_stop(void);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_CORO_H */
