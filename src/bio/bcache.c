/*
 * The buffer cache: lookup, eviction and release (interface and rules for
 * callers: include/smpmem/bcache.h; state: bcache_internal.h).
 *
 * Lock order (a CPU takes locks only in this order, never the reverse):
 *   1. "bcache"            the wait lock: a miss that finds every buffer
 *                          busy sleeps under it; also taken first by the
 *                          whole-cache walks (stats, count, check);
 *   2. "bcache.bucketN"    bucket locks; a CPU holds at most two on the
 *                          lookup paths, and then takes the lower index
 *                          first (the walks and a waiting miss take all, in
 *                          increasing index);
 * A buffer's sleep lock is not a lock of its own here: its state is
 * guarded by the buffer's bucket lock ("a buffer's sleep lock" below), and
 * a wait for it sleeps releasing that bucket lock and no other.
 * The hit path takes only its bucket lock, once in bread and once in
 * brelse.  A miss drops its bucket lock,
 * looks WITHOUT a lock for the least recently released free buffer (the
 * victim: the minimum over the buckets' oldest-free hints, one read per
 * bucket; every buffer only if no hint offers one), then locks the
 * victim's bucket and the target bucket in increasing index and
 * re-validates: the victim must still be in the bucket it was seen in,
 * still be free, and still carry the last_use it was seen with (each
 * release stores a larger value, so a buffer that was taken and released
 * again since the scan, even one that moved away and back, is refused);
 * otherwise the miss scans again.  It also re-checks the target bucket for
 * the block: another CPU may have inserted it between the drop and now.
 * Every insertion of a block happens under its target bucket lock after
 * such a re-check, so a block is never cached twice; and since no lock is
 * held while scanning, misses on different CPUs run in parallel (two that
 * pick the same victim: one wins the re-validation, the other rescans).
 *
 * What each lock protects:
 *   bucket lock   the bucket's list and, for buffers on it: dev, blockno,
 *                 next, prev, and writes of bucket, refcnt and last_use; the
 *                 bucket's oldest-free hint, waiters count and statistics.
 *   "bcache"      sleeping for a free buffer (chan = c) and `waits`.
 *   sleep lock    a held buffer's valid flag and data (its own state:
 *                 the bucket lock, as above).
 * bucket, refcnt, last_use and the hints are atomics so the victim scan may
 * read them with no lock; they are trusted only after the re-validation.
 *
 * What a hit touches: its bucket (lock line; the hint line only when the
 * hint changes), its buffer, its own CPU's LRU clock, and a read of the
 * global epoch, which only misses write (below): with no misses, its line
 * stays shared by every CPU's cache and a hit writes nothing another CPU
 * reads.  In particular a hit reads no global waiters word and executes no
 * seq_cst store.
 *
 * Waiting for a free buffer (no lost wakeup, by locks alone): the waiter
 * holds "bcache" from before it announces itself until smp_port_sleep
 * releases it atomically.  With "bcache" held it visits every bucket under
 * that bucket's lock: waiters++, then reads the hint (exact under the
 * lock: non-NULL iff a free buffer is there).  A release that makes a
 * buffer free does so under its bucket lock and, under the same lock,
 * reads waiters; if nonzero it takes "bcache" after dropping the bucket
 * lock and wakes.  For the bucket of that release, the two critical
 * sections are ordered by the bucket lock: if the release came first the
 * waiter saw the free buffer and does not sleep; if the waiter came first
 * the release sees waiters > 0, and its wakeup needs "bcache", which it
 * gets only once the waiter sleeps (or has stopped waiting).
 *
 * LRU by miss epochs, kept per CPU.  `epoch` counts misses (only the miss
 * path writes it).  Each CPU keeps its view of it in its own clock line:
 * a miss stores the epoch it made there, and every BCACHE_CLOCK_REFRESH-th
 * release on the CPU (every release: bio_debug.h says why) re-reads the
 * global value.  A release to refcnt 0
 * stamps last_use = view << 24 | (the CPU's release count mod 2^24), or
 * last_use + 1 if that is not larger, and a miss reuses the free buffer
 * with the smallest last_use.  How approximate: a release is stamped with
 * the epoch as of the releasing CPU's last miss or its last refresh,
 * whichever is later, so it may look older than it is by the misses
 * other CPUs made during at most BCACHE_CLOCK_REFRESH - 1 releases on
 * this CPU.  Buffers whose stamps differ in epoch are evicted in that
 * order; within one epoch, releases on one CPU in their order (up to 2^24
 * of them), releases on different CPUs in an arbitrary order.  So on one
 * CPU alone (its misses keep its view current) this is exact LRU.  Every
 * release still makes last_use grow (the re-validation above relies on
 * that), and a hit writes no line shared by all CPUs.
 */
#include "bcache_internal.h"
#include "bdev_internal.h"
#include "sleeplock_guarded.h"
#include "smpmem/bdev.h"
#include "smpmem/port.h"
#include "../base/fmt.h"
#include "../base/spinlock_inline.h"

/* ---- helpers ----------------------------------------------------------- */

static struct bcache *need_cache(const char *who)
{
    struct bcache *c = smp_bcache_state;
    if (!c)
        smp_panic(who, "buffer cache not initialised");
    return c;
}

/* Panic unless b is one of the cache's buffers. */
static inline struct bcache *check_buf(struct smp_buf *b, const char *who)
{
    struct bcache *c = need_cache(who);
    uintptr_t lo = (uintptr_t)c->bufs, p = (uintptr_t)b;
    if (p < lo || p >= lo + (uintptr_t)c->nbuf * sizeof *b || (p - lo) % sizeof *b)
        smp_panic_at(who, p, "not a buffer of the buffer cache");
    return c;
}

static unsigned refs(struct smp_buf *b)
{
    return atomic_load_explicit(&b->refcnt, memory_order_relaxed);
}

/* refcnt and last_use are written only under the bucket lock: a relaxed
 * store is enough (lock-free readers re-validate under the lock). */
static void set_refs(struct smp_buf *b, unsigned r)
{
    atomic_store_explicit(&b->refcnt, r, memory_order_relaxed);
}

static uint64_t use_of(struct smp_buf *b)
{
    return atomic_load_explicit(&b->last_use, memory_order_relaxed);
}

static struct smp_buf *hint_of(struct bucket *bk)
{
    return atomic_load_explicit(&bk->oldest, memory_order_relaxed);
}

static void set_hint(struct bucket *bk, struct smp_buf *b)
{
    atomic_store_explicit(&bk->oldest, b, memory_order_relaxed);
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

void smp_bcache_update_oldest(struct bucket *bk)
{
    struct smp_buf *best = 0;
    for (struct smp_buf *b = bk->head; b; b = b->next)
        if (refs(b) == 0 && (!best || use_of(b) < use_of(best)))
            best = b;
    if (hint_of(bk) != best)
        set_hint(bk, best);
}

/* This CPU's LRU clock; call with a spinlock held (interrupts off, so the
 * CPU id is stable). */
static struct lru_clock *my_clock(struct bcache *c)
{
    return &c->clocks[(unsigned)smp_port_cpu_id() & (c->nclock - 1)];
}

/* ---- references -------------------------------------------------------- */

/* Take a reference to b, found on bk's list; bk->lock held. */
static inline void take_ref(struct bucket *bk, struct smp_buf *b)
{
    unsigned r = refs(b);
    set_refs(b, r + 1);
    if (r == 0 && hint_of(bk) == b)
        smp_bcache_update_oldest(bk);
}

/* Stamp b, just released to refcnt 0 on this CPU; its bucket lock held. */
static uint64_t stamp_release(struct bcache *c, struct smp_buf *b)
{
    struct lru_clock *k = my_clock(c);
    unsigned n = atomic_load_explicit(&k->releases, memory_order_relaxed) + 1;
    atomic_store_explicit(&k->releases, n, memory_order_relaxed);
    uint64_t view = atomic_load_explicit(&k->epoch, memory_order_relaxed);
    if (n % BCACHE_CLOCK_REFRESH == 0) {
        uint64_t now = atomic_load_explicit(&c->epoch, memory_order_relaxed);
        if (now > view)
            atomic_store_explicit(&k->epoch, view = now, memory_order_relaxed);
    }
    uint64_t prev = use_of(b), use = view << 24 | (n & 0xffffff);
    if (use <= prev)
        use = prev + 1;
    atomic_store_explicit(&b->last_use, use, memory_order_relaxed);
    return use;
}

/* Lock the bucket that lists b and return it.  b may move between buckets
 * while unreferenced (only under both bucket locks), so re-read its bucket
 * once locked; a caller that misuses b (releases it twice) still locks the
 * right bucket and gets a clear panic instead of corrupting another's.
 * The first try is inline (brelse's path); a move is retried out of line. */
static struct bucket *lock_bucket_moved(struct bcache *c, struct smp_buf *b, struct bucket *bk);

static inline struct bucket *lock_bucket_of(struct bcache *c, struct smp_buf *b)
{
    unsigned i = atomic_load_explicit(&b->bucket, memory_order_relaxed);
    struct bucket *bk = &c->buckets[i];
    smp_lock_acquire_inline(&bk->lock);
    if (__builtin_expect(atomic_load_explicit(&b->bucket, memory_order_relaxed) == i, 1))
        return bk;
    return lock_bucket_moved(c, b, bk);
}

/* bk (locked) no longer lists b: drop it and try again. */
static __attribute__((noinline)) struct bucket *lock_bucket_moved(struct bcache *c, struct smp_buf *b,
                                                                  struct bucket *bk)
{
    for (;;) {
        smp_lock_release_inline(&bk->lock);
        unsigned i = atomic_load_explicit(&b->bucket, memory_order_relaxed);
        bk = &c->buckets[i];
        smp_lock_acquire_inline(&bk->lock);
        if (atomic_load_explicit(&b->bucket, memory_order_relaxed) == i)
            return bk;
    }
}

/* Drop one reference; bk (b's bucket) locked.  Returns whether a miss
 * sleeps for a free buffer (wake_missers after dropping bk), or panics as
 * `who`, bk released, if b has no reference. */
static inline int drop_ref_locked(struct bcache *c, struct bucket *bk, struct smp_buf *b, const char *who)
{
    unsigned r = refs(b);
    if (r == 0) {
        smp_lock_release(&bk->lock);
        smp_panic_at(who, (uintptr_t)b, "buffer has no reference to drop");
    }
    set_refs(b, r - 1);
    if (r != 1)
        return 0;
    uint64_t use = stamp_release(c, b);
    struct smp_buf *old = hint_of(bk);
    if (!old || use < use_of(old))
        set_hint(bk, b);
    return bk->waiters != 0;
}

static void wake_missers(struct bcache *c)
{
    smp_lock_acquire(&c->lock);
    smp_port_wakeup(c);
    smp_lock_release(&c->lock);
}

/* Drop one reference (bunpin).  The caller does not hold b's sleep lock
 * on account of this reference. */
static void unref(struct bcache *c, struct smp_buf *b, const char *who)
{
    struct bucket *bk = lock_bucket_of(c, b);
    int wake = drop_ref_locked(c, bk, b, who);
    smp_lock_release(&bk->lock);
    if (wake)
        wake_missers(c);
}

/* ---- a buffer's sleep lock, kept under its bucket lock ------------------
 *
 * The state of b->lock (locked, holder, cpu, waiters) is guarded by the
 * lock of the bucket that lists b, not by the sleep lock's own guard:
 * bread holds that bucket lock anyway to find b and count its reference,
 * and brelse to drop it, so holding and releasing b costs no lock round
 * trip of its own.  A hit makes two (bread's and brelse's), where taking
 * the guard made four.  b cannot change buckets meanwhile: it moves only
 * with refcnt 0, and its holder and every waiter hold a reference.
 * Waiters sleep on &b->lock, and smp_port_sleep releases the bucket lock
 * while they sleep, as the guard's sleep did.  The state machine is the
 * sleep lock's own (sleeplock_guarded.h); only the public calls of
 * sleeplock.h, which take the guard, must not be used on a buffer. */

/* Release b (held by the caller) and drop the reference that came with it:
 * one trip through its bucket lock.  Panics as `who` if the caller does
 * not hold b, with b left as it was. */
static inline void release_buf(struct bcache *c, struct smp_buf *b, const char *who)
{
    struct bucket *bk = lock_bucket_of(c, b);
    int r = smp_sleeplock_mine_guarded(&b->lock);
    if (r) {
        smp_lock_release(&bk->lock);
        smp_panic_at(who, (uintptr_t)b, r == SMP_SLEEPLOCK_NOT_HELD
            ? "buffer not locked: released twice, or not from bread"
            : "buffer held by another thread: only its holder may release it");
    }
    smp_sleeplock_give_guarded(&b->lock);
    int wake = drop_ref_locked(c, bk, b, who);
    smp_lock_release_inline(&bk->lock);
    if (wake)
        wake_missers(c);
}

/* ---- finding a victim -------------------------------------------------- */

/* The free buffer released longest ago, or NULL if all are in use.  Reads
 * refcnt/last_use with no lock: the answer is a candidate to re-validate.
 * Looks at every buffer: used when the bucket hints offer nothing. */
static struct smp_buf *scan_all(struct bcache *c, uint64_t *seen_use)
{
    struct smp_buf *best = 0;
    for (unsigned i = 0; i < c->nbuf; i++) {
        struct smp_buf *b = &c->bufs[i];
        if (refs(b) != 0)
            continue;
        uint64_t use = use_of(b);
        if (!best || use < *seen_use) {
            best = b;
            *seen_use = use;
        }
    }
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
    for (unsigned i = 0; i < c->nbucket; i++) {
        struct smp_buf *b = hint_of(&c->buckets[i]);
        if (!b || refs(b) != 0)
            continue;
        uint64_t use = use_of(b);
        if (!best || use < *seen_use) {
            best = b;
            *seen_use = use;
        }
    }
    return best ? best : scan_all(c, seen_use);
}

/* Sleep until some buffer may be free (protocol: the comment at the top).
 * Takes "bcache", then each bucket lock alone; none held on entry. */
static void wait_for_free(struct bcache *c)
{
    smp_lock_acquire(&c->lock);
    int any_free = 0;
    for (unsigned i = 0; i < c->nbucket; i++) {
        struct bucket *bk = &c->buckets[i];
        smp_lock_acquire(&bk->lock);
        bk->waiters++;
        any_free |= hint_of(bk) != 0;
        smp_lock_release(&bk->lock);
    }
    if (!any_free) {
        c->waits++;
        smp_port_sleep(c, &c->lock);
    }
    for (unsigned i = 0; i < c->nbucket; i++) {
        struct bucket *bk = &c->buckets[i];
        smp_lock_acquire(&bk->lock);
        bk->waiters--;
        smp_lock_release(&bk->lock);
    }
    smp_lock_release(&c->lock);
}

/* Make free buffer v (on bucket vb, both bucket locks held) cache
 * (dev, blockno) in bucket h, referenced once. */
static void claim(struct bcache *c, struct smp_buf *v, unsigned vb, unsigned h, unsigned dev,
                  uint64_t blockno)
{
    struct bucket *bk = &c->buckets[h], *from = &c->buckets[vb];
    bk->misses++;
    if (v->dev != SMP_BCACHE_NODEV)
        bk->evictions++;
    /* A new epoch, and this CPU's view of it. */
    uint64_t e = atomic_fetch_add_explicit(&c->epoch, 1, memory_order_relaxed) + 1;
    atomic_store_explicit(&my_clock(c)->epoch, e, memory_order_relaxed);
    list_remove(from, v);
    v->dev = dev;
    v->blockno = blockno;
    v->valid = 0;   /* free buffer: no sleep-lock holder to race */
    set_refs(v, 1);
    atomic_store_explicit(&v->bucket, h, memory_order_relaxed);
    list_push(bk, v);
    if (hint_of(from) == v)
        smp_bcache_update_oldest(from);   /* v was vb's oldest free buffer */
}

/* ---- the lookup: a referenced buffer for (dev, blockno), sleep-locked --- */

static struct smp_buf *bget(struct bcache *c, unsigned dev, uint64_t blockno)
{
    unsigned h = bcache_hash(c, dev, blockno);
    struct bucket *bk = &c->buckets[h];
    struct smp_buf *b;

    /* Hit path: this bucket's lock only, once. */
    smp_lock_acquire_inline(&bk->lock);
    b = lookup(bk, dev, blockno);
    if (b) {
        take_ref(bk, b);
        bk->hits++;
        smp_sleeplock_take_guarded(&b->lock, &bk->lock);
        smp_lock_release_inline(&bk->lock);
        return b;
    }
    smp_lock_release_inline(&bk->lock);

    /* Miss path: scan unlocked, then validate under both bucket locks. */
    unsigned vb;
    for (;;) {
        uint64_t seen_use = 0;
        struct smp_buf *v = pick_victim(c, &seen_use);
        vb = v ? atomic_load_explicit(&v->bucket, memory_order_relaxed) : h;
        lock_pair(c, vb, h);
        b = lookup(bk, dev, blockno);
        if (b) {
            /* Another CPU missed the same block and inserted it first. */
            take_ref(bk, b);
            bk->races++;
            break;
        }
        if (!v) {
            unlock_pair(c, vb, h);
            wait_for_free(c);
            continue;
        }
        if (atomic_load_explicit(&v->bucket, memory_order_relaxed) != vb || refs(v) != 0 ||
            use_of(v) != seen_use) {
            /* Since the scan, another miss moved it, a hit took it, or it
             * was used and released again (possibly after moving away and
             * back): it is no longer the least recently used. */
            unlock_pair(c, vb, h);
            continue;
        }
        claim(c, v, vb, h, dev, blockno);
        b = v;                       /* free until now: its sleep lock is free */
        break;
    }
    /* Both bucket locks held: keep only b's (taking its sleep lock may sleep). */
    if (vb != h)
        smp_lock_release(&c->buckets[vb].lock);
    smp_sleeplock_take_guarded(&b->lock, &bk->lock);
    smp_lock_release(&bk->lock);
    return b;
}

/* ---- public API -------------------------------------------------------- */

struct smp_buf *smp_bread_err(unsigned dev, uint64_t blockno, int *err)
{
    struct bcache *c = need_cache("bread");
    int r = smp_bdev_check_block(dev, blockno, c->block_size);
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
            release_buf(c, b, "bread");
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
    struct bucket *bk = lock_bucket_of(c, b);
    int held = smp_sleeplock_mine_guarded(&b->lock) == 0;
    smp_lock_release(&bk->lock);
    if (!held)
        smp_panic_at("bwrite", (uintptr_t)b,
                     "buffer not held by the caller (not from bread, released, or another's)");
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
    release_buf(check_buf(b, "brelse"), b, "brelse");
}

void smp_bpin(struct smp_buf *b)
{
    struct bcache *c = check_buf(b, "bpin");
    struct bucket *bk = lock_bucket_of(c, b);
    if (refs(b) == 0) {
        smp_lock_release(&bk->lock);
        smp_panic_at("bpin", (uintptr_t)b, "buffer not held: pin it while holding it");
    }
    set_refs(b, refs(b) + 1);
    smp_lock_release(&bk->lock);
}

void smp_bunpin(struct smp_buf *b)
{
    struct bcache *c = check_buf(b, "bunpin");
    unref(c, b, "bunpin");
}
