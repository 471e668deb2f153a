/* bcachetest's idea: 8 CPUs each reading their own blocks through the cache.
 * The per-bucket locks of smpmem's cache see little contention, measured in
 * the same run against a single-lock cache of stock xv6's design; the
 * xv6-format lock report is printed.  (Counts, never times, are asserted.) */
#include "harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <smpmem/bcache.h>
#include <smpmem/bdev.h>
#include <smpmem/bio_debug.h>
#include <smpmem/pmm.h>
#include <smpmem/pmm_debug.h>
#include <smpmem/spinlock.h>
#include "../bench/bcache_baseline.h"

#define MiB (1UL << 20)
#define REGION (64 * MiB)
#define BSIZE 1024u
#define NCPU 8
#define PER_CPU 3            /* blocks each CPU reads: 24 of 64 buffers */
#define NBUF 64
#define DEV 0

struct work {
    long iters;
    struct xv6_bcache *base;   /* NULL: smpmem's cache */
    atomic_long bad;
};

static void reader(int cpu, void *arg)
{
    struct work *w = arg;
    struct rng g = rng_for((uint64_t)cpu);
    for (long i = 0; i < w->iters; i++) {
        uint64_t blk = (uint64_t)cpu * PER_CPU + rng_below(&g, PER_CPU);
        unsigned char first;
        if (w->base) {
            struct xv6_buf *b = xv6_bread(w->base, DEV, blk);
            if (!b) {
                atomic_fetch_add(&w->bad, 1);
                continue;
            }
            first = b->data[0];
            xv6_brelse(w->base, b);
        } else {
            struct buf *b = bread(DEV, blk);
            if (!b) {
                atomic_fetch_add(&w->bad, 1);
                continue;
            }
            first = b->data[0];
            brelse(b);
        }
        if (first != (unsigned char)blk)
            atomic_fetch_add(&w->bad, 1);
    }
}

/* Sum of #acquire() over report lines whose lock name starts with prefix. */
static unsigned long acquisitions(const char *report, const char *prefix)
{
    unsigned long sum = 0;
    char pat[64];
    snprintf(pat, sizeof pat, "lock: %s", prefix);
    const char *end = strstr(report, "--- top 5");
    for (const char *p = strstr(report, pat); p && (!end || p < end); p = strstr(p + 1, pat)) {
        const char *a = strstr(p, "#acquire() ");
        if (a)
            sum += strtoul(a + 11, NULL, 10);
    }
    return sum;
}

TEST(bucket_locks_are_barely_contended)
{
    char *region = region_map(REGION, 0);
    REQUIRE(pmm_init(region, region + REGION, NCPU) == 0, "pmm");
    REQUIRE(ramdisk_create(DEV, 1024, BSIZE) == 0, "ramdisk");
    unsigned char block[BSIZE];
    for (uint64_t b = 0; b < 1024; b++) {
        memset(block, (int)(unsigned char)b, BSIZE);
        REQUIRE(bdev_write(DEV, b, block) == 0, "fill");
    }
    REQUIRE(bcache_init(NBUF, BSIZE) == 0, "bcache");
    static struct xv6_bcache base;
    REQUIRE(xv6_bcache_init(&base, NBUF, BSIZE, "xv6.bcache") == 0, "baseline");

    /* Not scaled down under sanitizers: contention needs CPUs to overlap. */
    long iters = 20000;
    static struct work w;
    static char report[16384];
    unsigned long ours = 0, theirs = 0, ours_acq = 0, theirs_acq = 0;
    /* Alternate the two caches a few times; sum the counts. */
    for (int round = 0; round < 3; round++) {
        memset(&w, 0, sizeof w);
        w.iters = 64;
        run_on_cpus(NCPU, reader, &w);          /* warm: every block cached */
        w.iters = iters;
        smp_lock_stats_reset();
        run_on_cpus(NCPU, reader, &w);
        CHECK(atomic_load(&w.bad) == 0, "smpmem: %ld wrong blocks", atomic_load(&w.bad));
        ours += smp_lock_contended("bcache");
        smp_lock_report(report, sizeof report);
        ours_acq += acquisitions(report, "bcache");
        if (round == 0) {
            printf("  smpmem cache, %d CPUs x %ld reads:\n", NCPU, iters);
            smp_lock_print();
        }

        memset(&w, 0, sizeof w);
        w.base = &base;
        w.iters = 64;
        run_on_cpus(NCPU, reader, &w);
        w.iters = iters;
        smp_lock_stats_reset();
        run_on_cpus(NCPU, reader, &w);
        CHECK(atomic_load(&w.bad) == 0, "baseline: %ld wrong blocks", atomic_load(&w.bad));
        theirs += smp_lock_contended("xv6.bcache");
        theirs_acq += atomic_load(&base.lock.n_acquire);
    }
    printf("  #test-and-set: smpmem bcache* %lu of %lu acquires; single-lock baseline %lu of %lu\n",
           ours, ours_acq, theirs, theirs_acq);
    CHECK(ours_acq >= (unsigned long)(3 * 2 * NCPU * iters),
          "two bucket-lock acquisitions per bread+brelse: %lu", ours_acq);
    /* The lab's criterion is "~0"; on this machine's CPU count we require the
     * bucket locks to fail test-and-set well under 1% of acquisitions, and
     * at most a quarter as often as the single lock does. */
    CHECK(ours * 100 < ours_acq, "smpmem contention %lu of %lu acquisitions", ours, ours_acq);
    CHECK(ours * 4 <= theirs, "smpmem contention %lu vs single lock %lu", ours, theirs);
    struct smp_bcache_stats st;
    CHECK(bcache_stats(&st) == 0 && st.misses == NCPU * PER_CPU,
          "each block missed once (%lu misses)", st.misses);

    xv6_bcache_destroy(&base);
    CHECK(bcache_reset() == 0, "reset");
    bdev_reset();
    CHECK(pmm_check() == 0, "pmm");
    pmm_reset();
    region_unmap(region, REGION, 0);
}

int main(void)
{
    return RUN_TESTS(bucket_locks_are_barely_contended);
}
