/*
 * Notes §14 线程池和进程池: 进程池 / pools: ProcessPoolExecutor.
 *
 * process_pool — the seed's 进程池: ProcessPoolExecutor for C. CPU work goes to worker
 * processes as a function plus argument bytes; results come back as bytes through futures, or
 * in order from a map.
 * A task that crashes its worker fails alone (WEFT_EWORKERDIED); the pool replaces the worker.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

/* Sums 1..n, the argument being n as 8 bytes; the result is the sum as 8 bytes. */
static int sum_to(const void *arg, size_t len, void **result, size_t *result_len)
{
    uint64_t n, sum = 0;
    if (len != sizeof n) return WEFT_EINVAL;
    memcpy(&n, arg, sizeof n);
    for (uint64_t i = 1; i <= n; i++) sum += i;
    uint64_t *r = malloc(sizeof *r);
    if (!r) return WEFT_ENOMEM;
    *r = sum;
    *result = r;
    *result_len = sizeof *r;
    return 0;
}

static int crash(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    raise(SIGKILL);
    return 0;
}

int main(void)
{
    weft_executor_t *pool;
    if (weft_process_pool_create(2, NULL, &pool)) return 1; /* ProcessPoolExecutor(2) */
    weft_future_t *f[4], *bad;
    for (uint64_t i = 0; i < 4; i++) {
        uint64_t n = (i + 1) * 1000000;
        /* pool.submit(sum_to, n) */
        if (weft_process_pool_submit(pool, sum_to, &n, sizeof n, &f[i])) return 1;
    }
    if (weft_process_pool_submit(pool, crash, NULL, 0, &bad)) return 1;
    for (int i = 0; i < 4; i++) {
        const void *data;
        if (weft_future_result_bytes(f[i], WEFT_FOREVER, &data, NULL)) return 1; /* f.result() */
        uint64_t sum;
        memcpy(&sum, data, sizeof sum);
        printf("sum to %d million = %llu\n", i + 1, (unsigned long long)sum);
        weft_future_release(f[i]);
    }
    printf("the crashing task: %s\n",
           weft_error_name(weft_future_result_bytes(bad, WEFT_FOREVER, 0, 0)));
    weft_future_release(bad);

    uint64_t ns[3] = {10, 100, 1000};
    weft_bytes_t args[3], sums[3];
    for (int i = 0; i < 3; i++) args[i] = (weft_bytes_t){&ns[i], sizeof ns[i]};
    /* pool.map(sum_to, ns): */
    if (weft_process_pool_map(pool, sum_to, args, 3, sums, WEFT_FOREVER, NULL)) return 1;
    for (int i = 0; i < 3; i++) {
        uint64_t sum;
        memcpy(&sum, sums[i].data, sizeof sum);
        printf("map: sum to %llu = %llu\n", (unsigned long long)ns[i], (unsigned long long)sum);
        free((void *)sums[i].data); /* map's results are the caller's */
    }
    weft_executor_shutdown(pool, true, false, WEFT_FOREVER); /* pool.shutdown(wait=True) */
    weft_executor_release(pool);
    return 0;
}
