/* The MPI pool (weft/mpi.h), run by CTest under `mpirun -np 3` (tests/executor/mpi.cmake):
 * rank 0 runs the case, ranks 1 and 2 serve it. The process pool's behaviours (CPython's
 * Lib/test/test_concurrent_futures: results, errors, callbacks, order, shutdown, cancel, large
 * payloads), then what is MPI's own: names instead of pointers, a rank that dies. */
#include "weft_test.h"

#include "weft/mpi.h"

#include <signal.h>
#include <stdatomic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- tasks (registered on every rank) ---------------------------------------------------- */

/* Its argument reversed, then the pid of the rank that ran it. */

/* The task's error of a future that is done, asked without waiting; fails the case if f is
 * not done. */
static int error_of(weft_future_t *f)
{
    int code = INT32_MIN;
    assert_int_equal(weft_future_error(f, 0, &code), 0);
    return code;
}
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
WEFT_MPI_TASK(reverse_and_pid)

/* The square of an 8-byte number. */
static int square(const void *arg, size_t len, void **result, size_t *result_len)
{
    uint64_t x;
    if (len != sizeof x) return WEFT_EINVAL;
    memcpy(&x, arg, sizeof x);
    uint64_t *r = malloc(sizeof *r);
    if (!r) return WEFT_ENOMEM;
    *r = x * x;
    *result = r;
    *result_len = sizeof *r;
    return 0;
}
WEFT_MPI_TASK(square)

static int fails_with_erange(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    return WEFT_ERANGE;
}
WEFT_MPI_TASK(fails_with_erange)

/* Fails with a message (weft_future_fail_current), as a process-pool task may. */
static int fails_with_a_message(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    return weft_future_fail_current(WEFT_ERANGE, "item %d is out of range", 7);
}
WEFT_MPI_TASK(fails_with_a_message)

/* Fails with a message far longer than a message may be (70 000 bytes). */
static int fails_with_a_huge_message(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    return weft_future_fail_current(WEFT_EIO, "%070000d", 1);
}
WEFT_MPI_TASK(fails_with_a_huge_message)

/* Sleeps the number of milliseconds in its 4-byte argument. */
static int sleep_ms(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)result, (void)result_len;
    uint32_t ms = 0;
    if (len == sizeof ms) memcpy(&ms, arg, sizeof ms);
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    return 0;
}
WEFT_MPI_TASK(sleep_ms)

static int die(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    raise(SIGKILL);
    return 0;
}
WEFT_MPI_TASK(die)

/* Waits until the file named by its argument exists (the ranks share this host), then kills
 * its rank. */
static int die_when_told(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)result, (void)result_len;
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)len, (const char *)arg);
    for (int i = 0; i < 60000 && access(path, F_OK) != 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    raise(SIGKILL);
    return 0;
}
WEFT_MPI_TASK(die_when_told)

/* Returns 0 and no result at all. */
static int no_result(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len, (void)result, (void)result_len;
    return 0;
}
WEFT_MPI_TASK(no_result)

/* What the MPI calls return inside a task on a worker rank: the codes of pool_create, serve
 * and finalize, as three int32s. */
static int calls_mpi_inside(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg, (void)len;
    int32_t *codes = malloc(3 * sizeof *codes);
    if (!codes) return WEFT_ENOMEM;
    weft_executor_t *ex = NULL;
    bool worker;
    codes[0] = weft_mpi_pool_create(NULL, &ex);
    if (codes[0] == 0) weft_executor_release(ex);
    codes[1] = weft_mpi_serve(NULL, NULL, &worker);
    codes[2] = weft_mpi_finalize();
    *result = codes;
    *result_len = 3 * sizeof *codes;
    return 0;
}
WEFT_MPI_TASK(calls_mpi_inside)

/* ---- helpers ------------------------------------------------------------------------------- */

static weft_executor_t *make_pool(size_t max_workers)
{
    weft_mpi_pool_opts_t opts = {.max_workers = max_workers};
    weft_executor_t *ex;
    assert_int_equal(weft_mpi_pool_create(&opts, &ex), 0);
    return ex;
}

static void close_pool(weft_executor_t *ex)
{
    assert_int_equal(weft_executor_shutdown(ex, true, false, 60), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

static weft_future_t *submit(weft_executor_t *ex, const char *name, const void *arg, size_t len)
{
    weft_future_t *f;
    assert_int_equal(weft_mpi_pool_submit(ex, name, arg, len, &f), 0);
    return f;
}

static weft_future_t *submit_square(weft_executor_t *ex, uint64_t x)
{
    return submit(ex, "square", &x, sizeof x);
}

static uint64_t square_of(weft_future_t *f)
{
    const void *data;
    size_t len;
    assert_int_equal(weft_future_result_bytes(f, 60, &data, &len), 0);
    assert_int_equal(len, sizeof(uint64_t));
    uint64_t v;
    memcpy(&v, data, sizeof v);
    return v;
}

static weft_future_t *submit_sleep(weft_executor_t *ex, uint32_t ms)
{
    return submit(ex, "sleep_ms", &ms, sizeof ms);
}

/* The pid of the rank that runs the next task of ex (max_workers 1: always the same one). */
static pid_t pid_of_rank(weft_executor_t *ex)
{
    weft_future_t *f = submit(ex, "reverse_and_pid", NULL, 0);
    const void *data;
    assert_int_equal(weft_future_result_bytes(f, 60, &data, NULL), 0);
    pid_t pid;
    memcpy(&pid, data, sizeof pid);
    weft_future_release(f);
    return pid;
}

/* A case that calls weft_mpi_finalize registers with WEFT_TEST_FINALIZING (tests/mpi.cmake
 * finds those too): the leak guard cannot hold it, since finalize ends what the baseline
 * counts (the MPI thread, MPI's sockets, the ranks' pidfds); ASan's leak check at exit still
 * does. */
static int finalizing_teardown(void **state)
{
    (void)state;
    return 0;
}
#define WEFT_TEST_FINALIZING(name)                                                                 \
    cmocka_unit_test_setup_teardown(name, weft_test_setup, finalizing_teardown)

/* ---- cases ----------------------------------------------------------------------------------- */

/* test_submit: a task runs on another rank with a copy of its argument bytes, and its result
 * bytes come back. */
static void mpi_pool_runs_tasks_on_bytes(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    weft_future_t *f = submit(ex, "reverse_and_pid", "abc", 3);
    const void *data;
    size_t len;
    assert_int_equal(weft_future_result_bytes(f, 60, &data, &len), 0);
    assert_int_equal(len, 3 + sizeof(pid_t));
    assert_memory_equal(data, "cba", 3);
    pid_t pid;
    memcpy(&pid, (const char *)data + 3, sizeof pid);
    assert_int_not_equal(pid, getpid());
    assert_int_equal(weft_future_state(f), WEFT_FUTURE_FINISHED);
    weft_future_release(f);
    /* no argument, and a result of only the pid */
    f = submit(ex, "reverse_and_pid", NULL, 0);
    assert_int_equal(weft_future_result_bytes(f, 60, &data, &len), 0);
    assert_int_equal(len, sizeof(pid_t));
    weft_future_release(f);
    close_pool(ex);
}

/* test_exception: the task's code is its future's error. */
static void mpi_pool_task_error_reaches_its_future(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    weft_future_t *f = submit(ex, "fails_with_erange", NULL, 0);
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), WEFT_ERANGE);
    assert_int_equal(error_of(f), WEFT_ERANGE);
    weft_future_release(f);
    f = submit(ex, "square", "x", 1); /* square refuses a wrong length */
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), WEFT_EINVAL);
    weft_future_release(f);
    close_pool(ex);
}

/* weft_future_fail_current's message in a worker rank reaches the submitter's future, as a
 * process pool's does; one longer than the limit arrives cut to it. */
static void mpi_pool_task_error_message_reaches_its_future(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    weft_future_t *f = submit(ex, "fails_with_a_message", NULL, 0);
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), WEFT_ERANGE);
    assert_non_null(weft_future_error_message(f));
    assert_string_equal(weft_future_error_message(f), "item 7 is out of range");
    weft_future_release(f);
    f = submit(ex, "fails_with_a_huge_message", NULL, 0);
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), WEFT_EIO);
    const char *m = weft_future_error_message(f);
    assert_non_null(m);
    assert_true(strlen(m) > 0 && strlen(m) <= 4095);
    assert_true(strspn(m, "0") == strlen(m)); /* the head of "000...01" */
    weft_future_release(f);
    f = submit(ex, "fails_with_erange", NULL, 0); /* no message: none */
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), WEFT_ERANGE);
    assert_null(weft_future_error_message(f));
    weft_future_release(f);
    close_pool(ex);
}

/* A name no rank registered fails its future with WEFT_ENOENT and a message; the pool goes on. */
static void mpi_pool_unknown_task_name_fails_its_future(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    weft_future_t *f = submit(ex, "no_such_task", "x", 1);
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), WEFT_ENOENT);
    assert_non_null(weft_future_error_message(f));
    weft_future_release(f);
    f = submit_square(ex, 12);
    assert_int_equal(square_of(f), 144);
    weft_future_release(f);
    close_pool(ex);
}

static int count_done(weft_future_t *f, void *arg)
{
    int code = -1;
    if (weft_future_error(f, 0, &code) == 0 && code == 0) atomic_fetch_add((_Atomic int *)arg, 1);
    return 0;
}

/* test_done_callback: callbacks run once the future is done (in the MPI thread), also those
 * added after. */
static void mpi_pool_callbacks_run_on_completion(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    _Atomic int done = 0;
    weft_future_t *fs[20];
    for (uint64_t i = 0; i < 20; i++) {
        fs[i] = submit_square(ex, i);
        assert_int_equal(weft_future_add_done_callback(fs[i], count_done, &done), 0);
    }
    close_pool(ex);
    assert_int_equal(atomic_load(&done), 20);
    assert_int_equal(weft_future_add_done_callback(fs[3], count_done, &done), 0); /* at once */
    assert_int_equal(atomic_load(&done), 21);
    for (int i = 0; i < 20; i++) weft_future_release(fs[i]);
}

/* test_map: many small tasks (batched) come back complete and in submission order. */
static void mpi_pool_many_small_tasks_in_order(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    enum { N = 5000 };
    weft_future_t **fs = malloc(N * sizeof *fs);
    assert_non_null(fs);
    for (uint64_t i = 0; i < N; i++) fs[i] = submit_square(ex, i);
    for (uint64_t i = 0; i < N; i++) {
        assert_int_equal(square_of(fs[i]), i * i);
        weft_future_release(fs[i]);
    }
    free(fs);
    close_pool(ex);
}

/* max_workers: a pool of 1 runs every task on the same rank. */
static void mpi_pool_uses_at_most_max_workers(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1);
    pid_t first = 0;
    for (int i = 0; i < 20; i++) {
        weft_future_t *f = submit(ex, "reverse_and_pid", NULL, 0);
        const void *data;
        assert_int_equal(weft_future_result_bytes(f, 60, &data, NULL), 0);
        pid_t pid;
        memcpy(&pid, data, sizeof pid);
        if (!first) first = pid;
        assert_int_equal(pid, first);
        weft_future_release(f);
    }
    close_pool(ex);
}

/* test_shutdown (wait=True): waits for what runs; then submit is WEFT_ESHUTDOWN. */
static void mpi_pool_shutdown_waits_then_refuses(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    weft_future_t *f = submit_sleep(ex, 200);
    assert_int_equal(weft_executor_shutdown(ex, true, false, 60), 0);
    assert_true(weft_future_done(f));
    assert_int_equal(error_of(f), 0);
    weft_future_t *g = (weft_future_t *)1;
    assert_int_equal(weft_mpi_pool_submit(ex, "square", NULL, 0, &g), WEFT_ESHUTDOWN);
    assert_null(g);
    weft_future_release(f);
    assert_int_equal(weft_executor_release(ex), 0);
}

static void wait_running(weft_future_t *f)
{
    while (!weft_future_running(f) && !weft_future_done(f)) weft_time_sleep(0.001);
}

/* test_cancel_futures: shutdown(cancel_futures) cancels what is queued; what runs finishes. */
static void mpi_pool_shutdown_cancels_queued_futures(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    enum { N = 400 };
    weft_future_t *fs[N];
    for (int i = 0; i < N; i++) fs[i] = submit_sleep(ex, 50);
    wait_running(fs[0]); /* handed out: it runs to its end */
    assert_int_equal(weft_executor_shutdown(ex, true, true, 60), 0);
    assert_int_equal(error_of(fs[0]), 0);
    int cancelled = 0, finished = 0;
    for (int i = 0; i < N; i++) {
        assert_true(weft_future_done(fs[i]));
        cancelled += weft_future_cancelled(fs[i]);
        finished += error_of(fs[i]) == 0;
        weft_future_release(fs[i]);
    }
    assert_int_equal(cancelled + finished, N);
    assert_true(cancelled > 0);
    assert_true(finished > 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* cancel: a queued future cancels (its task never runs); a running one cannot (WEFT_EBUSY). */
static void mpi_pool_cancel_queued_not_running(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1);
    /* the one rank takes 2 batches: once both are out, what comes next stays queued */
    weft_future_t *running = submit_sleep(ex, 300);
    wait_running(running);
    weft_future_t *second = submit_sleep(ex, 1);
    wait_running(second);
    weft_future_t *queued = submit_sleep(ex, 1);
    assert_int_equal(weft_future_cancel(queued), 0);
    assert_true(weft_future_cancelled(queued));
    assert_int_equal(weft_future_cancel(running), WEFT_EBUSY);
    close_pool(ex);
    assert_int_equal(error_of(running), 0);
    assert_int_equal(error_of(second), 0);
    weft_future_release(running);
    weft_future_release(second);
    weft_future_release(queued);
}

static int submit_in_child(void *arg)
{
    weft_executor_t *ex = arg;
    weft_future_t *f = (weft_future_t *)1;
    int rc = weft_mpi_pool_submit(ex, "square", NULL, 0, &f);
    return rc == WEFT_EBROKEN && f == NULL ? 0 : 1;
}

/* Fork: a pool inherited by a child is not usable there (WEFT_EBROKEN, no MPI call made). */
static void mpi_pool_unusable_in_a_forked_child(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    assert_int_equal(weft_test_process_finish(weft_test_process_start(submit_in_child, ex)), 0);
    weft_future_t *f = submit_square(ex, 5);
    assert_int_equal(square_of(f), 25);
    weft_future_release(f);
    close_pool(ex);
}

/* wait / as_completed over MPI futures. */
static void mpi_pool_wait_and_as_completed(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    weft_future_t *fs[3] = {submit_sleep(ex, 400), submit_square(ex, 3), submit_sleep(ex, 1)};
    size_t ndone;
    assert_int_equal(weft_future_wait(fs, 3, WEFT_FIRST_COMPLETED, 60, &ndone), 0);
    assert_true(ndone >= 1);
    assert_int_equal(weft_future_wait(fs, 3, WEFT_ALL_COMPLETED, 60, &ndone), 0);
    assert_int_equal(ndone, 3);
    weft_as_completed_t *it;
    assert_int_equal(weft_as_completed_create(fs, 3, 60, &it), 0);
    weft_future_t *f;
    int n = 0;
    while (weft_as_completed_next(it, &f) == 0) n++;
    assert_int_equal(n, 3);
    weft_as_completed_release(it);
    for (int i = 0; i < 3; i++) weft_future_release(fs[i]);
    close_pool(ex);
}

/* 64 MiB each way, streamed in chunks: the bytes arrive intact, and small tasks submitted
 * meanwhile complete (the MPI thread is not stuck in the transfer). */
static void mpi_pool_64mib_payloads_stream(void **state)
{
    (void)state;
    size_t big = (size_t)64 << 20;
    unsigned char *arg = malloc(big);
    assert_non_null(arg);
    for (size_t i = 0; i < big; i++) arg[i] = (unsigned char)(i * 7 + (i >> 20));
    weft_executor_t *ex = make_pool(0);
    weft_future_t *f = submit(ex, "reverse_and_pid", arg, big);
    weft_future_t *small[50];
    for (uint64_t i = 0; i < 50; i++) small[i] = submit_square(ex, i);
    for (uint64_t i = 0; i < 50; i++) {
        assert_int_equal(square_of(small[i]), i * i);
        weft_future_release(small[i]);
    }
    const unsigned char *data;
    size_t len;
    assert_int_equal(weft_future_result_bytes(f, 120, (const void **)&data, &len), 0);
    assert_int_equal(len, big + sizeof(pid_t));
    for (size_t i = 0; i < big; i++)
        if (data[i] != arg[big - 1 - i]) fail_msg("byte %zu differs", i);
    weft_future_release(f);
    free(arg);
    close_pool(ex);
}

typedef struct many_submitters {
    weft_executor_t *ex;
    _Atomic int ok;
} many_submitters_t;

static void submit_from_thread(void *arg, int i)
{
    many_submitters_t *m = arg;
    for (uint64_t k = 0; k < 200; k++) {
        uint64_t x = (uint64_t)i * 1000 + k;
        weft_future_t *f;
        if (weft_mpi_pool_submit(m->ex, "square", &x, sizeof x, &f) != 0) continue;
        const void *data;
        uint64_t v = 0;
        if (weft_future_result_bytes(f, 60, &data, NULL) == 0) memcpy(&v, data, sizeof v);
        if (v == x * x) atomic_fetch_add(&m->ok, 1);
        weft_future_release(f);
    }
}

static void wait_in_coroutine(void *arg)
{
    many_submitters_t *m = arg;
    weft_future_t *f;
    uint64_t x = 9;
    if (weft_mpi_pool_submit(m->ex, "square", &x, sizeof x, &f) != 0) return;
    if (square_of(f) == 81) atomic_fetch_add(&m->ok, 1);
    weft_future_release(f);
}

/* Submitting from several threads at once, and waiting from coroutines that share one thread:
 * each waiter parks only itself. */
static void mpi_pool_submit_from_threads_wait_from_coroutines(void **state)
{
    (void)state;
    many_submitters_t m = {.ex = make_pool(0)};
    weft_test_run_threads(4, submit_from_thread, &m);
    assert_int_equal(atomic_load(&m.ok), 4 * 200);
    weft_co_t *cos[8];
    for (int i = 0; i < 8; i++) cos[i] = weft_test_spawn(wait_in_coroutine, &m);
    for (int i = 0; i < 8; i++) weft_test_co_join(cos[i]);
    assert_int_equal(atomic_load(&m.ok), 4 * 200 + 8);
    close_pool(m.ex);
}

/* Pool.map on MPI ranks: the results in argument order, each a copy the caller frees; the
 * first failure in argument order (a task's code, WEFT_ENOENT for a name no rank has), with
 * the results before it stored; bad input and the wrong kind of pool. (Before: no map for
 * an MPI pool: weft_executor_map was WEFT_ENOTSUP.) */
static void mpi_pool_map(void **state)
{
    (void)state;
    enum { N = 40 };
    weft_executor_t *ex = make_pool(0);
    uint64_t xs[N];
    weft_bytes_t args[N], results[N];
    for (int i = 0; i < N; i++) {
        xs[i] = (uint64_t)i + 3;
        args[i] = (weft_bytes_t){&xs[i], sizeof xs[i]};
    }
    size_t nd = 99;
    assert_int_equal(weft_mpi_pool_map(ex, "square", args, N, results, 60, &nd), 0);
    assert_int_equal(nd, N);
    for (int i = 0; i < N; i++) {
        uint64_t r;
        assert_int_equal(results[i].len, sizeof r);
        memcpy(&r, results[i].data, sizeof r);
        assert_int_equal(r, xs[i] * xs[i]);
        free((void *)results[i].data);
    }
    args[2].len = 3; /* square refuses a length that is not 8 */
    assert_int_equal(weft_mpi_pool_map(ex, "square", args, N, results, 60, &nd), WEFT_EINVAL);
    assert_int_equal(nd, 2);
    free((void *)results[0].data);
    free((void *)results[1].data);
    assert_null(results[2].data);
    assert_int_equal(weft_mpi_pool_map(ex, "fails_with_erange", args, 3, results, 60, &nd),
                     WEFT_ERANGE);
    assert_int_equal(nd, 0);
    assert_int_equal(weft_mpi_pool_map(ex, "no_such_task", args, 2, results, 60, &nd), WEFT_ENOENT);
    assert_int_equal(weft_mpi_pool_map(ex, "square", NULL, 0, results, 60, &nd), 0);
    assert_int_equal(nd, 0);
    assert_int_equal(weft_mpi_pool_map(ex, NULL, args, 1, results, 60, &nd), WEFT_EINVAL);
    assert_int_equal(weft_mpi_pool_map(ex, "", args, 1, results, 60, &nd), WEFT_EINVAL);
    assert_int_equal(weft_mpi_pool_map(NULL, "square", args, 1, results, 60, &nd), WEFT_EINVAL);
    assert_int_equal(weft_mpi_pool_map(ex, "square", NULL, 1, results, 60, &nd), WEFT_EINVAL);
    assert_int_equal(weft_mpi_pool_map(ex, "square", args, 1, NULL, 60, &nd), WEFT_EINVAL);
    assert_int_equal(weft_mpi_pool_map(ex, "square", args, 1, results, NAN, &nd), WEFT_EINVAL);
    weft_executor_t *threads;
    assert_int_equal(weft_thread_pool_create(1, NULL, &threads), 0);
    assert_int_equal(weft_mpi_pool_map(threads, "square", args, 1, results, 60, &nd), WEFT_ENOTSUP);
    assert_int_equal(weft_executor_release(threads), 0);
    assert_int_equal(weft_executor_shutdown(ex, true, false, 60), 0);
    assert_int_equal(weft_mpi_pool_map(ex, "square", args, 1, results, 60, &nd), WEFT_ESHUTDOWN);
    assert_int_equal(nd, 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* Bad input: clear codes, nothing queued. */
static void mpi_pool_bad_input(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    weft_future_t *f = (weft_future_t *)1;
    char name[300];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = 0;
    assert_int_equal(weft_mpi_pool_submit(NULL, "square", NULL, 0, &f), WEFT_EINVAL);
    assert_null(f);
    assert_int_equal(weft_mpi_pool_submit(ex, NULL, NULL, 0, NULL), WEFT_EINVAL);
    assert_int_equal(weft_mpi_pool_submit(ex, "", NULL, 0, NULL), WEFT_EINVAL);
    assert_int_equal(weft_mpi_pool_submit(ex, name, NULL, 0, NULL), WEFT_EINVAL);
    assert_int_equal(weft_mpi_pool_submit(ex, "square", NULL, 8, NULL), WEFT_EINVAL);
    assert_int_equal(weft_mpi_pool_submit(ex, "square", "", SIZE_MAX, NULL), WEFT_ENOMEM);
    /* a pointer task means nothing on another rank */
    assert_int_equal(weft_executor_submit(ex, (weft_task_fn)1, NULL, NULL), WEFT_ENOTSUP);
    weft_executor_t *tp;
    assert_int_equal(weft_thread_pool_create(1, NULL, &tp), 0);
    assert_int_equal(weft_mpi_pool_submit(tp, "square", NULL, 0, NULL), WEFT_ENOTSUP);
    weft_executor_release(tp);
    assert_int_equal(weft_mpi_pool_create(NULL, NULL), WEFT_EINVAL);
    weft_mpi_pool_opts_t bad = {.spawn_nprocs = -1};
    assert_int_equal(weft_mpi_pool_create(&bad, &tp), WEFT_EINVAL);
    bad = (weft_mpi_pool_opts_t){.heartbeat_interval = -1};
    assert_int_equal(weft_mpi_pool_create(&bad, &tp), WEFT_EINVAL);
    bad = (weft_mpi_pool_opts_t){.heartbeat_timeout = NAN};
    assert_int_equal(weft_mpi_pool_create(&bad, &tp), WEFT_EINVAL);
    bad = (weft_mpi_pool_opts_t){.heartbeat_interval = NAN};
    assert_int_equal(weft_mpi_pool_create(&bad, &tp), WEFT_EINVAL);
    assert_null(tp);
    weft_mpi_pool_opts_t off = {.heartbeat_timeout = WEFT_FOREVER}; /* no heartbeat */
    assert_int_equal(weft_mpi_pool_create(&off, &tp), 0);
    f = submit_square(tp, 5);
    assert_int_equal(square_of(f), 25);
    weft_future_release(f);
    close_pool(tp);
    assert_int_equal(weft_mpi_register("square", sleep_ms), WEFT_EEXIST);
    assert_int_equal(weft_mpi_register("square", square), 0);
    assert_int_equal(weft_mpi_register(NULL, square), WEFT_EINVAL);
    assert_int_equal(weft_mpi_register(name, square), WEFT_EINVAL);
    bool worker;
    assert_int_equal(weft_mpi_serve(NULL, NULL, &worker), WEFT_EALREADY);
    assert_int_equal(weft_mpi_serve(NULL, NULL, NULL), WEFT_EINVAL);
    close_pool(ex);
}

/* A rank killed while tasks are in flight breaks the pool: every pending future fails with
 * WEFT_EBROKEN (none hangs), and so does a later submit. (mpi4py.futures: BrokenExecutor.) */
static void mpi_pool_killed_rank_breaks_the_pool(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    weft_future_t *fs[40];
    for (int i = 0; i < 40; i++) fs[i] = submit_sleep(ex, 100);
    weft_future_t *d = submit(ex, "die", NULL, 0);
    for (int i = 0; i < 40; i++) {
        int rc = weft_future_result_bytes(fs[i], 60, NULL, NULL);
        assert_true(rc == 0 || rc == WEFT_EBROKEN);
        weft_future_release(fs[i]);
    }
    assert_int_equal(weft_future_result_bytes(d, 60, NULL, NULL), WEFT_EBROKEN);
    weft_future_release(d);
    assert_int_equal(weft_mpi_pool_submit(ex, "square", NULL, 0, NULL), WEFT_EBROKEN);
    close_pool(ex);
    weft_executor_t *again;
    assert_int_equal(weft_mpi_pool_create(NULL, &again), WEFT_EBROKEN);
}

/* A rank that stops answering without dying (SIGSTOP: its pidfd stays quiet, as nothing
 * watches a rank on another host that dies) is declared dead by the heartbeat within its
 * interval and timeout: the pool breaks, its pending futures fail with WEFT_EBROKEN. */
static void mpi_pool_stopped_rank_breaks_the_pool_by_heartbeat(void **state)
{
    (void)state;
    weft_mpi_pool_opts_t opts = {
        .max_workers = 1, .heartbeat_interval = 0.05, .heartbeat_timeout = 0.5};
    weft_executor_t *ex;
    assert_int_equal(weft_mpi_pool_create(&opts, &ex), 0);
    weft_future_t *f = submit(ex, "reverse_and_pid", "x", 1);
    const unsigned char *data;
    size_t len;
    assert_int_equal(weft_future_result_bytes(f, 60, (const void **)&data, &len), 0);
    pid_t pid;
    memcpy(&pid, data + 1, sizeof pid);
    weft_future_release(f);
    weft_future_t *fs[4];
    for (int i = 0; i < 4; i++) fs[i] = submit_sleep(ex, 300);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    int64_t t0 = weft_time_monotonic_ns();
    for (int i = 0; i < 4; i++) {
        int rc = weft_future_result_bytes(fs[i], 30, NULL, NULL);
        assert_true(rc == 0 || rc == WEFT_EBROKEN);
        if (i == 3) assert_int_equal(rc, WEFT_EBROKEN); /* 1.2 s of sleeps: it never ran */
        weft_future_release(fs[i]);
    }
    double took = (double)(weft_time_monotonic_ns() - t0) / 1e9;
    assert_true(took < 0.05 + 0.5 + 5.0); /* the bound, with room for a loaded machine */
    assert_int_equal(weft_mpi_pool_submit(ex, "square", NULL, 0, NULL), WEFT_EBROKEN);
    assert_int_equal(kill(pid, SIGKILL), 0); /* a stopped rank would keep mpirun waiting */
    close_pool(ex);
}

/* A rank busy with a task far longer than the heartbeat timeout is alive: its heartbeat
 * thread answers while the task runs, so the pool does not break. */
static void mpi_pool_busy_rank_is_not_declared_dead(void **state)
{
    (void)state;
    weft_mpi_pool_opts_t opts = {.heartbeat_interval = 0.1, .heartbeat_timeout = 1.0};
    weft_executor_t *ex;
    assert_int_equal(weft_mpi_pool_create(&opts, &ex), 0);
    weft_future_t *slow = submit_sleep(ex, 3000); /* 3 timeouts */
    weft_future_t *f = submit_square(ex, 9);
    assert_int_equal(weft_future_result_bytes(slow, 60, NULL, NULL), 0);
    assert_int_equal(square_of(f), 81);
    weft_future_release(slow);
    weft_future_release(f);
    close_pool(ex);
}

/* A rank dies while 64 MiB are on their way to it (its next task's argument, sent while it
 * runs the one that kills it): both futures fail with WEFT_EBROKEN, and the sends that can
 * never finish do not hang the pool, its shutdown or MPI's finalization. */
static void mpi_pool_rank_killed_midway_through_a_large_send(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1);
    char go[64];
    snprintf(go, sizeof go, "/tmp/weft-mpi-test-%d", (int)getpid());
    unlink(go);
    weft_future_t *dying = submit(ex, "die_when_told", go, strlen(go));
    size_t big = (size_t)64 << 20;
    unsigned char *arg = calloc(1, big);
    assert_non_null(arg);
    weft_future_t *f = submit(ex, "reverse_and_pid", arg, big);
    free(arg);
    wait_running(f); /* handed out: its 64 MiB are posted to the rank, which is busy */
    FILE *file = fopen(go, "w");
    assert_non_null(file);
    fclose(file);
    assert_int_equal(weft_future_result_bytes(dying, 60, NULL, NULL), WEFT_EBROKEN);
    assert_int_equal(weft_future_result_bytes(f, 60, NULL, NULL), WEFT_EBROKEN);
    weft_future_release(dying);
    weft_future_release(f);
    unlink(go);
    close_pool(ex);
}

/* weft_mpi_finalize after a pool was released with tasks queued and running: release promised
 * that they run, so finalize waits for them (Python joins its executors at exit) and every
 * future ends with its task's result. (Before: finalize failed all 6 with WEFT_EBROKEN, "a
 * worker rank died", though none did, and the results that came back were dropped.) */
static void mpi_pool_finalize_runs_a_released_pools_tasks(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    weft_future_t *fs[6];
    for (int i = 0; i < 6; i++) fs[i] = submit_sleep(ex, 100);
    assert_int_equal(weft_executor_release(ex), 0);
    assert_int_equal(weft_mpi_finalize(), 0);
    for (int i = 0; i < 6; i++) {
        assert_true(weft_future_done(fs[i]));
        assert_int_equal(error_of(fs[i]), 0);
        weft_future_release(fs[i]);
    }
}

/* weft_mpi_finalize with a pool still held: the tasks already running on the ranks finish and
 * their results are kept; those still queued cannot run and fail with WEFT_ESHUTDOWN, with a
 * message that says MPI was finalized; no future says a rank died. (Before: all failed with
 * WEFT_EBROKEN, "a worker rank died: the MPI pool is broken", the running one too.) */
static void mpi_pool_finalize_keeps_results_fails_a_held_pools_queue_with_eshutdown(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1);
    enum { N = 16 };
    weft_future_t *fs[N];
    for (int i = 0; i < N; i++) fs[i] = submit_sleep(ex, 100);
    wait_running(fs[0]);
    assert_int_equal(weft_mpi_finalize(), 0);
    int ok = 0, shut = 0;
    for (int i = 0; i < N; i++) {
        assert_true(weft_future_done(fs[i]));
        int code = error_of(fs[i]);
        if (i == 0) assert_int_equal(code, 0); /* it ran: its result stays */
        if (code == 0) {
            ok++;
        } else {
            assert_int_equal(code, WEFT_ESHUTDOWN);
            const char *m = weft_future_error_message(fs[i]);
            assert_non_null(m);
            assert_non_null(strstr(m, "MPI was finalized"));
            shut++;
        }
        weft_future_release(fs[i]);
    }
    assert_true(ok >= 1 && shut >= 1);
    assert_int_equal(ok + shut, N);
    assert_int_equal(weft_executor_shutdown(ex, true, false, 10), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* After weft_mpi_finalize, a pool handle that survived it refuses work with WEFT_ESHUTDOWN (as
 * create does), its shutdown and release succeed, and MPI does not start again. (Before:
 * submit and map said WEFT_EBROKEN, as if a rank had died.) */
static void mpi_pool_calls_after_finalize_are_eshutdown(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    assert_int_equal(weft_mpi_finalize(), 0);
    weft_future_t *f = (weft_future_t *)1;
    assert_int_equal(weft_mpi_pool_submit(ex, "square", NULL, 0, &f), WEFT_ESHUTDOWN);
    assert_null(f);
    uint64_t x = 3;
    weft_bytes_t arg = {&x, sizeof x}, result;
    size_t nd = 9;
    assert_int_equal(weft_mpi_pool_map(ex, "square", &arg, 1, &result, 10, &nd), WEFT_ESHUTDOWN);
    assert_int_equal(nd, 0);
    weft_executor_t *again = (weft_executor_t *)1;
    assert_int_equal(weft_mpi_pool_create(NULL, &again), WEFT_ESHUTDOWN);
    assert_null(again);
    assert_int_equal(weft_mpi_finalize(), WEFT_EALREADY);
    bool worker;
    assert_int_equal(weft_mpi_serve(NULL, NULL, &worker), WEFT_EALREADY);
    assert_int_equal(weft_executor_shutdown(ex, true, true, 10), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* A dead rank's futures say which rank died, and its pid. (Before: "a worker rank died: the
 * MPI pool is broken", naming none.) */
static void mpi_pool_dead_rank_is_named_in_the_error(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(1); /* world rank 1 */
    pid_t pid = pid_of_rank(ex);
    weft_future_t *d = submit(ex, "die", NULL, 0);
    assert_int_equal(weft_future_result_bytes(d, 60, NULL, NULL), WEFT_EBROKEN);
    const char *m = weft_future_error_message(d);
    assert_non_null(m);
    char want[64];
    snprintf(want, sizeof want, "worker rank 1 (pid %d) died", (int)pid);
    if (!strstr(m, want)) fail_msg("message '%s' lacks '%s'", m, want);
    weft_future_release(d);
    close_pool(ex);
}

/* An empty result reads the same through weft_future_result_bytes and weft_mpi_pool_map (and
 * the process pool): data NULL, length 0. (Before: result_bytes gave a non-NULL pointer.) */
static void mpi_pool_empty_result_is_null_with_length_0(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    weft_future_t *f = submit(ex, "no_result", NULL, 0);
    const void *data = (const void *)1;
    size_t len = 9;
    assert_int_equal(weft_future_result_bytes(f, 60, &data, &len), 0);
    assert_null(data);
    assert_int_equal(len, 0);
    weft_future_release(f);
    weft_bytes_t args[2] = {{NULL, 0}, {NULL, 0}}, results[2];
    size_t nd;
    assert_int_equal(weft_mpi_pool_map(ex, "no_result", args, 2, results, 60, &nd), 0);
    assert_int_equal(nd, 2);
    for (int i = 0; i < 2; i++) {
        assert_null(results[i].data);
        assert_int_equal(results[i].len, 0);
    }
    close_pool(ex);
}

/* Inside a task on a worker rank, the submitter's calls refuse: pool_create WEFT_ENOTSUP (no
 * pool is made from a worker), serve and finalize WEFT_EALREADY (serve is running: it called
 * the task); the rank goes on serving. (Before: serve said WEFT_ENOTSUP, from MPI's thread
 * level, and create got there only through that check.) */
static void mpi_pool_calls_inside_a_task_on_a_worker_refuse(void **state)
{
    (void)state;
    weft_executor_t *ex = make_pool(0);
    weft_future_t *f = submit(ex, "calls_mpi_inside", NULL, 0);
    const void *data;
    size_t len;
    assert_int_equal(weft_future_result_bytes(f, 60, &data, &len), 0);
    assert_int_equal(len, 3 * sizeof(int32_t));
    int32_t codes[3];
    memcpy(codes, data, sizeof codes);
    assert_int_equal(codes[0], WEFT_ENOTSUP);
    assert_int_equal(codes[1], WEFT_EALREADY);
    assert_int_equal(codes[2], WEFT_EALREADY);
    weft_future_release(f);
    f = submit_square(ex, 4);
    assert_int_equal(square_of(f), 16);
    weft_future_release(f);
    close_pool(ex);
}

/* The MPI_Comm_spawn model (run under mpirun -np 1: no world workers): the pool starts two
 * processes of this program, which serve it, and leave when it is destroyed. */
static void mpi_pool_spawned_workers_serve_their_pool(void **state)
{
    (void)state;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = 0;
    weft_mpi_pool_opts_t opts = {.spawn_command = self, .spawn_nprocs = 2};
    weft_executor_t *ex;
    assert_int_equal(weft_mpi_pool_create(&opts, &ex), 0);
    weft_future_t *fs[100];
    for (uint64_t i = 0; i < 100; i++) fs[i] = submit_square(ex, i);
    for (uint64_t i = 0; i < 100; i++) {
        assert_int_equal(square_of(fs[i]), i * i);
        weft_future_release(fs[i]);
    }
    weft_future_t *f = submit(ex, "reverse_and_pid", "ab", 2);
    const char *data;
    assert_int_equal(weft_future_result_bytes(f, 60, (const void **)&data, NULL), 0);
    assert_memory_equal(data, "ba", 2);
    weft_future_release(f);
    close_pool(ex);
}

/* A spawn of a program that is not there fails the create with WEFT_ENOENT, leaving nothing
 * (Open MPI's MPI_Comm_spawn would wait for it forever). */
static void mpi_pool_spawn_of_a_missing_program_fails(void **state)
{
    (void)state;
    weft_mpi_pool_opts_t opts = {.spawn_command = "/nonexistent/weft-worker", .spawn_nprocs = 1};
    weft_executor_t *ex = (weft_executor_t *)1;
    assert_int_equal(weft_mpi_pool_create(&opts, &ex), WEFT_ENOENT);
    opts.spawn_command = "weft-no-such-program-on-the-path";
    assert_int_equal(weft_mpi_pool_create(&opts, &ex), WEFT_ENOENT);
    assert_null(ex);
}

/* Open MPI's first MPI_Comm_spawn in a process opens 2 sockets of its runtime that stay until
 * MPI_Finalize: the spawn cases spawn (and destroy) one pool before the leak guard's
 * baseline, so that the case itself is held to leave nothing behind. */
static void spawn_once(void)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    weft_mpi_pool_opts_t opts = {.spawn_command = self, .spawn_nprocs = 2};
    weft_executor_t *ex;
    if (weft_mpi_pool_create(&opts, &ex) != 0) return;
    weft_executor_shutdown(ex, true, false, 60);
    weft_executor_release(ex);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(mpi_pool_runs_tasks_on_bytes),
    WEFT_TEST(mpi_pool_task_error_reaches_its_future),
    WEFT_TEST(mpi_pool_task_error_message_reaches_its_future),
    WEFT_TEST(mpi_pool_unknown_task_name_fails_its_future),
    WEFT_TEST(mpi_pool_callbacks_run_on_completion),
    WEFT_TEST(mpi_pool_many_small_tasks_in_order),
    WEFT_TEST(mpi_pool_uses_at_most_max_workers),
    WEFT_TEST(mpi_pool_shutdown_waits_then_refuses),
    WEFT_TEST(mpi_pool_shutdown_cancels_queued_futures),
    WEFT_TEST(mpi_pool_cancel_queued_not_running),
    WEFT_TEST(mpi_pool_unusable_in_a_forked_child),
    WEFT_TEST(mpi_pool_wait_and_as_completed),
    WEFT_TEST(mpi_pool_64mib_payloads_stream),
    WEFT_TEST(mpi_pool_submit_from_threads_wait_from_coroutines),
    WEFT_TEST(mpi_pool_map),
    WEFT_TEST(mpi_pool_bad_input),
    WEFT_TEST(mpi_pool_killed_rank_breaks_the_pool),
    WEFT_TEST(mpi_pool_rank_killed_midway_through_a_large_send),
    WEFT_TEST(mpi_pool_stopped_rank_breaks_the_pool_by_heartbeat),
    WEFT_TEST(mpi_pool_busy_rank_is_not_declared_dead),
    WEFT_TEST_FINALIZING(mpi_pool_finalize_runs_a_released_pools_tasks),
    WEFT_TEST_FINALIZING(mpi_pool_finalize_keeps_results_fails_a_held_pools_queue_with_eshutdown),
    WEFT_TEST_FINALIZING(mpi_pool_calls_after_finalize_are_eshutdown),
    WEFT_TEST(mpi_pool_dead_rank_is_named_in_the_error),
    WEFT_TEST(mpi_pool_empty_result_is_null_with_length_0),
    WEFT_TEST(mpi_pool_calls_inside_a_task_on_a_worker_refuse),
    WEFT_TEST(mpi_pool_spawned_workers_serve_their_pool),
    WEFT_TEST(mpi_pool_spawn_of_a_missing_program_fails),
};

/* Every rank enters here: workers serve until rank 0 finalizes, rank 0 runs the case. */
int main(int argc, char **argv)
{
    bool worker;
    int rc = weft_mpi_serve(&argc, &argv, &worker);
    if (rc) {
        fprintf(stderr, "weft_mpi_serve: %s\n", weft_error_message(rc));
        return 1;
    }
    if (worker) return 0;
    if (argc > 1 && strstr(argv[1], "spawn")) spawn_once();
    rc = weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
    weft_mpi_finalize();
    return rc;
}
