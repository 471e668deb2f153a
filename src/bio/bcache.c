/*
 * The buffer cache (interface and rules for callers: include/smpmem/bcache.h).
 *
 * Lock order (a CPU takes locks only in this order, never the reverse):
 *   1. "bcache"            the wait lock: a miss that finds every buffer
 *                          busy sleeps under it; also taken first by the
 *                          whole-cache walks (stats, count, check);
 *   2. "bcache.bucketN"    bucket locks; a CPU holds at most two on the
 *                          lookup paths, and then takes the lower index
 *                          first (the walks take all, in increasing index);
 *   3. a buffer's sleep-lock guard (sleeplock.c), never held together with
 *      1 or 2: sleep locks are acquired after every spinlock is dropped.
 * The hit path takes only its bucket lock.  A miss drops its bucket lock,
 * looks WITHOUT a lock for the least recently released free buffer (the
 * victim: the minimum over the buckets' oldest-free hints, one read per
 * bucket; every buffer only if no hint offers one), then locks the
 * victim's bucket and the target bucket in increasing index and
 * re-validates: the victim must still be in the bucket
 * it was seen in, still be free, and still carry the last_use it was seen
 * with (each release stamps a new, larger value, so a buffer that was
 * taken and released again since the scan, even one that moved away and
 * back, is refused); otherwise the miss scans again.  It also
 * re-checks the target bucket for the block: another CPU may have inserted
 * it between the drop and now.  Every insertion of a block happens under
 * its target bucket lock after such a re-check, so a block is never cached
 * twice; and since no lock is held while scanning, misses on different
 * CPUs run in parallel (two that pick the same victim: one wins the
 * re-validation, the other rescans).
 *
 * What each lock protects:
 *   bucket lock   the bucket's list and, for buffers on it: dev, blockno,
 *                 next, prev, and writes of bucket, refcnt and last_use; the
 *                 bucket's statistics.
 *   "bcache"      sleeping for a free buffer (chan = &waiters) and the
 *                 waits counter.
 *   sleep lock    a held buffer's valid flag and data.
 * bucket, refcnt and last_use are atomics so the scan may read them with no
 * lock; they are trusted only after the re-validation under bucket locks.
 *
 * Waiting for a free buffer (no lost wakeup): the waiter increments
 * `waiters` (seq_cst) under "bcache", re-scans, and sleeps releasing
 * "bcache" atomically.  A releaser stores refcnt = 0 (seq_cst), then reads
 * `waiters`; if nonzero it wakes under "bcache".  In the single total order
 * either the releaser sees the waiter, or the waiter's re-scan sees the free
 * buffer.
 *
 * LRU by miss epochs: `tick` counts misses (only the miss path writes it);
 * a release to refcnt 0 stamps last_use = max(last_use + 1, tick << 24),
 * and a miss reuses the free buffer with the smallest last_use.  So buffers
 * released in an earlier epoch are evicted first, within an epoch the order
 * is arbitrary (approximate LRU), every release still makes last_use grow
 * (the re-validation above relies on that), and the hit path writes no
 * cache line shared by all CPUs: an exact global tick bumped on every
 * release would bounce between CPUs on every hit.
 */
#include "smpmem/bcache.h"
#include "smpmem/bdev.h"
#include "smpmem/bio_debug.h"
#include "smpmem/pmm.h"
#include "smpmem/port.h"
#include "../base/fmt.h"

#define CACHELINE 64
#define MAX_BUCKETS 4093

struct bucket {
    _Alignas(CACHELINE) struct smp_spinlock lock;
    struct smp_buf *head;          /* most recently inserted first */
    /* Statistics of lookups for blocks hashing here (under lock). */
    unsigned long hits, misses, evictions, races;
    char name[24];                 /* "bcache.bucketN": outlives the lock */
};

struct bcache {
    _Alignas(CACHELINE) struct smp_spinlock lock;   /* "bcache": waiting */
    unsigned nbuf, nbucket, block_size;
    struct smp_buf *bufs;          /* nbuf buffers, one kalloc block */
    /* oldest[i]: the free buffer on bucket i's list with the smallest
     * last_use, or NULL if none is free.  Written under bucket i's lock
     * and exact whenever that lock is free (every change of a refcnt to or
     * from 0, and every move, happens under it and updates the hint); read
     * with no lock by the victim scan.  A dense array of its own, not a
     * field of the bucket: the scan reads every hint, and a bucket's lock
     * line is written on every hit. */
    _Atomic(struct smp_buf *) *oldest;
    atomic_uint waiters;           /* misses sleeping for a free buffer */
    unsigned long waits;           /* under lock */
    _Alignas(CACHELINE) atomic_uint_least64_t tick; /* LRU epoch: misses so far */
    _Alignas(CACHELINE) atomic_ulong dev_reads, dev_writes, read_errors, write_errors;
    struct bucket buckets[];       /* nbucket of them */
};

static struct bcache *cache;

/* ---- helpers ----------------------------------------------------------- */

static int is_prime(unsigned n)
{
    if (n < 2)
        return 0;
    for (unsigned d = 2; d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return 1;
}

static unsigned hash_of(const struct bcache *c, unsigned dev, uint64_t blockno)
{
    /* Consecutive blocks land in consecutive buckets (a prime count spreads
     * strided patterns too); devices are offset from each other. */
    uint64_t key = blockno + (uint64_t)dev * 0x9e3779b1u;
    return (unsigned)(key % c->nbucket);
}

static struct bcache *need_cache(const char *who)
{
    struct bcache *c = cache;
    if (!c)
        smp_panic(who, "buffer cache not initialised");
    return c;
}

/* Panic unless b is one of the cache's buffers. */
static struct bcache *check_buf(struct smp_buf *b, const char *who)
{
    struct bcache *c = need_cache(who);
    uintptr_t lo = (uintptr_t)c->bufs, p = (uintptr_t)b;
    if (p < lo || p >= lo + (uintptr_t)c->nbuf * sizeof *b || (p - lo) % sizeof *b)
        smp_panic_at(who, p, "not a buffer of the buffer cache");
    return c;
}

static void list_remove(struct bucket *bk, struct smp_buf *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        bk->head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    b->next = b->prev = 0;
}

static void list_push(struct bucket *bk, struct smp_buf *b)
{
    b->prev = 0;
    b->next = bk->head;
    if (bk->head)
        bk->head->prev = b;
    bk->head = b;
}

static struct smp_buf *lookup(struct bucket *bk, unsigned dev, uint64_t blockno)
{
    for (struct smp_buf *b = bk->head; b; b = b->next)
        if (b->dev == dev && b->blockno == blockno)
            return b;
    return 0;
}

/* Lock buckets i and j (possibly equal) in increasing index. */
static void lock_pair(struct bcache *c, unsigned i, unsigned j)
{
    unsigned lo = i < j ? i : j, hi = i < j ? j : i;
    smp_lock_acquire(&c->buckets[lo].lock);
    if (hi != lo)
        smp_lock_acquire(&c->buckets[hi].lock);
}

static void unlock_pair(struct bcache *c, unsigned i, unsigned j)
{
    smp_lock_release(&c->buckets[i].lock);
    if (i != j)
        smp_lock_release(&c->buckets[j].lock);
}

static _Atomic(struct smp_buf *) *oldest_of(struct bcache *c, struct bucket *bk)
{
    return &c->oldest[bk - c->buckets];
}

/* Recompute bk's oldest-free hint from its list; bk->lock held. */
static void update_oldest(struct bcache *c, struct bucket *bk)
{
    struct smp_buf *best = 0;
    uint64_t best_use = 0;
    for (struct smp_buf *b = bk->head; b; b = b->next) {
        if (atomic_load_explicit(&b->refcnt, memory_order_relaxed) != 0)
            continue;
        uint64_t use = atomic_load_explicit(&b->last_use, memory_order_relaxed);
        if (!best || use < best_use) {
            best = b;
            best_use = use;
        }
    }
    atomic_store_explicit(oldest_of(c, bk), best, memory_order_relaxed);
}

/* Take a reference to b, found on bk's list; bk->lock held. */
static void take_ref(struct bcache *c, struct bucket *bk, struct smp_buf *b)
{
    if (atomic_fetch_add(&b->refcnt, 1) == 0 &&
        atomic_load_explicit(oldest_of(c, bk), memory_order_relaxed) == b)
        update_oldest(c, bk);
}

/* The free buffer released longest ago, or NULL if all are in use.  Reads
 * refcnt/last_use with no lock: the answer is a candidate to re-validate.
 * Looks at every buffer: used to decide whether to sleep, and when the
 * bucket hints (pick_victim) offer nothing. */
static struct smp_buf *scan_all(struct bcache *c, uint64_t *seen_use)
{
    struct smp_buf *best = 0;
    uint64_t best_use = 0;
    for (unsigned i = 0; i < c->nbuf; i++) {
        struct smp_buf *b = &c->bufs[i];
        if (atomic_load(&b->refcnt) != 0)
            continue;
        uint64_t use = atomic_load_explicit(&b->last_use, memory_order_relaxed);
        if (!best || use < best_use) {
            best = b;
            best_use = use;
        }
    }
    *seen_use = best_use;
    return best;
}

/* The same answer from the buckets' hints: one read per bucket instead of
 * one per buffer.  Each hint is exact under its bucket lock, so the minimum
 * over them is the least recently released free buffer, up to races with
 * concurrent hits and releases, which the miss path's re-validation
 * catches. */
static struct smp_buf *pick_victim(struct bcache *c, uint64_t *seen_use)
{
    struct smp_buf *best = 0;
    uint64_t best_use = 0;
    for (unsigned i = 0; i < c->nbucket; i++) {
        struct smp_buf *b = atomic_load_explicit(&c->oldest[i], memory_order_relaxed);
        if (!b || atomic_load(&b->refcnt) != 0)
            continue;
        uint64_t use = atomic_load_explicit(&b->last_use, memory_order_relaxed);
        if (!best || use < best_use) {
            best = b;
            best_use = use;
        }
    }
    if (!best)
        return scan_all(c, seen_use);
    *seen_use = best_use;
    return best;
}

/* Drop one reference (brelse, bunpin, failed bread).  The caller no longer
 * holds b's sleep lock. */
static void unref(struct bcache *c, struct smp_buf *b, const char *who)
{
    struct bucket *bk = &c->buckets[atomic_load_explicit(&b->bucket, memory_order_relaxed)];
    smp_lock_acquire(&bk->lock);
    unsigned r = atomic_load_explicit(&b->refcnt, memory_order_relaxed);
    if (r == 0) {
        smp_lock_release(&bk->lock);
        smp_panic_at(who, (uintptr_t)b, "buffer has no reference to drop");
    }
    if (r == 1) {
        uint64_t prev = atomic_load_explicit(&b->last_use, memory_order_relaxed);
        uint64_t now = (uint64_t)atomic_load_explicit(&c->tick, memory_order_relaxed) << 24;
        uint64_t use = now > prev ? now : prev + 1;
        atomic_store_explicit(&b->last_use, use, memory_order_relaxed);
        struct smp_buf *old = atomic_load_explicit(oldest_of(c, bk), memory_order_relaxed);
        if (!old || use < atomic_load_explicit(&old->last_use, memory_order_relaxed))
            atomic_store_explicit(oldest_of(c, bk), b, memory_order_relaxed);
    }
    atomic_store(&b->refcnt, r - 1);            /* seq_cst: see the header */
    smp_lock_release(&bk->lock);
    if (r == 1 && atomic_load(&c->waiters)) {
        smp_lock_acquire(&c->lock);
        smp_port_wakeup(&c->waiters);
        smp_lock_release(&c->lock);
    }
}

/* ---- the lookup: a referenced buffer for (dev, blockno), sleep-locked --- */

/* Sleep until some buffer may be free.  Takes "bcache" with no bucket lock
 * held. */
static void wait_for_free(struct bcache *c)
{
    smp_lock_acquire(&c->lock);
    uint64_t use;
    atomic_fetch_add(&c->waiters, 1);
    if (!scan_all(c, &use)) {
        c->waits++;
        smp_port_sleep(&c->waiters, &c->lock);
    }
    atomic_fetch_sub(&c->waiters, 1);
    smp_lock_release(&c->lock);
}

static struct smp_buf *bget(struct bcache *c, unsigned dev, uint64_t blockno)
{
    unsigned h = hash_of(c, dev, blockno);
    struct bucket *bk = &c->buckets[h];
    struct smp_buf *b;

    /* Hit path: this bucket's lock only. */
    smp_lock_acquire(&bk->lock);
    b = lookup(bk, dev, blockno);
    if (b) {
        take_ref(c, bk, b);
        bk->hits++;
        smp_lock_release(&bk->lock);
        smp_sleeplock_acquire(&b->lock);
        return b;
    }
    smp_lock_release(&bk->lock);

    /* Miss path: scan unlocked, then validate under both bucket locks. */
    for (;;) {
        uint64_t seen_use;
        struct smp_buf *v = pick_victim(c, &seen_use);
        if (!v) {
            wait_for_free(c);
            /* Buffers were released, or the block was inserted meanwhile. */
            smp_lock_acquire(&bk->lock);
            b = lookup(bk, dev, blockno);
            if (b) {
                take_ref(c, bk, b);
                bk->races++;
                smp_lock_release(&bk->lock);
                break;
            }
            smp_lock_release(&bk->lock);
            continue;
        }
        unsigned vb = atomic_load_explicit(&v->bucket, memory_order_relaxed);
        lock_pair(c, vb, h);
        if (atomic_load_explicit(&v->bucket, memory_order_relaxed) != vb ||
            atomic_load(&v->refcnt) != 0 ||
            atomic_load_explicit(&v->last_use, memory_order_relaxed) != seen_use) {
            /* Since the scan, another miss moved it, a hit took it, or it
             * was used and released again (possibly after moving away and
             * back): it is no longer the least recently used. */
            unlock_pair(c, vb, h);
            continue;
        }
        b = lookup(bk, dev, blockno);
        if (b) {
            /* Another CPU missed the same block and inserted it first. */
            take_ref(c, bk, b);
            bk->races++;
            unlock_pair(c, vb, h);
            break;
        }
        bk->misses++;
        atomic_fetch_add_explicit(&c->tick, 1, memory_order_relaxed);   /* a new LRU epoch */
        if (v->dev != SMP_BCACHE_NODEV)
            bk->evictions++;
        list_remove(&c->buckets[vb], v);
        v->dev = dev;
        v->blockno = blockno;
        v->valid = 0;   /* free buffer: no sleep-lock holder to race */
        atomic_store(&v->refcnt, 1);
        atomic_store_explicit(&v->bucket, h, memory_order_relaxed);
        list_push(bk, v);
        if (atomic_load_explicit(&c->oldest[vb], memory_order_relaxed) == v)
            update_oldest(c, &c->buckets[vb]);    /* v was vb's oldest free buffer */
        unlock_pair(c, vb, h);
        b = v;
        break;
    }
    smp_sleeplock_acquire(&b->lock);
    return b;
}

/* ---- public API -------------------------------------------------------- */

struct smp_buf *smp_bread_err(unsigned dev, uint64_t blockno, int *err)
{
    struct bcache *c = need_cache("bread");
    int r = 0;
    if (!smp_bdev_present(dev))
        r = SMP_ENODEV;
    else if (blockno >= smp_bdev_nblocks(dev) || smp_bdev_block_size(dev) != c->block_size)
        r = SMP_EINVAL;
    if (r) {
        if (err)
            *err = r;
        return 0;
    }
    struct smp_buf *b = bget(c, dev, blockno);
    if (!b->valid) {
        atomic_fetch_add_explicit(&c->dev_reads, 1, memory_order_relaxed);
        r = smp_bdev_read(dev, blockno, b->data);
        if (r) {
            /* Leave the buffer in place, invalid: the next bread retries. */
            atomic_fetch_add_explicit(&c->read_errors, 1, memory_order_relaxed);
            smp_sleeplock_release(&b->lock);
            unref(c, b, "bread");
            if (err)
                *err = r;
            return 0;
        }
        b->valid = 1;
    }
    if (err)
        *err = 0;
    return b;
}

struct smp_buf *smp_bread(unsigned dev, uint64_t blockno)
{
    return smp_bread_err(dev, blockno, 0);
}

int smp_bwrite(struct smp_buf *b)
{
    struct bcache *c = check_buf(b, "bwrite");
    if (!smp_sleeplock_locked(&b->lock))
        smp_panic_at("bwrite", (uintptr_t)b, "buffer not locked (not from bread, or released)");
    atomic_fetch_add_explicit(&c->dev_writes, 1, memory_order_relaxed);
    int r = smp_bdev_write(b->dev, b->blockno, b->data);
    if (r) {
        atomic_fetch_add_explicit(&c->write_errors, 1, memory_order_relaxed);
        return r;
    }
    b->valid = 1;
    return 0;
}

void smp_brelse(struct smp_buf *b)
{
    struct bcache *c = check_buf(b, "brelse");
    if (!smp_sleeplock_locked(&b->lock))
        smp_panic_at("brelse", (uintptr_t)b,
                     "buffer not locked: released twice, or not from bread");
    smp_sleeplock_release(&b->lock);
    unref(c, b, "brelse");
}

void smp_bpin(struct smp_buf *b)
{
    struct bcache *c = check_buf(b, "bpin");
    struct bucket *bk = &c->buckets[atomic_load_explicit(&b->bucket, memory_order_relaxed)];
    smp_lock_acquire(&bk->lock);
    if (atomic_load_explicit(&b->refcnt, memory_order_relaxed) == 0) {
        smp_lock_release(&bk->lock);
        smp_panic_at("bpin", (uintptr_t)b, "buffer not held: pin it while holding it");
    }
    atomic_fetch_add(&b->refcnt, 1);
    smp_lock_release(&bk->lock);
}

void smp_bunpin(struct smp_buf *b)
{
    struct bcache *c = check_buf(b, "bunpin");
    unref(c, b, "bunpin");
}

/* ---- setup and teardown ------------------------------------------------ */

static void free_cache(struct bcache *c)
{
    smp_kfree((void *)c->oldest);
    if (c->bufs) {
        for (unsigned i = 0; i < c->nbuf; i++)
            smp_kfree(c->bufs[i].data);
        smp_kfree(c->bufs);
    }
    smp_lock_forget_range(c, (char *)c + sizeof *c + c->nbucket * sizeof(struct bucket));
    smp_kfree(c);
}

int smp_bcache_init_buckets(unsigned nbuf, unsigned block_size, unsigned nbucket)
{
    if (nbuf == 0 || block_size == 0 || nbucket > MAX_BUCKETS || !is_prime(nbucket))
        return SMP_EINVAL;
    if (cache)
        return SMP_EBUSY;
    struct bcache *c = smp_kalloc(sizeof *c + nbucket * sizeof(struct bucket));
    if (!c)
        return SMP_ENOMEM;
    c->nbuf = nbuf;
    c->nbucket = nbucket;
    c->block_size = block_size;
    c->bufs = 0;
    c->oldest = 0;
    atomic_init(&c->waiters, 0);
    c->waits = 0;
    atomic_init(&c->tick, 0);
    atomic_init(&c->dev_reads, 0);
    atomic_init(&c->dev_writes, 0);
    atomic_init(&c->read_errors, 0);
    atomic_init(&c->write_errors, 0);
    smp_lock_init(&c->lock, "bcache");
    for (unsigned i = 0; i < nbucket; i++) {
        struct bucket *bk = &c->buckets[i];
        smp_fmt_name(bk->name, sizeof bk->name, "bcache.bucket", i);
        bk->head = 0;
        bk->hits = bk->misses = bk->evictions = bk->races = 0;
        smp_lock_init(&bk->lock, bk->name);
    }
    c->oldest = smp_kalloc(nbucket * sizeof *c->oldest);
    c->bufs = smp_kalloc((size_t)nbuf * sizeof(struct smp_buf));
    if (!c->bufs || !c->oldest) {
        free_cache(c);
        return SMP_ENOMEM;
    }
    for (unsigned i = 0; i < nbucket; i++)
        atomic_init(&c->oldest[i], (struct smp_buf *)0);
    for (unsigned i = 0; i < nbuf; i++)
        c->bufs[i].data = 0;
    for (unsigned i = 0; i < nbuf; i++) {
        struct smp_buf *b = &c->bufs[i];
        b->data = smp_kalloc(block_size);
        if (!b->data) {
            free_cache(c);
            return SMP_ENOMEM;
        }
        /* Free buffers cache nothing; spread them so early misses do not
         * all lock one bucket.  NODEV never matches a lookup (bread checks
         * that dev is registered, and dev < SMP_BDEV_MAX). */
        b->dev = SMP_BCACHE_NODEV;
        b->blockno = i;
        atomic_init(&b->bucket, i % nbucket);
        atomic_init(&b->refcnt, 0);
        atomic_init(&b->last_use, 0);
        b->valid = 0;
        smp_sleeplock_init(&b->lock, "buffer");
        list_push(&c->buckets[i % nbucket], b);
    }
    for (unsigned i = 0; i < nbucket; i++)
        update_oldest(c, &c->buckets[i]);
    cache = c;
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
    struct bcache *c = cache;
    if (!c)
        return 0;
    for (unsigned i = 0; i < c->nbuf; i++)
        if (atomic_load(&c->bufs[i].refcnt))
            return SMP_EBUSY;
    cache = 0;
    free_cache(c);
    return 0;
}

/* ---- statistics and checks --------------------------------------------- */

static void lock_all(struct bcache *c)
{
    smp_lock_acquire(&c->lock);
    for (unsigned i = 0; i < c->nbucket; i++)
        smp_lock_acquire(&c->buckets[i].lock);
}

static void unlock_all(struct bcache *c)
{
    for (unsigned i = c->nbucket; i-- > 0;)
        smp_lock_release(&c->buckets[i].lock);
    smp_lock_release(&c->lock);
}

int smp_bcache_stats(struct smp_bcache_stats *out)
{
    struct bcache *c = cache;
    if (!c || !out)
        return SMP_EINVAL;
    lock_all(c);
    out->nbuf = c->nbuf;
    out->nbucket = c->nbucket;
    out->block_size = c->block_size;
    out->busy = 0;
    for (unsigned i = 0; i < c->nbuf; i++)
        out->busy += atomic_load(&c->bufs[i].refcnt) != 0;
    out->hits = out->misses = out->evictions = out->races = 0;
    for (unsigned i = 0; i < c->nbucket; i++) {
        struct bucket *bk = &c->buckets[i];
        out->hits += bk->hits + bk->races;
        out->misses += bk->misses;
        out->evictions += bk->evictions;
        out->races += bk->races;
    }
    out->waits = c->waits;
    out->dev_reads = atomic_load(&c->dev_reads);
    out->dev_writes = atomic_load(&c->dev_writes);
    out->read_errors = atomic_load(&c->read_errors);
    out->write_errors = atomic_load(&c->write_errors);
    unlock_all(c);
    return 0;
}

void smp_bcache_stats_reset(void)
{
    struct bcache *c = cache;
    if (!c)
        return;
    lock_all(c);
    for (unsigned i = 0; i < c->nbucket; i++) {
        struct bucket *bk = &c->buckets[i];
        bk->hits = bk->misses = bk->evictions = bk->races = 0;
    }
    c->waits = 0;
    atomic_store(&c->dev_reads, 0);
    atomic_store(&c->dev_writes, 0);
    atomic_store(&c->read_errors, 0);
    atomic_store(&c->write_errors, 0);
    unlock_all(c);
}

unsigned smp_bcache_count(unsigned dev, uint64_t blockno)
{
    struct bcache *c = cache;
    if (!c)
        return 0;
    unsigned n = 0;
    lock_all(c);
    for (unsigned i = 0; i < c->nbucket; i++)
        for (struct smp_buf *b = c->buckets[i].head; b; b = b->next)
            n += b->dev == dev && b->blockno == blockno;
    unlock_all(c);
    return n;
}

static int violation(struct smp_buf *b, unsigned bucket, const char *reason)
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

int smp_bcache_check(void)
{
    struct bcache *c = cache;
    if (!c)
        return 0;
    int bad = 0;
    unsigned seen = 0;
    lock_all(c);
    for (unsigned i = 0; i < c->nbucket && !bad; i++) {
        struct smp_buf *prev = 0;
        for (struct smp_buf *b = c->buckets[i].head; b && !bad; prev = b, b = b->next) {
            uintptr_t off = (uintptr_t)b - (uintptr_t)c->bufs;
            if ((uintptr_t)b < (uintptr_t)c->bufs || off % sizeof *b ||
                off / sizeof *b >= c->nbuf)
                bad = violation(b, i, "list holds something that is not a buffer");
            else if (++seen > c->nbuf)
                bad = violation(b, i, "lists hold more entries than buffers (cycle?)");
            else if (b->prev != prev)
                bad = violation(b, i, "prev link does not match the list");
            else if (atomic_load_explicit(&b->bucket, memory_order_relaxed) != i)
                bad = violation(b, i, "bucket field names another bucket");
            else if (b->dev != SMP_BCACHE_NODEV && hash_of(c, b->dev, b->blockno) != i)
                bad = violation(b, i, "identity hashes to another bucket");
            else if (b->dev == SMP_BCACHE_NODEV && atomic_load(&b->refcnt))
                bad = violation(b, i, "a buffer caching nothing is referenced");
            else if (b->dev != SMP_BCACHE_NODEV)
                for (struct smp_buf *o = b->next; o && !bad; o = o->next)
                    if (o->dev == b->dev && o->blockno == b->blockno)
                        bad = violation(o, i, "block cached twice");
        }
        /* The hint: the free buffer of the list with the smallest
         * last_use (any one of them on a tie), or NULL iff none is free. */
        struct smp_buf *hint = atomic_load_explicit(&c->oldest[i], memory_order_relaxed);
        struct smp_buf *min = 0;
        int on_list = 0;
        for (struct smp_buf *b = c->buckets[i].head; b && !bad; b = b->next) {
            on_list |= b == hint;
            if (atomic_load(&b->refcnt) == 0 &&
                (!min || atomic_load(&b->last_use) < atomic_load(&min->last_use)))
                min = b;
        }
        if (bad)
            break;
        if (!min != !hint)
            bad = violation(hint, i, min ? "oldest-free hint missing" : "oldest-free hint set, none free");
        else if (hint && (!on_list || atomic_load(&hint->refcnt) != 0 ||
                          atomic_load(&hint->last_use) != atomic_load(&min->last_use)))
            bad = violation(hint, i, "oldest-free hint is not the least recently released free buffer");
    }
    if (!bad && seen != c->nbuf)
        bad = violation(0, 0, "buffers missing from the bucket lists");
    unlock_all(c);
    return bad;
}
