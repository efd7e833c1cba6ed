/*
 * mpqueue.c — the queue between processes (multiprocessing.Queue / JoinableQueue): a ring of
 * variable-size messages in anonymous shared memory, with no feeder thread.
 *
 * Layout: one mapping, the header (shared_t) followed by the ring of `cap` bytes (a power of
 * two). The handle (struct weft_mpqueue) is private memory: it keeps the mapping's address and
 * size, the ring's capacity and maxsize, so nothing another process writes into the shared
 * memory is used as a size, an offset or a pointer here: ring offsets are masked by the
 * private cap, a record length read from the ring is checked against it (WEFT_EBROKEN if it
 * exceeds the ring), and destroy unmaps the size this process mapped. A message is a record: an
 * 8-byte length, then the bytes, padded to 8, so records never straddle alignment; a record may
 * wrap around the end of the ring. The producers' position `tail` and the consumers' `head` are
 * byte counters that only grow (offset = counter & (cap - 1)); tail - head bytes are in use.
 *
 * Two sides, two locks (the two-lock queue): producers take the tail lock, consumers the head
 * lock, each a process-shared weft Lock (a robust mutex) on a cache line of its own, so one
 * producer and one consumer never wait for each other, and each side reads the other's
 * position only to see whether there is room or a message.
 *   put  under the tail lock: copy the record into the free space past tail (invisible), then
 *        commit: tail += size (one release store: the commit point, what consumers look at),
 *        nput++.
 *   get  under the head lock: copy the record at head out, then commit: head += size (the
 *        commit point, what producers look at), nget++.
 * A holder killed at any instruction leaves its side for the next holder of that lock
 * (WEFT_EOWNERDEAD) to repair through the side's journal: `saved` is the side's state before
 * the change, `journal` says a change was under way. The commit store decides: if the
 * position moved, the change happened and the count is rolled forward; if not, it did not
 * and the count is rolled back. (Rolling the position back would be wrong: the other side
 * may already have acted on it.) So a put killed before its commit never happened (its
 * message is lost: it was in flight); a get killed before its commit never happened (its
 * message is still queued); a get killed after it is a message taken, possibly lost with its
 * taker (at most that one). Never a message twice or half.
 *
 * Counts: messages queued = nput - nget (a snapshot; maxsize compares it). Joinable:
 * unfinished = nput - ndone, ndone bumped by task_done with a compare-and-swap that refuses to
 * pass nget (more task_done calls than messages got is Python's ValueError).
 *
 * Waiting: getters sleep on cons.seq (bumped by puts), putters on prod.seq (bumped by gets),
 * joiners on done_seq, each side counting its sleepers so that the other side bumps the word
 * and wakes only when somebody sleeps: a sleeper counts itself, then looks at the position
 * again, then sleeps if the word has not moved; a committer stores its position, then looks
 * at the count (all four sequentially consistent): one of the two sees the other. Before
 * sleeping, a waiter spins on the other side's position for the waiting core's budget
 * (WEFT_SPIN_NS): a producer and a consumer that keep pace pass messages without a system
 * call. The sleep is the waiting core's park on a shared word (weft__shared_park: a coroutine
 * looks at the word between naps instead, and does not spin).
 */
#include "process_internal.h"

#include "../sync/sync_shared.h"

#include <math.h>
#include <string.h>

#define MAGIC         0x5745465451554556ull /* "WEFTQUEV" */
#define DEFAULT_CAP   (1u << 20)
#define MIN_CAP       4096u
#define MAX_CAP       (1ull << 40)
#define LOCK_FLOOR_NS 5000000 /* a poll still waits this long for a busy lock */
#define HEADER_BYTES  8u

typedef struct state {
    uint64_t pos, n; /* tail and nput, or head and nget */
} state_t;

/* One side: its lock, its committed state and its journal, on lines of their own. */
typedef struct side {
    _Alignas(64) weft_lock_t lock;
    _Atomic uint64_t pos; /* the commit point the other side reads */
    _Atomic uint64_t n;   /* messages committed by this side */
    state_t saved;
    _Atomic uint32_t journal;
    /* The other side's position and count as this side last read them (under this side's
     * lock): lower bounds, so this side reads the other's line only when they say "no room"
     * or "nothing there", not on every message. */
    uint64_t seen_pos, seen_n;
    /* The word this side's waiters sleep on, and how many sleep: bumped by the OTHER side. */
    _Alignas(64) _Atomic uint32_t seq;
    _Atomic uint32_t sleepers;
} side_t;

/* The shared mapping. The sizes in its first words are written once, by create, for a reader
 * of a core dump: no process uses them (another process may have written anything there). */
typedef struct shared {
    uint64_t magic;
    uint64_t map_size, cap, maxsize;
    uint32_t joinable;
    _Atomic uint32_t closed; /* weft_mpqueue_close was called (by any process) */
    side_t prod, cons;       /* prod.seq wakes putters (bumped by get); cons.seq getters */
    _Alignas(64) _Atomic uint64_t ndone;
    _Atomic uint32_t done_seq, joiners;
    _Alignas(64) unsigned char ring[];
} shared_t;

/* The handle: private to each process (a forked child gets its own copy with its memory), so
 * the sizes it maps, masks and bounds with are never read from shared memory. */
struct weft_mpqueue {
    uint64_t magic;
    shared_t *s;
    size_t map_size;
    uint64_t cap, maxsize; /* cap: a power of two; every ring offset is masked by cap - 1 */
    bool joinable;
    weft__handle_t hd; /* debug mode: magic, the program's reference (core_internal.h) */
};

/* ---- the ring --------------------------------------------------------------------------- */

static uint64_t record_size(uint64_t len)
{
    return HEADER_BYTES + ((len + 7) & ~(uint64_t)7);
}

static void ring_write(weft_mpqueue_t *q, uint64_t pos, const void *src, uint64_t n)
{
    uint64_t off = pos & (q->cap - 1), first = q->cap - off < n ? q->cap - off : n;
    if (first) memcpy(q->s->ring + off, src, first);
    if (n > first) memcpy(q->s->ring, (const unsigned char *)src + first, n - first);
}

static void ring_read(const weft_mpqueue_t *q, uint64_t pos, void *dst, uint64_t n)
{
    uint64_t off = pos & (q->cap - 1), first = q->cap - off < n ? q->cap - off : n;
    if (first) memcpy(dst, q->s->ring + off, first);
    if (n > first) memcpy((unsigned char *)dst + first, q->s->ring, n - first);
}

/* ---- a side's lock and journal ---------------------------------------------------------- */

/* Relaxed loads of the side's own state: only its lock holder writes it. */
static uint64_t pos_of(side_t *s)
{
    return atomic_load_explicit(&s->pos, memory_order_relaxed);
}

static uint64_t n_of(side_t *s)
{
    return atomic_load_explicit(&s->n, memory_order_relaxed);
}

/* The journal guards against the holder's death, not against other threads (the lock does
 * that): what matters is which of the holder's stores were executed when it was killed, and
 * a killed thread stops at an instruction boundary with every earlier store performed. So
 * the stores only need to be issued in program order: compiler barriers (signal fences). */
static void journal_begin(side_t *s)
{
    s->saved = (state_t){pos_of(s), n_of(s)};
    atomic_signal_fence(memory_order_seq_cst); /* saved is written before journal = 1 */
    atomic_store_explicit(&s->journal, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* journal = 1 before the change */
}

static void journal_end(side_t *s)
{
    atomic_signal_fence(memory_order_seq_cst); /* the change before journal = 0 */
    atomic_store_explicit(&s->journal, 0, memory_order_relaxed);
}

/* Commits a change of the side: the new position, then the count. The position's store is
 * sequentially consistent: it releases what was written or read before, and it is ordered
 * before the look at the other side's sleepers in wake (a sleeper counts itself, then loads
 * the position, both seq_cst: one of the two sees the other). */
static void commit(side_t *s, uint64_t size)
{
    journal_begin(s);
    atomic_store_explicit(&s->pos, s->saved.pos + size, memory_order_seq_cst);
    atomic_store_explicit(&s->n, s->saved.n + 1, memory_order_relaxed);
    journal_end(s);
}

/* Takes a side's lock; repairs the side if its last holder died mid-commit. */
static int lock(side_t *s, int64_t deadline)
{
    if (deadline != WEFT_NO_DEADLINE) { /* a poll still waits a little for a busy lock */
        int64_t floor = weft_time_monotonic_ns() + LOCK_FLOOR_NS;
        if (deadline < floor) deadline = floor;
    }
    int rc = weft__plock_acquire_deadline(&s->lock, deadline, false);
    if (rc == WEFT_EOWNERDEAD) {
        /* Relaxed: the dead holder's stores are ordered before its death by the kernel's
         * robust-futex handling, and our acquire of the lock. */
        if (atomic_load_explicit(&s->journal, memory_order_relaxed)) {
            bool moved = pos_of(s) != s->saved.pos; /* the commit point decides */
            atomic_store_explicit(&s->n, s->saved.n + (moved ? 1 : 0), memory_order_relaxed);
            journal_end(s);
        }
        rc = 0;
    }
    return rc;
}

static void unlock(side_t *s)
{
    weft__plock_release(&s->lock);
}

/* ---- waiting ---------------------------------------------------------------------------- */

/* After a commit: wakes the sleepers of the other side's word, if any (see the top). */
static void wake(side_t *other)
{
    if (atomic_load_explicit(&other->sleepers, memory_order_seq_cst)) { /* after the commit */
        atomic_fetch_add_explicit(&other->seq, 1, memory_order_relaxed);
        weft__futex_wake(&other->seq, INT32_MAX, true);
    }
}

/* Spins for the waiting core's spin budget (none on one CPU) while *pos still reads `seen`.
 * True if it moved. */
typedef struct watched {
    _Atomic uint64_t *pos;
    uint64_t seen;
} watched_t;

static bool moved(const void *arg)
{
    const watched_t *w = arg;
    /* Relaxed: a hint; the caller looks again under its lock. */
    return atomic_load_explicit(w->pos, memory_order_relaxed) != w->seen;
}

static bool spin_on(_Atomic uint64_t *pos, uint64_t seen, int64_t deadline)
{
    return weft__spin(moved, &(watched_t){pos, seen}, deadline);
}

/* Waits (lock dropped) until *pos, the other side's position or count, moves from `seen` (or
 * the queue is closed), the sleep ends or the deadline passes: spins, then parks on me->seq,
 * counted among its sleepers so that the other side bumps it. 0 (look again), WEFT_ETIMEDOUT
 * or WEFT_ECANCELED (weft__shared_park's). */
static int wait_for(weft_mpqueue_t *q, side_t *me, _Atomic uint64_t *pos, uint64_t seen,
                    int64_t deadline)
{
    if (weft__may_spin() && spin_on(pos, seen, deadline)) return 0;
    uint32_t word = atomic_load_explicit(&me->seq, memory_order_relaxed);
    atomic_fetch_add_explicit(&me->sleepers, 1, memory_order_seq_cst);
    int rc = 0;
    if (atomic_load_explicit(pos, memory_order_seq_cst) == seen &&
        !atomic_load_explicit(&q->s->closed, memory_order_seq_cst)) {
        weft__waitctx_t *ctx = weft__waitctx_current();
        bool mark = weft__blocked_enter(
            ctx, me == &q->s->cons ? WEFT__ON_MPQUEUE_GET : WEFT__ON_MPQUEUE_PUT, q, deadline);
        rc = weft__shared_park(&me->seq, word, deadline, false);
        weft__blocked_leave(ctx, mark);
    }
    atomic_fetch_sub_explicit(&me->sleepers, 1, memory_order_relaxed);
    return rc;
}

/* ---- life ------------------------------------------------------------------------------- */

int weft_mpqueue_create(size_t capacity, size_t maxsize, bool joinable, weft_mpqueue_t **out)
{
    if (!out) return WEFT_EINVAL;
    *out = NULL;
    if ((uint64_t)capacity > MAX_CAP) return WEFT_EINVAL;
    uint64_t cap = capacity ? MIN_CAP : DEFAULT_CAP;
    while (cap < capacity) cap <<= 1;
    size_t size;
    if (!weft__size_add(sizeof(shared_t), (size_t)cap, &size)) return WEFT_EINVAL;
    weft_mpqueue_t *q = weft__handle_alloc(sizeof *q);
    if (!q) return WEFT_ENOMEM;
    *q = (weft_mpqueue_t){MAGIC, NULL, size, cap, maxsize, joinable, {0, 0}};
    weft__handle_init(&q->hd, WEFT__ID_MPQUEUE, 1);
    int rc = weft_shm_alloc(size, (void **)&q->s);
    if (rc) {
        weft__handle_free(q, &q->hd);
        return rc;
    }
    /* Zero-filled already: positions, counts, journals, seq words and sleepers start at 0. */
    shared_t *s = q->s;
    s->magic = MAGIC;
    s->map_size = size;
    s->cap = cap;
    s->maxsize = maxsize;
    s->joinable = joinable;
    rc = weft_lock_init_shared(&s->prod.lock);
    if (!rc) rc = weft_lock_init_shared(&s->cons.lock);
    if (rc) {
        weft_shm_free(s, size);
        weft__handle_free(q, &q->hd);
        return rc;
    }
    *out = q;
    return 0;
}

int weft_mpqueue_release(weft_mpqueue_t *q)
{
    WEFT__HANDLE_RELEASE(q, WEFT__ID_MPQUEUE, "mpqueue");
    if (!q || q->magic != MAGIC) return WEFT_EINVAL;
    int rc = weft_shm_free(q->s, q->map_size);
    q->magic = 0;
    weft__name_drop(q);
    weft__handle_free(q, &q->hd);
    return rc;
}

int weft_mpqueue_set_name(weft_mpqueue_t *q, const char *name)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_MPQUEUE, "mpqueue");
    if (!q || q->magic != MAGIC) return WEFT_EINVAL;
    return weft__name_set(q, name);
}

/* ---- put and get ------------------------------------------------------------------------ */

static bool is_closed(const weft_mpqueue_t *q)
{
    return atomic_load_explicit(&q->s->closed, memory_order_relaxed);
}

/* Room for a record of `size` bytes by the consumers' position and count as last seen (tail
 * lock held): stale ones only make the queue look fuller than it is. */
static bool room_seen(weft_mpqueue_t *q, uint64_t size)
{
    side_t *p = &q->s->prod;
    uint64_t queued = n_of(p) - p->seen_n;
    return q->cap - (pos_of(p) - p->seen_pos) >= size && (!q->maxsize || queued < q->maxsize);
}

/* Reads the consumers' count, then position, into the producers' view (tail lock held).
 * Acquire: their reads of the space are done; the position is at least where it was at that
 * count. */
static void look_at_consumers(weft_mpqueue_t *q)
{
    q->s->prod.seen_n = atomic_load_explicit(&q->s->cons.n, memory_order_acquire);
    q->s->prod.seen_pos = atomic_load_explicit(&q->s->cons.pos, memory_order_acquire);
}

static bool has_room(weft_mpqueue_t *q, uint64_t size)
{
    if (room_seen(q, size)) return true;
    look_at_consumers(q);
    return room_seen(q, size);
}

int weft_mpqueue_put(weft_mpqueue_t *q, const void *buf, size_t len, double timeout)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_MPQUEUE, "mpqueue");
    int64_t deadline;
    if (!q || (!buf && len) || isnan(timeout) || weft__deadline(timeout, &deadline))
        return WEFT_EINVAL;
    /* Compared before rounding: a length within 8 of 2^64 would round to a tiny record. */
    if ((uint64_t)len > q->cap - HEADER_BYTES) return WEFT_EOVERFLOW;
    uint64_t size = record_size(len);
    for (int stop = 0;;) {
        int rc = lock(&q->s->prod, deadline);
        if (rc) return rc;
        if (is_closed(q)) {
            unlock(&q->s->prod);
            return WEFT_ESHUTDOWN;
        }
        if (has_room(q, size)) break;
        uint64_t nget = q->s->prod.seen_n; /* as just read */
        unlock(&q->s->prod);
        if (stop) return stop; /* after a last look: room wins over the deadline */
        stop = wait_for(q, &q->s->prod, &q->s->cons.n, nget, deadline); /* room comes with a get */
    }
    uint64_t tail = pos_of(&q->s->prod), header = len;
    ring_write(q, tail, &header, HEADER_BYTES);
    ring_write(q, tail + HEADER_BYTES, buf, len);
    commit(&q->s->prod, size);
    unlock(&q->s->prod);
    wake(&q->s->cons);
    return 0;
}

int weft_mpqueue_get(weft_mpqueue_t *q, void *buf, size_t cap, double timeout, size_t *len)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_MPQUEUE, "mpqueue");
    int64_t deadline;
    if (!q || !len || (!buf && cap) || isnan(timeout) || weft__deadline(timeout, &deadline))
        return WEFT_EINVAL;
    uint64_t head;
    for (int stop = 0;;) {
        int rc = lock(&q->s->cons, deadline);
        if (rc) return rc;
        head = pos_of(&q->s->cons);
        if (q->s->cons.seen_pos != head) break; /* a record seen before (by any consumer) */
        /* Acquire: the records before the producers' commit are visible (to the consumers
         * that take the lock after us, too). */
        uint64_t tail = atomic_load_explicit(&q->s->prod.pos, memory_order_acquire);
        q->s->cons.seen_pos = tail;
        if (tail != head) break;
        unlock(&q->s->cons);
        if (is_closed(q)) return WEFT_ESHUTDOWN;
        if (stop) return stop; /* after a last look: a message wins over the deadline */
        stop = wait_for(q, &q->s->cons, &q->s->prod.pos, tail, deadline);
    }
    uint64_t n;
    ring_read(q, head, &n, HEADER_BYTES);
    if (n > q->cap - HEADER_BYTES) { /* written by no put: the shared memory was overwritten */
        unlock(&q->s->cons);
        return WEFT_EBROKEN;
    }
    if (n > cap) {
        unlock(&q->s->cons);
        *len = (size_t)n;
        return WEFT_EOVERFLOW; /* stays at the head */
    }
    ring_read(q, head + HEADER_BYTES, buf, n);
    commit(&q->s->cons, record_size(n));
    unlock(&q->s->cons);
    wake(&q->s->prod);
    *len = (size_t)n;
    return 0;
}

int weft_mpqueue_put_nowait(weft_mpqueue_t *q, const void *buf, size_t len)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_MPQUEUE, "mpqueue");
    return weft_mpqueue_put(q, buf, len, 0);
}

int weft_mpqueue_get_nowait(weft_mpqueue_t *q, void *buf, size_t cap, size_t *len)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_MPQUEUE, "mpqueue");
    return weft_mpqueue_get(q, buf, cap, 0, len);
}

int weft_mpqueue_close(weft_mpqueue_t *q)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_MPQUEUE, "mpqueue");
    if (!q || q->magic != MAGIC) return WEFT_EINVAL;
    atomic_store_explicit(&q->s->closed, 1, memory_order_seq_cst);
    /* Every sleeper looks again: putters fail, getters drain or fail. The bump comes after
     * the flag (both seq_cst), and a sleeper looks at the flag after counting itself. */
    side_t *sides[] = {&q->s->prod, &q->s->cons};
    for (int i = 0; i < 2; i++) {
        atomic_fetch_add_explicit(&sides[i]->seq, 1, memory_order_seq_cst);
        weft__futex_wake(&sides[i]->seq, INT32_MAX, true);
    }
    return 0;
}

/* ---- snapshots -------------------------------------------------------------------------- */

size_t weft_mpqueue_qsize(weft_mpqueue_t *q)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_MPQUEUE, "mpqueue");
    if (!q) return 0;
    uint64_t got = atomic_load_explicit(&q->s->cons.n, memory_order_acquire);
    uint64_t put = atomic_load_explicit(&q->s->prod.n, memory_order_acquire);
    return put > got ? (size_t)(put - got) : 0;
}

bool weft_mpqueue_empty(weft_mpqueue_t *q)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_MPQUEUE, "mpqueue");
    if (!q) return false;
    uint64_t head = atomic_load_explicit(&q->s->cons.pos, memory_order_acquire);
    return atomic_load_explicit(&q->s->prod.pos, memory_order_acquire) == head;
}

bool weft_mpqueue_full(weft_mpqueue_t *q, size_t len)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_MPQUEUE, "mpqueue");
    if (!q || lock(&q->s->prod, WEFT_NO_DEADLINE)) return false;
    bool full = (uint64_t)len > q->cap - HEADER_BYTES || !has_room(q, record_size(len));
    unlock(&q->s->prod);
    return full;
}

/* ---- joinable --------------------------------------------------------------------------- */

int weft_mpqueue_task_done(weft_mpqueue_t *q)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_MPQUEUE, "mpqueue");
    if (!q) return WEFT_EINVAL;
    if (!q->joinable) return WEFT_ENOTSUP;
    /* One compare-and-swap: a process killed here either counted its task or did not. */
    uint64_t done = atomic_load_explicit(&q->s->ndone, memory_order_relaxed), next;
    do {
        if (done >= atomic_load_explicit(&q->s->cons.n, memory_order_acquire)) return WEFT_EINVAL;
        next = done + 1;
    } while (!atomic_compare_exchange_weak_explicit(&q->s->ndone, &done, next, memory_order_seq_cst,
                                                    memory_order_relaxed));
    if (next == atomic_load_explicit(&q->s->prod.n, memory_order_seq_cst) &&
        atomic_load_explicit(&q->s->joiners, memory_order_seq_cst)) {
        atomic_fetch_add_explicit(&q->s->done_seq, 1, memory_order_relaxed);
        weft__futex_wake(&q->s->done_seq, INT32_MAX, true);
    }
    return 0;
}

int weft_mpqueue_join(weft_mpqueue_t *q, double timeout)
{
    WEFT__HANDLE_CHECK(q, WEFT__ID_MPQUEUE, "mpqueue");
    int64_t deadline;
    if (!q || isnan(timeout) || weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    if (!q->joinable) return WEFT_ENOTSUP;
    for (int stop = 0;;) {
        uint32_t word = atomic_load_explicit(&q->s->done_seq, memory_order_relaxed);
        atomic_fetch_add_explicit(&q->s->joiners, 1, memory_order_seq_cst);
        bool done = atomic_load_explicit(&q->s->ndone, memory_order_seq_cst) ==
                    atomic_load_explicit(&q->s->prod.n, memory_order_seq_cst);
        int rc = done || stop ? 0 : weft__shared_park(&q->s->done_seq, word, deadline, false);
        atomic_fetch_sub_explicit(&q->s->joiners, 1, memory_order_relaxed);
        if (done || stop) return done ? 0 : stop; /* after a last look: done wins */
        stop = rc;
    }
}

void *weft__mpqueue_shared(weft_mpqueue_t *q, size_t *size)
{
    *size = q->map_size;
    return q->s;
}
