/*
 * The kalloc/kfree fast path for small sizes: this CPU's loaded magazine
 * of the class, inside one section (base/percpu.h): no lock, no atomic
 * read-modify-write, no fence, no statistics.  An empty or full magazine is
 * a tail call into magazine.c, which finishes the operation.
 */
#ifndef SMPMEM_MAGAZINE_H
#define SMPMEM_MAGAZINE_H

#include "obj.h"

/* An object of class cls, or NULL when no page can be had for a new slab
 * (the caller may reclaim from above and retry). */
SMP_FAST void *smp_obj_alloc(struct smp_objs *o, size_t cls)
{
    int cpu = smp_section_enter_fast();
    struct smp_mag *mag;
    void *p;
    /* One test, one slow call: an unknown CPU id (also: not initialised),
     * an empty magazine (NULL) or a corrupt link (outside the region, or
     * off the class's alignment); the slow path tells which. */
    if (__builtin_expect(smp_cpu_unknown(cpu, o->ncpu) ||
                         (mag = &o->cpu[(unsigned)cpu].loaded[cls], p = mag->head,
                          (uintptr_t)p - o->base >= o->span || ((uintptr_t)p & o->misalign[cls])), 0))
        return smp_obj_alloc_slow(o, cpu, cls);
    void *next = smp_link_get(o, p);
    /* The next pop reads next's link: start that load now.  Objects freed
     * by another CPU are cold here, and the caller is about to spend time
     * with p anyway.  (A prefetch of a bad pointer does not fault; the
     * check at the next pop still decides.) */
    __builtin_prefetch(next);
    mag->head = next;
    mag->last = p;
    mag->count--;
    smp_section_exit(cpu);
    return p;
}

/* Free p, an object of class cls (validated by the caller), on this CPU,
 * whichever CPU allocated it: a remote free costs what a local one does. */
SMP_FAST void smp_obj_free(struct smp_objs *o, size_t cls, void *p)
{
    int cpu = smp_section_enter_fast();
    struct smp_mag *mag;
    /* Slow: an unknown CPU id, a full magazine, or p freed again on top of it. */
    if (__builtin_expect(smp_cpu_unknown(cpu, o->ncpu) ||
                         (mag = &o->cpu[(unsigned)cpu].loaded[cls], mag->count >= o->cap[cls] || p == mag->head), 0)) {
        smp_obj_free_slow(o, cpu, cls, p);
        return;
    }
    smp_link_set(o, p, mag->head);
    mag->head = p;
    mag->count++;
    smp_section_exit(cpu);
}

#endif
