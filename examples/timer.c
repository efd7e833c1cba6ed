/*
 * Notes §12 定时器 / the timer.
 *
 * timer — run a function after a delay; cancel (Python's threading.Timer).
 *
 * Two timers are started: a reminder in 0.2 s and an alarm in 0.3 s. The alarm is canceled
 * before it fires, so only the reminder runs. A third timer sets an Event through an adapter
 * (no callback of our own). Then a thousand timers show that pending timers cost no threads:
 * one internal timer thread serves them all, in deadline order.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

static double t0;

static void say(void *arg)
{
    printf("  %.2f s: %s\n", weft_time_monotonic() - t0, (const char *)arg);
}

static void count(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

int main(void)
{
    t0 = weft_time_monotonic();
    weft_timer_t reminder = WEFT_TIMER_INIT, alarm = WEFT_TIMER_INIT;
    weft_timer_start(&reminder, 0.2, say, "reminder: the tea is ready");
    weft_timer_start(&alarm, 0.3, say, "alarm: the tea is cold (you should not see this)");

    /* cancel returns 0 when the timer had not fired yet: its function will never run. */
    if (weft_timer_cancel(&alarm) == 0)
        printf("  %.2f s: alarm canceled\n", weft_time_monotonic() - t0);
    weft_timer_join(&reminder, WEFT_FOREVER); /* waits until the reminder has run */
    /* Too late to cancel now: WEFT_EALREADY says the function already ran. */
    printf("  cancel after it ran: %s\n", weft_error_name(weft_timer_cancel(&reminder)));

    /* The common one-argument calls have a callback form (*_cb): this timer sets an Event. */
    static weft_event_t steeped = WEFT_EVENT_INIT;
    weft_timer_t steep = WEFT_TIMER_INIT;
    weft_timer_start(&steep, 0.05, weft_event_set_cb, &steeped);
    weft_event_wait(&steeped, WEFT_FOREVER);
    printf("  %.2f s: event set by a timer\n", weft_time_monotonic() - t0);
    weft_timer_join(&steep, WEFT_FOREVER);

    enum { N = 1000 };
    weft_timer_t *many = calloc(N, sizeof *many);
    atomic_int fired = 0;
    if (!many) return 1;
    for (int i = 0; i < N; i++) weft_timer_start(&many[i], 0.05 + i * 0.0001, count, &fired);
    for (int i = 0; i < N; i++) weft_timer_join(&many[i], WEFT_FOREVER);
    printf("  %.2f s: %d of %d timers fired, all on one timer thread\n", weft_time_monotonic() - t0,
           atomic_load(&fired), N);
    free(many);
    return 0;
}
