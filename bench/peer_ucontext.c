/*
 * peer_ucontext.c — glibc's swapcontext ping-pong for bench_coro.c (see peer_context.h).
 */
#include "peer_context.h"

#include "bench_common.h"

#include <ucontext.h>

static ucontext_t main_uc, other_uc;

/* The other side: hands control straight back, forever (the context is dropped unfinished). */
static void bounce(void)
{
    for (;;) swapcontext(&other_uc, &main_uc);
}

double peer_ucontext_switch_ns(long n)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    bench_check(getcontext(&other_uc) == 0, "getcontext");
    other_uc.uc_stack.ss_sp = stack;
    other_uc.uc_stack.ss_size = sizeof stack;
    other_uc.uc_link = NULL;
    makecontext(&other_uc, bounce, 0);
    swapcontext(&main_uc, &other_uc); /* starts it: the first switch is not timed */
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) swapcontext(&main_uc, &other_uc);
    return (double)(bench_now_ns() - t0) / (double)(2 * n);
}
