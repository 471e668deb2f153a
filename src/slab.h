/*
 * Object layer internals: power-of-two size classes 8 B .. 2 KiB.
 *
 *   kalloc(size) -> objcache.c: this CPU's magazines for the class (fast path)
 *                -> slab.c:     the class's slabs (batches, class lock)
 *                -> pcp.c/buddy.c: whole pages for new slabs
 *
 * A slab is a buddy block of order slab_order(class), aligned to its size,
 * so every object at base + i * size is aligned to size.  Bookkeeping lives
 * in the head page's descriptor (state PG_SLAB): freelist (objects linked
 * through their first word), inuse (objects outside the slab: in CPU caches
 * or with callers), aux (objects never handed out yet: carved lazily from
 * the top, so a new slab costs no writes to its memory), list links.
 */
#ifndef SMPMEM_SLAB_H
#define SMPMEM_SLAB_H

#include "pmm_internal.h"

#define SMP_MIN_CLASS_SHIFT 3                 /* 8 bytes */
#define SMP_MAX_CLASS_SHIFT 11                /* 2 KiB; 4 KiB and up are pages */
#define SMP_MAX_SMALL (1UL << SMP_MAX_CLASS_SHIFT)
_Static_assert(SMP_MAX_CLASS_SHIFT - SMP_MIN_CLASS_SHIFT + 1 == SMP_KALLOC_CLASSES,
               "one size class per power of two from 8 B to 2 KiB");

/* Class of 1 <= size <= SMP_MAX_SMALL: ceil(log2(size)) - 3, at least 0.
 * OR-ing 7 into size - 1 makes every size up to 8 land in class 0 without
 * a branch. */
static inline unsigned smp_class_of(size_t size)
{
    unsigned long long v = (unsigned long long)(size - 1) | ((1U << SMP_MIN_CLASS_SHIFT) - 1);
    return (unsigned)(64 - __builtin_clzll(v)) - SMP_MIN_CLASS_SHIFT;
}

static inline size_t smp_class_size(unsigned cls) { return (size_t)1 << (cls + SMP_MIN_CLASS_SHIFT); }

/* slab.c */
void smp_slab_init(struct smp_pmm *m);
/* Take up to n free objects of class cls, linked through their first
 * words; returns how many (0 only if no page can be had).  No lock held by
 * the caller: it may allocate pages, which may drain every cache. */
unsigned smp_slab_take(struct smp_pmm *m, unsigned cls, unsigned n, void **chain);
/* Give back a chain of n objects of class cls (no locks held by caller). */
void smp_slab_give(struct smp_pmm *m, unsigned cls, void *chain, unsigned n);
/* Release every empty slab to the page allocator. */
void smp_slab_release_empty(struct smp_pmm *m);
/* Head descriptor index of the slab holding addr (inside the region), or
 * SMP_NIL.  Slabs have order <= SMP_MAX_SLAB_ORDER. */
#define SMP_MAX_SLAB_ORDER 2
static inline uint32_t smp_slab_head(const struct smp_pmm *m, uintptr_t addr)
{
    uint32_t h = smp_block_head(m, smp_page_index(m, addr), SMP_MAX_SLAB_ORDER);
    return h != SMP_NIL && smp_state(&m->pages[h]) == PG_SLAB ? h : SMP_NIL;
}
/* pmm_check part; every class lock held (smp_slab_lock_all). */
/* Verify one slab (its free list, counters, list tag); its class lock held. */
int smp_slab_check_one_locked(struct smp_pmm *m, uint32_t idx);
/* Verify the class lists and totals: heads[c] slabs of class c were found by
 * the descriptor walk, holding inuse[c] objects, cached[c] of them in CPU
 * magazines. */
int smp_slab_check_locked(struct smp_pmm *m, const size_t *heads, const size_t *inuse,
                          const size_t *cached);
void smp_slab_lock_all(struct smp_pmm *m);
void smp_slab_unlock_all(struct smp_pmm *m);

#endif
