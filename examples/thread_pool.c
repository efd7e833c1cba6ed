/*
 * Notes §14 线程池和进程池: 线程池 / pools: ThreadPoolExecutor.
 *
 * thread_pool — a pool of worker threads running submitted tasks (Python's
 * concurrent.futures.ThreadPoolExecutor), as in the notes:
 *
 *     pool = ThreadPoolExecutor(10)
 *     ret = pool.submit(func, *args)          # a future; ret.result() waits for it
 *     pool.submit(func, *args).add_done_callback(func1)
 *
 * Twenty downloads run on a pool of 10 workers (at most 10 at a time). Each submit returns a
 * future at once; result() waits for a task's value or its error (one download fails, with
 * a message, the C stand-in for an exception). A done callback reports each task as it
 * finishes, without blocking the submitter. shutdown(wait) waits for the rest.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "weft.h"

enum { WORKERS = 10, PAGES = 20 };

/* A task: fetches page `arg` (pretend) and returns its size, or fails. */
static int download(void *arg, void **result)
{
    intptr_t page = (intptr_t)arg;
    struct timespec ts = {0, (10 + page % 3 * 10) * 1000000L};
    nanosleep(&ts, NULL); /* the network */
    if (page == 7)
        return weft_future_fail_current(WEFT_ECONNRESET, "page %ld: connection reset", (long)page);
    *result = (void *)(page * 1000);
    return 0;
}

/* A done callback (func1 in the notes): runs in the worker that finished the task. */
static int parse(weft_future_t *f, void *arg)
{
    void *size;
    int rc = weft_future_result(f, 0, &size); /* done: never waits */
    if (rc == 0)
        printf("  callback: page %ld done, %ld bytes (on %s)\n", (long)(intptr_t)arg,
               (long)(intptr_t)size, weft_thread_name(weft_thread_current()));
    else
        printf("  callback: page %ld failed: %s\n", (long)(intptr_t)arg,
               weft_future_error_message(f));
    return 0;
}

int main(void)
{
    weft_executor_t *pool;
    if (weft_thread_pool_create(WORKERS, NULL, &pool) != 0) return 1; /* ThreadPoolExecutor(10) */

    /* ret = pool.submit(func, arg); ret.result() */
    weft_future_t *ret;
    if (weft_executor_submit(pool, download, (void *)1, &ret)) return 1;
    void *size;
    if (weft_future_result(ret, WEFT_FOREVER, &size)) return 1;
    printf("page 1 by result(): %ld bytes\n", (long)(intptr_t)size);
    weft_future_release(ret);

    /* pool.submit(func, arg).add_done_callback(func1), for every page */
    for (intptr_t page = 2; page <= PAGES; page++) {
        weft_future_t *f;
        if (weft_executor_submit(pool, download, (void *)page, &f) != 0) return 1;
        weft_future_add_done_callback(f, parse, (void *)page);
        weft_future_release(f); /* the pool keeps the task going without our handle */
    }
    printf("submitted pages 2..%d; the submitter is free meanwhile\n", PAGES);

    weft_executor_shutdown(pool, true, false, WEFT_FOREVER); /* pool.shutdown(wait=True) */
    printf("all done; submit after shutdown -> %s\n",
           weft_error_name(weft_executor_submit(pool, download, (void *)0, NULL)));
    weft_executor_release(pool);
    return 0;
}
