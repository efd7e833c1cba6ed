/*
 * x86_64.S — the coroutine context switch for x86-64 (System V ABI).
 *
 * void weft__ctx_switch(weft__ctx_t *from, weft__ctx_t *to)
 *   Saves what the ABI makes callee-saved (rbx, rbp, r12-r15, the MXCSR control bits and the
 *   x87 control word) on the current stack, stores the stack pointer in from->sp, loads
 *   to->sp and restores the same set from there. Everything else is caller-saved, so the C
 *   compiler has already spilled what it needs.
 *
 * A new context (weft__ctx_make) holds a frame whose return address is weft__ctx_start and
 * whose r12 slot is the argument: weft__ctx_start calls weft__ctx_entry(arg), which never
 * returns.
 */
    .text
    .globl weft__ctx_switch
    .hidden weft__ctx_switch
    .type weft__ctx_switch, @function
    .p2align 4
weft__ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size weft__ctx_switch, .-weft__ctx_switch

    .globl weft__ctx_start
    .hidden weft__ctx_start
    .type weft__ctx_start, @function
    .p2align 4
weft__ctx_start:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    call weft__ctx_entry
    ud2
    .cfi_endproc
    .size weft__ctx_start, .-weft__ctx_start

    .section .note.GNU-stack,"",@progbits
