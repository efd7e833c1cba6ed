/* Clock and deadlines: timeouts in seconds as in Python (WEFT_FOREVER blocks, 0 and any other
 * negative value poll); weft_deadline_t is opaque, so these cases read it only through
 * weft_deadline_remaining, as a user can. */
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

static void deadline_after_forever_is_never(void **state)
{
    (void)state;
    weft_deadline_t d;
    assert_true(isinf(forever_constant) && forever_constant < 0);
    assert_int_equal(weft_deadline_after(WEFT_FOREVER, &d), 0);
    assert_true(weft_deadline_remaining(d) == WEFT_FOREVER);
}

/* Only WEFT_FOREVER blocks: any other negative timeout (a `deadline - now` that went
 * negative) is a deadline already passed, as 0 is. */
static void deadline_after_negative_is_already_passed(void **state)
{
    (void)state;
    double negatives[] = {-0.5, -1.0, -1e-12, -1e300, -DBL_MAX};
    for (size_t i = 0; i < sizeof negatives / sizeof negatives[0]; i++) {
        weft_deadline_t d;
        assert_int_equal(weft_deadline_after(negatives[i], &d), 0);
        assert_true(weft_deadline_remaining(d) == 0.0);
    }
}

static void deadline_after_zero_is_now(void **state)
{
    (void)state;
    weft_deadline_t d;
    assert_int_equal(weft_deadline_after(0, &d), 0);
    assert_true(weft_deadline_remaining(d) == 0.0);
}

static void deadline_after_positive_adds_timeout(void **state)
{
    (void)state;
    weft_deadline_t d;
    assert_int_equal(weft_deadline_after(1.5, &d), 0);
    double left = weft_deadline_remaining(d);
    assert_true(left > 1.0 && left <= 1.5);
}

static void deadline_after_huge_saturates_to_never(void **state)
{
    (void)state;
    weft_deadline_t d;
    assert_int_equal(weft_deadline_after(1e300, &d), 0);
    assert_true(weft_deadline_remaining(d) == WEFT_FOREVER);
    assert_int_equal(weft_deadline_after(INFINITY, &d), 0);
    assert_true(weft_deadline_remaining(d) == WEFT_FOREVER);
}

static void deadline_after_rejects_nan_and_null(void **state)
{
    (void)state;
    weft_deadline_t d;
    assert_int_equal(weft_deadline_after(5, &d), 0);
    assert_int_equal(weft_deadline_after(NAN, &d), WEFT_EINVAL);
    assert_true(weft_deadline_remaining(d) > 4); /* unchanged */
    assert_int_equal(weft_deadline_after(1.0, NULL), WEFT_EINVAL);
}

/* A deadline is a plain value: copies are equal, and moving one leaves the other. */
static void deadline_is_a_copyable_value(void **state)
{
    (void)state;
    weft_deadline_t a, b;
    assert_int_equal(sizeof(weft_deadline_t), 8);
    assert_int_equal(weft_deadline_after(10, &a), 0);
    b = a;
    assert_int_equal(weft_deadline_add(&b, 20), 0);
    double la = weft_deadline_remaining(a), lb = weft_deadline_remaining(b);
    assert_true(la > 9 && la <= 10);
    assert_true(lb - la > 19.9 && lb - la < 20.1);
}

/* The drift-free period: next = previous deadline + period, whatever time the caller lost. */
static void deadline_add_moves_by_seconds(void **state)
{
    (void)state;
    weft_deadline_t d;
    assert_int_equal(weft_deadline_after(1, &d), 0);
    assert_int_equal(weft_deadline_add(&d, 2.5), 0);
    double left = weft_deadline_remaining(d);
    assert_true(left > 3.0 && left <= 3.5);
    assert_int_equal(weft_deadline_add(&d, -2), 0);
    left = weft_deadline_remaining(d);
    assert_true(left > 1.0 && left <= 1.5);
    assert_int_equal(weft_deadline_add(&d, -10), 0); /* earlier than now: already passed */
    assert_true(weft_deadline_remaining(d) == 0.0);
    assert_int_equal(weft_deadline_add(&d, -DBL_MAX), 0); /* before the clock's origin */
    assert_true(weft_deadline_remaining(d) == 0.0);
    assert_int_equal(weft_deadline_add(&d, 0), 0);
    assert_true(weft_deadline_remaining(d) == 0.0);
}

static void deadline_add_saturates_to_never(void **state)
{
    (void)state;
    double huge[] = {1e300, DBL_MAX, INFINITY, WEFT_FOREVER};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        weft_deadline_t d;
        assert_int_equal(weft_deadline_after(1, &d), 0);
        assert_int_equal(weft_deadline_add(&d, huge[i]), 0);
        assert_true(weft_deadline_remaining(d) == WEFT_FOREVER);
    }
    /* Never stays never, whatever is added. */
    weft_deadline_t never;
    assert_int_equal(weft_deadline_after(WEFT_FOREVER, &never), 0);
    assert_int_equal(weft_deadline_add(&never, -1e300), 0);
    assert_true(weft_deadline_remaining(never) == WEFT_FOREVER);
}

static void deadline_add_rejects_nan_and_null(void **state)
{
    (void)state;
    weft_deadline_t d;
    assert_int_equal(weft_deadline_after(5, &d), 0);
    assert_int_equal(weft_deadline_add(&d, NAN), WEFT_EINVAL);
    double left = weft_deadline_remaining(d);
    assert_true(left > 4 && left <= 5); /* unchanged */
    assert_int_equal(weft_deadline_add(NULL, 1), WEFT_EINVAL);
}

/* A forged deadline far in the past (the field is private, but C cannot stop a write) is
 * passed: remaining is 0, not an overflowed ~292 years (UBSan flagged the subtraction). */
static void deadline_remaining_of_a_forged_past_deadline_is_zero(void **state)
{
    (void)state;
    weft_deadline_t d = {.at_ns_ = INT64_MIN};
    assert_true(weft_deadline_remaining(d) == 0.0);
    d.at_ns_ = INT64_MIN + 1;
    assert_true(weft_deadline_remaining(d) == 0.0);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(monotonic_never_goes_back),
    WEFT_TEST(deadline_after_forever_is_never),
    WEFT_TEST(deadline_after_negative_is_already_passed),
    WEFT_TEST(deadline_after_zero_is_now),
    WEFT_TEST(deadline_after_positive_adds_timeout),
    WEFT_TEST(deadline_after_huge_saturates_to_never),
    WEFT_TEST(deadline_after_rejects_nan_and_null),
    WEFT_TEST(deadline_is_a_copyable_value),
    WEFT_TEST(deadline_add_moves_by_seconds),
    WEFT_TEST(deadline_add_saturates_to_never),
    WEFT_TEST(deadline_add_rejects_nan_and_null),
    WEFT_TEST(deadline_remaining_of_a_forged_past_deadline_is_zero),
};
WEFT_TEST_MAIN(cases)
