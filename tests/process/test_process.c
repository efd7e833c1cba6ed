/* Processes: start/join, exit codes, signals, the exit rules, fork from a busy multi-threaded
 * process, bad input. Each case names the CPython behaviour it mirrors
 * (Lib/test/_test_multiprocessing.py unless said otherwise). Children report through exit
 * codes and pipes; nothing sleeps to let another process "get there". */
#include "weft_test.h"

#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------------------- */

static int return_arg(void *arg)
{
    return (int)(long)arg;
}

/* Blocks until the fd passed as arg reads a byte (or EOF), then returns that byte (0: EOF). */
static int wait_on_fd(void *arg)
{
    char c = 0;
    while (read((int)(long)arg, &c, 1) < 0) {
    }
    return c;
}

static weft_process_t *start(int (*fn)(void *), void *arg, const char *name, bool daemon)
{
    weft_process_opts_t opts = {.name = name, .daemon = daemon};
    weft_process_t *p;
    assert_int_equal(weft_process_start(fn, arg, &opts, &p), 0);
    assert_non_null(p);
    return p;
}

static int exitcode(weft_process_t *p)
{
    int code = 12345;
    assert_int_equal(weft_process_exitcode(p, &code), 0);
    return code;
}

static void join_close(weft_process_t *p)
{
    assert_int_equal(weft_process_join(p, 30), 0);
    assert_int_equal(weft_process_release(p), 0);
}

static void make_pipe(int fds[2])
{
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
}

/* Reads one byte with a 10 s limit: the byte, 0 for EOF, -1 for the limit. */
static int read_byte(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 10000) != 1) return -1;
    char c;
    ssize_t n = read(fd, &c, 1);
    return n == 1 ? (unsigned char)c : n == 0 ? 0 : -1;
}

static void write_byte(int fd, char c)
{
    assert_int_equal(write(fd, &c, 1), 1);
}

/* ---- start, join, exit codes ------------------------------------------------------------- */

/* test_process: a started process is alive, has a pid and a name, and after join is dead
 * with exit code 0. */
static void process_start_join_exitcode_zero(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    weft_process_t *p = start(wait_on_fd, (void *)(long)fds[0], NULL, false);
    assert_true(weft_process_is_alive(p));
    assert_true(weft_process_pid(p) > 0);
    assert_int_not_equal(weft_process_pid(p), getpid());
    assert_false(weft_process_is_daemon(p));
    int code;
    assert_int_equal(weft_process_exitcode(p, &code), WEFT_EAGAIN); /* Python: None */
    write_byte(fds[1], 0); /* (closing our end gives no EOF: the child holds a copy) */
    assert_int_equal(weft_process_join(p, WEFT_FOREVER), 0);
    assert_false(weft_process_is_alive(p));
    assert_int_equal(exitcode(p), 0);
    assert_int_equal(weft_process_join(p, 0), 0); /* joined: 0 forever after */
    assert_int_equal(weft_process_release(p), 0);
    close(fds[0]);
    close(fds[1]);
}

/* test_exitcode / _test_sys_exit: the child's exit status is fn's return value, or what it
 * passed to exit() (which runs its atexit handlers). */
static int call_exit(void *arg)
{
    exit((int)(long)arg);
}

static void process_exitcode_is_fn_return_or_exit_status(void **state)
{
    (void)state;
    int want[] = {0, 1, 7, 255};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        weft_process_t *p = start(return_arg, (void *)(long)want[i], NULL, false);
        assert_int_equal(weft_process_join(p, 30), 0);
        assert_int_equal(exitcode(p), want[i]);
        assert_int_equal(weft_process_release(p), 0);
        p = start(call_exit, (void *)(long)want[i], NULL, false);
        assert_int_equal(weft_process_join(p, 30), 0);
        assert_int_equal(exitcode(p), want[i]);
        assert_int_equal(weft_process_release(p), 0);
    }
}

/* test_terminate / test_kill: a blocked child ends with -SIGTERM / -SIGKILL. */
static void process_terminate_and_kill_give_negative_signal(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    weft_process_t *t = start(wait_on_fd, (void *)(long)fds[0], NULL, false);
    weft_process_t *k = start(wait_on_fd, (void *)(long)fds[0], NULL, false);
    assert_int_equal(weft_process_join(t, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_process_terminate(t), 0);
    assert_int_equal(weft_process_kill(k), 0);
    assert_int_equal(weft_process_join(t, 30), 0);
    assert_int_equal(weft_process_join(k, 30), 0);
    assert_int_equal(exitcode(t), -SIGTERM);
    assert_int_equal(exitcode(k), -SIGKILL);
    /* Signalling a finished process does nothing (Python's terminate after exit). */
    assert_int_equal(weft_process_terminate(t), 0);
    assert_int_equal(weft_process_kill(k), 0);
    assert_int_equal(exitcode(t), -SIGTERM);
    assert_int_equal(weft_process_release(t), 0);
    assert_int_equal(weft_process_release(k), 0);
    close(fds[0]);
    close(fds[1]);
}

/* A child killed by a fault reports the signal (test_exitcode's -signal convention). */
static int crash(void *arg)
{
    (void)arg;
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
    return 0;
}

static void process_crash_reports_the_signal(void **state)
{
    (void)state;
    weft_process_t *p = start(crash, NULL, NULL, false);
    assert_int_equal(weft_process_join(p, 30), 0);
    assert_int_equal(exitcode(p), -SIGSEGV);
    assert_int_equal(weft_process_release(p), 0);
}

/* test_process's join(timeout): a join that times out leaves the child alive and joinable;
 * a poll (timeout 0) does not wait. */
static void process_join_timeout_expires(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    weft_process_t *p = start(wait_on_fd, (void *)(long)fds[0], NULL, false);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_process_join(p, 0.1), WEFT_ETIMEDOUT);
    double waited = weft_time_monotonic() - t0;
    assert_true(waited >= 0.09);
    assert_true(weft_process_is_alive(p));
    t0 = weft_time_monotonic();
    assert_int_equal(weft_process_join(p, 0), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 < 0.05);
    assert_int_equal(weft_process_release(p), WEFT_EBUSY); /* Python: ValueError while running */
    write_byte(fds[1], 9);
    join_close(p);
    close(fds[0]);
    close(fds[1]);
}

/* Several threads join one child at once; all return 0 with the same exit code. */
typedef struct joiners {
    weft_process_t *p;
    atomic_int ok;
} joiners_t;

static void join_it(void *arg, int i)
{
    (void)i;
    joiners_t *j = arg;
    int code;
    if (weft_process_join(j->p, 30) == 0 && weft_process_exitcode(j->p, &code) == 0 && code == 5)
        atomic_fetch_add(&j->ok, 1);
}

static void process_many_threads_join_one_child(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    joiners_t j = {.p = start(wait_on_fd, (void *)(long)fds[0], NULL, false)};
    weft_test_bg_t bg;
    weft_test_bg_start(&bg, 8, join_it, &j);
    write_byte(fds[1], 5);
    weft_test_bg_join(&bg);
    assert_int_equal(atomic_load(&j.ok), 8);
    assert_int_equal(weft_process_release(j.p), 0);
    close(fds[0]);
    close(fds[1]);
}

/* A task blocked in join is canceled like any other weft wait (weft_future_cancel). */
static int join_task(void *arg, void **result)
{
    (void)result;
    return weft_process_join(arg, WEFT_FOREVER);
}

static void process_join_is_cancelable(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    weft_process_t *p = start(wait_on_fd, (void *)(long)fds[0], NULL, false);
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(1, NULL, &ex), 0);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, join_task, p, &f), 0);
    while (!weft_future_running(f)) sched_yield();
    assert_int_equal(weft_future_cancel(f), WEFT_EBUSY);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_future_result(f, 10, NULL), WEFT_ECANCELED);
    assert_true(weft_time_monotonic() - t0 < 5);
    weft_future_release(f);
    assert_true(weft_process_is_alive(p)); /* the cancel stopped the wait, not the child */
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    weft_executor_release(ex);
    write_byte(fds[1], 0);
    join_close(p);
    close(fds[0]);
    close(fds[1]);
}

/* test_process's name checks: "Process-N" by default, or the given name. */
static void process_names_and_daemon_flag(void **state)
{
    (void)state;
    weft_process_t *a = start(return_arg, 0, NULL, false);
    weft_process_t *b = start(return_arg, 0, "", false);
    weft_process_t *c = start(return_arg, 0, "worker", true);
    assert_int_equal(strncmp(weft_process_name(a), "Process-", 8), 0);
    assert_int_equal(strncmp(weft_process_name(b), "Process-", 8), 0);
    assert_string_not_equal(weft_process_name(a), weft_process_name(b));
    assert_string_equal(weft_process_name(c), "worker");
    assert_true(weft_process_is_daemon(c));
    join_close(a);
    join_close(b);
    join_close(c);
}

/* ---- bad input --------------------------------------------------------------------------- */

static void process_bad_input(void **state)
{
    (void)state;
    weft_process_t *p = (weft_process_t *)1;
    char name[WEFT_PROCESS_NAME_MAX + 1];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    weft_process_opts_t longname = {.name = name};
    assert_int_equal(weft_process_start(return_arg, NULL, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_process_start(NULL, NULL, NULL, &p), WEFT_EINVAL);
    assert_null(p);
    assert_int_equal(weft_process_start(return_arg, NULL, &longname, &p), WEFT_EINVAL);
    assert_null(p);
    int code;
    assert_int_equal(weft_process_join(NULL, 1), WEFT_EINVAL);
    assert_false(weft_process_is_alive(NULL));
    assert_int_equal(weft_process_exitcode(NULL, &code), WEFT_EINVAL);
    assert_int_equal(weft_process_pid(NULL), -1);
    assert_null(weft_process_name(NULL));
    assert_false(weft_process_is_daemon(NULL));
    assert_int_equal(weft_process_terminate(NULL), WEFT_EINVAL);
    assert_int_equal(weft_process_kill(NULL), WEFT_EINVAL);
    assert_int_equal(weft_process_release(NULL), WEFT_EINVAL);

    p = start(return_arg, 0, NULL, false);
    assert_int_equal(weft_process_join(p, NAN), WEFT_EINVAL);
    assert_int_equal(weft_process_exitcode(p, NULL), WEFT_EINVAL);
    join_close(p);
}

/* Reaped behind weft's back (waitpid by the application): join still ends, the exit code is
 * unknown (Python's popen poll gets ChildProcessError and reports None). */
static void process_reaped_elsewhere_joins_without_status(void **state)
{
    (void)state;
    weft_process_t *p = start(return_arg, (void *)3L, NULL, false);
    int status;
    assert_int_equal(waitpid((pid_t)weft_process_pid(p), &status, 0), weft_process_pid(p));
    assert_int_equal(weft_process_join(p, 10), 0);
    int code;
    assert_int_equal(weft_process_exitcode(p, &code), WEFT_ECHILD);
    assert_false(weft_process_is_alive(p));
    assert_int_equal(weft_process_release(p), 0);
}

/* BaseProcess.join's "can only join a child process": in a child, the parent's handles are
 * foreign; joining, testing or signalling them fails with WEFT_ECHILD, closing frees them. */
static weft_process_t *sibling;

static int check_foreign(void *arg)
{
    (void)arg;
    int code;
    if (weft_process_join(sibling, 0) != WEFT_ECHILD) return 1;
    if (weft_process_is_alive(sibling)) return 2;
    if (weft_process_exitcode(sibling, &code) != WEFT_ECHILD) return 3;
    if (weft_process_terminate(sibling) != WEFT_ECHILD) return 4;
    if (weft_process_release(sibling) != 0) return 5;
    /* The sibling's pidfd was closed in this child: only stdio and the harness's fds remain
     * beyond what the parent had before starting us — checked by the exit code of a fresh
     * grandchild, which must work as usual. */
    weft_process_t *g;
    if (weft_process_start(return_arg, (void *)4L, NULL, &g)) return 6;
    if (weft_process_join(g, 10) || weft_process_exitcode(g, &code) || code != 4) return 7;
    return weft_process_release(g) ? 8 : 0;
}

static void process_parent_handles_are_foreign_in_the_child(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    sibling = start(wait_on_fd, (void *)(long)fds[0], NULL, false);
    weft_process_t *p = start(check_foreign, NULL, NULL, false);
    assert_int_equal(weft_process_join(p, 30), 0);
    assert_int_equal(exitcode(p), 0);
    assert_int_equal(weft_process_release(p), 0);
    assert_true(weft_process_is_alive(sibling)); /* the child's close freed only its copy */
    write_byte(fds[1], 0);
    join_close(sibling);
    close(fds[0]);
    close(fds[1]);
}

/* ---- the exit rules ---------------------------------------------------------------------- */

static int life_w = -1, report_w = -1, go_r = -1, ready_w = -1;

/* A grandchild that holds the `life` pipe's write end until it dies, and blocks. */
static int grandchild_blocks(void *arg)
{
    if (arg) signal(SIGTERM, SIG_IGN); /* ignores terminate: only the kill ends it */
    if (ready_w >= 0 && write(ready_w, "b", 1) != 1) return 1; /* blocking from now on */
    for (;;) pause();
    return 0;
}

/* A grandchild that waits for "go", then reports "g". */
static int grandchild_reports(void *arg)
{
    (void)arg;
    char c;
    if (read(go_r, &c, 1) != 1) return 1;
    return write(report_w, "g", 1) == 1 ? 0 : 2;
}

/* A grandchild that waits for "go", reports "g", and blocks (it ends only when killed). */
static int grandchild_answers(void *arg)
{
    (void)arg;
    char c;
    if (write(ready_w, "b", 1) != 1) return 3; /* running fn: past the child's set-up */
    if (read(go_r, &c, 1) != 1) return 1;
    if (write(report_w, "g", 1) != 1) return 2;
    for (;;) pause();
    return 0;
}

/* Middle child: starts a grandchild (daemon or not), drops its copy of the life pipe, says
 * "r", then returns: its exit rules apply to the grandchild. */
typedef struct middle_plan {
    bool daemon;
    bool ignores_term;
    bool reporting;
    bool answers;     /* the grandchild answers "go" with "g" and blocks */
    bool from_thread; /* started from a thread of the middle child that ends at once */
    bool hang;        /* block instead of returning (to be killed) */
} middle_plan_t;

typedef struct start_call {
    int (*fn)(void *);
    void *arg;
    weft_process_opts_t opts;
    weft_process_t *p;
    int rc;
    pid_t tid;   /* the starting thread's */
    int ready_r; /* >= 0: wait there until the child runs fn */
} start_call_t;

static void *start_from_thread(void *arg)
{
    start_call_t *c = arg;
    c->tid = gettid();
    c->rc = weft_process_start(c->fn, c->arg, &c->opts, &c->p);
    char b;
    if (c->rc == 0 && c->ready_r >= 0 && read(c->ready_r, &b, 1) != 1) c->rc = WEFT_EIO;
    return NULL;
}

/* Whether the thread tid is gone from the kernel too (pthread_join returns a little before
 * the kernel is done with the thread, and sends the parent-death signals). */
static bool thread_gone(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
    for (int64_t give_up = weft_time_monotonic_ns() + 10000000000LL; access(path, F_OK) == 0;) {
        if (weft_time_monotonic_ns() > give_up) return false;
        sched_yield();
    }
    return true;
}

static int middle(void *arg)
{
    const middle_plan_t *plan = arg;
    start_call_t call = {
        .fn = plan->answers     ? grandchild_answers
              : plan->reporting ? grandchild_reports
                                : grandchild_blocks,
        .arg = plan->ignores_term ? (void *)1 : NULL,
        .opts = {.daemon = plan->daemon},
    };
    int ready[2];
    if (pipe(ready)) return 12;
    ready_w = ready[1];
    call.ready_r = plan->answers ? ready[0] : -1;
    pthread_t t;
    if (!plan->from_thread)
        start_from_thread(&call);
    else if (pthread_create(&t, NULL, start_from_thread, &call) || pthread_join(t, NULL) ||
             !thread_gone(call.tid))
        return 14; /* the starting thread has ended: only this process is the parent now */
    if (call.rc) return 10;
    close(life_w);
    char c;
    if (!plan->reporting && !plan->answers && read(ready[0], &c, 1) != 1)
        return 13; /* it blocks (ignoring?) */
    if (write(report_w, "r", 1) != 1) return 11;
    while (plan->hang) pause();
    return 0; /* the handle is not closed: the exit rules own the grandchild */
}

typedef struct family {
    int life[2], report[2], go[2];
    weft_process_t *middle;
} family_t;

static void family_start(family_t *f, const middle_plan_t *plan)
{
    make_pipe(f->life);
    make_pipe(f->report);
    make_pipe(f->go);
    life_w = f->life[1];
    report_w = f->report[1];
    go_r = f->go[0];
    f->middle = start(middle, (void *)plan, NULL, false);
    close(f->life[1]);
    assert_int_equal(read_byte(f->report[0]), 'r'); /* the grandchild exists */
}

static void family_end(family_t *f)
{
    join_close(f->middle);
    close(f->life[0]);
    close(f->report[0]);
    close(f->report[1]);
    close(f->go[0]);
    close(f->go[1]);
}

/* _exit_function: a process that ends joins its non-daemon children first. The middle child
 * cannot end before its grandchild does, and the grandchild waits for our "go". */
static void process_exit_joins_non_daemon_children(void **state)
{
    (void)state;
    middle_plan_t plan = {.reporting = true};
    family_t f;
    family_start(&f, &plan);
    assert_int_equal(weft_process_join(f.middle, 0.2), WEFT_ETIMEDOUT);
    write_byte(f.go[1], 'x');
    assert_int_equal(weft_process_join(f.middle, 30), 0);
    assert_int_equal(exitcode(f.middle), 0);
    assert_int_equal(read_byte(f.report[0]), 'g');
    assert_int_equal(read_byte(f.life[0]), 0); /* every holder of the life pipe is gone */
    family_end(&f);
}

/* _exit_function / test_terminate's daemon: a process that ends terminates its daemon
 * children (they die: the life pipe reads EOF) and does not wait for them to finish. */
static void process_exit_terminates_daemon_children(void **state)
{
    (void)state;
    middle_plan_t plan = {.daemon = true};
    family_t f;
    family_start(&f, &plan);
    assert_int_equal(weft_process_join(f.middle, 30), 0);
    assert_int_equal(exitcode(f.middle), 0);
    assert_int_equal(read_byte(f.life[0]), 0);
    family_end(&f);
}

/* weft's bound on Python's rule: a daemon child that ignores SIGTERM is killed after 1 s. */
static void process_exit_kills_daemon_ignoring_terminate(void **state)
{
    (void)state;
    middle_plan_t plan = {.daemon = true, .ignores_term = true};
    family_t f;
    family_start(&f, &plan);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_process_join(f.middle, 30), 0);
    double took = weft_time_monotonic() - t0;
    assert_true(took >= 0.9);
    assert_true(took < 20);
    assert_int_equal(read_byte(f.life[0]), 0);
    family_end(&f);
}

/* PR_SET_PDEATHSIG: a daemon child dies with its parent even when the parent is SIGKILLed
 * and runs no exit rules (Python leaves such orphans running). */
static void process_daemon_dies_with_killed_parent(void **state)
{
    (void)state;
    middle_plan_t plan = {.daemon = true, .hang = true};
    family_t f;
    family_start(&f, &plan);
    assert_int_equal(weft_process_kill(f.middle), 0);
    assert_int_equal(weft_process_join(f.middle, 30), 0);
    assert_int_equal(exitcode(f.middle), -SIGKILL);
    assert_int_equal(read_byte(f.life[0]), 0);
    family_end(&f);
}

/* Python's daemon flag is per process: a daemon child started from a short-lived thread
 * outlives that thread (PR_SET_PDEATHSIG alone follows the forking thread, and killed it when
 * the thread ended), and still dies when its parent process is SIGKILLed. */
static void process_daemon_outlives_its_starting_thread(void **state)
{
    (void)state;
    middle_plan_t plan = {.daemon = true, .answers = true, .from_thread = true, .hang = true};
    family_t f;
    family_start(&f, &plan);
    write_byte(f.go[1], 'x');
    assert_int_equal(read_byte(f.report[0]), 'g'); /* alive after its starting thread ended */
    assert_int_equal(weft_process_kill(f.middle), 0);
    assert_int_equal(weft_process_join(f.middle, 30), 0);
    assert_int_equal(exitcode(f.middle), -SIGKILL);
    assert_int_equal(read_byte(f.life[0]), 0); /* and it died with its parent process */
    family_end(&f);
}

/* The forker thread that daemon children need does not hide a deadlock of this thread's
 * coroutines from the hub (it can wake nobody while it waits for a request): the waits still
 * fail with WEFT_EDEADLK while a daemon child lives. */
static void stuck_on_event(void *e)
{
    assert_int_equal(weft_event_wait(e, WEFT_FOREVER), WEFT_EDEADLK);
}

static void process_daemon_child_keeps_deadlock_detection(void **state)
{
    (void)state;
    int fds[2];
    make_pipe(fds);
    weft_process_t *d = start(wait_on_fd, (void *)(long)fds[0], NULL, true);
    weft_event_t e;
    weft_event_init(&e);
    weft_co_t *co;
    assert_int_equal(weft_co_spawn(stuck_on_event, &e, NULL, &co), 0);
    assert_int_equal(weft_co_join(co, WEFT_FOREVER), WEFT_EDEADLK); /* (a timeout is a timer) */
    assert_int_equal(weft_co_join(co, 30), 0);
    weft_co_release(co);
    weft_event_destroy(&e);
    write_byte(fds[1], 0);
    join_close(d);
    close(fds[0]);
    close(fds[1]);
}

/* The rules also run from exit() in a process that did not come from weft_process_start (the
 * atexit handler): here a plain fork child of this test. */
static void process_exit_rules_run_at_exit(void **state)
{
    (void)state;
    int life[2];
    make_pipe(life);
    /* Registers the atexit handler in this process (inherited by the fork below). */
    join_close(start(return_arg, 0, NULL, false));
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        weft_process_t *g;
        weft_process_opts_t opts = {.daemon = true};
        life_w = life[1];
        ready_w = -1;
        if (weft_process_start(grandchild_blocks, NULL, &opts, &g)) _exit(10);
        exit(0); /* the daemon grandchild is terminated by the atexit handler */
    }
    close(life[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(read_byte(life[0]), 0);
    close(life[0]);
}

/* ---- fork from a busy multi-threaded process --------------------------------------------- */

typedef struct busy {
    weft_lock_t lock;
    weft_queue_t *q;
    atomic_bool stop;
    long counter;
} busy_t;

static busy_t busy;

/* Sanitizers and fork from a multi-threaded process: GCC 12's ASan allocator does not hold
 * its locks across fork (glibc's malloc does), so a child can deadlock in its first malloc
 * (seen here); TSan refuses to start threads in such a child. Under a sanitizer the child
 * checks only what needs no allocation. (The busy threads do not call malloc themselves:
 * under valgrind, a block a vanished thread held at the fork is a leak of the child.) */
#define FULL_FORK_CHECK (!SANITIZED)

static void busy_thread(void *arg, int i)
{
    (void)arg;
    while (!atomic_load(&busy.stop)) {
        weft_lock_acquire(&busy.lock, WEFT_FOREVER);
        busy.counter++;
        weft_lock_release(&busy.lock);
        void *item;
        if (weft_queue_put(busy.q, (void *)(long)i, 1) != 0) continue;
        if (weft_queue_get(busy.q, 1, &item) != 0) continue; /* a timeout under load */
    }
}

static void child_thread(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* In the child every weft facility works: a fresh lock, a queue, a thread, a grandchild. */
static int child_uses_weft(void *arg)
{
    (void)arg;
    weft_lock_t l;
    weft_lock_init(&l);
    if (weft_lock_acquire(&l, 1) || weft_lock_release(&l)) return 1;
    if (!FULL_FORK_CHECK) return weft_thread_active_count() == 1 ? 0 : 6;
    weft_queue_t *q;
    void *item;
    if (weft_queue_create(WEFT_QUEUE_FIFO, 4, &q)) return 2;
    if (weft_queue_put(q, (void *)7L, 1) || weft_queue_get(q, 1, &item) || item != (void *)7L)
        return 3;
    weft_queue_release(q);
    atomic_int ran = 0;
    weft_thread_t *t;
    if (weft_thread_start(child_thread, &ran, NULL, &t)) return 4;
    if (weft_thread_join(t, 10) || atomic_load(&ran) != 1) return 5;
    weft_thread_release(t);
    if (weft_thread_active_count() != 1) return 6;
    weft_process_t *g;
    int code;
    if (weft_process_start(return_arg, (void *)9L, NULL, &g)) return 7;
    if (weft_process_join(g, 10) || weft_process_exitcode(g, &code) || code != 9) return 8;
    return weft_process_release(g) ? 9 : 0;
}

/* test_threads + fork (CPython's test_fork1/test_threading fork cases): 16 threads hammer a
 * lock, a queue and malloc while the main thread starts processes; every child works. */
static void process_fork_while_16_threads_run(void **state)
{
    (void)state;
    weft_lock_init(&busy.lock);
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 8, &busy.q), 0);
    atomic_store(&busy.stop, false);
    weft_test_bg_t bg;
    weft_test_bg_start(&bg, 16, busy_thread, NULL);
    int rounds = SANITIZED ? 8 : 40;
    for (int i = 0; i < rounds; i++) {
        weft_process_t *p = start(child_uses_weft, NULL, NULL, i % 2 == 0);
        assert_int_equal(weft_process_join(p, 60), 0);
        assert_int_equal(exitcode(p), 0);
        assert_int_equal(weft_process_release(p), 0);
    }
    atomic_store(&busy.stop, true);
    weft_test_bg_join(&bg);
    assert_int_equal(weft_queue_release(busy.q), 0);
}

/* ---- out of memory ----------------------------------------------------------------------- */

static int start_join_close(void *ctx)
{
    (void)ctx;
    weft_process_t *p;
    int rc = weft_process_start(return_arg, (void *)2L, NULL, &p);
    if (rc) return rc;
    int code = -1;
    if (weft_process_join(p, 30) || weft_process_exitcode(p, &code) || code != 2) rc = WEFT_EIO;
    weft_process_release(p);
    return rc;
}

static void process_out_of_memory(void **state)
{
    (void)state;
    assert_true(weft_test_oom(start_join_close, NULL) >= 1);
}

/* The timeout rules (weft/core.h): joining a running child with -0.5 polls (WEFT_ETIMEDOUT at
 * once; Process.join(timeout=-0.5) returns at once too), WEFT_FOREVER blocks until it ends,
 * NaN is WEFT_EINVAL. */
typedef struct timed_child {
    weft_process_t *p;
    int fds[2];
    double timeout;
} timed_child_t;

static int timed_process_join(void *arg)
{
    timed_child_t *c = arg;
    return weft_process_join(c->p, c->timeout);
}

static void let_child_end(void *arg)
{
    timed_child_t *c = arg;
    assert_int_equal(write(c->fds[1], "x", 1), 1);
}

static void process_join_negative_timeout_polls(void **state)
{
    (void)state;
    timed_child_t c = {.timeout = -0.5};
    make_pipe(c.fds);
    c.p = start(wait_on_fd, (void *)(long)c.fds[0], NULL, false);
    assert_int_equal(weft_test_polls(timed_process_join, &c), WEFT_ETIMEDOUT);
    assert_int_equal(weft_process_join(c.p, NAN), WEFT_EINVAL);
    c.timeout = WEFT_FOREVER;
    weft_test_blocks_until(timed_process_join, &c, let_child_end, &c, 0);
    assert_int_equal(exitcode(c.p), 'x');
    assert_int_equal(weft_process_release(c.p), 0);
    close(c.fds[0]);
    close(c.fds[1]);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(process_join_negative_timeout_polls),
        WEFT_TEST(process_start_join_exitcode_zero),
        WEFT_TEST(process_exitcode_is_fn_return_or_exit_status),
        WEFT_TEST(process_terminate_and_kill_give_negative_signal),
        WEFT_TEST(process_crash_reports_the_signal),
        WEFT_TEST(process_join_timeout_expires),
        WEFT_TEST(process_many_threads_join_one_child),
        WEFT_TEST(process_join_is_cancelable),
        WEFT_TEST(process_names_and_daemon_flag),
        WEFT_TEST(process_bad_input),
        WEFT_TEST(process_reaped_elsewhere_joins_without_status),
        WEFT_TEST(process_parent_handles_are_foreign_in_the_child),
        WEFT_TEST(process_exit_joins_non_daemon_children),
        WEFT_TEST(process_exit_terminates_daemon_children),
        WEFT_TEST(process_exit_kills_daemon_ignoring_terminate),
        WEFT_TEST(process_daemon_dies_with_killed_parent),
        WEFT_TEST(process_daemon_outlives_its_starting_thread),
        WEFT_TEST(process_daemon_child_keeps_deadlock_detection),
        WEFT_TEST(process_exit_rules_run_at_exit),
        WEFT_TEST(process_fork_while_16_threads_run),
        WEFT_TEST(process_out_of_memory),
    };
    return weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
