# Entry points and the trap vector of the riscv64 kernel.
#
# OpenSBI enters _entry on the boot hart in S-mode with a0 = hart id,
# a1 = the device tree; harts started by SBI HSM enter _entry_secondary
# with a0 = hart id.  Each hart keeps its id in tp (the port's cpu id) and
# gets KSTACK bytes of stack; interrupts stay off until the C code is ready.

#define KSTACK 32768

# tp = hart id (a0); sp = the top of that hart's stack in hart_stacks.
.macro hart_stack
        mv      tp, a0
        la      sp, hart_stacks
        li      t0, KSTACK
        addi    t1, a0, 1
        mul     t0, t0, t1
        add     sp, sp, t0
.endm

        .section .text.entry
        .globl _entry
_entry:
        hart_stack
        # zero .bss (the stacks live in .stacks, outside it)
        la      t0, __bss_start
        la      t1, __bss_end
1:      bgeu    t0, t1, 2f
        sd      zero, 0(t0)
        addi    t0, t0, 8
        j       1b
2:      call    kmain
3:      wfi
        j       3b

        .globl _entry_secondary
_entry_secondary:
        hart_stack
        call    kmain_secondary
4:      wfi
        j       4b

# Traps come only from S-mode (no user mode here), on the current stack.
# Save the registers a C call may clobber, plus sepc and sstatus (a handler
# that waits may be interrupted by nothing, but keep them exact anyway).
        .text
        .globl trap_vector
        .align 4
trap_vector:
        addi    sp, sp, -144
        sd      ra, 0(sp)
        sd      t0, 8(sp)
        sd      t1, 16(sp)
        sd      t2, 24(sp)
        sd      a0, 32(sp)
        sd      a1, 40(sp)
        sd      a2, 48(sp)
        sd      a3, 56(sp)
        sd      a4, 64(sp)
        sd      a5, 72(sp)
        sd      a6, 80(sp)
        sd      a7, 88(sp)
        sd      t3, 96(sp)
        sd      t4, 104(sp)
        sd      t5, 112(sp)
        sd      t6, 120(sp)
        csrr    t0, sepc
        sd      t0, 128(sp)
        csrr    t0, sstatus
        sd      t0, 136(sp)
        call    kernel_trap
        ld      t0, 128(sp)
        csrw    sepc, t0
        ld      t0, 136(sp)
        csrw    sstatus, t0
        ld      ra, 0(sp)
        ld      t0, 8(sp)
        ld      t1, 16(sp)
        ld      t2, 24(sp)
        ld      a0, 32(sp)
        ld      a1, 40(sp)
        ld      a2, 48(sp)
        ld      a3, 56(sp)
        ld      a4, 64(sp)
        ld      a5, 72(sp)
        ld      a6, 80(sp)
        ld      a7, 88(sp)
        ld      t3, 96(sp)
        ld      t4, 104(sp)
        ld      t5, 112(sp)
        ld      t6, 120(sp)
        addi    sp, sp, 144
        sret

        .section .stacks, "aw", @nobits
        .align 12
        .globl hart_stacks
hart_stacks:
        .space KSTACK * 16
