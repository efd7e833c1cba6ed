/*
 * scene.c — the program test_gdb.sh runs under gdb: a known scene of parked tasks, then a
 * call of scene_ready() (the test's breakpoint) with all of them parked:
 *   coroutine 'getter'  in weft_queue_get on an empty Queue (getter_waits_for_an_item)
 *   coroutine 'sleeper' in weft_time_sleep(60)             (sleeper_naps)
 *   coroutine 'locker'  in weft_lock_acquire of a Lock the main thread holds (locker_wants_it)
 *   thread 'waiter'     in weft_event_wait on an Event nobody sets (till the end)
 *   thread pool 'crew' (one worker): its worker runs a task waiting on that Event, a second
 *                       task is queued
 *   process 'child'     a child that sleeps until it is terminated
 *   process pool 'pp' (one worker process): its worker runs a task waiting for a file, two
 *                       more wait in its pipe (a worker has none of the scene's descriptors:
 *                       the task's start and end go through files in a directory of /tmp)
 * With SCENE_DUMP=<path> in its environment it writes weft_debug_dump of the scene there
 * first (test_gdb.sh compares the ids `info weft` prints with the dump's).
 * Run without a breakpoint it cleans up and exits 0.
 */
#include <weft/coro.h>
#include <weft/debug.h>
#include <weft/executor.h>
#include <weft/future.h>
#include <weft/process.h>
#include <weft/queue.h>
#include <weft/sync.h>
#include <weft/thread.h>

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static weft_queue_t *queue;
static weft_lock_t lock;
static weft_event_t never;
static _Atomic int waiter_tid, worker_tid;
static char pp_dir[] = "/tmp/weft-gdb-scene.XXXXXX";

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if ((x) != 0) {                                                                            \
            fprintf(stderr, "scene: %s failed\n", #x);                                             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool in_dir(const char *dir, const char *name, bool make)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!make) return access(path, F_OK) == 0;
    FILE *f = fopen(path, "w");
    return f && fclose(f) == 0;
}

/* A process-pool task: says it started, then waits (at most 60 s) for the scene's "go". */
static int pp_task(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)len;
    (void)result;
    (void)result_len;
    if (!in_dir(arg, "started", true)) return 1;
    for (int i = 0; i < 60000 && !in_dir(arg, "go", false); i++) (void)weft_time_sleep(0.001);
    return 0;
}

__attribute__((noinline)) static void getter_waits_for_an_item(void *arg)
{
    (void)arg;
    void *item;
    int rc = weft_queue_get(queue, 60, &item); /* canceled at the end */
    (void)rc;
}

static volatile int slept; /* the sleep's result is kept: the call is no tail call (a jump) */

__attribute__((noinline)) static void sleeper_naps(void *arg)
{
    (void)arg;
    slept = weft_time_sleep(60);
}

__attribute__((noinline)) static void locker_wants_it(void *arg)
{
    (void)arg;
    if (weft_lock_acquire(&lock, 60) == 0) CHECK(weft_lock_release(&lock));
}

static void waiter_main(void *arg)
{
    (void)arg;
    atomic_store(&waiter_tid, (int)syscall(SYS_gettid));
    (void)weft_event_wait(&never, 60);
}

static int crew_task_waits(void *arg, void **result)
{
    (void)arg;
    *result = NULL;
    atomic_store(&worker_tid, (int)syscall(SYS_gettid));
    return weft_event_wait(&never, 60);
}

static int crew_task_queued(void *arg, void **result)
{
    (void)arg;
    *result = NULL;
    return 0;
}

static pid_t scene_pid;

static int child_sleeps(void *arg)
{
    (void)arg;
    /* Dies with the scene (gdb kills it at its end, or qemu-user's with it): the main thread
     * that forked it lives until the scene ends. A scene gone before this line: getppid. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != scene_pid) return 0;
    (void)weft_time_sleep(60);
    return 0;
}

/* The test's breakpoint: every task of the scene is parked when it is called. */
__attribute__((noinline)) void scene_ready(void)
{
    __asm__ volatile("" ::: "memory");
}

/* Until the thread sleeps in the kernel (state S in /proc), 10 s at most. */
static void wait_asleep(_Atomic int *tidp)
{
    for (int i = 0; i < 100000; i++) {
        int tid = atomic_load(tidp);
        if (tid) {
            char path[64], buf[512];
            snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
            FILE *f = fopen(path, "r");
            if (f) {
                size_t n = fread(buf, 1, sizeof buf - 1, f);
                fclose(f);
                buf[n] = 0;
                char *end = strrchr(buf, ')');
                if (end && end[1] == ' ' && end[2] == 'S') return;
            }
        }
        (void)weft_time_sleep(0.0001);
    }
    fprintf(stderr, "scene: the thread never slept\n");
    abort();
}

int main(void)
{
    weft_debug_observe(true); /* record who takes each Lock: the report names holders */
    CHECK(weft_queue_create(WEFT_QUEUE_FIFO, 0, &queue));
    CHECK(weft_lock_init(&lock));
    CHECK(weft_event_init(&never));
    CHECK(weft_lock_acquire(&lock, -1));

    weft_thread_t *t;
    weft_thread_opts_t topts = {.name = "waiter"};
    CHECK(weft_thread_start(waiter_main, NULL, &topts, &t));

    weft_co_t *co[3];
    void (*fns[3])(void *) = {getter_waits_for_an_item, sleeper_naps, locker_wants_it};
    const char *names[3] = {"getter", "sleeper", "locker"};
    for (int i = 0; i < 3; i++) {
        weft_co_opts_t opts = {.name = names[i]};
        CHECK(weft_co_spawn(fns[i], NULL, &opts, &co[i]));
    }
    /* The main thread's root runs them until each has parked. */
    for (int spins = 0;; spins++) {
        int parked = 0;
        for (int i = 0; i < 3; i++) parked += weft_co_state(co[i]) == WEFT_CO_BLOCKED;
        if (parked == 3) break;
        if (spins > 100000) {
            fprintf(stderr, "scene: the coroutines never parked\n");
            abort();
        }
        CHECK(weft_co_yield());
    }
    wait_asleep(&waiter_tid);

    weft_executor_t *crew;
    weft_thread_pool_opts_t popts = {.thread_name_prefix = "crew"};
    CHECK(weft_thread_pool_create(1, &popts, &crew));
    weft_future_t *f[2];
    CHECK(weft_executor_submit(crew, crew_task_waits, NULL, &f[0]));
    CHECK(weft_executor_submit(crew, crew_task_queued, NULL, &f[1]));
    wait_asleep(&worker_tid);

    if (!mkdtemp(pp_dir)) abort();
    weft_executor_t *pp;
    weft_process_pool_opts_t ppopts = WEFT_PROCESS_POOL_OPTS_INIT;
    ppopts.process_name_prefix = "pp";
    CHECK(weft_process_pool_create(1, &ppopts, &pp));
    weft_future_t *pf[3];
    for (int i = 0; i < 3; i++)
        CHECK(weft_process_pool_submit(pp, pp_task, pp_dir, sizeof pp_dir, &pf[i]));
    for (int i = 0; i < 30000 && !in_dir(pp_dir, "started", false); i++)
        (void)weft_time_sleep(0.001);
    if (!in_dir(pp_dir, "started", false)) abort();
    /* The pool's thread hands the other two to the worker right after the first: until the
     * dump says so. */
    for (int i = 0, queued = 0; queued < 2; i++) {
        if (i == 30000) abort();
        char *text = NULL;
        size_t n = 0;
        FILE *m = open_memstream(&text, &n);
        if (!m) abort();
        CHECK(weft_debug_dump(m));
        fclose(m);
        queued = 0;
        for (const char *q = strstr(text, "queued for process"); q; q = strstr(q + 1, "queued for"))
            queued++;
        free(text);
        if (queued < 2) (void)weft_time_sleep(0.001);
    }

    weft_process_t *child;
    scene_pid = getpid();
    weft_process_opts_t copts = {.name = "child"};
    CHECK(weft_process_start(child_sleeps, NULL, &copts, &child));

    const char *dump = getenv("SCENE_DUMP");
    if (dump) {
        FILE *f = fopen(dump, "w");
        if (!f) abort();
        CHECK(weft_debug_dump(f));
        CHECK(fclose(f));
    }

    scene_ready();

    CHECK(weft_event_set(&never));
    CHECK(weft_thread_join(t, 10));
    CHECK(weft_thread_release(t));
    void *value;
    for (int i = 0; i < 2; i++) {
        CHECK(weft_future_result(f[i], 10, &value));
        CHECK(weft_future_release(f[i]));
    }
    CHECK(weft_executor_shutdown(crew, true, false, 10));
    CHECK(weft_executor_release(crew));
    if (!in_dir(pp_dir, "go", true)) abort();
    for (int i = 0; i < 3; i++) {
        CHECK(weft_future_error(pf[i], 30, NULL));
        CHECK(weft_future_release(pf[i]));
    }
    CHECK(weft_executor_shutdown(pp, true, false, 10));
    CHECK(weft_executor_release(pp));
    char path[128];
    snprintf(path, sizeof path, "%s/started", pp_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/go", pp_dir);
    unlink(path);
    rmdir(pp_dir);
    CHECK(weft_process_terminate(child));
    CHECK(weft_process_join(child, 10));
    CHECK(weft_process_release(child));
    CHECK(weft_lock_release(&lock));
    for (int i = 0; i < 3; i++) {
        CHECK(weft_co_cancel(co[i]));
        CHECK(weft_co_join(co[i], 10));
        CHECK(weft_co_release(co[i]));
    }
    CHECK(weft_queue_release(queue));
    CHECK(weft_lock_destroy(&lock));
    CHECK(weft_event_destroy(&never));
    puts("scene: done");
    return 0;
}
