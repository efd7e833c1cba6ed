/* The process pool. Each case names the CPython behaviour it mirrors
 * (Lib/test/test_concurrent_futures/: test_process_pool.py, test_deadlock.py, executor.py,
 * test_shutdown.py), or says where weft differs on purpose (a dying worker fails only its
 * task instead of breaking the pool). */
#include "weft_test.h"

#include "executor/executor_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The task's error of a future that is done, asked without waiting; fails the case if f is
 * not done. */
static int error_of(weft_future_t *f)
{
    int code = INT32_MIN;
    assert_int_equal(weft_future_error(f, 0, &code), 0);
    return code;
}
static weft_executor_t *make_pool(size_t workers, size_t max_tasks, double timeout)
{
    weft_process_pool_opts_t opts = WEFT_PROCESS_POOL_OPTS_INIT;
    opts.max_tasks_per_child = max_tasks;
    opts.task_timeout = timeout;
    weft_executor_t *ex;
    assert_int_equal(weft_process_pool_create(workers, &opts, &ex), 0);
    return ex;
}

static void close_pool(weft_executor_t *ex)
{
    assert_int_equal(weft_executor_shutdown(ex, true, false, 60), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

static weft_future_t *submit(weft_executor_t *ex, weft_process_task_fn fn, const void *arg,
                             size_t len)
{
    weft_future_t *f;
    assert_int_equal(weft_process_pool_submit(ex, fn, arg, len, &f), 0);
    return f;
}

/* Returns its argument reversed, followed by the worker's pid. */
static int reverse_and_pid(const void *arg, size_t len, void **result, size_t *result_len)
{
    unsigned char *out = malloc(len + sizeof(pid_t));
    if (!out) return WEFT_ENOMEM;
    for (size_t i = 0; i < len; i++) out[i] = ((const unsigned char *)arg)[len - 1 - i];
    pid_t pid = getpid();
    memcpy(out + len, &pid, sizeof pid);
    *result = out;
    *result_len = len + sizeof pid;
    return 0;
}

static pid_t pid_of(weft_future_t *f)
{
    const void *data;
    size_t len;
    assert_int_equal(weft_future_result_bytes(f, 60, &data, &len), 0);
    assert_true(len >= sizeof(pid_t));
    pid_t pid;
    memcpy(&pid, (const char *)data + len - sizeof pid, sizeof pid);
    return pid;
}

/* test_submit / test_map: a task runs in another process with a copy of its argument bytes,
 * and its result bytes come back, also when both are far larger than a pipe's buffer. */
static void process_pool_runs_tasks_on_bytes(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(2, 0, WEFT_FOREVER);
    weft_future_t *f = submit(ex, reverse_and_pid, "abc", 3);
    const void *data;
    size_t len;
    assert_int_equal(weft_future_result_bytes(f, 60, &data, &len), 0);
    assert_int_equal(len, 3 + sizeof(pid_t));
    assert_memory_equal(data, "cba", 3);
    assert_int_not_equal(pid_of(f), getpid());
    weft_future_release(f);

    size_t big = 1 << 20;
    unsigned char *arg = malloc(big);
    assert_non_null(arg);
    for (size_t i = 0; i < big; i++) arg[i] = (unsigned char)(i * 7);
    f = submit(ex, reverse_and_pid, arg, big);
    assert_int_equal(weft_future_result_bytes(f, 60, &data, &len), 0);
    assert_int_equal(len, big + sizeof(pid_t));
    for (size_t i = 0; i < big; i++)
        assert_int_equal(((const unsigned char *)data)[i], arg[big - 1 - i]);
    weft_future_release(f);
    free(arg);

    f = submit(ex, reverse_and_pid, NULL, 0); /* empty argument */
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, &len), 0);
    assert_int_equal(len, sizeof(pid_t));
    weft_future_release(f);
    close_pool(ex);
}

/* ProcessPoolExecutor(max_workers=2): tasks are spread over at most that many processes. */
static void process_pool_uses_at_most_max_workers(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(2, 0, WEFT_FOREVER);
    weft_future_t *f[12];
    for (int i = 0; i < 12; i++) f[i] = submit(ex, reverse_and_pid, "x", 1);
    pid_t seen[12];
    int distinct = 0;
    for (int i = 0; i < 12; i++) {
        pid_t pid = pid_of(f[i]);
        bool known = false;
        for (int k = 0; k < distinct; k++) known |= seen[k] == pid;
        if (!known) seen[distinct++] = pid;
        weft_future_release(f[i]);
    }
    assert_true(distinct >= 1 && distinct <= 2);
    close_pool(ex);
}

static int fail_with_eio(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    return WEFT_EIO;
}

/* test_exception: a task's error reaches its future; the pool goes on. */
static void process_pool_task_error_reaches_its_future(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1, 0, WEFT_FOREVER);
    weft_future_t *bad = submit(ex, fail_with_eio, NULL, 0);
    weft_future_t *good = submit(ex, reverse_and_pid, "ok", 2);
    assert_int_equal(weft_future_result_bytes(bad, 60, NULL, NULL), WEFT_EIO);
    assert_int_equal(error_of(bad), WEFT_EIO);
    assert_int_equal(weft_future_result_bytes(good, 60, NULL, NULL), 0);
    weft_future_release(bad);
    weft_future_release(good);
    close_pool(ex);
}

static int die(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)len, (void)result, (void)result_len;
    if (*(const char *)arg == 'k') raise(SIGKILL);
    _exit(3);
}

/* test_deadlock.py test_crash_during_func_exec_on_worker / test_exit_during_func_exec_on_worker,
 * where weft differs on purpose: the worker's death fails only the task it ran
 * (WEFT_EWORKERDIED, Python breaks the whole pool); the worker is replaced and queued and later
 * tasks run. */
static void process_pool_worker_death_fails_only_its_task(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(2, 0, WEFT_FOREVER);
    weft_future_t *killed = submit(ex, die, "k", 1);
    weft_future_t *exited = submit(ex, die, "e", 1);
    weft_future_t *after[6];
    for (int i = 0; i < 6; i++) after[i] = submit(ex, reverse_and_pid, "ok", 2);
    assert_int_equal(weft_future_result_bytes(killed, 60, NULL, NULL), WEFT_EWORKERDIED);
    assert_int_equal(weft_future_result_bytes(exited, 60, NULL, NULL), WEFT_EWORKERDIED);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(weft_future_result_bytes(after[i], 60, NULL, NULL), 0);
        weft_future_release(after[i]);
    }
    weft_future_release(killed);
    weft_future_release(exited);
    close_pool(ex);
}

/* test_max_tasks_per_child: with one worker and max_tasks_per_child=2, every two tasks run in
 * a new process. */
static void process_pool_max_tasks_per_child_replaces_workers(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1, 2, WEFT_FOREVER);
    pid_t pids[6];
    for (int i = 0; i < 6; i++) {
        weft_future_t *f = submit(ex, reverse_and_pid, "x", 1);
        pids[i] = pid_of(f);
        weft_future_release(f);
    }
    for (int i = 0; i < 6; i += 2) {
        assert_int_equal(pids[i], pids[i + 1]);
        if (i) assert_int_not_equal(pids[i], pids[i - 1]);
    }
    close_pool(ex);
}

static int sleep_forever(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    for (;;) pause();
    return 0;
}

/* weft's hard task timeout (Python has none: a hung task hangs its worker forever): the worker
 * is killed, the task fails with WEFT_ETIMEDOUT, the next task runs in a new worker. */
static void process_pool_task_timeout_kills_the_worker(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1, 0, 0.2);
    double t0 = weft_time_monotonic();
    weft_future_t *hung = submit(ex, sleep_forever, NULL, 0);
    weft_future_t *next = submit(ex, reverse_and_pid, "ok", 2);
    assert_int_equal(weft_future_result_bytes(hung, 60, NULL, NULL), WEFT_ETIMEDOUT);
    double took = weft_time_monotonic() - t0;
    assert_true(took >= 0.15);
    assert_true(took < 30);
    assert_int_equal(weft_future_result_bytes(next, 60, NULL, NULL), 0);
    weft_future_release(hung);
    weft_future_release(next);
    close_pool(ex);
}

static int sleep_a_bit(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    return 0;
}

/* A process-pool future completed by hand while its task runs keeps that outcome: its result
 * is the caller's pointer (weft_future_result gives it, weft_future_result_bytes says
 * WEFT_EINVAL: not bytes), and the task's reply, when it comes, is freed by the pool (the leak
 * guard and ASan check it). */
static void process_pool_hand_completed_future_keeps_its_pointer(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1, 0, WEFT_FOREVER);
    weft_future_t *f = submit(ex, sleep_a_bit, NULL, 0);
    while (!weft_future_running(f)) sched_yield();
    int mine;
    assert_int_equal(weft_future_set_result(f, &mine), 0);
    weft_future_t *g = submit(ex, reverse_and_pid, "ab", 2); /* after f's task, on its worker */
    const void *data;
    size_t len;
    assert_int_equal(weft_future_result_bytes(g, 60, &data, &len), 0);
    assert_int_equal(len, 2 + sizeof(pid_t));
    assert_memory_equal(data, "ba", 2);
    assert_int_equal(weft_future_result_bytes(f, 0, &data, &len), WEFT_EINVAL);
    assert_null(data);
    void *value;
    assert_int_equal(weft_future_result(f, 0, &value), 0);
    assert_ptr_equal(value, &mine);
    weft_future_release(f);
    weft_future_release(g);
    close_pool(ex);
}

/* test_shutdown.py test_cancel_futures: shutdown(wait=True, cancel_futures=True) cancels what
 * is queued and waits for what runs (or was handed to a worker); later submits fail
 * (RuntimeError: WEFT_ESHUTDOWN). */
static void process_pool_shutdown_cancels_queued_futures(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1, 0, WEFT_FOREVER);
    weft_future_t *running = submit(ex, sleep_a_bit, NULL, 0);
    weft_future_t *queued[10];
    for (int i = 0; i < 10; i++) queued[i] = submit(ex, reverse_and_pid, "x", 1);
    while (!weft_future_running(running)) sched_yield();
    assert_int_equal(weft_future_cancel(running), WEFT_EBUSY); /* cannot stop a process task */
    assert_int_equal(weft_executor_shutdown(ex, true, true, 60), 0);
    assert_int_equal(weft_future_result_bytes(running, 0, NULL, NULL), 0);
    int cancelled = 0;
    for (int i = 0; i < 10; i++) {
        cancelled += weft_future_cancelled(queued[i]);
        assert_true(weft_future_done(queued[i]));
        weft_future_release(queued[i]);
    }
    /* The worker has up to 4 tasks in flight (the running one and 3 waiting in its pipe,
     * RUNNING already, as Python hands out max_workers + 1): the other 7 are cancelled. */
    assert_true(cancelled >= 7);
    weft_future_release(running);
    weft_future_t *f = (weft_future_t *)1;
    assert_int_equal(weft_process_pool_submit(ex, reverse_and_pid, "x", 1, &f), WEFT_ESHUTDOWN);
    assert_null(f);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* Two pools at once: the second pool's workers inherit the first pool's pipes; shutting the
 * first down must not wait for them (it tells its workers to exit instead of relying on EOF). */
static void process_pool_two_pools_shut_down_promptly(void **state)
{
    (void)state;
    weft_executor_t *a = make_pool(1, 0, WEFT_FOREVER), *b;
    weft_future_t *f = submit(a, reverse_and_pid, "a", 1); /* a's worker exists */
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), 0);
    weft_future_release(f);
    b = make_pool(1, 0, WEFT_FOREVER);
    f = submit(b, reverse_and_pid, "b", 1); /* b's worker holds copies of a's pipe */
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), 0);
    weft_future_release(f);
    double t0 = weft_time_monotonic();
    close_pool(a);
    assert_true(weft_time_monotonic() - t0 < 5); /* not the 10 s wait-then-kill */
    close_pool(b);
}

/* test_deadlock.py test_crash_big_data / killed workers: a worker killed from outside while
 * idle is replaced; the next tasks run in a new process. */
static void process_pool_idle_worker_killed_is_replaced(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1, 0, WEFT_FOREVER);
    weft_future_t *f = submit(ex, reverse_and_pid, "x", 1);
    pid_t first = pid_of(f);
    weft_future_release(f);
    assert_int_equal(kill(first, SIGKILL), 0);
    for (int i = 0; i < 3; i++) { /* the first may still go to the dying worker */
        f = submit(ex, reverse_and_pid, "x", 1);
        int rc = weft_future_result_bytes(f, 60, NULL, NULL);
        assert_true(rc == 0 || (i == 0 && rc == WEFT_EWORKERDIED));
        if (rc == 0) assert_int_not_equal(pid_of(f), first);
        weft_future_release(f);
    }
    close_pool(ex);
}

/* ---- test_deadlock.py's stages ---------------------------------------------------------- */

/* Returns a copy of its argument. */
static int echo_arg(const void *arg, size_t len, void **result, size_t *result_len)
{
    void *out = malloc(len ? len : 1);
    if (!out) return WEFT_ENOMEM;
    if (len) memcpy(out, arg, len);
    *result = out;
    *result_len = len;
    return 0;
}

/* An empty result (a task that leaves none, or one of length 0) reads the same through
 * weft_future_result_bytes as through weft_process_pool_map: data NULL, length 0 (weft_bytes_t,
 * weft/executor.h). (Before: result_bytes gave a pointer into the reply, map NULL.) */
static void process_pool_empty_result_is_null_with_length_0(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1, 0, WEFT_FOREVER);
    weft_future_t *f = submit(ex, echo_arg, NULL, 0);
    const void *data = (const void *)1;
    size_t len = 9;
    assert_int_equal(weft_future_result_bytes(f, 60, &data, &len), 0);
    assert_null(data);
    assert_int_equal(len, 0);
    weft_future_release(f);
    weft_bytes_t args[2] = {{NULL, 0}, {NULL, 0}}, results[2];
    size_t nd;
    assert_int_equal(weft_process_pool_map(ex, echo_arg, args, 2, results, 60, &nd), 0);
    assert_int_equal(nd, 2);
    for (int i = 0; i < 2; i++) {
        assert_null(results[i].data);
        assert_int_equal(results[i].len, 0);
    }
    close_pool(ex);
}

/* The workers' stage hook: crashes where the task's argument (or result) says. */
static void crash_where_told(int stage, const void *data, size_t len, int fd)
{
    if (stage == WEFT__PPOOL_GOT_TASK && len >= 9 && !memcmp(data, "crash:got", 9))
        raise(SIGKILL); /* as if the task's bytes could not be taken in */
    if (stage != WEFT__PPOOL_SENDING || len < 8 + 10) return;
    const char *res = (const char *)data + 8;     /* the reply: 8 bytes of code, then the result */
    if (!memcmp(res, "crash:send", 10)) _exit(9); /* before a byte of the reply went */
    if (!memcmp(res, "crash:half", 10)) {         /* after half the reply went */
        uint64_t header = len;
        ssize_t w = write(fd, &header, sizeof header);
        for (size_t done = 0; w > 0 && done < len / 2; done += (size_t)w)
            w = write(fd, (const char *)data + done, len / 2 - done);
        _exit(9);
    }
}

static void stage_crash(size_t arg_len, const char *tag)
{
    weft__ppool_set_test_hook(crash_where_told);
    weft_executor_t *ex = make_pool(1, 0, WEFT_FOREVER);
    char *arg = calloc(1, arg_len);
    assert_non_null(arg);
    memcpy(arg, tag, strlen(tag));
    weft_future_t *before = submit(ex, echo_arg, "ok", 2);
    weft_future_t *crashed = submit(ex, echo_arg, arg, arg_len);
    weft_future_t *after = submit(ex, echo_arg, "ok", 2);
    assert_int_equal(weft_future_result_bytes(before, 60, NULL, NULL), 0);
    assert_int_equal(weft_future_result_bytes(crashed, 60, NULL, NULL), WEFT_EWORKERDIED);
    const void *data;
    size_t len;
    assert_int_equal(weft_future_result_bytes(after, 60, &data, &len), 0); /* a new worker */
    assert_int_equal(len, 2);
    assert_memory_equal(data, "ok", 2);
    weft_future_release(before);
    weft_future_release(crashed);
    weft_future_release(after);
    free(arg);
    close_pool(ex);
    weft__ppool_set_test_hook(NULL); /* workers are forked on demand: kept until the pool ends */
}

/* test_crash_at_task_unpickle: the worker dies as it takes the task in; only that future
 * fails (WEFT_EWORKERDIED), within the timeout, and the pool goes on. */
static void process_pool_crash_receiving_the_task(void **state)
{
    (void)state;
    stage_crash(16, "crash:got");
}

/* test_crash_during_result_pickle_on_worker: the worker dies after running the task, before
 * its result goes. */
static void process_pool_crash_sending_the_result(void **state)
{
    (void)state;
    stage_crash(16, "crash:send");
}

/* test_crash_big_data: the worker dies after sending half of a 4 MiB result: the pool takes
 * no half result, fails only that future, and goes on. */
static void process_pool_crash_midway_through_a_large_result(void **state)
{
    (void)state;
    stage_crash((size_t)4 << 20, "crash:half");
}

static weft_value_t *runs; /* in shared memory: how many times count_run ran */

static int count_run(const void *arg, size_t len, void **result, size_t *result_len)
{
    weft_value_add(runs, 1, NULL);
    return echo_arg(arg, len, result, result_len);
}

/* A worker has the next task waiting in its pipe while it runs one (two in flight): when it
 * dies, the task it ran fails and the waiting one, which never began, runs on the next worker
 * — once. */
static void process_pool_task_behind_a_dying_one_runs_once(void **state)
{
    (void)state;
    assert_int_equal(weft_shm_alloc(sizeof *runs, (void **)&runs), 0);
    weft_executor_t *ex = make_pool(1, 0, WEFT_FOREVER);
    weft_future_t *dies = submit(ex, die, "e", 1), *after[5];
    for (int i = 0; i < 5; i++) after[i] = submit(ex, count_run, "ok", 2);
    assert_int_equal(weft_future_result_bytes(dies, 60, NULL, NULL), WEFT_EWORKERDIED);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(weft_future_result_bytes(after[i], 60, NULL, NULL), 0);
        weft_future_release(after[i]);
    }
    weft_future_release(dies);
    close_pool(ex);
    int64_t n;
    assert_int_equal(weft_value_get(runs, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(weft_shm_free(runs, sizeof *runs), 0);
}

static int nap_then_exit(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    usleep(100000);
    _exit(5);
}

/* test_shutdown_deadlock: a worker dies after shutdown began (shutdown waiting for the
 * running task): the task fails, shutdown returns, nothing hangs. */
static void process_pool_crash_after_shutdown_began(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(2, 0, WEFT_FOREVER);
    weft_future_t *f = submit(ex, nap_then_exit, NULL, 0);
    weft_future_t *ok = submit(ex, echo_arg, "ok", 2);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_executor_shutdown(ex, true, false, 60), 0);
    assert_true(weft_time_monotonic() - t0 < 30);
    assert_int_equal(weft_future_result_bytes(f, 0, NULL, NULL), WEFT_EWORKERDIED);
    assert_int_equal(weft_future_result_bytes(ok, 0, NULL, NULL), 0);
    weft_future_release(f);
    weft_future_release(ok);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* ---- payloads of every size (no deadlock on large ones) ---------------------------------- */

/* Patterns in 8-byte words, fast enough for 64 MiB: word k of a payload is id ^ (k * golden)
 * ^ len, so a payload cut short, shifted or swapped with another task's shows. */
static uint64_t pattern_word(uint64_t id, size_t len, size_t k)
{
    return id ^ (k * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)len << 32);
}

static void pattern_fill(unsigned char *buf, size_t len, uint64_t id)
{
    for (size_t k = 0; k * 8 < len; k++) {
        uint64_t w = pattern_word(id, len, k);
        memcpy(buf + k * 8, &w, len - k * 8 < 8 ? len - k * 8 : 8);
    }
}

static bool pattern_ok(const unsigned char *buf, size_t len, uint64_t id)
{
    for (size_t k = 0; k * 8 < len; k++) {
        uint64_t w = pattern_word(id, len, k);
        if (memcmp(buf + k * 8, &w, len - k * 8 < 8 ? len - k * 8 : 8)) return false;
    }
    return true;
}

/* The sizes of the matrix; 64 MiB shrinks to 8 MiB under valgrind (the parent runs there:
 * every byte goes through memcheck several times; at full size one 64 MiB case took 312 s of
 * memcheck's 600 s timeout alone on this 2-core machine, three of them run two at a time). */
static size_t payload_size(int i)
{
    static const size_t sizes[] = {0, 1, 4096, 65536, (size_t)4 << 20, (size_t)64 << 20};
    return i == 5 && RUNNING_ON_VALGRIND ? (size_t)8 << 20 : sizes[i];
}

/* A task's argument carries no room for its result size (it may be empty): the function says
 * it. The id of a task is its argument's length: what a worker checks the argument against. */
static int sized_reply(const void *arg, size_t len, size_t rlen, void **result, size_t *result_len)
{
    if (len && !pattern_ok(arg, len, len)) return WEFT_EIO;
    if (!rlen) return 0;
    unsigned char *out = malloc(rlen);
    if (!out) return WEFT_ENOMEM;
    pattern_fill(out, rlen, len);
    *result = out;
    *result_len = rlen;
    return 0;
}

static int reply_0(const void *arg, size_t len, void **result, size_t *result_len)
{
    return sized_reply(arg, len, payload_size(0), result, result_len);
}
static int reply_1(const void *arg, size_t len, void **result, size_t *result_len)
{
    return sized_reply(arg, len, payload_size(1), result, result_len);
}
static int reply_2(const void *arg, size_t len, void **result, size_t *result_len)
{
    return sized_reply(arg, len, payload_size(2), result, result_len);
}
static int reply_3(const void *arg, size_t len, void **result, size_t *result_len)
{
    return sized_reply(arg, len, payload_size(3), result, result_len);
}
static int reply_4(const void *arg, size_t len, void **result, size_t *result_len)
{
    return sized_reply(arg, len, payload_size(4), result, result_len);
}
static int reply_5(const void *arg, size_t len, void **result, size_t *result_len)
{
    return sized_reply(arg, len, payload_size(5), result, result_len);
}

static weft_process_task_fn const replies[] = {reply_0, reply_1, reply_2,
                                               reply_3, reply_4, reply_5};

typedef struct sized {
    int arg, result; /* indexes into payload_size */
} sized_t;

/* Runs every task of `tasks` (n of them, `reps` times over) on a pool of `workers`, with at
 * most `window` futures unfinished at once, and checks every result. */
static void run_sized(const sized_t *tasks, size_t n, int reps, size_t workers, size_t window)
{
    weft_executor_t *ex = make_pool(workers, 0, WEFT_FOREVER);
    /* Start the workers on a burst of tiny tasks first (a burst fills each worker's pipeline,
     * which starts the next): GCC 12's ASan allocator does not hold its locks across fork, so
     * a worker forked while this thread allocates large blocks can deadlock in its first
     * large malloc (see test_process.c, FULL_FORK_CHECK). Workers live until shutdown: the
     * large payloads below are allocated with no fork under way. */
    weft_future_t *warm[16];
    for (size_t i = 0; i < 4 * workers; i++) warm[i] = submit(ex, echo_arg, "w", 1);
    for (size_t i = 0; i < 4 * workers; i++) {
        assert_int_equal(weft_future_result_bytes(warm[i], 60, NULL, NULL), 0);
        weft_future_release(warm[i]);
    }
    size_t total = n * (size_t)reps, biggest = 0;
    for (size_t i = 0; i < n; i++)
        if (payload_size(tasks[i].arg) > biggest) biggest = payload_size(tasks[i].arg);
    unsigned char *arg = malloc(biggest ? biggest : 1);
    assert_non_null(arg);
    weft_future_t **fs = calloc(total, sizeof *fs);
    assert_non_null(fs);
    for (size_t i = 0; i < total + window; i++) {
        if (i >= window) { /* the oldest one: its result, whole */
            size_t k = i - window;
            const sized_t *t = &tasks[k % n];
            const void *data;
            size_t len;
            assert_int_equal(weft_future_result_bytes(fs[k], 120, &data, &len), 0);
            assert_int_equal(len, payload_size(t->result));
            assert_true(pattern_ok(data, len, payload_size(t->arg)));
            weft_future_release(fs[k]);
        }
        if (i < total) {
            const sized_t *t = &tasks[i % n];
            size_t len = payload_size(t->arg);
            pattern_fill(arg, len, len);
            fs[i] = submit(ex, replies[t->result], len ? arg : NULL, len);
        }
    }
    free(fs);
    free(arg);
    close_pool(ex);
}

/* The case: one worker, four tasks of 4 MiB whose results are 4 MiB. The pool thread
 * used to block sending the second task while the worker blocked sending the first result. */
static void process_pool_large_payloads_do_not_deadlock(void **state)
{
    (void)state;
    sized_t t = {4, 4};
    run_sized(&t, 1, 4, 1, 4);
}

/* Every pair of small sizes {0, 1 B, 4 KiB, 64 KiB} for task and result, 16 tasks in flight,
 * on 1, 2 and 4 workers. */
static void process_pool_small_payload_matrix(void **state)
{
    (void)state;
    sized_t t[16];
    for (int a = 0; a < 4; a++)
        for (int r = 0; r < 4; r++) t[a * 4 + r] = (sized_t){a, r};
    for (size_t w = 1; w <= 4; w *= 2) run_sized(t, 16, 2, w, 16);
}

/* 4 MiB on either side, against every size up to 4 MiB on the other, 16 tasks in flight, on
 * 1, 2 and 4 workers. */
static void process_pool_4mib_payload_matrix(void **state)
{
    (void)state;
    sized_t t[9];
    size_t n = 0;
    for (int x = 0; x <= 4; x++) {
        t[n++] = (sized_t){4, x};
        if (x != 4) t[n++] = (sized_t){x, 4};
    }
    for (size_t w = 1; w <= 4; w *= 2) run_sized(t, n, 2, w, 16);
}

/* 64 MiB on either side, against every size on the other. In flight: 4 tasks, not 16 (16 of
 * 64 MiB each way would hold 2 GiB in the test alone, before the pool's and the workers'
 * copies). One case per worker count, to stay well within the per-case timeout. */
static void run_64mib_matrix(size_t workers)
{
    sized_t t[11];
    size_t n = 0;
    for (int x = 0; x <= 5; x++) {
        t[n++] = (sized_t){5, x};
        if (x != 5) t[n++] = (sized_t){x, 5};
    }
    run_sized(t, n, 1, workers, 4);
}

static void process_pool_64mib_payload_matrix_1_worker(void **state)
{
    (void)state;
    run_64mib_matrix(1);
}

static void process_pool_64mib_payload_matrix_2_workers(void **state)
{
    (void)state;
    run_64mib_matrix(2);
}

static void process_pool_64mib_payload_matrix_4_workers(void **state)
{
    (void)state;
    run_64mib_matrix(4);
}

/* weft_future_result on a bytes future: WEFT_EINVAL and NULL, not the address of weft's own
 * record of the bytes (before: 0 and a pointer 16 bytes before the data, which looked valid). */
static void process_pool_result_of_a_bytes_future_is_einval(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1, 0, 0);
    weft_future_t *f = submit(ex, reverse_and_pid, "abc", 3);
    void *value = (void *)1;
    assert_int_equal(weft_future_result(f, 60, &value), WEFT_EINVAL);
    assert_null(value);
    const void *data;
    size_t len;
    assert_int_equal(weft_future_result_bytes(f, 60, &data, &len), 0);
    assert_memory_equal(data, "cba", 3);
    weft_future_release(f);
    close_pool(ex);
}

/* Naps 0.2 s, then returns the worker's pid. */
static int nap_then_pid(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len;
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    pid_t *pid = malloc(sizeof *pid);
    if (!pid) return WEFT_ENOMEM;
    *pid = getpid();
    *result = pid;
    *result_len = sizeof *pid;
    return 0;
}

/* ProcessPoolExecutor(4) with 4 tasks: they run side by side on 4 workers (before, the pool
 * handed up to 4 tasks to its first worker before it started a second: all 4 ran one after
 * the other in one process). */
static void process_pool_spreads_a_few_tasks_over_workers(void **state)
{
    (void)state;
    enum { N = 4 };
    weft_executor_t *ex = make_pool(N, 0, 0);
    weft_future_t *f[N];
    for (int i = 0; i < N; i++) f[i] = submit(ex, nap_then_pid, NULL, 0);
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        const void *data;
        size_t len;
        assert_int_equal(weft_future_result_bytes(f[i], 60, &data, &len), 0);
        assert_int_equal(len, sizeof(pid_t));
        memcpy(&pids[i], data, sizeof(pid_t));
        weft_future_release(f[i]);
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) assert_true(pids[i] != pids[j]);
    close_pool(ex);
}

/* Fails with a message, as a thread-pool task would. */
static int fail_with_message(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    return weft_future_fail_current(WEFT_ERANGE, "item %d is out of range", 7);
}

/* weft_future_fail_current's message reaches the future of a process-pool task (before: the
 * code came back, the message was dropped: NULL). */
static void process_pool_task_failure_keeps_its_message(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1, 0, 0);
    weft_future_t *f = submit(ex, fail_with_message, NULL, 0);
    int code = 0;
    assert_int_equal(weft_future_error(f, 60, &code), 0);
    assert_int_equal(code, WEFT_ERANGE);
    assert_non_null(weft_future_error_message(f));
    assert_string_equal(weft_future_error_message(f), "item 7 is out of range");
    weft_future_release(f);
    /* A failure without a message still has none. */
    f = submit(ex, fail_with_eio, NULL, 0);
    assert_int_equal(weft_future_error(f, 60, &code), 0);
    assert_int_equal(code, WEFT_EIO);
    weft_future_release(f);
    close_pool(ex);
}

/* ---- limits ------------------------------------------------------------------------------ */

/* core.h: a timeout of +inf, or too long to represent in nanoseconds (~292 years), means
 * forever. As a task_timeout it is no limit, not an instant WEFT_ETIMEDOUT. */
static void process_pool_endless_task_timeout_is_no_limit(void **state)
{
    (void)state;
    double timeouts[] = {INFINITY, 9.3e9, 1e300, DBL_MAX};
    for (size_t i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        weft_executor_t *ex = make_pool(1, 0, timeouts[i]);
        weft_future_t *f[3];
        for (int k = 0; k < 3; k++) f[k] = submit(ex, reverse_and_pid, "ok", 2);
        for (int k = 0; k < 3; k++) {
            assert_int_equal(weft_future_result_bytes(f[k], 60, NULL, NULL), 0);
            weft_future_release(f[k]);
        }
        close_pool(ex);
    }
}

/* task_timeout follows the duration rule: 0 (the default of a zeroed struct, and -0.0),
 * WEFT_FOREVER and a NULL opts are no limit: a task that takes 0.2 s succeeds; any other
 * negative value is WEFT_EINVAL at create (before, -1 silently meant "no limit" too), as NaN
 * is (process_pool_bad_input). */
static void process_pool_task_timeout_zero_is_no_limit_negative_is_einval(void **state)
{
    (void)state;
    weft_process_pool_opts_t bad = {.task_timeout = -1};
    weft_executor_t *ex = (weft_executor_t *)1;
    assert_int_equal(weft_process_pool_create(1, &bad, &ex), WEFT_EINVAL);
    assert_null(ex);
    double none[] = {0, -0.0};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        ex = make_pool(1, 0, none[i]);
        weft_future_t *a = submit(ex, sleep_a_bit, NULL, 0);
        assert_int_equal(weft_future_result_bytes(a, 60, NULL, NULL), 0);
        weft_future_release(a);
        close_pool(ex);
    }
    ex = make_pool(1, 0, WEFT_FOREVER);
    weft_future_t *f = submit(ex, sleep_a_bit, NULL, 0);
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), 0);
    weft_future_release(f);
    close_pool(ex);
    assert_int_equal(weft_process_pool_create(1, NULL, &ex), 0);
    f = submit(ex, sleep_a_bit, NULL, 0);
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), 0);
    weft_future_release(f);
    close_pool(ex);
}

/* Returns the comm of the worker it runs in (what top and ps show), without its newline. */
static int own_comm(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len;
    char *buf = calloc(1, 32);
    if (!buf) return WEFT_ENOMEM;
    FILE *f = fopen("/proc/self/comm", "r");
    if (!f || !fgets(buf, 32, f)) {
        if (f) fclose(f);
        free(buf);
        return WEFT_EIO;
    }
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    *result = buf;
    *result_len = strlen(buf);
    return 0;
}

/* How many threads of this process have the comm `name`. */
static int threads_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue; /* gone meanwhile */
        if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        n += strcmp(comm, name) == 0;
    }
    closedir(d);
    return n;
}

/* Runs 16 tasks on a 2-worker pool made with opts; the workers' comms are expect0 and expect1
 * (both seen, nothing else), and this process has a thread named pool_thread. */
static void check_worker_comms(const weft_process_pool_opts_t *opts, const char *expect0,
                               const char *expect1, const char *pool_thread)
{
    weft_executor_t *ex;
    assert_int_equal(weft_process_pool_create(2, opts, &ex), 0);
    enum { N = 16 };
    weft_future_t *fs[N];
    for (int i = 0; i < N; i++) fs[i] = submit(ex, own_comm, NULL, 0);
    bool seen0 = false, seen1 = false;
    for (int i = 0; i < N; i++) {
        const void *data;
        size_t len;
        assert_int_equal(weft_future_result_bytes(fs[i], 60, &data, &len), 0);
        char comm[32];
        assert_true(len < sizeof comm);
        memcpy(comm, data, len);
        comm[len] = '\0';
        seen0 |= strcmp(comm, expect0) == 0;
        seen1 |= strcmp(comm, expect1) == 0;
        assert_true(strcmp(comm, expect0) == 0 || strcmp(comm, expect1) == 0);
        weft_future_release(fs[i]);
    }
    assert_true(seen0 && seen1); /* 4 tasks in flight per worker: both took some */
    /* At least: the process layer's forker thread, when it runs, has the comm of the thread
     * that started it (the pool thread) too. */
    assert_true(threads_named(pool_thread) >= 1);
    close_pool(ex);
}

/* Workers are "<prefix>_<n>" in their comm (top, ps), cut to 15 characters so that the number
 * fits, "weft_proc_<n>" by default; the pool thread is "<prefix>". Before, the workers kept
 * their parent's comm and the pool thread showed "ProcessPoolExec". */
static void process_pool_worker_names(void **state)
{
    (void)state;
    check_worker_comms(NULL, "weft_proc_0", "weft_proc_1", "weft_proc");
    weft_process_pool_opts_t opts = WEFT_PROCESS_POOL_OPTS_INIT;
    opts.process_name_prefix = "cruncher";
    check_worker_comms(&opts, "cruncher_0", "cruncher_1", "cruncher");
    opts.process_name_prefix = "a-very-long-process-prefix";
    check_worker_comms(&opts, "a-very-long-p_0", "a-very-long-p_1", "a-very-long-pro");
}

/* Reports whether the fd whose number is its argument is open in the worker: 0 closed,
 * WEFT_EBUSY open. */
static int fd_is_open(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)result, (void)result_len;
    int fd;
    if (len != sizeof fd) return WEFT_EINVAL;
    memcpy(&fd, arg, sizeof fd);
    return fcntl(fd, F_GETFD) >= 0 ? WEFT_EBUSY : 0;
}

/* A worker forked while the parent holds a socket (a server's client connection, say) must
 * not keep a copy: the peer would never see EOF when the parent closes its end (an HTTP
 * server closing a connection left the client waiting). Workers close every fd they inherit
 * but stdio and their channel to the pool, as Python's forkserver and spawn start methods do.
 * (Before: the worker kept the socket; the task saw it open and the peer no EOF.) */
static void process_pool_workers_do_not_keep_the_parents_fds(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    weft_executor_t *ex = make_pool(1, 0, WEFT_FOREVER);
    weft_future_t *f = submit(ex, fd_is_open, &sv[0], sizeof sv[0]); /* forks the worker */
    int code = INT32_MIN;
    assert_int_equal(weft_future_error(f, 60, &code), 0);
    assert_int_equal(code, 0); /* the worker does not have sv[0] */
    weft_future_release(f);
    assert_int_equal(close(sv[0]), 0);
    struct pollfd pfd = {sv[1], POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, 5000), 1); /* EOF at once: no copy of sv[0] lives on */
    char c;
    assert_int_equal(read(sv[1], &c, 1), 0);
    close(sv[1]);
    close_pool(ex);
}

/* ---- map ---------------------------------------------------------------------------------- */

static int plain_task(void *arg, void **result);

typedef struct map_item { /* the head of a map argument; any payload follows it */
    uint32_t index;
    int32_t code;      /* nonzero: the task fails with it */
    uint32_t sleep_ms; /* before it ends */
} map_item_t;

/* Sleeps as told, then fails with the item's code or echoes its whole argument. */
static int map_task(const void *arg, size_t len, void **result, size_t *result_len)
{
    map_item_t item;
    if (len < sizeof item) return WEFT_EINVAL;
    memcpy(&item, arg, sizeof item);
    struct timespec ts = {item.sleep_ms / 1000, (long)(item.sleep_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (item.code) return item.code;
    return echo_arg(arg, len, result, result_len);
}

static void free_results(weft_bytes_t *results, size_t n)
{
    for (size_t i = 0; i < n; i++) free((void *)results[i].data);
}

/* Pool.map keeps argument order whatever order the tasks finish in: later items sleep less
 * and finish first. (Before: weft_executor_map on a process pool was WEFT_ENOTSUP and no
 * bytes map existed.) */
static void process_pool_map_keeps_order_under_reordering(void **state)
{
    (void)state;
    enum { N = 8 };
    weft_executor_t *ex = make_pool(4, 0, WEFT_FOREVER);
    map_item_t items[N];
    weft_bytes_t args[N], results[N];
    for (uint32_t i = 0; i < N; i++) {
        items[i] = (map_item_t){.index = i, .sleep_ms = (N - i) * 15};
        args[i] = (weft_bytes_t){&items[i], sizeof items[i]};
    }
    size_t nd = 99;
    assert_int_equal(weft_process_pool_map(ex, map_task, args, N, results, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, N);
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(results[i].len, sizeof(map_item_t));
        assert_memory_equal(results[i].data, &items[i], sizeof items[i]);
    }
    free_results(results, N);
    /* The generic map still refuses pointers for a process pool. */
    void *ptrs[1] = {NULL}, *out[1];
    assert_int_equal(weft_executor_map(ex, plain_task, ptrs, 1, out, WEFT_FOREVER, &nd),
                     WEFT_ENOTSUP);
    close_pool(ex);
}

/* The first failure in argument order is returned, not the first in time: item 3 fails late,
 * item 5 at once; the results before item 3 are stored, the rest are {NULL, 0}. */
static void process_pool_map_returns_the_first_failure_in_order(void **state)
{
    (void)state;
    enum { N = 7 };
    weft_executor_t *ex = make_pool(4, 0, WEFT_FOREVER);
    map_item_t items[N];
    weft_bytes_t args[N], results[N];
    for (uint32_t i = 0; i < N; i++) {
        items[i] = (map_item_t){.index = i};
        args[i] = (weft_bytes_t){&items[i], sizeof items[i]};
    }
    items[3].code = WEFT_EIO, items[3].sleep_ms = 150;
    items[5].code = WEFT_ERANGE;
    size_t nd = 99;
    assert_int_equal(weft_process_pool_map(ex, map_task, args, N, results, WEFT_FOREVER, &nd),
                     WEFT_EIO);
    assert_int_equal(nd, 3);
    for (size_t i = 0; i < 3; i++) assert_memory_equal(results[i].data, &items[i], sizeof items[i]);
    for (size_t i = 3; i < N; i++) {
        assert_null(results[i].data);
        assert_int_equal(results[i].len, 0);
    }
    free_results(results, nd);
    close_pool(ex);
}

/* One overall timeout, counted once: 4 items of 0.15 s on one worker with a 0.3 s timeout fail
 * with WEFT_ETIMEDOUT after about 0.3 s (not 4 x 0.3 s), the done ones stored; 0 only takes
 * what is done at once. */
static void process_pool_map_timeout_is_counted_once(void **state)
{
    (void)state;
    enum { N = 4 };
    weft_executor_t *ex = make_pool(1, 0, WEFT_FOREVER);
    map_item_t items[N];
    weft_bytes_t args[N], results[N];
    for (uint32_t i = 0; i < N; i++) {
        items[i] = (map_item_t){.index = i, .sleep_ms = 150};
        args[i] = (weft_bytes_t){&items[i], sizeof items[i]};
    }
    size_t nd = 99;
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_process_pool_map(ex, map_task, args, N, results, 0.3, &nd),
                     WEFT_ETIMEDOUT);
    double took = weft_time_monotonic() - t0;
    assert_true(took >= 0.25);
    /* Per-item timeouts would succeed: each item is done in 0.3 s. Under valgrind a worker's
     * start and an item alone can take longer than the whole timeout (a memcheck run took
     * 15 s): there only the timeout and an upper bound on the items done are checked. */
    if (!RUNNING_ON_VALGRIND) {
        assert_true(took < 1.5);
        assert_true(nd >= 1);
    }
    assert_true(nd <= 2);
    free_results(results, nd);
    assert_int_equal(weft_process_pool_map(ex, map_task, args, N, results, 0, &nd), WEFT_ETIMEDOUT);
    assert_int_equal(nd, 0);
    close_pool(ex);
}

/* 1 MiB arguments and results, more than a pipe holds, each item its own bytes. */
static void process_pool_map_big_payloads(void **state)
{
    (void)state;
    enum { N = 6, SIZE = 1 << 20 };
    weft_executor_t *ex = make_pool(2, 0, WEFT_FOREVER);
    unsigned char *bufs[N];
    weft_bytes_t args[N], results[N];
    for (uint32_t i = 0; i < N; i++) {
        bufs[i] = malloc(SIZE);
        assert_non_null(bufs[i]);
        for (size_t k = 0; k < SIZE; k++) bufs[i][k] = (unsigned char)(k * 7 + i);
        map_item_t head = {.index = i};
        memcpy(bufs[i], &head, sizeof head);
        args[i] = (weft_bytes_t){bufs[i], SIZE};
    }
    size_t nd;
    assert_int_equal(weft_process_pool_map(ex, map_task, args, N, results, 120, &nd), 0);
    assert_int_equal(nd, N);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(results[i].len, SIZE);
        assert_memory_equal(results[i].data, bufs[i], SIZE);
        free(bufs[i]);
    }
    free_results(results, N);
    close_pool(ex);
}

/* 0 items, bad arguments (outputs cleared), the wrong kind of pool, and a shut-down pool. */
static void process_pool_map_edges(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1, 0, WEFT_FOREVER), *threads;
    map_item_t item = {0};
    weft_bytes_t args[2] = {{&item, sizeof item}, {NULL, 4}}, results[2];
    size_t nd = 99;
    assert_int_equal(weft_process_pool_map(ex, map_task, NULL, 0, results, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 0);
    assert_int_equal(weft_process_pool_map(ex, map_task, args, 0, results, 0, NULL), 0);
    nd = 99;
    assert_int_equal(weft_process_pool_map(NULL, map_task, args, 1, results, 1, &nd), WEFT_EINVAL);
    assert_int_equal(nd, 0);
    assert_int_equal(weft_process_pool_map(ex, NULL, args, 1, results, 1, &nd), WEFT_EINVAL);
    assert_int_equal(weft_process_pool_map(ex, map_task, NULL, 1, results, 1, &nd), WEFT_EINVAL);
    assert_int_equal(weft_process_pool_map(ex, map_task, args, 1, NULL, 1, &nd), WEFT_EINVAL);
    assert_int_equal(weft_process_pool_map(ex, map_task, args, 1, results, NAN, &nd), WEFT_EINVAL);
    /* The second argument has no data for its length: the first, submitted, is cancelled or
     * runs; nothing is stored. */
    assert_int_equal(weft_process_pool_map(ex, map_task, args, 2, results, 10, &nd), WEFT_EINVAL);
    assert_int_equal(nd, 0);
    assert_null(results[0].data);
    assert_int_equal(weft_thread_pool_create(1, NULL, &threads), 0);
    assert_int_equal(weft_process_pool_map(threads, map_task, args, 1, results, 1, &nd),
                     WEFT_ENOTSUP);
    assert_int_equal(weft_executor_release(threads), 0);
    assert_int_equal(weft_executor_shutdown(ex, true, false, 60), 0);
    nd = 99;
    assert_int_equal(weft_process_pool_map(ex, map_task, args, 1, results, 1, &nd), WEFT_ESHUTDOWN);
    assert_int_equal(nd, 0);
    assert_null(results[0].data);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* Map from coroutines of one thread at once: each waits parked, the others go on. */
typedef struct co_map {
    weft_executor_t *ex;
    uint32_t base;
    int rc;
} co_map_t;

static void co_map_main(void *arg)
{
    co_map_t *m = arg;
    map_item_t items[3];
    weft_bytes_t args[3], results[3];
    for (uint32_t i = 0; i < 3; i++) {
        items[i] = (map_item_t){.index = m->base + i, .sleep_ms = 20};
        args[i] = (weft_bytes_t){&items[i], sizeof items[i]};
    }
    size_t nd;
    m->rc = weft_process_pool_map(m->ex, map_task, args, 3, results, 60, &nd);
    for (size_t i = 0; i < nd; i++)
        if (results[i].len != sizeof items[i] ||
            memcmp(results[i].data, &items[i], sizeof items[i]) != 0)
            m->rc = -1;
    free_results(results, nd);
}

static void process_pool_map_from_coroutines(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(2, 0, WEFT_FOREVER);
    co_map_t maps[3];
    weft_co_t *cos[3];
    for (uint32_t i = 0; i < 3; i++) {
        maps[i] = (co_map_t){ex, 10 * i, 1};
        cos[i] = weft_test_spawn(co_map_main, &maps[i]);
    }
    for (int i = 0; i < 3; i++) {
        weft_test_co_join(cos[i]);
        assert_int_equal(maps[i].rc, 0);
    }
    close_pool(ex);
}

/* An argument length whose message size (header + length) wraps is refused as the allocation
 * it cannot be (WEFT_ENOMEM), before a byte of the (short) buffer is read. */
static void process_pool_submit_length_near_size_max_is_refused(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1, 0, WEFT_FOREVER);
    char small[16] = "x";
    for (size_t k = 0; k <= 32; k++) {
        weft_future_t *f = (weft_future_t *)1;
        assert_int_equal(weft_process_pool_submit(ex, reverse_and_pid, small, SIZE_MAX - k, &f),
                         WEFT_ENOMEM);
        assert_null(f);
    }
    close_pool(ex);
}

static weft_event_t *gate; /* in shared memory: opened by the test, waited for by the task */

static int echo_after_gate(const void *arg, size_t len, void **result, size_t *result_len)
{
    if (weft_event_wait(gate, 60) != 0) return WEFT_ETIMEDOUT;
    return echo_arg(arg, len, result, result_len);
}

/* The pool cannot allocate the memory for a task's result: that task fails with WEFT_ENOMEM
 * (its worker is replaced: the reply is still in its pipe), nothing is leaked, and the next
 * task runs. */
static void process_pool_result_that_cannot_be_allocated_fails_its_task(void **state)
{
    (void)state;
    assert_int_equal(weft_shm_alloc(sizeof *gate, (void **)&gate), 0);
    assert_int_equal(weft_event_init_shared(gate), 0);
    weft_executor_t *ex = make_pool(1, 0, WEFT_FOREVER);
    weft_future_t *f = submit(ex, echo_arg, "warm", 4); /* the worker exists */
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), 0);
    weft_future_release(f);
    f = submit(ex, echo_after_gate, "result", 6);
    while (!weft_future_running(f)) sched_yield();
    /* The pool thread's next allocation is the memory for this reply (it is idle otherwise,
     * and this thread allocates nothing until the result). */
    weft_test_fail_alloc(1, 0);
    assert_int_equal(weft_event_set(gate), 0);
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), WEFT_ENOMEM);
    weft_test_fail_alloc(0, 0);
    weft_future_release(f);
    const void *data;
    size_t len;
    f = submit(ex, echo_arg, "next", 4);
    assert_int_equal(weft_future_result_bytes(f, 60, &data, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(data, "next", 4);
    weft_future_release(f);
    close_pool(ex);
    assert_int_equal(weft_shm_free(gate, sizeof *gate), 0);
}

static weft_conn_t *serve_end;

static int serve_child(void *arg)
{
    (void)arg;
    /* A crash is a crash here, not cmocka's handler (inherited) jumping back into the case. */
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    signal(SIGILL, SIG_DFL);
    return weft__ppool_serve(serve_end, 0);
}

/* A worker checks that a task message holds at least a function pointer: a shorter one
 * (1..7 bytes) ends the worker with an error (the pool then fails the task with
 * WEFT_EWORKERDIED), instead of calling whatever the missing bytes make. */
static void process_pool_worker_refuses_a_short_task_message(void **state)
{
    (void)state;
    for (size_t len = 1; len < sizeof(weft_process_task_fn); len++) {
        weft_conn_t *pool_end;
        assert_int_equal(weft_pipe_create(true, &pool_end, &serve_end), 0);
        weft_process_t *p = weft_test_process_start(serve_child, NULL);
        weft_conn_release(serve_end);
        assert_int_equal(weft_conn_send_bytes(pool_end, "\x01\x02\x03\x04\x05\x06\x07", len, 10),
                         0);
        assert_int_equal(weft_test_process_finish(p), 1);
        weft_conn_release(pool_end);
    }
}

static int create_destroy(void *ctx)
{
    (void)ctx;
    weft_executor_t *ex;
    int rc = weft_process_pool_create(2, NULL, &ex);
    if (rc) return rc;
    weft_executor_shutdown(ex, true, false, WEFT_FOREVER);
    weft_executor_release(ex);
    return 0;
}

/* Out of memory while creating a pool: WEFT_ENOMEM, nothing left behind. */
static void process_pool_create_out_of_memory(void **state)
{
    (void)state;
    assert_true(weft_test_oom(create_destroy, NULL) >= 3);
}

static int plain_task(void *arg, void **result)
{
    (void)arg, (void)result;
    return 0;
}

static void process_pool_bad_input(void **state)
{
    (void)state;
    weft_executor_t *ex;
    weft_process_pool_opts_t nan_opts = WEFT_PROCESS_POOL_OPTS_INIT;
    nan_opts.task_timeout = NAN;
    assert_int_equal(weft_process_pool_create(1, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_process_pool_create(1, &nan_opts, &ex), WEFT_EINVAL);
    assert_null(ex);
    ex = make_pool(1, 0, WEFT_FOREVER);
    weft_future_t *f;
    assert_int_equal(weft_process_pool_submit(NULL, reverse_and_pid, "x", 1, &f), WEFT_EINVAL);
    assert_int_equal(weft_process_pool_submit(ex, NULL, "x", 1, &f), WEFT_EINVAL);
    assert_int_equal(weft_process_pool_submit(ex, reverse_and_pid, NULL, 1, &f), WEFT_EINVAL);
    /* Pointers mean nothing in a worker: the generic submit is refused. */
    assert_int_equal(weft_executor_submit(ex, plain_task, NULL, &f), WEFT_ENOTSUP);
    assert_null(f);
    weft_executor_t *threads;
    assert_int_equal(weft_thread_pool_create(1, NULL, &threads), 0);
    assert_int_equal(weft_process_pool_submit(threads, reverse_and_pid, "x", 1, &f), WEFT_ENOTSUP);
    close_pool(threads);
    /* Out of memory at submit: an error, nothing queued, nothing leaked. */
    for (long n = 1; n <= 2; n++) {
        long base = weft_test_live_allocs();
        weft_test_fail_alloc(n, 0);
        assert_int_equal(weft_process_pool_submit(ex, reverse_and_pid, "x", 1, &f), WEFT_ENOMEM);
        weft_test_fail_alloc(0, 0);
        assert_null(f);
        assert_int_equal(weft_test_live_allocs(), base);
    }
    close_pool(ex);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(process_pool_runs_tasks_on_bytes),
        WEFT_TEST(process_pool_empty_result_is_null_with_length_0),
        WEFT_TEST(process_pool_crash_receiving_the_task),
        WEFT_TEST(process_pool_crash_sending_the_result),
        WEFT_TEST(process_pool_crash_midway_through_a_large_result),
        WEFT_TEST(process_pool_crash_after_shutdown_began),
        WEFT_TEST(process_pool_task_behind_a_dying_one_runs_once),
        WEFT_TEST(process_pool_uses_at_most_max_workers),
        WEFT_TEST(process_pool_task_error_reaches_its_future),
        WEFT_TEST(process_pool_worker_death_fails_only_its_task),
        WEFT_TEST(process_pool_max_tasks_per_child_replaces_workers),
        WEFT_TEST(process_pool_task_timeout_kills_the_worker),
        WEFT_TEST(process_pool_hand_completed_future_keeps_its_pointer),
        WEFT_TEST(process_pool_shutdown_cancels_queued_futures),
        WEFT_TEST(process_pool_two_pools_shut_down_promptly),
        WEFT_TEST(process_pool_idle_worker_killed_is_replaced),
        WEFT_TEST(process_pool_create_out_of_memory),
        WEFT_TEST(process_pool_bad_input),
        WEFT_TEST(process_pool_large_payloads_do_not_deadlock),
        WEFT_TEST(process_pool_small_payload_matrix),
        WEFT_TEST(process_pool_4mib_payload_matrix),
        WEFT_TEST(process_pool_64mib_payload_matrix_1_worker),
        WEFT_TEST(process_pool_64mib_payload_matrix_2_workers),
        WEFT_TEST(process_pool_64mib_payload_matrix_4_workers),
        WEFT_TEST(process_pool_endless_task_timeout_is_no_limit),
        WEFT_TEST(process_pool_task_timeout_zero_is_no_limit_negative_is_einval),
        WEFT_TEST(process_pool_result_of_a_bytes_future_is_einval),
        WEFT_TEST(process_pool_spreads_a_few_tasks_over_workers),
        WEFT_TEST(process_pool_task_failure_keeps_its_message),
        WEFT_TEST(process_pool_worker_names),
        WEFT_TEST(process_pool_workers_do_not_keep_the_parents_fds),
        WEFT_TEST(process_pool_map_keeps_order_under_reordering),
        WEFT_TEST(process_pool_map_returns_the_first_failure_in_order),
        WEFT_TEST(process_pool_map_timeout_is_counted_once),
        WEFT_TEST(process_pool_map_big_payloads),
        WEFT_TEST(process_pool_map_edges),
        WEFT_TEST(process_pool_map_from_coroutines),
        WEFT_TEST(process_pool_submit_length_near_size_max_is_refused),
        WEFT_TEST(process_pool_worker_refuses_a_short_task_message),
        WEFT_TEST(process_pool_result_that_cannot_be_allocated_fails_its_task),
    };
    return weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
