/*
 * The depot: per class, a bounded stack of full magazines shared by all
 * CPUs (Bonwick & Adams).  A CPU that frees more than it allocates hands
 * whole magazines to one that allocates more than it frees, under one
 * lock, instead of pushing every object through the slabs.  Empty
 * magazines need no store: a magazine is a chain, and an empty chain is
 * nothing.
 *
 * A CPU takes back a magazine it put itself before anyone else's.  Objects
 * a CPU freed sit in lines beside its live ones; handed to another CPU,
 * each of them shares a line with a CPU that keeps writing its neighbour.
 * Two CPUs whose live counts of a class wander up and down each put and get
 * magazines by turns, and taking the top of the stack gave each the
 * other's: in the kalloc benchmark's small workload with 64 Ki live slots
 * per thread at 2 threads, 0.5-2.0% of the workload's block accesses found
 * the line last touched by the other thread (0.05-0.7% with the
 * preference; mimalloc, whose pages are a thread's own, 0: README,
 * lines_smpmem), and throughput rose 5-7%.  Taking no other CPU's magazine
 * at all (the slabs instead) shared no line, but a consumer of another
 * CPU's frees then went through the slabs: the remote workload at 8
 * threads ran a third slower with 5x the peak RSS.  The search is over at
 * most SMP_DEPOT_SLOTS entries, under the lock a get takes anyway; a CPU
 * with none of its own takes the newest.
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

int smp_depot_get(struct smp_objs *o, unsigned cls, struct smp_mag *out, int cpu)
{
    struct smp_depot *d = &o->depot[cls];
    if (!atomic_load_explicit(&d->n, memory_order_relaxed))   /* a peek: empty is common */
        return 0;
    int got = 0;
    smp_lock_acquire(&d->lock);
    unsigned n = atomic_load_explicit(&d->n, memory_order_relaxed);
    if (n) {
        unsigned i = n - 1;                /* this CPU's newest, else the newest */
        while (i > 0 && d->from[i] != cpu)
            i--;
        if (d->from[i] != cpu)
            i = n - 1;
        *out = d->full[i];
        d->full[i] = d->full[n - 1];       /* the top fills the hole */
        d->from[i] = d->from[n - 1];
        atomic_store_explicit(&d->n, n - 1, memory_order_relaxed);
        got = 1;
    }
    smp_lock_release(&d->lock);
    return got;
}

int smp_depot_put(struct smp_objs *o, unsigned cls, struct smp_mag mag, int cpu)
{
    struct smp_depot *d = &o->depot[cls];
    int put = 0;
    smp_lock_acquire(&d->lock);
    unsigned n = atomic_load_explicit(&d->n, memory_order_relaxed);
    if (n < d->max) {
        d->full[n] = mag;
        d->from[n] = (uint8_t)cpu;         /* cpu < SMP_MAX_CPUS <= 256 (obj.h) */
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
        while (smp_depot_get(o, cls, &mag, -1))        /* anyone's */
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
