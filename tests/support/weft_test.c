/*
 * weft_test.c — the leak guard, the counting allocator behind the OOM loop, and main().
 */
#include "weft_test.h"
#include "weft/debug.h"

#include "core/sys_internal.h"
#include "wait/wait_internal.h"

#include <dirent.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- counting allocator ------------------------------------------------------------------ */

static _Atomic long live_allocs;
static _Atomic long alloc_calls;
static _Atomic long fail_at; /* fail when alloc_calls reaches this (0: never) */
static _Atomic int fail_persist;
static _Atomic long failures;

static int should_fail(void)
{
    long at = atomic_load(&fail_at);
    if (at == 0) return 0;
    long n = atomic_fetch_add(&alloc_calls, 1) + 1;
    if (n == at || (atomic_load(&fail_persist) && n > at)) {
        atomic_fetch_add(&failures, 1);
        return 1;
    }
    return 0;
}

static void *t_malloc(size_t size)
{
    if (should_fail()) return NULL;
    void *p = malloc(size);
    if (p) atomic_fetch_add(&live_allocs, 1);
    return p;
}

static void *t_calloc(size_t count, size_t size)
{
    if (should_fail()) return NULL;
    void *p = calloc(count, size);
    if (p) atomic_fetch_add(&live_allocs, 1);
    return p;
}

static void *t_realloc(void *ptr, size_t size)
{
    if (should_fail()) return NULL;
    void *p = realloc(ptr, size);
    if (p && !ptr) atomic_fetch_add(&live_allocs, 1);
    return p;
}

static void t_free(void *ptr)
{
    if (ptr) atomic_fetch_sub(&live_allocs, 1);
    free(ptr);
}

void weft_test_install_allocator(void)
{
    weft_allocator_set(t_malloc, t_realloc, t_calloc, t_free);
}

long weft_test_live_allocs(void)
{
    return atomic_load(&live_allocs);
}

void weft_test_fail_alloc(long nth, int persistent)
{
    atomic_store(&alloc_calls, 0);
    atomic_store(&failures, 0);
    atomic_store(&fail_persist, persistent);
    atomic_store(&fail_at, nth);
}

long weft_test_oom(int (*body)(void *ctx), void *ctx)
{
    long needed = -1;
    for (int persistent = 0; persistent <= 1; persistent++) {
        for (long n = 1;; n++) {
            assert_true(n < 100000); /* a body that never succeeds */
            long base = weft_test_live_allocs();
            weft_test_fail_alloc(n, persistent);
            int rc = body(ctx);
            long failed = atomic_load(&failures);
            weft_test_fail_alloc(0, 0);
            /* A worker thread may still be on its way out, holding the object it frees last
             * (a pool): give it up to 5 s, as the leak guard does. */
            for (int i = 0; i < 5000 && weft_test_live_allocs() != base; i++) {
                struct timespec ts = {0, 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            if (weft_test_live_allocs() != base)
                fail_msg("OOM run n=%ld (%s) leaked %ld allocations", n,
                         persistent ? "persistent" : "transient", weft_test_live_allocs() - base);
            if (rc == 0 && failed == 0) {
                needed = n - 1;
                break;
            }
            /* An allocation failed: the body may have recovered (rc 0) or reported it. */
            if (rc != 0 && rc != WEFT_ENOMEM)
                fail_msg("OOM run n=%ld returned %s, not WEFT_ENOMEM", n, weft_error_name(rc));
        }
    }
    return needed;
}

/* ---- leak guard -------------------------------------------------------------------------- */

typedef struct snapshot {
    int threads, fds, children, shm;
    long allocs;
} snapshot_t;

/* Entries of path, except dot files and those named with `skip` as prefix (NULL: none). */
static int count_dir(const char *path, const char *skip)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && !(skip && strncmp(e->d_name, skip, strlen(skip)) == 0)) n++;
    closedir(d);
    return n;
}

static int count_children(void)
{
    DIR *d = opendir("/proc");
    if (!d) return -1;
    int n = 0;
    pid_t self = getpid();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        char *paren = strrchr(buf, ')'); /* comm may hold spaces: parse after its ')' */
        int ppid;
        char st;
        if (paren && sscanf(paren + 1, " %c %d", &st, &ppid) == 2 && ppid == self) n++;
    }
    closedir(d);
    return n;
}

void weft__io_kick_release(void); /* src/io/io.c */

/* The caller's own fds counted are the case's: the kick eventfd that the io layer keeps for
 * the thread's fd waits from its first one to its exit is closed first. */
static snapshot_t snap(void)
{
    weft__io_kick_release();
    snapshot_t s;
    s.threads = count_dir("/proc/self/task", NULL);
    s.fds = count_dir("/proc/self/fd", NULL) - 1; /* minus the fd opendir itself holds */
    s.children = count_children();
    /* Open MPI's shared-memory segments are not weft's: an mpirun job of the MPI cases
     * running beside (ctest -j) makes and removes them at any time, and a rank those cases
     * kill leaves its own behind. */
    s.shm = count_dir("/dev/shm", "vader_segment.");
    s.allocs = weft_test_live_allocs();
    return s;
}

static snapshot_t baseline;

/* Back to baseline? Threads and children may only go down: a thread that a previous case
 * joined can still be listed in /proc for a moment when the baseline is taken. /dev/shm too:
 * it is shared with the other cases running at the same time (ctest -j), so an entry of
 * theirs may be gone by the end of this one (a memcheck run on a fresh machine saw 1 -> 0). */
static bool settled(const snapshot_t *now)
{
    return now->threads <= baseline.threads && now->children <= baseline.children &&
           now->fds == baseline.fds && now->shm <= baseline.shm && now->allocs == baseline.allocs;
}

int weft_test_setup(void **state)
{
    (void)state;
    baseline = snap();
    return 0;
}

void weft__hub_shutdown(void); /* src/coro/hub.c */

int weft_test_teardown(void **state)
{
    (void)state;
    /* The case's coroutines on this thread end (canceled) and its hub goes, with its poller. */
    weft__hub_shutdown();
    snapshot_t now = snap();
    /* Up to 5 s for threads to leave the kernel and children to be reaped. */
    for (int i = 0; i < 500 && !settled(&now); i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        now = snap();
    }
    if (settled(&now)) return 0;
    print_error("leak guard: threads %d->%d, fds %d->%d, children %d->%d, /dev/shm %d->%d, "
                "weft allocations %ld->%ld\n",
                baseline.threads, now.threads, baseline.fds, now.fds, baseline.children,
                now.children, baseline.shm, now.shm, baseline.allocs, now.allocs);
    return -1;
}

/* ---- the failpoint loop ------------------------------------------------------------------ */

static bool same_as(const snapshot_t *was, const snapshot_t *now)
{
    return now->threads <= was->threads && now->children <= was->children && now->fds == was->fds &&
           now->shm <= was->shm && now->allocs == was->allocs;
}

long weft_test_faults(int site, int (*body)(void *ctx), void *ctx)
{
    const char *name = weft__failpoint_name(site);
    long needed = -1;
    /* One baseline for every run, lowered when threads, fds or allocations fall below it: a
     * thread joined before (by the caller or by a run) may still be closing its hub when it is
     * taken. */
    snapshot_t was = snap();
    for (int persistent = 0; persistent <= 1; persistent++) {
        for (long n = 1;; n++) {
            assert_true(n < 10000); /* a body that never succeeds */
            assert_int_equal(weft__failpoint_set(site, n, persistent), 0);
            int rc = body(ctx);
            long failed = weft__failpoint_failed(site);
            weft__failpoint_set(site, 0, false);
            snapshot_t now = snap();
            /* Up to 5 s for threads to leave the kernel and children to be reaped. */
            for (int i = 0; i < 500 && !same_as(&was, &now); i++) {
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
                now = snap();
                if (now.fds < was.fds) was.fds = now.fds;
                if (now.threads < was.threads) was.threads = now.threads;
                if (now.allocs < was.allocs) was.allocs = now.allocs;
            }
            if (!same_as(&was, &now))
                fail_msg("%s fails at call %ld (%s): leaked threads %d->%d, fds %d->%d, children "
                         "%d->%d, /dev/shm %d->%d, allocations %ld->%ld",
                         name, n, persistent ? "persistent" : "transient", was.threads, now.threads,
                         was.fds, now.fds, was.children, now.children, was.shm, now.shm, was.allocs,
                         now.allocs);
            if (rc > 0 || (rc < 0 && strncmp(weft_error_name(rc), "WEFT_E", 6) != 0))
                fail_msg("%s fails at call %ld (%s): returned %d, not a WEFT_E* code", name, n,
                         persistent ? "persistent" : "transient", rc);
            if (failed == 0) {
                if (rc != 0)
                    fail_msg("%s: the run without a failure returned %s", name,
                             weft_error_name(rc));
                needed = n - 1;
                break;
            }
        }
    }
    return needed;
}

/* ---- threads and time -------------------------------------------------------------------- */

typedef struct run_arg {
    void (*fn)(void *arg, int i);
    void *arg;
    int i;
} run_arg_t;

static void *run_one(void *p)
{
    run_arg_t *r = p;
    r->fn(r->arg, r->i);
    return NULL;
}

void weft_test_run_threads(int n, void (*fn)(void *arg, int i), void *arg)
{
    pthread_t *tids = calloc((size_t)n, sizeof *tids);
    run_arg_t *args = calloc((size_t)n, sizeof *args);
    assert_non_null(tids);
    assert_non_null(args);
    for (int i = 0; i < n; i++) {
        args[i] = (run_arg_t){fn, arg, i};
        assert_int_equal(pthread_create(&tids[i], NULL, run_one, &args[i]), 0);
    }
    for (int i = 0; i < n; i++) pthread_join(tids[i], NULL);
    free(tids);
    free(args);
}

pthread_t weft_test_start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

void weft_test_join(pthread_t t)
{
    assert_int_equal(pthread_join(t, NULL), 0);
}

int weft_test_queue_length(weft_waitq_t *q)
{
    weft__waitq_lock(q);
    int n = 0;
    for (weft__waiter_t *w = weft__waitq_first(q); w; w = weft__waitq_next(w)) n++;
    weft__waitq_unlock(q);
    return n;
}

void weft_test_wait_queued(weft_waitq_t *q, int n)
{
    /* 60 s: a hang fails here, within the case's timeout (120 s or more), with its line. 10 s
     * was too short for 1,224 TSan fibers to reach an Event on a hub while other tests ran
     * (coro.hubs.idle_hub_gives_back_a_bursts_stacks: 11-18 s at load 4). */
    int64_t give_up = weft_time_monotonic_ns() + 60 * 1000000000LL;
    while (weft_test_queue_length(q) < n) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
}

double weft_test_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- main -------------------------------------------------------------------------------- */

static void *nothing(void *arg)
{
    return arg;
}

int weft_test_main(const struct CMUnitTest *cases, size_t n, int argc, char **argv)
{
    weft_test_install_allocator();
    /* TSan starts a background thread of its own at the first pthread_create: start it now,
     * so it is part of every case's baseline. */
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) == 0) pthread_join(t, NULL);
    if (argc > 1) {
        /* A name that matches no case is a mistake (a renamed case, a typo in CTest), not a
         * pass of zero tests. */
        size_t matched = 0;
        for (size_t i = 0; i < n; i++) matched += fnmatch(argv[1], cases[i].name, 0) == 0;
        if (!matched) {
            fprintf(stderr, "%s: no case matches '%s'\n", argv[0], argv[1]);
            return 1;
        }
        cmocka_set_test_filter(argv[1]);
    }
    return _cmocka_run_group_tests(argv[0], cases, n, NULL, NULL);
}

static void *bg_main(void *p)
{
    struct weft_test_bg_arg *a = p;
    a->fn(a->arg, a->i);
    return NULL;
}

void weft_test_bg_add(weft_test_bg_t *bg, int n, int first, void (*fn)(void *arg, int i), void *arg)
{
    assert_true(bg->n + n <= 16);
    for (int k = 0; k < n; k++, bg->n++) {
        bg->args[bg->n] = (struct weft_test_bg_arg){fn, arg, first + k};
        assert_int_equal(pthread_create(&bg->tid[bg->n], NULL, bg_main, &bg->args[bg->n]), 0);
    }
}

void weft_test_bg_start(weft_test_bg_t *bg, int n, void (*fn)(void *arg, int i), void *arg)
{
    bg->n = 0;
    weft_test_bg_add(bg, n, 0, fn, arg);
}

void weft_test_bg_join(weft_test_bg_t *bg)
{
    for (int i = 0; i < bg->n; i++) assert_int_equal(pthread_join(bg->tid[i], NULL), 0);
    bg->n = 0;
}

weft_process_t *weft_test_process_start(int (*fn)(void *arg), void *arg)
{
    weft_process_t *p;
    assert_int_equal(weft_process_start(fn, arg, NULL, &p), 0);
    return p;
}

int weft_test_process_finish(weft_process_t *p)
{
    int code = -1000;
    assert_int_equal(weft_process_join(p, 60), 0);
    assert_int_equal(weft_process_exitcode(p, &code), 0);
    assert_int_equal(weft_process_release(p), 0);
    return code;
}

/* ---- bounded calls ------------------------------------------------------------------------ */

struct weft_test_call {
    int (*fn)(void *arg);
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    bool done;
    int rc;
    int64_t elapsed_ns;
    pthread_t tid;
};

static void *call_main(void *p)
{
    weft_test_call_t *c = p;
    int64_t t0 = weft_time_monotonic_ns();
    int rc = c->fn(c->arg);
    int64_t elapsed = weft_time_monotonic_ns() - t0;
    pthread_mutex_lock(&c->lock);
    c->rc = rc;
    c->elapsed_ns = elapsed;
    c->done = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

weft_test_call_t *weft_test_call_start(int (*fn)(void *arg), void *arg)
{
    weft_test_call_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fn = fn;
    c->arg = arg;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&c->lock, NULL);
    assert_int_equal(pthread_create(&c->tid, NULL, call_main, c), 0);
    return c;
}

bool weft_test_call_wait(weft_test_call_t *c, double seconds, int *rc, double *elapsed)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t ns = (int64_t)until.tv_nsec + (int64_t)(seconds * 1e9);
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&c->lock);
    while (!c->done && pthread_cond_timedwait(&c->cond, &c->lock, &until) == 0) {
    }
    bool done = c->done;
    pthread_mutex_unlock(&c->lock);
    if (!done) return false; /* still blocked: the caller may wait again */
    assert_int_equal(pthread_join(c->tid, NULL), 0);
    if (rc) *rc = c->rc;
    if (elapsed) *elapsed = (double)c->elapsed_ns / 1e9;
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return true;
}

int weft_test_polls(int (*fn)(void *arg), void *arg)
{
    weft_test_call_t *c = weft_test_call_start(fn, arg);
    int rc = 0;
    double elapsed = 0;
    /* A call that blocks is left behind (the case fails): it may never return. */
    assert_true(weft_test_call_wait(c, 10.0, &rc, &elapsed));
    assert_true(elapsed < 2.0);
    return rc;
}

void weft_test_blocks_until(int (*fn)(void *arg), void *arg, void (*release)(void *arg),
                            void *release_arg, int expect)
{
    weft_test_call_t *c = weft_test_call_start(fn, arg);
    int rc = 0;
    assert_false(weft_test_call_wait(c, 0.1, &rc, NULL)); /* still blocked */
    release(release_arg);
    assert_true(weft_test_call_wait(c, 30.0, &rc, NULL));
    assert_int_equal(rc, expect);
}

int weft_test_setup_patched(void **state)
{
    int rc = weft_test_setup(state);
    if (!rc) rc = weft_monkey_patch();
    return rc;
}

int weft_test_teardown_patched(void **state)
{
    weft_monkey_unpatch();
    return weft_test_teardown(state);
}

weft_co_t *weft_test_spawn(void (*fn)(void *arg), void *arg)
{
    weft_co_t *co;
    assert_int_equal(weft_co_spawn(fn, arg, NULL, &co), 0);
    return co;
}

void weft_test_co_join(weft_co_t *co)
{
    assert_int_equal(weft_co_join(co, 60), 0);
    weft_co_release(co);
}

void *weft_test_acquire_thread(void *p)
{
    weft_test_acquirer_t *a = p;
    atomic_store(&a->ctx, (void *)weft__waitctx_current());
    int64_t t0 = weft_time_monotonic_ns();
    a->result = a->acquire(a->obj, a->timeout);
    a->elapsed_ns = weft_time_monotonic_ns() - t0;
    if (a->result == 0 && a->order) a->position = atomic_fetch_add(a->order, 1);
    if (a->result == 0 && a->release) a->release_result = a->release(a->obj);
    atomic_store(&a->done, 1);
    return NULL;
}

void weft_test_cancel_holding_ctx_lock(void *ctx, void *waiter)
{
    weft__waitctx_t *c = ctx;
    weft__waiter_t *w = waiter;
    atomic_store(&c->cancel, 1);
    uint32_t s = WEFT__W_SLEEPING;
    assert_true(atomic_compare_exchange_strong(&w->state, &s, WEFT__W_CANCELED));
    weft__futex_wake(&w->state, 1, false);
}

void weft_test_wait_at_least(_Atomic int *v, int n)
{
    int64_t give_up = weft_time_monotonic_ns() + 10000000000LL;
    while (atomic_load(v) < n) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
}

void weft_test_wait_thread_asleep(_Atomic int *tid)
{
    int64_t give_up = weft_time_monotonic_ns() + 10000000000LL;
    while (!atomic_load(tid)) {
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", atomic_load(tid));
    for (;;) {
        assert_true(weft_time_monotonic_ns() < give_up);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *end = strrchr(buf, ')'); /* the state follows the command's name */
        if (end && end[1] == ' ' && end[2] == 'S') return;
        sched_yield();
    }
}

/* Not inlined: gcc -O3 took open_memstream's buffer for a dangling local (-Wdangling-pointer). */
__attribute__((noinline)) char *weft_test_dump_text(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(weft_debug_dump(f), 0);
    fclose(f);
    return buf;
}
