/* Hosted (pthreads) port: threads stand for CPUs. */
#ifndef SMPMEM_HOSTED_H
#define SMPMEM_HOSTED_H

/* Make the calling thread run as virtual CPU cpu (0 <= cpu < SMP_MAX_CPUS).
 * A thread that never binds is CPU 0.  At most one running thread may be
 * bound to a CPU at a time, as on real hardware: spinlocks identify their
 * holder by CPU (like xv6's holding()), so two threads on one CPU taking the
 * same lock would trip the self-deadlock check.  Panics on a bad cpu or when
 * called with interrupts pushed off. */
void smp_hosted_bind_cpu(int cpu);

/* The calling thread's interrupt-off nesting depth (tests check it is 0). */
int smp_hosted_irq_depth(void);

/* How many times any thread has called smp_port_relax (spun on a lock):
 * lets a test know that another CPU is spinning. */
unsigned long smp_hosted_relax_calls(void);

/* Bytes of free blocks given back to the kernel so far (smp_port_discard,
 * port.h: blocks of 2^SMP_DISCARD_ORDER pages and more, when freed). */
unsigned long smp_hosted_discarded_bytes(void);

#endif
