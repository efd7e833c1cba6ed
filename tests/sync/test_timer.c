/*
 * Timer (weft/timer.h): fires after its interval and not before, cancel decided exactly once,
 * deadline order, thousands of pending timers on one thread, restarts from callbacks, fork.
 *
 * CPython's test_threading.TimerTests has a single case (test_init_immutable_default_args);
 * the rest follow threading.Timer's documented behaviour ("runs function after interval
 * seconds unless cancel() was called first") and the weft/timer.h contract. The leak guard
 * checks after every case that the timer thread has left (it lingers 50 ms when idle).
 */
#include "weft_test.h"

#include "wait/wait_internal.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* TSan, by default, kills the child of a multi-threaded fork once it creates a thread; the
 * fork cases do exactly that, on purpose. */
#if defined(__SANITIZE_THREAD__)
#define TIMER_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TIMER_TEST_TSAN 1
#endif
#endif
#ifdef TIMER_TEST_TSAN
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "die_after_fork=0";
}
#endif

#define MS (1000 * 1000LL)

static int count_tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void count_fn(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

static void stamp_fn(void *arg)
{
    *(int64_t *)arg = weft_time_monotonic_ns();
}

/* A small deterministic shuffle (LCG + Fisher-Yates): the same order on every run. */
static void shuffle(int *v, int n, unsigned seed)
{
    for (int i = 0; i < n; i++) v[i] = i;
    for (int i = n - 1; i > 0; i--) {
        seed = seed * 1103515245u + 12345u;
        int j = (int)((seed >> 8) % (unsigned)(i + 1));
        int tmp = v[i];
        v[i] = v[j];
        v[j] = tmp;
    }
}

/* ---- firing ------------------------------------------------------------------------------ */

/* threading.Timer: "the function runs after interval seconds" — never before. */
static void timer_runs_after_interval(void **state)
{
    (void)state;
    weft_timer_t t = WEFT_TIMER_INIT;
    int64_t fired = 0, start = weft_time_monotonic_ns();
    assert_int_equal(weft_timer_start(&t, 0.1, stamp_fn, &fired), 0);
    assert_int_equal(weft_timer_join(&t, 30), 0);
    assert_true(fired - start >= 100 * MS);
    assert_true(fired - start < 5000 * MS);
    assert_false(weft_timer_pending(&t));
    assert_int_equal(weft_timer_destroy(&t), 0);
}

static void zero_interval_runs_soon(void **state)
{
    (void)state;
    weft_timer_t t;
    assert_int_equal(weft_timer_init(&t), 0);
    _Atomic int n = 0;
    assert_int_equal(weft_timer_start(&t, 0, count_fn, &n), 0);
    assert_int_equal(weft_timer_join(&t, 30), 0);
    assert_int_equal(n, 1);
}

typedef struct spy {
    void *seen[2];
    _Atomic int calls;
    weft_event_t called;
} spy_t;

typedef struct spy_arg {
    spy_t *spy;
    const char *label;
} spy_arg_t;

static void spy_fn(void *arg)
{
    spy_arg_t *a = arg;
    a->spy->seen[atomic_fetch_add(&a->spy->calls, 1)] = (void *)a->label;
    weft_event_set(&a->spy->called);
}

/* CPython TimerTests.test_init_immutable_default_args: each timer calls its function with its
 * own arguments, whatever was given to another timer. */
static void each_timer_keeps_its_own_argument(void **state)
{
    (void)state;
    spy_t spy = {.calls = 0};
    weft_event_init(&spy.called);
    spy_arg_t a1 = {&spy, "first"}, a2 = {&spy, "second"};
    weft_timer_t t1 = WEFT_TIMER_INIT, t2 = WEFT_TIMER_INIT;
    assert_int_equal(weft_timer_start(&t1, 0.01, spy_fn, &a1), 0);
    assert_int_equal(weft_event_wait(&spy.called, 30), 0);
    weft_event_clear(&spy.called);
    assert_int_equal(weft_timer_start(&t2, 0.01, spy_fn, &a2), 0);
    assert_int_equal(weft_event_wait(&spy.called, 30), 0);
    assert_int_equal(weft_timer_join(&t1, 30), 0);
    assert_int_equal(weft_timer_join(&t2, 30), 0);
    assert_int_equal(spy.calls, 2);
    assert_string_equal(spy.seen[0], "first");
    assert_string_equal(spy.seen[1], "second");
}

/* ---- cancel ------------------------------------------------------------------------------ */

/* threading.Timer.cancel: "stop the timer, and cancel the execution of the timer's action" —
 * canceled before it fires, the function never runs and the timer is finished at once. */
static void cancel_before_fire_prevents_call(void **state)
{
    (void)state;
    weft_timer_t t = WEFT_TIMER_INIT;
    _Atomic int n = 0;
    assert_int_equal(weft_timer_start(&t, 60, count_fn, &n), 0);
    assert_true(weft_timer_pending(&t));
    assert_int_equal(weft_timer_destroy(&t), WEFT_EBUSY);
    assert_int_equal(weft_timer_cancel(&t), 0);
    assert_false(weft_timer_pending(&t));
    assert_int_equal(weft_timer_join(&t, 0), 0);
    assert_int_equal(weft_timer_cancel(&t), 0); /* idempotent */
    assert_int_equal(weft_timer_destroy(&t), 0);
    assert_int_equal(n, 0);
}

/* "This will only work if the timer is still in its waiting stage": once it ran, cancel does
 * nothing and says so. */
static void cancel_after_run_returns_ealready(void **state)
{
    (void)state;
    weft_timer_t t = WEFT_TIMER_INIT;
    _Atomic int n = 0;
    assert_int_equal(weft_timer_start(&t, 0, count_fn, &n), 0);
    assert_int_equal(weft_timer_join(&t, 30), 0);
    assert_int_equal(weft_timer_cancel(&t), WEFT_EALREADY);
    assert_int_equal(weft_timer_cancel(&t), WEFT_EALREADY);
    assert_int_equal(n, 1);
}

static void cancel_of_unstarted_timer_is_noop(void **state)
{
    (void)state;
    weft_timer_t t = WEFT_TIMER_INIT;
    assert_int_equal(weft_timer_cancel(&t), 0);
    assert_int_equal(weft_timer_join(&t, 0), 0);
    assert_false(weft_timer_pending(&t));
}

/* A start followed at once by a cancel races the timer thread's firing; whichever wins, the
 * answer and what happened agree: 0 means the function never ran, WEFT_EALREADY that it ran
 * exactly once. */
static void cancel_racing_fire_is_decided_once(void **state)
{
    (void)state;
    int outcomes[2] = {0, 0};
    for (int i = 0; i < 2000; i++) {
        weft_timer_t t = WEFT_TIMER_INIT;
        _Atomic int n = 0;
        assert_int_equal(weft_timer_start(&t, 0, count_fn, &n), 0);
        /* 0 to 100 us before the cancel, so that both sides win some rounds */
        int64_t until = weft_time_monotonic_ns() + (i % 51) * 2000;
        while (weft_time_monotonic_ns() < until) continue;
        int r = weft_timer_cancel(&t);
        assert_int_equal(weft_timer_join(&t, 30), 0);
        if (r == 0) {
            assert_int_equal(n, 0);
            outcomes[0]++;
        } else {
            assert_int_equal(r, WEFT_EALREADY);
            assert_int_equal(n, 1);
            outcomes[1]++;
        }
    }
    print_message("cancel won %d, fire won %d\n", outcomes[0], outcomes[1]);
}

static void join_times_out_while_pending(void **state)
{
    (void)state;
    weft_timer_t t = WEFT_TIMER_INIT;
    _Atomic int n = 0;
    assert_int_equal(weft_timer_start(&t, 60, count_fn, &n), 0);
    assert_int_equal(weft_timer_join(&t, 0), WEFT_ETIMEDOUT);
    int64_t start = weft_time_monotonic_ns();
    assert_int_equal(weft_timer_join(&t, 0.05), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic_ns() - start >= 50 * MS);
    assert_true(weft_timer_pending(&t));
    assert_int_equal(weft_timer_cancel(&t), 0);
    assert_int_equal(n, 0);
}

typedef struct joiner {
    weft_timer_t *t;
    _Atomic int result;
} joiner_t;

static void join_forever(void *arg, int i)
{
    (void)i;
    joiner_t *j = arg;
    atomic_store(&j->result, weft_timer_join(j->t, WEFT_FOREVER));
}

static int queued_joiners(weft_timer_t *t)
{
    int n = 0;
    weft__waitq_lock(&t->joiners_);
    for (weft__waiter_t *w = weft__waitq_first(&t->joiners_); w; w = weft__waitq_next(w)) n++;
    weft__waitq_unlock(&t->joiners_);
    return n;
}

/* Cancels once all three joiners are parked (polls the timer's queue: there is nothing else
 * to wait on). */
static void *cancel_when_joined(void *arg)
{
    while (queued_joiners(arg) < 3) {
        struct timespec ts = {0, 1 * MS};
        nanosleep(&ts, NULL);
    }
    weft_timer_cancel(arg);
    return NULL;
}

/* Joiners blocked on a pending timer are released by its cancel. */
static void cancel_wakes_joiners(void **state)
{
    (void)state;
    weft_timer_t t = WEFT_TIMER_INIT;
    _Atomic int n = 0;
    assert_int_equal(weft_timer_start(&t, 60, count_fn, &n), 0);
    joiner_t j = {.t = &t, .result = 1};
    pthread_t canceler;
    assert_int_equal(pthread_create(&canceler, NULL, cancel_when_joined, &t), 0);
    weft_test_run_threads(3, join_forever, &j);
    pthread_join(canceler, NULL);
    assert_int_equal(j.result, 0);
    assert_int_equal(n, 0);
}

/* ---- order ------------------------------------------------------------------------------- */

enum { ORDER_N = 64 };

typedef struct order_log {
    int order[ORDER_N];
    _Atomic int next;
} order_log_t;

typedef struct order_item {
    order_log_t *log;
    int id;
    weft_timer_t t;
} order_item_t;

static void log_fn(void *arg)
{
    order_item_t *it = arg;
    it->log->order[atomic_fetch_add(&it->log->next, 1)] = it->id;
}

static void gate_fn(void *arg)
{
    weft_event_wait(arg, WEFT_FOREVER);
}

/* Timers started in shuffled order fire in deadline order. A gate timer holds the timer thread
 * until every timer is started, so a slow start cannot let a later deadline fire first. */
static void timers_fire_in_deadline_order(void **state)
{
    (void)state;
    order_log_t log = {.next = 0};
    order_item_t items[ORDER_N];
    int perm[ORDER_N];
    shuffle(perm, ORDER_N, 12345);
    weft_event_t go;
    weft_event_init(&go);
    weft_timer_t gate = WEFT_TIMER_INIT;
    weft_deadline_t now, base;
    assert_int_equal(weft_deadline_after(0, &now), 0);
    assert_int_equal(weft_deadline_after(0.020, &base), 0);
    assert_int_equal(weft_timer_start_at(&gate, now, gate_fn, &go), 0);
    for (int k = 0; k < ORDER_N; k++) {
        int i = perm[k];
        items[i] = (order_item_t){.log = &log, .id = i, .t = WEFT_TIMER_INIT};
        weft_deadline_t d = base;
        assert_int_equal(weft_deadline_add(&d, i * 1e-3), 0);
        assert_int_equal(weft_timer_start_at(&items[i].t, d, log_fn, &items[i]), 0);
    }
    weft_event_set(&go);
    for (int i = 0; i < ORDER_N; i++) assert_int_equal(weft_timer_join(&items[i].t, 30), 0);
    assert_int_equal(weft_timer_join(&gate, 30), 0);
    assert_int_equal(log.next, ORDER_N);
    for (int k = 0; k < ORDER_N; k++) assert_int_equal(log.order[k], k);
}

/* Equal deadlines fire in the order the timers were started. */
static void equal_deadlines_fire_in_start_order(void **state)
{
    (void)state;
    order_log_t log = {.next = 0};
    order_item_t items[ORDER_N];
    int perm[ORDER_N];
    shuffle(perm, ORDER_N, 777);
    weft_deadline_t deadline;
    assert_int_equal(weft_deadline_after(0.020, &deadline), 0);
    for (int k = 0; k < ORDER_N; k++) {
        int i = perm[k]; /* the id records the start position k */
        items[i] = (order_item_t){.log = &log, .id = k, .t = WEFT_TIMER_INIT};
        assert_int_equal(weft_timer_start_at(&items[i].t, deadline, log_fn, &items[i]), 0);
    }
    for (int i = 0; i < ORDER_N; i++) assert_int_equal(weft_timer_join(&items[i].t, 30), 0);
    assert_int_equal(log.next, ORDER_N);
    for (int k = 0; k < ORDER_N; k++) assert_int_equal(log.order[k], k);
}

/* ---- many timers ------------------------------------------------------------------------- */

enum { MANY = 10000 };

typedef struct many {
    _Atomic int fired;
    weft_event_t all_fired;
} many_t;

typedef struct many_item {
    weft_timer_t t;
    many_t *many;
    _Atomic int hits;
} many_item_t;

static void many_fn(void *arg)
{
    many_item_t *it = arg;
    atomic_fetch_add(&it->hits, 1);
    if (atomic_fetch_add(&it->many->fired, 1) + 1 == MANY) weft_event_set(&it->many->all_fired);
}

/* The requirement: 10,000 pending timers do not create 10,000 threads (Python's
 * Timer would), and every one of them fires once. */
static void ten_thousand_pending_timers_share_one_thread(void **state)
{
    (void)state;
    int base = count_tasks();
    many_t many = {.fired = 0};
    weft_event_init(&many.all_fired);
    many_item_t *items = calloc(MANY, sizeof *items);
    assert_non_null(items);
    for (int i = 0; i < MANY; i++) {
        items[i].many = &many;
        assert_int_equal(weft_timer_start(&items[i].t, 0.5 + (i % 100) * 0.001, many_fn, &items[i]),
                         0);
    }
    int pending = 0;
    for (int i = 0; i < MANY; i++) pending += weft_timer_pending(&items[i].t);
    int tasks = count_tasks();
    print_message("threads: %d before, %d with %d timers pending\n", base, tasks, pending);
    assert_true(tasks <= base + 2);
    assert_int_equal(weft_event_wait(&many.all_fired, 60), 0);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(weft_timer_join(&items[i].t, 30), 0);
        assert_int_equal(items[i].hits, 1);
    }
    assert_true(count_tasks() <= base + 2);
    free(items);
}

static void cancel_ten_thousand_pending_timers(void **state)
{
    (void)state;
    many_t many = {.fired = 0};
    weft_event_init(&many.all_fired);
    many_item_t *items = calloc(MANY, sizeof *items);
    int *perm = calloc(MANY, sizeof *perm);
    assert_non_null(items);
    assert_non_null(perm);
    for (int i = 0; i < MANY; i++) {
        items[i].many = &many;
        assert_int_equal(weft_timer_start(&items[i].t, 60 + (i % 1000) * 0.01, many_fn, &items[i]),
                         0);
    }
    shuffle(perm, MANY, 4242);
    for (int k = 0; k < MANY; k++) assert_int_equal(weft_timer_cancel(&items[perm[k]].t), 0);
    for (int i = 0; i < MANY; i++) {
        assert_false(weft_timer_pending(&items[i].t));
        assert_int_equal(weft_timer_join(&items[i].t, 0), 0);
    }
    assert_int_equal(many.fired, 0);
    free(items);
    free(perm);
}

typedef struct churn {
    _Atomic int failures;
    _Atomic int ran;
    _Atomic int expected;
} churn_t;

/* One of several threads starting and canceling timers of its own at once. */
static void churn_thread(void *arg, int id)
{
    churn_t *c = arg;
    enum { N = 300 };
    weft_timer_t t[N];
    for (int i = 0; i < N; i++) {
        weft_timer_init(&t[i]);
        if (weft_timer_start(&t[i], ((i + id) % 4) * 0.0005, count_fn, &c->ran) != 0)
            atomic_fetch_add(&c->failures, 1);
    }
    for (int i = 0; i < N; i += 2) {
        int r = weft_timer_cancel(&t[i]);
        if (r == WEFT_EALREADY)
            atomic_fetch_add(&c->expected, 1);
        else if (r != 0)
            atomic_fetch_add(&c->failures, 1);
    }
    for (int i = 0; i < N; i++) {
        if (weft_timer_join(&t[i], 30) != 0) atomic_fetch_add(&c->failures, 1);
        if (i % 2) atomic_fetch_add(&c->expected, 1);
    }
}

static void concurrent_starts_and_cancels_agree(void **state)
{
    (void)state;
    churn_t c = {0, 0, 0};
    weft_test_run_threads(4, churn_thread, &c);
    assert_int_equal(c.failures, 0);
    assert_int_equal(c.ran, c.expected);
}

/* ---- callbacks that use timers ----------------------------------------------------------- */

typedef struct chain {
    weft_timer_t first, second;
    _Atomic int second_runs;
    int start_rc;
} chain_t;

static void chain_first(void *arg)
{
    chain_t *c = arg;
    c->start_rc = weft_timer_start(&c->second, 0.01, count_fn, &c->second_runs);
}

static void callback_starts_another_timer(void **state)
{
    (void)state;
    chain_t c = {.first = WEFT_TIMER_INIT, .second = WEFT_TIMER_INIT, .second_runs = 0};
    assert_int_equal(weft_timer_start(&c.first, 0, chain_first, &c), 0);
    assert_int_equal(weft_timer_join(&c.first, 30), 0);
    assert_int_equal(c.start_rc, 0);
    assert_int_equal(weft_timer_join(&c.second, 30), 0);
    assert_int_equal(c.second_runs, 1);
}

typedef struct periodic {
    weft_timer_t t;
    int runs, limit;
    int restart_rc;
} periodic_t;

static void periodic_fn(void *arg)
{
    periodic_t *p = arg;
    if (++p->runs < p->limit) {
        int r = weft_timer_start(&p->t, 0.001, periodic_fn, p);
        if (r) p->restart_rc = r;
    }
}

/* A callback may restart its own timer (a periodic timer); join waits for the last run. */
static void callback_restarts_its_own_timer(void **state)
{
    (void)state;
    periodic_t p = {.t = WEFT_TIMER_INIT, .runs = 0, .limit = 5, .restart_rc = 0};
    assert_int_equal(weft_timer_start(&p.t, 0, periodic_fn, &p), 0);
    assert_int_equal(weft_timer_join(&p.t, 30), 0);
    assert_int_equal(p.restart_rc, 0);
    assert_int_equal(p.runs, 5);
    assert_false(weft_timer_pending(&p.t));
}

typedef struct held {
    weft_timer_t t;
    weft_event_t entered, go;
    _Atomic int runs;
    bool restart_first;
    int restart_rc;
} held_t;

/* Runs while the test holds it: restarts its timer before or after waiting for `go`. */
static void held_fn(void *arg)
{
    held_t *h = arg;
    atomic_fetch_add(&h->runs, 1);
    if (h->restart_first) h->restart_rc = weft_timer_start(&h->t, 0, held_fn, h);
    weft_event_set(&h->entered);
    weft_event_wait(&h->go, WEFT_FOREVER);
    if (!h->restart_first) h->restart_rc = weft_timer_start(&h->t, 0, held_fn, h);
}

static void held_init(held_t *h, bool restart_first)
{
    weft_timer_init(&h->t);
    weft_event_init(&h->entered);
    weft_event_init(&h->go);
    h->runs = 0;
    h->restart_first = restart_first;
    h->restart_rc = 1;
}

/* A cancel while the callback runs says WEFT_EALREADY and stops a periodic timer: the
 * callback's later restart fails with WEFT_ECANCELED. */
static void cancel_while_running_refuses_restart(void **state)
{
    (void)state;
    held_t h;
    held_init(&h, false);
    assert_int_equal(weft_timer_start(&h.t, 0, held_fn, &h), 0);
    assert_int_equal(weft_event_wait(&h.entered, 30), 0);
    assert_false(weft_timer_pending(&h.t));
    assert_int_equal(weft_timer_start(&h.t, 0, held_fn, &h), WEFT_EBUSY); /* not its callback */
    assert_int_equal(weft_timer_join(&h.t, 0), WEFT_ETIMEDOUT);           /* still running */
    assert_int_equal(weft_timer_cancel(&h.t), WEFT_EALREADY);
    weft_event_set(&h.go);
    assert_int_equal(weft_timer_join(&h.t, 30), 0);
    assert_int_equal(h.restart_rc, WEFT_ECANCELED);
    assert_int_equal(h.runs, 1);
    assert_int_equal(weft_timer_cancel(&h.t), WEFT_EALREADY);
}

/* The same, when the callback restarted itself before the cancel: the restart is dropped. */
static void cancel_while_running_drops_restart(void **state)
{
    (void)state;
    held_t h;
    held_init(&h, true);
    assert_int_equal(weft_timer_start(&h.t, 0, held_fn, &h), 0);
    assert_int_equal(weft_event_wait(&h.entered, 30), 0);
    assert_int_equal(h.restart_rc, 0);
    assert_true(weft_timer_pending(&h.t));
    assert_int_equal(weft_timer_start(&h.t, 0, held_fn, &h), WEFT_EBUSY);
    assert_int_equal(weft_timer_cancel(&h.t), WEFT_EALREADY);
    assert_false(weft_timer_pending(&h.t));
    weft_event_set(&h.go);
    assert_int_equal(weft_timer_join(&h.t, 30), 0);
    assert_int_equal(h.runs, 1);
}

typedef struct self_join {
    weft_timer_t t;
    int poll_rc, wait_rc, cancel_rc;
} self_join_t;

static void self_join_fn(void *arg)
{
    self_join_t *s = arg;
    s->poll_rc = weft_timer_join(&s->t, 0);
    s->wait_rc = weft_timer_join(&s->t, WEFT_FOREVER);
    s->cancel_rc = weft_timer_cancel(&s->t);
}

/* Joining its own timer from the callback could never return: WEFT_EDEADLK at once. */
static void join_from_own_callback_is_deadlock(void **state)
{
    (void)state;
    self_join_t s = {.t = WEFT_TIMER_INIT};
    assert_int_equal(weft_timer_start(&s.t, 0, self_join_fn, &s), 0);
    assert_int_equal(weft_timer_join(&s.t, 30), 0);
    assert_int_equal(s.poll_rc, WEFT_EDEADLK);
    assert_int_equal(s.wait_rc, WEFT_EDEADLK);
    assert_int_equal(s.cancel_rc, WEFT_EALREADY);
}

/* ---- reuse and arguments ----------------------------------------------------------------- */

/* Unlike a Python Timer (a thread, started once), a finished weft timer can start again. */
static void restart_after_finished(void **state)
{
    (void)state;
    weft_timer_t t = WEFT_TIMER_INIT;
    _Atomic int n = 0;
    assert_int_equal(weft_timer_start(&t, 0.01, count_fn, &n), 0);
    assert_int_equal(weft_timer_join(&t, 30), 0);
    assert_int_equal(weft_timer_start(&t, 0.01, count_fn, &n), 0);
    assert_int_equal(weft_timer_join(&t, 30), 0);
    assert_int_equal(n, 2);
    assert_int_equal(weft_timer_start(&t, 60, count_fn, &n), 0);
    assert_int_equal(weft_timer_cancel(&t), 0);
    assert_int_equal(weft_timer_start(&t, 0, count_fn, &n), 0);
    assert_int_equal(weft_timer_join(&t, 30), 0);
    assert_int_equal(n, 3);
}

static void start_of_pending_timer_is_busy(void **state)
{
    (void)state;
    weft_timer_t t = WEFT_TIMER_INIT;
    _Atomic int n = 0;
    assert_int_equal(weft_timer_start(&t, 60, count_fn, &n), 0);
    weft_deadline_t now;
    assert_int_equal(weft_deadline_after(0, &now), 0);
    assert_int_equal(weft_timer_start(&t, 0, count_fn, &n), WEFT_EBUSY);
    assert_int_equal(weft_timer_start_at(&t, now, count_fn, &n), WEFT_EBUSY);
    assert_int_equal(weft_timer_cancel(&t), 0);
    assert_int_equal(n, 0);
}

static void infinite_interval_waits_for_cancel(void **state)
{
    (void)state;
    weft_timer_t t1 = WEFT_TIMER_INIT, t2 = WEFT_TIMER_INIT;
    _Atomic int n = 0;
    assert_int_equal(weft_timer_start(&t1, INFINITY, count_fn, &n), 0);
    weft_deadline_t never;
    assert_int_equal(weft_deadline_after(WEFT_FOREVER, &never), 0);
    assert_int_equal(weft_timer_start_at(&t2, never, count_fn, &n), 0);
    assert_int_equal(weft_timer_join(&t1, 0.02), WEFT_ETIMEDOUT);
    assert_true(weft_timer_pending(&t1));
    assert_true(weft_timer_pending(&t2));
    assert_int_equal(weft_timer_cancel(&t1), 0);
    assert_int_equal(weft_timer_cancel(&t2), 0);
    assert_int_equal(n, 0);
}

static void invalid_arguments(void **state)
{
    (void)state;
    weft_timer_t t = WEFT_TIMER_INIT;
    _Atomic int n = 0;
    assert_int_equal(weft_timer_init(NULL), WEFT_EINVAL);
    assert_int_equal(weft_timer_destroy(NULL), WEFT_EINVAL);
    assert_int_equal(weft_timer_start(NULL, 1, count_fn, &n), WEFT_EINVAL);
    assert_int_equal(weft_timer_start(&t, 1, NULL, &n), WEFT_EINVAL);
    assert_int_equal(weft_timer_start(&t, NAN, count_fn, &n), WEFT_EINVAL);
    weft_deadline_t now;
    assert_int_equal(weft_deadline_after(0, &now), 0);
    assert_int_equal(weft_timer_start_at(NULL, now, count_fn, &n), WEFT_EINVAL);
    assert_int_equal(weft_timer_start_at(&t, now, NULL, &n), WEFT_EINVAL);
    assert_int_equal(weft_timer_cancel(NULL), WEFT_EINVAL);
    assert_int_equal(weft_timer_join(NULL, 1), WEFT_EINVAL);
    assert_int_equal(weft_timer_join(&t, NAN), WEFT_EINVAL);
    assert_false(weft_timer_pending(NULL));
    assert_false(weft_timer_pending(&t)); /* none of the failed starts left it pending */
    assert_int_equal(weft_timer_destroy(&t), 0);
    assert_int_equal(n, 0);
}

/* ---- the timer thread -------------------------------------------------------------------- */

static void wait_for_tasks(int want)
{
    for (int i = 0; i < 5000 && count_tasks() != want; i++) {
        struct timespec ts = {0, 1 * MS}; /* polls the thread's exit; nothing to wait on */
        nanosleep(&ts, NULL);
    }
    assert_int_equal(count_tasks(), want);
}

/* The timer thread leaves once idle (after its short linger) and a later start brings it
 * back. The leak guard checks the same at the end of every case. */
static void timer_thread_leaves_when_idle_and_returns(void **state)
{
    (void)state;
    int base = count_tasks();
    weft_timer_t t = WEFT_TIMER_INIT;
    _Atomic int n = 0;
    assert_int_equal(weft_timer_start(&t, 0, count_fn, &n), 0);
    assert_int_equal(weft_timer_join(&t, 30), 0);
    wait_for_tasks(base);
    assert_int_equal(weft_timer_start(&t, 0.01, count_fn, &n), 0);
    assert_true(count_tasks() <= base + 1);
    assert_int_equal(weft_timer_join(&t, 30), 0);
    assert_int_equal(n, 2);
}

#ifdef __GLIBC__
/* pthread_create fails (a default stack larger than the address space): start reports it and
 * leaves nothing pending; the next start, with creation possible again, works. */
static void thread_creation_failure_leaves_timer_idle(void **state)
{
    (void)state;
    pthread_attr_t saved, huge;
    assert_int_equal(pthread_getattr_default_np(&saved), 0);
    assert_int_equal(pthread_attr_init(&huge), 0);
    assert_int_equal(pthread_attr_setstacksize(&huge, (size_t)1 << 62), 0);
    weft_timer_t t = WEFT_TIMER_INIT;
    _Atomic int n = 0;
    assert_int_equal(pthread_setattr_default_np(&huge), 0);
    int r = weft_timer_start(&t, 0, count_fn, &n);
    assert_int_equal(pthread_setattr_default_np(&saved), 0);
    pthread_attr_destroy(&huge);
    pthread_attr_destroy(&saved);
    assert_true(r == WEFT_EAGAIN || r == WEFT_ENOMEM);
    assert_false(weft_timer_pending(&t));
    assert_int_equal(weft_timer_join(&t, 0), 0);
    assert_int_equal(weft_timer_cancel(&t), 0);
    assert_int_equal(weft_timer_start(&t, 0, count_fn, &n), 0);
    assert_int_equal(weft_timer_join(&t, 30), 0);
    assert_int_equal(n, 1);
}
#endif

/* ---- fork -------------------------------------------------------------------------------- */

static int wait_child(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

typedef struct running {
    weft_event_t entered, go;
} running_t;

static void running_fn(void *arg)
{
    running_t *r = arg;
    weft_event_set(&r->entered);
    weft_event_wait(&r->go, WEFT_FOREVER);
}

/* Forked while a callback runs and another timer is pending: in the child the pending timer
 * reads as canceled, the running one as finished, and a new timer runs (on a new timer
 * thread). Checks in the child report through its exit status. */
static void child_after_fork_runs_timers(void **state)
{
    (void)state;
    running_t run;
    weft_event_init(&run.entered);
    weft_event_init(&run.go);
    weft_timer_t busy = WEFT_TIMER_INIT, later = WEFT_TIMER_INIT;
    _Atomic int n = 0;
    assert_int_equal(weft_timer_start(&busy, 0, running_fn, &run), 0);
    assert_int_equal(weft_timer_start(&later, 60, count_fn, &n), 0);
    assert_int_equal(weft_event_wait(&run.entered, 30), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int code = 0;
        weft_timer_t t = WEFT_TIMER_INIT;
        if (weft_timer_pending(&later))
            code = 10;
        else if (weft_timer_cancel(&later) != 0)
            code = 11;
        else if (weft_timer_join(&later, 0) != 0)
            code = 12;
        else if (weft_timer_join(&busy, 0) != 0)
            code = 13;
        else if (weft_timer_cancel(&busy) != WEFT_EALREADY)
            code = 14;
        else if (weft_timer_start(&t, 0.01, count_fn, &n) != 0)
            code = 15;
        else if (weft_timer_join(&t, 30) != 0)
            code = 16;
        else if (n != 1)
            code = 17;
        else if (weft_timer_start(&later, 0, count_fn, &n) != 0 ||
                 weft_timer_join(&later, 30) != 0 || n != 2)
            code = 18;
        _exit(code);
    }
    assert_int_equal(wait_child(pid), 0);
    /* The parent is untouched: `later` still pending, `busy` still running. */
    assert_true(weft_timer_pending(&later));
    assert_int_equal(weft_timer_cancel(&later), 0);
    assert_int_equal(weft_timer_join(&busy, 0), WEFT_ETIMEDOUT);
    weft_event_set(&run.go);
    assert_int_equal(weft_timer_join(&busy, 30), 0);
    assert_int_equal(n, 0);
}

typedef struct forker {
    weft_timer_t self, pending, next;
    pid_t pid;
} forker_t;

static void exit42_fn(void *arg)
{
    (void)arg;
    _exit(42);
}

/* In the child, this thread (the timer thread) is the only one: it keeps serving timers. */
static void forker_fn(void *arg)
{
    forker_t *f = arg;
    pid_t pid = fork();
    if (pid != 0) {
        f->pid = pid;
        return;
    }
    if (weft_timer_pending(&f->pending)) _exit(10);
    if (weft_timer_join(&f->self, 0) != WEFT_EDEADLK) _exit(11);
    if (weft_timer_start(&f->next, 0, exit42_fn, NULL) != 0) _exit(12);
    /* back to the timer thread's loop, which runs `next`: _exit(42) */
}

/* fork from inside a callback: the child's timer thread carries on and runs the child's
 * timers (Python: the forking thread survives as the child's only thread). */
static void fork_from_callback_keeps_timer_thread(void **state)
{
    (void)state;
    forker_t f = {
        .self = WEFT_TIMER_INIT, .pending = WEFT_TIMER_INIT, .next = WEFT_TIMER_INIT, .pid = -1};
    _Atomic int n = 0;
    assert_int_equal(weft_timer_start(&f.pending, 60, count_fn, &n), 0);
    assert_int_equal(weft_timer_start(&f.self, 0, forker_fn, &f), 0);
    assert_int_equal(weft_timer_join(&f.self, 30), 0);
    assert_true(f.pid > 0);
    assert_int_equal(wait_child(f.pid), 42);
    assert_int_equal(weft_timer_cancel(&f.pending), 0);
    assert_int_equal(n, 0);
}

/* The timeout rules (weft/core.h) for timers: a negative interval is a deadline already
 * passed, so the timer fires at once (threading.Timer(-0.5, fn) runs fn at once); a join of a
 * pending timer with -0.5 polls (WEFT_ETIMEDOUT at once), with WEFT_FOREVER blocks until it
 * ran; NaN is WEFT_EINVAL. */
typedef struct timed_timer {
    weft_timer_t t;
    _Atomic int n;
} timed_timer_t;

static void timed_timer_fn(void *p)
{
    atomic_fetch_add(&((timed_timer_t *)p)->n, 1);
}

static int timed_timer_join_negative(void *p)
{
    return weft_timer_join(&((timed_timer_t *)p)->t, -0.5);
}

static int timed_timer_join_forever(void *p)
{
    return weft_timer_join(&((timed_timer_t *)p)->t, WEFT_FOREVER);
}

static void timed_timer_cancel(void *p)
{
    assert_int_equal(weft_timer_cancel(&((timed_timer_t *)p)->t), 0);
}

static void timer_negative_interval_fires_at_once(void **state)
{
    (void)state;
    timed_timer_t x = {.t = WEFT_TIMER_INIT};
    int64_t t0 = weft_time_monotonic_ns();
    assert_int_equal(weft_timer_start(&x.t, -0.5, timed_timer_fn, &x), 0);
    assert_int_equal(weft_timer_join(&x.t, 10), 0);
    assert_true(weft_time_monotonic_ns() - t0 < 2000000000LL);
    assert_int_equal(atomic_load(&x.n), 1);
    assert_int_equal(weft_timer_start(&x.t, NAN, timed_timer_fn, &x), WEFT_EINVAL);
    /* A pending timer (WEFT_FOREVER: it never comes): join polls with -0.5, blocks with
     * WEFT_FOREVER until the timer is finished (here: canceled). */
    assert_int_equal(weft_timer_start(&x.t, WEFT_FOREVER, timed_timer_fn, &x), 0);
    assert_true(weft_timer_pending(&x.t));
    assert_int_equal(weft_test_polls(timed_timer_join_negative, &x), WEFT_ETIMEDOUT);
    weft_test_blocks_until(timed_timer_join_forever, &x, timed_timer_cancel, &x, 0);
    assert_int_equal(atomic_load(&x.n), 1);
    assert_int_equal(weft_timer_destroy(&x.t), 0);
}

/* ---- callbacks for common calls (no wrapper of the test's own) --------------------------- */

typedef struct adapter_case {
    weft_event_t event;
    int rc;
} adapter_case_t;

static void co_waits_for_event(void *arg)
{
    adapter_case_t *k = arg;
    k->rc = weft_event_wait(&k->event, 30);
}

/* The case: a Timer sets an Event that a coroutine waits on, through weft_event_set_cb.
 * The timer starts once the coroutine is parked on the event, so it is the timer that wakes it. */
static void timer_sets_event_a_coroutine_waits_on(void **state)
{
    (void)state;
    adapter_case_t k = {.rc = -1};
    assert_int_equal(weft_event_init(&k.event), 0);
    weft_timer_t t = WEFT_TIMER_INIT;
    weft_co_t *co = weft_test_spawn(co_waits_for_event, &k);
    while (weft_test_queue_length(&k.event.waiters_) < 1) weft_co_yield(); /* the coroutine runs */
    assert_int_equal(weft_timer_start(&t, 0.01, weft_event_set_cb, &k.event), 0);
    weft_test_co_join(co);
    assert_int_equal(k.rc, 0);
    assert_true(weft_event_is_set(&k.event));
    assert_int_equal(weft_timer_join(&t, 30), 0);
    assert_int_equal(weft_timer_destroy(&t), 0);
    assert_int_equal(weft_event_destroy(&k.event), 0);
}

static void timer_releases_a_semaphore(void **state)
{
    (void)state;
    weft_semaphore_t s = WEFT_SEMAPHORE_INIT(0);
    weft_timer_t t = WEFT_TIMER_INIT;
    assert_int_equal(weft_timer_start(&t, 0.01, weft_semaphore_release_cb, &s), 0);
    assert_int_equal(weft_semaphore_acquire(&s, 30), 0); /* one unit, from the timer */
    assert_int_equal(weft_timer_join(&t, 30), 0);
    assert_int_equal(weft_semaphore_value(&s), 0);
    /* A bounded one already full: the adapter drops WEFT_EOVERFLOW, the value stays. */
    weft_semaphore_t full = WEFT_BOUNDED_SEMAPHORE_INIT(1);
    assert_int_equal(weft_timer_start(&t, 0, weft_semaphore_release_cb, &full), 0);
    assert_int_equal(weft_timer_join(&t, 30), 0);
    assert_int_equal(weft_semaphore_value(&full), 1);
    assert_int_equal(weft_semaphore_destroy(&full), 0);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
}

static void co_sleeps(void *arg)
{
    *(int *)arg = weft_time_sleep(30);
}

static void timer_cancels_a_coroutine(void **state)
{
    (void)state;
    int rc = -1;
    weft_timer_t t = WEFT_TIMER_INIT;
    weft_co_t *co = weft_test_spawn(co_sleeps, &rc);
    /* It sleeps before the timer starts: a coroutine canceled before its first run never runs
     * its function (under qemu-user the 10 ms could pass before it ran). */
    assert_int_equal(weft_co_yield(), 0);
    assert_int_equal(weft_timer_start(&t, 0.01, weft_co_cancel_cb, co), 0);
    assert_int_equal(weft_co_join(co, 30), 0);
    assert_int_equal(weft_timer_join(&t, 30), 0); /* before co's handle goes */
    weft_test_co_join(co);
    assert_int_equal(rc, WEFT_ECANCELED);
}

static void timer_cancels_a_group(void **state)
{
    (void)state;
    int rc[3] = {-1, -1, -1};
    weft_group_t *g;
    weft_timer_t t = WEFT_TIMER_INIT;
    assert_int_equal(weft_group_create(0, &g), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_group_spawn(g, co_sleeps, &rc[i], WEFT_FOREVER, NULL), 0);
    assert_int_equal(weft_co_yield(), 0); /* all three sleep before the timer starts (above) */
    assert_int_equal(weft_timer_start(&t, 0.01, weft_group_cancel_cb, g), 0);
    assert_int_equal(weft_group_join(g, 30), 0);
    assert_int_equal(weft_timer_join(&t, 30), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(rc[i], WEFT_ECANCELED);
    assert_int_equal(weft_group_release(g), 0);
}

/* The adapters drop the call's result, so a NULL object must do nothing (no crash). */
static void callback_adapters_ignore_null(void **state)
{
    (void)state;
    weft_event_set_cb(NULL);
    weft_semaphore_release_cb(NULL);
    weft_co_cancel_cb(NULL);
    weft_group_cancel_cb(NULL);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(timer_negative_interval_fires_at_once),
    WEFT_TEST(timer_runs_after_interval),
    WEFT_TEST(zero_interval_runs_soon),
    WEFT_TEST(each_timer_keeps_its_own_argument),
    WEFT_TEST(cancel_before_fire_prevents_call),
    WEFT_TEST(cancel_after_run_returns_ealready),
    WEFT_TEST(cancel_of_unstarted_timer_is_noop),
    WEFT_TEST(cancel_racing_fire_is_decided_once),
    WEFT_TEST(join_times_out_while_pending),
    WEFT_TEST(cancel_wakes_joiners),
    WEFT_TEST(timers_fire_in_deadline_order),
    WEFT_TEST(equal_deadlines_fire_in_start_order),
    WEFT_TEST(ten_thousand_pending_timers_share_one_thread),
    WEFT_TEST(cancel_ten_thousand_pending_timers),
    WEFT_TEST(concurrent_starts_and_cancels_agree),
    WEFT_TEST(callback_starts_another_timer),
    WEFT_TEST(callback_restarts_its_own_timer),
    WEFT_TEST(cancel_while_running_refuses_restart),
    WEFT_TEST(cancel_while_running_drops_restart),
    WEFT_TEST(join_from_own_callback_is_deadlock),
    WEFT_TEST(restart_after_finished),
    WEFT_TEST(start_of_pending_timer_is_busy),
    WEFT_TEST(infinite_interval_waits_for_cancel),
    WEFT_TEST(invalid_arguments),
    WEFT_TEST(timer_thread_leaves_when_idle_and_returns),
#ifdef __GLIBC__
    WEFT_TEST(thread_creation_failure_leaves_timer_idle),
#endif
    WEFT_TEST(child_after_fork_runs_timers),
    WEFT_TEST(fork_from_callback_keeps_timer_thread),
    WEFT_TEST(timer_sets_event_a_coroutine_waits_on),
    WEFT_TEST(timer_releases_a_semaphore),
    WEFT_TEST(timer_cancels_a_coroutine),
    WEFT_TEST(timer_cancels_a_group),
    WEFT_TEST(callback_adapters_ignore_null),
};
WEFT_TEST_MAIN(cases)
