/*
 * ctx.h — machine contexts: the one place that knows how a coroutine's registers are saved.
 *
 * Two implementations, chosen at build time: the hand-written switch of arch/<arch>.S
 * (x86-64, aarch64: saves only the callee-saved registers, a few nanoseconds), or the
 * portable ucontext fallback (WEFT_CORO_UCONTEXT, or any other architecture; swapcontext also
 * saves the signal mask with a system call, so it is far slower).
 *
 * weft__ctx_make prepares `ctx` to run weft__ctx_entry(arg) on the stack [lo, lo + size) at
 * its first weft__ctx_switch into it. weft__ctx_entry must never return.
 */
#ifndef WEFT_CORO_CTX_H
#define WEFT_CORO_CTX_H

#include <stddef.h>
#include <stdint.h>

#if !defined(WEFT_CORO_UCONTEXT) && !defined(__x86_64__) && !defined(__aarch64__)
#define WEFT_CORO_UCONTEXT 1
#endif

#ifdef WEFT_CORO_UCONTEXT
#include <ucontext.h>
typedef struct weft__ctx {
    ucontext_t uc;
} weft__ctx_t;
#else
typedef struct weft__ctx {
    void *sp;
} weft__ctx_t;
#endif

void weft__ctx_make(weft__ctx_t *ctx, void *lo, size_t size, void *arg);
void weft__ctx_switch(weft__ctx_t *from, weft__ctx_t *to);

/* Defined by the hub: the first code a new context runs. */
_Noreturn void weft__ctx_entry(void *arg);

#endif /* WEFT_CORO_CTX_H */
