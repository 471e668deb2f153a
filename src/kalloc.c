/*
 * kalloc/kfree: route by size, validate frees.
 *
 *   size <= 2 KiB   power-of-two class: objcache.c (per-CPU) over slab.c
 *   size  > 2 KiB   a buddy block of 2^order pages (per-CPU page cache for
 *                   orders < 4, the zone above)
 *
 * Alignment falls out of the layout: classes are powers of two carved from
 * size-aligned slabs, and buddy blocks are aligned to their size.  kfree
 * finds the size from the page descriptor of the pointer, so no header
 * precedes any object.  Locks: none of its own (see the layers it calls).
 */
#include "objcache.h"
#include "base/fmt.h"

static unsigned order_for(size_t size)
{
    unsigned o = 0;
    while ((SMP_PAGE_SIZE << o) < size)
        o++;
    return o;
}

void *smp_kalloc(size_t size)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m)
        return 0;
    if (size - 1 < SMP_MAX_SMALL)          /* 1 <= size <= 2 KiB; 0 wraps */
        return smp_objcache_alloc(m, smp_class_of(size));
    if (size == 0)
        return 0;
    if (size > (SMP_PAGE_SIZE << m->zone.max_order))
        return 0;
    return smp_page_alloc(order_for(size));
}

/* Classify p for kfree/usable_size: returns the slab class (>= 0) or -1 for
 * a page block (*order set); panics with the reason for anything else. */
static __attribute__((noinline)) int classify(struct smp_pmm *m, void *p, unsigned *order,
                                              const char *who)
{
    uintptr_t addr = (uintptr_t)p;
    if (!m)
        smp_panic_at(who, addr, "smpmem is not initialised");
    if (addr < m->base || addr - m->base >= (uintptr_t)m->npages << SMP_PAGE_SHIFT)
        smp_panic_at(who, addr, "address outside the managed region");
    uint32_t idx = smp_page_index(m, addr);
    struct smp_page *pg = &m->pages[idx];
    switch (smp_state(pg)) {
    case PG_ALLOC:
        if (addr & (SMP_PAGE_SIZE - 1))
            smp_panic_at(who, addr, "not at the start of its block (a page block)");
        *order = pg->order;
        return -1;
    case PG_BUDDY:
    case PG_PCP:
        smp_panic_at(who, addr, "block is not allocated (double free?)");
    case PG_SLAB:
    case PG_TAIL: {
        uint32_t h = smp_state(pg) == PG_SLAB ? idx : smp_slab_head(m, addr);
        if (h == SMP_NIL) {
            uint32_t b = smp_block_head(m, idx, m->max_order);
            unsigned st = b == SMP_NIL ? PG_TAIL : smp_state(&m->pages[b]);
            smp_panic_at(who, addr, st == PG_BUDDY || st == PG_PCP
                ? "inside a free block: not allocated (double free?)"
                : "not the start of a block (inside a larger block)");
        }
        unsigned cls = m->pages[h].cls;
        size_t size = smp_class_size(cls);
        if (addr & (size - 1)) {
            char reason[96];
            struct smp_fmt f;
            smp_fmt_init(&f, reason, sizeof reason);
            smp_fmt_str(&f, "not at a block start of its class (size ");
            smp_fmt_dec(&f, size);
            smp_fmt_str(&f, ")");
            smp_panic_at(who, addr, reason);
        }
        return (int)cls;
    }
    default:
        smp_panic_at(who, addr, "page descriptor corrupt");
    }
}

void smp_kfree(void *p)
{
    if (!p)
        return;
    struct smp_pmm *m = smp_pmm_state;
    uintptr_t addr = (uintptr_t)p;
    unsigned cls;
    /* Hot case first: an object at a class boundary of a slab.  Everything
     * else (and every error) goes through classify. */
    if (m && addr - m->base < (uintptr_t)m->npages << SMP_PAGE_SHIFT) {
        uint32_t h = smp_page_index(m, addr);
        if (smp_state(&m->pages[h]) != PG_SLAB)     /* a tail page of a 2-4 page slab? */
            h = smp_slab_head(m, addr);
        if (h != SMP_NIL) {
            cls = m->pages[h].cls;
            if (!(addr & (smp_class_size(cls) - 1)))
                goto object;
        }
    }
    unsigned order;
    int c = classify(m, p, &order, "kfree");
    if (c < 0) {
        smp_page_free(p, order);
        return;
    }
    cls = (unsigned)c;
object:
    smp_objcache_free(m, cls, p);
}

size_t smp_kalloc_usable_size(void *p)
{
    struct smp_pmm *m = smp_pmm_state;
    unsigned order;
    int cls = classify(m, p, &order, "kalloc_usable_size");
    return cls >= 0 ? smp_class_size((unsigned)cls) : SMP_PAGE_SIZE << order;
}
