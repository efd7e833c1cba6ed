/*
 * shared_park.c — the waits the waiting core cannot park on a waiter of its own: a word in
 * memory shared between processes (weft__shared_park), and anything only looked at between
 * naps (weft__nap_until, the one backoff loop). See wait_internal.h for their contracts.
 */
#include "wait_internal.h"

#define NAP_MIN_NS 20000LL   /* the first nap of a backoff */
#define NAP_MAX_NS 1000000LL /* the longest: a change is seen at most this late */

int weft__nap_until(bool (*done)(void *arg), void *arg, int64_t deadline, bool nocancel)
{
    weft__waitctx_t *ctx = weft__waitctx_current();
    deadline = weft__scoped_deadline(ctx, deadline);
    for (int64_t nap = NAP_MIN_NS;; nap = nap < NAP_MAX_NS / 2 ? 2 * nap : NAP_MAX_NS) {
        if (done(arg)) return 0;
        if (!nocancel && weft__waitctx_canceled(ctx)) return WEFT_ECANCELED;
        int64_t now = weft_time_monotonic_ns();
        if (deadline <= now) return WEFT_ETIMEDOUT;
        int rc = weft__nap(deadline - now < nap ? deadline : now + nap, nocancel);
        if (rc == WEFT_ECANCELED) return rc;
    }
}

typedef struct word_seen {
    _Atomic uint32_t *word;
    uint32_t seen;
} word_seen_t;

static bool word_moved(void *arg)
{
    word_seen_t *ws = arg;
    /* Acquire: the caller goes on to read what the changer published. */
    return atomic_load_explicit(ws->word, memory_order_acquire) != ws->seen;
}

static int shared_park(weft__waitctx_t *ctx, _Atomic uint32_t *word, uint32_t seen,
                       int64_t deadline, bool nocancel);

/* Described as SHARED on the word (the object's address when the word is its first field);
 * a caller's own description (a process Queue's get) stands. */
int weft__shared_park(_Atomic uint32_t *word, uint32_t seen, int64_t deadline, bool nocancel)
{
    weft__waitctx_t *ctx = weft__waitctx_current();
    bool mark = weft__blocked_enter(ctx, WEFT__ON_SHARED, (const void *)word,
                                    weft__scoped_deadline(ctx, deadline));
    int rc = shared_park(ctx, word, seen, deadline, nocancel);
    weft__blocked_leave(ctx, mark);
    return rc;
}

static int shared_park(weft__waitctx_t *ctx, _Atomic uint32_t *word, uint32_t seen,
                       int64_t deadline, bool nocancel)
{
    if (ctx->parker)
        return weft__nap_until(word_moved, &(word_seen_t){word, seen}, deadline, nocancel);
    if (!nocancel && weft__waitctx_canceled(ctx)) return WEFT_ECANCELED;
    deadline = weft__scoped_deadline(ctx, deadline);
    if (deadline != WEFT_NO_DEADLINE && deadline <= weft_time_monotonic_ns()) return WEFT_ETIMEDOUT;
    int64_t end = weft__cancel_slice_end(ctx, deadline, nocancel);
    if (weft__futex_wait(word, seen, end, true) != WEFT_ETIMEDOUT) return 0; /* woken, moved */
    /* Not woken: the deadline, or a slice's end (then a cancel may be why). */
    if (end == deadline) return WEFT_ETIMEDOUT;
    return !nocancel && weft__waitctx_canceled(ctx) ? WEFT_ECANCELED : 0;
}
