/*
 * Malloc port: the hot hooks inline (see SMP_PORT_INLINE in port.h).
 *
 * In a process nothing stops a thread between any two instructions, and
 * threads outnumber cores, so "this CPU" cannot mean the core a thread runs
 * on.  Instead each virtual CPU (vCPU) has an owner word, and a thread
 * *owns* a vCPU for the whole of each front-end call (malloc, free, ...):
 * one atomic exchange on entry, one release store on exit (vcpu.h).  While
 * it owns the vCPU no other thread can touch that vCPU's caches, preempted
 * or not, so the core's sections need no protection of their own: push and
 * pop only count (to catch a pop without a push, as port.h asks), and the
 * CPU id is the vCPU the thread owns now.  Cross-calls take the target's
 * owner word the same way (port.c).
 */
#ifndef SMPMEM_MALLOC_PORT_INLINE_H
#define SMPMEM_MALLOC_PORT_INLINE_H

/* What a thread knows about itself.  Initial-exec TLS: one %fs-relative
 * access, no __tls_get_addr (the library is preloaded, so its TLS is in the
 * static block). */
struct smpm_thread {
    int cur;        /* the vCPU this thread owns now (-1: none) */
    int depth;      /* "interrupts pushed off" nesting, counted only */
    int xdepth;     /* nesting of cross-calls this thread is running */
    int borrowed;   /* cur is held for it already (fork prepare): exit keeps it */
};
extern __thread struct smpm_thread smpm_self __attribute__((tls_model("initial-exec")));

_Noreturn void smpm_pop_underflow(void);

static inline int smp_port_cpu_id(void) { return smpm_self.cur; }

static inline void smp_port_irq_push(void) { smpm_self.depth++; }

static inline void smp_port_irq_pop(void)
{
    if (__builtin_expect(smpm_self.depth <= 0, 0))
        smpm_pop_underflow();
    smpm_self.depth--;
}

/* Freed blocks of 1 MiB and more go back to the kernel (port.c), as glibc
 * unmaps its large chunks. */
#include <stddef.h>
#define SMP_PORT_HAS_DISCARD 1
void smp_port_discard(void *p, size_t len);

#endif
