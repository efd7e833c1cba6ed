/*
 * futex.c — the one place weft talks to futex(2), and the internal mutex built on it.
 *
 * Timed waits use FUTEX_WAIT_BITSET, whose timeout is an absolute CLOCK_MONOTONIC time: the
 * same clock as weft's deadlines, so a wait interrupted and restarted never drifts.
 */
#include "core_internal.h"
#include "sys_internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int weft__futex_wait(_Atomic uint32_t *word, uint32_t expect, int64_t deadline, bool shared)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != WEFT_NO_DEADLINE) {
        if (deadline <= weft_time_monotonic_ns()) return WEFT_ETIMEDOUT;
        ts.tv_sec = deadline / 1000000000;
        ts.tv_nsec = deadline % 1000000000;
        tsp = &ts;
    }
    int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    long r = weft__sys_futex_wait(word, op, expect, tsp);
    if (r == -1 && errno == ETIMEDOUT) return WEFT_ETIMEDOUT;
    return 0; /* woken, EAGAIN (value changed) or EINTR: the caller re-checks its word */
}

void weft__futex_wake(_Atomic uint32_t *word, int n, bool shared)
{
    int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    syscall(SYS_futex, (uint32_t *)word, op, n, NULL, NULL, 0);
}

_Atomic int weft__idle_helpers;

int weft__ncpu(void)
{
    /* Computed once; a benign race computes the same value twice. Relaxed is enough: the
     * value is self-contained and any thread may recompute it. */
    static _Atomic int ncpu;
    int n = atomic_load_explicit(&ncpu, memory_order_relaxed);
    if (n == 0) {
        long r = sysconf(_SC_NPROCESSORS_ONLN);
        n = r > 0 ? (int)r : 1;
        atomic_store_explicit(&ncpu, n, memory_order_relaxed);
    }
    return n;
}

void weft__mutex_lock_slow(weft__mutex_t *m)
{
    /* Short bounded spin: weft's critical sections are a few list operations. */
    if (weft__ncpu() > 1) {
        for (int i = 0; i < 100; i++) {
            uint32_t expect = 0;
            if (atomic_load_explicit(&m->state, memory_order_relaxed) == 0 &&
                atomic_compare_exchange_weak_explicit(&m->state, &expect, 1, memory_order_acquire,
                                                      memory_order_relaxed))
                return;
            weft__cpu_relax();
        }
    }
    /* Take it as "locked with sleepers" from now on: we cannot know we were the last. */
    while (atomic_exchange_explicit(&m->state, 2, memory_order_acquire) != 0)
        weft__futex_wait(&m->state, 2, WEFT_NO_DEADLINE, false);
}

void weft__mutex_lock_backoff_slow(weft__mutex_t *m)
{
    if (weft__ncpu() > 1) {
        for (int pauses = 4; pauses <= 256; pauses *= 2) {
            for (int i = 0; i < pauses; i++) weft__cpu_relax();
            uint32_t expect = 0;
            if (atomic_load_explicit(&m->state, memory_order_relaxed) == 0 &&
                atomic_compare_exchange_weak_explicit(&m->state, &expect, 1, memory_order_acquire,
                                                      memory_order_relaxed))
                return;
        }
    }
    weft__mutex_lock_slow(m);
}

void weft__mutex_unlock_slow(weft__mutex_t *m)
{
    weft__futex_wake(&m->state, 1, false);
}
