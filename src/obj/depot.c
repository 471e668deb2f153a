/*
 * The depot: per class, a bounded stack of full magazines shared by all
 * CPUs (Bonwick & Adams).  A CPU that frees more than it allocates hands
 * whole magazines to one that allocates more than it frees, in O(1) under
 * one lock, instead of pushing every object through the slabs.  Empty
 * magazines need no store: a magazine is a chain, and an empty chain is
 * nothing.
 *
 * Locks: depot[cls].lock, a leaf (taken inside a CPU's section).  Bound:
 * max magazines per class (two per CPU, at most SMP_DEPOT_SLOTS), so the
 * depot caches at most max full magazines per class: max * SMP_MAG_BYTES,
 * or for the classes above 1 KiB max * SMP_MAG_MIN_OBJECTS objects (1 MiB
 * of 4 KiB ones at 8 CPUs or more).
 */
#include "obj.h"
#include "../base/fmt.h"

void smp_depot_init(struct smp_objs *o)
{
    unsigned max = 2 * (unsigned)o->ncpu;
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
        struct smp_depot *d = &o->depot[cls];
        atomic_init(&d->n, 0);
        d->max = max < SMP_DEPOT_SLOTS ? max : SMP_DEPOT_SLOTS;
        smp_fmt_name(d->name, sizeof d->name, "kmem.depot", smp_class_size(cls));
        smp_lock_init(&d->lock, d->name);
    }
}

int smp_depot_get(struct smp_objs *o, unsigned cls, struct smp_mag *out)
{
    struct smp_depot *d = &o->depot[cls];
    if (!atomic_load_explicit(&d->n, memory_order_relaxed))   /* a peek: empty is common */
        return 0;
    int got = 0;
    smp_lock_acquire(&d->lock);
    unsigned n = atomic_load_explicit(&d->n, memory_order_relaxed);
    if (n) {
        *out = d->full[n - 1];
        atomic_store_explicit(&d->n, n - 1, memory_order_relaxed);
        got = 1;
    }
    smp_lock_release(&d->lock);
    return got;
}

int smp_depot_put(struct smp_objs *o, unsigned cls, struct smp_mag mag)
{
    struct smp_depot *d = &o->depot[cls];
    int put = 0;
    smp_lock_acquire(&d->lock);
    unsigned n = atomic_load_explicit(&d->n, memory_order_relaxed);
    if (n < d->max) {
        d->full[n] = mag;
        atomic_store_explicit(&d->n, n + 1, memory_order_relaxed);
        put = 1;
    }
    smp_lock_release(&d->lock);
    return put;
}

void smp_depot_flush(struct smp_objs *o)
{
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++) {
        struct smp_mag mag;
        while (smp_depot_get(o, cls, &mag))
            smp_slab_give_to(o, cls, mag.head, mag.count, smp_pg_zone_free);
    }
}

void smp_depot_lock_all(struct smp_objs *o)
{
    for (unsigned cls = 0; cls < SMP_KALLOC_CLASSES; cls++)
        smp_lock_acquire(&o->depot[cls].lock);
}

void smp_depot_unlock_all(struct smp_objs *o)
{
    for (unsigned cls = SMP_KALLOC_CLASSES; cls-- > 0;)
        smp_lock_release(&o->depot[cls].lock);
}
