/*
 * x86-64 trampoline for the hosted push's slow path (port_inline.h): the
 * inline push calls it from the middle of a leaf fast path, so it saves
 * every general register the C function may clobber and aligns the stack;
 * the fast path then needs no spills of its own around the rare call.
 * In: %rdi = the vCPU record.  The caller's inline asm declares flags
 * and the vector registers clobbered.
 */
    .text
    .globl smp_hosted_push_held_tramp
    .type smp_hosted_push_held_tramp, @function
smp_hosted_push_held_tramp:
    push %rbp
    mov %rsp, %rbp
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    and $-16, %rsp
    call smp_hosted_push_held
    lea -72(%rbp), %rsp
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    pop %rbp
    ret
    .size smp_hosted_push_held_tramp, .-smp_hosted_push_held_tramp
    .section .note.GNU-stack,"",@progbits
