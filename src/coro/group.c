/*
 * group.c — bounded coroutine groups (gevent.pool.Pool): a slot count, a member list for
 * cancel, spawners waiting for a slot and joiners waiting for the last member. One lock
 * guards it all; both wait lists park through the waiting core (weft__wait_until), so a
 * coroutine or a thread may wait, with timeouts and cancellation.
 *
 * A member that ends hands its slot straight to the longest-waiting spawner (data = 1), so a
 * slot never goes to a newcomer while someone waits.
 */
#include "coro_internal.h"

struct weft_group {
    weft__mutex_t lock;
    weft_waitq_t spawners, joiners;
    size_t size;          /* 0: unbounded */
    size_t count;         /* slots taken (members, and spawns in progress) */
    weft__list_t members; /* weft_co_t.gnode, the newest first */
    bool closing;
    weft__handle_t hd; /* debug mode: magic, the program's reference (core_internal.h) */
};

int weft_group_create(size_t size, weft_group_t **out)
{
    if (!out) return WEFT_EINVAL;
    *out = NULL;
    weft_group_t *g = weft__handle_calloc(sizeof *g);
    if (!g) return WEFT_ENOMEM;
    weft__handle_init(&g->hd, WEFT__ID_GROUP, 1);
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
    weft__list_remove(&g->members, &co->gnode);
    co->group = NULL;
    weft__waiter_t *wake = give_back(g);
    weft__mutex_unlock(&g->lock);
    weft__waiters_wake(wake);
    weft_co_release(co); /* the group's reference */
}

/* weft_group_spawn's check (g->lock held): takes a free slot, or says to wait for one. */
static int take_slot(void *arg)
{
    weft_group_t *g = arg;
    if (g->closing) return WEFT_ESHUTDOWN;
    if (g->size && g->count >= g->size) return WEFT__WAIT_PARK;
    g->count++;
    return 0;
}

int weft_group_spawn(weft_group_t *g, void (*fn)(void *arg), void *arg, double timeout,
                     weft_co_t **out)
{
    WEFT__HANDLE_CHECK(g, WEFT__ID_GROUP, "group");
    if (out) *out = NULL;
    int64_t deadline;
    if (!g || !fn || weft__deadline(timeout, &deadline)) return WEFT_EINVAL; /* NaN */
    /* A slot taken, or handed over by a member that ended (data 1): it is ours now. */
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waiter_on(&w, WEFT__ON_GROUP, g);
    int rc = weft__wait_until(&g->lock, &g->spawners, &w, take_slot, g, deadline);
    if (rc) return rc;
    weft_co_t *co;
    rc = weft_co_spawn(fn, arg, NULL, &co);
    weft__mutex_lock(&g->lock);
    if (rc) {
        weft__waiter_t *wake = give_back(g);
        weft__mutex_unlock(&g->lock);
        weft__waiters_wake(wake);
        return rc;
    }
    /* It cannot have run yet: spawning does not switch. */
    co->group = g;
    weft__list_push_front(&g->members, &co->gnode);
    weft__mutex_unlock(&g->lock);
    if (out) /* the spawn's reference is the group's; the caller gets one of its own */
        *out = weft_co_retain(co);
    return 0;
}

/* weft_group_join's check (g->lock held). A joiner is woken when the count reaches 0, and
 * that wake is its answer even if a spawn took a slot again before it ran. */
static int group_empty(void *arg)
{
    weft_group_t *g = arg;
    return g->count == 0 ? 0 : WEFT__WAIT_PARK;
}

int weft_group_join(weft_group_t *g, double timeout)
{
    WEFT__HANDLE_CHECK(g, WEFT__ID_GROUP, "group");
    int64_t deadline;
    if (!g || weft__deadline(timeout, &deadline)) return WEFT_EINVAL; /* NaN */
    /* A member would wait for itself (its group is set before it first runs). */
    weft_co_t *self = weft_co_current();
    if (self && self->group == g) return WEFT_EDEADLK;
    weft__waiter_t w;
    weft__waiter_init(&w);
    weft__waiter_on(&w, WEFT__ON_GROUP, g);
    return weft__wait_until(&g->lock, &g->joiners, &w, group_empty, g, deadline);
}

int weft_group_cancel(weft_group_t *g)
{
    WEFT__HANDLE_CHECK(g, WEFT__ID_GROUP, "group");
    if (!g) return WEFT_EINVAL;
    weft__mutex_lock(&g->lock);
    for (weft__list_node_t *n = weft__list_first(&g->members); n; n = weft__list_next(n))
        weft_co_cancel(weft__container_of(n, weft_co_t, gnode));
    weft__mutex_unlock(&g->lock);
    return 0;
}

void weft_group_cancel_cb(void *group)
{
    weft_group_cancel(group);
}

size_t weft_group_size(weft_group_t *g)
{
    WEFT__HANDLE_CHECK(g, WEFT__ID_GROUP, "group");
    if (!g) return 0;
    weft__mutex_lock(&g->lock);
    size_t n = g->count;
    weft__mutex_unlock(&g->lock);
    return n;
}

int weft_group_release(weft_group_t *g)
{
    WEFT__HANDLE_RELEASE(g, WEFT__ID_GROUP, "group");
    if (!g) return WEFT_EINVAL;
    weft__mutex_lock(&g->lock);
    bool busy = g->count || !weft__waitq_empty(&g->spawners) || !weft__waitq_empty(&g->joiners);
    weft__mutex_unlock(&g->lock);
    if (busy) {
        WEFT__HANDLE_GIVE(g); /* nothing happened: still the program's */
        return WEFT_EBUSY;
    }
    weft__handle_free(g, &g->hd);
    return 0;
}
