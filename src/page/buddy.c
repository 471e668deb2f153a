/*
 * The buddy zone: free blocks of orders 0..max_order over the one region.
 *
 * Locks: only m->zone.lock, which guards free_head[], free_pages, uncarved
 * and every descriptor in state PG_BUDDY.  Callers take it (pcp.c,
 * page.c); every function here named _locked expects it held.
 *
 * Free lists are doubly linked through the descriptors by page index, so
 * removing a buddy during a merge is O(1).  Blocks are aligned by absolute
 * pfn: the buddy of the order-k block at pfn p is at p ^ (1 << k), and the
 * two merge only if the buddy lies inside the region and heads a free block
 * of exactly order k.
 */
#include "page.h"
#include "../base/fault.h"

static void list_push(struct smp_pages *m, unsigned order, uint32_t idx)
{
    struct smp_page *pg = &m->pages[idx];
    uint32_t old = m->zone.free_head[order];
    smp_set_state(smp_head(m, idx), PG_BUDDY);
    smp_head(m, idx)->order = (uint8_t)order;
    pg->prev = SMP_NIL;
    pg->next = old;
    if (old != SMP_NIL)
        m->pages[old].prev = idx;
    m->zone.free_head[order] = idx;
}

static void list_remove(struct smp_pages *m, unsigned order, uint32_t idx)
{
    struct smp_page *pg = &m->pages[idx];
    if (pg->prev != SMP_NIL)
        m->pages[pg->prev].next = pg->next;
    else
        m->zone.free_head[order] = pg->next;
    if (pg->next != SMP_NIL)
        m->pages[pg->next].prev = pg->prev;
    pg->next = pg->prev = SMP_NIL;
}

static void add_free_pages(struct smp_pages *m, long delta)
{
    atomic_store_explicit(&m->zone.free_pages,
        atomic_load_explicit(&m->zone.free_pages, memory_order_relaxed) + (size_t)delta,
        memory_order_relaxed);
}

/* The order of the block a carve puts at idx: the largest that the pfn's
 * alignment, the pages left and max allow. */
static unsigned carve_order(const struct smp_pages *m, uint32_t idx, unsigned max)
{
    uint64_t pfn = m->base_pfn + idx;
    unsigned o = max;
    while (o > 0 && ((pfn & ((1ULL << o) - 1)) || idx + (1ULL << o) > m->npages))
        o--;
    return o;
}

/* Put the free block of `order` at idx on its list, merged first with
 * every free buddy it has (so no two free buddies are ever apart). */
static void merge_push(struct smp_pages *m, uint32_t idx, unsigned order)
{
    uint64_t lo = m->base_pfn, hi = m->base_pfn + m->npages;
    while (order < m->max_order) {
        uint64_t pfn = m->base_pfn + idx;
        uint64_t bud_pfn = pfn ^ (1ULL << order);
        if (bud_pfn < lo || bud_pfn + (1ULL << order) > hi)
            break;
        uint32_t bud = (uint32_t)(bud_pfn - lo);
        struct smp_page_head *bp = smp_head(m, bud);
        if (smp_state(bp) != PG_BUDDY || bp->order != order)
            break;
        list_remove(m, order, bud);
        /* The higher of the two heads becomes a tail of the merged block. */
        if (bud < idx) {
            smp_set_state(smp_head(m, idx), PG_TAIL);
            idx = bud;
        } else {
            smp_set_state(bp, PG_TAIL);
        }
        order++;
    }
    list_push(m, order, idx);
}

/* Carve the next block off the uncarved tail, of order at most max, onto
 * its free list.  It may merge with free blocks carved before it (the
 * pages below the tail), never with the tail, which holds no heads.  Its
 * pages were counted free while uncarved: free_pages does not change. */
static void carve_next(struct smp_pages *m, unsigned max)
{
    uint32_t idx = atomic_load_explicit(&m->zone.uncarved, memory_order_relaxed);
    unsigned o = carve_order(m, idx, max);
    atomic_store_explicit(&m->zone.uncarved, idx + (1U << o), memory_order_relaxed);
    merge_push(m, idx, o);
}

void smp_buddy_carve_all_locked(struct smp_pages *m)
{
    while (atomic_load_explicit(&m->zone.uncarved, memory_order_relaxed) < m->npages)
        carve_next(m, m->max_order);
}

void smp_buddy_init(struct smp_pages *m)
{
    smp_lock_init(&m->zone.lock, "kmem.zone");
    for (unsigned o = 0; o <= SMP_MAX_ORDER; o++)
        m->zone.free_head[o] = SMP_NIL;
    unsigned max = 0;
    while (max < SMP_MAX_ORDER && (2ULL << max) <= m->npages)
        max++;

    /* max_order is the largest block a greedy cut of the region into
     * aligned blocks would make (each the biggest order the pfn's
     * alignment and the pages left allow): the largest block that can
     * ever exist here, so smp_pmm_max_order() is a promise, not a size
     * bound that alignment may break.
     *
     * No block is cut at init.  The region starts as one uncarved tail,
     * free, PG_TAIL and on no list, and an allocation that finds the
     * lists empty carves from the tail's low end only as much as it asks
     * for: blocks of at most its order, the first few smaller while the
     * tail's start is not yet aligned to it (carve_next).  Carving writes
     * a block's descriptor and head, so metadata is touched in step with
     * the memory handed out.  Splitting a max-order block instead would
     * leave a free half at every order, whose descriptors lie 2^k pages
     * apart: on a 1 GiB region one page of descriptors per level above
     * the seventh, backed for blocks nobody asked for (one such page in
     * the kalloc benchmark's mixed workload at 1 thread).  A carved block
     * merges with free buddies below it, so no two free buddies are ever
     * apart; none lies in the tail, where no page is a head. */
    unsigned largest = 0;
    for (uint32_t idx = 0; idx < m->npages; ) {
        unsigned o = carve_order(m, idx, max);
        idx += 1U << o;
        if (o > largest)
            largest = o;
    }
    m->max_order = largest;
    atomic_init(&m->zone.uncarved, 0);
    atomic_init(&m->zone.free_pages, m->npages);
#ifdef SMP_PORT_HAS_DISCARD
    m->zone.nkept = 0;
#endif
}

/* Take the block (idx, order) out of the free block (h, o) that holds it:
 * that one comes off its list and is split toward idx, each time the half
 * without idx going back; idx ends allocated (PG_ALLOC: the caller
 * re-labels it if needed). */
static void take_from(struct smp_pages *m, uint32_t h, unsigned o, uint32_t idx, unsigned order)
{
    list_remove(m, o, h);
    while (o > order) {
        o--;
        if (idx >= h + (1U << o)) {
            list_push(m, o, h);
            h += 1U << o;
        } else {
            list_push(m, o, h + (1U << o));
        }
    }
    smp_head(m, idx)->order = (uint8_t)order;
    smp_set_state(smp_head(m, idx), PG_ALLOC);
    add_free_pages(m, -(1L << order));
}

uint32_t smp_buddy_alloc_locked(struct smp_pages *m, unsigned order)
{
    if (smp_fault_point(SMP_FAULT_BUDDY))    /* test builds only (base/fault.h) */
        return SMP_NIL;
    if (order > m->max_order)                /* else the carve below would cut up the whole tail */
        return SMP_NIL;
    unsigned o;
    for (;;) {
        o = order;
        while (o <= m->max_order && m->zone.free_head[o] == SMP_NIL)
            o++;
        if (o <= m->max_order)
            break;
        if (atomic_load_explicit(&m->zone.uncarved, memory_order_relaxed) >= m->npages)
            return SMP_NIL;
        carve_next(m, order);
    }
    uint32_t idx = m->zone.free_head[o];
    take_from(m, idx, o, idx, order);
    return idx;
}

void smp_buddy_free_locked(struct smp_pages *m, uint32_t idx, unsigned order)
{
    add_free_pages(m, 1L << order);
    merge_push(m, idx, order);
}

int smp_buddy_take_locked(struct smp_pages *m, uint32_t idx, unsigned order)
{
    if (order > m->max_order || ((m->base_pfn + idx) & ((1ULL << order) - 1)) ||
        (uint64_t)idx + (1ULL << order) > atomic_load_explicit(&m->zone.uncarved, memory_order_relaxed))
        return 0;
    /* Free buddies are always merged, so if the pages are all free they lie
     * in one free block, the one whose head covers idx. */
    uint32_t h = smp_pg_enclosing_head(m, idx);
    if (h == SMP_NIL)
        return 0;
    struct smp_page_head *d = smp_head(m, h);
    if (smp_state(d) != PG_BUDDY || d->order < order)
        return 0;                            /* allocated, cached by a CPU, or smaller */
    take_from(m, h, d->order, idx, order);
    return 1;
}

/* Verify the free lists against the descriptor walk: every listed block is
 * a BUDDY head of that list's order, links are consistent, no cycle, the
 * page count matches free_pages, and the number of listed blocks equals the
 * BUDDY heads the walk found (so no free block is missing from a list). */
int smp_buddy_check_locked(struct smp_pages *m, size_t nheads_seen)
{
    size_t blocks = 0, pages = 0;
    for (unsigned o = 0; o <= SMP_MAX_ORDER; o++) {
        uint32_t prev = SMP_NIL;
        for (uint32_t i = m->zone.free_head[o]; i != SMP_NIL; i = m->pages[i].next) {
            if (i >= m->npages)
                return smp_check_fail(m, prev, "buddy list link points outside the region");
            struct smp_page *pg = &m->pages[i];
            if (o > m->max_order)
                return smp_check_fail(m, i, "block on a free list above max order");
            if (smp_state(smp_head(m, i)) != PG_BUDDY)
                return smp_check_fail(m, i, "block on a buddy free list is not marked free");
            if (smp_head(m, i)->order != o)
                return smp_check_fail(m, i, "block on the wrong order's free list");
            if (pg->prev != prev)
                return smp_check_fail(m, i, "buddy free list back link broken");
            if (++blocks > m->npages)
                return smp_check_fail(m, i, "buddy free list has a cycle");
            pages += 1UL << o;
            prev = i;
        }
    }
    if (blocks != nheads_seen)
        return smp_check_fail(m, SMP_NIL, "free blocks missing from or repeated on buddy lists");
    pages += m->npages - atomic_load_explicit(&m->zone.uncarved, memory_order_relaxed);
    if (pages != atomic_load_explicit(&m->zone.free_pages, memory_order_relaxed))
        return smp_check_fail(m, SMP_NIL, "buddy free page counter disagrees with lists");
    return 0;
}
