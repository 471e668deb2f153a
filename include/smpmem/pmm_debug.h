/*
 * Hooks for tests, tools and hosted programs; not for kernel code.
 */
#ifndef SMPMEM_PMM_DEBUG_H
#define SMPMEM_PMM_DEBUG_H

#include <stdint.h>
#include "pmm.h"

/* Forget the region so smp_pmm_init may be called again.  Callers must not
 * touch blocks from the old region afterwards, and no other CPU may be
 * inside smpmem. */
void smp_pmm_reset(void);

/*
 * Metadata hooks (src/kalloc/debug.c), TEST-ONLY: read or overwrite one
 * word of the allocator's books, so a test can corrupt it on purpose,
 * watch smp_pmm_check name exactly that violation, and put the old value
 * back.  They take no lock and stop no CPU: call them only while no other
 * CPU is inside smpmem.  They cost nothing unless called.  A selector out
 * of range (or no region) panics "smp_pmm_debug: ...".
 *
 * smp_pmm_debug_get(field, cpu, k, i) reads; smp_pmm_debug_set(..., v)
 * stores v (truncated to the field's width) and returns the old value, so
 * `old = set(f, ..., bad); ...; set(f, ..., old);` restores it.  Links and
 * ring slots hold page indices (SMP_DEBUG_NIL for none); pointers are
 * passed as integers.  Selectors per field (unused ones are ignored):
 */
enum smp_pmm_field {
    /* Page descriptor i (a page index, see smp_pmm_debug_page_addr). */
    SMP_DBG_PAGE_STATE,       /* 0 tail, 1 buddy, 2 cached, 3 alloc, 4 owned */
    SMP_DBG_PAGE_ORDER,
    SMP_DBG_PAGE_OWNER_TAG,   /* slabs: (class + 1) | offset in slab << 8 */
    SMP_DBG_PAGE_NEXT,        /* buddy / slab list links */
    SMP_DBG_PAGE_PREV,
    SMP_DBG_PAGE_OWNER_U32,   /* slabs: objects in use */
    SMP_DBG_PAGE_OWNER_PTR,   /* slabs: free list */
    SMP_DBG_PAGE_OWNER_U64,   /* slabs: never-used count | list tag << 32 */
    SMP_DBG_PAGE_OWNER_BYTE,  /* slabs: class + 1, in the dense array beside the descriptors */
    /* The buddy zone. */
    SMP_DBG_ZONE_HEAD,        /* free list of order k (k <= 20) */
    SMP_DBG_ZONE_FREE_PAGES,  /* pages in free blocks and the uncarved tail */
    SMP_DBG_ZONE_UNCARVED,    /* first page of the tail not yet cut into blocks */
    /* CPU cpu's page cache ring of order k (k < SMP_DEBUG_PCP_ORDERS). */
    SMP_DBG_RING_TOP,
    SMP_DBG_RING_BOTTOM,
    SMP_DBG_RING_SLOT,        /* the slot at position i (wraps) */
    SMP_DBG_RING_CAP,         /* read-only: capacity */
    /* Object layer, class k (0 = 8 B .. 9 = 4 KiB). */
    SMP_DBG_MAG_HEAD,         /* CPU cpu's magazine i (0 loaded, 1 previous) */
    SMP_DBG_MAG_COUNT,
    SMP_DBG_MAG_CAP,          /* read-only: objects in a full magazine */
    SMP_DBG_DEPOT_N,          /* full magazines in the depot */
    SMP_DBG_DEPOT_MAX,
    SMP_DBG_DEPOT_HEAD,       /* depot slot i */
    SMP_DBG_DEPOT_COUNT,
    SMP_DBG_DEPOT_FROM,       /* the CPU that put depot slot i */
    SMP_DBG_SLAB_PARTIAL,     /* head of the partial-slab list (page index) */
    SMP_DBG_SLAB_EMPTY,
    SMP_DBG_SLAB_NEMPTY,
    SMP_DBG_SLAB_NSLABS,
    SMP_DBG_SLAB_ORDER,       /* read-only: page order of a slab */
    SMP_DBG_SLAB_PER_SLAB,    /* read-only: objects per slab */
    /* CPU cpu's copies of the object layer's constants, which its fast
     * paths read: i = 0 the region base, 1 the link secret, 2 class k's
     * magazine capacity, 3 class k's pop test mask. */
    SMP_DBG_CPU_OBJ_CONST,
};
#define SMP_DEBUG_NIL 0xffffffffu
/* Orders 0 .. SMP_DEBUG_PCP_ORDERS - 1 have per-CPU page caches (rings);
 * larger blocks come from the zone, under its lock. */
#define SMP_DEBUG_PCP_ORDERS 5
/* Make free object obj's link lead to next, encoded as the allocator
 * stores links (they are XOR a per-init secret: obj.h). */
void smp_pmm_debug_set_link(void *obj, const void *next);
uint64_t smp_pmm_debug_get(enum smp_pmm_field field, int cpu, unsigned k, uint32_t i);
uint64_t smp_pmm_debug_set(enum smp_pmm_field field, int cpu, unsigned k, uint32_t i, uint64_t v);
/* Address of managed page i (NULL when i >= smp_pmm_total_pages()), and
 * the index of the page holding p (SMP_DEBUG_NIL outside the pages). */
void *smp_pmm_debug_page_addr(uint32_t i);
uint32_t smp_pmm_debug_page_index(const void *p);
/* Where a hot metadata area starts: 0 the header, 1 the per-CPU gates
 * (NULL unless SMP_PERCPU_LOCKED), 2 the object caches, 3 the page
 * caches.  NULL before init. */
void *smp_pmm_debug_area(unsigned which);
/* The zone cuts the region into blocks lazily, from the low end, as
 * allocations need them (page/buddy.c).  Cut the rest now, so that every
 * free page is in a listed block: for a test that wants blocks up to the
 * region's end.  No other CPU may be inside smpmem. */
void smp_pmm_debug_carve_all(void);

#if defined(SMPMEM_SHORT_NAMES) && !defined(SMPMEM_NO_SHORT_NAMES)
#define pmm_reset smp_pmm_reset
#endif

#endif
