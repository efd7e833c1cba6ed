/*
 * Notes §14 线程池和进程池: future对象 / pools: futures.
 *
 * futures — waiting on several results at once (concurrent.futures.wait, as_completed) and a
 * future completed by hand (the promise side: set_result).
 *
 * Three mirrors serve the same file at different speeds. We ask all of them and take the
 * first answer (wait FIRST_COMPLETED), cancelling the requests still queued. Then we process
 * five jobs in the order they finish (as_completed), not the order they were submitted. Last,
 * a future that no executor runs: a thread fulfils it with set_result while main waits.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "weft.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
    nanosleep(&ts, NULL);
}

/* A task that takes `arg` milliseconds and returns them. */
static int takes(void *arg, void **result)
{
    sleep_ms((long)(intptr_t)arg);
    *result = arg;
    return 0;
}

static weft_future_t *promise;

static void fulfil(void *arg)
{
    (void)arg;
    sleep_ms(20);
    weft_future_set_result(promise, "hello from another thread");
}

int main(void)
{
    weft_executor_t *pool;
    if (weft_thread_pool_create(3, NULL, &pool)) return 1;

    /* The fastest of three mirrors. */
    intptr_t mirror_ms[3] = {120, 30, 80};
    weft_future_t *mirrors[3];
    for (int i = 0; i < 3; i++)
        if (weft_executor_submit(pool, takes, (void *)mirror_ms[i], &mirrors[i])) return 1;
    size_t ndone;
    weft_future_wait(mirrors, 3, WEFT_FIRST_COMPLETED, WEFT_FOREVER, &ndone);
    for (int i = 0; i < 3; i++) {
        if (weft_future_done(mirrors[i]))
            printf("mirror %d answered first (%ld ms)\n", i, (long)mirror_ms[i]);
        weft_future_cancel(mirrors[i]); /* running ones are only asked to stop */
    }
    weft_future_wait(mirrors, 3, WEFT_ALL_COMPLETED, WEFT_FOREVER,
                     NULL); /* (these do not listen) */
    for (int i = 0; i < 3; i++) weft_future_release(mirrors[i]);

    /* Five jobs, handled as they complete; each future carries its job's name (Python's
     * {executor.submit(...): name} dict). */
    intptr_t job_ms[5] = {50, 10, 40, 20, 30};
    const char *job_name[5] = {"backup", "ping", "index", "thumbnail", "report"};
    weft_future_t *jobs[5];
    for (int i = 0; i < 5; i++) {
        if (weft_executor_submit(pool, takes, (void *)job_ms[i], &jobs[i])) return 1;
        weft_future_set_data(jobs[i], (void *)job_name[i]);
    }
    weft_as_completed_t *it;
    if (weft_as_completed_create(jobs, 5, 10.0, &it)) return 1; /* all within 10 s */
    weft_future_t *f;
    int rc;
    while ((rc = weft_as_completed_next(it, &f)) == 0) {
        void *ms;
        if (weft_future_result(f, 0, &ms)) continue;
        printf("job %s (%ld ms) completed\n", (const char *)weft_future_data(f),
               (long)(intptr_t)ms);
    }
    printf("as_completed ended with %s\n", weft_error_name(rc)); /* WEFT_EEOF: all yielded */
    weft_as_completed_release(it);
    for (int i = 0; i < 5; i++) weft_future_release(jobs[i]);

    /* A future as a promise: no executor, a thread completes it. */
    if (weft_future_create(&promise)) return 1;
    weft_thread_t *t;
    if (weft_thread_start(fulfil, NULL, NULL, &t)) return 1;
    void *message;
    printf("promise: waiting 0.001 s -> %s\n",
           weft_error_name(weft_future_result(promise, 0.001, &message)));
    if (weft_future_result(promise, WEFT_FOREVER, &message)) return 1;
    printf("promise: %s\n", (char *)message);
    weft_thread_join(t, WEFT_FOREVER);
    weft_thread_release(t);
    weft_future_release(promise);

    weft_executor_shutdown(pool, true, false, WEFT_FOREVER);
    weft_executor_release(pool);
    return 0;
}
