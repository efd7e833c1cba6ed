/*
 * mpqueue.c — the queue between processes (multiprocessing.Queue / JoinableQueue): a ring of
 * variable-size messages in anonymous shared memory, with no feeder thread.
 *
 * Layout: one mapping, the header (struct weft_mpqueue) followed by the ring of `cap` bytes
 * (a power of two). A message is a record: an 8-byte length, then the bytes, padded to 8, so
 * records never straddle alignment; a record may wrap around the end of the ring. head and
 * tail are byte counters that only grow (offset = counter & (cap - 1)); tail - head bytes are
 * in use.
 *
 * The lock is a process-shared weft Lock (a robust mutex). Everything in `st` changes only
 * under it, through a journal, so that a holder killed at any instruction leaves a state the
 * next holder can repair:
 *   put  copy the record into free space past tail (invisible: not committed), then
 *        journal: saved = st, journal = 1; st.tail += size, st.count++, st.unfinished++;
 *        journal = 0.
 *   get  copy the record at head out to the caller, then journal the same way: st.head +=
 *        size, st.count--.
 * The next holder of the lock after a death (WEFT_EOWNERDEAD) restores `saved` if journal is
 * 1: the half-done change is undone as a whole. So a put killed before its journal cleared
 * never happened (its message is lost: it was in flight), a get killed before then never
 * happened (its message is still queued: nobody received it), and a change whose journal
 * cleared is complete. Compiler barriers keep a state store from moving across the journal
 * stores (see journal_begin).
 *
 * Waiting: put_seq is bumped by every put, get_seq by every get, done_seq when unfinished
 * reaches 0; each is the futex word its waiters sleep on, read under the lock before they
 * drop it (so a change after that wakes them). getters/putters/joiners count sleepers so a
 * waker can skip the system call (seq_cst on both sides: a sleeper's increment and a waker's
 * bump cannot both miss each other). Wakers wake all sleepers of a word: a woken sleeper that
 * died or timed out cannot swallow the only wake-up.
 */
#include "process_internal.h"

#include "../sync/sync_internal.h"

#include <math.h>
#include <string.h>

#define MAGIC        0x5745465451554555ull /* "WEFTQUEU" */
#define DEFAULT_CAP  (1u << 20)
#define MIN_CAP      4096u
#define MAX_CAP      (1ull << 40)
#define LOCK_FLOOR_S 0.005 /* a poll still waits this long for a busy lock */
#define HEADER_BYTES 8u

typedef struct state {
    uint64_t head, tail, count, unfinished;
} state_t;

struct weft_mpqueue {
    uint64_t magic;
    size_t map_size;
    uint64_t cap, maxsize;
    uint32_t joinable;
    _Atomic uint32_t closed; /* weft_mpqueue_close was called (by any process) */
    weft_lock_t lock;
    state_t st, saved;
    _Atomic uint32_t journal;
    _Atomic uint32_t put_seq, get_seq, done_seq;
    _Atomic uint32_t getters, putters, joiners;
    _Alignas(64) unsigned char ring[];
};

/* ---- the ring --------------------------------------------------------------------------- */

static uint64_t record_size(uint64_t len)
{
    return HEADER_BYTES + ((len + 7) & ~(uint64_t)7);
}

static void ring_write(weft_mpqueue_t *q, uint64_t pos, const void *src, uint64_t n)
{
    uint64_t off = pos & (q->cap - 1), first = q->cap - off < n ? q->cap - off : n;
    if (first) memcpy(q->ring + off, src, first);
    if (n > first) memcpy(q->ring, (const unsigned char *)src + first, n - first);
}

static void ring_read(const weft_mpqueue_t *q, uint64_t pos, void *dst, uint64_t n)
{
    uint64_t off = pos & (q->cap - 1), first = q->cap - off < n ? q->cap - off : n;
    if (first) memcpy(dst, q->ring + off, first);
    if (n > first) memcpy((unsigned char *)dst + first, q->ring, n - first);
}

/* ---- the lock and the journal ----------------------------------------------------------- */

/* The journal guards against the holder's death, not against other threads (the lock does
 * that): what matters is which of the holder's stores were executed when it was killed, and
 * a killed thread stops at an instruction boundary with every earlier store performed. So
 * the stores only need to be issued in program order: compiler barriers (signal fences). */
static void journal_begin(weft_mpqueue_t *q)
{
    q->saved = q->st;
    atomic_signal_fence(memory_order_seq_cst); /* saved is written before journal = 1 */
    atomic_store_explicit(&q->journal, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* journal = 1 before any change of st */
}

static void journal_end(weft_mpqueue_t *q)
{
    atomic_signal_fence(memory_order_seq_cst); /* every change of st before journal = 0 */
    atomic_store_explicit(&q->journal, 0, memory_order_relaxed);
}

/* Takes the lock; repairs the state if its last holder died mid-change. */
static int lock(weft_mpqueue_t *q, int64_t deadline)
{
    double left = weft_deadline_remaining(deadline);
    int rc = weft_lock_acquire(&q->lock, left >= 0 && left < LOCK_FLOOR_S ? LOCK_FLOOR_S : left);
    if (rc == WEFT_EOWNERDEAD) {
        /* Relaxed: the dead holder's stores are ordered before its death by the kernel's
         * robust-futex handling, and our acquire of the lock. */
        if (atomic_load_explicit(&q->journal, memory_order_relaxed)) {
            q->st = q->saved;
            journal_end(q);
        }
        rc = 0;
    }
    return rc;
}

static void unlock(weft_mpqueue_t *q)
{
    weft_lock_release(&q->lock);
}

/* Bumps a seq word (lock held). */
static void bump(_Atomic uint32_t *seq)
{
    atomic_fetch_add_explicit(seq, 1, memory_order_seq_cst);
}

/* Wakes every sleeper of seq if the count says there may be one (lock dropped). */
static void wake(_Atomic uint32_t *seq, _Atomic uint32_t *sleepers)
{
    if (atomic_load_explicit(sleepers, memory_order_seq_cst))
        weft__futex_wake(seq, INT32_MAX, true);
}

/* Spins for the waiting core's spin budget (WEFT_SPIN_NS; none on one CPU) while seq still
 * reads `seen`: a producer and a consumer that keep pace hand messages over without either
 * sleeping or waking the other. True if seq moved. */
static bool spin_on(_Atomic uint32_t *seq, uint32_t seen, int64_t deadline)
{
    int64_t budget = weft__spin_ns();
    if (!budget) return false;
    int64_t until = weft_monotonic_ns() + budget;
    if (until > deadline) until = deadline;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            /* Relaxed: a hint; the caller re-checks under the lock. */
            if (atomic_load_explicit(seq, memory_order_relaxed) != seen) return true;
            weft__cpu_relax();
        }
        if (weft_monotonic_ns() >= until) return false;
    }
}

/* Sleeps until seq moves from `seen`, the slice ends or the deadline passes (lock dropped),
 * after a short spin. */
static void sleep_on(_Atomic uint32_t *seq, _Atomic uint32_t *sleepers, uint32_t seen,
                     int64_t deadline)
{
    if (weft__parks_coroutine()) { /* naps: nobody needs to wake it */
        weft__shared_wait(seq, seen, deadline);
        return;
    }
    if (spin_on(seq, seen, deadline)) return;
    atomic_fetch_add_explicit(sleepers, 1, memory_order_seq_cst);
    weft__futex_wait(seq, seen, weft__shared_sleep_end(deadline), true);
    atomic_fetch_sub_explicit(sleepers, 1, memory_order_relaxed);
}

/* ---- life ------------------------------------------------------------------------------- */

int weft_mpqueue_create(weft_mpqueue_t **out, size_t capacity, size_t maxsize, bool joinable)
{
    if (!out) return WEFT_EINVAL;
    *out = NULL;
    if ((uint64_t)capacity > MAX_CAP) return WEFT_EINVAL;
    uint64_t cap = capacity ? MIN_CAP : DEFAULT_CAP;
    while (cap < capacity) cap <<= 1;
    size_t size = sizeof(weft_mpqueue_t) + (size_t)cap;
    weft_mpqueue_t *q;
    int rc = weft_shm_alloc((void **)&q, size);
    if (rc) return rc;
    /* Zero-filled already: counters, journal, seq words and sleeper counts start at 0. */
    q->magic = MAGIC;
    q->map_size = size;
    q->cap = cap;
    q->maxsize = maxsize;
    q->joinable = joinable;
    rc = weft_lock_init_shared(&q->lock);
    if (rc) {
        weft_shm_free(q, size);
        return rc;
    }
    *out = q;
    return 0;
}

int weft_mpqueue_destroy(weft_mpqueue_t *q)
{
    if (!q || q->magic != MAGIC) return WEFT_EINVAL;
    return weft_shm_free(q, q->map_size);
}

/* ---- put and get ------------------------------------------------------------------------ */

static bool is_closed(const weft_mpqueue_t *q)
{
    return atomic_load_explicit(&q->closed, memory_order_relaxed); /* read under the lock */
}

static bool has_room(const weft_mpqueue_t *q, uint64_t size)
{
    return q->cap - (q->st.tail - q->st.head) >= size && (!q->maxsize || q->st.count < q->maxsize);
}

int weft_mpqueue_put(weft_mpqueue_t *q, const void *buf, size_t len, double timeout)
{
    int64_t deadline;
    if (!q || (!buf && len) || isnan(timeout) || weft_deadline(timeout, &deadline))
        return WEFT_EINVAL;
    uint64_t size = record_size(len);
    if (size > q->cap) return WEFT_EOVERFLOW;
    for (;;) {
        int rc = lock(q, deadline);
        if (rc) return rc;
        if (is_closed(q)) {
            unlock(q);
            return WEFT_ESHUTDOWN;
        }
        if (has_room(q, size)) break;
        uint32_t seen = atomic_load_explicit(&q->get_seq, memory_order_relaxed);
        unlock(q);
        rc = weft__shared_stop_reason(deadline);
        if (rc) return rc;
        sleep_on(&q->get_seq, &q->putters, seen, deadline);
    }
    uint64_t header = len;
    ring_write(q, q->st.tail, &header, HEADER_BYTES);
    ring_write(q, q->st.tail + HEADER_BYTES, buf, len);
    journal_begin(q);
    q->st.tail += size;
    q->st.count++;
    if (q->joinable) q->st.unfinished++;
    journal_end(q);
    bump(&q->put_seq);
    unlock(q);
    wake(&q->put_seq, &q->getters);
    return 0;
}

int weft_mpqueue_get(weft_mpqueue_t *q, void *buf, size_t cap, size_t *len, double timeout)
{
    int64_t deadline;
    if (!q || !len || (!buf && cap) || isnan(timeout) || weft_deadline(timeout, &deadline))
        return WEFT_EINVAL;
    for (;;) {
        int rc = lock(q, deadline);
        if (rc) return rc;
        if (q->st.count > 0) break;
        if (is_closed(q)) {
            unlock(q);
            return WEFT_ESHUTDOWN;
        }
        uint32_t seen = atomic_load_explicit(&q->put_seq, memory_order_relaxed);
        unlock(q);
        rc = weft__shared_stop_reason(deadline);
        if (rc) return rc;
        sleep_on(&q->put_seq, &q->getters, seen, deadline);
    }
    uint64_t n;
    ring_read(q, q->st.head, &n, HEADER_BYTES);
    if (n > cap) {
        unlock(q);
        *len = (size_t)n;
        return WEFT_EOVERFLOW; /* stays at the head */
    }
    ring_read(q, q->st.head + HEADER_BYTES, buf, n);
    journal_begin(q);
    q->st.head += record_size(n);
    q->st.count--;
    journal_end(q);
    bump(&q->get_seq);
    unlock(q);
    wake(&q->get_seq, &q->putters);
    *len = (size_t)n;
    return 0;
}

int weft_mpqueue_put_nowait(weft_mpqueue_t *q, const void *buf, size_t len)
{
    return weft_mpqueue_put(q, buf, len, 0);
}

int weft_mpqueue_get_nowait(weft_mpqueue_t *q, void *buf, size_t cap, size_t *len)
{
    return weft_mpqueue_get(q, buf, cap, len, 0);
}

int weft_mpqueue_close(weft_mpqueue_t *q)
{
    if (!q || q->magic != MAGIC) return WEFT_EINVAL;
    int rc = lock(q, WEFT_NO_DEADLINE);
    if (rc) return rc;
    atomic_store_explicit(&q->closed, 1, memory_order_relaxed);
    /* Every sleeper looks again: putters fail, getters drain or fail. */
    bump(&q->put_seq);
    bump(&q->get_seq);
    unlock(q);
    wake(&q->put_seq, &q->getters);
    wake(&q->get_seq, &q->putters);
    return 0;
}

/* ---- snapshots -------------------------------------------------------------------------- */

size_t weft_mpqueue_qsize(weft_mpqueue_t *q)
{
    if (!q || lock(q, WEFT_NO_DEADLINE)) return 0;
    size_t n = (size_t)q->st.count;
    unlock(q);
    return n;
}

bool weft_mpqueue_empty(weft_mpqueue_t *q)
{
    return weft_mpqueue_qsize(q) == 0;
}

bool weft_mpqueue_full(weft_mpqueue_t *q, size_t len)
{
    if (!q || lock(q, WEFT_NO_DEADLINE)) return false;
    bool full = !has_room(q, record_size(len));
    unlock(q);
    return full;
}

/* ---- joinable --------------------------------------------------------------------------- */

int weft_mpqueue_task_done(weft_mpqueue_t *q)
{
    if (!q) return WEFT_EINVAL;
    if (!q->joinable) return WEFT_ENOTSUP;
    int rc = lock(q, WEFT_NO_DEADLINE);
    if (rc) return rc;
    /* Unfinished counts messages put and not yet done, queued ones included: more task_done
     * calls than messages taken would drive it below the queued count. */
    if (q->st.unfinished <= q->st.count) {
        unlock(q);
        return WEFT_EINVAL;
    }
    journal_begin(q);
    q->st.unfinished--;
    journal_end(q);
    bool all_done = q->st.unfinished == 0;
    if (all_done) bump(&q->done_seq);
    unlock(q);
    if (all_done) wake(&q->done_seq, &q->joiners);
    return 0;
}

int weft_mpqueue_join(weft_mpqueue_t *q, double timeout)
{
    int64_t deadline;
    if (!q || isnan(timeout) || weft_deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (!q->joinable) return WEFT_ENOTSUP;
    for (;;) {
        int rc = lock(q, deadline);
        if (rc) return rc;
        if (q->st.unfinished == 0) {
            unlock(q);
            return 0;
        }
        uint32_t seen = atomic_load_explicit(&q->done_seq, memory_order_relaxed);
        unlock(q);
        rc = weft__shared_stop_reason(deadline);
        if (rc) return rc;
        sleep_on(&q->done_seq, &q->joiners, seen, deadline);
    }
}
