/*
 * aarch64.S — the coroutine context switch for AArch64 (AAPCS64).
 *
 * void weft__ctx_switch(weft__ctx_t *from, weft__ctx_t *to)
 *   Saves the callee-saved registers (x19-x28, the frame pointer x29, the link register x30
 *   and the low halves d8-d15 of v8-v15) and the floating-point control register FPCR
 *   (rounding mode, flush-to-zero, default NaN: each coroutine's own, as the x86-64 switch
 *   keeps MXCSR's control bits) on the current stack, stores sp in from->sp, loads to->sp,
 *   restores the same set and returns through x30. FPCR is written only when it differs (a
 *   write can be slow where it is a serialising system-register write).
 *
 * The frame, from sp up: d8-d15, x19-x28, x29, x30, FPCR, a pad to 16 bytes (0xb0 bytes).
 * A new context (weft__ctx_make) holds a frame whose x30 slot is weft__ctx_start, whose x19
 * slot is the argument and whose FPCR is 0 (Linux's default: round to nearest):
 * weft__ctx_start calls weft__ctx_entry(arg), which never returns.
 */
    .text
    .globl weft__ctx_switch
    .hidden weft__ctx_switch
    .type weft__ctx_switch, %function
    .p2align 4
weft__ctx_switch:
    .cfi_startproc
    sub sp, sp, #0xb0
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
    mrs x10, fpcr
    str x10, [sp, #0xa0]
    mov x9, sp
    str x9, [x0]
    ldr x9, [x1]
    mov sp, x9
    ldr x11, [sp, #0xa0]
    cmp x11, x10
    b.eq 1f
    msr fpcr, x11
1:
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
    add sp, sp, #0xb0
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
