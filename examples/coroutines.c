/*
 * Notes §15 协程: gevent.spawn / coroutines: spawning.
 *
 * coroutines — the seed's gevent example: g = gevent.spawn(func, 'alex').
 *
 * Concurrency inside one thread: each task is a coroutine, and when one would block (here in
 * weft_time_sleep, standing in for a network wait) only it parks and the thread runs another. The
 * two "downloads" below overlap: the whole program takes about as long as the slowest one, not
 * the sum. Shows weft_co_spawn, weft_co_join / weft_co_join_all, weft_co_state and weft_co_spawn.
 */
#include <stdio.h>

#include "weft.h"

typedef struct job {
    const char *name;
    int pages;
} job_t;

static void func(void *arg)
{
    job_t *job = arg;
    for (int i = 1; i <= job->pages; i++) {
        printf("%s: fetching page %d\n", job->name, i);
        weft_time_sleep(0.05); /* a blocking wait: the other coroutine runs meanwhile */
    }
    printf("%s: done\n", job->name);
}

static void say_bye(void *arg)
{
    printf("bye from %s\n", (const char *)arg);
}

int main(void)
{
    job_t alex = {"alex", 3}, egon = {"egon", 2};
    weft_co_t *g1, *g2;
    double t0 = weft_time_monotonic();
    /* Spawning only schedules: the coroutines start when main blocks (in the join below). */
    if (weft_co_spawn(func, &alex, NULL, &g1) || weft_co_spawn(func, &egon, NULL, &g2)) return 1;
    printf("spawned; alex is %s\n", weft_co_state(g1) == WEFT_CO_READY ? "READY" : "?");
    weft_co_t *all[] = {g1, g2};
    weft_co_join_all(all, 2, WEFT_FOREVER); /* gevent.joinall([g1, g2]) */
    printf("both done in %.2f s (one after the other would take %.2f s)\n",
           weft_time_monotonic() - t0, 0.05 * (alex.pages + egon.pages));
    weft_co_release(g1);
    weft_co_release(g2);
    /* Fire and forget (Go's `go`): it runs at the next blocking call of main. */
    if (weft_co_spawn(say_bye, "a detached coroutine", NULL, NULL)) return 1;
    weft_co_yield();
    return 0;
}
