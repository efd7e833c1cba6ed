/*
 * Coroutines and the hub: spawn/join/joinall/cancel, yield and sleep, states, locals,
 * groups, timeout scopes, deadlock detection, the watchdog, stacks, out-of-memory, and every
 * weft primitive used from coroutines (the waiting core's parker). Mirrors gevent's
 * src/gevent/tests: test__greenlet.py (spawn, join, kill, joinall), test__timeout.py,
 * test__event.py (Event, AsyncResult), test__queue.py, test__semaphore.py / test__lock.py,
 * test__pool.py, test__local.py; and libdill's tests/cancel.c. Each case names the one it
 * follows. Every case runs once per poller (CTest suffix .select/.poll/.epoll/.io_uring).
 */
#include "weft_test.h"

#include "core/sys_internal.h"
#include "coro/coro_internal.h"
#include "wait/wait_internal.h"

#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* A trace of what coroutines did, in order. */
typedef struct trace {
    char buf[512];
    size_t n;
} trace_t;

static void note(trace_t *t, const char *s)
{
    size_t len = strlen(s);
    assert_true(t->n + len + 1 < sizeof t->buf);
    memcpy(t->buf + t->n, s, len);
    t->n += len;
    t->buf[t->n++] = ' ';
    t->buf[t->n] = 0;
}

/* ---- spawn, join, yield ---------------------------------------------------------------- */

typedef struct tagged {
    trace_t *t;
    const char *name;
    int rounds;
} tagged_t;

static void talk(void *p)
{
    tagged_t *a = p;
    for (int i = 0; i < a->rounds; i++) {
        note(a->t, a->name);
        assert_int_equal(weft_co_yield(), 0);
    }
}

/* test__greenlet.py TestStuff.test_spawn: spawn only schedules; the new coroutine first runs
 * when the spawner blocks, and coroutines then take turns at each yield. */
static void spawn_runs_when_caller_blocks(void **state)
{
    (void)state;
    trace_t t = {0};
    tagged_t a = {&t, "a", 3}, b = {&t, "b", 3};
    weft_co_t *ca = weft_test_spawn(talk, &a), *cb = weft_test_spawn(talk, &b);
    assert_int_equal(weft_co_state(ca), WEFT_CO_READY);
    assert_string_equal(t.buf, "");
    weft_test_co_join(ca);
    weft_test_co_join(cb);
    assert_string_equal(t.buf, "a b a b a b ");
}

static void nothing(void *p)
{
    (void)p;
}

/* test__greenlet.py TestJoin: join after the end returns at once, any number of times; a
 * timeout that passes first reports it and the coroutine goes on. */
static void join_twice_and_timeout(void **state)
{
    (void)state;
    weft_co_t *co = weft_test_spawn(nothing, NULL);
    assert_int_equal(weft_co_join(co, WEFT_FOREVER), 0);
    assert_int_equal(weft_co_join(co, 0), 0);
    assert_int_equal(weft_co_join(co, WEFT_FOREVER), 0);
    assert_int_equal(weft_co_state(co), WEFT_CO_DONE);
    weft_co_release(co);
}

static void wait_event(void *p)
{
    assert_int_equal(weft_event_wait(p, WEFT_FOREVER), 0);
}

static void join_timeout(void **state)
{
    (void)state;
    weft_event_t e;
    weft_event_init(&e);
    weft_co_t *co = weft_test_spawn(wait_event, &e);
    assert_int_equal(weft_co_join(co, 0), WEFT_ETIMEDOUT);
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(weft_co_join(co, 0.05), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic_ns() - t0 >= 45 * 1000000LL);
    assert_int_equal(weft_co_state(co), WEFT_CO_BLOCKED);
    weft_event_set(&e);
    weft_test_co_join(co);
    weft_event_destroy(&e);
}

static void join_self(void *p)
{
    *(int *)p = weft_co_join(weft_co_current(), WEFT_FOREVER);
}

/* test__greenlet.py test_join_self (gevent raises): a coroutine joining itself is EDEADLK;
 * bad arguments are EINVAL. */
static void join_bad_input(void **state)
{
    (void)state;
    int rc = 1;
    weft_co_t *co = weft_test_spawn(join_self, &rc);
    weft_test_co_join(co);
    assert_int_equal(rc, WEFT_EDEADLK);
    assert_int_equal(weft_co_join(NULL, 1), WEFT_EINVAL);
    co = weft_test_spawn(nothing, NULL);
    assert_int_equal(weft_co_join(co, NAN), WEFT_EINVAL);
    weft_test_co_join(co);
    assert_int_equal(weft_co_spawn(NULL, NULL, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_co_spawn(NULL, NULL, NULL, &co), WEFT_EINVAL);
    assert_null(co);
    weft_co_opts_t o = {.name = "a-name-that-is-longer-than-31-chars"};
    assert_int_equal(weft_co_spawn(nothing, NULL, &o, &co), WEFT_EINVAL);
    o = (weft_co_opts_t){.stack_size = 1024};
    assert_int_equal(weft_co_spawn(nothing, NULL, &o, &co), WEFT_EINVAL);
    o = (weft_co_opts_t){.stack_size = (size_t)4 << 30};
    assert_int_equal(weft_co_spawn(nothing, NULL, &o, &co), WEFT_EINVAL);
    assert_int_equal(weft_co_cancel(NULL), WEFT_EINVAL);
    assert_int_equal(weft_co_join_all(NULL, 1, 1), WEFT_EINVAL);
    assert_int_equal(weft_co_join_all(NULL, 0, 1), 0);
    assert_int_equal(weft_co_state(NULL), WEFT_CO_INVALID);
    assert_null(weft_co_retain(NULL));
    assert_int_equal(weft_co_release(NULL), WEFT_EINVAL);
    assert_null(weft_co_name(NULL));
}

static void sleeper(void *p)
{
    assert_int_equal(weft_time_sleep(*(double *)p), 0);
}

static void sleep_until_canceled(void *p)
{
    (void)p;
    assert_int_equal(weft_time_sleep(60), WEFT_ECANCELED);
}

/* test__greenlet.py TestJoinAll: joinall waits for all, within one timeout, skipping NULL. */
static void joinall(void **state)
{
    (void)state;
    double d[3] = {0.01, 0.02, 0.03};
    weft_co_t *cos[4] = {weft_test_spawn(sleeper, &d[0]), NULL, weft_test_spawn(sleeper, &d[1]),
                         weft_test_spawn(sleeper, &d[2])};
    assert_int_equal(weft_co_join_all(cos, 4, 30), 0);
    for (int i = 0; i < 4; i++) {
        if (!cos[i]) continue;
        assert_int_equal(weft_co_state(cos[i]), WEFT_CO_DONE);
        weft_co_release(cos[i]);
    }
    weft_co_t *two[2] = {weft_test_spawn(sleeper, &d[0]),
                         weft_test_spawn(sleep_until_canceled, NULL)};
    assert_int_equal(weft_co_join_all(two, 2, 0.1), WEFT_ETIMEDOUT);
    assert_int_equal(weft_co_state(two[0]), WEFT_CO_DONE);
    weft_co_cancel(two[1]);
    assert_int_equal(weft_co_join(two[1], 30), 0);
    weft_co_release(two[0]);
    weft_co_release(two[1]);
}

/* gevent.sleep(0) fairness: a yielding coroutine lets every ready one run once per round. */
static void yield_round_robin(void **state)
{
    (void)state;
    trace_t t = {0};
    tagged_t a = {&t, "a", 2}, b = {&t, "b", 2}, c = {&t, "c", 2};
    weft_co_t *cs[3] = {weft_test_spawn(talk, &a), weft_test_spawn(talk, &b),
                        weft_test_spawn(talk, &c)};
    assert_int_equal(weft_co_yield(), 0); /* the root takes its turn too */
    note(&t, "root");
    assert_int_equal(weft_co_join_all(cs, 3, 30), 0);
    for (int i = 0; i < 3; i++) weft_co_release(cs[i]);
    assert_string_equal(t.buf, "a b c root a b c ");
}

/* ---- sleep ----------------------------------------------------------------------------- */

typedef struct sort_arg {
    trace_t *t;
    int v;
    char s[4];
} sort_arg_t;

static void sort_one(void *p)
{
    sort_arg_t *a = p;
    assert_int_equal(weft_time_sleep(a->v * 0.02), 0);
    note(a->t, a->s);
}

/* The seed's sleep sort: wake-ups come in deadline order, whatever the spawn order. */
static void sleep_sort(void **state)
{
    (void)state;
    trace_t t = {0};
    int v[6] = {5, 2, 4, 1, 3, 0};
    sort_arg_t a[6];
    weft_co_t *cs[6];
    for (int i = 0; i < 6; i++) {
        a[i] = (sort_arg_t){&t, v[i], {0}};
        snprintf(a[i].s, sizeof a[i].s, "%d", v[i]);
        cs[i] = weft_test_spawn(sort_one, &a[i]);
    }
    assert_int_equal(weft_co_join_all(cs, 6, 30), 0);
    for (int i = 0; i < 6; i++) weft_co_release(cs[i]);
    assert_string_equal(t.buf, "0 1 2 3 4 5 ");
}

static void sleep_bad_input_and_thread(void **state)
{
    (void)state;
    assert_int_equal(weft_time_sleep(NAN), WEFT_EINVAL);
    /* No hub: a thread sleeps (and yields). */
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(weft_time_sleep(0.02), 0);
    assert_true(weft_time_monotonic_ns() - t0 >= 19 * 1000000LL);
    assert_int_equal(weft_time_sleep(0), 0);
    assert_int_equal(weft_co_yield(), 0);
    assert_null(weft_co_current());
}

/* ---- cancel (gevent kill, libdill cancellation) ------------------------------------------ */

typedef struct victim {
    weft_event_t *e;
    int rc;
    bool cleaned;
    int after;
} victim_t;

static void victim(void *p)
{
    victim_t *v = p;
    v->rc = weft_event_wait(v->e, WEFT_FOREVER);
    /* Cleanup: calls that need not wait still work, one that must wait fails at once. */
    v->after = weft_time_sleep(1);
    v->cleaned = true;
}

/* test__greenlet.py TestKill / libdill cancel.c: a canceled coroutine's blocking call returns
 * ECANCELED, every later wait too, and its cleanup runs. */
static void cancel_blocked(void **state)
{
    (void)state;
    weft_event_t e;
    weft_event_init(&e);
    victim_t v = {&e, 1, false, 1};
    weft_co_t *co = weft_test_spawn(victim, &v);
    assert_int_equal(weft_co_yield(), 0);
    assert_int_equal(weft_co_state(co), WEFT_CO_BLOCKED);
    assert_int_equal(weft_co_cancel(co), 0);
    weft_test_co_join(co);
    assert_int_equal(v.rc, WEFT_ECANCELED);
    assert_int_equal(v.after, WEFT_ECANCELED);
    assert_true(v.cleaned);
    weft_event_destroy(&e);
}

static void never(void *p)
{
    *(int *)p = 1;
}

/* test__greenlet.py test_kill_before_start: a coroutine canceled before it ran never runs;
 * cancel after the end is a no-op. */
static void cancel_before_start(void **state)
{
    (void)state;
    int ran = 0;
    weft_co_t *co = weft_test_spawn(never, &ran);
    assert_int_equal(weft_co_cancel(co), 0);
    assert_int_equal(weft_co_join(co, 30), 0);
    assert_int_equal(ran, 0);
    assert_int_equal(weft_co_cancel(co), 0);
    weft_co_release(co);
}

typedef struct remote_cancel {
    weft_co_t *co;
    weft_event_t *blocked;
} remote_cancel_t;

static void *cancel_from_thread(void *p)
{
    remote_cancel_t *r = p;
    assert_int_equal(weft_event_wait(r->blocked, 30), 0);
    weft_co_cancel(r->co);
    return NULL;
}

static void signal_then_wait(void *p)
{
    victim_t *v = p;
    weft_event_set(v->e + 1); /* "I am about to block" */
    v->rc = weft_event_wait(v->e, WEFT_FOREVER);
    v->cleaned = true;
}

/* A cancel from another OS thread reaches the coroutine through its hub's remote queue. */
static void cancel_from_other_thread(void **state)
{
    (void)state;
    weft_event_t e[2];
    weft_event_init(&e[0]);
    weft_event_init(&e[1]);
    victim_t v = {e, 1, false, 0};
    weft_co_t *co = weft_test_spawn(signal_then_wait, &v);
    remote_cancel_t r = {co, &e[1]};
    pthread_t t = weft_test_start(cancel_from_thread, &r);
    weft_test_co_join(co);
    weft_test_join(t);
    assert_int_equal(v.rc, WEFT_ECANCELED);
    assert_true(v.cleaned);
    weft_event_destroy(&e[0]);
    weft_event_destroy(&e[1]);
}

/* ---- states, current, names ------------------------------------------------------------- */

static void check_self(void *p)
{
    weft_co_t **me = p;
    *me = weft_co_current();
    assert_int_equal(weft_co_state(*me), WEFT_CO_RUNNING);
    assert_string_equal(weft_co_name(*me), "worker");
}

/* The seed's process states: READY after spawn, RUNNING inside, BLOCKED parked, DONE. */
static void states_and_names(void **state)
{
    (void)state;
    weft_co_t *seen = NULL, *co;
    weft_co_opts_t o = {.name = "worker"};
    assert_int_equal(weft_co_spawn(check_self, &seen, &o, &co), 0);
    assert_int_equal(weft_co_state(co), WEFT_CO_READY);
    assert_null(weft_co_current());
    assert_int_equal(weft_co_join(co, 30), 0);
    assert_ptr_equal(seen, co);
    assert_int_equal(weft_co_state(co), WEFT_CO_DONE);
    weft_co_release(co);
    co = weft_test_spawn(nothing, NULL);
    assert_non_null(strstr(weft_co_name(co), "Coroutine-"));
    weft_test_co_join(co);
}

/* ---- coroutine-local data (test__local.py) ---------------------------------------------- */

static int freed;
static void count_free(void *v)
{
    freed++;
    free(v);
}
static weft_co_key_t key = WEFT_CO_KEY_INIT(count_free);
static weft_co_key_t plain_key = WEFT_CO_KEY_INIT(NULL);

static void use_locals(void *p)
{
    int id = *(int *)p;
    assert_null(weft_co_local_get(&key));
    int *v = malloc(sizeof *v);
    *v = id;
    assert_int_equal(weft_co_local_set(&key, v), 0);
    assert_int_equal(weft_co_local_set(&plain_key, p), 0);
    assert_int_equal(weft_co_yield(), 0);
    assert_int_equal(*(int *)weft_co_local_get(&key), id); /* the others did not touch it */
    assert_ptr_equal(weft_co_local_get(&plain_key), p);
}

/* test__local.py: each coroutine sees its own value; destructors run when it ends; the root
 * has values of its own. */
static void locals(void **state)
{
    (void)state;
    freed = 0;
    int ids[3] = {1, 2, 3};
    weft_co_t *cs[3] = {weft_test_spawn(use_locals, &ids[0]), weft_test_spawn(use_locals, &ids[1]),
                        weft_test_spawn(use_locals, &ids[2])};
    assert_int_equal(weft_co_local_set(&plain_key, &ids[2]), 0);
    assert_int_equal(weft_co_join_all(cs, 3, 30), 0);
    for (int i = 0; i < 3; i++) weft_co_release(cs[i]);
    assert_int_equal(freed, 3);
    assert_ptr_equal(weft_co_local_get(&plain_key), &ids[2]);
    assert_int_equal(weft_co_local_set(NULL, NULL), WEFT_EINVAL);
    assert_null(weft_co_local_get(NULL));
}

/* ---- groups (test__pool.py) --------------------------------------------------------------- */

typedef struct gate {
    weft_event_t go;
    _Atomic int running, peak, done;
} gate_t;

static void gated(void *p)
{
    gate_t *g = p;
    int now = atomic_fetch_add(&g->running, 1) + 1;
    int peak = atomic_load(&g->peak);
    while (now > peak && !atomic_compare_exchange_weak(&g->peak, &peak, now)) {
    }
    weft_event_wait(&g->go, WEFT_FOREVER);
    atomic_fetch_sub(&g->running, 1);
    atomic_fetch_add(&g->done, 1);
}

static void wait_event_cancelable(void *p)
{
    assert_int_equal(weft_event_wait(p, WEFT_FOREVER), WEFT_ECANCELED);
}

static void spawn_five(void *p)
{
    void **a = p;
    for (int i = 0; i < 5; i++) assert_int_equal(weft_group_spawn(a[0], gated, a[1], 30, NULL), 0);
}

/* test__pool.py TestPool.test_pool_full / test_apply_async: a Pool(2) runs at most two at
 * once; spawn blocks while it is full; join waits for all. */
static void group_bounded(void **state)
{
    (void)state;
    weft_group_t *g;
    assert_int_equal(weft_group_create(2, &g), 0);
    gate_t gate = {0};
    weft_event_init(&gate.go);
    void *args[2] = {g, &gate};
    weft_co_t *spawner = weft_test_spawn(spawn_five, args);
    assert_int_equal(weft_time_sleep(0.02), 0);
    assert_int_equal(atomic_load(&gate.running), 2);
    assert_int_equal(weft_group_size(g), 2);
    assert_int_equal(weft_co_state(spawner), WEFT_CO_BLOCKED); /* the third spawn waits */
    assert_int_equal(weft_group_spawn(g, gated, &gate, 0, NULL), WEFT_ETIMEDOUT);
    assert_int_equal(weft_group_join(g, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_group_release(g), WEFT_EBUSY);
    weft_event_set(&gate.go);
    weft_test_co_join(spawner);
    assert_int_equal(weft_group_join(g, 30), 0);
    assert_int_equal(atomic_load(&gate.done), 5);
    assert_int_equal(atomic_load(&gate.peak), 2);
    assert_int_equal(weft_group_size(g), 0);
    assert_int_equal(weft_group_release(g), 0);
    weft_event_destroy(&gate.go);
}

/* test__pool.py test_kill: cancel ends every member; a handle from group_spawn is the
 * caller's own. Bad input is EINVAL. */
static void group_cancel_and_handles(void **state)
{
    (void)state;
    weft_group_t *g;
    assert_int_equal(weft_group_create(0, &g), 0);
    weft_event_t e;
    weft_event_init(&e);
    weft_co_t *co[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_group_spawn(g, wait_event_cancelable, &e, 30, &co[i]), 0);
    assert_int_equal(weft_co_yield(), 0);
    assert_int_equal(weft_group_size(g), 3);
    assert_int_equal(weft_group_cancel(g), 0);
    assert_int_equal(weft_group_join(g, 30), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(weft_co_state(co[i]), WEFT_CO_DONE);
        weft_co_release(co[i]);
    }
    assert_int_equal(weft_group_release(g), 0);
    weft_event_destroy(&e);
    assert_int_equal(weft_group_create(1, NULL), WEFT_EINVAL);
    assert_int_equal(weft_group_spawn(NULL, nothing, NULL, 1, NULL), WEFT_EINVAL);
    assert_int_equal(weft_group_join(NULL, 1), WEFT_EINVAL);
    assert_int_equal(weft_group_cancel(NULL), WEFT_EINVAL);
    assert_int_equal(weft_group_release(NULL), WEFT_EINVAL);
    assert_int_equal(weft_group_size(NULL), 0);
}

/* gevent's Pool.join from inside the pool: a member joining its own group would wait for
 * itself forever; it gets WEFT_EDEADLK at once, as weft_co_join of itself does. */
static void join_own_group(void *p)
{
    weft_group_t *g = p;
    assert_int_equal(weft_group_join(g, WEFT_FOREVER), WEFT_EDEADLK);
    assert_int_equal(weft_group_join(g, 0), WEFT_EDEADLK);
}

static void group_join_from_a_member_is_edeadlk(void **state)
{
    (void)state;
    weft_group_t *g;
    assert_int_equal(weft_group_create(0, &g), 0);
    weft_co_t *co;
    assert_int_equal(weft_group_spawn(g, join_own_group, g, 30, &co), 0);
    weft_test_co_join(co);
    assert_int_equal(weft_group_join(g, 30), 0);
    assert_int_equal(weft_group_release(g), 0);
}

/* ---- timeout scopes (test__timeout.py) --------------------------------------------------- */

static void scoped(void *p)
{
    int *rc = p;
    weft_event_t e;
    weft_event_init(&e);
    weft_timeout_t outer, inner;
    assert_int_equal(weft_timeout_begin(&outer, 0.05), 0);
    /* Every blocking call inside gets the deadline: an Event wait, a sleep, a join. */
    rc[0] = weft_event_wait(&e, WEFT_FOREVER);
    rc[1] = weft_time_sleep(10);
    /* An inner scope cannot extend the outer one. */
    assert_int_equal(weft_timeout_begin(&inner, 10), 0);
    rc[2] = weft_event_wait(&e, WEFT_FOREVER);
    assert_int_equal(weft_timeout_end(&inner), 0); /* its own deadline did not pass */
    rc[3] = weft_timeout_end(&outer);
    /* Outside the scope waits are unlimited again (a short one proves it is not expired). */
    rc[4] = weft_event_wait(&e, 0.01);
    /* A scope whose deadline has not come changes nothing. */
    assert_int_equal(weft_timeout_begin(&outer, 10), 0);
    rc[5] = weft_time_sleep(0.01);
    rc[6] = weft_timeout_end(&outer);
    weft_event_destroy(&e);
}

/* test__timeout.py test_timeout / test_nested_timeout: the scope's deadline ends every wait
 * inside with ETIMEDOUT; nested scopes take the earliest; end reports whether it expired. */
static void timeout_scope(void **state)
{
    (void)state;
    int rc[7];
    weft_co_t *co = weft_test_spawn(scoped, rc);
    weft_test_co_join(co);
    assert_int_equal(rc[0], WEFT_ETIMEDOUT);
    assert_int_equal(rc[1], WEFT_ETIMEDOUT);
    assert_int_equal(rc[2], WEFT_ETIMEDOUT);
    assert_int_equal(rc[3], WEFT_ETIMEDOUT);
    assert_int_equal(rc[4], WEFT_ETIMEDOUT); /* its own 0.01 s */
    assert_int_equal(rc[5], 0);
    assert_int_equal(rc[6], 0);
    /* The same in a plain thread's context (no hub). */
    scoped(rc);
    assert_int_equal(rc[0], WEFT_ETIMEDOUT);
    assert_int_equal(rc[3], WEFT_ETIMEDOUT);
    assert_int_equal(weft_timeout_begin(NULL, 1), WEFT_EINVAL);
    weft_timeout_t t;
    assert_int_equal(weft_timeout_begin(&t, NAN), WEFT_EINVAL);
    assert_int_equal(weft_timeout_end(NULL), WEFT_EINVAL);
    assert_int_equal(weft_timeout_begin(&t, WEFT_FOREVER), 0); /* no deadline */
    assert_int_equal(weft_timeout_end(&t), 0);
}

/* Scopes ended out of order (an error path that returns between begin and end): ending the
 * outer scope ends the inner one too, and the inner one's late end is refused (WEFT_EINVAL)
 * instead of restoring the outer, long-gone deadline for every later wait of the thread. */
static void out_of_order_scopes(void *p)
{
    int *rc = p;
    weft_timeout_t outer, inner;
    rc[0] = weft_timeout_begin(&outer, 0.02);
    rc[1] = weft_timeout_begin(&inner, 30);
    rc[2] = weft_timeout_end(&outer);
    rc[3] = weft_timeout_end(&inner);
    rc[4] = weft_time_sleep(0.05); /* past the outer deadline: no scope bounds it any more */
    weft_timeout_t next;           /* a new scope works as usual */
    rc[5] = weft_timeout_begin(&next, 30);
    rc[6] = weft_time_sleep(0.001);
    rc[7] = weft_timeout_end(&next);
    rc[8] = weft_timeout_end(&next); /* ended already */
}

static void timeout_scope_ended_out_of_order_leaves_no_deadline(void **state)
{
    (void)state;
    for (int hub = 0; hub <= 1; hub++) {
        int rc[9];
        if (hub) {
            weft_co_t *co = weft_test_spawn(out_of_order_scopes, rc);
            weft_test_co_join(co);
        } else {
            out_of_order_scopes(rc); /* a plain thread's context first */
        }
        assert_int_equal(rc[0], 0);
        assert_int_equal(rc[1], 0);
        /* 0, or WEFT_ETIMEDOUT when the 20 ms passed before the end (valgrind, a busy machine) */
        assert_true(rc[2] == 0 || rc[2] == WEFT_ETIMEDOUT);
        assert_int_equal(rc[3], WEFT_EINVAL);
        assert_int_equal(rc[4], 0);
        assert_int_equal(rc[5], 0);
        assert_int_equal(rc[6], 0);
        assert_int_equal(rc[7], 0);
        assert_int_equal(rc[8], WEFT_EINVAL);
    }
}

/* ---- deadlock detection and the watchdog -------------------------------------------------- */

static void stuck_waiter(void *p)
{
    assert_int_equal(weft_event_wait(p, WEFT_FOREVER), WEFT_EDEADLK);
}

static bool predicate_never_true(void *arg)
{
    (void)arg;
    return false;
}

static void stuck_condition_waiter(void *p)
{
    weft_condition_t *c = p;
    assert_int_equal(weft_condition_acquire(c, WEFT_FOREVER), 0);
    assert_int_equal(weft_condition_wait_for(c, predicate_never_true, NULL, WEFT_FOREVER),
                     WEFT_EDEADLK);
    assert_int_equal(weft_condition_release(c), 0);
}

/* weft_condition_wait_for gives back the deadlock its wait found (it looped on it, waiting
 * again for ever). */
static void condition_wait_for_returns_the_deadlock(void **state)
{
    (void)state;
    weft_condition_t c;
    assert_int_equal(weft_condition_init(&c, NULL, NULL), 0);
    weft_co_t *co = weft_test_spawn(stuck_condition_waiter, &c);
    assert_int_equal(weft_co_join(co, WEFT_FOREVER), WEFT_EDEADLK);
    assert_int_equal(weft_co_join(co, 30), 0);
    weft_co_release(co);
    assert_int_equal(weft_condition_destroy(&c), 0);
}

/* Go's "all goroutines are asleep", gevent's LoopExit: with every coroutine of the only
 * thread blocked on what nothing can set, the waits fail with EDEADLK instead of hanging. */
static void deadlock_is_reported(void **state)
{
    (void)state;
    weft_event_t e;
    weft_event_init(&e);
    weft_co_t *a = weft_test_spawn(stuck_waiter, &e), *b = weft_test_spawn(stuck_waiter, &e);
    weft_co_t *both[2] = {a, b};
    assert_int_equal(weft_co_join_all(both, 2, WEFT_FOREVER), WEFT_EDEADLK);
    /* The root's join failed too; the coroutines got EDEADLK and ended. */
    assert_int_equal(weft_co_join_all(both, 2, 30), 0);
    weft_co_release(a);
    weft_co_release(b);
    /* A lock the root holds and waits for again. */
    weft_lock_t l;
    weft_lock_init(&l);
    assert_int_equal(weft_lock_acquire(&l, WEFT_FOREVER), 0);
    assert_int_equal(weft_lock_acquire(&l, WEFT_FOREVER), WEFT_EDEADLK);
    weft_lock_release(&l);
    weft_lock_destroy(&l);
    weft_event_destroy(&e);
}

/* A coroutine joining one that waits on an Event nobody sets, on the only thread of the
 * process: the hub finds both stuck, and the join fails with WEFT_EDEADLK (weft/coro.h lists
 * it for weft_co_join). The stuck one does not end on its own EDEADLK (it waits, bounded, for
 * the joiner to have seen its answer): its end would wake the joiner's join with 0 first. */
typedef struct stuck_join {
    weft_event_t e, seen;
    int rc;
} stuck_join_t;

static void stuck_until_seen(void *p)
{
    stuck_join_t *s = p;
    assert_int_equal(weft_event_wait(&s->e, WEFT_FOREVER), WEFT_EDEADLK);
    assert_int_equal(weft_event_wait(&s->seen, 30), 0);
}

static void joins_a_stuck_one(void *p)
{
    stuck_join_t *s = p;
    weft_co_t *a = weft_test_spawn(stuck_until_seen, s);
    s->rc = weft_co_join(a, WEFT_FOREVER);
    weft_event_set(&s->seen);
    assert_int_equal(weft_co_join(a, 30), 0);
    weft_co_release(a);
}

static void co_join_of_a_stuck_coroutine_is_edeadlk(void **state)
{
    (void)state;
    stuck_join_t s = {.rc = 1};
    weft_event_init(&s.e);
    weft_event_init(&s.seen);
    weft_co_t *j = weft_test_spawn(joins_a_stuck_one, &s);
    int rc = weft_co_join(j, WEFT_FOREVER); /* the root is stuck with them */
    assert_true(rc == 0 || rc == WEFT_EDEADLK);
    assert_int_equal(weft_co_join(j, 30), 0);
    weft_co_release(j);
    assert_int_equal(s.rc, WEFT_EDEADLK);
    weft_event_destroy(&s.e);
    weft_event_destroy(&s.seen);
}

static void *set_later(void *p)
{
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    weft_event_set(p);
    return NULL;
}

/* Not a deadlock: another thread can still set the Event. */
static void other_thread_is_no_deadlock(void **state)
{
    (void)state;
    weft_event_t e;
    weft_event_init(&e);
    weft_co_t *co = weft_test_spawn(wait_event, &e);
    pthread_t t = weft_test_start(set_later, &e);
    weft_test_co_join(co);
    weft_test_join(t);
    weft_event_destroy(&e);
}

static _Atomic int hog_reports;
static char hog_name[WEFT_CO_NAME_MAX];

static void on_hog(const char *name, double seconds, void *arg)
{
    (void)arg;
    assert_true(seconds >= 0.05);
    snprintf(hog_name, sizeof hog_name, "%s", name);
    atomic_fetch_add(&hog_reports, 1);
}

static void hog(void *p)
{
    (void)p;
    int64_t until = weft_time_monotonic_ns() + 2000000000LL;
    while (!atomic_load(&hog_reports) && weft_time_monotonic_ns() < until) {
    }
}

/* The watchdog reports a coroutine that runs past the threshold without switching while
 * another one waits for the CPU; once per hog. */
static void watchdog_reports_hog(void **state)
{
    (void)state;
    atomic_store(&hog_reports, 0);
    assert_int_equal(weft_watchdog_start(0.05, on_hog, NULL), 0);
    assert_int_equal(weft_watchdog_start(0.05, on_hog, NULL), WEFT_EALREADY);
    weft_co_opts_t o = {.name = "hog"};
    weft_co_t *h;
    assert_int_equal(weft_co_spawn(hog, NULL, &o, &h), 0);
    weft_co_t *other = weft_test_spawn(nothing, NULL);
    weft_test_co_join(h);
    weft_test_co_join(other);
    assert_int_equal(weft_watchdog_stop(), 0);
    assert_int_equal(weft_watchdog_stop(), WEFT_EALREADY);
    assert_int_equal(atomic_load(&hog_reports), 1);
    assert_string_equal(hog_name, "hog");
    assert_int_equal(weft_watchdog_start(0, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_watchdog_start(NAN, NULL, NULL), WEFT_EINVAL);
}

/* The report callback runs outside the registry of hubs: it may start a thread that creates
 * a hub and tears it down (its thread ends) and wait for it. (A report under the registry lock
 * hung here: the new hub waited for the lock the watchdog held while it waited for the hub.) */
static _Atomic int lifecycle_reports;

static void *hub_lifecycle(void *p)
{
    (void)p;
    weft_co_t *co;
    if (weft_co_spawn(nothing, NULL, NULL, &co) == 0) { /* creates this thread's hub */
        weft_co_join(co, WEFT_FOREVER);
        weft_co_release(co);
    }
    return NULL; /* the thread's end destroys its hub */
}

static void on_hog_make_hub(const char *name, double seconds, void *arg)
{
    (void)name;
    (void)seconds;
    (void)arg;
    pthread_t t; /* a plain pthread: cmocka's asserts belong to the test's thread */
    if (pthread_create(&t, NULL, hub_lifecycle, NULL) == 0) pthread_join(t, NULL);
    atomic_fetch_add(&lifecycle_reports, 1);
}

static void hog_until_lifecycle(void *p)
{
    (void)p;
    int64_t until = weft_time_monotonic_ns() + 20000000000LL;
    while (!atomic_load(&lifecycle_reports) && weft_time_monotonic_ns() < until) {
    }
}

static void watchdog_report_may_create_and_destroy_hubs(void **state)
{
    (void)state;
    atomic_store(&lifecycle_reports, 0);
    assert_int_equal(weft_watchdog_start(0.02, on_hog_make_hub, NULL), 0);
    weft_co_t *h = weft_test_spawn(hog_until_lifecycle, NULL),
              *other = weft_test_spawn(nothing, NULL);
    weft_test_co_join(h);
    weft_test_co_join(other);
    assert_int_equal(weft_watchdog_stop(), 0);
    assert_int_equal(atomic_load(&lifecycle_reports), 1);
}

/* A coroutine that ends and is freed while the watchdog samples its hub is never read after
 * it was freed (ASan: heap-use-after-free; TSan: a race with the free). The sample hook holds
 * the watchdog between its look at the running coroutine and its copy of the name, until the
 * victim's hub has moved on to the next coroutine, which runs only once the victim is freed
 * (or 0.5 s passed: a hub that waits for the sample to end never gets there). */
extern void (*weft__watchdog_sample_hook)(weft_co_t *co);

static weft_co_t *_Atomic victim_co;
static _Atomic int victim_sampled, victim_freed;

static void hold_sample(weft_co_t *co)
{
    if (co != atomic_load(&victim_co) || atomic_exchange(&victim_sampled, 1)) return;
    int64_t until = weft_time_monotonic_ns() + 500000000LL;
    while (!atomic_load(&victim_freed) && weft_time_monotonic_ns() < until) sched_yield();
}

static void victim_spins(void *p)
{
    (void)p;
    int64_t until = weft_time_monotonic_ns() + 20000000000LL;
    while (!atomic_load(&victim_sampled) && weft_time_monotonic_ns() < until) {
    }
}

static void after_victim(void *p)
{
    (void)p;
    atomic_store(&victim_freed, 1); /* the switch here released the victim's last reference */
}

static void quiet_report(const char *name, double seconds, void *arg)
{
    (void)name;
    (void)seconds;
    (void)arg;
}

static void watchdog_never_reads_a_freed_coroutine(void **state)
{
    (void)state;
    atomic_store(&victim_sampled, 0);
    atomic_store(&victim_freed, 0);
    weft__watchdog_sample_hook = hold_sample;
    weft_co_opts_t o = {.name = "victim of the sample"};
    weft_co_t *v, *w;
    assert_int_equal(weft_co_spawn(victim_spins, NULL, &o, &v), 0);
    assert_int_equal(weft_co_spawn(after_victim, NULL, NULL, &w), 0);
    atomic_store(&victim_co, v);
    weft_co_release(v); /* its own reference is the last: dropped at the switch after its end */
    assert_int_equal(weft_watchdog_start(0.004, quiet_report, NULL), 0);
    weft_test_co_join(w);
    assert_int_equal(weft_watchdog_stop(), 0);
    weft__watchdog_sample_hook = NULL;
    atomic_store(&victim_co, NULL);
    assert_int_equal(atomic_load(&victim_sampled), 1);
}

/* The watchdog after fork: its thread is not in the child, which starts with none (stop says
 * so at once instead of joining a thread that does not exist) and may start its own. */
static void watchdog_in_a_fork_child_starts_anew(void **state)
{
    (void)state;
    assert_int_equal(weft_watchdog_start(0.05, quiet_report, NULL), 0);
    weft_co_t *co = weft_test_spawn(nothing, NULL);
    weft_test_co_join(co);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (weft_watchdog_stop() != WEFT_EALREADY) _exit(10);
        /* (TSan does not let a child of a multi-threaded process start threads.) */
        if (!SANITIZED && (weft_watchdog_start(0.05, quiet_report, NULL) || weft_watchdog_stop()))
            _exit(11);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(weft_watchdog_stop(), 0);
}

/* ---- stacks ------------------------------------------------------------------------------ */

static int deep(int n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    return n ? deep(n - 1) + pad[0] : 0;
}

static void recurse(void *p)
{
    *(int *)p = deep(*(int *)p);
}

/* A stack of the asked size is usable to its depth (here 256 KiB, ~200 KiB deep). */
static void stack_size_option(void **state)
{
    (void)state;
    int n = 190, expect = deep(190);
    weft_co_opts_t o = {.stack_size = 256 * 1024};
    weft_co_t *co;
    assert_int_equal(weft_co_spawn(recurse, &n, &o, &co), 0);
    weft_test_co_join(co);
    assert_int_equal(n, expect); /* ran to the end */
    o = (weft_co_opts_t){.guard = 1};
    assert_int_equal(weft_co_spawn(nothing, NULL, &o, &co), 0);
    weft_test_co_join(co);
    o = (weft_co_opts_t){.guard = -1};
    assert_int_equal(weft_co_spawn(nothing, NULL, &o, &co), 0);
    weft_test_co_join(co);
}

/* weft__stack_count (the soak's measure of stacks) counts a stack from its mapping to its
 * unmapping: one of a size the hub does not keep is unmapped as its coroutine ends, one of the
 * default size stays in the hub's cache until the hub goes. */
static void stack_count_follows_the_mappings(void **state)
{
    (void)state;
    long before = weft__stack_count();
    weft_co_opts_t o = {.stack_size = 128 * 1024};
    weft_co_t *co[3];
    for (int i = 0; i < 3; i++) assert_int_equal(weft_co_spawn(nothing, NULL, &o, &co[i]), 0);
    assert_int_equal(weft__stack_count(), before + 3);
    assert_int_equal(weft_co_join_all(co, 3, 30), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(weft_co_release(co[i]), 0);
    assert_int_equal(weft__stack_count(), before);
    weft_test_co_join(weft_test_spawn(nothing, NULL));
    assert_int_equal(weft__stack_count(), before + 1); /* cached */
    weft__hub_shutdown();
    assert_int_equal(weft__stack_count(), before);
}

/* Default stacks come from one mapping per 64, carved from its top down (stack.c, "Carving"):
 * consecutive default spawns get adjacent stacks, each with its own guard, while a stack of
 * another size or with an explicit guard choice is mapped alone in between; each is unmapped
 * alone, and the hub's end gives back the uncarved rest. */
static void default_stacks_are_carved_from_one_mapping(void **state)
{
    (void)state;
    weft__hub_shutdown(); /* no cached stack, no chunk yet */
    long before = weft__stack_count();
    weft_co_opts_t big = {.stack_size = 128 * 1024}, guarded = {.guard = 1};
    weft_co_t *co[4];
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, &co[0]), 0);
    assert_int_equal(weft_co_spawn(nothing, NULL, &big, &co[1]), 0);
    assert_int_equal(weft_co_spawn(nothing, NULL, &guarded, &co[2]), 0);
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, &co[3]), 0);
    const weft__stack_t *a = &co[0]->stack, *b = &co[3]->stack;
    assert_ptr_equal((char *)b->base + b->total, a->base); /* the next piece down */
    assert_int_equal(a->total, b->total);
    assert_int_equal(a->guard, b->guard);
    assert_int_equal(weft__stack_count(), before + 4);
    assert_int_equal(weft_co_join_all(co, 4, 30), 0); /* every one ran on its stack */
    for (int i = 0; i < 4; i++) assert_int_equal(weft_co_release(co[i]), 0);
    weft__hub_shutdown();
    assert_int_equal(weft__stack_count(), before);
}

/* A chunk that cannot be mapped (address space short of 64 stacks) must not fail a spawn one
 * stack would serve: it falls back to one mapping; only when that fails too is the spawn
 * WEFT_ENOMEM, with nothing left behind. */
static void stack_chunk_mmap_failing_falls_back_to_one_stack(void **state)
{
    (void)state;
    weft__hub_shutdown();
    weft_co_opts_t big = {.stack_size = 128 * 1024};
    weft_co_t *co = NULL, *co2 = NULL;
    assert_int_equal(weft_co_spawn(nothing, NULL, &big, &co), 0); /* the hub, no chunk */
    weft_test_co_join(co);
    long before = weft__stack_count();
    assert_int_equal(weft__failpoint_set(WEFT__SITE_MMAP, 1, false), 0);
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, &co), 0);
    assert_int_equal(weft__failpoint_failed(WEFT__SITE_MMAP), 1);
    assert_int_equal(weft__stack_count(), before + 1);
    /* co keeps its stack (not cached yet), and no chunk was made: the next spawn maps. */
    assert_int_equal(weft__failpoint_set(WEFT__SITE_MMAP, 1, true), 0);
    assert_int_equal(weft_co_spawn(nothing, NULL, NULL, &co2), WEFT_ENOMEM);
    assert_null(co2);
    assert_int_equal(weft__failpoint_failed(WEFT__SITE_MMAP), 2); /* the chunk, then one */
    weft__failpoint_set(WEFT__SITE_MMAP, 0, false);
    assert_int_equal(weft__stack_count(), before + 1);
    weft_test_co_join(co);
    weft__hub_shutdown();
    assert_int_equal(weft__stack_count(), before);
}

static void overflow(void *p)
{
    (void)p;
    deep(1 << 20);
}

/* The guard page turns a stack overflow into a SIGSEGV (in a child process), not silent
 * corruption of whatever lies below. */
static void guard_page_catches_overflow(void **state)
{
    (void)state;
    if (SANITIZED || RUNNING_ON_VALGRIND) skip(); /* they catch it their own way */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        weft_co_opts_t o = {.guard = 1};
        weft_co_t *co;
        if (weft_co_spawn(overflow, NULL, &o, &co)) _exit(2);
        weft_co_join(co, 30);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
}

/* ---- out of memory ------------------------------------------------------------------------ */

static weft_co_key_t oom_key = WEFT_CO_KEY_INIT(NULL);

static void oom_child(void *p)
{
    weft_co_t *co;
    int rc = weft_co_local_set(&oom_key, p);
    if (!rc) rc = weft_co_spawn(nothing, NULL, NULL, &co);
    if (!rc) {
        rc = weft_co_join(co, 30);
        weft_co_release(co);
    }
    *(int *)p = rc;
}

static int oom_body(void *ctx)
{
    (void)ctx;
    int inner = -1;
    weft_co_t *co;
    int rc = weft_co_spawn(oom_child, &inner, NULL, &co);
    if (rc) return rc;
    rc = weft_co_join(co, 30);
    weft_co_release(co);
    if (!rc) rc = inner;
    if (!rc) rc = weft_time_sleep(0.001);
    return rc;
}

/* Every allocation of spawn, the hub, timers and locals may fail: a code, nothing leaked. */
static void out_of_memory(void **state)
{
    (void)state;
    /* The hub and its timer heap live as long as the thread: make them first. */
    weft_co_t *co = weft_test_spawn(nothing, NULL);
    weft_test_co_join(co);
    assert_int_equal(weft_time_sleep(0.001), 0);
    weft_test_oom(oom_body, NULL);
}

/* ---- weft primitives from coroutines ------------------------------------------------------ */

typedef struct shared {
    weft_lock_t lock;
    weft_semaphore_t sem;
    int inside, max_inside, count;
} shared_t;

static void locker(void *p)
{
    shared_t *s = p;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(weft_lock_acquire(&s->lock, 30), 0);
        int c = s->count;
        weft_co_yield(); /* another coroutine runs while we hold the lock: it must wait */
        s->count = c + 1;
        weft_lock_release(&s->lock);
    }
}

static void sem_user(void *p)
{
    shared_t *s = p;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(weft_semaphore_acquire(&s->sem, 30), 0);
        if (++s->inside > s->max_inside) s->max_inside = s->inside;
        weft_co_yield();
        s->inside--;
        weft_semaphore_release(&s->sem, 1);
    }
}

/* test__lock.py / test__semaphore.py: a Lock held across a switch excludes the others (they
 * park, the holder goes on); a Semaphore(2) admits two at a time. */
static void lock_and_semaphore(void **state)
{
    (void)state;
    shared_t s = {0};
    weft_lock_init(&s.lock);
    weft_semaphore_init(&s.sem, 2, false);
    weft_co_t *cs[8];
    for (int i = 0; i < 4; i++) cs[i] = weft_test_spawn(locker, &s);
    for (int i = 4; i < 8; i++) cs[i] = weft_test_spawn(sem_user, &s);
    assert_int_equal(weft_co_join_all(cs, 8, 30), 0);
    for (int i = 0; i < 8; i++) weft_co_release(cs[i]);
    assert_int_equal(s.count, 200);
    assert_int_equal(s.max_inside, 2);
    weft_lock_destroy(&s.lock);
    weft_semaphore_destroy(&s.sem);
}

static void producer(void *p)
{
    for (intptr_t i = 1; i <= 100; i++) assert_int_equal(weft_queue_put(p, (void *)i, 30), 0);
}

static void consumer(void *p)
{
    void **a = p;
    intptr_t sum = 0;
    for (int i = 0; i < 100; i++) {
        void *item;
        assert_int_equal(weft_queue_get(a[0], 30, &item), 0);
        sum += (intptr_t)item;
    }
    *(intptr_t *)a[1] = sum;
}

/* test__queue.py TestQueue (put blocks while full, get while empty) with a maxsize of 1: the
 * two coroutines alternate through the queue. */
static void queue_between_coroutines(void **state)
{
    (void)state;
    weft_queue_t *q;
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 1, &q), 0);
    intptr_t sum = 0;
    void *args[2] = {q, &sum};
    weft_co_t *c = weft_test_spawn(consumer, args), *p = weft_test_spawn(producer, q);
    weft_test_co_join(p);
    weft_test_co_join(c);
    assert_int_equal(sum, 5050);
    assert_int_equal(weft_queue_release(q), 0);
}

static int slow_task(void *arg, void **result)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    *result = arg;
    return 0;
}

static void await_future(void *p)
{
    void **a = p;
    void *v = NULL;
    assert_int_equal(weft_future_result(a[0], 30, &v), 0);
    a[1] = v;
}

static void tick(void *p)
{
    while (!atomic_load((_Atomic int *)p)) weft_time_sleep(0.001);
}

/* test__event.py TestAsyncResult (a coroutine waits on a result set from elsewhere): a
 * thread-pool Future completes on a worker thread; the waiting coroutine wakes through its
 * hub, and the thread's other coroutines ran meanwhile. */
static void future_from_thread_pool(void **state)
{
    (void)state;
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(2, NULL, &ex), 0);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, slow_task, (void *)42, &f), 0);
    void *a[2] = {f, NULL};
    _Atomic int stop = 0;
    weft_co_t *w = weft_test_spawn(await_future, a), *t = weft_test_spawn(tick, &stop);
    weft_test_co_join(w);
    atomic_store(&stop, 1);
    weft_test_co_join(t);
    assert_ptr_equal(a[1], (void *)42);
    weft_future_release(f);
    assert_int_equal(weft_executor_shutdown(ex, true, false, 30), 0);
    assert_int_equal(weft_executor_release(ex), 0);
}

typedef struct every {
    weft_lock_t lock;
    weft_rlock_t rlock;
    weft_condition_t cond;
    weft_barrier_t barrier;
    weft_timer_t timer;
    weft_event_t fired;
    int ready, through;
    _Atomic int ticks;
} every_t;

static void fire(void *p)
{
    weft_event_set(p);
}

static void party(void *p)
{
    every_t *e = p;
    /* RLock: re-entered across a switch; the others park on it meanwhile. */
    assert_int_equal(weft_rlock_acquire(&e->rlock, 30), 0);
    assert_int_equal(weft_rlock_acquire(&e->rlock, 30), 0);
    assert_int_equal(weft_co_yield(), 0);
    assert_int_equal(weft_rlock_release(&e->rlock), 0);
    assert_int_equal(weft_rlock_release(&e->rlock), 0);
    /* Condition: the last to arrive notifies the rest. */
    assert_int_equal(weft_condition_acquire(&e->cond, 30), 0);
    if (++e->ready == 3)
        weft_condition_notify_all(&e->cond);
    else
        while (e->ready < 3) assert_int_equal(weft_condition_wait(&e->cond, 30), 0);
    weft_condition_release(&e->cond);
    /* Barrier of the three. */
    assert_true(weft_barrier_wait(&e->barrier, 30) >= 0);
    e->through++;
}

static void ticker(void *p)
{
    every_t *e = p;
    while (e->through < 3 || !weft_event_is_set(&e->fired)) {
        atomic_fetch_add(&e->ticks, 1);
        weft_time_sleep(0.001);
    }
}

/* Every weft primitive parks only the waiting coroutine: RLock, Condition, Barrier and a
 * Timer's callback (on the timer thread) setting an Event, while a ticker coroutine keeps
 * running on the same thread. */
static void every_primitive_parks_only_the_coroutine(void **state)
{
    (void)state;
    every_t e = {0};
    weft_lock_init(&e.lock);
    weft_rlock_init(&e.rlock);
    weft_condition_init(&e.cond, &e.lock, NULL);
    weft_barrier_init(&e.barrier, 3, NULL, NULL);
    weft_event_init(&e.fired);
    weft_timer_init(&e.timer);
    assert_int_equal(weft_timer_start(&e.timer, 0.02, fire, &e.fired), 0);
    weft_co_t *cs[4] = {weft_test_spawn(ticker, &e), weft_test_spawn(party, &e),
                        weft_test_spawn(party, &e), weft_test_spawn(party, &e)};
    assert_int_equal(weft_event_wait(&e.fired, 30), 0); /* the root parks too */
    assert_int_equal(weft_co_join_all(cs, 4, 30), 0);
    for (int i = 0; i < 4; i++) weft_co_release(cs[i]);
    assert_int_equal(e.through, 3);
    assert_true(atomic_load(&e.ticks) >= 1); /* it ran while the others waited */
    weft_timer_destroy(&e.timer);
    weft_barrier_destroy(&e.barrier);
    weft_condition_destroy(&e.cond);
    weft_rlock_destroy(&e.rlock);
    weft_lock_destroy(&e.lock);
    weft_event_destroy(&e.fired);
}

/* ---- coroutines on several threads -------------------------------------------------------- */

typedef struct relay {
    weft_queue_t *in, *out;
    int n;
} relay_t;

static void relay_co(void *p)
{
    relay_t *r = p;
    for (int i = 0; i < r->n; i++) {
        void *item;
        assert_int_equal(weft_queue_get(r->in, 30, &item), 0);
        assert_int_equal(weft_queue_put(r->out, (void *)((intptr_t)item + 1), 30), 0);
    }
}

static void *relay_thread(void *p)
{
    relay_t *r = p;
    /* Two coroutines share the relay on this thread; the root joins them. */
    relay_t half = *r;
    half.n = r->n / 2;
    weft_co_t *a = weft_test_spawn(relay_co, &half), *b = weft_test_spawn(relay_co, &half);
    weft_test_co_join(a);
    weft_test_co_join(b);
    return NULL; /* the thread's hub goes with it */
}

static void send_numbers(void *p)
{
    void **a = p;
    int n = *(int *)a[1];
    for (intptr_t i = 0; i < n; i++) assert_int_equal(weft_queue_put(a[0], (void *)i, 30), 0);
}

/* Coroutines on two threads exchange through weft Queues: thread A's coroutines send, thread
 * B's coroutines add one and send back; every wake crosses threads through the hubs. */
static void two_threads_through_queues(void **state)
{
    (void)state;
    int n = SANITIZED || RUNNING_ON_VALGRIND ? 200 : 5000;
    weft_queue_t *there, *back;
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 4, &there), 0);
    assert_int_equal(weft_queue_create(WEFT_QUEUE_FIFO, 4, &back), 0);
    relay_t r = {there, back, n};
    pthread_t t = weft_test_start(relay_thread, &r);
    /* Here: one coroutine sends 0..n-1, the root receives and checks. */
    void *sargs[2] = {there, &n};
    weft_co_t *s = weft_test_spawn(send_numbers, sargs);
    intptr_t sum = 0;
    for (int i = 0; i < n; i++) {
        void *item;
        assert_int_equal(weft_queue_get(back, 30, &item), 0);
        sum += (intptr_t)item;
    }
    weft_test_co_join(s);
    weft_test_join(t);
    assert_int_equal(sum, (intptr_t)n * (n - 1) / 2 + n);
    assert_int_equal(weft_queue_release(there), 0);
    assert_int_equal(weft_queue_release(back), 0);
}

static void thread_body(void *p)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_store((_Atomic int *)p, 1);
}

static void join_thread(void *p)
{
    assert_int_equal(weft_thread_join(p, 30), 0);
}

static void *join_coroutine(void *p)
{
    assert_int_equal(weft_co_join(p, 30), 0);
    return NULL;
}

/* A coroutine joins an OS thread (parking only itself), and an OS thread joins a coroutine
 * of another thread's hub. */
static void joins_across_kinds(void **state)
{
    (void)state;
    _Atomic int done = 0, stop = 0;
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(thread_body, &done, NULL, &t), 0);
    weft_co_t *j = weft_test_spawn(join_thread, t), *k = weft_test_spawn(tick, &stop);
    weft_test_co_join(j);
    assert_int_equal(atomic_load(&done), 1);
    pthread_t joiner = weft_test_start(join_coroutine, k);
    assert_int_equal(weft_time_sleep(0.02), 0);
    atomic_store(&stop, 1);
    /* (a pthread_join first would block the thread, and k with it.) k is released only once
     * the joiner is done with it: a joiner thread that started late called weft_co_join on a
     * released handle (the debug preset reported it). */
    assert_int_equal(weft_co_join(k, 60), 0);
    weft_test_join(joiner);
    assert_int_equal(weft_co_release(k), 0);
    weft_thread_release(t);
}

static void cleanup_on_exit(void *p)
{
    _Atomic int *cleaned = p;
    if (weft_time_sleep(60) == WEFT_ECANCELED) atomic_fetch_add(cleaned, 1);
}

static void *spawn_and_leave(void *p)
{
    for (int i = 0; i < 3; i++) assert_int_equal(weft_co_spawn(cleanup_on_exit, p, NULL, NULL), 0);
    assert_int_equal(weft_co_yield(), 0); /* they start and park */
    return NULL;                          /* the thread ends with them parked */
}

/* A thread that ends with coroutines still parked cancels them and runs them to their end:
 * their cleanup runs and nothing leaks. */
static void thread_exit_cancels_its_coroutines(void **state)
{
    (void)state;
    _Atomic int cleaned = 0;
    weft_test_join(weft_test_start(spawn_and_leave, &cleaned));
    assert_int_equal(atomic_load(&cleaned), 3);
}

static void fork_in_coroutine(void *p)
{
    int *status = p;
    pid_t pid = fork();
    if (pid == 0) {
        /* The child goes on in this coroutine; its hub works (spawn, sleep, join). */
        weft_co_t *co;
        double d = 0.001;
        int rc = weft_co_spawn(sleeper, &d, NULL, &co);
        if (!rc) rc = weft_co_join(co, 10);
        _exit(rc ? 1 : 0);
    }
    waitpid(pid, status, 0);
}

/* fork from a coroutine: the child continues in it with a working hub. */
static void fork_from_coroutine(void **state)
{
    (void)state;
    int status = -1;
    weft_co_t *co = weft_test_spawn(fork_in_coroutine, &status);
    weft_test_co_join(co);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- scale ------------------------------------------------------------------------------- */

static void park_on(void *p)
{
    assert_int_equal(weft_event_wait(p, WEFT_FOREVER), 0);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* One million coroutines parked at once, half on an Event, half in weft_time_sleep (with the
 * default vm.max_map_count of 65530); then one set wakes the first half and cancels end the
 * sleepers. Fewer under sanitizers, valgrind and qemu-user. */
static void million_parked(void **state)
{
    (void)state;
    /* (TSan counts each coroutine as a thread, and stops at 8128.) */
    int n = SANITIZED || RUNNING_ON_VALGRIND || WEFT_TEST_EMULATED ? 10000 : 1000000;
#if defined(__SANITIZE_THREAD__)
    n = 4000;
#endif
    weft_event_t e;
    weft_event_init(&e);
    weft_co_t **cs = malloc((size_t)n * sizeof *cs);
    assert_non_null(cs);
    long before = rss_kib();
    /* Half park on the Event, half sleep (a timer each in the hub's heap). */
    for (int i = 0; i < n; i++) cs[i] = weft_test_spawn(i % 2 ? park_on : sleep_until_canceled, &e);
    assert_int_equal(weft_co_yield(), 0); /* all run and park */
    assert_int_equal(weft_test_queue_length(&e.waiters_), n / 2);
    for (int i = 0; i < n; i++) assert_int_equal(weft_co_state(cs[i]), WEFT_CO_BLOCKED);
    long per = (rss_kib() - before) * 1024 / n;
    print_message("%d parked coroutines: %ld bytes each (RSS)\n", n, per);
    weft_event_set(&e);
    for (int i = 0; i < n; i += 2) weft_co_cancel(cs[i]); /* out of the timer heap */
    for (int i = 0; i < n; i++) weft_test_co_join(cs[i]);
    free(cs);
    weft_event_destroy(&e);
}

/* 100,000 spawn/join cycles: stacks and descriptors are reused, nothing grows. */
static void spawn_join_cycles(void **state)
{
    (void)state;
    int n = SANITIZED || RUNNING_ON_VALGRIND ? 5000 : 100000;
    /* Warm up, past the debug build's quarantine (the last 4,096 released handles are kept, and
     * a coroutine's descriptor grew past 256 bytes with what its context records for the dump:
     * filling the ring inside the measured loop took over 1 MiB). */
    for (int i = 0; i < 5000; i++) weft_test_co_join(weft_test_spawn(nothing, NULL));
    long rss = rss_kib(), allocs = weft_test_live_allocs();
    for (int i = 0; i < n; i++) {
        weft_co_t *co = weft_test_spawn(nothing, NULL);
        assert_int_equal(weft_co_join(co, 30), 0);
        weft_co_release(co);
    }
    assert_int_equal(weft_test_live_allocs(), allocs);
    /* Less than 1 MiB of growth (not measurable under ASan, which quarantines, or valgrind). */
    if (!SANITIZED && !RUNNING_ON_VALGRIND) assert_true(rss_kib() - rss < 1024);
}

/* The timeout rules (weft/core.h) for the coroutine layer: sleep with a negative time returns
 * at once (a yield, as time.sleep(0)); a join with -0.5 polls (WEFT_ETIMEDOUT at once), with
 * WEFT_FOREVER blocks until the coroutine ends; a timeout scope of -0.5 has already expired;
 * NaN is WEFT_EINVAL everywhere. */
static void wait_forever_on(void *p)
{
    weft_event_wait(p, WEFT_FOREVER);
}

static int negative_timeouts_in_a_hub(void *p)
{
    (void)p;
    weft_event_t e;
    weft_event_init(&e);
    weft_co_t *co;
    if (weft_co_spawn(wait_forever_on, &e, NULL, &co)) return -7; /* no cmocka asserts off main */
    int rc = weft_time_sleep(-0.5);
    if (rc == 0) rc = weft_co_join(co, -0.5) == WEFT_ETIMEDOUT ? 0 : -1;
    if (rc == 0) rc = weft_co_join_all(&co, 1, -0.5) == WEFT_ETIMEDOUT ? 0 : -2;
    if (rc == 0) rc = weft_co_join(co, NAN) == WEFT_EINVAL ? 0 : -3;
    weft_timeout_t t;
    if (rc == 0 && weft_timeout_begin(&t, -0.5) == 0) {
        rc = weft_event_wait(&e, WEFT_FOREVER) == WEFT_ETIMEDOUT ? 0 : -4;
        if (weft_timeout_end(&t) != WEFT_ETIMEDOUT && rc == 0) rc = -5;
    }
    weft_event_set(&e);
    if (weft_co_join(co, WEFT_FOREVER) != 0 && rc == 0) rc = -6;
    weft_co_release(co);
    weft_event_destroy(&e);
    return rc;
}

static int join_forever(void *p)
{
    return weft_co_join(p, WEFT_FOREVER);
}

typedef struct set_and_run {
    weft_event_t e;
    weft_co_t *co;
} set_and_run_t;

/* Sets the event, then runs this thread's hub (a join from the root) until co ended. */
static void set_and_run(void *p)
{
    set_and_run_t *s = p;
    assert_int_equal(weft_event_set(&s->e), 0);
    assert_int_equal(weft_co_join(s->co, WEFT_FOREVER), 0);
}

static void negative_timeout_polls_and_forever_blocks(void **state)
{
    (void)state;
    assert_int_equal(weft_test_polls(negative_timeouts_in_a_hub, NULL), 0);
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(weft_time_sleep(-0.5), 0); /* a thread without a hub */
    assert_int_equal(weft_time_sleep(-1e300), 0);
    assert_true(weft_time_monotonic_ns() - t0 < 2000000000LL);
    /* WEFT_FOREVER: a thread joins a coroutine of this thread's hub, which ends when set. */
    set_and_run_t s;
    weft_event_init(&s.e);
    s.co = weft_test_spawn(wait_forever_on, &s.e);
    assert_int_equal(weft_co_yield(), 0); /* it runs and parks */
    weft_test_blocks_until(join_forever, s.co, set_and_run, &s, 0);
    weft_co_release(s.co);
    weft_event_destroy(&s.e);
}

/* A coroutine's timed park needs a slot in its hub's timer heap. With no memory left for one,
 * it used to wait in a loop of yields checking the clock (100% CPU for the whole timeout);
 * every coroutine's slot is now reserved when it is spawned, so a park never allocates and
 * waits as any other: the timeout still ends the wait, and the thread sleeps meanwhile. */
typedef struct nomem_wait {
    weft_event_t e;
    int rc;
} nomem_wait_t;

static void timed_wait_co(void *p)
{
    nomem_wait_t *s = p;
    s->rc = weft_event_wait(&s->e, 1.0);
}

static void timed_park_without_memory_does_not_spin(void **state)
{
    (void)state;
    nomem_wait_t s = {.rc = 1};
    assert_int_equal(weft_event_init(&s.e), 0);
    weft_co_t *co = weft_test_spawn(timed_wait_co, &s);
    weft_test_fail_alloc(1, 1); /* every allocation from now on fails */
    double cpu0 = weft_test_cpu_seconds();
    int rc = weft_co_join(co, WEFT_FOREVER);
    double cpu = weft_test_cpu_seconds() - cpu0;
    weft_test_fail_alloc(0, 0);
    assert_int_equal(rc, 0);
    assert_int_equal(s.rc, WEFT_ETIMEDOUT);
    assert_true(cpu < 0.1); /* a spin burns most of the 1 s (the CPUs are shared) */
    weft_co_release(co);
    assert_int_equal(weft_event_destroy(&s.e), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(timed_park_without_memory_does_not_spin),
    WEFT_TEST(negative_timeout_polls_and_forever_blocks),
    WEFT_TEST(spawn_runs_when_caller_blocks),
    WEFT_TEST(join_twice_and_timeout),
    WEFT_TEST(join_timeout),
    WEFT_TEST(join_bad_input),
    WEFT_TEST(joinall),
    WEFT_TEST(yield_round_robin),
    WEFT_TEST(sleep_sort),
    WEFT_TEST(sleep_bad_input_and_thread),
    WEFT_TEST(cancel_blocked),
    WEFT_TEST(cancel_before_start),
    WEFT_TEST(cancel_from_other_thread),
    WEFT_TEST(states_and_names),
    WEFT_TEST(locals),
    WEFT_TEST(group_bounded),
    WEFT_TEST(group_cancel_and_handles),
    WEFT_TEST(group_join_from_a_member_is_edeadlk),
    WEFT_TEST(timeout_scope),
    WEFT_TEST(timeout_scope_ended_out_of_order_leaves_no_deadline),
    WEFT_TEST(deadlock_is_reported),
    WEFT_TEST(condition_wait_for_returns_the_deadlock),
    WEFT_TEST(co_join_of_a_stuck_coroutine_is_edeadlk),
    WEFT_TEST(other_thread_is_no_deadlock),
    WEFT_TEST(watchdog_reports_hog),
    WEFT_TEST(watchdog_report_may_create_and_destroy_hubs),
    WEFT_TEST(watchdog_never_reads_a_freed_coroutine),
    WEFT_TEST(watchdog_in_a_fork_child_starts_anew),
    WEFT_TEST(stack_size_option),
    WEFT_TEST(stack_count_follows_the_mappings),
    WEFT_TEST(default_stacks_are_carved_from_one_mapping),
    WEFT_TEST(stack_chunk_mmap_failing_falls_back_to_one_stack),
    WEFT_TEST(guard_page_catches_overflow),
    WEFT_TEST(out_of_memory),
    WEFT_TEST(lock_and_semaphore),
    WEFT_TEST(queue_between_coroutines),
    WEFT_TEST(future_from_thread_pool),
    WEFT_TEST(every_primitive_parks_only_the_coroutine),
    WEFT_TEST(two_threads_through_queues),
    WEFT_TEST(joins_across_kinds),
    WEFT_TEST(thread_exit_cancels_its_coroutines),
    WEFT_TEST(fork_from_coroutine),
    WEFT_TEST(million_parked),
    WEFT_TEST(spawn_join_cycles),
};

WEFT_TEST_MAIN(cases)
