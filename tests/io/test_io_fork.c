/* The poller across fork: what the child's copy of the forking thread's hub does with the
 * parent's kernel objects, when making its own fails. (gevent's test__core_fork.py is the
 * working case, in test_io.c; these are the failing ones.) Runs once per poller backend. */
#include "weft_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* weft_fd_read's count, or its error: one int for a case to store and compare. */
static int read_count(int fd, void *buf, size_t n, double timeout)
{
    size_t done = 0;
    int rc = weft_fd_read(fd, buf, n, timeout, &done);
    return rc ? rc : (int)done;
}

static void make_pipe(int p[2])
{
    assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
}

/* Reaps the child and fails the case unless it exited 0. */
static void expect_child_passed(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) fail_msg("the child died of signal %d", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* In the child (no cmocka there): a coroutine writes a byte after a short nap. */
static void write_soon(void *p)
{
    int fd = *(int *)p;
    if (weft_time_sleep(0.01) != 0) return;
    if (weft_fd_write(fd, "x", 1, 5, NULL) != 0) _exit(3); /* the child's exit code says it */
}

static void write_now(void *p)
{
    if (weft_fd_write(*(int *)p, "x", 1, 5, NULL) != 0) return; /* the reader's wait fails then */
}

/* The child's poller cannot be made (every allocation fails from the fork on): no abort in
 * the fork handler; the child's first wait on an fd new to the poller fails with
 * WEFT_ENOMEM, and once memory is back the next wait builds the poller, with the fds the
 * parent watched, and works, remote wakes included. */
static void forked_poller_that_cannot_be_rebuilt_is_an_error(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    assert_int_equal(weft_co_spawn(write_now, &p[1], NULL, NULL), 0);
    char c;
    assert_int_equal(read_count(p[0], &c, 1, 5), 1); /* this thread's hub has a poller */
    fflush(NULL);
    weft_test_fail_alloc(1, 1);
    pid_t pid = fork();
    if (pid != 0) weft_test_fail_alloc(0, 0);
    assert_true(pid >= 0);
    if (pid == 0) {
        int q[2];
        if (pipe2(q, O_CLOEXEC | O_NONBLOCK)) _exit(9);
        int rc = weft_fd_wait(q[0], WEFT_READ, 1, NULL); /* an fd new to the poller: needs it */
        weft_test_fail_alloc(0, 0);
        if (rc != WEFT_ENOMEM) _exit(10);
        if (weft_co_spawn(write_soon, &p[1], NULL, NULL) != 0) _exit(11);
        if (read_count(p[0], &c, 1, 5) != 1) _exit(12);
        if (weft_fd_wait(p[0], WEFT_READ, 0.01, NULL) != WEFT_ETIMEDOUT) _exit(13);
        _exit(0);
    }
    expect_child_passed(pid);
    /* The parent's poller is untouched. */
    assert_int_equal(weft_co_spawn(write_now, &p[1], NULL, NULL), 0);
    assert_int_equal(read_count(p[0], &c, 1, 5), 1);
    close(p[0]);
    close(p[1]);
}

/* An fd the parent's poller watched is closed in the child before its poller is rebuilt (as
 * the process layer's fork handler closes the parent's pidfds, or a child closes what it does
 * not need): the rebuild drops that fd and the child's waits work (it used to make the whole
 * rebuild fail, on every backend, so every wait of the child failed). */
static void forked_poller_skips_an_fd_closed_in_the_child(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    assert_int_equal(weft_co_spawn(write_now, &p[1], NULL, NULL), 0);
    char c;
    assert_int_equal(read_count(p[0], &c, 1, 5), 1); /* the poller watches p[0] now */
    const char *parent = weft_poller_name();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]); /* unseen by weft; the number stays free */
        int q[2];
        if (pipe2(q, O_CLOEXEC | O_NONBLOCK)) _exit(9);
        int r = fcntl(q[0], F_DUPFD_CLOEXEC, 200), w = fcntl(q[1], F_DUPFD_CLOEXEC, 200);
        close(q[0]);
        close(q[1]);
        if (r < 0 || w < 0 || fcntl(p[0], F_GETFD) >= 0) _exit(10);
        if (weft_co_spawn(write_soon, &w, NULL, NULL) != 0) _exit(11);
        if (read_count(r, &c, 1, 5) != 1) _exit(12);
        if (strcmp(weft_poller_name(), parent) != 0) _exit(13); /* the same backend, rebuilt */
        _exit(0);
    }
    expect_child_passed(pid);
    close(p[0]);
    close(p[1]);
}

/* Whether this process holds an fd of an epoll instance or an io_uring ring. */
static bool holds_a_poller_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return true;
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d));) {
        char target[64];
        ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        found =
            !strcmp(target, "anon_inode:[eventpoll]") || !strcmp(target, "anon_inode:[io_uring]");
    }
    closedir(d);
    return found;
}

/* The child lets go of its copy of the parent's poller at the fork, not at its first wait: a
 * child that never waits again (it execs, or runs on without coroutines) holds no fd of the
 * parent's epoll instance or ring (it used to keep one until its hub's next wait). */
static void forked_child_holds_no_copy_of_the_parents_poller(void **state)
{
    (void)state;
    int p[2];
    make_pipe(p);
    assert_int_equal(weft_co_spawn(write_now, &p[1], NULL, NULL), 0);
    char c;
    assert_int_equal(read_count(p[0], &c, 1, 5), 1); /* this thread's hub has a poller */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(holds_a_poller_fd() ? 1 : 0);
    expect_child_passed(pid);
    close(p[0]);
    close(p[1]);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(forked_poller_that_cannot_be_rebuilt_is_an_error),
        WEFT_TEST(forked_poller_skips_an_fd_closed_in_the_child),
        WEFT_TEST(forked_child_holds_no_copy_of_the_parents_poller),
    };
    return weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
