/*
 * lab.h — the IO-models lab (`weft-lab`): one echo service per IO model of the seed, a load
 * generator, and the race that runs them side by side.
 *
 * Every server runs in a child process of its own (so its CPU time and memory can be read
 * from /proc), serves the listening socket it inherits, echoes what it reads, and ends on
 * SIGTERM. The load generator (lab.c) drives it over loopback with 64-byte ping-pongs.
 */
#ifndef WEFT_LAB_H
#define WEFT_LAB_H

#include <stdbool.h>
#include <stddef.h>

/* One IO model: its name, a line saying what it is, and its server. `max_conns` is how many
 * connections it can serve at most (select: FD_SETSIZE), 0 for no limit. */
typedef struct lab_model {
    const char *name;
    const char *what;
    void (*serve)(int listen_fd); /* never returns; the process ends on SIGTERM */
    int max_conns;
} lab_model_t;

extern const lab_model_t lab_models[];
extern const size_t lab_nmodels;

/* Echo message size. */
enum { LAB_MSG = 64 };

/* ---- loadgen.c ---------------------------------------------------------------------------- */

#include <stdint.h>
#include <sys/types.h>

/* What one run measured. */
typedef struct lab_result {
    double rps, p50_us, p99_us, cpu_us_per_req, rss_mib;
    double gen_cpu_us_per_req; /* the generator's own CPU per request */
    long requests, errors;
    const char *skipped; /* why the level was not run, or NULL */
} lab_result_t;

int64_t lab_now_ns(void);
/* A listening loopback TCP socket on port (0: any); the port in *bound. Exits on failure. */
int lab_listener(int port, int *bound);
/* Pins the calling process to one CPU (cpu < 0: leaves it). */
void lab_pin(int cpu);
/* Starts m's server in a child process (pinned to cpu unless < 0); its port in *port. */
pid_t lab_start_model(const lab_model_t *m, int *port, int cpu);
/* Drives the server at 127.0.0.1:port (process pid: for its CPU time and RSS) with `conns`
 * connections for `seconds`, verifying every echo (connects retry for about a second while
 * the server starts). */
lab_result_t lab_drive(pid_t pid, int port, int conns, double seconds);
/* CPU seconds of pid and its live children; their summed peak RSS in KiB. */
double lab_cpu_seconds(pid_t pid);
long lab_peak_rss_kib(pid_t pid);
/* Ends the server (SIGKILL) and reaps it. */
void lab_stop(pid_t pid);

/* `weft-lab trace MODEL FILE [--conns N] [--seconds S]` (trace.c): one model's server run
 * under weft's trace, written to FILE. argv starts at MODEL. */
int lab_trace(int argc, char **argv);

#endif /* WEFT_LAB_H */
