/*
 * barrier.c — weft_barrier_t, Python's Barrier, by generations.
 *
 * All fields are guarded by the queue's lock. Each round is a generation: arrivals take the
 * index count_++ and queue themselves; the last arrival runs the action (without the lock),
 * then takes every queued waiter, hands each its outcome in waiter.data, and opens the next
 * generation. While the action runs count_ == parties, so an early arrival for the next round
 * queues as EARLY and is handed RETRY: it arrives again in the new generation.
 * Breaking (abort, a timeout, a cancel, a failing action) hands every queued waiter BROKEN
 * and leaves broken_ set until reset, which opens a fresh generation.
 */
#include "sync_internal.h"

/* waiter.data: what the waiter was (set before it parks), then its outcome (set by the
 * waker). */
enum { OK = 0, BROKEN = 1, RETRY = 2, EARLY = 3 };

int weft_barrier_init(weft_barrier_t *b, unsigned parties, int (*action)(void *), void *arg)
{
    if (!b || parties == 0 || parties > INT32_MAX) return WEFT_EINVAL;
    b->parties_ = parties;
    b->count_ = 0;
    b->generation_ = 0;
    b->broken_ = false;
    b->action_ = action;
    b->action_arg_ = arg;
    b->waiters_ = (weft_waitq_t)WEFT_WAITQ_INIT;
    return 0;
}

int weft_barrier_destroy(weft_barrier_t *b)
{
    if (!b) return WEFT_EINVAL;
    weft__waitq_lock(&b->waiters_);
    bool busy = !weft__waitq_empty(&b->waiters_) || (b->count_ > 0 && !b->broken_);
    weft__waitq_unlock(&b->waiters_);
    return busy ? WEFT_EBUSY : 0;
}

/* Ends the current round with `outcome` for its waiters (lock held); returns them to wake. */
static weft__waiter_t *end_round(weft_barrier_t *b, uintptr_t outcome)
{
    weft__waiter_t *all = weft__waitq_take(&b->waiters_, -1, 0);
    for (weft__waiter_t *w = all; w; w = w->next) w->data = w->data == EARLY ? RETRY : outcome;
    b->count_ = 0;
    b->generation_++;
    return all;
}

static void break_barrier(weft_barrier_t *b)
{
    weft__waitq_lock(&b->waiters_);
    b->broken_ = true;
    weft__waiter_t *all = end_round(b, BROKEN);
    weft__waitq_unlock(&b->waiters_);
    weft__waiters_wake(all);
}

/* The last arrival: run the action, then release the round. */
static int complete_round(weft_barrier_t *b, int index, unsigned long generation)
{
    int rc = b->action_ ? b->action_(b->action_arg_) : 0;
    weft__waitq_lock(&b->waiters_);
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

int weft_barrier_wait(weft_barrier_t *b, double timeout)
{
    if (!b) return WEFT_EINVAL;
    int64_t deadline;
    if (weft_deadline(timeout, &deadline)) return WEFT_EINVAL;
    for (;;) {
        weft__waiter_t w;
        weft__waiter_init(&w);
        weft__waitq_lock(&b->waiters_);
        if (b->broken_) {
            weft__waitq_unlock(&b->waiters_);
            return WEFT_EBROKEN;
        }
        int index = -1;
        if (b->count_ < b->parties_) {
            index = (int)b->count_++;
            if (b->count_ == b->parties_) {
                unsigned long generation = b->generation_;
                weft__waitq_unlock(&b->waiters_);
                return complete_round(b, index, generation);
            }
        } else {
            w.data = EARLY;
        }
        weft__waitq_push(&b->waiters_, &w);
        weft__waitq_unlock(&b->waiters_);

        int rc = weft__waiter_park(&b->waiters_, &w, deadline);
        if (rc != 0) { /* timed out or canceled while queued: the round cannot complete */
            break_barrier(b);
            return rc;
        }
        if (w.data == OK) return index;
        if (w.data == BROKEN) return WEFT_EBROKEN;
        /* RETRY: arrived while the previous round was releasing; arrive again. */
    }
}

int weft_barrier_abort(weft_barrier_t *b)
{
    if (!b) return WEFT_EINVAL;
    break_barrier(b);
    return 0;
}

int weft_barrier_reset(weft_barrier_t *b)
{
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
    if (!b) return 0;
    weft_barrier_t *m = (weft_barrier_t *)b; /* the lock is state, not value */
    weft__waitq_lock(&m->waiters_);
    unsigned n = m->broken_ || m->count_ >= m->parties_ ? 0 : m->count_;
    weft__waitq_unlock(&m->waiters_);
    return n;
}

bool weft_barrier_broken(const weft_barrier_t *b)
{
    if (!b) return false;
    weft_barrier_t *m = (weft_barrier_t *)b;
    weft__waitq_lock(&m->waiters_);
    bool broken = m->broken_;
    weft__waitq_unlock(&m->waiters_);
    return broken;
}
