/*
 * Per-CPU object caches (objcache.c): the kalloc/kfree fast path for sizes
 * up to 2 KiB.  The two hot operations are inline here so that kalloc and
 * kfree compile to one function each with no call but the port hooks; the
 * refill, flush, drain and check live in objcache.c.
 *
 * Lock order: oc[cpu].lock -> slab class lock -> pcp lock -> zone lock.
 * The fast path holds only oc[cpu].lock, with interrupts pushed off; the
 * slab layer is called after releasing it.
 */
#ifndef SMPMEM_OBJCACHE_H
#define SMPMEM_OBJCACHE_H

#include "slab.h"
#include "base/spinlock_inline.h"

void smp_objcache_init(struct smp_pmm *m);
/* Slow paths, entered with interrupts pushed and oc[cpu].lock held; they
 * finish the operation: release the lock and pop interrupts. */
void *smp_objcache_alloc_slow(struct smp_pmm *m, int cpu, unsigned cls);
void smp_objcache_free_slow(struct smp_pmm *m, int cpu, unsigned cls, void *p);
/* The same operations when the first test-and-set found oc[cpu].lock held
 * (only by a CPU draining or checking): spin, then finish. */
void *smp_objcache_alloc_contended(struct smp_pmm *m, int cpu, unsigned cls);
void smp_objcache_free_contended(struct smp_pmm *m, int cpu, unsigned cls, void *p);
/* Flush every CPU's magazines back to the slabs. */
void smp_objcache_drain_all(struct smp_pmm *m);
/* pmm_check part; every objcache lock held.  Counts cached objects per class
 * and verifies each lies in a slab of its class at an object boundary. */
int smp_objcache_check_locked(struct smp_pmm *m, size_t *cached_objects);
void smp_objcache_lock_all(struct smp_pmm *m);
void smp_objcache_unlock_all(struct smp_pmm *m);

/* The second half of kalloc's fast path, with oc[cpu].lock held: pop and
 * finish, or hand an empty magazine to the slow path. */
static inline void *smp_objcache_alloc_locked(struct smp_pmm *m, int cpu, unsigned cls)
{
    struct smp_objcache *oc = &m->oc[cpu];
    struct smp_magazine *mag = &oc->loaded[cls];
    void *p = mag->head;
    if (__builtin_expect(p == 0, 0))
        return smp_objcache_alloc_slow(m, cpu, cls);
    mag->head = *(void **)p;
    mag->count--;
    smp_lock_release_local(&oc->lock);
    smp_port_irq_pop();
    return p;
}

static inline void *smp_objcache_alloc(struct smp_pmm *m, unsigned cls)
{
    smp_port_irq_push();            /* stay on this CPU until we are done */
    int cpu = smp_this_cpu(m);
    if (__builtin_expect(!smp_lock_try_local(&m->oc[cpu].lock), 0))
        return smp_objcache_alloc_contended(m, cpu, cls);
    return smp_objcache_alloc_locked(m, cpu, cls);
}

/* The second half of kfree's fast path, with oc[cpu].lock held. */
static inline void smp_objcache_free_locked(struct smp_pmm *m, int cpu, unsigned cls, void *p)
{
    struct smp_objcache *oc = &m->oc[cpu];
    struct smp_magazine *mag = &oc->loaded[cls];
    if (__builtin_expect(mag->count >= m->slab[cls].batch, 0)) {
        smp_objcache_free_slow(m, cpu, cls, p);
        return;
    }
    *(void **)p = mag->head;
    mag->head = p;
    mag->count++;
    smp_lock_release_local(&oc->lock);
    smp_port_irq_pop();
}

static inline void smp_objcache_free(struct smp_pmm *m, unsigned cls, void *p)
{
    smp_port_irq_push();
    int cpu = smp_this_cpu(m);
    if (__builtin_expect(!smp_lock_try_local(&m->oc[cpu].lock), 0)) {
        smp_objcache_free_contended(m, cpu, cls, p);
        return;
    }
    smp_objcache_free_locked(m, cpu, cls, p);
}

#endif
