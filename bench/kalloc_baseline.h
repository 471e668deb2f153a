/*
 * gslab: the "global lock + slab scan" baseline for the kalloc benchmark.
 *
 * It is what a typical pmm-lab solution looks like, written here so the
 * benchmark can show what smpmem is measured against: one spinlock around
 * everything; power-of-two slab classes 8..2048 B, each a list of one-page
 * slabs with a used flag per object, found by walking the list and scanning
 * the flags; bigger requests take naturally aligned page runs from one
 * address-sorted free list walked first-fit (and coalesced on free).
 *
 * Contract: gslab_init once, before any other call; then gslab_alloc and
 * gslab_free from any thread.  gslab_alloc returns a block of >= size bytes
 * aligned to the smallest power of two >= size (>= 8), or NULL iff size is 0
 * or no page run fits.  Not a product: no checks, no statistics.
 */
#ifndef KALLOC_BASELINE_H
#define KALLOC_BASELINE_H

#include <stddef.h>

/* Manage [start, end).  Returns 0, or -1 if the region is too small. */
int gslab_init(void *start, void *end);
void *gslab_alloc(size_t size);
void gslab_free(void *p);

#endif
