/*
 * bench_common.h — what every bench_<area>.c shares: the clocks, the output format, and the
 * interleaved-repetition runner.
 *
 * Output (STYLE.md habit 11): one "<figure>: <value> <unit>" line per figure, and
 * "speedup <figure> vs <peer>: <x>" where x > 1 means weft is ahead. Lines starting with '#'
 * are commentary (machine, method).
 *
 * Method: the machines we run on are small and shared (2 vCPUs, builds running beside us), so
 * one timing means little. bench_interleave() runs every case of a comparison once per
 * repetition, rotating which goes first, so weft and its peer see the same background load;
 * each figure is the median over the repetitions (BENCH_SAMPLES=1 in the environment prints
 * every sample too). A comparison that needs weft configured differently through the
 * environment (WEFT_SPIN_NS=0, say) runs that side in a bench_child_t, a process forked before
 * the first weft call, so it still interleaves with the parent's runs.
 */
#ifndef WEFT_BENCH_COMMON_H
#define WEFT_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_REPS 32

static inline int64_t bench_clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wall time (CLOCK_MONOTONIC), CPU time of the whole process, CPU time of the caller. */
static inline int64_t bench_now_ns(void)
{
    return bench_clock_ns(CLOCK_MONOTONIC);
}
static inline int64_t bench_cpu_ns(void)
{
    return bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}
static inline int64_t bench_thread_cpu_ns(void)
{
    return bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* A CPU pause, for busy loops (the same hint weft's own spins give the core). */
static inline void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Prints v with about three significant digits, never in exponent form. */
static inline void bench_print_value(double v)
{
    int decimals = v >= 100 ? 0 : v >= 10 ? 1 : v >= 1 ? 2 : 3;
    printf("%.*f", decimals, v);
}

static inline void bench_figure(const char *figure, double value, const char *unit)
{
    printf("%s: ", figure);
    bench_print_value(value);
    printf(" %s\n", unit);
}

/* x > 1: weft ahead. The caller computes x in the right direction for the figure (peer time
 * over weft time, or weft rate over peer rate). */
static inline void bench_speedup(const char *figure, const char *peer, double x)
{
    printf("speedup %s vs %s: %.2f\n", figure, peer, x);
}

/* "# <title>" then the machine: CPUs, CPU model, kernel, and the 1-minute load average (other
 * work running beside us, which the figures feel). */
static inline void bench_header(const char *title, int reps)
{
    char model[128] = "unknown CPU", line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(model, sizeof model, "%s", colon + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f) fclose(f);
    struct utsname u;
    uname(&u);
    double load = -1;
    f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &load) != 1) load = -1;
    if (f) fclose(f);
    printf("# %s\n# %ld CPUs (%s), %s %s, load average %.2f; median of %d interleaved "
           "repetitions\n",
           title, sysconf(_SC_NPROCESSORS_ONLN), model, u.sysname, u.release, load, reps);
    fflush(stdout);
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_median(const double *v, int n)
{
    double s[BENCH_MAX_REPS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* One side of a comparison. run() performs one timed repetition and returns its figure; it
 * may also store a secondary figure (a CPU cost, say) in *extra. */
typedef struct bench_case {
    double (*run)(void *arg, double *extra);
    void *arg;
    double samples[BENCH_MAX_REPS];
    double extras[BENCH_MAX_REPS];
    double median;       /* out: median of the run() results */
    double extra_median; /* out: median of the *extra values */
} bench_case_t;

/* Runs every case `reps` times (reps <= BENCH_MAX_REPS), case order rotating each repetition,
 * and fills in each case's medians. */
static inline void bench_interleave(bench_case_t *cases, int ncases, int reps)
{
    const char *verbose = getenv("BENCH_SAMPLES");
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < ncases; k++) {
            bench_case_t *c = &cases[(r + k) % ncases];
            c->extras[r] = 0;
            c->samples[r] = c->run(c->arg, &c->extras[r]);
        }
    }
    for (int k = 0; k < ncases; k++) {
        cases[k].median = bench_median(cases[k].samples, reps);
        cases[k].extra_median = bench_median(cases[k].extras, reps);
        if (verbose && *verbose && *verbose != '0') {
            printf("# samples of case %d:", k);
            for (int r = 0; r < reps; r++) printf(" %.4g", cases[k].samples[r]);
            printf("\n");
        }
    }
}

/* Exits with a message when a call that cannot fail in a correct run fails: a benchmark of a
 * broken primitive is worse than none. */
static inline void bench_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "bench: %s failed\n", what);
        exit(1);
    }
}

/* ---- a child process with a different environment ------------------------------------------
 * bench_child_start forks; the child sets name=value in its environment (before its first
 * weft call, since weft reads such settings once), then serves requests: it reads a case
 * number from the parent, runs serve(which, &extra) and writes back the two doubles. EOF on
 * its request pipe ends it. Call it before the parent's first weft call and before it starts
 * any thread. */

typedef struct bench_child {
    pid_t pid;
    int cmd, res; /* the parent's ends: requests out, results in */
} bench_child_t;

static inline bench_child_t bench_child_start(const char *name, const char *value,
                                              double (*serve)(int which, double *extra))
{
    int cmd[2], res[2];
    bench_check(pipe(cmd) == 0 && pipe(res) == 0, "pipe");
    fflush(stdout);
    pid_t pid = fork();
    bench_check(pid >= 0, "fork");
    if (pid == 0) {
        close(cmd[1]), close(res[0]);
        setenv(name, value, 1);
        int which;
        while (read(cmd[0], &which, sizeof which) == sizeof which) {
            double out[2] = {0, 0};
            out[0] = serve(which, &out[1]);
            if (write(res[1], out, sizeof out) != sizeof out) break;
        }
        _exit(0);
    }
    close(cmd[0]), close(res[1]);
    return (bench_child_t){pid, cmd[1], res[0]};
}

static inline void bench_child_stop(bench_child_t *c)
{
    close(c->cmd), close(c->res);
    waitpid(c->pid, NULL, 0);
}

/* A case run by a child: bench_case_t{.run = bench_remote_run, .arg = &(bench_remote_t){...}}. */
typedef struct bench_remote {
    bench_child_t *child;
    int which;
} bench_remote_t;

static inline double bench_remote_run(void *arg, double *extra)
{
    bench_remote_t *r = arg;
    double out[2];
    bench_check(write(r->child->cmd, &r->which, sizeof r->which) == sizeof r->which &&
                    read(r->child->res, out, sizeof out) == sizeof out,
                "request to the child process");
    *extra = out[1];
    return out[0];
}

#endif /* WEFT_BENCH_COMMON_H */
