/* The static initializers of weft/sync.h (API rule 7): an object made by WEFT_<TYPE>_INIT, in
 * static storage with no init call, behaves as one made by its _init (here: a coroutine of the
 * main thread blocks on it and a plain thread wakes it), and its _destroy works on it.
 * (WEFT_LOCK_INIT and WEFT_TIMER_INIT have their own cases in test_lock.c / test_timer.c too.) */
#include "weft_test.h"

#include <limits.h>

/* The scene of every case: a coroutine of this thread (co_fn, which stores its result in
 * *rc) blocks on a static object until a plain thread (thread_fn) releases or sets it; both
 * are joined and the coroutine's result must be 0. */
static void co_and_thread(void (*co_fn)(void *), void *(*thread_fn)(void *), int *rc)
{
    weft_co_t *co = weft_test_spawn(co_fn, rc);
    pthread_t t = weft_test_start(thread_fn, NULL);
    weft_test_co_join(co);
    weft_test_join(t);
    assert_int_equal(*rc, 0);
}

/* ---- Lock -------------------------------------------------------------------------------- */

static weft_lock_t s_lock = WEFT_LOCK_INIT;

static void lock_taker(void *arg)
{
    int *rc = arg;
    *rc = weft_lock_acquire(&s_lock, 30);
    if (*rc == 0) *rc = weft_lock_release(&s_lock);
}

static void *lock_releaser(void *arg)
{
    (void)arg;
    weft_test_wait_queued(&s_lock.waiters_, 1);
    weft_lock_release(&s_lock); /* a Lock has no owner: any thread may release it */
    return NULL;
}

static void lock_initializer_wakes_a_coroutine_across_threads(void **state)
{
    (void)state;
    int rc = -1;
    assert_false(weft_lock_locked(&s_lock));
    assert_int_equal(weft_lock_acquire(&s_lock, 0), 0);
    co_and_thread(lock_taker, lock_releaser, &rc);
    assert_false(weft_lock_locked(&s_lock));
    assert_int_equal(weft_lock_destroy(&s_lock), 0);
}

/* ---- RLock ------------------------------------------------------------------------------- */

static weft_rlock_t s_rlock = WEFT_RLOCK_INIT;
static weft_event_t s_rlock_held = WEFT_EVENT_INIT;

static void rlock_taker(void *arg)
{
    int *rc = arg;
    weft_event_wait(&s_rlock_held, 30);
    *rc = weft_rlock_acquire(&s_rlock, 30);
    if (*rc) return;
    if (!weft_rlock_is_owned(&s_rlock) || weft_rlock_acquire(&s_rlock, 0) != 0) {
        *rc = -1;
        return;
    }
    weft_rlock_release(&s_rlock);
    *rc = weft_rlock_release(&s_rlock);
}

static void *rlock_holder(void *arg)
{
    (void)arg;
    weft_rlock_acquire(&s_rlock, WEFT_FOREVER);
    weft_rlock_acquire(&s_rlock, WEFT_FOREVER); /* two levels */
    weft_event_set(&s_rlock_held);
    weft_test_wait_queued(&s_rlock.lock_.waiters_, 1);
    weft_rlock_release(&s_rlock);
    weft_rlock_release(&s_rlock);
    return NULL;
}

static void rlock_initializer_wakes_a_coroutine_across_threads(void **state)
{
    (void)state;
    int rc = -1;
    assert_false(weft_rlock_is_owned(&s_rlock));
    co_and_thread(rlock_taker, rlock_holder, &rc);
    assert_int_equal(weft_rlock_release(&s_rlock), WEFT_EPERM);
    assert_int_equal(weft_rlock_destroy(&s_rlock), 0);
    assert_int_equal(weft_event_destroy(&s_rlock_held), 0);
}

/* ---- Semaphore / BoundedSemaphore -------------------------------------------------------- */

static weft_semaphore_t s_sem = WEFT_SEMAPHORE_INIT(0);

static void sem_taker(void *arg)
{
    *(int *)arg = weft_semaphore_acquire(&s_sem, 30);
}

static void *sem_releaser(void *arg)
{
    (void)arg;
    weft_test_wait_queued(&s_sem.waiters_, 1);
    weft_semaphore_release(&s_sem, 1);
    return NULL;
}

static void semaphore_initializer_wakes_a_coroutine_across_threads(void **state)
{
    (void)state;
    int rc = -1;
    assert_int_equal(weft_semaphore_value(&s_sem), 0);
    assert_int_equal(weft_semaphore_acquire(&s_sem, 0), WEFT_ETIMEDOUT);
    co_and_thread(sem_taker, sem_releaser, &rc);
    assert_int_equal(weft_semaphore_value(&s_sem), 0);
    /* Unbounded, as weft_semaphore_init(s, 0, false): releases go past the initial value. */
    assert_int_equal(weft_semaphore_release(&s_sem, 5), 0);
    assert_int_equal(weft_semaphore_value(&s_sem), 5);
    assert_int_equal(weft_semaphore_destroy(&s_sem), 0);
}

static weft_semaphore_t s_bounded = WEFT_BOUNDED_SEMAPHORE_INIT(2);
static weft_semaphore_t s_bounded0 = WEFT_BOUNDED_SEMAPHORE_INIT(0);
static weft_semaphore_t s_sem_max = WEFT_SEMAPHORE_INIT(WEFT_SEMAPHORE_MAX);

/* CPython BoundedSemaphoreTests.test_release_unacquired, on initializer-made semaphores. */
static void bounded_semaphore_initializer_is_bounded(void **state)
{
    (void)state;
    assert_int_equal(weft_semaphore_value(&s_bounded), 2);
    assert_int_equal(weft_semaphore_release(&s_bounded, 1), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_acquire(&s_bounded, 0), 0);
    assert_int_equal(weft_semaphore_acquire(&s_bounded, 0), 0);
    assert_int_equal(weft_semaphore_acquire(&s_bounded, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_semaphore_release(&s_bounded, 2), 0);
    assert_int_equal(weft_semaphore_release(&s_bounded, 1), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_value(&s_bounded), 2);
    assert_int_equal(weft_semaphore_destroy(&s_bounded), 0);
    /* A BoundedSemaphore(0) stays bounded: nothing can be released into it. */
    assert_int_equal(weft_semaphore_release(&s_bounded0, 1), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_destroy(&s_bounded0), 0);
    /* The largest value init accepts is accepted here too, with the same ceiling. */
    assert_int_equal(weft_semaphore_value(&s_sem_max), WEFT_SEMAPHORE_MAX);
    assert_int_equal(weft_semaphore_release(&s_sem_max, 1), WEFT_EOVERFLOW);
    assert_int_equal(weft_semaphore_destroy(&s_sem_max), 0);
}

/* ---- Event ------------------------------------------------------------------------------- */

static weft_event_t s_event = WEFT_EVENT_INIT;

static void event_waiter(void *arg)
{
    *(int *)arg = weft_event_wait(&s_event, 30);
}

static void *event_setter(void *arg)
{
    (void)arg;
    weft_test_wait_queued(&s_event.waiters_, 1);
    weft_event_set(&s_event);
    return NULL;
}

static void event_initializer_wakes_a_coroutine_across_threads(void **state)
{
    (void)state;
    int rc = -1;
    assert_false(weft_event_is_set(&s_event));
    assert_int_equal(weft_event_wait(&s_event, 0), WEFT_ETIMEDOUT);
    co_and_thread(event_waiter, event_setter, &rc);
    assert_true(weft_event_is_set(&s_event));
    assert_int_equal(weft_event_destroy(&s_event), 0);
}

/* ---- Condition (its own RLock, a caller's Lock, a caller's RLock) ------------------------ */

static weft_lock_t s_cond_lock = WEFT_LOCK_INIT;
static weft_rlock_t s_cond_rlock = WEFT_RLOCK_INIT;
static weft_condition_t s_cond_own = WEFT_CONDITION_INIT;
static weft_condition_t s_cond_l = WEFT_CONDITION_INIT_LOCK(&s_cond_lock);
static weft_condition_t s_cond_r = WEFT_CONDITION_INIT_RLOCK(&s_cond_rlock);

typedef struct cond_case {
    weft_condition_t *c;
    _Atomic int flag;
    int rc;
} cond_case_t;

static bool flag_up(void *arg)
{
    return atomic_load(&((cond_case_t *)arg)->flag) != 0;
}

static void cond_waiter(void *arg)
{
    cond_case_t *k = arg;
    k->rc = weft_condition_acquire(k->c, 30);
    if (k->rc) return;
    k->rc = weft_condition_wait_for(k->c, flag_up, k, 30);
    int rel = weft_condition_release(k->c);
    if (k->rc == 0) k->rc = rel;
}

static void *cond_notifier(void *arg)
{
    cond_case_t *k = arg;
    weft_test_wait_queued(&k->c->waiters_, 1);
    weft_condition_acquire(k->c, WEFT_FOREVER);
    atomic_store(&k->flag, 1);
    weft_condition_notify(k->c, 1);
    weft_condition_release(k->c);
    return NULL;
}

static void run_cond_case(weft_condition_t *c)
{
    cond_case_t k = {.c = c, .flag = 0, .rc = -1};
    assert_int_equal(weft_condition_wait(c, 0), WEFT_EPERM); /* not held */
    weft_co_t *co = weft_test_spawn(cond_waiter, &k);
    pthread_t t = weft_test_start(cond_notifier, &k);
    weft_test_co_join(co);
    weft_test_join(t);
    assert_int_equal(k.rc, 0);
    assert_int_equal(weft_condition_destroy(c), 0);
}

static void condition_initializer_wakes_a_coroutine_across_threads(void **state)
{
    (void)state;
    run_cond_case(&s_cond_own);
}

static void condition_lock_initializer_uses_the_lock(void **state)
{
    (void)state;
    /* The condition's lock is the caller's Lock: holding one is holding the other. */
    assert_int_equal(weft_condition_acquire(&s_cond_l, 0), 0);
    assert_true(weft_lock_locked(&s_cond_lock));
    assert_int_equal(weft_lock_acquire(&s_cond_lock, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_condition_release(&s_cond_l), 0);
    assert_false(weft_lock_locked(&s_cond_lock));
    run_cond_case(&s_cond_l);
    assert_int_equal(weft_lock_destroy(&s_cond_lock), 0);
}

static void condition_rlock_initializer_uses_the_rlock(void **state)
{
    (void)state;
    assert_int_equal(weft_rlock_acquire(&s_cond_rlock, 0), 0);
    assert_int_equal(weft_condition_acquire(&s_cond_r, 0), 0); /* the same RLock: re-entered */
    assert_int_equal(weft_condition_notify_all(&s_cond_r), 0); /* held: no WEFT_EPERM */
    assert_int_equal(weft_condition_release(&s_cond_r), 0);
    assert_int_equal(weft_rlock_release(&s_cond_rlock), 0);
    assert_false(weft_rlock_is_owned(&s_cond_rlock));
    run_cond_case(&s_cond_r);
    assert_int_equal(weft_rlock_destroy(&s_cond_rlock), 0);
}

/* ---- Barrier ----------------------------------------------------------------------------- */

static weft_barrier_t s_barrier = WEFT_BARRIER_INIT(2);

static void barrier_co(void *arg)
{
    *(int *)arg = weft_barrier_wait(&s_barrier, 30);
}

static void *barrier_thread(void *arg)
{
    weft_test_wait_queued(&s_barrier.waiters_, 1);
    *(int *)arg = weft_barrier_wait(&s_barrier, 30);
    return NULL;
}

static void barrier_initializer_meets_a_coroutine_and_a_thread(void **state)
{
    (void)state;
    int a = -1, b = -1;
    assert_false(weft_barrier_broken(&s_barrier));
    assert_int_equal(weft_barrier_n_waiting(&s_barrier), 0);
    weft_co_t *co = weft_test_spawn(barrier_co, &a);
    pthread_t t = weft_test_start(barrier_thread, &b);
    weft_test_co_join(co);
    weft_test_join(t);
    /* Arrival indices 0 and 1; no action ran (there is none). */
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_int_equal(weft_barrier_destroy(&s_barrier), 0);
}

static weft_barrier_t s_barrier0 = WEFT_BARRIER_INIT(0);
static weft_barrier_t s_barrier_huge = WEFT_BARRIER_INIT(UINT_MAX);

/* init refuses parties 0 (or above INT32_MAX) with WEFT_EINVAL; the initializer cannot, so the
 * wait does, at once, instead of waiting for parties that can never come. */
static void barrier_initializer_with_bad_parties_fails_wait(void **state)
{
    (void)state;
    assert_int_equal(weft_barrier_wait(&s_barrier0, 0.5), WEFT_EINVAL);
    assert_int_equal(weft_barrier_wait(&s_barrier_huge, 0.5), WEFT_EINVAL);
    assert_false(weft_barrier_broken(&s_barrier0));
    assert_int_equal(weft_barrier_destroy(&s_barrier0), 0);
    assert_int_equal(weft_barrier_destroy(&s_barrier_huge), 0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(lock_initializer_wakes_a_coroutine_across_threads),
    WEFT_TEST(rlock_initializer_wakes_a_coroutine_across_threads),
    WEFT_TEST(semaphore_initializer_wakes_a_coroutine_across_threads),
    WEFT_TEST(bounded_semaphore_initializer_is_bounded),
    WEFT_TEST(event_initializer_wakes_a_coroutine_across_threads),
    WEFT_TEST(condition_initializer_wakes_a_coroutine_across_threads),
    WEFT_TEST(condition_lock_initializer_uses_the_lock),
    WEFT_TEST(condition_rlock_initializer_uses_the_rlock),
    WEFT_TEST(barrier_initializer_meets_a_coroutine_and_a_thread),
    WEFT_TEST(barrier_initializer_with_bad_parties_fails_wait),
};
WEFT_TEST_MAIN(cases)
