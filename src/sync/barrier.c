/*
 * barrier.c — weft_barrier_t, Python's Barrier, by generations.
 *
 * All fields are guarded by the queue's lock. Each round is a generation: arrivals take the
 * index count_++ and queue themselves as MEMBERs; the last arrival runs the action (without
 * the lock), then takes every queued waiter, hands each its outcome in waiter.data, and opens
 * the next generation. While the action runs count_ == parties ("the round is complete"), so
 * an early arrival for the next round queues as EARLY and is handed RETRY: it arrives again
 * in the new generation.
 * Breaking (abort, a timeout, a cancel, a failing action) hands every queued waiter BROKEN
 * and leaves broken_ set until reset, which opens a fresh generation.
 *
 * Leaving early. A park that ends by timeout or cancel has already taken the waiter off the
 * queue when it returns, and the waiter re-takes the lock to act on it. What it finds decides:
 *   - its round is still filling: it breaks the barrier (Python's _break) and returns
 *     WEFT_ETIMEDOUT / WEFT_ECANCELED;
 *   - its round is complete (the last party arrived in between; the action may be running):
 *     the round is no longer its to break. It queues itself again, without deadline or
 *     cancel, and takes the round's outcome like the others (Python's wait_for re-checks the
 *     barrier's state after a timeout). complete_round waits for such a returning waiter
 *     before it hands out the outcome: it queues itself as the round's COMPLETER (not a
 *     member) and parks; the returning waiter, once queued again, hands it the turn. (The
 *     returning waiter is between two critical sections, never parked, so the wait is
 *     short; but it is a park, never a spin: the completer may be a coroutine of a thread
 *     whose other coroutines must run meanwhile.)
 *   - its generation is over: the round was broken or reset without it; it just returns.
 *   An EARLY waiter had not joined any round: it breaks the barrier "now" — fully if a round
 *   is filling, else only for the rounds after the complete one, which still passes.
 */
#include "sync_internal.h"

/* waiter.data: what the waiter is (set before it parks), then its outcome (set by the
 * waker). */
enum { OK = 0, BROKEN = 1, RETRY = 2, EARLY = 3, MEMBER = 4, COMPLETER = 5 };

int weft_barrier_init(weft_barrier_t *b, unsigned parties, int (*action)(void *), void *arg)
{
    if (!b || parties == 0 || parties > INT32_MAX) return WEFT_EINVAL;
    weft__name_drop(b); /* a re-initialised object starts without a name */
    *b = (weft_barrier_t)WEFT_BARRIER_INIT(parties);
    b->action_ = action;
    b->action_arg_ = arg;
    WEFT__OBJ_INIT(b, WEFT__ID_BARRIER);
    return 0;
}

int weft_barrier_destroy(weft_barrier_t *b)
{
    WEFT__OBJ_CHECK(b, WEFT__ID_BARRIER, "barrier");
    if (!b) return WEFT_EINVAL;
    weft__waitq_lock(&b->waiters_);
    /* count_ > 0: a round is filling, or complete and running its action. */
    bool busy = !weft__waitq_empty(&b->waiters_) || b->count_ > 0;
    weft__waitq_unlock(&b->waiters_);
    return WEFT__OBJ_DESTROYED(b, weft__name_dropped(b, busy ? WEFT_EBUSY : 0));
}

int weft_barrier_set_name(weft_barrier_t *b, const char *name)
{
    if (!b) return WEFT_EINVAL;
    return weft__name_set(b, name);
}

/* Ends the current round with `outcome` for its waiters (lock held); returns them to wake.
 * Not weft__waitq_take: it would overwrite the EARLY marks this needs to read. */
static weft__waiter_t *end_round(weft_barrier_t *b, uintptr_t outcome)
{
    weft__waiter_t *all = NULL, **tail = &all, *w;
    while ((w = weft__waitq_pop(&b->waiters_))) {
        w->data = w->data == EARLY ? RETRY : outcome;
        *tail = w; /* a popped waiter's links are free for the private list */
        tail = &w->next;
    }
    b->count_ = 0;
    b->generation_++;
    return all;
}

/* Breaks the barrier now (lock held). A complete round still passes (see above) when
 * `spare_complete`; the rounds after it fail. */
static weft__waiter_t *break_locked(weft_barrier_t *b, bool spare_complete)
{
    b->broken_ = true;
    if (spare_complete && b->count_ == b->parties_) return NULL;
    return end_round(b, BROKEN);
}

static unsigned queued_members(const weft_barrier_t *b)
{
    unsigned n = 0;
    for (const weft__waiter_t *w = weft__waitq_first(&b->waiters_); w; w = weft__waitq_next(w))
        n += w->data == MEMBER;
    return n;
}

/* A returning waiter queued itself again (lock held): if that makes the round whole, takes
 * the completer waiting for it off the queue, to be woken once the lock is dropped. */
static weft__waiter_t *completer_turn(weft_barrier_t *b)
{
    if (queued_members(b) < b->parties_ - 1) return NULL;
    for (weft__waiter_t *w = weft__waitq_first(&b->waiters_); w; w = weft__waitq_next(w))
        if (w->data == COMPLETER) {
            weft__waitq_remove(&b->waiters_, w);
            return w;
        }
    return NULL;
}

/* The last arrival: run the action, then release the round. */
static int complete_round(weft_barrier_t *b, int index, unsigned long generation)
{
    int rc = b->action_ ? b->action_(b->action_arg_) : 0;
    weft__waitq_lock(&b->waiters_);
    /* A party that left the queue on a timeout just as the round filled is on its way back
     * (see above): wait for it, so that it gets the outcome too. Its return (or a break or
     * reset, which hands every queued waiter its outcome) wakes us. */
    while (b->generation_ == generation && queued_members(b) < b->parties_ - 1) {
        weft__waiter_t turn;
        weft__waiter_init(&turn);
        weft__waiter_on(&turn, WEFT__ON_BARRIER, b);
        turn.nocancel = true;
        turn.data = COMPLETER;
        weft__waitq_push(&b->waiters_, &turn);
        weft__waitq_unlock(&b->waiters_);
        weft__waiter_park(&b->waiters_, &turn, WEFT_NO_DEADLINE); /* cannot fail */
        weft__waitq_lock(&b->waiters_);
    }
    if (b->generation_ != generation) { /* broken or reset while the action ran */
        weft__waitq_unlock(&b->waiters_);
        return WEFT_EBROKEN;
    }
    if (rc != 0) b->broken_ = true;
    weft__waiter_t *all = end_round(b, rc != 0 ? BROKEN : OK);
    weft__waitq_unlock(&b->waiters_);
    weft__waiters_wake(all);
    return rc != 0 ? WEFT_EBROKEN : index;
}

/* A park of w (of `generation`) ended with rc (timeout or cancel) and took w off the queue:
 * settle it as described at the top. Returns rc, or 0 with w.data holding the outcome of the
 * round w turned out to belong to. */
static int left_early(weft_barrier_t *b, weft__waiter_t *w, unsigned long generation, int rc)
{
    weft__waitq_lock(&b->waiters_);
    bool current = b->generation_ == generation;
    if (w->data == MEMBER && current && b->count_ == b->parties_) {
        weft__waiter_init(w);
        weft__waiter_on(w, WEFT__ON_BARRIER, b);
        w->nocancel = true;
        w->data = MEMBER;
        weft__waitq_push(&b->waiters_, w);
        weft__waiter_t *completer = completer_turn(b);
        weft__waitq_unlock(&b->waiters_);
        if (completer) weft__waiter_wake(completer);
        return weft__waiter_park(&b->waiters_, w, WEFT_NO_DEADLINE); /* cannot fail */
    }
    weft__waiter_t *all = NULL;
    if (w->data == EARLY)
        all = break_locked(b, true);
    else if (current)
        all = break_locked(b, false);
    weft__waitq_unlock(&b->waiters_);
    weft__waiters_wake(all);
    return rc;
}

int weft_barrier_wait(weft_barrier_t *b, double timeout)
{
    WEFT__OBJ_CHECK(b, WEFT__ID_BARRIER, "barrier");
    /* parties_ is checked here too: WEFT_BARRIER_INIT cannot refuse a bad one. */
    if (!b || b->parties_ == 0 || b->parties_ > INT32_MAX) return WEFT_EINVAL;
    int64_t deadline;
    if (weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    for (;;) {
        weft__waiter_t w;
        weft__waiter_init(&w);
        weft__waiter_on(&w, WEFT__ON_BARRIER, b);
        weft__waitq_lock(&b->waiters_);
        if (b->broken_) {
            weft__waitq_unlock(&b->waiters_);
            return WEFT_EBROKEN;
        }
        unsigned long generation = b->generation_;
        int index = -1;
        if (b->count_ < b->parties_) {
            index = (int)b->count_++;
            if (b->count_ == b->parties_) {
                weft__waitq_unlock(&b->waiters_);
                return complete_round(b, index, generation);
            }
            w.data = MEMBER;
        } else {
            w.data = EARLY;
        }
        weft__waitq_push(&b->waiters_, &w);
        weft__waitq_unlock(&b->waiters_);

        int rc = weft__waiter_park(&b->waiters_, &w, deadline);
        if (rc != 0 && (rc = left_early(b, &w, generation, rc)) != 0) return rc;
        if (w.data == OK) return index;
        if (w.data == BROKEN) return WEFT_EBROKEN;
        /* RETRY: arrived while the previous round was completing; arrive again. */
    }
}

int weft_barrier_abort(weft_barrier_t *b)
{
    WEFT__OBJ_CHECK(b, WEFT__ID_BARRIER, "barrier");
    if (!b) return WEFT_EINVAL;
    weft__waitq_lock(&b->waiters_);
    weft__waiter_t *all = break_locked(b, false);
    weft__waitq_unlock(&b->waiters_);
    weft__waiters_wake(all);
    return 0;
}

int weft_barrier_reset(weft_barrier_t *b)
{
    WEFT__OBJ_CHECK(b, WEFT__ID_BARRIER, "barrier");
    if (!b) return WEFT_EINVAL;
    weft__waitq_lock(&b->waiters_);
    weft__waiter_t *all = end_round(b, BROKEN);
    b->broken_ = false;
    weft__waitq_unlock(&b->waiters_);
    weft__waiters_wake(all);
    return 0;
}

unsigned weft_barrier_n_waiting(const weft_barrier_t *b)
{
    WEFT__OBJ_PEEK(b, WEFT__ID_BARRIER, "barrier");
    if (!b) return 0;
    weft_barrier_t *m = (weft_barrier_t *)b; /* the lock is state, not value */
    weft__waitq_lock(&m->waiters_);
    unsigned n = m->broken_ || m->count_ >= m->parties_ ? 0 : m->count_;
    weft__waitq_unlock(&m->waiters_);
    return n;
}

bool weft_barrier_broken(const weft_barrier_t *b)
{
    WEFT__OBJ_PEEK(b, WEFT__ID_BARRIER, "barrier");
    if (!b) return false;
    weft_barrier_t *m = (weft_barrier_t *)b;
    weft__waitq_lock(&m->waiters_);
    bool broken = m->broken_;
    weft__waitq_unlock(&m->waiters_);
    return broken;
}
