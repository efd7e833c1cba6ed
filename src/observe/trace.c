/*
 * trace.c — the trace of weft/trace.h: the sink the lower layers report to (core_internal.h's
 * weft__trace_sink), per-thread buffers, and the JSON writer.
 *
 * Data: a trace (a "session") is numbered by `session` (0: none runs). Each thread appends
 * records (rec_t, fixed size, names copied) to its own chunk (`mine`, CHUNK_RECS records):
 * the owner writes a record, then publishes it by a release store of chunk->n, so a writer
 * on another thread reads records [0, n) of a chunk still being filled. Chunks of the running
 * session are on one of two lists under `lock`: `live` (a thread is filling it) and `done`
 * (full, or its thread exited: a pthread key's destructor hands it over). An event takes
 * `lock` only when its thread needs a new chunk.
 *
 * Invariants: a chunk is freed only by its owner thread, or by whoever holds `lock` once it is
 * on no list (done, or a live chunk of the caller of stop); stop takes every other live chunk
 * off the list and leaves it to its owner, which frees it when it sees chunk->gen differ
 * from `session` (its next event, or its exit). `ctl` serializes start, flush and stop, and
 * guards `fd`, `path`; `lock` (a leaf: nothing is called under it but the allocator) guards
 * the lists and the counts. The file is written under both.
 */
#include "../core/core_internal.h"
#include "../core/sys_internal.h"
#include "../wait/wait_internal.h"
#include "weft/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { CHUNK_RECS = 256, MAX_EVENTS = 1 << 20, MAX_CHUNKS = MAX_EVENTS / CHUNK_RECS };

typedef struct rec {
    int64_t t0, t1;
    uint64_t id, flow;
    const void *obj;
    int64_t arg;
    uint8_t type, kind, on;
    char name[WEFT__NAME_MAX];
} rec_t;

typedef struct chunk {
    weft__list_node_t link; /* on its list (under `lock`) */
    uint64_t gen;           /* the session it records; fixed at creation */
    bool live;              /* on `live` (under `lock`) */
    int tid;
    char thread[16];
    _Atomic uint32_t n; /* records published */
    rec_t recs[CHUNK_RECS];
} chunk_t;

static weft__mutex_t ctl = WEFT__MUTEX_INIT;
static weft__mutex_t lock = WEFT__MUTEX_INIT;
static _Atomic uint64_t session; /* the running trace's number, 0: none */
static uint64_t sessions;        /* numbers handed out (under ctl) */
static _Atomic int64_t started;  /* when it started: older events (a stale run start) dropped */
static weft__list_t live, done;  /* chunk_t.link, the newest first; under lock */
static size_t nchunks;           /* of this session (under lock) */
static _Atomic uint64_t dropped;
static int fd = -1; /* under ctl */
static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key_error;
static WEFT__TLS chunk_t *mine;

/* ---- lists ------------------------------------------------------------------------------- */

static chunk_t *chunk_of(const weft__list_node_t *n)
{
    return n ? weft__container_of(n, chunk_t, link) : NULL;
}

/* The chunk after c on its list (the first of `list` for NULL). */
static chunk_t *next_chunk(const weft__list_t *list, const chunk_t *c)
{
    return chunk_of(c ? weft__list_next(&c->link) : weft__list_first(list));
}

/* The caller holds `lock`: c (its owner's, or its exited owner's) stops being filled. */
static void retire_locked(chunk_t *c)
{
    if (c->live && c->gen == atomic_load_explicit(&session, memory_order_relaxed)) {
        weft__list_remove(&live, &c->link);
        c->live = false;
        weft__list_push_front(&done, &c->link);
    } else if (!c->live) {
        weft__free(c); /* an orphan of a stopped trace */
    }
}

static void thread_exit(void *arg)
{
    chunk_t *c = arg;
    weft__mutex_lock(&lock);
    retire_locked(c);
    weft__mutex_unlock(&lock);
    if (mine == c) mine = NULL;
}

static void make_key(void)
{
    key_error = pthread_key_create(&key, thread_exit) ? WEFT_ENOMEM : 0;
}

/* A fresh chunk for the calling thread (its old one, if any, retired); NULL: none (the trace
 * stopped, the cap is reached, or no memory). */
static chunk_t *new_chunk(chunk_t *old, uint64_t gen)
{
    chunk_t *c = NULL;
    weft__mutex_lock(&lock);
    if (old) retire_locked(old);
    mine = NULL;
    if (gen == atomic_load_explicit(&session, memory_order_relaxed) && nchunks < MAX_CHUNKS &&
        (c = weft__malloc(sizeof *c))) {
        c->gen = gen;
        c->live = true;
        c->tid = (int)syscall(SYS_gettid);
        if (prctl(PR_GET_NAME, c->thread) != 0) c->thread[0] = '\0';
        c->thread[sizeof c->thread - 1] = '\0';
        atomic_init(&c->n, 0);
        weft__list_push_front(&live, &c->link);
        nchunks++;
        mine = c;
    }
    weft__mutex_unlock(&lock);
    /* The key's slot is preallocated for keys below PTHREAD_KEY_2NDLEVEL_SIZE; failing, the
     * chunk is still handed over by stop or the exit writer, only not at this thread's exit. */
    if (c && !key_error) (void)pthread_setspecific(key, c);
    return c;
}

/* ---- the sink ---------------------------------------------------------------------------- */

/* Kinds whose obj is a number (an fd, a pid), not an object with a name. */
static bool obj_is_number(unsigned on)
{
    return on == WEFT__ON_FD_READ || on == WEFT__ON_FD_WRITE || on == WEFT__ON_PROCESS_JOIN;
}

/* strlcpy into a record's name (snprintf costs more than the rest of an event). */
static void copy_name(char *dst, const char *src)
{
    size_t i = 0;
    for (; i < WEFT__NAME_MAX - 1 && src[i]; i++) dst[i] = src[i];
    dst[i] = '\0';
}

static void sink(const weft__trace_ev_t *ev)
{
    /* Acquire: pairs with start's release, so `started` and the key are set. */
    uint64_t gen = atomic_load_explicit(&session, memory_order_acquire);
    if (!gen) return;
    int64_t t0 = ev->t0, since = atomic_load_explicit(&started, memory_order_relaxed);
    if (t0 < since) {
        /* A park that began before this trace and ended in it is clipped at its start (its
         * wake may be in the trace); anything else from before is left out. */
        if (ev->type != WEFT__TR_PARK || ev->t1 < since) return;
        t0 = since;
    }
    chunk_t *c = mine;
    if (!c || c->gen != gen || atomic_load_explicit(&c->n, memory_order_relaxed) == CHUNK_RECS)
        c = new_chunk(c, gen);
    if (!c) {
        atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed); /* a count: relaxed */
        return;
    }
    uint32_t n = atomic_load_explicit(&c->n, memory_order_relaxed); /* only we write it */
    rec_t *r = &c->recs[n];
    r->t0 = t0;
    r->t1 = ev->t1;
    r->id = ev->id;
    r->flow = ev->flow;
    r->obj = ev->obj;
    r->arg = ev->arg;
    r->type = ev->type;
    r->kind = ev->kind;
    r->on = ev->on;
    r->name[0] = '\0';
    if (ev->name)
        copy_name(r->name, ev->name);
    else if ((ev->type == WEFT__TR_PARK || ev->type == WEFT__TR_WAKE) && ev->obj &&
             !obj_is_number(ev->on))
        (void)weft__name_get(ev->obj, r->name, sizeof r->name);
    atomic_store_explicit(&c->n, n + 1, memory_order_release); /* publishes the record */
}

/* ---- the writer -------------------------------------------------------------------------- */

typedef struct out {
    int fd;
    int error;
    size_t len;
    char buf[16384];
} out_t;

static void out_flush(out_t *o)
{
    size_t off = 0;
    while (off < o->len && !o->error) {
        ssize_t k = weft__sys_write(o->fd, o->buf + off, o->len - off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            o->error = k < 0 ? weft__errno(errno) : WEFT_EIO;
        else
            off += (size_t)k;
    }
    o->len = 0;
}

__attribute__((format(printf, 2, 3))) static void put(out_t *o, const char *fmt, ...)
{
    if (sizeof o->buf - o->len < 512) out_flush(o);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    if (k > 0)
        o->len += (size_t)k < sizeof o->buf - o->len ? (size_t)k : sizeof o->buf - o->len - 1;
}

/* s as the inside of a JSON string. */
static void put_str(out_t *o, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            put(o, "\\%c", ch);
        else if (ch < 0x20)
            put(o, "\\u%04x", ch);
        else
            put(o, "%c", ch);
    }
}

/* Microseconds with the nanoseconds as decimals. */
static void put_us(out_t *o, const char *key_, int64_t ns)
{
    put(o, ",\"%s\":%" PRId64 ".%03d", key_, ns / 1000, (int)(ns % 1000));
}

/* What a park or wake waits on: "Queue 'jobs' get", "fd 7 read", "Lock". */
static void what(const rec_t *r, char *buf, size_t n)
{
    const char *words = weft__on_name(r->on);
    const char *rest = strchr(words, ' ');
    int head = rest ? (int)(rest - words) : (int)strlen(words);
    if (!rest) rest = "";
    if (obj_is_number(r->on))
        snprintf(buf, n, "%.*s %" PRIdPTR "%s", head, words, (intptr_t)r->obj, rest);
    else if (r->name[0])
        snprintf(buf, n, "%.*s '%s'%s", head, words, r->name, rest);
    else
        snprintf(buf, n, "%s", words);
}

static const char *outcome(int64_t arg)
{
    return arg == 0                ? "woken"
           : arg == WEFT_ECANCELED ? "canceled"
           : arg == WEFT_EDEADLK   ? "deadlock"
                                   : "timeout";
}

/* The common tail of an event: pid, tid, ts. */
static void head(out_t *o, const char *ph, const char *cat, int pid, int tid, int64_t ts)
{
    put(o, ",\n{\"ph\":\"%s\",\"cat\":\"%s\",\"pid\":%d,\"tid\":%d", ph, cat, pid, tid);
    put_us(o, "ts", ts);
}

static void put_name(out_t *o, const char *prefix, const char *name)
{
    put(o, ",\"name\":\"%s", prefix);
    put_str(o, name);
    put(o, "\"");
}

static void write_rec(out_t *o, const rec_t *r, int pid, int tid)
{
    char w[WEFT__NAME_MAX + 64];
    switch (r->type) {
    case WEFT__TR_RUN:
        head(o, "X", "coroutine", pid, tid, r->t0);
        put_us(o, "dur", r->t1 - r->t0);
        put_name(o, "", r->name[0] ? r->name : "coroutine");
        put(o, ",\"args\":{\"co\":\"%p\"}}", r->obj);
        break;
    case WEFT__TR_PARK:
        what(r, w, sizeof w);
        if (r->kind == WEFT__CTX_COROUTINE) {
            head(o, "b", "park", pid, tid, r->t0);
            put(o, ",\"id\":\"0x%" PRIx64 "\"", r->id);
            put_name(o, "", w);
            put(o, ",\"args\":{\"outcome\":\"%s\"}}", outcome(r->arg));
            head(o, "e", "park", pid, tid, r->t1);
            put(o, ",\"id\":\"0x%" PRIx64 "\"", r->id);
            put_name(o, "", w);
            put(o, "}");
        } else {
            head(o, "X", "park", pid, tid, r->t0);
            put_us(o, "dur", r->t1 - r->t0);
            put_name(o, "wait: ", w);
            put(o, ",\"args\":{\"on\":\"");
            put_str(o, w);
            put(o, "\",\"outcome\":\"%s\"}}", outcome(r->arg));
        }
        if (r->flow) {
            /* Inside the slice that ends at t1 (the park's, or the resumed coroutine's run). */
            head(o, "f", "wake", pid, tid, r->t1 > r->t0 ? r->t1 - 1 : r->t1);
            put(o, ",\"bp\":\"e\",\"name\":\"wake\",\"id\":%" PRIu64 "}", r->flow);
        }
        break;
    case WEFT__TR_WAKE:
        what(r, w, sizeof w);
        head(o, "X", "wake", pid, tid, r->t0);
        put(o, ",\"dur\":0");
        put_name(o, "wake: ", w);
        put(o, "}");
        head(o, "s", "wake", pid, tid, r->t0);
        put(o, ",\"name\":\"wake\",\"id\":%" PRIu64 "}", r->flow);
        break;
    case WEFT__TR_TASK_SUBMIT:
        head(o, "b", "task", pid, tid, r->t0);
        put(o, ",\"id\":\"0x%" PRIx64 "\",\"name\":\"task %" PRIu64 "\",\"args\":{\"pool\":\"",
            r->id, r->id);
        put_str(o, r->name);
        put(o, "\"}}");
        break;
    case WEFT__TR_TASK_RUN:
        head(o, "X", "task", pid, tid, r->t0);
        put_us(o, "dur", r->t1 - r->t0);
        put(o, ",\"name\":\"task %" PRIu64 " run\"}", r->id);
        break;
    case WEFT__TR_TASK_DONE:
        head(o, "e", "task", pid, tid, r->t0);
        put(o,
            ",\"id\":\"0x%" PRIx64 "\",\"name\":\"task %" PRIu64
            "\",\"args\":{\"outcome\":\"%s\",\"error\":%" PRId64 "}}",
            r->id, r->id,
            r->flow  ? "cancelled"
            : r->arg ? "error"
                     : "result",
            r->arg);
        break;
    case WEFT__TR_PROC_START:
    case WEFT__TR_PROC_EXIT:
        head(o, r->type == WEFT__TR_PROC_START ? "b" : "e", "process", pid, tid, r->t0);
        put(o, ",\"id\":\"0x%" PRIx64 "\"", r->id);
        put_name(o, "process ", r->name);
        put(o, ",\"args\":{\"pid\":%" PRIu64, r->id);
        if (r->type == WEFT__TR_PROC_EXIT) {
            if (r->flow)
                put(o, ",\"status\":%" PRId64, r->arg);
            else
                put(o, ",\"status\":null");
        }
        put(o, "}}");
        break;
    default:
        break;
    }
}

/* The tids named so far in the file being written (under ctl): an open-addressed set, with
 * room for every chunk's tid (nchunks <= MAX_CHUNKS), so it never fills. */
static int named[2 * MAX_CHUNKS];

/* Adds tid to `named`; false: it was there. */
static bool name_once(int tid)
{
    size_t mask = sizeof named / sizeof named[0] - 1;
    for (size_t i = ((unsigned)tid * 2654435761u) & mask;; i = (i + 1) & mask) {
        if (named[i] == tid) return false;
        if (named[i] == 0) {
            named[i] = tid;
            return true;
        }
    }
}

/* The "M" thread_name of c's thread, unless the file names it already. The newest chunk of a
 * thread comes first (see write_file), so a renamed thread gets its newest name. */
static void write_thread_name(out_t *o, const chunk_t *c, int pid)
{
    if (!name_once(c->tid)) return;
    head(o, "M", "__metadata", pid, c->tid, 0);
    put(o, ",\"name\":\"thread_name\",\"args\":{\"name\":\"");
    put_str(o, c->thread[0] ? c->thread : "thread");
    put(o, "\"}}");
}

static void write_chunk(out_t *o, const chunk_t *c, int pid)
{
    /* Acquire: the records below n were written before it was published. */
    uint32_t n = atomic_load_explicit(&c->n, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) write_rec(o, &c->recs[i], pid, c->tid);
}

/* Writes the whole file from the start; the caller holds ctl. */
static int write_file(void)
{
    static out_t o; /* under ctl; static: 16 kB is much for a coroutine's stack */
    o.fd = fd;
    o.error = 0;
    o.len = 0;
    if (weft__sys_ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) return weft__errno(errno);
    int pid = (int)getpid();
    put(&o,
        "{\"traceEvents\":[\n{\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"ts\":0,"
        "\"name\":\"process_name\",\"args\":{\"name\":\"",
        pid);
    put_str(&o, program_invocation_short_name);
    put(&o, "\"}}");
    weft__mutex_lock(&lock);
    /* Each thread named once: a thread's live chunk is its newest, and `done` is newest first
     * (a thread retires its chunks in the order it filled them, each pushed at the head). */
    memset(named, 0, sizeof named);
    for (const chunk_t *c = next_chunk(&live, NULL); c; c = next_chunk(&live, c))
        write_thread_name(&o, c, pid);
    for (const chunk_t *c = next_chunk(&done, NULL); c; c = next_chunk(&done, c))
        write_thread_name(&o, c, pid);
    for (const chunk_t *c = next_chunk(&done, NULL); c; c = next_chunk(&done, c))
        write_chunk(&o, c, pid);
    for (const chunk_t *c = next_chunk(&live, NULL); c; c = next_chunk(&live, c))
        write_chunk(&o, c, pid);
    weft__mutex_unlock(&lock);
    put(&o,
        "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{\"clock\":\"CLOCK_MONOTONIC\","
        "\"dropped\":%" PRIu64 "}}\n",
        atomic_load_explicit(&dropped, memory_order_relaxed));
    out_flush(&o);
    return o.error;
}

/* ---- the API ----------------------------------------------------------------------------- */

static void exit_rule(void);
static const weft__exit_rule_t rule = {WEFT__LAYER_CORE, exit_rule}; /* last: after every join */

/* path with "%p" replaced by the pid, into buf; false: too long. */
static bool expand(const char *path, char *buf, size_t n)
{
    size_t k = 0;
    for (const char *s = path; *s; s++) {
        char num[24];
        const char *add = num;
        if (s[0] == '%' && s[1] == 'p') {
            snprintf(num, sizeof num, "%d", (int)getpid());
            s++;
        } else {
            num[0] = *s;
            num[1] = '\0';
        }
        size_t len = strlen(add);
        if (k + len >= n) return false;
        memcpy(buf + k, add, len);
        k += len;
    }
    buf[k] = '\0';
    return true;
}

int weft_trace_start(const char *path)
{
    if (!path || !path[0]) return WEFT_EINVAL;
    char full[4096];
    if (!expand(path, full, sizeof full)) return WEFT_ENAMETOOLONG;
    pthread_once(&key_once, make_key);
    weft__mutex_lock(&ctl);
    int rc = 0;
    if (atomic_load_explicit(&session, memory_order_relaxed)) {
        rc = WEFT_EALREADY;
        goto out;
    }
    if ((rc = weft__exit_register(&rule))) goto out;
    fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = weft__errno(errno);
        goto out;
    }
    weft__mutex_lock(&lock);
    nchunks = 0;
    atomic_store_explicit(&dropped, 0, memory_order_relaxed);
    atomic_store_explicit(&started, weft_time_monotonic_ns(), memory_order_relaxed);
    atomic_store_explicit(&session, ++sessions, memory_order_release);
    weft__mutex_unlock(&lock);
    atomic_store_explicit(&weft__trace_sink, sink, memory_order_relaxed); /* set once, kept */
    atomic_fetch_or_explicit(&weft__observing, WEFT__OBSERVE_TRACE, memory_order_relaxed);
out:
    weft__mutex_unlock(&ctl);
    return rc;
}

int weft_trace_flush(void)
{
    weft__mutex_lock(&ctl);
    int rc = atomic_load_explicit(&session, memory_order_relaxed) ? write_file() : WEFT_EINVAL;
    weft__mutex_unlock(&ctl);
    return rc;
}

int weft_trace_stop(void)
{
    weft__mutex_lock(&ctl);
    if (!atomic_load_explicit(&session, memory_order_relaxed)) {
        weft__mutex_unlock(&ctl);
        return WEFT_EINVAL;
    }
    /* Off first: the events still arriving go to the chunks written below, or are dropped. */
    atomic_fetch_and_explicit(&weft__observing, ~(uint32_t)WEFT__OBSERVE_TRACE,
                              memory_order_relaxed);
    int rc = write_file();
    weft__mutex_lock(&lock);
    atomic_store_explicit(&session, 0, memory_order_relaxed);
    for (chunk_t *c; (c = chunk_of(weft__list_pop_front(&done)));) weft__free(c);
    for (chunk_t *c; (c = chunk_of(weft__list_pop_front(&live)));) {
        c->live = false; /* its owner frees it */
        if (c == mine) {
            weft__free(c);
            mine = NULL;
            if (!key_error) (void)pthread_setspecific(key, NULL);
        }
    }
    nchunks = 0;
    weft__mutex_unlock(&lock);
    weft__sys_close(fd);
    fd = -1;
    weft__mutex_unlock(&ctl);
    return rc;
}

static void exit_rule(void)
{
    if (atomic_load_explicit(&session, memory_order_relaxed)) (void)weft_trace_stop();
}

/* WEFT_TRACE=<path>: a trace from the library's load to the exit. */
__attribute__((constructor)) static void trace_from_env(void)
{
    const char *path = weft__getenv("WEFT_TRACE");
    if (!path || !path[0]) return;
    int rc = weft_trace_start(path);
    if (rc)
        fprintf(stderr, "weft: WEFT_TRACE=%s: cannot trace: %s\n", path, weft_error_message(rc));
}

/* ---- fork -------------------------------------------------------------------------------- */

static void fork_prepare(void)
{
    weft__mutex_lock(&lock);
}

static void fork_parent(void)
{
    weft__mutex_unlock(&lock);
}

/* The child does not trace: its copy of the parent's trace goes (not written, not leaked). */
static void fork_child(void)
{
    lock = (weft__mutex_t)WEFT__MUTEX_INIT;
    if (!atomic_load_explicit(&session, memory_order_relaxed) && weft__list_empty(&live) &&
        weft__list_empty(&done))
        return;
    atomic_fetch_and_explicit(&weft__observing, ~(uint32_t)WEFT__OBSERVE_TRACE,
                              memory_order_relaxed);
    atomic_store_explicit(&session, 0, memory_order_relaxed);
    for (weft__list_t *list = &done; list; list = list == &done ? &live : NULL) {
        for (chunk_t *c; (c = chunk_of(weft__list_pop_front(list)));) {
            if (c == mine) mine = NULL;
            weft__free(c);
        }
    }
    nchunks = 0;
    if (mine && !mine->live) { /* an orphan of a stopped trace */
        weft__free(mine);
        mine = NULL;
    }
    if (!key_error) (void)pthread_setspecific(key, mine);
    /* ctl may be held by a thread that is gone: the fd is closed by hand, ctl started over. */
    ctl = (weft__mutex_t)WEFT__MUTEX_INIT;
    if (fd >= 0) weft__sys_close(fd);
    fd = -1;
}

static const weft__fork_hooks_t fork_hooks = {WEFT__LAYER_CORE, fork_prepare, fork_parent,
                                              fork_child, NULL};

__attribute__((constructor)) static void register_fork_hooks(void)
{
    weft__fork_register(&fork_hooks); /* failing, a child only keeps a copy it never writes */
}
