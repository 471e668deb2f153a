/*
 * The object layer's setup, invariant check and statistics.
 *
 * Locks: the check runs with the world stopped and the caller holding
 * every class lock and every depot lock (smp_slab_lock_all,
 * smp_depot_lock_all: class locks first, as the lock order says).
 * Statistics read each CPU's magazines through smp_on_cpu and take one
 * class lock at a time.
 */
#include "obj.h"

size_t smp_obj_percpu_bytes(int ncpu)
{
    return (size_t)ncpu * sizeof(struct smp_obj_cpu);
}

/* The pop's test mask of class cls (struct smp_mag_slot: check). */
static uintptr_t slot_check(const struct smp_objs *o, unsigned cls)
{
    uintptr_t bound = SMP_PAGE_SIZE;          /* the span rounded up to a power of two */
    while (bound < o->span)
        bound <<= 1;
    return ~(bound - 1) | (smp_class_size(cls) - 1);
}

/* A per-init secret with no entropy source: the region's addresses and
 * this call's stack address, mixed (splitmix64's finaliser).  It need not be
 * unguessable: it turns a stray write into a link that fails its check. */
static uintptr_t make_secret(const struct smp_pages *pg)
{
    uint64_t x = (uint64_t)pg->base * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)&x ^
                 (uint64_t)pg->npages << 32;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (uintptr_t)x | 1;     /* never 0: a zero word never decodes to NULL */
}

void smp_obj_init(struct smp_objs *o, struct smp_pages *pg, int ncpu, void *percpu_mem)
{
    o->pg = pg;
    o->base = pg->base;
    o->span = pg->span;
    o->secret = make_secret(pg);
    o->ncpu = ncpu;
    o->cpu = percpu_mem;
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
        size_t n = SMP_MAG_BYTES / smp_class_size(cls);
        n = n < SMP_MAG_MIN_OBJECTS ? SMP_MAG_MIN_OBJECTS : n > SMP_MAG_MAX_OBJECTS ? SMP_MAG_MAX_OBJECTS : n;
        if (n < SMP_PAGE_SIZE / smp_class_size(cls))
            n = SMP_PAGE_SIZE / smp_class_size(cls);          /* a page at least (obj.h) */
        o->cap[cls] = (uint32_t)n;
    }
    for (int cpu = 0; cpu < ncpu; cpu++) {
        struct smp_obj_cpu *c = &o->cpu[cpu];
#ifndef SMP_PORT_HAS_CPU_WORDS
        o->cpu_at[cpu] = c;
#endif
        c->base = o->base;
        c->secret = o->secret;
        for (size_t i = 0; i < sizeof c->unused; i++)
            c->unused[i] = 0;
        for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
            c->previous[cls] = (struct smp_mag){ 0, 0 };
            *smp_slot_of(c, cls) = (struct smp_mag_slot){
                .room = o->cap[cls], .cap = o->cap[cls], .check = slot_check(o, cls) };
        }
    }
    smp_slab_init(o);
    smp_depot_init(o);
}

/* A slab's list tag and counters, as slab.c keeps them (obj.h). */
static unsigned unused_of(const struct smp_page *d) { return (uint32_t)d->owner_u64; }
static unsigned list_of(const struct smp_page *d) { return (unsigned)(d->owner_u64 >> 32); }
enum { LIST_FULL = 0, LIST_PARTIAL = 1, LIST_EMPTY = 2 };

int smp_slab_check_one(struct smp_objs *o, uint32_t idx, struct smp_obj_census *census)
{
    struct smp_pages *pg = o->pg;
    struct smp_page *d = &pg->pages[idx];
    unsigned tag = d->owner_tag;
    if (!tag || SMP_TAG_OFFSET(tag) != 0 || SMP_TAG_CLASS(tag) >= SMP_KALLOC_CLASSES)
        return smp_check_fail(pg, idx, "slab head's owner tag corrupt");
    unsigned cls = SMP_TAG_CLASS(tag);
    struct smp_slab_class *c = &o->slab[cls];
    if (smp_head(pg, idx)->order != c->order)
        return smp_check_fail(pg, idx, "slab order does not match its class");
    for (uint32_t k = 1; k < (1U << c->order); k++)
        if (pg->pages[idx + k].owner_tag != (uint16_t)((cls + 1) | (k << 8)))
            return smp_check_fail(pg, idx + k, "slab page's owner tag does not point at its head");
    for (uint32_t k = 0; k < (1U << c->order); k++)
        if (pg->owner_byte[idx + k] != SMP_SLOT_KEY(cls))
            return smp_check_fail(pg, idx + k, "slab page's owner byte is not its class");
    uintptr_t base = smp_page_addr(pg, idx), top = base + (SMP_PAGE_SIZE << c->order);
    unsigned nfree = 0;
    for (void *obj = d->owner_ptr; obj; obj = smp_link_get(o, obj)) {
        uintptr_t a = (uintptr_t)obj;
        if (a < base || a >= top || (a & (c->size - 1)))
            return smp_check_fail(pg, idx, "slab free list holds a foreign or misaligned object");
        /* Objects below the unused mark were never handed out. */
        if (a < base + (uintptr_t)unused_of(d) * c->size)
            return smp_check_fail(pg, idx, "slab free list holds a never-used object");
        if (++nfree > c->per_slab)
            return smp_check_fail(pg, idx, "slab free list has a cycle");
    }
    if (d->owner_u32 + nfree + unused_of(d) != c->per_slab)
        return smp_check_fail(pg, idx, "slab counters: inuse + free + unused != objects per slab");
    unsigned want = d->owner_u32 == 0 ? LIST_EMPTY : d->owner_u32 == c->per_slab ? LIST_FULL : LIST_PARTIAL;
    if (list_of(d) != want)
        return smp_check_fail(pg, idx, "slab on the wrong list for its fill level");
    census->slabs[cls]++;
    census->inuse[cls] += d->owner_u32;
    return 0;
}

static int check_list(struct smp_objs *o, struct smp_slab_class *c, unsigned cls, uint32_t head,
                      unsigned tag, size_t *n)
{
    struct smp_pages *pg = o->pg;
    uint32_t prev = SMP_NIL;
    for (uint32_t i = head; i != SMP_NIL; i = pg->pages[i].next) {
        if (i >= pg->npages)
            return smp_check_fail(pg, prev, "slab list link points outside the region");
        struct smp_page *d = &pg->pages[i];
        if (smp_state(smp_head(pg, i)) != PG_OWNED || d->owner_tag != cls + 1 || list_of(d) != tag)
            return smp_check_fail(pg, i, "slab list holds a block that is not a slab of this class");
        if (d->prev != prev)
            return smp_check_fail(pg, i, "slab list back link broken");
        if (++*n > c->nslabs)
            return smp_check_fail(pg, i, "slab list longer than the class's slab count");
        prev = i;
    }
    return 0;
}

/* One magazine: every object in a slab of its class, aligned, count right. */
static int check_magazine(struct smp_objs *o, unsigned cls, const struct smp_mag *mag, size_t *cached)
{
    struct smp_pages *pg = o->pg;
    unsigned n = 0;
    size_t size = smp_class_size(cls);
    for (void *obj = mag->head; obj; obj = smp_link_get(o, obj)) {
        uintptr_t a = (uintptr_t)obj;
        if (!smp_pg_contains(pg, a))
            return smp_check_fail(pg, SMP_NIL, "magazine holds an address outside the region");
        uint32_t h = smp_slab_head(o, a);
        if (h == SMP_NIL || SMP_TAG_CLASS(pg->pages[h].owner_tag) != cls)
            return smp_check_fail(pg, smp_page_index(pg, a), "magazine holds an object of no slab of its class");
        if (a & (size - 1))
            return smp_check_fail(pg, smp_page_index(pg, a), "magazine holds a misaligned object");
        if (++n > mag->count)
            break;
    }
    if (n != mag->count)
        return smp_check_fail(pg, SMP_NIL, "magazine count disagrees with its chain");
    if (n > o->cap[cls])
        return smp_check_fail(pg, SMP_NIL, "magazine holds more than its capacity");
    *cached += n;
    return 0;
}

/* The constants a CPU's fast paths read instead of the layer's own: set at
 * init, never written again (obj.h).  A stray write here would turn off
 * the pop's tests or decode every link wrong. */
static int check_cpu_constants(struct smp_objs *o, const struct smp_obj_cpu *c)
{
    int bad = c->base != o->base || c->secret != o->secret;
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
        const struct smp_mag_slot *s = &c->slot[cls];
        bad |= s->cap != o->cap[cls] || s->check != slot_check(o, cls);
    }
    return bad ? smp_check_fail(o->pg, SMP_NIL,
                                "cpu's object cache constants corrupt (base, secret, capacity or test mask)")
               : 0;
}

int smp_obj_check_frozen(struct smp_objs *o, const struct smp_obj_census *census)
{
    struct smp_pages *pg = o->pg;
    for (int cpu = 0; cpu < o->ncpu; cpu++) {
        int rc = check_cpu_constants(o, &o->cpu[cpu]);
        if (rc)
            return rc;
    }
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
        struct smp_slab_class *c = &o->slab[cls];
        size_t np = 0, ne = 0, cached = 0;
        int rc = check_list(o, c, cls, c->partial, LIST_PARTIAL, &np);
        if (!rc)
            rc = check_list(o, c, cls, c->empty, LIST_EMPTY, &ne);
        for (int cpu = 0; cpu < o->ncpu && !rc; cpu++) {
            struct smp_mag loaded = smp_loaded_get(&o->cpu[cpu], cls);
            rc = check_magazine(o, cls, &loaded, &cached);
            if (!rc)
                rc = check_magazine(o, cls, &o->cpu[cpu].previous[cls], &cached);
        }
        struct smp_depot *d = &o->depot[cls];
        unsigned nd = atomic_load_explicit(&d->n, memory_order_relaxed);
        if (!rc && nd > d->max)
            rc = smp_check_fail(pg, SMP_NIL, "depot holds more magazines than its bound");
        for (unsigned i = 0; i < nd && !rc; i++) {
            if (d->from[i] >= o->ncpu)
                rc = smp_check_fail(pg, SMP_NIL, "depot magazine names no CPU as the one that put it");
            else
                rc = check_magazine(o, cls, &d->full[i], &cached);
        }
        if (rc)
            return rc;
        if (ne != c->nempty)
            return smp_check_fail(pg, c->empty, "empty slab count disagrees with the list");
        if (census->slabs[cls] != c->nslabs)
            return smp_check_fail(pg, SMP_NIL, "slab count of a class disagrees with the descriptors");
        if (cached > census->inuse[cls])
            return smp_check_fail(pg, SMP_NIL, "more objects cached in magazines than slabs hand out");
    }
    return 0;
}

struct count {
    struct smp_objs *o;
    size_t cached[SMP_KALLOC_CLASSES];
};

static void count_cpu(int cpu, void *arg)
{
    struct count *k = arg;
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++)
        k->cached[cls] += smp_loaded_get(&k->o->cpu[cpu], cls).count + k->o->cpu[cpu].previous[cls].count;
}

void smp_obj_stats(struct smp_objs *o, int cpu, struct smp_kalloc_stats *out)
{
    struct count k;             /* zeroed by a loop: an initialiser may become a memset call */
    k.o = o;
    for (unsigned c = 0; c < SMP_KALLOC_CLASSES; c++)
        k.cached[c] = 0;
    for (int c = cpu < 0 ? 0 : cpu; c < (cpu < 0 ? o->ncpu : cpu + 1); c++)
        smp_on_cpu(c, count_cpu, &k);
    out->slab_pages = 0;
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
        struct smp_slab_class *c = &o->slab[cls];
        out->class_size[cls] = smp_class_size(cls);
        out->cached[cls] = k.cached[cls];
        smp_lock_acquire(&c->lock);
        out->slabs[cls] = c->nslabs;
        out->slab_pages += (size_t)c->nslabs << c->order;
        /* inuse lives in each slab's descriptor; the class keeps no sum, so
         * report capacity minus the free objects on partial/empty slabs. */
        size_t free_objs = 0;
        for (int pass = 0; pass < 2; pass++)
            for (uint32_t i = pass ? c->empty : c->partial; i != SMP_NIL; i = o->pg->pages[i].next)
                free_objs += c->per_slab - o->pg->pages[i].owner_u32;
        out->in_use[cls] = (size_t)c->nslabs * c->per_slab - free_objs;
        smp_lock_release(&c->lock);
    }
}
