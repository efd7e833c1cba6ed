/*
 * aarch64.S — the coroutine context switch for AArch64 (AAPCS64).
 *
 * void weft__ctx_switch(weft__ctx_t *from, weft__ctx_t *to)
 *   Saves the callee-saved registers (x19-x28, the frame pointer x29, the link register x30
 *   and the low halves d8-d15 of v8-v15) on the current stack, stores sp in from->sp, loads
 *   to->sp, restores the same set and returns through x30.
 *
 * A new context (weft__ctx_make) holds a frame whose x30 slot is weft__ctx_start and whose
 * x19 slot is the argument: weft__ctx_start calls weft__ctx_entry(arg), which never returns.
 */
    .text
    .globl weft__ctx_switch
    .hidden weft__ctx_switch
    .type weft__ctx_switch, %function
    .p2align 4
weft__ctx_switch:
    .cfi_startproc
    sub sp, sp, #0xa0
    stp d8, d9, [sp, #0x00]
    stp d10, d11, [sp, #0x10]
    stp d12, d13, [sp, #0x20]
    stp d14, d15, [sp, #0x30]
    stp x19, x20, [sp, #0x40]
    stp x21, x22, [sp, #0x50]
    stp x23, x24, [sp, #0x60]
    stp x25, x26, [sp, #0x70]
    stp x27, x28, [sp, #0x80]
    stp x29, x30, [sp, #0x90]
    mov x9, sp
    str x9, [x0]
    ldr x9, [x1]
    mov sp, x9
    ldp d8, d9, [sp, #0x00]
    ldp d10, d11, [sp, #0x10]
    ldp d12, d13, [sp, #0x20]
    ldp d14, d15, [sp, #0x30]
    ldp x19, x20, [sp, #0x40]
    ldp x21, x22, [sp, #0x50]
    ldp x23, x24, [sp, #0x60]
    ldp x25, x26, [sp, #0x70]
    ldp x27, x28, [sp, #0x80]
    ldp x29, x30, [sp, #0x90]
    add sp, sp, #0xa0
    ret
    .cfi_endproc
    .size weft__ctx_switch, .-weft__ctx_switch

    .globl weft__ctx_start
    .hidden weft__ctx_start
    .type weft__ctx_start, %function
    .p2align 4
weft__ctx_start:
    .cfi_startproc
    .cfi_undefined x30
    mov x0, x19
    bl weft__ctx_entry
    brk #0
    .cfi_endproc
    .size weft__ctx_start, .-weft__ctx_start

    .section .note.GNU-stack,"",%progbits
