/* The second file of the duplicate-name program (mpi_dup_task_a.c): its own static `work`. */
#include "weft/mpi.h"

static int work(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    return WEFT_EIO;
}
WEFT_MPI_TASK(work)
