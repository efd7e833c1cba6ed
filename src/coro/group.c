/*
 * group.c — bounded coroutine groups (gevent.pool.Pool): a slot count, a member list for
 * cancel, spawners waiting for a slot and joiners waiting for the last member. One lock
 * guards it all; both wait lists park through the waiting core (weft__waiter_park_in), so a
 * coroutine or a thread may wait, with timeouts and cancellation.
 *
 * A member that ends hands its slot straight to the longest-waiting spawner (data = 1), so a
 * slot never goes to a newcomer while someone waits.
 */
#include "coro_internal.h"

#include <math.h>

struct weft_group {
    weft__mutex_t lock;
    weft_waitq_t spawners, joiners;
    size_t size;  /* 0: unbounded */
    size_t count; /* slots taken (members, and spawns in progress) */
    weft_co_t *members;
    bool closing;
};

int weft_group_create(weft_group_t **out, size_t size)
{
    if (!out) return WEFT_EINVAL;
    *out = NULL;
    weft_group_t *g = weft__calloc(1, sizeof *g);
    if (!g) return WEFT_ENOMEM;
    g->size = size;
    *out = g;
    return 0;
}

/* Gives a slot back (g->lock held): to a waiting spawner, else to the pool; returns the
 * waiters to wake once the lock is dropped. */
static weft__waiter_t *give_back(weft_group_t *g)
{
    weft__waiter_t *w = weft__waitq_pop(&g->spawners);
    if (w) {
        w->data = 1;
        w->next = NULL;
        return w;
    }
    if (--g->count == 0) return weft__waitq_take(&g->joiners, -1, 0);
    return NULL;
}

void weft__group_left(weft_co_t *co)
{
    weft_group_t *g = co->group;
    weft__mutex_lock(&g->lock);
    if (co->gprev)
        co->gprev->gnext = co->gnext;
    else
        g->members = co->gnext;
    if (co->gnext) co->gnext->gprev = co->gprev;
    co->group = NULL;
    weft__waiter_t *wake = give_back(g);
    weft__mutex_unlock(&g->lock);
    weft__waiters_wake(wake);
    weft_co_release(co); /* the group's reference */
}

int weft_group_spawn(weft_group_t *g, weft_co_t **out, void (*fn)(void *arg), void *arg,
                     double timeout)
{
    if (out) *out = NULL;
    if (!g || !fn || isnan(timeout)) return WEFT_EINVAL;
    weft__mutex_lock(&g->lock);
    if (g->closing) {
        weft__mutex_unlock(&g->lock);
        return WEFT_ESHUTDOWN;
    }
    if (g->size && g->count >= g->size) {
        if (weft__timeout_polls(timeout)) {
            weft__mutex_unlock(&g->lock);
            return WEFT_ETIMEDOUT;
        }
        weft_deadline_t deadline;
        weft_deadline(timeout, &deadline);
        weft__waiter_t w;
        weft__waiter_init(&w);
        weft__waitq_push(&g->spawners, &w);
        weft__mutex_unlock(&g->lock);
        int rc = weft__waiter_park_in(&g->lock, &g->spawners, &w, deadline);
        if (rc) return rc; /* the slot was handed over (data 1): it is ours now */
    } else {
        g->count++;
        weft__mutex_unlock(&g->lock);
    }
    weft_co_t *co;
    int rc = weft_spawn(&co, fn, arg, NULL);
    weft__mutex_lock(&g->lock);
    if (rc) {
        weft__waiter_t *wake = give_back(g);
        weft__mutex_unlock(&g->lock);
        weft__waiters_wake(wake);
        return rc;
    }
    /* It cannot have run yet: spawning does not switch. */
    co->group = g;
    co->gprev = NULL;
    co->gnext = g->members;
    if (g->members) g->members->gprev = co;
    g->members = co;
    weft__mutex_unlock(&g->lock);
    if (out) /* the spawn's reference is the group's; the caller gets one of its own */
        *out = weft_co_retain(co);
    return 0;
}

int weft_group_join(weft_group_t *g, double timeout)
{
    if (!g || isnan(timeout)) return WEFT_EINVAL;
    weft__mutex_lock(&g->lock);
    if (g->count == 0) {
        weft__mutex_unlock(&g->lock);
        return 0;
    }
    if (weft__timeout_polls(timeout)) {
        weft__mutex_unlock(&g->lock);
        return WEFT_ETIMEDOUT;
    }
    weft_deadline_t deadline;
    weft_deadline(timeout, &deadline);
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waitq_push(&g->joiners, &w);
    weft__mutex_unlock(&g->lock);
    return weft__waiter_park_in(&g->lock, &g->joiners, &w, deadline);
}

int weft_group_cancel(weft_group_t *g)
{
    if (!g) return WEFT_EINVAL;
    weft__mutex_lock(&g->lock);
    for (weft_co_t *co = g->members; co; co = co->gnext) weft_co_cancel(co);
    weft__mutex_unlock(&g->lock);
    return 0;
}

size_t weft_group_size(weft_group_t *g)
{
    if (!g) return 0;
    weft__mutex_lock(&g->lock);
    size_t n = g->count;
    weft__mutex_unlock(&g->lock);
    return n;
}

int weft_group_destroy(weft_group_t *g)
{
    if (!g) return WEFT_EINVAL;
    weft__mutex_lock(&g->lock);
    bool busy = g->count || !weft__waitq_empty(&g->spawners) || !weft__waitq_empty(&g->joiners);
    weft__mutex_unlock(&g->lock);
    if (busy) return WEFT_EBUSY;
    weft__free(g);
    return 0;
}
