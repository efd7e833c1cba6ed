/*
 * Notes §10 信号量semaphore / the semaphore.
 *
 * semaphore — at most N at a time (Python's threading.Semaphore / BoundedSemaphore).
 *
 * A parking lot has 3 spaces and 8 cars arrive at once. Each car takes a space (acquire: waits
 * while the lot is full), stays a moment, and leaves (release: the space goes to the car that
 * has waited longest). The lot never holds more than 3. One impatient car, arriving last,
 * waits only 10 ms; the lot is full then, so it drives on (WEFT_ETIMEDOUT). Being a
 * BoundedSemaphore, the lot refuses a space it never had (WEFT_EOVERFLOW, Python's ValueError).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "weft.h"

enum { SPACES = 3, CARS = 8 };

static weft_semaphore_t lot;
static _Atomic int parked, most_parked;

static void sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void car(void *arg)
{
    int id = (int)(intptr_t)arg;
    double patience = id == CARS ? 0.01 : WEFT_FOREVER; /* the last car will not wait long */
    int rc = weft_semaphore_acquire(&lot, patience);
    if (rc != 0) {
        printf("  car %d: lot full, drives on (%s)\n", id, weft_error_name(rc));
        return;
    }
    int now = atomic_fetch_add(&parked, 1) + 1;
    for (int most = atomic_load(&most_parked); now > most;)
        if (atomic_compare_exchange_weak(&most_parked, &most, now)) break;
    printf("  car %d parks   (%d/%d taken)\n", id, now, SPACES);
    sleep_ms(20); /* shopping */
    atomic_fetch_sub(&parked, 1);
    printf("  car %d leaves\n", id);
    weft_semaphore_release(&lot, 1);
}

int main(void)
{
    weft_semaphore_init(&lot, SPACES, true); /* bounded: never more than SPACES units */

    weft_thread_t *cars[CARS];
    for (int i = 0; i < CARS; i++)
        if (weft_thread_start(car, (void *)(intptr_t)(i + 1), NULL, &cars[i]) != 0) return 1;
    for (int i = 0; i < CARS; i++) {
        weft_thread_join(cars[i], WEFT_FOREVER);
        weft_thread_release(cars[i]);
    }
    printf("most cars parked at once: %d of %d spaces; free now: %u\n", atomic_load(&most_parked),
           SPACES, weft_semaphore_value(&lot));

    /* Handing back a space nobody took would make a 4th space appear: refused. */
    printf("release one more space: %s; free: %u\n",
           weft_error_name(weft_semaphore_release(&lot, 1)), weft_semaphore_value(&lot));
    return weft_semaphore_destroy(&lot) == 0 && atomic_load(&most_parked) <= SPACES ? 0 : 1;
}
