/*
 * Sleep locks: long-term locks (held across device I/O) whose waiters sleep
 * through the port's smp_port_sleep/smp_port_wakeup instead of spinning.
 *
 * A sleep lock is guarded by a small spinlock of its own.  That spinlock is
 * deliberately NOT registered for the lock report: a buffer cache has one
 * sleep lock per buffer (thousands), while the report registry holds 512
 * locks and must keep room for the kmem/bcache locks it exists to show.
 *
 * Ownership: where the port says who is running (smp_port_self, port.h), a
 * sleep lock records its holder and a release by anyone else panics with
 * the lock's name (xv6's holdingsleep); smp_sleeplock_holding answers "by
 * me".  Without that hook only "held at all" is checked.  The CPU that took
 * it is kept for diagnostics (a holder may sleep and resume elsewhere).
 *
 * Thread safety: every call may be made from any CPU, never from an interrupt
 * handler (acquire may sleep).  Never acquire with a spinlock held.
 */
#ifndef SMPMEM_SLEEPLOCK_H
#define SMPMEM_SLEEPLOCK_H

#include <stdint.h>
#include "spinlock.h"

struct smp_sleeplock {
    struct smp_spinlock lk;   /* guards every field below */
    int locked;               /* 1 while held */
    int cpu;                  /* CPU that acquired it (diagnostics); -1 when free */
    uintptr_t holder;         /* smp_port_self() of the holder, 0 if unknown or free */
    unsigned waiters;         /* sleepers in acquire: release wakes only if > 0 */
    const char *name;         /* static string, for panics */
};

/* Initialise s free.  name must outlive the lock. */
void smp_sleeplock_init(struct smp_sleeplock *s, const char *name);

/* Take s, sleeping while another holder has it. */
void smp_sleeplock_acquire(struct smp_sleeplock *s);

/* Release s and wake its sleepers.  Panics if s is not held. */
void smp_sleeplock_release(struct smp_sleeplock *s);

/* Release s if the caller holds it (as smp_sleeplock_holding would say),
 * with one trip through the guard: returns 0.  Otherwise leaves s as it is
 * and returns SMP_SLEEPLOCK_NOT_HELD (free) or SMP_SLEEPLOCK_OTHER_HOLDER,
 * so the caller can panic in its own words (smp_sleeplock_release does). */
#define SMP_SLEEPLOCK_NOT_HELD     1
#define SMP_SLEEPLOCK_OTHER_HOLDER 2
int smp_sleeplock_release_mine(struct smp_sleeplock *s);

/* Nonzero iff s is held (by anyone; see "Ownership" above). */
int smp_sleeplock_locked(struct smp_sleeplock *s);

/* Whether the caller holds s (where the port cannot tell who is running:
 * whether anyone does). */
int smp_sleeplock_holding(struct smp_sleeplock *s);

#if defined(SMPMEM_SHORT_NAMES) && !defined(SMPMEM_NO_SHORT_NAMES)
#define sleeplock_init     smp_sleeplock_init
#define sleeplock_acquire  smp_sleeplock_acquire
#define sleeplock_release  smp_sleeplock_release
#define sleeplock_locked   smp_sleeplock_locked
#endif

#endif
