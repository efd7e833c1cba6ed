/* Fork torture: a child forked while other threads are inside every call family — a Lock, a
 * Queue, a thread pool's submit/result, coroutine IO, Timer start, a process queue's
 * put/get — runs a small workload of every family and exits 0: weft's own state is whole in
 * the child, and what the child inherits either works or fails with the documented code
 * (a thread pool: WEFT_EBROKEN; its futures in flight at the fork: WEFT_EBROKEN or
 * WEFT_EWORKERDIED), never hangs. (CPython's test_threading fork cases and
 * test_concurrent_futures' fork checks, run many times at random instants.)
 *
 * Sanitizers: GCC 12's ASan allocator does not hold its locks across fork, so an ASan child
 * may deadlock in its first malloc if another thread held an allocator lock at the fork; and
 * TSan refuses to start threads in a child of a multi-threaded process. So under ASan the
 * child runs only what allocates nothing, under TSan only what starts no thread; everything
 * else runs in the default build (and valgrind, with fewer rounds). */
#include "weft_test.h"

#include "executor/executor_internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* weft_fd_read's count, or its error: one int for a case to store and compare. */
static int read_count(int fd, void *buf, size_t n, double timeout)
{
    size_t done = 0;
    int rc = weft_fd_read(fd, buf, n, timeout, &done);
    return rc ? rc : (int)done;
}

#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN 1
#endif
#endif
#ifndef TSAN
#define TSAN 0
#endif

#define CHILD_MALLOC  (!WEFT_TEST_ASAN) /* the child may allocate */
#define CHILD_THREADS (!SANITIZED)      /* the child may start threads */

static struct {
    atomic_bool stop;
    weft_lock_t lock;
    long counter;
    weft_queue_t *queue;
    weft_executor_t *pool;
    weft_future_t *_Atomic inflight[2]; /* a submitted future each pool thread waits for */
    weft_mpqueue_t *mpq;
    int sock[2]; /* the coroutine IO pair */
} t;

/* ---- the parent's busy threads, one family each ----------------------------------------- */

static void lock_family(void)
{
    weft_lock_acquire(&t.lock, WEFT_FOREVER);
    t.counter++;
    weft_lock_release(&t.lock);
}

static void queue_family(int i)
{
    void *item;
    if (weft_queue_put(t.queue, (void *)(long)(i + 1), 1) != 0) return;
    if (weft_queue_get(t.queue, 1, &item) != 0) return; /* a timeout under load: tolerated */
}

static int task_double(void *arg, void **result)
{
    *result = (void *)((long)arg * 2);
    return 0;
}

static void pool_family(int i)
{
    weft_future_t *f;
    if (weft_executor_submit(t.pool, task_double, (void *)(long)i, &f)) return;
    weft_future_t *held = weft_future_retain(f); /* the child may look at it after the fork */
    atomic_store(&t.inflight[i % 2], held);
    void *v;
    if (weft_future_result(f, WEFT_FOREVER, &v) != 0) abort(); /* task_double never fails */
    atomic_store(&t.inflight[i % 2], NULL);
    weft_future_release(held);
    weft_future_release(f);
}

static void on_tick(void *arg)
{
    weft_event_set(arg);
}

static void timer_family(void)
{
    weft_timer_t tm = WEFT_TIMER_INIT;
    weft_event_t e;
    weft_event_init(&e);
    if (weft_timer_start(&tm, 0.0001, on_tick, &e) == 0) {
        weft_event_wait(&e, 10);
        weft_timer_join(&tm, 10);
    }
    weft_timer_destroy(&tm);
    weft_event_destroy(&e);
}

static void mpqueue_family(int i)
{
    char buf[16];
    size_t len;
    if (weft_mpqueue_put(t.mpq, &i, sizeof i, 1) != 0) return;
    if (weft_mpqueue_get(t.mpq, buf, sizeof buf, 1, &len) != 0) return; /* timeout: tolerated */
}

/* Coroutine IO: two coroutines of one hub ping-pong a byte over a socket pair. */
static void pinger(void *arg)
{
    int fd = *(int *)arg;
    char c = 'p';
    while (!atomic_load(&t.stop)) {
        if (weft_fd_write(fd, &c, 1, 1, NULL) != 0) continue;
        read_count(fd, &c, 1, 1);
    }
}

static void ponger(void *arg)
{
    int fd = *(int *)arg;
    char c;
    while (!atomic_load(&t.stop))
        if (read_count(fd, &c, 1, 0.05) == 1 && weft_fd_write(fd, &c, 1, 1, NULL) != 0)
            continue; /* the pinger times out and writes again */
}

static void coro_family(void)
{
    weft_co_t *a, *b;
    if (weft_co_spawn(pinger, &t.sock[0], NULL, &a)) return;
    if (weft_co_spawn(ponger, &t.sock[1], NULL, &b) == 0) {
        weft_co_join(b, WEFT_FOREVER);
        weft_co_release(b);
    }
    weft_co_join(a, WEFT_FOREVER);
    weft_co_release(a);
}

static void busy(void *arg, int i)
{
    (void)arg;
    if (i == 0) {
        coro_family(); /* runs until stop */
        return;
    }
    while (!atomic_load(&t.stop)) {
        switch (i) {
        case 1:
        case 2:
            lock_family();
            break;
        case 3:
        case 4:
            queue_family(i);
            break;
        case 5:
        case 6:
            pool_family(i);
            break;
        case 7:
            timer_family();
            break;
        default:
            mpqueue_family(i);
            break;
        }
    }
    if (i == 0) return;
}

/* ---- the child's workload ---------------------------------------------------------------- */

static int job(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static void co_write(void *arg)
{
    int fd = *(int *)arg;
    if (weft_fd_write(fd, "c", 1, 5, NULL) != 0) return; /* the reader then fails its step */
}

/* Each step returns 0 or a code naming what failed (the child's exit code). */
static int child_steps(void);

/* The child's code. Under valgrind a child that passed ends by SIGKILL instead of exiting: the
 * parent's busy threads do not exist in the child, so what only their stacks pointed to (a
 * future being submitted at the instant of fork) is "definitely lost" to the leak check every
 * exit runs, and --error-exitcode would turn a pass into 99. The parent counts SIGKILL as the
 * pass there; a failed step still exits with its code. */
static int child_workload(void *arg)
{
    (void)arg;
    int code = child_steps();
    if (code == 0 && RUNNING_ON_VALGRIND) kill(getpid(), SIGKILL);
    return code;
}

static int child_steps(void)
{
    /* Lock: a fresh one. */
    weft_lock_t l;
    weft_lock_init(&l);
    if (weft_lock_acquire(&l, 5) || weft_lock_release(&l)) return 10;

    /* Process queue: the parent's, shared: a message goes through it. (Under TSan the child
     * only puts: a get here commits for the parent's consumers, who then read records on the
     * strength of this process's acquire and lock release, which the parent's TSan cannot
     * see: a false report of a race in the parent.) */
    int mine = -7;
    char buf[16];
    size_t len;
    if (weft_mpqueue_put(t.mpq, &mine, sizeof mine, 10)) return 20;
    if (!TSAN && weft_mpqueue_get(t.mpq, buf, sizeof buf, 10, &len)) return 21;
    if (!CHILD_MALLOC) return 0;

    /* Thread pool: the parent's is broken here, and says so; its futures in flight at the
     * fork are failed (once the pool is touched), never left pending. */
    weft_future_t *f;
    if (weft_executor_submit(t.pool, job, NULL, &f) != WEFT_EBROKEN) return 30;
    for (int k = 0; k < 2; k++) {
        weft_future_t *g = atomic_load(&t.inflight[k]);
        if (!g) continue;
        void *v;
        int rc = weft_future_result(g, 10, &v);
        if (rc == WEFT_ETIMEDOUT) return 31;
        if (rc != 0 && rc != WEFT_EBROKEN && rc != WEFT_EWORKERDIED) return 32;
    }

    /* Queue: a fresh one. */
    weft_queue_t *q;
    void *item;
    if (weft_queue_create(WEFT_QUEUE_FIFO, 2, &q)) return 40;
    if (weft_queue_put(q, (void *)3L, 5) || weft_queue_get(q, 5, &item) || item != (void *)3L)
        return 41;
    weft_queue_release(q);

    /* Coroutine IO: a fresh hub of this thread, a fresh pair. */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) return 50;
    if (weft_co_spawn(co_write, &sv[0], NULL, NULL)) return 51;
    char c;
    if (read_count(sv[1], &c, 1, 10) != 1 || c != 'c') return 52;
    close(sv[0]);
    close(sv[1]);
    if (!CHILD_THREADS) return 0;

    /* Timer: the service thread is started again here. */
    weft_timer_t tm = WEFT_TIMER_INIT;
    weft_event_t e;
    weft_event_init(&e);
    if (weft_timer_start(&tm, 0.001, on_tick, &e)) return 60;
    if (weft_event_wait(&e, 10) || weft_timer_join(&tm, 10)) return 61;

    /* Thread pool: a fresh one works. */
    weft_executor_t *pool;
    void *v;
    if (weft_thread_pool_create(2, NULL, &pool)) return 70;
    if (weft_executor_submit(pool, job, (void *)5L, &f)) return 71;
    if (weft_future_result(f, 10, &v) || v != (void *)5L) return 72;
    weft_future_release(f);
    if (weft_executor_shutdown(pool, true, false, 10)) return 73;
    weft_executor_release(pool);
    return 0;
}

/* ---- the case ------------------------------------------------------------------------------ */

static void fork_while_every_family_runs(void **state)
{
    (void)state;
    atomic_store(&t.stop, false);
    weft_lock_init(&t.lock);
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 4, &t.queue), 0);
    assert_int_equal(weft_thread_pool_create(2, NULL, &t.pool), 0);
    assert_int_equal(weft_mpqueue_create(0, 0, false, &t.mpq), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, t.sock), 0);
    weft_test_bg_t bg;
    weft_test_bg_start(&bg, 10, busy, NULL);

    int rounds = RUNNING_ON_VALGRIND ? 20 : 200;
    for (int i = 0; i < rounds; i++) {
        weft_process_t *p;
        weft_process_opts_t opts = {.daemon = i % 2 == 1};
        assert_int_equal(weft_process_start(child_workload, NULL, &opts, &p), 0);
        int rc = weft_process_join(p, 60);
        if (rc) weft_process_kill(p);
        assert_int_equal(weft_process_join(p, 60), 0);
        int code = -1000;
        assert_int_equal(weft_process_exitcode(p, &code), 0);
        if (code == -SIGKILL && !rc && RUNNING_ON_VALGRIND) code = 0; /* see child_workload */
        if (code != 0) {
            atomic_store(&t.stop, true); /* the busy threads end, so the case can fail */
            weft_test_bg_join(&bg);
            fail_msg("round %d: the child %s %d", i, rc ? "hung; killed:" : "exited", code);
        }
        assert_int_equal(weft_process_release(p), 0);
    }

    atomic_store(&t.stop, true);
    weft_test_bg_join(&bg);
    assert_int_equal(weft_executor_shutdown(t.pool, true, false, 30), 0);
    assert_int_equal(weft_executor_release(t.pool), 0);
    assert_int_equal(weft_queue_release(t.queue), 0);
    assert_int_equal(weft_mpqueue_release(t.mpq), 0);
    weft_lock_destroy(&t.lock);
    close(t.sock[0]);
    close(t.sock[1]);
}

/* ---- a pool future locked at the instant of fork ------------------------------------------ */

/* A worker holds a future's lock for a few instructions at a time (settling it, or a caller
 * queueing itself on it); here a thread holds one for up to a second, until the fork is done
 * in the parent, so that the fork happens inside that hold unless the pool's fork handler
 * waits for it. The child must get WEFT_EBROKEN from the inherited pool and have the pool's
 * running and queued futures failed, not hang on the lock of a thread that is gone. */
static struct {
    weft_event_t release_task;
    weft_future_t *running, *queued;
    atomic_int held, forked;
} lk;

static void after_fork_in_parent(void)
{
    atomic_store(&lk.forked, 1);
}

static int blocks_until_released(void *arg, void **result)
{
    (void)arg;
    *result = NULL;
    return weft_event_wait(&lk.release_task, 60);
}

static void *hold_future_lock(void *arg)
{
    (void)arg;
    weft__waitq_lock(&lk.running->waiters);
    atomic_store(&lk.held, 1);
    int64_t until = weft_time_monotonic_ns() + 1000000000LL;
    while (!atomic_load(&lk.forked) && weft_time_monotonic_ns() < until) sched_yield();
    weft__waitq_unlock(&lk.running->waiters);
    return NULL;
}

static int child_touches_locked_pool(void *arg)
{
    weft_executor_t *pool = arg;
    weft_future_t *f;
    void *v;
    if (weft_executor_submit(pool, job, NULL, &f) != WEFT_EBROKEN) return 10;
    if (weft_future_result(lk.running, 5, &v) != WEFT_EWORKERDIED) return 11;
    if (weft_future_result(lk.queued, 5, &v) != WEFT_EBROKEN) return 12;
    return 0;
}

static void thread_pool_future_locked_at_fork_fails_cleanly(void **state)
{
    (void)state;
    weft_executor_t *pool;
    weft_event_init(&lk.release_task);
    atomic_store(&lk.held, 0);
    atomic_store(&lk.forked, 0);
    assert_int_equal(weft_thread_pool_create(1, NULL, &pool), 0);
    assert_int_equal(weft_executor_submit(pool, blocks_until_released, NULL, &lk.running), 0);
    while (weft_future_state(lk.running) != WEFT_FUTURE_RUNNING) sched_yield();
    assert_int_equal(weft_executor_submit(pool, job, NULL, &lk.queued), 0);
    /* Registered after the pool's handlers; pthread_atfork offers no way to remove it, and it
     * only sets a flag of this case. */
    assert_int_equal(pthread_atfork(NULL, after_fork_in_parent, NULL), 0);
    pthread_t holder = weft_test_start(hold_future_lock, NULL);
    while (!atomic_load(&lk.held)) sched_yield();

    weft_process_t *p;
    assert_int_equal(weft_process_start(child_touches_locked_pool, pool, NULL, &p), 0);
    int rc = weft_process_join(p, 20);
    if (rc) weft_process_kill(p);
    assert_int_equal(weft_process_join(p, 60), 0);
    int code = -1000;
    assert_int_equal(weft_process_exitcode(p, &code), 0);
    assert_int_equal(weft_process_release(p), 0);
    weft_test_join(holder);
    if (rc) fail_msg("the child hung (killed)");
    assert_int_equal(code, 0);

    weft_event_set(&lk.release_task);
    void *v;
    assert_int_equal(weft_future_result(lk.running, 30, &v), 0);
    assert_int_equal(weft_future_result(lk.queued, 30, &v), 0);
    weft_future_release(lk.running);
    weft_future_release(lk.queued);
    assert_int_equal(weft_executor_shutdown(pool, true, false, 30), 0);
    assert_int_equal(weft_executor_release(pool), 0);
    weft_event_destroy(&lk.release_task);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(fork_while_every_family_runs),
        WEFT_TEST(thread_pool_future_locked_at_fork_fails_cleanly),
    };
    return weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
