/*
 * Futures on their own (the promise side: new, set_running, set_result, set_error), their
 * states, result with timeouts, cancel, callbacks, and the waits on many: weft_future_wait and
 * as_completed. Mirrors CPython's Lib/test/test_concurrent_futures/test_future.py
 * (FutureTests), test_wait.py and test_as_completed.py; each case names the one it follows.
 * Futures here are completed by plain pthreads, so no executor is involved.
 */
#include "weft_test.h"

#include "executor/executor_internal.h" /* white-box: a future's wait queue and listeners */
#include "wait/wait_internal.h"

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ITEM(i) ((void *)(intptr_t)(i))

static weft_future_t *pending(void)
{
    weft_future_t *f;
    assert_int_equal(weft_future_create(&f), 0);
    assert_non_null(f);
    return f;
}

static weft_future_t *finished(intptr_t value)
{
    weft_future_t *f = pending();
    assert_int_equal(weft_future_set_result(f, ITEM(value)), 0);
    return f;
}

static weft_future_t *failed(int code, const char *message)
{
    weft_future_t *f = pending();
    assert_int_equal(weft_future_set_error(f, code, message), 0);
    return f;
}

static weft_future_t *cancelled(void)
{
    weft_future_t *f = pending();
    assert_int_equal(weft_future_cancel(f), 0);
    return f;
}

/* Completes a future from another thread after that thread is started. */
typedef struct later {
    weft_future_t *f;
    weft_event_t go;
    int code; /* 0: set_result(value) */
    intptr_t value;
    pthread_t tid;
} later_t;

static void *later_main(void *p)
{
    later_t *l = p;
    weft_event_wait(&l->go, WEFT_FOREVER);
    if (l->code)
        weft_future_set_error(l->f, l->code, "later");
    else
        weft_future_set_result(l->f, ITEM(l->value));
    return NULL;
}

static void later_start(later_t *l, weft_future_t *f, int code, intptr_t value)
{
    *l = (later_t){.f = f, .code = code, .value = value};
    weft_event_init(&l->go);
    l->tid = weft_test_start(later_main, l);
}

static void later_go_join(later_t *l)
{
    weft_event_set(&l->go);
    weft_test_join(l->tid);
}

/* A thread blocked in weft_future_result; the test waits until it is parked on the future. */
typedef struct waiter {
    weft_future_t *f;
    int rc;
    void *value;
    pthread_t tid;
} waiter_t;

static void *waiter_main(void *p)
{
    waiter_t *w = p;
    w->rc = weft_future_result(w->f, WEFT_FOREVER, &w->value);
    return NULL;
}

static void waiter_start_parked(waiter_t *w, weft_future_t *f)
{
    *w = (waiter_t){.f = f, .rc = 1};
    w->tid = weft_test_start(waiter_main, w);
    weft_test_wait_queued(&f->waiters, 1);
}

/* Waits (yielding, never sleeping) until a listener of weft_future_wait / as_completed hangs on f:
 * then the waiting caller is past its own checks and blocks on f's completion. */
static void wait_listened(weft_future_t *f)
{
    int64_t give_up = weft_time_monotonic_ns() + 10 * 1000000000LL;
    for (;;) {
        weft__waitq_lock(&f->waiters);
        bool hooked = f->listeners != NULL;
        weft__waitq_unlock(&f->waiters);
        if (hooked) return;
        assert_true(weft_time_monotonic_ns() < give_up);
        sched_yield();
    }
}

/* ---- states and results ---------------------------------------------------------------- */

/* FutureTests.test_repr / test_done / test_running / test_cancelled: the state tests of a
 * future in each state. */
static void states_of_each_kind(void **state)
{
    (void)state;
    weft_future_t *p = pending(), *r = pending(), *fin = finished(1), *c = cancelled(),
                  *e = failed(WEFT_EIO, NULL);
    assert_int_equal(weft_future_set_running(r), 0);
    assert_int_equal(weft_future_state(p), WEFT_FUTURE_PENDING);
    assert_int_equal(weft_future_state(r), WEFT_FUTURE_RUNNING);
    assert_int_equal(weft_future_state(fin), WEFT_FUTURE_FINISHED);
    assert_int_equal(weft_future_state(c), WEFT_FUTURE_CANCELLED);
    assert_int_equal(weft_future_state(e), WEFT_FUTURE_FINISHED);
    assert_false(weft_future_done(p));
    assert_false(weft_future_done(r));
    assert_true(weft_future_done(fin));
    assert_true(weft_future_done(c));
    assert_true(weft_future_running(r));
    assert_false(weft_future_running(p));
    assert_true(weft_future_cancelled(c));
    assert_false(weft_future_cancelled(fin));
    weft_future_t *all[] = {p, r, fin, c, e};
    for (int i = 0; i < 5; i++) weft_future_release(all[i]);
}

/* test_result_with_success / test_result_with_timeout: result of a finished future at once; of
 * a pending one, TimeoutError (WEFT_ETIMEDOUT) after the timeout; of a cancelled one,
 * CancelledError (WEFT_ECANCELED); of a failed one, its error. */
static void result_of_each_kind(void **state)
{
    (void)state;
    weft_future_t *p = pending(), *fin = finished(42), *c = cancelled(),
                  *e = failed(WEFT_EPIPE, "broken");
    void *v = ITEM(1);
    assert_int_equal(weft_future_result(fin, 0, &v), 0);
    assert_ptr_equal(v, ITEM(42));
    assert_int_equal(weft_future_result(fin, WEFT_FOREVER, NULL), 0);
    assert_int_equal(weft_future_result(p, 0, &v), WEFT_ETIMEDOUT);
    assert_null(v);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_future_result(p, 0.05, &v), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.04);
    assert_int_equal(weft_future_result(c, 0, &v), WEFT_ECANCELED);
    assert_int_equal(weft_future_result(e, 0, &v), WEFT_EPIPE);
    assert_null(v);
    weft_future_release(p);
    weft_future_release(fin);
    weft_future_release(c);
    weft_future_release(e);
}

/* The task's error of a future that is done, asked without waiting; fails the case if f is
 * not done. */
static int error_of(weft_future_t *f)
{
    int code = INT32_MIN;
    assert_int_equal(weft_future_error(f, 0, &code), 0);
    return code;
}

/* test_exception_with_success / test_exception_with_timeout: error() of each kind, polled:
 * 0 with the code (0 for success, the task's code, WEFT_ECANCELED), WEFT_ETIMEDOUT when not
 * done (and *code untouched). */
static void error_and_message(void **state)
{
    (void)state;
    weft_future_t *p = pending(), *fin = finished(1), *c = cancelled(),
                  *e = failed(WEFT_EIO, "disk on fire"), *bare = failed(7, NULL);
    int code = 12345;
    assert_int_equal(weft_future_error(p, 0, &code), WEFT_ETIMEDOUT);
    assert_int_equal(code, 12345);
    assert_int_equal(error_of(fin), 0);
    assert_int_equal(error_of(c), WEFT_ECANCELED);
    assert_int_equal(error_of(e), WEFT_EIO);
    assert_int_equal(error_of(bare), 7);                /* any nonzero code, even a positive one */
    assert_int_equal(weft_future_error(e, 0, NULL), 0); /* code may be NULL */
    assert_string_equal(weft_future_error_message(e), "disk on fire");
    assert_null(weft_future_error_message(bare));
    assert_null(weft_future_error_message(fin));
    assert_null(weft_future_error_message(p));
    assert_int_equal(weft_future_error(NULL, 0, &code), WEFT_EINVAL);
    assert_int_equal(weft_future_error(fin, NAN, &code), WEFT_EINVAL);
    assert_int_equal(code, 12345);
    /* test_exception_with_timeout (RUNNING_FUTURE): not done yet either; a wait times out. */
    weft_future_t *r = pending();
    assert_int_equal(weft_future_set_running(r), 0);
    assert_int_equal(weft_future_error(r, -1, &code), WEFT_ETIMEDOUT);
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_future_error(r, 0.05, &code), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.04);
    assert_int_equal(code, 12345);
    assert_null(weft_future_error_message(r));
    assert_null(weft_future_error_message(c));
    /* test_multiple_set_exception: the first error and its message stand. */
    assert_int_equal(weft_future_set_error(e, WEFT_EPERM, "second"), WEFT_EALREADY);
    assert_int_equal(error_of(e), WEFT_EIO);
    assert_string_equal(weft_future_error_message(e), "disk on fire");
    weft_future_t *all[] = {p, fin, c, e, bare, r};
    for (int i = 0; i < 6; i++) weft_future_release(all[i]);
}

/* A task that failed with a code weft also uses for "not done" or "timed out" is told apart
 * from a future that is not done: the call's return says whether f is done, *code says how
 * it ended. (Before: weft_future_error(f) returned WEFT_EAGAIN both for a pending future and
 * for one failed with WEFT_EAGAIN.) */
static void error_of_a_task_failed_with_a_wait_code_is_told_from_not_done(void **state)
{
    (void)state;
    weft_future_t *p = pending(), *again = failed(WEFT_EAGAIN, NULL),
                  *timedout = failed(WEFT_ETIMEDOUT, NULL),
                  *canceled = failed(WEFT_ECANCELED, NULL);
    int code = 0;
    assert_int_equal(weft_future_error(p, 0, &code), WEFT_ETIMEDOUT);
    assert_int_equal(weft_future_error(again, 0, &code), 0);
    assert_int_equal(code, WEFT_EAGAIN);
    assert_int_equal(weft_future_error(timedout, 0, &code), 0);
    assert_int_equal(code, WEFT_ETIMEDOUT);
    assert_int_equal(weft_future_error(canceled, WEFT_FOREVER, &code), 0);
    assert_int_equal(code, WEFT_ECANCELED);
    weft_future_release(p);
    weft_future_release(again);
    weft_future_release(timedout);
    weft_future_release(canceled);
}

/* error() waits like result(): blocked in this thread until another thread completes f; a
 * canceled CALLER gets WEFT_ECANCELED (and f is untouched). */
static void error_waits_and_is_cancelable(void **state)
{
    (void)state;
    weft_future_t *f = pending();
    weft__waitctx_t *me = weft__waitctx_current();
    weft__waitctx_cancel(me);
    int code = 12345;
    assert_int_equal(weft_future_error(f, WEFT_FOREVER, &code), WEFT_ECANCELED);
    assert_int_equal(code, 12345);
    weft__waitctx_uncancel(me);
    assert_false(weft_future_done(f));
    later_t l;
    later_start(&l, f, WEFT_EPIPE, 0);
    weft_event_set(&l.go);
    assert_int_equal(weft_future_error(f, WEFT_FOREVER, &code), 0);
    assert_int_equal(code, WEFT_EPIPE);
    weft_test_join(l.tid);
    weft_future_release(f);
}

/* weft_future_result_bytes on futures that hold no bytes: a pointer result is WEFT_EINVAL,
 * a pending one times out, a failed or cancelled one gives its code; outputs always cleared. */
static void result_bytes_of_futures_without_bytes(void **state)
{
    (void)state;
    weft_future_t *p = pending(), *fin = finished(5), *c = cancelled(), *e = failed(WEFT_EIO, NULL);
    const void *data = "x";
    size_t len = 9;
    assert_int_equal(weft_future_result_bytes(fin, 0, &data, &len), WEFT_EINVAL);
    assert_null(data);
    assert_int_equal(len, 0);
    data = "x", len = 9;
    assert_int_equal(weft_future_result_bytes(p, 0, &data, &len), WEFT_ETIMEDOUT);
    assert_null(data);
    assert_int_equal(len, 0);
    assert_int_equal(weft_future_result_bytes(c, 0, &data, &len), WEFT_ECANCELED);
    assert_int_equal(weft_future_result_bytes(e, 0, NULL, NULL), WEFT_EIO);
    assert_int_equal(weft_future_result_bytes(NULL, 0, &data, &len), WEFT_EINVAL);
    assert_int_equal(weft_future_result_bytes(fin, NAN, &data, &len), WEFT_EINVAL);
    weft_future_t *all[] = {p, fin, c, e};
    for (int i = 0; i < 4; i++) weft_future_release(all[i]);
}

/* The user-data slot: NULL at first, set and replaced at any state, kept after completion and
 * cancel, never freed by weft (the leak guard would see a double free or a leak otherwise);
 * NULL handles. */
static void user_data_slot(void **state)
{
    (void)state;
    int a = 1, b = 2;
    weft_future_t *f = pending(), *c = pending();
    assert_null(weft_future_data(f));
    assert_int_equal(weft_future_set_data(f, &a), 0);
    assert_ptr_equal(weft_future_data(f), &a);
    assert_int_equal(weft_future_set_data(f, &b), 0);
    assert_ptr_equal(weft_future_data(f), &b);
    assert_int_equal(weft_future_set_result(f, ITEM(3)), 0);
    assert_ptr_equal(weft_future_data(f), &b);
    assert_int_equal(weft_future_set_data(f, NULL), 0); /* done futures take it too */
    assert_null(weft_future_data(f));
    assert_int_equal(weft_future_set_data(c, &a), 0);
    assert_int_equal(weft_future_cancel(c), 0);
    assert_ptr_equal(weft_future_data(c), &a);
    assert_int_equal(weft_future_set_data(NULL, &a), WEFT_EINVAL);
    assert_null(weft_future_data(NULL));
    /* A heap record stays the caller's: freed here after the future is gone. */
    int *rec = malloc(sizeof *rec);
    assert_non_null(rec);
    assert_int_equal(weft_future_set_data(c, rec), 0);
    weft_future_release(c);
    free(rec);
    weft_future_release(f);
}

/* test_result_with_success / test_exception_with_success: result() calls blocked in other
 * threads (parked on the future, not merely started) all return the value set later; the same
 * for an error and its message. */
static void result_waits_for_another_thread(void **state)
{
    (void)state;
    weft_future_t *f = pending();
    waiter_t w[3];
    for (int i = 0; i < 3; i++) waiter_start_parked(&w[i], f);
    weft_test_wait_queued(&f->waiters, 3);
    assert_int_equal(weft_future_set_result(f, ITEM(99)), 0);
    for (int i = 0; i < 3; i++) {
        weft_test_join(w[i].tid);
        assert_int_equal(w[i].rc, 0);
        assert_ptr_equal(w[i].value, ITEM(99));
    }
    weft_future_release(f);

    f = pending();
    later_t l;
    later_start(&l, f, WEFT_ECONNRESET, 0);
    waiter_start_parked(&w[0], f);
    later_go_join(&l);
    weft_test_join(w[0].tid);
    assert_int_equal(w[0].rc, WEFT_ECONNRESET);
    assert_null(w[0].value);
    assert_string_equal(weft_future_error_message(f), "later");
    weft_future_release(f);
}

/* test_result_with_cancel: a result() blocked in another thread ends with CancelledError
 * (WEFT_ECANCELED) when the future is cancelled; a RUNNING future's result() times out. */
static void result_wakes_on_cancel(void **state)
{
    (void)state;
    weft_future_t *f = pending();
    waiter_t w;
    waiter_start_parked(&w, f);
    assert_int_equal(weft_future_cancel(f), 0);
    weft_test_join(w.tid);
    assert_int_equal(w.rc, WEFT_ECANCELED);
    assert_null(w.value);
    weft_future_release(f);

    f = pending();
    assert_int_equal(weft_future_set_running(f), 0);
    assert_int_equal(weft_future_result(f, 0, NULL), WEFT_ETIMEDOUT);
    assert_int_equal(weft_future_result(f, 0.02, NULL), WEFT_ETIMEDOUT);
    assert_int_equal(weft_future_set_result(f, NULL), 0);
    weft_future_release(f);
}

/* test_cancel: a pending future is cancelled (again: still 0); a running one is not
 * (WEFT_EBUSY); a finished one is not (WEFT_EALREADY). A promise set running by hand has no
 * task to ask to stop. */
static void cancel_by_state(void **state)
{
    (void)state;
    weft_future_t *p = pending(), *r = pending(), *fin = finished(1);
    assert_int_equal(weft_future_cancel(p), 0);
    assert_int_equal(weft_future_cancel(p), 0);
    assert_true(weft_future_cancelled(p));
    assert_int_equal(weft_future_set_running(r), 0);
    assert_int_equal(weft_future_cancel(r), WEFT_EBUSY);
    assert_false(weft_cancel_requested()); /* it did not cancel the caller */
    assert_int_equal(weft_future_state(r), WEFT_FUTURE_RUNNING);
    assert_int_equal(weft_future_cancel(fin), WEFT_EALREADY);
    assert_int_equal(weft_future_set_result(r, ITEM(5)), 0);
    void *v;
    assert_int_equal(weft_future_result(r, 0, &v), 0);
    weft_future_release(p);
    weft_future_release(r);
    weft_future_release(fin);
}

/* test_set_running_or_notify_cancel, test_set_result / test_set_exception on done futures
 * (InvalidStateError): only a pending future can start; only an unfinished one can be
 * completed. */
static void promise_side_state_errors(void **state)
{
    (void)state;
    weft_future_t *c = cancelled(), *fin = finished(1), *r = pending();
    assert_int_equal(weft_future_set_running(c), WEFT_ECANCELED);
    assert_int_equal(weft_future_set_running(fin), WEFT_EALREADY);
    assert_int_equal(weft_future_set_running(r), 0);
    assert_int_equal(weft_future_set_running(r), WEFT_EALREADY);
    assert_int_equal(weft_future_set_result(fin, ITEM(2)), WEFT_EALREADY);
    assert_int_equal(weft_future_set_error(fin, WEFT_EIO, "x"), WEFT_EALREADY);
    assert_int_equal(weft_future_set_result(c, ITEM(2)), WEFT_EALREADY);
    assert_int_equal(weft_future_set_error(r, 0, NULL), WEFT_EINVAL); /* 0 is not an error */
    assert_int_equal(weft_future_set_error(r, WEFT_EIO, "io"), 0);
    assert_int_equal(weft_future_set_result(r, ITEM(3)), WEFT_EALREADY);
    void *v;
    assert_int_equal(weft_future_result(fin, 0, &v), 0);
    assert_ptr_equal(v, ITEM(1)); /* unchanged */
    assert_int_equal(weft_future_result(r, 0, &v), WEFT_EIO);
    weft_future_release(c);
    weft_future_release(fin);
    weft_future_release(r);
}

/* No CPython counterpart (Python raises TypeError/ValueError): every NULL, NaN or unknown
 * return_when is WEFT_EINVAL, with out-pointers cleared, never a crash. */
static void bad_arguments(void **state)
{
    (void)state;
    assert_int_equal(weft_future_create(NULL), WEFT_EINVAL);
    assert_null(weft_future_retain(NULL));
    assert_int_equal(weft_future_release(NULL), WEFT_EINVAL);
    assert_int_equal(weft_future_result(NULL, 0, NULL), WEFT_EINVAL);
    assert_int_equal(weft_future_cancel(NULL), WEFT_EINVAL);
    assert_int_equal(weft_future_set_result(NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_future_set_error(NULL, WEFT_EIO, NULL), WEFT_EINVAL);
    assert_int_equal(weft_future_set_running(NULL), WEFT_EINVAL);
    assert_int_equal(weft_future_add_done_callback(NULL, NULL, NULL), WEFT_EINVAL);
    assert_null(weft_future_error_message(NULL));
    assert_false(weft_future_done(NULL));
    assert_false(weft_future_running(NULL));
    assert_false(weft_future_cancelled(NULL));
    assert_int_equal(weft_future_state(NULL), WEFT_FUTURE_INVALID);
    assert_int_equal(weft_future_release(NULL), WEFT_EINVAL);
    assert_int_equal(weft_as_completed_release(NULL), WEFT_EINVAL);
    weft_future_t *f = pending();
    assert_int_equal(weft_future_add_done_callback(f, NULL, NULL), WEFT_EINVAL);
    assert_int_equal(weft_future_result(f, NAN, NULL), WEFT_EINVAL);
    size_t nd = 9;
    assert_int_equal(weft_future_wait(NULL, 1, WEFT_ALL_COMPLETED, 0, &nd), WEFT_EINVAL);
    assert_int_equal(weft_future_wait(&f, 1, 0, 0, &nd), WEFT_EINVAL);
    assert_int_equal(weft_future_wait(&f, 1, 4, 0, &nd), WEFT_EINVAL);
    assert_int_equal(weft_future_wait(&f, 1, WEFT_ALL_COMPLETED, NAN, &nd), WEFT_EINVAL);
    weft_future_t *with_null[2] = {f, NULL};
    assert_int_equal(weft_future_wait(with_null, 2, WEFT_ALL_COMPLETED, 0, &nd), WEFT_EINVAL);
    weft_as_completed_t *it = (void *)1;
    assert_int_equal(weft_as_completed_create(&f, 1, 0, NULL), WEFT_EINVAL);
    assert_int_equal(weft_as_completed_create(NULL, 1, 0, &it), WEFT_EINVAL);
    assert_null(it);
    assert_int_equal(weft_as_completed_create(with_null, 2, 0, &it), WEFT_EINVAL);
    assert_int_equal(weft_as_completed_create(&f, 1, NAN, &it), WEFT_EINVAL);
    assert_int_equal(weft_as_completed_next(NULL, &f), WEFT_EINVAL);
    assert_int_equal(weft_as_completed_release(NULL), WEFT_EINVAL);
    weft_future_release(f);
}

/* No CPython counterpart (Python collects futures): references: retain adds one, the last release
 * frees (the leak guard checks), and a future can be released by its completer while a waiter holds
 * its own. */
static void references(void **state)
{
    (void)state;
    weft_future_t *f = pending();
    assert_ptr_equal(weft_future_retain(f), f);
    weft_future_release(f);
    assert_int_equal(weft_future_set_result(f, ITEM(1)), 0);
    weft_future_release(f);
}

/* ---- callbacks ------------------------------------------------------------------------ */

typedef struct calls {
    int order[8];
    int n;
    weft_future_t *seen;
} calls_t;

static calls_t *calls_of(void *arg)
{
    return (calls_t *)((intptr_t)arg & ~(intptr_t)7);
}

/* arg packs the calls record (8-aligned) and a callback number in its low 3 bits. */
static int record(weft_future_t *f, void *arg)
{
    calls_t *c = calls_of(arg);
    c->order[c->n++] = (int)((intptr_t)arg & 7);
    c->seen = f;
    return 0;
}

static void *tag(calls_t *c, int n)
{
    return (void *)((intptr_t)c | n);
}

/* test_done_callback_with_result / _with_exception / _with_cancel: callbacks run when the
 * future completes, in the order added, with the future. */
static void callbacks_run_in_order_on_completion(void **state)
{
    (void)state;
    _Alignas(8) calls_t c = {{0}, 0, NULL};
    weft_future_t *f = pending();
    for (int i = 1; i <= 4; i++)
        assert_int_equal(weft_future_add_done_callback(f, record, tag(&c, i)), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(weft_future_set_result(f, ITEM(5)), 0);
    assert_int_equal(c.n, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(c.order[i], i + 1);
    assert_ptr_equal(c.seen, f);
    weft_future_release(f);

    c.n = 0;
    f = pending();
    weft_future_add_done_callback(f, record, tag(&c, 1));
    assert_int_equal(weft_future_cancel(f), 0);
    assert_int_equal(c.n, 1);
    weft_future_release(f);

    c.n = 0;
    f = pending();
    weft_future_add_done_callback(f, record, tag(&c, 1));
    weft_future_set_error(f, WEFT_EIO, NULL);
    assert_int_equal(c.n, 1);
    weft_future_release(f);
}

/* test_done_callback_already_successful / _already_failed / _already_cancelled: a callback
 * added to a done future runs at once, in the caller. */
static void callback_on_done_future_runs_at_once(void **state)
{
    (void)state;
    _Alignas(8) calls_t c = {{0}, 0, NULL};
    weft_future_t *fs[3] = {finished(1), failed(WEFT_EIO, NULL), cancelled()};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(weft_future_add_done_callback(fs[i], record, tag(&c, i)), 0);
        assert_int_equal(c.n, i + 1);
        assert_ptr_equal(c.seen, fs[i]);
        weft_future_release(fs[i]);
    }
}

static _Atomic int reported, reported_code;

static void on_callback_error(weft_future_t *f, int code, void *arg)
{
    (void)f;
    assert_ptr_equal(arg, ITEM(77));
    atomic_fetch_add(&reported, 1);
    atomic_store(&reported_code, code);
}

static int failing_callback(weft_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    return WEFT_EPERM;
}

/* test_done_callback_raises (and _already_done): a failing callback is reported to the
 * handler and the callbacks after it still run. */
static void failing_callback_is_reported_and_others_run(void **state)
{
    (void)state;
    atomic_store(&reported, 0);
    weft_future_set_callback_error_handler(on_callback_error, ITEM(77));
    _Alignas(8) calls_t c = {{0}, 0, NULL};
    weft_future_t *f = pending();
    weft_future_add_done_callback(f, record, tag(&c, 1));
    weft_future_add_done_callback(f, failing_callback, NULL);
    weft_future_add_done_callback(f, record, tag(&c, 2));
    weft_future_set_result(f, NULL);
    assert_int_equal(c.n, 2);
    assert_int_equal(atomic_load(&reported), 1);
    assert_int_equal(atomic_load(&reported_code), WEFT_EPERM);
    assert_int_equal(weft_future_add_done_callback(f, failing_callback, NULL), 0);
    assert_int_equal(atomic_load(&reported), 2);
    weft_future_set_callback_error_handler(NULL, NULL);
    weft_future_release(f);
}

static int release_it(weft_future_t *f, void *arg)
{
    (void)arg;
    weft_future_release(f);
    return 0;
}

static int add_another(weft_future_t *f, void *arg)
{
    return weft_future_add_done_callback(f, record, arg); /* f is done: runs at once */
}

/* No CPython counterpart (a Python callback cannot free its future): a callback may drop the
 * last reference to its future (the rest still run), and may add callbacks to it (they run at
 * once, after it, in order). */
static void callbacks_may_release_or_add(void **state)
{
    (void)state;
    _Alignas(8) calls_t c = {{0}, 0, NULL};
    weft_future_t *f = pending();
    weft_future_add_done_callback(f, add_another, tag(&c, 3));
    weft_future_add_done_callback(f, release_it, NULL);
    weft_future_add_done_callback(f, record, tag(&c, 4)); /* after the release: still valid */
    weft_future_retain(f);
    weft_future_release(f);          /* the caller's extra reference */
    weft_future_set_result(f, NULL); /* the callback drops the last one */
    assert_int_equal(c.n, 2);
    assert_int_equal(c.order[0], 3);
    assert_int_equal(c.order[1], 4);
}

static pthread_t callback_thread;

static int note_thread(weft_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    callback_thread = pthread_self();
    return 0;
}

/* No CPython test; Future.add_done_callback's documented behaviour: the callbacks run in the thread
 * that completes the future (here another thread), once its waiters were woken. */
static void callback_runs_in_completing_thread(void **state)
{
    (void)state;
    weft_future_t *f = pending();
    later_t l;
    later_start(&l, f, 0, 3);
    assert_int_equal(weft_future_add_done_callback(f, note_thread, NULL), 0);
    later_go_join(&l);
    assert_true(pthread_equal(callback_thread, l.tid));
    weft_future_release(f);
}

static int add_to_other(weft_future_t *f, void *arg)
{
    (void)f;
    return weft_future_add_done_callback(arg, note_thread, NULL);
}

/* No CPython counterpart: a callback may add callbacks to another future, still pending (they run
 * when that one completes), and to its own (they run at once: see callbacks_may_release_or_add). */
static void callback_adds_to_a_pending_future(void **state)
{
    (void)state;
    weft_future_t *a = pending(), *b = pending();
    assert_int_equal(weft_future_add_done_callback(a, add_to_other, b), 0);
    callback_thread = (pthread_t)0;
    assert_int_equal(weft_future_set_result(a, NULL), 0);
    assert_int_equal(callback_thread, (pthread_t)0); /* b's callback waits for b */
    later_t l;
    later_start(&l, b, 0, 1);
    later_go_join(&l);
    assert_true(pthread_equal(callback_thread, l.tid));
    weft_future_release(a);
    weft_future_release(b);
}

/* Completion races: set_result, set_error and cancel from three threads at once while a
 * fourth waits in result(). Exactly one wins (the others get WEFT_EALREADY: Python's
 * InvalidStateError), the callback runs once, and the waiter sees the winner's outcome. */
typedef struct race {
    weft_barrier_t start, end;
    weft_future_t *f;
    int rounds;
    _Atomic int calls, wins, wrong;
    int rc[4];
} race_t;

static int count_call(weft_future_t *f, void *arg)
{
    (void)f;
    atomic_fetch_add(&((race_t *)arg)->calls, 1);
    return 0;
}

static void racer(void *arg, int i)
{
    race_t *r = arg;
    for (int round = 0; round < r->rounds; round++) {
        if (i == 0) {
            r->f = pending();
            atomic_store(&r->calls, 0);
            atomic_store(&r->wins, 0);
            if (weft_future_add_done_callback(r->f, count_call, r)) atomic_fetch_add(&r->wrong, 1);
        }
        weft_barrier_wait(&r->start, WEFT_FOREVER);
        weft_future_t *f = r->f;
        int rc;
        if (i == 0)
            rc = weft_future_set_result(f, ITEM(1));
        else if (i == 1)
            rc = weft_future_set_error(f, WEFT_EIO, "lost or won");
        else if (i == 2)
            rc = weft_future_cancel(f);
        else
            rc = weft_future_result(f, WEFT_FOREVER, NULL);
        r->rc[i] = rc;
        if (i < 3 && rc == 0) atomic_fetch_add(&r->wins, 1);
        if (i < 3 && rc != 0 && rc != WEFT_EALREADY) atomic_fetch_add(&r->wrong, 1);
        weft_barrier_wait(&r->end, WEFT_FOREVER);
        if (i == 0) {
            int expect = r->rc[0] == 0 ? 0 : r->rc[1] == 0 ? WEFT_EIO : WEFT_ECANCELED;
            int code = INT32_MIN;
            if (atomic_load(&r->wins) != 1 || atomic_load(&r->calls) != 1 || r->rc[3] != expect ||
                weft_future_error(f, 0, &code) != 0 || code != expect)
                atomic_fetch_add(&r->wrong, 1);
            weft_future_release(f);
        }
    }
}

/* test_multiple_set_result / test_multiple_set_exception / test_cancel, raced from threads. */
static void concurrent_completion_exactly_once(void **state)
{
    (void)state;
    static race_t r;
    r.rounds = SANITIZED ? 300 : 3000;
    atomic_store(&r.wrong, 0);
    weft_barrier_init(&r.start, 4, NULL, NULL);
    weft_barrier_init(&r.end, 4, NULL, NULL);
    weft_test_run_threads(4, racer, &r);
    assert_int_equal(atomic_load(&r.wrong), 0);
    weft_barrier_destroy(&r.start);
    weft_barrier_destroy(&r.end);
}

/* ---- weft_future_wait ------------------------------------------------------------------------ */

/* test_wait.WaitTests.test_first_completed: returns when one completes; done counts it. */
static void wait_first_completed(void **state)
{
    (void)state;
    weft_future_t *a = pending(), *b = pending();
    weft_future_t *fs[2] = {a, b};
    later_t l;
    later_start(&l, b, 0, 1);
    size_t nd = 9;
    assert_int_equal(weft_future_wait(fs, 2, WEFT_FIRST_COMPLETED, 0.02, &nd), WEFT_ETIMEDOUT);
    assert_int_equal(nd, 0);
    weft_event_set(&l.go);
    assert_int_equal(weft_future_wait(fs, 2, WEFT_FIRST_COMPLETED, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 1);
    assert_true(weft_future_done(b));
    assert_false(weft_future_done(a));
    weft_test_join(l.tid);
    weft_future_release(a);
    weft_future_release(b);
}

/* test_first_completed_some_already_completed / test_first_exception_some_already_complete
 * / test_pending_calls_race: the condition already met returns at once, also with timeout 0. */
static void wait_already_met_returns_at_once(void **state)
{
    (void)state;
    weft_future_t *fs[3] = {pending(), finished(1), cancelled()};
    size_t nd;
    assert_int_equal(weft_future_wait(fs, 3, WEFT_FIRST_COMPLETED, 0, &nd), 0);
    assert_int_equal(nd, 2);
    assert_int_equal(weft_future_wait(fs, 3, WEFT_ALL_COMPLETED, 0, &nd), WEFT_ETIMEDOUT);
    assert_int_equal(weft_future_wait(fs + 1, 2, WEFT_ALL_COMPLETED, 0, &nd), 0);
    assert_int_equal(nd, 2);
    /* A cancelled future is not an exception. */
    assert_int_equal(weft_future_wait(fs, 3, WEFT_FIRST_EXCEPTION, 0, &nd), WEFT_ETIMEDOUT);
    assert_int_equal(nd, 2);
    /* test_first_exception_one_already_failed: at once, with the others pending. */
    weft_future_t *bad = failed(WEFT_EIO, NULL);
    weft_future_t *with_failed[3] = {fs[0], bad, fs[0]};
    assert_int_equal(weft_future_wait(with_failed, 3, WEFT_FIRST_EXCEPTION, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 1);
    weft_future_release(bad);
    assert_int_equal(weft_future_wait(NULL, 0, WEFT_ALL_COMPLETED, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 0);
    for (int i = 0; i < 3; i++) weft_future_release(fs[i]);
}

/* test_first_exception: returns when one fails, even with others pending; with none failing,
 * only when all are done. */
static void wait_first_exception(void **state)
{
    (void)state;
    weft_future_t *ok = pending(), *bad = pending(), *slow = pending();
    weft_future_t *fs[3] = {ok, bad, slow};
    later_t l1, l2;
    later_start(&l1, ok, 0, 1);
    later_start(&l2, bad, WEFT_EIO, 0);
    later_go_join(&l1);
    size_t nd;
    assert_int_equal(weft_future_wait(fs, 3, WEFT_FIRST_EXCEPTION, 0.02, &nd), WEFT_ETIMEDOUT);
    weft_event_set(&l2.go);
    assert_int_equal(weft_future_wait(fs, 3, WEFT_FIRST_EXCEPTION, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 2);
    weft_test_join(l2.tid);

    weft_future_t *good[2] = {ok, slow};
    later_start(&l1, slow, 0, 2);
    weft_event_set(&l1.go);
    assert_int_equal(weft_future_wait(good, 2, WEFT_FIRST_EXCEPTION, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 2); /* none failed: all done */
    weft_test_join(l1.tid);
    for (int i = 0; i < 3; i++) weft_future_release(fs[i]);
}

/* test_all_completed / test_timeout: ALL_COMPLETED waits for every one, within the timeout;
 * duplicates are allowed. */
static void wait_all_completed_and_timeout(void **state)
{
    (void)state;
    weft_future_t *a = pending(), *b = pending();
    weft_future_t *fs[3] = {a, b, a};
    later_t l1, l2;
    later_start(&l1, a, 0, 1);
    later_start(&l2, b, 0, 2);
    later_go_join(&l1);
    size_t nd;
    assert_int_equal(weft_future_wait(fs, 3, WEFT_ALL_COMPLETED, 0.03, &nd), WEFT_ETIMEDOUT);
    assert_int_equal(nd, 2); /* a twice */
    weft_event_set(&l2.go);
    assert_int_equal(weft_future_wait(fs, 3, WEFT_ALL_COMPLETED, WEFT_FOREVER, &nd), 0);
    assert_int_equal(nd, 3);
    weft_test_join(l2.tid);
    weft_future_release(a);
    weft_future_release(b);
}

/* weft_future_wait in another thread. */
typedef struct many_waiter {
    weft_future_t **fs;
    size_t n, ndone;
    int return_when, rc;
    _Atomic bool returned;
    pthread_t tid;
} many_waiter_t;

static void *many_waiter_main(void *p)
{
    many_waiter_t *w = p;
    w->rc = weft_future_wait(w->fs, w->n, w->return_when, WEFT_FOREVER, &w->ndone);
    atomic_store(&w->returned, true);
    return NULL;
}

/* Starts the wait and returns once it blocks on fs[watch]. */
static void many_waiter_start(many_waiter_t *w, weft_future_t **fs, size_t n, int return_when,
                              size_t watch)
{
    *w = (many_waiter_t){.fs = fs, .n = n, .return_when = return_when, .rc = 1, .ndone = 99};
    w->tid = weft_test_start(many_waiter_main, w);
    if (return_when == WEFT_ALL_COMPLETED)
        weft_test_wait_queued(&fs[watch]->waiters, 1); /* waits on each in turn */
    else
        wait_listened(fs[watch]);
}

/* test_first_completed / test_first_exception / test_all_completed with the waiter blocked
 * first (CPython sleeps for that; here the test sees its listener hooked) and more futures
 * than weft_future_wait keeps on its stack (12 > 8: listeners on the heap). FIRST_COMPLETED wakes
 * on one; FIRST_EXCEPTION is not woken by a success or a cancel, only by a failure; ALL_COMPLETED
 * by the last one. */
static void wait_wakes_when_condition_is_met(void **state)
{
    (void)state;
    enum { N = 12 };
    weft_future_t *fs[N];
    for (int i = 0; i < N; i++) fs[i] = pending();
    many_waiter_t w;
    later_t l;

    many_waiter_start(&w, fs, N, WEFT_FIRST_COMPLETED, N - 1);
    later_start(&l, fs[7], 0, 7);
    later_go_join(&l);
    weft_test_join(w.tid);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.ndone, 1);

    many_waiter_start(&w, fs, N, WEFT_FIRST_EXCEPTION, N - 1);
    assert_int_equal(weft_future_cancel(fs[0]), 0);
    assert_int_equal(weft_future_set_result(fs[1], NULL), 0);
    assert_false(atomic_load(&w.returned)); /* (best effort: a wrong wake may come later) */
    later_start(&l, fs[9], WEFT_EPIPE, 0);
    later_go_join(&l);
    weft_test_join(w.tid);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.ndone, 4);
    assert_true(weft_future_done(fs[9]));

    many_waiter_start(&w, fs, N, WEFT_ALL_COMPLETED, 2);
    for (int i = 2; i < N; i++)
        if (!weft_future_done(fs[i])) weft_future_set_result(fs[i], ITEM(i));
    weft_test_join(w.tid);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.ndone, N);
    for (int i = 0; i < N; i++) weft_future_release(fs[i]);
}

/* A cancel wakes a FIRST_COMPLETED wait (cancelled is done), and a future appearing several
 * times counts each time in ndone (test_20369: duplicates are fine). */
static void wait_woken_by_cancel_with_duplicates(void **state)
{
    (void)state;
    weft_future_t *a = pending(), *b = pending();
    weft_future_t *fs[4] = {a, b, a, b};
    many_waiter_t w;
    many_waiter_start(&w, fs, 4, WEFT_FIRST_COMPLETED, 1);
    assert_int_equal(weft_future_cancel(b), 0);
    weft_test_join(w.tid);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.ndone, 2);
    size_t nd;
    assert_int_equal(weft_future_wait(fs, 4, WEFT_ALL_COMPLETED, 0.01, &nd), WEFT_ETIMEDOUT);
    assert_int_equal(nd, 2);
    assert_int_equal(weft_future_set_error(a, WEFT_EIO, NULL), 0);
    assert_int_equal(weft_future_wait(fs, 4, WEFT_FIRST_EXCEPTION, 0, &nd), 0);
    assert_int_equal(nd, 4);
    weft_future_release(a);
    weft_future_release(b);
}

/* No CPython test (wait([]) returns two empty sets): n == 0 meets every condition at once, with any
 * timeout (concurrent.futures.wait([])). */
static void wait_on_nothing(void **state)
{
    (void)state;
    weft_future_t *f = pending();
    int modes[3] = {WEFT_FIRST_COMPLETED, WEFT_FIRST_EXCEPTION, WEFT_ALL_COMPLETED};
    for (int i = 0; i < 3; i++) {
        size_t nd = 9;
        assert_int_equal(weft_future_wait(NULL, 0, modes[i], WEFT_FOREVER, &nd), 0);
        assert_int_equal(nd, 0);
        assert_int_equal(weft_future_wait(&f, 0, modes[i], 0, NULL), 0);
    }
    weft_future_release(f);
}

/* No CPython counterpart (weft's cancellation): a wait on many ends with WEFT_ECANCELED when the
 * waiting task is canceled, and unhooks itself from the futures (the leak guard sees nothing left).
 */
static void wait_is_cancelable(void **state)
{
    (void)state;
    weft_future_t *fs[2] = {pending(), pending()};
    weft__waitctx_t *me = weft__waitctx_current();
    weft__waitctx_cancel(me);
    assert_int_equal(weft_future_wait(fs, 2, WEFT_FIRST_COMPLETED, WEFT_FOREVER, NULL),
                     WEFT_ECANCELED);
    assert_int_equal(weft_future_wait(fs, 2, WEFT_ALL_COMPLETED, WEFT_FOREVER, NULL),
                     WEFT_ECANCELED);
    weft__waitctx_uncancel(me);
    weft_future_set_result(fs[0], NULL);
    assert_int_equal(weft_future_wait(fs, 2, WEFT_FIRST_COMPLETED, 0, NULL), 0);
    weft_future_release(fs[0]);
    weft_future_release(fs[1]);
}

/* ---- as_completed ---------------------------------------------------------------------- */

/* test_as_completed.test_no_timeout / test_future_times_out (first part): the done ones come
 * first, then the others as they complete, each once; then WEFT_EEOF. */
static void as_completed_yields_each_once(void **state)
{
    (void)state;
    weft_future_t *done = finished(1), *p1 = pending(), *p2 = pending();
    weft_future_t *fs[4] = {p1, done, p2, done};
    weft_as_completed_t *it;
    assert_int_equal(weft_as_completed_create(fs, 4, WEFT_FOREVER, &it), 0);
    weft_future_t *f;
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_ptr_equal(f, done);
    weft_as_completed_release(it); /* early, with futures pending */

    assert_int_equal(weft_as_completed_create(fs, 4, WEFT_FOREVER, &it), 0);
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_ptr_equal(f, done);
    later_t l1, l2;
    later_start(&l1, p2, 0, 2);
    later_start(&l2, p1, 0, 3);
    later_go_join(&l1);
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_ptr_equal(f, p2);
    later_go_join(&l2);
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_ptr_equal(f, p1);
    assert_int_equal(weft_as_completed_next(it, &f), WEFT_EEOF);
    assert_null(f);
    assert_int_equal(weft_as_completed_next(it, &f), WEFT_EEOF);
    weft_as_completed_release(it);
    weft_future_release(done);
    weft_future_release(p1);
    weft_future_release(p2);
}

/* test_future_times_out / test_zero_timeout: after the overall timeout the iterator raises
 * TimeoutError (WEFT_ETIMEDOUT), again on later calls; the futures done by then were yielded. */
static void as_completed_overall_timeout(void **state)
{
    (void)state;
    weft_future_t *done = finished(1), *p = pending();
    weft_future_t *fs[2] = {done, p};
    weft_as_completed_t *it;
    /* The timeout counts from the create: measured from before it, whatever the first next
     * took (valgrind at load took more than 20 of the 50 ms). */
    double t0 = weft_time_monotonic();
    assert_int_equal(weft_as_completed_create(fs, 2, 0.05, &it), 0);
    weft_future_t *f;
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_ptr_equal(f, done);
    assert_int_equal(weft_as_completed_next(it, &f), WEFT_ETIMEDOUT);
    assert_true(weft_time_monotonic() - t0 >= 0.05);
    assert_int_equal(weft_as_completed_next(it, &f), WEFT_ETIMEDOUT);
    /* Completed after the deadline: still yielded, since it is ready (a poll). */
    weft_future_set_result(p, NULL);
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_ptr_equal(f, p);
    weft_as_completed_release(it);

    /* Zero timeout: only the done ones. */
    weft_future_t *p2 = pending();
    fs[1] = p2;
    assert_int_equal(weft_as_completed_create(fs, 2, 0, &it), 0);
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_int_equal(weft_as_completed_next(it, &f), WEFT_ETIMEDOUT);
    weft_as_completed_release(it); /* with p2 still pending: unhooked, references dropped */
    weft_future_set_result(p2, NULL);
    weft_future_release(done);
    weft_future_release(p);
    weft_future_release(p2);
}

/* test_correct_timeout_exception_msg / the empty case: no futures is at once WEFT_EEOF; the
 * iterator keeps the futures alive although the caller released them. */
static void as_completed_empty_and_ownership(void **state)
{
    (void)state;
    weft_as_completed_t *it;
    weft_future_t *f;
    assert_int_equal(weft_as_completed_create(NULL, 0, WEFT_FOREVER, &it), 0);
    assert_int_equal(weft_as_completed_next(it, &f), WEFT_EEOF);
    weft_as_completed_release(it);

    weft_future_t *p = pending();
    assert_int_equal(weft_as_completed_create(&p, 1, WEFT_FOREVER, &it), 0);
    weft_future_t *keep = p;
    weft_future_retain(keep);
    weft_future_release(p); /* the caller's; the iterator holds its own */
    weft_future_set_result(keep, ITEM(8));
    weft_future_release(keep);
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    void *v;
    assert_int_equal(weft_future_result(f, 0, &v), 0);
    assert_ptr_equal(v, ITEM(8));
    weft_as_completed_release(it);
}

/* test_duplicate_futures: a pending future given three times is yielded once, when it
 * completes, then the iterator is exhausted. */
static void as_completed_duplicates_of_pending(void **state)
{
    (void)state;
    weft_future_t *p = pending();
    weft_future_t *fs[3] = {p, p, p};
    weft_as_completed_t *it;
    assert_int_equal(weft_as_completed_create(fs, 3, WEFT_FOREVER, &it), 0);
    later_t l;
    later_start(&l, p, 0, 4);
    weft_event_set(&l.go);
    weft_future_t *f;
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_ptr_equal(f, p);
    assert_int_equal(weft_as_completed_next(it, &f), WEFT_EEOF);
    weft_test_join(l.tid);
    weft_as_completed_release(it);
    weft_future_release(p);
}

/* test_no_timeout with every kind of ending: a cancelled and a failed future are yielded like
 * a successful one, in the order they end; the blocked next() is woken by each. */
static void as_completed_yields_cancelled_and_failed(void **state)
{
    (void)state;
    weft_future_t *a = pending(), *b = pending(), *c = pending();
    weft_future_t *fs[3] = {a, b, c};
    weft_as_completed_t *it;
    assert_int_equal(weft_as_completed_create(fs, 3, 60, &it), 0);
    weft_future_t *f;
    assert_int_equal(weft_future_cancel(c), 0);
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_ptr_equal(f, c);
    assert_true(weft_future_cancelled(f));
    later_t l;
    later_start(&l, b, WEFT_ENOENT, 0);
    weft_event_set(&l.go);
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_ptr_equal(f, b);
    assert_int_equal(error_of(f), WEFT_ENOENT);
    weft_test_join(l.tid);
    later_start(&l, a, 0, 1);
    weft_event_set(&l.go);
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_ptr_equal(f, a);
    weft_test_join(l.tid);
    assert_int_equal(weft_as_completed_next(it, &f), WEFT_EEOF);
    weft_as_completed_release(it);
    weft_future_release(a);
    weft_future_release(b);
    weft_future_release(c);
}

/* No CPython counterpart (weft's cancellation): next() ends with WEFT_ECANCELED when its caller is
 * canceled; the iterator stays usable. */
static void as_completed_is_cancelable(void **state)
{
    (void)state;
    weft_future_t *p = pending();
    weft_as_completed_t *it;
    assert_int_equal(weft_as_completed_create(&p, 1, WEFT_FOREVER, &it), 0);
    weft__waitctx_t *me = weft__waitctx_current();
    weft__waitctx_cancel(me);
    weft_future_t *f;
    assert_int_equal(weft_as_completed_next(it, &f), WEFT_ECANCELED);
    weft__waitctx_uncancel(me);
    weft_future_set_result(p, NULL);
    assert_int_equal(weft_as_completed_next(it, &f), 0);
    assert_ptr_equal(f, p);
    weft_as_completed_release(it);
    weft_future_release(p);
}

/* test_pending_calls_race (issue 14406) for as_completed: many futures completed by several
 * threads in random order: as_completed yields each exactly
 * once, and wait(ALL_COMPLETED) agrees. */
typedef struct many {
    weft_future_t **fs;
    int n;
} many_t;

static void complete_stripe(void *arg, int i)
{
    many_t *m = arg;
    for (int k = i; k < m->n; k += 4) weft_future_set_result(m->fs[k], ITEM(k));
}

static void as_completed_many_threads(void **state)
{
    (void)state;
    enum { N = 2000 };
    weft_future_t *fs[N];
    for (int i = 0; i < N; i++) fs[i] = pending();
    weft_as_completed_t *it;
    assert_int_equal(weft_as_completed_create(fs, N, 60, &it), 0);
    many_t m = {fs, N};
    weft_test_run_threads(4, complete_stripe, &m);
    static bool seen[N];
    memset(seen, 0, sizeof seen);
    weft_future_t *f;
    int count = 0;
    while (weft_as_completed_next(it, &f) == 0) {
        void *v;
        assert_int_equal(weft_future_result(f, 0, &v), 0);
        assert_false(seen[(intptr_t)v]);
        seen[(intptr_t)v] = true;
        count++;
    }
    assert_int_equal(count, N);
    weft_as_completed_release(it);
    size_t nd;
    assert_int_equal(weft_future_wait(fs, N, WEFT_ALL_COMPLETED, 0, &nd), 0);
    assert_int_equal(nd, N);
    for (int i = 0; i < N; i++) weft_future_release(fs[i]);
}

/* ---- out of memory -------------------------------------------------------------------- */
/* No CPython counterpart (SQLite-style malloc tests): every allocation in turn fails, once and
 * for good; each call reports WEFT_ENOMEM and leaves nothing behind. */

static int count_runs(weft_future_t *f, void *arg)
{
    (void)f;
    (*(int *)arg)++;
    return 0;
}

/* new, three callbacks (the second and third allocate), set_error with a message (copied):
 * a callback whose add failed never runs, the others run once; a message that could not be
 * copied leaves the future FINISHED with its code and no message. */
static int oom_future_and_callbacks(void *ctx)
{
    (void)ctx;
    weft_future_t *f;
    int rc = weft_future_create(&f);
    if (rc) {
        assert_null(f);
        return rc;
    }
    int added = 0, runs = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        rc = weft_future_add_done_callback(f, count_runs, &runs);
        if (rc == 0) added++;
    }
    int set = weft_future_set_error(f, WEFT_EIO, "message copied");
    assert_int_equal(runs, added);
    assert_int_equal(error_of(f), WEFT_EIO);
    if (set == 0)
        assert_string_equal(weft_future_error_message(f), "message copied");
    else
        assert_null(weft_future_error_message(f));
    weft_future_release(f);
    return rc ? rc : set;
}

static void out_of_memory_future_and_callbacks(void **state)
{
    (void)state;
    assert_true(weft_test_oom(oom_future_and_callbacks, NULL) >= 3);
}

/* weft_future_wait with more futures than its stack array (12 > 8: the listeners are allocated),
 * for FIRST_COMPLETED and FIRST_EXCEPTION; ALL_COMPLETED needs no allocation. */
static int oom_wait(void *ctx)
{
    weft_future_t **fs = ctx;
    size_t nd = 99;
    int rc = weft_future_wait(fs, 12, WEFT_FIRST_COMPLETED, 0, &nd);
    if (rc == WEFT_ENOMEM) return rc;
    assert_int_equal(rc, WEFT_ETIMEDOUT);
    assert_int_equal(nd, 0);
    rc = weft_future_wait(fs, 12, WEFT_FIRST_EXCEPTION, 0.001, NULL);
    if (rc == WEFT_ENOMEM) return rc;
    assert_int_equal(rc, WEFT_ETIMEDOUT);
    return 0;
}

static void out_of_memory_wait(void **state)
{
    (void)state;
    weft_future_t *fs[12];
    for (int i = 0; i < 12; i++) fs[i] = pending();
    assert_true(weft_test_oom(oom_wait, fs) >= 1);
    /* The failed runs left no listener behind: completing them notifies nobody. */
    for (int i = 0; i < 12; i++) {
        assert_null(fs[i]->listeners);
        weft_future_set_result(fs[i], NULL);
        weft_future_release(fs[i]);
    }
}

/* as_completed_begin (with duplicates and a done future) and a full iteration. */
static int oom_as_completed(void *ctx)
{
    weft_future_t **fs = ctx;
    weft_as_completed_t *it = (void *)1;
    int rc = weft_as_completed_create(fs, 6, 0, &it);
    if (rc) {
        assert_null(it);
        return rc;
    }
    weft_future_t *f;
    int n = 0;
    while ((rc = weft_as_completed_next(it, &f)) == 0) n++;
    assert_int_equal(rc, WEFT_ETIMEDOUT);
    assert_int_equal(n, 1);
    weft_as_completed_release(it);
    return 0;
}

static void out_of_memory_as_completed(void **state)
{
    (void)state;
    weft_future_t *p = pending(), *q = pending(), *done = finished(1);
    weft_future_t *fs[6] = {p, q, done, p, done, q};
    assert_true(weft_test_oom(oom_as_completed, fs) >= 1);
    assert_null(p->listeners);
    assert_null(q->listeners);
    weft_future_release(p);
    weft_future_release(q);
    weft_future_release(done);
}

/* The timeout rules (weft/core.h) for futures: result, wait and as_completed_next of a
 * pending future with -0.5 poll (WEFT_ETIMEDOUT at once); WEFT_FOREVER blocks until the
 * result is set; NaN is WEFT_EINVAL. */
typedef struct timed_future {
    weft_future_t *f;
    double timeout;
} timed_future_t;

static int timed_result(void *p)
{
    timed_future_t *t = p;
    void *v = NULL;
    int rc = weft_future_result(t->f, t->timeout, &v);
    return rc ? rc : (int)(intptr_t)v;
}

static int timed_wait(void *p)
{
    timed_future_t *t = p;
    size_t nd = 99;
    int rc = weft_future_wait(&t->f, 1, WEFT_ALL_COMPLETED, t->timeout, &nd);
    return rc ? rc : (int)nd;
}

static int timed_as_completed(void *p)
{
    timed_future_t *t = p;
    weft_as_completed_t *it;
    int rc = weft_as_completed_create(&t->f, 1, t->timeout, &it);
    if (rc) return rc;
    weft_future_t *got = NULL;
    rc = weft_as_completed_next(it, &got);
    weft_as_completed_release(it);
    return rc;
}

static void set_result_7(void *p)
{
    assert_int_equal(weft_future_set_result(p, (void *)(intptr_t)7), 0);
}

static void future_negative_timeout_polls(void **state)
{
    (void)state;
    timed_future_t t = {.timeout = -0.5};
    assert_int_equal(weft_future_create(&t.f), 0);
    assert_int_equal(weft_test_polls(timed_result, &t), WEFT_ETIMEDOUT);
    assert_int_equal(weft_test_polls(timed_wait, &t), WEFT_ETIMEDOUT);
    assert_int_equal(weft_test_polls(timed_as_completed, &t), WEFT_ETIMEDOUT);
    assert_int_equal(weft_future_result(t.f, NAN, NULL), WEFT_EINVAL);
    t.timeout = WEFT_FOREVER;
    weft_test_blocks_until(timed_result, &t, set_result_7, t.f, 7);
    assert_int_equal(weft_test_polls(timed_wait, &t), 1);
    weft_future_release(t.f);
}

/* weft_future_capture_begin/_end keep weft_future_fail_current's message outside a future, for
 * an executor that carries it back itself; outside a capture it is dropped. */
static void future_capture_keeps_a_fail_current_message(void **state)
{
    (void)state;
    char *m = (char *)1;
    assert_int_equal(weft_future_capture_end(NULL), WEFT_EINVAL);
    assert_int_equal(weft_future_capture_end(&m), 0); /* no capture: no message */
    assert_null(m);
    assert_int_equal(weft_future_fail_current(WEFT_EIO, "dropped"), WEFT_EIO);
    assert_int_equal(weft_future_capture_begin(), 0);
    assert_int_equal(weft_future_fail_current(WEFT_EIO, "first %d", 1), WEFT_EIO);
    assert_int_equal(weft_future_fail_current(WEFT_ERANGE, "item %d", 7), WEFT_ERANGE);
    assert_int_equal(weft_future_capture_end(&m), 0);
    assert_string_equal(m, "item 7"); /* the last one */
    free(m);
    assert_int_equal(weft_future_capture_begin(), 0);
    assert_int_equal(weft_future_capture_end(&m), 0); /* a task that left none */
    assert_null(m);
    assert_int_equal(weft_future_capture_begin(), 0);
    assert_int_equal(weft_future_fail_current(WEFT_EIO, "left over"), WEFT_EIO);
    assert_int_equal(weft_future_capture_begin(), 0); /* drops it */
    assert_int_equal(weft_future_capture_end(&m), 0);
    assert_null(m);
    assert_int_equal(weft_future_fail_current(WEFT_EIO, "dropped again"), WEFT_EIO);
    assert_int_equal(weft_future_capture_end(&m), 0);
    assert_null(m);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(future_capture_keeps_a_fail_current_message),
    WEFT_TEST(future_negative_timeout_polls),
    WEFT_TEST(states_of_each_kind),
    WEFT_TEST(result_of_each_kind),
    WEFT_TEST(error_and_message),
    WEFT_TEST(error_of_a_task_failed_with_a_wait_code_is_told_from_not_done),
    WEFT_TEST(error_waits_and_is_cancelable),
    WEFT_TEST(result_bytes_of_futures_without_bytes),
    WEFT_TEST(user_data_slot),
    WEFT_TEST(result_waits_for_another_thread),
    WEFT_TEST(result_wakes_on_cancel),
    WEFT_TEST(cancel_by_state),
    WEFT_TEST(promise_side_state_errors),
    WEFT_TEST(bad_arguments),
    WEFT_TEST(references),
    WEFT_TEST(callbacks_run_in_order_on_completion),
    WEFT_TEST(callback_on_done_future_runs_at_once),
    WEFT_TEST(failing_callback_is_reported_and_others_run),
    WEFT_TEST(callbacks_may_release_or_add),
    WEFT_TEST(callback_runs_in_completing_thread),
    WEFT_TEST(callback_adds_to_a_pending_future),
    WEFT_TEST(concurrent_completion_exactly_once),
    WEFT_TEST(wait_first_completed),
    WEFT_TEST(wait_already_met_returns_at_once),
    WEFT_TEST(wait_first_exception),
    WEFT_TEST(wait_all_completed_and_timeout),
    WEFT_TEST(wait_wakes_when_condition_is_met),
    WEFT_TEST(wait_woken_by_cancel_with_duplicates),
    WEFT_TEST(wait_on_nothing),
    WEFT_TEST(wait_is_cancelable),
    WEFT_TEST(as_completed_yields_each_once),
    WEFT_TEST(as_completed_overall_timeout),
    WEFT_TEST(as_completed_empty_and_ownership),
    WEFT_TEST(as_completed_duplicates_of_pending),
    WEFT_TEST(as_completed_yields_cancelled_and_failed),
    WEFT_TEST(as_completed_is_cancelable),
    WEFT_TEST(as_completed_many_threads),
    WEFT_TEST(out_of_memory_future_and_callbacks),
    WEFT_TEST(out_of_memory_wait),
    WEFT_TEST(out_of_memory_as_completed),
};
WEFT_TEST_MAIN(cases)
