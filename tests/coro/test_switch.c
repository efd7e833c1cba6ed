/*
 * The coroutine context switch itself (src/coro/arch/<arch>.S, or ucontext): what a coroutine
 * finds in its registers after others ran in between. Every switch implementation must keep
 * what the ABI makes callee-saved (x86-64: rbx, rbp, r12-r15; aarch64: x19-x28, x29, d8-d15)
 * and each coroutine's floating-point control state (the rounding mode: x86-64's MXCSR and
 * x87 control word, aarch64's FPCR). `make test-aarch64` runs these on aarch64 under qemu-user,
 * with the assembly switch and with the ucontext one, and natively with the ucontext one.
 */
#include "weft_test.h"

#include <fenv.h>
#include <stdint.h>

/* ---- callee-saved registers ------------------------------------------------------------
 * regs_probe(seed, mid) loads every callee-saved general register (and on aarch64 d8-d15)
 * with seed + k, calls mid(), and returns how many of them no longer hold seed + k. It keeps
 * the ABI itself (saves and restores them around its work), so C can call it. */
uint64_t regs_probe(uint64_t seed, void (*mid)(void));

#if defined(__x86_64__)
#define HAVE_PROBE 1
// clang-format off
__asm__(".text\n"
        ".p2align 4\n"
        ".type regs_probe, @function\n"
        "regs_probe:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    pushq %rdi\n" /* the seed; the stack is 16-byte aligned for the call */
        "    leaq 1(%rdi), %rbx\n"
        "    leaq 2(%rdi), %rbp\n"
        "    leaq 3(%rdi), %r12\n"
        "    leaq 4(%rdi), %r13\n"
        "    leaq 5(%rdi), %r14\n"
        "    leaq 6(%rdi), %r15\n"
        "    call *%rsi\n"
        "    movq (%rsp), %rdi\n"
        "    xorl %eax, %eax\n"
        "    leaq 1(%rdi), %rdx\n"
        "    cmpq %rdx, %rbx\n"
        "    setne %cl\n"
        "    movzbl %cl, %ecx\n"
        "    addq %rcx, %rax\n"
        "    leaq 2(%rdi), %rdx\n"
        "    cmpq %rdx, %rbp\n"
        "    setne %cl\n"
        "    movzbl %cl, %ecx\n"
        "    addq %rcx, %rax\n"
        "    leaq 3(%rdi), %rdx\n"
        "    cmpq %rdx, %r12\n"
        "    setne %cl\n"
        "    movzbl %cl, %ecx\n"
        "    addq %rcx, %rax\n"
        "    leaq 4(%rdi), %rdx\n"
        "    cmpq %rdx, %r13\n"
        "    setne %cl\n"
        "    movzbl %cl, %ecx\n"
        "    addq %rcx, %rax\n"
        "    leaq 5(%rdi), %rdx\n"
        "    cmpq %rdx, %r14\n"
        "    setne %cl\n"
        "    movzbl %cl, %ecx\n"
        "    addq %rcx, %rax\n"
        "    leaq 6(%rdi), %rdx\n"
        "    cmpq %rdx, %r15\n"
        "    setne %cl\n"
        "    movzbl %cl, %ecx\n"
        "    addq %rcx, %rax\n"
        "    popq %rdi\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size regs_probe, .-regs_probe\n");
// clang-format on
#elif defined(__aarch64__)
#define HAVE_PROBE 1
/* Frame: x29, x30 | x19-x28 | d8-d15 | the seed (176 bytes, 16-byte aligned). */
#define CHECK_X(r, k)                                                                              \
    "    add x9, x0, #" #k "\n"                                                                    \
    "    cmp " #r ", x9\n"                                                                         \
    "    cinc x1, x1, ne\n"
#define CHECK_D(r, k)                                                                              \
    "    add x9, x0, #" #k "\n"                                                                    \
    "    fmov x10, " #r "\n"                                                                       \
    "    cmp x10, x9\n"                                                                            \
    "    cinc x1, x1, ne\n"
#define LOAD_D(r, k)                                                                               \
    "    add x9, x0, #" #k "\n"                                                                    \
    "    fmov " #r ", x9\n"
// clang-format off
__asm__(".text\n"
        ".p2align 4\n"
        ".type regs_probe, %function\n"
        "regs_probe:\n"
        "    stp x29, x30, [sp, #-176]!\n"
        "    mov x29, sp\n"
        "    stp x19, x20, [sp, #16]\n"
        "    stp x21, x22, [sp, #32]\n"
        "    stp x23, x24, [sp, #48]\n"
        "    stp x25, x26, [sp, #64]\n"
        "    stp x27, x28, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    str x0, [sp, #160]\n"
        "    add x19, x0, #1\n"
        "    add x20, x0, #2\n"
        "    add x21, x0, #3\n"
        "    add x22, x0, #4\n"
        "    add x23, x0, #5\n"
        "    add x24, x0, #6\n"
        "    add x25, x0, #7\n"
        "    add x26, x0, #8\n"
        "    add x27, x0, #9\n"
        "    add x28, x0, #10\n"
        LOAD_D(d8, 11)
        LOAD_D(d9, 12)
        LOAD_D(d10, 13)
        LOAD_D(d11, 14)
        LOAD_D(d12, 15)
        LOAD_D(d13, 16)
        LOAD_D(d14, 17)
        LOAD_D(d15, 18)
        "    blr x1\n"
        "    ldr x0, [sp, #160]\n"
        "    mov x1, #0\n"
        CHECK_X(x19, 1)
        CHECK_X(x20, 2)
        CHECK_X(x21, 3)
        CHECK_X(x22, 4)
        CHECK_X(x23, 5)
        CHECK_X(x24, 6)
        CHECK_X(x25, 7)
        CHECK_X(x26, 8)
        CHECK_X(x27, 9)
        CHECK_X(x28, 10)
        CHECK_D(d8, 11)
        CHECK_D(d9, 12)
        CHECK_D(d10, 13)
        CHECK_D(d11, 14)
        CHECK_D(d12, 15)
        CHECK_D(d13, 16)
        CHECK_D(d14, 17)
        CHECK_D(d15, 18)
        "    mov x0, x1\n"
        "    ldp x19, x20, [sp, #16]\n"
        "    ldp x21, x22, [sp, #32]\n"
        "    ldp x23, x24, [sp, #48]\n"
        "    ldp x25, x26, [sp, #64]\n"
        "    ldp x27, x28, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    ldp x29, x30, [sp], #176\n"
        "    ret\n"
        ".size regs_probe, .-regs_probe\n");
// clang-format on
#else
#define HAVE_PROBE 0
#endif

static void yield_once(void)
{
    assert_int_equal(weft_co_yield(), 0);
}

typedef struct probe_arg {
    uint64_t seed;
    uint64_t lost;
} probe_arg_t;

static void probe_co(void *p)
{
    probe_arg_t *a = p;
#if HAVE_PROBE
    a->lost = regs_probe(a->seed, yield_once);
#else
    a->lost = 0;
#endif
}

/* Two coroutines each fill the callee-saved registers with their own values and yield to the
 * other, which fills them with its own: each must find its values back after the switch. */
static void callee_saved_registers_survive_a_switch(void **state)
{
    (void)state;
    if (!HAVE_PROBE) skip();
    probe_arg_t a = {.seed = 0x1000, .lost = 99}, b = {.seed = 0x2000, .lost = 99};
    weft_co_t *ca = weft_test_spawn(probe_co, &a), *cb = weft_test_spawn(probe_co, &b);
    weft_test_co_join(ca);
    weft_test_co_join(cb);
    assert_int_equal(a.lost, 0);
    assert_int_equal(b.lost, 0);
}

/* ---- the floating-point control state -------------------------------------------------- */

typedef struct round_arg {
    int mode;     /* the rounding mode this coroutine sets */
    int found;    /* what it found before setting it */
    int kept;     /* what it found after a yield */
    double third; /* 1/3 computed in its mode after the yield */
} round_arg_t;

static volatile double one = 1.0, three = 3.0; /* not folded at compile time */

static void round_co(void *p)
{
    round_arg_t *a = p;
    a->found = fegetround();
    assert_int_equal(fesetround(a->mode), 0);
    yield_once();
    a->kept = fegetround();
    a->third = one / three;
    assert_int_equal(fesetround(FE_TONEAREST), 0);
}

/* Each coroutine's rounding mode is its own, as its callee-saved registers are: one that sets
 * FE_UPWARD and yields does not change how the next one rounds, and finds FE_UPWARD again
 * when it resumes. */
static void rounding_mode_is_per_coroutine(void **state)
{
    (void)state;
    round_arg_t up = {.mode = FE_UPWARD}, down = {.mode = FE_DOWNWARD};
    weft_co_t *cu = weft_test_spawn(round_co, &up), *cd = weft_test_spawn(round_co, &down);
    weft_test_co_join(cu);
    weft_test_co_join(cd);
    assert_int_equal(fegetround(), FE_TONEAREST); /* the caller's own, untouched */
    assert_int_equal(up.found, FE_TONEAREST);
    assert_int_equal(down.found, FE_TONEAREST); /* not the FE_UPWARD the first one left */
    assert_int_equal(up.kept, FE_UPWARD);
    assert_int_equal(down.kept, FE_DOWNWARD);
    /* The modes took effect: the two 1/3 differ by an ulp. (Not under valgrind, whose SSE
     * arithmetic rounds to nearest whatever MXCSR says; it keeps and reports the mode.) */
    if (!RUNNING_ON_VALGRIND) assert_true(up.third > down.third);
}

static const struct CMUnitTest cases[] = {
    WEFT_TEST(callee_saved_registers_survive_a_switch),
    WEFT_TEST(rounding_mode_is_per_coroutine),
};

WEFT_TEST_MAIN(cases)
