/*
 * The data pipeline scenario (issue 15): a process pool maps a transform over 64 MiB of input
 * in 1 MiB chunks, each giving a 1 MiB result; the results are fanned in through a
 * weft_mpqueue to consumer processes, which checksum them and report through a second
 * mpqueue; the test checks every chunk's checksum against the transform run in its own
 * process. Then the same with one worker SIGKILLed from outside while it runs a chunk: only
 * that chunk's future fails (WEFT_EWORKERDIED), it is resubmitted, and the checksums are
 * right. Figures (MiB/s) go to stdout.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "scenario.h"
#include "weft_test.h"

#define CHUNK     ((size_t)1 << 20)
#define HDR       sizeof(uint64_t) /* a chunk's index, before its bytes */
#define CONSUMERS 3

/* 64 chunks (64 MiB); 8 under valgrind, where each byte costs ~50 times as much. */
static size_t chunk_count(void)
{
    return RUNNING_ON_VALGRIND ? 8 : 64;
}

/* Chunk i of the input: a stream of 64-bit words that depends on i. */
static void fill_chunk(uint64_t i, unsigned char *out)
{
    uint64_t s = scenario_mix(i + 1);
    for (size_t k = 0; k < CHUNK; k += 8) {
        s += 0x9e3779b97f4a7c15ULL;
        uint64_t w = scenario_mix(s);
        memcpy(out + k, &w, 8);
    }
}

/* A checksum of len bytes (len a multiple of 8): order-sensitive, over 64-bit words. */
static uint64_t digest(const unsigned char *p, size_t len)
{
    uint64_t h = 0x84222325cbf29ce4ULL;
    for (size_t k = 0; k < len; k += 8) {
        uint64_t w;
        memcpy(&w, p + k, 8);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    return scenario_mix(h);
}

/* The killed-worker trap, in memory shared with the pool's workers (mapped before the pool
 * forks them). The task of chunk `index` (the middle one), while `armed` is 1, disarms it,
 * publishes its pid, releases `started` and waits to be killed; its resubmission finds it
 * disarmed. */
typedef struct trap {
    uint64_t index;
    _Atomic int armed;
    _Atomic long pid;
    weft_semaphore_t started;
} trap_t;

static trap_t *g_trap; /* NULL: no trap (the plain run) */

/* The map's task: [index][1 MiB] in, [index][1 MiB] out, each word transformed. */
static int transform(const void *arg, size_t len, void **result, size_t *result_len)
{
    if (len != HDR + CHUNK) return WEFT_EINVAL;
    uint64_t index;
    memcpy(&index, arg, HDR);
    if (g_trap && index == g_trap->index) {
        int one = 1;
        if (atomic_compare_exchange_strong(&g_trap->armed, &one, 0)) {
            atomic_store(&g_trap->pid, (long)getpid());
            weft_semaphore_release(&g_trap->started, 1);
            for (;;) pause(); /* until the SIGKILL */
        }
    }
    unsigned char *out = malloc(HDR + CHUNK);
    if (!out) return WEFT_ENOMEM;
    memcpy(out, &index, HDR);
    const unsigned char *in = (const unsigned char *)arg + HDR;
    for (size_t k = 0; k < CHUNK; k += 8) {
        uint64_t w;
        memcpy(&w, in + k, 8);
        w = scenario_mix(w ^ index) + k;
        memcpy(out + HDR + k, &w, 8);
    }
    *result = out;
    *result_len = HDR + CHUNK;
    return 0;
}

/* A consumer's report for one chunk. */
typedef struct record {
    uint64_t index, digest;
} record_t;

typedef struct fan_in {
    weft_mpqueue_t *results; /* [index][1 MiB] messages; an empty one ends a consumer */
    weft_mpqueue_t *sums;    /* record_t messages */
} fan_in_t;

/* A consumer process: checksums each result it takes and reports it. Exit code 0, or the
 * step that failed. */
static int consumer(void *arg)
{
    fan_in_t *fi = arg;
    unsigned char *buf = malloc(HDR + CHUNK);
    if (!buf) return 10;
    int code = 0;
    for (;;) {
        size_t len = 0;
        if (weft_mpqueue_get(fi->results, buf, HDR + CHUNK, 60, &len) != 0) {
            code = 11;
            break;
        }
        if (len == 0) break; /* the end */
        if (len != HDR + CHUNK) {
            code = 12;
            break;
        }
        record_t r;
        memcpy(&r.index, buf, HDR);
        r.digest = digest(buf + HDR, CHUNK);
        if (weft_mpqueue_put(fi->sums, &r, sizeof r, 60) != 0) {
            code = 13;
            break;
        }
    }
    free(buf);
    return code;
}

/* The whole pipeline; with_kill arms the trap and kills the worker that takes it. */
static void run_pipeline(bool with_kill)
{
    size_t n = chunk_count();
    trap_t *trap = NULL;
    if (with_kill) {
        assert_int_equal(weft_shm_alloc(sizeof *trap, (void **)&trap), 0);
        trap->index = n / 2;
        atomic_init(&trap->armed, 1);
        atomic_init(&trap->pid, 0);
        assert_int_equal(weft_semaphore_init_shared(&trap->started, 0, false), 0);
    }

    /* The consumers first, before the input exists (a small fork). */
    fan_in_t fi;
    assert_int_equal(weft_mpqueue_create(4 * CHUNK, 0, false, &fi.results), 0);
    assert_int_equal(weft_mpqueue_create(64 * 1024, 0, false, &fi.sums), 0);
    weft_process_t *consumers[CONSUMERS];
    for (int c = 0; c < CONSUMERS; c++) consumers[c] = weft_test_process_start(consumer, &fi);

    /* The input, and what each chunk's result must checksum to (the task run here). */
    unsigned char *input = malloc(n * (HDR + CHUNK));
    uint64_t *expect = malloc(n * sizeof *expect);
    assert_non_null(input);
    assert_non_null(expect);
    for (size_t i = 0; i < n; i++) {
        unsigned char *arg = input + i * (HDR + CHUNK);
        uint64_t index = i;
        memcpy(arg, &index, HDR);
        fill_chunk(i, arg + HDR);
        void *res = NULL;
        size_t res_len = 0;
        assert_int_equal(transform(arg, HDR + CHUNK, &res, &res_len), 0);
        expect[i] = digest((unsigned char *)res + HDR, CHUNK);
        free(res);
    }

    g_trap = trap; /* armed from here: the workers fork at the first submit */
    weft_executor_t *pool;
    assert_int_equal(weft_process_pool_create(2, NULL, &pool), 0);
    double t0 = weft_time_monotonic();
    weft_future_t **fs = calloc(n, sizeof *fs);
    assert_non_null(fs);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(weft_process_pool_submit(pool, transform, input + i * (HDR + CHUNK),
                                                  HDR + CHUNK, &fs[i]),
                         0);
    if (with_kill) { /* from outside: the test kills the worker running the trapped chunk */
        assert_int_equal(weft_semaphore_acquire(&trap->started, 60), 0);
        pid_t pid = (pid_t)atomic_load(&trap->pid);
        assert_true(pid > 0 && pid != getpid());
        assert_int_equal(kill(pid, SIGKILL), 0);
    }

    /* Fan in: each result, as it comes, goes to the consumers; a failed task is resubmitted
     * once. */
    size_t died = 0, resubmitted = 0, pending = n;
    while (pending > 0) {
        weft_future_t *live[64];
        size_t idx[64], m = 0;
        for (size_t i = 0; i < n; i++)
            if (fs[i]) {
                live[m] = fs[i];
                idx[m++] = i;
            }
        weft_as_completed_t *it;
        assert_int_equal(weft_as_completed_create(live, m, 60, &it), 0);
        weft_future_t *f;
        int next;
        while ((next = weft_as_completed_next(it, &f)) == 0) {
            size_t k = 0;
            while (live[k] != f) k++;
            size_t i = idx[k];
            const void *data;
            size_t len;
            int rc = weft_future_result_bytes(f, 0, &data, &len);
            if (rc == WEFT_EWORKERDIED) {
                assert_true(with_kill);
                assert_int_equal(i, trap->index); /* only the killed worker's task fails */
                died++;
                weft_future_t *again;
                assert_int_equal(weft_process_pool_submit(pool, transform,
                                                          input + i * (HDR + CHUNK), HDR + CHUNK,
                                                          &again),
                                 0);
                resubmitted++;
                weft_future_release(fs[i]);
                fs[i] = again;
                continue;
            }
            assert_int_equal(rc, 0);
            assert_int_equal(len, HDR + CHUNK);
            assert_int_equal(weft_mpqueue_put(fi.results, data, len, 60), 0);
            weft_future_release(fs[i]);
            fs[i] = NULL;
            pending--;
        }
        assert_int_equal(next, WEFT_EEOF); /* every future of the round was done in time */
        assert_int_equal(weft_as_completed_release(it), 0);
    }
    for (int c = 0; c < CONSUMERS; c++)
        assert_int_equal(weft_mpqueue_put(fi.results, "", 0, 60), 0);

    /* Every chunk reported once, with the right checksum. */
    unsigned char *seen = calloc(n, 1);
    assert_non_null(seen);
    for (size_t r = 0; r < n; r++) {
        record_t rec;
        size_t len = 0;
        assert_int_equal(weft_mpqueue_get(fi.sums, &rec, sizeof rec, 60, &len), 0);
        assert_int_equal(len, sizeof rec);
        assert_true(rec.index < n);
        assert_false(seen[rec.index]);
        seen[rec.index] = 1;
        assert_int_equal(rec.digest, expect[rec.index]);
    }
    double elapsed = weft_time_monotonic() - t0;
    for (int c = 0; c < CONSUMERS; c++) assert_int_equal(weft_test_process_finish(consumers[c]), 0);
    if (with_kill) {
        assert_int_equal(died, 1);
        assert_int_equal(resubmitted, 1);
    }
    printf("pipeline%s: %zu MiB in, %zu MiB out through %d consumers in %.3f s: %.1f MiB/s\n",
           with_kill ? " (a worker killed)" : "", n, n, CONSUMERS, elapsed, (double)n / elapsed);

    assert_int_equal(weft_executor_shutdown(pool, true, false, 60), 0);
    assert_int_equal(weft_executor_release(pool), 0);
    assert_int_equal(weft_mpqueue_release(fi.results), 0);
    assert_int_equal(weft_mpqueue_release(fi.sums), 0);
    free(seen);
    free(fs);
    free(expect);
    free(input);
    g_trap = NULL;
    if (trap) {
        assert_int_equal(weft_semaphore_destroy(&trap->started), 0);
        assert_int_equal(weft_shm_free(trap, sizeof *trap), 0);
    }
}

/* 64 chunks mapped, fanned in and checksummed. */
static void pipeline_checksums_end_to_end(void **state)
{
    (void)state;
    run_pipeline(false);
}

/* The same with the worker running chunk 32 (of 64) SIGKILLed: one WEFT_EWORKERDIED, resubmitted.
 */
static void pipeline_worker_killed_midway_is_resubmitted(void **state)
{
    (void)state;
    run_pipeline(true);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(pipeline_checksums_end_to_end),
    WEFT_TEST(pipeline_worker_killed_midway_is_resubmitted),
};

WEFT_TEST_MAIN(cases)
