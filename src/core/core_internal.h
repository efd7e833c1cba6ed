/*
 * core_internal.h — what every layer of weft uses privately: the allocation wrappers,
 * container_of, branch hints, the CPU pause, the fork and exit registry, the futex wrapper, the
 * small internal mutex and the intrusive list (list.h). Internal names are weft__*; none of
 * them is exported from libweft.so.
 */
#ifndef WEFT_CORE_INTERNAL_H
#define WEFT_CORE_INTERNAL_H

#include "list.h"
#include "weft/core.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define weft__likely(x)   __builtin_expect(!!(x), 1)
#define weft__unlikely(x) __builtin_expect(!!(x), 0)
/* initial-exec TLS: one load on hot paths, even from libweft.so (a few bytes of the static
 * TLS surplus glibc reserves for exactly this). */
#define WEFT__TLS                             __attribute__((tls_model("initial-exec"))) _Thread_local
#define weft__container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

void *weft__malloc(size_t size);
void *weft__calloc(size_t count, size_t size);
void *weft__realloc(void *ptr, size_t size);
void weft__free(void *ptr);

/* One iteration of a spin-wait: tells the core (and an SMT sibling) that we are spinning. */
static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* THE converter: an errno value as a weft code. One of WEFT_ERRNO_MAP keeps its number
 * (negated, libuv-style); any other value (0 and negatives included) is WEFT_ESYSTEM, so no
 * raw number without a name ever reaches a caller. Every errno in src/ goes through here. */
int weft__errno(int e);

/* Whether a timeout (not NaN: callers refuse it first) asks for a poll only: 0, or any
 * negative value other than WEFT_FOREVER (an expired deadline). The fast paths of blocking
 * calls ask this instead of comparing with 0, so every non-forever negative polls too. */
static inline bool weft__timeout_polls(double timeout)
{
    return timeout <= 0 && timeout != WEFT_FOREVER;
}

/* ---- deadlines ----------------------------------------------------------------------------
 * Inside weft a deadline is absolute CLOCK_MONOTONIC nanoseconds in an int64_t; INT64_MAX is
 * never. The public weft_deadline_t (opaque) wraps one, converted by the same functions. */
#define WEFT_NO_DEADLINE INT64_MAX

/* The timeout → deadline conversion of weft/core.h (weft_deadline_after): WEFT_FOREVER →
 * WEFT_NO_DEADLINE, 0 or negative → now, positive → now + timeout saturating to
 * WEFT_NO_DEADLINE; WEFT_EINVAL for NaN. deadline must not be NULL. */
int weft__deadline_ns(double timeout, int64_t *deadline);

/* weft__deadline_ns for weft's own blocking calls, with WEFT_FOREVER, their common case,
 * answered inline. */
static inline int weft__deadline(double timeout, int64_t *deadline)
{
    if (timeout == WEFT_FOREVER) {
        *deadline = WEFT_NO_DEADLINE;
        return 0;
    }
    return weft__deadline_ns(timeout, deadline);
}

/* Seconds left until deadline: WEFT_FOREVER for WEFT_NO_DEADLINE, 0 once it has passed
 * (weft_deadline_remaining of weft/core.h). */
double weft__deadline_remaining(int64_t deadline);

/* The deadline `sec` seconds plus `nsec` nanoseconds from now, for the libc-style integer
 * timeouts the monkey patch receives (poll's ms, select's timeval, SO_RCVTIMEO): saturates to
 * WEFT_NO_DEADLINE instead of overflowing; a negative total is now (already passed). Which
 * integer value means "forever" is the caller's libc rule, decided before it asks. */
int64_t weft__deadline_after(int64_t sec, int64_t nsec);

/* getenv as glibc's secure_getenv answers it: NULL when the process runs in secure-execution
 * mode (the kernel's AT_SECURE: a setuid or setgid program, file capabilities, an LSM's
 * transition), so the environment of an unprivileged user cannot reach weft's settings inside
 * a privileged program. Every environment variable weft reads goes through it. */
const char *weft__getenv(const char *name);

/* ---- names and observing (names.c) ------------------------------------------------------
 * Names programs give objects (weft_lock_set_name and the others): a side table keyed by the
 * object's address, so the public objects keep their sizes. Longest name kept: WEFT__NAME_MAX
 * - 1 bytes (longer ones are cut). From any thread; fork-safe (the table's lock is held
 * across fork).
 *   weft__name_set:  obj's name becomes a copy of name (control characters and ' as '?');
 *                    NULL or "" removes it. 0, WEFT_EINVAL
 *                    (obj NULL), WEFT_ENOMEM (nothing changed).
 *   weft__name_get:  copies obj's name into buf (n bytes, always terminated); false: none.
 *   weft__name_drop: forgets obj's name (its destroy calls it; one relaxed load while no name
 *                    was ever set). */
#define WEFT__NAME_MAX 48
int weft__name_set(const void *obj, const char *name);
bool weft__name_get(const void *obj, char *buf, size_t n);
void weft__name_drop(const void *obj);
/* Tests only: frees the table. */
void weft__names_reset(void);
/* A destroy's outcome rc, obj's name dropped when it succeeded (rc 0). */
static inline int weft__name_dropped(const void *obj, int rc)
{
    if (rc == 0) weft__name_drop(obj);
    return rc;
}

/* What the process observes beyond what the waiting core always stores (bits, relaxed):
 * WEFT__OBSERVE_SINCE stamps when each park began (the dump's "for how long", the deadlock
 * watchdog's threshold); WEFT__OBSERVE_OWNERS records who takes each Lock (its owner_:
 * "held by"); both set by weft_debug_observe (and so by the watchdog). WEFT__OBSERVE_TRACE
 * while a trace runs. Off, each costs one relaxed load where it would record. */
enum { WEFT__OBSERVE_SINCE = 1u, WEFT__OBSERVE_TRACE = 2u, WEFT__OBSERVE_OWNERS = 4u };
extern _Atomic uint32_t weft__observing;
static inline bool weft__observe(uint32_t bit)
{
    return weft__unlikely(atomic_load_explicit(&weft__observing, memory_order_relaxed) & bit);
}

/* The deadlock report a hub prints when nothing can wake its coroutines (src/observe's,
 * set at load; NULL while the observe code is not linked in). Called on the hub's thread
 * before its waits end with WEFT_EDEADLK. */
extern void (*weft__deadlock_report_hook)(void);

/* ---- the trace's hook (src/observe/trace.c, include/weft/trace.h) ----------------------
 * The layers below observe/ report what a trace records through one function pointer, set by
 * the trace while one runs (never an upward include). An emit point costs one relaxed load
 * while no trace runs: `if (weft__observe(WEFT__OBSERVE_TRACE)) { ... weft__trace_emit(&ev); }`.
 * Times are CLOCK_MONOTONIC ns (weft_time_monotonic_ns). The sink copies what it keeps: `name`
 * need only live for the call.
 *   RUN         a coroutine ran on this thread from t0 to t1; name: the coroutine's
 *   PARK        this context parked from t0 to t1 on (on, obj) (wait_internal.h's weft__on_t);
 *               kind: WEFT__CTX_*; id: the ctx's address; flow: the waker's flow id, 0: none
 *               (timed out, canceled); arg: the park's outcome (0 woken, or a WEFT_E* code)
 *   WAKE        this thread woke a waiter parked on (on, obj) at t0; flow: its id
 *   TASK_SUBMIT a pool task was queued (id: its trace id, weft__trace_id); name: the pool's kind
 *   TASK_RUN    it ran on this thread from t0 to t1
 *   TASK_DONE   it became final; arg: its error code (0: a result), flow 1: cancelled
 *   PROC_START  a child process started; id: its pid; name: the process's name
 *   PROC_EXIT   it was reaped; id: its pid; arg: its status (exit code, or -signal) */
enum {
    WEFT__TR_RUN = 1,
    WEFT__TR_PARK,
    WEFT__TR_WAKE,
    WEFT__TR_TASK_SUBMIT,
    WEFT__TR_TASK_RUN,
    WEFT__TR_TASK_DONE,
    WEFT__TR_PROC_START,
    WEFT__TR_PROC_EXIT,
};
typedef struct weft__trace_ev {
    uint8_t type; /* WEFT__TR_* */
    uint8_t kind; /* PARK: WEFT__CTX_* */
    uint8_t on;   /* PARK, WAKE: weft__on_t */
    int64_t t0, t1;
    uint64_t id;
    uint64_t flow;
    const void *obj;
    int64_t arg;
    const char *name;
} weft__trace_ev_t;
extern void (*_Atomic weft__trace_sink)(const weft__trace_ev_t *ev);
/* Calls the sink, if a trace still runs (it may have stopped since the caller looked). */
static inline void weft__trace_emit(const weft__trace_ev_t *ev)
{
    /* Relaxed: the sink is a function of the library, set once and never freed. */
    void (*sink)(const weft__trace_ev_t *) =
        atomic_load_explicit(&weft__trace_sink, memory_order_relaxed);
    if (sink) sink(ev);
}
/* A fresh id for a flow or a task (never 0). */
uint64_t weft__trace_id(void);

/* The auxiliary-vector lookup weft__getenv asks for AT_SECURE: getauxval. A seam for tests
 * only (an unprivileged test cannot start a secure-execution process): they point it at a
 * fake before starting threads and restore it after. */
extern unsigned long (*weft__getauxval)(unsigned long type);

/* ---- checked sizes ------------------------------------------------------------------------
 * Every size computed from a caller's length, or from a value read from shared memory or a
 * peer, goes through these: true and *out = a + b (a * b), or false when the result is not
 * the size of any possible object: it does not fit a size_t, or exceeds PTRDIFF_MAX (C's
 * bound on object sizes; malloc refuses more, and sanitizers abort on it). Then *out is
 * unspecified and must not be used. */
static inline bool weft__size_add(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out) && *out <= (size_t)PTRDIFF_MAX;
}

static inline bool weft__size_mul(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out) && *out <= (size_t)PTRDIFF_MAX;
}

/* Number of CPUs online, read once (1 means spinning never pays). */
int weft__ncpu(void);

/* Threads of weft's own that are parked and can wake no waiter until a weft call wakes them
 * first (the process layer's forker while it has no request). A hub's deadlock probe does not
 * count them as threads that could still wake its coroutines. Changed only by their owners. */
extern _Atomic int weft__idle_helpers;

/* ---- debug mode (debug.c) ----------------------------------------------------------------
 * Built with -DWEFT_DEBUG=ON (preset `debug`), weft reports misuse it can see instead of
 * corrupting memory silently: one line on stderr naming the call and the object, then abort().
 * Without WEFT_DEBUG every check macro below is empty: nothing on any path.
 *
 * Caller-allocated objects (Lock, Event, Timer, ...) keep a magic word in the last word of
 * their reserved tail (WEFT__LAST(obj->reserved_)): init stamps the type's WEFT__MAGIC, a
 * successful destroy writes WEFT__OBJECT_POISON, and every call checks it (0, a static
 * initializer's, is accepted and stamped by the first call that may write the object).
 * Handles (threads, futures, queues, ...) embed a weft__handle_t: `magic` while the memory is
 * live, WEFT__HANDLE_FREED once the last reference is gone; `user_refs` counts the references
 * the program holds (given by create/start/spawn/retain and the calls that hand one out,
 * taken by _release): a release with none left is a double release. Internal references are
 * never counted there. A debug build keeps released handles in a quarantine (debug.c), so a
 * second release reads valid, poisoned memory. */

/* Writes "weft: misuse: <call>(<obj>): <what>" to stderr and aborts. In every build (the
 * checks that need no debug build may use it too). */
_Noreturn void weft__misuse(const char *call, const void *obj, const char *what);

/* The magic of a caller-allocated object (64 bits: "weft" then the type's id) and of a handle
 * (32 bits); the poisons no init and no live handle can hold. */
#define WEFT__MAGIC(id)        (UINT64_C(0x7765667400000000) | (uint64_t)(id))
#define WEFT__OBJECT_POISON    UINT64_C(0x7765667464656164) /* "weftdead" */
#define WEFT__HANDLE_MAGIC(id) (UINT32_C(0x57460000) | (uint32_t)(id))
#define WEFT__HANDLE_FREED     UINT32_C(0x5746dead)
#define WEFT__LAST(array)      ((array)[sizeof(array) / sizeof((array)[0]) - 1])

enum { /* object ids */
       WEFT__ID_LOCK = 1,
       WEFT__ID_RLOCK,
       WEFT__ID_SEMAPHORE,
       WEFT__ID_EVENT,
       WEFT__ID_CONDITION,
       WEFT__ID_BARRIER,
       WEFT__ID_TIMER,
       WEFT__ID_VALUE,
};
enum { /* handle ids */
       WEFT__ID_THREAD = 1,
       WEFT__ID_FUTURE,
       WEFT__ID_CO,
       WEFT__ID_PROCESS,
       WEFT__ID_CONN,
       WEFT__ID_QUEUE,
       WEFT__ID_MPQUEUE,
       WEFT__ID_EXECUTOR,
       WEFT__ID_GROUP,
       WEFT__ID_AS_COMPLETED,
       WEFT__ID_THREAD_LOCAL,
       WEFT__ID_SERVER,
       WEFT__ID_HUBS,
};

typedef struct weft__handle {
    _Atomic uint32_t magic;
    _Atomic uint32_t user_refs;
} weft__handle_t;

/* Sets a handle's header, in every build (a private struct: two stores). Inline: the MPI pool,
 * a library of its own, calls it too. */
static inline void weft__handle_init(weft__handle_t *hd, uint32_t id, uint32_t user_refs)
{
    atomic_init(&hd->magic, WEFT__HANDLE_MAGIC(id));
    atomic_init(&hd->user_refs, user_refs);
}

#ifdef WEFT_DEBUG
/* The object's slot against magic; stamp: a 0 slot becomes magic (false for const queries). */
void weft__object_check(const char *call, const void *obj, uint64_t *slot, uint64_t magic,
                        const char *noun, bool stamp);
/* The handle's magic; release: also takes one of user_refs (none left: released twice). */
void weft__handle_check(const char *call, const void *h, weft__handle_t *hd, uint32_t magic,
                        const char *noun, bool release);
/* A handle's memory (zeroed; from libc, outside the allocator hook) and its last release:
 * poisoned and quarantined. */
void *weft__handle_alloc(size_t size);
void weft__handle_free(void *h, weft__handle_t *hd);
static inline void *weft__handle_calloc(size_t size)
{
    return weft__handle_alloc(size);
}

#define WEFT__OBJ_INIT(o, id) (WEFT__LAST((o)->reserved_) = WEFT__MAGIC(id))
#define WEFT__OBJ_CHECK(o, id, noun)                                                               \
    ((o) ? weft__object_check(__func__, (o), (uint64_t *)&WEFT__LAST((o)->reserved_),              \
                              WEFT__MAGIC(id), noun, true)                                         \
         : (void)0)
#define WEFT__OBJ_PEEK(o, id, noun)                                                                \
    ((o) ? weft__object_check(__func__, (o), (uint64_t *)&WEFT__LAST((o)->reserved_),              \
                              WEFT__MAGIC(id), noun, false)                                        \
         : (void)0)
/* A destroy's result rc, the object poisoned when it is 0 (destroyed). Relaxed, as every access
 * to the magic words and to user_refs: each is only compared or counted, and orders nothing. */
static inline int weft__object_destroyed(uint64_t *slot, int rc)
{
    if (rc == 0) __atomic_store_n(slot, WEFT__OBJECT_POISON, __ATOMIC_RELAXED);
    return rc;
}
#define WEFT__OBJ_DESTROYED(o, rc)                                                                 \
    weft__object_destroyed((uint64_t *)&WEFT__LAST((o)->reserved_), (rc))
#define WEFT__HANDLE_CHECK(h, id, noun)                                                            \
    ((h) ? weft__handle_check(__func__, (h), (weft__handle_t *)&(h)->hd, WEFT__HANDLE_MAGIC(id),   \
                              noun, false)                                                         \
         : (void)0)
#define WEFT__HANDLE_RELEASE(h, id, noun)                                                          \
    ((h) ? weft__handle_check(__func__, (h), (weft__handle_t *)&(h)->hd, WEFT__HANDLE_MAGIC(id),   \
                              noun, true)                                                          \
         : (void)0)
#define WEFT__HANDLE_GIVE(h)                                                                       \
    ((h) ? (void)atomic_fetch_add_explicit(&(h)->hd.user_refs, 1, memory_order_relaxed) : (void)0)
#else
/* Without WEFT_DEBUG: weft__malloc and weft__calloc(1, size), and weft__free. */
static inline void *weft__handle_alloc(size_t size)
{
    return weft__malloc(size);
}
static inline void *weft__handle_calloc(size_t size)
{
    return weft__calloc(1, size);
}
static inline void weft__handle_free(void *h, weft__handle_t *hd)
{
    (void)hd;
    weft__free(h);
}
#define WEFT__OBJ_INIT(o, id)             ((void)0)
#define WEFT__OBJ_CHECK(o, id, noun)      ((void)0)
#define WEFT__OBJ_PEEK(o, id, noun)       ((void)0)
#define WEFT__OBJ_DESTROYED(o, rc)        (rc)
#define WEFT__HANDLE_CHECK(h, id, noun)   ((void)0)
#define WEFT__HANDLE_RELEASE(h, id, noun) ((void)0)
#define WEFT__HANDLE_GIVE(h)              ((void)0)
#endif

/* ---- fork hooks and exit rules (fork.c) ----------------------------------------------------
 * Every layer's part in a fork, and in the end of a process, goes through here: no layer calls
 * pthread_atfork or atexit itself. The layers, bottom first; a layer's hooks run in this order
 * or its reverse, as said below. */
enum {
    WEFT__LAYER_CORE,
    WEFT__LAYER_WAIT,
    WEFT__LAYER_THREAD,
    WEFT__LAYER_SYNC,
    WEFT__LAYER_QUEUE,
    WEFT__LAYER_CORO,
    WEFT__LAYER_IO,
    WEFT__LAYER_HOOK,
    WEFT__LAYER_PROCESS,
    WEFT__LAYER_EXECUTOR,
};

/* One layer's (or one file's) fork hooks; any of them may be NULL.
 *   prepare  before fork, in the forking thread: take the locks the child must find consistent.
 *            Run top layer first.
 *   parent   after fork, in the parent: release them. Run bottom layer first.
 *   child    after fork, in the child (its only thread; allocate nothing that can fail):
 *            forget the threads that did not survive, reset the locks. Bottom layer first.
 *   fresh    in a child that is to run one function alone (weft_process_start's child), after
 *            `child`, before the function: drop what the forking thread was doing (its
 *            coroutines, its task, its cancel request). Top layer first (weft__fork_fresh). */
typedef struct weft__fork_hooks {
    int rank; /* WEFT__LAYER_* */
    void (*prepare)(void);
    void (*parent)(void);
    void (*child)(void);
    void (*fresh)(void);
} weft__fork_hooks_t;

/* Registers h (static storage; registering it again does nothing). 0, or WEFT_ENOMEM (never
 * for hooks with only `fresh`). Not under a lock that a prepare hook takes (a fork on another
 * thread holds the registry's lock while it runs them). */
int weft__fork_register(const weft__fork_hooks_t *h);

/* In a forked child about to run one function alone: runs every fresh hook, top layer first. */
void weft__fork_fresh(void);

/* A layer's exit rule (Python's: join the non-daemon threads, terminate the daemon children
 * and join the others, give the thread pools their exit timeout). Run at exit() by one atexit
 * handler, and by weft_process_start's child when its function returns; top layer first. */
typedef struct weft__exit_rule {
    int rank; /* WEFT__LAYER_* */
    void (*run)(void);
} weft__exit_rule_t;

/* Registers r (static storage; registering it again does nothing). 0, or WEFT_ENOMEM. */
int weft__exit_register(const weft__exit_rule_t *r);

/* Runs every registered exit rule once, top layer first (rules registered meanwhile too). */
void weft__exit_run(void);

/* ---- futex ------------------------------------------------------------------------------ */

/* Sleeps while *word == expect, until woken or the monotonic deadline passes. Returns 0
 * (woken, spurious wake-up, value already changed, or EINTR: callers re-check their word) or
 * WEFT_ETIMEDOUT. `shared` selects a process-shared futex (no FUTEX_PRIVATE_FLAG). */
int weft__futex_wait(_Atomic uint32_t *word, uint32_t expect, int64_t deadline, bool shared);

/* Wakes at most n sleepers on word (INT32_MAX for all). The word may already be gone (a
 * waiter that saw its wake-up and returned): waking a stale address is harmless. */
void weft__futex_wake(_Atomic uint32_t *word, int n, bool shared);

/* ---- the internal mutex ------------------------------------------------------------------
 * A three-state futex lock (0 free, 1 locked, 2 locked with sleepers; Drepper, "Futexes are
 * tricky") that guards weft's own short critical sections: a wait queue, a registry. It is
 * never held across a park, so a coroutine may take it too. Not recursive; zero is unlocked. */
typedef struct weft__mutex {
    _Atomic uint32_t state;
} weft__mutex_t;

#define WEFT__MUTEX_INIT                                                                           \
    {                                                                                              \
        0                                                                                          \
    }

void weft__mutex_lock_slow(weft__mutex_t *m);
void weft__mutex_unlock_slow(weft__mutex_t *m);

/* Whether the process has one thread: glibc's __libc_single_threaded, set false by the first
 * pthread_create before the new thread runs and never set back (so "true" is never stale; a
 * forked child keeps "false"). While it holds, state no other thread can reach needs no atomic
 * read-modify-write nor lock (sync_internal.h's fast paths, a hub's live list). With another
 * libc weft__single_threaded_flag points at a flag that is always 0 (sys.c). A seam for tests:
 * a case running on one thread points it at a flag of its own set to 1, and restores it. */
extern __attribute__((visibility("hidden"))) const char *weft__single_threaded_flag;

static inline bool weft__single_threaded(void)
{
    return *weft__single_threaded_flag != 0;
}

static inline void weft__mutex_lock(weft__mutex_t *m)
{
    uint32_t expect = 0;
    if (weft__likely(atomic_compare_exchange_weak_explicit(
            &m->state, &expect, 1, memory_order_acquire, memory_order_relaxed)))
        return;
    weft__mutex_lock_slow(m);
}

/* Like weft__mutex_lock, for a lock that is the one hot line of a busy object (a queue): a
 * contended caller backs off exponentially (4, 8, ... 256 pauses; it tries the CAS only after
 * a plain read saw the lock free) so the owner keeps the line for a run of operations, then
 * sleeps as weft__mutex_lock does. Unfair on purpose. */
void weft__mutex_lock_backoff_slow(weft__mutex_t *m);

static inline void weft__mutex_lock_backoff(weft__mutex_t *m)
{
    uint32_t expect = 0;
    if (weft__likely(atomic_compare_exchange_weak_explicit(
            &m->state, &expect, 1, memory_order_acquire, memory_order_relaxed)))
        return;
    weft__mutex_lock_backoff_slow(m);
}

static inline void weft__mutex_unlock(weft__mutex_t *m)
{
    if (weft__likely(atomic_exchange_explicit(&m->state, 0, memory_order_release) == 1)) return;
    weft__mutex_unlock_slow(m);
}

#endif /* WEFT_CORE_INTERNAL_H */
