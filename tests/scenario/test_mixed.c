/*
 * The mixed scenario (issue 15): a coroutine TCP server (weft_tcp_listen + weft_server) whose
 * handlers offload CPU work to a process pool and a blocking call to a thread pool, waiting
 * on both futures from the handler's coroutine, under 200 concurrent clients (coroutines of
 * one client thread, each on a connection of its own). Once every client has had an answer,
 * a weft_timer sets an Event (weft_event_set_cb) after a fixed time: the clients finish their
 * request and hang up, and a coroutine of the server's thread, waiting on that Event, stops
 * the server, whose handlers have all returned by then. The case's leak guard then checks
 * that no fd, thread or child process is left. Figures (requests/s) go to stdout.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scenario.h"
#include "weft_test.h"

/* 200 clients, 1.5 s of load; 20 clients and 0.5 s under valgrind (the server's hub and the
 * pools' threads all run serialised there). */
static int client_count(void)
{
    return RUNNING_ON_VALGRIND ? 20 : 200;
}

static double load_seconds(void)
{
    return RUNNING_ON_VALGRIND ? 0.5 : 1.5;
}

/* The CPU work: 20,000 rounds of a mixer from the request's seed. */
static uint64_t cpu_work(uint64_t seed)
{
    uint64_t h = seed;
    for (int i = 0; i < 20000; i++) h = scenario_mix(h + (uint64_t)i);
    return h;
}

/* The blocking call's answer. */
static uint64_t blocking_answer(uint64_t seed)
{
    return seed * 2 + 1;
}

/* Process-pool task: 8 bytes of seed in, 8 bytes of cpu_work out. */
static int cpu_task(const void *arg, size_t len, void **result, size_t *result_len)
{
    if (len != sizeof(uint64_t)) return WEFT_EINVAL;
    uint64_t seed, h;
    memcpy(&seed, arg, sizeof seed);
    h = cpu_work(seed);
    void *out = malloc(sizeof h);
    if (!out) return WEFT_ENOMEM;
    memcpy(out, &h, sizeof h);
    *result = out;
    *result_len = sizeof h;
    return 0;
}

/* Thread-pool task: a blocking system call (poll(2) that times out after 1 ms: a stand-in for
 * a blocking library call), then the answer. */
static int blocking_task(void *arg, void **result)
{
    (void)poll(NULL, 0, 1);
    *result = (void *)(uintptr_t)blocking_answer((uint64_t)(uintptr_t)arg);
    return 0;
}

typedef struct mixed {
    weft_executor_t *procs, *threads;
    weft_server_t *srv;
    int port, nclients;
    weft_event_t connected; /* every client has had its first answer */
    weft_event_t stop;      /* set by the timer: the load ends */
    _Atomic int answered_once;
    _Atomic long requests;   /* answered and checked, by the clients */
    _Atomic long served;     /* answered, by the handlers */
    _Atomic int errors;      /* any failure off the main thread */
    _Atomic int first_error; /* its code or line */
    int serve_rc, stop_rc;
} mixed_t;

static void note_failure(mixed_t *m, int what)
{
    int zero = 0;
    atomic_compare_exchange_strong(&m->first_error, &zero, what);
    atomic_fetch_add(&m->errors, 1);
}

/* Reads exactly n bytes: 0, WEFT_EEOF at a clean end before any byte, or an error. */
static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t done = 0;
        int rc = weft_fd_read(fd, (char *)buf + got, n - got, 30, &done);
        if (rc) return rc;
        if (done == 0) return got == 0 ? WEFT_EEOF : WEFT_ECONNRESET;
        got += done;
    }
    return 0;
}

/* One connection: 8-byte seeds in, [cpu_work][blocking_answer] out, until the client hangs
 * up. */
static void handler(int fd, void *arg)
{
    mixed_t *m = arg;
    for (;;) {
        uint64_t seed;
        int rc = read_full(fd, &seed, sizeof seed);
        if (rc == WEFT_EEOF) return;
        if (rc) {
            note_failure(m, rc);
            return;
        }
        weft_future_t *pf = NULL, *tf = NULL;
        if (weft_process_pool_submit(m->procs, cpu_task, &seed, sizeof seed, &pf) != 0 ||
            weft_executor_submit(m->threads, blocking_task, (void *)(uintptr_t)seed, &tf) != 0) {
            note_failure(m, __LINE__);
            weft_future_release(pf);
            return;
        }
        const void *data = NULL;
        size_t len = 0;
        void *value = NULL;
        uint64_t reply[2] = {0, 0};
        rc = weft_future_result_bytes(pf, 60, &data, &len);
        if (rc == 0 && len == sizeof reply[0]) memcpy(&reply[0], data, len);
        int rc2 = weft_future_result(tf, 60, &value);
        reply[1] = (uint64_t)(uintptr_t)value;
        weft_future_release(pf);
        weft_future_release(tf);
        if (rc || rc2 || len != sizeof reply[0]) {
            note_failure(m, rc ? rc : rc2 ? rc2 : __LINE__);
            return;
        }
        if (weft_fd_write(fd, reply, sizeof reply, 30, NULL) != 0) {
            note_failure(m, __LINE__);
            return;
        }
        atomic_fetch_add(&m->served, 1);
    }
}

/* On the server's hub: waits for the Event, then stops the server (its handlers end as their
 * clients hang up). */
static void stopper(void *arg)
{
    mixed_t *m = arg;
    if (weft_event_wait(&m->stop, 60) != 0) note_failure(m, __LINE__);
    m->stop_rc = weft_server_stop(m->srv, 30);
}

/* The server's thread: the stopper coroutine, then serve until stopped. */
static void *server_thread(void *arg)
{
    mixed_t *m = arg;
    weft_co_t *co = NULL;
    if (weft_co_spawn(stopper, m, NULL, &co) != 0) {
        note_failure(m, __LINE__);
        return NULL;
    }
    m->serve_rc = weft_server_serve_forever(m->srv);
    if (weft_co_join(co, 60) != 0) note_failure(m, __LINE__);
    weft_co_release(co);
    return NULL;
}

typedef struct client {
    mixed_t *m;
    int id;
} client_t;

/* One client: connects, then sends requests one at a time and checks each answer until the
 * Event is set, then hangs up. */
static void client(void *arg)
{
    client_t *c = arg;
    mixed_t *m = c->m;
    char where[32];
    snprintf(where, sizeof where, "127.0.0.1:%d", m->port);
    int fd = -1;
    if (weft_tcp_connect(where, 30, &fd) != 0) {
        note_failure(m, __LINE__);
        if (atomic_fetch_add(&m->answered_once, 1) + 1 == m->nclients)
            weft_event_set(&m->connected);
        return;
    }
    bool first = true;
    for (uint64_t k = 0; first || !weft_event_is_set(&m->stop); k++) {
        uint64_t seed = ((uint64_t)c->id << 32) | k, reply[2];
        if (weft_fd_write(fd, &seed, sizeof seed, 30, NULL) != 0 ||
            read_full(fd, reply, sizeof reply) != 0) {
            note_failure(m, __LINE__);
            break;
        }
        if (reply[0] != cpu_work(seed) || reply[1] != blocking_answer(seed)) {
            note_failure(m, __LINE__);
            break;
        }
        atomic_fetch_add(&m->requests, 1);
        if (first && atomic_fetch_add(&m->answered_once, 1) + 1 == m->nclients)
            weft_event_set(&m->connected);
        first = false;
    }
    weft_fd_close(fd);
}

/* The clients' thread: every client a coroutine of its hub. */
static void *clients_thread(void *arg)
{
    mixed_t *m = arg;
    client_t *cs = calloc((size_t)m->nclients, sizeof *cs);
    weft_co_t **cos = calloc((size_t)m->nclients, sizeof *cos);
    if (!cs || !cos) {
        note_failure(m, __LINE__);
        free(cs);
        free(cos);
        return NULL;
    }
    int spawned = 0;
    for (int i = 0; i < m->nclients; i++) {
        cs[i] = (client_t){m, i};
        if (weft_co_spawn(client, &cs[i], NULL, &cos[i]) != 0) {
            note_failure(m, __LINE__);
            break;
        }
        spawned++;
    }
    if (weft_co_join_all(cos, (size_t)spawned, 60) != 0) note_failure(m, __LINE__);
    for (int i = 0; i < spawned; i++) weft_co_release(cos[i]);
    free(cos);
    free(cs);
    return NULL;
}

/* 200 clients against a coroutine server that offloads to both pools; a Timer and an Event
 * end it; nothing is left behind (the leak guard: fds, threads, children). */
static void mixed_server_offloads_under_200_clients(void **state)
{
    (void)state;
    mixed_t m = {.nclients = client_count()};
    assert_int_equal(weft_event_init(&m.connected), 0);
    assert_int_equal(weft_event_init(&m.stop), 0);
    assert_int_equal(weft_process_pool_create(2, NULL, &m.procs), 0);
    assert_int_equal(weft_thread_pool_create(16, NULL, &m.threads), 0);
    int lfd = -1;
    assert_int_equal(weft_tcp_listen("127.0.0.1:0", 512, &lfd), 0);
    assert_int_equal(weft_tcp_local_port(lfd, &m.port), 0);
    assert_int_equal(weft_server_create(lfd, handler, &m, NULL, &m.srv), 0);

    pthread_t server = weft_test_start(server_thread, &m);
    double t0 = weft_time_monotonic();
    pthread_t clients = weft_test_start(clients_thread, &m);

    /* The load: from the moment every client has had an answer, for a fixed time. */
    assert_int_equal(weft_event_wait(&m.connected, 60), 0);
    double ramp = weft_time_monotonic() - t0;
    long before = atomic_load(&m.requests);
    double t1 = weft_time_monotonic();
    weft_timer_t timer = WEFT_TIMER_INIT;
    assert_int_equal(weft_timer_start(&timer, load_seconds(), weft_event_set_cb, &m.stop), 0);
    weft_test_join(clients);
    double t2 = weft_time_monotonic();
    long during = atomic_load(&m.requests) - before;
    weft_test_join(server);
    assert_int_equal(weft_timer_join(&timer, 10), 0);
    assert_int_equal(weft_timer_destroy(&timer), 0);

    if (atomic_load(&m.errors))
        fail_msg("%d failures; the first: %d", atomic_load(&m.errors), atomic_load(&m.first_error));
    assert_int_equal(m.serve_rc, 0);
    assert_int_equal(m.stop_rc, 0);
    assert_int_equal(atomic_load(&m.served), atomic_load(&m.requests));
    assert_true(atomic_load(&m.requests) >= m.nclients);
    printf("mixed: %d clients connected and answered in %.3f s; %ld requests in %.3f s: "
           "%.0f requests/s\n",
           m.nclients, ramp, during, t2 - t1, (double)during / (t2 - t1));

    assert_int_equal(weft_server_release(m.srv), 0);
    assert_int_equal(weft_executor_shutdown(m.procs, true, false, 60), 0);
    assert_int_equal(weft_executor_release(m.procs), 0);
    assert_int_equal(weft_executor_shutdown(m.threads, true, false, 60), 0);
    assert_int_equal(weft_executor_release(m.threads), 0);
    assert_int_equal(weft_event_destroy(&m.connected), 0);
    assert_int_equal(weft_event_destroy(&m.stop), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(mixed_server_offloads_under_200_clients),
};

WEFT_TEST_MAIN(cases)
