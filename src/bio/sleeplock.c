/*
 * Sleep locks (see include/smpmem/sleeplock.h), after xv6's sleeplock.c.
 *
 * Locks: a guard spinlock protects locked, cpu, holder and waiters: s->lk
 * for the public calls, or the one a caller of the _guarded steps names
 * (sleeplock_guarded.h; the buffer cache passes a bucket lock).  It is held
 * only for a few instructions and released (atomically, by smp_port_sleep)
 * while a waiter sleeps; no lock is ever taken under s->lk.
 */
#include "sleeplock_guarded.h"
#include "smpmem/port.h"
#include "../base/fmt.h"

void smp_sleeplock_init(struct smp_sleeplock *s, const char *name)
{
    /* The guard spinlock is initialised by hand, not with smp_lock_init:
     * it must not take a slot in the report registry (see the header). */
    atomic_init(&s->lk.locked, 0);
    atomic_init(&s->lk.cpu, -1);
    s->lk.name = name;
    atomic_init(&s->lk.n_acquire, 0);
    atomic_init(&s->lk.n_contended, 0);
    s->locked = 0;
    s->cpu = -1;
    s->holder = 0;
    s->waiters = 0;
    s->name = name;
}

void smp_sleeplock_wait_guarded(struct smp_sleeplock *s, struct smp_spinlock *guard)
{
    while (s->locked) {
        s->waiters++;
        smp_port_sleep(s, guard);
        s->waiters--;
    }
}

void smp_sleeplock_acquire(struct smp_sleeplock *s)
{
    smp_lock_acquire(&s->lk);
    smp_sleeplock_take_guarded(s, &s->lk);
    smp_lock_release(&s->lk);
}

void smp_sleeplock_release(struct smp_sleeplock *s)
{
    int r = smp_sleeplock_release_mine(s);
    if (r == SMP_SLEEPLOCK_NOT_HELD)
        smp_panic(s->name, "sleep lock released while not held");
    if (r)
        smp_panic(s->name, "sleep lock released by a thread that does not hold it");
}

int smp_sleeplock_release_mine(struct smp_sleeplock *s)
{
    smp_lock_acquire(&s->lk);
    int r = smp_sleeplock_mine_guarded(s);
    if (!r)
        smp_sleeplock_give_guarded(s);
    smp_lock_release(&s->lk);
    return r;
}

int smp_sleeplock_locked(struct smp_sleeplock *s)
{
    smp_lock_acquire(&s->lk);
    int r = s->locked;
    smp_lock_release(&s->lk);
    return r;
}

int smp_sleeplock_holding(struct smp_sleeplock *s)
{
    smp_lock_acquire(&s->lk);
    int r = s->locked && s->holder == smp_sleeplock_self();
    smp_lock_release(&s->lk);
    return r;
}
