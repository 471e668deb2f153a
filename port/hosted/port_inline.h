/*
 * Hosted port: the hot hooks inline (see SMP_PORT_INLINE in port.h).
 * The thread-local CPU id and interrupt nesting depth live in port.c.
 */
#ifndef SMPMEM_HOSTED_PORT_INLINE_H
#define SMPMEM_HOSTED_PORT_INLINE_H

extern _Thread_local int smp_hosted_cpu;
extern _Thread_local int smp_hosted_noff;
_Noreturn void smp_hosted_pop_underflow(void);

static inline int smp_port_cpu_id(void) { return smp_hosted_cpu; }

static inline void smp_port_irq_push(void) { smp_hosted_noff++; }

static inline void smp_port_irq_pop(void)
{
    if (__builtin_expect(smp_hosted_noff <= 0, 0))
        smp_hosted_pop_underflow();
    smp_hosted_noff--;
}

#endif
