/*
 * A sleep lock's state machine with the guarding spinlock named by the
 * caller (sleeplock.c).  The public calls (sleeplock.h) guard a sleep lock
 * with its own spinlock s->lk; the buffer cache guards each buffer's with
 * the buffer's bucket lock, which bread and brelse hold anyway (bcache.c).
 * Every function here expects `guard` held, and every access to the sleep
 * lock's fields must be under that same guard.
 */
#ifndef SMPMEM_SLEEPLOCK_GUARDED_H
#define SMPMEM_SLEEPLOCK_GUARDED_H

#include <stdint.h>
#include "smpmem/port.h"
#include "smpmem/sleeplock.h"

/* Who is running, if the port can tell (port.h); 0 otherwise. */
static inline uintptr_t smp_sleeplock_self(void)
{
#ifdef SMP_PORT_HAS_SELF
    return smp_port_self();
#else
    return 0;
#endif
}

/* Out of line (sleeplock.c): sleep, guard released meanwhile, until s is
 * free. */
void smp_sleeplock_wait_guarded(struct smp_sleeplock *s, struct smp_spinlock *guard);

/* Inline: a buffer-cache hit takes and gives a buffer's sleep lock on
 * every bread and brelse, and a call each costs more than the work. */

/* Take s for the caller, sleeping (guard released meanwhile, held again on
 * return) while another holder has it.  No other spinlock may be held. */
static inline void smp_sleeplock_take_guarded(struct smp_sleeplock *s, struct smp_spinlock *guard)
{
    if (s->locked)
        smp_sleeplock_wait_guarded(s, guard);
    s->locked = 1;
    s->cpu = smp_port_cpu_id();
    s->holder = smp_sleeplock_self();
}

/* 0 if the caller holds s, else SMP_SLEEPLOCK_NOT_HELD or
 * SMP_SLEEPLOCK_OTHER_HOLDER (see sleeplock.h for ports that cannot tell
 * who runs). */
static inline int smp_sleeplock_mine_guarded(const struct smp_sleeplock *s)
{
    if (!s->locked)
        return SMP_SLEEPLOCK_NOT_HELD;
    return s->holder != smp_sleeplock_self() ? SMP_SLEEPLOCK_OTHER_HOLDER : 0;
}

/* Release s, which the caller holds, and wake its sleepers.  Waking costs
 * a system call on hosted ports: skipped when no one sleeps.  waiters is
 * read under the guard, which a sleeper holds from its check of `locked`
 * until smp_port_sleep releases it. */
static inline void smp_sleeplock_give_guarded(struct smp_sleeplock *s)
{
    s->locked = 0;
    s->cpu = -1;
    s->holder = 0;
    if (s->waiters)
        smp_port_wakeup(s);
}

#endif
