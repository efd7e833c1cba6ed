/*
 * bench_echo.c — the echo server as plain blocking code in weft coroutines (monkey-patched:
 * the lab's "coroutines" model) against a hand-written epoll loop (the lab's "epoll" model),
 * libuv, Go's net package (GOMAXPROCS=1) and gevent's StreamServer, all driven by the lab's
 * load generator (lab/loadgen.c: one thread, epoll, 64-byte ping-pongs on N connections,
 * every echoed byte verified) at 1, 64 and 1000 connections.
 *
 * On 2 CPUs the server is pinned to CPU 1 and the generator to CPU 0; a single-threaded
 * client saturates long before a good server does, so requests/s alone hides the difference:
 * the figure compared is the server's CPU time per request (utime + stime from /proc), with
 * requests/s and p99 latency beside it, and the generator's own CPU per request (its ceiling).
 * Each server runs RUN_SECONDS per repetition, REPS repetitions interleaved; medians.
 * Goals (issue 6), on CPU per request: within 1.05x of epoll, below libuv and Go, at least 2x
 * better than gevent. Issue 16: at least the epoll loop's CPU per request at every level with a
 * p99 latency no higher than its (the "speedup ... p99" lines: epoll's p99 over weft's), and
 * weft's server on io_uring at least as cheap at 1000 connections as on epoll. epoll is the
 * default poller again (io.c says why), so the server forced onto io_uring is the extra one
 * ("weft coroutines io_uring": the "speedup ... vs weft coroutines io_uring" lines, > 1: the
 * default, epoll, ahead).
 * Last, at 1000 connections, the server on 2 cores (bench_echo_spread, issue 16): weft's stream
 * server on a weft_hubs_t of 2 hubs vs on one hub and vs Go GOMAXPROCS=2 (BENCH_ECHO_ONLY=spread
 * runs it alone).
 */
#include "bench_common.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lab/lab.h"
#include "weft.h"
#include "weft/coro.h"
#include "weft/io.h"
#include "weft/net.h"

#include <sched.h>

enum { MAX_REPS = 15 };
static int REPS = 3; /* BENCH_ECHO_REPS, up to MAX_REPS */
static const double RUN_SECONDS = 1.0;
static const int LEVELS[] = {1, 64, 1000};
enum { NLEVELS = 3 };
enum { SERVER_CPU = 1, CLIENT_CPU = 0 };

void peer_uv_echo_serve(int lfd); /* peer_echo_uv.c */

/* The lab's "coroutines" server with its hub on the io_uring poller (the default is epoll). */
static void serve_coroutines_uring(int lfd)
{
    if (weft_poller_set("io_uring") != 0) _exit(3);
    for (size_t i = 0; i < lab_nmodels; i++)
        if (!strcmp(lab_models[i].name, "coroutines")) lab_models[i].serve(lfd);
}

static bool uring_available(void)
{
    bool ok = weft_poller_set("io_uring") == 0;
    (void)weft_poller_set(NULL); /* the default again (this process serves nothing) */
    return ok;
}

typedef struct server {
    const char *name;
    const lab_model_t *model; /* a lab model, or */
    void (*serve)(int lfd);   /* a function to run in the child, or */
    const char *const *argv;  /* a program to exec with the listener as fd 3 */
    const char *env;          /* NAME=VALUE for the exec'd program */
    bool available;
} server_t;

static const lab_model_t *model(const char *name)
{
    for (size_t i = 0; i < lab_nmodels; i++)
        if (!strcmp(lab_models[i].name, name)) return &lab_models[i];
    return NULL;
}

static pid_t start(const server_t *s, int *port)
{
    if (s->model) return lab_start_model(s->model, port, SERVER_CPU);
    int lfd = lab_listener(0, port);
    pid_t pid = fork();
    bench_check(pid >= 0, "fork");
    if (pid == 0) {
        lab_pin(SERVER_CPU);
        signal(SIGPIPE, SIG_IGN);
        if (s->serve) {
            s->serve(lfd);
            _exit(0);
        }
        if (lfd == 3) /* dup2 onto itself would keep close-on-exec */
            fcntl(3, F_SETFD, 0);
        else
            dup2(lfd, 3); /* the copy is not close-on-exec */
        if (s->env) putenv((char *)s->env);
        execv(s->argv[0], (char *const *)s->argv);
        _exit(127);
    }
    close(lfd);
    return pid;
}

typedef struct run_arg {
    const server_t *s;
    int conns;
    int rep;
    double p99[MAX_REPS], gen[MAX_REPS];
} run_arg_t;

static double run_once(void *p, double *extra)
{
    run_arg_t *a = p;
    int port;
    pid_t pid = start(a->s, &port);
    lab_result_t r = lab_drive(pid, port, a->conns, RUN_SECONDS);
    lab_stop(pid);
    bench_check(r.errors == 0 && r.requests > 0, a->s->name);
    extra[0] = r.rps;
    a->p99[a->rep] = r.p99_us;
    a->gen[a->rep] = r.gen_cpu_us_per_req;
    a->rep++;
    return r.cpu_us_per_req;
}

/* The lines of issue 16: each weft server against the epoll loop, on p99 latency (the loop's
 * over weft's: > 1, weft's is lower) and, for the one forced onto epoll, on CPU per request. */
static void speedups_vs_epoll(int conns, const server_t *servers, const int *index,
                              const bench_case_t *cases, run_arg_t *args, int n)
{
    int epoll = -1;
    for (int k = 0; k < n; k++)
        if (!strcmp(servers[index[k]].name, "epoll loop")) epoll = k;
    if (epoll < 0) return;
    double epoll_p99 = bench_median(args[epoll].p99, REPS);
    char fig[160];
    for (int k = 0; k < n; k++) {
        const char *name = servers[index[k]].name;
        if (strncmp(name, "weft", 4)) continue;
        double p99 = bench_median(args[k].p99, REPS);
        snprintf(fig, sizeof fig, "echo %d conns p99 %s", conns, name);
        bench_speedup(fig, "epoll loop", epoll_p99 / p99);
        if (!strcmp(name, "weft coroutines io_uring")) {
            snprintf(fig, sizeof fig, "echo %d conns cpu per request %s", conns, name);
            bench_speedup(fig, "epoll loop", cases[epoll].median / cases[k].median);
        }
    }
}

/* ---- the echo server on several cores (weft_hubs_t) ----------------------------------------
 * The server unpinned, free to use both CPUs: weft's stream server with its handlers spread
 * over a weft_hubs_t of 2 hubs (weft_server_opts_t.hubs; the accept loop on the main thread),
 * against the same server on one hub (the main thread's) and Go's net package with
 * GOMAXPROCS=2, at 1000 connections. The generator stays pinned to CPU 0, so on this 2-CPU
 * machine a 2-core server shares CPU 0 with it: the figure compared is still the server's own
 * CPU time per request (the generator's is not counted; its own CPU per request is printed
 * beside it), with requests/s, which the shared CPU caps. */
enum { SPREAD_CONNS = 1000, SPREAD_HUBS = 2 };

static void spread_echo(int fd, void *arg)
{
    (void)arg;
    char buf[4096];
    for (;;) {
        size_t n, put;
        if (weft_fd_read(fd, buf, sizeof buf, WEFT_FOREVER, &n) || n == 0) return;
        if (weft_fd_write(fd, buf, n, WEFT_FOREVER, &put)) return;
    }
}

static void unpin(void)
{
    cpu_set_t all;
    CPU_ZERO(&all);
    for (int c = 0; c < CPU_SETSIZE; c++) CPU_SET(c, &all);
    sched_setaffinity(0, sizeof all, &all);
}

/* In the child: serves lfd until killed, on `hubs` hubs (0: the main thread's hub only). */
static void spread_serve(int lfd, size_t hubs)
{
    weft_hubs_t *h = NULL;
    if (hubs) bench_check(weft_hubs_start(hubs, NULL, &h) == 0, "weft_hubs_start");
    weft_server_opts_t o = {.hubs = h};
    weft_server_t *srv;
    bench_check(weft_server_create(lfd, spread_echo, NULL, &o, &srv) == 0, "weft_server_create");
    weft_server_serve_forever(srv);
}

typedef struct spread {
    const char *name;
    size_t hubs;             /* weft: hubs (0: one hub, the main thread's) */
    const char *const *argv; /* or a program with the listener as fd 3 */
    const char *env;
    double p99[MAX_REPS], gen[MAX_REPS];
    int rep;
} spread_t;

static double spread_run(void *p, double *extra)
{
    spread_t *a = p;
    int port;
    int lfd = lab_listener(0, &port);
    pid_t pid = fork();
    bench_check(pid >= 0, "fork");
    if (pid == 0) {
        unpin();
        signal(SIGPIPE, SIG_IGN);
        if (!a->argv) {
            spread_serve(lfd, a->hubs);
            _exit(0);
        }
        if (lfd == 3)
            fcntl(3, F_SETFD, 0);
        else
            dup2(lfd, 3);
        if (a->env) putenv((char *)a->env);
        execv(a->argv[0], (char *const *)a->argv);
        _exit(127);
    }
    close(lfd);
    lab_result_t r = lab_drive(pid, port, SPREAD_CONNS, RUN_SECONDS);
    lab_stop(pid);
    bench_check(r.errors == 0 && r.requests > 0, a->name);
    extra[0] = r.rps;
    a->p99[a->rep] = r.p99_us;
    a->gen[a->rep] = r.gen_cpu_us_per_req;
    a->rep++;
    return r.cpu_us_per_req;
}

static void bench_echo_spread(void)
{
    static const char *go_argv[] = {WEFT_PEER_ECHO_GO_PATH, NULL};
    static spread_t who[] = {
        {.name = "weft_server on 2 hubs", .hubs = SPREAD_HUBS},
        {.name = "weft_server on one hub", .hubs = 0},
        {.name = "go net GOMAXPROCS=2", .argv = go_argv, .env = "GOMAXPROCS=2"},
    };
    int n = access(WEFT_PEER_ECHO_GO_PATH, X_OK) == 0 ? 3 : 2;
    if (n == 2) printf("peer go net GOMAXPROCS=2: not installed\n");
    printf("# echo %d conns on 2 cores: servers unpinned (both CPUs), generator on CPU %d; the "
           "server's own CPU per request is compared\n",
           SPREAD_CONNS, CLIENT_CPU);
    bench_case_t cases[3];
    for (int k = 0; k < n; k++) cases[k] = (bench_case_t){.run = spread_run, .arg = &who[k]};
    bench_interleave(cases, n, REPS);
    char fig[160];
    for (int k = 0; k < n; k++) {
        snprintf(fig, sizeof fig, "echo %d conns 2 cores %s cpu", SPREAD_CONNS, who[k].name);
        bench_figure(fig, cases[k].median, "us per request");
        snprintf(fig, sizeof fig, "echo %d conns 2 cores %s", SPREAD_CONNS, who[k].name);
        bench_figure(fig, cases[k].extra_median, "requests/s");
        snprintf(fig, sizeof fig, "echo %d conns 2 cores %s p99", SPREAD_CONNS, who[k].name);
        bench_figure(fig, bench_median(who[k].p99, REPS), "us");
        snprintf(fig, sizeof fig, "# echo %d conns 2 cores %s generator cpu", SPREAD_CONNS,
                 who[k].name);
        bench_figure(fig, bench_median(who[k].gen, REPS), "us per request");
    }
    for (int k = 1; k < n; k++) {
        snprintf(fig, sizeof fig, "echo %d conns 2 cores cpu per request", SPREAD_CONNS);
        bench_speedup(fig, who[k].name, cases[k].median / cases[0].median);
        snprintf(fig, sizeof fig, "echo %d conns 2 cores requests/s", SPREAD_CONNS);
        bench_speedup(fig, who[k].name, cases[0].extra_median / cases[k].extra_median);
    }
}

int main(void)
{
    static const char *go_argv[] = {WEFT_PEER_ECHO_GO_PATH, NULL};
    static const char *py_argv[] = {WEFT_PYTHON_PATH, WEFT_PEER_ECHO_PY_PATH, NULL};
    server_t servers[] = {
        {"weft coroutines (patched blocking code)", model("coroutines"), NULL, NULL, NULL, true},
        {"epoll loop", model("epoll"), NULL, NULL, NULL, true},
        {"weft coroutines io_uring", NULL, serve_coroutines_uring, NULL, NULL, uring_available()},
#ifdef WEFT_HAVE_LIBUV
        {"libuv", NULL, peer_uv_echo_serve, NULL, NULL, true},
#else
        {"libuv", NULL, NULL, NULL, NULL, false},
#endif
        {"go net GOMAXPROCS=1", NULL, NULL, go_argv, "GOMAXPROCS=1",
         access(WEFT_PEER_ECHO_GO_PATH, X_OK) == 0},
        {"gevent StreamServer", NULL, NULL, py_argv, NULL,
         access(WEFT_PYTHON_PATH, X_OK) == 0 &&
             system(WEFT_PYTHON_PATH " -c 'import gevent' 2>/dev/null") == 0},
    };
    enum { NS = sizeof servers / sizeof servers[0] };
    /* BENCH_ECHO_ONLY=weft,epoll: only the servers whose names start so (the first listed is
     * the one the others are compared with); BENCH_ECHO_REPS=n: repetitions. */
    const char *only = getenv("BENCH_ECHO_ONLY"), *reps = getenv("BENCH_ECHO_REPS");
    if (reps && atoi(reps) > 0) REPS = atoi(reps) < MAX_REPS ? atoi(reps) : MAX_REPS;
    for (int i = 0; only && i < NS; i++) {
        bool keep = false;
        for (const char *o = only; *o; o += strcspn(o, ",") + (o[strcspn(o, ",")] == ',')) {
            size_t len = strcspn(o, ",");
            keep |= len && !strncmp(servers[i].name, o, len);
        }
        if (!keep) servers[i].available = false;
    }
    lab_pin(CLIENT_CPU);
    signal(SIGPIPE, SIG_IGN);
    bench_header("bench_echo: echo servers on loopback, server CPU per request", REPS);
    printf("# 64-byte ping-pong, %.1f s per run; server on CPU %d, generator on CPU %d\n",
           RUN_SECONDS, SERVER_CPU, CLIENT_CPU);
    printf("# weft's default poller here: %s\n", weft_poller_name());
    for (int i = 0; i < NS; i++)
        if (!servers[i].available) printf("peer %s: not installed\n", servers[i].name);
    for (int l = 0; l < NLEVELS; l++) {
        bench_case_t cases[NS];
        run_arg_t args[NS];
        int n = 0, index[NS];
        for (int i = 0; i < NS; i++) {
            if (!servers[i].available) continue;
            args[n] = (run_arg_t){.s = &servers[i], .conns = LEVELS[l]};
            cases[n] = (bench_case_t){.run = run_once, .arg = &args[n]};
            index[n++] = i;
        }
        bench_interleave(cases, n, REPS);
        char fig[160];
        for (int k = 0; k < n; k++) {
            snprintf(fig, sizeof fig, "echo %d conns %s cpu", LEVELS[l], servers[index[k]].name);
            bench_figure(fig, cases[k].median, "us per request");
            snprintf(fig, sizeof fig, "echo %d conns %s", LEVELS[l], servers[index[k]].name);
            bench_figure(fig, cases[k].extra_median, "requests/s");
            snprintf(fig, sizeof fig, "echo %d conns %s p99", LEVELS[l], servers[index[k]].name);
            bench_figure(fig, bench_median(args[k].p99, REPS), "us");
            snprintf(fig, sizeof fig, "# echo %d conns %s generator cpu", LEVELS[l],
                     servers[index[k]].name);
            bench_figure(fig, bench_median(args[k].gen, REPS), "us per request");
        }
        for (int k = 1; k < n; k++) {
            snprintf(fig, sizeof fig, "echo %d conns cpu per request", LEVELS[l]);
            bench_speedup(fig, servers[index[k]].name, cases[k].median / cases[0].median);
        }
        speedups_vs_epoll(LEVELS[l], servers, index, cases, args, n);
    }
    if (!only || strstr(only, "spread")) bench_echo_spread(); /* BENCH_ECHO_ONLY=spread: alone */
    return 0;
}
