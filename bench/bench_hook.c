/*
 * bench_hook.c — what the monkey patch costs a call that it does not intercept.
 *
 * libweft.so defines read, write, close, ... (weft/hook.h); every caller in a process linking
 * it reaches weft's definition first, which passes the call on to libc's unless it comes from
 * a coroutine of a patched process. The goal (issue 6): a few ns per call. Measured on a call
 * that is as cheap as a system call gets, close(-1) (EBADF at once), 1,000,000 times per
 * repetition, ns per call:
 *   libc        libc's close, called through the pointer dlsym gives from libc.so.6 (no weft)
 *   unpatched   close() resolved to weft's definition, weft_monkey_patch never called
 *   patched     the same after weft_monkey_patch(), from a thread without coroutines
 * The figures are the overhead over libc's (difference of medians) and their ratio.
 */
#include "bench_common.h"

#include <dlfcn.h>
#include <unistd.h>

#include "weft/hook.h"

enum { REPS = 9, CALLS = 1000000 };

static int (*libc_close)(int);

static double run_libc(void *arg, double *extra)
{
    (void)arg, (void)extra;
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < CALLS; i++) libc_close(-1);
    return (double)(bench_now_ns() - t0) / CALLS;
}

static double run_weft(void *arg, double *extra)
{
    (void)extra;
    if (arg)
        weft_monkey_patch();
    else
        weft_monkey_unpatch();
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < CALLS; i++) close(-1);
    return (double)(bench_now_ns() - t0) / CALLS;
}

int main(void)
{
    /* libc's own close (RTLD_NEXT from here would find libweft.so's, which comes first). */
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    libc_close = libc ? (int (*)(int))dlsym(libc, "close") : NULL;
    bench_check(libc_close != NULL && (void *)libc_close != (void *)close, "finding libc's close");
    bench_header("bench_hook: the monkey patch's cost on a call it passes on", REPS);
    printf("# close(-1), %d calls per repetition\n", CALLS);
    bench_case_t cases[3] = {
        {.run = run_libc}, {.run = run_weft}, {.run = run_weft, .arg = (void *)1}};
    bench_interleave(cases, 3, REPS);
    weft_monkey_unpatch();
    bench_figure("hook close(-1) libc", cases[0].median, "ns per call");
    bench_figure("hook close(-1) weft unpatched", cases[1].median, "ns per call");
    bench_figure("hook close(-1) weft patched, outside coroutines", cases[2].median, "ns per call");
    bench_figure("hook overhead unpatched", cases[1].median - cases[0].median, "ns per call");
    bench_figure("hook overhead patched, outside coroutines", cases[2].median - cases[0].median,
                 "ns per call");
    bench_speedup("hook close(-1) weft unpatched", "libc", cases[0].median / cases[1].median);
    bench_speedup("hook close(-1) weft patched, outside coroutines", "libc",
                  cases[0].median / cases[2].median);
    return 0;
}
