/*
 * process_pool.c — the process-pool executor backend (ProcessPoolExecutor).
 *
 * Parts: the FIFO of queued futures (linked through future->node, each holding one
 * reference; `lock` guards it and `shut`), the worker slots, and the pool thread that owns
 * the slots. Submitters only queue and poke the pool thread through an eventfd; the pool
 * thread does everything else, so the slots need no lock:
 *   - a worker gets the next queued future (PENDING -> RUNNING, else it was cancelled and is
 *     dropped), as one pipe message: the function pointer, then the argument bytes. Up to
 *     PIPELINE tasks are in flight per worker (one when tasks have a time limit): the next
 *     ones wait in the worker's pipe, so a busy worker goes from task to task without sleeping
 *     until the pool thread has read its reply, and the pool thread takes replies in batches
 *     (Python keeps max_workers + 1 calls queued for the same reason). The worker runs them in
 *     order, so when it dies, the first task without a reply is the one it was running (it
 *     fails) and the others never began: they go back to the head of the queue, in order,
 *     for the next worker;
 *   - the pool thread never blocks on a worker's pipe (a worker blocked sending a large
 *     result while the pool blocked sending it the next large task was a deadlock). Each
 *     worker's in-flight tasks are its output queue: inflight[0..nsent) are written whole,
 *     inflight[nsent] has its first out_done frame bytes written, the rest wait (their bytes
 *     are the future's, kept until the task is done). Writes are non-blocking and resume when
 *     poll says the pipe is writable, as libuv's uv_write queues do; replies are read
 *     non-blocking too, each into memory of its own (a partial one stays in the connection
 *     until the rest comes);
 *   - a queued future with no idle worker starts one, up to max_workers;
 *   - it poll()s the eventfd, every worker's pipe (readable: a reply, a 4-byte code, 4 bytes
 *     of padding, then the result bytes; writable, while it has output waiting) and every
 *     worker's pidfd (the worker ended), with the nearest task deadline as timeout;
 *   - a reply completes the future (its result bytes owned by the future: dispose frees
 *     them); a worker that ended is reaped, and the task it ran, if any, fails with
 *     WEFT_EWORKERDIED (or WEFT_ETIMEDOUT if the pool thread killed it for its deadline).
 * Nothing a worker sends is trusted for a size: a reply's length sizes its allocation only
 * through the overflow-checked helpers (a reply too large to allocate fails its task with
 * WEFT_ENOMEM and replaces the worker), a reply shorter than its code is a broken worker
 * (killed). Likewise a worker ends (code 1) on a task message shorter than a function pointer.
 * Workers are forked by the pool thread: each closes the pool's ends of its siblings' pipes
 * and loops (weft__ppool_serve): receive, run, reply, until an empty message (the pool's
 * "exit"), EOF, or max_tasks_per_child.
 * Lifetime: `refs` is the handle plus the pool thread; the thread leaves once the pool is
 * shut down and nothing is queued or running, after closing every pipe and reaping every
 * worker, and the last of the two frees the pool.
 */
#include "executor_internal.h"
#include "../core/sys_internal.h"

#include "../process/process_shared.h"

#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "weft/process.h"
#include "weft/thread.h"

/* A result, the value of a finished future: raw is the reply as received (code, padding,
 * result), data is raw + REPLY_HEAD. */
typedef weft__bytes_t bytes_t;

enum { REPLY_HEAD = 8 }; /* a reply's code and padding, before the result bytes */

typedef struct ptask { /* a task, the arg of a queued future; fn and data are one message */
    size_t len;
    bool sent; /* given to a worker before (RUNNING already): requeued after its death */
    long pid;  /* the worker it was given to, while on the pool's `flight` list */
    weft_process_task_fn fn;
    unsigned char data[];
} ptask_t;

enum { PIPELINE = 4 }; /* tasks in flight per worker */
_Static_assert((int)PIPELINE <= (int)WEFT__CONN_FRAMES_MAX, "flush sends them in one call");

typedef struct worker {
    weft_process_t *proc;              /* NULL: a free slot */
    weft_conn_t *conn;                 /* the pool's end of its pipe */
    weft_future_t *inflight[PIPELINE]; /* handed out, in order: [0] runs (or will run first) */
    size_t ninflight;
    size_t nsent;    /* inflight[0..nsent) are written whole; the others wait to be */
    size_t out_done; /* bytes of inflight[nsent]'s frame written so far */
    bool out_dead;   /* a write failed (the worker is going): nothing more is written */
    bool in_dead;    /* its pipe reached EOF: only its pidfd is watched now */
    int64_t deadline;
    int fail; /* the code its task gets if it dies: EWORKERDIED, or why it was killed */
    size_t done;
} worker_t;

typedef struct ppool {
    weft_executor_t base;
    _Atomic uint32_t refs;
    weft__mutex_t lock;
    weft__list_t queue; /* queued futures (weft_future_t.node), under `lock` */
    /* Futures handed to a worker, in that order, with each one's worker pid: what the task
     * snapshot sees of the slots, which are the pool thread's. A lock of its own, which only
     * the pool thread and a snapshot take: the submitters' `lock` is contended enough. */
    weft__mutex_t flight_lock;
    weft__list_t flight;
    bool shut;
    pid_t owner;
    int efd;
    size_t max_workers, max_tasks;
    double task_timeout;   /* each task's limit, turned into a deadline by weft_deadline_after */
    bool limited;          /* task_timeout is a limit that can expire (not forever) */
    worker_t *workers;     /* [max_workers], the pool thread's */
    struct pollfd *pfds;   /* [1 + 2 * max_workers], the pool thread's */
    weft_thread_t *thread; /* the pool thread */
    char prefix[WEFT__WORKER_NAME_MAX]; /* of the workers' names (and the pool thread's) */
    weft__list_node_t link;             /* on `ppools`, under ppools_lock */
} ppool_t;

/* Every process pool, for the task snapshot (weft__process_pools_visit). Held across fork, so
 * that a child finds the list whole; a child skips its parent's pools (their owner differs). */
static weft__mutex_t ppools_lock = WEFT__MUTEX_INIT;
static weft__list_t ppools;

static const weft__executor_ops_t ppool_ops;

static void ppool_unref(ppool_t *p)
{
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1) return;
    weft__mutex_lock(&ppools_lock);
    weft__list_remove(&ppools, &p->link);
    weft__mutex_unlock(&ppools_lock);
    weft__sys_close(p->efd);
    weft__free(p->workers);
    weft__free(p->pfds);
    weft_thread_release(p->thread);
    weft__handle_free(p, &p->base.hd);
}

/* The task's bytes are the pool's until sent; drop frees them with the queue's reference. */
static void free_task_arg(weft_future_t *f)
{
    weft__free(f->arg);
    f->arg = NULL;
}

static void drop(weft_future_t *f)
{
    free_task_arg(f);
    weft__future_unref(f);
}

static void poke(ppool_t *p)
{
    uint64_t one = 1;
    ssize_t n = weft__sys_write(p->efd, &one, sizeof one); /* fails only when the counter is huge */
    (void)n;
}

/* ---- the worker process -------------------------------------------------------------------- */

typedef struct worker_start {
    ppool_t *pool;
    weft_conn_t *mine; /* the worker's end */
    weft_conn_t *theirs;
    const char *name; /* "<prefix>_<slot>": its comm */
} worker_start_t;

static weft__ppool_hook_fn *test_hook; /* see weft__ppool_set_test_hook */

void weft__ppool_set_test_hook(weft__ppool_hook_fn *hook)
{
    test_hook = hook;
}

enum { SERVED, POOL_GONE, BROKEN };

/* Runs the task message msg (len bytes: the function pointer, then the argument) and sends
 * its reply: SERVED, POOL_GONE (the pool closed its end) or BROKEN (no task, no memory for the
 * reply, a pipe error: the worker ends with code 1, the pool sees WEFT_EWORKERDIED). */
static int serve_one(weft_conn_t *c, const unsigned char *msg, size_t len)
{
    weft_process_task_fn fn;
    if (len < sizeof fn) return BROKEN; /* not a task: the stream is out of step */
    memcpy(&fn, msg, sizeof fn);
    const unsigned char *arg = msg + sizeof fn;
    size_t alen = len - sizeof fn;
    if (test_hook) test_hook(WEFT__PPOOL_GOT_TASK, arg, alen, -1);
    void *result = NULL;
    size_t rlen = 0, size;
    char *message = NULL;
    weft_future_capture_begin();
    int32_t code = fn(alen ? arg : NULL, alen, &result, &rlen);
    weft_future_capture_end(&message); /* WEFT_ENOMEM: the failure goes without its message */
    if (code) { /* a failure's bytes are its message (weft_future_fail_current), if any */
        free(result);
        result = NULL;
        rlen = message ? strlen(message) + 1 : 0;
    }
    unsigned char *reply = weft__size_add(REPLY_HEAD, rlen, &size) ? malloc(size) : NULL;
    if (reply) {
        memset(reply, 0, REPLY_HEAD);
        memcpy(reply, &code, sizeof code);
        if (rlen) memcpy(reply + REPLY_HEAD, code ? (void *)message : result, rlen);
    }
    free(result);
    free(message);
    if (!reply) return BROKEN;
    if (test_hook) test_hook(WEFT__PPOOL_SENDING, reply, size, weft_conn_fileno(c));
    int rc = weft_conn_send_bytes(c, reply, size, WEFT_FOREVER);
    free(reply);
    return rc == 0 ? SERVED : rc == WEFT_EPIPE ? POOL_GONE : BROKEN;
}

int weft__ppool_serve(weft_conn_t *c, size_t max_tasks)
{
    size_t cap = 4096, len, done = 0;
    unsigned char *buf = malloc(cap);
    int exit_code = buf ? -1 : 1; /* -1: go on */
    while (exit_code < 0) {
        int rc = weft_conn_recv_bytes(c, buf, cap, WEFT_FOREVER, &len);
        if (rc == WEFT_EOVERFLOW) { /* a bigger task: realloc refuses a length it cannot have */
            unsigned char *bigger = realloc(buf, len);
            if (bigger)
                buf = bigger, cap = len;
            else
                exit_code = 1;
        } else if (rc) {
            exit_code = rc == WEFT_EEOF ? 0 : 1;
        } else if (len == 0) {
            exit_code = 0; /* the pool's "exit" */
        } else {
            int served = serve_one(c, buf, len);
            if (served != SERVED)
                exit_code = served == POOL_GONE ? 0 : 1;
            else if (max_tasks && ++done == max_tasks)
                exit_code = 0;
        }
    }
    free(buf);
    return exit_code;
}

static int worker_main(void *arg)
{
    worker_start_t *ws = arg;
    ppool_t *p = ws->pool;
    (void)prctl(PR_SET_NAME, ws->name); /* cosmetic (top, ps): a failure changes nothing */
    /* Not ours: the pool's ends of every pipe (so each worker sees EOF when the pool closes
     * its own), and the pool's eventfd. */
    for (size_t i = 0; i < p->max_workers; i++)
        if (p->workers[i].conn) weft_conn_release(p->workers[i].conn);
    weft_conn_release(ws->theirs);
    weft__sys_close(p->efd);
    /* Nor anything else the parent had open: a server's client sockets kept here would never
     * let their peers see EOF. A worker keeps stdio and its channel, as a worker of Python's
     * forkserver or spawn start method starts with. (The pool thread has no hub whose fds
     * this would take: it waits with poll.) */
    unsigned chan = (unsigned)weft_conn_fileno(ws->mine);
    weft__sys_close_range(3, chan - 1);
    weft__sys_close_range(chan + 1, ~0u);
    int code = weft__ppool_serve(ws->mine, p->max_tasks);
    weft_conn_release(ws->mine);
    return code;
}

/* ---- the pool thread ----------------------------------------------------------------------- */

/* Completes w's in-flight task k (0: the one running) with code and, on 0, result. */
static void finish_task_at(ppool_t *p, worker_t *w, size_t k, int code, bytes_t *result)
{
    weft_future_t *f = w->inflight[k];
    weft__mutex_lock(&p->flight_lock);
    weft__list_remove(&p->flight, &f->node);
    weft__mutex_unlock(&p->flight_lock);
    w->ninflight--;
    memmove(w->inflight + k, w->inflight + k + 1, (w->ninflight - k) * sizeof *w->inflight);
    free_task_arg(f);
    if (code) {
        /* A failure's bytes, when there are any, are the task's message: taken only as a
         * string that ends where the reply does (a worker's bytes are not trusted). */
        char *message = NULL;
        if (result && result->len && result->data[result->len - 1] == '\0' &&
            (message = weft__malloc(result->len)))
            memcpy(message, result->data, result->len);
        weft__future_finish(f, code, NULL, message);
        weft__free(result);
    } else if (weft__future_set_bytes(f, result) != 0) {
        weft__free(result); /* completed by hand meanwhile: that outcome stands */
    }
    weft__future_unref(f); /* the queue's reference */
}

static void finish_task(ppool_t *p, worker_t *w, int code, bytes_t *result)
{
    finish_task_at(p, w, 0, code, result);
}

/* A reply arrived whole (len bytes at b->raw): completes the task at the head of w's flight. */
static void take_reply(ppool_t *p, worker_t *w, bytes_t *b, size_t len)
{
    if (len < REPLY_HEAD) { /* not a reply: a broken worker */
        weft__free(b);
        weft_process_kill(w->proc);
        return;
    }
    int32_t code;
    memcpy(&code, b->raw, sizeof code);
    b->len = len - REPLY_HEAD;
    b->data = b->raw + REPLY_HEAD;
    w->done++;
    if (w->ninflight && w->nsent) {
        w->nsent--;
        finish_task(p, w, code, b);
    } else {
        weft__free(b); /* a reply to nothing sent: ignore it */
    }
}

/* Takes every whole reply there is on w's pipe, without waiting (the pipe is read until it
 * has nothing more, so poll tells when there is more). */
static void take_replies(ppool_t *p, worker_t *w)
{
    /* After a reply that could not be allocated nothing more is read: that reply is still at
     * the head of the pipe, and the worker is being replaced. */
    while (!w->in_dead && w->fail != WEFT_ENOMEM) {
        void *msg;
        size_t len = 0;
        int rc = weft__conn_recv_alloc_nowait(w->conn, offsetof(bytes_t, raw), &msg, &len);
        if (rc == 0) {
            take_reply(p, w, msg, len);
        } else if (rc == WEFT_ENOMEM) { /* the reply cannot be taken: fail the task, replace */
            if (w->fail == WEFT_EWORKERDIED) w->fail = WEFT_ENOMEM;
            weft_process_kill(w->proc);
            return;
        } else {
            if (rc != WEFT_EAGAIN) w->in_dead = true; /* EOF: dying, its pidfd tells */
            return;
        }
    }
}

/* Writes w's waiting task messages, as far as its pipe takes them, without waiting: all of
 * them in one system call while they fit (the worker then reads them in one, too). */
static void flush(worker_t *w)
{
    while (!w->out_dead && w->nsent < w->ninflight) {
        weft__frame_t frames[PIPELINE];
        size_t n = 0, sent = 0;
        for (size_t i = w->nsent; i < w->ninflight; i++) {
            ptask_t *t = w->inflight[i]->arg;
            frames[n++] = (weft__frame_t){&t->fn, sizeof t->fn + t->len};
        }
        int rc = weft__conn_send_nowait(w->conn, frames, n, &sent, &w->out_done);
        w->nsent += sent;
        if (rc == WEFT_EAGAIN) return;
        if (rc) { /* the worker died: its pidfd tells, and its tasks fail or requeue then */
            w->out_dead = true;
            return;
        }
    }
}

static void push_front(ppool_t *p, weft_future_t *f);

/* A worker ended: take the replies still in its pipe, fail the task it was running, put those
 * that never began back at the head of the queue, free the slot. The first task without a
 * reply fails even if it was not written whole: a worker that dies taking it in (a task too
 * large for its memory) would otherwise kill worker after worker. Killed because its reply
 * could not be allocated (WEFT_ENOMEM), the tasks behind that one may have run (their replies
 * were behind it): they fail with WEFT_EWORKERDIED rather than run twice. */
static void bury(ppool_t *p, worker_t *w)
{
    take_replies(p, w);
    bool behind_ran = w->fail == WEFT_ENOMEM;
    while (w->ninflight > 1) {
        if (behind_ran)
            finish_task_at(p, w, w->ninflight - 1, WEFT_EWORKERDIED, NULL);
        else
            push_front(p, w->inflight[--w->ninflight]);
    }
    if (w->ninflight) finish_task(p, w, w->fail, NULL);
    weft_process_join(w->proc, WEFT_FOREVER); /* it has ended: returns at once */
    weft_process_release(w->proc);
    weft_conn_release(w->conn);
    *w = (worker_t){0};
}

static int start_worker(ppool_t *p, worker_t *w)
{
    weft_conn_t *mine, *theirs;
    int rc = weft_pipe_create(true, &theirs, &mine);
    if (rc) return rc;
    char name[WEFT__WORKER_NAME_MAX];
    weft__worker_name(name, p->prefix, (size_t)(w - p->workers));
    worker_start_t ws = {p, mine, theirs, name};
    weft_process_opts_t opts = {.name = name, .daemon = true};
    rc = weft_process_start(worker_main, &ws, &opts, &w->proc);
    weft_conn_release(mine); /* the worker's end lives in the worker only */
    if (rc) {
        weft_conn_release(theirs);
        return rc;
    }
    w->conn = theirs;
    w->ninflight = w->nsent = w->out_done = 0;
    w->out_dead = w->in_dead = false;
    w->fail = WEFT_EWORKERDIED;
    w->done = 0;
    return 0;
}

/* Puts a future that a dead worker never began back at the head of the queue. */
static void push_front(ppool_t *p, weft_future_t *f)
{
    weft__mutex_lock(&p->flight_lock);
    weft__list_remove(&p->flight, &f->node);
    weft__mutex_unlock(&p->flight_lock);
    weft__mutex_lock(&p->lock);
    weft__list_push_front(&p->queue, &f->node);
    weft__mutex_unlock(&p->lock);
}

static weft_future_t *pop(ppool_t *p)
{
    weft__mutex_lock(&p->lock);
    weft_future_t *f = weft__future_of(weft__list_pop_front(&p->queue));
    weft__mutex_unlock(&p->lock);
    return f;
}

static bool queue_empty(ppool_t *p)
{
    weft__mutex_lock(&p->lock);
    bool empty = weft__list_empty(&p->queue);
    weft__mutex_unlock(&p->lock);
    return empty;
}

/* Whether w can take a task: alive, not being killed, with room in flight (PIPELINE tasks;
 * one when tasks have a deadline, which must start when the task does), not about to
 * retire. */
static bool can_take(const ppool_t *p, const worker_t *w)
{
    return w->proc && w->fail == WEFT_EWORKERDIED &&
           w->ninflight < (p->limited ? 1u : (size_t)PIPELINE) &&
           !(p->max_tasks && w->done + w->ninflight >= p->max_tasks);
}

/* No worker exists and none could be started: fail what is queued (nothing would run it). */
static void fail_queued(ppool_t *p, int rc)
{
    for (size_t i = 0; i < p->max_workers; i++)
        if (p->workers[i].proc) return;
    weft_future_t *f;
    while ((f = pop(p))) {
        weft_future_set_error(f, rc, "no worker process could be started");
        drop(f);
    }
}

/* When a task handed out now must be done by: its task_timeout from now, through core's
 * checked conversion (+inf, or too long to represent, is never; 0 or negative is now). */
static int64_t task_deadline(const ppool_t *p)
{
    int64_t deadline = WEFT_NO_DEADLINE;
    if (p->limited) weft__deadline(p->task_timeout, &deadline);
    return deadline;
}

/* Gives queued futures to the workers with fewer than `level` tasks in flight, starting
 * workers in free slots as needed. */
static void dispatch_level(ppool_t *p, size_t level)
{
    for (size_t i = 0; i < p->max_workers && !queue_empty(p);) {
        worker_t *w = &p->workers[i];
        if (!w->proc) {
            int rc = start_worker(p, w);
            if (rc) {
                fail_queued(p, rc);
                return;
            }
        }
        if (w->ninflight >= level || !can_take(p, w)) {
            i++;
            continue;
        }
        weft_future_t *f = pop(p);
        if (!f) return;
        ptask_t *t = f->arg;
        if (!t->sent && weft_future_set_running(f) != 0) { /* cancelled while queued */
            drop(f);
            continue;
        }
        t->sent = true;
        weft__mutex_lock(&p->flight_lock);
        t->pid = weft_process_pid(w->proc);
        weft__list_push_back(&p->flight, &f->node);
        weft__mutex_unlock(&p->flight_lock);
        if (!w->ninflight) w->deadline = task_deadline(p);
        /* Queued for writing (flush, once dispatch has handed out what it can): its bytes are
         * kept until the task is done, also to requeue it if the worker dies before running
         * it. */
        w->inflight[w->ninflight++] = f;
        i++; /* one task per worker per level */
    }
}

/* Gives queued futures to workers level by level: first one task to every worker (starting
 * workers in free slots as needed, as Python starts a process when none is idle), then a
 * second to each, up to the pipeline's depth, so a few tasks run side by side instead of
 * queuing on one worker. */
static void dispatch(ppool_t *p)
{
    size_t depth = p->limited ? 1 : (size_t)PIPELINE;
    for (size_t level = 1; level <= depth && !queue_empty(p); level++) dispatch_level(p, level);
    for (size_t i = 0; i < p->max_workers; i++)
        if (p->workers[i].proc) flush(&p->workers[i]);
}

static bool idle_everywhere(ppool_t *p)
{
    for (size_t i = 0; i < p->max_workers; i++)
        if (p->workers[i].ninflight) return false;
    return queue_empty(p);
}

static void pool_thread(void *arg)
{
    ppool_t *p = arg;
    (void)weft__ctx_list_internal(); /* unlisted: the dump shows it as a plain thread */
    for (;;) {
        dispatch(p);
        weft__mutex_lock(&p->lock);
        bool shut = p->shut;
        weft__mutex_unlock(&p->lock);
        if (shut && idle_everywhere(p)) break;

        size_t n = 0;
        bool polling = false; /* a worker without a pidfd: look at it every 10 ms */
        int64_t next = WEFT_NO_DEADLINE, now = weft_time_monotonic_ns();
        p->pfds[n++] = (struct pollfd){.fd = p->efd, .events = POLLIN};
        for (size_t i = 0; i < p->max_workers; i++) {
            worker_t *w = &p->workers[i];
            if (!w->proc) continue;
            if (w->ninflight && w->deadline <= now && w->fail == WEFT_EWORKERDIED) {
                w->fail = WEFT_ETIMEDOUT; /* a hard limit: the worker goes */
                weft_process_kill(w->proc);
            }
            if (w->ninflight && w->fail == WEFT_EWORKERDIED && w->deadline < next)
                next = w->deadline;
            int pidfd = weft__process_pidfd(w->proc); /* -1: poll() skips it */
            polling |= pidfd < 0;
            short events = POLLIN | (!w->out_dead && w->nsent < w->ninflight ? POLLOUT : 0);
            p->pfds[n++] = (struct pollfd){.fd = w->in_dead ? -1 : weft_conn_fileno(w->conn),
                                           .events = events};
            p->pfds[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        }
        /* Rounded up; a deadline further than poll's int can say waits as long as it can. */
        int ms = next == WEFT_NO_DEADLINE ? -1
                 : next - now >= (int64_t)INT_MAX * 1000000
                     ? INT_MAX
                     : (int)((next - now + 999999) / 1000000);
        if (polling && (ms < 0 || ms > 10)) ms = 10;
        if (weft__sys_poll(p->pfds, n, ms) < 0) continue; /* EINTR; ENOMEM: try again */
        if (p->pfds[0].revents) {
            uint64_t count;
            ssize_t r = weft__sys_read(p->efd, &count, sizeof count);
            (void)r;
        }
        size_t k = 1;
        for (size_t i = 0; i < p->max_workers; i++) {
            worker_t *w = &p->workers[i];
            if (!w->proc) continue;
            short conn_ev = p->pfds[k++].revents, pid_ev = p->pfds[k].revents;
            bool ended = p->pfds[k++].fd >= 0 ? pid_ev != 0 : !weft_process_is_alive(w->proc);
            if (ended) {
                bury(p, w);
                continue;
            }
            if (conn_ev & (POLLIN | POLLHUP | POLLERR)) take_replies(p, w);
            if (conn_ev & (POLLOUT | POLLHUP | POLLERR)) flush(w);
        }
    }
    /* Shut down and drained: tell every worker to exit (an empty message: EOF alone is not
     * enough, a process forked meanwhile, such as another pool's worker, may hold a copy of
     * the pool's end), close its pipe, reap it. */
    for (size_t i = 0; i < p->max_workers; i++) {
        worker_t *w = &p->workers[i];
        if (!w->proc) continue;
        size_t sent, done = 0; /* its pipe is empty (nothing in flight): the 8 bytes fit */
        weft__conn_send_nowait(w->conn, &(weft__frame_t){NULL, 0}, 1, &sent, &done);
        weft_conn_release(w->conn);
        w->conn = NULL;
        if (weft_process_join(w->proc, 10) != 0) {
            weft_process_kill(w->proc);
            weft_process_join(w->proc, WEFT_FOREVER);
        }
        weft_process_release(w->proc);
        w->proc = NULL;
    }
    ppool_unref(p);
}

/* ---- the executor interface ---------------------------------------------------------------- */

static int ppool_submit(weft_executor_t *ex, weft_future_t *f)
{
    (void)ex;
    (void)f;
    return WEFT_ENOTSUP; /* a pointer argument means nothing in a worker process */
}

static int queue_future(ppool_t *p, weft_future_t *f)
{
    if (p->owner != weft__process_self_pid()) return WEFT_EBROKEN; /* a fork child's copy */
    weft__mutex_lock(&p->lock);
    int rc = p->shut ? WEFT_ESHUTDOWN : 0;
    /* Only a queue that was empty needs the pool thread poked: a non-empty one has a poke
     * pending, or the pool thread will look at the queue again before it next sleeps (its
     * dispatch checks the queue after each task it hands out, and runs after every poll). */
    bool poke_it = weft__list_empty(&p->queue);
    if (!rc && weft__observe(WEFT__OBSERVE_TRACE)) weft__future_trace_submit(f, "process pool");
    if (!rc) weft__list_push_back(&p->queue, &f->node);
    weft__mutex_unlock(&p->lock);
    if (!rc && poke_it) poke(p);
    return rc;
}

static int ppool_shutdown(weft_executor_t *ex, bool wait, bool cancel_futures, int64_t deadline)
{
    ppool_t *p = (ppool_t *)ex;
    weft__mutex_lock(&p->lock);
    p->shut = true;
    weft__list_t cancel = {0};
    if (cancel_futures) {
        /* Pending ones are cancelled; one a dead worker never began is RUNNING already (it
         * was handed out): it stays queued and runs, as the running ones do. */
        weft__list_t queued = p->queue;
        p->queue = (weft__list_t){0};
        weft_future_t *f;
        while ((f = weft__future_of(weft__list_pop_front(&queued))))
            weft__list_push_back(((ptask_t *)f->arg)->sent ? &p->queue : &cancel, &f->node);
    }
    weft__mutex_unlock(&p->lock);
    weft_future_t *f;
    while ((f = weft__future_of(weft__list_pop_front(&cancel)))) {
        weft_future_cancel(f);
        drop(f);
    }
    if (p->owner != getpid()) return 0; /* a fork child: no pool thread to wait for */
    poke(p);
    if (!wait) return 0;
    return weft_thread_join(p->thread, weft__deadline_remaining(deadline));
}

static void ppool_destroy(weft_executor_t *ex)
{
    ppool_shutdown(ex, false, false, 0);
    ppool_unref((ppool_t *)ex);
}

static const weft__executor_ops_t ppool_ops = {ppool_submit, ppool_shutdown, ppool_destroy};

int weft_process_pool_submit(weft_executor_t *ex, weft_process_task_fn fn, const void *arg,
                             size_t len, weft_future_t **out)
{
    WEFT__HANDLE_CHECK(ex, WEFT__ID_EXECUTOR, "executor");
    if (out) *out = NULL;
    if (!ex || !fn || (!arg && len)) return WEFT_EINVAL;
    if (ex->ops != &ppool_ops) return WEFT_ENOTSUP;
    size_t size;
    if (!weft__size_add(sizeof(ptask_t), len, &size)) return WEFT_ENOMEM; /* no such memory */
    ptask_t *t = weft__malloc(size);
    if (!t) return WEFT_ENOMEM;
    t->len = len;
    t->sent = false;
    t->fn = fn;
    if (len) memcpy(t->data, arg, len);
    weft_future_t *f = weft__future_create(NULL, t, out ? 2 : 1);
    if (!f) {
        weft__free(t);
        return WEFT_ENOMEM;
    }
    f->dispose = weft__free; /* of its result bytes */
    int rc = queue_future((ppool_t *)ex, f);
    if (rc) {
        free_task_arg(f);
        weft__future_unref(f);
        if (out) weft__future_unref(f);
        return rc;
    }
    if (out) *out = f;
    WEFT__HANDLE_GIVE(out ? f : NULL);
    return 0;
}

/* A task of weft_process_pool_map: task points to its function. */
static int submit_bytes(weft_executor_t *ex, const void *task, weft_bytes_t arg,
                        weft_future_t **out)
{
    return weft_process_pool_submit(ex, *(const weft_process_task_fn *)task, arg.data, arg.len,
                                    out);
}

int weft_process_pool_map(weft_executor_t *ex, weft_process_task_fn fn, const weft_bytes_t *args,
                          size_t n, weft_bytes_t *results, double timeout, size_t *ndone)
{
    WEFT__HANDLE_CHECK(ex, WEFT__ID_EXECUTOR, "executor");
    int kind = ex && ex->ops != &ppool_ops ? WEFT_ENOTSUP : 0;
    return weft__map_bytes(ex, submit_bytes, fn ? &fn : NULL, kind, args, n, results, timeout,
                           ndone);
}

/* ---- the task snapshot's view, and fork ---------------------------------------------------- */

void weft__process_pools_visit(void (*fn)(const weft__pool_task_view_t *v, void *arg), void *arg)
{
    long self = weft__process_self_pid();
    weft__mutex_lock(&ppools_lock);
    for (weft__list_node_t *n = weft__list_first(&ppools); n; n = weft__list_next(n)) {
        ppool_t *p = weft__container_of(n, ppool_t, link);
        if (p->owner != self) continue; /* a fork child's copy: its lock may be a stale one */
        /* Per worker, its first future in flight is the one it runs; the others wait in its
         * pipe, as the queued ones wait in the pool. */
        weft__mutex_lock(&p->flight_lock);
        for (weft__list_node_t *l = weft__list_first(&p->flight); l; l = weft__list_next(l)) {
            weft_future_t *f = weft__future_of(l);
            long pid = ((const ptask_t *)f->arg)->pid;
            bool first = true;
            for (weft__list_node_t *m = weft__list_first(&p->flight); m != l && first;
                 m = weft__list_next(m))
                first = ((const ptask_t *)weft__future_of(m)->arg)->pid != pid;
            weft__pool_task_view_t v = {&p->base, f, first, SIZE_MAX, NULL, NULL, pid};
            fn(&v, arg);
        }
        weft__mutex_unlock(&p->flight_lock);
        weft__mutex_lock(&p->lock);
        for (weft__list_node_t *l = weft__list_first(&p->queue); l; l = weft__list_next(l)) {
            weft__pool_task_view_t v = {&p->base, weft__future_of(l), false, SIZE_MAX, NULL, NULL,
                                        0};
            fn(&v, arg);
        }
        weft__mutex_unlock(&p->lock);
    }
    weft__mutex_unlock(&ppools_lock);
}

static void fork_prepare(void)
{
    weft__mutex_lock(&ppools_lock);
}

static void fork_parent(void)
{
    weft__mutex_unlock(&ppools_lock);
}

static void fork_child(void)
{
    ppools_lock = (weft__mutex_t)WEFT__MUTEX_INIT;
}

static const weft__fork_hooks_t fork_hooks = {
    .rank = WEFT__LAYER_EXECUTOR,
    .prepare = fork_prepare,
    .parent = fork_parent,
    .child = fork_child,
};

/* Not under ppools_lock: a fork on another thread holds the core's registry lock while its
 * prepare hook takes ppools_lock. */
static int register_fork_hooks(void)
{
    return weft__fork_register(&fork_hooks);
}

int weft_process_pool_create(size_t max_workers, const weft_process_pool_opts_t *opts,
                             weft_executor_t **ex)
{
    if (!ex) return WEFT_EINVAL;
    *ex = NULL;
    weft_process_pool_opts_t o =
        opts ? *opts : (weft_process_pool_opts_t)WEFT_PROCESS_POOL_OPTS_INIT;
    if (isnan(o.task_timeout) || (o.task_timeout < 0 && o.task_timeout != WEFT_FOREVER))
        return WEFT_EINVAL; /* 0 is the default: no limit */
    if (max_workers == 0) max_workers = (size_t)weft__ncpu();
    ppool_t *p = weft__handle_calloc(sizeof *p);
    if (!p) return WEFT_ENOMEM;
    p->base.ops = &ppool_ops;
    weft__handle_init(&p->base.hd, WEFT__ID_EXECUTOR, 1);
    atomic_init(&p->refs, 2);
    p->owner = getpid();
    p->max_workers = max_workers;
    p->max_tasks = o.max_tasks_per_child;
    /* A limit only if it can expire: WEFT_FOREVER, +inf, or too long for a deadline, is no
     * limit (core.h); 0 or negative is one that has expired when the task is handed out. */
    int64_t d = WEFT_NO_DEADLINE;
    p->task_timeout = o.task_timeout;
    p->limited =
        o.task_timeout > 0 && weft__deadline(o.task_timeout, &d) == 0 && d != WEFT_NO_DEADLINE;
    p->efd = -1;
    int rc = WEFT_ENOMEM;
    p->workers = weft__calloc(max_workers, sizeof *p->workers);
    p->pfds = weft__calloc(1 + 2 * max_workers, sizeof *p->pfds);
    if (!p->workers || !p->pfds) goto fail;
    p->efd = weft__sys_eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->efd < 0) {
        rc = errno == ENFILE ? WEFT_EMFILE : weft__errno(errno);
        goto fail;
    }
    const char *prefix =
        o.process_name_prefix && *o.process_name_prefix ? o.process_name_prefix : "weft_proc";
    snprintf(p->prefix, sizeof p->prefix, "%s", prefix); /* cut: no name keeps more */
    weft_thread_opts_t topts = {.name = p->prefix, .daemon = true};
    rc = register_fork_hooks();
    if (rc == 0) rc = weft_thread_start(pool_thread, p, &topts, &p->thread);
    if (rc) goto fail;
    weft__mutex_lock(&ppools_lock);
    weft__list_push_back(&ppools, &p->link);
    weft__mutex_unlock(&ppools_lock);
    *ex = &p->base;
    return 0;
fail:
    if (p->efd >= 0) weft__sys_close(p->efd);
    weft__free(p->workers);
    weft__free(p->pfds);
    weft__handle_free(p, &p->base.hd);
    return rc;
}
