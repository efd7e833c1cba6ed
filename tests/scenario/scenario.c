/*
 * scenario.c — the network scenarios' server, client runner and process measures
 * (scenario.h). The server's code after the listener's setup is what a gevent user writes:
 * accept(), then read()/write() in a coroutine per connection, all of it libc's calls, which
 * the monkey patch turns into waits on the server thread's hub.
 */
#include "scenario.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct conn {
    scenario_server_t *s;
    int fd;
} conn_t;

static void conn_main(void *p)
{
    conn_t *c = p;
    scenario_server_t *s = c->s;
    s->serve(c->fd, s);
    close(c->fd);
    free(c);
    if (atomic_fetch_sub(&s->live, 1) == 1) weft_event_set(&s->idle);
}

/* The accept loop: ends when canceled (accept fails with EINTR). */
static void accept_loop(void *p)
{
    scenario_server_t *s = p;
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) return;
            atomic_fetch_add(&s->errors, 1);
            if (errno == EMFILE || errno == ENFILE) weft_time_sleep(0.01);
            continue;
        }
        conn_t *c = malloc(sizeof *c);
        if (c == NULL) {
            close(fd);
            atomic_fetch_add(&s->errors, 1);
            continue;
        }
        c->s = s;
        c->fd = fd;
        atomic_fetch_add(&s->accepted, 1);
        atomic_fetch_add(&s->live, 1);
        if (weft_group_spawn(s->conns, conn_main, c, WEFT_FOREVER, NULL) != 0) {
            if (atomic_fetch_sub(&s->live, 1) == 1) weft_event_set(&s->idle);
            close(fd);
            free(c);
            atomic_fetch_add(&s->errors, 1);
        }
    }
}

static void *server_thread(void *p)
{
    scenario_server_t *s = p;
    weft_co_t *acc = NULL;
    assert_int_equal(weft_co_spawn(accept_loop, s, NULL, &acc), 0);
    assert_int_equal(weft_event_set(&s->ready), 0);
    assert_int_equal(weft_event_wait(&s->stop, WEFT_FOREVER), 0);
    assert_int_equal(weft_co_cancel(acc), 0);
    assert_int_equal(weft_co_join(acc, 30), 0);
    assert_int_equal(weft_co_release(acc), 0);
    /* The connections' grace, then a cancel for the ones still open (their read fails with
     * EINTR and they return). */
    if (weft_group_join(s->conns, s->grace) != 0) {
        assert_int_equal(weft_group_cancel(s->conns), 0);
        assert_int_equal(weft_group_join(s->conns, 30), 0);
    }
    return NULL;
}

void scenario_server_start(scenario_server_t *s)
{
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* blocking, as a user's */
    assert_true(s->lfd >= 0);
    int one = 1;
    assert_int_equal(setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 4096), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    atomic_store(&s->accepted, 0);
    atomic_store(&s->live, 0);
    atomic_store(&s->requests, 0);
    atomic_store(&s->errors, 0);
    assert_int_equal(weft_group_create(0, &s->conns), 0);
    assert_int_equal(weft_event_init(&s->ready), 0);
    assert_int_equal(weft_event_init(&s->stop), 0);
    assert_int_equal(weft_event_init(&s->idle), 0);
    s->thread = weft_test_start(server_thread, s);
    assert_int_equal(weft_event_wait(&s->ready, 30), 0);
}

bool scenario_server_drained(scenario_server_t *s, double seconds)
{
    /* idle is set by the close that takes live to 0; cleared here before looking again, so a
     * close between the look and the wait still wakes it. */
    int64_t end = weft_time_monotonic_ns() + (int64_t)(seconds * 1e9);
    for (;;) {
        if (atomic_load(&s->live) == 0) return true;
        assert_int_equal(weft_event_clear(&s->idle), 0);
        if (atomic_load(&s->live) == 0) return true;
        double left = (double)(end - weft_time_monotonic_ns()) / 1e9;
        if (left <= 0 || weft_event_wait(&s->idle, left) != 0) return atomic_load(&s->live) == 0;
    }
}

void scenario_server_stop(scenario_server_t *s, double grace)
{
    s->grace = grace;
    assert_int_equal(weft_event_set(&s->stop), 0);
    weft_test_join(s->thread);
    assert_int_equal(weft_group_release(s->conns), 0);
    assert_int_equal(close(s->lfd), 0);
    assert_int_equal(weft_event_destroy(&s->ready), 0);
    assert_int_equal(weft_event_destroy(&s->stop), 0);
    assert_int_equal(weft_event_destroy(&s->idle), 0);
}

void scenario_rounds(scenario_server_t *s, void (*round)(scenario_server_t *s, void *arg),
                     void *arg, long first_slack_kib)
{
    int fds[3];
    long rss[3];
    /* A first connection, opened and closed, before the start is measured: what the server
     * thread makes at its first wait (its hub's poller) belongs to the start. */
    long accepted = atomic_load(&s->accepted);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)s->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(close(c), 0);
    int64_t end = weft_time_monotonic_ns() + 30 * 1000000000LL;
    while (atomic_load(&s->accepted) == accepted) {
        assert_true(weft_time_monotonic_ns() < end);
        assert_int_equal(weft_co_yield(), 0);
    }
    assert_true(scenario_server_drained(s, 30));
    fds[0] = scenario_fds();
    rss[0] = scenario_rss_kib();
    for (int i = 1; i <= 2; i++) {
        round(s, arg);
        assert_true(scenario_server_drained(s, 30));
        fds[i] = scenario_fds();
        rss[i] = scenario_rss_kib();
        printf("after round %d: fds %d (start %d), RSS %ld KiB (start %ld), %ld connections, "
               "%ld requests, %ld server errors\n",
               i, fds[i], fds[0], rss[i], rss[0], atomic_load(&s->accepted),
               atomic_load(&s->requests), atomic_load(&s->errors));
        fflush(stdout);
    }
    assert_int_equal(atomic_load(&s->errors), 0);
    /* At most the start: the crawler's start (after its warm-up fetch) once counted one fd more
     * than both rounds under heavy load, one still closing then (not identified); a leak would
     * add fds in every round. */
    assert_true(fds[1] <= fds[0]);
    assert_true(fds[2] <= fds[0]);
    if (!SANITIZED && !RUNNING_ON_VALGRIND) {
        assert_true(rss[1] <= rss[0] + first_slack_kib);
        assert_true(rss[2] <= rss[1] + SCENARIO_STEADY_KIB);
    }
}

int scenario_run(char *const argv[], char *out, size_t cap)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, p[1], 1), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, p[1], 2), 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        fail_msg("cannot run %s: %s", argv[0], strerror(rc));
    }
    size_t have = 0;
    for (;;) {
        ssize_t n = read(p[0], out + have, cap - 1 - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += (size_t)n;
        if (have == cap - 1) { /* keep the tail flowing: the child must not block */
            char sink[4096];
            while (read(p[0], sink, sizeof sink) > 0) {
            }
            break;
        }
    }
    out[have] = '\0';
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0) assert_int_equal(errno, EINTR);
    printf("---- %s\n%s----\n", argv[0], out);
    fflush(stdout);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int scenario_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.') {
            n++;
        }
    closedir(d);
    return n - 1; /* the directory's own */
}

long scenario_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    assert_true(kib > 0);
    return kib;
}

long scenario_raise_nofile(long want)
{
    struct rlimit r;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &r), 0);
    if (r.rlim_cur < (rlim_t)want) {
        r.rlim_cur = r.rlim_max < (rlim_t)want ? r.rlim_max : (rlim_t)want;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &r), 0);
    }
    return (long)r.rlim_cur;
}
