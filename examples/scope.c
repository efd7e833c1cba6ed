/*
 * scope — structured concurrency (Python's asyncio.TaskGroup, Trio's nursery).
 *
 * We fetch five "pages" in a scope: three as coroutines, one on a thread, one on a thread
 * pool. One of them fails. As with TaskGroup, the first failure cancels the others (their
 * waits return WEFT_ECANCELED and they stop), and join says WEFT_ETASKFAILED; the first
 * failure's own code (and how many failed) come from weft_scope_errors, as TaskGroup's
 * ExceptionGroup holds the tasks' exceptions. Then a second scope with a deadline: nothing
 * fails, but the deadline ends the slow work.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

/* A page that takes `arg` milliseconds to arrive; page 404 fails. */
static int fetch(void *arg)
{
    intptr_t ms = (intptr_t)arg;
    if (ms == 404) {
        printf("  fetch(404): not found, failing\n");
        return WEFT_ENOENT;
    }
    int rc = weft_time_sleep((double)ms / 1000); /* parks only this task */
    printf("  fetch(%ld ms): %s\n", (long)ms, rc == 0 ? "done" : weft_error_name(rc));
    return rc;
}

/* A start fails only when the scope is already canceled or out of resources. */
static void check(int rc)
{
    if (rc != 0) {
        fprintf(stderr, "start: %s\n", weft_error_message(rc));
        exit(1);
    }
}

static int fetch_task(void *arg, void **result)
{
    (void)result;
    return fetch(arg);
}

int main(void)
{
    weft_executor_t *pool;
    weft_scope_t *scope;
    if (weft_thread_pool_create(2, NULL, &pool) != 0) return 1;

    printf("fan-out, one failure:\n");
    if (weft_scope_create(NULL, WEFT_FOREVER, &scope) != 0) return 1;
    weft_scope_set_name(scope,
                        "fan-out"); /* weft_debug_dump shows a joiner on "Scope 'fan-out' join" */
    /* The thread first: its start waits for the thread to run, and meanwhile this thread's
     * coroutines would run. Spawns do not switch: the coroutines run from the join on. */
    check(weft_scope_thread_start(scope, fetch, (void *)(intptr_t)3000, NULL, NULL));
    check(weft_scope_submit(scope, pool, fetch_task, (void *)(intptr_t)4000, NULL));
    check(weft_scope_spawn(scope, fetch, (void *)(intptr_t)20, NULL, NULL));
    check(weft_scope_spawn(scope, fetch, (void *)(intptr_t)2000, NULL, NULL));
    check(weft_scope_spawn(scope, fetch, (void *)(intptr_t)404, NULL, NULL));
    double t0 = weft_time_monotonic();
    int rc = weft_scope_join(scope, WEFT_FOREVER);
    int first;
    size_t failures;
    weft_scope_errors(scope, &first, &failures);
    printf("join: %s after %.2f s, %zu failure(s), the first: %s\n", weft_error_name(rc),
           weft_time_monotonic() - t0, failures, weft_error_name(first));
    weft_scope_release(scope);

    printf("a deadline of 0.1 s:\n");
    if (weft_scope_create(NULL, 0.1, &scope) != 0) return 1;
    check(weft_scope_thread_start(scope, fetch, (void *)(intptr_t)5000, NULL, NULL));
    check(weft_scope_spawn(scope, fetch, (void *)(intptr_t)10, NULL, NULL));
    rc = weft_scope_join(scope, WEFT_FOREVER);
    printf("join: %s\n", weft_error_name(rc));
    weft_scope_release(scope);

    weft_executor_shutdown(pool, true, false, WEFT_FOREVER);
    weft_executor_release(pool);
    return 0;
}
