/* Threads: start/join, attributes, the registry, the exit rule and fork. Each case names the
 * CPython test it mirrors (Lib/test/test_threading.py unless said otherwise). */
#include "weft_test.h"

#include "thread/thread_internal.h" /* to count queued joiners and cancel a waiter */

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------ */

static void noop(void *arg)
{
    (void)arg;
}

/* Blocks on the event passed as arg: the thread stays alive until the test sets it. */
static void wait_event(void *arg)
{
    assert_int_equal(weft_event_wait(arg, WEFT_FOREVER), 0);
}

static int start(weft_thread_t **t, void (*fn)(void *), void *arg, const char *name, bool daemon)
{
    weft_thread_opts_t opts = {.name = name, .daemon = daemon};
    return weft_thread_start(fn, arg, &opts, t);
}

static size_t queued_joiners(weft_thread_t *t)
{
    size_t n = 0;
    weft__waitq_lock(&t->waiters);
    for (weft__waiter_t *w = weft__waitq_first(&t->waiters); w; w = weft__waitq_next(w)) n++;
    weft__waitq_unlock(&t->waiters);
    return n;
}

/* Waits (yielding the CPU) until n joiners are parked on t: a condition, not a guess. */
static void await_joiners(weft_thread_t *t, size_t n)
{
    while (queued_joiners(t) < n) sched_yield();
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static bool listed(weft_thread_t **list, size_t n, weft_thread_t *t)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == t) return true;
    return false;
}

/* ---- start and join ----------------------------------------------------------------------- */

static void store_42(void *arg)
{
    atomic_store((atomic_int *)arg, 42);
}

/* test_various_ops, test_args_argument: the function runs with its argument; join waits. */
static void start_join_runs_fn(void **state)
{
    (void)state;
    atomic_int value = 0;
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(store_42, &value, NULL, &t), 0);
    assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
    assert_int_equal(atomic_load(&value), 42);
    assert_int_equal(weft_thread_join(t, 0), 0); /* joined stays joined */
    assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
    weft_thread_release(t);
}

/* test_join_with_timeout: a join that times out leaves the thread running and joinable. */
static void join_timeout_expires_while_running(void **state)
{
    (void)state;
    weft_event_t go;
    weft_event_init(&go);
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(wait_event, &go, NULL, &t), 0);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_thread_join(t, 0.05), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.049);
    assert_int_equal(weft_thread_join(t, 0), WEFT_ETIMEDOUT); /* a poll */
    assert_true(weft_thread_is_alive(t));
    weft_event_set(&go);
    assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
    assert_false(weft_thread_is_alive(t));
    weft_thread_release(t);
}

static void join_own_handle(void *arg)
{
    atomic_int *rc = arg;
    atomic_store(rc, weft_thread_join(weft_thread_current(), WEFT_FOREVER));
}

/* ThreadingExceptionTests.test_joining_current_thread: joining yourself is an error, not a
 * deadlock, for a started thread and for the main thread. */
static void join_self_is_edeadlk(void **state)
{
    (void)state;
    /* Before the main thread ever asked for its record, too. */
    assert_int_equal(weft_thread_join(weft_thread_main(), WEFT_FOREVER), WEFT_EDEADLK);
    assert_int_equal(weft_thread_join(weft_thread_current(), 1.0), WEFT_EDEADLK);
    atomic_int rc = 1;
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(join_own_handle, &rc, NULL, &t), 0);
    assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
    assert_int_equal(atomic_load(&rc), WEFT_EDEADLK);
    weft_thread_release(t);
}

enum { JOINERS = 8 };

typedef struct joiner_arg {
    weft_thread_t *target;
    atomic_int rc;
} joiner_arg_t;

static void join_target(void *arg)
{
    joiner_arg_t *j = arg;
    atomic_store(&j->rc, weft_thread_join(j->target, WEFT_FOREVER));
    weft_thread_release(j->target);
}

/* test_join_from_multiple_threads: many threads parked on one join are all released. */
static void join_from_many_threads(void **state)
{
    (void)state;
    weft_event_t go;
    weft_event_init(&go);
    weft_thread_t *target, *joiners[JOINERS];
    joiner_arg_t args[JOINERS];
    assert_int_equal(weft_thread_start(wait_event, &go, NULL, &target), 0);
    for (int i = 0; i < JOINERS; i++) {
        args[i].target = weft_thread_retain(target); /* each joiner holds its own reference */
        atomic_init(&args[i].rc, 1);
        assert_int_equal(weft_thread_start(join_target, &args[i], NULL, &joiners[i]), 0);
    }
    await_joiners(target, JOINERS);
    weft_event_set(&go);
    for (int i = 0; i < JOINERS; i++) {
        assert_int_equal(weft_thread_join(joiners[i], WEFT_FOREVER), 0);
        assert_int_equal(atomic_load(&args[i].rc), 0);
        weft_thread_release(joiners[i]);
    }
    assert_int_equal(weft_thread_join(target, 0), 0);
    weft_thread_release(target);
}

typedef struct cancel_arg {
    weft_thread_t *target;
    _Atomic(weft__waitctx_t *) ctx;
    atomic_int rc;
} cancel_arg_t;

static void join_until_canceled(void *arg)
{
    cancel_arg_t *c = arg;
    atomic_store(&c->ctx, weft__waitctx_current());
    atomic_store(&c->rc, weft_thread_join(c->target, WEFT_FOREVER));
}

/* A join is canceled like every other wait in weft (no CPython equivalent: libdill's model). */
static void join_canceled_returns_ecanceled(void **state)
{
    (void)state;
    weft_event_t go;
    weft_event_init(&go);
    weft_thread_t *target, *joiner;
    assert_int_equal(weft_thread_start(wait_event, &go, NULL, &target), 0);

    /* A cancel already pending fails the join at once... */
    weft__waitctx_cancel(weft__waitctx_current());
    assert_int_equal(weft_thread_join(target, WEFT_FOREVER), WEFT_ECANCELED);
    weft__waitctx_uncancel(weft__waitctx_current());

    /* ...and one arriving while the joiner is parked wakes it. */
    cancel_arg_t c = {.target = target};
    atomic_init(&c.rc, 1);
    assert_int_equal(weft_thread_start(join_until_canceled, &c, NULL, &joiner), 0);
    await_joiners(target, 1);
    weft__waitctx_cancel(atomic_load(&c.ctx));
    assert_int_equal(weft_thread_join(joiner, WEFT_FOREVER), 0);
    assert_int_equal(atomic_load(&c.rc), WEFT_ECANCELED);
    assert_int_equal(queued_joiners(target), 0);
    assert_true(weft_thread_is_alive(target));

    weft_event_set(&go);
    assert_int_equal(weft_thread_join(target, WEFT_FOREVER), 0);
    weft_thread_release(joiner);
    weft_thread_release(target);
}

/* test_limbo_cleanup (bad arguments leave nothing behind), plus join's own checks. */
static void bad_arguments_are_einval(void **state)
{
    (void)state;
    weft_thread_t *t = (weft_thread_t *)&t;
    assert_int_equal(weft_thread_start(noop, NULL, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_thread_start(NULL, NULL, NULL, &t), WEFT_EINVAL);
    assert_null(t);
    assert_int_equal(weft_thread_join(NULL, WEFT_FOREVER), WEFT_EINVAL);
    assert_int_equal(weft_thread_start(noop, NULL, NULL, &t), 0);
    assert_int_equal(weft_thread_join(t, 0.0 / 0.0), WEFT_EINVAL);
    assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
    weft_thread_release(t);
    assert_int_equal(weft_thread_release(NULL), WEFT_EINVAL);
    assert_false(weft_thread_is_alive(NULL));
    assert_null(weft_thread_name(NULL));
    assert_int_equal(weft_thread_ident(NULL), -1);
    assert_false(weft_thread_is_daemon(NULL));
    assert_null(weft_thread_retain(NULL));
}

static void exit_through_pthread_exit(void *arg)
{
    atomic_store((atomic_int *)arg, 1);
    pthread_exit(NULL);
}

/* A thread ended by pthread_exit still counts as finished (Python's SystemExit in a thread). */
static void pthread_exit_in_fn_finishes_thread(void **state)
{
    (void)state;
    atomic_int ran = 0;
    size_t base = weft_thread_active_count();
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(exit_through_pthread_exit, &ran, NULL, &t), 0);
    assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
    assert_int_equal(atomic_load(&ran), 1);
    assert_false(weft_thread_is_alive(t));
    assert_int_equal(weft_thread_active_count(), base);
    weft_thread_release(t);
}

typedef struct detach_arg {
    weft_event_t go, done;
} detach_arg_t;

static void run_detached(void *arg)
{
    detach_arg_t *d = arg;
    weft_event_wait(&d->go, WEFT_FOREVER);
    weft_event_set(&d->done);
}

/* Releasing a running thread's handle detaches it: it finishes and frees its record alone
 * (the leak guard checks the record is gone). */
static void release_running_thread_detaches_it(void **state)
{
    (void)state;
    detach_arg_t d;
    weft_event_init(&d.go);
    weft_event_init(&d.done);
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(run_detached, &d, NULL, &t), 0);
    weft_thread_release(t);
    weft_event_set(&d.go);
    assert_int_equal(weft_event_wait(&d.done, WEFT_FOREVER), 0);
}

/* test_limbo_cleanup: when the OS refuses the thread, the start fails cleanly. */
static void start_failure_leaves_nothing(void **state)
{
    (void)state;
    size_t base = weft_thread_active_count();
    weft_thread_opts_t opts = {.stack_size = SIZE_MAX / 2}; /* no such mapping */
    weft_thread_t *t = (weft_thread_t *)&t;
    int rc = weft_thread_start(noop, NULL, &opts, &t);
    assert_true(rc == WEFT_EAGAIN || rc == WEFT_ENOMEM || rc == WEFT_EINVAL);
    assert_null(t);
    assert_int_equal(weft_thread_active_count(), base);
}

static int start_join_release(void *ctx)
{
    (void)ctx;
    weft_thread_t *t;
    int rc = weft_thread_start(noop, NULL, NULL, &t);
    if (rc) return rc;
    rc = weft_thread_join(t, WEFT_FOREVER);
    weft_thread_release(t);
    return rc;
}

/* SQLite-style OOM loop: every allocation of a start may fail, and then nothing is left. */
static void start_out_of_memory(void **state)
{
    (void)state;
    assert_true(weft_test_oom(start_join_release, NULL) >= 1);
}

/* ---- attributes --------------------------------------------------------------------------- */

typedef struct ident_arg {
    weft_event_t *go;
    atomic_long tid;
} ident_arg_t;

static void record_tid(void *arg)
{
    ident_arg_t *a = arg;
    atomic_store(&a->tid, (long)gettid());
    weft_event_wait(a->go, WEFT_FOREVER);
}

enum { IDENT_THREADS = 4 };

/* test_various_ops (native_id): idents are known once start returns, distinct, and the OS
 * thread id seen inside; they survive the thread. */
static void ident_is_os_thread_id(void **state)
{
    (void)state;
    weft_event_t go;
    weft_event_init(&go);
    weft_thread_t *t[IDENT_THREADS];
    ident_arg_t args[IDENT_THREADS];
    for (int i = 0; i < IDENT_THREADS; i++) {
        args[i].go = &go;
        atomic_init(&args[i].tid, 0);
        assert_int_equal(weft_thread_start(record_tid, &args[i], NULL, &t[i]), 0);
        assert_true(weft_thread_ident(t[i]) > 0);
        assert_int_not_equal(weft_thread_ident(t[i]), (long)gettid());
        for (int j = 0; j < i; j++)
            assert_int_not_equal(weft_thread_ident(t[i]), weft_thread_ident(t[j]));
    }
    weft_event_set(&go);
    for (int i = 0; i < IDENT_THREADS; i++) {
        long ident = weft_thread_ident(t[i]);
        assert_int_equal(weft_thread_join(t[i], WEFT_FOREVER), 0);
        assert_int_equal(atomic_load(&args[i].tid), ident);
        assert_int_equal(weft_thread_ident(t[i]), ident);
        weft_thread_release(t[i]);
    }
}

typedef struct name_arg {
    char os_name[32];
    weft_thread_t *self;
} name_arg_t;

static void record_name(void *arg)
{
    name_arg_t *a = arg;
    pthread_getname_np(pthread_self(), a->os_name, sizeof a->os_name);
    a->self = weft_thread_current();
}

/* test_name, test_daemon_param: default "Thread-N", a given name copied, the OS name cut to
 * 15 bytes; daemon as given. */
static void name_default_and_custom(void **state)
{
    (void)state;
    name_arg_t a = {{0}, NULL};
    weft_thread_t *t1, *t2, *t3;
    assert_int_equal(weft_thread_start(record_name, &a, NULL, &t1), 0);
    assert_int_equal(weft_thread_join(t1, WEFT_FOREVER), 0);
    unsigned long n1, n2;
    assert_int_equal(sscanf(weft_thread_name(t1), "Thread-%lu", &n1), 1);
    assert_string_equal(a.os_name, weft_thread_name(t1));
    assert_false(weft_thread_is_daemon(t1));

    assert_int_equal(start(&t2, noop, NULL, "", true), 0); /* "" is the default too */
    assert_int_equal(sscanf(weft_thread_name(t2), "Thread-%lu", &n2), 1);
    assert_true(n2 > n1);
    assert_true(weft_thread_is_daemon(t2));

    char name[64];
    snprintf(name, sizeof name, "worker-with-a-rather-long-name");
    assert_int_equal(start(&t3, record_name, &a, name, false), 0);
    name[0] = 'X'; /* the record has its own copy */
    assert_int_equal(weft_thread_join(t3, WEFT_FOREVER), 0);
    assert_string_equal(weft_thread_name(t3), "worker-with-a-rather-long-name");
    assert_string_equal(a.os_name, "worker-with-a-r");

    assert_int_equal(weft_thread_join(t2, WEFT_FOREVER), 0);
    weft_thread_release(t1);
    weft_thread_release(t2);
    weft_thread_release(t3);
}

/* Names are capped (63 characters), longer is refused rather than silently changed. */
static void name_too_long_is_einval(void **state)
{
    (void)state;
    char name[WEFT_THREAD_NAME_MAX + 1];
    memset(name, 'n', sizeof name - 1);
    name[WEFT_THREAD_NAME_MAX] = '\0';
    weft_thread_t *t;
    assert_int_equal(start(&t, noop, NULL, name, false), WEFT_EINVAL);
    assert_null(t);
    name[WEFT_THREAD_NAME_MAX - 1] = '\0'; /* 63 characters: fits */
    assert_int_equal(start(&t, noop, NULL, name, false), 0);
    assert_string_equal(weft_thread_name(t), name);
    assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
    weft_thread_release(t);
}

typedef struct stack_arg {
    size_t size; /* the stack the thread got */
    size_t used; /* how much of it the recursion used */
} stack_arg_t;

/* Recursion that really uses its frames (the compiler cannot fold it away). */
static int recurse(volatile char *prev, size_t depth)
{
    volatile char frame[1024];
    frame[0] = prev ? prev[0] : 1;
    frame[sizeof frame - 1] = (char)depth;
    return depth == 0 ? frame[0] : recurse(frame, depth - 1) + frame[sizeof frame - 1];
}

static void measure_stack(void *arg)
{
    stack_arg_t *a = arg;
    pthread_attr_t attr;
    void *lowest;
    assert_int_equal(pthread_getattr_np(pthread_self(), &attr), 0);
    assert_int_equal(pthread_attr_getstack(&attr, &lowest, &a->size), 0);
    pthread_attr_destroy(&attr);
    /* glibc carves static TLS (large under TSan) from the top: use 5/8 of what is left below
     * this frame, in frames of a bit more than 1 KiB. */
    char here;
    size_t left = (size_t)(&here - (char *)lowest);
    a->used = left / 8 * 5;
    recurse(NULL, a->used / 1024);
}

/* test_thread.ThreadRunningTests.test_stack_size, test_various_ops_small/large_stack: the
 * thread gets at least the stack asked for (glibc may hand out a larger cached one), and can
 * use it: the larger size is twice the default, and its recursion would overflow a default
 * stack. */
static void stack_size_is_honoured(void **state)
{
    (void)state;
    static const size_t sizes[] = {256 * 1024, 16 * 1024 * 1024};
    stack_arg_t a = {0, 0};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        weft_thread_opts_t opts = {.stack_size = sizes[i]};
        weft_thread_t *t;
        assert_int_equal(weft_thread_start(measure_stack, &a, &opts, &t), 0);
        assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
        weft_thread_release(t);
        assert_true(a.size >= sizes[i]);
    }
    struct rlimit rl; /* the default thread stack size */
    assert_int_equal(getrlimit(RLIMIT_STACK, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < sizes[1] / 2)
        assert_true(a.used > rl.rlim_cur);
}

/* test_thread.ThreadRunningTests.test_stack_size: too small a stack is refused. */
static void stack_size_below_minimum_is_einval(void **state)
{
    (void)state;
    weft_thread_opts_t opts = {.stack_size = (size_t)PTHREAD_STACK_MIN - 1};
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(noop, NULL, &opts, &t), WEFT_EINVAL);
    opts.stack_size = 1;
    assert_int_equal(weft_thread_start(noop, NULL, &opts, &t), WEFT_EINVAL);
    assert_null(t);
}

/* ---- current, main, registry -------------------------------------------------------------- */

typedef struct current_arg {
    weft_thread_t *seen, *main;
    long main_ident;
} current_arg_t;

static void record_current(void *arg)
{
    current_arg_t *a = arg;
    a->seen = weft_thread_current();
    a->main = weft_thread_main();
    a->main_ident = weft_thread_ident(weft_thread_main());
}

/* test_main_thread: current() is the thread's own handle inside it, main() is the main
 * thread everywhere; the main record's attributes. */
static void current_is_own_handle_and_main_is_main(void **state)
{
    (void)state;
    weft_thread_t *main = weft_thread_main();
    assert_non_null(main);
    assert_ptr_equal(weft_thread_current(), main);
    assert_string_equal(weft_thread_name(main), "MainThread");
    assert_int_equal(weft_thread_ident(main), (long)gettid());
    assert_int_equal(weft_thread_ident(main), (long)getpid());
    assert_true(weft_thread_is_alive(main));
    assert_false(weft_thread_is_daemon(main));
    assert_ptr_equal(weft_thread_retain(main), main); /* static: both are no-ops */
    weft_thread_release(main);

    current_arg_t a = {0};
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(record_current, &a, NULL, &t), 0);
    assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
    assert_ptr_equal(a.seen, t);
    assert_ptr_equal(a.main, main);
    assert_int_equal(a.main_ident, (long)getpid());
    weft_thread_release(t);
}

typedef struct foreign_arg {
    weft_thread_t *dummy;
    long tid;
    size_t count_inside;
    bool listed;
} foreign_arg_t;

static void foreign_body(void *arg, int i)
{
    (void)i;
    foreign_arg_t *a = arg;
    weft_thread_t *d = weft_thread_current();
    a->tid = gettid();
    a->dummy = weft_thread_retain(d); /* kept past the thread's exit */
    assert_ptr_equal(weft_thread_current(), d);
    a->count_inside = weft_thread_active_count();
    weft_thread_t *list[16];
    size_t n;
    assert_int_equal(weft_thread_enumerate(list, 16, &n), 0);
    a->listed = listed(list, n < 16 ? n : 16, d);
    for (size_t k = 0; k < n && k < 16; k++) weft_thread_release(list[k]);
}

/* test_foreign_thread, test_ident_of_no_threading_threads: a thread weft did not start gets a
 * daemon "Dummy-N" record that is listed while it lives and leaves when it exits. */
static void current_in_foreign_thread_is_dummy(void **state)
{
    (void)state;
    size_t base = weft_thread_active_count();
    foreign_arg_t a = {0};
    weft_test_run_threads(1, foreign_body, &a); /* a plain pthread, joined */
    assert_non_null(a.dummy);
    assert_int_equal(a.count_inside, base + 1);
    assert_true(a.listed);
    assert_int_equal(strncmp(weft_thread_name(a.dummy), "Dummy-", 6), 0);
    assert_true(weft_thread_is_daemon(a.dummy));
    assert_int_equal(weft_thread_ident(a.dummy), a.tid);
    /* Its thread has exited: the record reads finished and the registry forgot it. */
    assert_false(weft_thread_is_alive(a.dummy));
    assert_int_equal(weft_thread_join(a.dummy, WEFT_FOREVER), 0);
    assert_int_equal(weft_thread_active_count(), base);
    weft_thread_release(a.dummy);
}

enum { LISTED = 3 };

/* test_enumerate_after_join, test_dummy_thread_after_fork (counts): started threads are
 * counted and listed while alive, and not after join. */
static void active_count_and_enumerate_follow_threads(void **state)
{
    (void)state;
    size_t base = weft_thread_active_count();
    assert_true(base >= 1);
    weft_event_t go;
    weft_event_init(&go);
    weft_thread_t *t[LISTED];
    for (int i = 0; i < LISTED; i++) {
        assert_int_equal(weft_thread_start(wait_event, &go, NULL, &t[i]), 0);
        assert_int_equal(weft_thread_active_count(), base + (size_t)i + 1);
    }

    weft_thread_t *list[LISTED + 8];
    size_t n = 0;
    assert_int_equal(weft_thread_enumerate(list, LISTED + 8, &n), 0);
    assert_int_equal(n, base + LISTED);
    assert_ptr_equal(list[0], weft_thread_main()); /* registration order: main first */
    for (int i = 0; i < LISTED; i++) assert_true(listed(list, n, t[i]));
    for (size_t k = 0; k < n; k++) weft_thread_release(list[k]);

    /* A short buffer: the total, and as many handles as fit. */
    assert_int_equal(weft_thread_enumerate(list, 1, &n), 0);
    assert_int_equal(n, base + LISTED);
    assert_ptr_equal(list[0], weft_thread_main());
    weft_thread_release(list[0]);
    assert_int_equal(weft_thread_enumerate(NULL, 0, &n), 0);
    assert_int_equal(n, base + LISTED);
    assert_int_equal(weft_thread_enumerate(NULL, 1, &n), WEFT_EINVAL);
    assert_int_equal(weft_thread_enumerate(list, 1, NULL), WEFT_EINVAL);

    weft_event_set(&go);
    for (int i = 0; i < LISTED; i++) {
        assert_int_equal(weft_thread_join(t[i], WEFT_FOREVER), 0);
        assert_int_equal(weft_thread_enumerate(list, LISTED + 8, &n), 0);
        assert_false(listed(list, n, t[i]));
        for (size_t k = 0; k < n; k++) weft_thread_release(list[k]);
    }
    assert_int_equal(weft_thread_active_count(), base);
    for (int i = 0; i < LISTED; i++) weft_thread_release(t[i]);
}

/* ---- the exit rule (a child process returns from its "main" with threads running) ---------- */

typedef struct marker_arg {
    int fd;
    double delay;
} marker_arg_t;

static void write_marker_later(void *arg)
{
    marker_arg_t *m = arg;
    if (m->delay > 0) sleep_ms((long)(m->delay * 1000)); /* the work the exit must wait for */
    ssize_t w = write(m->fd, "done", 4);
    (void)w;
}

static weft_event_t never; /* set by nobody */

static void write_marker_much_later(void *arg)
{
    marker_arg_t *m = arg;
    weft_event_init(&never);
    weft_event_wait(&never, m->delay); /* 30 s unless the process ends first */
    ssize_t w = write(m->fd, "done", 4);
    (void)w;
}

/* Forks a child that starts fn on a thread (daemon or not), drops the handle and calls exit(0)
 * at once. Returns what the child's thread wrote to the pipe by the time the child is gone. */
static size_t run_child_that_exits(void (*fn)(void *), double delay, bool daemon, char *buf,
                                   size_t cap, double *elapsed)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    double t0 = weft_time_monotonic();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        marker_arg_t m = {fds[1], delay};
        weft_thread_t *t;
        if (start(&t, fn, &m, NULL, daemon) != 0) _exit(3);
        weft_thread_release(t);
        exit(0); /* as a return from main: the exit rule runs here */
    }
    close(fds[1]);
    size_t n = 0;
    for (ssize_t r; (r = read(fds[0], buf + n, cap - n)) != 0;) {
        assert_true(r > 0);
        n += (size_t)r;
    }
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *elapsed = weft_time_monotonic() - t0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    return n;
}

/* test_join_nondaemon_on_shutdown, ThreadJoinOnShutdown.test_1_join_on_shutdown: exit waits
 * for a non-daemon thread, whose work completes. */
static void exit_joins_non_daemon_threads(void **state)
{
    (void)state;
    char buf[16];
    double elapsed;
    size_t n = run_child_that_exits(write_marker_later, 0.1, false, buf, sizeof buf, &elapsed);
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "done", 4);
    assert_true(elapsed >= 0.09);
}

/* test_daemon_threads_fatal_error / the daemon rule: exit does not wait for a daemon thread;
 * its work is abandoned mid-way. */
static void exit_abandons_daemon_threads(void **state)
{
    (void)state;
    char buf[16];
    double elapsed;
    size_t n = run_child_that_exits(write_marker_much_later, 30, true, buf, sizeof buf, &elapsed);
    assert_int_equal(n, 0);
    assert_true(elapsed < 20);
}

/* ---- fork ----------------------------------------------------------------------------------- */

/* The child's checks, as an exit status: 0 when all hold, else the number of the first that
 * failed (cmocka's asserts cannot report from a child). */
static int child_checks(weft_thread_t *expect_main, weft_thread_t *vanished)
{
    weft_thread_t *me = weft_thread_current();
    if (weft_thread_active_count() != 1) return 1;
    weft_thread_t *list[4];
    size_t n;
    if (weft_thread_enumerate(list, 4, &n) != 0 || n != 1 || list[0] != me) return 2;
    weft_thread_release(list[0]);
    if (weft_thread_main() != me || (expect_main && me != expect_main)) return 3;
    if (weft_thread_ident(me) != (long)getpid()) return 4;
    if (!weft_thread_is_alive(me)) return 5;
    if (weft_thread_is_alive(vanished)) return 6;
    if (weft_thread_join(vanished, WEFT_FOREVER) != 0) return 7; /* finished, not hung */
    weft_thread_release(vanished);
    return 0;
}

static int wait_child(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* test_is_alive_after_fork, test_dummy_thread_after_fork, test_main_thread_after_fork: in the
 * child only the forking thread is alive and listed; the others read as finished. */
static void fork_resets_registry(void **state)
{
    (void)state;
    weft_event_t go;
    weft_event_init(&go);
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(wait_event, &go, NULL, &t), 0);
    assert_true(weft_thread_active_count() >= 2);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(child_checks(weft_thread_main(), weft_thread_retain(t)));
    assert_int_equal(wait_child(pid), 0);
    /* The parent is untouched. */
    assert_true(weft_thread_is_alive(t));
    weft_event_set(&go);
    assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
    weft_thread_release(t);
}

typedef struct forker_arg {
    weft_thread_t *main; /* the parent's main thread */
    int child_status;
} forker_arg_t;

static void fork_inside(void *arg)
{
    forker_arg_t *f = arg;
    pid_t pid = fork();
    if (pid == 0) _exit(child_checks(weft_thread_current(), f->main));
    f->child_status = pid > 0 ? wait_child(pid) : -1;
}

/* test_main_thread_after_fork_from_nonmain_thread: the forking thread becomes the child's
 * main thread, keeping its name; the real main thread reads as finished there. */
static void fork_from_thread_makes_it_main(void **state)
{
    (void)state;
    forker_arg_t f = {weft_thread_main(), -1};
    fflush(stdout);
    fflush(stderr);
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(fork_inside, &f, NULL, &t), 0);
    assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
    assert_int_equal(f.child_status, 0);
    assert_ptr_equal(weft_thread_current(), weft_thread_main()); /* the parent is untouched */
    weft_thread_release(t);
}

/* The timeout rules (weft/core.h): joining a running thread with -0.5 polls (WEFT_ETIMEDOUT
 * at once; Python's join(timeout=-0.5) returns at once too), WEFT_FOREVER blocks until it
 * ends, NaN is WEFT_EINVAL. */
typedef struct timed_join {
    weft_thread_t *t;
    weft_event_t go;
    double timeout;
} timed_join_t;

static void wait_go(void *p)
{
    weft_event_wait(p, WEFT_FOREVER);
}

static int timed_thread_join(void *p)
{
    timed_join_t *j = p;
    return weft_thread_join(j->t, j->timeout);
}

static void set_go(void *p)
{
    assert_int_equal(weft_event_set(p), 0);
}

static void join_negative_timeout_polls(void **state)
{
    (void)state;
    timed_join_t j = {.timeout = -0.5};
    assert_int_equal(weft_event_init(&j.go), 0);
    assert_int_equal(weft_thread_start(wait_go, &j.go, NULL, &j.t), 0);
    assert_int_equal(weft_test_polls(timed_thread_join, &j), WEFT_ETIMEDOUT);
    assert_int_equal(weft_thread_join(j.t, NAN), WEFT_EINVAL);
    j.timeout = WEFT_FOREVER;
    weft_test_blocks_until(timed_thread_join, &j, set_go, &j.go, 0);
    weft_thread_release(j.t);
    assert_int_equal(weft_event_destroy(&j.go), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(join_negative_timeout_polls),
    WEFT_TEST(start_join_runs_fn),
    WEFT_TEST(join_timeout_expires_while_running),
    WEFT_TEST(join_self_is_edeadlk),
    WEFT_TEST(join_from_many_threads),
    WEFT_TEST(join_canceled_returns_ecanceled),
    WEFT_TEST(bad_arguments_are_einval),
    WEFT_TEST(pthread_exit_in_fn_finishes_thread),
    WEFT_TEST(release_running_thread_detaches_it),
    WEFT_TEST(start_failure_leaves_nothing),
    WEFT_TEST(start_out_of_memory),
    WEFT_TEST(ident_is_os_thread_id),
    WEFT_TEST(name_default_and_custom),
    WEFT_TEST(name_too_long_is_einval),
    WEFT_TEST(stack_size_is_honoured),
    WEFT_TEST(stack_size_below_minimum_is_einval),
    WEFT_TEST(current_is_own_handle_and_main_is_main),
    WEFT_TEST(current_in_foreign_thread_is_dummy),
    WEFT_TEST(active_count_and_enumerate_follow_threads),
    WEFT_TEST(exit_joins_non_daemon_threads),
    WEFT_TEST(exit_abandons_daemon_threads),
    WEFT_TEST(fork_resets_registry),
    WEFT_TEST(fork_from_thread_makes_it_main),
};
WEFT_TEST_MAIN(cases)
