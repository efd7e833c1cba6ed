/*
 * test_failpoints.c — the failpoint loop (weft_test_faults, src/core/sys_internal.h) over a
 * hub's life on a new thread: its poller made, coroutine stacks mapped with a guard, a TCP
 * listener, a connection, an accept and a read that waits on the poller, then all of it torn
 * down. Every site the scene reaches on this poller fails once and persistently; each run must
 * end with a clean WEFT_E* code (or recover), and leave no thread, fd or allocation behind.
 */
#include "weft_test.h"

#include "core/sys_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct scene {
    int rc;
    int cfd;
    int write_rc;
} scene_t;

static void keep_first(int *rc, int r)
{
    if (*rc == 0) *rc = r;
}

static void writer_co(void *arg)
{
    scene_t *s = arg;
    s->write_rc = weft_fd_write(s->cfd, "hi", 2, 10, NULL);
}

static void server_co(void *arg)
{
    scene_t *s = arg;
    int lfd = -1, sfd = -1, port = 0;
    s->cfd = -1;
    int rc = weft_tcp_listen("127.0.0.1:0", 4, &lfd);
    if (rc) goto out;
    char addr[32];
    assert_int_equal(weft_tcp_local_port(lfd, &port), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    if ((rc = weft_tcp_connect(addr, 10, &s->cfd))) goto out;
    if ((rc = weft_fd_accept(lfd, NULL, NULL, 10, &sfd))) goto out;
    weft_co_opts_t o = {.stack_size = 64 * 1024, .guard = 1};
    weft_co_t *w;
    if ((rc = weft_co_spawn(writer_co, s, &o, &w))) goto out;
    char buf[4];
    size_t n = 0;
    rc = weft_fd_read(sfd, buf, sizeof buf, 10, &n); /* waits: the writer has not run yet */
    assert_int_equal(weft_co_join(w, 30), 0);
    assert_int_equal(weft_co_release(w), 0);
    keep_first(&rc, s->write_rc);
    if (rc == 0) assert_true(n == 2 && memcmp(buf, "hi", 2) == 0);
out:
    if (sfd >= 0) weft_fd_close(sfd);
    if (s->cfd >= 0) weft_fd_close(s->cfd);
    if (lfd >= 0) weft_fd_close(lfd);
    s->rc = rc;
}

static void hub_thread(void *arg)
{
    scene_t *s = arg;
    weft_co_opts_t o = {.guard = 1};
    weft_co_t *co;
    int rc = weft_co_spawn(server_co, s, &o, &co);
    if (rc) {
        s->rc = rc;
        return;
    }
    assert_int_equal(weft_co_join(co, 60), 0);
    assert_int_equal(weft_co_release(co), 0);
}

static int hub_body(void *ctx)
{
    (void)ctx;
    scene_t s = {.rc = -1};
    weft_thread_t *t;
    int rc = weft_thread_start(hub_thread, &s, NULL, &t);
    if (rc) return rc;
    assert_int_equal(weft_thread_join(t, 60), 0);
    assert_int_equal(weft_thread_release(t), 0);
    return s.rc;
}

/* Every site of sys_internal.h the scene reaches on this poller, failed in turn. */
static void hub_tcp_scene_under_faults(void **state)
{
    (void)state;
    const char *poller = weft_poller_name();
    int reached = 0;
    for (int site = 0; site < WEFT__SITE_COUNT; site++) {
        if (site == WEFT__SITE_FORK || site == WEFT__SITE_PIDFD_OPEN ||
            site == WEFT__SITE_SHM_OPEN || site == WEFT__SITE_FTRUNCATE ||
            site == WEFT__SITE_SOCKETPAIR)
            continue; /* no process or shared memory in the scene: tests/core/test_failpoints.c */
        long calls = weft_test_faults(site, hub_body, NULL);
        print_message("%s on %s: %ld calls\n", weft__failpoint_name(site), poller, calls);
        if (calls > 0) reached++;
    }
    assert_true(reached >= 5);
}

/* Where MADV_GUARD_INSTALL is missing or failed once, guard pages are made with mprotect:
 * the same scene with that site failing. */
static void hub_scene_with_mprotect_guards_under_faults(void **state)
{
    (void)state;
    assert_int_equal(weft__failpoint_set(WEFT__SITE_MADVISE, 1, false), 0);
    assert_int_equal(hub_body(NULL), 0); /* its first stack falls back, and so do all later */
    weft__failpoint_set(WEFT__SITE_MADVISE, 0, false);
    assert_true(weft_test_faults(WEFT__SITE_MPROTECT, hub_body, NULL) >= 1);
}

static void nap_co(void *arg)
{
    (void)arg;
    int sv[2], rev = 0;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(weft_fd_wait(sv[1], WEFT_WRITE, 10, &rev), 0);
    assert_int_equal(weft_fd_close(sv[0]), 0);
    assert_int_equal(weft_fd_close(sv[1]), 0);
}

/* A plain fork(2) of a thread with a hub (os.fork): the child's hub gets a private eventfd
 * under the old number (dup3); when that fails it drops the parent's, and the hub must still
 * wait on fds. Failpoints armed in the parent are armed in the child (fork copies them): the
 * child reports its own count. */
static int child_waits_on_an_fd(void)
{
    int sv[2], rev = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 2;
    if (write(sv[1], "x", 1) != 1) return 3;
    int rc = weft_fd_wait(sv[0], WEFT_READ, 10, &rev);
    close(sv[0]);
    close(sv[1]);
    if (weft__failpoint_failed(WEFT__SITE_DUP3) == 0) return 4; /* the site was not reached */
    return rc == 0 && rev == WEFT_READ ? 0 : 5;
}

static void forked_hub_survives_a_failing_dup3(void **state)
{
    (void)state;
    weft_test_co_join(weft_test_spawn(nap_co, NULL)); /* this thread's hub has its poller */
    for (int persistent = 0; persistent <= 1; persistent++) {
        assert_int_equal(weft__failpoint_set(WEFT__SITE_DUP3, 1, persistent), 0);
        pid_t pid = fork();
        if (pid == 0) _exit(child_waits_on_an_fd());
        weft__failpoint_set(WEFT__SITE_DUP3, 0, false);
        assert_true(pid > 0);
        int status = -1;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(hub_tcp_scene_under_faults),
        WEFT_TEST(hub_scene_with_mprotect_guards_under_faults),
        WEFT_TEST(forked_hub_survives_a_failing_dup3),
    };
    return weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
