/*
 * Per-CPU object caches (see objcache.h for the fast path and lock order).
 *
 * Each CPU has, per size class, a loaded magazine and a previous one
 * (Bonwick's magazines, as linked chains).  kalloc pops from loaded; kfree
 * pushes onto loaded, whichever CPU allocated the object, so a remote free
 * costs the same as a local one and takes no shared lock.  Only when both
 * magazines are empty (full) does a batch move from (to) the class's slabs.
 * pmm_drain and pmm_check take other CPUs' objcache locks, one at a time
 * (drain) or all in increasing CPU id (check).
 */
#include "objcache.h"
#include "base/fmt.h"

void smp_objcache_init(struct smp_pmm *m)
{
    for (int cpu = 0; cpu < m->ncpu; cpu++) {
        struct smp_objcache *oc = &m->oc[cpu];
        smp_fmt_name(oc->name, sizeof oc->name, "kmem.obj", (uint64_t)cpu);
        smp_lock_init(&oc->lock, oc->name);
        for (unsigned c = 0; c < SMP_KALLOC_CLASSES; c++) {
            oc->loaded[c] = (struct smp_magazine){ 0, 0 };
            oc->previous[c] = (struct smp_magazine){ 0, 0 };
        }
    }
}

/* Loaded magazine empty (lock held, interrupts pushed).  Swap in the
 * previous magazine if it has objects; otherwise take a batch from the
 * slabs with no lock held (it may allocate pages, which may drain every
 * cache), keep one object and load the rest. */
void *smp_objcache_alloc_slow(struct smp_pmm *m, int cpu, unsigned cls)
{
    struct smp_objcache *oc = &m->oc[cpu];
    struct smp_magazine *mag = &oc->loaded[cls];
    void *p = 0;
    if (oc->previous[cls].head) {
        struct smp_magazine t = *mag;
        *mag = oc->previous[cls];
        oc->previous[cls] = t;
        p = mag->head;
        mag->head = *(void **)p;
        mag->count--;
    }
    smp_lock_release_local(&oc->lock);
    if (!p) {
        void *chain;
        unsigned n = smp_slab_take(m, cls, m->slab[cls].batch, &chain);
        if (n) {
            p = chain;
            chain = *(void **)p;
            n--;
        }
        if (n) {
            /* The magazines are normally still empty; if an interrupt
             * handler refilled them meanwhile, spill the batch back. */
            struct smp_magazine fresh = { chain, n }, spill = { 0, 0 };
            smp_lock_take_local(&oc->lock);
            if (!oc->loaded[cls].head)
                oc->loaded[cls] = fresh;
            else if (!oc->previous[cls].head)
                oc->previous[cls] = fresh;
            else
                spill = fresh;
            smp_lock_release_local(&oc->lock);
            if (spill.head)
                smp_slab_give(m, cls, spill.head, spill.count);
        }
    }
    smp_port_irq_pop();
    return p;
}

/* Loaded magazine full (lock held, interrupts pushed): it becomes the
 * previous magazine, a full previous one goes back to the slabs, and p
 * starts a fresh loaded magazine. */
void smp_objcache_free_slow(struct smp_pmm *m, int cpu, unsigned cls, void *p)
{
    struct smp_objcache *oc = &m->oc[cpu];
    struct smp_magazine full = oc->previous[cls];
    oc->previous[cls] = oc->loaded[cls];
    *(void **)p = 0;
    oc->loaded[cls] = (struct smp_magazine){ p, 1 };
    smp_lock_release_local(&oc->lock);
    if (full.head)
        smp_slab_give(m, cls, full.head, full.count);
    smp_port_irq_pop();
}

void *smp_objcache_alloc_contended(struct smp_pmm *m, int cpu, unsigned cls)
{
    smp_lock_take_local(&m->oc[cpu].lock);
    return smp_objcache_alloc_locked(m, cpu, cls);
}

void smp_objcache_free_contended(struct smp_pmm *m, int cpu, unsigned cls, void *p)
{
    smp_lock_take_local(&m->oc[cpu].lock);
    smp_objcache_free_locked(m, cpu, cls, p);
}

void smp_objcache_drain_all(struct smp_pmm *m)
{
    for (int cpu = 0; cpu < m->ncpu; cpu++) {
        struct smp_objcache *oc = &m->oc[cpu];
        struct smp_magazine out[2 * SMP_KALLOC_CLASSES];
        smp_lock_acquire(&oc->lock);
        for (unsigned c = 0; c < SMP_KALLOC_CLASSES; c++) {
            out[2 * c] = oc->loaded[c];
            out[2 * c + 1] = oc->previous[c];
            oc->loaded[c] = (struct smp_magazine){ 0, 0 };
            oc->previous[c] = (struct smp_magazine){ 0, 0 };
        }
        smp_lock_release(&oc->lock);
        for (unsigned i = 0; i < 2 * SMP_KALLOC_CLASSES; i++)
            if (out[i].head)
                smp_slab_give(m, i / 2, out[i].head, out[i].count);
    }
}

void smp_objcache_lock_all(struct smp_pmm *m)
{
    for (int cpu = 0; cpu < m->ncpu; cpu++)
        smp_lock_acquire(&m->oc[cpu].lock);
}

void smp_objcache_unlock_all(struct smp_pmm *m)
{
    for (int cpu = m->ncpu - 1; cpu >= 0; cpu--)
        smp_lock_release(&m->oc[cpu].lock);
}

static int check_magazine(struct smp_pmm *m, unsigned cls, const struct smp_magazine *mag,
                          size_t *cached)
{
    unsigned n = 0;
    size_t size = smp_class_size(cls);
    for (void *o = mag->head; o; o = *(void **)o) {
        uintptr_t a = (uintptr_t)o;
        if (a < m->base || a - m->base >= (uintptr_t)m->npages << SMP_PAGE_SHIFT)
            return smp_check_fail(m, SMP_NIL, "cpu object cache holds an address outside the region");
        uint32_t h = smp_slab_head(m, a);
        if (h == SMP_NIL || m->pages[h].cls != cls)
            return smp_check_fail(m, smp_page_index(m, a), "cpu object cache holds an object of no slab of its class");
        if (a & (size - 1))
            return smp_check_fail(m, smp_page_index(m, a), "cpu object cache holds a misaligned object");
        if (++n > mag->count)
            break;
    }
    if (n != mag->count)
        return smp_check_fail(m, SMP_NIL, "cpu object cache count disagrees with its chain");
    cached[cls] += n;
    return 0;
}

int smp_objcache_check_locked(struct smp_pmm *m, size_t *cached)
{
    for (int cpu = 0; cpu < m->ncpu; cpu++)
        for (unsigned c = 0; c < SMP_KALLOC_CLASSES; c++) {
            int rc = check_magazine(m, c, &m->oc[cpu].loaded[c], cached);
            if (!rc)
                rc = check_magazine(m, c, &m->oc[cpu].previous[c], cached);
            if (rc)
                return rc;
        }
    return 0;
}

int smp_kalloc_stats(int cpu, struct smp_kalloc_stats *out)
{
    struct smp_pmm *m = smp_pmm_state;
    if (!m || !out || cpu < -1 || cpu >= m->ncpu)
        return SMP_EINVAL;
    out->slab_pages = 0;
    for (unsigned c = 0; c < SMP_KALLOC_CLASSES; c++) {
        struct smp_slab_class *sc = &m->slab[c];
        out->class_size[c] = smp_class_size(c);
        out->cached[c] = 0;
        for (int k = cpu < 0 ? 0 : cpu; k < (cpu < 0 ? m->ncpu : cpu + 1); k++) {
            struct smp_objcache *oc = &m->oc[k];
            smp_lock_acquire(&oc->lock);
            out->cached[c] += oc->loaded[c].count + oc->previous[c].count;
            smp_lock_release(&oc->lock);
        }
        smp_lock_acquire(&sc->lock);
        out->slabs[c] = sc->nslabs;
        out->slab_pages += (size_t)sc->nslabs << sc->order;
        /* inuse lives in each slab's descriptor; the class keeps no sum, so
         * report capacity minus the free objects on partial/empty slabs. */
        size_t free_objs = 0;
        for (int pass = 0; pass < 2; pass++)
            for (uint32_t i = pass ? sc->empty : sc->partial; i != SMP_NIL; i = m->pages[i].next)
                free_objs += sc->per_slab - m->pages[i].inuse;
        out->in_use[c] = (size_t)sc->nslabs * sc->per_slab - free_objs;
        smp_lock_release(&sc->lock);
    }
    return 0;
}
