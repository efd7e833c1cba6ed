/*
 * clock.c — CLOCK_MONOTONIC and the timeout → deadline conversion every blocking call uses.
 * Inside weft deadlines are absolute monotonic nanoseconds (int64_t); INT64_MAX
 * (WEFT_NO_DEADLINE) is never. The public weft_deadline_t wraps one such value.
 * Only WEFT_FOREVER (-inf) becomes "never": any other negative timeout is a deadline that has
 * already passed, so a computed remainder that went negative polls instead of blocking.
 */
#include "core_internal.h"

#include <math.h>
#include <time.h>

int64_t weft_time_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double weft_time_monotonic(void)
{
    return (double)weft_time_monotonic_ns() / 1e9;
}

int weft__deadline_ns(double timeout, int64_t *deadline)
{
    if (isnan(timeout)) return WEFT_EINVAL;
    if (timeout == WEFT_FOREVER) {
        *deadline = WEFT_NO_DEADLINE;
        return 0;
    }
    int64_t now = weft_time_monotonic_ns();
    if (timeout <= 0) { /* 0 polls; so does any other negative: an expired deadline */
        *deadline = now;
        return 0;
    }
    /* 9.2e18 ns is ~292 years: anything past it (or +inf) cannot be waited out anyway. */
    double ns = timeout * 1e9;
    if (ns >= (double)(WEFT_NO_DEADLINE - now)) {
        *deadline = WEFT_NO_DEADLINE;
        return 0;
    }
    *deadline = now + (int64_t)ns;
    return 0;
}

int64_t weft__deadline_after(int64_t sec, int64_t nsec)
{
    int64_t now = weft_time_monotonic_ns(), ns, deadline;
    if (__builtin_mul_overflow(sec, (int64_t)1000000000, &ns) ||
        __builtin_add_overflow(ns, nsec, &ns))
        return sec < 0 ? now : WEFT_NO_DEADLINE;
    if (ns <= 0) return now;
    if (__builtin_add_overflow(now, ns, &deadline)) return WEFT_NO_DEADLINE;
    return deadline;
}

int weft_deadline_after(double timeout, weft_deadline_t *deadline)
{
    if (!deadline) return WEFT_EINVAL;
    return weft__deadline(timeout, &deadline->at_ns_);
}

int weft_deadline_add(weft_deadline_t *deadline, double seconds)
{
    if (!deadline || isnan(seconds)) return WEFT_EINVAL;
    int64_t at = deadline->at_ns_;
    if (at == WEFT_NO_DEADLINE) return 0;
    double ns = seconds * 1e9;
    int64_t sum;
    /* Range first: an infinite or huge move must not reach the integer conversion. */
    if (isinf(seconds) || ns >= (double)WEFT_NO_DEADLINE)
        sum = WEFT_NO_DEADLINE;
    else if (ns <= -(double)WEFT_NO_DEADLINE || __builtin_add_overflow(at, (int64_t)ns, &sum))
        sum = ns < 0 ? 0 : WEFT_NO_DEADLINE;
    deadline->at_ns_ = sum < 0 ? 0 : sum; /* before the clock's origin: long passed */
    return 0;
}

double weft_deadline_remaining(weft_deadline_t deadline)
{
    return weft__deadline_remaining(deadline.at_ns_);
}

double weft__deadline_remaining(int64_t deadline)
{
    if (deadline == WEFT_NO_DEADLINE) return WEFT_FOREVER;
    int64_t left;
    /* A deadline far in the past (only a forged value can be) is passed, not 292 years off. */
    if (__builtin_sub_overflow(deadline, weft_time_monotonic_ns(), &left)) return 0.0;
    return left > 0 ? (double)left / 1e9 : 0.0;
}
