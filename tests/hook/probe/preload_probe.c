/*
 * preload_probe — the monkey patch through the shared library and the environment: this
 * program links libweft.so (not the static library the test suite uses), never calls
 * weft_monkey_patch, and runs 20 coroutines that each call plain usleep(50 ms) and a plain
 * read() on a pipe another coroutine fills. With WEFT_PATCH=1 in the environment the calls
 * park only their coroutine (all done in ~50 ms); without it each blocks the thread (~1 s).
 * Argument: "concurrent" or "sequential", what to expect. Exit status 0 when it matched.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"

static int fds[2];

static void nap(void *arg)
{
    (void)arg;
    usleep(50000);
}

static void reader(void *arg)
{
    char c;
    *(ssize_t *)arg = read(fds[0], &c, 1);
}

static void writer(void *arg)
{
    (void)arg;
    usleep(20000);
    if (write(fds[1], "w", 1) != 1) _exit(3);
}

int main(int argc, char **argv)
{
    if (argc != 2 || pipe(fds)) return 2;
    bool want_concurrent = !strcmp(argv[1], "concurrent");
    weft_co_t *c[22];
    ssize_t got = 0;
    double t0 = weft_time_monotonic();
    for (int i = 0; i < 20; i++)
        if (weft_co_spawn(nap, NULL, NULL, &c[i]) != 0) return 2;
    /* Unpatched, the reader would block the thread forever before the writer runs: only
     * start the pair when the patch is expected. */
    int n = 20;
    if (want_concurrent) {
        if (weft_co_spawn(reader, &got, NULL, &c[n++]) != 0) return 2;
        if (weft_co_spawn(writer, NULL, NULL, &c[n++]) != 0) return 2;
    }
    weft_co_join_all(c, (size_t)n, 30);
    double took = weft_time_monotonic() - t0;
    for (int i = 0; i < n; i++) weft_co_release(c[i]);
    const weft_patch_t *list;
    size_t k = weft_monkey_patched(&list), active = 0;
    for (size_t i = 0; i < k; i++) active += list[i].active;
    printf("%d coroutines in %.3f s; %zu of %zu calls intercepted\n", n, took, active, k);
    if (want_concurrent) return took < 0.5 && got == 1 && active == k ? 0 : 1;
    return took >= 0.9 && active == 0 ? 0 : 1;
}
