/*
 * thread_internal.h — the thread record and what the thread layer's three files share.
 *
 *   thread.c    start, the trampoline, finishing, join, is_alive, references
 *   registry.c  the list of live threads, current/main/enumerate, dummies, fork, exit rule
 *   local.c     thread-local data
 *
 * The record (struct weft_thread). Fields and who guards them:
 *   hd             the debug mode's magic and the program's references (core_internal.h).
 *   refs           atomic; the handles out there plus, while the thread runs, one of its own.
 *                  The main thread's static record ignores it.
 *   kind, daemon, ident, name, fn, arg
 *                  set before the record is published, read-only afterwards (the fork child
 *                  rewrites ident while it is the only thread).
 *   phase          STARTING -> RUNNING -> DONE, under `waiters`' lock; every change wakes all
 *                  of `waiters` (the starter waits for RUNNING, joiners for DONE).
 *   link           on the registry list, under weft__registry_lock.
 *   values, nvalues
 *                  thread-local values; read by the owning thread without a lock, replaced or
 *                  freed only under weft__registry_lock (destroy sweeps other threads' values).
 *
 * Invariants: a record is on the registry exactly while its phase is RUNNING (joining the
 * registry and RUNNING, leaving it and DONE, each happen in one critical section holding both
 * locks), so a fork, which holds the registry lock, never sees a thread half-way; a record's
 * thread-local values exist only while it is on the registry. Lock order: weft__registry_lock,
 * then a record's wait-queue lock.
 */
#ifndef WEFT_THREAD_INTERNAL_H
#define WEFT_THREAD_INTERNAL_H

#include "../wait/wait_internal.h"
#include "weft/thread.h"

#include <pthread.h>

enum { WEFT__THREAD_STARTED, WEFT__THREAD_MAIN, WEFT__THREAD_DUMMY };
enum { WEFT__PHASE_STARTING, WEFT__PHASE_RUNNING, WEFT__PHASE_DONE };

struct weft_thread {
    weft__handle_t hd; /* user_refs: the program's references (the thread's own is not one) */
    _Atomic uint32_t refs;
    uint8_t kind;
    bool daemon;
    uint32_t phase;
    long ident;
    void (*fn)(void *arg);
    void *arg;
    weft_waitq_t waiters;
    weft__list_node_t link; /* on the registry */
    void **values;
    size_t nvalues;
    char name[WEFT_THREAD_NAME_MAX];
};

/* The calling thread's record, NULL until it has one (initial-exec TLS: one load). */
extern WEFT__TLS weft_thread_t *weft__thread_self;

/* Guards the registry list and everything thread-local data keeps (local.c). */
extern weft__mutex_t weft__registry_lock;

/* The pthread key whose destructor finishes a record when its thread exits without going
 * back through the trampoline (a dummy's thread, or pthread_exit inside fn). */
extern pthread_key_t weft__thread_key;

/* One-time set-up (the key, fork handlers, the main record). 0, or the error that keeps
 * threads from being started (sticky). */
int weft__thread_init(void);

/* The caller's record without creating one: its own, the main thread's, or NULL for a
 * foreign thread that has none yet. */
weft_thread_t *weft__thread_caller(void);

/* Fills every field of a fresh record: no links, no values, phase `phase`, name from
 * "<prefix>-N" when name is NULL or empty. */
void weft__thread_record_init(weft_thread_t *t, uint8_t kind, bool daemon, uint32_t refs,
                              uint32_t phase, const char *name, const char *prefix);

/* For the task snapshot (src/observe): calls fn on every record on the registry (started,
 * main and dummy threads alive) under weft__registry_lock: fn reads name, ident and kind and
 * must not block. A started thread's context points at its record (weft__thread_ctx.who) from
 * its start until it leaves the registry (both under this lock at the end). */
void weft__threads_visit(void (*fn)(const weft_thread_t *t, void *arg), void *arg);

/* Registers the exit rule (joins every non-daemon started thread still running, except the
 * caller) with the core's exit rules, once. 0 or WEFT_ENOMEM. */
int weft__exit_rule_install(void);

/* Registry membership; the caller holds weft__registry_lock. */
void weft__registry_add_locked(weft_thread_t *t);
void weft__registry_remove_locked(weft_thread_t *t);
/* The record after t on the registry (the first for NULL; NULL after the last); the caller
 * holds weft__registry_lock. */
weft_thread_t *weft__registry_next_locked(weft_thread_t *t);

/* Drops a reference that is not the program's (a vanished thread's own); frees the record with
 * the last one. The main thread's static record ignores it. */
void weft__thread_unref(weft_thread_t *t);

/* Ends the calling thread's record: thread-local destructors, off the registry, DONE, joiners
 * woken, the thread's reference dropped. Called by the thread itself, last. */
void weft__thread_finish(weft_thread_t *t);

/* Waits for t to reach `phase` (t referenced by the caller): 0, or the codes of
 * weft__wait_until (WEFT_ETIMEDOUT at once when the deadline has passed: a poll). */
int weft__thread_wait_phase(weft_thread_t *t, uint32_t phase, int64_t deadline, bool nocancel);

/* local.c: runs t's thread-local destructors (t is the caller's own record) and frees its
 * values; drops t's values without destructors (fork child, registry lock not needed). */
void weft__locals_finish(weft_thread_t *t);
void weft__locals_drop(weft_thread_t *t);

#endif /* WEFT_THREAD_INTERNAL_H */
