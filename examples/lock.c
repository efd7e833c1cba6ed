/*
 * Notes §7 线程: 互斥锁 / threads: the mutex lock.
 *
 * lock — several workers change one shared thing; a lock lets only one at a time do it
 * (Python's threading.Lock).
 *
 * The shared thing is an account balance. "Deposit 10" is three steps: read the balance, add,
 * write it back. First two depositors without a lock, made to interleave the bad way for sure
 * (each reads, then waits for the other to have read too): one deposit vanishes. Then four
 * workers make 100,000 deposits each under a lock: not one is lost. Last, a lock can be tried
 * with a timeout, and (unlike a pthread mutex) released by any thread.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "weft.h"

/* Atomic so that even the broken version is well-defined C; each load and store is atomic,
 * but "load, add, store" as a whole is not: that is the bug a lock fixes. */
static _Atomic long balance;
static weft_lock_t lock;
static weft_barrier_t both_have_read;

static void deposit_unlocked(void *arg)
{
    (void)arg;
    long seen = atomic_load(&balance);                /* read */
    weft_barrier_wait(&both_have_read, WEFT_FOREVER); /* the other reads the same value */
    atomic_store(&balance, seen + 10);                /* so one write undoes the other */
}

enum { WORKERS = 4, DEPOSITS = 100000 };

static void deposit_locked(void *arg)
{
    (void)arg;
    for (int i = 0; i < DEPOSITS; i++) {
        weft_lock_acquire(&lock, WEFT_FOREVER); /* Python: with lock: */
        long seen = atomic_load(&balance);
        atomic_store(&balance, seen + 1);
        weft_lock_release(&lock);
    }
}

static void releaser(void *arg)
{
    weft_lock_release(arg);
}

/* Starts n threads running fn and waits for them all. */
static int run(int n, void (*fn)(void *), void *arg)
{
    weft_thread_t *t[WORKERS];
    for (int i = 0; i < n; i++)
        if (weft_thread_start(fn, arg, NULL, &t[i]) != 0) return -1;
    for (int i = 0; i < n; i++) {
        weft_thread_join(t[i], WEFT_FOREVER);
        weft_thread_release(t[i]);
    }
    return 0;
}

int main(void)
{
    weft_lock_init(&lock);
    weft_barrier_init(&both_have_read, 2, NULL, NULL);

    atomic_store(&balance, 100);
    if (run(2, deposit_unlocked, NULL) != 0) return 1;
    printf("without a lock: 100 + 10 + 10 = %ld  (a deposit was lost)\n", atomic_load(&balance));

    atomic_store(&balance, 0);
    if (run(WORKERS, deposit_locked, NULL) != 0) return 1;
    printf("with a lock:    %d workers x %d deposits of 1 = %ld\n", WORKERS, DEPOSITS,
           atomic_load(&balance));

    /* Held: a second acquire waits at most its timeout (0 polls), even from the holder. */
    weft_lock_acquire(&lock, WEFT_FOREVER);
    printf("locked: %s; acquire with a 50 ms timeout: %s\n", weft_lock_locked(&lock) ? "yes" : "no",
           weft_error_name(weft_lock_acquire(&lock, 0.05)));
    /* A Lock has no owner: another thread may release it (a hand-off token). */
    if (run(1, releaser, &lock) != 0) return 1;
    printf("released by another thread; locked: %s; a second release: %s\n",
           weft_lock_locked(&lock) ? "yes" : "no", weft_error_name(weft_lock_release(&lock)));

    weft_barrier_destroy(&both_have_read);
    return weft_lock_destroy(&lock) == 0 && atomic_load(&balance) == WORKERS * DEPOSITS ? 0 : 1;
}
