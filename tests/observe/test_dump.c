/*
 * The task dump (weft/debug.h): a known scene — a thread blocked on a named Lock another
 * thread holds, coroutines on a named Queue's get and in a sleep, a thread joining a child
 * process, a pool task running (blocked on a named Event) and one queued, a thread waiting to
 * read an fd — printed and checked line by line (parsed, no timing); the dump on a signal;
 * the errors; object names (set, cut, removed, dropped by destroy); the OOM loop.
 *
 * Synchronisation: the scene is complete when the snapshot itself shows every task blocked
 * (polled, bounded), never by sleeping for a guess.
 */
#include "weft_test.h"

#include "observe/observe_internal.h"
#include "weft/debug.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------------- */

/* The text after "': " on the line of task `kind` named `name` (a copy, malloc'd), or NULL. */
/* Lock holders are recorded only while the process observes them (sync_internal.h): this
 * turns that on alone, so the report's words stay those of a run without park stamps. */
static void owners_on(void)
{
    atomic_fetch_or_explicit(&weft__observing, WEFT__OBSERVE_OWNERS, memory_order_relaxed);
}

static char *line_of(const char *text, const char *kind, const char *name)
{
    char key[160];
    snprintf(key, sizeof key, "'%s': ", name);
    for (const char *l = text; *l;) {
        const char *end = strchr(l, '\n');
        size_t n = end ? (size_t)(end - l) : strlen(l);
        const char *s = l;
        while (*s == ' ') s++;
        const char *k = strstr(s, key);
        if (strncmp(s, kind, strlen(kind)) == 0 && s[strlen(kind)] == ' ' && k && k < l + n) {
            const char *rest = k + strlen(key);
            return strndup(rest, (size_t)(l + n - rest));
        }
        if (!end) break;
        l = end + 1;
    }
    return NULL;
}

static void expect_line(const char *text, const char *kind, const char *name, const char *want)
{
    char *got = line_of(text, kind, name);
    if (!got || strcmp(got, want) != 0)
        fail_msg("%s '%s': got \"%s\", want \"%s\"\n%s", kind, name, got ? got : "(none)", want,
                 text);
    free(got);
}

/* Whether the snapshot shows the task named `name` blocked. */
static bool blocked(const weft__tasks_t *ts, const char *name)
{
    for (size_t i = 0; i < ts->n; i++)
        if (strcmp(ts->v[i].name, name) == 0) return ts->v[i].state == WEFT__TASK_BLOCKED;
    return false;
}

/* Parks the caller (so the caller's coroutines run) until every name is blocked; 20 s. */
static void wait_blocked(const char *const *names, size_t n)
{
    int64_t give_up = weft_time_monotonic_ns() + 20 * 1000000000LL;
    for (;;) {
        weft__tasks_t ts;
        assert_int_equal(weft__tasks_snapshot(&ts), 0);
        size_t k = 0;
        while (k < n && blocked(&ts, names[k])) k++;
        weft__tasks_free(&ts);
        if (k == n) return;
        if (weft_time_monotonic_ns() > give_up) fail_msg("'%s' never blocked", names[k]);
        weft_time_sleep(0.002);
    }
}

/* ---- the scene -------------------------------------------------------------------------- */

typedef struct scene {
    weft_lock_t x;
    weft_event_t held, release, started, gate;
    weft_queue_t *jobs;
    weft_process_t *child;
    int fds[2];
} scene_t;

static int child_main(void *arg)
{
    (void)arg;
    for (;;) pause(); /* until the parent terminates it */
    return 0;
}

static void holder(void *arg)
{
    scene_t *s = arg;
    assert_int_equal(weft_lock_acquire(&s->x, WEFT_FOREVER), 0);
    weft_event_set(&s->held);
    assert_int_equal(weft_event_wait(&s->release, WEFT_FOREVER), 0);
    weft_lock_release(&s->x);
}

static void waiter(void *arg)
{
    scene_t *s = arg;
    assert_int_equal(weft_lock_acquire(&s->x, WEFT_FOREVER), 0);
    weft_lock_release(&s->x);
}

static void joiner(void *arg)
{
    scene_t *s = arg;
    assert_int_equal(weft_process_join(s->child, WEFT_FOREVER), 0);
}

static void reader(void *arg)
{
    scene_t *s = arg;
    int rev = 0;
    assert_true(weft_fd_wait(s->fds[0], WEFT_READ, WEFT_FOREVER, &rev) > 0 || rev != 0);
}

static void getter(void *arg)
{
    scene_t *s = arg;
    void *item;
    assert_int_equal(weft_queue_get(s->jobs, WEFT_FOREVER, &item), 0);
}

static void sleeper(void *arg)
{
    (void)arg;
    weft_time_sleep(60); /* canceled at the end */
}

static int gated_task(void *arg, void **result)
{
    scene_t *s = arg;
    (void)result;
    weft_event_set(&s->started);
    return weft_event_wait(&s->gate, WEFT_FOREVER);
}

static int quick_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static weft_thread_t *start_named(void (*fn)(void *), void *arg, const char *name)
{
    weft_thread_opts_t o = {.name = name};
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(fn, arg, &o, &t), 0);
    return t;
}

static weft_co_t *spawn_named(void (*fn)(void *), void *arg, const char *name)
{
    weft_co_opts_t o = {.name = name};
    weft_co_t *co;
    assert_int_equal(weft_co_spawn(fn, arg, &o, &co), 0);
    return co;
}

static void dump_shows_a_known_scene_line_by_line(void **state)
{
    (void)state;
    owners_on();
    scene_t s;
    assert_int_equal(weft_lock_init(&s.x), 0);
    weft_event_init(&s.held);
    weft_event_init(&s.release);
    weft_event_init(&s.started);
    weft_event_init(&s.gate);
    assert_int_equal(weft_lock_set_name(&s.x, "x"), 0);
    assert_int_equal(weft_event_set_name(&s.release, "release"), 0);
    assert_int_equal(weft_event_set_name(&s.gate, "gate"), 0);
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 0, &s.jobs), 0);
    assert_int_equal(weft_queue_set_name(s.jobs, "jobs"), 0);
    assert_int_equal(pipe2(s.fds, O_CLOEXEC), 0);

    /* The child first: forked while this process has one thread. */
    weft_process_opts_t po = {.name = "child"};
    assert_int_equal(weft_process_start(child_main, NULL, &po, &s.child), 0);
    weft_thread_t *th = start_named(holder, &s, "holder");
    assert_int_equal(weft_event_wait(&s.held, 30), 0);
    weft_thread_t *tw = start_named(waiter, &s, "waiter");
    weft_thread_t *tj = start_named(joiner, &s, "joiner");
    weft_thread_t *tr = start_named(reader, &s, "reader");

    weft_thread_pool_opts_t o = {.thread_name_prefix = "pool"};
    weft_executor_t *pool;
    assert_int_equal(weft_thread_pool_create(1, &o, &pool), 0);
    weft_future_t *fa, *fb;
    assert_int_equal(weft_executor_submit(pool, gated_task, &s, &fa), 0);
    assert_int_equal(weft_future_set_name(fa, "gated"), 0);
    assert_int_equal(weft_event_wait(&s.started, 30), 0);
    assert_int_equal(weft_executor_submit(pool, quick_task, NULL, &fb), 0);

    weft_co_t *cg = spawn_named(getter, &s, "getter");
    weft_co_t *cs = spawn_named(sleeper, NULL, "sleeper");

    const char *const names[] = {"waiter", "holder", "joiner", "reader",
                                 "pool_0", "gated",  "getter", "sleeper"};
    wait_blocked(names, sizeof names / sizeof *names);
    char *text = weft_test_dump_text();

    char want[256];
    snprintf(want, sizeof want, "weft dump: pid %d, ", (int)getpid());
    assert_memory_equal(text, want, strlen(want));
    expect_line(text, "thread", "waiter", "blocked on Lock 'x' held by thread 'holder'");
    expect_line(text, "thread", "holder", "blocked on Event 'release'");
    snprintf(want, sizeof want, "blocked on process %ld join", weft_process_pid(s.child));
    expect_line(text, "thread", "joiner", want);
    snprintf(want, sizeof want, "blocked on fd %d read", s.fds[0]);
    expect_line(text, "thread", "reader", want);
    /* The worker's running task stands for it: one line, the task's, not the thread's too. */
    char *worker = line_of(text, "thread", "pool_0");
    if (worker) fail_msg("the worker thread has a line of its own: %s\n%s", worker, text);
    expect_line(text, "pool task", "gated", "blocked on Event 'gate' in thread 'pool_0'");
    expect_line(text, "pool task", "task", "ready");
    expect_line(text, "process", "child", "running");
    expect_line(text, "thread", "MainThread", "running");
    expect_line(text, "coroutine", "getter", "blocked on Queue 'jobs' get");
    /* "blocked on sleep until +<s> s", s a little under 60. */
    char *sl = line_of(text, "coroutine", "sleeper");
    assert_non_null(sl);
    double left = 0;
    assert_int_equal(sscanf(sl, "blocked on sleep until +%lf s", &left), 1);
    assert_true(left > 30 && left <= 60);
    free(sl);
    /* The coroutines are grouped under their thread: indented, right after it. */
    const char *main_line = strstr(text, "'MainThread': running\n");
    assert_non_null(main_line);
    const char *next = strchr(main_line, '\n') + 1;
    assert_memory_equal(next, "  coroutine ", 12);
    next = strchr(next, '\n') + 1;
    assert_memory_equal(next, "  coroutine ", 12);
    free(text);

    /* Take the scene down. */
    weft_event_set(&s.release);
    weft_event_set(&s.gate);
    assert_int_equal(weft_queue_put(s.jobs, NULL, WEFT_FOREVER), 0);
    weft_co_cancel(cs);
    assert_int_equal(write(s.fds[1], "x", 1), 1);
    assert_int_equal(weft_process_terminate(s.child), 0);
    weft_test_co_join(cg);
    weft_test_co_join(cs);
    weft_thread_t *ts[] = {th, tw, tj, tr};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(weft_thread_join(ts[i], 30), 0);
        weft_thread_release(ts[i]);
    }
    assert_int_equal(weft_future_result(fa, 30, NULL), 0);
    assert_int_equal(weft_future_result(fb, 30, NULL), 0);
    weft_future_release(fa);
    weft_future_release(fb);
    assert_int_equal(weft_executor_shutdown(pool, true, false, 30), 0);
    weft_executor_release(pool);
    assert_int_equal(weft_process_release(s.child), 0);
    close(s.fds[0]);
    close(s.fds[1]);
    assert_int_equal(weft_queue_release(s.jobs), 0);
    assert_int_equal(weft_lock_destroy(&s.x), 0);
    weft_event_destroy(&s.held);
    weft_event_destroy(&s.release);
    weft_event_destroy(&s.started);
    weft_event_destroy(&s.gate);
    weft__names_reset();
}

/* A process pool's tasks: the one its worker runs, those waiting in the worker's pipe, those
 * still queued, each with its worker process. A worker has none of the parent's descriptors:
 * the task signals through files in a directory whose path is its argument. */
static bool exists_in(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static int touch_in(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    return fd < 0 ? -1 : close(fd);
}

static int pp_task(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)len;
    (void)result;
    (void)result_len;
    if (touch_in(arg, "started") != 0) return 1;
    for (int i = 0; i < 30000 && !exists_in(arg, "go"); i++) weft_time_sleep(0.001);
    return 0;
}

static void dump_shows_process_pool_tasks_and_their_worker(void **state)
{
    (void)state;
    char dir[] = "/tmp/weft-dump-XXXXXX";
    assert_non_null(mkdtemp(dir));
    weft_executor_t *pool;
    weft_process_pool_opts_t o = WEFT_PROCESS_POOL_OPTS_INIT;
    o.process_name_prefix = "pp";
    assert_int_equal(weft_process_pool_create(1, &o, &pool), 0);
    assert_int_equal(weft_executor_set_name(pool, "pp"), 0);
    enum { N = 7 };
    weft_future_t *f[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(weft_process_pool_submit(pool, pp_task, dir, sizeof dir, &f[i]), 0);
    for (int i = 0; i < 20000 && !exists_in(dir, "started"); i++) weft_time_sleep(0.001);
    assert_true(exists_in(dir, "started")); /* the first one runs */
    long pid = 0;
    int running = 0, in_pipe = 0, queued = 0;
    char *text = NULL;
    /* The pool thread hands out the pipelined ones right after the first: look until it did. */
    for (int tries = 0; tries < 2000 && in_pipe == 0; tries++) {
        free(text);
        text = weft_test_dump_text();
        running = in_pipe = queued = 0;
        for (const char *l = strstr(text, "'pp task': "); l; l = strstr(l + 1, "'pp task': ")) {
            const char *rest = l + strlen("'pp task': ");
            long p;
            if (sscanf(rest, "running in process %ld", &p) == 1) {
                running++;
                pid = p;
            } else if (sscanf(rest, "ready queued for process %ld", &p) == 1) {
                in_pipe++;
            } else if (strncmp(rest, "ready\n", 6) == 0) {
                queued++;
            }
        }
        if (in_pipe == 0) weft_time_sleep(0.005);
    }
    if (running != 1 || in_pipe < 1 || running + in_pipe + queued != N || pid <= 0)
        fail_msg("running %d, in the pipe %d, queued %d:\n%s", running, in_pipe, queued, text);
    char want[64];
    snprintf(want, sizeof want, "running in process %ld", pid);
    expect_line(text, "pool task", "pp task", want); /* the first of the pool's tasks */
    snprintf(want, sizeof want, "process %ld 'pp_0': running", pid);
    if (!strstr(text, want)) fail_msg("no line for the worker process:\n%s", text);
    free(text);
    assert_int_equal(touch_in(dir, "go"), 0); /* every task ends */
    for (int i = 0; i < N; i++) {
        assert_int_equal(weft_future_error(f[i], 30, NULL), 0);
        weft_future_release(f[i]);
    }
    assert_int_equal(weft_executor_shutdown(pool, true, false, 30), 0);
    assert_int_equal(weft_executor_release(pool), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/started", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/go", dir);
    unlink(path);
    rmdir(dir);
    weft__names_reset();
}

/* A future cancelled while queued is no task any more (its pool drops it only when a worker
 * reaches it); a wait on an unnamed future of a named pool names it as its task line does. */
typedef struct fut_wait {
    weft_future_t *f;
} fut_wait_t;

static void waits_future(void *arg)
{
    fut_wait_t *w = arg;
    assert_int_equal(weft_future_error(w->f, WEFT_FOREVER, NULL), 0);
}

static void dump_leaves_out_cancelled_tasks_and_names_futures_as_their_tasks(void **state)
{
    (void)state;
    scene_t s;
    weft_event_init(&s.started);
    weft_event_init(&s.gate);
    assert_int_equal(weft_event_set_name(&s.gate, "gate"), 0);
    weft_executor_t *pool;
    assert_int_equal(weft_thread_pool_create(1, NULL, &pool), 0);
    assert_int_equal(weft_executor_set_name(pool, "jobs"), 0);
    weft_future_t *fa, *fb, *fc;
    assert_int_equal(weft_executor_submit(pool, gated_task, &s, &fa), 0);
    assert_int_equal(weft_event_wait(&s.started, 30), 0);
    assert_int_equal(weft_executor_submit(pool, quick_task, NULL, &fb), 0);
    assert_int_equal(weft_executor_submit(pool, quick_task, NULL, &fc), 0);
    assert_int_equal(weft_future_set_name(fc, "to-cancel"), 0);
    assert_int_equal(weft_future_cancel(fc), 0);
    fut_wait_t w = {fb};
    weft_thread_t *t = start_named(waits_future, &w, "fwaiter");
    const char *const names[] = {"fwaiter"};
    wait_blocked(names, 1);
    char *text = weft_test_dump_text();
    if (strstr(text, "'to-cancel': ")) fail_msg("a cancelled task is listed:\n%s", text);
    expect_line(text, "thread", "fwaiter", "blocked on Future 'jobs task'");
    expect_line(text, "pool task", "jobs task", "blocked on Event 'gate' in thread 'weft_pool_0'");
    free(text);
    assert_int_equal(weft_event_set(&s.gate), 0);
    assert_int_equal(weft_thread_join(t, 30), 0);
    weft_thread_release(t);
    weft_future_release(fa);
    weft_future_release(fb);
    weft_future_release(fc);
    assert_int_equal(weft_executor_shutdown(pool, true, false, 30), 0);
    assert_int_equal(weft_executor_release(pool), 0);
    weft_event_destroy(&s.started);
    weft_event_destroy(&s.gate);
    weft__names_reset();
}

/* weft's own threads (a process pool's manager, the deadlock watchdog) are not the program's
 * tasks: the dump lists them apart, after the tasks, and does not count them. */
static void dump_lists_weft_threads_apart(void **state)
{
    (void)state;
    weft_executor_t *pool;
    weft_process_pool_opts_t o = WEFT_PROCESS_POOL_OPTS_INIT;
    o.process_name_prefix = "pp";
    assert_int_equal(weft_process_pool_create(1, &o, &pool), 0);
    assert_int_equal(weft_debug_deadlock_check_start(3600), 0);
    char *text = NULL;
    for (int tries = 0; tries < 2000; tries++) { /* until both threads listed themselves */
        free(text);
        text = weft_test_dump_text();
        if (strstr(text, "'pp': ") && strstr(text, "'weft-deadlock': ")) break;
        weft_time_sleep(0.005);
    }
    const char *own = strstr(text, "weft's own threads:\n");
    const char *pp = strstr(text, "'pp': ");
    const char *dl = strstr(text, "'weft-deadlock': ");
    if (!own || !pp || !dl || pp < own || dl < own) fail_msg("dump:\n%s", text);
    size_t n = 0;
    for (const char *l = text; l < own; l = strchr(l, '\n') + 1) n++;
    char head[64];
    snprintf(head, sizeof head, "weft dump: pid %d, %zu tasks\n", (int)getpid(), n - 1);
    if (strncmp(text, head, strlen(head)) != 0) fail_msg("want \"%s\":\n%s", head, text);
    free(text);
    assert_int_equal(weft_debug_deadlock_check_stop(), 0);
    weft_debug_observe(false); /* the watchdog turned it on */
    assert_int_equal(weft_executor_shutdown(pool, true, false, 30), 0);
    assert_int_equal(weft_executor_release(pool), 0);
}

/* A coroutine holding a Lock a thread waits for: "held by coroutine". */
typedef struct co_hold {
    weft_lock_t l;
    weft_event_t go;
} co_hold_t;

static void co_holder(void *arg)
{
    co_hold_t *h = arg;
    assert_int_equal(weft_lock_acquire(&h->l, WEFT_FOREVER), 0);
    assert_int_equal(weft_event_wait(&h->go, WEFT_FOREVER), 0);
    weft_lock_release(&h->l);
}

static void thread_waiting(void *arg)
{
    co_hold_t *h = arg;
    assert_int_equal(weft_lock_acquire(&h->l, WEFT_FOREVER), 0);
    weft_lock_release(&h->l);
}

static void dump_names_a_coroutine_as_lock_holder(void **state)
{
    (void)state;
    owners_on();
    co_hold_t h;
    weft_lock_init(&h.l);
    weft_event_init(&h.go);
    weft_lock_set_name(&h.l, "db");
    weft_co_t *co = spawn_named(co_holder, &h, "owner");
    const char *const first[] = {"owner"};
    wait_blocked(first, 1);
    weft_thread_t *t = start_named(thread_waiting, &h, "client");
    const char *const names[] = {"client"};
    wait_blocked(names, 1);
    char *text = weft_test_dump_text();
    expect_line(text, "thread", "client", "blocked on Lock 'db' held by coroutine 'owner'");
    free(text);
    weft_event_set(&h.go);
    weft_test_co_join(co);
    assert_int_equal(weft_thread_join(t, 30), 0);
    weft_thread_release(t);
    weft_lock_destroy(&h.l);
    weft_event_destroy(&h.go);
    weft__names_reset();
}

/* With observing on, a wait says for how long (a number, not checked against a clock). */
static void block_forever(void *arg)
{
    weft_event_wait(arg, WEFT_FOREVER);
}

static void dump_says_for_how_long_when_observing(void **state)
{
    (void)state;
    weft_event_t e;
    weft_event_init(&e);
    weft_debug_observe(true);
    weft_thread_t *t = start_named(block_forever, &e, "stamped");
    const char *const names[] = {"stamped"};
    wait_blocked(names, 1);
    char *text = weft_test_dump_text();
    char *l = line_of(text, "thread", "stamped");
    assert_non_null(l);
    char what[64];
    double secs = -1;
    assert_int_equal(sscanf(l, "blocked on Event %63s for %lf s", what, &secs), 2);
    assert_true(secs >= 0);
    free(l);
    free(text);
    weft_debug_observe(false);
    weft_event_set(&e);
    assert_int_equal(weft_thread_join(t, 30), 0);
    weft_thread_release(t);
    weft_event_destroy(&e);
}

/* ---- errors, names ---------------------------------------------------------------------- */

static void dump_to_null_file_is_einval(void **state)
{
    (void)state;
    assert_int_equal(weft_debug_dump(NULL), WEFT_EINVAL);
    assert_int_equal(weft__tasks_snapshot(NULL), WEFT_EINVAL);
    weft__tasks_free(NULL); /* nothing */
}

static void set_name_of_null_is_einval(void **state)
{
    (void)state;
    assert_int_equal(weft_lock_set_name(NULL, "a"), WEFT_EINVAL);
    assert_int_equal(weft_rlock_set_name(NULL, "a"), WEFT_EINVAL);
    assert_int_equal(weft_semaphore_set_name(NULL, "a"), WEFT_EINVAL);
    assert_int_equal(weft_event_set_name(NULL, "a"), WEFT_EINVAL);
    assert_int_equal(weft_condition_set_name(NULL, "a"), WEFT_EINVAL);
    assert_int_equal(weft_barrier_set_name(NULL, "a"), WEFT_EINVAL);
    assert_int_equal(weft_timer_set_name(NULL, "a"), WEFT_EINVAL);
    assert_int_equal(weft_queue_set_name(NULL, "a"), WEFT_EINVAL);
    assert_int_equal(weft_future_set_name(NULL, "a"), WEFT_EINVAL);
    assert_int_equal(weft_executor_set_name(NULL, "a"), WEFT_EINVAL);
    assert_int_equal(weft_conn_set_name(NULL, "a"), WEFT_EINVAL);
    assert_int_equal(weft_mpqueue_set_name(NULL, "a"), WEFT_EINVAL);
}

/* A name is one line of the dump's: a newline, an escape or a quote in it would let a name
 * write lines of its own ("weft: deadlock: ..."). They show as '?'. (Before: printed raw.) */
static void names_cannot_forge_dump_lines(void **state)
{
    (void)state;
    weft_lock_t l;
    weft_lock_init(&l);
    assert_int_equal(weft_lock_set_name(&l, "evil'\nweft: deadlock: FAKE\x1b[31m"), 0);
    char buf[WEFT__NAME_MAX];
    assert_true(weft__name_get(&l, buf, sizeof buf));
    assert_string_equal(buf, "evil??weft: deadlock: FAKE?[31m");
    assert_int_equal(weft_lock_destroy(&l), 0);
    weft__names_reset();
}

/* A re-initialised object starts without a name (an array slot reused for a new connection's
 * Lock showed the old connection's name). (Before: the old name stayed.) */
static void init_forgets_an_old_name(void **state)
{
    (void)state;
    char buf[WEFT__NAME_MAX];
    weft_lock_t l;
    weft_lock_init(&l);
    assert_int_equal(weft_lock_set_name(&l, "conn-5"), 0);
    weft_lock_init(&l);
    assert_false(weft__name_get(&l, buf, sizeof buf));
    weft_event_t e;
    weft_event_init(&e);
    assert_int_equal(weft_event_set_name(&e, "old"), 0);
    weft_event_init(&e);
    assert_false(weft__name_get(&e, buf, sizeof buf));
    weft_semaphore_t s;
    weft_semaphore_init(&s, 1, false);
    assert_int_equal(weft_semaphore_set_name(&s, "old"), 0);
    weft_semaphore_init(&s, 1, false);
    assert_false(weft__name_get(&s, buf, sizeof buf));
    weft__names_reset();
}

static void names_are_cut_removed_and_dropped_by_destroy(void **state)
{
    (void)state;
    char buf[WEFT__NAME_MAX + 8];
    weft_lock_t l;
    weft_lock_init(&l);
    char longname[100];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(weft_lock_set_name(&l, longname), 0);
    assert_true(weft__name_get(&l, buf, sizeof buf));
    assert_int_equal(strlen(buf), WEFT__NAME_MAX - 1);
    assert_int_equal(weft_lock_set_name(&l, ""), 0); /* removed */
    assert_false(weft__name_get(&l, buf, sizeof buf));
    assert_int_equal(weft_lock_set_name(&l, "x"), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
    assert_false(weft__name_get(&l, buf, sizeof buf)); /* dropped */
    weft_semaphore_t s;
    weft_semaphore_init(&s, 1, false);
    weft_semaphore_set_name(&s, "s");
    weft_semaphore_destroy(&s);
    assert_false(weft__name_get(&s, buf, sizeof buf));
    weft_queue_t *q;
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 0, &q), 0);
    weft_queue_set_name(q, "q");
    assert_true(weft__name_get(q, buf, sizeof buf));
    const void *qa = q;
    weft_queue_release(q);
    assert_false(weft__name_get(qa, buf, sizeof buf));
    weft__names_reset();
}

/* ---- the signal ------------------------------------------------------------------------- */

static void signal_prints_the_dump_and_the_program_goes_on(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    assert_int_equal(weft__dump_signal_start(SIGUSR1, fds[1]), 0);
    assert_int_equal(weft__dump_signal_start(SIGUSR2, fds[1]), WEFT_EBUSY);
    assert_int_equal(raise(SIGUSR1), 0);
    /* Read until the dump names this thread (the dump thread writes it whole, then flushes). */
    char text[8192];
    size_t n = 0;
    char want[64];
    snprintf(want, sizeof want, "thread %d 'MainThread': ", (int)getpid());
    while (n < sizeof text - 1) {
        ssize_t got = read(fds[0], text + n, sizeof text - 1 - n);
        assert_true(got > 0);
        n += (size_t)got;
        text[n] = '\0';
        if (strstr(text, want) && text[n - 1] == '\n') break;
    }
    assert_memory_equal(text, "weft dump: pid ", 15);
    assert_non_null(strstr(text, "'weft-dump': running\n")); /* the printing thread itself */
    weft__dump_signal_stop();
    weft_debug_observe(false);
    close(fds[0]);
    close(fds[1]);
}

/* A forked child has no dump thread: the signal's old action is back there (a group signal,
 * as Ctrl-\\ sends, must not make a child write its byte into the pipe's old fd number, which
 * the child may have reused for a file of its own), and the child has no copy of the pipe. */
static int child_sees_old_action(void *arg)
{
    int rfd = *(int *)arg;
    struct sigaction sa;
    if (sigaction(SIGUSR2, NULL, &sa) != 0) return 1;
    if (sa.sa_handler != SIG_DFL) return 2;
    return fcntl(rfd, F_GETFD) == -1 ? 0 : 3; /* the parent's pipe is not the child's */
}

static void forked_child_does_not_keep_the_dump_signal(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    assert_int_equal(weft__dump_signal_start(SIGUSR2, fds[1]), 0);
    /* The pipe's read end: the lowest fd the start opened after `fds`. */
    int probe = fds[1] + 1;
    weft_process_t *p;
    assert_int_equal(weft_process_start(child_sees_old_action, &probe, NULL, &p), 0);
    assert_int_equal(weft_process_join(p, 30), 0);
    int code = -1;
    assert_int_equal(weft_process_exitcode(p, &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(weft_process_release(p), 0);
    pid_t pid = fork(); /* a plain fork too */
    assert_true(pid >= 0);
    if (pid == 0) _exit(child_sees_old_action(&probe));
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    weft__dump_signal_stop();
    weft_debug_observe(false);
    close(fds[0]);
    close(fds[1]);
}

static void dump_signal_names_parse(void **state)
{
    (void)state;
    assert_int_equal(weft__dump_signal_parse("QUIT"), SIGQUIT);
    assert_int_equal(weft__dump_signal_parse("SIGUSR1"), SIGUSR1);
    assert_int_equal(weft__dump_signal_parse("USR2"), SIGUSR2);
    assert_int_equal(weft__dump_signal_parse("10"), 10);
    assert_int_equal(weft__dump_signal_parse(""), 0);
    assert_int_equal(weft__dump_signal_parse(NULL), 0);
    assert_int_equal(weft__dump_signal_parse("NOPE"), 0);
    assert_int_equal(weft__dump_signal_parse("9999"), 0);
    assert_int_equal(weft__dump_signal_start(SIGKILL, 2), WEFT_EINVAL);
    assert_int_equal(weft__dump_signal_start(SIGUSR1, -1), WEFT_EINVAL);
}

/* ---- OOM -------------------------------------------------------------------------------- */

static void sleeper_none(void *arg)
{
    (void)arg;
}

static int dump_scene_body(void *arg)
{
    (void)arg;
    weft_lock_t l;
    weft_lock_init(&l);
    int rc = weft_lock_set_name(&l, "oom");
    weft_co_t *co = NULL;
    if (!rc) rc = weft_co_spawn(sleeper, NULL, NULL, &co);
    if (!rc) weft_co_yield(); /* it parks in its sleep */
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0;
    if (!rc) f = open_memstream(&buf, &len);
    if (!rc && f) rc = weft_debug_dump(f);
    if (f) fclose(f);
    free(buf);
    if (co) {
        weft_co_cancel(co);
        weft_co_join(co, 30);
        weft_co_release(co);
    }
    weft_lock_destroy(&l);
    weft__names_reset();
    return rc;
}

static void dump_survives_every_allocation_failure(void **state)
{
    (void)state;
    /* The thread's hub first: it stays until the case's teardown, not counted by a run. */
    weft_test_co_join(weft_test_spawn(sleeper_none, NULL));
    assert_true(weft_test_oom(dump_scene_body, NULL) > 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(dump_shows_a_known_scene_line_by_line),
    WEFT_TEST(dump_shows_process_pool_tasks_and_their_worker),
    WEFT_TEST(dump_leaves_out_cancelled_tasks_and_names_futures_as_their_tasks),
    WEFT_TEST(dump_lists_weft_threads_apart),
    WEFT_TEST(dump_names_a_coroutine_as_lock_holder),
    WEFT_TEST(dump_says_for_how_long_when_observing),
    WEFT_TEST(dump_to_null_file_is_einval),
    WEFT_TEST(set_name_of_null_is_einval),
    WEFT_TEST(names_are_cut_removed_and_dropped_by_destroy),
    WEFT_TEST(names_cannot_forge_dump_lines),
    WEFT_TEST(init_forgets_an_old_name),
    WEFT_TEST(signal_prints_the_dump_and_the_program_goes_on),
    WEFT_TEST(forked_child_does_not_keep_the_dump_signal),
    WEFT_TEST(dump_signal_names_parse),
    WEFT_TEST(dump_survives_every_allocation_failure),
};
WEFT_TEST_MAIN(cases)
