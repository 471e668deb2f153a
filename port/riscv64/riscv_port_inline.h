/*
 * riscv64 port: the three hooks on every kalloc/kfree, inline (port.h's
 * SMP_PORT_INLINE).  The core is built with
 *   -Iport/riscv64 -DSMP_PORT_INLINE='"riscv_port_inline.h"'
 *
 *   cpu id  the hart id, kept in tp by the kernel's entry code (C code never
 *           writes tp: no thread-local storage in the kernel).
 *   push    xv6's push_off: clear sstatus.SIE with one csrrc (atomic with
 *           respect to interrupts), remember the old bit at depth 0, count.
 *   pop     xv6's pop_off: panic if interrupts are on or nothing was pushed;
 *           the last pop sets SIE again if the first push found it set.
 * The asm statements clobber memory: they are compiler barriers, so no
 * access of a section moves outside its push/pop.
 */
#ifndef SMPMEM_RISCV_PORT_INLINE_H
#define SMPMEM_RISCV_PORT_INLINE_H

#include "riscv.h"

_Noreturn void rv_pop_bad(const char *why);

static inline int smp_port_cpu_id(void) { return (int)rv_tp(); }

static inline void smp_port_irq_push(void)
{
    unsigned long old;
    __asm__ volatile("csrrci %0, sstatus, 2" : "=r"(old) : : "memory");
    struct rv_hart *h = &rv_harts[rv_tp()];
    if (h->noff == 0)
        h->intena = (old & SSTATUS_SIE) != 0;
    h->noff++;
}

static inline void smp_port_irq_pop(void)
{
    struct rv_hart *h = &rv_harts[rv_tp()];
    if (__builtin_expect(CSR_READ(sstatus) & SSTATUS_SIE, 0))
        rv_pop_bad("pop_off: interruptible");
    if (__builtin_expect(h->noff < 1, 0))
        rv_pop_bad("pop_off: pop without push");
    if (--h->noff == 0 && h->intena)
        __asm__ volatile("csrsi sstatus, 2" : : : "memory");
}

#endif
