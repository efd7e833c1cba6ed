/*
 * Notes §8 全局解释锁GIL / the GIL.
 *
 * gil — CPU-bound work on N weft threads against the same work on 1 (the notes: in Python
 * "同一个时刻同一个进程内只有一个线程被执行", only one thread of a process runs at a time).
 *
 * C has no interpreter and so no interpreter lock: each weft thread is an OS thread, and
 * threads doing pure computation run on every core at once. The work is N equal chunks of a
 * loop (a linear congruential generator, the same loop as examples/gil.py). First one thread
 * runs all N chunks, then N threads run one chunk each; the speedup is the first time over
 * the second, and the CPU time per wall second shows how many cores were busy. N is the
 * number of online CPUs (or argv[1]). Compare with `python3 examples/gil.py`, where threads
 * bring no speedup and only processes do.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

enum { MAX_THREADS = 64 };
#define CHUNK  60000000u /* loop iterations per chunk: about 0.1 s on one core */
#define ROUNDS 3         /* each way is timed 3 times and the fastest kept (a loaded machine) */

typedef struct chunk {
    uint32_t seed, result;
} chunk_t;

/* The loop: x = (x * 1103515245 + 12345) mod 2^31, n times (gil.py runs the same). */
static __attribute__((noinline)) uint32_t lcg(uint32_t x, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) x = (x * 1103515245u + 12345u) & 0x7fffffffu;
    return x;
}

static void run_chunk(void *arg)
{
    chunk_t *c = arg;
    c->result = lcg(c->seed, CHUNK);
}

typedef struct batch {
    chunk_t *chunks;
    long n;
} batch_t;

static void run_all(void *arg) /* one thread, every chunk in turn */
{
    batch_t *b = arg;
    for (long i = 0; i < b->n; i++) run_chunk(&b->chunks[i]);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1 || n > MAX_THREADS) {
        fprintf(stderr, "usage: gil [threads 1..%d]\n", MAX_THREADS);
        return 2;
    }
    chunk_t one[MAX_THREADS], many[MAX_THREADS];
    for (long i = 0; i < n; i++) one[i] = many[i] = (chunk_t){(uint32_t)i + 1, 0};
    printf("%ld chunks of %u loop iterations, %ld CPUs online\n", n, CHUNK,
           sysconf(_SC_NPROCESSORS_ONLN));

    batch_t all = {one, n};
    double wall1 = 1e9, cpu1 = 0, walln = 1e9, cpun = 0;
    for (int round = 0; round < ROUNDS; round++) {
        /* 1 thread: all n chunks, one after the other. */
        double w0 = weft_time_monotonic(), c0 = cpu_seconds();
        weft_thread_t *t;
        if (weft_thread_start(run_all, &all, NULL, &t) != 0) return 1;
        weft_thread_join(t, WEFT_FOREVER);
        weft_thread_release(t);
        double w = weft_time_monotonic() - w0, c = cpu_seconds() - c0;
        if (w < wall1) wall1 = w, cpu1 = c;

        /* n threads: one chunk each, all at once. */
        weft_thread_t *threads[MAX_THREADS];
        w0 = weft_time_monotonic(), c0 = cpu_seconds();
        for (long i = 0; i < n; i++)
            if (weft_thread_start(run_chunk, &many[i], NULL, &threads[i]) != 0) return 1;
        for (long i = 0; i < n; i++) {
            weft_thread_join(threads[i], WEFT_FOREVER);
            weft_thread_release(threads[i]);
        }
        w = weft_time_monotonic() - w0, c = cpu_seconds() - c0;
        if (w < walln) walln = w, cpun = c;
    }

    for (long i = 0; i < n; i++)
        if (one[i].result != many[i].result) {
            printf("results differ in chunk %ld\n", i);
            return 1;
        }
    printf("1 thread : %.3f s wall, %.3f s CPU (%.2f cores busy)\n", wall1, cpu1, cpu1 / wall1);
    printf("%ld threads: %.3f s wall, %.3f s CPU (%.2f cores busy)\n", n, walln, cpun,
           cpun / walln);
    printf("speedup of %ld threads over 1: %.2fx (ideal %ldx; Python threads: about 1x)\n", n,
           wall1 / walln, n);
    return 0;
}
