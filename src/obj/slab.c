/*
 * Slabs: the shared layer behind the magazines and the depot, one set per
 * size class.  Reached only in batches, so its per-class lock is off the
 * fast path.
 *
 * Lock order: slab class lock -> depot lock -> zone lock.  This file never
 * holds a class lock while allocating or freeing pages through a CPU's
 * cache (that enters a section, which comes first in the order); it takes
 * the block first and frees released slabs after dropping the lock.
 *
 * Per class, every slab (PG_OWNED head, owner_tag class = cls) is on
 * exactly one of: the partial list (0 < inuse < per_slab), the empty list
 * (inuse == 0), or no list (full).  The list tag in owner_u64 says which.
 * Bookkeeping lives in the head page's descriptor (obj.h).
 */
#include "obj.h"
#include "../base/fmt.h"

enum { LIST_FULL = 0, LIST_PARTIAL = 1, LIST_EMPTY = 2 };
#define KEEP_EMPTY 1       /* empty slabs a class keeps to absorb churn */

/* smp_slot_key_of's table: entry i serves sizes 8i+1 .. 8i+8, whose class
 * is ceil(log2(i + 1)) -- one 0, one 1, two 2s, four 3s, ... 256 9s --
 * stored as its slot key. */
#define K(c) SMP_SLOT_KEY(c)
#define TIMES2(c) c, c
#define TIMES4(c) TIMES2(c), TIMES2(c)
#define TIMES8(c) TIMES4(c), TIMES4(c)
#define TIMES16(c) TIMES8(c), TIMES8(c)
#define TIMES32(c) TIMES16(c), TIMES16(c)
#define TIMES64(c) TIMES32(c), TIMES32(c)
#define TIMES128(c) TIMES64(c), TIMES64(c)
#define TIMES256(c) TIMES128(c), TIMES128(c)
_Static_assert(SMP_MIN_CLASS_SHIFT == 3 && SMP_KALLOC_CLASSES == 10, "the table below is for 8 B .. 4 KiB");
const uint8_t smp_key_table[SMP_MAX_SMALL >> SMP_MIN_CLASS_SHIFT] = {
    K(0), K(1), TIMES2(K(2)), TIMES4(K(3)), TIMES8(K(4)), TIMES16(K(5)), TIMES32(K(6)), TIMES64(K(7)),
    TIMES128(K(8)), TIMES256(K(9))
};

/* Accessors for the owner words (obj.h). */
static unsigned unused_of(const struct smp_page *d) { return (uint32_t)d->owner_u64; }
static unsigned list_of(const struct smp_page *d) { return (unsigned)(d->owner_u64 >> 32); }
static void set_unused(struct smp_page *d, unsigned n) { d->owner_u64 = (d->owner_u64 & ~0xffffffffULL) | n; }
static void set_list(struct smp_page *d, unsigned l) { d->owner_u64 = (d->owner_u64 & 0xffffffffULL) | ((uint64_t)l << 32); }

void smp_slab_init(struct smp_objs *o)
{
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
        struct smp_slab_class *c = &o->slab[cls];
        c->size = (unsigned)smp_class_size(cls);
        /* At least 8 objects per slab: 1 KiB objects take order-1 slabs,
         * 2 KiB objects order-2, 4 KiB objects order-3. */
        c->order = 0;
        while ((SMP_PAGE_SIZE << c->order) < 8UL * c->size)
            c->order++;
        c->per_slab = (unsigned)((SMP_PAGE_SIZE << c->order) >> (cls + SMP_MIN_CLASS_SHIFT));
        c->partial = c->empty = SMP_NIL;
        c->nempty = c->nslabs = 0;
        smp_fmt_name(c->name, sizeof c->name, "kmem.slab", c->size);
        smp_lock_init(&c->lock, c->name);
    }
}

uint32_t smp_slab_head(const struct smp_objs *o, uintptr_t addr)
{
    const struct smp_pages *pg = o->pg;
    uint32_t idx = smp_page_index(pg, addr);
    unsigned tag = pg->pages[idx].owner_tag;
    if (!tag)
        return SMP_NIL;
    uint32_t h = idx - SMP_TAG_OFFSET(tag);
    return smp_state(smp_head(pg, h)) == PG_OWNED ? h : SMP_NIL;
}

int smp_slab_never_used(const struct smp_objs *o, uintptr_t addr)
{
    uint32_t h = smp_slab_head(o, addr);
    if (h == SMP_NIL)
        return 0;
    const struct smp_page *d = &o->pg->pages[h];
    struct smp_slab_class *c = (struct smp_slab_class *)&o->slab[SMP_TAG_CLASS(d->owner_tag)];
    smp_lock_acquire(&c->lock);
    int never = addr < smp_page_addr(o->pg, h) + (uintptr_t)unused_of(d) * c->size;
    smp_lock_release(&c->lock);
    return never;
}

static void list_add(struct smp_pages *pg, uint32_t *head, uint32_t idx, unsigned tag)
{
    struct smp_page *d = &pg->pages[idx];
    set_list(d, tag);
    d->prev = SMP_NIL;
    d->next = *head;
    if (*head != SMP_NIL)
        pg->pages[*head].prev = idx;
    *head = idx;
}

static void list_del(struct smp_pages *pg, uint32_t *head, uint32_t idx)
{
    struct smp_page *d = &pg->pages[idx];
    if (d->prev != SMP_NIL)
        pg->pages[d->prev].next = d->next;
    else
        *head = d->next;
    if (d->next != SMP_NIL)
        pg->pages[d->next].prev = d->prev;
    d->next = d->prev = SMP_NIL;
    set_list(d, LIST_FULL);
}

/* Hand out up to n objects from the partial list, then the empty list. */
static unsigned take_locked(struct smp_objs *o, struct smp_slab_class *c, unsigned n, void **chain)
{
    struct smp_pages *pg = o->pg;
    void *head = *chain;
    unsigned got = 0;
    while (got < n) {
        uint32_t idx = c->partial;
        if (idx == SMP_NIL) {
            idx = c->empty;
            if (idx == SMP_NIL)
                break;
            list_del(pg, &c->empty, idx);
            c->nempty--;
            list_add(pg, &c->partial, idx, LIST_PARTIAL);
        }
        struct smp_page *d = &pg->pages[idx];
        uintptr_t base = smp_page_addr(pg, idx);
        while (got < n && (d->owner_ptr || unused_of(d))) {
            void *obj;
            if (d->owner_ptr) {
                obj = d->owner_ptr;
                d->owner_ptr = smp_link_next(o, obj);
            } else {
                unsigned u = unused_of(d) - 1;   /* carve never-used objects from the top down */
                set_unused(d, u);
                obj = (void *)(base + (uintptr_t)u * c->size);
            }
            smp_link_set(o, obj, head);
            head = obj;
            got++;
            d->owner_u32++;
        }
        if (d->owner_u32 == c->per_slab)
            list_del(pg, &c->partial, idx);
    }
    *chain = head;
    return got;
}

/* Make block a slab of the class (lock held). */
static void adopt_locked(struct smp_objs *o, unsigned cls, void *block)
{
    struct smp_pages *pg = o->pg;
    struct smp_slab_class *c = &o->slab[cls];
    uint32_t idx = smp_page_index(pg, (uintptr_t)block);
    smp_pg_own(pg, block);
    for (uint32_t k = 0; k < (1U << c->order); k++) {
        pg->pages[idx + k].owner_tag = (uint16_t)((cls + 1) | (k << 8));
        pg->owner_byte[idx + k] = (uint8_t)SMP_SLOT_KEY(cls);   /* kfree's route (obj.h) */
    }
    struct smp_page *d = &pg->pages[idx];
    d->owner_u32 = 0;
    d->owner_ptr = 0;
    d->owner_u64 = 0;
    set_unused(d, c->per_slab);
    c->nslabs++;
    list_add(pg, &c->partial, idx, LIST_PARTIAL);
}

unsigned smp_slab_take(struct smp_objs *o, unsigned cls, unsigned n, void **chain)
{
    struct smp_slab_class *c = &o->slab[cls];
    *chain = 0;
    smp_lock_acquire(&c->lock);
    unsigned got = take_locked(o, c, n, chain);
    smp_lock_release(&c->lock);
    if (got)
        return got;
    /* No free object in the class: a new slab, allocated with no lock held. */
    void *block = smp_pg_alloc(o->pg, c->order);
    if (!block) {
        /* Memory is short, and the reclaim that found no block flushed every
         * CPU's magazines into the slabs: objects of this class may be free
         * now.  Look again before giving up (the fuzzer found kalloc NULL
         * while its class had free objects). */
        smp_lock_acquire(&c->lock);
        got = take_locked(o, c, n, chain);
        smp_lock_release(&c->lock);
        return got;
    }
    smp_lock_acquire(&c->lock);
    adopt_locked(o, cls, block);
    got = take_locked(o, c, n, chain);
    smp_lock_release(&c->lock);
    return got;
}

/* Detach empty slabs beyond `keep`; returns them chained through the
 * descriptors' next links, untagged and PG_ALLOC again.  Lock held. */
static uint32_t detach_empty_locked(struct smp_objs *o, struct smp_slab_class *c, unsigned keep)
{
    struct smp_pages *pg = o->pg;
    uint32_t out = SMP_NIL;
    while (c->nempty > keep) {
        uint32_t idx = c->empty;
        list_del(pg, &c->empty, idx);
        c->nempty--;
        c->nslabs--;
        for (uint32_t k = 0; k < (1U << c->order); k++) {
            pg->pages[idx + k].owner_tag = 0;
            pg->owner_byte[idx + k] = 0;
        }
        smp_pg_disown(pg, (void *)smp_page_addr(pg, idx));
        pg->pages[idx].next = out;
        out = idx;
    }
    return out;
}

static void free_detached(struct smp_objs *o, struct smp_slab_class *c, uint32_t idx,
                          void (*give)(struct smp_pages *, void *, unsigned))
{
    struct smp_pages *pg = o->pg;
    while (idx != SMP_NIL) {
        uint32_t next = pg->pages[idx].next;
        pg->pages[idx].next = SMP_NIL;
        give(pg, (void *)smp_page_addr(pg, idx), c->order);
        idx = next;
    }
}

static void give_to_cache(struct smp_pages *pg, void *block, unsigned order)
{
    smp_pg_free(pg, block, order);
}

void smp_slab_give(struct smp_objs *o, unsigned cls, void *chain, unsigned n)
{
    smp_slab_give_to(o, cls, chain, n, give_to_cache);
}

void smp_slab_give_to(struct smp_objs *o, unsigned cls, void *chain, unsigned n,
                      void (*give)(struct smp_pages *, void *, unsigned))
{
    struct smp_pages *pg = o->pg;
    struct smp_slab_class *c = &o->slab[cls];
    smp_lock_acquire(&c->lock);
    while (chain && n--) {
        void *obj = chain;
        chain = smp_link_next(o, obj);
        uint32_t idx = smp_slab_head(o, (uintptr_t)obj);
        struct smp_page *d = &pg->pages[idx];
        if (list_of(d) == LIST_FULL)
            list_add(pg, &c->partial, idx, LIST_PARTIAL);
        smp_link_set(o, obj, d->owner_ptr);
        d->owner_ptr = obj;
        if (--d->owner_u32 == 0) {
            list_del(pg, &c->partial, idx);
            list_add(pg, &c->empty, idx, LIST_EMPTY);
            c->nempty++;
        }
    }
    uint32_t release = detach_empty_locked(o, c, KEEP_EMPTY);
    smp_lock_release(&c->lock);
    free_detached(o, c, release, give);
}

void smp_slab_release_empty(struct smp_objs *o, void (*give)(struct smp_pages *, void *, unsigned))
{
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
        struct smp_slab_class *c = &o->slab[cls];
        smp_lock_acquire(&c->lock);
        uint32_t release = detach_empty_locked(o, c, 0);
        smp_lock_release(&c->lock);
        free_detached(o, c, release, give);
    }
}

void smp_slab_lock_all(struct smp_objs *o)
{
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++)
        smp_lock_acquire(&o->slab[cls].lock);
}

void smp_slab_unlock_all(struct smp_objs *o)
{
    for (unsigned cls = SMP_KALLOC_CLASSES; cls-- > 0;)
        smp_lock_release(&o->slab[cls].lock);
}
