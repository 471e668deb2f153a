/*
 * Per-CPU page caches: the page_alloc/page_free fast paths, inline (slow
 * paths in pcp.c).  A fast path is one section of this CPU (interrupts
 * pushed off; base/percpu.h) touching only this CPU's ring and the block's
 * head (state and order, page.h): no lock, no atomic read-modify-write, no
 * fence.  Every slow case (empty or full ring, an uncached order, a bad free) is a tail call
 * into pcp.c that finishes the operation, so the fast paths are leaves.
 */
#ifndef SMPMEM_PCP_H
#define SMPMEM_PCP_H

#include "page.h"

/* A CPU's page cache while no region is live (smp_cpu_words_idle,
 * port.h): every ring empty (top == bottom) and full (top == full_top),
 * so both fast paths go to their slow paths.  Read only. */
extern const struct smp_pcp smp_pcp_idle;

/* Entered inside this CPU's section; they finish it (exit the section). */
void *smp_pcp_alloc_slow(struct smp_pages *pg, int cpu, unsigned order);
void smp_pcp_free_slow(struct smp_pages *pg, int cpu, uint32_t idx, unsigned order);

static inline uint32_t smp_ring_load(const _Atomic uint32_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* 2^order pages aligned to their size, or NULL when none can be had after
 * stealing from every CPU (the caller may then reclaim from above). */
SMP_FAST void *smp_pg_alloc(struct smp_pages *pg, unsigned order)
{
    if (order >= SMP_PCP_ORDERS)
        return smp_pg_alloc_large(pg, order);
    struct smp_fast_section sec = smp_section_enter_fast();
    struct smp_pcp *c;
    struct smp_pcp_ring *r;
    uint32_t top;
    /* Slow: an unknown CPU id (also: not initialised), or an empty ring. */
    if (__builtin_expect(!(c = smp_section_local(sec, SMP_PCP_WORD, pg->pcp_at, pg->ncpu)) ||
                         (r = &c->ring[order], top = smp_ring_load(&r->top),
                          top == smp_ring_load(&r->bottom)), 0))
        return smp_pcp_alloc_slow(pg, smp_section_cpu(sec), order);
    top--;
    uint32_t idx = r->slots[top & r->mask];
    atomic_store_explicit(&r->top, top, memory_order_relaxed);
    smp_set_state(smp_head(pg, idx), PG_ALLOC);
    smp_section_exit_fast(sec);
    return (void *)smp_page_addr(pg, idx);
}

/* The page-cache half of a free: page idx, of a cached order (below
 * SMP_PCP_ORDERS), inside the region.  Panics with the address and the
 * reason unless idx heads an allocated block of this order. */
SMP_FAST void smp_pcp_free(struct smp_pages *pg, uint32_t idx, unsigned order)
{
    struct smp_page_head *h = smp_head(pg, idx);
    struct smp_fast_section sec = smp_section_enter_fast();
    struct smp_pcp *c;
    struct smp_pcp_ring *r;
    uint32_t top;
    /* One test, one slow call: an unknown CPU id, a block that is not an
     * allocated head of this order, or a full ring. */
    if (__builtin_expect(!(c = smp_section_local(sec, SMP_PCP_WORD, pg->pcp_at, pg->ncpu)) ||
                         smp_state(h) != PG_ALLOC || h->order != order ||
                         (r = &c->ring[order], top = smp_ring_load(&r->top),
                          (int32_t)(top - r->full_top) >= 0), 0)) {
        smp_pcp_free_slow(pg, smp_section_cpu(sec), idx, order);
        return;
    }
    r->slots[top & r->mask] = idx;
    atomic_store_explicit(&r->top, top + 1, memory_order_relaxed);
    smp_set_state(h, PG_PCP);
    smp_section_exit_fast(sec);
}

/* Free a block from smp_pg_alloc with its order; panics with the address
 * and the reason on a bad pointer, a wrong order or a double free. */
SMP_FAST void smp_pg_free(struct smp_pages *pg, void *p, unsigned order)
{
    uintptr_t addr = (uintptr_t)p;
    /* Page alignment is all this test needs: a page-aligned p whose
     * head is an allocated block of this order (smp_pcp_free) is aligned
     * to the block, since buddy heads are aligned to their order. */
    if (__builtin_expect(order >= SMP_PCP_ORDERS || !smp_pg_contains(pg, addr) ||
                         (addr & (SMP_PAGE_SIZE - 1)), 0)) {
        smp_pg_free_large(pg, p, order);
        return;
    }
    smp_pcp_free(pg, smp_page_index(pg, addr), order);
}

#endif
