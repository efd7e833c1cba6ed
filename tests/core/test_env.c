/*
 * The environment: weft reads its settings (WEFT_PATCH, WEFT_POLLER, WEFT_STACK_SIZE,
 * WEFT_WATCHDOG, WEFT_SPIN_NS) as glibc's secure_getenv does, so in a secure-execution
 * process (setuid/setgid, file capabilities: the kernel sets AT_SECURE) an unprivileged user's
 * environment cannot switch on libc interposition or change weft's settings. CPython's
 * PYTHON* variables under -E / sys.flags.ignore_environment are the analogue.
 *
 * An unprivileged test cannot start a process with AT_SECURE set, so these cases point the
 * helper's auxiliary-vector seam (weft__getauxval) at a fake that reports AT_SECURE = 1, and
 * check both the helper and a real call site (weft_poller_name reads WEFT_POLLER each time).
 */
#include "weft_test.h"

#include "core/core_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

static unsigned long secure_auxval(unsigned long type)
{
    return type == AT_SECURE ? 1 : getauxval(type);
}

/* The helper answers as getenv in an ordinary process and NULL in a secure-execution one. */
static void getenv_hidden_in_secure_execution(void **state)
{
    (void)state;
    assert_int_equal(getauxval(AT_SECURE), 0); /* this test itself runs unprivileged */
    assert_int_equal(setenv("WEFT_TEST_ENV", "on", 1), 0);
    assert_string_equal(weft__getenv("WEFT_TEST_ENV"), "on");
    assert_null(weft__getenv("WEFT_TEST_ENV_UNSET"));
    weft__getauxval = secure_auxval;
    const char *seen = weft__getenv("WEFT_TEST_ENV");
    weft__getauxval = getauxval;
    assert_null(seen);
    assert_string_equal(weft__getenv("WEFT_TEST_ENV"), "on");
    unsetenv("WEFT_TEST_ENV");
}

/* A real call site goes through the helper: WEFT_POLLER picks the poller of hubs to come in an
 * ordinary process, and is ignored (the default stays) in a secure-execution one. */
static void poller_env_ignored_in_secure_execution(void **state)
{
    (void)state;
    assert_int_equal(weft_poller_set(NULL), 0);
    assert_int_equal(setenv("WEFT_POLLER", "poll", 1), 0);
    assert_string_equal(weft_poller_name(), "poll");
    weft__getauxval = secure_auxval;
    const char *name = weft_poller_name();
    weft__getauxval = getauxval;
    assert_string_not_equal(name, "poll");
    unsetenv("WEFT_POLLER");
    assert_string_equal(name, weft_poller_name()); /* the default */
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(getenv_hidden_in_secure_execution),
    WEFT_TEST(poller_env_ignored_in_secure_execution),
};

WEFT_TEST_MAIN(cases)
