/*
 * weft/timer.h — Python's threading.Timer: run a function after a delay, unless it is
 * canceled first.
 *
 *     static void ring(void *arg) { puts(arg); }
 *     weft_timer_t t = WEFT_TIMER_INIT;
 *     weft_timer_start(&t, 0.5, ring, "half a second later");
 *     ...
 *     if (weft_timer_cancel(&t) == 0) puts("canceled: ring never runs");
 *     weft_timer_join(&t, WEFT_FOREVER);   (now t may be reused or freed)
 *
 * Unlike Python, a timer is not a thread. Every pending timer of the process waits in one
 * queue ordered by deadline, served by one internal thread (the timer thread), so ten
 * thousand or a million pending timers cost no threads and no allocation: a weft_timer_t is
 * caller-allocated and holds everything the queue needs. The timer thread is created on the
 * first start and leaves when no timer has been pending for a short while (50 ms); a later
 * start creates it again. It is internal: not a weft thread, with every signal blocked.
 *
 * Callbacks run on the timer thread, one at a time, in deadline order (timers with the same
 * deadline in the order they were started). A callback therefore delays every timer due after
 * it: keep callbacks short, and hand long work to a thread or an executor. A callback may
 * start, cancel and join other timers, and restart its own timer (a periodic timer), but it
 * must not wait for another timer to fire (that timer needs the timer thread, which is busy
 * waiting), and it must not free or re-initialise its own timer (the timer thread uses it
 * again when the callback returns).
 *
 * Life cycle of a weft_timer_t. It is *finished* when it is not pending and its callback is
 * not running: after init, after its callback returned (unless the callback restarted it),
 * after a cancel that returned 0. A finished timer may be started again, destroyed, or its
 * memory reused or freed, provided no other call on it is still in progress: in practice,
 * once weft_timer_cancel returned 0 or weft_timer_join returned 0 in the thread that owns it.
 * While it is not finished its memory must stay valid and untouched.
 *
 * Callbacks: fn is void fn(void *arg), the type of a thread's and a coroutine's function too.
 * The common one-argument calls come in that form, so a timer makes them without a wrapper of
 * the caller's own:
 *     weft_timer_start(&t, 5.0, weft_event_set_cb, &event);      weft_event_set(&event)
 *     weft_timer_start(&t, 0.5, weft_semaphore_release_cb, &s);  weft_semaphore_release(&s, 1)
 *     weft_timer_start(&t, 30, weft_co_cancel_cb, co);           weft_co_cancel(co)
 *     weft_timer_start(&t, 30, weft_group_cancel_cb, group);     weft_group_cancel(group)
 * Each adapter is named after the call it makes, with _cb appended (so it is declared, and
 * found, beside that call: weft/sync.h, weft/coro.h), and drops the call's result; use a
 * function of your own where the result matters. The object must stay valid until the callback
 * has run or the timer was canceled (cancel returned 0).
 *
 * Differences from Python, on purpose: the object is reusable (start again once finished); a
 * cancel affects only the current start (a cancel before start does not stop a later start);
 * the callback takes one void * argument.
 *
 * Thread safety: every function may be called concurrently from any thread on the same timer
 * (except init and destroy, which must not race with other uses). Coroutines: every function
 * may be called from a coroutine; join parks through weft's waiting core, so it parks only
 * the calling coroutine; start and cancel never block for long (a short internal lock; start
 * may create the timer thread). Callbacks run on the timer thread, never in a coroutine of
 * the caller's: what they touch must be safe from another thread.
 * Signal handlers: only weft_timer_pending is async-signal-safe.
 * Fork: the child has no timer thread. Timers pending in the parent are dropped in the child:
 * there they read as canceled (cancel returns 0, join returns 0 at once, start works); a
 * timer whose callback was running in the parent reads as finished (it ran). If fork is
 * called from inside a callback, the child's only thread is that timer thread: it finishes
 * the callback and goes on serving the child's timers, then ends when idle, which ends the
 * child process with status 0, as a Python child forked from a Timer thread would.
 */
#ifndef WEFT_TIMER_H
#define WEFT_TIMER_H

#include <stdbool.h>

#include "weft/core.h"
#include "weft/wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A one-shot timer (threading.Timer). Fields are private. All-zero memory (static storage,
 * calloc) is a valid idle timer, as is WEFT_TIMER_INIT or weft_timer_init. */
typedef struct weft_timer {
    struct weft_timer *child_, *next_, *prev_; /* links in the pending queue */
    int64_t deadline_;                         /* monotonic ns */
    uint64_t seq_;                             /* start order, for equal deadlines */
    void (*fn_)(void *arg);
    void *arg_;
    WEFT__ATOMIC(uint32_t) state_;
    weft_waitq_t joiners_;
    uint64_t reserved_[5]; /* room to grow within 1.x; zero */
} weft_timer_t;

/* A static initializer, the same as weft_timer_init. */
#define WEFT_TIMER_INIT                                                                            \
    {                                                                                              \
        0, 0, 0, 0, 0, 0, 0, 0, WEFT_WAITQ_INIT,                                                   \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* Initialises an idle (finished) timer. WEFT_EINVAL if t is NULL. Must not race with any
 * other call on t, and t must not be a pending timer: its memory is the timer thread's until
 * it finished or was canceled (re-initialising it corrupts that thread's list; cancel or
 * join first, as before any reuse of the memory).
 * t: the timer's memory (the caller's).
 * Returns 0, WEFT_EINVAL (t NULL). */
WEFT_EXTERN int weft_timer_init(weft_timer_t *t);

/* Destroys t: 0 if t is finished (see above): it may then be freed or re-initialised.
 * WEFT_EBUSY while it is pending, its callback is running, or a join waits on it; WEFT_EINVAL
 * for NULL.
 * t: the timer.
 * Returns 0 (finished: free or re-initialise it), WEFT_EBUSY (pending, its callback running,
 * or a join waiting on it), WEFT_EINVAL (t NULL). */
WEFT_EXTERN int weft_timer_destroy(weft_timer_t *t);
/* Names t for the task dump and the deadlock report (weft/debug.h): the Timer shows as
 * "'name'" there. A copy is kept (up to 47 bytes, longer is cut); NULL or "" removes it;
 * its destroy, or a new init, drops it. 0, WEFT_EINVAL (t NULL), WEFT_ENOMEM (the old name stays).
 * From any thread or coroutine; not from a signal handler (it locks and allocates).
 * t: the timer.
 * name: copied (up to 47 bytes); NULL or "": remove the name.
 * Returns 0, WEFT_EINVAL (t NULL), WEFT_ENOMEM (the old name stays). */
WEFT_EXTERN int weft_timer_set_name(weft_timer_t *t, const char *name);

/* Schedules fn(arg) to run on the timer thread `interval` seconds from now (Python's
 * Timer(interval, fn).start()); 0 or a negative interval means as soon as possible; an
 * interval too large to represent (+inf included), or WEFT_FOREVER, means a timer that only
 * cancel ends. Never runs it early: the call happens at or after the deadline, late by the
 * timer thread's wake-up latency plus any earlier callbacks still running. Returns 0, or:
 *   WEFT_EINVAL     t or fn NULL, interval NaN (nothing changes)
 *   WEFT_EBUSY      t is pending, or its callback is running and the caller is not that
 *                   callback (a timer is started again only once finished)
 *   WEFT_ECANCELED  the caller is t's own callback restarting it, and t was canceled while
 *                   this callback ran (so a cancel reliably stops a periodic timer)
 *   WEFT_EAGAIN / WEFT_ENOMEM  the timer thread could not be created; t is not pending
 * Restart from its own callback: allowed (once per run; a second start in the same run is
 * WEFT_EBUSY, as t is pending again at once); joiners keep waiting until a run ends without
 * a restart. Thread-safe; not async-signal-safe.
 * t: an idle (finished) timer; its memory stays the timer thread's until t is finished.
 * interval: seconds from now; 0 or negative: as soon as possible; WEFT_FOREVER (or too large,
 *           +inf): only cancel ends it.
 * fn: the callback, run on the timer thread; not NULL.
 * arg: passed to fn as is (kept alive until fn has run or t was canceled).
 * Returns 0 (pending), WEFT_EINVAL (t or fn NULL, interval NaN), WEFT_EBUSY (pending, or its
 * callback running and the caller is not it, or a second restart in one run), WEFT_ECANCELED
 * (a restart from its own callback after a cancel), WEFT_EAGAIN or WEFT_ENOMEM (no timer
 * thread; t is not pending). */
WEFT_EXTERN int weft_timer_start(weft_timer_t *t, double interval, void (*fn)(void *arg),
                                 void *arg);

/* Like weft_timer_start, with a deadline (weft_deadline_after, weft/core.h) instead of an
 * interval: a periodic timer that restarts itself at its previous deadline + period
 * (weft_deadline_add) does not drift. A deadline already passed means as soon as possible; a
 * deadline of never (made from WEFT_FOREVER) means a timer that only cancel ends. Same
 * errors, except there is no interval to reject.
 * t: an idle (finished) timer, as for weft_timer_start.
 * deadline: when to run fn (weft_deadline_after); passed: as soon as possible; never: only
 *           cancel ends it.
 * fn: the callback, run on the timer thread; not NULL.
 * arg: passed to fn as is (kept alive until fn has run or t was canceled).
 * Returns 0 (pending), WEFT_EINVAL (t or fn NULL), WEFT_EBUSY, WEFT_ECANCELED, WEFT_EAGAIN or
 * WEFT_ENOMEM, as weft_timer_start. */
WEFT_EXTERN int weft_timer_start_at(weft_timer_t *t, weft_deadline_t deadline,
                                    void (*fn)(void *arg), void *arg);

/* Stops t if it has not fired yet (Python's Timer.cancel). Returns:
 *   0              t was pending and is now canceled: fn will not run, t is finished (and
 *                  its joiners are woken). Also 0 for a timer already canceled or never
 *                  started: nothing of it runs.
 *   WEFT_EALREADY  fn already ran or is running now; nothing to cancel. If it is running,
 *                  the callback's own restart of t (if it already did one, or does one
 *                  later in this run) is canceled too, so fn runs no more after this call;
 *                  join waits for the running call to return.
 *   WEFT_EINVAL    t is NULL.
 * Idempotent: calling it again gives the same answer. Decided exactly once against the
 * timer thread: either fn runs (EALREADY) or it does not (0), never both. Thread-safe,
 * callable from callbacks (its own included); not async-signal-safe.
 * t: the timer.
 * Returns 0 (canceled, or never started or canceled already: fn does not run), WEFT_EALREADY
 * (fn ran or is running), WEFT_EINVAL (t NULL). */
WEFT_EXTERN int weft_timer_cancel(weft_timer_t *t);

/* Waits until t is finished: its callback returned (and did not restart it) or it was
 * canceled (Python's Timer.join, which waits for the timer's thread). Returns at once for a
 * finished timer. 0, WEFT_ETIMEDOUT, WEFT_ECANCELED (the caller's task was canceled),
 * WEFT_EINVAL (NULL, NaN timeout), WEFT_EDEADLK when called from t's own callback (it could
 * never finish). From another timer's callback it may wait, but t cannot fire meanwhile (the
 * timer thread is the caller): only a cancel from elsewhere ends such a wait early.
 * Parks through the waiting core (only the calling thread, or coroutine).
 * t: the timer.
 * timeout: seconds to wait; WEFT_FOREVER waits without a limit, 0 only polls.
 * Returns 0 (finished), WEFT_ETIMEDOUT, WEFT_ECANCELED (the caller's task was canceled),
 * WEFT_EINVAL (t NULL, timeout NaN), WEFT_EDEADLK (called from t's own callback). */
WEFT_EXTERN int weft_timer_join(weft_timer_t *t, double timeout);

/* Whether fn is scheduled to run (started, and not yet fired or canceled); false while the
 * callback runs unless it restarted itself. A snapshot. False for NULL. Safe everywhere,
 * signal handlers included.
 * t: the timer.
 * Returns true while fn is scheduled to run; false otherwise and for NULL. */
WEFT_EXTERN bool weft_timer_pending(const weft_timer_t *t);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_TIMER_H */
