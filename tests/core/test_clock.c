/* Clock and deadlines: timeouts in seconds as in Python (negative blocks, 0 polls). */
#include "weft_test.h"

#include <math.h>

static void monotonic_never_goes_back(void **state)
{
    (void)state;
    int64_t a = weft_monotonic_ns();
    for (int i = 0; i < 1000; i++) {
        int64_t b = weft_monotonic_ns();
        assert_true(b >= a);
        a = b;
    }
    double s = weft_monotonic();
    assert_true(fabs(s - (double)weft_monotonic_ns() / 1e9) < 1.0);
}

static void deadline_negative_is_forever(void **state)
{
    (void)state;
    weft_deadline_t d = 0;
    assert_int_equal(weft_deadline(WEFT_FOREVER, &d), 0);
    assert_true(d == WEFT_NO_DEADLINE);
    assert_int_equal(weft_deadline(-0.5, &d), 0);
    assert_true(d == WEFT_NO_DEADLINE);
    assert_true(weft_deadline_remaining(WEFT_NO_DEADLINE) < 0);
}

static void deadline_zero_is_now(void **state)
{
    (void)state;
    weft_deadline_t d;
    int64_t before = weft_monotonic_ns();
    assert_int_equal(weft_deadline(0, &d), 0);
    assert_true(d >= before && d <= weft_monotonic_ns());
    assert_true(weft_deadline_remaining(d) == 0.0);
}

static void deadline_positive_adds_timeout(void **state)
{
    (void)state;
    weft_deadline_t d;
    int64_t before = weft_monotonic_ns();
    assert_int_equal(weft_deadline(1.5, &d), 0);
    assert_true(d >= before + 1500000000LL);
    double left = weft_deadline_remaining(d);
    assert_true(left > 1.0 && left <= 1.5);
}

static void deadline_huge_saturates(void **state)
{
    (void)state;
    weft_deadline_t d;
    assert_int_equal(weft_deadline(1e300, &d), 0);
    assert_true(d == WEFT_NO_DEADLINE);
    assert_int_equal(weft_deadline(INFINITY, &d), 0);
    assert_true(d == WEFT_NO_DEADLINE);
}

static void deadline_rejects_nan_and_null(void **state)
{
    (void)state;
    weft_deadline_t d;
    assert_int_equal(weft_deadline(NAN, &d), WEFT_EINVAL);
    assert_int_equal(weft_deadline(1.0, NULL), WEFT_EINVAL);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(monotonic_never_goes_back), WEFT_TEST(deadline_negative_is_forever),
    WEFT_TEST(deadline_zero_is_now),      WEFT_TEST(deadline_positive_adds_timeout),
    WEFT_TEST(deadline_huge_saturates),   WEFT_TEST(deadline_rejects_nan_and_null),
};
WEFT_TEST_MAIN(cases)
