/*
 * ctx.c — building a new machine context (see ctx.h); the switch itself is in arch/<arch>.S,
 * or swapcontext for the fallback.
 */
#include "ctx.h"

#include <string.h>

#ifdef WEFT_CORO_UCONTEXT

/* makecontext passes int arguments only: the pointer goes in two halves. */
static void start(unsigned hi, unsigned lo)
{
    weft__ctx_entry((void *)(((uintptr_t)hi << 32) | (uintptr_t)lo));
}

void weft__ctx_make(weft__ctx_t *ctx, void *lo, size_t size, void *arg)
{
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    uint64_t a = (uintptr_t)arg;
    makecontext(&ctx->uc, (void (*)(void))start, 2, (unsigned)(a >> 32), (unsigned)a);
}

void weft__ctx_switch(weft__ctx_t *from, weft__ctx_t *to)
{
    swapcontext(&from->uc, &to->uc);
}

#else

void weft__ctx_start(void); /* arch/<arch>.S */

void weft__ctx_make(weft__ctx_t *ctx, void *lo, size_t size, void *arg)
{
    /* The top, 16-byte aligned; the frame below it is what weft__ctx_switch pops. */
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* [control words][r15][r14][r13][r12 = arg][rbx][rbp][return = weft__ctx_start]: after
     * the final ret the stack pointer is `top`, aligned as a call site wants it. */
    uint64_t *sp = (uint64_t *)top - 8;
    memset(sp, 0, 8 * sizeof *sp);
    sp[0] = 0x1f80u | ((uint64_t)0x037fu << 32); /* MXCSR and x87 control word defaults */
    sp[4] = (uintptr_t)arg;
    sp[7] = (uintptr_t)weft__ctx_start;
#else
    /* d8-d15, x19 (= arg) ... x28, x29 (0: the end of the frame chain), x30 (= start),
     * FPCR (0: Linux's default, round to nearest), a pad. */
    uint64_t *sp = (uint64_t *)top - 22;
    memset(sp, 0, 22 * sizeof *sp);
    sp[8] = (uintptr_t)arg;
    sp[19] = (uintptr_t)weft__ctx_start;
#endif
    ctx->sp = sp;
}

#endif
