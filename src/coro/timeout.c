/*
 * timeout.c — timeout scopes (gevent.Timeout): a deadline on the calling context that the
 * waiting core applies to every park (weft__waiter_park_in takes the earlier of the call's
 * deadline and the scope's). Works for threads and coroutines alike.
 */
#include "coro_internal.h"

#include <math.h>

int weft_timeout_begin(weft_timeout_t *t, double seconds)
{
    if (!t || isnan(seconds)) return WEFT_EINVAL;
    weft__waitctx_t *ctx = weft__waitctx_current();
    int64_t d;
    weft__deadline(seconds, &d);
    *t = (weft_timeout_t){.deadline_ = d, .saved_ = ctx->scope, .depth_ = ++ctx->scope_depth};
    int64_t scope = d == WEFT_NO_DEADLINE ? 0 : d;
    if (t->saved_ && (!scope || t->saved_ < scope)) scope = t->saved_;
    ctx->scope = scope;
    return 0;
}

int weft_timeout_end(weft_timeout_t *t)
{
    if (!t) return WEFT_EINVAL;
    weft__waitctx_t *ctx = weft__waitctx_current();
    /* Ended already, with an outer scope ended before it: nothing to restore. Only the depth
     * is read, never another scope (a forgotten one's memory may be gone). */
    if (t->depth_ == 0 || t->depth_ > ctx->scope_depth) return WEFT_EINVAL;
    ctx->scope_depth = t->depth_ - 1; /* closes every scope opened inside t as well */
    ctx->scope = t->saved_;
    t->depth_ = UINT64_MAX;
    if (t->deadline_ != WEFT_NO_DEADLINE && weft_time_monotonic_ns() >= t->deadline_)
        return WEFT_ETIMEDOUT;
    return 0;
}
