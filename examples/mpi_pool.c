/*
 * mpi_pool — the process pool example (process_pool.c), distributed: the same tasks run on MPI
 * ranks, on this host or across hosts. Every rank runs this program; rank 0 submits, the
 * others serve:
 *
 *     mpirun -np 3 --oversubscribe build/default/examples/mpi_pool
 *     mpirun -np 9 --hostfile hosts build/default/examples/mpi_pool     (across hosts)
 *
 * Tasks are named, since function addresses differ between hosts: WEFT_MPI_TASK registers
 * each one under its name on every rank.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"
#include "weft/mpi.h"

/* Sums 1..n, the argument being n as 8 bytes; the result is the sum and the host. */
static int sum_to(const void *arg, size_t len, void **result, size_t *result_len)
{
    uint64_t n, sum = 0;
    if (len != sizeof n) return WEFT_EINVAL;
    memcpy(&n, arg, sizeof n);
    for (uint64_t i = 1; i <= n; i++) sum += i;
    char *r = calloc(1, sizeof sum + 64);
    if (!r) return WEFT_ENOMEM;
    memcpy(r, &sum, sizeof sum);
    gethostname(r + sizeof sum, 63);
    *result = r;
    *result_len = sizeof sum + 64;
    return 0;
}
WEFT_MPI_TASK(sum_to)

int main(int argc, char **argv)
{
    bool worker;
    if (weft_mpi_serve(&argc, &argv, &worker) != 0) return 1;
    if (worker) return 0; /* ranks 1..N-1 served until rank 0 finished */

    weft_executor_t *pool;
    if (weft_mpi_pool_create(NULL, &pool) != 0) { /* MPIPoolExecutor() */
        fprintf(stderr, "no worker ranks: run me under mpirun -np 3\n");
        return 1;
    }
    weft_future_t *f[4], *bad;
    for (uint64_t i = 0; i < 4; i++) {
        uint64_t n = (i + 1) * 1000000;
        /* pool.submit(sum_to, n) */
        if (weft_mpi_pool_submit(pool, "sum_to", &n, sizeof n, &f[i])) return 1;
    }
    if (weft_mpi_pool_submit(pool, "no_such_task", NULL, 0, &bad)) return 1;
    for (int i = 0; i < 4; i++) {
        const char *data;
        /* f.result() */
        if (weft_future_result_bytes(f[i], WEFT_FOREVER, (const void **)&data, NULL)) return 1;
        uint64_t sum;
        memcpy(&sum, data, sizeof sum);
        printf("sum to %d million = %llu (on %s)\n", i + 1, (unsigned long long)sum,
               data + sizeof sum);
        weft_future_release(f[i]);
    }
    printf("an unregistered task: %s\n",
           weft_error_name(weft_future_result_bytes(bad, WEFT_FOREVER, 0, 0)));
    weft_future_release(bad);

    uint64_t ns[3] = {10, 100, 1000};
    weft_bytes_t args[3], sums[3];
    for (int i = 0; i < 3; i++) args[i] = (weft_bytes_t){&ns[i], sizeof ns[i]};
    /* pool.map(sum_to, ns): */
    if (weft_mpi_pool_map(pool, "sum_to", args, 3, sums, WEFT_FOREVER, NULL) == 0)
        for (int i = 0; i < 3; i++) {
            uint64_t sum;
            memcpy(&sum, sums[i].data, sizeof sum);
            printf("map: sum to %llu = %llu\n", (unsigned long long)ns[i], (unsigned long long)sum);
            free((void *)sums[i].data); /* map's results are the caller's */
        }
    weft_executor_shutdown(pool, true, false, WEFT_FOREVER); /* pool.shutdown(wait=True) */
    weft_executor_release(pool);
    weft_mpi_finalize(); /* the worker ranks leave */
    return 0;
}
