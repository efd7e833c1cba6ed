/* The queue between processes (weft_mpqueue_*). Each case names the CPython behaviour it
 * mirrors (Lib/test/_test_multiprocessing.py _TestQueue unless said otherwise); the kill loop
 * is weft's own: producers and consumers SIGKILLed at arbitrary moments, and every message
 * must arrive at most once, whole, with at most one lost per killed consumer. */
#include "weft_test.h"

#include "process/process_internal.h"

#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static weft_mpqueue_t *q;

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(seed * 131 + i * 3 + 1);
}

static bool check(const unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != (unsigned char)(seed * 131 + i * 3 + 1)) return false;
    return true;
}

static size_t size_of(int i)
{
    return (size_t)(i * 97) % 3001; /* 0 .. 3000, the empty message included */
}

/* ---- order, bounds, buffers ------------------------------------------------------------- */

static int produce_sizes(void *arg)
{
    int n = (int)(long)arg;
    unsigned char buf[3001];
    for (int i = 0; i < n; i++) {
        fill(buf, size_of(i), (unsigned)i);
        if (weft_mpqueue_put(q, buf, size_of(i), 30)) return 1;
    }
    return 0;
}

/* test_queue / test_fifo: messages of every size put by another process arrive whole and in
 * order, through a ring small enough to wrap many times and to make the producer wait. */
static void mpqueue_fifo_across_processes(void **state)
{
    (void)state;
    assert_int_equal(weft_mpqueue_create(8192, 0, false, &q), 0);
    int n = SANITIZED ? 500 : 5000;
    weft_process_t *p = weft_test_process_start(produce_sizes, (void *)(long)n);
    unsigned char buf[3001];
    for (int i = 0; i < n; i++) {
        size_t len = 99999;
        assert_int_equal(weft_mpqueue_get(q, buf, sizeof buf, 30, &len), 0);
        assert_int_equal(len, size_of(i));
        assert_true(check(buf, len, (unsigned)i));
    }
    assert_int_equal(weft_test_process_finish(p), 0);
    assert_true(weft_mpqueue_empty(q));
    assert_int_equal(weft_mpqueue_release(q), 0);
}

/* test_queue's Full/Empty with timeouts: a bounded queue (maxsize messages) refuses a put
 * while full, a get while empty; both wait about their timeout. The byte capacity bounds it
 * too. */
static void mpqueue_bounds_and_timeouts(void **state)
{
    (void)state;
    assert_int_equal(weft_mpqueue_create(4096, 2, false, &q), 0);
    char buf[16];
    size_t len;
    assert_int_equal(weft_mpqueue_get(q, buf, sizeof buf, 0, &len), WEFT_ETIMEDOUT);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_mpqueue_get(q, buf, sizeof buf, 0.05, &len), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.04);
    assert_int_equal(weft_mpqueue_put(q, "a", 1, 0), 0);
    assert_int_equal(weft_mpqueue_put(q, "b", 1, 0), 0);
    assert_true(weft_mpqueue_full(q, 1));
    assert_int_equal(weft_mpqueue_qsize(q), 2);
    assert_int_equal(weft_mpqueue_put(q, "c", 1, 0), WEFT_ETIMEDOUT);
    t0 = weft_time_monotonic();
    assert_int_equal(weft_mpqueue_put(q, "c", 1, 0.05), WEFT_ETIMEDOUT);
    assert_true(weft_mpqueue_get(q, buf, sizeof buf, 0, &len) == 0 && buf[0] == 'a');
    assert_int_equal(weft_mpqueue_put(q, "c", 1, 0), 0);
    assert_int_equal(weft_mpqueue_release(q), 0);

    /* Bytes: 4096 of ring hold one 3000-byte message, not two. */
    assert_int_equal(weft_mpqueue_create(4096, 0, false, &q), 0);
    static unsigned char big[3000];
    assert_int_equal(weft_mpqueue_put(q, big, sizeof big, 0), 0);
    assert_true(weft_mpqueue_full(q, sizeof big));
    assert_int_equal(weft_mpqueue_put(q, big, sizeof big, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_mpqueue_put(q, big, 4096, 0), WEFT_EOVERFLOW); /* never fits */
    assert_int_equal(weft_mpqueue_release(q), 0);
}

/* Connection.recv_bytes_into's BufferTooShort, for the queue: the message stays at the head. */
static void mpqueue_short_buffer_keeps_the_message(void **state)
{
    (void)state;
    assert_int_equal(weft_mpqueue_create(0, 0, false, &q), 0);
    assert_int_equal(weft_mpqueue_put(q, "0123456789", 10, 0), 0);
    char small[4], big[16];
    size_t len = 0;
    assert_int_equal(weft_mpqueue_get(q, small, sizeof small, 0, &len), WEFT_EOVERFLOW);
    assert_int_equal(len, 10);
    assert_int_equal(weft_mpqueue_qsize(q), 1);
    assert_int_equal(weft_mpqueue_get(q, big, sizeof big, 0, &len), 0);
    assert_int_equal(len, 10);
    assert_memory_equal(big, "0123456789", 10);
    assert_int_equal(weft_mpqueue_put(q, NULL, 0, 0), 0); /* empty message */
    assert_int_equal(weft_mpqueue_get(q, NULL, 0, 0, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(weft_mpqueue_release(q), 0);
}

/* ---- JoinableQueue ---------------------------------------------------------------------- */

static weft_value_t *processed;

static int worker_task_done(void *arg)
{
    (void)arg;
    char buf[8];
    size_t len;
    for (;;) {
        int rc = weft_mpqueue_get(q, buf, sizeof buf, 30, &len);
        if (rc) return 1;
        if (len == 0) return weft_mpqueue_task_done(q) ? 2 : 0; /* the sentinel */
        weft_value_add(processed, 1, NULL);
        if (weft_mpqueue_task_done(q)) return 3;
    }
}

/* _TestQueue.test_task_done (JoinableQueue): workers in other processes call task_done;
 * join returns once every message is done; task_done past the count is an error. */
static void mpqueue_joinable_task_done_and_join(void **state)
{
    (void)state;
    assert_int_equal(weft_mpqueue_create(0, 0, true, &q), 0);
    assert_int_equal(weft_shm_alloc(sizeof *processed, (void **)&processed), 0);
    weft_value_init(processed, 0);
    assert_int_equal(weft_mpqueue_join(q, 0), 0); /* nothing unfinished */
    assert_int_equal(weft_mpqueue_task_done(q), WEFT_EINVAL);
    weft_process_t *w[3];
    for (int i = 0; i < 3; i++) w[i] = weft_test_process_start(worker_task_done, NULL);
    for (int i = 0; i < 100; i++) assert_int_equal(weft_mpqueue_put(q, "job", 3, 10), 0);
    assert_int_equal(weft_mpqueue_join(q, 30), 0);
    int64_t n;
    weft_value_get(processed, &n);
    assert_int_equal(n, 100);
    for (int i = 0; i < 3; i++) assert_int_equal(weft_mpqueue_put(q, NULL, 0, 10), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(weft_test_process_finish(w[i]), 0);
    assert_int_equal(weft_mpqueue_join(q, 10), 0);
    /* A message queued but not taken cannot be marked done. */
    assert_int_equal(weft_mpqueue_put(q, "x", 1, 0), 0);
    assert_int_equal(weft_mpqueue_task_done(q), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_join(q, 0.02), WEFT_ETIMEDOUT);
    assert_int_equal(weft_shm_free(processed, sizeof *processed), 0);
    assert_int_equal(weft_mpqueue_release(q), 0);

    assert_int_equal(weft_mpqueue_create(0, 0, false, &q), 0);
    assert_int_equal(weft_mpqueue_task_done(q), WEFT_ENOTSUP);
    assert_int_equal(weft_mpqueue_join(q, 0), WEFT_ENOTSUP);
    assert_int_equal(weft_mpqueue_release(q), 0);
}

/* ---- the kill loop ---------------------------------------------------------------------- */

/* Producers are numbered once each (MAXP > 2 + the kills of a run); a producer stops after
 * MAXSEQ messages. */
enum { ROUNDS = 1000, MAXP = ROUNDS / 2 + 8, MAXSEQ = 1 << 14, MSG_MAX = 1200 };

typedef struct ledger {
    weft_value_t last_put[MAXP]; /* seqs below this were surely put by producer p */
    weft_value_t dups, corrupt, received;
    _Atomic uint64_t seen[MAXP][MAXSEQ / 64];
} ledger_t;

static ledger_t *ledger;

typedef struct msg_head {
    uint32_t producer, seq;
} msg_head_t;

static size_t msg_len(uint32_t p, uint32_t seq)
{
    return sizeof(msg_head_t) + (p * 7 + seq * 13) % (MSG_MAX - sizeof(msg_head_t));
}

static int producer(void *arg)
{
    uint32_t p = (uint32_t)(long)arg;
    unsigned char buf[MSG_MAX];
    for (uint32_t seq = 0; seq < MAXSEQ; seq++) {
        msg_head_t h = {p, seq};
        size_t len = msg_len(p, seq);
        fill(buf, len, p * MAXSEQ + seq);
        memcpy(buf, &h, sizeof h);
        if (weft_mpqueue_put(q, buf, len, 30)) return 1;
        weft_value_set(&ledger->last_put[p], seq + 1);
    }
    return 0;
}

static int consumer(void *arg)
{
    (void)arg;
    unsigned char buf[MSG_MAX], want[MSG_MAX];
    for (;;) {
        size_t len;
        if (weft_mpqueue_get(q, buf, sizeof buf, 30, &len)) return 1;
        msg_head_t h;
        memcpy(&h, buf, sizeof h);
        fill(want, len, h.producer * MAXSEQ + h.seq);
        if (h.producer >= MAXP || h.seq >= MAXSEQ || len != msg_len(h.producer, h.seq) ||
            memcmp(buf + sizeof h, want + sizeof h, len - sizeof h) != 0) {
            weft_value_add(&ledger->corrupt, 1, NULL);
            continue;
        }
        uint64_t bit = 1ull << (h.seq % 64);
        if (atomic_fetch_or(&ledger->seen[h.producer][h.seq / 64], bit) & bit)
            weft_value_add(&ledger->dups, 1, NULL);
        weft_value_add(&ledger->received, 1, NULL);
    }
}

static void random_pause(unsigned *seed)
{
    struct timespec ts = {0, (long)(rand_r(seed) % 2000) * 1000L}; /* 0 .. 2 ms */
    nanosleep(&ts, NULL);
}

static void kill_one(weft_process_t *p)
{
    assert_int_equal(weft_process_kill(p), 0);
    assert_int_equal(weft_process_join(p, 30), 0);
    assert_int_equal(weft_process_release(p), 0);
}

/* Producers and consumers are killed at random moments (inside put or get, holding the
 * queue's lock or not, asleep or not) and replaced, round after round; then the queue is
 * drained. Every message arrives at most once and whole; the ones that never arrive are at
 * most one per killed consumer (the message it had just got), plus, per killed producer, only
 * the one it was putting (never one it had finished putting). */
static void mpqueue_survives_kill_loop(void **state)
{
    (void)state;
    assert_int_equal(weft_mpqueue_create(16384, 0, false, &q), 0);
    assert_int_equal(weft_shm_alloc(sizeof *ledger, (void **)&ledger), 0);
    weft_process_t *prod[2], *cons[2];
    uint32_t next_id = 0;
    for (int i = 0; i < 2; i++)
        prod[i] = weft_test_process_start(producer, (void *)(long)next_id++);
    for (int i = 0; i < 2; i++) cons[i] = weft_test_process_start(consumer, NULL);
    unsigned seed = 12345;
    int rounds = SANITIZED ? 16 : ROUNDS, consumer_kills = 0;
    for (int r = 0; r < rounds; r++) {
        random_pause(&seed);
        int i = rand_r(&seed) % 2;
        if (r % 2 == 0) {
            kill_one(prod[i]);
            prod[i] = weft_test_process_start(producer, (void *)(long)next_id++);
        } else {
            kill_one(cons[i]);
            consumer_kills++;
            cons[i] = weft_test_process_start(consumer, NULL);
        }
    }
    for (int i = 0; i < 2; i++) kill_one(prod[i]);
    /* Drain: the consumers empty the queue, then are killed (possibly holding one each). */
    int64_t give_up = weft_time_monotonic_ns() + 30 * 1000000000LL;
    while (!weft_mpqueue_empty(q)) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
    for (int i = 0; i < 2; i++) {
        kill_one(cons[i]);
        consumer_kills++;
    }

    int64_t dups, corrupt, received;
    weft_value_get(&ledger->dups, &dups);
    weft_value_get(&ledger->corrupt, &corrupt);
    weft_value_get(&ledger->received, &received);
    assert_int_equal(dups, 0);
    assert_int_equal(corrupt, 0);
    long missing = 0;
    for (uint32_t p = 0; p < next_id; p++) {
        int64_t put;
        weft_value_get(&ledger->last_put[p], &put);
        for (int64_t s = 0; s < MAXSEQ; s++) {
            bool got = atomic_load(&ledger->seen[p][s / 64]) & (1ull << (s % 64));
            if (s < put && !got) missing++;
            if (s > put) assert_false(got); /* never put: cannot arrive */
        }
    }
    print_message("kill loop: %u producers, %d consumer kills, %lld received, %ld missing\n",
                  next_id, consumer_kills, (long long)received, missing);
    assert_true(missing <= consumer_kills);
    /* The queue still works: its lock is not left held, its state is consistent. */
    assert_int_equal(weft_mpqueue_put(q, "ok", 2, 1), 0);
    char buf[4];
    size_t len;
    assert_int_equal(weft_mpqueue_get(q, buf, sizeof buf, 1, &len), 0);
    assert_int_equal(len, 2);
    assert_int_equal(weft_mpqueue_qsize(q), 0);
    assert_int_equal(weft_shm_free(ledger, sizeof *ledger), 0);
    assert_int_equal(weft_mpqueue_release(q), 0);
}

/* ---- put_nowait, get_nowait, close ------------------------------------------------------- */

static int get_until_closed(void *arg)
{
    (void)arg;
    char buf[8];
    size_t len;
    return weft_mpqueue_get(q, buf, sizeof buf, 30, &len) == WEFT_ESHUTDOWN ? 0 : 1;
}

static int put_until_closed(void *arg)
{
    (void)arg;
    return weft_mpqueue_put(q, "p", 1, 30) == WEFT_ESHUTDOWN ? 0 : 1;
}

/* test_queue's put_nowait / get_nowait (queue.Full / queue.Empty), and close (3.13's
 * shutdown(): there is no feeder thread to stop): a closed queue refuses puts, hands out what
 * it holds, then fails gets instead of waiting; a getter and a putter blocked in other
 * processes wake with WEFT_ESHUTDOWN. */
static void mpqueue_nowait_and_close(void **state)
{
    (void)state;
    assert_int_equal(weft_mpqueue_create(0, 2, false, &q), 0);
    char buf[8];
    size_t len = 0;
    assert_int_equal(weft_mpqueue_put_nowait(q, "a", 1), 0);
    assert_int_equal(weft_mpqueue_put_nowait(q, "b", 1), 0);
    assert_int_equal(weft_mpqueue_put_nowait(q, "c", 1), WEFT_ETIMEDOUT); /* maxsize 2 */
    assert_true(weft_mpqueue_full(q, 1));
    assert_int_equal(weft_mpqueue_get_nowait(q, buf, sizeof buf, &len), 0);
    assert_int_equal(buf[0], 'a');
    assert_int_equal(weft_mpqueue_get_nowait(q, buf, sizeof buf, &len), 0);
    assert_int_equal(buf[0], 'b');
    assert_int_equal(weft_mpqueue_get_nowait(q, buf, sizeof buf, &len), WEFT_ETIMEDOUT);

    weft_process_t *getter = weft_test_process_start(get_until_closed, NULL);
    usleep(50000); /* asleep in get, most likely: either way it must end with ESHUTDOWN */
    assert_int_equal(weft_mpqueue_close(q), 0);
    assert_int_equal(weft_test_process_finish(getter), 0);
    assert_int_equal(weft_mpqueue_put(q, "x", 1, 1), WEFT_ESHUTDOWN);
    assert_int_equal(weft_mpqueue_put_nowait(q, "x", 1), WEFT_ESHUTDOWN);
    assert_int_equal(weft_mpqueue_get(q, buf, sizeof buf, 1, &len), WEFT_ESHUTDOWN);
    assert_int_equal(weft_mpqueue_close(q), 0); /* again: nothing more happens */
    assert_int_equal(weft_mpqueue_release(q), 0);

    /* What was queued before close is still delivered; a blocked putter is woken. */
    assert_int_equal(weft_mpqueue_create(0, 1, false, &q), 0);
    assert_int_equal(weft_mpqueue_put(q, "m", 1, 0), 0);
    weft_process_t *putter = weft_test_process_start(put_until_closed, NULL);
    usleep(50000);
    assert_int_equal(weft_mpqueue_close(q), 0);
    assert_int_equal(weft_test_process_finish(putter), 0);
    assert_int_equal(weft_mpqueue_get(q, buf, sizeof buf, 1, &len), 0);
    assert_int_equal(len, 1);
    assert_int_equal(buf[0], 'm');
    assert_int_equal(weft_mpqueue_get_nowait(q, buf, sizeof buf, &len), WEFT_ESHUTDOWN);
    assert_int_equal(weft_mpqueue_qsize(q), 0);
    assert_int_equal(weft_mpqueue_release(q), 0);
}

/* ---- cancellation and bad input --------------------------------------------------------- */

static int get_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    char buf[4];
    size_t len;
    return weft_mpqueue_get(q, buf, sizeof buf, WEFT_FOREVER, &len);
}

static void mpqueue_get_is_cancelable(void **state)
{
    (void)state;
    assert_int_equal(weft_mpqueue_create(0, 0, false, &q), 0);
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(1, NULL, &ex), 0);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, get_task, NULL, &f), 0);
    while (!weft_future_running(f)) sched_yield();
    assert_int_equal(weft_future_cancel(f), WEFT_EBUSY);
    assert_int_equal(weft_future_result(f, 10, NULL), WEFT_ECANCELED);
    weft_future_release(f);
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    weft_executor_release(ex);
    assert_int_equal(weft_mpqueue_put(q, "x", 1, 0), 0); /* nothing was taken meanwhile */
    assert_int_equal(weft_mpqueue_qsize(q), 1);
    assert_int_equal(weft_mpqueue_release(q), 0);
}

/* ---- what another process writes in the shared memory ----------------------------------- */

/* A put whose length is within 8 of SIZE_MAX (record size rounding wraps there) is refused
 * with WEFT_EOVERFLOW, as is any message too long for the ring; one that just fits the ring
 * goes through. (The buffer is short: nothing may be read from it before the size check.) */
static void mpqueue_put_near_size_max_is_eoverflow(void **state)
{
    (void)state;
    assert_int_equal(weft_mpqueue_create(4096, 0, false, &q), 0);
    char small[16] = "x";
    for (size_t k = 0; k <= 16; k++)
        assert_int_equal(weft_mpqueue_put(q, small, SIZE_MAX - k, 0), WEFT_EOVERFLOW);
    assert_int_equal(weft_mpqueue_put(q, small, 4096 - 7, 0), WEFT_EOVERFLOW);
    assert_true(weft_mpqueue_empty(q));
    unsigned char *big = malloc(4096), *got = malloc(4096);
    assert_non_null(big);
    assert_non_null(got);
    fill(big, 4096 - 8, 5);
    assert_int_equal(weft_mpqueue_put(q, big, 4096 - 8, 0), 0); /* exactly the ring */
    size_t len;
    assert_int_equal(weft_mpqueue_get(q, got, 4096, 0, &len), 0);
    assert_int_equal(len, 4096 - 8);
    assert_true(check(got, len, 5));
    free(big);
    free(got);
    assert_int_equal(weft_mpqueue_release(q), 0);
}

static int scribble_header(void *arg)
{
    (void)arg;
    size_t size;
    unsigned char *shared = weft__mpqueue_shared(q, &size);
    /* The three words after the magic: where the queue's sizes were kept (mapping size, ring
     * capacity, maxsize). */
    uint64_t huge = (uint64_t)4 << 30;
    for (size_t off = 8; off < 32; off += 8) memcpy(shared + off, &huge, 8);
    return 0;
}

/* weft_mpqueue_release unmaps the size this process mapped, not a size read from the shared
 * header: a process that writes garbage there (4 GiB) cannot make the next destroy unmap the
 * caller's memory. Nor can it make put or get write or read outside the ring. */
static void mpqueue_destroy_ignores_a_corrupted_header(void **state)
{
    (void)state;
    assert_int_equal(weft_mpqueue_create(4096, 0, false, &q), 0);
    assert_int_equal(weft_test_process_finish(weft_test_process_start(scribble_header, NULL)), 0);
    unsigned char *buf = malloc(8192);
    assert_non_null(buf);
    fill(buf, 8192, 1);
    size_t len;
    assert_int_equal(weft_mpqueue_put(q, buf, 4096 - 8, 0), 0); /* the ring is still 4 KiB */
    assert_int_equal(weft_mpqueue_put(q, buf, 4096, 0), WEFT_EOVERFLOW);
    assert_int_equal(weft_mpqueue_get(q, buf, 8192, 0, &len), 0);
    assert_int_equal(len, 4096 - 8);
    assert_true(check(buf, len, 1));
    free(buf);
    assert_int_equal(weft_mpqueue_release(q), 0);
    /* The caller's memory is intact: the harness's heap, stack and code still work. */
    char *probe = malloc(1 << 20);
    assert_non_null(probe);
    memset(probe, 1, 1 << 20);
    free(probe);
}

/* A record length in the ring that says more than the ring holds (written by a broken or
 * hostile process) is refused with WEFT_EBROKEN instead of reading past the ring; the record
 * stays where it is. */
static void mpqueue_get_refuses_a_record_longer_than_the_ring(void **state)
{
    (void)state;
    assert_int_equal(weft_mpqueue_create(4096, 0, false, &q), 0);
    assert_int_equal(weft_mpqueue_put(q, "MARKER!!", 8, 0), 0);
    size_t size;
    unsigned char *shared = weft__mpqueue_shared(q, &size);
    unsigned char *rec = NULL;
    for (size_t off = 8; off + 8 <= size; off += 8)
        if (!memcmp(shared + off, "MARKER!!", 8)) rec = shared + off - 8;
    assert_non_null(rec);
    size_t cap = (size_t)64 << 20;
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    uint64_t lies[] = {4096 - 7, 4096, (uint64_t)1 << 20, (uint64_t)32 << 20, UINT64_MAX};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        memcpy(rec, &lies[i], 8);
        size_t len = 777;
        int rc = weft_mpqueue_get(q, buf, cap, 0, &len);
        assert_true(rc == WEFT_EBROKEN);
        assert_int_equal(len, 777);
    }
    uint64_t truth = 8;
    memcpy(rec, &truth, 8);
    size_t len;
    assert_int_equal(weft_mpqueue_get(q, buf, cap, 0, &len), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(buf, "MARKER!!", 8);
    free(buf);
    assert_int_equal(weft_mpqueue_release(q), 0);
}

static void mpqueue_bad_input(void **state)
{
    (void)state;
    weft_mpqueue_t *bad = (weft_mpqueue_t *)1;
    assert_int_equal(weft_mpqueue_create(0, 0, false, NULL), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_create((size_t)1 << 41, 0, false, &bad), WEFT_EINVAL);
    assert_null(bad);
    assert_int_equal(weft_mpqueue_create(0, 0, false, &q), 0);
    char buf[4];
    size_t len;
    assert_int_equal(weft_mpqueue_put(NULL, "x", 1, 0), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_put(q, NULL, 1, 0), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_put(q, "x", 1, NAN), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_get(NULL, buf, 4, 0, &len), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_get(q, NULL, 4, 0, &len), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_get(q, buf, 4, 0, NULL), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_get(q, buf, 4, NAN, &len), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_join(q, NAN), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_task_done(NULL), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_join(NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_qsize(NULL), 0);
    assert_false(weft_mpqueue_empty(NULL));
    assert_false(weft_mpqueue_full(NULL, 0));
    assert_int_equal(weft_mpqueue_release(NULL), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_put_nowait(NULL, "x", 1), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_get_nowait(q, buf, 4, NULL), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_close(NULL), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_release(q), 0);
}

/* The timeout rules (weft/core.h): get from an empty queue and put into a full one with -0.5
 * poll (WEFT_ETIMEDOUT at once), WEFT_FOREVER blocks until served, NaN is WEFT_EINVAL. */
static double mp_timeout;

static int timed_mp_get(void *p)
{
    (void)p;
    char buf[8];
    size_t len = 0;
    int rc = weft_mpqueue_get(q, buf, sizeof buf, mp_timeout, &len);
    return rc ? rc : (int)len;
}

static int timed_mp_put(void *p)
{
    (void)p;
    return weft_mpqueue_put(q, "ab", 2, mp_timeout);
}

static void mp_put_abc(void *p)
{
    (void)p;
    assert_int_equal(weft_mpqueue_put(q, "abc", 3, 1), 0);
}

static void mpqueue_negative_timeout_polls(void **state)
{
    (void)state;
    assert_int_equal(weft_mpqueue_create(4096, 1, false, &q), 0);
    mp_timeout = -0.5;
    assert_int_equal(weft_test_polls(timed_mp_get, NULL), WEFT_ETIMEDOUT);
    mp_timeout = WEFT_FOREVER;
    weft_test_blocks_until(timed_mp_get, NULL, mp_put_abc, NULL, 3);
    assert_int_equal(weft_mpqueue_put(q, "x", 1, 1), 0); /* full (maxsize 1) */
    mp_timeout = -0.5;
    assert_int_equal(weft_test_polls(timed_mp_put, NULL), WEFT_ETIMEDOUT);
    assert_int_equal(weft_mpqueue_put(q, "x", 1, NAN), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_release(q), 0);
    q = NULL;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(mpqueue_negative_timeout_polls),
        WEFT_TEST(mpqueue_fifo_across_processes),
        WEFT_TEST(mpqueue_bounds_and_timeouts),
        WEFT_TEST(mpqueue_short_buffer_keeps_the_message),
        WEFT_TEST(mpqueue_joinable_task_done_and_join),
        WEFT_TEST(mpqueue_survives_kill_loop),
        WEFT_TEST(mpqueue_nowait_and_close),
        WEFT_TEST(mpqueue_get_is_cancelable),
        WEFT_TEST(mpqueue_bad_input),
        WEFT_TEST(mpqueue_put_near_size_max_is_eoverflow),
        WEFT_TEST(mpqueue_destroy_ignores_a_corrupted_header),
        WEFT_TEST(mpqueue_get_refuses_a_record_longer_than_the_ring),
    };
    return weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
