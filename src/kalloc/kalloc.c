/*
 * kalloc/kfree and the page API: route by size, validate frees, and retry
 * under pressure.
 *
 *   size <= 4 KiB   power-of-two class: obj/magazine.h (per CPU) over the
 *                   depot and the slabs
 *   size  > 4 KiB   a buddy block of 2^order pages (per-CPU page cache for
 *                   orders < 5, up to 64 KiB; the zone above)
 *
 * 4 KiB is a class, not a page block: kernels and programs ask for 4 KiB
 * about as often as for all larger sizes together (the pmm lab's mix: 9%
 * of requests against 1%), and as a class it takes kfree's small-object
 * route, whose outcome a branch predictor can learn, instead of a
 * data-dependent turn to the page path on one free in ten.  The page API
 * (page_alloc(0)) still serves whole pages from the page caches.
 *
 * Alignment falls out of the layout: classes are powers of two carved from
 * size-aligned slabs, and buddy blocks are aligned to their size.  kfree
 * decides with one bounds test and one read of the page's owner byte
 * (page.h): nonzero names the slab class, so no header precedes any object.  NULL means: the
 * layers came back empty, and even with the world stopped and every cache
 * taken back, no block (or slab page) could be had.
 */
#include "top.h"
#include "../base/fmt.h"

static unsigned order_for(size_t size)
{
    unsigned o = 0;
    while ((SMP_PAGE_SIZE << o) < size)
        o++;
    return o;
}

/* The page layer's pressure hook (top.h): every allocation that reaches
 * the pages -- a page block, or a new slab for kalloc -- comes here when
 * the pages and every CPU's page cache came back empty. */
void *smp_pages_under_pressure(struct smp_pages *pg, unsigned order)
{
    struct smp_pmm *m = (struct smp_pmm *)pg;
    smp_quarantine_flush(m);            /* the checked build's held-back blocks first */
    return smp_reclaim_and_alloc(m, (int)order);
}

static __attribute__((noinline)) void *kalloc_large(size_t size)
{
    struct smp_pmm *m = smp_pmm_live;
    if (size == 0 || size > (SMP_PAGE_SIZE << m->pg.max_order))
        return 0;
    return smp_pg_alloc(&m->pg, order_for(size));
}

/* Before init the live state is the empty one: its ncpu is 0, so the
 * layers' slow paths answer NULL. */
static inline struct smp_objs *live_objs(void)
{
    return &smp_pmm_live->obj;
}

void *SMP_UNCHECKED(smp_kalloc)(size_t size)
{
    /* The fast path may not need the live state at all (smp_obj_alloc);
     * the large path loads it itself, so no branch shares a load the
     * compiler would hoist onto the fast path. */
    if (__builtin_expect(size - 1 < SMP_MAX_SMALL, 1))     /* 0 wraps */
        return smp_obj_alloc(live_objs, smp_slot_key_of(size));
    return kalloc_large(size);
}

/* What p is, for kfree's slow path and usable_size: the slab class (>= 0)
 * or -1 for a page block (*order set); panics with the reason otherwise. */
static __attribute__((noinline)) int classify(struct smp_pmm *m, void *p, unsigned *order,
                                              const char *who)
{
    uintptr_t addr = (uintptr_t)p;
    if (!m)
        smp_panic_at(who, addr, "smpmem is not initialised");
    struct smp_pages *pg = &m->pg;
    if (!smp_pg_contains(pg, addr))
        smp_panic_at(who, addr, "address outside the managed region");
    uint32_t idx = smp_page_index(pg, addr);
    struct smp_page *d = &pg->pages[idx];
    if (d->owner_tag) {
        uint32_t h = smp_slab_head(&m->obj, addr);
        unsigned cls = SMP_TAG_CLASS(d->owner_tag);
        if (h == SMP_NIL || cls >= SMP_KALLOC_CLASSES)
            smp_panic_at(who, addr, "page descriptor corrupt (owner tag)");
        size_t size = smp_class_size(cls);
        if (addr & (size - 1))
            smp_panic_at_nums(who, addr, "not at a block start of its class (size ", size, 0, 0, ")");
        return (int)cls;
    }
    switch (smp_state(smp_head(pg, idx))) {
    case PG_ALLOC:
        if (addr & (SMP_PAGE_SIZE - 1))
            smp_panic_at(who, addr, "not at the start of its block (a page block)");
        *order = smp_head(pg, idx)->order;
        return -1;
    case PG_BUDDY:
    case PG_PCP:
        smp_panic_at(who, addr, "block is not allocated (double free?)");
    case PG_TAIL: {
        unsigned st = smp_pg_enclosing_state(pg, idx);
        smp_panic_at(who, addr, st == PG_BUDDY || st == PG_PCP
            ? "inside a free block: not allocated (double free?)"
            : "not the start of a block (inside a larger block)");
    }
    default:
        smp_panic_at(who, addr, "page descriptor corrupt");
    }
}

static __attribute__((noinline)) void kfree_other(struct smp_pmm *m, void *p)
{
    if (!p)
        return;
    if (!m->pg.npages)
        m = 0;                                   /* the empty state: not initialised */
    unsigned order;
    int cls = classify(m, p, &order, "kfree");
    if (cls >= 0)
        smp_obj_free(&m->obj, SMP_SLOT_KEY(cls), p);
    else
        smp_pg_free(&m->pg, p, order);
}

/* kfree of what is not a small object, in the common case a page block
 * (kalloc above 4 KiB, or a class's one-page fallback, obj/magazine.c):
 * a page-aligned address in the region, no slab's
 * owner byte on its page, and its head (page.h) says allocated and gives
 * the order.  Then it goes straight to this CPU's page cache (or the zone
 * above the cached orders), with nothing tested again but the head inside
 * the section.  Two dense arrays, no descriptor.  A leaf like kfree;
 * anything else (NULL, not initialised: span 0, a bad pointer) goes to
 * kfree_other, which says what is wrong. */
static __attribute__((noinline)) void kfree_block(struct smp_pmm *m, void *p)
{
    uintptr_t addr = (uintptr_t)p;
    if (__builtin_expect(smp_pg_contains(&m->pg, addr) && !(addr & (SMP_PAGE_SIZE - 1)), 1)) {
        uint32_t idx = smp_page_index(&m->pg, addr);
        struct smp_page_head *h = smp_head(&m->pg, idx);
        if (__builtin_expect(!m->owner[idx] && smp_state(h) == PG_ALLOC, 1)) {
            if (__builtin_expect(h->order < SMP_PCP_ORDERS, 1))
                smp_pcp_free(&m->pg, idx, h->order);
            else
                smp_pg_free_large(&m->pg, p, h->order);
            return;
        }
    }
    kfree_other(m, p);
}

/* kfree's route: whether addr is the start of an object in a slab (*key
 * set to its page's owner byte, the class's slot key: obj.h), else it is a
 * page block or anything kfree_other judges.  One bounds test, one byte of
 * the dense owner array, one AND (kfree_mask is all ones but at the keys). */
static inline bool small_object(const struct smp_pmm *m, uintptr_t addr, size_t *key)
{
    if (__builtin_expect(!smp_pg_contains(&m->pg, addr), 0))
        return false;
    *key = m->owner[(addr - m->pg.base) >> SMP_PAGE_SHIFT];
    return !(m->kfree_mask[*key] & addr);
}

void SMP_UNCHECKED(smp_kfree)(void *p)
{
    struct smp_pmm *m = smp_pmm_live;
    size_t key;
    if (__builtin_expect(small_object(m, (uintptr_t)p, &key), 1))
        smp_obj_free(&m->obj, key, p);
    else
        kfree_block(m, p);
}

#ifndef SMP_CHECKED
size_t smp_kalloc_small_size(const void *p)
{
    size_t key;
    return small_object(smp_pmm_live, (uintptr_t)p, &key) ? smp_class_size(SMP_KEY_CLASS(key)) : 0;
}
#else
size_t smp_kalloc_small_size(const void *p)
{
    (void)p;
    return 0;
}
#endif

size_t smp_kalloc_block_size(void *p, const char *who)
{
    struct smp_pmm *m = smp_pmm_state;
    unsigned order;
    int cls = classify(m, p, &order, who);
    return cls >= 0 ? smp_class_size((unsigned)cls) : SMP_PAGE_SIZE << order;
}

#ifndef SMP_CHECKED
size_t smp_kalloc_usable_size(void *p)
{
    return smp_kalloc_block_size(p, "kalloc_usable_size");
}

void smp_quarantine_init(struct smp_pmm *m)
{
    (void)m;
}

void smp_quarantine_flush(struct smp_pmm *m)
{
    (void)m;
}
#endif

void *smp_page_alloc(unsigned order)
{
    return smp_pg_alloc(&smp_pmm_live->pg, order);   /* before init: NULL, as kalloc */
}

void smp_page_free(void *p, unsigned order)
{
    smp_pg_free(&smp_pmm_live->pg, p, order);     /* before init: no address is inside */
}
