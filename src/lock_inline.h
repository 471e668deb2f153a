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

#include <smpmem/spinlock.h>
#include "fmt.h"

/* Out of line in spinlock.c: spin until lk is ours, counting failed
 * test-and-sets. */
void smp_lock_spin(struct smp_spinlock *lk);

static inline void smp_lock_count(atomic_ulong *c, unsigned long by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

/* Acquire lk on CPU cpu; interrupts must already be pushed off. */
static inline void smp_lock_acquire_on(struct smp_spinlock *lk, int cpu)
{
    if (atomic_load_explicit(&lk->cpu, memory_order_relaxed) == cpu)
        smp_panic(lk->name, "acquire: lock already held by this CPU");
    if (atomic_exchange_explicit(&lk->locked, 1, memory_order_acquire))
        smp_lock_spin(lk);
    atomic_store_explicit(&lk->cpu, cpu, memory_order_relaxed);
    smp_lock_count(&lk->n_acquire, 1);
}

/* Like smp_lock_acquire_on, without the self-deadlock check: for per-CPU
 * locks on their owner's fast path, where interrupts are off and no other
 * smpmem lock is held, so re-entry is impossible by construction. */
static inline void smp_lock_take_on(struct smp_spinlock *lk, int cpu)
{
    if (atomic_exchange_explicit(&lk->locked, 1, memory_order_acquire))
        smp_lock_spin(lk);
    atomic_store_explicit(&lk->cpu, cpu, memory_order_relaxed);
    smp_lock_count(&lk->n_acquire, 1);
}

/* One test-and-set: take lk for CPU cpu if it is free (counting the
 * acquisition) and return 1; return 0 and change nothing if it is held.
 * Fast paths call this and hand the contended case to an out-of-line
 * function that spins with smp_lock_take_on, so they stay leaves. */
static inline int smp_lock_try_on(struct smp_spinlock *lk, int cpu)
{
    if (atomic_exchange_explicit(&lk->locked, 1, memory_order_acquire))
        return 0;
    atomic_store_explicit(&lk->cpu, cpu, memory_order_relaxed);
    smp_lock_count(&lk->n_acquire, 1);
    return 1;
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
    if (atomic_exchange_explicit(&lk->locked, 1, memory_order_acquire))
        return 0;
    smp_lock_count(&lk->n_acquire, 1);
    return 1;
}

static inline void smp_lock_take_local(struct smp_spinlock *lk)
{
    if (atomic_exchange_explicit(&lk->locked, 1, memory_order_acquire))
        smp_lock_spin(lk);
    smp_lock_count(&lk->n_acquire, 1);
}

static inline void smp_lock_release_local(struct smp_spinlock *lk)
{
    atomic_store_explicit(&lk->locked, 0, memory_order_release);
}

/* Release lk held by CPU cpu; interrupts stay pushed off. */
static inline void smp_lock_release_on(struct smp_spinlock *lk, int cpu)
{
    if (atomic_load_explicit(&lk->cpu, memory_order_relaxed) != cpu)
        smp_panic(lk->name, "release: lock not held by this CPU");
    atomic_store_explicit(&lk->cpu, -1, memory_order_relaxed);
    atomic_store_explicit(&lk->locked, 0, memory_order_release);
}

#endif
