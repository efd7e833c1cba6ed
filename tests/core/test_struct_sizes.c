/* The ABI of the structs a user allocates: each has a fixed size with a reserved tail (zero) to
 * grow into within 1.x, so an accidental growth (or shrink) fails here instead of breaking
 * programs built against an earlier 1.x. Change a size only with the major version.
 *
 * The documented sizes, in bytes (LP64 targets: x86-64, aarch64; the Lock's pthread mutex is
 * pinned inside a 48-byte union so it is the same on both):
 *   weft_deadline_t      8   (no reserve: a value passed by value; fixed for 1.x)
 *   weft_lock_t         64   weft_rlock_t      96   weft_semaphore_t   64   weft_event_t   64
 *   weft_condition_t   160   weft_barrier_t    96   weft_timer_t      128   weft_value_t   16
 *   weft_timeout_t      32   weft_co_key_t     32
 *   options (zero-initialise them: {0} or designated initializers; zero is the default of
 *   every field, those of later 1.x versions included):
 *   weft_co_opts_t      64   weft_thread_opts_t          64   weft_process_opts_t        64
 *   weft_thread_pool_opts_t  64   weft_process_pool_opts_t    64   weft_mpi_pool_opts_t  64
 */
#include "weft_test.h"
#include "weft/mpi.h"

#include <string.h>

#define ASSERT_SIZE(type, bytes) assert_int_equal(sizeof(type), bytes)

static void public_struct_sizes_are_fixed(void **state)
{
    (void)state;
    ASSERT_SIZE(weft_deadline_t, 8);
    ASSERT_SIZE(weft_lock_t, 64);
    ASSERT_SIZE(weft_rlock_t, 96);
    ASSERT_SIZE(weft_semaphore_t, 64);
    ASSERT_SIZE(weft_event_t, 64);
    ASSERT_SIZE(weft_condition_t, 160);
    ASSERT_SIZE(weft_barrier_t, 96);
    ASSERT_SIZE(weft_timer_t, 128);
    ASSERT_SIZE(weft_value_t, 16);
    ASSERT_SIZE(weft_timeout_t, 32);
    ASSERT_SIZE(weft_co_key_t, 32);
    ASSERT_SIZE(weft_co_opts_t, 64);
    ASSERT_SIZE(weft_thread_opts_t, 64);
    ASSERT_SIZE(weft_process_opts_t, 64);
    ASSERT_SIZE(weft_thread_pool_opts_t, 64);
    ASSERT_SIZE(weft_process_pool_opts_t, 64);
    ASSERT_SIZE(weft_mpi_pool_opts_t, 64);
}

/* Every init leaves the reserved tail zero, whatever the memory held before (a later 1.x may
 * give those bytes a meaning in which zero is the old behaviour). A debug build (WEFT_DEBUG)
 * keeps its magic word in the tail's last word: the words before it are zero there. */
#ifdef WEFT_DEBUG
#define TAIL_CHECKED(obj) (sizeof(obj).reserved_ - sizeof(obj).reserved_[0])
#else
#define TAIL_CHECKED(obj) sizeof(obj).reserved_
#endif
#define ASSERT_TAIL_ZERO(obj)                                                                      \
    do {                                                                                           \
        static const unsigned char zero[sizeof(obj).reserved_];                                    \
        if (TAIL_CHECKED(obj)) assert_memory_equal((obj).reserved_, zero, TAIL_CHECKED(obj));      \
    } while (0)

static void init_zeroes_the_reserved_tail(void **state)
{
    (void)state;
    weft_lock_t l, lr;
    weft_rlock_t r;
    weft_semaphore_t s;
    weft_event_t e;
    weft_condition_t c;
    weft_barrier_t b;
    weft_timer_t t;
    weft_value_t v;
    weft_timeout_t to;
    memset(&l, 0xa5, sizeof l);
    memset(&lr, 0xa5, sizeof lr);
    memset(&r, 0xa5, sizeof r);
    memset(&s, 0xa5, sizeof s);
    memset(&e, 0xa5, sizeof e);
    memset(&c, 0xa5, sizeof c);
    memset(&b, 0xa5, sizeof b);
    memset(&t, 0xa5, sizeof t);
    memset(&v, 0xa5, sizeof v);
    memset(&to, 0xa5, sizeof to);
    assert_int_equal(weft_lock_init(&l), 0);
    assert_int_equal(weft_rlock_init(&r), 0);
    assert_int_equal(weft_semaphore_init(&s, 3, true), 0);
    assert_int_equal(weft_event_init(&e), 0);
    assert_int_equal(weft_condition_init(&c, NULL, NULL), 0);
    assert_int_equal(weft_barrier_init(&b, 2, NULL, NULL), 0);
    assert_int_equal(weft_timer_init(&t), 0);
    assert_int_equal(weft_value_init(&v, 7), 0);
    assert_int_equal(weft_timeout_begin(&to, WEFT_FOREVER), 0);
    ASSERT_TAIL_ZERO(l);
    ASSERT_TAIL_ZERO(r);
    ASSERT_TAIL_ZERO(r.lock_);
    ASSERT_TAIL_ZERO(s);
    ASSERT_TAIL_ZERO(e);
    ASSERT_TAIL_ZERO(c);
    ASSERT_TAIL_ZERO(c.own_);
    ASSERT_TAIL_ZERO(b);
    ASSERT_TAIL_ZERO(t);
    ASSERT_TAIL_ZERO(v);
    ASSERT_TAIL_ZERO(to);
    assert_int_equal(weft_timeout_end(&to), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
    assert_int_equal(weft_rlock_destroy(&r), 0);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
    assert_int_equal(weft_event_destroy(&e), 0);
    assert_int_equal(weft_condition_destroy(&c), 0);
    assert_int_equal(weft_barrier_destroy(&b), 0);
    assert_int_equal(weft_timer_destroy(&t), 0);
    assert_int_equal(weft_value_destroy(&v), 0);

    /* The process-shared inits too (in private memory here: the layout is what is checked). */
    memset(&l, 0xa5, sizeof l);
    memset(&r, 0xa5, sizeof r);
    memset(&s, 0xa5, sizeof s);
    memset(&e, 0xa5, sizeof e);
    memset(&c, 0xa5, sizeof c);
    assert_int_equal(weft_lock_init_shared(&l), 0);
    assert_int_equal(weft_rlock_init_shared(&r), 0);
    assert_int_equal(weft_semaphore_init_shared(&s, 1, false), 0);
    assert_int_equal(weft_event_init_shared(&e), 0);
    assert_int_equal(weft_lock_init_shared(&lr), 0);
    memset(&c, 0xa5, sizeof c);
    assert_int_equal(weft_condition_init_shared(&c, NULL, NULL), 0);
    ASSERT_TAIL_ZERO(l);
    ASSERT_TAIL_ZERO(r);
    ASSERT_TAIL_ZERO(s);
    ASSERT_TAIL_ZERO(e);
    ASSERT_TAIL_ZERO(c);
    ASSERT_TAIL_ZERO(c.own_);
    assert_int_equal(weft_condition_destroy(&c), 0);
    assert_int_equal(weft_lock_destroy(&lr), 0);
    assert_int_equal(weft_event_destroy(&e), 0);
    assert_int_equal(weft_semaphore_destroy(&s), 0);
    assert_int_equal(weft_rlock_destroy(&r), 0);
    assert_int_equal(weft_lock_destroy(&l), 0);
}

/* The initializers outside weft/sync.h (those of sync.h: tests/sync/test_static_init.c). */
static weft_value_t counter = WEFT_VALUE_INIT(40);

static void value_initializer_is_init(void **state)
{
    (void)state;
    int64_t got = 0;
    assert_int_equal(weft_value_add(&counter, 2, &got), 0);
    assert_int_equal(got, 42);
    assert_int_equal(weft_value_get(&counter, &got), 0);
    assert_int_equal(got, 42);
    weft_value_t local = WEFT_VALUE_INIT(-5);
    assert_int_equal(weft_value_get(&local, &got), 0);
    assert_int_equal(got, -5);
    ASSERT_TAIL_ZERO(local);
    assert_int_equal(weft_value_destroy(&local), 0);
    assert_int_equal(weft_value_destroy(&counter), 0);
    assert_int_equal(weft_value_destroy(NULL), WEFT_EINVAL);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(public_struct_sizes_are_fixed),
    WEFT_TEST(init_zeroes_the_reserved_tail),
    WEFT_TEST(value_initializer_is_init),
};
WEFT_TEST_MAIN(cases)
