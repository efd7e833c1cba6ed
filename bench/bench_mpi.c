/*
 * bench_mpi — weft's MPI pool (weft/mpi.h) against the process pool on one host and Python's
 * mpi4py.futures MPIPoolExecutor: tasks/s for trivial tasks (8 bytes each way) and for 1 MiB
 * tasks (1 MiB argument, 8-byte result), 2 workers each.
 *
 * Run plainly (make bench ONLY=mpi), it is the driver: each repetition runs the process pool
 * here, and `mpirun -np 3 --oversubscribe` twice: this program as ranks (rank 0 submits and
 * prints its rates) and mpi4py.futures with bench/peer_mpi.py. Each mpirun is one sample,
 * timed after a warm-up, so MPI's start-up is not counted.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "weft.h"
#include "weft/mpi.h"

enum { REPS = 5, WORKERS = 2, TRIVIAL = 20000, BIG = 200, PY_TRIVIAL = 4000, PY_BIG = 100 };
enum { MIB = 1 << 20 };

static int echo8(const void *arg, size_t len, void **result, size_t *result_len)
{
    uint64_t v = len;
    if (len >= sizeof v) memcpy(&v, arg, sizeof v);
    uint64_t *r = malloc(sizeof *r);
    if (!r) return WEFT_ENOMEM;
    *r = v;
    *result = r;
    *result_len = sizeof *r;
    return 0;
}
WEFT_MPI_TASK(echo8)

/* n tasks with len-byte arguments through submit (a process pool when fn, else the MPI pool),
 * all submitted, then all collected: tasks/s. */
static double rate(weft_executor_t *ex, bool mpi, int n, size_t len)
{
    static weft_future_t *fs[TRIVIAL];
    unsigned char *arg = calloc(1, len);
    bench_check(arg != NULL, "malloc");
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        memcpy(arg, &i, sizeof i);
        int rc = mpi ? weft_mpi_pool_submit(ex, "echo8", arg, len, &fs[i])
                     : weft_process_pool_submit(ex, echo8, arg, len, &fs[i]);
        bench_check(rc == 0, "submit");
    }
    for (int i = 0; i < n; i++) {
        bench_check(weft_future_result_bytes(fs[i], WEFT_FOREVER, NULL, NULL) == 0, "result");
        weft_future_release(fs[i]);
    }
    free(arg);
    return n / ((bench_now_ns() - t0) / 1e9);
}

/* ---- rank side (under mpirun) --------------------------------------------------------------- */

static int ranks_main(int argc, char **argv)
{
    bool worker;
    bench_check(weft_mpi_serve(&argc, &argv, &worker) == 0, "weft_mpi_serve");
    if (worker) return 0;
    weft_executor_t *ex;
    bench_check(weft_mpi_pool_create(NULL, &ex) == 0, "weft_mpi_pool_create");
    rate(ex, true, 200, 8); /* warm up */
    printf("trivial %.1f\n", rate(ex, true, TRIVIAL, 8));
    printf("1mib %.1f\n", rate(ex, true, BIG, MIB));
    weft_executor_shutdown(ex, true, false, WEFT_FOREVER);
    weft_executor_release(ex);
    weft_mpi_finalize();
    return 0;
}

/* ---- driver -----------------------------------------------------------------------------------
 */

static const char *self;

/* Runs cmd, reads "trivial <rate>" and "1mib <rate>" from it. */
static double run_ranks(const char *cmd, double *big)
{
    FILE *p = popen(cmd, "r");
    bench_check(p != NULL, "popen");
    char line[256];
    double trivial = 0;
    while (fgets(line, sizeof line, p)) {
        sscanf(line, "trivial %lf", &trivial);
        sscanf(line, "1mib %lf", big);
    }
    bench_check(pclose(p) == 0 && trivial > 0, cmd);
    return trivial;
}

static double run_weft_mpi(void *arg, double *big)
{
    (void)arg;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s -np 3 %s ranks", WEFT_MPIRUN, self);
    return run_ranks(cmd, big);
}

static double run_mpi4py(void *arg, double *big)
{
    (void)arg;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s -np 3 %s -m mpi4py.futures %s %d %d", WEFT_MPIRUN, WEFT_PYTHON,
             WEFT_PEER_MPI_PY, PY_TRIVIAL, PY_BIG);
    return run_ranks(cmd, big);
}

static double run_process_pool(void *arg, double *big)
{
    (void)arg;
    weft_executor_t *ex;
    bench_check(weft_process_pool_create(WORKERS, NULL, &ex) == 0, "process pool");
    rate(ex, false, 200, 8);
    double trivial = rate(ex, false, TRIVIAL, 8);
    *big = rate(ex, false, BIG, MIB);
    weft_executor_shutdown(ex, true, false, WEFT_FOREVER);
    weft_executor_release(ex);
    return trivial;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "ranks") == 0) return ranks_main(argc, argv);
    self = argv[0];
    /* mpirun refuses root without these (containers, CI); loopback only. */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    setenv("OMPI_MCA_btl_tcp_if_include", "lo", 0);
    setenv("OMPI_MCA_oob_tcp_if_include", "lo", 0);
    bench_header("bench_mpi: weft's MPI pool vs its process pool and mpi4py.futures", REPS);
    bool python = system(WEFT_PYTHON " -c 'import mpi4py.futures' 2>/dev/null") == 0;
    if (!python) printf("peer python mpi4py.futures: not installed\n");
    printf("# 2 workers each (mpirun -np 3: rank 0 submits); %d trivial and %d 1 MiB tasks per "
           "repetition (mpi4py: %d and %d), submitted at once, then collected\n",
           TRIVIAL, BIG, PY_TRIVIAL, PY_BIG);
    fflush(stdout);
    bench_case_t cases[3] = {{.run = run_weft_mpi}, {.run = run_process_pool}, {.run = run_mpi4py}};
    bench_interleave(cases, python ? 3 : 2, REPS);
    const char *names[3] = {"weft_mpi_pool", "weft_process_pool", "python mpi4py.futures"};
    for (int i = 0; i < (python ? 3 : 2); i++) {
        char fig[128];
        snprintf(fig, sizeof fig, "trivial tasks %s", names[i]);
        bench_figure(fig, cases[i].median, "tasks/s");
        snprintf(fig, sizeof fig, "1 MiB tasks %s", names[i]);
        bench_figure(fig, cases[i].extra_median, "tasks/s");
    }
    for (int i = 1; i < (python ? 3 : 2); i++) {
        bench_speedup("trivial tasks weft_mpi_pool", names[i], cases[0].median / cases[i].median);
        bench_speedup("1 MiB tasks weft_mpi_pool", names[i],
                      cases[0].extra_median / cases[i].extra_median);
    }
    return 0;
}
