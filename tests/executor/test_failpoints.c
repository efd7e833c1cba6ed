/*
 * test_failpoints.c — the failpoint loop (weft_test_faults, src/core/sys_internal.h) over the
 * executors: a thread pool and a process pool each made, given one task, shut down and
 * released while each system-call site they reach fails once and persistently. A failure
 * must come back as a clean WEFT_E* code (from create, submit, or the task's future) and
 * leave no thread, child, fd or allocation behind.
 */
#include "weft_test.h"

#include "core/sys_internal.h"

static int return_arg(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static int thread_pool_body(void *ctx)
{
    (void)ctx;
    weft_executor_t *ex;
    int rc = weft_thread_pool_create(2, NULL, &ex);
    if (rc) return rc;
    weft_future_t *f;
    rc = weft_executor_submit(ex, return_arg, &rc, &f);
    if (rc == 0) {
        void *value = NULL;
        int code = -1;
        assert_int_equal(weft_future_error(f, 30, &code), 0);
        rc = code;
        if (rc == 0) {
            assert_int_equal(weft_future_result(f, 0, &value), 0);
            assert_ptr_equal(value, &rc);
        }
        assert_int_equal(weft_future_release(f), 0);
    }
    assert_int_equal(weft_executor_shutdown(ex, true, false, 30), 0);
    assert_int_equal(weft_executor_release(ex), 0);
    return rc;
}

static void thread_pool_under_faults(void **state)
{
    (void)state;
    assert_true(weft_test_faults(WEFT__SITE_PTHREAD_CREATE, thread_pool_body, NULL) >= 1);
    weft_test_faults(WEFT__SITE_FUTEX_WAIT, thread_pool_body, NULL);
}

static int nothing(const void *arg, size_t len, void **result, size_t *result_len)
{
    (void)arg;
    (void)len;
    *result = NULL;
    *result_len = 0;
    return 0;
}

static int process_pool_body(void *ctx)
{
    (void)ctx;
    weft_executor_t *ex;
    int rc = weft_process_pool_create(1, NULL, &ex);
    if (rc) return rc;
    weft_future_t *f;
    rc = weft_process_pool_submit(ex, nothing, "x", 1, &f);
    if (rc == 0) {
        int code = -1;
        assert_int_equal(weft_future_error(f, 30, &code), 0);
        rc = code;
        assert_int_equal(weft_future_release(f), 0);
    }
    assert_int_equal(weft_executor_shutdown(ex, true, false, 30), 0);
    assert_int_equal(weft_executor_release(ex), 0);
    return rc;
}

static void process_pool_under_faults(void **state)
{
    (void)state;
    static const int sites[] = {WEFT__SITE_EVENTFD,    WEFT__SITE_FORK,
                                WEFT__SITE_SOCKETPAIR, WEFT__SITE_PTHREAD_CREATE,
                                WEFT__SITE_PIDFD_OPEN, WEFT__SITE_FUTEX_WAIT};
    for (size_t i = 0; i < sizeof sites / sizeof sites[0]; i++) {
        long calls = weft_test_faults(sites[i], process_pool_body, NULL);
        print_message("%s: %ld calls\n", weft__failpoint_name(sites[i]), calls);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest cases[] = {
        WEFT_TEST(thread_pool_under_faults),
        WEFT_TEST(process_pool_under_faults),
    };
    return weft_test_main(cases, sizeof cases / sizeof cases[0], argc, argv);
}
