/*
 * The buffer cache: statistics and counting (state: bcache_internal.h).
 *
 * Locks: every walk here takes "bcache" and then every bucket lock in
 * increasing index (smp_bcache_lock_all), the order of bcache.c, so a
 * snapshot is exact; no sleep lock is taken.
 */
#include "bcache_internal.h"
#include "smpmem/bio_debug.h"

void smp_bcache_lock_all(struct bcache *c)
{
    smp_lock_acquire(&c->lock);
    for (unsigned i = 0; i < c->nbucket; i++)
        smp_lock_acquire(&c->buckets[i].lock);
}

void smp_bcache_unlock_all(struct bcache *c)
{
    for (unsigned i = c->nbucket; i-- > 0;)
        smp_lock_release(&c->buckets[i].lock);
    smp_lock_release(&c->lock);
}

int smp_bcache_stats(struct smp_bcache_stats *out)
{
    struct bcache *c = smp_bcache_state;
    if (!c || !out)
        return SMP_EINVAL;
    smp_bcache_lock_all(c);
    out->nbuf = c->nbuf;
    out->nbucket = c->nbucket;
    out->block_size = c->block_size;
    out->busy = 0;
    for (unsigned i = 0; i < c->nbuf; i++)
        out->busy += atomic_load_explicit(&c->bufs[i].refcnt, memory_order_relaxed) != 0;
    out->hits = out->misses = out->evictions = out->races = 0;
    for (unsigned i = 0; i < c->nbucket; i++) {
        struct bucket *bk = &c->buckets[i];
        out->hits += bk->hits + bk->races;
        out->misses += bk->misses;
        out->evictions += bk->evictions;
        out->races += bk->races;
    }
    out->waits = c->waits;
    /* seq_cst is only the default spelling: these are statistics bumped by
     * relaxed fetch_adds (bcache.c), nothing pairs with these loads, and a
     * count one behind breaks nothing.  Relaxed would do. */
    out->dev_reads = atomic_load(&c->dev_reads);
    out->dev_writes = atomic_load(&c->dev_writes);
    out->read_errors = atomic_load(&c->read_errors);
    out->write_errors = atomic_load(&c->write_errors);
    smp_bcache_unlock_all(c);
    return 0;
}

void smp_bcache_stats_reset(void)
{
    struct bcache *c = smp_bcache_state;
    if (!c)
        return;
    smp_bcache_lock_all(c);
    for (unsigned i = 0; i < c->nbucket; i++) {
        struct bucket *bk = &c->buckets[i];
        bk->hits = bk->misses = bk->evictions = bk->races = 0;
    }
    c->waits = 0;
    /* seq_cst by default spelling only; nothing pairs (see smp_bcache_stats). */
    atomic_store(&c->dev_reads, 0);
    atomic_store(&c->dev_writes, 0);
    atomic_store(&c->read_errors, 0);
    atomic_store(&c->write_errors, 0);
    smp_bcache_unlock_all(c);
}

unsigned smp_bcache_count(unsigned dev, uint64_t blockno)
{
    struct bcache *c = smp_bcache_state;
    if (!c)
        return 0;
    unsigned n = 0;
    smp_bcache_lock_all(c);
    for (unsigned i = 0; i < c->nbucket; i++)
        for (struct smp_buf *b = c->buckets[i].head; b; b = b->next)
            n += b->dev == dev && b->blockno == blockno;
    smp_bcache_unlock_all(c);
    return n;
}
