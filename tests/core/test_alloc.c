/* The allocation hook: all-or-nothing replacement, reset with four NULLs, and the OOM loop
 * of the test harness driving it. */
#include "weft_test.h"

#include "core/core_internal.h"

#include <stdlib.h>

static void set_allocator_rejects_partial(void **state)
{
    (void)state;
    assert_int_equal(weft_allocator_set(malloc, NULL, calloc, free), WEFT_EINVAL);
    assert_int_equal(weft_allocator_set(NULL, realloc, NULL, NULL), WEFT_EINVAL);
}

static _Atomic int custom_calls;
static void *custom_malloc(size_t n)
{
    custom_calls++;
    return malloc(n);
}

static void set_allocator_routes_weft_allocations(void **state)
{
    (void)state;
    custom_calls = 0;
    assert_int_equal(weft_allocator_set(custom_malloc, realloc, calloc, free), 0);
    void *p = weft__malloc(16);
    assert_non_null(p);
    weft__free(p);
    assert_int_equal(custom_calls, 1);
    /* Back to libc, then back to the harness's counting allocator for the leak guard. */
    assert_int_equal(weft_allocator_set(NULL, NULL, NULL, NULL), 0);
    p = weft__malloc(16);
    weft__free(p);
    assert_int_equal(custom_calls, 1);
    weft_test_install_allocator();
}

static void failing_allocation_is_reported(void **state)
{
    (void)state;
    weft_test_fail_alloc(1, 0);
    void *p = weft__malloc(8);
    weft_test_fail_alloc(0, 0);
    assert_null(p);
    p = weft__malloc(8);
    assert_non_null(p);
    weft__free(p);
}

/* A body that needs three allocations: the loop must fail it at 1, 2 and 3, see no leak,
 * and report 3 for the run that succeeded. */
static int three_allocations(void *ctx)
{
    (void)ctx;
    void *a = weft__malloc(8), *b = NULL, *c = NULL;
    if (!a) goto fail;
    if (!(b = weft__calloc(2, 8))) goto fail;
    if (!(c = weft__realloc(NULL, 8))) goto fail;
    weft__free(c);
    weft__free(b);
    weft__free(a);
    return 0;
fail:
    weft__free(b);
    weft__free(a);
    return WEFT_ENOMEM;
}

static void oom_loop_counts_allocations(void **state)
{
    (void)state;
    assert_int_equal(weft_test_oom(three_allocations, NULL), 3);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(set_allocator_rejects_partial),
    WEFT_TEST(set_allocator_routes_weft_allocations),
    WEFT_TEST(failing_allocation_is_reported),
    WEFT_TEST(oom_loop_counts_allocations),
};
WEFT_TEST_MAIN(cases)
