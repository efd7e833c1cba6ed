/*
 * clock.c — CLOCK_MONOTONIC and the timeout → deadline conversion every blocking call uses.
 * Deadlines are absolute monotonic nanoseconds; INT64_MAX (WEFT_NO_DEADLINE) is never.
 */
#include "core_internal.h"

#include <math.h>
#include <time.h>

int64_t weft_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double weft_monotonic(void)
{
    return (double)weft_monotonic_ns() / 1e9;
}

int weft_deadline(double timeout, weft_deadline_t *deadline)
{
    if (!deadline || isnan(timeout)) return WEFT_EINVAL;
    if (timeout < 0) {
        *deadline = WEFT_NO_DEADLINE;
        return 0;
    }
    int64_t now = weft_monotonic_ns();
    /* 9.2e18 ns is ~292 years: anything past it (or +inf) cannot be waited out anyway. */
    double ns = timeout * 1e9;
    if (ns >= (double)(WEFT_NO_DEADLINE - now)) {
        *deadline = WEFT_NO_DEADLINE;
        return 0;
    }
    *deadline = now + (int64_t)ns;
    return 0;
}

double weft_deadline_remaining(weft_deadline_t deadline)
{
    if (deadline == WEFT_NO_DEADLINE) return WEFT_FOREVER;
    int64_t left = deadline - weft_monotonic_ns();
    return left > 0 ? (double)left / 1e9 : 0.0;
}
