/*
 * mpi_pool.c — the executor backend on MPI ranks (weft/mpi.h), built as libweft_mpi when Open
 * MPI is found. It uses weft's public API plus the executor seam (executor_internal.h: the ops
 * table, the future's `arg`, `node` and `dispose` fields, which belong to the backend, and
 * weft__future_set_bytes, which gives a future its result bytes to own).
 *
 * One engine per process, run by the MPI thread, which alone calls MPI between
 * weft_mpi_serve (MPI_Init_thread with MPI_THREAD_SERIALIZED, in the caller) and
 * weft_mpi_finalize (MPI_Finalize, in the caller, after the MPI thread has ended). Its parts:
 *   - the registry: name -> function, a list pushed at load (WEFT_MPI_TASK), read lock-free;
 *   - ranks[]: the worker ranks (world ranks 1..N-1, then those each spawning pool started),
 *     each with its FIFO of in-flight futures (linked through future->node, in the order the
 *     rank runs them: replies come back in that order), how many batches it has unanswered,
 *     the reply body it is receiving, and a pidfd when it lives on this host;
 *   - pools: each a FIFO of queued futures (future->node; future->arg is the task, already
 *     in wire form) and a count of futures queued or in flight (`outstanding`);
 *   - sends: the MPI send requests in flight, each with the buffer to free (a batch) or the
 *     task whose bytes it streams (a task's refs count its sends and its future);
 *   - cmds: requests the MPI thread runs for callers (spawn a pool's ranks, finalize).
 * `lock` (a weft_lock_t: callers may be coroutines) guards the pools (queues, outstanding,
 * shut, gone), the pool list, cmds and `broken`; ranks, sends and in-flight FIFOs are the MPI
 * thread's alone. Submitters queue and poke the MPI thread through an eventfd; it polls that
 * eventfd and the ranks' pidfds, with a backoff of up to 1 ms while MPI traffic is pending
 * (MPI has no fd to wait on; mpi4py.futures backs off the same way).
 *
 * Wire (every message on TAG_MSG is a head: kind, count, body length, then `count` entries;
 * a body longer than INLINE_MAX follows the head as 1 MiB messages on TAG_BODY):
 *   BATCH  entries: u32 name length, u32 0, u64 argument length, name, argument (inline,
 *          unless the head's body length says it follows: then count is 1)
 *   REPLY  entries: i32 code, u32 0, u64 result length, result (or in the body, count 1); a
 *          failure's bytes are its message (weft_future_fail_current), at most MESSAGE_MAX,
 *          never in a body; the submitter reads at most MESSAGE_MAX of them whatever the length
 *   EXIT   no entries: the worker finalizes and weft_mpi_serve returns.
 *   PING, PONG (on TAG_BEAT, a head alone): the heartbeat. The MPI thread pings a rank that has
 *          tasks in flight once per interval, one ping at a time; the worker's heartbeat thread
 *          (not the one running tasks) answers with a pong. A ping unanswered for the timeout
 *          (the smallest of the pools' heartbeat options) declares the rank dead, as its pidfd
 *          does for a rank on this host: a rank on another host that dies, or one that stops.
 * A dead rank (its pidfd fires) breaks the engine: every queued and in-flight future fails
 * with WEFT_EBROKEN (the message names the rank and its pid) and submits fail with it; the MPI
 * requests to the dead rank are dropped.
 * Finalize (a command that ends only once drained): every pool is shut, the queued futures of
 * the pools still held fail with WEFT_ESHUTDOWN, and the MPI thread goes on until no pool has a
 * future queued or in flight (a released pool's tasks all run, every result in flight is
 * taken); then it tells the ranks to leave and ends.
 */
#include "executor_internal.h"

#include <mpi.h>

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "weft/mpi.h"
#include "weft/sync.h"

enum { TAG_MSG = 7101, TAG_BODY = 7102, TAG_BEAT = 7103 };
enum { BATCH = 1, REPLY = 2, EXIT = 3, PING = 4, PONG = 5 };
enum { NAME_MAX_LEN = 255 };
enum { MESSAGE_MAX = 4095 }; /* a failure's message on the wire, in bytes, without its NUL */
enum { INLINE_MAX = 64 << 10, CHUNK = 1 << 20 };
enum { BATCH_MAX_TASKS = 256, BATCHES_IN_FLIGHT = 4 }; /* at most; see depth() */
#define BATCH_NS  1000000       /* the work one batch should carry, by the measured task time */
#define BEAT_NS   1000000000LL  /* the default heartbeat interval: 1 s */
#define DEAD_NS   10000000000LL /* the default heartbeat timeout: 10 s */
#define ANSWER_NS 5000000       /* how often a worker's heartbeat thread looks for pings */
enum { HEAD = 16, ENTRY = 16 }; /* a head's and an entry's fixed part, in bytes */

/* ---- the registry ---------------------------------------------------------------------- */

typedef struct entry {
    struct entry *next;
    weft_mpi_task_fn fn;
    size_t len;
    char name[];
} entry_t;

static _Atomic(entry_t *) registry;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

static entry_t *lookup(const char *name, size_t len)
{
    for (entry_t *e = atomic_load_explicit(&registry, memory_order_acquire); e; e = e->next)
        if (e->len == len && memcmp(e->name, name, len) == 0) return e;
    return NULL;
}

int weft_mpi_register(const char *name, weft_mpi_task_fn fn)
{
    size_t len = name ? strlen(name) : 0;
    if (!fn || len == 0 || len > NAME_MAX_LEN) return WEFT_EINVAL;
    pthread_mutex_lock(&registry_lock); /* writers one at a time; readers never wait */
    entry_t *e = lookup(name, len);
    int rc = e ? (e->fn == fn ? 0 : WEFT_EEXIST) : 0;
    if (!e) {
        e = malloc(sizeof *e + len + 1);
        if (e) {
            e->fn = fn;
            e->len = len;
            memcpy(e->name, name, len + 1);
            e->next = atomic_load_explicit(&registry, memory_order_relaxed); /* under the lock */
            atomic_store_explicit(&registry, e, memory_order_release);
        } else {
            rc = WEFT_ENOMEM;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

/* ---- wire helpers ---------------------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void put64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void head(unsigned char *p, uint32_t kind, uint32_t count, uint64_t body)
{
    put32(p, kind);
    put32(p + 4, count);
    put64(p + 8, body);
}

/* Sleeps for the backoff step and doubles it, from 1 us up to 1 ms. */
static void backoff(long *ns)
{
    struct timespec ts = {0, *ns};
    nanosleep(&ts, NULL);
    if (*ns < 1000000) *ns = *ns * 2 > 1000000 ? 1000000 : *ns * 2;
}

/* A worker makes MPI calls from two threads, its main thread (tasks) and its heartbeat thread,
 * one at a time (MPI_THREAD_SERIALIZED): each call is made under wmpi, and none that blocks
 * (a blocking operation is posted, then tested under the lock, with a backoff outside it). */
static pthread_mutex_t wmpi = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool beat_stop;
static bool beating; /* the heartbeat thread runs; if it could not start, the idle main thread
                        answers pings (then a long task makes its rank look dead) */

static void wlock(void)
{
    pthread_mutex_lock(&wmpi);
}
static void wunlock(void)
{
    pthread_mutex_unlock(&wmpi);
}

/* Waits for a worker's request, never holding wmpi while it waits. */
static void wwait(MPI_Request *req)
{
    long ns = 1000;
    for (;;) {
        int done = 0;
        wlock();
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        wunlock();
        if (done || rc != MPI_SUCCESS) return;
        backoff(&ns);
    }
}

/* Answers every ping waiting from rank 0 of comm with a pong; under wmpi. */
static void answer_pings(MPI_Comm comm)
{
    for (;;) {
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        if (MPI_Improbe(0, TAG_BEAT, comm, &flag, &msg, &st) != MPI_SUCCESS || !flag) return;
        unsigned char ping[HEAD]; /* a longer message is cut (MPI_ERR_TRUNCATE), never grown */
        MPI_Mrecv(ping, HEAD, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
        unsigned char pong[HEAD];
        head(pong, PONG, 0, 0);
        MPI_Request req;
        if (MPI_Isend(pong, HEAD, MPI_BYTE, 0, TAG_BEAT, comm, &req) != MPI_SUCCESS) return;
        int done = 0; /* 16 bytes go eagerly: done at once, else wait outside the lock */
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done) {
            wunlock();
            wwait(&req);
            wlock();
        }
    }
}

/* The heartbeat thread of a worker: answers pings while the main thread runs tasks. */
static void *beat_main(void *arg)
{
    MPI_Comm comm = *(MPI_Comm *)arg;
    while (!atomic_load_explicit(&beat_stop, memory_order_relaxed)) {
        wlock();
        answer_pings(comm);
        wunlock();
        struct timespec ts = {0, ANSWER_NS};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Blocking receive of the next head from src, with a backoff while none is there (Open MPI's
 * own blocking receive spins). Returns the malloc'd message and its length, NULL on error. */
static unsigned char *recv_head(MPI_Comm comm, int src, int *len)
{
    long ns = 1000;
    for (;;) {
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        wlock();
        if (!beating) answer_pings(comm);
        if (MPI_Improbe(src, TAG_MSG, comm, &flag, &msg, &st) != MPI_SUCCESS) {
            wunlock();
            return NULL;
        }
        if (flag) {
            MPI_Get_count(&st, MPI_BYTE, len);
            unsigned char *buf = malloc(*len > 0 ? (size_t)*len : 1);
            MPI_Mrecv(buf, buf ? *len : 0, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
            wunlock();
            return buf;
        }
        wunlock();
        backoff(&ns);
    }
}

static int nchunks(uint64_t len)
{
    return (int)((len + CHUNK - 1) / CHUNK);
}

static int chunk_len(uint64_t len, int i)
{
    uint64_t rest = len - (uint64_t)i * CHUNK;
    return (int)(rest < CHUNK ? rest : CHUNK);
}

/* ---- the worker rank --------------------------------------------------------------------- */

/* A worker's send of len bytes to rank 0, waiting for it (wwait: the lock is not held). A
 * small one goes eagerly: done at its first test, without a backoff. */
static void wsend(MPI_Comm comm, const void *buf, int len, int tag)
{
    MPI_Request req;
    int done = 0;
    wlock();
    int rc = MPI_Isend(buf, len, MPI_BYTE, 0, tag, comm, &req);
    if (rc == MPI_SUCCESS) MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    wunlock();
    if (rc == MPI_SUCCESS && !done) wwait(&req);
}

/* Sends a reply head (and the body, if any), waiting: a worker has nothing else to do. */
static void send_reply(MPI_Comm comm, unsigned char *msg, size_t len, const unsigned char *body,
                       uint64_t blen)
{
    wsend(comm, msg, (int)len, TAG_MSG);
    for (int i = 0; i < nchunks(blen); i++)
        wsend(comm, body + (size_t)i * CHUNK, chunk_len(blen, i), TAG_BODY);
}

typedef struct replies {
    unsigned char *buf;
    size_t len, cap;
    uint32_t count;
} replies_t;

static void flush_replies(MPI_Comm comm, replies_t *r)
{
    if (!r->count) return;
    head(r->buf, REPLY, r->count, 0);
    send_reply(comm, r->buf, r->len, NULL, 0);
    r->len = HEAD;
    r->count = 0;
}

static int run_task(const unsigned char *name, size_t nlen, const unsigned char *arg, size_t alen,
                    void **result, size_t *rlen)
{
    entry_t *e = lookup((const char *)name, nlen);
    if (!e) return WEFT_ENOENT;
    char *message = NULL;
    weft_future_capture_begin();
    int code = e->fn(alen ? arg : NULL, alen, result, rlen);
    weft_future_capture_end(&message); /* WEFT_ENOMEM: the failure goes without its message */
    if (code) {                        /* a failure's bytes are its message, cut to MESSAGE_MAX */
        free(*result);
        *result = message;
        *rlen = message ? strnlen(message, MESSAGE_MAX) : 0;
    } else {
        free(message);
    }
    return code;
}

/* Adds one task's reply; a result above INLINE_MAX goes alone, after those before it. */
static void add_reply(MPI_Comm comm, replies_t *r, int32_t code, void *result, size_t rlen)
{
    if (rlen > INLINE_MAX) {
        flush_replies(comm, r);
        unsigned char msg[HEAD + ENTRY] = {0};
        head(msg, REPLY, 1, rlen);
        put32(msg + HEAD, (uint32_t)code);
        put64(msg + HEAD + 8, rlen);
        send_reply(comm, msg, sizeof msg, result, rlen);
        free(result);
        return;
    }
    if (r->len + ENTRY + rlen > r->cap) flush_replies(comm, r);
    if (r->len + ENTRY + rlen > r->cap) { /* cap is HEAD + ENTRY + INLINE_MAX at least */
        free(result);
        code = WEFT_ENOMEM, rlen = 0;
    }
    unsigned char *p = r->buf + r->len;
    memset(p, 0, ENTRY);
    put32(p, (uint32_t)code);
    put64(p + 8, rlen);
    if (rlen) memcpy(p + ENTRY, result, rlen);
    free(result);
    r->len += ENTRY + rlen;
    r->count++;
}

/* Runs one batch message; false if it is not one (EXIT, or garbage). */
static bool serve_batch(MPI_Comm comm, const unsigned char *msg, size_t len, replies_t *r)
{
    if (len < HEAD || get32(msg) != BATCH) return false;
    uint32_t count = get32(msg + 4);
    uint64_t body = get64(msg + 8);
    unsigned char *big = NULL;
    if (body) {
        big = malloc(body);
        for (int i = 0; i < nchunks(body); i++) {
            MPI_Request req;
            wlock();
            int rc = MPI_Irecv(big ? big + (size_t)i * CHUNK : NULL, big ? chunk_len(body, i) : 0,
                               MPI_BYTE, 0, TAG_BODY, comm, &req);
            wunlock();
            if (rc == MPI_SUCCESS) wwait(&req);
        }
    }
    size_t off = HEAD;
    bool ok = true;
    for (uint32_t i = 0; i < count && ok; i++) {
        if (len - off < ENTRY) {
            ok = false; /* not a batch: the stream is out of step */
            break;
        }
        uint32_t nlen = get32(msg + off);
        uint64_t alen = get64(msg + off + 8);
        const unsigned char *name = msg + off + ENTRY;
        const unsigned char *arg = body ? big : name + nlen;
        size_t inline_len = body ? 0 : alen;
        if (len - off - ENTRY < nlen + inline_len) {
            ok = false;
            break;
        }
        void *result = NULL;
        size_t rlen = 0;
        int32_t code = body && !big ? WEFT_ENOMEM : run_task(name, nlen, arg, alen, &result, &rlen);
        add_reply(comm, r, code, result, rlen);
        off += ENTRY + nlen + inline_len;
    }
    free(big);
    flush_replies(comm, r);
    return ok;
}

/* A worker's life: serve batches from rank 0 of comm until EXIT. */
/* Returns whether MPI can still be finalized: false when the submitter said a rank died. */
static bool worker_loop(MPI_Comm comm)
{
    replies_t r = {.len = HEAD, .cap = HEAD + ENTRY + INLINE_MAX};
    r.buf = malloc(r.cap);
    bool whole = true;
    for (;;) {
        int len;
        unsigned char *msg = recv_head(comm, 0, &len);
        bool go = msg && r.buf && serve_batch(comm, msg, (size_t)len, &r);
        if (!go && msg && len >= HEAD && get32(msg) == EXIT) whole = get32(msg + 4) == 0;
        free(msg);
        if (!go) break;
    }
    free(r.buf);
    return whole;
}

/* ---- the engine (submitter side) ----------------------------------------------------------- */

typedef struct mpool mpool_t;

typedef struct task { /* a queued future's arg: its batch entry, ready to copy */
    mpool_t *pool;
    int refs;     /* the future's hold and each send streaming its bytes (MPI thread only) */
    uint64_t len; /* argument bytes */
    size_t wire;  /* entry bytes: ENTRY + name + argument */
    unsigned char data[];
} task_t;

typedef weft__bytes_t result_t; /* a finished future's value; data is raw */

typedef struct rank {
    MPI_Comm comm;
    int peer;                        /* its rank in comm */
    mpool_t *owner;                  /* the pool that spawned it; NULL: a world rank, any pool's */
    int pidfd;                       /* -1: not on this host (or no pidfd) */
    int64_t pid;                     /* its pid (on its own host), as it told at the start */
    bool gone;                       /* told to exit, or dead */
    bool dead;                       /* its pidfd said it ended */
    weft__list_t inflight;           /* in flight, in the order it runs them */
    size_t batch[BATCHES_IN_FLIGHT]; /* tasks left of each unanswered batch, oldest first */
    size_t size[BATCHES_IN_FLIGHT];  /* and how many it had */
    int64_t sent_at[BATCHES_IN_FLIGHT];
    int64_t last_done; /* when its previous batch was answered */
    int batches;
    result_t *body; /* a reply body being received into body->raw, with body_code */
    int32_t body_code;
    MPI_Request *body_reqs;
    int nbody;
    int64_t ping_at;   /* when the unanswered ping was sent; 0: none */
    int64_t last_ping; /* when the last ping was sent */
} rank_t;

struct mpool {
    weft_executor_t base;
    mpool_t *next;      /* the engine's list */
    weft__list_t queue; /* queued */
    size_t outstanding; /* queued or in flight */
    size_t max_workers;
    int64_t beat_ns, dead_ns; /* its heartbeat options; INT64_MAX: none */
    bool spawned, shut, gone;
    pid_t owner;
    weft_event_t idle; /* set once shut with nothing outstanding */
};

typedef struct send {
    MPI_Request req;
    void *buf;    /* freed once sent (a batch), or NULL */
    task_t *task; /* whose bytes it streams, or NULL */
} send_t;

enum { CMD_SPAWN = 1, CMD_REAP = 2, CMD_FINALIZE = 3 };
typedef struct cmd {
    struct cmd *next;
    int kind;
    mpool_t *pool;
    const weft_mpi_pool_opts_t *opts;
    int rc;
    weft_event_t done;
} cmd_t;

static struct engine {
    weft_lock_t lock;
    int efd;
    pthread_t thread;
    bool serving;         /* weft_mpi_serve or a pool started the engine; cleared by finalize */
    bool our_init;        /* weft initialized MPI (and finalizes it) */
    bool running;         /* the MPI thread runs */
    bool broken;          /* a worker rank died: futures fail, submits too */
    bool rank_died;       /* a worker rank died: MPI_Finalize is skipped (it may wait for it) */
    bool finalized;       /* weft_mpi_finalize ran here, or this process served as a worker */
    bool worker;          /* this process is a worker rank (serving, or done serving) */
    char broken_why[160]; /* which rank died, for the futures it breaks (set before broken) */
    cmd_t *fin;           /* the finalize waiting for the pools to drain (MPI thread only) */
    pid_t owner;
    mpool_t *pools;
    cmd_t *cmds;
    rank_t *ranks;
    size_t nranks;
    send_t *sends;
    size_t nsends, scap;
    size_t queued;            /* futures on the pools' queues (under the lock) */
    int64_t task_ns;          /* a task's mean time on a rank, as measured (0: not yet) */
    int64_t beat_ns, dead_ns; /* the heartbeat: the pools' smallest (MPI thread only) */
} E = {.lock = WEFT_LOCK_INIT, .efd = -1};

static const weft__executor_ops_t mpool_ops;

static void poke(void)
{
    uint64_t one = 1;
    ssize_t n = write(E.efd, &one, sizeof one); /* fails only when the counter is huge */
    (void)n;
}

static void lock(void)
{
    weft_lock_acquire(&E.lock, WEFT_FOREVER);
}
static void unlock(void)
{
    weft_lock_release(&E.lock);
}

static void task_unref(task_t *t)
{
    if (--t->refs == 0) free(t);
}

/* A future leaves its pool (completed or dropped); under the lock. */
static void pool_done_locked(mpool_t *p)
{
    if (--p->outstanding == 0 && p->shut) weft_event_set(&p->idle);
}

/* Completes a future the MPI thread holds (its queue reference): code 0 with result, or the
 * error with message (the task's, copied; NULL: weft's own for the codes it makes); then it
 * leaves its pool. Not under the lock: callbacks run here. */
static void complete(weft_future_t *f, int code, result_t *result, const char *message)
{
    task_t *t = f->arg;
    mpool_t *p = t->pool;
    f->arg = NULL;
    task_unref(t);
    if (code == 0) {
        if (weft__future_set_bytes(f, result) != 0)
            free(result); /* completed by hand meanwhile: that outcome stands */
    } else {
        free(result);
        weft_future_set_error(f, code,
                              message                ? message
                              : code == WEFT_ENOENT  ? "no task of that name on the worker rank"
                              : code == WEFT_EBROKEN ? E.broken_why
                              : code == WEFT_ESHUTDOWN
                                  ? "MPI was finalized (weft_mpi_finalize) before the task was "
                                    "handed to a worker rank"
                                  : NULL);
    }
    weft_future_release(f);
    lock();
    pool_done_locked(p);
    unlock();
}

static bool track_send(MPI_Request req, void *buf, task_t *t)
{
    if (E.nsends == E.scap) {
        size_t cap = E.scap ? 2 * E.scap : 64;
        send_t *s = realloc(E.sends, cap * sizeof *s);
        if (!s) return false;
        E.sends = s, E.scap = cap;
    }
    E.sends[E.nsends++] = (send_t){req, buf, t};
    if (t) t->refs++;
    return true;
}

/* Posts a send of len bytes to r; buf is freed once sent if own is true. Blocks (MPI_Send)
 * only when no memory is left to track it. */
static void post(rank_t *r, void *buf, int len, int tag, bool own, task_t *t)
{
    MPI_Request req;
    MPI_Isend(buf, len, MPI_BYTE, r->peer, tag, r->comm, &req);
    if (!track_send(req, own ? buf : NULL, t)) {
        MPI_Wait(&req, MPI_STATUS_IGNORE);
        if (own) free(buf);
    }
}

/* ---- the MPI thread: dispatch --------------------------------------------------------------- */

static bool eligible(const rank_t *r, size_t index, const mpool_t *p)
{
    if (p->spawned) return r->owner == p;
    return !r->owner && (!p->max_workers || index < p->max_workers);
}

/* Pops the next runnable future for rank r (index i) from the pools, under the lock;
 * cancelled ones are dropped on the way (into *dropped, to release without the lock). */
static weft_future_t *next_task(const rank_t *r, size_t i, bool first, weft__list_t *dropped)
{
    for (mpool_t *p = E.pools; p; p = p->next) {
        if (!eligible(r, i, p)) continue;
        while (!weft__list_empty(&p->queue)) {
            weft_future_t *f = weft__future_of(p->queue.head);
            task_t *t = f->arg;
            if (!first && t->len > INLINE_MAX) return NULL; /* it goes alone, next batch */
            weft__list_pop_head(&p->queue, &f->node);
            E.queued--;
            if (weft_future_set_running(f) == 0) return f;
            weft__list_push_back(dropped, &f->node); /* cancelled while queued */
            pool_done_locked(p);
        }
    }
    return NULL;
}

static void push_inflight(rank_t *r, weft_future_t *f)
{
    weft__list_push_back(&r->inflight, &f->node);
}

static void open_batch(rank_t *r, size_t count)
{
    r->batch[r->batches] = r->size[r->batches] = count;
    r->sent_at[r->batches++] = weft_time_monotonic_ns();
}

/* Sends rank r one batch: up to an even share of the queue (at most BATCH_MAX_TASKS and
 * INLINE_MAX bytes), or one large task alone with its body in chunks. False: nothing to send. */
static bool send_batch(rank_t *r, size_t i, size_t share, weft__list_t *dropped)
{
    unsigned char *buf = NULL;
    size_t len = HEAD, count = 0;
    weft_future_t *f;
    lock();
    while (count < share && (f = next_task(r, i, count == 0, dropped))) {
        task_t *t = f->arg;
        bool big = t->len > INLINE_MAX;
        size_t wire = big ? t->wire - t->len : t->wire;
        if (count && len + wire > HEAD + INLINE_MAX) { /* no room: back to its queue's head */
            weft__list_push_front(&t->pool->queue, &f->node);
            E.queued++;
            break;
        }
        unsigned char *more = realloc(buf, len + wire);
        if (!more) { /* it is RUNNING now: it fails rather than goes back */
            weft__list_push_back(dropped, &f->node);
            t->refs = -1; /* tells the caller: fail with WEFT_ENOMEM */
            break;
        }
        buf = more;
        memcpy(buf + len, t->data, wire);
        len += wire;
        count++;
        push_inflight(r, f);
        if (big) {
            unlock();
            head(buf, BATCH, 1, t->len);
            post(r, buf, (int)len, TAG_MSG, true, NULL);
            const unsigned char *arg = t->data + (t->wire - t->len);
            for (int c = 0; c < nchunks(t->len); c++)
                post(r, (void *)(arg + (size_t)c * CHUNK), chunk_len(t->len, c), TAG_BODY, false,
                     t);
            open_batch(r, 1);
            return true;
        }
    }
    unlock();
    if (!count) {
        free(buf);
        return false;
    }
    head(buf, BATCH, (uint32_t)count, 0);
    post(r, buf, (int)len, TAG_MSG, true, NULL);
    open_batch(r, count);
    return true;
}

static void release_dropped(weft__list_t *dropped)
{
    weft__list_node_t *n;
    while ((n = weft__list_pop_front(dropped))) {
        weft_future_t *f = weft__future_of(n);
        task_t *t = f->arg;
        if (t->refs == -1) { /* RUNNING, no memory to send it */
            t->refs = 1;
            complete(f, WEFT_ENOMEM, NULL, NULL);
            continue;
        }
        f->arg = NULL;
        free(t);
        weft_future_release(f);
    }
}

/* Batches in flight per rank: 4 while tasks are measured shorter than a batch's worth of work
 * (a rank goes from one to the next without waiting for the MPI thread; Python's process pool
 * keeps max_workers + 1 calls queued for the same reason), else 2: long tasks would wait
 * behind each other on one rank while another idles, and stay uncancellable. */
static int depth(void)
{
    return E.task_ns && E.task_ns < BATCH_NS ? BATCHES_IN_FLIGHT : 2;
}

/* Hands queued tasks to every rank with room; true if it sent anything. */
static bool dispatch(void)
{
    bool sent = false;
    weft__list_t dropped = {NULL, NULL};
    lock();
    size_t queued = E.broken ? 0 : E.queued;
    unlock();
    size_t free_ranks = 0;
    for (size_t i = 0; i < E.nranks; i++)
        free_ranks += !E.ranks[i].gone && E.ranks[i].batches < depth();
    if (queued && free_ranks) {
        /* An even share of the queue, at most about BATCH_NS of work by the measured task time
         * (a first task, or a slow kind, goes alone: batches of long tasks would leave ranks
         * idle and tasks uncancellable), and at most BATCH_MAX_TASKS. */
        size_t share = (queued + free_ranks - 1) / free_ranks;
        size_t by_time = E.task_ns ? (size_t)(BATCH_NS / E.task_ns) : 1;
        if (share > by_time) share = by_time ? by_time : 1;
        if (share > BATCH_MAX_TASKS) share = BATCH_MAX_TASKS;
        for (size_t i = 0; i < E.nranks; i++) {
            rank_t *r = &E.ranks[i];
            while (!r->gone && r->batches < depth() && send_batch(r, i, share, &dropped))
                sent = true;
        }
    }
    release_dropped(&dropped);
    return sent;
}

/* ---- the MPI thread: replies ----------------------------------------------------------------- */

static weft_future_t *pop_inflight(rank_t *r)
{
    weft_future_t *f = weft__future_of(weft__list_pop_front(&r->inflight));
    if (!f) return NULL;
    if (--r->batch[0] == 0) { /* the batch is answered: how long did a task take? */
        int64_t now = weft_time_monotonic_ns();
        int64_t from = r->sent_at[0] > r->last_done ? r->sent_at[0] : r->last_done;
        int64_t per_task = (now - from) / (int64_t)r->size[0];
        E.task_ns = E.task_ns ? (3 * E.task_ns + per_task) / 4 : per_task;
        r->last_done = now;
        memmove(r->batch, r->batch + 1, (BATCHES_IN_FLIGHT - 1) * sizeof r->batch[0]);
        memmove(r->size, r->size + 1, (BATCHES_IN_FLIGHT - 1) * sizeof r->size[0]);
        memmove(r->sent_at, r->sent_at + 1, (BATCHES_IN_FLIGHT - 1) * sizeof r->sent_at[0]);
        r->batches--;
    }
    return f;
}

static result_t *new_result(size_t len)
{
    result_t *res = malloc(sizeof *res + len);
    if (res) res->len = len, res->data = res->raw;
    return res;
}

/* A reply head from r: completes its tasks, or starts receiving the body of a large one. */
static void take_reply(rank_t *r, const unsigned char *msg, size_t len)
{
    if (len < HEAD || get32(msg) != REPLY) return;
    uint32_t count = get32(msg + 4);
    uint64_t body = get64(msg + 8);
    size_t off = HEAD;
    for (uint32_t k = 0; k < count && len - off >= ENTRY; k++) {
        int32_t code = (int32_t)get32(msg + off);
        uint64_t rlen = get64(msg + off + 8);
        off += ENTRY;
        if (body) {
            /* A failure never comes with a body (its message is inline): one that does is
             * drained through the scratch buffer below, never allocated at its size. */
            r->body = code ? NULL : new_result(body);
            r->body_code = code;
            r->nbody = nchunks(body);
            r->body_reqs = r->body ? malloc(r->nbody * sizeof *r->body_reqs) : NULL;
            if (!r->body_reqs) { /* no memory (or a failure): take the chunks through a scratch */
                free(r->body);
                r->body = NULL;
                unsigned char *scratch = malloc(CHUNK);
                for (int c = 0; c < nchunks(body); c++)
                    MPI_Recv(scratch, scratch ? CHUNK : 0, MPI_BYTE, r->peer, TAG_BODY, r->comm,
                             MPI_STATUS_IGNORE);
                free(scratch);
                weft_future_t *f = pop_inflight(r);
                if (f) complete(f, code ? code : WEFT_ENOMEM, NULL, NULL);
                return;
            }
            for (int c = 0; c < r->nbody; c++)
                MPI_Irecv(r->body->raw + (size_t)c * CHUNK, chunk_len(body, c), MPI_BYTE, r->peer,
                          TAG_BODY, r->comm, &r->body_reqs[c]);
            return;
        }
        if (len - off < rlen) return;
        result_t *res = code ? NULL : new_result(rlen);
        if (res) memcpy(res->raw, msg + off, rlen);
        /* A failure's message: its bytes up to the first NUL, at most MESSAGE_MAX of them
         * whatever length the peer claims (they are in msg, whose length MPI gave). */
        char message[MESSAGE_MAX + 1];
        size_t mlen =
            code ? strnlen((const char *)msg + off, rlen < MESSAGE_MAX ? rlen : MESSAGE_MAX) : 0;
        memcpy(message, msg + off, mlen);
        message[mlen] = 0;
        off += rlen;
        weft_future_t *f = pop_inflight(r);
        if (f) complete(f, code || res ? code : WEFT_ENOMEM, res, mlen ? message : NULL);
    }
}

/* Takes what r has sent, without waiting; true if anything came. */
static bool take_replies(rank_t *r)
{
    bool got = false;
    for (;;) {
        if (r->body) {
            int done = 0;
            MPI_Testall(r->nbody, r->body_reqs, &done, MPI_STATUSES_IGNORE);
            if (!done) return got;
            free(r->body_reqs);
            r->body_reqs = NULL;
            result_t *res = r->body;
            r->body = NULL;
            weft_future_t *f = pop_inflight(r);
            if (f)
                complete(f, r->body_code, r->body_code ? (free(res), NULL) : res, NULL);
            else
                free(res);
            got = true;
            continue;
        }
        if (weft__list_empty(&r->inflight)) return got;
        int flag = 0, len = 0;
        MPI_Message msg;
        MPI_Status st;
        MPI_Improbe(r->peer, TAG_MSG, r->comm, &flag, &msg, &st);
        if (!flag) return got;
        MPI_Get_count(&st, MPI_BYTE, &len);
        unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
        MPI_Mrecv(buf, buf ? len : 0, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
        if (buf) take_reply(r, buf, (size_t)len);
        free(buf);
        got = true;
    }
}

/* Completes the sends that are done; true if any was. */
static bool reap_sends(void)
{
    bool any = false;
    for (size_t i = 0; i < E.nsends;) {
        int done = 0;
        MPI_Test(&E.sends[i].req, &done, MPI_STATUS_IGNORE);
        if (!done) {
            i++;
            continue;
        }
        free(E.sends[i].buf);
        if (E.sends[i].task) task_unref(E.sends[i].task);
        E.sends[i] = E.sends[--E.nsends];
        any = true;
    }
    return any;
}

/* A rank died: MPI cannot go on with it, so every future queued or in flight fails with
 * WEFT_EBROKEN, and so do later submits. Requests to the dead rank are left to MPI_Finalize
 * (their buffers are freed after it). */
static void break_engine(void)
{
    lock();
    E.broken = true;
    weft__list_t all = {NULL, NULL};
    for (mpool_t *p = E.pools; p; p = p->next) weft__list_append(&all, &p->queue);
    E.queued = 0;
    unlock();
    for (size_t i = 0; i < E.nranks; i++) {
        rank_t *r = &E.ranks[i];
        if (r->body) {
            for (int c = 0; c < r->nbody; c++) {
                MPI_Cancel(&r->body_reqs[c]);
                MPI_Request_free(&r->body_reqs[c]);
            }
            free(r->body_reqs);
            free(r->body);
            r->body = NULL;
            r->body_reqs = NULL;
        }
        weft__list_append(&all, &r->inflight);
        r->batches = 0;
    }
    weft__list_node_t *n;
    while ((n = weft__list_pop_front(&all))) complete(weft__future_of(n), WEFT_EBROKEN, NULL, NULL);
}

/* ---- the MPI thread: the heartbeat ------------------------------------------------------------
 */

static unsigned char ping_msg[HEAD]; /* every ping's bytes (set before the MPI thread starts) */

/* The heartbeat of rank r at time now: takes its pongs; pings it when it has tasks in flight,
 * none is unanswered and the interval has passed. True when its ping has gone unanswered
 * longer than the timeout: the rank is dead (or stopped: it will not run its tasks). The pongs
 * are taken before the verdict, so a submitter that was slow itself sees those waiting. */
static bool silent(rank_t *r, int64_t now)
{
    while (r->ping_at) { /* a pong only answers a ping: none is looked for without one */
        int flag = 0;
        MPI_Message msg;
        MPI_Status st;
        MPI_Improbe(r->peer, TAG_BEAT, r->comm, &flag, &msg, &st);
        if (!flag) break;
        unsigned char pong[HEAD]; /* a longer message is cut (MPI_ERR_TRUNCATE), never grown */
        MPI_Mrecv(pong, HEAD, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
        r->ping_at = 0;
    }
    if (r->ping_at) return E.dead_ns != INT64_MAX && now - r->ping_at > E.dead_ns;
    if (weft__list_empty(&r->inflight) || E.dead_ns == INT64_MAX || E.beat_ns == INT64_MAX ||
        now - r->last_ping < E.beat_ns)
        return false;
    MPI_Request req;
    if (MPI_Isend(ping_msg, HEAD, MPI_BYTE, r->peer, TAG_BEAT, r->comm, &req) != MPI_SUCCESS)
        return false;
    if (!track_send(req, NULL, NULL)) MPI_Request_free(&req); /* it completes on its own */
    r->ping_at = r->last_ping = now;
    return false;
}

/* A worker rank is dead (its pidfd fired, or, silent, its heartbeat stopped): the engine
 * breaks, and the futures it fails say which rank it was. */
static void rank_dead(rank_t *r, bool silent)
{
    r->dead = r->gone = true;
    E.rank_died = true;
    char on[32] = "";
    if (r->pidfd < 0) snprintf(on, sizeof on, " on another host");
    if (silent)
        snprintf(E.broken_why, sizeof E.broken_why,
                 "%sworker rank %d (pid %lld%s) stopped answering the heartbeat for %.1f s: the "
                 "MPI pool is broken",
                 r->owner ? "spawned " : "", r->peer, (long long)r->pid, on,
                 (double)E.dead_ns / 1e9);
    else
        snprintf(E.broken_why, sizeof E.broken_why,
                 "%sworker rank %d (pid %lld%s) died: the MPI pool is broken",
                 r->owner ? "spawned " : "", r->peer, (long long)r->pid, on);
    break_engine();
}

/* ---- the MPI thread: ranks, commands, the loop ------------------------------------------------
 */

enum { ID_LEN = 128 }; /* boot id + host name, then the pid in the last 8 bytes */

static void my_id(char *id)
{
    memset(id, 0, ID_LEN);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (f) {
        if (!fgets(id, 64, f)) id[0] = 0;
        fclose(f);
    }
    size_t n = strlen(id);
    gethostname(id + n, ID_LEN - n - 16);
    int64_t pid = getpid();
    memcpy(id + ID_LEN - 8, &pid, 8);
}

/* Adds the n ranks of comm whose ids are ids[ID_LEN * k] (k = first..first+n-1 are peers
 * first..), watching the pids of those on this host. */
static int add_ranks(MPI_Comm comm, int first, int n, const char *ids, mpool_t *owner)
{
    rank_t *more = realloc(E.ranks, (E.nranks + (size_t)n) * sizeof *more);
    if (!more) return WEFT_ENOMEM;
    E.ranks = more;
    char me[ID_LEN];
    my_id(me);
    for (int k = 0; k < n; k++) {
        const char *id = ids + (size_t)ID_LEN * (first + k);
        int64_t pid;
        memcpy(&pid, id + ID_LEN - 8, 8);
        int fd = -1;
        if (memcmp(id, me, ID_LEN - 8) == 0) fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
        E.ranks[E.nranks++] = (rank_t){
            .comm = comm, .peer = first + k, .owner = owner, .pidfd = fd < 0 ? -1 : fd, .pid = pid};
    }
    return 0;
}

static void exit_rank(rank_t *r)
{
    unsigned char msg[HEAD];
    head(msg, EXIT, E.rank_died, 0); /* count 1: a rank died, leave without MPI_Finalize */
    if (!r->dead) MPI_Send(msg, HEAD, MPI_BYTE, r->peer, TAG_MSG, r->comm); /* eager: 16 bytes */
    r->gone = true;
}

/* Removes the ranks of pool p (spawned) after telling them to leave, and disconnects them. */
static void drop_ranks(mpool_t *p)
{
    MPI_Comm comm = MPI_COMM_NULL;
    bool dead = false; /* a dead rank cannot disconnect: the communicator is left to MPI */
    size_t k = 0;
    for (size_t i = 0; i < E.nranks; i++) {
        rank_t *r = &E.ranks[i];
        if (r->owner != p) {
            E.ranks[k++] = *r;
            continue;
        }
        if (!r->gone) exit_rank(r);
        dead |= r->dead;
        if (r->pidfd >= 0) close(r->pidfd);
        comm = r->comm;
    }
    E.nranks = k;
    if (comm != MPI_COMM_NULL && !dead) MPI_Comm_disconnect(&comm);
}

/* Whether cmd names a program this host can run (as execvp finds it): Open MPI's
 * MPI_Comm_spawn waits forever for one that cannot start. */
static bool runnable(const char *cmd)
{
    if (strchr(cmd, '/')) return access(cmd, X_OK) == 0;
    const char *path = getenv("PATH");
    char buf[4096];
    for (const char *dir = path ? path : "/usr/bin:/bin"; *dir;) {
        size_t n = strcspn(dir, ":");
        if (snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n ? dir : ".", cmd) < (int)sizeof buf &&
            access(buf, X_OK) == 0)
            return true;
        dir += n + (dir[n] == ':');
    }
    return false;
}

static int spawn(mpool_t *p, const weft_mpi_pool_opts_t *o)
{
    int n = o->spawn_nprocs ? o->spawn_nprocs : 1;
    int *errs = malloc((size_t)n * sizeof *errs);
    char *ids = malloc((size_t)n * ID_LEN);
    MPI_Comm inter = MPI_COMM_NULL;
    int rc = errs && ids ? 0 : WEFT_ENOMEM;
    if (!rc && MPI_Comm_spawn(o->spawn_command, o->spawn_argv ? o->spawn_argv : MPI_ARGV_NULL, n,
                              MPI_INFO_NULL, 0, MPI_COMM_SELF, &inter, errs) != MPI_SUCCESS)
        rc = WEFT_EIO;
    if (!rc) {
        MPI_Comm_set_errhandler(inter, MPI_ERRORS_RETURN);
        MPI_Gather(NULL, 0, MPI_BYTE, ids, ID_LEN, MPI_BYTE, MPI_ROOT, inter);
    }
    if (!rc) rc = add_ranks(inter, 0, n, ids, p);
    if (rc && inter != MPI_COMM_NULL) MPI_Comm_disconnect(&inter);
    free(errs);
    free(ids);
    return rc;
}

/* Frees the pools that were destroyed and have nothing left, with their spawned ranks. */
static void reap_pools(void)
{
    lock();
    E.beat_ns = E.dead_ns = INT64_MAX; /* the heartbeat: the smallest of the pools' options */
    for (mpool_t **pp = &E.pools; *pp;) {
        mpool_t *p = *pp;
        if (!p->gone || p->outstanding) {
            if (p->beat_ns < E.beat_ns) E.beat_ns = p->beat_ns;
            if (p->dead_ns < E.dead_ns) E.dead_ns = p->dead_ns;
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        unlock();
        if (p->spawned) drop_ranks(p);
        weft_event_destroy(&p->idle);
        free(p);
        lock();
    }
    unlock();
}

/* The start of finalize (command c): every pool is shut (submits: WEFT_ESHUTDOWN); the queued
 * futures of the pools still held fail with WEFT_ESHUTDOWN (their owner gave no word that they
 * should run); those of the released pools stay queued, as release promised that they run.
 * The MPI thread goes on until nothing is queued or in flight (finalize_if_drained). */
static void start_finalize(cmd_t *c)
{
    weft__list_t fail = {NULL, NULL};
    lock();
    for (mpool_t *p = E.pools; p; p = p->next) {
        p->shut = true;
        if (!p->gone) {
            for (weft__list_node_t *n = p->queue.head; n; n = n->next) E.queued--;
            weft__list_append(&fail, &p->queue);
        }
        if (!p->outstanding) weft_event_set(&p->idle);
    }
    unlock();
    weft__list_node_t *n;
    while ((n = weft__list_pop_front(&fail)))
        complete(weft__future_of(n), WEFT_ESHUTDOWN, NULL, NULL);
    E.fin = c;
}

/* The end of finalize, once no pool has a future queued or in flight (every result taken, or
 * the engine broken): the ranks are told to leave and the finalize command is done. True
 * then (the MPI thread leaves). */
static bool finalize_if_drained(void)
{
    if (!E.fin) return false;
    lock();
    size_t left = 0;
    for (mpool_t *p = E.pools; p; p = p->next) left += p->outstanding;
    unlock();
    if (left) return false;
    for (size_t i = 0; i < E.nranks; i++)
        if (!E.ranks[i].gone && !E.ranks[i].owner) exit_rank(&E.ranks[i]);
    for (mpool_t *p = E.pools; p; p = p->next)
        if (p->spawned) drop_ranks(p);
    E.fin->rc = 0;
    weft_event_set(&E.fin->done);
    E.fin = NULL;
    return true;
}

/* Runs the queued commands (finalize only starts: finalize_if_drained ends it). */
static void run_cmds(void)
{
    lock();
    cmd_t *c = E.cmds;
    E.cmds = NULL;
    unlock();
    while (c) {
        cmd_t *next = c->next; /* c is the caller's: gone once done is set */
        if (c->kind == CMD_SPAWN) {
            c->rc = spawn(c->pool, c->opts);
        } else if (c->kind == CMD_REAP) {
            reap_pools();
            c->rc = 0;
        } else {
            start_finalize(c);
            c = next;
            continue;
        }
        weft_event_set(&c->done);
        c = next;
    }
}

static void *engine_main(void *arg)
{
    (void)arg;
    long ns = 0;
    struct pollfd *pfds = NULL;
    size_t pcap = 0;
    for (;;) {
        run_cmds();
        if (finalize_if_drained()) break;
        bool did = false, busy = E.nsends > 0;
        if (!E.broken) did |= dispatch();
        did |= reap_sends();
        for (size_t i = 0; i < E.nranks; i++) {
            did |= take_replies(&E.ranks[i]);
            busy |= !weft__list_empty(&E.ranks[i].inflight) ||
                    (E.ranks[i].ping_at && !E.ranks[i].gone); /* its pong is due */
        }
        reap_pools();
        int64_t now = weft_time_monotonic_ns();
        for (size_t i = 0; i < E.nranks; i++)
            if (!E.ranks[i].gone && silent(&E.ranks[i], now)) {
                rank_dead(&E.ranks[i], true);
                did = true;
            }
        if (pcap < 1 + E.nranks) {
            struct pollfd *more = realloc(pfds, (1 + E.nranks) * sizeof *more);
            if (more) pfds = more, pcap = 1 + E.nranks;
        }
        size_t n = pcap >= 1 + E.nranks ? 1 + E.nranks : 0;
        if (!n) { /* no memory for the poll set: look again soon */
            backoff(&(long){1000000});
            continue;
        }
        pfds[0] = (struct pollfd){.fd = E.efd, .events = POLLIN};
        for (size_t i = 0; i < E.nranks; i++)
            pfds[1 + i] =
                (struct pollfd){.fd = E.ranks[i].gone ? -1 : E.ranks[i].pidfd, .events = POLLIN};
        /* Work done: look again at once; MPI traffic pending: back off, up to half a task's
         * measured time (a rank that finishes a task waits for the next no longer than
         * that), at least 10 us and at most 1 ms; else sleep until poked or a rank dies. */
        long cap = E.task_ns / 2 < 10000     ? 10000
                   : E.task_ns / 2 > 1000000 ? 1000000
                                             : E.task_ns / 2;
        ns = did ? 0 : ns ? (ns * 2 > cap ? cap : ns * 2) : 1000;
        struct timespec ts = {0, did ? 0 : ns};
        if (ppoll(pfds, n, busy || did ? &ts : NULL, NULL) <= 0) continue;
        if (pfds[0].revents) {
            uint64_t count;
            ssize_t r = read(E.efd, &count, sizeof count);
            (void)r;
        }
        for (size_t i = 0; i < E.nranks; i++)
            if (pfds[1 + i].fd >= 0 && pfds[1 + i].revents) rank_dead(&E.ranks[i], false);
    }
    free(pfds);
    return NULL;
}

/* Queues a command for the MPI thread and waits for it. */
static int run_cmd(int kind, mpool_t *p, const weft_mpi_pool_opts_t *o)
{
    cmd_t c = {.kind = kind, .pool = p, .opts = o};
    weft_event_init(&c.done);
    lock();
    c.next = E.cmds;
    E.cmds = &c;
    unlock();
    poke();
    weft_event_wait(&c.done, WEFT_FOREVER);
    weft_event_destroy(&c.done);
    return c.rc;
}

/* ---- starting and ending ------------------------------------------------------------------ */

static void finalize_at_exit(void)
{
    weft_mpi_finalize();
}

/* The submitter's start: the world's workers, the eventfd, the MPI thread. */
static int start_engine(void)
{
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char *ids = malloc((size_t)size * ID_LEN);
    if (!ids) return WEFT_ENOMEM;
    char me[ID_LEN];
    my_id(me);
    MPI_Gather(me, ID_LEN, MPI_BYTE, ids, ID_LEN, MPI_BYTE, 0, MPI_COMM_WORLD);
    int rc = add_ranks(MPI_COMM_WORLD, 1, size - 1, ids, NULL);
    free(ids);
    if (rc) return rc;
    head(ping_msg, PING, 0, 0);
    E.beat_ns = BEAT_NS, E.dead_ns = DEAD_NS;
    E.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (E.efd < 0) return errno == ENOMEM ? WEFT_ENOMEM : WEFT_EMFILE;
    E.owner = getpid();
    if (pthread_create(&E.thread, NULL, engine_main, NULL) != 0) {
        close(E.efd);
        E.efd = -1;
        return WEFT_EAGAIN;
    }
    E.running = true;
    static bool registered;
    if (!registered) registered = atexit(finalize_at_exit) == 0;
    return 0;
}

int weft_mpi_serve(int *argc, char ***argv, bool *was_worker)
{
    if (!was_worker) return WEFT_EINVAL;
    *was_worker = false;
    if (E.serving || E.worker || E.finalized) return WEFT_EALREADY; /* also inside a task */
    int flag = 0, provided = 0;
    MPI_Finalized(&flag);
    if (flag) return WEFT_EALREADY; /* MPI starts once per process */
    MPI_Initialized(&flag);
    if (!flag) {
        if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
            return WEFT_EIO;
        E.our_init = true;
        if (provided < MPI_THREAD_SERIALIZED) return WEFT_ENOTSUP;
    } else {
        MPI_Query_thread(&provided);
        if (provided < MPI_THREAD_MULTIPLE) return WEFT_ENOTSUP;
    }
    /* Errors come back as codes (a task fails, a spawn reports) instead of aborting the job. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
    MPI_Comm parent, world = MPI_COMM_WORLD;
    MPI_Comm_get_parent(&parent);
    if (parent != MPI_COMM_NULL) MPI_Comm_set_errhandler(parent, MPI_ERRORS_RETURN);
    int rank;
    MPI_Comm_rank(world, &rank);
    if (parent != MPI_COMM_NULL || rank > 0) {
        char me[ID_LEN];
        my_id(me);
        MPI_Gather(me, ID_LEN, MPI_BYTE, NULL, 0, MPI_BYTE, 0,
                   parent != MPI_COMM_NULL ? parent : world);
        MPI_Comm comm = parent != MPI_COMM_NULL ? parent : world;
        E.worker = true;
        pthread_t beat;
        beating = pthread_create(&beat, NULL, beat_main, &comm) == 0;
        bool whole = worker_loop(comm);
        if (beating) {
            atomic_store_explicit(&beat_stop, true, memory_order_relaxed);
            pthread_join(beat, NULL);
            beating = false;
        }
        if (whole && parent != MPI_COMM_NULL) MPI_Comm_disconnect(&parent);
        if (whole && E.our_init) MPI_Finalize();
        E.finalized = true;
        *was_worker = true;
        return 0;
    }
    int rc = start_engine();
    if (rc == 0) E.serving = true;
    return rc;
}

int weft_mpi_finalize(void)
{
    if (!E.serving || E.owner != getpid()) return WEFT_EALREADY;
    E.serving = false;
    E.finalized = true;
    run_cmd(CMD_FINALIZE, NULL, NULL);
    pthread_join(E.thread, NULL);
    E.running = false;
    /* After a rank died, Open MPI 4.1's MPI_Finalize can wait forever for it (its fence counts
     * the dead rank): the submitter and the workers told so leave without it. */
    if (E.our_init && !E.rank_died) MPI_Finalize();
    for (size_t i = 0; i < E.nsends; i++) { /* sends to a dead rank never completed */
        free(E.sends[i].buf);
        if (E.sends[i].task) task_unref(E.sends[i].task);
    }
    free(E.sends);
    E.sends = NULL;
    E.nsends = E.scap = 0;
    for (size_t i = 0; i < E.nranks; i++)
        if (E.ranks[i].pidfd >= 0) close(E.ranks[i].pidfd);
    free(E.ranks);
    E.ranks = NULL;
    E.nranks = 0;
    close(E.efd);
    E.efd = -1;
    return 0;
}

/* ---- the executor interface ------------------------------------------------------------------ */

static int mpool_submit(weft_executor_t *ex, weft_future_t *f)
{
    (void)ex, (void)f;
    return WEFT_ENOTSUP; /* a function pointer means nothing on another rank */
}

static int mpool_shutdown(weft_executor_t *ex, bool wait, bool cancel_futures, int64_t deadline)
{
    mpool_t *p = (mpool_t *)ex;
    lock();
    p->shut = true;
    weft__list_t cancel = {NULL, NULL};
    if (cancel_futures) { /* every queued one is PENDING: handed out ones left the queue */
        weft__list_append(&cancel, &p->queue);
        for (weft__list_node_t *n = cancel.head; n; n = n->next) E.queued--;
    }
    if (!p->outstanding) weft_event_set(&p->idle);
    unlock();
    weft__list_node_t *n;
    while ((n = weft__list_pop_front(&cancel))) {
        weft_future_t *f = weft__future_of(n);
        weft_future_cancel(f);
        free(f->arg);
        f->arg = NULL;
        weft_future_release(f);
        lock();
        pool_done_locked(p);
        unlock();
    }
    if (E.running && p->owner == getpid()) poke();
    if (!wait) return 0;
    return weft_event_wait(&p->idle,
                           weft_deadline_remaining((weft_deadline_t){.at_ns_ = deadline}));
}

static void mpool_destroy(weft_executor_t *ex)
{
    mpool_t *p = (mpool_t *)ex;
    mpool_shutdown(ex, false, false, 0);
    lock();
    p->gone = true;
    bool engine = E.running && p->owner == getpid();
    bool free_now = !engine && !p->outstanding;
    if (free_now) /* no MPI thread to reap it: unlink it here */
        for (mpool_t **pp = &E.pools; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                break;
            }
    /* A spawning pool with nothing left is reaped before destroy returns, so its processes
     * are gone with it (not from the MPI thread itself: a callback there cannot wait for it). */
    bool reap = engine && p->spawned && !p->outstanding && !pthread_equal(pthread_self(), E.thread);
    unlock();
    if (reap)
        run_cmd(CMD_REAP, NULL, NULL);
    else if (engine)
        poke();
    if (free_now) {
        weft_event_destroy(&p->idle);
        free(p);
    }
}

static const weft__executor_ops_t mpool_ops = {mpool_submit, mpool_shutdown, mpool_destroy};

/* A heartbeat option in nanoseconds (docs/API.md's duration rule): 0 is def, WEFT_FOREVER
 * (or too long to count) INT64_MAX, other positive values at least 1 ns; false for a negative
 * value other than WEFT_FOREVER, or NaN. */
static bool duration_ns(double s, int64_t def, int64_t *ns)
{
    if (isnan(s) || (s < 0 && s != WEFT_FOREVER)) return false;
    *ns = s == 0 ? def : s == WEFT_FOREVER || s >= 9e9 ? INT64_MAX : (int64_t)(s * 1e9);
    if (*ns < 1) *ns = 1;
    return true;
}

int weft_mpi_pool_create(const weft_mpi_pool_opts_t *opts, weft_executor_t **ex)
{
    if (!ex) return WEFT_EINVAL;
    *ex = NULL;
    weft_mpi_pool_opts_t o = opts ? *opts : (weft_mpi_pool_opts_t){0};
    int64_t beat_ns, dead_ns;
    if (o.spawn_nprocs < 0 || !duration_ns(o.heartbeat_interval, BEAT_NS, &beat_ns) ||
        !duration_ns(o.heartbeat_timeout, DEAD_NS, &dead_ns))
        return WEFT_EINVAL;
    if (E.finalized) return E.rank_died ? WEFT_EBROKEN : WEFT_ESHUTDOWN;
    if (E.worker) return WEFT_ENOTSUP; /* inside a task on a worker rank: no pool there */
    if (!E.serving) {
        bool worker;
        int rc = weft_mpi_serve(NULL, NULL, &worker);
        if (rc == WEFT_EALREADY) return WEFT_ESHUTDOWN; /* MPI was finalized here */
        if (rc) return rc;
        if (worker) return WEFT_ENOTSUP; /* this process was a worker: it served already */
    }
    lock();
    bool broken = E.broken;
    unlock();
    if (E.owner != getpid() || broken) return WEFT_EBROKEN;
    size_t world = 0;
    for (size_t i = 0; i < E.nranks; i++) world += !E.ranks[i].owner;
    if (!o.spawn_command && world == 0) return WEFT_EAGAIN;
    mpool_t *p = calloc(1, sizeof *p);
    if (!p) return WEFT_ENOMEM;
    p->base.ops = &mpool_ops;
    weft__handle_init(&p->base.hd, WEFT__ID_EXECUTOR, 1);
    p->max_workers = o.max_workers;
    p->beat_ns = beat_ns;
    p->dead_ns = dead_ns;
    p->spawned = o.spawn_command != NULL;
    p->owner = getpid();
    weft_event_init(&p->idle);
    if (p->spawned) {
        int rc = runnable(o.spawn_command) ? run_cmd(CMD_SPAWN, p, &o) : WEFT_ENOENT;
        if (rc) {
            weft_event_destroy(&p->idle);
            free(p);
            return rc;
        }
    }
    lock();
    p->next = E.pools;
    E.pools = p;
    unlock();
    *ex = &p->base;
    return 0;
}

int weft_mpi_pool_submit(weft_executor_t *ex, const char *name, const void *arg, size_t len,
                         weft_future_t **out)
{
    if (out) *out = NULL;
    size_t nlen = name ? strlen(name) : 0;
    if (!ex || !name || (!arg && len) || nlen == 0 || nlen > NAME_MAX_LEN) return WEFT_EINVAL;
    if (ex->ops != &mpool_ops) return WEFT_ENOTSUP;
    mpool_t *p = (mpool_t *)ex;
    if (p->owner != getpid()) return WEFT_EBROKEN;
    size_t wire = ENTRY + nlen + len;
    if (len > SIZE_MAX - sizeof(task_t) - ENTRY - NAME_MAX_LEN || len > (uint64_t)INT32_MAX * CHUNK)
        return WEFT_ENOMEM; /* no such memory, or more chunks than MPI can count */
    task_t *t = malloc(sizeof *t + wire);
    weft_future_t *f = NULL;
    if (!t || weft_future_create(&f) != 0) {
        free(t);
        return WEFT_ENOMEM;
    }
    *t = (task_t){.pool = p, .refs = 1, .len = len, .wire = wire};
    memset(t->data, 0, ENTRY);
    put32(t->data, (uint32_t)nlen);
    put64(t->data + 8, len);
    memcpy(t->data + ENTRY, name, nlen);
    if (len) memcpy(t->data + ENTRY + nlen, arg, len);
    f->arg = t;
    f->dispose = free;              /* of its result bytes */
    if (out) weft_future_retain(f); /* one for the caller, one for the queue */
    lock();
    int rc = E.broken ? WEFT_EBROKEN : p->shut ? WEFT_ESHUTDOWN : 0;
    bool poke_it = weft__list_empty(&p->queue);
    if (!rc) {
        weft__list_push_back(&p->queue, &f->node);
        p->outstanding++;
        E.queued++;
    }
    unlock();
    if (rc) {
        f->arg = NULL;
        free(t);
        weft_future_release(f);
        if (out) weft_future_release(f);
        return rc;
    }
    if (poke_it) poke();
    if (out) *out = f;
    return 0;
}

/* A task of weft_mpi_pool_map: task is its name. */
static int submit_bytes(weft_executor_t *ex, const void *task, weft_bytes_t arg,
                        weft_future_t **out)
{
    return weft_mpi_pool_submit(ex, task, arg.data, arg.len, out);
}

int weft_mpi_pool_map(weft_executor_t *ex, const char *name, const weft_bytes_t *args, size_t n,
                      weft_bytes_t *results, double timeout, size_t *ndone)
{
    size_t nlen = name ? strlen(name) : 0;
    int kind = name && (nlen == 0 || nlen > NAME_MAX_LEN) ? WEFT_EINVAL
               : ex && ex->ops != &mpool_ops              ? WEFT_ENOTSUP
                                                          : 0;
    return weft__map_bytes(ex, submit_bytes, name, kind, args, n, results, timeout, ndone);
}
