/*
 * The fast paths of a single-threaded process (src/sync/sync_internal.h): while no second thread
 * exists, Lock, RLock and a Semaphore's acquire take and give back with a plain load and store
 * instead of an atomic read-modify-write. The only other party then is a coroutine of the same
 * thread, which must still park and be woken exactly as with the atomic paths; process-shared
 * objects keep theirs (another process may hold them).
 *
 * The test program has started threads (weft_test_main does), so each case points the seam,
 * weft__single_threaded_flag, at a flag of its own while it runs on one thread, and restores it.
 */
#include "weft_test.h"

#include "sync/sync_internal.h"

#include <sys/mman.h>
#include <sys/single_threaded.h>

static const char alone = 1;
static const char *libc_flag;

static void pretend_single_threaded(void)
{
    libc_flag = weft__single_threaded_flag;
    weft__single_threaded_flag = &alone;
    assert_true(weft__single_threaded());
}

static void stop_pretending(void)
{
    weft__single_threaded_flag = libc_flag;
}

/* The flag is glibc's: false here, where threads were started. */
static void single_threaded_flag_is_libcs(void **state)
{
    (void)state;
    assert_ptr_equal(weft__single_threaded_flag, &__libc_single_threaded);
    assert_false(weft__single_threaded());
}

/* ---- Lock -------------------------------------------------------------------------------- */

/* The holder coroutine takes the object, lets the waiter run (it finds the object taken and
 * parks), then gives it back; the waiter must then get it. `took` counts who got it. */
typedef struct scene {
    weft_lock_t lock;
    weft_rlock_t rlock;
    weft_semaphore_t sem;
    int took, errors;
} scene_t;

static void lock_holder(void *p)
{
    scene_t *s = p;
    if (weft_lock_acquire(&s->lock, WEFT_FOREVER) != 0) s->errors++;
    s->took++;
    weft_co_yield();
    if (weft_lock_release(&s->lock) != 0) s->errors++;
}

static void lock_waiter(void *p)
{
    scene_t *s = p;
    if (weft_lock_acquire(&s->lock, 0) != WEFT_ETIMEDOUT) s->errors++; /* a poll fails */
    if (weft_lock_acquire(&s->lock, 30) != 0) s->errors++;
    s->took++;
    if (weft_lock_release(&s->lock) != 0) s->errors++;
}

static void run_scene(scene_t *s, void (*holder)(void *), void (*waiter)(void *))
{
    weft_co_t *co[2] = {weft_test_spawn(holder, s), weft_test_spawn(waiter, s)};
    assert_int_equal(weft_co_join_all(co, 2, 60), 0);
    weft_co_release(co[0]);
    weft_co_release(co[1]);
    assert_int_equal(s->errors, 0);
    assert_int_equal(s->took, 2);
}

static void lock_fast_paths_alone_and_a_coroutine_waiter(void **state)
{
    (void)state;
    scene_t s = {.took = 0};
    assert_int_equal(weft_lock_init(&s.lock), 0);
    pretend_single_threaded();
    assert_int_equal(weft_lock_acquire(&s.lock, WEFT_FOREVER), 0);
    assert_true(weft_lock_locked(&s.lock));
    assert_int_equal(weft_lock_acquire(&s.lock, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_lock_release(&s.lock), 0);
    assert_int_equal(weft_lock_release(&s.lock), WEFT_EPERM);
    assert_false(weft_lock_locked(&s.lock));
    run_scene(&s, lock_holder, lock_waiter);
    assert_false(weft_lock_locked(&s.lock));
    assert_int_equal(weft_lock_destroy(&s.lock), 0);
    stop_pretending();
}

/* ---- RLock ------------------------------------------------------------------------------- */

static void rlock_holder(void *p)
{
    scene_t *s = p;
    for (int i = 0; i < 2; i++)
        if (weft_rlock_acquire(&s->rlock, WEFT_FOREVER) != 0) s->errors++;
    s->took++;
    weft_co_yield();
    for (int i = 0; i < 2; i++)
        if (weft_rlock_release(&s->rlock) != 0) s->errors++;
}

static void rlock_waiter(void *p)
{
    scene_t *s = p;
    if (weft_rlock_is_owned(&s->rlock)) s->errors++;              /* the holder's, not ours */
    if (weft_rlock_release(&s->rlock) != WEFT_EPERM) s->errors++; /* nor may we release it */
    if (weft_rlock_acquire(&s->rlock, 0) != WEFT_ETIMEDOUT) s->errors++; /* a poll fails */
    if (weft_rlock_acquire(&s->rlock, 30) != 0) s->errors++;
    s->took++;
    if (weft_rlock_release(&s->rlock) != 0) s->errors++;
}

static void rlock_fast_paths_alone_and_a_coroutine_waiter(void **state)
{
    (void)state;
    scene_t s = {.took = 0};
    assert_int_equal(weft_rlock_init(&s.rlock), 0);
    pretend_single_threaded();
    assert_int_equal(weft_rlock_acquire(&s.rlock, WEFT_FOREVER), 0);
    assert_int_equal(weft_rlock_acquire(&s.rlock, 0), 0);
    assert_true(weft_rlock_is_owned(&s.rlock));
    assert_int_equal(weft_rlock_release(&s.rlock), 0);
    assert_true(weft_rlock_is_owned(&s.rlock));
    assert_int_equal(weft_rlock_release(&s.rlock), 0);
    assert_false(weft_rlock_is_owned(&s.rlock));
    assert_int_equal(weft_rlock_release(&s.rlock), WEFT_EPERM);
    run_scene(&s, rlock_holder, rlock_waiter);
    assert_false(weft_lock_locked(&s.rlock.lock_));
    assert_int_equal(weft_rlock_destroy(&s.rlock), 0);
    stop_pretending();
}

/* ---- Semaphore --------------------------------------------------------------------------- */

static void sem_holder(void *p)
{
    scene_t *s = p;
    if (weft_semaphore_acquire(&s->sem, WEFT_FOREVER) != 0) s->errors++;
    s->took++;
    weft_co_yield();
    if (weft_semaphore_release(&s->sem, 1) != 0) s->errors++;
}

static void sem_waiter(void *p)
{
    scene_t *s = p;
    if (weft_semaphore_acquire(&s->sem, 0) != WEFT_ETIMEDOUT) s->errors++; /* a poll fails */
    if (weft_semaphore_acquire(&s->sem, 30) != 0) s->errors++; /* handed over by the release */
    s->took++;
    if (weft_semaphore_release(&s->sem, 1) != 0) s->errors++;
}

static void semaphore_fast_paths_alone_and_a_coroutine_waiter(void **state)
{
    (void)state;
    scene_t s = {.took = 0};
    assert_int_equal(weft_semaphore_init(&s.sem, 1, true), 0);
    pretend_single_threaded();
    assert_int_equal(weft_semaphore_acquire(&s.sem, WEFT_FOREVER), 0);
    assert_int_equal(weft_semaphore_value(&s.sem), 0);
    assert_int_equal(weft_semaphore_acquire(&s.sem, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_semaphore_release(&s.sem, 1), 0);
    assert_int_equal(weft_semaphore_release(&s.sem, 1), WEFT_EOVERFLOW); /* bounded at 1 */
    assert_int_equal(weft_semaphore_value(&s.sem), 1);
    run_scene(&s, sem_holder, sem_waiter);
    assert_int_equal(weft_semaphore_value(&s.sem), 1);
    assert_int_equal(weft_semaphore_destroy(&s.sem), 0);
    stop_pretending();
}

/* ---- process-shared objects keep their atomic paths ---------------------------------------- */

static void shared_objects_ignore_the_single_threaded_paths(void **state)
{
    (void)state;
    struct {
        weft_lock_t lock;
        weft_semaphore_t sem;
    } *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    assert_int_equal(weft_lock_init_shared(&sh->lock), 0);
    assert_int_equal(weft_semaphore_init_shared(&sh->sem, 1, false), 0);
    pretend_single_threaded();
    assert_int_equal(weft_lock_acquire(&sh->lock, WEFT_FOREVER), 0);
    assert_true(weft_lock_locked(&sh->lock));
    assert_true(atomic_load(&sh->lock.state_) >= WEFT__PLOCK_NOBODY); /* never FREE / LOCKED */
    assert_int_equal(weft_lock_release(&sh->lock), 0);
    assert_false(weft_lock_locked(&sh->lock));
    assert_int_equal(weft_semaphore_acquire(&sh->sem, WEFT_FOREVER), 0);
    assert_int_equal(weft_semaphore_acquire(&sh->sem, 0), WEFT_ETIMEDOUT);
    assert_int_equal(weft_semaphore_release(&sh->sem, 1), 0);
    assert_int_equal(weft_semaphore_value(&sh->sem), 1);
    stop_pretending();
    assert_int_equal(weft_lock_destroy(&sh->lock), 0);
    assert_int_equal(weft_semaphore_destroy(&sh->sem), 0);
    munmap(sh, 4096);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(single_threaded_flag_is_libcs),
    WEFT_TEST(lock_fast_paths_alone_and_a_coroutine_waiter),
    WEFT_TEST(rlock_fast_paths_alone_and_a_coroutine_waiter),
    WEFT_TEST(semaphore_fast_paths_alone_and_a_coroutine_waiter),
    WEFT_TEST(shared_objects_ignore_the_single_threaded_paths),
};
WEFT_TEST_MAIN(cases)
