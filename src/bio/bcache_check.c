/*
 * The buffer cache's invariant check (state: bcache_internal.h).
 *
 * Locks: takes "bcache" and then every bucket lock in increasing index
 * (smp_bcache_lock_all), the order of bcache.c, so it is exact while other
 * CPUs use the cache; no sleep lock is taken.
 */
#include "bcache_internal.h"
#include "../base/fmt.h"

static int violation(const struct smp_buf *b, unsigned bucket, const char *reason)
{
    char line[160];
    struct smp_fmt f;
    smp_fmt_init_lines(&f, line, sizeof line);
    smp_fmt_str(&f, "bcache_check: bucket ");
    smp_fmt_dec(&f, bucket);
    smp_fmt_str(&f, " buffer ");
    smp_fmt_hex(&f, (uintptr_t)b);
    smp_fmt_str(&f, ": ");
    smp_fmt_str(&f, reason);
    smp_fmt_str(&f, "\n");
    return -1;
}

static unsigned refs(const struct smp_buf *b)
{
    return atomic_load_explicit(&b->refcnt, memory_order_relaxed);
}

static uint64_t use_of(const struct smp_buf *b)
{
    return atomic_load_explicit(&b->last_use, memory_order_relaxed);
}

/* The checks of one buffer b found on bucket i's list after prev. */
static int check_buf(struct bcache *c, struct smp_buf *b, struct smp_buf *prev, unsigned i,
                     uint64_t epoch)
{
    uintptr_t off = (uintptr_t)b - (uintptr_t)c->bufs;
    if ((uintptr_t)b < (uintptr_t)c->bufs || off % sizeof *b || off / sizeof *b >= c->nbuf)
        return violation(b, i, "list holds something that is not a buffer");
    if (b->prev != prev)
        return violation(b, i, "prev link does not match the list");
    if (atomic_load_explicit(&b->bucket, memory_order_relaxed) != i)
        return violation(b, i, "bucket field names another bucket");
    if (b->dev != SMP_BCACHE_NODEV && bcache_hash(c, b->dev, b->blockno) != i)
        return violation(b, i, "identity hashes to another bucket");
    if (b->dev == SMP_BCACHE_NODEV && refs(b))
        return violation(b, i, "a buffer caching nothing is referenced");
    /* Holders and sleepers hold references (bcache.c: a buffer's sleep
     * lock), so a free buffer can have neither. */
    if (!refs(b) && (b->lock.locked || b->lock.waiters))
        return violation(b, i, "free buffer is sleep-locked or has sleepers");
    /* A stamp's epoch part is a CPU's view (<= epoch), plus at most a
     * carry from the last_use + 1 rule (bcache.c). */
    if ((use_of(b) >> 24) > epoch + 1)
        return violation(b, i, "last_use stamped with an epoch not reached yet");
    /* Bounded by nbuf steps: a cycle further down is reported by the
     * caller's walk, not looped on here. */
    unsigned steps = 0;
    if (b->dev != SMP_BCACHE_NODEV)
        for (struct smp_buf *o = b->next; o && steps++ < c->nbuf; o = o->next)
            if (o->dev == b->dev && o->blockno == b->blockno)
                return violation(o, i, "block cached twice");
    return 0;
}

/* The hint: the free buffer of the list with the smallest last_use (any
 * one of them on a tie), or NULL iff none is free. */
static int check_hint(struct bucket *bk, unsigned i)
{
    struct smp_buf *hint = atomic_load_explicit(&bk->oldest, memory_order_relaxed);
    struct smp_buf *min = 0;
    int on_list = 0;
    for (struct smp_buf *b = bk->head; b; b = b->next) {
        on_list |= b == hint;
        if (refs(b) == 0 && (!min || use_of(b) < use_of(min)))
            min = b;
    }
    if (!min != !hint)
        return violation(hint, i, min ? "oldest-free hint missing" : "oldest-free hint set, none free");
    if (hint && (!on_list || refs(hint) != 0 || use_of(hint) != use_of(min)))
        return violation(hint, i, "oldest-free hint is not the least recently released free buffer");
    return 0;
}

int smp_bcache_check(void)
{
    struct bcache *c = smp_bcache_state;
    if (!c)
        return 0;
    int bad = 0;
    unsigned seen = 0;
    smp_bcache_lock_all(c);
    uint64_t epoch = atomic_load_explicit(&c->epoch, memory_order_relaxed);
    for (unsigned i = 0; i < c->nclock && !bad; i++)
        if (atomic_load_explicit(&c->clocks[i].epoch, memory_order_relaxed) > epoch)
            bad = violation(0, 0, "a CPU's LRU clock is ahead of the epoch");
    for (unsigned i = 0; i < c->nbucket && !bad; i++) {
        struct bucket *bk = &c->buckets[i];
        /* A waiting miss counts itself in every bucket while it holds
         * "bcache" (held here), so all counts agree. */
        if (bk->waiters != c->buckets[0].waiters)
            bad = violation(0, i, "waiters count differs from bucket 0's");
        struct smp_buf *prev = 0;
        for (struct smp_buf *b = bad ? 0 : bk->head; b; prev = b, b = b->next) {
            if (++seen > c->nbuf)
                bad = violation(b, i, "lists hold more entries than buffers (cycle?)");
            else
                bad = check_buf(c, b, prev, i, epoch);
            if (bad)
                break;          /* before following the link of what failed */
        }
        if (!bad)
            bad = check_hint(bk, i);
    }
    if (!bad && seen != c->nbuf)
        bad = violation(0, 0, "buffers missing from the bucket lists");
    smp_bcache_unlock_all(c);
    return bad;
}
