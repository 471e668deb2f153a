/*
 * Per-CPU page caches: the fast paths, inline (slow paths in pcp.c).
 *
 * Lock order: pcp[cpu].lock -> zone.lock.  The fast paths hold only this
 * CPU's pcp lock, with interrupts pushed off, and are leaves: an empty or
 * full ring, a contended first test-and-set, or a bad free is a tail call
 * into pcp.c that finishes the operation (releases the lock, pops
 * interrupts).
 */
#ifndef SMPMEM_PCP_H
#define SMPMEM_PCP_H

#include "pmm_internal.h"
#include "base/spinlock_inline.h"

/* Slow paths.  `held`: whether pcp[cpu].lock is already ours. */
uint32_t smp_pcp_alloc_slow(struct smp_pmm *m, int cpu, unsigned o, int held);
void smp_pcp_free_slow(struct smp_pmm *m, int cpu, uint32_t idx, unsigned o, int held);

/* A block of order o < SMP_PCP_ORDERS, marked PG_ALLOC, or SMP_NIL. */
static inline uint32_t smp_pcp_alloc(struct smp_pmm *m, unsigned o)
{
    smp_port_irq_push();
    int cpu = smp_this_cpu(m);
    struct smp_pcp *c = &m->pcp[cpu];
    if (__builtin_expect(!smp_lock_try_local(&c->lock), 0))
        return smp_pcp_alloc_slow(m, cpu, o, 0);
    struct smp_pcp_ring *r = &c->ring[o];
    uint32_t top = atomic_load_explicit(&r->top, memory_order_relaxed);
    if (__builtin_expect(top == atomic_load_explicit(&r->bottom, memory_order_relaxed), 0))
        return smp_pcp_alloc_slow(m, cpu, o, 1);
    top--;
    uint32_t idx = r->slots[top & r->mask];
    atomic_store_explicit(&r->top, top, memory_order_relaxed);
    smp_set_state(&m->pages[idx], PG_ALLOC);
    smp_lock_release_local(&c->lock);
    smp_port_irq_pop();
    return idx;
}

/* Free block idx of order o < SMP_PCP_ORDERS into this CPU's cache;
 * panics (in the slow path) unless it heads an allocated block of order o. */
static inline void smp_pcp_free(struct smp_pmm *m, uint32_t idx, unsigned o)
{
    smp_port_irq_push();
    int cpu = smp_this_cpu(m);
    struct smp_pcp *c = &m->pcp[cpu];
    if (__builtin_expect(!smp_lock_try_local(&c->lock), 0)) {
        smp_pcp_free_slow(m, cpu, idx, o, 0);
        return;
    }
    struct smp_page *pg = &m->pages[idx];
    struct smp_pcp_ring *r = &c->ring[o];
    uint32_t top = atomic_load_explicit(&r->top, memory_order_relaxed);
    if (__builtin_expect(smp_state(pg) != PG_ALLOC || pg->order != o ||
                         top - atomic_load_explicit(&r->bottom, memory_order_relaxed) >= r->high, 0)) {
        smp_pcp_free_slow(m, cpu, idx, o, 1);
        return;
    }
    r->slots[top & r->mask] = idx;
    atomic_store_explicit(&r->top, top + 1, memory_order_relaxed);
    smp_set_state(pg, PG_PCP);
    smp_lock_release_local(&c->lock);
    smp_port_irq_pop();
}

#endif
