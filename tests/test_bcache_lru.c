/* The buffer cache's eviction order and its self-checks: on one CPU a miss
 * evicts exactly the least recently released free buffer, in a seeded
 * random release order; a CPU that only hits makes its view of the LRU
 * epoch current within SMP_BCACHE_CLOCK_REFRESH releases, so its buffers
 * are not evicted ahead of older ones; the statistics count exactly; and
 * bcache_check reports each kind of corruption it promises to.  (Misses
 * sleeping for a buffer: test_bcache.c, all_buffers_busy_waits_then_resumes.) */
#define _GNU_SOURCE
#include "harness.h"
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include "bcache_fixture.h"

#define MiB (1UL << 20)
#define REGION (64 * MiB)
#define BSIZE 512u
#define NCPU 4
#define DEV 0
#define NBLOCKS 512

static int setup(unsigned nbuf)
{
    int rc = bcache_fixture_setup(REGION, NCPU, nbuf, BSIZE);
    return rc ? rc : ramdisk_create(DEV, NBLOCKS, BSIZE);
}

static void teardown(void) { bcache_fixture_teardown(); }

/* bread + brelse; returns the buffer (for identity checks only). */
static struct buf *touch(uint64_t blk)
{
    struct buf *b = bread(DEV, blk);
    if (b)
        brelse(b);
    return b;
}

/* ---- 1. one CPU: exact LRU ---- */

#define LRU_BUFS 8

TEST(one_cpu_evicts_in_release_order)
{
    REQUIRE(setup(LRU_BUFS) == 0, "setup");
    struct rng g = rng_for(1);
    for (int round = 0; round < 20 && !test_failures(); round++) {
        /* Cache LRU_BUFS blocks, then release them again in a random
         * order with no miss in between (one epoch). */
        uint64_t base = 16 * (uint64_t)round;
        uint64_t order[LRU_BUFS];
        for (unsigned i = 0; i < LRU_BUFS; i++) {
            REQUIRE(touch(base + i), "fill %u", i);
            order[i] = base + i;
        }
        for (unsigned i = LRU_BUFS - 1; i > 0; i--) {
            unsigned j = (unsigned)rng_below(&g, i + 1);
            uint64_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (unsigned i = 0; i < LRU_BUFS; i++)
            REQUIRE(touch(order[i]), "touch");
        /* Each miss evicts the next one in that order, and nothing else. */
        for (unsigned i = 0; i < LRU_BUFS; i++) {
            REQUIRE(touch(base + LRU_BUFS + i), "miss %u", i);
            CHECK(bcache_count(DEV, order[i]) == 0,
                  "round %d miss %u: block %llu (released %u-th) not evicted", round, i,
                  (unsigned long long)order[i], i);
            for (unsigned k = i + 1; k < LRU_BUFS; k++)
                CHECK(bcache_count(DEV, order[k]) == 1,
                      "round %d miss %u: block %llu evicted too early", round, i,
                      (unsigned long long)order[k]);
        }
        CHECK(bcache_check() == 0, "invariants");
    }
    teardown();
}

/* ---- 2. a CPU that only hits: its view of the epoch catches up ---- */

#define X_BLOCK 10
#define Y_BLOCK 20     /* Y_BLOCK .. Y_BLOCK + 2 */
#define Z_BLOCK 30

static void view_worker(int cpu, void *arg)
{
    atomic_long *bad = arg;
    if (cpu == 1)
        *bad += !touch(X_BLOCK);                 /* miss on CPU 1 */
    cpus_barrier();
    if (cpu == 0)
        for (uint64_t k = 0; k < 3; k++)
            *bad += !touch(Y_BLOCK + k);         /* three later misses on CPU 0 */
    cpus_barrier();
    if (cpu == 1)
        /* Hits only, after those misses: within REFRESH releases CPU 1's
         * stamps carry an epoch at least as new as theirs. */
        for (int k = 0; k < SMP_BCACHE_CLOCK_REFRESH + 1; k++)
            *bad += !touch(X_BLOCK);
    cpus_barrier();
    if (cpu == 0)
        *bad += !touch(Z_BLOCK);                 /* evicts the oldest: Y */
}

TEST(hits_on_another_cpu_keep_a_block_young)
{
    REQUIRE(setup(4) == 0, "setup");
    static atomic_long bad;
    atomic_store(&bad, 0);
    run_on_cpus(2, view_worker, &bad);
    CHECK(atomic_load(&bad) == 0, "reads failed");
    CHECK(bcache_count(DEV, X_BLOCK) == 1, "X, hit %d times after the misses, was evicted",
          SMP_BCACHE_CLOCK_REFRESH + 1);
    CHECK(bcache_count(DEV, Y_BLOCK) == 0, "the least recently released block (Y0) stayed");
    CHECK(bcache_count(DEV, Y_BLOCK + 1) == 1 && bcache_count(DEV, Y_BLOCK + 2) == 1 &&
          bcache_count(DEV, Z_BLOCK) == 1, "Y1, Y2, Z cached");
    teardown();
}

/* ---- 3. statistics count exactly ---- */

TEST(statistics_count_exactly)
{
    REQUIRE(setup(8) == 0, "setup");
    struct smp_bcache_stats st;
    for (uint64_t b = 0; b < 8; b++)
        REQUIRE(touch(b), "fill");
    for (uint64_t b = 0; b < 8; b++)
        REQUIRE(touch(b), "hit");
    for (uint64_t b = 8; b < 12; b++)
        REQUIRE(touch(b), "evict");
    struct buf *held = bread(DEV, 8);
    REQUIRE(held, "hold one");
    REQUIRE(bcache_stats(&st) == 0, "stats");
    CHECK(st.misses == 12 && st.hits == 9 && st.evictions == 4 && st.races == 0,
          "misses %lu hits %lu evictions %lu races %lu", st.misses, st.hits, st.evictions,
          st.races);
    CHECK(st.dev_reads == 12 && st.dev_writes == 0 && st.busy == 1 && st.waits == 0,
          "dev_reads %lu dev_writes %lu busy %u waits %lu", st.dev_reads, st.dev_writes,
          st.busy, st.waits);
    CHECK(bwrite(held) == 0, "bwrite");
    brelse(held);
    bcache_stats_reset();
    REQUIRE(bcache_stats(&st) == 0, "stats");
    CHECK(st.misses == 0 && st.hits == 0 && st.evictions == 0 && st.dev_reads == 0 &&
          st.dev_writes == 0 && st.busy == 0 && st.nbuf == 8,
          "reset zeroes the counters, keeps the geometry");
    teardown();
}

/* ---- a hit's locks ---- */

struct lock_tally {
    char bucket[32];                 /* the hit's bucket lock */
    unsigned long on_bucket, elsewhere;
};

static void tally(void *ctx, const char *name, unsigned long acquires, unsigned long contended)
{
    struct lock_tally *t = ctx;
    (void)contended;
    if (!strcmp(name, t->bucket))
        t->on_bucket += acquires;
    else
        t->elsewhere += acquires;
}

/* A hit (bread + brelse of a cached block) takes its bucket lock once in
 * bread and once in brelse, and no other lock: not the "bcache" lock, not
 * kmem's, and not the buffer's sleep-lock guard, whose state the bucket
 * lock guards (bcache.c).  Two locked exchanges a hit: this keeps it so. */
TEST(a_hit_takes_its_bucket_lock_twice_and_nothing_else)
{
    REQUIRE(setup(8) == 0, "setup");
    struct buf *b = touch(5);                      /* the miss that caches it */
    REQUIRE(b, "fill");
    struct lock_tally t = { .on_bucket = 0, .elsewhere = 0 };
    snprintf(t.bucket, sizeof t.bucket, "bcache.bucket%u", smp_bcache_debug_bucket_of(DEV, 5));
    unsigned long guard_before = atomic_load(&b->lock.lk.n_acquire);
    smp_lock_stats_reset();
    enum { HITS = 100 };
    for (int i = 0; i < HITS; i++)
        REQUIRE(touch(5) == b, "hit %d", i);
    smp_lock_for_each(tally, &t);
    CHECK(t.on_bucket == 2 * HITS, "%s taken %lu times in %d hits, want %d", t.bucket,
          t.on_bucket, HITS, 2 * HITS);
    CHECK(t.elsewhere == 0, "other locks taken %lu times in %d hits", t.elsewhere, HITS);
    CHECK(atomic_load(&b->lock.lk.n_acquire) == guard_before,
          "the buffer's sleep-lock guard was taken %lu times",
          atomic_load(&b->lock.lk.n_acquire) - guard_before);
    teardown();
}

/* ---- 4. bcache_check reports corruption ---- */

TEST(check_reports_corruption)
{
    REQUIRE(setup(8) == 0, "setup");
    unsigned nbucket = bcache_default_buckets(8);
    /* Blocks 0 and nbucket share a bucket; both cached and free. */
    struct buf *a = touch(0), *b = touch(nbucket), *c = touch(1);
    REQUIRE(a && b && c && a != b, "fill");
    REQUIRE(bcache_check() == 0, "clean");

    uint64_t saved = c->blockno;
    c->blockno = saved + 2;                   /* hashes to another bucket */
    CHECK(bcache_check() != 0, "identity in the wrong bucket not reported");
    c->blockno = saved;

    saved = b->blockno;
    b->blockno = a->blockno;                  /* the same block twice */
    CHECK(bcache_check() != 0, "a block cached twice not reported");
    b->blockno = saved;

    /* a was released first: it is its bucket's oldest free buffer.  Make b
     * look older without moving the hint. */
    uint64_t ua = atomic_load(&a->last_use), ub = atomic_load(&b->last_use);
    REQUIRE(ua < ub, "a released before b (%llu, %llu)", (unsigned long long)ua,
            (unsigned long long)ub);
    atomic_store(&b->last_use, ua - 1);
    CHECK(bcache_check() != 0, "a stale oldest-free hint not reported");
    atomic_store(&b->last_use, (uint64_t)1 << 60);
    CHECK(bcache_check() != 0, "a stamp from the future not reported");
    atomic_store(&b->last_use, ub);

    struct buf *next = a->next;
    a->next = a;                              /* a cycle */
    CHECK(bcache_check() != 0, "a cycle not reported");
    a->next = next;
    CHECK(bcache_check() == 0, "clean again after every repair");
    teardown();
}

int main(void)
{
    return RUN_TESTS(one_cpu_evicts_in_release_order,
                     hits_on_another_cpu_keep_a_block_young,
                     statistics_count_exactly,
                     a_hit_takes_its_bucket_lock_twice_and_nothing_else,
                     check_reports_corruption);
}
