/*
 * Traps: every one arrives from S-mode (there is no user mode) through
 * trap_vector (entry.S) with interrupts off.
 *
 *   software interrupt  an IPI: serve this hart's cross-call mailbox
 *   timer               re-arm through SBI, count, run timer_hook
 *   external            PLIC claim: the virtio disk
 * Anything else is a kernel bug: panic with scause, sepc and stval.
 *
 * An interrupt is taken only with sstatus.SIE set, which the port sets only
 * at push depth 0: so a handler never runs inside an smpmem section and may
 * call kalloc/kfree/page_alloc/page_free itself (checked below).
 */
#include "kernel.h"
#include <smpmem/port.h>

extern char trap_vector[];

void (*volatile timer_hook)(int cpu);
atomic_ulong timer_ticks[RV_MAX_HARTS];
static unsigned long tick_cycles = RV_TIMEBASE_HZ / 500;     /* 2 ms */

void timer_set_period_us(unsigned long us)
{
    tick_cycles = RV_TIMEBASE_HZ / 1000000 * us;
}

void trap_hart_init(void)
{
    CSR_WRITE(stvec, (uintptr_t)trap_vector);
    CSR_WRITE(sie, SIE_SSIE | SIE_STIE | SIE_SEIE);
    sbi_set_timer(rv_time() + tick_cycles);
}

static void timer_interrupt(int cpu)
{
    sbi_set_timer(rv_time() + tick_cycles);       /* also clears the pending bit */
    atomic_fetch_add_explicit(&timer_ticks[cpu], 1, memory_order_relaxed);
    void (*hook)(int) = timer_hook;
    if (hook)
        hook(cpu);
}

void kernel_trap(void)
{
    unsigned long cause = CSR_READ(scause);
    int cpu = (int)rv_tp();
    if ((long)cause >= 0) {
        char msg[160];
        ksnprintf(msg, sizeof msg, "kernel trap on hart %d: scause %lx sepc %lx stval %lx", cpu,
                  cause, CSR_READ(sepc), CSR_READ(stval));
        smp_port_panic(msg);
    }
    if (rv_harts[cpu].noff != 0)
        smp_port_panic("kernel_trap: interrupt taken with interrupts pushed off");
    switch (cause & 0xff) {
    case 1:
        CSR_CLEAR(sip, SIP_SSIP);      /* clear first: a later IPI raises it again */
        rv_xcall_poll();
        break;
    case 5:
        timer_interrupt(cpu);
        break;
    case 9: {
        int irq = plic_claim(cpu);
        if (irq == VIRT_VIRTIO0_IRQ)
            virtio_blk_intr();
        if (irq)
            plic_complete(cpu, irq);
        break;
    }
    default:
        smp_port_panic("kernel_trap: unexpected interrupt");
    }
}
