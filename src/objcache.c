/*
 * Per-CPU object caches: the kalloc/kfree fast path for sizes <= 2 KiB.
 *
 * Each CPU has, per size class, a loaded magazine and a previous one
 * (Bonwick's magazines, as linked chains).  kalloc pops from loaded; kfree
 * pushes onto loaded, whichever CPU allocated the object, so a remote free
 * costs the same as a local one and takes no shared lock.  Only when both
 * magazines are empty (full) does a batch move from (to) the class's slabs.
 *
 * Lock order: oc[cpu].lock -> slab class lock -> pcp lock -> zone lock.
 * The fast path holds only oc[cpu].lock, with interrupts pushed off; the
 * slab layer is called after releasing it.  pmm_drain/pmm_check take other
 * CPUs' objcache locks, one at a time (drain) or all in increasing CPU id
 * (check).
 */
#include "slab.h"
#include "fmt.h"
#include "lock_inline.h"

void smp_objcache_init(struct smp_pmm *m)
{
    for (int cpu = 0; cpu < m->ncpu; cpu++) {
        struct smp_objcache *oc = &m->oc[cpu];
        struct smp_fmt f;
        smp_fmt_init(&f, oc->name, sizeof oc->name);
        smp_fmt_str(&f, "kmem.obj");
        smp_fmt_dec(&f, (uint64_t)cpu);
        smp_lock_init(&oc->lock, oc->name);
        for (unsigned c = 0; c < SMP_NCLASSES; c++) {
            oc->loaded[c] = (struct smp_magazine){ 0, 0 };
            oc->previous[c] = (struct smp_magazine){ 0, 0 };
        }
    }
}

static int this_cpu(struct smp_pmm *m)
{
    int cpu = smp_port_cpu_id();
    if ((unsigned)cpu >= (unsigned)m->ncpu)
        smp_panic("kalloc", "smp_port_cpu_id() outside 0..ncpu-1 given to pmm_init");
    return cpu;
}

/* Both magazines were empty: take a batch from the slabs with no lock held
 * (it may allocate pages, which may drain every cache), keep one object,
 * load the rest.  Interrupts are pushed off by the caller. */
static __attribute__((noinline)) void *refill(struct smp_pmm *m, int cpu, unsigned cls)
{
    struct smp_objcache *oc = &m->oc[cpu];
    void *chain, *p = 0;
    unsigned n = smp_slab_take(m, cls, m->slab[cls].batch, &chain);
    if (n) {
        p = chain;
        chain = *(void **)p;
        n--;
    }
    if (n) {
        /* The magazines are normally still empty; if an interrupt handler
         * refilled them meanwhile, spill the batch back. */
        struct smp_magazine fresh = { chain, n }, spill = { 0, 0 };
        smp_lock_acquire_on(&oc->lock, cpu);
        if (!oc->loaded[cls].head)
            oc->loaded[cls] = fresh;
        else if (!oc->previous[cls].head)
            oc->previous[cls] = fresh;
        else
            spill = fresh;
        smp_lock_release_on(&oc->lock, cpu);
        if (spill.head)
            smp_slab_give(m, cls, spill.head, spill.count);
    }
    return p;
}

void *smp_objcache_alloc(struct smp_pmm *m, unsigned cls)
{
    smp_port_irq_push();            /* stay on this CPU until we are done */
    int cpu = this_cpu(m);
    struct smp_objcache *oc = &m->oc[cpu];
    smp_lock_acquire_on(&oc->lock, cpu);
    struct smp_magazine *mag = &oc->loaded[cls];
    void *p = mag->head;
    if (__builtin_expect(p == 0, 0) && oc->previous[cls].head) {
        struct smp_magazine t = *mag;
        *mag = oc->previous[cls];
        oc->previous[cls] = t;
        p = mag->head;
    }
    if (__builtin_expect(p != 0, 1)) {
        mag->head = *(void **)p;
        mag->count--;
    }
    smp_lock_release_on(&oc->lock, cpu);
    if (__builtin_expect(p == 0, 0))
        p = refill(m, cpu, cls);
    smp_port_irq_pop();
    return p;
}

void smp_objcache_free(struct smp_pmm *m, unsigned cls, void *p)
{
    smp_port_irq_push();
    int cpu = this_cpu(m);
    struct smp_objcache *oc = &m->oc[cpu];
    struct smp_magazine flush = { 0, 0 };
    smp_lock_acquire_on(&oc->lock, cpu);
    struct smp_magazine *mag = &oc->loaded[cls];
    if (__builtin_expect(mag->count >= m->slab[cls].batch, 0)) {
        /* Loaded is full: it becomes the previous magazine; a full previous
         * one goes back to the slabs. */
        flush = oc->previous[cls];
        oc->previous[cls] = *mag;
        mag->head = 0;
        mag->count = 0;
    }
    *(void **)p = mag->head;
    mag->head = p;
    mag->count++;
    smp_lock_release_on(&oc->lock, cpu);
    if (__builtin_expect(flush.head != 0, 0))
        smp_slab_give(m, cls, flush.head, flush.count);
    smp_port_irq_pop();
}

void smp_objcache_drain_all(struct smp_pmm *m)
{
    for (int cpu = 0; cpu < m->ncpu; cpu++) {
        struct smp_objcache *oc = &m->oc[cpu];
        struct smp_magazine out[2 * SMP_NCLASSES];
        smp_lock_acquire(&oc->lock);
        for (unsigned c = 0; c < SMP_NCLASSES; c++) {
            out[2 * c] = oc->loaded[c];
            out[2 * c + 1] = oc->previous[c];
            oc->loaded[c] = (struct smp_magazine){ 0, 0 };
            oc->previous[c] = (struct smp_magazine){ 0, 0 };
        }
        smp_lock_release(&oc->lock);
        for (unsigned i = 0; i < 2 * SMP_NCLASSES; i++)
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
        for (unsigned c = 0; c < SMP_NCLASSES; c++) {
            int rc = check_magazine(m, c, &m->oc[cpu].loaded[c], cached);
            if (!rc)
                rc = check_magazine(m, c, &m->oc[cpu].previous[c], cached);
            if (rc)
                return rc;
        }
    return 0;
}
