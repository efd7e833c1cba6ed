/* Error codes: every code has a name and a message; unknown codes are reported as such. */
#include "weft_test.h"

#include "core/core_internal.h" /* weft__errno, the converter */

#include <string.h>

static void strerror_names_every_code(void **state)
{
    (void)state;
#define XX(name, msg)                                                                              \
    assert_string_equal(weft_error_message(WEFT_##name), msg);                                     \
    assert_string_equal(weft_error_name(WEFT_##name), "WEFT_" #name);
    WEFT_ERRNO_MAP(XX)
#undef XX
#define XX(name, value, msg)                                                                       \
    assert_string_equal(weft_error_message(WEFT_##name), msg);                                     \
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
    assert_int_equal(WEFT_ETASKFAILED, -4004); /* weft/scope.h: join's "a task failed" */
    assert_string_equal(weft_error_name(WEFT_ETASKFAILED), "WEFT_ETASKFAILED");
}

static void strerror_unknown_code(void **state)
{
    (void)state;
    assert_string_equal(weft_error_message(-123456), "unknown error");
    assert_string_equal(weft_error_name(-123456), "WEFT_UNKNOWN");
    assert_string_equal(weft_error_message(0), "success");
}

/* Every errno goes through one converter (weft__errno) to a named code: the errnos weft's
 * Linux calls can return keep their number (WEFT_ELOOP == -ELOOP), anything else becomes the
 * one catch-all WEFT_ESYSTEM; never a raw number weft_error_message cannot name. */
static void errno_converter_is_total(void **state)
{
    (void)state;
    for (int e = 1; e <= 4095; e++) {
        int code = weft__errno(e);
        assert_true(code < 0);
        assert_string_not_equal(weft_error_name(code), "WEFT_UNKNOWN");
        assert_string_not_equal(weft_error_message(code), "unknown error");
    }
    int named[] = {ELOOP, ENAMETOOLONG,  ENOTDIR, EISDIR, ENFILE,
                   EROFS, EADDRNOTAVAIL, ENOBUFS, EMFILE, EINVAL};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        assert_int_equal(weft__errno(named[i]), -named[i]);
    assert_int_equal(weft__errno(4000), WEFT_ESYSTEM);
    assert_int_equal(weft__errno(0), WEFT_ESYSTEM);
    assert_int_equal(weft__errno(-5), WEFT_ESYSTEM);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(errno_converter_is_total),
    WEFT_TEST(strerror_names_every_code),
    WEFT_TEST(errno_codes_are_negated_errno),
    WEFT_TEST(strerror_unknown_code),
};
WEFT_TEST_MAIN(cases)
