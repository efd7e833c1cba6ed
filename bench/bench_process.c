/*
 * bench_process.c — the process layer against its peers:
 *   - messages between two processes, one producer and one consumer: weft_mpqueue, a weft
 *     Pipe (weft_conn), a raw pipe(2) carrying fixed-size records (no framing, no locks: the
 *     floor), Python's multiprocessing.Queue and, for weft_conn, a one-way
 *     multiprocessing.Pipe (bench/peer_process.py);
 *   - start + join of a process that does nothing: weft_process_start/join/close against
 *     fork + waitpid and Python's Process(target=f).start(); join();
 *   - a process pool running trivial tasks: weft_process_pool against Python's
 *     ProcessPoolExecutor, both with 2 workers already started.
 * Rates are in the consumer's (caller's) wall time; each figure is the median of REPS
 * interleaved repetitions (bench_common.h).
 */
#include "bench_common.h"

#include <stdbool.h>
#include <weft.h>

#define REPS      5
#define MESSAGES  200000
#define PY_MSGS   50000
#define STARTS    300
#define PY_STARTS 100
#define TASKS     20000
#define PY_TASKS  5000
#define POOL_SIZE 2

/* ---- messages ------------------------------------------------------------------------------ */

typedef enum { MPQUEUE, CONN, RAW_PIPE, PYTHON, PYTHON_PIPE } kind_t;

typedef struct msg_case {
    kind_t kind;
    size_t size;
} msg_case_t;

static weft_mpqueue_t *mq;
static weft_conn_t *rx, *tx;
static int raw[2];

static int producer(void *arg)
{
    const msg_case_t *c = arg;
    static unsigned char buf[65536];
    for (int i = 0; i < MESSAGES; i++) {
        int rc = 0;
        if (c->kind == MPQUEUE) rc = weft_mpqueue_put(mq, buf, c->size, WEFT_FOREVER);
        if (c->kind == CONN) rc = weft_conn_send_bytes(tx, buf, c->size, WEFT_FOREVER);
        if (c->kind == RAW_PIPE) {
            for (size_t done = 0; done < c->size;) {
                ssize_t n = write(raw[1], buf + done, c->size - done);
                if (n <= 0) return 1;
                done += (size_t)n;
            }
        }
        if (rc) return 1;
    }
    return 0;
}

static double python_rate(const char *args, const char *key)
{
#ifdef WEFT_HAVE_PYTHON
    char cmd[1024], line[256];
    snprintf(cmd, sizeof cmd, "%s %s %s", WEFT_PYTHON, WEFT_PEER_PROCESS_PY, args);
    FILE *p = popen(cmd, "r");
    bench_check(p != NULL, "popen python3");
    double v = -1;
    while (fgets(line, sizeof line, p))
        if (strncmp(line, key, strlen(key)) == 0) v = atof(line + strlen(key));
    bench_check(pclose(p) == 0 && v > 0, "peer_process.py");
    return v;
#else
    (void)args, (void)key;
    return -1;
#endif
}

static double run_messages(void *arg, double *extra)
{
    msg_case_t *c = arg;
    (void)extra;
    if (c->kind == PYTHON || c->kind == PYTHON_PIPE) {
        char args[64];
        snprintf(args, sizeof args, "%s %d %zu", c->kind == PYTHON ? "queue" : "pipe", PY_MSGS,
                 c->size);
        return python_rate(args, "msgs/s:");
    }
    if (c->kind == MPQUEUE) bench_check(weft_mpqueue_create(1 << 20, 0, false, &mq) == 0, "mq");
    if (c->kind == CONN) bench_check(weft_pipe_create(false, &rx, &tx) == 0, "pipe");
    if (c->kind == RAW_PIPE) bench_check(pipe(raw) == 0, "pipe(2)");
    weft_process_t *p;
    bench_check(weft_process_start(producer, c, NULL, &p) == 0, "start");
    if (c->kind == CONN) weft_conn_release(tx);
    if (c->kind == RAW_PIPE) close(raw[1]);
    static unsigned char buf[65536];
    int64_t t0 = 0;
    for (int i = 0; i < MESSAGES; i++) {
        size_t len = c->size;
        int rc = 0;
        if (c->kind == MPQUEUE) rc = weft_mpqueue_get(mq, buf, sizeof buf, WEFT_FOREVER, &len);
        if (c->kind == CONN) rc = weft_conn_recv_bytes(rx, buf, sizeof buf, WEFT_FOREVER, &len);
        if (c->kind == RAW_PIPE) {
            for (size_t done = 0; done < c->size;) {
                ssize_t n = read(raw[0], buf + done, c->size - done);
                bench_check(n > 0, "read");
                done += (size_t)n;
            }
        }
        bench_check(rc == 0 && len == c->size, "receive");
        if (i == 0) t0 = bench_now_ns(); /* from the first message: the child is running */
    }
    double rate = (MESSAGES - 1) / ((bench_now_ns() - t0) / 1e9);
    bench_check(weft_process_join(p, WEFT_FOREVER) == 0, "join");
    int code;
    bench_check(weft_process_exitcode(p, &code) == 0 && code == 0, "producer");
    weft_process_release(p);
    if (c->kind == MPQUEUE) weft_mpqueue_release(mq);
    if (c->kind == CONN) weft_conn_release(rx);
    if (c->kind == RAW_PIPE) close(raw[0]);
    return rate;
}

static void compare_messages(size_t size, bool python)
{
    static const char *names[] = {"weft_mpqueue", "weft_conn", "raw pipe", "python mp.Queue",
                                  "python mp.Pipe"};
    msg_case_t who[5] = {
        {MPQUEUE, size}, {CONN, size}, {RAW_PIPE, size}, {PYTHON, size}, {PYTHON_PIPE, size}};
    bench_case_t cases[5];
    int n = python ? 5 : 3;
    for (int i = 0; i < n; i++) cases[i] = (bench_case_t){.run = run_messages, .arg = &who[i]};
    bench_interleave(cases, n, REPS);
    char fig[128], base[64];
    snprintf(base, sizeof base, "messages %zu B 1P/1C", size);
    for (int i = 0; i < n; i++) {
        snprintf(fig, sizeof fig, "%s %s", base, names[i]);
        bench_figure(fig, cases[i].median, "msgs/s");
    }
    snprintf(fig, sizeof fig, "%s weft_mpqueue", base);
    for (int i = 1; i < n && i < 4; i++)
        bench_speedup(fig, names[i], cases[0].median / cases[i].median);
    snprintf(fig, sizeof fig, "%s weft_conn", base);
    bench_speedup(fig, names[2], cases[1].median / cases[2].median);
    if (python) bench_speedup(fig, names[3], cases[1].median / cases[3].median);
    if (python) bench_speedup(fig, names[4], cases[1].median / cases[4].median);
    fflush(stdout);
}

/* ---- start + join -------------------------------------------------------------------------- */

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

static double run_start_join(void *arg, double *extra)
{
    int which = (int)(long)arg;
    (void)extra;
    if (which == 2) {
        char args[64];
        snprintf(args, sizeof args, "startjoin %d", PY_STARTS);
        return python_rate(args, "us/op:");
    }
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < STARTS; i++) {
        if (which == 0) {
            weft_process_t *p;
            bench_check(weft_process_start(nothing, NULL, NULL, &p) == 0, "start");
            bench_check(weft_process_join(p, WEFT_FOREVER) == 0, "join");
            weft_process_release(p);
        } else {
            pid_t pid = fork();
            bench_check(pid >= 0, "fork");
            if (pid == 0) _exit(0);
            int status;
            bench_check(waitpid(pid, &status, 0) == pid, "waitpid");
        }
    }
    return (bench_now_ns() - t0) / 1e3 / STARTS;
}

static void compare_start_join(bool python)
{
    static const char *names[] = {"weft_process", "fork+waitpid", "python Process"};
    bench_case_t cases[3];
    int n = python ? 3 : 2;
    for (int i = 0; i < n; i++)
        cases[i] = (bench_case_t){.run = run_start_join, .arg = (void *)(long)i};
    bench_interleave(cases, n, REPS);
    char fig[128];
    for (int i = 0; i < n; i++) {
        snprintf(fig, sizeof fig, "start+join %s", names[i]);
        bench_figure(fig, cases[i].median, "us");
    }
    for (int i = 1; i < n; i++)
        bench_speedup("start+join weft_process", names[i], cases[i].median / cases[0].median);
    fflush(stdout);
}

/* ---- process pool -------------------------------------------------------------------------- */

static int echo(const void *arg, size_t len, void **result, size_t *result_len)
{
    void *copy = malloc(len ? len : 1);
    if (!copy) return WEFT_ENOMEM;
    memcpy(copy, arg, len);
    *result = copy;
    *result_len = len;
    return 0;
}

static weft_future_t *fs[TASKS];

static double run_pool(void *arg, double *extra)
{
    (void)extra;
    if (arg) {
        char args[64];
        snprintf(args, sizeof args, "pool %d %d", PY_TASKS, POOL_SIZE);
        return python_rate(args, "tasks/s:");
    }
    weft_executor_t *ex;
    bench_check(weft_process_pool_create(POOL_SIZE, NULL, &ex) == 0, "pool");
    for (int i = 0; i < POOL_SIZE * 4; i++) { /* warm up: the workers are started */
        bench_check(weft_process_pool_submit(ex, echo, "x", 1, &fs[i]) == 0, "submit");
    }
    for (int i = 0; i < POOL_SIZE * 4; i++) {
        bench_check(weft_future_result_bytes(fs[i], WEFT_FOREVER, NULL, NULL) == 0, "result");
        weft_future_release(fs[i]);
    }
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < TASKS; i++)
        bench_check(weft_process_pool_submit(ex, echo, "x", 1, &fs[i]) == 0, "submit");
    for (int i = 0; i < TASKS; i++) {
        bench_check(weft_future_result_bytes(fs[i], WEFT_FOREVER, NULL, NULL) == 0, "result");
        weft_future_release(fs[i]);
    }
    double rate = TASKS / ((bench_now_ns() - t0) / 1e9);
    weft_executor_shutdown(ex, true, false, WEFT_FOREVER);
    weft_executor_release(ex);
    return rate;
}

static void compare_pool(bool python)
{
    bench_case_t cases[2] = {{.run = run_pool, .arg = NULL}, {.run = run_pool, .arg = (void *)1}};
    int n = python ? 2 : 1;
    bench_interleave(cases, n, REPS);
    bench_figure("process pool trivial tasks weft_process_pool", cases[0].median, "tasks/s");
    if (!python) return;
    bench_figure("process pool trivial tasks python ProcessPoolExecutor", cases[1].median,
                 "tasks/s");
    bench_speedup("process pool trivial tasks", "python ProcessPoolExecutor",
                  cases[0].median / cases[1].median);
    fflush(stdout);
}

int main(void)
{
    bench_header("bench_process: weft's process layer vs raw pipes, fork+waitpid and Python "
                 "multiprocessing",
                 REPS);
    bool python = false;
#ifdef WEFT_HAVE_PYTHON
    python = access(WEFT_PYTHON, X_OK) == 0;
#endif
    if (!python) printf("peer python multiprocessing: not installed\n");
    printf("# %d messages per repetition (Python: %d); %d starts (Python: %d); %d pool tasks "
           "(Python: %d) on %d workers\n",
           MESSAGES, PY_MSGS, STARTS, PY_STARTS, TASKS, PY_TASKS, POOL_SIZE);
    compare_messages(64, python);
    compare_messages(4096, python);
    compare_start_join(python);
    compare_pool(python);
    return 0;
}
