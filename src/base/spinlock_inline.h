/*
 * Inline spinlock operations for the hot paths (per-CPU caches).
 *
 * Same lock, same statistics and same self-deadlock/ownership checks as
 * smp_lock_acquire/release, but the caller has already pushed interrupts
 * off and looked up its CPU id once for the whole operation, so a kalloc
 * makes one irq push, one cpu-id call and no lock function calls.
 */
#ifndef SMPMEM_LOCK_INLINE_H
#define SMPMEM_LOCK_INLINE_H

#include "smpmem/port.h"
#include "smpmem/spinlock.h"
#include "fmt.h"

/* Out of line in spinlock.c: spin until lk is ours, counting failed
 * test-and-sets. */
void smp_lock_spin(struct smp_spinlock *lk);

/* Add to a statistics counter that only the holder of some lock writes:
 * a relaxed load + store compiles to plain moves (no locked instruction),
 * and lock-free readers still see a whole value. */
static inline void smp_counter_add(atomic_ulong *c, unsigned long by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

/* Acquire lk on CPU cpu; interrupts must already be pushed off. */
static inline void smp_lock_acquire_on(struct smp_spinlock *lk, int cpu)
{
    if (atomic_load_explicit(&lk->cpu, memory_order_relaxed) == cpu)
        smp_panic(lk->name, "acquire: lock already held by this CPU");
    /* acquire: pairs with the release store of `locked` by the previous
     * holder (smp_lock_release_on / _release_local), so every write made in
     * its critical section is visible in ours.  Relaxed would let our reads
     * of the guarded data run before we own the lock: stale free lists,
     * lost updates on weakly ordered CPUs (and a race under TSan). */
    if (atomic_exchange_explicit(&lk->locked, 1, memory_order_acquire))
        smp_lock_spin(lk);
    atomic_store_explicit(&lk->cpu, cpu, memory_order_relaxed);
    smp_counter_add(&lk->n_acquire, 1);
}

/*
 * "Local" variants for a per-CPU lock taken by its own CPU on a fast path
 * (and the slow paths that path hands over to).  They skip the owner field:
 * the only code that takes a per-CPU lock this way is the owning CPU's own
 * fast path with interrupts off, which releases it before returning, so
 * the ownership checks could not fail.  Other takers of the same lock
 * (drain, steal, pmm_check) use smp_lock_acquire/release, which record and
 * verify the owner as usual; acquisitions are counted either way.
 */
static inline int smp_lock_try_local(struct smp_spinlock *lk)
{
    /* acquire: pairs with the previous holder's release, as in
     * smp_lock_acquire_on. */
    if (atomic_exchange_explicit(&lk->locked, 1, memory_order_acquire))
        return 0;
    smp_counter_add(&lk->n_acquire, 1);
    return 1;
}

static inline void smp_lock_take_local(struct smp_spinlock *lk)
{
    /* acquire: pairs with the previous holder's release, as in
     * smp_lock_acquire_on. */
    if (atomic_exchange_explicit(&lk->locked, 1, memory_order_acquire))
        smp_lock_spin(lk);
    smp_counter_add(&lk->n_acquire, 1);
}

static inline void smp_lock_release_local(struct smp_spinlock *lk)
{
    /* release: pairs with the next holder's acquire exchange (see
     * smp_lock_release_on). */
    atomic_store_explicit(&lk->locked, 0, memory_order_release);
}

/* Release lk held by CPU cpu; interrupts stay pushed off. */
static inline void smp_lock_release_on(struct smp_spinlock *lk, int cpu)
{
    if (atomic_load_explicit(&lk->cpu, memory_order_relaxed) != cpu)
        smp_panic(lk->name, "release: lock not held by this CPU");
    atomic_store_explicit(&lk->cpu, -1, memory_order_relaxed);
    /* release: pairs with the acquire exchange of the next holder
     * (smp_lock_acquire_on, smp_lock_spin, _try_local, _take_local): every
     * write of this critical section is visible before the lock reads
     * free.  Relaxed would let those writes drift past the unlock, so the
     * next holder could see the lock free but the data half-updated. */
    atomic_store_explicit(&lk->locked, 0, memory_order_release);
}

/* smp_lock_acquire and smp_lock_release themselves, inline: for a hot
 * path that takes its one lock at a time (a buffer-cache hit takes and
 * drops a bucket lock twice), where the calls cost as much as the lock. */
static inline void smp_lock_acquire_inline(struct smp_spinlock *lk)
{
    smp_port_irq_push();
    smp_lock_acquire_on(lk, smp_port_cpu_id());
}

static inline void smp_lock_release_inline(struct smp_spinlock *lk)
{
    smp_lock_release_on(lk, smp_port_cpu_id());
    smp_port_irq_pop();
}

#endif
