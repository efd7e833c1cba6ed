/* A program with a task name registered twice, from two files (this one and
 * mpi_dup_task_b.c each define a static `work` and WEFT_MPI_TASK(work)): the second
 * registration must stop the program at load, naming the task, before main runs
 * (executor.mpi_pool.mpi_pool_duplicate_task_name_aborts_at_load in tests/mpi.cmake). */
#include <stdio.h>
#include <string.h>

#include "weft/mpi.h"

static int work(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    return 0;
}
WEFT_MPI_TASK(work)

int main(void)
{
    /* Reached only if the duplicate went unseen: one of the two `work`s can never run. */
    printf("main ran: the second WEFT_MPI_TASK(work) was dropped silently\n");
    return 0;
}
