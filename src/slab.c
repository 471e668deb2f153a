/*
 * Slabs: the shared layer behind the per-CPU magazines, one set per size
 * class.  Reached only in batches (refill of an empty magazine, flush of a
 * full one), so its per-class lock is off the fast path.
 *
 * Lock order: objcache lock -> slab class lock -> pcp lock -> zone lock.
 * This file never holds a class lock while allocating pages (a page
 * allocation may drain every cache, which takes objcache locks); it frees
 * released slabs after dropping the class lock.
 *
 * Per class, every slab (PG_SLAB head descriptor, cls = class) is on exactly
 * one of: the partial list (0 < inuse < per_slab), the empty list (inuse == 0),
 * or no list (full: inuse == per_slab).  desc->list holds which (LIST_*).
 * Invariant per slab: inuse + |freelist| + aux == per_slab.
 */
#include "slab.h"
#include "base/fmt.h"

enum { LIST_FULL = 0, LIST_PARTIAL = 1, LIST_EMPTY = 2 };
#define KEEP_EMPTY 1       /* empty slabs a class keeps to absorb churn */

void smp_slab_init(struct smp_pmm *m)
{
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
        struct smp_slab_class *c = &m->slab[cls];
        c->size = (unsigned)smp_class_size(cls);
        /* At least 8 objects per slab: 1 KiB objects take order-1 slabs,
         * 2 KiB objects order-2. */
        c->order = 0;
        while ((SMP_PAGE_SIZE << c->order) < 8UL * c->size)
            c->order++;      /* at most SMP_MAX_SLAB_ORDER (2 KiB objects) */
        c->per_slab = (unsigned)((SMP_PAGE_SIZE << c->order) / c->size);
        unsigned b = 8192 / c->size;
        c->batch = b < 4 ? 4 : b > 64 ? 64 : b;
        c->partial = c->empty = SMP_NIL;
        smp_fmt_name(c->name, sizeof c->name, "kmem.slab", c->size);
        smp_lock_init(&c->lock, c->name);
    }
}

static void list_add(struct smp_pmm *m, uint32_t *head, uint32_t idx, uint8_t tag)
{
    struct smp_page *pg = &m->pages[idx];
    pg->list = tag;
    pg->prev = SMP_NIL;
    pg->next = *head;
    if (*head != SMP_NIL)
        m->pages[*head].prev = idx;
    *head = idx;
}

static void list_del(struct smp_pmm *m, uint32_t *head, uint32_t idx)
{
    struct smp_page *pg = &m->pages[idx];
    if (pg->prev != SMP_NIL)
        m->pages[pg->prev].next = pg->next;
    else
        *head = pg->next;
    if (pg->next != SMP_NIL)
        m->pages[pg->next].prev = pg->prev;
    pg->next = pg->prev = SMP_NIL;
    pg->list = LIST_FULL;
}

/* Hand out up to n objects from the partial list, then the empty list. */
static unsigned take_locked(struct smp_pmm *m, struct smp_slab_class *c, unsigned n, void **chain)
{
    void *head = *chain;
    unsigned got = 0;
    while (got < n) {
        uint32_t idx = c->partial;
        if (idx == SMP_NIL) {
            idx = c->empty;
            if (idx == SMP_NIL)
                break;
            list_del(m, &c->empty, idx);
            c->nempty--;
            list_add(m, &c->partial, idx, LIST_PARTIAL);
        }
        struct smp_page *pg = &m->pages[idx];
        uintptr_t base = smp_page_addr(m, idx);
        while (got < n && (pg->freelist || pg->aux)) {
            void *o;
            if (pg->freelist) {
                o = pg->freelist;
                pg->freelist = *(void **)o;
            } else {
                pg->aux--;   /* carve never-used objects from the top down */
                o = (void *)(base + pg->aux * c->size);
            }
            *(void **)o = head;
            head = o;
            got++;
            pg->inuse++;
        }
        if (pg->inuse == c->per_slab)
            list_del(m, &c->partial, idx);
    }
    *chain = head;
    return got;
}

unsigned smp_slab_take(struct smp_pmm *m, unsigned cls, unsigned n, void **chain)
{
    struct smp_slab_class *c = &m->slab[cls];
    *chain = 0;
    smp_lock_acquire(&c->lock);
    unsigned got = take_locked(m, c, n, chain);
    smp_lock_release(&c->lock);
    if (got)
        return got;
    /* No free object in the class: a new slab, allocated with no lock held. */
    void *p = smp_page_alloc(c->order);
    if (!p)
        return 0;
    uint32_t idx = smp_page_index(m, (uintptr_t)p);
    smp_lock_acquire(&c->lock);
    struct smp_page *pg = &m->pages[idx];
    smp_set_state(pg, PG_SLAB);
    pg->cls = (uint8_t)cls;
    pg->inuse = 0;
    pg->freelist = 0;
    pg->aux = c->per_slab;
    c->nslabs++;
    list_add(m, &c->partial, idx, LIST_PARTIAL);
    got = take_locked(m, c, n, chain);
    smp_lock_release(&c->lock);
    return got;
}

/* Detach empty slabs beyond `keep`; returns them chained through desc
 * next, marked PG_ALLOC so that page_free accepts them.  Lock held. */
static uint32_t detach_empty_locked(struct smp_pmm *m, struct smp_slab_class *c, unsigned keep)
{
    uint32_t out = SMP_NIL;
    while (c->nempty > keep) {
        uint32_t idx = c->empty;
        list_del(m, &c->empty, idx);
        c->nempty--;
        c->nslabs--;
        struct smp_page *pg = &m->pages[idx];
        smp_set_state(pg, PG_ALLOC);
        pg->order = (uint8_t)c->order;
        pg->freelist = 0;
        pg->next = out;
        out = idx;
    }
    return out;
}

static void free_detached(struct smp_pmm *m, struct smp_slab_class *c, uint32_t idx)
{
    while (idx != SMP_NIL) {
        uint32_t next = m->pages[idx].next;
        m->pages[idx].next = SMP_NIL;
        smp_page_free((void *)smp_page_addr(m, idx), c->order);
        idx = next;
    }
}

void smp_slab_give(struct smp_pmm *m, unsigned cls, void *chain, unsigned n)
{
    struct smp_slab_class *c = &m->slab[cls];
    smp_lock_acquire(&c->lock);
    while (chain && n--) {
        void *o = chain;
        chain = *(void **)o;
        uint32_t idx = smp_slab_head(m, (uintptr_t)o);
        struct smp_page *pg = &m->pages[idx];
        if (pg->list == LIST_FULL)
            list_add(m, &c->partial, idx, LIST_PARTIAL);
        *(void **)o = pg->freelist;
        pg->freelist = o;
        if (--pg->inuse == 0) {
            list_del(m, &c->partial, idx);
            list_add(m, &c->empty, idx, LIST_EMPTY);
            c->nempty++;
        }
    }
    uint32_t release = detach_empty_locked(m, c, KEEP_EMPTY);
    smp_lock_release(&c->lock);
    free_detached(m, c, release);
}

void smp_slab_release_empty(struct smp_pmm *m)
{
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
        struct smp_slab_class *c = &m->slab[cls];
        smp_lock_acquire(&c->lock);
        uint32_t release = detach_empty_locked(m, c, 0);
        smp_lock_release(&c->lock);
        free_detached(m, c, release);
    }
}

void smp_slab_lock_all(struct smp_pmm *m)
{
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++)
        smp_lock_acquire(&m->slab[cls].lock);
}

void smp_slab_unlock_all(struct smp_pmm *m)
{
    for (unsigned cls = SMP_KALLOC_CLASSES; cls-- > 0;)
        smp_lock_release(&m->slab[cls].lock);
}

int smp_slab_check_one_locked(struct smp_pmm *m, uint32_t idx)
{
    struct smp_page *pg = &m->pages[idx];
    if (pg->cls >= SMP_KALLOC_CLASSES)
        return smp_check_fail(m, idx, "slab of an unknown size class");
    struct smp_slab_class *c = &m->slab[pg->cls];
    if (pg->order != c->order)
        return smp_check_fail(m, idx, "slab order does not match its class");
    uintptr_t base = smp_page_addr(m, idx), top = base + (SMP_PAGE_SIZE << c->order);
    unsigned nfree = 0;
    for (void *o = pg->freelist; o; o = *(void **)o) {
        uintptr_t a = (uintptr_t)o;
        if (a < base || a >= top || (a & (c->size - 1)))
            return smp_check_fail(m, idx, "slab free list holds a foreign or misaligned object");
        /* Objects below aux were never handed out, so cannot be free-listed. */
        if (a < base + pg->aux * c->size)
            return smp_check_fail(m, idx, "slab free list holds a never-used object");
        if (++nfree > c->per_slab)
            return smp_check_fail(m, idx, "slab free list has a cycle");
    }
    if (pg->inuse + nfree + pg->aux != c->per_slab)
        return smp_check_fail(m, idx, "slab counters: inuse + free + unused != objects per slab");
    unsigned want = pg->inuse == 0 ? LIST_EMPTY : pg->inuse == c->per_slab ? LIST_FULL : LIST_PARTIAL;
    if (pg->list != want)
        return smp_check_fail(m, idx, "slab on the wrong list for its fill level");
    return 0;
}

static int check_list(struct smp_pmm *m, struct smp_slab_class *c, unsigned cls, uint32_t head,
                      uint8_t tag, size_t *n)
{
    uint32_t prev = SMP_NIL;
    for (uint32_t i = head; i != SMP_NIL; i = m->pages[i].next) {
        if (i >= m->npages)
            return smp_check_fail(m, prev, "slab list link points outside the region");
        struct smp_page *pg = &m->pages[i];
        if (smp_state(pg) != PG_SLAB || pg->cls != cls || pg->list != tag)
            return smp_check_fail(m, i, "slab list holds a block that is not a slab of this class");
        if (pg->prev != prev)
            return smp_check_fail(m, i, "slab list back link broken");
        if (++*n > c->nslabs)
            return smp_check_fail(m, i, "slab list longer than the class's slab count");
        prev = i;
    }
    return 0;
}

int smp_slab_check_locked(struct smp_pmm *m, const size_t *heads, const size_t *inuse,
                          const size_t *cached)
{
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
        struct smp_slab_class *c = &m->slab[cls];
        size_t np = 0, ne = 0;
        int rc = check_list(m, c, cls, c->partial, LIST_PARTIAL, &np);
        if (!rc)
            rc = check_list(m, c, cls, c->empty, LIST_EMPTY, &ne);
        if (rc)
            return rc;
        if (ne != c->nempty)
            return smp_check_fail(m, c->empty, "empty slab count disagrees with the list");
        if (heads[cls] != c->nslabs)
            return smp_check_fail(m, SMP_NIL, "slab count of a class disagrees with the descriptors");
        if (cached[cls] > inuse[cls])
            return smp_check_fail(m, SMP_NIL, "more objects cached on CPUs than slabs hand out");
    }
    return 0;
}
