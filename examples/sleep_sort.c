/*
 * Notes §15 协程: 协程的定时 / coroutines: sleeping coroutines.
 *
 * sleep_sort — the joke algorithm that shows timers: each number sleeps for itself and then
 * prints. A million sleeping coroutines would cost little (a heap of timers per thread); here
 * a handful sort a list in one thread.
 */
#include <stdio.h>

#include "weft.h"

static void sleep_then_print(void *arg)
{
    int v = *(int *)arg;
    weft_time_sleep(v * 0.01);
    printf("%d ", v);
    fflush(stdout);
}

int main(void)
{
    int values[] = {5, 3, 9, 1, 7, 2, 8, 6, 4, 0};
    enum { N = sizeof values / sizeof values[0] };
    weft_group_t *g;
    if (weft_group_create(0, &g)) return 1;
    for (int i = 0; i < N; i++)
        if (weft_group_spawn(g, sleep_then_print, &values[i], WEFT_FOREVER, NULL)) return 1;
    weft_group_join(g, WEFT_FOREVER);
    printf("\n");
    return weft_group_release(g) ? 1 : 0;
}
