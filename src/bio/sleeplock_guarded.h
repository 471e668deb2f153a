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

#include "smpmem/sleeplock.h"

/* Take s for the caller, sleeping (guard released meanwhile, held again on
 * return) while another holder has it.  No other spinlock may be held. */
void smp_sleeplock_take_guarded(struct smp_sleeplock *s, struct smp_spinlock *guard);

/* 0 if the caller holds s, else SMP_SLEEPLOCK_NOT_HELD or
 * SMP_SLEEPLOCK_OTHER_HOLDER (see sleeplock.h for ports that cannot tell
 * who runs). */
int smp_sleeplock_mine_guarded(const struct smp_sleeplock *s);

/* Release s, which the caller holds, and wake its sleepers. */
void smp_sleeplock_give_guarded(struct smp_sleeplock *s);

#endif
