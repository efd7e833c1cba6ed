/*
 * Notes §7 线程: daemon 守护线程 / threads: daemon threads.
 *
 * daemon — what happens to running threads when the program ends (Python's daemon threads).
 *
 * main starts two threads and returns at once:
 *   - "writer", a normal (non-daemon) thread, needs 0.2 s to finish its report. The exit rule
 *     waits for it, so its lines appear after main has already returned.
 *   - "heartbeat", a daemon, would beat 100 times, once every 0.05 s (5 s in all). Nobody
 *     waits for a daemon: the process ends while it is still beating, and its last line
 *     never appears.
 * An atexit handler registered before the threads runs after the exit rule's join, and
 * reports how far the heartbeat got.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "weft.h"

static atomic_int beats;
static double t0;

static void pause_seconds(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static void writer(void *arg)
{
    (void)arg;
    for (int part = 1; part <= 4; part++) {
        pause_seconds(0.05);
        printf("  %.2f s  writer: part %d of 4 written\n", weft_time_monotonic() - t0, part);
    }
    printf("  %.2f s  writer: report complete\n", weft_time_monotonic() - t0);
}

static void heartbeat(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        atomic_fetch_add(&beats, 1);
        pause_seconds(0.05);
    }
    printf("heartbeat: all 100 beats done (you should not see this)\n");
}

static void report_at_exit(void)
{
    printf("  %.2f s  exit: writer was waited for; heartbeat abandoned after %d of 100 beats\n",
           weft_time_monotonic() - t0, atomic_load(&beats));
}

int main(void)
{
    t0 = weft_time_monotonic();
    atexit(report_at_exit); /* registered first, so it runs last: after the exit rule's join */

    weft_thread_t *w, *h;
    weft_thread_opts_t writer_opts = {.name = "writer"};
    weft_thread_opts_t heartbeat_opts = {.name = "heartbeat", .daemon = true};
    if (weft_thread_start(writer, NULL, &writer_opts, &w) != 0) return 1;
    if (weft_thread_start(heartbeat, NULL, &heartbeat_opts, &h) != 0) return 1;
    weft_thread_release(w); /* no join: the exit rule takes care of the writer */
    weft_thread_release(h);

    printf("  %.2f s  main: returning from main with %zu threads alive\n",
           weft_time_monotonic() - t0, weft_thread_active_count());
    fflush(stdout);
    return 0;
}
