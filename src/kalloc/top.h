/*
 * The top of the allocator: the only code that knows both the page layer
 * and the object layer.  It routes kalloc/kfree by size, and orchestrates
 * what spans the layers: init (carving the region), drain, check, and
 * reclaim-and-retry under memory pressure.
 *
 * Region layout (all inside [start, end)):
 *   [colour][struct smp_pmm][owner bytes][gates*][object caches per CPU]
 *   [page caches per CPU][page descriptors][page heads][managed pages ...]
 * (* locked mode only).  The owner bytes are one per page of the region
 * (a bound on the pages managed: the metadata takes some).  Every per-CPU
 * array is sized by the ncpu given.
 * The colour puts the header 17 lines into a page, off the L1 set that
 * every page's first line maps to (pmm.c).
 *
 * Lock order (the whole allocator; each file repeats its part):
 *   1. a CPU's section (gate lock "kmem.cpuN" in locked mode), and the
 *      cross-calls of a stopped world, in increasing CPU id
 *   2. slab[class].lock   (obj/slab.c)
 *   3. depot[class].lock  (obj/depot.c)
 *   4. zone.lock          (page/buddy.c)
 */
#ifndef SMPMEM_TOP_H
#define SMPMEM_TOP_H

#include "../obj/magazine.h"

_Static_assert(SMP_PCP_WORD != SMP_OBJ_WORD && SMP_PCP_WORD < SMP_CPU_WORDS && SMP_OBJ_WORD < SMP_CPU_WORDS,
               "each layer's per-CPU word is its own (base/percpu.h)");

#define SMP_QUARANTINE 256              /* checked build: freed objects held back */

struct smp_quarantine {
    struct smp_spinlock lock;        /* "kmem.quarantine": head, n, slot */
    unsigned head, n;
    void *slot[SMP_QUARANTINE];
};

struct smp_pmm {
    struct smp_pages pg;             /* first: kfree reads base, span, pages */
    struct smp_objs obj;
    /* kfree's alignment test by owner byte: at a class's slot key
     * (SMP_SLOT_KEY, obj.h) the class size - 1, all ones elsewhere (0: no
     * slab), so one AND rejects both a pointer into no slab and one off a
     * class boundary. */
    uintptr_t kfree_mask[256];
#ifdef SMP_CHECKED
    struct smp_quarantine quarantine;
#endif
    const void *region_lo, *region_hi;
    /* The page layer's owner bytes (pg.owner_byte points here), one per
     * page: right after the header, so kfree finds a page's byte at a
     * fixed offset from the header it already holds. */
    uint8_t owner[];
};

/* The live state, or NULL before init. */
extern struct smp_pmm *smp_pmm_state;
/* The same, but never NULL: before init it is an empty state whose region
 * contains no address, so kfree and page_free need no NULL test (their slow
 * paths tell "not initialised" from npages == 0). */
extern struct smp_pmm *smp_pmm_live;

/* Stop the world and take every cache back: magazines and the depot to the
 * slabs, empty slabs and cached pages to the zone.  Then, with the world
 * still stopped, allocate a block of `order` from the zone (order >= 0).
 * Returns it, or NULL (also for order < 0: a drain). */
void *smp_reclaim_and_alloc(struct smp_pmm *m, int order);
/* The checked build (SMP_CHECKED, checked.c) wraps kalloc/kfree: the
 * entry points below are then the unchecked ones it calls. */
#ifdef SMP_CHECKED
#define SMP_UNCHECKED(name) name##_unchecked
#else
#define SMP_UNCHECKED(name) name
#endif
void *SMP_UNCHECKED(smp_kalloc)(size_t size);
void SMP_UNCHECKED(smp_kfree)(void *p);
/* The block p lies in: its usable size (class or page block); panics as
 * `who` with the reason for anything kfree would refuse. */
size_t smp_kalloc_block_size(void *p, const char *who);
/* Checked build: free everything in the quarantine (pmm_drain, pressure);
 * a no-op otherwise. */
void smp_quarantine_flush(struct smp_pmm *m);
void smp_quarantine_init(struct smp_pmm *m);

/* The page layer's pressure hook (struct smp_pages.pressure). */
void *smp_pages_under_pressure(struct smp_pages *pg, unsigned order);

#endif
