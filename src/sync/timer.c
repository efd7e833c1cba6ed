/*
 * timer.c — weft_timer_t, Python's Timer, served by one internal thread for the whole process.
 *
 * The data structure. Pending timers form one pairing heap (Fredman, Sedgewick, Sleator,
 * Tarjan 1986) ordered by (deadline_, seq_): the earliest deadline at the root, equal
 * deadlines in start order (seq_ is a 64-bit start counter that never wraps). The heap is
 * intrusive: each timer carries its own links (child_: first child; next_: right sibling;
 * prev_: left sibling, or the parent for a first child, NULL for the root), so starting and
 * canceling allocate nothing. Insert is O(1), removing the root or any node is O(log n)
 * amortised; removal merges the node's children pairwise, iteratively (no recursion).
 *
 * The timer thread (service_main) loops: run every timer whose deadline has passed, in heap
 * order, then park on svc.wake with the root's deadline as its own (a linger deadline when
 * the heap is empty; it exits when that one passes). A start whose timer becomes the new root
 * pops its waiter and wakes it, as does a cancel that empties the heap (so that the thread can
 * linger and leave). Other cancels leave it parked: its deadline can only be early, never
 * late, and an early wake-up just parks again.
 *
 * Locking. svc.wake's lock is the service lock. It guards the heap, every field of a pending
 * timer, the svc fields, and every change of a timer's state_. Changes into a finished state
 * (DONE, CANCELED) also hold the timer's joiners_ lock (order: service lock, then joiners_),
 * and join reads the state under joiners_ alone: a joiner that saw the timer unfinished is
 * queued before the finisher can take its list, so no wake-up is lost. Callbacks run with no
 * lock held. join always takes joiners_, even for a finished timer, so that its 0 comes after
 * the finisher's last touch of the timer (the unlock of joiners_): memory may be freed then.
 *
 * States (state_). IDLE, DONE and CANCELED are finished. Transitions:
 *   start:   IDLE/DONE/CANCELED -> PENDING                       (inserted in the heap)
 *            RUNNING -> RUNNING_REARMED    only from its own callback (inserted)
 *   fire:    PENDING -> RUNNING                                  (removed from the heap)
 *   return:  RUNNING/RUNNING_CANCELED -> DONE (joiners woken); RUNNING_REARMED -> PENDING
 *   cancel:  PENDING -> CANCELED (removed, joiners woken)                          => 0
 *            RUNNING/RUNNING_REARMED -> RUNNING_CANCELED (removed if it was in)    => EALREADY
 * So a cancel and the firing are decided exactly once, under the service lock; a timer is in
 * the heap iff it is PENDING or RUNNING_REARMED; and only the timer thread leaves RUNNING*,
 * which is why nobody may free a timer whose callback runs.
 *
 * The thread's life. svc.alive is true from pthread_create until the thread, holding the
 * service lock, sees an empty heap past its linger deadline, clears it and returns; a start
 * that finds it false creates a new thread (detached) before inserting, under the lock, so
 * "exit" and "new start" cannot both miss each other, and a failed creation leaves nothing
 * pending. Fork: prepare takes the service lock, the child drops the heap (see fork_child).
 */
#include "sync_internal.h"
#include "../core/sys_internal.h"
#include "weft/timer.h"

#include <pthread.h>
#include <signal.h>

enum {
    IDLE = 0,
    PENDING,
    RUNNING,
    RUNNING_REARMED,
    RUNNING_CANCELED,
    DONE,
    CANCELED,
};

/* How long the timer thread stays after the last timer, so that a program starting timers one
 * after another does not create a thread for each. */
#define LINGER_NS (50 * 1000 * 1000)

static struct {
    weft_waitq_t wake;     /* its lock is the service lock; the timer thread parks here */
    weft_timer_t *heap;    /* root of the pairing heap of pending timers */
    uint64_t seq;          /* next start's sequence number */
    bool alive;            /* a timer thread exists and will look at the heap again */
    weft_timer_t *running; /* the timer whose callback runs now (for fork_child) */
} svc = {WEFT_WAITQ_INIT, NULL, 0, false, NULL};

/* The timer whose callback this thread is running (set on the timer thread only). */
static WEFT__TLS weft_timer_t *current;

static void svc_lock(void)
{
    weft__waitq_lock(&svc.wake);
}
static void svc_unlock(void)
{
    weft__waitq_unlock(&svc.wake);
}

static uint32_t state_of(const weft_timer_t *t)
{
    return atomic_load_explicit(&t->state_, memory_order_acquire);
}
static void set_state(weft_timer_t *t, uint32_t s)
{
    atomic_store_explicit(&t->state_, s, memory_order_release);
}
static bool finished(uint32_t s)
{
    return s == IDLE || s == DONE || s == CANCELED;
}

/* ---- the pairing heap (service lock held) ------------------------------------------------ */

static bool earlier(const weft_timer_t *a, const weft_timer_t *b)
{
    return a->deadline_ < b->deadline_ || (a->deadline_ == b->deadline_ && a->seq_ < b->seq_);
}

/* Links two detached roots (next_ and prev_ NULL); returns the new root. */
static weft_timer_t *meld(weft_timer_t *a, weft_timer_t *b)
{
    if (earlier(b, a)) {
        weft_timer_t *swap = a;
        a = b;
        b = swap;
    }
    b->next_ = a->child_;
    if (a->child_) a->child_->prev_ = b;
    b->prev_ = a;
    a->child_ = b;
    return a;
}

/* Melds a list of siblings into one heap: pairs left to right, then the pairs right to left
 * (the two-pass rule that gives the amortised bounds). The first pass leaves the melded pairs
 * on a list linked through next_ in reverse order, which is the order the second pass wants. */
static weft_timer_t *merge_pairs(weft_timer_t *first)
{
    weft_timer_t *pairs = NULL;
    while (first) {
        weft_timer_t *a = first, *b = a->next_;
        first = b ? b->next_ : NULL;
        a->next_ = a->prev_ = NULL;
        if (b) {
            b->next_ = b->prev_ = NULL;
            a = meld(a, b);
        }
        a->next_ = pairs;
        pairs = a;
    }
    weft_timer_t *root = NULL;
    while (pairs) {
        weft_timer_t *p = pairs;
        pairs = p->next_;
        p->next_ = NULL;
        root = root ? meld(root, p) : p;
    }
    return root;
}

static void heap_insert(weft_timer_t *t)
{
    t->child_ = t->next_ = t->prev_ = NULL;
    svc.heap = svc.heap ? meld(svc.heap, t) : t;
}

static void heap_remove(weft_timer_t *t)
{
    weft_timer_t *sub = merge_pairs(t->child_);
    if (t == svc.heap) {
        svc.heap = sub;
    } else {
        if (t->prev_->child_ == t) /* first child: prev_ is the parent */
            t->prev_->child_ = t->next_;
        else
            t->prev_->next_ = t->next_;
        if (t->next_) t->next_->prev_ = t->prev_;
        if (sub) svc.heap = meld(svc.heap, sub);
    }
    t->child_ = t->next_ = t->prev_ = NULL;
}

/* ---- finishing --------------------------------------------------------------------------- */

/* Moves t into a finished state and takes its joiners (service lock held); the caller wakes
 * the returned list after dropping its locks. */
static weft__waiter_t *finish(weft_timer_t *t, uint32_t final)
{
    weft__waitq_lock(&t->joiners_);
    set_state(t, final);
    weft__waiter_t *joiners = weft__waitq_take(&t->joiners_, -1, 0);
    weft__waitq_unlock(&t->joiners_);
    return joiners;
}

/* Pops the parked timer thread, if it is parked (service lock held); wake it after unlocking. */
static weft__waiter_t *take_service(void)
{
    return weft__waitq_pop(&svc.wake);
}

/* ---- the timer thread -------------------------------------------------------------------- */

/* Runs t's callback (popped and marked RUNNING under the lock, which the caller held and
 * dropped), then settles t. Returns with the service lock held. */
static void run(weft_timer_t *t, void (*fn)(void *), void *arg)
{
    current = t;
    fn(arg);
    current = NULL;

    svc_lock();
    weft__waiter_t *joiners = NULL;
    if (state_of(t) == RUNNING_REARMED)
        set_state(t, PENDING); /* restarted by its callback: already back in the heap */
    else
        joiners = finish(t, DONE);
    svc.running = NULL;
    if (joiners) {
        svc_unlock();
        weft__waiters_wake(joiners);
        svc_lock();
    }
}

static void *service_main(void *unused)
{
    (void)unused;
    pthread_setname_np(pthread_self(), "weft-timer");
    int64_t idle_until = -1; /* linger deadline once the heap is empty; -1: not idle */
    svc_lock();
    for (;;) {
        int64_t now = weft_time_monotonic_ns();
        weft_timer_t *t = svc.heap;
        if (t && t->deadline_ <= now) {
            heap_remove(t);
            set_state(t, RUNNING);
            svc.running = t;
            void (*fn)(void *) = t->fn_;
            void *arg = t->arg_;
            svc_unlock();
            run(t, fn, arg);
            idle_until = -1;
            continue;
        }
        int64_t deadline;
        if (t) {
            deadline = t->deadline_;
            idle_until = -1;
        } else {
            if (idle_until < 0) idle_until = now + LINGER_NS;
            if (now >= idle_until) break;
            deadline = idle_until;
        }
        weft__waiter_t w;
        weft__waiter_init(&w);
        weft__waitq_push(&svc.wake, &w);
        svc_unlock();
        /* 0 (a start or cancel woke us) or WEFT_ETIMEDOUT: either way, look again. Nobody
         * cancels this thread's context, so WEFT_ECANCELED cannot happen. */
        weft__waiter_park(&svc.wake, &w, deadline);
        svc_lock();
    }
    svc.alive = false;
    svc_unlock();
    return NULL;
}

/* Creates the timer thread (service lock held), detached and with every signal blocked: it
 * is internal, and a signal meant for the program must not land on it. */
static int spawn_service(void)
{
    pthread_attr_t attr;
    int e = pthread_attr_init(&attr);
    if (e) return weft__errno(e);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t tid;
    e = weft__sys_pthread_create(&tid, &attr, service_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (e) return e == ENOMEM ? WEFT_ENOMEM : WEFT_EAGAIN;
    svc.alive = true;
    return 0;
}

/* ---- fork -------------------------------------------------------------------------------- */

static void fork_prepare(void)
{
    svc_lock();
}
static void fork_parent(void)
{
    svc_unlock();
}

/* Forgets the parent's joiners of t: their threads do not exist here. */
static void drop_joiners(weft_timer_t *t)
{
    t->joiners_ = (weft_waitq_t)WEFT_WAITQ_INIT;
}

/* In the child (the only thread, holding the service lock since prepare). Every pending timer
 * is dropped and reads as CANCELED; the list walk reuses the heap's own links, as the heap is
 * discarded anyway: take a node, splice its children in front of the rest, mark it. If the
 * fork came from a callback, this thread is the timer thread and carries on with it;
 * otherwise there is no timer thread here, and a callback that was running in the parent
 * reads as DONE. */
static void fork_child(void)
{
    weft_timer_t *list = svc.heap;
    while (list) {
        weft_timer_t *t = list;
        list = t->next_;
        if (t->child_) {
            weft_timer_t *last = t->child_;
            while (last->next_) last = last->next_;
            last->next_ = list;
            list = t->child_;
        }
        t->child_ = t->next_ = t->prev_ = NULL;
        if (state_of(t) == PENDING) {
            set_state(t, CANCELED);
            drop_joiners(t);
        }
    }
    svc.heap = NULL;

    weft_timer_t *r = svc.running;
    if (r) drop_joiners(r);
    if (current) { /* forked from r's callback: r runs on, but its restart was dropped */
        if (state_of(r) == RUNNING_REARMED) set_state(r, RUNNING);
    } else {
        if (r) set_state(r, DONE);
        svc.running = NULL;
        svc.alive = false;
    }
    svc.wake = (weft_waitq_t)WEFT_WAITQ_INIT; /* unlocked, and no parked timer thread */
}

static const weft__fork_hooks_t fork_hooks = {
    .rank = WEFT__LAYER_SYNC,
    .prepare = fork_prepare,
    .parent = fork_parent,
    .child = fork_child,
};

/* Registers the fork hooks. Not under the service lock: a fork on another thread holds the
 * core's registry lock while its prepare hook takes ours, so registering under ours could
 * deadlock. Retried on failure (registering only fails for lack of memory). */
static int register_atfork(void)
{
    return weft__fork_register(&fork_hooks);
}

/* ---- the API ----------------------------------------------------------------------------- */

int weft_timer_init(weft_timer_t *t)
{
    if (!t) return WEFT_EINVAL;
    weft__name_drop(t); /* a re-initialised object starts without a name */
    *t = (weft_timer_t)WEFT_TIMER_INIT;
    WEFT__OBJ_INIT(t, WEFT__ID_TIMER);
    return 0;
}

int weft_timer_destroy(weft_timer_t *t)
{
    WEFT__OBJ_CHECK(t, WEFT__ID_TIMER, "timer");
    if (!t) return WEFT_EINVAL;
    weft__waitq_lock(&t->joiners_);
    bool busy = !finished(state_of(t)) || !weft__waitq_empty(&t->joiners_);
    weft__waitq_unlock(&t->joiners_);
    return WEFT__OBJ_DESTROYED(t, weft__name_dropped(t, busy ? WEFT_EBUSY : 0));
}

int weft_timer_set_name(weft_timer_t *t, const char *name)
{
    if (!t) return WEFT_EINVAL;
    return weft__name_set(t, name);
}

/* weft_timer_start and weft_timer_start_at: t to run fn(arg) at a monotonic ns deadline. */
static int start_at(weft_timer_t *t, int64_t deadline, void (*fn)(void *), void *arg)
{
    if (!t || !fn) return WEFT_EINVAL;
    int r = register_atfork();
    if (r) return r;

    svc_lock();
    uint32_t s = state_of(t), next = PENDING;
    if (!finished(s)) {
        if (current != t || s == PENDING || s == RUNNING_REARMED)
            r = WEFT_EBUSY;
        else if (s == RUNNING_CANCELED)
            r = WEFT_ECANCELED;
        else
            next = RUNNING_REARMED; /* its own callback restarts it */
    }
    if (r == 0 && !svc.alive) r = spawn_service();
    if (r) {
        svc_unlock();
        return r;
    }
    t->deadline_ = deadline;
    t->seq_ = svc.seq++;
    t->fn_ = fn;
    t->arg_ = arg;
    heap_insert(t);
    set_state(t, next);
    weft__waiter_t *service = svc.heap == t ? take_service() : NULL;
    svc_unlock();
    if (service) weft__waiter_wake(service);
    return 0;
}

int weft_timer_start(weft_timer_t *t, double interval, void (*fn)(void *), void *arg)
{
    WEFT__OBJ_CHECK(t, WEFT__ID_TIMER, "timer");
    int64_t deadline;
    /* NaN is refused; a negative interval is a deadline already passed (the timer fires at
     * once, as threading.Timer's); WEFT_FOREVER, +inf and huge values never come. */
    if (weft__deadline(interval, &deadline)) return WEFT_EINVAL;
    return start_at(t, deadline, fn, arg);
}

int weft_timer_start_at(weft_timer_t *t, weft_deadline_t deadline, void (*fn)(void *), void *arg)
{
    WEFT__OBJ_CHECK(t, WEFT__ID_TIMER, "timer");
    return start_at(t, deadline.at_ns_, fn, arg);
}

int weft_timer_cancel(weft_timer_t *t)
{
    WEFT__OBJ_CHECK(t, WEFT__ID_TIMER, "timer");
    if (!t) return WEFT_EINVAL;
    weft__waiter_t *joiners = NULL, *service = NULL;
    int r = 0;
    svc_lock();
    switch (state_of(t)) {
    case PENDING:
        heap_remove(t);
        joiners = finish(t, CANCELED);
        if (!svc.heap) service = take_service(); /* let it linger and leave */
        break;
    case RUNNING_REARMED:
        heap_remove(t);
        /* fall through */
    case RUNNING:
        set_state(t, RUNNING_CANCELED);
        /* fall through */
    case RUNNING_CANCELED:
    case DONE:
        r = WEFT_EALREADY;
        break;
    default: /* IDLE, CANCELED: nothing of it will run */
        break;
    }
    svc_unlock();
    weft__waiters_wake(joiners);
    if (service) weft__waiter_wake(service);
    return r;
}

/* What join answers without waiting (joiners_ locked), or WAIT. */
enum { WAIT = 1 };
static int join_now(const weft_timer_t *t, double timeout)
{
    if (finished(state_of(t))) return 0;
    if (current == t) return WEFT_EDEADLK;
    if (weft__timeout_polls(timeout)) return WEFT_ETIMEDOUT;
    if (weft__waitctx_canceled(weft__waitctx_current())) return WEFT_ECANCELED;
    return WAIT;
}

int weft_timer_join(weft_timer_t *t, double timeout)
{
    WEFT__OBJ_CHECK(t, WEFT__ID_TIMER, "timer");
    int64_t deadline;
    if (!t || weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    /* Always under joiners_, even when finished: see the locking paragraph at the top. */
    weft__waitq_lock(&t->joiners_);
    int r = join_now(t, timeout);
    if (r != WAIT) {
        weft__waitq_unlock(&t->joiners_);
        return r;
    }
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waiter_on(&w, WEFT__ON_TIMER, t);
    weft__waitq_push(&t->joiners_, &w);
    weft__waitq_unlock(&t->joiners_);
    return weft__waiter_park(&t->joiners_, &w, deadline);
}

bool weft_timer_pending(const weft_timer_t *t)
{
    WEFT__OBJ_PEEK(t, WEFT__ID_TIMER, "timer");
    if (!t) return false;
    uint32_t s = state_of(t);
    return s == PENDING || s == RUNNING_REARMED;
}
