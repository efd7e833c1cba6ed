/* Process-shared Lock, RLock, Semaphore, Event, Condition and Value, used by several
 * processes at once, and the robust Lock: an owner killed at any point. Each case names the
 * CPython behaviour it mirrors (Lib/test/_test_multiprocessing.py: _TestLock, _TestSemaphore,
 * _TestCondition, _TestEvent, _TestValue), or says it is weft's own. */
#include "weft_test.h"

#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct shared {
    weft_lock_t lock;
    weft_rlock_t rlock;
    weft_semaphore_t sem;
    weft_event_t event, ready;
    weft_condition_t cond;
    weft_value_t value, woken;
    long counter;
    long a, b; /* a pair the lock keeps equal */
} shared_t;

static shared_t *sh;

static void setup_shared(void)
{
    assert_int_equal(weft_shm_alloc(sizeof *sh, (void **)&sh), 0);
    assert_int_equal(weft_lock_init_shared(&sh->lock), 0);
    assert_int_equal(weft_rlock_init_shared(&sh->rlock), 0);
    assert_int_equal(weft_semaphore_init_shared(&sh->sem, 0, false), 0);
    assert_int_equal(weft_event_init_shared(&sh->event), 0);
    assert_int_equal(weft_event_init_shared(&sh->ready), 0);
    assert_int_equal(weft_condition_init_shared(&sh->cond, &sh->lock, NULL), 0);
    assert_int_equal(weft_value_init(&sh->value, 0), 0);
    assert_int_equal(weft_value_init(&sh->woken, 0), 0);
}

static void teardown_shared(void)
{
    assert_int_equal(weft_condition_destroy(&sh->cond), 0);
    assert_int_equal(weft_lock_destroy(&sh->lock), 0);
    assert_int_equal(weft_rlock_destroy(&sh->rlock), 0);
    assert_int_equal(weft_semaphore_destroy(&sh->sem), 0);
    assert_int_equal(weft_event_destroy(&sh->event), 0);
    assert_int_equal(weft_event_destroy(&sh->ready), 0);
    assert_int_equal(weft_shm_free(sh, sizeof *sh), 0);
}

/* ---- Lock ---------------------------------------------------------------------------------- */

enum { ADDERS = 4 };

static int add_under_lock(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++) {
        if (weft_lock_acquire(&sh->lock, 30)) return 1;
        sh->counter++; /* a plain read-modify-write: only the lock makes it exact */
        if (weft_lock_release(&sh->lock)) return 2;
        weft_value_add(&sh->value, 1, NULL);
    }
    return 0;
}

/* _TestLock with processes / _TestValue (Value with its lock): processes incrementing one
 * counter under a shared Lock, and a Value with atomic add, lose no increment. */
static void shared_lock_counter_across_processes(void **state)
{
    (void)state;
    setup_shared();
    long n = SANITIZED ? 2000 : 20000;
    weft_process_t *p[ADDERS];
    for (int i = 0; i < ADDERS; i++) p[i] = weft_test_process_start(add_under_lock, (void *)n);
    for (int i = 0; i < ADDERS; i++) assert_int_equal(weft_test_process_finish(p[i]), 0);
    assert_int_equal(sh->counter, ADDERS * n);
    int64_t v;
    assert_int_equal(weft_value_get(&sh->value, &v), 0);
    assert_int_equal(v, ADDERS * n);
    teardown_shared();
}

/* _TestLock.test_lock (errors differ by design): a shared Lock has an owner — a release by
 * another thread or process is WEFT_EPERM, re-acquiring from the owner is WEFT_EDEADLK, and
 * acquire from elsewhere times out while it is held. */
static int try_foreign_lock(void *arg)
{
    (void)arg;
    if (!weft_lock_locked(&sh->lock)) return 1;
    if (weft_lock_release(&sh->lock) != WEFT_EPERM) return 2;
    if (weft_lock_acquire(&sh->lock, 0) != WEFT_ETIMEDOUT) return 3;
    if (weft_lock_acquire(&sh->lock, 0.05) != WEFT_ETIMEDOUT) return 4;
    return 0;
}

static void shared_lock_has_an_owner(void **state)
{
    (void)state;
    setup_shared();
    assert_false(weft_lock_locked(&sh->lock));
    assert_int_equal(weft_lock_release(&sh->lock), WEFT_EPERM);
    assert_int_equal(weft_lock_acquire(&sh->lock, 1), 0);
    assert_true(weft_lock_locked(&sh->lock));
    assert_int_equal(weft_lock_acquire(&sh->lock, 1), WEFT_EDEADLK);
    assert_int_equal(weft_lock_destroy(&sh->lock), WEFT_EBUSY);
    assert_int_equal(weft_test_process_finish(weft_test_process_start(try_foreign_lock, NULL)), 0);
    assert_int_equal(weft_lock_release(&sh->lock), 0);
    assert_false(weft_lock_locked(&sh->lock));
    teardown_shared();
}

/* weft's own (robust futex): an owner that dies holding the lock hands it to the next
 * acquirer with WEFT_EOWNERDEAD, and to a waiter already blocked on it. */
static int hold_and_report(void *arg)
{
    if (weft_lock_acquire(&sh->lock, 30)) return 1;
    weft_event_set(&sh->ready);
    if (arg) _exit(0); /* dies holding it, without any cleanup */
    for (;;) pause();
    return 0;
}

static void shared_lock_owner_death_is_reported(void **state)
{
    (void)state;
    setup_shared();
    /* An owner that exits holding it. */
    weft_process_t *p = weft_test_process_start(hold_and_report, (void *)1);
    assert_int_equal(weft_event_wait(&sh->ready, 30), 0);
    assert_int_equal(weft_test_process_finish(p), 0);
    assert_int_equal(weft_lock_acquire(&sh->lock, 10), WEFT_EOWNERDEAD);
    assert_true(weft_lock_locked(&sh->lock)); /* held by us now */
    assert_int_equal(weft_lock_release(&sh->lock), 0);
    assert_int_equal(weft_lock_acquire(&sh->lock, 10), 0); /* healthy again */
    assert_int_equal(weft_lock_release(&sh->lock), 0);

    /* An owner SIGKILLed while we are blocked waiting for it. */
    weft_event_clear(&sh->ready);
    p = weft_test_process_start(hold_and_report, NULL);
    assert_int_equal(weft_event_wait(&sh->ready, 30), 0);
    assert_int_equal(weft_lock_acquire(&sh->lock, 0.05), WEFT_ETIMEDOUT);
    assert_int_equal(weft_process_kill(p), 0);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_lock_acquire(&sh->lock, 30), WEFT_EOWNERDEAD);
    assert_true(weft_time_monotonic() - t0 < 10);
    assert_int_equal(weft_lock_release(&sh->lock), 0);
    assert_int_equal(weft_test_process_finish(p), -SIGKILL);
    teardown_shared();
}

/* weft's own kill loop: a process updates a pair (a, b) under the lock, keeping a == b, and
 * is SIGKILLed at an arbitrary moment, again and again. Whoever takes the lock next either
 * finds the pair intact, or gets WEFT_EOWNERDEAD (then repairs it); never a torn pair
 * without the warning, never a lock that stays held. */
static int churn_pair(void *arg)
{
    (void)arg;
    weft_event_set(&sh->ready);
    for (;;) {
        int rc = weft_lock_acquire(&sh->lock, 30);
        if (rc == WEFT_EOWNERDEAD)
            sh->b = sh->a;
        else if (rc)
            return 1;
        sh->a++;
        for (volatile int spin = 0; spin < 50; spin++) {
        }
        sh->b++;
        weft_lock_release(&sh->lock);
    }
    return 0;
}

static void shared_lock_survives_a_kill_loop(void **state)
{
    (void)state;
    setup_shared();
    int rounds = SANITIZED ? 30 : 150, torn = 0;
    for (int i = 0; i < rounds; i++) {
        weft_event_clear(&sh->ready);
        weft_process_t *p = weft_test_process_start(churn_pair, NULL);
        assert_int_equal(weft_event_wait(&sh->ready, 30), 0);
        struct timespec ts = {0, (i % 10) * 100000L}; /* 0 .. 0.9 ms into its work */
        nanosleep(&ts, NULL);
        assert_int_equal(weft_process_kill(p), 0);
        assert_int_equal(weft_test_process_finish(p), -SIGKILL);
        int rc = weft_lock_acquire(&sh->lock, 10);
        if (rc == WEFT_EOWNERDEAD) {
            if (sh->a != sh->b) torn++;
            sh->b = sh->a;
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(sh->a, sh->b); /* no warning: the pair must be intact */
        }
        assert_int_equal(weft_lock_release(&sh->lock), 0);
    }
    /* Informational: how often the kill landed inside the critical section. */
    print_message("kill loop: %d rounds, %d torn pairs repaired after WEFT_EOWNERDEAD\n", rounds,
                  torn);
    teardown_shared();
}

/* ---- RLock --------------------------------------------------------------------------------- */

static int rlock_other_process(void *arg)
{
    (void)arg;
    if (weft_rlock_is_owned(&sh->rlock)) return 1;
    if (weft_rlock_release(&sh->rlock) != WEFT_EPERM) return 2;
    if (weft_rlock_acquire(&sh->rlock, 0.05) != WEFT_ETIMEDOUT) return 3;
    return 0;
}

static int rlock_die_holding(void *arg)
{
    (void)arg;
    if (weft_rlock_acquire(&sh->rlock, 10) || weft_rlock_acquire(&sh->rlock, 10)) return 1;
    _exit(0);
}

/* _TestLock.test_rlock: the owner re-enters, others cannot take or release it; and (weft's
 * own) a dead owner's RLock comes back with WEFT_EOWNERDEAD at count 1. */
static void shared_rlock_reentry_owner_and_death(void **state)
{
    (void)state;
    setup_shared();
    assert_int_equal(weft_rlock_acquire(&sh->rlock, 1), 0);
    assert_int_equal(weft_rlock_acquire(&sh->rlock, 1), 0);
    assert_true(weft_rlock_is_owned(&sh->rlock));
    assert_int_equal(weft_test_process_finish(weft_test_process_start(rlock_other_process, NULL)),
                     0);
    assert_int_equal(weft_rlock_release(&sh->rlock), 0);
    assert_true(weft_rlock_is_owned(&sh->rlock));
    assert_int_equal(weft_rlock_release(&sh->rlock), 0);
    assert_false(weft_rlock_is_owned(&sh->rlock));
    assert_int_equal(weft_rlock_release(&sh->rlock), WEFT_EPERM);

    assert_int_equal(weft_test_process_finish(weft_test_process_start(rlock_die_holding, NULL)), 0);
    assert_int_equal(weft_rlock_acquire(&sh->rlock, 10), WEFT_EOWNERDEAD);
    assert_int_equal(weft_rlock_release(&sh->rlock), 0);
    assert_false(weft_rlock_is_owned(&sh->rlock));
    teardown_shared();
}

/* ---- Semaphore and Event ------------------------------------------------------------------- */

static int take_units(void *arg)
{
    for (long i = 0; i < (long)arg; i++)
        if (weft_semaphore_acquire(&sh->sem, 30)) return 1;
    weft_value_add(&sh->woken, 1, NULL);
    return 0;
}

/* _TestSemaphore.test_semaphore / test_timeout with processes: units released by one process
 * are taken by others (none lost or doubled); a bounded one refuses to exceed its bound. */
static void shared_semaphore_across_processes(void **state)
{
    (void)state;
    setup_shared();
    weft_process_t *p[3];
    for (int i = 0; i < 3; i++) p[i] = weft_test_process_start(take_units, (void *)100L);
    for (int i = 0; i < 300; i++) assert_int_equal(weft_semaphore_release(&sh->sem, 1), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(weft_test_process_finish(p[i]), 0);
    assert_int_equal(weft_semaphore_value(&sh->sem), 0);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_semaphore_acquire(&sh->sem, 0.05), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.04);

    weft_semaphore_t *bs = &sh->sem;
    assert_int_equal(weft_semaphore_destroy(bs), 0);
    assert_int_equal(weft_semaphore_init_shared(bs, 2, true), 0);
    assert_int_equal(weft_semaphore_release(bs, 1), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_acquire(bs, 0), 0);
    assert_int_equal(weft_semaphore_release(bs, 1), 0);
    assert_int_equal(weft_semaphore_value(bs), 2);
    teardown_shared();
}

static int wait_event(void *arg)
{
    (void)arg;
    weft_value_add(&sh->woken, 1, NULL); /* about to wait */
    return weft_event_wait(&sh->event, 30) == 0 ? 0 : 1;
}

/* _TestEvent.test_event with processes, and threading's rule that a set followed at once by
 * a clear still wakes every waiter that was waiting. */
static void shared_event_set_then_clear_wakes_waiters(void **state)
{
    (void)state;
    setup_shared();
    weft_process_t *p[3];
    for (int i = 0; i < 3; i++) p[i] = weft_test_process_start(wait_event, NULL);
    /* Wait until all three sleep on the event (its waiter count is the witness). */
    int64_t n = 0;
    while (n < 3) weft_value_get(&sh->woken, &n);
    while (atomic_load(&sh->event.nwaiters_) < 3) sched_yield();
    assert_int_equal(weft_event_set(&sh->event), 0);
    assert_int_equal(weft_event_clear(&sh->event), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(weft_test_process_finish(p[i]), 0);
    assert_false(weft_event_is_set(&sh->event));
    assert_int_equal(weft_event_wait(&sh->event, 0.05), WEFT_ETIMEDOUT);
    teardown_shared();
}

/* ---- Condition ----------------------------------------------------------------------------- */

static int wait_notified(void *arg)
{
    (void)arg;
    if (weft_condition_acquire(&sh->cond, 30)) return 1;
    weft_value_add(&sh->value, 1, NULL); /* waiting (counted under the lock) */
    int rc = weft_condition_wait(&sh->cond, 30);
    if (rc == 0) weft_value_add(&sh->woken, 1, NULL);
    weft_condition_release(&sh->cond);
    return rc == 0 ? 0 : 2;
}

static int64_t value_of(weft_value_t *v)
{
    int64_t n;
    weft_value_get(v, &n);
    return n;
}

/* _TestCondition.test_notify / test_notify_all with processes: notify(1) wakes exactly one
 * waiter; notify_all the rest; a wait times out with the lock re-taken. */
static void shared_condition_notify_one_then_all(void **state)
{
    (void)state;
    setup_shared();
    weft_process_t *p[3];
    for (int i = 0; i < 3; i++) p[i] = weft_test_process_start(wait_notified, NULL);
    while (value_of(&sh->value) < 3) sched_yield();
    assert_int_equal(weft_condition_acquire(&sh->cond, 10), 0); /* all 3 wait: lock was free */
    assert_int_equal(weft_condition_notify(&sh->cond, 1), 0);
    assert_int_equal(weft_condition_release(&sh->cond), 0);
    while (value_of(&sh->woken) < 1) sched_yield();
    /* Give a wrongly woken second waiter every chance to show up. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(weft_condition_acquire(&sh->cond, 10), 0);
        assert_int_equal(weft_condition_release(&sh->cond), 0);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(value_of(&sh->woken), 1);
    assert_int_equal(weft_condition_acquire(&sh->cond, 10), 0);
    assert_int_equal(weft_condition_notify_all(&sh->cond), 0);
    assert_int_equal(weft_condition_release(&sh->cond), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(weft_test_process_finish(p[i]), 0);
    assert_int_equal(value_of(&sh->woken), 3);

    assert_int_equal(weft_condition_wait(&sh->cond, 0.01), WEFT_EPERM); /* not held */
    assert_int_equal(weft_condition_notify(&sh->cond, 1), WEFT_EPERM);
    assert_int_equal(weft_condition_acquire(&sh->cond, 10), 0);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_condition_wait(&sh->cond, 0.05), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.04);
    assert_true(weft_lock_locked(&sh->lock)); /* re-taken */
    assert_int_equal(weft_condition_release(&sh->cond), 0);
    teardown_shared();
}

/* A condition with its own RLock in a named region, mapped at another address by a process
 * that opened it by name: the lock is found by offset, wait_for works across processes. */
typedef struct named {
    weft_condition_t cond;
    weft_rlock_t lock;
    long flag;
} named_t;

static char region_name[64];

static bool flag_set(void *arg)
{
    return ((named_t *)arg)->flag == 1;
}

static int named_waiter(void *arg)
{
    (void)arg;
    named_t *n;
    size_t size;
    if (weft_shm_open(region_name, 0, false, (void **)&n, &size)) return 1;
    if (weft_condition_acquire(&n->cond, 10)) return 2;
    if (weft_rlock_acquire(&n->lock, 10)) return 3; /* recursion through the condition */
    n->flag = -1;                                   /* "I am waiting" */
    int rc = weft_condition_wait_for(&n->cond, flag_set, n, 30);
    bool ok = rc == 0 && n->flag == 1 && weft_rlock_is_owned(&n->lock);
    weft_rlock_release(&n->lock);
    weft_condition_release(&n->cond);
    weft_shm_free(n, size);
    return ok ? 0 : 4;
}

static void shared_condition_in_a_named_region(void **state)
{
    (void)state;
    snprintf(region_name, sizeof region_name, "/weft-test-cond-%d", (int)getpid());
    named_t *n;
    assert_int_equal(weft_shm_open(region_name, sizeof *n, true, (void **)&n, NULL), 0);
    assert_int_equal(weft_rlock_init_shared(&n->lock), 0);
    assert_int_equal(weft_condition_init_shared(&n->cond, NULL, &n->lock), 0);
    weft_process_t *p = weft_test_process_start(named_waiter, NULL);
    for (;;) { /* until the child waits (flag -1, and the lock free again) */
        assert_int_equal(weft_condition_acquire(&n->cond, 10), 0);
        bool waiting = n->flag == -1;
        if (waiting) {
            n->flag = 1;
            assert_int_equal(weft_condition_notify(&n->cond, 1), 0);
        }
        assert_int_equal(weft_condition_release(&n->cond), 0);
        if (waiting) break;
        sched_yield();
    }
    assert_int_equal(weft_test_process_finish(p), 0);
    assert_int_equal(weft_condition_destroy(&n->cond), 0);
    assert_int_equal(weft_rlock_destroy(&n->lock), 0);
    assert_int_equal(weft_shm_unlink(region_name), 0);
    assert_int_equal(weft_shm_free(n, sizeof *n), 0);
}

/* ---- cancellation, Value, bad input -------------------------------------------------------- */

static int wait_shared_event(void *arg, void **result)
{
    (void)result;
    return weft_event_wait(arg, WEFT_FOREVER);
}

/* A task blocked on a shared object is canceled like any weft wait (within a slice). */
static void shared_wait_is_cancelable(void **state)
{
    (void)state;
    setup_shared();
    weft_executor_t *ex;
    assert_int_equal(weft_thread_pool_create(1, NULL, &ex), 0);
    weft_future_t *f;
    assert_int_equal(weft_executor_submit(ex, wait_shared_event, &sh->event, &f), 0);
    while (atomic_load(&sh->event.nwaiters_) < 1) sched_yield();
    assert_int_equal(weft_future_cancel(f), WEFT_EBUSY);
    assert_int_equal(weft_future_result(f, 10, NULL), WEFT_ECANCELED);
    weft_future_release(f);
    assert_int_equal(weft_executor_shutdown(ex, true, false, WEFT_FOREVER), 0);
    weft_executor_release(ex);
    teardown_shared();
}

/* weft's own: a timeout scope (gevent.Timeout) ends a wait on a shared object as it ends every
 * other weft wait, in a thread and in a coroutine alike (the wait's own timeout is far off). */
static void wait_in_timeout_scope(void *arg)
{
    int64_t *elapsed = arg;
    weft_timeout_t t;
    assert_int_equal(weft_timeout_begin(&t, 0.05), 0);
    int64_t start = weft_time_monotonic_ns();
    assert_int_equal(weft_event_wait(&sh->event, 5), WEFT_ETIMEDOUT);
    *elapsed = weft_time_monotonic_ns() - start;
    assert_int_equal(weft_timeout_end(&t), WEFT_ETIMEDOUT);
}

static void shared_wait_ends_with_timeout_scope(void **state)
{
    (void)state;
    setup_shared();
    int64_t elapsed = 0;
    wait_in_timeout_scope(&elapsed);
    assert_true(elapsed < 2000000000);
    elapsed = 0;
    weft_test_co_join(weft_test_spawn(wait_in_timeout_scope, &elapsed));
    assert_true(elapsed > 0 && elapsed < 2000000000);
    teardown_shared();
}

/* _TestValue.test_value: get/set/add; add wraps as two's complement. */
static void shared_value_operations(void **state)
{
    (void)state;
    weft_value_t v;
    int64_t x, r;
    assert_int_equal(weft_value_init(&v, -5), 0);
    assert_int_equal(weft_value_get(&v, &x), 0);
    assert_int_equal(x, -5);
    assert_int_equal(weft_value_set(&v, 40), 0);
    assert_int_equal(weft_value_add(&v, 2, &r), 0);
    assert_int_equal(r, 42);
    assert_int_equal(weft_value_set(&v, INT64_MAX), 0);
    assert_int_equal(weft_value_add(&v, 1, &r), 0);
    assert_true(r == INT64_MIN);
    assert_int_equal(weft_value_add(&v, 0, NULL), 0);
    assert_int_equal(weft_value_init(NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_value_get(NULL, &x), WEFT_EINVAL);
    assert_int_equal(weft_value_get(&v, NULL), WEFT_EINVAL);
    assert_int_equal(weft_value_set(NULL, 0), WEFT_EINVAL);
    assert_int_equal(weft_value_add(NULL, 0, NULL), WEFT_EINVAL);
    assert_int_equal(weft_value_destroy(&v), 0);
    assert_int_equal(weft_value_destroy(NULL), WEFT_EINVAL);
}

static void shared_bad_input(void **state)
{
    (void)state;
    assert_int_equal(weft_lock_init_shared(NULL), WEFT_EINVAL);
    assert_int_equal(weft_rlock_init_shared(NULL), WEFT_EINVAL);
    assert_int_equal(weft_semaphore_init_shared(NULL, 0, false), WEFT_EINVAL);
    weft_semaphore_t s;
    assert_int_equal(weft_semaphore_init_shared(&s, WEFT_SEMAPHORE_MAX + 1u, false), WEFT_EINVAL);
    assert_int_equal(weft_event_init_shared(NULL), WEFT_EINVAL);
    weft_lock_t private_lock, shared_lock;
    weft_rlock_t shared_rlock;
    weft_condition_t c;
    weft_lock_init(&private_lock);
    assert_int_equal(weft_lock_init_shared(&shared_lock), 0);
    assert_int_equal(weft_rlock_init_shared(&shared_rlock), 0);
    assert_int_equal(weft_condition_init_shared(NULL, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_condition_init_shared(&c, &private_lock, NULL), WEFT_EINVAL);
    assert_int_equal(weft_condition_init_shared(&c, &shared_lock, &shared_rlock), WEFT_EINVAL);
    assert_int_equal(weft_lock_acquire(&shared_lock, NAN), WEFT_EINVAL);
    assert_int_equal(weft_lock_destroy(&shared_lock), 0);
    assert_int_equal(weft_rlock_destroy(&shared_rlock), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(shared_lock_counter_across_processes),
        WEFT_TEST(shared_lock_has_an_owner),
        WEFT_TEST(shared_lock_owner_death_is_reported),
        WEFT_TEST(shared_lock_survives_a_kill_loop),
        WEFT_TEST(shared_rlock_reentry_owner_and_death),
        WEFT_TEST(shared_semaphore_across_processes),
        WEFT_TEST(shared_event_set_then_clear_wakes_waiters),
        WEFT_TEST(shared_condition_notify_one_then_all),
        WEFT_TEST(shared_condition_in_a_named_region),
        WEFT_TEST(shared_wait_is_cancelable),
        WEFT_TEST(shared_wait_ends_with_timeout_scope),
        WEFT_TEST(shared_value_operations),
        WEFT_TEST(shared_bad_input),
    };
    return weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
