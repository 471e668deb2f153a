/*
 * smpmem physical memory manager: pages (buddy + per-CPU caches) and
 * kalloc/kfree objects, over one region [start, end).
 *
 * Naming: every symbol is exported with the prefix smp_.  The short names
 * below (pmm_init, page_alloc, kalloc, ...) are macros for them only if the
 * includer asks: -DSMPMEM_SHORT_NAMES (and SMPMEM_NO_SHORT_NAMES is not
 * defined).  Off by default, because kernels have their own kalloc, kfree,
 * pmm_init (xv6, NJU's pmm lab skeleton).
 *
 * Thread safety: every call except smp_pmm_init/smp_pmm_reset may be made
 * concurrently from any CPU (the port's smp_port_cpu_id tells which).
 * None may be called from an interrupt handler that interrupted smpmem itself
 * on the same CPU (locks push interrupts off, so that cannot happen in a
 * kernel that uses the port hooks faithfully).
 */
#ifndef SMPMEM_PMM_H
#define SMPMEM_PMM_H

#include <stddef.h>
#include "errors.h"

#ifndef SMP_MAX_CPUS
#define SMP_MAX_CPUS 64          /* compile-time maximum of ncpu */
#endif
#define SMP_PAGE_SHIFT 12
#define SMP_PAGE_SIZE  (1UL << SMP_PAGE_SHIFT)
#define SMP_MAX_ORDER  20        /* largest buddy block: 2^20 pages = 4 GiB */

/* Manage [start, end).  Bounds are rounded inward to pages; the descriptors
 * and every other piece of metadata are carved from the start of the region.
 * Returns 0, or:
 *   SMP_EINVAL  start or end NULL, end <= start, ncpu < 1 or > SMP_MAX_CPUS;
 *   SMP_ERANGE  fewer than 128 usable pages after metadata, or more than
 *               2^32 pages;
 *   SMP_EBUSY   already initialised (call smp_pmm_reset first).
 * Not thread-safe: call once, before other CPUs use smpmem. */
int smp_pmm_init(void *start, void *end, int ncpu);

/* smp_pmm_init with flags:
 *   SMP_INIT_ZEROED  the kernel knows [start, end) reads as zero (fresh
 *                    boot memory, a new anonymous mapping): the page
 *                    descriptors are not cleared, so init touches only the
 *                    pages it writes (a 4 GiB region: ~8 MiB less to write):
 *                    the header and the per-CPU caches, a few pages.  The
 *                    descriptors of a part of the region are first written
 *                    when the zone cuts it into blocks, as allocations reach
 *                    it (lowest addresses first).
 * Unknown flags: SMP_EINVAL. */
#define SMP_INIT_ZEROED 1u
int smp_pmm_init_flags(void *start, void *end, int ncpu, unsigned flags);

/* 2^order contiguous pages aligned to 4096 << order (absolute address).
 * NULL iff order exceeds the largest block the region can hold, smpmem is
 * not initialised, or no block of that order can be assembled even after
 * every page cached on every CPU has been taken back.
 * O(1) from this CPU's cache; O(MAX_ORDER) plus a batch when it refills. */
void *smp_page_alloc(unsigned order);

/* Free a block from smp_page_alloc with the same order.  Panics with the
 * address and reason if p is outside the region, misaligned, not allocated
 * (double free), or was allocated with another order. */
void smp_page_free(void *p, unsigned order);

/* Pages under management: the region minus metadata. */
size_t smp_pmm_total_pages(void);

/* Pages not held by callers (in the buddy, in CPU caches, in empty slab
 * space counts as held until the slab is released).  A snapshot: exact when
 * no other CPU is allocating or freeing. */
size_t smp_pmm_free_pages(void);

/* Return every object cached in magazines to the slabs, every empty slab
 * and every page cached on every CPU to the buddy (the world stopped, as
 * for smp_pmm_check).  Afterwards, with nothing allocated, the buddy holds
 * the region as maximal coalesced blocks. */
void smp_pmm_drain(void);

/* Walk all metadata and verify every invariant.  Returns 0, or a negative
 * value after printing (smp_port_write) the first violation with its page
 * address and reason.  Stops the world (every CPU's caches held through
 * cross-calls, or their gate locks in the locked build) and takes every
 * shared allocator lock: exact at any time, but it stalls all CPUs while it
 * runs.  Like every call that may reach other CPUs (a steal, a reclaim), it
 * must not be called with a spinlock held that another CPU may spin on with
 * interrupts off (port.h, smp_port_cross_call). */
int smp_pmm_check(void);

/* Per-CPU page cache statistics (for demos and benchmarks). */
struct smp_pcp_stats {
    size_t cached_pages;      /* pages now in this CPU's cache */
    unsigned long refills;    /* batches taken from the buddy */
    unsigned long drains;     /* batches given back to the buddy */
    unsigned long steals;     /* batches taken from other CPUs */
    unsigned long stolen;     /* batches other CPUs took from this one */
};
int smp_pmm_cpu_stats(int cpu, struct smp_pcp_stats *out);

/* Largest order smp_page_alloc can ever satisfy on this region. */
unsigned smp_pmm_max_order(void);

/* A block of at least size bytes, aligned to the smallest power of two
 * >= size (and >= 8), inside the region.  NULL iff size is 0, larger than
 * the largest buddy block, smpmem is not initialised, or memory is exhausted
 * after every CPU cache and every empty slab has been taken back. */
void *smp_kalloc(size_t size);

/* Free a block from smp_kalloc; NULL is a no-op.  The size comes from the
 * page descriptors.  Panics with the address and reason if p is outside the
 * region, not the start of a block, or not allocated. */
void smp_kfree(void *p);

/* Usable size of a block from smp_kalloc (its size class). */
size_t smp_kalloc_usable_size(void *p);

/* For a front end that keeps freed small blocks to reuse them by size (a
 * thread cache): the size class of p if kfree would route p as a small
 * object -- the start of an object in a slab of that class -- else 0 (a
 * page block, or anything kfree must judge).  One bounds test and one read
 * of a dense per-page byte: no CPU section, no lock.  It does not tell
 * whether p is allocated (a double free is caught when p reaches kfree).
 * The checked build (CHECKED=1) always answers 0, so every free meets its
 * checks. */
size_t smp_kalloc_small_size(const void *p);

/* Object-layer statistics, per size class (8 B .. 4 KiB: 10 classes). */
#define SMP_KALLOC_CLASSES 10
struct smp_kalloc_stats {
    size_t class_size[SMP_KALLOC_CLASSES];
    size_t cached[SMP_KALLOC_CLASSES];   /* free objects in CPU magazines */
    size_t slabs[SMP_KALLOC_CLASSES];    /* slabs of the class */
    size_t in_use[SMP_KALLOC_CLASSES];   /* objects out of slabs (callers + magazines) */
    size_t slab_pages;                   /* pages held by all slabs */
};
/* Snapshot for one CPU (cached = that CPU's magazines), or for all CPUs with
 * cpu == -1 (slab figures are global in both).  0 or SMP_EINVAL. */
int smp_kalloc_stats(int cpu, struct smp_kalloc_stats *out);

#if defined(SMPMEM_SHORT_NAMES) && !defined(SMPMEM_NO_SHORT_NAMES)
#define pmm_init         smp_pmm_init
#define page_alloc       smp_page_alloc
#define page_free        smp_page_free
#define pmm_total_pages  smp_pmm_total_pages
#define pmm_free_pages   smp_pmm_free_pages
#define pmm_drain        smp_pmm_drain
#define pmm_check        smp_pmm_check
#define pmm_init_flags   smp_pmm_init_flags
#define kalloc           smp_kalloc
#define kfree            smp_kfree
#endif

#endif
