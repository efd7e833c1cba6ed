/*
 * Notes §7 线程: 开启线程 / threads: starting a thread.
 *
 * thread — start threads, name them, wait for them (Python's threading.Thread).
 *
 * Three workers each sum a third of 1..3,000,000. They wait for a start signal, so the main
 * thread can first list who is alive; then it lets them go and joins them, one with a timeout
 * first. Shows weft_thread_start with and without a name, weft_thread_current inside a
 * thread, active_count, enumerate, join, is_alive — and that every handle is released.
 */
#include <stdio.h>

#include "weft.h"

enum { WORKERS = 3, SLICE = 1000000 };

typedef struct job {
    weft_event_t *go;
    long long first, sum;
} job_t;

static void worker(void *arg)
{
    job_t *job = arg;
    weft_event_wait(job->go, WEFT_FOREVER);
    for (long long i = job->first; i < job->first + SLICE; i++) job->sum += i;
    printf("  %-8s summed %lld..%lld\n", weft_thread_name(weft_thread_current()), job->first,
           job->first + SLICE - 1);
}

int main(void)
{
    weft_event_t go;
    weft_event_init(&go);
    weft_thread_t *threads[WORKERS];
    job_t jobs[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        jobs[i] = (job_t){&go, 1 + (long long)i * SLICE, 0};
        /* The first two get names; the third gets Python's default, "Thread-N". */
        char name[16];
        snprintf(name, sizeof name, "summer-%d", i + 1);
        weft_thread_opts_t opts = {.name = i < 2 ? name : NULL};
        if (weft_thread_start(worker, &jobs[i], &opts, &threads[i]) != 0) return 1;
    }

    /* All are started and waiting: list them (main first, then in start order). */
    weft_thread_t *alive[8];
    size_t n;
    weft_thread_enumerate(alive, 8, &n);
    printf("active_count: %zu\n", weft_thread_active_count());
    for (size_t i = 0; i < n && i < 8; i++) {
        printf("  %-10s ident %ld\n", weft_thread_name(alive[i]), weft_thread_ident(alive[i]));
        weft_thread_release(alive[i]); /* enumerate hands out references */
    }

    /* Nothing runs before the signal, so a short join times out. */
    int rc = weft_thread_join(threads[0], 0.01);
    printf("join(%s, 0.01 s): %s, is_alive: %s\n", weft_thread_name(threads[0]),
           weft_error_name(rc), weft_thread_is_alive(threads[0]) ? "yes" : "no");

    weft_event_set(&go);
    long long total = 0;
    for (int i = 0; i < WORKERS; i++) {
        weft_thread_join(threads[i], WEFT_FOREVER);
        total += jobs[i].sum;
        weft_thread_release(threads[i]);
    }
    long long expect = (long long)WORKERS * SLICE * ((long long)WORKERS * SLICE + 1) / 2;
    printf("total %lld (%s), active_count back to %zu\n", total,
           total == expect ? "right" : "WRONG", weft_thread_active_count());
    return total == expect ? 0 : 1;
}
