/*
 * Notes §11 event信号, beyond the notes: 条件变量 Condition / the event, and Condition.
 *
 * condition — producers and consumers around a small shelf (Python's threading.Condition).
 *
 * One cook puts dishes on a shelf that holds 3; two waiters take them off. Both sides use
 * one Condition: the cook waits for room, the waiters wait for a dish, each with wait_for —
 * a predicate re-checked after every wake-up, so a waiter that loses the race for a dish
 * simply waits again. After the last dish a waiter still asks for one more, with a timeout,
 * and gets WEFT_ETIMEDOUT. Shows weft_condition_wait_for, notify / notify_all, and that the
 * condition's lock is held around every look at the shelf.
 */
#include <stdio.h>

#include "weft.h"

enum { SHELF = 3, DISHES = 8, SERVERS = 2 };

typedef struct kitchen {
    weft_condition_t cond; /* its own (re-entrant) lock guards everything below */
    int shelf[SHELF];
    int count;
    bool closed; /* the cook is done */
} kitchen_t;

static bool has_room(void *arg)
{
    return ((kitchen_t *)arg)->count < SHELF;
}

static bool has_dish_or_closed(void *arg)
{
    kitchen_t *k = arg;
    return k->count > 0 || k->closed;
}

static bool has_dish(void *arg)
{
    return ((kitchen_t *)arg)->count > 0;
}

static void cook(void *arg)
{
    kitchen_t *k = arg;
    for (int dish = 1; dish <= DISHES; dish++) {
        weft_condition_acquire(&k->cond, WEFT_FOREVER);
        weft_condition_wait_for(&k->cond, has_room, k, WEFT_FOREVER);
        k->shelf[k->count++] = dish;
        printf("cook:     dish %d on the shelf (%d/%d)\n", dish, k->count, SHELF);
        weft_condition_notify(&k->cond, 1); /* one waiter can take it */
        weft_condition_release(&k->cond);
    }
    weft_condition_acquire(&k->cond, WEFT_FOREVER);
    k->closed = true;
    weft_condition_notify_all(&k->cond); /* let every waiter see it */
    weft_condition_release(&k->cond);
}

static void server(void *arg)
{
    kitchen_t *k = arg;
    const char *me = weft_thread_name(weft_thread_current());
    for (;;) {
        weft_condition_acquire(&k->cond, WEFT_FOREVER);
        weft_condition_wait_for(&k->cond, has_dish_or_closed, k, WEFT_FOREVER);
        if (k->count == 0) { /* closed and nothing left */
            weft_condition_release(&k->cond);
            return;
        }
        int dish = k->shelf[0];
        for (int i = 1; i < k->count; i++) k->shelf[i - 1] = k->shelf[i];
        k->count--;
        printf("%s: serves dish %d\n", me, dish);
        weft_condition_notify_all(&k->cond); /* the cook may wait for room */
        weft_condition_release(&k->cond);
    }
}

int main(void)
{
    kitchen_t k = {.count = 0};
    weft_condition_init(&k.cond, NULL, NULL);

    weft_thread_t *threads[SERVERS + 1];
    for (int i = 0; i < SERVERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "waiter-%d", i + 1);
        weft_thread_opts_t opts = {.name = name};
        if (weft_thread_start(server, &k, &opts, &threads[i]) != 0) return 1;
    }
    weft_thread_opts_t opts = {.name = "cook"};
    if (weft_thread_start(cook, &k, &opts, &threads[SERVERS]) != 0) return 1;
    for (int i = 0; i <= SERVERS; i++) {
        weft_thread_join(threads[i], WEFT_FOREVER);
        weft_thread_release(threads[i]);
    }

    /* Nobody cooks any more: waiting for a dish ends with the timeout. */
    weft_condition_acquire(&k.cond, WEFT_FOREVER);
    double t0 = weft_time_monotonic();
    int rc = weft_condition_wait_for(&k.cond, has_dish, &k, 0.05);
    printf("one more dish within 50 ms? %s after %.0f ms (lock held again: %s)\n",
           weft_error_name(rc), (weft_time_monotonic() - t0) * 1e3,
           weft_condition_release(&k.cond) == 0 ? "yes" : "no");
    return weft_condition_destroy(&k.cond) == 0 ? 0 : 1;
}
