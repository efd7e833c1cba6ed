/* The process layer's waits from coroutines: joining a process, receiving on a Pipe, getting
 * from a cross-process queue, taking a shared Lock, waiting on a shared Event — each parks only
 * the waiting coroutine (or the thread's root), while a ticker coroutine on the same thread
 * goes on; cancel ends such a wait; a process started from inside a coroutine runs its
 * function alone (the copies of the thread's coroutines do not run in the child). */
#include "weft_test.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct ticker {
    atomic_int ticks;
    atomic_int stop;
} ticker_t;

static void tick(void *p)
{
    ticker_t *t = p;
    while (!atomic_load(&t->stop)) {
        atomic_fetch_add(&t->ticks, 1);
        if (weft_time_sleep(0.005)) break;
    }
}

static void stop(ticker_t *t, weft_co_t *co)
{
    atomic_store(&t->stop, 1);
    weft_test_co_join(co);
}

static int nap_then_7(void *arg)
{
    (void)arg;
    usleep(150000);
    return 7;
}

/* The thread's root joins a child while a coroutine of the thread ticks; a join that times
 * out does the same. */
static void root_joins_a_process(void **state)
{
    (void)state;
    ticker_t t = {0};
    weft_co_t *tk = weft_test_spawn(tick, &t);
    weft_process_t *p = weft_test_process_start(nap_then_7, NULL);
    assert_int_equal(weft_process_join(p, 0.03), WEFT_ETIMEDOUT);
    int before = atomic_load(&t.ticks);
    assert_int_equal(weft_test_process_finish(p), 7);
    /* It ran all along the 150 ms (5 ms naps: some 25 ticks; 3 is enough to tell it was not
     * blocked, also under valgrind, which is slow the first time through any code). */
    assert_true(atomic_load(&t.ticks) >= before + 3);
    stop(&t, tk);
}

static int exit_at_once(void *arg)
{
    (void)arg;
    return 3;
}

/* A thread whose hub watched one child's pidfd joins the next child, whose pidfd takes the
 * same number: every join returns when the child exits (with epoll, the released pidfd's
 * registration outlived it and the next join waited out its whole timeout, or forever). */
static void joins_in_a_row_reuse_the_pidfd_number(void **state)
{
    (void)state;
    ticker_t t = {0};
    weft_co_t *tk = weft_test_spawn(tick, &t); /* the root now parks through the hub's poller */
    for (int round = 0; round < 6; round++) {
        weft_process_t *p = weft_test_process_start(exit_at_once, NULL);
        double t0 = weft_time_monotonic();
        assert_int_equal(weft_process_join(p, 30), 0);
        assert_true(weft_time_monotonic() - t0 < 10);
        int code;
        assert_int_equal(weft_process_exitcode(p, &code), 0);
        assert_int_equal(code, 3);
        assert_int_equal(weft_process_release(p), 0);
    }
    stop(&t, tk);
}

typedef struct joiner {
    weft_process_t *p;
    int rc;
} joiner_t;

static void join_child(void *arg)
{
    joiner_t *j = arg;
    j->rc = weft_process_join(j->p, 60);
}

/* Coroutines join processes; a canceled joiner returns WEFT_ECANCELED at once, and the
 * process is still there to join. */
static void coroutines_join_and_cancel(void **state)
{
    (void)state;
    ticker_t t = {0};
    weft_co_t *tk = weft_test_spawn(tick, &t);
    joiner_t a = {weft_test_process_start(nap_then_7, NULL), 1},
             b = {weft_test_process_start(nap_then_7, NULL), 1};
    weft_co_t *ja = weft_test_spawn(join_child, &a), *jb = weft_test_spawn(join_child, &b);
    assert_int_equal(weft_time_sleep(0.02), 0);
    assert_int_equal(weft_co_cancel(jb), 0);
    weft_test_co_join(jb);
    assert_int_equal(b.rc, WEFT_ECANCELED);
    assert_true(weft_process_is_alive(b.p));
    weft_test_co_join(ja);
    assert_int_equal(a.rc, 0);
    assert_true(atomic_load(&t.ticks) >= 3);
    stop(&t, tk);
    assert_int_equal(weft_test_process_finish(a.p), 7);
    assert_int_equal(weft_test_process_finish(b.p), 7);
}

static weft_conn_t *child_end, *go_child;

/* Sends only once told to: the parent's gate tells it after the ticker ticked 3 more times
 * while the parent's recv waited (a fixed delay raced the ticks under valgrind at load). */
static int send_when_told(void *arg)
{
    (void)arg;
    char go[2];
    size_t n;
    if (weft_conn_recv_bytes(go_child, go, sizeof go, 30, &n) != 0) return 2;
    return weft_conn_send_bytes(child_end, "late", 4, 10) ? 1 : 0;
}

typedef struct gate {
    ticker_t *t;
    weft_conn_t *go;
    int rc;
} gate_t;

static void open_gate_after_3_more_ticks(void *arg)
{
    gate_t *g = arg;
    int base = atomic_load(&g->t->ticks); /* it first runs once the recv parks */
    while (atomic_load(&g->t->ticks) < base + 3) (void)weft_time_sleep(0.005);
    g->rc = weft_conn_send_bytes(g->go, "go", 2, 10);
}

/* recv_bytes on a Pipe parks the coroutine until the child's message comes. */
static void pipe_recv_in_a_coroutine(void **state)
{
    (void)state;
    weft_conn_t *mine, *go_mine;
    assert_int_equal(weft_pipe_create(true, &mine, &child_end), 0);
    assert_int_equal(weft_pipe_create(true, &go_mine, &go_child), 0);
    ticker_t t = {0};
    weft_co_t *tk = weft_test_spawn(tick, &t);
    weft_process_t *p = weft_test_process_start(send_when_told, NULL);
    char buf[8];
    size_t len = 0;
    assert_int_equal(weft_conn_poll(mine, 0.02), WEFT_ETIMEDOUT);
    gate_t g = {&t, go_mine, 1};
    weft_co_t *gc = weft_test_spawn(open_gate_after_3_more_ticks, &g);
    int before = atomic_load(&t.ticks);
    assert_int_equal(weft_conn_recv_bytes(mine, buf, sizeof buf, 10, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(buf, "late", 4);
    weft_test_co_join(gc);
    assert_int_equal(g.rc, 0);
    assert_true(atomic_load(&t.ticks) >= before + 3);
    stop(&t, tk);
    assert_int_equal(weft_test_process_finish(p), 0);
    assert_int_equal(weft_conn_release(mine), 0);
    assert_int_equal(weft_conn_release(child_end), 0);
    assert_int_equal(weft_conn_release(go_mine), 0);
    assert_int_equal(weft_conn_release(go_child), 0);
}

static void send_soon(void *arg)
{
    assert_int_equal(weft_time_sleep(0.01), 0);
    assert_int_equal(weft_conn_send_bytes(arg, "hi", 2, 10), 0);
}

/* Pipes made and closed in a row take the same fd numbers: a recv that parks through the hub
 * on the new Pipe wakes when its message comes (the closed Pipe's registration must not
 * outlive it: with epoll the next recv waited out its whole timeout). */
static void pipes_in_a_row_reuse_the_numbers(void **state)
{
    (void)state;
    ticker_t t = {0};
    weft_co_t *tk = weft_test_spawn(tick, &t);
    for (int round = 0; round < 4; round++) {
        weft_conn_t *a, *b;
        assert_int_equal(weft_pipe_create(true, &a, &b), 0);
        weft_co_t *sender = weft_test_spawn(send_soon, b);
        char buf[4];
        size_t len = 0;
        double t0 = weft_time_monotonic();
        assert_int_equal(weft_conn_recv_bytes(a, buf, sizeof buf, 30, &len), 0);
        assert_true(weft_time_monotonic() - t0 < 10);
        assert_int_equal(len, 2);
        weft_test_co_join(sender);
        assert_int_equal(weft_conn_release(a), 0);
        assert_int_equal(weft_conn_release(b), 0);
    }
    stop(&t, tk);
}

typedef struct big {
    weft_conn_t *a, *b;
    unsigned char *out, *in;
    size_t n;
    int rc;
} big_t;

static void send_big(void *arg)
{
    big_t *g = arg;
    g->rc = weft_conn_send_bytes(g->a, g->out, g->n, 30);
}

/* Two coroutines of one thread pass a message far larger than the socket's (or pipe's) buffer:
 * the sender parks mid-message (a wait that cancellation may not cut short) and the receiver
 * runs. */
static void pass_big_between_coroutines(bool duplex)
{
    big_t g = {.n = 4 << 20, .rc = 1};
    assert_int_equal(weft_pipe_create(duplex, &g.b, &g.a), 0);
    g.out = malloc(g.n);
    g.in = malloc(g.n);
    assert_non_null(g.out);
    assert_non_null(g.in);
    for (size_t i = 0; i < g.n; i++) g.out[i] = (unsigned char)(i * 7 + 3);
    weft_co_t *s = weft_test_spawn(send_big, &g);
    size_t len = 0;
    assert_int_equal(weft_conn_recv_bytes(g.b, g.in, g.n, 30, &len), 0);
    weft_test_co_join(s);
    assert_int_equal(g.rc, 0);
    assert_int_equal(len, g.n);
    assert_memory_equal(g.in, g.out, g.n);
    free(g.out);
    free(g.in);
    assert_int_equal(weft_conn_release(g.a), 0);
    assert_int_equal(weft_conn_release(g.b), 0);
}

static void pipe_between_coroutines_of_one_thread(void **state)
{
    (void)state;
    pass_big_between_coroutines(true);
}

/* The same over a one-way Pipe (a pipe(2) whose ends are non-blocking for the sender, read
 * with RWF_NOWAIT by a coroutine): both park through the hub, neither blocks the thread. */
static void one_way_pipe_between_coroutines_of_one_thread(void **state)
{
    (void)state;
    pass_big_between_coroutines(false);
}

typedef struct shared {
    weft_lock_t lock;
    weft_event_t took, go;
} shared_t;

static shared_t *sh;
static weft_mpqueue_t *q;

static int put_late(void *arg)
{
    (void)arg;
    usleep(100000);
    return weft_mpqueue_put(q, "msg", 3, 10) ? 1 : 0;
}

static int hold_lock(void *arg)
{
    (void)arg;
    if (weft_lock_acquire(&sh->lock, 10)) return 1;
    weft_event_set(&sh->took);
    usleep(100000);
    weft_event_set(&sh->go);
    return weft_lock_release(&sh->lock) ? 2 : 0;
}

/* mpqueue get, shared Lock and shared Event waits park the coroutine (it polls between naps)
 * while the ticker runs. */
static void shared_waits_in_coroutines(void **state)
{
    (void)state;
    assert_int_equal(weft_mpqueue_create(0, 0, false, &q), 0);
    assert_int_equal(weft_shm_alloc(sizeof *sh, (void **)&sh), 0);
    assert_int_equal(weft_lock_init_shared(&sh->lock), 0);
    assert_int_equal(weft_event_init_shared(&sh->took), 0);
    assert_int_equal(weft_event_init_shared(&sh->go), 0);
    ticker_t t = {0};
    weft_co_t *tk = weft_test_spawn(tick, &t);

    weft_process_t *p = weft_test_process_start(put_late, NULL);
    char buf[8];
    size_t len = 0;
    assert_int_equal(weft_mpqueue_get(q, buf, sizeof buf, 0.02, &len), WEFT_ETIMEDOUT);
    assert_int_equal(weft_mpqueue_get(q, buf, sizeof buf, 10, &len), 0);
    assert_int_equal(len, 3);
    assert_int_equal(weft_test_process_finish(p), 0);
    int after_queue = atomic_load(&t.ticks);
    assert_true(after_queue >= 3);

    p = weft_test_process_start(hold_lock, NULL);
    assert_int_equal(weft_event_wait(&sh->took, 10), 0);
    assert_int_equal(weft_lock_acquire(&sh->lock, 0.02), WEFT_ETIMEDOUT);
    assert_int_equal(weft_lock_acquire(&sh->lock, 10), 0); /* once the child lets go */
    assert_true(weft_event_is_set(&sh->go));
    assert_int_equal(weft_lock_release(&sh->lock), 0);
    assert_int_equal(weft_test_process_finish(p), 0);
    assert_true(atomic_load(&t.ticks) >= after_queue + 3);
    stop(&t, tk);
    assert_int_equal(weft_mpqueue_release(q), 0);
    assert_int_equal(weft_shm_free(sh, sizeof *sh), 0);
}

typedef struct holder {
    int order[4];
    atomic_int n;
} holder_t;

static void hold_briefly(void *arg)
{
    holder_t *h = arg;
    int me = atomic_fetch_add(&h->n, 1);
    assert_int_equal(weft_lock_acquire(&sh->lock, 10), 0);
    h->order[me] = 1;
    assert_int_equal(weft_time_sleep(0.01), 0); /* parks holding the lock */
    h->order[me] = 2;
    assert_int_equal(weft_lock_release(&sh->lock), 0);
}

/* Coroutines of one thread contend for a shared Lock (its owner is the thread): a second
 * coroutine waits for the first to release instead of failing with WEFT_EDEADLK. */
static void shared_lock_between_coroutines(void **state)
{
    (void)state;
    assert_int_equal(weft_shm_alloc(sizeof *sh, (void **)&sh), 0);
    assert_int_equal(weft_lock_init_shared(&sh->lock), 0);
    holder_t h = {{0}, 0};
    weft_co_t *a = weft_test_spawn(hold_briefly, &h), *b = weft_test_spawn(hold_briefly, &h);
    weft_test_co_join(a);
    weft_test_co_join(b);
    assert_int_equal(h.order[0], 2);
    assert_int_equal(h.order[1], 2);
    assert_false(weft_lock_locked(&sh->lock));
    assert_int_equal(weft_shm_free(sh, sizeof *sh), 0);
}

static atomic_int parent_side; /* the ticker's copy in a child would bump its own */

static void bump_forever(void *arg)
{
    (void)arg;
    for (;;) {
        atomic_fetch_add(&parent_side, 1);
        if (weft_time_sleep(0.002)) return;
    }
}

static int child_alone(void *arg)
{
    (void)arg;
    int before = atomic_load(&parent_side);
    if (weft_time_sleep(0.05)) return 1; /* a wait in the child: would run the copies, if any */
    if (atomic_load(&parent_side) != before) return 2;
    if (weft_co_current() != NULL) return 3; /* a plain thread now */
    return 0;
}

static void start_from_coroutine(void *arg)
{
    weft_process_t **p = arg;
    assert_int_equal(weft_process_start(child_alone, NULL, NULL, p), 0);
}

/* A process started from a coroutine runs its function alone: the copies of the thread's
 * coroutines stay parked in the child. */
static void child_of_a_coroutine_runs_alone(void **state)
{
    (void)state;
    weft_co_t *bumper = weft_test_spawn(bump_forever, NULL);
    weft_process_t *p = NULL;
    weft_test_co_join(weft_test_spawn(start_from_coroutine, &p));
    assert_int_equal(weft_test_process_finish(p), 0);
    assert_int_equal(weft_co_cancel(bumper), 0);
    weft_test_co_join(bumper);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(root_joins_a_process),
        WEFT_TEST(joins_in_a_row_reuse_the_pidfd_number),
        WEFT_TEST(coroutines_join_and_cancel),
        WEFT_TEST(pipe_recv_in_a_coroutine),
        WEFT_TEST(pipes_in_a_row_reuse_the_numbers),
        WEFT_TEST(pipe_between_coroutines_of_one_thread),
        WEFT_TEST(one_way_pipe_between_coroutines_of_one_thread),
        WEFT_TEST(shared_waits_in_coroutines),
        WEFT_TEST(shared_lock_between_coroutines),
        WEFT_TEST(child_of_a_coroutine_runs_alone),
    };
    return weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
