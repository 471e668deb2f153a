/*
 * Spinlocks with names and xv6-style statistics.
 *
 * acquire pushes interrupts off (port hook) and spins with test-and-test-
 * and-set; every failed test-and-set is counted, so the report shows how
 * contended each lock is in the format of xv6's `statslock`:
 *
 *   --- lock kmem/bcache stats
 *   lock: kmem.cpu0: #test-and-set 0 #acquire() 1234
 *   --- top 5 contended locks:
 *   lock: bcache.bucket3: #test-and-set 17 #acquire() 4242
 *   tot= 17
 *
 * `tot` is the sum of #test-and-set over the locks whose names start with
 * "kmem" or "bcache" (the lab's pass criterion: ~0).  #test-and-set counts
 * as xv6 does: every attempt that found the lock held while spinning.
 * Locks never acquired are not listed.
 */
#ifndef SMPMEM_SPINLOCK_H
#define SMPMEM_SPINLOCK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct smp_spinlock {
    atomic_uint locked;          /* 0 free, 1 held */
    atomic_int cpu;              /* holder's CPU id; -1 when free */
    const char *name;            /* static string, shown in reports */
    /* Statistics: written only by the holder (relaxed load+store, no RMW, so
     * the fast path pays no extra atomic), read by reports at any time. */
    atomic_ulong n_acquire;
    atomic_ulong n_contended;    /* failed test-and-set attempts */
};

/* Initialise lk and register it for reports.  name must outlive the lock. */
void smp_lock_init(struct smp_spinlock *lk, const char *name);

/* Push interrupts off, then spin until lk is ours.  Panics if this CPU
 * already holds lk (self-deadlock). */
void smp_lock_acquire(struct smp_spinlock *lk);

/* Release lk, then pop interrupts.  Panics if this CPU does not hold it. */
void smp_lock_release(struct smp_spinlock *lk);

/* Whether this CPU holds lk (call with interrupts off to be meaningful). */
int smp_lock_holding(struct smp_spinlock *lk);

/* Forget registered locks whose storage lies in [lo, hi) (memory that is
 * being handed back, e.g. by smp_pmm_reset). */
void smp_lock_forget_range(const void *lo, const void *hi);

/* Zero the counters of every registered lock. */
void smp_lock_stats_reset(void);

/* Sum of #test-and-set over registered locks whose name starts with prefix. */
unsigned long smp_lock_contended(const char *prefix);

/* Write the xv6-format report into buf (always NUL-terminated); returns the
 * number of characters it wanted to write (like snprintf).  When the lock
 * lines do not fit, the report keeps as many as fit, says how many it left
 * out, and still ends with the top 5 and the "tot=" line. */
size_t smp_lock_report(char *buf, size_t len);

/* The same for the locks whose names start with prefix (e.g. "bcache"). */
size_t smp_lock_report_filtered(char *buf, size_t len, const char *prefix);

/* Call fn for every registered lock (name, acquisitions, #test-and-set),
 * so a kernel can merge smpmem's locks into its own statistics (xv6's
 * statslock).  fn runs with no smpmem lock held. */
void smp_lock_for_each(void (*fn)(void *ctx, const char *name, unsigned long acquires,
                                  unsigned long contended), void *ctx);

/* The same report, through smp_port_write. */
void smp_lock_print(void);

#endif
