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

/* The push's token is the hart's record (port.h's SMP_PORT_HAS_PUSH_TOKEN),
 * which also keeps the core's words (SMP_PORT_HAS_CPU_WORDS): a fast path
 * computes &rv_harts[tp] once for the push, its caches and the pop. */
#define SMP_PORT_HAS_PUSH_TOKEN 1
typedef struct rv_hart *smp_port_token;

static inline smp_port_token smp_port_irq_push_token(int *cpu)
{
    unsigned long old;
    __asm__ volatile("csrrci %0, sstatus, 2" : "=r"(old) : : "memory");
    unsigned long id = rv_tp();
    struct rv_hart *h = &rv_harts[id];
    if (cpu)
        *cpu = (int)id;
    if (h->noff == 0)
        h->intena = (old & SSTATUS_SIE) != 0;
    h->noff++;
    return h;
}

/* The pop of the push that returned h: that push counted, so only the
 * interrupt test remains. */
static inline void smp_port_irq_pop_token(smp_port_token h)
{
    if (__builtin_expect(CSR_READ(sstatus) & SSTATUS_SIE, 0))
        rv_pop_bad("pop_off: interruptible");
    if (--h->noff == 0 && h->intena)
        __asm__ volatile("csrsi sstatus, 2" : : : "memory");
}

static inline void smp_port_irq_push(void)
{
    (void)smp_port_irq_push_token(0);
}

static inline void smp_port_irq_pop(void)
{
    struct rv_hart *h = &rv_harts[rv_tp()];
    if (__builtin_expect(h->noff < 1, 0))
        rv_pop_bad("pop_off: pop without push");
    smp_port_irq_pop_token(h);
}

/* Cross-calls are served by interrupt on the target hart, so a push (any
 * push: interrupts off) already excludes them; settle has nothing to wait
 * for. */
#define SMP_PORT_HAS_CPU_WORDS 1
void smp_port_set_cpu_word(int cpu, int i, void *p);
static inline void *smp_port_token_word(smp_port_token h, int i)
{
    return h->smp_words[i];
}

static inline void smp_port_irq_settle(void) {}

#endif
