/*
 * executor.c — the calls every executor shares: submit makes the future and hands it to the
 * backend, map is submit plus ordered collection, shutdown and destroy go to the backend.
 * Backends (thread_pool.c, process_pool.c, and mpi_pool.c in its own library) provide
 * weft__executor_ops_t and embed struct weft_executor first.
 */
#include "executor_internal.h"

#include <stdio.h>
#include <string.h>

int weft_executor_submit(weft_executor_t *ex, weft_task_fn fn, void *arg, weft_future_t **out)
{
    WEFT__HANDLE_CHECK(ex, WEFT__ID_EXECUTOR, "executor");
    if (out) *out = NULL;
    if (!ex || !fn) return WEFT_EINVAL;
    uint32_t refs = out ? 2 : 1;
    weft_future_t *f = ex->make ? ex->make(ex, fn, arg, refs) : weft__future_create(fn, arg, refs);
    if (!f) return WEFT_ENOMEM;
    int rc = ex->ops->submit(ex, f);
    if (rc) {
        weft__future_unref(f);
        if (out) weft__future_unref(f);
        return rc;
    }
    if (out) *out = f;
    WEFT__HANDLE_GIVE(out ? f : NULL);
    return 0;
}

/* Cancels and releases fs[from..n-1], the last first: canceling a running call frees its
 * worker, which must not find a later call still queued (Python's map cancels what has not
 * started). */
static void abandon(weft_future_t **fs, size_t from, size_t n)
{
    for (size_t i = n; i-- > from;) {
        weft_future_cancel(fs[i]);
        weft_future_release(fs[i]);
    }
}

int weft_executor_map(weft_executor_t *ex, weft_task_fn fn, void *const *args, size_t n,
                      void **results, double timeout, size_t *ndone)
{
    WEFT__HANDLE_CHECK(ex, WEFT__ID_EXECUTOR, "executor");
    int64_t deadline;
    if (ndone) *ndone = 0;
    if (!ex || !fn || !results || (!args && n > 0) || weft__deadline(timeout, &deadline))
        return WEFT_EINVAL;
    if (n == 0) return 0;
    size_t bytes;
    if (!weft__size_mul(n, sizeof(weft_future_t *), &bytes)) return WEFT_ENOMEM;
    weft_future_t **fs = weft__malloc(bytes);
    if (!fs) return WEFT_ENOMEM;
    int rc = 0;
    size_t submitted = 0;
    for (; submitted < n && rc == 0; submitted++)
        rc = weft_executor_submit(ex, fn, args[submitted], &fs[submitted]);
    if (rc) {
        abandon(fs, 0, submitted - 1);
        weft__free(fs);
        return rc;
    }
    size_t i = 0;
    for (; i < n; i++) {
        rc = weft_future_result(fs[i], weft__deadline_remaining(deadline), &results[i]);
        if (rc) break;
        weft_future_release(fs[i]);
    }
    if (ndone) *ndone = i;
    if (rc) abandon(fs, i, n); /* from the one that failed or timed out: it may not have run */
    weft__free(fs);
    return rc;
}

int weft_executor_shutdown(weft_executor_t *ex, bool wait, bool cancel_futures, double timeout)
{
    WEFT__HANDLE_CHECK(ex, WEFT__ID_EXECUTOR, "executor");
    int64_t deadline;
    if (!ex || weft__deadline(timeout, &deadline)) return WEFT_EINVAL;
    return ex->ops->shutdown(ex, wait, cancel_futures, deadline);
}

int weft_executor_release(weft_executor_t *ex)
{
    WEFT__HANDLE_RELEASE(ex, WEFT__ID_EXECUTOR, "executor");
    if (!ex) return WEFT_EINVAL;
    weft__name_drop(ex);
    ex->ops->destroy(ex);
    return 0;
}

int weft_executor_set_name(weft_executor_t *ex, const char *name)
{
    WEFT__HANDLE_CHECK(ex, WEFT__ID_EXECUTOR, "executor");
    if (!ex) return WEFT_EINVAL;
    return weft__name_set(ex, name);
}

void weft__worker_name(char *name, const char *prefix, size_t n)
{
    char number[24];
    size_t digits = (size_t)snprintf(number, sizeof number, "_%zu", n);
    size_t room = WEFT__WORKER_NAME_MAX - 1;
    if (digits > room) { /* a number no pool reaches: its last digits */
        memcpy(name, number + digits - room, room + 1);
        return;
    }
    size_t keep = strnlen(prefix, room - digits);
    memcpy(name, prefix, keep);
    memcpy(name + keep, number, digits + 1);
}
