/*
 * Hosted port: the hot hooks inline (see SMP_PORT_INLINE in port.h).
 *
 * Each virtual CPU publishes its interrupt-off depth (noff) so that a
 * cross-call from another thread can wait until the CPU is outside every
 * section (port.c).  The owner's push is a plain store and a plain load:
 *
 *   owner push (depth 0 -> 1):  noff = 1;  [compiler barrier]  if (held) wait
 *   asker:                      held = 1;  membarrier();       wait for noff == 0
 *
 * membarrier makes every running thread execute a full barrier, so either
 * the owner's store is visible to the asker (which waits) or the owner's
 * load sees held (and the owner waits): an asymmetric Dekker, with the
 * expensive half on the rare side.  ThreadSanitizer does not understand
 * membarrier, so a TSan build uses the symmetric stand-in: seq_cst store
 * and load on the owner's side (an mfence), no membarrier on the asker's.
 */
#ifndef SMPMEM_HOSTED_PORT_INLINE_H
#define SMPMEM_HOSTED_PORT_INLINE_H

#include <stdatomic.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define SMP_HOSTED_SYMMETRIC 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SMP_HOSTED_SYMMETRIC 1
#endif
#endif

struct smp_hosted_vcpu {
    _Alignas(128) _Atomic int noff;   /* published push depth; written by its thread */
    _Atomic int held;                 /* a cross-call has this CPU (under xmu) */
    int cpu;                          /* the CPU id of the thread counting here */
};

/* The record this thread's pushes count in: its CPU's, or a private one
 * while the thread runs a cross-called function for another CPU. */
extern _Thread_local struct smp_hosted_vcpu *smp_hosted_self;
extern _Thread_local int smp_hosted_cpu;
/* The push's rare slow path (wait.c).  On x86-64 it is reached through a
 * trampoline that saves every general register (wait_x86_64.S), so the
 * inline push costs the fast paths no spills around a call they almost
 * never make.  (The asm steps over the red zone a leaf may use.) */
void smp_hosted_wait_released(struct smp_hosted_vcpu *v, int depth);
static inline void smp_hosted_wait_held(struct smp_hosted_vcpu *v)
{
#if defined(__x86_64__) && !defined(SMP_HOSTED_SYMMETRIC)
    __asm__ volatile("sub $128, %%rsp\n\tcall smp_hosted_wait_released_tramp\n\tadd $128, %%rsp"
                     : : "D"(v), "S"(1)
                     : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
                       "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
#else
    smp_hosted_wait_released(v, 1);
#endif
}
_Noreturn void smp_hosted_pop_underflow(void);

static inline int smp_port_cpu_id(void) { return smp_hosted_self->cpu; }

/* Who is running: this thread (the address of one of its thread-locals). */
#define SMP_PORT_HAS_SELF 1
static inline uintptr_t smp_port_self(void) { return (uintptr_t)&smp_hosted_cpu; }

static inline void smp_port_irq_push(void)
{
    struct smp_hosted_vcpu *v = smp_hosted_self;
    int n = atomic_load_explicit(&v->noff, memory_order_relaxed);
#ifdef SMP_HOSTED_SYMMETRIC
    atomic_store_explicit(&v->noff, n + 1, memory_order_seq_cst);
    if (__builtin_expect(atomic_load_explicit(&v->held, memory_order_seq_cst) && n == 0, 0))
        smp_hosted_wait_held(v);
#else
    atomic_store_explicit(&v->noff, n + 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    if (__builtin_expect(atomic_load_explicit(&v->held, memory_order_acquire) && n == 0, 0))
        smp_hosted_wait_held(v);
#endif
}

static inline void smp_port_irq_pop(void)
{
    struct smp_hosted_vcpu *v = smp_hosted_self;
    int n = atomic_load_explicit(&v->noff, memory_order_relaxed);
    if (__builtin_expect(n <= 0, 0))
        smp_hosted_pop_underflow();
    atomic_store_explicit(&v->noff, n - 1, memory_order_release);
}

#endif
