/* Clock and deadlines: timeouts in seconds as in Python (WEFT_FOREVER blocks, 0 and any other
 * negative value poll). */
#include "weft_test.h"

#include <float.h>
#include <math.h>

static void monotonic_never_goes_back(void **state)
{
    (void)state;
    int64_t a = weft_time_monotonic_ns();
    for (int i = 0; i < 1000; i++) {
        int64_t b = weft_time_monotonic_ns();
        assert_true(b >= a);
        a = b;
    }
    double s = weft_time_monotonic();
    assert_true(fabs(s - (double)weft_time_monotonic_ns() / 1e9) < 1.0);
}

/* WEFT_FOREVER is a constant expression (usable in a static initialiser), -infinity. */
static const double forever_constant = WEFT_FOREVER;

static void deadline_forever_is_no_deadline(void **state)
{
    (void)state;
    weft_deadline_t d = 0;
    assert_true(isinf(forever_constant) && forever_constant < 0);
    assert_int_equal(weft_deadline_after(WEFT_FOREVER, &d), 0);
    assert_true(d == WEFT_NO_DEADLINE);
    assert_true(weft_deadline_remaining(WEFT_NO_DEADLINE) == WEFT_FOREVER);
}

/* Only WEFT_FOREVER blocks: any other negative timeout (a `deadline - now` that went
 * negative) is a deadline already passed, as 0 is. */
static void deadline_negative_is_already_passed(void **state)
{
    (void)state;
    double negatives[] = {-0.5, -1.0, -1e-12, -1e300, -DBL_MAX};
    for (size_t i = 0; i < sizeof negatives / sizeof negatives[0]; i++) {
        weft_deadline_t d = WEFT_NO_DEADLINE;
        int64_t before = weft_time_monotonic_ns();
        assert_int_equal(weft_deadline_after(negatives[i], &d), 0);
        assert_true(d >= before && d <= weft_time_monotonic_ns());
        assert_true(weft_deadline_remaining(d) == 0.0);
    }
}

static void deadline_zero_is_now(void **state)
{
    (void)state;
    weft_deadline_t d;
    int64_t before = weft_time_monotonic_ns();
    assert_int_equal(weft_deadline_after(0, &d), 0);
    assert_true(d >= before && d <= weft_time_monotonic_ns());
    assert_true(weft_deadline_remaining(d) == 0.0);
}

static void deadline_positive_adds_timeout(void **state)
{
    (void)state;
    weft_deadline_t d;
    int64_t before = weft_time_monotonic_ns();
    assert_int_equal(weft_deadline_after(1.5, &d), 0);
    assert_true(d >= before + 1500000000LL);
    double left = weft_deadline_remaining(d);
    assert_true(left > 1.0 && left <= 1.5);
}

static void deadline_huge_saturates(void **state)
{
    (void)state;
    weft_deadline_t d;
    assert_int_equal(weft_deadline_after(1e300, &d), 0);
    assert_true(d == WEFT_NO_DEADLINE);
    assert_int_equal(weft_deadline_after(INFINITY, &d), 0);
    assert_true(d == WEFT_NO_DEADLINE);
}

static void deadline_rejects_nan_and_null(void **state)
{
    (void)state;
    weft_deadline_t d;
    assert_int_equal(weft_deadline_after(NAN, &d), WEFT_EINVAL);
    assert_int_equal(weft_deadline_after(1.0, NULL), WEFT_EINVAL);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(monotonic_never_goes_back),           WEFT_TEST(deadline_forever_is_no_deadline),
    WEFT_TEST(deadline_negative_is_already_passed), WEFT_TEST(deadline_zero_is_now),
    WEFT_TEST(deadline_positive_adds_timeout),      WEFT_TEST(deadline_huge_saturates),
    WEFT_TEST(deadline_rejects_nan_and_null),
};
WEFT_TEST_MAIN(cases)
