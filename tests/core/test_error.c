/* Error codes: every code has a name and a message; unknown codes are reported as such. */
#include "weft_test.h"

#include <string.h>

static void strerror_names_every_code(void **state)
{
    (void)state;
#define XX(name, msg)                                                                              \
    assert_string_equal(weft_strerror(WEFT_##name), msg);                                          \
    assert_string_equal(weft_err_name(WEFT_##name), "WEFT_" #name);
    WEFT_ERRNO_MAP(XX)
#undef XX
#define XX(name, value, msg)                                                                       \
    assert_string_equal(weft_strerror(WEFT_##name), msg);                                          \
    assert_int_equal(WEFT_##name, value);
    WEFT_OWN_ERROR_MAP(XX)
#undef XX
}

static void errno_codes_are_negated_errno(void **state)
{
    (void)state;
    assert_int_equal(WEFT_EINVAL, -EINVAL);
    assert_int_equal(WEFT_ETIMEDOUT, -ETIMEDOUT);
    assert_int_equal(WEFT_ECANCELED, -ECANCELED);
    assert_true(WEFT_EBROKEN < -4000);
}

static void strerror_unknown_code(void **state)
{
    (void)state;
    assert_string_equal(weft_strerror(-123456), "unknown error");
    assert_string_equal(weft_err_name(-123456), "WEFT_UNKNOWN");
    assert_string_equal(weft_strerror(0), "success");
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(strerror_names_every_code),
    WEFT_TEST(errno_codes_are_negated_errno),
    WEFT_TEST(strerror_unknown_code),
};
WEFT_TEST_MAIN(cases)
