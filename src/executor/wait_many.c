/*
 * wait_many.c — waiting on several futures at once: weft_future_wait and the as_completed iterator.
 *
 * Both hang a listener on every future not yet done (concurrent.futures does the same with
 * its _Waiter objects). A listener's notify runs under its future's lock when the future
 * becomes final, so it only counts or queues and then wakes the waiting caller through a
 * weft_event_t (wait) or a weft_semaphore_t (as_completed): the caller therefore blocks in
 * the waiting core like any other wait, with its deadline and cancellation. Listeners are
 * unhooked (weft__future_unlisten, under each future's lock) before the memory holding them
 * goes, and once unhooked their notify cannot be running, so nothing outlives its owner.
 *
 * weft_future_wait(ALL_COMPLETED) needs no listener: it waits on each future in turn within the
 * one deadline, which costs nothing for the futures already done.
 */
#include "executor_internal.h"

#include <stdlib.h>
#include <string.h>

#include "weft/sync.h"

/* ---- weft_future_wait
 * ---------------------------------------------------------------------------- */

typedef struct collector {
    weft_event_t ready;
    int return_when;
    _Atomic size_t pending; /* listeners not yet notified */
} collector_t;

typedef struct wait_listener {
    weft__listener_t base;
    collector_t *c;
} wait_listener_t;

static bool failed(weft_future_t *f)
{
    return atomic_load_explicit(&f->state, memory_order_acquire) == WEFT_FUTURE_FINISHED &&
           f->error != 0;
}

static void wait_notify(weft__listener_t *l, weft_future_t *f)
{
    collector_t *c = ((wait_listener_t *)l)->c;
    size_t left = atomic_fetch_sub_explicit(&c->pending, 1, memory_order_acq_rel) - 1;
    if (c->return_when == WEFT_FIRST_COMPLETED || left == 0 ||
        (c->return_when == WEFT_FIRST_EXCEPTION && failed(f)))
        weft_event_set(&c->ready);
}

static size_t count_done(weft_future_t *const *fs, size_t n, bool *any_failed)
{
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        if (!weft_future_done(fs[i])) continue;
        done++;
        if (failed(fs[i])) *any_failed = true;
    }
    return done;
}

static int wait_each(weft_future_t *const *fs, size_t n, int64_t deadline)
{
    for (size_t i = 0; i < n; i++) {
        int rc = weft__future_wait(fs[i], deadline);
        if (rc) return rc;
    }
    return 0;
}

static int wait_any(weft_future_t *const *fs, size_t n, int return_when, int64_t deadline)
{
    wait_listener_t small[8];
    wait_listener_t *ls = n <= 8 ? small : weft__malloc(n * sizeof *ls);
    if (!ls) return WEFT_ENOMEM;
    collector_t c = {.return_when = return_when};
    weft_event_init(&c.ready);
    atomic_init(&c.pending, n);
    for (size_t i = 0; i < n; i++) {
        ls[i] = (wait_listener_t){{.notify = wait_notify}, &c};
        weft__future_listen(fs[i], &ls[i].base);
    }
    int rc = weft_event_wait(&c.ready, weft__deadline_remaining(deadline));
    for (size_t i = 0; i < n; i++) weft__future_unlisten(fs[i], &ls[i].base);
    weft_event_destroy(&c.ready);
    if (ls != small) weft__free(ls);
    return rc;
}

/* Whether fs already meets return_when. */
static bool met(weft_future_t *const *fs, size_t n, int return_when)
{
    bool any_failed = false;
    size_t done = count_done(fs, n, &any_failed);
    return done == n || (return_when == WEFT_FIRST_COMPLETED && done > 0) ||
           (return_when == WEFT_FIRST_EXCEPTION && any_failed);
}

int weft_future_wait(weft_future_t *const *fs, size_t n, int return_when, double timeout,
                     size_t *ndone)
{
    int64_t deadline;
    if ((!fs && n > 0) || weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (return_when < WEFT_FIRST_COMPLETED || return_when > WEFT_ALL_COMPLETED) return WEFT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i]) return WEFT_EINVAL;

    int rc = 0;
    bool all_done = false;
    if (return_when == WEFT_ALL_COMPLETED) { /* a done future costs wait_each one load */
        rc = wait_each(fs, n, deadline);
        all_done = rc == 0; /* every one of them: no walk to count them */
    } else if (!met(fs, n, return_when)) {
        rc = wait_any(fs, n, return_when, deadline);
    }
    /* A future that completed as the deadline passed still counts. */
    if (rc == WEFT_ETIMEDOUT && met(fs, n, return_when)) rc = 0;
    if (ndone && all_done) {
        *ndone = n;
    } else if (ndone) {
        bool any_failed;
        *ndone = count_done(fs, n, &any_failed);
    }
    return rc;
}
/* ---- as_completed ------------------------------------------------------------------------ */

/* The iterator: the distinct futures (retained), a listener each, and a ring of indices of the
 * futures that completed and were not yielded yet. `lock` guards the ring; `ready` counts its
 * entries, so next() blocks on it in the waiting core. */
typedef struct ac_listener {
    weft__listener_t base;
    weft_as_completed_t *it;
    size_t index;
} ac_listener_t;

struct weft_as_completed {
    size_t n, yielded;
    int64_t deadline;
    weft_future_t **fs;
    ac_listener_t *ls;
    weft__mutex_t lock;
    size_t *ring, head, tail; /* ring[head..tail) mod n: completed, not yet yielded */
    weft_semaphore_t ready;
    weft__handle_t hd; /* debug mode: magic, the program's reference (core_internal.h) */
};

static void ac_notify(weft__listener_t *l, weft_future_t *f)
{
    ac_listener_t *al = (ac_listener_t *)l;
    weft_as_completed_t *it = al->it;
    (void)f;
    weft__mutex_lock(&it->lock);
    it->ring[it->tail++ % it->n] = al->index;
    weft__mutex_unlock(&it->lock);
    weft_semaphore_release(&it->ready, 1);
}

typedef struct entry {
    uintptr_t f;
    size_t index;
} entry_t;

static int cmp_entry(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    if (x->f != y->f) return x->f < y->f ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Copies fs without duplicates, keeping first occurrences in order: sorting (future, index)
 * pairs puts each future's first occurrence at the head of its run. Returns the count, or
 * SIZE_MAX when out of memory. */
static size_t distinct(weft_future_t *const *fs, size_t n, weft_future_t **out)
{
    if (n == 0) return 0;
    entry_t *e = weft__malloc(n * sizeof *e);
    bool *dup = weft__calloc(n, sizeof *dup);
    if (!e || !dup) {
        weft__free(e);
        weft__free(dup);
        return SIZE_MAX;
    }
    for (size_t i = 0; i < n; i++) e[i] = (entry_t){(uintptr_t)fs[i], i};
    qsort(e, n, sizeof *e, cmp_entry);
    for (size_t i = 1; i < n; i++)
        if (e[i].f == e[i - 1].f) dup[e[i].index] = true;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (!dup[i]) out[count++] = fs[i];
    weft__free(e);
    weft__free(dup);
    return count;
}

int weft_as_completed_release(weft_as_completed_t *it)
{
    WEFT__HANDLE_RELEASE(it, WEFT__ID_AS_COMPLETED, "as_completed");
    if (!it) return WEFT_EINVAL;
    for (size_t i = 0; i < it->n; i++) {
        weft__future_unlisten(it->fs[i], &it->ls[i].base);
        weft_future_release(it->fs[i]);
    }
    weft_semaphore_destroy(&it->ready);
    weft__free(it->ring);
    weft__free(it->ls);
    weft__free(it->fs);
    weft__handle_free(it, &it->hd);
    return 0;
}

int weft_as_completed_create(weft_future_t *const *fs, size_t n, double timeout,
                             weft_as_completed_t **out)
{
    int64_t deadline;
    if (!out) return WEFT_EINVAL;
    *out = NULL;
    if ((!fs && n > 0) || weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i]) return WEFT_EINVAL;

    weft_as_completed_t *it = weft__handle_calloc(sizeof *it);
    if (!it) return WEFT_ENOMEM;
    weft__handle_init(&it->hd, WEFT__ID_AS_COMPLETED, 1);
    it->deadline = deadline;
    weft_semaphore_init(&it->ready, 0, false);
    size_t cap = n ? n : 1;
    it->fs = weft__malloc(cap * sizeof *it->fs);
    it->ls = weft__malloc(cap * sizeof *it->ls);
    it->ring = weft__malloc(cap * sizeof *it->ring);
    size_t count = it->fs ? distinct(fs, n, it->fs) : SIZE_MAX;
    if (!it->ls || !it->ring || count == SIZE_MAX) {
        weft_as_completed_release(it); /* it->n is 0: nothing was retained or hooked yet */
        return WEFT_ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        weft_future_retain(it->fs[i]);
        it->ls[i] = (ac_listener_t){{.notify = ac_notify}, it, i};
    }
    it->n = count;
    /* Hooking a done future queues it at once: those come out first, in array order. */
    for (size_t i = 0; i < count; i++) weft__future_listen(it->fs[i], &it->ls[i].base);
    *out = it;
    return 0;
}

int weft_as_completed_next(weft_as_completed_t *it, weft_future_t **f)
{
    WEFT__HANDLE_CHECK(it, WEFT__ID_AS_COMPLETED, "as_completed");
    if (!it || !f) return WEFT_EINVAL;
    *f = NULL;
    if (it->yielded == it->n) return WEFT_EEOF;
    int rc = weft_semaphore_acquire(&it->ready, weft__deadline_remaining(it->deadline));
    if (rc) return rc;
    weft__mutex_lock(&it->lock);
    size_t index = it->ring[it->head++ % it->n];
    weft__mutex_unlock(&it->lock);
    it->yielded++;
    *f = it->fs[index];
    return 0;
}
