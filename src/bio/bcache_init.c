/*
 * The buffer cache: creation, bucket counts and teardown (state:
 * bcache_internal.h).
 *
 * Locks: none taken here but smp_lock_init's registry; init and reset are
 * not thread-safe (bcache.h), so no other CPU uses the cache meanwhile.
 */
#include "bcache_internal.h"
#include "smpmem/bio_debug.h"
#include "smpmem/pmm.h"
#include "../base/fmt.h"

/* Aligned so that no frequently written variable shares its line: every
 * bread and brelse reads it. */
_Alignas(BCACHE_LINE) struct bcache *smp_bcache_state;

static int is_prime(unsigned n)
{
    if (n < 2)
        return 0;
    for (unsigned d = 2; d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return 1;
}

static void free_cache(struct bcache *c)
{
    smp_kfree(c->clocks);
    if (c->bufs) {
        for (unsigned i = 0; i < c->nbuf; i++)
            smp_kfree(c->bufs[i].data);
        smp_kfree(c->bufs);
    }
    smp_lock_forget_range(c, (char *)c + sizeof *c + c->nbucket * sizeof(struct bucket));
    smp_kfree(c);
}

static void init_bucket(struct bucket *bk, unsigned i)
{
    smp_fmt_name(bk->name, sizeof bk->name, "bcache.bucket", i);
    bk->head = 0;
    bk->waiters = 0;
    bk->hits = bk->misses = bk->evictions = bk->races = 0;
    atomic_init(&bk->oldest, (struct smp_buf *)0);
    smp_lock_init(&bk->lock, bk->name);
}

/* Buffer i, caching nothing.  NODEV never matches a lookup (bread checks
 * that dev is registered, and dev < SMP_BDEV_MAX). */
static void init_buf(struct bcache *c, struct smp_buf *b, unsigned i)
{
    b->dev = SMP_BCACHE_NODEV;
    b->blockno = i;
    /* Spread the free buffers so early misses do not all lock one bucket. */
    atomic_init(&b->bucket, i % c->nbucket);
    atomic_init(&b->refcnt, 0);
    atomic_init(&b->last_use, 0);
    b->valid = 0;
    smp_sleeplock_init(&b->lock, "buffer");
    struct bucket *bk = &c->buckets[i % c->nbucket];
    b->prev = 0;
    b->next = bk->head;
    if (bk->head)
        bk->head->prev = b;
    bk->head = b;
}

int smp_bcache_init_buckets(unsigned nbuf, unsigned block_size, unsigned nbucket)
{
    if (nbuf == 0 || block_size == 0 || nbucket > BCACHE_MAX_BUCKETS || !is_prime(nbucket))
        return SMP_EINVAL;
    if (smp_bcache_state)
        return SMP_EBUSY;
    struct bcache *c = smp_kalloc(sizeof *c + nbucket * sizeof(struct bucket));
    if (!c)
        return SMP_ENOMEM;
    c->nbuf = nbuf;
    c->nbucket = nbucket;
    /* A power of two, so a release finds its CPU's clock with a mask:
     * the largest not above nbucket (bcache_internal.h: struct lru_clock). */
    c->nclock = 1;
    while (c->nclock * 2 <= nbucket)
        c->nclock *= 2;
    c->block_size = block_size;
    c->bufs = 0;
    c->clocks = 0;
    c->waits = 0;
    atomic_init(&c->epoch, 0);
    atomic_init(&c->dev_reads, 0);
    atomic_init(&c->dev_writes, 0);
    atomic_init(&c->read_errors, 0);
    atomic_init(&c->write_errors, 0);
    smp_lock_init(&c->lock, "bcache");
    for (unsigned i = 0; i < nbucket; i++)
        init_bucket(&c->buckets[i], i);
    c->clocks = smp_kalloc(c->nclock * sizeof *c->clocks);
    c->bufs = smp_kalloc((size_t)nbuf * sizeof(struct smp_buf));
    if (!c->bufs || !c->clocks) {
        free_cache(c);
        return SMP_ENOMEM;
    }
    for (unsigned i = 0; i < c->nclock; i++) {
        atomic_init(&c->clocks[i].epoch, 0);
        atomic_init(&c->clocks[i].releases, 0);
    }
    for (unsigned i = 0; i < nbuf; i++)
        c->bufs[i].data = 0;
    for (unsigned i = 0; i < nbuf; i++) {
        c->bufs[i].data = smp_kalloc(block_size);
        if (!c->bufs[i].data) {
            free_cache(c);
            return SMP_ENOMEM;
        }
        init_buf(c, &c->bufs[i], i);
    }
    for (unsigned i = 0; i < nbucket; i++)
        smp_bcache_update_oldest(&c->buckets[i]);
    smp_bcache_state = c;
    return 0;
}

unsigned smp_bcache_default_buckets(unsigned nbuf)
{
    unsigned want = nbuf / 4 > SMP_BCACHE_NBUCKET ? nbuf / 4 : SMP_BCACHE_NBUCKET;
    if (want > SMP_BCACHE_NBUCKET_MAX)
        want = SMP_BCACHE_NBUCKET_MAX;
    while (!is_prime(want))
        want++;
    return want;
}

int smp_bcache_init(unsigned nbuf, unsigned block_size)
{
    return smp_bcache_init_buckets(nbuf, block_size, smp_bcache_default_buckets(nbuf));
}

int smp_bcache_reset(void)
{
    struct bcache *c = smp_bcache_state;
    if (!c)
        return 0;
    /* seq_cst by default spelling only: reset runs while no other CPU uses
     * the cache (bcache.h), so nothing pairs with this load. */
    for (unsigned i = 0; i < c->nbuf; i++)
        if (atomic_load(&c->bufs[i].refcnt))
            return SMP_EBUSY;
    smp_bcache_state = 0;
    free_cache(c);
    return 0;
}
