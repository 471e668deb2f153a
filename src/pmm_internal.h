/*
 * Internal layout of a managed region (not part of the public API).
 *
 * Glossary
 *   page index  position of a page among the managed pages, 0..npages-1
 *   pfn         absolute page frame number: address >> SMP_PAGE_SHIFT;
 *               pfn = base_pfn + index.  Buddy alignment is by pfn, so a
 *               block of order k starts at an address aligned to 4096 << k.
 *   head        the first page of a block; its descriptor says what the block
 *               is.  Every other page of the block is a TAIL.
 *
 * Region layout (all inside [start, end)):
 *   [struct smp_pmm][struct smp_page descriptors][managed pages ...]
 *   ^ start rounded up                           ^ base (page aligned)
 *
 * Invariant (checked by smp_pmm_check): walking indices from 0, every
 * descriptor reached is a head with a valid, pfn-aligned order whose block
 * fits in the region, and the 2^order - 1 descriptors after it are TAIL.
 * So every page belongs to exactly one block, and each block is in exactly
 * one place: the buddy (BUDDY), a CPU cache (PCP), a caller (ALLOC), or the
 * slab layer (SLAB).
 */
#ifndef SMPMEM_PMM_INTERNAL_H
#define SMPMEM_PMM_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "smpmem/pmm.h"
#include "smpmem/spinlock.h"
#include "smpmem/port.h"

#define SMP_NIL UINT32_MAX      /* "no page" in index-linked lists */
#define SMP_CACHELINE 64

enum smp_page_state {
    PG_TAIL = 0,   /* not a block head (zeroed descriptors start here) */
    PG_BUDDY,      /* head of a free block on zone.free_head[order]; zone lock */
    PG_PCP,        /* head of a block in a CPU cache ring; that CPU's pcp lock */
    PG_ALLOC,      /* head of a block held by a caller */
    PG_SLAB,       /* head of a block owned by the slab layer */
};

/* One per managed page: 32 bytes, 0.78% of the region. */
struct smp_page {
    uint32_t next, prev;    /* list links (page indices): buddy free lists, slab lists */
    _Atomic uint8_t state;  /* enum smp_page_state: use smp_state/smp_set_state */
    uint8_t order;          /* block order, valid on heads */
    uint8_t cls;            /* slab: size class */
    uint8_t list;           /* slab: which class list the slab is on (slab.c) */
    uint32_t inuse;         /* slab: objects handed out */
    void *freelist;         /* slab: first free object */
    uint64_t aux;           /* slab: reserved */
};
_Static_assert(sizeof(struct smp_page) == 32, "page descriptor must stay 32 bytes");

/* A descriptor's state is written under the lock of the structure that
 * holds the block, but the buddy peeks at a neighbour's state (is it a free
 * buddy?) while another CPU may be relabelling that neighbour under its own
 * pcp lock.  The answer is right either way (only the zone lock makes a
 * block PG_BUDDY); relaxed atomics make the peek defined, at no cost. */
static inline unsigned smp_state(const struct smp_page *pg)
{
    return atomic_load_explicit(&pg->state, memory_order_relaxed);
}

static inline void smp_set_state(struct smp_page *pg, unsigned s)
{
    atomic_store_explicit(&pg->state, (uint8_t)s, memory_order_relaxed);
}

/* Per-CPU structures are aligned to 128 bytes: x86 prefetches cache lines
 * in pairs, so 64-byte alignment would let neighbouring CPUs' caches
 * interfere. */
#define SMP_CPU_ALIGN 128

/* Per-CPU page cache: for each order below SMP_PCP_ORDERS, a ring of page
 * indices.  Allocation pops and free pushes at `top` (hot, LIFO); drain and
 * steal take from `bottom` (cold).  Order o uses a slice of slots (pcp.c) with
 * capacity SMP_PCP_CAP0 >> o.  lock protects the rings and the PG_PCP
 * descriptors in them; top/bottom and the statistics are written under lock
 * and read lock-free (relaxed) by pmm_free_pages and reports. */
#define SMP_PCP_ORDERS 4
#define SMP_PCP_CAP0 512
#define SMP_PCP_SLOTS (2 * SMP_PCP_CAP0)

/* One order's ring.  slots, mask and high are set at init and never change,
 * so the fast path finds everything it needs on this line. */
struct smp_pcp_ring {
    _Atomic uint32_t top, bottom;
    uint32_t mask;                   /* capacity - 1 (a power of two) */
    uint32_t high;                   /* drain a batch when this many are cached */
    uint32_t *slots;
};

struct smp_pcp {
    _Alignas(SMP_CPU_ALIGN) struct smp_spinlock lock;
    struct smp_pcp_ring ring[SMP_PCP_ORDERS];
    atomic_ulong refills, drains, steals, stolen;
    char name[16];                   /* "kmem.cpuN": the lock's name */
    uint32_t slots[SMP_PCP_SLOTS];
};

/* The buddy zone.  lock protects free_head and every BUDDY descriptor. */
struct smp_zone {
    _Alignas(SMP_CACHELINE) struct smp_spinlock lock;
    uint32_t free_head[SMP_MAX_ORDER + 1];
    atomic_size_t free_pages;        /* pages in BUDDY blocks */
    unsigned max_order;              /* largest order a block can have here */
};

/* Object layer (slab.c, objcache.c): SMP_KALLOC_CLASSES (pmm.h) classes,
 * 8 B .. 2 KiB. */
/* One magazine: a LIFO chain of free objects linked through first words. */
struct smp_magazine {
    void *head;
    unsigned count;
};

/* Per-CPU object cache: two magazines per class (Bonwick): the loaded one
 * serves allocs and frees; the previous one absorbs a full or empty swing
 * so a CPU oscillating at a boundary does not ping-pong batches.  lock
 * protects everything here (the owner is the usual taker; pmm_drain and
 * pmm_check take it from other CPUs). */
struct smp_objcache {
    _Alignas(SMP_CPU_ALIGN) struct smp_spinlock lock;
    struct smp_magazine loaded[SMP_KALLOC_CLASSES];
    struct smp_magazine previous[SMP_KALLOC_CLASSES];
    char name[16];                   /* "kmem.objN" */
};

/* Shared slab state of one class.  lock protects the lists and every
 * PG_SLAB descriptor of this class (freelist, inuse, aux, links). */
struct smp_slab_class {
    _Alignas(SMP_CACHELINE) struct smp_spinlock lock;
    uint32_t partial;                /* slabs with free objects, some in use */
    uint32_t empty;                  /* slabs with nothing in use */
    unsigned nempty;
    unsigned nslabs;                 /* all slabs of this class */
    unsigned size, order, per_slab;  /* object size, slab order, objects per slab */
    unsigned batch;                  /* objects per magazine */
    char name[16];                   /* "kmem.slabN" */
};

struct smp_pmm {
    uintptr_t base;                  /* address of page index 0 */
    uint64_t base_pfn;
    uint32_t npages;
    int ncpu;
    struct smp_page *pages;
    unsigned max_order;              /* copy of zone.max_order on the hot line */
    const void *region_lo, *region_hi;   /* the caller's [start, end) */
    unsigned pcp_batch[SMP_PCP_ORDERS];  /* blocks moved per refill/drain */
    struct smp_zone zone;
    struct smp_pcp pcp[SMP_MAX_CPUS];
    struct smp_slab_class slab[SMP_KALLOC_CLASSES];
    struct smp_objcache oc[SMP_MAX_CPUS];
};

extern struct smp_pmm *smp_pmm_state;

static inline uintptr_t smp_page_addr(const struct smp_pmm *m, uint32_t idx)
{
    return m->base + ((uintptr_t)idx << SMP_PAGE_SHIFT);
}

static inline uint32_t smp_page_index(const struct smp_pmm *m, uintptr_t addr)
{
    return (uint32_t)((addr - m->base) >> SMP_PAGE_SHIFT);
}

/* buddy.c: the zone.  _locked functions need m->zone.lock held. */
void smp_buddy_init(struct smp_pmm *m);
uint32_t smp_buddy_alloc_locked(struct smp_pmm *m, unsigned order);
void smp_buddy_free_locked(struct smp_pmm *m, uint32_t idx, unsigned order);
int smp_buddy_check_locked(struct smp_pmm *m, size_t nheads_seen, size_t *listed);

/* pcp.c / pcp.h: per-CPU page caches. */
void smp_pcp_init(struct smp_pmm *m);
void smp_pcp_drain_cpu(struct smp_pmm *m, int cpu);
int smp_pcp_check_locked(struct smp_pmm *m, size_t nheads_seen);
size_t smp_pcp_cached_pages(struct smp_pcp *c);

/* pmm.c */
void smp_pmm_drain_all(struct smp_pmm *m);
/* Panics unless idx heads an allocated block of this order (cheap checks). */
void smp_page_validate_free(struct smp_pmm *m, uint32_t idx, unsigned order,
                            const char *who);
/* Head index of the block of order <= max_order containing page idx, or
 * SMP_NIL.  Heads are aligned to their order, so the head is idx rounded
 * down to some power of two: the first non-tail page found rounding down
 * covers idx iff its order reaches that far.  Lock-free: exact for blocks
 * the caller owns, a hint otherwise. */
static inline uint32_t smp_block_head(const struct smp_pmm *m, uint32_t idx, unsigned max_order)
{
    uint64_t pfn = m->base_pfn + idx;
    for (unsigned k = 0; k <= max_order; k++) {
        uint64_t h = pfn & ~((1ULL << k) - 1);
        if (h < m->base_pfn)
            break;
        const struct smp_page *pg = &m->pages[h - m->base_pfn];
        if (smp_state(pg) != PG_TAIL)
            return pg->order >= k ? (uint32_t)(h - m->base_pfn) : SMP_NIL;
    }
    return SMP_NIL;
}

/* The caller's CPU, checked against ncpu (a port bug otherwise).  Call
 * with interrupts pushed off so the answer stays true. */
_Noreturn void smp_bad_cpu(void);
static inline int smp_this_cpu(const struct smp_pmm *m)
{
    int cpu = smp_port_cpu_id();
    if (__builtin_expect((unsigned)cpu >= (unsigned)m->ncpu, 0))
        smp_bad_cpu();
    return cpu;
}
/* Print "pmm_check: page ADDR: REASON" and return -1. */
int smp_check_fail(struct smp_pmm *m, uint32_t idx, const char *reason);

#endif
