/* Thread-local data (threading.local): per-thread values, destructors at thread exit for weft
 * and foreign threads, destroy. CPython: Lib/test/test_threading_local.py. */
#include "weft_test.h"

#include <stdatomic.h>
#include <stdint.h>

/* The destructor counts calls and sums the values it saw (values are small integers). */
static atomic_int destroyed;
static atomic_long destroyed_sum;

static void count_destructor(void *value)
{
    atomic_fetch_add(&destroyed, 1);
    atomic_fetch_add(&destroyed_sum, (long)(intptr_t)value);
}

static void reset_counts(void)
{
    atomic_store(&destroyed, 0);
    atomic_store(&destroyed_sum, 0);
}

typedef struct per_thread_arg {
    weft_thread_local_t *l;
    intptr_t mine;
    intptr_t seen_before, seen_after;
} per_thread_arg_t;

static void set_and_read(void *arg)
{
    per_thread_arg_t *a = arg;
    a->seen_before = (intptr_t)weft_thread_local_get(a->l);
    assert_int_equal(weft_thread_local_set(a->l, (void *)a->mine), 0);
    a->seen_after = (intptr_t)weft_thread_local_get(a->l);
}

enum { THREADS = 8 };

/* test_threading_local (_test_one_class), test_derived: each thread sees only its own value,
 * starting from nothing; the destructor runs once per value when each thread exits
 * (test_local_refs). */
static void local_values_are_per_thread(void **state)
{
    (void)state;
    reset_counts();
    weft_thread_local_t *l;
    assert_int_equal(weft_thread_local_create(count_destructor, &l), 0);
    assert_int_equal(weft_thread_local_set(l, (void *)1000), 0); /* the main thread's */

    weft_thread_t *t[THREADS];
    per_thread_arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (per_thread_arg_t){l, i + 1, -1, -1};
        assert_int_equal(weft_thread_start(set_and_read, &args[i], NULL, &t[i]), 0);
    }
    long sum = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(weft_thread_join(t[i], WEFT_FOREVER), 0);
        weft_thread_release(t[i]);
        assert_int_equal(args[i].seen_before, 0);
        assert_int_equal(args[i].seen_after, i + 1);
        sum += i + 1;
    }
    /* Every thread's value was destroyed by the time its join returned; main's is intact. */
    assert_int_equal(atomic_load(&destroyed), THREADS);
    assert_int_equal(atomic_load(&destroyed_sum), sum);
    assert_int_equal((intptr_t)weft_thread_local_get(l), 1000);

    assert_int_equal(weft_thread_local_release(l), 0); /* destroys main's value */
    assert_int_equal(atomic_load(&destroyed), THREADS + 1);
    assert_int_equal(atomic_load(&destroyed_sum), sum + 1000);
}

/* Set semantics (as pthread_setspecific): replacing or clearing does not destroy; NULL is
 * "no value" and is never passed to the destructor. */
static void local_set_replaces_without_destroying(void **state)
{
    (void)state;
    reset_counts();
    weft_thread_local_t *l;
    assert_null(weft_thread_local_get(NULL));
    assert_int_equal(weft_thread_local_set(NULL, (void *)1), WEFT_EINVAL);
    assert_int_equal(weft_thread_local_create(NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_thread_local_release(NULL), WEFT_EINVAL);
    assert_int_equal(weft_thread_local_create(count_destructor, &l), 0);
    assert_null(weft_thread_local_get(l));
    assert_int_equal(weft_thread_local_set(l, NULL), 0);
    assert_int_equal(weft_thread_local_set(l, (void *)1), 0);
    assert_int_equal(weft_thread_local_set(l, (void *)2), 0);
    assert_int_equal((intptr_t)weft_thread_local_get(l), 2);
    assert_int_equal(weft_thread_local_set(l, NULL), 0);
    assert_null(weft_thread_local_get(l));
    assert_int_equal(weft_thread_local_release(l), 0);
    assert_int_equal(atomic_load(&destroyed), 0);
}

static void set_in_foreign_thread(void *arg, int i)
{
    weft_thread_local_t *l = arg;
    assert_int_equal(weft_thread_local_set(l, (void *)(intptr_t)(i + 1)), 0);
    assert_int_equal((intptr_t)weft_thread_local_get(l), i + 1);
}

/* test_threading_local_clear_race (a C thread): a thread weft did not start gets its values
 * destroyed at its exit too, through its dummy record, which is then freed. */
static void local_destructor_runs_in_foreign_threads(void **state)
{
    (void)state;
    reset_counts();
    size_t base = weft_thread_active_count();
    weft_thread_local_t *l;
    assert_int_equal(weft_thread_local_create(count_destructor, &l), 0);
    weft_test_run_threads(THREADS, set_in_foreign_thread, l); /* plain pthreads, joined */
    assert_int_equal(atomic_load(&destroyed), THREADS);
    assert_int_equal(atomic_load(&destroyed_sum), THREADS * (THREADS + 1) / 2);
    assert_int_equal(weft_thread_active_count(), base);
    assert_int_equal(weft_thread_local_release(l), 0);
    assert_int_equal(atomic_load(&destroyed), THREADS);
}

typedef struct parked_arg {
    weft_thread_local_t *l;
    weft_barrier_t *stored;
    weft_event_t *go;
    intptr_t value;
} parked_arg_t;

static void set_then_park(void *arg)
{
    parked_arg_t *a = arg;
    assert_int_equal(weft_thread_local_set(a->l, (void *)a->value), 0);
    weft_barrier_wait(a->stored, WEFT_FOREVER);
    weft_event_wait(a->go, WEFT_FOREVER); /* l is destroyed meanwhile: not touched again */
}

/* test_cycle_collection, test_local_refs: destroying the slot destroys every live thread's
 * value at once (in the caller); those threads' exits then find nothing left. */
static void local_destroy_destroys_every_threads_value(void **state)
{
    (void)state;
    reset_counts();
    weft_thread_local_t *l;
    assert_int_equal(weft_thread_local_create(count_destructor, &l), 0);
    weft_barrier_t stored;
    weft_event_t go;
    weft_barrier_init(&stored, THREADS + 1, NULL, NULL);
    weft_event_init(&go);
    weft_thread_t *t[THREADS];
    parked_arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (parked_arg_t){l, &stored, &go, 10 + i};
        assert_int_equal(weft_thread_start(set_then_park, &args[i], NULL, &t[i]), 0);
    }
    assert_true(weft_barrier_wait(&stored, WEFT_FOREVER) >= 0);
    assert_int_equal(weft_thread_local_release(l), 0);
    assert_int_equal(atomic_load(&destroyed), THREADS);
    assert_int_equal(atomic_load(&destroyed_sum), THREADS * 10 + THREADS * (THREADS - 1) / 2);
    weft_event_set(&go);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(weft_thread_join(t[i], WEFT_FOREVER), 0);
        weft_thread_release(t[i]);
    }
    assert_int_equal(atomic_load(&destroyed), THREADS);
    weft_barrier_destroy(&stored);
}

static weft_thread_local_t *resurrected;

static void resurrecting_destructor(void *value)
{
    count_destructor(value);
    weft_thread_local_set(resurrected, value); /* sets it again, every time */
}

static void set_resurrected(void *arg)
{
    (void)arg;
    weft_thread_local_set(resurrected, (void *)1);
}

/* pthread's rule for destructors that store values again: a bounded number of rounds, so a
 * thread's exit always ends. */
static void local_destructor_rounds_are_bounded(void **state)
{
    (void)state;
    reset_counts();
    assert_int_equal(weft_thread_local_create(resurrecting_destructor, &resurrected), 0);
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(set_resurrected, NULL, NULL, &t), 0);
    assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
    weft_thread_release(t);
    assert_int_equal(atomic_load(&destroyed), 4);
    assert_int_equal(weft_thread_local_release(resurrected), 0);
}

enum { SLOTS = 40 }; /* past the first table size, so the table and arrays grow */

static void set_many(void *arg)
{
    weft_thread_local_t **ls = arg;
    for (int i = 0; i < SLOTS; i++)
        assert_int_equal(weft_thread_local_set(ls[i], (void *)(intptr_t)(i + 1)), 0);
    for (int i = 0; i < SLOTS; i++) assert_int_equal((intptr_t)weft_thread_local_get(ls[i]), i + 1);
}

/* Many slots at once; freed slots are reused and their old values never show through. */
static void local_many_slots_and_reuse(void **state)
{
    (void)state;
    reset_counts();
    weft_thread_local_t *ls[SLOTS];
    for (int i = 0; i < SLOTS; i++)
        assert_int_equal(weft_thread_local_create(count_destructor, &ls[i]), 0);
    weft_thread_t *t;
    assert_int_equal(weft_thread_start(set_many, ls, NULL, &t), 0);
    assert_int_equal(weft_thread_join(t, WEFT_FOREVER), 0);
    weft_thread_release(t);
    assert_int_equal(atomic_load(&destroyed), SLOTS);

    set_many(ls); /* on the main thread */
    assert_int_equal(weft_thread_local_release(ls[3]), 0);
    assert_int_equal(atomic_load(&destroyed), SLOTS + 1);
    assert_int_equal(weft_thread_local_create(count_destructor, &ls[3]), 0); /* reuses slot 3 */
    assert_null(weft_thread_local_get(ls[3]));
    for (int i = 0; i < SLOTS; i++) assert_int_equal(weft_thread_local_release(ls[i]), 0);
    assert_int_equal(atomic_load(&destroyed), 2 * SLOTS);
}

static int create_set_destroy(void *ctx)
{
    (void)ctx;
    weft_thread_local_t *l;
    int rc = weft_thread_local_create(count_destructor, &l);
    if (rc) return rc;
    rc = weft_thread_local_set(l, (void *)7);
    if (rc == 0 && weft_thread_local_get(l) != (void *)7) rc = WEFT_EIO;
    weft_thread_local_release(l);
    return rc;
}

/* SQLite-style OOM loop over create (slot, table) and set (the value array). */
static void local_out_of_memory(void **state)
{
    (void)state;
    assert_true(weft_test_oom(create_set_destroy, NULL) >= 2);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(local_values_are_per_thread),
    WEFT_TEST(local_set_replaces_without_destroying),
    WEFT_TEST(local_destructor_runs_in_foreign_threads),
    WEFT_TEST(local_destroy_destroys_every_threads_value),
    WEFT_TEST(local_destructor_rounds_are_bounded),
    WEFT_TEST(local_many_slots_and_reuse),
    WEFT_TEST(local_out_of_memory),
};
WEFT_TEST_MAIN(cases)
