/*
 * local.c — thread-local data (Python's threading.local), with Python's lifetime rules: a
 * value's destructor runs when its thread exits, whichever thread it is, and destroying the
 * slot destroys every thread's value.
 *
 * Data structure: every weft_thread_local_t owns an index into `slots`, the table of live
 * slots; every thread record owns `values`, an array indexed the same way, grown on demand up
 * to the table's size. get is one TLS load and an array read. The calling thread's record is
 * what makes values reachable from other threads (destroy sweeps them), which is why a
 * foreign thread storing a value gets a dummy record (registry.c).
 *
 * Locking: `slots`, `nslots`, `live`, and every change to a record's `values` pointer or to
 * ANOTHER thread's entries happen under weft__registry_lock. A thread reads its own array
 * and writes its own entries without a lock: only destroy touches them from elsewhere, and
 * only at its own index, which the program must not use concurrently (as any destroy).
 * Destructors are called with no lock held. When the last slot is destroyed, the table and
 * every thread's array are freed, so a program that destroys its slots leaves nothing behind.
 */
#include "thread_internal.h"

#include <string.h>

struct weft_thread_local {
    weft__handle_t hd; /* debug mode: magic, the program's reference (core_internal.h) */
    size_t index;
    void (*destructor)(void *value);
};

static weft_thread_local_t **slots; /* index -> slot, NULL where free */
static size_t nslots;
static size_t live; /* slots in use */

/* pthread's PTHREAD_DESTRUCTOR_ITERATIONS: destructors that set values again get this many
 * rounds before the rest are dropped. */
enum { DESTRUCTOR_ROUNDS = 4 };

/* Grows `p`, an array of n pointers, to `want`, zeroing the new part; NULL on failure. */
static void *grow(void *p, size_t n, size_t want)
{
    void **q = weft__realloc(p, want * sizeof *q);
    if (q) memset(q + n, 0, (want - n) * sizeof *q);
    return q;
}

int weft_thread_local_create(void (*destructor)(void *value), weft_thread_local_t **out)
{
    if (!out) return WEFT_EINVAL;
    *out = NULL;
    weft__thread_init();
    weft_thread_local_t *l = weft__handle_alloc(sizeof *l);
    if (!l) return WEFT_ENOMEM;
    weft__handle_init(&l->hd, WEFT__ID_THREAD_LOCAL, 1);
    l->destructor = destructor;

    weft__mutex_lock(&weft__registry_lock);
    size_t i = 0;
    while (i < nslots && slots[i]) i++;
    if (i == nslots) {
        size_t want = nslots ? 2 * nslots : 8;
        weft_thread_local_t **table = grow(slots, nslots, want);
        if (!table) {
            weft__mutex_unlock(&weft__registry_lock);
            weft__handle_free(l, &l->hd);
            return WEFT_ENOMEM;
        }
        slots = table;
        nslots = want;
    }
    slots[i] = l;
    l->index = i;
    live++;
    weft__mutex_unlock(&weft__registry_lock);
    *out = l;
    return 0;
}

void *weft_thread_local_get(const weft_thread_local_t *l)
{
    WEFT__HANDLE_CHECK(l, WEFT__ID_THREAD_LOCAL, "thread_local");
    weft_thread_t *self = weft__thread_self;
    if (!l || !self || l->index >= self->nvalues) return NULL;
    return self->values[l->index];
}

int weft_thread_local_set(weft_thread_local_t *l, void *value)
{
    WEFT__HANDLE_CHECK(l, WEFT__ID_THREAD_LOCAL, "thread_local");
    if (!l) return WEFT_EINVAL;
    weft_thread_t *self = weft_thread_current();
    if (!self) return WEFT_ENOMEM;
    if (l->index >= self->nvalues) {
        if (!value) return 0; /* already NULL */
        weft__mutex_lock(&weft__registry_lock);
        void **values = grow(self->values, self->nvalues, nslots);
        if (values) {
            self->values = values;
            self->nvalues = nslots;
        }
        weft__mutex_unlock(&weft__registry_lock);
        if (!values) return WEFT_ENOMEM;
    }
    self->values[l->index] = value;
    return 0;
}

/* Takes the first value at or after *i out of t's array (registry lock held). */
static void *take_next_locked(weft_thread_t *t, size_t *i)
{
    for (; *i < t->nvalues; ++*i) {
        void *v = t->values[*i];
        if (v) {
            t->values[*i] = NULL;
            return v;
        }
    }
    return NULL;
}

void weft__locals_finish(weft_thread_t *t)
{
    for (int round = 0; round < DESTRUCTOR_ROUNDS; round++) {
        bool any = false;
        for (size_t i = 0;; i++) {
            weft__mutex_lock(&weft__registry_lock);
            void *v = take_next_locked(t, &i);
            void (*destructor)(void *) = v && slots[i] ? slots[i]->destructor : NULL;
            weft__mutex_unlock(&weft__registry_lock);
            if (!v) break;
            any = true;
            if (destructor) destructor(v);
        }
        if (!any) break;
    }
    weft__mutex_lock(&weft__registry_lock);
    weft__locals_drop(t);
    weft__mutex_unlock(&weft__registry_lock);
}

void weft__locals_drop(weft_thread_t *t)
{
    weft__free(t->values);
    t->values = NULL;
    t->nvalues = 0;
}

/* Takes some thread's value for slot l out of its array, NULL when none is left. */
static void *take_any(const weft_thread_local_t *l)
{
    void *v = NULL;
    weft__mutex_lock(&weft__registry_lock);
    for (weft_thread_t *t = weft__registry_next_locked(NULL); t && !v;
         t = weft__registry_next_locked(t)) {
        if (l->index < t->nvalues && t->values[l->index]) {
            v = t->values[l->index];
            t->values[l->index] = NULL;
        }
    }
    weft__mutex_unlock(&weft__registry_lock);
    return v;
}

int weft_thread_local_release(weft_thread_local_t *l)
{
    WEFT__HANDLE_RELEASE(l, WEFT__ID_THREAD_LOCAL, "thread_local");
    if (!l) return WEFT_EINVAL;
    for (void *v; (v = take_any(l));)
        if (l->destructor) l->destructor(v);

    weft__mutex_lock(&weft__registry_lock);
    slots[l->index] = NULL;
    if (--live == 0) {
        /* No slot left, so no get or set can be running: free every array. */
        for (weft_thread_t *t = weft__registry_next_locked(NULL); t;
             t = weft__registry_next_locked(t))
            weft__locals_drop(t);
        weft__free(slots);
        slots = NULL;
        nslots = 0;
    }
    weft__mutex_unlock(&weft__registry_lock);
    weft__handle_free(l, &l->hd);
    return 0;
}
