/* The version: the macros of weft/version.h, the running library's answer, and their
 * agreement (the CMake project VERSION is checked against the macros by
 * build.api_version_matches_cmake). */
#include "weft_test.h"

#include <stdio.h>
#include <string.h>

static void version_string_is_major_minor_patch(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR,
             WEFT_VERSION_PATCH);
    assert_string_equal(WEFT_VERSION_STRING, want);
    assert_string_equal(weft_version_string(), want);
    /* A static string: the same pointer every time. */
    assert_ptr_equal(weft_version_string(), weft_version_string());
}

static void version_number_encodes_the_three_parts(void **state)
{
    (void)state;
    int n = weft_version_number();
    assert_int_equal(n, WEFT_VERSION_NUMBER);
    assert_int_equal(n / 1000000, WEFT_VERSION_MAJOR);
    assert_int_equal(n / 1000 % 1000, WEFT_VERSION_MINOR);
    assert_int_equal(n % 1000, WEFT_VERSION_PATCH);
    /* Comparable at compile time, as the header says. */
#if WEFT_VERSION_NUMBER < 1000000
#error "WEFT_VERSION_NUMBER below 1.0.0"
#endif
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(version_string_is_major_minor_patch),
    WEFT_TEST(version_number_encodes_the_three_parts),
};
WEFT_TEST_MAIN(cases)
