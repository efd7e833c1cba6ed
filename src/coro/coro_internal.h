/*
 * coro_internal.h — the coroutine layer inside: coroutine descriptors, the per-thread hub
 * (scheduler), stacks, and the seam through which the io layer plugs its poller in.
 *
 * The hub has no stack of its own (libmill's design): a coroutine that parks picks the next
 * ready coroutine and switches straight to it; when none is ready it runs the hub's loop
 * itself — remote wakes, expired timers, then an idle wait (a futex, or the poller once the
 * io layer installed one) — until one is. So a wake costs one switch, not two.
 *
 * Waking (the waiting core's parker, weft__parker_t): each coroutine has a permit word
 * `wake`: 0 running, 1 parked, 2 permit given. unpark exchanges in 2 and, only when it saw 1,
 * queues the coroutine: locally when called on the hub's thread, else on the hub's remote
 * stack (lock-free push) and wakes the hub if it sleeps. A parked coroutine runs again only
 * through that queueing, so it is never queued twice, and a late permit only makes a later
 * park look at its waiter's state once more.
 *
 * The hub's sleep word `sleeping` (0 awake, 1 in a futex wait, 2 in the poller) is the other
 * half of the remote protocol: the hub stores 1 or 2 and then looks at the remote stack; a
 * remote waker pushes and then exchanges in 0, waking the hub the way the old value says.
 * One of the two always sees the other (both sequentially consistent).
 */
#ifndef WEFT_CORO_INTERNAL_H
#define WEFT_CORO_INTERNAL_H

#include "../wait/wait_internal.h"
#include "ctx.h"
#include "weft/coro.h"

#if defined(__SANITIZE_ADDRESS__)
#define WEFT__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT__ASAN 1
#endif
#endif
#ifndef WEFT__ASAN
#define WEFT__ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT__TSAN 1
#endif
#endif
#ifndef WEFT__TSAN
#define WEFT__TSAN 0
#endif

#if WEFT__ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif
#if WEFT__TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_set_fiber_name(void *fiber, const char *name);
#endif

/* ---- stacks ------------------------------------------------------------------------------ */

typedef struct weft__stack {
    void *base;   /* the mapping (guard page included) */
    size_t total; /* its length */
    void *lo;     /* the usable stack: [lo, lo + size) */
    size_t size;
    int guard; /* 0 none, 1 guard region (madvise), 2 mprotect'ed page */
    unsigned vg_id;
} weft__stack_t;

size_t weft__stack_round(size_t size);
/* carve_it: a default stack, which may come from the thread's chunk (stack.c, "Carving"). */
int weft__stack_alloc(weft__stack_t *s, size_t size, int guard, bool carve_it);
void weft__stack_reset(weft__stack_t *s); /* before reuse */
void weft__stack_free(weft__stack_t *s);
/* At a hub's end, on its thread: unmaps what is left of the thread's chunk of default stacks
 * (stack.c, "Carving"); the stacks carved from it stay until each is freed. */
void weft__stack_carve_release(void);
/* Tests only (the soak, tests/scenario/soak_http.c): the coroutine stacks of the process
 * mapped now — those of live coroutines, of ended ones not yet released, and those hubs keep
 * for reuse. From any thread. */
long weft__stack_count(void);
/* Tests only: pretend the kernel has no guard regions (MADV_GUARD_INSTALL) from now on, and
 * set the budget of default stacks guarded by mprotect (see stack.c; -1: back to the one
 * vm.max_map_count gives). Call with no coroutine stack being allocated at the time. */
void weft__stack_test_no_guard_regions(long budget);

/* The overflow report (stack.c's design note). At a hub's start, on its thread: installs the
 * process's SIGSEGV handler if it is not yet and may be, and while it is, gives the thread an
 * alternate signal stack when it has none; returns that stack, or NULL when it gave none
 * (nothing to undo; never an error: an overflow then dies unnamed). At the hub's end, on its
 * thread: weft__stack_guard_stop removes and unmaps the stack it was given (NULL: nothing). */
void *weft__stack_guard_start(void);
void weft__stack_guard_stop(void *altstack);

/* ---- coroutines -------------------------------------------------------------------------- */

typedef struct weft__hub weft__hub_t;

typedef struct weft__local {
    const weft_co_key_t *key;
    void *value;
} weft__local_t;

struct weft_co {
    weft__ctx_t ctx;        /* saved registers while not running */
    weft__hub_t *hub;       /* its thread's hub, for life */
    weft__waitctx_t wctx;   /* its waiting context: parker = the hub's */
    _Atomic uint32_t wake;  /* the permit: 0 running, 1 parked, 2 given */
    _Atomic uint32_t state; /* weft_co_state_t */
    _Atomic uint32_t refs;
    weft__handle_t hd;       /* debug mode: magic, the program's references (core_internal.h) */
    weft__list_node_t ready; /* the hub's ready queue */
    weft_co_t *next;         /* the hub's remote stack */
    weft__list_node_t alln;  /* on the hub's list of live coroutines (its all_lock) */
    uint64_t id;             /* the task snapshot's number: N of "Coroutine-N" */
    void (*fn)(void *arg);
    void *arg;
    weft__stack_t stack;
    weft_waitq_t joiners;      /* its lock also guards `state` becoming DONE */
    weft__waiter_t *parked_on; /* the waiter of its current park */
    size_t timer;              /* index in the hub's timer heap, or SIZE_MAX */
    weft__local_t *locals;
    size_t nlocals, caplocals;
    void (*unrun)(void *arg); /* called with arg instead of fn when it ends unrun (coro_shared.h) */
    struct weft_group *group; /* the group it counts in, if any */
    weft__list_node_t gnode;  /* on its group's member list (under the group's lock) */
#if WEFT__ASAN
    void *asan_fake;
#endif
#if WEFT__TSAN
    void *tsan_fiber;
#endif
    char name[WEFT_CO_NAME_MAX];
};

/* ---- the io seam ------------------------------------------------------------------------- */

/* Installed by the io layer in a hub on the hub's thread (weft__hub_set_io).
 *   poll:    waits for IO readiness until the deadline (0: do not block) and wakes the
 *            waiters of the ready fds; returns early when notify is called
 *   notify:  from any thread: makes a running or coming poll return
 *   busy:    whether any coroutine waits on an fd (the deadlock check)
 *   destroy: at hub teardown, on the hub's thread */
typedef struct weft__hub_io {
    void (*poll)(void *io, int64_t deadline);
    void (*notify)(void *io);
    bool (*busy)(void *io);
    void (*destroy)(void *io);
} weft__hub_io_t;

/* The calling thread's hub (inline for the monkey patch's fast path), NULL without one. */
extern WEFT__TLS weft__hub_t *weft__tls_hub;

/* The calling thread's hub, or NULL when it has none. */
weft__hub_t *weft__hub_current(void);
/* The calling thread's hub, created when missing (NULL: out of memory). */
weft__hub_t *weft__hub_get(void);
/* The hub that parks the caller: its thread's hub when the caller is a coroutine (or a root
 * context whose thread runs coroutines), NULL when the caller parks as a plain thread. How the
 * io layer, which implements a coroutine's wait for an fd, knows which poller to use. */
weft__hub_t *weft__hub_parking(void);
void *weft__hub_io(weft__hub_t *hub);
void weft__hub_set_io(weft__hub_t *hub, const weft__hub_io_t *ops, void *io);

/* ---- what hub.c, group.c and watchdog.c share ------------------------------------------- */

/* group.c: a member of co->group ended (the hub's thread, as co ends): it leaves the group's
 * list, its slot goes to a waiting spawner (or back to the group) and the group's reference
 * to co is dropped. */
void weft__group_left(weft_co_t *co);

/* watchdog.c: starts the watchdog when WEFT_WATCHDOG=<seconds> is set; the first spawn calls
 * it, later calls do nothing. */
void weft__watchdog_from_env(void);

/* hub.c, for the watchdog: calls fn on every hub of the process under the hubs' registry lock
 * (a hub cannot go away meanwhile; fn must not create or destroy one). */
void weft__hubs_visit(void (*fn)(weft__hub_t *hub, void *arg), void *arg);

/* hub.c, for the task snapshot (src/observe), from any thread inside weft__hubs_visit:
 *   weft__hub_visit_cos: calls fn on each live spawned coroutine of hub (newest first) under
 *     the hub's live-list lock (a coroutine leaves the list under it before it ends, so each
 *     is alive while fn runs; its name, hub and id were set before it joined). fn must not
 *     block nor touch the hub.
 *   weft__hub_tid: the kernel id of the hub's thread.
 *   weft__hub_root: the thread's own context's record (its wctx is unused: the thread parks
 *     on weft__thread_ctx). */
void weft__hub_visit_cos(weft__hub_t *hub, void (*fn)(weft_co_t *co, void *arg), void *arg);
int weft__hub_tid(const weft__hub_t *hub);
weft_co_t *weft__hub_root(weft__hub_t *hub);

/* hub.c, for the watchdog: the hub's switch count in *switches, and whether it runs a
 * coroutine with others waiting (not idle, not alone) while the count did not move during
 * the sample; the running coroutine's name is copied into buf (n bytes). From any thread,
 * inside weft__hubs_visit. */
bool weft__hub_sample(weft__hub_t *hub, uint64_t *switches, char *buf, size_t n);

/* hub.c, for tests/support's teardown of every case (which declares it itself) and for hubs.c: from
 * the thread's root context, destroys the calling thread's hub now, as its thread's end would
 * (its coroutines canceled and run to their end, its poller closed), so that a case leaves no
 * thread, fd or allocation behind. Does nothing without a hub, or from a coroutine. */
void weft__hub_shutdown(void);

/* hub.c, for hubs.c (a coroutine spawned from another thread onto `hub`):
 *   weft__co_prepare: on the spawning thread, without touching the hub: checks opts (the codes
 *     of weft_co_spawn) and makes the descriptor, READY, named, with its own reference and, when
 *     `handle`, the caller's, counted in the hub's load at once; its stack is mapped at the
 *     launch. 0 and *out, or the error.
 *   weft__co_launch: on the hub's thread: maps its stack and queues it to run (true); when that
 *     fails (no memory, or the hub is closing) it ends at once without running, DONE (false).
 *   weft__hub_load: its coroutines spawned (or prepared) and not yet ended (from any thread,
 *     while the hub lives).
 *   weft__hub_drain: on a hub's thread, from its root context: joins its coroutines (those
 *     they spawn too) until none is left or the deadline passes; cancels nothing. */
int weft__co_prepare(weft__hub_t *hub, void (*fn)(void *arg), void *arg, const weft_co_opts_t *opts,
                     bool handle, weft_co_t **out);
bool weft__co_launch(weft_co_t *co);
size_t weft__hub_load(weft__hub_t *hub);
void weft__hub_drain(int64_t deadline);

/* hub.c, tests only: called by a sample between its look at the running coroutine and the
 * copy of its name. NULL in normal use. */
extern void (*weft__watchdog_sample_hook)(weft_co_t *co);

#endif /* WEFT_CORO_INTERNAL_H */
