/*
 * Virtual CPUs for the malloc front end: owner words, entry and exit.
 *
 * Interface:
 *   smpm_vcpu_setup(ncpu)  once, before the first smpm_enter (init).
 *   smpm_enter()           take a vCPU for this thread: the CPU the core sees
 *                          (smp_port_cpu_id) until smpm_exit.  One compare-
 *                          and-swap when the preferred vCPU is free and no
 *                          thread waits for a particular word.
 *   smpm_exit()            give it back: one release store.
 * Between the two the thread may call any core function; it must not call
 * smpm_enter again (the front end never nests).
 *
 * Invariants (vcpu[k].owner is the guard of vCPU k's per-CPU caches):
 *   owner == 0                 nobody is in vCPU k's caches;
 *   owner == token(T)          only thread T may touch them, and T's
 *                              smpm_self.cur == k, or T is running a
 *                              cross-call for k, or T holds every vCPU for
 *                              fork (smpm_fork_holder == token(T)).
 * Taking an owner word is an acquire, giving it back a release, so what one
 * owner wrote in the caches is visible to the next.
 */
#ifndef SMPMEM_MALLOC_VCPU_H
#define SMPMEM_MALLOC_VCPU_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "port_inline.h"
#include "vcpu_map.h"

struct smpm_vcpu {
    _Alignas(128) _Atomic uintptr_t owner;   /* 0 or the owning thread's token */
    /* Takes by a thread whose core's vCPU was held (SMPMEM_STATS); written
     * by the owner only, so a relaxed load and store, no read-modify-write. */
    _Atomic unsigned long displaced;
};

extern struct smpm_vcpu smpm_vcpus[];        /* SMP_MAX_CPUS of them; smpm_ncpu used */
/* Threads waiting for one particular owner word (a cross-call or fork
 * prepare) that did not get it at once.  While it is non-zero an entering
 * thread gives a word it just took back and waits: without that, threads
 * that free and retake a word in a tight loop starve the waiter (a fork
 * with busy worker threads hung for ever).  Written only on those slow
 * paths, so the line stays shared and the fast path pays one plain load. */
extern _Atomic int smpm_stop_pending;
extern int smpm_ncpu;
extern uint8_t smpm_vcpu_of[SMPM_CPU_IDS];  /* CPU id -> preferred vCPU (vcpu_map.h) */
extern ptrdiff_t smpm_rseq_cpu;              /* offset of rseq cpu_id from the thread pointer, or 0 */
extern __thread int smpm_last __attribute__((tls_model("initial-exec")));

void smpm_vcpu_setup(int ncpu);
void smpm_enter_slow(int want);
void smpm_exit_slow(void);

/* A thread's token: the address of its TLS block, unique among live threads. */
static inline uintptr_t smpm_token(void) { return (uintptr_t)&smpm_self; }

/* The vCPU this thread would like: the one its core prefers (vcpu_map.h;
 * its caches are warm in this core's cache), from the rseq area glibc
 * keeps up to date; else the one it had last time. */
static inline int smpm_preferred(void)
{
    int c = -1;
#if defined(__x86_64__)
    if (__builtin_expect(smpm_rseq_cpu != 0, 1)) {
        char *tp;
        __asm__("mov %%fs:0, %0" : "=r"(tp));
        c = *(volatile int *)(tp + smpm_rseq_cpu);
    }
#endif
    if (__builtin_expect(c < 0, 0))
        return smpm_last;
    return c < SMPM_CPU_IDS ? smpm_vcpu_of[c] : c % smpm_ncpu;
}

static inline void smpm_enter(void)
{
    int k = smpm_preferred();
    uintptr_t free_word = 0;
    if (__builtin_expect(atomic_compare_exchange_strong_explicit(&smpm_vcpus[k].owner, &free_word,
                             smpm_token(), memory_order_acquire, memory_order_relaxed) &&
                         !atomic_load_explicit(&smpm_stop_pending, memory_order_relaxed), 1)) {
        smpm_self.cur = k;
        return;
    }
    smpm_enter_slow(k);
}

static inline void smpm_exit(void)
{
    if (__builtin_expect(smpm_self.borrowed, 0)) {
        smpm_exit_slow();
        return;
    }
    atomic_store_explicit(&smpm_vcpus[smpm_self.cur].owner, 0, memory_order_release);
}

#endif
